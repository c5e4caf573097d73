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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <poll.h>
#include <pthread.h>

#include "../common/hostile.h"
#include "stress.h"
#include "shm_int.h" /* white-box: the private reader file path, the followed files */

#define GID 65534
#define READER_UID 65534
#define HOSTILE_UID 65533

static int become(uid_t uid) { return hostile_become(uid, GID); }

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
  /* A flood of complete private reader files, each alive (its byte held):
   * the writer follows at most 64 per uid, and the readers of another uid
   * are still followed. */
  hzshm__shm_rdhdr_t rh;
  int ofd = open(own, O_RDONLY);
  struct stat ost;
  if (ofd < 0 || fstat(ofd, &ost) != 0 || pread(ofd, &rh, sizeof rh, 0) != (ssize_t)sizeof rh) return 31;
  close(ofd);
  for (int i = 0; i < 80; i++) {
    char fp[256];
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd.flood.%d", name, i);
    int f = open(fp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)rh.nslots, .l_len = 1};
    if (f < 0 || ftruncate(f, ost.st_size) != 0 || pwrite(f, &rh, sizeof rh, 0) != (ssize_t)sizeof rh ||
        fcntl(f, F_OFD_SETLK, &lk) != 0)
      return 32; /* kept open: alive */
  }
  atomic_fetch_add_explicit(&side->ready, 1, memory_order_relaxed);
  uint64_t rnd = 0x5eed;
  while (!atomic_load_explicit(&side->stop, memory_order_relaxed))
    if (hostile_round("/dev/shm", name, own, &rnd) != 0) return 27; /* only its own files may be writable */
  return 0; /* exits without closing r: its mapping of its own file may be gone */
}

/* t_fork(), checked; the child dies with this process (never left behind). */
static pid_t fork_child(void) {
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) t_child_dies_with_parent();
  return pid;
}

