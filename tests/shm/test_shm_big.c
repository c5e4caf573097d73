/* test_shm_big.c - the per-segment slab size: the rule (the largest power of
 * two within [64 KiB, 2 MiB] of which the arena budget holds 64); a 140 MiB
 * segment (2 MiB slabs) caches a value of
 * HZSHM_VALUE_MAX bytes under a HZSHM_KEY_MAX key, byte-exact; a small segment
 * (64 KiB slabs), open in the same process, still refuses a 100 KiB entry and
 * changes nothing; big and small entries compete (eviction, slab stealing):
 * every read is byte-exact or a miss; a bad slab shift in a header is refused
 * at attach; a writer SIGKILLed with 2 MiB slabs is rebuilt by the next one
 * with every entry intact; and (case big_threaded, for TSan) reader threads on
 * big values while the writer replaces and evicts them.
 *   usage: test_shm_big [case...]  (big_threaded: the threaded test, its own ctest) */
#include "check.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "shm_int.h" /* white-box: slab shift, class table, slab table, header fields */

#define MIB (1ull << 20)
#define BIG_MEM (140 * MIB) /* ~139.9 MiB / 64 >= 2 MiB: 2 MiB slabs, ~67 of them */
#define NK 400 /* keys of the competition and restart tests */

static hzshm__shm_config_t cfg_mem(uint64_t mem) {
  /* stale bound 10 min: these writers do not heartbeat, and checking MiBs of
   * values byte by byte takes seconds under the sanitizers */
  hzshm__shm_config_t c = {.memory_bytes = mem, .max_sessions = 8, .reader_slots = 8, .partition_count = 271,
                           .stale_after_ns = 600ull * 1000000000ull};
  return c;
}

static uint8_t *vbuf, *rbuf, *ebuf; /* value to put, value read, value expected */

/* Values are tv_make() values (check.h): a total size n >= 28, content fixed
 * by (key, version), so a read can be compared byte by byte. */
static void key_of(char *b, uint32_t k) { snprintf(b, 16, "b%07u", k); }

static int put_n(hzshm__shm_t *w, const hzshm__sref_t *ref, uint32_t k, uint64_t ver, size_t n) {
  char key[16];
  key_of(key, k);
  CHECK_EQ(tv_make(vbuf, 0, k, ver, (uint32_t)(n - TV_HDR - 8)), n);
  return hzshm__shm_w_put(w, ref, key, strlen(key), vbuf, n, k % 271, hzshm__shm_w_stamp(w), 0, 0);
}

/* 0: a hit, byte-exact (version ver, n bytes); HZSHM_EMISS: a miss. Anything
 * else (wrong bytes, wrong length, another code) fails the test. */
static int get_n(hzshm__shm_t *r, const hzshm__sref_t *ref, uint32_t k, uint64_t ver, size_t n) {
  char key[16];
  size_t got = 0;
  key_of(key, k);
  int rc = hzshm__shm_r_get(r, ref, key, strlen(key), rbuf, HZSHM_VALUE_MAX, &got);
  if (rc == HZSHM_EMISS) return rc;
  CHECK_RC(rc, 0);
  CHECK_EQ(got, n);
  tv_make(ebuf, 0, k, ver, (uint32_t)(n - TV_HDR - 8));
  CHECK_MEMEQ(rbuf, ebuf, n);
  return 0;
}

/* The memory an entry of this key and value takes: its class size. */
static uint64_t charge(hzshm__shm_t *s, size_t klen, size_t vlen) {
  int cls = hzshm__shm_class_of(s, sizeof(hzshm__shm_entry_t) + klen + vlen);
  CHECK_GE(cls, 0);
  return s->class_size[cls];
}

static void snap(hzshm__shm_t *s, hzshm__shm_stats_t *st) {
  CHECK_RC(hzshm__shm_stats(s, st), 0);
  st->hits = st->misses = 0;
  st->heartbeat_age_ns = 0;
  st->readers = 0;
}

/* ---- the rule ---------------------------------------------------------- */

