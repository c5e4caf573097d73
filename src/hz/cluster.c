/* cluster.c - bootstrap, authentication, the cluster-view listener (member
 * list and partition table), smart routing (one connection per member, key
 * requests to the partition owner), heartbeats, reconnect with backoff and
 * cluster-id change detection (hazelcast-client-protocol.md §4.8, §5).
 *
 * Loop thread only. Connections are only ever opened from the tick (or
 * hzc_client_connect), never from inside a close path, so closing cannot
 * recurse into connecting.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hzc_int.h"
#include "hzshm.h"
#include "murmur.h"

#define HZSHM__MEMBER_RETRY_MS 500

void hzshm__emit(hzc_client_t *c, enum hzc_event_kind kind, const hzc_uuid_t *member) {
  if (!c->event_cb || c->closing) return;
  hzc_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.cluster_id = c->cluster_id;
  if (member) ev.member = *member;
  ev.member_count = (uint32_t)c->nmembers;
  c->event_cb(c, &ev, c->event_ud);
}

static void hzshm__connect_status(hzc_client_t *c, int status) {
  hzc_status_cb cb = c->connect_cb;
  if (!cb) return;
  c->connect_cb = NULL;
  cb(c, status, c->connect_ud);
}

static int hzshm__uuid_eq(const hzc_uuid_t *a, const hzc_uuid_t *b) { return memcmp(a->b, b->b, 16) == 0; }

static hzshm__member_t *hzshm__member_find(hzc_client_t *c, const hzc_uuid_t *u) {
  for (size_t i = 0; i < c->nmembers; i++)
    if (hzshm__uuid_eq(&c->members[i].uuid, u)) return &c->members[i];
  return NULL;
}

hzshm__member_t *hzshm__cluster_member_of(hzc_client_t *c, hzshm__conn_t *k) {
  for (size_t i = 0; i < c->nmembers; i++)
    if (c->members[i].conn == k) return &c->members[i];
  return NULL;
}

static void hzshm__recompute_owners(hzc_client_t *c) {
  if (!c->pmember) return;
  for (uint32_t p = 0; p < c->partition_count; p++) {
    c->pmember[p] = -1;
    for (size_t i = 0; i < c->nmembers; i++)
      if (hzshm__uuid_eq(&c->members[i].uuid, &c->powner[p])) c->pmember[p] = (int32_t)i;
  }
}

hzshm__conn_t *hzshm__cluster_route(hzc_client_t *c, const hzshm__call_t *k) {
  if (k->pin) return (k->pin->state == HZSHM__CONN_READY || k->pin->state == HZSHM__CONN_AUTH) ? k->pin : NULL;
  if (!c->connected) return NULL;
  if (k->has_target) {
    hzshm__member_t *m = hzshm__member_find(c, &k->target);
    if (m && m->conn) return m->conn;
  }
  if (c->smart && k->pid >= 0 && c->pmember && (uint32_t)k->pid < c->partition_count) {
    int32_t i = c->pmember[k->pid];
    if (i >= 0 && c->members[i].conn) return c->members[i].conn;
  }
  /* any READY connection, round robin */
  size_t n = 0;
  for (hzshm__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZSHM__CONN_READY) n++;
  if (n == 0) return NULL;
  size_t want = c->rr++ % n;
  for (hzshm__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZSHM__CONN_READY && want-- == 0) return x;
  return NULL;
}

/* ---- cluster view ---- */

static void hzshm__view_register(hzc_client_t *c);

static int hzshm__part_apply(void *ud, const hzc_uuid_t *owner, int32_t p) {
  hzc_client_t *c = ud;
  if (p < 0 || (uint32_t)p >= c->partition_count) return HZSHM_EPROTO;
  c->powner[p] = *owner;
  return 0;
}

