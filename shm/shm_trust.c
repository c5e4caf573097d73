/* shm_trust.c - the reader's trust anchor: whose segment files and agent
 * sockets libhzshm accepts (the access model: docs/SHM.md).
 *
 * A segment is found by name in a shared directory (/dev/shm) and its agent
 * by a socket path in another (/tmp). Any process that may create files
 * there can create those names while they do not exist (before the agent
 * starts, after --unlink-on-exit) and fill them with anything, its own
 * "writer confirmation" locks included. So a reader believes a file or a
 * socket only for who owns it, never for its name or contents: the owner
 * must be a trusted uid, i.e.
 *   - the caller's effective uid (one uid is one trust domain: a process of
 *     our own uid could ptrace us or write our memory anyway),
 *   - root (uid 0: it could do anything to us anyway), or
 *   - the agent's uid given by the environment variable HZSHM_AGENT_UID
 *     (a number or a user name), for an agent that runs under a dedicated uid.
 * The checks are made on what was opened (fstat of the descriptor,
 * SO_PEERCRED of the connected socket), never by name, so a name replaced
 * between the check and the use changes nothing. In a sticky directory
 * (/dev/shm, /tmp) nobody but the owner (and root) can remove or rename a
 * trusted owner's file, so once the agent made its files they stay its own.
 * No shared state; thread-safe (getpwnam_r).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm_int.h"

int hzshm__shm_agent_uid(uid_t *uid) {
  *uid = (uid_t)-1;
  const char *v = getenv("HZSHM_AGENT_UID");
  if (!v || !*v) return 0;
  if (v[0] >= '0' && v[0] <= '9') {
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno != 0 || *end != 0 || n >= (unsigned long)(uid_t)-1) return HZSHM_EINVAL;
    *uid = (uid_t)n;
    return 0;
  }
  struct passwd pw, *res = NULL;
  char buf[4096];
  if (getpwnam_r(v, &pw, buf, sizeof buf, &res) != 0 || !res) return HZSHM_EINVAL; /* no such user */
  *uid = pw.pw_uid;
  return 0;
}

int hzshm__shm_uid_trusted(uid_t uid) {
  if (uid == 0 || uid == geteuid()) return 1;
  uid_t agent;
  int rc = hzshm__shm_agent_uid(&agent);
  if (rc != 0) return rc;
  return agent != (uid_t)-1 && uid == agent;
}

int hzshm__shm_fd_trusted(int fd, uid_t *owner) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  /* writable by its group or others: whoever they are, they could write values */
  if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH))) return HZSHM_EUNTRUSTED;
  int t = hzshm__shm_uid_trusted(st.st_uid);
  if (t < 0) return t;
  if (owner) *owner = st.st_uid;
  return t ? 0 : HZSHM_EUNTRUSTED;
}
