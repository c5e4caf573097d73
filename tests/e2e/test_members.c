/* test_members: member lists as operators write them (issue 13), against a
 * real member at argv[1] (127.0.0.1:PORT).
 *   - hzc_parse_address: host, host:port, [v6], [v6]:port, bare v6; bad forms
 *   - -m localhost:PORT serves (the name is resolved)
 *   - -m [::1]:PORT serves when the member listens on ::1; otherwise the
 *     agent logs the address and the reason, and keeps running
 *   - -m a host name that does not resolve: one warning line however many
 *     retries (counted with --log-level debug), the agent keeps running and
 *     stops cleanly
 *   - a bad address is refused at start (exit 2, naming --members), nothing created */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"
#include "hzc.h"

static void parse_cases(void) {
  char h[64];
  int p;
  static const struct {
    const char *in, *host;
    int port;
  } good[] = {
      {"db1.example", "db1.example", 5701},
      {"db1.example:5921", "db1.example", 5921},
      {"127.0.0.1", "127.0.0.1", 5701},
      {"[::1]", "::1", 5701},
      {"[fe80::1%eth0]:5702", "fe80::1%eth0", 5702},
      {"::1", "::1", 5701},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    CHECK_RC(hzc_parse_address(good[i].in, h, sizeof h, &p), 0);
    CHECK_STREQ(h, good[i].host);
    CHECK_EQ(p, good[i].port);
  }
  const char *bad[] = {"", ":5701", "h:", "h:0", "h:65536", "h:57x", "h:-1", "[::1", "[::1]x", "[]:1",
                       "[h]:1", "a b:1", "[::1]:", NULL};
  for (int i = 0; bad[i]; i++) {
    if (hzc_parse_address(bad[i], h, sizeof h, &p) != HZSHM_EINVAL) {
      fprintf(stderr, "accepted bad address '%s'\n", bad[i]);
      CHECK(0);
    }
  }
  CHECK_RC(hzc_parse_address("averyveryverylonghostname.example", h, 8, &p), HZSHM_EINVAL);
}

static int listens_v6(int port) {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
  sa.sin6_addr = in6addr_loopback;
  int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  close(fd);
  return ok;
}

typedef struct {
  const char *path, *needle;
  int n;
} count_t;
static int count_reached(void *ud) {
  count_t *c = ud;
  return e2e_file_count(c->path, c->needle) >= c->n;
}

static int segment_exists(const char *name) {
  char p[256];
  const char *dir = getenv("HZSHM_SHM_DIR");
  snprintf(p, sizeof p, "%s/hzshm.%s", dir && dir[0] ? dir : "/dev/shm", name);
  struct stat st;
  return stat(p, &st) == 0;
}

/* The member list parser alone (no agent). */
TEST_CASE(parse) { parse_cases(); }

TEST_CASE(member_lists) {
  const char *colon = strrchr(e2e_members(), ':');
  CHECK(colon);
  int port = atoi(colon + 1);
  char m[128], logp[160];

  /* localhost:PORT */
  e2e_agent_t ag = {0};
  snprintf(m, sizeof m, "localhost:%d", port);
  e2e_agent_start(&ag, "mem_lh", m);
  CHECK_RC(e2e_agent_stop(&ag), 0);
  printf("localhost:%d: served\n", port);

  /* [::1]:PORT */
  snprintf(m, sizeof m, "[::1]:%d", port);
  if (listens_v6(port)) {
    e2e_agent_t a6 = {0};
    e2e_agent_start(&a6, "mem_v6", m);
    CHECK_RC(e2e_agent_stop(&a6), 0);
    printf("[::1]:%d: served\n", port);
  } else {
    snprintf(logp, sizeof logp, "/tmp/hzshm-e2e-mem_v6.%d.log", (int)getpid());
    unlink(logp);
    const char *av[] = {"hzshm-agent", "-n", "mem_v6", "-m", m, "--socket", "/tmp/hzshm-e2e-mem_v6.sock",
                        "--memory", "32m", "--unlink-on-exit", NULL};
    pid_t pid = e2e_agent_spawn_argv(av, logp);
    char needle[64];
    snprintf(needle, sizeof needle, "member [::1]:%d", port);
    count_t c = {logp, needle, 1};
    CHECK_GE(e2e_wait(count_reached, &c, 30000), 0);
    CHECK_EQ(kill(pid, 0), 0); /* still running */
    kill(pid, SIGTERM);
    CHECK_RC(e2e_agent_wait_exit(pid, 30000), 0);
    printf("[::1]:%d: the member does not listen on ::1; the agent said: ", port);
    fflush(stdout);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -m1 'member \\[::1\\]' %s", logp);
    CHECK_EQ(system(cmd), 0);
    unlink(logp);
  }

  /* A name that does not resolve: one warning for many attempts. */
  snprintf(logp, sizeof logp, "/tmp/hzshm-e2e-mem_bad.%d.log", (int)getpid());
  unlink(logp);
  const char *av[] = {"hzshm-agent", "-n", "mem_bad", "-m", "no-such-host.invalid:5701", "--socket",
                      "/tmp/hzshm-e2e-mem_bad.sock", "--memory", "32m", "--unlink-on-exit", "--log-level", "debug",
                      NULL};
  pid_t pid = e2e_agent_spawn_argv(av, logp);
  count_t tries = {logp, "cannot resolve the host name", 7}; /* 6 debug lines, one per attempt, + the warning */
  CHECK_GE(e2e_wait(count_reached, &tries, 60000), 0);
  int warns = e2e_file_count(logp, "warn: member no-such-host.invalid:5701: cannot resolve the host name");
  printf("no-such-host.invalid: %d attempts, %d warning line(s)\n",
         e2e_file_count(logp, "cannot resolve the host name") - warns, warns);
  CHECK_EQ(warns, 1);
  CHECK_EQ(kill(pid, 0), 0);
  CHECK(segment_exists("mem_bad"));
  kill(pid, SIGTERM);
  CHECK_RC(e2e_agent_wait_exit(pid, 30000), 0);
  CHECK(!segment_exists("mem_bad")); /* --unlink-on-exit */
  unlink(logp);

  /* A bad address: exit 2 naming the option, no segment. */
  snprintf(logp, sizeof logp, "/tmp/hzshm-e2e-mem_inv.%d.log", (int)getpid());
  unlink(logp);
  const char *av2[] = {"hzshm-agent", "-n", "mem_inv", "-m", "127.0.0.1:5701,db1:99999", "--unlink-on-exit", NULL};
  pid = e2e_agent_spawn_argv(av2, logp);
  CHECK_RC(e2e_agent_wait_exit(pid, 30000), 2);
  CHECK_EQ(e2e_file_count(logp, "--members: bad value 'db1:99999'"), 1);
  CHECK(!segment_exists("mem_inv"));
  unlink(logp);
  printf("test_members: ok\n");
}
