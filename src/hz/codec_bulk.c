/* codec_bulk.c - Map bulk operations (Map.yaml): GetAll 0x012300 (frames
 * name, keys List_Data; response EntryList_Data_Data) and PutAll 0x012C00
 * (triggerMapLoader bool @16 since 2.1; frames name, entries
 * EntryList_Data_Data; empty response). All keys of one message belong to
 * the partition in its header. */
#include "codec.h"
#include "data.h"

void hzshm__enc_get_all(hzshm__mb_t *b, int32_t pid, const char *name, const hzc_kv_t *keys, const size_t *idx,
                        size_t n) {
  hzshm__mb_request(b, HZSHM__MT_MAP_GET_ALL, pid);
  hzshm__mb_string(b, name);
  hzshm__mb_begin(b);
  for (size_t i = 0; i < n; i++) hzshm__mb_data_string(b, keys[idx[i]].key, keys[idx[i]].klen);
  hzshm__mb_end(b);
}

void hzshm__enc_put_all(hzshm__mb_t *b, int32_t pid, const char *name, const hzc_kv_t *kvs, const size_t *idx,
                        size_t n) {
  hzshm__mb_request(b, HZSHM__MT_MAP_PUT_ALL, pid);
  hzshm__wr_u8(&b->w, 1); /* triggerMapLoader: what IMap.putAll sends */
  hzshm__mb_string(b, name);
  hzshm__mb_begin(b);
  for (size_t i = 0; i < n; i++) {
    const hzc_kv_t *kv = &kvs[idx[i]];
    hzshm__mb_data_string(b, kv->key, kv->klen);
    hzshm__mb_data_bytes(b, kv->val, kv->vlen);
  }
  hzshm__mb_end(b);
}

static int hzshm__data_frame(hzshm__cur_t *c, hzc_value_t *v) {
  const hzshm__frame_t *f;
  int rc = hzshm__cur_next(c, &f);
  if (rc) return rc;
  if (f->flags & (HZSHM__F_BEGIN_DS | HZSHM__F_END_DS | HZSHM__F_NULL)) return HZSHM_EPROTO;
  return hzshm__data_decode(f->p, f->len, v);
}

int hzshm__dec_get_all(const hzshm__msg_t *m, hzshm__entry_cb cb, void *ud) {
  hzshm__cur_t c;
  int rc;
  hzshm__cur_init(&c, m);
  if ((rc = hzshm__cur_begin(&c))) return rc;
  for (;;) {
    if ((rc = hzshm__cur_end(&c)) < 0) return rc;
    if (rc == 1) return 0;
    hzc_value_t k, v;
    if ((rc = hzshm__data_frame(&c, &k)) || (rc = hzshm__data_frame(&c, &v))) return rc;
    if ((rc = cb(ud, &k, &v))) return rc;
  }
}
