/* store.c - the Store operations of libhzshm: get/has from the segment,
 * misses and writes through the agent.
 *
 * Ordering and progress: a hit is hzshm__shm_r_get (lock-free, no syscall)
 * after reading the session's cached directory reference through a sequence
 * lock (wait-free for readers: a torn or in-progress read just re-resolves
 * the reference through hzshm__shm_r_session, itself lock-free). Everything
 * else is a blocking round trip to the agent (conn.c).
 */
#include <string.h>

#include "lib_int.h"
#include "utf8.h"

/* Reads the cached reference. 1 if valid (and resolved in segment handle m). */
/* Inline on the hit path; not under TSan, where GCC rejects the fence below
 * once it is forced inline (-Wtsan: TSan does not model fences; the seq
 * re-check is what TSan sees through the atomics). */
#if defined(__SANITIZE_THREAD__)
#define REF_LOAD_INLINE static
#else
#define REF_LOAD_INLINE static inline __attribute__((always_inline))
#endif
REF_LOAD_INLINE int ref_load(hzshm_session_t *s, hzshm__shm_t *m, hzshm__sref_t *ref) {
  /* Acquire: paired with the release store of seq in ref_store, so that if we
   * see its even value we also see the idx/gen stored before it. */
  unsigned s1 = atomic_load_explicit(&s->cache->seq, memory_order_acquire);
  if (s1 & 1u) return 0;
  /* Relaxed: validated by the seq re-check after the acquire fence below. */
  ref->idx = atomic_load_explicit(&s->cache->idx, memory_order_relaxed);
  ref->gen = atomic_load_explicit(&s->cache->gen, memory_order_relaxed);
  uintptr_t in = atomic_load_explicit(&s->cache->shm, memory_order_relaxed); /* validated by seq, as idx/gen */
  /* Acquire fence: paired with the release fence in ref_store; if we read any
   * idx/gen of a newer store, the seq load below sees its odd (or later) value. */
  atomic_thread_fence(memory_order_acquire);
  unsigned s2 = atomic_load_explicit(&s->cache->seq, memory_order_relaxed);
  return s1 == s2 && ref->gen != 0 && in == (uintptr_t)m; /* a reference of a replaced segment means nothing here */
}

static void ref_store(hzshm_session_t *s, hzshm__shm_t *m, const hzshm__sref_t *ref) {
  /* Relaxed load: the CAS below decides. */
  unsigned s0 = atomic_load_explicit(&s->cache->seq, memory_order_relaxed);
  if (s0 & 1u) return; /* another thread is publishing; ours is only a cache */
  /* Relaxed CAS: only one publisher at a time; ordering comes from the fence. */
  if (!atomic_compare_exchange_strong_explicit(&s->cache->seq, &s0, s0 + 1, memory_order_relaxed, memory_order_relaxed))
    return;
  /* Release fence: paired with the acquire fence in ref_load: the odd seq is
   * visible to any reader that sees the idx/gen stores below. */
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&s->cache->idx, ref->idx, memory_order_relaxed); /* published by seq */
  atomic_store_explicit(&s->cache->gen, ref->gen, memory_order_relaxed); /* published by seq */
  atomic_store_explicit(&s->cache->shm, (uintptr_t)m, memory_order_relaxed); /* published by seq */
  /* Release: paired with the acquire load of seq in ref_load. */
  atomic_store_explicit(&s->cache->seq, s0 + 2, memory_order_release);
}

static int ref_get(hzshm_session_t *s, hzshm__shm_t *m, hzshm__sref_t *ref, int fresh) {
  if (!fresh && ref_load(s, m, ref)) return 0;
  int rc = hzshm__shm_r_session(m, s->name, s->namelen, ref);
  if (rc == 0) ref_store(s, m, ref);
  return rc;
}

static int check_key(hzshm_session_t *s, const void *key, size_t klen) {
  if (s == NULL) return HZSHM_EINVAL;
  int rc = hzshm__lib_check(s->h);
  if (rc) return rc;
  if (klen == 0) return HZSHM_EEMPTY;
  if (key == NULL) return HZSHM_EINVAL;
  if (klen > HZSHM_KEY_MAX) return HZSHM_ETOOBIG;
  if (!hzshm__utf8_valid(key, klen)) return HZSHM_EINVAL;
  return 0;
}

