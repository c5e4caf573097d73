/* test_shm_names.c - a segment's names in the shared directory (issue 10, the
 * access model's last holes): a writer removing its segment while another
 * one starts (hzshm__shm_close_unlink, writer_lock), a hard link from one
 * segment's data file to another segment's name (the header's name), and
 * the agent uid of HZSHM_AGENT_UID (hzshm__shm_parse_uid). Internal API. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "shm_int.h"

static hzshm__shm_config_t cfg(void) {
  hzshm__shm_config_t c = {.memory_bytes = 2u << 20, .max_sessions = 8, .reader_slots = 4, .partition_count = 7};
  return c;
}

static ino_t ino_of_path(const char *name, int rd) {
  char path[HZSHM_SHM_PATH_MAX];
  struct stat st;
  CHECK_RC(hzshm__shm_path(name, rd, path, sizeof path), 0);
  return stat(path, &st) == 0 ? st.st_ino : 0; /* 0: no such file */
}

static ino_t ino_of_fd(int fd) {
  struct stat st;
  CHECK(fstat(fd, &st) == 0);
  return st.st_ino;
}

static void put1(hzshm__shm_t *w, const char *key, const char *val) {
  hzshm__sref_t ref;
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, key, strlen(key), val, strlen(val), 0, hzshm__shm_w_stamp(w), 0, 0), 0);
}

/* A reader of `name` hits `key` and returns the value in buf (NUL-ended). */
static int get1(hzshm__shm_t *r, const char *key, char *buf, size_t cap) {
  hzshm__sref_t ref;
  size_t n = 0;
  int rc = hzshm__shm_r_session(r, "s", 1, &ref);
  if (rc == 0) rc = hzshm__shm_r_get(r, &ref, key, strlen(key), buf, cap - 1, &n);
  buf[rc == 0 ? n : 0] = 0;
  return rc;
}

/* ---- 1. --unlink-on-exit against a writer starting meanwhile ----
 * The first writer removes its segment (close with unlink) while a second
 * writer process tries w_open on the same name in a loop. Afterwards exactly
 * one set of files is at the names and it is the live writer's: its data
 * and lock inodes, a reader attaches and hits its value, and a third writer
 * is refused (the lock at the name is held). Old code (close, then unlink
 * by name): the second writer took over the files between the two and lost
 * them to the unlink -- readers got -ENOENT, a third writer made a second
 * segment. Many rounds: the window is a few microseconds wide. */
enum { HANDOVER_ROUNDS = 60 };

static void handover_child(const char *name, int ready_w, int res_w, int go_r) {
  t_child_dies_with_parent();
  hzshm__shm_config_t c = cfg();
  hzshm__shm_t *w = NULL;
  int told = 0, rc;
  uint64_t deadline = t_now_ns() + 20ull * 1000000000ull;
  while ((rc = hzshm__shm_w_open(name, &c, 0, &w, NULL)) != 0) {
    if (rc != HZSHM_EEXIST || t_now_ns() > deadline) _exit(2);
    if (!told) told = write(ready_w, "r", 1) == 1; /* trying: the first writer may go now */
  }
  if (!told && write(ready_w, "r", 1) != 1) _exit(3);
  put1(w, "k", "second");
  ino_t inos[2] = {ino_of_fd(w->dfd), ino_of_fd(w->lock_fd)};
  if (write(res_w, inos, sizeof inos) != (ssize_t)sizeof inos) _exit(4);
  char b;
  if (read(go_r, &b, 1) < 0) _exit(5); /* the parent looked (or died) */
  hzshm__shm_close_unlink(w);
  _exit(0);
}

