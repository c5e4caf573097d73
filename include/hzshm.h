/* hzshm.h - public API of libhzshm, the per-host shared-memory near-cache in
 * front of Hazelcast.
 *
 * Error convention: every call that can fail returns int; 0 is success, a
 * negative errno is a failed system call, HZSHM_E* (hzshm_errno.h) is ours.
 * hzshm_strerror() turns any of them into text.
 */
#ifndef HZSHM_H
#define HZSHM_H

#include <stddef.h>
#include <stdint.h>

#include "hzshm_errno.h"
#include "hzshm_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HZSHM_BUILDING) && defined(__GNUC__)
#define HZSHM_EXTERN __attribute__((visibility("default")))
#else
#define HZSHM_EXTERN /* nothing */
#endif

/* Text for any return code of this library (0, -errno or HZSHM_E*). Never NULL;
 * the string is static. Safe from any thread and process. */
HZSHM_EXTERN const char *hzshm_strerror(int err);

/* The symbolic name ("HZSHM_ENOTFOUND", "ENOENT", "OK", ...). Never NULL. */
HZSHM_EXTERN const char *hzshm_err_name(int err);

/* ==== Store API (libhzshm, src/lib) ======================================
 *
 * A per-host near-cache of Hazelcast IMaps. A *cache* (hzshm_t) is opened by
 * name: the name of the shared-memory segment that the host's hzshm-agent
 * created (hzshm-agent -n NAME). A *session* (hzshm_session_t) is one IMap,
 * named by the session id (with the optional prefix of hzshm_opts_t).
 * get/has hits are served from shared memory without a lock or a syscall;
 * misses and set/del/destroy go to the agent over a Unix socket, and the
 * agent writes through to Hazelcast.
 *
 * Keys are Hazelcast Strings: the caller passes UTF-8 bytes, which must be
 * valid UTF-8 (checked; HZSHM_EINVAL otherwise). Values are byte[]
 * (HZSHM_TYPE_BYTES) or String (HZSHM_TYPE_STRING, as UTF-8). hzshm_set stores
 * a byte[]; hzshm_set_typed either. hzshm_get / hzshm_get_view return a String
 * value as its UTF-8 bytes, without saying so; the *_typed variants also report
 * the type. A value of any other type gives HZSHM_ETYPE.
 *
 * Limits (checked before anything is sent; nothing changes on failure):
 *   key         1..HZSHM_KEY_MAX (1024) bytes       empty -> HZSHM_EEMPTY, over -> HZSHM_ETOOBIG
 *   session id  1..HZSHM_SESSION_MAX (255) bytes, prefix included, valid UTF-8,
 *               no NUL byte                          empty -> HZSHM_EEMPTY, else HZSHM_EBADSESSION
 *               (over the limit -> HZSHM_ETOOBIG)
 *   value       0..HZSHM_VALUE_MAX (1 MiB) bytes     over -> HZSHM_ETOOBIG
 *   Values larger than the segment's largest size class are stored and read
 *   through the agent but not cached.
 *
 * CAVEATS
 *  1. fork(): handles keep working in a child (a pre-fork worker pool that
 *     opened the cache before forking needs no call of its own). The first
 *     call on an inherited hzshm_t (or any of its sessions) in the child
 *     attaches the segment again for the child (its own reader slots) and
 *     uses its own agent connections; the parent's slots and connections are
 *     untouched, and closing inherited handles in the child does not affect
 *     the parent. If that re-attach fails (e.g. -ENOENT: the agent is gone),
 *     the call returns its error and the next call tries again. Detection
 *     costs no syscall (a pthread_atfork child handler bumps a process-wide
 *     counter). A view (hzshm_get_view) does not survive fork(). HZSHM_EFORKED
 *     is no longer returned.
 *  2. Crashed readers: a process that dies, even in the middle of a read, is
 *     detected by the agent (its reader slot is reaped), so reclamation never
 *     stalls for it. A thread that holds a view (hzshm_get_view) holds back
 *     reclamation of the whole segment until hzshm_view_release(): keep views short.
 *  3. Fail closed: when the agent's heartbeat is older than its bound (the
 *     agent's --stale-ms, default 1 s; agent killed or hung) hits report HZSHM_ESTALE; when the agent has
 *     lost the cluster they report HZSHM_EDISCONNECTED. Neither serves a value
 *     that might be stale without bound. A restarted agent reuses the same
 *     segment, and open handles resume once it serves again. If the agent
 *     had to recreate the segment (another layout version), open handles keep
 *     reporting HZSHM_ESTALE: close and hzshm_open again.
 *  4. Sizing: the segment's memory budget is the agent's --memory; when it is
 *     full the agent evicts (SIEVE). A cache miss is a round trip to the agent
 *     (~30 us) plus one to the cluster.
 *  5. Read-your-writes: a successful set/del/destroy has been acknowledged by
 *     the cluster and applied to this host's segment before it returns, so any
 *     later get on this host (any process) sees it or something newer.
 *     Another host sees it once the invalidation event arrives there.
 *
 * CONCURRENCY
 *  | call                         | threads of one process            | processes |
 *  | hzshm_open / hzshm_close     | close: no other call on h running | any        |
 *  | session_open / session_close | any / no other call on s running  | -          |
 *  | get, get_view, has           | any, on shared h and s            | any        |
 *  | set, del, destroy, stats     | any, on shared h and s            | any        |
 *  Agent requests use a small pool of connections (hzshm_opts_t.connections,
 *  each under its own mutex, one request in flight per connection).
 */

