/* test_shm_harden.c - regression tests for the segment defects of issue 10
 * (writer side): the directory free list pushed twice (dir_reset, reclaim),
 * a rebuild after a writer killed in the middle of a session drop, chains
 * longer than the readers' walk bound and colliding keys (keyed hash), and
 * the version checks of validated hits (test_shm_validate stresses them). The
 * internal API (shm_int.h) is used to inspect and to craft crash states. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* unshare (as check.h) */
#endif
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shm_int.h"

static hzshm__shm_config_t cfg(uint32_t sessions) {
  hzshm__shm_config_t c = {.memory_bytes = 4u << 20, .max_sessions = sessions, .reader_slots = 8,
                           .partition_count = 271};
  return c;
}

/* Every directory slot is handed out at most once: fill the directory and
 * check that all slots differ and that each session keeps its own value. */
static void fill_directory(hzshm__shm_t *w, uint32_t n) {
  hzshm__sref_t *refs = calloc(n, sizeof *refs);
  CHECK(refs);
  for (uint32_t i = 0; i < n; i++) {
    char sid[32];
    snprintf(sid, sizeof sid, "fill-%u", i);
    CHECK_RC(hzshm__shm_w_session(w, sid, strlen(sid), &refs[i]), 0);
    for (uint32_t j = 0; j < i; j++) CHECK_NE(refs[j].idx, refs[i].idx);
    CHECK_RC(hzshm__shm_w_put(w, &refs[i], "k", 1, sid, strlen(sid), 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  }
  hzshm__sref_t extra;
  CHECK_RC(hzshm__shm_w_session(w, "one-too-many", 12, &extra), HZSHM_ESEGFULL);
  for (uint32_t i = 0; i < n; i++) {
    char sid[32], buf[32];
    size_t len = 0;
    snprintf(sid, sizeof sid, "fill-%u", i);
    CHECK_RC(hzshm__shm_r_get(w, &refs[i], "k", 1, buf, sizeof buf, &len), 0);
    CHECK_EQ(len, strlen(sid));
    CHECK_MEMEQ(buf, sid, len);
  }
  free(refs);
}

/* A writer of segment `name` (config c) with session `sid` in *ref. */
static hzshm__shm_t *open_session(const char *name, const hzshm__shm_config_t *c, const char *sid, hzshm__sref_t *ref) {
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_session(w, sid, strlen(sid), ref), 0);
  return w;
}

/* Closes w and unlinks its segment (which must exist). */
static void close_unlink(hzshm__shm_t *w, const char *name) {
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* Defect 1: a session dropped with keep=0 sits on the retire list; clear_all
 * before it is reclaimed must not put its slot on the free list a second
 * time (old code: heap overflow in reclaim, then two sessions on one slot). */
TEST_CASE(dir_double_push) {
  const char *name = t_name("dirpush");
  hzshm__shm_config_t c = cfg(8);
  hzshm__shm_t *w;
  hzshm__sref_t a, b;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_session(w, "a", 1, &a), 0);
  CHECK_RC(hzshm__shm_w_session(w, "b", 1, &b), 0);
  CHECK_RC(hzshm__shm_w_session_drop(w, &a, 0, NULL), 0); /* retired, not reclaimed yet */
  CHECK_RC(hzshm__shm_w_clear_all(w), 0);
  CHECK_RC(hzshm__shm_w_maintain(w), 0); /* reclaims the retired slots */
  CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_EQ(w->w->ndirfree, w->dir_count);
  fill_directory(w, w->dir_count);
  close_unlink(w, name);
}

/* The name chains of the directory: every linked record is live, lies in
 * the chain of its own name hash and is linked exactly once (no loops, no
 * record in two chains). */
static void check_dir_chains(hzshm__shm_t *s) {
  uint8_t *seen = calloc(s->dir_count, 1);
  CHECK(seen);
  for (uint32_t b = 0; b <= s->dirix_mask; b++) {
    uint32_t v = atomic_load(&s->dirix[b]);
    while (v) {
      CHECK_LT(v - 1, s->dir_count);
      hzshm__shm_dirent_t *r = &s->dir[v - 1];
      CHECK(!seen[v - 1]);
      seen[v - 1] = 1;
      CHECK_NE(atomic_load(&r->gen), 0);
      CHECK_EQ((atomic_load(&r->name_hash) & s->dirix_mask), b);
      v = atomic_load(&r->next);
    }
  }
  free(seen);
}

static uint32_t sid_bucket(hzshm__shm_t *s, const char *sid) {
  return (uint32_t)(hzshm__shm_key_hash(s, sid, strlen(sid), HZSHM__SID_SEED) & s->dirix_mask);
}

/* A writer killed between two stores: `craft` runs as the segment's writer
 * in a child process, leaves the state to test (0, or a nonzero exit code
 * when a step failed), and the child is SIGKILLed there. Then a new writer
 * reopens (reuses and rebuilds) the segment. */
typedef int (*craft_fn)(hzshm__shm_t *cw, void *ctx);
static hzshm__shm_t *killed_writer_then_reopen(const char *name, const hzshm__shm_config_t *c, craft_fn craft,
                                               void *ctx) {
  int pfd[2];
  CHECK_EQ(pipe(pfd), 0);
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    t_child_dies_with_parent();
    hzshm__shm_t *cw;
    if (hzshm__shm_w_open(name, c, 0, &cw, NULL) != 0) _exit(2);
    int rc = craft(cw, ctx);
    if (rc != 0) _exit(rc);
    if (write(pfd[1], "r", 1) != 1) _exit(3);
    for (;;) pause();
  }
  close(pfd[1]); /* a child that exits early (craft failed) ends the read */
  pfd[1] = -1;
  char ch;
  CHECK_EQ(read(pfd[0], &ch, 1), 1);
  kill(pid, SIGKILL);
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFSIGNALED(status));
  close(pfd[0]);
  hzshm__shm_t *w;
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 1);
  return w;
}

