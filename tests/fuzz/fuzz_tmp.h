/* fuzz_tmp.h - private scratch directories of the fuzz harnesses:
 * <base>.<pid>, made at start-up and removed at exit. A run that crashed or
 * was killed cannot remove its own, so every start first removes those of
 * processes that no longer exist. */
#ifndef HZSHM_FUZZ_TMP_H
#define HZSHM_FUZZ_TMP_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes dir and the files in it (the harnesses make no subdirectories). */
static void fuzz_tmp_remove(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Makes parent/name.<pid> in out (cap bytes) after removing the stale ones. 0 or -1. */
static int fuzz_tmp_make(const char *parent, const char *name, char *out, size_t cap) {
  DIR *d = opendir(parent);
  size_t nl = strlen(name);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strncmp(e->d_name, name, nl) != 0 || e->d_name[nl] != '.') continue;
      char *end;
      long pid = strtol(e->d_name + nl + 1, &end, 10);
      if (*end || pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", parent, e->d_name);
        fuzz_tmp_remove(p);
      }
    }
    closedir(d);
  }
  snprintf(out, cap, "%s/%s.%ld", parent, name, (long)getpid());
  fuzz_tmp_remove(out); /* a previous process with our pid */
  return mkdir(out, 0700) == 0 ? 0 : -1;
}

#endif
