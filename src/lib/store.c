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

/* Reads the cached reference. 1 if valid. */
static int ref_load(hzshm_session_t *s, hzshm__sref_t *ref) {
  /* Acquire: paired with the release store of seq in ref_store, so that if we
   * see its even value we also see the idx/gen stored before it. */
  unsigned s1 = atomic_load_explicit(&s->cache->seq, memory_order_acquire);
  if (s1 & 1u) return 0;
  /* Relaxed: validated by the seq re-check after the acquire fence below. */
  ref->idx = atomic_load_explicit(&s->cache->idx, memory_order_relaxed);
  ref->gen = atomic_load_explicit(&s->cache->gen, memory_order_relaxed);
  /* Acquire fence: paired with the release fence in ref_store; if we read any
   * idx/gen of a newer store, the seq load below sees its odd (or later) value. */
  atomic_thread_fence(memory_order_acquire);
  unsigned s2 = atomic_load_explicit(&s->cache->seq, memory_order_relaxed);
  return s1 == s2 && ref->gen != 0;
}

static void ref_store(hzshm_session_t *s, const hzshm__sref_t *ref) {
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
  /* Release: paired with the acquire load of seq in ref_load. */
  atomic_store_explicit(&s->cache->seq, s0 + 2, memory_order_release);
}

static int ref_get(hzshm_session_t *s, hzshm__sref_t *ref, int fresh) {
  if (!fresh && ref_load(s, ref)) return 0;
  int rc = hzshm__shm_r_session(s->h->shm, s->name, s->namelen, ref);
  if (rc == 0) ref_store(s, ref);
  return rc;
}

static int check_key(hzshm_session_t *s, const void *key, size_t klen) {
  if (s == NULL) return HZSHM_EINVAL;
  int rc = hzshm__lib_check(s->h);
  if (rc) return rc;
  if (klen == 0) return HZSHM_EEMPTY;
  if (key == NULL) return HZSHM_EINVAL;
  if (klen > HZSHM_KEY_MAX) return HZSHM_ETOOBIG;
  if (!hzshm__ipc_utf8_valid(key, klen)) return HZSHM_EINVAL;
  return 0;
}

/* Segment lookup with one re-resolve on a stale reference. view != NULL asks
 * for a zero-copy view instead of a copy. */
static int lookup(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap, const void **view,
                  size_t *vlen) {
  int rc = HZSHM_EMISS;
  for (int attempt = 0; attempt < 2; attempt++) {
    hzshm__sref_t ref;
    rc = ref_get(s, &ref, attempt > 0);
    if (rc != 0) return rc; /* HZSHM_EMISS: nothing cached for the session */
    if (view)
      rc = hzshm__shm_r_view(s->h->shm, &ref, key, klen, view, vlen);
    else
      rc = hzshm__shm_r_get(s->h->shm, &ref, key, klen, buf, cap, vlen);
    if (rc != HZSHM_ESESSION) return rc;
  }
  return rc == HZSHM_ESESSION ? HZSHM_EMISS : rc;
}

static int goes_to_agent(int rc) { return rc == HZSHM_EMISS || rc == HZSHM_ESESSION || rc == HZSHM_EBUSY; }

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
  hzshm__shm_r_count_miss(s->h->shm);
  return hzshm__conn_request(s->h, op, &req, get_sink, g);
}

int hzshm_get(hzshm_session_t *s, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (vlen == NULL || (buf == NULL && cap)) return HZSHM_EINVAL;
  size_t n = 0;
  rc = lookup(s, key, klen, buf ? buf : (void *)&n, buf ? cap : 0, NULL, &n);
  if (goes_to_agent(rc)) {
    get_sink_t g = {.buf = buf, .cap = cap};
    rc = agent_get(s, HZSHM__OP_GET, key, klen, &g);
    n = g.vlen;
    if (rc == 0 && !g.fits) rc = HZSHM_EBUFSIZE;
    if (rc == HZSHM_ETYPE) n = (size_t)(uint32_t)g.aux;
  }
  *vlen = n;
  return rc;
}

int hzshm_get_view(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (val == NULL || vlen == NULL) return HZSHM_EINVAL;
  rc = lookup(s, key, klen, NULL, 0, val, vlen);
  if (goes_to_agent(rc)) {
    get_sink_t g = {0};
    rc = agent_get(s, HZSHM__OP_GET, key, klen, &g); /* the agent fills the segment */
    if (rc == 0) {
      rc = lookup(s, key, klen, NULL, 0, val, vlen);
      if (goes_to_agent(rc)) rc = HZSHM_EMISS;
    } else if (rc == HZSHM_ETYPE) {
      *vlen = (size_t)(uint32_t)g.aux;
    }
  }
  return rc;
}

int hzshm_view_release(hzshm_session_t *s) { return hzshm__shm_r_view_end(s->h->shm); }

int hzshm_has(hzshm_session_t *s, const void *key, size_t klen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  size_t n;
  rc = lookup(s, key, klen, NULL, 0, NULL, &n);
  if (rc == HZSHM_EBUFSIZE) rc = 0; /* a hit, whatever the buffer */
  if (goes_to_agent(rc)) {
    get_sink_t g = {0};
    rc = agent_get(s, HZSHM__OP_HAS, key, klen, &g);
  }
  return rc;
}

int hzshm_set_ttl(hzshm_session_t *s, const void *key, size_t klen, const void *val, size_t vlen, int64_t ttl_ms) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (vlen > HZSHM_VALUE_MAX) return HZSHM_ETOOBIG;
  if ((val == NULL && vlen) || ttl_ms < -1) return HZSHM_EINVAL;
  hzshm__ipc_req_t req = {
      .sid = s->name, .sidlen = s->namelen, .key = key, .klen = klen, .ttl_ms = ttl_ms, .val = val, .vlen = vlen};
  return hzshm__conn_request(s->h, HZSHM__OP_SET, &req, NULL, NULL);
}

int hzshm_set(hzshm_session_t *s, const void *key, size_t klen, const void *val, size_t vlen) {
  return hzshm_set_ttl(s, key, klen, val, vlen, -1);
}

int hzshm_del(hzshm_session_t *s, const void *key, size_t klen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  hzshm__ipc_req_t req = {.sid = s->name, .sidlen = s->namelen, .key = key, .klen = klen};
  return hzshm__conn_request(s->h, HZSHM__OP_DEL, &req, NULL, NULL);
}

int hzshm_destroy(hzshm_session_t *s) {
  if (s == NULL) return HZSHM_EINVAL;
  int rc = hzshm__lib_check(s->h);
  if (rc) return rc;
  hzshm__ipc_req_t req = {.sid = s->name, .sidlen = s->namelen};
  return hzshm__conn_request(s->h, HZSHM__OP_DESTROY, &req, NULL, NULL);
}

int hzshm_get_view_local(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen) {
  int rc = check_key(s, key, klen);
  if (rc) return rc;
  if (val == NULL || vlen == NULL) return HZSHM_EINVAL;
  rc = lookup(s, key, klen, NULL, 0, val, vlen);
  return goes_to_agent(rc) ? HZSHM_EMISS : rc;
}
