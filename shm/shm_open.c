/* shm_open.c - creating, attaching, validating, closing and removing a segment.
 *
 * Attach never trusts the file: the header is read with pread() and checked
 * (magic, layout version, fingerprint, a hash over the geometry, every region
 * inside the file and in order, the file size from fstat) before anything is
 * mapped, and the handle keeps private copies of the validated geometry.
 *
 * Writer exclusion and liveness: the writer holds an OFD write lock on byte 0
 * of the data file for as long as its handle is open. The kernel drops it when
 * the process dies, however it dies, and OFD locks (unlike classic POSIX
 * locks) belong to the open file description, so they work between threads
 * and between two handles of one process, and across pid namespaces.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm_int.h"

static _Atomic uint64_t next_handle_id = 1; /* relaxed: only uniqueness matters */

/* Fork: a child shares its parent's open file descriptions, hence its OFD
 * locks. A child that kept them would keep a dead writer "alive" (new writers
 * get HZSHM_EEXIST) and a dead reader's slots unreapable. So in the child every
 * inherited handle drops its descriptors and is marked forked; the child must
 * attach again (its mappings are gone: a MAP_SHARED mapping references the
 * open file description and would keep the locks too). The registry lock is
 * held across fork() (prepare/parent). shm/ registers no fork handler: these
 * are steps the process's one handler calls (libhzshm's, src/lib/lib.c; see
 * shm.h). reg_mu is a leaf lock: nothing is called while it is held. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static hzshm__shm_t *reg_head;

void hzshm__shm_fork_prepare(void) { pthread_mutex_lock(&reg_mu); }
void hzshm__shm_fork_parent(void) { pthread_mutex_unlock(&reg_mu); }
void hzshm__shm_fork_child(void) {
  for (hzshm__shm_t *s = reg_head; s; s = s->reg_next) {
    /* A shared mapping holds a reference to its open file description, so
     * the inherited mappings would keep the locks alive too: unmap them. */
    if (s->base != MAP_FAILED) munmap(s->base, s->size);
    if (s->rbase != MAP_FAILED) munmap(s->rbase, s->rsize);
    s->base = s->rbase = MAP_FAILED;
    if (s->dfd >= 0) close(s->dfd);
    if (s->rfd >= 0) close(s->rfd);
    if (s->probe_fd >= 0) close(s->probe_fd);
    if (s->lock_fd >= 0) close(s->lock_fd);
    s->dfd = s->rfd = s->probe_fd = s->lock_fd = -1;
    s->forked = 1;
    /* The parent's writer state and slot list: the child's copies of them
     * are freed (never used) by hzshm__shm_close. */
    s->forked_w = s->w;
    s->forked_tslots = s->tslots;
    s->w = NULL;
    s->tslots = NULL;
    pthread_mutex_init(&s->mu, NULL); /* another parent thread may have held it at fork() */
  }
  /* Taken by this thread in prepare: released, not made anew (re-initializing
   * a locked mutex is undefined; TSan then sees it locked forever and reports
   * the next thread that takes it as a double lock). */
  pthread_mutex_unlock(&reg_mu);
}

pid_t hzshm__shm_fork(void) {
  hzshm__shm_fork_prepare();
  pid_t pid = fork();
  if (pid == 0) hzshm__shm_fork_child();
  else hzshm__shm_fork_parent(); /* also when fork() failed */
  return pid;
}

static void reg_add(hzshm__shm_t *s) {
  pthread_mutex_lock(&reg_mu);
  s->reg_next = reg_head;
  if (reg_head) reg_head->reg_pprev = &s->reg_next;
  reg_head = s;
  s->reg_pprev = &reg_head;
  pthread_mutex_unlock(&reg_mu);
}
static void reg_del(hzshm__shm_t *s) {
  if (!s->reg_pprev) return;
  pthread_mutex_lock(&reg_mu);
  *s->reg_pprev = s->reg_next;
  if (s->reg_next) s->reg_next->reg_pprev = s->reg_pprev;
  pthread_mutex_unlock(&reg_mu);
}

/* The one place a segment's file names are made: HZSHM_SHM_DIR (default
 * /dev/shm) + "/hzshm." + name [+ ".rd"]. Read at open/attach/unlink time
 * only, never on the hit path. The directory must be an absolute path of at
 * most HZSHM_SHM_DIR_MAX bytes (HZSHM_EINVAL otherwise, before anything is
 * opened); an empty value means the default. */
int hzshm__shm_path(const char *name, int rd, char *buf, size_t cap) {
  static const char *const sfx[] = {"", ".rd", ".lock"};
  if (rd < 0 || rd > 2) return HZSHM_EINVAL;
  const char *dir = getenv("HZSHM_SHM_DIR");
  if (!dir || !*dir) dir = "/dev/shm";
  size_t n = strlen(dir);
  if (dir[0] != '/' || n > HZSHM_SHM_DIR_MAX) return HZSHM_EINVAL;
  while (n > 1 && dir[n - 1] == '/') n--; /* "/mnt/x/" == "/mnt/x" */
  if (!name || !hzshm__shm_name_ok(name)) return HZSHM_EINVAL;
  int w = snprintf(buf, cap, "%.*s/hzshm.%s%s", (int)n, dir, name, sfx[rd]);
  return w < 0 || (size_t)w >= cap ? HZSHM_EINVAL : 0;
}

