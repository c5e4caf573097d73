/* peer.c - spawn HzPeer (the official Java client) and talk to it over pipes.
 * See peer.h. Single-threaded helper: no shared state besides the handle.
 *
 * Reply accounting: every command sent expects exactly one reply line. When a
 * read times out the reply is still owed; `owed` counts such late replies and
 * the next command first reads and drops them (under its own deadline), so
 * replies never get matched to the wrong command.
 */
#define _GNU_SOURCE /* pipe2 */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PEER_LINE_MAX (1u << 20) /* 64 KiB values are 128 KiB of hex; leave room */

struct hzshm__peer {
  pid_t pid;
  int to_fd;    /* write end: the peer's stdin */
  int from_fd;  /* read end: the peer's stdout */
  char *buf;    /* bytes read but not yet consumed as lines */
  size_t len;
  unsigned owed; /* replies still due for timed-out commands */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hzshm__peer_hex(const void *data, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *d = data;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[2 * len] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long hzshm__peer_unhex(const char *hex, size_t hexlen, void *out, size_t cap) {
  if (hexlen % 2 != 0) return HZSHM_EPROTO;
  if (hexlen / 2 > cap) return HZSHM_EBUFSIZE;
  unsigned char *o = out;
  for (size_t i = 0; i < hexlen / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return HZSHM_EPROTO;
    o[i] = (unsigned char)(hi << 4 | lo);
  }
  return (long)(hexlen / 2);
}

/* Reads one line (without '\n') into reply before deadline. */
static int read_line(hzshm__peer_t *p, int64_t deadline, char *reply, size_t cap) {
  for (;;) {
    char *nl = memchr(p->buf, '\n', p->len);
    if (nl != NULL) {
      size_t n = (size_t)(nl - p->buf);
      int rc = 0;
      if (reply != NULL) {
        if (n + 1 > cap) {
          rc = HZSHM_EBUFSIZE;
        } else {
          memcpy(reply, p->buf, n);
          reply[n] = '\0';
        }
      }
      p->len -= n + 1;
      memmove(p->buf, nl + 1, p->len);
      return rc;
    }
    if (p->len == PEER_LINE_MAX) return HZSHM_EBUFSIZE;
    int64_t left = deadline - now_ms();
    if (left <= 0) return HZSHM_ETIMEDOUT;
    struct pollfd pfd = {.fd = p->from_fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return -errno;
    if (pr == 0) return HZSHM_ETIMEDOUT;
    ssize_t got = read(p->from_fd, p->buf + p->len, PEER_LINE_MAX - p->len);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -errno;
    if (got == 0) return HZSHM_ECLOSED;
    p->len += (size_t)got;
  }
}

static int write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

static const char *launcher(void) {
  const char *env = getenv("HZSHM_PEER");
  if (env != NULL && env[0] != '\0') return env;
#ifdef HZSHM_PEER_LAUNCHER
  return HZSHM_PEER_LAUNCHER;
#else
  return NULL;
#endif
}

int hzshm__peer_start(const char *members, const char *cluster, int timeout_ms, hzshm__peer_t **out) {
  int rc = 0;
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1};
  hzshm__peer_t *p = NULL;
  const char *exe = launcher();
  *out = NULL;
  if (members == NULL || exe == NULL) return HZSHM_EINVAL;
  signal(SIGPIPE, SIG_IGN); /* caveat 1 in peer.h */
  p = calloc(1, sizeof(*p));
  if (p == NULL || (p->buf = malloc(PEER_LINE_MAX)) == NULL) {
    rc = -ENOMEM;
    goto fail;
  }
  p->pid = -1;
  if (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0) {
    rc = -errno;
    goto fail;
  }
  p->pid = fork();
  if (p->pid < 0) {
    rc = -errno;
    goto fail;
  }
  if (p->pid == 0) {
    /* Child: stdin/stdout are the pipes (dup2 clears O_CLOEXEC), stderr stays. */
    if (dup2(in_pipe[0], 0) < 0 || dup2(out_pipe[1], 1) < 0) _exit(127);
    execl(exe, exe, "--members", members, "--cluster", cluster ? cluster : "hzshm", "serve", (char *)NULL);
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  in_pipe[0] = out_pipe[1] = -1;
  p->to_fd = in_pipe[1];
  p->from_fd = out_pipe[0];
  char line[256];
  rc = read_line(p, now_ms() + timeout_ms, line, sizeof(line));
  if (rc == 0 && strcmp(line, "ok ready") != 0) rc = HZSHM_EPROTO;
  if (rc != 0) goto fail_started;
  *out = p;
  return 0;

fail_started:
  /* The child owns no resources of ours; kill and reap it, close our ends. */
  kill(p->pid, SIGKILL);
  waitpid(p->pid, NULL, 0);
  close(p->to_fd);
  close(p->from_fd);
  free(p->buf);
  free(p);
  return rc;
fail:
  for (int i = 0; i < 2; i++) {
    if (in_pipe[i] >= 0) close(in_pipe[i]);
    if (out_pipe[i] >= 0) close(out_pipe[i]);
  }
  if (p != NULL) free(p->buf);
  free(p);
  return rc;
}

static int vcmd(hzshm__peer_t *p, int timeout_ms, char *reply, size_t cap, const char *fmt, va_list ap) {
  int64_t deadline = now_ms() + timeout_ms;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return HZSHM_EINVAL;
  char *msg = malloc((size_t)n + 2);
  if (msg == NULL) return -ENOMEM;
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  int rc = 0;
  if (memchr(msg, '\n', (size_t)n) != NULL) {
    rc = HZSHM_EINVAL; /* one command per line: an embedded newline would desynchronize replies */
    goto out;
  }
  msg[n] = '\n';
  rc = write_all(p->to_fd, msg, (size_t)n + 1);
  if (rc != 0) goto out;
  p->owed++;
  while (p->owed > 1) { /* drop replies of earlier timed-out commands */
    rc = read_line(p, deadline, NULL, 0);
    if (rc != 0 && rc != HZSHM_EBUFSIZE) goto out;
    p->owed--;
  }
  rc = read_line(p, deadline, reply, cap);
  if (rc == HZSHM_ETIMEDOUT || rc == HZSHM_ECLOSED || rc < 0) goto out;
  p->owed--;
  if (rc != 0) goto out;
  if (strncmp(reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' '))
    rc = 0;
  else if (strcmp(reply, "null") == 0)
    rc = HZSHM_ENOTFOUND;
  else if (strncmp(reply, "err", 3) == 0)
    rc = HZSHM_EREMOTE;
  else
    rc = HZSHM_EPROTO;
out:
  free(msg);
  return rc;
}

int hzshm__peer_cmd(hzshm__peer_t *p, int timeout_ms, char *reply, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vcmd(p, timeout_ms, reply, cap, fmt, ap);
  va_end(ap);
  return rc;
}

#define PEER_TIMEOUT_MS 30000

/* Formats key as x:HEX into a malloc'd string (the caller frees). */
static char *key_token(const void *key, size_t klen) {
  char *t = malloc(2 * klen + 3);
  if (t == NULL) return NULL;
  memcpy(t, "x:", 2);
  hzshm__peer_hex(key, klen, t + 2);
  return t;
}

int hzshm__peer_set(hzshm__peer_t *p, const char *map, const void *key, size_t klen, const void *val,
                    size_t vlen) {
  char reply[256];
  char *k = key_token(key, klen), *v = malloc(2 * vlen + 2);
  int rc = -ENOMEM;
  if (k == NULL || v == NULL) goto out;
  if (vlen == 0)
    strcpy(v, "-");
  else
    hzshm__peer_hex(val, vlen, v);
  rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, sizeof(reply), "set %s %s %s", map, k, v);
out:
  free(k);
  free(v);
  return rc;
}

int hzshm__peer_get(hzshm__peer_t *p, const char *map, const void *key, size_t klen, void *buf, size_t cap,
                    size_t *vlen) {
  char *k = key_token(key, klen), *reply = malloc(PEER_LINE_MAX);
  int rc = -ENOMEM;
  if (k == NULL || reply == NULL) goto out;
  rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, PEER_LINE_MAX, "get %s %s", map, k);
  if (rc != 0) goto out;
  /* "ok HEX" ("ok " + nothing for an empty array is printed as "ok ") */
  const char *hex = reply[2] == ' ' ? reply + 3 : reply + 2;
  size_t hexlen = strlen(hex);
  if (hexlen % 2 != 0) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  *vlen = hexlen / 2;
  long n = hzshm__peer_unhex(hex, hexlen, buf, cap);
  rc = n < 0 ? (int)n : 0;
out:
  free(k);
  free(reply);
  return rc;
}

int hzshm__peer_delete(hzshm__peer_t *p, const char *map, const void *key, size_t klen) {
  char reply[256];
  char *k = key_token(key, klen);
  if (k == NULL) return -ENOMEM;
  int rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, sizeof(reply), "delete %s %s", map, k);
  free(k);
  return rc;
}

