/* test_shm_overread.c - a failed validation never makes a reader read outside
 * the entry it validated.
 *
 * r_get used to copy the length it re-read from the entry after the lookup
 * had bounds-checked an earlier read of it: if the chunk was reused in
 * between (only possible when reclamation fails, which validated hits must
 * survive), the copy followed the new entry's length from the old key's
 * offset, past the chunk - at the end of the arena, past the mapping.
 *
 * Built against hzshm_shm_broken (reclamation ignores readers). The key K
 * (200-byte key) sits in the arena's last chunk (class 512); the writer
 * alternates it with K2 (1-byte key, the longest value of the class) in that
 * one chunk. A reader that validated K and then sees K2's length copies 199
 * bytes past the arena: a PROT_NONE page placed right after the reader's
 * mapping turns that into SIGSEGV.
 *
 * The interleaving: the main thread reads K in a loop; a high-resolution
 * interval timer interrupts it at arbitrary points of r_get, and the signal
 * handler is the writer (the only one: the main thread never writes while
 * the timer runs), swapping K and K2 in the chunk before the reader resumes.
 * The writer calls do not allocate once the retire list exists (it does
 * after the fill below), and the code they interrupt is the reader's.
 *   usage: test_shm_overread [-- seconds] */
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>

#include "shm_int.h"
#include "check.h"

static char key_k[200], key_k2[1] = {'z'};
static char vk[250], vk2[512 - sizeof(hzshm__shm_entry_t) - 1];
static hzshm__shm_t *w;
static hzshm__sref_t ref;
static volatile sig_atomic_t failed;
static uint64_t swaps; /* the handler's (main thread) */

static void on_tick(int sig) {
  (void)sig;
  int rc;
  if (swaps++ & 1) { /* K2 is in the chunk: back to K */
    rc = hzshm__shm_w_del(w, &ref, key_k2, sizeof key_k2);
    if (!rc) rc = hzshm__shm_w_put(w, &ref, key_k, sizeof key_k, vk, sizeof vk, 0, 4, 0, 0);
  } else { /* K2 into K's chunk (the broken reclaim frees it at once) */
    rc = hzshm__shm_w_del(w, &ref, key_k, sizeof key_k);
    if (!rc) rc = hzshm__shm_w_put(w, &ref, key_k2, sizeof key_k2, vk2, sizeof vk2, 0, 3, 0, 0);
  }
  if (rc) failed = 1;
}

TEST_CASE(overread) {
  int secs = atoi(t_param(0, "3"));
  memset(key_k, 'K', sizeof key_k);
  memset(vk, 'k', sizeof vk);
  memset(vk2, 'x', sizeof vk2);
  const char *name = t_name("overread");
  /* >= 2 MiB: the reader's mapping ends where its 2 MiB-aligned reservation was unmapped */
  hzshm__shm_config_t c = {.memory_bytes = 4u << 20, .max_sessions = 4, .reader_slots = 8, .partition_count = 1};
  hzshm__shm_t *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  char fill[250];
  memset(fill, 'f', sizeof fill);
  int cls = hzshm__shm_class_of(w, sizeof(hzshm__shm_entry_t) + sizeof key_k + sizeof vk);
  CHECK_GE(cls, 0);
  CHECK_EQ(w->class_size[cls], 512);
  CHECK_EQ(hzshm__shm_class_of(w, sizeof(hzshm__shm_entry_t) + 1 + sizeof vk2), cls);
  /* Fill class 512 until the last slab is handed out and its free list is
   * empty: chunks are handed out in address order, so the next chunk freed
   * and taken is... made the arena's last one below. */
  for (uint64_t i = 0; !(w->w->slab_next == w->slab_count && !w->w->cls[cls].free); i++) {
    char fk[200];
    memset(fk, 'F', sizeof fk);
    memcpy(fk, &i, sizeof i);
    CHECK_RC(hzshm__shm_w_put(w, &ref, fk, sizeof fk, fill, sizeof fill, 0, 1, 0, 0), 0);
  }
  /* The filler in the arena's last chunk was put last: replace it by K. */
  uint64_t last = w->arena_end - 512;
  CHECK_EQ(w->w->units[hzshm__shm_unit(w, last)].state, HZSHM__U_LIVE);
  char lk[200];
  memcpy(lk, (char *)(hzshm__shm_entry(w, last) + 1), sizeof lk);
  CHECK_RC(hzshm__shm_w_del(w, &ref, lk, sizeof lk), 0);
  hzshm__shm_reclaim(w, 1);
  CHECK_RC(hzshm__shm_w_put(w, &ref, key_k, sizeof key_k, vk, sizeof vk, 0, 2, 0, 0), 0);
  CHECK_EQ(w->w->units[hzshm__shm_unit(w, last)].state, HZSHM__U_LIVE);
  CHECK_EQ(w->w->cls[cls].free, 0);
  CHECK_EQ(hzshm__shm_entry(w, last)->klen, sizeof key_k);

  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_EQ(r->arena_end, r->size); /* the arena ends the file ... */
  long pg = sysconf(_SC_PAGESIZE);
  void *guard = mmap(r->base + r->size, (size_t)pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  CHECK_EQ(guard, r->base + r->size); /* ... and nothing readable follows the mapping */

  struct sigaction sa = {.sa_handler = on_tick, .sa_flags = SA_RESTART};
  sigemptyset(&sa.sa_mask);
  CHECK_EQ(sigaction(SIGALRM, &sa, NULL), 0);
  struct itimerval it = {{0, 37}, {0, 37}}; /* as often as the timer goes: every few microseconds */
  CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);
  static char buf[1 << 20]; /* room for any length: the copy must be bounded by the entry alone */
  uint64_t hits = 0, end = t_now_ns() + (uint64_t)secs * 1000000000ull;
  while (t_now_ns() < end && !failed) {
    size_t n = 0;
    int rc = hzshm__shm_r_get(r, &ref, key_k, sizeof key_k, buf, sizeof buf, &n);
    if (rc == 0) {
      CHECK_EQ(n, sizeof vk);
      for (size_t i = 0; i < n; i++) CHECK_EQ(buf[i], 'k');
      hits++;
    }
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  CHECK_EQ(setitimer(ITIMER_REAL, &off, NULL), 0);
  CHECK(!failed);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "swaps %llu, hits %llu, failed validations %llu\n", (unsigned long long)swaps,
          (unsigned long long)hits, (unsigned long long)st.torn_reads);
  CHECK_GT(hits, 0);
  CHECK_GT(st.torn_reads, 0); /* the chunk really was reused under the reader */
  munmap(guard, (size_t)pg);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}
