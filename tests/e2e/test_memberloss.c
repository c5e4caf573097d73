/* test_memberloss.c - a two-member cluster loses a member and gets it back
 * (same cluster id: the agent repairs instead of clearing). Changes made by
 * the official client while the member is gone and after it is back reach
 * this host's cache; a value cached before the loss is never served after a
 * newer one was acknowledged plus the invalidation bound.
 *
 * Regression (issue: baselines lost on member-connection loss): the agent
 * used to forget every sequence baseline when a member connection was lost
 * and adopt the next sequence it saw, so an invalidation missed meanwhile was
 * never detected and a value filled in that window was served forever. Key
 * "kdrop": the agent's test hook drops every invalidation event of it (as if
 * lost with a connection / sent before our listener was registered); after
 * the member loss and after its return a foreign write of kdrop must still
 * reach this host, which only the repair (kept baselines + reconciliation)
 * can do. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"


static hzshm_t *g_h;

static void must_see(hzshm_session_t *s, const char *key, const char *want, const char *what) {
  int64_t us = e2e_wait_serves(s, key, want, 30000);
  if (us < 0) { /* say what it served instead */
    char buf[256];
    size_t vlen = 0;
    int rc = hzshm_get(s, key, strlen(key), buf, sizeof buf - 1, &vlen);
    buf[rc == 0 ? vlen : 0] = 0;
    hzshm_stats_t st = e2e_stats(g_h);
    fprintf(stderr, "%s: %s still not %s after 30 s: get -> %s%s%s (hits %llu, stale marks %llu, unwatched %llu)\n",
            what, key, want, rc == 0 ? "\"" : hzshm_strerror(rc), rc == 0 ? buf : "", rc == 0 ? "\"" : "",
            (unsigned long long)st.hits, (unsigned long long)st.stale_marks,
            (unsigned long long)st.unwatched_partitions);
  }
  CHECK_GE(us, 0);
  printf("%s: %s=%s served after %lld ms\n", what, key, want, (long long)(us / 1000));
}

typedef struct {
  hzshm_t *h;
  uint64_t above;
} marks_t;

static int marked(void *ud) {
  marks_t *x = ud;
  return e2e_stats(x->h).stale_marks > x->above;
}

TEST_CASE(member_loss) {
  /* Both members as seeds. */
  char members[256];
  int port = e2e_member_port();
  snprintf(members, sizeof members, "127.0.0.1:%d,127.0.0.1:%d", port, port + 1);
  e2e_host_t o = {.ag = {.bin = HZSHM_AGENT_SEAMS_BIN, /* test-only agent: its seams */
                         .extra_env = {"HZSHM_AGENT_TEST_DROP_INVAL_KEY=kdrop"}}};
  e2e_host_start_on(&o, "ml", "memberloss", members);
  const char *sid = o.sid;
  hzshm_t *h = g_h = o.h;
  hzshm_session_t *s = o.s;
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(members, "dev", 90000, &peer), 0);
  char key[16];
  for (int k = 0; k < 16; k++) { /* keys on partitions owned by both members */
    snprintf(key, sizeof key, "k%d", k);
    CHECK_RC(hzshm_set(s, key, strlen(key), "v1", 2), 0);
    must_see(s, key, "v1", "cached");
  }
  CHECK_RC(hzshm_set(s, "kdrop", 5, "d1", 2), 0);
  must_see(s, "kdrop", "d1", "cached");
  marks_t mk = {h, e2e_stats(h).stale_marks + 200}; /* a member loss marks all 271 partitions */
  CHECK_EQ(e2e_member("kill", 1), 0);
  CHECK_GE(e2e_wait(marked, &mk, 30000), 0); /* the agent noticed the loss */
  /* Filled again after the loss; its change is then lost on the way. */
  must_see(s, "kdrop", "d1", "refilled after the loss");
  CHECK_RC(hzshm__peer_set(peer, sid, "kdrop", 5, "d2", 2), 0);
  must_see(s, "kdrop", "d2", "lost invalidation after the loss, repaired");
  for (int k = 0; k < 16; k++) {
    snprintf(key, sizeof key, "k%d", k);
    CHECK_RC(hzshm__peer_set(peer, sid, key, strlen(key), "v2", 2), 0); /* retried by the Java client */
  }
  for (int k = 0; k < 16; k++) {
    snprintf(key, sizeof key, "k%d", k);
    must_see(s, key, "v2", "member 1 down");
  }
  CHECK_EQ(e2e_member("revive", 1), 0);
  char reply[64];
  /* Wait until the peer sees both members again, then write once more. */
  for (int i = 0; i < 600; i++) {
    CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "members"), 0);
    if (strcmp(reply, "ok 2") == 0) break;
    usleep(100000); /* polling the peer's view, with a 60 s deadline */
  }
  CHECK_STREQ(reply, "ok 2");
  for (int k = 0; k < 16; k++) {
    snprintf(key, sizeof key, "k%d", k);
    CHECK_RC(hzshm__peer_set(peer, sid, key, strlen(key), "v3", 2), 0);
  }
  for (int k = 0; k < 16; k++) {
    snprintf(key, sizeof key, "k%d", k);
    must_see(s, key, "v3", "member 1 back");
  }
  CHECK_RC(hzshm__peer_set(peer, sid, "kdrop", 5, "d3", 2), 0);
  must_see(s, "kdrop", "d3", "lost invalidation with member 1 back, repaired");
  /* The agent is connected to the revived member, with its listeners: every
   * partition is watched (cached) again. */
  int64_t wus = e2e_wait(e2e_all_watched, h, 30000);
  CHECK_GE(wus, 0);
  printf("every partition watched again %lld ms after the last check\n", (long long)(wus / 1000));
  hzshm_stats_t st = e2e_stats(h);
  printf("stale marks %llu, invalidations %llu\n", (unsigned long long)st.stale_marks,
         (unsigned long long)st.invalidations);
  CHECK_RC(hzshm_destroy(s), 0);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  e2e_host_stop(&o);
  printf("test_memberloss: ok\n");
}
