/* test_hz_unit.c - hzclient protocol pieces without a member: bounds-checked
 * readers, MurmurHash3 / partition vectors (hazelcast-client-protocol.md
 * §2.3), Data encodings (§2.1), UTF-8 validation, the message builder against
 * the worked byte dumps (§1.7), the frame decoder on split / fragmented /
 * truncated / oversized / garbage input, and round trips plus truncation
 * sweeps of every codec decoder. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "buf.h"
#include "codec.h"
#include "data.h"
#include "frame.h"
#include "hzshm.h"
#include "murmur.h"

#include "../common/runner.h"
#include "utf8.h"

static size_t unhex(const char *h, uint8_t *out) {
  size_t n = 0;
  while (*h) {
    if (*h == ' ' || *h == '|' || *h == '\n') {
      h++;
      continue;
    }
    unsigned v;
    CHECK_EQ(sscanf(h, "%2x", &v), 1);
    out[n++] = (uint8_t)v;
    h += 2;
  }
  return n;
}

TEST_CASE(buf) {
  uint8_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  hzc__rd_t r;
  int32_t v;
  int64_t w;
  hzc__rd_init(&r, b, 6);
  CHECK_EQ(hzc__rd_i32le(&r, &v), 0);
  CHECK_EQ(v, 0x04030201);
  CHECK_EQ(hzc__rd_i32le(&r, &v), HZSHM_EPROTO);
  CHECK_EQ(r.off, 4); /* overrun leaves the cursor */
  CHECK_EQ(hzc__rd_i64le(&r, &w), HZSHM_EPROTO);
  hzc__rd_init(&r, b, 8);
  CHECK_EQ(hzc__rd_i32be(&r, &v), 0);
  CHECK_EQ(v, 0x01020304);
  CHECK_EQ(hzc__rd_skip(&r, 5), HZSHM_EPROTO);
  hzc__wr_t wr;
  hzc__wr_init(&wr);
  hzc_uuid_t u, u2;
  for (int i = 0; i < 16; i++) u.b[i] = (uint8_t)(0x00 + 0x11 * i);
  hzc__wr_uuid(&wr, &u);
  hzc__wr_uuid(&wr, NULL);
  hzc__wr_i64le(&wr, -2);
  CHECK_EQ(wr.err, 0);
  CHECK_EQ(wr.len, 42);
  /* §1.7: uuid 00112233-4455-6677-8899-aabbccddeeff -> 00 7766554433221100 ffeeddccbbaa9988 */
  uint8_t want[17];
  unhex("00 7766554433221100 ffeeddccbbaa9988", want);
  CHECK_MEMEQ(wr.p, want, 17);
  int isnull;
  hzc__rd_init(&r, wr.p, wr.len);
  CHECK_EQ(hzc__rd_uuid(&r, &u2, &isnull), 0);
  CHECK(!isnull);
  CHECK_MEMEQ(&u, &u2, 16);
  CHECK_EQ(hzc__rd_uuid(&r, &u2, &isnull), 0);
  CHECK(isnull);
  CHECK_EQ(hzc__rd_i64le(&r, &w), 0);
  CHECK_EQ(w, -2);
  CHECK_EQ(hzc__rd_u8(&r, b), HZSHM_EPROTO);
  hzc__wr_free(&wr);
}

TEST_CASE(murmur) {
  /* §2.3 A: raw bytes, partition count 271 */
  static const struct {
    const char *s;
    int32_t h;
    uint32_t p;
  } a[] = {{"key-1", 1228513025, 107}, {"key-2", 1503416236, 105}, {"key-4", -914632498, 181},
           {"", -1585187909, 238},     {"a", -1686100800, 46},      {"abcd", -973615161, 236}};
  for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
    int32_t h = hzc__murmur3_32(a[i].s, strlen(a[i].s), HZC__MURMUR_SEED);
    CHECK_EQ(h, a[i].h);
    CHECK_EQ(hzc__partition_of(h, 271), a[i].p);
  }
  /* §2.3 B: String keys through their Data */
  static const struct {
    const char *s;
    int32_t h;
    uint32_t p;
  } bv[] = {{"k1", 1192665601, 21},     {"key-1", 2132451398, 94}, {"hello", 1985248981, 270},
            {"default", -841171332, 69}, {"", 923237662, 11}};
  for (size_t i = 0; i < sizeof bv / sizeof bv[0]; i++) {
    CHECK_EQ(hzc__string_hash(bv[i].s, strlen(bv[i].s)), bv[i].h);
    CHECK_EQ(hzc__partition_of(bv[i].h, 271), bv[i].p);
    hzc__wr_t w;
    hzc__wr_init(&w);
    hzc__wr_data(&w, HZC__TYPE_STRING, bv[i].s, strlen(bv[i].s));
    CHECK_EQ(hzc__data_hash(w.p, w.len), bv[i].h);
    hzc__wr_free(&w);
  }
  uint8_t d[64];
  size_t n = unhex("00000000 fffffff4 00000007 7004ff0470dd2b", d);
  CHECK_EQ(hzc__data_hash(d, n), 508143414);
  CHECK_EQ(hzc__partition_of(508143414, 271), 257);
  n = unhex("00000000 fffffff9 0000ddd5", d);
  CHECK_EQ(hzc__data_hash(d, n), -102944815);
  CHECK_EQ(hzc__partition_of(-102944815, 271), 45);
  /* a set partition-hash field wins over murmur; INT32_MIN maps to 0 */
  n = unhex("00000005 fffffff5 00000001 61", d);
  CHECK_EQ(hzc__data_hash(d, n), 5);
  CHECK_EQ(hzc__partition_of(INT32_MIN, 271), 0);
  CHECK_EQ(hzc__partition_of(-5, 271), 5);
}

