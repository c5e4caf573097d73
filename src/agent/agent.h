/* agent.h - hzshm-agent internals: one libuv loop, one thread. Every function
 * here runs on the loop thread; nothing is shared with other threads, so no
 * atomics are needed in src/agent (the segment's own ordering is shm/'s). */
#ifndef HZSHM_AGENT_H
#define HZSHM_AGENT_H

#include <stdint.h>
#include <uv.h>

#include "clock.h"
#include "hzc.h"
#include "hzshm.h"
#include "ipc.h"
#include "ipc_counters.h"
#include "pages.h"
#include "report.h"
#include "shm.h"
#include "table.h"

typedef struct agent agent_t;
typedef struct session session_t;

/* ---- options (main.c) ---- */
typedef struct {
  const char *name;
  char *members;          /* as given (split in place into addrs) */
  const char **addrs;     /* each parsed by hzc_parse_address */
  size_t naddrs;
  const char *cluster;    /* default "dev" */
  uint64_t memory;
  uint32_t sessions, readers; /* segment directory and reader slots */
  uint32_t partitions;    /* --partitions: the segment's and the agent's tables' (cluster.partitions) */
  const char *socket;     /* as given, or NULL */
  char sockpath[108];     /* --socket or the default (opts.c) */
  const char *metrics_listen; /* HOST:PORT or NULL (metrics.c) */
  int log_level;
  const char *prefix;     /* only IMap names with this prefix are served */
  uint32_t stale_ms;      /* reader heartbeat bound and cluster-loss bound */
  uint32_t reconcile_ms;  /* metadata reconciliation interval */
  uint32_t idle_ms;       /* listener removed after this long without entries */
  uint32_t max_ttl_ms;    /* cap on a cached entry's local lifetime; 0 = none (see local_ttl) */
  uint32_t invocation_timeout_ms; /* a cluster operation fails after this long */
  int unlink_on_exit;
  long allow_gid;         /* -1 = none */
} agent_opts_t;

/* ---- local connections (server.c) ---- */
typedef struct lconn {
  uv_pipe_t pipe; /* first: the handle's data is the conn */
  agent_t *a;
  struct lconn *next, *prev;
  int refs;       /* 1 for the open handle + 1 per pending request */
  int closed;
  uint8_t *rbuf;
  size_t rlen, rcap;
  /* Arrival times of recent requests by reqid % 64, for the agent-hop
   * histogram (server.c); a slot reused before its answer loses a sample. */
  uint32_t t_reqid[64];
  uint64_t t_ns[64];
} lconn_t;

/* A request waiting for the cluster. */
typedef struct pending {
  struct pending *next;
  lconn_t *c;
  uint32_t reqid;
  uint8_t op;
} pending_t;

/* ---- sessions (sessions.c) ---- */
enum { LSN_NONE = 0, LSN_PENDING = 1, LSN_ACTIVE = 2 };

/* An operation waiting for its session's listener (sessions.c), or run at
 * once: run is the module's that made it (requests.c), so sessions.c only
 * queues, runs and fails parked operations without knowing what they do. */
typedef struct parked {
  struct parked *next;
  void (*run)(session_t *s, struct parked *p); /* called once; it owns (frees) p */
  lconn_t *c;
  uint32_t reqid;
  uint8_t op;
  uint8_t vstring; /* SET: the value is a String (HZSHM__IPC_F_STRING), else a byte[] */
  int64_t ttl_ms;
  uint8_t *key;
  size_t klen;
  uint8_t *val;
  size_t vlen;
} parked_t;

/* sessions.c: one registration of a session's invalidation listener, the
 * ud of its event and status callbacks. A renewal retires it (old = 1): it
 * keeps listening until until_ms, and only a clear-all it delivers counts
 * (as a possible destroy of the session's map: sessions.c, "Retired
 * registrations"). */
typedef struct lreg {
  struct lreg *next;        /* a->old_regs, when retired */
  agent_t *a;
  session_t *s;             /* its session; valid only while !old */
  hzc_listener_t *l;
  uint32_t gen;             /* the session's lgen it was registered as */
  uint64_t id;              /* unique in this agent */
  int old;
  uint64_t until_ms;        /* retired: removed then (idle check) */
} lreg_t;

