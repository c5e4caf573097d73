/* test_shm_mp.c - multi-process stress: one writer process, N reader
 * processes on one segment: inserts, replaces, deletes, session clears and
 * destroys, evictions (a small arena), freed memory poisoned. Readers assert
 * the invariants of stress.h. With restarts > 0 the writer runs in child
 * processes that are SIGKILLed at random points while the readers keep
 * reading; each next writer reopens (reuses) the segment of the dead one.
 *   usage: test_shm_mp [-- seconds [readers [restarts [memory KiB, default 1280]]]] */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "stress.h"

TEST_CASE(stress) {
  int secs = atoi(t_param(0, "8"));
  int nr = atoi(t_param(1, "3"));
  int restarts = atoi(t_param(2, "0"));
  uint64_t mem_kib = strtoull(t_param(3, "1280"), NULL, 10); /* 143360 (140 MiB): 2 MiB slabs */
  if (nr < 1 || nr > ST_MAXR) nr = 3;
  const char *name = t_name("mp");
  st_side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(side != MAP_FAILED);
  hzshm__shm_config_t c = {.memory_bytes = mem_kib << 10, .max_sessions = 16, .reader_slots = 16, .partition_count = 271};
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  st_writer_t *W = malloc(sizeof *W);
  st_writer_init(W, w, side, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
  pid_t pids[ST_MAXR];
  for (int i = 0; i < nr; i++) {
    pids[i] = t_fork();
    CHECK_GE(pids[i], 0);
    if (pids[i] == 0) {
      t_child_dies_with_parent();
      hzshm__shm_t *r;
      if (hzshm__shm_r_attach(name, &r) != 0) _exit(9);
      int rc = st_reader_run(r, side, i, 0x12345ull * (uint64_t)(i + 1) + (uint64_t)getpid());
      hzshm__shm_close(r);
      _exit(rc);
    }
  }
  WAIT_UNTIL(atomic_load_explicit(&side->ready, memory_order_relaxed) == nr, 10000);
  int failed = 0;
  for (int phase = 0; phase <= restarts && !failed; phase++) {
    uint64_t end = t_now_ns() + (uint64_t)secs * 1000000000ull / (uint64_t)(restarts + 1);
    pid_t wpid = -1;
    if (phase > 0) { /* the writer of this phase is a child, killed at a random moment */
      uint64_t kill_at = end - (uint64_t)(W->rnd % 500) * 1000000ull;
      wpid = t_fork();
      CHECK_GE(wpid, 0);
      if (wpid == 0) {
        t_child_dies_with_parent();
        hzshm__shm_t *cw;
        int reused = 0;
        int orc = hzshm__shm_w_open(name, &c, 0, &cw, &reused);
        if (orc != 0) {
          fprintf(stderr, "writer w_open: %s\n", hzshm_err_name(orc));
          _exit(7);
        }
        if (reused) atomic_fetch_add(&side->writers_reused, 1);
        hzshm__shm_w_set_poison(cw, 1);
        st_writer_t *CW = malloc(sizeof *CW);
        st_writer_init(CW, cw, side, W->rnd ^ (uint64_t)getpid());
        for (;;) st_writer_step(CW);
      }
      while (t_now_ns() < kill_at && !failed) {
        int status;
        pid_t p = waitpid(-1, &status, WNOHANG);
        if (p > 0) {
          fprintf(stderr, "%s pid %d exited early, status %d\n", p == wpid ? "writer" : "reader", (int)p, status);
          failed = 1;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* the test's duration, not a synchronization */
      }
      kill(wpid, SIGKILL);
      waitpid(wpid, NULL, 0);
      continue;
    }
    while (t_now_ns() < end && !failed) {
      for (int i = 0; i < 256; i++) st_writer_step(W);
      int status;
      pid_t p = waitpid(-1, &status, WNOHANG); /* a reader that found a violation exits early */
      if (p > 0) {
        fprintf(stderr, "reader pid %d exited early, status %d\n", (int)p, status);
        failed = 1;
      }
    }
    if (restarts > 0) { /* hand the segment over: the parent's writer goes away */
      hzshm__shm_close(w);
      w = NULL;
    }
  }
  if (restarts > 0 && !failed) { /* the last writer died; take over for the final checks */
    int reused = 0;
    CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
    CHECK_EQ(reused, 1);
    CHECK_EQ(atomic_load(&side->writers_reused), restarts);
  }
  atomic_store_explicit(&side->stop, 1, memory_order_relaxed);
  for (int i = 0; i < nr; i++) {
    int status;
    if (waitpid(pids[i], &status, 0) != pids[i]) continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "reader %d failed: status %d\n", i, status);
      failed = 1;
    }
  }
  CHECK(!failed);
  hzshm__shm_stats_t st;
  for (int i = 0; i < 64; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  uint64_t hits = 0, lookups = 0;
  for (int i = 0; i < nr; i++) {
    CHECK_GT(atomic_load(&side->hits[i]), 0);
    hits += atomic_load(&side->hits[i]);
    lookups += atomic_load(&side->lookups[i]);
  }
  fprintf(stderr, "writer ops %llu (puts not cached %llu), reader lookups %llu hits %llu, evictions %llu, entries %llu\n",
          (unsigned long long)atomic_load(&side->writer_ops), (unsigned long long)atomic_load(&side->put_fail),
          (unsigned long long)lookups, (unsigned long long)hits, (unsigned long long)st.evictions,
          (unsigned long long)st.entries);
  CHECK(st.evictions > 0 || restarts > 0); /* eviction counts restart with the writer's stats */
  CHECK_EQ(st.retired_pending, 0);
  CHECK_EQ(st.readers, 0);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  free(W);
}