/* Waits for the forked child pid: it must have exited with code 0. */
static void wait_exit0(pid_t pid) {
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A flag in memory shared with forked children (fork_writer_as's stop). */
static _Atomic int *shared_flag(void) {
  _Atomic int *f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(f, MAP_FAILED);
  return f;
}

/* A writer (root, data file in group GID, freed memory poisoned) whose
 * session "s" holds "held" = "value". */
static hzshm__shm_config_t held_cfg(uint32_t slots) {
  return (hzshm__shm_config_t){.memory_bytes = 1280u << 10, .max_sessions = 16, .reader_slots = slots,
                               .partition_count = 271, .gid_set = 1, .gid = GID};
}

static hzshm__shm_t *held_writer(const char *name, uint32_t slots, hzshm__sref_t *ref) {
  hzshm__shm_config_t c = held_cfg(slots);
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, ref, "held", 4, "value", 5, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  return w;
}

/* Pipes go and ready, and a child that runs as READER_UID attached to
 * `name` with a private reader file (*r set in the child: pid 0). */
static pid_t fork_reader(const char *name, int go[2], int ready[2], hzshm__shm_t **r) {
  CHECK_EQ(pipe(go), 0);
  CHECK_EQ(pipe(ready), 0);
  pid_t pid = fork_child();
  if (pid == 0) {
    if (become(READER_UID) != 0 || hzshm__shm_r_attach(name, r) != 0 || !(*r)->prd_path) _exit(2);
  }
  return pid;
}

static void held_done(hzshm__shm_t *w, const char *name, int go[2], int ready[2]) {
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  hostile_cleanup("/dev/shm", name);
  close(go[0]);
  close(go[1]);
  close(ready[0]);
  close(ready[1]);
}

/* A reader child (uid READER_UID, private file) that holds a view of "held"
 * once `w` follows its file, until the parent writes to go[1]; it then
 * writes 'v' to ready[1] if the view still shows "value" ('p': reused). */
static pid_t fork_viewer(hzshm__shm_t *w, const char *name, int go[2], int ready[2]) {
  hzshm__shm_t *r = NULL;
  pid_t pid = fork_reader(name, go, ready, &r);
  if (pid == 0) {
    hzshm__sref_t rr;
    const void *v = NULL;
    size_t n = 0;
    char g, ch;
    while (hzshm__shm_r_session(r, "s", 1, &rr) == HZSHM_EBUSY) { /* until the writer follows the file */
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
    ch = hzshm__shm_r_view(r, &rr, "held", 4, &v, &n) == 0 && n == 5 ? 'v' : 'e';
    if (write(ready[1], &ch, 1) != 1 || read(go[0], &g, 1) != 1) _exit(3);
    ch = memcmp(v, "value", 5) == 0 ? 'v' : 'p';
    hzshm__shm_r_view_end(r);
    _exit(write(ready[1], &ch, 1) == 1 ? 0 : 4);
  }
  char ch;
  for (;;) {
    struct pollfd pf = {.fd = ready[0], .events = POLLIN};
    CHECK_RC(hzshm__shm_w_maintain(w), 0);
    if (poll(&pf, 1, 5) == 1) break;
  }
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  CHECK_EQ(ch, 'v');
  return pid;
}

/* A reader of another uid with many threads: its slots fill its private
 * file from index 0, and the writer reads it chunk by chunk (64 slots) only
 * as far as slot locks are held. A view held by thread 70 (the second chunk)
 * must hold back the reclamation of the entry it shows. */
enum { MT_THREADS = 72, MT_VIEWER = 70 };
/* Releases a fork_viewer child: its view must still have shown "value"
 * ('v') and it must exit 0. */
static void viewer_release(pid_t pid, int go[2], int ready[2]) {
  char ch;
  CHECK_EQ(write(go[1], "g", 1), 1);
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  CHECK_EQ(ch, 'v');
  wait_exit0(pid);
}

typedef struct {
  hzshm__shm_t *r;
  int idx;
  int *go;       /* pipe: the parent says "release" */
  int *ready;    /* pipe: one byte per thread that holds its slot / its view */
  int *step;     /* pipe in the child: the thread holds its slot (threads claim one after the other) */
} mt_arg_t;

static void *mt_thread(void *p) {
  mt_arg_t *a = p;
  hzshm__sref_t ref;
  char ch = 'x';
  while (hzshm__shm_r_session(a->r, "s", 1, &ref) == HZSHM_EBUSY) { /* until the writer follows the file */
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  const void *v = NULL;
  size_t n;
  if (a->idx == MT_VIEWER) ch = hzshm__shm_r_view(a->r, &ref, "held", 4, &v, &n) == 0 && n == 5 ? 'v' : 'e';
  if (write(a->ready[1], &ch, 1) != 1 || write(a->step[1], &ch, 1) != 1) return NULL;
  char g;
  if (read(a->go[0], &g, 1) != 1) return NULL;
  if (a->idx == MT_VIEWER) {
    if (memcmp(v, "value", 5) != 0) ch = 'p'; /* reused under the view */
    hzshm__shm_r_view_end(a->r);
    if (write(a->ready[1], &ch, 1) != 1) return NULL;
  }
  return NULL;
}

TEST_CASE(many_threads) {
  const char *name = t_name("accmt");
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 128, &ref);
  int go[2], ready[2];
  hzshm__shm_t *r = NULL;
  pid_t pid = fork_reader(name, go, ready, &r);
  if (pid == 0) {
    pthread_t th[MT_THREADS];
    mt_arg_t args[MT_THREADS];
    int step[2];
    if (pipe(step) != 0) _exit(3);
    for (int i = 0; i < MT_THREADS; i++) { /* one after the other: thread i holds slot i */
      char ch;
      args[i] = (mt_arg_t){r, i, go, ready, step};
      if (pthread_create(&th[i], NULL, mt_thread, &args[i]) != 0 || read(step[0], &ch, 1) != 1) _exit(3);
    }
    for (int i = 0; i < MT_THREADS; i++) pthread_join(th[i], NULL);
    _exit(0);
  }
  /* the writer's maintain ticks register the private file */
  char ch;
  int got = 0, viewer = 0;
  while (got < MT_THREADS) {
    struct pollfd pf = {.fd = ready[0], .events = POLLIN};
    CHECK_RC(hzshm__shm_w_maintain(w), 0);
    if (poll(&pf, 1, 5) == 1) {
      CHECK_EQ(read(ready[0], &ch, 1), 1);
      CHECK(ch == 'x' || ch == 'v');
      viewer += ch == 'v';
      got++;
    }
  }
  CHECK_EQ(viewer, 1);
  /* The held entry is deleted and reclamation runs: the view holds it. */
  CHECK_RC(hzshm__shm_w_del(w, &ref, "held", 4), 0);
  hzshm__shm_stats_t st;
  for (int i = 0; i < 8; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.retired_pending, 1); /* not freed (nor poisoned) under the view of slot 70 */
  for (int i = 0; i < MT_THREADS; i++) CHECK_EQ(write(go[1], "g", 1), 1);
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  if (ch != 'v') fprintf(stderr, "viewer said %c\n", ch);
  CHECK_EQ(ch, 'v'); /* the viewer still saw the value at the end of its view */
  wait_exit0(pid);
  for (int i = 0; i < 8; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.retired_pending, 0); /* and freed once the process is gone */
  held_done(w, name, go, ready);
}

/* A scan that skips a reader's file (here: the writer's table of 4096
 * entries is full of symlinks planted under the private file prefix) must
 * not let that reader use its slots: reg_scans moved on, but nothing
 * follows its epochs. Its view is refused (the agent path) or protected,
 * never left to reclamation. */
TEST_CASE(unfollowed) {
  const char *name = t_name("accuf");
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 16, &ref);
  for (int i = 0; i < 4200; i++) {
    char fp[256];
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd.plant.%d", name, i);
    CHECK_EQ(symlink("/nonexistent", fp), 0);
  }
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  int go[2], ready[2];
  hzshm__shm_t *r = NULL;
  pid_t pid = fork_reader(name, go, ready, &r);
  if (pid == 0) {
    char g, ch;
    if (write(ready[1], "a", 1) != 1 || read(go[0], &g, 1) != 1) _exit(3);
    const void *v = NULL;
    size_t n = 0;
    int rc = hzshm__shm_r_session(r, "s", 1, &ref);
    if (rc == 0) rc = hzshm__shm_r_view(r, &ref, "held", 4, &v, &n);
    ch = rc == HZSHM_EBUSY ? 'b' : rc == 0 && n == 5 ? 'v' : 'e';
    if (write(ready[1], &ch, 1) != 1) _exit(4);
    if (ch != 'v') _exit(0);
    if (read(go[0], &g, 1) != 1) _exit(5);
    ch = memcmp(v, "value", 5) == 0 ? 'v' : 'p'; /* 'p': reused under the view */
    hzshm__shm_r_view_end(r);
    _exit(write(ready[1], &ch, 1) == 1 ? 0 : 6);
  }
  char ch;
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  CHECK_EQ(ch, 'a');
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0); /* reg_scans moves on by 4 */
  CHECK_EQ(write(go[1], "g", 1), 1);
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  fprintf(stderr, "unfollowed reader: %s, private files followed %u\n",
          ch == 'b' ? "refused (EBUSY)" : ch == 'v' ? "got a view" : "error", hzshm__shm_prd_followed(w));
  CHECK(ch == 'b' || ch == 'v');
  if (ch == 'v') {
    hzshm__shm_stats_t st;
    CHECK_RC(hzshm__shm_w_del(w, &ref, "held", 4), 0);
    for (int i = 0; i < 8; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
    CHECK_RC(hzshm__shm_stats(w, &st), 0);
    if (st.retired_pending != 1) fprintf(stderr, "the entry under the view was freed\n");
    CHECK_EQ(st.retired_pending, 1); /* a view given out must be protected */
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(read(ready[0], &ch, 1), 1);
    CHECK_EQ(ch, 'v');
  }
  wait_exit0(pid);
  held_done(w, name, go, ready);
}

/* A process of another uid plants the private reader file names the next
 * reader would use (pid and handle number are predictable); in the sticky
 * /dev/shm the reader cannot remove them. Its attach must still succeed. */
TEST_CASE(planted_names) {
  const char *name = t_name("accpn");
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 16, &ref);
  int go[2], ready[2];
  CHECK_EQ(pipe(go), 0);
  CHECK_EQ(pipe(ready), 0);
  pid_t pid = fork_child();
  if (pid == 0) {
    hzshm__shm_t *r;
    char g;
    if (become(READER_UID) != 0 || read(go[0], &g, 1) != 1) _exit(2);
    int rc = hzshm__shm_r_attach(name, &r);
    if (rc != 0) fprintf(stderr, "attach beside planted names: %s\n", hzshm_err_name(rc));
    _exit(rc == 0 && r->prd_path ? 0 : 3);
  }
  for (int n = 0; n < 256; n++) { /* as root: the reader (uid 65534) cannot unlink them */
    char fp[256];
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd.%d.%d", name, (int)pid, n);
    int f = open(fp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK_GE(f, 0);
    close(f);
  }
  CHECK_EQ(write(go[1], "g", 1), 1);
  int status;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  held_done(w, name, go, ready);
}

/* The confirmation belongs to one writer: a reader followed (and holding a
 * view) by one writer, then a restarted writer whose first scan would skip
 * the reader's file (4200 symlinks and 200 garbage files planted after it,
 * listed first, filled its table before the fix). A restarted writer frees
 * nothing until it examined every file, symlinks are not counted: the entry
 * under the view is not freed. */
TEST_CASE(restart_unfollowed) {
  const char *name = t_name("accru");
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 16, &ref);
  int go[2], ready[2];
  pid_t pid = fork_viewer(w, name, go, ready);
  for (int i = 0; i < 4200; i++) {
    char fp[256];
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd.plant.%d", name, i);
    CHECK_EQ(symlink("/nonexistent", fp), 0);
  }
  for (int i = 0; i < 200; i++) { /* and regular garbage files: examined, never followed */
    char fp[256];
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd.junk.%d", name, i);
    int f = open(fp, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK_GE(f, 0);
    close(f);
  }
  hzshm__shm_close(w);
  hzshm__shm_config_t c = held_cfg(16);
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 1);
  hzshm__shm_w_set_poison(w, 1);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_del(w, &ref, "held", 4), 0);
  hzshm__shm_stats_t st;
  for (int i = 0; i < 8; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "restarted writer: private files followed %u, retired pending %llu\n", hzshm__shm_prd_followed(w),
          (unsigned long long)st.retired_pending);
  CHECK_EQ(st.prd_complete, 1); /* the flood did not keep the scan from finishing */
  /* not freed under the view (with what the rebuild retired: the reader's
   * epoch is older than all of it); the reader's check below (poisoned
   * memory) is the final word */
  CHECK_GE(st.retired_pending, 1);
  viewer_release(pid, go, ready);
  held_done(w, name, go, ready);
}