#define HUGE_2M (2ull << 20) /* x86-64 PMD page */
static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
static uint64_t pow2_ge(uint64_t v) {
  uint64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

static uint64_t geom_hash(const hzshm__shm_hdr_t *h) {
  return hzshm__shm_fold(h, offsetof(hzshm__shm_hdr_t, geom_check), 0x67656f6dull);
}
static uint64_t rd_size_of(uint32_t nslots, uint64_t arena_size, uint64_t *slots_off, uint64_t *bm_off,
                           uint64_t *bm_bytes) {
  uint64_t units = arena_size / HZSHM__UNIT;
  *slots_off = HZSHM__HDR_SIZE;
  *bm_off = align_up(*slots_off + (uint64_t)nslots * sizeof(hzshm__shm_slot_t), 64);
  *bm_bytes = align_up((units + 7) / 8, 8);
  return align_up(*bm_off + *bm_bytes, 4096);
}

/* Compute the layout for a configuration into *h (geometry part only). */
static int layout_compute(const hzshm__shm_config_t *c, hzshm__shm_hdr_t *h) {
  uint64_t mem = c->memory_bytes ? c->memory_bytes : (256ull << 20);
  uint32_t dirn = c->max_sessions ? c->max_sessions : 65536;
  uint32_t slots = c->reader_slots ? c->reader_slots : 1024;
  uint32_t parts = c->partition_count ? c->partition_count : 271;
  if (dirn > (1u << 22) || slots > 65536 || parts > 65535 || mem > (1ull << 46)) return HZSHM_EINVAL;
  memset(h, 0, sizeof *h);
  h->magic = HZSHM__SHM_MAGIC;
  h->version = HZSHM_SHM_LAYOUT_VERSION;
  h->hdr_size = HZSHM__HDR_SIZE;
  h->fingerprint = hzshm__shm_layout_fingerprint();
  h->part_off = HZSHM__HDR_SIZE;
  h->part_count = parts;
  h->dir_off = align_up(h->part_off + (uint64_t)parts * sizeof(hzshm__shm_part_t), 64);
  h->dir_count = dirn;
  h->dirix_off = align_up(h->dir_off + (uint64_t)dirn * sizeof(hzshm__shm_dirent_t), 64);
  h->dirix_count = (uint32_t)pow2_ge(2ull * dirn);
  h->nslots = slots;
  h->slabtab_off = align_up(h->dirix_off + (uint64_t)h->dirix_count * 4, 64);
  if (mem < h->slabtab_off + (1u << 20)) return HZSHM_EINVAL;
  uint64_t rest = mem - h->slabtab_off;
  /* Slab size: the largest power of two within [64 KiB, 2 MiB] of which the
   * budget left after the header, directory and slab table (rest) holds at
   * least HZSHM__SLABS_MIN: several size classes can then share the arena
   * and stealing one slab never evicts more than ~1/64 of the cache. With
   * 2 MiB slabs (rest >= 128 MiB) the largest size class holds an entry of
   * HZSHM_VALUE_MAX + HZSHM_KEY_MAX + header; segments under ~4 MiB keep
   * 64 KiB slabs. (The agent's default 64 MiB with 65536 sessions: ~45 MiB
   * left, 512 KiB slabs.) */
  h->slab_shift = HZSHM__SLAB_SHIFT_MAX;
  while (h->slab_shift > HZSHM__SLAB_SHIFT_MIN && rest >> h->slab_shift < HZSHM__SLABS_MIN) h->slab_shift--;
  const uint64_t slab = 1ull << h->slab_shift;
  /* Buckets: about two per entry of 192 B (the size class of a 16 B key +
   * 100 B value), rounded up to a power of two: load factor <= ~0.5 when
   * full, so a hit walks ~1.25 entries on average (every extra entry is one
   * more dependent cache miss). Costs ~4% of the budget. */
  h->bucket_count = pow2_ge(rest / 192 > 1024 ? rest / 192 : 1024);
  if (h->bucket_count * 8 > rest / 8) h->bucket_count /= 2;
  uint64_t max_slabs = rest / slab;
  /* From 64 MiB on, the bucket array and the arena start on 2 MiB boundaries
   * and the file ends on one (at most ~4 MiB, <= 6% of the budget): on a huge
   * page tmpfs each hot region then lies on whole 2 MiB pages of its own and
   * huge=within_size backs the file up to its last byte. */
  uint64_t big = mem >= (64ull << 20) ? HUGE_2M : 4096;
  h->bucket_off = align_up(h->slabtab_off + max_slabs * 8, big > 4096 ? big : 64);
  h->arena_off = align_up(h->bucket_off + h->bucket_count * 8, big);
  if (big > 4096) mem &= ~(big - 1);
  if (mem <= h->arena_off + slab) return HZSHM_EINVAL;
  h->slab_count = (mem - h->arena_off) / slab;
  h->arena_size = h->slab_count * slab;
  h->total_size = h->arena_off + h->arena_size;
  h->stale_after_ns = c->stale_after_ns ? c->stale_after_ns : 2000000000ull;
  uint64_t a, b, d;
  h->rd_size = rd_size_of(slots, h->arena_size, &a, &b, &d);
  h->geom_check = geom_hash(h);
  return 0;
}

/* The reader file header for a data header (the shared and private reader files). */
void hzshm__shm_rdhdr_make(const hzshm__shm_hdr_t *h, hzshm__shm_rdhdr_t *r) {
  memset(r, 0, sizeof *r);
  r->magic = HZSHM__SHM_RD_MAGIC;
  r->version = HZSHM_SHM_LAYOUT_VERSION;
  r->nslots = h->nslots;
  r->fingerprint = h->fingerprint;
  r->total_size = rd_size_of(h->nslots, h->arena_size, &r->slots_off, &r->bitmap_off, &r->bitmap_bytes);
  r->data_total_size = h->total_size;
}

/* Validate a header read from a file of `fsize` bytes. */
static int header_check(const hzshm__shm_hdr_t *h, uint64_t fsize) {
  if (h->magic != HZSHM__SHM_MAGIC) return HZSHM_ECORRUPT;
  if (h->version != HZSHM_SHM_LAYOUT_VERSION || h->fingerprint != hzshm__shm_layout_fingerprint())
    return HZSHM_EVERSION;
  if (h->geom_check != geom_hash(h) || h->hdr_size != HZSHM__HDR_SIZE) return HZSHM_ECORRUPT;
  const uint64_t lim = 1ull << 47;
  if (h->slab_shift < HZSHM__SLAB_SHIFT_MIN || h->slab_shift > HZSHM__SLAB_SHIFT_MAX) return HZSHM_ECORRUPT;
  const uint64_t slab = 1ull << h->slab_shift;
  if (h->part_count < 1 || h->part_count > 65535 || h->dir_count < 1 || h->dir_count > (1u << 22) ||
      h->nslots < 1 || h->nslots > 65536 || h->dirix_count < h->dir_count ||
      (h->dirix_count & (h->dirix_count - 1)) || h->bucket_count < 1 ||
      (h->bucket_count & (h->bucket_count - 1)) || h->bucket_count > lim / 8 || h->slab_count < 1 ||
      h->slab_count > lim / slab || h->arena_size != h->slab_count * slab)
    return HZSHM_ECORRUPT;
  if (h->part_off < HZSHM__HDR_SIZE || h->part_off > lim || h->dir_off > lim || h->dirix_off > lim ||
      h->slabtab_off > lim || h->bucket_off > lim || h->arena_off > lim || h->total_size > lim ||
      (h->part_off & 63) || (h->dir_off & 7) || (h->dirix_off & 3) || (h->slabtab_off & 7) || (h->bucket_off & 7) ||
      (h->arena_off & 4095))
    return HZSHM_ECORRUPT;
  if (h->part_off + (uint64_t)h->part_count * sizeof(hzshm__shm_part_t) > h->dir_off ||
      h->dir_off + (uint64_t)h->dir_count * sizeof(hzshm__shm_dirent_t) > h->dirix_off ||
      h->dirix_off + (uint64_t)h->dirix_count * 4 > h->slabtab_off ||
      h->slabtab_off + h->slab_count * 8 > h->bucket_off || h->bucket_off + h->bucket_count * 8 > h->arena_off ||
      h->arena_off + h->arena_size != h->total_size)
    return HZSHM_ECORRUPT;
  if (fsize < h->total_size) return HZSHM_ETRUNCATED;
  if (fsize > h->total_size) return HZSHM_ECORRUPT;
  return 0;
}

int hzshm__shm_rd_check(const hzshm__shm_rdhdr_t *r, const hzshm__shm_hdr_t *h, uint64_t fsize) {
  uint64_t so, bo, bb;
  uint64_t want = rd_size_of(h->nslots, h->arena_size, &so, &bo, &bb);
  if (r->magic != HZSHM__SHM_RD_MAGIC) return HZSHM_ECORRUPT;
  if (r->version != HZSHM_SHM_LAYOUT_VERSION || r->fingerprint != h->fingerprint) return HZSHM_EVERSION;
  if (r->nslots != h->nslots || r->slots_off != so || r->bitmap_off != bo || r->bitmap_bytes != bb ||
      r->total_size != want || r->data_total_size != h->total_size)
    return HZSHM_ECORRUPT;
  if (fsize < want) return HZSHM_ETRUNCATED;
  if (fsize > want) return HZSHM_ECORRUPT;
  return 0;
}

static int read_hdr(int fd, void *buf, size_t len, uint64_t *fsize) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  *fsize = (uint64_t)st.st_size;
  memset(buf, 0, len);
  ssize_t n = pread(fd, buf, len, 0);
  if (n < 0) return -errno;
  if ((size_t)n < 8) return st.st_size == 0 ? HZSHM_ETRUNCATED : HZSHM_ECORRUPT;
  if ((size_t)n < len) return *(uint64_t *)buf == HZSHM__SHM_MAGIC || *(uint64_t *)buf == HZSHM__SHM_RD_MAGIC
                                  ? HZSHM_ETRUNCATED
                                  : HZSHM_ECORRUPT;
  return 0;
}

