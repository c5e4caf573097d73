/* test_options: hzshm-agent's and hzshm's command lines and log format as an
 * operator meets them (issue 13); no member needed (the agent's member is a
 * closed port: it runs, connecting).
 *   - --help exits 0 and explains every long option with its default
 *   - --version (agent and CLI) prints the library version
 *   - every bad value names its option and exits 2; unknown options and
 *     missing values exit 2
 *   - the socket defaults to $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR
 *   - log lines: ISO-8601 UTC date-time and level; "<N>" syslog priorities
 *     when JOURNAL_STREAM names stderr */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

static char logp[160];

static int run_agent(const char *const *argv) { return e2e_agent_run(argv, logp, 30000); }

typedef struct {
  const char *path;
} exists_t;
static int exists(void *ud) {
  struct stat st;
  return stat(((exists_t *)ud)->path, &st) == 0;
}

/* Starts an agent for cache name with env K=V set, waits for path to exist, stops it. */
static void socket_in(const char *name, const char *env, const char *val, const char *path) {
  setenv(env, val, 1);
  const char *av[] = {"hzshm-agent", "-n", name, "-m", "127.0.0.1:9", "--memory", "32m", "--unlink-on-exit", NULL};
  unlink(logp);
  pid_t pid = e2e_agent_spawn_argv(av, logp);
  unsetenv(env);
  exists_t e = {path};
  CHECK_GE(e2e_wait(exists, &e, 30000), 0);
  kill(pid, SIGTERM);
  CHECK_RC(e2e_agent_wait_exit(pid, 30000), 0);
  CHECK(!exists(&e));
}

static int warned(void *path) { return e2e_file_count(path, "<4>member 127.0.0.1:9: ") > 0; }

