/* peer.h - drive the official Hazelcast Java client (tests/interop/HzPeer.java)
 * from C tests: spawn `hzpeer --members ... serve` and exchange one command
 * line for one reply line over pipes, with a deadline on every read.
 *
 * Use it to check byte compatibility with the official client: write with our
 * C client, read with the peer (and the other way round), or to cause remote
 * writes whose invalidations the agent must apply.
 *
 * Caveats:
 *  1. hzshm__peer_start() sets SIGPIPE to SIG_IGN for the whole process, so a
 *     dead peer is reported as -EPIPE instead of killing the test.
 *  2. A peer is a JVM (~0.5-1 s to start, up to 256 MiB heap): start one per
 *     test and reuse it; the serve loop answers in order.
 *  3. Not thread-safe: one thread per peer handle.
 *  4. Keys are passed as "x:HEX" (any bytes, taken as the UTF-8 of a Java String);
 *     values are byte[] (hex on the wire of the pipe).
 *
 * Errors: 0, HZSHM_ENOTFOUND (absent), HZSHM_EREMOTE (the peer answered "err";
 * the line is in the reply buffer), HZSHM_ETIMEDOUT (no reply in time: the
 * late reply is discarded before the next command's), HZSHM_ECLOSED (the peer
 * exited or closed stdout), HZSHM_EBUFSIZE, HZSHM_EPROTO (unparsable reply),
 * HZSHM_EINVAL, or -errno.
 */
#ifndef HZSHM_INTEROP_PEER_H
#define HZSHM_INTEROP_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hzshm_errno.h"

typedef struct hzshm__peer hzshm__peer_t;

/* Spawns the peer (launcher from $HZSHM_PEER, else the one built by CMake,
 * HZSHM_PEER_LAUNCHER) connected to `members` ("127.0.0.1:5721,...") of
 * cluster `cluster` (NULL = "dev"), and waits up to timeout_ms for its
 * "ok ready" line. On failure the child is killed and reaped. */
int hzshm__peer_start(const char *members, const char *cluster, int timeout_ms, hzshm__peer_t **out);

/* Sends one command line (printf format, no newline) and reads the reply line
 * into reply (NUL-terminated, without the newline). Returns 0 when the reply
 * starts with "ok", HZSHM_ENOTFOUND for "null", HZSHM_EREMOTE for "err ...". */
int hzshm__peer_cmd(hzshm__peer_t *p, int timeout_ms, char *reply, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Convenience wrappers over hzshm__peer_cmd with a 30 s deadline. */
int hzshm__peer_set(hzshm__peer_t *p, const char *map, const void *key, size_t klen, const void *val,
                    size_t vlen);
/* Reads the byte[] value of key into buf; *vlen gets its length (also when the
 * buffer is too small: then HZSHM_EBUFSIZE). */
int hzshm__peer_get(hzshm__peer_t *p, const char *map, const void *key, size_t klen, void *buf, size_t cap,
                    size_t *vlen);
int hzshm__peer_delete(hzshm__peer_t *p, const char *map, const void *key, size_t klen);
/* *has = 1 or 0. */
int hzshm__peer_contains(hzshm__peer_t *p, const char *map, const void *key, size_t klen, int *has);

pid_t hzshm__peer_pid(const hzshm__peer_t *p);

/* Sends "quit", waits up to timeout_ms for the exit, then SIGKILLs; frees p.
 * Returns the peer's exit status (0 on a clean quit) or a negative code. */
int hzshm__peer_stop(hzshm__peer_t *p, int timeout_ms);

/* Hex helpers shared with the tests: hex encodes 2*len chars + NUL into out. */
void hzshm__peer_hex(const void *data, size_t len, char *out);
/* Decodes hex into out (cap bytes); returns the byte count or HZSHM_EPROTO / HZSHM_EBUFSIZE. */
long hzshm__peer_unhex(const char *hex, size_t hexlen, void *out, size_t cap);

#endif /* HZSHM_INTEROP_PEER_H */
