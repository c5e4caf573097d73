/* shm_layout.h - the on-disk (in HZSHM_SHM_DIR, default /dev/shm) format of a segment.
 *
 * Everything here is shared between processes that may run different builds,
 * so: fixed-width types only, offsets (from the start of the file that holds
 * them) never pointers, 64-byte alignment for every line written by one party
 * and read by another, and a _Static_assert on every size and offset. The
 * layout fingerprint (hzshm__shm_layout_fingerprint()) hashes all of these
 * numbers, so a build whose structs differ refuses to attach (HZSHM_EVERSION)
 * even if somebody forgot to bump HZSHM_SHM_LAYOUT_VERSION.
 *
 * Data file  hzshm.<name>      (writer RW, readers PROT_READ)
 *   [0, 4096)            hzshm__shm_hdr_t (its seg_name: the segment's name)
 *   part_off             partition_count x hzshm__shm_part_t (32 B)
 *   dir_off              dir_count x hzshm__shm_dirent_t (288 B)
 *   dirix_off            dirix_count x _Atomic uint32_t (dir slot + 1, 0 = end)
 *   slabtab_off          slab_count x _Atomic uint64_t (class and carving generation of each slab)
 *   bucket_off           bucket_count x _Atomic uint64_t (see HZSHM__B_* below)
 *   arena_off            slab_count x (1 << slab_shift) bytes of entries
 * Reader file hzshm.<name>.rd  (mode 0600: the writer and readers of its uid, RW)
 *   [0, 4096)            hzshm__shm_rdhdr_t
 *   slots_off            nslots x hzshm__shm_slot_t (64 B, one line each)
 *   bitmap_off           one SIEVE "visited" bit per 64-byte arena unit
 *
 * Private reader file hzshm.<name>.rd.<pid>.<n>  (created by one reader
 *   process of another uid, mode 0644; the same layout as the reader file;
 *   the writer only ever pread()s it, never maps it: see shm_private.c)
 * Lock file hzshm.<name>.lock (mode 0600, empty)
 *
 * OFD byte-range locks (fcntl F_OFD_SETLK) are the liveness tests:
 *   lock file byte 0          held (write lock) by the live writer
 *   reader file byte i        held by the owner of reader slot i (also in private files)
 */
#ifndef HZSHM_SHM_LAYOUT_H
#define HZSHM_SHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HZSHM__SHM_MAGIC 0x31474553534d485aull    /* "ZHMSSEG1" little endian */
#define HZSHM__SHM_RD_MAGIC 0x31445253534d485aull /* "ZHMSSRD1" */
#define HZSHM_SHM_LAYOUT_VERSION 9u /* 2: bucket array and arena 2 MiB aligned from 64 MiB; 3: key hash without finalizer;
                                       4: per-segment slab size (hdr.slab_shift);
                                       5: keyed key hash (hdr.hash_key), chains bounded on insert;
                                       6: validated hits (entry.ver, slab words with a generation);
                                       7: private reader files (hdr.reg_scans), writer lock in .lock;
                                       8: value type in entry.klen bit 14 (HZSHM__E_STRING);
                                       9: the segment's name in the header (hdr.seg_name) */
#define HZSHM__LINE 64u
#define HZSHM__HDR_SIZE 4096u
#define HZSHM__UNIT 64u                /* arena allocation granule; entries start on a line */
/* Slab size, chosen per segment at creation and recorded in the header
 * (slab_shift): the largest power of two within [64 KiB, 2 MiB] of which the
 * arena budget holds at least HZSHM__SLABS_MIN (shm_open.c, layout_compute). */
#define HZSHM__SLABS_MIN 64u
#define HZSHM__SLAB_SHIFT_MIN 16u      /* 64 KiB */
#define HZSHM__SLAB_SHIFT_MAX 21u      /* 2 MiB: an entry of HZSHM_VALUE_MAX + key fits a size class */
#define HZSHM__SOCKET_MAX 108u
#define HZSHM__SEG_NAME_BYTES 64u      /* hdr.seg_name: HZSHM_SHM_NAME_MAX bytes */
/* Chains are at most HZSHM__CHAIN_MAX entries long: the writer refuses to
 * insert into a full chain (after pruning dead entries of it) and counts it
 * (hdr.chain_refused); its own walks end at the chain's end, which this
 * invariant bounds. Readers stop after HZSHM__WALK_MAX steps: a bound that
 * only a corrupt segment reaches (a reader's path through a chain never
 * exceeds the longest chain: inserts are at the head, see shm_read.c). */
