/* test_lib.c - libhzshm without an agent: this process plays the writer
 * (hzshm__shm_w_*) and checks what the public API serves from the segment:
 * hits, cached absence, buffer sizing, views, argument checks (nothing is
 * sent for bad input), fail-closed on an old heartbeat, fork detection, and
 * reader threads racing the writer (run under TSan: label threaded). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/hostile.h"
#include "e2e.h"
#include "runner.h"
#include "hzshm.h"
#include "shm.h"


static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char NAME[64];
static hzshm__shm_t *W;

static void put(const char *sid, const char *key, const char *val) {
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_session(W, sid, strlen(sid), &ref), 0);
  uint64_t st = hzshm__shm_w_stamp(W);
  if (val)
    CHECK_RC(hzshm__shm_w_put(W, &ref, key, strlen(key), val, strlen(val), 1, st, 0, 0), 0);
  else
    CHECK_RC(hzshm__shm_w_put(W, &ref, key, strlen(key), NULL, 0, 1, st, 0, HZSHM_SHM_NEGATIVE), 0);
}

static void test_hits(hzshm_t *h) {
  put("sess-1", "alpha", "hello world");
  put("sess-1", "gone", NULL);
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, "sess-1", 6, &s), 0);
  char buf[64];
  size_t vlen = 0;
  CHECK_RC(hzshm_get(s, "alpha", 5, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 11);
  CHECK_MEMEQ(buf, "hello world", 11);
  memset(buf, 'x', sizeof buf);
  CHECK_RC(hzshm_get(s, "alpha", 5, buf, 4, &vlen), HZSHM_EBUFSIZE);
  CHECK_EQ(vlen, 11);
  CHECK_EQ(buf[0], 'x'); /* needed size reported, buffer untouched */
  CHECK_RC(hzshm_has(s, "alpha", 5), 0);
  CHECK_RC(hzshm_get(s, "gone", 4, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_RC(hzshm_has(s, "gone", 4), HZSHM_ENOTFOUND);
  const void *v;
  CHECK_RC(hzshm_get_view(s, "alpha", 5, &v, &vlen), 0);
  CHECK_EQ(vlen, 11);
  CHECK_MEMEQ(v, "hello world", 11);
  hzshm_view_release(s);
  /* A miss goes to the agent: there is none listening. */
  CHECK_RC(hzshm_get(s, "nope", 4, buf, sizeof buf, &vlen), HZSHM_EAGENT);
  /* Replace, then the same handle sees the new value. */
  put("sess-1", "alpha", "v2");
  CHECK_RC(hzshm_get(s, "alpha", 5, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 2);
  CHECK_MEMEQ(buf, "v2", 2);
  /* Destroy hides the session at once; the cached ref re-resolves. */
  hzshm__sref_t ref, nref;
  CHECK_RC(hzshm__shm_w_session(W, "sess-1", 6, &ref), 0);
  CHECK_RC(hzshm__shm_w_session_drop(W, &ref, 1, &nref), 0);
  CHECK_RC(hzshm_has(s, "alpha", 5), HZSHM_EAGENT); /* miss now, and no agent */
  hzshm_session_close(s);
}

static void test_bad_input(hzshm_t *h) {
  hzshm_session_t *s;
  char big[2048];
  memset(big, 'a', sizeof big);
  CHECK_RC(hzshm_session_open(h, "", 0, &s), HZSHM_EEMPTY);
  CHECK_RC(hzshm_session_open(h, big, HZSHM_SESSION_MAX + 1, &s), HZSHM_ETOOBIG);
  CHECK_RC(hzshm_session_open(h, "a\0b", 3, &s), HZSHM_EBADSESSION);
  CHECK_RC(hzshm_session_open(h, "\xff\xfe", 2, &s), HZSHM_EBADSESSION);
  CHECK_RC(hzshm_session_open(h, big, HZSHM_SESSION_MAX, &s), 0);
  hzshm_session_close(s);
  CHECK_RC(hzshm_session_open(h, "ok", 2, &s), 0);
  char buf[8];
  size_t vlen;
  CHECK_RC(hzshm_get(s, "", 0, buf, sizeof buf, &vlen), HZSHM_EEMPTY);
  CHECK_RC(hzshm_get(s, big, HZSHM_KEY_MAX + 1, buf, sizeof buf, &vlen), HZSHM_ETOOBIG);
  CHECK_RC(hzshm_get(s, "\xc0\xaf", 2, buf, sizeof buf, &vlen), HZSHM_EINVAL);
  CHECK_RC(hzshm_has(s, "", 0), HZSHM_EEMPTY);
  CHECK_RC(hzshm_set(s, "", 0, "v", 1), HZSHM_EEMPTY);
  CHECK_RC(hzshm_set(s, big, HZSHM_KEY_MAX + 1, "v", 1), HZSHM_ETOOBIG);
  char *huge = calloc(1, HZSHM_VALUE_MAX + 1);
  CHECK_RC(hzshm_set(s, "k", 1, huge, HZSHM_VALUE_MAX + 1), HZSHM_ETOOBIG);
  free(huge);
  CHECK_RC(hzshm_set_ttl(s, "k", 1, "v", 1, -5), HZSHM_EINVAL);
  CHECK_RC(hzshm_del(s, "", 0), HZSHM_EEMPTY);
  /* Valid requests reach the transport: no agent here. */
  CHECK_RC(hzshm_set(s, "k", 1, "v", 1), HZSHM_EAGENT);
  hzshm_session_close(s);
  hzshm_opts_t o = {.prefix = big};
  hzshm_t *h2;
  big[300] = 0;
  CHECK_RC(hzshm_open(NAME, &o, &h2), HZSHM_ETOOBIG);
  CHECK_RC(hzshm_open("no-such-cache-here", NULL, &h2), -ENOENT);
  CHECK_RC(hzshm_open("bad/name", NULL, &h2), HZSHM_EINVAL);
}

/* The reader slots of this process's segment handles in use now. */
static uint32_t readers(hzshm_t *h) {
  hzshm_stats_t st;
  CHECK_RC(hzshm_stats(h, &st), 0);
  return st.readers;
}

/* Inherited handles keep working in a fork child (re-attached on first use,
 * with the child's own reader slot), in a grandchild too, and closing them
 * there leaves the parent's alone. */
static void test_fork(hzshm_t *h) {
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, "sess-f", 6, &s), 0);
  put("sess-f", "k", "v");
  char pbuf[8];
  size_t pvlen;
  CHECK_RC(hzshm_get(s, "k", 1, pbuf, sizeof pbuf, &pvlen), 0); /* the parent holds a reader slot */
  uint32_t before = readers(h);
  pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    char buf[8];
    size_t vlen = 0;
    int ok = hzshm_get(s, "k", 1, buf, sizeof buf, &vlen) == 0 && vlen == 1 && buf[0] == 'v' &&
             hzshm_has(s, "k", 1) == 0;
    ok = ok && readers(h) == before + 1; /* its own slot, the parent's kept */
    hzshm_session_t *s3;
    ok = ok && hzshm_session_open(h, "sess-f", 6, &s3) == 0 && hzshm_has(s3, "k", 1) == 0;
    hzshm_session_close(s3);
    pid_t g = fork(); /* again, from the child */
    if (g == 0) {
      int gok = hzshm_get(s, "k", 1, buf, sizeof buf, &vlen) == 0 && vlen == 1 && buf[0] == 'v';
      hzshm_session_close(s);
      hzshm_close(h); /* releases the grandchild's slot */
      _exit(gok ? 0 : 4);
    }
    int gst;
    ok = ok && g > 0 && waitpid(g, &gst, 0) == g && WIFEXITED(gst) && WEXITSTATUS(gst) == 0;
    hzshm_t *h2;
    ok = ok && hzshm_open(NAME, NULL, &h2) == 0; /* a fresh open works */
    hzshm_session_t *s2;
    ok = ok && hzshm_session_open(h2, "sess-f", 6, &s2) == 0 && hzshm_get(s2, "k", 1, buf, sizeof buf, &vlen) == 0 &&
         vlen == 1 && buf[0] == 'v';
    hzshm_session_close(s2);
    hzshm_close(h2);
    hzshm_session_close(s); /* the inherited ones: the parent's slot stays */
    hzshm_close(h);
    _exit(ok ? 0 : 3);
  }
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st));
  CHECK_EQ(WEXITSTATUS(st), 0);
  char buf[8];
  size_t vlen;
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0); /* the parent is unaffected */
  CHECK(readers(h) == before);
  hzshm_session_close(s);
}

