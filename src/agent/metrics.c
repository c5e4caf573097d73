/* metrics.c - --metrics-listen HOST:PORT: GET /metrics in the Prometheus
 * text format (src/common/report.c), served on the agent's libuv loop.
 *
 * A deliberately small HTTP/1.0-1.1 responder: one request per connection,
 * answered then closed (Connection: close). Robust against what a network
 * peer can send: the request head is bounded (HTTP_MAX bytes, else
 * 431), a connection that has not sent a complete head within
 * HTTP_TIMEOUT_MS is closed, at most HTTP_CONNS connections are
 * open at once (more are closed on accept). GET and HEAD of /metrics (any
 * query string) get 200; other paths 404; other methods 405; a request line
 * that does not parse 400. Nothing a peer sends changes the agent's state.
 *
 * Histograms (agent_t.hist): the agent hop (a local request's arrival to its
 * answer, server.c) and the invalidation lag (a write's cluster ack to its
 * own invalidation event, inval.c through counter_set).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "stats.h"

#define HTTP_MAX 8192
#define HTTP_TIMEOUT_MS 5000
#define HTTP_CONNS 16

typedef struct http {
  uv_tcp_t tcp; /* first: the handle's data is the http */
  uv_timer_t timer;
  agent_t *a;
  struct http *next, *prev;
  char buf[HTTP_MAX];
  size_t len;
  int answered;
  int closes; /* handles still to close (tcp, timer) */
} http_t;

typedef struct {
  uv_write_t w;
  http_t *h;
  char data[];
} hwrite_t;

static void hist_init(hzshm__hist_t *h, const char *name, const char *help, const double *b) {
  memset(h, 0, sizeof *h);
  h->name = name;
  h->help = help;
  memcpy(h->bounds, b, sizeof h->bounds);
}

void metrics_init(agent_t *a) {
  static const double hop[HZSHM__HIST_BUCKETS] = {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
                                                  2.5e-3, 5e-3, 10e-3, 50e-3, 250e-3, 1.0};
  static const double lag[HZSHM__HIST_BUCKETS] = {100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
                                                  10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1.0};
  hist_init(&a->stats.hist[0], "hzshm_agent_request_seconds",
            "Agent hop: a local request's arrival at the agent to its answer (misses, writes).", hop);
  hist_init(&a->stats.hist[1], "hzshm_invalidation_lag_seconds",
            "A write's cluster acknowledgement to the arrival of its own invalidation event.", lag);
}

static void h_freed(uv_handle_t *hd) {
  http_t *h = hd->data;
  if (--h->closes == 0) free(h);
}

static void h_close(http_t *h) {
  if (h->closes) return;
  agent_t *a = h->a;
  if (h->prev) h->prev->next = h->next;
  else a->http.conns = h->next;
  if (h->next) h->next->prev = h->prev;
  a->http.nconns--;
  h->closes = 2;
  uv_close((uv_handle_t *)&h->tcp, h_freed);
  uv_close((uv_handle_t *)&h->timer, h_freed);
}

static void h_written(uv_write_t *w, int status) {
  hwrite_t *hw = (hwrite_t *)w;
  h_close(hw->h);
  free(hw);
}

