// bench_shm.cc - benchmarks of the shared-memory segment, with baselines.
//
// Table: 1M entries, 16-byte keys, 100-byte values, one session. Access:
// hot (1k keys), Zipf 0.99 over all keys, uniform; get miss. Baselines in the
// same run: the same lookups under a process-shared pthread rwlock (the
// APCu/nginx style), and the physical floor (a dependent pointer chase over a
// buffer as large as the table). Multi-process: hit throughput of 1 and 2
// reader processes while the writer applies 50k updates/s, lock-free vs
// rwlock. Read sides: seq_cst fence vs compiler barrier + writer membarrier.
// Every lookup's value is validated (key id + checksum byte).
// A summary table against the targets is printed at the end.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "hzshm.h"
#include "shm.h"

namespace {

constexpr uint32_t kKeys = 1u << 20;
constexpr size_t kVal = 100;
// One segment per page size: [0] in /dev/shm (4 KiB pages), [1] in the huge
// page tmpfs named by HZSHM_BENCH_HUGE_DIR (2 MiB pages), if given and usable.
struct Seg {
  std::string name, dir, label;
  hzshm__shm_t *w = nullptr, *r = nullptr, *rfence = nullptr;
  hzshm__sref_t ref;
};
Seg g_seg[2];
int g_nseg = 1;
// The benchmark in progress uses these (set by the wrappers registered in main).
hzshm__shm_t *g_w = nullptr, *g_r = nullptr, *g_rfence = nullptr;
hzshm__sref_t g_ref;
std::string g_name, g_dir, g_label = "4K/";
void use(int i) {
  g_w = g_seg[i].w;
  g_r = g_seg[i].r;
  g_rfence = g_seg[i].rfence;
  g_ref = g_seg[i].ref;
  g_name = g_seg[i].name;
  g_dir = g_seg[i].dir;
  g_label = g_seg[i].label + "/";
}
std::vector<uint32_t> g_hot, g_zipf, g_unif;
// 16 keys: every line of every lookup stays in L1, so get_l1 is the compute
// cost of a hit (the rest of a hot hit is waiting for memory).
std::vector<uint32_t> g_l1;
std::map<std::string, double> g_res;  // summary numbers
pthread_rwlock_t *g_lock = nullptr;    // process-shared, in an anonymous shared mapping

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
// 16-byte key "key-" + 12 hex digits, built in registers: the benchmark loop
// must not add a cache miss of its own (a precomputed 16 MB key array did).
inline void key_of(uint32_t id, char *k) {
  static const char hex[] = "0123456789abcdef";
  memcpy(k, "key-", 4);
  for (int i = 0; i < 12; i++) k[4 + i] = hex[(id >> (4 * (11 - i))) & 15];
}
// Value: id, version, filler, and a last byte derived from (id, version): a
// torn value (bytes of two versions) or a foreign one fails the check.
void val_of(uint32_t id, uint32_t ver, uint8_t *v) {
  memcpy(v, &id, 4);
  memcpy(v + 4, &ver, 4);
  memset(v + 8, (int)(id & 0xff), kVal - 9);
  v[kVal - 1] = (uint8_t)(id * 31u + ver * 7u);
}
inline bool val_ok(uint32_t id, const uint8_t *v, size_t n) {
  uint32_t got, ver;
  memcpy(&got, v, 4);
  memcpy(&ver, v + 4, 4);
  return n == kVal && got == id && v[kVal - 1] == (uint8_t)(id * 31u + ver * 7u);
}

// Create and fill one segment in `dir` (HZSHM_SHM_DIR is read at open/attach).
bool seg_make(Seg &g, const char *dir, const char *label) {
  g.name = "bench-" + std::to_string(getpid()) + "-" + label;
  g.dir = dir;
  g.label = label;
  setenv("HZSHM_SHM_DIR", dir, 1);
  hzshm__shm_config_t c = {};
  c.memory_bytes = 320ull << 20;
  c.max_sessions = 1024;
  c.reader_slots = 64;
  int rc = hzshm__shm_w_open(g.name.c_str(), &c, 1, &g.w, nullptr);
  if (rc) {
    fprintf(stderr, "w_open in %s: %s\n", dir, hzshm_strerror(rc));
    return false;
  }
  hzshm__shm_w_session(g.w, "bench-session", 13, &g.ref);
  char k[16];
  uint8_t v[kVal];
  for (uint32_t i = 0; i < kKeys; i++) {
    key_of(i, k);
    val_of(i, 0, v);
    rc = hzshm__shm_w_put(g.w, &g.ref, k, 16, v, kVal, i % 271, hzshm__shm_w_stamp(g.w), 0, 0);
    if (rc) {
      fprintf(stderr, "fill %u: %s\n", i, hzshm_strerror(rc));
      exit(1);
    }
  }
  unsetenv("HZSHM_SHM_READ_FENCE");
  hzshm__shm_r_attach(g.name.c_str(), &g.r);
  setenv("HZSHM_SHM_READ_FENCE", "1", 1);
  hzshm__shm_r_attach(g.name.c_str(), &g.rfence);
  unsetenv("HZSHM_SHM_READ_FENCE");
  unsetenv("HZSHM_SHM_DIR");
  return g.r && g.rfence;
}

// kB of a field of /proc/self/smaps_rollup (e.g. "ShmemPmdMapped") or of
// /proc/meminfo, -1 if absent.
long file_kb(const char *file, const char *field) {
  FILE *f = fopen(file, "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') v = atol(line + n + 1);
  fclose(f);
  return v;
}
long smaps_kb(const char *field) { return file_kb("/proc/self/smaps_rollup", field); }
long meminfo_kb(const char *field) { return file_kb("/proc/meminfo", field); }

void setup() {
  if (g_seg[0].w) return;
  if (!seg_make(g_seg[0], "/dev/shm", "4K")) exit(1);
  long pmd0 = smaps_kb("ShmemPmdMapped"), hp0 = meminfo_kb("ShmemHugePages");
  const char *hd = getenv("HZSHM_BENCH_HUGE_DIR");
  if (hd && *hd) {
    if (seg_make(g_seg[1], hd, "2M")) {
      g_nseg = 2;
      printf("2M segment in %s (320 MiB): ShmemPmdMapped %ld kB -> %ld kB, ShmemHugePages %ld kB -> %ld kB\n", hd,
             pmd0, smaps_kb("ShmemPmdMapped"), hp0, meminfo_kb("ShmemHugePages"));
    } else {
      printf("2M rows skipped: cannot create a segment in %s\n", hd);
    }
  } else {
    printf("2M rows skipped: HZSHM_BENCH_HUGE_DIR not set (tools/run-bench-shm mounts a huge tmpfs)\n");
  }
  use(0);
  std::mt19937_64 rng(42);
  std::vector<uint32_t> perm(kKeys);
  for (uint32_t i = 0; i < kKeys; i++) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int i = 0; i < 1000; i++) g_hot.push_back(perm[i]);
  for (int i = 0; i < 16; i++) g_l1.push_back(perm[i]);
  // Zipf(0.99) by inverse CDF over the ranks; rank r -> key perm[r]
  std::vector<double> cdf(kKeys);
  double sum = 0;
  for (uint32_t i = 0; i < kKeys; i++) cdf[i] = (sum += 1.0 / std::pow((double)(i + 1), 0.99));
  std::uniform_real_distribution<double> u(0, sum);
  constexpr size_t kSamples = 1u << 22;
  g_zipf.resize(kSamples);
  g_unif.resize(kSamples);
  for (size_t i = 0; i < kSamples; i++) {
    size_t r = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    g_zipf[i] = perm[std::min<size_t>(r, kKeys - 1)];
    g_unif[i] = (uint32_t)(rng() % kKeys);
  }
  void *m = mmap(nullptr, sizeof(pthread_rwlock_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  g_lock = (pthread_rwlock_t *)m;
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_rwlock_init(g_lock, &a);
}

template <bool kLock, bool kHas>
inline int lookup(hzshm__shm_t *r, uint32_t id, uint8_t *buf, size_t *n) {
  char k[16];
  key_of(id, k);
  if (kLock) pthread_rwlock_rdlock(g_lock);
  int rc = hzshm__shm_r_get(r, &g_ref, k, 16, kHas ? nullptr : buf, kHas ? 0 : kVal, n);
  if (kLock) pthread_rwlock_unlock(g_lock);
  return rc;
}

template <bool kLock, bool kHas>
void run_keys(benchmark::State &st, hzshm__shm_t *r, const std::vector<uint32_t> &ids, const char *label) {
  setup();
  uint8_t buf[kVal];
  size_t n = 0, i = 0, bad = 0, mask = ids.size() - 1;
  bool pow2 = (ids.size() & mask) == 0;
  for (auto _ : st) {
    uint32_t id = ids[pow2 ? (i & mask) : (i % ids.size())];
    i++;
    int rc = lookup<kLock, kHas>(r, id, buf, &n);
    if (rc != 0 || (!kHas && !val_ok(id, buf, n))) bad++;
  }
  if (bad) st.SkipWithError("a lookup returned a wrong value or missed");
  st.SetItemsProcessed(st.iterations());
  (void)label;
}

void BM_get_l1(benchmark::State &st) { run_keys<false, false>(st, g_r, g_l1, "l1"); }
// The benchmark's own work per lookup (building the key, checking the value)
// without the lookup: subtract it from the rows above to get the lookup.
void BM_harness(benchmark::State &st) {
  setup();
  uint8_t v[kVal];
  val_of(g_hot[0], 0, v);
  size_t i = 0, bad = 0;
  for (auto _ : st) {
    uint32_t id = g_hot[i++ % 1000];
    char k[16];
    key_of(id, k);
    benchmark::DoNotOptimize(k);
    benchmark::ClobberMemory();  // v is "rewritten" as a lookup would
    if (!val_ok(g_hot[0], v, kVal)) bad++;
  }
  if (bad) st.SkipWithError("bad value");
}
void BM_get_hot(benchmark::State &st) { run_keys<false, false>(st, g_r, g_hot, "hot"); }
void BM_has_hot(benchmark::State &st) { run_keys<false, true>(st, g_r, g_hot, "hot"); }
void BM_get_hot_fence(benchmark::State &st) { run_keys<false, false>(st, g_rfence, g_hot, "hot"); }
void BM_get_zipf(benchmark::State &st) { run_keys<false, false>(st, g_r, g_zipf, "zipf"); }
void BM_has_zipf(benchmark::State &st) { run_keys<false, true>(st, g_r, g_zipf, "zipf"); }
void BM_get_zipf_fence(benchmark::State &st) { run_keys<false, false>(st, g_rfence, g_zipf, "zipf"); }
void BM_get_uniform(benchmark::State &st) { run_keys<false, false>(st, g_r, g_unif, "unif"); }
void BM_has_uniform(benchmark::State &st) { run_keys<false, true>(st, g_r, g_unif, "unif"); }
void BM_rwlock_get_hot(benchmark::State &st) { run_keys<true, false>(st, g_r, g_hot, "hot"); }
void BM_rwlock_get_zipf(benchmark::State &st) { run_keys<true, false>(st, g_r, g_zipf, "zipf"); }

void BM_get_miss(benchmark::State &st) {
  setup();
  char k[16];
  memcpy(k, "nokey-0000000000", 16);
  uint8_t buf[kVal];
  size_t n, i = 0, bad = 0;
  for (auto _ : st) {
    k[15] = (char)('a' + (i & 15));
    k[14] = (char)('a' + ((i >> 4) & 15));
    i++;
    if (hzshm__shm_r_get(g_r, &g_ref, k, 16, buf, sizeof buf, &n) != HZSHM_EMISS) bad++;
  }
  if (bad) st.SkipWithError("a miss was not a miss");
}

// Physical floor: dependent loads over anonymous memory as large as the
// arena, one load per 64-byte line in a random cyclic order. huge: the
// buffer is madvise(MADV_HUGEPAGE)d (THP "enabled" is [madvise] here) and
// touched in order, so it is backed by 2 MiB pages; else MADV_NOHUGEPAGE.
uint32_t *floor_buf(bool huge, size_t *lines_out) {
  static uint32_t *buf[2];
  static size_t lines;
  if (!buf[huge]) {
    hzshm__shm_stats_t s;
    hzshm__shm_stats(g_seg[0].w, &s);
    lines = (size_t)s.memory_limit / 64;
    size_t bytes = lines * 64, align = 2u << 20;
    auto *raw = (uint8_t *)mmap(nullptr, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) exit(1);
    auto *p = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    long before = smaps_kb("AnonHugePages");
    madvise(p, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(p, 0, bytes);
    auto *next = (uint32_t *)p;
    std::vector<uint32_t> order(lines);
    for (size_t i = 0; i < lines; i++) order[i] = (uint32_t)i;
    std::mt19937_64 rng(7);
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t i = 0; i < lines; i++) next[(size_t)order[i] * 16] = order[(i + 1) % lines];
    printf("floor buffer (%s): %zu MiB, AnonHugePages %ld kB -> %ld kB\n", huge ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE",
           bytes >> 20, before, smaps_kb("AnonHugePages"));
    buf[huge] = next;
  }
  *lines_out = lines;
  return buf[huge];
}
void floor_chase(benchmark::State &st, bool huge) {
  setup();
  size_t lines;
  const uint32_t *next = floor_buf(huge, &lines);
  uint32_t p = 0;
  for (auto _ : st) {
    p = next[(size_t)p * 16];
    benchmark::DoNotOptimize(p);
  }
}
void BM_floor_chase_4k(benchmark::State &st) { floor_chase(st, false); }
void BM_floor_chase_2m(benchmark::State &st) { floor_chase(st, true); }

// Per-op latency of the hot hit: batches of 16 lookups timed with rdtscp.
double tsc_per_ns() {
  static double f = 0;
  if (f) return f;
  uint64_t t0 = now_ns();
  unsigned aux;
  uint64_t c0 = __rdtscp(&aux);
  while (now_ns() - t0 < 50000000) {
  }
  f = (double)(__rdtscp(&aux) - c0) / (double)(now_ns() - t0);
  return f;
}
void BM_get_hot_latency(benchmark::State &st) {
  setup();
  double f = tsc_per_ns();
  std::vector<double> lat;
  uint8_t buf[kVal];
  size_t n, i = 0, bad = 0;
  for (auto _ : st) {
    unsigned aux;
    uint64_t c0 = __rdtscp(&aux);
    for (int j = 0; j < 16; j++, i++) {
      uint32_t id = g_hot[i % 1000];
      if (lookup<false, false>(g_r, id, buf, &n) != 0 || !val_ok(id, buf, n)) bad++;
    }
    uint64_t c1 = __rdtscp(&aux);
    lat.push_back((double)(c1 - c0) / f / 16.0);
  }
  if (bad) st.SkipWithError("bad value");
  std::sort(lat.begin(), lat.end());
  st.counters["p50_ns"] = lat[lat.size() / 2];
  st.counters["p99_ns"] = lat[lat.size() * 99 / 100];
  g_res[g_label + "hot_p50"] = lat[lat.size() / 2];
  g_res[g_label + "hot_p99"] = lat[lat.size() * 99 / 100];
}

uint64_t cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Reader processes + a writer at 50k updates/s. Returns hits/s summed; *per_cpu
// gets hits per CPU-second of the readers (their own CPU time while reading),
// which factors out time the readers spent preempted by other processes.
double g_upd_per_s;  // updates the writer of the last mp_run achieved per second
double mp_run(int readers, bool locked, bool hot, double secs, double *per_cpu) {
  setup();
  auto *cnt = (std::atomic<uint64_t> *)mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 16; i++) new (&cnt[i]) std::atomic<uint64_t>(0);
  std::vector<pid_t> pids;
  for (int i = 0; i < readers; i++) {
    pid_t p = hzshm__shm_fork();  // the child drops the writer's handle (shm.h, fork)
    if (p == 0) {
      hzshm__shm_t *r;
      setenv("HZSHM_SHM_DIR", g_dir.c_str(), 1);
      if (hzshm__shm_r_attach(g_name.c_str(), &r)) _exit(2);
      uint8_t buf[kVal];
      size_t n, k = (size_t)i * 7777, ops = 0, bad = 0;
      cnt[4].fetch_add(1);
      while (cnt[5].load(std::memory_order_relaxed) == 0) {
      }
      uint64_t c0 = cpu_ns();
      while (cnt[6].load(std::memory_order_relaxed) == 0) {
        for (int j = 0; j < 256; j++, k++) {
          uint32_t id = hot ? g_hot[k % g_hot.size()] : g_zipf[k & (g_zipf.size() - 1)];
          int rc = locked ? lookup<true, false>(r, id, buf, &n) : lookup<false, false>(r, id, buf, &n);
          if (rc == 0 && !val_ok(id, buf, n)) bad++;
          if (rc == 0) ops++;
        }
      }
      cnt[8 + i].store(cpu_ns() - c0);
      cnt[i].store(ops);
      cnt[7].fetch_add(bad);
      _exit(0);
    }
    pids.push_back(p);
  }
  while (cnt[4].load() < (uint64_t)readers) {
  }
  cnt[5].store(1);
  uint64_t t0 = now_ns(), done = 0;
  std::mt19937_64 rng(99);
  char k[16];
  uint8_t v[kVal];
  while (true) {
    uint64_t el = now_ns() - t0;
    if (el >= (uint64_t)(secs * 1e9)) break;
    uint64_t want = el * 50000 / 1000000000ull;  // 50k updates per second
    while (done < want) {
      uint32_t id = (uint32_t)(rng() % kKeys);
      key_of(id, k);
      val_of(id, (uint32_t)done, v);
      if (locked) pthread_rwlock_wrlock(g_lock);
      hzshm__shm_w_put(g_w, &g_ref, k, 16, v, kVal, id % 271, hzshm__shm_w_stamp(g_w), 0, 0);
      if (locked) pthread_rwlock_unlock(g_lock);
      if (++done % 1000 == 0) hzshm__shm_w_maintain(g_w);
    }
    struct timespec ts = {0, 100000};
    nanosleep(&ts, nullptr);  // pacing of the writer, not synchronization
  }
  cnt[6].store(1);
  for (pid_t p : pids) waitpid(p, nullptr, 0);
  double el = (double)(now_ns() - t0) / 1e9;
  uint64_t ops = 0, cpu = 0;
  for (int i = 0; i < readers; i++) ops += cnt[i].load(), cpu += cnt[8 + i].load();
  *per_cpu = cpu ? (double)ops / ((double)cpu / 1e9) : 0;
  g_upd_per_s = (double)done / el;  // 50k/s unless the writer could not get the lock
  uint64_t bad = cnt[7].load();
  munmap(cnt, 4096);
  if (bad) {
    fprintf(stderr, "mp_run: %llu bad values\n", (unsigned long long)bad);
    exit(1);
  }
  return (double)ops / el;
}

void BM_mp_readers(benchmark::State &st) {
  int readers = (int)st.range(0);
  bool locked = st.range(1) != 0, hot = st.range(2) != 0;
  double r = 0, pc = 0;
  for (auto _ : st) r = mp_run(readers, locked, hot, 2.0, &pc);
  st.counters["hits_per_s"] = r;
  st.counters["hits_per_cpu_s"] = pc;
  st.counters["writer_upd_per_s"] = g_upd_per_s;
  std::string k = g_label + (locked ? "rwlock_" : "ours_") + (hot ? "hot_" : "") + std::to_string(readers) + "r";
  g_res[k] = r;
  g_res[k + "_cpu"] = pc;
  g_res[k + "_upd"] = g_upd_per_s;
}

// Slot exhaustion (issue 10 defect 5): a segment with one reader slot, held
// by another thread; every lookup of this thread fails with HZSHM_EBUSY.
// Before the fix each call rescanned every slot with an fcntl (~0.8 ms with
// 1024 slots); now it is a clock read until the retry interval passes.
// Arg: slots in the segment (all held: one by the holder thread, the others
// by threads that exit only at the end).
void *slot_holder(void *p) {
  auto *a = (std::pair<hzshm__shm_t *, int *> *)p;
  hzshm__sref_t ref;
  hzshm__shm_r_session(a->first, "s", 1, &ref); /* claims a slot */
  char ch;
  if (read(a->second[0], &ch, 1) < 0) return nullptr;
  return nullptr;
}
void BM_slot_busy(benchmark::State &st) {
  std::string name = "bench-slots-" + std::to_string(getpid());
  hzshm__shm_config_t c = {};
  c.memory_bytes = 4u << 20;
  c.max_sessions = 16;
  c.reader_slots = (uint32_t)st.range(0);
  hzshm__shm_t *w = nullptr, *r = nullptr;
  hzshm__sref_t ref;
  if (hzshm__shm_w_open(name.c_str(), &c, 1, &w, nullptr) != 0 || hzshm__shm_r_attach(name.c_str(), &r) != 0 ||
      hzshm__shm_w_session(w, "s", 1, &ref) != 0) {
    st.SkipWithError("segment");
    return;
  }
  hzshm__shm_w_put(w, &ref, "k", 1, "v", 1, 0, 1, 0, 0);
  int hold[2];
  if (pipe(hold) != 0) return;
  std::vector<pthread_t> th(c.reader_slots);
  std::pair<hzshm__shm_t *, int *> arg(r, hold);
  for (auto &t : th) pthread_create(&t, nullptr, slot_holder, &arg);
  hzshm__shm_stats_t ss;
  do hzshm__shm_stats(r, &ss); while (ss.readers < c.reader_slots);
  size_t n, bad = 0;
  for (auto _ : st)
    if (hzshm__shm_r_get(r, &ref, "k", 1, nullptr, 0, &n) != HZSHM_EBUSY) bad++;
  hzshm__shm_stats(r, &ss);
  st.counters["scans"] = (double)ss.slot_claim_failures;
  close(hold[1]);
  for (auto &t : th) pthread_join(t, nullptr);
  close(hold[0]);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  hzshm__shm_unlink(name.c_str());
  if (bad) st.SkipWithError("a lookup without a slot did not fail with EBUSY");
}

// Every per-segment benchmark, registered once per page size as "4K/name"
// and "2M/name" (main); the floors are registered once each.
struct Entry {
  const char *name;
  void (*fn)(benchmark::State &);
  int kind;  // 0 plain, 1 latency (fixed iterations), 2 multi-process
};
const Entry kEntries[] = {
    {"get_l1", BM_get_l1, 0},             {"get_hot", BM_get_hot, 0},           {"has_hot", BM_has_hot, 0},
    {"get_hot_fence", BM_get_hot_fence, 0}, {"get_hot_latency", BM_get_hot_latency, 1},
    {"get_zipf", BM_get_zipf, 0},         {"has_zipf", BM_has_zipf, 0},
    {"get_zipf_fence", BM_get_zipf_fence, 0}, {"get_uniform", BM_get_uniform, 0},
    {"has_uniform", BM_has_uniform, 0},   {"get_miss", BM_get_miss, 0},
    {"rwlock_get_hot", BM_rwlock_get_hot, 0}, {"rwlock_get_zipf", BM_rwlock_get_zipf, 0},
    {"mp_readers", BM_mp_readers, 2},
};

void register_all() {
  benchmark::RegisterBenchmark("floor_chase_4k", BM_floor_chase_4k);
  benchmark::RegisterBenchmark("floor_chase_2m", BM_floor_chase_2m);
  benchmark::RegisterBenchmark("harness", BM_harness);
  benchmark::RegisterBenchmark("slot_busy", BM_slot_busy)->Arg(1)->Arg(64);
  for (int sg = 0; sg < g_nseg; sg++) {
    for (const Entry &e : kEntries) {
      std::string n = g_seg[sg].label + "/" + e.name;
      auto fn = e.fn;
      auto *b = benchmark::RegisterBenchmark(n.c_str(), [sg, fn](benchmark::State &st) {
        use(sg);
        fn(st);
      });
      if (e.kind == 1) b->Iterations(200000);
      // Args: reader processes, rwlock?, hot keys? (else Zipf 0.99)
      if (e.kind == 2)
        b->Args({1, 0, 0})->Args({2, 0, 0})->Args({1, 1, 0})->Args({2, 1, 0})->Args({1, 0, 1})->Args({2, 0, 1})
            ->Args({1, 1, 1})->Args({2, 1, 1})->Iterations(1)->Unit(benchmark::kSecond);
    }
  }
}

}  // namespace

// Records ns/op of every single-process benchmark for the summary: CPU time
// per iteration, which a loaded machine (preemption) inflates less than the
// wall time; both columns are in the Google Benchmark output above.
class Collect : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run> &runs) override {
    for (const auto &r : runs)
      if (r.iterations > 0 && !r.error_occurred) g_res[r.benchmark_name()] = r.GetAdjustedCPUTime();
    ConsoleReporter::ReportRuns(runs);
  }
};

