/* hzt.h - helpers for the hzclient tests: assertions, member addresses from
 * the ctest fixture, and blocking wrappers that run the loop until a result
 * arrives or a deadline passes (never sleeps). */
#ifndef HZSHM_TESTS_HZT_H
#define HZSHM_TESTS_HZT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "hzc.h"
#include "hzshm.h"

#include "../common/runner.h"

#define HZT_TIMEOUT 60000

/* Addresses: the test's parameter ("h:p,h:p", after `--`) if given, else
 * from $HZSHM_TEST_MEMBER_DIR. */
static inline size_t hzt_addrs(char addrs[][64], size_t max) {
  char buf[1024] = "";
  if (t_param(0, NULL) != NULL) {
    snprintf(buf, sizeof buf, "%s", t_param(0, NULL));
  } else {
    const char *dir = getenv("HZSHM_TEST_MEMBER_DIR");
    CHECK(dir != NULL);
    char path[512];
    int port = 0, count = 0;
    snprintf(path, sizeof path, "%s/port", dir);
    FILE *f = fopen(path, "r");
    CHECK(f);
    CHECK_EQ(fscanf(f, "%d", &port), 1);
    fclose(f);
    snprintf(path, sizeof path, "%s/count", dir);
    f = fopen(path, "r");
    CHECK(f);
    CHECK_EQ(fscanf(f, "%d", &count), 1);
    fclose(f);
    for (int i = 0; i < count; i++)
      snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s127.0.0.1:%d", i ? "," : "", port + i);
  }
  size_t n = 0;
  for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ",")) snprintf(addrs[n++], 64, "%s", tok);
  return n;
}

typedef struct {
  int done;
  int status;
  int type;
  int32_t type_id;
  uint8_t *data;
  size_t len;
  int boolean;
  int64_t number;
  char errcls[256];
} hzt_res_t;

static inline void hzt_res_cb(hzc_client_t *c, const hzc_result_t *r, void *ud) {
  hzt_res_t *x = ud;
  x->status = r->status;
  x->type = r->value.type;
  x->type_id = r->value.type_id;
  free(x->data);
  x->data = NULL;
  x->len = r->value.len;
  if (r->value.type != HZC_NULL) {
    x->data = malloc(r->value.len + 1);
    memcpy(x->data, r->value.data, r->value.len);
  }
  x->boolean = r->boolean;
  x->number = r->number;
  snprintf(x->errcls, sizeof x->errcls, "%s", r->error_class ? r->error_class : "");
  x->done = 1;
}

static inline void hzt_res_reset(hzt_res_t *x) {
  free(x->data);
  memset(x, 0, sizeof *x);
}

/* Waits for x->done; fails the test on timeout. Returns the status. */
static inline int hzt_wait(uv_loop_t *loop, hzt_res_t *x) {
  CHECK_RC(hzc_run_until(loop, &x->done, HZT_TIMEOUT), 0);
  return x->status;
}

typedef struct {
  int done, status;
} hzt_status_t;

static inline void hzt_status_cb(hzc_client_t *c, int status, void *ud) {
  hzt_status_t *s = ud;
  s->status = status;
  s->done = 1;
}

static inline hzc_client_t *hzt_connect_cfg(uv_loop_t *loop, hzc_config_t *cfg) {
  hzc_client_t *c;
  hzt_status_t st = {0, 0};
  if (!cfg->cluster_name) cfg->cluster_name = "dev";
  CHECK_RC(hzc_client_new(loop, cfg, &c), 0);
  CHECK_RC(hzc_client_connect(c, hzt_status_cb, &st), 0);
  CHECK_RC(hzc_run_until(loop, &st.done, HZT_TIMEOUT), 0);
  CHECK_RC(st.status, 0);
  return c;
}

static inline hzc_client_t *hzt_connect(uv_loop_t *loop, char addrs[][64], size_t n) {
  const char *a[16];
  for (size_t i = 0; i < n; i++) a[i] = addrs[i];
  hzc_config_t cfg = {.addrs = a, .naddrs = n, .smart = 1};
  return hzt_connect_cfg(loop, &cfg);
}

static inline void hzt_closed_cb(void *ud) { *(int *)ud = 1; }

static inline void hzt_close(uv_loop_t *loop, hzc_client_t *c) {
  int closed = 0;
  hzc_client_close(c, hzt_closed_cb, &closed);
  CHECK_RC(hzc_run_until(loop, &closed, HZT_TIMEOUT), 0);
}

/* Runs the loop until pred(arg) is true or timeout_ms passes; returns pred's value. */
static inline int hzt_until(uv_loop_t *loop, int (*pred)(void *), void *arg, uint32_t timeout_ms) {
  uint64_t end = uv_now(loop) + timeout_ms;
  while (!pred(arg)) {
    if (uv_now(loop) >= end) return 0;
    int never = 0;
    (void)hzc_run_until(loop, &never, 20);
  }
  return 1;
}

/* Sync wrappers. */
#define HZT_SYNC(loop, res, call)          \
  do {                                     \
    hzt_res_reset(res);                    \
    CHECK_RC((call), 0);                   \
    (void)hzt_wait((loop), (res));         \
  } while (0)

static inline int hzt_member_cmd(const char *fmt, ...) {
  char cmd[1024];
  const char *tool = getenv("HZ_MEMBER");
  const char *dir = getenv("HZSHM_TEST_MEMBER_DIR");
  CHECK(tool && dir);
  int n = snprintf(cmd, sizeof cmd, "%s ", tool);
  va_list ap;
  va_start(ap, fmt);
  n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
  va_end(ap);
  snprintf(cmd + n, sizeof cmd - (size_t)n, " --dir %s", dir);
  return system(cmd);
}

#endif
