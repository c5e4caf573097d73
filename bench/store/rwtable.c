/* rwtable.c - see rwtable.h. Ordering: everything shared is read or written
 * only while holding t->lock (read side for rwt_get, write side for rwt_put),
 * so the rwlock's acquire/release orders every access; no atomics needed. */
#include "rwtable.h"

#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "hzshm_errno.h"

#define RWT_KEYMAX 32

typedef struct {
  uint32_t used;
  uint32_t klen;
  uint32_t vlen;
  uint8_t key[RWT_KEYMAX];
  /* value bytes follow (vmax) */
} rwt_entry_t;

struct rwt {
  pthread_rwlock_t lock;
  uint32_t nslots, vmax;
  size_t stride, size;
  /* entries follow, 64-byte aligned */
};

static size_t hdr_size(void) { return (sizeof(struct rwt) + 63) & ~(size_t)63; }

static rwt_entry_t *slot(rwt_t *t, uint32_t i) {
  return (rwt_entry_t *)((uint8_t *)t + hdr_size() + (size_t)i * t->stride);
}

static uint32_t hash(const void *key, size_t klen) { /* FNV-1a */
  const uint8_t *p = key;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < klen; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

rwt_t *rwt_create(uint32_t nslots, uint32_t vmax) {
  if (nslots == 0 || (nslots & (nslots - 1))) return NULL;
  size_t stride = (sizeof(rwt_entry_t) + vmax + 63) & ~(size_t)63;
  size_t size = hdr_size() + stride * nslots;
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return NULL;
  rwt_t *t = m;
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_rwlock_init(&t->lock, &a);
  pthread_rwlockattr_destroy(&a);
  t->nslots = nslots;
  t->vmax = vmax;
  t->stride = stride;
  t->size = size;
  return t;
}

void rwt_destroy(rwt_t *t) {
  if (t == NULL) return;
  pthread_rwlock_destroy(&t->lock);
  munmap(t, t->size);
}

int rwt_put(rwt_t *t, const void *key, size_t klen, const void *val, size_t vlen) {
  if (vlen > t->vmax || klen > RWT_KEYMAX) return HZSHM_ETOOBIG;
  int rc = HZSHM_ESEGFULL;
  pthread_rwlock_wrlock(&t->lock);
  uint32_t mask = t->nslots - 1, h = hash(key, klen);
  for (uint32_t n = 0; n < t->nslots; n++) {
    rwt_entry_t *e = slot(t, (h + n) & mask);
    if (e->used && (e->klen != klen || memcmp(e->key, key, klen) != 0)) continue;
    e->used = 1;
    e->klen = (uint32_t)klen;
    memcpy(e->key, key, klen);
    e->vlen = (uint32_t)vlen;
    memcpy(e + 1, val, vlen);
    rc = 0;
    break;
  }
  pthread_rwlock_unlock(&t->lock);
  return rc;
}

int rwt_get(rwt_t *t, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen) {
  int rc = HZSHM_ENOTFOUND;
  pthread_rwlock_rdlock(&t->lock);
  uint32_t mask = t->nslots - 1, h = hash(key, klen);
  for (uint32_t n = 0; n < t->nslots; n++) {
    rwt_entry_t *e = slot(t, (h + n) & mask);
    if (!e->used) break;
    if (e->klen != klen || memcmp(e->key, key, klen) != 0) continue;
    *vlen = e->vlen;
    if (e->vlen > cap) {
      rc = HZSHM_EBUFSIZE;
    } else {
      memcpy(buf, e + 1, e->vlen);
      rc = 0;
    }
    break;
  }
  pthread_rwlock_unlock(&t->lock);
  return rc;
}
