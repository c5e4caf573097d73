/* test_echorace.c - an echo expectation left by an acknowledgement whose
 * echo already came and was forgotten (a clear-all in between) must not
 * swallow the invalidation of a later write that timed out and was applied
 * late (issue 11 hole 2, review).
 *
 * Host A runs the test-only agent build that handles the acknowledgements of
 * writes of key k 1500 ms late, so a write's own invalidation (echo) always
 * comes first. A sets k=v1: the echo comes (counted "early"), then host B
 * destroys the map: A's clear-all forgets the early echo; then the delayed
 * acknowledgement arrives. On the old code it added an expected echo (for an
 * echo that had already come). The official Java client then locks k, A's set
 * k=v2 times out (outcome unknown), A reads k (absent: the map was destroyed)
 * and caches the absence, the lock is released and the parked set runs. Its
 * invalidation must reach A: on the old code the stale expectation skipped it
 * as our own echo and A served "not found" until --max-ttl-ms. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer_wait.h"
#include "two_hosts.h"

#define BOUND_MS 3000

typedef struct {
  hzshm_session_t *s;
  int rc;
} setter_t;

static void *set_v1(void *ud) {
  setter_t *x = ud;
  x->rc = hzshm_set(x->s, "k", 1, "v1", 2);
  return NULL;
}

TEST_CASE(echo_race) {
  char reply[64];
  e2e_hosts_t T = {.ag[0] = {.bin = HZSHM_AGENT_SEAMS_BIN,
                             .extra_env = {"HZSHM_AGENT_TEST_ACK_DELAY_KEY=k", "HZSHM_AGENT_TEST_ACK_DELAY_MS=1500"},
                             .extra_args = {"--invocation-timeout-ms", "1500", NULL}}};
  e2e_hosts_start(&T, "e", "echo", 1);
  const char *sid = T.sid;
  hzshm__peer_t *peer = T.peer;
  hzshm_t *ha = T.h[0], *ha2;
  hzshm_session_t *sa = T.s[0], *sa2, *sb = T.s[1];
  e2e_open_watched(T.name[0], sid, &ha2, &sa2); /* a second handle on host A */
  CHECK_RC(hzshm_set(sb, "other", 5, "x", 1), 0); /* B's session has its listener */

  /* A's set of v1, its acknowledgement handled 1500 ms late: the echo first. */
  e2e_inv_t inv = {ha, e2e_stats(ha).invalidations + 1};
  setter_t st = {sa2, -1};
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, set_v1, &st), 0);
  CHECK_GE(e2e_wait(e2e_invalidations_reached, &inv, BOUND_MS), 0);
  /* B destroys the map while A's acknowledgement is still held: A gets a clear-all. */
  CHECK_RC(hzshm_destroy(sb), 0);
  inv.at_least++;
  CHECK_GE(e2e_wait(e2e_invalidations_reached, &inv, BOUND_MS), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_RC(st.rc, 0);

  /* A set that times out while the official client holds the lock. */
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "lock %s k", sid), 0);
  int rc = hzshm_set(sa, "k", 1, "v2", 2);
  printf("set while the official client holds the lock: %s\n", hzshm_strerror(rc));
  CHECK_RC(rc, HZSHM_ETIMEDOUT);
  char buf[16];
  size_t vl = 0;
  CHECK_RC(hzshm_get(sa, "k", 1, buf, sizeof buf, &vl), HZSHM_ENOTFOUND); /* the absence, cached */
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "unlock %s k", sid), 0);
  uint64_t t0 = e2e_now_us();
  pv_t pv = {peer, sid};
  late_v2_reaches_both(&pv, sa, sb, BOUND_MS, t0);

  CHECK_RC(hzshm_destroy(sa), 0);
  hzshm_session_close(sa2);
  hzshm_close(ha2);
  e2e_hosts_stop(&T);
  printf("test_echorace: ok\n");
}
