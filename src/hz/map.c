/* map.c - the IMap operations of hzc.h: argument checks, encoding through
 * codec_map.c / codec_bulk.c / codec_nc.c, routing (key operations carry the
 * key's partition), result decoding, bulk fan-out per partition and the
 * invalidation-metadata fan-out per data member.
 *
 * Loop thread only. Bad arguments return HZSHM_EINVAL (or HZSHM_ETOOBIG)
 * synchronously and send nothing; otherwise the result callback runs exactly
 * once, later.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "hzc_int.h"
#include "murmur.h"

enum {
  HZSHM__K_GET = 1, HZSHM__K_CONTAINS, HZSHM__K_SET, HZSHM__K_PUT, HZSHM__K_REMOVE, HZSHM__K_DELETE,
  HZSHM__K_CLEAR, HZSHM__K_SIZE, HZSHM__K_DESTROY, HZSHM__K_CREATE,
};

static int hzshm__check_map(hzc_client_t *c, const char *map) {
  if (!c || !map || !*map) return HZSHM_EINVAL;
  if (!hzshm__utf8_valid((const uint8_t *)map, strlen(map))) return HZSHM_EINVAL;
  if (c->closing) return HZSHM_ECLOSED;
  return 0;
}

static int hzshm__check_key(const void *key, size_t klen) {
  if (!key && klen) return HZSHM_EINVAL;
  if (klen > HZSHM__DATA_MAX) return HZSHM_ETOOBIG;
  if (!hzshm__utf8_valid(key, klen)) return HZSHM_EINVAL;
  return 0;
}

/* Fills r from an error response (status HZSHM_EREMOTE). */
static void hzshm__result_error(const hzshm__msg_t *m, hzc_result_t *r, hzshm__remote_err_t *e) {
  if (m && hzshm__dec_error(m, &e->code, e->cls, sizeof e->cls, e->msg, sizeof e->msg) == 0) {
    r->error_class = e->cls;
    r->error_message = e->msg[0] ? e->msg : NULL;
    r->error_code = e->code;
  }
}

static void hzshm__op_done(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m, int status) {
  hzc_result_t r;
  hzshm__remote_err_t e;
  memset(&r, 0, sizeof r);
  r.status = status;
  if (status == HZSHM_EREMOTE) hzshm__result_error(m, &r, &e);
  if (status == 0) {
    int rc = 0, present;
    int32_t n;
    switch (k->kind) {
      case HZSHM__K_GET: case HZSHM__K_PUT: case HZSHM__K_REMOVE:
        rc = hzshm__dec_resp_data(m, &r.value);
        break;
      case HZSHM__K_CONTAINS:
        rc = hzshm__dec_resp_bool(m, &r.boolean, NULL);
        break;
      case HZSHM__K_DELETE:
        rc = hzshm__dec_resp_bool(m, &r.boolean, &present);
        if (rc == 0 && !present) r.boolean = -1; /* members before 5.4 do not say */
        break;
      case HZSHM__K_SIZE:
        rc = hzshm__dec_resp_i32(m, &n);
        r.number = n;
        break;
      default:
        break;
    }
    if (rc) {
      memset(&r, 0, sizeof r);
      r.status = rc;
      if (k->conn) hzshm__conn_close(k->conn, rc, "malformed response");
    }
  }
  if (k->cb) k->cb(c, &r, k->ud);
}

static int hzshm__op_submit(hzc_client_t *c, hzshm__mb_t *b, int kind, int retryable, const void *key, size_t klen,
                            hzc_result_cb cb, void *ud) {
  hzshm__call_t *k = hzshm__call_new(c, b, -1, retryable, hzshm__op_done);
  if (!k) return -ENOMEM;
  k->kind = kind;
  k->cb = cb;
  k->ud = ud;
  if (key || kind <= HZSHM__K_DELETE) {
    k->keyed = 1;
    k->khash = hzshm__string_hash(key, klen);
  }
  return hzshm__call_submit(c, k);
}

static int hzshm__key_op(hzc_client_t *c, int kind, int32_t type, int retryable, const char *map, const void *key,
                         size_t klen, hzc_result_cb cb, void *ud) {
  int rc = hzshm__check_map(c, map);
  if (rc || (rc = hzshm__check_key(key, klen))) return rc;
  hzshm__mb_t b;
  hzshm__enc_map_key(&b, type, -1, map, key ? key : "", klen);
  return hzshm__op_submit(c, &b, kind, retryable, key ? key : "", klen, cb, ud);
}

