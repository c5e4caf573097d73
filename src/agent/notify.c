/* notify.c - systemd readiness (Type=notify) through libsystemd's sd_notify.
 *
 * libsystemd is an OPTIONAL build dependency (libsystemd-dev, found with
 * pkg-config by src/agent/CMakeLists.txt, which defines HZSHM_HAVE_SYSTEMD):
 * without it these functions do nothing and the unit must use Type=simple.
 * sd_notify itself does nothing when NOTIFY_SOCKET is unset (not under systemd).
 *
 * READY=1 is sent once, the first time the agent serves (segment open, socket
 * listening, cluster connected); STOPPING=1 when a stop begins; STATUS= on
 * each change of the cluster state, for `systemctl status`. With WatchdogSec=
 * (WATCHDOG_USEC) a loop timer sends WATCHDOG=1 at half the interval: a hung
 * loop stops it, and systemd kills and restarts the agent. */
#include "agent.h"

#ifdef HZSHM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void notify_ready(agent_t *a) {
  if (a->notify.ready) return;
  a->notify.ready = 1;
#ifdef HZSHM_HAVE_SYSTEMD
  sd_notifyf(0, "READY=1\nSTATUS=serving cache %s on %s", a->o.name, a->o.sockpath);
#endif
}

void notify_status(agent_t *a, const char *status) {
#ifdef HZSHM_HAVE_SYSTEMD
  sd_notifyf(0, "STATUS=%s", status);
#endif
  (void)a;
  (void)status;
}

void notify_stopping(agent_t *a) {
#ifdef HZSHM_HAVE_SYSTEMD
  sd_notify(0, "STOPPING=1");
#endif
  if (a->notify.watchdog_on) uv_close((uv_handle_t *)&a->notify.watchdog, NULL);
  a->notify.watchdog_on = 0;
}

#ifdef HZSHM_HAVE_SYSTEMD
static void watchdog_cb(uv_timer_t *t) { sd_notify(0, "WATCHDOG=1"); }
#endif

void notify_start(agent_t *a) {
#ifdef HZSHM_HAVE_SYSTEMD
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec < 2000) return;
  uv_timer_init(a->loop, &a->notify.watchdog);
  a->notify.watchdog_on = 1;
  uv_timer_start(&a->notify.watchdog, watchdog_cb, 0, usec / 2000);
#else
  (void)a;
#endif
}