/* Files planted before the agent starts (issue 10, access model): a process
 * of the allowed group creates the segment's data and lock files in the
 * sticky /dev/shm (nothing else exists yet: first start after boot, or after
 * --unlink-on-exit) and keeps them open for writing. A writer that adopted
 * them would map a file whose owner can truncate it (SIGBUS in the agent) and
 * write values into it (wrong hits for every reader), and could unlink the
 * lock file under it (a second writer). The writer uses only files of its
 * own uid: it replaces the planted ones. */
TEST_CASE(planted_files) {
  const char *name = t_name("accpf");
  static const char *const sfx[] = {"", ".lock"};
  int afd[2];
  struct stat ast[2];
  for (int i = 0; i < 2; i++) {
    char fp[256];
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s%s", name, sfx[i]);
    afd[i] = open(fp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666); /* the attacker's, kept open */
    CHECK_GE(afd[i], 0);
    CHECK_EQ(fchown(afd[i], HOSTILE_UID, GID), 0);
    CHECK_EQ(fchmod(afd[i], 0666), 0);
    CHECK_EQ(fstat(afd[i], &ast[i]), 0);
  }
  hzshm__shm_config_t c = held_cfg(16);
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  for (int i = 0; i < 2; i++) {
    char fp[256];
    struct stat now;
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s%s", name, sfx[i]);
    CHECK_EQ(stat(fp, &now), 0);
    fprintf(stderr, "%s: planted inode %llu (uid %u), now inode %llu (uid %u)\n", sfx[i][0] ? sfx[i] : "data",
            (unsigned long long)ast[i].st_ino, (unsigned)ast[i].st_uid, (unsigned long long)now.st_ino,
            (unsigned)now.st_uid);
    CHECK_NE(now.st_ino, ast[i].st_ino);
    CHECK_EQ(now.st_uid, geteuid());
  }
  /* what the attacker does with its descriptors now concerns its own files only */
  CHECK_EQ(ftruncate(afd[0], 0), 0);
  CHECK_EQ(ftruncate(afd[1], 0), 0);
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k", 1, "v", 1, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  CHECK_RC(hzshm__shm_w_maintain(w), 0);
  close(afd[0]);
  close(afd[1]);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* Lowest `n` free descriptor numbers: the RLIMIT_NOFILE that leaves exactly
 * n more descriptors to this process. */
static rlim_t limit_leaving(int n) {
  rlim_t lim = 0;
  for (int free_seen = 0; free_seen < n; lim++)
    free_seen += fcntl((int)lim, F_GETFD) < 0 && errno == EBADF;
  return lim;
}

/* A restarted writer out of descriptors (RLIMIT_NOFILE lowered so that
 * w_open gets its four files and the scan its directory, but no reader
 * file): its scans are incomplete, so it frees nothing -- the entry under a
 * view of a reader confirmed by the previous writer stays -- until a scan
 * completes once the limit allows (then the file is followed, and the entry
 * is still held by the view). */
TEST_CASE(restart_no_fds) {
  const char *name = t_name("accfd");
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 16, &ref);
  int go[2], ready[2];
  pid_t pid = fork_viewer(w, name, go, ready);
  hzshm__shm_close(w);
  struct rlimit old, low;
  CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = limit_leaving(5); /* lock, data, reader and probe files; the directory */
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  hzshm__shm_config_t c = held_cfg(16);
  int reused = 0;
  int rc = hzshm__shm_w_open(name, &c, 0, &w, &reused);
  hzshm__shm_stats_t st = {0};
  if (rc == 0) {
    hzshm__shm_w_set_poison(w, 1);
    rc = hzshm__shm_w_session(w, "s", 1, &ref);
    if (rc == 0) rc = hzshm__shm_w_del(w, &ref, "held", 4);
    for (int i = 0; i < 8 && rc == 0; i++) rc = hzshm__shm_w_maintain(w);
    if (rc == 0) rc = hzshm__shm_stats(w, &st);
  }
  CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0); /* before any CHECK can fail */
  CHECK_RC(rc, 0);
  CHECK_EQ(reused, 1);
  fprintf(stderr, "out of descriptors: complete %d, incomplete scans %llu, followed %u, retired pending %llu\n",
          st.prd_complete, (unsigned long long)st.prd_scans_incomplete, hzshm__shm_prd_followed(w),
          (unsigned long long)st.retired_pending);
  CHECK_EQ(st.prd_complete, 0);
  CHECK_GE(st.prd_scans_incomplete, 9);
  CHECK_EQ(hzshm__shm_prd_followed(w), 0);
  CHECK_GE(st.retired_pending, 1);
  CHECK_RC(hzshm__shm_w_maintain(w), 0); /* descriptors again: the scan completes */
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  fprintf(stderr, "descriptors back: complete %d, followed %u, retired pending %llu\n", st.prd_complete,
          hzshm__shm_prd_followed(w), (unsigned long long)st.retired_pending);
  CHECK_EQ(st.prd_complete, 1);
  CHECK_EQ(hzshm__shm_prd_followed(w), 1);
  for (int i = 0; i < 4; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  viewer_release(pid, go, ready); /* the reader's word: poisoned memory would differ */
  held_done(w, name, go, ready);
}

