/* propagation.c - bench_propagation: how long after a write on one host
 * another host's segment stops serving the old value.
 *
 *   bench_propagation --members H:P[,H:P] [--cluster dev] [--samples 200]
 *                     [--parallel 1] [--timeout-ms 5000] [--label NAME]
 *                     [--json FILE]
 *
 * Two hzshm-agent processes (two cache names = two simulated hosts A and B)
 * on one cluster. Per round, `parallel` keys of one session: A sets the old
 * values, B reads them (miss -> fill: B now caches the old values), then A
 * sets new values one after another and B spins over the keys until each one
 * no longer reads old. A key's latency is measured from the moment A's set
 * returned (the write is acknowledged by the cluster: what a user waits for)
 * and, as a second figure, from the moment A's set was called. With the
 * member's invalidation batching on (Hazelcast's default, 10 s flush) run few
 * samples and many in parallel (e.g. --samples 20 --parallel 20).
 *
 * Every value read is checked: B must read either the old or the new value,
 * anything else fails the run (exit 1). A key B still reads old after the
 * timeout counts as lost (reported; exit 1 if any).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "butil.h"
#include "hzshm.h"

#define VSIZE 100

typedef struct {
  const char *members, *cluster, *label, *json;
  unsigned samples, parallel, timeout_ms;
} opts_t;

static int parse(int argc, char **argv, opts_t *o) {
  static const struct option lo[] = {{"members", 1, 0, 'm'}, {"cluster", 1, 0, 'c'}, {"samples", 1, 0, 'n'},
                                     {"parallel", 1, 0, 'p'}, {"timeout-ms", 1, 0, 't'}, {"label", 1, 0, 'l'},
                                     {"json", 1, 0, 'j'},     {0, 0, 0, 0}};
  *o = (opts_t){.cluster = "dev", .label = "propagation", .samples = 200, .parallel = 1, .timeout_ms = 5000};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
      case 'm': o->members = optarg; break;
      case 'c': o->cluster = optarg; break;
      case 'n': o->samples = (unsigned)atoi(optarg); break;
      case 'p': o->parallel = (unsigned)atoi(optarg); break;
      case 't': o->timeout_ms = (unsigned)atoi(optarg); break;
      case 'l': o->label = optarg; break;
      case 'j': o->json = optarg; break;
      default: return -1;
    }
  }
  if (!o->members || o->samples == 0 || o->parallel == 0 || o->parallel > 1000 || o->timeout_ms == 0) return -1;
  return 0;
}

/* One value slot per key and version: old = bu_value(idx, VSIZE) and new =
 * bu_value(idx + 1000000, VSIZE) (a different byte pattern). */
static int which(const uint8_t *v, size_t len, uint64_t idx) {
  if (bu_value_full_ok(v, len, idx, VSIZE)) return 0;
  if (bu_value_full_ok(v, len, idx + 1000000, VSIZE)) return 1;
  return -1;
}

static void write_json(const opts_t *o, uint64_t *ack, uint64_t *start, size_t n, unsigned lost) {
  FILE *f = o->json ? fopen(o->json, "w") : NULL;
  if (o->json && f == NULL) {
    perror(o->json);
    return;
  }
  bu_sort(ack, n);
  bu_sort(start, n);
  double k = 1e-3; /* ns -> us */
  FILE *outs[2] = {stdout, f};
  for (int w = 0; w < 2; w++) {
    FILE *x = outs[w];
    if (x == NULL) continue;
    fprintf(x,
            "{\"label\":\"%s\",\"samples\":%zu,\"lost\":%u,\"parallel\":%u,\"p50_us\":%.1f,\"p90_us\":%.1f,"
            "\"p99_us\":%.1f,\"min_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"from_call_p50_us\":%.1f,"
            "\"from_call_p99_us\":%.1f",
            o->label, n, lost, o->parallel, bu_quantile_sorted(ack, n, 0.5) * k, bu_quantile_sorted(ack, n, 0.9) * k,
            bu_quantile_sorted(ack, n, 0.99) * k, n ? ack[0] * k : 0, n ? ack[n - 1] * k : 0, bu_mean(ack, n) * k,
            bu_quantile_sorted(start, n, 0.5) * k, bu_quantile_sorted(start, n, 0.99) * k);
    if (x == f) {
      fprintf(x, ",\"from_ack_us\":[");
      for (size_t i = 0; i < n; i++) fprintf(x, "%s%.1f", i ? "," : "", ack[i] * k);
      fprintf(x, "]");
    }
    fprintf(x, "}\n");
  }
  if (f) fclose(f);
}

