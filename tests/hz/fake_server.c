/* fake_server.c - command line and connection loop of the fake member.
 *
 *   fake_server --port P --scenario NAME [--trigger first|auth|0xTYPE]
 *               [--repeat | --times N] [--skip N] [--partitions N] [--error-code N]
 *               [--new-cluster-id | --cluster-id N]
 *   fake_server --list
 *
 * Listens on 127.0.0.1:P (P = 0: any free port) and prints one line
 * "listening 127.0.0.1:PORT" on stdout once it accepts connections; then one
 * log line per event ("conn 1 accepted", "conn 1 request 0x010200 corr 7
 * partition 21", "conn 1 fault truncated", "conn 1 closed by peer", ...), so a
 * test can wait for what it needs. The fault fires once, on the first trigger
 * request (the first request other than Authentication, AddClusterViewListener
 * and Ping; or the Authentication itself for auth-* scenarios; or the first
 * request of --trigger TYPE); later requests and connections get plausible
 * answers unless --repeat is given (every trigger request faults) or
 * --times N (the first N trigger requests fault, counted over all
 * connections); --skip N answers the first N trigger requests normally
 * first. --cluster-id N (0..255) puts N in byte 14 of the cluster id (2 by
 * default): two fakes of different ids are two clusters. Runs until killed (SIGTERM); exit status 2 on bad arguments, 1 when
 * it cannot listen.
 *
 * Single-threaded poll loop; blocking writes (answers are small, except the
 * deliberate 100000-frame nesting, which the client must drain or close on).
 */
#define _GNU_SOURCE
#include "fake_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_MESSAGE (16u << 20) /* requests over 16 MiB are refused: the fake is not a store */

struct fs_conn {
  int fd;
  int id;
  int preamble; /* bytes of "CP2" seen */
  int authed;
  int held;     /* FS_HOLD: read and discard, never answer */
  uint8_t *in;  /* unparsed input */
  size_t in_len, in_cap;
  fs_request_t cur; /* first frame of the message being assembled */
  int have_cur;
};

static const fs_scenario_t *scenario;
static int repeat;
static long fired, times = 1; /* the fault fires on the first `times` trigger requests ... */
static long skip;              /* ... after `skip` of them were answered normally */
static long trigger_type = -1; /* -1: first non-handshake request; -2: auth */
static fs_conn_t conns[MAX_CONNS];

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static void conn_close(fs_conn_t *c, const char *why) {
  logf_("conn %d closed %s", c->id, why);
  close(c->fd);
  free(c->in);
  memset(c, 0, sizeof(*c));
  c->fd = -1;
}

