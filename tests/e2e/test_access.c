/* test_access.c - the access model and re-attach end to end (issue 10
 * defect 4), against a real member and the official Java client.
 *
 * Two uids: the agent runs as root with --allow-gid 65534. A reader process
 * as `nobody` (65534:65534) reads self-checking values (tv.h) that the Java
 * client keeps overwriting, through libhzshm (hits from the segment, misses
 * through the agent), and checks every value it gets. A hostile process of
 * uid 65533 in group 65534 attaches too and attacks every file of the
 * segment it can reach (tests/common/hostile.h): only its own private reader
 * file may open for writing, which it scribbles on and truncates. Asserts:
 * zero wrong values, the reader had hits from shared memory, the agent is
 * alive and serves afterwards. (Needs root; skipped otherwise.)
 *
 * Re-attach: the agent stops (the segment files are removed) and starts
 * again with a new segment file; a libhzshm handle opened before serves hits
 * again (it used to report HZSHM_ESTOPPED forever). */
#define _GNU_SOURCE
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/hostile.h"
#include "../common/tv.h"
#include "e2e.h"
#include "peer.h"

#define GID 65534
#define NKEYS 32

typedef struct {
  _Atomic int stop, ready;
  _Atomic uint64_t reads, hits, bad;
} side_t;

static int become(uid_t uid) { return hostile_become(uid, GID); }

static void key_of(char *k, int i) { snprintf(k, 16, "acc-%02d", i); }

/* The reader (as nobody): every value it gets must be whole and its key's. */
static int reader_run(const char *name, const char *map, side_t *side) {
  if (become(65534) != 0) return 10;
  hzshm_t *h;
  hzshm_session_t *s;
  int rc = hzshm_open(name, NULL, &h);
  if (rc != 0) {
    fprintf(stderr, "reader: hzshm_open as nobody: %s\n", hzshm_err_name(rc));
    return 11;
  }
  if (hzshm_session_open(h, map, strlen(map), &s) != 0) return 12;
  atomic_fetch_add(&side->ready, 1);
  uint8_t buf[256];
  for (uint64_t i = 0; !atomic_load(&side->stop); i++) {
    char k[16];
    int idx = (int)(i % NKEYS);
    key_of(k, idx);
    size_t n = 0;
    rc = hzshm_get(s, k, strlen(k), buf, sizeof buf, &n);
    atomic_fetch_add(&side->reads, 1);
    if (rc == HZSHM_ENOTFOUND) continue; /* not written yet */
    if (rc != 0) {
      fprintf(stderr, "reader: get %s: %s\n", k, hzshm_err_name(rc));
      return 13;
    }
    uint64_t ver;
    if (tv_check(buf, n, 7, (uint32_t)idx, &ver) != 0) {
      fprintf(stderr, "reader: WRONG value for %s (%zu bytes)\n", k, n);
      atomic_fetch_add(&side->bad, 1);
    }
  }
  hzshm_stats_t st;
  if (hzshm_stats(h, &st) == 0) atomic_store(&side->hits, st.hits); /* this process's shared-memory hits */
  hzshm_session_close(s);
  hzshm_close(h);
  return 0;
}

static int hostile_run(const char *name, side_t *side) {
  if (become(65533) != 0) return 20;
  hzshm_t *h;
  if (hzshm_open(name, NULL, &h) != 0) return 21; /* it has a private reader file too */
  int rc = hostile_plant("/dev/shm", name);
  if (rc != 0) return 21 + rc;
  atomic_fetch_add(&side->ready, 1);
  uint64_t rnd = 0xbad5eed;
  char own_prefix[160];
  snprintf(own_prefix, sizeof own_prefix, "/dev/shm/hzshm.%s.rd.%d.", name, (int)getpid());
  while (!atomic_load(&side->stop)) {
    /* its own private reader file: whatever it is called after the prefix */
    char own[512] = "";
    DIR *d = opendir("/dev/shm");
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
      char p[512];
      snprintf(p, sizeof p, "/dev/shm/%s", e->d_name);
      if (strncmp(p, own_prefix, strlen(own_prefix)) == 0) snprintf(own, sizeof own, "%s", p);
    }
    if (d) closedir(d);
    if (hostile_round("/dev/shm", name, own[0] ? own : NULL, &rnd) != 0) return 27;
  }
  return 0; /* exits with its handle open: its (truncated) mapping is its own problem */
}

static int agent_alive(e2e_agent_t *ag) { return kill(ag->pid, 0) == 0 && waitpid(ag->pid, NULL, WNOHANG) == 0; }

