/* hzshm - command-line client of a host's hzshm cache (public API only).
 *
 *   hzshm -n NAME [-p PREFIX] get SESSION KEY        prints the value; exit 0 found, 1 not found, 2 error
 *   hzshm -n NAME [-p PREFIX] has SESSION KEY        exit 0 present, 1 absent, 2 error
 *   hzshm -n NAME [-p PREFIX] set SESSION KEY VALUE  VALUE "-" reads it from stdin
 *   hzshm -n NAME [-p PREFIX] del SESSION KEY
 *   hzshm -n NAME [-p PREFIX] destroy SESSION
 *   hzshm -n NAME stat [--format text|prometheus]    one "name: value" line per figure, or the
 *                                                    Prometheus text exposition (src/common/report.c)
 *   hzshm -n NAME health                             exit 0 alive, serving and connected; else one
 *                                                    line saying why and exit 1
 *   hzshm -h | --help | --version                    exit 0
 * Before the command, -u/--agent-uid UID|USER: the agent's uid, trusted as
 * the owner of the segment and the agent socket besides our own and root's
 * (sets HZSHM_AGENT_UID for libhzshm; docs/SHM.md "Access model").
 * Errors go to stderr with hzshm_strerror(); usage errors exit 2.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hzshm.h"
#include "report.h"

static void usage_to(FILE *f) {
  fprintf(f,
          "usage: hzshm -n NAME [-p PREFIX] get|has|del SESSION KEY\n"
          "       hzshm -n NAME [-p PREFIX] set SESSION KEY VALUE|-\n"
          "       hzshm -n NAME [-p PREFIX] destroy SESSION\n"
          "       hzshm -n NAME stat [--format text|prometheus]\n"
          "       hzshm -n NAME health\n"
          "       hzshm -h | --help | --version\n"
          "  -n NAME    the cache (as hzshm-agent -n)\n"
          "  -p PREFIX  IMap name prefix (as hzshm-agent --prefix; default none)\n"
          "  -u, --agent-uid UID|USER  the agent's uid, when it is neither ours nor root\n"
          "             (trusted as owner of the segment and the socket; sets HZSHM_AGENT_UID)\n"
          "get: exit 0 found, 1 not found; has: 0 present, 1 absent; health: 0 alive, serving and\n"
          "connected, 1 not (one line says why); 2 for usage and other errors. See hzshm(1).\n");
}
static void usage(void) { usage_to(stderr); }

static int fail(const char *what, int rc) {
  fprintf(stderr, "hzshm: %s: %s (%s)\n", what, hzshm_strerror(rc), hzshm_err_name(rc));
  return 2;
}

static char *read_stdin(size_t *len) {
  size_t cap = 4096, n = 0;
  char *b = malloc(cap);
  while (b) {
    size_t r = fread(b + n, 1, cap - n, stdin);
    n += r;
    if (r == 0) break;
    if (n == cap) {
      if (cap > HZSHM_VALUE_MAX) break; /* the library reports ETOOBIG */
      char *nb = realloc(b, cap * 2);
      if (nb == NULL) {
        free(b);
        return NULL;
      }
      b = nb;
      cap *= 2;
    }
  }
  *len = n;
  return b;
}

static int print_prometheus(const char *name, const hzshm_stats_t *st) {
  size_t n = hzshm__prom_render(NULL, 0, name, st, NULL, 0);
  char *b = malloc(n + 1);
  if (b == NULL) return fail("stat", -ENOMEM);
  hzshm__prom_render(b, n + 1, name, st, NULL, 0);
  fwrite(b, 1, n, stdout);
  free(b);
  return 0;
}

