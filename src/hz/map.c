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
#include "utf8.h"

enum {
  K_GET = 1, K_CONTAINS, K_SET, K_PUT, K_REMOVE, K_DELETE,
  K_CLEAR, K_SIZE, K_DESTROY, K_CREATE,
};

static int check_map(hzc_client_t *c, const char *map) {
  if (!c || !map || !*map) return HZSHM_EINVAL;
  if (!hzshm__utf8_valid(map, strlen(map))) return HZSHM_EINVAL;
  if (c->closing) return HZSHM_ECLOSED;
  return 0;
}

static int check_key(const void *key, size_t klen) {
  if (!key && klen) return HZSHM_EINVAL;
  if (klen > HZC__DATA_MAX) return HZSHM_ETOOBIG;
  if (!hzshm__utf8_valid(key, klen)) return HZSHM_EINVAL;
  return 0;
}

/* Fills r from an error response (status HZSHM_EREMOTE). */
static void result_error(const hzc__msg_t *m, hzc_result_t *r, hzc__remote_err_t *e) {
  if (m && hzc__dec_error(m, &e->code, e->cls, sizeof e->cls, e->msg, sizeof e->msg) == 0) {
    r->error_class = e->cls;
    r->error_message = e->msg[0] ? e->msg : NULL;
    r->error_code = e->code;
  }
}

static void op_done(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status) {
  hzc_result_t r;
  hzc__remote_err_t e;
  memset(&r, 0, sizeof r);
  r.status = status;
  if (status == HZSHM_EREMOTE) result_error(m, &r, &e);
  if (status == 0) {
    int rc = 0, present;
    int32_t n;
    switch (k->kind) {
      case K_GET: case K_PUT: case K_REMOVE:
        rc = hzc__dec_resp_data(m, &r.value);
        break;
      case K_CONTAINS:
        rc = hzc__dec_resp_bool(m, &r.boolean, NULL);
        break;
      case K_DELETE:
        rc = hzc__dec_resp_bool(m, &r.boolean, &present);
        if (rc == 0 && !present) r.boolean = -1; /* members before 5.4 do not say */
        break;
      case K_SIZE:
        rc = hzc__dec_resp_i32(m, &n);
        r.number = n;
        break;
      default:
        break;
    }
    if (rc) {
      memset(&r, 0, sizeof r);
      r.status = rc;
      if (k->conn) hzc__conn_close(k->conn, rc, "malformed response");
    }
  }
  if (k->cb) k->cb(c, &r, k->ud);
}

static int op_submit(hzc_client_t *c, hzc__mb_t *b, int kind, int retryable, const void *key, size_t klen,
                            hzc_result_cb cb, void *ud) {
  hzc__call_t *k = hzc__call_new(c, b, -1, retryable, op_done);
  if (!k) return -ENOMEM;
  k->kind = kind;
  k->cb = cb;
  k->ud = ud;
  if (key || kind <= K_DELETE) {
    k->keyed = 1;
    k->khash = hzc__string_hash(key, klen);
  }
  return hzc__call_submit(c, k);
}

static int key_op(hzc_client_t *c, int kind, int32_t type, int retryable, const char *map, const void *key,
                         size_t klen, hzc_result_cb cb, void *ud) {
  int rc = check_map(c, map);
  if (rc || (rc = check_key(key, klen))) return rc;
  hzc__mb_t b;
  hzc__enc_map_key(&b, type, -1, map, key ? key : "", klen);
  return op_submit(c, &b, kind, retryable, key ? key : "", klen, cb, ud);
}

/* Map.yaml Get 0x010200 (retryable) */
int hzc_map_get(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return key_op(c, K_GET, HZC__MT_MAP_GET, 1, map, key, klen, cb, ud);
}
/* Map.yaml ContainsKey 0x010600 (retryable) */
int hzc_map_contains(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return key_op(c, K_CONTAINS, HZC__MT_MAP_CONTAINS, 1, map, key, klen, cb, ud);
}
/* Map.yaml Remove 0x010300 (not retryable) */
int hzc_map_remove(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return key_op(c, K_REMOVE, HZC__MT_MAP_REMOVE, 0, map, key, klen, cb, ud);
}
/* Map.yaml Delete 0x010900 (not retryable) */
int hzc_map_delete(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud) {
  return key_op(c, K_DELETE, HZC__MT_MAP_DELETE, 0, map, key, klen, cb, ud);
}

