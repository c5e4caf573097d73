/* buf.h - bounds-checked byte readers and a growable writer for the wire.
 *
 * The client protocol frames are little-endian; serialized Data (keys and
 * values) is big-endian, so both flavours exist. A reader never reads past its
 * end: every accessor returns HZSHM_EPROTO on overrun and leaves the cursor
 * where it was. The writer keeps a sticky error (-ENOMEM) so a builder can
 * append many fields and check once.
 *
 * Single-threaded: a reader or writer belongs to one thread at a time.
 */
#ifndef HZSHM_HZ_BUF_H
#define HZSHM_HZ_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "hzc.h"

typedef struct {
  const uint8_t *p;
  size_t len;
  size_t off;
} hzshm__rd_t;

static inline void hzshm__rd_init(hzshm__rd_t *r, const void *p, size_t len) {
  r->p = (const uint8_t *)p;
  r->len = len;
  r->off = 0;
}
static inline size_t hzshm__rd_left(const hzshm__rd_t *r) { return r->len - r->off; }

int hzshm__rd_skip(hzshm__rd_t *r, size_t n);
int hzshm__rd_u8(hzshm__rd_t *r, uint8_t *v);
int hzshm__rd_i32le(hzshm__rd_t *r, int32_t *v);
int hzshm__rd_i64le(hzshm__rd_t *r, int64_t *v);
int hzshm__rd_i32be(hzshm__rd_t *r, int32_t *v);
int hzshm__rd_bytes(hzshm__rd_t *r, size_t n, const uint8_t **out);
/* 17-byte protocol UUID: isNull byte, msb LE int64, lsb LE int64. *isnull may be NULL. */
int hzshm__rd_uuid(hzshm__rd_t *r, hzc_uuid_t *u, int *isnull);

/* Unchecked fixed-position helpers for buffers whose size the caller proved. */
static inline uint32_t hzshm__ld_u32le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint16_t hzshm__ld_u16le(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t hzshm__ld_u32be(const uint8_t *p) {
  return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}
static inline void hzshm__st_u32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static inline void hzshm__st_u16le(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void hzshm__st_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hzshm__st_u32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

typedef struct {
  uint8_t *p;
  size_t len;
  size_t cap;
  int err; /* sticky: first failure (-ENOMEM) */
} hzshm__wr_t;

void hzshm__wr_init(hzshm__wr_t *w);
void hzshm__wr_free(hzshm__wr_t *w);
/* Makes room for n more bytes and returns where they go (NULL after an error). */
uint8_t *hzshm__wr_reserve(hzshm__wr_t *w, size_t n);
void hzshm__wr_bytes(hzshm__wr_t *w, const void *p, size_t n);
void hzshm__wr_u8(hzshm__wr_t *w, uint8_t v);
void hzshm__wr_u16le(hzshm__wr_t *w, uint16_t v);
void hzshm__wr_i32le(hzshm__wr_t *w, int32_t v);
void hzshm__wr_i64le(hzshm__wr_t *w, int64_t v);
void hzshm__wr_i32be(hzshm__wr_t *w, int32_t v);
/* Writes the 17-byte protocol UUID; u == NULL writes a null UUID. */
void hzshm__wr_uuid(hzshm__wr_t *w, const hzc_uuid_t *u);

#endif /* HZSHM_HZ_BUF_H */
