/* test_lostlistener.c - a listener registration that one member dropped
 * silently is noticed and renewed (issue 11, review of hole 1).
 *
 * With several members, a listener renewed after member 1's clear-all can
 * reach member 2 between member 2's clear-all publish and its deregistration
 * (a destroy): member 2 drops it without a clear-all, and the host's listener
 * for member 2's partitions does not exist. That member-side race is too
 * narrow to hit, so host B runs the test-only agent build hzshm-agent-seams
 * with HZSHM_AGENT_TEST_LOSE_RENEWED_KEY=k: its first registration after a
 * clear-all loses every event of the partitions k's owner owns, exactly the
 * effect of the race.
 *
 * Two members, hosts A and B, the official Java client (the peer). Host A
 * destroys the session (B renews its listener: the lost registration); then
 * the peer writes k again and again. Every write must be read on A within
 * the propagation bound and on B within the reconciliation bound (its stale
 * marks) and, within HZSHM__EVENT_WAIT_MS plus a few rounds, B must get the
 * peer's writes as invalidation events again (its listener renewed); from
 * then on every write is read on both hosts within the propagation bound and
 * reaches B as an event. Before the fix B never renewed the listener: the
 * events never came back (values up to --reconcile-ms old were served). */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "two_hosts.h"

#define BOUND_MS 3000     /* the property is <= 1 s; slack for a loaded 2-core box */
#define RECON_BOUND_MS 6000 /* --reconcile-ms 1000 (e2e agents) marks the partition stale; slack */
#define RENEW_MS 60000    /* the wait (15 s) + rounds, on a loaded box */

static e2e_hosts_t T;
static const char *pname[2] = {"A", "B"};
static uint64_t inval_base;

static int got_event(void *ud) { return e2e_stats(T.h[1]).invalidations > inval_base; }

static void must_read(int i, const char *key, const char *val, uint32_t bound, const char *what) {
  if (e2e_wait_serves(T.s[i], key, val, bound) >= 0) return;
  char buf[64];
  size_t vl = 0;
  int rc = hzshm_get(T.s[i], key, strlen(key), buf, sizeof buf, &vl);
  fprintf(stderr, "%s: host %s does not read %s=%s within %u ms (reads rc %d \"%.*s\")\n", what, pname[i], key, val,
          bound, rc, rc == 0 ? (int)vl : 0, buf);
  exit(1);
}

static int absent_hit(void *ud) {
  int i = *(int *)ud;
  char buf[64];
  size_t vl;
  hzshm_get(T.s[i], "k", 1, buf, sizeof buf, &vl);
  hzshm_stats_t a = e2e_stats(T.h[i]);
  int ok = hzshm_get(T.s[i], "k", 1, buf, sizeof buf, &vl) == HZSHM_ENOTFOUND;
  hzshm_stats_t b = e2e_stats(T.h[i]);
  return ok && b.hits > a.hits && b.remote_gets == a.remote_gets;
}

TEST_CASE(lost_listener) {
  char v[64], logb[128];
  snprintf(logb, sizeof logb, "/tmp/hzshm-e2e-lost-%d.log", (int)getpid());
  unlink(logb);
  T.ag[1].bin = HZSHM_AGENT_SEAMS_BIN;
  snprintf(T.ag[1].extra_env[0], sizeof T.ag[1].extra_env[0], "HZSHM_AGENT_TEST_LOSE_RENEWED_KEY=k");
  snprintf(T.ag[1].log_path, sizeof T.ag[1].log_path, "%s", logb);
  e2e_hosts_start(&T, "l", "lost", 1);
  const char *sid = T.sid;
  hzshm__peer_t *peer = T.peer;

  /* Cached on both hosts, then destroyed by A: B renews its listener (lost on k's owner). */
  CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, "v0", 2), 0);
  for (int i = 0; i < 2; i++) {
    must_read(i, "k", "v0", BOUND_MS, "before the destroy");
    e2e_hit_t hit = {T.h[i], T.s[i], "k", "v0"};
    CHECK_GE(e2e_wait(e2e_is_hit, &hit, BOUND_MS), 0);
  }
  CHECK_RC(hzshm_destroy(T.s[0]), 0);
  for (int i = 0; i < 2; i++) CHECK_GE(e2e_wait(absent_hit, &i, BOUND_MS), 0);

  /* Writes of the official client until B gets them as events again. */
  uint64_t t0 = e2e_now_us();
  int n = 0, renewed = 0;
  while (!renewed) {
    if (e2e_now_us() - t0 > (uint64_t)RENEW_MS * 1000u) {
      fprintf(stderr,
              "host B got none of the official client's %d writes of k as an invalidation event for %d ms after "
              "renewing its listener (%d events lost by the seam): the listener it relies on does not exist\n",
              n, RENEW_MS, e2e_file_count(logb, "test seam: registration"));
      exit(1);
    }
    inval_base = e2e_stats(T.h[1]).invalidations;
    snprintf(v, sizeof v, "v%d", ++n);
    CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, v, strlen(v)), 0);
    must_read(0, "k", v, BOUND_MS, "while B's registration is lost");
    must_read(1, "k", v, RECON_BOUND_MS, "while B's registration is lost");
    renewed = e2e_wait(got_event, NULL, 200) >= 0; /* a loop condition, not an assertion */
  }
  CHECK_GT(e2e_file_count(logb, "test seam: registration"), 0); /* the seam did lose events */
  CHECK_GT(e2e_file_count(logb, "listener renewed"), 0);
  printf("host B renewed its lost listener after %llu ms (%d writes)\n",
         (unsigned long long)((e2e_now_us() - t0) / 1000u), n);

  /* From now on every write reaches both hosts within the bound, and B as an event. */
  uint64_t lag[10];
  for (int r = 0; r < 10; r++) {
    inval_base = e2e_stats(T.h[1]).invalidations;
    snprintf(v, sizeof v, "w%d", r);
    uint64_t t = e2e_now_us();
    CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, v, strlen(v)), 0);
    must_read(0, "k", v, BOUND_MS, "after the renewal");
    must_read(1, "k", v, BOUND_MS, "after the renewal");
    lag[r] = e2e_now_us() - t;
    if (e2e_wait(got_event, NULL, BOUND_MS) < 0) {
      fprintf(stderr, "after the renewal: host B got no invalidation event for write %s\n", v);
      exit(1);
    }
    e2e_hit_t hit = {T.h[1], T.s[1], "k", v};
    CHECK_GE(e2e_wait(e2e_is_hit, &hit, BOUND_MS), 0); /* cached again */
  }
  e2e_print_dist("official client write -> both hosts read it, after the renewal", lag, 10, "us");

  CHECK_RC(hzshm_destroy(T.s[0]), 0);
  e2e_hosts_stop(&T);
  unlink(logb);
  printf("test_lostlistener: ok\n");
}
