/* ipc_counters.h - indices of the counters the agent publishes in the segment
 * (hzshm__shm_w_agent_counter) and libhzshm reads for hzshm_stats / `hzshm stat`.
 * One list, shared by both sides. Indices < HZSHM_SHM_AGENT_COUNTERS (32). */
#ifndef HZSHM_IPC_COUNTERS_H
#define HZSHM_IPC_COUNTERS_H

enum {
  HZSHM__AC_INVALIDATIONS = 0,  /* invalidation events applied (key or clear) */
  HZSHM__AC_INVAL_LAG_US = 1,   /* last invalidation lag: own write echo arrival - the write's cluster ack (us) */
  HZSHM__AC_CLUSTER_STATE = 2,  /* 0 connecting, 1 connected, 2 disconnected, 3 stopped */
  HZSHM__AC_LISTENERS = 3,      /* sessions with a live invalidation listener */
  HZSHM__AC_REMOTE_GETS = 4,    /* gets sent to the cluster for misses */
  HZSHM__AC_COALESCED = 5,      /* misses that joined an in-flight remote get */
  HZSHM__AC_REQUESTS = 6,       /* local requests answered */
  HZSHM__AC_BAD_REQUESTS = 7,   /* malformed frames / refused peers */
  HZSHM__AC_FILLS_DROPPED = 8,  /* fills not cached because an invalidation raced them */
  HZSHM__AC_STALE_MARKS = 9,    /* partitions marked stale (gaps, UUID change, repair) */
  HZSHM__AC_WRITES = 10,        /* set/del/destroy acknowledged by the cluster */
  HZSHM__AC_CONNECTIONS = 11,   /* open local connections */
  HZSHM__AC_DESTROYS_SEEN = 12, /* sessions purged by distributed-object destroy events */
  HZSHM__AC_RECONCILES = 13,    /* metadata reconciliation rounds */
  HZSHM__AC_UNWATCHED = 14,     /* partitions whose owner sends us no events now (not cached) */
  HZSHM__AC_UNCACHEABLE = 15,   /* values too large for a slab: answered, never cached */
  HZSHM__AC_COUNT_ = 16
};

#endif
