/* shim.c - an LD_PRELOAD library for tests/python/test_inject.py: it wraps
 * libhzshm calls of the binding (the extension module resolves them through
 * the dynamic linker, so a preloaded definition comes first) to give, on
 * demand, outcomes that a real segment or agent gives only rarely. Every
 * wrapper reads the process's environment on each call, so a child
 * interpreter switches them with os.environ; unset, each is the real call.
 *
 *   HZSHM_SHIM_TORN=bytes|str  hzshm_get_view_local(_typed) answers with a view
 *                              of junk (b"torn!" as a byte[], or b"\xff\xfe" as a
 *                              String: not UTF-8), and hzshm_view_release then
 *                              reports HZSHM_ECHANGED for it (the entry was
 *                              reused while viewed; hzshm.h: discard what was read)
 *   HZSHM_SHIM_DEL_RC=N        hzshm_del returns N without asking the agent
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "hzshm.h"

/* The fake views this thread holds (released LIFO, before any real one
 * taken after them: the binding releases each view before the next). */
static __thread int torn_open;

/* libhzshm's own definition. Python loads the extension module (and so
 * libhzshm) RTLD_LOCAL, out of RTLD_NEXT's reach: the library is found by its
 * soname among the loaded objects. */
static void *real(const char *name) {
  static void *lib;
  if (lib == NULL) lib = dlopen(HZSHM_SONAME, RTLD_LAZY | RTLD_NOLOAD);
  void *f = lib ? dlsym(lib, name) : NULL;
  if (f == NULL) abort(); /* libhzshm is not loaded: nothing to wrap */
  return f;
}

/* 1: a byte[] of junk, 2: a String that is not UTF-8, 0: the real call. */
static int torn(void) {
  const char *e = getenv("HZSHM_SHIM_TORN");
  if (e == NULL) return 0;
  return strcmp(e, "bytes") == 0 ? 1 : strcmp(e, "str") == 0 ? 2 : 0;
}

static int fake_view(int kind, const void **val, size_t *vlen, int32_t *type) {
  static const char junk_bytes[] = "torn!", junk_str[] = "\xff\xfe";
  *val = kind == 1 ? junk_bytes : junk_str;
  *vlen = kind == 1 ? 5 : 2;
  if (type) *type = kind == 1 ? HZSHM_TYPE_BYTES : HZSHM_TYPE_STRING;
  torn_open++;
  return 0;
}

int hzshm_get_view_local_typed(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen,
                               int32_t *type) {
  int kind = torn();
  if (kind) return fake_view(kind, val, vlen, type);
  int (*f)(hzshm_session_t *, const void *, size_t, const void **, size_t *, int32_t *) =
      real("hzshm_get_view_local_typed");
  return f(s, key, klen, val, vlen, type);
}

int hzshm_get_view_local(hzshm_session_t *s, const void *key, size_t klen, const void **val, size_t *vlen) {
  int kind = torn();
  if (kind) return fake_view(kind, val, vlen, NULL);
  int (*f)(hzshm_session_t *, const void *, size_t, const void **, size_t *) = real("hzshm_get_view_local");
  return f(s, key, klen, val, vlen);
}

int hzshm_view_release(hzshm_session_t *s) {
  if (torn_open > 0) {
    torn_open--;
    return HZSHM_ECHANGED;
  }
  int (*f)(hzshm_session_t *) = real("hzshm_view_release");
  return f(s);
}

int hzshm_del(hzshm_session_t *s, const void *key, size_t klen) {
  const char *e = getenv("HZSHM_SHIM_DEL_RC");
  if (e != NULL && *e) return (int)strtol(e, NULL, 10);
  int (*f)(hzshm_session_t *, const void *, size_t) = real("hzshm_del");
  return f(s, key, klen);
}