/* Segment lookup with one re-resolve on a stale reference, and one retry in
 * a replaced segment (the agent restarted with a new file) when failing
 * closed. view != NULL asks for a zero-copy view instead of a copy. */
/* first_rc: the result of a first lookup in `first_m` already made (the hit
 * fast path of hzshm_get), or LOOKUP_NONE (*vflags then holds its type). */
#define LOOKUP_NONE 1
static int lookup_from(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap, const void **view,
                       size_t *vlen, uint32_t *vflags, int first_rc, hzshm__shm_t *first_m) {
  int rc = HZSHM_EMISS;
  for (int attempt = 0; attempt < 3; attempt++) {
    hzshm__shm_t *m = hzshm__lib_shm(s->h);
    hzshm__sref_t ref;
    if (attempt == 0 && first_rc != LOOKUP_NONE) {
      m = first_m;
      rc = first_rc;
    } else {
      rc = ref_get(s, m, &ref, attempt == 1);
      if (rc == 0) {
        if (view)
          rc = hzshm__shm_r_view_typed(m, &ref, key, klen, view, vlen, vflags);
        else
          rc = hzshm__shm_r_get_typed(m, &ref, key, klen, buf, cap, vlen, vflags);
      }
    }
    /* Failing closed (a session miss too: r_session does not look at the
     * state): has the agent replaced the segment? */
    if ((rc == HZSHM_ESTOPPED || rc == HZSHM_ESTALE || rc == HZSHM_EMISS) && attempt < 2) {
      int st = hzshm__shm_r_check(m);
      if ((st == HZSHM_ESTOPPED || st == HZSHM_ESTALE) && hzshm__lib_follow(s->h, m)) continue;
    }
    if (rc != HZSHM_ESESSION || attempt > 0) break;
  }
  return rc == HZSHM_ESESSION ? HZSHM_EMISS : rc;
}

static int lookup(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap, const void **view,
                  size_t *vlen, uint32_t *vflags) {
  return lookup_from(s, key, klen, buf, cap, view, vlen, vflags, LOOKUP_NONE, NULL);
}

static int goes_to_agent(int rc) { return rc == HZSHM_EMISS || rc == HZSHM_ESESSION || rc == HZSHM_EBUSY; }

static int32_t type_of_flags(uint32_t vflags) { return (vflags & HZSHM_SHM_STRING) ? HZSHM_TYPE_STRING : HZSHM_TYPE_BYTES; }
/* The agent's aux of a GET answered with a value: the type id (0 from an older agent: byte[]). */
static int32_t type_of_aux(int32_t aux) { return aux == HZSHM_TYPE_STRING ? HZSHM_TYPE_STRING : HZSHM_TYPE_BYTES; }

typedef struct {
  void *buf;
  size_t cap;
  size_t vlen;
  int32_t aux;
  int fits;
} get_sink_t;

static void get_sink(void *ud, int32_t status, int32_t aux, const void *val, size_t vlen) {
  get_sink_t *g = ud;
  g->aux = aux;
  g->vlen = vlen;
  g->fits = g->buf != NULL && vlen <= g->cap;
  if (status == 0 && g->fits && vlen) memcpy(g->buf, val, vlen);
}

static int agent_get(hzshm_session_t *s, uint8_t op, const void *key, size_t klen, get_sink_t *g) {
  hzshm__ipc_req_t req = {.sid = s->name, .sidlen = s->namelen, .key = key, .klen = klen};
  hzshm__shm_r_count_miss(hzshm__lib_shm(s->h));
  return hzshm__lib_conn_request(s->h, op, &req, get_sink, g);
}

/* Everything after a first segment lookup that did not settle the call
 * (first_rc, in first_m, its type first_vf), or from the start (first_rc = LOOKUP_NONE). */