/* A reader creates its private file in steps: create, alive byte, size,
 * header (shm_private.c). A writer scan between the size and the header
 * saw a complete-sized file with a zero header and remembered it as
 * rejected by inode and size; the header write changes neither (nor the
 * directory's mtime), so the file was looked at again only when rejected
 * entries were forgotten (every 256 scans: ~13 s of agent ticks), its
 * reader on the agent path meanwhile. A file changed within the last second
 * is not remembered: followed at the next readdir (at most 1 s later). */
TEST_CASE(rejected_while_created) {
  const char *name = t_name("accrc");
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 16, &ref);
  char fp[256];
  snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd.%d.1.00000000000000aa", name, (int)getpid());
  hzshm__shm_rdhdr_t rh;
  hzshm__shm_rdhdr_make(w->hdr, &rh);
  int f = open(fp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  struct flock lk = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)rh.nslots, .l_len = 1};
  CHECK_GE(f, 0);
  CHECK_EQ(fcntl(f, F_OFD_SETLK, &lk), 0);
  CHECK_EQ(ftruncate(f, (off_t)rh.total_size), 0);
  CHECK_RC(hzshm__shm_w_maintain(w), 0); /* sees it sized, header still zero */
  CHECK_EQ(hzshm__shm_prd_followed(w), 0);
  CHECK_EQ(pwrite(f, &rh, sizeof rh, 0), (ssize_t)sizeof rh);
  /* at least 2 s of maintain calls (200 at >= 10 ms), fewer than 256 scans */
  int calls = 0;
  while (calls < 200 && hzshm__shm_prd_followed(w) == 0) {
    CHECK_RC(hzshm__shm_w_maintain(w), 0);
    calls++;
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "file completed after a scan: followed %u after %d maintain calls\n", hzshm__shm_prd_followed(w),
          calls);
  CHECK_EQ(hzshm__shm_prd_followed(w), 1);
  close(f);
  unlink(fp);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

