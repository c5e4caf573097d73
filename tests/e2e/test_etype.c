/* test_etype.c - a value of another type (java.lang.Integer, written by the
 * official Java client, JavaValue.java) is reported as HZSHM_ETYPE with its Hazelcast type id
 * (-7) through the API and as an error by the CLI; it is never cached as
 * bytes. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"

TEST_CASE(java_types) {
  e2e_host_t o = {0};
  e2e_host_start(&o, "ty", "etype");
  const char *name = o.name, *sid = o.sid;
  hzshm_session_t *s = o.s;
  CHECK_EQ(e2e_java_value(HZSHM_E2E_SRC, e2e_members(), sid, "num", "int", "42"), 0);
  char buf[64];
  size_t vlen = 0;
  for (int i = 0; i < 3; i++) { /* the first read goes to the cluster; the later ones too (never cached) */
    CHECK_RC(hzshm_get(s, "num", 3, buf, sizeof buf, &vlen), HZSHM_ETYPE);
    CHECK_EQ((int32_t)vlen, -7); /* Hazelcast's type id of java.lang.Integer */
  }
  int32_t type = 0;
  CHECK_RC(hzshm_get_typed(s, "num", 3, buf, sizeof buf, &vlen, &type), HZSHM_ETYPE);
  CHECK(type == -7 && (int32_t)vlen == -7);
  CHECK_RC(hzshm_has(s, "num", 3), 0); /* it exists */
  char out[256];
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "get", sid, "num", NULL}), 2);
  CHECK_RC(hzshm_destroy(s), 0);
  e2e_host_stop(&o);
  printf("test_etype: ok\n");
}
