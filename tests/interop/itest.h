/* itest.h - assertions for the interop C tests: count failures and go on, so
 * one run reports every broken check; main returns itest_failures != 0. */
#ifndef HZSHM_INTEROP_ITEST_H
#define HZSHM_INTEROP_ITEST_H

#include <stdio.h>

static int itest_failures;

#define CHECK(cond)                                                                                  \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                     \
      itest_failures++;                                                                              \
    }                                                                                                \
  } while (0)

#define CHECK_RC(expr, want)                                                                         \
  do {                                                                                               \
    int rc_ = (expr);                                                                                \
    if (rc_ != (want)) {                                                                             \
      fprintf(stderr, "%s:%d: %s returned %d, want %d\n", __FILE__, __LINE__, #expr, rc_, (want)); \
      itest_failures++;                                                                              \
    }                                                                                                \
  } while (0)

#endif /* HZSHM_INTEROP_ITEST_H */
