/* test_shm_lockname.c - the writer lock counts only if the locked inode is
 * the one at the lock file's name itself, not one a symlink at the name
 * leads to (issue 10, review of writer_lock). Internal API.
 *
 * The attack: in the sticky /dev/shm a process of the allowed group may
 * create names while they are free, and where fs.protected_hardlinks is off
 * it may hard-link any file it can see. It links the live writer's lock file
 * to a name of its own; the writer removes its segment (close_unlink: the
 * lock file's name goes); a starting writer that opened the lock file just
 * before the unlink gets its lock just after the old writer closed it; the
 * attacker has meanwhile put a symlink to its link at the lock name. A check
 * that follows the symlink finds the locked inode "at the name": the
 * starting writer believes it is in charge, and a third writer, which
 * removes the planted symlink and makes a fresh lock file, is in charge as
 * well -- two writers on one data file.
 *
 * The window between open and lock is made deterministic here by wrapping
 * hzshm__shm_lock_byte at link time (-Wl,--wrap, this test only): when armed
 * it does to the lock file, just before the lock is taken, what the race
 * above leaves behind (the fd's inode reachable only through a link of the
 * attacker's, a symlink to it at the name).
 *
 * Case lost_during_open: the race docs/SHM.md cannot close (writer
 * exclusion: a planted lock file removed by name by one of two starting
 * writers, which may remove the other's fresh lock file instead) leaves a
 * writer in the middle of w_open whose lock file is no longer at the name
 * while another writer takes the segment. hzshm__shm_prd_scan (which w_open
 * calls after the lock) is wrapped too: when armed it removes the lock file
 * and opens that other writer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "shm_int.h"

int __real_hzshm__shm_lock_byte(int fd, short type, off_t at);

static char armed_lock[HZSHM_SHM_PATH_MAX]; /* the lock path to attack, "" when disarmed */
static char evil[HZSHM_SHM_PATH_MAX];       /* the attacker's link to the lock file */
static int attacked;

int __wrap_hzshm__shm_lock_byte(int fd, short type, off_t at) {
  struct stat of, named;
  if (armed_lock[0] && type == F_WRLCK && at == 0 && fstat(fd, &of) == 0 && lstat(armed_lock, &named) == 0 &&
      of.st_ino == named.st_ino && of.st_dev == named.st_dev) {
    CHECK(link(armed_lock, evil) == 0);    /* the attacker's second name for the lock file */
    CHECK(unlink(armed_lock) == 0);        /* the removing writer's close_unlink */
    CHECK(symlink(evil, armed_lock) == 0); /* planted at the free name */
    armed_lock[0] = 0;
    attacked = 1;
  }
  return __real_hzshm__shm_lock_byte(fd, type, at);
}

void __real_hzshm__shm_prd_scan(hzshm__shm_t *s);

static const char *scan_armed; /* the segment to take over in the next scan, NULL when disarmed */
static hzshm__shm_t *taker;     /* the writer that took it over */
static int taker_rc = 1;

static hzshm__shm_config_t cfg(void);

void __wrap_hzshm__shm_prd_scan(hzshm__shm_t *s) {
  const char *name = scan_armed;
  if (name && s->w) {
    scan_armed = NULL; /* the taker's own w_open scans too */
    char lock[HZSHM_SHM_PATH_MAX];
    hzshm__shm_config_t c = cfg();
    CHECK_RC(hzshm__shm_path(name, 2, lock, sizeof lock), 0);
    CHECK(unlink(lock) == 0); /* the other starting writer's unlink by name */
    taker_rc = hzshm__shm_w_open(name, &c, 0, &taker, NULL);
  }
  __real_hzshm__shm_prd_scan(s);
}

static hzshm__shm_config_t cfg(void) {
  hzshm__shm_config_t c = {.memory_bytes = 2u << 20, .max_sessions = 8, .reader_slots = 4, .partition_count = 7};
  return c;
}

/* The starting writer must not count a lock on an inode that only a symlink
 * at the name leads to: it starts over, holds the lock of a lock file at
 * the name, and a third writer is refused. Old code (stat): the third
 * writer got HZSHM_OK too. */
TEST_CASE(symlinked_lock) {
  hzshm__shm_config_t c = cfg();
  const char *name = t_name("locklink");
  char lock[HZSHM_SHM_PATH_MAX];
  CHECK_RC(hzshm__shm_path(name, 2, lock, sizeof lock), 0);
  CHECK(snprintf(evil, sizeof evil, "%s.evil", lock) < (int)sizeof evil);
  unlink(evil);
  /* the lock file exists (an earlier writer's): the starting writer opens it */
  hzshm__shm_t *w1, *w2, *w3 = NULL;
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w1, NULL), 0);
  hzshm__shm_close(w1);
  snprintf(armed_lock, sizeof armed_lock, "%s", lock);
  CHECK_RC(hzshm__shm_w_open(name, &c, 0, &w2, NULL), 0);
  CHECK(attacked);
  struct stat held, named;
  CHECK(fstat(w2->lock_fd, &held) == 0);
  int at_name = lstat(lock, &named) == 0 && S_ISREG(named.st_mode) && named.st_ino == held.st_ino;
  int w3rc = hzshm__shm_w_open(name, &c, 0, &w3, NULL);
  if (!at_name || w3rc != HZSHM_EEXIST)
    fprintf(stderr, "the writer's lock file is %sat the lock name; a third writer: %s\n", at_name ? "" : "NOT ",
            hzshm_err_name(w3rc));
  CHECK(at_name);
  CHECK_RC(w3rc, HZSHM_EEXIST);
  if (w3) hzshm__shm_close(w3);
  hzshm__shm_close_unlink(w2);
  unlink(evil);
}

/* A writer whose lock file lost its name during w_open, while another writer
 * took the segment, must not come out of w_open as a writer: HZSHM_EEXIST,
 * and the other one's names stay. Old code: HZSHM_OK, two writers (the agent
 * then served until its first tick, 50 ms after its start-up). */
TEST_CASE(lost_during_open) {
  hzshm__shm_config_t c = cfg();
  const char *name = t_name("lostopen");
  hzshm__shm_t *w1 = NULL, *r;
  scan_armed = name;
  int rc = hzshm__shm_w_open(name, &c, 0, &w1, NULL);
  CHECK_EQ(scan_armed, NULL); /* the take-over ran */
  CHECK_RC(taker_rc, 0);
  if (rc == 0) fprintf(stderr, "w_open whose lock file lost its name: %s, two writers\n", hzshm_err_name(rc));
  CHECK_RC(rc, HZSHM_EEXIST);
  CHECK_EQ(w1, NULL);
  CHECK_RC(hzshm__shm_w_holds_name(taker), 1);
  hzshm__shm_w_heartbeat(taker, HZSHM_SHM_SERVING);
  CHECK_RC(hzshm__shm_r_attach(name, &r), 0);
  hzshm__shm_close(r);
  if (w1) hzshm__shm_close(w1);
  hzshm__shm_close_unlink(taker);
}
