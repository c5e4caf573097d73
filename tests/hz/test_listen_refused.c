/* test_listen_refused.c - listener registrations a member refuses, against
 * tests/hz/fake_server: scenario "error" with --trigger <registration type>
 * --times 2 --error-code 64 answers the first two registrations (after
 * --skip N accepted ones) with a java.security.AccessControlException, as a
 * member with security enabled does for a client without the "listen"
 * permission, and later ones with a registration id.
 *
 * Why a fake: our test members are open source (no security, so no
 * permission to refuse), a member shutting down refuses and then drops the
 * connection anyway, and no real member refuses a few times and then
 * accepts on the same connection.
 *
 * Contract (src/hz/listen.c): a refused registration does not close the
 * connection; it is re-sent there after a backoff (200 ms, doubling, 5 s at
 * most) until acknowledged, the listener removed or the connection closed.
 * While it waits, hzc_partition_watch() is 0 for that connection's
 * partitions. The status callback reports the first refusal (the only
 * registration failed). Runs:
 *   keep       listener kept: retried until acknowledged (exactly 3 requests,
 *              >= 200 + 400 ms apart), then watched again with the same
 *              connection id, no reconnect; removal sends the Remove request.
 *   remove-cb  listener removed inside the status callback (as the agent
 *              does): watched again, no further registration request.
 *   remove     removed after the callback returned, while it waits: same.
 *   relisten   accepted at first (status 0); the connection is cut and comes
 *              back; the re-registration there is refused twice: the new
 *              connection is watched only once the third is acknowledged, no
 *              second reconnect, no status callback.
 *   unanswered as keep, but the first registration is never answered (the
 *              fake answers another correlation id: unknown-correlation-only)
 *              and times out (1 s): reported, re-sent once, acknowledged.
 * for the near-cache invalidation listener (unisocket and smart routing) and
 * the distributed-object listener (unisocket).
 */
#include "fake_server_ctl.h"
#include "hzc_test.h"
#include "hzt.h"

enum mode { KEEP, REMOVE_IN_CB, REMOVE_AFTER, RELISTEN, UNANSWERED };
static const char *const mode_names[] = {"keep", "remove-cb", "remove", "relisten", "unanswered"};

typedef struct {
  const char *kind;     /* "inv" or "obj" */
  int smart;
  enum mode mode;
} run_t;

static const run_t runs[] = {
    {"inv", 0, KEEP},  {"inv", 1, KEEP},         {"inv", 0, REMOVE_IN_CB},
    {"inv", 0, REMOVE_AFTER}, {"obj", 0, KEEP},       {"inv", 0, RELISTEN},
    {"inv", 1, RELISTEN},     {"inv", 0, UNANSWERED},
};

/* What the fake logged so far, counted (the log is read without blocking). */
typedef struct {
  hzshm__fake_t *fs;
  const char *reg;    /* "request 0x013f00" or "request 0x000900" */
  const char *unreg;  /* "request 0x011a00" or "request 0x000a00" */
  int regs, faults, removes, accepted, closed;
} fake_log_t;

static void drain(fake_log_t *g) {
  char line[256];
  while (hzshm__fake_wait_log(g->fs, "", 0, line, sizeof line) == 0) {
    g->regs += strstr(line, g->reg) != NULL;
    g->faults += strstr(line, " fault ") != NULL;
    g->removes += strstr(line, g->unreg) != NULL;
    g->accepted += strstr(line, " accepted") != NULL;
    g->closed += strstr(line, " closed") != NULL;
  }
}

/* The user's side of one listener. */
typedef struct {
  uv_loop_t *loop;
  enum mode mode;
  hzc_listener_t *l;
  int calls, status, watch_in_cb, watch_after_remove;
  uint64_t at; /* uv_now() of the status callback */
} user_t;

