/* hzshm-demo - the multi-process demo run by tools/demo.
 *
 *   hzshm-demo -n NAME -m HOST:PORT [-c CLUSTER] [-w WORKERS] [-s SESSIONS] [-k KEYS] [-r ROUNDS]
 *
 * Writes KEYS keys into each of SESSIONS sessions (through the agent), warms
 * the member, the agent and this host up (WARM misses through the agent and
 * as many direct gets, not measured: a fresh member runs its get path
 * interpreted for the first thousand calls or so), then forks WORKERS
 * processes that each (1) read keys nobody on this host has read yet (misses:
 * agent + cluster; one worker at a time, so a miss is timed under the same
 * single-caller conditions as the direct get) and (2) all together read the
 * hot keys ROUNDS times (hits: shared memory), timing every call; then
 * measures a direct Hazelcast get through our C client (hzclient) for
 * comparison, and prints the figures. The store calls use only the public
 * API; hzclient is the baseline.
 */
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "hzc.h"
#include "hzshm.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, size_t n) {
  if (n == 0) return;
  qsort(v, n, sizeof *v, cmp);
  printf("  %-34s n=%-8zu p50=%9.3f us  p99=%9.3f us\n", what, n, v[n / 2] / 1000.0, v[n * 99 / 100] / 1000.0);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "hzshm-demo: %s: %s\n", what, hzshm_strerror(rc));
  exit(2);
}

typedef struct {
  const char *name;
  int sessions, keys, rounds, warm;
  sem_t *cold_turn; /* process-shared: one worker at a time in its cold phase */
} cfg_t;

static char cold_prefix[48];

/* Worker w: misses on its own slice of cold keys, then hits on hot keys. */
static void worker(const cfg_t *c, int w, uint64_t *miss, uint64_t *hit, size_t nhit) {
  hzshm_t *h;
  int rc = hzshm_open(c->name, NULL, &h);
  if (rc) die("open", rc);
  char sid[64], key[64], buf[256];
  size_t vlen;
  while (sem_wait(c->cold_turn) != 0) {
  }
  for (int k = 0; k < c->keys; k++) { /* cold: session "cold-w", keys written by the parent */
    snprintf(sid, sizeof sid, "%s-%d", cold_prefix, w);
    hzshm_session_t *s;
    if ((rc = hzshm_session_open(h, sid, strlen(sid), &s))) die("session", rc);
    snprintf(key, sizeof key, "key-%d", k);
    uint64_t t = now_ns();
    rc = hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen);
    miss[k] = now_ns() - t;
    if (rc) die("cold get", rc);
    hzshm_session_close(s);
  }
  sem_post(c->cold_turn);
  hzshm_session_t **ss = calloc((size_t)c->sessions, sizeof *ss);
  for (int i = 0; i < c->sessions; i++) {
    snprintf(sid, sizeof sid, "demo-hot-%d", i);
    if ((rc = hzshm_session_open(h, sid, strlen(sid), &ss[i]))) die("session", rc);
  }
  size_t n = 0;
  for (int r = 0; r < c->rounds; r++) {
    for (int i = 0; i < c->sessions; i++) {
      for (int k = 0; k < c->keys; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        uint64_t t = now_ns();
        rc = k % 8 == 7 ? hzshm_has(ss[i], key, strlen(key)) : hzshm_get(ss[i], key, strlen(key), buf, sizeof buf, &vlen);
        uint64_t d = now_ns() - t;
        if (rc) die("hot get", rc);
        if (n < nhit) hit[n++] = d;
      }
    }
  }
  for (int i = 0; i < c->sessions; i++) hzshm_session_close(ss[i]);
  free(ss);
  hzshm_close(h);
}

typedef struct {
  int done;
  int status;
} wait_t;

static void got(hzc_client_t *c, const hzc_result_t *r, void *ud) {
  wait_t *w = ud;
  w->status = r->status;
  w->done = 1;
}
static void connected(hzc_client_t *c, int status, void *ud) {
  wait_t *w = ud;
  w->status = status;
  w->done = 1;
}

typedef struct {
  uv_loop_t loop;
  hzc_client_t *c;
} hz_t;

