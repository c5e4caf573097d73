/* test_interop.c - byte compatibility with the official Java client
 * (tests/interop/HzPeer.java through peer.h) on one member: what our client
 * writes the Java client reads and the other way round (ASCII, non-ASCII and
 * empty keys, empty / binary / 400 KiB values), String values written by Java
 * are reported as HZC_STRING, both compute the same partition for a key, and
 * the invalidations and distributed-object events caused by the official
 * client reach our listeners with its UUID as source. */
#include <unistd.h>

#include "hzt.h"
#include "peer.h"

static uv_loop_t *loop;
static hzc_client_t *c;
static const char *MAP;

typedef struct {
  int n, clears;
  char key[128];
  hzc_uuid_t source;
} inv_t;
static inv_t inv;
static void on_inv(hzc_client_t *cl, const char *map, const hzc_invalidation_t *i, void *ud) {
  inv.n++;
  inv.source = i->source;
  if (!i->key) {
    inv.clears++;
    inv.key[0] = 0;
    return;
  }
  size_t n = i->klen < sizeof inv.key - 1 ? i->klen : sizeof inv.key - 1;
  memcpy(inv.key, i->key, n);
  inv.key[n] = 0;
}
static int inv_key_is(void *k) { return strcmp(inv.key, k) == 0; }
static int inv_clears(void *want) { return inv.clears >= *(int *)want; }

static int created, destroyed;
static hzc_uuid_t obj_source;
static void on_obj(hzc_client_t *cl, const char *service, const char *name, int d, const hzc_uuid_t *src, void *ud) {
  if (strcmp(name, MAP) != 0) return;
  obj_source = *src;
  if (d) destroyed++;
  else created++;
}
static int got_created(void *a) { return created > 0; }
static int got_destroyed(void *a) { return destroyed > 0; }

static void parse_uuid(const char *s, hzc_uuid_t *u) {
  int j = 0;
  for (const char *p = s; *p && j < 16; p++) {
    if (*p == '-') continue;
    unsigned v;
    CHECK_EQ(sscanf(p, "%2x", &v), 1);
    u->b[j++] = (uint8_t)v;
    p++;
  }
  CHECK_EQ(j, 16);
}

