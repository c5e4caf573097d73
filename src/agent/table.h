/* table.h - the agent's private byte-keyed hash tables (sessions by name,
 * reservations by key): Concurrency Kit's ck_hs holding pointers to intrusive
 * nodes. Used only by the agent's loop thread (see table.c for why ck_hs fits
 * here and not in the shared segment). A zeroed table is valid and empty; its
 * memory is allocated on the first insert. */
#ifndef HZSHM_AGENT_TABLE_H
#define HZSHM_AGENT_TABLE_H

#include <ck_hs.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tnode {
  uint64_t hash;   /* table_hash(key, klen), set by insert */
  const void *key; /* owned by the embedding object */
  size_t klen;
} tnode_t;

typedef struct {
  ck_hs_t hs;
  int live;             /* hs initialized (first insert) */
  size_t n;             /* entries (== ck_hs_count) */
  size_t removed;       /* removals since the last rebuild (ck_hs leaves tombstones) */
  tnode_t **snap; /* walk snapshot array, kept >= n by insert (outside walks) */
  size_t snapcap;
} table_t;

uint64_t table_hash(const void *key, size_t klen);
tnode_t *table_find(const table_t *t, const void *key, size_t klen);
/* node->key/klen must be set. 0; -EEXIST if the key is present (nothing
 * changed); -ENOMEM. */
int table_insert(table_t *t, tnode_t *node);
/* Removes node if it is the table's entry for its key (a detached node, or one
 * never inserted, is left alone). */
void table_remove(table_t *t, tnode_t *node);
/* Calls fn on every node present when the call starts. fn may remove (only)
 * the node it is given, and may insert; inserted nodes are not visited. */
void table_each(table_t *t, void (*fn)(tnode_t *n, void *ud), void *ud);
void table_free(table_t *t); /* frees the table's memory, not the nodes */

#endif
