/* layout_model.c - the one-miss layout's read path, modelled (layout_model.h).
 *
 * Memory: one file in the segment directory ($HZSHM_SHM_DIR, default
 * /dev/shm) holding [header line | slot line | slab table | index | arena],
 * mapped MAP_SHARED like a segment's data file, and a second one for the
 * SIEVE bits (the reader file's bitmap), from bu_map_segdir: unlinked
 * right after mapping, so nothing is left behind if the benchmark dies. */
#define _GNU_SOURCE
#include "layout_model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "butil.h"
#include "shm_int.h" /* hzshm__shm_sip13_inline: the segment's key hash, same code */

#define SLOTS 10u      /* pairs per 64-byte bucket */
#define OVERFLOW 1u    /* bucket flag: an entry of this bucket lives in the next one */
#define ALIGN 8u       /* entry alignment in the arena */
#define SLAB_SHIFT 21u /* slab table granule, as the segment's largest slabs */
#define PARTS 271u
#define FILL 0.65      /* index load factor: entries / (buckets x SLOTS) */
#define PROBES 16u     /* buckets an entry may be placed in: its own and the next 15 */

typedef struct {
  uint16_t tag[SLOTS];
  uint16_t count;
  uint16_t flags;
  uint32_t off[SLOTS]; /* arena offset / ALIGN; 0 = none (the arena starts past 0) */
} bucket_t;
_Static_assert(sizeof(bucket_t) == 64, "a bucket is one cache line");

typedef struct {
  _Atomic uint32_t ver;  /* even = published */
  uint32_t lens;         /* key length (11 bits) | value length << 11 (21 bits) */
  uint64_t sgen;
  uint32_t stamp;
  uint16_t part;
  uint16_t flags;
  uint32_t expiry_s;     /* coarse seconds, 0 = none */
} entry_t;
_Static_assert(sizeof(entry_t) == 32 && offsetof(entry_t, expiry_s) == 24, "28 bytes used of the header");
#define HDR 28u /* key bytes start right after expiry_s */

typedef struct {
  _Atomic uint64_t epoch;
  _Atomic uint64_t heartbeat_ns;
  _Atomic uint32_t state;
  _Atomic uint32_t flags;
} mhdr_t;

struct layout_model {
  char *base;
  size_t bytes, bitmap_bytes;
  mhdr_t *hdr;
  _Atomic uint64_t *slot_epoch;
  _Atomic uint64_t *slabtab;
  _Atomic uint64_t *stale; /* PARTS stale marks */
  bucket_t *idx;
  uint64_t nb;
  char *arena;
  uint64_t arena_used;
  _Atomic uint64_t *bitmap;
  uint64_t hkey[2];
  uint64_t sgen;
  uint32_t n, overflowed;
};

static uint64_t coarse_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Lemire's multiply-shift: the low 32 bits of the hash onto [0, nb) without a
 * division, so the bucket count need not be a power of two (the index stays
 * at FILL instead of anywhere between FILL/2 and FILL). The tag is the top 16. */
static inline uint64_t bucket_of(const layout_model_t *m, uint64_t h) {
  return ((h & 0xffffffffu) * m->nb) >> 32;
}