/* Limits: the one definition (the segment, the agent and the local protocol
 * use these too). Not overridable: the segment's format depends on them. */
#define HZSHM_VALUE_MAX (1u << 20) /* value bytes */
#define HZSHM_KEY_MAX 1024         /* key bytes (UTF-8 of a Hazelcast String) */
#define HZSHM_SESSION_MAX 255      /* session id bytes (prefix included: a Hazelcast map name) */

/* Hazelcast serializer type ids of the value types libhzshm reads and writes. */
#define HZSHM_TYPE_BYTES (-12)  /* byte[] */
#define HZSHM_TYPE_STRING (-11) /* String, carried as UTF-8 */

typedef struct hzshm hzshm_t;
typedef struct hzshm_session hzshm_session_t;

typedef struct {
  const char *prefix;      /* prepended to every session id to form the IMap name; NULL = none */
  uint32_t timeout_ms;     /* per agent request; 0 = 15000 */
  uint32_t connections;    /* agent connection pool size; 0 = 4 (max 64) */
} hzshm_opts_t;

/* Attaches to the cache NAME (the agent's -n NAME) and finds its agent.
 *   name  1..64 chars of [A-Za-z0-9_.-], not starting with "." and with no
 *         dot-separated part "rd" or "lock" after the first (another
 *         segment's files): HZSHM_EINVAL
 *   opts  NULL = defaults
 * Trust: the segment file is used only if its owner is this process's
 * effective uid, root, or the agent's uid given by the environment variable
 * HZSHM_AGENT_UID (a number or a user name; for an agent under a dedicated
 * uid, e.g. the packaged service's "hzshm"), and nobody else may write it;
 * the same holds for the agent socket's peer (SO_PEERCRED) when a request
 * connects: HZSHM_EUNTRUSTED otherwise (from hzshm_open, or from the call
 * that needed the agent; nothing is sent to or read from such a peer).
 * Returns 0 and *out; -ENOENT (no such cache: is the agent running?),
 * -EACCES, HZSHM_EUNTRUSTED, HZSHM_EVERSION (segment of another layout),
 * HZSHM_ECORRUPT, HZSHM_ETRUNCATED, HZSHM_EINVAL (bad name/opts, bad
 * HZSHM_AGENT_UID), HZSHM_ETOOBIG (prefix), -ENOMEM. Does not contact the
 * agent (connections are made lazily).
 * Thread/process safe. */
HZSHM_EXTERN int hzshm_open(const char *name, const hzshm_opts_t *opts, hzshm_t **out);

/* Closes connections and releases this process's reader slots. Every session
 * handle of h must be closed first. NULL is allowed. */
HZSHM_EXTERN void hzshm_close(hzshm_t *h);

