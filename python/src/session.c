/* session.c - hzshm.Session: the Store of one session (one IMap).
 *
 * A get or has is first answered from the segment with the GIL held
 * (hzshm_get_view_local: no lock, no syscall, never the agent); only when the
 * segment cannot answer is the GIL dropped for the round trip. set, delete
 * and destroy always drop it. See hzshm_py.h for the busy/close/fork rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hzshm_py.h"

void pyhz_session_drop_handle(pyhz_session *s) {
  if (s->s == NULL) return;
  hzshm_session_close(s->s);
  s->s = NULL;
}

/* Makes s->s usable (after a fork: the binding's bookkeeping, see hzshm_py.h). 0, or -1 with an exception. */
static int ready(pyhz_session *s) {
  /* The hit path's check: open, and opened in this process. */
  if (s->s != NULL && !s->closed && s->cache->fork_gen == pyhz_fork_gen_now()) return 0;
  pyhz_cache_after_fork(s->cache);
  if (s->closed) {
    pyhz_raise_closed("Session");
    return -1;
  }
  if (s->s != NULL) return 0;
  if (pyhz_cache_ready(s->cache) < 0) return -1;
  Py_ssize_t n;
  const char *sid = PyUnicode_AsUTF8AndSize(s->sid, &n);
  if (sid == NULL) return -1;
  int rc = hzshm_session_open(s->cache->h, sid, (size_t)n, &s->s);
  if (rc != 0) {
    s->s = NULL;
    pyhz_raise(rc);
    return -1;
  }
  return 0;
}

/* Around a call made with the GIL dropped (the caller holds the GIL on both). */
static hzshm_session_t *busy_begin(pyhz_session *s) {
  s->busy++;
  s->cache->busy++;
  return s->s;
}

static void busy_end(pyhz_session *s) {
  if (--s->busy == 0 && s->closed) pyhz_session_drop_handle(s);
  pyhz_cache_release_busy(s->cache);
}

/* A key: str (its UTF-8) or bytes (must be UTF-8; libhzshm checks). */
static int key_of(PyObject *k, const char **p, size_t *n) {
  Py_ssize_t len;
  if (PyUnicode_CheckExact(k) && PyUnicode_IS_COMPACT_ASCII(k)) { /* ASCII is its own UTF-8 */
    *p = (const char *)PyUnicode_DATA(k);
    len = PyUnicode_GET_LENGTH(k);
  } else if (PyUnicode_Check(k)) {
    *p = PyUnicode_AsUTF8AndSize(k, &len);
    if (*p == NULL) return -1;
  } else if (PyBytes_Check(k)) {
    *p = PyBytes_AS_STRING(k);
    len = PyBytes_GET_SIZE(k);
  } else {
    PyErr_Format(PyExc_TypeError, "key must be str or bytes, not %.100s", Py_TYPE(k)->tp_name);
    return -1;
  }
  *n = (size_t)len;
  return 0;
}

/* The Python object of a value: bytes for a byte[], str for a String. */
static inline PyObject *value_obj(const void *v, size_t n, int32_t type) {
  if (type == HZSHM_TYPE_STRING) return PyUnicode_DecodeUTF8(v, (Py_ssize_t)n, "strict");
  return PyBytes_FromStringAndSize(v, (Py_ssize_t)n);
}

/* get from the agent with the GIL dropped. 0 and *out, or a libhzshm code
 * (HZSHM_ETYPE with *type_id). */
