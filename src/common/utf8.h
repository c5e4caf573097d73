/* utf8.h - the one UTF-8 validator of the tree (libhzshm's keys and session
 * ids, the agent's requests, hzclient's String keys and map names). */
#ifndef HZSHM_UTF8_H
#define HZSHM_UTF8_H

#include <stddef.h>

/* 1 if s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0. NUL bytes are valid. */
int hzshm__utf8_valid(const void *s, size_t len);

#endif