struct session {
  tnode_t node; /* key = name */
  agent_t *a;
  char *name;
  size_t namelen;
  hzshm__sref_t ref;
  int has_ref;
  int lsn;                  /* LSN_* */
  lreg_t *reg;              /* the current registration (NULL with LSN_NONE) */
  int renew_again;          /* a possible destroy arrived while the registration was pending: renew after it */
  int64_t *seq;             /* per partition last invalidation sequence under a->puuid[p], -1 unknown */
  uint32_t lgen;            /* listener registration generation (initial baseline fetch matches it) */
  uint64_t seq_changes;     /* bumped whenever seq[] changes (inval.c: reset detection) */
  uint64_t round_changes;   /* seq_changes when the periodic round round_id collected the session */
  uint32_t round_id;
  uint64_t baseline_since;  /* initial baseline fetch waiting for a member list since (ms), 0 = not */
  table_t resv;      /* key -> resv_t */
  parked_t *parked, **parked_tail;
  int busy;                 /* operations in flight to the cluster */
  uint64_t last_use_ms;
  /* inval.c: partitions that a periodic round found ahead of every event we
   * got, not yet explained by an event (evidence that our registration on
   * their owner is gone); usually none. */
  struct suspect *suspects;
  uint32_t nsuspects, capsuspects;
};

/* inval.c: one partition of a session whose member sequence ran ahead of our events. */
typedef struct suspect {
  int32_t p;
  int watch;                /* a->watch.conn[p] when found: a later change voids the evidence */
  uint32_t round;           /* the periodic round that found it */
  uint64_t since_ms;        /* when */
} suspect_t;

/* ---- reservations (fill.c) ---- */
/* A write of a key in flight, linked from its reservation (requests.c's write_t starts with it). */
typedef struct wlink {
  struct wlink *next;
  struct resv *r;
} wlink_t;

typedef struct resv {
  tnode_t node;      /* key = key bytes */
  session_t *s;
  uint8_t *key;
  size_t klen;
  uint64_t stamp;           /* hzshm__shm_w_stamp before the remote get */
  int fetching;             /* a remote get is in flight for it */
  int fill_canceled;        /* an invalidation/clear/write arrived: do not cache the fill */
  int writes;               /* writes of this key in flight */
  int write_canceled;       /* do not cache the writes in flight: a foreign invalidation or a clear-all came,
                               another write of the key overlapped one, or one failed (requests.c) */
  uint32_t wseq;            /* writes of this key submitted (numbers them, see requests.c) */
  int echoes;               /* acknowledged writes whose own invalidation (echo) is still expected */
  int early;                /* own echoes that came while writes were in flight, none expected */
  uint64_t echo_until_ms;   /* expected echoes not seen by then are forgotten */
  int unknown;              /* failed writes (timed out...) that the member may still apply */
  uint64_t unknown_until_ms;/* by then a parked write has run or been given up by the member */
  wlink_t *wlist;           /* the writes in flight (writes of them); moved with the write state */
  int detached;             /* replaced in the table by a newer reservation */
  pending_t *waiters;
} resv_t;

/* The agent's state, one instance (main.c), grouped by the module that
 * keeps each part; a module reads the others' parts but writes only its own. */
struct agent {
  uv_loop_t *loop;
  agent_opts_t o;           /* the command line (opts.c), read-only after start-up */
  hzshm__shm_t *shm;        /* the segment: this agent is its single writer */
  hzc_client_t *hz;         /* the Hazelcast client */
  hzc_listener_t *objects;  /* distributed-object listener (inval.c's object callback) */
  table_t sessions;         /* name -> session_t (sessions.c) */
  uint8_t *scratch;         /* HZSHM__IPC_VALUE_MAX, for agent-side segment reads */
  lreg_t *old_regs;         /* sessions.c: retired registrations still listening */
  uint64_t reg_ids;         /* numbers them */
  uv_signal_t sigterm, sigint;
  uv_timer_t tick;          /* health.c: every 50 ms */
  unsigned ticks;           /* ticks so far (every 20th runs the idle check) */
  struct {                  /* health.c: the tick's lock-name check while it cannot tell */
    int err;                /* its last failure (-errno, HZSHM_*), 0 while it works */
    uint64_t since_ms;      /* when it started failing */
    uint64_t log_ms;        /* when a line was last logged (0: never) */
    unsigned quiet;         /* failures begun and ended unlogged since that line (a flapping check) */
    int quiet_err;          /* the last of those's error */
    int logged;             /* the current failure was logged: so is its end */
  } lockname;
  int stopping;
  int exit_code;            /* main's status: 1 after a fatal error (agent_fatal) */
  int huge_pages;           /* pages.c's finding at start-up (PAGES_*): /metrics reports it */