static int get_remote(pyhz_session *s, const char *k, size_t kn, PyObject **out, int32_t *type_id) {
  char stackbuf[16384];
  char *buf = stackbuf, *heap = NULL;
  size_t cap = sizeof stackbuf, n = 0, hint = s->value_hint;
  int32_t type = HZSHM_TYPE_BYTES;
  int rc;
  hzshm_session_t *hs = busy_begin(s);
  Py_BEGIN_ALLOW_THREADS
  /* A value too large for the segment's slabs is never cached: each get is
   * answered by the agent, and one that does not fit buf is a first round
   * trip that only learns the size (HZSHM_EBUFSIZE), then a second. With
   * buf as large as the largest value read through this session, it is one. */
  if (hint > cap && (heap = malloc(hint)) != NULL) {
    buf = heap;
    cap = hint;
  }
  for (;;) {
    rc = hzshm_get_typed(hs, k, kn, buf, cap, &n, &type);
    if (rc != HZSHM_EBUFSIZE) break;
    free(heap); /* the value grew since the last try */
    buf = heap = malloc(n);
    cap = n;
    if (heap == NULL) {
      rc = -ENOMEM;
      break;
    }
  }
  Py_END_ALLOW_THREADS
  busy_end(s);
  if (rc == 0) {
    if (n > s->value_hint && n > sizeof stackbuf) s->value_hint = n; /* GIL held, as every field */
    *out = value_obj(buf, n, type);
    if (*out == NULL) rc = -ENOMEM; /* with the exception set */
  }
  *type_id = type;
  free(heap);
  return rc;
}

/* The value of key, or NULL with no exception set when it does not exist. */
static PyObject *lookup(pyhz_session *s, PyObject *key) {
  const char *k;
  size_t kn, n = 0;
  const void *v;
  int32_t type = HZSHM_TYPE_BYTES;
  if (key_of(key, &k, &kn) < 0 || ready(s) < 0) return NULL;
  int rc = hzshm_get_view_local_typed(s->s, k, kn, &v, &n, &type);
  if (rc == 0) { /* the result is built straight from the view: one copy */
    PyObject *r = value_obj(v, n, type);
    if (hzshm_view_release(s->s) != HZSHM_ECHANGED) return r;
    /* The entry was reused while we copied it (hzshm.h: discard what was
     * read), so r (or value_obj's error) is not the value: ask again through
     * the copying read, which checks its own copy. */
    if (r == NULL) PyErr_Clear();
    Py_XDECREF(r);
    rc = HZSHM_EMISS;
  }
  PyObject *r = NULL;
  if (rc == HZSHM_EMISS) rc = get_remote(s, k, kn, &r, &type);
  if (rc == 0 || rc == HZSHM_ENOTFOUND) return r;
  if (rc == -ENOMEM && PyErr_Occurred()) return NULL;
  return rc == HZSHM_ETYPE ? pyhz_raise_type(type) : pyhz_raise(rc);
}

/* get(key, /, default=None): key positional, default also by keyword (as
 * Mapping.get's stub has it). Vectorcall: keyword values follow the positional ones in args. */
static PyObject *sess_get(pyhz_session *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
  PyObject *dflt = Py_None;
  if (nargs < 1 || nargs + nkw > 2) {
    PyErr_Format(PyExc_TypeError, "get() takes a key and an optional default (%zd arguments given)", nargs + nkw);
    return NULL;
  }
  if (nkw == 1) {
    PyObject *name = PyTuple_GET_ITEM(kwnames, 0);
    if (!PyUnicode_Check(name) || PyUnicode_CompareWithASCIIString(name, "default") != 0) {
      PyErr_Format(PyExc_TypeError, "get() got an unexpected keyword argument %R", name);
      return NULL;
    }
  }
  if (nargs + nkw == 2) dflt = args[1];
  PyObject *r = lookup(s, args[0]);
  if (r != NULL || PyErr_Occurred()) return r;
  Py_INCREF(dflt);
  return dflt;
}

static PyObject *sess_subscript(pyhz_session *s, PyObject *key) {
  PyObject *r = lookup(s, key);
  if (r == NULL && !PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, key);
  return r;
}

/* 1 if key exists, 0 if not, -1 with an exception. */
static int has(pyhz_session *s, PyObject *key) {
  const char *k;
  size_t kn, n;
  const void *v;
  if (key_of(key, &k, &kn) < 0 || ready(s) < 0) return -1;
  int rc = hzshm_get_view_local(s->s, k, kn, &v, &n);
  /* A view reused while held (HZSHM_ECHANGED) may have been another key's: ask hzshm_has. */
  if (rc == 0 && hzshm_view_release(s->s) == HZSHM_ECHANGED) rc = HZSHM_EMISS;
  if (rc == HZSHM_EMISS) {
    hzshm_session_t *hs = busy_begin(s);
    Py_BEGIN_ALLOW_THREADS
    rc = hzshm_has(hs, k, kn);
    Py_END_ALLOW_THREADS
    busy_end(s);
  }
  if (rc == 0) return 1;
  if (rc == HZSHM_ENOTFOUND) return 0;
  pyhz_raise(rc);
  return -1;
}

