/* test_hzc_interop.c - our C client (src/hz, hzc.h) against the official
 * Java client (HzPeer) on the same real members: every value one writes the
 * other reads byte for byte, both compute the same partitions, a String value
 * is reported as a type mismatch, and writes by the Java client reach our
 * invalidation listener with the Java client's UUID as source.
 *
 * usage: test_hzc_interop MEMBERS   (e.g. 127.0.0.1:5721,127.0.0.1:5722)
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "hzc.h"
#include "itest.h"
#include "peer.h"

#define T_MS 30000

typedef struct {
  int done, status, type;
  uint8_t *data;
  size_t len;
  int boolean;
  int64_t number;
} res_t;

static void res_cb(hzc_client_t *c, const hzc_result_t *r, void *ud) {
  res_t *x = ud;
  x->status = r->status;
  x->type = r->value.type;
  x->boolean = r->boolean;
  x->number = r->number;
  free(x->data);
  x->data = NULL;
  x->len = r->value.len;
  if (r->value.len > 0) {
    x->data = malloc(r->value.len);
    memcpy(x->data, r->value.data, r->value.len);
  }
  x->done = 1;
}

/* Forgets the previous result (and frees its copied value) before the next call. */
static void res_reset(res_t *x) {
  free(x->data);
  memset(x, 0, sizeof(*x));
}

static void status_cb(hzc_client_t *c, int status, void *ud) {
  res_t *x = ud;
  x->status = status;
  x->done = 1;
}

typedef struct {
  int n;
  int marker; /* set when the invalidation of key "marker" arrived */
  char key[64];
  int cleared;
  hzc_uuid_t source;
} inval_t;

static void inval_cb(hzc_client_t *c, const char *map, const hzc_invalidation_t *inv, void *ud) {
  inval_t *x = ud;
  x->n++;
  x->cleared = inv->key == NULL;
  if (inv->key != NULL && inv->klen < sizeof(x->key)) {
    memcpy(x->key, inv->key, inv->klen);
    x->key[inv->klen] = '\0';
    if (strcmp(x->key, "marker") == 0) x->marker = 1;
  }
  x->source = inv->source;
}

static void close_cb(void *ud) { *(int *)ud += 1; }

static uv_loop_t loop;

/* Runs the loop until x->done; returns x->status or HZSHM_ETIMEDOUT. */
static int wait_res(res_t *x) {
  int rc = hzc_run_until(&loop, &x->done, T_MS);
  return rc != 0 ? rc : x->status;
}

static void uuid_str(const hzc_uuid_t *u, char out[37]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hex[u->b[i] >> 4];
    out[o++] = hex[u->b[i] & 15];
  }
  out[o] = '\0';
}