TEST_CASE(data) {
  hzc__wr_t w;
  uint8_t want[64];
  hzc_value_t v;
  hzc__wr_init(&w);
  hzc__wr_data(&w, HZC__TYPE_STRING, "k1", 2);
  size_t n = unhex("00000000 fffffff5 00000002 6b31", want);
  CHECK_EQ(w.len, n);
  CHECK_MEMEQ(w.p, want, n);
  CHECK_EQ(hzc__data_decode(w.p, w.len, &v), 0);
  CHECK_EQ(v.type, HZC_STRING);
  CHECK_EQ(v.type_id, -11);
  CHECK_EQ(v.len, 2);
  CHECK_MEMEQ(v.data, "k1", 2);
  w.len = 0;
  static const uint8_t raw[] = {112, 4, 0xff, 4, 112, 0xdd, 43}; /* §2.1, Java-generated */
  hzc__wr_data(&w, HZC__TYPE_BYTES, raw, sizeof raw);
  n = unhex("00000000 fffffff4 00000007 7004ff0470dd2b", want);
  CHECK_EQ(w.len, n);
  CHECK_MEMEQ(w.p, want, n);
  CHECK_EQ(hzc__data_decode(w.p, w.len, &v), 0);
  CHECK_EQ(v.type, HZC_BYTES);
  CHECK_EQ(v.len, 7);
  CHECK_MEMEQ(v.data, raw, 7);
  /* String length is the UTF-8 byte count, supplementary chars as 4-byte UTF-8 */
  const char *s = "Pijamalı hasta, yağız şoföre çabucak güvendi.";
  w.len = 0;
  hzc__wr_data(&w, HZC__TYPE_STRING, s, strlen(s));
  CHECK_EQ(strlen(s), 52);
  CHECK_EQ(hzshm__be32_get(w.p + 8), 0x34);
  const char *emoji = "\xF0\x9F\x98\x80";
  w.len = 0;
  hzc__wr_data(&w, HZC__TYPE_STRING, emoji, 4);
  CHECK_EQ(w.len, 16);
  CHECK_EQ(hzshm__be32_get(w.p + 8), 4);
  CHECK_MEMEQ(w.p + 12, emoji, 4);
  /* other types: Integer 56789 -> HZC_OTHER with its type id and payload */
  n = unhex("00000000 fffffff9 0000ddd5", want);
  CHECK_EQ(hzc__data_decode(want, n, &v), 0);
  CHECK_EQ(v.type, HZC_OTHER);
  CHECK_EQ(v.type_id, -7);
  CHECK_EQ(v.len, 4);
  CHECK_EQ(hzc__data_decode(want, 0, &v), 0);
  CHECK_EQ(v.type, HZC_NULL);
  /* malformed: short header, length overrun, negative length */
  CHECK_EQ(hzc__data_decode(want, 7, &v), HZSHM_EPROTO);
  n = unhex("00000000 fffffff4 00000008 7004ff0470dd2b", want);
  CHECK_EQ(hzc__data_decode(want, n, &v), HZSHM_EPROTO);
  n = unhex("00000000 fffffff5 ffffffff", want);
  CHECK_EQ(hzc__data_decode(want, n, &v), HZSHM_EPROTO);
  n = unhex("00000000 fffffff5 000000", want);
  CHECK_EQ(hzc__data_decode(want, n, &v), HZSHM_EPROTO);
  hzc__wr_free(&w);
  /* UTF-8 validation */
  CHECK(hzshm__utf8_valid("abc", 3));
  CHECK(hzshm__utf8_valid(s, strlen(s)));
  CHECK(hzshm__utf8_valid(emoji, 4));
  CHECK(!hzshm__utf8_valid(emoji, 3));                 /* truncated */
  CHECK(!hzshm__utf8_valid("\xC0\x80", 2));            /* overlong NUL */
  CHECK(!hzshm__utf8_valid("\xED\xA0\x80", 3));        /* surrogate */
  CHECK(!hzshm__utf8_valid("\xF4\x90\x80\x80", 4));    /* > U+10FFFF */
  CHECK(!hzshm__utf8_valid("\xFF", 1));
  CHECK(!hzshm__utf8_valid("\x80", 1));
}