static void h_send(http_t *h, const char *status, const char *ctype, const char *body, size_t blen, int head) {
  h->answered = 1;
  uv_read_stop((uv_stream_t *)&h->tcp);
  char hdr[256];
  int hl = snprintf(hdr, sizeof hdr,
                    "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                    ctype, blen);
  size_t n = (size_t)hl + (head ? 0 : blen);
  hwrite_t *hw = malloc(sizeof *hw + n);
  if (hw == NULL) {
    h_close(h);
    return;
  }
  memcpy(hw->data, hdr, (size_t)hl);
  if (!head) memcpy(hw->data + hl, body, blen);
  hw->h = h;
  uv_buf_t b = uv_buf_init(hw->data, (unsigned)n);
  if (uv_write(&hw->w, (uv_stream_t *)&h->tcp, &b, 1, h_written) != 0) {
    free(hw);
    h_close(h);
  }
}

static void h_error(http_t *h, const char *status) {
  char body[64];
  int n = snprintf(body, sizeof body, "%s\n", status);
  h_send(h, status, "text/plain; charset=utf-8", body, (size_t)n, 0);
}

static void h_metrics(http_t *h, int head) {
  agent_t *a = h->a;
  hzshm_stats_t st;
  if (a->shm == NULL || hzshm__stats_read(a->shm, &st) != 0) {
    h_error(h, "503 Service Unavailable");
    return;
  }
  size_t n = hzshm__prom_render(NULL, 0, a->o.name, &st, a->stats.hist, 2);
  char pages[1536]; /* the agent's own facts, not in the segment (the CLI has no such line) */
  int pn = snprintf(pages, sizeof pages,
                    "# HELP hzshm_segment_huge_pages 1 when 2 MiB pages back the segment (PMD-mapped at start-up), "
                    "else 0 (the start-up log line says why).\n# TYPE hzshm_segment_huge_pages gauge\n"
                    "hzshm_segment_huge_pages{cache=\"%s\"} %d\n"
                    "# HELP hzshm_cluster_partitions The partition count of the cluster last joined "
                    "(hazelcast.partition.count); 0 before the first join.\n"
                    "# TYPE hzshm_cluster_partitions gauge\nhzshm_cluster_partitions{cache=\"%s\"} %u\n"
                    "# HELP hzshm_segment_partitions The partition count the segment was made for (--partitions); "
                    "keys of a cluster's partitions at or above it are never cached.\n"
                    "# TYPE hzshm_segment_partitions gauge\nhzshm_segment_partitions{cache=\"%s\"} %u\n",
                    a->o.name, a->huge_pages == PAGES_2M, a->o.name, a->hz ? hzc_partition_count(a->hz) : 0,
                    a->o.name, a->cluster.partitions);
  size_t pl = pn > 0 && (size_t)pn < sizeof pages ? (size_t)pn : 0;
  char *body = malloc(n + pl + 1);
  if (body == NULL) {
    h_error(h, "503 Service Unavailable");
    return;
  }
  hzshm__prom_render(body, n + 1, a->o.name, &st, a->stats.hist, 2);
  memcpy(body + n, pages, pl);
  h_send(h, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, n + pl, head);
  free(body);
}

/* The head is complete: "METHOD SP TARGET SP HTTP/1.x". */
static void h_request(http_t *h) {
  char *eol = memchr(h->buf, '\n', h->len);
  size_t ll = eol ? (size_t)(eol - h->buf) : 0;
  if (ll && h->buf[ll - 1] == '\r') ll--;
  char line[HTTP_MAX + 1];
  memcpy(line, h->buf, ll);
  line[ll] = 0;
  char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  if (!sp1 || !sp2 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || strchr(sp2 + 1, ' ')) {
    h_error(h, "400 Bad Request");
    return;
  }
  *sp1 = *sp2 = 0;
  char *target = sp1 + 1, *q = strchr(target, '?');
  if (q) *q = 0;
  int get = !strcmp(line, "GET"), head = !strcmp(line, "HEAD");
  if (strcmp(target, "/metrics") != 0) h_error(h, "404 Not Found");
  else if (!get && !head) h_error(h, "405 Method Not Allowed");
  else h_metrics(h, head);
}

static void h_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *b) {
  http_t *h = hd->data;
  *b = uv_buf_init(h->buf + h->len, (unsigned)(sizeof h->buf - h->len));
}

static void h_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  http_t *h = s->data;
  if (h->answered) return;
  if (n < 0) {
    h_close(h);
    return;
  }
  h->len += (size_t)n;
  /* The end of the head: an empty line (CRLF CRLF, or bare LF LF). */
  for (size_t i = 1; i < h->len; i++) {
    if (h->buf[i] == '\n' && (h->buf[i - 1] == '\n' || (i >= 3 && !memcmp(h->buf + i - 3, "\r\n\r", 3)))) {
      h_request(h);
      return;
    }
  }
  if (h->len == sizeof h->buf) h_error(h, "431 Request Header Fields Too Large");
}

static void h_timeout(uv_timer_t *t) {
  http_t *h = t->data;
  if (!h->answered) h_close(h);
}

static void m_accept(uv_stream_t *srv, int status) {
  agent_t *a = srv->data;
  if (status < 0) return;
  http_t *h = calloc(1, sizeof *h);
  if (h == NULL) return;
  h->a = a;
  uv_tcp_init(a->loop, &h->tcp);
  uv_timer_init(a->loop, &h->timer);
  h->tcp.data = h->timer.data = h;
  h->next = a->http.conns;
  if (a->http.conns) a->http.conns->prev = h;
  a->http.conns = h;
  a->http.nconns++;
  if (uv_accept(srv, (uv_stream_t *)&h->tcp) != 0 || a->http.nconns > HTTP_CONNS) {
    h_close(h);
    return;
  }
  uv_timer_start(&h->timer, h_timeout, HTTP_TIMEOUT_MS, 0);
  uv_read_start((uv_stream_t *)&h->tcp, h_alloc, h_read);
}

int metrics_start(agent_t *a) {
  if (a->o.metrics_listen == NULL) return 0;
  char host[256];
  int port;
  if (hzc_parse_address(a->o.metrics_listen, host, sizeof host, &port) != 0) return HZSHM_EINVAL; /* opts.c checked */
  /* Resolved once, synchronously, before the loop runs (start-up only). */
  uv_getaddrinfo_t req;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
  char ps[8];
  snprintf(ps, sizeof ps, "%d", port);
  int rc = uv_getaddrinfo(a->loop, &req, NULL, host, ps, &hints);
  if (rc == 0) {
    uv_tcp_init(a->loop, &a->http.listener);
    a->http.listener.data = a;
    a->http.open = 1;
    rc = uv_tcp_bind(&a->http.listener, req.addrinfo->ai_addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&a->http.listener, 16, m_accept);
    uv_freeaddrinfo(req.addrinfo);
  }
  if (rc != 0)
    log_at(LVL_ERR, "fatal: cannot serve metrics on %s: %s", a->o.metrics_listen, uv_strerror(rc));
  return rc;
}

void metrics_close(agent_t *a) {
  while (a->http.conns) h_close(a->http.conns);
  if (a->http.open) uv_close((uv_handle_t *)&a->http.listener, NULL);
  a->http.open = 0;
}
