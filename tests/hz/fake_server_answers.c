/* fake_server_answers.c - frame building and the fake member's well-formed
 * answers: Authentication, the cluster view, and plausible empty results for
 * map operations. Layouts follow /work/shared/docs/hazelcast-client-protocol.md
 * §3 as checked against Hazelcast 5.5.0 (docs/PROTOCOL-NOTES.md).
 */
#include "fake_server.h"

#include <stdlib.h>
#include <string.h>

int32_t hzshm__fs_partition_count = 271;
uint16_t hzshm__fs_port;
int hzshm__fs_new_cluster_id;   /* --new-cluster-id: every connection sees another cluster id */
int32_t hzshm__fs_cluster_id = 2; /* --cluster-id N: byte 14 of the cluster id */
static uint8_t cluster_generation; /* bumped per authenticated connection when the flag is set */
int32_t hzshm__fs_error_code = 39; /* PartitionMigrating: retryable */

/* Fixed identities: tests may compare them (printed by `fake_server --list`). */
static const uint8_t member_uuid[16] = {0xfa, 0xce, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1};
static uint8_t cluster_uuid[16] = {0xfa, 0xce, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 2};

void hzshm__fs_put(fs_buf_t *b, const void *data, size_t n) {
  if (b->oom) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n > 0) memcpy(b->p + b->len, data, n);
  b->len += n;
}

void hzshm__fs_u8(fs_buf_t *b, uint8_t v) { hzshm__fs_put(b, &v, 1); }

void hzshm__fs_le16(fs_buf_t *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
  hzshm__fs_put(b, x, 2);
}

void hzshm__fs_le32(fs_buf_t *b, uint32_t v) {
  uint8_t x[4];
  for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
  hzshm__fs_put(b, x, 4);
}

void hzshm__fs_le64(fs_buf_t *b, uint64_t v) {
  uint8_t x[8];
  for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
  hzshm__fs_put(b, x, 8);
}

void hzshm__fs_frame(fs_buf_t *b, uint16_t flags, const void *content, size_t n) {
  hzshm__fs_le32(b, (uint32_t)(6 + n));
  hzshm__fs_le16(b, flags);
  hzshm__fs_put(b, content, n);
}

size_t hzshm__fs_frame_start(fs_buf_t *b, uint16_t flags) {
  size_t start = b->len;
  hzshm__fs_le32(b, 0);
  hzshm__fs_le16(b, flags);
  return start;
}

void hzshm__fs_frame_end(fs_buf_t *b, size_t start) {
  if (b->oom) return;
  uint32_t n = (uint32_t)(b->len - start);
  for (int i = 0; i < 4; i++) b->p[start + (size_t)i] = (uint8_t)(n >> (8 * i));
}

void hzshm__fs_final(fs_buf_t *b, size_t start) {
  if (b->oom) return;
  b->p[start + 5] |= (uint8_t)(FS_FINAL >> 8);
}

size_t hzshm__fs_response_start(fs_buf_t *b, uint32_t type, int64_t corr) {
  size_t start = hzshm__fs_frame_start(b, FS_UNFRAGMENTED);
  hzshm__fs_le32(b, type);
  hzshm__fs_le64(b, (uint64_t)corr);
  hzshm__fs_u8(b, 0); /* backup acks */
  return start;
}

/* UUID: isNull byte, then msb and lsb as little-endian int64 (§1.5). */
static void put_uuid(fs_buf_t *b, const uint8_t u[16]) {
  hzshm__fs_u8(b, 0);
  for (int half = 0; half < 2; half++)
    for (int i = 7; i >= 0; i--) hzshm__fs_u8(b, u[half * 8 + i]);
}

static void put_string(fs_buf_t *b, const char *s) { hzshm__fs_frame(b, 0, s, strlen(s)); }
static void put_empty(fs_buf_t *b, uint16_t flags) { hzshm__fs_frame(b, flags, NULL, 0); }

static void put_address(fs_buf_t *b) {
  put_empty(b, FS_BEGIN_DS);
  size_t f = hzshm__fs_frame_start(b, 0);
  hzshm__fs_le32(b, hzshm__fs_port);
  hzshm__fs_frame_end(b, f);
  put_string(b, "127.0.0.1");
  put_empty(b, FS_END_DS);
}

/* List_MemberInfo with this one member (§1.5 MemberInfo). */
static void put_member_infos(fs_buf_t *b) {
  put_empty(b, FS_BEGIN_DS);
  put_empty(b, FS_BEGIN_DS);
  size_t f = hzshm__fs_frame_start(b, 0);
  put_uuid(b, member_uuid);
  hzshm__fs_u8(b, 0); /* liteMember */
  hzshm__fs_frame_end(b, f);
  put_address(b);
  put_empty(b, FS_BEGIN_DS); /* attributes: empty map */
  put_empty(b, FS_END_DS);
  put_empty(b, FS_BEGIN_DS); /* version 5.5.0 */
  hzshm__fs_frame(b, 0, "\x05\x05\x00", 3);
  put_empty(b, FS_END_DS);
  put_empty(b, FS_BEGIN_DS); /* addressMap: empty */
  put_empty(b, FS_END_DS);
  put_empty(b, FS_END_DS);
  put_empty(b, FS_END_DS);
}