TEST_CASE(slab_rule) {
  static const struct {
    uint64_t mem;
    uint32_t shift;
  } t[] = {{1280ull << 10, 16}, {6 * MIB, 16},  {12 * MIB, 17}, {24 * MIB, 18},
           {48 * MIB, 19},      {96 * MIB, 20}, {140 * MIB, 21}, {192 * MIB, 21}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    const char *name = t_name("rule");
    hzshm__shm_config_t c = cfg_mem(t[i].mem);
    hzshm__shm_t *w, *r;
    CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
    CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
    uint64_t slab = 1ull << t[i].shift;
    CHECK_EQ(w->slab_shift, t[i].shift);
    CHECK_EQ(w->hdr->slab_shift, t[i].shift);
    CHECK_EQ(r->slab_shift, t[i].shift);
    CHECK_EQ(r->nclass, w->nclass);
    CHECK_EQ(w->nclass, 8 + 4 * ((int)t[i].shift - 9));
    CHECK_EQ(w->hdr->arena_size, w->hdr->slab_count * slab);
    CHECK_EQ(w->class_size[0], 64);
    CHECK_EQ(w->class_size[w->nclass - 1], slab);
    for (int k = 1; k < w->nclass; k++) CHECK(w->class_size[k] > w->class_size[k - 1] && w->class_size[k] % 64 == 0);
    CHECK_EQ(hzshm__shm_class_of(w, slab), w->nclass - 1);
    CHECK_EQ(hzshm__shm_class_of(w, slab + 1), -1);
    if (t[i].shift == 21) /* a 1 MiB value + 1 KiB key lands in the 1.25 MiB class */
      CHECK_EQ(charge(w, HZSHM_KEY_MAX, HZSHM_VALUE_MAX), 1310720);
    hzshm__shm_close(r);
    hzshm__shm_close(w);
    CHECK_RC(hzshm__shm_unlink(name), 0);
  }
}

/* ---- big values; a small segment open next to the big one ---------------- */

