/* shm.h - the shared-memory segment: internal API between the segment
 * (shm/), its single writer (the agent) and its readers (libhzshm).
 *
 * Stability: the agent and libhzshm are written against this header. Adding
 * functions is fine; changing the meaning of one below needs all users updated.
 *
 * Roles
 *   - One writer per segment (the agent's loop thread). Every hzshm__shm_w_*
 *     function is single-writer: call it from one thread only.
 *     A writer handle may also call the hzshm__shm_r_* functions.
 *   - Any number of reader threads in any number of processes. hzshm__shm_r_*
 *     functions are lock-free, make no syscall on the hit path, and are safe
 *     from any thread (each thread gets its own reader slot on first use).
 *
 * Files: <dir>/hzshm.<name> (data: written by the writer only; readers map
 * it PROT_READ), <dir>/hzshm.<name>.rd (reader slots and eviction hint
 * bits: mode 0600, readers of the writer's uid map it read-write) and
 * <dir>/hzshm.<name>.lock (the writer's exclusion lock, 0600). A reader that
 * may read the data file but not open the reader file (another uid, in the
 * data file's group) creates a private reader file of its own (shm_private.c;
 * the access model: docs/SHM.md). Names: 1..64 chars of [A-Za-z0-9_.-], no
 * leading ".", no dot-separated part "rd" or "lock" after the first (hzshm__shm_name_ok).
 * <dir> is the environment variable HZSHM_SHM_DIR, read when a segment is
 * opened, attached or unlinked (never on the hit path), default /dev/shm
 * (also when empty); it must be absolute and at most HZSHM_SHM_DIR_MAX bytes,
 * else those calls return HZSHM_EINVAL. Writer and readers must agree on it.
 * Point it at a tmpfs mounted with huge=within_size (tools/hugetmpfs) to
 * back the segment with 2 MiB pages (mappings are madvise(MADV_HUGEPAGE)d).
 *
 * Error codes: hzshm_errno.h. Every function returns 0 or a negative code.
 */
#ifndef HZSHM_SHM_H
#define HZSHM_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hzshm.h" /* the limits HZSHM_KEY_MAX, HZSHM_SESSION_MAX; hzshm_agent_state */
#include "hzshm_errno.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hzshm__shm hzshm__shm_t; /* one process's mapping of a segment */

/* Limits enforced by the segment: HZSHM_SESSION_MAX and HZSHM_KEY_MAX (hzshm.h),
 * and the segment name's. */
#define HZSHM_SHM_NAME_MAX 64

/* ---- creation and attachment ------------------------------------------- */

typedef struct {
  uint64_t memory_bytes;   /* total budget for the data file (index + arena + directory) */
  uint32_t max_sessions;   /* directory capacity; 0 = default (65536) */
  uint32_t reader_slots;   /* 0 = default (1024) */
  uint32_t partition_count;/* Hazelcast partition count; 0 = default 271 */
  uint32_t mode;           /* data file mode, masked with 0644; 0 = 0600, or 0640 with gid_set */
  uint32_t gid_set;        /* 1: the data file's group is `gid` (readers of that group attach) */
  uint32_t gid;
  uint64_t stale_after_ns; /* readers fail closed when the heartbeat is older; 0 = 2 s */
  uint32_t open_state;     /* state w_open publishes with its first heartbeat: 0 = HZSHM_SHM_SERVING;
                              a writer that must revalidate a reused segment first (the agent marks
                              every partition stale) passes HZSHM_SHM_DISCONNECTED and publishes
                              SERVING itself afterwards */
} hzshm__shm_config_t;

/* Writer: create the segment, or, if one exists with the same layout and no
 * live writer (the previous agent died), attach to it and keep its contents
 * (*reused = 1). A live writer holding it -> HZSHM_EEXIST (also when our
 * lock file lost its name before w_open returned: hzshm__shm_w_holds_name).
 * A file of another layout -> HZSHM_EVERSION unless `replace_incompatible` is
 * set, in which case it is recreated. */
int hzshm__shm_w_open(const char *name, const hzshm__shm_config_t *cfg, int replace_incompatible,
                      hzshm__shm_t **out, int *reused);

