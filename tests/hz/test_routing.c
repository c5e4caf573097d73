/* test_routing.c - three members: smart routing sends every key request to
 * the partition owner (counted per member connection); then one member is
 * SIGKILLed while reads and writes are in flight: retryable reads complete,
 * no acknowledged write is lost (backup count 1), the member list and
 * partition table update, and invalidation listeners keep delivering. */
#include <unistd.h>

#include "hzt.h"

static uv_loop_t *loop;
static hzc_client_t *c;
static int members_events, partitions_events;

static void on_event(hzc_client_t *cl, const hzc_event_t *ev, void *ud) {
  if (ev->kind == HZC_EV_MEMBERS) members_events++;
  if (ev->kind == HZC_EV_PARTITIONS) partitions_events++;
}

static int ready3(void *a) {
  hzc_stats_t st;
  hzc_client_stats(c, &st);
  if (st.connections != 3 || hzc_member_count(c) != 3 || partitions_events == 0) return 0;
  for (uint32_t p = 0; p < hzc_partition_count(c); p++)
    if (hzc_partition_owner(c, p) < 0) return 0;
  return 1;
}

/* ---- async workload ---- */
enum { NW = 400 };
typedef struct {
  int idx, is_write, done, status;
} op_t;
static op_t ops[4 * NW];
static int nops, ndone;
static char acked[NW]; /* write i acknowledged */

static void op_cb(hzc_client_t *cl, const hzc_result_t *r, void *ud) {
  op_t *o = ud;
  o->done = 1;
  o->status = r->status;
  if (o->is_write && r->status == 0) acked[o->idx] = 1;
  ndone++;
}

static void key_of(int i, char *k, size_t n) { snprintf(k, n, "rk-%d", i); }

static void issue_write(int i) {
  char k[32], v[32];
  key_of(i, k, sizeof k);
  snprintf(v, sizeof v, "val-%d", i);
  op_t *o = &ops[nops++];
  o->idx = i;
  o->is_write = 1;
  CHECK_RC(hzc_map_set(c, "hzt-routing", k, strlen(k), v, strlen(v), -1, op_cb, o), 0);
}

static void issue_read(int i) {
  char k[32];
  key_of(i, k, sizeof k);
  op_t *o = &ops[nops++];
  o->idx = i;
  CHECK_RC(hzc_map_get(c, "hzt-routing", k, strlen(k), op_cb, o), 0);
}

static int all_done(void *a) { return ndone == nops; }

/* ---- invalidations ---- */
static char seen_inv[NW];
static void on_inv(hzc_client_t *cl, const char *map, const hzc_invalidation_t *inv, void *ud) {
  int i;
  char buf[32];
  if (!inv->key || inv->klen >= sizeof buf) return;
  memcpy(buf, inv->key, inv->klen);
  buf[inv->klen] = 0;
  if (sscanf(buf, "rk-%d", &i) == 1 && i >= 0 && i < NW) seen_inv[i] = 1;
}
typedef struct {
  int from, to;
} range_t;
static int invs_seen(void *a) {
  range_t *r = a;
  for (int i = r->from; i < r->to; i++)
    if (!seen_inv[i]) return 0;
  return 1;
}
static int two_members(void *a) {
  hzc_stats_t st;
  hzc_client_stats(c, &st);
  if (hzc_member_count(c) != 2 || st.connections != 2) return 0;
  for (uint32_t p = 0; p < hzc_partition_count(c); p++) {
    int32_t o = hzc_partition_owner(c, p);
    if (o < 0 || o > 1) return 0;
  }
  return *(int *)a < partitions_events;
}