static int write_all(int fd, const uint8_t *p, size_t n, int one_byte_each) {
  while (n > 0) {
    ssize_t w = write(fd, p, one_byte_each ? 1 : n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int is_trigger(const fs_request_t *req) {
  if (fired >= times && !repeat) return 0;
  if (scenario->fault == NULL) return 0;
  int match;
  if (scenario->at_auth || trigger_type == -2) match = req->type == 0x000100;
  else if (trigger_type >= 0) match = req->type == (uint32_t)trigger_type;
  else match = req->type != 0x000100 && req->type != 0x000300 && req->type != 0x000B00;
  if (match && skip > 0) {
    skip--;
    return 0;
  }
  return match;
}

/* Answers one complete request; returns -1 when the connection was closed. */
static int handle(fs_conn_t *c, const fs_request_t *req) {
  logf_("conn %d request 0x%06x corr %lld partition %d", c->id, req->type, (long long)req->corr, req->partition);
  if (c->held) {
    logf_("conn %d ignored (holding)", c->id);
    return 0;
  }
  fs_buf_t out = {0};
  enum fs_after after = FS_CONTINUE;
  int one_byte = 0;
  if (is_trigger(req)) {
    fired++;
    logf_("conn %d fault %s", c->id, scenario->name);
    after = scenario->fault(&out, req);
    one_byte = strcmp(scenario->name, "trickle") == 0;
  } else if (req->type == 0x000100) {
    hzshm__fs_auth_response(&out, req->corr, 0);
  } else if (!c->authed) {
    conn_close(c, "(request before authentication)");
    return -1;
  } else {
    hzshm__fs_answer(&out, req);
  }
  if (req->type == 0x000100) c->authed = 1;
  int rc = out.oom ? -ENOMEM : write_all(c->fd, out.p, out.len, one_byte);
  free(out.p);
  if (rc != 0) {
    conn_close(c, "(write failed)");
    return -1;
  }
  logf_("conn %d sent %zu bytes", c->id, out.len);
  if (after == FS_CLOSE) {
    conn_close(c, "by fault");
    return -1;
  }
  if (after == FS_HOLD) {
    c->held = 1;
    logf_("conn %d holding", c->id);
  }
  return 0;
}

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Parses complete frames out of c->in; returns -1 when the connection was closed. */
static int parse(fs_conn_t *c) {
  size_t off = 0;
  while (c->preamble < 3 && off < c->in_len) {
    if (c->in[off] != (uint8_t)"CP2"[c->preamble]) {
      conn_close(c, "(bad preamble)");
      return -1;
    }
    c->preamble++;
    off++;
  }
  while (c->in_len - off >= 6) {
    uint32_t len = rd32(c->in + off);
    uint16_t flags = (uint16_t)(c->in[off + 4] | c->in[off + 5] << 8);
    if (len < 6 || len > MAX_MESSAGE) {
      conn_close(c, "(bad frame length from client)");
      return -1;
    }
    if (c->in_len - off < len) break;
    if (!c->have_cur) {
      if (len < 6 + 16) {
        conn_close(c, "(request initial frame too short)");
        return -1;
      }
      const uint8_t *p = c->in + off + 6;
      c->cur.type = rd32(p);
      c->cur.corr = (int64_t)((uint64_t)rd32(p + 4) | (uint64_t)rd32(p + 8) << 32);
      c->cur.partition = (int32_t)rd32(p + 12);
      c->have_cur = 1;
    }
    off += len;
    if (flags & FS_FINAL) {
      c->have_cur = 0;
      if (handle(c, &c->cur) != 0) return -1;
    }
  }
  memmove(c->in, c->in + off, c->in_len - off);
  c->in_len -= off;
  return 0;
}

static int on_readable(fs_conn_t *c) {
  if (c->in_cap - c->in_len < 65536) {
    size_t cap = c->in_cap ? c->in_cap * 2 : 131072;
    if (cap > 2 * MAX_MESSAGE) {
      conn_close(c, "(input too large)");
      return -1;
    }
    uint8_t *p = realloc(c->in, cap);
    if (p == NULL) {
      conn_close(c, "(out of memory)");
      return -1;
    }
    c->in = p;
    c->in_cap = cap;
  }
  ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
  if (n < 0 && errno == EINTR) return 0;
  if (n <= 0) {
    conn_close(c, "by peer");
    return -1;
  }
  c->in_len += (size_t)n;
  return parse(c);
}

static void usage(FILE *f) {
  fprintf(f, "usage: fake_server --port P --scenario NAME [--trigger first|auth|0xTYPE] [--repeat | --times N]\n"
             "                   [--skip N] [--partitions N] [--error-code N] [--new-cluster-id | --cluster-id N]\n"
             "       fake_server --list\n");
}

/* A whole number in [lo, hi] in base `base` (0: 0x.. hex and 0.. octal
 * too), no sign or space before it, or -1. */
static int num_arg(const char *v, int base, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  if (!(v[0] >= '0' && v[0] <= '9') && !(v[0] == '-' && lo < 0)) return -1;
  long n = strtol(v, &end, base);
  if (errno || end == v || *end != '\0' || n < lo || n > hi) return -1;
  *out = n;
  return 0;
}

int main(int argc, char **argv) {
  long port = -1;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    long n = 0;
    int bad = 0;
    if (strcmp(a, "--list") == 0) {
      for (const fs_scenario_t *s = hzshm__fs_scenarios; s->name; s++) printf("%-26s %s\n", s->name, s->help);
      return 0;
    } else if (strcmp(a, "--repeat") == 0) {
      repeat = 1;
    } else if (strcmp(a, "--new-cluster-id") == 0) {
      hzshm__fs_new_cluster_id = 1;
    } else if (v != NULL && strcmp(a, "--scenario") == 0) {
      name = v, i++;
    } else if (v != NULL && strcmp(a, "--port") == 0) {
      bad = num_arg(v, 10, 0, 65535, &port), i++;
    } else if (v != NULL && strcmp(a, "--times") == 0) {
      bad = num_arg(v, 10, 1, INT32_MAX, &times), i++;
    } else if (v != NULL && strcmp(a, "--skip") == 0) {
      bad = num_arg(v, 10, 0, INT32_MAX, &skip), i++;
    } else if (v != NULL && strcmp(a, "--cluster-id") == 0) {
      bad = num_arg(v, 0, 0, 255, &n), i++;
      hzshm__fs_cluster_id = (int32_t)n;
    } else if (v != NULL && strcmp(a, "--partitions") == 0) {
      bad = num_arg(v, 0, INT32_MIN, INT32_MAX, &n), i++; /* 0 and less too: the client must refuse them */
      hzshm__fs_partition_count = (int32_t)n;
    } else if (v != NULL && strcmp(a, "--error-code") == 0) {
      bad = num_arg(v, 0, INT32_MIN, INT32_MAX, &n), i++;
      hzshm__fs_error_code = (int32_t)n;
    } else if (v != NULL && strcmp(a, "--trigger") == 0) {
      if (strcmp(v, "first") == 0) trigger_type = -1;
      else if (strcmp(v, "auth") == 0) trigger_type = -2;
      else bad = num_arg(v, 0, 0, UINT32_MAX, &trigger_type);
      i++;
    } else {
      bad = 1;
    }
    if (bad) {
      fprintf(stderr, "fake_server: bad argument %s%s%s\n", a, v ? " " : "", v ? v : "");
      usage(stderr);
      return 2;
    }
  }
  for (const fs_scenario_t *s = hzshm__fs_scenarios; name && s->name; s++)
    if (strcmp(s->name, name) == 0) scenario = s;
  if (scenario == NULL || port < 0 || port > 65535) {
    if (name != NULL && scenario == NULL) fprintf(stderr, "fake_server: unknown scenario %s (see --list)\n", name);
    usage(stderr);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof(sa);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
    fprintf(stderr, "fake_server: cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
    return 1;
  }
  hzshm__fs_port = ntohs(sa.sin_port);
  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  logf_("listening 127.0.0.1:%u", hzshm__fs_port);

  int next_id = 1;
  for (;;) {
    struct pollfd pfd[MAX_CONNS + 1];
    pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (int i = 0; i < MAX_CONNS; i++) pfd[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
    if (poll(pfd, MAX_CONNS + 1, -1) < 0) {
      if (errno == EINTR) continue;
      perror("fake_server: poll");
      return 1;
    }
    if (pfd[0].revents & POLLIN) {
      int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      int slot = -1;
      for (int i = 0; i < MAX_CONNS && fd >= 0 && slot < 0; i++)
        if (conns[i].fd < 0) slot = i;
      if (fd >= 0 && slot < 0) {
        close(fd); /* full: the client sees a reset */
      } else if (fd >= 0) {
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        conns[slot].fd = fd;
        conns[slot].id = next_id++;
        logf_("conn %d accepted", conns[slot].id);
      }
    }
    for (int i = 0; i < MAX_CONNS; i++)
      if (conns[i].fd >= 0 && pfd[i + 1].fd == conns[i].fd && (pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
        on_readable(&conns[i]);
  }
}
