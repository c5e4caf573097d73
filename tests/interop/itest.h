/* itest.h - assertions for the interop C tests: the common ones
 * (tests/common/check.h; a failed check exits 1 with both operands). */
#ifndef HZSHM_INTEROP_ITEST_H
#define HZSHM_INTEROP_ITEST_H

#include <stdio.h>

#include "../common/check.h"


#endif /* HZSHM_INTEROP_ITEST_H */
