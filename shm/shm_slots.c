/* shm_slots.c - reader slots and the cross-process read-side critical section
 * (our own "RCU" across processes).
 *
 * Why not liburcu: every liburcu flavour keeps its reader registry (the list
 * of struct rcu_reader) in the heap of one process and waits for threads it
 * registered itself, with futexes/signals addressed to those threads. Readers
 * here live in other processes, can be SIGKILLed at any instruction, and the
 * writer must never wait for them. So the registry is an array of slots in
 * the shared reader file, liveness is an OFD byte lock per slot, and the
 * writer only ever *polls* (hzshm__shm_min_epoch) - it never blocks.
 *
 * Ordering and progress guarantees
 *   - Read side (rs_enter/rs_exit): wait-free, no syscall, no shared write
 *     except the thread's own slot line.
 *       rs_enter: e = hdr.epoch; slot.epoch = e; FENCE; ...lookups...
 *       rs_exit:  slot.epoch = 0 (release)
 *     FENCE is atomic_thread_fence(seq_cst) (fence mode) or a compiler barrier
 *     when the writer issues membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)
 *     before it scans slots (asymmetric mode): the membarrier forces a full
 *     barrier on every CPU running a registered process, which upgrades the
 *     compiler barrier to a real one exactly when it matters.
 *   - Writer (shm_alloc.c): unlink (release stores) ... epoch += 1 ... FENCE
 *     (seq_cst fence, plus membarrier when available) ... scan slots with
 *     acquire loads. Store-buffering argument: either the writer's scan sees
 *     the reader's slot.epoch, or the reader's chain loads (after its fence)
 *     see the unlink; so a chunk retired at epoch R is freed only when every
 *     slot is 0 or > R, i.e. no reader can still hold a reference to it.
 *   - The release store of slot.epoch = 0 pairs with the writer's acquire
 *     load in hzshm__shm_min_epoch(): everything the reader read from an
 *     entry happens-before the writer reuses (and poisons) its memory.
 *   - Slot claim: F_OFD_SETLK on byte idx of the reader file, then the owner
 *     fields. Reaping: the writer's own F_OFD_SETLK on that byte succeeds only
 *     if no live open file description holds it, i.e. the owner is dead (the
 *     kernel drops OFD locks when the last fd of the description closes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm_int.h"

/* One-entry per-thread cache: handle id -> slot. Handle ids are never
 * reused in a process, so a stale entry of a closed handle never matches. */
#if defined(__SANITIZE_THREAD__)
_Atomic uint64_t hzshm__tsan_fence_word; /* see HZSHM__FENCE_SEQ_CST */
#endif
__thread uint64_t hzshm__tls_id;              /* see hzshm__shm_slot_get in shm_int.h */
__thread hzshm__shm_slot_t *hzshm__tls_slot;

static _Atomic uint64_t slot_frees; /* slots released by this process, any handle (see slot_get_slow) */

static int owned_by_us(hzshm__shm_t *s, uint32_t idx) {
  for (hzshm__tslot_t *t = s->tslots; t; t = t->next)
    if (t->idx == idx) return 1;
  return 0;
}

static void slot_release_locked(hzshm__shm_t *s, hzshm__tslot_t *t) {
  hzshm__shm_slot_t *sl = &s->slots[t->idx];
  atomic_store_explicit(&sl->nest, 0, memory_order_relaxed); /* owner-private */
  /* release: pairs with the acquire loads in hzshm__shm_min_epoch() */
  atomic_store_explicit(&sl->epoch, 0, memory_order_release);
  atomic_store_explicit(&sl->owner_pid, 0, memory_order_release); /* pairs with acquire in stats */
  hzshm__shm_lock_byte(s->rfd, F_UNLCK, t->idx);
  atomic_fetch_add_explicit(&slot_frees, 1, memory_order_relaxed); /* hint for slot_get_slow */
  hzshm__tslot_t **pp = &s->tslots;
  while (*pp && *pp != t) pp = &(*pp)->next;
  if (*pp) *pp = t->next;
  free(t);
}

/* pthread key destructor: the thread exits. */
void hzshm__shm_tslot_dtor(void *p) {
  hzshm__tslot_t *t = p;
  hzshm__shm_t *s = t->s;
  pthread_mutex_lock(&s->mu);
  slot_release_locked(s, t);
  pthread_mutex_unlock(&s->mu);
}