static PyObject *sess_has(pyhz_session *s, PyObject *key) {
  int r = has(s, key);
  return r < 0 ? NULL : PyBool_FromLong(r);
}

/* ttl: None -> the map's default (-1), 0 -> never expires, > 0 seconds. */
static int ttl_of(PyObject *ttl, int64_t *ms) {
  if (ttl == Py_None) {
    *ms = -1;
    return 0;
  }
  /* Any real number: int, float, and what converts like them (__index__:
   * numpy integers; __float__: numpy floats, Decimal, Fraction). Not bool
   * (a flag passed by mistake), not str, not complex (no __float__). */
  PyNumberMethods *nb = Py_TYPE(ttl)->tp_as_number;
  int real = PyLong_Check(ttl) || PyFloat_Check(ttl) || PyIndex_Check(ttl) || (nb != NULL && nb->nb_float != NULL);
  if (PyBool_Check(ttl) || !real) {
    PyErr_Format(PyExc_TypeError, "ttl must be None or a number of seconds, not %.100s", Py_TYPE(ttl)->tp_name);
    return -1;
  }
  double t = PyFloat_AsDouble(ttl);
  if (t == -1.0 && PyErr_Occurred()) return -1;
  if (!(t >= 0) || t > 9.2e15) {
    pyhz_raise_msg(HZSHM_EINVAL, "ttl must be None (map default), 0 (never expires) or > 0 seconds");
    return -1;
  }
  *ms = t == 0 ? 0 : (int64_t)ceil(t * 1000.0); /* a positive ttl never rounds to 0 (= never) */
  return 0;
}

/* Runs op with the GIL dropped; None or an exception. */
typedef int (*write_fn)(hzshm_session_t *hs, const void *k, size_t kn, const void *v, size_t vn, int64_t ttl);
static PyObject *write_call(pyhz_session *s, write_fn fn, const void *k, size_t kn, const void *v, size_t vn,
                            int64_t ttl) {
  hzshm_session_t *hs = busy_begin(s);
  int rc;
  Py_BEGIN_ALLOW_THREADS
  rc = fn(hs, k, kn, v, vn, ttl);
  Py_END_ALLOW_THREADS
  busy_end(s);
  if (rc != 0) return pyhz_raise(rc);
  Py_RETURN_NONE;
}

static int op_set(hzshm_session_t *hs, const void *k, size_t kn, const void *v, size_t vn, int64_t ttl) {
  return hzshm_set_ttl(hs, k, kn, v, vn, ttl);
}
static int op_set_str(hzshm_session_t *hs, const void *k, size_t kn, const void *v, size_t vn, int64_t ttl) {
  return hzshm_set_typed(hs, k, kn, HZSHM_TYPE_STRING, v, vn, ttl);
}
static int op_del(hzshm_session_t *hs, const void *k, size_t kn, const void *v, size_t vn, int64_t ttl) {
  return hzshm_del(hs, k, kn);
}
static int op_destroy(hzshm_session_t *hs, const void *k, size_t kn, const void *v, size_t vn, int64_t ttl) {
  return hzshm_destroy(hs);
}

static PyObject *do_set(pyhz_session *s, PyObject *key, PyObject *val, PyObject *ttl) {
  const char *k;
  size_t kn;
  int64_t ms;
  if (key_of(key, &k, &kn) < 0 || ttl_of(ttl, &ms) < 0) return NULL;
  if (PyUnicode_Check(val)) {
    Py_ssize_t n;
    const char *v = PyUnicode_AsUTF8AndSize(val, &n);
    if (v == NULL || ready(s) < 0) return NULL; /* a lone surrogate has no UTF-8: UnicodeEncodeError */
    /* The UTF-8 is cached in the str object, which the caller's reference keeps alive. */
    return write_call(s, op_set_str, k, kn, v, (size_t)n, ms);
  }
  Py_buffer view;
  if (PyObject_GetBuffer(val, &view, PyBUF_SIMPLE) < 0) {
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "value must be bytes-like or str, not %.100s", Py_TYPE(val)->tp_name);
    }
    return NULL;
  }
  /* The export keeps the buffer fixed (a bytearray cannot resize) while the GIL is dropped. */
  PyObject *r = ready(s) < 0 ? NULL : write_call(s, op_set, k, kn, view.buf, (size_t)view.len, ms);
  PyBuffer_Release(&view);
  return r;
}

