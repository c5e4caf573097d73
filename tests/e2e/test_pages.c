/* test_pages: the agent's start-up line saying which pages back its segment
 * (issue 15), and hzshm_segment_huge_pages on /metrics; no member needed
 * (the agent's member is a closed port: it runs, connecting).
 *   - devshm: on /dev/shm, a tmpfs without huge= on this machine, the line
 *     says 4 KiB, names /dev/shm as a tmpfs without huge=, the value of
 *     transparent_hugepage/shmem_enabled as this test reads it, and the
 *     remedy (tools/hugetmpfs, HZSHM_SHM_DIR); the gauge is 0
 *   - huge_tmpfs: a tmpfs mounted huge=within_size in a private mount
 *     namespace as HZSHM_SHM_DIR: the line says 2 MiB pages, and
 *     /proc/PID/smaps of the agent shows PMD-mapped kB for the data file
 *     (the part written at open is enough); the gauge is 1. Skipped when the
 *     kernel refuses huge= (EINVAL: no THP for tmpfs) or there is no mount
 *     namespace (not root)
 *   - tmpfs_no_huge: a subdirectory of a tmpfs without huge= mounted over a
 *     huge one: 4 KiB, the line names the containing mount point and judges
 *     the mount on top. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "e2e.h"

#define PORT_DEVSHM 5768 /* metrics ports: in the e2e range, no fixture or other test uses them */
#define PORT_HUGE 5769

static char logp[160], sock[108], line[2048];
static char resp[1 << 18];

/* The first line of logp containing needle, into line[] (CHECKs that there is one). */
static const char *log_line(const char *needle) {
  FILE *f = fopen(logp, "r");
  CHECK(f);
  int found = 0;
  while (!found && fgets(line, sizeof line, f)) found = strstr(line, needle) != NULL;
  fclose(f);
  CHECK(found);
  return line;
}

/* Starts an agent for cache name (with --metrics-listen on port unless 0)
 * and waits (30 s) for its pages line (every start logs exactly one):
 * returns the line. */
static pid_t start(const char *name, int port, const char **pline) {
  snprintf(logp, sizeof logp, "/tmp/hzshm-e2e-pages-%s.%d.log", name, (int)getpid());
  snprintf(sock, sizeof sock, "/tmp/hzshm-e2e-pages-%s.%d.sock", name, (int)getpid());
  char listen[32];
  snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
  const char *av[] = {"hzshm-agent", "-n", name, "-m", "127.0.0.1:9", "--memory", "64m", "--socket", sock,
                      "--unlink-on-exit", port ? "--metrics-listen" : NULL, listen, NULL};
  unlink(logp);
  pid_t pid = e2e_agent_spawn_argv(av, logp);
  e2e_logged_t s = {logp, " info: segment "};
  CHECK_GE(e2e_wait(e2e_logged, &s, 30000), 0);
  CHECK_EQ(e2e_file_count(logp, " info: segment "), 1);
  *pline = log_line(" info: segment ");
  printf("%s: %s", name, *pline);
  e2e_logged_t up = {logp, " info: serving cache "}; /* the metrics endpoint listens from then on */
  CHECK_GE(e2e_wait(e2e_logged, &up, 30000), 0);
  return pid;
}

/* hzshm_segment_huge_pages of cache name on the endpoint at port. */
static double gauge(int port, const char *name) {
  const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
  CHECK_GT(e2e_http(port, req, strlen(req), resp, sizeof resp), 0);
  CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
  CHECK_NE(strstr(resp, "# TYPE hzshm_segment_huge_pages gauge\n"), NULL);
  char series[128];
  snprintf(series, sizeof series, "hzshm_segment_huge_pages{cache=\"%s\"}", name);
  return e2e_prom_sample(resp, series);
}

static void stop(pid_t pid) {
  kill(pid, SIGTERM);
  CHECK_RC(e2e_agent_wait_exit(pid, 30000), 0);
  unlink(logp);
}