/* Map.yaml Get 0x010200 (retryable) */
int hzc_map_get(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return hzshm__key_op(c, HZSHM__K_GET, HZSHM__MT_MAP_GET, 1, map, key, klen, cb, ud);
}
/* Map.yaml ContainsKey 0x010600 (retryable) */
int hzc_map_contains(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return hzshm__key_op(c, HZSHM__K_CONTAINS, HZSHM__MT_MAP_CONTAINS, 1, map, key, klen, cb, ud);
}
/* Map.yaml Remove 0x010300 (not retryable) */
int hzc_map_remove(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return hzshm__key_op(c, HZSHM__K_REMOVE, HZSHM__MT_MAP_REMOVE, 0, map, key, klen, cb, ud);
}
/* Map.yaml Delete 0x010900 (not retryable) */
int hzc_map_delete(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return hzshm__key_op(c, HZSHM__K_DELETE, HZSHM__MT_MAP_DELETE, 0, map, key, klen, cb, ud);
}

static int hzshm__put_op(hzc_client_t *c, int kind, int32_t type, const char *map, const void *key, size_t klen,
                         int vtype, const void *val, size_t vlen, int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  int rc = hzshm__check_map(c, map);
  if (rc || (rc = hzshm__check_key(key, klen))) return rc;
  if (!val && vlen) return HZSHM_EINVAL;
  if (vtype != HZC_BYTES && (vtype != HZC_STRING || !hzshm__utf8_valid(val, vlen))) return HZSHM_EINVAL;
  if (vlen > HZSHM__DATA_MAX) return HZSHM_ETOOBIG;
  if (ttl_ms < -1) return HZSHM_EINVAL;
  hzshm__mb_t b;
  hzshm__enc_map_put_typed(&b, type, -1, map, key ? key : "", klen, vtype == HZC_STRING ? HZSHM__TYPE_STRING : HZSHM__TYPE_BYTES,
                           val ? val : "", vlen, ttl_ms);
  return hzshm__op_submit(c, &b, kind, 0, key ? key : "", klen, cb, ud);
}

/* Map.yaml Set 0x010F00 */
int hzc_map_set(hzc_client_t *c, const char *map, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  return hzshm__put_op(c, HZSHM__K_SET, HZSHM__MT_MAP_SET, map, key, klen, HZC_BYTES, val, vlen, ttl_ms, cb, ud);
}
int hzc_map_set_typed(hzc_client_t *c, const char *map, const void *key, size_t klen, int vtype, const void *val,
                      size_t vlen, int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  return hzshm__put_op(c, HZSHM__K_SET, HZSHM__MT_MAP_SET, map, key, klen, vtype, val, vlen, ttl_ms, cb, ud);
}
/* Map.yaml Put 0x010100 */
int hzc_map_put(hzc_client_t *c, const char *map, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  return hzshm__put_op(c, HZSHM__K_PUT, HZSHM__MT_MAP_PUT, map, key, klen, HZC_BYTES, val, vlen, ttl_ms, cb, ud);
}

static int hzshm__name_op(hzc_client_t *c, int kind, const char *map, int retryable, hzc_result_cb cb, void *ud) {
  int rc = hzshm__check_map(c, map);
  if (rc) return rc;
  hzshm__mb_t b;
  if (kind == HZSHM__K_DESTROY) hzshm__enc_proxy(&b, HZSHM__MT_DESTROY_PROXY, map, HZSHM__MAP_SERVICE);
  else if (kind == HZSHM__K_CREATE) hzshm__enc_proxy(&b, HZSHM__MT_CREATE_PROXY, map, HZSHM__MAP_SERVICE);
  else hzshm__enc_map_name(&b, kind == HZSHM__K_SIZE ? HZSHM__MT_MAP_SIZE : HZSHM__MT_MAP_CLEAR, map);
  return hzshm__op_submit(c, &b, kind, retryable, NULL, 0, cb, ud);
}

