/* frame.h - client-protocol frames and messages (hazelcast-client-protocol.md
 * §1.2-1.6): the stream decoder with fragment reassembly, a read cursor over
 * the frames of a message, and the outbound message builder.
 *
 * Frame: int32 LE length (including the 6-byte header), uint16 LE flags,
 * content. A message ends at the first frame with IS_FINAL. Fragments start
 * with an 8-byte fragmentation-id frame and are reassembled by that id.
 *
 * Single-threaded (one decoder per connection, on the loop thread).
 */
#ifndef HZSHM_HZ_FRAME_H
#define HZSHM_HZ_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
  HZC__F_BEGIN_FRAGMENT = 0x8000,
  HZC__F_END_FRAGMENT = 0x4000,
  HZC__F_UNFRAGMENTED = 0xC000,
  HZC__F_FINAL = 0x2000,
  HZC__F_BEGIN_DS = 0x1000,
  HZC__F_END_DS = 0x0800,
  HZC__F_NULL = 0x0400,
  HZC__F_EVENT = 0x0200,
  HZC__F_BACKUP_AWARE = 0x0100,
  HZC__F_BACKUP_EVENT = 0x0080,
};
#define HZC__FRAME_HDR 6u
/* Initial-frame content offsets (§1.3). */
#define HZC__OFF_TYPE 0u
#define HZC__OFF_CORR 4u
#define HZC__OFF_PID 12u
#define HZC__REQ_FIXED 16u  /* first fixed request/event parameter */
#define HZC__RESP_FIXED 13u /* first fixed response parameter */

typedef struct {
  uint16_t flags;
  uint32_t len; /* content length (frame length - 6) */
  const uint8_t *p;
} hzc__frame_t;

/* A complete message: frames point into mem, which the message owns. */
typedef struct {
  hzc__frame_t *f;
  size_t n;
  uint8_t *mem;
  size_t bytes; /* sum of content lengths */
} hzc__msg_t;

void hzc__msg_free(hzc__msg_t *m);
/* Header accessors; valid once hzc__msg_check_initial() returned 0. */
int hzc__msg_check_initial(const hzc__msg_t *m); /* first frame >= 12 bytes of content */
int32_t hzc__msg_type(const hzc__msg_t *m);
int64_t hzc__msg_corr(const hzc__msg_t *m);
int hzc__msg_is_event(const hzc__msg_t *m);

/* Builds a hzc__msg_t from a raw encoded message (tests, fuzz). The bytes
 * must hold exactly one unfragmented message. */
int hzc__msg_parse(const void *bytes, size_t len, hzc__msg_t *out);

/* ---- stream decoder ---- */
typedef struct hzc__frag hzc__frag_t;
typedef struct {
  hzc__wr_t in;       /* bytes received and not yet parsed */
  size_t in_off;        /* parse position in `in` */
  hzc__wr_t unit_mem; /* contents of the frames of the unit being read */
  hzc__wr_t unit_fr;  /* struct {flags,off,len} of those frames */
  hzc__frag_t *frags; /* messages being reassembled */
  size_t nfrags;
  size_t max_message;   /* bound on a message's content bytes */
  size_t max_frames;    /* bound on a message's frame count */
} hzc__fdec_t;

/* Called with each complete message; takes ownership of *m. A non-zero
 * return stops the decoder (the caller is closing the connection). */
typedef int (*hzc__msg_cb)(void *ud, hzc__msg_t *m);

void hzc__fdec_init(hzc__fdec_t *d, size_t max_message);
void hzc__fdec_free(hzc__fdec_t *d);
/* Feeds bytes; returns 0, the callback's non-zero value, HZSHM_EPROTO for a
 * malformed stream (bad length, oversized, fragment protocol violation) or
 * -ENOMEM. After an error the decoder must be freed. */
int hzc__fdec_feed(hzc__fdec_t *d, const void *bytes, size_t len, hzc__msg_cb cb, void *ud);

/* ---- cursor over frames (codec decoders) ---- */
typedef struct {
  const hzc__msg_t *m;
  size_t i;
} hzc__cur_t;

static inline void hzc__cur_init(hzc__cur_t *c, const hzc__msg_t *m) {
  c->m = m;
  c->i = 1; /* after the initial frame */
}
static inline int hzc__cur_more(const hzc__cur_t *c) { return c->i < c->m->n; }
int hzc__cur_next(hzc__cur_t *c, const hzc__frame_t **out);
/* If the next frame is a null frame, consumes it and returns 1; else 0 (or EPROTO at end). */
int hzc__cur_null(hzc__cur_t *c);
/* Consumes a begin-data-structure frame or fails with EPROTO. */
int hzc__cur_begin(hzc__cur_t *c);
/* If the next frame is an end-data-structure frame, consumes it and returns 1. */
int hzc__cur_end(hzc__cur_t *c);
/* Skips frames up to and including the end frame matching an already
 * consumed begin frame (nested structures counted). */
int hzc__cur_skip_struct(hzc__cur_t *c);
/* A list of single-frame items, begin to end (both consumed): calls
 * check(frame) on each (non-zero fails the decode with that error) and
 * reports the index of the first item frame and the item count. */
int hzc__cur_list(hzc__cur_t *c, int (*check)(const hzc__frame_t *f), size_t *first, size_t *n);

/* ---- message builder ---- */
typedef struct {
  hzc__wr_t w;
  size_t cur;   /* offset of the frame being written */
  int open;     /* a frame is open (its length not yet patched) */
} hzc__mb_t;

/* Starts a request: initial frame with type, correlation id 0 (set at send
 * time), partition id; append fixed parameters with hzc__mb_fix_* next. */
void hzc__mb_request(hzc__mb_t *b, int32_t type, int32_t pid);
/* Same for a response or event (tests, fake servers). */
void hzc__mb_response(hzc__mb_t *b, int32_t type, int64_t corr, uint8_t backups);
void hzc__mb_event(hzc__mb_t *b, int32_t type, int64_t corr, int32_t pid);
static inline hzc__wr_t *hzc__mb_fix(hzc__mb_t *b) { return &b->w; }
/* Opens a new frame; its content is appended with hzc__wr_* on hzc__mb_fix(). */
void hzc__mb_open(hzc__mb_t *b, uint16_t flags);
void hzc__mb_frame(hzc__mb_t *b, uint16_t flags, const void *p, size_t n);
void hzc__mb_string(hzc__mb_t *b, const char *s);
void hzc__mb_null(hzc__mb_t *b);
void hzc__mb_begin(hzc__mb_t *b);
void hzc__mb_end(hzc__mb_t *b);
/* Closes the last frame and marks it IS_FINAL; returns 0 or the writer error.
 * On success the bytes are in b->w.p / b->w.len (owned by the builder). */
int hzc__mb_finish(hzc__mb_t *b);
void hzc__mb_free(hzc__mb_t *b);
/* Patches the correlation id / partition id of an encoded message. */
void hzc__msg_set_corr(uint8_t *msg, int64_t corr);
void hzc__msg_set_pid(uint8_t *msg, int32_t pid);

#endif /* HZSHM_HZ_FRAME_H */
