/* ipc.h - the local protocol between libhzshm and hzshm-agent.
 *
 * Transport: a Unix stream socket (path recorded in the segment header).
 * Framing: every message, request or response, is one frame:
 *
 *   offset size  field
 *   0      4     magic    'H','Z','S','P' (0x5053'5A48 little-endian)
 *   4      1     version  HZSHM__IPC_VERSION
 *   5      1     op       hzshm__ipc_op (a response repeats the request's op)
 *   6      2     flags    HZSHM__IPC_F_* in a SET request, else 0
 *   8      4     reqid    chosen by the client, echoed in the response
 *   12     4     status   int32: 0 in requests; 0 or a HZSHM_E* code (or -errno) in responses
 *   16     4     bodylen  bytes following the header (<= HZSHM__IPC_BODY_MAX)
 *   20     ...   body
 *
 * All integers are little-endian, written and read through the explicit
 * helpers below (never by overlaying structs on the buffer).
 *
 * Request body (the same shape for every op; unused fields are empty):
 *   u16 sidlen, sid bytes, u16 klen, key bytes, i64 ttl_ms, u32 vlen, value bytes
 * Response body:
 *   i32 aux (ETYPE: the Hazelcast type id; GET with a value: the value's type
 *   id, -12 byte[] or -11 String (0 from an older agent: byte[]); HELLO: the
 *   agent pid), u32 vlen, value
 *
 * Pipelining: a client may send several requests before reading; the agent
 * answers each exactly once, matched by reqid (answers may come out of order).
 * Decoding is bounds-checked: anything malformed is HZSHM_EPROTO, and the
 * agent then answers with an error frame (reqid 0 if it could not read one)
 * and closes the connection without changing anything.
 */
#ifndef HZSHM_IPC_H
#define HZSHM_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "hzshm_errno.h"

#define HZSHM__IPC_MAGIC 0x50535A48u /* "HZSP" in memory order */
#define HZSHM__IPC_VERSION 1u
#define HZSHM__IPC_HDR 20u
/* Request flags. F_STRING (SET only): the value is a Hazelcast String (valid
 * UTF-8, checked by the agent), not a byte[]. */
#define HZSHM__IPC_F_STRING 1u
#define HZSHM__IPC_F_ALL HZSHM__IPC_F_STRING
/* The largest value the Store API accepts (bytes). Values above the segment's
 * largest size class are written and read through the agent but not cached. */
#define HZSHM__IPC_VALUE_MAX (1u << 20)
#define HZSHM__IPC_BODY_MAX (2u + 255u + 2u + 1024u + 8u + 4u + HZSHM__IPC_VALUE_MAX)

typedef enum {
  HZSHM__OP_HELLO = 1,   /* no body; answer aux = agent pid */
  HZSHM__OP_GET = 2,     /* sid, key -> value | ENOTFOUND | ETYPE(aux = type id) */
  HZSHM__OP_HAS = 3,     /* sid, key -> 0 | ENOTFOUND */
  HZSHM__OP_SET = 4,     /* sid, key, ttl_ms, value -> 0 */
  HZSHM__OP_DEL = 5,     /* sid, key -> 0 */
  HZSHM__OP_DESTROY = 6, /* sid -> 0 */
  HZSHM__OP_MAX_ = 7
} hzshm__ipc_op;

typedef struct {
  uint8_t version;
  uint8_t op;
  uint16_t flags;
  uint32_t reqid;
  int32_t status;
  uint32_t bodylen;
} hzshm__ipc_hdr_t;

/* A decoded request: pointers into the frame buffer (valid while it lives). */
typedef struct {
  const char *sid;
  size_t sidlen;
  const void *key;
  size_t klen;
  int64_t ttl_ms;
  const void *val;
  size_t vlen;
  uint16_t flags; /* HZSHM__IPC_F_*: written into (encode) the header; decode leaves it to the header */
} hzshm__ipc_req_t;

typedef struct {
  int32_t aux;
  const void *val;
  size_t vlen;
} hzshm__ipc_resp_t;

/* Decodes a header from HZSHM__IPC_HDR bytes. HZSHM_EPROTO on a wrong magic,
 * version, flags or op, or a body length over HZSHM__IPC_BODY_MAX. */
int hzshm__ipc_hdr_decode(const uint8_t *buf, hzshm__ipc_hdr_t *h);

/* Size of the frame that hzshm__ipc_req_encode writes for `r`. */
size_t hzshm__ipc_req_size(const hzshm__ipc_req_t *r);
/* Writes header + body into buf (cap >= hzshm__ipc_req_size). Returns the frame
 * length, or HZSHM_ETOOBIG if a field is over its limit, HZSHM_EBUFSIZE if cap is short. */
long hzshm__ipc_req_encode(uint8_t *buf, size_t cap, uint8_t op, uint32_t reqid, const hzshm__ipc_req_t *r);
/* Decodes a request body (after the header). HZSHM_EPROTO if malformed
 * (truncated, trailing bytes, a length over its limit). */
int hzshm__ipc_req_decode(const uint8_t *body, size_t len, hzshm__ipc_req_t *r);

size_t hzshm__ipc_resp_size(size_t vlen);
long hzshm__ipc_resp_encode(uint8_t *buf, size_t cap, uint8_t op, uint32_t reqid, int32_t status, int32_t aux,
                            const void *val, size_t vlen);
int hzshm__ipc_resp_decode(const uint8_t *body, size_t len, hzshm__ipc_resp_t *r);

#endif /* HZSHM_IPC_H */
