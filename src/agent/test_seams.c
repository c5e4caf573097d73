/* test_seams.c - compiled only into hzshm-agent-seams (CMake option
 * HZSHM_TEST_HOOKS), never into the shipped hzshm-agent: seams that widen
 * windows the agent must keep closed, or lose what the network may lose, so
 * that tests can show the agent copes. Each is off unless its variable is set.
 *
 * HZSHM_AGENT_TEST_OPEN_DELAY_MS=n: after the segment is opened and before a
 * reused segment's partitions are marked stale, wait n ms (tests/e2e/
 * test_restart.c: readers must not hit the previous agent's entries then).
 *
 * HZSHM_AGENT_TEST_DROP_CLEAR_ALL=1: every clear-all event is ignored, as if
 * lost (tests/e2e/test_destroymissed.c: only the reconciliation's reset rule
 * can then notice a destroy and renew the listener).
 *
 * HZSHM_AGENT_TEST_DROP_INVAL_KEY=k: every invalidation event of key k is
 * ignored, as if lost (test_memberloss.c, test_maxttl.c): only the repair
 * (sequence gap, reconciliation, --max-ttl-ms) can then hide the old value.
 *
 * HZSHM_AGENT_TEST_FILL_DELAY_KEY=k, HZSHM_AGENT_TEST_FILL_DELAY_MS=n (default
 * 1000): the result of every remote get of key k is handled n ms after it
 * arrived, to force fill/invalidation interleavings (test_fillrace.c,
 * test_coalesce.c). At shutdown the held fills complete at once (stopped).
 *
 * HZSHM_AGENT_TEST_ACK_DELAY_KEY=k, HZSHM_AGENT_TEST_ACK_DELAY_MS=n: the
 * acknowledgement of every write of key k is handled n ms after it arrived,
 * so that the write's own invalidation (echo) deterministically comes first
 * (tests/e2e/test_echorace.c).
 *
 * HZSHM_AGENT_TEST_LOSE_RENEWED_KEY=k: the registration of a session's
 * listener made first after the session got a clear-all (or a DESTROYED
 * event: the official client's proxy makes the members send one) loses every key
 * event of the partitions that k's owner owns, as if that member had dropped
 * it (a renewal that reached it between its clear-all publish and its
 * deregistration, during a destroy); a later registration gets them again
 * (tests/e2e/test_lostlistener.c: only the reconciliation's lost-listener
 * rule can then renew it).
 *
 * HZSHM_AGENT_TEST_BLOCK_FILE=path: read on every health tick; while it holds
 * a port number, connections to members on that port are cut and refused (a
 * network cut between this host and one member: hzc_test_block_port in
 * src/hz/hzc_test.h; test_unreachable.c, test_reconnect.c).
 *
 * HZSHM_AGENT_TEST_LOSE_AT_DESTROY=k: the race of a destroy that drops our
 * renewed registration on one member, for real (tests/e2e/
 * test_destroylost.c). The clear-all that k's owner (member 2) sends on the
 * session's newest registration R1 is held, as if still on the wire, until
 * the next registration R2 (sent on the other member's clear-all) is
 * acknowledged; then R2 is really deregistered on member 2
 * (hzc_test_deregister_on_owner: the RemoveEntryListener a destroy's
 * deregistration amounts to, while the agent believes R2 exists), and the
 * held clear-all is delivered to R1 if R1 still listens (the client drops the
 * events of a removed listener). Once per run. DESTROYED events are ignored,
 * as for a map no client made a proxy of (a destroy by another hzshm host):
 * the official client's proxy would make the members send one, from which
 * the agent renews too, in its own race. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "hzc_test.h"

/* 1 if environment variable var is set to exactly the bytes key[0..klen). */
static int env_is(const char *var, const void *key, size_t klen) {
  const char *v = getenv(var);
  return v != NULL && strlen(v) == klen && memcmp(v, key, klen) == 0;
}

void seam_after_open(void) {
  const char *v = getenv("HZSHM_AGENT_TEST_OPEN_DELAY_MS");
  if (v == NULL) return;
  unsigned long ms = strtoul(v, NULL, 10);
  log_info("test seam: waiting %lu ms between opening the segment and the stale marks", ms);
  struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&d, NULL); /* the window itself, not a synchronization */
}

int seam_drop_clear(void) {
  if (getenv("HZSHM_AGENT_TEST_DROP_CLEAR_ALL") == NULL) return 0;
  log_info("test seam: dropping a clear-all event");
  return 1;
}

