/* lib.c - hzshm_open/close, session handles, fork re-attach, statistics.
 *
 * Concurrency: hzshm_t and hzshm_session_t are shared by any number of
 * threads. The mutable shared state here is the session's cached directory
 * reference (a sequence lock in the shared session core, see lib_int.h and
 * registry.c), the handle id counter, the fork counter and the list of open
 * handles.
 *
 * Fork: a child inherits every open handle. Its threads are gone, but a mutex
 * of a handle may have been held by one of them at fork() and stays locked in
 * the child, and a connection may have been mid-request (its socket is shared
 * with the parent). So the atfork child handler, while the child is still
 * single-threaded, walks the list of open handles (its lock taken by the
 * prepare handler, so the list is whole), re-initializes their mutexes and
 * closes the child's copies of their sockets (fd = -1: reconnected lazily).
 * The inherited segment handle returns HZSHM_ECLOSED in the child (shm/); the
 * first call on h in the child sees h->fork_gen behind hzshm__lib_fork_gen and
 * attaches the segment again under follow_mu (new reader slots of this
 * process), keeping the inherited handle in h->retired (freed at
 * hzshm_close, which in a child only frees memory). Session handles follow h:
 * their cached reference names the old segment handle, so it is resolved
 * again. A child therefore never sees HZSHM_EFORKED.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc_counters.h"
#include "stats.h"
#include "lib_int.h"
#include "utf8.h"

atomic_uint hzshm__lib_fork_gen;

static pthread_mutex_t handles_mu = PTHREAD_MUTEX_INITIALIZER; /* the list of open handles */
static hzshm_t *handles;

/* The process's one fork handler: libhzshm's steps, shm/'s
 * (hzshm__shm_fork_*, shm.h) and urcu-bp's (hzshm__registry_fork_*),
 * registered once when the library is loaded (so also for a program that
 * opened segments through shm/ before its first hzshm_open).
 *
 * Order, deadlock-free: prepare takes shm/'s handle list lock (reg_mu), then
 * handles_mu, then urcu-bp's locks (urcu_bp_before_fork: its registry and
 * grace-period mutexes, signals blocked); parent releases in the reverse
 * order; child repairs urcu-bp first (so the child may use RCU at once),
 * then this library's state, then shm/'s handles. Each of these locks is a
 * leaf: no code holds one while taking another (reg_mu guards only a list
 * insert/remove; handles_mu likewise; urcu-bp holds its mutexes only inside
 * its own calls and calls none of ours: no call_rcu). So a thread holding one
 * never waits for the others, the forking thread's prepare gets each in turn
 * whatever the other threads do, and no order of them can close a cycle; the
 * order above is the one the three separate handlers ran in before (shm,
 * lib, urcu for prepare). Locks that do nest (follow_mu -> reg_mu in
 * reattach, a connection's mu) are not taken by prepare: the child makes
 * them anew. */
