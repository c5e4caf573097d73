/* main.c - hzshm-agent: options, start-up and clean shutdown.
 *
 *   hzshm-agent -n NAME -m MEMBERS [OPTIONS]   (opts.c, hzshm-agent --help)
 *
 * Exit status: 0 after a clean stop, 1 after a fatal error (authentication
 * refused, socket in use, segment refused, ...: one error line says which),
 * 2 for a usage error (nothing was created).
 * One libuv loop on one thread. SIGTERM/SIGINT stop it cleanly: the segment
 * is marked STOPPED (readers fail closed at once), the socket and every
 * connection are closed, the Hazelcast client is closed (pending operations
 * fail), and every uv handle is closed before exit.
 * After a kill -9 the next agent reuses the segment (hzshm__shm_w_open says
 * so) and marks every partition stale before serving: nothing filled by the
 * previous agent is served again until refilled. The segment is opened "not
 * serving" (open_state) so no reader hits before those marks.
 * SIGHUP is ignored: logs go to stderr (the journal under systemd), there is
 * nothing to reopen, and a closed terminal must not kill the cache.
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

static void hz_closed(void *ud) {
  agent_t *a = ud;
  a->hz = NULL;
  session_free_all(a);
  if (a->shm) { /* --unlink-on-exit: the files go while we still hold the writer lock */
    if (a->o.unlink_on_exit) hzshm__shm_close_unlink(a->shm);
    else hzshm__shm_close(a->shm);
    a->shm = NULL;
  }
}

void agent_fatal(agent_t *a, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_at(LVL_ERR, "fatal: %s", msg);
  a->exit_code = 1;
  agent_stop(a);
}

void agent_stop(agent_t *a) {
  if (a->stopping) return;
  a->stopping = 1;
  notify_stopping(a);
  log_info("stopping");
  uv_close((uv_handle_t *)&a->sigterm, NULL);
  uv_close((uv_handle_t *)&a->sigint, NULL);
  health_close(a);
  metrics_close(a);
  server_close(a);
#ifdef HZSHM_AGENT_TEST_SEAMS
  seam_flush(a); /* test-only build: held fills complete (stopped) */
#endif
  if (a->hz) hzc_client_close(a->hz, hz_closed, a);
  else hz_closed(a);
}

static void signal_cb(uv_signal_t *s, int signum) { agent_stop(s->data); }

static void connect_cb(hzc_client_t *c, int status, void *ud) {
  agent_t *a = ud;
  if (status != 0 && a->stopping) return;
  if (status == HZSHM_EAUTH) {
    agent_fatal(a, "the cluster refused our authentication (cluster name \"%s\"; see -c)", a->o.cluster);
    return;
  }
  if (status != 0) { /* hzc logged the address and the reason; it keeps retrying */
    log_at(LVL_DEBUG, "first cluster connection failed: %s (retrying)", hzshm_strerror(status));
    return;
  }
  a->cluster.state = 1;
  a->cluster.my_uuid = hzc_client_uuid(c); /* the partition count is checked at every join: health.c */
}

/* Supervision around health.c's handler: readiness, fatal refusal. */
static void event_cb(hzc_client_t *c, const hzc_event_t *ev, void *ud) {
  agent_t *a = ud;
  if (ev->kind == HZC_EV_AUTH_FAILED) {
    agent_fatal(a, "the cluster refused our authentication (cluster name \"%s\"; see -c)", a->o.cluster);
    return;
  }
  health_event(c, ev, ud);
  if (ev->kind == HZC_EV_CONNECTED || ev->kind == HZC_EV_RECONNECTED || ev->kind == HZC_EV_CLUSTER_CHANGED) {
    notify_ready(a);
    notify_status(a, "serving, connected");
  } else if (ev->kind == HZC_EV_DISCONNECTED) {
    notify_status(a, "cluster lost, reconnecting");
  }
}

static void objects_cb(hzc_client_t *c, int status, void *ud) {
  if (status != 0) log_info("distributed-object listener failed: %s", hzshm_strerror(status));
}

/* ---- start-up steps: each returns 0, or logs why and returns nonzero ---- */

/* A client that closes before its answer must not kill the agent: writes to
 * a closed socket then fail with EPIPE instead of raising SIGPIPE. SIGHUP:
 * documented, nothing to reopen. */
static void ignore_signals(void) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
}

