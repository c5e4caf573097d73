/* test_manysessions.c (slow) - 10k live sessions, each with its own
 * invalidation listener. Measures: listener registration cost (first write of
 * a session vs a later write), member memory (RSS of the member process
 * before/after), agent memory, and invalidation delivery with every listener
 * live (official client writes -> this host stops serving the old value).
 * Asserts only correctness (every session cached and purged). */
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

#define NSESS 10000
#define PROBES 200

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  fclose(f);
  return kb;
}

static pid_t member_pid(void) {
  const char *dir = getenv("HZSHM_TEST_MEMBER_DIR"), *hzm = getenv("HZ_MEMBER");
  if (!dir || !hzm) return -1;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s status --dir %s", hzm, dir); /* "index port pid alive" */
  FILE *f = popen(cmd, "r");
  int idx, port, pid = -1;
  if (f) {
    if (fscanf(f, "%d %d %d", &idx, &port, &pid) != 3) pid = -1;
    pclose(f);
  }
  return pid;
}

static int listeners_all(void *ud) { return e2e_stats((hzshm_t *)ud).listeners >= NSESS; }

TEST_CASE(many_sessions) {
  char name[64];
  snprintf(name, sizeof name, "e2e-many-%d", (int)getpid());
  e2e_agent_t ag = {0};
  /* Creating 10k sessions takes longer than the default --idle-ms (10 s) on a
   * loaded machine: a session whose one entry was evicted (or never cached)
   * would lose its listener before the count is read. Not what is measured here. */
  ag.extra_args[0] = "--idle-ms";
  ag.extra_args[1] = "3600000";
  ag.extra_args[2] = "--memory";
  ag.extra_args[3] = "128m";
  e2e_agent_start(&ag, name, e2e_members());
  pid_t mp = member_pid();
  long m0 = mp > 0 ? rss_kb(mp) : -1, a0 = rss_kb(ag.pid);
  hzshm_t *h;
  CHECK_RC(hzshm_open(name, NULL, &h), 0);
  hzshm_session_t **ss = calloc(NSESS, sizeof *ss);
  uint64_t *first = malloc(NSESS * sizeof *first), *again = malloc(NSESS * sizeof *again);
  char sid[64];
  uint64_t t0 = e2e_now_us();
  for (int i = 0; i < NSESS; i++) {
    snprintf(sid, sizeof sid, "many-%d-%d", (int)getpid(), i);
    CHECK_RC(hzshm_session_open(h, sid, strlen(sid), &ss[i]), 0);
    uint64_t t = e2e_now_us();
    CHECK_RC(hzshm_set(ss[i], "k", 1, "v0", 2), 0); /* registers the session's listener first */
    first[i] = e2e_now_us() - t;
    t = e2e_now_us();
    CHECK_RC(hzshm_set(ss[i], "k", 1, "v1", 2), 0);
    again[i] = e2e_now_us() - t;
  }
  double secs = (e2e_now_us() - t0) / 1e6;
  /* The agent publishes its counters on its next tick (50 ms): wait for it. */
  CHECK_GE(e2e_wait(listeners_all, h, 5000), 0);
  hzshm_stats_t st = e2e_stats(h);
  printf("%d sessions with listeners in %.1f s (agent reports %llu listeners)\n", NSESS, secs,
         (unsigned long long)st.listeners);
  CHECK_GE(st.listeners, NSESS);
  e2e_print_dist("first set of a session (listener registration + set)", first, NSESS, "us");
  e2e_print_dist("second set of a session", again, NSESS, "us");
  long m1 = mp > 0 ? rss_kb(mp) : -1, a1 = rss_kb(ag.pid);
  printf("member RSS %ld -> %ld kB (%+ld kB, %.2f kB per session); agent RSS %ld -> %ld kB\n", m0, m1, m1 - m0,
         (m1 - m0) / (double)NSESS, a0, a1);

  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  uint64_t lag[PROBES];
  for (int p = 0; p < PROBES; p++) {
    int i = (int)((p * 7919L) % NSESS);
    char buf[8];
    size_t vlen;
    CHECK_RC(hzshm_get(ss[i], "k", 1, buf, sizeof buf, &vlen), 0); /* cached */
    snprintf(sid, sizeof sid, "many-%d-%d", (int)getpid(), i);
    char v[16];
    snprintf(v, sizeof v, "p%d", p);
    uint64_t t = e2e_now_us();
    CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, v, strlen(v)), 0);
    uint64_t acked = e2e_now_us() - t;
    int64_t us = e2e_wait_serves(ss[i], "k", v, 10000);
    CHECK_GE(us, 0);
    lag[p] = (uint64_t)us + acked;
  }
  e2e_print_dist("official-client set -> served here, with 10k live listeners", lag, PROBES, "us");
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  for (int i = 0; i < NSESS; i++) hzshm_session_close(ss[i]);
  free(ss);
  free(first);
  free(again);
  hzshm_close(h);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  printf("test_manysessions: ok\n");
}
