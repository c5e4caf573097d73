/* reqparse.c - framing and validation of local requests (reqparse.h).
 * Pure functions: no allocation, no I/O, no shared state. */
#include "reqparse.h"

#include <string.h>

#include "hzshm_errno.h"
#include "utf8.h"

void req_scan(const uint8_t *buf, size_t len, req_fn fn, void *ud, req_scan_t *out) {
  size_t off = 0;
  memset(out, 0, sizeof *out);
  while (len - off >= HZSHM__IPC_HDR) {
    hzshm__ipc_hdr_t h;
    const uint8_t *p = buf + off;
    if (hzshm__ipc_hdr_decode(p, &h) != 0) {
      out->bad = 1;
      out->reqid = hzshm__le32_get(p) == HZSHM__IPC_MAGIC ? hzshm__le32_get(p + 8) : 0;
      break;
    }
    if (len - off - HZSHM__IPC_HDR < h.bodylen) break; /* wait for the rest */
    hzshm__ipc_req_t r;
    if (hzshm__ipc_req_decode(p + HZSHM__IPC_HDR, h.bodylen, &r) != 0) {
      out->bad = 1;
      out->reqid = h.reqid;
      out->op = h.op;
      break;
    }
    off += HZSHM__IPC_HDR + h.bodylen;
    if (fn(ud, &h, &r) != 0) break;
  }
  out->used = off;
}

int req_validate(const char *prefix, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r) {
  if (h->flags && h->op != HZSHM__OP_SET) return HZSHM_EINVAL;
  if (h->op == HZSHM__OP_HELLO) return 0;
  if (r->sidlen == 0) return HZSHM_EEMPTY;
  if (memchr(r->sid, 0, r->sidlen) || !hzshm__utf8_valid(r->sid, r->sidlen)) return HZSHM_EBADSESSION;
  size_t pl = prefix ? strlen(prefix) : 0;
  if (pl && (r->sidlen < pl || memcmp(r->sid, prefix, pl) != 0)) return HZSHM_EBADSESSION;
  if (h->op == HZSHM__OP_DESTROY) return 0;
  if (r->klen == 0) return HZSHM_EEMPTY;
  if (!hzshm__utf8_valid(r->key, r->klen)) return HZSHM_EINVAL;
  if (h->op == HZSHM__OP_SET) {
    if (r->ttl_ms < -1) return HZSHM_EINVAL;
    if ((h->flags & HZSHM__IPC_F_STRING) && !hzshm__utf8_valid(r->val, r->vlen)) return HZSHM_EINVAL;
  } else if (r->vlen != 0) {
    return HZSHM_EINVAL;
  }
  return 0;
}