#define HZSHM__CHAIN_MAX 32u
#define HZSHM__WALK_MAX (2u * HZSHM__CHAIN_MAX)

/* Bucket and `next` words: the offset (from the data file start, multiple of
 * 64, < 2^48) of the first/next entry in the low 48 bits, and the top 16 bits
 * of that entry's hash in the high 16 bits, so a walk skips most non-matching
 * entries without touching their lines. 0 = end of chain. */
#define HZSHM__B_OFF(w) ((w) & 0x0000ffffffffffffull)
#define HZSHM__B_TAG(w) ((uint16_t)((w) >> 48))
#define HZSHM__B_MAKE(off, hash) ((uint64_t)(off) | ((hash) & 0xffff000000000000ull))

typedef struct {
  /* ---- line 0-1: geometry, written once when the file is created ---- */
  uint64_t magic;
  uint32_t version;
  uint32_t hdr_size;
  uint64_t fingerprint;      /* hzshm__shm_layout_fingerprint() of the creator */
  uint64_t total_size;       /* data file size; compared with fstat() */
  uint64_t rd_size;          /* reader file size */
  uint64_t part_off;
  uint32_t part_count;
  uint32_t dir_count;
  uint64_t dir_off;
  uint64_t dirix_off;
  uint32_t dirix_count;      /* power of two */
  uint32_t nslots;
  uint64_t slabtab_off;
  uint64_t slab_count;
  uint64_t bucket_off;
  uint64_t bucket_count;     /* power of two */
  uint64_t arena_off;
  uint64_t arena_size;
  uint64_t stale_after_ns;
  uint32_t slab_shift;       /* slab size = 1 << slab_shift, HZSHM__SLAB_SHIFT_MIN..MAX */
  uint32_t pad1;
  uint64_t geom_check;       /* hash of the fields above: detects a scribbled header */
  _Atomic uint64_t reg_scans; /* writer: +1 (release) after every scan of private reader files */
  uint64_t hash_key[2];      /* SipHash key of the key hash: random per segment (getrandom), set at creation */
  /* ---- line 2: writer identity (writer stores, readers/stat load) ---- */
  alignas(64) _Atomic uint32_t writer_pid;
  _Atomic uint32_t flags;          /* HZSHM__F_* */
  _Atomic uint64_t writer_start;   /* start time of the writer process (clock ticks) */
  _Atomic uint64_t writer_gen;     /* +1 at every w_open */
  /* ---- line 3: read by every reader on every lookup (written rarely) ---- */
  alignas(64) _Atomic uint64_t epoch;      /* global reclamation epoch, starts at 1 */
  _Atomic uint64_t heartbeat_ns;           /* CLOCK_MONOTONIC_COARSE of the last heartbeat */
  _Atomic uint32_t state;                  /* HZSHM_SHM_SERVING, ... */
  /* ---- line 4-5: writer counters (writer stores, anybody loads) ---- */
  alignas(64) _Atomic uint64_t stamp;      /* fill stamp counter */
  _Atomic uint64_t next_sgen;              /* next session generation (never 0) */
  _Atomic uint64_t entries, sessions, memory_used, evictions, expirations;
  _Atomic uint64_t retired_pending, reaped;
  _Atomic uint64_t chain_refused;          /* puts not cached: the key's chain was full */
  _Atomic uint64_t chain_cut;              /* chains detached because a writer walk found them corrupt */
  _Atomic uint64_t agent[32];              /* HZSHM_SHM_AGENT_COUNTERS */
  alignas(64) _Atomic uint64_t socket[16];  /* NUL-padded path, written under `socket_seq` */
  _Atomic uint64_t socket_seq;             /* seqlock: odd while the path is changing */
  /* ---- line 14: written once at creation ---- */
  /* The name the segment was created under, NUL-padded (a name of
   * HZSHM__SEG_NAME_BYTES has no NUL). A reader attaches a file only if it is
   * the segment it asked for: a hard link to another segment's data file at
   * this name (which a group member may make where fs.protected_hardlinks is
   * off) carries that segment's name. */
  alignas(64) char seg_name[HZSHM__SEG_NAME_BYTES];
} hzshm__shm_hdr_t;