TEST_CASE(builder_dumps) {
  hzc__mb_t b;
  uint8_t want[128];
  /* §1.7 Map.Get "m"/"k1", corr 1, partition 21 */
  hzc__enc_map_key(&b, HZC__MT_MAP_GET, 21, "m", "k1", 2);
  CHECK_EQ(hzc__mb_finish(&b), 0);
  hzc__msg_set_corr(b.w.p, 1);
  size_t n = unhex("1e000000 00c0 00020100 0100000000000000 15000000 0000000000000000"
                   "07000000 0000 6d"
                   "14000000 0020 00000000 fffffff5 00000002 6b31",
                   want);
  CHECK_EQ(b.w.len, n);
  CHECK_MEMEQ(b.w.p, want, n);
  hzc__mb_free(&b);
  /* §1.7 Client.Ping, corr 2 */
  hzc__enc_ping(&b);
  CHECK_EQ(hzc__mb_finish(&b), 0);
  hzc__msg_set_corr(b.w.p, 2);
  n = unhex("16000000 00e0 000b0000 0200000000000000 ffffffff", want);
  CHECK_EQ(b.w.len, n);
  CHECK_MEMEQ(b.w.p, want, n);
  hzc__mb_free(&b);
  /* Authentication: 2.8 initial frame (36 bytes) then the 7 parameters */
  hzc_uuid_t u;
  for (int i = 0; i < 16; i++) u.b[i] = (uint8_t)(0x11 * i);
  hzc__enc_auth(&b, "dev", &u, "hz.client_1");
  CHECK_EQ(hzc__mb_finish(&b), 0);
  hzc__msg_t m;
  CHECK_EQ(hzc__msg_parse(b.w.p, b.w.len, &m), 0);
  CHECK_EQ(m.n, 9);
  CHECK_EQ(m.f[0].len, 36);
  CHECK_EQ(hzc__msg_type(&m), HZC__MT_AUTH);
  CHECK_EQ(m.f[0].p[33], 1);
  CHECK_EQ(m.f[0].p[34], 1);
  CHECK_EQ(m.f[0].p[35], 0);
  CHECK_EQ(m.f[2].flags, HZC__F_NULL);
  CHECK_EQ(m.f[3].flags, HZC__F_NULL);
  CHECK_EQ(m.f[7].flags, HZC__F_BEGIN_DS);
  CHECK_EQ(m.f[8].flags, (HZC__F_END_DS | HZC__F_FINAL));
  CHECK_LT(b.w.len, 4096); /* the pre-auth message cap */
  hzc__msg_free(&m);
  hzc__mb_free(&b);
}

static void hzt_closed(void *ud) { *(int *)ud = 1; }

/* ---- decoder ---- */
typedef struct {
  int n;
  hzc__msg_t last;
  size_t last_frames;
  int64_t corr;
} got_t;

static int on_msg(void *ud, hzc__msg_t *m) {
  got_t *g = ud;
  g->n++;
  g->last_frames = m->n;
  g->corr = hzc__msg_corr(m);
  return 0;
}

static void encode_get(hzc__mb_t *b, int64_t corr, size_t vlen) {
  uint8_t *v = calloc(1, vlen + 1);
  hzc__enc_map_put(b, HZC__MT_MAP_PUT, 3, "map", "key", 3, v, vlen, -1);
  CHECK_EQ(hzc__mb_finish(b), 0);
  hzc__msg_set_corr(b->w.p, corr);
  free(v);
}

