/* shm_private.c - private reader files: reader slots for processes of
 * another uid (the access model of docs/SHM.md).
 *
 * Trust: the writer (agent) and processes of its uid share the reader file
 * <name>.rd (0600). A process of another uid that may read the data file
 * (its group, --allow-gid) cannot open that file; it creates a private reader
 * file <name>.rd.<pid>.<n>.<random> of its own (mode 0644: only it can write it) with
 * the reader file's layout, and claims its threads' slots there with the same
 * OFD byte locks. Whatever it writes there (epochs, hints, garbage, a
 * truncation) concerns itself only:
 *   - the writer never maps a private file: it pread()s the slot array at
 *     every reclaim scan, so a truncated file is a short read, never SIGBUS;
 *   - an epoch counts only while its slot's byte lock is held by a live open
 *     file description, and a file counts only while its creator holds the
 *     "alive" byte (offset nslots), so nothing of a dead process holds back
 *     reclamation; a live process can hold it back only while it lives;
 *   - nobody else can write it (others' uids), so no process can zero
 *     another's epochs; a process of the same uid can (one uid is one trust
 *     domain: it could ptrace the other anyway);
 *   - its eviction hint bits land in its own file (the writer ignores them).
 *
 * Registration (the writer must know a file before its slots protect
 * anything): the writer scans the directory in every w_maintain (through
 * hzshm__shm_reap) and at w_open, and then increments hdr.reg_scans (release).
 * A reader that created its file and then read reg_scans = v uses its slots
 * only once reg_scans >= v + 2 (acquire): scan v + 2 started after the writer
 * published v + 1, which the reader had not seen after its file existed, so
 * that scan's readdir (ordered with the reader's create by the directory's
 * lock) found the file. Until then its lookups return HZSHM_EBUSY (libhzshm
 * asks the agent), at most two maintain ticks.
 *
 * Confirmation: a scan may skip a file (the caps on opens, files per uid,
 * descriptors and entries: a hostile process can fill them), so reg_scans
 * alone does not mean "followed". The writer takes a classic (per-process)
 * POSIX read lock on byte nslots + 1 of every file it follows, and a reader
 * uses its slots only once F_OFD_GETLK reports that byte held by
 * hdr.writer_pid (classic locks report their holder's pid; a process of
 * another uid can lock the byte too but not under the writer's pid: at worst
 * its lock is the one reported and the reader stays on the agent path). The
 * writer_pid store precedes the release increment of every scan after
 * w_open's first, and the reader checks only after reg_scans >= v + 2.
 * A reader in another pid namespace never sees the writer's pid: it stays
 * on the agent path (correct values, slower).
 * The confirmation is checked at every slot claim (never cached), with the
 * slot's byte lock already held.
 *
 * Restart (issue 10): a reader confirmed by an earlier writer keeps its
 * slots (and open views) across a writer restart, so a new writer frees
 * nothing (hzshm__shm_prd_min returns 0) until one scan since w_open was
 * complete: readdir reached the end, every regular file under the prefix
 * was opened and examined (no per-scan opens cap before that), and every
 * valid live file whose slot bytes are locked ("busy": it may be inside a
 * section) is followed -- over the per-uid cap if need be; if even the
 * descriptor budget is spent, or an open fails for want of resources, the
 * scan is incomplete (counted in stats.prd_scans_incomplete) and the next
 * one tries again. After that scan no unfollowed file can hold a legitimate
 * section: a slot is claimed only under a confirmation by the current
 * writer (our pid, stored release before the first scan; our classic locks
 * exist only on followed files, dropped only once the alive byte is free),
 * and one claimed under an earlier writer was held before our w_open, so
 * our complete scan saw it busy. Non-regular entries (symlinks, FIFOs,
 * directories) are skipped by d_type/lstat and never stored; rejected files
 * are remembered only up to HZSHM__PRD_MAX (then reopened, bounded per scan),
 * and not while changed within the last second (being created).
 * Bound: a hostile process can keep a restarted writer from completing only
 * with busy files over our descriptor budget, i.e. while it lives and holds
 * them; meanwhile nothing is freed: puts fail (ESEGFULL), hits stay correct.
 *
 * Ordering of the epoch reads: the writer's fence (and membarrier) in
 * hzshm__shm_min_epoch precede the pread, so the store-buffering argument of
 * shm_slots.c holds as for mapped slots; an acquire fence after the pread
 * pairs with the reader's release store of slot.epoch = 0 (rs_exit).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shm_int.h"

#define HZSHM__PRD_MAX 4096u      /* entries (followed + rejected) the writer keeps; more readers stay on the agent path */
#define HZSHM__PRD_PER_UID 64u    /* files followed per owner uid: one uid cannot use up the writer's descriptors */
#define HZSHM__PRD_OPENS_MAX 64u  /* new files examined per scan (garbage files cost bounded work) */
#define HZSHM__PRD_PATH_MAX (HZSHM_SHM_PATH_MAX + 48)
#define HZSHM__PRD_RESCAN_NS 1000000000ull /* an unchanged directory is read again after 1 s */