static size_t entry_bytes(size_t klen, size_t vlen) { return (HDR + klen + vlen + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

int layout_model_build(uint32_t n, const char *keys, size_t klen, size_t vsize, layout_model_t **out) {
  if (!out || n == 0 || klen == 0 || klen > 2047 || vsize >= (1u << 21)) return -EINVAL;
  layout_model_t *m = calloc(1, sizeof *m);
  if (!m) return -ENOMEM;
  uint64_t nb = (uint64_t)((double)n / (SLOTS * FILL)) + 1;
  size_t arena = (size_t)n * entry_bytes(klen, vsize) + 64;
  size_t slabs = (arena >> SLAB_SHIFT) + 1;
  size_t head = 4096 + ((slabs * 8 + PARTS * 8 + 4095) & ~(size_t)4095);
  m->bytes = head + nb * 64 + arena;
  m->bitmap_bytes = ((arena / 64 + 63) / 64 * 8 + 4095) & ~(size_t)4095;
  m->base = bu_map_segdir("model-data", m->bytes);
  m->bitmap = bu_map_segdir("model-rd", m->bitmap_bytes);
  if (!m->base || !m->bitmap) {
    layout_model_free(m);
    return -errno;
  }
  m->hdr = (mhdr_t *)m->base;
  m->slot_epoch = (_Atomic uint64_t *)(m->base + 64);
  m->slabtab = (_Atomic uint64_t *)(m->base + 4096);
  m->stale = m->slabtab + slabs;
  m->idx = (bucket_t *)(m->base + head);
  m->nb = nb;
  m->arena = m->base + head + nb * 64;
  m->arena_used = 64; /* offset 0 means "none" */
  m->hkey[0] = 0x0706050403020100ull, m->hkey[1] = 0x0f0e0d0c0b0a0908ull;
  m->sgen = 7;
  m->n = n;
  atomic_store(&m->hdr->epoch, 1);
  atomic_store(&m->hdr->state, 1);
  for (size_t i = 0; i < slabs; i++) atomic_store(&m->slabtab[i], (uint64_t)1 << 8);
  uint8_t *val = malloc(vsize ? vsize : 1);
  if (!val) {
    layout_model_free(m);
    return -ENOMEM;
  }
  for (uint32_t i = 0; i < n; i++) {
    const char *k = keys + (size_t)i * klen;
    uint64_t h = hzshm__shm_sip13_inline(m->hkey, m->sgen, k, klen);
    entry_t *e = (entry_t *)(m->arena + m->arena_used);
    bu_value(val, i, vsize);
    e->lens = (uint32_t)klen | (uint32_t)vsize << 11;
    e->sgen = m->sgen;
    e->stamp = 2 + i;
    e->part = (uint16_t)(h % PARTS);
    memcpy((char *)e + HDR, k, klen);
    memcpy((char *)e + HDR + klen, val, vsize);
    atomic_store_explicit(&e->ver, 2, memory_order_release);
    uint64_t bi = bucket_of(m, h);
    bucket_t *b = &m->idx[bi];
    for (uint32_t p = 1; b->count == SLOTS; p++) {
      if (p == PROBES) { /* PROBES full buckets in a row: not at this load factor */
        free(val);
        layout_model_free(m);
        return -ENOSPC;
      }
      b->flags |= OVERFLOW;
      b = &m->idx[(bi + p) % m->nb];
      m->overflowed += p == 1;
    }
    b->tag[b->count] = (uint16_t)(h >> 48);
    b->off[b->count++] = (uint32_t)(m->arena_used / ALIGN);
    m->arena_used += entry_bytes(klen, vsize);
  }
  free(val);
  atomic_store(&m->hdr->heartbeat_ns, coarse_ns());
  *out = m;
  return 0;
}

/* The read path. The order of the loads follows the real reader: slot and
 * fail-closed check, the hash, the bucket line, then for a matching tag the
 * SIEVE word and the entry's lines together (both addressed from the bucket,
 * so neither waits for the other), the slab word and version, the header
 * checks, the copy, the re-check. */
int layout_model_get(layout_model_t *m, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen) {
  uint64_t e0 = atomic_load_explicit(&m->hdr->epoch, memory_order_acquire);
  atomic_store_explicit(m->slot_epoch, e0, memory_order_release);
  atomic_signal_fence(memory_order_seq_cst); /* the membarrier mode: no fence on the reader's side */
  int rc = 1;
  uint64_t hb = atomic_load_explicit(&m->hdr->heartbeat_ns, memory_order_acquire);
  if (atomic_load_explicit(&m->hdr->state, memory_order_acquire) != 1 || coarse_ns() - hb > 3600ull * 1000000000u)
    goto out;
  uint64_t h = hzshm__shm_sip13_inline(m->hkey, m->sgen, key, klen);
  uint16_t tag = (uint16_t)(h >> 48);
  uint64_t bi = bucket_of(m, h);
  const bucket_t *b = &m->idx[bi];
  for (uint32_t probe = 1; probe <= PROBES; probe++) {
    uint32_t cnt = __atomic_load_n(&b->count, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < cnt && i < SLOTS; i++) {
      if (b->tag[i] != tag) continue;
      uint64_t off = (uint64_t)__atomic_load_n(&b->off[i], __ATOMIC_RELAXED) * ALIGN;
      if (off < 64 || off + HDR + klen > m->arena_used) continue;
      const entry_t *e = (const entry_t *)(m->arena + off);
      uint64_t unit = off / 64;
      _Atomic uint64_t *bw = &m->bitmap[unit / 64];
      __builtin_prefetch((const void *)bw, 0, 3);
      __builtin_prefetch((const char *)e + 64, 0, 3);
      __builtin_prefetch((const char *)e + 128, 0, 3);
      _Atomic uint64_t *sw = &m->slabtab[off >> SLAB_SHIFT];
      uint64_t swv = atomic_load_explicit(sw, memory_order_acquire);
      uint32_t ver = atomic_load_explicit(&((entry_t *)e)->ver, memory_order_acquire);
      if (ver & 1) continue;
      uint32_t lens = __atomic_load_n(&e->lens, __ATOMIC_RELAXED);
      uint32_t ek = lens & 2047u, ev = lens >> 11;
      if (ek != klen || e->sgen != m->sgen || memcmp((const char *)e + HDR, key, klen) != 0) continue;
      if (e->expiry_s && e->expiry_s <= coarse_ns() / 1000000000u) break;
      if (e->stamp < atomic_load_explicit(&m->stale[e->part], memory_order_acquire)) break;
      if (!(atomic_load_explicit(bw, memory_order_relaxed) & (1ull << (unit % 64))))
        atomic_fetch_or_explicit(bw, 1ull << (unit % 64), memory_order_relaxed);
      if (cap < ev) {
        rc = -1;
        goto out;
      }
      memcpy(buf, (const char *)e + HDR + klen, ev);
      atomic_thread_fence(memory_order_acquire);
      if (atomic_load_explicit(&((entry_t *)e)->ver, memory_order_relaxed) != ver ||
          atomic_load_explicit(sw, memory_order_relaxed) != swv)
        break; /* torn: the real reader retries */
      *vlen = ev;
      rc = 0;
      goto out;
    }
    if (!(b->flags & OVERFLOW)) break;
    b = &m->idx[(bi + probe) % m->nb];
  }
out:
  atomic_store_explicit(m->slot_epoch, 0, memory_order_release);
  return rc;
}

uint64_t layout_model_bytes(const layout_model_t *m) { return m->arena_used + layout_model_index_bytes(m); }
uint64_t layout_model_index_bytes(const layout_model_t *m) { return m->nb * 64; }
double layout_model_load_factor(const layout_model_t *m) { return (double)m->n / (double)(m->nb * SLOTS); }
uint32_t layout_model_overflowed(const layout_model_t *m) { return m->overflowed; }

void layout_model_free(layout_model_t *m) {
  if (!m) return;
  if (m->base) munmap(m->base, m->bytes);
  if (m->bitmap) munmap(m->bitmap, m->bitmap_bytes);
  free(m);
}