static hzshm__shm_slot_t *slot_claim(hzshm__shm_t *s) {
  hzshm__shm_slot_t *res = NULL;
  /* A private reader file protects nothing until the writer follows it
   * (shm_private.c). acquire: pairs with the release increment of its scan. */
  if (s->prd_need && atomic_load_explicit(&s->hdr->reg_scans, memory_order_acquire) < s->prd_need) return NULL;
  pthread_mutex_lock(&s->mu);
  /* Shared file: spread the processes over it. A private file is ours
   * alone: lowest first, so the writer reads only its first chunk(s). */
  uint32_t start = s->prd_path ? 0 : (uint32_t)(((uint64_t)getpid() * 2654435761u + (uintptr_t)&hzshm__tls_id) % s->nslots);
  for (int pass = 0; pass < 2 && !res; pass++) {
    for (uint32_t k = 0; k < s->nslots; k++) {
      uint32_t idx = (start + k) % s->nslots;
      hzshm__shm_slot_t *sl = &s->slots[idx];
      /* relaxed: a hint only; the lock decides */
      if (pass == 0 && atomic_load_explicit(&sl->owner_pid, memory_order_relaxed) != 0) continue;
      if (owned_by_us(s, idx)) continue; /* our own OFD: the lock would not conflict */
      if (hzshm__shm_lock_byte(s->rfd, F_WRLCK, idx) != 0) continue;
      /* The scans alone prove nothing: a scan may have skipped our file
       * (caps), or a restarted writer not have followed it yet. Only the
       * current writer's confirmation lock counts, checked with the slot
       * byte already held: a writer scan that found no slot lock held
       * (file idle, not followed) precedes our lock in the kernel's lock
       * order, so this check sees its pid and no lock of it (shm_private.c). */
      hzshm__tslot_t *t = s->prd_path && !hzshm__shm_prd_confirmed(s) ? NULL : malloc(sizeof *t);
      if (!t) {
        hzshm__shm_lock_byte(s->rfd, F_UNLCK, idx);
        pass = 2; /* unconfirmed (or out of memory): no slot now */
        break;
      }
      /* We hold the byte: any previous owner is dead. hits/misses are kept:
       * the counters are monotonic across owners, so dead readers' counts
       * stay in the totals without folding. */
      atomic_store_explicit(&sl->nest, 0, memory_order_relaxed);
      atomic_store_explicit(&sl->epoch, 0, memory_order_release); /* pairs with min_epoch */
      atomic_store_explicit(&sl->owner_start, hzshm__shm_proc_start(), memory_order_relaxed);
      atomic_store_explicit(&sl->mode, s->fence_mode ? 0u : 1u, memory_order_relaxed);
      atomic_store_explicit(&sl->owner_pid, (uint32_t)getpid(), memory_order_release); /* pairs with stats */
      t->s = s;
      t->idx = idx;
      t->next = s->tslots;
      s->tslots = t;
      if (pthread_setspecific(s->key, t) != 0) {
        slot_release_locked(s, t);
        break;
      }
      res = sl;
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return res;
}

/* Fast failure when every slot is taken: after a failed claim, a thread
 * without a slot does not rescan (one fcntl per slot under s->mu) until
 * HZSHM__CLAIM_RETRY_NS passed or a slot was released in this process since
 * (any handle: two handles of one segment share its slots).
 * Both words are hints (relaxed): a stale view only makes one thread claim
 * once more, or fail once more, than needed. Slots freed by other processes
 * or reaped by the writer are found at the next retry. */
#define HZSHM__CLAIM_RETRY_NS 20000000ull /* 20 ms */

hzshm__shm_slot_t *hzshm__shm_slot_get_slow(hzshm__shm_t *s) {
  hzshm__tslot_t *t = pthread_getspecific(s->key);
  hzshm__shm_slot_t *sl = NULL;
  if (t) {
    sl = &s->slots[t->idx];
  } else {
    uint64_t now = hzshm__shm_now_coarse();
    uint64_t frees = atomic_load_explicit(&slot_frees, memory_order_relaxed); /* hint, see above */
    if (now < atomic_load_explicit(&s->claim_retry_ns, memory_order_relaxed) &&
        frees == atomic_load_explicit(&s->claim_fail_frees, memory_order_relaxed)) {
      atomic_fetch_add_explicit(&s->slot_busy, 1, memory_order_relaxed); /* statistic */
      return NULL;
    }
    sl = slot_claim(s);
    if (!sl) {
      atomic_fetch_add_explicit(&s->claim_failures, 1, memory_order_relaxed); /* statistic */
      atomic_store_explicit(&s->claim_fail_frees, frees, memory_order_relaxed);       /* hint */
      atomic_store_explicit(&s->claim_retry_ns, now + HZSHM__CLAIM_RETRY_NS, memory_order_relaxed); /* hint */
      atomic_fetch_add_explicit(&s->slot_busy, 1, memory_order_relaxed); /* statistic */
      return NULL;
    }
  }
  hzshm__tls_id = s->id;
  hzshm__tls_slot = sl;
  return sl;
}

void hzshm__shm_slots_release_all(hzshm__shm_t *s) {
  pthread_mutex_lock(&s->mu);
  while (s->tslots) slot_release_locked(s, s->tslots);
  pthread_mutex_unlock(&s->mu);
  if (hzshm__tls_id == s->id) hzshm__tls_id = 0;
}

/* rs_enter / rs_exit: static inline in shm_int.h (they are on every lookup). */

/* Clear the writer's membarrier announcement (it cannot membarrier, or it
 * stopped working). Readers fence every section they enter after they see
 * the cleared flag; a section that loaded the flag just before may still run
 * unfenced, so nothing is freed for HZSHM__MB_SWITCH_GRACE_NS after the
 * switch: the flag store is drained by the writer's fence at once, and a
 * reader's stale flag load and its epoch store lie within one section entry. */
#define HZSHM__MB_SWITCH_GRACE_NS 20000000ull /* 20 ms (coarse clock: >= 16 ms) */
void hzshm__shm_mb_disable(hzshm__shm_t *s) {
  s->w->membarrier = 0;
  /* relaxed: readers re-read it per section; the fence in min_epoch drains it */
  uint32_t f = atomic_fetch_and_explicit(&s->hdr->flags, ~HZSHM__F_MEMBARRIER, memory_order_relaxed);
  if (f & HZSHM__F_MEMBARRIER) s->w->mb_off_ns = hzshm__shm_now_coarse() | 1;
}

uint64_t hzshm__shm_min_epoch(hzshm__shm_t *s) {
  /* Pairs with the readers' fence (or compiler barrier) in rs_enter. */
  HZSHM__FENCE_SEQ_CST();
  if (s->w && s->w->membarrier && syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) != 0)
    hzshm__shm_mb_disable(s); /* unfenced readers are not ordered by this scan */
  if (s->w && s->w->mb_off_ns) {
    if (hzshm__shm_now_coarse() - s->w->mb_off_ns < HZSHM__MB_SWITCH_GRACE_NS) return 0; /* free nothing yet */
    s->w->mb_off_ns = 0;
  }
  uint64_t min = UINT64_MAX;
  for (uint32_t i = 0; i < s->nslots; i++) {
    uint64_t e = atomic_load_explicit(&s->slots[i].epoch, memory_order_acquire); /* pairs with rs_exit */
    if (e && e < min) min = e;
  }
  return hzshm__shm_prd_min(s, min); /* readers of other uids (shm_private.c) */
}

int hzshm__shm_slot_probe(hzshm__shm_t *s, uint32_t idx) {
  int rc = hzshm__shm_lock_byte(s->probe_fd, F_WRLCK, idx);
  if (rc == -EAGAIN || rc == -EACCES) return 1;
  if (rc < 0) return rc;
  hzshm__shm_lock_byte(s->probe_fd, F_UNLCK, idx);
  return 0;
}

uint32_t hzshm__shm_reap(hzshm__shm_t *s) {
  uint32_t n = 0;
  if (s->probe_fd < 0) return 0;
  hzshm__shm_prd_scan(s); /* private reader files: new ones followed, dead ones dropped */
  for (uint32_t i = 0; i < s->nslots; i++) {
    hzshm__shm_slot_t *sl = &s->slots[i];
    /* relaxed: a hint; the lock below decides */
    if (atomic_load_explicit(&sl->owner_pid, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&sl->epoch, memory_order_relaxed) == 0)
      continue;
    if (hzshm__shm_lock_byte(s->probe_fd, F_WRLCK, i) != 0) continue; /* live owner */
    /* Owner dead (or released between our load and the lock). We hold the
     * byte, so nobody can claim the slot while we clear it. */
    if (atomic_load_explicit(&sl->owner_pid, memory_order_acquire) != 0) n++; /* pairs with claim */
    atomic_store_explicit(&sl->nest, 0, memory_order_relaxed);
    atomic_store_explicit(&sl->epoch, 0, memory_order_release); /* min_epoch may now pass it */
    atomic_store_explicit(&sl->owner_pid, 0, memory_order_release); /* pairs with claim's relaxed hint */
    hzshm__shm_lock_byte(s->probe_fd, F_UNLCK, i);
  }
  if (n) atomic_fetch_add_explicit(&s->hdr->reaped, n, memory_order_relaxed); /* statistic */
  return n;
}
