/* test_consistency.c - randomized consistency check across two hosts and the
 * official client. Writers: one process per host (through the cache) and one
 * official-client process, each writing unique values to a few keys. Readers:
 * processes on both hosts reading in a loop and recording (start, end, value).
 *
 * Checker: every read must return a value that was written (never invented,
 * never from a write that started after the read ended), and that value may
 * be superseded - some other write of the key *started* after its write was
 * acknowledged, and was itself acknowledged - at most delta before the read
 * started. It reports delta (p50/p99/max over the reads that saw a
 * superseded value) and asserts max delta below a correctness bound (the
 * invalidation path's; not a performance assertion). */
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "peer.h"

#define NKEYS 4
#define NWRITERS 3       /* 0: host A, 1: host B, 2: official client */
#define WRITES 150       /* per writer */
#define NREADERS 4       /* 2 per host */
#define MAXREADS 200000  /* per reader */
#define BOUND_US 5000000 /* 5 s: far above the measured lag, still a real bound */

typedef struct {
  uint64_t start, ack;
  int key;
  int done;
} wrec_t;

typedef struct {
  uint64_t start, end;
  int key, writer, seq; /* writer -1: absent */
} rrec_t;

typedef struct {
  wrec_t w[NWRITERS][WRITES];
  volatile int writers_done;
  int writers_ready; /* atomically incremented; all start together */
  rrec_t r[NREADERS][MAXREADS];
  int nr[NREADERS];
} log_t;

static char NA[64], NB[64], SID[64];

static int all_ready(void *ud) {
  log_t *L = ud;
  return __atomic_load_n(&L->writers_ready, __ATOMIC_ACQUIRE) == NWRITERS; /* paired with the writers' add */
}

static void wait_ready(log_t *L) {
  if (e2e_wait(all_ready, L, 120000) < 0) _exit(7);
}

static void writer(log_t *L, int id, const char *members) {
  hzshm_t *h = NULL;
  hzshm_session_t *s = NULL;
  hzshm__peer_t *p = NULL;
  if (id < 2) {
    if (hzshm_open(id == 0 ? NA : NB, NULL, &h) || hzshm_session_open(h, SID, strlen(SID), &s)) _exit(2);
  } else if (hzshm__peer_start(members, "dev", 90000, &p) != 0) {
    _exit(3);
  }
  /* Release: paired with the acquire polls in wait_ready. */
  __atomic_add_fetch(&L->writers_ready, 1, __ATOMIC_RELEASE);
  wait_ready(L);
  unsigned seed = (unsigned)getpid();
  char key[8], val[32];
  for (int i = 0; i < WRITES; i++) {
    int k = (int)(rand_r(&seed) % NKEYS);
    snprintf(key, sizeof key, "k%d", k);
    snprintf(val, sizeof val, "%d-%d", id, i);
    wrec_t *w = &L->w[id][i];
    w->key = k;
    w->start = e2e_now_us();
    int rc = id < 2 ? hzshm_set(s, key, strlen(key), val, strlen(val))
                    : hzshm__peer_set(p, SID, key, strlen(key), val, strlen(val));
    if (rc != 0) _exit(4);
    w->ack = e2e_now_us();
    w->done = 1;
  }
  if (p) hzshm__peer_stop(p, 20000);
  if (s) hzshm_session_close(s);
  if (h) hzshm_close(h);
  _exit(0);
}

static void reader(log_t *L, int id) {
  hzshm_t *h;
  hzshm_session_t *s;
  if (hzshm_open(id % 2 == 0 ? NA : NB, NULL, &h) || hzshm_session_open(h, SID, strlen(SID), &s)) _exit(2);
  wait_ready(L);
  unsigned seed = (unsigned)getpid();
  char key[8], buf[64];
  int n = 0;
  unsigned long iter = 0;
  while (n < MAXREADS && !__atomic_load_n(&L->writers_done, __ATOMIC_ACQUIRE)) { /* paired with the parent's release */
    int k = (int)(rand_r(&seed) % NKEYS);
    snprintf(key, sizeof key, "k%d", k);
    rrec_t tmp, *r = ++iter % 8 == 0 ? &L->r[id][n] : &tmp; /* every read is checked for errors; 1 in 8 is logged */
    size_t vlen;
    r->start = e2e_now_us();
    int rc = hzshm_get(s, key, strlen(key), buf, sizeof buf - 1, &vlen);
    r->end = e2e_now_us();
    r->key = k;
    if (rc == HZSHM_ENOTFOUND) {
      r->writer = -1;
    } else if (rc == 0) {
      buf[vlen] = 0;
      if (sscanf(buf, "%d-%d", &r->writer, &r->seq) != 2) _exit(5);
    } else {
      _exit(6);
    }
    if (r != &tmp) n++;
  }
  L->nr[id] = n;
  hzshm_session_close(s);
  hzshm_close(h);
  _exit(0);
}

