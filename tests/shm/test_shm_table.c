/* test_shm_table.c - unit tests of the table, sessions, TTL, partition
 * staleness, statistics and small writer facilities. One writer handle and
 * one reader handle (a second mapping) in this process. */
#include <pthread.h>

#include "check.h"
#include "shm_int.h" /* white-box: the socket path's sequence word */

static hzshm__shm_config_t small_cfg(void) {
  hzshm__shm_config_t c = {.memory_bytes = 8u << 20, .max_sessions = 64, .reader_slots = 16, .partition_count = 271};
  return c;
}

typedef struct {
  const char *name;
  hzshm__shm_t *w, *r;
} seg_t;

static seg_t seg_open(const char *tag, hzshm__shm_config_t c) {
  seg_t g = {t_name(tag), NULL, NULL};
  int reused = -1;
  CHECK_RC(hzshm__shm_w_open(g.name, &c, 0, &g.w, &reused), 0);
  CHECK_EQ(reused, 0);
  CHECK_RC(hzshm__shm_r_attach(g.name, &g.r), 0);
  return g;
}
static void seg_close(seg_t *g) {
  hzshm__shm_close(g->r);
  hzshm__shm_close(g->w);
  CHECK_RC(hzshm__shm_unlink(g->name), 0);
}

static int get_str(hzshm__shm_t *s, const hzshm__sref_t *ref, const char *key, char *buf, size_t cap) {
  size_t n = 0;
  memset(buf, 0, cap);
  return hzshm__shm_r_get(s, ref, key, strlen(key), buf, cap - 1, &n);
}
static int put_str(hzshm__shm_t *w, const hzshm__sref_t *ref, const char *key, const char *val) {
  return hzshm__shm_w_put(w, ref, key, strlen(key), val, strlen(val), 7, hzshm__shm_w_stamp(w), 0, 0);
}

