/* shm_session.c - the writer's side of the session directory.
 *
 * Single writer. Ordering (readers: shm_read.c, dir_match/dir_find):
 *   - dir_write(): a section of the seqlock in shm_seq.h (the proof is
 *     there) on the record's gen, which is both its version and its
 *     identity: busy = 0 (a reader skips the record), the name words,
 *     length and hash put, done = a fresh generation (new_gen never repeats
 *     one, as the proof needs).
 *   - dir_link(): rec.next is stored before the head is swung with release,
 *     so a reader that loads the new head (acquire) sees the record's fields.
 *   - A dropped record is unlinked (release store of its predecessor's link)
 *     and retired with the current epoch; it is reused only after every
 *     reader that might stand on it has left (shm_alloc.c, reclaim). Its
 *     entries keep the old generation and turn invisible at the single gen
 *     store; w_maintain sweeps them later.
 */
#include "shm_int.h"
#include "shm_seq.h"

static uint64_t new_gen(hzshm__shm_t *s) {
  /* relaxed: only the writer touches next_sgen; it is persisted in the
   * segment so that generations stay unique across writer restarts */
  uint64_t g = atomic_fetch_add_explicit(&s->hdr->next_sgen, 1, memory_order_relaxed);
  return g ? g : atomic_fetch_add_explicit(&s->hdr->next_sgen, 1, memory_order_relaxed);
}

static void dir_write(hzshm__shm_t *s, uint32_t idx, const char *sid, size_t len, uint64_t h, uint64_t gen) {
  hzshm__shm_dirent_t *r = &s->dir[idx];
  hzshm__seq_write_begin(&r->gen, 0); /* seqlock section (shm_seq.h), read by dir_match */
  hzshm__seq_put_bytes(r->name, 32, sid, len);
  hzshm__seq_put32(&r->namelen, (uint32_t)len);
  hzshm__seq_put64(&r->name_hash, h);
  s->w->dirent_entries[idx] = 0; /* the writer's own statistic */
  hzshm__seq_write_end(&r->gen, gen);
}

int hzshm__shm_w_session(hzshm__shm_t *s, const char *sid, size_t sidlen, hzshm__sref_t *ref) {
  if (!s || !s->w || !ref || (!sid && sidlen)) return HZSHM_EINVAL;
  if (sidlen == 0) return HZSHM_EEMPTY;
  if (sidlen > HZSHM_SESSION_MAX) return HZSHM_ETOOBIG;
  uint64_t h = hzshm__shm_key_hash(s, sid, sidlen, HZSHM__SID_SEED);
  uint32_t idx;
  uint64_t gen;
  if (hzshm__shm_dir_find(s, sid, sidlen, h, &idx, &gen) == 0) {
    ref->idx = idx;
    ref->gen = gen;
    return 0;
  }
  hzshm__w_t *w = s->w;
  if (!w->ndirfree) hzshm__shm_reclaim(s, 1);
  if (!w->ndirfree) {
    hzshm__shm_reap(s);
    hzshm__shm_reclaim(s, 0);
  }
  if (!w->ndirfree) return HZSHM_ESEGFULL;
  idx = w->dirfree[--w->ndirfree];
  gen = new_gen(s);
  dir_write(s, idx, sid, sidlen, h, gen);
  _Atomic uint32_t *head = &s->dirix[h & s->dirix_mask];
  /* relaxed: the writer owns the links; the release store below publishes */
  atomic_store_explicit(&s->dir[idx].next, atomic_load_explicit(head, memory_order_relaxed), memory_order_relaxed);
  atomic_store_explicit(head, idx + 1, memory_order_release); /* pairs with dir_find's acquire */
  atomic_fetch_add_explicit(&s->hdr->sessions, 1, memory_order_relaxed); /* statistic */
  ref->idx = idx;
  ref->gen = gen;
  return 0;
}

static int ref_ok(hzshm__shm_t *s, const hzshm__sref_t *ref) {
  if (!ref || ref->idx >= s->dir_count || ref->gen == 0) return HZSHM_EBADSESSION;
  /* relaxed: the writer reads its own store */
  if (atomic_load_explicit(&s->dir[ref->idx].gen, memory_order_relaxed) != ref->gen) return HZSHM_ESESSION;
  return 0;
}
int hzshm__shm_w_ref_ok(hzshm__shm_t *s, const hzshm__sref_t *ref) { return ref_ok(s, ref); }

