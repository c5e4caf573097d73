/* test_member.c - every operation of hzc.h against one real member:
 * get/contains/set/put/remove/delete/clear/size/destroy/getAll/putAll with
 * empty, large (1.5 MiB), binary values and non-ASCII keys; the invalidation
 * listener (our own writes carry our UUID as source), metadata fetch,
 * distributed-object events, listener removal, bad arguments and close with
 * requests in flight. Prints the protocol observations it verifies. */
#include <unistd.h>

#include "hzt.h"

static uv_loop_t *loop;
static hzc_client_t *c;
static hzt_res_t res;

typedef struct {
  int n, clears;
  char last_key[256];
  size_t last_klen;
  hzc_invalidation_t last;
  int key_is_string;
} inv_rec_t;

static void on_inv(hzc_client_t *cl, const char *map, const hzc_invalidation_t *inv, void *ud) {
  inv_rec_t *r = ud;
  r->n++;
  r->last = *inv;
  if (!inv->key) {
    r->clears++;
    r->last_klen = 0;
  } else {
    r->last_klen = inv->klen < sizeof r->last_key ? inv->klen : sizeof r->last_key - 1;
    memcpy(r->last_key, inv->key, r->last_klen);
    r->last_key[r->last_klen] = 0;
  }
  r->last.key = NULL;
  r->key_is_string = inv->key_is_string;
}

typedef struct {
  inv_rec_t *r;
  int want;
} inv_wait_t;
static int inv_reached(void *a) {
  inv_wait_t *w = a;
  return w->r->n >= w->want;
}

typedef struct {
  int created, destroyed;
  char name[256];
  hzc_uuid_t source;
} obj_rec_t;
static void on_obj(hzc_client_t *cl, const char *service, const char *name, int destroyed, const hzc_uuid_t *src,
                   void *ud) {
  obj_rec_t *o = ud;
  if (strcmp(service, "hz:impl:mapService") != 0) return;
  snprintf(o->name, sizeof o->name, "%s", name);
  o->source = *src;
  if (destroyed) o->destroyed++;
  else o->created++;
}
static int obj_destroyed(void *a) { return ((obj_rec_t *)a)->destroyed > 0; }
static int obj_created(void *a) { return ((obj_rec_t *)a)->created > 0; }

typedef struct {
  int entries, bad;
} ga_t;
typedef struct {
  hzt_res_t res; /* first: hzt_res_cb gets the same ud */
  ga_t ga;
} ga_ud_t;
static void on_entry(hzc_client_t *cl, const void *key, size_t klen, const hzc_value_t *v, void *ud) {
  ga_t *g = &((ga_ud_t *)ud)->ga;
  g->entries++;
  /* value of "bk-N" is "bv-N" */
  char k[64], want[64];
  snprintf(k, sizeof k, "%.*s", (int)klen, (const char *)key);
  snprintf(want, sizeof want, "bv-%s", k + 3);
  if (v->type != HZC_BYTES || v->len != strlen(want) || memcmp(v->data, want, v->len)) g->bad++;
}
typedef struct {
  int seqs, uuids;
  int64_t max_seq_for[2];
  int32_t want_partition;
} meta_t;
typedef struct {
  hzt_res_t res;
  meta_t meta;
} meta_ud_t;
static void on_seq(hzc_client_t *cl, const char *map, int32_t p, int64_t s, void *ud) {
  meta_t *m = &((meta_ud_t *)ud)->meta;
  m->seqs++;
  if (p == m->want_partition && s > m->max_seq_for[0]) m->max_seq_for[0] = s;
}
static void on_uuid(hzc_client_t *cl, int32_t p, const hzc_uuid_t *u, void *ud) { ((meta_ud_t *)ud)->meta.uuids++; }

