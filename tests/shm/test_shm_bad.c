/* test_shm_bad.c - bad input: every bad argument and every bad segment file
 * gets its own code, and nothing changes. */
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "shm_int.h"    /* hzshm__shm_name_ok */
#include "shm_layout.h" /* header field offsets to forge bad files */

static hzshm__shm_config_t cfg(void) {
  hzshm__shm_config_t c = {.memory_bytes = 4u << 20, .max_sessions = 8, .reader_slots = 8, .partition_count = 271};
  return c;
}

static void snap(hzshm__shm_t *s, hzshm__shm_stats_t *st) {
  CHECK_RC(hzshm__shm_stats(s, st), 0);
  st->hits = st->misses = 0;
  st->heartbeat_age_ns = 0;
  st->readers = 0;
}

TEST_CASE(bad_arguments) {
  const char *name = t_name("bad");
  hzshm__shm_config_t c = cfg();
  hzshm__shm_t *w, *r;
  hzshm__sref_t ref, tmp;
  static char big[HZSHM_KEY_MAX + 2];
  static char val[140000]; /* over the largest class of a 4 MiB segment (128 KiB slabs) */
  memset(big, 'k', sizeof big - 1);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k", 1, "v", 1, 0, 1, 0, 0), 0);
  size_t n;
  uint64_t stamp = hzshm__shm_w_stamp(w);
  CHECK_RC(hzshm__shm_w_put(w, &ref, big, HZSHM_KEY_MAX, "v", 1, 0, stamp, 0, 0), 0); /* the limit itself is fine */
  CHECK_RC(hzshm__shm_w_del(w, &ref, big, HZSHM_KEY_MAX), 0);
  CHECK_RC(hzshm__shm_w_maintain(w), 0);
  hzshm__shm_stats_t before, after;
  snap(w, &before);
  /* keys */
  CHECK_RC(hzshm__shm_w_put(w, &ref, big, HZSHM_KEY_MAX + 1, "v", 1, 0, stamp, 0, 0), HZSHM_ETOOBIG);
  CHECK_RC(hzshm__shm_r_get(r, &ref, big, HZSHM_KEY_MAX + 1, NULL, 0, &n), HZSHM_ETOOBIG);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "", 0, "v", 1, 0, stamp, 0, 0), HZSHM_EEMPTY);
  CHECK_RC(hzshm__shm_w_put(w, &ref, NULL, 3, "v", 1, 0, stamp, 0, 0), HZSHM_EEMPTY);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "", 0, NULL, 0, &n), HZSHM_EEMPTY);
  CHECK_RC(hzshm__shm_w_del(w, &ref, "", 0), HZSHM_EEMPTY);
  CHECK_RC(hzshm__shm_w_del(w, &ref, big, HZSHM_KEY_MAX + 1), HZSHM_ETOOBIG);
  /* values */
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k2", 2, val, sizeof val, 0, stamp, 0, 0), HZSHM_ETOOBIG);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k2", 2, NULL, 5, 0, stamp, 0, 0), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k2", 2, "v", 1, 271, stamp, 0, 0), HZSHM_EINVAL); /* partition */
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k2", 2, "v", 1, 0, stamp, 0, 0x80), HZSHM_EINVAL); /* flags */
  /* sessions */
  hzshm__sref_t bad1 = {.idx = 8, .gen = ref.gen}, bad2 = {.idx = ref.idx, .gen = 0},
                bad3 = {.idx = ref.idx, .gen = ref.gen + 1000};
  CHECK_RC(hzshm__shm_w_put(w, &bad1, "k2", 2, "v", 1, 0, stamp, 0, 0), HZSHM_EBADSESSION);
  CHECK_RC(hzshm__shm_w_put(w, &bad2, "k2", 2, "v", 1, 0, stamp, 0, 0), HZSHM_EBADSESSION);
  CHECK_RC(hzshm__shm_w_put(w, &bad3, "k2", 2, "v", 1, 0, stamp, 0, 0), HZSHM_ESESSION);
  CHECK_RC(hzshm__shm_r_get(r, &bad1, "k", 1, NULL, 0, &n), HZSHM_EBADSESSION);
  CHECK_RC(hzshm__shm_r_get(r, &bad3, "k", 1, NULL, 0, &n), HZSHM_ESESSION);
  CHECK_RC(hzshm__shm_w_session_drop(w, &bad1, 0, NULL), HZSHM_EBADSESSION);
  CHECK_RC(hzshm__shm_w_session_drop(w, &bad3, 1, &tmp), HZSHM_ESESSION);
  CHECK_RC(hzshm__shm_w_session(w, "", 0, &tmp), HZSHM_EEMPTY);
  CHECK_RC(hzshm__shm_w_session(w, big, HZSHM_SESSION_MAX + 1, &tmp), HZSHM_ETOOBIG);
  CHECK_RC(hzshm__shm_r_session(r, "", 0, &tmp), HZSHM_EEMPTY);
  CHECK_RC(hzshm__shm_r_session(r, big, HZSHM_SESSION_MAX + 1, &tmp), HZSHM_ETOOBIG);
  CHECK_RC(hzshm__shm_w_set_socket(w, big), HZSHM_EINVAL);
  /* readers cannot write */
  CHECK_RC(hzshm__shm_w_put(r, &ref, "k2", 2, "v", 1, 0, stamp, 0, 0), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_w_session(r, "x", 1, &tmp), HZSHM_EINVAL);
  snap(w, &after);
  CHECK_MEMEQ(&before, &after, sizeof before);
  CHECK_RC(hzshm__shm_r_get(r, &ref, "k", 1, NULL, 0, &n), 0);
  /* names and configurations */
  hzshm__shm_t *x;
  CHECK_RC(hzshm__shm_r_attach("", &x), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_r_attach("a/b", &x), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_r_attach("..", &x), HZSHM_EINVAL);
  CHECK_RC(hzshm__shm_r_attach("no-such-segment-xyz", &x), -ENOENT);
  hzshm__shm_config_t tiny = {.memory_bytes = 4096};
  CHECK_RC(hzshm__shm_w_open(t_name("tiny"), &tiny, 0, &x, NULL), HZSHM_EINVAL);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

