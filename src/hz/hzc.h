/* hzc.h - hzclient: our C client of the Hazelcast Open Binary Client Protocol
 * 2.x, on a libuv loop. Used by hzshm-agent and, on its own, as the "direct
 * Hazelcast" baseline in benchmarks.
 *
 * Stability: the agent is written against this header. Adding functions is
 * fine; changing the meaning of one below needs the agent updated.
 *
 * Threading: every function must be called on the loop thread the client was
 * created on; every callback runs on that thread. No function blocks.
 * Errors: 0 or a negative code from hzshm_errno.h (HZSHM_ETIMEDOUT,
 * HZSHM_EREMOTE, HZSHM_ECLOSED, HZSHM_EPROTO, HZSHM_EAUTH, ...) or -errno.
 *
 * Keys are Hazelcast Strings and values byte[] in the official clients'
 * serialization (byte-compatible: the Java/Python/Node clients read what we
 * write and we read what they write). Keys/values are passed as raw bytes:
 * a key is the UTF-8 of the String, a value the bytes of the byte[].
 */
#ifndef HZSHM_HZC_H
#define HZSHM_HZC_H

#include <stddef.h>
#include <stdint.h>

#include "hzshm_errno.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hzc_client hzc_client_t;
/* libuv's loop (uv_loop_t), declared here so that the protocol-only part of
 * this module (hzcodec: frames and codecs) needs neither uv.h nor libuv; code
 * that drives a client includes <uv.h> itself. */
struct uv_loop_s;

typedef struct {
  uint8_t b[16]; /* most significant byte first (as printed) */
} hzc_uuid_t;

typedef struct {
  const char *cluster_name;      /* NULL = "dev" */
  const char *const *addrs;      /* seeds: host[:port], [ipv6][:port] (hzc_parse_address) */
  size_t naddrs;
  int smart;                     /* 1 = a connection per member, key ops to the owner (default) */
  uint32_t invocation_timeout_ms;/* 0 = 120000 */
  uint32_t heartbeat_interval_ms;/* 0 = 5000 */
  uint32_t heartbeat_timeout_ms; /* 0 = 60000 */
  uint32_t connect_timeout_ms;   /* 0 = 5000 */
  uint32_t reconnect_max_backoff_ms; /* 0 = 2000 */
  const char *client_name;       /* NULL = "hzshm" */
  uint32_t watch_silence_ms;     /* 0 = off; else hzc_partition_watch reports 0 for the partitions of a
                                    connection that read nothing for this long (see there) */
} hzc_config_t;

/* Cluster-level events for the user of the library. */
enum hzc_event_kind {
  HZC_EV_CONNECTED = 1,      /* first connection to a cluster authenticated */
  HZC_EV_DISCONNECTED,       /* lost every connection; reconnecting with backoff */
  HZC_EV_RECONNECTED,        /* connected again to the SAME cluster id and partition count */
  HZC_EV_CLUSTER_CHANGED,    /* connected to a DIFFERENT cluster id, or the same id with another
                                partition count: clear caches */
  HZC_EV_MEMBERS,            /* member list changed */
  HZC_EV_PARTITIONS,         /* partition table changed */
  HZC_EV_MEMBER_CONNECTION_LOST, /* a member connection closed; `member` says which */
  HZC_EV_MEMBER_CONNECTED,   /* a member connection authenticated (the first one too, after
                                CONNECTED/RECONNECTED); `member` says which */
  HZC_EV_LISTENING,          /* a connection's listener re-registrations were all acknowledged */
  HZC_EV_AUTH_FAILED,        /* a member refused our authentication (cluster name): no more retries */
};
typedef struct {
  enum hzc_event_kind kind;
  hzc_uuid_t cluster_id;
  hzc_uuid_t member;             /* for MEMBER_CONNECTION_LOST / MEMBER_CONNECTED */
  uint32_t member_count;
} hzc_event_t;
typedef void (*hzc_event_cb)(hzc_client_t *c, const hzc_event_t *ev, void *ud);

