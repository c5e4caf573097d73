/* bigseg.h - a segment filled directly by the benchmark process acting as its
 * writer (shm.h writer API), so that the read path can be measured through the
 * public API over a million entries without a million agent round trips, and
 * so that memory per entry can be read off exactly.
 *
 * The process that builds it is the segment's single writer; readers (the
 * same process through libhzshm, or fork()ed children) only read it. */
#ifndef HZSHM_BENCH_BIGSEG_H
#define HZSHM_BENCH_BIGSEG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  uint64_t entries;       /* entries cached after the fill */
  uint64_t evictions;
  uint64_t memory_used;   /* arena bytes in use */
  uint64_t memory_limit;  /* arena size */
  uint64_t file_bytes;    /* size of the data file (the whole segment budget) */
  uint64_t resident_bytes;/* pages of the data file actually touched (st_blocks) */
  uint64_t rd_file_bytes; /* size of the reader-slot file */
  double fill_s;          /* seconds spent in the writer's puts */
} bigseg_info_t;

typedef struct bigseg bigseg_t;

/* Creates segment NAME of `memory` bytes and puts n entries: session `sid`,
 * keys bu_key(0..n), values bu_value(i, vsize). Heartbeat is set serving and
 * the stale bound to one hour, so libhzshm serves hits without an agent (a
 * miss would fail with HZSHM_EAGENT: the socket path does not exist).
 * Returns 0 or an error code. */
int bigseg_build(const char *name, uint64_t memory, const char *sid, uint64_t n, size_t vsize, bigseg_t **out,
                 bigseg_info_t *info);
/* Re-stamps the heartbeat (call from the building thread only). */
void bigseg_heartbeat(bigseg_t *b);
void bigseg_destroy(bigseg_t *b); /* closes and unlinks */

#ifdef __cplusplus
}
#endif
#endif
