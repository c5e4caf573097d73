/* hzc_test.h - fault injection into the client, for tests only: built into
 * hzclient_test (test_hooks.c) only with the CMake option HZSHM_TEST_HOOKS,
 * linked by tests and the test-only agent hzshm-agent-seams, never installed
 * and never part of hzc.h or of the shipped agent. */
#ifndef HZC_TEST_H
#define HZC_TEST_H

#include "hzc.h"

/* Closes every connection to `port` and refuses new ones (as a network cut
 * between this host and that member would) until called again with another
 * port or 0. */
void hzc_test_block_port(hzc_client_t *c, int port);

#endif
