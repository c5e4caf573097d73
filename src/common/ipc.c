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

/* The full check, from byte 0 (hzshm__ipc_utf8_valid's slow path). */
static int utf8_valid_full(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (len - i - 1 < n) return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF) return 0; /* overlong / range */
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0; /* surrogates are not UTF-8 */
    i += n + 1;
  }
  return 1;
}

/* ASCII fast path (every key of a get goes through here): the OR of the
 * input's 8-byte words (the last one overlapping the one before) has no high
 * bit set iff every byte is < 0x80, i.e. ASCII, which is valid UTF-8. Any
 * high bit sends the whole input to the full check. */
int hzshm__ipc_utf8_valid(const void *s, size_t len) {
  const uint8_t *p = s;
  if (len < 8) return utf8_valid_full(p, len);
  uint64_t acc = 0, w;
  for (size_t i = 0; i + 8 < len; i += 8) {
    memcpy(&w, p + i, 8);
    acc |= w;
  }
  memcpy(&w, p + len - 8, 8);
  acc |= w;
  return (acc & 0x8080808080808080ull) == 0 || utf8_valid_full(p, len);
}
