/* table.h - a small intrusive chained hash table keyed by bytes, for the
 * agent's private bookkeeping (sessions, reservations). Single-threaded (the
 * agent's loop thread): no atomics. Grows by doubling at load factor 1. */
#ifndef HZSHM_AGENT_TABLE_H
#define HZSHM_AGENT_TABLE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hzshm__tnode {
  struct hzshm__tnode *next;
  uint64_t hash;
  const void *key; /* owned by the embedding object */
  size_t klen;
} hzshm__tnode_t;

typedef struct {
  hzshm__tnode_t **b;
  size_t nb; /* power of two, or 0 before first insert */
  size_t n;
} hzshm__table_t;

uint64_t hzshm__table_hash(const void *key, size_t klen);
hzshm__tnode_t *hzshm__table_find(const hzshm__table_t *t, const void *key, size_t klen);
/* node->key/klen must be set; the key must not be present. 0 or -ENOMEM. */
int hzshm__table_insert(hzshm__table_t *t, hzshm__tnode_t *node);
void hzshm__table_remove(hzshm__table_t *t, hzshm__tnode_t *node);
/* Calls fn on every node; fn may remove (only) the node it is given. */
void hzshm__table_each(hzshm__table_t *t, void (*fn)(hzshm__tnode_t *n, void *ud), void *ud);
void hzshm__table_free(hzshm__table_t *t); /* frees the bucket array, not the nodes */

#endif