TEST_CASE(insert_replace_delete) {
  seg_t g = seg_open("tbl", small_cfg());
  hzshm__sref_t ref, rref;
  char buf[256];
  CHECK_RC(hzshm__shm_r_session(g.r, "sess-A", 6, &rref), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_w_session(g.w, "sess-A", 6, &ref), 0);
  CHECK_NE(ref.gen, 0);
  CHECK_RC(hzshm__shm_r_session(g.r, "sess-A", 6, &rref), 0);
  CHECK_EQ(rref.idx, ref.idx);
  CHECK_EQ(rref.gen, ref.gen);
  CHECK_RC(get_str(g.r, &rref, "k1", buf, sizeof buf), HZSHM_EMISS);
  CHECK_RC(put_str(g.w, &ref, "k1", "value-one"), 0);
  CHECK_RC(get_str(g.r, &rref, "k1", buf, sizeof buf), 0);
  CHECK_STREQ(buf, "value-one");
  size_t n = 0;
  CHECK_RC(hzshm__shm_r_get(g.r, &rref, "k1", 2, NULL, 0, &n), 0); /* has */
  CHECK_EQ(n, 9);
  CHECK_RC(hzshm__shm_r_get(g.r, &rref, "k1", 2, buf, 3, &n), HZSHM_EBUFSIZE);
  CHECK_EQ(n, 9);
  CHECK_RC(put_str(g.w, &ref, "k1", "value-two-longer"), 0); /* replace */
  CHECK_RC(get_str(g.r, &rref, "k1", buf, sizeof buf), 0);
  CHECK_STREQ(buf, "value-two-longer");
  const void *v = NULL;
  CHECK_RC(hzshm__shm_r_view(g.r, &rref, "k1", 2, &v, &n), 0);
  CHECK_EQ(n, 16);
  CHECK_MEMEQ(v, "value-two-longer", 16);
  hzshm__shm_r_view_end(g.r);
  CHECK_EQ(hzshm__shm_w_session_entries(g.w, &ref), 1);
  /* many keys in one session, all readable */
  for (int i = 0; i < 2000; i++) {
    char k[32], val[32];
    snprintf(k, sizeof k, "key-%d", i);
    snprintf(val, sizeof val, "val-%d", i * 3);
    CHECK_RC(put_str(g.w, &ref, k, val), 0);
  }
  for (int i = 0; i < 2000; i++) {
    char k[32], val[32];
    snprintf(k, sizeof k, "key-%d", i);
    snprintf(val, sizeof val, "val-%d", i * 3);
    CHECK_RC(get_str(g.r, &rref, k, buf, sizeof buf), 0);
    CHECK_STREQ(buf, val);
  }
  CHECK_EQ(hzshm__shm_w_session_entries(g.w, &ref), 2001);
  CHECK_RC(hzshm__shm_w_del(g.w, &ref, "k1", 2), 0);
  CHECK_RC(get_str(g.r, &rref, "k1", buf, sizeof buf), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_w_del(g.w, &ref, "k1", 2), HZSHM_ENOTFOUND);
  /* negative entry: has false, get ENOTFOUND */
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "absent", 6, NULL, 0, 3, hzshm__shm_w_stamp(g.w), 0, HZSHM_SHM_NEGATIVE), 0);
  CHECK_RC(get_str(g.r, &rref, "absent", buf, sizeof buf), HZSHM_ENOTFOUND);
  CHECK_RC(hzshm__shm_r_get(g.r, &rref, "absent", 6, NULL, 0, &n), HZSHM_ENOTFOUND);
  /* value types: a String entry says so on get and view, a byte[] one does not;
   * the key matches whatever the type bit (it is not part of the length) */
  uint32_t vf = 99;
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "str", 3, "h\xc3\xa9", 3, 3, hzshm__shm_w_stamp(g.w), 0, HZSHM_SHM_STRING), 0);
  CHECK_RC(hzshm__shm_r_get_typed(g.r, &rref, "str", 3, buf, sizeof buf, &n, &vf), 0);
  CHECK(n == 3 && memcmp(buf, "h\xc3\xa9", 3) == 0 && vf == HZSHM_SHM_STRING);
  vf = 99;
  CHECK_RC(hzshm__shm_r_get_typed(g.r, &rref, "str", 3, buf, 1, &n, &vf), HZSHM_EBUFSIZE);
  CHECK(n == 3 && vf == HZSHM_SHM_STRING);
  vf = 99;
  CHECK_RC(hzshm__shm_r_view_typed(g.r, &rref, "str", 3, &v, &n, &vf), 0);
  CHECK(n == 3 && vf == HZSHM_SHM_STRING);
  hzshm__shm_r_view_end(g.r);
  CHECK_RC(hzshm__shm_r_get_typed(g.r, &rref, "key-7", 5, buf, sizeof buf, &n, &vf), 0);
  CHECK(vf == 0);
  CHECK_RC(hzshm__shm_r_view_typed(g.r, &rref, "key-7", 5, &v, &n, &vf), 0);
  CHECK(vf == 0);
  hzshm__shm_r_view_end(g.r);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "str", 3, "b", 1, 3, hzshm__shm_w_stamp(g.w), 0, 0), 0); /* replace: byte[] */
  CHECK_RC(hzshm__shm_r_get_typed(g.r, &rref, "str", 3, buf, sizeof buf, &n, &vf), 0);
  CHECK(n == 1 && vf == 0);
  CHECK(hzshm__shm_w_session_entries(g.w, &ref) == 2002);
  CHECK_RC(hzshm__shm_w_del(g.w, &ref, "str", 3), 0);
  /* bad flags change nothing */
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "str", 3, NULL, 0, 3, 1, 0, HZSHM_SHM_NEGATIVE | HZSHM_SHM_STRING), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "str", 3, "x", 1, 3, 1, 0, 4), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_r_get(g.r, &rref, "str", 3, buf, sizeof buf, &n), HZSHM_EMISS);
  /* the writer handle reads too */
  CHECK_RC(get_str(g.w, &ref, "key-5", buf, sizeof buf), 0);
  CHECK_STREQ(buf, "val-15");
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(g.r, &st), 0);
  CHECK_EQ(st.entries, 2001);
  CHECK_EQ(st.sessions, 1);
  seg_close(&g);
}