static void test_two_uids(const char *members, hzshm__peer_t *peer) {
  if (geteuid() != 0) {
    printf("test_access: not root, two-uid part skipped\n");
    return;
  }
  char name[64], map[64];
  snprintf(name, sizeof name, "e2e-acc-%d", (int)getpid());
  snprintf(map, sizeof map, "acc-%d", (int)getpid());
  e2e_agent_t ag = {0};
  ag.extra_args[0] = "--allow-gid";
  ag.extra_args[1] = "65534";
  e2e_agent_start(&ag, name, members);
  side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(side, MAP_FAILED);
  uint8_t val[256];
  char k[16];
  for (int i = 0; i < NKEYS; i++) { /* version 0 of every key, by the official client */
    key_of(k, i);
    size_t n = tv_make(val, 7, (uint32_t)i, 0, 40 + (uint32_t)i);
    CHECK_RC(hzshm__peer_set(peer, map, k, strlen(k), val, n), 0);
  }
  pid_t pids[2];
  for (int i = 0; i < 2; i++) {
    pids[i] = fork();
    CHECK_GE(pids[i], 0);
    if (pids[i] == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      _exit(i == 0 ? reader_run(name, map, side) : hostile_run(name, side));
    }
  }
  uint64_t t0 = e2e_now_us();
  while (atomic_load(&side->ready) < 2 && e2e_now_us() - t0 < 30000000u) {
    int st;
    CHECK_LE(waitpid(-1, &st, WNOHANG), 0); /* a child that failed to start */
    usleep(1000); /* polling a condition with a deadline */
  }
  CHECK_EQ(atomic_load(&side->ready), 2);
  /* The official client overwrites every key, over and over, while the two
   * processes read and attack. */
  uint64_t end = e2e_now_us() + 8000000u, ver = 1, puts = 0;
  while (e2e_now_us() < end) {
    for (int i = 0; i < NKEYS; i++) {
      key_of(k, i);
      size_t n = tv_make(val, 7, (uint32_t)i, ver, 40 + (uint32_t)((ver + i) % 64));
      CHECK_RC(hzshm__peer_set(peer, map, k, strlen(k), val, n), 0);
      puts++;
    }
    ver++;
    int st;
    pid_t p = waitpid(-1, &st, WNOHANG);
    if (p > 0) fprintf(stderr, "child %d exited early, status %d\n", (int)p, st);
    CHECK_LE(p, 0);
    CHECK(agent_alive(&ag));
  }
  atomic_store(&side->stop, 1);
  for (int i = 0; i < 2; i++) {
    int st;
    CHECK_EQ(waitpid(pids[i], &st, 0), pids[i]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fprintf(stderr, "%s exited with status %d\n", i ? "hostile" : "reader", st);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  printf("two uids: %llu puts by the Java client, reader (nobody) %llu reads, %llu hits from shared memory, %llu wrong\n",
         (unsigned long long)puts, (unsigned long long)atomic_load(&side->reads),
         (unsigned long long)atomic_load(&side->hits), (unsigned long long)atomic_load(&side->bad));
  CHECK_EQ(atomic_load(&side->bad), 0);
  CHECK_GT(atomic_load(&side->hits), 0);
  CHECK(agent_alive(&ag));
  /* and it still serves (a root reader: the shared reader file) */
  hzshm_t *h;
  hzshm_session_t *s;
  CHECK_RC(hzshm_open(name, NULL, &h), 0);
  CHECK_RC(hzshm_session_open(h, map, strlen(map), &s), 0);
  key_of(k, 3);
  size_t n = 0;
  uint64_t v;
  CHECK_RC(hzshm_get(s, k, strlen(k), val, sizeof val, &n), 0);
  CHECK_EQ(tv_check(val, n, 7, 3, &v), 0);
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  hostile_cleanup("/dev/shm", name); /* the hostile process's planted files */
  munmap(side, sizeof *side);
}

static void test_reattach(const char *members) {
  char name[64], map[64];
  snprintf(name, sizeof name, "e2e-ra-%d", (int)getpid());
  snprintf(map, sizeof map, "ra-%d", (int)getpid());
  e2e_agent_t ag = {0};
  e2e_agent_start(&ag, name, members);
  hzshm_t *h;
  hzshm_session_t *s;
  CHECK_RC(hzshm_open(name, NULL, &h), 0);
  CHECK_RC(hzshm_session_open(h, map, strlen(map), &s), 0);
  CHECK_RC(hzshm_set(s, "k", 1, "one", 3), 0);
  e2e_hit_t h1 = {h, s, "k", "one"};
  CHECK_GE(e2e_wait(e2e_is_hit, &h1, 10000), 0);
  /* A view of the old segment is held across the re-attach. */
  const void *v1, *v2;
  size_t n1, n2;
  CHECK_RC(hzshm_get_view(s, "k", 1, &v1, &n1), 0);
  CHECK_EQ(n1, 3);
  CHECK_MEMEQ(v1, "one", 3);
  /* The agent goes (--unlink-on-exit: its files are removed) and a new one
   * creates a new segment file under the same name. */
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  size_t n;
  char buf[16];
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &n), HZSHM_ESTOPPED);
  e2e_agent_restart(&ag);
  CHECK_RC(hzshm_set(s, "k", 1, "two", 3), 0);
  e2e_hit_t h2 = {h, s, "k", "two"};
  int64_t us = e2e_wait(e2e_is_hit, &h2, 10000);
  CHECK_GE(us, 0); /* the old handle follows the new segment */
  printf("re-attach: the handle opened before the restart hits in the new segment after %lld ms\n",
         (long long)(us / 1000));
  /* Nested views across the re-attach, released in LIFO order: each
   * release ends the section of the segment its view came from. */
  CHECK_RC(hzshm_get_view(s, "k", 1, &v2, &n2), 0);
  CHECK_EQ(n2, 3);
  CHECK_MEMEQ(v2, "two", 3);
  CHECK_RC(hzshm_view_release(s), 0);   /* v2, of the new segment */
  int rel = hzshm_view_release(s);      /* v1, of the old one */
  CHECK(rel == 0 || rel == HZSHM_ECHANGED); /* not "no open view" */
  CHECK_RC(hzshm_view_release(s), HZSHM_EINVAL); /* none left */
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
}

