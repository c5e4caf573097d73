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

/* The member UUID of partition p's owner (the last PartitionsView): 0, or -1 if unknown. */
int hzc_test_owner_uuid(const hzc_client_t *c, uint32_t p, hzc_uuid_t *out);
/* Sends the real deregistration (Map.RemoveEntryListener) of invalidation
 * listener l's acknowledged registration on the connection to partition p's
 * owner, and keeps the registration's call as it is: the member drops it,
 * the client believes it exists (as when a member drops a registration
 * during a destroy). Returns how many were sent (0 or 1). test_listen.c. */
int hzc_test_deregister_on_owner(hzc_client_t *c, hzc_listener_t *l, uint32_t p);

#endif
