/* e2e.c - see e2e.h. */
#define _GNU_SOURCE
#include "e2e.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

uint64_t e2e_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t e2e_wait(int (*fn)(void *ud), void *ud, uint32_t timeout_ms) {
  uint64_t t0 = e2e_now_us();
  for (;;) {
    if (fn(ud)) return (int64_t)(e2e_now_us() - t0);
    if (e2e_now_us() - t0 > (uint64_t)timeout_ms * 1000u) return -1;
    struct timespec d = {0, 1000000}; /* poll interval, not synchronization */
    nanosleep(&d, NULL);
  }
}

typedef struct {
  e2e_agent_t *ag;
} ready_t;

static int agent_ready(void *ud) {
  e2e_agent_t *ag = ud;
  int st;
  if (waitpid(ag->pid, &st, WNOHANG) == ag->pid) {
    fprintf(stderr, "e2e: agent %s exited during start-up\n", ag->name);
    exit(1);
  }
  hzshm_t *h;
  if (hzshm_open(ag->name, NULL, &h) != 0) return 0;
  hzshm_stats_t s = e2e_stats(h);
  hzshm_close(h);
  if (s.agent_pid != ag->pid || s.cluster_state != HZSHM_CLUSTER_CONNECTED || s.agent_state != HZSHM_AGENT_SERVING) return 0;
  int fd = e2e_raw_connect(ag->sock);
  if (fd < 0) return 0;
  uint8_t buf[64];
  hzshm__ipc_req_t r = {0};
  long n = hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_HELLO, 1, &r);
  int ok = write(fd, buf, (size_t)n) == n;
  uint32_t id;
  uint8_t op;
  ok = ok && e2e_raw_read(fd, &id, &op, 2000) == 0 && id == 1;
  close(fd);
  return ok;
}

/* Agents started by this test process: killed if the test exits early (a
 * failed CHECK), so that no agent outlives its test and holds ctest's pipes. */
static pid_t started[16];
static pid_t owner;

static void kill_started(void) {
  if (getpid() != owner) return;
  for (int i = 0; i < 16; i++)
    if (started[i] > 0 && kill(started[i], SIGKILL) == 0) waitpid(started[i], NULL, 0);
}

static void track(pid_t old, pid_t pid) {
  if (owner == 0) {
    owner = getpid();
    atexit(kill_started);
  }
  for (int i = 0; i < 16; i++) {
    if (started[i] == old) {
      started[i] = pid;
      return;
    }
  }
}

static void child_setup(pid_t parent, const char *log_path) {
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
  if (getppid() != parent) _exit(126);
  if (log_path && log_path[0]) {
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, 2) < 0) _exit(125);
  }
}

pid_t e2e_agent_spawn_argv(const char *const *argv, const char *log_path) {
  pid_t parent = getpid();
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    child_setup(parent, log_path);
    execv(HZSHM_AGENT_BIN, (char *const *)argv);
    _exit(127);
  }
  track(0, pid);
  return pid;
}

int e2e_agent_wait_exit(pid_t pid, uint32_t timeout_ms) {
  uint64_t deadline = e2e_now_us() + (uint64_t)timeout_ms * 1000u;
  for (;;) {
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      track(pid, 0);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (e2e_now_us() > deadline) return -1;
    struct timespec d = {0, 1000000}; /* poll interval, not synchronization */
    nanosleep(&d, NULL);
  }
}

int e2e_agent_run(const char *const *argv, const char *log_path, uint32_t timeout_ms) {
  if (log_path) unlink(log_path);
  pid_t pid = e2e_agent_spawn_argv(argv, log_path);
  int rc = e2e_agent_wait_exit(pid, timeout_ms);
  if (rc < 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    track(pid, 0);
  }
  return rc;
}

int e2e_file_count(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[2048];
  int n = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, needle)) n++;
  fclose(f);
  return n;
}

int e2e_logged(void *ud) {
  const e2e_logged_t *l = ud;
  return e2e_file_count(l->path, l->needle) > 0;
}

