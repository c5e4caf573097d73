/* test_partitions: the agent against clusters whose partition count
 * (hazelcast.partition.count) is not the segment's, with real members:
 * argv[1] a member of 401 partitions (fixture e2e_parts401), argv[2] one of
 * Hazelcast's default 271 (e2e_members). Keys' partitions are computed as
 * the agent computes them (hzc__string_hash, hzc__partition_of: murmur.h).
 *   - more_in_cluster: a default agent (271) on the 401 cluster: one warn
 *     line at the join with the numbers and the remedy; a key of a
 *     partition < 271 becomes a hit, a key of a partition >= 271 is never
 *     one however often it is read (each read a miss through the agent,
 *     while the other key keeps hitting); /metrics: hzshm_cluster_partitions
 *     401, hzshm_segment_partitions 271
 *   - matching: --partitions 401 on the 401 cluster: a key of every one of
 *     the 401 partitions becomes a hit; no partition-count line; 401 / 401
 *   - fewer_in_cluster: --partitions 401 on the 271 cluster: an info line
 *     (every key cached); every partition the cluster has is watched
 *     (unwatched_partitions 0: the segment's 130 partitions the cluster does
 *     not have are not counted as unwatched), a key of each of the 271
 *     partitions becomes a hit; 271 / 401
 *   - cluster_changed (test-only agent: its network cut seam): an agent of
 *     271 partitions seeded with both clusters joins the 271 one (no
 *     warning), is cut from it and joins the 401 one (CLUSTER_CHANGED): the
 *     warning then; the gauge follows
 *   - restart_other_count: an agent of 271 partitions is killed (-9) and one
 *     with --partitions 401 starts on its segment: it says the segment had
 *     another geometry and makes a fresh one (not reused), and a reader
 *     opened before the restart gets hits of a partition >= 271 (it
 *     attached to the new segment by itself)
 *   - bad_values: --partitions 0, 65536, x, "" exit 2 naming the option */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "e2e.h"
#include "murmur.h"
#include "shm.h" /* hzshm__shm_unlink */

#define MPORT 5766 /* metrics: in the e2e range, no fixture or other test uses it */
#define MPORT_S "127.0.0.1:5766"

static const char *members401(void) { return t_param_required(0, "MEMBERS_401"); }
static const char *members271(void) { return t_param_required(1, "MEMBERS_271"); }

static char logp[160];
static char resp[1 << 18];

static void log_path(const char *tag) {
  snprintf(logp, sizeof logp, "/tmp/hzshm-e2e-partitions-%s.%d.log", tag, (int)getpid());
  unlink(logp);
}

static uint32_t part_of(const char *key, uint32_t count) {
  return hzc__partition_of(hzc__string_hash(key, strlen(key)), count);
}

/* A key of partition p (of count): "k<p>-<i>" for the first i that hashes there. */
static void key_of(uint32_t p, uint32_t count, char *out, size_t cap) {
  for (unsigned i = 0; i < 1000000; i++) {
    snprintf(out, cap, "k%u-%u", p, i);
    if (part_of(out, count) == p) return;
  }
  CHECK(0);
}

/* The sample of series{cache="name"} on /metrics. */
static double gauge(const char *series, const char *name) {
  const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
  CHECK_GT(e2e_http(MPORT, req, strlen(req), resp, sizeof resp), 0);
  CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
  char full[128], type[128];
  snprintf(full, sizeof full, "%s{cache=\"%s\"}", series, name);
  snprintf(type, sizeof type, "# TYPE %s gauge\n", series);
  CHECK_NE(strstr(resp, type), NULL);
  return e2e_prom_sample(resp, full);
}

static void wait_logged(const char *needle) {
  e2e_logged_t l = {logp, needle};
  if (e2e_wait(e2e_logged, &l, 30000) < 0) {
    fprintf(stderr, "not logged within 30 s: %s\n", needle);
    CHECK(0);
  }
}

