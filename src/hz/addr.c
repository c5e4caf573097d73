/* addr.c - member addresses as operators write them, and the one log line
 * per change of an address's state.
 *
 *   host           port 5701 (hzc_parse_address)
 *   host:port
 *   [v6]  [v6]:port   an IPv6 literal in brackets; a bare literal with
 *                     more than one ':' (e.g. ::1) is a host without a port
 *
 * Host names are resolved by conn.c with uv_getaddrinfo (libuv's thread pool:
 * the loop never blocks), again for every connection attempt, so a changed
 * DNS record is followed on the next reconnect.
 *
 * Per address (as written, host:port) the client remembers its last outcome
 * (0 connected, else the error): a line is logged only when it changes, so a
 * member that stays down costs one line, not one per retry.
 *
 * Loop thread only (hzc_int.h), except hzc_set_log, which is meant to be
 * called once at start-up, before any client exists.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hzc_int.h"
#include "hzshm.h"

static hzc_log_cb log_cb;
static void *log_ud;

void hzc_set_log(hzc_log_cb cb, void *ud) {
  log_cb = cb;
  log_ud = ud;
}

void hzc__log(int level, const char *fmt, ...) {
  va_list ap;
  char line[640];
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (log_cb) log_cb(level, line, log_ud);
  else if (level <= HZC_LOG_INFO) fprintf(stderr, "hzc: %s\n", line);
}

const char *hzc__errtext(int err) {
  /* hzshm_errno.h codes, else libuv's (which include every -errno). */
  if (err <= -30001 && err >= -30999) return hzshm_strerror(err);
  return uv_strerror(err);
}

int hzc_parse_address(const char *s, char *host, size_t cap, int *port) {
  if (!s || !host || cap == 0 || !port) return HZSHM_EINVAL;
  const char *h = s, *pp = NULL;
  size_t hl;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (!close || close == s + 1) return HZSHM_EINVAL;
    h = s + 1;
    hl = (size_t)(close - h);
    if (close[1] == ':') pp = close + 2;
    else if (close[1] != 0) return HZSHM_EINVAL;
    if (memchr(h, ':', hl) == NULL) return HZSHM_EINVAL; /* brackets only around IPv6 literals */
  } else {
    const char *c1 = strchr(s, ':');
    if (c1 && strchr(c1 + 1, ':')) { /* bare IPv6 literal: no port possible */
      hl = strlen(s);
    } else {
      hl = c1 ? (size_t)(c1 - s) : strlen(s);
      if (c1) pp = c1 + 1;
    }
  }
  if (hl == 0 || hl >= cap) return HZSHM_EINVAL;
  for (size_t i = 0; i < hl; i++)
    if (h[i] == ',' || h[i] == ' ' || h[i] == '[' || h[i] == ']' || (unsigned char)h[i] < 0x21) return HZSHM_EINVAL;
  int p = 5701;
  if (pp) {
    char *end;
    long v = strtol(pp, &end, 10);
    if (*pp < '0' || *pp > '9' || *end || v <= 0 || v > 65535) return HZSHM_EINVAL;
    p = (int)v;
  }
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = p;
  return 0;
}

static hzc__astate_t *astate(hzc_client_t *c, const char *host, int port) {
  for (size_t i = 0; i < c->nastates; i++)
    if (c->astates[i].port == port && !strcmp(c->astates[i].host, host)) return &c->astates[i];
  if (c->nastates == c->castates) {
    size_t n = c->castates ? c->castates * 2 : 8;
    hzc__astate_t *v = realloc(c->astates, n * sizeof *v);
    if (!v) return NULL;
    c->astates = v;
    c->castates = n;
  }
  hzc__astate_t *a = &c->astates[c->nastates++];
  memset(a, 0, sizeof *a);
  snprintf(a->host, sizeof a->host, "%s", host);
  a->port = port;
  a->err = 1; /* never tried: the first outcome is a change */
  return a;
}

unsigned hzc__addr_attempt(hzc_client_t *c, const char *host, int port) {
  hzc__astate_t *a = astate(c, host, port);
  return a ? a->attempts++ : 0;
}

void hzc__addr_note(hzc_client_t *c, const char *host, int port, const char *ip, int err, const char *what) {
  hzc__astate_t *a = astate(c, host, port);
  if (!a || a->err == err) return;
  int first = a->err == 1;
  a->err = err;
  int v6 = strchr(host, ':') != NULL;
  const char *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";
  char via[80] = "";
  if (ip && ip[0] && strcmp(ip, host)) snprintf(via, sizeof via, " (%s)", ip);
  if (err == 0) {
    /* Connected: worth a line only after a failure (the agent logs the cluster). */
    if (!first) hzc__log(HZC_LOG_INFO, "member %s%s%s:%d%s reachable again", lb, host, rb, port, via);
  } else {
    hzc__log(HZC_LOG_WARNING, "member %s%s%s:%d%s: %s: %s; retrying with backoff (up to %u ms)", lb, host, rb,
               port, via, what, hzc__errtext(err), c->reconnect_max_backoff_ms);
  }
}
