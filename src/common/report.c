/* report.c - see report.h. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hzshm__agent_state_name(int32_t s) {
  static const char *const n[] = {"serving", "disconnected", "stopped", "dead"};
  return s >= 0 && s < 4 ? n[s] : "unknown";
}

const char *hzshm__cluster_state_name(int32_t s) {
  static const char *const n[] = {"connecting", "connected", "disconnected", "stopped"};
  return s >= 0 && s < 4 ? n[s] : "unknown";
}

int hzshm__health_verdict(const hzshm_stats_t *st, char *why, size_t cap) {
  if (st->agent_state == HZSHM_AGENT_DEAD) {
    snprintf(why, cap, "agent (pid %d) is dead or hung: heartbeat %llu ms old (bound %llu ms)", (int)st->agent_pid,
             (unsigned long long)st->heartbeat_age_ms, (unsigned long long)st->stale_after_ms);
    return 1;
  }
  if (st->agent_state == HZSHM_AGENT_STOPPED) {
    snprintf(why, cap, "agent (pid %d) has stopped", (int)st->agent_pid);
    return 1;
  }
  if (st->cluster_state != HZSHM_CLUSTER_CONNECTED) {
    snprintf(why, cap, "agent (pid %d) is not connected to its cluster (cluster_state: %s)", (int)st->agent_pid,
             hzshm__cluster_state_name(st->cluster_state));
    return 1;
  }
  if (st->agent_state != HZSHM_AGENT_SERVING) {
    snprintf(why, cap, "agent (pid %d) is not serving (agent_state: %s)", (int)st->agent_pid,
             hzshm__agent_state_name(st->agent_state));
    return 1;
  }
  snprintf(why, cap, "agent (pid %d) serving, connected, heartbeat %llu ms old", (int)st->agent_pid,
           (unsigned long long)st->heartbeat_age_ms);
  return 0;
}

void hzshm__hist_observe(hzshm__hist_t *h, double v) {
  for (int i = 0; i < HZSHM__HIST_BUCKETS; i++)
    if (v <= h->bounds[i]) {
      h->counts[i]++;
      break;
    }
  h->count++; /* above the last bound: only in +Inf (count) */
  h->sum += v;
}

typedef struct {
  char *buf;
  size_t cap, len;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL, o->len < o->cap ? o->cap - o->len : 0, fmt, ap);
  va_end(ap);
  if (n > 0) o->len += (size_t)n;
}

/* Label values: escape \, " and newline (exposition format). */
static void label(char *dst, size_t cap, const char *v) {
  size_t j = 0;
  for (; *v && j + 2 < cap; v++) {
    if (*v == '\\' || *v == '"' || *v == '\n') dst[j++] = '\\';
    dst[j++] = *v == '\n' ? 'n' : *v;
  }
  dst[j] = 0;
}

static void metric(out_t *o, const char *lab, const char *name, const char *type, const char *help, double v) {
  put(o, "# HELP %s %s\n# TYPE %s %s\n%s{cache=\"%s\"} %.17g\n", name, help, name, type, name, lab, v);
}

