/* child.c - spawn a child on pipes and read its stdout line by line with a
 * deadline. See child.h. Single-threaded; no shared state but the handle.
 */
#define _GNU_SOURCE /* pipe2 */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t hzshm__child_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hzshm__child_spawn(char *const argv[], hzshm__child_t *c) {
  int rc = 0;
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
  memset(c, 0, sizeof(*c));
  c->pid = -1;
  c->to_fd = c->from_fd = -1;
  if (argv == NULL || argv[0] == NULL) return HZSHM_EINVAL;
  signal(SIGPIPE, SIG_IGN); /* see child.h */
  c->buf = malloc(HZSHM__CHILD_LINE_MAX);
  if (c->buf == NULL) {
    rc = -ENOMEM;
    goto fail;
  }
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    rc = -errno;
    goto fail;
  }
  pid_t parent = getpid();
  c->pid = fork();
  if (c->pid < 0) {
    rc = -errno;
    goto fail;
  }
  if (c->pid == 0) {
    /* Child: die with the test (a test that exits early on a failed CHECK must not
     * leave a JVM or a fake server behind); if the test is already gone, go too.
     * stdin/stdout become the pipes (dup2 clears O_CLOEXEC), stderr stays. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
    if (dup2(in_pipe[0], 0) < 0 || dup2(out_pipe[1], 1) < 0) _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  c->to_fd = in_pipe[1];
  c->from_fd = out_pipe[0];
  return 0;
fail:
  for (int i = 0; i < 2; i++) {
    if (in_pipe[i] >= 0) close(in_pipe[i]);
    if (out_pipe[i] >= 0) close(out_pipe[i]);
  }
  free(c->buf);
  c->buf = NULL;
  return rc;
}

int hzshm__child_read_line(hzshm__child_t *c, int64_t deadline_ms, char *line, size_t cap) {
  for (;;) {
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl != NULL) {
      size_t n = (size_t)(nl - c->buf);
      int rc = 0;
      if (line != NULL && n + 1 > cap) {
        rc = HZSHM_EBUFSIZE;
      } else if (line != NULL) {
        memcpy(line, c->buf, n);
        line[n] = '\0';
      }
      c->len -= n + 1;
      memmove(c->buf, nl + 1, c->len);
      return rc;
    }
    if (c->len == HZSHM__CHILD_LINE_MAX) return HZSHM_EBUFSIZE;
    int64_t left = deadline_ms - hzshm__child_now_ms();
    if (left < 0) left = 0; /* one non-blocking look even when the deadline has passed */
    struct pollfd pfd = {.fd = c->from_fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return -errno;
    if (pr == 0) return HZSHM_ETIMEDOUT;
    ssize_t got = read(c->from_fd, c->buf + c->len, HZSHM__CHILD_LINE_MAX - c->len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -errno;
    if (got == 0) return HZSHM_ECLOSED;
    c->len += (size_t)got;
  }
}

int hzshm__child_write(hzshm__child_t *c, const char *s, size_t n) {
  if (c->to_fd < 0) return HZSHM_ECLOSED;
  while (n > 0) {
    ssize_t w = write(c->to_fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

int hzshm__child_stop(hzshm__child_t *c, int sig, int timeout_ms) {
  int64_t deadline = hzshm__child_now_ms() + timeout_ms;
  int status = 0, rc = 0;
  if (c->to_fd >= 0) close(c->to_fd);
  c->to_fd = -1;
  if (sig != 0) kill(c->pid, sig);
  /* Wait for the exit on a pidfd (readable once the child has exited); where
   * pidfds are missing, wake every 20 ms to look again until the deadline. */
  int pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
  for (;;) {
    pid_t w = waitpid(c->pid, &status, WNOHANG);
    if (w == c->pid) break;
    if (w < 0 && errno != EINTR) {
      rc = -errno;
      goto out;
    }
    int64_t left = deadline - hzshm__child_now_ms();
    if (left <= 0) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, &status, 0);
      rc = HZSHM_ETIMEDOUT;
      goto out;
    }
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    (void)poll(&pfd, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? (int)left : 20);
  }
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
  if (pidfd >= 0) close(pidfd);
  close(c->from_fd);
  c->from_fd = -1;
  free(c->buf);
  c->buf = NULL;
  return rc;
}