static void set_ok(const char *map, const char *k, size_t klen, const void *v, size_t vlen) {
  HZT_SYNC(loop, &res, hzc_map_set(c, map, k, klen, v, vlen, -1, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
}

static void get_expect(const char *map, const char *k, size_t klen, const void *v, size_t vlen) {
  HZT_SYNC(loop, &res, hzc_map_get(c, map, k, klen, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  if (!v) {
    CHECK_EQ(res.type, HZC_NULL);
    return;
  }
  CHECK_EQ(res.type, HZC_BYTES);
  CHECK_EQ(res.type_id, -12);
  CHECK_EQ(res.len, vlen);
  CHECK(vlen == 0 || memcmp(res.data, v, vlen) == 0);
}

/* The member's invalidation metadata of map; max_seq_for[0]: partition part's sequence. */
static meta_ud_t fetch_meta(const char *map, int32_t part) {
  meta_ud_t mu;
  memset(&mu, 0, sizeof mu);
  mu.meta.want_partition = part;
  const char *maps[1] = {map};
  CHECK_RC(hzc_fetch_invalidation_metadata(c, maps, 1, on_seq, on_uuid, hzt_res_cb, &mu), 0);
  CHECK_RC(hzt_wait(loop, &mu.res), 0);
  hzt_res_reset(&mu.res);
  return mu;
}

static int uuid_zero(const hzc_uuid_t *u) {
  static const hzc_uuid_t z;
  return memcmp(u, &z, sizeof z) == 0;
}

TEST_CASE(member_ops) {
  char addrs[8][64];
  size_t n = hzt_addrs(addrs, 8);
  loop = uv_default_loop();
  c = hzt_connect(loop, addrs, n);
  CHECK(hzc_connected(c));
  CHECK_EQ(hzc_partition_count(c), 271);
  hzc_uuid_t me = hzc_client_uuid(c), cid = hzc_cluster_id(c);
  CHECK(!uuid_zero(&me) && !uuid_zero(&cid));

  char map[64];
  snprintf(map, sizeof map, "hzt-member-%d", (int)getpid());

  /* listeners first, so every change below is observed */
  inv_rec_t inv = {0};
  hzt_status_t lst = {0, 0};
  hzc_listener_t *l1, *l2, *lo;
  CHECK_RC(hzc_map_listen_invalidations(c, map, on_inv, &inv, hzt_status_cb, &lst, &l1), 0);
  CHECK_RC(hzc_run_until(loop, &lst.done, HZT_TIMEOUT), 0);
  CHECK_RC(lst.status, 0);
  obj_rec_t obj = {0};
  hzt_status_t ost = {0, 0};
  CHECK_RC(hzc_listen_objects(c, on_obj, &obj, hzt_status_cb, &ost, &lo), 0);
  CHECK_RC(hzc_run_until(loop, &ost.done, HZT_TIMEOUT), 0);
  CHECK_RC(ost.status, 0);

  /* CreateProxy -> CREATED event (a member publishes object events only for proxies) */
  HZT_SYNC(loop, &res, hzc_map_create(c, map, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  CHECK(hzt_until(loop, obj_created, &obj, 30000));
  CHECK_STREQ(obj.name, map);
  CHECK_MEMEQ(&obj.source, &me, sizeof me);

  /* set/get, the invalidation of our own write carries our UUID */
  set_ok(map, "k1", 2, "v1", 2);
  get_expect(map, "k1", 2, "v1", 2);
  inv_wait_t w = {&inv, 1};
  CHECK(hzt_until(loop, inv_reached, &w, 30000));
  CHECK_EQ(inv.last_klen, 2);
  CHECK_MEMEQ(inv.last_key, "k1", 2);
  CHECK(inv.key_is_string);
  CHECK_MEMEQ(&inv.last.source, &me, sizeof me);
  CHECK_EQ(inv.last.partition, (int32_t)hzc_key_partition(c, "k1", 2));
  CHECK_EQ(inv.last.partition, 21); /* hazelcast-client-protocol.md §2.3 B: "k1" -> 21 of 271 */
  CHECK(inv.last.sequence >= 1 && !uuid_zero(&inv.last.partition_uuid));
  int64_t seq_k1 = inv.last.sequence;

  /* put returns the old value; absent -> NULL */
  HZT_SYNC(loop, &res, hzc_map_put(c, map, "k1", 2, "v2", 2, -1, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  CHECK_EQ(res.type, HZC_BYTES);
  CHECK_EQ(res.len, 2);
  CHECK_MEMEQ(res.data, "v1", 2);
  HZT_SYNC(loop, &res, hzc_map_put(c, map, "k2", 2, "x", 1, 0, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  CHECK_EQ(res.type, HZC_NULL);

  /* contains */
  HZT_SYNC(loop, &res, hzc_map_contains(c, map, "k1", 2, hzt_res_cb, &res));
  CHECK_EQ(res.status, 0);
  CHECK_EQ(res.boolean, 1);
  HZT_SYNC(loop, &res, hzc_map_contains(c, map, "nope", 4, hzt_res_cb, &res));
  CHECK_EQ(res.status, 0);
  CHECK_EQ(res.boolean, 0);
  get_expect(map, "nope", 4, NULL, 0);

  /* empty value, empty key, binary value, large value, non-ASCII keys */
  set_ok(map, "empty", 5, "", 0);
  get_expect(map, "empty", 5, "", 0);
  set_ok(map, "", 0, "ek", 2);
  get_expect(map, "", 0, "ek", 2);
  uint8_t bin[256];
  for (int i = 0; i < 256; i++) bin[i] = (uint8_t)i;
  set_ok(map, "bin", 3, bin, sizeof bin);
  get_expect(map, "bin", 3, bin, sizeof bin);
  size_t big = 1536 * 1024;
  uint8_t *bv = malloc(big);
  for (size_t i = 0; i < big; i++) bv[i] = (uint8_t)(i * 2654435761u >> 13);
  set_ok(map, "big", 3, bv, big);
  get_expect(map, "big", 3, bv, big);
  const char *nk = "ключ-ü-€-\xF0\x9F\x98\x80"; /* Cyrillic, Latin-1, BMP, supplementary */
  set_ok(map, nk, strlen(nk), "uni", 3);
  get_expect(map, nk, strlen(nk), "uni", 3);

  /* bad input: clear error, nothing sent */
  hzc_stats_t st0, st1;
  hzc_client_stats(c, &st0);
  CHECK_RC(hzc_map_set(c, map, "\xC0\x80", 2, "v", 1, -1, hzt_res_cb, &res), HZSHM_EINVAL); /* overlong */
  CHECK_RC(hzc_map_set(c, map, "\xED\xA0\x80", 3, "v", 1, -1, hzt_res_cb, &res), HZSHM_EINVAL); /* surrogate */
  CHECK_RC(hzc_map_get(c, NULL, "k", 1, hzt_res_cb, &res), HZSHM_EINVAL);
  CHECK_RC(hzc_map_get(c, "", "k", 1, hzt_res_cb, &res), HZSHM_EINVAL);
  CHECK_RC(hzc_map_get(c, map, NULL, 3, hzt_res_cb, &res), HZSHM_EINVAL);
  CHECK_RC(hzc_map_set(c, map, "k", 1, "v", 1, -2, hzt_res_cb, &res), HZSHM_EINVAL);
  CHECK_RC(hzc_map_set(c, map, "k", 1, NULL, 1, -1, hzt_res_cb, &res), HZSHM_EINVAL);
  hzc_client_stats(c, &st1);
  CHECK_EQ(st1.requests_sent, st0.requests_sent);

  /* remove / delete: present and absent; note which ones invalidate */
  int before = inv.n;
  HZT_SYNC(loop, &res, hzc_map_remove(c, map, "k2", 2, hzt_res_cb, &res));
  CHECK_EQ(res.status, 0);
  CHECK_EQ(res.type, HZC_BYTES);
  CHECK_EQ(res.len, 1);
  CHECK_EQ(res.data[0], 'x');
  w.want = before + 1;
  CHECK(hzt_until(loop, inv_reached, &w, 30000));
  HZT_SYNC(loop, &res, hzc_map_delete(c, map, "k1", 2, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  printf("observed: Delete of a present key -> response bool %d\n", res.boolean);
  CHECK_EQ(res.boolean, 1);
  w.want = before + 2;
  CHECK(hzt_until(loop, inv_reached, &w, 30000));
  HZT_SYNC(loop, &res, hzc_map_delete(c, map, "k1", 2, hzt_res_cb, &res));
  printf("observed: Delete of an absent key -> response bool %d\n", res.boolean);
  CHECK_EQ(res.status, 0);
  CHECK_EQ(res.boolean, 0);
  HZT_SYNC(loop, &res, hzc_map_remove(c, map, "absent", 6, hzt_res_cb, &res));
  CHECK_EQ(res.status, 0);
  CHECK_EQ(res.type, HZC_NULL);
  /* A marker write after the absent remove/delete: events arrive in order on
   * one connection, so seeing the marker means any earlier event arrived. */
  int mark = inv.n;
  set_ok(map, "marker", 6, "m", 1);
  w.want = mark + 1;
  CHECK(hzt_until(loop, inv_reached, &w, 30000));
  if (inv.n > mark + 1 || strcmp(inv.last_key, "marker") != 0) {
    w.want = inv.n + 1;
    (void)hzt_until(loop, inv_reached, &w, 5000);
  }
  printf("observed: absent delete+remove produced %d invalidation(s) before the marker\n",
         inv.n - mark - 1 >= 0 ? inv.n - mark - 1 : 0);
  CHECK_STREQ(inv.last_key, "marker");

  /* putAll / getAll over many partitions */
  enum { NB = 100 };
  hzc_kv_t kv[NB + 5];
  char kbuf[NB + 5][16], vbuf[NB][16];
  for (int i = 0; i < NB + 5; i++) {
    snprintf(kbuf[i], sizeof kbuf[i], "bk-%d", i);
    kv[i].key = kbuf[i];
    kv[i].klen = strlen(kbuf[i]);
    if (i < NB) {
      snprintf(vbuf[i], sizeof vbuf[i], "bv-%d", i);
      kv[i].val = vbuf[i];
      kv[i].vlen = strlen(vbuf[i]);
    }
  }
  HZT_SYNC(loop, &res, hzc_map_put_all(c, map, kv, NB, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  ga_ud_t ga;
  memset(&ga, 0, sizeof ga);
  CHECK_RC(hzc_map_get_all(c, map, kv, NB + 5, on_entry, hzt_res_cb, &ga), 0);
  CHECK_RC(hzt_wait(loop, &ga.res), 0);
  CHECK_EQ(ga.ga.entries, NB);
  CHECK_EQ(ga.ga.bad, 0);
  hzt_res_reset(&ga.res);
  HZT_SYNC(loop, &res, hzc_map_get_all(c, map, kv, 0, on_entry, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);

  /* size */
  HZT_SYNC(loop, &res, hzc_map_size(c, map, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  int64_t size = res.number;
  CHECK_EQ(size, NB + 6); /* empty, "", bin, big, nk, marker + 100 */

  /* metadata: sequences of our map and partition uuids */
  meta_ud_t mu = fetch_meta(map, 21);
  printf("observed: metadata: %d partition uuids, %d sequences\n", mu.meta.uuids, mu.meta.seqs);
  CHECK_EQ(mu.meta.uuids, 271);
  CHECK_GT(mu.meta.seqs, 0);
  CHECK_GE(mu.meta.max_seq_for[0], seq_k1);

  /* clear -> one clear-all (null key) invalidation */
  int clears = inv.clears;
  HZT_SYNC(loop, &res, hzc_map_clear(c, map, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  HZT_SYNC(loop, &res, hzc_map_size(c, map, hzt_res_cb, &res));
  CHECK_EQ(res.status, 0);
  CHECK_EQ(res.number, 0);
  w.want = inv.n + 1;
  while (inv.clears == clears) {
    CHECK(hzt_until(loop, inv_reached, &w, 30000));
    w.want = inv.n + 1;
  }
  CHECK_EQ(inv.last_klen, 0);
  printf("observed: clear-all event header partition %d, map-name partition %u\n", inv.last.partition,
         hzc_key_partition(c, map, strlen(map)));

  /* listener removal: l1 gets nothing after remove while l2 still does */
  inv_rec_t inv2 = {0};
  hzt_status_t lst2 = {0, 0};
  CHECK_RC(hzc_map_listen_invalidations(c, map, on_inv, &inv2, hzt_status_cb, &lst2, &l2), 0);
  CHECK_RC(hzc_run_until(loop, &lst2.done, HZT_TIMEOUT), 0);
  CHECK_RC(hzc_listener_remove(c, l1), 0);
  int n1 = inv.n;
  set_ok(map, "after-remove", 12, "z", 1);
  inv_wait_t w2 = {&inv2, 1};
  CHECK(hzt_until(loop, inv_reached, &w2, 30000));
  CHECK_EQ(inv.n, n1);
  CHECK_RC(hzc_listener_remove(c, l1), HZSHM_EINVAL); /* already removed */

  /* destroy -> DESTROYED distributed-object event with our map name */
  HZT_SYNC(loop, &res, hzc_map_destroy(c, map, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  CHECK(hzt_until(loop, obj_destroyed, &obj, 30000));
  CHECK_STREQ(obj.name, map);
  CHECK_MEMEQ(&obj.source, &me, sizeof me);
  CHECK_EQ(obj.created, 1);
  CHECK_RC(hzc_listener_remove(c, l2), 0);
  CHECK_RC(hzc_listener_remove(c, lo), 0);

  /* A member generates no invalidation, and advances no sequence, for a map
   * without a near-cache registration on it (MapOperation checks
   * hasInvalidationListener first): an agent whose registration a member
   * dropped silently sees no member sequence ahead of it when no other
   * client has one there (docs/AGENT.md, lost registrations). */
  char map2[80];
  snprintf(map2, sizeof map2, "%s-unheard", map);
  for (int i = 0; i < 3; i++) set_ok(map2, "k1", 2, "u", 1);
  meta_ud_t mu2 = fetch_meta(map2, 21);
  printf("observed: 3 sets without a registration: sequence %lld in k1's partition\n",
         (long long)mu2.meta.max_seq_for[0]);
  CHECK_EQ(mu2.meta.max_seq_for[0], 0);
  inv_rec_t inv3 = {0};
  hzt_status_t lst3 = {0, 0};
  hzc_listener_t *l3;
  CHECK_RC(hzc_map_listen_invalidations(c, map2, on_inv, &inv3, hzt_status_cb, &lst3, &l3), 0);
  CHECK_RC(hzc_run_until(loop, &lst3.done, HZT_TIMEOUT), 0);
  CHECK_RC(lst3.status, 0);
  set_ok(map2, "k1", 2, "u", 1);
  inv_wait_t w3 = {&inv3, 1};
  CHECK(hzt_until(loop, inv_reached, &w3, 30000));
  CHECK_EQ(inv3.last.sequence, 1); /* the first one the member generated for the map */
  CHECK_RC(hzc_listener_remove(c, l3), 0);

  hzc_stats_t st;
  hzc_client_stats(c, &st);
  CHECK_EQ(st.connections, 1);
  CHECK_GT(st.requests_sent, 20);
  CHECK_GT(st.responses, 20);
  CHECK_GT(st.events, 5);

  /* close with a request in flight: it fails with ECLOSED */
  hzt_res_reset(&res);
  CHECK_RC(hzc_map_get(c, map, "k1", 2, hzt_res_cb, &res), 0);
  hzt_close(loop, c);
  CHECK(res.done);
  CHECK_EQ(res.status, HZSHM_ECLOSED);
  hzt_res_reset(&res);
  free(bv);
  CHECK_EQ(uv_loop_close(loop), 0);
  printf("test_member: OK\n");
}