/* Reader threads on one shared session handle while this thread rewrites
 * the value and drops/recreates the session: every read returns one of the
 * written values (never torn) or a miss. */
static atomic_int stop_threads;
static atomic_long total_hits; /* relaxed: a progress count read by the writer loop only */
static hzshm_session_t *shared;

static void *reader(void *arg) {
  char buf[64];
  size_t vlen;
  long hits = 0;
  while (!atomic_load_explicit(&stop_threads, memory_order_relaxed)) { /* relaxed: a stop flag */
    int rc = hzshm_get(shared, "tk", 2, buf, sizeof buf, &vlen);
    if (rc == 0) {
      CHECK_EQ(vlen, 16);
      for (size_t i = 1; i < vlen; i++) CHECK_EQ(buf[i], buf[0]); /* never a mix of two values */
      hits++;
      atomic_fetch_add_explicit(&total_hits, 1, memory_order_relaxed);
    } else {
      CHECK_EQ(rc, HZSHM_EAGENT); /* a miss, while the session was being dropped */
    }
  }
  return (void *)hits;
}

static void test_threads(hzshm_t *h) {
  CHECK_RC(hzshm_session_open(h, "sess-t", 6, &shared), 0);
  put("sess-t", "tk", "aaaaaaaaaaaaaaaa");
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, NULL);
  char v[17];
  /* At least 3000 rounds, and on until the readers have made 1000 hits
   * (threads may start late on a busy machine); 30 s deadline. */
  uint64_t t0 = now_ms();
  for (int round = 0; round < 3000 || (atomic_load_explicit(&total_hits, memory_order_relaxed) < 1000 &&
                                       now_ms() - t0 < 30000); round++) {
    memset(v, 'a' + round % 26, 16);
    v[16] = 0;
    put("sess-t", "tk", v);
    if (round % 100 == 99) {
      hzshm__sref_t ref, nref;
      CHECK_RC(hzshm__shm_w_session(W, "sess-t", 6, &ref), 0);
      CHECK_RC(hzshm__shm_w_session_drop(W, &ref, 1, &nref), 0);
    }
    if (round % 50 == 0) {
      hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
      hzshm__shm_w_maintain(W);
    }
  }
  atomic_store_explicit(&stop_threads, 1, memory_order_relaxed);
  long hits = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    hits += (long)r;
  }
  CHECK_GT(hits, 0);
  hzshm_session_close(shared);
}

