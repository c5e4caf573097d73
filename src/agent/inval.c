/* inval.c - applying the cluster's changes to the segment: near-cache
 * invalidation events, distributed-object destroy events, and the repair
 * model (per (map, partition) sequence baselines keyed by the partition UUID,
 * reconciliation against the members' invalidation metadata).
 *
 * Tolerance is strict (0 missed invalidations): any gap in a (map, partition)
 * sequence, a partition UUID change, or a member sequence ahead of ours at
 * reconciliation marks the partition stale (hzshm__shm_w_partition_stale),
 * which turns every entry of that partition filled before now into a miss.
 * False positives (an event still in flight at reconciliation) only cost
 * misses; a missed change is never served beyond the next reconciliation.
 *
 * Baselines (the model of Hazelcast's MetaDataContainer/RepairingHandler):
 * - a->cluster.puuid[p] is the partition UUID every session's s->seq[p] counts under
 *   (Hazelcast's partition UUID is per partition, shared by all maps). A new
 *   UUID (event or reconciliation) marks p stale and restarts every known
 *   s->seq[p] at 0 (the member restarted the sequence or lost its history).
 * - s->seq[p] < 0: baseline unknown. It is established by a metadata fetch
 *   for the session right after its listener registration is acknowledged and
 *   BEFORE its parked operations run (inval_baseline): nothing of a
 *   session is cached, and no fill takes its stamp, before that. Adopting a
 *   baseline later (a partition no member reported, or a fetch that failed,
 *   or after a cluster change) on an active session marks the partition stale,
 *   so a fill stamped before the adoption is a miss; and while a partition's
 *   baseline is unknown nothing of it is cached (inval_cacheable).
 * - Baselines are NEVER forgotten on a member-connection loss or a reconnect
 *   to the same cluster: an invalidation missed while a member was
 *   unreachable, or before our listener registration on a new connection was
 *   active, shows as a gap at the next event or reconciliation. Only a
 *   cluster change (different cluster id, or another partition count) forgets
 *   them (the cache is cleared).
 * - Reconciliation runs every --reconcile-ms and soon (RECON_SOON_MS) after
 *   any change of the member list, partition table or connections; it asks
 *   every current data member (hzc_fetch_invalidation_metadata iterates the
 *   member list of the moment, so a member replaced by a new UUID is asked).
 *   Up to RECON_MAX_INFLIGHT rounds overlap: a member that died but is
 *   still listed holds its round until the invocation timeout, while the
 *   other members' answers are applied as they arrive.
 *
 * Destroys (issue 11, hole 1). A member drops every listener registration of
 * a map when the map is destroyed (docs/PROTOCOL-NOTES.md section 5), and
 * publishes a DESTROYED event only if some client created a proxy of it
 * (section 11; the agent creates none). What it always does first, on every
 * member, is publish one clear-all (null key) to every registration of the
 * map it is about to drop (Hazelcast's Invalidator.destroy precedes
 * deregisterAllListeners). So a clear-all is treated as a possible destroy:
 * the session is purged and its listener dropped and registered again with
 * fresh baselines (session_relisten); a genuine clear costs one
 * re-registration. A registration renewed before another member ran its
 * part of the destroy gets that member's clear-all too, and is renewed again.
 * A member sequence below our baseline is a reset (the map's sequences
 * restart at 1 after a destroy): the partition is marked stale and the
 * sequence adopted. A reconciliation that finds one while nothing changed
 * the session's baselines since the round was sent (s->seq_changes; else our
 * events may simply have overtaken the answer) renews the listener as well:
 * we missed the destroy's clear-all.
 *
 * Lost registrations (issue 11, review of hole 1). A registration renewed
 * after member 1's clear-all can reach member 2 between member 2's clear-all
 * publish and its deregistration: member 2 drops it without a clear-all, and
 * our listener for member 2's partitions silently does not exist. What shows
 * it: a periodic round finds a member sequence ahead of every event we got
 * for a partition (a "suspect"), and no event of that partition arrives for
 * HZSHM__EVENT_WAIT_MS after it (while our registration there lives, the
 * member sends one event per sequence step, in order, within its batching
 * period). A later round, sent at least that long after the suspect was
 * found, that still finds the member at or ahead of it renews the listener
 * (session_relisten: purge, register again, fresh baselines), exactly
 * as after a clear-all. Not evidence (the suspect is voided or never made):
 * any event of the partition (it proves the registration delivering it), a
 * change of the partition's watching connection or UUID since the round
 * before the finding (events before a registration on a new connection was
 * active, or lost with the old one, or a restarted baseline: one-time gaps
 * the stale marks cover), a new registration of the session (suspects are
 * forgotten with the old one). A false conviction (an event delayed longer
 * than the wait) costs one renewal of that session, at most one per wait;
 * until a conviction every round marks a suspect partition stale, so an
 * entry is never served more than --reconcile-ms after the write it missed.
 * The rule needs the member's sequence to run ahead, which a member does only
 * while some registration of the map exists on it; when the lost one was the
 * only one there, the evidence is that member's clear-all on the registration
 * the renewal superseded, which is therefore kept listening for a while
 * (sessions.c, "Renewals and retired registrations"): a clear-all on a
 * retired registration renews again, coalesced.
 *
 * Our own writes: an event whose source is our client UUID and that is the
 * expected echo of a write this agent acknowledged (and applied on that
 * acknowledgement, requests.c) does not delete the key (that would undo a
 * fresh value); it still cancels a concurrent fill and still advances the
 * sequence. Any other own event (a write that timed out and was applied
 * later) is applied like a foreign one (fill.c, resv_own_echo).
 *
 * Single loop thread (agent.h): no atomics here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

static int uuid_zero(const hzc_uuid_t *u) {
  static const hzc_uuid_t z;
  return memcmp(u, &z, sizeof z) == 0;
}

void inval_mark_stale(agent_t *a, int32_t p) {
  if (p < 0 || (uint32_t)p >= a->cluster.partitions) return;
  hzshm__shm_w_partition_stale(a->shm, (uint32_t)p);
  counter_add(a, HZSHM__AC_STALE_MARKS, 1);
}

typedef struct {
  agent_t *a;
  int32_t p;
} restart_t;

#define HZSHM__EVENT_WAIT_MS 15000u /* member batching delays events up to 10 s (its default flush period) */

