/* conn.c - one libuv TCP connection to a member: connect (deadline checked by
 * the client tick), the "CP2" preamble, read stream -> frame decoder ->
 * messages, ordered writes, close with a logged reason.
 *
 * Loop thread only (see hzc_int.h). A connection is freed in its uv_close
 * callback; until then it stays on the client's list in state CLOSING so
 * late callbacks find it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hzc_int.h"
#include "hzshm.h"

void hzc__uuid_str(const hzc_uuid_t *u, char out[37]) {
  static const char hx[] = "0123456789abcdef";
  int j = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
    out[j++] = hx[u->b[i] >> 4];
    out[j++] = hx[u->b[i] & 15];
  }
  out[j] = 0;
}

typedef struct {
  uv_write_t req;
  hzc__conn_t *conn;
  uv_buf_t buf;
  uint8_t data[];
} wreq_t;

/* Freed once both its tcp handle is closed and no resolution is in flight
 * (each counts as one of the client's handles until then). */
static void conn_release(hzc__conn_t *k) {
  if (!k->tcp_closed || k->resolving) return;
  hzc_client_t *c = k->cl;
  hzc__conn_t **pp = &c->conns;
  while (*pp && *pp != k) pp = &(*pp)->next;
  if (*pp) *pp = k->next;
  hzc__fdec_free(&k->dec);
  free(k);
  if (c->closing && c->handles == 0) {
    hzc__client_finalize(c);
  }
}

static void conn_on_closed(uv_handle_t *h) {
  hzc__conn_t *k = h->data;
  k->tcp_closed = 1;
  k->cl->handles--;
  conn_release(k);
}

void hzc__conn_close(hzc__conn_t *k, int err, const char *reason) {
  if (k->state == HZC__CONN_CLOSING) return;
  hzc_client_t *c = k->cl;
  int was = k->state;
  k->state = HZC__CONN_CLOSING;
  k->close_err = err;
  if (!c->closing || err != HZSHM_ECLOSED)
    hzc__log(HZC_LOG_DEBUG, "connection #%d to %s:%d closed: %s (%s)", k->id, k->host, k->port, reason,
               hzc__errtext(err));
  /* The operator's line: once per change of this address's outcome (addr.c). */
  if (!c->closing && err != HZSHM_EAUTH) hzc__addr_note(c, k->host, k->port, k->ip, err, reason);
  if (k->resolving) uv_cancel((uv_req_t *)&k->gai); /* its callback (UV_EAI_CANCELED or not) releases k */
  uv_read_stop((uv_stream_t *)&k->tcp);
  uv_close((uv_handle_t *)&k->tcp, conn_on_closed);
  k->was_ready = was == HZC__CONN_READY;
  hzc__cluster_conn_closed(c, k);
}

void hzc__conn_close_doomed(hzc_client_t *c) {
  for (hzc__conn_t *x = c->conns; x; x = x->next) /* conn_close unlinks only in its close callback */
    if (x->doomed && x->state != HZC__CONN_CLOSING) hzc__conn_close(x, x->doomed, "write failed");
}

static void conn_on_write(uv_write_t *req, int status) {
  wreq_t *w = (wreq_t *)req;
  hzc__conn_t *k = w->conn;
  free(w);
  if (status < 0 && status != UV_ECANCELED) hzc__conn_close(k, status, "write failed");
}

int hzc__conn_write(hzc__conn_t *k, const void *p, size_t n) {
  if (k->state == HZC__CONN_CLOSING || k->state == HZC__CONN_CONNECTING) return HZSHM_ECLOSED;
  if (k->doomed) return k->doomed;
  wreq_t *w = malloc(sizeof *w + n);
  if (!w) return -ENOMEM;
  memcpy(w->data, p, n);
  w->conn = k;
  w->buf = uv_buf_init((char *)w->data, (unsigned)n);
  int rc = uv_write(&w->req, (uv_stream_t *)&k->tcp, &w->buf, 1, conn_on_write);
  if (rc) {
    free(w);
    k->doomed = rc;
    return rc;
  }
  k->last_write = uv_now(k->cl->loop);
  return 0;
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  hzc__conn_t *k = h->data;
  buf->base = (char *)k->cl->rbuf;
  buf->len = sizeof k->cl->rbuf;
}

