/* test_failclosed.c - fail closed and repair, against a member this test may
 * restart (own fixture):
 *  1. kill -9 the agent under read load (4 reader processes): every reader
 *     stops serving hits within the bound (--stale-ms 1000 + the coarse clock
 *     + the reader's loop); measured and printed.
 *  2. While the agent is dead another client changes the value. The restarted
 *     agent reuses the segment, revalidates, and serves the new value: the old
 *     one is never served again.
 *  3. The member is killed and revived (a one-member cluster: a new cluster,
 *     data lost): readers fail closed while it is gone, and afterwards the
 *     cache serves absence, never the value cached before. */
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

#define NREAD 4

typedef struct {
  volatile uint64_t t_fail_us[NREAD]; /* written by readers before exit; read after waitpid */
  volatile int rc[NREAD];
  volatile long hits[NREAD];
} shared_t;

static char NAME[64], SID[64];

static void reader(shared_t *sh, int i, const char *expect) {
  hzshm_t *h;
  hzshm_session_t *s;
  if (hzshm_open(NAME, NULL, &h) != 0 || hzshm_session_open(h, SID, strlen(SID), &s) != 0) _exit(2);
  char buf[64];
  size_t vlen;
  long hits = 0;
  for (;;) {
    int rc = hzshm_get(s, "k", 1, buf, sizeof buf, &vlen);
    if (rc == 0) {
      if (vlen != strlen(expect) || memcmp(buf, expect, vlen) != 0) _exit(4);
      hits++;
      continue;
    }
    sh->t_fail_us[i] = e2e_now_us();
    sh->rc[i] = rc;
    sh->hits[i] = hits;
    _exit(0);
  }
}

typedef struct {
  hzshm_session_t *s;
  const char *want;
} seen_t;

static int sees(void *ud) {
  seen_t *x = ud;
  char buf[64];
  size_t vlen;
  int rc = hzshm_get(x->s, "k", 1, buf, sizeof buf, &vlen);
  if (x->want == NULL) return rc == HZSHM_ENOTFOUND;
  return rc == 0 && vlen == strlen(x->want) && memcmp(buf, x->want, vlen) == 0;
}

typedef struct {
  hzshm_t *h;
  uint64_t base;
} hg_t;

static int grew(void *ud) {
  hg_t *g = ud;
  return e2e_stats(g->h).hits > g->base + 1000;
}

TEST_CASE(fail_closed) {
  snprintf(NAME, sizeof NAME, "e2e-fc-%d", (int)getpid());
  snprintf(SID, sizeof SID, "failclosed-%d", (int)getpid());
  e2e_agent_t ag = {0};
  e2e_agent_start(&ag, NAME, e2e_members());
  hzshm_t *h;
  hzshm_session_t *s;
  CHECK_RC(hzshm_open(NAME, NULL, &h), 0);
  CHECK_RC(hzshm_session_open(h, SID, strlen(SID), &s), 0);
  CHECK_RC(hzshm_set(s, "k", 1, "before", 6), 0);

  /* 1. kill -9 under read load. */
  shared_t *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(sh, MAP_FAILED);
  pid_t kids[NREAD];
  for (int i = 0; i < NREAD; i++) {
    kids[i] = fork();
    CHECK_GE(kids[i], 0);
    if (kids[i] == 0) reader(sh, i, "before");
  }
  /* Let every reader reach its hit loop: the agent's hit counter grows. */
  uint64_t hits0 = e2e_stats(h).hits;
  hg_t hg = {h, hits0};
  CHECK_GE(e2e_wait(grew, &hg, 10000), 0);
  uint64_t t_kill = e2e_now_us();
  e2e_agent_kill9(&ag);
  uint64_t worst = 0;
  for (int i = 0; i < NREAD; i++) {
    int st;
    CHECK(waitpid(kids[i], &st, 0) == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(sh->rc[i] == HZSHM_ESTALE || sh->rc[i] == HZSHM_EAGENT);
    CHECK_GE(sh->t_fail_us[i], t_kill);
    uint64_t d = sh->t_fail_us[i] - t_kill;
    if (d > worst) worst = d;
    printf("reader %d: %ld hits, then %s after %llu ms\n", i, sh->hits[i], hzshm_err_name(sh->rc[i]),
           (unsigned long long)(d / 1000));
  }
  printf("fail closed after kill -9: worst %llu ms (bound: --stale-ms 1000)\n", (unsigned long long)(worst / 1000));
  CHECK_LT(worst, 1000000u + 1500000u); /* bound + generous scheduling slack on a loaded 2-core box */

  /* 2. change while dead; restart; never the old value. */
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  CHECK_RC(hzshm__peer_set(peer, SID, "k", 1, "after", 5), 0);
  char buf[64];
  size_t vlen;
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), HZSHM_ESTALE);
  e2e_agent_restart(&ag);
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 5);
  CHECK_MEMEQ(buf, "after", 5);
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0); /* refilled: a hit now */
  CHECK_EQ(vlen, 5);
  CHECK_MEMEQ(buf, "after", 5);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);

  /* 3. member killed and revived. */
  uint64_t t0 = e2e_now_us();
  CHECK_EQ(e2e_member("kill", 0), 0);
  int rc;
  while ((rc = hzshm_get(s, "k", 1, buf, sizeof buf, &vlen)) == 0) {
    CHECK_EQ(vlen, 5);
    CHECK_MEMEQ(buf, "after", 5);
    CHECK_LT(e2e_now_us() - t0, 30000000u);
  }
  CHECK(rc == HZSHM_EDISCONNECTED || rc == HZSHM_ESTALE);
  printf("member killed: readers fail closed (%s) after %llu ms\n", hzshm_err_name(rc),
         (unsigned long long)((e2e_now_us() - t0) / 1000));
  CHECK_EQ(e2e_member("revive", 0), 0);
  seen_t x = {s, NULL};
  int64_t us = e2e_wait(sees, &x, 60000); /* data lost with the only member: absent, never "after" */
  CHECK_GE(us, 0);
  printf("member revived: serving again (absence) after %lld ms\n", (long long)(us / 1000));
  CHECK_RC(hzshm_set(s, "k", 1, "fresh", 5), 0);
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 5);
  CHECK_MEMEQ(buf, "fresh", 5);

  CHECK_RC(hzshm_destroy(s), 0);
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  munmap(sh, sizeof *sh);
  printf("test_failclosed: ok\n");
}