/* ---- the trust anchor (shm_trust.c) ---- */

/* A writer child of uid `wuid` (group GID) on `name` whose session "s" holds
 * "key" = `val`; it maintains (follows readers' private files) until *stop.
 * Returns its pid once the value is in. */
static pid_t fork_writer_as(uid_t wuid, const char *name, const char *val, _Atomic int *stop) {
  int ready[2];
  CHECK_EQ(pipe(ready), 0);
  pid_t pid = fork_child();
  if (pid == 0) {
    close(ready[0]);
    if (wuid != 0 && become(wuid) != 0) _exit(2);
    hzshm__shm_config_t c = held_cfg(16);
    hzshm__shm_t *w;
    hzshm__sref_t ref;
    int rc = hzshm__shm_w_open(name, &c, 0, &w, NULL);
    if (rc != 0) {
      fprintf(stderr, "writer (uid %u): w_open %s\n", (unsigned)wuid, hzshm_err_name(rc));
      _exit(3);
    }
    if (hzshm__shm_w_session(w, "s", 1, &ref) != 0 ||
        hzshm__shm_w_put(w, &ref, "key", 3, val, strlen(val), 0, hzshm__shm_w_stamp(w), 0, 0) != 0)
      _exit(4);
    if (write(ready[1], "r", 1) != 1) _exit(5);
    uint64_t end = t_now_ns() + 60ull * 1000000000ull; /* a bound, should the parent die */
    while (!atomic_load_explicit(stop, memory_order_relaxed) && t_now_ns() < end) {
      hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
      hzshm__shm_w_maintain(w);
      struct timespec ts = {0, 2000000}; /* the writer's tick, as the agent's loop */
      nanosleep(&ts, NULL);
    }
    hzshm__shm_close(w);
    _exit(0);
  }
  close(ready[1]);
  char ch;
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  close(ready[0]);
  return pid;
}

/* In a child of uid READER_UID (HZSHM_AGENT_UID = agent_uid unless NULL):
 * attach to `name` and read "key" of session "s" until a hit (bounded).
 * Returns the attach code, or 0 with the value hit in `got`; -1 if the
 * reader attached but had no hit in 20 s. *private_file: 1 if it used a
 * private reader file. */
static int read_as_reader(const char *name, const char *agent_uid, char got[32], int *private_file) {
  struct {
    int rc, priv;
    char val[32];
  } res = {-1, 0, {0}};
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pid_t pid = fork_child();
  if (pid == 0) {
    close(p[0]);
    if (become(READER_UID) != 0) _exit(2);
    if (agent_uid) setenv("HZSHM_AGENT_UID", agent_uid, 1);
    else unsetenv("HZSHM_AGENT_UID");
    hzshm__shm_t *r;
    res.rc = hzshm__shm_r_attach(name, &r);
    if (res.rc == 0) {
      res.priv = r->prd_path != NULL; /* white-box */
      res.rc = -1;
      uint64_t end = t_now_ns() + 20ull * 1000000000ull;
      while (res.rc != 0 && t_now_ns() < end) {
        hzshm__sref_t ref;
        size_t n = 0;
        if (hzshm__shm_r_session(r, "s", 1, &ref) == 0 &&
            hzshm__shm_r_get(r, &ref, "key", 3, res.val, sizeof res.val - 1, &n) == 0) {
          res.val[n] = 0;
          res.rc = 0;
        } else {
          sched_yield(); /* EBUSY until the writer follows our private file */
        }
      }
      hzshm__shm_close(r);
    }
    if (write(p[1], &res, sizeof res) != (ssize_t)sizeof res) _exit(3);
    _exit(0);
  }
  close(p[1]);
  CHECK_EQ(read(p[0], &res, sizeof res), (ssize_t)sizeof res);
  close(p[0]);
  wait_exit0(pid);
  memcpy(got, res.val, 32);
  if (private_file) *private_file = res.priv;
  return res.rc;
}