TEST_CASE(unlink_handover) {
  hzshm__shm_config_t c = cfg();
  for (int round = 0; round < HANDOVER_ROUNDS; round++) {
    const char *name = t_name("handover");
    hzshm__shm_t *w1, *r, *w3;
    CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w1, NULL), 0);
    put1(w1, "k", "first");
    int ready[2], res[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(res) == 0 && pipe(go) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
      close(ready[0]), close(res[0]), close(go[1]);
      handover_child(name, ready[1], res[1], go[0]);
    }
    close(ready[1]), close(res[1]), close(go[0]);
    char b;
    CHECK(read(ready[0], &b, 1) == 1); /* the second writer is trying (it has a deadline) */
    hzshm__shm_close_unlink(w1);
    ino_t inos[2];
    CHECK(read(res[0], inos, sizeof inos) == (ssize_t)sizeof inos); /* the second writer is in charge */
    ino_t data_at = ino_of_path(name, 0), lock_at = ino_of_path(name, 2);
    int arc = hzshm__shm_r_attach(name, &r);
    char got[16] = "";
    int grc = arc == 0 ? get1(r, "k", got, sizeof got) : arc;
    int w3rc = hzshm__shm_w_open(name, &c, 0, &w3, NULL);
    if (data_at != inos[0] || lock_at != inos[1] || arc != 0 || grc != 0 || strcmp(got, "second") != 0 ||
        w3rc != HZSHM_EEXIST)
      fprintf(stderr,
              "round %d: live writer's data/lock inodes %lu/%lu, at the names %lu/%lu; attach %s, get %s \"%s\"; "
              "a third writer: %s\n",
              round, (unsigned long)inos[0], (unsigned long)inos[1], (unsigned long)data_at, (unsigned long)lock_at,
              hzshm_err_name(arc), hzshm_err_name(grc), got, hzshm_err_name(w3rc));
    CHECK_EQ(data_at, inos[0]);
    CHECK_EQ(lock_at, inos[1]);
    CHECK_RC(arc, 0);
    CHECK_RC(grc, 0);
    CHECK(strcmp(got, "second") == 0);
    CHECK_RC(w3rc, HZSHM_EEXIST);
    CHECK(ino_of_fd(r->dfd) == inos[0]);
    hzshm__shm_close(r);
    close(go[1]); /* the second writer removes its segment */
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    close(ready[0]), close(res[0]);
    for (int rd = 0; rd < 3; rd++) CHECK_EQ(ino_of_path(name, rd), 0); /* all its names gone */
  }
}

/* close_unlink removes exactly the writer's own names; a reader handle's
 * removes nothing; the next writer starts a fresh segment and excludes a third. */
TEST_CASE(close_unlink_basics) {
  hzshm__shm_config_t c = cfg();
  const char *name = t_name("unlinkopen");
  hzshm__shm_t *w1, *w2, *w3, *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w1, NULL), 0);
  hzshm__shm_close_unlink(w1);
  for (int rd = 0; rd < 3; rd++) CHECK_EQ(ino_of_path(name, rd), 0);
  int reused = -1;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w2, &reused), 0);
  CHECK_EQ(reused, 0);
  CHECK_EQ(ino_of_path(name, 0), ino_of_fd(w2->dfd));
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w3, NULL), HZSHM_EEXIST);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  hzshm__shm_close_unlink(r);
  CHECK_EQ(ino_of_path(name, 0), ino_of_fd(w2->dfd));
  hzshm__shm_close_unlink(w2);
  for (int rd = 0; rd < 3; rd++) CHECK_EQ(ino_of_path(name, rd), 0);
}

/* w_holds_name: 1 while the writer's lock file is at the lock name, 0 once
 * somebody removed it or put another file there (the agent then stops:
 * health.c tick_cb), HZSHM_EINVAL for a reader handle. */
TEST_CASE(holds_name) {
  hzshm__shm_config_t c = cfg();
  const char *name = t_name("holds");
  char lock[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(name, 2, lock, sizeof lock), 0);
  hzshm__shm_t *w, *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_holds_name(w), 1);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_holds_name(r), HZSHM_EINVAL);
  hzshm__shm_close(r);
  CHECK_EQ(unlink(lock), 0); /* removed */
  CHECK_RC(hzshm__shm_w_holds_name(w), 0);
  int fd = open(lock, O_CREAT | O_EXCL | O_WRONLY, 0600); /* replaced by another file */
  CHECK(fd >= 0);
  close(fd);
  CHECK_RC(hzshm__shm_w_holds_name(w), 0);
  CHECK_EQ(unlink(lock), 0);
  CHECK_EQ(symlink("/nonexistent", lock), 0); /* a symlink at the name is never ours */
  CHECK_RC(hzshm__shm_w_holds_name(w), 0);
  CHECK_EQ(unlink(lock), 0);
  /* The name was lost, so close_unlink leaves the data and reader files
   * (case close_unlink_lost_name): removed here, by the test. */
  hzshm__shm_close_unlink(w);
  for (int kind = 0; kind < 2; kind++) {
    char p[HZSHM_SHM_PATH_MAX];
    CHECK_RC(hzshm__shm_path(name, kind, p, sizeof p), 0);
    CHECK_EQ(unlink(p), 0);
  }
}

