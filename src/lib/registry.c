/* registry.c - the process's session registry: one shared, refcounted session
 * core per (hzshm_t, session name), found lock-free by any thread.
 *
 * What liburcu does here: the registry is a cds_lfht (urcu/rculfhash.h, a
 * lock-free resizable RCU hash table) in the urcu-bp flavour, which needs no
 * thread registration (libhzshm cannot ask its callers' threads to register).
 * hzshm_session_open from any thread looks the core up inside an RCU read-side
 * section and takes a reference, so all handles and threads of one session
 * share one core, hence one cached directory reference (resolved once, not
 * once per handle). The last hzshm_session_close unlinks the core and waits
 * for a grace period (synchronize_rcu) before freeing it, so a concurrent
 * lookup that still sees the node never touches freed memory. We use no
 * call_rcu (no helper thread to handle across fork); closing the last handle
 * of a session therefore costs one grace period.
 *
 * What liburcu cannot do here: it tracks readers of *this* process only. The
 * shared segment is read by other processes, which may die mid-read and whose
 * threads liburcu never sees, so the segment has its own reader slots and
 * reclamation (shm/, docs/SHM.md). A core caches only a reference into the
 * segment; the segment validates it on every use (generation check).
 *
 * Ordering and progress:
 *  - open: lock-free. Lookup + increment-if-nonzero of refs inside a read-side
 *    section. A core whose refs reached 0 is being retired: the opener
 *    replaces its node with a fresh core (cds_lfht_replace), or retries if it
 *    was unlinked meanwhile. New cores enter with cds_lfht_add_unique (full
 *    barriers around its commit publish the initialized core).
 *  - close: refs decremented with acq_rel; the thread that takes it to 0 owns
 *    the core's retirement: cds_lfht_del (ENOENT if an opener replaced it:
 *    fine), synchronize_rcu, free. Blocking (grace period).
 *  - fork: urcu-bp's fork handlers are called by the process's one atfork
 *    handler (lib.c, through hzshm__registry_fork_*), so a child (which may
 *    open new handles and close them: synchronize_rcu) has a consistent
 *    urcu-bp registry.
 *    Cores of inherited handles stay untouched in the child (hzshm.h caveat 1).
 *  - TSan cannot see the ordering liburcu provides (uninstrumented, inline
 *    asm barriers), so the grace-period and publication edges are annotated
 *    with __tsan_release/__tsan_acquire on the core (TSAN_* below).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <urcu-bp.h>
#include <urcu/rculfhash.h>

#include "lib_int.h"

#if defined(__SANITIZE_THREAD__)
#define HZSHM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HZSHM_TSAN 1
#endif
#endif
#ifdef HZSHM_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TSAN_ACQUIRE(p) __tsan_acquire(p)
#define TSAN_RELEASE(p) __tsan_release(p)
#else
#define TSAN_ACQUIRE(p) ((void)(p))
#define TSAN_RELEASE(p) ((void)(p))
#endif

struct hzshm__core {
  struct cds_lfht_node node; /* in the registry under (hid, name) */
  atomic_uint refs;          /* session handles holding the core; 0 = retiring */
  uint64_t hid;              /* hzshm_t id (handles never share cores) */
  uint64_t hash;
  hzshm__refcache_t cache;   /* the shared cached directory reference */
  size_t namelen;
  char name[];               /* NUL-terminated */
};

enum { INITIAL_BUCKETS = 64 };

static struct cds_lfht *registry;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static atomic_ulong ncores;   /* live cores, drives manual resizing */
static atomic_ulong nbuckets; /* current target size */
static atomic_flag resizing = ATOMIC_FLAG_INIT;

static void registry_init(void) {
  /* No CDS_LFHT_AUTO_RESIZE: automatic resizing runs in a call_rcu worker
   * thread; we resize synchronously in the opening thread instead. */
  registry = cds_lfht_new(INITIAL_BUCKETS, INITIAL_BUCKETS, 0, 0, NULL);
  /* Relaxed: published to other threads by pthread_once. */
  atomic_store_explicit(&nbuckets, INITIAL_BUCKETS, memory_order_relaxed);
}

/* urcu-bp's fork steps, for lib.c's atfork handler (the order is there). */
void hzshm__registry_fork_prepare(void) { urcu_bp_before_fork(); }
void hzshm__registry_fork_parent(void) { urcu_bp_after_fork_parent(); }
void hzshm__registry_fork_child(void) { urcu_bp_after_fork_child(); }

typedef struct {
  uint64_t hid;
  const char *name;
  size_t namelen;
} key_t_;

static int match(struct cds_lfht_node *node, const void *k) {
  hzshm__core_t *c = caa_container_of(node, hzshm__core_t, node);
  /* Pairs with TSAN_RELEASE before the core is published (core_new). */
  TSAN_ACQUIRE(c);
  const key_t_ *key = k;
  int eq = c->hid == key->hid && c->namelen == key->namelen && memcmp(c->name, key->name, key->namelen) == 0;
  /* Pairs with TSAN_ACQUIRE before the free in hzshm__registry_put: this read
   * is inside a read-side section, so it happens before the grace period ends. */
  TSAN_RELEASE(c);
  return eq;
}