TEST_CASE(routing) {
  char addrs[8][64];
  size_t n = hzt_addrs(addrs, 8);
  CHECK_EQ(n, 3);
  loop = uv_default_loop();
  const char *a[3] = {addrs[0], addrs[1], addrs[2]};
  /* only the first address as seed: the rest must come from the member list */
  hzc_config_t cfg = {.addrs = a, .naddrs = 1, .smart = 1, .heartbeat_interval_ms = 600000,
                      .heartbeat_timeout_ms = 600000, .invocation_timeout_ms = 60000};
  hzc_client_t *cc;
  CHECK_RC(hzc_client_new(loop, &(hzc_config_t){.addrs = a, .naddrs = 1, .cluster_name = "dev"}, &cc), 0);
  hzt_close(loop, cc); /* a client that never connected closes cleanly */
  cfg.cluster_name = "dev";
  CHECK_RC(hzc_client_new(loop, &cfg, &c), 0);
  hzc_client_set_event_cb(c, on_event, NULL);
  hzt_status_t st0 = {0, 0};
  CHECK_RC(hzc_client_connect(c, hzt_status_cb, &st0), 0);
  CHECK_RC(hzc_run_until(loop, &st0.done, HZT_TIMEOUT), 0);
  CHECK_RC(st0.status, 0);
  /* Partition assignment is lazy; our TriggerPartitionAssignment makes a table arrive. */
  CHECK(hzt_until(loop, ready3, NULL, 60000));

  /* routing: requests per member == keys it owns */
  int64_t before[3], expect[3] = {0, 0, 0};
  for (uint32_t i = 0; i < 3; i++) before[i] = hzc_member_requests(c, i);
  for (int i = 0; i < 300; i++) {
    char k[32];
    key_of(i, k, sizeof k);
    expect[hzc_partition_owner(c, hzc_key_partition(c, k, strlen(k)))]++;
    issue_read(i);
  }
  CHECK(hzt_until(loop, all_done, NULL, 60000));
  for (uint32_t i = 0; i < 3; i++) {
    int64_t got = hzc_member_requests(c, i) - before[i];
    printf("member %u: %lld key requests, owns %lld of the keys\n", i, (long long)got, (long long)expect[i]);
    CHECK_EQ(got, expect[i]);
    CHECK_GT(expect[i], 0);
  }
  CHECK_EQ(hzc_member_requests(c, 3), -1);

  /* unisocket (smart = 0): one connection, key operations still served */
  {
    hzc_config_t ucfg = {.addrs = a, .naddrs = 1, .smart = 0, .cluster_name = "dev"};
    hzc_client_t *u = hzt_connect_cfg(loop, &ucfg);
    hzt_res_t ures = {0};
    for (int i = 0; i < 20; i++) {
      char k[32];
      key_of(1000 + i, k, sizeof k);
      HZT_SYNC(loop, &ures, hzc_map_set(u, "hzt-routing-uni", k, strlen(k), "u", 1, -1, hzt_res_cb, &ures));
      CHECK_RC(ures.status, 0);
      HZT_SYNC(loop, &ures, hzc_map_get(u, "hzt-routing-uni", k, strlen(k), hzt_res_cb, &ures));
      CHECK_EQ(ures.status, 0);
      CHECK_EQ(ures.type, HZC_BYTES);
      CHECK_EQ(ures.len, 1);
    }
    hzt_res_reset(&ures);
    hzc_stats_t us;
    hzc_client_stats(u, &us);
    CHECK_EQ(us.connections, 1);
    CHECK_EQ(hzc_member_count(u), 3);
    hzt_close(loop, u);
  }

  /* listener on every member connection */
  hzc_listener_t *l;
  hzt_status_t ls = {0, 0};
  CHECK_RC(hzc_map_listen_invalidations(c, "hzt-routing", on_inv, NULL, hzt_status_cb, &ls, &l), 0);
  CHECK_RC(hzc_run_until(loop, &ls.done, HZT_TIMEOUT), 0);
  CHECK_RC(ls.status, 0);

  /* phase 1: writes 0..199 */
  nops = ndone = 0;
  for (int i = 0; i < 200; i++) issue_write(i);
  CHECK(hzt_until(loop, all_done, NULL, 60000));
  for (int i = 0; i < 200; i++) CHECK(acked[i]);
  range_t r1 = {0, 200};
  CHECK(hzt_until(loop, invs_seen, &r1, 30000));

  /* phase 2: reads and writes in flight, then member 1 is killed */
  int pe = partitions_events;
  nops = ndone = 0;
  for (int i = 200; i < 300; i++) issue_write(i);
  for (int i = 0; i < 200; i++) issue_read(i);
  CHECK_EQ(hzt_member_cmd("kill --index 1"), 0);
  CHECK(hzt_until(loop, all_done, NULL, 90000));
  int failed_writes = 0;
  for (int j = 0; j < nops; j++) {
    if (ops[j].is_write) {
      if (ops[j].status) failed_writes++;
      CHECK(ops[j].status == 0 || ops[j].status == HZSHM_ECLOSED || ops[j].status == HZSHM_EREMOTE);
    } else {
      CHECK_RC(ops[j].status, 0); /* retryable reads complete */
    }
  }
  printf("in-flight writes not acknowledged after the kill: %d of 100\n", failed_writes);
  CHECK(hzt_until(loop, two_members, &pe, 90000));

  /* phase 3: more writes after the kill all succeed */
  nops = ndone = 0;
  for (int i = 300; i < NW; i++) issue_write(i);
  CHECK(hzt_until(loop, all_done, NULL, 60000));
  for (int i = 300; i < NW; i++) CHECK(acked[i]);
  range_t r3 = {300, NW};
  CHECK(hzt_until(loop, invs_seen, &r3, 30000)); /* listeners keep delivering */

  /* no acknowledged write is lost */
  hzt_res_t res = {0};
  int checked = 0;
  for (int i = 0; i < NW; i++) {
    if (!acked[i]) continue;
    char k[32], v[32];
    key_of(i, k, sizeof k);
    snprintf(v, sizeof v, "val-%d", i);
    HZT_SYNC(loop, &res, hzc_map_get(c, "hzt-routing", k, strlen(k), hzt_res_cb, &res));
    CHECK_RC(res.status, 0);
    CHECK_EQ(res.type, HZC_BYTES);
    CHECK_EQ(res.len, strlen(v));
    CHECK_MEMEQ(res.data, v, res.len);
    checked++;
  }
  hzt_res_reset(&res);
  hzc_stats_t st;
  hzc_client_stats(c, &st);
  printf("acknowledged writes verified: %d; retries %llu, members events %d, partitions events %d\n", checked,
         (unsigned long long)st.retries, members_events, partitions_events);
  CHECK_GE(checked, NW - 100);
  CHECK_RC(hzc_listener_remove(c, l), 0);
  hzt_close(loop, c);
  CHECK_EQ(uv_loop_close(loop), 0);
  printf("test_routing: OK\n");
}