/* Three sessions in one name chain, then the first store of a keep=0 drop
 * of the middle one (w_session_drop: gen = 0, then the unlink). */
static int craft_half_drop(hzshm__shm_t *cw, void *ctx) {
  char(*n)[16] = ctx;
  hzshm__sref_t r[3];
  for (int i = 0; i < 3; i++) {
    if (hzshm__shm_w_session(cw, n[i], strlen(n[i]), &r[i]) != 0) return 10;
    if (hzshm__shm_w_put(cw, &r[i], "k", 1, n[i], strlen(n[i]), 0, hzshm__shm_w_stamp(cw), 0, 0) != 0) return 11;
  }
  atomic_store_explicit(&cw->dir[r[1].idx].gen, 0, memory_order_release);
  return 0;
}

/* Defect 6: a writer killed between the two stores of a keep=0 drop leaves a
 * record with gen 0 that is still linked in its name chain. The restart
 * must unlink it before the slot is reused (old code: it went straight onto
 * the free list, and its reuse cross-linked the chains). */
TEST_CASE(rebuild_half_drop) {
  const char *name = t_name("halfdrop");
  hzshm__shm_config_t c = cfg(8);
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  /* three session names in one name chain: head -> n[2] -> n[1] -> n[0] */
  char n[3][16];
  int found = 0;
  uint32_t want = 0;
  for (int i = 0; found < 3; i++) {
    char sid[16];
    snprintf(sid, sizeof sid, "s%d", i);
    if (found == 0) want = sid_bucket(w, sid);
    if (sid_bucket(w, sid) == want) memcpy(n[found++], sid, sizeof sid);
  }
  hzshm__shm_close(w);
  w = killed_writer_then_reopen(name, &c, craft_half_drop, n);
  check_dir_chains(w);
  hzshm__sref_t a, b, d;
  CHECK_RC(hzshm__shm_r_session(w, n[0], strlen(n[0]), &a), 0);
  CHECK_RC(hzshm__shm_r_session(w, n[2], strlen(n[2]), &b), 0);
  CHECK_RC(hzshm__shm_r_session(w, n[1], strlen(n[1]), &d), HZSHM_EMISS);
  /* fill the directory: the half-dropped slot gets reused */
  uint32_t left = w->dir_count - 2;
  hzshm__sref_t *refs = calloc(left, sizeof *refs);
  CHECK(refs);
  for (int pass = 0; pass < 2; pass++) { /* the slot is retired first: reclaim, then reuse */
    for (uint32_t i = 0; i < left; i++) {
      char sid[32];
      snprintf(sid, sizeof sid, "new-%u", i);
      int rc = hzshm__shm_w_session(w, sid, strlen(sid), &refs[i]);
      CHECK(rc == 0 || (pass == 0 && rc == HZSHM_ESEGFULL));
    }
    CHECK_RC(hzshm__shm_w_maintain(w), 0);
  }
  for (uint32_t i = 0; i < left; i++) CHECK(refs[i].idx != a.idx && refs[i].idx != b.idx);
  check_dir_chains(w);
  hzshm__sref_t a2, b2;
  CHECK_RC(hzshm__shm_w_session(w, n[0], strlen(n[0]), &a2), 0); /* found, not created again */
  CHECK_RC(hzshm__shm_w_session(w, n[2], strlen(n[2]), &b2), 0);
  CHECK_EQ(a2.idx, a.idx);
  CHECK_EQ(a2.gen, a.gen);
  CHECK_EQ(b2.idx, b.idx);
  CHECK_EQ(b2.gen, b.gen);
  char buf[16];
  size_t len = 0;
  CHECK_RC(hzshm__shm_r_get(w, &a, "k", 1, buf, sizeof buf, &len), 0);
  CHECK_EQ(len, strlen(n[0]));
  CHECK_MEMEQ(buf, n[0], len);
  CHECK_RC(hzshm__shm_r_get(w, &b, "k", 1, buf, sizeof buf, &len), 0);
  CHECK_EQ(len, strlen(n[2]));
  CHECK_MEMEQ(buf, n[2], len);
  free(refs);
  close_unlink(w, name);
}