static void test_fail_closed(hzshm_t *h) {
  put("sess-c", "k", "v");
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, "sess-c", 6, &s), 0);
  char buf[8];
  size_t vlen;
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0);
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_DISCONNECTED);
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), HZSHM_EDISCONNECTED);
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0);
  /* No heartbeat: within stale_after (300 ms) plus slack, hits stop. */
  uint64_t t0 = now_ms();
  int rc;
  while ((rc = hzshm_get(s, "k", 1, buf, sizeof buf, &vlen)) == 0 && now_ms() - t0 < 5000) {
  }
  CHECK_RC(rc, HZSHM_ESTALE);
  printf("fail closed after %llu ms without heartbeat (bound 300 ms + coarse clock)\n",
         (unsigned long long)(now_ms() - t0));
  hzshm_stats_t st;
  CHECK_RC(hzshm_stats(h, &st), 0);
  CHECK_GT(st.hits, 0);
  CHECK_GT(st.entries, 0);
  CHECK_EQ(st.agent_pid, getpid());
  hzshm_session_close(s);
}

/* Every case in a world of its own, built in its child: a fresh segment with
 * this process as its writer, and a library handle on it. */
static hzshm_t *H;
static void world_open(void) {
  snprintf(NAME, sizeof NAME, "test-lib-%d", (int)getpid());
  hzshm__shm_config_t cfg = {.memory_bytes = 8u << 20, .max_sessions = 256, .reader_slots = 64,
                             .stale_after_ns = 300u * 1000000u};
  int reused;
  CHECK_RC(hzshm__shm_w_open(NAME, &cfg, 1, &W, &reused), 0);
  CHECK_RC(hzshm__shm_w_set_socket(W, "/nonexistent/hzshm-test.sock"), 0);
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm_open(NAME, NULL, &H), 0);
}
static void world_close(void) {
  hzshm_close(H);
  hzshm__shm_close(W);
  hzshm__shm_unlink(NAME);
}

