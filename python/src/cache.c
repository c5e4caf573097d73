/* cache.c - hzshm.Cache: one attached cache (hzshm_t) of this host, and the
 * owner of its sessions' handles (see hzshm_py.h for the guarantees). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hzshm_py.h"
#include "report.h"

static int open_handle(pyhz_cache *c) {
  hzshm_t *h = NULL;
  int rc = hzshm_open(c->name, &c->opts, &h);
  if (rc != 0) {
    if (rc == -ENOENT) {
      char msg[200];
      snprintf(msg, sizeof msg, "no cache '%s' on this host (is `hzshm-agent -n %s` running?)", c->name, c->name);
      pyhz_raise_msg(rc, msg);
      return -1;
    }
    pyhz_raise(rc);
    return -1;
  }
  c->h = h;
  c->fork_gen = pyhz_fork_gen_now();
  return 0;
}

static void close_now(pyhz_cache *c);

void pyhz_cache_after_fork(pyhz_cache *c) {
  if (c->fork_gen == pyhz_fork_gen_now()) return;
  c->fork_gen = pyhz_fork_gen_now();
  /* We are a fork child. The libhzshm handles re-attach themselves on their
   * first use here (hzshm.h caveat 1); only our bookkeeping is fixed: the
   * threads that made the parent's calls are gone, so nothing is busy, and
   * what was closed while busy is freed now. */
  for (pyhz_session *s = c->sessions; s; s = s->next) {
    s->busy = 0;
    if (s->closed) pyhz_session_drop_handle(s);
  }
  c->busy = 0;
  if (c->closed) close_now(c);
}

/* A Cache made by Cache.__new__ without (a successful start of) __init__
 * has no name to open: every use raises Closed, never touches c->name. */
static int not_initialized(pyhz_cache *c) {
  if (c->name != NULL) return 0;
  pyhz_raise_msg(HZSHM_ECLOSED, "Cache is not initialized (Cache.__new__ without Cache.__init__)");
  return -1;
}

int pyhz_cache_ready(pyhz_cache *c) {
  if (not_initialized(c) < 0) return -1;
  pyhz_cache_after_fork(c);
  if (c->closed) {
    pyhz_raise_closed("Cache");
    return -1;
  }
  return c->h ? 0 : open_handle(c);
}

/* Frees the handle once nothing uses it: every session handle first. */
static void close_now(pyhz_cache *c) {
  for (pyhz_session *s = c->sessions; s; s = s->next) {
    s->closed = 1;
    pyhz_session_drop_handle(s);
  }
  hzshm_close(c->h);
  c->h = NULL;
}

void pyhz_cache_release_busy(pyhz_cache *c) {
  if (--c->busy == 0 && c->closed) close_now(c);
}

static void do_close(pyhz_cache *c) {
  pyhz_cache_after_fork(c);
  c->closed = 1;
  /* Sessions not in a call lose their handle now; busy ones when their call
   * ends (session.c), and the cache's once the last call ended. */
  for (pyhz_session *s = c->sessions; s; s = s->next) {
    s->closed = 1;
    if (s->busy == 0) pyhz_session_drop_handle(s);
  }
  if (c->busy == 0) close_now(c);
}

static int parse_opts(pyhz_cache *c, PyObject *prefix, PyObject *timeout, PyObject *connections) {
  if (prefix != Py_None) {
    Py_ssize_t n;
    const char *p = PyUnicode_Check(prefix) ? PyUnicode_AsUTF8AndSize(prefix, &n) : NULL;
    if (p == NULL) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "prefix must be a str or None");
      return -1;
    }
    if ((Py_ssize_t)strlen(p) != n) return pyhz_raise(HZSHM_EINVAL), -1; /* NUL inside */
    c->prefix = strdup(p);
    if (c->prefix == NULL) return PyErr_NoMemory(), -1;
    c->opts.prefix = c->prefix;
  }
  if (timeout != Py_None) {
    double t = PyFloat_AsDouble(timeout);
    if (t == -1.0 && PyErr_Occurred()) return -1;
    if (!(t > 0) || t * 1000.0 > (double)UINT32_MAX) {
      PyErr_SetString(PyExc_ValueError, "timeout must be > 0 seconds (and < 49 days), or None for 15 s");
      return -1;
    }
    double ms = ceil(t * 1000.0);
    c->opts.timeout_ms = (uint32_t)ms;
  }
  if (connections != Py_None) {
    long n = PyLong_AsLong(connections);
    if (n == -1 && PyErr_Occurred()) return -1;
    if (n < 1 || n > 64) {
      PyErr_SetString(PyExc_ValueError, "connections must be 1..64, or None for 4");
      return -1;
    }
    c->opts.connections = (uint32_t)n;
  }
  return 0;
}

