/* fill.c - the miss path: reservations and coalescing.
 *
 * A miss (get or has) for (session, key) finds or makes the key's reservation
 * in the session's private table. If a remote get for the key is in flight and
 * its reservation was not canceled, the request waits for that response
 * (coalescing: any number of processes, one remote get). Otherwise a stamp is
 * taken (hzshm__shm_w_stamp) and one remote get is sent.
 *
 * Race with invalidations: an invalidation of the key, a clear or destroy of
 * the session, or a write of the key from this host that arrives while the get
 * is in flight sets fill_canceled. The response is still returned to the
 * requests that were waiting (they were issued before the change), but it is
 * not cached. A request that arrives after the cancel starts a fresh remote
 * get under a new reservation (the canceled one is detached from the table).
 * The stamp makes a fill that slipped past a partition-level stale mark
 * (gap, reconnect) read as a miss in the segment. Fills run only on a session
 * whose listener is active and whose initial baselines were fetched (inval.c),
 * so the stamp is taken after the baseline is known; a fill of a partition
 * whose baseline is still unknown (no member reported it), or whose owner we
 * have no listening connection to, is returned to the waiters but not cached
 * (inval_cacheable).
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"

resv_t *resv_get(session_t *s, const void *key, size_t klen, int create) {
  tnode_t *n = table_find(&s->resv, key, klen);
  if (n || !create) return (resv_t *)n;
  resv_t *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->key = malloc(klen);
  if (r->key == NULL) {
    free(r);
    return NULL;
  }
  memcpy(r->key, key, klen);
  r->klen = klen;
  r->s = s;
  r->node.key = r->key;
  r->node.klen = klen;
  if (table_insert(&s->resv, &r->node) != 0) {
    free(r->key);
    free(r);
    return NULL;
  }
  return r;
}

static void resv_detach(resv_t *r) {
  if (r->detached) return;
  table_remove(&r->s->resv, &r->node);
  r->detached = 1;
}

/* Detaches r (its canceled remote get goes on for its waiters) and returns
 * its successor in the table, which takes over the key's write state (writes
 * in flight, their numbering, expected echoes), so that one reservation per
 * key always holds all of it. NULL on allocation failure (r stays). */
static resv_t *resv_replace(resv_t *r) {
  session_t *s = r->s;
  resv_detach(r);
  resv_t *n = resv_get(s, r->key, r->klen, 1);
  if (n == NULL) {
    if (table_insert(&s->resv, &r->node) == 0) r->detached = 0;
    return NULL;
  }
  n->writes = r->writes;
  n->write_canceled = r->write_canceled;
  n->wseq = r->wseq;
  n->echoes = r->echoes;
  n->early = r->early;
  n->echo_until_ms = r->echo_until_ms;
  n->unknown = r->unknown;
  n->unknown_until_ms = r->unknown_until_ms;
  n->wlist = r->wlist;
  for (wlink_t *w = n->wlist; w; w = w->next) w->r = n;
  r->writes = r->echoes = r->early = r->unknown = 0;
  r->wlist = NULL;
  return n;
}

void resv_maybe_free(resv_t *r) {
  if (r->fetching || r->writes > 0 || r->echoes > 0 || r->unknown > 0) return;
  resv_detach(r);
  free(r->key);
  free(r);
}

static void cancel_one(tnode_t *n, void *ud) {
  resv_t *r = (resv_t *)n;
  r->fill_canceled = 1;
  r->write_canceled = 1;
  /* Cleared or destroyed: echoes still to come are applied as foreign (a miss, never stale). */
  r->echoes = 0;
  r->early = 0;
  /* A fetching one stays in the table: the next miss replaces it (fill_canceled). */
  resv_maybe_free(r);
}

void resv_cancel_all(session_t *s) { table_each(&s->resv, cancel_one, NULL); }

