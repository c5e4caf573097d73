/* test_destroymissed.c - a destroy whose clear-all never reached a host is
 * still noticed: the next reconciliation finds a member sequence below the
 * host's baseline (the members restart a destroyed map's sequences at 1),
 * marks the partition stale and renews the listener the members dropped
 * (issue 11, hole 1, second line of defence).
 *
 * Host B runs the test-only agent build hzshm-agent-seams with
 * HZSHM_AGENT_TEST_DROP_CLEAR_ALL=1 (every clear-all ignored, as if lost).
 * Host A writes k 30 times, B caches it, A destroys the session and writes
 * k again: B must read the new value within the reconciliation bound, and
 * the next write must reach B as an invalidation event (its listener lives
 * again). Before the fix B ignored the lower sequence and served the old
 * value until --max-ttl-ms. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"

#define BOUND_MS 5000 /* --reconcile-ms 1000 (e2e agents) + slack for a loaded box */

static hzshm_t *hb;

static uint64_t inval_base;
static int got_event(void *ud) { return e2e_stats(hb).invalidations > inval_base; }

TEST_CASE(destroy_missed) {
  char na[64], nb[64], sid[64], v[32];
  snprintf(na, sizeof na, "e2e-ma-%d", (int)getpid());
  snprintf(nb, sizeof nb, "e2e-mb-%d", (int)getpid());
  snprintf(sid, sizeof sid, "missed-%d", (int)getpid());
  e2e_agent_t A = {0}, B = {0};
  B.bin = HZSHM_AGENT_SEAMS_BIN;
  snprintf(B.extra_env[0], sizeof B.extra_env[0], "HZSHM_AGENT_TEST_DROP_CLEAR_ALL=1");
  e2e_agent_start(&A, na, e2e_members());
  e2e_agent_start(&B, nb, e2e_members());
  hzshm_t *ha;
  hzshm_session_t *sa, *sb;
  e2e_open_watched(na, sid, &ha, &sa);
  e2e_open_watched(nb, sid, &hb, &sb);

  for (int i = 0; i < 30; i++) {
    snprintf(v, sizeof v, "pre-%d", i);
    CHECK_RC(hzshm_set(sa, "k", 1, v, strlen(v)), 0);
  }
  e2e_hit_t hit = {hb, sb, "k", v};
  CHECK_GE(e2e_wait(e2e_is_hit, &hit, BOUND_MS), 0);
  CHECK_RC(hzshm_destroy(sa), 0);
  CHECK_RC(hzshm_set(sa, "k", 1, "post", 4), 0);
  int64_t us = e2e_wait_serves(sb, "k", "post", BOUND_MS);
  if (us < 0) {
    char buf[32];
    size_t vl = 0;
    int rc = hzshm_get(sb, "k", 1, buf, sizeof buf, &vl);
    fprintf(stderr, "host B does not read k=post within %d ms after a destroy it missed (reads rc %d \"%.*s\")\n",
            BOUND_MS, rc, rc == 0 ? (int)vl : 0, buf);
    exit(1);
  }
  printf("destroy missed by host B: the next write read there after %lld ms\n", (long long)(us / 1000));
  /* The renewed listener delivers the next write as an event. */
  e2e_hit_t hit2 = {hb, sb, "k", "post"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hit2, BOUND_MS), 0);
  inval_base = e2e_stats(hb).invalidations;
  CHECK_RC(hzshm_set(sa, "k", 1, "post2", 5), 0);
  if (e2e_wait(got_event, NULL, BOUND_MS) < 0) {
    fprintf(stderr, "host B got no invalidation event for the write after the destroy: its listener is gone\n");
    exit(1);
  }
  CHECK_GE(e2e_wait_serves(sb, "k", "post2", BOUND_MS), 0);

  CHECK_RC(hzshm_destroy(sa), 0);
  hzshm_session_close(sa);
  hzshm_session_close(sb);
  hzshm_close(ha);
  hzshm_close(hb);
  CHECK_EQ(e2e_agent_stop(&A), 0);
  CHECK_EQ(e2e_agent_stop(&B), 0);
  printf("test_destroymissed: ok\n");
}
