/* test_metrics: the agent's --metrics-listen endpoint and
 * `hzshm stat --format prometheus` (issue 13), scraped for real, against a
 * real member at argv[1].
 *   - GET /metrics: 200, text/plain version 0.0.4, every sample line parses
 *     ("name{labels} value"), hits/requests/invalidations as done by the
 *     test, both histograms with observations, a value too large for a
 *     slab counted in hzshm_uncacheable_values_total
 *   - HEAD /metrics 200 without a body; /other 404; POST 405; garbage 400;
 *     an oversized head 431; a silent connection closed by the agent
 *   - the CLI's exposition carries the same names */
#define _GNU_SOURCE
#include <string.h>

#include "e2e.h"

#define MPORT 5767 /* in the e2e range; no member fixture uses it */

static char resp[1 << 18];

static size_t scrape_raw(const char *req, size_t len) { return e2e_http(MPORT, req, len, resp, sizeof resp); }

static size_t scrape(const char *req) { return scrape_raw(req, strlen(req)); }

static double sample(const char *text, const char *series) { return e2e_prom_sample(text, series); }

/* Every line is a comment or "name{...} value". */
static void check_exposition(const char *body) {
  int samples = 0;
  for (const char *p = body; *p;) {
    const char *e = strchr(p, '\n');
    CHECK_NE(e, NULL); /* every line ends with \n */
    if (*p != '#') {
      const char *br = memchr(p, '{', (size_t)(e - p)), *cb = memchr(p, '}', (size_t)(e - p));
      CHECK(br && cb && cb > br && cb[1] == ' ');
      for (const char *c = p; c < br; c++) CHECK((*c >= 'a' && *c <= 'z') || *c == '_');
      char *end;
      strtod(cb + 2, &end);
      CHECK_EQ(end, e);
      samples++;
    }
    p = e + 1;
  }
  CHECK_GT(samples, 30);
}

TEST_CASE(metrics) {
  e2e_agent_t ag = {0};
  ag.extra_args[0] = "--metrics-listen";
  ag.extra_args[1] = "127.0.0.1:5767";
  e2e_agent_start(&ag, "mt", e2e_members());

  hzshm_t *h;
  CHECK_RC(hzshm_open("mt", NULL, &h), 0);
  hzshm_session_t *s;
  CHECK_RC(hzshm_session_open(h, "mt_map", 6, &s), 0);
  CHECK_RC(hzshm_set(s, "k", 1, "v1", 2), 0);
  char buf[64];
  size_t n;
  for (int i = 0; i < 10; i++) CHECK_RC(hzshm_get(s, "k", 1, buf, sizeof buf, &n), 0);
  /* A value larger than this segment's slabs (--memory 32m): served, not cached. */
  size_t big = 900u << 10;
  char *bv = malloc(big);
  CHECK(bv);
  memset(bv, 'x', big);
  CHECK_RC(hzshm_set(s, "big", 3, bv, big), 0);
  free(bv);
  hzshm_stats_t st = e2e_stats(h);

  size_t len = scrape("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_GT(len, 0);
  CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
  CHECK_NE(strstr(resp, "Content-Type: text/plain; version=0.0.4"), NULL);
  char *body = strstr(resp, "\r\n\r\n");
  CHECK(body);
  body += 4;
  check_exposition(body);
  CHECK_NE(strstr(body, "# TYPE hzshm_hits_total counter\n"), NULL);
  CHECK_GE(sample(body, "hzshm_hits_total{cache=\"mt\"}"), (double)st.hits);
  CHECK_GE(sample(body, "hzshm_hits_total{cache=\"mt\"}"), 10);
  CHECK_EQ(sample(body, "hzshm_healthy{cache=\"mt\"}"), 1);
  CHECK_EQ(sample(body, "hzshm_agent_state{cache=\"mt\",state=\"serving\"}"), 1);
  CHECK_GE(sample(body, "hzshm_uncacheable_values_total{cache=\"mt\"}"), 1);
  CHECK_GE(sample(body, "hzshm_agent_requests_total{cache=\"mt\"}"), 2);
  CHECK_GE(sample(body, "hzshm_invalidations_total{cache=\"mt\"}"), 0);
  CHECK_GE(sample(body, "hzshm_agent_request_seconds_count{cache=\"mt\"}"), 2);
  CHECK_EQ(sample(body, "hzshm_agent_request_seconds_bucket{cache=\"mt\",le=\"+Inf\"}"), sample(body, "hzshm_agent_request_seconds_count{cache=\"mt\"}"));
  CHECK_GE(sample(body, "hzshm_invalidation_lag_seconds_count{cache=\"mt\"}"), 0);
  printf("scraped %zu bytes: hits %.0f, agent requests %.0f, uncacheable %.0f, lag samples %.0f\n", len,
         sample(body, "hzshm_hits_total{cache=\"mt\"}"), sample(body, "hzshm_agent_request_seconds_count{cache=\"mt\"}"),
         sample(body, "hzshm_uncacheable_values_total{cache=\"mt\"}"),
         sample(body, "hzshm_invalidation_lag_seconds_count{cache=\"mt\"}"));

  scrape("HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
  CHECK(!strncmp(resp, "HTTP/1.1 200 OK\r\n", 17));
  CHECK_EQ(strstr(resp, "\r\n\r\n")[4], 0);
  scrape("GET /other HTTP/1.0\r\n\r\n");
  CHECK(!strncmp(resp, "HTTP/1.1 404 ", 13));
  scrape("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  CHECK(!strncmp(resp, "HTTP/1.1 405 ", 13));
  scrape("hello\n\n");
  CHECK(!strncmp(resp, "HTTP/1.1 400 ", 13));
  static char huge[20000];
  memcpy(huge, "GET /metrics HTTP/1.1\r\nX: ", 26);
  memset(huge + 26, 'a', sizeof huge - 26);
  scrape_raw(huge, sizeof huge);
  CHECK(!strncmp(resp, "HTTP/1.1 431 ", 13));
  /* A peer that says nothing is closed by the agent (5 s), which serves meanwhile. */
  CHECK_EQ(scrape_raw("", 0), 0);
  CHECK(e2e_serves(s, "k", "v1"));

  /* The CLI's exposition: the same names. */
  const char *av[] = {"hzshm", "-n", "mt", "stat", "--format", "prometheus", NULL};
  static char out[1 << 16];
  CHECK_RC(e2e_cli(out, sizeof out, NULL, av), 0);
  check_exposition(out);
  CHECK_GE(sample(out, "hzshm_hits_total{cache=\"mt\"}"), 10);
  CHECK_GE(sample(out, "hzshm_uncacheable_values_total{cache=\"mt\"}"), 1);
  const char *bad[] = {"hzshm", "-n", "mt", "stat", "--format", "xml", NULL};
  CHECK_RC(e2e_cli(out, sizeof out, NULL, bad), 2);

  hzshm_session_close(s);
  hzshm_close(h);
  CHECK_RC(e2e_agent_stop(&ag), 0);
  printf("test_metrics: ok\n");
}
