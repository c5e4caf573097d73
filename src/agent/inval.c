/* inval.c - applying the cluster's changes to the segment: near-cache
 * invalidation events, distributed-object destroy events, and the repair
 * model (per (map, partition) sequence tracking, partition UUIDs, periodic
 * reconciliation against the members' invalidation metadata).
 *
 * Tolerance is strict (0 missed invalidations): any gap in a (map, partition)
 * sequence, a partition UUID change, or a member sequence ahead of ours at
 * reconciliation marks the partition stale (hzshm__shm_w_partition_stale),
 * which turns every entry of that partition filled before now into a miss.
 * False positives (an event still in flight at reconciliation) only cost
 * misses; a missed change is never served.
 *
 * Our own writes: an event whose source is our client UUID is the echo of a
 * write this agent already applied on its acknowledgement (requests.c), so it
 * does not delete the key (that would undo a fresh value); it still cancels a
 * concurrent fill and still advances the sequence.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static int uuid_zero(const hzc_uuid_t *u) {
  static const hzc_uuid_t z;
  return memcmp(u, &z, sizeof z) == 0;
}

static void mark_stale(agent_t *a, int32_t p) {
  if (p < 0 || (uint32_t)p >= a->partitions) return;
  hzshm__shm_w_partition_stale(a->shm, (uint32_t)p);
  hzshm__agent_count(a, HZSHM__AC_STALE_MARKS, 1);
}

static void track_uuid(agent_t *a, int32_t p, const hzc_uuid_t *u) {
  if (p < 0 || (uint32_t)p >= a->partitions || uuid_zero(u)) return;
  hzc_uuid_t *known = &a->puuid[p];
  if (!uuid_zero(known) && memcmp(known, u, sizeof *u) != 0) {
    /* The partition's owner lost its history (restart/migration): every
     * sequence we knew for it is meaningless. */
    mark_stale(a, p);
  }
  *known = *u;
}

static void track_seq(agent_t *a, session_t *s, int32_t p, int64_t seq) {
  if (s->seq == NULL || p < 0 || (uint32_t)p >= a->partitions) return;
  int64_t last = s->seq[p];
  if (last >= 0 && seq > last + 1) mark_stale(a, p); /* gap: some event never arrived */
  if (seq > last) s->seq[p] = seq;
}

void hzshm__inval_cb(hzc_client_t *hc, const char *map, const hzc_invalidation_t *inv, void *ud) {
  agent_t *a = ud;
  session_t *s = hzshm__session_get(a, map, strlen(map), 0);
  if (s == NULL || s->lsn == LSN_NONE) return;
  track_uuid(a, inv->partition, &inv->partition_uuid);
  track_seq(a, s, inv->partition, inv->sequence);
  hzshm__agent_count(a, HZSHM__AC_INVALIDATIONS, 1);
  if (inv->key == NULL) { /* the whole map was cleared */
    hzshm__session_purge(s, 1);
    return;
  }
  if (!inv->key_is_string) {
    /* A key we cannot name (another type): we never cache such keys, but be
     * safe and clear the session. */
    hzshm__session_purge(s, 1);
    return;
  }
  int own = memcmp(&inv->source, &a->my_uuid, sizeof a->my_uuid) == 0;
  if (own) {
    uint64_t *ack = &a->ack_us[hzshm__agent_lag_slot(map, inv->key, inv->klen)];
    uint64_t now = uv_hrtime() / 1000u;
    if (*ack && now >= *ack) hzshm__agent_set(a, HZSHM__AC_INVAL_LAG_US, now - *ack);
    *ack = 0; /* an echo that beat the ack leaves no sample */
  }
  resv_t *r = hzshm__resv_get(s, inv->key, inv->klen, 0);
  if (r) {
    r->fill_canceled = 1;
    if (!own) r->write_canceled = 1;
  }
  if (!own && s->has_ref) hzshm__shm_w_del(a->shm, &s->ref, inv->key, inv->klen);
}

