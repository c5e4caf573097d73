/* test_unreachable.c - the network between this host and one member is cut
 * while that member stays in the cluster and keeps owning its partitions.
 *
 * The agent then has no listener on that member, so it hears of none of its
 * changes; its partitions must not be served from the cache (they are
 * "unwatched"): every read of a key it owns goes to the cluster and returns
 * the latest acknowledged value at once, while keys of the reachable member
 * stay cached and invalidated by events. When the network is back, the agent
 * reconnects, registers its listeners there again, and those keys are cached
 * again.
 *
 * The cut is injected with the agent's test hook HZSHM_AGENT_TEST_BLOCK_FILE
 * (hzc_test_block_port: connections to that member's port are closed and
 * refused). The official Java client (the peer) writes directly to both
 * members and tells which member owns each key. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

#define NKEYS 32

static hzshm_t *g_h;

static int some_unwatched(void *ud) { return e2e_stats(ud).unwatched_partitions > 0; }

/* Reads key once: 1 if it returned exactly want; *hit says whether the read
 * was served from the segment (the shared hit counter moved). Says what it
 * read instead. */
static int read_once(hzshm_session_t *s, const char *key, const char *want, int *hit) {
  char buf[256];
  size_t vlen = 0;
  uint64_t h0 = e2e_stats(g_h).hits;
  int rc = hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen);
  *hit = e2e_stats(g_h).hits > h0;
  if (rc != 0) {
    fprintf(stderr, "get %s: %s (want %s)\n", key, hzshm_strerror(rc), want);
    return 0;
  }
  int ok = vlen == strlen(want) && memcmp(buf, want, vlen) == 0;
  if (!ok) fprintf(stderr, "get %s: \"%.*s\", want \"%s\"\n", key, (int)vlen, buf, want);
  return ok;
}

/* Owner port of every key, as the Java client sees the partition table. */
typedef struct {
  hzshm__peer_t *peer;
  char (*key)[16];
  int owner[NKEYS], prev[NKEYS];
} owners_t;

static void owners_read(owners_t *o) {
  char reply[64];
  for (int k = 0; k < NKEYS; k++) {
    CHECK_RC(hzshm__peer_cmd(o->peer, 30000, reply, sizeof reply, "owner %s", o->key[k]), 0);
    o->owner[k] = atoi(reply + 3);
  }
}

/* e2e_wait predicate: two reads in a row agree (no migration under way;
 * e2e_memberloss, on the same members just before, revives a member). */
static int owners_settled(void *ud) {
  owners_t *o = ud;
  memcpy(o->prev, o->owner, sizeof o->prev);
  owners_read(o);
  return memcmp(o->prev, o->owner, sizeof o->prev) == 0;
}

static void owners_unchanged(owners_t *o) {
  int now[NKEYS];
  memcpy(now, o->owner, sizeof now);
  owners_read(o);
  for (int k = 0; k < NKEYS; k++)
    if (now[k] != o->owner[k]) {
      fprintf(stderr, "key %s moved from port %d to %d during the test\n", o->key[k], now[k], o->owner[k]);
      CHECK_EQ(now[k], o->owner[k]);
    }
}

