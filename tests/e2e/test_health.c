/* test_health: `hzshm health` and `hzshm stat` tell a probe the truth
 * (issue 13), against a real member at argv[1] that the test kills and
 * revives (fixture e2e_restart).
 *   - no agent ever started: health exits 1 (no segment)
 *   - agent serving and connected: health exits 0, stat says healthy
 *   - the member down: health exits 1 saying the agent is not connected;
 *     back up: 0 again
 *   - the agent killed with SIGKILL: health exits 1 (heartbeat too old),
 *     stat says agent_state: dead (not "serving") and cluster_state: unknown
 *   - usage: -h exits 0, extra arguments exit 2 */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "e2e.h"

static char out[16384];

static int health(const char *name) {
  const char *av[] = {"hzshm", "-n", name, "health", NULL};
  return e2e_cli(out, sizeof out, NULL, av);
}

typedef struct {
  const char *name;
  int want;
} hw_t;
static int health_is(void *ud) {
  hw_t *w = ud;
  return health(w->name) == w->want;
}

static int stat_has(const char *name, const char *line) {
  const char *av[] = {"hzshm", "-n", name, "stat", NULL};
  CHECK_RC(e2e_cli(out, sizeof out, NULL, av), 0);
  return strstr(out, line) != NULL;
}

TEST_CASE(health) {
  const char *help[] = {"hzshm", "-h", NULL};
  CHECK_RC(e2e_cli(out, sizeof out, NULL, help), 0);
  CHECK_NE(strstr(out, "health"), NULL);
  const char *extra[] = {"hzshm", "-n", "hl_a", "health", "now", NULL};
  CHECK_RC(e2e_cli(out, sizeof out, NULL, extra), 2);

  CHECK_RC(health("hl_never"), 1);
  printf("never started: %s", out);
  CHECK_NE(strstr(out, "unhealthy: cache hl_never: no segment"), NULL);

  e2e_agent_t ag = {0};
  e2e_agent_start(&ag, "hl_a", e2e_members());
  CHECK_RC(health("hl_a"), 0);
  printf("serving: %s", out);
  CHECK_EQ(strncmp(out, "ok: ", 4), 0);
  CHECK(stat_has("hl_a", "healthy: yes\n") && stat_has("hl_a", "agent_state: serving\n"));

  /* The member down. */
  CHECK_RC(e2e_member("kill", 0), 0);
  hw_t down = {"hl_a", 1};
  CHECK_GE(e2e_wait(health_is, &down, 60000), 0);
  printf("member down: %s", out);
  CHECK_NE(strstr(out, "is not connected to its cluster"), NULL);
  CHECK(stat_has("hl_a", "healthy: no\n"));
  CHECK_RC(e2e_member("revive", 0), 0);
  hw_t up = {"hl_a", 0};
  CHECK_GE(e2e_wait(health_is, &up, 120000), 0);
  printf("member back: %s", out);

  /* The agent killed. */
  e2e_agent_kill9(&ag);
  hw_t dead = {"hl_a", 1};
  CHECK_GE(e2e_wait(health_is, &dead, 30000), 0);
  printf("agent killed: %s", out);
  CHECK_NE(strstr(out, "is dead or hung: heartbeat"), NULL);
  CHECK(stat_has("hl_a", "agent_state: dead\n"));
  CHECK(stat_has("hl_a", "cluster_state: unknown\n"));
  CHECK(stat_has("hl_a", "healthy: no\n"));

  /* A new agent takes the segment over: healthy again; a clean stop is not healthy. */
  e2e_agent_restart(&ag);
  CHECK_RC(health("hl_a"), 0);
  CHECK_RC(e2e_agent_stop(&ag), 0);
  CHECK_RC(health("hl_a"), 1); /* --unlink-on-exit: no segment */
  printf("stopped: %s", out);
  printf("test_health: ok\n");
}
