/* shm-demo - the segment on its own: creates a segment, forks one writer
 * process and N reader processes, and prints what each measured.
 *
 *   hzshm-shm-demo [readers=2] [seconds=3] [entries=100000] [updates_per_s=20000]
 *
 * The writer fills `entries` keys (16-byte keys, 100-byte values), then keeps
 * replacing random keys at the given rate while heartbeating. Each reader
 * looks up random keys (every value is validated), and reports hits/s and the
 * hit latency distribution (batches of 64 timed with CLOCK_MONOTONIC). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hzshm.h"
#include "shm.h"

typedef struct {
  _Atomic int filled, stop;
  _Atomic uint64_t updates;
  struct {
    uint64_t hits, misses, bad;
    double p50, p99, secs;
  } r[64];
} demo_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static void key_of(uint32_t id, char k[17]) { snprintf(k, 17, "key-%012u", id); }
static void val_of(uint32_t id, uint32_t ver, uint8_t v[100]) {
  memset(v, (int)(id & 0xff), 100);
  memcpy(v, &id, 4);
  memcpy(v + 4, &ver, 4);
}
static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int writer(const char *name, demo_t *d, uint32_t entries, double secs, uint32_t rate) {
  hzshm__shm_config_t c = {.memory_bytes = 64ull << 20, .max_sessions = 64, .reader_slots = 128};
  hzshm__shm_t *w;
  hzshm__sref_t ref;
  int rc = hzshm__shm_w_open(name, &c, 1, &w, NULL);
  if (rc) {
    fprintf(stderr, "writer: w_open: %s\n", hzshm_strerror(rc));
    return 1;
  }
  hzshm__shm_w_session(w, "demo", 4, &ref);
  char k[17];
  uint8_t v[100];
  for (uint32_t i = 0; i < entries; i++) {
    key_of(i, k);
    val_of(i, 0, v);
    hzshm__shm_w_put(w, &ref, k, 16, v, 100, i % 271, hzshm__shm_w_stamp(w), 0, 0);
  }
  atomic_store(&d->filled, 1);
  uint64_t t0 = now_ns(), done = 0, x = 88172645463325252ull;
  while (!atomic_load(&d->stop)) {
    uint64_t want = (uint64_t)((double)(now_ns() - t0) * rate / 1e9);
    for (; done < want; done++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      uint32_t id = (uint32_t)(x % entries);
      key_of(id, k);
      val_of(id, (uint32_t)done, v);
      hzshm__shm_w_put(w, &ref, k, 16, v, 100, id % 271, hzshm__shm_w_stamp(w), 0, 0);
      if (done % 1000 == 0) hzshm__shm_w_maintain(w);
    }
    hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
    struct timespec ts = {0, 500000};
    nanosleep(&ts, NULL); /* pacing */
  }
  atomic_store(&d->updates, done);
  hzshm__shm_stats_t st;
  hzshm__shm_stats(w, &st);
  printf("writer: %llu updates, entries %llu, memory %llu/%llu, evictions %llu, hits %llu misses %llu\n",
         (unsigned long long)done, (unsigned long long)st.entries, (unsigned long long)st.memory_used,
         (unsigned long long)st.memory_limit, (unsigned long long)st.evictions, (unsigned long long)st.hits,
         (unsigned long long)st.misses);
  fflush(stdout); /* the child leaves with _exit() */
  hzshm__shm_close(w);
  hzshm__shm_unlink(name);
  return 0;
}

static int reader(const char *name, demo_t *d, int id, uint32_t entries, double secs) {
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  int rc = hzshm__shm_r_attach(name, &r);
  if (rc == 0) rc = hzshm__shm_r_session(r, "demo", 4, &ref);
  if (rc) {
    fprintf(stderr, "reader %d: %s\n", id, hzshm_strerror(rc));
    return 1;
  }
  size_t nb = 0, cap = 1 << 20;
  double *lat = malloc(cap * sizeof *lat);
  uint64_t hits = 0, misses = 0, bad = 0, x = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
  uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
  char keys[64][17];
  uint32_t ids[64];
  uint8_t v[128];
  while (now_ns() < end) {
    for (int j = 0; j < 64; j++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      ids[j] = (uint32_t)(x % entries);
      key_of(ids[j], keys[j]);
    }
    uint64_t b0 = now_ns();
    for (int j = 0; j < 64; j++) {
      size_t n;
      rc = hzshm__shm_r_get(r, &ref, keys[j], 16, v, sizeof v, &n);
      if (rc == 0) {
        uint32_t got;
        memcpy(&got, v, 4);
        hits++;
        bad += got != ids[j] || n != 100;
      } else {
        misses++;
      }
    }
    if (nb < cap) lat[nb++] = (double)(now_ns() - b0) / 64.0;
  }
  double el = (double)(now_ns() - t0) / 1e9;
  qsort(lat, nb, sizeof *lat, cmp_d);
  d->r[id].hits = hits;
  d->r[id].misses = misses;
  d->r[id].bad = bad;
  d->r[id].p50 = nb ? lat[nb / 2] : 0;
  d->r[id].p99 = nb ? lat[nb * 99 / 100] : 0;
  d->r[id].secs = el;
  free(lat);
  hzshm__shm_close(r);
  return bad ? 2 : 0;
}

int main(int argc, char **argv) {
  int nr = argc > 1 ? atoi(argv[1]) : 2;
  double secs = argc > 2 ? atof(argv[2]) : 3;
  uint32_t entries = argc > 3 ? (uint32_t)atoi(argv[3]) : 100000;
  uint32_t rate = argc > 4 ? (uint32_t)atoi(argv[4]) : 20000;
  if (nr < 1 || nr > 64 || entries < 1) {
    fprintf(stderr, "usage: %s [readers 1..64] [seconds] [entries] [updates_per_s]\n", argv[0]);
    return 2;
  }
  char name[64];
  snprintf(name, sizeof name, "shm-demo-%d", (int)getpid());
  demo_t *d = mmap(NULL, sizeof *d, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (d == MAP_FAILED) return 1;
  pid_t wp = fork();
  if (wp == 0) _exit(writer(name, d, entries, secs, rate));
  uint64_t dl = now_ns() + 60000000000ull;
  while (!atomic_load(&d->filled)) { /* wait for the fill, with a deadline */
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
    if (now_ns() > dl || waitpid(wp, NULL, WNOHANG) == wp) {
      fprintf(stderr, "writer did not start\n");
      return 1;
    }
  }
  pid_t rp[64];
  for (int i = 0; i < nr; i++)
    if ((rp[i] = fork()) == 0) _exit(reader(name, d, i, entries, secs));
  int fail = 0;
  for (int i = 0; i < nr; i++) {
    int st;
    waitpid(rp[i], &st, 0);
    fail |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
  }
  atomic_store(&d->stop, 1);
  waitpid(wp, NULL, 0);
  double total = 0;
  for (int i = 0; i < nr; i++) {
    double rate_i = (double)d->r[i].hits / d->r[i].secs;
    total += rate_i;
    printf("reader %d: %.2f M hits/s, %llu misses, hit latency p50 %.1f ns p99 %.1f ns, bad values %llu\n", i,
           rate_i / 1e6, (unsigned long long)d->r[i].misses, d->r[i].p50, d->r[i].p99, (unsigned long long)d->r[i].bad);
  }
  printf("total: %.2f M hits/s with %d reader processes and %u updates/s\n", total / 1e6, nr, rate);
  return fail;
}