TEST_CASE(consistency) {
  snprintf(NA, sizeof NA, "e2e-ca-%d", (int)getpid());
  snprintf(NB, sizeof NB, "e2e-cb-%d", (int)getpid());
  snprintf(SID, sizeof SID, "consistency-%d", (int)getpid());
  e2e_agent_t A = {0}, B = {0};
  e2e_agent_start(&A, NA, e2e_members());
  e2e_agent_start(&B, NB, e2e_members());
  log_t *L = mmap(NULL, sizeof *L, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  CHECK_NE(L, MAP_FAILED);
  /* Every key starts absent (fresh session id): reads of absence before the
   * first acknowledged write of a key are correct. */
  pid_t wp[NWRITERS], rp[NREADERS];
  for (int i = 0; i < NREADERS; i++)
    if ((rp[i] = fork()) == 0) reader(L, i);
  for (int i = 0; i < NWRITERS; i++)
    if ((wp[i] = fork()) == 0) writer(L, i, e2e_members());
  for (int i = 0; i < NWRITERS; i++) {
    int st;
    CHECK(waitpid(wp[i], &st, 0) == wp[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  __atomic_store_n(&L->writers_done, 1, __ATOMIC_RELEASE); /* paired with the readers' acquire */
  for (int i = 0; i < NREADERS; i++) {
    int st;
    CHECK(waitpid(rp[i], &st, 0) == rp[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }

  /* superseded_at[w][i]: the earliest ack of a write of the same key that
   * started after write (w, i) was acknowledged; UINT64_MAX if none. */
  static uint64_t sup[NWRITERS][WRITES];
  uint64_t first_ack[NKEYS];
  for (int k = 0; k < NKEYS; k++) first_ack[k] = UINT64_MAX;
  for (int w = 0; w < NWRITERS; w++)
    for (int i = 0; i < WRITES; i++) {
      wrec_t *a = &L->w[w][i];
      CHECK(a->done);
      if (a->ack < first_ack[a->key]) first_ack[a->key] = a->ack;
      sup[w][i] = UINT64_MAX;
      for (int w2 = 0; w2 < NWRITERS; w2++)
        for (int j = 0; j < WRITES; j++) {
          wrec_t *b = &L->w[w2][j];
          if (b->key == a->key && b->start > a->ack && b->ack < sup[w][i]) sup[w][i] = b->ack;
        }
    }
  size_t total = 0, stale = 0, cap = 0;
  for (int r = 0; r < NREADERS; r++) cap += (size_t)L->nr[r];
  uint64_t *deltas = malloc((cap ? cap : 1) * sizeof *deltas);
  for (int r = 0; r < NREADERS; r++) {
    for (int n = 0; n < L->nr[r]; n++) {
      rrec_t *x = &L->r[r][n];
      total++;
      uint64_t sat;
      if (x->writer < 0) {
        sat = first_ack[x->key]; /* absence is superseded by the first acknowledged write */
      } else {
        CHECK_LT(x->writer, NWRITERS);
        CHECK_GE(x->seq, 0);
        CHECK_LT(x->seq, WRITES);
        wrec_t *w = &L->w[x->writer][x->seq];
        CHECK_EQ(w->key, x->key);      /* never a value of another key */
        CHECK_LE(w->start, x->end);    /* never a value from the future */
        sat = sup[x->writer][x->seq];
      }
      if (sat != UINT64_MAX && x->start > sat) deltas[stale++] = x->start - sat;
    }
  }
  printf("reads %zu, writes %d, reads of a superseded value %zu\n", total, NWRITERS * WRITES, stale);
  e2e_print_dist("delta (read start - superseded at)", deltas, stale, "us");
  CHECK_GT(total, 1000);
  if (stale) CHECK_LT(deltas[stale - 1], BOUND_US); /* sorted by e2e_print_dist */
  free(deltas);
  munmap(L, sizeof *L);
  CHECK_EQ(e2e_agent_stop(&A), 0);
  CHECK_EQ(e2e_agent_stop(&B), 0);
  printf("test_consistency: ok\n");
}
