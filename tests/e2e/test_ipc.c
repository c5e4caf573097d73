/* test_ipc.c - the local protocol codec: round trips, every malformed shape
 * rejected with HZSHM_EPROTO, limits, UTF-8 validation. */
#include <sys/mman.h>
#include <unistd.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "ipc.h"
#include "utf8.h"


TEST_CASE(roundtrip) {
  uint8_t buf[4096];
  hzshm__ipc_req_t r = {.sid = "sess", .sidlen = 4, .key = "k\xc3\xa9", .klen = 3, .ttl_ms = -1,
                        .val = "\x00\x01\x02", .vlen = 3};
  long n = hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_SET, 77, &r);
  CHECK_EQ(n, (long)hzshm__ipc_req_size(&r));
  hzshm__ipc_hdr_t h;
  CHECK_EQ(hzshm__ipc_hdr_decode(buf, &h), 0);
  CHECK_EQ(h.op, HZSHM__OP_SET);
  CHECK_EQ(h.reqid, 77);
  CHECK_EQ(h.status, 0);
  CHECK_EQ(h.bodylen, (uint32_t)n - HZSHM__IPC_HDR);
  hzshm__ipc_req_t d;
  CHECK_EQ(hzshm__ipc_req_decode(buf + HZSHM__IPC_HDR, h.bodylen, &d), 0);
  CHECK_EQ(d.sidlen, 4);
  CHECK_MEMEQ(d.sid, "sess", 4);
  CHECK_EQ(d.klen, 3);
  CHECK_MEMEQ(d.key, "k\xc3\xa9", 3);
  CHECK_EQ(d.ttl_ms, -1);
  CHECK_EQ(d.vlen, 3);
  CHECK_MEMEQ(d.val, "\x00\x01\x02", 3);
  CHECK_EQ(h.flags, 0);
  /* the String flag travels in the header */
  r.flags = HZSHM__IPC_F_STRING;
  CHECK_EQ(hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_SET, 78, &r), n);
  CHECK_EQ(hzshm__ipc_hdr_decode(buf, &h), 0);
  CHECK_EQ(h.flags, HZSHM__IPC_F_STRING);
  CHECK_EQ(buf[6], 1);
  CHECK_EQ(buf[7], 0);
  r.flags = 2; /* unknown: refused before anything is written */
  memset(buf, 0, sizeof buf);
  CHECK_EQ(hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_SET, 79, &r), HZSHM_EINVAL);
  CHECK_EQ(buf[0], 0);
  r.flags = 0;

  n = hzshm__ipc_resp_encode(buf, sizeof buf, HZSHM__OP_GET, 9, HZSHM_ETYPE, -42, "xy", 2);
  CHECK_EQ(n, (long)hzshm__ipc_resp_size(2));
  CHECK_EQ(hzshm__ipc_hdr_decode(buf, &h), 0);
  CHECK_EQ(h.status, HZSHM_ETYPE);
  CHECK_EQ(h.reqid, 9);
  hzshm__ipc_resp_t rs;
  CHECK_EQ(hzshm__ipc_resp_decode(buf + HZSHM__IPC_HDR, h.bodylen, &rs), 0);
  CHECK_EQ(rs.aux, -42);
  CHECK_EQ(rs.vlen, 2);
  CHECK_MEMEQ(rs.val, "xy", 2);
  /* little-endian on the wire, whatever the host */
  CHECK_EQ(buf[0], 'H');
  CHECK_EQ(buf[1], 'Z');
  CHECK_EQ(buf[2], 'S');
  CHECK_EQ(buf[3], 'P');
  CHECK_EQ(buf[8], 9);
  CHECK_EQ(buf[9], 0);
}

