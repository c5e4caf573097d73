/* shm_alloc.c - the writer's arena allocator, SIEVE eviction, retirement and
 * epoch-based reclamation.
 *
 * Single writer: everything here runs on the writer thread only. The state
 * that survives a writer crash lives in the data file (slab classes in the
 * slab table, entries reachable from the buckets); the rest (free lists, SIEVE
 * queues, retire list) is process-private and rebuilt by hzshm__shm_w_rebuild.
 *
 * Allocator: the arena is cut into slabs of the segment's slab size (chosen
 * at creation: the largest power of two within [64 KiB, 2 MiB] of which the
 * arena budget holds at least 64; hdr.slab_shift) handed out in order; a slab belongs to one
 * of the segment's size classes (64..512 by 64, then 4 steps per power of two
 * up to the slab size: 36 classes with 64 KiB slabs, 56 with 2 MiB ones, so
 * an entry of HZSHM_VALUE_MAX + key lands in the 1.25 MiB class) until it is
 * moved: when a class needs memory, the
 * arena is all handed out and the class has nothing of its own to evict,
 * hzshm__shm_slab_steal() drains one slab of another class (round robin):
 * its live entries are unlinked and retired, its free chunks leave their free
 * list, and once the last retired chunk passes its grace period the slab is
 * re-carved for the needy class. One slab drains at a time.
 *
 * Eviction: SIEVE per size class. Queue head = newest; the hand walks from
 * the tail towards the head; a chunk whose visited bit (reader file bitmap,
 * set by readers at most once per hit cycle) is set gets it cleared and is
 * skipped, the first unvisited one is evicted. Survivors do not move.
 *
 * Chunk versions (the writer's half of "Validated hits", shm_read.c): a
 * chunk's `ver` word turns odd (chunk_close: relaxed store, then a release
 * fence) before any byte of it is rewritten - when it is freed, and when a
 * slab is carved - and turns even (release store, chunk_publish) once a new
 * entry is complete, before the entry is linked. Re-carving a slab is framed
 * the same way by its slab word: class 0xff with the next generation (relaxed
 * store + release fence) before the new chunk starts are written, the new
 * class with the generation after that (release) once they are.
 *
 * Reclamation: an unlinked chunk is retired with the current global epoch E.
 * hzshm__shm_reclaim() bumps the epoch (release), then asks for the oldest
 * epoch any live reader is in (shm_slots.c for the ordering argument) and
 * frees every chunk retired before it. It never waits: a reader stuck in a
 * critical section only delays its own epoch's chunks; the caller then reaps
 * dead slots or fails with HZSHM_ESEGFULL.
 */
#include <stdlib.h>

#include "shm_int.h"

/* The class table of a segment, from its validated slab shift; per handle,
 * since segments with different slab sizes can be open in one process. */
void hzshm__shm_classes_init(hzshm__shm_t *s) {
  int n = 0;
  uint64_t slab = 1ull << s->slab_shift;
  for (uint64_t sz = 64; sz <= 512; sz += 64) s->class_size[n++] = sz;
  for (uint64_t base = 512; base < slab; base *= 2)
    for (int k = 1; k <= 4; k++) s->class_size[n++] = base + base / 4 * (uint64_t)k;
  s->nclass = n;
  for (int i = 0; i < n; i++) s->class_magic[i] = UINT64_MAX / (s->class_size[i] / HZSHM__UNIT) + 1;
}

int hzshm__shm_class_of(hzshm__shm_t *s, uint64_t size) {
  for (int i = 0; i < s->nclass; i++)
    if (size <= s->class_size[i]) return i;
  return -1;
}

int hzshm__shm_w_init_private(hzshm__shm_t *s) {
  s->w = calloc(1, sizeof *s->w);
  if (!s->w) return -12;
  s->w->units = calloc(s->nunits, sizeof *s->w->units);
  s->w->drain_slab = UINT64_MAX;
  s->w->dirfree = calloc(s->dir_count, sizeof(uint32_t));
  s->w->dirretired = calloc(s->dir_count, 1);
  s->w->dirent_entries = calloc(s->dir_count, sizeof(uint64_t));
  if (!s->w->units || !s->w->dirfree || !s->w->dirretired || !s->w->dirent_entries) return -12;
  return 0;
}

