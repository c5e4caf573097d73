/* test_join.c - the client's joins to a cluster (cluster.c, cluster_join).
 *
 * (1) A join whose routing tables cannot be allocated. This binary links
 * malloc and calloc wrapped (-Wl,--wrap, tests/hz/CMakeLists.txt): a case
 * refuses exactly one allocation of the size of one table, once. The client
 * is connected to fake member A; A stops, and the client's next join is to
 * fake member B of another cluster (--cluster-id 7), where one of the two
 * tables is refused and the connection closed. Then the join must be retried
 * from scratch: the next event is again CLUSTER_CHANGED (the user clears what
 * it kept of cluster A; a RECONNECTED would tell it that B is A), both tables
 * are there (the key's partition has an owner and a watching connection), a
 * Put keyed to that partition reaches the member with its partition id, and
 * nothing leaks (ASan).
 *
 * (2) A rejoin to a member that reports the old cluster id but another
 * partition count (a cluster restarted under its id with another
 * configuration): CLUSTER_CHANGED, the new count, and a Put keyed by the new
 * count; with the same count (the control) RECONNECTED. Nothing is refused.
 *
 * (3) A bulk part (PutAll: one request per partition, its keys grouped by
 * the partition count of the moment) queued while disconnected, when the
 * rejoin brings another partition count: it must not reach the new cluster
 * with the old count's partition id (the member would store the entry in a
 * partition the key does not hash to, where no Get finds it). Either it is
 * sent with the key's partition under the new count, or it fails unsent. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fake_server_ctl.h"
#include "hzt.h"

/* 997 partitions: tables of 997 * 4 bytes (pmember) and 997 uuids (powner),
 * sizes nothing else in the client allocates. */
#define PARTS 997

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);

/* Loop thread only (the client's allocations; libuv's threads allocate in
 * libuv, which is not wrapped). */
static size_t refuse_malloc;                /* a malloc of exactly this many bytes fails once */
static size_t refuse_calloc_n, refuse_calloc_size;
static int refused;

void *__wrap_malloc(size_t n) {
  if (refuse_malloc && n == refuse_malloc) {
    refuse_malloc = 0;
    refused++;
    return NULL;
  }
  return __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
  if (refuse_calloc_n && n == refuse_calloc_n && size == refuse_calloc_size) {
    refuse_calloc_n = 0;
    refused++;
    return NULL;
  }
  return __real_calloc(n, size);
}

static int events[64];
static size_t nevents;
/* Case bulk_queued_other_partitions: a PutAll submitted from the
 * DISCONNECTED event (queued: no connection), with the old count's
 * partition id. */
static const char bulk_key[] = "bulk-3";
static hzt_res_t bulk_res;
static int bulk_on_disconnect, bulk_rc = 1;
static void on_event(hzc_client_t *c, const hzc_event_t *ev, void *ud) {
  if (nevents < sizeof events / sizeof events[0]) events[nevents++] = ev->kind;
  if (ev->kind == HZC_EV_DISCONNECTED && bulk_on_disconnect) {
    bulk_on_disconnect = 0;
    hzc_kv_t kv = {bulk_key, strlen(bulk_key), "v", 1};
    bulk_rc = hzc_map_put_all(c, "m", &kv, 1, hzt_res_cb, &bulk_res);
  }
}

static int disconnected(void *ud) {
  for (size_t i = 0; i < nevents; i++)
    if (events[i] == HZC_EV_DISCONNECTED) return 1;
  return 0;
}

/* The join after the disconnection: its event (CONNECTED..CLUSTER_CHANGED). */
static int rejoin_kind(void) {
  for (size_t i = 0, gone = 0; i < nevents; i++) {
    if (events[i] == HZC_EV_DISCONNECTED) gone = 1;
    else if (gone && (events[i] == HZC_EV_CONNECTED || events[i] == HZC_EV_RECONNECTED ||
                      events[i] == HZC_EV_CLUSTER_CHANGED))
      return events[i];
  }
  return -1;
}
static int rejoined(void *ud) { return rejoin_kind() >= 0; }

typedef struct {
  hzc_client_t *c;
  uint32_t p;
} part_t;
static int watched(void *ud) {
  part_t *x = ud;
  return hzc_partition_watch(x->c, x->p) != 0;
}

/* refuse: which table the join to B may not allocate (REFUSE_NONE: none).
 * A has PARTS partitions and cluster id 2; B has b_parts and b_id. */