TEST_CASE(big_values) {
  const char *name = t_name("bigv"), *sname = t_name("small");
  hzshm__shm_config_t c = cfg_mem(BIG_MEM), sc = cfg_mem(1280ull << 10);
  hzshm__shm_t *w, *r, *sw, *sr;
  hzshm__sref_t ref, sref;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_open(sname, &sc, 0, &sw, NULL), 0); /* two slab sizes in one process */
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_r_attach(sname, &sr), 0);
  CHECK_EQ(w->slab_shift, 21);
  CHECK_EQ(sw->slab_shift, 16);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_session(sw, "s", 1, &sref), 0);
  hzshm__shm_w_set_poison(w, 1);

  /* HZSHM_VALUE_MAX bytes under a HZSHM_KEY_MAX key */
  static char bigkey[HZSHM_KEY_MAX];
  for (size_t i = 0; i < sizeof bigkey; i++) bigkey[i] = (char)('a' + i % 26);
  CHECK_EQ(tv_make(vbuf, 0, 7, 1, HZSHM_VALUE_MAX - TV_HDR - 8), HZSHM_VALUE_MAX);
  CHECK_RC(hzshm__shm_w_put(w, &ref, bigkey, sizeof bigkey, vbuf, HZSHM_VALUE_MAX, 3, hzshm__shm_w_stamp(w), 0, 0), 0);
  size_t n = 0;
  memset(rbuf, 0, HZSHM_VALUE_MAX);
  CHECK_RC(hzshm__shm_r_get(r, &ref, bigkey, sizeof bigkey, rbuf, HZSHM_VALUE_MAX, &n), 0);
  CHECK_EQ(n, HZSHM_VALUE_MAX);
  CHECK_MEMEQ(rbuf, vbuf, n);
  CHECK_RC(hzshm__shm_r_get(r, &ref, bigkey, sizeof bigkey, rbuf, HZSHM_VALUE_MAX - 1, &n), HZSHM_EBUFSIZE);
  CHECK_EQ(n, HZSHM_VALUE_MAX);
  const void *v = NULL;
  CHECK_RC(hzshm__shm_r_view(r, &ref, bigkey, sizeof bigkey, &v, &n), 0);
  CHECK_EQ(n, HZSHM_VALUE_MAX);
  CHECK_MEMEQ(v, vbuf, n);
  hzshm__shm_r_view_end(r);
  /* 65 KiB and 300 KiB */
  CHECK_RC(put_n(w, &ref, 1, 1, 65 << 10), 0);
  CHECK_RC(put_n(w, &ref, 2, 1, 300 << 10), 0);
  CHECK_RC(get_n(r, &ref, 1, 1, 65 << 10), 0);
  CHECK_RC(get_n(r, &ref, 2, 1, 300 << 10), 0);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.entries, 3);
  CHECK_EQ(st.memory_used, charge(w, HZSHM_KEY_MAX, HZSHM_VALUE_MAX) + charge(w, 8, 65 << 10) + charge(w, 8, 300 << 10));

  /* Hit latency of a 1 MiB get (copy into the caller's buffer): printed only. */
  enum { REPS = 64 };
  uint64_t h0 = st.hits, t0 = t_now_ns();
  for (int i = 0; i < REPS; i++)
    CHECK_RC(hzshm__shm_r_get(r, &ref, bigkey, sizeof bigkey, rbuf, HZSHM_VALUE_MAX, &n), 0);
  uint64_t dt = t_now_ns() - t0;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.hits - h0, REPS);
  fprintf(stderr, "1 MiB get hit: %.1f us (%.2f GB/s)\n", (double)dt / REPS / 1000.0,
          (double)HZSHM_VALUE_MAX * REPS / (double)dt);

  /* replace the 1 MiB value: the next read returns the new bytes */
  CHECK_EQ(tv_make(vbuf, 0, 7, 2, HZSHM_VALUE_MAX - TV_HDR - 8), HZSHM_VALUE_MAX);
  CHECK_RC(hzshm__shm_w_put(w, &ref, bigkey, sizeof bigkey, vbuf, HZSHM_VALUE_MAX, 3, hzshm__shm_w_stamp(w), 0, 0), 0);
  CHECK_RC(hzshm__shm_r_get(r, &ref, bigkey, sizeof bigkey, rbuf, HZSHM_VALUE_MAX, &n), 0);
  CHECK_EQ(n, HZSHM_VALUE_MAX);
  CHECK_MEMEQ(rbuf, vbuf, n);
  /* over this segment's largest class (2 MiB): refused */
  static uint8_t huge[(2u << 20) + 1];
  hzshm__shm_stats_t before, after;
  snap(w, &before);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "huge", 4, huge, (2u << 20) - sizeof(hzshm__shm_entry_t) - 4 + 1, 0, hzshm__shm_w_stamp(w), 0, 0),
           HZSHM_ETOOBIG);
  snap(w, &after);
  CHECK_MEMEQ(&before, &after, sizeof before);

  /* The small segment (64 KiB slabs), open at the same time: a 100 KiB entry
   * is refused and changes nothing; the largest entry that fits is cached. */
  CHECK_RC(put_n(sw, &sref, 1, 1, 100), 0);
  snap(sw, &before);
  CHECK_RC(put_n(sw, &sref, 2, 1, 100 << 10), HZSHM_ETOOBIG);
  snap(sw, &after);
  CHECK_MEMEQ(&before, &after, sizeof before);
  CHECK_RC(get_n(sr, &sref, 2, 1, 100 << 10), HZSHM_EMISS);
  CHECK_RC(get_n(sr, &sref, 1, 1, 100), 0);
  CHECK_RC(put_n(sw, &sref, 3, 1, 65536 - sizeof(hzshm__shm_entry_t) - 8), 0); /* key "b0000003": 8 bytes */
  CHECK_RC(get_n(sr, &sref, 3, 1, 65536 - sizeof(hzshm__shm_entry_t) - 8), 0);
  CHECK_RC(put_n(sw, &sref, 4, 1, 65536 - sizeof(hzshm__shm_entry_t) - 8 + 1), HZSHM_ETOOBIG);
  /* and the big segment, same process, still takes the 100 KiB one */
  CHECK_RC(put_n(w, &ref, 4, 1, 100 << 10), 0);
  CHECK_RC(get_n(r, &ref, 4, 1, 100 << 10), 0);

  hzshm__shm_close(sr);
  hzshm__shm_close(sw);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  CHECK_RC(hzshm__shm_unlink(sname), 0);
}

/* ---- big and small entries compete for the slabs ----------------------- */

typedef struct {
  uint64_t ver[NK];
  size_t len[NK]; /* 0 = never cached */
} model_t;

