/* health.c - fail-closed timers and cluster state.
 *
 * Every 50 ms (well inside the 100 ms contract) the tick writes the heartbeat
 * and state into the segment, publishes the counters, and runs the segment's
 * bounded maintenance. Readers stop serving when the heartbeat is older than
 * --stale-ms (agent dead or hung) or the state is not SERVING.
 *
 * State: SERVING while connected to the cluster. After losing it, readers
 * keep serving until --stale-ms after the last bytes heard from any member
 * (a member restart is often bridged by a quick reconnect), then the state is
 * DISCONNECTED and hits stop. A silent member is noticed by the client's
 * Ping (every connection idle for --stale-ms/4): after 3/4 of the bound
 * without inbound bytes its partitions are unwatched (hzc_partition_watch 0:
 * marked stale, nothing cached) until it talks again (main.c), so a change
 * made while it was cut off is served for at most --stale-ms after it was
 * made; the connection is closed after 5 s. Local requests that need the cluster are refused with
 * HZSHM_EDISCONNECTED as soon as it is lost. On RECONNECTED (same cluster id and partition count)
 * every partition is marked stale: entries filled before are misses. A member
 * connection lost does the same (events from that member may have been lost
 * with it). The sequence baselines are KEPT in both cases (inval.c): an
 * invalidation missed while a member was unreachable, or before our listener
 * registration on a new connection was active, then shows as a gap at the
 * next reconciliation, which is run soon after any member, partition or
 * connection change and every --reconcile-ms. On CLUSTER_CHANGED everything
 * is cleared and the baselines are forgotten (nothing is cached for a
 * partition until a reconciliation sets its baseline again).
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"

/* How soon after a member/partition/connection change the reconciliation runs. */
#define RECON_SOON_MS 100u

static void forget_refs(tnode_t *n, void *ud) { ((session_t *)n)->has_ref = 0; }

static void repair(agent_t *a) {
  inval_all_stale(a);
  health_reconcile_soon(a);
}

static int shm_state(const agent_t *a) {
  if (a->stopping) return HZSHM_SHM_STOPPED;
  if (a->cluster.state == 1) return HZSHM_SHM_SERVING;
  if (a->cluster.state == 2 && now_ms() - a->cluster.lost_since_ms < a->o.stale_ms) return HZSHM_SHM_SERVING;
  return HZSHM_SHM_DISCONNECTED;
}

int health_serving(const agent_t *a) {
  switch (shm_state(a)) {
    case HZSHM_SHM_SERVING:
      return a->cluster.state == 1 ? 0 : HZSHM_EDISCONNECTED;
    case HZSHM_SHM_STOPPED:
      return HZSHM_ESTOPPED;
    default:
      return HZSHM_EDISCONNECTED;
  }
}

/* Applies changes of which connection brings each partition's invalidations
 * (hzc_partition_watch): the owner moved, its connection was lost or
 * replaced, or the listener registrations on a new connection were just
 * acknowledged. Any change marks the partition stale, because events may
 * have been missed in between (sent before our registration on the new
 * owner, or lost with the old connection); while a partition has no
 * watching connection nothing of it is cached (inval_cacheable), since
 * no event and, with the owner unreachable, maybe no reconciliation could
 * repair it. A partition becoming watched again also asks for a
 * reconciliation. Runs on every client event and every tick. */
void health_watch(agent_t *a) {
  if (a->hz == NULL || a->stopping) return;
  uint32_t unwatched = 0, back = 0;
  /* Partitions the cluster does not have (a segment made for more, see
   * health_partitions) are never watched and hold no key: not counted. */
  uint32_t pc = hzc_partition_count(a->hz);
  uint32_t exist = pc != 0 && pc < a->cluster.partitions ? pc : a->cluster.partitions;
  for (uint32_t p = 0; p < a->cluster.partitions; p++) {
    int w = hzc_partition_watch(a->hz, p);
    if (w == 0 && p < exist) unwatched++;
    if (w == a->watch.conn[p]) continue;
    if (w != 0) back++;
    a->watch.conn[p] = w;
    inval_mark_stale(a, (int32_t)p);
    inval_partition_changed(a, p);
  }
  /* Logged when the count settles on a new value, at most once a second
   * (a migration changes it in many small steps); the return to 0 at once. */
  uint64_t now = now_ms();
  /* Not while starting (partition table and member connections on their way). */
  if (unwatched == 0) a->watch.all_once = 1;
  int starting = !a->watch.all_once && now - a->cluster.connected_ms < 2000;
  if (a->cluster.state == 1 && !starting && unwatched != a->watch.logged &&
      (unwatched == 0 || now - a->watch.log_ms >= 1000)) {
    if (unwatched == 0)
      log_info("every partition's owner sends us its invalidations again");
    else
      log_info("%u of %u partitions have no connection to their owner with our listeners: not cached",
               unwatched, exist);
    a->watch.log_ms = now;
    a->watch.logged = unwatched;
  }
  a->watch.unwatched = unwatched;
  counter_set(a, HZSHM__AC_UNWATCHED, unwatched);
  if (back) health_reconcile_soon(a);
}

