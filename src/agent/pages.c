/* pages.c - which pages back the segment's data file (issue 15): decided
 * empirically, explained from the configuration.
 *
 * The fact: the kB of the file's mappings in /proc/self/smaps that are
 * PMD-mapped (ShmemPmdMapped on tmpfs, FilePmdMapped on another file system
 * with large folios). The agent has written the header by the time it asks,
 * and shm_open.c maps the file 2 MiB-aligned, so on a mount that gives huge
 * pages that first extent is already one 2 MiB page (tests/e2e/test_pages
 * checks it on a huge=within_size tmpfs).
 *
 * The explanation, when nothing is PMD-mapped: the directory's file system
 * (statfs: a tmpfs or not), the tmpfs's huge= option (the super options in
 * /proc/self/mountinfo of the longest mount point that contains the
 * directory, the last such line being the mount on top) and
 * /sys/kernel/mm/transparent_hugepage/shmem_enabled. That knob sets the
 * policy of the kernel's internal shmem mount (SysV shm, memfd, shared
 * anonymous memory); over user-visible tmpfs mounts such as /dev/shm it
 * decides only with "deny" (no huge pages on any) or "force" (huge pages on
 * all); otherwise a tmpfs's own huge= option decides, and none means never.
 *
 * Only start-up calls it (one pass over smaps, mountinfo and one sysfs
 * file); a read error gives PAGES_UNKNOWN, nothing here stops the agent.
 */
#include "pages.h"

#include <errno.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>

#define SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
#define HINT "for 2 MiB pages: tools/hugetmpfs mount DIR (as root), then HZSHM_SHM_DIR=DIR for the agent and its readers"

/* The PMD-mapped kB of the mappings of (dev, ino) or of path, or -errno. */
static long long pmd_kb(const char *path, dev_t dev, ino_t ino, int *found) {
  FILE *f = fopen("/proc/self/smaps", "re");
  if (f == NULL) return -errno;
  char *line = NULL;
  size_t cap = 0;
  long long kb = 0;
  int ours = 0;
  *found = 0;
  while (getline(&line, &cap, f) > 0) {
    unsigned long lo, hi, off, ino_l;
    unsigned maj, min;
    int name_at = 0;
    /* A mapping's first line: "lo-hi perms offset maj:min inode [path]". */
    if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu %n", &lo, &hi, &off, &maj, &min, &ino_l, &name_at) == 6) {
      char *nl = strchr(line + name_at, '\n');
      if (nl) *nl = 0;
      ours = (ino_l == (unsigned long)ino && maj == major(dev) && min == minor(dev)) ||
             (name_at > 0 && !strcmp(line + name_at, path));
      *found |= ours;
      continue;
    }
    long long v;
    if (ours && (sscanf(line, "ShmemPmdMapped: %lld kB", &v) == 1 || sscanf(line, "FilePmdMapped: %lld kB", &v) == 1))
      kb += v;
  }
  int err = ferror(f) ? -EIO : 0;
  free(line);
  fclose(f);
  return err ? err : kb;
}

/* Undoes mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape(char *s) {
  char *d = s;
  for (; *s; s++) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
      *d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 3;
    } else {
      *d++ = *s;
    }
  }
  *d = 0;
}

/* 1 if mount point mp contains directory dir (mp is dir or one of its parents). */
static int contains(const char *mp, const char *dir) {
  size_t n = strlen(mp);
  if (strncmp(mp, dir, n) != 0) return 0;
  return dir[n] == 0 || dir[n] == '/' || (n == 1 && mp[0] == '/');
}

/* The mount point containing dir (mp) and its huge= value (huge, "" if
 * none): 0, or -errno. */
static int mount_of(const char *dir, char *mp, size_t mpcap, char *huge, size_t hcap) {
  FILE *f = fopen("/proc/self/mountinfo", "re");
  if (f == NULL) return -errno;
  char *line = NULL;
  size_t cap = 0;
  size_t best = 0;
  int any = 0;
  while (getline(&line, &cap, f) > 0) {
    /* "id parent maj:min root MOUNTPOINT opts [tags...] - fstype source SUPEROPTS" */
    char point[PATH_MAX];
    if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1) continue;
    unescape(point);
    size_t n = strlen(point);
    if (!contains(point, dir) || n < best) continue; /* a later line of the same length is the mount on top */
    const char *sep = strstr(line, " - ");
    char opts[1024] = "";
    if (sep == NULL || sscanf(sep, " - %*s %*s %1023s", opts) != 1) continue;
    best = n;
    any = 1;
    snprintf(mp, mpcap, "%s", point);
    huge[0] = 0;
    for (char *o = strtok(opts, ","); o; o = strtok(NULL, ","))
      if (!strncmp(o, "huge=", 5)) snprintf(huge, hcap, "%s", o + 5);
  }
  free(line);
  fclose(f);
  return any ? 0 : -ENOENT;
}

