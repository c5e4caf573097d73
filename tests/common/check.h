/* check.h - the assertions of every C test. A failed check prints file:line,
 * the case it failed in (when the test runs under tests/common/runner.c) and
 * what it compared, then exits 1; under the runner only that case's child
 * process dies, the other cases still run.
 *
 *   CHECK(cond)            the expression text
 *   CHECK_RC(expr, want)   both return codes with their names (hzshm_err_name)
 *   CHECK_EQ/NE/LT/LE/GT/GE(a, b)
 *                          integers, pointers, floats: both expressions and
 *                          both values. The comparison is by value (a negative
 *                          signed number is less than any unsigned one), which
 *                          is what `a op b` means for every pair of operands
 *                          that compiles without -Wsign-compare warnings.
 *   CHECK_STREQ(a, b)      two C strings (NULL allowed), both printed
 *   CHECK_MEMEQ(a, b, n)   n bytes: the first differing offset and a hex
 *                          excerpt of both sides around it
 *
 * Every operand is evaluated exactly once, left to right. In C++ only CHECK
 * and CHECK_RC exist (the value macros use _Generic). */
#ifndef HZSHM_TESTS_COMMON_CHECK_H
#define HZSHM_TESTS_COMMON_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hzshm.h"

/* The name of the case running (tests/common/runner.c); NULL without the runner. */
extern const char *t_case_name __attribute__((weak));

static inline void t_fail_where(const char *file, int line) {
  if (&t_case_name != NULL && t_case_name != NULL)
    fprintf(stderr, "%s:%d: [%s] ", file, line, t_case_name);
  else
    fprintf(stderr, "%s:%d: ", file, line);
}

