/* test_etype.c - a value of another type (java.lang.Integer, written by the
 * official Java client, JavaValue.java) is reported as HZSHM_ETYPE with its Hazelcast type id
 * (-7) through the API and as an error by the CLI; it is never cached as
 * bytes. */
#include <string.h>
#include <unistd.h>

#include "e2e.h"

int main(int argc, char **argv) {
  CHECK(argc == 2);
  char name[64], sid[64];
  snprintf(name, sizeof name, "e2e-ty-%d", (int)getpid());
  snprintf(sid, sizeof sid, "etype-%d", (int)getpid());
  e2e_agent_t ag = {0};
  e2e_agent_start(&ag, name, argv[1]);
  hzshm_t *h;
  hzshm_session_t *s;
  CHECK_RC(hzshm_open(name, NULL, &h), 0);
  CHECK_RC(hzshm_session_open(h, sid, strlen(sid), &s), 0);
  CHECK(e2e_java_value(HZSHM_E2E_SRC, argv[1], sid, "num", "int", "42") == 0);
  char buf[64];
  size_t vlen = 0;
  for (int i = 0; i < 3; i++) { /* the first read goes to the cluster; the later ones too (never cached) */
    CHECK_RC(hzshm_get(s, "num", 3, buf, sizeof buf, &vlen), HZSHM_ETYPE);
    CHECK((int32_t)vlen == -7); /* Hazelcast's type id of java.lang.Integer */
  }
  int32_t type = 0;
  CHECK_RC(hzshm_get_typed(s, "num", 3, buf, sizeof buf, &vlen, &type), HZSHM_ETYPE);
  CHECK(type == -7 && (int32_t)vlen == -7);
  CHECK_RC(hzshm_has(s, "num", 3), 0); /* it exists */
  char out[256];
  CHECK(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "get", sid, "num", NULL}) == 2);
  CHECK_RC(hzshm_destroy(s), 0);
  hzshm_session_close(s);
  hzshm_close(h);
  CHECK(e2e_agent_stop(&ag) == 0);
  printf("test_etype: ok\n");
  return 0;
}