/* Reader: attach read-only to the data and read-write to the reader file.
 * Errors: -ENOENT (no such segment), -EACCES, HZSHM_EVERSION, HZSHM_ECORRUPT,
 * HZSHM_ETRUNCATED, HZSHM_EINVAL (bad name, bad HZSHM_AGENT_UID),
 * HZSHM_EUNTRUSTED (the data file is not a regular file of a trusted owner
 * writable by its owner only: hzshm__shm_uid_trusted; or it is another
 * segment's file: its header names another segment, e.g. a hard link). The
 * shared reader file is used only if it has the data file's owner and is
 * writable by it only (else a private one). Never crashes on garbage.
 * r_attach resolves HZSHM_AGENT_UID (hzshm__shm_agent_uid) at every call;
 * r_attach_as takes the agent uid resolved once by the caller ((uid_t)-1:
 * none) and looks up no user. */
int hzshm__shm_r_attach(const char *name, hzshm__shm_t **out);
int hzshm__shm_r_attach_as(const char *name, uid_t agent_uid, hzshm__shm_t **out);

/* Reader: 1 if the segment's data file is no longer the file this handle
 * maps (the writer replaced it: attach again), 0 if it is, or a negative
 * code (-ENOENT: no segment file now). One stat(2). */
int hzshm__shm_r_replaced(hzshm__shm_t *s);

/* Both roles. Releases this process's reader slots and unmaps. */
void hzshm__shm_close(hzshm__shm_t *s);

/* Writer: close and remove the segment's files (data, reader, lock) while
 * still holding the writer lock, so a writer starting meanwhile never loses
 * its files to this unlink (the agent's --unlink-on-exit). Only names that
 * are still this handle's files are removed, and none once its lock file is
 * no longer at the lock name (hzshm__shm_w_holds_name 0: a writer started
 * since may have reused the data and reader files). A reader handle: like
 * close. */
void hzshm__shm_close_unlink(hzshm__shm_t *s);
/* Writer: 1 while our locked lock file is still the one at the segment's
 * lock name, 0 once it is not (somebody removed or replaced it: a writer
 * that starts now takes a fresh lock and this data file, so we must stop
 * writing), -errno / HZSHM_EINVAL otherwise. Two system calls; the agent
 * asks on every tick. Backstop for the one race writer_lock cannot close
 * (docs/SHM.md, writer exclusion). */
int hzshm__shm_w_holds_name(hzshm__shm_t *s);

/* Remove the files by name, whoever's they are (tests, tools; a writer
 * removing its own segment uses hzshm__shm_close_unlink). */
int hzshm__shm_unlink(const char *name);
/* The smallest memory_bytes hzshm__shm_w_open accepts with cfg's other
 * fields (rounded up to a MiB); 0 if no budget fits (bad sessions/readers). */
uint64_t hzshm__shm_min_memory(const hzshm__shm_config_t *cfg);

/* ---- reader side ---------------------------------------------------------- */

/* A resolved session: valid while the session's generation is unchanged. */
typedef struct {
  uint32_t idx;  /* directory slot */
  uint64_t gen;  /* generation of the session's current incarnation (never 0) */
} hzshm__sref_t;

/* Resolve a session id to its directory slot. HZSHM_EMISS if the session has
 * no directory entry (nothing cached for it). Lock-free. */
int hzshm__shm_r_session(hzshm__shm_t *s, const char *sid, size_t sidlen, hzshm__sref_t *ref);

/* Validated hits: a hit (0, HZSHM_ENOTFOUND, HZSHM_EBUFSIZE, a view) is
 * reported only after the entry's version and its slab's word were found
 * unchanged across the copy, so it is one complete value the writer
 * published, even if memory were reused under the reader; a failed check is
 * retried and then a miss (counted in stats.torn_reads). On a miss, buf may
 * have been written. */