static int put_op(hzc_client_t *c, int kind, int32_t type, const char *map, const void *key, size_t klen,
                         int vtype, const void *val, size_t vlen, int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  int rc = check_map(c, map);
  if (rc || (rc = check_key(key, klen))) return rc;
  if (!val && vlen) return HZSHM_EINVAL;
  if (vtype != HZC_BYTES && (vtype != HZC_STRING || !hzshm__utf8_valid(val, vlen))) return HZSHM_EINVAL;
  if (vlen > HZC__DATA_MAX) return HZSHM_ETOOBIG;
  if (ttl_ms < -1) return HZSHM_EINVAL;
  hzc__mb_t b;
  hzshm__enc_map_put_typed(&b, type, -1, map, key ? key : "", klen, vtype == HZC_STRING ? HZC__TYPE_STRING : HZC__TYPE_BYTES,
                           val ? val : "", vlen, ttl_ms);
  return op_submit(c, &b, kind, 0, key ? key : "", klen, cb, ud);
}

/* Map.yaml Set 0x010F00 */
int hzc_map_set(hzc_client_t *c, const char *map, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  return put_op(c, K_SET, HZC__MT_MAP_SET, map, key, klen, HZC_BYTES, val, vlen, ttl_ms, cb, ud);
}
int hzc_map_set_typed(hzc_client_t *c, const char *map, const void *key, size_t klen, int vtype, const void *val,
                      size_t vlen, int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  return put_op(c, K_SET, HZC__MT_MAP_SET, map, key, klen, vtype, val, vlen, ttl_ms, cb, ud);
}
/* Map.yaml Put 0x010100 */
int hzc_map_put(hzc_client_t *c, const char *map, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms, hzc_result_cb cb, void *ud) {
  return put_op(c, K_PUT, HZC__MT_MAP_PUT, map, key, klen, HZC_BYTES, val, vlen, ttl_ms, cb, ud);
}

static int name_op(hzc_client_t *c, int kind, const char *map, int retryable, hzc_result_cb cb, void *ud) {
  int rc = check_map(c, map);
  if (rc) return rc;
  hzc__mb_t b;
  if (kind == K_DESTROY) hzc__enc_proxy(&b, HZC__MT_DESTROY_PROXY, map, HZC__MAP_SERVICE);
  else if (kind == K_CREATE) hzc__enc_proxy(&b, HZC__MT_CREATE_PROXY, map, HZC__MAP_SERVICE);
  else hzc__enc_map_name(&b, kind == K_SIZE ? HZC__MT_MAP_SIZE : HZC__MT_MAP_CLEAR, map);
  return op_submit(c, &b, kind, retryable, NULL, 0, cb, ud);
}

/* Map.yaml Clear 0x012D00 / Size 0x012A00; Client.yaml CreateProxy 0x000400, DestroyProxy 0x000500 */
int hzc_map_clear(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return name_op(c, K_CLEAR, map, 0, cb, ud);
}
int hzc_map_size(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return name_op(c, K_SIZE, map, 1, cb, ud);
}
int hzc_map_create(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return name_op(c, K_CREATE, map, 0, cb, ud);
}
int hzc_map_destroy(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud) {
  return name_op(c, K_DESTROY, map, 0, cb, ud);
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
  hzc__remote_err_t err;
  int has_err;
  hzc_client_t *c;
} fan_t;

