/* runner.h - test cases by name (runner.c holds main). A test file declares
 *
 *   TEST_CASE(name) { ...CHECKs... }
 *
 * and links hzshm_test_runner. The binary then takes
 *
 *   test_x [--list] [--no-fork] [--timeout S] [case...] [-- param...]
 *
 * no case names: every case, in the file's order; names: only those (an
 * unknown name is an error, exit 2); --list: the names, one a line. Each case
 * runs in a forked child of its own, so a failed CHECK, an abort, a crash, a
 * sanitizer report or a hang (the deadline, default 280 s: --timeout S or
 * HZSHM_TEST_CASE_TIMEOUT) ends that case only: it is reported with its name
 * and the other cases still run. The summary "N passed, M failed: names"
 * ends the run; the exit code is 1 if any case failed. --no-fork runs the
 * cases one after the other in the runner's own process (for a debugger;
 * the first failure then ends the run).
 *
 * A table of scenarios registers one case per row with t_register_arg.
 *
 * TEST_SETUP { ... } runs once in the parent before the first case (not for
 * --list): what it builds is inherited by every case's child; TEST_TEARDOWN
 * { ... } once after the last (a failed CHECK there fails the run). The words after
 * `--` are the file's parameters: t_param(i, fallback). */
#ifndef HZSHM_TESTS_COMMON_RUNNER_H
#define HZSHM_TESTS_COMMON_RUNNER_H

#include "check.h"

typedef struct t_case {
  const char *name;
  void (*fn)(void);
  const char *file;
  int line;
  void (*fn_arg)(const void *arg); /* cases of a table (t_register_arg): fn is NULL */
  const void *arg;
  int seq; /* registration order, among cases of one line */
} t_case_t;

void t_register(t_case_t *c);
/* One case per row of a table, from a constructor of the test file: the
 * runner keeps name (static storage) and calls fn(arg). */
void t_register_arg(const char *name, void (*fn)(const void *arg), const void *arg, const char *file, int line);
void t_register_setup(void (*fn)(void));
void t_register_teardown(void (*fn)(void));

#define TEST_CASE(case_)                                                     \
  static void t_case_##case_(void);                                          \
  __attribute__((constructor)) static void t_register_##case_(void) {        \
    static t_case_t c_ = {.name = #case_, .fn = t_case_##case_, .file = __FILE__, .line = __LINE__}; \
    t_register(&c_);                                                         \
  }                                                                          \
  static void t_case_##case_(void)

#define TEST_SETUP                                                           \
  static void t_setup_fn(void);                                              \
  __attribute__((constructor)) static void t_register_setup_fn(void) {       \
    t_register_setup(t_setup_fn);                                            \
  }                                                                          \
  static void t_setup_fn(void)

#define TEST_TEARDOWN                                                        \
  static void t_teardown_fn(void);                                           \
  __attribute__((constructor)) static void t_register_teardown_fn(void) {    \
    t_register_teardown(t_teardown_fn);                                      \
  }                                                                          \
  static void t_teardown_fn(void)

/* The i-th parameter after `--` (0-based), or fallback. */
const char *t_param(int i, const char *fallback);
/* The i-th parameter, which the file needs: without it the run ends with a
 * usage line naming it (`what`) and exit code 2. */
const char *t_param_required(int i, const char *what);
/* How many parameters followed `--`. */
int t_param_count(void);

#endif /* HZSHM_TESTS_COMMON_RUNNER_H */
