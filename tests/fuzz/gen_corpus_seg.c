/* gen_corpus_seg.c - writes fuzz_seg's seed corpus from real segments: for
 * each seed configuration (fuzz_seg.h) the writer API makes a segment with a
 * few sessions (one cleared, one with a TTL, one with a cached absence),
 * entries of several sizes, a stale partition, a socket path and agent
 * counters; a reader attaches and reads so that its slot is in the reader
 * file. Both files are then dumped as records of their non-zero byte runs,
 * in several variants: as they are, with flips between steps and from a
 * thread (at the first entry's length, a bucket word, the session
 * directory), and followed by the writer's reuse path. One more variant
 * has a thread toggle 2 MiB in the value length of s0's "k0": a reader that
 * reads the length twice (check, then copy/view) reads outside the mapping.
 * usage: gen_corpus_seg DIR (uses a private HZSHM_SHM_DIR under /dev/shm) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_seg.h"
#include "shm_int.h" /* hzshm__shm_hash, the layout */

#define DIE(what) do { fprintf(stderr, "gen_corpus_seg: %s\n", what); exit(1); } while (0)

static const char *outdir;
static int nfile;

typedef struct {
  uint8_t *p;
  size_t n, cap;
} out_t;

static void out_put(out_t *o, const void *p, size_t n) {
  if (o->n + n > o->cap) {
    o->cap = (o->n + n) * 2;
    o->p = realloc(o->p, o->cap);
    if (!o->p) DIE("oom");
  }
  memcpy(o->p + o->n, p, n);
  o->n += n;
}
static void out_u8(out_t *o, uint8_t v) { out_put(o, &v, 1); }
static void out_le(out_t *o, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) out_u8(o, (uint8_t)(v >> (8 * i)));
}

static uint8_t *slurp(const char *path, size_t *n) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) DIE(path);
  uint8_t *p = malloc((size_t)st.st_size);
  if (!p || pread(fd, p, (size_t)st.st_size, 0) != st.st_size) DIE("read");
  close(fd);
  *n = (size_t)st.st_size;
  return p;
}

/* Records for the non-zero runs of a file (runs closer than 16 bytes merge). */
static void runs(out_t *o, uint8_t kind, const uint8_t *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    while (i < n && p[i] == 0) i++;
    if (i == n) break;
    size_t j = i, zeros = 0;
    while (j < n && zeros < 16 && j - i < 65535) {
      zeros = p[j] ? 0 : zeros + 1;
      j++;
    }
    size_t len = j - i - zeros;
    out_u8(o, kind);
    out_le(o, i, 3);
    out_le(o, len, 2);
    out_put(o, p + i, len);
    i = j;
  }
}

static void emit(const out_t *o) {
  char path[512];
  snprintf(path, sizeof path, "%s/seed-%02d", outdir, nfile++);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(o->p, 1, o->n, f) != o->n) DIE(path);
  fclose(f);
}

static void flip_rec(out_t *o, uint64_t off, const char *x, size_t n) {
  out_u8(o, SEG_R_FLIP);
  out_le(o, off, 3);
  out_u8(o, (uint8_t)n);
  out_put(o, x, n);
}