TEST_CASE(decoder) {
  hzc__mb_t b;
  got_t g;
  hzc__fdec_t d;
  /* byte by byte, two messages back to back */
  encode_get(&b, 7, 100);
  memset(&g, 0, sizeof g);
  hzc__fdec_init(&d, 0);
  for (int rep = 0; rep < 2; rep++)
    for (size_t i = 0; i < b.w.len; i++) CHECK_EQ(hzc__fdec_feed(&d, b.w.p + i, 1, on_msg, &g), 0);
  CHECK_EQ(g.n, 2);
  CHECK_EQ(g.last_frames, 4);
  CHECK_EQ(g.corr, 7);
  /* truncated: nothing delivered, no error, completes later */
  CHECK_EQ(hzc__fdec_feed(&d, b.w.p, b.w.len - 1, on_msg, &g), 0);
  CHECK_EQ(g.n, 2);
  CHECK_EQ(hzc__fdec_feed(&d, b.w.p + b.w.len - 1, 1, on_msg, &g), 0);
  CHECK_EQ(g.n, 3);
  hzc__fdec_free(&d);
  /* frame length below the header, and above the message bound */
  uint8_t bad[6] = {5, 0, 0, 0, 0, 0x20};
  hzc__fdec_init(&d, 1024);
  CHECK_EQ(hzc__fdec_feed(&d, bad, 6, on_msg, &g), HZSHM_EPROTO);
  hzc__fdec_free(&d);
  uint8_t big[6] = {0, 0, 0, 0x7f, 0, 0x20};
  hzc__fdec_init(&d, 1024);
  CHECK_EQ(hzc__fdec_feed(&d, big, 6, on_msg, &g), HZSHM_EPROTO);
  hzc__fdec_free(&d);
  uint8_t neg[6] = {0xff, 0xff, 0xff, 0xff, 0, 0x20};
  hzc__fdec_init(&d, 0);
  CHECK_EQ(hzc__fdec_feed(&d, neg, 6, on_msg, &g), HZSHM_EPROTO);
  hzc__fdec_free(&d);
  /* a message of many small frames over the bound */
  hzc__fdec_init(&d, 64);
  int rc = 0;
  for (int i = 0; i < 40 && rc == 0; i++) {
    uint8_t f[8] = {8, 0, 0, 0, 0, 0, 'a', 'b'};
    rc = hzc__fdec_feed(&d, f, 8, on_msg, &g);
  }
  CHECK_EQ(rc, HZSHM_EPROTO);
  hzc__fdec_free(&d);
  /* initial frame too short for a header */
  uint8_t shortinit[10] = {10, 0, 0, 0, 0, 0xe0, 1, 2, 3, 4};
  hzc__fdec_init(&d, 0);
  CHECK_EQ(hzc__fdec_feed(&d, shortinit, 10, on_msg, &g), HZSHM_EPROTO);
  hzc__fdec_free(&d);

  /* fragmentation: split the 4 frames of the message into 3 fragments */
  size_t off[5], k = 0, o = 0;
  while (o < b.w.len) {
    off[k++] = o;
    o += hzshm__le32_get(b.w.p + o);
  }
  off[k] = o;
  CHECK_EQ(k, 4);
  hzc__wr_t fw;
  hzc__wr_init(&fw);
  const size_t cut[4] = {0, 2, 3, 4}; /* fragments: frames [0,2), [2,3), [3,4) */
  for (int f = 0; f < 3; f++) {
    uint16_t fl = f == 0 ? HZC__F_BEGIN_FRAGMENT : f == 2 ? HZC__F_END_FRAGMENT : 0;
    hzc__wr_i32le(&fw, 14);
    hzc__wr_u16le(&fw, fl);
    hzc__wr_i64le(&fw, 99); /* fragmentation id */
    size_t start = fw.len;
    hzc__wr_bytes(&fw, b.w.p + off[cut[f]], off[cut[f + 1]] - off[cut[f]]);
    /* clear the original flags' fragment bits and make the fragment's last frame final */
    size_t lastf = start + off[cut[f + 1] - 1] - off[cut[f]];
    uint16_t lf = hzshm__le16_get(fw.p + lastf + 4);
    hzshm__le16_put(fw.p + lastf + 4, (uint16_t)(lf | HZC__F_FINAL));
    if (cut[f] == 0) hzshm__le16_put(fw.p + start + 4, HZC__F_UNFRAGMENTED);
  }
  memset(&g, 0, sizeof g);
  hzc__fdec_init(&d, 0);
  CHECK_EQ(hzc__fdec_feed(&d, fw.p, fw.len, on_msg, &g), 0);
  CHECK_EQ(g.n, 1);
  CHECK_EQ(g.last_frames, 4);
  CHECK_EQ(g.corr, 7);
  hzc__fdec_free(&d);
  /* middle fragment with an unknown id */
  uint8_t mid[20];
  memcpy(mid, "\x0e\x00\x00\x00\x00\x20", 6);
  memset(mid + 6, 0x42, 8);
  hzc__fdec_init(&d, 0);
  CHECK_EQ(hzc__fdec_feed(&d, mid, 14, on_msg, &g), HZSHM_EPROTO);
  hzc__fdec_free(&d);
  /* too many open fragmented messages */
  hzc__fdec_init(&d, 0);
  rc = 0;
  for (int i = 0; i < 40 && rc == 0; i++) {
    hzc__wr_t x;
    hzc__wr_init(&x);
    hzc__wr_i32le(&x, 14);
    hzc__wr_u16le(&x, HZC__F_BEGIN_FRAGMENT);
    hzc__wr_i64le(&x, i);
    hzc__wr_bytes(&x, b.w.p, off[1]);
    hzshm__le16_put(x.p + 14 + 4, HZC__F_UNFRAGMENTED | HZC__F_FINAL);
    rc = hzc__fdec_feed(&d, x.p, x.len, on_msg, &g);
    hzc__wr_free(&x);
  }
  CHECK_EQ(rc, HZSHM_EPROTO);
  hzc__fdec_free(&d);
  hzc__wr_free(&fw);
  /* pseudo-random garbage: never crashes, never delivers more than it can */
  uint32_t seed = 12345;
  for (int t = 0; t < 2000; t++) {
    uint8_t junk[256];
    for (size_t i = 0; i < sizeof junk; i++) {
      seed = seed * 1103515245u + 12345u;
      junk[i] = (uint8_t)(seed >> 16);
    }
    junk[0] = (uint8_t)(6 + (junk[0] & 63));
    junk[1] = junk[2] = junk[3] = 0;
    hzc__fdec_init(&d, 4096);
    (void)hzc__fdec_feed(&d, junk, sizeof junk, on_msg, &g);
    hzc__fdec_free(&d);
  }
  hzc__mb_free(&b);
}

