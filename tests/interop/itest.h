/* itest.h - assertions for the interop C tests: count failures and go on, so
 * one run reports every broken check; main returns itest_failures != 0. */
#ifndef HZSHM_INTEROP_ITEST_H
#define HZSHM_INTEROP_ITEST_H

#include <stdio.h>

static int itest_failures;

#include "../common/check.h"


#endif /* HZSHM_INTEROP_ITEST_H */