enum { REFUSE_NONE, REFUSE_PMEMBER, REFUSE_POWNER };
/* Starts fake members A (PARTS partitions, cluster id 2) and B (b_parts,
 * b_id) and returns a client connected to A (B is its second seed). */
static hzc_client_t *connect_a(uv_loop_t *loop, const char *b_parts, const char *b_id, hzshm__fake_t **fa,
                               hzshm__fake_t **fb) {
  const char *xa[] = {"--partitions", "997", NULL};
  const char *xb[] = {"--partitions", b_parts, "--cluster-id", b_id, NULL};
  CHECK_RC(hzshm__fake_start("normal", xa, fa), 0);
  CHECK_RC(hzshm__fake_start("normal", xb, fb), 0);
  char aa[64], ab[64];
  snprintf(aa, sizeof aa, "127.0.0.1:%u", hzshm__fake_port(*fa));
  snprintf(ab, sizeof ab, "127.0.0.1:%u", hzshm__fake_port(*fb));
  const char *seeds[2] = {aa, ab}; /* the first connection goes to the first seed, A */
  hzc_config_t cfg = {.addrs = seeds, .naddrs = 2, .smart = 1, .cluster_name = "dev",
                      .invocation_timeout_ms = 5000, .connect_timeout_ms = 1000, .reconnect_max_backoff_ms = 200};
  hzc_client_t *c;
  CHECK_RC(hzc_client_new(loop, &cfg, &c), 0);
  nevents = 0;
  refused = 0;
  hzc_client_set_event_cb(c, on_event, NULL);
  hzt_status_t st = {0, 0};
  CHECK_RC(hzc_client_connect(c, hzt_status_cb, &st), 0);
  CHECK_RC(hzc_run_until(loop, &st.done, 20000), 0);
  CHECK_RC(st.status, 0);
  CHECK_EQ(events[0], HZC_EV_CONNECTED);
  CHECK_EQ(hzshm__fake_wait_log(*fb, "accepted", 0, NULL, 0), HZSHM_ETIMEDOUT); /* A it was */
  CHECK_EQ(hzc_partition_count(c), PARTS);
  return c;
}

static void rejoin(int refuse, const char *b_parts, const char *b_id, int want_kind) {
  uv_loop_t *loop = uv_default_loop();
  hzshm__fake_t *fa, *fb;
  hzc_client_t *c = connect_a(loop, b_parts, b_id, &fa, &fb);

  if (refuse == REFUSE_POWNER) {
    refuse_calloc_n = PARTS;
    refuse_calloc_size = sizeof(hzc_uuid_t);
  } else if (refuse == REFUSE_PMEMBER) {
    refuse_malloc = PARTS * sizeof(int32_t);
  }
  hzshm__fake_stop(fa);
  CHECK(hzt_until(loop, disconnected, NULL, 20000));
  CHECK(hzt_until(loop, rejoined, NULL, 20000));
  if (refuse != REFUSE_NONE)
    CHECK_RC(hzshm__fake_wait_log(fb, "closed by peer", 10000, NULL, 0), 0); /* the refused join's connection */
  const char *key = "join-oom";
  part_t x = {c, hzc_key_partition(c, key, strlen(key))};
  int w = hzt_until(loop, watched, &x, 10000);
  static const char *const names[] = {"?", "CONNECTED", "DISCONNECTED", "RECONNECTED", "CLUSTER_CHANGED", "MEMBERS",
                                       "PARTITIONS", "MEMBER_CONNECTION_LOST", "MEMBER_CONNECTED", "LISTENING",
                                       "AUTH_FAILED"};
  printf("B: %s partitions, cluster id %s; refused %d time(s); events:", b_parts, b_id, refused);
  for (size_t i = 0; i < nevents; i++)
    printf(" %s", events[i] > 0 && events[i] <= HZC_EV_AUTH_FAILED ? names[events[i]] : "?");
  printf("; %u partitions; partition %u: owner %d, watched %d\n", hzc_partition_count(c), x.p,
         hzc_partition_owner(c, x.p), w);
  CHECK_EQ(refused, refuse != REFUSE_NONE);
  CHECK_EQ(rejoin_kind(), want_kind);
  CHECK_EQ(hzc_partition_count(c), (uint32_t)atoi(b_parts));
  CHECK(x.p < (uint32_t)atoi(b_parts));
  CHECK_EQ(hzc_partition_owner(c, x.p), 0);
  CHECK(w);

  /* A Put keyed to the partition is sent with its partition id and answered. */
  hzt_res_t res = {0};
  CHECK_RC(hzc_map_put(c, "m", key, strlen(key), "v", 1, -1, hzt_res_cb, &res), 0);
  CHECK_RC(hzc_run_until(loop, &res.done, 20000), 0);
  CHECK_RC(res.status, 0);
  char line[256];
  int sent_p = -1;
  CHECK_RC(hzshm__fake_wait_log(fb, "request 0x010100", 10000, line, sizeof line), 0);
  CHECK(strstr(line, " partition ") && sscanf(strstr(line, " partition "), " partition %d", &sent_p) == 1);
  CHECK_EQ(sent_p, (int)x.p);
  hzt_res_reset(&res);
  hzt_close(loop, c);
  hzshm__fake_stop(fb);
  CHECK_EQ(uv_loop_close(loop), 0);
}

