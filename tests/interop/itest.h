/* itest.h - assertions for the interop C tests: the common ones
 * (tests/common/check.h; a failed check exits 1 with both operands), and the
 * member list a test is given (tests/common/runner.h: after `--`). */
#ifndef HZSHM_INTEROP_ITEST_H
#define HZSHM_INTEROP_ITEST_H

#include <stdio.h>

#include "../common/runner.h"

/* `test_x [case...] -- MEMBERS`: MEMBERS ("h:p,h:p"). */
static inline const char *itest_members(void) { return t_param_required(0, "MEMBERS"); }

#endif /* HZSHM_INTEROP_ITEST_H */
