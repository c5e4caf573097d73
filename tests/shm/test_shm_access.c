/* test_shm_access.c - the access model (issue 10 defect 4): the writer runs
 * as root with the data file in group 65534; reader processes run as other
 * uids of that group. Readers of uid 65534 read and check every value
 * (stress.h: whole, of their key, not older than acknowledged) while a
 * hostile process of uid 65533 (same group) attacks everything it can reach:
 * it opens every file of the segment for writing (only its own private
 * reader file may open), scribbles epochs and hint bits there, truncates and
 * regrows it, plants a FIFO, a symlink and garbage files under the private
 * reader file prefix, and holds read locks on the data file. The writer
 * (freed memory poisoned) must survive (SIGBUS included), no reader may see
 * a wrong value, and a new writer must still get the segment.
 *   usage: test_shm_access [seconds]   (needs root: skipped otherwise) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <grp.h>

#include "../common/hostile.h"
#include "stress.h"
#include "shm_int.h" /* white-box: the private reader file path, the followed files */

#define GID 65534
#define READER_UID 65534
#define HOSTILE_UID 65533

static int become(uid_t uid) {
  return setgroups(0, NULL) == 0 && setgid(GID) == 0 && setuid(uid) == 0 ? 0 : -1;
}

static int hostile_run(const char *name, st_side_t *side) {
  if (become(HOSTILE_UID) != 0) return 20;
  hzshm__shm_t *r;
  int rc = hzshm__shm_r_attach(name, &r);
  if (rc != 0) {
    fprintf(stderr, "hostile: attach %s\n", hzshm_err_name(rc));
    return 21;
  }
  const char *own = r->prd_path; /* white-box: our private reader file */
  if ((rc = hostile_plant("/dev/shm", name)) != 0) return 21 + rc;
  atomic_fetch_add_explicit(&side->ready, 1, memory_order_relaxed);
  uint64_t rnd = 0x5eed;
  while (!atomic_load_explicit(&side->stop, memory_order_relaxed))
    if (hostile_round("/dev/shm", name, own, &rnd) != 0) return 27; /* only its own files may be writable */
  return 0; /* exits without closing r: its mapping of its own file may be gone */
}

int main(int argc, char **argv) {
  int secs = argc > 1 ? atoi(argv[1]) : 6;
  if (geteuid() != 0) {
    fprintf(stderr, "not root: cannot run readers under other uids; skipped\n");
    return 0;
  }
  const int nr = 2;
  const char *name = t_name("acc");
  st_side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK(side != MAP_FAILED);
  hzshm__shm_config_t c = {.memory_bytes = 1280u << 10, .max_sessions = 16, .reader_slots = 16,
                           .partition_count = 271, .gid_set = 1, .gid = GID};
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  st_writer_t *W = malloc(sizeof *W);
  st_writer_init(W, w, side, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
  pid_t pids[3];
  for (int i = 0; i < nr + 1; i++) {
    pids[i] = fork();
    CHECK(pids[i] >= 0);
    if (pids[i] == 0) {
      t_child_dies_with_parent();
      if (i == nr) _exit(hostile_run(name, side));
      hzshm__shm_t *r;
      if (become(READER_UID) != 0) _exit(8);
      int rc = hzshm__shm_r_attach(name, &r);
      if (rc != 0) {
        fprintf(stderr, "reader: attach as uid %d: %s\n", READER_UID, hzshm_err_name(rc));
        _exit(9);
      }
      rc = st_reader_run(r, side, i, 0x12345ull * (uint64_t)(i + 1) + (uint64_t)getpid());
      hzshm__shm_close(r);
      _exit(rc);
    }
  }
  WAIT_UNTIL(atomic_load_explicit(&side->ready, memory_order_relaxed) == nr + 1 ||
                 waitpid(-1, NULL, WNOHANG) > 0,
             20000);
  CHECK(atomic_load_explicit(&side->ready, memory_order_relaxed) == nr + 1);
  int failed = 0;
  uint64_t end = t_now_ns() + (uint64_t)secs * 1000000000ull;
  while (t_now_ns() < end && !failed) {
    for (int i = 0; i < 256; i++) st_writer_step(W);
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      fprintf(stderr, "pid %d exited early, status %d\n", (int)p, status);
      failed = 1;
    }
  }
  atomic_store_explicit(&side->stop, 1, memory_order_relaxed);
  for (int i = 0; i < nr + 1; i++) {
    int status;
    if (waitpid(pids[i], &status, 0) != pids[i]) continue;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "%s %d failed: status %d\n", i == nr ? "hostile" : "reader", i, status);
      failed = 1;
    }
  }
  CHECK(!failed);
  uint64_t hits = 0;
  for (int i = 0; i < nr; i++) {
    CHECK(atomic_load(&side->hits[i]) > 0); /* the readers of another uid had hits */
    hits += atomic_load(&side->hits[i]);
  }
  hzshm__shm_stats_t st;
  for (int i = 0; i < 8; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK(st.retired_pending == 0); /* nothing of the dead readers (or the hostile one) holds memory back */
  uint32_t followed = hzshm__shm_prd_followed(w);
  CHECK(followed == 0); /* their private files are no longer followed */
  fprintf(stderr, "writer ops %llu, reader hits %llu (uid %d), evictions %llu, private files still followed %u\n",
          (unsigned long long)atomic_load(&side->writer_ops), (unsigned long long)hits, READER_UID,
          (unsigned long long)st.evictions, followed);
  /* The writer lock is not on a file the readers can open: a new writer gets the segment. */
  hzshm__shm_close(w);
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK(reused == 1);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  hostile_cleanup("/dev/shm", name); /* what the hostile process planted or left */
  free(W);
  fprintf(stderr, "OK\n");
  return 0;
}