static int conn_on_msg(void *ud, hzc__msg_t *m) {
  hzc__conn_t *k = ud;
  hzc__invoke_on_message(k->cl, k, m);
  return k->state == HZC__CONN_CLOSING ? HZSHM_ECLOSED : 0;
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  hzc__conn_t *k = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    hzc__conn_close(k, nread == UV_EOF ? HZSHM_ECLOSED : (int)nread, nread == UV_EOF ? "closed by member" : "read failed");
    return;
  }
  k->last_read = k->cl->last_heard = uv_now(k->cl->loop);
  int rc = hzc__fdec_feed(&k->dec, buf->base, (size_t)nread, conn_on_msg, k);
  if (rc == HZSHM_EPROTO) hzc__conn_close(k, rc, "malformed frame stream from member");
  else if (rc && rc != HZSHM_ECLOSED) hzc__conn_close(k, rc, "decoder failed");
}

static void conn_on_connect(uv_connect_t *req, int status) {
  hzc__conn_t *k = req->data;
  if (status == UV_ECANCELED || k->state == HZC__CONN_CLOSING) return;
  if (status < 0) {
    hzc__conn_close(k, status, "connect failed");
    return;
  }
  uv_tcp_nodelay(&k->tcp, 1);
  k->state = HZC__CONN_AUTH;
  k->last_read = k->last_write = uv_now(k->cl->loop);
  int rc = uv_read_start((uv_stream_t *)&k->tcp, conn_alloc, conn_on_read);
  if (rc) {
    hzc__conn_close(k, rc, "read start failed");
    return;
  }
  if (hzc__conn_write(k, "CP2", 3) == 0) hzc__cluster_conn_connected(k->cl, k);
}

/* The host resolved (or not): connect to one of its addresses, the next one
 * on each attempt (so "localhost" -> ::1 refused is followed by 127.0.0.1). */
static void conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  hzc__conn_t *k = req->data;
  hzc_client_t *c = k->cl;
  k->resolving = 0;
  c->handles--;
  if (k->state == HZC__CONN_CLOSING) {
    if (res) uv_freeaddrinfo(res);
    conn_release(k);
    return;
  }
  size_t n = 0;
  for (struct addrinfo *ai = res; status == 0 && ai; ai = ai->ai_next)
    n += ai->ai_family == AF_INET || ai->ai_family == AF_INET6;
  if (status != 0 || n == 0) {
    if (res) uv_freeaddrinfo(res);
    hzc__conn_close(k, status ? status : UV_EAI_NONAME, "cannot resolve the host name");
    return;
  }
  size_t pick = hzc__addr_attempt(c, k->host, k->port) % n;
  struct addrinfo *ai = res;
  for (;; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (pick-- == 0) break;
  }
  uv_ip_name(ai->ai_addr, k->ip, sizeof k->ip);
  int rc = uv_tcp_connect(&k->creq, &k->tcp, ai->ai_addr, conn_on_connect);
  uv_freeaddrinfo(res);
  if (rc) hzc__conn_close(k, rc, "connect failed");
}

int hzc__conn_open(hzc_client_t *c, const char *host, int port, hzc__conn_t **out) {
  if (c->blocked_port != 0 && port == c->blocked_port) return UV_ECONNREFUSED; /* hzc_test_block_port */
  hzc__conn_t *k = calloc(1, sizeof *k);
  if (!k) return -ENOMEM;
  int rc = uv_tcp_init(c->loop, &k->tcp);
  if (rc) {
    free(k);
    return rc;
  }
  k->cl = c;
  k->tcp.data = k;
  k->creq.data = k;
  k->id = ++c->next_conn_id;
  snprintf(k->host, sizeof k->host, "%s", host);
  k->port = port;
  k->state = HZC__CONN_CONNECTING;
  k->connect_deadline = uv_now(c->loop) + c->connect_timeout_ms;
  hzc__fdec_init(&k->dec, 0);
  k->next = c->conns;
  c->conns = k;
  c->handles++;
  /* Resolved on libuv's thread pool, on every attempt (a moved DNS name is
   * followed); numeric addresses resolve at once. */
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  k->gai.data = k;
  rc = uv_getaddrinfo(c->loop, &k->gai, conn_on_resolved, host, portstr, &hints);
  if (rc) {
    hzc__conn_close(k, rc, "cannot resolve the host name");
    return rc;
  }
  k->resolving = 1;
  c->handles++;
  *out = k;
  return 0;
}