static void patch(const char *name, off_t at, const void *p, size_t n) {
  char path[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(name, 0, path, sizeof path), 0);
  int fd = open(path, O_RDWR);
  CHECK_GE(fd, 0);
  CHECK_EQ(pwrite(fd, p, n, at), (ssize_t)n);
  close(fd);
}

static void make_seg(const char *name) {
  hzshm__shm_config_t c = cfg();
  hzshm__shm_t *w;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  hzshm__shm_close(w);
}

TEST_CASE(bad_files) {
  hzshm__shm_t *x;
  char path[HZSHM_SHM_PATH_MAX];
  /* wrong layout version */
  const char *n1 = t_name("ver");
  make_seg(n1);
  uint32_t v = HZSHM_SHM_LAYOUT_VERSION + 1;
  patch(n1, offsetof(hzshm__shm_hdr_t, version), &v, 4);
  CHECK_RC(hzshm__shm_r_attach(n1, &x), HZSHM_EVERSION);
  hzshm__shm_config_t c = cfg();
  CHECK_RC(hzshm__shm_w_open(n1, &c, 0, &x, NULL), HZSHM_EVERSION); /* and it stays as it was */
  CHECK_RC(hzshm__shm_r_attach(n1, &x), HZSHM_EVERSION);
  CHECK_RC(hzshm__shm_w_open(n1, &c, 1, &x, NULL), 0); /* replace_incompatible */
  hzshm__shm_close(x);
  CHECK_RC(hzshm__shm_r_attach(n1, &x), 0);
  hzshm__shm_close(x);
  CHECK_RC(hzshm__shm_unlink(n1), 0);
  /* wrong fingerprint */
  const char *n2 = t_name("fp");
  make_seg(n2);
  uint64_t fp = 12345;
  patch(n2, offsetof(hzshm__shm_hdr_t, fingerprint), &fp, 8);
  CHECK_RC(hzshm__shm_r_attach(n2, &x), HZSHM_EVERSION);
  CHECK_RC(hzshm__shm_unlink(n2), 0);
  /* scribbled geometry */
  const char *n3 = t_name("geo");
  make_seg(n3);
  uint64_t big = 1ull << 40;
  patch(n3, offsetof(hzshm__shm_hdr_t, bucket_count), &big, 8);
  CHECK_RC(hzshm__shm_r_attach(n3, &x), HZSHM_ECORRUPT);
  CHECK_RC(hzshm__shm_unlink(n3), 0);
  /* truncated data file; truncated reader file */
  const char *n4 = t_name("trunc");
  make_seg(n4);
  CHECK_RC(hzshm__shm_path(n4, 0, path, sizeof path), 0);
  struct stat st;
  CHECK_EQ(stat(path, &st), 0);
  CHECK_EQ(truncate(path, st.st_size - 65536), 0);
  CHECK_RC(hzshm__shm_r_attach(n4, &x), HZSHM_ETRUNCATED);
  CHECK_EQ(truncate(path, st.st_size), 0);
  CHECK_RC(hzshm__shm_r_attach(n4, &x), 0);
  hzshm__shm_close(x);
  CHECK_RC(hzshm__shm_path(n4, 1, path, sizeof path), 0);
  CHECK_EQ(truncate(path, 4096), 0);
  CHECK_RC(hzshm__shm_r_attach(n4, &x), HZSHM_ETRUNCATED);
  CHECK_EQ(truncate(path, 100), 0);
  CHECK_RC(hzshm__shm_r_attach(n4, &x), HZSHM_ETRUNCATED);
  CHECK_RC(hzshm__shm_unlink(n4), 0);
  /* garbage, short garbage, empty */
  const char *n5 = t_name("junk");
  CHECK_RC(hzshm__shm_path(n5, 0, path, sizeof path), 0);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK_GE(fd, 0);
  uint8_t junk[8192];
  uint64_t seed = 88172645463325252ull;
  for (size_t i = 0; i < sizeof junk; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    junk[i] = (uint8_t)seed;
  }
  CHECK_EQ(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
  CHECK_RC(hzshm__shm_r_attach(n5, &x), HZSHM_ECORRUPT);
  CHECK_EQ(ftruncate(fd, 20), 0);
  CHECK_RC(hzshm__shm_r_attach(n5, &x), HZSHM_ECORRUPT);
  CHECK_EQ(ftruncate(fd, 0), 0);
  CHECK_RC(hzshm__shm_r_attach(n5, &x), HZSHM_ETRUNCATED);
  close(fd);
  CHECK_EQ(unlink(path), 0);
  /* permission denied: another user may not attach a 0600 segment */
  const char *n6 = t_name("perm");
  make_seg(n6);
  pid_t pid = t_fork();
  CHECK_GE(pid, 0);
  if (pid == 0) {
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    _exit(hzshm__shm_r_attach(n6, &x) == -EACCES ? 0 : 1);
  }
  int status;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status));
  CHECK_EQ(WEXITSTATUS(status), 0);
  CHECK_RC(hzshm__shm_r_attach(n6, &x), 0); /* still fine for its owner */
  hzshm__shm_close(x);
  CHECK_RC(hzshm__shm_unlink(n6), 0);
}

