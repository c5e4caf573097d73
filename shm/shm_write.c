/* shm_write.c - the writer's table operations: put (insert/replace), del,
 * partition metadata, clear_all, w_maintain's sweep, and the walk that
 * revalidates a segment after a writer restart.
 *
 * Single writer. Ordering guarantees (readers: shm_read.c):
 *   - publish_word(): an entry is filled completely (header, key, value, its
 *     own `next`) with plain/relaxed stores, then ONE release store of the
 *     bucket or predecessor's `next` word makes it reachable. Readers load
 *     those words with acquire. Insert = push at the chain head; replace = the
 *     new entry takes the old one's `next` and the predecessor is swung to it
 *     in one store (a reader sees either the old or the new value, whole);
 *     delete = the predecessor is swung past the entry in one store.
 *   - Unlinked entries are never modified; they are retired (shm_alloc.c) and
 *     their memory is reused only after a grace period.
 *   - Chains hold at most HZSHM__CHAIN_MAX entries (chain_find): a new key
 *     for a full chain is refused, so the writer's walks end at the chain's
 *     end and share no bound with the readers'.
 *   - An entry's version is made even (release, chunk_publish) after it is
 *     filled and before it is linked (validated hits, shm_read.c).
 *   - Crash consistency: every mutation visible to readers is a single
 *     aligned 8-byte store of a word that is valid both before and after it,
 *     so a writer killed at any point leaves acyclic chains of valid entries
 *     (plus leaked chunks, which the restart walk retires).
 */
#include <stdlib.h>

#include "shm_int.h"

static inline void publish_word(_Atomic uint64_t *word, uint64_t v) {
  /* release: pairs with the acquire loads of bucket/next words in lookup() */
  atomic_store_explicit(word, v, memory_order_release);
}
static inline uint64_t wload(_Atomic uint64_t *word) {
  return atomic_load_explicit(word, memory_order_relaxed); /* the writer reads its own stores */
}

uint64_t hzshm__shm_w_stamp(hzshm__shm_t *s) {
  /* relaxed: single writer; readers compare stamps only with values the
   * writer published through release stores (entries, stale marks) */
  return atomic_fetch_add_explicit(&s->hdr->stamp, 1, memory_order_relaxed) + 1;
}

/* The writer's chain walk. Chains are acyclic and at most HZSHM__CHAIN_MAX
 * entries long by construction (w_put refuses to insert into a full chain;
 * the restart walk rejects a longer one), so this walk ends at the chain's
 * end and "not found" means "not linked". It shares no bound with the
 * readers. The step guard below can trip only if something other than this
 * writer changed the chain (memory corruption): the bucket is then detached
 * with one release store, so that no new reader enters the damaged chain,
 * and counted; the walk reports the chain as empty. */
typedef struct {
  uint64_t h, gen;  /* match by key ... */
  const void *key;
  size_t klen;
  uint64_t off;     /* ... or by offset (off != 0) */
} match_t;

static void chain_cut(hzshm__shm_t *s, uint64_t b) {
  publish_word(&s->buckets[b], 0);
  atomic_fetch_add_explicit(&s->hdr->chain_cut, 1, memory_order_relaxed); /* statistic */
}

/* The word that points at the matching entry, or NULL; *len = the number of
 * entries before it (the whole chain when absent). */
static _Atomic uint64_t *chain_find(hzshm__shm_t *s, uint64_t b, const match_t *m, uint32_t *len) {
  _Atomic uint64_t *link = &s->buckets[b];
  for (uint32_t steps = 0;; steps++) {
    uint64_t w = wload(link), off = HZSHM__B_OFF(w);
    if (!off) {
      *len = steps;
      return NULL;
    }
    if (steps >= HZSHM__CHAIN_MAX || !hzshm__shm_off_ok(s, off)) {
      chain_cut(s, b);
      *len = 0;
      return NULL;
    }
    hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
    if (m->off ? off == m->off
               : e->hash == m->h && e->sgen == m->gen && HZSHM__E_KLEN(e) == m->klen &&
                     memcmp(e + 1, m->key, m->klen) == 0) {
      *len = steps;
      return link;
    }
    link = &e->next;
  }
}

