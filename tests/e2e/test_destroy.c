/* test_destroy.c - every later write reaches every host after any destroy.
 *
 * Two hosts (two agents, two segments) and the official Java client (the
 * peer) on one 2-member cluster. For each destroyer (host A, host B, the
 * official client) and each writer (A, B, the official client): the key is
 * cached on both hosts, the destroyer destroys the session's IMap, both hosts
 * cache the absence, the writer writes, and both hosts must read the new value
 * within the bound (polling with a deadline). Then many set/destroy rounds.
 *
 * Regression (issue 11, hole 1): a destroy through our client (no map proxy)
 * made the members send no DESTROYED event; the other host only saw the
 * clear-all, kept a listener the members had dropped, and served its cached
 * absence for --max-ttl-ms (60 s) while later writes never reached it. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "two_hosts.h"

#define BOUND_MS 3000 /* the property is <= 1 s; slack for a loaded 2-core box */
#define ROUNDS 12

static e2e_hosts_t T;
static const char *pname[3] = {"A", "B", "official client"};

static void put(int who, const char *key, const char *val) {
  if (who < 2)
    CHECK_RC(hzshm_set(T.s[who], key, strlen(key), val, strlen(val)), 0);
  else
    CHECK_RC(hzshm__peer_set(T.peer, T.sid, key, strlen(key), val, strlen(val)), 0);
}

static void destroy(int who) {
  char reply[64];
  if (who < 2)
    CHECK_RC(hzshm_destroy(T.s[who]), 0);
  else
    CHECK_RC(hzshm__peer_cmd(T.peer, 30000, reply, sizeof reply, "destroy %s", T.sid), 0);
}

typedef struct {
  hzshm_session_t *s;
  const char *key;
} absent_t;

static int reads_absent(void *ud) {
  absent_t *x = ud;
  char buf[64];
  size_t vl;
  return hzshm_get(x->s, x->key, strlen(x->key), buf, sizeof buf, &vl) == HZSHM_ENOTFOUND;
}

/* The absence is served from the segment (hit counter moved, no remote get). */
static int absent_hit(void *ud) {
  absent_t *x = ud;
  hzshm_t *hh = x->s == T.s[0] ? T.h[0] : T.h[1];
  reads_absent(x);
  hzshm_stats_t a = e2e_stats(hh);
  int ok = reads_absent(x);
  hzshm_stats_t b = e2e_stats(hh);
  return ok && b.hits > a.hits && b.remote_gets == a.remote_gets;
}

/* Both hosts read val within the bound, then hold it cached (a hit). */
static uint64_t both_read(const char *key, const char *val, const char *what) {
  uint64_t worst = 0;
  for (int i = 0; i < 2; i++) {
    int64_t us = e2e_wait_serves(T.s[i], key, val, BOUND_MS);
    if (us < 0) {
      char buf[64];
      size_t vl = 0;
      int rc = hzshm_get(T.s[i], key, strlen(key), buf, sizeof buf, &vl);
      fprintf(stderr, "%s: host %s does not read %s=%s within %d ms (reads rc %d \"%.*s\")\n", what, pname[i], key, val,
              BOUND_MS, rc, rc == 0 ? (int)vl : 0, buf);
      exit(1);
    }
    if ((uint64_t)us > worst) worst = (uint64_t)us;
    e2e_hit_t hit = {T.h[i], T.s[i], key, val};
    if (e2e_wait(e2e_is_hit, &hit, BOUND_MS) < 0) {
      fprintf(stderr, "%s: host %s never caches %s=%s\n", what, pname[i], key, val);
      exit(1);
    }
  }
  return worst;
}

static void both_cache_absence(const char *key, const char *what) {
  for (int i = 0; i < 2; i++) {
    absent_t x = {T.s[i], key};
    if (e2e_wait(absent_hit, &x, BOUND_MS) < 0) {
      fprintf(stderr, "%s: host %s never serves the absence of %s from its segment\n", what, pname[i], key);
      exit(1);
    }
  }
}

TEST_CASE(destroy) {
  e2e_hosts_start(&T, "d", "destroy", 1);

  uint64_t lag[3 * 3 + ROUNDS * 3];
  size_t nlag = 0;
  char v[64], what[128];
  /* 1. Each destroyer, then a write by each party. */
  for (int d = 0; d < 3; d++) {
    for (int w = 0; w < 3; w++) {
      snprintf(what, sizeof what, "destroy by %s, write by %s", pname[d], pname[w]);
      /* Sequences well above 1 first (the members restart them at 1 after a destroy). */
      for (int i = 0; i < 30; i++) {
        snprintf(v, sizeof v, "pre-%d-%d-%d", d, w, i);
        put(0, "k", v);
      }
      both_read("k", v, what);
      destroy(d);
      both_cache_absence("k", what);
      snprintf(v, sizeof v, "post-%d-%d", d, w);
      put(w, "k", v);
      lag[nlag++] = both_read("k", v, what);
      /* And the next write of another party too. */
      snprintf(v, sizeof v, "post2-%d-%d", d, w);
      put((w + 1) % 3, "k", v);
      both_read("k", v, what);
    }
  }
  /* 2. Many set/destroy rounds: destroyer and writer rotate. */
  for (int r = 0; r < ROUNDS * 3; r++) {
    int d = r % 3, w = (r / 3) % 3;
    snprintf(what, sizeof what, "round %d: destroy by %s, write by %s", r, pname[d], pname[w]);
    snprintf(v, sizeof v, "r%d-a", r);
    put(w, "k", v);
    both_read("k", v, what);
    destroy(d);
    snprintf(v, sizeof v, "r%d-b", r);
    put((w + 1) % 3, "k", v);
    if (nlag < sizeof lag / sizeof lag[0]) lag[nlag++] = both_read("k", v, what);
    else both_read("k", v, what);
  }
  e2e_print_dist("write after a destroy -> both hosts read it", lag, nlag, "us");
  hzshm_stats_t sa = e2e_stats(T.h[0]), sb = e2e_stats(T.h[1]);
  printf("host A: stale marks %llu, invalidations %llu; host B: stale marks %llu, invalidations %llu\n",
         (unsigned long long)sa.stale_marks, (unsigned long long)sa.invalidations,
         (unsigned long long)sb.stale_marks, (unsigned long long)sb.invalidations);

  destroy(0);
  e2e_hosts_stop(&T);
  printf("test_destroy: ok\n");
}
