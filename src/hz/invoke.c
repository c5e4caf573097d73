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

static size_t bucket(int64_t corr) { return (size_t)((uint64_t)corr & (HZC__TABLE_BUCKETS - 1)); }

static void table_put(hzc_client_t *c, hzc__call_t *k) {
  size_t b = bucket(k->corr);
  k->hnext = c->table[b];
  c->table[b] = k;
  c->ncalls++;
}

static hzc__call_t *hzc__table_find(hzc_client_t *c, int64_t corr) {
  for (hzc__call_t *k = c->table[bucket(corr)]; k; k = k->hnext)
    if (k->corr == corr) return k;
  return NULL;
}

static int hzc__table_remove(hzc_client_t *c, hzc__call_t *k) {
  for (hzc__call_t **pp = &c->table[bucket(k->corr)]; *pp; pp = &(*pp)->hnext) {
    if (*pp == k) {
      *pp = k->hnext;
      k->hnext = NULL;
      c->ncalls--;
      return 1;
    }
  }
  return 0;
}

static void call_free(hzc__call_t *k) {
  free(k->msg);
  free(k);
}

hzc__call_t *hzc__call_new(hzc_client_t *c, hzc__mb_t *b, int32_t pid, int retryable, hzc__call_done_fn done) {
  hzc__call_t *k = NULL;
  if (hzc__mb_finish(b)) goto out;
  k = calloc(1, sizeof *k);
  if (!k) goto out;
  k->msg = b->w.p;
  k->len = b->w.len;
  hzc__wr_init(&b->w);
  k->pid = pid;
  k->pcount = c->partition_count;
  k->retryable = retryable;
  k->done = done;
  k->deadline = uv_now(c->loop) + c->invocation_timeout_ms;
out:
  hzc__mb_free(b);
  return k;
}

/* Completes k (already out of the table): done(), then free. */
static void call_finish(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status) {
  if (k->done) k->done(c, k, m, status);
  call_free(k);
}

/* Sends k if a connection can take it; otherwise leaves it waiting.
 * Returns 0, or an error if it can never be sent (pinned connection gone). */
static int call_send(hzc_client_t *c, hzc__call_t *k) {
  uint64_t now = uv_now(c->loop);
  if (k->pin && k->pin->state == HZC__CONN_CLOSING) return HZSHM_ECLOSED;
  if (k->keyed) { /* the partition count is known once connected (and may change with the cluster) */
    if (c->partition_count == 0) {
      k->state = HZC__CALL_WAIT;
      k->conn = NULL;
      k->retry_at = now + 100;
      return 0;
    }
    k->pid = (int32_t)hzc__partition_of(k->khash, c->partition_count);
  } else if (k->pid >= 0 && c->partition_count != 0 && c->partition_count != k->pcount) {
    /* A fixed partition id (a bulk part: its keys were grouped by it) of
     * another partition count (the cluster changed since): here it names a
     * partition its keys do not hash to, where the member would store them
     * out of every Get's reach. Never sent. */
    return HZSHM_ECLUSTER;
  }
  hzc__conn_t *conn = hzc__cluster_route(c, k);
  if (!conn) {
    k->state = HZC__CALL_WAIT;
    k->conn = NULL;
    k->retry_at = now + 100;
    return 0;
  }
  hzc__msg_set_corr(k->msg, k->corr);
  if (k->pid >= 0) hzc__msg_set_pid(k->msg, k->pid);
  k->state = HZC__CALL_WAIT; /* until the write is queued: a failed write closes conn, not us */
  k->conn = NULL;
  if (hzc__conn_write(conn, k->msg, k->len) != 0) {
    k->retry_at = now + 100;
    return k->pin ? HZSHM_ECLOSED : 0;
  }
  k->state = HZC__CALL_SENT;
  k->conn = conn;
  k->attempts++;
  c->st.requests_sent++;
  conn->requests++;
  hzc__member_t *mb = hzc__cluster_member_of(c, conn);
  if (mb) mb->requests++;
  return 0;
}

int hzc__call_submit(hzc_client_t *c, hzc__call_t *k) {
  if (c->closing) {
    call_free(k);
    return HZSHM_ECLOSED;
  }
  k->corr = ++c->next_corr;
  table_put(c, k);
  int rc = call_send(c, k);
  if (rc) {
    hzc__table_remove(c, k);
    call_free(k);
  }
  return rc;
}

void hzc__call_drop(hzc_client_t *c, hzc__call_t *k) {
  hzc__table_remove(c, k);
  if (k->busy) k->dead = 1; /* freed when its callback returns */
  else call_free(k);
}

/* Runs a listener call's callback with the call out of the table, so that
 * the callback may drop the listener or close the client; puts it back after. */
static void listener_cb(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int is_event) {
  hzc__table_remove(c, k);
  k->busy = 1;
  if (is_event) k->event(c, k, m);
  else if (k->done) k->done(c, k, m, 0);
  k->busy = 0;
  if (k->dead) {
    call_free(k);
  } else if (c->closing || (k->conn && k->conn->state == HZC__CONN_CLOSING)) {
    call_finish(c, k, NULL, HZSHM_ECLOSED);
  } else {
    table_put(c, k);
  }
}

static int retry_code(int32_t code, int retryable) {
  switch (code) {
    case 8: case 19: case 33: case 39: case 46: case 47: case 53: case 62:
      return 1;
    case 22: case 52:
      return retryable;
    default:
      return 0;
  }
}

static void schedule_retry(hzc_client_t *c, hzc__call_t *k, uint64_t now) {
  uint32_t pause = 50u << (k->attempts < 5 ? k->attempts : 5);
  if (pause > 1000) pause = 1000;
  k->state = HZC__CALL_WAIT;
  k->conn = NULL;
  k->retry_at = now + pause;
  c->st.retries++;
}

