/* direct.c - see direct.h. Single-threaded: every call runs on the thread
 * that owns the dclient (hzclient's rule: one loop thread). */
#include "direct.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "butil.h"
#include "hzc.h"

#define DC_TIMEOUT_MS 30000

struct dclient {
  uv_loop_t loop;
  hzc_client_t *c;
};

typedef struct {
  int done;
  int status;
  int boolean;
  int found;
  void *buf;
  size_t cap, len;
} dres_t;

static void status_cb(hzc_client_t *c, int status, void *ud) {
  dres_t *r = ud;
  r->status = status;
  r->done = 1;
}

static void result_cb(hzc_client_t *c, const hzc_result_t *res, void *ud) {
  dres_t *r = ud;
  r->status = res->status;
  r->boolean = res->boolean;
  r->found = res->value.type == HZC_BYTES || res->value.type == HZC_STRING;
  if (r->found && r->buf) {
    r->len = res->value.len;
    if (res->value.len <= r->cap) memcpy(r->buf, res->value.data, res->value.len);
  }
  r->done = 1;
}

static int wait_res(dclient_t *d, dres_t *r, int rc) {
  if (rc != 0) return rc;
  rc = hzc_run_until(&d->loop, &r->done, DC_TIMEOUT_MS);
  if (!r->done) return rc ? rc : HZSHM_ETIMEDOUT;
  return r->status;
}

static void split(char *list, const char **v, size_t max, size_t *n) {
  size_t k = 0;
  for (char *save = NULL, *t = strtok_r(list, ",", &save); t && k < max; t = strtok_r(NULL, ",", &save)) v[k++] = t;
  *n = k;
}

int dc_open(const char *members, const char *cluster, dclient_t **out) {
  int rc = -ENOMEM;
  dclient_t *d = calloc(1, sizeof *d);
  char *list = strdup(members);
  const char *addrs[16];
  size_t n = 0;
  if (d == NULL || list == NULL) goto fail;
  split(list, addrs, 16, &n);
  rc = uv_loop_init(&d->loop);
  if (rc != 0) goto fail;
  hzc_config_t cfg = {.cluster_name = cluster, .addrs = addrs, .naddrs = n, .smart = 1,
                      .invocation_timeout_ms = DC_TIMEOUT_MS, .heartbeat_interval_ms = 1000,
                      .heartbeat_timeout_ms = 10000, .connect_timeout_ms = 5000, .client_name = "hzshm-bench"};
  rc = hzc_client_new(&d->loop, &cfg, &d->c);
  if (rc != 0) goto fail;
  dres_t r = {0};
  rc = wait_res(d, &r, hzc_client_connect(d->c, status_cb, &r));
  if (rc != 0) goto fail;
  free(list);
  *out = d;
  return 0;
fail:
  free(list);
  if (d && d->c) {
    dc_close(d);
  } else if (d) {
    free(d);
  }
  return rc;
}

static void closed_cb(void *ud) { *(int *)ud = 1; }

void dc_close(dclient_t *d) {
  if (d == NULL) return;
  int done = 0;
  hzc_client_close(d->c, closed_cb, &done);
  hzc_run_until(&d->loop, &done, DC_TIMEOUT_MS);
  uv_run(&d->loop, UV_RUN_NOWAIT);
  uv_loop_close(&d->loop);
  free(d);
}

int dc_get(dclient_t *d, const char *map, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen,
           int *found) {
  dres_t r = {.buf = buf, .cap = cap};
  int rc = wait_res(d, &r, hzc_map_get(d->c, map, key, klen, result_cb, &r));
  if (rc != 0) return rc;
  *found = r.found;
  *vlen = r.len;
  return r.found && r.len > cap ? HZSHM_EBUFSIZE : 0;
}

int dc_contains(dclient_t *d, const char *map, const void *key, size_t klen, int *found) {
  dres_t r = {0};
  int rc = wait_res(d, &r, hzc_map_contains(d->c, map, key, klen, result_cb, &r));
  *found = r.boolean;
  return rc;
}

int dc_set(dclient_t *d, const char *map, const void *key, size_t klen, const void *val, size_t vlen) {
  dres_t r = {0};
  return wait_res(d, &r, hzc_map_set(d->c, map, key, klen, val, vlen, -1, result_cb, &r));
}

int dc_delete(dclient_t *d, const char *map, const void *key, size_t klen) {
  dres_t r = {0};
  return wait_res(d, &r, hzc_map_delete(d->c, map, key, klen, result_cb, &r));
}

int dc_destroy(dclient_t *d, const char *map) {
  dres_t r = {0};
  return wait_res(d, &r, hzc_map_destroy(d->c, map, result_cb, &r));
}

int dc_fill(dclient_t *d, const char *map, uint64_t first, size_t n, size_t vsize) {
  enum { CHUNK = 500 };
  int rc = -ENOMEM;
  hzc_kv_t *kv = calloc(CHUNK, sizeof *kv);
  char *keys = calloc(CHUNK, BU_KEYLEN + 1);
  uint8_t *vals = malloc((size_t)CHUNK * (vsize ? vsize : 1));
  if (kv == NULL || keys == NULL || vals == NULL) goto out;
  rc = 0;
  for (size_t done = 0; done < n && rc == 0;) {
    size_t m = n - done < CHUNK ? n - done : CHUNK;
    for (size_t i = 0; i < m; i++) {
      char *k = keys + i * (BU_KEYLEN + 1);
      uint8_t *v = vals + i * vsize;
      bu_key(k, first + done + i);
      bu_value(v, first + done + i, vsize);
      kv[i] = (hzc_kv_t){k, BU_KEYLEN, v, vsize};
    }
    dres_t r = {0};
    rc = wait_res(d, &r, hzc_map_put_all(d->c, map, kv, m, result_cb, &r));
    done += m;
  }
out:
  free(kv);
  free(keys);
  free(vals);
  return rc;
}