/* A writer whose lock file lost its name (the race of docs/SHM.md, writer
 * exclusion: the agent then stops from its tick) while a second writer took
 * the segment over (a fresh lock file, and the same data and reader files,
 * reused): the first one's close_unlink (the stopping agent's
 * --unlink-on-exit) must not remove them. They are still its inodes too,
 * but no longer under its lock: removed, the live writer's readers could
 * not attach and the next writer would make a second segment. */
TEST_CASE(close_unlink_lost_name) {
  hzshm__shm_config_t c = cfg();
  const char *name = t_name("lostname");
  char lock[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(name, 2, lock, sizeof lock), 0);
  hzshm__shm_t *w1, *w2, *r;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w1, NULL), 0);
  CHECK_EQ(unlink(lock), 0);
  int reused = -1;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w2, &reused), 0);
  CHECK_EQ(reused, 1); /* w1's data file, under w2's lock now */
  put1(w2, "k", "w2");
  hzshm__shm_w_heartbeat(w2, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm__shm_w_holds_name(w1), 0);
  hzshm__shm_close_unlink(w1);
  CHECK_EQ(ino_of_path(name, 0), ino_of_fd(w2->dfd));
  CHECK_EQ(ino_of_path(name, 1), ino_of_fd(w2->rfd));
  CHECK_EQ(ino_of_path(name, 2), ino_of_fd(w2->lock_fd));
  hzshm__shm_w_heartbeat(w2, HZSHM_SHM_SERVING); /* w1's close marked the file stopped */
  char got[16];
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(get1(r, "k", got, sizeof got), 0);
  CHECK_STREQ(got, "w2");
  hzshm__shm_close(r);
  hzshm__shm_close_unlink(w2);
  for (int rd = 0; rd < 3; rd++) CHECK_EQ(ino_of_path(name, rd), 0);
}

/* ---- 2. a hard link to another segment's data file ----
 * Segment A is live; somebody links A's data and reader files to the names of segment B
 * (where fs.protected_hardlinks is off a group member may; the owner and
 * root always may). Readers of B must refuse it (HZSHM_EUNTRUSTED: old code
 * attached it and hit A's value under B's name), A's readers are unaffected,
 * and a writer of B replaces the link by a segment of its own instead of
 * reusing A's file (old code: two writers on A's file). */
static void link_name(const char *from, int from_rd, const char *to, int to_rd) {
  char a[HZSHM_SHM_PATH_MAX], b[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(from, from_rd, a, sizeof a), 0);
  CHECK_RC(hzshm__shm_path(to, to_rd, b, sizeof b), 0);
  unlink(b);
  CHECK(link(a, b) == 0);
}

TEST_CASE(hardlink_alias) {
  hzshm__shm_config_t c = cfg();
  const char *na = t_name("linkA"), *nb = t_name("linkB");
  hzshm__shm_t *wa, *wb, *r;
  char got[16];
  CHECK_RC(hzshm__shm_w_open(na, &c, 0, &wa, NULL), 0);
  put1(wa, "k", "A-value");
  link_name(na, 0, nb, 0);
  link_name(na, 1, nb, 1); /* a reader needs a reader file at the name too */
  int rc = hzshm__shm_r_attach(nb, &r);
  if (rc == 0) {
    int g = get1(r, "k", got, sizeof got);
    fprintf(stderr, "attached B = A's file: get %s \"%s\"\n", hzshm_err_name(g), got);
    hzshm__shm_close(r);
  }
  CHECK_RC(rc, HZSHM_EUNTRUSTED);
  /* A's readers: unaffected */
  CHECK_RC(hzshm__shm_r_attach(na, &r), 0);
  CHECK_RC(get1(r, "k", got, sizeof got), 0);
  CHECK(strcmp(got, "A-value") == 0);
  hzshm__shm_close(r);
  /* B's writer makes its own segment (it neither reuses A's data file nor
   * adopts A's reader file); A keeps its files, its value, its writer */
  ino_t a_ino = ino_of_fd(wa->dfd);
  CHECK_RC(hzshm__shm_w_open(nb, &c, 0, &wb, NULL), 0);
  CHECK(ino_of_fd(wb->dfd) != a_ino);
  CHECK(ino_of_fd(wb->rfd) != ino_of_fd(wa->rfd));
  CHECK_EQ(ino_of_path(na, 1), ino_of_fd(wa->rfd));
  CHECK_EQ(ino_of_path(na, 0), a_ino);
  CHECK_EQ(ino_of_path(nb, 0), ino_of_fd(wb->dfd));
  put1(wb, "k", "B-value");
  CHECK_RC(hzshm__shm_r_attach(nb, &r), 0);
  CHECK_RC(get1(r, "k", got, sizeof got), 0);
  CHECK(strcmp(got, "B-value") == 0);
  hzshm__shm_close(r);
  CHECK_RC(hzshm__shm_r_attach(na, &r), 0);
  CHECK_RC(get1(r, "k", got, sizeof got), 0);
  CHECK(strcmp(got, "A-value") == 0);
  hzshm__shm_close(r);
  /* B's writer restarts over a reader file linked from A (same geometry):
   * it must not adopt A's reader file (nor lose A's) */
  hzshm__shm_close(wb);
  link_name(na, 1, nb, 1);
  CHECK_RC(hzshm__shm_w_open(nb, &c, 1, &wb, NULL), 0);
  CHECK(ino_of_fd(wb->rfd) != ino_of_fd(wa->rfd));
  CHECK_EQ(ino_of_path(na, 1), ino_of_fd(wa->rfd));
  hzshm__shm_close_unlink(wb);
  hzshm__shm_close_unlink(wa);
}