/* Look up `key` in session `ref`.
 *   0                 hit; if buf != NULL and cap >= value length, the value is
 *                     copied to buf. *vlen = value length in any case.
 *   HZSHM_EBUFSIZE    hit but cap too small; *vlen = needed size, buf untouched.
 *   HZSHM_ENOTFOUND   cached absence (the cluster said the key does not exist).
 *   HZSHM_EMISS       not cached, expired, or stale by partition metadata.
 *   HZSHM_ESESSION    ref is stale (session destroyed or cleared): re-resolve.
 *   HZSHM_ESTALE      failing closed (heartbeat too old / writer says not serving).
 *   HZSHM_EBUSY       no reader slot free for this thread. After a failed
 *                     claim the thread retries at most every 20 ms (or once
 *                     a slot was released in this process); until then EBUSY
 *                     costs a clock read. Counted in stats.slot_busy.
 * buf == NULL is `has`. A hit sets the entry's eviction hint bit at most once. */
int hzshm__shm_r_get(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen,
                     void *buf, size_t cap, size_t *vlen);

/* r_get, also reporting the entry's value type on a hit (0, HZSHM_EBUFSIZE):
 * *vflags = HZSHM_SHM_STRING for a String value, 0 for a byte[]. vflags may be NULL. */
int hzshm__shm_r_get_typed(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen,
                           void *buf, size_t cap, size_t *vlen, uint32_t *vflags);

/* Zero-copy: on 0, *val and *vlen point into the segment and the calling thread
 * stays inside its read-side critical section until hzshm__shm_r_view_end():
 * keep it short, it holds back reclamation. Same codes as r_get (buf-less).
 * Views nest per thread. */
int hzshm__shm_r_view(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen,
                      const void **val, size_t *vlen);
/* r_view with the value type as in r_get_typed (set on 0). */
int hzshm__shm_r_view_typed(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen,
                            const void **val, size_t *vlen, uint32_t *vflags);
/* Leaves the section of the thread's latest open view of s. 0: the viewed
 * bytes were the published value throughout. HZSHM_ECHANGED: the entry was
 * reused while viewed (possible only if reclamation failed): discard what was
 * read. HZSHM_EINVAL: no open view of s on this thread. */
int hzshm__shm_r_view_end(hzshm__shm_t *s);

/* 0 when serving, HZSHM_ESTALE / HZSHM_EDISCONNECTED / HZSHM_ESTOPPED when
 * failing closed (the reason). Cheap (coarse clock). */
int hzshm__shm_r_check(hzshm__shm_t *s);

/* Per-thread hit/miss counters live in the reader slot; r_count_miss lets the
 * library count misses it resolved through the agent. */
void hzshm__shm_r_count_miss(hzshm__shm_t *s);

/* ---- writer side ----------------------------------------------------------- */

/* Agent liveness and state, read by every reader on every lookup.
 * state: HZSHM_SHM_SERVING, or a reason readers report. Call every <= 100 ms. */
enum { /* the published states are hzshm_stats_t.agent_state's */
  HZSHM_SHM_SERVING = HZSHM_AGENT_SERVING,
  HZSHM_SHM_DISCONNECTED = HZSHM_AGENT_DISCONNECTED,
  HZSHM_SHM_STOPPED = HZSHM_AGENT_STOPPED,
};
void hzshm__shm_w_heartbeat(hzshm__shm_t *s, int state);

/* Open (create if absent) the directory entry for a session. */
int hzshm__shm_w_session(hzshm__shm_t *s, const char *sid, size_t sidlen, hzshm__sref_t *ref);
/* Destroy or clear a session: one generation bump hides every entry of it from
 * every reader at once; entries are swept later by w_maintain. The directory
 * slot is kept (with a new generation) if keep != 0 (clear), freed otherwise. */
int hzshm__shm_w_session_drop(hzshm__shm_t *s, const hzshm__sref_t *ref, int keep, hzshm__sref_t *newref);
/* Entries currently cached for the session (for listener bookkeeping). */
uint64_t hzshm__shm_w_session_entries(hzshm__shm_t *s, const hzshm__sref_t *ref);

/* Fill stamps: a global monotonic counter. The agent takes a stamp when it
 * reserves a key (before the remote get) and passes it to w_put; an entry whose
 * stamp is older than its partition's stale mark reads as a miss. */
uint64_t hzshm__shm_w_stamp(hzshm__shm_t *s);