static void on_fork_prepare(void) {
  hzshm__shm_fork_prepare();
  pthread_mutex_lock(&handles_mu);
  hzshm__registry_fork_prepare();
}
static void on_fork_parent(void) {
  hzshm__registry_fork_parent();
  pthread_mutex_unlock(&handles_mu);
  hzshm__shm_fork_parent();
}
static void on_fork_child(void) {
  hzshm__registry_fork_child();
  /* Relaxed: the child is single-threaded right after fork; later threads it
   * creates are ordered after this store by pthread_create. */
  atomic_fetch_add_explicit(&hzshm__lib_fork_gen, 1, memory_order_relaxed);
  /* Single-threaded: no lock is contended; mutexes that a parent thread held
   * at fork() would stay locked forever, so they are made anew. */
  for (hzshm_t *h = handles; h; h = h->next) {
    pthread_mutex_init(&h->follow_mu, NULL);
    for (uint32_t i = 0; i < h->nconn; i++) {
      pthread_mutex_init(&h->conns[i].mu, NULL);
      if (h->conns[i].fd >= 0) close(h->conns[i].fd); /* our copy: the parent's socket stays open */
      h->conns[i].fd = -1;
    }
  }
  pthread_mutex_unlock(&handles_mu); /* this thread took it in prepare (as reg_mu, shm_open.c) */
  hzshm__shm_fork_child();
}
__attribute__((constructor)) static void install_atfork(void) {
  pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

/* Relaxed: ids only need to be unique, not ordered. */
static atomic_uint_fast64_t next_handle_id = 1;

/* In a fork child: attach the segment for this process (see "Fork" above). */
static int reattach(hzshm_t *h) {
  int rc = 0;
  pthread_mutex_lock(&h->follow_mu);
  unsigned gen = atomic_load_explicit(&hzshm__lib_fork_gen, memory_order_relaxed); /* see hzshm__lib_inherited */
  if (atomic_load_explicit(&h->fork_gen, memory_order_relaxed) != gen) { /* under follow_mu: not done meanwhile */
    hzshm__shm_t *nw = NULL, **grown = realloc(h->retired, (h->nretired + 1) * sizeof *grown);
    if (grown == NULL) rc = -ENOMEM;
    else {
      h->retired = grown;
      rc = hzshm__shm_r_attach_as(h->name, h->agent_uid, &nw);
    }
    if (rc == 0) {
      h->retired[h->nretired++] = hzshm__lib_shm(h); /* the inherited one: ECLOSED here, freed at close */
      /* release: pairs with the acquire in hzshm__lib_shm */
      atomic_store_explicit(&h->shm, nw, memory_order_release);
      /* release: pairs with the acquire in hzshm__lib_inherited */
      atomic_store_explicit(&h->fork_gen, gen, memory_order_release);
    }
  }
  pthread_mutex_unlock(&h->follow_mu);
  return rc;
}

int hzshm__lib_check(hzshm_t *h) {
  if (h == NULL) return HZSHM_EINVAL;
  return hzshm__lib_inherited(h) ? reattach(h) : 0;
}

int hzshm_open(const char *name, const hzshm_opts_t *opts, hzshm_t **out) {
  int rc = 0;
  hzshm_t *h = NULL;
  if (name == NULL || out == NULL) return HZSHM_EINVAL;
  hzshm_opts_t o = {0};
  if (opts) o = *opts;
  size_t plen = o.prefix ? strlen(o.prefix) : 0;
  if (plen >= HZSHM_SESSION_MAX) return HZSHM_ETOOBIG;
  if (plen && !hzshm__utf8_valid(o.prefix, plen)) return HZSHM_EINVAL;
  if (o.connections > 64) return HZSHM_EINVAL;
  uid_t agent_uid;
  /* Resolved once (a user lookup), kept in the handle: re-attaches and
   * connects use it. A bad value fails here, even with no segment. */
  if (hzshm__shm_agent_uid(&agent_uid) != 0) return HZSHM_EINVAL;
  h = calloc(1, sizeof *h);
  if (h == NULL) return -ENOMEM;
  atomic_init(&h->fork_gen, atomic_load_explicit(&hzshm__lib_fork_gen, memory_order_relaxed)); /* see hzshm__lib_inherited */
  h->id = atomic_fetch_add_explicit(&next_handle_id, 1, memory_order_relaxed); /* see next_handle_id */
  h->timeout_ms = o.timeout_ms ? o.timeout_ms : 15000;
  h->agent_uid = agent_uid;
  h->nconn = o.connections ? o.connections : 4;
  h->prefixlen = plen;
  h->prefix = strndup(plen ? o.prefix : "", plen);
  h->conns = calloc(h->nconn, sizeof *h->conns);
  if (h->prefix == NULL || h->conns == NULL) {
    rc = -ENOMEM;
    goto fail;
  }
  for (uint32_t i = 0; i < h->nconn; i++) {
    pthread_mutex_init(&h->conns[i].mu, NULL);
    h->conns[i].fd = -1;
  }
  hzshm__shm_t *shm = NULL;
  rc = hzshm__shm_r_attach_as(name, agent_uid, &shm);
  if (rc != 0) goto fail;
  atomic_init(&h->shm, shm);
  snprintf(h->name, sizeof h->name, "%s", name);
  pthread_mutex_init(&h->follow_mu, NULL);
  pthread_mutex_lock(&handles_mu);
  h->next = handles;
  if (handles) handles->prev = h;
  handles = h;
  pthread_mutex_unlock(&handles_mu);
  *out = h;
  return 0;
fail:
  if (h->conns) {
    for (uint32_t i = 0; i < h->nconn; i++) pthread_mutex_destroy(&h->conns[i].mu);
  }
  free(h->conns);
  free(h->prefix);
  free(h);
  return rc;
}

void hzshm_close(hzshm_t *h) {
  if (h == NULL) return;
  pthread_mutex_lock(&handles_mu);
  if (h->prev) h->prev->next = h->next;
  else handles = h->next;
  if (h->next) h->next->prev = h->prev;
  pthread_mutex_unlock(&handles_mu);
  /* In a child the connections are this process's (the fork handler closed
   * the inherited ones) and inherited segment handles only free memory
   * (shm_open.c): the parent's reader slots are untouched. */
  hzshm__lib_conn_close_all(h);
  hzshm__shm_close(hzshm__lib_shm(h));
  for (size_t i = 0; i < h->nretired; i++) hzshm__shm_close(h->retired[i]);
  free(h->retired);
  pthread_mutex_destroy(&h->follow_mu);
  for (uint32_t i = 0; i < h->nconn; i++) {
    free(h->conns[i].buf);
    pthread_mutex_destroy(&h->conns[i].mu);
  }
  free(h->conns);
  free(h->prefix);
  free(h);
}

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int hzshm__lib_follow(hzshm_t *h, hzshm__shm_t *cur) {
  uint64_t now = mono_ms();
  /* relaxed: a rate limit; the mutex below orders the re-attach itself */
  uint64_t last = atomic_load_explicit(&h->follow_ms, memory_order_relaxed);
  if (now - last < 50 || !atomic_compare_exchange_strong_explicit(&h->follow_ms, &last, now, memory_order_relaxed,
                                                                  memory_order_relaxed))
    return hzshm__lib_shm(h) != cur;
  int moved = 0;
  pthread_mutex_lock(&h->follow_mu);
  hzshm__shm_t *nw = NULL;
  hzshm__shm_t **grown = realloc(h->retired, (h->nretired + 1) * sizeof *grown);
  if (grown) h->retired = grown;
  if (grown && hzshm__lib_shm(h) == cur && hzshm__shm_r_replaced(cur) == 1 && hzshm__shm_r_attach_as(h->name, h->agent_uid, &nw) == 0) {
    h->retired[h->nretired++] = cur; /* a thread may still be inside it: closed at hzshm_close */
    /* release: pairs with the acquire in hzshm__lib_shm */
    atomic_store_explicit(&h->shm, nw, memory_order_release);
  }
  moved = hzshm__lib_shm(h) != cur;
  pthread_mutex_unlock(&h->follow_mu);
  return moved;
}

int hzshm_session_open(hzshm_t *h, const char *sid, size_t len, hzshm_session_t **out) {
  int rc = hzshm__lib_check(h);
  if (rc != 0) return rc;
  if (out == NULL || (sid == NULL && len)) return HZSHM_EINVAL;
  if (len == 0) return HZSHM_EEMPTY;
  if (len + h->prefixlen > HZSHM_SESSION_MAX) return HZSHM_ETOOBIG;
  if (memchr(sid, 0, len) != NULL || !hzshm__utf8_valid(sid, len)) return HZSHM_EBADSESSION;
  hzshm_session_t *s = calloc(1, sizeof *s);
  if (s == NULL) return -ENOMEM;
  char name[HZSHM_SESSION_MAX];
  memcpy(name, h->prefix, h->prefixlen);
  memcpy(name + h->prefixlen, sid, len);
  /* Every handle of this session in this process shares one core (and so one
   * cached directory reference): registry.c. */
  rc = hzshm__registry_get(h->id, name, h->prefixlen + len, &s->core);
  if (rc != 0) {
    free(s);
    return rc;
  }
  s->h = h;
  s->cache = hzshm__core_cache(s->core);
  s->name = hzshm__core_name(s->core, &s->namelen);
  *out = s;
  return 0;
}

void hzshm_session_close(hzshm_session_t *s) {
  if (s == NULL) return;
  /* The registry is this process's copy (urcu-bp's fork handlers keep it
   * usable in a child), so a child drops its reference like anybody. */
  hzshm__registry_put(s->core);
  free(s);
}

int hzshm_stats(hzshm_t *h, hzshm_stats_t *st) {
  int rc = hzshm__lib_check(h);
  if (rc != 0) return rc;
  if (st == NULL) return HZSHM_EINVAL;
  return hzshm__stats_read(hzshm__lib_shm(h), st);
}