static _Atomic uint64_t *find_link(hzshm__shm_t *s, uint64_t h, uint64_t gen, const void *key, size_t klen,
                                   uint32_t *len) {
  match_t m = {.h = h, .gen = gen, .key = key, .klen = klen};
  return chain_find(s, h & s->bucket_mask, &m, len);
}

static void count_removed(hzshm__shm_t *s, hzshm__shm_entry_t *e, uint64_t off) {
  uint32_t sidx = s->w->units[hzshm__shm_unit(s, off)].sidx;
  /* relaxed: the writer reads its own store */
  if (sidx < s->dir_count && atomic_load_explicit(&s->dir[sidx].gen, memory_order_relaxed) == e->sgen &&
      s->w->dirent_entries[sidx] > 0)
    s->w->dirent_entries[sidx]--;
  atomic_fetch_sub_explicit(&s->hdr->entries, 1, memory_order_relaxed); /* statistic */
}

/* The one removal step: unlink (one release store of the word that points
 * at it, when it is linked: link != NULL), count and retire. */
static void remove_entry(hzshm__shm_t *s, _Atomic uint64_t *link, uint64_t off) {
  hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
  if (link) publish_word(link, wload(&e->next));
  count_removed(s, e, off);
  hzshm__shm_retire(s, off);
}

/* Remove a live chunk (eviction, slab stealing, sweep). The walk is complete
 * (see chain_find), so a chunk it does not find is linked nowhere and is
 * retired as it is (it must not stay live in a slab being re-carved). */
int hzshm__shm_unlink_entry(hzshm__shm_t *s, uint64_t off) {
  hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
  match_t m = {.off = off};
  uint32_t len;
  _Atomic uint64_t *link = chain_find(s, e->hash & s->bucket_mask, &m, &len);
  remove_entry(s, link, off);
  return link ? 0 : HZSHM_ECORRUPT;
}

/* Dead (session dropped), expired or stale-by-partition: swept. */
static int entry_gone(hzshm__shm_t *s, hzshm__shm_entry_t *e, uint64_t off, uint64_t now, int *expired) {
  uint32_t sidx = s->w->units[hzshm__shm_unit(s, off)].sidx;
  /* relaxed: the writer reads its own stores */
  int dead = sidx >= s->dir_count || atomic_load_explicit(&s->dir[sidx].gen, memory_order_relaxed) != e->sgen;
  *expired = !dead && e->expiry_ns && now >= e->expiry_ns;
  int stale = e->partition < s->part_count &&
              e->stamp < atomic_load_explicit(&s->parts[e->partition].stale_mark, memory_order_relaxed);
  return dead || *expired || stale;
}

/* Unlink every swept entry of bucket b; the number of entries left. */
static uint32_t sweep_bucket(hzshm__shm_t *s, uint64_t b, uint64_t now) {
  _Atomic uint64_t *link = &s->buckets[b];
  uint32_t left = 0;
  for (uint32_t steps = 0;; steps++) {
    uint64_t off = HZSHM__B_OFF(wload(link));
    if (!off) return left;
    if (steps >= HZSHM__CHAIN_MAX || !hzshm__shm_off_ok(s, off)) { /* see chain_find */
      chain_cut(s, b);
      return 0;
    }
    hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
    int expired;
    if (entry_gone(s, e, off, now, &expired)) {
      remove_entry(s, link, off); /* link now points at the next entry */
      if (expired) atomic_fetch_add_explicit(&s->hdr->expirations, 1, memory_order_relaxed); /* statistic */
      continue;
    }
    left++;
    link = &e->next;
  }
}

/* At most one epoch bump per put (the first reclaim): what the later
 * reclaims could free beyond it was retired during this put, while readers
 * were inside; a bump for those would not free them now and is left to the
 * next operation's first reclaim. */
