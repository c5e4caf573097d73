// bs.h - shared state and measuring helpers of bench_store (Google Benchmark
// driver). Every scenario runs as one benchmark "iteration" that times each
// operation itself (rdtsc for ns-scale hits, CLOCK_MONOTONIC for us-scale
// round trips) and reports percentiles as counters; the benchmark's own time
// is set (UseManualTime) to the mean per operation, so the "Time" column and
// the JSON real_time are means and the counters carry p50/p99/p99.9.
//
// Not thread-safe: the driver runs scenarios one after another on the main
// thread; multi-process scenarios fork() children that never return into it.
#ifndef HZSHM_BENCH_BS_H
#define HZSHM_BENCH_BS_H

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "butil.h"
#include "direct.h"
#include "hzshm.h"

struct BsSession {
  std::string name;  // the IMap name (no prefix is configured)
  hzshm_session_t *s = nullptr;
  size_t vsize = 0;
  size_t nkeys = 0;
};

struct BsCtx {
  std::string members, cluster, agent_bin, log;
  double scale = 1.0;    // $HZSHM_BENCH_SCALE: multiplies every op count / duration
  int reps = 3;          // $HZSHM_BENCH_REPS
  bu_agent_t agent{};
  hzshm_t *h = nullptr;
  dclient_t *dc = nullptr;
  std::vector<std::string> keys;  // bu_key(i) for i < keys.size()
  std::vector<BsSession> hot;     // one per value size: nkeys keys cached in the agent's segment
  uint64_t next_key = 1000000;    // fresh key indices for miss scenarios
  std::string run;                // unique per run: prefix of every map name
  int failed = 0;                 // scenarios that failed their checks (exit status 1)
};
extern BsCtx G;

static const size_t kSizes[] = {100, 1024, 65536};

// Ops count scaled by $HZSHM_BENCH_SCALE (at least 10).
size_t bs_n(size_t n);
const char *bs_key(uint64_t i);  // G.keys[i] or a formatted key (thread-unsafe static buffer)
BsSession &bs_hot(size_t vsize);

// Mean cost in ns of op(i) for i in [0, n): one untimed warm-up pass, then
// the ops back to back in 16 chunks without a timer per op; returns the
// median of the chunk means, so one preemption by another process (this VM is
// shared) does not move the figure.
template <class F>
double bs_mean_ns(size_t n, F op) {
  for (size_t i = 0; i < n / 4; i++) op(i);
  const size_t chunks = 16;
  std::vector<uint64_t> m(chunks);
  size_t per = n / chunks ? n / chunks : 1;
  for (size_t c = 0; c < chunks; c++) {
    uint64_t t0 = bu_now_ns();
    for (size_t i = c * per; i < (c + 1) * per; i++) op(i);
    m[c] = (bu_now_ns() - t0) * 1000 / per;  // ps per op, to keep sub-ns precision
  }
  bu_sort(m.data(), chunks);
  return (double)(m[chunks / 2 - 1] + m[chunks / 2]) / 2000.0;
}

// Sorts v (units: ticks if tsc != 0, else ns), sets counters p50_ns, p90_ns,
// p99_ns, p999_ns, max_ns, mean_ns (mean_ns given, measured without per-op
// timers, or < 0 to use the mean of v), ops and errors, the iteration time,
// and dumps the distribution for the plots. Fails the benchmark on errors.
void bs_report(benchmark::State &st, const std::string &scenario, std::vector<uint64_t> &v, bool tsc,
               double mean_ns, size_t errors);

// Marks the scenario failed (Google Benchmark reports it; bench_store exits 1).
void bs_fail(benchmark::State &st, const std::string &msg);

void bs_register_latency();
void bs_register_readers();
void bs_register_bigseg();
void bs_bigseg_cleanup();
void bs_latency_cleanup();

#include <functional>
// Registers a one-iteration, manual-time benchmark with $HZSHM_BENCH_REPS
// repetitions and median/min/max aggregates.
benchmark::internal::Benchmark *bs_reg(const std::string &name, std::function<void(benchmark::State &)> fn);

#endif
