// bs_latency.cc - one-operation latency scenarios, all in the same run:
//   hit_get|hit_has/hzshm/SIZE    libhzshm hits on 1000 hot keys (100 for 64 KiB)
//   get|contains/direct/SIZE      our C client, same maps, keys and values
//   set/hzshm|direct/SIZE, del/..., destroy/...   writes through the agent vs direct
//   miss_get/hzshm/SIZE           cache miss -> agent -> cluster -> fill
//   uds_rtt                       one-byte ping-pong between two processes
// Every read checks the value it got (length and bytes); wrong values fail
// the benchmark.
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "bs.h"

static std::string sz(size_t v) { return std::to_string(v); }

static void hit(benchmark::State &st, size_t vsize, bool has) {
  BsSession &s = bs_hot(vsize);
  size_t n = bs_n(vsize > 4096 ? 5000 : 300000);
  std::vector<uint8_t> buf(vsize);
  std::vector<uint64_t> v(n);
  uint64_t ovh = bu_tsc_overhead();
  for (auto _ : st) {
    size_t errors = 0;
    hzshm_stats_t a{}, b{};
    BU_CHECK(hzshm_stats(G.h, &a) == 0);
    // Pass 1: the mean, without a timer around each op.
    double mean = bs_mean_ns(n, [&](size_t i) {
      size_t k = i % s.nkeys, vlen = 0;
      int rc = has ? hzshm_has(s.s, bs_key(k), BU_KEYLEN)
                   : hzshm_get(s.s, bs_key(k), BU_KEYLEN, buf.data(), vsize, &vlen);
      if (rc != 0 || (!has && !bu_value_ok(buf.data(), vlen, k, vsize))) errors++;
    });
    // Pass 2: each op between two rdtsc, minus the timer's own median cost.
    for (size_t i = 0; i < n; i++) {
      size_t k = i % s.nkeys, vlen = 0;
      const char *key = bs_key(k);
      uint64_t t = bu_tsc();
      int rc = has ? hzshm_has(s.s, key, BU_KEYLEN) : hzshm_get(s.s, key, BU_KEYLEN, buf.data(), vsize, &vlen);
      uint64_t d = bu_tsc() - t;
      v[i] = d > ovh ? d - ovh : 0;
      if (rc != 0 || (!has && !bu_value_ok(buf.data(), vlen, k, vsize))) errors++;
    }
    BU_CHECK(hzshm_stats(G.h, &b) == 0);
    size_t done = n / 4 + 16 * (n / 16 ? n / 16 : 1) + n;  // warm-up + mean chunks + timed pass
    st.counters["hit_ratio"] = (double)(b.hits - a.hits) / (double)done;
    bs_report(st, (has ? "hit_has/hzshm/" : "hit_get/hzshm/") + sz(vsize), v, true, mean, errors);
  }
}

static void direct_read(benchmark::State &st, size_t vsize, bool contains) {
  BsSession &s = bs_hot(vsize);  // the same IMap, keys and values as the hits
  size_t n = bs_n(vsize > 4096 ? 1000 : 3000);
  std::vector<uint8_t> buf(vsize);
  std::vector<uint64_t> v(n);
  for (auto _ : st) {
    size_t errors = 0;
    for (size_t i = 0; i < n + 200; i++) {  // the first 200 warm up (not recorded)
      size_t k = i % s.nkeys, vlen = 0;
      int found = 0;
      uint64_t t = bu_now_ns();
      int rc = contains ? dc_contains(G.dc, s.name.c_str(), bs_key(k), BU_KEYLEN, &found)
                        : dc_get(G.dc, s.name.c_str(), bs_key(k), BU_KEYLEN, buf.data(), vsize, &vlen, &found);
      uint64_t d = bu_now_ns() - t;
      if (i >= 200) v[i - 200] = d;
      if (rc != 0 || !found || (!contains && !bu_value_ok(buf.data(), vlen, k, vsize))) errors++;
    }
    bs_report(st, (contains ? "contains/direct/" : "get/direct/") + sz(vsize), v, false, -1, errors);
  }
}

static std::map<std::string, hzshm_session_t *> open_sessions;

