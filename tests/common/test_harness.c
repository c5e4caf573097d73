/* test_harness.c - the harness itself (check.h, runner.c). `ops` must pass:
 * every value check over mixed kinds where it holds. The other cases must
 * fail, each alone and without hiding the next: a value check (a NaN is equal
 * to nothing), a NULL string, a byte difference, a crash, an exit(0) in the
 * middle of a case and a hang past the deadline. The ctest harness_fails runs
 * them and matches the summary that names all six. */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "runner.h"

TEST_CASE(ops) {
  int neg = -1;
  unsigned u = 3;
  uint64_t big = UINT64_MAX;
  double d = 2.5, nan_ = NAN;
  char arr[4];
  char *p = arr;
  CHECK_EQ(u, 3);
  CHECK_NE(u, 4);
  CHECK_LT(neg, 0);
  CHECK_GT(big, 0);
  CHECK_GE(big, UINT64_MAX);
  CHECK_LT(neg, big); /* by value: -1 < 2^64-1 */
  CHECK_LE(d, 2.5);
  CHECK_GT(d, 2);
  CHECK_NE(nan_, nan_);
  CHECK_EQ(p, arr);
  CHECK_LT(p, arr + 1);
  CHECK_EQ((uint8_t)200, 200);
  CHECK_EQ('a', 97);
  CHECK_STREQ("ab", "ab");
  CHECK_STREQ(NULL, NULL);
  CHECK_MEMEQ("abc", "abd", 2);
  CHECK_RC(HZSHM_EINVAL, HZSHM_EINVAL);
}

TEST_CASE(fail_nan) {
  double n = NAN;
  CHECK_EQ(n, n);
}

TEST_CASE(fail_streq_null) {
  const char *a = NULL;
  CHECK_STREQ(a, "x");
}

TEST_CASE(fail_memeq) { CHECK_MEMEQ("abcdefgh", "abcdXfgh", 8); }

TEST_CASE(fail_crash) { raise(SIGSEGV); }

TEST_CASE(fail_exit0) { exit(0); }

TEST_CASE(fail_hang) {
  for (;;) pause();
}
