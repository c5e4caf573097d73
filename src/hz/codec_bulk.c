/* codec_bulk.c - Map bulk operations (Map.yaml): GetAll 0x012300 (frames
 * name, keys List_Data; response EntryList_Data_Data) and PutAll 0x012C00
 * (triggerMapLoader bool @16 since 2.1; frames name, entries
 * EntryList_Data_Data; empty response). All keys of one message belong to
 * the partition in its header. */
#include "codec.h"
#include "data.h"

void hzc__enc_get_all(hzc__mb_t *b, int32_t pid, const char *name, const hzc_kv_t *keys, const size_t *idx,
                        size_t n) {
  hzc__mb_request(b, HZC__MT_MAP_GET_ALL, pid);
  hzc__mb_string(b, name);
  hzc__mb_begin(b);
  for (size_t i = 0; i < n; i++) hzc__mb_data_string(b, keys[idx[i]].key, keys[idx[i]].klen);
  hzc__mb_end(b);
}

void hzc__enc_put_all(hzc__mb_t *b, int32_t pid, const char *name, const hzc_kv_t *kvs, const size_t *idx,
                        size_t n) {
  hzc__mb_request(b, HZC__MT_MAP_PUT_ALL, pid);
  hzc__wr_u8(&b->w, 1); /* triggerMapLoader: what IMap.putAll sends */
  hzc__mb_string(b, name);
  hzc__mb_begin(b);
  for (size_t i = 0; i < n; i++) {
    const hzc_kv_t *kv = &kvs[idx[i]];
    hzc__mb_data_string(b, kv->key, kv->klen);
    hzc__mb_data_bytes(b, kv->val, kv->vlen);
  }
  hzc__mb_end(b);
}

static int data_frame(hzc__cur_t *c, hzc_value_t *v) {
  const hzc__frame_t *f;
  int rc = hzc__cur_next(c, &f);
  if (rc) return rc;
  if (f->flags & (HZC__F_BEGIN_DS | HZC__F_END_DS | HZC__F_NULL)) return HZSHM_EPROTO;
  return hzc__data_decode(f->p, f->len, v);
}

int hzc__dec_get_all(const hzc__msg_t *m, hzc__entry_cb cb, void *ud) {
  hzc__cur_t c;
  int rc;
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_begin(&c))) return rc;
  for (;;) {
    if ((rc = hzc__cur_end(&c)) < 0) return rc;
    if (rc == 1) return 0;
    hzc_value_t k, v;
    if ((rc = data_frame(&c, &k)) || (rc = data_frame(&c, &v))) return rc;
    if ((rc = cb(ud, &k, &v))) return rc;
  }
}
