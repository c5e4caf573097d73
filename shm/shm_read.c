/* shm_read.c - the reader side: session resolution, get/has/view, the
 * fail-closed check.
 *
 * Ordering and progress guarantees
 *   - Lock-free and syscall-free on a hit (the coarse clock is a vDSO read).
 *     Every walk is bounded (HZSHM__WALK_MAX, dir_count) and every offset is
 *     bounds-checked before it is followed, so a corrupt or half-written
 *     segment yields a miss, never a loop or a wild read. The writer keeps
 *     chains within HZSHM__CHAIN_MAX, so the bound cuts only corrupt chains.
 *   - Validated hits: before reading an entry the reader loads its slab's
 *     word (class + carving generation) and the entry's version (both
 *     acquire; they pair with the release stores of carve() and
 *     chunk_publish() in shm_alloc.c); after the copy an acquire fence and
 *     both again (seen_ok). The fence pairs with the writer's release fences
 *     that follow making a version odd / a slab word "re-carving" before any
 *     byte changes; so equal words prove every byte read belongs to one
 *     published entry. A failed check is retried, then a miss: never a hit,
 *     even if reclamation failed. Views re-check at r_view_end.
 *   - Bucket and `next` words are loaded with acquire, pairing with the
 *     writer's release stores that publish an entry (shm_write.c,
 *     publish_word()): the entry's immutable bytes written before the publish
 *     are visible after the load. Entries are then read with plain loads.
 *   - Reclamation safety comes from the read-side section around the whole
 *     lookup and copy (shm_slots.c).
 *   - Session directory records are read under the seqlock of shm_seq.h
 *     (the proof is there) on `gen`: read_begin, the name words got,
 *     read_retry (dir_match); the writer's section is dir_write() in
 *     shm_session.c (busy = gen 0).
 *   - The session generation is checked (acquire) before the walk and again
 *     after the value is copied: a hit is reported only if the session was
 *     live at both points, so a reader never returns an entry of a session
 *     destroyed before its lookup began.
 */
#include "shm_int.h"
#include "shm_seq.h"

/* 1 if the heartbeat hb is older than the segment's bound.
 * The coarse clock (hzshm__shm_clock_coarse: a vDSO read, no syscall, no
 * TSC read) is fine here: it advances in ticks of 1-10 ms (the jiffy:
 * CONFIG_HZ 1000..100; clock_getres says 4 ms on the dev box), so a
 * heartbeat age measured with it is short of the true one by at most a
 * tick, against a bound of seconds (stale_after_ns, 2 s by default): a
 * reader fails closed at most one tick later than stale_after_ns. The
 * writer stamps heartbeat_ns from the same clock. Both clocks are on the
 * initial time namespace's scale (the namespace offsets taken off,
 * hzshm__shm_clock_init). Either direction still: a reader whose offset
 * could not be read (no /proc) and whose clock is behind the writer's would
 * otherwise never see the heartbeat age. */
static inline __attribute__((always_inline)) int hb_stale(const hzshm__shm_t *s, uint64_t hb) {
  uint64_t now = hzshm__shm_clock_coarse();
  return now > hb ? now - hb > s->stale_after_ns : hb - now > s->stale_after_ns;
}

/* The fail-closed check, inline on the hit path (hzshm__shm_r_check below is
 * the same for other callers). */
static inline __attribute__((always_inline)) int r_check(hzshm__shm_t *s) {
  if (s->forked) return HZSHM_ECLOSED;
  /* The heartbeat first, then the state, both acquire: they pair with the
   * release stores in hzshm__shm_w_heartbeat (state, then heartbeat), so the
   * state read is at least the one stored with this heartbeat (a fresh
   * heartbeat never shows a dead writer's SERVING), and SERVING brings the
   * writes made before it (a restarted agent's stale marks). A late view of
   * them only delays failing closed by one heartbeat. */
  uint64_t hb = atomic_load_explicit(&s->hdr->heartbeat_ns, memory_order_acquire);
  uint32_t st = atomic_load_explicit(&s->hdr->state, memory_order_acquire);
  if (st != HZSHM_SHM_SERVING) {
    if (st == HZSHM_SHM_STOPPED) return HZSHM_ESTOPPED;
    /* DISCONNECTED only from a live writer: one that died so (killed while
     * the cluster was away, or inside w_open after its "not serving" store)
     * is stale like a dead SERVING one. Else its readers would report
     * EDISCONNECTED forever and never look for a replaced segment (libhzshm
     * follows one on ESTALE / ESTOPPED only). */
    return st == HZSHM_SHM_DISCONNECTED && !hb_stale(s, hb) ? HZSHM_EDISCONNECTED : HZSHM_ESTALE;
  }
  return hb_stale(s, hb) ? HZSHM_ESTALE : 0;
}

