/* hzshm_errno.h - the one list of hzshm error codes.
 *
 * Every hzshm call returns int: 0 on success, a negative errno value (-ENOMEM,
 * -EACCES, ...) for a failed system call, or one of the HZSHM_E* codes below for
 * a failure of our own. The project codes live in a reserved negative range
 * (-30000 and below), far from any errno, so the two never collide and the
 * sign never changes meaning.
 *
 * This X-macro is the only place a code is defined: the enum, hzshm_strerror()
 * and hzshm_err_name() are all generated from it (libuv's UV_ERRNO_MAP idea).
 * Append new codes at the end; never renumber a released code.
 */
#ifndef HZSHM_ERRNO_H
#define HZSHM_ERRNO_H

#define HZSHM_ERRNO_MAP(XX)                                                           \
  XX(ENOTFOUND, -30001, "key not found")                                              \
  XX(EVERSION, -30002, "segment has another layout version or fingerprint")          \
  XX(ECORRUPT, -30003, "segment is corrupt or not an hzshm segment")                 \
  XX(ESTALE, -30004, "cache is failing closed: agent heartbeat too old")             \
  XX(ETOOBIG, -30005, "key, value or session id over its size limit")               \
  XX(EEMPTY, -30006, "empty key or session id")                                      \
  XX(EBADSESSION, -30007, "invalid session id")                                      \
  XX(EMISS, -30008, "not in the shared cache (ask the agent)")                       \
  XX(EBUFSIZE, -30009, "caller buffer too small; the needed size was reported")      \
  XX(ESEGFULL, -30010, "segment memory exhausted and nothing could be evicted")      \
  XX(EDISCONNECTED, -30011, "agent has lost the Hazelcast cluster")                  \
  XX(EAGENT, -30012, "agent not reachable")                                          \
  XX(EPROTO, -30013, "malformed message or protocol violation")                      \
  XX(EREMOTE, -30014, "Hazelcast member returned an error")                          \
  XX(ETIMEDOUT, -30015, "operation timed out")                                       \
  XX(ETYPE, -30016, "value has a type other than byte[] or String")                  \
  XX(EAUTH, -30017, "Hazelcast authentication failed")                               \
  XX(ECLUSTER, -30018, "connected to a different cluster")                           \
  XX(EPEER, -30019, "peer not allowed")                                              \
  XX(EBUSY, -30020, "no free reader slot")                                           \
  XX(EINVAL, -30021, "invalid argument")                                             \
  XX(ECLOSED, -30022, "handle or connection closed")                                 \
  XX(ESESSION, -30023, "session reference is stale (session destroyed or cleared)")  \
  XX(ETRUNCATED, -30024, "segment file is truncated")                                \
  XX(EEXIST, -30025, "segment already exists and is owned by a live agent")         \
  XX(ESTOPPED, -30026, "agent stopped serving")                                      \
  XX(ECANCELED, -30027, "operation canceled") \
  XX(EFORKED, -30028, "handle was opened by the parent process; call hzshm_open again after fork") \
  XX(ECHANGED, -30029, "viewed value changed while it was viewed; discard what was read") \
  XX(EUNTRUSTED, -30030, "segment file or agent socket of an untrusted owner (see HZSHM_AGENT_UID)")

typedef enum {
#define HZSHM__ERR_ENUM(name, value, text) HZSHM_##name = (value),
  HZSHM_ERRNO_MAP(HZSHM__ERR_ENUM)
#undef HZSHM__ERR_ENUM
  HZSHM__ERR_MIN = -30999 /* project codes lie in [-30999, -30001] */
} hzshm_errno_t;

#endif /* HZSHM_ERRNO_H */
