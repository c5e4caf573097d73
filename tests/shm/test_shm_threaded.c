/* test_shm_threaded.c - the same segment mapped twice in one process (a
 * writer handle and a reader handle, at different addresses), a writer thread
 * and reader threads: ThreadSanitizer sees every access, and the offsets are
 * proven position independent. Also: a thread's reader slot is released when
 * the thread exits.   usage: test_shm_threaded [-- seconds] */
#include <pthread.h>

#include "shm_int.h" /* white-box: mapping addresses, slot owners */
#include "stress.h"

static void *one_lookup(void *p) {
  st_rarg_t *a = p;
  hzshm__sref_t ref;
  a->rc = hzshm__shm_r_session(a->r, "sess-0", 6, &ref);
  return NULL;
}

TEST_CASE(two_mappings) {
  int secs = atoi(t_param(0, "3"));
  const char *name = t_name("thr");
  st_side_t *side = calloc(1, sizeof *side);
  hzshm__shm_config_t c = {.memory_bytes = 1280u << 10, .max_sessions = 16, .reader_slots = 16, .partition_count = 271};
  hzshm__shm_t *w, *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_NE(w->base, r->base);
  CHECK_NE(w->rbase, r->rbase); /* two mappings */
  hzshm__shm_w_set_poison(w, 1);
  st_writer_t *W = malloc(sizeof *W);
  st_writer_init(W, w, side, 0xabcdefull);
  /* a short-lived thread releases its slot at exit */
  st_rarg_t one = {r, side, 0, -1, 0};
  pthread_t t1;
  CHECK_EQ(pthread_create(&t1, NULL, one_lookup, &one), 0);
  CHECK_EQ(pthread_join(t1, NULL), 0);
  CHECK_RC(one.rc, 0);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.readers, 0);
  enum { NR = 2 };
  st_rarg_t ra[NR];
  pthread_t th[NR];
  for (int i = 0; i < NR; i++) {
    ra[i] = (st_rarg_t){r, side, i, -1, 77u * (uint64_t)(i + 1)};
    CHECK_EQ(pthread_create(&th[i], NULL, st_reader_thread, &ra[i]), 0);
  }
  WAIT_UNTIL(atomic_load_explicit(&side->ready, memory_order_relaxed) == NR, 10000);
  uint64_t end = t_now_ns() + (uint64_t)secs * 1000000000ull;
  while (t_now_ns() < end)
    for (int i = 0; i < 64; i++) st_writer_step(W);
  atomic_store_explicit(&side->stop, 1, memory_order_relaxed);
  for (int i = 0; i < NR; i++) {
    CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_RC(ra[i].rc, 0);
    CHECK_GT(atomic_load(&side->hits[i]), 0);
  }
  for (int i = 0; i < 64; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "writer ops %llu, hits %llu + %llu, evictions %llu\n", (unsigned long long)atomic_load(&side->writer_ops),
          (unsigned long long)atomic_load(&side->hits[0]), (unsigned long long)atomic_load(&side->hits[1]),
          (unsigned long long)st.evictions);
  CHECK_EQ(st.readers, 0); /* both reader threads exited: their slots were released */
  CHECK_EQ(st.retired_pending, 0);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  free(W);
  free(side);
}
