/* conn.c - libhzshm's connections to the agent: a fixed pool, each connection
 * under its own mutex with one synchronous request in flight.
 *
 * A thread takes the first connection it can trylock, starting at a round
 * robin position; if all are busy it waits on one. Connections are made
 * lazily (socket path from the segment header, so a restarted agent is found
 * again) and dropped on any transport error; the next request reconnects.
 * A request that failed in transport is never retried here: a set may or may
 * not have reached the cluster, and the caller must decide.
 *
 * Trust: anybody may bind the socket path (in /tmp) while the agent does not
 * (before it starts, after it exits). A connected peer is used only if its
 * uid (SO_PEERCRED, the peer's credentials when it listened) is a trusted
 * one (hzshm__shm_uid_trusted: our euid, root, the HZSHM_AGENT_UID that
 * hzshm_open resolved); otherwise the connection is closed before anything
 * is sent or read: HZSHM_EUNTRUSTED.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib_int.h"

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void conn_drop(hzshm__lib_conn_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

/* 0 if the peer of the connected socket `fd` runs under a trusted uid. */
static int peer_trusted(const hzshm_t *h, int fd) {
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof cr) return HZSHM_EUNTRUSTED;
  return hzshm__shm_uid_trusted(cr.uid, h->agent_uid) ? 0 : HZSHM_EUNTRUSTED;
}

/* Connects within the request's deadline. A unix stream connect to a
 * listener whose backlog is full waits for room, by default forever: a
 * process that bound the socket path first (see "Trust") and never accepts
 * would hang every request past timeout_ms, before the peer check could
 * refuse it. The wait is bounded by SO_SNDTIMEO (the kernel's connect timeout
 * for AF_UNIX; sends are MSG_DONTWAIT, so nothing else uses it). */
static int conn_connect(hzshm_t *h, hzshm__lib_conn_t *c, uint64_t deadline) {
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  int rc = hzshm__shm_socket(hzshm__lib_shm(h), path, sizeof path);
  if (rc != 0) return HZSHM_EAGENT;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, path, strnlen(path, sizeof sa.sun_path - 1));
  for (;;) {
    uint64_t t = now_ms();
    rc = HZSHM_EAGENT; /* not reachable in time; nothing was sent (unlike a request's ETIMEDOUT) */
    if (t >= deadline) break;
    struct timeval tv = {.tv_sec = (time_t)((deadline - t) / 1000),
                         .tv_usec = (suseconds_t)((deadline - t) % 1000 * 1000)};
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
      rc = -errno;
      break;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
      rc = 0;
      break;
    }
    if (errno == EINTR) continue; /* an interrupted AF_UNIX connect leaves the socket unconnected: again */
    rc = HZSHM_EAGENT; /* EAGAIN: no room in the backlog before the deadline */
    break;
  }
  if (rc != 0) {
    close(fd);
    return rc;
  }
  if ((rc = peer_trusted(h, fd)) != 0) {
    close(fd);
    return rc;
  }
  c->fd = fd;
  return 0;
}

static int grow(hzshm__lib_conn_t *c, size_t n) {
  if (c->cap >= n) return 0;
  uint8_t *b = realloc(c->buf, n);
  if (b == NULL) return -ENOMEM;
  c->buf = b;
  c->cap = n;
  return 0;
}

static int io_wait(int fd, short ev, uint64_t deadline) {
  for (;;) {
    uint64_t t = now_ms();
    if (t >= deadline) return HZSHM_ETIMEDOUT;
    struct pollfd p = {.fd = fd, .events = ev};
    int n = poll(&p, 1, (int)(deadline - t));
    if (n > 0) return 0;
    if (n < 0 && errno != EINTR) return -errno;
  }
}

static int send_all(int fd, const uint8_t *p, size_t n, uint64_t deadline) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      int rc = io_wait(fd, POLLOUT, deadline);
      if (rc) return rc;
    } else {
      return HZSHM_EAGENT;
    }
  }
  return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n, uint64_t deadline) {
  while (n) {
    ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
    } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      int rc = io_wait(fd, POLLIN, deadline);
      if (rc) return rc;
    } else {
      return HZSHM_EAGENT; /* EOF or reset: the agent went away */
    }
  }
  return 0;
}