static PyObject *sess_set(pyhz_session *s, PyObject *args, PyObject *kw) {
  static char *kwlist[] = {"key", "value", "ttl", NULL};
  PyObject *key, *val, *ttl = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:set", kwlist, &key, &val, &ttl)) return NULL;
  return do_set(s, key, val, ttl);
}

static PyObject *do_delete(pyhz_session *s, PyObject *key) {
  const char *k;
  size_t kn;
  if (key_of(key, &k, &kn) < 0 || ready(s) < 0) return NULL;
  return write_call(s, op_del, k, kn, NULL, 0, 0);
}

static int sess_ass_subscript(pyhz_session *s, PyObject *key, PyObject *val) {
  PyObject *r;
  if (val != NULL) {
    r = do_set(s, key, val, Py_None);
  } else {
    /* dict semantics: KeyError when missing (checked from the cache first;
     * another process may delete or create it in between). */
    int h = has(s, key);
    if (h < 0) return -1;
    if (h == 0) {
      PyErr_SetObject(PyExc_KeyError, key);
      return -1;
    }
    r = do_delete(s, key);
  }
  if (r == NULL) return -1;
  Py_DECREF(r);
  return 0;
}

static PyObject *sess_destroy(pyhz_session *s, PyObject *unused) {
  if (ready(s) < 0) return NULL;
  return write_call(s, op_destroy, NULL, 0, NULL, 0, 0);
}

static void do_close(pyhz_session *s) {
  pyhz_cache_after_fork(s->cache);
  s->closed = 1;
  if (s->busy == 0) pyhz_session_drop_handle(s); /* else the last call does (busy_end) */
}

static PyObject *sess_close(pyhz_session *s, PyObject *unused) {
  do_close(s);
  Py_RETURN_NONE;
}

static PyObject *sess_enter(pyhz_session *s, PyObject *unused) {
  if (ready(s) < 0) return NULL;
  Py_INCREF(s);
  return (PyObject *)s;
}

static PyObject *sess_exit(pyhz_session *s, PyObject *args) {
  do_close(s);
  Py_RETURN_FALSE;
}

PyObject *pyhz_session_new(pyhz_cache *c, PyObject *sid) {
  Py_ssize_t n;
  const char *p = PyUnicode_AsUTF8AndSize(sid, &n);
  if (p == NULL) return NULL;
  hzshm_session_t *hs;
  int rc = hzshm_session_open(c->h, p, (size_t)n, &hs);
  if (rc != 0) return pyhz_raise(rc);
  pyhz_session *s = PyObject_New(pyhz_session, &pyhz_session_type);
  if (s == NULL) {
    hzshm_session_close(hs);
    return NULL;
  }
  Py_INCREF(c);
  Py_INCREF(sid);
  s->cache = c;
  s->s = hs;
  s->sid = sid;
  s->busy = 0;
  s->value_hint = 0;
  s->closed = 0;
  s->prev = NULL;
  s->next = c->sessions;
  if (c->sessions) c->sessions->prev = s;
  c->sessions = s;
  return (PyObject *)s;
}

static void sess_dealloc(pyhz_session *s) {
  pyhz_cache *c = s->cache;
  pyhz_cache_after_fork(c); /* a child's inherited handle is only freed */
  pyhz_session_drop_handle(s); /* nothing is busy: a call holds a reference */
  if (s->prev) s->prev->next = s->next;
  else c->sessions = s->next;
  if (s->next) s->next->prev = s->prev;
  Py_DECREF(s->sid);
  Py_DECREF(c);
  PyObject_Free(s);
}

