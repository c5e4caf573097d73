/* butil.c - see butil.h. Not concurrent: every helper runs on the calling
 * thread only (benchmark processes are single-threaded or fork()ed). */
#define _GNU_SOURCE
#include "butil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hzshm.h"

uint64_t bu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bu_tsc_per_ns(void) {
  static double cached;
  if (cached > 0) return cached;
  uint64_t n0 = bu_now_ns(), t0 = bu_tsc();
  while (bu_now_ns() - n0 < 50000000u) { /* busy 50 ms: calibration, not synchronization */
  }
  uint64_t n1 = bu_now_ns(), t1 = bu_tsc();
  cached = (double)(t1 - t0) / (double)(n1 - n0);
  return cached;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

void bu_sort(uint64_t *v, size_t n) { qsort(v, n, sizeof *v, cmp_u64); }

uint64_t bu_quantile_sorted(const uint64_t *v, size_t n, double q) {
  if (n == 0) return 0;
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return v[i < n ? i : n - 1];
}

double bu_mean(const uint64_t *v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)v[i];
  return n ? s / (double)n : 0;
}

uint64_t bu_tsc_overhead(void) {
  static uint64_t cached = UINT64_MAX;
  if (cached != UINT64_MAX) return cached;
  enum { N = 20001 };
  uint64_t *v = malloc(N * sizeof *v);
  BU_CHECK(v != NULL);
  for (size_t i = 0; i < N; i++) {
    uint64_t t0 = bu_tsc();
    uint64_t t1 = bu_tsc();
    v[i] = t1 - t0;
  }
  bu_sort(v, N);
  cached = v[N / 2];
  free(v);
  return cached;
}

void bu_dist_dump(const char *scenario, const char *unit, const uint64_t *sorted, size_t n, double scale) {
  const char *path = getenv("HZSHM_BENCH_DIST");
  if (path == NULL || *path == 0 || n == 0) return;
  FILE *f = fopen(path, "a");
  if (f == NULL) return;
  fprintf(f, "{\"scenario\":\"%s\",\"unit\":\"%s\",\"n\":%zu,\"q\":[", scenario, unit, n);
  for (int i = 0; i <= 99; i++) fprintf(f, "%s%.3f", i ? "," : "", i / 100.0);
  fprintf(f, ",0.999,1.0],\"v\":[");
  for (int i = 0; i <= 99; i++) fprintf(f, "%s%.1f", i ? "," : "", bu_quantile_sorted(sorted, n, i / 100.0) * scale);
  fprintf(f, ",%.1f,%.1f]}\n", bu_quantile_sorted(sorted, n, 0.999) * scale, sorted[n - 1] * scale);
  fclose(f);
}

void bu_key(char out[BU_KEYLEN + 1], uint64_t i) {
  snprintf(out, BU_KEYLEN + 1, "k%015llu", (unsigned long long)(i % 1000000000000000ull));
}

void bu_value(uint8_t *out, uint64_t i, size_t n) {
  for (size_t j = 0; j < n; j++) out[j] = (uint8_t)(i * 31 + j * 7 + n);
}

int bu_value_full_ok(const uint8_t *v, size_t len, uint64_t i, size_t n) {
  if (len != n) return 0;
  for (size_t j = 0; j < n; j++)
    if (v[j] != (uint8_t)(i * 31 + j * 7 + n)) return 0;
  return 1;
}

/* splitmix64: deterministic seeds for the permutation and the draws. */
static uint64_t mix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint32_t *bu_zipf_draws(uint32_t nkeys, double s, size_t n, uint64_t seed) {
  double *cdf = malloc(nkeys * sizeof *cdf);
  uint32_t *perm = malloc(nkeys * sizeof *perm);
  uint32_t *out = malloc(n * sizeof *out);
  BU_CHECK(cdf && perm && out);
  double sum = 0;
  for (uint32_t k = 0; k < nkeys; k++) {
    sum += 1.0 / pow((double)k + 1.0, s);
    cdf[k] = sum;
  }
  for (uint32_t k = 0; k < nkeys; k++) perm[k] = k;
  uint64_t st = seed;
  for (uint32_t k = nkeys - 1; k > 0; k--) { /* Fisher-Yates */
    uint32_t j = (uint32_t)(mix(&st) % (k + 1));
    uint32_t t = perm[k];
    perm[k] = perm[j];
    perm[j] = t;
  }
  for (size_t i = 0; i < n; i++) {
    double u = (double)(mix(&st) >> 11) / 9007199254740992.0 * sum;
    uint32_t lo = 0, hi = nkeys - 1; /* first k with cdf[k] >= u */
    while (lo < hi) {
      uint32_t mid = lo + (hi - lo) / 2;
      if (cdf[mid] >= u) hi = mid;
      else lo = mid + 1;
    }
    out[i] = perm[lo];
  }
  free(cdf);
  free(perm);
  return out;
}

