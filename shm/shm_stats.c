/* shm_stats.c - heartbeat, statistics, agent counters, the socket path.
 *
 * Ordering: all words here are statistics or liveness hints; they publish no
 * other data, so relaxed atomics suffice (each access says so). The socket
 * path is the exception: several words that must be read consistently, so
 * it is written under the seqlock of shm_seq.h (the proof is there) on
 * socket_seq, an odd/even counter (odd while changing).
 */
#include "shm_int.h"
#include "shm_seq.h"

void hzshm__shm_w_heartbeat(hzshm__shm_t *s, int state) {
  if (!s || !s->w) return;
  /* State first, then the heartbeat, both release; they pair with the
   * acquire loads in hzshm__shm_r_check (heartbeat first, then state):
   * - a reader that sees this heartbeat also sees this state (or a later
   *   one), so a fresh heartbeat never comes with a dead writer's SERVING: a
   *   restarted agent's first heartbeat says "not serving" until it marked
   *   its partitions stale (issue 11, hole 3; storing the heartbeat first let
   *   about one read in 10 million through);
   * - a reader that sees SERVING sees every write made before it was
   *   published (the restarted agent's stale marks). */
  atomic_store_explicit(&s->hdr->state, (uint32_t)state, memory_order_release);
  atomic_store_explicit(&s->hdr->heartbeat_ns, hzshm__shm_now_coarse(), memory_order_release);
}

void hzshm__shm_w_set_poison(hzshm__shm_t *s, int on) {
  if (s && s->w) s->w->poison = on;
}


int hzshm__shm_stats(hzshm__shm_t *s, hzshm__shm_stats_t *st) {
  if (!s || !st) return HZSHM_EINVAL;
  memset(st, 0, sizeof *st);
  for (uint32_t i = 0; i < s->nslots; i++) {
    hzshm__shm_slot_t *sl = &s->slots[i];
    /* relaxed: monotonic counters, an approximate sum is the contract */
    st->hits += atomic_load_explicit(&sl->hits, memory_order_relaxed);
    st->misses += atomic_load_explicit(&sl->misses, memory_order_relaxed);
    st->torn_reads += atomic_load_explicit(&sl->torn, memory_order_relaxed);
    if (atomic_load_explicit(&sl->owner_pid, memory_order_acquire) != 0) st->readers++; /* pairs with claim */
  }
  hzshm__shm_hdr_t *h = s->hdr;
  /* relaxed: statistics */
  st->entries = atomic_load_explicit(&h->entries, memory_order_relaxed);
  st->sessions = atomic_load_explicit(&h->sessions, memory_order_relaxed);
  st->memory_used = atomic_load_explicit(&h->memory_used, memory_order_relaxed);
  st->memory_limit = s->arena_end - s->arena_off;
  st->evictions = atomic_load_explicit(&h->evictions, memory_order_relaxed);
  st->expirations = atomic_load_explicit(&h->expirations, memory_order_relaxed);
  st->retired_pending = atomic_load_explicit(&h->retired_pending, memory_order_relaxed);
  st->reaped_readers = (uint32_t)atomic_load_explicit(&h->reaped, memory_order_relaxed);
  /* acquire: pairs with the release store of writer_pid in hzshm__shm_w_open,
   * made after its "not serving": a new writer's pid never comes with its
   * dead predecessor's SERVING (the state is loaded after it). */
  st->writer_pid = (int32_t)atomic_load_explicit(&h->writer_pid, memory_order_acquire);
  st->state = (int32_t)atomic_load_explicit(&h->state, memory_order_relaxed);
  uint64_t hb = atomic_load_explicit(&h->heartbeat_ns, memory_order_relaxed), now = hzshm__shm_now_coarse();
  st->heartbeat_age_ns = now > hb ? now - hb : 0;
  st->writer_generation = atomic_load_explicit(&h->writer_gen, memory_order_relaxed);
  st->stale_after_ns = h->stale_after_ns; /* geometry: fixed when the segment was made */
  st->chain_refused = atomic_load_explicit(&h->chain_refused, memory_order_relaxed);
  st->chain_cut = atomic_load_explicit(&h->chain_cut, memory_order_relaxed);
  st->slot_busy = atomic_load_explicit(&s->slot_busy, memory_order_relaxed); /* statistic */
  st->slot_claim_failures = atomic_load_explicit(&s->claim_failures, memory_order_relaxed); /* statistic */
  /* relaxed: statistics of this writer handle (written by its scans) */
  st->prd_scans_incomplete = atomic_load_explicit(&s->prd_incomplete, memory_order_relaxed);
  st->prd_refused = atomic_load_explicit(&s->prd_refused, memory_order_relaxed);
  st->prd_complete = atomic_load_explicit(&s->prd_complete, memory_order_relaxed);
  return 0;
}

void hzshm__shm_w_agent_counter(hzshm__shm_t *s, unsigned idx, uint64_t v) {
  if (!s || !s->w || idx >= HZSHM_SHM_AGENT_COUNTERS) return;
  atomic_store_explicit(&s->hdr->agent[idx], v, memory_order_relaxed); /* statistic */
}

uint64_t hzshm__shm_agent_counter(hzshm__shm_t *s, unsigned idx) {
  if (!s || idx >= HZSHM_SHM_AGENT_COUNTERS) return 0;
  return atomic_load_explicit(&s->hdr->agent[idx], memory_order_relaxed); /* statistic */
}

int hzshm__shm_w_set_socket(hzshm__shm_t *s, const char *path) {
  if (!s || !s->w || !path) return HZSHM_EINVAL;
  size_t n = strnlen(path, HZSHM__SOCKET_MAX); /* never reads past the limit */
  if (n == 0 || n >= HZSHM__SOCKET_MAX) return HZSHM_EINVAL;
  hzshm__shm_hdr_t *h = s->hdr;
  uint64_t done = hzshm__seq_odd_begin(&h->socket_seq); /* seqlock section (shm_seq.h), read by hzshm__shm_socket */
  hzshm__seq_put_bytes(h->socket, 16, path, n);
  hzshm__seq_write_end(&h->socket_seq, done);
  return 0;
}

int hzshm__shm_socket(hzshm__shm_t *s, char *buf, size_t cap) {
  if (!s || !buf || cap == 0) return HZSHM_EINVAL;
  hzshm__shm_hdr_t *h = s->hdr;
  char tmp[128];
  for (int tries = 0; tries < 1000; tries++) {
    uint64_t s1 = hzshm__seq_read_begin(&h->socket_seq); /* seqlock reader (shm_seq.h) of set_socket's section */
    if (s1 & 1) continue;
    for (size_t w = 0; w < 16; w++) {
      uint64_t word = hzshm__seq_get64(&h->socket[w]);
      memcpy(tmp + w * 8, &word, 8);
    }
    if (hzshm__seq_read_retry(&h->socket_seq, s1)) continue;
    tmp[sizeof tmp - 1] = 0;
    size_t n = strnlen(tmp, HZSHM__SOCKET_MAX);
    if (n == 0 || n >= HZSHM__SOCKET_MAX) return HZSHM_EMISS;
    if (n + 1 > cap) return HZSHM_EBUFSIZE;
    memcpy(buf, tmp, n + 1);
    return 0;
  }
  return HZSHM_EBUSY;
}
