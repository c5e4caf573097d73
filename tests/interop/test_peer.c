/* test_peer.c - the C peer helper against real members: byte-exact round
 * trips through the official Java client, reply accounting after a timeout,
 * bad input, cross-client events, and the partition ids the official client
 * computes for the hash vectors of docs/PROTOCOL-NOTES.md.
 *
 * usage: test_peer MEMBERS   (e.g. 127.0.0.1:5721,127.0.0.1:5722)
 */
#include "peer.h"
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void roundtrip(hzshm__peer_t *p, const char *map, const char *key, size_t vlen) {
  unsigned char *val = malloc(vlen + 1), *back = malloc(vlen + 1);
  for (size_t i = 0; i < vlen; i++) val[i] = (unsigned char)(i * 131 + vlen);
  size_t got = (size_t)-1;
  CHECK_RC(hzshm__peer_set(p, map, key, strlen(key), val, vlen), 0);
  CHECK_RC(hzshm__peer_get(p, map, key, strlen(key), back, vlen + 1, &got), 0);
  CHECK_EQ(got, vlen);
  CHECK(got != vlen || memcmp(val, back, vlen) == 0);
  free(val);
  free(back);
}

TEST_CASE(peer) {
  const char *members = itest_members();
  char map[64], reply[4096];
  snprintf(map, sizeof(map), "peer-test-%d", (int)getpid());

  hzshm__peer_t *p = NULL, *q = NULL;
  CHECK_RC(hzshm__peer_start(members, NULL, 60000, &p), 0);
  CHECK_NE(p, NULL);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "ping"), 0);
  CHECK_STREQ(reply, "ok pong");
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "members"), 0);
  CHECK_STREQ(reply, "ok 2");

  /* Byte-exact values of the sizes the benchmarks use, an empty one, ASCII and UTF-8 keys. */
  roundtrip(p, map, "k-empty", 0);
  roundtrip(p, map, "k-100", 100);
  roundtrip(p, map, "k-1k", 1024);
  roundtrip(p, map, "k-64k", 65536);
  roundtrip(p, map, "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87-\xc3\xa9-\xf0\x9f\x98\x80", 7);

  int has = -1;
  CHECK_RC(hzshm__peer_contains(p, map, "k-100", 5, &has), 0);
  CHECK_EQ(has, 1);
  CHECK_RC(hzshm__peer_delete(p, map, "k-100", 5), 0);
  CHECK_RC(hzshm__peer_contains(p, map, "k-100", 5, &has), 0);
  CHECK_EQ(has, 0);
  size_t vlen = 0;
  unsigned char small[4];
  CHECK_RC(hzshm__peer_get(p, map, "k-100", 5, small, sizeof(small), &vlen), HZSHM_ENOTFOUND);
  /* A buffer too small reports the needed size. */
  CHECK_RC(hzshm__peer_get(p, map, "k-1k", 4, small, sizeof(small), &vlen), HZSHM_EBUFSIZE);
  CHECK_EQ(vlen, 1024);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "size %s", map), 0);
  CHECK_STREQ(reply, "ok 4");

  /* A String value is not a byte[]: the peer says so instead of printing it. */
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "putstring %s s1 text", map), 0);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "get %s s1", map), HZSHM_EREMOTE);
  CHECK_NE(strstr(reply, "java.lang.String"), NULL);

  /* Bad input: unknown command and bad hex are errors, an embedded newline is refused locally. */
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "frobnicate"), HZSHM_EREMOTE);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "set %s k zz", map), HZSHM_EREMOTE);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "get %s\nping", map), HZSHM_EINVAL);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "get %s k", map), HZSHM_ENOTFOUND);

  /* Timeout: the late reply to "poll 1500" must not be taken as the reply to "ping". */
  CHECK_RC(hzshm__peer_cmd(p, 100, reply, sizeof(reply), "poll 1500"), HZSHM_ETIMEDOUT);
  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "ping"), 0);
  CHECK_STREQ(reply, "ok pong");

  /* Partition ids computed by the official client (PROTOCOL-NOTES.md, hash vectors). */
  static const struct { const char *key; const char *want; } parts[] = {
      {"k1", "ok 21"}, {"key-1", "ok 94"}, {"hello", "ok 270"}, {"default", "ok 69"}, {"x:", "ok 11"}};
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
    CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "partition %s", parts[i].key), 0);
    CHECK_STREQ(reply, parts[i].want);
  }

  /* A second client sees the first one's writes as an entry event and as a near-cache
   * invalidation whose source is the first client's UUID. */
  char p_uuid[64] = "";
  CHECK_RC(hzshm__peer_cmd(p, 10000, p_uuid, sizeof(p_uuid), "uuid"), 0);
  CHECK_RC(hzshm__peer_start(members, NULL, 60000, &q), 0);
  if (q != NULL) {
    CHECK_RC(hzshm__peer_cmd(q, 10000, reply, sizeof(reply), "listen %s", map), 0);
    CHECK_RC(hzshm__peer_cmd(q, 10000, reply, sizeof(reply), "listen-inval %s", map), 0);
    CHECK_RC(hzshm__peer_set(p, map, "ev", 2, "\x01\x02", 2), 0);
    int entry = 0, inval = 0;
    for (int i = 0; i < 2; i++) {
      CHECK_RC(hzshm__peer_cmd(q, 20000, reply, sizeof(reply), "poll 15000"), 0);
      if (strncmp(reply, "ok event ", 9) == 0 && strstr(reply, " ADDED ev 0102") != NULL) entry++;
      if (strncmp(reply, "ok inval ", 9) == 0 && strstr(reply, " ev ") != NULL && strstr(reply, p_uuid + 3) != NULL)
        inval++;
    }
    CHECK_EQ(entry, 1);
    CHECK_EQ(inval, 1);
    CHECK_RC(hzshm__peer_stop(q, 20000), 0);
  }

  CHECK_RC(hzshm__peer_cmd(p, 10000, reply, sizeof(reply), "destroy %s", map), 0);
  CHECK_RC(hzshm__peer_stop(p, 20000), 0);

  /* A launcher that cannot run: start fails with ECLOSED (EOF before "ok ready") and leaves no child. */
  setenv("HZSHM_PEER", "/nonexistent/hzpeer", 1);
  hzshm__peer_t *bad = NULL;
  CHECK_RC(hzshm__peer_start(members, NULL, 10000, &bad), HZSHM_ECLOSED);
  CHECK_EQ(bad, NULL);

  printf("test_peer: all checks passed\n");
}
