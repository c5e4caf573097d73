/* shm_int.h - private to shm/: the process-local handle, the writer's
 * private state, and the helpers shared by the shm_*.c files.
 *
 * The handle keeps its own copy of the segment geometry, validated once at
 * attach (shm_open.c). The hit path uses only these private copies, never a
 * size or offset re-read from shared memory, so a writer scribbling on the
 * header cannot make a reader index outside its mapping.
 */
#ifndef HZSHM_SHM_INT_H
#define HZSHM_SHM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "shm.h"
#include "shm_layout.h"

/* One writer-private record per 64-byte arena unit (used at a chunk's first
 * unit only): SIEVE queue links, free-list link, owning session slot. Unit
 * indexes are stored +1 so that 0 means "none". */
typedef struct {
  uint32_t prev, next; /* SIEVE queue (towards head = newer / towards tail = older) or free list (next) */
  uint32_t sidx;       /* directory slot of the entry's session */
  uint8_t cls;         /* size class */
  uint8_t state;       /* HZSHM__U_* */
  uint16_t pad;
} hzshm__wunit_t;
enum { HZSHM__U_FREE = 0, HZSHM__U_LIVE = 1, HZSHM__U_RETIRED = 2 };

/* Size classes (shm_alloc.c): 64..512 by 64, then 4 steps per power of two up
 * to the segment's slab size: 36 classes with 64 KiB slabs, HZSHM__NCLASS
 * (the compile-time maximum) with 2 MiB slabs. A class index is stored in a
 * byte of the slab table, 0xff = unused slab. */
#define HZSHM__NCLASS (8 + 4 * (HZSHM__SLAB_SHIFT_MAX - 9))
_Static_assert(HZSHM__NCLASS == 56 && HZSHM__NCLASS < 0xff, "size class count");
typedef struct {
  uint32_t head, tail, hand; /* SIEVE queue, unit index + 1 */
  uint32_t free;             /* free chunks, unit index + 1 */
  uint64_t live;
} hzshm__wclass_t;

typedef struct {
  uint64_t off;   /* entry offset, or dir slot for kind 1 */
  uint64_t epoch; /* global epoch current when it was unlinked */
  uint32_t kind;  /* 0 = arena chunk, 1 = directory slot */
} hzshm__retired_t;

typedef struct {
  hzshm__wunit_t *units;
  hzshm__wclass_t cls[HZSHM__NCLASS];
  uint64_t slab_next;          /* first never-used slab */
  uint64_t drain_slab;         /* slab being moved to another class, UINT64_MAX = none */
  uint64_t drain_left;         /* its chunks not yet free */
  uint64_t steal_cursor;       /* round robin over slabs for the next steal */
  int drain_cls;               /* class it goes to */
  hzshm__retired_t *ret;
  size_t nret, capret;
  uint64_t ret_epoch;          /* epoch of the latest retirement */
  uint32_t *dirfree;           /* free directory slots (stack) */
  uint32_t ndirfree;
  uint8_t *dirretired;         /* 1 = directory slot on the retire list (not free, not live) */
  uint64_t *dirent_entries;    /* entries cached per directory slot, current generation */
  uint64_t sweep_cursor;       /* next bucket w_maintain sweeps */
  int poison;                  /* fill freed chunks with 0xdb (tests) */
  int membarrier;              /* membarrier(GLOBAL_EXPEDITED) works */
  uint64_t mb_off_ns;          /* coarse time the membarrier flag was cleared under readers (0 = never) */
} hzshm__w_t;

/* A reader slot claimed by one thread of this process for this handle. */
typedef struct hzshm__tslot {
  hzshm__shm_t *s;
  uint32_t idx;
  struct hzshm__tslot *next;   /* list of this handle's claimed slots (under s->mu) */
} hzshm__tslot_t;