TEST_CASE(sessions) {
  seg_t g = seg_open("ses", small_cfg());
  hzshm__sref_t a, b, a2, ra;
  char buf[64];
  CHECK_RC(hzshm__shm_w_session(g.w, "A", 1, &a), 0);
  CHECK_RC(hzshm__shm_w_session(g.w, "B", 1, &b), 0);
  CHECK_NE(a.gen, b.gen);
  CHECK_NE(a.idx, b.idx);
  CHECK_RC(put_str(g.w, &a, "k", "in-A"), 0);
  CHECK_RC(put_str(g.w, &b, "k", "in-B"), 0);
  CHECK_RC(get_str(g.r, &a, "k", buf, sizeof buf), 0);
  CHECK_STREQ(buf, "in-A");
  CHECK_RC(get_str(g.r, &b, "k", buf, sizeof buf), 0);
  CHECK_STREQ(buf, "in-B");
  /* clear (keep): one store hides the entries; the old ref is stale */
  CHECK_RC(hzshm__shm_w_session_drop(g.w, &a, 1, &a2), 0);
  CHECK_EQ(a2.idx, a.idx);
  CHECK_NE(a2.gen, a.gen);
  CHECK_NE(a2.gen, 0);
  CHECK_RC(get_str(g.r, &a, "k", buf, sizeof buf), HZSHM_ESESSION);
  CHECK_RC(get_str(g.r, &a2, "k", buf, sizeof buf), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_r_session(g.r, "A", 1, &ra), 0);
  CHECK_EQ(ra.gen, a2.gen);
  CHECK_RC(get_str(g.r, &b, "k", buf, sizeof buf), 0); /* B untouched */
  CHECK_RC(hzshm__shm_w_put(g.w, &a, "x", 1, "y", 1, 0, 1, 0, 0), HZSHM_ESESSION);
  /* destroy */
  CHECK_RC(hzshm__shm_w_session_drop(g.w, &b, 0, NULL), 0);
  CHECK_RC(hzshm__shm_r_session(g.r, "B", 1, &ra), HZSHM_EMISS);
  CHECK_RC(get_str(g.r, &b, "k", buf, sizeof buf), HZSHM_ESESSION);
  CHECK_RC(hzshm__shm_w_session_drop(g.w, &b, 0, NULL), HZSHM_ESESSION);
  /* sweep removes the hidden entries */
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(g.w, &st), 0);
  CHECK_EQ(st.entries, 2);
  CHECK_EQ(st.sessions, 1);
  for (int i = 0; i < 64; i++) CHECK_RC(hzshm__shm_w_maintain(g.w), 0); /* bounded work per call */
  CHECK_RC(hzshm__shm_stats(g.w, &st), 0);
  CHECK_EQ(st.entries, 0);
  CHECK_EQ(st.retired_pending, 0);
  /* directory reuse: many more create/destroy cycles than slots */
  for (int i = 0; i < 1000; i++) {
    char sid[32];
    hzshm__sref_t r;
    snprintf(sid, sizeof sid, "cycle-%d", i);
    CHECK_RC(hzshm__shm_w_session(g.w, sid, strlen(sid), &r), 0);
    CHECK_RC(put_str(g.w, &r, "k", sid), 0);
    CHECK_RC(get_str(g.r, &r, "k", buf, sizeof buf), 0);
    CHECK_STREQ(buf, sid);
    CHECK_RC(hzshm__shm_w_session_drop(g.w, &r, 0, NULL), 0);
    if (i % 16 == 0) CHECK_RC(hzshm__shm_w_maintain(g.w), 0);
  }
  /* a full directory reports ESEGFULL, not a crash */
  int full = 0;
  for (int i = 0; i < 70 && !full; i++) {
    char sid[32];
    hzshm__sref_t r;
    snprintf(sid, sizeof sid, "fill-%d", i);
    int rc = hzshm__shm_w_session(g.w, sid, strlen(sid), &r);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    full = rc == HZSHM_ESEGFULL;
  }
  CHECK(full);
  /* 255-byte session ids work; equal prefixes are different sessions */
  CHECK_RC(hzshm__shm_w_clear_all(g.w), 0);
  CHECK_RC(hzshm__shm_w_maintain(g.w), 0);
  char big[256];
  memset(big, 'z', 255);
  big[255] = 0;
  hzshm__sref_t r1, r2, rr;
  CHECK_RC(hzshm__shm_w_session(g.w, big, 255, &r1), 0);
  CHECK_RC(hzshm__shm_w_session(g.w, big, 254, &r2), 0);
  CHECK_NE(r1.gen, r2.gen);
  CHECK_RC(hzshm__shm_r_session(g.r, big, 255, &rr), 0);
  CHECK_EQ(rr.gen, r1.gen);
  seg_close(&g);
}

