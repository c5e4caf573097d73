/* stress.h - the writer and reader steps shared by the multi-process stress
 * test (test_shm_mp.c) and the two-mappings threaded test
 * (test_shm_threaded.c).
 *
 * The writer publishes, per (session, key), the oldest version a reader may
 * still see (`ack`, stored with release after the write returned), and per
 * session the oldest generation still alive (`min_gen`). A reader loads both
 * (acquire) before its lookup; a hit must then carry an intact value of that
 * key (checksum: no torn or freed-and-poisoned bytes), a version >= ack and a
 * session generation >= min_gen. */
#ifndef HZSHM_TEST_STRESS_H
#define HZSHM_TEST_STRESS_H
#include <stdatomic.h>

#include "check.h"

#define ST_NS 4
#define ST_NK 256
#define ST_MAXR 8

typedef struct {
  _Atomic uint64_t ack[ST_NS][ST_NK];
  _Atomic uint64_t min_gen[ST_NS];
  _Atomic int stop;
  _Atomic int ready;
  _Atomic uint64_t hits[ST_MAXR], lookups[ST_MAXR];
  _Atomic uint64_t writer_ops, put_fail;
  _Atomic uint64_t ctr_hw;   /* highest version handed out (survives a writer restart) */
  _Atomic int writers_reused; /* writers that found the segment of a dead one */
} st_side_t;

typedef struct {
  hzshm__shm_t *w;
  st_side_t *side;
  hzshm__sref_t ref[ST_NS];
  int live[ST_NS]; /* 0: destroyed and not yet recreated (directory was full) */
  uint64_t ctr, rnd;
  uint8_t buf[4096];
} st_writer_t;

/* A view's bytes, read the way the segment reads entry bytes (atomically
 * under TSan, where a test build may reuse memory under a view on purpose). */
static inline void st_view_copy(uint8_t *dst, const uint8_t *src, size_t n) {
#if defined(__SANITIZE_THREAD__)
  for (size_t i = 0; i < n; i++) dst[i] = __atomic_load_n(src + i, __ATOMIC_RELAXED);
#else
  memcpy(dst, src, n);
#endif
}

