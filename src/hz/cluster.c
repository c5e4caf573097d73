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

#define MEMBER_RETRY_MS 500

void hzc__emit(hzc_client_t *c, enum hzc_event_kind kind, const hzc_uuid_t *member) {
  if (!c->event_cb || c->closing) return;
  hzc_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = kind;
  ev.cluster_id = c->cluster_id;
  if (member) ev.member = *member;
  ev.member_count = (uint32_t)c->nmembers;
  c->event_cb(c, &ev, c->event_ud);
}

static void connect_status(hzc_client_t *c, int status) {
  hzc_status_cb cb = c->connect_cb;
  if (!cb) return;
  c->connect_cb = NULL;
  cb(c, status, c->connect_ud);
}

static int uuid_eq(const hzc_uuid_t *a, const hzc_uuid_t *b) { return memcmp(a->b, b->b, 16) == 0; }

static hzc__member_t *member_find(hzc_client_t *c, const hzc_uuid_t *u) {
  for (size_t i = 0; i < c->nmembers; i++)
    if (uuid_eq(&c->members[i].uuid, u)) return &c->members[i];
  return NULL;
}

hzc__member_t *hzc__cluster_member_of(hzc_client_t *c, hzc__conn_t *k) {
  for (size_t i = 0; i < c->nmembers; i++)
    if (c->members[i].conn == k) return &c->members[i];
  return NULL;
}

static void recompute_owners(hzc_client_t *c) {
  if (!c->pmember) return;
  for (uint32_t p = 0; p < c->partition_count; p++) {
    c->pmember[p] = -1;
    for (size_t i = 0; i < c->nmembers; i++)
      if (uuid_eq(&c->members[i].uuid, &c->powner[p])) c->pmember[p] = (int32_t)i;
  }
}

hzc__conn_t *hzc__cluster_route(hzc_client_t *c, const hzc__call_t *k) {
  if (k->pin) return (k->pin->state == HZC__CONN_READY || k->pin->state == HZC__CONN_AUTH) ? k->pin : NULL;
  if (!c->connected) return NULL;
  if (k->has_target) {
    hzc__member_t *m = member_find(c, &k->target);
    if (m && m->conn) return m->conn;
  }
  if (c->smart && k->pid >= 0 && c->pmember && (uint32_t)k->pid < c->partition_count) {
    int32_t i = c->pmember[k->pid];
    if (i >= 0 && c->members[i].conn) return c->members[i].conn;
  }
  /* any READY connection, round robin */
  size_t n = 0;
  for (hzc__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZC__CONN_READY) n++;
  if (n == 0) return NULL;
  size_t want = c->rr++ % n;
  for (hzc__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZC__CONN_READY && want-- == 0) return x;
  return NULL;
}

/* ---- cluster view ---- */

static void view_register(hzc_client_t *c);

static int part_apply(void *ud, const hzc_uuid_t *owner, int32_t p) {
  hzc_client_t *c = ud;
  if (p < 0 || (uint32_t)p >= c->partition_count) return HZSHM_EPROTO;
  c->powner[p] = *owner;
  return 0;
}

