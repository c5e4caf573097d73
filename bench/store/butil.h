/* butil.h - helpers shared by the store benchmarks (bench_store and
 * bench_propagation): clocks, percentiles, the key/value scheme, a Zipf
 * generator, and running hzshm-agent processes.
 *
 * Keys and values follow bench/java/HzBench.java so that every client reads
 * and writes the same bytes: key i is the 16-byte String "k%015d", and the
 * value of key i with size n has byte j = (uint8_t)(i * 31 + j * 7 + n).
 */
#ifndef HZSHM_BENCH_BUTIL_H
#define HZSHM_BENCH_BUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BU_KEYLEN 16

#define BU_CHECK(c)                                                                 \
  do {                                                                              \
    if (!(c)) {                                                                     \
      fprintf(stderr, "bench: %s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* ---- clocks ---- */
uint64_t bu_now_ns(void); /* CLOCK_MONOTONIC */
static inline uint64_t bu_tsc(void) {
  uint32_t lo, hi;
  __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}
/* TSC ticks per ns, measured against CLOCK_MONOTONIC over ~50 ms (once). */
double bu_tsc_per_ns(void);
/* Median cost in ticks of an empty "t0 = tsc; t1 = tsc" pair: subtracted from
 * each rdtsc-timed op so that p50 shows the op, not the timer. */
uint64_t bu_tsc_overhead(void);

/* ---- distributions ---- */
/* Sorts v[0..n) and returns its q-quantile (0 <= q <= 1). */
void bu_sort(uint64_t *v, size_t n);
uint64_t bu_quantile_sorted(const uint64_t *v, size_t n, double q);
double bu_mean(const uint64_t *v, size_t n);

/* Appends one JSON line {"scenario":..,"unit":..,"n":..,"q":[..],"v":[..]}
 * with 101 quantiles (0, 1, ..., 99, 99.9 %, max) of the sorted v to the file
 * named by $HZSHM_BENCH_DIST (nothing if unset). For report.py's plots. */
void bu_dist_dump(const char *scenario, const char *unit, const uint64_t *sorted, size_t n, double scale);

/* ---- keys and values ---- */
void bu_key(char out[BU_KEYLEN + 1], uint64_t i);
void bu_value(uint8_t *out, uint64_t i, size_t n);
/* 1 if v (length len) is the value of key i with size n. Checks length and
 * three bytes (first, middle, last): cheap enough for the hot loop. */
static inline int bu_value_ok(const uint8_t *v, size_t len, uint64_t i, size_t n) {
  if (len != n) return 0;
  if (n == 0) return 1;
  size_t m = n / 2;
  return v[0] == (uint8_t)(i * 31 + n) && v[m] == (uint8_t)(i * 31 + m * 7 + n) &&
         v[n - 1] == (uint8_t)(i * 31 + (n - 1) * 7 + n);
}
/* Full check (every byte). */
int bu_value_full_ok(const uint8_t *v, size_t len, uint64_t i, size_t n);

/* ---- Zipf ---- */
/* n draws of ranks in [0, nkeys) with exponent s (rejection-free inverse CDF
 * over a precomputed table); ranks are scattered over the key space by a
 * fixed permutation so hot keys are not neighbours in memory. */
uint32_t *bu_zipf_draws(uint32_t nkeys, double s, size_t n, uint64_t seed);

/* `bytes` of a file in the segment directory ($HZSHM_SHM_DIR, default
 * /dev/shm), mapped MAP_SHARED read-write and unlinked at once: memory backed
 * like a segment's (4 KiB pages on /dev/shm, 2 MiB on a huge tmpfs). NULL on
 * failure (errno set). Unmap with munmap(p, bytes). */
void *bu_map_segdir(const char *tag, size_t bytes);

/* ---- agents ---- */
typedef struct {
  pid_t pid;
  char name[64];
  char sock[108];
} bu_agent_t;
/* Starts `bin -n NAME -m MEMBERS -c CLUSTER --socket /tmp/hzshm-bench-NAME.sock
 * --memory MEM --unlink-on-exit` with stderr to LOG (or inherited if NULL) and
 * waits (60 s) until the cache opens and the agent reports the cluster
 * connected. Returns 0 or -1 (with a message). */
int bu_agent_start(bu_agent_t *a, const char *bin, const char *name, const char *members, const char *cluster,
                   const char *memory, const char *log);
/* The same with more agent options after those (a NULL-terminated list). */
int bu_agent_start_with(bu_agent_t *a, const char *bin, const char *name, const char *members, const char *cluster,
                        const char *memory, const char *log, const char *const *extra);
/* SIGTERM, wait up to 30 s, SIGKILL after that. */
void bu_agent_stop(bu_agent_t *a);

/* Polls fn(ud) every ~200 us until non-zero or timeout_ms; returns 1 if it
 * became true. */
int bu_wait(int (*fn)(void *ud), void *ud, uint32_t timeout_ms);

/* Machine description for the JSON context ("model name", nproc, MemTotal). */
void bu_cpu_model(char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