TEST_CASE(ttl) {
  seg_t g = seg_open("ttl", small_cfg());
  hzshm__sref_t ref;
  char buf[64];
  CHECK_RC(hzshm__shm_w_session(g.w, "T", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "short", 5, "v", 1, 1, hzshm__shm_w_stamp(g.w), 30, 0), 0);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "long", 4, "v", 1, 1, hzshm__shm_w_stamp(g.w), 600000, 0), 0);
  CHECK_RC(get_str(g.r, &ref, "long", buf, sizeof buf), 0);
  WAIT_UNTIL(get_str(g.r, &ref, "short", buf, sizeof buf) == HZSHM_EMISS, 5000);
  CHECK_RC(get_str(g.r, &ref, "long", buf, sizeof buf), 0);
  hzshm__shm_stats_t st;
  for (int i = 0; i < 64; i++) hzshm__shm_w_maintain(g.w);
  CHECK_RC(hzshm__shm_stats(g.w, &st), 0);
  CHECK_EQ(st.expirations, 1);
  CHECK_EQ(st.entries, 1);
  seg_close(&g);
}

TEST_CASE(partition_stale) {
  seg_t g = seg_open("part", small_cfg());
  hzshm__sref_t ref;
  char buf[64];
  CHECK_RC(hzshm__shm_w_session(g.w, "P", 1, &ref), 0);
  uint64_t st1 = hzshm__shm_w_stamp(g.w);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "a", 1, "1", 1, 5, st1, 0, 0), 0);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "b", 1, "2", 1, 6, st1, 0, 0), 0);
  uint64_t st2 = hzshm__shm_w_stamp(g.w); /* reserved before the invalidation */
  CHECK_GT(st2, st1);
  CHECK_RC(get_str(g.r, &ref, "a", buf, sizeof buf), 0);
  CHECK_RC(hzshm__shm_w_partition_stale(g.w, 5), 0);
  CHECK_RC(get_str(g.r, &ref, "a", buf, sizeof buf), HZSHM_EMISS);
  CHECK_RC(get_str(g.r, &ref, "b", buf, sizeof buf), 0); /* other partition */
  /* a fill whose stamp predates the mark is a miss too (raced an invalidation) */
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "a", 1, "3", 1, 5, st2, 0, 0), 0);
  CHECK_RC(get_str(g.r, &ref, "a", buf, sizeof buf), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_w_put(g.w, &ref, "a", 1, "4", 1, 5, hzshm__shm_w_stamp(g.w), 0, 0), 0);
  CHECK_RC(get_str(g.r, &ref, "a", buf, sizeof buf), 0);
  CHECK_STREQ(buf, "4");
  uint8_t uuid[16] = {1, 2, 3};
  CHECK_RC(hzshm__shm_w_partition_uuid(g.w, 5, uuid), 0);
  CHECK_RC(hzshm__shm_w_partition_stale(g.w, 271), HZSHM_EINVAL);
  seg_close(&g);
}

TEST_CASE(stats_and_misc) {
  seg_t g = seg_open("stat", small_cfg());
  hzshm__sref_t ref;
  char buf[128];
  CHECK_RC(hzshm__shm_w_session(g.w, "S", 1, &ref), 0);
  CHECK_RC(put_str(g.w, &ref, "k", "v"), 0);
  for (int i = 0; i < 10; i++) CHECK_RC(get_str(g.r, &ref, "k", buf, sizeof buf), 0);
  for (int i = 0; i < 4; i++) CHECK_RC(get_str(g.r, &ref, "nope", buf, sizeof buf), HZSHM_EMISS);
  hzshm__shm_r_count_miss(g.r);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(g.r, &st), 0);
  CHECK_EQ(st.hits, 10);
  CHECK_EQ(st.misses, 5);
  CHECK_EQ(st.readers, 1);
  CHECK_EQ(st.writer_pid, (int32_t)getpid());
  CHECK_EQ(st.writer_generation, 1);
  CHECK_EQ(st.state, HZSHM_SHM_SERVING);
  CHECK_GT(st.memory_used, 0);
  CHECK_LE(st.memory_used, st.memory_limit);
  hzshm__shm_w_agent_counter(g.w, 3, 42);
  CHECK_EQ(hzshm__shm_agent_counter(g.r, 3), 42);
  CHECK_EQ(hzshm__shm_agent_counter(g.r, 99), 0);
  CHECK_RC(hzshm__shm_socket(g.r, buf, sizeof buf), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_w_set_socket(g.w, "/run/hzshm/agent.sock"), 0);
  CHECK_RC(hzshm__shm_socket(g.r, buf, sizeof buf), 0);
  CHECK_STREQ(buf, "/run/hzshm/agent.sock");
  CHECK_RC(hzshm__shm_socket(g.r, buf, 4), HZSHM_EBUFSIZE);
  /* clear_all */
  CHECK_RC(hzshm__shm_w_clear_all(g.w), 0);
  CHECK_RC(get_str(g.r, &ref, "k", buf, sizeof buf), HZSHM_ESESSION);
  CHECK_RC(hzshm__shm_r_session(g.r, "S", 1, &ref), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_w_maintain(g.w), 0);
  CHECK_RC(hzshm__shm_stats(g.r, &st), 0);
  CHECK_EQ(st.entries, 0);
  CHECK_EQ(st.sessions, 0);
  CHECK_EQ(st.memory_used, 0);
  CHECK_EQ(st.retired_pending, 0);
  seg_close(&g);
}

