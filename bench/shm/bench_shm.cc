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
std::string g_name;
hzshm__shm_t *g_w = nullptr, *g_r = nullptr, *g_rfence = nullptr;
hzshm__sref_t g_ref;
std::vector<uint32_t> g_hot, g_zipf, g_unif;
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

void setup() {
  if (g_w) return;
  g_name = "bench-" + std::to_string(getpid());
  hzshm__shm_config_t c = {};
  c.memory_bytes = 320ull << 20;
  c.max_sessions = 1024;
  c.reader_slots = 64;
  int rc = hzshm__shm_w_open(g_name.c_str(), &c, 1, &g_w, nullptr);
  if (rc) {
    fprintf(stderr, "w_open: %s\n", hzshm_strerror(rc));
    exit(1);
  }
  hzshm__shm_w_session(g_w, "bench-session", 13, &g_ref);
  char k[16];
  uint8_t v[kVal];
  for (uint32_t i = 0; i < kKeys; i++) {
    key_of(i, k);
    val_of(i, 0, v);
    rc = hzshm__shm_w_put(g_w, &g_ref, k, 16, v, kVal, i % 271, hzshm__shm_w_stamp(g_w), 0, 0);
    if (rc) {
      fprintf(stderr, "fill %u: %s\n", i, hzshm_strerror(rc));
      exit(1);
    }
  }
  unsetenv("HZSHM_SHM_READ_FENCE");
  hzshm__shm_r_attach(g_name.c_str(), &g_r);
  setenv("HZSHM_SHM_READ_FENCE", "1", 1);
  hzshm__shm_r_attach(g_name.c_str(), &g_rfence);
  unsetenv("HZSHM_SHM_READ_FENCE");
  std::mt19937_64 rng(42);
  std::vector<uint32_t> perm(kKeys);
  for (uint32_t i = 0; i < kKeys; i++) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  for (int i = 0; i < 1000; i++) g_hot.push_back(perm[i]);
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

// Physical floor: dependent loads over a buffer as large as the table.
void BM_floor_chase(benchmark::State &st) {
  setup();
  hzshm__shm_stats_t s;
  hzshm__shm_stats(g_w, &s);
  size_t lines = (size_t)s.memory_limit / 64;
  static std::vector<uint32_t> next;
  if (next.empty()) {
    std::vector<uint32_t> order(lines);
    for (size_t i = 0; i < lines; i++) order[i] = (uint32_t)i;
    std::mt19937_64 rng(7);
    std::shuffle(order.begin(), order.end(), rng);
    next.assign(lines * 16, 0);  // one uint32 per 64-byte line used
    for (size_t i = 0; i < lines; i++) next[(size_t)order[i] * 16] = order[(i + 1) % lines];
  }
  uint32_t p = 0;
  for (auto _ : st) {
    p = next[(size_t)p * 16];
    benchmark::DoNotOptimize(p);
  }
}

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
  g_res["hot_p50"] = lat[lat.size() / 2];
  g_res["hot_p99"] = lat[lat.size() * 99 / 100];
}