TEST_CASE(java_interop) {
  char addrs[4][64];
  size_t n = hzt_addrs(addrs, 4);
  loop = uv_default_loop();
  c = hzt_connect(loop, addrs, n);
  char members[256] = "";
  for (size_t i = 0; i < n; i++) snprintf(members + strlen(members), sizeof members - strlen(members), "%s%s", i ? "," : "", addrs[i]);
  hzshm__peer_t *p;
  CHECK_RC(hzshm__peer_start(members, "dev", 120000, &p), 0);
  char reply[4096];
  CHECK_RC(hzshm__peer_cmd(p, 30000, reply, sizeof reply, "uuid"), 0);
  hzc_uuid_t peer_uuid, me = hzc_client_uuid(c);
  parse_uuid(reply + 3, &peer_uuid);
  char map[64];
  snprintf(map, sizeof map, "hzt-interop-%d", (int)getpid());
  MAP = map;

  hzc_listener_t *li, *lo;
  hzt_status_t s1 = {0, 0}, s2 = {0, 0};
  CHECK_RC(hzc_listen_objects(c, on_obj, NULL, hzt_status_cb, &s1, &lo), 0);
  CHECK_RC(hzc_run_until(loop, &s1.done, HZT_TIMEOUT), 0);
  CHECK_RC(s1.status, 0);
  CHECK_RC(hzc_map_listen_invalidations(c, map, on_inv, NULL, hzt_status_cb, &s2, &li), 0);
  CHECK_RC(hzc_run_until(loop, &s2.done, HZT_TIMEOUT), 0);
  CHECK_RC(s2.status, 0);

  /* keys and values in both directions */
  static const char *keys[] = {"plain", "", "ключ", "ü€-\xF0\x9F\x98\x80", "with space"};
  size_t big = 400 * 1024;
  uint8_t *bv = malloc(big), *got = malloc(big + 16);
  for (size_t i = 0; i < big; i++) bv[i] = (uint8_t)(i * 7 + (i >> 9));
  const struct {
    const uint8_t *v;
    size_t n;
  } vals[] = {{(const uint8_t *)"v", 1}, {(const uint8_t *)"", 0}, {(const uint8_t *)"\x00\xff\x00", 3}, {bv, big}};
  hzt_res_t res = {0};
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    for (size_t v = 0; v < sizeof vals / sizeof vals[0]; v++) {
      const char *key = keys[k];
      /* ours -> Java */
      HZT_SYNC(loop, &res, hzc_map_set(c, map, key, strlen(key), vals[v].v, vals[v].n, -1, hzt_res_cb, &res));
      CHECK_RC(res.status, 0);
      size_t glen = 0;
      CHECK_RC(hzshm__peer_get(p, map, key, strlen(key), got, big + 16, &glen), 0);
      CHECK_EQ(glen, vals[v].n);
      CHECK((glen == 0 || memcmp(got, vals[v].v, glen) == 0));
      /* Java -> ours */
      CHECK_RC(hzshm__peer_delete(p, map, key, strlen(key)), 0);
      CHECK_RC(hzshm__peer_set(p, map, key, strlen(key), vals[v].v, vals[v].n), 0);
      HZT_SYNC(loop, &res, hzc_map_get(c, map, key, strlen(key), hzt_res_cb, &res));
      CHECK_RC(res.status, 0);
      CHECK_EQ(res.type, HZC_BYTES);
      CHECK_EQ(res.type_id, -12);
      CHECK_EQ(res.len, vals[v].n);
      CHECK(res.len == 0 || memcmp(res.data, vals[v].v, res.len) == 0);
    }
    /* same partition as the official client */
    char hex[256] = "x:";
    for (size_t i = 0; i < strlen(keys[k]); i++) sprintf(hex + 2 + 2 * i, "%02x", (uint8_t)keys[k][i]);
    CHECK_RC(hzshm__peer_cmd(p, 30000, reply, sizeof reply, "partition %s", hex), 0);
    CHECK_EQ((uint32_t)atoi(reply + 3), hzc_key_partition(c, keys[k], strlen(keys[k])));
  }
  /* a java.lang.String value: reported as HZC_STRING with its UTF-8 */
  CHECK_RC(hzshm__peer_cmd(p, 30000, reply, sizeof reply, "putstring %s x:6b73 h\xC3\xA9llo", map), 0);
  HZT_SYNC(loop, &res, hzc_map_get(c, map, "ks", 2, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  CHECK_EQ(res.type, HZC_STRING);
  CHECK_EQ(res.type_id, -11);
  CHECK_EQ(res.len, 6);
  CHECK_MEMEQ(res.data, "h\xC3\xA9llo", 6);

  /* invalidations caused by the official client carry its UUID */
  CHECK_RC(hzshm__peer_set(p, map, "by-java", 7, "j", 1), 0);
  CHECK(hzt_until(loop, inv_key_is, "by-java", 30000));
  CHECK_MEMEQ(&inv.source, &peer_uuid, 16);
  CHECK_NE(memcmp(&inv.source, &me, 16), 0);
  strcpy(inv.key, "-");
  CHECK_RC(hzshm__peer_delete(p, map, "by-java", 7), 0);
  CHECK(hzt_until(loop, inv_key_is, "by-java", 30000));
  int want = inv.clears + 1;
  CHECK_RC(hzshm__peer_cmd(p, 30000, reply, sizeof reply, "clear %s", map), 0);
  CHECK(hzt_until(loop, inv_clears, &want, 30000));
  CHECK_MEMEQ(&inv.source, &peer_uuid, 16);

  /* distributed objects: the Java client's getMap creates a proxy, destroy destroys it */
  CHECK(hzt_until(loop, got_created, NULL, 30000));
  want = inv.clears + 1;
  CHECK_RC(hzshm__peer_cmd(p, 30000, reply, sizeof reply, "destroy %s", map), 0);
  CHECK(hzt_until(loop, got_destroyed, NULL, 30000));
  CHECK_MEMEQ(&obj_source, &peer_uuid, 16);
  /* destroy: a clear-all from the member, with the member's UUID as source (PROTOCOL-NOTES §5) */
  CHECK(hzt_until(loop, inv_clears, &want, 30000));
  CHECK_NE(memcmp(&inv.source, &peer_uuid, 16), 0);
  CHECK_NE(memcmp(&inv.source, &me, 16), 0);

  hzt_res_reset(&res);
  free(bv);
  free(got);
  CHECK_RC(hzc_listener_remove(c, li), 0);
  CHECK_RC(hzc_listener_remove(c, lo), 0);
  CHECK_RC(hzshm__peer_stop(p, 20000), 0);
  hzt_close(loop, c);
  CHECK_EQ(uv_loop_close(loop), 0);
  printf("test_interop: OK\n");
}