static void status_cb(hzc_client_t *c, int status, void *ud) {
  user_t *u = ud;
  u->calls++;
  u->status = status;
  u->at = uv_now(u->loop);
  u->watch_in_cb = hzc_partition_watch(c, 0);
  if (status != 0 && u->mode == REMOVE_IN_CB) {
    CHECK_RC(hzc_listener_remove(c, u->l), 0);
    u->l = NULL;
    u->watch_after_remove = hzc_partition_watch(c, 0);
  }
}

static void inv_cb(hzc_client_t *c, const char *map, const hzc_invalidation_t *inv, void *ud) {}
static void obj_cb(hzc_client_t *c, const char *service, const char *name, int destroyed, const hzc_uuid_t *source,
                   void *ud) {}

typedef struct {
  int lost, disconnected;
} events_t;

static void event_cb(hzc_client_t *c, const hzc_event_t *ev, void *ud) {
  events_t *e = ud;
  e->lost += ev->kind == HZC_EV_MEMBER_CONNECTION_LOST;
  e->disconnected += ev->kind == HZC_EV_DISCONNECTED;
}

/* Has the watch of partition p come back? Notes how many registration
 * requests the fake had logged then, and when it first logged a refusal. */
typedef struct {
  uv_loop_t *loop;
  hzc_client_t *c;
  fake_log_t *g;
  uint32_t p;
  int regs_when_watched; /* registration requests logged when the watch came back */
  uint64_t refused_at;   /* uv_now() when the fake's log first showed a refusal (0: not yet) */
} watch_t;

static int watched(void *arg) {
  watch_t *w = arg;
  drain(w->g);
  if (w->g->faults > 0 && w->refused_at == 0) w->refused_at = uv_now(w->loop);
  if (hzc_partition_watch(w->c, w->p) <= 0) return 0;
  drain(w->g); /* the fake logs a request before answering it */
  w->regs_when_watched = w->g->regs;
  return 1;
}

/* Waits until watched(): sampled after every loop iteration (uv_check), so a
 * watch that comes back too early, even briefly, is seen. 1 if it came back. */
typedef struct {
  uv_check_t h;
  watch_t *w;
  int done, closed;
} sampler_t;

static void sample(uv_check_t *h) {
  sampler_t *s = h->data;
  if (!s->done && watched(s->w)) s->done = 1;
}

static void sampler_closed(uv_handle_t *h) { ((sampler_t *)h->data)->closed = 1; }

static int wait_watched(uv_loop_t *loop, watch_t *w, uint32_t timeout_ms) {
  if (watched(w)) return 1;
  sampler_t s = {.w = w};
  s.h.data = &s;
  CHECK_RC(uv_check_init(loop, &s.h), 0);
  CHECK_RC(uv_check_start(&s.h, sample), 0);
  (void)hzc_run_until(loop, &s.done, timeout_ms);
  uv_close((uv_handle_t *)&s.h, sampler_closed);
  while (!s.closed) uv_run(loop, UV_RUN_NOWAIT);
  return s.done;
}

static int more_regs(void *arg) { /* a registration request after the first one */
  fake_log_t *g = arg;
  drain(g);
  return g->regs > 1;
}

/* A Map.Get answered: every request sent before it on the one connection is logged. */
static void round_trip(uv_loop_t *loop, hzc_client_t *c) {
  hzt_res_t res = {0};
  HZT_SYNC(loop, &res, hzc_map_get(c, "m", "k", 1, hzt_res_cb, &res));
  CHECK_RC(res.status, 0);
  hzt_res_reset(&res);
}