void hzshm__shm_w_free_private(hzshm__shm_t *s) {
  if (!s->w) return;
  free(s->w->units);
  free(s->w->ret);
  free(s->w->dirfree);
  free(s->w->dirretired);
  free(s->w->dirent_entries);
  free(s->w);
  s->w = NULL;
}

static void bit_clear(hzshm__shm_t *s, uint64_t unit) {
  /* relaxed: a hint bit; no data is published through it */
  if (atomic_load_explicit(&s->bitmap[unit / 64], memory_order_relaxed) & (1ull << (unit % 64)))
    atomic_fetch_and_explicit(&s->bitmap[unit / 64], ~(1ull << (unit % 64)), memory_order_relaxed);
}
static int bit_test(hzshm__shm_t *s, uint64_t unit) {
  return (atomic_load_explicit(&s->bitmap[unit / 64], memory_order_relaxed) >> (unit % 64)) & 1; /* hint */
}

/* Make a chunk's version odd before its bytes change (see the head). */
static void chunk_close(hzshm__shm_t *s, uint64_t off) {
  _Atomic uint64_t *ver = &hzshm__shm_entry(s, off)->ver;
  uint64_t v = atomic_load_explicit(ver, memory_order_relaxed); /* the writer's own word */
  if (!(v & 1)) atomic_store_explicit(ver, v + 1, memory_order_relaxed); /* ordered by the fence below */
  HZSHM__FENCE_REL(); /* pairs with the reader's acquire fence before its version re-check */
}

void hzshm__shm_chunk_publish(hzshm__shm_t *s, uint64_t off) {
  _Atomic uint64_t *ver = &hzshm__shm_entry(s, off)->ver;
  uint64_t v = atomic_load_explicit(ver, memory_order_relaxed); /* odd: closed when freed or carved */
  /* release: pairs with the reader's acquire load of ver; the entry's bytes
   * written since chunk_close are visible to a reader that sees this value */
  atomic_store_explicit(ver, (v | 1) + 1, memory_order_release);
}

static void free_push(hzshm__shm_t *s, uint64_t unit, int cls) {
  hzshm__wunit_t *u = &s->w->units[unit];
  u->state = HZSHM__U_FREE;
  u->cls = (uint8_t)cls;
  u->prev = 0;
  u->next = s->w->cls[cls].free;
  s->w->cls[cls].free = (uint32_t)(unit + 1);
}

static uint32_t slab_cls(hzshm__shm_t *s, uint64_t slab) {
  return HZSHM__SLAB_CLS(atomic_load_explicit(&s->slabtab[slab], memory_order_relaxed)); /* writer's own */
}

/* Give a slab its class (push = 1: its chunks onto the free list). */
static void carve_as(hzshm__shm_t *s, uint64_t slab, int cls, int push) {
  _Atomic uint64_t *sw = &s->slabtab[slab];
  uint64_t g = HZSHM__SLAB_GEN(atomic_load_explicit(sw, memory_order_relaxed)); /* writer's own */
  atomic_store_explicit(sw, HZSHM__SLAB_MAKE(g + 1, 0xff), memory_order_relaxed); /* ordered by the fence below */
  HZSHM__FENCE_REL(); /* pairs with the reader's acquire fence before its slab word re-check */
  uint64_t csz = s->class_size[cls], n = (1ull << s->slab_shift) / csz;
  uint64_t first = slab * hzshm__shm_slab_units(s);
  for (uint64_t i = n; i-- > 0;) {
    uint64_t unit = first + i * (csz / HZSHM__UNIT);
    chunk_close(s, hzshm__shm_unit_off(s, unit));
    if (push) free_push(s, unit, cls);
  }
  /* release: pairs with the reader's acquire load of the slab word: a reader
   * that sees the new class sees the closed versions of its chunks */
  atomic_store_explicit(sw, HZSHM__SLAB_MAKE(g + 2, (uint32_t)cls), memory_order_release);
}
static void carve(hzshm__shm_t *s, uint64_t slab, int cls) { carve_as(s, slab, cls, 1); }