/* Three sessions (slots 0, 1, 2), the first store of a keep=0 drop of slot
 * 1, and slot 2's generation scribbled beyond next_sgen: the restart's
 * directory loop (slot 2 first) finds the scribble and starts empty. */
static int craft_half_drop_then_corrupt(hzshm__shm_t *cw, void *ctx) {
  hzshm__sref_t *r = ctx;
  for (int i = 0; i < 3; i++) {
    char sid[8];
    snprintf(sid, sizeof sid, "h%d", i);
    if (hzshm__shm_w_session(cw, sid, strlen(sid), &r[i]) != 0 || r[i].idx != (uint32_t)i) return 10;
  }
  atomic_store_explicit(&cw->dir[1].gen, 0, memory_order_release);
  atomic_store_explicit(&cw->dir[2].gen, atomic_load(&cw->hdr->next_sgen) + 100, memory_order_release);
  return 0;
}

/* A restart that starts empty (the directory is corrupt) still treats a
 * record that a drop cut short left linked as a reader may stand on it:
 * it is retired, not freed at once (old code: dir_reset pushed it on the free
 * list, and the next new session took it under a reader that had been
 * walking the name chain through it). */
TEST_CASE(rebuild_half_drop_corrupt) {
  const char *name = t_name("halfdropbad");
  hzshm__shm_config_t c = cfg(8);
  hzshm__shm_t *w, *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  hzshm__shm_slot_t *sl = hzshm__shm_slot_get(r);
  CHECK(sl != NULL);
  hzshm__shm_rs_enter(r, sl); /* a reader inside a lookup all along */
  hzshm__sref_t refs[3];
  w = killed_writer_then_reopen(name, &c, craft_half_drop_then_corrupt, refs);
  CHECK_EQ(atomic_load(&w->hdr->sessions), 0); /* started empty */
  /* while the reader is inside, no slot a reader could reach is reused */
  for (uint32_t i = 0;; i++) {
    char sid[32];
    snprintf(sid, sizeof sid, "new-%u", i);
    hzshm__sref_t nr;
    int rc = hzshm__shm_w_session(w, sid, strlen(sid), &nr);
    if (rc == HZSHM_ESEGFULL) break;
    CHECK_RC(rc, 0);
    if (nr.idx <= 2) fprintf(stderr, "slot %u reused under the reader\n", nr.idx);
    CHECK_GT(nr.idx, 2);
  }
  hzshm__shm_rs_exit(r, sl);
  hzshm__sref_t nr;
  CHECK_RC(hzshm__shm_w_session(w, "after", 5, &nr), 0); /* once it left, the slots come back */
  CHECK_LE(nr.idx, 2);
  hzshm__shm_close(r);
  close_unlink(w, name);
}

/* Keys (8 bytes: a counter) whose hash under `hash` lands in bucket b. */
typedef uint64_t (*hash_fn)(hzshm__shm_t *s, const void *key, uint64_t gen);
static uint64_t *colliders(hzshm__shm_t *s, hash_fn hash, uint64_t gen, uint64_t b, uint32_t n) {
  uint64_t *keys = calloc(n, sizeof *keys);
  CHECK(keys);
  uint32_t found = 0;
  for (uint64_t i = 1; found < n; i++)
    if ((hash(s, &i, gen) & s->bucket_mask) == b) keys[found++] = i;
  return keys;
}
static uint64_t segment_hash(hzshm__shm_t *s, const void *key, uint64_t gen) {
  return hzshm__shm_key_hash(s, key, 8, gen);
}
static uint64_t unkeyed_hash(hzshm__shm_t *s, const void *key, uint64_t gen) {
  (void)s;
  return hzshm__shm_fold(key, 8, gen); /* the key hash before issue 10 */
}
static int put8(hzshm__shm_t *w, const hzshm__sref_t *ref, uint64_t key, const char *val) {
  return hzshm__shm_w_put(w, ref, &key, 8, val, strlen(val), 0, hzshm__shm_w_stamp(w), 0, 0);
}

/* Defect 3: more colliding keys than the old walk bound (4096). The old
 * writer could not see the deepest copy of a key: a put inserted a
 * duplicate, a del removed only that one, and once the chain got shorter
 * the deleted value was served again. Now a chain never exceeds
 * HZSHM__CHAIN_MAX: the surplus keys are refused and counted. The keys are
 * computed with the segment's secret, as a process that can read the
 * segment could. */
