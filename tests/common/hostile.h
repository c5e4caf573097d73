/* hostile.h - what a hostile process of the allowed group does to a
 * segment's files (the access-model tests, issue 10): it opens every file
 * of the segment in `dir` for writing, and counts those it could open other
 * than its own private reader file; that one (own) it scribbles on (epoch 1
 * in every slot, random bytes anywhere) and truncates to nothing, to a few
 * bytes and back. The caller asserts the count is 0. Also plants, once, a
 * FIFO, a symlink to the data file and a garbage file under the private
 * reader file prefix, and holds read locks on the whole data file. */
#ifndef HZSHM_TESTS_COMMON_HOSTILE_H
#define HZSHM_TESTS_COMMON_HOSTILE_H
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Switch to uid:gid (no supplementary groups). The parent-death signal is
 * reset by a credential change: set again, so a failed test leaves no
 * process of another uid behind. 0 or -1. */
static inline int hostile_become(uid_t uid, gid_t gid) {
  if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) return -1;
  return prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() != 1 ? 0 : -1;
}

static inline uint64_t hostile_rand(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Plants the junk files and the data file read locks: 0, or a step number. */
static inline int hostile_plant(const char *dir, const char *name) {
  char junk[512], target[512];
  snprintf(target, sizeof target, "%s/hzshm.%s", dir, name);
  snprintf(junk, sizeof junk, "%s/hzshm.%s.rd.fifo", dir, name);
  if (mkfifo(junk, 0644) != 0) return 1;
  snprintf(junk, sizeof junk, "%s/hzshm.%s.rd.link", dir, name);
  if (symlink(target, junk) != 0) return 2;
  snprintf(junk, sizeof junk, "%s/hzshm.%s.rd.garbage", dir, name);
  int g = open(junk, O_RDWR | O_CREAT | O_EXCL, 0644);
  if (g < 0 || write(g, "garbage", 7) != 7) return 3;
  close(g);
  int dfd = open(target, O_RDONLY | O_CLOEXEC); /* kept open: the locks live with it */
  struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
  if (dfd < 0 || fcntl(dfd, F_OFD_SETLK, &fl) != 0) return 4;
  if (open(target, O_RDWR | O_CLOEXEC) >= 0) return 5; /* the data file is never writable */
  return 0;
}

/* One round of attacks; returns the number of files other than `own` that
 * could be opened for writing, or -1. */
static inline int hostile_round(const char *dir, const char *name, const char *own, uint64_t *rnd) {
  char prefix[128];
  int others = 0;
  snprintf(prefix, sizeof prefix, "hzshm.%s", name);
  DIR *d = opendir(dir);
  if (!d) return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    char path[768];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid == geteuid()) {
      if (own && strcmp(path, own) == 0 && fstat(fd, &st) == 0) {
        uint64_t len = (uint64_t)st.st_size ? (uint64_t)st.st_size : 1u << 20;
        uint8_t blk[4096];
        for (size_t k = 0; k < sizeof blk; k++) blk[k] = (uint8_t)hostile_rand(rnd);
        for (uint64_t off = 4096; off + 8 <= 4096 + 64 * 64 && off + 8 <= len; off += 64) {
          uint64_t one = 1;
          if (pwrite(fd, &one, 8, (off_t)off) != 8) break;
        }
        if (pwrite(fd, blk, sizeof blk, (off_t)(hostile_rand(rnd) % len)) < 0 || ftruncate(fd, 0) != 0 ||
            ftruncate(fd, 17) != 0 || ftruncate(fd, (off_t)len) != 0)
          others = -1000;
      }
      close(fd); /* its own files (junk, its private file) */
      continue;
    }
    fprintf(stderr, "hostile: opened %s (uid %d) for writing\n", path, (int)st.st_uid);
    others++;
    close(fd);
  }
  closedir(d);
  return others < 0 ? -1 : others;
}

/* Removes every file of the segment `name` in `dir` (the test's clean-up). */
static inline void hostile_cleanup(const char *dir, const char *name) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "hzshm.%s.", name);
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d)) != NULL;)
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) unlinkat(dirfd(d), e->d_name, 0);
  if (d) closedir(d);
}
#endif