static void hzshm__apply_members(hzc_client_t *c, hzshm__conn_t *from, const hzshm__msg_t *m) {
  int32_t version;
  hzshm__member_info_t *mi;
  size_t n;
  int rc = hzshm__dec_members_view(m, &version, &mi, &n);
  if (rc) {
    hzshm__conn_close(from, rc, "malformed MembersView event");
    return;
  }
  if (c->members_seen && version <= c->members_version) {
    free(mi);
    return;
  }
  hzshm__member_t *nm = calloc(n ? n : 1, sizeof *nm);
  if (!nm) {
    free(mi);
    return;
  }
  uint64_t now = uv_now(c->loop);
  for (size_t i = 0; i < n; i++) {
    nm[i].uuid = mi[i].uuid;
    memcpy(nm[i].host, mi[i].host, sizeof nm[i].host);
    nm[i].port = mi[i].port;
    nm[i].lite = mi[i].lite;
    nm[i].next_attempt = now;
    hzshm__member_t *old = hzshm__member_find(c, &mi[i].uuid);
    if (old) {
      nm[i].connecting = old->connecting;
      nm[i].requests = old->requests;
      nm[i].next_attempt = old->next_attempt;
    }
    for (hzshm__conn_t *x = c->conns; x; x = x->next)
      if (x->state == HZSHM__CONN_READY && hzshm__uuid_eq(&x->member, &mi[i].uuid)) nm[i].conn = x;
  }
  hzshm__member_t *old = c->members;
  size_t nold = c->nmembers;
  c->members = nm;
  c->nmembers = n;
  c->members_version = version;
  c->members_seen = 1;
  hzshm__recompute_owners(c);
  /* Connections to members that left are closed (after the new list is in place). */
  for (size_t i = 0; i < nold; i++) {
    if (hzshm__member_find(c, &old[i].uuid)) continue;
    if (old[i].conn) hzshm__conn_close(old[i].conn, HZSHM_ECLOSED, "member left the cluster");
    if (old[i].connecting) hzshm__conn_close(old[i].connecting, HZSHM_ECLOSED, "member left the cluster");
  }
  free(old);
  free(mi);
  hzshm__emit(c, HZC_EV_MEMBERS, NULL);
  hzshm__connect_status(c, 0);
}

static void hzshm__apply_partitions(hzc_client_t *c, hzshm__conn_t *from, const hzshm__msg_t *m) {
  int32_t version;
  if (!c->powner) return;
  hzc_uuid_t *save = malloc(c->partition_count * sizeof *save);
  if (!save) return;
  memcpy(save, c->powner, c->partition_count * sizeof *save);
  int rc = hzshm__dec_partitions_view(m, &version, hzshm__part_apply, c);
  if (rc) {
    memcpy(c->powner, save, c->partition_count * sizeof *save);
    free(save);
    hzshm__conn_close(from, rc, "malformed PartitionsView event");
    return;
  }
  /* Members also re-send an unchanged table: only a change (or the first
   * table since a (re)connect) is an event, so users do not rerun repairs
   * (reconciliation) for nothing. */
  int changed = !c->partitions_fresh || memcmp(save, c->powner, c->partition_count * sizeof *save) != 0;
  free(save);
  c->partitions_version = version;
  c->partitions_fresh = 1;
  hzshm__recompute_owners(c);
  if (changed) hzshm__emit(c, HZC_EV_PARTITIONS, NULL);
}

static void hzshm__view_event(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m) {
  int32_t t = hzshm__msg_type(m);
  if (t == HZSHM__MT_VIEW_MEMBERS) hzshm__apply_members(c, k->conn, m);
  else if (t == HZSHM__MT_VIEW_PARTITIONS) hzshm__apply_partitions(c, k->conn, m);
  /* 0x000304 MemberGroupsView / 0x000305 ClusterVersion (2.8): ignored */
}

static void hzshm__view_done(hzc_client_t *c, hzshm__call_t *k, const hzshm__msg_t *m, int status) {
  if (status == 0) return;
  if (c->view_call == k) c->view_call = NULL;
  if (!c->closing && c->connected) hzshm__view_register(c);
}

static void hzshm__view_register(hzc_client_t *c) {
  if (c->view_call) return;
  hzshm__conn_t *k = NULL;
  for (hzshm__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZSHM__CONN_READY) k = x;
  if (!k) return;
  hzshm__mb_t b;
  hzshm__enc_view(&b);
  hzshm__call_t *call = hzshm__call_new(c, &b, -1, 0, hzshm__view_done);
  if (!call) return;
  call->pin = k;
  call->listener = 1;
  call->event = hzshm__view_event;
  call->deadline = UINT64_MAX;
  if (hzshm__call_submit(c, call) == 0) c->view_call = call;
}

/* ---- authentication ---- */

static void hzshm__cluster_reset_view(hzc_client_t *c) {
  free(c->members);
  c->members = NULL;
  c->nmembers = 0;
  c->members_version = -1;
  c->members_seen = 0;
  free(c->powner);
  free(c->pmember);
  c->powner = NULL;
  c->pmember = NULL;
  c->partition_count = 0;
  c->partitions_version = -1;
}