/* A lock file that others may open is none of ours: a group process that
 * hard-linked segment A's data file (0640) to B's free lock name (where
 * fs.protected_hardlinks is off) and holds a read lock on it through its
 * read-only descriptor would keep every writer of B out, even a root agent
 * (which removes any file planted at its names). B's writer replaces such a
 * lock file. Old code: HZSHM_EEXIST for as long as the attacker liked. */
TEST_CASE(readable_lock_replaced) {
  hzshm__shm_config_t c = cfg();
  c.gid_set = 1;
  c.gid = getegid(); /* data files 0640: what the group may open */
  const char *na = t_name("rlockA"), *nb = t_name("rlockB");
  hzshm__shm_t *wa, *wb = NULL, *wb2 = NULL;
  CHECK_RC(hzshm__shm_w_open(na, &c, 0, &wa, NULL), 0);
  link_name(na, 0, nb, 2);
  char pa[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(na, 0, pa, sizeof pa), 0);
  int afd = open(pa, O_RDONLY | O_CLOEXEC); /* the group reader's descriptor */
  CHECK(afd >= 0);
  CHECK_RC(hzshm__shm_lock_byte(afd, F_RDLCK, 0), 0);
  int rc = hzshm__shm_w_open(nb, &c, 0, &wb, NULL);
  if (rc != 0) fprintf(stderr, "B's writer with A's data file at its lock name: %s\n", hzshm_err_name(rc));
  CHECK_RC(rc, 0);
  struct stat lk;
  CHECK(fstat(wb->lock_fd, &lk) == 0);
  CHECK(ino_of_path(nb, 2) == lk.st_ino && lk.st_ino != ino_of_fd(wa->dfd)); /* a fresh lock file of B's own */
  CHECK_EQ(lk.st_mode & 0777, 0600);
  CHECK_EQ(ino_of_path(na, 0), ino_of_fd(wa->dfd)); /* A keeps its data file */
  CHECK_RC(hzshm__shm_w_open(nb, &c, 0, &wb2, NULL), HZSHM_EEXIST);
  close(afd);
  hzshm__shm_close_unlink(wb);
  hzshm__shm_close_unlink(wa);
}

/* An empty file of ours with a second name at the data name is no fresh
 * data file: it may be another segment's lock file, hard-linked there. Old
 * code made A's segment in B's lock file (and chmod-ed it 0640, so the group
 * could open and lock it). A must make a file of its own; B's lock file
 * stays as it was, and still keeps a second writer of B out. */
TEST_CASE(linked_empty_data) {
  hzshm__shm_config_t c = cfg();
  c.gid_set = 1;
  c.gid = getegid();
  const char *na = t_name("edataA"), *nb = t_name("edataB");
  hzshm__shm_t *wa = NULL, *wb, *wb2 = NULL;
  CHECK_RC(hzshm__shm_w_open(nb, &c, 0, &wb, NULL), 0);
  link_name(nb, 2, na, 0);
  CHECK_RC(hzshm__shm_w_open(na, &c, 0, &wa, NULL), 0);
  struct stat lk, da;
  CHECK(fstat(wb->lock_fd, &lk) == 0 && fstat(wa->dfd, &da) == 0);
  if (lk.st_ino == da.st_ino || (lk.st_mode & 0777) != 0600 || lk.st_size != 0)
    fprintf(stderr, "B's lock file: %s A's data file, mode %o, %lld bytes\n", lk.st_ino == da.st_ino ? "IS" : "is not",
            (unsigned)(lk.st_mode & 0777), (long long)lk.st_size);
  CHECK(lk.st_ino != da.st_ino);
  CHECK_EQ(lk.st_mode & 0777, 0600);
  CHECK_EQ(lk.st_size, 0);
  CHECK_RC(hzshm__shm_w_open(nb, &c, 0, &wb2, NULL), HZSHM_EEXIST);
  hzshm__shm_close_unlink(wa);
  hzshm__shm_close_unlink(wb);
}

