/* codec.h - encoders and decoders of the messages hzclient uses, one file
 * per family (codec_client.c, codec_map.c, codec_bulk.c, codec_nc.c).
 * Message layouts follow hazelcast-client-protocol definitions
 * (protocol-definitions/Client.yaml, Map.yaml, custom/Custom.yaml) as
 * restated in hazelcast-client-protocol.md §3; each function cites its entry.
 *
 * Encoders append to a builder (errors are sticky, checked by
 * hzc__mb_finish). Decoders validate every length, count and nesting level
 * and return HZSHM_EPROTO on anything malformed; they tolerate extra trailing
 * bytes and frames (newer protocol versions append fields). Pure functions.
 */
#ifndef HZSHM_HZ_CODEC_H
#define HZSHM_HZ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "hzc.h"

/* Message types (request; response = +1; events = +2, +3 ...). */
enum {
  HZC__MT_ERROR = 0x000000,
  HZC__MT_AUTH = 0x000100,
  HZC__MT_VIEW = 0x000300,
  HZC__MT_VIEW_MEMBERS = 0x000302,
  HZC__MT_VIEW_PARTITIONS = 0x000303,
  HZC__MT_CREATE_PROXY = 0x000400,
  HZC__MT_DESTROY_PROXY = 0x000500,
  HZC__MT_ADD_OBJ_LISTENER = 0x000900,
  HZC__MT_OBJ_EVENT = 0x000902,
  HZC__MT_REMOVE_OBJ_LISTENER = 0x000A00,
  HZC__MT_PING = 0x000B00,
  HZC__MT_TRIGGER_PARTITIONS = 0x001000,
  HZC__MT_MAP_PUT = 0x010100,
  HZC__MT_MAP_GET = 0x010200,
  HZC__MT_MAP_REMOVE = 0x010300,
  HZC__MT_MAP_CONTAINS = 0x010600,
  HZC__MT_MAP_DELETE = 0x010900,
  HZC__MT_MAP_SET = 0x010F00,
  HZC__MT_MAP_REMOVE_LISTENER = 0x011A00,
  HZC__MT_MAP_GET_ALL = 0x012300,
  HZC__MT_MAP_SIZE = 0x012A00,
  HZC__MT_MAP_PUT_ALL = 0x012C00,
  HZC__MT_MAP_CLEAR = 0x012D00,
  HZC__MT_MAP_FETCH_META = 0x013D00,
  HZC__MT_MAP_ADD_NC_LISTENER = 0x013F00,
  HZC__MT_MAP_INVALIDATION = 0x013F02,
  HZC__MT_MAP_BATCH_INVALIDATION = 0x013F03,
};
#define HZC__MAP_SERVICE "hz:impl:mapService"
#define HZC__HOST_MAX 256

/* ---- codec_client.c ---- */
typedef struct {
  uint8_t status;
  hzc_uuid_t member;
  uint8_t serialization_version;
  int32_t partition_count;
  hzc_uuid_t cluster_id;
  int failover_supported;
  int has_versions; /* 2.7 fields present */
  int32_t member_list_version, partition_list_version;
  char host[HZC__HOST_MAX];
  int32_t port;
  char server_version[64];
  size_t trailing_frames; /* frames after serverHazelcastVersion (2.7+: tpc, memberInfos, partitions, ...) */
} hzc__auth_resp_t;

void hzc__enc_auth(hzc__mb_t *b, const char *cluster, const hzc_uuid_t *uuid, const char *client_name);
int hzc__dec_auth(const hzc__msg_t *m, hzc__auth_resp_t *out);

/* Error response (type 0): the first ErrorHolder. cls/message are copied,
 * NUL-terminated and truncated to their buffers. */
int hzc__dec_error(const hzc__msg_t *m, int32_t *code, char *cls, size_t clen, char *msg, size_t mlen);

typedef struct {
  hzc_uuid_t uuid;
  int lite;
  char host[HZC__HOST_MAX];
  int32_t port;
} hzc__member_info_t;
void hzc__enc_view(hzc__mb_t *b);
/* MembersView event: *out is a malloc'd array of *n members. */
int hzc__dec_members_view(const hzc__msg_t *m, int32_t *version, hzc__member_info_t **out, size_t *n);
/* PartitionsView event: calls cb(owner, partition) for every entry; returns
 * the first non-zero cb value, or EPROTO. */
