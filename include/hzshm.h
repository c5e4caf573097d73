/* hzshm.h - public API of libhzshm, the per-host shared-memory near-cache in
 * front of Hazelcast.
 *
 * Error convention: every call that can fail returns int; 0 is success, a
 * negative errno is a failed system call, HZSHM_E* (hzshm_errno.h) is ours.
 * hzshm_strerror() turns any of them into text.
 */
#ifndef HZSHM_H
#define HZSHM_H

#include <stddef.h>
#include <stdint.h>

#include "hzshm_errno.h"
#include "hzshm_version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HZSHM_BUILDING) && defined(__GNUC__)
#define HZSHM_EXTERN __attribute__((visibility("default")))
#else
#define HZSHM_EXTERN /* nothing */
#endif

/* Text for any return code of this library (0, -errno or HZSHM_E*). Never NULL;
 * the string is static. Safe from any thread and process. */
HZSHM_EXTERN const char *hzshm_strerror(int err);

/* The symbolic name ("HZSHM_ENOTFOUND", "ENOENT", "OK", ...). Never NULL. */
HZSHM_EXTERN const char *hzshm_err_name(int err);

/* ---- Store API: see the section below (owned by src/lib). ---- */

#ifdef __cplusplus
}
#endif
#endif /* HZSHM_H */