static int alloc_or_evict(hzshm__shm_t *s, int cls, uint64_t *off) {
  if (hzshm__shm_alloc(s, cls, off) == 0) return 0;
  if (hzshm__shm_reclaim(s, 1) && hzshm__shm_alloc(s, cls, off) == 0) return 0;
  /* Evict a small batch, then wait for no one: one reclaim pass. */
  for (int i = 0; i < 8; i++)
    if (hzshm__shm_evict_one(s, cls) != 0) break;
  hzshm__shm_reclaim(s, 0);
  if (hzshm__shm_alloc(s, cls, off) == 0) return 0;
  /* Nothing of its own to evict: move a slab from another class. */
  if (hzshm__shm_slab_steal(s, cls) == 0) {
    hzshm__shm_reclaim(s, 0);
    if (hzshm__shm_alloc(s, cls, off) == 0) return 0;
  }
  /* A reader may be dead inside its section: reap, then one more pass. */
  if (hzshm__shm_reap(s)) {
    hzshm__shm_reclaim(s, 0);
    if (hzshm__shm_alloc(s, cls, off) == 0) return 0;
  }
  return HZSHM_ESEGFULL;
}

int hzshm__shm_w_put(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen, const void *val,
                     size_t vlen, uint32_t partition, uint64_t stamp, uint32_t ttl_ms, uint32_t flags) {
  if (!s || !s->w) return HZSHM_EINVAL;
  if (!key || klen == 0) return HZSHM_EEMPTY;
  if (klen > HZSHM_KEY_MAX) return HZSHM_ETOOBIG;
  if ((!val && vlen) || (flags & ~(uint32_t)(HZSHM_SHM_NEGATIVE | HZSHM_SHM_STRING)) ||
      (flags == (HZSHM_SHM_NEGATIVE | HZSHM_SHM_STRING)) || partition >= s->part_count)
    return HZSHM_EINVAL;
  int rc = hzshm__shm_w_ref_ok(s, ref);
  if (rc) return rc;
  uint64_t size = sizeof(hzshm__shm_entry_t) + klen + (uint64_t)vlen;
  int cls = vlen > UINT32_MAX ? -1 : hzshm__shm_class_of(s, size);
  uint64_t h = hzshm__shm_key_hash(s, key, klen, ref->gen);
  uint64_t off;
  uint32_t len;
  _Atomic uint64_t *link = find_link(s, h, ref->gen, key, klen, &len);
  if (!link && len >= HZSHM__CHAIN_MAX && sweep_bucket(s, h & s->bucket_mask, hzshm__shm_now_coarse()) >=
                                              HZSHM__CHAIN_MAX) {
    /* A new key for a full chain: not cached (nothing older of it is). */
    atomic_fetch_add_explicit(&s->hdr->chain_refused, 1, memory_order_relaxed); /* statistic */
    return HZSHM_ESEGFULL;
  }
  if (cls < 0 || (rc = alloc_or_evict(s, cls, &off)) != 0) {
    /* Not cached: drop an older value of the key so the cache never serves
     * a value older than the one the caller just tried to store. */
    _Atomic uint64_t *old = find_link(s, h, ref->gen, key, klen, &len);
    if (old) remove_entry(s, old, HZSHM__B_OFF(wload(old)));
    return cls < 0 ? HZSHM_ETOOBIG : rc;
  }
  /* The chunk's version is odd (closed when it was freed or carved): fill,
   * then make it even (release) before the entry is linked. */
  hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
  HZSHM__EST(e->hash, h);
  HZSHM__EST(e->sgen, ref->gen);
  HZSHM__EST(e->stamp, stamp);
  HZSHM__EST(e->expiry_ns, ttl_ms ? hzshm__shm_now_coarse() + (uint64_t)ttl_ms * 1000000ull : 0);
  HZSHM__EST(e->vlen, (uint32_t)vlen);
  HZSHM__EST(e->klen, (uint16_t)(klen | ((flags & HZSHM_SHM_NEGATIVE) ? HZSHM__E_NEGATIVE : 0) |
                                  ((flags & HZSHM_SHM_STRING) ? HZSHM__E_STRING : 0)));
  HZSHM__EST(e->partition, (uint16_t)partition);
  hzshm__shm_ewrite(e + 1, key, klen);
  if (vlen) hzshm__shm_ewrite((char *)(e + 1) + klen, val, vlen);
  hzshm__shm_chunk_publish(s, off);
  /* Again: eviction above may have unlinked entries of this chain (the old
   * value of this key among them); it can only have become shorter. */
  link = find_link(s, h, ref->gen, key, klen, &len);
  if (link) { /* replace in place of the old entry */
    uint64_t old = HZSHM__B_OFF(wload(link));
    atomic_store_explicit(&e->next, wload(&hzshm__shm_entry(s, old)->next), memory_order_relaxed); /* published below */
    publish_word(link, HZSHM__B_MAKE(off, h));
    hzshm__shm_retire(s, old);
  } else {
    _Atomic uint64_t *b = &s->buckets[h & s->bucket_mask];
    atomic_store_explicit(&e->next, wload(b), memory_order_relaxed); /* published below */
    publish_word(b, HZSHM__B_MAKE(off, h));
    s->w->dirent_entries[ref->idx]++;
    atomic_fetch_add_explicit(&s->hdr->entries, 1, memory_order_relaxed);          /* statistic */
  }
  hzshm__shm_sieve_push(s, off, ref->idx);
  return 0;
}

