/* e2e.h - helpers of the end-to-end tests: run hzshm-agent processes (one per
 * simulated host), wait on conditions with deadlines (never sleep as
 * synchronization), run the CLI, speak raw frames to an agent. */
#ifndef HZSHM_E2E_H
#define HZSHM_E2E_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "hzshm.h"

#include "../common/runner.h"

/* The member list the test was given (its first parameter after `--`, set by
 * tests/e2e/CMakeLists.txt: `test_e2e_x [case...] -- 127.0.0.1:PORT`). */
static inline const char *e2e_members(void) { return t_param_required(0, "MEMBERS"); }

typedef struct {
  pid_t pid;
  char name[64];
  char members[256];
  char sock[108];
  char extra_env[4][128]; /* "K=V" or empty */
  const char *extra_args[4]; /* more agent arguments, NULL-terminated */
  char log_path[160];     /* if set before the start: the agent's stderr is appended there */
  const char *bin;           /* NULL = hzshm-agent; HZSHM_AGENT_SEAMS_BIN: the test-only variant */
  uid_t run_uid;             /* nonzero (needs root): the agent runs as run_uid:run_gid, no other groups */
  gid_t run_gid;
} e2e_agent_t;

uint64_t e2e_now_us(void);
/* Starts hzshm-agent -n NAME -m MEMBERS --unlink-on-exit and waits (30 s)
 * until it serves: the cache opens, a HELLO round trip works and the agent
 * reports the cluster connected. Environment entries "K=V" may be given in
 * ag->extra_env before the call. */
void e2e_agent_start(e2e_agent_t *ag, const char *name, const char *members);
/* (An agent of run_uid is found only by a test process that trusts that uid:
 * HZSHM_AGENT_UID set in its environment.) */
/* Same agent again (after a kill): keeps name, members and environment. */
void e2e_agent_restart(e2e_agent_t *ag);
/* SIGTERM, wait (30 s) and return the exit status (0 = clean). */
int e2e_agent_stop(e2e_agent_t *ag);
void e2e_agent_kill9(e2e_agent_t *ag);
/* Runs hzshm-agent with exactly argv[1..] (argv[0] ignored; NULL-terminated),
 * stderr appended to log_path (NULL: inherited); no readiness wait. The
 * process is killed if the test exits early. */
pid_t e2e_agent_spawn_argv(const char *const *argv, const char *log_path);
/* Waits (deadline timeout_ms) for pid to exit: its exit code, 128 + signal,
 * or -1 on timeout (the process is then left running). */
int e2e_agent_wait_exit(pid_t pid, uint32_t timeout_ms);
/* e2e_agent_spawn_argv with log_path truncated first, then waits (deadline
 * timeout_ms) for the exit: its code, or -1 (the agent is then killed). */
int e2e_agent_run(const char *const *argv, const char *log_path, uint32_t timeout_ms);
/* Lines of file path containing needle (0 if the file is missing). */
int e2e_file_count(const char *path, const char *needle);
/* e2e_wait predicate (ud = e2e_logged_t *): a line of path contains needle. */
typedef struct {
  const char *path, *needle;
} e2e_logged_t;
int e2e_logged(void *ud);

/* Polls fn(ud) until it returns non-zero or timeout_ms passes; returns the
 * elapsed microseconds, or -1 on timeout. Polling interval ~1 ms. */
int64_t e2e_wait(int (*fn)(void *ud), void *ud, uint32_t timeout_ms);

/* Sends req (len bytes) to 127.0.0.1:port and reads the answer until EOF
 * (deadline 20 s) into out (NUL-terminated): its length. */
size_t e2e_http(int port, const char *req, size_t len, char *out, size_t cap);
/* The value of the sample line starting with `series ` in a Prometheus
 * exposition (-1 if absent). */
double e2e_prom_sample(const char *text, const char *series);

/* Runs the CLI: argv[0] is ignored (the built binary is used); stdin_data may
 * be NULL. Captures stdout into out (NUL-terminated) and returns the exit code. */
int e2e_cli(char *out, size_t cap, const char *stdin_data, const char *const *argv);

