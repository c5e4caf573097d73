/* peer.c - spawn HzPeer (the official Java client) and talk to it over pipes.
 * See peer.h. Single-threaded helper: no shared state besides the handle.
 *
 * Reply accounting: every command sent expects exactly one reply line. When a
 * read times out the reply is still owed; `owed` counts such late replies and
 * the next command first reads and drops them (under its own deadline), so
 * replies never get matched to the wrong command.
 */
#include "peer.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "child.h"

struct hzshm__peer {
  hzshm__child_t child;
  unsigned owed; /* replies still due for timed-out commands */
};

void hzshm__peer_hex(const void *data, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  const unsigned char *d = data;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[2 * len] = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long hzshm__peer_unhex(const char *hex, size_t hexlen, void *out, size_t cap) {
  if (hexlen % 2 != 0) return HZSHM_EPROTO;
  if (hexlen / 2 > cap) return HZSHM_EBUFSIZE;
  unsigned char *o = out;
  for (size_t i = 0; i < hexlen / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return HZSHM_EPROTO;
    o[i] = (unsigned char)(hi << 4 | lo);
  }
  return (long)(hexlen / 2);
}

static const char *launcher(void) {
  const char *env = getenv("HZSHM_PEER");
  if (env != NULL && env[0] != '\0') return env;
#ifdef HZSHM_PEER_LAUNCHER
  return HZSHM_PEER_LAUNCHER;
#else
  return NULL;
#endif
}

int hzshm__peer_start(const char *members, const char *cluster, int timeout_ms, hzshm__peer_t **out) {
  const char *exe = launcher();
  *out = NULL;
  if (members == NULL || exe == NULL) return HZSHM_EINVAL;
  hzshm__peer_t *p = calloc(1, sizeof(*p));
  if (p == NULL) return -ENOMEM;
  char *argv[] = {(char *)exe, "--members", (char *)members, "--cluster", (char *)(cluster ? cluster : "dev"),
                  "serve", NULL};
  int rc = hzshm__child_spawn(argv, &p->child);
  if (rc != 0) goto fail;
  char line[256];
  rc = hzshm__child_read_line(&p->child, hzshm__child_now_ms() + timeout_ms, line, sizeof(line));
  if (rc == 0 && strcmp(line, "ok ready") != 0) rc = HZSHM_EPROTO;
  if (rc != 0) {
    hzshm__child_stop(&p->child, SIGKILL, 10000);
    goto fail;
  }
  *out = p;
  return 0;
fail:
  free(p);
  return rc;
}

static int vcmd(hzshm__peer_t *p, int timeout_ms, char *reply, size_t cap, const char *fmt, va_list ap) {
  int64_t deadline = hzshm__child_now_ms() + timeout_ms;
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return HZSHM_EINVAL;
  char *msg = malloc((size_t)n + 2);
  if (msg == NULL) return -ENOMEM;
  vsnprintf(msg, (size_t)n + 1, fmt, ap);
  int rc = 0;
  if (memchr(msg, '\n', (size_t)n) != NULL) {
    rc = HZSHM_EINVAL; /* one command per line: an embedded newline would desynchronize replies */
    goto out;
  }
  msg[n] = '\n';
  rc = hzshm__child_write(&p->child, msg, (size_t)n + 1);
  if (rc != 0) goto out;
  p->owed++;
  while (p->owed > 1) { /* drop replies of earlier timed-out commands */
    rc = hzshm__child_read_line(&p->child, deadline, NULL, 0);
    if (rc != 0 && rc != HZSHM_EBUFSIZE) goto out;
    p->owed--;
  }
  rc = hzshm__child_read_line(&p->child, deadline, reply, cap);
  if (rc == HZSHM_ETIMEDOUT || rc == HZSHM_ECLOSED || rc < 0) goto out;
  p->owed--;
  if (rc != 0) goto out;
  if (strncmp(reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' '))
    rc = 0;
  else if (strcmp(reply, "null") == 0)
    rc = HZSHM_ENOTFOUND;
  else if (strncmp(reply, "err", 3) == 0)
    rc = HZSHM_EREMOTE;
  else
    rc = HZSHM_EPROTO;
out:
  free(msg);
  return rc;
}

int hzshm__peer_cmd(hzshm__peer_t *p, int timeout_ms, char *reply, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vcmd(p, timeout_ms, reply, cap, fmt, ap);
  va_end(ap);
  return rc;
}

#define PEER_TIMEOUT_MS 30000

/* Formats key as x:HEX into a malloc'd string (the caller frees). */
static char *key_token(const void *key, size_t klen) {
  char *t = malloc(2 * klen + 3);
  if (t == NULL) return NULL;
  memcpy(t, "x:", 2);
  hzshm__peer_hex(key, klen, t + 2);
  return t;
}

int hzshm__peer_set(hzshm__peer_t *p, const char *map, const void *key, size_t klen, const void *val,
                    size_t vlen) {
  char reply[256];
  char *k = key_token(key, klen), *v = malloc(2 * vlen + 2);
  int rc = -ENOMEM;
  if (k == NULL || v == NULL) goto out;
  if (vlen == 0)
    strcpy(v, "-");
  else
    hzshm__peer_hex(val, vlen, v);
  rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, sizeof(reply), "set %s %s %s", map, k, v);
out:
  free(k);
  free(v);
  return rc;
}

