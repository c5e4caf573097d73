/* main.c - hzshm-agent: options, start-up and clean shutdown.
 *
 *   hzshm-agent -n NAME -m HOST:PORT[,HOST:PORT...] [-c CLUSTER] [--memory SIZE]
 *               [--socket PATH] [--prefix P] [--stale-ms N] [--reconcile-ms N]
 *               [--idle-ms N] [--allow-gid GID] [--unlink-on-exit]
 *
 * One libuv loop on one thread. SIGTERM/SIGINT stop it cleanly: the segment
 * is marked STOPPED (readers fail closed at once), the socket and every
 * connection are closed, the Hazelcast client is closed (pending operations
 * fail), and every uv handle is closed before exit.
 * After a kill -9 the next agent reuses the segment (hzshm__shm_w_open says
 * so) and marks every partition stale before serving: nothing filled by the
 * previous agent is served again until refilled.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

uint64_t hzshm__agent_now_ms(void) { return uv_hrtime() / 1000000u; }

void hzshm__agent_log(const char *fmt, ...) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  fprintf(stderr, "%02d:%02d:%02d.%03ld hzshm-agent[%d]: ", tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
          (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: hzshm-agent -n NAME -m HOST:PORT[,HOST:PORT...] [-c CLUSTER_NAME]\n"
          "       [--memory SIZE[k|m|g]] [--socket PATH] [--prefix P] [--stale-ms N]\n"
          "       [--reconcile-ms N] [--idle-ms N] [--max-ttl-ms N] [--allow-gid GID] [--unlink-on-exit]\n");
}

static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
  }
  if (*end) return -1;
  *out = v;
  return 0;
}

static int parse_u32(const char *s, uint32_t *out) {
  uint64_t v;
  if (parse_size(s, &v) || v > UINT32_MAX) return -1;
  *out = (uint32_t)v;
  return 0;
}

static int parse_opts(int argc, char **argv, agent_opts_t *o) {
  static const struct option lo[] = {
      {"name", required_argument, 0, 'n'},     {"members", required_argument, 0, 'm'},
      {"cluster", required_argument, 0, 'c'},  {"memory", required_argument, 0, 'M'},
      {"socket", required_argument, 0, 's'},   {"prefix", required_argument, 0, 'p'},
      {"stale-ms", required_argument, 0, 'S'}, {"reconcile-ms", required_argument, 0, 'R'},
      {"idle-ms", required_argument, 0, 'I'},  {"allow-gid", required_argument, 0, 'g'},
      {"unlink-on-exit", no_argument, 0, 'u'}, {"help", no_argument, 0, 'h'},
      {"max-ttl-ms", required_argument, 0, 'T'}, {"version", no_argument, 0, 'V'},
      {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->memory = 64u << 20;
  o->stale_ms = 1000;
  o->reconcile_ms = 5000;
  o->idle_ms = 10000;
  o->max_ttl_ms = 60000;
  o->allow_gid = -1;
  int ch;
  while ((ch = getopt_long(argc, argv, "n:m:c:h", lo, NULL)) != -1) {
    int bad = 0;
    switch (ch) {
      case 'n': o->name = optarg; break;
      case 'm': o->members = optarg; break;
      case 'c': o->cluster = optarg; break;
      case 'M': bad = parse_size(optarg, &o->memory) || o->memory < (1u << 20); break;
      case 's': o->socket = optarg; break;
      case 'p': o->prefix = optarg; break;
      case 'S': bad = parse_u32(optarg, &o->stale_ms) || o->stale_ms == 0; break;
      case 'R': bad = parse_u32(optarg, &o->reconcile_ms) || o->reconcile_ms == 0; break;
      case 'I': bad = parse_u32(optarg, &o->idle_ms); break;
      case 'T': bad = parse_u32(optarg, &o->max_ttl_ms); break;
      case 'g': {
        uint32_t g = 0;
        bad = parse_u32(optarg, &g);
        o->allow_gid = g;
        break;
      }
      case 'u': o->unlink_on_exit = 1; break;
      case 'h': usage(stdout); exit(0);
      case 'V': printf("hzshm-agent %s\n", HZSHM_VERSION_STRING); exit(0);
      default: bad = 1; break;
    }
    if (bad) {
      fprintf(stderr, "hzshm-agent: bad value for an option\n");
      usage(stderr);
      return -1;
    }
  }
  if (optind != argc || o->name == NULL || o->members == NULL || o->members[0] == 0) {
    usage(stderr);
    return -1;
  }
  if (o->prefix && strlen(o->prefix) >= HZSHM_SESSION_MAX) {
    fprintf(stderr, "hzshm-agent: --prefix too long\n");
    return -1;
  }
  return 0;
}

static void hz_closed(void *ud) {
  agent_t *a = ud;
  a->hz = NULL;
  hzshm__session_free_all(a);
  if (a->shm) {
    hzshm__shm_close(a->shm);
    a->shm = NULL;
  }
  if (a->o.unlink_on_exit) hzshm__shm_unlink(a->o.name);
}

void hzshm__agent_stop(agent_t *a) {
  if (a->stopping) return;
  a->stopping = 1;
  hzshm__agent_log("stopping");
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  hzshm__health_close(a);
  hzshm__server_close(a);
  hzshm__fill_flush_delayed(a);
  if (a->hz) hzc_client_close(a->hz, hz_closed, a);
  else hz_closed(a);
}

static void signal_cb(uv_signal_t *s, int signum) { hzshm__agent_stop(s->data); }

static void connect_cb(hzc_client_t *c, int status, void *ud) {
  agent_t *a = ud;
  if (status != 0 && a->stopping) return;
  if (status != 0) {
    hzshm__agent_log("cluster connection failed: %s%s", hzshm_strerror(status),
                     status == HZSHM_EAUTH ? " (giving up)" : " (retrying)");
    if (status == HZSHM_EAUTH) hzshm__agent_stop(a);
    return;
  }
  a->cluster_state = 1;
  a->my_uuid = hzc_client_uuid(c);
  uint32_t pc = hzc_partition_count(c);
  if (pc != 0 && pc != a->partitions)
    hzshm__agent_log("warning: cluster has %u partitions, the segment was sized for %u", pc, a->partitions);
}

static void objects_cb(hzc_client_t *c, int status, void *ud) {
  if (status != 0) hzshm__agent_log("distributed-object listener failed: %s", hzshm_strerror(status));
}

static int split_members(char *list, const char ***out, size_t *n) {
  size_t cap = 1;
  for (char *p = list; *p; p++) cap += *p == ',';
  const char **v = calloc(cap, sizeof *v);
  if (v == NULL) return -ENOMEM;
  size_t k = 0;
  for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) v[k++] = t;
  *out = v;
  *n = k;
  return 0;
}

int main(int argc, char **argv) {
  agent_t a;
  memset(&a, 0, sizeof a);
  int rc = 1;
  const char **addrs = NULL;
  size_t naddrs = 0;
  if (parse_opts(argc, argv, &a.o) != 0) return 2;
  /* A client that closes before its answer must not kill the agent: writes to
   * a closed socket then fail with EPIPE instead of raising SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  a.loop = uv_default_loop();
  a.partitions = 271;
  a.delay_key = getenv("HZSHM_AGENT_TEST_FILL_DELAY_KEY");
  const char *dm = getenv("HZSHM_AGENT_TEST_FILL_DELAY_MS");
  a.delay_ms = dm ? (uint32_t)strtoul(dm, NULL, 10) : 1000;
  a.drop_key = getenv("HZSHM_AGENT_TEST_DROP_INVAL_KEY");
  a.block_file = getenv("HZSHM_AGENT_TEST_BLOCK_FILE");
  if (a.o.socket) {
    if (strlen(a.o.socket) >= sizeof a.sockpath) {
      fprintf(stderr, "hzshm-agent: socket path too long\n");
      return 2;
    }
    strcpy(a.sockpath, a.o.socket);
  } else if (snprintf(a.sockpath, sizeof a.sockpath, "/tmp/hzshm-%s.sock", a.o.name) >= (int)sizeof a.sockpath) {
    fprintf(stderr, "hzshm-agent: name too long for a socket path\n");
    return 2;
  }
  a.scratch = malloc(HZSHM__IPC_VALUE_MAX);
  a.puuid = calloc(a.partitions, sizeof *a.puuid);
  a.watch = calloc(a.partitions, sizeof *a.watch);
  a.unwatched = a.partitions;
  if (a.scratch == NULL || a.puuid == NULL || a.watch == NULL || split_members(a.o.members, &addrs, &naddrs) != 0) goto out;

  hzshm__shm_config_t cfg = {.memory_bytes = a.o.memory, .partition_count = a.partitions,
                             .stale_after_ns = (uint64_t)a.o.stale_ms * 1000000u};
  int reused = 0;
  int err = hzshm__shm_w_open(a.o.name, &cfg, 1, &a.shm, &reused);
  if (err != 0) {
    hzshm__agent_log("cannot open segment %s: %s", a.o.name, hzshm_strerror(err));
    goto out;
  }
  if (reused) {
    hzshm__inval_all_stale(&a); /* revalidate: nothing of the previous agent is served */
    hzshm__agent_log("reused the segment of a previous agent: every partition marked stale");
  }
  if ((err = hzshm__shm_w_set_socket(a.shm, a.sockpath)) != 0) {
    hzshm__agent_log("cannot record the socket path: %s", hzshm_strerror(err));
    goto out;
  }

  hzc_config_t hc = {.cluster_name = a.o.cluster, .addrs = addrs, .naddrs = naddrs, .smart = 1,
                     .invocation_timeout_ms = 10000, .heartbeat_interval_ms = 1000,
                     .heartbeat_timeout_ms = 5000, .client_name = "hzshm-agent"};
  if ((err = hzc_client_new(a.loop, &hc, &a.hz)) != 0) {
    hzshm__agent_log("cannot create the Hazelcast client: %s", hzshm_strerror(err));
    goto out;
  }
  hzc_client_set_event_cb(a.hz, hzshm__health_event, &a);

  uv_signal_init(a.loop, &a.sigterm);
  uv_signal_init(a.loop, &a.sigint);
  a.sigterm.data = a.sigint.data = &a;
  uv_signal_start(&a.sigterm, signal_cb, SIGTERM);
  uv_signal_start(&a.sigint, signal_cb, SIGINT);
  hzshm__health_start(&a);
  if (hzshm__server_start(&a) != 0) {
    hzshm__agent_stop(&a);
  } else {
    hzc_client_connect(a.hz, connect_cb, &a);
    hzc_listen_objects(a.hz, hzshm__object_cb, &a, objects_cb, &a, &a.objects);
    hzshm__agent_log("serving cache %s on %s (%zu seed members)", a.o.name, a.sockpath, naddrs);
  }
  uv_run(a.loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(a.loop) == 0 ? 0 : 1;
  if (rc) hzshm__agent_log("some libuv handle was left open");
out:
  if (a.shm) hzshm__shm_close(a.shm); /* only on a start-up failure: hz_closed closed it otherwise */
  free(addrs);
  free(a.scratch);
  free(a.puuid);
  free(a.watch);
  return rc;
}
