/* sessions.c - the agent's per-session bookkeeping: the segment directory
 * reference, the near-cache invalidation listener and the operations waiting
 * for it.
 *
 * Listener lifecycle (many sessions, few cached): a session gets its
 * invalidation listener before anything of it is cached: the first operation
 * registers it and waits (parked) until the member acknowledged it and the
 * session's initial sequence baselines were fetched (inval_baseline),
 * so no change of the map after a fill can go unseen. The idle check removes the
 * listener once the session has had no cached entries, no operation in flight
 * and no use for --idle-ms, and forgets the session.
 *
 * Renewals and retired registrations (issue 11, the lost registration that
 * was the only one on its member). Every possible destroy (a clear-all, a
 * DESTROYED event, a reset or conviction found by reconciliation) renews the
 * session's registration: the new one is sent after the evidence arrived.
 * The previous registration is not removed at once but retired (lreg_t.old):
 * it keeps listening for RETIRED_MS and only a clear-all it delivers counts,
 * as a possible destroy again. Why: a destroy runs on every member as "publish
 * a clear-all to every registration of the map, then deregister them all",
 * one operation per member. A renewal R2 sent on member 1's clear-all can
 * reach member 2 inside that operation's window and be dropped with no event
 * of its own; member 2's clear-all then went to the older registrations only
 * (R1), and it is the one piece of evidence. With R1 retired instead of
 * removed, that clear-all arrives and triggers one more renewal R3. R3 is
 * sent after member 2's clear-all arrived here, i.e. at least one event
 * delivery after member 2 published it, and it reaches member 2 a further
 * one-way trip later; member 2 deregisters right after publishing, in the
 * same operation, so R3 arrives after that deregistration and that destroy
 * cannot drop it (a later destroy publishes to R3 itself). Residual
 * assumption: member 2's clear-all reaches us within RETIRED_MS of the
 * renewal that superseded R1 (it was published before that renewal reached
 * member 2; RETIRED_MS is the same wait that bounds a live registration's
 * event, covering the member's batching), and member 2 finishes its
 * publish-then-deregister operation before our R3 reaches it (an event
 * delivery plus a one-way trip: the deregistration loop is in-process, with
 * no network wait in it).
 *
 * Cost bound: at most one registration of a session is in flight. A possible
 * destroy arriving while it is pending sets renew_again, and its completion
 * renews exactly once more (however many arrived meanwhile). A destroy makes
 * each member publish once (to each of our registrations it holds, in one
 * burst), so it costs at most one renewal per member's burst plus the one
 * after our own destroy's acknowledgement: renewals per destroy <= members +
 * 1, no loop (a renewal needs a new clear-all, and a retired registration
 * stops listening after RETIRED_MS).
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* How long a retired registration keeps listening: the wait that bounds a
 * live registration's event (inval.c, HZSHM__EVENT_WAIT_MS: member batching
 * flushes every 10 s by default). */
#define RETIRED_MS 15000u

session_t *session_get(agent_t *a, const char *name, size_t namelen, int create) {
  tnode_t *n = table_find(&a->sessions, name, namelen);
  if (n) {
    session_t *s = (session_t *)n;
    /* Only local requests (create != 0) count as use: events and
     * reconciliation must not keep an idle session's listener alive. */
    if (create) s->last_use_ms = now_ms();
    return s;
  }
  if (!create) return NULL;
  session_t *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->name = malloc(namelen + 1);
  if (s->name == NULL) {
    free(s);
    return NULL;
  }
  memcpy(s->name, name, namelen);
  s->name[namelen] = 0;
  s->namelen = namelen;
  s->a = a;
  s->node.key = s->name;
  s->node.klen = namelen;
  s->parked_tail = &s->parked;
  s->last_use_ms = now_ms();
  if (table_insert(&a->sessions, &s->node) != 0) {
    free(s->name);
    free(s);
    return NULL;
  }
  return s;
}

int session_ref(session_t *s) {
  if (s->has_ref) return 0;
  int rc = hzshm__shm_w_session(s->a->shm, s->name, s->namelen, &s->ref);
  if (rc == 0) s->has_ref = 1;
  return rc;
}

void session_busy(session_t *s, int delta) { s->busy += delta; }