static void writer_stop(pid_t pid, _Atomic int *stop, const char *name) {
  atomic_store_explicit(stop, 1, memory_order_relaxed);
  wait_exit0(pid);
  atomic_store_explicit(stop, 0, memory_order_relaxed);
  hzshm__shm_unlink(name);
}

/* The review's attack: a process of the allowed group (HOSTILE_UID) creates
 * the segment before the agent (or after --unlink-on-exit) and puts "key" =
 * "PLANTED"; a reader of another uid attaching by name used to hit it (and
 * even took its writer confirmation from the planter's lock). The reader
 * trusts only files of its own uid, root's and HZSHM_AGENT_UID's. */
TEST_CASE(planted_segment) {
  _Atomic int *stop = shared_flag();
  const char *name = t_name("accps");
  char got[32];
  pid_t wp = fork_writer_as(HOSTILE_UID, name, "PLANTED", stop);
  int rc = read_as_reader(name, NULL, got, NULL);
  fprintf(stderr, "reader (uid %d) on a segment of uid %d: %s%s%s\n", READER_UID, HOSTILE_UID, hzshm_err_name(rc),
          rc == 0 ? ", hit " : "", rc == 0 ? got : "");
  CHECK_RC(rc, HZSHM_EUNTRUSTED);
  /* a bad HZSHM_AGENT_UID is a clear error, not "trust nobody more" */
  CHECK_RC(read_as_reader(name, "no-such-user-hzshm", got, NULL), HZSHM_EINVAL);
  CHECK_RC(read_as_reader(name, "12x", got, NULL), HZSHM_EINVAL);
  /* The same writer as the configured agent uid (by number) is trusted. */
  char num[16];
  snprintf(num, sizeof num, "%d", HOSTILE_UID);
  CHECK_RC(read_as_reader(name, num, got, NULL), 0);
  CHECK_STREQ(got, "PLANTED");
  CHECK_RC(read_as_reader(name, "65534", got, NULL), HZSHM_EUNTRUSTED); /* another agent uid */
  writer_stop(wp, stop, name);
  munmap(stop, sizeof *stop);
}

/* The legitimate setups: the agent as root, or as the reader's own uid. */
TEST_CASE(trusted_writers) {
  _Atomic int *stop = shared_flag();
  static const uid_t wuids[] = {0, READER_UID};
  for (int i = 0; i < 2; i++) {
    const char *name = t_name("acctw");
    char got[32];
    int priv = -1;
    pid_t wp = fork_writer_as(wuids[i], name, "value", stop);
    CHECK_RC(read_as_reader(name, NULL, got, &priv), 0);
    CHECK_STREQ(got, "value");
    CHECK_EQ(priv, (wuids[i] != READER_UID)); /* the writer's own uid shares its reader file */
    writer_stop(wp, stop, name);
  }
  munmap(stop, sizeof *stop);
}

/* A shared reader file planted while its name was free (here: replaced by
 * root, as only a vanished one could be): a reader of the writer's uid must
 * not keep its slots in it (the writer never looks there: reclamation would
 * not wait for that reader). It keeps them in a private file instead. */
TEST_CASE(planted_rd) {
  _Atomic int *stop = shared_flag();
  const char *name = t_name("accrd");
  pid_t wp = fork_writer_as(READER_UID, name, "value", stop);
  char rp[256], tmp[256];
  snprintf(rp, sizeof rp, "/dev/shm/hzshm.%s.rd", name);
  snprintf(tmp, sizeof tmp, "/dev/shm/hzshm.%s.rd.tmp", name);
  int src = open(rp, O_RDONLY | O_CLOEXEC), dst = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  struct stat st;
  CHECK_GE(src, 0);
  CHECK_GE(dst, 0);
  CHECK_EQ(fstat(src, &st), 0);
  CHECK_EQ(ftruncate(dst, st.st_size), 0);
  char buf[4096];
  ssize_t n = pread(src, buf, sizeof buf, 0); /* the header: a valid reader file of this segment */
  CHECK_GT(n, 0);
  CHECK_EQ(pwrite(dst, buf, (size_t)n, 0), n);
  CHECK_EQ(fchown(dst, HOSTILE_UID, GID), 0);
  CHECK_EQ(fchmod(dst, 0666), 0);
  CHECK_EQ(rename(tmp, rp), 0);
  close(src);
  close(dst);
  char got[32];
  int priv = -1;
  CHECK_RC(read_as_reader(name, NULL, got, &priv), 0);
  fprintf(stderr, "reader of the writer's uid with a planted %s: %s reader file\n", rp, priv ? "private" : "shared");
  CHECK_STREQ(got, "value");
  CHECK_EQ(priv, 1);
  writer_stop(wp, stop, name);
  unlink(rp);
  munmap(stop, sizeof *stop);
}