/* Map.yaml Clear 0x012D00 / Size 0x012A00; Client.yaml CreateProxy 0x000400, DestroyProxy 0x000500 */
int hzc_map_clear(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return hzshm__name_op(c, HZSHM__K_CLEAR, map, 0, cb, ud);
}
int hzc_map_size(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return hzshm__name_op(c, HZSHM__K_SIZE, map, 1, cb, ud);
}
int hzc_map_create(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return hzshm__name_op(c, HZSHM__K_CREATE, map, 0, cb, ud);
}
int hzc_map_destroy(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return hzshm__name_op(c, HZSHM__K_DESTROY, map, 0, cb, ud);
}

/* ---- fan-out: bulk operations and metadata ---- */

typedef struct {
  hzc_entry_cb ecb;
  hzc_meta_seq_cb scb;
  hzc_meta_uuid_cb ucb;
  hzc_result_cb cb;
  void *ud;
  size_t pending;
  int status;
  hzshm__remote_err_t err;
  int has_err;
  hzc_client_t *c;
} hzshm__fan_t;

static void hzshm__fan_part_done(hzc_client_t *c, hzshm__fan_t *f, const hzshm__msg_t *m, int status) {
  if (status && !f->status) {
    f->status = status;
    if (status == HZSHM_EREMOTE && m &&
        hzshm__dec_error(m, &f->err.code, f->err.cls, sizeof f->err.cls, f->err.msg, sizeof f->err.msg) == 0)
      f->has_err = 1;
  }
  if (--f->pending) return;
  hzc_result_t r;
  memset(&r, 0, sizeof r);
  r.status = f->status;
  if (f->has_err) {
    r.error_class = f->err.cls;
    r.error_message = f->err.msg[0] ? f->err.msg : NULL;
    r.error_code = f->err.code;
  }
  hzc_result_cb cb = f->cb;
  void *ud = f->ud;
  free(f);
  if (cb) cb(c, &r, ud);
}

static int hzshm__get_all_entry(void *ud, const hzc_value_t *key, const hzc_value_t *val) {
  hzshm__fan_t *f = ud;
  if (key->type != HZC_STRING) return 0; /* we asked for String keys only */
  if (f->ecb) f->ecb(f->c, key->data, key->len, val, f->ud);
  return 0;
}

static void hzshm__bulk_done(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m, int status) {
  hzshm__fan_t *f = k->owner;
  if (status == 0 && k->kind == 1) {
    int rc = hzshm__dec_get_all(m, hzshm__get_all_entry, f);
    if (rc) {
      status = rc;
      if (k->conn) hzshm__conn_close(k->conn, rc, "malformed GetAll response");
    }
  }
  hzshm__fan_part_done(c, f, m, status);
}

typedef struct {
  uint32_t pid;
  size_t idx;
} hzshm__pidx_t;

static int hzshm__pidx_cmp(const void *a, const void *b) {
  const hzshm__pidx_t *x = a, *y = b;
  if (x->pid != y->pid) return x->pid < y->pid ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int hzshm__bulk(hzc_client_t *c, int get, const char *map, const hzc_kv_t *kvs, size_t n, hzc_entry_cb ecb,
                       hzc_result_cb cb, void *ud) {
  int rc = hzshm__check_map(c, map);
  if (rc) return rc;
  if (n && !kvs) return HZSHM_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if ((rc = hzshm__check_key(kvs[i].key, kvs[i].klen))) return rc;
    if (!get && ((!kvs[i].val && kvs[i].vlen) || kvs[i].vlen > HZSHM__DATA_MAX)) return HZSHM_EINVAL;
  }
  if (n == 0) {
    hzshm__defer(c, cb, ud, 0);
    return 0;
  }
  if (c->partition_count == 0) return HZSHM_EDISCONNECTED;
  hzshm__pidx_t *pi = malloc(n * sizeof *pi);
  size_t *idx = malloc(n * sizeof *idx);
  hzshm__fan_t *f = calloc(1, sizeof *f);
  if (!pi || !idx || !f) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    pi[i].pid = hzshm__partition_of(hzshm__string_hash(kvs[i].key ? kvs[i].key : "", kvs[i].klen), c->partition_count);
    pi[i].idx = i;
  }
  qsort(pi, n, sizeof *pi, hzshm__pidx_cmp);
  f->ecb = ecb;
  f->cb = cb;
  f->ud = ud;
  f->c = c;
  f->pending = 1; /* held by us until every part is submitted */
  for (size_t i = 0; i < n;) {
    size_t j = i, m = 0;
    while (j < n && pi[j].pid == pi[i].pid) idx[m++] = pi[j++].idx;
    hzshm__mb_t b;
    if (get) hzshm__enc_get_all(&b, (int32_t)pi[i].pid, map, kvs, idx, m);
    else hzshm__enc_put_all(&b, (int32_t)pi[i].pid, map, kvs, idx, m);
    hzshm__call_t *k = hzshm__call_new(c, &b, (int32_t)pi[i].pid, get, hzshm__bulk_done);
    if (!k) {
      if (!f->status) f->status = -ENOMEM;
      break;
    }
    k->kind = get;
    k->owner = f;
    f->pending++;
    int src = hzshm__call_submit(c, k);
    if (src) {
      f->pending--;
      if (!f->status) f->status = src;
      break;
    }
    i = j;
  }
  /* Drop our hold: completes now if every part already finished (or none was sent). */
  hzshm__fan_part_done(c, f, NULL, 0);
  f = NULL;
  rc = 0;