struct hzshm__prd {
  int fd;      /* -1: a rejected file (not a complete private reader file when last looked at) */
  ino_t ino;
  uid_t uid;   /* owner of a followed file */
  off_t size;  /* rejected: its size then; looked at again only once it changed */
};

/* 1 if some other open file description holds a lock on a byte of [at, at + len). */
static int range_locked(int fd, off_t at, off_t len) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = len};
  if (fcntl(fd, F_OFD_GETLK, &fl) < 0) return 0;
  return fl.l_type != F_UNLCK;
}
static int byte_locked(int fd, off_t at) { return range_locked(fd, at, 1); }

/* ---- reader side ---- */

int hzshm__shm_prd_create(hzshm__shm_t *s, const hzshm__shm_hdr_t *h, hzshm__shm_rdhdr_t *r) {
  char dir[HZSHM_SHM_PATH_MAX];
  int rc = hzshm__shm_path(s->name, 0, dir, sizeof dir);
  if (rc != 0) return rc;
  s->prd_path = malloc(HZSHM__PRD_PATH_MAX);
  if (!s->prd_path) return -ENOMEM;
  hzshm__shm_rdhdr_make(h, r);
  /* A random name part: a process of another uid could otherwise plant the
   * names the next pids will use (a sticky directory keeps us from removing
   * its file) and make every attach fail. Files of dead readers are the
   * writer's to remove. */
  for (int attempt = 0; attempt < 4 && s->rfd < 0; attempt++) {
    uint64_t rnd;
    if ((rc = hzshm__shm_random(&rnd, sizeof rnd)) != 0) break;
    if (snprintf(s->prd_path, HZSHM__PRD_PATH_MAX, "%s.rd.%d.%llu.%016llx", dir, (int)getpid(),
                 (unsigned long long)s->id, (unsigned long long)rnd) >= HZSHM__PRD_PATH_MAX) {
      rc = HZSHM_EINVAL;
      break;
    }
    s->rfd = open(s->prd_path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    rc = s->rfd < 0 ? -errno : 0;
    if (rc != -EEXIST) break;
  }
  if (s->rfd < 0) {
    if (rc == 0) rc = -EIO;
    free(s->prd_path);
    s->prd_path = NULL;
    return rc;
  }
  /* The alive byte first: the writer deletes a complete file whose alive
   * byte is free. Then size, then the header: the writer ignores a file
   * until its header is complete. */
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)h->nslots, .l_len = 1};
  if (fcntl(s->rfd, F_OFD_SETLK, &fl) < 0 || fchmod(s->rfd, 0644) < 0 || ftruncate(s->rfd, (off_t)r->total_size) < 0)
    return -errno;
  if (pwrite(s->rfd, r, sizeof *r, 0) != (ssize_t)sizeof *r) return -EIO;
  return 0;
}

/* Under s->mu, with the claimed slot's byte lock already held (slot_claim):
 * 1 if the current writer follows our file now. Never cached: a restarted
 * writer (even one in this same process, whose classic locks went with its
 * descriptors) has not followed anything an earlier one did. The slot lock
 * taken first is what makes this safe against a scan that decided our file
 * was idle (see "Restart" in the head). */
int hzshm__shm_prd_confirmed(hzshm__shm_t *s) {
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)s->nslots + 1, .l_len = 1};
  if (fcntl(s->rfd, F_OFD_GETLK, &fl) < 0 || fl.l_type != F_RDLCK) return 0;
  /* acquire: pairs with w_open's release store of writer_pid before its first scan */
  return fl.l_pid > 0 && (uint32_t)fl.l_pid == atomic_load_explicit(&s->hdr->writer_pid, memory_order_acquire);
}

/* After the mapping exists: the registration point (see the head). */
void hzshm__shm_prd_attached(hzshm__shm_t *s) {
  if (!s->prd_path) return;
  /* acquire: pairs with the writer's release increment after its scan */
  s->prd_need = atomic_load_explicit(&s->hdr->reg_scans, memory_order_acquire) + 2;
}

/* ---- writer side ---- */

