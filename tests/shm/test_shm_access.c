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

#include "stress.h"
#include "shm_int.h" /* white-box: the private reader file path, the followed files */

#define GID 65534
#define READER_UID 65534
#define HOSTILE_UID 65533

static int become(uid_t uid) {
  return setgroups(0, NULL) == 0 && setgid(GID) == 0 && setuid(uid) == 0 ? 0 : -1;
}

/* Every file of the segment <name> in /dev/shm, opened for writing. Returns
 * how many could be opened other than our own private file (`own`). */
static int open_all_for_write(const char *name, const char *own, int *fds, int *nfds) {
  char prefix[128];
  int others = 0;
  snprintf(prefix, sizeof prefix, "hzshm.%s", name);
  DIR *d = opendir("/dev/shm");
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    char path[512];
    snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    if (own && strcmp(path, own) == 0 && *nfds < 8) {
      fds[(*nfds)++] = fd;
      continue;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid != HOSTILE_UID) {
      fprintf(stderr, "hostile: opened %s for writing\n", path);
      others++;
    }
    close(fd);
  }
  closedir(d);
  return others;
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
  char junk[256];
  /* planted under the private file prefix: a FIFO, a symlink to the data
   * file, a garbage file, a truncated header */
  snprintf(junk, sizeof junk, "/dev/shm/hzshm.%s.rd.fifo", name);
  if (mkfifo(junk, 0644) != 0) return 22;
  snprintf(junk, sizeof junk, "/dev/shm/hzshm.%s.rd.link", name);
  char target[256];
  snprintf(target, sizeof target, "/dev/shm/hzshm.%s", name);
  if (symlink(target, junk) != 0) return 23;
  snprintf(junk, sizeof junk, "/dev/shm/hzshm.%s.rd.garbage", name);
  int g = open(junk, O_RDWR | O_CREAT | O_EXCL, 0644);
  if (g < 0 || write(g, "garbage", 7) != 7) return 24;
  close(g);
  /* read locks on the data file: would keep a new writer out if it locked there */
  int dfd = open(target, O_RDONLY | O_CLOEXEC);
  struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (dfd < 0 || fcntl(dfd, F_OFD_SETLK, &fl) != 0) return 25;
  if (dfd >= 0 && open(target, O_RDWR) >= 0) return 26; /* the data file is never writable */
  atomic_fetch_add_explicit(&side->ready, 1, memory_order_relaxed);
  uint64_t rnd = 0x5eed;
  while (!atomic_load_explicit(&side->stop, memory_order_relaxed)) {
    int fds[8], nfds = 0;
    int others = open_all_for_write(name, own, fds, &nfds);
    if (others != 0) return 27; /* nothing but its own file may be writable */
    for (int i = 0; i < nfds; i++) {
      struct stat st;
      if (fstat(fds[i], &st) != 0) return 28;
      uint64_t len = (uint64_t)st.st_size ? (uint64_t)st.st_size : 1u << 20;
      uint8_t blk[4096];
      for (size_t k = 0; k < sizeof blk; k++) blk[k] = (uint8_t)st_rand(&rnd);
      /* epochs 1 (the oldest) in every slot, then random bytes anywhere, then
       * a truncation to nothing, to a few bytes, and back */
      for (uint64_t off = 4096; off + 8 <= 4096 + 64 * 64 && off + 8 <= len; off += 64) {
        uint64_t one = 1;
        if (pwrite(fds[i], &one, 8, (off_t)off) != 8) break;
      }
      if (pwrite(fds[i], blk, sizeof blk, (off_t)(st_rand(&rnd) % len)) < 0) return 29;
      if (ftruncate(fds[i], 0) != 0 || ftruncate(fds[i], 17) != 0 || ftruncate(fds[i], (off_t)len) != 0) return 30;
      close(fds[i]);
    }
  }
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
  /* what the hostile process planted or left (its truncated private file) */
  char prefix[128];
  snprintf(prefix, sizeof prefix, "hzshm.%s.", name);
  DIR *d = opendir("/dev/shm");
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) unlinkat(dirfd(d), e->d_name, 0);
  if (d) closedir(d);
  free(W);
  fprintf(stderr, "OK\n");
  return 0;
}
