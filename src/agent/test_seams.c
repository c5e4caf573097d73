/* test_seams.c - compiled only into hzshm-agent-seams (CMake option
 * HZSHM_TEST_HOOKS), never into the shipped hzshm-agent: seams that widen
 * windows the agent must keep closed, so that tests can show they are.
 *
 * HZSHM_AGENT_TEST_OPEN_DELAY_MS=n: after the segment is opened and before a
 * reused segment's partitions are marked stale, wait n ms (tests/e2e/
 * test_restart.c: readers must not hit the previous agent's entries then).
 *
 * HZSHM_AGENT_TEST_DROP_CLEAR_ALL=1: every clear-all event is ignored, as if
 * lost (tests/e2e/test_destroymissed.c: only the reconciliation's reset rule
 * can then notice a destroy and renew the listener).
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
 * rule can then renew it). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"

void hzshm__agent_test_after_open(void) {
  const char *v = getenv("HZSHM_AGENT_TEST_OPEN_DELAY_MS");
  if (v == NULL) return;
  unsigned long ms = strtoul(v, NULL, 10);
  hzshm__agent_log("test seam: waiting %lu ms between opening the segment and the stale marks", ms);
  struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&d, NULL); /* the window itself, not a synchronization */
}

int hzshm__agent_test_drop_clear(void) {
  if (getenv("HZSHM_AGENT_TEST_DROP_CLEAR_ALL") == NULL) return 0;
  hzshm__agent_log("test seam: dropping a clear-all event");
  return 1;
}

typedef struct {
  uv_timer_t t;
  hzc_result_t res;
  void (*cb)(void *ud, const hzc_result_t *res);
  void *ud;
} deferred_t;

static void deferred_close(uv_handle_t *h) { free(h->data); }

static void deferred_fire(uv_timer_t *t) {
  deferred_t *d = t->data;
  d->cb(d->ud, &d->res);
  uv_close((uv_handle_t *)&d->t, deferred_close);
}

int hzshm__agent_test_defer_ack(agent_t *a, const void *key, size_t klen, const hzc_result_t *res,
                                void (*cb)(void *ud, const hzc_result_t *res), void *ud) {
  const char *k = getenv("HZSHM_AGENT_TEST_ACK_DELAY_KEY"), *ms = getenv("HZSHM_AGENT_TEST_ACK_DELAY_MS");
  if (k == NULL || ms == NULL || a->stopping || strlen(k) != klen || memcmp(k, key, klen) != 0) return 0;
  deferred_t *d = calloc(1, sizeof *d);
  if (d == NULL) return 0;
  d->res.status = res->status;
  d->res.boolean = res->boolean;
  d->cb = cb;
  d->ud = ud;
  uv_timer_init(a->loop, &d->t);
  d->t.data = d;
  unsigned long n = strtoul(ms, NULL, 10);
  hzshm__agent_log("test seam: handling the acknowledgement of a write of %s in %lu ms (status %d)", k, n,
                   res->status);
  uv_timer_start(&d->t, deferred_fire, n, 0);
  return 1;
}

static char *lose_name;  /* the session whose next registration is lost, and that registration */
static uint32_t lose_gen;

void hzshm__agent_test_clear_seen(const session_t *s) {
  if (getenv("HZSHM_AGENT_TEST_LOSE_RENEWED_KEY") == NULL) return;
  free(lose_name);
  lose_name = strdup(s->name);
  lose_gen = s->lgen + 1; /* listen_start numbers the renewal */
}

int hzshm__agent_test_lose(const session_t *s, const hzc_invalidation_t *inv) {
  const char *k = getenv("HZSHM_AGENT_TEST_LOSE_RENEWED_KEY");
  if (k == NULL || lose_name == NULL || s->lgen != lose_gen || strcmp(s->name, lose_name) != 0) return 0;
  hzc_client_t *hz = s->a->hz;
  int32_t owner = hzc_partition_owner(hz, hzc_key_partition(hz, k, strlen(k)));
  if (owner < 0 || inv->partition < 0 || hzc_partition_owner(hz, (uint32_t)inv->partition) != owner) return 0;
  hzshm__agent_log("test seam: registration %u of %s lost on member %d: dropping an event of partition %d",
                   (unsigned)lose_gen, s->name, (int)owner, (int)inv->partition);
  return 1;
}