int seam_drop_inval(const hzc_invalidation_t *inv) {
  if (inv->key == NULL || !inv->key_is_string || !env_is("HZSHM_AGENT_TEST_DROP_INVAL_KEY", inv->key, inv->klen))
    return 0;
  log_info("test seam: dropping an invalidation of key %.*s (sequence %lld)", (int)inv->klen,
           (const char *)inv->key, (long long)inv->sequence);
  return 1;
}

/* A result whose handling is deferred: fills (flushed at shutdown) and acknowledgements. */
typedef struct deferred {
  uv_timer_t t;
  struct deferred *next;
  int flush;                /* completed (stopped) by seam_flush */
  hzc_result_t res;
  void (*cb)(void *ud, const hzc_result_t *res);
  void *ud;
  uint8_t data[];           /* the value's copy (fills) */
} deferred_t;

static deferred_t *deferred; /* one agent per process */

static void deferred_close(uv_handle_t *h) { free(h->data); }

static void deferred_fire(uv_timer_t *t) {
  deferred_t *d = t->data;
  for (deferred_t **pp = &deferred; *pp; pp = &(*pp)->next) {
    if (*pp == d) {
      *pp = d->next;
      break;
    }
  }
  d->cb(d->ud, &d->res);
  uv_close((uv_handle_t *)&d->t, deferred_close);
}

/* Handles res by cb(ud, copy) in ms: the copy holds status and boolean, and
 * the value too if copy_value. 0 if out of memory (handle it now). */
static int defer(agent_t *a, const hzc_result_t *res, int copy_value, unsigned long ms,
                 void (*cb)(void *ud, const hzc_result_t *res), void *ud) {
  size_t len = copy_value ? res->value.len : 0;
  deferred_t *d = calloc(1, sizeof *d + len);
  if (d == NULL) return 0;
  d->res.status = res->status;
  d->res.boolean = res->boolean;
  if (copy_value) {
    d->res.value = res->value;
    if (len) memcpy(d->data, res->value.data, len);
    d->res.value.data = d->data;
    d->flush = 1;
  }
  d->cb = cb;
  d->ud = ud;
  uv_timer_init(a->loop, &d->t);
  d->t.data = d;
  d->next = deferred;
  deferred = d;
  uv_timer_start(&d->t, deferred_fire, ms, 0);
  return 1;
}

static char *lose_name;  /* the session whose next registration is lost, and that registration */
static uint32_t lose_gen;

void seam_clear_seen(const session_t *s) {
  if (getenv("HZSHM_AGENT_TEST_LOSE_RENEWED_KEY") == NULL) return;
  free(lose_name);
  lose_name = strdup(s->name);
  lose_gen = s->lgen + 1; /* listen_start numbers the renewal */
}

int seam_lose(const session_t *s, const hzc_invalidation_t *inv) {
  const char *k = getenv("HZSHM_AGENT_TEST_LOSE_RENEWED_KEY");
  if (k == NULL || lose_name == NULL || s->lgen != lose_gen || strcmp(s->name, lose_name) != 0) return 0;
  hzc_client_t *hz = s->a->hz;
  int32_t owner = hzc_partition_owner(hz, hzc_key_partition(hz, k, strlen(k)));
  if (owner < 0 || inv->partition < 0 || hzc_partition_owner(hz, (uint32_t)inv->partition) != owner) return 0;
  log_info("test seam: registration %u of %s lost on member %d: dropping an event of partition %d",
           (unsigned)lose_gen, s->name, (int)owner, (int)inv->partition);
  return 1;
}
int seam_defer_fill(agent_t *a, const void *key, size_t klen, const hzc_result_t *res,
                    void (*cb)(void *ud, const hzc_result_t *res), void *ud) {
  if (a->stopping || !env_is("HZSHM_AGENT_TEST_FILL_DELAY_KEY", key, klen)) return 0;
  const char *v = getenv("HZSHM_AGENT_TEST_FILL_DELAY_MS");
  unsigned long ms = v ? strtoul(v, NULL, 10) : 1000;
  if (!defer(a, res, 1, ms, cb, ud)) return 0;
  log_info("test seam: delaying the fill of key %.*s by %lu ms", (int)klen, (const char *)key, ms);
  return 1;
}