struct hzshm__shm {
  uint64_t id;                 /* unique per handle in this process (TLS cache key) */
  char name[HZSHM_SHM_NAME_MAX + 1];
  int dfd, rfd, probe_fd;      /* data file, reader file (slot locks), writer's liveness probe fd */
  uint8_t *base;               /* data mapping */
  uint64_t size;
  uint8_t *rbase;              /* reader file mapping */
  uint64_t rsize;
  hzshm__shm_hdr_t *hdr;
  hzshm__shm_slot_t *slots;
  /* validated private copies of the geometry */
  _Atomic uint64_t *buckets;
  uint64_t bucket_mask;
  uint64_t arena_off, arena_end;
  hzshm__shm_part_t *parts;
  uint32_t part_count;
  hzshm__shm_dirent_t *dir;
  uint32_t dir_count;
  _Atomic uint32_t *dirix;
  uint32_t dirix_mask;
  _Atomic uint64_t *slabtab;   /* HZSHM__SLAB_MAKE(gen, class) per slab */
  uint64_t slab_count;
  uint32_t slab_shift;         /* slab size = 1 << slab_shift (validated at attach) */
  int nclass;                  /* size classes of this segment, <= HZSHM__NCLASS */
  uint64_t class_size[HZSHM__NCLASS];
  uint64_t class_magic[HZSHM__NCLASS]; /* divisibility test by class_size / 64 (hzshm__shm_chunk_start) */
  _Atomic uint64_t *bitmap;
  uint64_t nunits;
  uint32_t nslots;
  uint64_t stale_after_ns;
  uint64_t hkey[2];            /* the segment's hash key (private copy, from the validated header) */
  int fence_mode;              /* 1 = seq_cst fence on the read side, 0 = compiler barrier (writer membarriers) */
  /* reader slot bookkeeping */
  pthread_key_t key;
  int key_ok;
  pthread_mutex_t mu;
  hzshm__tslot_t *tslots;
  _Atomic uint64_t claim_fail_frees; /* the process's slot release count when a claim last failed */
  _Atomic uint64_t claim_retry_ns;   /* no new claim before this (coarse clock) unless a slot was freed */
  _Atomic uint64_t slot_busy;        /* lookups refused for want of a slot (statistic) */
  _Atomic uint64_t claim_failures;   /* full slot scans that found none (statistic) */
  /* writer only */
  hzshm__w_t *w;
  /* fork handling (shm_open.c): the list of live handles of this process */
  int lock_fd;                 /* writer: the lock file (writer exclusion) */
  /* private reader files (shm_private.c) */
  char *prd_path;              /* reader: our private reader file, NULL = the shared one */
  uint64_t prd_need;           /* reader: slots usable once hdr.reg_scans >= this */
  struct hzshm__prd *prd;      /* writer: the private files it follows */
  uint32_t nprd, capprd;
  uint64_t reg_scans_local;    /* writer: scans done by this handle */
  _Atomic int prd_complete;    /* writer: one complete scan done since w_open (nothing is freed before: shm_private.c) */
  _Atomic uint64_t prd_incomplete; /* writer: scans that could not examine every file (statistic) */
  struct timespec prd_mtim;    /* writer: the directory's mtime before the last full scan */
  int prd_mtim_settled;        /* writer: that mtime was >= 100 ms old then (no same-tick create missed) */
  uint64_t prd_full_ns;        /* writer: coarse clock of the last full scan */
  _Atomic uint64_t prd_refused;    /* writer: live reader files not followed (caps; statistic) */
  uint8_t *prd_buf;            /* writer: one file's slot array, read by pread */
  int forked;                  /* 1 in a child of fork(): every call returns HZSHM_ECLOSED */
  hzshm__w_t *forked_w;        /* in a child: the inherited copies, freed by close */
  hzshm__tslot_t *forked_tslots;
  struct hzshm__shm *reg_next, **reg_pprev;
};

/* ---- helpers ---- */
/* SipHash (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012),
 * written here from the paper's description: four 64-bit words initialised
 * from the 128-bit key, each 8-byte little-endian message word m absorbed as
 * v3 ^= m, c SipRounds, v0 ^= m; the last word carries the remaining bytes
 * and the message length mod 256 in its top byte; then v2 ^= 0xff, d
 * SipRounds, and the xor of the four words. The message here is the 8-byte
 * prefix word followed by the data. c = 1, d = 3 is SipHash-1-3 (the key
 * hash); the test checks c = 2, d = 4 against the paper's test vectors and
 * SipHash-1-3 against a byte-at-a-time reference of every length 0..64.
 * Word loads only (hzshm__shm_sip_tail): no byte loop on the hit path. */