/* At every join (CONNECTED, RECONNECTED, CLUSTER_CHANGED: hzc_partition_count
 * is the joined cluster's): a cluster with more partitions than the segment
 * was made for (--partitions) has keys of partitions >= it, which are never
 * cached (inval_cacheable: no baseline, no stale mark, no entry for them),
 * every read of them a remote get through the agent. Keys are spread evenly
 * over the partitions (hash mod count), so that is (pc - n) / pc of the keys.
 * A warning with the remedy; /metrics has both counts (metrics.c). With fewer
 * partitions every key is cached and the rest of the segment's are unused. */
static void health_partitions(agent_t *a) {
  uint32_t pc = hzc_partition_count(a->hz), n = a->cluster.partitions;
  if (pc == 0 || pc == n) return;
  if (pc < n) {
    log_info("cluster has %u partitions, the segment was made for %u (--partitions): every key is cached "
             "(the segment's partitions %u..%u are unused)", pc, n, pc, n - 1);
    return;
  }
  uint32_t pct = (uint32_t)(((uint64_t)(pc - n) * 200 / pc + 1) / 2); /* rounded */
  log_at(LVL_WARN,
         "cluster has %u partitions, the segment was made for %u: keys of partitions %u..%u (%s%u %% of keys) are "
         "never cached, every read of them goes through the agent to the cluster; restart the agent with "
         "--partitions %u (a fresh segment)",
         pc, n, n, pc - 1, pct == 0 ? "< " : "", pct == 0 ? 1 : pct, pc);
}

/* The lock-name check failed (here < 0: lstat of the name or fstat of our
 * lock file failed, e.g. EACCES on a directory made unsearchable, EIO) or
 * works again (here 1). It then cannot tell whether the name is still ours;
 * but stopping on an error that may pass would let whoever can change the
 * directory stop the cache, and a writer starting meanwhile meets the same
 * directory. So the agent keeps serving and warns: at the first failure,
 * then at most once a minute while it lasts, and once when the check works
 * again (no counter: the state is a log line, not a rate).
 * A check that fails and works again tick after tick (a directory whose
 * mode flaps) must not log two lines a tick: a failure that begins within a
 * minute of the last line is not logged, nor is its end if it ends before a
 * line is due; it is counted in `quiet` when it ends, and the next line says
 * how many there were. When the check works and some are counted, that line
 * comes once the minute is over (an operator learns of them even if the
 * check never fails again). A failure still going on when the minute is over
 * is logged then (still fails), and so is its end. So at most one line a
 * minute begins a failure, says it lasts or counts the unlogged ones, each
 * followed by at most one line when the failure it names ends. */
static void lockname_note(agent_t *a, int here) {
  uint64_t now = now_ms();
  int due = a->lockname.log_ms == 0 || now - a->lockname.log_ms >= 60000;
  char quiet[96] = "";
  if (a->lockname.quiet)
    snprintf(quiet, sizeof quiet, "; %u more failure(s) began and passed unlogged since the last line",
             a->lockname.quiet);
  if (here < 0 && a->lockname.err == 0) {
    a->lockname.since_ms = now;
    a->lockname.logged = due;
    if (due) {
      log_at(LVL_WARN,
             "segment %s: cannot check that the lock file at its name is still ours: %s (%s); still serving, checked "
             "again every tick (logged at most once a minute while it fails)%s",
             a->o.name, hzshm_strerror(here), hzshm_err_name(here), quiet);
      a->lockname.log_ms = now;
      a->lockname.quiet = 0;
    }
  } else if (here < 0 && due) {
    log_at(LVL_WARN, "segment %s: the lock-name check still fails: %s (%s) for %llu s; still serving%s", a->o.name,
           hzshm_strerror(here), hzshm_err_name(here), (unsigned long long)(now - a->lockname.since_ms) / 1000, quiet);
    a->lockname.log_ms = now;
    a->lockname.quiet = 0;
    a->lockname.logged = 1;
  } else if (here > 0 && a->lockname.err != 0) {
    if (a->lockname.logged) {
      log_at(LVL_WARN,
             "segment %s: the lock-name check works again (the lock file at the name is ours) after %llu ms of %s",
             a->o.name, (unsigned long long)(now - a->lockname.since_ms), hzshm_err_name(a->lockname.err));
    } else {
      a->lockname.quiet++;
      a->lockname.quiet_err = a->lockname.err;
    }
  } else if (here > 0 && a->lockname.quiet && due) {
    log_at(LVL_WARN,
           "segment %s: the lock-name check failed %u more time(s) since the last line, each working again within "
           "the minute (not logged; the last: %s); it works",
           a->o.name, a->lockname.quiet, hzshm_err_name(a->lockname.quiet_err));
    a->lockname.log_ms = now;
    a->lockname.quiet = 0;
  }
  a->lockname.err = here < 0 ? here : 0;
}

