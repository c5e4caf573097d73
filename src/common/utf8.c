/* utf8.c - see utf8.h. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* The full check, from byte 0 (hzshm__utf8_valid's slow path). */
static int utf8_valid_full(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (len - i - 1 < n) return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF) return 0; /* overlong / range */
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0; /* surrogates are not UTF-8 */
    i += n + 1;
  }
  return 1;
}

/* ASCII fast path (every key of a get goes through here): the OR of the
 * input's 8-byte words (the last one overlapping the one before) has no high
 * bit set iff every byte is < 0x80, i.e. ASCII, which is valid UTF-8. Any
 * high bit sends the whole input to the full check. */
int hzshm__utf8_valid(const void *s, size_t len) {
  const uint8_t *p = s;
  if (len < 8) return utf8_valid_full(p, len);
  uint64_t acc = 0, w;
  for (size_t i = 0; i + 8 < len; i += 8) {
    memcpy(&w, p + i, 8);
    acc |= w;
  }
  memcpy(&w, p + len - 8, 8);
  acc |= w;
  return (acc & 0x8080808080808080ull) == 0 || utf8_valid_full(p, len);
}