void parked_free(parked_t *p) {
  if (p->c) lconn_unref(p->c);
  free(p->key);
  free(p->val);
  free(p);
}

static void run_parked(session_t *s, int status) {
  parked_t *p = s->parked;
  s->parked = NULL;
  s->parked_tail = &s->parked;
  while (p) {
    parked_t *next = p->next;
    p->next = NULL;
    if (status == 0) {
      p->run(s, p);
    } else {
      server_reply(p->c, p->op, p->reqid, status, 0, NULL, 0);
      parked_free(p);
    }
    p = next;
  }
}

static void reg_free(agent_t *a, lreg_t *g) {
  if (!a->stopping) hzc_listener_remove(a->hz, g->l); /* stopping: the client frees it */
  free(g);
}

lreg_t *session_reg_find(agent_t *a, const session_t *s, uint64_t id) {
  if (s->reg && s->reg->id == id) return s->reg;
  for (lreg_t *o = a->old_regs; o; o = o->next)
    if (o->id == id) return o;
  return NULL;
}

/* Removes the retired registrations whose time is over (idle check; all when now is UINT64_MAX). */
static void retired_expire(agent_t *a, uint64_t now) {
  for (lreg_t **pp = &a->old_regs; *pp;) {
    lreg_t *g = *pp;
    if (now < g->until_ms) {
      pp = &g->next;
      continue;
    }
    *pp = g->next;
    reg_free(a, g);
  }
}

static void listen_done(hzc_client_t *c, int status, void *ud) {
  lreg_t *g = ud;
  if (g->old) return; /* superseded meanwhile (listener_drop settled busy) */
  session_t *s = g->s;
  agent_t *a = s->a;
  if (s->lsn != LSN_PENDING) return;
  if (status != 0) {
    session_busy(s, -1);
    log_info("invalidation listener for %s failed: %s", s->name, hzshm_strerror(status));
    s->reg = NULL;
    reg_free(a, g);
    s->lsn = LSN_NONE;
    s->renew_again = 0; /* the next registration is sent after it anyway */
    run_parked(s, status);
    return;
  }
  /* Still LSN_PENDING (busy held) until the baselines are known. */
  inval_baseline(s);
#ifdef HZSHM_AGENT_TEST_SEAMS
  if (s->reg == g) seam_registered(s);
#endif
}

static void renew(session_t *s);

void session_baselined(session_t *s) {
  if (s->renew_again) { /* a possible destroy arrived meanwhile: this registration may be gone */
    renew(s);
    return;
  }
  s->baseline_since = 0;
  session_busy(s, -1);
  s->lsn = LSN_ACTIVE;
  counter_add(s->a, HZSHM__AC_LISTENERS, 1);
  run_parked(s, 0);
}

/* Registers the session's listener (lsn NONE -> PENDING); its parked
 * operations run once it is acknowledged and the baselines are known. */
static void listen_start(session_t *s) {
  agent_t *a = s->a;
  if (s->seq == NULL) {
    s->seq = malloc(sizeof *s->seq * a->cluster.partitions);
    if (s->seq == NULL) {
      run_parked(s, -ENOMEM);
      return;
    }
  }
  for (uint32_t i = 0; i < a->cluster.partitions; i++) s->seq[i] = -1;
  s->seq_changes++;
  inval_forget_suspects(s);
  s->lsn = LSN_PENDING;
  s->lgen++;
  s->baseline_since = 0;
  s->renew_again = 0; /* sent after every possible destroy seen so far */
  lreg_t *g = calloc(1, sizeof *g);
  int rc = -ENOMEM;
  if (g) {
    *g = (lreg_t){.a = a, .s = s, .gen = s->lgen, .id = ++a->reg_ids};
    s->reg = g;
    session_busy(s, +1);
    rc = hzc_map_listen_invalidations(a->hz, s->name, inval_cb, g, listen_done, g, &g->l);
    if (rc != 0) session_busy(s, -1);
  }
  if (rc != 0) {
    free(g);
    s->reg = NULL;
    s->lsn = LSN_NONE;
    run_parked(s, rc);
  }
}

void session_submit(session_t *s, parked_t *p) {
  if (s->lsn == LSN_ACTIVE) {
    p->run(s, p);
    return;
  }
  *s->parked_tail = p;
  s->parked_tail = &p->next;
  if (s->lsn == LSN_NONE) listen_start(s);
}