static inline uint64_t hzshm__rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
#define HZSHM__SIPROUND(v0, v1, v2, v3) \
  do {                           \
    v0 += v1;                    \
    v1 = hzshm__rotl(v1, 13);           \
    v1 ^= v0;                    \
    v0 = hzshm__rotl(v0, 32);           \
    v2 += v3;                    \
    v3 = hzshm__rotl(v3, 16);           \
    v3 ^= v2;                    \
    v0 += v3;                    \
    v3 = hzshm__rotl(v3, 21);           \
    v3 ^= v0;                    \
    v2 += v1;                    \
    v1 = hzshm__rotl(v1, 17);           \
    v1 ^= v2;                    \
    v2 = hzshm__rotl(v2, 32);           \
  } while (0)

/* The message's last 0..7 bytes (p[0..n), n = len % 8) as a little-endian
 * word, with word loads only: if the data has 8 bytes or more, the 8 bytes
 * ending at its end shifted down (the bytes before the tail are data too, so
 * the load stays inside it); otherwise 4-, 2- and 1-byte pieces. */
static inline __attribute__((always_inline)) uint64_t hzshm__shm_sip_tail(const uint8_t *data, size_t len) {
  size_t n = len & 7;
  uint64_t t = 0;
  if (len >= 8) {
    memcpy(&t, data + len - 8, 8);
    return (t >> 1) >> (63 - 8 * n); /* two shifts: n = 0 shifts by 64 in all, giving 0 */
  }
  size_t at = 0;
  if (n & 4) {
    uint32_t x;
    memcpy(&x, data, 4);
    t = x;
    at = 4;
  }
  if (n & 2) {
    uint16_t x;
    memcpy(&x, data + at, 2);
    t |= (uint64_t)x << (8 * at);
    at += 2;
  }
  if (n & 1) t |= (uint64_t)data[at] << (8 * at);
  return t;
}