/* The [bracketed] value of shmem_enabled: 0, or -errno (-ENOENT: a kernel without THP). */
static int shmem_enabled(char *v, size_t cap) {
  FILE *f = fopen(SHMEM_ENABLED, "re");
  if (f == NULL) return -errno;
  char buf[256];
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  char *lb = ok ? strchr(buf, '[') : NULL, *rb = lb ? strchr(lb, ']') : NULL;
  if (rb == NULL) return -EINVAL;
  snprintf(v, cap, "%.*s", (int)(rb - lb - 1), lb + 1);
  return 0;
}

/* Why a segment in dir is on 4 KiB pages, and what to do. */
static void why_4k(const char *dir, char *why, size_t cap) {
  char real[PATH_MAX];
  const char *d = realpath(dir, real) ? real : dir;
  struct statfs fs;
  if (statfs(d, &fs) != 0) {
    snprintf(why, cap, "segment on 4 KiB pages (statfs %s: %s)", d, strerror(errno));
    return;
  }
  if ((unsigned long)fs.f_type != (unsigned long)TMPFS_MAGIC) {
    snprintf(why, cap, "segment on 4 KiB pages: %s is not a tmpfs (file system type 0x%lx); " HINT, d,
             (unsigned long)fs.f_type);
    return;
  }
  char knob[64] = "", knobs[128];
  int kerr = shmem_enabled(knob, sizeof knob);
  if (kerr == -ENOENT) {
    snprintf(why, cap, "segment on 4 KiB pages: this kernel has no transparent huge pages (no %s)", SHMEM_ENABLED);
    return;
  }
  if (kerr == 0 && !strcmp(knob, "deny")) {
    snprintf(why, cap,
             "segment on 4 KiB pages: transparent_hugepage/shmem_enabled is [deny], which refuses huge pages on "
             "every tmpfs; for 2 MiB pages: another value there (as root), then tools/hugetmpfs mount DIR and "
             "HZSHM_SHM_DIR=DIR for the agent and its readers");
    return;
  }
  if (kerr == 0) snprintf(knobs, sizeof knobs, "transparent_hugepage/shmem_enabled is [%s]", knob);
  else snprintf(knobs, sizeof knobs, "transparent_hugepage/shmem_enabled unreadable: %s", strerror(-kerr));
  char mp[PATH_MAX] = "", huge[32] = "";
  int merr = mount_of(d, mp, sizeof mp, huge, sizeof huge);
  if (merr != 0) {
    snprintf(why, cap, "segment on 4 KiB pages: %s is a tmpfs whose mount options are unknown (%s; %s); " HINT, d,
             strerror(-merr), knobs);
    return;
  }
  char at[PATH_MAX + 16] = ""; /* the mount point, when not dir itself */
  if (strcmp(mp, d) != 0) snprintf(at, sizeof at, " (mounted at %s)", mp);
  int forced = kerr == 0 && !strcmp(knob, "force");
  if (!forced && (huge[0] == 0 || !strcmp(huge, "never"))) {
    snprintf(why, cap,
             "segment on 4 KiB pages: %s is a tmpfs%s without huge=, and %s (over such a mount only force "
             "would give huge pages); " HINT,
             d, at, knobs);
    return;
  }
  /* huge=always, within_size or advise (the mapping is madvised), or force: yet no huge page. */
  snprintf(why, cap,
           "segment on 4 KiB pages: %s is a tmpfs%s with huge=%s and %s, yet no 2 MiB page was mapped (no "
           "free 2 MiB block of memory?); tools/hugetmpfs check DIR probes it",
           d, at, huge[0] ? huge : "never", knobs);
}

int pages_probe(const char *path, char *why, size_t cap) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(why, cap, "segment pages unknown (stat %s: %s)", path, strerror(errno));
    return PAGES_UNKNOWN;
  }
  int found = 0;
  long long kb = pmd_kb(path, st.st_dev, st.st_ino, &found);
  if (kb < 0 || !found) {
    snprintf(why, cap, "segment pages unknown (%s in /proc/self/smaps: %s)", path,
             kb < 0 ? strerror((int)-kb) : "not mapped there");
    return PAGES_UNKNOWN;
  }
  if (kb > 0) {
    snprintf(why, cap, "segment on 2 MiB pages (%s: %lld kB PMD-mapped so far)", path, kb);
    return PAGES_2M;
  }
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *(slash == dir ? slash + 1 : slash) = 0;
  why_4k(dir, why, cap);
  return PAGES_4K;
}
