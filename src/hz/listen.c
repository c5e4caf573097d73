/* listen.c - near-cache invalidation and distributed-object listeners.
 *
 * A listener is registered on every member connection (smart routing:
 * localOnly=true, so each member sends what it generates; unisocket: the one
 * connection, localOnly=false), again on every new connection, and so after
 * every reconnect. Each registration is a listener call in the invocation
 * table whose correlation id the member stamps on its events. Removal sends
 * Map.RemoveEntryListener / Client.RemoveDistributedObjectListener with the
 * id returned on that connection, and drops the calls at once, so no
 * callback runs after hzc_listener_remove returns.
 *
 * Coverage (hzc_partition_watch): a connection counts as delivering events
 * only once every registration re-sent on it when it became READY was
 * acknowledged (relisten_pending == 0). A registration refused (error reply,
 * timeout) or not sent on a connection that stays up waits and is re-sent on
 * the same connection with backoff (REG_RETRY_MIN_MS doubling to
 * _MAX_MS), counted in relisten_pending meanwhile: that member would
 * otherwise silently never send the listener's events. Closing the
 * connection instead would make one refusing map cut every session's events
 * from that member, over and over.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "hzc_int.h"
#include "hzshm.h"
#include "listen_int.h"
#include "murmur.h"

#define REG_RETRY_MIN_MS 200u
#define REG_RETRY_MAX_MS 5000u

static void reg_unlink(hzc_listener_t *l, hzc__reg_t *r) {
  for (hzc__reg_t **pp = &l->regs; *pp; pp = &(*pp)->next)
    if (*pp == r) {
      *pp = r->next;
      free(r);
      return;
    }
}

static void listener_release(hzc_listener_t *l) {
  if (l->dispatching) {
    l->removed = 1;
    return;
  }
  free(l->map);
  free(l);
}

/* The status callback runs once: when every registration sent at add time
 * has been answered (0 if at least one succeeded), or, if there was no
 * connection then, at the first answer. So after status 0 every member
 * connected at that moment sends us its invalidations. */
static void report(hzc_client_t *c, hzc_listener_t *l, int initial, int status) {
  if (l->reported) return;
  if (initial) {
    l->initial--;
    if (status == 0) l->initial_ok = 1;
    if (l->initial > 0) return;
    status = l->initial_ok ? 0 : status;
  }
  if (status == HZSHM_ECLOSED && !l->initial_ok) return; /* will register on the next connection */
  l->reported = 1;
  if (l->cb) l->cb(c, status, l->ud);
}

/* One of the registrations re-sent when the connection became READY was
 * answered (or dropped): when none is left, the connection delivers the
 * events of every listener (hzc_partition_watch). */
static void relisten_answered(hzc_client_t *c, hzc__reg_t *r) {
  if (!r->relisten) return;
  r->relisten = 0;
  hzc__conn_t *k = r->conn;
  if (--k->relisten_pending == 0 && k->state == HZC__CONN_READY) hzc__emit(c, HZC_EV_LISTENING, &k->member);
}

static void reg_send(hzc_client_t *c, hzc_listener_t *l, hzc__reg_t *r);

/* r was refused or could not be sent while its connection stays up: it waits
 * for a retry, and the connection does not count as delivering every
 * listener's events until it is acknowledged. */
static void reg_wait(hzc_client_t *c, hzc__reg_t *r) {
  r->call = NULL;
  r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : REG_RETRY_MIN_MS;
  if (r->backoff_ms > REG_RETRY_MAX_MS) r->backoff_ms = REG_RETRY_MAX_MS;
  r->retry_at = uv_now(c->loop) + r->backoff_ms;
  if (!r->relisten) {
    r->relisten = 1;
    r->conn->relisten_pending++;
  }
  c->regs_waiting++;
}

static void reg_done(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status) {
  hzc_listener_t *l = k->owner;
  hzc__reg_t *r = k->owner2;
  hzc__conn_t *conn = r->conn;
  if (status == 0 && hzc__dec_resp_uuid(m, &r->id) != 0) {
    status = HZSHM_EPROTO;
    hzc__log(HZC_LOG_WARNING, "malformed listener registration response");
    hzc__call_drop(c, k); /* it would stay LISTENING: freed after this callback, never finished again */
  }
  int initial = r->initial;
  r->initial = 0;
  if (status != 0) r->call = NULL; /* finished (freed) by invoke.c; on success it stays, LISTENING */
  l->dispatching++; /* the user callback may remove the listener */
  if (status == 0) {
    r->acked = 1;
    r->backoff_ms = 0;
    relisten_answered(c, r);
    report(c, l, initial, 0);
  } else if (k->state != HZC__CALL_LISTENING && conn->state == HZC__CONN_READY && !c->closing &&
             status != HZSHM_EPROTO) {
    /* Refused (or timed out) on a connection that stays up: retry there.
     * Counted before the report, whose callback may remove the listener
     * (which frees r and settles the count). */
    if (r->backoff_ms == 0)
      hzc__log(HZC_LOG_WARNING, "listener registration%s%s refused by %s:%d (%s); retrying on that connection", l->map ? " for " : "",
                 l->map ? l->map : "", conn->host, conn->port, hzshm_strerror(status));
    reg_wait(c, r);
    report(c, l, initial, status);
  } else {
    /* Lost with its connection, or a malformed answer (the connection is closed below). */
    relisten_answered(c, r);
    int was_listening = k->state == HZC__CALL_LISTENING;
    reg_unlink(l, r);
    if (!was_listening) report(c, l, initial, status);
  }
  l->dispatching--;
  if (l->removed && !l->dispatching) listener_release(l);
  if (status == HZSHM_EPROTO && conn->state == HZC__CONN_READY)
    hzc__conn_close(conn, status, "malformed listener registration response");
}

