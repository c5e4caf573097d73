/* check.h - the tiny test harness of the shm tests: CHECK aborts the test
 * process with file:line and the failed expression; CHECK_RC also prints the
 * symbolic names of the got/wanted return codes. */
#ifndef HZSHM_TEST_CHECK_H
#define HZSHM_TEST_CHECK_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include "hzshm.h"
#include "shm.h"

#include "../common/check.h"


#define RUN(fn)                                   \
  do {                                            \
    fprintf(stderr, "== %s\n", #fn);              \
    fn();                                         \
  } while (0)

static inline uint64_t t_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Poll `cond` until true or `ms` pass: a wait on a condition with a deadline. */
#define WAIT_UNTIL(cond, ms)                                                      \
  do {                                                                            \
    uint64_t dl_ = t_now_ns() + (uint64_t)(ms) * 1000000ull;                      \
    while (!(cond)) {                                                             \
      if (t_now_ns() > dl_) {                                                     \
        fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond); \
        exit(1);                                                                  \
      }                                                                           \
      struct timespec ts_ = {0, 200000};                                          \
      nanosleep(&ts_, NULL);                                                      \
    }                                                                             \
  } while (0)

/* In a forked test child: die with the test process, so a failed test never
 * leaves spinning children behind. */
static inline void t_child_dies_with_parent(void) { prctl(PR_SET_PDEATHSIG, SIGKILL); }

/* A segment name unique to this process and call. */
static inline const char *t_name(const char *tag) {
  static char buf[8][64];
  static int n;
  char *b = buf[n++ % 8];
  snprintf(b, 64, "t-%s-%d-%d", tag, (int)getpid(), n);
  return b;
}

/* Values used by the tests: [u32 sess][u32 key][u64 version][u32 len][payload][u64 checksum]. */
#define TV_HDR 20u
static inline uint64_t tv_sum(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static inline size_t tv_make(uint8_t *buf, uint32_t sess, uint32_t key, uint64_t ver, uint32_t len) {
  memcpy(buf, &sess, 4);
  memcpy(buf + 4, &key, 4);
  memcpy(buf + 8, &ver, 8);
  memcpy(buf + 16, &len, 4);
  for (uint32_t i = 0; i < len; i++) buf[TV_HDR + i] = (uint8_t)(key * 31u + ver * 7u + i);
  uint64_t c = tv_sum(buf, TV_HDR + len);
  memcpy(buf + TV_HDR + len, &c, 8);
  return TV_HDR + len + 8;
}
/* 0 = intact and of (sess, key); *ver gets the version. */
static inline int tv_check(const uint8_t *buf, size_t n, uint32_t sess, uint32_t key, uint64_t *ver) {
  uint32_t s, k, len;
  uint64_t c;
  if (n < TV_HDR + 8) return -1;
  memcpy(&s, buf, 4);
  memcpy(&k, buf + 4, 4);
  memcpy(ver, buf + 8, 8);
  memcpy(&len, buf + 16, 4);
  if ((size_t)len + TV_HDR + 8 != n) return -2;
  memcpy(&c, buf + TV_HDR + len, 8);
  if (c != tv_sum(buf, TV_HDR + len)) return -3;
  if (s != sess || k != key) return -4;
  return 0;
}
#endif
