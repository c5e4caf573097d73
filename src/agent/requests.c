/* requests.c - validation and dispatch of local requests; the write-through
 * operations set/del/destroy.
 *
 * Write-through order (read-your-writes): the cluster first; only after its
 * acknowledgement is the segment changed, and only then is the caller answered.
 * A write's segment update is skipped (the key is dropped instead) when a
 * foreign invalidation for the key arrived while the write was in flight, or
 * when another write of the same key from this host was in flight at any
 * point during this one (the member may apply and acknowledge overlapping
 * writes out of submit order: a retried "not executed" write, two connections
 * during a migration; write numbering alone does not settle which value the
 * cluster kept), or when one of them failed: in all cases the order
 * of the cluster's updates is not known here, and a dropped key is a miss,
 * never a stale hit. The entry's stamp is taken at submit, so a partition
 * marked stale while the write was in flight turns it into a miss.
 *
 * A write that fails (timeout, connection lost) has an unknown outcome: it
 * may still be applied later. It adds no expected echo, so its invalidation,
 * whenever it comes, is applied like a foreign one (fill.c).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "reqparse.h"

static void req_run(session_t *s, parked_t *p);

void req_dispatch(lconn_t *c, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r) {
  agent_t *a = c->a;
  int rc = req_validate(a->o.prefix, h, r);
  if (rc != 0) {
    counter_add(a, HZSHM__AC_BAD_REQUESTS, 1);
    server_reply(c, h->op, h->reqid, rc, 0, NULL, 0);
    return;
  }
  if (h->op == HZSHM__OP_HELLO) {
    server_reply(c, h->op, h->reqid, 0, (int32_t)getpid(), NULL, 0);
    return;
  }
  if ((rc = health_serving(a)) != 0) {
    server_reply(c, h->op, h->reqid, rc, 0, NULL, 0);
    return;
  }
  session_t *s = session_get(a, r->sid, r->sidlen, 1);
  parked_t *p = calloc(1, sizeof *p);
  if (s == NULL || p == NULL || (r->klen && (p->key = malloc(r->klen)) == NULL) ||
      (r->vlen && (p->val = malloc(r->vlen)) == NULL)) {
    if (p) parked_free(p);
    server_reply(c, h->op, h->reqid, -ENOMEM, 0, NULL, 0);
    return;
  }
  p->c = c;
  lconn_ref(c);
  p->reqid = h->reqid;
  p->op = h->op;
  p->vstring = (h->flags & HZSHM__IPC_F_STRING) != 0;
  p->ttl_ms = r->ttl_ms;
  if (r->klen) memcpy(p->key, r->key, r->klen);
  p->klen = r->klen;
  if (r->vlen) memcpy(p->val, r->val, r->vlen);
  p->vlen = r->vlen;
  p->run = req_run;
  if (h->op == HZSHM__OP_DESTROY) {
    req_run(s, p); /* needs no listener */
  } else {
    session_submit(s, p);
  }
}

/* ---- writes ---- */

typedef struct {
  wlink_t link;   /* first: link.r is the key's reservation (NULL for destroy); fill.c may move it */
  session_t *s;
  parked_t *p;
  uint64_t stamp; /* hzshm__shm_w_stamp at submit */
  uint32_t wseq;  /* this write's number among the key's submitted writes */
} write_t;

/* How long an acknowledged write's echo is expected (fill.c,
 * resv_own_echo): echoes normally follow within milliseconds, member
 * batching delays them up to its flush period (10 s by default). */
#define ECHO_WAIT_MS 30000u
/* How long a failed write of a key may still be applied by the member: a
 * parked operation (key locked) runs or is given up within the member's
 * operation call timeout (hazelcast.operation.call.timeout.millis, 60 s by
 * default); twice that, for safety. */
#define UNKNOWN_WAIT_MS 120000u

