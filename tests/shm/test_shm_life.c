/* test_shm_life.c - fail-closed states, writer exclusion, writer restart
 * (clean close and SIGKILL) with the contents kept, incompatible layouts. */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "check.h"
#include "shm_int.h" /* white-box: the corrupt-chain test */

static hzshm__shm_config_t cfg(uint64_t stale_ns) {
  hzshm__shm_config_t c = {.memory_bytes = 4u << 20, .max_sessions = 16, .reader_slots = 8, .partition_count = 271,
                           .stale_after_ns = stale_ns};
  return c;
}

/* A forked child's writer: opens `name` (serving), puts n entries "c<i>" into
 * session "s", says so on `ready_fd` and waits to be SIGKILLed. */
static _Noreturn void serving_writer_child(const char *name, const hzshm__shm_config_t *c, int n, int ready_fd) {
  t_child_dies_with_parent();
  hzshm__shm_t *cw;
  hzshm__sref_t cr;
  if (hzshm__shm_w_open(name, c, 0, &cw, NULL) != 0) _exit(2);
  if (hzshm__shm_w_session(cw, "s", 1, &cr) != 0) _exit(3);
  for (int i = 0; i < n; i++) {
    char k[16];
    snprintf(k, sizeof k, "c%d", i);
    hzshm__shm_w_put(cw, &cr, k, strlen(k), k, strlen(k), 1, hzshm__shm_w_stamp(cw), 0, 0);
  }
  if (write(ready_fd, "r", 1) != 1) _exit(4);
  for (;;) pause();
}

TEST_CASE(fail_closed) {
  const char *name = t_name("fc");
  hzshm__shm_config_t c = cfg(60000000ull); /* 60 ms */
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  char buf[16];
  size_t n;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k", 1, "v", 1, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, buf, sizeof buf, &n), 0);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_DISCONNECTED);
  CHECK_RC(hzshm__shm_r_check(r), HZSHM_EDISCONNECTED);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, buf, sizeof buf, &n), HZSHM_EDISCONNECTED);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_STOPPED);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, NULL, 0, &n), HZSHM_ESTOPPED);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm__shm_r_check(r), 0);
  /* no heartbeat for longer than stale_after_ns: readers fail closed */
  WAIT_UNTIL(hzshm__shm_r_check(r) == HZSHM_ESTALE, 5000);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, buf, sizeof buf, &n), HZSHM_ESTALE);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, buf, sizeof buf, &n), 0);
  /* the writer closes: readers see STOPPED at once */
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, buf, sizeof buf, &n), HZSHM_ESTOPPED);
  hzshm__shm_close(r);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

TEST_CASE(exclusive_and_restart) {
  const char *name = t_name("rs");
  hzshm__shm_config_t c = cfg(0);
  hzshm__shm_t *w, *w2, *r;
  hzshm__sref_t ref, ref2;
  int reused = -1;
  char buf[16];
  size_t n;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 0);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w2, &reused), HZSHM_EEXIST);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  for (int i = 0; i < 300; i++) {
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    CHECK_RC(hzshm__shm_w_put(w, &ref, k, strlen(k), k, strlen(k), 1, hzshm__shm_w_stamp(w), 0, 0), 0);
  }
  CHECK_RC(hzshm__shm_w_del(w, &ref, "k7", 2), 0); /* leaves a retired chunk behind */
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 1);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.writer_generation, 2);
  CHECK_EQ(st.entries, 299);
  CHECK_EQ(st.sessions, 1);
  CHECK_EQ(st.state, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k5", 2, buf, sizeof buf, &n), 0); /* the old reader keeps reading */
  CHECK(n == 2 && memcmp(buf, "k5", 2) == 0);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k7", 2, buf, sizeof buf, &n), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref2), 0); /* same session, same generation */
  CHECK(ref2.gen == ref.gen && ref2.idx == ref.idx);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k7", 2, "new", 3, 1, hzshm__shm_w_stamp(w), 0, 0), 0);
  CHECK_RC(hzshm__shm_w_session(w, "t", 1, &ref2), 0);
  CHECK_GT(ref2.gen, ref.gen);
  for (int i = 0; i < 64; i++) hzshm__shm_w_maintain(w);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.retired_pending, 0);
  CHECK_EQ(st.entries, 300);
  hzshm__shm_close(w);

  /* SIGKILLed writer: the lock dies with it, the next writer reuses the data */
  int pfd[2];
  CHECK_EQ(pipe(pfd), 0);
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) serving_writer_child(name, &c, 1000, pfd[1]);
  char ch;
  CHECK_EQ(read(pfd[0], &ch, 1), 1);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), HZSHM_EEXIST); /* child alive */
  kill(pid, SIGKILL);
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFSIGNALED(status));
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 1);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.writer_generation, 4);
  CHECK_EQ(st.entries, 1300);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "c999", 4, buf, sizeof buf, &n), 0);
  CHECK_EQ(n, 4);
  CHECK_MEMEQ(buf, "c999", 4);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k7", 2, buf, sizeof buf, &n), 0);
  CHECK_EQ(n, 3);
  CHECK_MEMEQ(buf, "new", 3);
  hzshm__shm_close(w);

  /* another geometry: refused unless replace_incompatible */
  hzshm__shm_config_t c2 = cfg(0);
  c2.memory_bytes = 6u << 20;
  CHECK_RC(hzshm__shm_w_open(name, &c2, 0, &w, &reused), HZSHM_EVERSION);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0); /* the old one is untouched */
  CHECK_EQ(reused, 1);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_w_open(name, &c2, 1, &w, &reused), 0);
  CHECK_EQ(reused, 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.entries, 0);
  CHECK_EQ(st.writer_generation, 1);
  /* the reader attached to the old inode is told the truth: its writer stopped */
  CHECK_RC(hzshm__shm_r_get(r, &ref, "c999", 4, buf, sizeof buf, &n), HZSHM_ESTOPPED);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

