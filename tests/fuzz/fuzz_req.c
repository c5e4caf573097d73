/* fuzz_req.c - libFuzzer target over what the agent does with the bytes a
 * local process sends on its socket: the agent's framing loop
 * (req_scan, the code server.c runs on its read buffer) fed the input
 * in pieces whose sizes come from the input (as reads would deliver them),
 * the request decoder (ipc.c), the agent's validation (req_validate,
 * with and without a --prefix), and, for a request the agent accepts, the
 * cluster message it would send (the same encoders hzc_map_* use) and the
 * answer frame. Oracles besides ASan/UBSan:
 *   - every decoded field lies inside the frame, within the protocol limits;
 *   - decoding is exact: re-encoding the request gives the frame's body;
 *   - what the agent accepts, the Hazelcast client accepts too (UTF-8 of the
 *     map name and key), and the encoded message parses back to the key;
 *   - the answer frame decodes back to what was encoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "data.h"
#include "frame.h"
#include "ipc.h"
#include "murmur.h"
#include "reqparse.h"
#include "utf8.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

typedef struct {
  const uint8_t *buf; /* the scanned buffer */
  size_t len;
  unsigned nreq;
} scan_ctx_t;

static int inside(const scan_ctx_t *x, const void *p, size_t n) {
  const uint8_t *q = p;
  return q >= x->buf && n <= x->len && q - x->buf <= (ptrdiff_t)(x->len - n);
}

/* The cluster message the agent would send for an accepted request. */
static void cluster_message(const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r) {
  char name[256];
  memcpy(name, r->sid, r->sidlen);
  name[r->sidlen] = 0;
  /* hzc_map_*: check_map and check_key must accept what the agent accepted */
  CHECK(hzshm__utf8_valid(name, strlen(name)) && strlen(name) == r->sidlen);
  hzc__mb_t b;
  int32_t type;
  switch (h->op) {
    case HZSHM__OP_GET: type = HZC__MT_MAP_GET; break;
    case HZSHM__OP_HAS: type = HZC__MT_MAP_CONTAINS; break;
    case HZSHM__OP_DEL: type = HZC__MT_MAP_DELETE; break;
    case HZSHM__OP_SET: type = HZC__MT_MAP_SET; break;
    default: type = HZC__MT_DESTROY_PROXY; break;
  }
  if (h->op == HZSHM__OP_DESTROY) {
    hzc__enc_proxy(&b, type, name, HZC__MAP_SERVICE);
  } else {
    CHECK(hzshm__utf8_valid(r->key, r->klen));
    CHECK(hzc__partition_of(hzc__string_hash(r->key, r->klen), 271) < 271);
    if (h->op == HZSHM__OP_SET)
      hzc__enc_map_put(&b, type, -1, name, r->key, r->klen, r->vlen ? r->val : "", r->vlen, r->ttl_ms);
    else
      hzc__enc_map_key(&b, type, -1, name, r->key, r->klen);
  }
  CHECK(hzc__mb_finish(&b) == 0);
  hzc__msg_t m;
  CHECK(hzc__msg_parse(b.w.p, b.w.len, &m) == 0);
  CHECK(hzc__msg_check_initial(&m) == 0 && hzc__msg_type(&m) == type);
  if (h->op != HZSHM__OP_DESTROY) { /* frames: initial, name, key Data[, value Data] */
    hzc_value_t v;
    CHECK(m.n >= 3 && hzc__data_decode(m.f[2].p, m.f[2].len, &v) == 0);
    CHECK(v.type == HZC_STRING && v.len == r->klen && memcmp(v.data, r->key, r->klen) == 0);
  }
  hzc__msg_free(&m);
  hzc__mb_free(&b);
}

/* The agent's answer: encoded, then decoded as the library would. */
static void answer(const hzshm__ipc_hdr_t *h, int status, const void *val, size_t vlen) {
  static uint8_t out[HZSHM__IPC_HDR + 8 + 2048];
  long n = hzshm__ipc_resp_encode(out, sizeof out, h->op, h->reqid, status, 7, val, vlen);
  CHECK(n == (long)hzshm__ipc_resp_size(vlen));
  hzshm__ipc_hdr_t rh;
  hzshm__ipc_resp_t rr;
  CHECK(hzshm__ipc_hdr_decode(out, &rh) == 0 && rh.op == h->op && rh.reqid == h->reqid && rh.status == status);
  CHECK(hzshm__ipc_resp_decode(out + HZSHM__IPC_HDR, rh.bodylen, &rr) == 0 && rr.aux == 7 && rr.vlen == vlen);
}

