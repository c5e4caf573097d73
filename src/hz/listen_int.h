/* listen_int.h - listen.c's records, shared only with the test-only hooks
 * (test_listen.c: hzclient_test, never in what ships). Loop thread only. */
#ifndef HZSHM_LISTEN_INT_H
#define HZSHM_LISTEN_INT_H

#include "hzc_int.h"

enum { HZC__L_INV = 1, HZC__L_OBJ = 2 };

/* One listener's registration on one connection. call == NULL: refused or
 * not sent, waiting to be re-sent at retry_at (the connection is READY:
 * waiting registrations of a closed connection are freed by
 * hzc__listen_conn_closed). */
typedef struct hzc__reg {
  struct hzc__reg *next;
  hzc__conn_t *conn;
  hzc__call_t *call;
  hzc_uuid_t id;
  int acked;
  int initial; /* counted in the listener's `initial` */
  int relisten; /* counted in its connection's relisten_pending */
  uint64_t retry_at;
  uint32_t backoff_ms;
} hzc__reg_t;

struct hzc_listener {
  hzc_listener_t *next;
  int kind;
  char *map;
  hzc_invalidation_cb icb;
  void *iud;
  hzc_object_cb ocb;
  void *oud;
  hzc_status_cb cb;
  void *ud;
  int reported;
  int initial;   /* registrations sent when the listener was added, not yet answered */
  int initial_ok;
  hzc__reg_t *regs;
  int dispatching, removed;
};

#endif
