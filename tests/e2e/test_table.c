/* test_table.c - the agent's private hash table (src/agent/table.c, on ck_hs):
 * find/insert/remove against a reference array, duplicate keys refused,
 * removal by identity (a detached node sharing its key is left alone), walks
 * that remove their node and insert, and enough churn to force rebuilds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner.h"
#include "table.h"

typedef struct {
  tnode_t node; /* first: the table hands back node pointers */
  char key[24];
  int in;              /* reference: 1 if it should be in the table */
  int seen;
} item_t;

enum { N = 4096 };
static item_t items[N];

static void item_init(item_t *it, unsigned i) {
  memset(it, 0, sizeof *it);
  snprintf(it->key, sizeof it->key, "key-%u", i);
  it->node.key = it->key;
  it->node.klen = strlen(it->key);
}

static void check_all(table_t *t) {
  size_t n = 0;
  for (unsigned i = 0; i < N; i++) {
    tnode_t *f = table_find(t, items[i].key, strlen(items[i].key));
    CHECK_EQ(f, (items[i].in ? &items[i].node : NULL));
    n += (size_t)items[i].in;
  }
  CHECK_EQ(t->n, n);
  CHECK(table_find(t, "absent", 6) == NULL);
}

TEST_CASE(basic) {
  table_t t = {0};
  CHECK(table_find(&t, "x", 1) == NULL); /* zeroed table is empty */
  table_remove(&t, &items[0].node);        /* and removal is a no-op */
  for (unsigned i = 0; i < N; i++) item_init(&items[i], i);
  for (unsigned i = 0; i < N; i++) {
    CHECK_EQ(table_insert(&t, &items[i].node), 0);
    items[i].in = 1;
  }
  check_all(&t);
  /* A second node with a present key is refused and changes nothing. */
  item_t dup;
  item_init(&dup, 7);
  CHECK_EQ(table_insert(&t, &dup.node), -EEXIST);
  CHECK(table_find(&t, dup.key, strlen(dup.key)) == &items[7].node);
  check_all(&t);
  /* Removal is by identity: dup (same key, not in the table) removes nothing. */
  table_remove(&t, &dup.node);
  check_all(&t);
  /* Detach 7, put dup in its place, then removing the detached 7 again must
   * leave dup (fill.c replaces canceled reservations this way). */
  table_remove(&t, &items[7].node);
  CHECK_EQ(table_insert(&t, &dup.node), 0);
  table_remove(&t, &items[7].node);
  CHECK(table_find(&t, dup.key, strlen(dup.key)) == &dup.node);
  table_remove(&t, &dup.node);
  CHECK_EQ(table_insert(&t, &items[7].node), 0);
  check_all(&t);
  /* Churn: far more removals than entries, so tombstones are rebuilt away. */
  unsigned x = 12345;
  for (int r = 0; r < 200000; r++) {
    x = x * 1103515245u + 12345u;
    item_t *it = &items[(x >> 8) % N];
    if (it->in) {
      table_remove(&t, &it->node);
      it->in = 0;
    } else {
      CHECK_EQ(table_insert(&t, &it->node), 0);
      it->in = 1;
    }
  }
  check_all(&t);
  table_free(&t);
  CHECK_EQ(t.n, 0);
  CHECK(table_find(&t, items[0].key, strlen(items[0].key)) == NULL);
}

/* ---- walks ---- */
static table_t wt;
static unsigned next_new;
static item_t extra[N];

static void walk_fn(tnode_t *n, void *ud) {
  item_t *it = (item_t *)n;
  CHECK(it->in && !it->seen); /* only present nodes, each once */
  it->seen = 1;
  (*(unsigned *)ud)++;
  unsigned i = (unsigned)(it - items);
  if (it >= items && it < items + N && i % 3 == 0) { /* remove own node */
    table_remove(&wt, n);
    it->in = 0;
  }
  if (it >= items && it < items + N && i % 5 == 0 && next_new < N) { /* insert (may grow the map) */
    item_t *e = &extra[next_new];
    item_init(e, 100000 + next_new++);
    CHECK_EQ(table_insert(&wt, &e->node), 0);
    e->in = 1;
  }
}

static unsigned nested_calls;
static void nested_inner(tnode_t *n, void *ud) {
  (void)n;
  (void)ud;
  nested_calls++;
}
static void nested_outer(tnode_t *n, void *ud) {
  (void)n;
  unsigned *k = ud;
  if ((*k)++ == 0) table_each(&wt, nested_inner, NULL);
}

TEST_CASE(walks) {
  for (unsigned i = 0; i < N; i++) item_init(&items[i], i);
  for (unsigned i = 0; i < N; i++) {
    CHECK_EQ(table_insert(&wt, &items[i].node), 0);
    items[i].in = 1;
  }
  unsigned visited = 0;
  table_each(&wt, walk_fn, &visited);
  CHECK_EQ(visited, N);                       /* inserted nodes are not visited */
  for (unsigned i = 0; i < N; i++) CHECK(items[i].seen);
  for (unsigned i = 0; i < next_new; i++) CHECK(!extra[i].seen);
  for (unsigned i = 0; i < N; i++) {
    tnode_t *f = table_find(&wt, items[i].key, strlen(items[i].key));
    CHECK_EQ(f, (items[i].in ? &items[i].node : NULL));
  }
  for (unsigned i = 0; i < next_new; i++)
    CHECK(table_find(&wt, extra[i].key, strlen(extra[i].key)) == &extra[i].node);
  size_t want = next_new;
  for (unsigned i = 0; i < N; i++) want += (size_t)items[i].in;
  CHECK_EQ(wt.n, want);
  /* A walk nested in a walk of the same table sees every node. */
  unsigned k = 0;
  table_each(&wt, nested_outer, &k);
  CHECK_EQ(k, want);
  CHECK_EQ(nested_calls, want);
  table_free(&wt);
}
