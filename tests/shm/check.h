/* check.h - helpers of the shm tests on top of the common harness
 * (tests/common/check.h, runner.h): deadlines, forked-child hygiene, unique
 * segment names. */
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

#include "../common/runner.h"

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

/* fork() with shm/'s fork steps around it, as libhzshm's atfork handler
 * runs them (shm/ registers no handler of its own, shm.h): in the child every
 * inherited handle is marked forked (HZSHM_ECLOSED) and drops its
 * descriptors. */
static inline pid_t t_fork(void) { return hzshm__shm_fork(); }

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

#include "../common/tv.h"
#endif