/* The segment's name in its header (hdr.seg_name, NUL-padded). */
_Static_assert(HZSHM_SHM_NAME_MAX == HZSHM__SEG_NAME_BYTES, "hdr.seg_name holds every valid name");
static void seg_name_set(hzshm__shm_hdr_t *h, const char *name) {
  memset(h->seg_name, 0, sizeof h->seg_name);
  memcpy(h->seg_name, name, strnlen(name, sizeof h->seg_name));
}
/* 1 if the header says it is the segment `name` (a valid name). */
static int seg_name_is(const hzshm__shm_hdr_t *h, const char *name) {
  hzshm__shm_hdr_t want;
  seg_name_set(&want, name);
  return memcmp(h->seg_name, want.seg_name, sizeof want.seg_name) == 0;
}

/* 1 if `fd` has exactly one name. */
static int one_link(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_nlink == 1;
}

/* Fill the private geometry of a handle from a validated header copy. */
static void geometry_set(hzshm__shm_t *s, const hzshm__shm_hdr_t *h, const hzshm__shm_rdhdr_t *r) {
  s->hdr = (hzshm__shm_hdr_t *)s->base;
  s->buckets = (_Atomic uint64_t *)(s->base + h->bucket_off);
  s->bucket_mask = h->bucket_count - 1;
  s->arena_off = h->arena_off;
  s->arena_end = h->arena_off + h->arena_size;
  s->parts = (hzshm__shm_part_t *)(s->base + h->part_off);
  s->part_count = h->part_count;
  s->dir = (hzshm__shm_dirent_t *)(s->base + h->dir_off);
  s->dir_count = h->dir_count;
  s->dirix = (_Atomic uint32_t *)(s->base + h->dirix_off);
  s->dirix_mask = h->dirix_count - 1;
  s->slabtab = (_Atomic uint64_t *)(s->base + h->slabtab_off);
  s->slab_count = h->slab_count;
  s->slab_shift = h->slab_shift;
  hzshm__shm_classes_init(s);
  s->nunits = h->arena_size / HZSHM__UNIT;
  s->nslots = h->nslots;
  s->stale_after_ns = h->stale_after_ns;
  s->hkey[0] = h->hash_key[0]; /* outside geom_check (random per file); any value is a valid key */
  s->hkey[1] = h->hash_key[1];
  s->slots = (hzshm__shm_slot_t *)(s->rbase + r->slots_off);
  s->bitmap = (_Atomic uint64_t *)(s->rbase + r->bitmap_off);
}

static hzshm__shm_t *handle_new(const char *name) {
  hzshm__shm_t *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->id = atomic_fetch_add_explicit(&next_handle_id, 1, memory_order_relaxed);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->dfd = s->rfd = s->probe_fd = s->lock_fd = -1;
  s->base = s->rbase = MAP_FAILED;
  s->fence_mode = 1;
  pthread_mutex_init(&s->mu, NULL);
  reg_add(s);
  return s;
}