/* Names whose files are another segment's: the files of segment "N.rd.x"
 * lie under N's private reader file prefix "hzshm.N.rd." (N's writer
 * examined them: it removed their idle reader file at its first maintain,
 * and would have removed the data and lock files a minute later), and
 * "N.rd" / "N.lock" are N's reader and lock files. A dot-separated part
 * "rd" or "lock" after the first is refused (HZSHM_EINVAL), and nothing of
 * N changes. */
TEST_CASE(colliding_names) {
  const char *n = t_name("coll");
  char other[128], fp[256];
  hzshm__shm_config_t c = cfg();
  hzshm__shm_t *a, *b = NULL;
  CHECK_RC(hzshm__shm_w_open(n, &c, 0, &a, NULL), 0);
  snprintf(other, sizeof other, "%s.rd.x", n);
  int rc = hzshm__shm_w_open(other, &c, 0, &b, NULL);
  if (rc == 0) { /* the defect: both exist; N's maintain then deletes the other's reader file */
    CHECK_RC(hzshm__shm_w_maintain(a), 0);
    snprintf(fp, sizeof fp, "/dev/shm/hzshm.%s.rd", other);
    struct stat st;
    fprintf(stderr, "segment %s opened; its reader file after %s's maintain: %s\n", other, n,
            stat(fp, &st) == 0 ? "present" : strerror(errno));
    hzshm__shm_close(b);
    hzshm__shm_unlink(other);
  }
  CHECK_RC(rc, HZSHM_EINVAL);
  static const char *const bad[] = {"%s.rd", "%s.lock", "%s.rd.1.2.0123456789abcdef", "%s.lock.x", "x.rd.%s"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(other, sizeof other, bad[i], n);
    CHECK(!hzshm__shm_name_ok(other));
    CHECK_RC(hzshm__shm_w_open(other, &c, 0, &b, NULL), HZSHM_EINVAL);
    CHECK_RC(hzshm__shm_r_attach(other, &b), HZSHM_EINVAL);
  }
  static const char *const good[] = {"rd", "lock", "rd.x", "x.rdx", "x.lockx", "x.r.d", "x-rd", "x_lock"};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) CHECK(hzshm__shm_name_ok(good[i]));
  hzshm__shm_t *r;
  CHECK_RC(hzshm__shm_r_attach(n, &r), 0); /* N untouched */
  hzshm__shm_close(r);
  hzshm__shm_close(a);
  CHECK_RC(hzshm__shm_unlink(n), 0);
}