void inval_partition_changed(agent_t *a, uint32_t p) {
  if (p < a->cluster.partitions) a->recon.pchange_round[p] = a->recon.round_ids;
}

void inval_forget_suspects(session_t *s) { s->nsuspects = 0; }

static suspect_t *suspect_find(session_t *s, int32_t p) {
  for (uint32_t i = 0; i < s->nsuspects; i++)
    if (s->suspects[i].p == p) return &s->suspects[i];
  return NULL;
}

static void suspect_drop(session_t *s, suspect_t *v) { *v = s->suspects[--s->nsuspects]; }

/* An event of p arrived: the registration delivering p's events exists. */
static void heard(session_t *s, int32_t p) {
  suspect_t *v = s->nsuspects ? suspect_find(s, p) : NULL;
  if (v) suspect_drop(s, v);
}

static void restart_seq(tnode_t *n, void *ud) {
  restart_t *x = ud;
  session_t *s = (session_t *)n;
  if (s->seq && s->seq[x->p] >= 0) {
    s->seq[x->p] = 0;
    s->seq_changes++;
  }
}

static void track_uuid(agent_t *a, int32_t p, const hzc_uuid_t *u) {
  if (p < 0 || (uint32_t)p >= a->cluster.partitions || uuid_zero(u)) return;
  hzc_uuid_t *known = &a->cluster.puuid[p];
  if (uuid_zero(known)) { /* the sequences known so far count under this UUID */
    *known = *u;
    return;
  }
  if (memcmp(known, u, sizeof *u) == 0) return;
  /* The partition's owner lost its history (restart/migration/promotion):
   * every sequence we knew for it is meaningless. Like Hazelcast's
   * checkOrRepairUuid, the known baselines restart at 0 under the new UUID
   * (conservative: any later sequence > 1 marks the partition stale again). */
  inval_mark_stale(a, p);
  *known = *u;
  inval_partition_changed(a, (uint32_t)p);
  restart_t x = {a, p};
  table_each(&a->sessions, restart_seq, &x);
}

