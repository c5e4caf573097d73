/* test_latewrite.c - a set that timed out and is applied later reaches every
 * host (issue 11, hole 2).
 *
 * The official Java client locks key k (IMap.lock), so host A's set of k
 * parks on the member and times out at A (--invocation-timeout-ms 1500):
 * the outcome is unknown. A then reads k (the cluster still has v1) and
 * caches it. The lock is released, the parked set runs: the cluster has v2.
 * Both hosts must read v2 within the bound. Before the fix A skipped the
 * set's invalidation as the echo of its own write and served v1 until
 * --max-ttl-ms (60 s). Also checked: a normal acknowledged write's echo is
 * still skipped (the value stays a hit on A). */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer_wait.h"
#include "two_hosts.h"

#define BOUND_MS 3000

TEST_CASE(late_write) {
  char reply[64];
  e2e_hosts_t T = {.ag[0].extra_args = {"--invocation-timeout-ms", "1500", NULL}};
  e2e_hosts_start(&T, "l", "late", 1);
  const char *sid = T.sid;
  hzshm__peer_t *peer = T.peer;
  hzshm_t *ha = T.h[0], *hb = T.h[1];
  hzshm_session_t *sa = T.s[0], *sb = T.s[1];

  /* An acknowledged write: its echo is skipped, the value stays cached on A. */
  CHECK_RC(hzshm_set(sa, "k", 1, "v1", 2), 0);
  e2e_hit_t hita = {ha, sa, "k", "v1"}, hitb = {hb, sb, "k", "v1"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hita, BOUND_MS), 0);
  CHECK_GE(e2e_wait(e2e_is_hit, &hitb, BOUND_MS), 0);

  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "lock %s k", sid), 0);
  int rc = hzshm_set(sa, "k", 1, "v2", 2);
  printf("set while the official client holds the lock: %s\n", hzshm_strerror(rc));
  CHECK_RC(rc, HZSHM_ETIMEDOUT);
  /* The cluster still has v1; A caches it again. */
  CHECK_GE(e2e_wait(e2e_is_hit, &hita, BOUND_MS), 0);
  CHECK_GE(e2e_wait(e2e_is_hit, &hitb, BOUND_MS), 0);
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "unlock %s k", sid), 0);
  uint64_t t0 = e2e_now_us();
  pv_t pv = {peer, sid};
  late_v2_reaches_both(&pv, sa, sb, BOUND_MS, t0);
  /* Cached again afterwards, and the next acknowledged write behaves as usual. */
  e2e_hit_t hit2 = {ha, sa, "k", "v2"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hit2, BOUND_MS), 0);
  CHECK_RC(hzshm_set(sa, "k", 1, "v3", 2), 0);
  e2e_hit_t hit3 = {ha, sa, "k", "v3"}, hit3b = {hb, sb, "k", "v3"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hit3, BOUND_MS), 0);
  CHECK_GE(e2e_wait(e2e_is_hit, &hit3b, BOUND_MS), 0);

  CHECK_RC(hzshm_destroy(sa), 0);
  e2e_hosts_stop(&T);
  printf("test_latewrite: ok\n");
}
