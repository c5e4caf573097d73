/* table.c - see table.h: the agent's private hash tables on ck_hs.
 *
 * Why Concurrency Kit's ck_hs here: these tables live in the agent's own heap
 * and are touched only by its one libuv loop thread. ck_hs is an
 * open-addressed set of pointers (one probe sequence over a flat array, no
 * chain node per entry), resized and tombstone-managed for us, with our hash
 * and compare callbacks and our allocator (struct ck_malloc). Its SPMC mode
 * (one writer, concurrent readers) is more than we need: we have one thread, so
 * there are no concurrent readers and the allocator frees at once even when ck
 * asks for deferral.
 *
 * Why not in the shared segment (shm/, docs/SHM.md): ck_hs stores raw
 * pointers (valid in one address space only), allocates with malloc, and
 * relies on the readers of a retired map being known to the writer's safe
 * memory reclamation (ck_epoch et al.) in the same process. Readers in other
 * processes, which may die at any time, are outside all of that; the segment
 * uses offsets and its own reader slots instead.
 *
 * Ordering/progress: single-threaded; no atomics of ours. Operations are
 * O(1) expected; a removal leaves a tombstone (ck_hs), so after many removals
 * the map is rebuilt (O(capacity), amortized over the removals).
 *
 * Iteration: fn runs on a snapshot of the entries, not under ck_hs_next, so fn
 * may remove its node and may insert (which can grow the map) without
 * disturbing the walk. The snapshot array is sized on insert, so a walk does
 * not allocate (except a walk nested in a walk of the same table).
 */
#include "table.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { INITIAL_SIZE = 8, REBUILD_MIN = 1024 };

uint64_t table_hash(const void *key, size_t klen) {
  const uint8_t *p = key;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < klen; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* ck_hs callbacks: objects are tnode_t; a lookup passes a probe node
 * on the stack carrying key, klen and hash. */
static unsigned long node_hash(const void *obj, unsigned long seed) {
  (void)seed; /* 0: the hash is computed once per node and stored */
  return (unsigned long)((const tnode_t *)obj)->hash;
}

static bool node_equal(const void *a, const void *b) {
  const tnode_t *x = a, *y = b;
  return x->hash == y->hash && x->klen == y->klen && memcmp(x->key, y->key, x->klen) == 0;
}

static void *ck_alloc(size_t n) { return malloc(n); }
static void *ck_realloc(void *p, size_t old, size_t n, bool defer) {
  (void)old;
  (void)defer; /* no concurrent readers: nothing to defer for */
  return realloc(p, n);
}
static void ck_free(void *p, size_t n, bool defer) {
  (void)n;
  (void)defer; /* as above */
  free(p);
}
static struct ck_malloc allocator = {.malloc = ck_alloc, .realloc = ck_realloc, .free = ck_free};

static void probe_init(tnode_t *pr, const void *key, size_t klen) {
  pr->key = key;
  pr->klen = klen;
  pr->hash = table_hash(key, klen);
}

tnode_t *table_find(const table_t *t, const void *key, size_t klen) {
  if (!t->live) return NULL;
  tnode_t pr;
  probe_init(&pr, key, klen);
  /* ck_hs_get does not change the set; its prototype is not const. */
  return ck_hs_get((ck_hs_t *)&t->hs, (unsigned long)pr.hash, &pr);
}

int table_insert(table_t *t, tnode_t *node) {
  if (!t->live) {
    if (!ck_hs_init(&t->hs, CK_HS_MODE_OBJECT | CK_HS_MODE_SPMC | CK_HS_MODE_DELETE, node_hash, node_equal,
                    &allocator, INITIAL_SIZE, 0))
      return -ENOMEM;
    t->live = 1;
  }
  if (t->snapcap < t->n + 1) {
    size_t cap = t->snapcap * 2 > t->n + 1 ? t->snapcap * 2 : t->n + 1;
    if (cap < INITIAL_SIZE) cap = INITIAL_SIZE;
    tnode_t **s = realloc(t->snap, cap * sizeof *s);
    if (s == NULL) return -ENOMEM;
    t->snap = s;
    t->snapcap = cap;
  }
  node->hash = table_hash(node->key, node->klen);
  /* ck_hs_put fails if an equal object is present or the map cannot grow. */
  if (!ck_hs_put(&t->hs, (unsigned long)node->hash, node))
    return ck_hs_get(&t->hs, (unsigned long)node->hash, node) ? -EEXIST : -ENOMEM;
  t->n++;
  return 0;
}

void table_remove(table_t *t, tnode_t *node) {
  if (!t->live) return;
  /* ck_hs removes the entry *equal* to the object; a detached node shares its
   * key with the entry that replaced it, so check identity first. */
  if (ck_hs_get(&t->hs, (unsigned long)node->hash, node) != node) return;
  ck_hs_remove(&t->hs, (unsigned long)node->hash, node);
  t->n--;
  t->removed++;
  /* Tombstones lengthen probes for absent keys; clear them once removals
   * outweigh the live entries (safe inside a walk: walks use a snapshot). A
   * failed rebuild keeps the old, still correct map. */
  if (t->removed >= REBUILD_MIN + 2 * t->n) {
    if (ck_hs_rebuild(&t->hs)) t->removed = 0;
  }
}

void table_each(table_t *t, void (*fn)(tnode_t *n, void *ud), void *ud) {
  if (!t->live || t->n == 0) return;
  /* Take the table's snapshot array for the walk, so that an insert by fn (or
   * a nested walk) allocates its own instead of moving ours. */
  tnode_t **snap = t->snap;
  size_t cap = t->snapcap;
  if (snap != NULL && cap >= t->n) {
    t->snap = NULL;
    t->snapcap = 0;
  } else { /* only inside another walk of this table */
    cap = t->n;
    snap = malloc(cap * sizeof *snap);
    if (snap == NULL) return;
  }
  size_t k = 0;
  ck_hs_iterator_t it = CK_HS_ITERATOR_INITIALIZER;
  void *obj;
  while (k < cap && ck_hs_next(&t->hs, &it, &obj)) snap[k++] = obj;
  /* fn may remove its own node and insert new ones, but never frees another
   * node (table.h), so every snapshot entry is still valid when reached. */
  for (size_t i = 0; i < k; i++) fn(snap[i], ud);
  if (t->snap == NULL || t->snapcap < cap) { /* keep the larger array */
    free(t->snap);
    t->snap = snap;
    t->snapcap = cap;
  } else {
    free(snap);
  }
}

void table_free(table_t *t) {
  if (t->live) ck_hs_destroy(&t->hs);
  free(t->snap);
  memset(t, 0, sizeof *t);
}
