/* test_shm_validate.c - validated hits: a hit is one complete value the
 * writer published, even when memory is reused under readers.
 *
 * Built twice (tests/shm/CMakeLists.txt): against the shipped segment library
 * (reclamation works: no validation may ever fail) and against
 * hzshm_shm_broken, a test-only copy whose reclamation ignores the readers
 * (HZSHM__TEST_BROKEN_RECLAIM: retired chunks are freed, poisoned and reused
 * at once, slabs re-carved under readers). Either way: a writer thread, two
 * reader threads on a second mapping and reader processes run the stress.h
 * workload with self-checking values; every hit must be an intact value of
 * its key. With the broken library, validation must have failed at least once
 * (the test really reused memory under readers).
 *   usage: test_shm_validate [-- seconds [reader processes]] */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "shm_int.h"
#include "stress.h"

TEST_CASE(validated_hits) {
  int secs = atoi(t_param(0, "3"));
  int np = atoi(t_param(1, "1"));
  if (np < 0 || np > ST_MAXR - 2) np = 1;
  const char *name = t_name("valid");
  st_side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(side != MAP_FAILED);
  /* small: evictions, and slabs moving between size classes */
  hzshm__shm_config_t c = {.memory_bytes = 1280u << 10, .max_sessions = 16, .reader_slots = 16, .partition_count = 271};
  hzshm__shm_t *w, *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  st_writer_t *W = malloc(sizeof *W);
  st_writer_init(W, w, side, 0x7f4a7c159e3779b9ull);
  pid_t pids[ST_MAXR];
  for (int i = 0; i < np; i++) { /* before any thread exists */
    pids[i] = t_fork();
    CHECK_GE(pids[i], 0);
    if (pids[i] == 0) {
      t_child_dies_with_parent();
      hzshm__shm_t *cr;
      if (hzshm__shm_r_attach(name, &cr) != 0) _exit(9);
      int rc = st_reader_run(cr, side, 2 + i, 0x3131ull * (uint64_t)(i + 1) + (uint64_t)getpid());
      hzshm__shm_close(cr);
      _exit(rc);
    }
  }
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  st_rarg_t ra[2];
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    ra[i] = (st_rarg_t){r, side, i, -1, 0x51ull * (uint64_t)(i + 1)};
    CHECK_EQ(pthread_create(&th[i], NULL, st_reader_thread, &ra[i]), 0);
  }
  WAIT_UNTIL(atomic_load_explicit(&side->ready, memory_order_relaxed) == 2 + np, 10000);
  uint64_t end = t_now_ns() + (uint64_t)secs * 1000000000ull;
  while (t_now_ns() < end)
    for (int i = 0; i < 64; i++) st_writer_step(W);
  atomic_store_explicit(&side->stop, 1, memory_order_relaxed);
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_RC(ra[i].rc, 0); /* no torn, freed, foreign, old or dead-session value */
  }
  for (int i = 0; i < np; i++) {
    int status = 0;
    CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
  }
  uint64_t hits = 0;
  for (int i = 0; i < 2 + np; i++) {
    CHECK_GT(atomic_load(&side->hits[i]), 0);
    hits += atomic_load(&side->hits[i]);
  }
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "writer ops %llu, hits %llu, evictions %llu, failed validations %llu\n",
          (unsigned long long)atomic_load(&side->writer_ops), (unsigned long long)hits,
          (unsigned long long)st.evictions, (unsigned long long)st.torn_reads);
#ifdef HZSHM__TEST_BROKEN_RECLAIM
  CHECK_GT(st.torn_reads, 0); /* memory was reused under readers, and caught */
#else
  CHECK_EQ(st.torn_reads, 0); /* with working reclamation a validation never fails */
#endif
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  free(W);
}
