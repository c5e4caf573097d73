/* test_strings.c - value types end to end: a String written with
 * hzshm_set_typed is a java.lang.String in the cluster (checked by the
 * official Java client) and reads back typed (hit and agent); a String the
 * Java client wrote is filled into the segment as a String; hzshm_set still
 * writes byte[]; hzshm_get returns a String's UTF-8 bytes; bad types, bad
 * UTF-8 and stray request flags are refused and change nothing. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e.h"
#include "ipc.h"

static const char *MEMBERS;

static int java(const char *sid, const char *key, const char *mode, const char *utf8) {
  return e2e_java_value(HZSHM_E2E_SRC, MEMBERS, sid, key, mode, utf8);
}

static void expect_typed(hzshm_session_t *s, const char *key, const char *want, int32_t want_type) {
  char buf[128];
  size_t n = 0;
  int32_t t = 0;
  CHECK_RC(hzshm_get_typed(s, key, strlen(key), buf, sizeof buf, &n, &t), 0);
  CHECK_EQ(n, strlen(want));
  CHECK_MEMEQ(buf, want, n);
  CHECK_EQ(t, want_type);
  t = 0;
  CHECK_RC(hzshm_get_typed(s, key, strlen(key), buf, 1, &n, &t), HZSHM_EBUFSIZE);
  CHECK_EQ(n, strlen(want));
  CHECK_EQ(t, want_type);
  const void *v;
  t = 0;
  CHECK_RC(hzshm_get_view_local_typed(s, key, strlen(key), &v, &n, &t), 0); /* it is in the segment, typed */
  CHECK_EQ(n, strlen(want));
  CHECK_MEMEQ(v, want, n);
  CHECK_EQ(t, want_type);
  CHECK_RC(hzshm_view_release(s), 0);
  t = 0;
  CHECK_RC(hzshm_get_view_typed(s, key, strlen(key), &v, &n, &t), 0);
  CHECK_EQ(t, want_type);
  CHECK_RC(hzshm_view_release(s), 0);
  /* the untyped calls: the same bytes, whatever the type */
  CHECK_RC(hzshm_get(s, key, strlen(key), buf, sizeof buf, &n), 0);
  CHECK_EQ(n, strlen(want));
  CHECK_MEMEQ(buf, want, n);
}

TEST_CASE(strings) {
  MEMBERS = e2e_members();
  e2e_host_t o = {0};
  e2e_host_start(&o, "str", "strings");
  const char *sid = o.sid;
  hzshm_session_t *s = o.s;

  /* hzshm writes a String: typed here, a java.lang.String there */
  const char *str = "h\xc3\xa9llo \xe2\x82\xac";
  CHECK_RC(hzshm_set_typed(s, "s", 1, HZSHM_TYPE_STRING, str, strlen(str), -1), 0);
  expect_typed(s, "s", str, HZSHM_TYPE_STRING);
  CHECK_EQ(java(sid, "s", "string", str), 0);
  CHECK_NE(java(sid, "s", "bytes", str), 0); /* the check can fail */

  /* byte[] through both the old and the typed call */
  CHECK_RC(hzshm_set(s, "b", 1, "raw", 3), 0);
  expect_typed(s, "b", "raw", HZSHM_TYPE_BYTES);
  CHECK_EQ(java(sid, "b", "bytes", "raw"), 0);
  CHECK_RC(hzshm_set_typed(s, "s", 1, HZSHM_TYPE_BYTES, "now-bytes", 9, -1), 0); /* a type change replaces */
  expect_typed(s, "s", "now-bytes", HZSHM_TYPE_BYTES);

  /* the Java client writes a String: the agent's fill caches it as one */
  const char *js = "from java \xc3\xbc";
  CHECK_EQ(java(sid, "j", "put", js), 0);
  const void *v;
  size_t n;
  int32_t t;
  int rc = hzshm_get_view_local_typed(s, "j", 1, &v, &n, &t); /* the write's invalidation may be in flight */
  if (rc == 0) CHECK_RC(hzshm_view_release(s), 0);
  CHECK(rc == 0 || rc == HZSHM_EMISS);
  expect_typed(s, "j", js, HZSHM_TYPE_STRING);

  /* bad input: refused, nothing sent, the value unchanged */
  CHECK_RC(hzshm_set_typed(s, "s", 1, -7, "x", 1, -1), HZSHM_EINVAL);
  CHECK_RC(hzshm_set_typed(s, "s", 1, HZSHM_TYPE_STRING, "\xff", 1, -1), HZSHM_EINVAL);
  CHECK_RC(hzshm_set_typed(s, "s", 1, HZSHM_TYPE_STRING, "\xed\xa0\x80", 3, -1), HZSHM_EINVAL); /* surrogate */
  char buf[64];
  CHECK_RC(hzshm_get_typed(s, "s", 1, buf, sizeof buf, &n, NULL), HZSHM_EINVAL);
  expect_typed(s, "s", "now-bytes", HZSHM_TYPE_BYTES);

  /* the agent checks too: a String SET with bad UTF-8, the flag on a GET */
  int fd = e2e_raw_connect(o.ag.sock);
  CHECK_GE(fd, 0);
  uint8_t fr[4096];
  hzshm__ipc_req_t r = {.sid = sid, .sidlen = strlen(sid), .key = "s", .klen = 1, .ttl_ms = -1, .val = "\xc3",
                        .vlen = 1, .flags = HZSHM__IPC_F_STRING};
  long fl = hzshm__ipc_req_encode(fr, sizeof fr, HZSHM__OP_SET, 21, &r);
  CHECK_GT(fl, 0);
  CHECK_EQ(send(fd, fr, (size_t)fl, MSG_NOSIGNAL), fl);
  uint32_t id;
  uint8_t op;
  CHECK_RC(e2e_raw_read(fd, &id, &op, 10000), HZSHM_EINVAL);
  CHECK_EQ(id, 21);
  r.val = NULL;
  r.vlen = 0;
  fl = hzshm__ipc_req_encode(fr, sizeof fr, HZSHM__OP_GET, 22, &r);
  CHECK_GT(fl, 0);
  CHECK_EQ(send(fd, fr, (size_t)fl, MSG_NOSIGNAL), fl);
  CHECK_RC(e2e_raw_read(fd, &id, &op, 10000), HZSHM_EINVAL);
  CHECK_EQ(id, 22);
  close(fd);
  expect_typed(s, "s", "now-bytes", HZSHM_TYPE_BYTES);
  CHECK_EQ(java(sid, "s", "bytes", "now-bytes"), 0);

  CHECK_RC(hzshm_destroy(s), 0);
  e2e_host_stop(&o);
  printf("test_strings: ok\n");
}
