/* test_shm_slots.c - reader slot exhaustion (issue 10 defect 5): a thread
 * without a slot gets HZSHM_EBUSY, counted in the stats, and does not rescan
 * every slot on every call; a slot released by another thread of the handle
 * is claimed at the next call. */
#include <pthread.h>

#include "check.h"

typedef struct {
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  int hold[2]; /* the holder keeps its slot until this pipe has a byte */
  int ready[2];
} slots_t;

static void *holder(void *p) {
  slots_t *t = p;
  size_t n;
  char ch = hzshm__shm_r_get(t->r, &t->ref, "k", 1, NULL, 0, &n) == 0 ? 'y' : 'n'; /* claims the only slot */
  if (write(t->ready[1], &ch, 1) != 1) return (void *)1;
  if (read(t->hold[0], &ch, 1) != 1) return (void *)1;
  return NULL; /* thread exit: the key destructor releases the slot */
}

TEST_CASE(exhausted) {
  const char *name = t_name("slots");
  hzshm__shm_config_t c = {.memory_bytes = 4u << 20, .max_sessions = 16, .reader_slots = 1, .partition_count = 271};
  hzshm__shm_t *w;
  slots_t t;
  size_t n;
  char ch;
  CHECK_EQ(pipe(t.hold), 0);
  CHECK_EQ(pipe(t.ready), 0);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &t.r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &t.ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &t.ref, "k", 1, "v", 1, 0, 1, 0, 0), 0);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, holder, &t), 0);
  CHECK_EQ(read(t.ready[0], &ch, 1), 1);
  CHECK_EQ(ch, 'y');
  /* This thread has no slot and none is free. */
  const int calls = 2000;
  uint64_t t0 = t_now_ns();
  for (int i = 0; i < calls; i++) CHECK_RC(hzshm__shm_r_get(t.r, &t.ref, "k", 1, NULL, 0, &n), HZSHM_EBUSY);
  uint64_t elapsed = t_now_ns() - t0;
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(t.r, &st), 0);
  fprintf(stderr, "%d EBUSY calls in %.3f ms: %llu slot scans failed\n", calls, elapsed / 1e6,
          (unsigned long long)st.slot_claim_failures);
  CHECK_EQ(st.slot_busy, (uint64_t)calls);
  /* The failure is remembered: at most one scan per retry interval (20 ms)
   * that passed during the loop, plus the first (coarse clock: +1). */
  CHECK_GE(st.slot_claim_failures, 1);
  CHECK_LE(st.slot_claim_failures, 2 + elapsed / 20000000ull);
  /* The holder exits: its slot is free and this thread gets it at once,
   * without waiting for the retry interval. */
  CHECK_EQ(write(t.hold[1], "x", 1), 1);
  void *res = (void *)1;
  CHECK_EQ(pthread_join(th, &res), 0);
  CHECK(res == NULL);
  CHECK_RC(hzshm__shm_r_get(t.r, &t.ref, "k", 1, NULL, 0, &n), 0);
  CHECK_RC(hzshm__shm_stats(t.r, &st), 0);
  CHECK_EQ(st.slot_busy, (uint64_t)calls);
  hzshm__shm_close(t.r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  close(t.hold[0]);
  close(t.hold[1]);
  close(t.ready[0]);
  close(t.ready[1]);
}
