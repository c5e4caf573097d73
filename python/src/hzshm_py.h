/* hzshm_py.h - the CPython binding's objects, shared by module.c, cache.c
 * and session.c.
 *
 * Guarantees (all three files):
 *  - Every field below is read and written with the GIL held. The GIL is
 *    dropped only around a libhzshm call that may wait for the agent (a miss,
 *    set, delete, destroy); hits are served with the GIL held.
 *  - While the GIL is dropped the call keeps its session and cache handles
 *    alive through the `busy` counters: close() of a busy object only marks it
 *    closed, and the last call to finish frees the libhzshm handle
 *    (hzshm.h: hzshm_session_close/hzshm_close need no call running).
 *  - fork(): libhzshm re-attaches inherited handles in a child on their first
 *    use (hzshm.h caveat 1), so the same handles keep working. A
 *    pthread_atfork child handler bumps pyhz_fork_gen only for the binding's
 *    own bookkeeping: the first use of a cache in the child (or its
 *    close/dealloc) resets the busy counters (the parent's threads that held
 *    them are gone) and frees what was closed while busy.
 */
#ifndef HZSHM_PY_H
#define HZSHM_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>

#include "hzshm.h"

typedef struct pyhz_session pyhz_session;

typedef struct {
  PyObject_HEAD
  hzshm_t *h;             /* NULL: closed, or not (re)opened yet after a fork */
  char *name;             /* for re-opening after a fork */
  char *prefix;           /* NULL = none */
  hzshm_opts_t opts;      /* opts.prefix points at prefix */
  unsigned long fork_gen; /* pyhz_fork_gen when the handles were opened */
  Py_ssize_t busy;        /* calls of its sessions running with the GIL dropped */
  int closed;
  pyhz_session *sessions; /* every live Session of this cache (linked through prev/next) */
} pyhz_cache;

struct pyhz_session {
  PyObject_HEAD
  pyhz_cache *cache; /* strong reference: a cache outlives its sessions */
  hzshm_session_t *s; /* NULL: closed, or not (re)opened yet after a fork */
  PyObject *sid;     /* str */
  Py_ssize_t busy;
  size_t value_hint; /* the largest value get_remote read through the agent (0: none over its stack buffer) */
  int closed;
  pyhz_session *prev, *next;
};

extern PyTypeObject pyhz_cache_type;
extern PyTypeObject pyhz_session_type;

/* Fork generation: bumped in the child by a pthread_atfork handler. */
extern atomic_ulong pyhz_fork_gen;
static inline unsigned long pyhz_fork_gen_now(void) {
  /* Relaxed: the handler runs in the child before any other thread of the
   * child exists; threads it creates later are ordered after it by
   * pthread_create, and every reader holds the GIL. Pairs with the
   * relaxed increment in module.c's on_fork_child. */
  return atomic_load_explicit(&pyhz_fork_gen, memory_order_relaxed);
}

/* Raises the hzshm exception for rc (a libhzshm return code); returns NULL. */
PyObject *pyhz_raise(int rc);
/* The same with another message. */
PyObject *pyhz_raise_msg(int rc, const char *msg);
/* UnsupportedType for a value of Hazelcast type id type_id; returns NULL. */
PyObject *pyhz_raise_type(int32_t type_id);
/* Closed (the handle was closed); returns NULL. */
PyObject *pyhz_raise_closed(const char *what);

/* cache.c: after a fork, drop the inherited handles (never fails). */
void pyhz_cache_after_fork(pyhz_cache *c);
/* cache.c: make c->h usable (re-open after a fork). 0, or -1 with an exception set. */
int pyhz_cache_ready(pyhz_cache *c);
/* cache.c: the last busy call of a closed cache finished: free the handle. */
void pyhz_cache_release_busy(pyhz_cache *c);
/* session.c: free a session's libhzshm handle (GIL held, not busy). */
void pyhz_session_drop_handle(pyhz_session *s);
/* session.c: a new Session of c for sid (a str). */
PyObject *pyhz_session_new(pyhz_cache *c, PyObject *sid);

#endif /* HZSHM_PY_H */