#define HZSHM__F_MEMBARRIER 1u /* the writer issues membarrier(GLOBAL_EXPEDITED) before scanning slots */

typedef struct {
  _Atomic uint64_t stale_mark;   /* entries with stamp < stale_mark read as a miss */
  _Atomic uint64_t uuid[2];      /* partition UUID, observability only */
  uint64_t pad;
} hzshm__shm_part_t;

typedef struct {
  _Atomic uint64_t gen;          /* 0 = free or being rewritten; else current generation */
  _Atomic uint64_t name_hash;
  _Atomic uint32_t next;         /* next record in the name-hash chain (index + 1), 0 = end */
  _Atomic uint32_t namelen;
  uint64_t pad;                  /* (was the entry count: now writer-private, off the line of gen) */
  _Atomic uint64_t name[32];     /* 256 bytes, read word by word under the gen seqlock */
} hzshm__shm_dirent_t;

/* Slab table words: the slab's size class in the low byte (0xff = none: not
 * handed out, or being re-carved) and a carving generation above it, +1 at
 * every change (shm_alloc.c, carve()). A reader takes the word before and
 * after it reads an entry of the slab: equal words mean the slab was not
 * re-carved meanwhile (a seqlock over the slab's chunk boundaries). */
#define HZSHM__SLAB_CLS(w) ((uint32_t)((w) & 0xffu))
#define HZSHM__SLAB_GEN(w) ((w) >> 8)
#define HZSHM__SLAB_MAKE(gen, cls) (((uint64_t)(gen) << 8) | (uint64_t)(cls))

/* An entry: immutable once published except `next`. Key then value follow
 * the 56-byte header contiguously, so an 8-byte key shares the header's line.
 * `ver` is the chunk's seqlock word (shm_read.c, "Validated hits"): odd while
 * the chunk is free or being filled, even once published; it only grows
 * while the slab keeps its carving. */
typedef struct {
  _Atomic uint64_t next;         /* B_MAKE(off, hash) of the next entry in the chain */
  _Atomic uint64_t ver;          /* chunk version: odd = free/being written, even = published */
  uint64_t hash;                 /* hzshm__shm_key_hash(segment, key, sgen) */
  uint64_t sgen;                 /* session generation it belongs to */
  uint64_t stamp;                /* fill stamp */
  uint64_t expiry_ns;            /* CLOCK_MONOTONIC_COARSE deadline, 0 = none */
  uint32_t vlen;
  uint16_t klen;                 /* bits 0-13: key length; bit 15: HZSHM__E_NEGATIVE; bit 14: HZSHM__E_STRING */
  uint16_t partition;
} hzshm__shm_entry_t;
#define HZSHM__E_NEGATIVE 0x8000u
/* The value is a Hazelcast String (UTF-8), not a byte[]: the writer passed
 * HZSHM_SHM_STRING (key lengths are <= HZSHM_KEY_MAX, so bit 14 was spare). */
#define HZSHM__E_STRING 0x4000u
#define HZSHM__E_KLEN_MASK 0x3fffu
#define HZSHM__E_KLEN(e) ((uint32_t)((e)->klen & HZSHM__E_KLEN_MASK))
#ifdef HZSHM_KEY_MAX
_Static_assert(HZSHM_KEY_MAX <= HZSHM__E_KLEN_MASK, "key lengths leave bits 14 and 15 of entry.klen free");
#endif

/* Reader file. */
typedef struct {
  uint64_t magic;
  uint32_t version;
  uint32_t nslots;
  uint64_t fingerprint;
  uint64_t total_size;
  uint64_t slots_off;
  uint64_t bitmap_off;
  uint64_t bitmap_bytes;
  uint64_t data_total_size;      /* ties the pair together */
} hzshm__shm_rdhdr_t;

