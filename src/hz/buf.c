/* buf.c - bounds-checked readers and the growable writer (see buf.h). */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int hzc__rd_skip(hzc__rd_t *r, size_t n) {
  if (hzc__rd_left(r) < n) return HZSHM_EPROTO;
  r->off += n;
  return 0;
}

int hzc__rd_u8(hzc__rd_t *r, uint8_t *v) {
  if (hzc__rd_left(r) < 1) return HZSHM_EPROTO;
  *v = r->p[r->off++];
  return 0;
}

int hzc__rd_i32le(hzc__rd_t *r, int32_t *v) {
  if (hzc__rd_left(r) < 4) return HZSHM_EPROTO;
  *v = (int32_t)hzshm__le32_get(r->p + r->off);
  r->off += 4;
  return 0;
}

int hzc__rd_i64le(hzc__rd_t *r, int64_t *v) {
  if (hzc__rd_left(r) < 8) return HZSHM_EPROTO;
  uint64_t lo = hzshm__le32_get(r->p + r->off), hi = hzshm__le32_get(r->p + r->off + 4);
  *v = (int64_t)(lo | hi << 32);
  r->off += 8;
  return 0;
}

int hzc__rd_i32be(hzc__rd_t *r, int32_t *v) {
  if (hzc__rd_left(r) < 4) return HZSHM_EPROTO;
  *v = (int32_t)hzshm__be32_get(r->p + r->off);
  r->off += 4;
  return 0;
}

int hzc__rd_bytes(hzc__rd_t *r, size_t n, const uint8_t **out) {
  if (hzc__rd_left(r) < n) return HZSHM_EPROTO;
  *out = r->p + r->off;
  r->off += n;
  return 0;
}

int hzc__rd_uuid(hzc__rd_t *r, hzc_uuid_t *u, int *isnull) {
  if (hzc__rd_left(r) < 17) return HZSHM_EPROTO;
  const uint8_t *p = r->p + r->off;
  int n = p[0] != 0;
  memset(u->b, 0, sizeof u->b);
  if (!n) {
    /* msb then lsb, each an LE int64; hzc_uuid_t holds the big-endian bytes. */
    for (int i = 0; i < 8; i++) {
      u->b[7 - i] = p[1 + i];
      u->b[15 - i] = p[9 + i];
    }
  }
  if (isnull) *isnull = n;
  r->off += 17;
  return 0;
}

void hzc__wr_init(hzc__wr_t *w) { memset(w, 0, sizeof *w); }

void hzc__wr_free(hzc__wr_t *w) {
  free(w->p);
  memset(w, 0, sizeof *w);
}

uint8_t *hzc__wr_reserve(hzc__wr_t *w, size_t n) {
  if (w->err) return NULL;
  if (n > SIZE_MAX / 2 - w->len) {
    w->err = -ENOMEM;
    return NULL;
  }
  if (w->len + n > w->cap || !w->p) { /* also when empty: never offset a null pointer */
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n) cap *= 2;
    uint8_t *p = realloc(w->p, cap);
    if (!p) {
      w->err = -ENOMEM;
      return NULL;
    }
    w->p = p;
    w->cap = cap;
  }
  uint8_t *at = w->p + w->len;
  w->len += n;
  return at;
}

void hzc__wr_bytes(hzc__wr_t *w, const void *p, size_t n) {
  uint8_t *at = hzc__wr_reserve(w, n);
  if (at && n) memcpy(at, p, n);
}

void hzc__wr_u8(hzc__wr_t *w, uint8_t v) {
  uint8_t *at = hzc__wr_reserve(w, 1);
  if (at) *at = v;
}

void hzc__wr_u16le(hzc__wr_t *w, uint16_t v) {
  uint8_t *at = hzc__wr_reserve(w, 2);
  if (at) hzshm__le16_put(at, v);
}

void hzc__wr_i32le(hzc__wr_t *w, int32_t v) {
  uint8_t *at = hzc__wr_reserve(w, 4);
  if (at) hzshm__le32_put(at, (uint32_t)v);
}

void hzc__wr_i64le(hzc__wr_t *w, int64_t v) {
  uint8_t *at = hzc__wr_reserve(w, 8);
  if (at) hzshm__le64_put(at, (uint64_t)v);
}

void hzc__wr_i32be(hzc__wr_t *w, int32_t v) {
  uint8_t *at = hzc__wr_reserve(w, 4);
  if (at) hzshm__be32_put(at, (uint32_t)v);
}

void hzc__wr_uuid(hzc__wr_t *w, const hzc_uuid_t *u) {
  uint8_t *at = hzc__wr_reserve(w, 17);
  if (!at) return;
  memset(at, 0, 17);
  if (!u) {
    at[0] = 1;
    return;
  }
  for (int i = 0; i < 8; i++) {
    at[1 + i] = u->b[7 - i];
    at[9 + i] = u->b[15 - i];
  }
}
