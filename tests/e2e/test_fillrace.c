/* test_fillrace.c - a fill racing an invalidation never leaves the old value
 * cached. The agent's test hook holds the remote get's response for key
 * "race" for 1.5 s; during that window the official client changes the
 * value. Afterwards the cache must not serve the old value, the agent must
 * count the dropped fill, and a miss that arrives after the invalidation must
 * not be answered from the old in-flight get. */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

static hzshm_t *H;

typedef struct {
  hzshm_session_t *s;
  int rc;
  char val[32];
  size_t vlen;
} getter_t;

static void *getter(void *arg) {
  getter_t *g = arg;
  g->rc = hzshm_get(g->s, "race", 4, g->val, sizeof g->val, &g->vlen);
  return NULL;
}

static uint64_t base_remote, base_inval;
static int remote_get_sent(void *ud) { return e2e_stats(H).remote_gets > base_remote + (uintptr_t)ud; }
static int inval_applied(void *ud) { return e2e_stats(H).invalidations > base_inval; }

TEST_CASE(fill_race) {
  e2e_host_t o = {.ag = {.bin = HZSHM_AGENT_SEAMS_BIN, /* test-only agent: its seams */
                           .extra_env = {"HZSHM_AGENT_TEST_FILL_DELAY_KEY=race", "HZSHM_AGENT_TEST_FILL_DELAY_MS=1500"}}};
  e2e_host_start(&o, "fr", "fillrace");
  const char *sid = o.sid;
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  H = o.h;
  hzshm_session_t *s = o.s;
  CHECK_RC(hzshm_set(s, "other", 5, "o", 1), 0); /* listener registered before the race */
  CHECK_RC(hzshm__peer_set(peer, sid, "race", 4, "old", 3), 0);
  char buf[32];
  size_t vlen;

  hzshm_stats_t st0 = e2e_stats(H);
  base_remote = st0.remote_gets;
  getter_t g1 = {.s = s};
  pthread_t t1;
  pthread_create(&t1, NULL, getter, &g1);
  CHECK_GE(e2e_wait(remote_get_sent, (void *)0, 10000), 0); /* the fill's remote get is out */
  base_inval = e2e_stats(H).invalidations;
  CHECK_RC(hzshm__peer_set(peer, sid, "race", 4, "new", 3), 0);
  CHECK_GE(e2e_wait(inval_applied, NULL, 10000), 0); /* the invalidation arrived during the fill */

  /* A second miss now must not join the canceled get (it could return "old"
   * after "new" was acknowledged): it makes its own remote get. */
  getter_t g2 = {.s = s};
  pthread_t t2;
  pthread_create(&t2, NULL, getter, &g2);
  pthread_join(t1, NULL);
  pthread_join(t2, NULL);
  /* g1 was issued before the change: old or new are both correct answers. */
  CHECK(g1.rc == 0 && g1.vlen == 3 && (memcmp(g1.val, "old", 3) == 0 || memcmp(g1.val, "new", 3) == 0));
  printf("fill issued before the change returned: %.3s\n", g1.val);
  CHECK_EQ(g2.rc, 0);
  CHECK_EQ(g2.vlen, 3);
  CHECK_MEMEQ(g2.val, "new", 3);
  hzshm_stats_t st1 = e2e_stats(H);
  CHECK_GT(st1.fills_dropped, st0.fills_dropped);
  CHECK_EQ(st1.remote_gets - st0.remote_gets, 2);
  /* The cache never serves the old value afterwards. */
  for (int i = 0; i < 100; i++) {
    CHECK_RC(hzshm_get(s, "race", 4, buf, sizeof buf, &vlen), 0);
    CHECK_EQ(vlen, 3);
    CHECK_MEMEQ(buf, "new", 3);
  }
  printf("fills dropped: %llu, remote gets: %llu\n", (unsigned long long)(st1.fills_dropped - st0.fills_dropped),
         (unsigned long long)(st1.remote_gets - st0.remote_gets));

  /* Same race against a clear of the whole map. */
  CHECK_RC(hzshm__peer_set(peer, sid, "race", 4, "cold", 4), 0);
  base_inval = st1.invalidations;
  CHECK_GE(e2e_wait(inval_applied, NULL, 10000), 0); /* our cached "new" is purged */
  base_remote = e2e_stats(H).remote_gets;
  getter_t g3 = {.s = s};
  pthread_t t3;
  pthread_create(&t3, NULL, getter, &g3);
  CHECK_GE(e2e_wait(remote_get_sent, (void *)0, 10000), 0);
  base_inval = e2e_stats(H).invalidations;
  char reply[128];
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "clear %s", sid), 0);
  CHECK_GE(e2e_wait(inval_applied, NULL, 10000), 0);
  pthread_join(t3, NULL);
  CHECK((g3.rc == 0 && g3.vlen == 4 && memcmp(g3.val, "cold", 4) == 0) || g3.rc == HZSHM_ENOTFOUND);
  for (int i = 0; i < 100; i++) CHECK_RC(hzshm_get(s, "race", 4, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_GT(e2e_stats(H).fills_dropped, st1.fills_dropped);
  CHECK_RC(hzshm_destroy(s), 0);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  e2e_host_stop(&o);
  printf("test_fillrace: ok\n");
}