/* The [bracketed] value of shmem_enabled, or NULL (a kernel without THP). */
static const char *shmem_enabled(void) {
  static char v[64];
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
  if (!f) return NULL;
  char buf[256];
  int ok = fgets(buf, sizeof buf, f) != NULL;
  fclose(f);
  char *lb = ok ? strchr(buf, '[') : NULL, *rb = lb ? strchr(lb, ']') : NULL;
  CHECK(rb);
  snprintf(v, sizeof v, "%.*s", (int)(rb - lb - 1), lb + 1);
  return v;
}

/* 1 if a /dev/shm line of /proc/self/mountinfo has a huge= other than never. */
static int devshm_has_huge(void) {
  FILE *f = fopen("/proc/self/mountinfo", "r");
  CHECK(f);
  char l[4096];
  int huge = 0;
  while (fgets(l, sizeof l, f)) {
    char *h = strstr(l, ",huge=");
    if (strstr(l, " /dev/shm ") && h && strncmp(h, ",huge=never", 11) != 0) huge = 1;
  }
  fclose(f);
  return huge;
}

/* The ShmemPmdMapped + FilePmdMapped kB of pid's mappings of path (-1: none). */
static long long smaps_pmd_kb(pid_t pid, const char *path) {
  char p[64];
  snprintf(p, sizeof p, "/proc/%d/smaps", (int)pid);
  FILE *f = fopen(p, "r");
  CHECK(f);
  char l[4096];
  long long kb = -1;
  int ours = 0;
  while (fgets(l, sizeof l, f)) {
    long long v;
    if (strchr(l, '-') && strchr(l, '-') < strchr(l, ' ') && strchr(l, '/')) { /* "lo-hi perms ... /path" */
      char *nl = strchr(l, '\n');
      if (nl) *nl = 0;
      ours = !strcmp(strchr(l, '/'), path);
      if (ours && kb < 0) kb = 0;
    } else if (ours && (sscanf(l, "ShmemPmdMapped: %lld kB", &v) == 1 || sscanf(l, "FilePmdMapped: %lld kB", &v) == 1)) {
      kb += v;
    }
  }
  fclose(f);
  return kb;
}

TEST_CASE(devshm) {
  const char *knob = shmem_enabled();
  if (knob == NULL) {
    printf("skipped: no /sys/kernel/mm/transparent_hugepage/shmem_enabled (a kernel without THP)\n");
    return;
  }
  if (!strcmp(knob, "force") || devshm_has_huge()) {
    printf("skipped: /dev/shm may get huge pages here (shmem_enabled [%s], or a huge= option on /dev/shm)\n", knob);
    return;
  }
  unsetenv("HZSHM_SHM_DIR");
  const char *l;
  pid_t pid = start("pg_shm", PORT_DEVSHM, &l);
  CHECK_NE(strstr(l, " info: segment on 4 KiB pages: "), NULL);
  char want[128];
  snprintf(want, sizeof want, "transparent_hugepage/shmem_enabled is [%s]", knob);
  if (!strcmp(knob, "deny")) {
    CHECK_NE(strstr(l, want), NULL);
    CHECK_NE(strstr(l, "refuses huge pages on every tmpfs"), NULL);
  } else {
    CHECK_NE(strstr(l, "/dev/shm is a tmpfs without huge=, and "), NULL);
    CHECK_NE(strstr(l, want), NULL);
    CHECK_NE(strstr(l, "for 2 MiB pages: tools/hugetmpfs mount DIR (as root), then HZSHM_SHM_DIR=DIR"), NULL);
  }
  CHECK_EQ(smaps_pmd_kb(pid, "/dev/shm/hzshm.pg_shm"), 0); /* what the line says */
  CHECK_EQ(gauge(PORT_DEVSHM, "pg_shm"), 0);
  stop(pid);
}

/* A private mount namespace for the rest of the case: 0, or -1 after
 * printing why the case is skipped. The case runs in a child of its own
 * (tests/common/runner.c): the namespace and its mounts go when it exits,
 * whatever happens. */
