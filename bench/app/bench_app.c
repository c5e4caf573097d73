/* bench_app.c - the read path as an application sees it (issue 15).
 *
 *   bench_app --members H:P --entries N [--lookups 2000000] [--reps 3]
 *             [--seq-dir DIR] [--json FILE] [--cluster dev] [--log FILE]
 *             [--keep-map] [--model] [--key-prefetch D]
 *
 * Uses only the public API (include/hzshm.h) the way an application does:
 * one hzshm-agent on the members (bu_agent_start, as bench_store), hzshm_open,
 * one hzshm_session_open, N entries (16-byte keys, 100-byte values) written
 * through hzshm_set (Hazelcast, then this host's cache), then for each access
 * pattern a plain loop of hzshm_get into a buffer, timed once around the whole
 * loop (no per-call timer): mean ns per lookup.
 *
 *   hot      1,000 keys spread over the N entries
 *   zipf     Zipf 0.99 over the N entries (bu_zipf_draws)
 *   uniform  uniform over the N entries
 *   floor    dependent-load floor: a pointer chase over random cache lines of
 *            a buffer as large as the segment memory the entries use (arena +
 *            index), a file in the segment directory (the segment's page size)
 *
 * --model also times the one-miss layout's model (layout_model.h) on the same
 * keys and sequences, alternating with the segment rep by rep, and a floor
 * over its own bytes; --key-prefetch D prefetches each key D lookups ahead
 * (the application's key in its cache; see g_key_prefetch).
 *
 * The index sequences are written once to DIR/{hot,zipf,uniform}.u32 (raw
 * little-endian uint32, --lookups each) so that the Java near-cache peer
 * (bench/java/NearBench.java) replays exactly the same lookups on the same
 * IMap contents; the map is left in the cluster with --keep-map for it.
 *
 * --members none: no agent or member; the process fills the segment itself
 * as its writer (bench/store/bigseg.h) and reads it through the same public
 * API (for valgrind profiles without a member: docs/SHM.md).
 *
 * Single thread, single process; not part of the test suite (bench_app_smoke
 * runs it at a tiny scale against a real member). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bigseg.h"
#include "butil.h"
#include "hzshm.h"
#include "layout_model.h"
#include "shm.h"

#ifndef HZSHM_AGENT_BIN
#define HZSHM_AGENT_BIN "hzshm-agent"
#endif

#define VSIZE 100
#define NPAT 3
static const char *pat_name[NPAT] = {"hot", "zipf", "uniform"};

static bu_agent_t *g_agent; /* stopped on every failure exit after its start */
static bigseg_t *g_bigseg;   /* --members none: its files removed on every failure exit */

static void fail_exit(void) {
  if (g_agent) bu_agent_stop(g_agent);
  if (g_bigseg) bigseg_destroy(g_bigseg);
  exit(1);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_app: %s: %s\n", what, hzshm_strerror(rc));
  fail_exit();
}

static uint32_t *make_seq(int pat, uint32_t n, size_t len) {
  if (pat == 1) return bu_zipf_draws(n, 0.99, len, 42);
  uint32_t *s = malloc(len * sizeof *s);
  BU_CHECK(s != NULL);
  uint32_t hot = n < 1000 ? n : 1000;
  uint64_t x = 88172645463325252ull; /* xorshift64 */
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s[i] = pat == 0 ? (uint32_t)((x % hot) * 997 % n) : (uint32_t)(x % n);
  }
  return s;
}

static void write_seq(const char *dir, int pat, const uint32_t *s, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.u32", dir, pat_name[pat]);
  FILE *f = fopen(path, "wb");
  BU_CHECK(f != NULL);
  BU_CHECK(fwrite(s, sizeof *s, len, f) == len); /* x86: little-endian */
  BU_CHECK(fclose(f) == 0);
}

/* ns per hzshm_get over seq[0..len): one plain loop, no per-call timer; the
 * clock is read only between 16 chunks. Returns the mean over all lookups;
 * *robust = the median of the chunk means (a preemption by another process on
 * this shared machine moves the mean, not the median); *cpu = this thread's
 * CPU time per lookup (what the lookups cost while they ran). */
static uint64_t thread_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

