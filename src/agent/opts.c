/* opts.c - hzshm-agent's command line: parsing, defaults, --help, --version.
 * A bad value names its option and exits 2 (a usage error: systemd does not
 * restart it, RestartPreventExitStatus=2); nothing is created before. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

#define DEF_MEMORY (64ull << 20)
#define DEF_SESSIONS 65536u
#define DEF_READERS 1024u
#define DEF_PARTITIONS 271u /* Hazelcast's default hazelcast.partition.count */

static void usage(FILE *f) {
  fprintf(f,
          "usage: hzshm-agent -n NAME -m MEMBERS [OPTIONS]\n"
          "The single writer of a host's hzshm cache NAME: creates its shared-memory segment,\n"
          "serves its socket and keeps it consistent with a Hazelcast cluster.\n"
          "\n"
          "  -n, --name NAME          cache name, 1-64 of [A-Za-z0-9_.-], no part \"rd\" or \"lock\" after a dot (required)\n"
          "  -m, --members LIST       comma-separated seed members: host[:port] or [ipv6][:port],\n"
          "                           port 5701 by default; names resolved on every reconnect (required)\n"
          "  -c, --cluster NAME       Hazelcast cluster name (default: dev)\n"
          "      --memory SIZE        segment size, SIZE[k|m|g] (default: 64m; the minimum depends on\n"
          "                           --sessions and --readers, an error names it)\n"
          "      --sessions N         sessions (IMaps) the segment can hold (default: %u)\n"
          "      --readers N          reader threads that can attach at once (default: %u)\n"
          "      --partitions N       the cluster's partition count (hazelcast.partition.count), 1..65535:\n"
          "                           the segment and the agent's tables are made for it (default: %u,\n"
          "                           Hazelcast's default); keys of partitions >= N are never cached\n"
          "      --socket PATH        the agent's Unix socket (default: $RUNTIME_DIRECTORY/hzshm-NAME.sock,\n"
          "                           else $XDG_RUNTIME_DIR/hzshm-NAME.sock, else /tmp/hzshm-NAME.sock)\n"
          "      --prefix P           serve only IMaps whose name starts with P (default: all)\n"
          "      --stale-ms N         readers fail closed N ms after the agent stops beating or\n"
          "                           loses the cluster (default: 1000)\n"
          "      --reconcile-ms N     invalidation metadata reconciliation interval (default: 5000)\n"
          "      --idle-ms N          drop a session's listener after N ms without entries (default: 10000)\n"
          "      --max-ttl-ms N       cap on a cached entry's local lifetime, 0 = none (default: 60000)\n"
          "      --invocation-timeout-ms N  a cluster operation fails after N ms (default: 10000)\n"
          "      --allow-gid GID      also admit socket peers of group GID (default: only our uid and root)\n"
          "      --unlink-on-exit     remove the segment on a clean stop (default: keep it)\n"
          "      --metrics-listen HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics\n"
          "                           (default: off)\n"
          "      --log-level LEVEL    error, warn, info or debug (default: info)\n"
          "  -h, --help               this text\n"
          "  -V, --version            the version\n"
          "\n"
          "Exit status: 0 clean stop (SIGTERM, SIGINT), 1 fatal error, 2 usage error.\n"
          "SIGHUP is ignored. Environment: HZSHM_SHM_DIR (segment directory, default /dev/shm).\n",
          DEF_SESSIONS, DEF_READERS, DEF_PARTITIONS);
}

int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (*s < '0' || *s > '9') return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) return -1;
  unsigned sh = 0;
  switch (*end) {
    case 'k': case 'K': sh = 10; end++; break;
    case 'm': case 'M': sh = 20; end++; break;
    case 'g': case 'G': sh = 30; end++; break;
    default: break;
  }
  if (*end || (sh && v > (~0ull >> sh))) return -1;
  *out = v << sh;
  return 0;
}

static int parse_u32(const char *s, uint32_t *out) {
  uint64_t v;
  if (parse_size(s, &v) || v > UINT32_MAX) return -1;
  *out = (uint32_t)v;
  return 0;
}

static int bad(const char *opt, const char *val, const char *want) {
  fprintf(stderr, "hzshm-agent: --%s: bad value '%s' (%s); see hzshm-agent --help\n", opt, val, want);
  return -1;
}

