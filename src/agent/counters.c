/* counters.c - the agent's counters (indices in src/common/ipc_counters.h),
 * published in the segment for `hzshm stat` and /metrics. A leaf: it calls
 * only the segment, the histogram and the log.
 *
 * Invalidation lag: the ack time of our recent writes is kept by hash(map,
 * key); when the write's own invalidation (echo) arrives, the time since is
 * counter HZSHM__AC_INVAL_LAG_US (and the histogram of metrics.c). A slot
 * collision only mixes two samples; an echo that beat its ack leaves none. */
#include <string.h>

#include "agent.h"

void counter_add(agent_t *a, unsigned idx, int64_t delta) {
  a->stats.ctr[idx] += (uint64_t)delta;
  if (a->shm) hzshm__shm_w_agent_counter(a->shm, idx, a->stats.ctr[idx]);
}

void counter_set(agent_t *a, unsigned idx, uint64_t v) {
  if (idx == HZSHM__AC_INVAL_LAG_US) hzshm__hist_observe(&a->stats.hist[1], (double)v / 1e6); /* metrics.c */
  a->stats.ctr[idx] = v;
  if (a->shm) hzshm__shm_w_agent_counter(a->shm, idx, v);
}

void counters_publish(agent_t *a) {
  a->stats.ctr[HZSHM__AC_CLUSTER_STATE] = (uint64_t)a->cluster.state;
  for (unsigned i = 0; i < HZSHM__AC_COUNT_; i++) hzshm__shm_w_agent_counter(a->shm, i, a->stats.ctr[i]);
}

void counter_uncacheable(agent_t *a, size_t bytes) {
  counter_add(a, HZSHM__AC_UNCACHEABLE, 1);
  if (a->stats.ctr[HZSHM__AC_UNCACHEABLE] == 1)
    log_at(LVL_WARN,
           "an entry of %zu bytes is too large for this segment's slabs: served, never cached "
           "(counted in hzshm_uncacheable_values_total; a larger --memory gives larger slabs)",
           bytes);
}

static uint64_t *lag_slot(agent_t *a, const char *map, const void *key, size_t klen) {
  size_t n = sizeof a->stats.ack_us / sizeof a->stats.ack_us[0];
  return &a->stats.ack_us[(table_hash(map, strlen(map)) * 31u + table_hash(key, klen)) % n];
}

void lag_acked(agent_t *a, const char *map, const void *key, size_t klen) {
  *lag_slot(a, map, key, klen) = now_us();
}

void lag_echoed(agent_t *a, const char *map, const void *key, size_t klen) {
  uint64_t *ack = lag_slot(a, map, key, klen);
  uint64_t now = now_us();
  if (*ack && now >= *ack) counter_set(a, HZSHM__AC_INVAL_LAG_US, now - *ack);
  *ack = 0;
}