TEST_CASE(options) {
  snprintf(logp, sizeof logp, "/tmp/hzshm-e2e-options.%d.log", (int)getpid());
  static char out[16384];

  /* --help on stdout: every option of the table, each with a default or "(required)". */
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pid_t pid = fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    dup2(p[1], 1);
    execl(HZSHM_AGENT_BIN, "hzshm-agent", "--help", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  size_t n = 0;
  ssize_t r;
  while ((r = read(p[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)r;
  out[n] = 0;
  close(p[0]);
  CHECK_RC(e2e_agent_wait_exit(pid, 10000), 0);
  const char *opts[] = {"--name", "--members", "--cluster", "--memory", "--sessions", "--readers", "--partitions", "--socket",
                        "--prefix", "--stale-ms", "--reconcile-ms", "--idle-ms", "--max-ttl-ms", "--invocation-timeout-ms", "--allow-gid",
                        "--unlink-on-exit", "--metrics-listen", "--log-level", "--help", "--version", NULL};
  for (int i = 0; opts[i]; i++) {
    const char *at = strstr(out, opts[i]);
    CHECK_NE(at, NULL);
    /* its explanation (up to the next option line) gives a default, says it is required, or is help/version */
    const char *next = strstr(at + 2, "\n  -");
    size_t span = next ? (size_t)(next - at) : strlen(at);
    char seg[1024];
    snprintf(seg, sizeof seg, "%.*s", (int)(span < sizeof seg ? span : sizeof seg - 1), at);
    if (!strstr(seg, "default") && !strstr(seg, "required") && strcmp(opts[i], "--help") &&
        strcmp(opts[i], "--version")) {
      fprintf(stderr, "--help does not give the default of %s: %s\n", opts[i], seg);
      CHECK(0);
    }
  }
  CHECK_NE(strstr(out, "default: dev"), NULL);

  const char *ver[] = {"hzshm-agent", "--version", NULL};
  CHECK_RC(run_agent(ver), 0);
  const char *cver[] = {"hzshm", "--version", NULL};
  CHECK_RC(e2e_cli(out, sizeof out, NULL, cver), 0);
  CHECK_STREQ(out, "hzshm " HZSHM_VERSION_STRING "\n");
  const char *chelp[] = {"hzshm", "--help", NULL};
  CHECK_RC(e2e_cli(out, sizeof out, NULL, chelp), 0);
  CHECK(strstr(out, "health") && strstr(out, "--format"));

  /* Bad values: exit 2, the option named. */
  struct {
    const char *opt, *val;
  } bad[] = {{"--memory", "lots"},      {"--memory", "64x"},          {"--sessions", "0"},
             {"--readers", "70000"},    {"--stale-ms", "0"},          {"--reconcile-ms", "-5"},
             {"--idle-ms", "1e3"},      {"--max-ttl-ms", "forever"},  {"--allow-gid", "wheel"},
             {"--log-level", "loud"},   {"--metrics-listen", "9100"}, {"--members", "h:0"},
             {"--cluster", ""},         {"--memory", "99999999999g"}, {"--invocation-timeout-ms", "0"},
             {NULL, NULL}};
  for (int i = 0; bad[i].opt; i++) {
    const char *av[] = {"hzshm-agent", "-n", "opt_x", "-m", "127.0.0.1:9", bad[i].opt, bad[i].val, NULL};
    CHECK_RC(run_agent(av), 2);
    char want[128];
    snprintf(want, sizeof want, "hzshm-agent: %s: bad value '%s'", bad[i].opt, bad[i].val);
    if (e2e_file_count(logp, want) != 1) {
      fprintf(stderr, "no '%s' for %s %s\n", want, bad[i].opt, bad[i].val);
      CHECK(0);
    }
  }
  const char *unknown[] = {"hzshm-agent", "-n", "opt_x", "-m", "h", "--colour", NULL};
  CHECK_RC(run_agent(unknown), 2);
  CHECK_EQ(e2e_file_count(logp, "unknown option --colour"), 1);
  const char *missing[] = {"hzshm-agent", "-n", "opt_x", "-m", "h", "--memory", NULL};
  CHECK_RC(run_agent(missing), 2);
  CHECK_EQ(e2e_file_count(logp, "--memory needs a value"), 1);
  const char *noname[] = {"hzshm-agent", "-m", "h", NULL};
  CHECK_RC(run_agent(noname), 2);
  CHECK_EQ(e2e_file_count(logp, "--name is required"), 1);

  /* Socket defaults. */
  char dir[] = "/tmp/hzshm-e2e-rtXXXXXX";
  CHECK_NE(mkdtemp(dir), NULL);
  char want[160];
  snprintf(want, sizeof want, "%s/hzshm-opt_rt.sock", dir);
  socket_in("opt_rt", "RUNTIME_DIRECTORY", dir, want);
  snprintf(want, sizeof want, "%s/hzshm-opt_xdg.sock", dir);
  socket_in("opt_xdg", "XDG_RUNTIME_DIR", dir, want);
  CHECK_EQ(rmdir(dir), 0);

  /* Log format: "YYYY-MM-DDTHH:MM:SS.mmmZ hzshm-agent[pid] info: ..." (the last run's log). */
  FILE *f = fopen(logp, "r");
  CHECK(f);
  char line[512];
  CHECK(fgets(line, sizeof line, f));
  fclose(f);
  int y, mo, d, h, mi, s, ms, lpid;
  char lvl[16];
  CHECK_EQ(sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ hzshm-agent[%d] %15[a-z]:", &y, &mo, &d, &h, &mi, &s, &ms, &lpid,
               lvl), 9);
  CHECK_GE(y, 2024);
  CHECK_GE(mo, 1);
  CHECK_LE(mo, 12);
  CHECK_STREQ(lvl, "info");
  printf("log line: %s", line);

  /* Under the journal (JOURNAL_STREAM = stderr's dev:ino): "<N>message". */
  unlink(logp);
  FILE *lf = fopen(logp, "w");
  CHECK(lf);
  struct stat st;
  CHECK_EQ(fstat(fileno(lf), &st), 0);
  fclose(lf);
  char js[64];
  snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", js, 1);
  const char *av[] = {"hzshm-agent", "-n", "opt_js", "-m", "127.0.0.1:9", "--memory", "32m", "--unlink-on-exit",
                      "--socket", "/tmp/hzshm-e2e-opt_js.sock", NULL};
  pid = e2e_agent_spawn_argv(av, logp);
  unsetenv("JOURNAL_STREAM");
  exists_t sock = {"/tmp/hzshm-e2e-opt_js.sock"};
  CHECK_GE(e2e_wait(exists, &sock, 30000), 0);
  CHECK_GE(e2e_wait(warned, logp, 30000), 0); /* the refused member, logged once */
  kill(pid, SIGTERM);
  CHECK_RC(e2e_agent_wait_exit(pid, 30000), 0);
  CHECK_EQ(e2e_file_count(logp, "<6>serving cache opt_js"), 1);
  CHECK_EQ(e2e_file_count(logp, "<4>member 127.0.0.1:9: "), 1);
  CHECK_EQ(e2e_file_count(logp, "Z hzshm-agent["), 0);
  unlink(logp);
  printf("test_options: ok\n");
}