TEST_CASE(hzc_vs_java) {
  char map[64], reply[4096];
  snprintf(map, sizeof(map), "hzc-interop-%d", (int)getpid());

  /* Our client. */
  char addrbuf[256];
  snprintf(addrbuf, sizeof(addrbuf), "%s", itest_members());
  const char *addrs[8];
  size_t naddrs = 0;
  for (char *t = strtok(addrbuf, ","); t && naddrs < 8; t = strtok(NULL, ",")) addrs[naddrs++] = t;
  uv_loop_init(&loop);
  hzc_config_t cfg = {.cluster_name = "dev", .addrs = addrs, .naddrs = naddrs, .smart = 1};
  hzc_client_t *c = NULL;
  CHECK_RC(hzc_client_new(&loop, &cfg, &c), 0);
  CHECK_NE(c, NULL);
  res_t r = {0};
  CHECK_RC(hzc_client_connect(c, status_cb, &r), 0);
  CHECK_RC(wait_res(&r), 0);

  /* The official client. */
  hzshm__peer_t *p = NULL;
  CHECK_RC(hzshm__peer_start(itest_members(), NULL, 60000, &p), 0);
  CHECK_NE(p, NULL);

  /* Partitions agree for ASCII, empty and multi-byte UTF-8 keys. */
  static const char *const keys[] = {"k1", "", "hello", "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-\xf0\x9f\x98\x80",
                                     "0123456789abcdef"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    char hex[128];
    hzshm__peer_hex(keys[i], strlen(keys[i]), hex);
    CHECK_RC(hzshm__peer_cmd(p, T_MS, reply, sizeof(reply), "partition x:%s", hex), 0);
    CHECK_EQ(atoi(reply + 3), (int)hzc_key_partition(c, keys[i], strlen(keys[i])));
  }

  /* Our invalidation listener, registered before the Java client writes. */
  inval_t inv = {0};
  hzc_listener_t *l = NULL;
  res_reset(&r);
  CHECK_RC(hzc_map_listen_invalidations(c, map, inval_cb, &inv, status_cb, &r, &l), 0);
  CHECK_RC(wait_res(&r), 0);

  static const size_t sizes[] = {0, 1, 100, 1024, 65536};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t n = sizes[i];
    uint8_t *v = malloc(n + 1), *back = malloc(n + 1);
    for (size_t j = 0; j < n; j++) v[j] = (uint8_t)(j * 7 + n);
    const char *k = keys[i];
    /* C writes, Java reads. */
    res_reset(&r);
    CHECK_RC(hzc_map_set(c, map, k, strlen(k), v, n, -1, res_cb, &r), 0);
    CHECK_RC(wait_res(&r), 0);
    size_t got = (size_t)-1;
    CHECK_RC(hzshm__peer_get(p, map, k, strlen(k), back, n + 1, &got), 0);
    CHECK_EQ(got, n);
    CHECK_MEMEQ(v, back, n);
    /* Java writes (reversed bytes), C reads. */
    for (size_t j = 0; j < n; j++) back[j] = v[n - 1 - j];
    CHECK_RC(hzshm__peer_set(p, map, k, strlen(k), back, n), 0);
    res_reset(&r);
    CHECK_RC(hzc_map_get(c, map, k, strlen(k), res_cb, &r), 0);
    CHECK_RC(wait_res(&r), 0);
    CHECK_EQ(r.type, HZC_BYTES);
    CHECK_EQ(r.len, n);
    CHECK((n == 0 || memcmp(r.data, back, n) == 0));
    free(v);
    free(back);
  }

  /* The Java client's writes reached our listener, with its UUID as source. */
  char java_uuid[64];
  CHECK_RC(hzshm__peer_cmd(p, T_MS, java_uuid, sizeof(java_uuid), "uuid"), 0);
  inv.n = 0;
  CHECK_RC(hzshm__peer_cmd(p, T_MS, reply, sizeof(reply), "set %s marker 01", map), 0);
  CHECK_RC(hzc_run_until(&loop, &inv.marker, T_MS), 0);
  char src[37];
  uuid_str(&inv.source, src);
  CHECK_STREQ(src, java_uuid + 3);

  /* A String value written by Java is a type mismatch for our byte[] API. */
  CHECK_RC(hzshm__peer_cmd(p, T_MS, reply, sizeof(reply), "putstring %s s1 text", map), 0);
  res_reset(&r);
  CHECK_RC(hzc_map_get(c, map, "s1", 2, res_cb, &r), 0);
  int st = wait_res(&r);
  CHECK(st == HZSHM_ETYPE || (st == 0 && r.type == HZC_STRING && r.len == 4));

  /* C deletes, Java sees it gone; Java clears, C sees the map empty. */
  res_reset(&r);
  CHECK_RC(hzc_map_delete(c, map, "k1", 2, res_cb, &r), 0);
  CHECK_RC(wait_res(&r), 0);
  uint8_t small[8];
  size_t vlen;
  CHECK_RC(hzshm__peer_get(p, map, "k1", 2, small, sizeof(small), &vlen), HZSHM_ENOTFOUND);
  CHECK_RC(hzshm__peer_cmd(p, T_MS, reply, sizeof(reply), "clear %s", map), 0);
  res_reset(&r);
  CHECK_RC(hzc_map_size(c, map, res_cb, &r), 0);
  CHECK_RC(wait_res(&r), 0);
  CHECK_EQ(r.number, 0);

  CHECK_RC(hzc_listener_remove(c, l), 0);
  CHECK_RC(hzshm__peer_cmd(p, T_MS, reply, sizeof(reply), "destroy %s", map), 0);
  CHECK_RC(hzshm__peer_stop(p, 20000), 0);
  int closed = 0;
  hzc_client_close(c, close_cb, &closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(closed, 1);
  uv_loop_close(&loop);
  free(r.data);
  printf("test_hzc_interop: all checks passed\n");
}