/* Sets a key of each partition 0..count-1 (count: the cluster's) and waits
 * (10 s each) until each is a hit: how many were. */
static unsigned every_partition_hits(hzshm_t *h, hzshm_session_t *s, uint32_t count) {
  unsigned hits = 0;
  char key[32], val[32];
  for (uint32_t p = 0; p < count; p++) {
    key_of(p, count, key, sizeof key);
    snprintf(val, sizeof val, "v%u", p);
    CHECK_RC(hzshm_set(s, key, strlen(key), val, strlen(val)), 0);
  }
  for (uint32_t p = 0; p < count; p++) {
    key_of(p, count, key, sizeof key);
    snprintf(val, sizeof val, "v%u", p);
    e2e_hit_t x = {h, s, key, val};
    if (e2e_wait(e2e_is_hit, &x, 10000) >= 0) hits++;
    else fprintf(stderr, "key %s of partition %u never a hit\n", key, p);
  }
  return hits;
}

#define MISMATCH " partitions, the segment was made for "
#define WARN_401_271                                                                                   \
  " warn: cluster has 401 partitions, the segment was made for 271: keys of partitions 271..400 (32 % of " \
  "keys) are never cached"

/* Starts agent ag for cache name on members, its stderr in logp (the case's
 * tag), with --partitions parts (NULL: the default) and --metrics-listen,
 * and waits until it serves. */
static void start(e2e_agent_t *ag, const char *tag, const char *name, const char *members, const char *parts) {
  log_path(tag);
  snprintf(ag->log_path, sizeof ag->log_path, "%s", logp);
  int n = 0;
  if (parts) {
    ag->extra_args[n++] = "--partitions";
    ag->extra_args[n++] = parts;
  }
  ag->extra_args[n++] = "--metrics-listen";
  ag->extra_args[n++] = MPORT_S;
  e2e_agent_start(ag, name, members);
}

/* Stops the agent (a clean exit) after closing the cache. */
static void finish(e2e_agent_t *ag, hzshm_t *h, hzshm_session_t *s) {
  if (s) hzshm_session_close(s);
  if (h) hzshm_close(h);
  CHECK_RC(e2e_agent_stop(ag), 0);
  unlink(logp);
}

TEST_CASE(more_in_cluster) {
  e2e_agent_t ag = {0};
  start(&ag, "more", "pt_more", members401(), NULL);
  hzshm_t *h;
  hzshm_session_t *s;
  e2e_open_watched("pt_more", "pt_map", &h, &s); /* every partition of the segment's 271 watched */

  char klo[32], khi[3][32];
  key_of(17, 401, klo, sizeof klo);
  key_of(271, 401, khi[0], sizeof khi[0]);
  key_of(333, 401, khi[1], sizeof khi[1]);
  key_of(400, 401, khi[2], sizeof khi[2]);
  CHECK_RC(hzshm_set(s, klo, strlen(klo), "low", 3), 0);
  for (int i = 0; i < 3; i++) CHECK_RC(hzshm_set(s, khi[i], strlen(khi[i]), "high", 4), 0);
  e2e_hit_t lo = {h, s, klo, "low"};
  CHECK_GE(e2e_wait(e2e_is_hit, &lo, 30000), 0);
  unsigned served = 0;
  for (int i = 0; i < 3; i++) {
    for (int r = 0; r < 5; r++) {
      hzshm_stats_t b = e2e_stats(h);
      CHECK(e2e_serves(s, khi[i], "high")); /* served through the agent */
      hzshm_stats_t e = e2e_stats(h);
      CHECK_EQ(e.hits, b.hits);           /* never from shared memory */
      CHECK_GT(e.misses, b.misses);
      served++;
      CHECK(e2e_is_hit(&lo)); /* while the low partition's key is cached all along */
    }
  }
  printf("401-partition cluster, segment of 271: %s (partition %u) a hit; %s, %s, %s (partitions %u, %u, %u) "
         "read %u times, never a hit\n",
         klo, part_of(klo, 401), khi[0], khi[1], khi[2], part_of(khi[0], 401), part_of(khi[1], 401),
         part_of(khi[2], 401), served);
  wait_logged(WARN_401_271); /* at the join */
  CHECK_EQ(e2e_file_count(logp, WARN_401_271), 1);
  CHECK_EQ(e2e_file_count(logp, "restart the agent with --partitions 401"), 1);
  CHECK_EQ(gauge("hzshm_cluster_partitions", "pt_more"), 401);
  CHECK_EQ(gauge("hzshm_segment_partitions", "pt_more"), 271);
  finish(&ag, h, s);
}

