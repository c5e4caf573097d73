/* test_shm_kill.c - reader processes SIGKILLed mid-read, 1000 times (several
 * at a time) while the writer replaces entries: dead slots are reaped, the
 * arena returns to its baseline, and the writer never waits on a reader.
 *   usage: test_shm_kill [-- kills] */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "check.h"

#define NKEYS 2000
#define BATCH 4

typedef struct {
  _Atomic int ready;
} side_t;

static void put(hzshm__shm_t *w, const hzshm__sref_t *ref, uint32_t k, uint64_t ver) {
  char key[16];
  uint8_t buf[128];
  snprintf(key, sizeof key, "k%u", k);
  size_t n = tv_make(buf, 0, k, ver, 40);
  int rc = hzshm__shm_w_put(w, ref, key, strlen(key), buf, n, k % 271, hzshm__shm_w_stamp(w), 0, 0);
  CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
}

static void reader(const char *name, side_t *side, uint64_t seed) {
  t_child_dies_with_parent();
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  if (hzshm__shm_r_attach(name, &r) != 0 || hzshm__shm_r_session(r, "s", 1, &ref) != 0) _exit(9);
  atomic_fetch_add_explicit(&side->ready, 1, memory_order_relaxed);
  uint8_t buf[256];
  for (uint64_t x = seed | 1;;) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    uint32_t k = (uint32_t)(x % NKEYS);
    char key[16];
    size_t n;
    uint64_t ver;
    snprintf(key, sizeof key, "k%u", k);
    const void *v;
    if ((x >> 32) & 1) { /* a long-ish section: a view held while checking */
      if (hzshm__shm_r_view(r, &ref, key, strlen(key), &v, &n) == 0) {
        if (tv_check(v, n, 0, k, &ver) != 0) _exit(10);
        hzshm__shm_r_view_end(r);
      }
    } else if (hzshm__shm_r_get(r, &ref, key, strlen(key), buf, sizeof buf, &n) == 0) {
      if (tv_check(buf, n, 0, k, &ver) != 0) _exit(10);
    }
  }
}

TEST_CASE(kill_readers) {
  int kills = atoi(t_param(0, "1000"));
  const char *name = t_name("kill");
  side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(side != MAP_FAILED);
  hzshm__shm_config_t c = {.memory_bytes = 4u << 20, .max_sessions = 4, .reader_slots = 64, .partition_count = 271};
  hzshm__shm_t *w;
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  uint64_t ver = 1;
  for (uint32_t k = 0; k < NKEYS; k++) put(w, &ref, k, ver);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.entries, NKEYS);
  CHECK_EQ(st.retired_pending, 0);
  uint64_t baseline = st.memory_used;
  uint64_t rnd = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid();
  uint64_t max_put_ns = 0;
  int done = 0;
  while (done < kills) {
    pid_t pids[BATCH];
    atomic_store_explicit(&side->ready, 0, memory_order_relaxed);
    for (int i = 0; i < BATCH; i++) {
      pids[i] = t_fork();
      CHECK_GE(pids[i], 0);
      if (pids[i] == 0) reader(name, side, rnd + (uint64_t)i * 7919u);
    }
    WAIT_UNTIL(atomic_load_explicit(&side->ready, memory_order_relaxed) == BATCH, 10000);
    rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
    /* the writer keeps replacing while the readers run; then they die at a
     * random point of their loop */
    int nput = (int)(rnd % 300);
    for (int i = 0; i < nput; i++) {
      uint64_t t0 = t_now_ns();
      put(w, &ref, (uint32_t)((rnd >> 16) + (uint64_t)i * 131u) % NKEYS, ++ver);
      uint64_t dt = t_now_ns() - t0;
      if (dt > max_put_ns) max_put_ns = dt;
    }
    for (int i = 0; i < BATCH; i++) kill(pids[i], SIGKILL);
    for (int i = 0; i < BATCH; i++) {
      int status;
      CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
      if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
        fprintf(stderr, "reader exited by itself (status %d): a bad value was read\n", status);
        exit(1);
      }
    }
    done += BATCH;
    CHECK_RC(hzshm__shm_w_maintain(w), 0);
  }
  /* every dead reader's slot is reaped and every retired chunk freed */
  CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "kills %d, reaped %u, retired_pending %llu, memory %llu (baseline %llu), max put %.1f us\n", done,
          st.reaped_readers, (unsigned long long)st.retired_pending, (unsigned long long)st.memory_used,
          (unsigned long long)baseline, max_put_ns / 1000.0);
  CHECK_EQ(st.readers, 0);
  CHECK_GT(st.reaped_readers, 0);
  CHECK_LE(st.reaped_readers, (uint32_t)done);
  CHECK_EQ(st.retired_pending, 0);
  CHECK_EQ(st.memory_used, baseline);
  CHECK_EQ(st.entries, NKEYS);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}
