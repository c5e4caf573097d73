/* fake_server_ctl.c - run tests/hz/fake_server as a child and read its log.
 * See fake_server_ctl.h. Single-threaded.
 */
#include "fake_server_ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"

struct hzshm__fake {
  hzshm__child_t child;
  uint16_t port;
};

static const char *binary(void) {
  const char *env = getenv("HZSHM_FAKE_SERVER");
  if (env != NULL && env[0] != '\0') return env;
#ifdef HZSHM_FAKE_SERVER_PATH
  return HZSHM_FAKE_SERVER_PATH;
#else
  return NULL;
#endif
}

int hzshm__fake_start(const char *scenario, const char *const *extra, hzshm__fake_t **out) {
  enum { MAX_ARGS = 32 };
  char *argv[MAX_ARGS];
  size_t n = 0;
  *out = NULL;
  if (scenario == NULL || binary() == NULL) return HZSHM_EINVAL;
  argv[n++] = (char *)binary();
  argv[n++] = "--port";
  argv[n++] = "0";
  argv[n++] = "--scenario";
  argv[n++] = (char *)scenario;
  for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
    if (n + 1 >= MAX_ARGS) return HZSHM_EINVAL;
    argv[n++] = (char *)extra[i];
  }
  argv[n] = NULL;
  hzshm__fake_t *fs = calloc(1, sizeof(*fs));
  if (fs == NULL) return -ENOMEM;
  int rc = hzshm__child_spawn(argv, &fs->child);
  if (rc != 0) goto fail;
  char line[128];
  unsigned port = 0;
  rc = hzshm__child_read_line(&fs->child, hzshm__child_now_ms() + 10000, line, sizeof(line));
  if (rc == 0 && (sscanf(line, "listening 127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535))
    rc = HZSHM_EPROTO;
  if (rc != 0) {
    int st = hzshm__child_stop(&fs->child, SIGKILL, 5000);
    if (rc == HZSHM_ECLOSED && st == 2) rc = HZSHM_EINVAL; /* usage error, e.g. unknown scenario */
    goto fail;
  }
  fs->port = (uint16_t)port;
  *out = fs;
  return 0;
fail:
  free(fs);
  return rc;
}

uint16_t hzshm__fake_port(const hzshm__fake_t *fs) { return fs->port; }
int hzshm__fake_log_fd(const hzshm__fake_t *fs) { return fs->child.from_fd; }

int hzshm__fake_wait_log(hzshm__fake_t *fs, const char *needle, int timeout_ms, char *line, size_t cap) {
  int64_t deadline = hzshm__child_now_ms() + timeout_ms;
  char buf[512];
  for (;;) {
    int rc = hzshm__child_read_line(&fs->child, deadline, buf, sizeof(buf));
    if (rc == HZSHM_EBUFSIZE) continue; /* the fake's lines are short; skip a monster */
    if (rc != 0) return rc;
    if (strstr(buf, needle) != NULL) {
      if (line != NULL && cap > 0) snprintf(line, cap, "%s", buf);
      return 0;
    }
  }
}

void hzshm__fake_stop(hzshm__fake_t *fs) {
  if (fs == NULL) return;
  (void)hzshm__child_stop(&fs->child, SIGTERM, 5000);
  free(fs);
}