TEST_CASE(matching) {
  e2e_agent_t ag = {0};
  start(&ag, "match", "pt_match", members401(), "401");
  hzshm_t *h;
  hzshm_session_t *s;
  e2e_open_watched("pt_match", "pt_map", &h, &s);
  CHECK_EQ(gauge("hzshm_cluster_partitions", "pt_match"), 401);
  CHECK_EQ(gauge("hzshm_segment_partitions", "pt_match"), 401);
  unsigned hits = every_partition_hits(h, s, 401);
  printf("--partitions 401 on the 401-partition cluster: a key of %u of 401 partitions a hit\n", hits);
  CHECK_EQ(hits, 401);
  CHECK_EQ(e2e_file_count(logp, MISMATCH), 0);
  finish(&ag, h, s);
}

TEST_CASE(fewer_in_cluster) {
  e2e_agent_t ag = {0};
  start(&ag, "fewer", "pt_fewer", members271(), "401");
  const char *info = " info: cluster has 271 partitions, the segment was made for 401 (--partitions): every key is "
                     "cached";
  wait_logged(info);
  CHECK_EQ(e2e_file_count(logp, " warn: cluster has "), 0);
  hzshm_t *h;
  hzshm_session_t *s;
  e2e_open_watched("pt_fewer", "pt_map", &h, &s); /* unwatched_partitions 0: the cluster's 271 */
  CHECK_EQ(gauge("hzshm_cluster_partitions", "pt_fewer"), 271);
  CHECK_EQ(gauge("hzshm_segment_partitions", "pt_fewer"), 401);
  CHECK_EQ(gauge("hzshm_unwatched_partitions", "pt_fewer"), 0);
  unsigned hits = every_partition_hits(h, s, 271);
  printf("--partitions 401 on the 271-partition cluster: a key of %u of 271 partitions a hit\n", hits);
  CHECK_EQ(hits, 271);
  CHECK_EQ(e2e_stats(h).unwatched_partitions, 0);
  CHECK_EQ(e2e_file_count(logp, "have no connection to their owner"), 0);
  finish(&ag, h, s);
}

#ifdef HZSHM_AGENT_SEAMS_BIN
typedef struct {
  const char *name;
  double want;
} gauge_is_t;
static int cluster_gauge_is(void *ud) {
  gauge_is_t *g = ud;
  return gauge("hzshm_cluster_partitions", g->name) == g->want;
}