// The writer's heartbeat while benchmarks run (readers fail closed after 2 s
// without one). w_heartbeat is two relaxed atomic stores, so calling it from
// this thread while the main thread writes in mp_run is safe.
std::atomic<int> g_hb_stop{0};
void *heartbeat_main(void *) {
  while (!g_hb_stop.load()) {
    for (int i = 0; i < g_nseg; i++) hzshm__shm_w_heartbeat(g_seg[i].w, HZSHM_SHM_SERVING);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, nullptr);
  }
  return nullptr;
}

double g(const std::string &k) { return g_res.count(k) ? g_res[k] : NAN; }
double ratio(const std::string &a, const std::string &b) { return g(a) / g(b); }
// One summary row: the value for the 4K and the 2M segment, and the target.
void row(const char *what, const char *fmt, double v4, double v2, const char *target) {
  char a[32], b[32];
  snprintf(a, sizeof a, fmt, v4);
  snprintf(b, sizeof b, fmt, v2);
  printf("%-46s %10s %10s %8s\n", what, a, g_nseg > 1 ? b : "skipped", target);
}
void row_key(const char *what, const char *fmt, const char *key, const char *target) {
  row(what, fmt, g(std::string("4K/") + key), g(std::string("2M/") + key), target);
}
void row_ratio(const char *what, const char *a, const char *b, const char *target) {
  std::string a4 = std::string("4K/") + a, b4 = std::string("4K/") + b;
  std::string a2 = std::string("2M/") + a, b2 = std::string("2M/") + b;
  row(what, "%.2f", ratio(a4, b4), ratio(a2, b2), target);
}

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  setup();
  register_all();
  pthread_t hb;
  pthread_create(&hb, nullptr, heartbeat_main, nullptr);
  Collect rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  double la[3] = {0, 0, 0};
  getloadavg(la, 3);
  printf("\nsummary (single-process rows: CPU ns/op; load average %.2f %.2f %.2f on %ld CPUs)\n", la[0], la[1], la[2],
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-46s %10s %10s %8s\n", "", "4K pages", "2M pages", "target");
  row_key("hot get hit p50 (ns)", "%.1f", "hot_p50", "<= 25");
  row_key("hot get hit p99 (ns)", "%.1f", "hot_p99", "<= 100");
  row_key("hot get mean (ns)", "%.1f", "get_hot", "");
  row_key("get, 16 keys (all in L1: compute only) (ns)", "%.1f", "get_l1", "");
  row("benchmark's own key/value work per lookup (ns)", "%.1f", g("harness"), g("harness"), "");
  row_key("hot has mean (ns)", "%.1f", "has_hot", "");
  row_key("Zipf 0.99 get mean (ns)", "%.1f", "get_zipf", "<= 150");
  row_key("uniform get mean (ns)", "%.1f", "get_uniform", "");
  row("floor: dependent chase, same page size (ns)", "%.1f", g("floor_chase_4k"), g("floor_chase_2m"), "");
  row("uniform / floor on the same page size", "%.2f", g("4K/get_uniform") / g("floor_chase_4k"),
      g("2M/get_uniform") / g("floor_chase_2m"), "<= 1.5");
  row("uniform / floor on 4K pages", "%.2f", g("4K/get_uniform") / g("floor_chase_4k"),
      g("2M/get_uniform") / g("floor_chase_4k"), "<= 1.5");
  row_key("get miss (ns)", "%.1f", "get_miss", "");
  row_key("hot get, seq_cst fence read side (ns)", "%.1f", "get_hot_fence", "");
  row_key("hot get, membarrier read side (ns)", "%.1f", "get_hot", "");
  row_key("Zipf get, seq_cst fence read side (ns)", "%.1f", "get_zipf_fence", "");
  row_key("rwlock hot get, 1 process (ns)", "%.1f", "rwlock_get_hot", "");
  row_key("ours: hits/s, 1 reader proc (Zipf)", "%.3g", "ours_1r", "");
  row_key("ours: hits/s, 2 reader procs (Zipf)", "%.3g", "ours_2r", "");
  row_key("rwlock: hits/s, 1 reader proc (Zipf)", "%.3g", "rwlock_1r", "");
  row_key("rwlock: hits/s, 2 reader procs (Zipf)", "%.3g", "rwlock_2r", "");
  row_key("rwlock: writer updates/s achieved, 1 / 2 readers", "%.3g", "rwlock_1r_upd", "50k");
  row_key("", "%.3g", "rwlock_2r_upd", "50k");
  row_ratio("ours / rwlock at 2 readers (Zipf)", "ours_2r", "rwlock_2r", ">= 3");
  row_ratio("ours 1 -> 2 readers scaling (Zipf)", "ours_2r", "ours_1r", ">= 1.8");
  row_key("ours: hits per CPU-s, 1 reader (Zipf)", "%.3g", "ours_1r_cpu", "");
  row_key("ours: hits per CPU-s, 2 readers (Zipf)", "%.3g", "ours_2r_cpu", "");
  row_key("rwlock: hits per CPU-s, 2 readers (Zipf)", "%.3g", "rwlock_2r_cpu", "");
  row_key("ours: hits/s, 1 reader proc (hot)", "%.3g", "ours_hot_1r", "");
  row_key("ours: hits/s, 2 reader procs (hot)", "%.3g", "ours_hot_2r", "");
  row_key("rwlock: hits/s, 1 reader proc (hot)", "%.3g", "rwlock_hot_1r", "");
  row_key("rwlock: hits/s, 2 reader procs (hot)", "%.3g", "rwlock_hot_2r", "");
  row_ratio("ours / rwlock at 2 readers (hot)", "ours_hot_2r", "rwlock_hot_2r", ">= 3");
  row_ratio("ours 1 -> 2 readers scaling (hot)", "ours_hot_2r", "ours_hot_1r", ">= 1.8");
  row_key("ours: hits per CPU-s, 1 / 2 readers (hot)", "%.3g", "ours_hot_1r_cpu", "");
  row_key("", "%.3g", "ours_hot_2r_cpu", "");
  row_key("rwlock: hits per CPU-s, 2 readers (hot)", "%.3g", "rwlock_hot_2r_cpu", "");
  g_hb_stop.store(1);
  pthread_join(hb, nullptr);
  for (int i = 0; i < g_nseg; i++) {
    hzshm__shm_close(g_seg[i].r);
    hzshm__shm_close(g_seg[i].rfence);
    hzshm__shm_close(g_seg[i].w);
    setenv("HZSHM_SHM_DIR", g_seg[i].dir.c_str(), 1);
    hzshm__shm_unlink(g_seg[i].name.c_str());
  }
  return 0;
}