enum {
  HZSHM_SHM_NEGATIVE = 1u, /* cached absence: `has` false, `get` ENOTFOUND */
  HZSHM_SHM_STRING = 2u    /* the value is a Hazelcast String (UTF-8), else a byte[] */
};

/* Insert or replace. flags: HZSHM_SHM_NEGATIVE (val empty) or
 * HZSHM_SHM_STRING (val is UTF-8 of a String; not checked here). `partition` is the key's Hazelcast partition id, `stamp`
 * from w_stamp, ttl_ms 0 = no local expiry. Evicts (SIEVE) when full.
 * HZSHM_ETOOBIG: entry larger than this segment's largest size class, its slab
 * size (64 KiB..2 MiB, chosen from memory_bytes at creation; not cached; not an
 * error for the agent, which serves it without caching). HZSHM_ESEGFULL:
 * nothing could be evicted or reclaimed right now, or the key is new and its
 * hash chain is full (HZSHM__CHAIN_MAX entries after pruning dead ones:
 * counted in stats.chain_refused). HZSHM_ESESSION: stale ref. */
int hzshm__shm_w_put(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen,
                     const void *val, size_t vlen, uint32_t partition, uint64_t stamp,
                     uint32_t ttl_ms, uint32_t flags);
/* Remove one key. HZSHM_ENOTFOUND if it was not cached. */
int hzshm__shm_w_del(hzshm__shm_t *s, const hzshm__sref_t *ref, const void *key, size_t klen);

/* Partition metadata (Hazelcast near-cache repair model). Marking a partition
 * stale makes every entry of it filled before now a miss. The UUID is kept for
 * observability; the agent does the UUID/sequence bookkeeping itself. */
int hzshm__shm_w_partition_stale(hzshm__shm_t *s, uint32_t partition);
int hzshm__shm_w_partition_uuid(hzshm__shm_t *s, uint32_t partition, const uint8_t uuid[16]);
/* Drop everything (cluster changed). */
int hzshm__shm_w_clear_all(hzshm__shm_t *s);

/* Periodic work, bounded per call: reclaim retired memory once every live
 * reader has passed its retire epoch, reap slots of dead reader processes,
 * sweep entries of dropped sessions and expired entries. Never blocks on a
 * reader. Returns 0. */
int hzshm__shm_w_maintain(hzshm__shm_t *s);

/* ---- statistics (either role) ----------------------------------------------- */
typedef struct {
  uint64_t hits, misses;            /* summed over reader slots (dead ones folded in) */
  uint64_t entries, sessions;
  uint64_t memory_used, memory_limit; /* arena bytes in use / arena size */
  uint64_t evictions, expirations;
  uint64_t retired_pending;         /* unlinked, waiting for readers */
  uint32_t readers;                 /* live reader slots */
  uint32_t reaped_readers;          /* dead slots reclaimed so far */
  int32_t state;                    /* HZSHM_SHM_* */
  int32_t writer_pid;
  uint64_t heartbeat_age_ns;
  uint64_t writer_generation;       /* increments every time a writer opens it */
  uint64_t stale_after_ns;          /* the heartbeat bound readers apply */
  uint64_t chain_refused;           /* puts not cached because the key's hash chain was full */
  uint64_t chain_cut;               /* hash chains detached because they were found corrupt */
  uint64_t torn_reads;              /* reads whose validation failed (0 unless reclamation failed) */
  uint64_t slot_busy;               /* this handle: calls refused with HZSHM_EBUSY (no reader slot) */
  uint64_t slot_claim_failures;     /* this handle: slot scans that found no free slot */
  uint64_t prd_scans_incomplete;    /* writer handle: reader file scans that could not examine every file
                                       (until one completes after w_open, nothing is freed) */
  uint64_t prd_refused;             /* writer handle: live private reader files not followed (caps): those
                                       readers use the agent path */
  int prd_complete;                 /* writer handle: 1 once a complete scan ran (reclamation allowed) */
} hzshm__shm_stats_t;
int hzshm__shm_stats(hzshm__shm_t *s, hzshm__shm_stats_t *st);

/* Counters the agent publishes for `hzshm stat` (invalidations applied, last
 * invalidation lag, cluster state, ...). Their meaning is the agent's
 * (src/agent); the segment only stores them. */