/* Map a whole segment file. A file of 2 MiB or more is mapped at a 2 MiB
 * aligned address (file offset 0 on a huge page boundary), so that a tmpfs
 * with huge pages (HZSHM_SHM_DIR on `tools/hugetmpfs`) can map it with PMDs;
 * MADV_HUGEPAGE asks for huge pages where the mount says huge=advise, and is
 * harmless (ignored) elsewhere. Returns MAP_FAILED with errno set. */
static uint8_t *map_file(uint64_t size, int prot, int fd) {
  void *p;
  if (size < HUGE_2M) return mmap(NULL, size, prot, MAP_SHARED, fd, 0);
  uint8_t *res = mmap(NULL, size + HUGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (res == MAP_FAILED) return MAP_FAILED;
  uint8_t *at = (uint8_t *)(((uintptr_t)res + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
  p = mmap(at, size, prot, MAP_SHARED | MAP_FIXED, fd, 0); /* replaces part of the reservation */
  if (p == MAP_FAILED) {
    int e = errno;
    munmap(res, size + HUGE_2M);
    errno = e;
    return MAP_FAILED;
  }
  if (at > res) munmap(res, (size_t)(at - res));                        /* reservation head */
  if (res + size + HUGE_2M > at + size) munmap(at + size, (size_t)(res + size + HUGE_2M - (at + size))); /* tail */
  madvise(p, size, MADV_HUGEPAGE); /* advice only: failure (no THP) changes nothing */
  return p;
}

static int map_pair(hzshm__shm_t *s, const hzshm__shm_hdr_t *h, const hzshm__shm_rdhdr_t *r, int data_prot) {
  s->size = h->total_size;
  s->rsize = r->total_size;
  s->base = map_file(s->size, data_prot, s->dfd);
  if (s->base == MAP_FAILED) return -errno;
  s->rbase = map_file(s->rsize, PROT_READ | PROT_WRITE, s->rfd);
  if (s->rbase == MAP_FAILED) return -errno;
  geometry_set(s, h, r);
  if (pthread_key_create(&s->key, hzshm__shm_tslot_dtor) != 0) return -ENOMEM;
  s->key_ok = 1;
  return 0;
}

/* 1 if the shared reader file `fd` is the writer's: a regular file of the
 * data file's owner that nobody else may write. */
static int rd_own(int fd, uid_t owner) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == owner && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

int hzshm__shm_r_attach(const char *name, hzshm__shm_t **out) {
  uid_t agent;
  if (out) *out = NULL;
  if (hzshm__shm_agent_uid(&agent) != 0) return HZSHM_EINVAL;
  return hzshm__shm_r_attach_as(name, agent, out);
}

int hzshm__shm_r_attach_as(const char *name, uid_t agent_uid, hzshm__shm_t **out) {
  int rc;
  hzshm__shm_hdr_t h;
  hzshm__shm_rdhdr_t r;
  uint64_t fsize;
  char path[HZSHM_SHM_PATH_MAX];
  if (!out) return HZSHM_EINVAL;
  hzshm__shm_clock_init();
  *out = NULL;
  if (!hzshm__shm_name_ok(name)) return HZSHM_EINVAL;
  if ((rc = hzshm__shm_path(name, 0, path, sizeof path)) != 0) return rc;
  hzshm__shm_t *s = handle_new(name);
  if (!s) return -ENOMEM;
  /* O_NOFOLLOW: a symlink at the name (anyone may make one in /dev/shm while
   * the name is free) would lead us to another trusted file, e.g. another
   * segment of the agent: its values under this segment's name. O_NONBLOCK:
   * opening a FIFO planted there would block until somebody opens it for
   * writing (forever); it is refused by the fstat below instead. */
  s->dfd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (s->dfd < 0) {
    rc = errno == ELOOP ? HZSHM_EUNTRUSTED : -errno;
    goto fail;
  }
  /* The trust anchor (shm_trust.c): the file opened, not the name, must be
   * a trusted uid's; nothing is read from it before. */
  uid_t owner;
  if ((rc = hzshm__shm_fd_trusted(s->dfd, agent_uid, &owner)) != 0) goto fail;
  if ((rc = read_hdr(s->dfd, &h, sizeof h, &fsize)) != 0 || (rc = header_check(&h, fsize)) != 0) goto fail;
  /* A hard link to another segment's data file at our name (where
   * fs.protected_hardlinks is off, any process of the group may make one
   * while the name is free) is that segment: its values under our name. Its
   * header says whose it is. (Not st_nlink: anyone who may link the file
   * could then make every reader refuse a legitimate segment.) */
  if (!seg_name_is(&h, name)) {
    rc = HZSHM_EUNTRUSTED;
    goto fail;
  }
  if ((rc = hzshm__shm_path(name, 1, path, sizeof path)) != 0) goto fail;
  s->rfd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (s->rfd >= 0 && !rd_own(s->rfd, owner)) {
    /* Not the writer's (planted while the name was free, or another
     * layout's leftover): its slots would protect nothing. Slots of our own. */
    close(s->rfd);
    s->rfd = -1;
    errno = EACCES;
  }
  if (s->rfd < 0 && (errno == EACCES || errno == EPERM || errno == ELOOP)) {
    /* Another uid, allowed to read the data (its group): slots of our own. */
    if ((rc = hzshm__shm_prd_create(s, &h, &r)) != 0) goto fail;
  } else if (s->rfd < 0) {
    rc = -errno;
    goto fail;
  } else if ((rc = read_hdr(s->rfd, &r, sizeof r, &fsize)) != 0 || (rc = hzshm__shm_rd_check(&r, &h, fsize)) != 0) {
    goto fail;
  }
  if ((rc = map_pair(s, &h, &r, PROT_READ)) != 0) goto fail;
  hzshm__shm_prd_attached(s);
  /* Asymmetric fences: if the writer announces that it membarriers before
   * scanning slots and this process can register, the read side needs only a
   * compiler barrier. HZSHM_SHM_READ_FENCE=1 forces the fence (benchmarks). */
  const char *ev = getenv("HZSHM_SHM_READ_FENCE");
  if ((atomic_load_explicit(&s->hdr->flags, memory_order_relaxed) & HZSHM__F_MEMBARRIER) && !(ev && *ev == '1') &&
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) == 0)
    s->fence_mode = 0; /* relaxed above: the flag is written once before the writer serves */
  *out = s;
  return 0;
fail:
  hzshm__shm_close(s);
  return rc;
}

/* The data file's mode: never writable but by its owner (the writer). */
static mode_t data_mode(const hzshm__shm_config_t *cfg) {
  mode_t m = cfg->mode ? (mode_t)cfg->mode : cfg->gid_set ? 0640 : 0600;
  return (m & 0644) | 0600;
}

/* Create both files from scratch (the data file is locked by us already). */
static int create_files(hzshm__shm_t *s, const hzshm__shm_hdr_t *h, const hzshm__shm_config_t *cfg) {
  char path[HZSHM_SHM_PATH_MAX];
  hzshm__shm_rdhdr_t r;
  hzshm__shm_rdhdr_make(h, &r);
  int rc = hzshm__shm_path(s->name, 1, path, sizeof path);
  if (rc != 0) return rc;
  unlink(path); /* readers still mapping an old one keep their inode */
  /* The reader file is the writer's uid's only (0600): a process that can
   * write it can zero other readers' epochs or truncate it under the
   * writer's mapping. Others read the data file (never writable but by the
   * writer) and keep their slots in private files (shm_private.c). */
  s->rfd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (s->rfd < 0) return -errno;
  if (fchmod(s->rfd, 0600) < 0 || ftruncate(s->rfd, (off_t)r.total_size) < 0) return -errno;
  if (pwrite(s->rfd, &r, sizeof r, 0) != (ssize_t)sizeof r) return -EIO;
  if (ftruncate(s->dfd, (off_t)h->total_size) < 0) return -errno;
  if (cfg->gid_set && fchown(s->dfd, (uid_t)-1, (gid_t)cfg->gid) < 0) return -errno;
  if (fchmod(s->dfd, data_mode(cfg)) < 0) return -errno;
  /* Header without the magic first, the magic last: a crash in between
   * leaves a file every attach rejects as corrupt and w_open recreates. */
  hzshm__shm_hdr_t tmp = *h;
  tmp.magic = 0;
  if (pwrite(s->dfd, &tmp, sizeof tmp, 0) != (ssize_t)sizeof tmp) return -EIO;
  if (pwrite(s->dfd, &h->magic, sizeof h->magic, 0) != (ssize_t)sizeof h->magic) return -EIO;
  return map_pair(s, h, &r, PROT_READ | PROT_WRITE);
}

/* The writer uses only files of its own uid. In a shared directory (the
 * sticky /dev/shm) a process of the allowed group can create the segment's
 * names while they do not exist (first start, after --unlink-on-exit, between
 * the unlink and the create of a replacement) and keep them open for
 * writing: adopted, such a file could be truncated under the writer's
 * mapping (SIGBUS), written (values every reader would hit) or unlinked
 * under its lock (a second writer). 1 if `fd` is a regular file of our euid,
 * 0 if not, -errno. */
static int own_file(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  return S_ISREG(st.st_mode) && st.st_uid == geteuid();
}

/* 1 if our file `fd` may be written by its group or others (or cannot be
 * examined). Our builds never make such files; an older one did (0660), and
 * a process that opened it for writing then keeps that descriptor however
 * the mode changes later: such an inode is never adopted, only replaced. */
static int others_may_write(int fd) {
  struct stat st;
  return fstat(fd, &st) != 0 || (st.st_mode & (S_IWGRP | S_IWOTH));
}

/* 1 if others than our uid may open our file `fd` (or it cannot be
 * examined): a lock file others can open, they can lock. */
static int others_may_open(int fd) {
  struct stat st;
  return fstat(fd, &st) != 0 || (st.st_mode & 0077);
}

/* Open `path` (O_CREAT, `mode`) as a file of our own: a foreign one is
 * unlinked and the create retried (never ours: no segment of ours lived in
 * it). Returns the descriptor or -errno (-EPERM: a foreign file we may not
 * remove, e.g. a non-root writer in a sticky directory). */
static int open_own(const char *path, mode_t mode) {
  for (int attempt = 0; attempt < 4; attempt++) {
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
      /* A planted symlink (O_CREAT | O_NOFOLLOW on one: ELOOP, or EACCES in a
       * sticky directory) is removed like any foreign file. */
      int e = errno;
      struct stat st;
      if ((e != ELOOP && e != EACCES) || lstat(path, &st) != 0 || !S_ISLNK(st.st_mode)) return -e;
      if (unlink(path) != 0 && errno != ENOENT) return -errno;
      continue;
    }
    int own = own_file(fd);
    if (own == 1) return fd;
    close(fd);
    if (own < 0) return own;
    if (unlink(path) != 0 && errno != ENOENT) return -errno; /* gone already (ENOENT): create again */
  }
  return -EAGAIN; /* re-created at every attempt: somebody races us */
}

/* 1 if `fd` is the file now at `path` (same inode, still linked), 0 if
 * not, -errno. lstat: the name itself, not what a symlink planted at it
 * leads to (a process of the group may make one while the name is free, to
 * a hard link of its own to our unlinked lock file where
 * fs.protected_hardlinks is off: "at the name" by stat, while the next
 * writer removes the symlink and locks a fresh file -- two writers). */
static int fd_at_path(int fd, const char *path) {
  struct stat mine, now;
  if (fstat(fd, &mine) != 0) return -errno;
  if (lstat(path, &now) != 0) return errno == ENOENT ? 0 : -errno;
  return mine.st_nlink > 0 && S_ISREG(now.st_mode) && mine.st_dev == now.st_dev && mine.st_ino == now.st_ino;
}

/* Writer exclusion: an OFD write lock on byte 0 of <name>.lock (mode 0600).
 * Not on the data file, which readers of the allowed group may open: any of
 * them could hold a read lock there and keep every new writer out.
 * A writer that removes its names (hzshm__shm_close_unlink) unlinks the lock
 * file while it still holds the lock. We may have opened that inode just
 * before the unlink and get its lock just after the old writer closed it: a
 * lock on a file that no longer has the name, which the next writer (who
 * creates a new lock file) would not see: two writers. So the lock only
 * counts if the locked inode is still the one at the name, checked after
 * the lock is ours (nobody following this protocol unlinks it while we hold
 * it); otherwise we drop it and open the name again. */
static int writer_lock(hzshm__shm_t *s, const char *name) {
  char path[HZSHM_SHM_PATH_MAX];
  int rc = hzshm__shm_path(name, 2, path, sizeof path);
  if (rc != 0) return rc;
  for (int attempt = 0; attempt < 8; attempt++) {
    s->lock_fd = open_own(path, 0600);
    if (s->lock_fd < 0) return s->lock_fd;
    if (others_may_open(s->lock_fd)) {
      /* None of ours (they are 0600), e.g. another segment's data file
       * hard-linked here: a reader holding a read lock on it through its
       * own descriptor would keep every writer out. Replaced. */
      close(s->lock_fd);
      s->lock_fd = -1;
      if (unlink(path) != 0 && errno != ENOENT) return -errno;
      continue;
    }
    rc = hzshm__shm_lock_byte(s->lock_fd, F_WRLCK, 0);
    if (rc != 0) return (rc == -EAGAIN || rc == -EACCES) ? HZSHM_EEXIST : rc;
    int here = fd_at_path(s->lock_fd, path);
    if (here != 0) return here < 0 ? here : 0;
    close(s->lock_fd); /* a removed segment's lock: not ours to hold */
    s->lock_fd = -1;
  }
  return HZSHM_EEXIST; /* the name changed under us at every attempt: writers race */
}

/* w_open's data file is not to be used: unlink the name (readers and the
 * owner of that inode keep it) and let the caller retry; HZSHM_EEXIST after
 * the third attempt (somebody keeps racing us). */
static int drop_data_name(hzshm__shm_t *s, const char *path, int attempt) {
  if (attempt > 2) return HZSHM_EEXIST;
  unlink(path);
  close(s->dfd);
  s->dfd = -1;
  return 0;
}

/* w_open's data file, existing: reuse it (1: mapped with its reader file),
 * or not (0: the caller drops the name and retries), or refuse (< 0). */
static int reuse_or_refuse(hzshm__shm_t *s, const char *name, const hzshm__shm_hdr_t *want, hzshm__shm_hdr_t *have,
                           uint64_t fsize, int hdr_rc, int replace_incompatible) {
  int rc = hdr_rc == 0 ? header_check(have, fsize) : hdr_rc;
  if (rc == 0 && !seg_name_is(have, name)) {
    /* Another segment's data file, hard-linked to our name: never ours to
     * reuse (two writers on one file), whatever replace_incompatible says.
     * Unlinking our name leaves that segment its own. */
    return 0;
  }
  if (rc == 0 && memcmp(have, want, offsetof(hzshm__shm_hdr_t, reg_scans)) == 0) {
    /* same layout and geometry: reuse if the reader file is sound too */
    char rpath[HZSHM_SHM_PATH_MAX];
    hzshm__shm_rdhdr_t r;
    uint64_t rsize;
    s->rfd = hzshm__shm_path(name, 1, rpath, sizeof rpath) == 0 ? open(rpath, O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
    /* one_link: a reader file with another name too may be another
     * segment's, hard-linked here (its header cannot tell): not reused. */
    if (s->rfd >= 0 && own_file(s->rfd) == 1 && !others_may_write(s->rfd) && one_link(s->rfd) &&
        read_hdr(s->rfd, &r, sizeof r, &rsize) == 0 && hzshm__shm_rd_check(&r, have, rsize) == 0) {
      rc = map_pair(s, have, &r, PROT_READ | PROT_WRITE);
      return rc != 0 ? rc : 1;
    }
    if (s->rfd >= 0) close(s->rfd);
    s->rfd = -1;
    rc = HZSHM_ECORRUPT;
  }
  /* Another layout, garbage, or a half-created file (magic still 0). */
  if (!replace_incompatible && have->magic == HZSHM__SHM_MAGIC) {
    rc = rc ? rc : HZSHM_EVERSION;
    return (rc == HZSHM_ECORRUPT || rc == HZSHM_ETRUNCATED) ? HZSHM_EVERSION : rc;
  }
  if (!replace_incompatible && have->magic != 0 && fsize >= 8) return HZSHM_EVERSION;
  return 0; /* replace: the caller unlinks the old inode (attached readers keep theirs) */
}

/* Under the writer lock: the data file at `path`, ours. 1 = an existing
 * segment reused (mapped), 0 = a fresh empty file (s->dfd), < 0 = error. */
static int open_data(hzshm__shm_t *s, const char *name, const char *path, const hzshm__shm_hdr_t *want, mode_t mode,
                     int replace_incompatible) {
  for (int attempt = 0;; attempt++) {
    s->dfd = open_own(path, mode); /* a planted file is replaced (see own_file) */
    if (s->dfd < 0) return s->dfd;
    int rc = 0;
    if (!others_may_write(s->dfd)) { /* else an old build's (group-writable) inode: a fresh one instead */
      hzshm__shm_hdr_t have;
      uint64_t fsize;
      int hdr_rc = read_hdr(s->dfd, &have, sizeof have, &fsize);
      if (fsize == 0 && one_link(s->dfd)) return 0; /* fresh; an empty file with another name is another file of ours */
      if (fsize != 0 && (rc = reuse_or_refuse(s, name, want, &have, fsize, hdr_rc, replace_incompatible)) != 0) return rc;
    }
    if ((rc = drop_data_name(s, path, attempt)) != 0) return rc;
  }
}

/* A fresh segment: a fresh hash key (a reused one keeps its own: its
 * entries are hashed with it), the files' contents, empty tables. */
static int create_fresh(hzshm__shm_t *s, hzshm__shm_hdr_t *want, const hzshm__shm_config_t *cfg) {
  int rc = hzshm__shm_random(want->hash_key, sizeof want->hash_key);
  if (rc == 0) rc = create_files(s, want, cfg);
  if (rc != 0) return rc;
  atomic_store_explicit(&s->hdr->epoch, 1, memory_order_relaxed);     /* not yet visible: magic written after */
  atomic_store_explicit(&s->hdr->next_sgen, 1, memory_order_relaxed); /* idem */
  return 0;
}

/* This configuration's access on the pair (a reused pair too: group, group
 * read; neither file was writable by others, others_may_write), and the
 * writer's probe descriptor of the reader file. */
static int set_access(hzshm__shm_t *s, const char *name, const hzshm__shm_config_t *cfg, mode_t mode) {
  if ((cfg->gid_set && fchown(s->dfd, (uid_t)-1, (gid_t)cfg->gid) < 0) || fchmod(s->dfd, mode) < 0 ||
      fchmod(s->rfd, 0600) < 0)
    return -errno;
  char path[HZSHM_SHM_PATH_MAX];
  int rc = hzshm__shm_path(name, 1, path, sizeof path);
  if (rc != 0) return rc;
  s->probe_fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  return s->probe_fd < 0 ? -errno : 0;
}

/* The segment becomes ours: not serving, our pid, the readers of the
 * previous writer examined, the tables rebuilt (reuse) or reset, identity. */
static int take_over(hzshm__shm_t *s, int reuse) {
  int rc = hzshm__shm_w_init_private(s);
  if (rc != 0) return rc;
  s->w->membarrier = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) > 0 &&
                     (syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
  /* A reused segment still says what its dead writer left, SERVING within
   * stale_after_ns of its last heartbeat: readers would hit entries nobody
   * revalidates, and `stat` would call us serving (our pid with its state)
   * before we even listen. So "not serving" first (release: pairs with the
   * acquire loads of hzshm__shm_r_check; ordered before the writer_pid store
   * below, whose release pairs with the acquire load in hzshm__shm_stats, so
   * whoever sees our pid sees this state or a later one); the heartbeat at
   * the end of w_open publishes open_state. */
  atomic_store_explicit(&s->hdr->state, HZSHM_SHM_DISCONNECTED, memory_order_release);
  /* Our pid before the first scan: from now on only our confirmation locks
   * count (release: pairs with the acquire load in hzshm__shm_prd_confirmed;
   * a reader that claims a slot after our scan looked at its file -- the
   * kernel's lock order -- or created its file after our readdir sees it). */
  atomic_store_explicit(&s->hdr->writer_pid, (uint32_t)getpid(), memory_order_release);
  /* Private reader files of live readers (attached to the previous writer):
   * every one examined before anything is freed (shm_private.c, "Restart"). */
  hzshm__shm_prd_scan(s);
  if (reuse) {
    if ((rc = hzshm__shm_w_rebuild(s)) != 0) return rc;
  } else {
    memset((void *)s->slabtab, 0xff, s->slab_count * 8); /* no slab handed out yet: class 0xff */
    hzshm__shm_dir_reset(s);                 /* every directory slot free */
  }
  /* Identity and liveness. Relaxed: these words publish no other data; they
   * are read for fail-closed decisions and `stat` only. */
  atomic_store_explicit(&s->hdr->writer_start, hzshm__shm_proc_start(), memory_order_relaxed);
  atomic_fetch_add_explicit(&s->hdr->writer_gen, 1, memory_order_relaxed);
  if (s->w->membarrier) /* relaxed: readers re-read it per section (rs_enter) */
    atomic_fetch_or_explicit(&s->hdr->flags, HZSHM__F_MEMBARRIER, memory_order_relaxed);
  else /* readers of a previous writer may still run fence-free: switch grace */
    hzshm__shm_mb_disable(s);
  /* Still the writer? Our lock file may have lost its name since
   * writer_lock (the race docs/SHM.md cannot close, writer exclusion): a
   * writer that started meanwhile holds the segment. Then we are none, and
   * publish nothing; checked once more here rather than first at the
   * caller's next look (the agent's tick, after its start-up). */
  int here = hzshm__shm_w_holds_name(s);
  return here == 1 ? 0 : here < 0 ? here : HZSHM_EEXIST;
}

/* Steps: arguments, the writer lock, the data file (reused or fresh), access,
 * take-over, then the first heartbeat publishes open_state. */
int hzshm__shm_w_open(const char *name, const hzshm__shm_config_t *cfg, int replace_incompatible,
                      hzshm__shm_t **out, int *reused) {
  hzshm__shm_hdr_t want;
  char path[HZSHM_SHM_PATH_MAX];
  hzshm__shm_clock_init();
  if (!out || !cfg || cfg->open_state > HZSHM_SHM_STOPPED) return HZSHM_EINVAL;
  *out = NULL;
  if (reused) *reused = 0;
  if (!hzshm__shm_name_ok(name)) return HZSHM_EINVAL;
  int rc = layout_compute(cfg, &want);
  if (rc != 0) return rc;
  seg_name_set(&want, name);
  if ((rc = hzshm__shm_path(name, 0, path, sizeof path)) != 0) return rc;
  mode_t mode = data_mode(cfg);
  hzshm__shm_t *s = handle_new(name);
  if (!s) return -ENOMEM;
  int reuse = 0;
  rc = writer_lock(s, name);
  if (rc == 0) {
    rc = open_data(s, name, path, &want, mode, replace_incompatible);
    reuse = rc == 1;
    if (rc == 1) rc = 0;
    else if (rc == 0) rc = create_fresh(s, &want, cfg);
  }
  if (rc == 0) rc = set_access(s, name, cfg, mode);
  if (rc == 0) rc = take_over(s, reuse);
  if (rc != 0) {
    hzshm__shm_close(s);
    return rc;
  }
  /* Not serving yet if the writer asked: it revalidates a reused segment before readers may hit it. */
  hzshm__shm_w_heartbeat(s, (int)cfg->open_state);
  if (reused) *reused = reuse;
  *out = s;
  return 0;
}

int hzshm__shm_r_replaced(hzshm__shm_t *s) {
  char path[HZSHM_SHM_PATH_MAX];
  struct stat now, ours;
  if (!s || s->forked || s->dfd < 0) return HZSHM_ECLOSED;
  int rc = hzshm__shm_path(s->name, 0, path, sizeof path);
  if (rc != 0) return rc;
  if (stat(path, &now) != 0) return -errno;
  if (fstat(s->dfd, &ours) != 0) return -errno;
  return now.st_dev != ours.st_dev || now.st_ino != ours.st_ino;
}

int hzshm__shm_w_holds_name(hzshm__shm_t *s) {
  if (!s || !s->w || s->lock_fd < 0) return HZSHM_EINVAL;
  char path[HZSHM_SHM_PATH_MAX];
  int rc = hzshm__shm_path(s->name, 2, path, sizeof path);
  return rc != 0 ? rc : fd_at_path(s->lock_fd, path);
}

/* Unlink `path` if it is still the file `fd` (never another's file). */
static void unlink_if_ours(const char *name, int rd, int fd) {
  char path[HZSHM_SHM_PATH_MAX];
  if (fd >= 0 && hzshm__shm_path(name, rd, path, sizeof path) == 0 && fd_at_path(fd, path) == 1) unlink(path);
}

static void close_handle(hzshm__shm_t *s, int unlink_names);

void hzshm__shm_close(hzshm__shm_t *s) { close_handle(s, 0); }

/* A writer that removes its segment (the agent's --unlink-on-exit) unlinks
 * its names while it still holds the writer lock: done after the lock was
 * released, a writer starting in between would take over these very files
 * (or make new ones) and then lose them to our unlink -- its readers could
 * not attach, and the next writer would make a second segment: two writers.
 * The data and reader files go first, the lock file last, so a new writer
 * that got the lock of a new lock file finds no old data file to reuse; one
 * that got the old lock file's lock sees that it lost its name (writer_lock).
 * A writer whose lock file is no longer at the lock name (hzshm__shm_w_holds_name
 * 0: the agent stopping for it) removes nothing. */
void hzshm__shm_close_unlink(hzshm__shm_t *s) { close_handle(s, 1); }

static void close_handle(hzshm__shm_t *s, int unlink_names) {
  if (!s) return;
  reg_del(s);
  if (s->forked) {
    /* A child's copy: the slots and locks are the parent's (fork_child already
     * dropped the descriptors and mappings). Free the child's copies of what
     * the handle owns in this address space. The key first: with it deleted,
     * a thread of the child that still has a value for it (the thread that
     * called fork() and had a slot) runs no destructor on the freed handle. */
    if (s->key_ok) pthread_key_delete(s->key);
    while (s->forked_tslots) {
      hzshm__tslot_t *t = s->forked_tslots;
      s->forked_tslots = t->next;
      free(t);
    }
    s->w = s->forked_w;
    hzshm__shm_prd_close(s); /* frees (the parent's file stays) */
    hzshm__shm_w_free_private(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return;
  }
  if (s->w && s->base != MAP_FAILED) /* readers fail closed at once instead of after stale_after_ns */
    atomic_store_explicit(&s->hdr->state, HZSHM_SHM_STOPPED, memory_order_relaxed); /* see r_check */
  /* Under the writer lock only (see hzshm__shm_close_unlink): once our lock
   * file lost its name, a writer that started since may hold the segment
   * with our very data and reader files (it reused them): not ours to remove. */
  if (unlink_names && s->w && s->lock_fd >= 0 && hzshm__shm_w_holds_name(s) == 1) {
    unlink_if_ours(s->name, 0, s->dfd);
    unlink_if_ours(s->name, 1, s->rfd);
    unlink_if_ours(s->name, 2, s->lock_fd);
  }
  if (s->rbase != MAP_FAILED && s->slots) hzshm__shm_slots_release_all(s);
  if (s->key_ok) pthread_key_delete(s->key);
  hzshm__shm_prd_close(s);
  hzshm__shm_w_free_private(s);
  if (s->base != MAP_FAILED) munmap(s->base, s->size);
  if (s->rbase != MAP_FAILED) munmap(s->rbase, s->rsize);
  if (s->dfd >= 0) close(s->dfd);
  if (s->rfd >= 0) close(s->rfd);
  if (s->probe_fd >= 0) close(s->probe_fd);
  if (s->lock_fd >= 0) close(s->lock_fd); /* last: the writer lock */
  pthread_mutex_destroy(&s->mu);
  free(s);
}

int hzshm__shm_unlink(const char *name) {
  char path[HZSHM_SHM_PATH_MAX];
  int rc = hzshm__shm_path(name, 1, path, sizeof path);
  if (rc != 0) return rc;
  int r1 = unlink(path) < 0 ? -errno : 0;
  if ((rc = hzshm__shm_path(name, 2, path, sizeof path)) != 0) return rc;
  unlink(path); /* the lock file; absent when made by an older build */
  if ((rc = hzshm__shm_path(name, 0, path, sizeof path)) != 0) return rc;
  int r0 = unlink(path) < 0 ? -errno : 0;
  return r0 ? r0 : r1;
}

uint64_t hzshm__shm_min_memory(const hzshm__shm_config_t *cfg) {
  /* layout_compute accepts every budget from its smallest one up (each part
   * it subtracts grows with the budget more slowly than the budget): bisect. */
  hzshm__shm_config_t c = *cfg;
  hzshm__shm_hdr_t h;
  uint64_t lo = 0, hi = 1ull << 40;
  c.memory_bytes = hi;
  if (layout_compute(&c, &h) != 0) return 0;
  while (hi - lo > 4096) {
    uint64_t mid = lo + (hi - lo) / 2;
    c.memory_bytes = mid;
    if (layout_compute(&c, &h) == 0) hi = mid;
    else lo = mid;
  }
  return (hi + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1); /* whole MiB */
}