static uint64_t rnd_next(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Every key reads byte-exact (its last cached version) or misses; returns the
 * number of hits, and adds the memory the hits take to *mem. */
static uint64_t check_all(hzshm__shm_t *w, hzshm__shm_t *r, const hzshm__sref_t *ref, const model_t *m,
                          uint64_t *mem) {
  uint64_t hits = 0;
  for (uint32_t k = 0; k < NK; k++) {
    if (!m->len[k]) {
      CHECK_RC(get_n(r, ref, k, 1, 100), HZSHM_EMISS);
      continue;
    }
    if (get_n(r, ref, k, m->ver[k], m->len[k]) == 0) {
      hits++;
      *mem += charge(w, 8, m->len[k]);
    }
  }
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.entries, hits); /* every cached entry is reachable, nothing else is */
  CHECK_LE(st.memory_used, st.memory_limit);
  return hits;
}

static int slabs_of_class(hzshm__shm_t *w, uint64_t csz) {
  int n = 0;
  for (uint64_t i = 0; i < w->slab_count; i++) {
    uint32_t cls = HZSHM__SLAB_CLS(atomic_load(&w->slabtab[i]));
    if (cls != 0xff && w->class_size[cls] == csz) n++;
  }
  return n;
}

static void put_ok(hzshm__shm_t *w, hzshm__shm_t *r, const hzshm__sref_t *ref, model_t *m, uint32_t k, size_t n) {
  uint64_t v = m->ver[k] + 1;
  CHECK_RC(put_n(w, ref, k, v, n), 0); /* one thread, no reader inside a section: never ESEGFULL */
  m->ver[k] = v;
  m->len[k] = n;
  CHECK_RC(get_n(r, ref, k, v, n), 0); /* just put: a hit */
}

TEST_CASE(big_compete) {
  const char *name = t_name("comp");
  hzshm__shm_config_t c = cfg_mem(BIG_MEM);
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  model_t *m = calloc(1, sizeof *m);
  CHECK(m);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  hzshm__shm_w_set_poison(w, 1); /* a read of a freed chunk would show 0xdb bytes */
  hzshm__shm_stats_t st;
  uint64_t mem = 0;
  /* A: 1 MiB values until they evict each other: every slab is 1.25 MiB class */
  uint32_t k = 0;
  do {
    CHECK_LT(k, 100);
    put_ok(w, r, &ref, m, k++, HZSHM_VALUE_MAX);
    CHECK_RC(hzshm__shm_stats(w, &st), 0);
  } while (st.evictions == 0);
  uint64_t big_csz = charge(w, 8, HZSHM_VALUE_MAX), small_csz = charge(w, 8, 100);
  CHECK_EQ(slabs_of_class(w, big_csz), (int)w->slab_count);
  check_all(w, r, &ref, m, &mem);
  /* B: small values: placed only by stealing slabs from the big class */
  for (k = 100; k < NK; k++) put_ok(w, r, &ref, m, k, 100);
  CHECK_GE(slabs_of_class(w, small_csz), 1);
  CHECK_LT(slabs_of_class(w, big_csz), (int)w->slab_count);
  check_all(w, r, &ref, m, &mem);
  /* C: random sizes over all keys; a full check every 250 operations */
  static const size_t sizes[] = {100, 3000, 65 << 10, 300 << 10, HZSHM_VALUE_MAX};
  uint64_t x = 0x2545f4914f6cdd1dull;
  for (int op = 1; op <= 1500; op++) {
    uint64_t rr = rnd_next(&x);
    k = (uint32_t)(rr % NK);
    if ((rr >> 20) % 10 == 0) {
      char key[16];
      key_of(key, k);
      int rc = hzshm__shm_w_del(w, &ref, key, strlen(key));
      CHECK(rc == 0 || rc == HZSHM_ENOTFOUND);
      CHECK_RC(get_n(r, &ref, k, 1, 100), HZSHM_EMISS);
      continue;
    }
    put_ok(w, r, &ref, m, k, sizes[(rr >> 32) % 5]);
    if (op % 250 == 0) {
      mem = 0;
      uint64_t hits = check_all(w, r, &ref, m, &mem);
      CHECK_GT(hits, 0);
    }
  }
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  mem = 0;
  check_all(w, r, &ref, m, &mem);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.retired_pending, 0);
  CHECK_EQ(st.memory_used, mem); /* the class of every chunk is accounted right */
  CHECK_GT(st.evictions, 0);
  fprintf(stderr, "compete: entries %llu, evictions %llu, memory %llu of %llu\n", (unsigned long long)st.entries,
          (unsigned long long)st.evictions, (unsigned long long)st.memory_used, (unsigned long long)st.memory_limit);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  free(m);
}

