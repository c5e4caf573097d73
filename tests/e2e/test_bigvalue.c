/* test_bigvalue.c - values above 64 KiB are cached: with --memory 256m the
 * segment has 2 MiB slabs (docs/SHM.md "Allocator and eviction"), so a 1 MiB
 * and a 200 KiB value set through the API read back byte-exact and a get of
 * each is a hit served from shared memory (the hit counter moves, the agent's
 * remote get counter does not); a new 1 MiB value set through the API is what
 * the next read returns. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"

static char buf[HZSHM_VALUE_MAX];

static void fill(char *v, size_t n, unsigned seed) {
  uint32_t x = seed * 2654435761u + 1u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v[i] = (char)x;
  }
}

/* A get of key that must return exactly want[0..n) and be a hit. */
static void get_hit(hzshm_t *h, hzshm_session_t *s, const char *key, const char *want, size_t n) {
  size_t vlen = 0;
  memset(buf, 0, sizeof buf);
  hzshm_stats_t a = e2e_stats(h);
  CHECK_RC(hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen), 0);
  hzshm_stats_t b = e2e_stats(h);
  CHECK_EQ(vlen, n);
  CHECK_MEMEQ(buf, want, n);
  CHECK_GT(b.hits, a.hits);                   /* served from the segment */
  CHECK_EQ(b.remote_gets, a.remote_gets);    /* not through the agent */
}

TEST_CASE(big_values) {
  char name[64];
  snprintf(name, sizeof name, "e2e-bigvalue-%d", (int)getpid());
  e2e_agent_t ag = {.extra_args = {"--memory", "256m", NULL}};
  e2e_agent_start(&ag, name, e2e_members());
  hzshm_t *h;
  CHECK_RC(hzshm_open(name, NULL, &h), 0);
  char sid[64];
  snprintf(sid, sizeof sid, "bigvalue-%d", (int)getpid());
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, sid, strlen(sid), &s), 0);

  static char v1[HZSHM_VALUE_MAX], v2[200 * 1024], v3[HZSHM_VALUE_MAX];
  fill(v1, sizeof v1, 1);
  fill(v2, sizeof v2, 2);
  fill(v3, sizeof v3, 3);
  CHECK_RC(hzshm_set(s, "big-1m", 6, v1, sizeof v1), 0);
  CHECK_RC(hzshm_set(s, "big-200k", 8, v2, sizeof v2), 0);
  size_t vlen = 0;
  /* first gets: byte-exact (a hit already if the set filled the cache) */
  CHECK_RC(hzshm_get(s, "big-1m", 6, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, sizeof v1);
  CHECK_MEMEQ(buf, v1, vlen);
  CHECK_RC(hzshm_get(s, "big-200k", 8, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, sizeof v2);
  CHECK_MEMEQ(buf, v2, vlen);
  /* second gets: hits */
  get_hit(h, s, "big-1m", v1, sizeof v1);
  get_hit(h, s, "big-200k", v2, sizeof v2);
  CHECK_RC(hzshm_get(s, "big-1m", 6, buf, sizeof v1 - 1, &vlen), HZSHM_EBUFSIZE);
  CHECK_EQ(vlen, sizeof v1);

  /* Hit latency of a 1 MiB hzshm_get (printed, not asserted). */
  enum { REPS = 64 };
  hzshm_stats_t a = e2e_stats(h);
  uint64_t t0 = e2e_now_us();
  for (int i = 0; i < REPS; i++) CHECK_RC(hzshm_get(s, "big-1m", 6, buf, sizeof buf, &vlen), 0);
  uint64_t dt = e2e_now_us() - t0;
  hzshm_stats_t b = e2e_stats(h);
  CHECK_GE(b.hits - a.hits, REPS);
  CHECK_EQ(b.remote_gets, a.remote_gets);
  printf("1 MiB hzshm_get hit: %.1f us\n", (double)dt / REPS);

  /* A new 1 MiB value through the API: the next read returns the new bytes. */
  CHECK_RC(hzshm_set(s, "big-1m", 6, v3, sizeof v3), 0);
  CHECK_RC(hzshm_get(s, "big-1m", 6, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, sizeof v3);
  CHECK_MEMEQ(buf, v3, vlen);
  get_hit(h, s, "big-1m", v3, sizeof v3);

  CHECK_RC(hzshm_destroy(s), 0);
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_EQ(e2e_agent_stop(&ag), 0); /* clean exit (under ASan: leak-free) */
  printf("test_bigvalue: ok\n");
}
