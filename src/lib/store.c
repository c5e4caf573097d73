/* store.c - the Store operations of libhzshm: get/has from the segment,
 * misses and writes through the agent.
 *
 * Ordering and progress: a hit is hzshm__shm_r_get (lock-free, no syscall)
 * after reading the session's cached directory reference through the
 * seqlock of shm/shm_seq.h (the proof is there; wait-free for readers: a torn
 * or in-progress read just re-resolves the reference through
 * hzshm__shm_r_session, itself lock-free). Everything else is a blocking
 * round trip to the agent (conn.c).
 */
#include <string.h>

#include "lib_int.h"
#include "shm_seq.h"
#include "utf8.h"

/* Reads the cached reference (seqlock reader, shm_seq.h). 1 if valid (and
 * resolved in segment handle m). Inline on the hit path. */
static inline __attribute__((always_inline)) int ref_load(hzshm_session_t *s, hzshm__shm_t *m, hzshm__sref_t *ref) {
  hzshm__refcache_t *c = s->cache;
  uint64_t s1 = hzshm__seq_read_begin(&c->seq);
  if (s1 & 1u) return 0; /* a publisher is inside: resolve instead */
  ref->idx = hzshm__seq_get32(&c->idx);
  ref->gen = hzshm__seq_get64(&c->gen);
  uint64_t in = hzshm__seq_get64(&c->shm);
  /* a reference of a replaced segment means nothing here */
  return !hzshm__seq_read_retry(&c->seq, s1) && ref->gen != 0 && in == (uint64_t)(uintptr_t)m;
}

/* Publishes a resolved reference (seqlock writer, shm_seq.h). Any thread may
 * call it; one at a time takes the section, the others skip (it is a cache). */
static void ref_store(hzshm_session_t *s, hzshm__shm_t *m, const hzshm__sref_t *ref) {
  hzshm__refcache_t *c = s->cache;
  uint64_t done;
  if (!hzshm__seq_try_write_begin(&c->seq, &done)) return;
  hzshm__seq_put32(&c->idx, ref->idx);
  hzshm__seq_put64(&c->gen, ref->gen);
  hzshm__seq_put64(&c->shm, (uint64_t)(uintptr_t)m);
  hzshm__seq_write_end(&c->seq, done);
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