#define HZSHM_SHM_AGENT_COUNTERS 32
void hzshm__shm_w_agent_counter(hzshm__shm_t *s, unsigned idx, uint64_t v);
uint64_t hzshm__shm_agent_counter(hzshm__shm_t *s, unsigned idx);

/* The agent's Unix socket path, recorded in the header so that libhzshm finds
 * the agent from the cache name alone. len < 108. */
int hzshm__shm_w_set_socket(hzshm__shm_t *s, const char *path);
int hzshm__shm_socket(hzshm__shm_t *s, char *buf, size_t cap);

/* ---- fork, w_put's failures, file paths, test poison -------------------- */

/* Caveat, fork(): handles do not survive fork() into the child. In the child
 * every inherited handle returns HZSHM_ECLOSED (close it, attach again); its
 * descriptors are closed there so that a child never keeps its parent's
 * writer lock or reader-slot locks alive after the parent died.
 *
 * That is done by three fork steps, which shm/ does not register itself: the
 * process has one pthread_atfork handler, libhzshm's (src/lib/lib.c), which
 * calls them in the order documented there. A program using shm/ without
 * libhzshm that forks while it has handles open forks with hzshm__shm_fork()
 * (the shm tests, bench_shm), which runs them around fork(); the agent never
 * forks.
 *   prepare: takes shm/'s list of open handles (a leaf lock);
 *   parent:  releases it;
 *   child:   (single-threaded) marks every inherited handle forked, unmaps
 *            it, closes its descriptors, and releases the lock. */
void hzshm__shm_fork_prepare(void);
void hzshm__shm_fork_parent(void);
void hzshm__shm_fork_child(void);
/* fork() with the three steps around it, for programs without libhzshm
 * (with libhzshm loaded its handler runs them already: use plain fork()). */
pid_t hzshm__shm_fork(void);

/* Note on w_put: when the new value cannot be cached (HZSHM_ETOOBIG,
 * HZSHM_ESEGFULL), an existing entry for the key is removed, so the cache
 * never keeps a value older than the one the caller tried to store. */

/* The directory holding segments (see "Files" above) and the path of a
 * segment's data (rd = 0) or reader (rd = 1) file. HZSHM_EINVAL for a bad
 * name, a bad HZSHM_SHM_DIR, or cap too small (HZSHM_SHM_PATH_MAX is enough). */
#define HZSHM_SHM_DIR_MAX 200
#define HZSHM_SHM_PATH_MAX (HZSHM_SHM_DIR_MAX + HZSHM_SHM_NAME_MAX + 16)
int hzshm__shm_path(const char *name, int rd, char *buf, size_t cap);

/* The trust anchor (shm_trust.c): 1 if `uid` is one a reader trusts (its
 * own effective uid, root, or `agent`, the agent's uid: (uid_t)-1 for none),
 * 0 if not. r_attach accepts only a data file of a trusted owner
 * (HZSHM_EUNTRUSTED otherwise); libhzshm applies it to the agent socket's
 * peer (SO_PEERCRED) with the agent uid it resolved at hzshm_open. */
int hzshm__shm_uid_trusted(uid_t uid, uid_t agent);
/* HZSHM_AGENT_UID resolved: 0 and *uid (or (uid_t)-1 when unset or empty),
 * HZSHM_EINVAL for a value that is neither a uid nor a user. One user
 * lookup: call it once (hzshm_open), not per request. */
int hzshm__shm_agent_uid(uid_t *uid);
/* A uid or user name: all digits = a uid (below (uid_t)-1); anything else is
 * looked up as a user name (names may start with a digit: "1abc").
 * 0 and *uid, HZSHM_EINVAL (empty, out of range, no such user), -ENOMEM. */
int hzshm__shm_parse_uid(const char *v, uid_t *uid);

/* Tests: when on, the writer fills every chunk it frees with 0xdb, so a reader
 * that reads freed memory sees a value whose checksum cannot match. */
void hzshm__shm_w_set_poison(hzshm__shm_t *s, int on);

#ifdef __cplusplus
}
#endif
#endif /* HZSHM_SHM_H */