static int print_stats(hzshm_t *h, const char *name, int prom) {
  hzshm_stats_t st;
  int rc = hzshm_stats(h, &st);
  if (rc) return fail("stat", rc);
  if (prom) return print_prometheus(name, &st);
  printf("hits: %llu\n", (unsigned long long)st.hits);
  printf("misses: %llu\n", (unsigned long long)st.misses);
  printf("entries: %llu\n", (unsigned long long)st.entries);
  printf("sessions: %llu\n", (unsigned long long)st.sessions);
  printf("memory_used: %llu\n", (unsigned long long)st.memory_used);
  printf("memory_limit: %llu\n", (unsigned long long)st.memory_limit);
  printf("evictions: %llu\n", (unsigned long long)st.evictions);
  printf("readers: %u\n", st.readers);
  printf("agent_pid: %d\n", st.agent_pid);
  printf("agent_state: %s\n", hzshm__agent_state_name(st.agent_state));
  printf("heartbeat_age_ms: %llu\n", (unsigned long long)st.heartbeat_age_ms);
  printf("stale_after_ms: %llu\n", (unsigned long long)st.stale_after_ms);
  printf("cluster_state: %s\n", hzshm__cluster_state_name(st.cluster_state));
  printf("invalidations_applied: %llu\n", (unsigned long long)st.invalidations);
  printf("last_invalidation_lag_us: %llu\n", (unsigned long long)st.last_inval_lag_us);
  printf("sessions_with_listeners: %llu\n", (unsigned long long)st.listeners);
  printf("remote_gets: %llu\n", (unsigned long long)st.remote_gets);
  printf("coalesced_misses: %llu\n", (unsigned long long)st.coalesced_misses);
  printf("fills_dropped: %llu\n", (unsigned long long)st.fills_dropped);
  printf("stale_marks: %llu\n", (unsigned long long)st.stale_marks);
  printf("agent_requests: %llu\n", (unsigned long long)st.agent_requests);
  printf("bad_requests: %llu\n", (unsigned long long)st.bad_requests);
  printf("unwatched_partitions: %llu\n", (unsigned long long)st.unwatched_partitions);
  printf("uncacheable_values: %llu\n", (unsigned long long)st.uncacheable_values);
  printf("expirations: %llu\n", (unsigned long long)st.expirations);
  char why[256];
  printf("healthy: %s\n", hzshm__health_verdict(&st, why, sizeof why) ? "no" : "yes");
  return 0;
}

/* Exit 0 healthy, 1 not (one line on stdout saying why either way). */
static int health(const char *name) {
  hzshm_t *h = NULL;
  int rc = hzshm_open(name, NULL, &h);
  if (rc) {
    printf("unhealthy: cache %s: %s%s\n", name, rc == -ENOENT ? "no segment" : hzshm_strerror(rc),
           rc == -ENOENT ? " (the agent is not running)" : "");
    return 1;
  }
  hzshm_stats_t st;
  rc = hzshm_stats(h, &st);
  hzshm_close(h);
  if (rc) {
    printf("unhealthy: cache %s: %s\n", name, hzshm_strerror(rc));
    return 1;
  }
  char why[256];
  int bad = hzshm__health_verdict(&st, why, sizeof why);
  printf("%s: cache %s: %s\n", bad ? "unhealthy" : "ok", name, why);
  return bad;
}