void hzshm__object_cb(hzc_client_t *hc, const char *service, const char *name, int destroyed,
                      const hzc_uuid_t *source, void *ud) {
  agent_t *a = ud;
  if (!destroyed || strcmp(service, "hz:impl:mapService") != 0) return;
  session_t *s = hzshm__session_get(a, name, strlen(name), 0);
  if (s == NULL) return;
  hzshm__agent_count(a, HZSHM__AC_DESTROYS_SEEN, 1);
  hzshm__session_purge(s, 0);
}

void hzshm__inval_all_stale(agent_t *a) {
  for (uint32_t p = 0; p < a->partitions; p++) hzshm__shm_w_partition_stale(a->shm, p);
  hzshm__agent_count(a, HZSHM__AC_STALE_MARKS, a->partitions);
}

/* ---- reconciliation ---- */

typedef struct {
  agent_t *a;
  char **names;
  size_t n;
} recon_t;

static void recon_seq(hzc_client_t *hc, const char *map, int32_t p, int64_t seq, void *ud) {
  recon_t *x = ud;
  agent_t *a = x->a;
  session_t *s = hzshm__session_get(a, map, strlen(map), 0);
  if (s == NULL || s->seq == NULL || s->lsn != LSN_ACTIVE || p < 0 || (uint32_t)p >= a->partitions) return;
  int64_t last = s->seq[p];
  if (last < 0) {
    s->seq[p] = seq; /* first baseline */
  } else if (seq > last) {
    mark_stale(a, p); /* the member generated invalidations we have not seen */
    s->seq[p] = seq;
  }
}

static void recon_uuid(hzc_client_t *hc, int32_t p, const hzc_uuid_t *u, void *ud) {
  recon_t *x = ud;
  track_uuid(x->a, p, u);
}

static void recon_done(hzc_client_t *hc, const hzc_result_t *r, void *ud) {
  recon_t *x = ud;
  x->a->reconciling = 0;
  hzshm__agent_count(x->a, HZSHM__AC_RECONCILES, 1);
  /* Logged when the outcome changes, not every round. */
  if (r->status != x->a->last_reconcile_status && !x->a->stopping) {
    if (r->status != 0)
      hzshm__agent_log("metadata reconciliation failed: %s (logged once until it changes)", hzshm_strerror(r->status));
    else
      hzshm__agent_log("metadata reconciliation works again");
  }
  x->a->last_reconcile_status = r->status;
  for (size_t i = 0; i < x->n; i++) free(x->names[i]);
  free(x->names);
  free(x);
}

typedef struct {
  recon_t *x;
  size_t cap;
} collect_t;

static void collect(hzshm__tnode_t *n, void *ud) {
  collect_t *c = ud;
  session_t *s = (session_t *)n;
  if (s->lsn != LSN_ACTIVE || c->x->n >= c->cap) return;
  c->x->names[c->x->n] = strdup(s->name);
  if (c->x->names[c->x->n]) c->x->n++;
}

void hzshm__inval_reconcile(agent_t *a) {
  if (a->reconciling || a->cluster_state != 1 || a->ctr[HZSHM__AC_LISTENERS] == 0) return;
  recon_t *x = calloc(1, sizeof *x);
  if (x == NULL) return;
  x->a = a;
  size_t cap = a->sessions.n;
  x->names = calloc(cap ? cap : 1, sizeof *x->names);
  if (x->names == NULL) {
    free(x);
    return;
  }
  collect_t c = {x, cap};
  hzshm__table_each(&a->sessions, collect, &c);
  a->reconciling = 1;
  int rc = hzc_fetch_invalidation_metadata(a->hz, (const char *const *)x->names, x->n, recon_seq, recon_uuid,
                                           recon_done, x);
  if (rc != 0) {
    hzc_result_t r = {.status = rc};
    recon_done(a->hz, &r, x);
  }
}
