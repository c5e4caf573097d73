/* hzc_int.h - private structures of hzclient shared by conn.c, invoke.c,
 * cluster.c, listen.c, map.c and client.c.
 *
 * Concurrency: none. Every structure here belongs to the loop thread of its
 * client (hzc.h: every function and callback runs on that thread), so no
 * atomics or locks are used anywhere in src/hz.
 *
 * Ownership (libuv rules): every uv handle is closed with uv_close and its
 * memory freed in the close callback; the client is freed once its handle
 * count drops to zero after hzc_client_close.
 */
#ifndef HZSHM_HZ_INT_H
#define HZSHM_HZ_INT_H

#include <stdint.h>
#include <uv.h>

#include "codec.h"
#include "frame.h"
#include "hzc.h"

typedef struct hzc__conn hzc__conn_t;
typedef struct hzc__call hzc__call_t;
typedef struct hzc__member hzc__member_t;

/* ---- conn.c: one TCP connection to a member ---- */
enum { HZC__CONN_CONNECTING = 1, HZC__CONN_AUTH, HZC__CONN_READY, HZC__CONN_CLOSING };
struct hzc__conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_getaddrinfo_t gai; /* resolution of host before the connect (addr.c) */
  int resolving;       /* gai in flight: the conn is freed only after its callback */
  int tcp_closed;      /* the tcp handle's close callback ran */
  char ip[64];         /* the address connected to (numeric), for log lines */
  hzc_client_t *cl;
  hzc__conn_t *next; /* client's connection list */
  int state;
  int id;              /* for log lines */
  char host[HZC__HOST_MAX];
  int port;
  hzc_uuid_t member;   /* valid once READY */
  hzc__fdec_t dec;
  uint64_t connect_deadline, last_read, last_write;
  int64_t requests;
  int close_err;
  int was_ready;       /* it was READY when it closed */
  int bootstrap;       /* opened to a seed / known address, not for a listed member */
  int relisten_pending;/* registrations that must be acknowledged before it counts as delivering every
                          listener's events: re-sent when it became READY, or refused and waiting to be retried */
  int doomed;          /* a write failed: closed (with this error) by the next tick, never inside a send */
};
int hzc__conn_open(hzc_client_t *c, const char *host, int port, hzc__conn_t **out);
/* Queues bytes for writing (copied). On failure the connection is doomed:
 * closed by the next tick (hzc__conn_close_doomed), not synchronously, so
 * no caller in the middle of a send sees its calls and listeners torn down. */
int hzc__conn_write(hzc__conn_t *k, const void *p, size_t n);
/* Closes with a reason (logged); calls/listeners bound to it are handled by
 * hzc__cluster_conn_closed. Idempotent. */
void hzc__conn_close(hzc__conn_t *k, int err, const char *reason);
/* Closes every connection whose write failed (tick). */
void hzc__conn_close_doomed(hzc_client_t *c);
void hzc__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3))); /* HZC_LOG_* */
const char *hzc__errtext(int err); /* hzshm_errno.h or libuv text */

/* ---- addr.c: last outcome per address (one log line per change) ---- */
typedef struct {
  char host[HZC__HOST_MAX];
  int port;
  int err;            /* 0 connected, 1 never tried, else the last error */
  unsigned attempts;  /* picks the next of the resolved addresses */
} hzc__astate_t;
/* Logs (once) that host:port's outcome became err (0 = connected). */
void hzc__addr_note(hzc_client_t *c, const char *host, int port, const char *ip, int err, const char *what);
/* A counter per address, incremented per attempt. */
unsigned hzc__addr_attempt(hzc_client_t *c, const char *host, int port);
void hzc__uuid_str(const hzc_uuid_t *u, char out[37]);

/* ---- invoke.c: correlation ids, timeouts, retries ---- */
enum { HZC__CALL_WAIT = 1, HZC__CALL_SENT, HZC__CALL_LISTENING };
typedef void (*hzc__call_done_fn)(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m, int status);
typedef void (*hzc__call_event_fn)(hzc_client_t *c, hzc__call_t *k, const hzc__msg_t *m);
struct hzc__call {
  hzc__call_t *hnext; /* pending-table chain */
  int64_t corr;
  uint8_t *msg;         /* encoded request, owned */
  size_t len;
  int32_t pid;          /* partition for routing, -1 none */
  int keyed;            /* pid = partition of khash, computed at send time */
  uint32_t pcount;      /* the partition count when made: a fixed pid (bulk part) means that count's partition */
  int32_t khash;
  int retryable;        /* Client.yaml/Map.yaml retryable flag */
  int listener;         /* stays in the table after its response; receives events */
  hzc__conn_t *pin;   /* must go on this connection only (auth, ping, per-connection listeners) */
  hzc__conn_t *conn;  /* connection it was last sent on */
  int has_target;       /* prefer the connection of member `target` */
  hzc_uuid_t target;
  int state;
  uint64_t deadline, retry_at;
  uint32_t attempts;
  int busy, dead;       /* inside a listener callback / dropped meanwhile */
  hzc__call_done_fn done;
  hzc__call_event_fn event;
  /* owner data */
  int kind;
  void *owner;          /* listener, bulk parent, ... */
  void *owner2;
  hzc_result_cb cb;
  void *ud;
};
/* Creates a call owning the finished builder's bytes (the builder is emptied). */
hzc__call_t *hzc__call_new(hzc_client_t *c, hzc__mb_t *b, int32_t pid, int retryable, hzc__call_done_fn done);
/* Assigns a correlation id, enters the table and sends (or waits for a
 * connection). Returns 0; on failure frees the call and returns the error. */
