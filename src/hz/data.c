/* data.c - String / byte[] Data encoding and decoding (see data.h). */
#include "data.h"

#include <string.h>

void hzc__wr_data(hzc__wr_t *w, int32_t type, const void *p, size_t n) {
  hzc__wr_i32be(w, 0); /* partition hash: not set (no partitioning strategy) */
  hzc__wr_i32be(w, type);
  hzc__wr_i32be(w, (int32_t)n);
  hzc__wr_bytes(w, p, n);
}

void hzshm__mb_data(hzc__mb_t *b, int32_t type, const void *p, size_t n) {
  hzc__mb_open(b, 0);
  hzc__wr_data(&b->w, type, p, n);
}

void hzc__mb_data_string(hzc__mb_t *b, const void *s, size_t n) { hzshm__mb_data(b, HZC__TYPE_STRING, s, n); }

void hzc__mb_data_bytes(hzc__mb_t *b, const void *p, size_t n) { hzshm__mb_data(b, HZC__TYPE_BYTES, p, n); }

int hzc__data_decode(const uint8_t *p, size_t len, hzc_value_t *v) {
  memset(v, 0, sizeof *v);
  if (len == 0) return 0; /* empty Data = null */
  hzc__rd_t r;
  int32_t ph, type, n;
  hzc__rd_init(&r, p, len);
  if (hzc__rd_i32be(&r, &ph) || hzc__rd_i32be(&r, &type)) return HZSHM_EPROTO;
  v->type_id = type;
  if (type == 0) return 0; /* the null serializer */
  if (type == HZC__TYPE_BYTES || type == HZC__TYPE_STRING) {
    if (hzc__rd_i32be(&r, &n) || n < 0 || (size_t)n > hzc__rd_left(&r)) return HZSHM_EPROTO;
    v->type = type == HZC__TYPE_BYTES ? HZC_BYTES : HZC_STRING;
    v->data = p + r.off;
    v->len = (size_t)n;
    return 0;
  }
  v->type = HZC_OTHER;
  v->data = p + 8;
  v->len = len - 8;
  return 0;
}