int hzshm__peer_get(hzshm__peer_t *p, const char *map, const void *key, size_t klen, void *buf, size_t cap,
                    size_t *vlen) {
  char *k = key_token(key, klen), *reply = malloc(HZSHM__CHILD_LINE_MAX);
  int rc = -ENOMEM;
  if (k == NULL || reply == NULL) goto out;
  rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, HZSHM__CHILD_LINE_MAX, "get %s %s", map, k);
  if (rc != 0) goto out;
  /* "ok HEX" ("ok " + nothing for an empty array is printed as "ok ") */
  const char *hex = reply[2] == ' ' ? reply + 3 : reply + 2;
  size_t hexlen = strlen(hex);
  if (hexlen % 2 != 0) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  *vlen = hexlen / 2;
  long n = hzshm__peer_unhex(hex, hexlen, buf, cap);
  rc = n < 0 ? (int)n : 0;
out:
  free(k);
  free(reply);
  return rc;
}

int hzshm__peer_delete(hzshm__peer_t *p, const char *map, const void *key, size_t klen) {
  char reply[256];
  char *k = key_token(key, klen);
  if (k == NULL) return -ENOMEM;
  int rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, sizeof(reply), "delete %s %s", map, k);
  free(k);
  return rc;
}

int hzshm__peer_contains(hzshm__peer_t *p, const char *map, const void *key, size_t klen, int *has) {
  char reply[256];
  char *k = key_token(key, klen);
  if (k == NULL) return -ENOMEM;
  int rc = hzshm__peer_cmd(p, PEER_TIMEOUT_MS, reply, sizeof(reply), "containsKey %s %s", map, k);
  free(k);
  if (rc != 0) return rc;
  if (strcmp(reply, "ok true") == 0)
    *has = 1;
  else if (strcmp(reply, "ok false") == 0)
    *has = 0;
  else
    return HZSHM_EPROTO;
  return 0;
}

pid_t hzshm__peer_pid(const hzshm__peer_t *p) { return p->child.pid; }

int hzshm__peer_stop(hzshm__peer_t *p, int timeout_ms) {
  /* "quit" makes the peer shut its client down and exit 0; a dead peer gives
   * -EPIPE here and is reaped (or killed at the deadline) all the same. */
  (void)hzshm__child_write(&p->child, "quit\n", 5);
  int rc = hzshm__child_stop(&p->child, 0, timeout_ms);
  free(p);
  return rc;
}