TEST_CASE(long_chain) {
  const char *name = t_name("chain");
  hzshm__shm_config_t c = cfg(8);
  c.memory_bytes = 2u << 20;
  hzshm__sref_t ref;
  hzshm__shm_t *w = open_session(name, &c, "s", &ref);
  const uint32_t n = 4096 + 64;
  const uint64_t k0 = 0; /* not among the colliders (they count from 1) */
  uint64_t b = segment_hash(w, &k0, ref.gen) & w->bucket_mask;
  uint64_t *keys = colliders(w, segment_hash, ref.gen, b, n);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING); /* the search took a while */
  CHECK_RC(put8(w, &ref, k0, "old"), 0);
  uint32_t cached = 0, refused = 0;
  for (uint32_t i = 0; i < n; i++) {
    int rc = put8(w, &ref, keys[i], "c");
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    if (rc == 0) cached++;
    else refused++;
  }
  CHECK_RC(put8(w, &ref, k0, "new"), 0);
  char buf[16];
  size_t len = 0;
  CHECK_RC(hzshm__shm_r_get(w, &ref, &k0, 8, buf, sizeof buf, &len), 0);
  CHECK_EQ(len, 3);
  CHECK_MEMEQ(buf, "new", 3);
  CHECK_RC(hzshm__shm_w_del(w, &ref, &k0, 8), 0);
  CHECK_RC(hzshm__shm_r_get(w, &ref, &k0, 8, buf, sizeof buf, &len), HZSHM_EMISS);
  for (uint32_t i = 0; i < n; i++) {
    int rc = hzshm__shm_w_del(w, &ref, &keys[i], 8);
    CHECK(rc == 0 || rc == HZSHM_ENOTFOUND);
  }
  CHECK_RC(hzshm__shm_r_get(w, &ref, &k0, 8, buf, sizeof buf, &len), HZSHM_EMISS); /* not served again */
  CHECK_RC(hzshm__shm_w_del(w, &ref, &k0, 8), HZSHM_ENOTFOUND);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_LE(cached + 1, HZSHM__CHAIN_MAX);
  CHECK_EQ(refused, n - cached);
  CHECK_EQ(st.chain_refused, refused);
  CHECK_EQ(st.chain_cut, 0);
  CHECK_EQ(st.entries, 0);
  /* the chain refills once it has room again */
  CHECK_RC(put8(w, &ref, k0, "v"), 0);
  CHECK_RC(hzshm__shm_r_get(w, &ref, &k0, 8, buf, sizeof buf, &len), 0);
  /* a full chain is pruned of a dropped session's entries before a put is refused */
  hzshm__sref_t other, fresh;
  CHECK_RC(hzshm__shm_w_session(w, "t", 1, &other), 0);
  uint64_t *tk = colliders(w, segment_hash, other.gen, b, HZSHM__CHAIN_MAX);
  for (uint32_t i = 0; i + 1 < HZSHM__CHAIN_MAX; i++) CHECK_RC(put8(w, &other, tk[i], "x"), 0);
  CHECK_RC(put8(w, &ref, keys[0], "y"), HZSHM_ESEGFULL);
  CHECK_RC(hzshm__shm_w_session_drop(w, &other, 1, &fresh), 0);
  CHECK_RC(put8(w, &ref, keys[0], "y"), 0);
  CHECK_RC(hzshm__shm_r_get(w, &ref, &keys[0], 8, buf, sizeof buf, &len), 0);
  CHECK_EQ(len, 1);
  CHECK_EQ(buf[0], 'y');
  free(tk);
  free(keys);
  close_unlink(w, name);
}

/* A writer walk never stops at a bound it shares with readers; its guard
 * trips only on a chain something else damaged (here: a self cycle written
 * into an entry): the bucket is detached and counted, nothing is retired
 * while linked, and the key can be cached again. */
TEST_CASE(chain_cut) {
  const char *name = t_name("cut");
  hzshm__shm_config_t c = cfg(8);
  hzshm__sref_t ref;
  hzshm__shm_t *w = open_session(name, &c, "s", &ref);
  const uint64_t a = 0;
  uint64_t b = segment_hash(w, &a, ref.gen) & w->bucket_mask;
  uint64_t *other = colliders(w, segment_hash, ref.gen, b, 1);
  CHECK_RC(put8(w, &ref, a, "va"), 0);
  uint64_t word = atomic_load(&w->buckets[b]), off = HZSHM__B_OFF(word);
  hzshm__shm_entry_t *e = hzshm__shm_entry(w, off);
  atomic_store(&e->next, word); /* a -> a -> ... */
  CHECK_RC(hzshm__shm_w_del(w, &ref, &other[0], 8), HZSHM_ENOTFOUND); /* walks the cycle */
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.chain_cut, 1);
  CHECK_EQ(atomic_load(&w->buckets[b]), 0);
  char buf[8];
  size_t n;
  CHECK_RC(hzshm__shm_r_get(w, &ref, &a, 8, buf, sizeof buf, &n), HZSHM_EMISS);
  CHECK_RC(put8(w, &ref, a, "vb"), 0);
  CHECK_RC(hzshm__shm_r_get(w, &ref, &a, 8, buf, sizeof buf, &n), 0);
  CHECK_EQ(n, 2);
  CHECK_MEMEQ(buf, "vb", 2);
  CHECK_NE(HZSHM__B_OFF(atomic_load(&w->buckets[b])), off); /* the cycle is linked nowhere */
  free(other);
  close_unlink(w, name);
}