/* Parses a member address as operators write it: "host", "host:port",
 * "[ipv6]", "[ipv6]:port", or a bare IPv6 literal (no port); the port
 * defaults to 5701. Host names are resolved asynchronously (uv_getaddrinfo)
 * on every connection attempt. 0 or HZSHM_EINVAL (empty host, bad port,
 * unbalanced brackets, host longer than cap - 1). */
int hzc_parse_address(const char *s, char *host, size_t cap, int *port);

/* Log lines of every client of the process go to cb (NULL: stderr, "hzc: "
 * prefix, info and more severe). Levels are syslog's. Call before creating
 * clients. A failure to resolve or connect an address is logged once per
 * change of its outcome, not once per retry. */
enum { HZC_LOG_ERR = 3, HZC_LOG_WARNING = 4, HZC_LOG_INFO = 6, HZC_LOG_DEBUG = 7 };
typedef void (*hzc_log_cb)(int level, const char *line, void *ud);
void hzc_set_log(hzc_log_cb cb, void *ud);

/* HZSHM_EINVAL when an address does not parse (hzc_parse_address). */
int hzc_client_new(struct uv_loop_s *loop, const hzc_config_t *cfg, hzc_client_t **out);
void hzc_client_set_event_cb(hzc_client_t *c, hzc_event_cb cb, void *ud);
/* Starts connecting; cb(status) once the first member authenticated and the
 * cluster view arrived, or with an error (the client keeps retrying until
 * hzc_client_close unless the error is HZSHM_EAUTH). */
typedef void (*hzc_status_cb)(hzc_client_t *c, int status, void *ud);
int hzc_client_connect(hzc_client_t *c, hzc_status_cb cb, void *ud);
/* Fails every pending invocation with HZSHM_ECLOSED, closes all handles; cb
 * runs when every libuv handle is closed and the client freed. */
typedef void (*hzc_close_cb)(void *ud);
void hzc_client_close(hzc_client_t *c, hzc_close_cb cb, void *ud);

hzc_uuid_t hzc_client_uuid(const hzc_client_t *c);   /* our client UUID */
hzc_uuid_t hzc_cluster_id(const hzc_client_t *c);
uint32_t hzc_partition_count(const hzc_client_t *c); /* 0 before connected and after a join that failed */
/* Partition of a String key (UTF-8 bytes), as the member computes it. */
uint32_t hzc_key_partition(const hzc_client_t *c, const void *key, size_t klen);
int hzc_connected(const hzc_client_t *c);            /* 1 if at least one member connection */
/* Milliseconds since bytes were last read from any member (0 before the
 * first). A connection silent for heartbeat_timeout_ms is closed; a user that
 * bounds how long it trusts the cluster's silence measures from this. */
uint64_t hzc_silence_ms(const hzc_client_t *c);

/* ---- results ---- */

enum hzc_value_type { HZC_NULL = 0, HZC_BYTES = 1, HZC_STRING = 2, HZC_OTHER = 3 };
/* Hazelcast serializer type ids of the two value types hzshm caches. */
enum { HZC_TYPE_ID_BYTES = -12, HZC_TYPE_ID_STRING = -11 };
typedef struct {
  int type;              /* hzc_value_type; HZC_NULL = absent */
  int32_t type_id;       /* Hazelcast serializer type id (-12 byte[], -11 String, ...) */
  const uint8_t *data;   /* payload (byte[] bytes or String UTF-8); valid only during the callback */
  size_t len;
} hzc_value_t;

typedef struct {
  int status;            /* 0 or error */
  hzc_value_t value;     /* get/put/remove: the (old) value */
  int boolean;           /* containsKey / delete / remove-listener */
  int64_t number;        /* size */
  const char *error_class;   /* HZSHM_EREMOTE: Java exception class (valid during cb) */
  const char *error_message; /* may be NULL */
  int32_t error_code;        /* Hazelcast error code */
} hzc_result_t;
typedef void (*hzc_result_cb)(hzc_client_t *c, const hzc_result_t *r, void *ud);