TEST_CASE(cluster_changed) {
  char block[80], seeds[256];
  snprintf(block, sizeof block, "/tmp/hzshm-e2e-ptblock-%d", (int)getpid());
  const char *p401 = strrchr(members401(), ':');
  CHECK(p401);
  e2e_block_port(block, atoi(p401 + 1)); /* joins the 271 cluster first (also seed 0) */
  snprintf(seeds, sizeof seeds, "%s,%s", members271(), members401());
  e2e_agent_t ag = {.bin = HZSHM_AGENT_SEAMS_BIN};
  snprintf(ag.extra_env[0], sizeof ag.extra_env[0], "HZSHM_AGENT_TEST_BLOCK_FILE=%s", block);
  start(&ag, "change", "pt_change", seeds, NULL);
  CHECK_EQ(e2e_file_count(logp, MISMATCH), 0); /* the 271 cluster (the only one reachable) */
  /* Cut from the 271 cluster (the 401 one reachable again): it joins the other. */
  const char *p271 = strrchr(members271(), ':');
  CHECK(p271);
  uint64_t t0 = e2e_now_us();
  e2e_block_port(block, atoi(p271 + 1));
  wait_logged("connected to a different cluster: cache cleared");
  printf("joined the other cluster %.0f ms after the cut\n", (double)(e2e_now_us() - t0) / 1000);
  wait_logged(WARN_401_271);
  CHECK_EQ(e2e_file_count(logp, WARN_401_271), 1);
  gauge_is_t g = {"pt_change", 401};
  CHECK_GE(e2e_wait(cluster_gauge_is, &g, 10000), 0);
  CHECK_EQ(gauge("hzshm_segment_partitions", "pt_change"), 271);
  unlink(block);
  finish(&ag, NULL, NULL);
}
#endif

TEST_CASE(restart_other_count) {
  hzshm__shm_unlink("pt_re"); /* a failed run's (killed agents leave theirs): the first agent makes it */
  e2e_agent_t ag = {0};
  start(&ag, "restart", "pt_re", members401(), NULL);
  hzshm_t *h;
  hzshm_session_t *s;
  e2e_open_watched("pt_re", "pt_map", &h, &s);
  char khi[32];
  key_of(300, 401, khi, sizeof khi);
  CHECK_RC(hzshm_set(s, khi, strlen(khi), "high", 4), 0);
  hzshm_stats_t b = e2e_stats(h);
  CHECK(e2e_serves(s, khi, "high"));
  CHECK_EQ(e2e_stats(h).hits, b.hits); /* partition 300 of 401: not cached by a segment of 271 */
  e2e_agent_kill9(&ag);                /* its segment stays */
  unlink(logp);                        /* the next agent's lines only */
  ag.extra_args[0] = "--partitions";
  ag.extra_args[1] = "401";
  ag.extra_args[2] = NULL;
  e2e_agent_restart(&ag); /* returns once it serves */
  wait_logged(" warn: the segment of cache pt_re was made with another --memory, --sessions, --readers, "
              "--partitions or --stale-ms");
  CHECK_EQ(e2e_file_count(logp, "replaced by a fresh one"), 1);
  CHECK_EQ(e2e_file_count(logp, "reused the segment"), 0);
  e2e_hit_t hi = {h, s, khi, "high"}; /* the reader of the old segment follows to the new one */
  int64_t us = e2e_wait(e2e_is_hit, &hi, 30000);
  CHECK_GE(us, 0);
  printf("restarted with --partitions 401 on a segment of 271: replaced; the old reader's key of partition 300 "
         "a hit %.0f ms after the new agent served\n", (double)us / 1000);
  finish(&ag, h, s);
}

TEST_CASE(bad_values) {
  log_path("bad");
  const char *vals[] = {"0", "65536", "x", "", NULL};
  for (int i = 0; vals[i]; i++) {
    const char *av[] = {"hzshm-agent", "-n", "pt_bad", "-m", "127.0.0.1:9", "--partitions", vals[i], NULL};
    CHECK_RC(e2e_agent_run(av, logp, 30000), 2);
    char want[128];
    snprintf(want, sizeof want, "hzshm-agent: --partitions: bad value '%s' (1..65535)", vals[i]);
    if (e2e_file_count(logp, want) != 1) {
      fprintf(stderr, "no '%s' for --partitions '%s'\n", want, vals[i]);
      CHECK(0);
    }
  }
  const char *ok[] = {"hzshm-agent", "-n", "pt_bad", "-m", "127.0.0.1:9", "--partitions", "65535", "--version", NULL};
  CHECK_RC(e2e_agent_run(ok, logp, 30000), 0); /* the largest is accepted (--version then exits 0) */
  unlink(logp);
}
