/* lib_int.h - private structures of libhzshm (src/lib). */
#ifndef HZSHM_LIB_INT_H
#define HZSHM_LIB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hzshm.h"
#include "ipc.h"
#include "shm.h"

/* One connection to the agent. `mu` serializes its users: one request in
 * flight per connection (the caller holds mu from send to receive). */
typedef struct {
  pthread_mutex_t mu;
  int fd;            /* -1 = not connected (connected lazily) */
  uint32_t next_id;  /* request ids, under mu */
  uint8_t *buf;      /* frame buffer, grown on demand, under mu */
  size_t cap;
} hzshm__lib_conn_t;

struct hzshm {
  /* The segment now followed: replaced (hzshm__lib_follow) when the agent
   * serves a new segment file under the same name. Old handles stay valid
   * (and mapped) until hzshm_close: a thread may still be inside one. */
  _Atomic(hzshm__shm_t *) shm;
  char name[HZSHM_SHM_NAME_MAX + 1];
  pthread_mutex_t follow_mu;   /* serializes re-attaches and the retired list */
  atomic_uint_fast64_t follow_ms; /* last re-attach check (rate limit) */
  hzshm__shm_t **retired;      /* handles of replaced segments, under follow_mu */
  size_t nretired;
  uint64_t id;              /* process-unique: keys this handle's session cores */
  atomic_uint fork_gen;     /* hzshm__lib_fork_gen when h->shm was attached (at open, or re-attached in a child) */
  struct hzshm *prev, *next; /* every open handle of the process, under the list lock (lib.c) */
  char *prefix;
  size_t prefixlen;
  uint32_t timeout_ms;
  uid_t agent_uid;          /* HZSHM_AGENT_UID resolved at hzshm_open ((uid_t)-1: none): attaches, connects */
  uint32_t nconn;
  atomic_uint rr;           /* round robin start for connection choice */
  hzshm__lib_conn_t *conns;
};

/* A session's cached directory reference, under the seqlock of shm_seq.h
 * (odd/even counter seq; any thread that resolved it may publish, with
 * try_write_begin): seq even = (idx, gen, shm) valid if gen != 0. */
typedef struct {
  _Atomic uint64_t seq;
  _Atomic uint32_t idx;
  _Atomic uint64_t gen; /* 0 = not resolved */
  _Atomic uint64_t shm; /* (uintptr_t) of the segment handle it was resolved in (not freed before hzshm_close) */
} hzshm__refcache_t;

/* urcu-bp's fork steps (registry.c), called by lib.c's atfork handler only. */
void hzshm__registry_fork_prepare(void);
void hzshm__registry_fork_parent(void);
void hzshm__registry_fork_child(void);

/* The process's session registry (registry.c, liburcu): one refcounted core
 * per (hzshm_t id, session name), shared by every handle of that session. */
typedef struct hzshm__core hzshm__core_t;
/* Finds or makes the core and takes a reference. Lock-free. 0 or -ENOMEM. */
int hzshm__registry_get(uint64_t hid, const char *name, size_t namelen, hzshm__core_t **out);
/* Drops a reference; the last one unlinks the core and frees it after an RCU
 * grace period (blocks for it). Not from inside an RCU read-side section. */
void hzshm__registry_put(hzshm__core_t *c);
hzshm__refcache_t *hzshm__core_cache(hzshm__core_t *c);
const char *hzshm__core_name(const hzshm__core_t *c, size_t *len);

/* A session handle: a reference to the shared core (name and cached ref). */
struct hzshm_session {
  hzshm_t *h;
  hzshm__core_t *core;
  hzshm__refcache_t *cache; /* hzshm__core_cache(core) */
  const char *name;         /* prefix + sid, NUL-terminated, in the core */
  size_t namelen;
};

/* Incremented in every child after fork() (pthread_atfork). */
extern atomic_uint hzshm__lib_fork_gen;
/* Every call's entry check: 0, HZSHM_EINVAL (NULL). In a fork child, the
 * first call re-attaches h (new reader slots, fresh connections: lib.c, "Fork");
 * its error (e.g. -ENOENT: no agent now) is returned and retried next call. */
int hzshm__lib_check(hzshm_t *h);
/* 1 if h was attached in an ancestor process and not re-attached here.
 * Relaxed (the global): it only changes in a fresh child before it can run
 * other threads (lib.c, on_fork_child). Acquire (h->fork_gen): pairs with the
 * release store in lib.c's reattach(), so a thread that sees the new
 * generation also sees the new segment handle stored before it. */
static inline int hzshm__lib_inherited(hzshm_t *h) {
  return atomic_load_explicit(&hzshm__lib_fork_gen, memory_order_relaxed) !=
         atomic_load_explicit(&h->fork_gen, memory_order_acquire);
}
/* hzshm__lib_check(h) == 0 without a re-attach, inline for the hit path
 * (a child's first call takes the slow path, which re-attaches). */
static inline int hzshm__lib_ok(hzshm_t *h) { return h != NULL && !hzshm__lib_inherited(h); }

/* The segment handle now followed. Acquire: pairs with the release CAS in
 * hzshm__lib_follow, so the new handle's fields are visible. */
static inline hzshm__shm_t *hzshm__lib_shm(hzshm_t *h) { return atomic_load_explicit(&h->shm, memory_order_acquire); }
/* After a lookup failed closed (ESTOPPED, ESTALE) on `cur`: if the agent
 * replaced the segment (a new file under the name), attach the new one.
 * Rate-limited (50 ms). 1 if h now follows another handle. */
int hzshm__lib_follow(hzshm_t *h, hzshm__shm_t *cur);

/* One synchronous request to the agent on some connection of h.
 * Returns the response status (0, HZSHM_E*, -errno), or a transport error
 * (HZSHM_EAGENT, HZSHM_ETIMEDOUT, HZSHM_EPROTO). On 0/ENOTFOUND/ETYPE with a
 * value, calls `sink(ud, aux, val, vlen)` while the buffer is held. */
typedef void (*hzshm__lib_sink)(void *ud, int32_t status, int32_t aux, const void *val, size_t vlen);
int hzshm__lib_conn_request(hzshm_t *h, uint8_t op, const hzshm__ipc_req_t *req, hzshm__lib_sink sink, void *ud);
void hzshm__lib_conn_close_all(hzshm_t *h);

#endif
