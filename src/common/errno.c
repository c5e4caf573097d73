/* errno.c - hzshm_strerror() and hzshm_err_name(), generated from the one
 * X-macro list in hzshm_errno.h. */
#define _GNU_SOURCE /* strerrorname_np */
#include <errno.h>
#include <string.h>

#include "hzshm.h"

const char *hzshm_strerror(int err) {
  if (err == 0) return "success";
  switch (err) {
#define HZSHM__ERR_TEXT(name, value, text) \
  case HZSHM_##name:                       \
    return text;
    HZSHM_ERRNO_MAP(HZSHM__ERR_TEXT)
#undef HZSHM__ERR_TEXT
    default:
      break;
  }
  if (err < 0 && err > -4096) return strerror(-err); /* strerror is MT-safe in glibc for known codes */
  return "unknown error";
}

const char *hzshm_err_name(int err) {
  if (err == 0) return "OK";
  switch (err) {
#define HZSHM__ERR_NAME(name, value, text) \
  case HZSHM_##name:                       \
    return "HZSHM_" #name;
    HZSHM_ERRNO_MAP(HZSHM__ERR_NAME)
#undef HZSHM__ERR_NAME
    default:
      break;
  }
  if (err < 0 && err > -4096) {
    const char *n = strerrorname_np(-err);
    if (n) return n;
  }
  return "UNKNOWN";
}
