/* peer_wait.h - shared by the tests that hold a write back with the official
 * Java client's lock (e2e_latewrite, e2e_echorace): a condition for e2e_wait
 * (the cluster, read through the Java peer, has k = "v2") and the check that
 * the parked write then reaches both hosts. */
#ifndef HZSHM_E2E_PEER_WAIT_H
#define HZSHM_E2E_PEER_WAIT_H

#include <string.h>

#include "e2e.h"
#include "peer.h"

typedef struct {
  hzshm__peer_t *peer;
  const char *sid;
} pv_t;

static inline int peer_has_v2(void *ud) {
  pv_t *x = ud;
  char buf[16];
  size_t vl = 0;
  return hzshm__peer_get(x->peer, x->sid, "k", 1, buf, sizeof buf, &vl) == 0 && vl == 2 && memcmp(buf, "v2", 2) == 0;
}

/* The lock released at t0 (e2e_now_us): the parked set of k = "v2" runs
 * (seen through the peer within 10 s), then hosts A (sa) and B (sb) both
 * read v2 within bound_ms; else the test fails saying which host did not. */
static inline void late_v2_reaches_both(pv_t *pv, hzshm_session_t *sa, hzshm_session_t *sb, uint32_t bound_ms,
                                        uint64_t t0) {
  CHECK_GE(e2e_wait(peer_has_v2, pv, 10000), 0); /* the parked set ran */
  int64_t a = e2e_wait_serves(sa, "k", "v2", bound_ms), b = e2e_wait_serves(sb, "k", "v2", bound_ms);
  if (a < 0 || b < 0) {
    char buf[16];
    size_t vl = 0;
    int ra = hzshm_get(sa, "k", 1, buf, sizeof buf, &vl);
    fprintf(stderr, "the late set's v2 not read within %u ms: host A %s (rc %d \"%.*s\"), host B %s\n", bound_ms,
            a < 0 ? "no" : "yes", ra, ra == 0 ? (int)vl : 0, buf, b < 0 ? "no" : "yes");
    exit(1);
  }
  printf("late set applied -> both hosts read it: %llu us after the unlock\n",
         (unsigned long long)(e2e_now_us() - t0));
}

#endif /* HZSHM_E2E_PEER_WAIT_H */