static void hzshm__auth_done(hzc_client_t *c, hzshm__call_t *call, const hzshm__msg_t *m, int status) {
  hzshm__conn_t *k = call->pin;
  hzshm__auth_resp_t r;
  char u[37];
  if (k->state == HZSHM__CONN_CLOSING) return;
  if (status) {
    hzshm__conn_close(k, status, "authentication request failed");
    return;
  }
  int rc = hzshm__dec_auth(m, &r);
  if (rc) {
    hzshm__conn_close(k, rc, "malformed authentication response");
    return;
  }
  if (r.status != 0) {
    hzshm__log(HZC_LOG_ERR, "authentication to %s:%d refused: status %u (cluster name \"%s\")", k->host, k->port, r.status,
               c->cluster_name);
    c->auth_failed = 1;
    hzshm__conn_close(k, HZSHM_EAUTH, "authentication refused");
    hzshm__connect_status(c, HZSHM_EAUTH);
    hzshm__emit(c, HZC_EV_AUTH_FAILED, NULL); /* also after an earlier connect error was reported */
    return;
  }
  if (c->connected && !hzshm__uuid_eq(&c->cluster_id, &r.cluster_id)) {
    hzshm__conn_close(k, HZSHM_ECLUSTER, "connection does not belong to this cluster");
    return;
  }
  if (c->connected && (uint32_t)r.partition_count != c->partition_count) {
    hzshm__conn_close(k, HZSHM_ECLUSTER, "member reports another partition count");
    return;
  }
  for (hzshm__conn_t *x = c->conns; x; x = x->next) {
    if (x != k && x->state == HZSHM__CONN_READY && hzshm__uuid_eq(&x->member, &r.member)) {
      hzshm__conn_close(k, HZSHM_ECLOSED, "duplicate connection to a member");
      return;
    }
  }
  k->member = r.member;
  k->state = HZSHM__CONN_READY;
  hzshm__uuid_str(&r.member, u);
  if (!c->connected) {
    enum hzc_event_kind kind = HZC_EV_CONNECTED;
    if (c->ever_connected) {
      kind = hzshm__uuid_eq(&c->cluster_id, &r.cluster_id) ? HZC_EV_RECONNECTED : HZC_EV_CLUSTER_CHANGED;
      c->st.reconnects++;
    }
    if (kind != HZC_EV_RECONNECTED) hzshm__cluster_reset_view(c);
    c->cluster_id = r.cluster_id;
    if (!c->powner) {
      c->partition_count = (uint32_t)r.partition_count;
      c->powner = calloc(c->partition_count, sizeof *c->powner);
      c->pmember = malloc(c->partition_count * sizeof *c->pmember);
      if (!c->powner || !c->pmember) {
        hzshm__conn_close(k, -ENOMEM, "out of memory");
        return;
      }
      for (uint32_t p = 0; p < c->partition_count; p++) c->pmember[p] = -1;
    }
    c->members_seen = 0; /* the first MembersView after (re)connect is applied whatever its version */
    c->partitions_fresh = 0; /* owners may have moved while we were away (hzc_partition_watch) */
    c->connected = 1;
    c->ever_connected = 1;
    c->backoff_ms = 0;
    hzshm__log(HZC_LOG_DEBUG, "connected to cluster (member %s at %s:%d, %d partitions, server %s; auth response: %s, %zu frames "
               "after the server version)",
               u, k->host, k->port, r.partition_count, r.server_version,
               r.has_versions ? "2.7 member/partition list versions present" : "no 2.7 fixed fields", r.trailing_frames);
    hzshm__emit(c, kind, &r.member);
    if (k->state != HZSHM__CONN_READY) return; /* the user closed it from the event */
    /* Partitions are assigned lazily: ask for it so a PartitionsView arrives. */
    hzshm__mb_t b;
    hzshm__enc_trigger_partitions(&b);
    hzshm__call_t *t = hzshm__call_new(c, &b, -1, 1, NULL);
    if (t) (void)hzshm__call_submit(c, t);
  } else {
    hzshm__log(HZC_LOG_DEBUG, "connection #%d to member %s at %s:%d ready", k->id, u, k->host, k->port);
  }
  hzshm__addr_note(c, k->host, k->port, k->ip, 0, "connected");
  hzshm__member_t *mb = hzshm__member_find(c, &r.member);
  if (mb) {
    mb->conn = k;
    if (mb->connecting == k) mb->connecting = NULL;
  }
  hzshm__view_register(c);
  hzshm__listen_conn_ready(c, k);
  if (k->state == HZSHM__CONN_READY) hzshm__emit(c, HZC_EV_MEMBER_CONNECTED, &r.member);
  hzshm__invoke_flush_waiting(c);
}

void hzshm__cluster_conn_connected(hzc_client_t *c, hzshm__conn_t *k) {
  hzshm__mb_t b;
  hzshm__enc_auth(&b, c->cluster_name, &c->uuid, c->client_name);
  hzshm__call_t *call = hzshm__call_new(c, &b, -1, 0, hzshm__auth_done);
  if (!call) {
    hzshm__conn_close(k, -ENOMEM, "out of memory");
    return;
  }
  call->pin = k;
  call->deadline = uv_now(c->loop) + c->connect_timeout_ms;
  int rc = hzshm__call_submit(c, call);
  if (rc) hzshm__conn_close(k, rc, "authentication not sent");
}

