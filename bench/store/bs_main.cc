// bs_main.cc - bench_store: set-up (one hzshm-agent on the members given in
// $HZSHM_BENCH_MEMBERS, our direct client, the hot sessions), the reporting
// helpers, and main(). See docs/BENCHMARKS.md for the scenarios.
//
//   HZSHM_BENCH_MEMBERS=127.0.0.1:5781 bench_store --benchmark_out=x.json
//     [--benchmark_out_format=json] [--benchmark_filter=REGEX]
// Environment: HZSHM_BENCH_CLUSTER (default hzshm), HZSHM_BENCH_SCALE (1.0),
// HZSHM_BENCH_REPS (3), HZSHM_BENCH_DIST (file for distribution lines),
// HZSHM_BENCH_AGENT_LOG (agent stderr; default inherited).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "bs.h"

BsCtx G;

size_t bs_n(size_t n) {
  double v = std::ceil((double)n * G.scale);
  return v < 10 ? 10 : (size_t)v;
}

const char *bs_key(uint64_t i) {
  static char buf[BU_KEYLEN + 1];
  if (i < G.keys.size()) return G.keys[i].c_str();
  bu_key(buf, i);
  return buf;
}

BsSession &bs_hot(size_t vsize) {
  for (auto &s : G.hot)
    if (s.vsize == vsize) return s;
  BU_CHECK(!"no hot session of that size");
  return G.hot[0];
}

void bs_fail(benchmark::State &st, const std::string &msg) {
  G.failed++;
  st.SkipWithError(msg.c_str());
}

void bs_report(benchmark::State &st, const std::string &scenario, std::vector<uint64_t> &v, bool tsc,
               double mean_ns, size_t errors) {
  double k = tsc ? 1.0 / bu_tsc_per_ns() : 1.0;
  bu_sort(v.data(), v.size());
  size_t n = v.size();
  if (mean_ns < 0) mean_ns = bu_mean(v.data(), n) * k;
  st.counters["p50_ns"] = bu_quantile_sorted(v.data(), n, 0.50) * k;
  st.counters["p90_ns"] = bu_quantile_sorted(v.data(), n, 0.90) * k;
  st.counters["p99_ns"] = bu_quantile_sorted(v.data(), n, 0.99) * k;
  st.counters["p999_ns"] = bu_quantile_sorted(v.data(), n, 0.999) * k;
  st.counters["max_ns"] = n ? v[n - 1] * k : 0;
  st.counters["mean_ns"] = mean_ns;
  st.counters["ops"] = (double)n;
  st.counters["errors"] = (double)errors;
  st.SetIterationTime(mean_ns / 1e9);
  bu_dist_dump(scenario.c_str(), "ns", v.data(), n, k);
  if (errors) bs_fail(st, scenario + ": wrong results (see errors counter)");
}

static void setup_hot(void) {
  for (size_t vsize : kSizes) {
    BsSession s;
    s.vsize = vsize;
    s.nkeys = vsize > 4096 ? 100 : 1000;
    s.name = G.run + "-hot-" + std::to_string(vsize);
    // The keys go to the cluster directly; the first get through libhzshm is a
    // miss that the agent fills; every later one should be a hit.
    int rc = dc_fill(G.dc, s.name.c_str(), 0, s.nkeys, vsize);
    if (rc != 0) {
      fprintf(stderr, "bench_store: filling %s: %s\n", s.name.c_str(), hzshm_strerror(rc));
      exit(1);
    }
    BU_CHECK(hzshm_session_open(G.h, s.name.c_str(), s.name.size(), &s.s) == 0);
    std::vector<uint8_t> buf(vsize);
    for (size_t i = 0; i < s.nkeys; i++) {
      size_t vlen = 0;
      rc = hzshm_get(s.s, bs_key(i), BU_KEYLEN, buf.data(), vsize, &vlen);
      if (rc != 0 || !bu_value_full_ok(buf.data(), vlen, i, vsize)) {
        fprintf(stderr, "bench_store: warming %s key %zu: %s\n", s.name.c_str(), i, hzshm_strerror(rc));
        exit(1);
      }
    }
    G.hot.push_back(s);
  }
}

