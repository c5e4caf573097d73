/* invoke.c - invocations: correlation ids, the pending table, per-invocation
 * deadlines, retries of retryable operations and of "not executed" server
 * errors, routing through cluster.c, dispatch of responses and events.
 *
 * Loop thread only. Every call is in the table from submit until it
 * completes (listener calls stay while their registration lives). A done()
 * callback always runs after the call left the table, so user code it runs
 * may submit, remove or close freely; the call is freed after done() returns.
 *
 * Retry policy (hazelcast-client-protocol.md §1.8, after ClientInvocation in
 * the Java client): a request waits in WAIT while no connection can take it;
 * it is resent after its connection closed only if the operation is
 * retryable; server errors that guarantee the operation did not run
 * (HazelcastInstanceNotActive 19, PartitionMigrating 39, RetryableHazelcast
 * 46, RetryableIO 47, WrongTarget 62, TargetNotMember 53, CallerNotMember 8,
 * MemberLeft 33) are retried for every operation, IO 22 and
 * TargetDisconnected 52 only for retryable ones. Everything ends at the
 * invocation deadline with HZSHM_ETIMEDOUT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hzc_int.h"
#include "murmur.h"

static size_t hzshm__bucket(int64_t corr) { return (size_t)((uint64_t)corr & (HZSHM__TABLE_BUCKETS - 1)); }

static void hzshm__table_put(hzc_client_t *c, hzshm__call_t *k) {
  size_t b = hzshm__bucket(k->corr);
  k->hnext = c->table[b];
  c->table[b] = k;
  c->ncalls++;
}

static hzshm__call_t *hzshm__table_find(hzc_client_t *c, int64_t corr) {
  for (hzshm__call_t *k = c->table[hzshm__bucket(corr)]; k; k = k->hnext)
    if (k->corr == corr) return k;
  return NULL;
}

static int hzshm__table_remove(hzc_client_t *c, hzshm__call_t *k) {
  for (hzshm__call_t **pp = &c->table[hzshm__bucket(k->corr)]; *pp; pp = &(*pp)->hnext) {
    if (*pp == k) {
      *pp = k->hnext;
      k->hnext = NULL;
      c->ncalls--;
      return 1;
    }
  }
  return 0;
}

static void hzshm__call_free(hzshm__call_t *k) {
  free(k->msg);
  free(k);
}

hzshm__call_t *hzshm__call_new(hzc_client_t *c, hzshm__mb_t *b, int32_t pid, int retryable, hzshm__call_done_fn done) {
  hzshm__call_t *k = NULL;
  if (hzshm__mb_finish(b)) goto out;
  k = calloc(1, sizeof *k);
  if (!k) goto out;
  k->msg = b->w.p;
  k->len = b->w.len;
  hzshm__wr_init(&b->w);
  k->pid = pid;
  k->retryable = retryable;
  k->done = done;
  k->deadline = uv_now(c->loop) + c->invocation_timeout_ms;
out:
  hzshm__mb_free(b);
  return k;
}

/* Completes k (already out of the table): done(), then free. */
static void hzshm__call_finish(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m, int status) {
  if (k->done) k->done(c, k, m, status);
  hzshm__call_free(k);
}

/* Sends k if a connection can take it; otherwise leaves it waiting.
 * Returns 0, or an error if it can never be sent (pinned connection gone). */
static int hzshm__call_send(hzc_client_t *c, hzshm__call_t *k) {
  uint64_t now = uv_now(c->loop);
  if (k->pin && k->pin->state == HZSHM__CONN_CLOSING) return HZSHM_ECLOSED;
  if (k->keyed) { /* the partition count is known once connected (and may change with the cluster) */
    if (c->partition_count == 0) {
      k->state = HZSHM__CALL_WAIT;
      k->conn = NULL;
      k->retry_at = now + 100;
      return 0;
    }
    k->pid = (int32_t)hzshm__partition_of(k->khash, c->partition_count);
  }
  hzshm__conn_t *conn = hzshm__cluster_route(c, k);
  if (!conn) {
    k->state = HZSHM__CALL_WAIT;
    k->conn = NULL;
    k->retry_at = now + 100;
    return 0;
  }
  hzshm__msg_set_corr(k->msg, k->corr);
  if (k->pid >= 0) hzshm__msg_set_pid(k->msg, k->pid);
  k->state = HZSHM__CALL_WAIT; /* until the write is queued: a failed write closes conn, not us */
  k->conn = NULL;
  if (hzshm__conn_write(conn, k->msg, k->len) != 0) {
    k->retry_at = now + 100;
    return k->pin ? HZSHM_ECLOSED : 0;
  }
  k->state = HZSHM__CALL_SENT;
  k->conn = conn;
  k->attempts++;
  c->st.requests_sent++;
  conn->requests++;
  hzshm__member_t *mb = hzshm__cluster_member_of(c, conn);
  if (mb) mb->requests++;
  return 0;
}