TEST_CASE(pmember_refused) { rejoin(REFUSE_PMEMBER, "997", "7", HZC_EV_CLUSTER_CHANGED); }
TEST_CASE(powner_refused) { rejoin(REFUSE_POWNER, "997", "7", HZC_EV_CLUSTER_CHANGED); }
/* B: cluster id 2 as A's, 271 partitions */
TEST_CASE(same_id_other_partitions) { rejoin(REFUSE_NONE, "271", "2", HZC_EV_CLUSTER_CHANGED); }
TEST_CASE(same_id_same_partitions) { rejoin(REFUSE_NONE, "997", "2", HZC_EV_RECONNECTED); }

/* (3): B has cluster id 2 as A's, and 271 partitions. */
TEST_CASE(bulk_queued_other_partitions) {
  uv_loop_t *loop = uv_default_loop();
  hzshm__fake_t *fa, *fb;
  hzc_client_t *c = connect_a(loop, "271", "2", &fa, &fb);
  uint32_t p_old = hzc_key_partition(c, bulk_key, strlen(bulk_key));

  hzt_res_reset(&bulk_res);
  bulk_on_disconnect = 1;
  hzshm__fake_stop(fa);
  CHECK(hzt_until(loop, disconnected, NULL, 20000));
  CHECK_RC(bulk_rc, 0); /* queued: the count was known */
  CHECK(hzt_until(loop, rejoined, NULL, 20000));
  CHECK_EQ(rejoin_kind(), HZC_EV_CLUSTER_CHANGED);
  CHECK_EQ(hzc_partition_count(c), 271u);
  CHECK_RC(hzc_run_until(loop, &bulk_res.done, 20000), 0);
  uint32_t p_new = hzc_key_partition(c, bulk_key, strlen(bulk_key));
  CHECK(p_new != p_old); /* the key must move for the case to mean anything */

  /* A marker Put answered after the PutAll was (or was not) sent: every
   * request B got before it is in its log before the marker's line. */
  hzt_res_t mark = {0};
  CHECK_RC(hzc_map_put(c, "m", "mark", 4, "v", 1, -1, hzt_res_cb, &mark), 0);
  CHECK_RC(hzc_run_until(loop, &mark.done, 20000), 0);
  CHECK_RC(mark.status, 0);
  int put_all_p = -1, put_alls = 0;
  char line[256];
  for (;;) {
    CHECK_RC(hzshm__fake_wait_log(fb, " request 0x01", 10000, line, sizeof line), 0);
    if (strstr(line, "request 0x010100")) break; /* the marker */
    if (strstr(line, "request 0x012c00") && strstr(line, " partition ")) {
      put_alls++;
      CHECK_EQ(sscanf(strstr(line, " partition "), " partition %d", &put_all_p), 1);
    }
  }
  printf("key %s: partition %u of 997, %u of 271; PutAll status %d (%s), %d sent to B, partition %d\n", bulk_key,
         p_old, p_new, bulk_res.status, bulk_res.status ? hzshm_strerror(bulk_res.status) : "ok", put_alls,
         put_all_p);
  if (bulk_res.status == 0) {
    CHECK_EQ(put_alls, 1);
    CHECK_EQ(put_all_p, (int)p_new);
  } else {
    CHECK_EQ(put_alls, 0);
  }
  hzt_res_reset(&mark);
  hzt_res_reset(&bulk_res);
  hzt_close(loop, c);
  hzshm__fake_stop(fb);
  CHECK_EQ(uv_loop_close(loop), 0);
}
