/* test_restart.c - a restarted agent publishes "not serving" until every
 * partition of the reused segment is marked stale (issue 11, hole 3).
 *
 * An agent caches k=old and is killed (kill -9); the official Java client
 * changes k to new while no agent runs. A reader process polls k without
 * pause while the next agent starts; that agent is the test-only build
 * hzshm-agent-seams, which waits HZSHM_AGENT_TEST_OPEN_DELAY_MS between
 * opening the segment and marking its partitions stale. No read may return
 * old: before the fix the segment was published SERVING (fresh heartbeat) at
 * open, and the dead agent's entry was a hit for the whole window. */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

typedef struct {
  atomic_int stop;
  atomic_ulong reads, old_reads, new_reads, not_serving;
} shared_t;

static char name[64], sid[64];

static void reader(shared_t *sh) {
  hzshm_t *h;
  hzshm_session_t *s;
  if (hzshm_open(name, NULL, &h) != 0 || hzshm_session_open(h, sid, strlen(sid), &s) != 0) _exit(3);
  while (!atomic_load(&sh->stop)) {
    char buf[64];
    size_t vl = 0;
    int rc = hzshm_get(s, "k", 1, buf, sizeof buf, &vl);
    atomic_fetch_add(&sh->reads, 1);
    if (rc == 0 && vl == 3 && memcmp(buf, "old", 3) == 0) atomic_fetch_add(&sh->old_reads, 1);
    if (rc == 0 && vl == 3 && memcmp(buf, "new", 3) == 0) atomic_fetch_add(&sh->new_reads, 1);
    if (rc == HZSHM_ESTALE || rc == HZSHM_EDISCONNECTED || rc == HZSHM_EAGENT) atomic_fetch_add(&sh->not_serving, 1);
  }
  hzshm_session_close(s);
  hzshm_close(h);
  _exit(0);
}

static int stale(void *ud) {
  char buf[64];
  size_t vl;
  return hzshm_get(ud, "k", 1, buf, sizeof buf, &vl) == HZSHM_ESTALE;
}

static int saw_new(void *ud) { return atomic_load(&((shared_t *)ud)->new_reads) > 0; }

TEST_CASE(restart) {
  snprintf(name, sizeof name, "e2e-rs-%d", (int)getpid());
  snprintf(sid, sizeof sid, "restart-%d", (int)getpid());
  e2e_agent_t ag = {0};
  e2e_agent_start(&ag, name, e2e_members());
  hzshm_t *h;
  hzshm_session_t *s;
  e2e_open_watched(name, sid, &h, &s);
  CHECK_RC(hzshm_set(s, "k", 1, "old", 3), 0);
  e2e_hit_t hit = {h, s, "k", "old"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hit, 5000), 0);
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);

  e2e_agent_kill9(&ag);
  CHECK_GE(e2e_wait(stale, s, 10000), 0); /* the dead agent's heartbeat aged out */
  CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, "new", 3), 0);

  shared_t *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(sh, MAP_FAILED);
  memset(sh, 0, sizeof *sh);
  pid_t kid = fork();
  CHECK_GE(kid, 0);
  if (kid == 0) reader(sh);
  ag.bin = HZSHM_AGENT_SEAMS_BIN;
  snprintf(ag.extra_env[0], sizeof ag.extra_env[0], "HZSHM_AGENT_TEST_OPEN_DELAY_MS=1500");
  e2e_agent_restart(&ag); /* returns once it serves (after the window) */
  CHECK_GE(e2e_wait(saw_new, sh, 10000), 0);
  atomic_store(&sh->stop, 1);
  int st;
  CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  printf("reader during the restart: %lu reads, %lu not serving, %lu old, %lu new\n", atomic_load(&sh->reads),
         atomic_load(&sh->not_serving), atomic_load(&sh->old_reads), atomic_load(&sh->new_reads));
  CHECK_EQ(atomic_load(&sh->old_reads), 0);
  CHECK_GT(atomic_load(&sh->not_serving), 0);
  CHECK_GE(e2e_wait_serves(s, "k", "new", 5000), 0);

  CHECK_RC(hzshm_destroy(s), 0);
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  printf("test_restart: ok\n");
}