/* Own-echo accounting (issue 11, hole 2). An invalidation with our client
 * UUID is skipped only as the echo of a write we acknowledged or still wait
 * for: each acknowledged write that produces an event adds one expected echo
 * (requests.c), each own event consumes one. An own event that comes while
 * writes of the key are in flight and no failed write of it is unresolved is
 * one of theirs (it beat its acknowledgement): early counts it, so that the
 * acknowledgement adds no expectation. Any other own event - in particular
 * the echo of a write that timed out (or failed otherwise) and was applied
 * later (unknown) - is applied like a foreign invalidation: the key is
 * deleted and a write in flight is not cached. Echoes come in the order the
 * member applied the writes; attributing one to the wrong write only ever
 * turns a skip into a delete, provided no expectation outlives its echo: an
 * ack adds none when the echo may already have come uncounted (requests.c).
 * An expectation that outlived its echo (lost, below) is harmless as long as
 * no unexpected own event comes, and the only source of those is a failed
 * write: so while one of the key is unresolved, no own event is skipped. */
int resv_own_echo(resv_t *r) {
  uint64_t now = now_ms();
  if (r->unknown > 0 && now > r->unknown_until_ms) r->unknown = 0;
  int expected = r->echoes > 0 && now <= r->echo_until_ms;
  if (expected) r->echoes--;
  else r->echoes = 0;
  /* A failed write of the key is unresolved: this may be its invalidation
   * (applied late), whatever we expected. An expectation can outlive its
   * echo: the echo is lost with the member connection that should have
   * brought it (member batching holds it up to 10 s after the
   * acknowledgement), with a member that died, or was never sent (a write
   * that ran before our registration on a new connection was active); the
   * unresolved write's invalidation would then be skipped as that echo and
   * the value read meanwhile served until --max-ttl-ms (test e2e_lostecho).
   * Applied as foreign: a miss, never stale. */
  if (r->unknown > 0) return 0;
  if (expected) return 1;
  if (r->writes > 0) {
    r->early++;
    return 1;
  }
  return 0;
}

typedef struct {
  uint64_t now;
} expire_t;

static void expire_one(tnode_t *n, void *ud) {
  resv_t *r = (resv_t *)n;
  uint64_t now = ((expire_t *)ud)->now;
  if (r->echoes > 0 && now > r->echo_until_ms) r->echoes = 0; /* lost (a gap repairs it), or late: then foreign */
  if (r->unknown > 0 && now > r->unknown_until_ms) r->unknown = 0;
  resv_maybe_free(r);
}

void resv_expire(session_t *s, uint64_t now) {
  expire_t x = {now};
  table_each(&s->resv, expire_one, &x);
}

/* The result of a remote get (or of a failure to send one). */
typedef struct {
  int status;
  int type;
  int32_t type_id;
  const uint8_t *data;
  size_t len;
} fill_res_t;

static void fill_complete(resv_t *r, const fill_res_t *res) {
  session_t *s = r->s;
  agent_t *a = s->a;
  r->fetching = 0;
  uint32_t part = hzc_key_partition(a->hz, r->key, r->klen);
  int cacheable = res->status == 0 && (res->type == HZC_NULL || res->type == HZC_BYTES || res->type == HZC_STRING);
  if (res->status == 0 && !a->stopping) {
    if (r->fill_canceled) {
      counter_add(a, HZSHM__AC_FILLS_DROPPED, 1);
    } else if (cacheable && s->lsn == LSN_ACTIVE && inval_cacheable(s, part) && session_ref(s) == 0) {
      int null = res->type == HZC_NULL;
      int rc = hzshm__shm_w_put(a->shm, &s->ref, r->key, r->klen, null ? NULL : res->data, null ? 0 : res->len,
                                part, r->stamp, local_ttl(a, -1),
                                null ? HZSHM_SHM_NEGATIVE : res->type == HZC_STRING ? HZSHM_SHM_STRING : 0);
      if (rc == HZSHM_ETOOBIG) counter_uncacheable(a, r->klen + (null ? 0 : res->len));
      if (rc != 0 && rc != HZSHM_ETOOBIG && rc != HZSHM_ESEGFULL)
        log_info("fill of %s not cached: %s", s->name, hzshm_strerror(rc));
    }
  }
  pending_t *w = r->waiters;
  r->waiters = NULL;
  while (w) {
    pending_t *next = w->next;
    int st = res->status;
    int32_t aux = 0;
    const void *val = NULL;
    size_t vlen = 0;
    if (st == 0) {
      if (res->type == HZC_NULL) {
        st = HZSHM_ENOTFOUND;
      } else if (w->op == HZSHM__OP_GET) {
        if (res->type == HZC_OTHER) {
          st = HZSHM_ETYPE;
          aux = res->type_id;
        } else {
          aux = res->type == HZC_STRING ? HZC_TYPE_ID_STRING : HZC_TYPE_ID_BYTES; /* the value's type */
          val = res->data;
          vlen = res->len;
        }
      }
    }
    server_reply(w->c, w->op, w->reqid, st, aux, val, vlen);
    lconn_unref(w->c);
    free(w);
    w = next;
  }
  session_busy(s, -1);
  resv_maybe_free(r);
}

