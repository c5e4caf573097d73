/* clock.h - the agent's clocks: monotonic (uv_hrtime), never the wall clock,
 * so that bounds and timers survive clock changes. A leaf: no agent state. */
#ifndef HZSHM_AGENT_CLOCK_H
#define HZSHM_AGENT_CLOCK_H

#include <stdint.h>
#include <uv.h>

static inline uint64_t now_ns(void) { return uv_hrtime(); }
static inline uint64_t now_us(void) { return uv_hrtime() / 1000u; }
static inline uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

#endif