/* ---- 3. HZSHM_AGENT_UID: a uid or a user name ----
 * All digits: a uid. Anything else: a user name, looked up with a buffer
 * that grows on ERANGE. Old code: a leading digit meant "a number" ("1abc"
 * was refused), and a 4 KiB stack buffer refused a user whose entry is
 * longer (ERANGE taken for "no such user"). */
TEST_CASE(agent_uid_parse) {
  uid_t u = 7;
  CHECK_RC(hzshm__shm_parse_uid("0", &u), 0);
  CHECK_EQ(u, 0);
  CHECK_RC(hzshm__shm_parse_uid("65534", &u), 0);
  CHECK_EQ(u, 65534);
  u = 7;
  CHECK_RC(hzshm__shm_parse_uid("", &u), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_parse_uid("4294967295", &u), HZSHM_EINVAL); /* (uid_t)-1: "none" */
  CHECK_RC(hzshm__shm_parse_uid("99999999999999999999", &u), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_parse_uid("-1", &u), HZSHM_EINVAL);              /* no such user */
  CHECK_RC(hzshm__shm_parse_uid("1no-such-user-hz", &u), HZSHM_EINVAL); /* a name: none such */
  CHECK_EQ(u, 7);                                                         /* untouched on errors */
  struct passwd *pw = getpwnam("nobody");
  if (pw) {
    CHECK_RC(hzshm__shm_parse_uid("nobody", &u), 0);
    CHECK_EQ(u, pw->pw_uid);
  }
  /* the environment variable: unset and empty are "none"; a bad one EINVAL */
  unsetenv("HZSHM_AGENT_UID");
  CHECK_RC(hzshm__shm_agent_uid(&u), 0);
  CHECK_EQ(u, (uid_t)-1);
  setenv("HZSHM_AGENT_UID", "1no-such-user-hz", 1);
  CHECK_RC(hzshm__shm_agent_uid(&u), HZSHM_EINVAL);
  unsetenv("HZSHM_AGENT_UID");
}

/* Users whose names start with a digit, and whose entry is longer than
 * 4 KiB: in a child with a mount namespace of its own, a passwd file with
 * such users is bind-mounted on /etc/passwd (root only; nothing outside the
 * child sees it, nothing to clean up). */
TEST_CASE(agent_uid_names) {
  if (geteuid() != 0) {
    fprintf(stderr, "skipped: not root (needs a mount namespace)\n");
    return;
  }
  char tmp[] = "/tmp/hzshm-passwd-XXXXXX";
  int fd = mkstemp(tmp);
  CHECK(fd >= 0);
  FILE *f = fdopen(fd, "w");
  CHECK(f);
  fprintf(f, "root:x:0:0:root:/root:/bin/sh\n1hzshm:x:4242:4242::/:/bin/false\nhzshmlong:x:4243:4243:");
  for (int i = 0; i < 9000; i++) fputc('g', f);
  fprintf(f, ":/:/bin/false\n");
  CHECK(fclose(f) == 0);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    t_child_dies_with_parent();
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(tmp, "/etc/passwd", NULL, MS_BIND, NULL) != 0)
      _exit(77);
    uid_t a = 0, b = 0;
    int ra = hzshm__shm_parse_uid("1hzshm", &a), rb = hzshm__shm_parse_uid("hzshmlong", &b);
    fprintf(stderr, "\"1hzshm\": %s uid %u; \"hzshmlong\" (a 9 KiB entry): %s uid %u\n", hzshm_err_name(ra),
            (unsigned)a, hzshm_err_name(rb), (unsigned)b);
    _exit(ra == 0 && a == 4242 ? (rb == 0 && b == 4243 ? 0 : 2) : 1);
  }
  int st;
  CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st));
  unlink(tmp);
  if (WEXITSTATUS(st) == 77) {
    fprintf(stderr, "skipped: no mount namespace here\n");
    return;
  }
  CHECK_EQ(WEXITSTATUS(st), 0);
}