// Reader processes + a writer at 50k updates/s. Returns hits/s summed.
double mp_run(int readers, bool locked, bool hot, double secs) {
  setup();
  auto *cnt = (std::atomic<uint64_t> *)mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  for (int i = 0; i < 8; i++) new (&cnt[i]) std::atomic<uint64_t>(0);
  std::vector<pid_t> pids;
  for (int i = 0; i < readers; i++) {
    pid_t p = fork();
    if (p == 0) {
      hzshm__shm_t *r;
      if (hzshm__shm_r_attach(g_name.c_str(), &r)) _exit(2);
      uint8_t buf[kVal];
      size_t n, k = (size_t)i * 7777, ops = 0, bad = 0;
      cnt[4].fetch_add(1);
      while (cnt[5].load(std::memory_order_relaxed) == 0) {
      }
      while (cnt[6].load(std::memory_order_relaxed) == 0) {
        for (int j = 0; j < 256; j++, k++) {
          uint32_t id = hot ? g_hot[k % g_hot.size()] : g_zipf[k & (g_zipf.size() - 1)];
          int rc = locked ? lookup<true, false>(r, id, buf, &n) : lookup<false, false>(r, id, buf, &n);
          if (rc == 0 && !val_ok(id, buf, n)) bad++;
          if (rc == 0) ops++;
        }
      }
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
  uint64_t ops = 0;
  for (int i = 0; i < readers; i++) ops += cnt[i].load();
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
  double r = 0;
  for (auto _ : st) r = mp_run(readers, locked, hot, 2.0);
  st.counters["hits_per_s"] = r;
  g_res[std::string(locked ? "rwlock_" : "ours_") + (hot ? "hot_" : "") + std::to_string(readers) + "r"] = r;
}

}  // namespace

BENCHMARK(BM_get_hot);
BENCHMARK(BM_has_hot);
BENCHMARK(BM_get_hot_fence);
BENCHMARK(BM_get_hot_latency)->Iterations(200000);
BENCHMARK(BM_get_zipf);
BENCHMARK(BM_has_zipf);
BENCHMARK(BM_get_zipf_fence);
BENCHMARK(BM_get_uniform);
BENCHMARK(BM_has_uniform);
BENCHMARK(BM_get_miss);
BENCHMARK(BM_floor_chase);
BENCHMARK(BM_rwlock_get_hot);
BENCHMARK(BM_rwlock_get_zipf);
// Args: reader processes, rwlock?, hot keys? (else Zipf 0.99)
BENCHMARK(BM_mp_readers)
    ->Args({1, 0, 0})->Args({2, 0, 0})->Args({1, 1, 0})->Args({2, 1, 0})
    ->Args({1, 0, 1})->Args({2, 0, 1})->Args({1, 1, 1})->Args({2, 1, 1})
    ->Iterations(1)->Unit(benchmark::kSecond);

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
    hzshm__shm_w_heartbeat(g_w, HZSHM_SHM_SERVING);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, nullptr);
  }
  return nullptr;
}

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  setup();
  pthread_t hb;
  pthread_create(&hb, nullptr, heartbeat_main, nullptr);
  Collect rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  auto g = [](const char *k) { return g_res.count(k) ? g_res[k] : NAN; };
  double la[3] = {0, 0, 0};
  getloadavg(la, 3);
  printf("\nsummary (single-process rows: CPU ns/op; load average %.2f %.2f %.2f on %ld CPUs)\n", la[0], la[1], la[2],
         sysconf(_SC_NPROCESSORS_ONLN));
  printf("%-44s %12s %12s\n", "", "measured", "target");
  printf("%-44s %12.1f %12s\n", "hot get hit p50 (ns)", g("hot_p50"), "<= 25");
  printf("%-44s %12.1f %12s\n", "hot get hit p99 (ns)", g("hot_p99"), "<= 100");
  printf("%-44s %12.1f %12s\n", "hot get mean (ns)", g("BM_get_hot"), "");
  printf("%-44s %12.1f %12s\n", "hot has mean (ns)", g("BM_has_hot"), "");
  printf("%-44s %12.1f %12s\n", "Zipf 0.99 get mean (ns)", g("BM_get_zipf"), "<= 150");
  printf("%-44s %12.1f %12s\n", "uniform get mean (ns)", g("BM_get_uniform"), "");
  printf("%-44s %12.1f %12s\n", "floor: dependent chase (ns)", g("BM_floor_chase"), "");
  printf("%-44s %12.2f %12s\n", "uniform / floor", g("BM_get_uniform") / g("BM_floor_chase"), "<= 1.5");
  printf("%-44s %12.1f %12s\n", "get miss (ns)", g("BM_get_miss"), "");
  printf("%-44s %12.1f %12s\n", "hot get, seq_cst fence read side (ns)", g("BM_get_hot_fence"), "");
  printf("%-44s %12.1f %12s\n", "hot get, membarrier read side (ns)", g("BM_get_hot"), "");
  printf("%-44s %12.1f %12s\n", "Zipf get, fence / membarrier (ns)", g("BM_get_zipf_fence"), "");
  printf("%-44s %12.1f %12s\n", "rwlock hot get, 1 process (ns)", g("BM_rwlock_get_hot"), "");
  printf("%-44s %12.3g %12s\n", "ours: hits/s, 1 reader proc + 50k upd/s", g("ours_1r"), "");
  printf("%-44s %12.3g %12s\n", "ours: hits/s, 2 reader procs + 50k upd/s", g("ours_2r"), "");
  printf("%-44s %12.3g %12s\n", "rwlock: hits/s, 1 reader proc", g("rwlock_1r"), "");
  printf("%-44s %12.3g %12s\n", "rwlock: hits/s, 2 reader procs", g("rwlock_2r"), "");
  printf("%-44s %12.2f %12s\n", "ours / rwlock at 2 readers (Zipf)", g("ours_2r") / g("rwlock_2r"), ">= 3");
  printf("%-44s %12.2f %12s\n", "ours 1 -> 2 readers scaling (Zipf)", g("ours_2r") / g("ours_1r"), ">= 1.8");
  printf("%-44s %12.3g %12s\n", "ours: hits/s, 1 / 2 reader procs, hot keys", g("ours_hot_1r"), "");
  printf("%-44s %12.3g %12s\n", "", g("ours_hot_2r"), "");
  printf("%-44s %12.3g %12s\n", "rwlock: hits/s, 1 / 2 reader procs, hot keys", g("rwlock_hot_1r"), "");
  printf("%-44s %12.3g %12s\n", "", g("rwlock_hot_2r"), "");
  printf("%-44s %12.2f %12s\n", "ours / rwlock at 2 readers (hot)", g("ours_hot_2r") / g("rwlock_hot_2r"), ">= 3");
  printf("%-44s %12.2f %12s\n", "ours 1 -> 2 readers scaling (hot)", g("ours_hot_2r") / g("ours_hot_1r"), ">= 1.8");
  g_hb_stop.store(1);
  pthread_join(hb, nullptr);
  hzshm__shm_close(g_r);
  hzshm__shm_close(g_rfence);
  hzshm__shm_close(g_w);
  hzshm__shm_unlink(g_name.c_str());
  return 0;
}