uint64_t hzshm__shm_slabs_handed(hzshm__shm_t *s) {
  uint64_t n = s->slab_count;
  while (n > 0 && slab_cls(s, n - 1) >= (uint32_t)s->nclass) n--;
  return n;
}

static int slab_carve(hzshm__shm_t *s, int cls) {
  hzshm__w_t *w = s->w;
  if (w->slab_next >= s->slab_count) return HZSHM_ESEGFULL;
  carve(s, w->slab_next++, cls);
  return 0;
}

static void drain_done(hzshm__shm_t *s) {
  hzshm__w_t *w = s->w;
  carve(s, w->drain_slab, w->drain_cls);
  w->drain_slab = UINT64_MAX;
}

int hzshm__shm_slab_steal(hzshm__shm_t *s, int cls) {
  hzshm__w_t *w = s->w;
  if (w->drain_slab != UINT64_MAX || w->slab_next == 0) return HZSHM_ESEGFULL;
  uint64_t slab = UINT64_MAX;
  for (uint64_t k = 0; k < w->slab_next; k++) {
    uint64_t c = (w->steal_cursor + k) % w->slab_next;
    if (slab_cls(s, c) != (uint32_t)cls) {
      slab = c;
      break;
    }
  }
  if (slab == UINT64_MAX) return HZSHM_ESEGFULL;
  w->steal_cursor = slab + 1;
  int old = (int)slab_cls(s, slab);
  uint64_t csz = s->class_size[old], n = (1ull << s->slab_shift) / csz, step = csz / HZSHM__UNIT;
  uint64_t first = slab * hzshm__shm_slab_units(s), end = first + n * step;
  w->drain_slab = slab;
  w->drain_cls = cls;
  w->drain_left = 0;
  /* free chunks of the slab leave the old class's free list */
  uint32_t *link = &w->cls[old].free;
  while (*link) {
    uint64_t u = *link - 1;
    if (u >= first && u < end) *link = w->units[u].next;
    else link = &w->units[u].next;
  }
  for (uint64_t u = first; u < end; u += step) {
    if (w->units[u].state == HZSHM__U_LIVE) hzshm__shm_unlink_entry(s, hzshm__shm_unit_off(s, u));
    if (w->units[u].state == HZSHM__U_RETIRED) w->drain_left++;
  }
  if (!w->drain_left) drain_done(s);
  return 0;
}

int hzshm__shm_alloc(hzshm__shm_t *s, int cls, uint64_t *off) {
  hzshm__wclass_t *c = &s->w->cls[cls];
  if (!c->free && slab_carve(s, cls) != 0) return HZSHM_ESEGFULL;
  uint64_t unit = c->free - 1;
  c->free = s->w->units[unit].next;
  s->w->units[unit].next = 0;
  bit_clear(s, unit);
  *off = hzshm__shm_unit_off(s, unit);
  atomic_fetch_add_explicit(&s->hdr->memory_used, s->class_size[cls], memory_order_relaxed); /* statistic */
  return 0;
}

void hzshm__shm_sieve_push(hzshm__shm_t *s, uint64_t off, uint32_t sidx) {
  uint64_t unit = hzshm__shm_unit(s, off);
  hzshm__wunit_t *u = &s->w->units[unit];
  hzshm__wclass_t *c = &s->w->cls[u->cls];
  u->state = HZSHM__U_LIVE;
  u->sidx = sidx;
  u->prev = 0;
  u->next = c->head;
  if (c->head) s->w->units[c->head - 1].prev = (uint32_t)(unit + 1);
  c->head = (uint32_t)(unit + 1);
  if (!c->tail) c->tail = c->head;
  c->live++;
}

