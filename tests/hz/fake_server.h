/* fake_server.h - a fake Hazelcast member for faults a real member cannot
 * produce (issue 3): malformed, truncated or out-of-protocol replies.
 *
 * The server speaks just enough of the client protocol (CP2 preamble,
 * Authentication, AddClusterViewListener, Ping, plausible empty answers to
 * map operations) for a client to reach its steady state; then, at the
 * trigger point, the scenario replaces one reply with a fault. See
 * tests/interop/README.md ("Fake server") and `fake_server --list`.
 *
 * Single-threaded: one poll loop owns every connection.
 */
#ifndef HZSHM_FAKE_SERVER_H
#define HZSHM_FAKE_SERVER_H

#include <stddef.h>
#include <stdint.h>

/* Frame flags (hazelcast-client-protocol.md §1.2). */
#define FS_BEGIN_FRAG 0x8000u
#define FS_END_FRAG 0x4000u
#define FS_UNFRAGMENTED 0xC000u
#define FS_FINAL 0x2000u
#define FS_BEGIN_DS 0x1000u
#define FS_END_DS 0x0800u
#define FS_NULL 0x0400u
#define FS_EVENT 0x0200u

/* A growable output buffer of frames. */
typedef struct {
  uint8_t *p;
  size_t len, cap;
  int oom; /* set when an allocation failed; the buffer is then not sent */
} fs_buf_t;

void hzshm__fs_put(fs_buf_t *b, const void *data, size_t n);
void hzshm__fs_u8(fs_buf_t *b, uint8_t v);
void hzshm__fs_le16(fs_buf_t *b, uint16_t v);
void hzshm__fs_le32(fs_buf_t *b, uint32_t v);
void hzshm__fs_le64(fs_buf_t *b, uint64_t v);
/* Appends a whole frame: length (6 + n), flags, content. */
void hzshm__fs_frame(fs_buf_t *b, uint16_t flags, const void *content, size_t n);
/* Starts a frame whose content the caller appends; hzshm__fs_frame_end patches its length. */
size_t hzshm__fs_frame_start(fs_buf_t *b, uint16_t flags);
void hzshm__fs_frame_end(fs_buf_t *b, size_t start);
/* Appends a response initial frame: type, correlation id, backup acks 0 (content 13 + extra). */
size_t hzshm__fs_response_start(fs_buf_t *b, uint32_t type, int64_t corr);
/* Sets IS_FINAL on the last frame appended, whose header starts at `start`. */
void hzshm__fs_final(fs_buf_t *b, size_t start);

/* One received request, as the scenarios see it. */
typedef struct {
  uint32_t type;
  int64_t corr;
  int32_t partition;
} fs_request_t;

/* What a scenario asks the connection loop to do after its bytes are sent. */
enum fs_after { FS_CONTINUE = 0, FS_CLOSE, FS_HOLD /* stop answering, keep the socket open */ };

typedef struct fs_conn fs_conn_t;
typedef struct {
  const char *name;
  const char *help;
  int at_auth; /* 1: the fault replaces the Authentication response */
  /* Appends the faulty reply to `req` into out; returns what to do next. */
  enum fs_after (*fault)(fs_buf_t *out, const fs_request_t *req);
} fs_scenario_t;

extern const fs_scenario_t hzshm__fs_scenarios[];

/* The plausible, well-formed answer of the fake member to `req`. */
void hzshm__fs_answer(fs_buf_t *out, const fs_request_t *req);
/* Authentication response, status 0..3, with this fake's identity. */
void hzshm__fs_auth_response(fs_buf_t *out, int64_t corr, uint8_t status);

/* Process-wide settings from the command line. */
extern int32_t hzshm__fs_partition_count;
extern uint16_t hzshm__fs_port;
extern int32_t hzshm__fs_error_code;
extern int hzshm__fs_new_cluster_id;
extern int32_t hzshm__fs_cluster_id;

#endif /* HZSHM_FAKE_SERVER_H */
