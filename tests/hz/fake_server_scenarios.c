/* fake_server_scenarios.c - the faults. Each scenario writes the bytes that
 * replace one reply (the trigger request's, or the Authentication response
 * for at_auth scenarios) and says whether to go on, close, or go silent.
 * A client under test must turn every one of them into a clean error
 * (HZSHM_EPROTO / HZSHM_ETIMEDOUT / HZSHM_ECLOSED ...) without crashing,
 * hanging past its deadlines, or leaking.
 */
#include "fake_server.h"

#include <stdlib.h>
#include <string.h>

/* A Map.Get-style response whose value frame is replaced by `flags` (content n bytes of 'x'). */
static void response_with_frame(fs_buf_t *out, const fs_request_t *req, uint16_t flags, size_t n) {
  static const char xs[64] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  size_t f = hzshm__fs_response_start(out, req->type + 1, req->corr);
  hzshm__fs_frame_end(out, f);
  hzshm__fs_frame(out, flags, xs, n < sizeof(xs) ? n : sizeof(xs));
}

static enum fs_after truncated(fs_buf_t *out, const fs_request_t *req) {
  fs_buf_t full = {0};
  hzshm__fs_answer(&full, req);
  hzshm__fs_put(out, full.p, full.len > 10 ? 10 : full.len / 2); /* the length says more is coming */
  free(full.p);
  return FS_HOLD;
}

static enum fs_after truncated_close(fs_buf_t *out, const fs_request_t *req) {
  truncated(out, req);
  return FS_CLOSE;
}

static enum fs_after truncated_header(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_put(out, "\x1e\x00\x00", 3); /* 3 of the 6 header bytes */
  return FS_CLOSE;
}

static enum fs_after oversized(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_le32(out, 0x7ffffff0u); /* a 2 GiB frame: the client must refuse, not allocate */
  hzshm__fs_le16(out, FS_UNFRAGMENTED | FS_FINAL);
  hzshm__fs_le32(out, req->type + 1);
  hzshm__fs_le64(out, (uint64_t)req->corr);
  return FS_HOLD;
}

static enum fs_after negative_length(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_le32(out, 0xffffffffu);
  hzshm__fs_le16(out, FS_UNFRAGMENTED | FS_FINAL);
  return FS_HOLD;
}

static enum fs_after short_length(fs_buf_t *out, const fs_request_t *req) {
  for (uint32_t len = 0; len < 6; len++) { /* lengths 0..5: all below the 6-byte header */
    hzshm__fs_le32(out, len);
    hzshm__fs_le16(out, FS_UNFRAGMENTED | FS_FINAL);
  }
  return FS_HOLD;
}

static enum fs_after empty_message(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_frame(out, FS_UNFRAGMENTED | FS_FINAL, NULL, 0); /* no type, no correlation id */
  return FS_HOLD;
}

static enum fs_after short_initial(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_frame_start(out, FS_UNFRAGMENTED | FS_FINAL);
  hzshm__fs_le32(out, req->type + 1);
  hzshm__fs_le32(out, (uint32_t)req->corr); /* correlation id cut in half */
  hzshm__fs_frame_end(out, f);
  return FS_HOLD;
}

static enum fs_after bogus_flags(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_response_start(out, req->type + 1, req->corr);
  hzshm__fs_frame_end(out, f);
  out->p[f + 4] = 0xff; /* every flag bit set, reserved ones included */
  out->p[f + 5] = 0xff;
  return FS_HOLD;
}

static enum fs_after unknown_correlation(fs_buf_t *out, const fs_request_t *req) {
  fs_request_t other = *req;
  other.corr = req->corr + 1000003;
  hzshm__fs_answer(out, &other); /* must be ignored (or fail only that id) ... */
  hzshm__fs_answer(out, req);    /* ... while the real answer still completes the call */
  return FS_CONTINUE;
}

static enum fs_after unknown_correlation_only(fs_buf_t *out, const fs_request_t *req) {
  fs_request_t other = *req;
  other.corr = -req->corr - 1;
  hzshm__fs_answer(out, &other);
  return FS_CONTINUE; /* the call itself never gets an answer: it must time out */
}

static enum fs_after duplicate_response(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_answer(out, req);
  hzshm__fs_answer(out, req);
  return FS_CONTINUE;
}

static enum fs_after wrong_type(fs_buf_t *out, const fs_request_t *req) {
  fs_request_t other = *req;
  other.type = 0x7f7f00; /* a message type no codec knows, on the right correlation id */
  hzshm__fs_answer(out, &other);
  return FS_CONTINUE;
}

