/* stats.h - see stats.c. */
#ifndef HZSHM_STATS_H
#define HZSHM_STATS_H

#include "hzshm.h"
#include "shm.h"

/* 0 or the error of hzshm__shm_stats. */
int hzshm__stats_read(hzshm__shm_t *m, hzshm_stats_t *st);

#endif