int hzshm__call_submit(hzc_client_t *c, hzshm__call_t *k) {
  if (c->closing) {
    hzshm__call_free(k);
    return HZSHM_ECLOSED;
  }
  k->corr = ++c->next_corr;
  hzshm__table_put(c, k);
  int rc = hzshm__call_send(c, k);
  if (rc) {
    hzshm__table_remove(c, k);
    hzshm__call_free(k);
  }
  return rc;
}

void hzshm__call_drop(hzc_client_t *c, hzshm__call_t *k) {
  hzshm__table_remove(c, k);
  if (k->busy) k->dead = 1; /* freed when its callback returns */
  else hzshm__call_free(k);
}

/* Runs a listener call's callback with the call out of the table, so that
 * the callback may drop the listener or close the client; puts it back after. */
static void hzshm__listener_cb(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m, int is_event) {
  hzshm__table_remove(c, k);
  k->busy = 1;
  if (is_event) k->event(c, k, m);
  else if (k->done) k->done(c, k, m, 0);
  k->busy = 0;
  if (k->dead) {
    hzshm__call_free(k);
  } else if (c->closing || (k->conn && k->conn->state == HZSHM__CONN_CLOSING)) {
    hzshm__call_finish(c, k, NULL, HZSHM_ECLOSED);
  } else {
    hzshm__table_put(c, k);
  }
}

static int hzshm__retry_code(int32_t code, int retryable) {
  switch (code) {
    case 8: case 19: case 33: case 39: case 46: case 47: case 53: case 62:
      return 1;
    case 22: case 52:
      return retryable;
    default:
      return 0;
  }
}

static void hzshm__schedule_retry(hzc_client_t *c, hzshm__call_t *k, uint64_t now) {
  uint32_t pause = 50u << (k->attempts < 5 ? k->attempts : 5);
  if (pause > 1000) pause = 1000;
  k->state = HZSHM__CALL_WAIT;
  k->conn = NULL;
  k->retry_at = now + pause;
  c->st.retries++;
}

void hzshm__invoke_on_message(hzc_client_t *c, hzshm__conn_t *conn, const hzshm__msg_t *m) {
  int64_t corr = hzshm__msg_corr(m);
  hzshm__call_t *k = hzshm__table_find(c, corr);
  uint16_t fl = m->f[0].flags;
  if (fl & HZSHM__F_BACKUP_EVENT) return; /* we never set BACKUP_AWARE */
  if (fl & HZSHM__F_EVENT) {
    c->st.events++;
    /* A member may send a listener's first events before the registration
     * response (the cluster-view listener does: MembersView arrives first), so
     * events are delivered while the call is still SENT too. */
    if (k && k->listener && (k->state == HZSHM__CALL_LISTENING || k->state == HZSHM__CALL_SENT) && k->conn == conn &&
        k->event)
      hzshm__listener_cb(c, k, m, 1);
    return;
  }
  if (!k || k->conn != conn || k->state != HZSHM__CALL_SENT) return; /* late reply after timeout/retry */
  c->st.responses++;
  int32_t rtype = hzshm__msg_type(m), qtype = (int32_t)hzshm__ld_u32le(k->msg + HZSHM__FRAME_HDR);
  if (rtype != HZSHM__MT_ERROR && rtype != qtype + 1) {
    hzshm__log(HZC_LOG_WARNING, "response type 0x%06x to request 0x%06x (correlation %lld)", (unsigned)rtype, (unsigned)qtype,
               (long long)corr);
    hzshm__conn_close(conn, HZSHM_EPROTO, "response of another message type");
    return;
  }
  if (rtype == HZSHM__MT_ERROR) {
    hzshm__remote_err_t e;
    int rc = hzshm__dec_error(m, &e.code, e.cls, sizeof e.cls, e.msg, sizeof e.msg);
    uint64_t now = uv_now(c->loop);
    if (rc == 0 && !k->pin && hzshm__retry_code(e.code, k->retryable) && now < k->deadline) {
      hzshm__schedule_retry(c, k, now);
      return;
    }
    hzshm__table_remove(c, k);
    hzshm__call_finish(c, k, m, rc ? rc : HZSHM_EREMOTE);
    if (rc == HZSHM_EPROTO) hzshm__conn_close(conn, rc, "malformed error response");
    return;
  }
  if (k->listener) {
    k->state = HZSHM__CALL_LISTENING;
    hzshm__listener_cb(c, k, m, 0); /* stays in the table afterwards */
    return;
  }
  hzshm__table_remove(c, k);
  hzshm__call_finish(c, k, m, 0);
}