/* Drops the current registration: retired (still listening, see the top)
 * when retire, else removed. */
static void listener_drop(session_t *s, int retire) {
  agent_t *a = s->a;
  if (s->lsn == LSN_ACTIVE) counter_add(a, HZSHM__AC_LISTENERS, -1);
  if (s->lsn == LSN_PENDING) session_busy(s, -1); /* listen_done will not count it */
  lreg_t *g = s->reg;
  if (g && retire) {
    g->old = 1;
    g->s = NULL;
    g->until_ms = now_ms() + RETIRED_MS;
    g->next = a->old_regs;
    a->old_regs = g;
  } else if (g) {
    reg_free(a, g);
  }
  s->reg = NULL;
  s->lsn = LSN_NONE;
  s->renew_again = 0;
  inval_forget_suspects(s);
}

/* Retires the registration; operations parked on a pending one wait for a new one. */
static void renew(session_t *s) {
  int was_pending = s->lsn == LSN_PENDING;
  listener_drop(s, 1);
  if (was_pending && s->parked) listen_start(s);
}

void session_purge(session_t *s, int keep) {
  agent_t *a = s->a;
  resv_cancel_all(s);
  if (s->has_ref) {
    hzshm__sref_t nref;
    int rc = hzshm__shm_w_session_drop(a->shm, &s->ref, keep, &nref);
    if (rc == 0 && keep) {
      s->ref = nref;
    } else {
      s->has_ref = 0;
    }
  }
  if (!keep) {
    /* Our destroy acknowledged: a registration pending now was sent after
     * the destroy's clear-all renewed it, maybe before some member ran its
     * part of the destroy (which drops it): register again. The operations
     * parked on it are merely concurrent with the destroy: they wait for the
     * new registration (they used to fail with HZSHM_ECANCELED, test
     * e2e_destroyrace). */
    renew(s);
  }
}

void session_relisten(session_t *s) {
  session_purge(s, 1);
  /* One registration in flight at most: a pending one is renewed once more
   * when it completes (session_baselined), sent after this evidence. */
  if (s->lsn == LSN_PENDING) {
    s->renew_again = 1;
    return;
  }
  /* Without parked operations the next operation registers it (nothing is cached meanwhile). */
  renew(s);
}

typedef struct {
  agent_t *a;
  uint64_t now;
} idle_ctx_t;

static void session_free(session_t *s) {
  free(s->reg); /* at exit only (the client is closed): idle sessions dropped it before */
  free(s->seq);
  free(s->suspects);
  free(s->name);
  /* Only reservations that merely remember echoes or failed writes are left
   * (nothing is in flight: idle, or the client closed and completed all). */
  resv_expire(s, UINT64_MAX);
  table_free(&s->resv);
  free(s);
}

static void idle_one(tnode_t *n, void *ud) {
  idle_ctx_t *x = ud;
  session_t *s = (session_t *)n;
  resv_expire(s, x->now);
  if (s->busy > 0 || s->parked || s->resv.n > 0) return;
  if (x->now - s->last_use_ms < x->a->o.idle_ms) return;
  if (s->has_ref && hzshm__shm_w_session_entries(x->a->shm, &s->ref) > 0) return;
  if (s->has_ref) {
    hzshm__sref_t nref;
    hzshm__shm_w_session_drop(x->a->shm, &s->ref, 0, &nref); /* free the directory slot */
  }
  listener_drop(s, 0);
  table_remove(&x->a->sessions, &s->node);
  session_free(s);
}

void session_idle_check(agent_t *a) {
  idle_ctx_t x = {a, now_ms()};
  table_each(&a->sessions, idle_one, &x);
  retired_expire(a, x.now);
}

static void free_one(tnode_t *n, void *ud) {
  agent_t *a = ud;
  session_t *s = (session_t *)n;
  run_parked(s, HZSHM_ESTOPPED);
  table_remove(&a->sessions, &s->node);
  session_free(s);
}

/* At exit, after the client closed (its callbacks have run). */
void session_free_all(agent_t *a) {
  table_each(&a->sessions, free_one, a);
  table_free(&a->sessions);
  retired_expire(a, UINT64_MAX); /* a->stopping: nothing is sent */
}
