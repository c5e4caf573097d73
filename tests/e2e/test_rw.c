/* test_rw.c - read-your-writes on one host, through the API and the CLI,
 * against a real member: a set/del/destroy is visible to the next get of any
 * local process, and hits are served from shared memory (the agent's remote
 * get counter does not move). */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"

static char buf[1 << 20];

static hzshm_session_t *ttl_s;
static int ttl_gone(void *ud) {
  size_t n;
  return hzshm_get(ttl_s, "ttl", 3, buf, sizeof buf, &n) == HZSHM_ENOTFOUND;
}

static void api(hzshm_t *h, const char *sid) {
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, sid, strlen(sid), &s), 0);
  size_t vlen;
  CHECK_RC(hzshm_get(s, "k1", 2, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  hzshm_stats_t a = e2e_stats(h);
  CHECK_RC(hzshm_has(s, "k1", 2), HZSHM_ENOTFOUND); /* cached absence: a hit */
  hzshm_stats_t b = e2e_stats(h);
  CHECK_EQ(b.remote_gets, a.remote_gets);
  CHECK_GT(b.hits, a.hits);

  CHECK_RC(hzshm_set(s, "k1", 2, "v1", 2), 0);
  CHECK_RC(hzshm_get(s, "k1", 2, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 2);
  CHECK_MEMEQ(buf, "v1", 2);
  CHECK_RC(hzshm_set(s, "k1", 2, "value-two", 9), 0);
  a = e2e_stats(h);
  CHECK_RC(hzshm_get(s, "k1", 2, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 9);
  CHECK_MEMEQ(buf, "value-two", 9);
  b = e2e_stats(h);
  CHECK_EQ(b.remote_gets, a.remote_gets);
  CHECK_GT(b.hits, a.hits); /* served from the segment */
  const void *v;
  CHECK_RC(hzshm_get_view(s, "k1", 2, &v, &vlen), 0);
  CHECK_EQ(vlen, 9);
  CHECK_MEMEQ(v, "value-two", 9);
  hzshm_view_release(s);
  /* The segment-only view: a hit, cached absence, and a miss it leaves to the agent. */
  a = e2e_stats(h);
  CHECK_RC(hzshm_get_view_local(s, "k1", 2, &v, &vlen), 0);
  CHECK_EQ(vlen, 9);
  CHECK_MEMEQ(v, "value-two", 9);
  hzshm_view_release(s);
  CHECK_RC(hzshm_get_view_local(s, "never-asked", 11, &v, &vlen), HZSHM_EMISS);
  b = e2e_stats(h);
  CHECK_EQ(b.remote_gets, a.remote_gets); /* neither went to the agent */
  CHECK_RC(hzshm_get(s, "never-asked", 11, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_RC(hzshm_get_view_local(s, "never-asked", 11, &v, &vlen), HZSHM_ENOTFOUND);

  /* Another process reads our write at once. */
  pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    hzshm_t *h2;
    hzshm_session_t *s2;
    size_t n;
    static char b2[64];
    int ok = hzshm_open(getenv("E2E_NAME"), NULL, &h2) == 0 && hzshm_session_open(h2, sid, strlen(sid), &s2) == 0 &&
             hzshm_get(s2, "k1", 2, b2, sizeof b2, &n) == 0 && n == 9 && memcmp(b2, "value-two", 9) == 0;
    _exit(ok ? 0 : 1);
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

  CHECK_RC(hzshm_del(s, "k1", 2), 0);
  CHECK_RC(hzshm_get(s, "k1", 2, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_RC(hzshm_has(s, "k1", 2), HZSHM_ENOTFOUND);

  /* Empty value, binary value, a large value (may be above the largest size class). */
  CHECK_RC(hzshm_set(s, "empty", 5, "", 0), 0);
  CHECK_RC(hzshm_get(s, "empty", 5, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 0);
  CHECK_RC(hzshm_has(s, "empty", 5), 0);
  static char big[512 * 1024];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 + 3);
  CHECK_RC(hzshm_set(s, "big", 3, big, sizeof big), 0);
  CHECK_RC(hzshm_get(s, "big", 3, buf, 100, &vlen), HZSHM_EBUFSIZE);
  CHECK_EQ(vlen, sizeof big);
  CHECK_RC(hzshm_get(s, "big", 3, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, sizeof big);
  CHECK_MEMEQ(buf, big, sizeof big);
  /* UTF-8 keys. */
  const char *uk = "cl\xc3\xa9-\xe2\x82\xac";
  CHECK_RC(hzshm_set(s, uk, strlen(uk), "u", 1), 0);
  CHECK_RC(hzshm_get(s, uk, strlen(uk), buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 1);
  CHECK_EQ(buf[0], 'u');

  /* TTL: the entry expires in the cluster and here. */
  CHECK_RC(hzshm_set_ttl(s, "ttl", 3, "short", 5, 300), 0);
  CHECK_RC(hzshm_get(s, "ttl", 3, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 5);
  CHECK_MEMEQ(buf, "short", 5);
  ttl_s = s;
  int64_t gone = e2e_wait(ttl_gone, NULL, 15000);
  CHECK_GE(gone, 0);
  printf("entry with ttl 300 ms read as absent after %lld ms\n", (long long)(gone / 1000));

  CHECK_RC(hzshm_set(s, "k2", 2, "x", 1), 0);
  CHECK_RC(hzshm_destroy(s), 0);
  CHECK_RC(hzshm_get(s, "k2", 2, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_RC(hzshm_get(s, "empty", 5, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  /* The handle stays usable after destroy. */
  CHECK_RC(hzshm_set(s, "k3", 2, "after", 5), 0);
  CHECK_RC(hzshm_get(s, "k3", 2, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 5);
  CHECK_MEMEQ(buf, "after", 5);
  CHECK_RC(hzshm_destroy(s), 0);
  hzshm_session_close(s);
}

static void cli(hzshm_t *h, const char *name, const char *sid) {
  char out[4096];
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, sid, strlen(sid), &s), 0);
  size_t vlen;
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "get", sid, "ck", NULL}), 1);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "has", sid, "ck", NULL}), 1);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "set", sid, "ck", "from-cli", NULL}), 0);
  CHECK_RC(hzshm_get(s, "ck", 2, buf, sizeof buf, &vlen), 0); /* the CLI's write, read by the API */
  CHECK_EQ(vlen, 8);
  CHECK_MEMEQ(buf, "from-cli", 8);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "get", sid, "ck", NULL}), 0);
  CHECK_STREQ(out, "from-cli");
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "has", sid, "ck", NULL}), 0);
  CHECK_RC(hzshm_set(s, "ck", 2, "from-api", 8), 0);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "get", sid, "ck", NULL}), 0);
  CHECK_STREQ(out, "from-api");
  CHECK_EQ(e2e_cli(out, sizeof out, "line one\nline two\n", (const char *[]){"", "-n", name, "set", sid, "ck", "-", NULL}), 0);
  CHECK_RC(hzshm_get(s, "ck", 2, buf, sizeof buf, &vlen), 0);
  CHECK_EQ(vlen, 18);
  CHECK_MEMEQ(buf, "line one\nline two\n", 18);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "del", sid, "ck", NULL}), 0);
  CHECK_RC(hzshm_get(s, "ck", 2, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "set", sid, "c2", "x", NULL}), 0);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "destroy", sid, NULL}), 0);
  CHECK_RC(hzshm_get(s, "c2", 2, buf, sizeof buf, &vlen), HZSHM_ENOTFOUND);
  CHECK_EQ(e2e_cli(out, sizeof out, NULL, (const char *[]){"", "-n", name, "stat", NULL}), 0);
  CHECK(strstr(out, "hits: ") && strstr(out, "agent_state: serving") && strstr(out, "cluster_state: connected") &&
        strstr(out, "remote_gets: ") && strstr(out, "memory_limit: "));
  printf("--- hzshm stat ---\n%s------------------\n", out);
  hzshm_session_close(s);
}

/* Each case: an agent of its own serving cache `name` ("e2e-rw-PID"), a handle on it. */
static e2e_agent_t ag;
static char name[64];

static hzshm_t *rw_start(void) {
  snprintf(name, sizeof name, "e2e-rw-%d", (int)getpid());
  setenv("E2E_NAME", name, 1);
  e2e_agent_start(&ag, name, e2e_members());
  hzshm_t *h;
  CHECK_RC(hzshm_open(name, NULL, &h), 0);
  return h;
}

static void rw_stop(hzshm_t *h) {
  hzshm_close(h);
  CHECK_EQ(e2e_agent_stop(&ag), 0); /* clean exit (under ASan: leak-free) */
}

TEST_CASE(api) {
  hzshm_t *h = rw_start();
  char sid[64];
  snprintf(sid, sizeof sid, "rw-api-%d", (int)getpid());
  api(h, sid);
  rw_stop(h);
}

TEST_CASE(cli) {
  hzshm_t *h = rw_start();
  char sid[64];
  snprintf(sid, sizeof sid, "rw-cli-%d", (int)getpid());
  cli(h, name, sid);
  rw_stop(h);
}