static hzshm_session_t *session(const std::string &name) {
  auto it = open_sessions.find(name);
  if (it != open_sessions.end()) return it->second;
  hzshm_session_t *s = nullptr;
  BU_CHECK(hzshm_session_open(G.h, name.c_str(), name.size(), &s) == 0);
  open_sessions[name] = s;
  return s;
}

void bs_latency_cleanup() {
  for (auto &kv : open_sessions) {
    hzshm_destroy(kv.second);  // the IMap goes too: the cluster stays small across runs
    hzshm_session_close(kv.second);
  }
  open_sessions.clear();
}

enum WOp { W_SET, W_DEL, W_DESTROY };

// One write op through the agent (agent=true) or direct on key index k.
static int wr(WOp op, bool agent, const std::string &map, uint64_t k, const std::vector<uint8_t> &val) {
  const char *key = bs_key(k);
  if (agent) {
    hzshm_session_t *s = session(map);
    if (op == W_SET) return hzshm_set(s, key, BU_KEYLEN, val.data(), val.size());
    if (op == W_DEL) return hzshm_del(s, key, BU_KEYLEN);
    return hzshm_destroy(s);
  }
  if (op == W_SET) return dc_set(G.dc, map.c_str(), key, BU_KEYLEN, val.data(), val.size());
  if (op == W_DEL) return dc_delete(G.dc, map.c_str(), key, BU_KEYLEN);
  return dc_destroy(G.dc, map.c_str());
}

// Reads key k back (through the same path) into *found / checks its value.
static int readback(bool agent, const std::string &map, uint64_t k, size_t vsize, int *found, int *ok) {
  std::vector<uint8_t> buf(vsize ? vsize : 1);
  size_t vlen = 0;
  int rc;
  if (agent) {
    rc = hzshm_get(session(map), bs_key(k), BU_KEYLEN, buf.data(), buf.size(), &vlen);
    *found = rc == 0;
    if (rc == HZSHM_ENOTFOUND) rc = 0;
  } else {
    rc = dc_get(G.dc, map.c_str(), bs_key(k), BU_KEYLEN, buf.data(), buf.size(), &vlen, found);
  }
  *ok = *found && bu_value_full_ok(buf.data(), vlen, k, vsize);
  return rc;
}

static void write_op(benchmark::State &st, WOp op, bool agent, size_t vsize) {
  static const char *opname[] = {"set", "del", "destroy"};
  std::string map = G.run + (agent ? "-w-" : "-wd-") + opname[op] + "-" + sz(vsize);
  size_t n = bs_n(op == W_DESTROY ? 300 : vsize > 4096 ? 300 : 1500);
  std::vector<uint64_t> v(n);
  std::vector<uint8_t> val(vsize);
  for (auto _ : st) {
    size_t errors = 0;
    uint64_t k = 0;
    for (size_t i = 0; i < n + 20; i++) {  // the first 20 warm up
      k = i % 1000;
      bu_value(val.data(), k, vsize);
      if (op != W_SET && wr(W_SET, agent, map, k, val) != 0) errors++;  // something to delete
      uint64_t t = bu_now_ns();
      int rc = wr(op, agent, map, k, val);
      uint64_t d = bu_now_ns() - t;
      if (i >= 20) v[i - 20] = d;
      if (rc != 0) errors++;
    }
    int found = 0, ok = 0;
    if (readback(agent, map, k, vsize, &found, &ok) != 0) errors++;
    if (op == W_SET ? !ok : found) errors++;  // set: the last value reads back; del/destroy: gone
    bs_report(st, std::string(opname[op]) + (agent ? "/hzshm/" : "/direct/") + sz(vsize), v, false, -1, errors);
  }
}

