/* codec_nc.c - near-cache invalidation messages (Map.yaml):
 * AddNearCacheInvalidationListener 0x013F00 (listenerFlags int32 @16,
 * localOnly bool @20; frame name; response UUID @13) and its events
 * IMapInvalidation 0x013F02 / IMapBatchInvalidation 0x013F03,
 * RemoveEntryListener 0x011A00 (registrationId UUID @16; frame name;
 * response bool @13), FetchNearCacheInvalidationMetadata 0x013D00
 * (uuid UUID @16; frame names List_String; response
 * EntryList_String_EntryList_Integer_Long then EntryList_Integer_UUID). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "data.h"

#define LISTENER_INVALIDATION 256 /* EntryEventType.INVALIDATION */

void hzc__enc_add_nc_listener(hzc__mb_t *b, const char *name, int local_only) {
  hzc__mb_request(b, HZC__MT_MAP_ADD_NC_LISTENER, -1);
  hzc__wr_i32le(&b->w, LISTENER_INVALIDATION);
  hzc__wr_u8(&b->w, local_only ? 1 : 0);
  hzc__mb_string(b, name);
}

void hzc__enc_remove_entry_listener(hzc__mb_t *b, const char *name, const hzc_uuid_t *reg) {
  hzc__mb_request(b, HZC__MT_MAP_REMOVE_LISTENER, -1);
  hzc__wr_uuid(&b->w, reg);
  hzc__mb_string(b, name);
}

static int dec_inv_single(const hzc__msg_t *m, hzc__inv_cb cb, void *ud) {
  hzc__rd_t r;
  hzc__cur_t c;
  hzc__inv_t inv;
  int rc;
  memset(&inv, 0, sizeof inv);
  if (m->f[0].len < 58) return HZSHM_EPROTO;
  hzc__rd_init(&r, m->f[0].p, m->f[0].len);
  if ((rc = hzc__rd_skip(&r, HZC__OFF_PID)) || (rc = hzc__rd_i32le(&r, &inv.partition)) ||
      (rc = hzc__rd_uuid(&r, &inv.source, NULL)) || (rc = hzc__rd_uuid(&r, &inv.partition_uuid, NULL)) ||
      (rc = hzc__rd_i64le(&r, &inv.sequence)))
    return rc;
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_null(&c)) < 0) return rc;
  if (rc == 0) {
    const hzc__frame_t *f;
    hzc_value_t v;
    if ((rc = hzc__cur_next(&c, &f))) return rc;
    if (f->flags & (HZC__F_BEGIN_DS | HZC__F_END_DS)) return HZSHM_EPROTO;
    if ((rc = hzc__data_decode(f->p, f->len, &v))) return rc;
    if (f->len == 0) return HZSHM_EPROTO;
    inv.key = f->p;
    inv.klen = f->len;
  }
  return cb(ud, &inv);
}

/* One key (Data) frame of a batch invalidation's key list. */
static int key_frame(const hzc__frame_t *f) {
  hzc_value_t v;
  if ((f->flags & (HZC__F_BEGIN_DS | HZC__F_NULL)) || f->len == 0) return HZSHM_EPROTO;
  return hzc__data_decode(f->p, f->len, &v);
}

static int dec_inv_batch(const hzc__msg_t *m, hzc__inv_cb cb, void *ud) {
  hzc__cur_t c;
  int rc;
  hzc__cur_init(&c, m);
  size_t first, k;
  if ((rc = hzc__cur_list(&c, key_frame, &first, &k))) return rc;
  const hzc__frame_t *src, *puu, *seq;
  if ((rc = hzc__cur_next(&c, &src)) || (rc = hzc__cur_next(&c, &puu)) || (rc = hzc__cur_next(&c, &seq)))
    return rc;
  if (src->len != k * 17 || puu->len != k * 17 || seq->len != k * 8) return HZSHM_EPROTO;
  for (size_t i = 0; i < k; i++) {
    hzc__inv_t inv;
    hzc__rd_t r;
    memset(&inv, 0, sizeof inv);
    inv.key = m->f[first + i].p;
    inv.klen = m->f[first + i].len;
    inv.partition = -1;
    hzc__rd_init(&r, src->p + 17 * i, 17);
    (void)hzc__rd_uuid(&r, &inv.source, NULL);
    hzc__rd_init(&r, puu->p + 17 * i, 17);
    (void)hzc__rd_uuid(&r, &inv.partition_uuid, NULL);
    hzc__rd_init(&r, seq->p + 8 * i, 8);
    (void)hzc__rd_i64le(&r, &inv.sequence);
    if ((rc = cb(ud, &inv))) return rc;
  }
  return 0;
}

int hzc__dec_invalidation(const hzc__msg_t *m, hzc__inv_cb cb, void *ud) {
  int32_t t = hzc__msg_type(m);
  if (t == HZC__MT_MAP_INVALIDATION) return dec_inv_single(m, cb, ud);
  if (t == HZC__MT_MAP_BATCH_INVALIDATION) return dec_inv_batch(m, cb, ud);
  return HZSHM_EPROTO;
}

void hzc__enc_fetch_meta(hzc__mb_t *b, const char *const *names, size_t n, const hzc_uuid_t *member) {
  hzc__mb_request(b, HZC__MT_MAP_FETCH_META, -1);
  hzc__wr_uuid(&b->w, member);
  hzc__mb_begin(b);
  for (size_t i = 0; i < n; i++) hzc__mb_string(b, names[i]);
  hzc__mb_end(b);
}

int hzc__dec_fetch_meta(const hzc__msg_t *m, hzc__meta_seq_cb scb, hzc__meta_uuid_cb ucb, void *ud) {
  hzc__cur_t c;
  char *name = NULL;
  int rc;
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_begin(&c))) goto out;
  for (;;) {
    if ((rc = hzc__cur_end(&c)) < 0) goto out;
    if (rc == 1) break;
    const hzc__frame_t *nf, *lf;
    if ((rc = hzc__cur_next(&c, &nf)) || (rc = hzc__cur_next(&c, &lf))) goto out;
    if ((nf->flags | lf->flags) & (HZC__F_BEGIN_DS | HZC__F_END_DS | HZC__F_NULL) || lf->len % 12) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    free(name);
    name = malloc(nf->len + 1);
    if (!name) {
      rc = -ENOMEM;
      goto out;
    }
    memcpy(name, nf->p, nf->len);
    name[nf->len] = 0;
    for (size_t i = 0; i < lf->len / 12; i++) {
      hzc__rd_t r;
      int32_t p;
      int64_t s;
      hzc__rd_init(&r, lf->p + 12 * i, 12);
      (void)hzc__rd_i32le(&r, &p);
      (void)hzc__rd_i64le(&r, &s);
      if ((rc = scb(ud, name, p, s))) goto out;
    }
  }
  const hzc__frame_t *uf;
  if ((rc = hzc__cur_next(&c, &uf))) goto out;
  if (uf->len % 21) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  for (size_t i = 0; i < uf->len / 21; i++) {
    hzc__rd_t r;
    int32_t p;
    hzc_uuid_t u;
    hzc__rd_init(&r, uf->p + 21 * i, 21);
    (void)hzc__rd_i32le(&r, &p);
    (void)hzc__rd_uuid(&r, &u, NULL);
    if ((rc = ucb(ud, p, &u))) goto out;
  }
  rc = 0;
out:
  free(name);
  return rc;
}