int hzshm__shm_w_del(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen) {
  if (!s || !s->w) return HZSHM_EINVAL;
  if (!key || klen == 0) return HZSHM_EEMPTY;
  if (klen > HZSHM_KEY_MAX) return HZSHM_ETOOBIG;
  int rc = hzshm__shm_w_ref_ok(s, ref);
  if (rc) return rc;
  uint64_t h = hzshm__shm_key_hash(s, key, klen, ref->gen);
  uint32_t len;
  _Atomic uint64_t *link = find_link(s, h, ref->gen, key, klen, &len);
  if (!link) return HZSHM_ENOTFOUND;
  remove_entry(s, link, HZSHM__B_OFF(wload(link)));
  return 0;
}

int hzshm__shm_w_partition_stale(hzshm__shm_t *s, uint32_t partition) {
  if (!s || !s->w || partition >= s->part_count) return HZSHM_EINVAL;
  uint64_t mark = hzshm__shm_w_stamp(s);
  /* release: pairs with the acquire in lookup(); monotonic, writer only */
  atomic_store_explicit(&s->parts[partition].stale_mark, mark, memory_order_release);
  return 0;
}

int hzshm__shm_w_partition_uuid(hzshm__shm_t *s, uint32_t partition, const uint8_t uuid[16]) {
  if (!s || !s->w || !uuid || partition >= s->part_count) return HZSHM_EINVAL;
  uint64_t a, b;
  memcpy(&a, uuid, 8);
  memcpy(&b, uuid + 8, 8);
  /* relaxed: observability only, read as two independent words */
  atomic_store_explicit(&s->parts[partition].uuid[0], a, memory_order_relaxed);
  atomic_store_explicit(&s->parts[partition].uuid[1], b, memory_order_relaxed);
  return 0;
}

/* Detach every chain (one release store per bucket), then retire its entries. */
static void table_reset(hzshm__shm_t *s) {
  for (uint64_t b = 0; b <= s->bucket_mask; b++) {
    uint64_t w = wload(&s->buckets[b]);
    if (!w) continue;
    publish_word(&s->buckets[b], 0);
    /* Detached: no new reader enters it. Its entries are retired; one the
     * guard does not reach (only a corrupt chain is longer) stays live and
     * is retired when evicted (unlink_entry finds it linked nowhere). */
    for (uint32_t steps = 0; steps < HZSHM__CHAIN_MAX && HZSHM__B_OFF(w) && hzshm__shm_off_ok(s, HZSHM__B_OFF(w));
         steps++) {
      uint64_t off = HZSHM__B_OFF(w);
      w = wload(&hzshm__shm_entry(s, off)->next);
      if (s->w->units[hzshm__shm_unit(s, off)].state == HZSHM__U_LIVE) hzshm__shm_retire(s, off);
    }
  }
  atomic_store_explicit(&s->hdr->entries, 0, memory_order_relaxed); /* statistic */
}

int hzshm__shm_w_clear_all(hzshm__shm_t *s) {
  if (!s || !s->w) return HZSHM_EINVAL;
  hzshm__shm_dir_reset(s);
  table_reset(s);
  return 0;
}