typedef int (*hzc__part_cb)(void *ud, const hzc_uuid_t *owner, int32_t partition);
int hzc__dec_partitions_view(const hzc__msg_t *m, int32_t *version, hzc__part_cb cb, void *ud);

void hzc__enc_ping(hzc__mb_t *b);
void hzc__enc_trigger_partitions(hzc__mb_t *b);
void hzc__enc_proxy(hzc__mb_t *b, int32_t type, const char *name, const char *service);
void hzc__enc_add_obj_listener(hzc__mb_t *b, int local_only);
void hzc__enc_remove_obj_listener(hzc__mb_t *b, const hzc_uuid_t *reg);
/* DistributedObject event; name/service/type copied NUL-terminated. */
int hzc__dec_obj_event(const hzc__msg_t *m, hzc_uuid_t *source, char *name, size_t nlen, char *service,
                         size_t slen, int *destroyed);
/* Responses with one fixed field at offset 13. */
int hzc__dec_resp_uuid(const hzc__msg_t *m, hzc_uuid_t *u);
/* bool @13; *present = 0 if the frame is too short (old Map.Delete). */
int hzc__dec_resp_bool(const hzc__msg_t *m, int *v, int *present);
int hzc__dec_resp_i32(const hzc__msg_t *m, int32_t *v);
/* Copies a String frame into buf (NUL-terminated); EPROTO if it does not fit. */
int hzc__dec_string(hzc__cur_t *c, char *buf, size_t cap);

/* ---- codec_map.c ---- */
void hzc__enc_map_key(hzc__mb_t *b, int32_t type, int32_t pid, const char *name, const void *key, size_t klen);
void hzc__enc_map_put(hzc__mb_t *b, int32_t type, int32_t pid, const char *name, const void *key, size_t klen,
                        const void *val, size_t vlen, int64_t ttl_ms);
/* The same with the value's serializer type id (HZC__TYPE_BYTES / HZC__TYPE_STRING). */
void hzshm__enc_map_put_typed(hzc__mb_t *b, int32_t type, int32_t pid, const char *name, const void *key,
                              size_t klen, int32_t vtype_id, const void *val, size_t vlen, int64_t ttl_ms);
void hzc__enc_map_name(hzc__mb_t *b, int32_t type, const char *name);
/* Response whose first frame after the initial one is a nullable Data. */
int hzc__dec_resp_data(const hzc__msg_t *m, hzc_value_t *v);

/* ---- codec_bulk.c ---- */
void hzc__enc_get_all(hzc__mb_t *b, int32_t pid, const char *name, const hzc_kv_t *keys, const size_t *idx,
                        size_t n);
void hzc__enc_put_all(hzc__mb_t *b, int32_t pid, const char *name, const hzc_kv_t *kvs, const size_t *idx,
                        size_t n);
/* EntryList_Data_Data: cb(key Data value, value) per entry. */
typedef int (*hzc__entry_cb)(void *ud, const hzc_value_t *key, const hzc_value_t *val);
int hzc__dec_get_all(const hzc__msg_t *m, hzc__entry_cb cb, void *ud);

/* ---- codec_nc.c ---- */
void hzc__enc_add_nc_listener(hzc__mb_t *b, const char *name, int local_only);
void hzc__enc_remove_entry_listener(hzc__mb_t *b, const char *name, const hzc_uuid_t *reg);
typedef struct {
  const uint8_t *key; /* Data bytes, NULL = clear all */
  size_t klen;
  hzc_uuid_t source, partition_uuid;
  int64_t sequence;
  int32_t partition; /* header partition id (single events only; -1 in batches) */
} hzc__inv_t;
typedef int (*hzc__inv_cb)(void *ud, const hzc__inv_t *inv);
/* IMapInvalidation or IMapBatchInvalidation event; cb once per key. */
int hzc__dec_invalidation(const hzc__msg_t *m, hzc__inv_cb cb, void *ud);
void hzc__enc_fetch_meta(hzc__mb_t *b, const char *const *names, size_t n, const hzc_uuid_t *member);
typedef int (*hzc__meta_seq_cb)(void *ud, const char *map, int32_t partition, int64_t seq);
typedef int (*hzc__meta_uuid_cb)(void *ud, int32_t partition, const hzc_uuid_t *uuid);
int hzc__dec_fetch_meta(const hzc__msg_t *m, hzc__meta_seq_cb scb, hzc__meta_uuid_cb ucb, void *ud);

#endif /* HZSHM_HZ_CODEC_H */
