/* module.c - the hzshm._hzshm extension module: the exception hierarchy, the
 * fork generation and module set-up. See hzshm_py.h for the guarantees. */
#include <errno.h>
#include <pthread.h>

#include "hzshm_py.h"

atomic_ulong pyhz_fork_gen;

static void on_fork_child(void) {
  /* Relaxed: see pyhz_fork_gen_now (its pair); the child has one thread here. */
  atomic_fetch_add_explicit(&pyhz_fork_gen, 1, memory_order_relaxed);
}

/* The exception classes (strong references owned by the module). */
static PyObject *exc_error, *exc_failclosed, *exc_agent, *exc_timeout, *exc_toobig, *exc_inval, *exc_nocache,
    *exc_type, *exc_closed, *exc_perm;

static PyObject *exc_for(int rc) {
  switch (rc) {
  case HZSHM_ESTALE:
  case HZSHM_EDISCONNECTED:
  case HZSHM_ESTOPPED:
    return exc_failclosed;
  case HZSHM_EAGENT:
    return exc_agent;
  case HZSHM_ETIMEDOUT:
    return exc_timeout;
  case HZSHM_ETOOBIG:
    return exc_toobig;
  case HZSHM_EINVAL:
  case HZSHM_EEMPTY:
  case HZSHM_EBADSESSION:
    return exc_inval;
  case -ENOENT:
    return exc_nocache;
  case HZSHM_ETYPE:
    return exc_type;
  case HZSHM_ECLOSED:
    return exc_closed;
  case HZSHM_EUNTRUSTED:
  case -EACCES:
  case -EPERM:
    return exc_perm;
  default:
    return exc_error;
  }
}

/* Raises cls(msg) with .code and .name of rc (and .type_id when given). */
static PyObject *raise_with(int rc, const char *msg, PyObject *type_id) {
  if (rc == -ENOMEM) return PyErr_NoMemory(); /* Python's own: MemoryError */
  PyObject *cls = exc_for(rc);
  PyObject *exc = PyObject_CallFunction(cls, "s", msg);
  if (exc == NULL) return NULL;
  PyObject *code = PyLong_FromLong(rc), *name = PyUnicode_FromString(hzshm_err_name(rc));
  int bad = code == NULL || name == NULL || PyObject_SetAttrString(exc, "code", code) < 0 ||
            PyObject_SetAttrString(exc, "name", name) < 0 ||
            (type_id && PyObject_SetAttrString(exc, "type_id", type_id) < 0);
  Py_XDECREF(code);
  Py_XDECREF(name);
  if (!bad) PyErr_SetObject(cls, exc);
  Py_DECREF(exc);
  return NULL;
}

PyObject *pyhz_raise(int rc) { return raise_with(rc, hzshm_strerror(rc), NULL); }
PyObject *pyhz_raise_msg(int rc, const char *msg) { return raise_with(rc, msg, NULL); }

PyObject *pyhz_raise_type(int32_t type_id) {
  PyObject *id = PyLong_FromLong(type_id);
  if (id == NULL) return NULL;
  char msg[128];
  snprintf(msg, sizeof msg, "%s (Hazelcast type id %d)", hzshm_strerror(HZSHM_ETYPE), (int)type_id);
  raise_with(HZSHM_ETYPE, msg, id);
  Py_DECREF(id);
  return NULL;
}

PyObject *pyhz_raise_closed(const char *what) {
  char msg[96];
  snprintf(msg, sizeof msg, "%s is closed", what);
  return raise_with(HZSHM_ECLOSED, msg, NULL);
}

static PyObject *strerror_fn(PyObject *mod, PyObject *arg) {
  int overflow;
  long rc = PyLong_AsLongAndOverflow(arg, &overflow);
  if (rc == -1 && PyErr_Occurred()) return NULL;
  if (overflow || rc < INT32_MIN || rc > INT32_MAX) rc = INT32_MIN;
  return PyUnicode_FromString(hzshm_strerror((int)rc));
}