static void sieve_remove(hzshm__shm_t *s, uint64_t unit) {
  hzshm__wunit_t *u = &s->w->units[unit];
  hzshm__wclass_t *c = &s->w->cls[u->cls];
  uint32_t me = (uint32_t)(unit + 1);
  if (c->hand == me) c->hand = u->prev;
  if (u->prev) s->w->units[u->prev - 1].next = u->next;
  else c->head = u->next;
  if (u->next) s->w->units[u->next - 1].prev = u->prev;
  else c->tail = u->prev;
  u->prev = u->next = 0;
  c->live--;
}

static int ret_push(hzshm__shm_t *s, uint64_t off, uint32_t kind) {
  hzshm__w_t *w = s->w;
  if (w->nret == w->capret) {
    size_t nc = w->capret ? w->capret * 2 : 1024;
    hzshm__retired_t *r = realloc(w->ret, nc * sizeof *r);
    if (!r) return -12;
    w->ret = r;
    w->capret = nc;
  }
  /* relaxed: only the writer stores the epoch */
  uint64_t e = atomic_load_explicit(&s->hdr->epoch, memory_order_relaxed);
  w->ret[w->nret++] = (hzshm__retired_t){off, e, kind};
  w->ret_epoch = e;
  atomic_fetch_add_explicit(&s->hdr->retired_pending, 1, memory_order_relaxed); /* statistic */
  return 0;
}

void hzshm__shm_retire(hzshm__shm_t *s, uint64_t off) {
  uint64_t unit = hzshm__shm_unit(s, off);
  if (s->w->units[unit].state == HZSHM__U_LIVE) sieve_remove(s, unit);
  s->w->units[unit].state = HZSHM__U_RETIRED;
  if (ret_push(s, off, 0) != 0) { /* out of heap: leak the chunk rather than free it early */
  }
}

/* A directory slot is on exactly one of: live (gen != 0), the retire list
 * (dirretired), the free stack. dir_reset pushes only slots that are neither,
 * so reclaim's push is the only one for a retired slot. Out of heap: the slot
 * stays marked retired and is leaked, never freed early. */
void hzshm__shm_retire_dir(hzshm__shm_t *s, uint32_t idx) {
  s->w->dirretired[idx] = 1;
  (void)ret_push(s, idx, 1);
}

uint64_t hzshm__shm_reclaim(hzshm__shm_t *s, int bump) {
  hzshm__w_t *w = s->w;
  if (!w->nret) return 0;
  /* Only a retirement at the current epoch needs a new one (readers that
   * enter after the bump cannot hold it); an unneeded bump only costs every
   * reader a miss on the header line. release: pairs with the acquire load
   * in hzshm__shm_rs_enter(); readers that see the new epoch see every
   * unlink done before it. */
  if (bump && w->ret_epoch == atomic_load_explicit(&s->hdr->epoch, memory_order_relaxed)) /* writer's own */
    atomic_fetch_add_explicit(&s->hdr->epoch, 1, memory_order_release);
  uint64_t min = hzshm__shm_min_epoch(s);
#ifdef HZSHM__TEST_BROKEN_RECLAIM
  min = UINT64_MAX; /* the test-only library (tests/shm): free under readers, validation must catch it */
#endif
  size_t keep = 0;
  uint64_t freed = 0;
  for (size_t i = 0; i < w->nret; i++) {
    hzshm__retired_t r = w->ret[i];
    if (r.epoch >= min) {
      w->ret[keep++] = r;
      continue;
    }
    freed++;
    if (r.kind == 1) {
      w->dirretired[r.off] = 0;
      w->dirfree[w->ndirfree++] = (uint32_t)r.off;
      continue;
    }
    uint64_t unit = hzshm__shm_unit(s, r.off);
    int cls = w->units[unit].cls;
    chunk_close(s, r.off); /* before any byte of it changes */
    if (w->poison) { /* everything but the version word */
      hzshm__shm_efill(s->base + r.off, 0xdb, offsetof(hzshm__shm_entry_t, ver));
      hzshm__shm_efill(s->base + r.off + offsetof(hzshm__shm_entry_t, ver) + 8, 0xdb,
                       s->class_size[cls] - offsetof(hzshm__shm_entry_t, ver) - 8);
    }
    atomic_fetch_sub_explicit(&s->hdr->memory_used, s->class_size[cls], memory_order_relaxed); /* statistic */
    if (unit / hzshm__shm_slab_units(s) == w->drain_slab) {
      w->units[unit].state = HZSHM__U_FREE;
      if (--w->drain_left == 0) drain_done(s);
      continue;
    }
    free_push(s, unit, cls);
    continue;
  }
  w->nret = keep;
  atomic_fetch_sub_explicit(&s->hdr->retired_pending, freed, memory_order_relaxed); /* statistic */
  return freed;
}