/* The segment as the options size it. --allow-gid: the data file is readable
 * by that group (0640), whose processes keep their reader slots in private
 * files (docs/SHM.md). Opened not serving: readers hit nothing before the
 * stale marks of a reused segment. */
static hzshm__shm_config_t segment_config(const agent_t *a) {
  hzshm__shm_config_t cfg = {.memory_bytes = a->o.memory, .partition_count = a->cluster.partitions,
                             .max_sessions = a->o.sessions, .reader_slots = a->o.readers,
                             .stale_after_ns = (uint64_t)a->o.stale_ms * 1000000u,
                             .gid_set = a->o.allow_gid >= 0,
                             .gid = a->o.allow_gid >= 0 ? (uint32_t)a->o.allow_gid : 0,
                             .open_state = HZSHM_SHM_DISCONNECTED};
  return cfg;
}

/* A usage error (exit 2, nothing created) when --memory cannot hold the rest. */
static int check_memory(const agent_t *a, const hzshm__shm_config_t *cfg) {
  uint64_t min = hzshm__shm_min_memory(cfg);
  if (a->o.memory >= min) return 0;
  fprintf(stderr, "hzshm-agent: --memory: %llu bytes is below the minimum of %llum for --sessions %u and --readers %u\n",
          (unsigned long long)a->o.memory, (unsigned long long)(min >> 20), a->o.sessions, a->o.readers);
  return -1;
}

/* The per-partition state and the read buffer (freed by release). */
static int alloc_state(agent_t *a) {
  uint32_t n = a->cluster.partitions;
  a->scratch = malloc(HZSHM__IPC_VALUE_MAX);
  a->cluster.puuid = calloc(n, sizeof *a->cluster.puuid);
  a->watch.conn = calloc(n, sizeof *a->watch.conn);
  a->watch.unwatched = n;
  a->recon.pchange_round = calloc(n, sizeof *a->recon.pchange_round);
  return a->scratch == NULL || a->cluster.puuid == NULL || a->watch.conn == NULL || a->recon.pchange_round == NULL
             ? -ENOMEM
             : 0;
}

/* One info line: which pages back the segment, and why not 2 MiB (pages.c).
 * Never a reason to stop. */
static void log_pages(agent_t *a) {
  char path[HZSHM_SHM_PATH_MAX], why[1024];
  if (hzshm__shm_path(a->o.name, 0, path, sizeof path) != 0) { /* w_open made the same path */
    a->huge_pages = PAGES_UNKNOWN;
    log_info("segment pages unknown (no path for cache %s)", a->o.name);
    return;
  }
  a->huge_pages = pages_probe(path, why, sizeof why);
  log_info("%s", why);
}

/* Opens (or reuses) the segment; a reused one has every partition marked
 * stale before it serves; records the socket path for readers.
 * A segment left by a previous agent is reused only with the same geometry
 * (--memory, --sessions, --readers, --partitions, --stale-ms) and layout
 * version; another one (e.g. an agent restarted with another --partitions)
 * is replaced by a fresh, empty segment of ours, never adopted: asked first
 * without replacing, so that the replacement is said (readers attached to
 * the old file attach to the new one by themselves, src/lib/lib.c). */
static int open_segment(agent_t *a, const hzshm__shm_config_t *cfg) {
  int reused = 0;
  int err = hzshm__shm_w_open(a->o.name, cfg, 0, &a->shm, &reused);
  if (err == HZSHM_EVERSION) {
    log_at(LVL_WARN,
           "the segment of cache %s was made with another --memory, --sessions, --readers, --partitions or "
           "--stale-ms, by another layout version, or is damaged: replaced by a fresh one (empty)",
           a->o.name);
    err = hzshm__shm_w_open(a->o.name, cfg, 1, &a->shm, &reused);
  }
  if (err != 0) {
    log_at(LVL_ERR, "fatal: cannot open the segment of cache %s: %s%s", a->o.name, hzshm_strerror(err),
           err == HZSHM_EEXIST ? " (another agent serves it)" : "");
    return err;
  }
  hzshm__shm_stats_t ss;
  if (hzshm__shm_stats(a->shm, &ss) == 0 && ss.memory_limit < a->o.memory / 4)
    log_at(LVL_WARN,
           "only %llu KiB of --memory %llu KiB hold entries (the rest: %u sessions, %u readers): "
           "raise --memory or lower --sessions/--readers",
           (unsigned long long)(ss.memory_limit >> 10), (unsigned long long)(a->o.memory >> 10), a->o.sessions,
           a->o.readers);
  log_pages(a);
#ifdef HZSHM_AGENT_TEST_SEAMS
  seam_after_open(); /* test-only build: widens the window the marks below close */
#endif
  if (reused) {
    inval_all_stale(a); /* revalidate: nothing of the previous agent is served */
    log_info("reused the segment of a previous agent: every partition marked stale");
  }
  if ((err = hzshm__shm_w_set_socket(a->shm, a->o.sockpath)) != 0)
    log_at(LVL_ERR, "fatal: cannot record the socket path: %s", hzshm_strerror(err));
  return err;
}