static uint32_t fd_budget(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return HZSHM__PRD_MAX;
  uint64_t q = (uint64_t)rl.rlim_cur / 4;
  return q < HZSHM__PRD_MAX ? (uint32_t)q : HZSHM__PRD_MAX;
}

static void prd_drop(hzshm__shm_t *s, uint32_t i) {
  if (s->prd[i].fd >= 0) close(s->prd[i].fd);
  s->prd[i] = s->prd[--s->nprd];
}

static int prd_add(hzshm__shm_t *s, int fd, ino_t ino, off_t size, uid_t uid) {
  if (s->nprd == s->capprd) {
    uint32_t cap = s->capprd ? 2 * s->capprd : 16;
    struct hzshm__prd *p = realloc(s->prd, cap * sizeof *p);
    if (!p) return -1;
    s->prd = p;
    s->capprd = cap;
  }
  s->prd[s->nprd++] = (struct hzshm__prd){.fd = fd, .ino = ino, .uid = uid, .size = size};
  return 0;
}

/* Is `fd` a complete private reader file of this segment? */
static int prd_valid(hzshm__shm_t *s, int fd) {
  struct stat st;
  hzshm__shm_rdhdr_t r;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return 0;
  if (pread(fd, &r, sizeof r, 0) != (ssize_t)sizeof r) return 0;
  return hzshm__shm_rd_check(&r, s->hdr, (uint64_t)st.st_size) == 0;
}

/* 1 if some slot byte of the file is locked: its reader holds slots and may
 * be inside a read-side section (slots are claimed only under a confirmation,
 * and kept for the thread's life). */
static int prd_busy(hzshm__shm_t *s, int fd) { return range_locked(fd, 0, (off_t)s->nslots); }

static void prd_reject(hzshm__shm_t *s, int fd, const struct stat *st) {
  close(fd);
  /* A file changed within the last second may be a reader's still being
   * created: it sizes the file, then writes the header, which moves neither
   * its size nor the directory's mtime. Not remembered: examined again at
   * the next readdir (at most HZSHM__PRD_RESCAN_NS later). */
  struct timespec now;
  if (clock_gettime(CLOCK_REALTIME, &now) != 0 || now.tv_sec - st->st_ctim.tv_sec <= 1) return;
  if (s->nprd - hzshm__shm_prd_followed(s) < HZSHM__PRD_MAX) /* else not remembered: opened again */
    prd_add(s, -1, st->st_ino, st->st_size, st->st_uid);
}

/* One directory entry under the prefix (a regular file by lstat: `st`).
 * Returns 1 if the scan cannot count as complete because of it. */
static int prd_examine(hzshm__shm_t *s, int dfd, const char *nm, struct stat st) {
  /* O_NOFOLLOW | O_NONBLOCK: a symlink or FIFO swapped in since the lstat is
   * refused without blocking the writer; fstat of the descriptor is what
   * counts from here on (the name may have been replaced). */
  int fd = openat(dfd, nm, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  /* Gone, a symlink, or one we may not open (a reader's own file is 0644):
   * nothing we could follow. Out of descriptors or memory: unknown. */
  if (fd < 0) return errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EINTR;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return 1;
  }
  for (uint32_t k = 0; k < s->nprd; k++)
    if (s->prd[k].fd >= 0 && s->prd[k].ino == st.st_ino) { /* followed already (a hard link, a rename) */
      close(fd);
      return 0;
    }
  if (!prd_valid(s, fd)) { /* incomplete (being created) or not ours: looked at again when it changes */
    /* One left by a reader that died while creating it (no alive byte held,
     * unchanged for a minute): removed where we may. A reader still
     * creating its file holds no slot (it claims only once confirmed). */
    if (!byte_locked(fd, (off_t)s->nslots) && time(NULL) - st.st_mtime > 60) unlinkat(dfd, nm, 0);
    prd_reject(s, fd, &st);
    return 0;
  }
  if (!byte_locked(fd, (off_t)s->nslots)) { /* complete but its creator is gone */
    unlinkat(dfd, nm, 0);                    /* fails (sticky directory) unless we may: harmless */
    close(fd);
    return 0;
  }
  uint32_t same = 0, fds = 0;
  for (uint32_t j = 0; j < s->nprd; j++) {
    same += s->prd[j].fd >= 0 && s->prd[j].uid == st.st_uid;
    fds += s->prd[j].fd >= 0;
  }
  /* Descriptors: at most 64 files per owner uid and a quarter of our limit
   * in all, so that no flood of files can starve the agent's sockets nor one
   * uid crowd out another's readers. A file over the caps is not followed;
   * its reader cannot get a confirmation from us, so it uses the agent path
   * (fails closed for itself) -- unless it already holds slots under an
   * earlier writer's confirmation (busy): before our first complete scan
   * such a file is followed over the per-uid cap, and if even the
   * descriptor budget is spent the scan stays incomplete (nothing freed). */
  if (same >= HZSHM__PRD_PER_UID || fds >= fd_budget()) {
    int busy = !atomic_load_explicit(&s->prd_complete, memory_order_relaxed) && prd_busy(s, fd); /* writer's own */
    if (!busy || fds >= fd_budget()) {
      atomic_fetch_add_explicit(&s->prd_refused, 1, memory_order_relaxed); /* statistic */
      if (busy) { /* not remembered: examined again at every scan until it can be followed or is idle */
        close(fd);
        return 1;
      }
      prd_reject(s, fd, &st); /* as rejected: looked at again now and then */
      return 0;
    }
  }
  /* The confirmation lock (see the head): a classic lock, ours as a
   * process; it goes with fd (this process opens the file only here). */
  struct flock ack = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = (off_t)s->nslots + 1, .l_len = 1};
  if (fcntl(fd, F_SETLK, &ack) != 0 || prd_add(s, fd, st.st_ino, st.st_size, st.st_uid) != 0) {
    close(fd);
    return 1;
  }
  return 0;
}

