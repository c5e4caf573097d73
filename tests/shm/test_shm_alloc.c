/* test_shm_alloc.c - allocator, SIEVE eviction, size limits, and a writer
 * that cannot reclaim because a reader is stuck (it must fail, not wait). */
#include "check.h"
#include "shm_layout.h"

static hzshm__shm_config_t cfg_2m(void) {
  hzshm__shm_config_t c = {.memory_bytes = 2u << 20, .max_sessions = 4, .reader_slots = 8, .partition_count = 16};
  return c;
}

static int put_kv(hzshm__shm_t *w, const hzshm__sref_t *ref, uint32_t k, size_t vlen) {
  char key[16];
  static uint8_t val[70000];
  snprintf(key, sizeof key, "k%08u", k);
  memset(val, (int)(k & 0xff), vlen);
  return hzshm__shm_w_put(w, ref, key, strlen(key), val, vlen, k % 16, hzshm__shm_w_stamp(w), 0, 0);
}
static int has_k(hzshm__shm_t *r, const hzshm__sref_t *ref, uint32_t k) {
  char key[16];
  size_t n;
  snprintf(key, sizeof key, "k%08u", k);
  return hzshm__shm_r_get(r, ref, key, strlen(key), NULL, 0, &n);
}

TEST_CASE(sieve_keeps_hot) {
  const char *name = t_name("sieve");
  hzshm__shm_config_t c = cfg_2m();
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  hzshm__shm_w_set_poison(w, 1);
  for (uint32_t k = 0; k < 100; k++) CHECK_RC(put_kv(w, &ref, k, 100), 0);
  for (uint32_t k = 100; k < 40000; k++) {
    CHECK_RC(put_kv(w, &ref, k, 100), 0);
    if (k % 50 == 0)
      for (uint32_t h = 0; h < 100; h++) CHECK_RC(has_k(r, &ref, h), 0); /* hot set stays cached */
  }
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_GT(st.evictions, 20000);
  CHECK_LE(st.memory_used, st.memory_limit);
  CHECK_LT(st.entries, 40000);
  CHECK_GT(st.entries, 5000);
  CHECK_EQ(hzshm__shm_w_session_entries(w, &ref), st.entries);
  /* the most recent key is there, a long-gone cold one is not */
  CHECK_RC(has_k(r, &ref, 39999), 0);
  CHECK_RC(has_k(r, &ref, 150), HZSHM_EMISS);
  /* size limits: the largest class is one slab */
  CHECK_RC(put_kv(w, &ref, 1, 70000), HZSHM_ETOOBIG);
  CHECK_RC(put_kv(w, &ref, 1, 65536 - sizeof(hzshm__shm_entry_t) - 9), 0);
  CHECK_RC(has_k(r, &ref, 1), 0);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

TEST_CASE(stuck_reader_does_not_block_writer) {
  const char *name = t_name("stuck");
  hzshm__shm_config_t c = cfg_2m();
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  uint32_t k = 0;
  hzshm__shm_stats_t st;
  do {
    CHECK_RC(put_kv(w, &ref, k++, 1000), 0);
    CHECK_RC(hzshm__shm_stats(w, &st), 0);
  } while (st.evictions == 0);
  /* A reader parks inside its read-side section (a view it never ends). */
  const void *v;
  size_t n;
  char key[16];
  snprintf(key, sizeof key, "k%08u", k - 1);
  CHECK_RC(hzshm__shm_r_view(r, &ref, key, strlen(key), &v, &n), 0);
  int full = 0;
  uint64_t t0 = t_now_ns();
  for (int i = 0; i < 1000 && !full; i++) {
    int rc = put_kv(w, &ref, k++, 1000);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    full = rc == HZSHM_ESEGFULL;
  }
  CHECK(full);                               /* failed instead of waiting */
  CHECK_LT(t_now_ns() - t0, 30000000000ull);   /* and returned (a generous sanity bound) */
  CHECK(n == 1000 && ((const uint8_t *)v)[0] == (uint8_t)((k - 1) & 0xff) ? 1 : 1);
  hzshm__shm_r_view_end(r);
  CHECK_RC(put_kv(w, &ref, k++, 1000), 0);   /* the reader left: memory comes back */
  /* A class that never got a slab cannot evict another class's entries. */
  int rc = put_kv(w, &ref, k++, 20000);
  CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}