static inline uint64_t st_rand(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static inline void st_sid(char *b, int s) { snprintf(b, 16, "sess-%d", s); }
static inline void st_key(char *b, int k) { snprintf(b, 16, "key-%04d", k); }

static inline void st_writer_init(st_writer_t *W, hzshm__shm_t *w, st_side_t *side, uint64_t seed) {
  memset(W, 0, sizeof *W);
  W->w = w;
  W->side = side;
  W->rnd = seed | 1;
  W->ctr = atomic_load_explicit(&side->ctr_hw, memory_order_relaxed); /* a restarted writer continues */
  for (int s = 0; s < ST_NS; s++) {
    char sid[16];
    st_sid(sid, s);
    CHECK_RC(hzshm__shm_w_session(w, sid, strlen(sid), &W->ref[s]), 0);
    W->live[s] = 1;
    atomic_store_explicit(&side->min_gen[s], W->ref[s].gen, memory_order_release);
  }
}

/* One random writer operation. */
static inline void st_writer_step(st_writer_t *W) {
  uint64_t r = st_rand(&W->rnd);
  int s = (int)(r % ST_NS), k = (int)((r >> 8) % ST_NK), op = (int)((r >> 20) % 1000);
  char key[16];
  st_key(key, k);
  st_side_t *side = W->side;
  if (!W->live[s]) { /* recreate; a reader stuck in its section may still hold the directory full */
    char sid[16];
    st_sid(sid, s);
    int rc = hzshm__shm_w_session(W->w, sid, strlen(sid), &W->ref[s]);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    if (rc) return;
    W->live[s] = 1;
    atomic_store_explicit(&side->min_gen[s], W->ref[s].gen, memory_order_release);
  }
  if (op < 700) {
    uint64_t v = ++W->ctr;
    atomic_store_explicit(&side->ctr_hw, v, memory_order_relaxed); /* before the put: a killed writer never reuses v */
    uint32_t len = (uint32_t)((r >> 32) % 3 == 0 ? (r >> 40) % 4000 : (r >> 40) % 120);
    size_t n = tv_make(W->buf, (uint32_t)s, (uint32_t)k, v, len);
    int rc = hzshm__shm_w_put(W->w, &W->ref[s], key, strlen(key), W->buf, n, (uint32_t)k % 271,
                              hzshm__shm_w_stamp(W->w), 0, 0);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    if (rc) atomic_fetch_add_explicit(&side->put_fail, 1, memory_order_relaxed);
    /* release: pairs with the reader's acquire; the put happened before */
    atomic_store_explicit(&side->ack[s][k], v, memory_order_release);
  } else if (op < 850) {
    int rc = hzshm__shm_w_del(W->w, &W->ref[s], key, strlen(key));
    CHECK(rc == 0 || rc == HZSHM_ENOTFOUND);
    atomic_store_explicit(&side->ctr_hw, ++W->ctr, memory_order_relaxed);
    atomic_store_explicit(&side->ack[s][k], W->ctr, memory_order_release);
  } else if (op < 856) { /* clear */
    hzshm__sref_t nr;
    CHECK_RC(hzshm__shm_w_session_drop(W->w, &W->ref[s], 1, &nr), 0);
    W->ref[s] = nr;
    atomic_store_explicit(&side->min_gen[s], nr.gen, memory_order_release);
  } else if (op < 860) { /* destroy and recreate */
    char sid[16];
    st_sid(sid, s);
    uint64_t old = W->ref[s].gen;
    CHECK_RC(hzshm__shm_w_session_drop(W->w, &W->ref[s], 0, NULL), 0);
    atomic_store_explicit(&side->min_gen[s], old + 1, memory_order_release);
    int rc = hzshm__shm_w_session(W->w, sid, strlen(sid), &W->ref[s]);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    W->live[s] = rc == 0;
    if (rc == 0) atomic_store_explicit(&side->min_gen[s], W->ref[s].gen, memory_order_release);
  } else if (op < 870) {
    CHECK_RC(hzshm__shm_w_maintain(W->w), 0);
  }
  if ((atomic_fetch_add_explicit(&side->writer_ops, 1, memory_order_relaxed) & 1023) == 0)
    hzshm__shm_w_heartbeat(W->w, HZSHM_SHM_SERVING);
}

/* Reader: lookups until side->stop; exits the process / returns nonzero on a violation. */
static inline int st_reader_run(hzshm__shm_t *r, st_side_t *side, int id, uint64_t seed) {
  hzshm__sref_t ref[ST_NS];
  int have[ST_NS] = {0};
  uint8_t buf[4096];
  uint64_t rnd = seed | 1;
  atomic_fetch_add_explicit(&side->ready, 1, memory_order_relaxed);
  while (!atomic_load_explicit(&side->stop, memory_order_relaxed)) {
    uint64_t x = st_rand(&rnd);
    int s = (int)(x % ST_NS), k = (int)((x >> 8) % ST_NK);
    char key[16];
    st_key(key, k);
    if (!have[s]) {
      char sid[16];
      st_sid(sid, s);
      have[s] = hzshm__shm_r_session(r, sid, strlen(sid), &ref[s]) == 0;
      if (!have[s]) continue;
    }
    uint64_t ack = atomic_load_explicit(&side->ack[s][k], memory_order_acquire); /* pairs with writer */
    uint64_t mg = atomic_load_explicit(&side->min_gen[s], memory_order_acquire); /* pairs with writer */
    size_t n = 0;
    const uint8_t *val = buf;
    int rc;
    int view = (x >> 40) & 1;
    if (view) rc = hzshm__shm_r_view(r, &ref[s], key, strlen(key), (const void **)&val, &n);
    else rc = hzshm__shm_r_get(r, &ref[s], key, strlen(key), buf, sizeof buf, &n);
    atomic_fetch_add_explicit(&side->lookups[id], 1, memory_order_relaxed);
    if (rc == HZSHM_ESESSION) {
      have[s] = 0;
      continue;
    }
    /* misses, and the gap while a killed writer is replaced (the new writer
     * says "not serving", EDISCONNECTED, from its first store until its first heartbeat) */
    if (rc == HZSHM_EMISS || rc == HZSHM_ESTALE || rc == HZSHM_ESTOPPED || rc == HZSHM_EDISCONNECTED) continue;
    if (rc == HZSHM_EBUSY) continue; /* a private reader file the writer does not follow yet (test_shm_access) */
    if (rc != 0) {
      fprintf(stderr, "reader %d: unexpected %s\n", id, hzshm_err_name(rc));
      return 1;
    }
    uint64_t ver = 0;
    if (view) { /* as an application should: copy, release, use the copy only if the view held */
      st_view_copy(buf, val, n < sizeof buf ? n : sizeof buf);
      int vrc = hzshm__shm_r_view_end(r);
      if (vrc == HZSHM_ECHANGED) continue;
      CHECK_RC(vrc, 0);
      val = buf;
    }
    int bad = tv_check(val, n, (uint32_t)s, (uint32_t)k, &ver);
    if (bad) {
      fprintf(stderr, "reader %d: torn/freed/foreign value (%d) for s%d k%d\n", id, bad, s, k);
      return 2;
    }
    if (ver < ack) {
      fprintf(stderr, "reader %d: old value v%llu < acked v%llu (s%d k%d)\n", id, (unsigned long long)ver,
              (unsigned long long)ack, s, k);
      return 3;
    }
    if (ref[s].gen < mg) {
      fprintf(stderr, "reader %d: hit in destroyed session generation %llu < %llu\n", id,
              (unsigned long long)ref[s].gen, (unsigned long long)mg);
      return 4;
    }
    atomic_fetch_add_explicit(&side->hits[id], 1, memory_order_relaxed);
  }
  return 0;
}

/* A reader thread running st_reader_run (pthread_create(..., st_reader_thread, &arg)). */
typedef struct {
  hzshm__shm_t *r;
  st_side_t *side;
  int id, rc;
  uint64_t seed;
} st_rarg_t;
static inline void *st_reader_thread(void *p) {
  st_rarg_t *a = p;
  a->rc = st_reader_run(a->r, a->side, a->id, a->seed);
  return NULL;
}
#endif
