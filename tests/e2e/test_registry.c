/* test_registry.c - libhzshm's per-process session registry (src/lib/
 * registry.c, liburcu-bp + cds_lfht): handles of one session share one core
 * and one resolved directory reference; other handles and ids do not; threads
 * opening and closing the same sessions concurrently (cores retired and
 * replaced under them) always get working handles; enough sessions to resize
 * the table; a fork() while threads run leaves a child that can open, use and
 * close sessions (urcu-bp fork handlers), and so do many fork()s while other
 * threads open and close handles. This process plays the agent
 * (hzshm__shm_w_*), as in test_lib.c. Label threaded: run under TSan. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "runner.h"
#include "hzshm.h"
#include "lib_int.h"
#include "shm.h"

static char NAME[64];
static hzshm__shm_t *W;
static hzshm_t *H;

static void put(const char *sid, const char *key, const char *val) {
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_session(W, sid, strlen(sid), &ref), 0);
  uint64_t st = hzshm__shm_w_stamp(W);
  CHECK_RC(hzshm__shm_w_put(W, &ref, key, strlen(key), val, strlen(val), 1, st, 0, 0), 0);
}

static void expect_hit(hzshm_session_t *s, const char *key, const char *val) {
  char buf[64];
  size_t n = 0;
  CHECK_RC(hzshm_get(s, key, strlen(key), buf, sizeof buf, &n), 0);
  CHECK_EQ(n, strlen(val));
  CHECK_MEMEQ(buf, val, n);
}

static void test_sharing(void) {
  hzshm_session_t *a, *b, *c;
  CHECK_RC(hzshm_session_open(H, "s0", 2, &a), 0);
  CHECK_RC(hzshm_session_open(H, "s0", 2, &b), 0);
  CHECK_RC(hzshm_session_open(H, "s1", 2, &c), 0);
  CHECK_NE(a, b);
  CHECK_EQ(a->core, b->core);
  CHECK_EQ(a->cache, b->cache); /* one core per session */
  CHECK_NE(c->core, a->core);
  CHECK_EQ(a->namelen, 2);
  CHECK_STREQ(a->name, "s0");
  CHECK_STREQ(c->name, "s1");
  /* Nothing resolved yet; one hit through a resolves the reference for b too. */
  CHECK_EQ(atomic_load_explicit(&b->cache->gen, memory_order_relaxed), 0);
  expect_hit(a, "k", "v0");
  CHECK_NE(atomic_load_explicit(&b->cache->gen, memory_order_relaxed), 0);
  expect_hit(b, "k", "v0");
  /* Another hzshm_t on the same cache never shares cores with H. */
  hzshm_t *h2;
  CHECK_RC(hzshm_open(NAME, NULL, &h2), 0);
  hzshm_session_t *d;
  CHECK_RC(hzshm_session_open(h2, "s0", 2, &d), 0);
  CHECK_NE(d->core, a->core);
  CHECK_EQ(atomic_load_explicit(&d->cache->gen, memory_order_relaxed), 0);
  expect_hit(d, "k", "v0");
  hzshm_session_close(d);
  hzshm_close(h2);
  /* The core outlives the first close and serves the remaining handle. */
  hzshm_session_close(a);
  expect_hit(b, "k", "v0");
  hzshm_session_close(b);
  hzshm_session_close(c);
  /* Bad input changes nothing: no handle, the registry still works. */
  hzshm_session_t *x = (hzshm_session_t *)&x;
  CHECK_RC(hzshm_session_open(H, "", 0, &x), HZSHM_EEMPTY);
  CHECK(x == (hzshm_session_t *)&x);
  CHECK_RC(hzshm_session_open(H, "s0", 2, &a), 0);
  expect_hit(a, "k", "v0");
  hzshm_session_close(a);
}