static enum fs_after error_response(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_response_start(out, 0, req->corr);
  hzshm__fs_frame_end(out, f);
  hzshm__fs_frame(out, FS_BEGIN_DS, NULL, 0); /* List_ErrorHolder */
  hzshm__fs_frame(out, FS_BEGIN_DS, NULL, 0); /* ErrorHolder */
  f = hzshm__fs_frame_start(out, 0);
  hzshm__fs_le32(out, (uint32_t)hzshm__fs_error_code);
  hzshm__fs_frame_end(out, f);
  /* The class a member sends with that code (ClientProtocolErrorCodes, 4.x/5.x numbering). */
  const char *cls = "com.hazelcast.spi.exception.PartitionMigratingException", *msg = "injected by fake_server";
  if (hzshm__fs_error_code == 64) { /* ACCESS_CONTROL: e.g. a listener registration without the "listen" permission */
    cls = "java.security.AccessControlException";
    msg = "Permission (\"com.hazelcast.security.permission.MapPermission\" \"*\" \"listen\") denied! "
          "(injected by fake_server)";
  }
  hzshm__fs_frame(out, 0, cls, strlen(cls));
  hzshm__fs_frame(out, 0, msg, strlen(msg));
  hzshm__fs_frame(out, FS_BEGIN_DS, NULL, 0); /* stack trace: empty list */
  hzshm__fs_frame(out, FS_END_DS, NULL, 0);
  hzshm__fs_frame(out, FS_END_DS, NULL, 0);
  size_t last = out->len;
  hzshm__fs_frame(out, FS_END_DS, NULL, 0);
  hzshm__fs_final(out, last);
  return FS_CONTINUE;
}

static enum fs_after garbage_custom(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_response_start(out, 0, req->corr);
  hzshm__fs_frame_end(out, f);
  hzshm__fs_frame(out, FS_BEGIN_DS, NULL, 0);
  hzshm__fs_frame(out, FS_BEGIN_DS, NULL, 0);
  hzshm__fs_frame(out, 0, "\x07", 1);          /* errorCode frame with 1 of its 4 bytes */
  hzshm__fs_frame(out, 0, "\xff\xfe\xc0", 3);  /* className: invalid UTF-8 */
  hzshm__fs_frame(out, FS_NULL | FS_BEGIN_DS, NULL, 0); /* contradictory flags */
  size_t last = out->len;
  hzshm__fs_frame(out, FS_END_DS, NULL, 0); /* the list is never closed */
  hzshm__fs_final(out, last);
  return FS_HOLD;
}

static enum fs_after unbalanced_end(fs_buf_t *out, const fs_request_t *req) {
  response_with_frame(out, req, FS_END_DS, 0); /* end frame where the value should be */
  size_t last = out->len;
  hzshm__fs_frame(out, FS_END_DS, NULL, 0);
  hzshm__fs_final(out, last);
  return FS_HOLD;
}

static enum fs_after unclosed_begin(fs_buf_t *out, const fs_request_t *req) {
  response_with_frame(out, req, FS_BEGIN_DS, 0);
  size_t last = out->len;
  hzshm__fs_frame(out, 0, "x", 1);
  hzshm__fs_final(out, last);
  return FS_HOLD;
}

static enum fs_after deep_nesting(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_response_start(out, req->type + 1, req->corr);
  hzshm__fs_frame_end(out, f);
  for (int i = 0; i < 100000; i++) hzshm__fs_frame(out, FS_BEGIN_DS, NULL, 0); /* recursion bait */
  for (int i = 0; i < 100000; i++) hzshm__fs_frame(out, FS_END_DS, NULL, 0);
  hzshm__fs_final(out, out->len - 6);
  return FS_HOLD;
}

static enum fs_after value_not_data(fs_buf_t *out, const fs_request_t *req) {
  response_with_frame(out, req, 0, 5); /* a Data frame of 5 bytes: below the 8-byte Data header */
  hzshm__fs_final(out, out->len - 11);
  return FS_HOLD;
}

static enum fs_after fragment_never_ends(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_frame_start(out, FS_BEGIN_FRAG);
  hzshm__fs_le64(out, 42); /* fragmentation id */
  hzshm__fs_frame_end(out, f);
  fs_buf_t body = {0};
  hzshm__fs_answer(&body, req);
  hzshm__fs_put(out, body.p, body.len); /* first fragment: the whole answer, but no END_FRAGMENT ever follows */
  free(body.p);
  return FS_HOLD;
}

static enum fs_after fragment_unknown_id(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_frame_start(out, FS_END_FRAG);
  hzshm__fs_le64(out, 4242); /* a last fragment of a message that never began */
  hzshm__fs_frame_end(out, f);
  hzshm__fs_frame(out, FS_FINAL, "zz", 2);
  hzshm__fs_answer(out, req);
  return FS_CONTINUE;
}