#define CHECK(cond)                                          \
  do {                                                       \
    if (!(cond)) {                                           \
      t_fail_where(__FILE__, __LINE__);                      \
      fprintf(stderr, "CHECK failed: %s\n", #cond);          \
      exit(1);                                               \
    }                                                        \
  } while (0)

#define CHECK_RC(expr, want)                                                             \
  do {                                                                                   \
    int chk_rc_ = (expr), chk_want_ = (want);                                            \
    if (chk_rc_ != chk_want_) {                                                          \
      t_fail_where(__FILE__, __LINE__);                                                  \
      fprintf(stderr, "%s = %s (%d), want %s (%d)\n", #expr, hzshm_err_name(chk_rc_),    \
              chk_rc_, hzshm_err_name(chk_want_), chk_want_);                            \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

#ifndef __cplusplus

/* One operand, kept with its kind so it prints and compares by value. */
typedef struct {
  char kind; /* 'i' signed, 'u' unsigned, 'f' floating, 'p' pointer */
  intmax_t i;
  uintmax_t u;
  long double f;
} t_val_t;

static inline t_val_t t_val_i(intmax_t v) { return (t_val_t){.kind = 'i', .i = v}; }
static inline t_val_t t_val_u(uintmax_t v) { return (t_val_t){.kind = 'u', .u = v}; }
static inline t_val_t t_val_f(long double v) { return (t_val_t){.kind = 'f', .f = v}; }
static inline t_val_t t_val_p(const volatile void *v) { return (t_val_t){.kind = 'p', .u = (uintptr_t)v}; }

#define T_VAL_(x)                                                                               \
  _Generic((x), _Bool: t_val_u, char: t_val_i, signed char: t_val_i, short: t_val_i, int: t_val_i, \
           long: t_val_i, long long: t_val_i, unsigned char: t_val_u, unsigned short: t_val_u,    \
           unsigned: t_val_u, unsigned long: t_val_u, unsigned long long: t_val_u,               \
           float: t_val_f, double: t_val_f, long double: t_val_f, default: t_val_p)(x)

/* -1, 0, 1 as a < b, a == b, a > b by value; 2 unordered (a NaN). */
static inline int t_val_cmp(t_val_t a, t_val_t b) {
  if (a.kind == 'f' || b.kind == 'f') {
    long double x = a.kind == 'f' ? a.f : a.kind == 'i' ? (long double)a.i : (long double)a.u;
    long double y = b.kind == 'f' ? b.f : b.kind == 'i' ? (long double)b.i : (long double)b.u;
    return x < y ? -1 : x > y ? 1 : x == y ? 0 : 2;
  }
  if (a.kind == 'i' && b.kind == 'i') return a.i < b.i ? -1 : a.i > b.i ? 1 : 0;
  if (a.kind == 'i' && a.i < 0) return -1; /* a negative, b unsigned or a pointer */
  if (b.kind == 'i' && b.i < 0) return 1;
  uintmax_t x = a.kind == 'i' ? (uintmax_t)a.i : a.u, y = b.kind == 'i' ? (uintmax_t)b.i : b.u;
  return x < y ? -1 : x > y ? 1 : 0;
}

static inline void t_val_print(FILE *f, t_val_t v) {
  switch (v.kind) {
  case 'i': fprintf(f, "%jd", v.i); break;
  case 'u': fprintf(f, "%ju", v.u); break;
  case 'f': fprintf(f, "%Lg", v.f); break;
  default: fprintf(f, "%p", (void *)(uintptr_t)v.u); break;
  }
}

/* op: 0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >= */
static inline void t_check_cmp(const char *file, int line, int op, const char *ea, const char *eb,
                               t_val_t a, t_val_t b) {
  static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
  int c = t_val_cmp(a, b);
  int ok = c == 2 ? op == 1 /* only != holds for a NaN */
         : op == 0 ? c == 0 : op == 1 ? c != 0 : op == 2 ? c < 0 : op == 3 ? c <= 0 : op == 4 ? c > 0 : c >= 0;
  if (ok) return;
  t_fail_where(file, line);
  fprintf(stderr, "CHECK failed: %s %s %s (", ea, ops[op], eb);
  t_val_print(stderr, a);
  fprintf(stderr, " %s ", ops[op]);
  t_val_print(stderr, b);
  fprintf(stderr, ")\n");
  exit(1);
}

/* ea, eb: the operands' text as written (stringized here, not after expansion). */
#define T_CMP_(op, a, b, ea, eb)                                  \
  do {                                                            \
    t_val_t t_a_ = T_VAL_(a);                                     \
    t_val_t t_b_ = T_VAL_(b);                                     \
    t_check_cmp(__FILE__, __LINE__, op, ea, eb, t_a_, t_b_);      \
  } while (0)
#define CHECK_EQ(a, b) T_CMP_(0, a, b, #a, #b)
#define CHECK_NE(a, b) T_CMP_(1, a, b, #a, #b)
#define CHECK_LT(a, b) T_CMP_(2, a, b, #a, #b)
#define CHECK_LE(a, b) T_CMP_(3, a, b, #a, #b)
#define CHECK_GT(a, b) T_CMP_(4, a, b, #a, #b)
#define CHECK_GE(a, b) T_CMP_(5, a, b, #a, #b)

static inline void t_check_streq(const char *file, int line, const char *ea, const char *eb, const char *a,
                                 const char *b) {
  if (a == b || (a && b && strcmp(a, b) == 0)) return;
  t_fail_where(file, line);
  fprintf(stderr, "CHECK failed: strcmp(%s, %s) == 0\n  %s = ", ea, eb, ea);
  fprintf(stderr, a ? "\"%.300s\"" : "NULL%s", a ? a : "");
  fprintf(stderr, "\n  %s = ", eb);
  fprintf(stderr, b ? "\"%.300s\"" : "NULL%s", b ? b : "");
  fprintf(stderr, "\n");
  exit(1);
}
#define CHECK_STREQ(a, b) t_check_streq(__FILE__, __LINE__, #a, #b, (a), (b))

static inline void t_hex_excerpt(const char *label, const unsigned char *p, size_t from, size_t to) {
  fprintf(stderr, "  %s @%zu:", label, from);
  for (size_t i = from; i < to; i++) fprintf(stderr, " %02x", p[i]);
  fprintf(stderr, "\n");
}

static inline void t_check_memeq(const char *file, int line, const char *ea, const char *eb, const char *en,
                                 const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  if (n == 0 || memcmp(x, y, n) == 0) return;
  size_t d = 0;
  while (x[d] == y[d]) d++;
  size_t from = d > 8 ? d - 8 : 0, to = n - d > 16 ? d + 16 : n;
  t_fail_where(file, line);
  fprintf(stderr, "CHECK failed: memcmp(%s, %s, %s) == 0: %zu bytes, first difference at offset %zu\n", ea, eb,
          en, n, d);
  t_hex_excerpt(ea, x, from, to);
  t_hex_excerpt(eb, y, from, to);
  exit(1);
}
#define CHECK_MEMEQ(a, b, n) t_check_memeq(__FILE__, __LINE__, #a, #b, #n, (a), (b), (n))

#endif /* !__cplusplus */

#endif /* HZSHM_TESTS_COMMON_CHECK_H */