static int private_mounts(void) {
  if (geteuid() != 0) {
    printf("skipped: not root (needs a mount namespace and mount(2))\n");
    return -1;
  }
  if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
    printf("skipped: no private mount namespace here (%s)\n", strerror(errno));
    return -1;
  }
  return 0;
}

/* Mounts a tmpfs with options opts on dir: 0, or the errno (CHECKs any but EINVAL). */
static int mount_tmpfs(const char *dir, const char *opts) {
  if (mount("hzshm-e2e-pages", dir, "tmpfs", 0, opts) == 0) return 0;
  int err = errno;
  if (err != EINVAL) fprintf(stderr, "mount tmpfs -o %s on %s: %s\n", opts, dir, strerror(err));
  CHECK_EQ(err, EINVAL);
  return err;
}

#define HUGE_OPTS "huge=within_size,size=256m,mode=1777"

TEST_CASE(huge_tmpfs) {
  if (private_mounts() != 0) return;
  char dir[] = "/tmp/hzshm-e2e-huge.XXXXXX";
  CHECK_NE(mkdtemp(dir), NULL);
  if (mount_tmpfs(dir, HUGE_OPTS) != 0) {
    rmdir(dir);
    printf("skipped: the kernel refuses tmpfs huge=within_size (EINVAL: no transparent huge pages for tmpfs)\n");
    return;
  }
  setenv("HZSHM_SHM_DIR", dir, 1);
  const char *l;
  pid_t pid = start("pg_huge", PORT_HUGE, &l);
  CHECK_NE(strstr(l, " info: segment on 2 MiB pages ("), NULL);
  char data[256];
  snprintf(data, sizeof data, "%s/hzshm.pg_huge", dir);
  CHECK_NE(strstr(l, data), NULL);
  long long kb = smaps_pmd_kb(pid, data);
  printf("/proc/%d/smaps: %lld kB of %s PMD-mapped\n", (int)pid, kb, data);
  CHECK_GE(kb, 2048);
  CHECK_EQ(gauge(PORT_HUGE, "pg_huge"), 1);
  stop(pid);
  unsetenv("HZSHM_SHM_DIR");
  CHECK_EQ(umount(dir), 0);
  CHECK_EQ(rmdir(dir), 0);
}

/* A subdirectory of a tmpfs without huge= mounted over a huge one: the line
 * names the directory, the mount point that contains it and the top mount's
 * options (the last line of that mount point in mountinfo), not the hidden
 * huge one's. Without huge= support, the plain tmpfs alone. */
TEST_CASE(tmpfs_no_huge) {
  if (private_mounts() != 0) return;
  char dir[] = "/tmp/hzshm-e2e-nohuge.XXXXXX";
  CHECK_NE(mkdtemp(dir), NULL);
  int below = mount_tmpfs(dir, HUGE_OPTS) == 0;
  CHECK_EQ(mount_tmpfs(dir, "size=256m,mode=1777"), 0);
  char sub[64];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  CHECK_EQ(mkdir(sub, 0755), 0);
  setenv("HZSHM_SHM_DIR", sub, 1);
  const char *l;
  pid_t pid = start("pg_nohuge", 0, &l);
  char want[256];
  snprintf(want, sizeof want, " info: segment on 4 KiB pages: %s is a tmpfs (mounted at %s) without huge=, and ", sub,
           dir);
  CHECK_NE(strstr(l, want), NULL);
  CHECK_NE(strstr(l, "for 2 MiB pages: tools/hugetmpfs mount DIR"), NULL);
  stop(pid);
  printf("tmpfs without huge= over %s: 4 KiB, the top mount's options\n", below ? "a huge=within_size one" : "nothing");
  unsetenv("HZSHM_SHM_DIR");
  CHECK_EQ(rmdir(sub), 0);
  CHECK_EQ(umount(dir), 0);
  if (below) CHECK_EQ(umount(dir), 0);
  CHECK_EQ(rmdir(dir), 0);
}
