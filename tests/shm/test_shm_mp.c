/* test_shm_mp.c - multi-process stress: one writer process, N reader
 * processes on one segment: inserts, replaces, deletes, session clears and
 * destroys, evictions (a small arena), freed memory poisoned. Readers assert
 * the invariants of stress.h.   usage: test_shm_mp [seconds] [readers] */
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "stress.h"

int main(int argc, char **argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 8;
  int nr = argc > 2 ? atoi(argv[2]) : 3;
  if (nr < 1 || nr > ST_MAXR) nr = 3;
  const char *name = t_name("mp");
  st_side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(side != MAP_FAILED);
  hzshm__shm_config_t c = {.memory_bytes = 1280u << 10, .max_sessions = 16, .reader_slots = 16, .partition_count = 271};
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  st_writer_t *W = malloc(sizeof *W);
  st_writer_init(W, w, side, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
  pid_t pids[ST_MAXR];
  for (int i = 0; i < nr; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (pids[i] == 0) {
      hzshm__shm_t *r;
      if (hzshm__shm_r_attach(name, &r) != 0) _exit(9);
      int rc = st_reader_run(r, side, i, 0x12345ull * (uint64_t)(i + 1) + (uint64_t)getpid());
      hzshm__shm_close(r);
      _exit(rc);
    }
  }
  WAIT_UNTIL(atomic_load_explicit(&side->ready, memory_order_relaxed) == nr, 10000);
  uint64_t end = t_now_ns() + (uint64_t)secs * 1000000000ull;
  int failed = 0;
  while (t_now_ns() < end && !failed) {
    for (int i = 0; i < 256; i++) st_writer_step(W);
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG); /* a reader that found a violation exits early */
    if (p > 0) {
      fprintf(stderr, "reader pid %d exited early, status %d\n", (int)p, status);
      failed = 1;
    }
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
    CHECK(atomic_load(&side->hits[i]) > 0);
    hits += atomic_load(&side->hits[i]);
    lookups += atomic_load(&side->lookups[i]);
  }
  fprintf(stderr, "writer ops %llu (puts not cached %llu), reader lookups %llu hits %llu, evictions %llu, entries %llu\n",
          (unsigned long long)atomic_load(&side->writer_ops), (unsigned long long)atomic_load(&side->put_fail),
          (unsigned long long)lookups, (unsigned long long)hits, (unsigned long long)st.evictions,
          (unsigned long long)st.entries);
  CHECK(st.evictions > 0);
  CHECK(st.retired_pending == 0);
  CHECK(st.readers == 0);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  free(W);
  fprintf(stderr, "OK\n");
  return 0;
}
