/* shm_seq.h - the one sequence lock (seqlock) of the project: the session
 * directory records (shm_session.c / shm_read.c), the agent's socket path in
 * the header (shm_stats.c) and libhzshm's cached session reference
 * (src/lib/store.c) all use these functions and this proof.
 *
 * A section is a set of data words guarded by one sequence word `seq`.
 *
 *   writer                                  reader
 *   write_begin(seq, busy)   relaxed        s1 = read_begin(seq)    acquire
 *   put(data_i, v_i)         release        if s1 is busy: give up / retry
 *   write_end(seq, done)     release        d_i = get(data_i)       acquire
 *                                           read_retry(seq, s1)     relaxed: 1 = torn, retry
 *
 * `busy` is a value readers recognise as "being written" (odd for a counter,
 * 0 for a directory record, whose gen is both its version and its identity);
 * `done` is a value never stored in that word before (a counter's next even
 * value, a fresh generation). Every data word is an atomic, stored with
 * release and loaded with acquire: no fences. This is the fence-free variant
 * of H.-J. Boehm, "Can Seqlocks Get Along With Programming Language Memory
 * Models?" (MSPC 2012, section 4); TSan models it exactly (it does not model
 * fences, GCC warns with -Wtsan), and on x86-64 an acquire load is a plain
 * load (arm64: LDAR, or LDAPR with +rcpc), so there the reader costs what the
 * relaxed+fence one did.
 *
 * Why a reader that passes read_retry saw one section's words, all of them:
 *   (a) Nothing older: s1 was loaded with acquire. If it read the `done`
 *       store of section W (release), every put of W happens-before the
 *       reader's gets, so each get returns W's value or a newer one.
 *   (b) Nothing newer: if a get returns a value put by a later section W'
 *       (release store, acquire load: they synchronise), then W''s
 *       write_begin, sequenced before that put, happens-before the reader's
 *       read_retry load, which therefore returns W''s busy value or a later
 *       one in seq's modification order (coherence), never s1: busy values
 *       are refused by the reader and `done` values are never repeated. So
 *       read_retry reports the tear.
 *   The release on each put is what orders write_begin before it (a relaxed
 *   put could be seen before the busy mark); the acquire on each get is what
 *   keeps read_retry's load after it (a relaxed get could be satisfied
 *   after the re-check). The relaxed write_begin store needs nothing more:
 *   the puts that follow carry it.
 *
 * Writers: one at a time. A single-writer word (the directory, the socket
 * path: the agent's writer thread) uses write_begin; where any thread may
 * publish (libhzshm's cache), try_write_begin is a try-lock on an odd/even
 * counter: its CAS is acquire on success, so a writer that takes the word
 * after an earlier writer's write_end (release) is ordered after that
 * writer's puts (each data word's modification order follows the sections).
 * A store to seq outside a section must keep the rule too: busy, or a value
 * never stored before (the directory's drop stores 0 and its keep a fresh
 * generation, shm_session.c).
 * A writer killed inside a section leaves seq busy. odd_begin starts from
 * that odd value, so the next section ends at an even value never stored
 * before (a readable path again); a directory record left at gen 0 is
 * handled by the restart walk (dir_relink).
 */
#ifndef HZSHM_SHM_SEQ_H
#define HZSHM_SHM_SEQ_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- writer ---- */
static inline void hzshm__seq_write_begin(_Atomic uint64_t *seq, uint64_t busy) {
  atomic_store_explicit(seq, busy, memory_order_relaxed); /* carried by the release puts (see top) */
}
/* write_begin for an odd/even counter: returns the `done` value for write_end. */
static inline uint64_t hzshm__seq_odd_begin(_Atomic uint64_t *seq) {
  uint64_t busy = atomic_load_explicit(seq, memory_order_relaxed) | 1u; /* the writer's own word */
  hzshm__seq_write_begin(seq, busy);
  return busy + 1;
}
/* Any-thread writer on an odd/even counter: 1 and *done set if this thread
 * took the section, 0 if another writer holds it (the caller skips). */
static inline int hzshm__seq_try_write_begin(_Atomic uint64_t *seq, uint64_t *done) {
  uint64_t s0 = atomic_load_explicit(seq, memory_order_relaxed); /* the CAS decides */
  if (s0 & 1u) return 0;
  /* acquire on success: pairs with the previous writer's write_end (see top) */
  if (!atomic_compare_exchange_strong_explicit(seq, &s0, s0 + 1, memory_order_acquire, memory_order_relaxed))
    return 0;
  *done = s0 + 2;
  return 1;
}
static inline void hzshm__seq_write_end(_Atomic uint64_t *seq, uint64_t done) {
  atomic_store_explicit(seq, done, memory_order_release); /* pairs with read_begin's acquire */
}
/* Data words: release, pairs with get's acquire (see top). */
static inline void hzshm__seq_put64(_Atomic uint64_t *w, uint64_t v) { atomic_store_explicit(w, v, memory_order_release); }
static inline void hzshm__seq_put32(_Atomic uint32_t *w, uint32_t v) { atomic_store_explicit(w, v, memory_order_release); }
/* len bytes of src into nwords words, NUL-padded (len <= 8 * nwords). */
static inline void hzshm__seq_put_bytes(_Atomic uint64_t *words, size_t nwords, const char *src, size_t len) {
  for (size_t i = 0; i < nwords; i++) {
    uint64_t word = 0;
    if (i * 8 < len) memcpy(&word, src + i * 8, len - i * 8 < 8 ? len - i * 8 : 8);
    hzshm__seq_put64(&words[i], word);
  }
}

/* ---- reader ---- */
static inline uint64_t hzshm__seq_read_begin(_Atomic uint64_t *seq) {
  return atomic_load_explicit(seq, memory_order_acquire); /* pairs with write_end's release */
}
/* Data words: acquire, pairs with put's release and keeps read_retry after it. */
static inline uint64_t hzshm__seq_get64(_Atomic uint64_t *w) { return atomic_load_explicit(w, memory_order_acquire); }
static inline uint32_t hzshm__seq_get32(_Atomic uint32_t *w) { return atomic_load_explicit(w, memory_order_acquire); }
/* 1 if the section changed since read_begin returned s1 (what was read is torn). */
static inline int hzshm__seq_read_retry(_Atomic uint64_t *seq, uint64_t s1) {
  return atomic_load_explicit(seq, memory_order_relaxed) != s1; /* ordered after the gets by their acquire */
}

#endif