/* ---- codec round trips ---- */

/* Encodes and parses b into m. */
static void finish_parse(hzc__mb_t *b, hzc__msg_t *m) {
  CHECK_EQ(hzc__mb_finish(b), 0);
  CHECK_EQ(hzc__msg_parse(b->w.p, b->w.len, m), 0);
}

/* Re-runs decode on every prefix (by frames) of m, and on m with its
 * initial frame shortened: no crash, and the full message must decode. */
typedef int (*dec_fn)(const hzc__msg_t *m);
static void sweep(const hzc__msg_t *m, dec_fn dec) {
  CHECK_EQ(dec(m), 0);
  for (size_t nf = 1; nf < m->n; nf++) {
    hzc__msg_t t = *m;
    t.n = nf;
    int rc = dec(&t);
    CHECK(rc == 0 || rc == HZSHM_EPROTO);
  }
  hzc__frame_t f0 = m->f[0];
  for (uint32_t l = 12; l < f0.len; l++) {
    hzc__msg_t t = *m;
    hzc__frame_t *fr = malloc(m->n * sizeof *fr);
    memcpy(fr, m->f, m->n * sizeof *fr);
    fr[0].len = l;
    t.f = fr;
    int rc = dec(&t);
    CHECK(rc == 0 || rc == HZSHM_EPROTO);
    free(fr);
  }
}

static int cb_part(void *ud, const hzc_uuid_t *o, int32_t p) {
  (*(int *)ud)++;
  return 0;
}
static int dec_members(const hzc__msg_t *m) {
  int32_t v;
  hzc__member_info_t *mi;
  size_t n;
  int rc = hzc__dec_members_view(m, &v, &mi, &n);
  if (rc == 0) free(mi);
  return rc;
}
static int dec_parts(const hzc__msg_t *m) {
  int32_t v;
  int cnt = 0;
  return hzc__dec_partitions_view(m, &v, cb_part, &cnt);
}
static int dec_auth(const hzc__msg_t *m) {
  hzc__auth_resp_t r;
  return hzc__dec_auth(m, &r);
}
static int cb_inv(void *ud, const hzc__inv_t *inv) {
  (*(int *)ud)++;
  return 0;
}
static int dec_inv(const hzc__msg_t *m) {
  int n = 0;
  return hzc__dec_invalidation(m, cb_inv, &n);
}
static int cb_seq(void *ud, const char *map, int32_t p, int64_t s) { return 0; }
static int cb_uuid(void *ud, int32_t p, const hzc_uuid_t *u) { return 0; }
static int dec_meta(const hzc__msg_t *m) { return hzc__dec_fetch_meta(m, cb_seq, cb_uuid, NULL); }
static int cb_entry(void *ud, const hzc_value_t *k, const hzc_value_t *v) { return 0; }
static int dec_getall(const hzc__msg_t *m) { return hzc__dec_get_all(m, cb_entry, NULL); }
static int dec_error(const hzc__msg_t *m) {
  int32_t code;
  char a[64], b[64];
  return hzc__dec_error(m, &code, a, sizeof a, b, sizeof b);
}
static int dec_obj(const hzc__msg_t *m) {
  hzc_uuid_t s;
  char a[64], b[64];
  int d;
  return hzc__dec_obj_event(m, &s, a, sizeof a, b, sizeof b, &d);
}
static int dec_data(const hzc__msg_t *m) {
  hzc_value_t v;
  return hzc__dec_resp_data(m, &v);
}