static void fan_part_done(hzc_client_t *c, fan_t *f, const hzc__msg_t *m, int status) {
  if (status && !f->status) {
    f->status = status;
    if (status == HZSHM_EREMOTE && m &&
        hzc__dec_error(m, &f->err.code, f->err.cls, sizeof f->err.cls, f->err.msg, sizeof f->err.msg) == 0)
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

static int get_all_entry(void *ud, const hzc_value_t *key, const hzc_value_t *val) {
  fan_t *f = ud;
  if (key->type != HZC_STRING) return 0; /* we asked for String keys only */
  if (f->ecb) f->ecb(f->c, key->data, key->len, val, f->ud);
  return 0;
}

static void bulk_done(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status) {
  fan_t *f = k->owner;
  if (status == 0 && k->kind == 1) {
    int rc = hzc__dec_get_all(m, get_all_entry, f);
    if (rc) {
      status = rc;
      if (k->conn) hzc__conn_close(k->conn, rc, "malformed GetAll response");
    }
  }
  fan_part_done(c, f, m, status);
}

typedef struct {
  uint32_t pid;
  size_t idx;
} pidx_t;

static int pidx_cmp(const void *a, const void *b) {
  const pidx_t *x = a, *y = b;
  if (x->pid != y->pid) return x->pid < y->pid ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int bulk(hzc_client_t *c, int get, const char *map, const hzc_kv_t *kvs, size_t n, hzc_entry_cb ecb,
                       hzc_result_cb cb, void *ud) {
  int rc = check_map(c, map);
  if (rc) return rc;
  if (n && !kvs) return HZSHM_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if ((rc = check_key(kvs[i].key, kvs[i].klen))) return rc;
    if (!get && ((!kvs[i].val && kvs[i].vlen) || kvs[i].vlen > HZC__DATA_MAX)) return HZSHM_EINVAL;
  }
  if (n == 0) {
    hzc__defer(c, cb, ud, 0);
    return 0;
  }
  if (c->partition_count == 0) return HZSHM_EDISCONNECTED;
  pidx_t *pi = malloc(n * sizeof *pi);
  size_t *idx = malloc(n * sizeof *idx);
  fan_t *f = calloc(1, sizeof *f);
  if (!pi || !idx || !f) {
    rc = -ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    pi[i].pid = hzc__partition_of(hzc__string_hash(kvs[i].key ? kvs[i].key : "", kvs[i].klen), c->partition_count);
    pi[i].idx = i;
  }
  qsort(pi, n, sizeof *pi, pidx_cmp);
  f->ecb = ecb;
  f->cb = cb;
  f->ud = ud;
  f->c = c;
  f->pending = 1; /* held by us until every part is submitted */
  for (size_t i = 0; i < n;) {
    size_t j = i, m = 0;
    while (j < n && pi[j].pid == pi[i].pid) idx[m++] = pi[j++].idx;
    hzc__mb_t b;
    if (get) hzc__enc_get_all(&b, (int32_t)pi[i].pid, map, kvs, idx, m);
    else hzc__enc_put_all(&b, (int32_t)pi[i].pid, map, kvs, idx, m);
    hzc__call_t *k = hzc__call_new(c, &b, (int32_t)pi[i].pid, get, bulk_done);
    if (!k) {
      if (!f->status) f->status = -ENOMEM;
      break;
    }
    k->kind = get;
    k->owner = f;
    f->pending++;
    int src = hzc__call_submit(c, k);
    if (src) {
      f->pending--;
      if (!f->status) f->status = src;
      break;
    }
    i = j;
  }
  /* Drop our hold: completes now if every part already finished (or none was sent). */
  fan_part_done(c, f, NULL, 0);
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
  return bulk(c, 1, map, keys, n, ecb, cb, ud);
}

int hzc_map_put_all(hzc_client_t *c, const char *map, const hzc_kv_t *kvs, size_t n, hzc_result_cb cb, void *ud) {
  return bulk(c, 0, map, kvs, n, NULL, cb, ud);
}

static int meta_seq(void *ud, const char *map, int32_t p, int64_t s) {
  fan_t *f = ud;
  if (f->scb) f->scb(f->c, map, p, s, f->ud);
  return 0;
}

static int meta_uuid(void *ud, int32_t p, const hzc_uuid_t *u) {
  fan_t *f = ud;
  if (f->ucb) f->ucb(f->c, p, u, f->ud);
  return 0;
}

static void meta_done(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status) {
  fan_t *f = k->owner;
  if (status == 0) {
    int rc = hzc__dec_fetch_meta(m, meta_seq, meta_uuid, f);
    if (rc) {
      status = rc;
      if (k->conn) hzc__conn_close(k->conn, rc, "malformed invalidation metadata");
    }
  }
  fan_part_done(c, f, m, status);
}

/* Map.yaml FetchNearCacheInvalidationMetadata 0x013D00, one per data member. */
int hzc_fetch_invalidation_metadata(hzc_client_t *c, const char *const *maps, size_t nmaps, hzc_meta_seq_cb scb,
                                    hzc_meta_uuid_cb ucb, hzc_result_cb cb, void *ud) {
  if (!c || (!maps && nmaps)) return HZSHM_EINVAL;
  for (size_t i = 0; i < nmaps; i++) {
    int rc = check_map(c, maps[i]);
    if (rc) return rc;
  }
  if (c->closing) return HZSHM_ECLOSED;
  if (!c->connected || !c->members_seen) return HZSHM_EDISCONNECTED;
  fan_t *f = calloc(1, sizeof *f);
  if (!f) return -ENOMEM;
  f->scb = scb;
  f->ucb = ucb;
  f->cb = cb;
  f->ud = ud;
  f->c = c;
  f->pending = 1;
  for (size_t i = 0; i < c->nmembers; i++) {
    if (c->members[i].lite) continue;
    hzc__mb_t b;
    hzc__enc_fetch_meta(&b, maps, nmaps, &c->members[i].uuid);
    hzc__call_t *k = hzc__call_new(c, &b, -1, 1, meta_done); /* read-only: safe to resend */
    if (!k) {
      if (!f->status) f->status = -ENOMEM;
      break;
    }
    k->owner = f;
    k->has_target = 1;
    k->target = c->members[i].uuid;
    f->pending++;
    int rc = hzc__call_submit(c, k);
    if (rc) {
      f->pending--;
      if (!f->status) f->status = rc;
      break;
    }
  }
  fan_part_done(c, f, NULL, 0);
  return 0;
}