int hzshm__shm_evict_one(hzshm__shm_t *s, int cls) {
  hzshm__wclass_t *c = &s->w->cls[cls];
  if (!c->tail) return HZSHM_ESEGFULL;
  uint64_t steps = 2 * c->live + 2; /* every visited bit is cleared within one lap */
  uint32_t hand = c->hand ? c->hand : c->tail;
  while (steps--) {
    uint64_t unit = hand - 1;
    hzshm__wunit_t *u = &s->w->units[unit];
    if (bit_test(s, unit)) {
      bit_clear(s, unit);
      hand = u->prev ? u->prev : c->tail;
      continue;
    }
    c->hand = u->prev; /* 0: restart from the tail next time */
    hzshm__shm_unlink_entry(s, hzshm__shm_unit_off(s, unit));
    atomic_fetch_add_explicit(&s->hdr->evictions, 1, memory_order_relaxed); /* statistic */
    return 0;
  }
  return HZSHM_ESEGFULL;
}

/* After a restart: hzshm__shm_w_rebuild() marked reachable entries LIVE and
 * pushed them on the SIEVE queues; every other chunk of a used slab is
 * retired at the current epoch (a reader of the dead writer's time may still
 * be looking at it) and becomes free after one grace period. Slabs are
 * handed out in order, so the last slab with a class ends the handed-out
 * region; one without a class before it is a re-carve the dead writer did
 * not finish (the table walk found no entry in it). */
void hzshm__shm_rebuild_free(hzshm__shm_t *s) {
  hzshm__w_t *w = s->w;
  uint64_t used = 0;
  w->slab_next = hzshm__shm_slabs_handed(s);
  for (uint64_t slab = 0; slab < w->slab_next; slab++) {
    int cls = (int)slab_cls(s, slab);
    if (cls >= s->nclass) { /* a re-carve cut short: its chunks were all free; give it a class */
      carve_as(s, slab, 0, 0);
      cls = 0;
    }
    uint64_t csz = s->class_size[cls], n = (1ull << s->slab_shift) / csz;
    uint64_t first = slab * hzshm__shm_slab_units(s);
    for (uint64_t i = 0; i < n; i++) {
      uint64_t unit = first + i * (csz / HZSHM__UNIT);
      used += csz;
      w->units[unit].cls = (uint8_t)cls;
      if (w->units[unit].state != HZSHM__U_LIVE) {
        w->units[unit].state = HZSHM__U_RETIRED;
        ret_push(s, hzshm__shm_unit_off(s, unit), 0);
      }
    }
  }
  for (uint64_t slab = w->slab_next; slab < s->slab_count; slab++) { /* never handed out: no class */
    uint64_t g = HZSHM__SLAB_GEN(atomic_load_explicit(&s->slabtab[slab], memory_order_relaxed)); /* writer's own */
    atomic_store_explicit(&s->slabtab[slab], HZSHM__SLAB_MAKE(g + 1, 0xff), memory_order_release); /* as in carve */
  }
  atomic_store_explicit(&s->hdr->memory_used, used, memory_order_relaxed); /* statistic */
}