typedef struct {
  hzshm__shm_t *r;
  hzshm__sref_t ref;
  int rc;
} busy_t;
/* A writer killed inside w_set_socket leaves socket_seq odd ("being
 * written"). The next writer's w_set_socket must still publish (an even
 * sequence at its end), else readers saw HZSHM_EBUSY until yet another
 * set_socket: the old code stored seq + 1 (even) as its busy mark and
 * seq + 2 (odd) as its end. */
TEST_CASE(socket_after_killed_writer) {
  seg_t g = seg_open("sock", small_cfg());
  char buf[128];
  CHECK_RC(hzshm__shm_w_set_socket(g.w, "/run/a.sock"), 0);
  uint64_t seq = atomic_load(&g.w->hdr->socket_seq);
  CHECK_EQ(seq & 1, 0);
  atomic_store(&g.w->hdr->socket_seq, seq + 1); /* killed after its first store */
  CHECK_RC(hzshm__shm_socket(g.r, buf, sizeof buf), HZSHM_EBUSY);
  CHECK_RC(hzshm__shm_w_set_socket(g.w, "/run/b.sock"), 0); /* the restarted writer */
  CHECK_EQ(atomic_load(&g.w->hdr->socket_seq) & 1, 0);
  CHECK_GT(atomic_load(&g.w->hdr->socket_seq), seq + 1); /* never an earlier value again */
  CHECK_RC(hzshm__shm_socket(g.r, buf, sizeof buf), 0);
  CHECK_STREQ(buf, "/run/b.sock");
  seg_close(&g);
}

static void *busy_main(void *p) {
  busy_t *b = p;
  size_t n;
  b->rc = hzshm__shm_r_get(b->r, &b->ref, "k", 1, NULL, 0, &n);
  return NULL;
}

TEST_CASE(no_free_slot) {
  hzshm__shm_config_t c = small_cfg();
  c.reader_slots = 2;
  seg_t g = seg_open("busy", c);
  busy_t b = {g.r, {0, 0}, 0};
  char buf[16];
  CHECK_RC(hzshm__shm_w_session(g.w, "s", 1, &b.ref), 0);
  CHECK_RC(put_str(g.w, &b.ref, "k", "v"), 0);
  CHECK_RC(get_str(g.r, &b.ref, "k", buf, sizeof buf), 0); /* slot 1: this thread, reader handle */
  CHECK_RC(get_str(g.w, &b.ref, "k", buf, sizeof buf), 0); /* slot 2: this thread, writer handle */
  pthread_t t;
  CHECK_EQ(pthread_create(&t, NULL, busy_main, &b), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_RC(b.rc, HZSHM_EBUSY);
  hzshm__shm_close(g.w); /* frees a slot */
  g.w = NULL;
  CHECK_EQ(pthread_create(&t, NULL, busy_main, &b), 0);
  CHECK_EQ(pthread_join(t, NULL), 0);
  CHECK_RC(b.rc, HZSHM_ESTOPPED); /* got a slot; the writer is gone */
  seg_close(&g);
}