static void write_ack(void *ud, const hzc_result_t *res) {
  write_t *w = ud;
  session_t *s = w->s;
  agent_t *a = s->a;
  parked_t *p = w->p;
  resv_t *r = w->link.r;
  int status = res->status;
  if (p->op == HZSHM__OP_DESTROY) {
    if (status == 0) session_purge(s, 0);
  } else {
    r->writes--;
    for (wlink_t **pp = &r->wlist; *pp; pp = &(*pp)->next)
      if (*pp == &w->link) {
        *pp = w->link.next;
        break;
      }
    /* Whatever this write did, a fill that started before it may hold the old value. */
    r->fill_canceled = 1;
    /* Its echo is expected only if the member acknowledged a change (a delete
     * of an absent key sends no event; -1: the member did not say) and it did
     * not already come (early). Nor when the key's write state was canceled
     * during the write (a clear-all forgets early echoes: this one may have
     * come already) or a failed write of it is unresolved (an echo that came
     * meanwhile was applied as foreign, not counted early): an expectation
     * for an echo that already came would skip the next own event, which may
     * be the late-applied failed write's. Not expecting costs a miss. */
    if (status == 0 && (p->op == HZSHM__OP_SET || res->boolean == 1)) {
      if (r->early > 0) {
        r->early--;
      } else if (!r->write_canceled && r->unknown == 0) {
        r->echoes++;
        r->echo_until_ms = now_ms() + ECHO_WAIT_MS;
      }
    } else if (status != 0) {
      /* Outcome unknown: the member may still apply it (a parked operation). */
      r->unknown++;
      r->unknown_until_ms = now_ms() + UNKNOWN_WAIT_MS;
      /* It may already have been applied, after a later-submitted write of
       * the key still in flight (a retry of a "not executed" error runs it
       * after a write sent meanwhile), and its event may already have come
       * and been skipped as an early echo of the writes in flight (fill.c):
       * none of them may cache its value, as if a foreign change had come. */
      if (r->writes > 0) r->write_canceled = 1;
    }
    /* Cached only when it is the key's last submitted write: an earlier
     * write's acknowledgement that arrives after a later one's never wins. */
    int cache = status == 0 && !r->write_canceled && r->writes == 0 && w->wseq == r->wseq && s->lsn == LSN_ACTIVE &&
                !a->stopping;
    if (r->writes == 0) {
      r->write_canceled = 0;
      r->early = 0;
    }
    if (!a->stopping && session_ref(s) == 0) {
      int rc = HZSHM_ENOTFOUND;
      uint32_t part = hzc_key_partition(a->hz, p->key, p->klen);
      /* No baseline, or no connection to the owner with our listener: a later change could go unseen. */
      if (cache && inval_cacheable(s, part)) {
        /* Stamped at submit: a partition marked stale while the write was in flight makes it a miss. */
        uint64_t stamp = w->stamp;
        uint32_t ttl = local_ttl(a, p->ttl_ms);
        if (p->op == HZSHM__OP_SET)
          rc = hzshm__shm_w_put(a->shm, &s->ref, p->key, p->klen, p->val, p->vlen, part, stamp, ttl,
                                p->vstring ? HZSHM_SHM_STRING : 0);
        else
          rc = hzshm__shm_w_put(a->shm, &s->ref, p->key, p->klen, NULL, 0, part, stamp, local_ttl(a, -1),
                                HZSHM_SHM_NEGATIVE);
      }
      if (rc == HZSHM_ETOOBIG) counter_uncacheable(a, p->klen + p->vlen);
      /* Not cached (or could not be): make sure no older value stays. */
      if (rc != 0) hzshm__shm_w_del(a->shm, &s->ref, p->key, p->klen);
    }
    resv_maybe_free(r);
  }
  if (status == 0) {
    counter_add(a, HZSHM__AC_WRITES, 1);
    if (p->op != HZSHM__OP_DESTROY) lag_acked(a, s->name, p->key, p->klen);
  }
  server_reply(p->c, p->op, p->reqid, status, 0, NULL, 0);
  parked_free(p);
  session_busy(s, -1);
  free(w);
}

static void write_done(hzc_client_t *hc, const hzc_result_t *res, void *ud) {
#ifdef HZSHM_AGENT_TEST_SEAMS
  write_t *w = ud;
  if (w->p->op != HZSHM__OP_DESTROY &&
      seam_defer_ack(w->s->a, w->p->key, w->p->klen, res, write_ack, w))
    return; /* test-only build: the echo comes first */
#endif
  write_ack(ud, res);
}

/* Runs a (previously parked) operation on a session whose listener is active
 * (a destroy: any session): parked_t.run of every local request. */
static void req_run(session_t *s, parked_t *p) {
  agent_t *a = s->a;
  if (p->op == HZSHM__OP_GET || p->op == HZSHM__OP_HAS) {
    fill_request(s, p->c, p->reqid, p->op, p->key, p->klen);
    parked_free(p);
    return;
  }
  write_t *w = calloc(1, sizeof *w);
  int rc = -ENOMEM;
  if (w == NULL) goto fail;
  w->s = s;
  w->p = p;
  if (p->op != HZSHM__OP_DESTROY) {
    resv_t *r = resv_get(s, p->key, p->klen, 1);
    if (r == NULL) goto fail;
    w->link.r = r;
    /* Writes of one key that overlap are never cached (their acks delete
     * the key: a miss): the member may apply them in another order than
     * submitted (a retried "not executed" write runs after one sent
     * meanwhile) and acknowledge them in yet another (two connections during
     * a migration), so which value the cluster kept is not known here. The
     * bounded model tools/model/own_echo_model.py (FIX 2) finds a stale end
     * state without this, none with it. */
    if (r->writes > 0) r->write_canceled = 1;
    r->writes++;
    w->link.next = r->wlist;
    r->wlist = &w->link;
    w->wseq = ++r->wseq;
    w->stamp = hzshm__shm_w_stamp(a->shm);
  }
  session_busy(s, +1);
  switch (p->op) {
    case HZSHM__OP_SET:
      rc = hzc_map_set_typed(a->hz, s->name, p->key, p->klen, p->vstring ? HZC_STRING : HZC_BYTES, p->val, p->vlen,
                             p->ttl_ms, write_done, w);
      break;
    case HZSHM__OP_DEL:
      rc = hzc_map_delete(a->hz, s->name, p->key, p->klen, write_done, w);
      break;
    default:
      rc = hzc_map_destroy(a->hz, s->name, write_done, w);
      break;
  }
  if (rc == 0) return;
  session_busy(s, -1);
  if (w->link.r) {
    resv_t *r = w->link.r;
    r->writes--;
    r->wlist = w->link.next; /* it was linked first */
    resv_maybe_free(r);
  }
fail:
  free(w);
  server_reply(p->c, p->op, p->reqid, rc, 0, NULL, 0);
  parked_free(p);
}

uint32_t local_ttl(const agent_t *a, int64_t ttl_ms) {
  uint64_t own = ttl_ms > 0 ? (uint64_t)ttl_ms : 0; /* -1 (map default) and 0 (infinite): no own bound */
  uint64_t cap = a->o.max_ttl_ms;
  uint64_t t = own == 0 ? cap : (cap != 0 && cap < own ? cap : own);
  return t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
}