static hzshm__lib_conn_t *conn_take(hzshm_t *h) {
  /* Relaxed: the counter only spreads threads over connections. */
  unsigned start = atomic_fetch_add_explicit(&h->rr, 1, memory_order_relaxed);
  for (uint32_t i = 0; i < h->nconn; i++) {
    hzshm__lib_conn_t *c = &h->conns[(start + i) % h->nconn];
    if (pthread_mutex_trylock(&c->mu) == 0) return c;
  }
  hzshm__lib_conn_t *c = &h->conns[start % h->nconn];
  pthread_mutex_lock(&c->mu);
  return c;
}

/* A buffer for req and a live connection; nothing is sent yet. */
static int conn_prepare(hzshm_t *h, hzshm__lib_conn_t *c, const hzshm__ipc_req_t *req, uint64_t deadline) {
  int rc = grow(c, hzshm__ipc_req_size(req));
  if (rc) return rc;
  if (c->fd >= 0) {
    /* Nothing is outstanding on an idle connection, so anything readable is
     * the EOF of an agent that went away (restarted): reconnect instead of
     * failing this request. One poll, only on the agent path. */
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 0) != 0) conn_drop(c);
  }
  return c->fd < 0 ? conn_connect(h, c, deadline) : 0;
}

/* Reads one response frame: its header, and its body into c->buf, decoded. */
static int read_response(hzshm__lib_conn_t *c, uint64_t deadline, hzshm__ipc_hdr_t *hdr, hzshm__ipc_resp_t *resp) {
  uint8_t hb[HZSHM__IPC_HDR];
  int rc = recv_all(c->fd, hb, sizeof hb, deadline);
  if (rc == 0) rc = hzshm__ipc_hdr_decode(hb, hdr);
  if (rc == 0) rc = grow(c, hdr->bodylen);
  if (rc == 0) rc = recv_all(c->fd, c->buf, hdr->bodylen, deadline);
  if (rc == 0) rc = hzshm__ipc_resp_decode(c->buf, hdr->bodylen, resp);
  return rc;
}

/* 0 if hdr answers request id with a status, else why it cannot. */
static int check_response(const hzshm__ipc_hdr_t *hdr, uint32_t id) {
  /* An error frame for a request we could not have sent (reqid 0) carries
   * the agent's reason (e.g. HZSHM_EPEER); anything else is a protocol slip. */
  if (hdr->reqid != id) return hdr->reqid == 0 && hdr->status < 0 ? hdr->status : HZSHM_EPROTO;
  /* Statuses are 0 or negative codes: a positive one would reach callers
   * that test rc < 0 as "success" (and then trust *vlen). */
  if (hdr->status > 0) return HZSHM_EPROTO;
  return 0;
}

/* Sends request op and reads its response. Once a byte may have been sent,
 * any failure leaves the stream unusable: *broken = 1. */
static int exchange(hzshm__lib_conn_t *c, uint8_t op, const hzshm__ipc_req_t *req, uint64_t deadline,
                    hzshm__ipc_hdr_t *hdr, hzshm__ipc_resp_t *resp, int *broken) {
  uint32_t id = ++c->next_id;
  long n = hzshm__ipc_req_encode(c->buf, c->cap, op, id, req);
  if (n < 0) return (int)n;
  int rc = send_all(c->fd, c->buf, (size_t)n, deadline);
  if (rc == 0) rc = read_response(c, deadline, hdr, resp);
  if (rc == 0) rc = check_response(hdr, id);
  *broken = rc != 0;
  return rc;
}

int hzshm__lib_conn_request(hzshm_t *h, uint8_t op, const hzshm__ipc_req_t *req, hzshm__lib_sink sink, void *ud) {
  hzshm__lib_conn_t *c = conn_take(h);
  uint64_t deadline = now_ms() + h->timeout_ms;
  hzshm__ipc_hdr_t hdr;
  hzshm__ipc_resp_t resp;
  int broken = 0;
  int rc = conn_prepare(h, c, req, deadline);
  if (rc == 0) rc = exchange(c, op, req, deadline, &hdr, &resp, &broken);
  if (rc == 0) {
    rc = hdr.status;
    if (sink) sink(ud, hdr.status, resp.aux, resp.val, resp.vlen);
  }
  if (broken) conn_drop(c); /* a half-read stream cannot be resynchronized */
  pthread_mutex_unlock(&c->mu);
  return rc;
}

void hzshm__lib_conn_close_all(hzshm_t *h) {
  for (uint32_t i = 0; i < h->nconn; i++) {
    pthread_mutex_lock(&h->conns[i].mu);
    conn_drop(&h->conns[i]);
    pthread_mutex_unlock(&h->conns[i].mu);
  }
}