static void spawn(e2e_agent_t *ag) {
  pid_t parent = getpid();
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    child_setup(parent, ag->log_path);
    for (int i = 0; i < 4; i++)
      if (ag->extra_env[i][0]) putenv(ag->extra_env[i]);
    /* a credential change resets the parent-death signal: set it again */
    if (ag->run_uid && (setgroups(0, NULL) != 0 || setgid(ag->run_gid) != 0 || setuid(ag->run_uid) != 0 ||
                        prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
      _exit(124);
    const char *av[32] = {"hzshm-agent", "-n", ag->name, "-m", ag->members, "-c", "dev", "--socket", ag->sock,
                          "--memory", "32m", "--reconcile-ms", "1000", "--unlink-on-exit"};
    int n = 14;
    for (int i = 0; i < 4 && ag->extra_args[i]; i++) av[n++] = ag->extra_args[i];
    execv(ag->bin ? ag->bin : HZSHM_AGENT_BIN, (char *const *)av);
    _exit(127);
  }
  ag->pid = pid;
  track(0, pid);
  if (e2e_wait(agent_ready, ag, 60000) < 0) {
    fprintf(stderr, "e2e: agent %s not serving within 60 s\n", ag->name);
    kill(pid, SIGKILL);
    exit(1);
  }
}

void e2e_agent_start(e2e_agent_t *ag, const char *name, const char *members) {
  snprintf(ag->name, sizeof ag->name, "%s", name);
  snprintf(ag->members, sizeof ag->members, "%s", members);
  snprintf(ag->sock, sizeof ag->sock, "/tmp/hzshm-e2e-%s.sock", name);
  spawn(ag);
}

void e2e_agent_restart(e2e_agent_t *ag) { spawn(ag); }

typedef struct {
  pid_t pid;
  int status;
} reap_t;

static int reaped(void *ud) {
  reap_t *r = ud;
  return waitpid(r->pid, &r->status, WNOHANG) == r->pid;
}

int e2e_agent_stop(e2e_agent_t *ag) {
  kill(ag->pid, SIGTERM);
  reap_t r = {ag->pid, 0};
  if (e2e_wait(reaped, &r, 30000) < 0) {
    kill(ag->pid, SIGKILL);
    waitpid(ag->pid, NULL, 0);
    return -1;
  }
  track(ag->pid, 0);
  ag->pid = 0;
  return WIFEXITED(r.status) ? WEXITSTATUS(r.status) : 128 + WTERMSIG(r.status);
}

void e2e_agent_kill9(e2e_agent_t *ag) {
  kill(ag->pid, SIGKILL);
  waitpid(ag->pid, NULL, 0);
  track(ag->pid, 0);
  ag->pid = 0;
}

int e2e_cli(char *out, size_t cap, const char *stdin_data, const char *const *argv) {
  int in[2], o[2];
  CHECK(pipe(in) == 0 && pipe(o) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(o[1], 1);
    close(in[1]);
    close(o[0]);
    size_t n = 0;
    while (argv[n]) n++;
    const char **av = calloc(n + 1, sizeof *av);
    av[0] = "hzshm";
    for (size_t i = 1; i < n; i++) av[i] = argv[i];
    execv(HZSHM_CLI_BIN, (char *const *)av);
    _exit(127);
  }
  close(in[0]);
  close(o[1]);
  if (stdin_data) CHECK(write(in[1], stdin_data, strlen(stdin_data)) == (ssize_t)strlen(stdin_data));
  close(in[1]);
  size_t len = 0;
  for (;;) {
    ssize_t r = read(o[0], out + len, cap - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
    if (len == cap - 1) break;
  }
  out[len] = 0;
  close(o[0]);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int e2e_java_value(const char *src, const char *members, const char *map, const char *key, const char *mode,
                   const char *utf8) {
  static char jar[1024];
  char hex[512] = "", cmd[2560];
  if (!jar[0]) { /* the member's jar holds the Java client */
    const char *hzm = getenv("HZ_MEMBER");
    CHECK(hzm);
    snprintf(cmd, sizeof cmd, "%s fetch", hzm);
    FILE *f = popen(cmd, "r");
    CHECK(f && fgets(jar, sizeof jar, f));
    pclose(f);
    jar[strcspn(jar, "\n")] = 0;
  }
  CHECK(strlen(utf8) < sizeof hex / 2);
  for (size_t i = 0; utf8[i]; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned char)utf8[i]);
  snprintf(cmd, sizeof cmd, "java -Xmx128m -cp '%s' %s/JavaValue.java %s %s %s %s %s", jar, src, members, map, key,
           mode, hex);
  return system(cmd);
}

int e2e_raw_connect(const char *sockpath) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sockpath);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int read_full(int fd, uint8_t *p, size_t n, uint64_t deadline_us) {
  while (n) {
    uint64_t now = e2e_now_us();
    if (now >= deadline_us) return HZSHM_ETIMEDOUT;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, (int)((deadline_us - now) / 1000 + 1)) <= 0) continue;
    ssize_t r = read(fd, p, n);
    if (r == 0) return HZSHM_ECLOSED;
    if (r < 0) {
      if (errno == EINTR) continue;
      return HZSHM_ECLOSED;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

int e2e_raw_read(int fd, uint32_t *reqid, uint8_t *op, uint32_t timeout_ms) {
  uint64_t dl = e2e_now_us() + (uint64_t)timeout_ms * 1000u;
  uint8_t hb[HZSHM__IPC_HDR];
  int rc = read_full(fd, hb, sizeof hb, dl);
  if (rc) return rc;
  hzshm__ipc_hdr_t h;
  CHECK(hzshm__ipc_hdr_decode(hb, &h) == 0); /* the agent always answers well-formed frames */
  uint8_t *body = malloc(h.bodylen ? h.bodylen : 1);
  rc = read_full(fd, body, h.bodylen, dl);
  free(body);
  if (rc) return rc;
  *reqid = h.reqid;
  *op = h.op;
  return h.status;
}

int e2e_raw_closed(int fd, uint32_t timeout_ms) {
  uint64_t dl = e2e_now_us() + (uint64_t)timeout_ms * 1000u;
  uint8_t b[256];
  for (;;) {
    int rc = read_full(fd, b, 1, dl);
    if (rc == HZSHM_ECLOSED) return 1;
    if (rc == HZSHM_ETIMEDOUT) return 0;
  }
}

int e2e_member_port(void) {
  const char *colon = strrchr(e2e_members(), ':');
  CHECK_NE(colon, NULL);
  return atoi(colon + 1);
}

void e2e_host_start(e2e_host_t *o, const char *tag, const char *sid_tag) {
  e2e_host_start_on(o, tag, sid_tag, e2e_members());
}

void e2e_host_start_on(e2e_host_t *o, const char *tag, const char *sid_tag, const char *members) {
  snprintf(o->name, sizeof o->name, "e2e-%s-%d", tag, (int)getpid());
  snprintf(o->sid, sizeof o->sid, "%s-%d", sid_tag, (int)getpid());
  e2e_agent_start(&o->ag, o->name, members);
  CHECK_RC(hzshm_open(o->name, NULL, &o->h), 0);
  CHECK_RC(hzshm_session_open(o->h, o->sid, strlen(o->sid), &o->s), 0);
}

void e2e_host_stop(e2e_host_t *o) {
  hzshm_session_close(o->s);
  hzshm_close(o->h);
  CHECK_EQ(e2e_agent_stop(&o->ag), 0);
}

hzshm_stats_t e2e_stats(hzshm_t *h) {
  hzshm_stats_t s;
  memset(&s, 0, sizeof s);
  CHECK_RC(hzshm_stats(h, &s), 0);
  return s;
}

int e2e_all_watched(void *h) {
  hzshm_stats_t st = e2e_stats(h);
  return st.cluster_state == HZSHM_CLUSTER_CONNECTED && st.unwatched_partitions == 0;
}

void e2e_open_watched(const char *name, const char *sid, hzshm_t **h, hzshm_session_t **s) {
  CHECK_RC(hzshm_open(name, NULL, h), 0);
  CHECK(e2e_wait(e2e_all_watched, *h, 30000) >= 0);
  CHECK_RC(hzshm_session_open(*h, sid, strlen(sid), s), 0);
}

int e2e_is_hit(void *hit) {
  e2e_hit_t *x = hit;
  uint64_t h0 = e2e_stats(x->h).hits;
  return e2e_serves(x->s, x->key, x->want) && e2e_stats(x->h).hits > h0;
}

int e2e_invalidations_reached(void *inv) {
  e2e_inv_t *x = inv;
  return e2e_stats(x->h).invalidations >= x->at_least;
}

int e2e_member(const char *verb, int index) {
  const char *hzm = getenv("HZ_MEMBER"), *dir = getenv("HZSHM_TEST_MEMBER_DIR");
  CHECK(hzm && dir);
  char cmd[1024];
  CHECK(snprintf(cmd, sizeof cmd, "%s %s --dir %s --index %d", hzm, verb, dir, index) < (int)sizeof cmd);
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void e2e_block_port(const char *path, int port) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  fprintf(f, "%d\n", port);
  CHECK(fclose(f) == 0);
}

int e2e_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

void e2e_print_dist(const char *label, uint64_t *v, size_t n, const char *unit) {
  if (n == 0) {
    printf("%s: n=0\n", label);
    return;
  }
  qsort(v, n, sizeof *v, e2e_cmp_u64);
  printf("%s: n=%zu p50=%llu p99=%llu max=%llu (%s)\n", label, n, (unsigned long long)v[n / 2],
         (unsigned long long)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], (unsigned long long)v[n - 1], unit);
}

int e2e_serves(hzshm_session_t *s, const char *key, const char *want) {
  char buf[256];
  size_t vlen = 0, wl = strlen(want);
  return hzshm_get(s, key, strlen(key), buf, sizeof buf, &vlen) == 0 && vlen == wl && memcmp(buf, want, wl) == 0;
}

typedef struct {
  hzshm_session_t *s;
  const char *key, *want;
} e2e_serves_t;

static int serves_cb(void *ud) {
  e2e_serves_t *x = ud;
  return e2e_serves(x->s, x->key, x->want);
}

int64_t e2e_wait_serves(hzshm_session_t *s, const char *key, const char *want, uint32_t timeout_ms) {
  e2e_serves_t x = {s, key, want};
  return e2e_wait(serves_cb, &x, timeout_ms);
}

size_t e2e_http(int port, const char *req, size_t len, char *out, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_GE(fd, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  size_t off = 0;
  while (off < len) {
    ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
    if (w <= 0) break; /* the agent may answer and close before reading it all (431) */
    off += (size_t)w;
  }
  size_t n = 0;
  uint64_t deadline = e2e_now_us() + 20000000u;
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_LT(e2e_now_us(), deadline);
    if (poll(&p, 1, 1000) != 1) continue;
    ssize_t r = recv(fd, out + n, cap - 1 - n, 0);
    if (r <= 0) break;
    n += (size_t)r;
  }
  out[n] = 0;
  close(fd);
  return n;
}

double e2e_prom_sample(const char *text, const char *series) {
  size_t sl = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (!strncmp(p, series, sl) && p[sl] == ' ') return strtod(p + sl + 1, NULL);
  }
  return -1;
}