  /* Cluster view (health.c writes it from the client's events). */
  struct {
    uint32_t partitions;      /* the segment's (--partitions): every per-partition table has this many;
                                 partitions >= it of a cluster with more are never cached (inval_cacheable) */
    hzc_uuid_t my_uuid;       /* our client UUID: own invalidations carry it */
    hzc_uuid_t *puuid;        /* per partition UUID last seen (zero = unknown; inval.c) */
    int state;                /* 0 connecting, 1 connected, 2 disconnected, 3 stopped */
    uint64_t lost_since_ms;
    uint64_t connected_ms;
  } cluster;

  /* Watched partitions (health_watch): per partition the connection
   * (hzc_partition_watch id) its invalidations come on, as last applied;
   * 0 = none: nothing of the partition is cached (inval_cacheable). */
  struct {
    int *conn;
    uint32_t unwatched;       /* partitions with conn 0 */
    uint64_t log_ms;          /* when the count was last logged */
    uint32_t logged;          /* the count last logged */
    int all_once;             /* every partition was watched once since the start */
  } watch;

  /* Reconciliation of invalidation sequences (inval.c). */
  struct {
    uv_timer_t timer;         /* every --reconcile-ms, sooner after changes (health_reconcile_soon) */
    int inflight;             /* reconciliation rounds in flight */
    uint32_t round_ids;       /* numbers the periodic rounds */
    int again;                /* a reconciliation was asked for while rounds were in flight */
    int baselines_forgotten;  /* cluster changed: the next complete round sets unreported baselines to 0 */
    int baseline_waiting;     /* some session's initial baseline fetch is to be retried */
    int last_status;
    /* Per partition: recon.round_ids when its UUID restarted or its watching
     * connection changed (events may legitimately be missing since). */
    uint32_t *pchange_round;
  } recon;

  /* Counters (counters.c) and histograms (0 agent hop, 1 invalidation lag; metrics.c). */
  struct {
    uint64_t ctr[HZSHM__AC_COUNT_];
    uint64_t ack_us[1024];    /* ack times of our recent writes (invalidation lag) */
    hzshm__hist_t hist[2];
  } stats;

  /* The local socket (server.c). */
  struct {
    uv_pipe_t pipe;
    int bound;                /* the socket path is ours (unlinked on close) */
    lconn_t *conns;
  } srv;

  /* systemd readiness and watchdog (notify.c). */
  struct {
    int ready;
    uv_timer_t watchdog;
    int watchdog_on;
  } notify;

  /* --metrics-listen (metrics.c). */
  struct {
    uv_tcp_t listener;
    int open;
    struct http *conns;
    int nconns;
  } http;
};

#ifdef HZSHM_AGENT_TEST_SEAMS
/* test_seams.c: only in the test-only build hzshm-agent-seams (the
 * variables that turn each seam on are listed there). */
void seam_after_open(void);
int seam_drop_clear(void);
/* A clear-all or DESTROYED event reached s; 1 if the event inv must be ignored: the first
 * registration after a clear-all loses the events of one member
 * (HZSHM_AGENT_TEST_LOSE_RENEWED_KEY). */
void seam_clear_seen(const session_t *s);
int seam_lose(const session_t *s, const hzc_invalidation_t *inv);
/* HZSHM_AGENT_TEST_LOSE_AT_DESTROY=k: 1 if the clear-all inv that g delivered
 * is held (k's owner's on the session's newest registration, until the next
 * registration is acknowledged); 1 if a DESTROYED event is to be ignored. */
