// bs_bigseg.cc - the read path over a million entries, and memory per entry.
//   memory/1M        bytes per entry beyond key and value, segment size
//   big_get/hzshm/hot1k|zipf99|uniform   hzshm_get over 1M cached entries
// The segment is written by this process through the segment's writer API
// (bigseg.h): filling it through an agent would take a million round trips.
// Reads go through libhzshm's public API like any application's.
#include <unistd.h>

#include "bigseg.h"
#include "bs.h"

// $HZSHM_BENCH_BIG_ENTRIES overrides the entry count (smoke test).
static uint64_t kEntries = 1000000;
static const size_t kVsize = 100;

static struct {
  bigseg_t *seg = nullptr;
  bigseg_info_t info{};
  hzshm_t *h = nullptr;
  hzshm_session_t *s = nullptr;
  std::vector<std::string> keys;
  int failed = 0;
} B;

static bool big_ready(benchmark::State &st) {
  if (B.failed) {
    bs_fail(st, "1M-entry segment could not be built (see stderr)");
    return false;
  }
  if (B.seg) return true;
  const char *ne = getenv("HZSHM_BENCH_BIG_ENTRIES");
  if (ne && atoll(ne) > 0) kEntries = (uint64_t)atoll(ne);
  std::string name = G.run + "-big";
  // 1M x (16 B key + 100 B value) plus the table: 512 MiB is ample; the
  // memory scenario reports what was used of it.
  int rc = bigseg_build(name.c_str(), 512ull << 20, "big", kEntries, kVsize, &B.seg, &B.info);
  if (rc == 0) rc = hzshm_open(name.c_str(), nullptr, &B.h);
  if (rc == 0) rc = hzshm_session_open(B.h, "big", 3, &B.s);
  if (rc != 0) {
    fprintf(stderr, "bench_store: 1M-entry segment: %s\n", hzshm_strerror(rc));
    B.failed = 1;
    bs_fail(st, "1M-entry segment could not be built");
    return false;
  }
  B.keys.resize(kEntries);
  for (uint64_t i = 0; i < kEntries; i++) {
    char k[BU_KEYLEN + 1];
    bu_key(k, i);
    B.keys[i] = k;
  }
  return true;
}

static void memory(benchmark::State &st) {
  if (!big_ready(st)) return;
  for (auto _ : st) {
    const bigseg_info_t &i = B.info;
    double payload = (double)(BU_KEYLEN + kVsize);
    double n = (double)i.entries;
    st.counters["entries"] = n;
    st.counters["evictions"] = (double)i.evictions;
    // Arena: the entry records themselves (header + key + value, rounded to
    // the size class). Index and the rest: everything else of the file.
    st.counters["arena_bytes_per_entry"] = (double)i.memory_used / n;
    st.counters["overhead_arena_B"] = (double)i.memory_used / n - payload;
    st.counters["overhead_total_B"] = ((double)i.memory_used + (double)(i.file_bytes - i.memory_limit)) / n - payload;
    st.counters["segment_file_MiB"] = (double)i.file_bytes / (1 << 20);
    st.counters["segment_resident_MiB"] = (double)i.resident_bytes / (1 << 20);
    st.counters["needed_MiB"] = ((double)i.memory_used + (double)(i.file_bytes - i.memory_limit)) / (1 << 20);
    st.counters["reader_file_KiB"] = (double)i.rd_file_bytes / 1024;
    st.counters["fill_ns_per_entry"] = i.fill_s * 1e9 / n;
    st.SetIterationTime(i.fill_s / n);
    if (i.entries != kEntries || i.evictions != 0) bs_fail(st, "not every entry was kept");
  }
}

static void big_get(benchmark::State &st, int pattern) {
  if (!big_ready(st)) return;
  uint32_t hot = kEntries < 1000 ? (uint32_t)kEntries : 1000;
  static const char *pname[] = {"hot1k", "zipf99", "uniform"};
  size_t n = bs_n(1000000);
  std::vector<uint32_t> draws(n);
  if (pattern == 1) {
    uint32_t *z = bu_zipf_draws((uint32_t)kEntries, 0.99, n, 42);
    draws.assign(z, z + n);
    free(z);
  } else {
    uint64_t x = 88172645463325252ull;  // xorshift64
    for (size_t i = 0; i < n; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      draws[i] = pattern == 0 ? (uint32_t)((x % hot) * 997 % kEntries) : (uint32_t)(x % kEntries);
    }
  }
  std::vector<uint64_t> v(n);
  uint8_t buf[kVsize];
  uint64_t ovh = bu_tsc_overhead();
  for (auto _ : st) {
    size_t errors = 0;
    bigseg_heartbeat(B.seg);
    double mean = bs_mean_ns(n, [&](size_t i) {
      uint32_t k = draws[i];
      size_t vlen = 0;
      int rc = hzshm_get(B.s, B.keys[k].data(), BU_KEYLEN, buf, sizeof buf, &vlen);
      if (rc != 0 || !bu_value_ok(buf, vlen, k, kVsize)) errors++;
    });
    bigseg_heartbeat(B.seg);
    for (size_t i = 0; i < n; i++) {
      uint32_t k = draws[i];
      size_t vlen = 0;
      const char *key = B.keys[k].data();
      uint64_t t = bu_tsc();
      int rc = hzshm_get(B.s, key, BU_KEYLEN, buf, sizeof buf, &vlen);
      uint64_t d = bu_tsc() - t;
      v[i] = d > ovh ? d - ovh : 0;
      if (rc != 0 || !bu_value_ok(buf, vlen, k, kVsize)) errors++;
    }
    bs_report(st, std::string("big_get/hzshm/") + pname[pattern], v, true, mean, errors);
  }
}

void bs_register_bigseg() {
  bs_reg("memory/1M", memory);
  bs_reg("big_get/hzshm/hot1k", [](benchmark::State &st) { big_get(st, 0); });
  bs_reg("big_get/hzshm/zipf99", [](benchmark::State &st) { big_get(st, 1); });
  bs_reg("big_get/hzshm/uniform", [](benchmark::State &st) { big_get(st, 2); });
}

// Called at exit by bs_main (after the benchmarks ran).
void bs_bigseg_cleanup() {
  if (B.s) hzshm_session_close(B.s);
  if (B.h) hzshm_close(B.h);
  if (B.seg) bigseg_destroy(B.seg);
}
