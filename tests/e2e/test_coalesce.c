/* test_coalesce.c - 16 processes missing the same key at once cause exactly
 * one remote get. The agent's test hook holds the remote get's response for
 * 1 s so that every process's miss arrives while it is in flight. */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

#define NPROC 16

TEST_CASE(coalesce) {
  e2e_host_t o = {.ag = {.bin = HZSHM_AGENT_SEAMS_BIN, /* test-only agent: its seams */
                           .extra_env = {"HZSHM_AGENT_TEST_FILL_DELAY_KEY=hot", "HZSHM_AGENT_TEST_FILL_DELAY_MS=1000"}}};
  e2e_host_start(&o, "co", "coalesce");
  const char *name = o.name, *sid = o.sid;
  hzshm_t *h = o.h;
  hzshm_session_t *s = o.s;
  /* The session's listener is registered by a first write, so that the 16
   * misses below race only each other. "hot" is absent in the cluster. */
  CHECK_RC(hzshm_set(s, "warm", 4, "w", 1), 0); /* registers the session's listener */
  hzshm_stats_t before = e2e_stats(h);

  int go[2];
  CHECK_EQ(pipe(go), 0);
  int *ok = mmap(NULL, sizeof(int) * NPROC, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(ok, MAP_FAILED);
  pid_t kids[NPROC];
  for (int i = 0; i < NPROC; i++) {
    kids[i] = fork();
    CHECK_GE(kids[i], 0);
    if (kids[i] == 0) {
      close(go[1]);
      hzshm_t *hc;
      hzshm_session_t *sc;
      if (hzshm_open(name, NULL, &hc) != 0 || hzshm_session_open(hc, sid, strlen(sid), &sc) != 0) _exit(2);
      char c;
      if (read(go[0], &c, 1) != 0) _exit(3); /* released by EOF */
      char buf[16];
      size_t vlen;
      int rc = hzshm_get(sc, "hot", 3, buf, sizeof buf, &vlen);
      ok[i] = rc == HZSHM_ENOTFOUND ? 1 : 0 - 1000 + rc % 1000;
      hzshm_session_close(sc);
      hzshm_close(hc);
      _exit(0);
    }
  }
  close(go[0]);
  close(go[1]); /* release all at once */
  for (int i = 0; i < NPROC; i++) {
    int st;
    CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(ok[i], 1);
  }
  hzshm_stats_t after = e2e_stats(h);
  printf("16 concurrent misses: remote gets %llu, coalesced %llu\n",
         (unsigned long long)(after.remote_gets - before.remote_gets),
         (unsigned long long)(after.coalesced_misses - before.coalesced_misses));
  CHECK_EQ(after.remote_gets - before.remote_gets, 1);
  CHECK_GE(after.coalesced_misses - before.coalesced_misses, 1);
  /* The result was cached: one more read is a hit. */
  CHECK_RC(hzshm_has(s, "hot", 3), HZSHM_ENOTFOUND);
  CHECK_EQ(e2e_stats(h).remote_gets, after.remote_gets);
  CHECK_RC(hzshm_destroy(s), 0);
  munmap(ok, sizeof(int) * NPROC);
  e2e_host_stop(&o);
  printf("test_coalesce: ok\n");
}