static void apply_members(hzc_client_t *c, hzc__conn_t *from, const hzc__msg_t *m) {
  int32_t version;
  hzc__member_info_t *mi;
  size_t n;
  int rc = hzc__dec_members_view(m, &version, &mi, &n);
  if (rc) {
    hzc__conn_close(from, rc, "malformed MembersView event");
    return;
  }
  if (c->members_seen && version <= c->members_version) {
    free(mi);
    return;
  }
  hzc__member_t *nm = calloc(n ? n : 1, sizeof *nm);
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
    hzc__member_t *old = member_find(c, &mi[i].uuid);
    if (old) {
      nm[i].connecting = old->connecting;
      nm[i].requests = old->requests;
      nm[i].next_attempt = old->next_attempt;
    }
    for (hzc__conn_t *x = c->conns; x; x = x->next)
      if (x->state == HZC__CONN_READY && uuid_eq(&x->member, &mi[i].uuid)) nm[i].conn = x;
  }
  hzc__member_t *old = c->members;
  size_t nold = c->nmembers;
  c->members = nm;
  c->nmembers = n;
  c->members_version = version;
  c->members_seen = 1;
  recompute_owners(c);
  /* Connections to members that left are closed (after the new list is in place). */
  for (size_t i = 0; i < nold; i++) {
    if (member_find(c, &old[i].uuid)) continue;
    if (old[i].conn) hzc__conn_close(old[i].conn, HZSHM_ECLOSED, "member left the cluster");
    if (old[i].connecting) hzc__conn_close(old[i].connecting, HZSHM_ECLOSED, "member left the cluster");
  }
  free(old);
  free(mi);
  hzc__emit(c, HZC_EV_MEMBERS, NULL);
  connect_status(c, 0);
}

static void apply_partitions(hzc_client_t *c, hzc__conn_t *from, const hzc__msg_t *m) {
  int32_t version;
  if (!c->powner) return;
  hzc_uuid_t *save = malloc(c->partition_count * sizeof *save);
  if (!save) return;
  memcpy(save, c->powner, c->partition_count * sizeof *save);
  int rc = hzc__dec_partitions_view(m, &version, part_apply, c);
  if (rc) {
    memcpy(c->powner, save, c->partition_count * sizeof *save);
    free(save);
    hzc__conn_close(from, rc, "malformed PartitionsView event");
    return;
  }
  /* Members also re-send an unchanged table: only a change (or the first
   * table since a (re)connect) is an event, so users do not rerun repairs
   * (reconciliation) for nothing. */
  int changed = !c->partitions_fresh || memcmp(save, c->powner, c->partition_count * sizeof *save) != 0;
  free(save);
  c->partitions_version = version;
  c->partitions_fresh = 1;
  recompute_owners(c);
  if (changed) hzc__emit(c, HZC_EV_PARTITIONS, NULL);
}

static void view_event(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m) {
  int32_t t = hzc__msg_type(m);
  if (t == HZC__MT_VIEW_MEMBERS) apply_members(c, k->conn, m);
  else if (t == HZC__MT_VIEW_PARTITIONS) apply_partitions(c, k->conn, m);
  /* 0x000304 MemberGroupsView / 0x000305 ClusterVersion (2.8): ignored */
}

static void view_done(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status) {
  if (status == 0) return;
  if (c->view_call == k) c->view_call = NULL;
  if (!c->closing && c->connected) view_register(c);
}

static void view_register(hzc_client_t *c) {
  if (c->view_call) return;
  hzc__conn_t *k = NULL;
  for (hzc__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZC__CONN_READY) k = x;
  if (!k) return;
  hzc__mb_t b;
  hzc__enc_view(&b);
  hzc__call_t *call = hzc__call_new(c, &b, -1, 0, view_done);
  if (!call) return;
  call->pin = k;
  call->listener = 1;
  call->event = view_event;
  call->deadline = UINT64_MAX;
  if (hzc__call_submit(c, call) == 0) c->view_call = call;
}

/* ---- authentication ---- */