/* A session handle for the IMap prefix+sid. Validates the id (see limits):
 * HZSHM_EEMPTY, HZSHM_EBADSESSION, HZSHM_ETOOBIG, -ENOMEM.
 * Contacts nobody. Thread-safe. */
HZSHM_EXTERN int hzshm_session_open(hzshm_t *h, const char *sid, size_t len, hzshm_session_t **out);
HZSHM_EXTERN void hzshm_session_close(hzshm_session_t *s);

/* Reads key into buf (copies).
 *   0                value found; *vlen = its length (copied into buf)
 *   HZSHM_ENOTFOUND  no such key in the cluster
 *   HZSHM_EBUFSIZE   cap < value length; *vlen = needed size; buf untouched
 *   HZSHM_ETYPE      the value is neither byte[] nor String; *vlen = the
 *                    Hazelcast type id (as a positive size_t of the int32 bits)
 *   HZSHM_ESTALE / HZSHM_EDISCONNECTED / HZSHM_ESTOPPED   failing closed
 *   HZSHM_EAGENT     agent not reachable; HZSHM_EUNTRUSTED (its socket's peer is not
 *                    a trusted uid: see hzshm_open); HZSHM_ETIMEDOUT; HZSHM_EREMOTE
 *   HZSHM_EEMPTY / HZSHM_ETOOBIG / HZSHM_EINVAL (bad key); in a fork child the re-attach's error (caveat 1)
 * A hit costs no lock and no syscall. Thread-safe; the value returned is the
 * latest this host has seen acknowledged or invalidated (see caveat 5). */
HZSHM_EXTERN int hzshm_get(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap,
                           size_t *vlen);

/* Zero-copy read: on 0, *val points into shared memory and stays valid until
 * the same thread calls hzshm_view_release(s). Views nest. Same codes as
 * hzshm_get, plus HZSHM_EMISS when the value cannot be viewed in shared memory
 * (not cacheable, or invalidated again right after the fill): use hzshm_get.
 * Release exactly once per successful view, on the same thread. */
HZSHM_EXTERN int hzshm_get_view(hzshm_session_t *s, const void *key, size_t klen, const void **val,
                                size_t *vlen);
/* 0: the view showed the published value throughout. HZSHM_ECHANGED: the
 * entry was reused while viewed (only possible if the segment's reclamation
 * failed): discard what was read from the view. */
HZSHM_EXTERN int hzshm_view_release(hzshm_session_t *s);

/* The same three reads, also reporting the value's type: on 0 (and on
 * HZSHM_EBUFSIZE for hzshm_get_typed) *type = HZSHM_TYPE_BYTES or
 * HZSHM_TYPE_STRING; on HZSHM_ETYPE *type = the unsupported type id (and
 * *vlen as above). type must not be NULL (HZSHM_EINVAL). */
HZSHM_EXTERN int hzshm_get_typed(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap,
                                 size_t *vlen, int32_t *type);
HZSHM_EXTERN int hzshm_get_view_typed(hzshm_session_t *s, const void *key, size_t klen, const void **val,
                                      size_t *vlen, int32_t *type);
HZSHM_EXTERN int hzshm_get_view_local_typed(hzshm_session_t *s, const void *key, size_t klen, const void **val,
                                            size_t *vlen, int32_t *type);

/* hzshm_get_view answered from this host's segment only: never contacts the
 * agent, never blocks. 0 (a view, release it as above), HZSHM_ENOTFOUND
 * (cached absence), HZSHM_EMISS (not answerable here: ask hzshm_get /
 * hzshm_get_view), failing-closed codes, key codes. For callers
 * that hold a lock they must not keep across a round trip (a language
 * runtime's interpreter lock: the Python binding keeps the GIL on a hit and
 * drops it only for the agent). */
HZSHM_EXTERN int hzshm_get_view_local(hzshm_session_t *s, const void *key, size_t klen, const void **val,
                                      size_t *vlen);

/* 0 if the key exists, HZSHM_ENOTFOUND if not; other codes as hzshm_get.
 * Served from the cache including cached absence. */
