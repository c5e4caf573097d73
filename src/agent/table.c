/* table.c - see table.h. FNV-1a hashing; chains in buckets. */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t hzshm__table_hash(const void *key, size_t klen) {
  const uint8_t *p = key;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < klen; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

hzshm__tnode_t *hzshm__table_find(const hzshm__table_t *t, const void *key, size_t klen) {
  if (t->nb == 0) return NULL;
  uint64_t h = hzshm__table_hash(key, klen);
  for (hzshm__tnode_t *n = t->b[h & (t->nb - 1)]; n; n = n->next)
    if (n->hash == h && n->klen == klen && memcmp(n->key, key, klen) == 0) return n;
  return NULL;
}

static int grow(hzshm__table_t *t) {
  size_t nb = t->nb ? t->nb * 2 : 64;
  hzshm__tnode_t **b = calloc(nb, sizeof *b);
  if (b == NULL) return -ENOMEM;
  for (size_t i = 0; i < t->nb; i++) {
    hzshm__tnode_t *n = t->b[i];
    while (n) {
      hzshm__tnode_t *next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
      n = next;
    }
  }
  free(t->b);
  t->b = b;
  t->nb = nb;
  return 0;
}

int hzshm__table_insert(hzshm__table_t *t, hzshm__tnode_t *node) {
  if (t->n >= t->nb) {
    int rc = grow(t);
    if (rc) return rc;
  }
  node->hash = hzshm__table_hash(node->key, node->klen);
  size_t i = node->hash & (t->nb - 1);
  node->next = t->b[i];
  t->b[i] = node;
  t->n++;
  return 0;
}

void hzshm__table_remove(hzshm__table_t *t, hzshm__tnode_t *node) {
  if (t->nb == 0) return;
  hzshm__tnode_t **pp = &t->b[node->hash & (t->nb - 1)];
  for (; *pp; pp = &(*pp)->next) {
    if (*pp == node) {
      *pp = node->next;
      t->n--;
      return;
    }
  }
}

void hzshm__table_each(hzshm__table_t *t, void (*fn)(hzshm__tnode_t *n, void *ud), void *ud) {
  for (size_t i = 0; i < t->nb; i++) {
    hzshm__tnode_t *n = t->b[i];
    while (n) {
      hzshm__tnode_t *next = n->next;
      fn(n, ud);
      n = next;
    }
  }
}

void hzshm__table_free(hzshm__table_t *t) {
  free(t->b);
  t->b = NULL;
  t->nb = t->n = 0;
}