TEST_CASE(malformed) {
  uint8_t buf[4096];
  hzshm__ipc_req_t r = {.sid = "s", .sidlen = 1, .key = "k", .klen = 1};
  long n = hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_GET, 1, &r);
  CHECK_GT(n, 0);
  hzshm__ipc_hdr_t h;
  uint8_t bad[HZSHM__IPC_HDR];
  memcpy(bad, buf, sizeof bad);
  bad[0] ^= 1; /* magic */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  memcpy(bad, buf, sizeof bad);
  bad[4] = 2; /* version */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  memcpy(bad, buf, sizeof bad);
  bad[5] = 0; /* op 0 */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  bad[5] = HZSHM__OP_MAX_; /* unknown op */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  memcpy(bad, buf, sizeof bad);
  bad[6] = 2; /* an unknown flag */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  bad[6] = 0;
  bad[7] = 1; /* an unknown flag, high byte */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  memcpy(bad, buf, sizeof bad);
  hzshm__le32_put(bad + 16, HZSHM__IPC_BODY_MAX + 1); /* oversized */
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);
  hzshm__le32_put(bad + 16, 0xFFFFFFFFu);
  CHECK_EQ(hzshm__ipc_hdr_decode(bad, &h), HZSHM_EPROTO);

  /* Every truncation of a valid body and one trailing byte are rejected. */
  size_t blen = (size_t)n - HZSHM__IPC_HDR;
  hzshm__ipc_req_t d;
  for (size_t cut = 0; cut < blen; cut++) CHECK_EQ(hzshm__ipc_req_decode(buf + HZSHM__IPC_HDR, cut, &d), HZSHM_EPROTO);
  CHECK_EQ(hzshm__ipc_req_decode(buf + HZSHM__IPC_HDR, blen + 1, &d), HZSHM_EPROTO);
  /* Field lengths over their limits. */
  uint8_t body[64] = {0};
  hzshm__le16_put(body, 256); /* sid > 255 */
  CHECK_EQ(hzshm__ipc_req_decode(body, sizeof body, &d), HZSHM_EPROTO);
  memset(body, 0, sizeof body);
  hzshm__le16_put(body + 2, 1025); /* key > 1024 (sidlen 0) */
  CHECK_EQ(hzshm__ipc_req_decode(body, sizeof body, &d), HZSHM_EPROTO);
  /* Value length claiming more than present. */
  memset(body, 0, sizeof body);
  hzshm__le32_put(body + 2 + 2 + 8, 1000);
  CHECK_EQ(hzshm__ipc_req_decode(body, 16, &d), HZSHM_EPROTO);
  hzshm__le32_put(body + 2 + 2 + 8, HZSHM__IPC_VALUE_MAX + 1);
  CHECK_EQ(hzshm__ipc_req_decode(body, 16, &d), HZSHM_EPROTO);
  /* Responses. */
  hzshm__ipc_resp_t rs;
  CHECK_EQ(hzshm__ipc_resp_decode(body, 7, &rs), HZSHM_EPROTO);
  memset(body, 0, sizeof body);
  hzshm__le32_put(body + 4, 5);
  CHECK_EQ(hzshm__ipc_resp_decode(body, 12, &rs), HZSHM_EPROTO);
  CHECK_EQ(hzshm__ipc_resp_decode(body, 13, &rs), 0);
  /* Encoder limits. */
  char big[1100];
  memset(big, 'a', sizeof big);
  hzshm__ipc_req_t over = {.sid = big, .sidlen = 256};
  CHECK_EQ(hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_GET, 1, &over), HZSHM_ETOOBIG);
  hzshm__ipc_req_t overk = {.sid = "s", .sidlen = 1, .key = big, .klen = 1025};
  CHECK_EQ(hzshm__ipc_req_encode(buf, sizeof buf, HZSHM__OP_GET, 1, &overk), HZSHM_ETOOBIG);
  CHECK_EQ(hzshm__ipc_req_encode(buf, 10, HZSHM__OP_GET, 1, &r), HZSHM_EBUFSIZE);
}

