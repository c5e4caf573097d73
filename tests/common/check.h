/* check.h - the one assertion harness of every C test: CHECK stops the test
 * process with file:line and the failed expression; CHECK_RC also prints the
 * symbolic names (hzshm_err_name) of the return code got and the one wanted.
 * A failed check exits 1, which ctest reports as a failed test. */
#ifndef HZSHM_TESTS_COMMON_CHECK_H
#define HZSHM_TESTS_COMMON_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "hzshm.h"

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

#define CHECK_RC(expr, want)                                                            \
  do {                                                                                  \
    int chk_rc_ = (expr), chk_want_ = (want);                                           \
    if (chk_rc_ != chk_want_) {                                                         \
      fprintf(stderr, "%s:%d: %s = %s (%d), want %s (%d)\n", __FILE__, __LINE__, #expr, \
              hzshm_err_name(chk_rc_), chk_rc_, hzshm_err_name(chk_want_), chk_want_);  \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

#endif /* HZSHM_TESTS_COMMON_CHECK_H */