/* EntryList_UUID_List_Integer: every partition owned by this member. */
static void put_partitions(fs_buf_t *b) {
  put_empty(b, FS_BEGIN_DS);
  size_t f = hzshm__fs_frame_start(b, 0);
  for (int32_t i = 0; i < hzshm__fs_partition_count; i++) hzshm__fs_le32(b, (uint32_t)i);
  hzshm__fs_frame_end(b, f);
  put_empty(b, FS_END_DS);
  f = hzshm__fs_frame_start(b, 0);
  put_uuid(b, member_uuid);
  hzshm__fs_frame_end(b, f);
}

void hzshm__fs_auth_response(fs_buf_t *out, int64_t corr, uint8_t status) {
  size_t f = hzshm__fs_response_start(out, 0x000101, corr);
  hzshm__fs_u8(out, status);
  put_uuid(out, member_uuid);
  hzshm__fs_u8(out, 1); /* serializationVersion */
  hzshm__fs_le32(out, (uint32_t)hzshm__fs_partition_count);
  if (!hzshm__fs_new_cluster_id) cluster_uuid[14] = (uint8_t)hzshm__fs_cluster_id;
  else if (status == 0) cluster_uuid[14] = cluster_generation++; /* as after a cluster restart */
  put_uuid(out, cluster_uuid);
  hzshm__fs_u8(out, 0);  /* failoverSupported */
  hzshm__fs_le32(out, 1); /* memberListVersion */
  hzshm__fs_le32(out, 1); /* partitionListVersion */
  hzshm__fs_frame_end(out, f);
  if (status != 0) {
    put_empty(out, FS_NULL); /* address */
    size_t last = out->len;
    put_string(out, "5.5.0");
    hzshm__fs_final(out, last);
    return;
  }
  put_address(out);
  put_string(out, "5.5.0");
  put_empty(out, 0);       /* tpcPorts: empty list, as 5.5.0 sends it */
  put_empty(out, FS_NULL); /* tpcToken */
  put_member_infos(out);
  put_partitions(out);
  put_empty(out, FS_BEGIN_DS); /* keyValuePairs */
  size_t last = out->len;
  put_empty(out, FS_END_DS);
  hzshm__fs_final(out, last);
}

/* Cluster view: MembersView and PartitionsView events first, then the
 * response, in the order Hazelcast 5.5.0 sends them (PROTOCOL-NOTES.md). */
static void cluster_view(fs_buf_t *out, int64_t corr) {
  size_t f = hzshm__fs_frame_start(out, FS_UNFRAGMENTED | FS_EVENT);
  hzshm__fs_le32(out, 0x000302);
  hzshm__fs_le64(out, (uint64_t)corr);
  hzshm__fs_le32(out, (uint32_t)-1);
  hzshm__fs_le32(out, 1); /* version */
  hzshm__fs_frame_end(out, f);
  put_member_infos(out);
  hzshm__fs_final(out, out->len - 6); /* the list's 6-byte end frame is the last one */
  f = hzshm__fs_frame_start(out, FS_UNFRAGMENTED | FS_EVENT);
  hzshm__fs_le32(out, 0x000303);
  hzshm__fs_le64(out, (uint64_t)corr);
  hzshm__fs_le32(out, (uint32_t)-1);
  hzshm__fs_le32(out, 1);
  hzshm__fs_frame_end(out, f);
  put_partitions(out);
  hzshm__fs_final(out, out->len - (6 + 17)); /* the owners' List_UUID frame: one UUID */
  f = hzshm__fs_response_start(out, 0x000301, corr);
  hzshm__fs_frame_end(out, f);
  hzshm__fs_final(out, f);
}

static void fixed_response(fs_buf_t *out, const fs_request_t *req, const void *fixed, size_t n) {
  size_t f = hzshm__fs_response_start(out, req->type + 1, req->corr);
  hzshm__fs_put(out, fixed, n);
  hzshm__fs_frame_end(out, f);
  hzshm__fs_final(out, f);
}

static void null_data_response(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_response_start(out, req->type + 1, req->corr);
  hzshm__fs_frame_end(out, f);
  size_t last = out->len;
  put_empty(out, FS_NULL);
  hzshm__fs_final(out, last);
}

void hzshm__fs_answer(fs_buf_t *out, const fs_request_t *req) {
  static const uint8_t registration_id[17] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  static const uint8_t zeros[4];
  switch (req->type) {
  case 0x000300: cluster_view(out, req->corr); return;
  case 0x010100: /* Put */
  case 0x010200: /* Get */
  case 0x010300: /* Remove */ null_data_response(out, req); return;
  case 0x010600: /* ContainsKey */
  case 0x010900: /* Delete */
  case 0x011E00: /* Evict */
  case 0x011A00: /* RemoveEntryListener */
  case 0x000A00: fixed_response(out, req, zeros, 1); return;
  case 0x012A00: /* Size */ fixed_response(out, req, zeros, 4); return;
  case 0x011900: /* AddEntryListener */
  case 0x013F00: /* AddNearCacheInvalidationListener */
  case 0x000900: fixed_response(out, req, registration_id, 17); return;
  case 0x013D00: { /* FetchNearCacheInvalidationMetadata: no maps, no partitions */
    size_t f = hzshm__fs_response_start(out, req->type + 1, req->corr);
    hzshm__fs_frame_end(out, f);
    put_empty(out, FS_BEGIN_DS);
    put_empty(out, FS_END_DS);
    size_t last = out->len;
    put_empty(out, 0);
    hzshm__fs_final(out, last);
    return;
  }
  default: fixed_response(out, req, NULL, 0); return; /* Set, Ping, Clear, DestroyProxy, ... */
  }
}
