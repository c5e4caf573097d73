/* two_hosts.h - two simulated hosts A and B on one cluster, the official Java
 * client beside them (tests/interop/peer.h), one session on each host: the
 * set-up and tear-down the two-host e2e tests share. Header-only: only tests
 * that link hzshm_interop_peer include it. */
#ifndef HZSHM_E2E_TWO_HOSTS_H
#define HZSHM_E2E_TWO_HOSTS_H

#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

typedef struct {
  e2e_agent_t ag[2]; /* [0] host A, [1] host B: bin, extra_env, extra_args, log_path set before the start */
  char name[2][64];  /* their caches: "e2e-<tag>a-PID", "e2e-<tag>b-PID" */
  char sid[64];      /* "<sid_tag>-PID" */
  hzshm__peer_t *peer;
  hzshm_t *h[2];
  hzshm_session_t *s[2];
} e2e_hosts_t;

/* Starts both agents on the test's member, the official client, and opens
 * session sid on each host: waited until every partition is watched
 * (e2e_open_watched) if `watched`, else opened at once. */
static inline void e2e_hosts_start(e2e_hosts_t *t, const char *tag, const char *sid_tag, int watched) {
  snprintf(t->sid, sizeof t->sid, "%s-%d", sid_tag, (int)getpid());
  for (int i = 0; i < 2; i++) {
    snprintf(t->name[i], sizeof t->name[i], "e2e-%s%c-%d", tag, "ab"[i], (int)getpid());
    e2e_agent_start(&t->ag[i], t->name[i], e2e_members());
  }
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &t->peer), 0);
  for (int i = 0; i < 2; i++) {
    if (watched) {
      e2e_open_watched(t->name[i], t->sid, &t->h[i], &t->s[i]);
    } else {
      CHECK_RC(hzshm_open(t->name[i], NULL, &t->h[i]), 0);
      CHECK_RC(hzshm_session_open(t->h[i], t->sid, strlen(t->sid), &t->s[i]), 0);
    }
  }
}

/* Closes both sessions and handles, stops the official client and both
 * agents: each must exit cleanly. */
static inline void e2e_hosts_stop(e2e_hosts_t *t) {
  for (int i = 0; i < 2; i++) hzshm_session_close(t->s[i]);
  for (int i = 0; i < 2; i++) hzshm_close(t->h[i]);
  CHECK_EQ(hzshm__peer_stop(t->peer, 20000), 0);
  for (int i = 0; i < 2; i++) CHECK_EQ(e2e_agent_stop(&t->ag[i]), 0);
}

#endif /* HZSHM_E2E_TWO_HOSTS_H */