static int run(hzshm_t *h, const char *cmd, int argc, char **argv) {
  int need = !strcmp(cmd, "set") ? 3 : !strcmp(cmd, "destroy") ? 1 : 2;
  if (strcmp(cmd, "get") && strcmp(cmd, "has") && strcmp(cmd, "set") && strcmp(cmd, "del") &&
      strcmp(cmd, "destroy")) {
    usage();
    return 2;
  }
  if (argc != need) {
    usage();
    return 2;
  }
  hzshm_session_t *s = NULL;
  int rc = hzshm_session_open(h, argv[0], strlen(argv[0]), &s);
  if (rc) return fail("session", rc);
  int ex = 0;
  const char *key = need >= 2 ? argv[1] : NULL;
  size_t klen = key ? strlen(key) : 0;
  if (!strcmp(cmd, "get")) {
    size_t cap = 4096, vlen = 0;
    char *buf = malloc(cap);
    rc = buf ? hzshm_get(s, key, klen, buf, cap, &vlen) : -ENOMEM;
    if (rc == HZSHM_EBUFSIZE) {
      free(buf);
      cap = vlen;
      buf = malloc(cap ? cap : 1);
      rc = buf ? hzshm_get(s, key, klen, buf, cap, &vlen) : -ENOMEM;
    }
    if (rc == 0) {
      fwrite(buf, 1, vlen, stdout);
      if (isatty(1)) fputc('\n', stdout);
    } else if (rc == HZSHM_ENOTFOUND) {
      ex = 1;
    } else if (rc == HZSHM_ETYPE) {
      fprintf(stderr, "hzshm: get: %s (Hazelcast type id %d)\n", hzshm_strerror(rc), (int)(int32_t)vlen);
      ex = 2;
    } else {
      ex = fail("get", rc);
    }
    free(buf);
  } else if (!strcmp(cmd, "has")) {
    rc = hzshm_has(s, key, klen);
    ex = rc == 0 ? 0 : rc == HZSHM_ENOTFOUND ? 1 : fail("has", rc);
  } else if (!strcmp(cmd, "set")) {
    size_t vlen;
    char *val = NULL;
    if (!strcmp(argv[2], "-")) {
      val = read_stdin(&vlen);
      if (val == NULL) {
        ex = fail("set", -ENOMEM);
        goto done;
      }
    }
    rc = hzshm_set(s, key, klen, val ? val : argv[2], val ? vlen : strlen(argv[2]));
    free(val);
    if (rc) ex = fail("set", rc);
  } else if (!strcmp(cmd, "del")) {
    rc = hzshm_del(s, key, klen);
    if (rc) ex = fail("del", rc);
  } else {
    rc = hzshm_destroy(s);
    if (rc) ex = fail("destroy", rc);
  }
done:
  hzshm_session_close(s);
  return ex;
}

int main(int argc, char **argv) {
  const char *name = NULL, *prefix = NULL;
  if (argc == 2 && !strcmp(argv[1], "--version")) {
    printf("hzshm %s\n", HZSHM_VERSION_STRING);
    return 0;
  }
  if (argc == 2 && !strcmp(argv[1], "--help")) {
    usage_to(stdout);
    return 0;
  }
  int ch;
  static const struct option longopts[] = {{"agent-uid", required_argument, NULL, 'u'}, {NULL, 0, NULL, 0}};
  while ((ch = getopt_long(argc, argv, "+n:p:u:h", longopts, NULL)) != -1) {
    switch (ch) {
      case 'n': name = optarg; break;
      case 'p': prefix = optarg; break;
      case 'u':
        if (!*optarg || setenv("HZSHM_AGENT_UID", optarg, 1) != 0) {
          usage();
          return 2;
        }
        break;
      case 'h': usage_to(stdout); return 0;
      default: usage(); return 2;
    }
  }
  if (name == NULL || optind >= argc) {
    usage();
    return 2;
  }
  const char *cmd = argv[optind];
  int prom = 0;
  if (!strcmp(cmd, "health")) {
    if (optind + 1 != argc) {
      usage();
      return 2;
    }
    return health(name);
  }
  if (!strcmp(cmd, "stat")) {
    int rest = argc - optind - 1;
    if (rest == 2 && !strcmp(argv[optind + 1], "--format") && !strcmp(argv[optind + 2], "prometheus")) prom = 1;
    else if (!(rest == 0 || (rest == 2 && !strcmp(argv[optind + 1], "--format") && !strcmp(argv[optind + 2], "text")))) {
      fprintf(stderr, "hzshm: stat: --format text or --format prometheus\n");
      return 2;
    }
  }
  hzshm_opts_t o = {.prefix = prefix};
  hzshm_t *h = NULL;
  int rc = hzshm_open(name, &o, &h);
  if (rc) return fail("open", rc);
  int ex = !strcmp(cmd, "stat") ? print_stats(h, name, prom) : run(h, cmd, argc - optind - 1, argv + optind + 1);
  hzshm_close(h);
  return ex;
}
