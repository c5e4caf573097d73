/* test_blackhole.c - silent member loss is detected within --stale-ms
 * (issue 11, hole 4).
 *
 * The agent reaches its only member through a loopback TCP proxy run by this
 * test (a thread). The proxy then black-holes the connection: it keeps both
 * TCP connections open and discards every byte in both directions, as a
 * silent network loss would (no RST, no FIN). The official Java client,
 * connected directly, changes the cached key. The host must stop serving the
 * old value within the bound: --stale-ms (1 s) after the last bytes heard.
 * Before the fix only the client heartbeat timeout (5 s) ended it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

#define STALE_MS 1000
#define SLACK_MS 1000 /* scheduling on a loaded 2-core box; the old code needed 5 s */
#define MAXFD 32

typedef struct {
  int lfd, port, dst_port;
  atomic_int blackhole, stop;
  int fd[MAXFD], other[MAXFD]; /* pairs: fd[i] forwards to other[i] */
  int n;
  atomic_ulong dropped;
} proxy_t;

static int listen_any(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK_GE(fd, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  CHECK_EQ(listen(fd, 16), 0);
  socklen_t l = sizeof sa;
  CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
  *port = ntohs(sa.sin_port);
  return fd;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1;
}

static void drop_pair(proxy_t *p, int i) {
  int a = p->fd[i], b = p->other[i];
  close(a), close(b);
  for (int j = p->n - 1; j >= 0; j--)
    if (p->fd[j] == a || p->fd[j] == b) {
      p->fd[j] = p->fd[p->n - 1], p->other[j] = p->other[p->n - 1];
      p->n--;
    }
}

static void *proxy_run(void *ud) {
  proxy_t *p = ud;
  char buf[65536];
  while (!atomic_load(&p->stop)) {
    struct pollfd pf[MAXFD + 1];
    pf[0] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
    for (int i = 0; i < p->n; i++) pf[i + 1] = (struct pollfd){.fd = p->fd[i], .events = POLLIN};
    int n = p->n;
    if (poll(pf, (nfds_t)n + 1, 20) <= 0) continue;
    if (pf[0].revents & POLLIN) {
      int c = accept(p->lfd, NULL, NULL);
      int d = c >= 0 ? connect_to(p->dst_port) : -1;
      if (d >= 0 && p->n + 2 <= MAXFD) {
        p->fd[p->n] = c, p->other[p->n++] = d;
        p->fd[p->n] = d, p->other[p->n++] = c;
      } else {
        if (c >= 0) close(c);
        if (d >= 0) close(d);
      }
    }
    for (int i = 0; i < n && i < p->n; i++) {
      if (!(pf[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) || pf[i + 1].fd != p->fd[i]) continue;
      ssize_t r = read(p->fd[i], buf, sizeof buf);
      if (r <= 0) {
        drop_pair(p, i);
        break; /* indices moved: poll again */
      }
      if (atomic_load(&p->blackhole)) {
        atomic_fetch_add(&p->dropped, (unsigned long)r);
        continue;
      }
      for (ssize_t off = 0; off < r;) {
        ssize_t w = write(p->other[i], buf + off, (size_t)(r - off));
        if (w <= 0) break;
        off += w;
      }
    }
  }
  while (p->n > 0) drop_pair(p, 0);
  return NULL;
}

TEST_CASE(black_holed) {
  const char *colon = strrchr(e2e_members(), ':');
  CHECK_NE(colon, NULL);
  static proxy_t px;
  px.dst_port = atoi(colon + 1);
  px.lfd = listen_any(&px.port);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, proxy_run, &px), 0);

  char name[64], sid[64], via[64];
  snprintf(name, sizeof name, "e2e-bh-%d", (int)getpid());
  snprintf(sid, sizeof sid, "blackhole-%d", (int)getpid());
  snprintf(via, sizeof via, "127.0.0.1:%d", px.port);
  e2e_agent_t ag = {0};
  ag.extra_args[0] = "--stale-ms";
  ag.extra_args[1] = "1000";
  e2e_agent_start(&ag, name, via);
  hzshm__peer_t *peer;
  CHECK_RC(hzshm__peer_start(e2e_members(), "dev", 90000, &peer), 0);
  hzshm_t *h;
  hzshm_session_t *s;
  e2e_open_watched(name, sid, &h, &s);
  CHECK_RC(hzshm_set(s, "k", 1, "v1", 2), 0);
  e2e_hit_t hit = {h, s, "k", "v1"};
  CHECK_GE(e2e_wait(e2e_is_hit, &hit, 5000), 0);

  uint64_t t0 = e2e_now_us();
  atomic_store(&px.blackhole, 1);
  CHECK_RC(hzshm__peer_set(peer, sid, "k", 1, "v2", 2), 0); /* its invalidation is discarded */
  uint64_t last_old = t0, first_closed = 0, reads = 0;
  int got_new = 0, first_rc = 0;
  while (!got_new && e2e_now_us() - t0 < 60000000u) {
    char buf[16];
    size_t vl = 0;
    int rc = hzshm_get(s, "k", 1, buf, sizeof buf, &vl);
    uint64_t t = e2e_now_us();
    reads++;
    if (rc == 0 && vl == 2 && memcmp(buf, "v1", 2) == 0) last_old = t;
    else if (rc == 0 && vl == 2 && memcmp(buf, "v2", 2) == 0) got_new = 1;
    else if (rc != 0 && first_closed == 0) first_closed = t, first_rc = rc;
  }
  printf("black hole: old value served until %llu ms after the cut (bound --stale-ms %d), first refusal (%s) at %llu ms, "
         "%llu reads, new value read: %s, %lu bytes discarded\n",
         (unsigned long long)(last_old - t0) / 1000, STALE_MS, first_rc ? hzshm_err_name(first_rc) : "none",
         (unsigned long long)(first_closed ? (first_closed - t0) / 1000 : 0), (unsigned long long)reads,
         got_new ? "yes" : "no", atomic_load(&px.dropped));
  CHECK_LE(last_old - t0, (uint64_t)(STALE_MS + SLACK_MS) * 1000u);
  CHECK(got_new); /* reconnected (directly, by the member list) and repaired */

  atomic_store(&px.blackhole, 0);
  CHECK_RC(hzshm_destroy(s), 0);
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_EQ(hzshm__peer_stop(peer, 20000), 0);
  CHECK_EQ(e2e_agent_stop(&ag), 0);
  atomic_store(&px.stop, 1);
  pthread_join(th, NULL);
  close(px.lfd);
  printf("test_blackhole: ok\n");
}
