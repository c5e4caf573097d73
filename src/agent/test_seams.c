/* test_seams.c - compiled only into hzshm-agent-seams (CMake option
 * HZSHM_TEST_HOOKS), never into the shipped hzshm-agent: seams that widen
 * windows the agent must keep closed, so that tests can show they are.
 *
 * HZSHM_AGENT_TEST_OPEN_DELAY_MS=n: after the segment is opened and before a
 * reused segment's partitions are marked stale, wait n ms (tests/e2e/
 * test_restart.c: readers must not hit the previous agent's entries then).
 *
 * HZSHM_AGENT_TEST_DROP_CLEAR_ALL=1: every clear-all event is ignored, as if
 * lost (tests/e2e/test_destroymissed.c: only the reconciliation's reset rule
 * can then notice a destroy and renew the listener). */
#include <stdlib.h>
#include <time.h>

#include "agent.h"

void hzshm__agent_test_after_open(void) {
  const char *v = getenv("HZSHM_AGENT_TEST_OPEN_DELAY_MS");
  if (v == NULL) return;
  unsigned long ms = strtoul(v, NULL, 10);
  hzshm__agent_log("test seam: waiting %lu ms between opening the segment and the stale marks", ms);
  struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&d, NULL); /* the window itself, not a synchronization */
}

int hzshm__agent_test_drop_clear(void) {
  if (getenv("HZSHM_AGENT_TEST_DROP_CLEAR_ALL") == NULL) return 0;
  hzshm__agent_log("test seam: dropping a clear-all event");
  return 1;
}