static void dir_unlink(hzshm__shm_t *s, uint32_t idx) {
  hzshm__shm_dirent_t *r = &s->dir[idx];
  uint64_t h = atomic_load_explicit(&r->name_hash, memory_order_relaxed); /* writer's own data */
  _Atomic uint32_t *link = &s->dirix[h & s->dirix_mask];
  for (uint32_t steps = 0; steps <= s->dir_count; steps++) {
    uint32_t v = atomic_load_explicit(link, memory_order_relaxed);
    if (!v || v - 1 >= s->dir_count) return;
    if (v - 1 == idx) {
      /* release: pairs with dir_find's acquire of this link */
      atomic_store_explicit(link, atomic_load_explicit(&r->next, memory_order_relaxed), memory_order_release);
      return;
    }
    link = &s->dir[v - 1].next;
  }
}

int hzshm__shm_w_session_drop(hzshm__shm_t *s, const hzshm__sref_t *ref, int keep, hzshm__sref_t *newref) {
  if (!s || !s->w) return HZSHM_EINVAL;
  int rc = ref_ok(s, ref);
  if (rc) return rc;
  hzshm__shm_dirent_t *r = &s->dir[ref->idx];
  uint32_t idx = ref->idx;
  if (keep) {
    uint64_t g = new_gen(s);
    /* one release store hides every entry of the old generation; pairs with
     * the acquire in lookup() */
    atomic_store_explicit(&r->gen, g, memory_order_release);
    s->w->dirent_entries[idx] = 0; /* writer's statistic */
    if (newref) *newref = (hzshm__sref_t){idx, g};
    return 0;
  }
  atomic_store_explicit(&r->gen, 0, memory_order_release); /* pairs with lookup()/dir_match() */
  dir_unlink(s, idx);
  hzshm__shm_retire_dir(s, idx);
  atomic_fetch_sub_explicit(&s->hdr->sessions, 1, memory_order_relaxed); /* statistic */
  if (newref) *newref = (hzshm__sref_t){idx, 0};
  return 0;
}

uint64_t hzshm__shm_w_session_entries(hzshm__shm_t *s, const hzshm__sref_t *ref) {
  if (!s || ref_ok(s, ref) != 0) return 0;
  return s->w ? s->w->dirent_entries[ref->idx] : 0; /* the writer's own count */
}

/* Drop every session (clear_all, rebuild). */
void hzshm__shm_dir_reset(hzshm__shm_t *s) {
  hzshm__w_t *w = s->w;
  for (uint32_t i = 0; i <= s->dirix_mask; i++) atomic_store_explicit(&s->dirix[i], 0, memory_order_release);
  w->ndirfree = 0;
  for (uint32_t i = s->dir_count; i-- > 0;) {
    if (atomic_load_explicit(&s->dir[i].gen, memory_order_relaxed) != 0) {
      atomic_store_explicit(&s->dir[i].gen, 0, memory_order_release); /* pairs with lookup() */
      hzshm__shm_retire_dir(s, i); /* a reader may still be comparing its name */
    } else if (!w->dirretired[i]) { /* a retired slot is freed by reclaim, once */
      w->dirfree[w->ndirfree++] = i;
    }
  }
  atomic_store_explicit(&s->hdr->sessions, 0, memory_order_relaxed); /* statistic */
}

/* Restart (hzshm__shm_w_rebuild): the chains a dead writer left. A record
 * reached twice (a loop, or two chains sharing a tail), an index out of
 * range or a record in the chain of another hash is corruption. A record
 * with gen 0 is a drop killed between its gen store and its unlink: it is
 * unlinked now with the same release store the drop would have made, and
 * the caller retires it (a reader may still be comparing its name). */
int hzshm__shm_dir_relink(hzshm__shm_t *s, uint8_t *linked) {
  for (uint32_t b = 0; b <= s->dirix_mask; b++) {
    _Atomic uint32_t *link = &s->dirix[b];
    for (;;) {
      uint32_t v = atomic_load_explicit(link, memory_order_relaxed); /* writer's own data */
      if (!v) break;
      if (v - 1 >= s->dir_count || linked[v - 1]) return HZSHM_ECORRUPT;
      hzshm__shm_dirent_t *r = &s->dir[v - 1];
      /* relaxed: the writer's own data (the dead writer's stores are visible: same file) */
      if ((atomic_load_explicit(&r->name_hash, memory_order_relaxed) & s->dirix_mask) != b) return HZSHM_ECORRUPT;
      if (atomic_load_explicit(&r->gen, memory_order_relaxed) == 0) {
        linked[v - 1] = HZSHM__DIR_UNLINKED;
        /* release: pairs with dir_find's acquire of this link, as in dir_unlink */
        atomic_store_explicit(link, atomic_load_explicit(&r->next, memory_order_relaxed), memory_order_release);
        continue;
      }
      linked[v - 1] = HZSHM__DIR_LINKED;
      link = &r->next;
    }
  }
  return 0;
}
