/* peer_wait.h - a condition for e2e_wait, shared by the tests that hold a
 * write back with the official Java client's lock (e2e_latewrite,
 * e2e_echorace): the cluster, read through the Java peer, has k = "v2". */
#ifndef HZSHM_E2E_PEER_WAIT_H
#define HZSHM_E2E_PEER_WAIT_H

#include <string.h>

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

#endif /* HZSHM_E2E_PEER_WAIT_H */