/* Adopts seq as the baseline of an unknown (session, partition). On an active
 * session a fill may already hold a stamp taken while the baseline was unknown:
 * the stale mark turns such a fill into a miss. */
static void adopt(agent_t *a, session_t *s, int32_t p, int64_t seq) {
  if (s->lsn == LSN_ACTIVE) inval_mark_stale(a, p);
  s->seq[p] = seq;
  s->seq_changes++;
}

static void track_seq(agent_t *a, session_t *s, int32_t p, int64_t seq) {
  if (s->seq == NULL || p < 0 || (uint32_t)p >= a->cluster.partitions) return;
  int64_t last = s->seq[p];
  if (last < 0) {
    adopt(a, s, p, seq);
    return;
  }
  if (seq > last + 1) inval_mark_stale(a, p); /* gap: some event never arrived */
  if (seq < last) inval_mark_stale(a, p);     /* reset (see the top): adopt it */
  if (seq != last) s->seq[p] = seq;
  s->seq_changes++;
}

int inval_cacheable(const session_t *s, uint32_t part) {
  agent_t *a = s->a;
  if (s->seq == NULL || part >= a->cluster.partitions || s->seq[part] < 0) return 0;
  /* Watched, and by the connection whose change was already applied (marked stale). */
  int w = hzc_partition_watch(a->hz, part);
  return w != 0 && w == a->watch.conn[part];
}

void inval_cb(hzc_client_t *hc, const char *map, const hzc_invalidation_t *inv, void *ud) {
  lreg_t *g = ud;
  agent_t *a = g->a;
#ifdef HZSHM_AGENT_TEST_SEAMS
  if (inv->key == NULL && seam_hold_clear(g, map, inv)) return; /* test-only build: delivered later */
#endif
  session_t *s = session_get(a, map, strlen(map), 0);
  if (s == NULL || s->lsn == LSN_NONE) return; /* no registration: the next one is sent after this */
  if (g->old) {
    /* A retired registration (sessions.c, the top): its clear-all may be a
     * member's part of a destroy that dropped the registration superseding
     * it; its key events are the current registration's business. */
    if (inv->key != NULL) return;
    counter_add(a, HZSHM__AC_INVALIDATIONS, 1);
    log_info("session %s: a clear-all on a superseded registration (a destroy may have dropped the "
             "current one): listener renewed", s->name);
    session_relisten(s);
    return;
  }
#ifdef HZSHM_AGENT_TEST_SEAMS
  if (seam_drop_inval(inv)) return;                   /* test-only build: as if lost */
  if (inv->key == NULL && seam_drop_clear()) return; /* test-only build: as if lost */
  if (inv->key == NULL) seam_clear_seen(s);
  else if (seam_lose(s, inv)) return; /* test-only build: as if our registration were gone */
#endif
  heard(s, inv->partition);
  track_uuid(a, inv->partition, &inv->partition_uuid);
  track_seq(a, s, inv->partition, inv->sequence);
  counter_add(a, HZSHM__AC_INVALIDATIONS, 1);
  if (inv->key == NULL) { /* the whole map was cleared, or destroyed: see the top */
    session_relisten(s);
    return;
  }
  if (!inv->key_is_string) {
    /* A key we cannot name (another type): we never cache such keys, but be
     * safe and clear the session. */
    session_purge(s, 1);
    return;
  }
  int own = memcmp(&inv->source, &a->cluster.my_uuid, sizeof a->cluster.my_uuid) == 0;
  if (own) lag_echoed(a, map, inv->key, inv->klen);
  resv_t *r = resv_get(s, inv->key, inv->klen, 0);
  /* Skipped only as the expected echo of an acknowledged write (fill.c). */
  if (own) own = r != NULL && resv_own_echo(r);
  if (r) {
    r->fill_canceled = 1;
    if (!own) r->write_canceled = 1;
  }
  if (!own && s->has_ref) hzshm__shm_w_del(a->shm, &s->ref, inv->key, inv->klen);
  if (r) resv_maybe_free(r); /* it may have held only the echo just consumed */
}