int hzshm__peer_contains(hzshm__peer_t *p, const char *map, const void *key, size_t klen, int *has) {
  char reply[256];
  char *k = key_token(key, klen);
  if (k == NULL) return -ENOMEM;
  int rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, sizeof(reply), "containsKey %s %s", map, k);
  free(k);
  if (rc != 0) return rc;
  if (strcmp(reply, "ok true") == 0)
    *has = 1;
  else if (strcmp(reply, "ok false") == 0)
    *has = 0;
  else
    return HZSHM_EPROTO;
  return 0;
}

pid_t hzshm__peer_pid(const hzshm__peer_t *p) { return p->pid; }

int hzshm__peer_stop(hzshm__peer_t *p, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  int status = 0, rc = 0;
  (void)write_all(p->to_fd, "quit\n", 5); /* a dead peer gives -EPIPE; the wait below still reaps it */
  close(p->to_fd);
  /* Wait for the exit on a pidfd (readable once the child has exited); where
   * pidfds are missing, poll nothing with a 20 ms period until the deadline. */
  int pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
  for (;;) {
    pid_t w = waitpid(p->pid, &status, WNOHANG);
    if (w == p->pid) break;
    if (w < 0 && errno != EINTR) {
      rc = -errno;
      goto out;
    }
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      kill(p->pid, SIGKILL);
      waitpid(p->pid, &status, 0);
      rc = HZSHM_ETIMEDOUT;
      goto out;
    }
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    (void)poll(&pfd, pidfd >= 0 ? 1 : 0, pidfd >= 0 ? (int)left : 20);
  }
  rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
out:
  if (pidfd >= 0) close(pidfd);
  close(p->from_fd);
  free(p->buf);
  free(p);
  return rc;
}