out:
  free(f);
  free(pi);
  free(idx);
  return rc;
}

int hzc_map_get_all(hzc_client_t *c, const char *map, const hzc_kv_t *keys, size_t n, hzc_entry_cb ecb,
                    hzc_result_cb cb, void *ud) {
  return hzshm__bulk(c, 1, map, keys, n, ecb, cb, ud);
}

int hzc_map_put_all(hzc_client_t *c, const char *map, const hzc_kv_t *kvs, size_t n, hzc_result_cb cb, void *ud) {
  return hzshm__bulk(c, 0, map, kvs, n, NULL, cb, ud);
}

static int hzshm__meta_seq(void *ud, const char *map, int32_t p, int64_t s) {
  hzshm__fan_t *f = ud;
  if (f->scb) f->scb(f->c, map, p, s, f->ud);
  return 0;
}

static int hzshm__meta_uuid(void *ud, int32_t p, const hzc_uuid_t *u) {
  hzshm__fan_t *f = ud;
  if (f->ucb) f->ucb(f->c, p, u, f->ud);
  return 0;
}

static void hzshm__meta_done(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m, int status) {
  hzshm__fan_t *f = k->owner;
  if (status == 0) {
    int rc = hzshm__dec_fetch_meta(m, hzshm__meta_seq, hzshm__meta_uuid, f);
    if (rc) {
      status = rc;
      if (k->conn) hzshm__conn_close(k->conn, rc, "malformed invalidation metadata");
    }
  }
  hzshm__fan_part_done(c, f, m, status);
}

/* Map.yaml FetchNearCacheInvalidationMetadata 0x013D00, one per data member. */
int hzc_fetch_invalidation_metadata(hzc_client_t *c, const char *const *maps, size_t nmaps, hzc_meta_seq_cb scb,
                                    hzc_meta_uuid_cb ucb, hzc_result_cb cb, void *ud) {
  if (!c || (!maps && nmaps)) return HZSHM_EINVAL;
  for (size_t i = 0; i < nmaps; i++) {
    int rc = hzshm__check_map(c, maps[i]);
    if (rc) return rc;
  }
  if (c->closing) return HZSHM_ECLOSED;
  if (!c->connected || !c->members_seen) return HZSHM_EDISCONNECTED;
  hzshm__fan_t *f = calloc(1, sizeof *f);
  if (!f) return -ENOMEM;
  f->scb = scb;
  f->ucb = ucb;
  f->cb = cb;
  f->ud = ud;
  f->c = c;
  f->pending = 1;
  for (size_t i = 0; i < c->nmembers; i++) {
    if (c->members[i].lite) continue;
    hzshm__mb_t b;
    hzshm__enc_fetch_meta(&b, maps, nmaps, &c->members[i].uuid);
    hzshm__call_t *k = hzshm__call_new(c, &b, -1, 1, hzshm__meta_done); /* read-only: safe to resend */
    if (!k) {
      if (!f->status) f->status = -ENOMEM;
      break;
    }
    k->owner = f;
    k->has_target = 1;
    k->target = c->members[i].uuid;
    f->pending++;
    int rc = hzshm__call_submit(c, k);
    if (rc) {
      f->pending--;
      if (!f->status) f->status = rc;
      break;
    }
  }
  hzshm__fan_part_done(c, f, NULL, 0);
  return 0;
}
