/* notify.c - systemd readiness (Type=notify) through libsystemd's sd_notify.
 *
 * libsystemd is an OPTIONAL build dependency (libsystemd-dev, found with
 * pkg-config by src/agent/CMakeLists.txt, which defines HZSHM_HAVE_SYSTEMD):
 * without it these functions do nothing and the unit must use Type=simple.
 * sd_notify itself does nothing when NOTIFY_SOCKET is unset (not under systemd).
 *
 * READY=1 is sent once, the first time the agent serves (segment open, socket
 * listening, cluster connected); STOPPING=1 when a stop begins; STATUS= on
 * each change of the cluster state, for `systemctl status`. */
#include "agent.h"

#ifdef HZSHM_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

void hzshm__notify_ready(agent_t *a) {
  if (a->notified_ready) return;
  a->notified_ready = 1;
#ifdef HZSHM_HAVE_SYSTEMD
  sd_notifyf(0, "READY=1\nSTATUS=serving cache %s on %s", a->o.name, a->sockpath);
#endif
}

void hzshm__notify_status(agent_t *a, const char *status) {
#ifdef HZSHM_HAVE_SYSTEMD
  sd_notifyf(0, "STATUS=%s", status);
#endif
  (void)a;
  (void)status;
}

void hzshm__notify_stopping(agent_t *a) {
#ifdef HZSHM_HAVE_SYSTEMD
  sd_notify(0, "STOPPING=1");
#endif
  (void)a;
}