static const char *env_or(const char *k, const char *d) {
  const char *v = getenv(k);
  return v && *v ? v : d;
}

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  const char *members = getenv("HZSHM_BENCH_MEMBERS");
  if (members == nullptr || *members == 0) {
    fprintf(stderr, "bench_store: set HZSHM_BENCH_MEMBERS=host:port[,...] (tools/run-bench does)\n");
    return 2;
  }
  G.members = members;
  G.cluster = env_or("HZSHM_BENCH_CLUSTER", "dev");
  G.agent_bin = env_or("HZSHM_BENCH_AGENT", HZSHM_AGENT_BIN);
  G.scale = atof(env_or("HZSHM_BENCH_SCALE", "1"));
  if (!(G.scale > 0)) G.scale = 1;
  G.reps = atoi(env_or("HZSHM_BENCH_REPS", "3"));
  if (G.reps < 1) G.reps = 1;
  G.run = "bs" + std::to_string(getpid());
  for (uint64_t i = 0; i < 2000; i++) {
    char k[BU_KEYLEN + 1];
    bu_key(k, i);
    G.keys.emplace_back(k);
  }

  char model[256];
  bu_cpu_model(model, sizeof model);
  benchmark::AddCustomContext("cpu_model", model);
  benchmark::AddCustomContext("nproc", std::to_string(sysconf(_SC_NPROCESSORS_ONLN)));
  benchmark::AddCustomContext("mem_total_mib", std::to_string((long long)sysconf(_SC_PHYS_PAGES) *
                                                              sysconf(_SC_PAGE_SIZE) / (1 << 20)));
  benchmark::AddCustomContext("members", G.members);
  benchmark::AddCustomContext("tsc_per_ns", std::to_string(bu_tsc_per_ns()));
  benchmark::AddCustomContext("tsc_overhead_ns", std::to_string(bu_tsc_overhead() / bu_tsc_per_ns()));

  const char *log = getenv("HZSHM_BENCH_AGENT_LOG");
  std::string agent_name = G.run + "-agent";
  if (bu_agent_start(&G.agent, G.agent_bin.c_str(), agent_name.c_str(), G.members.c_str(), G.cluster.c_str(),
                     "512m", log) != 0)
    return 1;
  int rc = hzshm_open(G.agent.name, nullptr, &G.h);
  if (rc == 0) rc = dc_open(G.members.c_str(), G.cluster.c_str(), &G.dc);
  if (rc != 0) {
    fprintf(stderr, "bench_store: set-up failed: %s\n", hzshm_strerror(rc));
    bu_agent_stop(&G.agent);
    return 1;
  }
  setup_hot();

  bs_register_latency();
  bs_register_bigseg();
  bs_register_readers();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();

  for (auto &s : G.hot) {
    hzshm_destroy(s.s);  // also destroys the IMap in the cluster
    hzshm_session_close(s.s);
  }
  bs_bigseg_cleanup();
  bs_latency_cleanup();
  dc_close(G.dc);
  hzshm_close(G.h);
  bu_agent_stop(&G.agent);
  if (G.failed) fprintf(stderr, "bench_store: %d scenario(s) failed their checks\n", G.failed);
  return G.failed ? 1 : 0;
}

benchmark::internal::Benchmark *bs_reg(const std::string &name, std::function<void(benchmark::State &)> fn) {
  auto *b = benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State &st) { fn(st); });
  b->Iterations(1)->UseManualTime()->Unit(benchmark::kNanosecond);
  if (G.reps > 1) {
    b->Repetitions(G.reps)->DisplayAggregatesOnly(true);
    b->ComputeStatistics("min", [](const std::vector<double> &v) { return *std::min_element(v.begin(), v.end()); });
    b->ComputeStatistics("max", [](const std::vector<double> &v) { return *std::max_element(v.begin(), v.end()); });
  }
  return b;
}