/* In a child of uid READER_UID: hzshm__shm_r_attach(name), closed again.
 * Returns its code, or 1 if it still had not returned after 5 s (hung). */
static int attach_as_reader(const char *name) {
  int p[2];
  CHECK_EQ(pipe(p), 0);
  pid_t pid = fork_child();
  if (pid == 0) {
    close(p[0]);
    if (become(READER_UID) != 0) _exit(2);
    unsetenv("HZSHM_AGENT_UID");
    alarm(5); /* a bound: SIGALRM kills the child if the attach blocks */
    hzshm__shm_t *r = NULL;
    int rc = hzshm__shm_r_attach(name, &r);
    hzshm__shm_close(r);
    _exit(write(p[1], &rc, sizeof rc) == (ssize_t)sizeof rc ? 0 : 3);
  }
  close(p[1]);
  int rc = 1, status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  if (WIFSIGNALED(status)) CHECK_EQ(WTERMSIG(status), SIGALRM);
  else CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && read(p[0], &rc, sizeof rc) == (ssize_t)sizeof rc);
  close(p[0]);
  return rc;
}

/* Runs `what` in a child of HOSTILE_UID: it makes the names (its exit code: 0). */
static void as_hostile(void (*what)(const char *, const char *), const char *a, const char *b) {
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    if (become(HOSTILE_UID) != 0) _exit(2);
    what(a, b);
    _exit(0);
  }
  wait_exit0(pid);
}
static void plant_fifo(const char *path, const char *unused) {
  (void)unused;
  if (mkfifo(path, 0644) != 0) _exit(10);
}
static void plant_symlink(const char *target, const char *path) {
  if (symlink(target, path) != 0) _exit(11);
}

/* Names a process of any uid may make while a segment's name is free (here
 * HOSTILE_UID's; /dev/shm is world-writable): a FIFO made r_attach's open
 * block for ever (until somebody opened it for writing); a symlink to a
 * trusted writer's segment A under the name B (and one for B's reader file)
 * attached B's readers to A's data and A's agent socket (another segment's
 * values under B's name). Both are refused as untrusted, and a writer of B
 * replaces a planted symlink like a planted file. */
TEST_CASE(planted_links) {
  _Atomic int *stop = shared_flag();
  const char *a = t_name("accla");
  char ap[256], ard[256];
  snprintf(ap, sizeof ap, "/dev/shm/hzshm.%s", a);
  snprintf(ard, sizeof ard, "/dev/shm/hzshm.%s.rd", a);
  pid_t wp = fork_writer_as(0, a, "value", stop);
  CHECK_RC(attach_as_reader(a), 0);

  char f[64], fp[256];
  snprintf(f, sizeof f, "%s", t_name("acclf"));
  snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s", f);
  as_hostile(plant_fifo, fp, NULL);
  int rc = attach_as_reader(f);
  fprintf(stderr, "FIFO planted at %s: attach %s\n", fp, rc == 1 ? "hung (killed after 5 s)" : hzshm_err_name(rc));
  CHECK_RC(rc, HZSHM_EUNTRUSTED);
  unlink(fp);

  char b[64], bp[256], brd[256];
  snprintf(b, sizeof b, "%s", t_name("acclb"));
  snprintf(bp, sizeof bp, "/dev/shm/hzshm.%s", b);
  snprintf(brd, sizeof brd, "/dev/shm/hzshm.%s.rd", b);
  as_hostile(plant_symlink, ap, bp);
  as_hostile(plant_symlink, ard, brd);
  rc = attach_as_reader(b);
  fprintf(stderr, "symlink %s -> %s: attach %s\n", bp, ap, rc == 1 ? "hung" : hzshm_err_name(rc));
  CHECK_RC(rc, HZSHM_EUNTRUSTED);
  /* The writer of B (root) removes the planted symlinks and serves B. */
  _Atomic int *stop_b = shared_flag();
  pid_t wb = fork_writer_as(0, b, "value-b", stop_b);
  char got[32];
  CHECK_RC(read_as_reader(b, NULL, got, NULL), 0);
  CHECK_STREQ(got, "value-b");
  writer_stop(wb, stop_b, b);
  munmap(stop_b, sizeof *stop_b);

  CHECK_RC(attach_as_reader(a), 0); /* A itself is attached as before */
  writer_stop(wp, stop, a);
  munmap(stop, sizeof *stop);
}

/* A segment left by an older build, whose files were group-writable
 * (0660): a process of the group opened the data file for writing then and
 * kept the descriptor. A new writer used to adopt that inode (same layout)
 * and only fchmod it, which revokes no descriptor: the process then wrote
 * the value every reader trusted and hit. Such an inode is replaced. */