/* w_maintain: reclaim, reap, then sweep a bounded number of buckets for
 * entries of dropped sessions, expired entries and stale-by-partition ones. */
#define HZSHM__SWEEP_BUCKETS 4096u
int hzshm__shm_w_maintain(hzshm__shm_t *s) {
  if (!s || !s->w) return HZSHM_EINVAL;
  hzshm__shm_reclaim(s, 1);
  if (hzshm__shm_reap(s)) hzshm__shm_reclaim(s, 0); /* one fcntl per occupied slot */
  uint64_t now = hzshm__shm_now_coarse();
  for (uint32_t k = 0; k < HZSHM__SWEEP_BUCKETS && k <= s->bucket_mask; k++)
    sweep_bucket(s, s->w->sweep_cursor++ & s->bucket_mask, now);
  return 0;
}

/* ---- restart ---- */

typedef struct {
  uint64_t *gens;
  uint32_t *idx;
  uint64_t mask;
} genmap_t;

static int genmap_find(genmap_t *m, uint64_t gen, uint32_t *idx) {
  for (uint64_t i = gen & m->mask;; i = (i + 1) & m->mask) {
    if (m->gens[i] == 0) return 0;
    if (m->gens[i] == gen) {
      *idx = m->idx[i];
      return 1;
    }
  }
}

/* Walk every chain; keep sound entries of live sessions. 0 = consistent. */
static int table_walk(hzshm__shm_t *s, genmap_t *m) {
  hzshm__w_t *w = s->w;
  /* Slabs are handed out in order: the last one with a class ends the
   * handed-out region (hzshm__shm_rebuild_free uses the same bound), so an
   * entry beyond it would be carved over again; an entry in a slab without
   * a class (a re-carve cut short) is corrupt too. */
  uint64_t handed = hzshm__shm_slabs_handed(s);
  for (uint64_t b = 0; b <= s->bucket_mask; b++) {
    _Atomic uint64_t *link = &s->buckets[b];
    for (uint64_t steps = 0;; steps++) {
      uint64_t word = wload(link), off = HZSHM__B_OFF(word);
      if (!off) break;
      if (steps >= HZSHM__CHAIN_MAX || !hzshm__shm_off_ok(s, off)) return HZSHM_ECORRUPT; /* no chain is longer */
      uint64_t unit = hzshm__shm_unit(s, off), slab = unit / hzshm__shm_slab_units(s);
      if (slab >= handed) return HZSHM_ECORRUPT;
      int cls = (int)HZSHM__SLAB_CLS(wload(&s->slabtab[slab]));
      if (cls >= s->nclass) return HZSHM_ECORRUPT;
      uint64_t csz = s->class_size[cls];
      hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
      uint64_t in_slab = (off - s->arena_off) & ((1ull << s->slab_shift) - 1);
      /* On a chunk boundary and not in the slab's unused tail (a 1.25 MiB
       * chunk at 1.25 MiB of a 2 MiB slab would overrun the next slab). */
      if (in_slab % csz || in_slab + csz > (1ull << s->slab_shift) || HZSHM__E_KLEN(e) > HZSHM_KEY_MAX ||
          HZSHM__E_KLEN(e) == 0 || sizeof *e + HZSHM__E_KLEN(e) + (uint64_t)e->vlen > csz ||
          (e->hash & s->bucket_mask) != b || HZSHM__B_TAG(word) != (uint16_t)(e->hash >> 48) ||
          w->units[unit].state == HZSHM__U_LIVE || (atomic_load_explicit(&e->ver, memory_order_relaxed) & 1))
        return HZSHM_ECORRUPT; /* an odd version: linked but never published */
      uint32_t sidx;
      if (!genmap_find(m, e->sgen, &sidx)) { /* entry of a dropped session: unlink now */
        publish_word(link, wload(&e->next));
        continue;
      }
      w->units[unit].cls = (uint8_t)cls;
      hzshm__shm_sieve_push(s, off, sidx);
      w->dirent_entries[sidx]++;
      atomic_fetch_add_explicit(&s->hdr->entries, 1, memory_order_relaxed);      /* statistic */
      link = &e->next;
    }
  }
  return 0;
}

