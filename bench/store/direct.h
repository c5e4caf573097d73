/* direct.h - blocking wrappers around hzclient (src/hz/hzc.h) for the
 * "direct Hazelcast" baselines: each call issues one operation and runs the
 * client's own libuv loop until its callback fires, so the measured time is
 * one round trip to the owning member plus our client's cost.
 *
 * One dclient per thread/process; never share it across fork() (a child
 * makes its own). */
#ifndef HZSHM_BENCH_DIRECT_H
#define HZSHM_BENCH_DIRECT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dclient dclient_t;

/* Connects (30 s deadline) to members "h:p,h:p" of cluster. 0 or an error code. */
int dc_open(const char *members, const char *cluster, dclient_t **out);
void dc_close(dclient_t *d);

/* Each returns 0 or an error code (HZSHM_E*). */
/* get: *found = 1 and the value copied into buf (cap) with *vlen, or *found = 0. */
int dc_get(dclient_t *d, const char *map, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen,
           int *found);
int dc_contains(dclient_t *d, const char *map, const void *key, size_t klen, int *found);
int dc_set(dclient_t *d, const char *map, const void *key, size_t klen, const void *val, size_t vlen);
int dc_delete(dclient_t *d, const char *map, const void *key, size_t klen);
int dc_destroy(dclient_t *d, const char *map);
/* n keys bu_key(first..first+n) with values bu_value(i, vsize), via put_all. */
int dc_fill(dclient_t *d, const char *map, uint64_t first, size_t n, size_t vsize);

#ifdef __cplusplus
}
#endif
#endif