static void cluster_reset_view(hzc_client_t *c) {
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

/* The authentication response, checked: 0 = this connection may serve; else
 * it was closed (and a refusal reported) and the caller stops. */
static int auth_accept(hzc_client_t *c, hzc__conn_t *k, const hzc__msg_t *m, int status, hzc__auth_resp_t *r) {
  if (status) {
    hzc__conn_close(k, status, "authentication request failed");
    return -1;
  }
  int rc = hzc__dec_auth(m, r);
  if (rc) {
    hzc__conn_close(k, rc, "malformed authentication response");
    return -1;
  }
  if (r->status != 0) {
    hzc__log(HZC_LOG_ERR, "authentication to %s:%d refused: status %u (cluster name \"%s\")", k->host, k->port, r->status,
               c->cluster_name);
    c->auth_failed = 1;
    hzc__conn_close(k, HZSHM_EAUTH, "authentication refused");
    connect_status(c, HZSHM_EAUTH);
    hzc__emit(c, HZC_EV_AUTH_FAILED, NULL); /* also after an earlier connect error was reported */
    return -1;
  }
  if (c->connected && !uuid_eq(&c->cluster_id, &r->cluster_id)) {
    hzc__conn_close(k, HZSHM_ECLUSTER, "connection does not belong to this cluster");
    return -1;
  }
  if (c->connected && (uint32_t)r->partition_count != c->partition_count) {
    hzc__conn_close(k, HZSHM_ECLUSTER, "member reports another partition count");
    return -1;
  }
  for (hzc__conn_t *x = c->conns; x; x = x->next) {
    if (x != k && x->state == HZC__CONN_READY && uuid_eq(&x->member, &r->member)) {
      hzc__conn_close(k, HZSHM_ECLOSED, "duplicate connection to a member");
      return -1;
    }
  }
  return 0;
}

/* The routing tables for n partitions, both or neither (every reader of
 * powner / pmember relies on that): on failure both are freed and
 * partition_count is 0, so the next join allocates them afresh. */
static int routing_alloc(hzc_client_t *c, uint32_t n) {
  c->powner = calloc(n, sizeof *c->powner);
  c->pmember = malloc(n * sizeof *c->pmember);
  if (!c->powner || !c->pmember) {
    free(c->powner);
    free(c->pmember);
    c->powner = NULL;
    c->pmember = NULL;
    c->partition_count = 0;
    return -ENOMEM;
  }
  c->partition_count = n;
  for (uint32_t p = 0; p < n; p++) c->pmember[p] = -1;
  return 0;
}

/* The first ready connection (again): the client is connected to the cluster
 * of r. Emits CONNECTED / RECONNECTED / CLUSTER_CHANGED, whose handler may
 * close k: 0 = k is still ready, else the caller stops. */
static int cluster_join(hzc_client_t *c, hzc__conn_t *k, const hzc__auth_resp_t *r, const char *u) {
  enum hzc_event_kind kind = HZC_EV_CONNECTED;
  if (c->ever_connected) {
    int same_id = uuid_eq(&c->cluster_id, &r->cluster_id);
    /* Same id, another partition count: a cluster restarted under its old
     * id with another configuration. Nothing kept of the old view holds
     * (keys hash to other partitions, partition ids and their sequences
     * mean other things), so it is a new cluster to the user too. */
    int same_parts = (uint32_t)r->partition_count == c->cluster_parts;
    kind = same_id && same_parts ? HZC_EV_RECONNECTED : HZC_EV_CLUSTER_CHANGED;
    if (same_id && !same_parts)
      hzc__log(HZC_LOG_WARNING, "cluster at %s:%d has its old id but %d partitions (was %u): joined as another cluster",
               k->host, k->port, r->partition_count, c->cluster_parts);
  }
  if (kind != HZC_EV_RECONNECTED) cluster_reset_view(c);
  /* Before the cluster id is taken: a join that fails here changes nothing
   * the next one decides on, so after a failed CLUSTER_CHANGED the next join
   * is a CLUSTER_CHANGED again (the user clears what it kept of the old
   * cluster), not a RECONNECTED. */
  if (!c->powner && routing_alloc(c, (uint32_t)r->partition_count) != 0) {
    hzc__conn_close(k, -ENOMEM, "out of memory");
    return -1;
  }
  if (c->ever_connected) c->st.reconnects++;
  c->cluster_id = r->cluster_id;
  c->cluster_parts = c->partition_count;
  c->members_seen = 0; /* the first MembersView after (re)connect is applied whatever its version */
  c->partitions_fresh = 0; /* owners may have moved while we were away (hzc_partition_watch) */
  c->connected = 1;
  c->ever_connected = 1;
  c->backoff_ms = 0;
  hzc__log(HZC_LOG_DEBUG, "connected to cluster (member %s at %s:%d, %d partitions, server %s; auth response: %s, %zu frames "
             "after the server version)",
             u, k->host, k->port, r->partition_count, r->server_version,
             r->has_versions ? "2.7 member/partition list versions present" : "no 2.7 fixed fields", r->trailing_frames);
  hzc__emit(c, kind, &r->member);
  if (k->state != HZC__CONN_READY) return -1; /* the user closed it from the event */
  /* Partitions are assigned lazily: ask for it so a PartitionsView arrives. */
  hzc__mb_t b;
  hzc__enc_trigger_partitions(&b);
  hzc__call_t *t = hzc__call_new(c, &b, -1, 1, NULL);
  if (t) (void)hzc__call_submit(c, t);
  return 0;
}

/* k serves: its member, the cluster view and listeners, waiting invocations. */
static void conn_serving(hzc_client_t *c, hzc__conn_t *k, const hzc__auth_resp_t *r) {
  hzc__addr_note(c, k->host, k->port, k->ip, 0, "connected");
  hzc__member_t *mb = member_find(c, &r->member);
  if (mb) {
    mb->conn = k;
    if (mb->connecting == k) mb->connecting = NULL;
  }
  view_register(c);
  hzc__listen_conn_ready(c, k);
  if (k->state == HZC__CONN_READY) hzc__emit(c, HZC_EV_MEMBER_CONNECTED, &r->member);
  hzc__invoke_flush_waiting(c);
}

static void auth_done(hzc_client_t *c, hzc__call_t *call, const hzc__msg_t *m, int status) {
  hzc__conn_t *k = call->pin;
  hzc__auth_resp_t r;
  if (k->state == HZC__CONN_CLOSING || auth_accept(c, k, m, status, &r) != 0) return;
  k->member = r.member;
  k->state = HZC__CONN_READY;
  char u[37];
  hzc__uuid_str(&r.member, u);
  if (!c->connected) {
    if (cluster_join(c, k, &r, u) != 0) return;
  } else {
    hzc__log(HZC_LOG_DEBUG, "connection #%d to member %s at %s:%d ready", k->id, u, k->host, k->port);
  }
  conn_serving(c, k, &r);
}

void hzc__cluster_conn_connected(hzc_client_t *c, hzc__conn_t *k) {
  hzc__mb_t b;
  hzc__enc_auth(&b, c->cluster_name, &c->uuid, c->client_name);
  hzc__call_t *call = hzc__call_new(c, &b, -1, 0, auth_done);
  if (!call) {
    hzc__conn_close(k, -ENOMEM, "out of memory");
    return;
  }
  call->pin = k;
  call->deadline = uv_now(c->loop) + c->connect_timeout_ms;
  int rc = hzc__call_submit(c, call);
  if (rc) hzc__conn_close(k, rc, "authentication not sent");
}

void hzc__cluster_conn_closed(hzc_client_t *c, hzc__conn_t *k) {
  uint64_t now = uv_now(c->loop);
  for (size_t i = 0; i < c->nmembers; i++) {
    hzc__member_t *m = &c->members[i];
    if (m->conn == k) {
      m->conn = NULL;
      m->next_attempt = now + MEMBER_RETRY_MS;
    }
    if (m->connecting == k) {
      m->connecting = NULL;
      m->next_attempt = now + MEMBER_RETRY_MS;
    }
  }
  int any = 0;
  for (hzc__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZC__CONN_READY) any = 1;
  int lost_all = c->connected && !any;
  if (lost_all) {
    c->connected = 0;
    c->reconnect_at = now;
    c->backoff_ms = 0;
  }
  hzc__invoke_conn_closed(c, k);
  hzc__listen_conn_closed(c, k);
  if (c->closing) return;
  if (k->was_ready) hzc__emit(c, HZC_EV_MEMBER_CONNECTION_LOST, &k->member);
  if (lost_all) hzc__emit(c, HZC_EV_DISCONNECTED, NULL);
  if (!c->ever_connected && k->bootstrap && k->close_err != HZSHM_EAUTH) connect_status(c, k->close_err);
}

/* ---- tick: heartbeats, member connections, reconnect ---- */

static void ping(hzc_client_t *c, hzc__conn_t *k) {
  hzc__mb_t b;
  hzc__enc_ping(&b);
  hzc__call_t *call = hzc__call_new(c, &b, -1, 0, NULL);
  if (!call) return;
  call->pin = k;
  (void)hzc__call_submit(c, call);
}

static void open_bootstrap(hzc_client_t *c) {
  size_t total = c->nseeds + c->nmembers;
  if (total == 0) return;
  size_t i = c->seed_rr++ % total;
  const char *host;
  int port;
  char tmp[HZC__HOST_MAX];
  if (i < c->nseeds) {
    if (hzc_parse_address(c->seeds[i], tmp, sizeof tmp, &port) != 0) return; /* checked by hzc_client_new */
    host = tmp;
  } else {
    host = c->members[i - c->nseeds].host;
    port = c->members[i - c->nseeds].port;
  }
  hzc__conn_t *k;
  if (hzc__conn_open(c, host, port, &k) == 0) k->bootstrap = 1;
}

void hzc__cluster_tick(hzc_client_t *c, uint64_t now) {
  int pending = 0;
  for (hzc__conn_t *x = c->conns, *nx; x; x = nx) {
    nx = x->next;
    if (x->state == HZC__CONN_CONNECTING || x->state == HZC__CONN_AUTH) {
      pending = 1;
      if (now >= x->connect_deadline + (x->state == HZC__CONN_AUTH ? c->connect_timeout_ms : 0))
        hzc__conn_close(x, HZSHM_ETIMEDOUT, x->state == HZC__CONN_AUTH ? "authentication timed out" : "connect timed out");
    } else if (x->state == HZC__CONN_READY) {
      if (now - x->last_read >= c->heartbeat_timeout_ms)
        hzc__conn_close(x, HZSHM_ETIMEDOUT, "heartbeat timeout: member silent");
      else if (now - x->last_write >= c->heartbeat_interval_ms)
        ping(c, x);
    }
  }
  if (c->auth_failed) return;
  if (!c->connected) {
    if (!pending && now >= c->reconnect_at) {
      open_bootstrap(c);
      uint32_t b = c->backoff_ms ? c->backoff_ms * 2 : 100;
      c->backoff_ms = b > c->reconnect_max_backoff_ms ? c->reconnect_max_backoff_ms : b;
      c->reconnect_at = now + c->backoff_ms;
    }
    return;
  }
  if (!c->smart) return;
  for (size_t i = 0; i < c->nmembers; i++) {
    hzc__member_t *m = &c->members[i];
    if (m->conn || m->connecting || now < m->next_attempt) continue;
    /* Skip a member an unattached (bootstrap) connection already serves. */
    int have = 0;
    for (hzc__conn_t *x = c->conns; x; x = x->next)
      if (x->state == HZC__CONN_READY && uuid_eq(&x->member, &m->uuid)) {
        m->conn = x;
        have = 1;
      }
    if (have) continue;
    hzc__conn_t *k;
    m->next_attempt = now + MEMBER_RETRY_MS;
    if (hzc__conn_open(c, m->host, m->port, &k) == 0) m->connecting = k;
  }
}

void hzc__cluster_start(hzc_client_t *c) {
  c->reconnect_at = 0;
  hzc__cluster_tick(c, uv_now(c->loop));
}
