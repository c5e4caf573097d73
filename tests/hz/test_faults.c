/* test_faults.c - the client against tests/hz/fake_server: one fault per
 * scenario (malformed, truncated, oversized frames, wrong types, broken
 * nesting and fragments, errors, silence, closes, failed authentication).
 * For each: the operation ends with the expected status within its deadline,
 * a malformed frame makes the client close that connection, nothing crashes
 * or leaks (ASan), and the client recovers on a new connection (the fault
 * fires once). The operation is Map.Put (not retryable, value response). */
#include "fake_server_ctl.h"
#include "hzt.h"

#define S(x) (1u << (x))
enum { OK = 0, EPROTO_, ETIMEDOUT_, ECLOSED_, EREMOTE_, EAUTH_ };
static int code_of(int st) {
  switch (st) {
    case 0: return OK;
    case HZSHM_EPROTO: return EPROTO_;
    case HZSHM_ETIMEDOUT: return ETIMEDOUT_;
    case HZSHM_ECLOSED: return ECLOSED_;
    case HZSHM_EREMOTE: return EREMOTE_;
    case HZSHM_EAUTH: return EAUTH_;
    default: return 31;
  }
}

typedef struct {
  const char *scenario;
  const char *trigger; /* NULL: the Put */
  const char *code;    /* --error-code for "error" */
  unsigned allowed;    /* statuses allowed for the Put (or for connect, for auth scenarios) */
  int client_closes;   /* the client must close the connection itself */
} row_t;

static const row_t rows[] = {
    {"normal", NULL, NULL, S(OK), 0},
    {"truncated", NULL, NULL, S(ETIMEDOUT_), 0},
    {"truncated-close", NULL, NULL, S(ECLOSED_), 0},
    {"truncated-header", NULL, NULL, S(ECLOSED_), 0},
    {"oversized", NULL, NULL, S(EPROTO_), 1},
    {"negative-length", NULL, NULL, S(EPROTO_), 1},
    {"short-length", NULL, NULL, S(EPROTO_), 1},
    {"empty-message", NULL, NULL, S(EPROTO_), 1},
    {"short-initial", NULL, NULL, S(EPROTO_), 1},
    {"bogus-flags", NULL, NULL, S(ETIMEDOUT_) | S(EPROTO_), 0},
    {"unknown-correlation", NULL, NULL, S(OK), 0},
    {"unknown-correlation-only", NULL, NULL, S(ETIMEDOUT_), 0},
    {"duplicate-response", NULL, NULL, S(OK), 0},
    {"wrong-type", NULL, NULL, S(EPROTO_), 1},
    {"error", NULL, NULL, S(OK), 0}, /* 39 PartitionMigrating: retried */
    {"error", NULL, "2", S(EREMOTE_), 0},
    {"garbage-custom", NULL, NULL, S(EPROTO_), 1},
    {"unbalanced-end", NULL, NULL, S(EPROTO_), 1},
    {"unclosed-begin", NULL, NULL, S(EPROTO_), 1},
    {"deep-nesting", NULL, NULL, S(EPROTO_), 1},
    {"value-not-data", NULL, NULL, S(EPROTO_), 1},
    {"fragment-never-ends", NULL, NULL, S(ETIMEDOUT_), 0},
    {"fragment-unknown-id", NULL, NULL, S(EPROTO_), 1},
    {"event-unknown", NULL, NULL, S(OK), 0},
    {"trickle", NULL, NULL, S(OK), 0},
    {"silent", NULL, NULL, S(ETIMEDOUT_), 0},
    {"close", NULL, NULL, S(ECLOSED_), 0},
    {"auth-fail", "auth", NULL, S(EAUTH_), 0},
    {"auth-short", "auth", NULL, S(OK), 1},
    {"auth-silent", "auth", NULL, S(OK), 0},
    {"auth-close", "auth", NULL, S(OK), 0},
};

/* One case per row, named after its scenario ("error-code2": the row with
 * --error-code 2). */
static void run_row(const void *arg) {
  const row_t *r = arg;
  uv_loop_t *loop = uv_default_loop();
  const char *extra[] = {"--trigger", r->trigger ? r->trigger : "0x010100", r->code ? "--error-code" : NULL,
                         r->code, NULL};
  hzshm__fake_t *fs;
  CHECK_RC(hzshm__fake_start(r->scenario, extra, &fs), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", hzshm__fake_port(fs));
  const char *a[1] = {addr};
  hzc_config_t cfg = {.addrs = a, .naddrs = 1, .smart = 1, .cluster_name = "dev",
                      .invocation_timeout_ms = 2000, .heartbeat_interval_ms = 500, .heartbeat_timeout_ms = 4000,
                      .connect_timeout_ms = 1000, .reconnect_max_backoff_ms = 200};
  hzc_client_t *c;
  CHECK_RC(hzc_client_new(loop, &cfg, &c), 0);
  hzt_status_t st = {0, 0};
  CHECK_RC(hzc_client_connect(c, hzt_status_cb, &st), 0);
  CHECK_RC(hzc_run_until(loop, &st.done, 20000), 0);
  int status;
  hzt_res_t res = {0};
  if (r->trigger) {
    status = st.status;
    if (status != 0 && r->allowed != S(EAUTH_)) { /* first attempt failed: wait for the reconnect */
      status = 0;
    }
  } else {
    CHECK_RC(st.status, 0);
    CHECK_RC(hzc_map_put(c, "m", "k", 1, "v", 1, -1, hzt_res_cb, &res), 0);
    CHECK_RC(hzc_run_until(loop, &res.done, 20000), 0);
    status = res.status;
  }
  int ok = (r->allowed & S(code_of(status))) != 0;
  if (r->client_closes) ok &= hzshm__fake_wait_log(fs, "closed by peer", 10000, NULL, 0) == 0;
  /* recovery: a later call is answered normally (not after a refused authentication) */
  int rec = -1;
  if (r->allowed != S(EAUTH_)) {
    /* A held connection is only given up at the heartbeat timeout (4 s), so
     * retry the 2 s invocation until it succeeds or 20 s pass. */
    uint64_t end = uv_now(loop) + 20000;
    do {
      hzt_res_reset(&res);
      CHECK_RC(hzc_map_get(c, "m", "k2", 2, hzt_res_cb, &res), 0);
      CHECK_RC(hzc_run_until(loop, &res.done, 30000), 0);
      rec = res.status;
    } while (rec == HZSHM_ETIMEDOUT && uv_now(loop) < end);
    ok &= rec == 0;
  }
  printf("%-26s status %-16s recovery %s %s\n", r->scenario, hzshm_err_name(status),
         rec == -1 ? "-" : hzshm_err_name(rec), ok ? "ok" : "FAILED");
  hzt_res_reset(&res);
  hzt_close(loop, c);
  hzshm__fake_stop(fs);
  CHECK(ok); /* the status allowed, the connection closed by the client where it must be, recovered */
  CHECK_EQ(uv_loop_close(loop), 0);
}

__attribute__((constructor)) static void register_rows(void) {
  static char names[sizeof rows / sizeof rows[0]][48];
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    snprintf(names[i], sizeof names[i], "%s%s%s", rows[i].scenario, rows[i].code ? "-code" : "",
             rows[i].code ? rows[i].code : "");
    t_register_arg(names[i], run_row, &rows[i], __FILE__, __LINE__);
  }
}