/* ---- a bad slab shift in the header ------------------------------------ */

static void hdr_io(const char *name, hzshm__shm_hdr_t *h, int write) {
  char path[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(name, 0, path, sizeof path), 0);
  int fd = open(path, O_RDWR);
  CHECK_GE(fd, 0);
  if (write) CHECK_EQ(pwrite(fd, h, sizeof *h, 0), (ssize_t)sizeof *h);
  else CHECK_EQ(pread(fd, h, sizeof *h, 0), (ssize_t)sizeof *h);
  close(fd);
}
/* The geometry hash as shm_open.c computes it (checked against a sound file
 * first, so a change there fails here instead of making the test vacuous). */
static uint64_t geom_of(const hzshm__shm_hdr_t *h) {
  return hzshm__shm_fold(h, offsetof(hzshm__shm_hdr_t, geom_check), 0x67656f6dull);
}

TEST_CASE(bad_slab_shift) {
  const char *name = t_name("shift");
  hzshm__shm_config_t c = cfg_mem(12 * MIB); /* 128 KiB slabs */
  hzshm__shm_t *x;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &x, NULL), 0);
  hzshm__shm_close(x);
  hzshm__shm_hdr_t good, h;
  hdr_io(name, &good, 0);
  CHECK_EQ(good.slab_shift, 17);
  CHECK_EQ(good.geom_check, geom_of(&good));
  /* a scribbled shift: the geometry hash no longer matches */
  h = good;
  h.slab_shift = 18;
  hdr_io(name, &h, 1);
  CHECK_RC(hzshm__shm_r_attach(name, &x), HZSHM_ECORRUPT);
  /* a forged header (hash recomputed): the shift itself is checked */
  static const uint32_t bad[] = {0, 15, 22, 63, 64, 0xffffffffu,
                                 16 /* in range, but slab_count x 64 KiB != arena_size */,
                                 21 /* idem, 2 MiB */};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    h = good;
    h.slab_shift = bad[i];
    h.geom_check = geom_of(&h);
    hdr_io(name, &h, 1);
    CHECK_RC(hzshm__shm_r_attach(name, &x), HZSHM_ECORRUPT);
    CHECK_RC(hzshm__shm_w_open(name, &c, 0, &x, NULL), HZSHM_EVERSION); /* a writer leaves it alone */
    hdr_io(name, &h, 0);
    CHECK_EQ(h.slab_shift, bad[i]);
  }
  /* a file of layout version 3 (64 KiB slabs, no slab_shift field) */
  h = good;
  h.version = 3;
  hdr_io(name, &h, 1);
  CHECK_RC(hzshm__shm_r_attach(name, &x), HZSHM_EVERSION);
  /* the sound header again: attaches */
  hdr_io(name, &good, 1);
  CHECK_RC(hzshm__shm_r_attach(name, &x), 0);
  hzshm__shm_close(x);
  /* a bad one is replaced on request */
  h = good;
  h.slab_shift = 22;
  h.geom_check = geom_of(&h);
  hdr_io(name, &h, 1);
  CHECK_RC(hzshm__shm_w_open(name, &c, 1, &x, NULL), 0);
  CHECK_EQ(x->slab_shift, 17);
  hzshm__shm_close(x);
  CHECK_RC(hzshm__shm_r_attach(name, &x), 0);
  hzshm__shm_close(x);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* ---- a writer killed with 2 MiB slabs; the next one rebuilds ------------ */

static size_t restart_len(uint32_t k) {
  static const size_t sizes[] = {100, 3000, 65 << 10, 300 << 10, HZSHM_VALUE_MAX};
  return k < 80 ? HZSHM_VALUE_MAX : sizes[k % 5]; /* ~170 MiB in all: evictions and steals */
}

