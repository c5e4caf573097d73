/* fake_server_ctl.h - start and watch tests/hz/fake_server from a C test.
 * Link the CMake target hzshm_fake_server_ctl (it builds fake_server too).
 *
 *   hzshm__fake_t *fs;
 *   CHECK_RC(hzshm__fake_start("truncated", NULL, &fs), 0);
 *   ... connect the client to 127.0.0.1:hzshm__fake_port(fs), issue a Get ...
 *   CHECK_RC(hzshm__fake_wait_log(fs, "fault truncated", 10000), 0);
 *   hzshm__fake_stop(fs);
 *
 * The fake's log lines (tests/interop/README.md, "Fake server") are kept in
 * order; hzshm__fake_wait_log() scans lines it has not yet matched, so waiting
 * for "conn 1 accepted" and then "conn 1 fault" works in sequence. With
 * timeout_ms 0 it only looks at what has already arrived (non-blocking: use it
 * from a libuv loop, or uv_poll hzshm__fake_log_fd()). Not thread-safe.
 */
#ifndef HZSHM_FAKE_SERVER_CTL_H
#define HZSHM_FAKE_SERVER_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "hzshm_errno.h"

typedef struct hzshm__fake hzshm__fake_t;

/* Starts `fake_server --port 0 --scenario scenario [extra...]` (extra: NULL-
 * terminated argv tail or NULL) and waits up to 10 s for its listening line.
 * The binary is $HZSHM_FAKE_SERVER or the one CMake built. HZSHM_EINVAL for an
 * unknown scenario (the fake exits 2), HZSHM_ECLOSED / HZSHM_ETIMEDOUT if it
 * did not come up. */
int hzshm__fake_start(const char *scenario, const char *const *extra, hzshm__fake_t **out);

uint16_t hzshm__fake_port(const hzshm__fake_t *fs);
int hzshm__fake_log_fd(const hzshm__fake_t *fs);

/* Waits for the next log line containing `needle`; copies it into line if
 * line != NULL. 0, HZSHM_ETIMEDOUT, HZSHM_ECLOSED. */
int hzshm__fake_wait_log(hzshm__fake_t *fs, const char *needle, int timeout_ms, char *line, size_t cap);

/* SIGTERM, reap (SIGKILL after 5 s), free. */
void hzshm__fake_stop(hzshm__fake_t *fs);

#endif /* HZSHM_FAKE_SERVER_CTL_H */