static enum fs_after event_unknown(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_answer(out, req);
  for (int i = 0; i < 2; i++) { /* an unknown type on this id, then a known type on an unused id */
    size_t f = hzshm__fs_frame_start(out, FS_UNFRAGMENTED | FS_EVENT | FS_FINAL);
    hzshm__fs_le32(out, i == 0 ? 0x7f7f02 : 0x013f02);
    hzshm__fs_le64(out, (uint64_t)(i == 0 ? req->corr : req->corr + 777777));
    hzshm__fs_le32(out, (uint32_t)-1);
    hzshm__fs_frame_end(out, f);
  }
  return FS_CONTINUE;
}

static enum fs_after trickle(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_answer(out, req); /* well-formed; the loop writes it one byte per write() */
  return FS_CONTINUE;
}

static enum fs_after silent(fs_buf_t *out, const fs_request_t *req) { return FS_HOLD; }
static enum fs_after close_now(fs_buf_t *out, const fs_request_t *req) { return FS_CLOSE; }

static enum fs_after auth_fail(fs_buf_t *out, const fs_request_t *req) {
  hzshm__fs_auth_response(out, req->corr, 1); /* CREDENTIALS_FAILED */
  return FS_CONTINUE;
}

static enum fs_after auth_short(fs_buf_t *out, const fs_request_t *req) {
  size_t f = hzshm__fs_response_start(out, 0x000101, req->corr);
  hzshm__fs_u8(out, 0); /* status, then nothing: memberUuid, partitionCount ... missing */
  hzshm__fs_frame_end(out, f);
  hzshm__fs_final(out, f);
  return FS_HOLD;
}

const fs_scenario_t hzshm__fs_scenarios[] = {
    {"normal", "no fault: plausible answers to everything (baseline)", 0, NULL},
    {"truncated", "first 10 bytes of the answer, then silence (socket stays open)", 0, truncated},
    {"truncated-close", "first 10 bytes of the answer, then close", 0, truncated_close},
    {"truncated-header", "3 bytes of a frame header, then close", 0, truncated_header},
    {"oversized", "frame length 0x7ffffff0 (2 GiB), then silence", 0, oversized},
    {"negative-length", "frame length 0xffffffff, then silence", 0, negative_length},
    {"short-length", "frames of length 0..5 (< 6-byte header), then silence", 0, short_length},
    {"empty-message", "a final 6-byte frame: a message without type or correlation id", 0, empty_message},
    {"short-initial", "initial frame of 8 content bytes (< 13-byte response header)", 0, short_initial},
    {"bogus-flags", "response whose flags are 0xffff", 0, bogus_flags},
    {"unknown-correlation", "an answer for an unused correlation id, then the real answer", 0,
     unknown_correlation},
    {"unknown-correlation-only", "only an answer for an unused correlation id (the call must time out)", 0,
     unknown_correlation_only},
    {"duplicate-response", "the answer twice", 0, duplicate_response},
    {"wrong-type", "answer with message type 0x7f7f00 on the right correlation id", 0, wrong_type},
    {"error", "a well-formed error response (code from --error-code, default 39; 64: AccessControlException)", 0,
     error_response},
    {"garbage-custom", "error response with a short fixed frame, invalid UTF-8, unclosed list", 0,
     garbage_custom},
    {"unbalanced-end", "end-of-structure frames where a value belongs", 0, unbalanced_end},
    {"unclosed-begin", "a begin frame never closed before IS_FINAL", 0, unclosed_begin},
    {"deep-nesting", "100000 nested begin frames, then as many ends", 0, deep_nesting},
    {"value-not-data", "value frame of 5 bytes (a Data needs >= 8)", 0, value_not_data},
    {"fragment-never-ends", "BEGIN_FRAGMENT with the answer, never an END_FRAGMENT", 0, fragment_never_ends},
    {"fragment-unknown-id", "an END_FRAGMENT for an id never begun, then the answer", 0, fragment_unknown_id},
    {"event-unknown", "answer, then an event of unknown type and one on an unused id", 0, event_unknown},
    {"trickle", "well-formed answer written one byte per write()", 0, trickle},
    {"silent", "no answer; socket stays open", 0, silent},
    {"close", "close the connection instead of answering", 0, close_now},
    {"auth-fail", "Authentication answered with status 1 (CREDENTIALS_FAILED)", 1, auth_fail},
    {"auth-short", "Authentication response cut after the status byte", 1, auth_short},
    {"auth-silent", "no Authentication response; socket stays open", 1, silent},
    {"auth-close", "close instead of the Authentication response", 1, close_now},
    {NULL, NULL, 0, NULL},
};