static void make(const hzshm__shm_config_t *cfg, uint8_t cfgflag) {
  hzshm__shm_t *w, *r;
  if (hzshm__shm_w_open("fz", cfg, 1, &w, NULL) != 0) DIE("w_open");
  hzshm__shm_w_set_socket(w, "/tmp/hzshm-fuzz-seed.sock");
  for (unsigned i = 0; i < 8; i++) hzshm__shm_w_agent_counter(w, i, 1000 + i);
  hzshm__sref_t ref[4];
  char sid[3] = "s0", key[3] = "k0", val[3000];
  for (size_t i = 0; i < sizeof val; i++) val[i] = (char)('a' + i % 26);
  for (unsigned si = 0; si < 4; si++) {
    sid[1] = (char)('0' + si);
    if (hzshm__shm_w_session(w, sid, 2, &ref[si]) != 0) DIE("w_session");
    for (unsigned k = 0; k < 8; k++) {
      key[1] = (char)('0' + k);
      static const size_t sizes[] = {1, 5, 16, 100, 300, 1000, 3000, 0};
      uint32_t ttl = si == 2 ? 3600000 : 0;
      uint32_t flags = (si == 1 && k == 3) ? HZSHM_SHM_NEGATIVE : 0;
      if (hzshm__shm_w_put(w, &ref[si], key, 2, val, flags ? 0 : sizes[k], k % cfg->partition_count,
                           hzshm__shm_w_stamp(w), ttl, flags) != 0)
        DIE("w_put");
    }
  }
  hzshm__shm_w_put(w, &ref[0], "a-key-of-24-bytes-long..", 24, "v24", 3, 1, hzshm__shm_w_stamp(w), 0, 0);
  hzshm__shm_w_partition_stale(w, 5 % cfg->partition_count); /* k5 of every session reads as a miss */
  hzshm__sref_t cleared;
  hzshm__shm_w_session_drop(w, &ref[3], 1, &cleared); /* s3: cleared, entries hidden */
  hzshm__shm_w_heartbeat(w, HZSHM_SHM_SERVING);
  uint64_t k0hash = hzshm__shm_key_hash(w, "k0", 2, ref[0].gen);
  if (hzshm__shm_r_attach("fz", &r) != 0) DIE("r_attach");
  hzshm__sref_t rr;
  size_t vlen;
  char buf[4096];
  if (hzshm__shm_r_session(r, "s0", 2, &rr) != 0 || hzshm__shm_r_get(r, &rr, "k1", 2, buf, sizeof buf, &vlen) != 0)
    DIE("read back");
  char dpath[HZSHM_SHM_PATH_MAX], rpath[HZSHM_SHM_PATH_MAX];
  hzshm__shm_path("fz", 0, dpath, sizeof dpath);
  hzshm__shm_path("fz", 1, rpath, sizeof rpath);
  size_t dn, rn;
  uint8_t *d = slurp(dpath, &dn), *rd = slurp(rpath, &rn);
  hzshm__shm_close(r);
  hzshm__shm_close(w);
  hzshm__shm_unlink("fz");
  const hzshm__shm_hdr_t *h = (const hzshm__shm_hdr_t *)d;
  /* the first entry in the arena and a non-empty bucket word */
  uint64_t first = h->arena_off, bucket = h->bucket_off;
  while (first < dn && d[first] == 0 && d[first + 8] == 0) first += HZSHM__UNIT;
  while (bucket < h->arena_off && *(const uint64_t *)(d + bucket) == 0) bucket += 8;
  /* the real entry of "k0" in s0: its chain from the bucket */
  uint64_t k0 = 0;
  for (uint64_t wd = *(const uint64_t *)(d + h->bucket_off + (k0hash & (h->bucket_count - 1)) * 8), n = 0;
       HZSHM__B_OFF(wd) && n < 64; n++) {
    const hzshm__shm_entry_t *e = (const hzshm__shm_entry_t *)(d + HZSHM__B_OFF(wd));
    if (e->hash == k0hash) {
      k0 = HZSHM__B_OFF(wd);
      break;
    }
    wd = *(const uint64_t *)(d + HZSHM__B_OFF(wd)); /* next */
  }
  if (!k0) DIE("k0 not found");
  for (int variant = 0; variant < 5; variant++) {
    out_t o = {0};
    static const uint8_t flags[] = {SEG_F_FRESH, SEG_F_FRESH, SEG_F_FRESH | SEG_F_THREAD,
                                    SEG_F_FRESH | SEG_F_WRITER, SEG_F_FRESH | SEG_F_THREAD};
    out_u8(&o, flags[variant] | (variant == 3 ? cfgflag : 0));
    out_le(&o, dn / 4096, 2);
    out_le(&o, rn / 4096, 2);
    runs(&o, SEG_R_DATA, d, dn);
    runs(&o, SEG_R_RD, rd, rn);
    if (variant == 1 || variant == 2) {
      flip_rec(&o, first + offsetof(hzshm__shm_entry_t, vlen) + 2, "\x01", 1);   /* value length +64 KiB */
      flip_rec(&o, first + offsetof(hzshm__shm_entry_t, klen), "\x10", 1);       /* key length */
      flip_rec(&o, bucket, "\x40", 1);                                           /* bucket word: next unit */
      flip_rec(&o, h->dir_off + offsetof(hzshm__shm_dirent_t, gen), "\x01", 1); /* session generation */
      flip_rec(&o, first + offsetof(hzshm__shm_entry_t, next) + 1, "\x40", 1);  /* chain link */
    }
    if (variant == 4) /* value length +2 MiB, toggled by a thread: past the mapping */
      flip_rec(&o, k0 + offsetof(hzshm__shm_entry_t, vlen) + 2, "\x20", 1);
    if (variant == 0) {
      out_u8(&o, SEG_R_SESSION), out_u8(&o, 2), out_put(&o, "s9", 2);
      out_u8(&o, SEG_R_KEY), out_u8(&o, 3), out_put(&o, "k10", 3);
      out_u8(&o, SEG_R_REF), out_le(&o, rr.idx, 4), out_le(&o, rr.gen, 8);
    }
    emit(&o);
    free(o.p);
  }
  free(d);
  free(rd);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  outdir = argv[1];
  char shmdir[] = "/dev/shm/hzshm-fuzz-gen.XXXXXX";
  if (!mkdtemp(shmdir)) DIE("mkdtemp");
  setenv("HZSHM_SHM_DIR", shmdir, 1);
  hzshm__shm_config_t a = SEG_CFG_A, b = SEG_CFG_B;
  make(&a, 0);
  make(&b, SEG_F_CFG_B);
  rmdir(shmdir);
  printf("%d seeds in %s\n", nfile, outdir);
  return 0;
}