#define CHUNKS 16
/* --key-prefetch D: the loop prefetches the key D lookups ahead, so that the
 * key is in the cache when hzshm_get is called, as an application's key
 * usually is (it has just parsed or built it). Without it, a uniform loop over
 * 1M keys misses on its own 16 MB key array before each lookup, a dependent
 * miss the floor does not have. Off by default (the Java peer cannot do it). */
static size_t g_key_prefetch;
/* The loop, once per reader (hzshm_get, or the layout model's get with
 * --model): a macro rather than a call through a pointer, which would add an
 * indirect call to every lookup. GET(i, buf, &vlen) returns 0 on a hit. */
#define GET_LOOP(fname, ctx_t, GET)                                                                            \
  static double fname(ctx_t *ctx, const char *keys, const uint32_t *seq, size_t len, uint64_t *sink,           \
                      size_t *errors, double *robust, double *cpu) {                                           \
    uint8_t buf[VSIZE];                                                                                        \
    uint64_t sum = 0, tc[CHUNKS + 1];                                                                          \
    size_t bad = 0, per = len / CHUNKS;                                                                        \
    uint64_t cpu0 = thread_cpu_ns();                                                                           \
    tc[0] = bu_now_ns();                                                                                       \
    for (size_t c = 0; c < CHUNKS; c++) {                                                                      \
      for (size_t i = c * per; i < (c + 1) * per; i++) {                                                       \
        size_t vlen;                                                                                           \
        const char *key = keys + (size_t)seq[i] * BU_KEYLEN;                                                   \
        if (g_key_prefetch) __builtin_prefetch(keys + (size_t)seq[i + g_key_prefetch] * BU_KEYLEN);            \
        int rc = GET(ctx, key, buf, &vlen);                                                                    \
        bad += rc != 0;                                                                                        \
        sum += buf[0];                                                                                         \
      }                                                                                                        \
      tc[c + 1] = bu_now_ns();                                                                                 \
    }                                                                                                          \
    uint64_t cpu1 = thread_cpu_ns();                                                                           \
    if (cpu) *cpu = (double)(cpu1 - cpu0) / (double)(per * CHUNKS);                                            \
    uint64_t m[CHUNKS];                                                                                        \
    for (size_t c = 0; c < CHUNKS; c++) m[c] = tc[c + 1] - tc[c];                                              \
    bu_sort(m, CHUNKS);                                                                                        \
    if (robust) *robust = (double)(m[CHUNKS / 2 - 1] + m[CHUNKS / 2]) / 2.0 / (double)per;                     \
    *sink += sum;                                                                                              \
    *errors += bad;                                                                                            \
    return (double)(tc[CHUNKS] - tc[0]) / (double)(per * CHUNKS);                                              \
  }
#define HZSHM_GET(s, key, buf, vlp) hzshm_get(s, key, BU_KEYLEN, buf, VSIZE, vlp)
#define MODEL_GET(m, key, buf, vlp) layout_model_get(m, key, BU_KEYLEN, buf, VSIZE, vlp)
GET_LOOP(get_loop, hzshm_session_t, HZSHM_GET)
GET_LOOP(model_loop, layout_model_t, MODEL_GET)

/* One entry point per pattern, so that a profiler can tell them apart
 * (valgrind --tool=callgrind --toggle-collect=loop_zipf ..., see docs/SHM.md). */
typedef double loop_fn(hzshm_session_t *, const char *, const uint32_t *, size_t, uint64_t *, size_t *, double *,
                       double *);
typedef double mloop_fn(layout_model_t *, const char *, const uint32_t *, size_t, uint64_t *, size_t *, double *,
                        double *);
#define LOOP(name, ctx_t, fn)                                                                                 \
  __attribute__((noinline)) static double name(ctx_t *s, const char *k, const uint32_t *q, size_t len,         \
                                               uint64_t *sink, size_t *err, double *robust, double *cpu) {     \
    return fn(s, k, q, len, sink, err, robust, cpu);                                                           \
  }
LOOP(loop_hot, hzshm_session_t, get_loop)
LOOP(loop_zipf, hzshm_session_t, get_loop)
LOOP(loop_uniform, hzshm_session_t, get_loop)
LOOP(model_hot, layout_model_t, model_loop)
LOOP(model_zipf, layout_model_t, model_loop)
LOOP(model_uniform, layout_model_t, model_loop)
static loop_fn *const loop_of[NPAT] = {loop_hot, loop_zipf, loop_uniform};
static mloop_fn *const model_of[NPAT] = {model_hot, model_zipf, model_uniform};