static void miss(benchmark::State &st, size_t vsize) {
  std::string map = G.run + "-miss-" + sz(vsize);
  hzshm_session_t *s = session(map);
  size_t n = bs_n(vsize > 4096 ? 200 : 1000);
  std::vector<uint64_t> v(n);
  std::vector<uint8_t> buf(vsize);
  for (auto _ : st) {
    size_t errors = 0;
    uint64_t first = G.next_key;
    G.next_key += n;
    BU_CHECK(dc_fill(G.dc, map.c_str(), first, n, vsize) == 0);  // in the cluster, not in this host's cache
    for (size_t i = 0; i < n; i++) {
      char key[BU_KEYLEN + 1];
      bu_key(key, first + i);
      size_t vlen = 0;
      uint64_t t = bu_now_ns();
      int rc = hzshm_get(s, key, BU_KEYLEN, buf.data(), vsize, &vlen);
      v[i] = bu_now_ns() - t;
      if (rc != 0 || !bu_value_full_ok(buf.data(), vlen, first + i, vsize)) errors++;
    }
    BU_CHECK(hzshm_destroy(s) == 0);  // keep the cluster small between repetitions
    bs_report(st, "miss_get/hzshm/" + sz(vsize), v, false, -1, errors);
  }
}

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu >= 0) {
    CPU_SET(cpu, &set);
  } else {
    for (int i = 0; i < CPU_SETSIZE; i++) CPU_SET(i, &set);
  }
  sched_setaffinity(0, sizeof set, &set);  // best effort: reported as measured
}

// mode 0: wherever the scheduler puts the two processes; 1: both on CPU 0;
// 2: parent on CPU 0, child on CPU 1.
static void uds_rtt(benchmark::State &st, int mode) {
  static const char *names[] = {"uds_rtt", "uds_rtt/same_core", "uds_rtt/cross_core"};
  size_t n = bs_n(20000);
  std::vector<uint64_t> v(n);
  for (auto _ : st) {
    if (mode) pin(0);
    int sv[2];
    BU_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fflush(nullptr);
    pid_t pid = fork();
    BU_CHECK(pid >= 0);
    if (pid == 0) {  // echo one byte until EOF
      if (mode) pin(mode == 1 ? 0 : 1);
      close(sv[0]);
      char c;
      while (read(sv[1], &c, 1) == 1)
        if (write(sv[1], &c, 1) != 1) break;
      _exit(0);
    }
    close(sv[1]);
    size_t errors = 0;
    for (size_t i = 0; i < n + 1000; i++) {  // the first 1000 warm up
      char c = (char)i, r = 0;
      uint64_t t = bu_now_ns();
      if (write(sv[0], &c, 1) != 1 || read(sv[0], &r, 1) != 1) errors++;
      uint64_t d = bu_now_ns() - t;
      if (r != c) errors++;
      if (i >= 1000) v[i - 1000] = d;
    }
    close(sv[0]);
    waitpid(pid, nullptr, 0);
    if (mode) pin(-1);
    bs_report(st, names[mode], v, false, -1, errors);
  }
}

void bs_register_latency() {
  bs_reg("uds_rtt", [](benchmark::State &st) { uds_rtt(st, 0); });
  if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
    bs_reg("uds_rtt/same_core", [](benchmark::State &st) { uds_rtt(st, 1); });
    bs_reg("uds_rtt/cross_core", [](benchmark::State &st) { uds_rtt(st, 2); });
  }
  for (size_t vs : kSizes) {
    bs_reg("hit_get/hzshm/" + sz(vs), [vs](benchmark::State &st) { hit(st, vs, false); });
    bs_reg("hit_has/hzshm/" + sz(vs), [vs](benchmark::State &st) { hit(st, vs, true); });
    bs_reg("get/direct/" + sz(vs), [vs](benchmark::State &st) { direct_read(st, vs, false); });
    bs_reg("contains/direct/" + sz(vs), [vs](benchmark::State &st) { direct_read(st, vs, true); });
    bs_reg("miss_get/hzshm/" + sz(vs), [vs](benchmark::State &st) { miss(st, vs); });
  }
  for (size_t vs : kSizes) {
    bs_reg("set/hzshm/" + sz(vs), [vs](benchmark::State &st) { write_op(st, W_SET, true, vs); });
    bs_reg("set/direct/" + sz(vs), [vs](benchmark::State &st) { write_op(st, W_SET, false, vs); });
  }
  bs_reg("del/hzshm/100", [](benchmark::State &st) { write_op(st, W_DEL, true, 100); });
  bs_reg("del/direct/100", [](benchmark::State &st) { write_op(st, W_DEL, false, 100); });
  bs_reg("destroy/hzshm/100", [](benchmark::State &st) { write_op(st, W_DESTROY, true, 100); });
  bs_reg("destroy/direct/100", [](benchmark::State &st) { write_op(st, W_DESTROY, false, 100); });
}
