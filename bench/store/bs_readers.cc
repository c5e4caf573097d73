// bs_readers.cc - aggregate hit throughput of 1, 2 and 4 reader processes
// while a separate process causes a steady stream of invalidations:
//   readers/hzshm/N   N fork()ed processes doing hzshm_get on the 100 B hot
//                     keys; the invalidator sets other keys of the same IMap
//                     with our direct client (the agent receives and applies
//                     each invalidation event) and reads each back through
//                     libhzshm (a miss the agent fills), so the agent keeps
//                     writing the segment the readers read.
//   readers/rwlock/N  the same shape on a shared-memory table guarded by one
//                     process-shared rwlock (rwtable.h); the writer process
//                     puts other keys at the same rate.
//
// Cross-process control block ordering: children publish readiness with a
// release fetch_add on `ready` (paired with the parent's acquire load in
// all_ready); the parent stores stop_ns (relaxed) and then releases `go`
// (paired with each child's acquire load of `go`), so a child that saw go
// also sees stop_ns. Results are written by the children before _exit and
// read by the parent after waitpid(), which orders them.
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "bs.h"
#include "rwtable.h"

static const size_t kMaxReaders = 8;
static const double kInvalPerSec = 1000.0;  // the invalidation stream's target rate
static const size_t kInvalKeys = 500;       // disjoint from the readers' hot keys

struct Ctl {
  std::atomic<int> ready;
  std::atomic<int> go;
  std::atomic<uint64_t> stop_ns;
  struct {
    uint64_t ops, bad, other, cpu_ns;
  } r[kMaxReaders];
  uint64_t inval_ops, inval_bad;
};

static void wait_go(Ctl *c) {
  c->ready.fetch_add(1, std::memory_order_release);  // paired with the acquire load in all_ready
  while (!c->go.load(std::memory_order_acquire)) {   // paired with the release store in run_readers
  }
}

static int all_ready(void *ud) {
  auto *p = static_cast<std::pair<Ctl *, int> *>(ud);
  return p->first->ready.load(std::memory_order_acquire) == p->second;  // paired with wait_go's release
}

// Runs get(k, buf, &vlen) over the 1000 hot keys until the stop time and
// records what it saw in slot idx, then exits the child.
static uint64_t cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

template <class F>
static void reader_loop(Ctl *c, int idx, size_t nkeys, F get) {
  wait_go(c);
  uint64_t stop = c->stop_ns.load(std::memory_order_relaxed);  // ordered by the acquire of go
  uint64_t ops = 0, bad = 0, other = 0, cpu0 = cpu_ns();
  uint8_t buf[100];
  for (size_t i = (size_t)idx * 37;;) {
    for (int j = 0; j < 1024; j++, i++) {
      size_t k = i % nkeys, vlen = 0;
      int rc = get(k, buf, &vlen);
      if (rc == 0 && bu_value_ok(buf, vlen, k, 100)) ops++;
      else if (rc == 0) bad++;
      else other++;
    }
    if (bu_now_ns() >= stop) break;
  }
  c->r[idx].cpu_ns = cpu_ns() - cpu0;
  c->r[idx].ops = ops;
  c->r[idx].bad = bad;
  c->r[idx].other = other;
  _exit(0);
}

static void reader_hzshm(Ctl *c, int idx) {
  hzshm_t *h = nullptr;
  hzshm_session_t *s = nullptr;
  BsSession &hot = bs_hot(100);
  if (hzshm_open(G.agent.name, nullptr, &h) != 0 ||
      hzshm_session_open(h, hot.name.c_str(), hot.name.size(), &s) != 0)
    _exit(3);
  reader_loop(c, idx, hot.nkeys, [s](size_t k, uint8_t *buf, size_t *vlen) {
    return hzshm_get(s, bs_key(k), BU_KEYLEN, buf, 100, vlen);
  });
}

static void reader_rwlock(Ctl *c, int idx, rwt_t *t) {
  reader_loop(c, idx, 1000, [t](size_t k, uint8_t *buf, size_t *vlen) {
    return rwt_get(t, bs_key(k), BU_KEYLEN, buf, 100, vlen);
  });
}

// Paces op() at kInvalPerSec until stop (sleeping between ops is pacing of a
// load generator, not synchronization).
template <class F>
static void paced(Ctl *c, F op) {
  wait_go(c);
  uint64_t stop = c->stop_ns.load(std::memory_order_relaxed);  // ordered by the acquire of go
  uint64_t t0 = bu_now_ns(), ops = 0, bad = 0;
  for (uint64_t j = 0;; j++) {
    uint64_t now = bu_now_ns();
    if (now >= stop) break;
    uint64_t due = t0 + (uint64_t)((double)j * 1e9 / kInvalPerSec);
    if (due > now) {
      struct timespec d = {(time_t)((due - now) / 1000000000u), (long)((due - now) % 1000000000u)};
      nanosleep(&d, nullptr);
    }
    if (op(1000 + j % kInvalKeys)) ops++;
    else bad++;
  }
  c->inval_ops = ops;
  c->inval_bad = bad;
  _exit(0);
}