static PyMethodDef module_methods[] = {
    {"strerror", strerror_fn, METH_O, "strerror(code, /)\n--\n\nThe text of a libhzshm return code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "hzshm._hzshm",
    .m_doc = "The C part of the hzshm binding (import hzshm, not this module).",
    .m_size = -1,
    .m_methods = module_methods,
};

/* Creates hzshm.<name>(bases) and adds it to the module; NULL on failure. */
static PyObject *add_exc(PyObject *m, const char *name, PyObject *bases, const char *doc) {
  char qual[64];
  snprintf(qual, sizeof qual, "hzshm.%s", name);
  PyObject *cls = PyErr_NewExceptionWithDoc(qual, doc, bases, NULL);
  Py_XDECREF(bases);
  if (cls == NULL) return NULL;
  Py_INCREF(cls);
  if (PyModule_AddObject(m, name, cls) < 0) {
    Py_DECREF(cls);
    Py_DECREF(cls);
    return NULL;
  }
  return cls; /* one reference kept in the static above */
}

static int add_errors(PyObject *m) {
  exc_error = add_exc(m, "Error", NULL,
                      "Base of every hzshm error. .code is the libhzshm return code (an int: -errno or "
                      "HZSHM_E*), .name its symbolic name ('HZSHM_ESTALE', 'ENOENT', ...).");
  if (!exc_error) return -1;
#define SUB(var, name, extra, doc)                                                                       \
  if (!(var = add_exc(m, name, extra ? PyTuple_Pack(2, exc_error, (PyObject *)extra)                   \
                                     : PyTuple_Pack(1, exc_error), doc)))                                \
  return -1
  SUB(exc_failclosed, "FailClosed", NULL,
      "The cache is failing closed: the agent's heartbeat is too old (HZSHM_ESTALE), it lost the "
      "cluster (HZSHM_EDISCONNECTED) or stopped serving (HZSHM_ESTOPPED). No possibly stale value is served.");
  SUB(exc_agent, "AgentUnavailable", NULL, "The host's hzshm-agent cannot be reached (HZSHM_EAGENT).");
  SUB(exc_timeout, "Timeout", PyExc_TimeoutError,
      "An agent request timed out (HZSHM_ETIMEDOUT); a write may or may not have been applied.");
  SUB(exc_toobig, "TooBig", PyExc_ValueError,
      "A key, value or session id over its size limit (HZSHM_ETOOBIG): key 1024 B, session id 255 B, "
      "value 1 MiB. Nothing was changed.");
  SUB(exc_inval, "InvalidArgument", PyExc_ValueError,
      "An invalid argument: empty key or session id, invalid UTF-8, a bad cache name or option "
      "(HZSHM_EINVAL, HZSHM_EEMPTY, HZSHM_EBADSESSION). Nothing was changed.");
  SUB(exc_nocache, "NoCache", PyExc_FileNotFoundError,
      "No cache of that name on this host (is `hzshm-agent -n NAME` running?).");
  SUB(exc_type, "UnsupportedType", PyExc_TypeError,
      "The stored value is neither a Hazelcast byte[] nor a String; .type_id is its Hazelcast type id "
      "(e.g. -120 for a value the official Python client pickled).");
  SUB(exc_closed, "Closed", PyExc_ValueError, "The Cache or Session was closed (HZSHM_ECLOSED).");
  SUB(exc_perm, "PermissionDenied", PyExc_PermissionError,
      "The cache's files or the agent's socket may not be used by this process: owned by an untrusted uid "
      "(HZSHM_EUNTRUSTED: see HZSHM_AGENT_UID) or not accessible (EACCES, EPERM).");
#undef SUB
  return 0;
}

PyMODINIT_FUNC PyInit__hzshm(void) {
  if (pthread_atfork(NULL, NULL, on_fork_child) != 0) {
    PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
    return NULL;
  }
  PyObject *m = PyModule_Create(&module_def);
  if (m == NULL) return NULL;
  if (add_errors(m) < 0) goto fail;
  if (PyType_Ready(&pyhz_cache_type) < 0 || PyType_Ready(&pyhz_session_type) < 0) goto fail;
  Py_INCREF(&pyhz_cache_type);
  if (PyModule_AddObject(m, "Cache", (PyObject *)&pyhz_cache_type) < 0) {
    Py_DECREF(&pyhz_cache_type);
    goto fail;
  }
  Py_INCREF(&pyhz_session_type);
  if (PyModule_AddObject(m, "Session", (PyObject *)&pyhz_session_type) < 0) {
    Py_DECREF(&pyhz_session_type);
    goto fail;
  }
  if (PyModule_AddIntConstant(m, "KEY_MAX", HZSHM_KEY_MAX) < 0 ||
      PyModule_AddIntConstant(m, "SESSION_MAX", HZSHM_SESSION_MAX) < 0 ||
      PyModule_AddIntConstant(m, "VALUE_MAX", HZSHM_VALUE_MAX) < 0 ||
      PyModule_AddStringConstant(m, "LIB_VERSION", HZSHM_VERSION_STRING) < 0)
    goto fail;
  return m;
fail:
  Py_DECREF(m);
  return NULL;
}