static int hz_open(hz_t *z, const char *members, const char *cluster) {
  uv_loop_init(&z->loop);
  const char *addrs[1] = {members};
  hzc_config_t cfg = {.cluster_name = cluster, .addrs = addrs, .naddrs = 1, .smart = 1};
  if (hzc_client_new(&z->loop, &cfg, &z->c) != 0) return -1;
  wait_t w = {0};
  hzc_client_connect(z->c, connected, &w);
  hzc_run_until(&z->loop, &w.done, 30000);
  return w.done && w.status == 0 ? 0 : -1;
}

static int hz_set(hz_t *z, const char *map, const char *key, const char *val) {
  wait_t g = {0};
  if (hzc_map_set(z->c, map, key, strlen(key), val, strlen(val), -1, got, &g) != 0) return -1;
  hzc_run_until(&z->loop, &g.done, 10000);
  return g.done && g.status == 0 ? 0 : -1;
}

static size_t hz_direct(hz_t *z, const char *map, int keys, uint64_t *lat, size_t max) {
  size_t n = 0;
  char key[64];
  for (size_t i = 0; i < max; i++) {
    snprintf(key, sizeof key, "key-%d", (int)(i % (size_t)keys));
    wait_t g = {0};
    uint64_t t = now_ns();
    if (hzc_map_get(z->c, map, key, strlen(key), got, &g) != 0) break;
    hzc_run_until(&z->loop, &g.done, 10000);
    if (!g.done || g.status != 0) break;
    lat[n++] = now_ns() - t;
  }
  return n;
}

/* Warm-up, not measured: WARM keys written straight into the cluster, each
 * read once through the agent (a real miss) and once directly. */
static void warm_up(hzshm_t *h, hz_t *z, int warm) {
  char sid[64], key[64], buf[256];
  size_t vlen;
  snprintf(sid, sizeof sid, "demo-warm-%d", (int)getpid());
  hzshm_session_t *s;
  int rc = hzshm_session_open(h, sid, strlen(sid), &s);
  if (rc) die("session", rc);
  for (int k = 0; k < warm; k++) {
    snprintf(key, sizeof key, "key-%d", k);
    if (hz_set(z, sid, key, "warm-up value") != 0) die("warm-up set", HZSHM_EREMOTE);
    if ((rc = hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen))) die("warm-up get", rc);
  }
  uint64_t ignored[64];
  for (int k = 0; k < warm; k += 64) hz_direct(z, sid, warm, ignored, 64);
  if ((rc = hzshm_destroy(s))) die("warm-up destroy", rc);
  hzshm_session_close(s);
}

static void closed(void *ud) { (void)ud; }

static void hz_close(hz_t *z) {
  hzc_client_close(z->c, closed, NULL);
  uv_run(&z->loop, UV_RUN_DEFAULT);
  uv_loop_close(&z->loop);
}

