// bench_hz.cc - our C Hazelcast client (src/hz, hzc.h) used directly:
// get / set latency (p50, p99 per op, one request in flight) and pipelined
// throughput (N requests in flight) against a real member.
//
//   HZSHM_BENCH_MEMBERS=127.0.0.1:5781 bench_hz      (tools/run-bench-hz starts the member)
//
// Every benchmark checks its results (status 0, the value read back has the
// expected length and bytes) and fails with SkipWithError otherwise.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <uv.h>

#include "hzc.h"

namespace {

uv_loop_t *loop;
hzc_client_t *client;
const char *kMap = "bench-hz";

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

struct Op {
  int done = 0;
  int status = 0;
  size_t len = 0;
  bool match = true;
  const std::string *expect = nullptr;
};

void op_cb(hzc_client_t *, const hzc_result_t *r, void *ud) {
  Op *o = static_cast<Op *>(ud);
  o->status = r->status;
  o->len = r->value.len;
  if (o->expect)
    o->match = r->value.type == HZC_BYTES && r->value.len == o->expect->size() &&
               std::memcmp(r->value.data, o->expect->data(), r->value.len) == 0;
  o->done = 1;
}

void wait_done(const int *done) {
  while (!*done) uv_run(loop, UV_RUN_ONCE);
}

void status_cb(hzc_client_t *, int status, void *ud) {
  int *s = static_cast<int *>(ud);
  s[0] = 1;
  s[1] = status;
}

bool connect_once() {
  if (client) return true;
  const char *addr = std::getenv("HZSHM_BENCH_MEMBERS");
  static std::string a = addr ? addr : "127.0.0.1:5781";
  a = a.substr(0, a.find(','));
  static const char *addrs[1] = {a.c_str()};
  loop = uv_default_loop();
  hzc_config_t cfg{};
  cfg.cluster_name = std::getenv("HZSHM_BENCH_CLUSTER") ? std::getenv("HZSHM_BENCH_CLUSTER") : "dev";
  cfg.addrs = addrs;
  cfg.naddrs = 1;
  cfg.smart = 1;
  if (hzc_client_new(loop, &cfg, &client) != 0) return false;
  int st[2] = {0, 0};
  if (hzc_client_connect(client, status_cb, st) != 0) return false;
  if (hzc_run_until(loop, &st[0], 60000) != 0 || st[1] != 0) return false;
  return true;
}

std::string value_of(size_t n) {
  std::string v(n, '\0');
  for (size_t i = 0; i < n; i++) v[i] = char('a' + i % 26);
  return v;
}

void report(benchmark::State &state, std::vector<uint64_t> &lat) {
  if (lat.empty()) return;
  std::sort(lat.begin(), lat.end());
  state.counters["p50_us"] = double(lat[lat.size() / 2]) / 1000.0;
  state.counters["p99_us"] = double(lat[std::min(lat.size() - 1, lat.size() * 99 / 100)]) / 1000.0;
  state.counters["ops_per_s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}

// One get at a time (latency). range(0) = value size.
void BM_Get(benchmark::State &state) {
  if (!connect_once()) return state.SkipWithError("cannot connect (HZSHM_BENCH_MEMBERS)");
  std::string v = value_of(size_t(state.range(0)));
  const int nkeys = 1000;
  for (int i = 0; i < nkeys; i++) { // preload
    std::string k = "g-" + std::to_string(v.size()) + "-" + std::to_string(i);
    Op o;
    hzc_map_set(client, kMap, k.data(), k.size(), v.data(), v.size(), -1, op_cb, &o);
    wait_done(&o.done);
    if (o.status) return state.SkipWithError("preload failed");
  }
  std::vector<uint64_t> lat;
  lat.reserve(1 << 20);
  int i = 0;
  for (auto _ : state) {
    std::string k = "g-" + std::to_string(v.size()) + "-" + std::to_string(i++ % nkeys);
    Op o;
    o.expect = &v;
    uint64_t t0 = now_ns();
    if (hzc_map_get(client, kMap, k.data(), k.size(), op_cb, &o) != 0) return state.SkipWithError("get refused");
    wait_done(&o.done);
    lat.push_back(now_ns() - t0);
    if (o.status || !o.match) return state.SkipWithError("get returned a wrong result");
  }
  report(state, lat);
}

// One set at a time (latency).
void BM_Set(benchmark::State &state) {
  if (!connect_once()) return state.SkipWithError("cannot connect (HZSHM_BENCH_MEMBERS)");
  std::string v = value_of(size_t(state.range(0)));
  std::vector<uint64_t> lat;
  lat.reserve(1 << 20);
  int i = 0;
  for (auto _ : state) {
    std::string k = "s-" + std::to_string(i++ % 1000);
    Op o;
    uint64_t t0 = now_ns();
    if (hzc_map_set(client, kMap, k.data(), k.size(), v.data(), v.size(), -1, op_cb, &o) != 0)
      return state.SkipWithError("set refused");
    wait_done(&o.done);
    lat.push_back(now_ns() - t0);
    if (o.status) return state.SkipWithError("set failed");
  }
  report(state, lat);
}

// Throughput with range(1) gets in flight, each iteration = one completed get.
void BM_GetPipelined(benchmark::State &state) {
  if (!connect_once()) return state.SkipWithError("cannot connect (HZSHM_BENCH_MEMBERS)");
  std::string v = value_of(size_t(state.range(0)));
  const int depth = int(state.range(1)), nkeys = 1000;
  for (int i = 0; i < nkeys; i++) {
    std::string k = "p-" + std::to_string(i);
    Op o;
    hzc_map_set(client, kMap, k.data(), k.size(), v.data(), v.size(), -1, op_cb, &o);
    wait_done(&o.done);
  }
  struct Slot {
    Op op;
    uint64_t t0;
  };
  std::vector<Slot> slots(static_cast<size_t>(depth));
  std::vector<uint64_t> lat;
  lat.reserve(1 << 20);
  int next = 0, bad = 0;
  auto issue = [&](Slot &s) {
    s.op = Op();
    s.op.expect = &v;
    std::string k = "p-" + std::to_string(next++ % nkeys);
    s.t0 = now_ns();
    if (hzc_map_get(client, kMap, k.data(), k.size(), op_cb, &s.op) != 0) bad++;
  };
  for (auto &s : slots) issue(s);
  for (auto _ : state) {
    // wait until some slot completes, then reissue it
    for (;;) {
      bool any = false;
      for (auto &s : slots) {
        if (s.op.done) {
          lat.push_back(now_ns() - s.t0);
          if (s.op.status || !s.op.match) bad++;
          issue(s);
          any = true;
          break;
        }
      }
      if (any) break;
      uv_run(loop, UV_RUN_ONCE);
    }
  }
  for (auto &s : slots) wait_done(&s.op.done);
  if (bad) return state.SkipWithError("pipelined get returned a wrong result");
  report(state, lat);
  state.counters["in_flight"] = depth;
}

BENCHMARK(BM_Get)->Arg(100)->Arg(4096)->Arg(65536)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Set)->Arg(100)->Arg(4096)->Arg(65536)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_GetPipelined)->Args({100, 16})->Args({100, 64})->UseRealTime()->MinTime(2.0);

} // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (client) {
    int closed = 0;
    hzc_client_close(client, [](void *ud) { *static_cast<int *>(ud) = 1; }, &closed);
    hzc_run_until(loop, &closed, 10000);
  }
  return 0;
}