/* The agent under a dedicated uid (65533, as the packaged service's user):
 * a reader of another uid (65534) uses it only with HZSHM_AGENT_UID naming
 * that uid (else the segment is refused: HZSHM_EUNTRUSTED); the CLI's
 * --agent-uid does the same. Values go through the agent and are hit. */
static int agent_uid_reader(const char *name, const char *map, const char *agent_uid) {
  if (become(65534) != 0) return 100;
  if (agent_uid) setenv("HZSHM_AGENT_UID", agent_uid, 1);
  else unsetenv("HZSHM_AGENT_UID");
  hzshm_t *h;
  hzshm_session_t *s;
  int rc = hzshm_open(name, NULL, &h);
  if (rc == HZSHM_EUNTRUSTED) return 1;
  if (rc != 0 || hzshm_session_open(h, map, strlen(map), &s) != 0) return 101;
  uint8_t buf[64];
  size_t n = 0;
  int ok = hzshm_set(s, "au", 2, "agent-uid", 9) == 0 && hzshm_get(s, "au", 2, buf, sizeof buf, &n) == 0 &&
           n == 9 && memcmp(buf, "agent-uid", 9) == 0;
  hzshm_stats_t st;
  uint64_t hits0 = hzshm_stats(h, &st) == 0 ? st.hits : 0;
  uint64_t end = e2e_now_us() + 20000000u; /* the fill is in: hits once the agent follows our private file */
  while (ok && e2e_now_us() < end) {
    ok = hzshm_get(s, "au", 2, buf, sizeof buf, &n) == 0 && n == 9 && memcmp(buf, "agent-uid", 9) == 0;
    if (hzshm_stats(h, &st) == 0 && st.hits > hits0) break;
  }
  ok = ok && hzshm_stats(h, &st) == 0 && st.hits > hits0;
  hzshm_session_close(s);
  hzshm_close(h);
  return ok ? 0 : 102;
}

static void test_agent_uid(const char *members) {
  if (geteuid() != 0) {
    printf("test_access: not root, agent-uid part skipped\n");
    return;
  }
  char name[64], map[64];
  snprintf(name, sizeof name, "e2e-accu-%d", (int)getpid());
  snprintf(map, sizeof map, "accu-%d", (int)getpid());
  e2e_agent_t ag = {.run_uid = 65533, .run_gid = GID};
  ag.extra_args[0] = "--allow-gid";
  ag.extra_args[1] = "65534";
  CHECK_EQ(setenv("HZSHM_AGENT_UID", "65533", 1), 0); /* for e2e_agent_start's readiness check */
  e2e_agent_start(&ag, name, members);
  CHECK_EQ(unsetenv("HZSHM_AGENT_UID"), 0);
  static const char *const cfg[] = {NULL, "65533"};
  static const int want[] = {1, 0};
  for (int i = 0; i < 2; i++) {
    pid_t p = fork();
    CHECK_GE(p, 0);
    if (p == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      _exit(agent_uid_reader(name, map, cfg[i]));
    }
    int st;
    CHECK(waitpid(p, &st, 0) == p && WIFEXITED(st));
    fprintf(stderr, "agent as uid 65533, reader uid 65534, HZSHM_AGENT_UID=%s: exit %d\n", cfg[i] ? cfg[i] : "(unset)",
            WEXITSTATUS(st));
    CHECK_EQ(WEXITSTATUS(st), want[i]);
  }
  /* the CLI (as root here): refused without --agent-uid, served with it */
  char out[256];
  const char *get_plain[] = {"hzshm", "-n", name, "get", map, "au", NULL};
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, get_plain), 2);
  const char *get_uid[] = {"hzshm", "--agent-uid", "65533", "-n", name, "get", map, "au", NULL};
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, get_uid), 0);
  CHECK(strcmp(out, "agent-uid") == 0 || strcmp(out, "agent-uid\n") == 0);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
}

TEST_CASE(reattach) { test_reattach(e2e_members()); }

TEST_CASE(two_uids) {
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  test_two_uids(e2e_members(), peer);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
}

TEST_CASE(agent_uid) { test_agent_uid(e2e_members()); }