void hzshm__shm_prd_scan(hzshm__shm_t *s) {
  if (!s->w) return;
  /* Files of dead processes: dropped, and removed where we may (next scan). */
  for (uint32_t i = 0; i < s->nprd;) {
    if (s->prd[i].fd >= 0 && byte_locked(s->prd[i].fd, (off_t)s->nslots)) {
      i++;
      continue;
    }
    if (s->prd[i].fd < 0 && (s->reg_scans_local & 255) != 0) { /* rejected ones: forgotten now and then */
      i++;
      continue;
    }
    prd_drop(s, i);
  }
  s->reg_scans_local++;
  int first = !atomic_load_explicit(&s->prd_complete, memory_order_relaxed); /* writer's own */
  int incomplete = 1;
  char path[HZSHM__PRD_PATH_MAX], prefix[HZSHM_SHM_NAME_MAX + 16];
  if (hzshm__shm_path(s->name, 0, path, HZSHM_SHM_PATH_MAX) != 0) goto out;
  char *slash = strrchr(path, '/');
  int plen = snprintf(prefix, sizeof prefix, "%s.rd.", slash + 1);
  *slash = 0;
  /* The directory is read again only when it changed (its mtime moves at
   * every create, unlink and rename in it), or after HZSHM__PRD_RESCAN_NS:
   * a directory flooded with entries (of any segment) costs its readdir
   * once, not at every maintain tick. The mtime is taken before the
   * readdir, and trusted only if it was >= 100 ms old then (a create in the
   * same clock tick would not move it). A skipped scan does not increment
   * reg_scans: readers wait for a scan that read the directory (the
   * registration argument of the head counts only those). Safe: skipping
   * only delays new readers, who use no slot before our confirmation; the
   * epochs of followed files are read at every reclaim regardless. */
  struct stat dst;
  struct timespec rt;
  uint64_t now = hzshm__shm_now_coarse();
  int dstat = stat(path[0] ? path : "/", &dst) == 0 && clock_gettime(CLOCK_REALTIME, &rt) == 0;
  if (!first && dstat && s->prd_mtim_settled && dst.st_mtim.tv_sec == s->prd_mtim.tv_sec &&
      dst.st_mtim.tv_nsec == s->prd_mtim.tv_nsec && now - s->prd_full_ns < HZSHM__PRD_RESCAN_NS)
    return;
  s->prd_mtim_settled = 0;
  if (dstat) {
    s->prd_mtim = dst.st_mtim;
    int64_t age_ns = (int64_t)(rt.tv_sec - dst.st_mtim.tv_sec) * 1000000000 + (rt.tv_nsec - dst.st_mtim.tv_nsec);
    s->prd_mtim_settled = age_ns >= 100000000;
  }
  s->prd_full_ns = now;
  DIR *d = opendir(path[0] ? path : "/");
  if (d) {
    unsigned opens = 0;
    incomplete = 0;
    for (;;) {
      errno = 0;
      struct dirent *e = readdir(d);
      if (!e) {
        incomplete |= errno != 0; /* a read error: the rest is unknown */
        break;
      }
      if (strncmp(e->d_name, prefix, (size_t)plen) != 0) continue;
      /* Symlinks, directories, FIFOs, sockets, devices: never a reader file
       * (readers create theirs O_EXCL as regular files), so neither examined
       * nor remembered: a flood of them costs a name comparison each. */
      if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN) continue;
      struct stat st;
      if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      uint32_t k = 0;
      while (k < s->nprd && s->prd[k].ino != st.st_ino) k++;
      if (k < s->nprd && (s->prd[k].fd >= 0 || s->prd[k].size == st.st_size)) continue; /* known, or rejected as is */
      if (k < s->nprd) prd_drop(s, k); /* a rejected file that changed: look again */
      /* Bounded work per scan once a complete scan ran; the first scans of
       * a (restarted) writer examine everything, since an unexamined file
       * may belong to a reader confirmed by the previous writer. */
      if (!first && opens >= HZSHM__PRD_OPENS_MAX) {
        incomplete = 1; /* harmless now (see "Restart" in the head); counted */
        break;
      }
      opens++;
      incomplete |= prd_examine(s, dirfd(d), e->d_name, st);
    }
    closedir(d);
  }