/* ---- IMap (name = map name; key = String UTF-8 bytes; value = byte[]) ---- */
int hzc_map_get(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud);
int hzc_map_contains(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud);
/* ttl_ms: -1 = map default, 0 = infinite, > 0 = milliseconds */
int hzc_map_set(hzc_client_t *c, const char *map, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms, hzc_result_cb cb, void *ud);
int hzc_map_put(hzc_client_t *c, const char *map, const void *key, size_t klen, const void *val, size_t vlen,
                int64_t ttl_ms, hzc_result_cb cb, void *ud);
/* hzc_map_set with the value's type: HZC_BYTES (byte[]) or HZC_STRING (val =
 * UTF-8, checked: HZSHM_EINVAL if invalid); any other vtype: HZSHM_EINVAL. */
int hzc_map_set_typed(hzc_client_t *c, const char *map, const void *key, size_t klen, int vtype, const void *val,
                      size_t vlen, int64_t ttl_ms, hzc_result_cb cb, void *ud);
int hzc_map_remove(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud);
int hzc_map_delete(hzc_client_t *c, const char *map, const void *key, size_t klen, hzc_result_cb cb, void *ud);
int hzc_map_clear(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud);
int hzc_map_size(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud);
/* Creates the IMap proxy cluster-wide (Client.CreateProxy), as the official
 * clients do on getMap(): maps work without it, but a member publishes
 * distributed-object events (CREATED, and DESTROYED on a later destroy) only
 * for names that have a proxy. */
int hzc_map_create(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud);
/* Destroys the IMap cluster-wide (Client.DestroyProxy). */
int hzc_map_destroy(hzc_client_t *c, const char *map, hzc_result_cb cb, void *ud);

/* Bulk: keys grouped by partition internally, one request per partition.
 * Before the first connection (partition count unknown) they return
 * HZSHM_EDISCONNECTED; n == 0 completes (later) with status 0. A part not
 * yet sent (or to be retried) when a (re)join brings another partition count
 * is never sent: the call completes with HZSHM_ECLUSTER (the other parts may
 * have been applied). */
typedef struct { const void *key; size_t klen; const void *val; size_t vlen; } hzc_kv_t;
/* cb is called once per found entry (entry_cb) then once with the final status. */
typedef void (*hzc_entry_cb)(hzc_client_t *c, const void *key, size_t klen, const hzc_value_t *v, void *ud);
int hzc_map_get_all(hzc_client_t *c, const char *map, const hzc_kv_t *keys, size_t n, hzc_entry_cb ecb,
                    hzc_result_cb cb, void *ud);
int hzc_map_put_all(hzc_client_t *c, const char *map, const hzc_kv_t *kvs, size_t n, hzc_result_cb cb, void *ud);

/* ---- near-cache invalidation ---- */

typedef struct {
  const void *key;       /* String key UTF-8; NULL = the whole map was cleared */
  size_t klen;
  int key_is_string;     /* 0: the key had another type (key/klen = raw Data bytes) */
  hzc_uuid_t source;     /* who caused it (compare with hzc_client_uuid) */
  hzc_uuid_t partition_uuid;
  int64_t sequence;
  int32_t partition;     /* partition of the key (of the map name for a clear) */
  hzc_uuid_t member;     /* member connection it arrived on */
} hzc_invalidation_t;
/* Called once per invalidation (batch events are unrolled). */
typedef void (*hzc_invalidation_cb)(hzc_client_t *c, const char *map, const hzc_invalidation_t *inv, void *ud);