void hzshm__cluster_conn_closed(hzc_client_t *c, hzshm__conn_t *k) {
  uint64_t now = uv_now(c->loop);
  for (size_t i = 0; i < c->nmembers; i++) {
    hzshm__member_t *m = &c->members[i];
    if (m->conn == k) {
      m->conn = NULL;
      m->next_attempt = now + HZSHM__MEMBER_RETRY_MS;
    }
    if (m->connecting == k) {
      m->connecting = NULL;
      m->next_attempt = now + HZSHM__MEMBER_RETRY_MS;
    }
  }
  int any = 0;
  for (hzshm__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZSHM__CONN_READY) any = 1;
  int lost_all = c->connected && !any;
  if (lost_all) {
    c->connected = 0;
    c->reconnect_at = now;
    c->backoff_ms = 0;
  }
  hzshm__invoke_conn_closed(c, k);
  hzshm__listen_conn_closed(c, k);
  if (c->closing) return;
  if (k->was_ready) hzshm__emit(c, HZC_EV_MEMBER_CONNECTION_LOST, &k->member);
  if (lost_all) hzshm__emit(c, HZC_EV_DISCONNECTED, NULL);
  if (!c->ever_connected && k->bootstrap && k->close_err != HZSHM_EAUTH) hzshm__connect_status(c, k->close_err);
}

/* ---- tick: heartbeats, member connections, reconnect ---- */

static void hzshm__ping(hzc_client_t *c, hzshm__conn_t *k) {
  hzshm__mb_t b;
  hzshm__enc_ping(&b);
  hzshm__call_t *call = hzshm__call_new(c, &b, -1, 0, NULL);
  if (!call) return;
  call->pin = k;
  (void)hzshm__call_submit(c, call);
}

static void hzshm__open_bootstrap(hzc_client_t *c) {
  size_t total = c->nseeds + c->nmembers;
  if (total == 0) return;
  size_t i = c->seed_rr++ % total;
  const char *host;
  int port;
  char tmp[HZSHM__HOST_MAX];
  if (i < c->nseeds) {
    if (hzc_parse_address(c->seeds[i], tmp, sizeof tmp, &port) != 0) return; /* checked by hzc_client_new */
    host = tmp;
  } else {
    host = c->members[i - c->nseeds].host;
    port = c->members[i - c->nseeds].port;
  }
  hzshm__conn_t *k;
  if (hzshm__conn_open(c, host, port, &k) == 0) k->bootstrap = 1;
}

void hzshm__cluster_tick(hzc_client_t *c, uint64_t now) {
  int pending = 0;
  for (hzshm__conn_t *x = c->conns, *nx; x; x = nx) {
    nx = x->next;
    if (x->state == HZSHM__CONN_CONNECTING || x->state == HZSHM__CONN_AUTH) {
      pending = 1;
      if (now >= x->connect_deadline + (x->state == HZSHM__CONN_AUTH ? c->connect_timeout_ms : 0))
        hzshm__conn_close(x, HZSHM_ETIMEDOUT, x->state == HZSHM__CONN_AUTH ? "authentication timed out" : "connect timed out");
    } else if (x->state == HZSHM__CONN_READY) {
      if (now - x->last_read >= c->heartbeat_timeout_ms)
        hzshm__conn_close(x, HZSHM_ETIMEDOUT, "heartbeat timeout: member silent");
      else if (now - x->last_write >= c->heartbeat_interval_ms)
        hzshm__ping(c, x);
    }
  }
  if (c->auth_failed) return;
  if (!c->connected) {
    if (!pending && now >= c->reconnect_at) {
      hzshm__open_bootstrap(c);
      uint32_t b = c->backoff_ms ? c->backoff_ms * 2 : 100;
      c->backoff_ms = b > c->reconnect_max_backoff_ms ? c->reconnect_max_backoff_ms : b;
      c->reconnect_at = now + c->backoff_ms;
    }
    return;
  }
  if (!c->smart) return;
  for (size_t i = 0; i < c->nmembers; i++) {
    hzshm__member_t *m = &c->members[i];
    if (m->conn || m->connecting || now < m->next_attempt) continue;
    /* Skip a member an unattached (bootstrap) connection already serves. */
    int have = 0;
    for (hzshm__conn_t *x = c->conns; x; x = x->next)
      if (x->state == HZSHM__CONN_READY && hzshm__uuid_eq(&x->member, &m->uuid)) {
        m->conn = x;
        have = 1;
      }
    if (have) continue;
    hzshm__conn_t *k;
    m->next_attempt = now + HZSHM__MEMBER_RETRY_MS;
    if (hzshm__conn_open(c, m->host, m->port, &k) == 0) m->connecting = k;
  }
}

void hzshm__cluster_start(hzc_client_t *c) {
  c->reconnect_at = 0;
  hzshm__cluster_tick(c, uv_now(c->loop));
}
