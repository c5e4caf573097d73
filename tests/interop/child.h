/* child.h - a child process with its stdin and stdout on pipes, read line by
 * line with a deadline. The test-side plumbing shared by peer.h (HzPeer) and
 * tests/hz/fake_server_ctl.h (the fake member).
 *
 * Not thread-safe (one thread per handle). hzshm__child_spawn() sets SIGPIPE
 * to SIG_IGN for the whole process so that writing to a dead child returns
 * -EPIPE instead of killing the test. The child's stderr is inherited. The
 * child gets SIGTERM when the spawning thread exits (PR_SET_PDEATHSIG), so a
 * test that dies early leaves no peer or fake server running.
 *
 * Errors: HZSHM_ETIMEDOUT (deadline passed, no full line), HZSHM_ECLOSED (the
 * child closed its stdout / exited), HZSHM_EBUFSIZE (line longer than the
 * caller's buffer: the line is consumed), HZSHM_EINVAL, or -errno.
 */
#ifndef HZSHM_INTEROP_CHILD_H
#define HZSHM_INTEROP_CHILD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hzshm_errno.h"

#define HZSHM__CHILD_LINE_MAX (1u << 20) /* longest line kept; longer ones fail with HZSHM_EBUFSIZE */

typedef struct hzshm__child {
  pid_t pid;
  int to_fd;   /* the child's stdin (write end), -1 once closed */
  int from_fd; /* the child's stdout (read end) */
  char *buf;   /* bytes read but not consumed as lines */
  size_t len;
} hzshm__child_t;

/* Monotonic clock in milliseconds, for deadlines. */
int64_t hzshm__child_now_ms(void);

/* Starts argv[0] (a path) with argv; stdin/stdout become pipes. */
int hzshm__child_spawn(char *const argv[], hzshm__child_t *c);

/* Reads one line (without '\n') into line (NUL-terminated) before deadline_ms
 * (hzshm__child_now_ms() scale). line may be NULL to drop the line. */
int hzshm__child_read_line(hzshm__child_t *c, int64_t deadline_ms, char *line, size_t cap);

/* Writes all of s (n bytes) to the child's stdin. */
int hzshm__child_write(hzshm__child_t *c, const char *s, size_t n);

/* Sends sig (0 = none: just close stdin and wait), waits up to timeout_ms for
 * the exit, SIGKILLs after that; closes the pipes and frees the buffer.
 * Returns the exit status, 128 + signal number, or HZSHM_ETIMEDOUT when it had
 * to be killed. */
int hzshm__child_stop(hzshm__child_t *c, int sig, int timeout_ms);

#endif /* HZSHM_INTEROP_CHILD_H */