int hzshm__shm_r_check(hzshm__shm_t *s) { return r_check(s); }

static inline void count(_Atomic uint64_t *c) {
  /* relaxed: owner-only counter, summed approximately by stats */
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

void hzshm__shm_r_count_miss(hzshm__shm_t *s) {
  if (s->forked) return;
  hzshm__shm_slot_t *sl = hzshm__shm_slot_get(s);
  if (sl) count(&sl->misses);
}

/* Compare the stored name of record r with sid under r's seqlock.
 * 1 = same name at generation *gen, 0 = different, -1 = changed meanwhile. */
static int dir_match(hzshm__shm_dirent_t *r, const char *sid, size_t len, uint64_t h, uint64_t *gen) {
  uint64_t g1 = hzshm__seq_read_begin(&r->gen); /* seqlock reader (shm_seq.h) of dir_write's section */
  if (g1 == 0) return 0; /* being written, or free */
  int same = hzshm__seq_get64(&r->name_hash) == h && hzshm__seq_get32(&r->namelen) == len;
  for (size_t w = 0; same && w * 8 < len; w++) {
    uint64_t word = hzshm__seq_get64(&r->name[w]), want = 0;
    size_t n = len - w * 8 < 8 ? len - w * 8 : 8;
    memcpy(&want, sid + w * 8, n);
    same = word == want;
  }
  if (hzshm__seq_read_retry(&r->gen, g1)) return -1;
  *gen = g1;
  return same;
}

int hzshm__shm_dir_find(hzshm__shm_t *s, const char *sid, size_t len, uint64_t h, uint32_t *idx, uint64_t *gen) {
  for (int retry = 0; retry < 16; retry++) {
    /* acquire: pairs with the release store that links a record (dir_link) */
    uint32_t v = atomic_load_explicit(&s->dirix[h & s->dirix_mask], memory_order_acquire);
    int changed = 0;
    for (uint32_t steps = 0; v && steps <= s->dir_count; steps++) {
      uint32_t i = v - 1;
      if (i >= s->dir_count) return HZSHM_EMISS; /* corrupt link: treat as absent */
      hzshm__shm_dirent_t *r = &s->dir[i];
      int m = dir_match(r, sid, len, h, gen);
      if (m == 1) {
        *idx = i;
        return 0;
      }
      if (m < 0) {
        changed = 1;
        break;
      }
      v = atomic_load_explicit(&r->next, memory_order_acquire); /* pairs with dir_link */
    }
    if (!changed) return HZSHM_EMISS;
  }
  return HZSHM_EMISS;
}

int hzshm__shm_r_session(hzshm__shm_t *s, const char *sid, size_t sidlen, hzshm__sref_t *ref) {
  if (!s || !ref || (!sid && sidlen)) return HZSHM_EINVAL;
  if (sidlen == 0) return HZSHM_EEMPTY;
  if (sidlen > HZSHM_SESSION_MAX) return HZSHM_ETOOBIG;
  if (s->forked) return HZSHM_ECLOSED;
  hzshm__shm_slot_t *sl = hzshm__shm_slot_get(s);
  if (!sl) return HZSHM_EBUSY;
  uint64_t h = hzshm__shm_key_hash(s, sid, sidlen, HZSHM__SID_SEED);
  hzshm__shm_rs_enter(s, sl); /* directory slots are reclaimed by epoch too */
  uint32_t idx = 0;
  uint64_t gen = 0;
  int rc = hzshm__shm_dir_find(s, sid, sidlen, h, &idx, &gen);
  hzshm__shm_rs_exit(s, sl);
  if (rc == 0) {
    ref->idx = idx;
    ref->gen = gen;
  }
  return rc;
}

/* Key equality without a call for the common short keys: 8..16 bytes are
 * two (possibly overlapping) 8-byte loads per side. `a` is in the segment:
 * under TSan it is first copied with the entry accessors (shm_int.h). */
static inline int key_eq(const char *a, const char *b, size_t n) {
#if defined(__SANITIZE_THREAD__)
  char tmp[HZSHM_KEY_MAX];
  hzshm__shm_eread(tmp, a, n);
  a = tmp;
#endif
  if (n >= 8 && n <= 16) {
    uint64_t a0, a1, b0, b1;
    memcpy(&a0, a, 8);
    memcpy(&b0, b, 8);
    memcpy(&a1, a + n - 8, 8);
    memcpy(&b1, b + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  return memcmp(a, b, n) == 0;
}

/* What a hit read its entry under: the entry's version and its slab's word,
 * both taken (acquire) before the entry's bytes were read, and the value
 * length that lookup() bounds-checked against the chunk. The caller copies
 * exactly vlen bytes and never re-reads the length: if the chunk is reused
 * meanwhile (validation then fails), a fresh read could give another entry's
 * length and carry the copy past the chunk, past the mapping at the arena's
 * end. */
typedef struct {
  hzshm__shm_entry_t *e;
  _Atomic uint64_t *sw;
  uint64_t ver, slab;
  uint32_t vlen;
  uint32_t vflags; /* HZSHM_SHM_STRING or 0, from the same load of klen */
} seen_t;

/* The re-check after the bytes were read: the acquire fence orders those
 * reads before the two loads; it pairs with the writer's release fences
 * after it made a version odd / a slab word "re-carving" (shm_alloc.c,
 * chunk_close and carve): if any read saw a byte written after such a fence,
 * the load here sees the changed word. */
static inline int seen_ok(const seen_t *v) {
  HZSHM__FENCE_ACQ();
  return atomic_load_explicit(&v->e->ver, memory_order_relaxed) == v->ver && /* ordered by the fence */
         atomic_load_explicit(v->sw, memory_order_relaxed) == v->slab;
}

#define HZSHM__RETRY 1   /* lookup(): validation failed, the caller retries (section left) */
#define HZSHM__TRIES 4   /* lookups per call before a failed validation is a miss */

/* The lookup proper. On 0 / HZSHM_ENOTFOUND the caller is inside the read-side
 * section and *vp is valid until it leaves (and must pass seen_ok after the
 * caller read the value); on any other code it has left. */
static inline __attribute__((always_inline)) int lookup(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key,
                                                       size_t klen, hzshm__shm_slot_t **slp, seen_t *vp,
                                                       int want_value) {
  if (!s || !ref) return HZSHM_EINVAL;
  if (s->forked) return HZSHM_ECLOSED;
  if (!key || klen == 0) return HZSHM_EEMPTY;
  if (klen > HZSHM_KEY_MAX) return HZSHM_ETOOBIG;
  if (ref->idx >= s->dir_count || ref->gen == 0) return HZSHM_EBADSESSION;
  hzshm__shm_slot_t *sl = hzshm__shm_slot_get(s);
  if (!sl) return HZSHM_EBUSY;
  *slp = sl;
  int rc = r_check(s);
  if (rc) return rc;
  hzshm__shm_rs_enter(s, sl);
  hzshm__shm_dirent_t *d = &s->dir[ref->idx];
  /* acquire: pairs with the release store of a new gen in w_session_drop */
  if (atomic_load_explicit(&d->gen, memory_order_acquire) != ref->gen) {
    rc = HZSHM_ESESSION;
    goto out;
  }
  uint64_t h = hzshm__shm_key_hash(s, key, klen, ref->gen);
  uint16_t tag = (uint16_t)(h >> 48);
  /* acquire: pairs with publish_word() in shm_write.c */
  uint64_t w = atomic_load_explicit(&s->buckets[h & s->bucket_mask], memory_order_acquire);
  rc = HZSHM_EMISS;
  for (uint32_t steps = 0; steps < HZSHM__WALK_MAX; steps++) {
    uint64_t off = HZSHM__B_OFF(w);
    if (!off || !hzshm__shm_off_ok(s, off)) break;
    hzshm__shm_entry_t *e = hzshm__shm_entry(s, off);
    uint64_t unit = (off - s->arena_off) / HZSHM__UNIT;
    _Atomic uint64_t *bw = &s->bitmap[unit / 64];
    if (HZSHM__B_TAG(w) == tag) {
      /* The hint word and the value's lines are known from the bucket word,
       * before the entry header arrives: fetch them all at once (the value
       * of a small entry lies in the next two lines) instead of one
       * dependent miss after the other. */
      __builtin_prefetch((const void *)bw, 0, 3);
      if (want_value && off + 3 * HZSHM__LINE <= s->arena_end) {
        __builtin_prefetch((const char *)e + HZSHM__LINE, 0, 3);
        __builtin_prefetch((const char *)e + 2 * HZSHM__LINE, 0, 3);
      }
      /* Validated hits: the slab word, then the entry's version, both with
       * acquire (pairing with the release stores of carve() and
       * chunk_publish(), so the entry's bytes published before them are
       * visible). A live chunk of a carved slab never fails these checks;
       * one that does was freed under this reader (reclamation failed):
       * retry from the bucket. */
      _Atomic uint64_t *sw = &s->slabtab[(off - s->arena_off) >> s->slab_shift];
      uint64_t swv = atomic_load_explicit(sw, memory_order_acquire);
      uint32_t cls = HZSHM__SLAB_CLS(swv);
      uint64_t ver = atomic_load_explicit(&e->ver, memory_order_acquire);
      if (cls >= (uint32_t)s->nclass || !hzshm__shm_chunk_start(s, cls, off) || (ver & 1)) {
        rc = HZSHM__RETRY;
        goto out;
      }
      /* The length is loaded once, as a (relaxed) atomic in every build: a
       * plain load could be repeated by the compiler after the bound check
       * below, and the copy must use the very value that was checked. */
      uint32_t eklen = HZSHM__ELD(e->klen), evlen = __atomic_load_n(&e->vlen, __ATOMIC_RELAXED);
      if (HZSHM__ELD(e->hash) == h && HZSHM__ELD(e->sgen) == ref->gen && (eklen & HZSHM__E_KLEN_MASK) == klen &&
          sizeof *e + klen + (uint64_t)evlen <= s->class_size[cls] && key_eq((const char *)(e + 1), key, klen)) {
        uint64_t exp = HZSHM__ELD(e->expiry_ns), now = exp ? hzshm__shm_clock_coarse() : 0;
        uint16_t part = HZSHM__ELD(e->partition);
        if (exp && now >= exp) break;
        if (part < s->part_count &&
            /* acquire: pairs with the release store in w_partition_stale */
            HZSHM__ELD(e->stamp) < atomic_load_explicit(&s->parts[part].stale_mark, memory_order_acquire))
          break;
        /* SIEVE hint: write the shared bit only when it is not set yet, so a
         * hot entry costs no cache-line transfer after its first hit.
         * relaxed: a hint; the writer tolerates a lost or late bit. */
        if (!(atomic_load_explicit(bw, memory_order_relaxed) & (1ull << (unit % 64))))
          atomic_fetch_or_explicit(bw, 1ull << (unit % 64), memory_order_relaxed);
        *vp = (seen_t){e, sw, ver, swv, evlen, (eklen & HZSHM__E_STRING) ? HZSHM_SHM_STRING : 0u};
        return (eklen & HZSHM__E_NEGATIVE) ? HZSHM_ENOTFOUND : 0;
      }
    }
    w = atomic_load_explicit(&e->next, memory_order_acquire); /* pairs with publish_word() */
  }
out:
  hzshm__shm_rs_exit(s, sl);
  if (rc == HZSHM_EMISS) count(&sl->misses);
  return rc;
}

/* A lookup whose validation failed: counted; the last try counts a miss. */
static int torn(hzshm__shm_slot_t *sl, int attempt) {
  count(&sl->torn);
  if (attempt + 1 < HZSHM__TRIES) return HZSHM__RETRY;
  count(&sl->misses);
  return HZSHM_EMISS;
}

/* Leave the section after a hit, confirming the session was live throughout. */
static inline __attribute__((always_inline)) int finish(hzshm__shm_t *s, const hzshm__sref_t *ref,
                                                       hzshm__shm_slot_t *sl, int rc) {
  /* acquire: pairs with the release store of a new gen in w_session_drop();
   * the entry was reached through acquire loads issued before this one */
  if (atomic_load_explicit(&s->dir[ref->idx].gen, memory_order_acquire) != ref->gen) rc = HZSHM_ESESSION;
  hzshm__shm_rs_exit(s, sl);
  if (rc == 0 || rc == HZSHM_ENOTFOUND || rc == HZSHM_EBUFSIZE) count(&sl->hits);
  return rc;
}

int hzshm__shm_r_get(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen, void *buf,
                     size_t cap, size_t *vlen) {
  return hzshm__shm_r_get_typed(s, ref, key, klen, buf, cap, vlen, NULL);
}

int hzshm__shm_r_get_typed(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen, void *buf,
                           size_t cap, size_t *vlen, uint32_t *vflags) {
  for (int attempt = 0;; attempt++) {
    hzshm__shm_slot_t *sl = NULL;
    seen_t v;
    int rc = lookup(s, ref, key, klen, &sl, &v, buf != NULL);
    if (rc == HZSHM__RETRY && (rc = torn(sl, attempt)) == HZSHM__RETRY) continue;
    if (rc != 0 && rc != HZSHM_ENOTFOUND) return rc;
    size_t n = v.vlen; /* the checked length (seen_t) */
    if (rc == 0 && buf) {
      if (cap < n) rc = HZSHM_EBUFSIZE;
      else hzshm__shm_eread(buf, (const char *)(v.e + 1) + klen, n);
    }
    if (!seen_ok(&v)) { /* what was read may be another entry's bytes: never a hit */
      hzshm__shm_rs_exit(s, sl);
      if ((rc = torn(sl, attempt)) == HZSHM__RETRY) continue;
      return rc;
    }
    rc = finish(s, ref, sl, rc);
    if (rc == 0 || rc == HZSHM_EBUFSIZE) {
      if (vlen) *vlen = n;
      if (vflags) *vflags = v.vflags;
    }
    return rc;
  }
}

/* Open views of this thread (views nest): what r_view_end re-checks. */
#define HZSHM__VIEWS_MAX 16
static __thread struct {
  uint64_t id; /* handle id */
  seen_t v;
} tls_views[HZSHM__VIEWS_MAX];
static __thread int tls_nviews;

int hzshm__shm_r_view(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen, const void **val,
                      size_t *vlen) {
  return hzshm__shm_r_view_typed(s, ref, key, klen, val, vlen, NULL);
}

int hzshm__shm_r_view_typed(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen,
                            const void **val, size_t *vlen, uint32_t *vflags) {
  if (!val) return HZSHM_EINVAL;
  for (int attempt = 0;; attempt++) {
    hzshm__shm_slot_t *sl = NULL;
    seen_t v;
    int rc = lookup(s, ref, key, klen, &sl, &v, 0);
    if (rc == HZSHM__RETRY && (rc = torn(sl, attempt)) == HZSHM__RETRY) continue;
    if (rc != 0 && rc != HZSHM_ENOTFOUND) return rc;
    size_t n = v.vlen; /* the checked length (seen_t) */
    if (!seen_ok(&v)) {
      hzshm__shm_rs_exit(s, sl);
      if ((rc = torn(sl, attempt)) == HZSHM__RETRY) continue;
      return rc;
    }
    if (rc == HZSHM_ENOTFOUND) return finish(s, ref, sl, rc);
    if (atomic_load_explicit(&s->dir[ref->idx].gen, memory_order_acquire) != ref->gen) { /* as in finish() */
      hzshm__shm_rs_exit(s, sl);
      return HZSHM_ESESSION;
    }
    if (tls_nviews == HZSHM__VIEWS_MAX) { /* nested too deep to re-check at release: not viewable */
      hzshm__shm_rs_exit(s, sl);
      count(&sl->misses);
      return HZSHM_EMISS;
    }
    tls_views[tls_nviews].id = s->id;
    tls_views[tls_nviews++].v = v;
    count(&sl->hits);
    *val = (const char *)(v.e + 1) + klen;
    if (vlen) *vlen = n;
    if (vflags) *vflags = v.vflags;
    return 0; /* still inside the section until r_view_end */
  }
}

int hzshm__shm_r_view_end(hzshm__shm_t *s) {
  if (!s) return HZSHM_EINVAL;
  if (s->forked) return HZSHM_ECLOSED;
  int i = tls_nviews;
  while (i > 0 && tls_views[i - 1].id != s->id) i--;
  int rc = HZSHM_EINVAL; /* no open view of this handle */
  if (i > 0) {
    rc = seen_ok(&tls_views[i - 1].v) ? 0 : HZSHM_ECHANGED;
    for (; i < tls_nviews; i++) tls_views[i - 1] = tls_views[i];
    tls_nviews--;
  }
  hzshm__shm_slot_t *sl = hzshm__shm_slot_get(s);
  if (sl) {
    if (rc == HZSHM_ECHANGED) count(&sl->torn);
    hzshm__shm_rs_exit(s, sl);
  }
  return rc;
}
