/* fuzz_seg.c - libFuzzer target over segment files as the library finds
 * them on attach: truncated, stale from an older layout, planted, or changed
 * while mapped. The input (format: fuzz_seg.h) becomes the two files of a
 * segment in a private HZSHM_SHM_DIR; the reader attaches
 * (hzshm__shm_r_attach) and runs what libhzshm runs on it: stats, the
 * fail-closed check, the socket path, agent counters, session resolution and
 * get/has/view over the seed's sessions and keys (and the input's), with
 * forged references too. In flip mode bytes of the mapped data file change
 * under the reader, between steps or from a second thread during the walks.
 * Optionally the writer then opens the same file (its reuse path).
 *
 * Oracles besides ASan/UBSan: results within the documented codes, a hit's
 * length within the buffer, and no read outside the mapping: this binary
 * wraps mmap (-Wl,--wrap=mmap,--wrap=munmap) so that every file mapping the
 * segment code makes of less than 2 MiB lies between two PROT_NONE pages.
 * Unbounded loops show up as libFuzzer timeouts (-timeout). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_seg.h"
#include "fuzz_tmp.h"
#include "ipc.h" /* little-endian helpers */
#include "shm_int.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "CHECK failed: %s\n", #c); abort(); } } while (0)

/* ---- guard pages around the segment code's file mappings ---- */
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
#define GUARD 4096u
static struct {
  uint8_t *p;
  size_t len;
} guarded[8];

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  if (addr != NULL || fd < 0 || (flags & MAP_FIXED) || len == 0) return __real_mmap(addr, len, prot, flags, fd, off);
  size_t plen = (len + GUARD - 1) & ~(size_t)(GUARD - 1);
  uint8_t *r = __real_mmap(NULL, plen + 2 * GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return r;
  void *p = __real_mmap(r + GUARD, len, prot, flags | MAP_FIXED, fd, off);
  if (p == MAP_FAILED) {
    int e = errno;
    __real_munmap(r, plen + 2 * GUARD);
    errno = e;
    return MAP_FAILED;
  }
  for (size_t i = 0; i < sizeof guarded / sizeof *guarded; i++)
    if (guarded[i].p == NULL) {
      guarded[i].p = p;
      guarded[i].len = plen;
      return p;
    }
  abort(); /* more live mappings than this harness makes */
}

int __wrap_munmap(void *addr, size_t len) {
  for (size_t i = 0; i < sizeof guarded / sizeof *guarded; i++)
    if (guarded[i].p == addr) {
      int rc = __real_munmap(guarded[i].p - GUARD, guarded[i].len + 2 * GUARD);
      guarded[i].p = NULL;
      return rc;
    }
  return __real_munmap(addr, len);
}

/* ---- input ---- */
typedef struct {
  const uint8_t *p;
  size_t n;
} span_t;

typedef struct {
  uint8_t flags;
  uint64_t dsize, rsize;
  span_t flips[64];
  uint32_t flip_off[64];
  unsigned nflips;
  span_t names[8], keys[8];
  unsigned nnames, nkeys;
  hzshm__sref_t refs[4];
  unsigned nrefs;
} input_t;

static char dir[64], dpath[128], rpath[128];
static int dfd = -1, rfd = -1; /* the two files, written by build() */

static uint32_t le24(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16); }

/* The files are written through our own shared mappings of them (one
 * syscall per file rather than one per record). The data file's mapping
 * (SEG_MAX_PAGES long, touched only below the file's size) is kept between
 * inputs, and so are its pages: instead of truncating the file, the ranges
 * the last input wrote are zeroed again, unless something else wrote it
 * (flips, the writer: `data_dirty`). */
static uint8_t *dmap, *rmap;
static struct {
  uint32_t off, n;
} wrote[8192];
static size_t nwrote;
static int data_dirty = 1;

static void data_reset(uint64_t size) {
  if (data_dirty || nwrote == sizeof wrote / sizeof *wrote) {
    CHECK(ftruncate(dfd, 0) == 0);
  } else {
    for (size_t i = 0; i < nwrote; i++) memset(dmap + wrote[i].off, 0, wrote[i].n); /* below the old size */
  }
  nwrote = 0;
  data_dirty = 0;
  CHECK(ftruncate(dfd, (off_t)size) == 0);
}