void inval_object_cb(hzc_client_t *hc, const char *service, const char *name, int destroyed,
                     const hzc_uuid_t *source, void *ud) {
  agent_t *a = ud;
  if (!destroyed || strcmp(service, "hz:impl:mapService") != 0) return;
  session_t *s = session_get(a, name, strlen(name), 0);
  if (s == NULL) return;
  counter_add(a, HZSHM__AC_DESTROYS_SEEN, 1);
#ifdef HZSHM_AGENT_TEST_SEAMS
  if (seam_drop_destroyed()) return; /* test-only build: as for a map nobody made a proxy of */
  seam_clear_seen(s); /* a destroy: its clear-all may come too late to be seen */
#endif
  session_relisten(s);
}

void inval_all_stale(agent_t *a) {
  for (uint32_t p = 0; p < a->cluster.partitions; p++) hzshm__shm_w_partition_stale(a->shm, p);
  counter_add(a, HZSHM__AC_STALE_MARKS, a->cluster.partitions);
}

/* ---- reconciliation and initial baselines ---- */

#define RECON_MAX_INFLIGHT 3

typedef struct {
  agent_t *a;
  int init;      /* 1: the initial baseline fetch of one session (names[0]) */
  uint32_t gen;  /* init: the session's listener generation it is for */
  uint32_t round; /* periodic: its number (session_t.round_id) */
  uint64_t sent_ms; /* periodic: when it was sent */
  char **names;
  size_t n;
} recon_t;

static void recon_free(recon_t *x) {
  for (size_t i = 0; i < x->n; i++) free(x->names[i]);
  free(x->names);
  free(x);
}

/* A periodic round's answer for (s, p), the member at or ahead of our
 * baseline (ahead: of it). See "Lost registrations" at the top. */
static void lost_check(recon_t *x, session_t *s, int32_t p, int ahead) {
  agent_t *a = s->a;
  suspect_t *v = s->nsuspects ? suspect_find(s, p) : NULL;
  /* Changed since the round before the finding: the gap may be a one-time loss. */
  if (v && (v->watch != a->watch.conn[p] || v->round <= a->recon.pchange_round[p] + 1)) {
    suspect_drop(s, v);
    v = NULL;
  }
  if (v == NULL) {
    if (!ahead || a->watch.conn[p] == 0 || x->round <= a->recon.pchange_round[p] + 1) return;
    if (s->nsuspects == s->capsuspects) {
      uint32_t cap = s->capsuspects ? s->capsuspects * 2 : 4;
      suspect_t *n = realloc(s->suspects, sizeof *n * cap);
      if (n == NULL) return; /* no evidence kept: the stale marks still bound it */
      s->suspects = n;
      s->capsuspects = cap;
    }
    s->suspects[s->nsuspects++] = (suspect_t){p, a->watch.conn[p], x->round, now_ms()};
    return;
  }
  /* Sent before the wait was over: an event may still be on its way. */
  if (x->sent_ms < v->since_ms + HZSHM__EVENT_WAIT_MS) return;
  log_info("session %s: partition %d's member sequence ahead of every invalidation we got for %llu ms: "
           "our registration there is gone, listener renewed",
           s->name, (int)p, (unsigned long long)(x->sent_ms - v->since_ms));
  session_relisten(s);
}

