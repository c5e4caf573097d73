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

#include "bytes.h"
#include "hzc.h"

typedef struct {
  const uint8_t *p;
  size_t len;
  size_t off;
} hzc__rd_t;

static inline void hzc__rd_init(hzc__rd_t *r, const void *p, size_t len) {
  r->p = (const uint8_t *)p;
  r->len = len;
  r->off = 0;
}
static inline size_t hzc__rd_left(const hzc__rd_t *r) { return r->len - r->off; }

int hzc__rd_skip(hzc__rd_t *r, size_t n);
int hzc__rd_u8(hzc__rd_t *r, uint8_t *v);
int hzc__rd_i32le(hzc__rd_t *r, int32_t *v);
int hzc__rd_i64le(hzc__rd_t *r, int64_t *v);
int hzc__rd_i32be(hzc__rd_t *r, int32_t *v);
int hzc__rd_bytes(hzc__rd_t *r, size_t n, const uint8_t **out);
/* 17-byte protocol UUID: isNull byte, msb LE int64, lsb LE int64. *isnull may be NULL. */
int hzc__rd_uuid(hzc__rd_t *r, hzc_uuid_t *u, int *isnull);

typedef struct {
  uint8_t *p;
  size_t len;
  size_t cap;
  int err; /* sticky: first failure (-ENOMEM) */
} hzc__wr_t;

void hzc__wr_init(hzc__wr_t *w);
void hzc__wr_free(hzc__wr_t *w);
/* Makes room for n more bytes and returns where they go (NULL after an error). */
uint8_t *hzc__wr_reserve(hzc__wr_t *w, size_t n);
void hzc__wr_bytes(hzc__wr_t *w, const void *p, size_t n);
void hzc__wr_u8(hzc__wr_t *w, uint8_t v);
void hzc__wr_u16le(hzc__wr_t *w, uint16_t v);
void hzc__wr_i32le(hzc__wr_t *w, int32_t v);
void hzc__wr_i64le(hzc__wr_t *w, int64_t v);
void hzc__wr_i32be(hzc__wr_t *w, int32_t v);
/* Writes the 17-byte protocol UUID; u == NULL writes a null UUID. */
void hzc__wr_uuid(hzc__wr_t *w, const hzc_uuid_t *u);

#endif /* HZSHM_HZ_BUF_H */