/* Defect 3 (hash flooding): keys that collide under the old unkeyed hash,
 * computable by anybody, spread over the buckets of a segment with its own
 * random key; and two segments get different keys. */
TEST_CASE(keyed_collisions) {
  const char *name = t_name("keyed"), *name2 = t_name("keyed2");
  hzshm__shm_config_t c = cfg(8);
  c.memory_bytes = 2u << 20;
  hzshm__shm_t *w, *w2;
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_open(name2, &c, 0, &w2, NULL), 0);
  CHECK_NE(memcmp(w->hkey, w2->hkey, sizeof w->hkey), 0);
  CHECK(w->hkey[0] | w->hkey[1]);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  const uint32_t n = 256;
  uint64_t *keys = colliders(w, unkeyed_hash, ref.gen, 0, n);
  for (uint32_t i = 0; i < n; i++) CHECK_RC(put8(w, &ref, keys[i], "v"), 0);
  uint32_t longest = 0;
  for (uint64_t b = 0; b <= w->bucket_mask; b++) {
    uint32_t len = 0;
    for (uint64_t wd = atomic_load(&w->buckets[b]); HZSHM__B_OFF(wd); len++)
      wd = atomic_load(&hzshm__shm_entry(w, HZSHM__B_OFF(wd))->next);
    if (len > longest) longest = len;
  }
  CHECK_LE(longest, 8); /* 256 keys in >= 8192 buckets: chance says 2 or 3 */
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.entries, n);
  CHECK_EQ(st.chain_refused, 0);
  free(keys);
  hzshm__shm_close(w);
  hzshm__shm_close(w2);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  CHECK_RC(hzshm__shm_unlink(name2), 0);
}

/* A byte-at-a-time SipHash-c-d of (le64 prefix || data), straight from the
 * paper's description: the message is split into bytes, every 8 of them
 * make a little-endian word; the last word holds the remaining bytes and the
 * message length mod 256 in its top byte. */