TEST_CASE(corrupt_chain_is_bounded) {
  /* A chain scribbled into a cycle or a wild offset (done here through the
   * writer's own mapping, white-box) must not hang or crash a reader. */
  const char *name = t_name("cyc");
  hzshm__shm_config_t c = cfg(0);
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  size_t n;
  const void *v;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "a", 1, "1", 1, 0, 1, 0, 0), 0);
  CHECK_RC(hzshm__shm_r_view(w, &ref, "a", 1, &v, &n), 0);
  hzshm__shm_r_view_end(w);
  hzshm__shm_entry_t *e = (hzshm__shm_entry_t *)((char *)v - 1 - sizeof(hzshm__shm_entry_t));
  uint64_t off = (uint64_t)((uint8_t *)e - w->base);
  char probe[32];
  uint64_t ph = 0;
  for (int i = 0;; i++) { /* a key of the same bucket, so the walk passes through "a" */
    snprintf(probe, sizeof probe, "x%d", i);
    ph = hzshm__shm_key_hash(w, probe, strlen(probe), ref.gen);
    if ((ph & w->bucket_mask) == (e->hash & w->bucket_mask)) break;
  }
  uint64_t saved = atomic_load_explicit(&e->next, memory_order_relaxed);
  atomic_store_explicit(&e->next, HZSHM__B_MAKE(off, ph), memory_order_release); /* self cycle */
  CHECK_RC(hzshm__shm_r_get(r, &ref, probe, strlen(probe), NULL, 0, &n), HZSHM_EMISS);
  atomic_store_explicit(&e->next, 0x0000ffffffffffc0ull, memory_order_release); /* wild offset */
  CHECK_RC(hzshm__shm_r_get(r, &ref, probe, strlen(probe), NULL, 0, &n), HZSHM_EMISS);
  atomic_store_explicit(&e->next, HZSHM__B_MAKE(off + 8, ph), memory_order_release); /* misaligned */
  CHECK_RC(hzshm__shm_r_get(r, &ref, probe, strlen(probe), NULL, 0, &n), HZSHM_EMISS);
  atomic_store_explicit(&e->next, saved, memory_order_release);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "a", 1, NULL, 0, &n), 0);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* A writer SIGKILLed while SERVING, then a new writer opening the segment
 * with open_state DISCONNECTED (the agent does, to mark every partition stale
 * first): from the moment the new writer's pid shows in the header, no reader
 * may see SERVING or hit (before, writer_pid was published before the state,
 * so stats named the new agent "serving" and readers hit the dead agent's
 * entries while the new one was still rebuilding: the Python binding's
 * test_agent_unavailable_then_restart saw a hit and then an agent that did not
 * listen yet). A thread watches each restart; 20 restarts of a 32 MiB segment. */