typedef struct {
  hzc_client_t *c;
  hzc_listener_t *l;
  hzc__conn_t *conn;
} inv_ctx_t;

static int inv_one(void *ud, const hzc__inv_t *inv) {
  inv_ctx_t *x = ud;
  hzc_listener_t *l = x->l;
  if (l->removed) return 1;
  hzc_invalidation_t out;
  memset(&out, 0, sizeof out);
  out.source = inv->source;
  out.partition_uuid = inv->partition_uuid;
  out.sequence = inv->sequence;
  out.member = x->conn->member;
  uint32_t pc = x->c->partition_count;
  if (inv->key) {
    hzc_value_t v;
    if (hzc__data_decode(inv->key, inv->klen, &v)) return HZSHM_EPROTO;
    if (v.type == HZC_STRING) {
      out.key = v.data;
      out.klen = v.len;
      out.key_is_string = 1;
    } else {
      out.key = inv->key;
      out.klen = inv->klen;
    }
    out.partition = inv->partition >= 0 ? inv->partition
                                        : (int32_t)hzc__partition_of(hzc__data_hash(inv->key, inv->klen), pc);
  } else {
    out.partition = inv->partition >= 0 ? inv->partition
                                        : (int32_t)hzc__partition_of(hzc__string_hash(l->map, strlen(l->map)), pc);
  }
  l->icb(x->c, l->map, &out, l->iud);
  return 0;
}

static void inv_event(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m) {
  hzc_listener_t *l = k->owner;
  inv_ctx_t x = {c, l, k->conn};
  int32_t t = hzc__msg_type(m);
  if (t != HZC__MT_MAP_INVALIDATION && t != HZC__MT_MAP_BATCH_INVALIDATION) return; /* newer event kinds */
  l->dispatching++;
  int rc = hzc__dec_invalidation(m, inv_one, &x);
  l->dispatching--;
  if (l->removed && !l->dispatching) {
    listener_release(l);
    return;
  }
  if (rc == HZSHM_EPROTO) hzc__conn_close(k->conn, rc, "malformed invalidation event");
}

static void obj_event(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m) {
  hzc_listener_t *l = k->owner;
  char name[1024], service[256];
  hzc_uuid_t src;
  int destroyed = 0;
  if (hzc__msg_type(m) != HZC__MT_OBJ_EVENT) return;
  int rc = hzc__dec_obj_event(m, &src, name, sizeof name, service, sizeof service, &destroyed);
  if (rc) {
    hzc__conn_close(k->conn, rc, "malformed distributed-object event");
    return;
  }
  l->dispatching++;
  l->ocb(c, service, name, destroyed, &src, l->oud);
  l->dispatching--;
  if (l->removed && !l->dispatching) listener_release(l);
}

/* Sends (or re-sends) r's registration on r->conn; if it cannot be sent
 * while the connection is up, r waits for a retry. */
static void reg_send(hzc_client_t *c, hzc_listener_t *l, hzc__reg_t *r) {
  hzc__mb_t b;
  if (l->kind == HZC__L_INV) hzc__enc_add_nc_listener(&b, l->map, c->smart);
  else hzc__enc_add_obj_listener(&b, c->smart);
  hzc__call_t *k = hzc__call_new(c, &b, -1, 0, reg_done);
  if (k) {
    k->pin = r->conn;
    k->listener = 1;
    k->event = l->kind == HZC__L_INV ? inv_event : obj_event;
    k->owner = l;
    k->owner2 = r;
    r->call = k;
    /* A failed write only dooms the connection (closed by the tick), so
     * nothing is torn down inside this call. */
    if (hzc__call_submit(c, k) == 0) return; /* k freed on failure */
  }
  reg_wait(c, r);
}

/* A new registration of l on conn (READY), linked into l->regs. */
static hzc__reg_t *register_on(hzc_client_t *c, hzc_listener_t *l, hzc__conn_t *conn) {
  hzc__reg_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->conn = conn;
  r->next = l->regs;
  l->regs = r;
  return r;
}

