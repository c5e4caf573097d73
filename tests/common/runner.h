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
 * sanitizer report or a hang (the deadline, default 120 s: --timeout S or
 * HZSHM_TEST_CASE_TIMEOUT) ends that case only: it is reported with its name
 * and the other cases still run. The summary "N passed, M failed: names"
 * ends the run; the exit code is 1 if any case failed. --no-fork runs the
 * cases one after the other in the runner's own process (for a debugger;
 * the first failure then ends the run).
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
} t_case_t;

void t_register(t_case_t *c);
void t_register_setup(void (*fn)(void));
void t_register_teardown(void (*fn)(void));

#define TEST_CASE(name)                                                      \
  static void t_case_##name(void);                                           \
  __attribute__((constructor)) static void t_register_##name(void) {         \
    static t_case_t c_ = {#name, t_case_##name, __FILE__, __LINE__};         \
    t_register(&c_);                                                         \
  }                                                                          \
  static void t_case_##name(void)

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
/* How many parameters followed `--`. */
int t_param_count(void);

#endif /* HZSHM_TESTS_COMMON_RUNNER_H */