/* Detaches the calls selected by `pick` into a list linked through hnext. */
static hzshm__call_t *hzshm__collect(hzc_client_t *c, int (*pick)(hzshm__call_t *, void *), void *arg) {
  hzshm__call_t *list = NULL, **tail = &list;
  for (size_t b = 0; b < HZSHM__TABLE_BUCKETS; b++) {
    hzshm__call_t **pp = &c->table[b];
    while (*pp) {
      hzshm__call_t *k = *pp;
      if (pick(k, arg)) {
        *pp = k->hnext;
        c->ncalls--;
        k->hnext = NULL;
        *tail = k;
        tail = &k->hnext;
      } else {
        pp = &k->hnext;
      }
    }
  }
  return list;
}

static int hzshm__pick_conn(hzshm__call_t *k, void *arg) {
  hzshm__conn_t *conn = arg;
  return k->pin == conn || (k->conn == conn && (k->state == HZSHM__CALL_SENT || k->state == HZSHM__CALL_LISTENING));
}

void hzshm__invoke_conn_closed(hzc_client_t *c, hzshm__conn_t *conn) {
  uint64_t now = uv_now(c->loop);
  hzshm__call_t *list = hzshm__collect(c, hzshm__pick_conn, conn);
  while (list) {
    hzshm__call_t *k = list;
    list = k->hnext;
    k->hnext = NULL;
    if (!k->pin && !k->listener && k->retryable && now < k->deadline && !c->closing) {
      hzshm__schedule_retry(c, k, now);
      k->retry_at = now; /* another connection may take it right away */
      hzshm__table_put(c, k);
      continue;
    }
    int err = conn->close_err;
    hzshm__call_finish(c, k, NULL, err == HZSHM_ETIMEDOUT || err == HZSHM_EPROTO ? err : HZSHM_ECLOSED);
  }
}

static int hzshm__pick_due(hzshm__call_t *k, void *arg) {
  uint64_t now = *(uint64_t *)arg;
  if (k->state == HZSHM__CALL_LISTENING) return 0;
  return now >= k->deadline || (k->state == HZSHM__CALL_WAIT && now >= k->retry_at);
}

static int hzshm__pick_waiting(hzshm__call_t *k, void *arg) { return k->state == HZSHM__CALL_WAIT; }

static void hzshm__resend(hzc_client_t *c, hzshm__call_t *list, uint64_t now) {
  while (list) {
    hzshm__call_t *k = list;
    list = k->hnext;
    k->hnext = NULL;
    if (now >= k->deadline) {
      c->st.timeouts++;
      hzshm__call_finish(c, k, NULL, HZSHM_ETIMEDOUT);
      continue;
    }
    if (k->state == HZSHM__CALL_SENT) { /* not yet due: only deadline matters */
      hzshm__table_put(c, k);
      continue;
    }
    hzshm__table_put(c, k);
    int rc = hzshm__call_send(c, k);
    if (rc) {
      hzshm__table_remove(c, k);
      hzshm__call_finish(c, k, NULL, rc);
    }
  }
}

void hzshm__invoke_tick(hzc_client_t *c, uint64_t now) {
  hzshm__resend(c, hzshm__collect(c, hzshm__pick_due, &now), now);
}

void hzshm__invoke_flush_waiting(hzc_client_t *c) {
  hzshm__resend(c, hzshm__collect(c, hzshm__pick_waiting, NULL), uv_now(c->loop));
}

static int hzshm__pick_all(hzshm__call_t *k, void *arg) { return 1; }

void hzshm__invoke_fail_all(hzc_client_t *c, int err) {
  hzshm__call_t *list = hzshm__collect(c, hzshm__pick_all, NULL);
  while (list) {
    hzshm__call_t *k = list;
    list = k->hnext;
    k->hnext = NULL;
    hzshm__call_finish(c, k, NULL, err);
  }
}