TEST_CASE(unreachable) {
  char block[64], members[256], key[NKEYS][16], val[16];
  snprintf(block, sizeof block, "/tmp/hzshm-e2e-block-%d", (int)getpid());
  int port = e2e_member_port(), cut = port + 1;
  snprintf(members, sizeof members, "127.0.0.1:%d,127.0.0.1:%d", port, cut);
  unlink(block);
  e2e_host_t o = {.ag.bin = HZSHM_AGENT_SEAMS_BIN}; /* test-only agent: its seams */
  snprintf(o.ag.extra_env[0], sizeof o.ag.extra_env[0], "HZSHM_AGENT_TEST_BLOCK_FILE=%s", block);
  e2e_host_start_on(&o, "un", "unreachable", members);
  const char *sid = o.sid;
  hzshm_t *h = g_h = o.h;
  hzshm_session_t *s = o.s;
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(members, "dev", 90000, &peer), 0);
  CHECK_GE(e2e_wait(e2e_all_watched, h, 30000), 0);

  /* Which keys the member behind the cut owns. */
  for (int k = 0; k < NKEYS; k++) snprintf(key[k], sizeof key[k], "u%d", k);
  owners_t own = {.peer = peer, .key = key};
  owners_read(&own);
  CHECK_GE(e2e_wait(owners_settled, &own, 60000), 0);
  int owned_by_cut[NKEYS], ncut = 0;
  for (int k = 0; k < NKEYS; k++) {
    CHECK(own.owner[k] == port || own.owner[k] == cut);
    owned_by_cut[k] = own.owner[k] == cut;
    ncut += owned_by_cut[k];
  }
  printf("%d of %d keys owned by the member on port %d\n", ncut, NKEYS, cut);
  CHECK_GT(ncut, 0);
  CHECK_LT(ncut, NKEYS);

  /* Cached everywhere while both members are reachable. */
  for (int k = 0; k < NKEYS; k++) {
    CHECK_RC(hzshm_set(s, key[k], strlen(key[k]), "v1", 2), 0);
    e2e_hit_t x = {h, s, key[k], "v1"};
    CHECK_GE(e2e_wait(e2e_is_hit, &x, 5000), 0);
  }

  e2e_block_port(block, cut);
  int64_t us = e2e_wait(some_unwatched, h, 10000);
  CHECK_GE(us, 0);
  hzshm_stats_t st = e2e_stats(h);
  printf("network to port %d cut: %llu partitions unwatched after %lld ms\n", cut,
         (unsigned long long)st.unwatched_partitions, (long long)(us / 1000));
  CHECK_EQ(st.cluster_state, HZSHM_CLUSTER_CONNECTED); /* still connected to the cluster through the other member */
  CHECK_LT(st.unwatched_partitions, 271); /* the reachable member's partitions are still cached */

  for (int round = 2; round <= 4; round++) {
    snprintf(val, sizeof val, "v%d", round);
    for (int k = 0; k < NKEYS; k++) CHECK_RC(hzshm__peer_set(peer, sid, key[k], strlen(key[k]), val, 2), 0);
    for (int k = 0; k < NKEYS; k++) {
      if (owned_by_cut[k]) {
        /* No event can come from its owner: the very first read after the
         * acknowledged write must go to the cluster, and so must the next. */
        int hit = 1;
        CHECK(read_once(s, key[k], val, &hit));
        CHECK(!hit);
        CHECK(read_once(s, key[k], val, &hit));
        CHECK(!hit);
      } else { /* invalidated by the reachable owner's event, and cached again */
        CHECK_GE(e2e_wait_serves(s, key[k], val, 10000), 0);
        e2e_hit_t x = {h, s, key[k], val};
        CHECK_GE(e2e_wait(e2e_is_hit, &x, 5000), 0);
      }
    }
  }
  /* Our own write of an unreachable-owned key: read-your-writes, and not
   * cached (a later foreign write would go unseen). */
  for (int k = 0; k < NKEYS; k++) {
    if (!owned_by_cut[k]) continue;
    int hit = 1;
    CHECK_RC(hzshm_set(s, key[k], strlen(key[k]), "own", 3), 0);
    CHECK(read_once(s, key[k], "own", &hit));
    CHECK(!hit);
    CHECK_RC(hzshm__peer_set(peer, sid, key[k], strlen(key[k]), "v5", 2), 0);
    CHECK(read_once(s, key[k], "v5", &hit));
  }
  owners_unchanged(&own); /* so the keys were classified right for the whole cut */

  e2e_block_port(block, 0);
  us = e2e_wait(e2e_all_watched, h, 30000);
  CHECK_GE(us, 0);
  printf("network restored: every partition watched again after %lld ms\n", (long long)(us / 1000));
  for (int k = 0; k < NKEYS; k++) CHECK_RC(hzshm__peer_set(peer, sid, key[k], strlen(key[k]), "v6", 2), 0);
  for (int k = 0; k < NKEYS; k++) {
    CHECK_GE(e2e_wait_serves(s, key[k], "v6", 10000), 0);
    e2e_hit_t x = {h, s, key[k], "v6"}; /* cached again, the cut member's keys too */
    CHECK_GE(e2e_wait(e2e_is_hit, &x, 5000), 0);
  }
  /* And invalidated by the formerly cut member's events again. */
  for (int k = 0; k < NKEYS; k++) CHECK_RC(hzshm__peer_set(peer, sid, key[k], strlen(key[k]), "v7", 2), 0);
  for (int k = 0; k < NKEYS; k++) CHECK_GE(e2e_wait_serves(s, key[k], "v7", 10000), 0);
  st = e2e_stats(h);
  printf("stale marks %llu, remote gets %llu, hits %llu\n", (unsigned long long)st.stale_marks,
         (unsigned long long)st.remote_gets, (unsigned long long)st.hits);

  CHECK_RC(hzshm_destroy(s), 0);
  unlink(block);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  e2e_host_stop(&o);
  printf("test_unreachable: ok\n");
}