static void run(uv_loop_t *loop, const run_t *r) {
  int inv = strcmp(r->kind, "inv") == 0;
  int silent = r->mode == UNANSWERED, refusals = silent ? 1 : 2;
  const char *extra[] = {"--trigger", inv ? "0x013f00" : "0x000900", "--skip", r->mode == RELISTEN ? "1" : "0",
                         "--times", silent ? "1" : "2", "--error-code", "64", NULL};
  hzshm__fake_t *fs;
  CHECK_RC(hzshm__fake_start(silent ? "unknown-correlation-only" : "error", extra, &fs), 0);
  fake_log_t g = {fs, inv ? "request 0x013f00" : "request 0x000900", inv ? "request 0x011a00" : "request 0x000a00",
                  0, 0, 0, 0, 0};
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", hzshm__fake_port(fs));
  const char *a[1] = {addr};
  hzc_config_t cfg = {.addrs = a, .naddrs = 1, .smart = r->smart, .cluster_name = "dev",
                      .invocation_timeout_ms = silent ? 1000 : 5000, .heartbeat_interval_ms = 1000, .heartbeat_timeout_ms = 10000,
                      .connect_timeout_ms = 2000, .reconnect_max_backoff_ms = 200};
  hzc_client_t *c = hzt_connect_cfg(loop, &cfg);
  events_t ev = {0, 0};
  hzc_client_set_event_cb(c, event_cb, &ev);
  uint32_t last = hzc_partition_count(c) - 1;
  CHECK_EQ(last, 270);

  /* No listener yet: the connection covers every partition. */
  watch_t w = {loop, c, &g, 0, 0, 0};
  CHECK(wait_watched(loop, &w, 10000));
  int id0 = hzc_partition_watch(c, 0);
  CHECK_GT(id0, 0);
  CHECK_EQ(hzc_partition_watch(c, last), id0);
  hzc_stats_t s0, s1;
  hzc_client_stats(c, &s0);
  CHECK_EQ(s0.connections, 1);

  user_t u = {loop, r->mode, NULL, 0, 0, -1, -1, 0};
  if (inv) CHECK_RC(hzc_map_listen_invalidations(c, "m", inv_cb, NULL, status_cb, &u, &u.l), 0);
  else CHECK_RC(hzc_listen_objects(c, obj_cb, NULL, status_cb, &u, &u.l), 0);
  hzc_listener_t *l = u.l; /* for KEEP and RELISTEN (u.l is cleared by a removal in the callback) */
  CHECK_RC(hzc_run_until(loop, &u.calls, 10000), 0);
  drain(&g);
  uint64_t took;
  int id, removed_late = 0, reconnects = 0;
  uint64_t min_took = 0;
  if (r->mode == RELISTEN) {
    /* Accepted at first: active, and the connection still watched. */
    CHECK_RC(u.status, 0);
    CHECK_EQ(g.regs, 1);
    CHECK_EQ(g.faults, 0);
    CHECK_EQ(hzc_partition_watch(c, 0), id0);
    /* Cut the connection and let it come back: its re-registration is refused twice. */
    hzc_test_block_port(c, hzshm__fake_port(fs));
    CHECK_EQ(hzc_partition_watch(c, 0), 0);
    hzc_test_block_port(c, 0);
    CHECK(wait_watched(loop, &w, 15000));
    took = uv_now(loop) - w.refused_at; /* from the first refusal the client could have seen */
    id = hzc_partition_watch(c, 0);
    /* Watched only once the third re-registration was acknowledged, after both backoffs. */
    CHECK_GT(id, 0);
    CHECK_NE(id, id0);
    CHECK_EQ(hzc_partition_watch(c, last), id);
    CHECK_EQ(w.regs_when_watched, 4);
    CHECK_EQ(g.faults, 2);
    CHECK_NE(w.refused_at, 0);
    min_took = 500; /* 200 + 400 ms backoff, less a margin for the sampling */
    reconnects = 1; /* ours */
  } else {
    /* The only registration was refused: reported (once) as the member's error,
     * and the connection no longer counts as delivering this listener's events. */
    CHECK_RC(u.status, silent ? HZSHM_ETIMEDOUT : HZSHM_EREMOTE);
    CHECK_EQ(g.regs, 1);
    CHECK_EQ(g.faults, 1);
    CHECK_EQ(u.watch_in_cb, 0);
    if (r->mode == REMOVE_AFTER) {
      CHECK_EQ(hzc_partition_watch(c, 0), 0); /* still waiting for its retry */
      removed_late = uv_now(loop) - u.at >= 200; /* a retry may have been sent already */
      CHECK_RC(hzc_listener_remove(c, u.l), 0);
      u.l = NULL;
      u.watch_after_remove = hzc_partition_watch(c, 0);
    }
    CHECK(wait_watched(loop, &w, 15000));
    took = uv_now(loop) - u.at;
    id = hzc_partition_watch(c, 0);
    /* The refusals did not cost the connection: same id. */
    CHECK_EQ(id, id0);
    CHECK_EQ(hzc_partition_watch(c, last), id0);
    if (r->mode == KEEP || r->mode == UNANSWERED) {
      /* Re-sent on the same connection until acknowledged: refused (twice, or
       * unanswered once), then acknowledged, and watched only after that. */
      CHECK_EQ(w.regs_when_watched, refusals + 1);
      CHECK_EQ(g.faults, refusals);
      min_took = silent ? 150 : 550; /* 200 (+ 400) ms backoff (uv_now is coarse) */
    } else {
      /* Removed while waiting: nothing pending, watched again, and no
       * registration request reaches the member any more. */
      CHECK_EQ(u.watch_after_remove, id0); /* hzc_listener_remove settles the count before it returns */
      CHECK(!hzt_until(loop, more_regs, &g, 1500) || removed_late); /* retries would be due at +200, +600 ms */
      round_trip(loop, c);
      drain(&g);
      CHECK(g.regs == 1 || (removed_late && g.regs == 2));
    }
  }
  /* No reconnect (but ours), and the status callback ran once. */
  hzc_client_stats(c, &s1);
  CHECK_EQ(s1.reconnects, s0.reconnects + (uint64_t)reconnects);
  CHECK_EQ(s1.connections, 1);
  CHECK_EQ(ev.disconnected, reconnects);
  drain(&g);
  CHECK_EQ(g.accepted, 1 + reconnects);
  CHECK_EQ(g.closed, reconnects);
  CHECK_EQ(u.calls, 1);
  CHECK_GE(took, min_took);
  CHECK_LT(took, 5000); /* retried after the backoffs, not in a tight loop */

  printf("%s %-10s %-5s refused %d, registration requests %d, watched again %llu ms after the first refusal "
         "(conn %d -> %d)%s\n",
         r->kind, mode_names[r->mode], r->smart ? "smart" : "uni", g.faults, g.regs, (unsigned long long)took, id0, id,
         removed_late ? " [removed after the first retry was due]" : "");

  if (r->mode == KEEP || r->mode == RELISTEN || r->mode == UNANSWERED) { /* acknowledged: deregistered there */
    CHECK_RC(hzc_listener_remove(c, l), 0);
    round_trip(loop, c);
    drain(&g);
    CHECK_EQ(g.removes, 1);
    CHECK_EQ(hzc_partition_watch(c, 0), id);
  } else {
    CHECK_EQ(g.removes, 0); /* never acknowledged: nothing to deregister */
  }
  hzt_close(loop, c);
  hzshm__fake_stop(fs);
}

/* One case per run: "inv-keep-uni", "inv-relisten-smart", ... */
static void run_case(const void *arg) {
  uv_loop_t *loop = uv_default_loop();
  run(loop, arg);
  CHECK_EQ(uv_loop_close(loop), 0);
}

__attribute__((constructor)) static void register_runs(void) {
  static char names[sizeof runs / sizeof runs[0]][48];
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    snprintf(names[i], sizeof names[i], "%s-%s-%s", runs[i].kind, mode_names[runs[i].mode],
             runs[i].smart ? "smart" : "uni");
    t_register_arg(names[i], run_case, &runs[i], __FILE__, __LINE__);
  }
}