static int agent_ready(void *ud) {
  bu_agent_t *a = ud;
  int st;
  if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
    fprintf(stderr, "bench: agent %s exited during start-up\n", a->name);
    a->pid = 0;
    return 1;
  }
  hzshm_t *h;
  if (hzshm_open(a->name, NULL, &h) != 0) return 0;
  hzshm_stats_t s;
  int ok = hzshm_stats(h, &s) == 0 && s.agent_pid == a->pid && s.cluster_state == HZSHM_CLUSTER_CONNECTED && s.agent_state == HZSHM_AGENT_SERVING;
  hzshm_close(h);
  return ok;
}

void *bu_map_segdir(const char *tag, size_t bytes) {
  const char *dir = getenv("HZSHM_SHM_DIR");
  char path[4096];
  snprintf(path, sizeof path, "%s/hzshm-bench.%d.%s", dir && *dir ? dir : "/dev/shm", (int)getpid(), tag);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return NULL;
  void *p = MAP_FAILED;
  if (ftruncate(fd, (off_t)bytes) == 0) p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = errno;
  unlink(path);
  close(fd);
  errno = e;
  return p == MAP_FAILED ? NULL : p;
}

int bu_agent_start(bu_agent_t *a, const char *bin, const char *name, const char *members, const char *cluster,
                   const char *memory, const char *log) {
  return bu_agent_start_with(a, bin, name, members, cluster, memory, log, NULL);
}

int bu_agent_start_with(bu_agent_t *a, const char *bin, const char *name, const char *members, const char *cluster,
                        const char *memory, const char *log, const char *const *extra) {
  const char *argv[32] = {"hzshm-agent", "-n", NULL, "-m", members, "-c", cluster, "--socket", NULL, "--memory",
                          memory, "--unlink-on-exit"};
  size_t argc = 12;
  while (extra && *extra && argc + 1 < sizeof argv / sizeof *argv) argv[argc++] = *extra++;
  if (extra && *extra) return -1; /* more options than argv holds */
  memset(a, 0, sizeof *a);
  snprintf(a->name, sizeof a->name, "%s", name);
  snprintf(a->sock, sizeof a->sock, "/tmp/hzshm-bench-%s.sock", name);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (log) {
      int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) dup2(fd, 2);
    }
    /* The agent must not outlive a benchmark that died without stopping it,
     * nor keep its parent's descriptors: an inherited flock on
     * /tmp/hzshm-members.lock held every member test on the machine. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    close_range(3, ~0u, 0);
    argv[2] = a->name;
    argv[8] = a->sock;
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  a->pid = pid;
  if (!bu_wait(agent_ready, a, 60000) || a->pid == 0) {
    fprintf(stderr, "bench: agent %s not serving within 60 s\n", name);
    if (a->pid) bu_agent_stop(a);
    return -1;
  }
  return 0;
}

typedef struct {
  pid_t pid;
} reap_t;

static int reaped(void *ud) {
  reap_t *r = ud;
  return waitpid(r->pid, NULL, WNOHANG) == r->pid;
}

void bu_agent_stop(bu_agent_t *a) {
  if (a->pid <= 0) return;
  kill(a->pid, SIGTERM);
  reap_t r = {a->pid};
  if (!bu_wait(reaped, &r, 30000)) {
    kill(a->pid, SIGKILL);
    waitpid(a->pid, NULL, 0);
  }
  a->pid = 0;
}

int bu_wait(int (*fn)(void *ud), void *ud, uint32_t timeout_ms) {
  uint64_t t0 = bu_now_ns();
  for (;;) {
    if (fn(ud)) return 1;
    if (bu_now_ns() - t0 > (uint64_t)timeout_ms * 1000000u) return 0;
    struct timespec d = {0, 200000}; /* poll interval of a condition wait, not synchronization */
    nanosleep(&d, NULL);
  }
}

void bu_cpu_model(char *buf, size_t cap) {
  snprintf(buf, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) return;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *p = strchr(line, ':');
      if (p) {
        p++;
        while (*p == ' ') p++;
        p[strcspn(p, "\n")] = 0;
        snprintf(buf, cap, "%s", p);
      }
      break;
    }
  }
  fclose(f);
}