static int on_request(void *ud, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r) {
  scan_ctx_t *x = ud;
  CHECK(h->op >= HZSHM__OP_HELLO && h->op < HZSHM__OP_MAX_ && (h->flags & ~HZSHM__IPC_F_ALL) == 0 && h->bodylen <= HZSHM__IPC_BODY_MAX);
  CHECK(r->sidlen <= 255 && r->klen <= 1024 && r->vlen <= HZSHM__IPC_VALUE_MAX);
  CHECK(inside(x, r->sid, r->sidlen) && inside(x, r->key, r->klen) && inside(x, r->val, r->vlen));
  /* exact decoding: the body re-encodes to the same bytes */
  const uint8_t *body = (const uint8_t *)r->sid - 2;
  size_t blen = hzshm__ipc_req_size(r) - HZSHM__IPC_HDR;
  CHECK(blen == h->bodylen && inside(x, body, blen));
  uint8_t *re = malloc(hzshm__ipc_req_size(r));
  CHECK(re != NULL);
  CHECK(hzshm__ipc_req_encode(re, hzshm__ipc_req_size(r), h->op, h->reqid, r) == (long)hzshm__ipc_req_size(r));
  CHECK(memcmp(re + HZSHM__IPC_HDR, body, blen) == 0);
  free(re);
  int rc0 = req_validate(NULL, h, r);
  int rc1 = req_validate("app.", h, r);
  CHECK(rc0 == 0 || rc0 == HZSHM_EEMPTY || rc0 == HZSHM_EBADSESSION || rc0 == HZSHM_EINVAL);
  CHECK(rc1 == 0 || rc1 == HZSHM_EEMPTY || rc1 == HZSHM_EBADSESSION || rc1 == HZSHM_EINVAL);
  CHECK(rc1 != 0 || rc0 == 0); /* a prefix only narrows */
  CHECK(rc0 != 0 || h->flags == 0 || h->op == HZSHM__OP_SET); /* flags only on a SET */
  if (rc0 == 0 && h->op != HZSHM__OP_HELLO) cluster_message(h, r);
  answer(h, rc0, r->vlen <= 2048 ? r->val : NULL, r->vlen <= 2048 ? r->vlen : 0);
  x->nreq++;
  return x->nreq >= 64; /* as a closed connection would: stop */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The agent's read buffer: input delivered in pieces; after each read the
   * complete frames are consumed and the rest moved to the front. */
  uint8_t *rbuf = malloc(size ? size : 1);
  size_t rlen = 0, pos = 0;
  unsigned piece = 0;
  scan_ctx_t x = {0};
  CHECK(rbuf != NULL);
  while (pos < size) {
    /* piece sizes: from the first input bytes, cycling; 0 means "the rest" */
    size_t n = size ? data[piece++ % (size < 8 ? size : 8)] : 0;
    n = n == 0 || n > size - pos ? size - pos : n * (piece % 3 + 1);
    if (n > size - pos) n = size - pos;
    memcpy(rbuf + rlen, data + pos, n);
    rlen += n;
    pos += n;
    req_scan_t sc;
    x.buf = rbuf;
    x.len = rlen;
    req_scan(rbuf, rlen, on_request, &x, &sc);
    CHECK(sc.used <= rlen);
    if (sc.bad) {
      CHECK(rlen - sc.used >= HZSHM__IPC_HDR);
      answer(&(hzshm__ipc_hdr_t){.op = sc.op ? sc.op : HZSHM__OP_HELLO, .reqid = sc.reqid}, HZSHM_EPROTO, NULL, 0);
      break; /* the agent closes the connection */
    }
    if (x.nreq >= 64) break;
    memmove(rbuf, rbuf + sc.used, rlen - sc.used);
    rlen -= sc.used;
  }
  free(rbuf);
  return 0;
}