static void put_address(hzc__mb_t *b, const char *host, int port) {
  hzc__mb_begin(b);
  hzc__mb_open(b, 0);
  hzc__wr_i32le(&b->w, port);
  hzc__mb_string(b, host);
  hzc__mb_end(b);
}

TEST_CASE(codecs) {
  hzc__mb_t b;
  hzc__msg_t m;
  hzc_uuid_t u1, u2;
  for (int i = 0; i < 16; i++) {
    u1.b[i] = (uint8_t)i;
    u2.b[i] = (uint8_t)(0xf0 | i);
  }
  /* Authentication response 2.7 layout + trailing newer frames */
  hzc__mb_response(&b, HZC__MT_AUTH + 1, 5, 0);
  hzc__wr_u8(&b.w, 0);
  hzc__wr_uuid(&b.w, &u1);
  hzc__wr_u8(&b.w, 1);
  hzc__wr_i32le(&b.w, 271);
  hzc__wr_uuid(&b.w, &u2);
  hzc__wr_u8(&b.w, 0);
  hzc__wr_i32le(&b.w, 3);
  hzc__wr_i32le(&b.w, 4);
  put_address(&b, "127.0.0.1", 5701);
  hzc__mb_string(&b, "5.5.0");
  hzc__mb_null(&b);
  hzc__mb_null(&b);
  hzc__mb_begin(&b);
  hzc__mb_end(&b);
  finish_parse(&b, &m);
  hzc__auth_resp_t ar;
  CHECK_EQ(hzc__dec_auth(&m, &ar), 0);
  CHECK_EQ(ar.status, 0);
  CHECK_EQ(ar.partition_count, 271);
  CHECK_MEMEQ(&ar.member, &u1, 16);
  CHECK_MEMEQ(&ar.cluster_id, &u2, 16);
  CHECK(ar.has_versions);
  CHECK_EQ(ar.member_list_version, 3);
  CHECK_EQ(ar.port, 5701);
  CHECK_STREQ(ar.host, "127.0.0.1");
  CHECK_STREQ(ar.server_version, "5.5.0");
  sweep(&m, dec_auth);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* MembersView with two members, one with extra nested frames */
  hzc__mb_event(&b, HZC__MT_VIEW_MEMBERS, 9, -1);
  hzc__wr_i32le(&b.w, 7);
  hzc__mb_begin(&b);
  for (int i = 0; i < 2; i++) {
    hzc__mb_begin(&b);
    hzc__mb_open(&b, 0);
    hzc__wr_uuid(&b.w, i ? &u2 : &u1);
    hzc__wr_u8(&b.w, (uint8_t)i);
    put_address(&b, "127.0.0.1", 5701 + i);
    hzc__mb_begin(&b); /* attributes map */
    hzc__mb_string(&b, "k");
    hzc__mb_string(&b, "v");
    hzc__mb_end(&b);
    hzc__mb_end(&b);
  }
  hzc__mb_end(&b);
  finish_parse(&b, &m);
  int32_t ver;
  hzc__member_info_t *mi;
  size_t nm;
  CHECK_EQ(hzc__dec_members_view(&m, &ver, &mi, &nm), 0);
  CHECK_EQ(ver, 7);
  CHECK_EQ(nm, 2);
  CHECK_EQ(mi[1].port, 5702);
  CHECK_EQ(mi[1].lite, 1);
  CHECK_MEMEQ(&mi[1].uuid, &u2, 16);
  free(mi);
  sweep(&m, dec_members);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* PartitionsView: two owners */
  hzc__mb_event(&b, HZC__MT_VIEW_PARTITIONS, 9, -1);
  hzc__wr_i32le(&b.w, 2);
  hzc__mb_begin(&b);
  int32_t p1[] = {0, 1, 2}, p2[] = {3};
  hzc__mb_open(&b, 0);
  for (int i = 0; i < 3; i++) hzc__wr_i32le(&b.w, p1[i]);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, p2[0]);
  hzc__mb_end(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u1);
  hzc__wr_uuid(&b.w, &u2);
  finish_parse(&b, &m);
  int cnt = 0;
  CHECK_EQ(hzc__dec_partitions_view(&m, &ver, cb_part, &cnt), 0);
  CHECK_EQ(cnt, 4);
  CHECK_EQ(ver, 2);
  sweep(&m, dec_parts);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* single and batch invalidations */
  hzc__mb_event(&b, HZC__MT_MAP_INVALIDATION, 3, 21);
  hzc__wr_uuid(&b.w, &u1);
  hzc__wr_uuid(&b.w, &u2);
  hzc__wr_i64le(&b.w, 42);
  hzc__mb_data_string(&b, "k1", 2);
  finish_parse(&b, &m);
  cnt = 0;
  CHECK_EQ(hzc__dec_invalidation(&m, cb_inv, &cnt), 0);
  CHECK_EQ(cnt, 1);
  sweep(&m, dec_inv);
  hzc__msg_free(&m);
  hzc__mb_free(&b);
  hzc__mb_event(&b, HZC__MT_MAP_INVALIDATION, 3, -1); /* clear-all: null key */
  hzc__wr_uuid(&b.w, &u1);
  hzc__wr_uuid(&b.w, &u2);
  hzc__wr_i64le(&b.w, 43);
  hzc__mb_null(&b);
  finish_parse(&b, &m);
  cnt = 0;
  CHECK_EQ(hzc__dec_invalidation(&m, cb_inv, &cnt), 0);
  CHECK_EQ(cnt, 1);
  hzc__msg_free(&m);
  hzc__mb_free(&b);
  hzc__mb_event(&b, HZC__MT_MAP_BATCH_INVALIDATION, 3, -1);
  hzc__mb_begin(&b);
  hzc__mb_data_string(&b, "a", 1);
  hzc__mb_data_string(&b, "b", 1);
  hzc__mb_end(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u1);
  hzc__wr_uuid(&b.w, &u1);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u2);
  hzc__wr_uuid(&b.w, &u2);
  hzc__mb_open(&b, 0);
  hzc__wr_i64le(&b.w, 1);
  hzc__wr_i64le(&b.w, 2);
  finish_parse(&b, &m);
  cnt = 0;
  CHECK_EQ(hzc__dec_invalidation(&m, cb_inv, &cnt), 0);
  CHECK_EQ(cnt, 2);
  sweep(&m, dec_inv);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* metadata response */
  hzc__mb_response(&b, HZC__MT_MAP_FETCH_META + 1, 3, 0);
  hzc__mb_begin(&b);
  hzc__mb_string(&b, "m");
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 5);
  hzc__wr_i64le(&b.w, 9);
  hzc__mb_end(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 5);
  hzc__wr_uuid(&b.w, &u1);
  finish_parse(&b, &m);
  sweep(&m, dec_meta);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* getAll response */
  hzc__mb_response(&b, HZC__MT_MAP_GET_ALL + 1, 3, 0);
  hzc__mb_begin(&b);
  hzc__mb_data_string(&b, "k", 1);
  hzc__mb_data_bytes(&b, "v", 1);
  hzc__mb_end(&b);
  finish_parse(&b, &m);
  sweep(&m, dec_getall);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* error response with a stack trace */
  hzc__mb_response(&b, 0, 3, 0);
  hzc__mb_begin(&b);
  hzc__mb_begin(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 62);
  hzc__mb_string(&b, "com.hazelcast.spi.exception.WrongTargetException");
  hzc__mb_string(&b, "wrong target");
  hzc__mb_begin(&b);
  hzc__mb_begin(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 10);
  hzc__mb_string(&b, "C");
  hzc__mb_string(&b, "m");
  hzc__mb_null(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  finish_parse(&b, &m);
  int32_t code;
  char cls[64], msg[64];
  CHECK_EQ(hzc__dec_error(&m, &code, cls, sizeof cls, msg, sizeof msg), 0);
  CHECK_EQ(code, 62);
  CHECK_STREQ(msg, "wrong target");
  CHECK_EQ(strncmp(cls, "com.hazelcast.spi", 17), 0);
  sweep(&m, dec_error);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* distributed-object event */
  hzc__mb_event(&b, HZC__MT_OBJ_EVENT, 3, -1);
  hzc__wr_uuid(&b.w, &u1);
  hzc__mb_string(&b, "m");
  hzc__mb_string(&b, "hz:impl:mapService");
  hzc__mb_string(&b, "DESTROYED");
  finish_parse(&b, &m);
  sweep(&m, dec_obj);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* Get response: value, null value, and a Data whose length field lies */
  hzc__mb_response(&b, HZC__MT_MAP_GET + 1, 3, 0);
  hzc__mb_data_bytes(&b, "xyz", 3);
  finish_parse(&b, &m);
  hzc_value_t v;
  CHECK_EQ(hzc__dec_resp_data(&m, &v), 0);
  CHECK_EQ(v.type, HZC_BYTES);
  CHECK_EQ(v.len, 3);
  sweep(&m, dec_data);
  hzc__msg_free(&m);
  hzc__mb_free(&b);
  hzc__mb_response(&b, HZC__MT_MAP_GET + 1, 3, 0);
  hzc__mb_null(&b);
  finish_parse(&b, &m);
  CHECK_EQ(hzc__dec_resp_data(&m, &v), 0);
  CHECK_EQ(v.type, HZC_NULL);
  hzc__msg_free(&m);
  hzc__mb_free(&b);
  hzc__mb_response(&b, HZC__MT_MAP_GET + 1, 3, 0);
  hzc__mb_open(&b, 0);
  hzc__wr_i32be(&b.w, 0);
  hzc__wr_i32be(&b.w, -12);
  hzc__wr_i32be(&b.w, 1000);
  finish_parse(&b, &m);
  CHECK_EQ(hzc__dec_resp_data(&m, &v), HZSHM_EPROTO);
  hzc__msg_free(&m);
  hzc__mb_free(&b);

  /* bool / int responses, including an old 13-byte Delete response */
  hzc__mb_response(&b, HZC__MT_MAP_DELETE + 1, 3, 0);
  finish_parse(&b, &m);
  int bv, present;
  int32_t iv;
  CHECK_EQ(hzc__dec_resp_bool(&m, &bv, &present), 0);
  CHECK_EQ(present, 0);
  CHECK_EQ(hzc__dec_resp_bool(&m, &bv, NULL), HZSHM_EPROTO);
  CHECK_EQ(hzc__dec_resp_i32(&m, &iv), HZSHM_EPROTO);
  hzc__msg_free(&m);
  hzc__mb_free(&b);
}

