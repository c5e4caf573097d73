/* client.c - hzc_client lifecycle (new, connect, close, finalize), the tick
 * timer driving heartbeats / reconnects / timeouts, deferred completions,
 * getters, statistics and hzc_run_until.
 *
 * Loop thread only. Close order: fail every call (HZSHM_ECLOSED), close every
 * connection and both timers; the client is freed in the last close callback
 * and then the user's close callback runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hzc_int.h"
#include "murmur.h"

#define TICK_MS 50

struct hzc__deferred {
  struct hzc__deferred *next;
  hzc_result_cb cb;
  void *ud;
  int status;
};

static char *dup_or(const char *s, const char *def) {
  return strdup(s ? s : def);
}

static void timer_closed(uv_handle_t *h) {
  hzc_client_t *c = h->data;
  if (--c->handles == 0 && c->closing) {
    hzc__client_finalize(c);
  }
}

static void run_deferred(hzc_client_t *c, int force_status) {
  struct hzc__deferred *d = c->deferred, *rev = NULL;
  c->deferred = NULL;
  while (d) { /* restore submission order */
    struct hzc__deferred *n = d->next;
    d->next = rev;
    rev = d;
    d = n;
  }
  while (rev) {
    struct hzc__deferred *n = rev->next;
    hzc_result_t r;
    memset(&r, 0, sizeof r);
    r.status = force_status ? force_status : rev->status;
    if (rev->cb) rev->cb(c, &r, rev->ud);
    free(rev);
    rev = n;
  }
}

static void defer_fire(uv_timer_t *t) { run_deferred(t->data, 0); }

void hzc__defer(hzc_client_t *c, hzc_result_cb cb, void *ud, int status) {
  struct hzc__deferred *d = calloc(1, sizeof *d);
  if (!d) return; /* out of memory: the callback is lost; nothing better to do without blocking */
  d->cb = cb;
  d->ud = ud;
  d->status = status;
  d->next = c->deferred;
  c->deferred = d;
  uv_timer_start(&c->defer_timer, defer_fire, 0, 0);
}

static void tick(uv_timer_t *t) {
  hzc_client_t *c = t->data;
  uint64_t now = uv_now(c->loop);
  hzc__conn_close_doomed(c);
  hzc__cluster_tick(c, now);
  if (!c->closing) {
    hzc__invoke_tick(c, now);
    hzc__listen_tick(c, now);
  }
}

