/* codec_map.c - Map key operations and whole-map calls (Map.yaml):
 * Put 0x010100, Get 0x010200, Remove 0x010300, ContainsKey 0x010600,
 * Delete 0x010900, Set 0x010F00 (request: threadId long @16 [, ttl long @24];
 * frames name String, key Data [, value Data]); Size 0x012A00, Clear 0x012D00
 * (frame name); DestroyProxy lives in codec_client.c. */
#include <string.h>

#include "codec.h"
#include "data.h"

#define THREAD_ID 0 /* lock owner id; we never lock */

void hzc__enc_map_key(hzc__mb_t *b, int32_t type, int32_t pid, const char *name, const void *key, size_t klen) {
  hzc__mb_request(b, type, pid);
  hzc__wr_i64le(&b->w, THREAD_ID);
  hzc__mb_string(b, name);
  hzc__mb_data_string(b, key, klen);
}

void hzshm__enc_map_put_typed(hzc__mb_t *b, int32_t type, int32_t pid, const char *name, const void *key,
                              size_t klen, int32_t vtype_id, const void *val, size_t vlen, int64_t ttl_ms) {
  hzc__mb_request(b, type, pid);
  hzc__wr_i64le(&b->w, THREAD_ID);
  hzc__wr_i64le(&b->w, ttl_ms);
  hzc__mb_string(b, name);
  hzc__mb_data_string(b, key, klen);
  hzshm__mb_data(b, vtype_id, val, vlen);
}

void hzc__enc_map_put(hzc__mb_t *b, int32_t type, int32_t pid, const char *name, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t ttl_ms) {
  hzshm__enc_map_put_typed(b, type, pid, name, key, klen, HZC__TYPE_BYTES, val, vlen, ttl_ms);
}

void hzc__enc_map_name(hzc__mb_t *b, int32_t type, const char *name) {
  hzc__mb_request(b, type, -1);
  hzc__mb_string(b, name);
}

/* Get/Put/Remove responses: initial frame, then response Data(N). */
int hzc__dec_resp_data(const hzc__msg_t *m, hzc_value_t *v) {
  hzc__cur_t c;
  const hzc__frame_t *f;
  int rc;
  memset(v, 0, sizeof *v);
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_null(&c)) < 0) return rc;
  if (rc == 1) return 0;
  if ((rc = hzc__cur_next(&c, &f))) return rc;
  if (f->flags & (HZC__F_BEGIN_DS | HZC__F_END_DS)) return HZSHM_EPROTO;
  return hzc__data_decode(f->p, f->len, v);
}
