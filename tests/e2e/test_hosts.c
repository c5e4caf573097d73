/* test_hosts.c - two hosts (two agents with their own segments) and the
 * official Java client against one cluster: every change made elsewhere
 * purges a host's cached copy within a bound; destroy removes the IMap in the
 * cluster and empties the session on both hosts. Prints the measured lag
 * distributions (change acknowledged -> the other host stops serving the old
 * value). */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "two_hosts.h"

#define ROUNDS 40
#define BOUND_MS 5000

typedef struct {
  hzshm_session_t *s;
  const char *key;
  const char *want; /* NULL = want ENOTFOUND */
} seen_t;

static int sees(void *ud) {
  seen_t *x = ud;
  char buf[256];
  size_t vlen;
  int rc = hzshm_get(x->s, x->key, strlen(x->key), buf, sizeof buf, &vlen);
  if (x->want == NULL) return rc == HZSHM_ENOTFOUND;
  return rc == 0 && vlen == strlen(x->want) && memcmp(buf, x->want, vlen) == 0;
}

static uint64_t wait_sees(hzshm_session_t *s, const char *key, const char *want) {
  seen_t x = {s, key, want};
  int64_t us = e2e_wait(sees, &x, BOUND_MS);
  if (us < 0) {
    fprintf(stderr, "key %s: value %s not seen within %d ms\n", key, want ? want : "(absent)", BOUND_MS);
    exit(1);
  }
  return (uint64_t)us;
}

/* Reads key on a host and checks it is now served from its segment (a hit: the
 * agent's remote get counter does not move on a second read). */
static void assert_cached(hzshm_t *h, hzshm_session_t *s, const char *key) {
  char buf[256];
  size_t vlen;
  hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen);
  hzshm_stats_t a = e2e_stats(h);
  int rc = hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen);
  CHECK(rc == 0 || rc == HZSHM_ENOTFOUND);
  hzshm_stats_t b = e2e_stats(h);
  CHECK_EQ(b.remote_gets, a.remote_gets);
  CHECK_GT(b.hits, a.hits);
}

TEST_CASE(two_hosts) {
  e2e_hosts_t T = {0};
  e2e_hosts_start(&T, "h", "hosts", 0);
  const char *sid = T.sid;
  hzshm__peer_t *peer = T.peer;
  hzshm_t *ha = T.h[0], *hb = T.h[1];
  hzshm_session_t *sa = T.s[0], *sb = T.s[1];

  /* 1. set on A purges B's copy (B holds cached absence, then each value). */
  uint64_t lag_set[ROUNDS], lag_del[ROUNDS], lag_peer[ROUNDS];
  wait_sees(sb, "k", NULL);
  assert_cached(hb, sb, "k");
  char v[32];
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(v, sizeof v, "v%d", i);
    CHECK_RC(hzshm_set(sa, "k", 1, v, strlen(v)), 0);
    lag_set[i] = wait_sees(sb, "k", v);
    assert_cached(hb, sb, "k");
  }
  /* 2. del on A purges B's copy. */
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(v, sizeof v, "d%d", i);
    CHECK_RC(hzshm_set(sa, "kd", 2, v, strlen(v)), 0);
    wait_sees(sb, "kd", v);
    assert_cached(hb, sb, "kd");
    CHECK_RC(hzshm_del(sa, "kd", 2), 0);
    lag_del[i] = wait_sees(sb, "kd", NULL);
  }
  /* 3. The official client: put / remove / clear purge both hosts. */
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(v, sizeof v, "p%d", i);
    assert_cached(ha, sa, "kp");
    assert_cached(hb, sb, "kp");
    CHECK_RC(hzshm__peer_set(peer, sid, "kp", 2, v, strlen(v)), 0);
    uint64_t a = wait_sees(sa, "kp", v), b = wait_sees(sb, "kp", v);
    lag_peer[i] = a > b ? a : b;
  }
  char reply[256];
  assert_cached(ha, sa, "kp");
  assert_cached(hb, sb, "kp");
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "remove %s kp", sid), 0);
  wait_sees(sa, "kp", NULL);
  wait_sees(sb, "kp", NULL);
  CHECK_RC(hzshm_set(sa, "c1", 2, "x1", 2), 0);
  CHECK_RC(hzshm_set(sa, "c2", 2, "x2", 2), 0);
  wait_sees(sb, "c1", "x1");
  wait_sees(sb, "c2", "x2");
  assert_cached(ha, sa, "c1");
  assert_cached(hb, sb, "c2");
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "clear %s", sid), 0);
  wait_sees(sa, "c1", NULL);
  wait_sees(sa, "c2", NULL);
  wait_sees(sb, "c1", NULL);
  wait_sees(sb, "c2", NULL);
  /* What we write the official client reads, byte for byte. */
  CHECK_RC(hzshm_set(sa, "bin", 3, "\x00\xff\x10", 3), 0);
  char pv[16];
  size_t pl;
  CHECK_RC(hzshm__peer_get(peer, sid, "bin", 3, pv, sizeof pv, &pl), 0);
  CHECK_EQ(pl, 3);
  CHECK_MEMEQ(pv, "\x00\xff\x10", 3);
  /* A String value written by the official client reads as its UTF-8 bytes. */
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "putstring %s str h\xc3\xa9llo", sid), 0);
  wait_sees(sa, "str", "h\xc3\xa9llo");
  wait_sees(sb, "str", "h\xc3\xa9llo");

  /* 4. destroy on A: gone in the cluster, empty on A and B. */
  CHECK_RC(hzshm_set(sa, "z", 1, "zz", 2), 0);
  wait_sees(sb, "z", "zz");
  assert_cached(hb, sb, "z");
  CHECK_RC(hzshm_destroy(sa), 0);
  CHECK_RC(hzshm__peer_cmd(peer, 30000, reply, sizeof reply, "size %s", sid), 0);
  CHECK_STREQ(reply, "ok 0");
  CHECK_RC(hzshm_has(sa, "z", 1), HZSHM_ENOTFOUND);
  uint64_t lag_destroy = wait_sees(sb, "z", NULL);
  wait_sees(sb, "bin", NULL);

  e2e_print_dist("lag set on A -> B serves new value", lag_set, ROUNDS, "us");
  e2e_print_dist("lag del on A -> B serves absence", lag_del, ROUNDS, "us");
  e2e_print_dist("lag official-client put -> A and B serve it", lag_peer, ROUNDS, "us");
  printf("lag destroy on A -> B empty: %llu us\n", (unsigned long long)lag_destroy);
  hzshm_stats_t st = e2e_stats(hb);
  printf("host B: invalidations applied %llu, hits %llu, remote gets %llu, stale marks %llu\n",
         (unsigned long long)st.invalidations, (unsigned long long)st.hits, (unsigned long long)st.remote_gets,
         (unsigned long long)st.stale_marks);
  CHECK_GE(st.invalidations, ROUNDS);

  e2e_hosts_stop(&T);
  printf("test_hosts: ok\n");
}