/* The Hazelcast client. Silent member loss within --stale-ms (issue 11, hole
 * 4): a Ping on every connection idle for a quarter of the bound, and the
 * partitions of a connection that read nothing for three quarters of it are
 * unwatched (marked stale, not cached: health.c) until it talks again; the
 * connection is closed only after 5 s, so a member's pause does not fail
 * operations. */
static int create_client(agent_t *a) {
  uint32_t ping_ms = a->o.stale_ms / 4 > 50 ? a->o.stale_ms / 4 : 50;
  uint32_t silent_ms = a->o.stale_ms / 4 * 3 > 2 * ping_ms ? a->o.stale_ms / 4 * 3 : 2 * ping_ms;
  hzc_config_t hc = {.cluster_name = a->o.cluster, .addrs = a->o.addrs, .naddrs = a->o.naddrs, .smart = 1,
                     .invocation_timeout_ms = a->o.invocation_timeout_ms, .heartbeat_interval_ms = ping_ms,
                     .heartbeat_timeout_ms = silent_ms > 5000 ? silent_ms : 5000, .watch_silence_ms = silent_ms,
                     .client_name = "hzshm-agent"};
  int err = hzc_client_new(a->loop, &hc, &a->hz);
  if (err != 0) {
    log_at(LVL_ERR, "fatal: cannot create the Hazelcast client: %s", hzshm_strerror(err));
    return err;
  }
  hzc_client_set_event_cb(a->hz, event_cb, a);
  return 0;
}

static void start_signals(agent_t *a) {
  uv_signal_init(a->loop, &a->sigterm);
  uv_signal_init(a->loop, &a->sigint);
  a->sigterm.data = a->sigint.data = a;
  uv_signal_start(&a->sigterm, signal_cb, SIGTERM);
  uv_signal_start(&a->sigint, signal_cb, SIGINT);
}

/* Starts every handle, connects, runs the loop until agent_stop closed them
 * all: the exit status. */
static int serve(agent_t *a) {
  start_signals(a);
  health_start(a);
  metrics_init(a);
  notify_start(a);
  if (server_start(a) != 0 || metrics_start(a) != 0) {
    a->exit_code = 1; /* server.c or metrics.c logged why */
    agent_stop(a);
  } else {
    hzc_client_connect(a->hz, connect_cb, a);
    hzc_listen_objects(a->hz, inval_object_cb, a, objects_cb, a, &a->objects);
    log_info("serving cache %s on %s (cluster %s, %zu seed members)", a->o.name, a->o.sockpath, a->o.cluster,
             a->o.naddrs);
  }
  uv_run(a->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(a->loop) == 0) return a->exit_code;
  log_at(LVL_ERR, "some libuv handle was left open");
  return 1;
}

/* What is left after the loop, or after a start-up failure. */
static void release(agent_t *a) {
  if (a->shm) { /* only on a start-up failure: hz_closed closed it otherwise */
    if (a->o.unlink_on_exit) hzshm__shm_close_unlink(a->shm);
    else hzshm__shm_close(a->shm);
  }
  free(a->o.addrs);
  free(a->scratch);
  free(a->cluster.puuid);
  free(a->watch.conn);
  free(a->recon.pchange_round);
}

int main(int argc, char **argv) {
  agent_t a;
  memset(&a, 0, sizeof a);
  if (opts_parse(argc, argv, &a.o) != 0) return 2;
  log_init(a.o.log_level);
  ignore_signals();
  a.loop = uv_default_loop();
  a.cluster.partitions = a.o.partitions;
  hzshm__shm_config_t cfg = segment_config(&a);
  int rc;
  if (check_memory(&a, &cfg) != 0)
    rc = 2;
  else if (alloc_state(&a) != 0 || open_segment(&a, &cfg) != 0 || create_client(&a) != 0)
    rc = 1;
  else
    rc = serve(&a);
  release(&a);
  return rc;
}