int main(int argc, char **argv) {
  opts_t o;
  if (parse(argc, argv, &o) != 0) {
    fprintf(stderr, "usage: bench_propagation --members H:P[,..] [--cluster C] [--samples N] [--parallel P]\n"
                    "       [--timeout-ms T] [--label NAME] [--json FILE]\n");
    return 2;
  }
  int rc = 1;
  char na[64], nb[64], sid[64];
  snprintf(na, sizeof na, "prop%d-a", (int)getpid());
  snprintf(nb, sizeof nb, "prop%d-b", (int)getpid());
  snprintf(sid, sizeof sid, "prop%d-%s", (int)getpid(), o.label);
  const char *log = getenv("HZSHM_BENCH_AGENT_LOG");
  bu_agent_t A = {0}, B = {0};
  hzshm_t *ha = NULL, *hb = NULL;
  hzshm_session_t *sa = NULL, *sb = NULL;
  uint64_t *ack = calloc(o.samples, sizeof *ack), *start = calloc(o.samples, sizeof *start);
  uint64_t *t_call = calloc(o.parallel, sizeof *t_call), *t_ack = calloc(o.parallel, sizeof *t_ack);
  uint8_t *done = calloc(o.parallel, 1);
  size_t n = 0;
  unsigned lost = 0, bad = 0;
  if (!ack || !start || !t_call || !t_ack || !done) goto out;
  if (bu_agent_start(&A, HZSHM_AGENT_BIN, na, o.members, o.cluster, "64m", log) != 0 ||
      bu_agent_start(&B, HZSHM_AGENT_BIN, nb, o.members, o.cluster, "64m", log) != 0)
    goto out;
  if (hzshm_open(na, NULL, &ha) || hzshm_open(nb, NULL, &hb) || hzshm_session_open(ha, sid, strlen(sid), &sa) ||
      hzshm_session_open(hb, sid, strlen(sid), &sb)) {
    fprintf(stderr, "bench_propagation: cannot open the caches\n");
    goto out;
  }
  uint8_t val[VSIZE], buf[VSIZE];
  for (unsigned first = 0; first < o.samples && !bad; first += o.parallel) {
    unsigned m = o.samples - first < o.parallel ? o.samples - first : o.parallel;
    char key[BU_KEYLEN + 1];
    for (unsigned j = 0; j < m && !bad; j++) { /* old values, cached on B */
      uint64_t idx = first + j;
      bu_key(key, idx);
      bu_value(val, idx, VSIZE);
      size_t vlen = 0;
      int e = hzshm_set(sa, key, BU_KEYLEN, val, VSIZE);
      if (e == 0) e = hzshm_get(sb, key, BU_KEYLEN, buf, VSIZE, &vlen);
      if (e != 0 || which(buf, vlen, idx) != 0) {
        fprintf(stderr, "bench_propagation: preparing key %llu: %s\n", (unsigned long long)idx, hzshm_strerror(e));
        bad++;
      }
      done[j] = 0;
    }
    for (unsigned j = 0; j < m && !bad; j++) { /* the writes on A */
      bu_key(key, first + j);
      bu_value(val, first + j + 1000000, VSIZE);
      t_call[j] = bu_now_ns();
      int e = hzshm_set(sa, key, BU_KEYLEN, val, VSIZE);
      t_ack[j] = bu_now_ns();
      if (e != 0) {
        fprintf(stderr, "bench_propagation: set: %s\n", hzshm_strerror(e));
        bad++;
      }
    }
    unsigned left = bad ? 0 : m;
    uint64_t deadline = bu_now_ns() + (uint64_t)o.timeout_ms * 1000000u;
    while (left > 0 && !bad) { /* spin on B until no key reads old */
      for (unsigned j = 0; j < m; j++) {
        if (done[j]) continue;
        bu_key(key, first + j);
        size_t vlen = 0;
        int e = hzshm_get(sb, key, BU_KEYLEN, buf, VSIZE, &vlen);
        int w = e == 0 ? which(buf, vlen, first + j) : -1;
        uint64_t now = bu_now_ns();
        if (w < 0) {
          fprintf(stderr, "bench_propagation: B read a wrong value (%s)\n", hzshm_strerror(e));
          bad++;
          break;
        }
        if (w == 1) {
          done[j] = 1;
          left--;
          ack[n] = now > t_ack[j] ? now - t_ack[j] : 0;
          start[n] = now - t_call[j];
          n++;
        }
      }
      if (left && bu_now_ns() > deadline) {
        lost += left;
        left = 0;
      }
    }
  }
  write_json(&o, ack, start, n, lost);
  hzshm_destroy(sa);
  rc = bad || lost ? 1 : 0;
out:
  if (sa) hzshm_session_close(sa);
  if (sb) hzshm_session_close(sb);
  hzshm_close(ha);
  hzshm_close(hb);
  bu_agent_stop(&A);
  bu_agent_stop(&B);
  free(ack);
  free(start);
  free(t_call);
  free(t_ack);
  free(done);
  return rc;
}
