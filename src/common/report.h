/* report.h - the operator's view of hzshm_stats_t, shared by the CLI
 * (`hzshm health`, `hzshm stat --format prometheus`) and the agent's
 * --metrics-listen endpoint, so both say the same thing. Public API types only. */
#ifndef HZSHM_REPORT_H
#define HZSHM_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "hzshm.h"

/* 0 when the agent is alive (heartbeat within its stale bound), serving and
 * connected to its cluster; otherwise 1 with one line saying why in why. */
int hzshm__health_verdict(const hzshm_stats_t *st, char *why, size_t cap);

/* Text names of agent_state / cluster_state. */
const char *hzshm__agent_state_name(int32_t s);
const char *hzshm__cluster_state_name(int32_t s);

/* A histogram the agent keeps (metrics.c): cumulative counts per upper bound. */
#define HZSHM__HIST_BUCKETS 12
typedef struct {
  const char *name;  /* e.g. "hzshm_agent_request_seconds" */
  const char *help;
  double bounds[HZSHM__HIST_BUCKETS]; /* seconds, increasing */
  uint64_t counts[HZSHM__HIST_BUCKETS]; /* observations <= bounds[i] (not cumulative) */
  uint64_t count;
  double sum;
} hzshm__hist_t;
void hzshm__hist_observe(hzshm__hist_t *h, double v);

/* Appends the Prometheus text exposition (version 0.0.4) of st and of the
 * nh histograms, every sample labelled cache="<cache>". Returns the length
 * written, or the length needed if it is >= cap (as snprintf). */
size_t hzshm__prom_render(char *buf, size_t cap, const char *cache, const hzshm_stats_t *st,
                          const hzshm__hist_t *hists, size_t nh);

#endif