/* w_open over a file already at the data name, case by case (open_data and
 * reuse_or_refuse in shm_open.c). Refused (HZSHM_EVERSION without
 * replace_incompatible): a file that is not ours to reuse but may be
 * somebody's segment -- our magic with a bad header or reader file, or any
 * other content of 8 bytes or more; such a file stays as it was, and
 * replace_incompatible replaces it. Replaced whatever replace_incompatible
 * says: a file of under 8 bytes, a half-created one (magic still 0), one
 * others may write, one of another segment (hdr.seg_name). Reused: our own
 * pair, sound. */
static void path_of(const char *name, int rd, char *path) {
  CHECK_RC(hzshm__shm_path(name, rd, path, HZSHM_SHM_PATH_MAX), 0);
}
static void put_file(const char *name, const void *p, size_t n) {
  char path[HZSHM_SHM_PATH_MAX];
  path_of(name, 0, path);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHECK_GE(fd, 0);
  CHECK_EQ(write(fd, p, n), (ssize_t)n);
  close(fd);
}
static void stat_of(const char *name, int rd, struct stat *st) {
  char path[HZSHM_SHM_PATH_MAX];
  path_of(name, rd, path);
  CHECK_EQ(stat(path, st), 0);
}
static void open_expect(const char *name, int replace, int want_rc, int want_reused) {
  hzshm__shm_config_t c = cfg();
  hzshm__shm_t *w = (hzshm__shm_t *)1;
  int reused = -1;
  int rc = hzshm__shm_w_open(name, &c, replace, &w, &reused);
  if (rc != want_rc || (rc == 0 && reused != want_reused))
    fprintf(stderr, "w_open(%s, replace %d): %s reused %d, want %s reused %d\n", name, replace, hzshm_err_name(rc),
            reused, hzshm_err_name(want_rc), want_reused);
  CHECK_RC(rc, want_rc);
  CHECK_EQ(reused, (rc == 0 ? want_reused : 0));
  if (rc != 0) {
    CHECK(w == NULL);
    return;
  }
  hzshm__shm_close(w);
  hzshm__shm_t *r;
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  hzshm__shm_close(r);
}
/* Refused, unchanged (the data file and, if `rd`, the reader file); then
 * replaced by a fresh segment when replace_incompatible says so. */
static void refused(const char *name, int rd) {
  struct stat d0, r0, d1, r1;
  stat_of(name, 0, &d0);
  if (rd) stat_of(name, 1, &r0);
  open_expect(name, 0, HZSHM_EVERSION, 0);
  stat_of(name, 0, &d1);
  CHECK_EQ(d1.st_ino, d0.st_ino);
  CHECK_EQ(d1.st_size, d0.st_size);
  CHECK_EQ(d1.st_mode, d0.st_mode);
  if (rd) {
    stat_of(name, 1, &r1);
    CHECK_EQ(r1.st_ino, r0.st_ino);
    CHECK_EQ(r1.st_size, r0.st_size);
  }
  open_expect(name, 1, 0, 0);
  stat_of(name, 0, &d1);
  CHECK(d1.st_ino != d0.st_ino);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}