int main(int argc, char **argv) {
  cfg_t c = {.sessions = 4, .keys = 64, .rounds = 200, .warm = 2000};
  const char *members = NULL, *cluster = "dev";
  int workers = 4, ch;
  while ((ch = getopt(argc, argv, "n:m:c:w:s:k:r:W:")) != -1) {
    switch (ch) {
      case 'n': c.name = optarg; break;
      case 'm': members = optarg; break;
      case 'c': cluster = optarg; break;
      case 'w': workers = atoi(optarg); break;
      case 's': c.sessions = atoi(optarg); break;
      case 'k': c.keys = atoi(optarg); break;
      case 'r': c.rounds = atoi(optarg); break;
      case 'W': c.warm = atoi(optarg); break;
      default: fprintf(stderr, "usage: hzshm-demo -n NAME -m HOST:PORT [-c CLUSTER] [-w N] [-s N] [-k N] [-r N] [-W WARM]\n"); return 2;
    }
  }
  if (!c.name || !members || workers < 1 || c.sessions < 1 || c.keys < 1 || c.rounds < 1 || c.warm < 0) {
    fprintf(stderr, "hzshm-demo: -n and -m are required\n");
    return 2;
  }
  hzshm_t *h;
  int rc = hzshm_open(c.name, NULL, &h);
  if (rc) die("open", rc);
  hz_t z;
  if (hz_open(&z, members, cluster) != 0) die("direct Hazelcast connection", HZSHM_EAGENT);
  char sid[64], key[64], val[160];
  snprintf(cold_prefix, sizeof cold_prefix, "demo-cold-%d", (int)getpid());
  for (int i = 0; i < c.sessions + workers; i++) {
    int cold = i >= c.sessions;
    if (!cold) snprintf(sid, sizeof sid, "demo-hot-%d", i);
    else snprintf(sid, sizeof sid, "%s-%d", cold_prefix, i - c.sessions);
    hzshm_session_t *s;
    if ((rc = hzshm_session_open(h, sid, strlen(sid), &s))) die("session", rc);
    for (int k = 0; k < c.keys; k++) {
      snprintf(key, sizeof key, "key-%d", k);
      snprintf(val, sizeof val, "value of %s/%s", sid, key);
      /* Hot keys through the cache (write-through); cold keys straight into
       * the cluster, so that this host has never seen them. */
      if (cold ? hz_set(&z, sid, key, val) != 0 : (rc = hzshm_set(s, key, strlen(key), val, strlen(val))) != 0)
        die("set", cold ? HZSHM_EREMOTE : rc);
    }
    hzshm_session_close(s);
  }
  uint64_t tw = now_ns();
  warm_up(h, &z, c.warm);
  double warm_secs = (now_ns() - tw) / 1e9;
  hzshm_stats_t st0;
  hzshm_stats(h, &st0);
  size_t nhit = (size_t)c.rounds * (size_t)c.sessions * (size_t)c.keys;
  size_t per = (size_t)c.keys + nhit;
  uint64_t *lat = mmap(NULL, per * (size_t)workers * sizeof *lat, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (lat == MAP_FAILED) die("mmap", -1);
  c.cold_turn = mmap(NULL, sizeof *c.cold_turn, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (c.cold_turn == MAP_FAILED || sem_init(c.cold_turn, 1, 1) != 0) die("semaphore", -1);
  uint64_t t0 = now_ns();
  for (int w = 0; w < workers; w++) {
    pid_t p = fork();
    if (p == 0) {
      worker(&c, w, lat + per * (size_t)w, lat + per * (size_t)w + c.keys, nhit);
      _exit(0);
    }
  }
  int ok = 1;
  for (int w = 0; w < workers; w++) {
    int status;
    wait(&status);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  double secs = (now_ns() - t0) / 1e9;
  if (!ok) die("a worker failed", -1);
  hzshm_stats_t st1;
  hzshm_stats(h, &st1);
  uint64_t *miss = malloc((size_t)workers * (size_t)c.keys * sizeof *miss);
  uint64_t *hit = malloc((size_t)workers * nhit * sizeof *hit);
  for (int w = 0; w < workers; w++) {
    memcpy(miss + (size_t)w * c.keys, lat + per * (size_t)w, (size_t)c.keys * sizeof *miss);
    memcpy(hit + (size_t)w * nhit, lat + per * (size_t)w + c.keys, nhit * sizeof *hit);
  }
  size_t ndirect = 2000;
  uint64_t *dl = malloc(ndirect * sizeof *dl);
  ndirect = hz_direct(&z, "demo-hot-0", c.keys, dl, ndirect);
  hz_close(&z);

  printf("hzshm demo: %d worker processes, %d hot sessions x %d keys, %.2f s (after %d warm-up misses and direct gets, %.2f s)\n",
         workers, c.sessions, c.keys, secs, c.warm, warm_secs);
  report("hit (get/has from shared memory)", hit, (size_t)workers * nhit);
  report("miss (agent + cluster, serial)", miss, (size_t)workers * c.keys);
  report("direct Hazelcast get (hzclient)", dl, ndirect);
  printf("  hits %llu, misses %llu, remote gets by the agent %llu, coalesced %llu\n",
         (unsigned long long)(st1.hits - st0.hits), (unsigned long long)(st1.misses - st0.misses),
         (unsigned long long)(st1.remote_gets - st0.remote_gets),
         (unsigned long long)(st1.coalesced_misses - st0.coalesced_misses));
  printf("  segment: %llu entries, %llu / %llu bytes used\n", (unsigned long long)st1.entries,
         (unsigned long long)st1.memory_used, (unsigned long long)st1.memory_limit);
  free(miss);
  free(hit);
  free(dl);
  munmap(lat, per * (size_t)workers * sizeof *lat);
  sem_destroy(c.cold_turn);
  munmap(c.cold_turn, sizeof *c.cold_turn);
  hzshm_close(h);
  return 0;
}