typedef struct {
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  _Atomic int done;
  int seen_new, serving, hits;
} restart_watch_t;

static void *restart_watcher(void *arg) {
  restart_watch_t *x = arg;
  char buf[16];
  size_t n;
  while (!atomic_load_explicit(&x->done, memory_order_acquire)) { /* pairs with the store after w_open */
    hzshm__shm_stats_t st;
    if (hzshm__shm_stats(x->r, &st) != 0 || st.writer_pid != (int32_t)getpid()) continue;
    x->seen_new++;
    if (st.state == HZSHM_SHM_SERVING) x->serving++;
    if (hzshm__shm_r_get(x->r, &x->ref, "c1", 2, buf, sizeof buf, &n) == 0) x->hits++;
  }
  return NULL;
}

TEST_CASE(restart_not_serving_before_open) {
  const char *name = t_name("rn");
  hzshm__shm_config_t c = cfg(60ull * 1000000000u); /* the dead writer's SERVING stays within the bound */
  c.memory_bytes = 32u << 20;
  int serving = 0, hits = 0, seen = 0;
  for (int round = 0; round < 20; round++) {
    int pfd[2];
    CHECK_EQ(pipe(pfd), 0);
    pid_t pid = t_fork();
    CHECK(pid >= 0);
    if (pid == 0) serving_writer_child(name, &c, 2000, pfd[1]);
    char ch;
    CHECK_EQ(read(pfd[0], &ch, 1), 1);
    close(pfd[0]);
    close(pfd[1]);
    restart_watch_t x = {0};
    CHECK_RC(hzshm__shm_r_attach(name, &x.r), 0);
    CHECK_RC(hzshm__shm_r_session(x.r, "s", 1, &x.ref), 0);
    char buf[16];
    size_t n;
    CHECK_RC(hzshm__shm_r_get(x.r, &x.ref, "c1", 2, buf, sizeof buf, &n), 0); /* the live writer's entry */
    kill(pid, SIGKILL);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, restart_watcher, &x), 0);
    hzshm__shm_config_t c2 = c;
    c2.open_state = HZSHM_SHM_DISCONNECTED;
    hzshm__shm_t *w;
    int reused = 0;
    CHECK_RC(hzshm__shm_w_open(name, &c2, 0, &w, &reused), 0);
    CHECK_EQ(reused, 1);
    atomic_store_explicit(&x.done, 1, memory_order_release); /* pairs with the watcher's acquire */
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_RC(hzshm__shm_r_get(x.r, &x.ref, "c1", 2, buf, sizeof buf, &n), HZSHM_EDISCONNECTED);
    serving += x.serving;
    hits += x.hits;
    seen += x.seen_new;
    hzshm__shm_close(x.r);
    hzshm__shm_close(w);
  }
  printf("restart_not_serving_before_open: %d looks at the new writer's pid during w_open: %d SERVING, %d hits\n", seen,
         serving, hits);
  CHECK_EQ(serving, 0);
  CHECK_EQ(hits, 0);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

