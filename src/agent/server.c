/* server.c - the agent's Unix socket: accept, check peer credentials, read
 * frames, write responses.
 *
 * Peers: SO_PEERCRED is checked on accept: the agent's own uid and root are
 * allowed, plus members of --allow-gid. Others get one error frame
 * (HZSHM_EPEER, reqid 0) and are closed.
 * Framing: ipc.h. A frame that fails header or body decoding gets an error
 * frame (HZSHM_EPROTO, its reqid if the header was readable, else 0) and the
 * connection is closed; nothing else happens for it.
 * Lifetime: a lconn_t is freed when its handle is closed and no request that
 * holds a reference (pending cluster operations) remains.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "reqparse.h"

#define LCONN_WQ_MAX (64u << 20) /* unread response bytes per connection */

typedef struct {
  uv_write_t w;
  lconn_t *c;
  int close_after;
  uint8_t data[];
} wreq_t;

static void lconn_free_cb(uv_handle_t *h) {
  lconn_t *c = h->data;
  lconn_unref(c);
}

static void lconn_close(lconn_t *c) {
  if (c->closed) return;
  c->closed = 1;
  agent_t *a = c->a;
  if (c->prev) c->prev->next = c->next;
  else a->srv.conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->next = c->prev = NULL;
  counter_add(a, HZSHM__AC_CONNECTIONS, -1);
  uv_close((uv_handle_t *)&c->pipe, lconn_free_cb);
}

void lconn_ref(lconn_t *c) { c->refs++; }

void lconn_unref(lconn_t *c) {
  if (--c->refs > 0) return;
  free(c->rbuf);
  free(c);
}

static void write_cb(uv_write_t *w, int status) {
  wreq_t *wr = (wreq_t *)w;
  lconn_t *c = wr->c;
  if ((status < 0 || wr->close_after) && !c->closed) lconn_close(c);
  lconn_unref(c);
  free(wr);
}

static void send_frame(lconn_t *c, uint8_t op, uint32_t reqid, int status, int32_t aux, const void *val,
                       size_t vlen, int close_after) {
  if (c->closed) return;
  if (c->pipe.write_queue_size > LCONN_WQ_MAX) {
    /* A client that pipelines requests but does not read the answers would
     * make the agent buffer without bound: drop it. */
    log_info("closing a connection with %zu unread response bytes", c->pipe.write_queue_size);
    lconn_close(c);
    return;
  }
  size_t n = hzshm__ipc_resp_size(vlen);
  wreq_t *wr = malloc(sizeof *wr + n);
  if (wr == NULL) {
    lconn_close(c); /* cannot answer: the client sees EAGENT rather than a hang */
    return;
  }
  long len = hzshm__ipc_resp_encode(wr->data, n, op, reqid, status, aux, val, vlen);
  if (len < 0) { /* a value over the limit: answer with the error instead */
    len = hzshm__ipc_resp_encode(wr->data, n, op, reqid, (int)len, 0, NULL, 0);
  }
  wr->c = c;
  wr->close_after = close_after;
  lconn_ref(c);
  uv_buf_t b = uv_buf_init((char *)wr->data, (unsigned)len);
  if (uv_write(&wr->w, (uv_stream_t *)&c->pipe, &b, 1, write_cb) != 0) {
    lconn_unref(c);
    free(wr);
    lconn_close(c);
  }
}

void server_reply(lconn_t *c, uint8_t op, uint32_t reqid, int status, int32_t aux, const void *val,
                  size_t vlen) {
  counter_add(c->a, HZSHM__AC_REQUESTS, 1);
  unsigned slot = reqid & 63u;
  if (c->t_ns[slot] && c->t_reqid[slot] == reqid) {
    hzshm__hist_observe(&c->a->stats.hist[0], (double)(now_ns() - c->t_ns[slot]) / 1e9);
    c->t_ns[slot] = 0;
  }
  send_frame(c, op, reqid, status, aux, val, vlen, 0);
}