/* Many distinct sessions at once: the registry grows (cds_lfht_resize). */
static void test_many(void) {
  enum { M = 3000 };
  hzshm_session_t **s = calloc(M, sizeof *s);
  CHECK(s != NULL);
  char sid[32];
  for (int i = 0; i < M; i++) {
    snprintf(sid, sizeof sid, "many-%d", i);
    CHECK_RC(hzshm_session_open(H, sid, strlen(sid), &s[i]), 0);
  }
  for (int i = 0; i < M; i++) {
    snprintf(sid, sizeof sid, "many-%d", i);
    hzshm_session_t *again;
    CHECK_RC(hzshm_session_open(H, sid, strlen(sid), &again), 0);
    CHECK_EQ(again->core, s[i]->core);
    CHECK_STREQ(again->name, sid);
    hzshm_session_close(again);
  }
  for (int i = 0; i < M; i++) hzshm_session_close(s[i]);
  free(s);
}

/* ---- threads ---- */
enum { THREADS = 4, SIDS = 3 };
static atomic_int stop;
static atomic_long opens; /* relaxed: progress count only */

static void *churn(void *arg) {
  unsigned x = (unsigned)(uintptr_t)arg * 2654435761u + 1;
  char sid[8], val[8];
  /* Relaxed: a stop flag; nothing else is published through it. */
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    x = x * 1103515245u + 12345u;
    int i = (int)((x >> 8) % SIDS);
    snprintf(sid, sizeof sid, "t%d", i);
    snprintf(val, sizeof val, "v%d", i);
    hzshm_session_t *s;
    CHECK_RC(hzshm_session_open(H, sid, strlen(sid), &s), 0);
    CHECK_STREQ(s->name, sid);
    expect_hit(s, "k", val);
    hzshm_session_close(s); /* often the last handle: the core is retired */
    atomic_fetch_add_explicit(&opens, 1, memory_order_relaxed);
  }
  return NULL;
}

static long opens_now(void) { return atomic_load_explicit(&opens, memory_order_relaxed); }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits (deadline 120 s) until the threads made `want` opens in all; keeps
 * the heartbeat fresh meanwhile (this process is the agent). */
static void wait_opens(long want) {
  uint64_t deadline = now_ms() + 120000;
  while (opens_now() < want) {
    CHECK_LT(now_ms(), deadline);
    hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
    sched_yield();
  }
}

/* A forked child of this test exited with 0. */
static void wait_child_ok(pid_t pid) {
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
}

static void child_after_fork(hzshm_session_t *inherited) {
  alarm(30); /* a deadlock in the child (urcu-bp registry) fails the test */
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(H, "t0", 2, &s), 0); /* the inherited handle re-attaches */
  expect_hit(s, "k", "v0");
  expect_hit(inherited, "k", "v2");
  hzshm_session_close(s);
  hzshm_session_close(inherited); /* the child's copy of the registry */
  hzshm_t *h;
  CHECK_RC(hzshm_open(NAME, NULL, &h), 0);
  for (int i = 0; i < 100; i++) { /* each close retires a core: a grace period */
    CHECK_RC(hzshm_session_open(h, "t1", 2, &s), 0);
    expect_hit(s, "k", "v1");
    hzshm_session_close(s);
  }
  hzshm_close(h);
  _exit(0);
}

static void test_threads(void) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i), 0);
  wait_opens(20000);
  hzshm_session_t *held;
  CHECK_RC(hzshm_session_open(H, "t2", 2, &held), 0);
  pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) child_after_fork(held);
  wait_child_ok(pid);
  wait_opens(opens_now() + 20000); /* the parent's threads go on after the fork */
  atomic_store_explicit(&stop, 1, memory_order_relaxed); /* see churn */
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  expect_hit(held, "k", "v2");
  hzshm_session_close(held);
  printf("test_registry: %ld opens by %d threads\n", opens_now(), THREADS);
}

/* ---- fork while threads churn sessions and handles ---- */
static void world_open(void);
static void world_close(void);
/* hzshm_open/close on a thread of its own: shm/'s handle list lock and the
 * library's, taken by other threads than the one that forks. */