out:
  if (incomplete) { /* read the directory again at the next call */
    s->prd_mtim_settled = 0;
    atomic_fetch_add_explicit(&s->prd_incomplete, 1, memory_order_relaxed); /* statistic */
  }
  if (!incomplete && first) atomic_store_explicit(&s->prd_complete, 1, memory_order_relaxed); /* writer's own; stats read it */
  /* release: pairs with the reader's acquire loads (prd_attached, slot_claim):
   * every file found by this scan is in s->prd before the count moves on */
  atomic_fetch_add_explicit(&s->hdr->reg_scans, 1, memory_order_release);
}

/* A private file's slots are claimed from index 0 up (slot_claim), so the
 * writer reads them in chunks of HZSHM__PRD_CHUNK and stops once no slot
 * lock is held beyond the chunks read: one pread and one fcntl for a reader
 * of up to 64 threads. A slot claimed beyond after that check starts its
 * section after it (the lock operations are ordered by the kernel), so it
 * sees every unlink made before this scan. */
#define HZSHM__PRD_CHUNK 64u

uint64_t hzshm__shm_prd_min(hzshm__shm_t *s, uint64_t min) {
  /* A (restarted) writer frees nothing until it examined every reader file
   * once (see "Restart" in the head). relaxed: the writer's own word. */
  if (!atomic_load_explicit(&s->prd_complete, memory_order_relaxed)) return 0;
  if (!s->nprd) return min;
  size_t len = HZSHM__PRD_CHUNK * sizeof(hzshm__shm_slot_t);
  if (!s->prd_buf && !(s->prd_buf = malloc(len))) return 0; /* cannot read them: free nothing */
  uint64_t slots_off = (uint64_t)((uint8_t *)s->slots - s->rbase);
  for (uint32_t i = 0; i < s->nprd; i++) {
    int fd = s->prd[i].fd;
    if (fd < 0) continue;
    for (uint32_t base = 0; base < s->nslots; base += HZSHM__PRD_CHUNK) {
      ssize_t n = pread(fd, s->prd_buf, len, (off_t)(slots_off + (uint64_t)base * sizeof(hzshm__shm_slot_t)));
      if (n <= 0) break; /* truncated by its owner: its slots protect nothing (its own loss) */
      /* acquire: pairs with the reader's release store of slot.epoch = 0 */
      atomic_thread_fence(memory_order_acquire);
      for (size_t k = 0; (k + 1) * sizeof(hzshm__shm_slot_t) <= (size_t)n && base + k < s->nslots; k++) {
        uint64_t e;
        memcpy(&e, s->prd_buf + k * sizeof(hzshm__shm_slot_t) + offsetof(hzshm__shm_slot_t, epoch), 8);
        if (e && e < min && byte_locked(fd, (off_t)(base + k))) min = e;
      }
      uint32_t next = base + HZSHM__PRD_CHUNK;
      if (next >= s->nslots || !range_locked(fd, (off_t)next, (off_t)(s->nslots - next))) break;
    }
  }
  return min;
}

uint32_t hzshm__shm_prd_followed(const hzshm__shm_t *s) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < s->nprd; i++) n += s->prd[i].fd >= 0;
  return n;
}

void hzshm__shm_prd_close(hzshm__shm_t *s) {
  if (s->prd_path) { /* reader: our file goes with the handle (not in a fork child: the parent's) */
    if (!s->forked) unlink(s->prd_path);
    free(s->prd_path);
    s->prd_path = NULL;
  }
  while (s->nprd) prd_drop(s, s->nprd - 1);
  free(s->prd);
  free(s->prd_buf);
  s->prd = NULL;
  s->prd_buf = NULL;
  s->capprd = 0;
}