TEST_CASE(fork) {
  const char *name = t_name("fork");
  hzshm__shm_config_t c = cfg(0);
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  size_t n;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k", 1, "v", 1, 0, 1, 0, 0), 0);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, NULL, 0, &n), 0);
  /* inherited handles are closed in the child; a fresh attach works */
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    hzshm__shm_t *r2;
    hzshm__sref_t ref2;
    int ok = hzshm__shm_r_get(r, &ref, "k", 1, NULL, 0, &n) == HZSHM_ECLOSED &&
             hzshm__shm_w_put(w, &ref, "k", 1, "x", 1, 0, 1, 0, 0) == HZSHM_EINVAL &&
             hzshm__shm_r_attach(name, &r2) == 0 && hzshm__shm_r_session(r2, "s", 1, &ref2) == 0 &&
             hzshm__shm_r_get(r2, &ref2, "k", 1, NULL, 0, &n) == 0;
    hzshm__shm_close(r);
    hzshm__shm_close(w);
    _exit(ok ? 0 : 1);
  }
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, NULL, 0, &n), 0); /* the parent's handles are intact */
  hzshm__shm_close(w);
  /* a writer that forked a long-lived child and died: the child does not keep it "alive" */
  int pa[2], pb[2], life[2]; /* A's report, B's report, and a pipe whose EOF tells them the test is gone */
  CHECK(pipe(pa) == 0 && pipe(pb) == 0 && pipe(life) == 0);
  pid_t a = t_fork();
  CHECK_GE(a, 0);
  if (a == 0) {
    hzshm__shm_t *aw;
    close(life[1]);
    if (hzshm__shm_w_open(name, &c, 0, &aw, NULL) != 0) _exit(2);
    pid_t b = t_fork();
    if (b == 0) { /* B: outlives A; shm/'s fork steps ran in it (t_fork) */
      if (write(pb[1], "b", 1) != 1) _exit(3);
      while (read(life[0], &b, 1) > 0) {
      }
      _exit(0);
    }
    if (write(pa[1], &b, sizeof b) != (ssize_t)sizeof b) _exit(3);
    while (read(life[0], &b, 1) > 0) {
    }
    _exit(0);
  }
  close(life[0]);
  char ch;
  pid_t b;
  CHECK_EQ(read(pb[0], &ch, 1), 1);
  CHECK_EQ(ch, 'b');
  CHECK_EQ(read(pa[0], &b, sizeof b), (ssize_t)sizeof b);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), HZSHM_EEXIST); /* A alive */
  kill(a, SIGKILL);
  CHECK_EQ(waitpid(a, &status, 0), a);
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0); /* B still alive */
  CHECK_EQ(reused, 1);
  CHECK_EQ(kill(b, 0), 0);
  kill(b, SIGKILL);
  close(life[1]);
  hzshm__shm_close(w);
  hzshm__shm_close(r);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* Defect 7 of issue 10: a thread that holds a reader slot forks; in the child
 * (whose only thread is that thread's copy) the inherited handle is closed
 * and then the thread exits. The handle's pthread key must not outlive the
 * handle: its destructor would run on the freed handle (ASan: use after free). */
typedef struct {
  const char *name;
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  int status; /* the child's wait status, seen by the parent's copy of the thread */
} fork_thread_t;

static void *fork_thread(void *p) {
  fork_thread_t *ft = p;
  size_t n;
  if (hzshm__shm_r_get(ft->r, &ft->ref, "k", 1, NULL, 0, &n) != 0) return (void *)1; /* claims a slot */
  pid_t pid = t_fork();
  if (pid < 0) return (void *)2;
  if (pid == 0) {
    /* the child: close the inherited handle, attach and close a fresh one,
     * then end this (the only) thread: its key destructors run now */
    hzshm__shm_t *r2 = NULL;
    hzshm__shm_close(ft->r);
    if (hzshm__shm_r_attach(ft->name, &r2) != 0) _exit(3);
    hzshm__shm_close(r2);
    return NULL; /* pthread_exit of the last thread: the process exits 0 after the destructors */
  }
  if (waitpid(pid, &ft->status, 0) != pid) return (void *)4;
  return NULL;
}

TEST_CASE(fork_thread_exit) {
  fork_thread_t ft = {.name = t_name("fkt")};
  hzshm__shm_config_t c = cfg(0);
  hzshm__shm_t *w;
  size_t n;
  CHECK_RC(hzshm__shm_w_open(ft.name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(ft.name, &ft.r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ft.ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ft.ref, "k", 1, "v", 1, 0, 1, 0, 0), 0);
  pthread_t th;
  void *res = (void *)9;
  CHECK_EQ(pthread_create(&th, NULL, fork_thread, &ft), 0);
  CHECK_EQ(pthread_join(th, &res), 0);
  CHECK(res == NULL);
  if (!WIFEXITED(ft.status) || WEXITSTATUS(ft.status) != 0)
    fprintf(stderr, "fork child: %s %d\n", WIFEXITED(ft.status) ? "exit" : "signal",
            WIFEXITED(ft.status) ? WEXITSTATUS(ft.status) : WTERMSIG(ft.status));
  CHECK(WIFEXITED(ft.status));
  CHECK_EQ(WEXITSTATUS(ft.status), 0);
  CHECK_RC(hzshm__shm_r_get(ft.r, &ft.ref, "k", 1, NULL, 0, &n), 0); /* the parent's handle is intact */
  hzshm__shm_close(ft.r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(ft.name), 0);
}
