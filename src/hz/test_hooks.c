/* test_hooks.c - hzc_test.h: fault injection, only in test builds. The
 * client's connect path (conn.c) refuses c->blocked_port; only this file
 * sets it, so in the shipped agent it stays 0. */
#include "hzc_int.h"
#include "hzc_test.h"

void hzc_test_block_port(hzc_client_t *c, int port) {
  if (!c || port == c->blocked_port) return;
  c->blocked_port = port;
  if (port == 0) return;
  for (hzc__conn_t *x = c->conns; x; x = x->next)
    if (x->port == port) hzc__conn_close(x, UV_ECONNREFUSED, "test: network to this member cut");
}