static void get_result(void *ud, const hzc_result_t *res) {
  fill_res_t fr = {.status = res->status, .type = res->value.type, .type_id = res->value.type_id,
                   .data = res->value.data, .len = res->value.len};
  fill_complete(ud, &fr);
}

static void get_done(hzc_client_t *hc, const hzc_result_t *res, void *ud) {
#ifdef HZSHM_AGENT_TEST_SEAMS
  resv_t *r = ud;
  if (seam_defer_fill(r->s->a, r->key, r->klen, res, get_result, r))
    return; /* test-only build: an invalidation may come first */
#endif
  get_result(ud, res);
}

/* Serves the request from the segment if it was filled meanwhile. */
static int try_segment(session_t *s, lconn_t *c, uint32_t reqid, uint8_t op, const void *key, size_t klen) {
  agent_t *a = s->a;
  if (!s->has_ref || s->lsn != LSN_ACTIVE) return 0;
  size_t vlen = 0;
  uint32_t vf = 0;
  int rc = hzshm__shm_r_get_typed(a->shm, &s->ref, key, klen, a->scratch, HZSHM__IPC_VALUE_MAX, &vlen, &vf);
  if (rc == 0) {
    int32_t aux = op == HZSHM__OP_GET ? ((vf & HZSHM_SHM_STRING) ? HZC_TYPE_ID_STRING : HZC_TYPE_ID_BYTES) : 0;
    server_reply(c, op, reqid, 0, aux, op == HZSHM__OP_GET ? a->scratch : NULL, op == HZSHM__OP_GET ? vlen : 0);
    return 1;
  }
  if (rc == HZSHM_ENOTFOUND) {
    server_reply(c, op, reqid, HZSHM_ENOTFOUND, 0, NULL, 0);
    return 1;
  }
  return 0;
}

void fill_request(session_t *s, lconn_t *c, uint32_t reqid, uint8_t op, const void *key, size_t klen) {
  agent_t *a = s->a;
  if (try_segment(s, c, reqid, op, key, klen)) return;
  pending_t *w = calloc(1, sizeof *w);
  resv_t *r = resv_get(s, key, klen, 1);
  int rc = -ENOMEM;
  if (w == NULL || r == NULL) goto fail;
  if (r->fetching && r->fill_canceled) {
    /* The in-flight get may return a value older than the invalidation this
     * request may already have observed: start a new one. */
    r = resv_replace(r);
    if (r == NULL) goto fail;
  }
  w->c = c;
  w->reqid = reqid;
  w->op = op;
  lconn_ref(c);
  w->next = r->waiters;
  r->waiters = w;
  if (r->fetching) {
    counter_add(a, HZSHM__AC_COALESCED, 1);
    return;
  }
  r->stamp = hzshm__shm_w_stamp(a->shm);
  r->fetching = 1;
  r->fill_canceled = 0;
  session_busy(s, +1);
  rc = hzc_map_get(a->hz, s->name, key, klen, get_done, r);
  if (rc == 0) {
    counter_add(a, HZSHM__AC_REMOTE_GETS, 1);
    return;
  }
  fill_res_t fr = {.status = rc};
  fill_complete(r, &fr); /* answers the waiter with rc */
  return;
fail:
  free(w);
  if (r) resv_maybe_free(r);
  server_reply(c, op, reqid, rc, 0, NULL, 0);
}
