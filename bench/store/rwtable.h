/* rwtable.h - the baseline a near-cache is usually built as first: a hash
 * table in shared memory guarded by ONE process-shared pthread rwlock.
 * Readers take the read lock around lookup + copy; the writer takes the
 * write lock. Used only to compare reader scaling with hzshm's lock-free
 * table (bench_store Readers/rwlock/N).
 *
 * Concurrency: any number of processes that inherited the mapping through
 * fork(); all synchronization is the rwlock (acquire on lock, release on
 * unlock, as POSIX specifies), so no other ordering is needed. */
#ifndef HZSHM_BENCH_RWTABLE_H
#define HZSHM_BENCH_RWTABLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rwt rwt_t;

/* Anonymous MAP_SHARED table of nslots (power of two) entries with values of
 * at most vmax bytes; inherited by fork()ed children. NULL on failure. */
rwt_t *rwt_create(uint32_t nslots, uint32_t vmax);
void rwt_destroy(rwt_t *t);
/* Insert or replace. 0, HZSHM_ETOOBIG (value > vmax), HZSHM_ESEGFULL. */
int rwt_put(rwt_t *t, const void *key, size_t klen, const void *val, size_t vlen);
/* 0 (value copied, *vlen), HZSHM_ENOTFOUND, HZSHM_EBUFSIZE. */
int rwt_get(rwt_t *t, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);

#ifdef __cplusplus
}
#endif
#endif