/* Rebuild the writer's private state from a segment a dead writer left. If
 * any structure is inconsistent, start empty instead (readers are protected:
 * everything is unlinked with single stores and retired, never freed early). */
int hzshm__shm_w_rebuild(hzshm__shm_t *s) {
  hzshm__w_t *w = s->w;
  genmap_t m = {0};
  uint8_t *linked = NULL;
  int rc = 0, live = 0;
  uint64_t next = atomic_load_explicit(&s->hdr->next_sgen, memory_order_relaxed);
  uint64_t cap = 16;
  while (cap < 2ull * s->dir_count) cap <<= 1;
  m.gens = calloc(cap, sizeof *m.gens);
  m.idx = calloc(cap, sizeof *m.idx);
  m.mask = cap - 1;
  if (!m.gens || !m.idx) {
    rc = -12;
    goto out;
  }
  atomic_store_explicit(&s->hdr->entries, 0, memory_order_relaxed);         /* statistic, recounted */
  atomic_store_explicit(&s->hdr->retired_pending, 0, memory_order_relaxed); /* idem */
  w->ndirfree = 0;
  /* The name chains first: they tell which records a reader can reach. */
  linked = calloc(s->dir_count, 1);
  if (!linked) {
    rc = -12;
    goto out;
  }
  int bad = hzshm__shm_dir_relink(s, linked) != 0;
  for (uint32_t i = s->dir_count; !bad && i-- > 0;) {
    hzshm__shm_dirent_t *r = &s->dir[i];
    uint64_t g = atomic_load_explicit(&r->gen, memory_order_relaxed);
    if (!g && linked[i] == HZSHM__DIR_UNLINKED) { /* a drop cut short: a reader may stand on it */
      hzshm__shm_retire_dir(s, i);
      continue;
    }
    if (!g) {
      w->dirfree[w->ndirfree++] = i;
      continue;
    }
    if (linked[i] != HZSHM__DIR_LINKED) {
      /* Live but in no chain: a clear_all (dir_reset) cut short after the
       * chains were cleared. Finish the drop: its readers' refs go stale
       * (pairs with the acquire loads of gen in lookup()), the walk below
       * unlinks its entries, the slot is freed after a grace period. */
      atomic_store_explicit(&r->gen, 0, memory_order_release);
      hzshm__shm_retire_dir(s, i);
      continue;
    }
    uint32_t dummy;
    if (g >= next || atomic_load_explicit(&r->namelen, memory_order_relaxed) > HZSHM_SESSION_MAX ||
        genmap_find(&m, g, &dummy)) {
      bad = 1;
      break;
    }
    uint64_t j = g & m.mask;
    while (m.gens[j]) j = (j + 1) & m.mask;
    m.gens[j] = g;
    m.idx[j] = i;
    w->dirent_entries[i] = 0;
    live++;
  }
  atomic_store_explicit(&s->hdr->sessions, (uint64_t)live, memory_order_relaxed); /* statistic */
  if (bad || table_walk(s, &m) != 0) {
    /* Inconsistent: unlink everything, retire it all after a grace period. */
    memset(w->units, 0, s->nunits * sizeof *w->units);
    memset(w->cls, 0, sizeof w->cls);
    /* A drop cut short that the loop above did not reach (it stopped at the
     * corruption, or dir_relink did) was unlinked just now: a reader may
     * stand on it, so it is retired, not freed (dir_reset frees gen-0
     * records that are not retired, and retires the live ones). */
    for (uint32_t i = 0; linked && i < s->dir_count; i++)
      if (linked[i] == HZSHM__DIR_UNLINKED && !w->dirretired[i]) hzshm__shm_retire_dir(s, i);
    hzshm__shm_dir_reset(s);
    for (uint64_t b = 0; b <= s->bucket_mask; b++) publish_word(&s->buckets[b], 0);
    atomic_store_explicit(&s->hdr->entries, 0, memory_order_relaxed);
  }
  hzshm__shm_rebuild_free(s);
out:
  free(linked);
  free(m.gens);
  free(m.idx);
  return rc;
}