static void inval_hzshm(Ctl *c) {
  dclient_t *dc = nullptr;
  hzshm_t *h = nullptr;
  hzshm_session_t *s = nullptr;
  BsSession &hot = bs_hot(100);
  if (dc_open(G.members.c_str(), G.cluster.c_str(), &dc) != 0 || hzshm_open(G.agent.name, nullptr, &h) != 0 ||
      hzshm_session_open(h, hot.name.c_str(), hot.name.size(), &s) != 0)
    _exit(3);
  paced(c, [&](uint64_t k) {
    uint8_t val[100], buf[100];
    size_t vlen = 0;
    bu_value(val, k, sizeof val);
    if (dc_set(dc, hot.name.c_str(), bs_key(k), BU_KEYLEN, val, sizeof val) != 0) return false;
    return hzshm_get(s, bs_key(k), BU_KEYLEN, buf, sizeof buf, &vlen) == 0 && bu_value_ok(buf, vlen, k, 100);
  });
}

static void inval_rwlock(Ctl *c, rwt_t *t) {
  paced(c, [&](uint64_t k) {
    uint8_t val[100];
    bu_value(val, k, sizeof val);
    return rwt_put(t, bs_key(k), BU_KEYLEN, val, sizeof val) == 0;
  });
}

static void run_readers(benchmark::State &st, bool rw, int nreaders) {
  double dur_s = 2.0 * G.scale < 0.3 ? 0.3 : 2.0 * G.scale;
  for (auto _ : st) {
    Ctl *c = static_cast<Ctl *>(mmap(nullptr, sizeof(Ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    BU_CHECK(c != MAP_FAILED);
    new (c) Ctl();
    rwt_t *t = nullptr;
    if (rw) {
      t = rwt_create(4096, 100);
      BU_CHECK(t != nullptr);
      uint8_t val[100];
      for (uint64_t k = 0; k < 1000; k++) {
        bu_value(val, k, sizeof val);
        BU_CHECK(rwt_put(t, bs_key(k), BU_KEYLEN, val, sizeof val) == 0);
      }
    }
    hzshm_stats_t a{}, b{};
    BU_CHECK(hzshm_stats(G.h, &a) == 0);
    fflush(nullptr);
    std::vector<pid_t> pids;
    for (int i = 0; i <= nreaders; i++) {
      pid_t pid = fork();
      BU_CHECK(pid >= 0);
      if (pid == 0) {
        if (i == nreaders) rw ? inval_rwlock(c, t) : inval_hzshm(c);
        else rw ? reader_rwlock(c, i, t) : reader_hzshm(c, i);
      }
      pids.push_back(pid);
    }
    std::pair<Ctl *, int> want(c, nreaders + 1);
    BU_CHECK(bu_wait(all_ready, &want, 60000));
    uint64_t start = bu_now_ns();
    c->stop_ns.store(start + (uint64_t)(dur_s * 1e9), std::memory_order_relaxed);  // published by go below
    c->go.store(1, std::memory_order_release);  // paired with the acquire load in wait_go
    int failed = 0;
    for (pid_t p : pids) {
      int status = 0;
      waitpid(p, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed = 1;
    }
    double elapsed = (double)(bu_now_ns() - start) / 1e9;
    BU_CHECK(hzshm_stats(G.h, &b) == 0);
    uint64_t ops = 0, bad = 0, other = 0, cpu = 0;
    for (int i = 0; i < nreaders; i++) {
      ops += c->r[i].ops, bad += c->r[i].bad, other += c->r[i].other, cpu += c->r[i].cpu_ns;
    }
    // CPU actually given to the readers: on a shared 2-vCPU VM the readers
    // compete with the agent, the member, the writer and other work, so
    // hits per reader CPU-second shows the read path's scaling apart from
    // how much CPU the scheduler handed out.
    st.counters["reader_cpus"] = (double)cpu / 1e9 / elapsed;
    st.counters["hits_per_cpu_s"] = cpu ? (double)ops / ((double)cpu / 1e9) : 0;
    double ops_s = (double)ops / elapsed;
    st.counters["ops_per_s"] = ops_s;
    st.counters["per_reader_ops_per_s"] = ops_s / nreaders;
    st.counters["inval_per_s"] = (double)c->inval_ops / elapsed;
    st.counters["inval_errors"] = (double)c->inval_bad;
    st.counters["not_hit"] = (double)other;  // misses / fail-closed answers among the readers' gets
    st.counters["errors"] = (double)bad;
    if (!rw) st.counters["agent_invalidations"] = (double)(b.invalidations - a.invalidations);
    st.SetIterationTime(ops ? elapsed / (double)ops : 1.0);
    if (t) rwt_destroy(t);
    munmap(c, sizeof(Ctl));
    if (failed) bs_fail(st, "a reader or the invalidator failed");
    else if (bad) bs_fail(st, "readers read wrong values");
  }
}

void bs_register_readers() {
  for (int n : {1, 2, 4}) {
    bs_reg("readers/hzshm/" + std::to_string(n), [n](benchmark::State &st) { run_readers(st, false, n); });
    bs_reg("readers/rwlock/" + std::to_string(n), [n](benchmark::State &st) { run_readers(st, true, n); });
  }
}
