/* stats.c - hzshm_stats_t from a segment mapping (reader or the agent's
 * writer handle): libhzshm's hzshm_stats and the agent's /metrics read it
 * the same way. */
#include "stats.h"

#include <string.h>

#include "ipc_counters.h"

int hzshm__stats_read(hzshm__shm_t *m, hzshm_stats_t *st) {
  int rc;
  hzshm__shm_stats_t ss;
  rc = hzshm__shm_stats(m, &ss);
  if (rc != 0) return rc;
  memset(st, 0, sizeof *st);
  st->hits = ss.hits;
  st->misses = ss.misses;
  st->entries = ss.entries;
  st->sessions = ss.sessions;
  st->memory_used = ss.memory_used;
  st->memory_limit = ss.memory_limit;
  st->evictions = ss.evictions;
  st->readers = ss.readers;
  st->agent_pid = ss.writer_pid;
  st->agent_state = ss.state;
  st->heartbeat_age_ms = ss.heartbeat_age_ns / 1000000u;
  st->stale_after_ms = ss.stale_after_ns / 1000000u;
  st->slot_busy = ss.slot_busy;
  st->expirations = ss.expirations;
  st->cluster_state = (int32_t)hzshm__shm_agent_counter(m, HZSHM__AC_CLUSTER_STATE);
  /* A killed or hung agent leaves its last state behind: the heartbeat says
   * the truth (the bound readers fail closed at). */
  if (ss.state != HZSHM_SHM_STOPPED && ss.heartbeat_age_ns > ss.stale_after_ns) {
    st->agent_state = HZSHM_AGENT_DEAD;
    st->cluster_state = HZSHM_CLUSTER_UNKNOWN;
  }
  st->invalidations = hzshm__shm_agent_counter(m, HZSHM__AC_INVALIDATIONS);
  st->last_inval_lag_us = hzshm__shm_agent_counter(m, HZSHM__AC_INVAL_LAG_US);
  st->listeners = hzshm__shm_agent_counter(m, HZSHM__AC_LISTENERS);
  st->remote_gets = hzshm__shm_agent_counter(m, HZSHM__AC_REMOTE_GETS);
  st->coalesced_misses = hzshm__shm_agent_counter(m, HZSHM__AC_COALESCED);
  st->fills_dropped = hzshm__shm_agent_counter(m, HZSHM__AC_FILLS_DROPPED);
  st->stale_marks = hzshm__shm_agent_counter(m, HZSHM__AC_STALE_MARKS);
  st->agent_requests = hzshm__shm_agent_counter(m, HZSHM__AC_REQUESTS);
  st->bad_requests = hzshm__shm_agent_counter(m, HZSHM__AC_BAD_REQUESTS);
  st->unwatched_partitions = hzshm__shm_agent_counter(m, HZSHM__AC_UNWATCHED);
  st->uncacheable_values = hzshm__shm_agent_counter(m, HZSHM__AC_UNCACHEABLE);
  return 0;
}
