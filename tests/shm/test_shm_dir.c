/* test_shm_dir.c - HZSHM_SHM_DIR: a segment in another directory (writer in
 * this process, a reader in a child process), the file names it produces, a
 * segment large enough for 2 MiB alignment, and bad values (relative, too
 * long, missing directory) that fail with a clear code and create nothing. */
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"

static char g_dir[64];

static hzshm__shm_config_t cfg(uint64_t mem) {
  hzshm__shm_config_t c = {.memory_bytes = mem, .max_sessions = 8, .reader_slots = 8, .partition_count = 271};
  return c;
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Child: attach under the current environment, read key k of session s. */
static int child_reads(const char *name, const char *want) {
  pid_t p = t_fork();
  CHECK_GE(p, 0);
  if (p == 0) {
    t_child_dies_with_parent();
    hzshm__shm_t *r;
    hzshm__sref_t ref;
    char buf[64];
    size_t n = 0;
    int rc = hzshm__shm_r_attach(name, &r);
    if (rc == -ENOENT) _exit(3);
    if (rc != 0) _exit(4);
    if (hzshm__shm_r_session(r, "s", 1, &ref) != 0) _exit(5);
    rc = hzshm__shm_r_get(r, &ref, "k", 1, buf, sizeof buf, &n);
    _exit(rc == 0 && n == strlen(want) && memcmp(buf, want, n) == 0 ? 0 : 6);
  }
  int st = 0;
  CHECK_EQ(waitpid(p, &st, 0), p);
  CHECK(WIFEXITED(st));
  return WEXITSTATUS(st);
}

static void in_dir(uint64_t mem, int trailing_slash) {
  const char *name = t_name("dir");
  char dir[80], path[HZSHM_SHM_PATH_MAX], dflt[HZSHM_SHM_PATH_MAX];
  snprintf(dir, sizeof dir, "%s%s", g_dir, trailing_slash ? "/" : "");
  hzshm__shm_config_t c = cfg(mem);
  hzshm__shm_t *w;
  hzshm__sref_t ref;
  CHECK_EQ(setenv("HZSHM_SHM_DIR", dir, 1), 0);
  CHECK_RC(hzshm__shm_path(name, 0, path, sizeof path), 0);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), 0);
  CHECK_RC(hzshm__shm_w_session(w, "s", 1, &ref), 0);
  CHECK_RC(hzshm__shm_w_put(w, &ref, "k", 1, "value", 5, 0, hzshm__shm_w_stamp(w), 0, 0), 0);
  /* the files are in the directory, and nowhere else */
  char want[HZSHM_SHM_PATH_MAX];
  snprintf(want, sizeof want, "%s/hzshm.%s", g_dir, name);
  CHECK_STREQ(path, want);
  CHECK(exists(want));
  snprintf(want, sizeof want, "%s/hzshm.%s.rd", g_dir, name);
  CHECK(exists(want));
  snprintf(dflt, sizeof dflt, "/dev/shm/hzshm.%s", name);
  CHECK(!exists(dflt));
  hzshm__shm_stats_t st;
  CHECK_RC(hzshm__shm_stats(w, &st), 0);
  CHECK_GT(st.memory_limit, 0);
  CHECK_LE(st.memory_limit, mem);
  if (mem >= (64u << 20)) CHECK_GE(st.memory_limit, mem - (mem / 8)); /* alignment costs <= 1/8 */
  /* a reader process with the same HZSHM_SHM_DIR reads the value ... */
  CHECK_EQ(child_reads(name, "value"), 0);
  /* ... one with the default directory finds no segment */
  CHECK_EQ(unsetenv("HZSHM_SHM_DIR"), 0);
  CHECK_EQ(child_reads(name, "value"), 3);
  CHECK_EQ(setenv("HZSHM_SHM_DIR", "", 1), 0); /* empty = default too */
  CHECK_EQ(child_reads(name, "value"), 3);
  CHECK_EQ(setenv("HZSHM_SHM_DIR", dir, 1), 0);
  hzshm__shm_close(w);
  CHECK_RC(hzshm__shm_unlink(name), 0);
  CHECK(!exists(path));
  CHECK_EQ(unsetenv("HZSHM_SHM_DIR"), 0);
}

TEST_CASE(small_segment) { in_dir(4u << 20, 0); }
TEST_CASE(large_segment_trailing_slash) { in_dir(96u << 20, 1); }

TEST_CASE(bad_values) {
  const char *name = t_name("dirbad");
  hzshm__shm_config_t c = cfg(4u << 20);
  hzshm__shm_t *w = NULL, *r = NULL;
  char path[HZSHM_SHM_PATH_MAX], longdir[HZSHM_SHM_DIR_MAX + 8];
  memset(longdir, 'a', sizeof longdir - 1);
  longdir[0] = '/';
  longdir[sizeof longdir - 1] = 0;
  const char *bad[] = {"relative/dir", "dev/shm", ".", longdir};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_EQ(setenv("HZSHM_SHM_DIR", bad[i], 1), 0);
    CHECK_RC(hzshm__shm_path(name, 0, path, sizeof path), HZSHM_EINVAL);
    CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), HZSHM_EINVAL);
    CHECK(w == NULL);
    CHECK_RC(hzshm__shm_r_attach(name, &r), HZSHM_EINVAL);
    CHECK(r == NULL);
    CHECK_RC(hzshm__shm_unlink(name), HZSHM_EINVAL);
  }
  /* nothing was created, neither relative to the cwd nor in the default dir */
  CHECK(!exists("relative") && !exists("dev"));
  CHECK_EQ(unsetenv("HZSHM_SHM_DIR"), 0);
  CHECK_RC(hzshm__shm_path(name, 0, path, sizeof path), 0);
  CHECK(!exists(path));
  /* a directory that does not exist: the open's own errno */
  CHECK_EQ(setenv("HZSHM_SHM_DIR", "/nonexistent-hzshm-dir", 1), 0);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w, NULL), -ENOENT);
  CHECK_RC(hzshm__shm_r_attach(name, &r), -ENOENT);
  /* the longest allowed directory is accepted by the path builder */
  longdir[HZSHM_SHM_DIR_MAX] = 0;
  CHECK_EQ(setenv("HZSHM_SHM_DIR", longdir, 1), 0);
  CHECK_RC(hzshm__shm_path(name, 1, path, sizeof path), 0);
  CHECK_EQ(strlen(path), HZSHM_SHM_DIR_MAX + strlen("/hzshm.") + strlen(name) + 3);
  CHECK_RC(hzshm__shm_path(name, 1, path, 16), HZSHM_EINVAL); /* buffer too small */
  CHECK_RC(hzshm__shm_path("bad/name", 0, path, sizeof path), HZSHM_EINVAL);
  CHECK_EQ(unsetenv("HZSHM_SHM_DIR"), 0);
}

TEST_SETUP {
  snprintf(g_dir, sizeof g_dir, "/dev/shm/hzshm-dirtest.XXXXXX");
  CHECK(mkdtemp(g_dir) != NULL);
  CHECK_EQ(chdir(g_dir), 0); /* relative values would land here */
}

TEST_TEARDOWN {
  CHECK_EQ(chdir("/"), 0);
  CHECK_EQ(rmdir(g_dir), 0); /* empty: every file was unlinked */
}