static void restart_child(const char *name, int ready_fd, int hold_fd) {
  t_child_dies_with_parent();
  hzshm__shm_config_t c = cfg_mem(BIG_MEM);
  hzshm__shm_t *w;
  hzshm__sref_t ref;
  if (hzshm__shm_w_open(name, &c, 0, &w, NULL) != 0 || hzshm__shm_w_session(w, "s", 1, &ref) != 0) _exit(9);
  hzshm__shm_w_set_poison(w, 1);
  /* big values until they evict each other, then every size (slabs stolen) */
  for (uint32_t k = 0; k < NK; k++)
    if (put_n(w, &ref, k, 1, restart_len(k)) != 0) _exit(10);
  for (uint32_t k = 0; k < NK; k += 7) { /* replaced and deleted ones leave retired chunks behind */
    char key[16];
    key_of(key, k);
    int rc = k % 2 ? put_n(w, &ref, k, 2, restart_len(k)) : hzshm__shm_w_del(w, &ref, key, strlen(key));
    if (rc != 0 && rc != HZSHM_ENOTFOUND) _exit(11); /* a delete of an evicted key: ENOTFOUND */
  }
  char b = 1;
  if (write(ready_fd, &b, 1) != 1) _exit(12);
  (void)read(hold_fd, &b, 1); /* never written: blocks until SIGKILL */
  _exit(13);
}

TEST_CASE(restart_2m) {
  const char *name = t_name("rst");
  int ready[2], hold[2];
  CHECK_EQ(pipe(ready), 0);
  CHECK_EQ(pipe(hold), 0);
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) restart_child(name, ready[1], hold[0]);
  char b;
  CHECK_EQ(read(ready[0], &b, 1), 1); /* the child's writes are done */
  hzshm__shm_t *r, *w;
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_EQ(r->slab_shift, 21);
  CHECK_RC(hzshm__shm_r_session(r, "s", 1, &ref), 0);
  /* what the dead writer had cached */
  static uint8_t had[NK];
  uint64_t nhad = 0;
  for (uint32_t k = 0; k < NK; k++) {
    uint64_t ver = k % 7 == 0 ? 2 : 1;
    if (k % 7 == 0 && k % 2 == 0) {
      CHECK_RC(get_n(r, &ref, k, 1, 100), HZSHM_EMISS); /* deleted */
      continue;
    }
    had[k] = get_n(r, &ref, k, ver, restart_len(k)) == 0;
    nhad += had[k];
  }
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(r, &st), 0);
  CHECK_EQ(st.entries, nhad);
  CHECK_GT(st.evictions, 0);
  fprintf(stderr, "restart: %llu entries cached by the killed writer\n", (unsigned long long)nhad);
  CHECK_GT(nhad, 100);
  CHECK_EQ(kill(pid, SIGKILL), 0);
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFSIGNALED(status));
  close(ready[0]), close(ready[1]), close(hold[0]), close(hold[1]);
  /* the next writer reuses the segment and rebuilds it */
  hzshm__shm_config_t c = cfg_mem(BIG_MEM);
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 1);
  hzshm__shm_w_set_poison(w, 1);
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0); /* unreachable chunks: one grace period */
  uint64_t mem = 0;
  for (uint32_t k = 0; k < NK; k++) {
    if (!had[k]) continue;
    CHECK_RC(get_n(r, &ref, k, k % 7 == 0 ? 2 : 1, restart_len(k)), 0); /* every entry kept, byte-exact */
    mem += charge(w, 8, restart_len(k));
  }
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.entries, nhad);
  CHECK_EQ(st.retired_pending, 0);
  CHECK_EQ(st.memory_used, mem); /* the rebuilt slabs' classes account every chunk right */
  /* and it goes on: big and small puts over the rebuilt free lists and queues */
  model_t *m = calloc(1, sizeof *m);
  CHECK(m);
  hzshm__sref_t wref;
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &wref), 0);
  CHECK_EQ(wref.gen, ref.gen);
  CHECK_EQ(wref.idx, ref.idx); /* the session survived */
  for (uint32_t k = 0; k < NK; k++)
    if (had[k]) m->ver[k] = k % 7 == 0 ? 2 : 1, m->len[k] = restart_len(k);
  for (uint32_t k = 0; k < NK; k += 3) put_ok(w, r, &ref, m, k, restart_len(k + 1));
  mem = 0;
  check_all(w, r, &ref, m, &mem);
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.retired_pending, 0);
  CHECK_EQ(st.memory_used, mem);
  free(m);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* ---- threaded: readers on big values while the writer replaces/evicts ---- */

#define TK 160 /* keys: their values need more than the arena, so they evict */
typedef struct {
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  _Atomic uint64_t *ack;
  _Atomic int *stop;
  _Atomic int *hit_seen;
  uint64_t hits, seed;
  int rc;
} targ_t;