TEST_CASE(hits) {
  world_open();
  test_hits(H);
  world_close();
}
TEST_CASE(bad_input) {
  world_open();
  test_bad_input(H);
  world_close();
}
TEST_CASE(fork) {
  world_open();
  test_fork(H);
  world_close();
}
TEST_CASE(threads) {
  world_open();
  test_threads(H);
  world_close();
}
TEST_CASE(fail_closed) {
  world_open();
  test_fail_closed(H);
  world_close();
}

/* The set-up of the root-only cases: writer W of segment NAME, serving,
 * readers of gid 65534 allowed. 0 (and a line saying so) if not root: the
 * case is then skipped. */
static int root_writer(const char *case_name) {
  if (geteuid() != 0) {
    printf("%s: not root, skipped\n", case_name);
    return 0;
  }
  snprintf(NAME, sizeof NAME, "test-lib-%d", (int)getpid());
  hzshm__shm_config_t cfg = {.memory_bytes = 8u << 20, .max_sessions = 256, .reader_slots = 64,
                             .stale_after_ns = 300u * 1000000u, .gid_set = 1, .gid = 65534};
  CHECK_RC(hzshm__shm_w_open(NAME, &cfg, 1, &W, NULL), 0);
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  return 1;
}

/* ---- the agent socket's peer (conn.c, the trust anchor) ----
 * A process of uid `peer_uid` binds the segment's socket path first (anyone
 * may, in /tmp) and answers at once with a well-formed error frame; a reader
 * of uid 65534 (HZSHM_AGENT_UID = agent_uid unless NULL) misses and asks the
 * agent. Returns the get's code; *got: bytes the peer received before the
 * reader closed (it sends nothing to an untrusted peer). */