static inline __attribute__((always_inline)) uint64_t hzshm__shm_sip(const uint64_t k[2], uint64_t prefix,
                                                                     const void *data, size_t len, int c, int d) {
  uint64_t v0 = k[0] ^ 0x736f6d6570736575ull, v1 = k[1] ^ 0x646f72616e646f6dull;
  uint64_t v2 = k[0] ^ 0x6c7967656e657261ull, v3 = k[1] ^ 0x7465646279746573ull;
  const uint8_t *p = data;
#define HZSHM__SIP_ABSORB(m)                                        \
  do {                                                              \
    uint64_t m_ = (m);                                              \
    v3 ^= m_;                                                       \
    for (int i_ = 0; i_ < c; i_++) HZSHM__SIPROUND(v0, v1, v2, v3); \
    v0 ^= m_;                                                       \
  } while (0)
  HZSHM__SIP_ABSORB(prefix);
  /* Keys of up to 23 bytes (the common ones) take no loop: one or two words
   * absorbed straight, then the tail; longer data loops over the rest. */
  size_t nw = len / 8;
  uint64_t m;
  if (nw >= 1) {
    memcpy(&m, p, 8);
    HZSHM__SIP_ABSORB(m);
  }
  if (nw >= 2) {
    memcpy(&m, p + 8, 8);
    HZSHM__SIP_ABSORB(m);
  }
  for (size_t w = 2; w < nw; w++) {
    memcpy(&m, p + 8 * w, 8);
    HZSHM__SIP_ABSORB(m);
  }
  HZSHM__SIP_ABSORB(((uint64_t)((len + 8) & 0xff) << 56) | hzshm__shm_sip_tail(p, len));
#undef HZSHM__SIP_ABSORB
  v2 ^= 0xff;
  for (int i = 0; i < d; i++) HZSHM__SIPROUND(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

/* SipHash-1-3, as the key hash computes it. 16 bytes (UUIDs, the
 * benchmarks' keys) and 8 (longs) get their own copy with the length a
 * constant: no tail and no branch on the length (150 instead of 170
 * instructions for 16 bytes, callgrind); the same function, so the same
 * output (hzshm__shm_sip13 below is this, which the test vectors check). */
static inline __attribute__((always_inline)) uint64_t hzshm__shm_sip13_inline(const uint64_t k[2], uint64_t prefix,
                                                                              const void *data, size_t len) {
  if (len == 16) return hzshm__shm_sip(k, prefix, data, 16, 1, 3);
  if (len == 8) return hzshm__shm_sip(k, prefix, data, 8, 1, 3);
  return hzshm__shm_sip(k, prefix, data, len, 1, 3);
}

uint64_t hzshm__shm_fold(const void *data, size_t len, uint64_t seed); /* unkeyed: fingerprints only */
uint64_t hzshm__shm_sip13(const uint64_t k[2], uint64_t prefix, const void *data, size_t len);
uint64_t hzshm__shm_sip24(const uint64_t k[2], uint64_t prefix, const void *data, size_t len); /* test vector */
int hzshm__shm_random(void *buf, size_t len); /* getrandom(); 0 or -errno */
uint64_t hzshm__shm_layout_fingerprint(void);
uint64_t hzshm__shm_now_coarse(void); /* = hzshm__shm_clock_coarse(), out of line */
/* This process's CLOCK_MONOTONIC offset from the initial time namespace's
 * (its time namespace's, 0 outside one): set by hzshm__shm_clock_init at
 * every open and attach, before the handle exists (a child forked into
 * another time namespace re-attaches and so re-reads it). */
extern _Atomic int64_t hzshm__shm_clock_off_ns;
void hzshm__shm_clock_init(void);
/* CLOCK_MONOTONIC_COARSE in ns on the initial time namespace's scale (the
 * namespace's offset taken off): a vDSO read of the jiffy clock (no
 * syscall), the one clock of the hit path, the heartbeat and expiries, so
 * it means the same in every process of the segment whatever its time
 * namespace. Inline: every hit reads it. */
static inline uint64_t hzshm__shm_clock_coarse(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  /* relaxed: written before any handle of this process exists (open/attach),
   * the same value by every writer */
  int64_t off = atomic_load_explicit(&hzshm__shm_clock_off_ns, memory_order_relaxed);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec - (uint64_t)off;
}
uint64_t hzshm__shm_proc_start(void);
int hzshm__shm_name_ok(const char *name);
/* F_OFD_SETLK of type (F_WRLCK, F_RDLCK, F_UNLCK) on byte `at` of fd, not
 * waiting: 0 or -errno (-EAGAIN: another open file description holds it). */
int hzshm__shm_lock_byte(int fd, short type, off_t at);

/* shm_trust.c: the reader's trust anchor (see its head). */
int hzshm__shm_fd_trusted(int fd, uid_t agent, uid_t *owner); /* 0: a regular file of a trusted uid, writable by its owner
                                                    only (*owner); HZSHM_EUNTRUSTED, HZSHM_EINVAL, -errno */

/* shm_slots.c */
hzshm__shm_slot_t *hzshm__shm_slot_get_slow(hzshm__shm_t *s); /* first use by a thread: claim */
void hzshm__shm_slots_release_all(hzshm__shm_t *s);
void hzshm__shm_tslot_dtor(void *tslot);
int hzshm__shm_slot_probe(hzshm__shm_t *s, uint32_t idx); /* 1 = owner alive, 0 = dead/free, <0 err */
uint32_t hzshm__shm_reap(hzshm__shm_t *s);                 /* dead slots reclaimed now */
uint64_t hzshm__shm_min_epoch(hzshm__shm_t *s); /* oldest epoch a live reader may still be in; UINT64_MAX if none */
void hzshm__shm_mb_disable(hzshm__shm_t *s);    /* writer: stop announcing membarrier (readers fence) */

/* shm_open.c */
void hzshm__shm_rdhdr_make(const hzshm__shm_hdr_t *h, hzshm__shm_rdhdr_t *r);
int hzshm__shm_rd_check(const hzshm__shm_rdhdr_t *r, const hzshm__shm_hdr_t *h, uint64_t fsize);

/* shm_private.c: private reader files of readers of another uid */
int hzshm__shm_prd_create(hzshm__shm_t *s, const hzshm__shm_hdr_t *h, hzshm__shm_rdhdr_t *r); /* reader: sets s->rfd */
void hzshm__shm_prd_attached(hzshm__shm_t *s);  /* reader, after mapping: when its slots become usable */
int hzshm__shm_prd_confirmed(hzshm__shm_t *s);  /* reader, under mu: 1 once the writer follows our file */
void hzshm__shm_prd_scan(hzshm__shm_t *s);      /* writer: follow new files, drop dead ones, reg_scans + 1 */
uint64_t hzshm__shm_prd_min(hzshm__shm_t *s, uint64_t min); /* writer: min with the live private slots */
void hzshm__shm_prd_close(hzshm__shm_t *s);
uint32_t hzshm__shm_prd_followed(const hzshm__shm_t *s); /* writer: live private files followed now */

/* shm_alloc.c (writer) */
int hzshm__shm_w_init_private(hzshm__shm_t *s);
void hzshm__shm_w_free_private(hzshm__shm_t *s);
void hzshm__shm_classes_init(hzshm__shm_t *s);         /* from s->slab_shift; at open/attach */
int hzshm__shm_class_of(hzshm__shm_t *s, uint64_t size); /* -1: larger than this segment's largest class */
int hzshm__shm_alloc(hzshm__shm_t *s, int cls, uint64_t *off);
void hzshm__shm_sieve_push(hzshm__shm_t *s, uint64_t off, uint32_t sidx);
void hzshm__shm_chunk_publish(hzshm__shm_t *s, uint64_t off); /* version even: the entry is complete */
void hzshm__shm_retire(hzshm__shm_t *s, uint64_t off);
void hzshm__shm_retire_dir(hzshm__shm_t *s, uint32_t idx);
/* Free what every reader has passed; freed count. bump: advance the epoch
 * first if anything was retired at the current one (at most once per
 * writer operation: every bump costs each reader a cache miss). */
uint64_t hzshm__shm_reclaim(hzshm__shm_t *s, int bump);
int hzshm__shm_evict_one(hzshm__shm_t *s, int cls);       /* 0 evicted, HZSHM_ESEGFULL none */
int hzshm__shm_slab_steal(hzshm__shm_t *s, int cls);      /* start moving a slab of another class to cls */
void hzshm__shm_rebuild_free(hzshm__shm_t *s);
uint64_t hzshm__shm_slabs_handed(hzshm__shm_t *s); /* 1 + the last slab with a class (restart) */

/* shm_write.c (writer) */
int hzshm__shm_unlink_entry(hzshm__shm_t *s, uint64_t off); /* remove from its chain and retire */
int hzshm__shm_w_rebuild(hzshm__shm_t *s);

#define HZSHM__SID_SEED 0x73657373ull /* prefix of the session-name hash */

/* The key hash: SipHash-1-3 under the segment's random key of (le64 prefix
 * || data), prefix = the session generation for entry keys, HZSHM__SID_SEED
 * for session names. Without the key nobody can compute which keys collide,
 * so outsiders choosing keys (hash flooding) cannot lengthen a chain beyond
 * chance; a local process that can read the segment knows the key, and the
 * chain bound (HZSHM__CHAIN_MAX) limits what it can do to a refused put. */
static inline __attribute__((always_inline)) uint64_t hzshm__shm_key_hash(const hzshm__shm_t *s, const void *data,
                                                                        size_t len, uint64_t prefix) {
  return hzshm__shm_sip13_inline(s->hkey, prefix, data, len); /* inline: on the critical path of every lookup */
}
int hzshm__shm_w_ref_ok(hzshm__shm_t *s, const hzshm__sref_t *ref);
void hzshm__shm_dir_reset(hzshm__shm_t *s);
/* Restart: walk the name chains, unlink records whose gen is 0 (a drop cut
 * short between its two stores) and mark in linked[] what each record is. */
enum { HZSHM__DIR_NOT_LINKED = 0, HZSHM__DIR_LINKED = 1, HZSHM__DIR_UNLINKED = 2 };
int hzshm__shm_dir_relink(hzshm__shm_t *s, uint8_t *linked); /* HZSHM_ECORRUPT: a loop or a stray link */

/* shm_read.c */
int hzshm__shm_dir_find(hzshm__shm_t *s, const char *sid, size_t len, uint64_t h, uint32_t *idx, uint64_t *gen);

/* The full fence of the reclamation protocol (shm_slots.c). GCC refuses
 * atomic_thread_fence under -fsanitize=thread (TSan does not model fences),
 * so TSan builds use a seq_cst read-modify-write of a process-local word
 * instead, which is also a full barrier on x86. The happens-before edges TSan
 * checks come from the release/acquire pairs, not from this fence. */
#if defined(__SANITIZE_THREAD__)
extern _Atomic uint64_t hzshm__tsan_fence_word;
#define HZSHM__FENCE_SEQ_CST() ((void)atomic_fetch_add_explicit(&hzshm__tsan_fence_word, 0, memory_order_seq_cst))
#else
#define HZSHM__FENCE_SEQ_CST() atomic_thread_fence(memory_order_seq_cst)
#endif

/* Release and acquire fences of the entry seqlock (shm_read.c). GCC has no
 * atomic_thread_fence under TSan (see above): the seq_cst RMW stands in;
 * under TSan the entry bytes are accessed with atomics (below), so TSan needs
 * no happens-before edge from these fences. */
#if defined(__SANITIZE_THREAD__)
#define HZSHM__FENCE_ACQ() HZSHM__FENCE_SEQ_CST()
#define HZSHM__FENCE_REL() HZSHM__FENCE_SEQ_CST()
#else
#define HZSHM__FENCE_ACQ() atomic_thread_fence(memory_order_acquire)
#define HZSHM__FENCE_REL() atomic_thread_fence(memory_order_release)
#endif

/* Entry bytes under the seqlock. A reader may read an entry while the writer
 * rewrites it (only if reclamation failed; the version check then rejects
 * what it read), so both sides access those bytes as relaxed atomics in TSan
 * builds, where a race must be visible as such only when it is one. In other
 * builds they are plain accesses: x86 loads and stores of aligned words are
 * atomic anyway, and a torn read is exactly what the version check rejects. */
#if defined(__SANITIZE_THREAD__)
#define HZSHM__ELD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define HZSHM__EST(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
static inline void hzshm__shm_eread(void *dst, const void *src, size_t n) {
  for (size_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = __atomic_load_n((const uint8_t *)src + i, __ATOMIC_RELAXED);
}
static inline void hzshm__shm_ewrite(void *dst, const void *src, size_t n) {
  for (size_t i = 0; i < n; i++) __atomic_store_n((uint8_t *)dst + i, ((const uint8_t *)src)[i], __ATOMIC_RELAXED);
}
static inline void hzshm__shm_efill(void *dst, int c, size_t n) {
  for (size_t i = 0; i < n; i++) __atomic_store_n((uint8_t *)dst + i, (uint8_t)c, __ATOMIC_RELAXED);
}
#else
#define HZSHM__ELD(x) (x)
#define HZSHM__EST(x, v) ((x) = (v))
static inline void hzshm__shm_eread(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
static inline void hzshm__shm_ewrite(void *dst, const void *src, size_t n) { memcpy(dst, src, n); }
static inline void hzshm__shm_efill(void *dst, int c, size_t n) { memset(dst, c, n); }
#endif

/* Offset <-> pointer: the one accessor pair. */
static inline hzshm__shm_entry_t *hzshm__shm_entry(hzshm__shm_t *s, uint64_t off) {
  return (hzshm__shm_entry_t *)(s->base + off);
}
static inline uint64_t hzshm__shm_unit(hzshm__shm_t *s, uint64_t off) {
  return (off - s->arena_off) / HZSHM__UNIT;
}
static inline uint64_t hzshm__shm_unit_off(hzshm__shm_t *s, uint64_t unit) {
  return s->arena_off + unit * HZSHM__UNIT;
}
/* Arena units per slab of this segment. */
static inline uint64_t hzshm__shm_slab_units(const hzshm__shm_t *s) {
  return (1ull << s->slab_shift) / HZSHM__UNIT;
}
/* Is `off` (an arena offset that hzshm__shm_off_ok accepted) the start of a
 * chunk of class cls in its slab, with the whole chunk inside the slab?
 * class_size / 64 divides the unit index in the slab iff index * magic <=
 * magic - 1 (magic = 2^64 / d rounded up; exact for indexes < 2^32). */
static inline int hzshm__shm_chunk_start(const hzshm__shm_t *s, uint32_t cls, uint64_t off) {
  uint64_t in_slab = (off - s->arena_off) & ((1ull << s->slab_shift) - 1);
  return (in_slab / HZSHM__UNIT) * s->class_magic[cls] <= s->class_magic[cls] - 1 &&
         in_slab + s->class_size[cls] <= (1ull << s->slab_shift);
}

/* An entry offset read from shared memory is followed only if this holds. */
static inline int hzshm__shm_off_ok(hzshm__shm_t *s, uint64_t off) {
  return off >= s->arena_off && off <= s->arena_end - sizeof(hzshm__shm_entry_t) &&
         ((off - s->arena_off) & (HZSHM__UNIT - 1)) == 0;
}

/* ---- the read-side hot path, inline (called on every lookup) ----------- */

/* One-entry per-thread cache: handle id -> this thread's slot (shm_slots.c).
 * Handle ids are never reused in a process, so a stale entry never matches. */
extern __thread uint64_t hzshm__tls_id;
extern __thread hzshm__shm_slot_t *hzshm__tls_slot;
static inline hzshm__shm_slot_t *hzshm__shm_slot_get(hzshm__shm_t *s) {
  if (__builtin_expect(hzshm__tls_id == s->id, 1)) return hzshm__tls_slot;
  return hzshm__shm_slot_get_slow(s);
}

/* The read-side critical section; ordering: see the head of shm_slots.c. */
static inline int hzshm__shm_rs_enter(hzshm__shm_t *s, hzshm__shm_slot_t *sl) {
  uint32_t n = atomic_load_explicit(&sl->nest, memory_order_relaxed); /* owner-private */
  if (n == 0) {
    /* acquire: pairs with the release increment in hzshm__shm_reclaim(), so
     * the unlinks done before that bump are visible to this section. */
    uint64_t e = atomic_load_explicit(&s->hdr->epoch, memory_order_acquire);
    /* The fence-free mode holds only while the writer in charge announces
     * that it membarriers (a restarted writer may not, or its membarrier may
     * start failing): re-read per section. relaxed: a flag cleared while we
     * run is covered by the writer's switch grace (hzshm__shm_min_epoch). */
    uint32_t fenced = s->fence_mode ||
                      !(atomic_load_explicit(&s->hdr->flags, memory_order_relaxed) & HZSHM__F_MEMBARRIER);
    if (__builtin_expect(atomic_load_explicit(&sl->mode, memory_order_relaxed) != !fenced, 0))
      atomic_store_explicit(&sl->mode, !fenced, memory_order_relaxed); /* observability only */
    /* release (issue 10): free on x86; orders this section's earlier
     * accesses of the same slot before the epoch store also where the read
     * side has only a compiler barrier (fence_mode 0). The store-load
     * order against the section's loads is the fence's (or membarrier's). */
    atomic_store_explicit(&sl->epoch, e ? e : 1, memory_order_release);
    if (fenced)
      HZSHM__FENCE_SEQ_CST(); /* pairs with the writer's fence in min_epoch */
    else
      atomic_signal_fence(memory_order_seq_cst); /* upgraded by the writer's membarrier */
  }
  atomic_store_explicit(&sl->nest, n + 1, memory_order_relaxed);
  return 0;
}

static inline void hzshm__shm_rs_exit(hzshm__shm_t *s, hzshm__shm_slot_t *sl) {
  uint32_t n = atomic_load_explicit(&sl->nest, memory_order_relaxed);
  if (n == 0) return;
  atomic_store_explicit(&sl->nest, n - 1, memory_order_relaxed);
  if (n == 1) /* release: pairs with the acquire in hzshm__shm_min_epoch() */
    atomic_store_explicit(&sl->epoch, 0, memory_order_release);
}

#endif /* HZSHM_SHM_INT_H */