/* Dependent-load floor: len steps of p = next[p] over `bytes` of random cache
 * lines (one cycle through all lines, Sattolo's shuffle), in a file of the
 * segment directory: the same page size as the segment (4 KiB on /dev/shm,
 * 2 MiB with HZSHM_SHM_DIR on a huge tmpfs). */
__attribute__((noinline)) static double chase(size_t bytes, size_t len, uint64_t *sink, double *cpu) {
  size_t lines = bytes / 64;
  if (lines < 2) lines = 2;
  uint64_t *m = bu_map_segdir("chase", lines * 64);
  BU_CHECK(m != NULL);
  uint32_t *perm = malloc(lines * sizeof *perm);
  BU_CHECK(perm != NULL);
  for (size_t i = 0; i < lines; i++) perm[i] = (uint32_t)i;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (size_t i = lines - 1; i > 0; i--) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t j = x % i;
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  for (size_t i = 0; i < lines; i++) m[(size_t)perm[i] * 8] = (uint64_t)perm[(i + 1) % lines] * 8;
  free(perm);
  uint64_t p = 0;
  for (size_t i = 0; i < len / 4; i++) p = m[p];
  uint64_t c0 = thread_cpu_ns(), t0 = bu_now_ns();
  for (size_t i = 0; i < len; i++) p = m[p];
  uint64_t t1 = bu_now_ns();
  *cpu = (double)(thread_cpu_ns() - c0) / (double)len;
  *sink += p;
  munmap(m, lines * 64);
  return (double)(t1 - t0) / (double)len;
}

/* The fill: FILL_THREADS threads (one per agent connection of the default
 * pool) each hzshm_set every FILL_THREADS-th entry; the timed part is single
 * threaded. */