/* A fresh segment `tag`, the path of its data (rd 0) or reader file. */
static const char *seg_path(const char *tag, int rd, char *path) {
  const char *n = t_name(tag);
  make_seg(n);
  path_of(n, rd, path);
  return n;
}
/* Replaced by a fresh segment even without replace_incompatible. */
static void replaced(const char *name) {
  struct stat d0, d1;
  stat_of(name, 0, &d0);
  open_expect(name, 0, 0, 0);
  stat_of(name, 0, &d1);
  CHECK(d1.st_ino != d0.st_ino);
  CHECK_RC(hzshm__shm_unlink(name), 0);
}

TEST_CASE(w_open_decisions) {
  uint8_t junk[8192];
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < sizeof junk; i++) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    junk[i] = (uint8_t)(seed | 1); /* no zero byte: the first word is never 0 */
  }
  char path[HZSHM_SHM_PATH_MAX], other[HZSHM_SHM_PATH_MAX + 8];
  const char *n;
  /* foreign content: 8 KiB, exactly 8 bytes (refused); 7 bytes (replaced) */
  put_file(n = t_name("dj8k"), junk, sizeof junk);
  refused(n, 0);
  put_file(n = t_name("dj8"), junk, 8);
  refused(n, 0);
  put_file(n = t_name("dj7"), junk, 7);
  replaced(n);
  /* half-created: junk after a zero magic; our segment with its magic zeroed */
  uint8_t half[sizeof junk];
  memcpy(half, junk, sizeof half);
  memset(half, 0, 8);
  put_file(n = t_name("dhalf"), half, sizeof half);
  replaced(n);
  uint64_t zero = 0;
  make_seg(n = t_name("dmag0"));
  patch(n, offsetof(hzshm__shm_hdr_t, magic), &zero, 8);
  replaced(n);
  /* our magic, the header bad: truncated, scribbled geometry, another version */
  n = seg_path("dtrunc", 0, path);
  struct stat st;
  stat_of(n, 0, &st);
  CHECK_EQ(truncate(path, st.st_size - 65536), 0);
  refused(n, 1);
  make_seg(n = t_name("dgeo"));
  uint64_t big = 1ull << 40;
  patch(n, offsetof(hzshm__shm_hdr_t, bucket_count), &big, 8);
  refused(n, 1);
  make_seg(n = t_name("dver"));
  uint32_t v = HZSHM_SHM_LAYOUT_VERSION + 1;
  patch(n, offsetof(hzshm__shm_hdr_t, version), &v, 4);
  refused(n, 1);
  /* the data file sound, the reader file not: short, gone, group-writable,
   * with a second name */
  n = seg_path("rshort", 1, path);
  CHECK_EQ(truncate(path, 100), 0);
  refused(n, 1);
  n = seg_path("rgone", 1, path);
  CHECK_EQ(unlink(path), 0);
  refused(n, 0);
  n = seg_path("rgw", 1, path);
  CHECK_EQ(chmod(path, 0620), 0);
  refused(n, 1);
  n = seg_path("rlink", 1, path);
  /* the second name outside the segment's names (hzshm.N.rd.* are its
   * readers' private files, examined by the writer's scan) */
  snprintf(other, sizeof other, "%.*s/t-link-%d", (int)(strrchr(path, '/') - path), path, (int)getpid());
  unlink(other);
  CHECK_EQ(link(path, other), 0);
  refused(n, 1);
  CHECK_EQ(unlink(other), 0);
  /* the data file writable by its group (an old build's), another
   * segment's (its name in the header): replaced */
  n = seg_path("dgw", 0, path);
  CHECK_EQ(chmod(path, 0660), 0);
  replaced(n);
  make_seg(n = t_name("dname"));
  char alien[HZSHM__SEG_NAME_BYTES] = "another-segment";
  patch(n, offsetof(hzshm__shm_hdr_t, seg_name), alien, sizeof alien);
  replaced(n);
  /* ours and sound: reused, the same inode */
  make_seg(n = t_name("good"));
  struct stat d0, d1;
  stat_of(n, 0, &d0);
  open_expect(n, 0, 0, 1);
  stat_of(n, 0, &d1);
  CHECK_EQ(d1.st_ino, d0.st_ino);
  CHECK_RC(hzshm__shm_unlink(n), 0);
}