int seam_hold_clear(lreg_t *g, const char *map, const hzc_invalidation_t *inv);
int seam_drop_destroyed(void);
/* The session's current registration was acknowledged. */
void seam_registered(session_t *s);
/* 1: invalidation inv is to be ignored, as if lost. */
int seam_drop_inval(const hzc_invalidation_t *inv);
/* 1: the result res of a remote get of key is handled later: cb(ud, copy)
 * runs after HZSHM_AGENT_TEST_FILL_DELAY_MS, or at seam_flush. */
int seam_defer_fill(agent_t *a, const void *key, size_t klen, const hzc_result_t *res,
                    void (*cb)(void *ud, const hzc_result_t *res), void *ud);
/* 1: the acknowledgement res of a write of key is handled later: cb(ud, copy)
 * runs after HZSHM_AGENT_TEST_ACK_DELAY_MS (status and boolean only). */
int seam_defer_ack(agent_t *a, const void *key, size_t klen, const hzc_result_t *res,
                   void (*cb)(void *ud, const hzc_result_t *res), void *ud);
/* At shutdown: every deferred fill completes now, with HZSHM_ESTOPPED. */
void seam_flush(agent_t *a);
/* Health tick: applies HZSHM_AGENT_TEST_BLOCK_FILE's port (network cut). */
void seam_tick(agent_t *a);
#endif

