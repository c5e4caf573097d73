/* lib.c - hzshm_open/close, session handles, fork detection, statistics.
 *
 * Concurrency: hzshm_t and hzshm_session_t are shared by any number of
 * threads. The mutable shared state here is the session's cached directory
 * reference (a sequence lock in the shared session core, see lib_int.h and
 * registry.c), the handle id counter and the fork counter.
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

atomic_uint hzshm__lib_fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void) {
  /* Relaxed: the child is single-threaded right after fork; later threads it
   * creates are ordered after this store by pthread_create. */
  atomic_fetch_add_explicit(&hzshm__lib_fork_gen, 1, memory_order_relaxed);
}
static void install_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

/* Relaxed: ids only need to be unique, not ordered. */
static atomic_uint_fast64_t next_handle_id = 1;

int hzshm__lib_check(const hzshm_t *h) {
  if (h == NULL) return HZSHM_EINVAL;
  /* Relaxed: the counter only changes in a fresh child before it can run
   * other threads (see on_fork_child), so no ordering is needed. */
  if (atomic_load_explicit(&hzshm__lib_fork_gen, memory_order_relaxed) != h->fork_gen) return HZSHM_EFORKED;
  return 0;
}

int hzshm_open(const char *name, const hzshm_opts_t *opts, hzshm_t **out) {
  int rc = 0;
  hzshm_t *h = NULL;
  if (name == NULL || out == NULL) return HZSHM_EINVAL;
  pthread_once(&atfork_once, install_atfork);
  hzshm_opts_t o = {0};
  if (opts) o = *opts;
  size_t plen = o.prefix ? strlen(o.prefix) : 0;
  if (plen >= HZSHM_SESSION_MAX) return HZSHM_ETOOBIG;
  if (plen && !hzshm__ipc_utf8_valid(o.prefix, plen)) return HZSHM_EINVAL;
  if (o.connections > 64) return HZSHM_EINVAL;
  h = calloc(1, sizeof *h);
  if (h == NULL) return -ENOMEM;
  h->fork_gen = atomic_load_explicit(&hzshm__lib_fork_gen, memory_order_relaxed); /* see hzshm__lib_check */
  h->id = atomic_fetch_add_explicit(&next_handle_id, 1, memory_order_relaxed); /* see next_handle_id */
  h->timeout_ms = o.timeout_ms ? o.timeout_ms : 15000;
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
  rc = hzshm__shm_r_attach(name, &shm);
  if (rc != 0) goto fail;
  atomic_init(&h->shm, shm);
  snprintf(h->name, sizeof h->name, "%s", name);
  pthread_mutex_init(&h->follow_mu, NULL);
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
  int forked = hzshm__lib_check(h) == HZSHM_EFORKED;
  if (!forked) {
    hzshm__conn_close_all(h);
    hzshm__shm_close(hzshm__lib_shm(h));
    for (size_t i = 0; i < h->nretired; i++) hzshm__shm_close(h->retired[i]);
  } else {
    /* The child must not release the parent's reader slots or talk on the
     * parent's connections: close only our copies of the descriptors. */
    for (uint32_t i = 0; i < h->nconn; i++)
      if (h->conns[i].fd >= 0) close(h->conns[i].fd);
    /* forked copies: free only the child's memory (shm_open.c) */
    hzshm__shm_close(hzshm__lib_shm(h));
    for (size_t i = 0; i < h->nretired; i++) hzshm__shm_close(h->retired[i]);
  }
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
  if (grown && hzshm__lib_shm(h) == cur && hzshm__shm_r_replaced(cur) == 1 && hzshm__shm_r_attach(h->name, &nw) == 0) {
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
  if (memchr(sid, 0, len) != NULL || !hzshm__ipc_utf8_valid(sid, len)) return HZSHM_EBADSESSION;
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
  /* In a fork child the core belongs to the parent's handle: leave the
   * registry (and RCU) alone, free only the handle (hzshm.h caveat 1). */
  if (hzshm__lib_check(s->h) != HZSHM_EFORKED) hzshm__registry_put(s->core);
  free(s);
}

int hzshm_stats(hzshm_t *h, hzshm_stats_t *st) {
  int rc = hzshm__lib_check(h);
  if (rc != 0) return rc;
  if (st == NULL) return HZSHM_EINVAL;
  return hzshm__stats_read(hzshm__lib_shm(h), st);
}