void hzc__listen_conn_ready(hzc_client_t *c, hzc__conn_t *conn) {
  conn->relisten_pending = 1; /* held while sending, so no answer can reach 0 early */
  for (hzc_listener_t *l = c->listeners; l; l = l->next) {
    hzc__reg_t *r = register_on(c, l, conn);
    if (!r) { /* out of memory: this member would never send l's events */
      hzc__conn_close(conn, -ENOMEM, "listener registration not sent");
      return;
    }
    r->relisten = 1;
    conn->relisten_pending++;
    reg_send(c, l, r);
  }
  if (--conn->relisten_pending == 0 && conn->state == HZC__CONN_READY)
    hzc__emit(c, HZC_EV_LISTENING, &conn->member);
}

/* Frees the waiting registrations of a closed connection (registrations in
 * flight are finished by invoke.c with it). */
void hzc__listen_conn_closed(hzc_client_t *c, hzc__conn_t *conn) {
  if (c->regs_waiting == 0) return;
  for (hzc_listener_t *l = c->listeners; l; l = l->next)
    for (hzc__reg_t *r = l->regs, *nx; r; r = nx) {
      nx = r->next;
      if (r->conn == conn && r->call == NULL && !r->acked) reg_unlink(l, r);
    }
}

/* Re-sends the waiting registrations that are due (client tick). */
void hzc__listen_tick(hzc_client_t *c, uint64_t now) {
  if (c->regs_waiting == 0) return;
  size_t waiting = 0;
  c->regs_waiting = 0; /* recounted: reg_wait adds the ones that wait again */
  for (hzc_listener_t *l = c->listeners; l; l = l->next)
    for (hzc__reg_t *r = l->regs; r; r = r->next) {
      if (r->call != NULL || r->acked) continue;
      if (now < r->retry_at || r->conn->state != HZC__CONN_READY) {
        waiting++;
        continue;
      }
      reg_send(c, l, r); /* never closes a connection or frees a registration here */
    }
  c->regs_waiting += waiting;
}

static int listener_add(hzc_client_t *c, hzc_listener_t *l, hzc_listener_t **out) {
  l->next = c->listeners;
  c->listeners = l;
  for (hzc__conn_t *x = c->conns; x; x = x->next) {
    if (x->state != HZC__CONN_READY) continue;
    hzc__reg_t *r = register_on(c, l, x);
    if (r) {
      r->initial = 1;
      l->initial++;
      reg_send(c, l, r);
    } else {
      /* Not registered there: its events would be missed silently. */
      hzc__conn_close(x, -ENOMEM, "listener registration not sent");
    }
  }
  *out = l;
  return 0;
}

int hzc_map_listen_invalidations(hzc_client_t *c, const char *map, hzc_invalidation_cb icb, void *iud,
                                 hzc_status_cb cb, void *ud, hzc_listener_t **out) {
  if (!c || !map || !*map || !icb || !out) return HZSHM_EINVAL;
  if (c->closing) return HZSHM_ECLOSED;
  hzc_listener_t *l = calloc(1, sizeof *l);
  if (!l || !(l->map = strdup(map))) {
    free(l);
    return -ENOMEM;
  }
  l->kind = HZC__L_INV;
  l->icb = icb;
  l->iud = iud;
  l->cb = cb;
  l->ud = ud;
  return listener_add(c, l, out);
}

int hzc_listen_objects(hzc_client_t *c, hzc_object_cb ocb, void *oud, hzc_status_cb cb, void *ud,
                       hzc_listener_t **out) {
  if (!c || !ocb || !out) return HZSHM_EINVAL;
  if (c->closing) return HZSHM_ECLOSED;
  hzc_listener_t *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->kind = HZC__L_OBJ;
  l->ocb = ocb;
  l->oud = oud;
  l->cb = cb;
  l->ud = ud;
  return listener_add(c, l, out);
}

int hzc_listener_remove(hzc_client_t *c, hzc_listener_t *l) {
  if (!c || !l) return HZSHM_EINVAL;
  hzc_listener_t **pp = &c->listeners;
  while (*pp && *pp != l) pp = &(*pp)->next;
  if (!*pp) return HZSHM_EINVAL;
  *pp = l->next;
  while (l->regs) {
    hzc__reg_t *r = l->regs;
    l->regs = r->next;
    if (r->acked && r->conn->state == HZC__CONN_READY && !c->closing) {
      hzc__mb_t b;
      if (l->kind == HZC__L_INV) hzc__enc_remove_entry_listener(&b, l->map, &r->id);
      else hzc__enc_remove_obj_listener(&b, &r->id);
      hzc__call_t *k = hzc__call_new(c, &b, -1, 1, NULL);
      if (k) {
        k->pin = r->conn;
        (void)hzc__call_submit(c, k);
      }
    }
    if (r->call) hzc__call_drop(c, r->call);
    relisten_answered(c, r);
    free(r);
  }
  listener_release(l);
  return 0;
}

void hzc__listen_free_all(hzc_client_t *c) {
  while (c->listeners) {
    hzc_listener_t *l = c->listeners;
    c->listeners = l->next;
    while (l->regs) {
      hzc__reg_t *r = l->regs;
      l->regs = r->next;
      free(r);
    }
    l->dispatching = 0;
    listener_release(l);
  }
}