typedef struct {
  _Atomic uint64_t epoch;        /* 0 = quiescent; else the global epoch seen at entry */
  _Atomic uint32_t owner_pid;    /* 0 = free */
  _Atomic uint32_t nest;         /* read-side nesting depth (owner only) */
  _Atomic uint64_t owner_start;  /* owner's process start time (observability) */
  _Atomic uint64_t hits;         /* monotonic across owners: a new owner keeps counting */
  _Atomic uint64_t misses;
  _Atomic uint32_t mode;         /* 1 = this owner relies on the writer's membarrier */
  uint32_t pad0;
  _Atomic uint64_t torn;         /* lookups whose validation failed (a reused entry): retried or missed */
  uint8_t pad[8];
} hzshm__shm_slot_t;

/* ---- every size and offset the fingerprint covers ---- */
#define HZSHM__LAYOUT_FIELDS(X)                                          \
  X(sizeof(hzshm__shm_hdr_t), 960)                                      \
  X(offsetof(hzshm__shm_hdr_t, total_size), 24)                          \
  X(offsetof(hzshm__shm_hdr_t, part_off), 40)                            \
  X(offsetof(hzshm__shm_hdr_t, bucket_off), 96)                          \
  X(offsetof(hzshm__shm_hdr_t, arena_off), 112)                           \
  X(offsetof(hzshm__shm_hdr_t, slab_shift), 136)                         \
  X(offsetof(hzshm__shm_hdr_t, geom_check), 144)                         \
  X(offsetof(hzshm__shm_hdr_t, reg_scans), 152)                          \
  X(offsetof(hzshm__shm_hdr_t, writer_pid), 192)                         \
  X(offsetof(hzshm__shm_hdr_t, writer_gen), 208)                         \
  X(offsetof(hzshm__shm_hdr_t, epoch), 256)                              \
  X(offsetof(hzshm__shm_hdr_t, heartbeat_ns), 264)                       \
  X(offsetof(hzshm__shm_hdr_t, state), 272)                              \
  X(offsetof(hzshm__shm_hdr_t, stamp), 320)                              \
  X(offsetof(hzshm__shm_hdr_t, reaped), 384)                             \
  X(offsetof(hzshm__shm_hdr_t, chain_refused), 392)                      \
  X(offsetof(hzshm__shm_hdr_t, hash_key), 160)                           \
  X(offsetof(hzshm__shm_hdr_t, agent), 408)                              \
  X(offsetof(hzshm__shm_hdr_t, socket), 704)                             \
  X(offsetof(hzshm__shm_hdr_t, socket_seq), 832)                         \
  X(offsetof(hzshm__shm_hdr_t, seg_name), 896)                           \
  X(sizeof(hzshm__shm_part_t), 32)                                       \
  X(sizeof(hzshm__shm_dirent_t), 288)                                    \
  X(offsetof(hzshm__shm_dirent_t, name), 32)                             \
  X(sizeof(hzshm__shm_entry_t), 56)                                      \
  X(offsetof(hzshm__shm_entry_t, ver), 8)                                \
  X(offsetof(hzshm__shm_entry_t, vlen), 48)                              \
  X(offsetof(hzshm__shm_entry_t, klen), 52)                              \
  X(sizeof(hzshm__shm_rdhdr_t), 64)                                      \
  X(sizeof(hzshm__shm_slot_t), 64)                                       \
  X(offsetof(hzshm__shm_slot_t, hits), 24)                               \
  X(offsetof(hzshm__shm_slot_t, mode), 40)                               \
  X(offsetof(hzshm__shm_slot_t, torn), 48)                               \
  X(sizeof(_Atomic uint64_t), 8)                                         \
  X(HZSHM__UNIT, 64)                                                     \
  X(HZSHM__SLAB_SHIFT_MIN, 16)                                           \
  X(HZSHM__SLAB_SHIFT_MAX, 21)                                           \
  X(HZSHM__CHAIN_MAX, 32)                                                \
  X(HZSHM__E_STRING, 0x4000)

#define HZSHM__LAYOUT_ASSERT(expr, val) _Static_assert((expr) == (val), #expr " changed: bump the layout version");
HZSHM__LAYOUT_FIELDS(HZSHM__LAYOUT_ASSERT)
#undef HZSHM__LAYOUT_ASSERT
_Static_assert(HZSHM__HDR_SIZE >= sizeof(hzshm__shm_hdr_t), "header page");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free to live in shared memory");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free to live in shared memory");

#endif /* HZSHM_SHM_LAYOUT_H */