TEST_CASE(utf8) {
  CHECK(hzshm__utf8_valid("", 0));
  CHECK(hzshm__utf8_valid("plain ascii", 11));
  CHECK(hzshm__utf8_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9)); /* é € 😀 */
  CHECK(!hzshm__utf8_valid("\xc3", 1));                               /* truncated */
  CHECK(!hzshm__utf8_valid("\xc0\xaf", 2));                           /* overlong */
  CHECK(!hzshm__utf8_valid("\xe0\x80\xaf", 3));                       /* overlong */
  CHECK(!hzshm__utf8_valid("\xed\xa0\x80", 3));                       /* surrogate */
  CHECK(!hzshm__utf8_valid("\xf4\x90\x80\x80", 4));                   /* > U+10FFFF */
  CHECK(!hzshm__utf8_valid("\xff", 1));
  CHECK(!hzshm__utf8_valid("a\x80", 2)); /* stray continuation */
  /* The 8-bytes-at-a-time ASCII path: lengths around the word size, with a
   * non-ASCII byte (valid or not) at every position, in every word. */
  char b[40];
  for (size_t len = 1; len <= sizeof b; len++) {
    memset(b, 'k', len);
    CHECK(hzshm__utf8_valid(b, len));
    for (size_t at = 0; at < len; at++) {
      memset(b, 'k', len);
      b[at] = (char)0x80; /* a stray continuation byte */
      CHECK(!hzshm__utf8_valid(b, len));
      b[at] = (char)0xff;
      CHECK(!hzshm__utf8_valid(b, len));
      if (at + 1 < len) {
        b[at] = (char)0xc3, b[at + 1] = (char)0xa9; /* é */
        CHECK(hzshm__utf8_valid(b, len));
        CHECK(!hzshm__utf8_valid(b, at + 1)); /* cut inside it */
      }
    }
  }
}

/* An independent UTF-8 check (RFC 3629's table of well-formed sequences). */
static int ref_utf8(const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = p[i];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF;
    if (c <= 0x7F) n = 0;
    else if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, lo = 0xA0;
    else if (c == 0xED) n = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) n = 2;
    else if (c == 0xF0) n = 3, lo = 0x90;
    else if (c == 0xF4) n = 3, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else return 0;
    if (len - i - 1 < n) return 0;
    if (n && (p[i + 1] < lo || p[i + 1] > hi)) return 0;
    for (size_t k = 2; k <= n; k++)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return 0;
    i += n + 1;
  }
  return 1;
}

/* The fast path against the reference on random mixes of ASCII (NUL
 * included), continuation and lead bytes at every length 0..40, each input
 * placed at the end of a page followed by a PROT_NONE page (a word load past
 * the input's end faults) and at the start of a page after one. */
TEST_CASE(utf8_random_page_edge) {
  long pg = sysconf(_SC_PAGESIZE);
  uint8_t *area = mmap(NULL, 3 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(area != MAP_FAILED);
  CHECK(mprotect(area, (size_t)pg, PROT_NONE) == 0);
  CHECK(mprotect(area + 2 * pg, (size_t)pg, PROT_NONE) == 0);
  static const uint8_t pick[] = {0x00, 'a', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2,
                                 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  uint64_t x = 0x9e3779b97f4a7c15ull;
  size_t valid = 0, total = 0;
  for (int round = 0; round < 20000; round++) {
    for (size_t len = 0; len <= 40; len++) {
      uint8_t *p = (round & 1) ? area + pg : area + 2 * pg - len;
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      unsigned mostly_ascii = (unsigned)(x >> 60); /* 0..15: how rare the non-ASCII bytes are */
      for (size_t i = 0; i < len; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (x >> 32) % 16 < mostly_ascii ? (uint8_t)('a' + x % 26) : pick[(x >> 8) % sizeof pick];
        if (p[i] >= 0xc2 && p[i] <= 0xf4 && (x >> 20) % 2) { /* often a well-formed sequence after a lead */
          size_t n = p[i] < 0xe0 ? 1 : p[i] < 0xf0 ? 2 : 3;
          uint8_t lead = p[i]; /* the first continuation byte in the lead's range (E0, F0: high; ED, F4: low) */
          for (size_t k = 1; k <= n && i + 1 < len; k++)
            p[++i] = k > 1 ? (uint8_t)(0x80 + k) : lead == 0xe0 ? 0xa5 : lead == 0xf0 ? 0x95 : 0x85;
        }
      }
      int want = ref_utf8(p, len);
      CHECK_EQ(hzshm__utf8_valid(p, len), want);
      valid += (size_t)want, total++;
    }
  }
  CHECK(valid > total / 10 && valid < total); /* both outcomes exercised */
  munmap(area, 3 * (size_t)pg);
}
