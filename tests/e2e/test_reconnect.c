/* test_reconnect.c - the agent loses the cluster and gets the SAME cluster
 * back (the member keeps running: hzclient reports RECONNECTED, not
 * CLUSTER_CHANGED), while the official Java client changes entries.
 *
 * The network between the agent and the member is cut with the agent's test
 * hook HZSHM_AGENT_TEST_BLOCK_FILE (hzc_test_block_port). Asserts: readers
 * fail closed within --stale-ms of the loss (never serving the cached value
 * after that); while cut, the Java client overwrites one key, deletes another
 * and leaves a third alone; once the network is back the agent repairs
 * (every partition stale, baselines kept, reconciliation) and every read from
 * the moment it serves again returns the cluster's current value: the new
 * value, absence, and the untouched value, never the one cached before the
 * cut. Prints the fail-closed time and the time to serve again. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

static char buf[256];

typedef struct {
  hzshm_session_t *s;
  int last_rc;
} closed_t;

/* Reads k1 once: 1 once the reader fails closed; the cached "old" value may
 * be served only until then. */
static int failed_closed(void *ud) {
  closed_t *x = ud;
  size_t n = 0;
  int rc = hzshm_get(x->s, "k1", 2, buf, sizeof buf, &n);
  x->last_rc = rc;
  if (rc == 0) CHECK(n == 3 && memcmp(buf, "old", 3) == 0); /* nothing else could be cached */
  return rc == HZSHM_EDISCONNECTED || rc == HZSHM_ESTALE;
}

/* 1 when key reads as want (NULL: absent). Any other successful read is a
 * stale value: fail at once. Errors (still failing closed) poll on. */
static int reads_as(hzshm_session_t *s, const char *key, const char *want) {
  size_t n = 0;
  int rc = hzshm_get(s, key, strlen(key), buf, sizeof buf, &n);
  if (rc == HZSHM_ENOTFOUND) {
    if (want) fprintf(stderr, "%s: absent, want %s\n", key, want);
    CHECK_EQ(want, NULL);
    return 1;
  }
  if (rc != 0) return 0;
  if (!want || n != strlen(want) || memcmp(buf, want, n) != 0)
    fprintf(stderr, "%s: read \"%.*s\" after the reconnect, want %s\n", key, (int)n, buf, want ? want : "absent");
  CHECK(want && n == strlen(want) && memcmp(buf, want, n) == 0);
  return 1;
}

typedef struct {
  hzshm_session_t *s;
} back_t;

static int serving_right(void *ud) {
  back_t *x = ud;
  /* every read checked; done when all three answer */
  int a = reads_as(x->s, "k1", "new");
  int b = reads_as(x->s, "k2", NULL);
  int c = reads_as(x->s, "k3", "same");
  return a && b && c;
}

static int seg_disconnected(void *h) { return e2e_stats(h).agent_state == HZSHM_AGENT_DISCONNECTED; }

TEST_CASE(reconnect) {
  char block[64];
  snprintf(block, sizeof block, "/tmp/hzshm-e2e-rblock-%d", (int)getpid());
  int port = e2e_member_port();
  unlink(block);
  e2e_host_t o = {.ag.bin = HZSHM_AGENT_SEAMS_BIN}; /* test-only agent: its seams */
  snprintf(o.ag.extra_env[0], sizeof o.ag.extra_env[0], "HZSHM_AGENT_TEST_BLOCK_FILE=%s", block);
  e2e_host_start(&o, "rc", "reconnect");
  const char *sid = o.sid;
  hzshm_t *h = o.h;
  hzshm_session_t *s = o.s;
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  CHECK_GE(e2e_wait(e2e_all_watched, h, 30000), 0);
  CHECK_RC(hzshm_set(s, "k1", 2, "old", 3), 0);
  CHECK_RC(hzshm_set(s, "k2", 2, "old", 3), 0);
  CHECK_RC(hzshm_set(s, "k3", 2, "same", 4), 0);
  e2e_hit_t h1 = {h, s, "k1", "old"}, h2 = {h, s, "k2", "old"}, h3 = {h, s, "k3", "same"};
  CHECK_GE(e2e_wait(e2e_is_hit, &h1, 5000), 0);
  CHECK_GE(e2e_wait(e2e_is_hit, &h2, 5000), 0);
  CHECK_GE(e2e_wait(e2e_is_hit, &h3, 5000), 0);

  /* Cut: the agent loses its only member; the cluster itself is fine. */
  e2e_block_port(block, port);
  closed_t cx = {s, 0};
  int64_t us = e2e_wait(failed_closed, &cx, 10000);
  CHECK_GE(us, 0);
  printf("network cut: readers fail closed (%s) after %lld ms (bound --stale-ms 1000 + detection)\n",
         hzshm_err_name(cx.last_rc), (long long)(us / 1000));
  CHECK_EQ(e2e_stats(h).cluster_state, HZSHM_CLUSTER_DISCONNECTED);
  /* Past --stale-ms the segment itself says DISCONNECTED: hits of any key
   * fail closed in the reader, not only misses refused by the agent. */
  us = e2e_wait(seg_disconnected, h, 10000);
  CHECK_GE(us, 0);
  CHECK(failed_closed(&cx));
  printf("segment state disconnected %lld ms later\n", (long long)(us / 1000));
  /* Changes this host cannot hear about. */
  CHECK_RC(hzshm__peer_set(peer, sid, "k1", 2, "new", 3), 0);
  char reply[64];
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "delete %s k2", sid), 0);

  e2e_block_port(block, 0);
  back_t bx = {s};
  us = e2e_wait(serving_right, &bx, 30000);
  CHECK_GE(us, 0);
  hzshm_stats_t st = e2e_stats(h);
  printf("network back: serving the cluster's values after %lld ms (cluster state %d, stale marks %llu)\n",
         (long long)(us / 1000), st.cluster_state, (unsigned long long)st.stale_marks);
  CHECK_EQ(st.cluster_state, HZSHM_CLUSTER_CONNECTED);
  /* Cached again, and invalidated again by the member's events. */
  CHECK_GE(e2e_wait(e2e_all_watched, h, 30000), 0);
  CHECK_RC(hzshm__peer_set(peer, sid, "k3", 2, "newer", 5), 0);
  CHECK_GE(e2e_wait_serves(s, "k3", "newer", 10000), 0);
  e2e_hit_t hx = {h, s, "k3", "newer"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hx, 5000), 0);

  CHECK_RC(hzshm_destroy(s), 0);
  unlink(block);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  e2e_host_stop(&o);
  printf("test_reconnect: ok\n");
}