int hzc__call_submit(hzc_client_t *c, hzc__call_t *k);
/* Removes from the table and frees (no callback). */
void hzc__call_drop(hzc_client_t *c, hzc__call_t *k);
/* Dispatches a message read from k's connection. */
void hzc__invoke_on_message(hzc_client_t *c, hzc__conn_t *k, const hzc__msg_t *m);
/* Connection closed: fail / reschedule the calls bound to it. */
void hzc__invoke_conn_closed(hzc_client_t *c, hzc__conn_t *k);
/* Timeouts and due retries; sends waiting calls when connections exist. */
void hzc__invoke_tick(hzc_client_t *c, uint64_t now);
void hzc__invoke_flush_waiting(hzc_client_t *c);
/* Fails every call with err (client close). */
void hzc__invoke_fail_all(hzc_client_t *c, int err);
/* Fills an error result from an error message. */
typedef struct {
  int32_t code;
  char cls[256];
  char msg[512];
} hzc__remote_err_t;

/* ---- cluster.c: members, partitions, connections, reconnect ---- */
struct hzc__member {
  hzc_uuid_t uuid;
  char host[HZC__HOST_MAX];
  int port;
  int lite;
  hzc__conn_t *conn;       /* READY connection, or NULL */
  hzc__conn_t *connecting; /* connection attempt in progress */
  uint64_t next_attempt;
  int64_t requests;
};
void hzc__cluster_tick(hzc_client_t *c, uint64_t now);
void hzc__cluster_start(hzc_client_t *c);
void hzc__cluster_conn_closed(hzc_client_t *c, hzc__conn_t *k);
void hzc__cluster_conn_connected(hzc_client_t *c, hzc__conn_t *k); /* TCP up: send preamble + auth */
/* Connection for a request: pin > target member > partition owner > any ready. */
hzc__conn_t *hzc__cluster_route(hzc_client_t *c, const hzc__call_t *k);
hzc__member_t *hzc__cluster_member_of(hzc_client_t *c, hzc__conn_t *k);
void hzc__emit(hzc_client_t *c, enum hzc_event_kind kind, const hzc_uuid_t *member);

/* ---- listen.c ---- */
void hzc__listen_conn_ready(hzc_client_t *c, hzc__conn_t *k);
void hzc__listen_conn_closed(hzc_client_t *c, hzc__conn_t *k);
void hzc__listen_tick(hzc_client_t *c, uint64_t now);
void hzc__listen_free_all(hzc_client_t *c);

/* ---- client.c: deferred completions, final free ---- */
void hzc__defer(hzc_client_t *c, hzc_result_cb cb, void *ud, int status);
/* Frees the client once its last handle closed, then runs the close callback. */
void hzc__client_finalize(hzc_client_t *c);

#define HZC__TABLE_BUCKETS 4096u

struct hzc_client {
  uv_loop_t *loop;
  uv_timer_t tick;
  uv_timer_t defer_timer;
  int handles;              /* open uv handles (timers + connections) */
  int closing;
  hzc_close_cb close_cb;
  void *close_ud;
  /* config (strings owned) */
  char *cluster_name, *client_name;
  char **seeds;
  size_t nseeds;
  int smart;
  uint32_t invocation_timeout_ms, heartbeat_interval_ms, heartbeat_timeout_ms, connect_timeout_ms,
      reconnect_max_backoff_ms;
  uint64_t last_heard; /* uv_now of the last bytes read from any member (hzc_silence_ms) */
  uint32_t watch_silence_ms;
  hzc_uuid_t uuid;
  hzc_event_cb event_cb;
  void *event_ud;
  /* connect status */
  hzc_status_cb connect_cb;
  void *connect_ud;
  int started;
  int ever_connected;       /* a cluster id is known */
  int connected;            /* at least one READY connection */
  int auth_failed;
  hzc_uuid_t cluster_id;
  uint32_t cluster_parts;   /* the partition count of the last join: with cluster_id, what a rejoin is compared to */
  /* connections */
  hzc__conn_t *conns;
  int next_conn_id;
  int blocked_port;         /* fault injection (hzc_test_block_port): 0 = none */
  size_t regs_waiting;      /* listen.c: registrations waiting for a retry (an upper bound) */
  int partitions_fresh;     /* a PartitionsView arrived since the last (re)connect */
  uint64_t reconnect_at;
  uint32_t backoff_ms;
  size_t seed_rr;
  hzc__astate_t *astates; /* addr.c */
  size_t nastates, castates;
  /* members and partitions */
  hzc__member_t *members;
  size_t nmembers;
  int32_t members_version;
  int members_seen;         /* a MembersView arrived since the last (re)connect */
  uint32_t partition_count;
  hzc_uuid_t *powner;       /* owner uuid per partition (powner and pmember: both or neither) */
  int32_t *pmember;         /* index into members, -1 unknown */
  int32_t partitions_version;
  hzc__call_t *view_call; /* cluster-view listener registration */
  size_t rr;
  /* invocations */
  hzc__call_t *table[HZC__TABLE_BUCKETS];
  size_t ncalls;
  int64_t next_corr;
  /* listeners */
  hzc_listener_t *listeners;
  /* deferred completions */
  struct hzc__deferred *deferred;
  /* stats */
  hzc_stats_t st;
  uint8_t rbuf[64 * 1024];
};

#endif /* HZSHM_HZ_INT_H */