__attribute__((noinline)) static int get_slow(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap,
                                              size_t *vlen, int32_t *type, int first_rc, hzshm__shm_t *first_m,
                                              size_t first_n, uint32_t first_vf) {
  int rc = first_rc == LOOKUP_NONE ? check_key(s, key, klen) : 0;
  if (rc) return rc;
  if (vlen == NULL || type == NULL || (buf == NULL && cap)) return HZSHM_EINVAL;
  size_t n = first_n;
  uint32_t vf = first_vf;
  rc = lookup_from(s, key, klen, buf ? buf : (void *)&n, buf ? cap : 0, NULL, &n, &vf, first_rc, first_m);
  int32_t t = type_of_flags(vf);
  if (goes_to_agent(rc)) {
    get_sink_t g = {.buf = buf, .cap = cap};
    rc = agent_get(s, HZSHM__OP_GET, key, klen, &g);
    n = g.vlen;
    t = type_of_aux(g.aux);
    if (rc == 0 && !g.fits) rc = HZSHM_EBUFSIZE;
    if (rc == HZSHM_ETYPE) n = (size_t)(uint32_t)(t = g.aux);
  }
  *vlen = n;
  if (rc == 0 || rc == HZSHM_EBUFSIZE || rc == HZSHM_ETYPE) *type = t;
  return rc;
}

/* The hit fast path: the argument checks of check_key() in one expression,
 * the cached session reference (ref_load), one segment lookup; every other
 * outcome continues in get_slow with that lookup's result (never a second
 * lookup: the segment counts hits and misses per lookup). */
static inline __attribute__((always_inline)) int get_fast(hzshm_session_t *s, const void *key, size_t klen, void *buf,
                                                          size_t cap, size_t *vlen, int32_t *type) {
  if (__builtin_expect(s != NULL && key != NULL && buf != NULL && vlen != NULL && type != NULL &&
                           klen - 1 < HZSHM_KEY_MAX && hzshm__lib_ok(s->h) && hzshm__utf8_valid(key, klen),
                       1)) {
    hzshm__shm_t *m = hzshm__lib_shm(s->h);
    hzshm__sref_t ref;
    if (ref_load(s, m, &ref)) {
      size_t n = 0;
      uint32_t vf = 0;
      int rc = hzshm__shm_r_get_typed(m, &ref, key, klen, buf, cap, &n, &vf);
      if (rc == 0 || rc == HZSHM_ENOTFOUND || rc == HZSHM_EBUFSIZE) { /* settled: as lookup_from + get_slow */
        *vlen = n;
        if (rc != HZSHM_ENOTFOUND) *type = type_of_flags(vf);
        return rc;
      }
      return get_slow(s, key, klen, buf, cap, vlen, type, rc, m, n, vf);
    }
  }
  return get_slow(s, key, klen, buf, cap, vlen, type, LOOKUP_NONE, NULL, 0, 0);
}

int hzshm_get_typed(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen,
                    int32_t *type) {
  return get_fast(s, key, klen, buf, cap, vlen, type);
}

int hzshm_get(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen) {
  int32_t type;
  return get_fast(s, key, klen, buf, cap, vlen, &type);
}

int hzshm_get_view_typed(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen,
                         int32_t *type) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (val == NULL || vlen == NULL || type == NULL) return HZSHM_EINVAL;
  uint32_t vf = 0;
  rc = lookup(s, key, klen, NULL, 0, val, vlen, &vf);
  if (goes_to_agent(rc)) {
    get_sink_t g = {0};
    rc = agent_get(s, HZSHM__OP_GET, key, klen, &g); /* the agent fills the segment */
    if (rc == 0) {
      rc = lookup(s, key, klen, NULL, 0, val, vlen, &vf);
      if (goes_to_agent(rc)) rc = HZSHM_EMISS;
    } else if (rc == HZSHM_ETYPE) {
      *vlen = (size_t)(uint32_t)g.aux;
      *type = g.aux;
    }
  }
  if (rc == 0) *type = type_of_flags(vf);
  return rc;
}