static uint64_t ref_rotl(uint64_t v, int b) { return (v << b) | (v >> (64 - b)); }
static void ref_round(uint64_t v[4]) {
  v[0] += v[1], v[1] = ref_rotl(v[1], 13), v[1] ^= v[0], v[0] = ref_rotl(v[0], 32);
  v[2] += v[3], v[3] = ref_rotl(v[3], 16), v[3] ^= v[2];
  v[0] += v[3], v[3] = ref_rotl(v[3], 21), v[3] ^= v[0];
  v[2] += v[1], v[1] = ref_rotl(v[1], 17), v[1] ^= v[2], v[2] = ref_rotl(v[2], 32);
}
static uint64_t ref_sip(const uint64_t k[2], uint64_t prefix, const uint8_t *data, size_t len, int c, int d) {
  uint64_t v[4] = {k[0] ^ 0x736f6d6570736575ull, k[1] ^ 0x646f72616e646f6dull, k[0] ^ 0x6c7967656e657261ull,
                   k[1] ^ 0x7465646279746573ull};
  size_t total = len + 8;
  uint64_t m = 0;
  for (size_t i = 0; i < total; i++) {
    uint8_t byte = i < 8 ? (uint8_t)(prefix >> (8 * i)) : data[i - 8];
    m |= (uint64_t)byte << (8 * (i % 8));
    if (i % 8 == 7) {
      v[3] ^= m;
      for (int r = 0; r < c; r++) ref_round(v);
      v[0] ^= m;
      m = 0;
    }
  }
  m |= (uint64_t)(total & 0xff) << 56;
  v[3] ^= m;
  for (int r = 0; r < c; r++) ref_round(v);
  v[0] ^= m;
  v[2] ^= 0xff;
  for (int r = 0; r < d; r++) ref_round(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* SipHash's round function against the paper's SipHash-2-4 test vectors
 * (key 00..0f; messages 00..07 and 00..0e); SipHash-1-3 differs only in the
 * number of rounds. */
TEST_CASE(siphash_vectors) {
  uint64_t k[2] = {0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull};
  const uint8_t tail[7] = {8, 9, 10, 11, 12, 13, 14};
  CHECK_EQ(hzshm__shm_sip24(k, 0x0706050403020100ull, tail, 0), 0x93f5f5799a932462ull);
  CHECK_EQ(hzshm__shm_sip24(k, 0x0706050403020100ull, tail, 7), 0xa129ca6149be45e5ull);
  CHECK_NE(hzshm__shm_sip13(k, 1, "key", 3), hzshm__shm_sip13(k, 2, "key", 3)); /* the prefix counts */
  /* The word-at-a-time implementation against a byte-at-a-time reference
   * (ref_sip above) of every data length 0..64, at every alignment, for
   * both round counts, under a random key. */
  uint8_t buf[80];
  uint64_t x = 0x243f6a8885a308d3ull;
  for (size_t i = 0; i < sizeof buf; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    buf[i] = (uint8_t)x;
  }
  uint64_t rk[2] = {x, x * 0x9e3779b97f4a7c15ull};
  for (size_t align = 0; align < 8; align++)
    for (size_t len = 0; len <= 64; len++) {
      CHECK_EQ(hzshm__shm_sip13(rk, len * 77, buf + align, len), ref_sip(rk, len * 77, buf + align, len, 1, 3));
      CHECK_EQ(hzshm__shm_sip24(rk, len * 77, buf + align, len), ref_sip(rk, len * 77, buf + align, len, 2, 4));
    }
}

/* The caller's key is read only inside [key, key + klen): every word load
 * of the hit path (SipHash's tail, key_eq's overlapping words) stays in the
 * key. Each key length 1..HZSHM_KEY_MAX, placed so it ends at a page
 * followed by a PROT_NONE page (an overread faults: ASan does not see reads
 * inside a mapped page) and, separately, so it starts right after a
 * PROT_NONE page: its hash equals that of an aligned copy, and the key is a
 * miss before its put and a hit with its own value after. */
TEST_CASE(key_at_page_edge) {
  long pg = sysconf(_SC_PAGESIZE);
  CHECK(pg >= HZSHM_KEY_MAX);
  uint8_t *area = mmap(NULL, 3 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  CHECK(area != MAP_FAILED);
  CHECK_RC(mprotect(area, (size_t)pg, PROT_NONE), 0);
  CHECK_RC(mprotect(area + 2 * pg, (size_t)pg, PROT_NONE), 0);
  uint8_t *mid = area + pg;
  const char *name = t_name("pageedge");
  hzshm__shm_config_t c = cfg(4);
  hzshm__sref_t ref;
  hzshm__shm_t *w = open_session(name, &c, "edge", &ref);
  static uint8_t copy[HZSHM_KEY_MAX];
  for (size_t klen = 1; klen <= HZSHM_KEY_MAX; klen++) {
    for (int at_start = 0; at_start < 2; at_start++) {
      uint8_t *key = at_start ? mid : mid + pg - klen;
      for (size_t i = 0; i < klen; i++) key[i] = (uint8_t)('a' + (klen * 7 + i * 13 + (size_t)at_start) % 26);
      memcpy(copy, key, klen);
      CHECK_EQ(hzshm__shm_sip13(w->hkey, 5, key, klen), hzshm__shm_sip13(w->hkey, 5, copy, klen));
      char val[16], out[16];
      size_t vn = (size_t)snprintf(val, sizeof val, "v%zu.%d", klen, at_start), n = 0;
      CHECK_RC(hzshm__shm_r_get(w, &ref, key, klen, out, sizeof out, &n), HZSHM_EMISS);
      CHECK_RC(hzshm__shm_w_put(w, &ref, copy, klen, val, vn, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
      CHECK_RC(hzshm__shm_r_get(w, &ref, key, klen, out, sizeof out, &n), 0);
      CHECK_EQ(n, vn);
      CHECK_MEMEQ(out, val, vn);
      CHECK_RC(hzshm__shm_w_del(w, &ref, copy, klen), 0);
    }
  }
  close_unlink(w, name);
  munmap(area, 3 * (size_t)pg);
}

/* The fail-closed bound holds for a reader in another time namespace: its
 * CLOCK_MONOTONIC_COARSE is the host's plus the namespace's offset, the
 * heartbeat is the writer's. The reader runs in a grandchild (a process
 * enters a new time namespace only at fork), inside a user namespace that
 * maps our uid, and returns its r_get result: with the heartbeat 2.5 s old
 * (stale_after_ns 2 s, set without waiting) a reader 1 s behind must fail
 * closed (it served the hit); with a fresh heartbeat a reader 5 s ahead must
 * hit (it failed closed for ever). Skipped where unprivileged user and time
 * namespaces are not available. */
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080 /* linux/sched.h */
#endif
static int write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  int ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}
/* 0 if r_get in a time namespace `offset` ("<s> <ns>") from ours returns
 * want; 77 if such a namespace cannot be made; else another status. */
static int timens_get(const char *name, const hzshm__sref_t *ref, const char *offset, int want) {
  char uidmap[64], offs[64];
  snprintf(uidmap, sizeof uidmap, "%u %u 1\n", (unsigned)geteuid(), (unsigned)geteuid());
  snprintf(offs, sizeof offs, "monotonic %s\n", offset);
  pid_t pid = t_fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWTIME) != 0) _exit(77);
    if (write_file("/proc/self/setgroups", "deny") || write_file("/proc/self/uid_map", uidmap)) _exit(77);
    if (write_file("/proc/self/timens_offsets", offs)) _exit(77);
    pid_t g = t_fork();
    if (g < 0) _exit(3);
    if (g == 0) {
      hzshm__shm_t *r;
      if (hzshm__shm_r_attach(name, &r) != 0) _exit(4);
      char buf[8];
      size_t n = 0;
      int rc = hzshm__shm_r_get(r, ref, "k", 1, buf, sizeof buf, &n);
      _exit(rc == want ? 0 : rc == 0 ? 10 : 11);
    }
    int st;
    if (waitpid(g, &st, 0) != g || !WIFEXITED(st)) _exit(5);
    _exit(WEXITSTATUS(st));
  }
  int st;
  CHECK_EQ(waitpid(pid, &st, 0), pid);
  CHECK(WIFEXITED(st));
  return WEXITSTATUS(st);
}
TEST_CASE(time_namespace) {
  const char *name = t_name("timens");
  hzshm__shm_config_t c = cfg(4);
  c.stale_after_ns = 2000000000ull;
  hzshm__sref_t ref;
  hzshm__shm_t *w = open_session(name, &c, "tn", &ref);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k", 1, "v", 1, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
  int st = timens_get(name, &ref, "5 0", 0); /* fresh heartbeat, reader 5 s ahead: a hit */
  if (st == 77) {
    fprintf(stderr, "time_namespace: no unprivileged user+time namespace here, skipped\n");
  } else {
    CHECK_EQ(st, 0); /* 11: failed closed on a fresh heartbeat */
    atomic_store(&w->hdr->heartbeat_ns, hzshm__shm_now_coarse() - 2500000000ull); /* 2.5 s old: stale */
    CHECK_RC(hzshm__shm_r_check(w), HZSHM_ESTALE);
    CHECK_EQ(timens_get(name, &ref, "-1 0", HZSHM_ESTALE), 0); /* 10: a hit with the heartbeat 2.5 s old */
  }
  close_unlink(w, name);
}

/* Validated hits, deterministically: an entry whose version is odd (being
 * rewritten) is never a hit, and a view whose entry was reused meanwhile is
 * reported at release. */
TEST_CASE(validation) {
  const char *name = t_name("valid1");
  hzshm__shm_config_t c = cfg(8);
  hzshm__sref_t ref;
  hzshm__shm_t *w = open_session(name, &c, "s", &ref);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "key", 3, "value", 5, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  const void *v;
  size_t n;
  char buf[16];
  CHECK_RC(hzshm__shm_r_view(w, &ref, "key", 3, &v, &n), 0);
  hzshm__shm_entry_t *e = (hzshm__shm_entry_t *)((const char *)v - 3 - sizeof(hzshm__shm_entry_t));
  uint64_t ver = atomic_load(&e->ver);
  CHECK_EQ(ver % 2, 0);
  CHECK_GT(ver, 0);
  CHECK_RC(hzshm__shm_r_view_end(w), 0);
  CHECK_RC(hzshm__shm_r_view_end(w), HZSHM_EINVAL); /* no view open */
  CHECK_RC(hzshm__shm_r_view(w, &ref, "key", 3, &v, &n), 0);
  atomic_store(&e->ver, ver + 2); /* as if freed and refilled while viewed */
  CHECK_RC(hzshm__shm_r_view_end(w), HZSHM_ECHANGED);
  atomic_store(&e->ver, ver + 3); /* odd: being rewritten */
  CHECK_RC(hzshm__shm_r_get(w, &ref, "key", 3, buf, sizeof buf, &n), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_r_get(w, &ref, "key", 3, NULL, 0, &n), HZSHM_EMISS);
  CHECK_RC(hzshm__shm_r_view(w, &ref, "key", 3, &v, &n), HZSHM_EMISS);
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.torn_reads, 1 + 3 * 4); /* the view, then 4 tries of each lookup */
  atomic_store(&e->ver, ver + 4);
  CHECK_RC(hzshm__shm_r_get(w, &ref, "key", 3, buf, sizeof buf, &n), 0);
  CHECK_EQ(n, 5);
  CHECK_MEMEQ(buf, "value", 5);
  close_unlink(w, name);
}