static void *handle_churn(void *arg) {
  const int *rounds = arg; /* NULL: until stop */
  for (int i = 0; rounds ? i < *rounds : !atomic_load_explicit(&stop, memory_order_relaxed); i++) {
    hzshm_t *h;
    CHECK_RC(hzshm_open(NAME, NULL, &h), 0);
    hzshm_session_t *s;
    CHECK_RC(hzshm_session_open(h, "t1", 2, &s), 0);
    expect_hit(s, "k", "v1");
    hzshm_session_close(s);
    hzshm_close(h);
  }
  return NULL;
}
static void fork_storm_child(hzshm_session_t *inherited) {
  alarm(30); /* a deadlock in the child fails the test */
  expect_hit(inherited, "k", "v2");
  int rounds = 3;
  handle_churn(&rounds); /* no thread here: TSan refuses threads after a multi-threaded fork */
  hzshm_session_close(inherited);
  _exit(0);
}
/* Many fork()s while other threads open and close handles and sessions: no
 * deadlock in the parent or a child. All of it runs in a child of a
 * single-threaded fork(), whose threads then take the locks the fork handler
 * held across that fork: under TSan each must have been released by the
 * thread that took it, not re-initialized while locked (reported as a
 * double lock by the next thread that takes it). */
static void fork_storm(void) {
  pthread_t t[THREADS + 1];
  for (int i = 0; i < THREADS; i++) CHECK_EQ(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)i), 0);
  CHECK_EQ(pthread_create(&t[THREADS], NULL, handle_churn, NULL), 0);
  hzshm_session_t *held;
  CHECK_RC(hzshm_session_open(H, "t2", 2, &held), 0);
  enum { FORKS = 50 };
  for (int i = 0; i < FORKS; i++) {
    hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
    pid_t pid = fork();
    CHECK_GE(pid, 0);
    if (pid == 0) fork_storm_child(held);
    wait_child_ok(pid);
  }
  atomic_store_explicit(&stop, 1, memory_order_relaxed); /* see churn */
  for (int i = 0; i <= THREADS; i++) pthread_join(t[i], NULL);
  expect_hit(held, "k", "v2");
  hzshm_session_close(held);
}
static void test_fork_storm(void) {
  pid_t pid = fork(); /* this process has no other thread yet */
  CHECK_GE(pid, 0);
  if (pid == 0) {
    world_open();
    fork_storm();
    world_close();
    _exit(0);
  }
  wait_child_ok(pid);
}

/* Every case in a world of its own, built in its child: a fresh segment with
 * this process as its writer, the sessions put, and a library handle. */
static void world_open(void) {
  snprintf(NAME, sizeof NAME, "test-reg-%d", (int)getpid());
  hzshm__shm_config_t cfg = {.memory_bytes = 8u << 20, .max_sessions = 4096, .reader_slots = 64,
                             .stale_after_ns = 60000u * 1000000ull};
  int reused;
  CHECK_RC(hzshm__shm_w_open(NAME, &cfg, 1, &W, &reused), 0);
  CHECK_RC(hzshm__shm_w_set_socket(W, "/nonexistent/hzshm-test.sock"), 0);
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  put("s0", "k", "v0");
  for (int i = 0; i < SIDS; i++) {
    char sid[8], val[8];
    snprintf(sid, sizeof sid, "t%d", i);
    snprintf(val, sizeof val, "v%d", i);
    put(sid, "k", val);
  }
  CHECK_RC(hzshm_open(NAME, NULL, &H), 0);
}
static void world_close(void) {
  hzshm_close(H);
  hzshm__shm_close(W);
  hzshm__shm_unlink(NAME);
}

TEST_CASE(sharing) {
  world_open();
  test_sharing();
  world_close();
}
TEST_CASE(many) {
  world_open();
  test_many();
  world_close();
}
TEST_CASE(threads) {
  world_open();
  test_threads();
  world_close();
}
TEST_CASE(fork_storm) { test_fork_storm(); /* its world is built in its child */ }