static void recon_seq(hzc_client_t *hc, const char *map, int32_t p, int64_t seq, void *ud) {
  recon_t *x = ud;
  agent_t *a = x->a;
  session_t *s = session_get(a, map, strlen(map), 0);
  if (s == NULL || s->seq == NULL || p < 0 || (uint32_t)p >= a->cluster.partitions) return;
  if (x->init) {
    /* Nothing of the session is cached yet: set, do not repair. An event
     * that arrived since the registration may already be ahead. */
    if (s->lsn == LSN_PENDING && s->lgen == x->gen && seq > s->seq[p]) {
      s->seq[p] = seq;
      s->seq_changes++;
    }
    return;
  }
  if (s->lsn != LSN_ACTIVE) return;
  int64_t last = s->seq[p];
  /* Nothing changed our baselines since this round collected the session:
   * no event or other answer can explain a member sequence below ours. */
  int quiet = s->round_id == x->round && s->seq_changes == s->round_changes;
  if (last < 0) {
    adopt(a, s, p, seq);
  } else if (seq > last) {
    inval_mark_stale(a, p); /* the member generated invalidations we have not seen */
    s->seq[p] = seq;
    s->seq_changes++;
    lost_check(x, s, p, 1);
  } else if (seq == last) {
    lost_check(x, s, p, 0);
  } else if (seq < last) {
    /* A reset (the map's sequences restart at 1 after a destroy): stale, adopted. */
    inval_mark_stale(a, p);
    s->seq[p] = seq;
    s->seq_changes++;
    if (quiet) {
      /* Not an answer overtaken by our events: the clear-all of a destroy
       * was missed, so our registration is probably gone too. */
      log_info("session %s: member sequence %lld below our %lld in partition %d: reset, listener renewed",
               s->name, (long long)seq, (long long)last, (int)p);
      session_relisten(s);
    }
  }
}

/* A member reports the UUID of every partition it owns but the sequence only
 * where it is not 0 (and before the UUIDs, in the same response): a partition
 * with a UUID and no sequence of a requested session has sequence 0. */
static void zero_unreported(recon_t *x, const char *name, int32_t p) {
  agent_t *a = x->a;
  session_t *s = session_get(a, name, strlen(name), 0);
  if (s == NULL || s->seq == NULL || s->seq[p] >= 0) return;
  if (x->init ? s->lsn == LSN_PENDING && s->lgen == x->gen : s->lsn == LSN_ACTIVE) adopt(a, s, p, 0);
}

static void recon_uuid(hzc_client_t *hc, int32_t p, const hzc_uuid_t *u, void *ud) {
  recon_t *x = ud;
  agent_t *a = x->a;
  if (p < 0 || (uint32_t)p >= a->cluster.partitions) return;
  track_uuid(a, p, u);
  /* Periodic rounds do this only after the baselines were forgotten (cluster
   * change): it costs a lookup per (session, partition). */
  if (x->init || a->recon.baselines_forgotten)
    for (size_t i = 0; i < x->n; i++) zero_unreported(x, x->names[i], p);
}

static void recon_done(hzc_client_t *hc, const hzc_result_t *r, void *ud) {
  recon_t *x = ud;
  agent_t *a = x->a;
  a->recon.inflight--;
  counter_add(a, HZSHM__AC_RECONCILES, 1);
  /* Logged when the outcome changes, not every round. */
  if (r->status != a->recon.last_status && !a->stopping) {
    if (r->status != 0)
      log_info("metadata reconciliation failed: %s (logged once until it changes)", hzshm_strerror(r->status));
    else
      log_info("metadata reconciliation works again");
  }
  a->recon.last_status = r->status;
  if (r->status == 0) a->recon.baselines_forgotten = 0;
  recon_free(x);
  if (a->recon.again && !a->stopping) {
    a->recon.again = 0;
    health_reconcile_soon(a);
  }
}

typedef struct {
  recon_t *x;
  size_t cap;
} collect_t;

static void collect(tnode_t *n, void *ud) {
  collect_t *c = ud;
  session_t *s = (session_t *)n;
  if (s->lsn != LSN_ACTIVE || c->x->n >= c->cap) return;
  c->x->names[c->x->n] = strdup(s->name);
  if (c->x->names[c->x->n] == NULL) return;
  c->x->n++;
  s->round_id = c->x->round;
  s->round_changes = s->seq_changes;
}