static void *t_reader(void *p) {
  targ_t *a = p;
  uint8_t *buf = malloc(HZSHM_VALUE_MAX);
  uint64_t x = a->seed | 1;
  a->rc = buf ? 0 : 1;
  /* relaxed: a stop flag; the reader's findings are returned through join */
  while (buf && !a->rc && !atomic_load_explicit(a->stop, memory_order_relaxed)) {
    uint32_t k = (uint32_t)(rnd_next(&x) % TK);
    char key[16];
    key_of(key, k);
    uint64_t ack = atomic_load_explicit(&a->ack[k], memory_order_acquire); /* pairs with the writer's release */
    size_t n = 0;
    uint64_t ver = 0;
    int rc = hzshm__shm_r_get(a->r, &a->ref, key, strlen(key), buf, HZSHM_VALUE_MAX, &n);
    if (rc == HZSHM_EMISS) continue;
    if (rc != 0) a->rc = 2;
    else if (tv_check(buf, n, 0, k, &ver) != 0) a->rc = 3; /* torn, freed (poisoned) or foreign bytes */
    else if (ver < ack) a->rc = 4;                           /* an older value than the writer acknowledged */
    else if (a->hits++ == 0) atomic_store_explicit(a->hit_seen, 1, memory_order_relaxed); /* a flag: no data */
  }
  free(buf);
  return NULL;
}

TEST_CASE(big_threaded) {
  const char *name = t_name("bthr");
  hzshm__shm_config_t c = cfg_mem(BIG_MEM);
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  static _Atomic uint64_t ack[TK];
  static _Atomic int stop, hit_seen;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  hzshm__shm_w_set_poison(w, 1);
  enum { NR = 2 };
  targ_t ta[NR];
  pthread_t th[NR];
  for (int i = 0; i < NR; i++) {
    ta[i] = (targ_t){.r = r, .ref = ref, .ack = ack, .stop = &stop, .hit_seen = &hit_seen,
                     .seed = 0x9e37u * (uint64_t)(i + 1)};
    CHECK_EQ(pthread_create(&th[i], NULL, t_reader, &ta[i]), 0);
  }
  static const size_t sizes[] = {100, 70000, 300 << 10, HZSHM_VALUE_MAX, HZSHM_VALUE_MAX};
  uint64_t x = 0x1234567ull, fails = 0;
  for (uint64_t v = 1; v <= 400; v++) {
    uint64_t rr = rnd_next(&x);
    uint32_t k = (uint32_t)(rr % TK);
    int rc = put_n(w, &ref, k, v, sizes[(rr >> 32) % 5]);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL); /* a reader inside its section can hold memory back */
    fails += rc != 0;
    atomic_store_explicit(&ack[k], v, memory_order_release); /* pairs with the reader's acquire; put done */
    if (v % 64 == 0) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  }
  /* On a loaded machine (TSan, 2 cores) the readers may not have run yet:
   * keep the segment as it is until one of them had a hit (deadline 60 s). */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (!atomic_load_explicit(&hit_seen, memory_order_relaxed)) { /* relaxed: a flag, the join orders the rest */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_LT(t1.tv_sec - t0.tv_sec, 60);
    sched_yield();
  }
  atomic_store_explicit(&stop, 1, memory_order_relaxed); /* the join orders the rest */
  uint64_t hits = 0;
  for (int i = 0; i < NR; i++) {
    CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_RC(ta[i].rc, 0);
    hits += ta[i].hits;
  }
  hzshm__shm_stats_t st;
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "threaded: reader hits %llu, evictions %llu, puts not cached %llu\n", (unsigned long long)hits,
          (unsigned long long)st.evictions, (unsigned long long)fails);
  CHECK_GT(hits, 0);
  CHECK_GT(st.evictions, 0);
  CHECK_EQ(st.retired_pending, 0);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

TEST_SETUP {
  vbuf = malloc(HZSHM_VALUE_MAX);
  rbuf = malloc(HZSHM_VALUE_MAX);
  ebuf = malloc(HZSHM_VALUE_MAX);
  CHECK(vbuf && rbuf && ebuf);
}

TEST_TEARDOWN {
  free(vbuf);
  free(rbuf);
  free(ebuf);
}