size_t hzshm__prom_render(char *buf, size_t cap, const char *cache, const hzshm_stats_t *st,
                          const hzshm__hist_t *hists, size_t nh) {
  out_t o = {buf, cap, 0};
  char lab[200];
  label(lab, sizeof lab, cache);
  char why[256];
  int bad = hzshm__health_verdict(st, why, sizeof why);
  metric(&o, lab, "hzshm_healthy", "gauge",
         "1 when the agent is alive (fresh heartbeat), serving and connected (as `hzshm health`)", bad ? 0 : 1);
  put(&o, "# HELP hzshm_agent_state The agent's state (1 for the current one).\n# TYPE hzshm_agent_state gauge\n");
  for (int32_t s = 0; s < 4; s++)
    put(&o, "hzshm_agent_state{cache=\"%s\",state=\"%s\"} %d\n", lab, hzshm__agent_state_name(s),
        st->agent_state == s);
  put(&o, "# HELP hzshm_cluster_state The agent's cluster connection (1 for the current one).\n"
          "# TYPE hzshm_cluster_state gauge\n");
  for (int32_t s = 0; s < 4; s++)
    put(&o, "hzshm_cluster_state{cache=\"%s\",state=\"%s\"} %d\n", lab, hzshm__cluster_state_name(s),
        st->cluster_state == s);
  metric(&o, lab, "hzshm_heartbeat_age_seconds", "gauge", "Age of the agent's last heartbeat.",
         (double)st->heartbeat_age_ms / 1e3);
  metric(&o, lab, "hzshm_stale_after_seconds", "gauge", "Heartbeat age at which readers fail closed.",
         (double)st->stale_after_ms / 1e3);
  metric(&o, lab, "hzshm_hits_total", "counter", "Reads served from shared memory.", (double)st->hits);
  metric(&o, lab, "hzshm_misses_total", "counter", "Reads not served from shared memory.", (double)st->misses);
  metric(&o, lab, "hzshm_entries", "gauge", "Entries in the segment.", (double)st->entries);
  metric(&o, lab, "hzshm_sessions", "gauge", "Sessions (IMaps) in the segment.", (double)st->sessions);
  metric(&o, lab, "hzshm_memory_used_bytes", "gauge", "Arena bytes in use.", (double)st->memory_used);
  metric(&o, lab, "hzshm_memory_limit_bytes", "gauge", "Arena size.", (double)st->memory_limit);
  metric(&o, lab, "hzshm_evictions_total", "counter", "Entries evicted for room.", (double)st->evictions);
  metric(&o, lab, "hzshm_expirations_total", "counter", "Entries whose local lifetime ended.",
         (double)st->expirations);
  metric(&o, lab, "hzshm_readers", "gauge", "Reader threads attached.", (double)st->readers);
  metric(&o, lab, "hzshm_invalidations_total", "counter", "Invalidation events applied.", (double)st->invalidations);
  metric(&o, lab, "hzshm_last_invalidation_lag_seconds", "gauge",
         "Last lag from a write's cluster ack to its own invalidation event.", (double)st->last_inval_lag_us / 1e6);
  metric(&o, lab, "hzshm_sessions_with_listeners", "gauge", "Sessions with an invalidation listener.",
         (double)st->listeners);
  metric(&o, lab, "hzshm_remote_gets_total", "counter", "Gets sent to the cluster for misses.",
         (double)st->remote_gets);
  metric(&o, lab, "hzshm_coalesced_misses_total", "counter", "Misses that joined an in-flight remote get.",
         (double)st->coalesced_misses);
  metric(&o, lab, "hzshm_fills_dropped_total", "counter", "Fills not cached because an invalidation raced them.",
         (double)st->fills_dropped);
  metric(&o, lab, "hzshm_stale_marks_total", "counter", "Partitions marked stale (repair).", (double)st->stale_marks);
  metric(&o, lab, "hzshm_agent_requests_total", "counter", "Local requests the agent answered.",
         (double)st->agent_requests);
  metric(&o, lab, "hzshm_bad_requests_total", "counter", "Malformed frames and refused peers.",
         (double)st->bad_requests);
  metric(&o, lab, "hzshm_unwatched_partitions", "gauge", "Partitions not cached now (no events from their owner).",
         (double)st->unwatched_partitions);
  metric(&o, lab, "hzshm_uncacheable_values_total", "counter",
         "Values too large for a slab: served, never cached.", (double)st->uncacheable_values);
  for (size_t i = 0; i < nh; i++) {
    const hzshm__hist_t *h = &hists[i];
    put(&o, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    uint64_t cum = 0;
    for (int b = 0; b < HZSHM__HIST_BUCKETS; b++) {
      cum += h->counts[b];
      put(&o, "%s_bucket{cache=\"%s\",le=\"%g\"} %llu\n", h->name, lab, h->bounds[b], (unsigned long long)cum);
    }
    put(&o, "%s_bucket{cache=\"%s\",le=\"+Inf\"} %llu\n%s_sum{cache=\"%s\"} %.9g\n%s_count{cache=\"%s\"} %llu\n",
        h->name, lab, (unsigned long long)h->count, h->name, lab, h->sum, h->name, lab,
        (unsigned long long)h->count);
  }
  return o.len;
}