static uint64_t key_hash(const key_t_ *k) {
  uint64_t h = 1469598103934665603ull ^ (k->hid * 0x9e3779b97f4a7c15ull);
  const unsigned char *p = (const unsigned char *)k->name;
  for (size_t i = 0; i < k->namelen; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

/* Increment-if-nonzero. 1 if a reference was taken. */
static int core_tryget(hzshm__core_t *c) {
  /* Relaxed load: the CAS validates. */
  unsigned r = atomic_load_explicit(&c->refs, memory_order_relaxed);
  while (r != 0) {
    /* Relaxed on success: the core's fields were published before it entered
     * the registry (add_unique/replace barriers) and the cache has its own
     * seqlock; the reference only keeps the memory alive, and its release is
     * ordered by the acq_rel decrement in hzshm__registry_put. */
    if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r + 1, memory_order_relaxed, memory_order_relaxed))
      return 1;
  }
  return 0;
}

static hzshm__core_t *core_new(const key_t_ *k, uint64_t hash) {
  hzshm__core_t *c = calloc(1, sizeof *c + k->namelen + 1);
  if (c == NULL) return NULL;
  cds_lfht_node_init(&c->node);
  atomic_init(&c->refs, 1);
  c->hid = k->hid;
  c->hash = hash;
  c->namelen = k->namelen;
  memcpy(c->name, k->name, k->namelen);
  atomic_init(&c->cache.seq, 0);
  atomic_init(&c->cache.idx, 0);
  atomic_init(&c->cache.gen, 0);
  /* Pairs with TSAN_ACQUIRE in match: the initialization above happens before
   * any lookup that finds the core (liburcu's own barriers, invisible to TSan). */
  TSAN_RELEASE(c);
  return c;
}

static void maybe_grow(void) {
  /* Relaxed: sizes are heuristics; cds_lfht_resize is safe at any time. */
  unsigned long n = atomic_load_explicit(&ncores, memory_order_relaxed);
  unsigned long b = atomic_load_explicit(&nbuckets, memory_order_relaxed);
  if (n <= 2 * b) return;
  /* Acquire/release on the flag: pairs with the clear below, so one resizer
   * at a time sees the size the previous one stored. */
  if (atomic_flag_test_and_set_explicit(&resizing, memory_order_acquire)) return;
  b = atomic_load_explicit(&nbuckets, memory_order_relaxed);
  if (n > 2 * b) {
    cds_lfht_resize(registry, b * 4); /* synchronous, outside any read-side section */
    atomic_store_explicit(&nbuckets, b * 4, memory_order_relaxed);
  }
  atomic_flag_clear_explicit(&resizing, memory_order_release);
}

int hzshm__registry_get(uint64_t hid, const char *name, size_t namelen, hzshm__core_t **out) {
  pthread_once(&registry_once, registry_init);
  if (registry == NULL) return -ENOMEM;
  key_t_ k = {hid, name, namelen};
  uint64_t hash = key_hash(&k);
  hzshm__core_t *fresh = NULL, *found = NULL;
  int rc = 0, added = 0;
  while (found == NULL) {
    rcu_read_lock();
    struct cds_lfht_iter it;
    cds_lfht_lookup(registry, (unsigned long)hash, match, &k, &it);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
    hzshm__core_t *c = node ? caa_container_of(node, hzshm__core_t, node) : NULL;
    if (c && core_tryget(c)) {
      found = c;
    } else {
      if (fresh == NULL && (fresh = core_new(&k, hash)) == NULL) {
        rcu_read_unlock();
        rc = -ENOMEM;
        goto out;
      }
      if (c == NULL) { /* absent: add, unless another thread just did */
        if (cds_lfht_add_unique(registry, (unsigned long)hash, match, &k, &fresh->node) == &fresh->node) {
          found = fresh;
          fresh = NULL;
          added = 1;
        }
      } else if (cds_lfht_replace(registry, &it, (unsigned long)hash, match, &k, &fresh->node) == 0) {
        /* c is retiring (refs 0): its closer's cds_lfht_del now fails with
         * -ENOENT and it frees c after its grace period, as usual. */
        found = fresh;
        fresh = NULL;
        added = 1;
      }
    }
    /* Pairs with TSAN_ACQUIRE in hzshm__registry_put (see match). */
    if (c) TSAN_RELEASE(c);
    rcu_read_unlock();
  }
  if (added) {
    /* Relaxed: a count for the resize heuristic only. */
    atomic_fetch_add_explicit(&ncores, 1, memory_order_relaxed);
    maybe_grow();
  }
out:
  free(fresh); /* never published: another thread added the core first, or it was not needed */
  if (rc == 0) *out = found;
  return rc;
}

void hzshm__registry_put(hzshm__core_t *c) {
  /* Acq_rel: release orders this handle's uses of the core before the
   * retirement; acquire makes the retiring thread see every other handle's. */
  if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) return;
  rcu_read_lock();
  cds_lfht_del(registry, &c->node); /* -ENOENT if an opener replaced it */
  rcu_read_unlock();
  synchronize_rcu();
  /* Pairs with TSAN_RELEASE in lookups (hzshm__registry_get): every read-side
   * section that could see c has ended (the grace period above). */
  TSAN_ACQUIRE(c);
  /* Relaxed: a count for the resize heuristic only. */
  atomic_fetch_sub_explicit(&ncores, 1, memory_order_relaxed);
  free(c);
}

hzshm__refcache_t *hzshm__core_cache(hzshm__core_t *c) { return &c->cache; }
const char *hzshm__core_name(const hzshm__core_t *c, size_t *len) {
  *len = c->namelen;
  return c->name;
}