static void hzt_closed(void *ud);
/* Client arguments are checked before anything is allocated or sent (a port-less
 * "127.0.0.1" is valid since issue 13: port 5701; tests/e2e/test_members.c). */
TEST_CASE(client_args) {
  uv_loop_t loop;
  CHECK_EQ(uv_loop_init(&loop), 0);
  hzc_client_t *c = NULL;
  const char *good[1] = {"127.0.0.1:5701"}, *bad1[1] = {"127.0.0.1:"}, *bad2[1] = {"h:99999"}, *bad3[1] = {":5701"};
  hzc_config_t cfg = {.addrs = good, .naddrs = 0};
  CHECK_EQ(hzc_client_new(&loop, &cfg, &c), HZSHM_EINVAL);
  cfg.naddrs = 1;
  cfg.addrs = bad1;
  CHECK_EQ(hzc_client_new(&loop, &cfg, &c), HZSHM_EINVAL);
  cfg.addrs = bad2;
  CHECK_EQ(hzc_client_new(&loop, &cfg, &c), HZSHM_EINVAL);
  cfg.addrs = bad3;
  CHECK_EQ(hzc_client_new(&loop, &cfg, &c), HZSHM_EINVAL);
  static char longname[4000];
  memset(longname, 'x', sizeof longname - 1);
  cfg.addrs = good;
  cfg.cluster_name = longname;
  CHECK_EQ(hzc_client_new(&loop, &cfg, &c), HZSHM_EINVAL);
  CHECK_EQ(hzc_client_new(NULL, &cfg, &c), HZSHM_EINVAL);
  CHECK(c == NULL);
  /* a client that never connected: calls before connect are accepted or refused cleanly, close frees */
  cfg.cluster_name = NULL;
  CHECK_EQ(hzc_client_new(&loop, &cfg, &c), 0);
  CHECK(!hzc_connected(c));
  CHECK_EQ(hzc_partition_count(c), 0);
  CHECK_EQ(hzc_member_requests(c, 0), -1);
  hzc_kv_t kv = {"k", 1, "v", 1};
  CHECK_EQ(hzc_map_put_all(c, "m", &kv, 1, NULL, NULL), HZSHM_EDISCONNECTED);
  CHECK_EQ(hzc_fetch_invalidation_metadata(c, NULL, 0, NULL, NULL, NULL, NULL), HZSHM_EDISCONNECTED);
  int closed = 0;
  hzc_client_close(c, hzt_closed, &closed);
  CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
  CHECK_EQ(closed, 1);
  CHECK_EQ(uv_loop_close(&loop), 0);
}