static int get_via_peer(uid_t peer_uid, const char *agent_uid, long *got) {
  char sock[108];
  snprintf(sock, sizeof sock, "/tmp/hzshm-test-lib-%d.sock", (int)getpid());
  unlink(sock);
  CHECK_RC(hzshm__shm_w_set_socket(W, sock), 0);
  int rp[2], rd[2];
  CHECK(pipe(rp) == 0 && pipe(rd) == 0);
  pid_t peer = fork();
  CHECK(peer >= 0);
  if (peer == 0) {
    if (hostile_become(peer_uid, 65534) != 0) _exit(2);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(sock, 0666) != 0 || listen(l, 4) != 0)
      _exit(3);
    if (write(rp[1], "r", 1) != 1) _exit(4);
    struct pollfd p = {.fd = l, .events = POLLIN};
    if (poll(&p, 1, 20000) != 1) _exit(5);
    int c = accept(l, NULL, NULL);
    long n = 0;
    if (c < 0) _exit(6);
    (void)send(c, "\0\0\0\0", 4, MSG_NOSIGNAL); /* bytes a reader must never take for an answer */
    for (;;) {
      char b[512];
      struct pollfd q = {.fd = c, .events = POLLIN};
      if (poll(&q, 1, 20000) != 1) break;
      ssize_t r = recv(c, b, sizeof b, 0);
      if (r <= 0) break;
      n += r;
      if (n >= 8) break; /* a request came: enough to know */
    }
    if (write(rd[1], &n, sizeof n) != (ssize_t)sizeof n) _exit(7);
    _exit(0);
  }
  char ch;
  CHECK(read(rp[0], &ch, 1) == 1);
  pid_t rdr = fork();
  CHECK(rdr >= 0);
  if (rdr == 0) {
    if (hostile_become(65534, 65534) != 0) _exit(100);
    if (agent_uid) setenv("HZSHM_AGENT_UID", agent_uid, 1);
    else unsetenv("HZSHM_AGENT_UID");
    hzshm_t *h;
    hzshm_session_t *s;
    hzshm_opts_t o = {.timeout_ms = 2000};
    if (hzshm_open(NAME, &o, &h) != 0 || hzshm_session_open(h, "sess", 4, &s) != 0) _exit(101);
    char buf[16];
    size_t n;
    int rc = hzshm_get(s, "not-cached", 10, buf, sizeof buf, &n);
    hzshm_session_close(s);
    hzshm_close(h);
    _exit(rc == HZSHM_EUNTRUSTED ? 0 : rc == HZSHM_EPROTO ? 1 : rc == HZSHM_ETIMEDOUT ? 2 : rc == HZSHM_EAGENT ? 3 : 4);
  }
  int st;
  CHECK(waitpid(rdr, &st, 0) == rdr && WIFEXITED(st) && WEXITSTATUS(st) < 100);
  static const int codes[] = {HZSHM_EUNTRUSTED, HZSHM_EPROTO, HZSHM_ETIMEDOUT, HZSHM_EAGENT, HZSHM_EREMOTE};
  int rc = codes[WEXITSTATUS(st)];
  CHECK(read(rd[0], got, sizeof *got) == (ssize_t)sizeof *got);
  int pst;
  CHECK(waitpid(peer, &pst, 0) == peer && WIFEXITED(pst) && WEXITSTATUS(pst) == 0);
  close(rp[0]);
  close(rp[1]);
  close(rd[0]);
  close(rd[1]);
  unlink(sock);
  return rc;
}

TEST_CASE(planted_socket) {
  if (!root_writer("planted_socket")) return;
  long got = -1;
  int rc = get_via_peer(65533, NULL, &got);
  fprintf(stderr, "socket bound by uid 65533, reader uid 65534: %s, the peer received %ld bytes\n",
          hzshm_err_name(rc), got);
  CHECK_RC(rc, HZSHM_EUNTRUSTED);
  CHECK_EQ(got, 0);
  /* the same peer as the configured agent uid is talked to (and then answers garbage) */
  rc = get_via_peer(65533, "65533", &got);
  fprintf(stderr, "with HZSHM_AGENT_UID=65533: %s, the peer received %ld bytes\n", hzshm_err_name(rc), got);
  CHECK(rc != HZSHM_EUNTRUSTED && got > 0);
  /* the reader's own uid is trusted */
  rc = get_via_peer(65534, NULL, &got);
  CHECK(rc != HZSHM_EUNTRUSTED && got > 0);
  hzshm__shm_close(W);
  hzshm__shm_unlink(NAME);
}

/* hzshm_get of "k" until it hits or 10 s pass, while W heartbeats (the
 * writer's tick): a handle following a replaced segment. */
static int get_following(hzshm_session_t *s, char *buf, size_t cap, size_t *vlen) {
  uint64_t t0 = now_ms();
  int rc;
  while ((rc = hzshm_get(s, "k", 1, buf, cap, vlen)) != 0 && now_ms() - t0 < 10000) {
    hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL); /* the writer's tick; the loop ends on a hit or the deadline */
  }
  return rc;
}

/* An agent killed while it said DISCONNECTED (the cluster away, or inside
 * w_open after its "not serving" store), then a new one that had to
 * recreate the segment (another layout): open handles used to report
 * HZSHM_EDISCONNECTED for ever (that state never went stale) and so never
 * looked for the new segment; they must fail closed as stale and follow it. */