static void refuse(lconn_t *c, uint32_t reqid, uint8_t op, int status) {
  counter_add(c->a, HZSHM__AC_BAD_REQUESTS, 1);
  uv_read_stop((uv_stream_t *)&c->pipe);
  send_frame(c, op ? op : HZSHM__OP_HELLO, reqid, status, 0, NULL, 0, 1);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  lconn_t *c = h->data;
  size_t want = c->rlen + 65536;
  if (c->rcap < want) {
    uint8_t *nb = realloc(c->rbuf, want);
    if (nb == NULL) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->rbuf = nb;
    c->rcap = want;
  }
  *buf = uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static int on_request(void *ud, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r) {
  lconn_t *c = ud;
  c->t_reqid[h->reqid & 63u] = h->reqid;
  c->t_ns[h->reqid & 63u] = now_ns();
  req_dispatch(c, h, r);
  return c->closed;
}

/* Consumes every complete frame in rbuf (framing and decoding: reqparse.c). */
static void parse(lconn_t *c) {
  req_scan_t sc;
  req_scan(c->rbuf, c->rlen, on_request, c, &sc);
  if (sc.bad && !c->closed) {
    refuse(c, sc.reqid, sc.op, HZSHM_EPROTO);
    return;
  }
  size_t off = sc.used;
  if (off) {
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
  }
  /* Do not keep a 1 MiB buffer per idle connection. */
  if (c->rlen == 0 && c->rcap > (1u << 17)) {
    free(c->rbuf);
    c->rbuf = NULL;
    c->rcap = 0;
  }
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  lconn_t *c = st->data;
  if (n < 0) {
    lconn_close(c);
    return;
  }
  c->rlen += (size_t)n;
  parse(c);
}

static int peer_allowed(agent_t *a, int fd) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) return 0;
  if (cr.uid == 0 || cr.uid == getuid()) return 1;
  return a->o.allow_gid >= 0 && (long)cr.gid == a->o.allow_gid;
}

static void accept_cb(uv_stream_t *srv, int status) {
  agent_t *a = srv->data;
  if (status < 0) return;
  lconn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  c->a = a;
  c->refs = 1;
  uv_pipe_init(a->loop, &c->pipe, 0);
  c->pipe.data = c;
  c->next = a->srv.conns;
  if (a->srv.conns) a->srv.conns->prev = c;
  a->srv.conns = c;
  counter_add(a, HZSHM__AC_CONNECTIONS, 1);
  if (uv_accept(srv, (uv_stream_t *)&c->pipe) != 0) {
    lconn_close(c);
    return;
  }
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0 || !peer_allowed(a, fd)) {
    log_info("refusing a peer that is neither our uid, root nor the allowed gid");
    refuse(c, 0, 0, HZSHM_EPEER);
    return;
  }
  uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* The socket path may hold what a killed agent left (replaced), a socket
 * another process listens on (another cache's agent given the same --socket:
 * in use, fatal), or something that is no socket (fatal, not removed). */
static int path_free(agent_t *a) {
  struct stat st;
  if (lstat(a->o.sockpath, &st) != 0) return errno == ENOENT ? 0 : -errno;
  if (!S_ISSOCK(st.st_mode)) return -ENOTSOCK;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, a->o.sockpath, strlen(a->o.sockpath) + 1); /* < 108: checked by opts.c */
  int live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  if (live) return -EADDRINUSE;
  unlink(a->o.sockpath); /* nobody listens: a killed agent's */
  return 0;
}

int server_start(agent_t *a) {
  uv_pipe_init(a->loop, &a->srv.pipe, 0);
  a->srv.pipe.data = a;
  a->srv.bound = 0;
  int rc = path_free(a);
  if (rc != 0) {
    log_at(LVL_ERR, "fatal: cannot listen on %s: %s", a->o.sockpath,
           rc == -EADDRINUSE ? "socket in use by another process (give another --socket)"
           : rc == -ENOTSOCK ? "the path exists and is not a socket"
                             : uv_strerror(rc));
    return rc;
  }
  rc = uv_pipe_bind(&a->srv.pipe, a->o.sockpath);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&a->srv.pipe, 128, accept_cb);
  if (rc == 0) chmod(a->o.sockpath, 0666); /* the gate is SO_PEERCRED (accept_cb), which answers refused peers */
  if (rc != 0) log_at(LVL_ERR, "fatal: cannot listen on %s: %s", a->o.sockpath, uv_strerror(rc));
  else a->srv.bound = 1;
  return rc;
}

void server_close(agent_t *a) {
  while (a->srv.conns) lconn_close(a->srv.conns);
  uv_close((uv_handle_t *)&a->srv.pipe, NULL);
  if (a->srv.bound) unlink(a->o.sockpath); /* never another process's socket */
}
