/* log.c - the agent's log lines: one line each, on stderr.
 *
 *   2026-12-01T21:45:00.123Z hzshm-agent[1234] warn: member db1:5701: ...
 *
 * When stderr is the journal (JOURNAL_STREAM names stderr's device and inode,
 * as systemd sets it for a service) a line is "<N>message" instead: N is the
 * syslog priority and the journal adds time, unit and pid itself.
 * --log-level (error, warn, info, debug; default info) drops lines of a lower
 * priority. A normal start logs three info lines (the segment's pages,
 * serving, connected); every further info line is a change of state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

static int max_level = LVL_INFO;
static int journal;

static const char *const names[8] = {"emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"};

int log_level_parse(const char *s) {
  for (int i = LVL_ERR; i <= LVL_DEBUG; i++)
    if (i != 5 && !strcmp(s, names[i])) return i;
  return -1;
}

static void hz_line(int level, const char *line, void *ud) { log_at(level, "%s", line); }

void log_init(int level) {
  max_level = level;
  const char *js = getenv("JOURNAL_STREAM");
  struct stat st;
  unsigned long long dev, ino;
  if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
      (unsigned long long)st.st_ino == ino)
    journal = 1;
  hzc_set_log(hz_line, NULL);
}

static void vlog(int level, const char *fmt, va_list ap) {
  if (level > max_level) return;
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (journal) {
    fprintf(stderr, "<%d>%s\n", level, msg);
    return;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char when[32];
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  fprintf(stderr, "%s.%03ldZ hzshm-agent[%d] %s: %s\n", when, ts.tv_nsec / 1000000, (int)getpid(),
          names[level & 7], msg);
}

void log_at(int level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

void log_info(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlog(LVL_INFO, fmt, ap);
  va_end(ap);
}