static int random_uuid(hzc_uuid_t *u) {
  size_t got = 0;
  while (got < sizeof u->b) {
    ssize_t n = getrandom(u->b + got, sizeof u->b - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    got += (size_t)n;
  }
  u->b[6] = (uint8_t)((u->b[6] & 0x0F) | 0x40); /* version 4 */
  u->b[8] = (uint8_t)((u->b[8] & 0x3F) | 0x80); /* IETF variant */
  return 0;
}

static int check_addr(const char *a) {
  char host[HZC__HOST_MAX];
  int port;
  return hzc_parse_address(a, host, sizeof host, &port);
}

int hzc_client_new(uv_loop_t *loop, const hzc_config_t *cfg, hzc_client_t **out) {
  int rc = 0;
  hzc_client_t *c = NULL;
  if (!loop || !cfg || !out || !cfg->addrs || cfg->naddrs == 0) return HZSHM_EINVAL;
  for (size_t i = 0; i < cfg->naddrs; i++)
    if (check_addr(cfg->addrs[i])) return HZSHM_EINVAL;
  /* The member refuses (closes) an Authentication over 4096 bytes (PROTOCOL-NOTES §2);
   * everything but these two names is < 200 bytes. */
  if ((cfg->cluster_name ? strlen(cfg->cluster_name) : 0) + (cfg->client_name ? strlen(cfg->client_name) : 0) > 3800)
    return HZSHM_EINVAL;
  c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  c->loop = loop;
  c->cluster_name = dup_or(cfg->cluster_name, "dev");
  c->client_name = dup_or(cfg->client_name, "hzshm");
  c->seeds = calloc(cfg->naddrs, sizeof *c->seeds);
  if (!c->cluster_name || !c->client_name || !c->seeds) {
    rc = -ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < cfg->naddrs; i++) {
    if (!(c->seeds[i] = strdup(cfg->addrs[i]))) {
      rc = -ENOMEM;
      goto fail;
    }
    c->nseeds++;
  }
  c->smart = cfg->smart;
  c->invocation_timeout_ms = cfg->invocation_timeout_ms ? cfg->invocation_timeout_ms : 120000;
  c->heartbeat_interval_ms = cfg->heartbeat_interval_ms ? cfg->heartbeat_interval_ms : 5000;
  c->heartbeat_timeout_ms = cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms : 60000;
  c->watch_silence_ms = cfg->watch_silence_ms;
  c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;
  c->reconnect_max_backoff_ms = cfg->reconnect_max_backoff_ms ? cfg->reconnect_max_backoff_ms : 2000;
  c->members_version = -1;
  c->partitions_version = -1;
  if ((rc = random_uuid(&c->uuid))) goto fail;
  if ((rc = uv_timer_init(loop, &c->tick)) || (rc = uv_timer_init(loop, &c->defer_timer))) goto fail;
  c->tick.data = c;
  c->defer_timer.data = c;
  c->handles = 2;
  *out = c;
  return 0;
fail:
  if (c) {
    for (size_t i = 0; i < c->nseeds; i++) free(c->seeds[i]);
    free(c->seeds);
    free(c->cluster_name);
    free(c->client_name);
    free(c);
  }
  return rc;
}

void hzc_client_set_event_cb(hzc_client_t *c, hzc_event_cb cb, void *ud) {
  c->event_cb = cb;
  c->event_ud = ud;
}

int hzc_client_connect(hzc_client_t *c, hzc_status_cb cb, void *ud) {
  if (!c) return HZSHM_EINVAL;
  if (c->closing) return HZSHM_ECLOSED;
  if (c->started) return HZSHM_EINVAL;
  c->started = 1;
  c->connect_cb = cb;
  c->connect_ud = ud;
  int rc = uv_timer_start(&c->tick, tick, TICK_MS, TICK_MS);
  if (rc) return rc;
  hzc__cluster_start(c);
  return 0;
}

void hzc__client_finalize(hzc_client_t *c) {
  hzc_close_cb cb = c->close_cb;
  void *ud = c->close_ud;
  hzc__listen_free_all(c);
  free(c->members);
  free(c->powner);
  free(c->pmember);
  for (size_t i = 0; i < c->nseeds; i++) free(c->seeds[i]);
  free(c->seeds);
  free(c->astates);
  free(c->cluster_name);
  free(c->client_name);
  free(c);
  if (cb) cb(ud);
}

void hzc_client_close(hzc_client_t *c, hzc_close_cb cb, void *ud) {
  if (!c || c->closing) return;
  c->closing = 1;
  c->close_cb = cb;
  c->close_ud = ud;
  if (c->connect_cb) {
    hzc_status_cb scb = c->connect_cb;
    c->connect_cb = NULL;
    scb(c, HZSHM_ECLOSED, c->connect_ud);
  }
  hzc__invoke_fail_all(c, HZSHM_ECLOSED);
  run_deferred(c, HZSHM_ECLOSED);
  for (hzc__conn_t *x = c->conns; x; x = x->next) hzc__conn_close(x, HZSHM_ECLOSED, "client closed");
  uv_timer_stop(&c->tick);
  uv_timer_stop(&c->defer_timer);
  uv_close((uv_handle_t *)&c->tick, timer_closed);
  uv_close((uv_handle_t *)&c->defer_timer, timer_closed);
}

hzc_uuid_t hzc_client_uuid(const hzc_client_t *c) { return c->uuid; }
hzc_uuid_t hzc_cluster_id(const hzc_client_t *c) { return c->cluster_id; }
uint32_t hzc_partition_count(const hzc_client_t *c) { return c->connected || c->ever_connected ? c->partition_count : 0; }
int hzc_connected(const hzc_client_t *c) { return c->connected; }

uint64_t hzc_silence_ms(const hzc_client_t *c) {
  uint64_t now = uv_now(c->loop);
  return c->last_heard && now > c->last_heard ? now - c->last_heard : 0;
}

uint32_t hzc_key_partition(const hzc_client_t *c, const void *key, size_t klen) {
  if (!c->partition_count || (!key && klen)) return 0;
  return hzc__partition_of(hzc__string_hash(key ? key : "", klen), c->partition_count);
}

void hzc_client_stats(const hzc_client_t *c, hzc_stats_t *st) {
  *st = c->st;
  st->connections = 0;
  for (hzc__conn_t *x = c->conns; x; x = x->next)
    if (x->state == HZC__CONN_READY) st->connections++;
}

int32_t hzc_partition_owner(const hzc_client_t *c, uint32_t p) {
  if (!c->pmember || p >= c->partition_count) return -1;
  return c->pmember[p];
}

uint32_t hzc_member_count(const hzc_client_t *c) { return (uint32_t)c->nmembers; }

int hzc_partition_watch(const hzc_client_t *c, uint32_t p) {
  if (!c || !c->connected || c->closing) return 0;
  hzc__conn_t *k = NULL;
  if (c->smart) {
    if (!c->partitions_fresh || !c->pmember || p >= c->partition_count || c->pmember[p] < 0) return 0;
    k = c->members[c->pmember[p]].conn;
  } else {
    for (hzc__conn_t *x = c->conns; x && !k; x = x->next)
      if (x->state == HZC__CONN_READY) k = x;
  }
  if (!k || k->state != HZC__CONN_READY || k->relisten_pending > 0) return 0;
  if (c->watch_silence_ms && uv_now(c->loop) - k->last_read >= c->watch_silence_ms) return 0;
  return k->id;
}

int64_t hzc_member_requests(const hzc_client_t *c, uint32_t i) {
  if (i >= c->nmembers) return -1;
  return c->members[i].requests;
}

typedef struct {
  int fired, closed;
} until_t;

static void until_fire(uv_timer_t *t) { ((until_t *)t->data)->fired = 1; }
static void until_closed(uv_handle_t *h) { ((until_t *)h->data)->closed = 1; }

int hzc_run_until(uv_loop_t *loop, const int *done, uint32_t timeout_ms) {
  uv_timer_t t;
  until_t st = {0, 0};
  int rc = uv_timer_init(loop, &t);
  if (rc) return rc;
  t.data = &st;
  uv_timer_start(&t, until_fire, timeout_ms, 0);
  while (!*done && !st.fired) uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, until_closed);
  while (!st.closed) uv_run(loop, UV_RUN_NOWAIT);
  return *done ? 0 : HZSHM_ETIMEDOUT;
}