/* Defect 8 (minors): a heartbeat from the future (a reader whose clock is
 * behind the writer's, another time namespace) fails closed; a put does not
 * write the session's directory record (readers load its gen on every hit);
 * a put into a full cache, with a reader inside its section, advances the
 * reclamation epoch (a line every lookup reads) at most once. */
TEST_CASE(minors) {
  const char *name = t_name("minor");
  hzshm__shm_config_t c = cfg(8);
  c.memory_bytes = 2u << 20;
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_r_check(r), 0);
  uint64_t hb = atomic_load(&w->hdr->heartbeat_ns);
  atomic_store(&w->hdr->heartbeat_ns, hb + 3 * w->stale_after_ns);
  CHECK_RC(hzshm__shm_r_check(r), HZSHM_ESTALE);
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm__shm_r_check(r), 0);

  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  hzshm__shm_dirent_t before = w->dir[ref.idx];
  CHECK_RC(hzshm__shm_w_put(w, &ref, "a", 1, "1", 1, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "b", 1, "2", 1, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  CHECK_RC(hzshm__shm_w_del(w, &ref, "a", 1), 0);
  CHECK_MEMEQ(&before, &w->dir[ref.idx], sizeof before);
  CHECK_EQ(hzshm__shm_w_session_entries(w, &ref), 1);

  /* fill the arena with one size class, then put with a reader inside */
  char val[900];
  memset(val, 'v', sizeof val - 1);
  val[sizeof val - 1] = 0;
  hzshm__shm_stats_t st;
  uint64_t k = 0;
  do {
    CHECK_RC(put8(w, &ref, ++k, val), 0);
    CHECK_RC(hzshm__shm_stats(w, &st), 0);
  } while (st.evictions == 0);
  const void *v;
  size_t n;
  CHECK_RC(hzshm__shm_r_view(r, &ref, &k, 8, &v, &n), 0); /* holds its section */
  for (int i = 0; i < 16; i++) {
    uint64_t e0 = atomic_load(&w->hdr->epoch);
    int rc = put8(w, &ref, ++k, val);
    CHECK(rc == 0 || rc == HZSHM_ESEGFULL);
    CHECK_LE(atomic_load(&w->hdr->epoch) - e0, 1);
  }
  CHECK_RC(hzshm__shm_r_view_end(r), 0);
  CHECK_RC(put8(w, &ref, ++k, val), 0);
  hzshm__shm_close(r);
  close_unlink(w, name);
}

/* Small entries in slab 0, a big one in slab 1, slab 0 emptied and freed,
 * then the first store of a re-carve of slab 0 (carve(): no class, next
 * generation). */
static int craft_mid_carve(hzshm__shm_t *cw, void *ctx) {
  (void)ctx;
  hzshm__sref_t r;
  static char big[2000];
  memset(big, 'b', sizeof big - 1);
  if (hzshm__shm_w_session(cw, "s", 1, &r) != 0) return 10;
  for (uint64_t k = 1; k <= 100; k++)
    if (put8(cw, &r, k, "small") != 0) return 11;
  if (put8(cw, &r, 1000, big) != 0) return 12;
  for (uint64_t k = 1; k <= 100; k++)
    if (hzshm__shm_w_del(cw, &r, &k, 8) != 0) return 13;
  hzshm__shm_w_maintain(cw); /* slab 0's chunks free: it could be re-carved */
  uint64_t w0 = atomic_load(&cw->slabtab[0]);
  if (HZSHM__SLAB_CLS(w0) == 0xff || HZSHM__SLAB_CLS(atomic_load(&cw->slabtab[1])) == 0xff) return 14;
  atomic_store(&cw->slabtab[0], HZSHM__SLAB_MAKE(HZSHM__SLAB_GEN(w0) + 1, 0xff));
  return 0;
}

/* The next writer keeps the entries of the other slabs and gives slab 0 a
 * class again (before this was handled, the whole cache was dropped). */
TEST_CASE(restart_mid_carve) {
  const char *name = t_name("carve");
  hzshm__shm_config_t c = cfg(8);
  hzshm__shm_t *w = killed_writer_then_reopen(name, &c, craft_mid_carve, NULL);
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_r_session(w, "s", 1, &ref), 0);
  const uint64_t bk = 1000;
  char buf[2048];
  size_t len = 0;
  CHECK_RC(hzshm__shm_r_get(w, &ref, &bk, 8, buf, sizeof buf, &len), 0); /* kept */
  CHECK(len == 1999 && buf[0] == 'b');
  CHECK_LT(HZSHM__SLAB_CLS(atomic_load(&w->slabtab[0])), (uint32_t)w->nclass);
  for (uint64_t k = 1; k <= 100; k++) CHECK_RC(put8(w, &ref, k, "again"), 0);
  CHECK_RC(hzshm__shm_r_get(w, &ref, &bk, 8, buf, sizeof buf, &len), 0);
  close_unlink(w, name);
}