int seam_defer_ack(agent_t *a, const void *key, size_t klen, const hzc_result_t *res,
                   void (*cb)(void *ud, const hzc_result_t *res), void *ud) {
  const char *ms = getenv("HZSHM_AGENT_TEST_ACK_DELAY_MS");
  if (ms == NULL || a->stopping || !env_is("HZSHM_AGENT_TEST_ACK_DELAY_KEY", key, klen)) return 0;
  unsigned long n = strtoul(ms, NULL, 10);
  if (!defer(a, res, 0, n, cb, ud)) return 0;
  log_info("test seam: handling the acknowledgement of a write of %.*s in %lu ms (status %d)", (int)klen,
           (const char *)key, n, res->status);
  return 1;
}

void seam_flush(agent_t *a) {
  for (;;) {
    deferred_t *d = deferred;
    while (d && !d->flush) d = d->next;
    if (d == NULL) return;
    uv_timer_stop(&d->t);
    d->res.status = HZSHM_ESTOPPED;
    deferred_fire(&d->t);
  }
}

void seam_tick(agent_t *a) {
  static int blocked_port;
  const char *path = getenv("HZSHM_AGENT_TEST_BLOCK_FILE");
  if (path == NULL || a->hz == NULL) return;
  int port = 0;
  FILE *f = fopen(path, "r");
  if (f) {
    if (fscanf(f, "%d", &port) != 1) port = 0;
    fclose(f);
  }
  if (port == blocked_port) return;
  log_info("test seam: network to members on port %d %s", port ? port : blocked_port,
           port ? "cut" : "restored");
  blocked_port = port;
  hzc_test_block_port(a->hz, port);
}

/* HZSHM_AGENT_TEST_LOSE_AT_DESTROY: armed by the session's first clear-all
 * (registration gen), then k's owner's clear-all on that registration held. */
static struct {
  int state; /* 0 waiting for a clear-all, 1 armed, 2 done */
  char *name;
  uint32_t gen;
  int held;
  uint64_t id; /* the registration the held event came on */
  hzc_invalidation_t inv;
} held;

static int key_owner(agent_t *a, const char *k, uint32_t *p, hzc_uuid_t *owner) {
  *p = hzc_key_partition(a->hz, k, strlen(k));
  return hzc_test_owner_uuid(a->hz, *p, owner);
}

int seam_drop_destroyed(void) {
  if (getenv("HZSHM_AGENT_TEST_LOSE_AT_DESTROY") == NULL) return 0;
  log_info("test seam: ignoring a DESTROYED event");
  return 1;
}

int seam_hold_clear(lreg_t *g, const char *map, const hzc_invalidation_t *inv) {
  const char *k = getenv("HZSHM_AGENT_TEST_LOSE_AT_DESTROY");
  if (k == NULL || held.state == 2) return 0;
  session_t *s = session_get(g->a, map, strlen(map), 0);
  if (s == NULL || g->gen != s->lgen) return 0; /* a renewal was sent after g: not the race */
  if (held.state == 0) {
    held.name = strdup(map);
    if (held.name == NULL) return 0;
    held.state = 1;
    held.gen = g->gen;
  }
  uint32_t p;
  hzc_uuid_t owner;
  if (held.held || strcmp(map, held.name) != 0 || key_owner(g->a, k, &p, &owner) != 0 ||
      memcmp(&owner, &inv->member, sizeof owner) != 0)
    return 0;
  held.held = 1;
  held.id = g->id;
  held.inv = *inv;
  log_info("test seam: holding the clear-all of %s's registration %u from the owner of %s", map,
           (unsigned)g->gen, k);
  return 1;
}

void seam_registered(session_t *s) {
  agent_t *a = s->a;
  const char *k = getenv("HZSHM_AGENT_TEST_LOSE_AT_DESTROY");
  if (k == NULL || held.state != 1 || strcmp(s->name, held.name) != 0 || s->lgen <= held.gen) return;
  held.state = 2;
  uint32_t p;
  hzc_uuid_t owner;
  int sent = key_owner(a, k, &p, &owner) == 0 ? hzc_test_deregister_on_owner(a->hz, s->reg->l, p) : 0;
  log_info("test seam: registration %u of %s deregistered on the owner of %s (%d sent)", (unsigned)s->lgen,
           s->name, k, sent);
  lreg_t *g = held.held ? session_reg_find(a, s, held.id) : NULL;
  if (g == NULL) {
    log_info("test seam: the clear-all of the owner of %s is lost: registration %u was removed (%s)", k,
             (unsigned)held.gen, held.held ? "after it was held" : "before it arrived");
    return;
  }
  log_info("test seam: delivering the held clear-all to registration %u", (unsigned)held.gen);
  inval_cb(a->hz, held.name, &held.inv, g);
}
