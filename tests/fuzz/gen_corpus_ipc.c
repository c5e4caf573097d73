/* gen_corpus_ipc.c - writes the seed corpora of fuzz_req and fuzz_resp from
 * real frames made by the real encoders (ipc.c):
 *   gen_corpus_ipc req DIR   request streams as libhzshm sends them: every
 *                            op, a prefixed session, multi-byte UTF-8, a TTL,
 *                            a pipelined burst
 *   gen_corpus_ipc resp DIR  answers as the agent sends them, each behind
 *                            fuzz_resp's two control bytes (call, capacity) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

static const char *dir;
static int nfile;
static uint8_t buf[1 << 16];
static size_t len;

static void emit(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/seed-%02d", dir, nfile++);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(buf, 1, len, f) != len) exit(1);
  fclose(f);
  len = 0;
}

static void req(uint8_t op, uint32_t id, const char *sid, const char *key, int64_t ttl, const char *val) {
  hzshm__ipc_req_t r = {.sid = sid, .sidlen = sid ? strlen(sid) : 0, .key = key, .klen = key ? strlen(key) : 0,
                        .ttl_ms = ttl, .val = val, .vlen = val ? strlen(val) : 0};
  long n = hzshm__ipc_req_encode(buf + len, sizeof buf - len, op, id, &r);
  if (n < 0) exit(1);
  len += (size_t)n;
}

static void resp(uint8_t ctl0, uint8_t ctl1, uint8_t op, uint32_t id, int32_t status, int32_t aux, const char *val) {
  buf[len++] = ctl0;
  buf[len++] = ctl1;
  long n = hzshm__ipc_resp_encode(buf + len, sizeof buf - len, op, id, status, aux, val, val ? strlen(val) : 0);
  if (n < 0) exit(1);
  len += (size_t)n;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  dir = argv[2];
  if (strcmp(argv[1], "req") == 0) {
    req(HZSHM__OP_HELLO, 1, NULL, NULL, 0, NULL), emit();
    req(HZSHM__OP_GET, 2, "s0", "k1", 0, NULL), emit();
    req(HZSHM__OP_HAS, 3, "app.orders", "order-17", 0, NULL), emit();
    req(HZSHM__OP_SET, 4, "s0", "k1", -1, "value"), emit();
    req(HZSHM__OP_SET, 5, "app.s", "k\xc3\xa9y-\xe2\x82\xac-\xf0\x9f\x98\x80", 60000, "v\x00\xff"), emit();
    req(HZSHM__OP_DEL, 6, "s0", "k1", 0, NULL), emit();
    req(HZSHM__OP_DESTROY, 7, "app.s", NULL, 0, NULL), emit();
    /* a pipelined burst, as several threads on one connection would not do
     * but a client may */
    req(HZSHM__OP_HELLO, 8, NULL, NULL, 0, NULL);
    for (uint32_t i = 0; i < 6; i++) req(HZSHM__OP_GET, 9 + i, "s1", i & 1 ? "ka" : "kb", 0, NULL);
    req(HZSHM__OP_SET, 20, "s1", "ka", 0, "a longer value that spans a few words");
    emit();
  } else if (strcmp(argv[1], "resp") == 0) {
    /* ctl0: call (0 get, 1 view, 2 has, 3 set, 4 del, 5 destroy) | 0x80 patch reqid; ctl1: capacity / 16 */
    resp(0x80, 4, HZSHM__OP_GET, 1, 0, 0, "value"), emit();
    resp(0x80, 0, HZSHM__OP_GET, 1, 0, 0, "value"), emit();
    resp(0x80, 1, HZSHM__OP_GET, 1, 0, 0, "a value longer than sixteen bytes"), emit();
    resp(0x80, 4, HZSHM__OP_GET, 1, HZSHM_ENOTFOUND, 0, NULL), emit();
    resp(0x80, 4, HZSHM__OP_GET, 1, HZSHM_ETYPE, -7, NULL), emit();
    resp(0x81, 4, HZSHM__OP_GET, 1, 0, 0, "value"), emit();
    resp(0x82, 4, HZSHM__OP_HAS, 1, 0, 0, NULL), emit();
    resp(0x82, 4, HZSHM__OP_HAS, 1, HZSHM_ENOTFOUND, 0, NULL), emit();
    resp(0x83, 4, HZSHM__OP_SET, 1, 0, 0, NULL), emit();
    resp(0x83, 4, HZSHM__OP_SET, 1, HZSHM_EREMOTE, 0, NULL), emit();
    resp(0x84, 4, HZSHM__OP_DEL, 1, 0, 0, NULL), emit();
    resp(0x85, 4, HZSHM__OP_DESTROY, 1, HZSHM_EDISCONNECTED, 0, NULL), emit();
    resp(0x00, 4, HZSHM__OP_HELLO, 0, HZSHM_EPEER, 0, NULL), emit();     /* a refused peer */
    resp(0x00, 4, HZSHM__OP_GET, 0, HZSHM_EPROTO, 0, NULL), emit();      /* a refused frame */
    resp(0x80, 4, HZSHM__OP_GET, 1, 0, 0, "value");                      /* one answer and extra bytes */
    memcpy(buf + len, "HZSP", 4), len += 4;
    emit();
  } else {
    return 2;
  }
  printf("%d seeds in %s\n", nfile, dir);
  return 0;
}
