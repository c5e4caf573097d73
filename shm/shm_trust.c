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
 *     It is resolved once per library handle (hzshm_open: a name that is no
 *     user fails there, HZSHM_EINVAL) and kept in it: re-attaches and
 *     connects use that uid, whatever the environment says later.
 * The checks are made on what was opened (fstat of the descriptor,
 * SO_PEERCRED of the connected socket), never by name, so a name replaced
 * between the check and the use changes nothing. In a sticky directory
 * (/dev/shm, /tmp) nobody but the owner (and root) can remove or rename a
 * trusted owner's file, so once the agent made its files they stay its own.
 * No shared state; thread-safe (getpwnam_r with a buffer of its own).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm_int.h"

/* "123" (all digits) is a uid; anything else ("hzshm", "1abc": user names
 * may start with a digit) is a user name. getpwnam_r's buffer starts at
 * sysconf(_SC_GETPW_R_SIZE_MAX) (a hint, -1 on some systems) and doubles on
 * ERANGE (an entry with long fields), up to 1 MiB. */
int hzshm__shm_parse_uid(const char *v, uid_t *uid) {
  if (!v || !*v) return HZSHM_EINVAL;
  if (strspn(v, "0123456789") == strlen(v)) {
    errno = 0;
    unsigned long n = strtoul(v, NULL, 10);
    if (errno != 0 || n >= (unsigned long)(uid_t)-1) return HZSHM_EINVAL;
    *uid = (uid_t)n;
    return 0;
  }
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  size_t cap = hint > 0 && hint <= (1l << 20) ? (size_t)hint : 1024;
  for (;;) {
    char *buf = malloc(cap);
    if (!buf) return -ENOMEM;
    struct passwd pw, *res = NULL;
    int e = getpwnam_r(v, &pw, buf, cap, &res);
    if (e == 0 && res) *uid = pw.pw_uid;
    free(buf);
    if (e == ERANGE && cap < (1u << 20)) {
      cap *= 2;
      continue;
    }
    return e == 0 && res ? 0 : HZSHM_EINVAL; /* no such user (or the lookup failed) */
  }
}

int hzshm__shm_agent_uid(uid_t *uid) {
  *uid = (uid_t)-1;
  const char *v = getenv("HZSHM_AGENT_UID");
  if (!v || !*v) return 0;
  return hzshm__shm_parse_uid(v, uid) == 0 ? 0 : HZSHM_EINVAL;
}

int hzshm__shm_uid_trusted(uid_t uid, uid_t agent) {
  return uid == 0 || uid == geteuid() || (agent != (uid_t)-1 && uid == agent);
}

int hzshm__shm_fd_trusted(int fd, uid_t agent, uid_t *owner) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  /* writable by its group or others: whoever they are, they could write values */
  if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH))) return HZSHM_EUNTRUSTED;
  if (owner) *owner = st.st_uid;
  return hzshm__shm_uid_trusted(st.st_uid, agent) ? 0 : HZSHM_EUNTRUSTED;
}