static int split_members(agent_opts_t *o) {
  size_t cap = 1;
  for (const char *p = o->members; *p; p++) cap += *p == ',';
  o->addrs = calloc(cap, sizeof *o->addrs);
  if (o->addrs == NULL) return -1;
  for (char *save = NULL, *t = strtok_r(o->members, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char host[256];
    int port;
    if (hzc_parse_address(t, host, sizeof host, &port) != 0) {
      bad("members", t, "expected host[:port] or [ipv6][:port], port 1-65535");
      goto fail;
    }
    o->addrs[o->naddrs++] = t;
  }
  if (o->naddrs != 0) return 0;
  bad("members", "", "no member address");
fail:
  free(o->addrs);
  o->addrs = NULL;
  o->naddrs = 0;
  return -1;
}

/* $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=, first entry), else
 * $XDG_RUNTIME_DIR (a login session's private directory), else /tmp: where
 * no other local user can take the name first, when the system provides it. */
static int default_socket(agent_opts_t *o) {
  const char *dir = getenv("RUNTIME_DIRECTORY");
  char first[sizeof o->sockpath];
  if (dir && dir[0]) {
    snprintf(first, sizeof first, "%s", dir);
    char *colon = strchr(first, ':'); /* several directories are ':'-separated */
    if (colon) *colon = 0;
    dir = first;
  } else {
    dir = getenv("XDG_RUNTIME_DIR");
  }
  struct stat st;
  if (!dir || dir[0] != '/' || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) dir = "/tmp";
  if (snprintf(o->sockpath, sizeof o->sockpath, "%s/hzshm-%s.sock", dir, o->name) >= (int)sizeof o->sockpath) {
    fprintf(stderr, "hzshm-agent: the default socket path %s/hzshm-%s.sock is too long: give --socket\n", dir,
            o->name);
    return -1;
  }
  return 0;
}

int opts_parse(int argc, char **argv, agent_opts_t *o) {
  enum { O_MEMORY = 256, O_SOCKET, O_PREFIX, O_STALE, O_RECONCILE, O_IDLE, O_GID, O_UNLINK, O_TTL, O_SESSIONS,
         O_READERS, O_METRICS, O_LOGLEVEL, O_INVOKE, O_PARTITIONS };
  static const struct option lo[] = {
      {"name", required_argument, 0, 'n'},         {"members", required_argument, 0, 'm'},
      {"cluster", required_argument, 0, 'c'},      {"memory", required_argument, 0, O_MEMORY},
      {"socket", required_argument, 0, O_SOCKET},  {"prefix", required_argument, 0, O_PREFIX},
      {"stale-ms", required_argument, 0, O_STALE}, {"reconcile-ms", required_argument, 0, O_RECONCILE},
      {"idle-ms", required_argument, 0, O_IDLE},   {"allow-gid", required_argument, 0, O_GID},
      {"unlink-on-exit", no_argument, 0, O_UNLINK}, {"max-ttl-ms", required_argument, 0, O_TTL},
      {"sessions", required_argument, 0, O_SESSIONS}, {"readers", required_argument, 0, O_READERS},
      {"metrics-listen", required_argument, 0, O_METRICS}, {"log-level", required_argument, 0, O_LOGLEVEL},
      {"invocation-timeout-ms", required_argument, 0, O_INVOKE}, {"partitions", required_argument, 0, O_PARTITIONS},
      {"help", no_argument, 0, 'h'},               {"version", no_argument, 0, 'V'},
      {0, 0, 0, 0}};
  memset(o, 0, sizeof *o);
  o->cluster = "dev";
  o->memory = DEF_MEMORY;
  o->sessions = DEF_SESSIONS;
  o->readers = DEF_READERS;
  o->partitions = DEF_PARTITIONS;
  o->stale_ms = 1000;
  o->reconcile_ms = 5000;
  o->idle_ms = 10000;
  o->max_ttl_ms = 60000;
  o->invocation_timeout_ms = 10000;
  o->allow_gid = -1;
  o->log_level = LVL_INFO;
  int ch, li = -1;
  opterr = 0;
  while ((li = -1, ch = getopt_long(argc, argv, ":n:m:c:hV", lo, &li)) != -1) {
    const char *name = li >= 0 ? lo[li].name : NULL;
    int e = 0;
    switch (ch) {
      case 'n': o->name = optarg; break;
      case 'm': o->members = optarg; break;
      case 'c': o->cluster = optarg; e = optarg[0] ? 0 : bad("cluster", optarg, "empty"); break;
      case O_MEMORY: e = parse_size(optarg, &o->memory) ? bad(name, optarg, "SIZE[k|m|g]") : 0; break;
      case O_SESSIONS:
        e = parse_u32(optarg, &o->sessions) || o->sessions == 0 || o->sessions > (1u << 22)
                ? bad(name, optarg, "1..4194304") : 0;
        break;
      case O_READERS:
        e = parse_u32(optarg, &o->readers) || o->readers == 0 || o->readers > 65536 ? bad(name, optarg, "1..65536")
                                                                                     : 0;
        break;
      case O_PARTITIONS: /* the segment's limit (shm/shm_open.c layout_compute) */
        e = parse_u32(optarg, &o->partitions) || o->partitions == 0 || o->partitions > 65535
                ? bad(name, optarg, "1..65535") : 0;
        break;
      case O_SOCKET:
        o->socket = optarg;
        e = strlen(optarg) >= sizeof o->sockpath || optarg[0] == 0 ? bad(name, optarg, "1..107 bytes") : 0;
        break;
      case O_PREFIX:
        o->prefix = optarg;
        e = strlen(optarg) >= HZSHM_SESSION_MAX ? bad(name, optarg, "too long") : 0;
        break;
      case O_STALE: e = parse_u32(optarg, &o->stale_ms) || o->stale_ms == 0 ? bad(name, optarg, "ms > 0") : 0; break;
      case O_RECONCILE:
        e = parse_u32(optarg, &o->reconcile_ms) || o->reconcile_ms == 0 ? bad(name, optarg, "ms > 0") : 0;
        break;
      case O_IDLE: e = parse_u32(optarg, &o->idle_ms) ? bad(name, optarg, "ms") : 0; break;
      case O_INVOKE:
        e = parse_u32(optarg, &o->invocation_timeout_ms) || o->invocation_timeout_ms == 0 ? bad(name, optarg, "ms > 0")
                                                                                           : 0;
        break;
      case O_TTL: e = parse_u32(optarg, &o->max_ttl_ms) ? bad(name, optarg, "ms, 0 = none") : 0; break;
      case O_GID: {
        uint32_t g = 0;
        e = parse_u32(optarg, &g) ? bad(name, optarg, "a numeric group id") : 0;
        o->allow_gid = g;
        break;
      }
      case O_UNLINK: o->unlink_on_exit = 1; break;
      case O_METRICS: {
        char host[256];
        int port;
        o->metrics_listen = optarg;
        e = strchr(optarg, ':') == NULL || hzc_parse_address(optarg, host, sizeof host, &port)
                ? bad(name, optarg, "HOST:PORT or [ipv6]:PORT")
                : 0;
        break;
      }
      case O_LOGLEVEL:
        o->log_level = log_level_parse(optarg);
        e = o->log_level < 0 ? bad(name, optarg, "error, warn, info or debug") : 0;
        break;
      case 'h': usage(stdout); exit(0);
      case 'V': printf("hzshm-agent %s\n", HZSHM_VERSION_STRING); exit(0);
      case ':':
        fprintf(stderr, "hzshm-agent: %s needs a value; see hzshm-agent --help\n", argv[optind - 1]);
        return -1;
      default:
        fprintf(stderr, "hzshm-agent: unknown option %s; see hzshm-agent --help\n", argv[optind - 1]);
        return -1;
    }
    if (e) return -1;
  }
  if (optind != argc) {
    fprintf(stderr, "hzshm-agent: unexpected argument '%s'; see hzshm-agent --help\n", argv[optind]);
    return -1;
  }
  if (o->name == NULL || o->members == NULL) {
    fprintf(stderr, "hzshm-agent: %s is required; see hzshm-agent --help\n", o->name ? "--members" : "--name");
    return -1;
  }
  if (split_members(o) != 0) return -1;
  if (o->socket) strcpy(o->sockpath, o->socket);
  else if (default_socket(o) != 0) {
    free(o->addrs);
    o->addrs = NULL;
    return -1;
  }
  return 0;
}
