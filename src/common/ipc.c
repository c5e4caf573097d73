/* ipc.c - encoding and bounds-checked decoding of local protocol frames
 * (format in ipc.h). Pure functions: no allocation, no I/O, no shared state. */
#include "ipc.h"

#include <string.h>

#include "hzshm_errno.h"

int hzshm__ipc_hdr_decode(const uint8_t *buf, hzshm__ipc_hdr_t *h) {
  if (hzshm__le32_get(buf) != HZSHM__IPC_MAGIC) return HZSHM_EPROTO;
  h->version = buf[4];
  h->op = buf[5];
  h->flags = hzshm__le16_get(buf + 6);
  h->reqid = hzshm__le32_get(buf + 8);
  h->status = (int32_t)hzshm__le32_get(buf + 12);
  h->bodylen = hzshm__le32_get(buf + 16);
  if (h->version != HZSHM__IPC_VERSION || (h->flags & ~HZSHM__IPC_F_ALL) != 0) return HZSHM_EPROTO;
  if (h->op == 0 || h->op >= HZSHM__OP_MAX_) return HZSHM_EPROTO;
  if (h->bodylen > HZSHM__IPC_BODY_MAX) return HZSHM_EPROTO;
  return 0;
}

static void hdr_put(uint8_t *buf, uint8_t op, uint16_t flags, uint32_t reqid, int32_t status, uint32_t bodylen) {
  hzshm__le32_put(buf, HZSHM__IPC_MAGIC);
  buf[4] = HZSHM__IPC_VERSION;
  buf[5] = op;
  hzshm__le16_put(buf + 6, flags);
  hzshm__le32_put(buf + 8, reqid);
  hzshm__le32_put(buf + 12, (uint32_t)status);
  hzshm__le32_put(buf + 16, bodylen);
}

size_t hzshm__ipc_req_size(const hzshm__ipc_req_t *r) {
  return HZSHM__IPC_HDR + 2 + r->sidlen + 2 + r->klen + 8 + 4 + r->vlen;
}

long hzshm__ipc_req_encode(uint8_t *buf, size_t cap, uint8_t op, uint32_t reqid, const hzshm__ipc_req_t *r) {
  if (r->sidlen > 255 || r->klen > 1024 || r->vlen > HZSHM__IPC_VALUE_MAX) return HZSHM_ETOOBIG;
  if (r->flags & ~HZSHM__IPC_F_ALL) return HZSHM_EINVAL;
  size_t n = hzshm__ipc_req_size(r);
  if (cap < n) return HZSHM_EBUFSIZE;
  hdr_put(buf, op, r->flags, reqid, 0, (uint32_t)(n - HZSHM__IPC_HDR));
  uint8_t *p = buf + HZSHM__IPC_HDR;
  hzshm__le16_put(p, (uint16_t)r->sidlen);
  p += 2;
  if (r->sidlen) memcpy(p, r->sid, r->sidlen);
  p += r->sidlen;
  hzshm__le16_put(p, (uint16_t)r->klen);
  p += 2;
  if (r->klen) memcpy(p, r->key, r->klen);
  p += r->klen;
  hzshm__le64_put(p, (uint64_t)r->ttl_ms);
  p += 8;
  hzshm__le32_put(p, (uint32_t)r->vlen);
  p += 4;
  if (r->vlen) memcpy(p, r->val, r->vlen);
  return (long)n;
}

int hzshm__ipc_req_decode(const uint8_t *body, size_t len, hzshm__ipc_req_t *r) {
  size_t off = 0;
  if (len - off < 2) return HZSHM_EPROTO;
  r->sidlen = hzshm__le16_get(body + off);
  off += 2;
  if (r->sidlen > 255 || len - off < r->sidlen) return HZSHM_EPROTO;
  r->sid = (const char *)body + off;
  off += r->sidlen;
  if (len - off < 2) return HZSHM_EPROTO;
  r->klen = hzshm__le16_get(body + off);
  off += 2;
  if (r->klen > 1024 || len - off < r->klen) return HZSHM_EPROTO;
  r->key = body + off;
  off += r->klen;
  if (len - off < 12) return HZSHM_EPROTO;
  r->ttl_ms = (int64_t)hzshm__le64_get(body + off);
  off += 8;
  r->vlen = hzshm__le32_get(body + off);
  off += 4;
  if (r->vlen > HZSHM__IPC_VALUE_MAX || len - off != r->vlen) return HZSHM_EPROTO;
  r->val = body + off;
  r->flags = 0;
  return 0;
}

size_t hzshm__ipc_resp_size(size_t vlen) { return HZSHM__IPC_HDR + 4 + 4 + vlen; }

long hzshm__ipc_resp_encode(uint8_t *buf, size_t cap, uint8_t op, uint32_t reqid, int32_t status, int32_t aux,
                            const void *val, size_t vlen) {
  if (vlen > HZSHM__IPC_VALUE_MAX) return HZSHM_ETOOBIG;
  size_t n = hzshm__ipc_resp_size(vlen);
  if (cap < n) return HZSHM_EBUFSIZE;
  hdr_put(buf, op, 0, reqid, status, (uint32_t)(n - HZSHM__IPC_HDR));
  hzshm__le32_put(buf + HZSHM__IPC_HDR, (uint32_t)aux);
  hzshm__le32_put(buf + HZSHM__IPC_HDR + 4, (uint32_t)vlen);
  if (vlen) memcpy(buf + HZSHM__IPC_HDR + 8, val, vlen);
  return (long)n;
}

int hzshm__ipc_resp_decode(const uint8_t *body, size_t len, hzshm__ipc_resp_t *r) {
  if (len < 8) return HZSHM_EPROTO;
  r->aux = (int32_t)hzshm__le32_get(body);
  r->vlen = hzshm__le32_get(body + 4);
  if (r->vlen > HZSHM__IPC_VALUE_MAX || len - 8 != r->vlen) return HZSHM_EPROTO;
  r->val = body + 8;
  return 0;
}