TEST_CASE(reuse_shared_mode) {
  _Atomic int *stop = shared_flag();
  const char *name = t_name("accsm");
  char dp[256], rp[256];
  snprintf(dp, sizeof dp, "/dev/shm/hzshm.%s", name);
  snprintf(rp, sizeof rp, "/dev/shm/hzshm.%s.rd", name);
  hzshm__sref_t ref;
  hzshm__shm_t *w = held_writer(name, 16, &ref);
  hzshm__shm_close(w);
  CHECK_EQ(chmod(dp, 0660), 0);
  CHECK_EQ(chmod(rp, 0660), 0); /* the older build's mode */
  int ready[2], go[2];
  CHECK_EQ(pipe(ready), 0);
  CHECK_EQ(pipe(go), 0);
  pid_t hp = fork_child();
  if (hp == 0) {
    if (become(HOSTILE_UID) != 0) _exit(2);
    int fd = open(dp, O_RDWR | O_CLOEXEC);
    char g;
    if (fd < 0 || write(ready[1], "r", 1) != 1 || read(go[0], &g, 1) != 1) _exit(3);
    struct stat st;
    if (fstat(fd, &st) != 0) _exit(4);
    char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) _exit(5);
    int planted = 0;
    for (char *p = m; (p = memmem(p, (size_t)(m + st.st_size - p), "value", 5)) != NULL; p += 5, planted++)
      memcpy(p, "EVIL!", 5);
    _exit(planted > 0 ? 0 : 6); /* it wrote into the inode it kept */
  }
  char ch;
  CHECK_EQ(read(ready[0], &ch, 1), 1);
  pid_t wp = fork_writer_as(0, name, "value", stop); /* the new build's writer */
  CHECK_EQ(write(go[1], "g", 1), 1);
  wait_exit0(hp);
  char got[32];
  int rc = read_as_reader(name, NULL, got, NULL);
  fprintf(stderr, "reader after a writer on a once group-writable segment: %s%s%s\n", hzshm_err_name(rc),
          rc == 0 ? ", hit " : "", rc == 0 ? got : "");
  CHECK_RC(rc, 0);
  CHECK_STREQ(got, "value");
  writer_stop(wp, stop, name);
  close(ready[0]);
  close(ready[1]);
  close(go[0]);
  close(go[1]);
  munmap(stop, sizeof *stop);
}

/* Every case runs readers under other uids: root only. */
TEST_SETUP {
  if (geteuid() != 0) {
    fprintf(stderr, "not root: cannot run readers under other uids; skipped\n");
    exit(0);
  }
}

/* Parameter: seconds of writer load (default 6). */
TEST_CASE(readers_and_hostile_under_load) {
  int secs = atoi(t_param(0, "6"));
  const int nr = 2;
  const char *name = t_name("acc");
  st_side_t *side = mmap(NULL, sizeof *side, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(side, MAP_FAILED);
  hzshm__shm_config_t c = {.memory_bytes = 1280u << 10, .max_sessions = 16, .reader_slots = 16,
                           .partition_count = 271, .gid_set = 1, .gid = GID};
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_w_set_poison(w, 1);
  st_writer_t *W = malloc(sizeof *W);
  st_writer_init(W, w, side, 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid());
  pid_t pids[3];
  for (int i = 0; i < nr + 1; i++) {
    pids[i] = fork_child();
    if (pids[i] == 0) {
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
  CHECK_EQ(atomic_load_explicit(&side->ready, memory_order_relaxed), nr + 1);
  uint32_t most = 0;
  int failed = 0;
  uint64_t end = t_now_ns() + (uint64_t)secs * 1000000000ull;
  while (t_now_ns() < end && !failed) {
    for (int i = 0; i < 256; i++) st_writer_step(W);
    uint32_t f = hzshm__shm_prd_followed(w);
    most = f > most ? f : most;
    int status;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      fprintf(stderr, "pid %d exited early, status %d\n", (int)p, status);
      failed = 1;
    }
  }
  atomic_store_explicit(&side->stop, 1, memory_order_relaxed);
  fprintf(stderr, "private files followed at most %u (81 of the hostile uid, 2 readers)\n", most);
  CHECK_LE(most, 64u + (uint32_t)nr); /* 64 of the hostile uid, plus the readers' */
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
    CHECK_GT(atomic_load(&side->hits[i]), 0); /* the readers of another uid had hits */
    hits += atomic_load(&side->hits[i]);
  }
  hzshm__shm_stats_t st;
  for (int i = 0; i < 8; i++) CHECK_RC(hzshm__shm_w_maintain(w), 0);
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_EQ(st.retired_pending, 0); /* nothing of the dead readers (or the hostile one) holds memory back */
  uint32_t followed = hzshm__shm_prd_followed(w);
  CHECK_EQ(followed, 0); /* their private files are no longer followed */
  fprintf(stderr, "writer ops %llu, reader hits %llu (uid %d), evictions %llu, private files still followed %u\n",
          (unsigned long long)atomic_load(&side->writer_ops), (unsigned long long)hits, READER_UID,
          (unsigned long long)st.evictions, followed);
  /* The writer lock is not on a file the readers can open: a new writer gets the segment. */
  hzshm__shm_close(w);
  int reused = 0;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, &reused), 0);
  CHECK_EQ(reused, 1);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  hostile_cleanup("/dev/shm", name); /* what the hostile process planted or left */
  free(W);
}
