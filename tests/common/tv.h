/* tv.h - self-checking test values: [u32 sess][u32 key][u64 version][u32 len]
 * [payload][u64 checksum]. A torn, freed, poisoned or foreign value fails
 * tv_check. Shared by the shm and e2e tests. */
#ifndef HZSHM_TESTS_COMMON_TV_H
#define HZSHM_TESTS_COMMON_TV_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TV_HDR 20u
static inline uint64_t tv_sum(const uint8_t *p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
static inline size_t tv_make(uint8_t *buf, uint32_t sess, uint32_t key, uint64_t ver, uint32_t len) {
  memcpy(buf, &sess, 4);
  memcpy(buf + 4, &key, 4);
  memcpy(buf + 8, &ver, 8);
  memcpy(buf + 16, &len, 4);
  for (uint32_t i = 0; i < len; i++) buf[TV_HDR + i] = (uint8_t)(key * 31u + ver * 7u + i);
  uint64_t c = tv_sum(buf, TV_HDR + len);
  memcpy(buf + TV_HDR + len, &c, 8);
  return TV_HDR + len + 8;
}
/* 0 = intact and of (sess, key); *ver gets the version. */
static inline int tv_check(const uint8_t *buf, size_t n, uint32_t sess, uint32_t key, uint64_t *ver) {
  uint32_t s, k, len;
  uint64_t c;
  if (n < TV_HDR + 8) return -1;
  memcpy(&s, buf, 4);
  memcpy(&k, buf + 4, 4);
  memcpy(ver, buf + 8, 8);
  memcpy(&len, buf + 16, 4);
  if ((size_t)len + TV_HDR + 8 != n) return -2;
  memcpy(&c, buf + TV_HDR + len, 8);
  if (c != tv_sum(buf, TV_HDR + len)) return -3;
  if (s != sess || k != key) return -4;
  return 0;
}
#endif
