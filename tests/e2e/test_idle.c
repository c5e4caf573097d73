/* test_idle.c - listener lifecycle: a session's invalidation listener is
 * removed once the session has had no cached entries for --idle-ms, and is
 * registered again by the next operation, after which remote changes are
 * seen again. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

static hzshm_t *H;
static uint64_t want_listeners;
static int listeners_are(void *ud) { return e2e_stats(H).listeners == want_listeners; }

TEST_CASE(idle) {
  char name[64], sid[64];
  snprintf(name, sizeof name, "e2e-idle-%d", (int)getpid());
  snprintf(sid, sizeof sid, "idle-%d", (int)getpid());
  e2e_agent_t ag = {.extra_args = {"--idle-ms", "300", NULL}};
  e2e_agent_start(&ag, name, e2e_members());
  CHECK_RC(hzshm_open(name, NULL, &H), 0);
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(H, sid, strlen(sid), &s), 0);
  CHECK_RC(hzshm_set_ttl(s, "k", 1, "v1", 2, 200), 0);
  want_listeners = 1;
  CHECK_GE(e2e_wait(listeners_are, NULL, 5000), 0);
  /* The entry expires (cluster and segment), the session is idle: no listener. */
  want_listeners = 0;
  int64_t us = e2e_wait(listeners_are, NULL, 20000);
  CHECK_GE(us, 0);
  printf("listener removed %lld ms after the session became idle-eligible\n", (long long)(us / 1000));
  /* The next operation registers it again, and remote changes are seen. */
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, "v2", 2), 0);
  CHECK_GE(e2e_wait_serves(s, "k", "v2", 10000), 0);
  want_listeners = 1;
  CHECK_GE(e2e_wait(listeners_are, NULL, 5000), 0);
  CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, "v3", 2), 0);
  CHECK_GE(e2e_wait_serves(s, "k", "v3", 10000), 0);
  CHECK_RC(hzshm_destroy(s), 0);
  want_listeners = 0;
  CHECK_GE(e2e_wait(listeners_are, NULL, 5000), 0); /* destroy removes it at once */
  hzshm_session_close(s);
  hzshm_close(H);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  printf("test_idle: ok\n");
}