#define FILL_THREADS 4
typedef struct {
  hzshm_session_t *s;
  const char *keys;
  uint32_t n, t;
  int rc;
} fill_t;
static void *fill(void *arg) {
  fill_t *f = arg;
  uint8_t val[VSIZE];
  for (uint32_t i = f->t; i < f->n && f->rc == 0; i += FILL_THREADS) {
    bu_value(val, i, VSIZE);
    f->rc = hzshm_set(f->s, f->keys + (size_t)i * BU_KEYLEN, BU_KEYLEN, val, VSIZE);
  }
  return NULL;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ,"model":{...}: the layout model's figures, in the shape of the segment's. */
static void model_json(FILE *out, const layout_model_t *lm, uint32_t n, int reps, double mean[NPAT + 1][15],
                       double robust[NPAT][15], double cpu[NPAT + 1][15]) {
  double bytes = (double)layout_model_bytes(lm);
  fprintf(out, ",\"model\":{\"bytes\":%.0f,\"index_bytes\":%" PRIu64 ",\"overhead_B_per_entry\":%.1f,", bytes,
          layout_model_index_bytes(lm), bytes / n - (BU_KEYLEN + VSIZE));
  fprintf(out, "\"index_load_factor\":%.3f,\"overflowed\":%u", layout_model_load_factor(lm),
          layout_model_overflowed(lm));
  const char *what[3] = {"mean_ns", "chunk_median_ns", "cpu_ns"};
  for (int k = 0; k < 3; k++) {
    fprintf(out, ",\"%s\":{", what[k]);
    for (int p = 0; p <= NPAT && !(k == 1 && p == NPAT); p++) {
      fprintf(out, "%s\"%s\":[", p ? "," : "", p < NPAT ? pat_name[p] : "floor");
      for (int r = 0; r < reps; r++) fprintf(out, "%s%.2f", r ? "," : "", k == 0 ? mean[p][r] : k == 1 ? robust[p][r] : cpu[p][r]);
      fprintf(out, "]");
    }
    fprintf(out, "}");
  }
  fprintf(out, ",\"median_ns\":{");
  for (int p = 0; p <= NPAT; p++) {
    double v[15];
    memcpy(v, mean[p], sizeof(double) * (size_t)reps);
    qsort(v, (size_t)reps, sizeof *v, cmp_d);
    fprintf(out, "%s\"%s\":%.2f", p ? "," : "", p < NPAT ? pat_name[p] : "floor", v[reps / 2]);
  }
  fprintf(out, "}}");
}

int main(int argc, char **argv) {
  const char *members = NULL, *cluster = "dev", *seq_dir = NULL, *json = NULL, *log = NULL;
  uint32_t n = 200000;
  size_t len = 2000000;
  int reps = 3, keep_map = 0, with_model = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--keep-map") || !strcmp(a, "--model")) {
      *(a[2] == 'k' ? &keep_map : &with_model) = 1;
      continue;
    }
    if (v == NULL) goto usage;
    if (!strcmp(a, "--members")) members = v;
    else if (!strcmp(a, "--cluster")) cluster = v;
    else if (!strcmp(a, "--entries")) n = (uint32_t)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--lookups")) len = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--reps")) reps = atoi(v);
    else if (!strcmp(a, "--seq-dir")) seq_dir = v;
    else if (!strcmp(a, "--json")) json = v;
    else if (!strcmp(a, "--log")) log = v;
    else if (!strcmp(a, "--key-prefetch")) g_key_prefetch = strtoul(v, NULL, 10);
    else goto usage;
    i++;
  }
  if (members == NULL || n < 1 || len < 1000 || reps < 1 || reps > 15 || g_key_prefetch > 64) goto usage;

  char *keys = malloc((size_t)n * BU_KEYLEN + 1);
  BU_CHECK(keys != NULL);
  for (uint32_t i = 0; i < n; i++) {
    char k[BU_KEYLEN + 1];
    bu_key(k, i);
    memcpy(keys + (size_t)i * BU_KEYLEN, k, BU_KEYLEN);
  }
  uint32_t *seq[NPAT];
  for (int p = 0; p < NPAT; p++) {
    seq[p] = make_seq(p, n, len);
    /* 64 more (key 0) for --key-prefetch's look-ahead past the end */
    seq[p] = realloc(seq[p], (len + 64) * sizeof *seq[p]);
    BU_CHECK(seq[p] != NULL);
    memset(seq[p] + len, 0, 64 * sizeof *seq[p]);
    if (seq_dir) write_seq(seq_dir, p, seq[p], len);
  }

  /* The segment must hold N entries: ~260 B each today, twice that is ample. */
  char mem[32];
  snprintf(mem, sizeof mem, "%" PRIu64 "m", ((uint64_t)n * 512 >> 20) + 64);
  /* Entries must outlive the fill and the check pass: the agent's default
   * local lifetime cap (--max-ttl-ms 60000) expired the first of 1M entries
   * before the fill ended, and the check pass's refills never caught up. An
   * hour keeps the expiry check on every hit (the cap, not "none"). */
  static const char *const ttl_opt[] = {"--max-ttl-ms", "3600000", NULL};
  bu_agent_t ag;
  char aname[64], map[64];
  snprintf(aname, sizeof aname, "app%d", (int)getpid());
  snprintf(map, sizeof map, "app-%d-%u", (int)getpid(), n);
  /* --members none: no agent or member; this process writes the segment
   * itself (bigseg.h, as bench_store's big_get), and reads it through the
   * same public API. For profiling under valgrind without a member. */
  int direct = !strcmp(members, "none");
  bigseg_t *bs = NULL;
  bigseg_info_t bi;
  double fill_s = 0;
  if (direct) {
    snprintf(ag.name, sizeof ag.name, "%s", aname);
    int brc = bigseg_build(aname, ((uint64_t)n * 512) + (64u << 20), map, n, VSIZE, &bs, &bi);
    if (brc != 0) die("bigseg_build", brc);
    g_bigseg = bs;
    fill_s = bi.fill_s;
  } else if (bu_agent_start_with(&ag, HZSHM_AGENT_BIN, aname, members, cluster, mem, log, ttl_opt) != 0) {
    return 1;
  } else {
    g_agent = &ag;
  }
  hzshm_t *h;
  hzshm_session_t *s;
  int rc = hzshm_open(ag.name, NULL, &h);
  if (rc != 0) die("hzshm_open", rc);
  rc = hzshm_session_open(h, map, strlen(map), &s);
  if (rc != 0) die("hzshm_session_open", rc);

  uint64_t t0 = bu_now_ns();
  fill_t f[FILL_THREADS];
  pthread_t th[FILL_THREADS];
  for (int t = 0; t < FILL_THREADS && !direct; t++) {
    f[t] = (fill_t){.s = s, .keys = keys, .n = n, .t = (uint32_t)t};
    BU_CHECK(pthread_create(&th[t], NULL, fill, &f[t]) == 0);
  }
  for (int t = 0; t < FILL_THREADS && !direct; t++) {
    BU_CHECK(pthread_join(th[t], NULL) == 0);
    if (f[t].rc != 0) die("hzshm_set", f[t].rc);
  }
  if (!direct) fill_s = (double)(bu_now_ns() - t0) / 1e9;
  uint8_t val[VSIZE];

  /* The lookups below must be hits with the right value. Check each entry
   * (this also warms the pages); an entry the agent dropped again after its
   * fill (e.g. the member's invalidation event for our own set arriving after
   * it) is a miss here that refills it: repeat until a whole pass hits. */
  hzshm_stats_t st0, st1;
  int passes = 0;
  do {
    BU_CHECK(hzshm_stats(h, &st0) == 0);
    for (uint32_t i = 0; i < n; i++) {
      size_t vlen = 0;
      rc = hzshm_get(s, keys + (size_t)i * BU_KEYLEN, BU_KEYLEN, val, sizeof val, &vlen);
      if (rc != 0) die("hzshm_get (check pass)", rc);
      BU_CHECK(bu_value_full_ok(val, vlen, i, VSIZE));
    }
    BU_CHECK(hzshm_stats(h, &st1) == 0);
  } while (st1.misses != st0.misses && ++passes < 20);
  BU_CHECK(hzshm_stats(h, &st0) == 0);

  /* --model: the one-miss layout's model (layout_model.h) over the same keys
   * and values, every entry checked once; its loops alternate with the
   * segment's below, rep by rep, so that both see the same minutes. */
  layout_model_t *lm = NULL;
  if (with_model) {
    rc = layout_model_build(n, keys, BU_KEYLEN, VSIZE, &lm);
    if (rc != 0) {
      fprintf(stderr, "bench_app: layout model: %s\n", strerror(-rc));
      fail_exit();
    }
    for (uint32_t i = 0; i < n; i++) {
      size_t vlen = 0;
      BU_CHECK(MODEL_GET(lm, keys + (size_t)i * BU_KEYLEN, val, &vlen) == 0 && bu_value_full_ok(val, vlen, i, VSIZE));
    }
  }

  uint64_t sink = 0;
  size_t errors = 0;
  double mean[NPAT][15], robust[NPAT][15], cpu[NPAT + 1][15], fl[15];
  double mmean[NPAT + 1][15], mrobust[NPAT][15], mcpu[NPAT + 1][15];
  for (int r = 0; r < reps; r++) {
    for (int p = 0; p < NPAT; p++) {
      loop_of[p](s, keys, seq[p], len / 4, &sink, &errors, NULL, NULL); /* warm-up: caches, TLB, branch predictors */
      mean[p][r] = loop_of[p](s, keys, seq[p], len, &sink, &errors, &robust[p][r], &cpu[p][r]);
      if (!lm) continue;
      model_of[p](lm, keys, seq[p], len / 4, &sink, &errors, NULL, NULL);
      mmean[p][r] = model_of[p](lm, keys, seq[p], len, &sink, &errors, &mrobust[p][r], &mcpu[p][r]);
    }
  }
  BU_CHECK(hzshm_stats(h, &st1) == 0);
  /* A late invalidation can still turn a lookup into a miss (reported in the
   * JSON); more than 1 in 10^4 means the figures are not of hits. */
  uint64_t timed_misses = st1.misses - st0.misses;
  if (errors != 0 || timed_misses > (uint64_t)reps * 3 * len / 10000) {
    fprintf(stderr, "bench_app: %zu lookups failed, %" PRIu64 " misses: not every lookup was a hit\n", errors,
            timed_misses);
    fail_exit();
  }

  /* Bytes per entry beyond key and value, index included: the arena in use
   * plus everything of the data file that is not arena (header, session table,
   * bucket index), over the entries. */
  char path[HZSHM_SHM_PATH_MAX];
  struct stat fst;
  BU_CHECK(hzshm__shm_path(ag.name, 0, path, sizeof path) == 0 && stat(path, &fst) == 0);
  uint64_t file_bytes = (uint64_t)fst.st_size;
  uint64_t used = st1.memory_used + (file_bytes - st1.memory_limit);
  double per_entry = (double)used / (double)st1.entries - (BU_KEYLEN + VSIZE);
  double arena_per_entry = (double)st1.memory_used / (double)st1.entries - (BU_KEYLEN + VSIZE);
  for (int r = 0; r < reps; r++) {
    fl[r] = chase(used, len, &sink, &cpu[NPAT][r]);
    if (lm) mmean[NPAT][r] = chase(layout_model_bytes(lm), len, &sink, &mcpu[NPAT][r]);
  }

  if (!keep_map && !direct) hzshm_destroy(s);
  hzshm_session_close(s);
  hzshm_close(h);
  if (direct) bigseg_destroy(bs);
  else bu_agent_stop(&ag);
  g_agent = NULL;
  g_bigseg = NULL;

  char model[256];
  bu_cpu_model(model, sizeof model);
  double la[3] = {0};
  FILE *lf = fopen("/proc/loadavg", "r");
  if (lf) {
    if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = -1;
    fclose(lf);
  }
  FILE *out = json ? fopen(json, "w") : stdout;
  BU_CHECK(out != NULL);
  fprintf(out, "{\"bench\":\"bench_app\",\"cpu\":\"%s\",\"entries\":%u,\"lookups\":%zu,\"reps\":%d,", model, n, len,
          reps);
  fprintf(out, "\"map\":\"%s\",\"value_bytes\":%d,\"key_bytes\":%d,\"load_after\":[%.2f,%.2f,%.2f],", map, VSIZE,
          BU_KEYLEN, la[0], la[1], la[2]);
  fprintf(out, "\"fill_s\":%.3f,\"segment_file_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
               ",\"overhead_B_per_entry\":%.1f,\"arena_overhead_B_per_entry\":%.1f,\"cached_entries\":%" PRIu64
               ",\"check_passes\":%d,\"timed_misses\":%" PRIu64 ",",
          fill_s, file_bytes, used, per_entry, arena_per_entry, st1.entries, passes + 1, timed_misses);
  fprintf(out, "\"mean_ns\":{");
  for (int p = 0; p <= NPAT; p++) {
    double *v = p < NPAT ? mean[p] : fl;
    fprintf(out, "%s\"%s\":[", p ? "," : "", p < NPAT ? pat_name[p] : "floor");
    for (int r = 0; r < reps; r++) fprintf(out, "%s%.2f", r ? "," : "", v[r]);
    fprintf(out, "]");
  }
  fprintf(out, "},\"chunk_median_ns\":{");
  for (int p = 0; p < NPAT; p++) {
    fprintf(out, "%s\"%s\":[", p ? "," : "", pat_name[p]);
    for (int r = 0; r < reps; r++) fprintf(out, "%s%.2f", r ? "," : "", robust[p][r]);
    fprintf(out, "]");
  }
  fprintf(out, "},\"cpu_ns\":{");
  for (int p = 0; p <= NPAT; p++) {
    fprintf(out, "%s\"%s\":[", p ? "," : "", p < NPAT ? pat_name[p] : "floor");
    for (int r = 0; r < reps; r++) fprintf(out, "%s%.2f", r ? "," : "", cpu[p][r]);
    fprintf(out, "]");
  }
  fprintf(out, "},\"median_ns\":{");
  for (int p = 0; p <= NPAT; p++) {
    double *v = p < NPAT ? mean[p] : fl;
    qsort(v, (size_t)reps, sizeof *v, cmp_d);
    fprintf(out, "%s\"%s\":%.2f", p ? "," : "", p < NPAT ? pat_name[p] : "floor", v[reps / 2]);
  }
  fprintf(out, "}");
  if (lm) model_json(out, lm, n, reps, mmean, mrobust, mcpu);
  layout_model_free(lm);
  fprintf(out, ",\"sink\":%" PRIu64 "}\n", sink & 1);
  if (json) fclose(out);
  return 0;
usage:
  fprintf(stderr,
          "usage: bench_app --members H:P --entries N [--lookups 2000000] [--reps 3] [--seq-dir DIR] [--json FILE]"
          " [--cluster dev] [--log FILE] [--keep-map] [--model] [--key-prefetch D]\n       --members none: no agent; fill the segment directly\n"
          "       --model: also time the one-miss layout's model (layout_model.h) on the same keys and sequences\n");
  return 2;
}