static int cache_init(pyhz_cache *c, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"name", "prefix", "timeout", "connections", NULL};
  const char *name;
  Py_ssize_t nlen;
  PyObject *prefix = Py_None, *timeout = Py_None, *connections = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "s#|$OOO:Cache", kwlist, &name, &nlen, &prefix, &timeout,
                                   &connections))
    return -1;
  if (c->name != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "Cache.__init__ called twice");
    return -1;
  }
  if ((Py_ssize_t)strlen(name) != nlen) return pyhz_raise(HZSHM_EINVAL), -1;
  c->name = strdup(name);
  if (c->name == NULL) return PyErr_NoMemory(), -1;
  if (parse_opts(c, prefix, timeout, connections) < 0) return -1;
  return open_handle(c);
}

static void cache_dealloc(pyhz_cache *c) {
  /* No session is alive (each holds a reference to us), so nothing is busy. */
  pyhz_cache_after_fork(c);
  hzshm_close(c->h);
  free(c->name);
  free(c->prefix);
  Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *cache_session(pyhz_cache *c, PyObject *sid) {
  if (!PyUnicode_Check(sid)) {
    PyErr_SetString(PyExc_TypeError, "session id must be a str");
    return NULL;
  }
  if (pyhz_cache_ready(c) < 0) return NULL;
  return pyhz_session_new(c, sid);
}

static PyObject *cache_close(pyhz_cache *c, PyObject *unused) {
  do_close(c);
  Py_RETURN_NONE;
}

static PyObject *cache_enter(pyhz_cache *c, PyObject *unused) {
  if (pyhz_cache_ready(c) < 0) return NULL;
  Py_INCREF(c);
  return (PyObject *)c;
}

static PyObject *cache_exit(pyhz_cache *c, PyObject *args) {
  do_close(c);
  Py_RETURN_FALSE;
}

static int put_u64(PyObject *d, const char *k, unsigned long long v) {
  PyObject *o = PyLong_FromUnsignedLongLong(v);
  int rc = o ? PyDict_SetItemString(d, k, o) : -1;
  Py_XDECREF(o);
  return rc;
}

static int put_str(PyObject *d, const char *k, const char *v) {
  PyObject *o = PyUnicode_FromString(v);
  int rc = o ? PyDict_SetItemString(d, k, o) : -1;
  Py_XDECREF(o);
  return rc;
}

static PyObject *cache_stats(pyhz_cache *c, PyObject *unused) {
  if (pyhz_cache_ready(c) < 0) return NULL;
  hzshm_stats_t st;
  int rc = hzshm_stats(c->h, &st);
  if (rc != 0) return pyhz_raise(rc);
  PyObject *d = PyDict_New();
  if (d == NULL) return NULL;
  char why[256];
  int unhealthy = hzshm__health_verdict(&st, why, sizeof why);
  /* The names, order and state words of `hzshm stat` (tools/hzshm.c). */
  int bad = put_u64(d, "hits", st.hits) || put_u64(d, "misses", st.misses) || put_u64(d, "entries", st.entries) ||
            put_u64(d, "sessions", st.sessions) || put_u64(d, "memory_used", st.memory_used) ||
            put_u64(d, "memory_limit", st.memory_limit) || put_u64(d, "evictions", st.evictions) ||
            put_u64(d, "readers", st.readers) || put_u64(d, "agent_pid", (unsigned long long)st.agent_pid) ||
            put_str(d, "agent_state", hzshm__agent_state_name(st.agent_state)) ||
            put_u64(d, "heartbeat_age_ms", st.heartbeat_age_ms) || put_u64(d, "stale_after_ms", st.stale_after_ms) ||
            put_str(d, "cluster_state", hzshm__cluster_state_name(st.cluster_state)) ||
            put_u64(d, "invalidations_applied", st.invalidations) ||
            put_u64(d, "last_invalidation_lag_us", st.last_inval_lag_us) ||
            put_u64(d, "sessions_with_listeners", st.listeners) || put_u64(d, "remote_gets", st.remote_gets) ||
            put_u64(d, "coalesced_misses", st.coalesced_misses) || put_u64(d, "fills_dropped", st.fills_dropped) ||
            put_u64(d, "stale_marks", st.stale_marks) || put_u64(d, "agent_requests", st.agent_requests) ||
            put_u64(d, "bad_requests", st.bad_requests) ||
            put_u64(d, "unwatched_partitions", st.unwatched_partitions) ||
            put_u64(d, "uncacheable_values", st.uncacheable_values) || put_u64(d, "expirations", st.expirations) ||
            PyDict_SetItemString(d, "healthy", unhealthy ? Py_False : Py_True) < 0 ||
            put_str(d, "health", why);
  if (bad) {
    Py_DECREF(d);
    return NULL;
  }
  return d;
}

static PyObject *cache_get_name(pyhz_cache *c, void *unused) {
  return not_initialized(c) < 0 ? NULL : PyUnicode_FromString(c->name);
}
static PyObject *cache_get_closed(pyhz_cache *c, void *unused) { return PyBool_FromLong(c->closed); }

static PyObject *cache_repr(pyhz_cache *c) {
  return PyUnicode_FromFormat("<hzshm.Cache %s%s>", c->name ? c->name : "?", c->closed ? " (closed)" : "");
}

static PyMethodDef cache_methods[] = {
    {"session", (PyCFunction)cache_session, METH_O,
     "session($self, sid, /)\n--\n\nA Session: the Store of one session, the IMap named prefix + sid.\n"
     "sid: a non-empty str of at most 255 UTF-8 bytes (prefix included), no NUL.\n"
     "Contacts nobody. Raises InvalidArgument or TooBig for a bad id."},
    {"stats", (PyCFunction)cache_stats, METH_NOARGS,
     "stats($self, /)\n--\n\nA dict of the figures `hzshm stat` shows, in its order and words, plus 'health' (the\n"
     "verdict's reason). Read from shared memory, no round trip."},
    {"close", (PyCFunction)cache_close, METH_NOARGS,
     "close($self, /)\n--\n\nClose every Session of this cache, then detach. Calls already running on another\n"
     "thread finish first (the handle is freed by the last one). Idempotent."},
    {"__enter__", (PyCFunction)cache_enter, METH_NOARGS, "Returns the cache."},
    {"__exit__", (PyCFunction)cache_exit, METH_VARARGS, "Closes the cache (see close())."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef cache_getset[] = {
    {"name", (getter)cache_get_name, NULL, "The cache name (the agent's -n NAME).", NULL},
    {"closed", (getter)cache_get_closed, NULL, "True once close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject pyhz_cache_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hzshm.Cache",
    .tp_basicsize = sizeof(pyhz_cache),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Cache(name, *, prefix=None, timeout=None, connections=None)\n--\n\n"
              "The host's shared-memory near cache NAME (the agent's `hzshm-agent -n NAME`).\n"
              "prefix: prepended to every session id to form the IMap name.\n"
              "timeout: seconds per agent request (None: 15 s). connections: agent connection pool (1..64,\n"
              "None: 4). Raises NoCache when no agent created NAME on this host.\n"
              "Thread-safe; survives fork(): a forked child re-attaches by itself on first use.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)cache_init,
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_methods = cache_methods,
    .tp_getset = cache_getset,
    .tp_repr = (reprfunc)cache_repr,
};
