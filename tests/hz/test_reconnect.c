/* test_reconnect.c - one member of its own: (1) the member process is frozen
 * (SIGSTOP): the heartbeat timeout closes the connection, the client
 * reconnects with backoff once it thaws, to the SAME cluster id
 * (HZC_EV_RECONNECTED) and re-registers its listener; (2) the member is
 * stopped and a new one started: a request issued while disconnected waits
 * and completes, the new cluster id gives HZC_EV_CLUSTER_CHANGED, and the
 * listener delivers again. */
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include "hzt.h"

static uv_loop_t *loop;
static hzc_client_t *c;
static int ev_count[16];
static hzc_uuid_t last_cluster;

static void on_event(hzc_client_t *cl, const hzc_event_t *ev, void *ud) {
  if (ev->kind < 16) ev_count[ev->kind]++;
  last_cluster = ev->cluster_id;
}

static int inv_n;
static char inv_key[64];
static void on_inv(hzc_client_t *cl, const char *map, const hzc_invalidation_t *inv, void *ud) {
  if (!inv->key || inv->klen >= sizeof inv_key) return;
  memcpy(inv_key, inv->key, inv->klen);
  inv_key[inv->klen] = 0;
  inv_n++;
}

typedef struct {
  int kind, want;
} evw_t;
static int ev_reached(void *a) {
  evw_t *w = a;
  return ev_count[w->kind] >= w->want;
}
static int inv_for(void *a) { return strcmp(inv_key, a) == 0; }

static pid_t member_pid(void) {
  char path[512];
  int pid = 0;
  snprintf(path, sizeof path, "%s/member0.pid", getenv("HZSHM_TEST_MEMBER_DIR"));
  FILE *f = fopen(path, "r");
  CHECK(f);
  CHECK_EQ(fscanf(f, "%d", &pid), 1);
  fclose(f);
  return (pid_t)pid;
}

/* Sets key until its invalidation arrives. Right after a reconnect the
 * listener's re-registration may still be in flight when the first write
 * runs on the member (its invalidation then goes nowhere), so one write is
 * not enough; the deadline bounds the whole wait. */
static void set_and_see(const char *key) {
  hzt_res_t res = {0};
  uint64_t end = uv_now(loop) + 30000;
  inv_key[0] = 0;
  do {
    HZT_SYNC(loop, &res, hzc_map_set(c, "hzt-reconnect", key, strlen(key), "v", 1, -1, hzt_res_cb, &res));
    CHECK_RC(res.status, 0);
    hzt_res_reset(&res);
    if (hzt_until(loop, inv_for, (void *)key, 2000)) return;
  } while (uv_now(loop) < end);
  CHECK(!"no invalidation for the key within 30 s");
}

TEST_CASE(reconnect) {
  char addrs[4][64];
  size_t n = hzt_addrs(addrs, 4);
  CHECK_EQ(n, 1);
  int port = atoi(strrchr(addrs[0], ':') + 1);
  loop = uv_default_loop();
  const char *a[1] = {addrs[0]};
  hzc_config_t cfg = {.addrs = a, .naddrs = 1, .smart = 1, .cluster_name = "dev", .heartbeat_interval_ms = 500,
                      .heartbeat_timeout_ms = 3000, .connect_timeout_ms = 1500, .reconnect_max_backoff_ms = 1000,
                      .invocation_timeout_ms = 120000};
  CHECK_RC(hzc_client_new(loop, &cfg, &c), 0);
  hzc_client_set_event_cb(c, on_event, NULL);
  hzt_status_t st = {0, 0};
  CHECK_RC(hzc_client_connect(c, hzt_status_cb, &st), 0);
  CHECK_RC(hzc_run_until(loop, &st.done, HZT_TIMEOUT), 0);
  CHECK_RC(st.status, 0);
  CHECK_EQ(ev_count[HZC_EV_CONNECTED], 1);
  hzc_uuid_t cid1 = hzc_cluster_id(c);
  hzc_listener_t *l;
  hzt_status_t ls = {0, 0};
  CHECK_RC(hzc_map_listen_invalidations(c, "hzt-reconnect", on_inv, NULL, hzt_status_cb, &ls, &l), 0);
  CHECK_RC(hzc_run_until(loop, &ls.done, HZT_TIMEOUT), 0);
  CHECK_RC(ls.status, 0);
  set_and_see("before");

  /* (1) freeze the member: heartbeat timeout, then same-cluster reconnect */
  pid_t pid = member_pid();
  CHECK_EQ(kill(pid, SIGSTOP), 0);
  evw_t w = {HZC_EV_DISCONNECTED, 1};
  CHECK(hzt_until(loop, ev_reached, &w, 30000));
  CHECK(!hzc_connected(c));
  CHECK_EQ(kill(pid, SIGCONT), 0);
  w.kind = HZC_EV_RECONNECTED;
  CHECK(hzt_until(loop, ev_reached, &w, 60000));
  CHECK_MEMEQ(&last_cluster, &cid1, sizeof cid1);
  CHECK_EQ(ev_count[HZC_EV_CLUSTER_CHANGED], 0);
  set_and_see("after-freeze"); /* listener re-registered on the new connection */

  /* (2) a new cluster: stop, request while disconnected, start again */
  CHECK_EQ(hzt_member_cmd("stop"), 0);
  w.kind = HZC_EV_DISCONNECTED;
  w.want = 2;
  CHECK(hzt_until(loop, ev_reached, &w, 30000));
  hzt_res_t res = {0};
  CHECK_RC(hzc_map_get(c, "hzt-reconnect", "before", 6, hzt_res_cb, &res), 0);
  int never = 0;
  (void)hzc_run_until(loop, &never, 300);
  CHECK(!res.done); /* waits for a connection */
  char start[128];
  snprintf(start, sizeof start, "start --port %d --count 1", port);
  CHECK_EQ(hzt_member_cmd("%s", start), 0);
  w.kind = HZC_EV_CLUSTER_CHANGED;
  w.want = 1;
  CHECK(hzt_until(loop, ev_reached, &w, 90000));
  hzc_uuid_t cid2 = hzc_cluster_id(c);
  CHECK_NE(memcmp(&cid1, &cid2, sizeof cid1), 0);
  CHECK_RC(hzt_wait(loop, &res), 0);
  CHECK_EQ(res.type, HZC_NULL); /* the new cluster is empty */
  hzt_res_reset(&res);
  set_and_see("new-cluster");
  hzc_stats_t s;
  hzc_client_stats(c, &s);
  printf("reconnects %llu, events: connected %d disconnected %d reconnected %d cluster-changed %d\n",
         (unsigned long long)s.reconnects, ev_count[HZC_EV_CONNECTED], ev_count[HZC_EV_DISCONNECTED],
         ev_count[HZC_EV_RECONNECTED], ev_count[HZC_EV_CLUSTER_CHANGED]);
  CHECK_EQ(s.reconnects, 2);
  CHECK_RC(hzc_listener_remove(c, l), 0);
  hzt_close(loop, c);
  CHECK_EQ(uv_loop_close(loop), 0);
  printf("test_reconnect: OK\n");
}