/* log.c: levels are syslog's (hzc's HZC_LOG_* too). log_info is info. */
enum { LVL_ERR = 3, LVL_WARN = 4, LVL_INFO = 6, LVL_DEBUG = 7 };
void log_init(int level);
int log_level_parse(const char *s); /* "error".."debug" -> level, -1 if unknown */
void log_at(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void agent_stop(agent_t *a);
/* Logs one error line, stops the agent; main then exits 1. */
void agent_fatal(agent_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* notify.c: systemd readiness (optional libsystemd). */
void notify_ready(agent_t *a);
void notify_status(agent_t *a, const char *status);
void notify_stopping(agent_t *a); /* also stops the watchdog timer */
void notify_start(agent_t *a);    /* the watchdog timer, if WatchdogSec= */
/* metrics.c */
void metrics_init(agent_t *a);
int metrics_start(agent_t *a); /* 0, or the error (logged as fatal) */
void metrics_close(agent_t *a);
/* opts.c: 0, or -1 after printing which option is wrong; exits on --help/--version. */
int opts_parse(int argc, char **argv, agent_opts_t *o);
int parse_size(const char *s, uint64_t *out);

/* server.c */
int server_start(agent_t *a);
void server_close(agent_t *a);
/* Sends a response frame; dropped if the connection is closed. */
void server_reply(lconn_t *c, uint8_t op, uint32_t reqid, int status, int32_t aux, const void *val,
                  size_t vlen);
void lconn_ref(lconn_t *c);
void lconn_unref(lconn_t *c);

/* requests.c: called by server.c for every well-formed frame. */
void req_dispatch(lconn_t *c, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r);

/* sessions.c */
session_t *session_get(agent_t *a, const char *name, size_t namelen, int create);
/* Ensures the segment has a directory entry for s (s->ref). */
int session_ref(session_t *s);
/* Parks p until the listener is active (registering it if needed), or runs it now (p->run). */
void session_submit(session_t *s, parked_t *p);
/* Session cleared (keep=1) or destroyed (keep=0) in the cluster: hide its
 * entries in the segment, cancel its reservations; keep=0 removes the listener
 * (operations parked on a pending registration wait for a new one). */
void session_purge(session_t *s, int keep);
/* The map may have been destroyed somewhere (a clear-all, a DESTROYED event,
 * a member sequence below our baseline): a destroy drops every listener
 * registration of the map on the members, so ours is retired here (it keeps
 * listening for a clear-all a while, sessions.c) and registered again (at
 * once if operations are parked, else by the next operation; a pending one is
 * renewed once more when it completes), with fresh baselines. Entries and
 * reservations are purged. */
void session_relisten(session_t *s);
void session_idle_check(agent_t *a);
void session_free_all(agent_t *a);
void session_busy(session_t *s, int delta);
/* The registration numbered id if it still listens: s's current one or a retired one; else NULL. */
lreg_t *session_reg_find(agent_t *a, const session_t *s, uint64_t id);
/* The session's initial baselines are set (or could not be): listener active, parked operations run. */
void session_baselined(session_t *s);
void parked_free(parked_t *p);

/* fill.c */
resv_t *resv_get(session_t *s, const void *key, size_t klen, int create);
void resv_maybe_free(resv_t *r);
void fill_request(session_t *s, lconn_t *c, uint32_t reqid, uint8_t op, const void *key, size_t klen);
void resv_cancel_all(session_t *s);
/* Idle check: forgets expected echoes that never came (bounded wait), frees what is left unused. */
void resv_expire(session_t *s, uint64_t now);
/* An own invalidation (our client UUID) of r's key: 1 if it is the echo of a
 * write this agent acknowledged and still expects (skipped), else 0: an
 * unknown write (timed out, applied late) - applied like a foreign one; 0
 * too whenever a failed write of the key is unresolved (unknown). */
int resv_own_echo(resv_t *r);

/* inval.c */
void inval_cb(hzc_client_t *c, const char *map, const hzc_invalidation_t *inv, void *ud);
void inval_object_cb(hzc_client_t *c, const char *service, const char *name, int destroyed,
                     const hzc_uuid_t *source, void *ud);
void inval_reconcile(agent_t *a);
void inval_all_stale(agent_t *a);
/* Marks partition p stale in the segment (entries filled before now are misses) and counts it. */
void inval_mark_stale(agent_t *a, int32_t p);
/* Fetches the initial baselines of s (listener just acknowledged), then session_baselined. */
void inval_baseline(session_t *s);
/* Health tick: retries the initial fetches that found no member list. */
void inval_baseline_retry(agent_t *a);
/* Nonzero when an entry of (session, partition) may be cached: its baseline
 * is known and the partition's owner sends us its events on a connection
 * whose change was already applied (health_watch). */
int inval_cacheable(const session_t *s, uint32_t part);
/* Cluster changed: every baseline and partition UUID is unknown again. */
void inval_forget(agent_t *a);
/* Partition p's UUID restarted or its watching connection changed: events of
 * it may be missing since, so that is no evidence of a lost listener. */
void inval_partition_changed(agent_t *a, uint32_t p);
/* A new registration (or none): the listener-loss evidence of s is void. */
void inval_forget_suspects(session_t *s);

/* health.c */
int health_start(agent_t *a);
void health_close(agent_t *a);
void health_event(hzc_client_t *c, const hzc_event_t *ev, void *ud);
/* Runs a reconciliation within RECON_SOON_MS (then every --reconcile-ms). */
void health_reconcile_soon(agent_t *a);
/* Applies changes of hzc_partition_watch (stale marks, reconciliation). */
void health_watch(agent_t *a);
int health_serving(const agent_t *a); /* 0 or the error to answer with */

/* counters.c: adds delta to counter idx and publishes it in the segment at
 * once (tests and `hzshm stat` see it without waiting for the next tick). */
void counter_add(agent_t *a, unsigned idx, int64_t delta);
void counter_set(agent_t *a, unsigned idx, uint64_t v);
/* Publishes every counter (health tick); the cluster state's too. */
void counters_publish(agent_t *a);
/* A value too large for the segment's slabs was served uncached: counted (and logged the first time). */
void counter_uncacheable(agent_t *a, size_t bytes);
/* Invalidation lag: our write of (map, key) was acknowledged now / its echo arrived now. */
void lag_acked(agent_t *a, const char *map, const void *key, size_t klen);
void lag_echoed(agent_t *a, const char *map, const void *key, size_t klen);

/* The local lifetime of an entry cached now (ms, 0 = no expiry): the write's
 * own TTL when it has one, capped by --max-ttl-ms. The member expires and
 * evicts entries without sending an invalidation (docs/PROTOCOL-NOTES.md,
 * section 5), so the cap bounds how long such an entry can outlive its
 * cluster copy here. ttl_ms as the Store API: -1 map default, 0 infinite. */
uint32_t local_ttl(const agent_t *a, int64_t ttl_ms);

#endif
