/* fuzz_resp.c - libFuzzer target over the library's side of the local
 * protocol: whatever a process bound to the agent's socket path answers.
 * The real library (hzshm_open on a real segment made with the writer API,
 * whose header names our socket) makes a real call (get/get_view/has/set/
 * del/destroy, chosen by the input); a "hostile agent" thread accepts the
 * connection, reads the request and answers with the input's bytes (with the
 * request's reqid patched in if the input asks, so that answers get past the
 * reqid check), then shuts the connection. Oracles besides ASan/UBSan: every
 * call returns 0 or a negative code (never a positive status taken from the
 * wire), and a get that returns 0 reports a length within the buffer.
 *
 * Input: byte 0 = call (low 3 bits) | 0x80 patch reqid; byte 1 = buffer
 * capacity / 16 (0 = no buffer); the rest is the answer. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_tmp.h"
#include "hzshm.h"
#include "ipc.h"
#include "shm.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s\n", #c); abort(); } } while (0)

static int lfd = -1;           /* the hostile agent's listening socket */
static int ctl[2];             /* main -> server: "answer this" (1 byte) and "call returned" (1 byte) */
static int done[2];            /* server -> main: "finished with this call" */
static const uint8_t *answer_p;
static size_t answer_n;
static int patch_reqid;
static hzshm_t *h;
static hzshm_session_t *sess;
static char dir_shm[64], dir_sock[64], sock_path[128];

/* libFuzzer's timer (SIGALRM, for -timeout) interrupts blocking calls. */
static char xread1(int fd) {
  char b;
  ssize_t r;
  while ((r = read(fd, &b, 1)) < 0 && errno == EINTR) {
  }
  CHECK(r == 1);
  return b;
}
static void xwrite1(int fd, char b) {
  ssize_t r;
  while ((r = write(fd, &b, 1)) < 0 && errno == EINTR) {
  }
  CHECK(r == 1);
}
static ssize_t xrecv(int fd, void *p, size_t n) {
  ssize_t r;
  while ((r = recv(fd, p, n, 0)) < 0 && errno == EINTR) {
  }
  return r;
}

static int read_frame(int fd, uint8_t *hdr) {
  size_t got = 0;
  while (got < HZSHM__IPC_HDR) {
    ssize_t r = xrecv(fd, hdr + got, HZSHM__IPC_HDR - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  uint32_t body = hzshm__le32_get(hdr + 16);
  uint8_t skip[4096];
  while (body) {
    ssize_t r = xrecv(fd, skip, body < sizeof skip ? body : sizeof skip);
    if (r <= 0) return -1;
    body -= (uint32_t)r;
  }
  return 0;
}

/* One call: wait for a connection (or the call returning without one), read
 * one request, answer, shut the connection. */
static void serve_one(void) {
  int cfd = -1;
  for (;;) {
    struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = ctl[0], .events = POLLIN}};
    int n = poll(p, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    CHECK(n > 0);
    if (p[0].revents & POLLIN) {
      cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (cfd >= 0) break;
    }
    if (p[1].revents & POLLIN) { /* the call returned without asking the agent */
      xread1(ctl[0]);
      return;
    }
  }
  uint8_t hdr[HZSHM__IPC_HDR];
  if (read_frame(cfd, hdr) == 0) {
    uint8_t *a = malloc(answer_n ? answer_n : 1);
    CHECK(a != NULL);
    if (answer_n) memcpy(a, answer_p, answer_n);
    if (patch_reqid && answer_n >= 12) memcpy(a + 8, hdr + 8, 4);
    size_t off = 0;
    while (off < answer_n) {
      ssize_t w = send(cfd, a + off, answer_n - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break; /* the library gave up on the answer */
      off += (size_t)w;
    }
    free(a);
  }
  shutdown(cfd, SHUT_WR);
  /* Close only after the call returned: the library reads up to EOF first. */
  xread1(ctl[0]);
  close(cfd);
}

static void *server(void *arg) {
  (void)arg;
  for (;;) {
    xread1(ctl[0]);
    serve_one();
    xwrite1(done[1], 'd');
  }
}

static void cleanup(void) {
  hzshm_session_close(sess);
  hzshm_close(h);
  fuzz_tmp_remove(dir_sock);
  fuzz_tmp_remove(dir_shm);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  CHECK(fuzz_tmp_make("/dev/shm", "hzshm-fuzz-resp", dir_shm, sizeof dir_shm) == 0);
  CHECK(fuzz_tmp_make("/tmp", "hzshm-fuzz-resp", dir_sock, sizeof dir_sock) == 0);
  snprintf(sock_path, sizeof sock_path, "%s/agent.sock", dir_sock);
  setenv("HZSHM_SHM_DIR", dir_shm, 1);
  /* The real segment the library attaches to; the writer handle stays open
   * (the writer lock) but its heartbeat never goes stale. */
  hzshm__shm_config_t cfg = {.memory_bytes = 2u << 20, .max_sessions = 8, .reader_slots = 8,
                             .partition_count = 7, .stale_after_ns = UINT64_MAX / 4};
  hzshm__shm_t *w;
  CHECK(hzshm__shm_w_open("fz", &cfg, 1, &w, NULL) == 0);
  CHECK(hzshm__shm_w_set_socket(w, sock_path) == 0);
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock_path);
  CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 16) == 0);
  CHECK(pipe(ctl) == 0 && pipe(done) == 0);
  hzshm_opts_t o = {.timeout_ms = 2000, .connections = 1};
  CHECK(hzshm_open("fz", &o, &h) == 0);
  CHECK(hzshm_session_open(h, "s0", 2, &sess) == 0);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, server, NULL) == 0);
  atexit(cleanup);
  return 0;
}

static int known(int rc) { return rc <= 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int call = data[0] & 7;
  size_t cap = (size_t)data[1] * 16;
  patch_reqid = (data[0] & 0x80) != 0;
  answer_p = data + 2;
  answer_n = size - 2;
  xwrite1(ctl[1], 'a');
  static uint8_t buf[4096];
  size_t vlen = SIZE_MAX;
  const void *view = NULL;
  int rc;
  switch (call) {
    case 0:
    case 6:
      rc = hzshm_get(sess, "k1", 2, cap ? buf : NULL, cap, &vlen);
      CHECK(known(rc));
      if (rc == 0) CHECK(vlen <= cap);
      break;
    case 1:
      rc = hzshm_get_view(sess, "k1", 2, &view, &vlen);
      CHECK(known(rc));
      if (rc == 0) hzshm_view_release(sess);
      break;
    case 2:
      rc = hzshm_has(sess, "k1", 2);
      break;
    case 3:
    case 7:
      rc = hzshm_set_ttl(sess, "k1", 2, "value", 5, (int64_t)cap - 1);
      break;
    case 4:
      rc = hzshm_del(sess, "k1", 2);
      break;
    default:
      rc = hzshm_destroy(sess);
      break;
  }
  CHECK(known(rc));
  xwrite1(ctl[1], 'r');
  xread1(done[0]);
  return 0;
}