/* The official Java client (tests/e2e/JavaValue.java, from source dir src)
 * on map `map` of the cluster at `members`: mode put / int / string / bytes
 * with the value `utf8` (see the .java file). Its exit status (system()). */
int e2e_java_value(const char *src, const char *members, const char *map, const char *key, const char *mode,
                   const char *utf8);

/* A raw connection to the agent's socket; -1 on failure. */
int e2e_raw_connect(const char *sockpath);
/* Reads one response frame with a deadline: returns status, fills reqid/op;
 * HZSHM_ECLOSED if the agent closed the connection, HZSHM_ETIMEDOUT. */
int e2e_raw_read(int fd, uint32_t *reqid, uint8_t *op, uint32_t timeout_ms);
/* 1 if the agent closed the connection (EOF) within timeout_ms. */
int e2e_raw_closed(int fd, uint32_t timeout_ms);

/* 1 if session s serves key with exactly the value want (hit, or a miss
 * answered through the agent); 0 otherwise (other value, absent, error). */
int e2e_serves(hzshm_session_t *s, const char *key, const char *want);
/* Waits (deadline timeout_ms, polling) until e2e_serves(s, key, want):
 * elapsed microseconds, or -1 on timeout. */
int64_t e2e_wait_serves(hzshm_session_t *s, const char *key, const char *want, uint32_t timeout_ms);

/* Opens cache `name` (the agent runs), waits (30 s) until every partition
 * is watched (e2e_all_watched) and opens session sid on it. */
void e2e_open_watched(const char *name, const char *sid, hzshm_t **h, hzshm_session_t **s);

/* One simulated host: agent ag serving cache "e2e-<tag>-PID" on the test's
 * member (e2e_members()), session "<sid_tag>-PID" opened on it. Set ag's
 * options (bin, extra_env, extra_args) before e2e_host_start. */
typedef struct {
  e2e_agent_t ag;
  char name[64], sid[64];
  hzshm_t *h;
  hzshm_session_t *s;
} e2e_host_t;
void e2e_host_start(e2e_host_t *o, const char *tag, const char *sid_tag);
/* The same with the agent's seed list `members` (-m). */
void e2e_host_start_on(e2e_host_t *o, const char *tag, const char *sid_tag, const char *members);
/* The port of the test's (first) member: e2e_members() is 127.0.0.1:PORT. */
int e2e_member_port(void);
/* Closes the session and the handle, stops the agent: it must exit cleanly. */
void e2e_host_stop(e2e_host_t *o);

/* Stat figure helper. */
hzshm_stats_t e2e_stats(hzshm_t *h);
/* e2e_wait predicate (ud = hzshm_t *): the agent is connected and every
 * partition's owner sends it events (unwatched_partitions == 0). */
int e2e_all_watched(void *h);
/* e2e_wait predicate: one get of key returned want from shared memory (the
 * hit counter moved). */
typedef struct {
  hzshm_t *h;
  hzshm_session_t *s;
  const char *key, *want;
} e2e_hit_t;
int e2e_is_hit(void *hit);
/* e2e_wait predicate: host h has applied (or skipped as its own echo) at
 * least at_least invalidations (hzshm_stats_t.invalidations). */
typedef struct {
  hzshm_t *h;
  uint64_t at_least;
} e2e_inv_t;
int e2e_invalidations_reached(void *inv);
/* Runs `$HZ_MEMBER VERB --dir $HZSHM_TEST_MEMBER_DIR --index INDEX` (kill,
 * revive: tools/hz-member on the test's fixture); returns its exit code. */
int e2e_member(const char *verb, int index);
/* Writes `port` into the agent's HZSHM_AGENT_TEST_BLOCK_FILE `path`: the
 * agent cuts and refuses its connections to members on that port (0: none)
 * from its next health tick. */
void e2e_block_port(const char *path, int port);
int e2e_cmp_u64(const void *a, const void *b);
/* Prints "label: n=.. p50=.. p99=.. max=.. (unit)" of v[0..n) (sorts v). */
void e2e_print_dist(const char *label, uint64_t *v, size_t n, const char *unit);

#endif