HZSHM_EXTERN int hzshm_has(hzshm_session_t *s, const void *key, size_t klen);

/* Writes key = val through to Hazelcast (IMap.set), then into this host's
 * cache, then returns. ttl_ms: -1 map default, 0 infinite, > 0 milliseconds.
 * 0, HZSHM_EAGENT, HZSHM_ETIMEDOUT, HZSHM_EREMOTE, HZSHM_EDISCONNECTED,
 * limit codes. On failure the cluster may or may not have
 * applied the write (timeout), but this host's cache never holds a value the
 * cluster did not acknowledge. */
HZSHM_EXTERN int hzshm_set(hzshm_session_t *s, const void *key, size_t klen, const void *val, size_t vlen);
HZSHM_EXTERN int hzshm_set_ttl(hzshm_session_t *s, const void *key, size_t klen, const void *val, size_t vlen,
                               int64_t ttl_ms);

/* hzshm_set_ttl with the value's type: HZSHM_TYPE_BYTES (= hzshm_set_ttl) or
 * HZSHM_TYPE_STRING (val must be valid UTF-8); anything else, or invalid
 * UTF-8 for a String: HZSHM_EINVAL, nothing sent. The cluster then holds a
 * java.lang.String that every Hazelcast client reads as its native string. */
HZSHM_EXTERN int hzshm_set_typed(hzshm_session_t *s, const void *key, size_t klen, int32_t type, const void *val,
                                 size_t vlen, int64_t ttl_ms);

/* Deletes key (IMap.delete): 0 whether or not it existed. Codes as hzshm_set. */
HZSHM_EXTERN int hzshm_del(hzshm_session_t *s, const void *key, size_t klen);

/* Destroys the whole IMap cluster-wide, purges it here; other hosts purge it
 * on the destroy event. The handle stays usable (the session then reads empty). */
HZSHM_EXTERN int hzshm_destroy(hzshm_session_t *s);

typedef struct {
  uint64_t hits, misses, entries, sessions;
  uint64_t memory_used, memory_limit;
  uint64_t evictions;
  uint32_t readers;
  int32_t agent_pid;
  int32_t agent_state;          /* hzshm_agent_state (below) */
  int32_t cluster_state;        /* hzshm_cluster_state (below) */
  uint64_t heartbeat_age_ms;
  uint64_t invalidations;       /* applied by the agent */
  uint64_t last_inval_lag_us;
  uint64_t listeners;           /* sessions with an invalidation listener */
  uint64_t remote_gets, coalesced_misses, fills_dropped, stale_marks;
  uint64_t agent_requests, bad_requests;
  uint64_t unwatched_partitions; /* partitions not cached now: no connection to their owner with our listeners */
  uint64_t stale_after_ms;      /* readers fail closed past this heartbeat age (the agent's --stale-ms) */
  uint64_t uncacheable_values;  /* values read or written but too large for a slab: never cached */
  uint64_t expirations;         /* entries whose local lifetime ended (--max-ttl-ms, TTL) */
  uint64_t slot_busy;           /* this handle: lookups sent to the agent for want of a free reader slot */
} hzshm_stats_t;
/* hzshm_stats_t.agent_state. */
enum hzshm_agent_state {
  HZSHM_AGENT_SERVING = 0,
  HZSHM_AGENT_DISCONNECTED = 1,
  HZSHM_AGENT_STOPPED = 2,
  HZSHM_AGENT_DEAD = 3, /* heartbeat older than stale_after_ms: the agent was killed or hangs */
};
/* hzshm_stats_t.cluster_state: the agent's connection to its cluster. */
enum hzshm_cluster_state {
  HZSHM_CLUSTER_UNKNOWN = -1, /* agent dead: what it last published is not the truth */
  HZSHM_CLUSTER_CONNECTING = 0,
  HZSHM_CLUSTER_CONNECTED = 1,
  HZSHM_CLUSTER_DISCONNECTED = 2,
  HZSHM_CLUSTER_STOPPED = 3,
};
/* Figures of the cache (read from shared memory; no agent round trip). */
HZSHM_EXTERN int hzshm_stats(hzshm_t *h, hzshm_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* HZSHM_H */