TEST_CASE(follow_after_dead_disconnected) {
  snprintf(NAME, sizeof NAME, "test-lib-%d", (int)getpid());
  hzshm__shm_config_t cfg = {.memory_bytes = 8u << 20, .max_sessions = 256, .reader_slots = 64,
                             .stale_after_ns = 300u * 1000000u};
  int ready[2];
  CHECK(pipe(ready) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (hzshm__shm_w_open(NAME, &cfg, 1, &W, NULL) != 0 || hzshm__shm_w_set_socket(W, "/nonexistent/hzshm.sock") != 0)
      _exit(2);
    put("sess-d", "k", "old");
    hzshm__shm_w_heartbeat(W, HZSHM_SHM_DISCONNECTED);
    if (write(ready[1], "r", 1) != 1) _exit(3);
    for (;;) pause();
  }
  char ch;
  CHECK(read(ready[0], &ch, 1) == 1);
  CHECK_RC(hzshm_open(NAME, NULL, &H), 0);
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(H, "sess-d", 6, &s), 0);
  char buf[8];
  size_t vlen = 0;
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), HZSHM_EDISCONNECTED);
  kill(pid, SIGKILL);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  hzshm__shm_config_t cfg2 = cfg;
  cfg2.memory_bytes = 16u << 20; /* another layout: the segment is recreated */
  int reused = -1;
  CHECK_RC(hzshm__shm_w_open(NAME, &cfg2, 1, &W, &reused), 0);
  CHECK_EQ(reused, 0);
  CHECK_RC(hzshm__shm_w_set_socket(W, "/nonexistent/hzshm.sock"), 0);
  put("sess-d", "k", "new");
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  uint64_t t0 = now_ms();
  int rc = get_following(s, buf, sizeof buf, &vlen);
  fprintf(stderr, "handle on a segment whose writer died DISCONNECTED, after the new writer's segment: %s after %llu ms\n",
          hzshm_err_name(rc), (unsigned long long)(now_ms() - t0));
  CHECK_RC(rc, 0);
  CHECK(vlen == 3 && memcmp(buf, "new", 3) == 0);
  hzshm_session_close(s);
  hzshm_close(H);
  hzshm__shm_close(W);
  hzshm__shm_unlink(NAME);
}

/* A process of any uid binds the socket path while the agent does not (it
 * may in /tmp), listens with a backlog of 0 and fills it itself, never
 * accepting: a connect to it waits for room. A request used to hang there
 * for ever, whatever timeout_ms; it must fail within its timeout
 * (HZSHM_EAGENT: nothing was sent). */
TEST_CASE(socket_backlog_full) {
  if (!root_writer("socket_backlog_full")) return;
  char sock[108];
  snprintf(sock, sizeof sock, "/tmp/hzshm-test-lib-%d.sock", (int)getpid());
  unlink(sock);
  CHECK_RC(hzshm__shm_w_set_socket(W, sock), 0);
  int rp[2], done[2];
  CHECK(pipe(rp) == 0 && pipe(done) == 0);
  pid_t peer = fork();
  CHECK(peer >= 0);
  if (peer == 0) {
    if (hostile_become(65533, 65534) != 0) _exit(2);
    int l = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(sock, 0666) != 0 ||
        listen(l, 0) != 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
      _exit(3);
    if (write(rp[1], "r", 1) != 1) _exit(4);
    close(done[1]);
    char b;
    _exit(read(done[0], &b, 1) >= 0 ? 0 : 5); /* until the test is done (a byte, or EOF if it died) */
  }
  close(done[0]);
  char ch;
  CHECK(read(rp[0], &ch, 1) == 1);
  int res[2];
  CHECK(pipe(res) == 0);
  pid_t rdr = fork();
  CHECK(rdr >= 0);
  if (rdr == 0) {
    if (hostile_become(65534, 65534) != 0) _exit(100);
    alarm(20); /* a bound for the old code's hang: SIGALRM ends the child */
    hzshm_t *h;
    hzshm_session_t *s;
    hzshm_opts_t o = {.timeout_ms = 1000};
    if (hzshm_open(NAME, &o, &h) != 0 || hzshm_session_open(h, "sess", 4, &s) != 0) _exit(101);
    char buf[16];
    size_t n;
    int rc = hzshm_get(s, "not-cached", 10, buf, sizeof buf, &n);
    _exit(write(res[1], &rc, sizeof rc) == (ssize_t)sizeof rc ? 0 : 102);
  }
  close(res[1]);
  uint64_t t0 = now_ms();
  int st, rc = 1;
  CHECK(waitpid(rdr, &st, 0) == rdr);
  uint64_t took = now_ms() - t0;
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) CHECK(read(res[0], &rc, sizeof rc) == (ssize_t)sizeof rc);
  fprintf(stderr, "socket bound by uid 65533 with a full backlog, reader timeout 1000 ms: %s after %llu ms\n",
          WIFSIGNALED(st) ? "hung (killed by SIGALRM after 20 s)" : hzshm_err_name(rc), (unsigned long long)took);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK_RC(rc, HZSHM_EAGENT);
  CHECK(write(done[1], "d", 1) == 1); /* the reader child inherited done[1] too: no EOF to wait for */
  close(done[1]);
  CHECK(waitpid(peer, &st, 0) == peer && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  close(rp[0]);
  close(rp[1]);
  close(res[0]);
  unlink(sock);
  hzshm__shm_close(W);
  hzshm__shm_unlink(NAME);
}

