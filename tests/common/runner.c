/* runner.c - the main() of the C tests that declare TEST_CASEs (runner.h):
 * selects cases by name, runs each in a forked child under a deadline and
 * reports every case by name. The parent blocks SIGCHLD and waits for it with
 * sigtimedwait, so the deadline needs no timer signal (which a case may use). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"

#define MAX_CASES 512

const char *t_case_name;

static t_case_t *cases[MAX_CASES];
static int ncases;
static void (*setup_fn)(void), (*teardown_fn)(void);
static int nparams;
static char **params;

void t_register(t_case_t *c) {
  if (ncases == MAX_CASES) {
    fprintf(stderr, "runner: more than %d cases\n", MAX_CASES);
    abort();
  }
  c->seq = ncases;
  cases[ncases++] = c;
}

void t_register_arg(const char *name, void (*fn)(const void *arg), const void *arg, const char *file, int line) {
  static t_case_t pool[MAX_CASES];
  static int npool;
  if (npool == MAX_CASES) {
    fprintf(stderr, "runner: more than %d table cases\n", MAX_CASES);
    abort();
  }
  t_case_t *c = &pool[npool++];
  *c = (t_case_t){.name = name, .file = file, .line = line, .fn_arg = fn, .arg = arg};
  t_register(c);
}

static void run_case(const t_case_t *c) {
  if (c->fn)
    c->fn();
  else
    c->fn_arg(c->arg);
}

void t_register_setup(void (*fn)(void)) { setup_fn = fn; }
void t_register_teardown(void (*fn)(void)) { teardown_fn = fn; }

const char *t_param(int i, const char *fallback) { return i >= 0 && i < nparams ? params[i] : fallback; }
int t_param_count(void) { return nparams; }

static const char *prog_name = "test";

const char *t_param_required(int i, const char *what) {
  const char *p = t_param(i, NULL);
  if (p == NULL) {
    fprintf(stderr, "usage: %s [case...] -- %s (parameter %d missing)\n", prog_name, what, i + 1);
    exit(2);
  }
  return p;
}

/* Constructors run in no promised order: cases run in source order. */
static int by_place(const void *a, const void *b) {
  const t_case_t *x = *(t_case_t *const *)a, *y = *(t_case_t *const *)b;
  int c = strcmp(x->file, y->file);
  return c ? c : x->line != y->line ? x->line - y->line : x->seq - y->seq;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static t_case_t *find(const char *name) {
  for (int i = 0; i < ncases; i++)
    if (strcmp(cases[i]->name, name) == 0) return cases[i];
  return NULL;
}

static void usage(const char *prog) {
  fprintf(stderr, "usage: %s [--list] [--no-fork] [--timeout S] [case...] [-- param...]\n", prog);
}

/* Runs c in a child; 1 if it passed. *why gets the reason of a failure. */
static int run_forked(t_case_t *c, double timeout_s, const sigset_t *old_mask, char *why, size_t whylen) {
  /* Set by the child after the case returned: an exit(0) in the middle of a
   * case is not a pass. */
  volatile int *returned = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (returned == MAP_FAILED) {
    snprintf(why, whylen, "mmap: %s", strerror(errno));
    return 0;
  }
  *returned = 0;
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pid = fork();
  if (pid < 0) {
    snprintf(why, whylen, "fork: %s", strerror(errno));
    munmap((void *)returned, sizeof(int));
    return 0;
  }
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    t_case_name = c->name;
    run_case(c);
    *returned = 1;
    exit(0);
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  double deadline = now_s() + timeout_s;
  int status = 0, timed_out = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    double left = deadline - now_s();
    if (left <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      timed_out = 1;
      break;
    }
    struct timespec ts = {(time_t)left, (long)((left - (double)(time_t)left) * 1e9)};
    (void)sigtimedwait(&chld, NULL, &ts); /* a child exited, the time is up, or EINTR */
  }
  int ok = 0;
  if (timed_out)
    snprintf(why, whylen, "timed out after %.0f s (killed)", timeout_s);
  else if (WIFSIGNALED(status))
    snprintf(why, whylen, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
  else if (WEXITSTATUS(status) != 0)
    snprintf(why, whylen, "exit %d", WEXITSTATUS(status));
  else if (!*returned)
    snprintf(why, whylen, "exit 0 before the end of the case");
  else
    ok = 1;
  munmap((void *)returned, sizeof(int));
  return ok;
}

int main(int argc, char **argv) {
  const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  prog_name = prog;
  qsort(cases, (size_t)ncases, sizeof cases[0], by_place);
  int list = 0, no_fork = 0;
  const char *env_to = getenv("HZSHM_TEST_CASE_TIMEOUT");
  /* 280 s: under the 300 s ctest timeout of most test files, and above what
   * the slowest case needs under TSan on a loaded machine (big_threaded: 163 s). */
  double timeout_s = env_to && atof(env_to) > 0 ? atof(env_to) : 280;
  /* Static, not on main's stack: a process a case forks from one of its
   * threads has no main stack, and LeakSanitizer would call it a leak. */
  static t_case_t *sel[MAX_CASES];
  int nsel = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      params = argv + i + 1;
      nparams = argc - i - 1;
      break;
    } else if (strcmp(argv[i], "--list") == 0) {
      list = 1;
    } else if (strcmp(argv[i], "--no-fork") == 0) {
      no_fork = 1;
    } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc && atof(argv[i + 1]) > 0) {
      timeout_s = atof(argv[++i]);
    } else if (argv[i][0] == '-') {
      usage(prog);
      return 2;
    } else {
      t_case_t *c = find(argv[i]);
      if (!c) {
        fprintf(stderr, "%s: no case named '%s' (--list shows them)\n", prog, argv[i]);
        return 2;
      }
      if (nsel == MAX_CASES) {
        fprintf(stderr, "%s: more than %d case names\n", prog, MAX_CASES);
        return 2;
      }
      sel[nsel++] = c;
    }
  }
  if (list) {
    for (int i = 0; i < ncases; i++) printf("%s\n", cases[i]->name);
    return 0;
  }
  if (nsel == 0) {
    for (int i = 0; i < ncases; i++) sel[i] = cases[i];
    nsel = ncases;
  }
  sigset_t chld, old_mask;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, &old_mask);
  if (setup_fn) setup_fn();
  int passed = 0, failed = 0;
  char failed_names[2048] = "";
  for (int i = 0; i < nsel; i++) {
    t_case_t *c = sel[i];
    fprintf(stderr, "== %s\n", c->name);
    double t0 = now_s();
    char why[160] = "";
    int ok;
    if (no_fork) {
      sigprocmask(SIG_SETMASK, &old_mask, NULL);
      t_case_name = c->name;
      run_case(c); /* a failed CHECK exits the whole run here */
      t_case_name = NULL;
      ok = 1;
    } else {
      ok = run_forked(c, timeout_s, &old_mask, why, sizeof why);
    }
    double dt = now_s() - t0;
    if (ok) {
      passed++;
      fprintf(stderr, "ok   %s (%.2f s)\n", c->name, dt);
    } else {
      failed++;
      fprintf(stderr, "FAIL %s: %s (%.2f s)\n", c->name, why, dt);
      size_t n = strlen(failed_names);
      snprintf(failed_names + n, sizeof failed_names - n, "%s%s", n ? ", " : "", c->name);
    }
  }
  if (teardown_fn) teardown_fn();
  fprintf(stderr, "%s: %d passed, %d failed%s%s\n", prog, passed, failed, failed ? ": " : "", failed_names);
  return failed ? 1 : 0;
}
