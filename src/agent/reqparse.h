/* reqparse.h - the agent's decoding and validation of local requests, kept
 * pure (no libuv, no agent state) so that the code the agent runs on bytes
 * from its socket is exactly the code tests/fuzz/fuzz_req.c runs:
 * server.c frames its read buffer with req_scan, requests.c checks
 * every request with req_validate before anything else sees it. */
#ifndef HZSHM_AGENT_REQPARSE_H
#define HZSHM_AGENT_REQPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"

/* Called for every decoded request, in order. Nonzero stops the scan (the
 * connection was closed meanwhile). r points into the scanned buffer. */
typedef int (*req_fn)(void *ud, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r);

typedef struct {
  size_t used;    /* bytes of the frames handed to fn (consume them) */
  int bad;        /* 1: the frame at `used` is malformed: answer HZSHM_EPROTO and close */
  uint32_t reqid; /* for the error answer: the frame's reqid if its magic was right, else 0 */
  uint8_t op;     /* its op if the header decoded, else 0 */
} req_scan_t;

/* Walks the complete frames at the start of buf[0, len) (ipc.h framing);
 * a trailing partial frame is left for the next read. */
void req_scan(const uint8_t *buf, size_t len, req_fn fn, void *ud, req_scan_t *out);

/* A decoded request's fields against the protocol's rules (prefix: the
 * agent's --prefix, or NULL). 0, or the code the agent answers with:
 * HZSHM_EEMPTY, HZSHM_EBADSESSION, HZSHM_EINVAL. */
int req_validate(const char *prefix, const hzshm__ipc_hdr_t *h, const hzshm__ipc_req_t *r);

#endif