/* HZSHM_AGENT_UID is resolved once, at hzshm_open, and kept in the handle:
 * a bad value fails hzshm_open (HZSHM_EINVAL, no handle); a value changed
 * after the open changes nothing for the handle -- it follows a replaced
 * segment with the uid it resolved. Old code re-read (and re-looked up) the
 * variable at every attach and connect: the handle could not re-attach
 * (HZSHM_EINVAL inside the follow) and stayed on the stopped segment. */
TEST_CASE(agent_uid_once) {
  snprintf(NAME, sizeof NAME, "test-lib-uid-%d", (int)getpid());
  hzshm__shm_config_t cfg = {.memory_bytes = 8u << 20, .max_sessions = 64, .reader_slots = 16};
  CHECK_RC(hzshm__shm_w_open(NAME, &cfg, 1, &W, NULL), 0);
  CHECK_RC(hzshm__shm_w_set_socket(W, "/nonexistent/hzshm.sock"), 0);
  put("sess-u", "k", "old");
  hzshm__shm_w_heartbeat(W, HZSHM_SHM_SERVING);
  setenv("HZSHM_AGENT_UID", "1no-such-user-hz", 1);
  H = (hzshm_t *)&cfg; /* must stay untouched */
  CHECK_RC(hzshm_open(NAME, NULL, &H), HZSHM_EINVAL);
  CHECK(H == (hzshm_t *)&cfg);
  setenv("HZSHM_AGENT_UID", "65534", 1);
  CHECK_RC(hzshm_open(NAME, NULL, &H), 0);
  setenv("HZSHM_AGENT_UID", "1no-such-user-hz", 1); /* from now on a bad value */
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(H, "sess-u", 6, &s), 0);
  char buf[8];
  size_t vlen = 0;
  CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &vlen), 0);
  CHECK(vlen == 3 && memcmp(buf, "old", 3) == 0);
  /* the agent removes its segment and a new one serves a new file */
  hzshm__shm_close_unlink(W);
  CHECK_RC(hzshm__shm_w_open(NAME, &cfg, 1, &W, NULL), 0);
  CHECK_RC(hzshm__shm_w_set_socket(W, "/nonexistent/hzshm.sock"), 0);
  put("sess-u", "k", "new");
  uint64_t t0 = now_ms();
  int rc = get_following(s, buf, sizeof buf, &vlen);
  fprintf(stderr, "HZSHM_AGENT_UID made bad after hzshm_open, segment replaced: %s after %llu ms\n",
          hzshm_err_name(rc), (unsigned long long)(now_ms() - t0));
  CHECK_RC(rc, 0);
  CHECK(vlen == 3 && memcmp(buf, "new", 3) == 0);
  unsetenv("HZSHM_AGENT_UID");
  hzshm_session_close(s);
  hzshm_close(H);
  hzshm__shm_close_unlink(W);
}