static uint8_t *map_rw(int fd, uint64_t size) {
  if (size == 0) return NULL;
  uint8_t *p = __real_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  CHECK(p != MAP_FAILED);
  return p;
}

static void put(uint8_t *map, uint64_t fsize, uint32_t off, const uint8_t *p, size_t n) {
  if (off >= fsize) return;
  if (n > fsize - off) n = (size_t)(fsize - off);
  memcpy(map + off, p, n);
  if (map == dmap && nwrote < sizeof wrote / sizeof *wrote) wrote[nwrote++] = (typeof(wrote[0])){off, (uint32_t)n};
}

/* Writes the files; collects flips, names, keys and refs. 0 if usable. */
static int build(const uint8_t *d, size_t size, input_t *in) {
  if (size < 5) return -1;
  memset(in, 0, sizeof *in);
  in->flags = d[0];
  uint32_t dp = hzshm__le16_get(d + 1), rp = hzshm__le16_get(d + 3);
  in->dsize = (uint64_t)(dp < SEG_MAX_PAGES ? dp : SEG_MAX_PAGES) * 4096;
  in->rsize = (uint64_t)(rp < SEG_MAX_PAGES ? rp : SEG_MAX_PAGES) * 4096;
  if (dfd < 0) { /* kept open between inputs (reopened after the writer ran: it may replace files) */
    dfd = open(dpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    rfd = open(rpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    CHECK(dfd >= 0 && rfd >= 0);
    dmap = map_rw(dfd, (uint64_t)SEG_MAX_PAGES * 4096);
    data_dirty = 1;
  }
  data_reset(in->dsize);
  CHECK(ftruncate(rfd, 0) == 0 && ftruncate(rfd, (off_t)in->rsize) == 0);
  rmap = map_rw(rfd, in->rsize);
  size_t i = 5;
  while (i < size) {
    uint8_t kind = d[i++] % SEG_R_KINDS;
    if (kind == SEG_R_DATA || kind == SEG_R_RD) {
      if (size - i < 5) break;
      uint32_t off = le24(d + i);
      size_t n = hzshm__le16_get(d + i + 3);
      i += 5;
      if (n > size - i) n = size - i;
      put(kind == SEG_R_DATA ? dmap : rmap, kind == SEG_R_DATA ? in->dsize : in->rsize, off, d + i, n);
      i += n;
    } else if (kind == SEG_R_FLIP) {
      if (size - i < 4) break;
      uint32_t off = le24(d + i);
      size_t n = d[i + 3];
      i += 4;
      if (n > size - i) n = size - i;
      if (in->nflips < 64 && off < in->dsize) {
        if (n > in->dsize - off) n = (size_t)(in->dsize - off);
        in->flip_off[in->nflips] = off;
        in->flips[in->nflips++] = (span_t){d + i, n};
      }
      i += n;
    } else if (kind == SEG_R_SESSION || kind == SEG_R_KEY) {
      if (size - i < 1) break;
      size_t n = d[i++];
      if (n > size - i) n = size - i;
      if (kind == SEG_R_SESSION && in->nnames < 8) in->names[in->nnames++] = (span_t){d + i, n};
      if (kind == SEG_R_KEY && in->nkeys < 8) in->keys[in->nkeys++] = (span_t){d + i, n};
      i += n;
    } else {
      if (size - i < 12) break;
      if (in->nrefs < 4) {
        in->refs[in->nrefs].idx = hzshm__le32_get(d + i);
        in->refs[in->nrefs++].gen = hzshm__le64_get(d + i + 4);
      }
      i += 12;
    }
  }
  if (in->dsize >= sizeof(hzshm__shm_hdr_t)) {
    hzshm__shm_hdr_t h;
    memcpy(&h, dmap, sizeof h);
    if (in->flags & SEG_F_FIXGEOM) /* as shm_open.c's geom_hash */
      h.geom_check = hzshm__shm_fold(&h, offsetof(hzshm__shm_hdr_t, geom_check), 0x67656f6dull);
    if (in->flags & SEG_F_FRESH) {
      atomic_store_explicit(&h.heartbeat_ns, hzshm__shm_now_coarse(), memory_order_relaxed);
      atomic_store_explicit(&h.state, HZSHM_SHM_SERVING, memory_order_relaxed);
    }
    put(dmap, in->dsize, 0, (const uint8_t *)&h, sizeof h);
  }
  if (rmap) __real_munmap(rmap, in->rsize);
  rmap = NULL; /* dmap stays: the flips use it */
  return 0;
}

static void files_close(void) {
  if (dmap) __real_munmap(dmap, (uint64_t)SEG_MAX_PAGES * 4096);
  dmap = NULL;
  if (dfd >= 0) close(dfd);
  if (rfd >= 0) close(rfd);
  dfd = rfd = -1;
}

/* ---- flips ---- */
typedef struct {
  const input_t *in;
  uint8_t *map; /* our own read-write mapping of the data file */
  atomic_int stop;
} flipper_t;

static void flip(uint8_t *map, const input_t *in, unsigned k) {
  for (size_t j = 0; j < in->flips[k].n; j++) {
    volatile uint8_t *b = map + in->flip_off[k] + j;
    *b ^= in->flips[k].p[j] ? in->flips[k].p[j] : 0xff;
  }
}

static void *flip_thread(void *arg) {
  flipper_t *f = arg;
  /* relaxed: a stop request; nothing is published through it */
  for (unsigned round = 0; !atomic_load_explicit(&f->stop, memory_order_relaxed) && round < 20000; round++)
    flip(f->map, f->in, round % f->in->nflips);
  return NULL;
}

/* ---- reads ---- */
static int read_code(int rc) {
  return rc == 0 || rc == HZSHM_EBUFSIZE || rc == HZSHM_ENOTFOUND || rc == HZSHM_EMISS || rc == HZSHM_ESESSION ||
         rc == HZSHM_ESTALE || rc == HZSHM_EDISCONNECTED || rc == HZSHM_ESTOPPED || rc == HZSHM_EBUSY ||
         rc == HZSHM_EBADSESSION || rc == HZSHM_EEMPTY || rc == HZSHM_ETOOBIG;
}

static void lookups(hzshm__shm_t *s, const hzshm__sref_t *ref, const input_t *in) {
  static const char *const keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "a-key-of-24-bytes-long.."};
  static uint8_t big[1u << 16];
  uint8_t small[4];
  for (unsigned k = 0; k < 9 + in->nkeys; k++) {
    const void *key = k < 9 ? (const void *)keys[k] : (const void *)in->keys[k - 9].p;
    size_t klen = k < 9 ? strlen(keys[k]) : in->keys[k - 9].n;
    size_t vlen = SIZE_MAX;
    int rc = hzshm__shm_r_get(s, ref, key, klen, big, sizeof big, &vlen);
    CHECK(read_code(rc));
    if (rc == 0) CHECK(vlen <= sizeof big);
    rc = hzshm__shm_r_get(s, ref, key, klen, small, sizeof small, &vlen);
    CHECK(read_code(rc));
    if (rc == 0) CHECK(vlen <= sizeof small);
    CHECK(read_code(hzshm__shm_r_get(s, ref, key, klen, NULL, 0, &vlen)));
    const void *view;
    rc = hzshm__shm_r_view(s, ref, key, klen, &view, &vlen);
    CHECK(read_code(rc));
    if (rc == 0) {
      volatile uint8_t sink = 0;
      for (size_t j = 0; j < vlen; j += 64) sink ^= ((const uint8_t *)view)[j]; /* the view must be readable */
      if (vlen) sink ^= ((const uint8_t *)view)[vlen - 1];
      (void)sink;
      hzshm__shm_r_view_end(s);
    }
  }
}

static void reads(hzshm__shm_t *s, const input_t *in, uint8_t *map) {
  static const char *const sids[] = {"s0", "s1", "s2", "s3"};
  unsigned step = 0;
  hzshm__shm_stats_t st;
  char sock[HZSHM__SOCKET_MAX];
  CHECK(hzshm__shm_stats(s, &st) == 0);
  int rc = hzshm__shm_r_check(s);
  CHECK(rc == 0 || rc == HZSHM_ESTALE || rc == HZSHM_EDISCONNECTED || rc == HZSHM_ESTOPPED);
  rc = hzshm__shm_socket(s, sock, sizeof sock);
  CHECK(rc == 0 || rc == HZSHM_EMISS || rc == HZSHM_EBUSY);
  if (rc == 0) CHECK(strlen(sock) < sizeof sock);
  for (unsigned i = 0; i < HZSHM_SHM_AGENT_COUNTERS; i++) (void)hzshm__shm_agent_counter(s, i);
  for (unsigned i = 0; i < 4 + in->nnames; i++) {
    if (map && !(in->flags & SEG_F_THREAD) && step < in->nflips) flip(map, in, step++);
    const char *sid = i < 4 ? sids[i] : (const char *)in->names[i - 4].p;
    size_t len = i < 4 ? 2 : in->names[i - 4].n;
    hzshm__sref_t ref;
    rc = hzshm__shm_r_session(s, sid, len, &ref);
    CHECK(rc == 0 || rc == HZSHM_EMISS || rc == HZSHM_EEMPTY || rc == HZSHM_ETOOBIG || rc == HZSHM_EBUSY);
    if (rc != 0) continue;
    CHECK(ref.idx < s->dir_count && ref.gen != 0);
    if (map && !(in->flags & SEG_F_THREAD) && step < in->nflips) flip(map, in, step++);
    lookups(s, &ref, in);
  }
  for (unsigned i = 0; i < in->nrefs; i++) lookups(s, &in->refs[i], in);
  hzshm__shm_r_count_miss(s);
  CHECK(hzshm__shm_stats(s, &st) == 0);
}

static void writer(const input_t *in) {
  hzshm__shm_config_t a = SEG_CFG_A, b = SEG_CFG_B;
  hzshm__shm_t *w;
  int reused = 0;
  int rc = hzshm__shm_w_open("fz", (in->flags & SEG_F_CFG_B) ? &b : &a, 0, &w, &reused);
  if (rc != 0) return;
  hzshm__sref_t ref;
  if (hzshm__shm_w_session(w, "s0", 2, &ref) == 0) {
    (void)hzshm__shm_w_put(w, &ref, "k9", 2, "v", 1, 0, hzshm__shm_w_stamp(w), 0, 0);
    (void)hzshm__shm_w_del(w, &ref, "k0", 2);
  }
  hzshm__shm_w_maintain(w);
  hzshm__shm_stats_t st;
  CHECK(hzshm__shm_stats(w, &st) == 0);
  hzshm__shm_close(w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  CHECK(fuzz_tmp_make("/dev/shm", "hzshm-fuzz-seg", dir, sizeof dir) == 0);
  setenv("HZSHM_SHM_DIR", dir, 1);
  CHECK(hzshm__shm_path("fz", 0, dpath, sizeof dpath) == 0 && hzshm__shm_path("fz", 1, rpath, sizeof rpath) == 0);
  return 0;
}

static void cleanup(void) __attribute__((destructor));
static void cleanup(void) {
  if (!dir[0]) return;
  files_close();
  fuzz_tmp_remove(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in;
  if (build(data, size, &in) != 0) return 0;
  hzshm__shm_t *s = NULL;
  int rc = hzshm__shm_r_attach("fz", &s);
  /* HZSHM_EUNTRUSTED: the header names another segment (hdr.seg_name) */
  CHECK(rc == 0 || rc == HZSHM_ECORRUPT || rc == HZSHM_EVERSION || rc == HZSHM_ETRUNCATED || rc == -ENOMEM ||
        rc == -EINVAL || rc == HZSHM_EUNTRUSTED);
  if (rc == 0) {
    uint8_t *map = NULL;
    flipper_t f = {.in = &in};
    pthread_t t;
    int threaded = 0;
    if (in.nflips) {
      map = dmap;
      f.map = map;
      data_dirty = 1; /* flipped bytes are not in `wrote` */
      if (in.flags & SEG_F_THREAD) threaded = pthread_create(&t, NULL, flip_thread, &f) == 0;
    }
    for (int rep = 0; rep < (threaded ? 4 : 1); rep++) reads(s, &in, map); /* races need chances */
    if (threaded) {
      atomic_store_explicit(&f.stop, 1, memory_order_relaxed); /* see flip_thread */
      pthread_join(t, NULL);
    }
    hzshm__shm_close(s);
  }
  if (in.flags & SEG_F_WRITER) {
    files_close();
    writer(&in);
  }
  return 0;
}