typedef struct hzc_listener hzc_listener_t;
/* Registers Map.AddNearCacheInvalidationListener on every member connection
 * (smart: localOnly=true), and again on every new connection and after a
 * reconnect. cb(status) once, when every member connected at the call has
 * answered: 0 if at least one acknowledged. A registration refused (or timed
 * out) on a connection that stays up is re-sent there with backoff, also
 * after an error status, until acknowledged or the listener is removed;
 * meanwhile hzc_partition_watch is 0 for that connection's partitions. A
 * caller that gets an error and does not remove the listener learns of its
 * later success only through hzc_partition_watch. */
int hzc_map_listen_invalidations(hzc_client_t *c, const char *map, hzc_invalidation_cb icb, void *iud,
                                 hzc_status_cb cb, void *ud, hzc_listener_t **out);
/* Deregisters everywhere and frees the listener (no callbacks after this returns). */
int hzc_listener_remove(hzc_client_t *c, hzc_listener_t *l);

/* Distributed-object events (map created / destroyed anywhere). */
typedef void (*hzc_object_cb)(hzc_client_t *c, const char *service, const char *name, int destroyed,
                              const hzc_uuid_t *source, void *ud);
int hzc_listen_objects(hzc_client_t *c, hzc_object_cb ocb, void *oud, hzc_status_cb cb, void *ud,
                       hzc_listener_t **out);

/* Invalidation metadata from every data member for the given maps:
 * mcb is called per (map, partition, sequence) and per (partition, uuid), then
 * cb with the final status. */
typedef void (*hzc_meta_seq_cb)(hzc_client_t *c, const char *map, int32_t partition, int64_t seq, void *ud);
typedef void (*hzc_meta_uuid_cb)(hzc_client_t *c, int32_t partition, const hzc_uuid_t *uuid, void *ud);
/* Returns HZSHM_EDISCONNECTED while no member list is known. */
int hzc_fetch_invalidation_metadata(hzc_client_t *c, const char *const *maps, size_t nmaps, hzc_meta_seq_cb scb,
                                    hzc_meta_uuid_cb ucb, hzc_result_cb cb, void *ud);

/* ---- statistics (tests, benchmarks) ---- */
typedef struct {
  uint32_t connections;
  uint64_t requests_sent, responses, events, retries, timeouts, reconnects;
} hzc_stats_t;
void hzc_client_stats(const hzc_client_t *c, hzc_stats_t *st);
/* Index (in the current member list) of the owner of partition p, or -1 if
 * unknown (routing tests). */
int32_t hzc_partition_owner(const hzc_client_t *c, uint32_t p);
uint32_t hzc_member_count(const hzc_client_t *c);
/* Which connection brings us the invalidations of partition p: the id (> 0)
 * of the connection to p's current owner (smart: by the partition table,
 * which must have been received since the last (re)connect; unisocket: the
 * one connection), provided every registration re-sent on it when it became
 * READY was acknowledged and no refused registration waits there for its
 * retry; 0 otherwise (owner unknown, not connected, registrations pending).
 * Registrations of listeners added later are not counted: their own status
 * callback says when they are active. The id changes whenever the owner or
 * its connection changes: a near cache must treat any change as "events may
 * have been missed" and cache nothing of p while it is 0. The owner is as
 * the last PartitionsView says: between a migration and that view, events
 * may come from the new owner before we know it; the sequence metadata
 * (reconciliation) covers that window. With watch_silence_ms set, a
 * connection that read nothing for that long (a silent or black-holed
 * member: Pings every heartbeat_interval_ms normally keep it talking) also
 * reports 0 until bytes arrive again; the connection itself stays open until
 * heartbeat_timeout_ms, so operations in flight are not failed by a pause. */
int hzc_partition_watch(const hzc_client_t *c, uint32_t p);
/* Requests sent on the connection to member index i of the current member list
 * (for routing tests); returns -1 if out of range. */
int64_t hzc_member_requests(const hzc_client_t *c, uint32_t i);

/* Blocking helper for tools, tests and benchmarks only (not the agent): runs
 * the loop until *done becomes non-zero or timeout_ms elapses. */
int hzc_run_until(struct uv_loop_s *loop, const int *done, uint32_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* HZSHM_HZC_H */