void hzc__invoke_on_message(hzc_client_t *c, hzc__conn_t *conn, const hzc__msg_t *m) {
  int64_t corr = hzc__msg_corr(m);
  hzc__call_t *k = hzc__table_find(c, corr);
  uint16_t fl = m->f[0].flags;
  if (fl & HZC__F_BACKUP_EVENT) return; /* we never set BACKUP_AWARE */
  if (fl & HZC__F_EVENT) {
    c->st.events++;
    /* A member may send a listener's first events before the registration
     * response (the cluster-view listener does: MembersView arrives first), so
     * events are delivered while the call is still SENT too. */
    if (k && k->listener && (k->state == HZC__CALL_LISTENING || k->state == HZC__CALL_SENT) && k->conn == conn &&
        k->event)
      listener_cb(c, k, m, 1);
    return;
  }
  if (!k || k->conn != conn || k->state != HZC__CALL_SENT) return; /* late reply after timeout/retry */
  c->st.responses++;
  int32_t rtype = hzc__msg_type(m), qtype = (int32_t)hzshm__le32_get(k->msg + HZC__FRAME_HDR);
  if (rtype != HZC__MT_ERROR && rtype != qtype + 1) {
    hzc__log(HZC_LOG_WARNING, "response type 0x%06x to request 0x%06x (correlation %lld)", (unsigned)rtype, (unsigned)qtype,
               (long long)corr);
    hzc__conn_close(conn, HZSHM_EPROTO, "response of another message type");
    return;
  }
  if (rtype == HZC__MT_ERROR) {
    hzc__remote_err_t e;
    int rc = hzc__dec_error(m, &e.code, e.cls, sizeof e.cls, e.msg, sizeof e.msg);
    uint64_t now = uv_now(c->loop);
    if (rc == 0 && !k->pin && retry_code(e.code, k->retryable) && now < k->deadline) {
      schedule_retry(c, k, now);
      return;
    }
    hzc__table_remove(c, k);
    call_finish(c, k, m, rc ? rc : HZSHM_EREMOTE);
    if (rc == HZSHM_EPROTO) hzc__conn_close(conn, rc, "malformed error response");
    return;
  }
  if (k->listener) {
    k->state = HZC__CALL_LISTENING;
    listener_cb(c, k, m, 0); /* stays in the table afterwards */
    return;
  }
  hzc__table_remove(c, k);
  call_finish(c, k, m, 0);
}

/* Detaches the calls selected by `pick` into a list linked through hnext. */
static hzc__call_t *collect(hzc_client_t *c, int (*pick)(hzc__call_t *, void *), void *arg) {
  hzc__call_t *list = NULL, **tail = &list;
  for (size_t b = 0; b < HZC__TABLE_BUCKETS; b++) {
    hzc__call_t **pp = &c->table[b];
    while (*pp) {
      hzc__call_t *k = *pp;
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

static int pick_conn(hzc__call_t *k, void *arg) {
  hzc__conn_t *conn = arg;
  return k->pin == conn || (k->conn == conn && (k->state == HZC__CALL_SENT || k->state == HZC__CALL_LISTENING));
}

void hzc__invoke_conn_closed(hzc_client_t *c, hzc__conn_t *conn) {
  uint64_t now = uv_now(c->loop);
  hzc__call_t *list = collect(c, pick_conn, conn);
  while (list) {
    hzc__call_t *k = list;
    list = k->hnext;
    k->hnext = NULL;
    if (!k->pin && !k->listener && k->retryable && now < k->deadline && !c->closing) {
      schedule_retry(c, k, now);
      k->retry_at = now; /* another connection may take it right away */
      table_put(c, k);
      continue;
    }
    int err = conn->close_err;
    call_finish(c, k, NULL, err == HZSHM_ETIMEDOUT || err == HZSHM_EPROTO ? err : HZSHM_ECLOSED);
  }
}

static int pick_due(hzc__call_t *k, void *arg) {
  uint64_t now = *(uint64_t *)arg;
  if (k->state == HZC__CALL_LISTENING) return 0;
  return now >= k->deadline || (k->state == HZC__CALL_WAIT && now >= k->retry_at);
}

static int pick_waiting(hzc__call_t *k, void *arg) { return k->state == HZC__CALL_WAIT; }

static void resend(hzc_client_t *c, hzc__call_t *list, uint64_t now) {
  while (list) {
    hzc__call_t *k = list;
    list = k->hnext;
    k->hnext = NULL;
    if (now >= k->deadline) {
      c->st.timeouts++;
      call_finish(c, k, NULL, HZSHM_ETIMEDOUT);
      continue;
    }
    if (k->state == HZC__CALL_SENT) { /* not yet due: only deadline matters */
      table_put(c, k);
      continue;
    }
    table_put(c, k);
    int rc = call_send(c, k);
    if (rc) {
      hzc__table_remove(c, k);
      call_finish(c, k, NULL, rc);
    }
  }
}

void hzc__invoke_tick(hzc_client_t *c, uint64_t now) {
  resend(c, collect(c, pick_due, &now), now);
}

void hzc__invoke_flush_waiting(hzc_client_t *c) {
  resend(c, collect(c, pick_waiting, NULL), uv_now(c->loop));
}

static int pick_all(hzc__call_t *k, void *arg) { return 1; }

void hzc__invoke_fail_all(hzc_client_t *c, int err) {
  hzc__call_t *list = collect(c, pick_all, NULL);
  while (list) {
    hzc__call_t *k = list;
    list = k->hnext;
    k->hnext = NULL;
    call_finish(c, k, NULL, err);
  }
}