static void tick_cb(uv_timer_t *t) {
  agent_t *a = t->data;
#ifdef HZSHM_AGENT_TEST_SEAMS
  seam_tick(a); /* test-only build: network cuts */
#endif
  int here = hzshm__shm_w_holds_name(a->shm);
  if (here == 0) {
    /* Our lock file is no longer at the lock name: a writer starting now
     * locks a fresh file and takes this data file too. Stop before two
     * writers change it (docs/SHM.md, writer exclusion). */
    agent_fatal(a, "segment %s: the lock file at its name is no longer ours (removed or replaced by another process); "
                   "stopping so that a new agent is the only writer", a->o.name);
    return;
  }
  lockname_note(a, here);
  health_watch(a);
  hzshm__shm_w_heartbeat(a->shm, shm_state(a));
  hzshm__shm_w_maintain(a->shm);
  counters_publish(a);
  inval_baseline_retry(a);
  if (++a->ticks % 20 == 0) session_idle_check(a);
}

static void reconcile_cb(uv_timer_t *t) { inval_reconcile(t->data); }

void health_reconcile_soon(agent_t *a) {
  if (a->stopping || !uv_is_active((uv_handle_t *)&a->recon.timer)) return;
  /* Never postpone: a stream of changes must not keep the round from running. */
  if (uv_timer_get_due_in(&a->recon.timer) <= RECON_SOON_MS) return;
  uv_timer_start(&a->recon.timer, reconcile_cb, RECON_SOON_MS, a->o.reconcile_ms);
}

int health_start(agent_t *a) {
  uv_timer_init(a->loop, &a->tick);
  a->tick.data = a;
  uv_timer_init(a->loop, &a->recon.timer);
  a->recon.timer.data = a;
  hzshm__shm_w_heartbeat(a->shm, shm_state(a));
  uv_timer_start(&a->tick, tick_cb, 50, 50);
  uv_timer_start(&a->recon.timer, reconcile_cb, a->o.reconcile_ms, a->o.reconcile_ms);
  return 0;
}

void health_close(agent_t *a) {
  hzshm__shm_w_heartbeat(a->shm, HZSHM_SHM_STOPPED);
  a->cluster.state = 3;
  counters_publish(a);
  uv_close((uv_handle_t *)&a->tick, NULL);
  uv_close((uv_handle_t *)&a->recon.timer, NULL);
}

void health_event(hzc_client_t *c, const hzc_event_t *ev, void *ud) {
  agent_t *a = ud;
  switch (ev->kind) {
    case HZC_EV_CONNECTED:
      a->cluster.state = 1;
      a->cluster.connected_ms = now_ms();
      a->cluster.my_uuid = hzc_client_uuid(c);
      log_info("connected to cluster %s", a->o.cluster);
      break;
    case HZC_EV_DISCONNECTED:
      /* From the last bytes heard: a silent member was trusted for its whole silence already. */
      if (a->cluster.state == 1) {
        uint64_t now = now_ms(), quiet = hzc_silence_ms(c);
        a->cluster.lost_since_ms = now - (quiet < now ? quiet : 0);
      }
      a->cluster.state = 2;
      log_info("lost the cluster; failing closed after %u ms", a->o.stale_ms);
      break;
    case HZC_EV_RECONNECTED:
      repair(a);
      a->cluster.state = 1;
      a->cluster.my_uuid = hzc_client_uuid(c);
      log_info("reconnected to the same cluster: partitions marked stale (repair)");
      break;
    case HZC_EV_CLUSTER_CHANGED:
      hzshm__shm_w_clear_all(a->shm);
      table_each(&a->sessions, forget_refs, NULL);
      inval_forget(a);
      repair(a);
      a->cluster.state = 1;
      a->cluster.my_uuid = hzc_client_uuid(c);
      log_info("connected to a different cluster: cache cleared");
      break;
    case HZC_EV_MEMBER_CONNECTION_LOST:
      repair(a);
      log_info("a member connection was lost: partitions marked stale");
      break;
    case HZC_EV_MEMBERS:
    case HZC_EV_PARTITIONS:
      /* Owners moved or members came/went: missed events show as gaps. */
      health_reconcile_soon(a);
      break;
    default:
      break;
  }
  if (ev->kind == HZC_EV_CONNECTED || ev->kind == HZC_EV_RECONNECTED || ev->kind == HZC_EV_CLUSTER_CHANGED)
    health_partitions(a);
  health_watch(a);
  hzshm__shm_w_heartbeat(a->shm, shm_state(a));
  counters_publish(a);
}