void inval_reconcile(agent_t *a) {
  /* Rounds may overlap: a round waits for every data member, and one that
   * just died holds it until the invocation timeout while the others' answers
   * (applied as they arrive) already repair. Bounded, so a dead member does
   * not pile them up. */
  if (a->recon.inflight >= RECON_MAX_INFLIGHT) {
    a->recon.again = 1; /* one more soon after a round ends */
    return;
  }
  if (a->cluster.state != 1 || a->stats.ctr[HZSHM__AC_LISTENERS] == 0) return;
  recon_t *x = calloc(1, sizeof *x);
  if (x == NULL) return;
  x->a = a;
  size_t cap = a->sessions.n;
  x->names = calloc(cap ? cap : 1, sizeof *x->names);
  if (x->names == NULL) {
    free(x);
    return;
  }
  x->round = ++a->recon.round_ids;
  x->sent_ms = now_ms();
  collect_t c = {x, cap};
  table_each(&a->sessions, collect, &c);
  a->recon.inflight++;
  int rc = hzc_fetch_invalidation_metadata(a->hz, (const char *const *)x->names, x->n, recon_seq, recon_uuid,
                                           recon_done, x);
  if (rc != 0) {
    hzc_result_t r = {.status = rc};
    recon_done(a->hz, &r, x);
  }
}

static void baseline_done(hzc_client_t *hc, const hzc_result_t *r, void *ud) {
  recon_t *x = ud;
  agent_t *a = x->a;
  session_t *s = session_get(a, x->names[0], strlen(x->names[0]), 0);
  if (r->status != 0 && !a->stopping)
    log_info("initial invalidation metadata for %s: %s (partitions without a baseline are not cached "
             "until reconciliation sets one)", x->names[0], hzshm_strerror(r->status));
  /* The session may have been purged (and even registered again) meanwhile. */
  if (s && s->lsn == LSN_PENDING && s->lgen == x->gen) session_baselined(s);
  recon_free(x);
}

void inval_baseline(session_t *s) {
  agent_t *a = s->a;
  recon_t *x = calloc(1, sizeof *x);
  char **names = calloc(1, sizeof *names);
  char *name = strdup(s->name);
  if (x == NULL || names == NULL || name == NULL) {
    free(x);
    free(names);
    free(name);
    log_info("initial invalidation metadata for %s: %s", s->name, hzshm_strerror(-ENOMEM));
    session_baselined(s); /* active with unknown baselines: nothing cached until reconciliation */
    return;
  }
  names[0] = name;
  *x = (recon_t){.a = a, .init = 1, .gen = s->lgen, .names = names, .n = 1};
  int rc = hzc_fetch_invalidation_metadata(a->hz, (const char *const *)names, 1, recon_seq, recon_uuid,
                                           baseline_done, x);
  uint64_t now = now_ms();
  if (rc == HZSHM_EDISCONNECTED && !a->stopping &&
      (s->baseline_since == 0 || now - s->baseline_since < a->o.stale_ms)) {
    /* No member list yet (just connected) or cut off: stay parked, the
     * health tick retries (inval_baseline_retry) for up to --stale-ms. */
    if (s->baseline_since == 0) s->baseline_since = now;
    a->recon.baseline_waiting = 1;
    recon_free(x);
    return;
  }
  if (rc != 0) {
    hzc_result_t r = {.status = rc};
    baseline_done(a->hz, &r, x);
  }
}

static void retry_one(tnode_t *n, void *ud) {
  session_t *s = (session_t *)n;
  if (s->lsn == LSN_PENDING && s->baseline_since != 0) inval_baseline(s);
}

void inval_baseline_retry(agent_t *a) {
  if (!a->recon.baseline_waiting) return;
  a->recon.baseline_waiting = 0; /* set again by a session still waiting */
  table_each(&a->sessions, retry_one, NULL);
}

static void forget_one(tnode_t *n, void *ud) {
  session_t *s = (session_t *)n;
  agent_t *a = ud;
  if (s->seq)
    for (uint32_t i = 0; i < a->cluster.partitions; i++) s->seq[i] = -1;
  s->seq_changes++;
}

void inval_forget(agent_t *a) {
  table_each(&a->sessions, forget_one, a);
  memset(a->cluster.puuid, 0, sizeof *a->cluster.puuid * a->cluster.partitions);
  a->recon.baselines_forgotten = 1;
}