static PyObject *sess_get_sid(pyhz_session *s, void *unused) {
  Py_INCREF(s->sid);
  return s->sid;
}
static PyObject *sess_get_cache(pyhz_session *s, void *unused) {
  Py_INCREF(s->cache);
  return (PyObject *)s->cache;
}
static PyObject *sess_get_closed(pyhz_session *s, void *unused) { return PyBool_FromLong(s->closed); }

static PyObject *sess_repr(pyhz_session *s) {
  return PyUnicode_FromFormat("<hzshm.Session %R of %s%s>", s->sid, s->cache->name, s->closed ? " (closed)" : "");
}

static PyMethodDef sess_methods[] = {
    {"get", (PyCFunction)(void (*)(void))sess_get, METH_FASTCALL | METH_KEYWORDS,
     "get($self, key, /, default=None)\n--\n\n"
     "The value of key (bytes | str), or default when the cluster has no such key: bytes for a Hazelcast byte[],\n"
     "str for a Hazelcast String (whoever wrote it). A hit (value or cached absence) is served from\n"
     "shared memory with the GIL held; a miss asks the agent with the GIL released.\n"
     "Raises UnsupportedType (.type_id) for any other Hazelcast type (e.g. -120: a bytes object the\n"
     "official Python client pickled), FailClosed, AgentUnavailable, Timeout, InvalidArgument/TooBig\n"
     "for a bad key."},
    {"has", (PyCFunction)sess_has, METH_O,
     "has($self, key, /)\n--\n\nTrue if key exists (bool), served from the cache including cached absence."},
    {"set", (PyCFunction)(void (*)(void))sess_set, METH_VARARGS | METH_KEYWORDS,
     "set($self, /, key, value, ttl=None)\n--\n\n"
     "Writes through to Hazelcast (IMap.set) and into this host's cache, then returns: any later\n"
     "get on this host sees it. value: bytes-like -> Hazelcast byte[]; str -> Hazelcast String\n"
     "(every Hazelcast client reads it as its native string). ttl: None = the map's default, 0 = never expires,\n"
     "> 0 = seconds. The GIL is released during the round trip."},
    {"delete", (PyCFunction)do_delete, METH_O,
     "delete($self, key, /)\n--\n\nRemoves key cluster-wide (IMap.delete); no error when it does not exist."},
    {"destroy", (PyCFunction)sess_destroy, METH_NOARGS,
     "destroy($self, /)\n--\n\nDestroys the whole session (its IMap) cluster-wide and purges it here. The Session\n"
     "stays usable and reads empty."},
    {"close", (PyCFunction)sess_close, METH_NOARGS, "close($self, /)\n--\n\nReleases the session handle. Idempotent."},
    {"__enter__", (PyCFunction)sess_enter, METH_NOARGS, "Returns the session."},
    {"__exit__", (PyCFunction)sess_exit, METH_VARARGS, "Closes the session."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sess_getset[] = {
    {"sid", (getter)sess_get_sid, NULL, "The session id (without the cache's prefix).", NULL},
    {"cache", (getter)sess_get_cache, NULL, "The Cache this session belongs to.", NULL},
    {"closed", (getter)sess_get_closed, NULL, "True once close() was called (or its Cache closed).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMappingMethods sess_mapping = {
    .mp_subscript = (binaryfunc)sess_subscript,
    .mp_ass_subscript = (objobjargproc)sess_ass_subscript,
};

static int sess_contains(pyhz_session *s, PyObject *key) { return has(s, key); }

static PySequenceMethods sess_sequence = {
    .sq_contains = (objobjproc)sess_contains,
};

PyTypeObject pyhz_session_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "hzshm.Session",
    .tp_basicsize = sizeof(pyhz_session),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The Store of one session: one Hazelcast IMap, cached on this host. Made by Cache.session(sid).\n"
              "Mapping protocol: s[k] (KeyError when missing), s[k] = v, del s[k] (KeyError when missing),\n"
              "k in s. Thread-safe; usable in a forked child without any call.",
    .tp_dealloc = (destructor)sess_dealloc,
    .tp_methods = sess_methods,
    .tp_getset = sess_getset,
    .tp_as_mapping = &sess_mapping,
    .tp_as_sequence = &sess_sequence,
    .tp_repr = (reprfunc)sess_repr,
};