int hzshm_get_view(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen) {
  int32_t type;
  return hzshm_get_view_typed(s, key, klen, val, vlen, &type);
}

/* Views nest (LIFO per thread) and a handle follows a replaced segment only
 * forward, so a thread's views of the current segment are all newer than
 * those of retired ones: the most recent one is in the current segment if
 * it has any there, else in the newest retired segment that has one. */
int hzshm_view_release(hzshm_session_t *s) {
  hzshm_t *h = s->h;
  int rc = hzshm__shm_r_view_end(hzshm__lib_shm(h));
  if (rc != HZSHM_EINVAL) return rc;
  pthread_mutex_lock(&h->follow_mu); /* h->retired grows under it */
  for (size_t i = h->nretired; i-- > 0 && rc == HZSHM_EINVAL;) rc = hzshm__shm_r_view_end(h->retired[i]);
  pthread_mutex_unlock(&h->follow_mu);
  return rc;
}

int hzshm_has(hzshm_session_t *s, const void *key, size_t klen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  size_t n;
  rc = lookup(s, key, klen, NULL, 0, NULL, &n, NULL);
  if (rc == HZSHM_EBUFSIZE) rc = 0; /* a hit, whatever the buffer */
  if (goes_to_agent(rc)) {
    get_sink_t g = {0};
    rc = agent_get(s, HZSHM__OP_HAS, key, klen, &g);
  }
  return rc;
}

int hzshm_set_typed(hzshm_session_t *s, const void *key, size_t klen, int32_t type, const void *val, size_t vlen,
                    int64_t ttl_ms) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (vlen > HZSHM_VALUE_MAX) return HZSHM_ETOOBIG;
  if ((val == NULL && vlen) || ttl_ms < -1) return HZSHM_EINVAL;
  if (type != HZSHM_TYPE_BYTES && (type != HZSHM_TYPE_STRING || !hzshm__utf8_valid(val, vlen))) return HZSHM_EINVAL;
  hzshm__ipc_req_t req = {.sid = s->name, .sidlen = s->namelen, .key = key, .klen = klen, .ttl_ms = ttl_ms,
                          .val = val, .vlen = vlen, .flags = type == HZSHM_TYPE_STRING ? HZSHM__IPC_F_STRING : 0};
  return hzshm__lib_conn_request(s->h, HZSHM__OP_SET, &req, NULL, NULL);
}

int hzshm_set_ttl(hzshm_session_t *s, const void *key, size_t klen, const void *val, size_t vlen, int64_t ttl_ms) {
  return hzshm_set_typed(s, key, klen, HZSHM_TYPE_BYTES, val, vlen, ttl_ms);
}

int hzshm_set(hzshm_session_t *s, const void *key, size_t klen, const void *val, size_t vlen) {
  return hzshm_set_ttl(s, key, klen, val, vlen, -1);
}

int hzshm_del(hzshm_session_t *s, const void *key, size_t klen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  hzshm__ipc_req_t req = {.sid = s->name, .sidlen = s->namelen, .key = key, .klen = klen};
  return hzshm__lib_conn_request(s->h, HZSHM__OP_DEL, &req, NULL, NULL);
}

int hzshm_destroy(hzshm_session_t *s) {
  if (s == NULL) return HZSHM_EINVAL;
  int rc = hzshm__lib_check(s->h);
  if (rc) return rc;
  hzshm__ipc_req_t req = {.sid = s->name, .sidlen = s->namelen};
  return hzshm__lib_conn_request(s->h, HZSHM__OP_DESTROY, &req, NULL, NULL);
}

int hzshm_get_view_local_typed(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen,
                               int32_t *type) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (val == NULL || vlen == NULL || type == NULL) return HZSHM_EINVAL;
  uint32_t vf = 0;
  rc = lookup(s, key, klen, NULL, 0, val, vlen, &vf);
  if (rc == 0) *type = type_of_flags(vf);
  return goes_to_agent(rc) ? HZSHM_EMISS : rc;
}

int hzshm_get_view_local(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen) {
  int32_t type;
  return hzshm_get_view_local_typed(s, key, klen, val, vlen, &type);
}
