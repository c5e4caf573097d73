/* frame.c - frame stream decoder with fragment reassembly, frame cursor and
 * message builder (see frame.h; hazelcast-client-protocol.md §1.2-1.6, which
 * restates ClientMessage.java / ClientMessageReader.java / ClientMessageSplitter.java).
 *
 * Bounds: a frame length below 6 or a message above max_message content
 * bytes or max_frames frames is a protocol error; at most MAX_FRAGS
 * fragmented messages may be open at once. The decoder copies every frame's
 * content once into the arena of its message, so a 1 MiB value costs one
 * copy out of the read buffer.
 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAGS 16

typedef struct {
  uint16_t flags;
  uint32_t len;
  size_t off;
} frec_t;

struct hzc__frag {
  int64_t id;
  hzc__wr_t mem;
  hzc__wr_t fr;
};

void hzc__msg_free(hzc__msg_t *m) {
  if (!m) return;
  free(m->f);
  free(m->mem);
  memset(m, 0, sizeof *m);
}

int hzc__msg_check_initial(const hzc__msg_t *m) {
  if (m->n == 0 || m->f[0].len < 12) return HZSHM_EPROTO;
  return 0;
}
int32_t hzc__msg_type(const hzc__msg_t *m) { return (int32_t)hzshm__le32_get(m->f[0].p); }
int64_t hzc__msg_corr(const hzc__msg_t *m) {
  const uint8_t *p = m->f[0].p + HZC__OFF_CORR;
  return (int64_t)((uint64_t)hzshm__le32_get(p) | (uint64_t)hzshm__le32_get(p + 4) << 32);
}
int hzc__msg_is_event(const hzc__msg_t *m) { return (m->f[0].flags & HZC__F_EVENT) != 0; }

/* Turns an arena + frame records into a message (takes the arena). */
static int frame_to_msg(hzc__wr_t *mem, hzc__wr_t *fr, hzc__msg_t *out) {
  size_t n = fr->len / sizeof(frec_t);
  memset(out, 0, sizeof *out);
  out->f = calloc(n ? n : 1, sizeof *out->f);
  if (!out->f) return -ENOMEM;
  static const uint8_t empty[1];
  /* The arena no longer grows, so pointers into it stay valid. */
  for (size_t i = 0; i < n; i++) {
    frec_t r;
    memcpy(&r, fr->p + i * sizeof r, sizeof r);
    out->f[i].flags = r.flags;
    out->f[i].len = r.len;
    out->f[i].p = mem->p ? mem->p + r.off : empty;
  }
  out->mem = mem->p;
  out->n = n;
  out->bytes = mem->len;
  hzc__wr_init(mem);
  hzc__wr_free(fr);
  return hzc__msg_check_initial(out);
}

static void frame_add(hzc__wr_t *mem, hzc__wr_t *fr, uint16_t flags, const uint8_t *p, uint32_t len) {
  frec_t r = {.flags = flags, .len = len, .off = mem->len};
  hzc__wr_bytes(mem, p, len);
  hzc__wr_bytes(fr, &r, sizeof r);
}

void hzc__fdec_init(hzc__fdec_t *d, size_t max_message) {
  memset(d, 0, sizeof *d);
  d->max_message = max_message ? max_message : (size_t)256 << 20;
  d->max_frames = 1u << 22;
}

void hzc__fdec_free(hzc__fdec_t *d) {
  hzc__wr_free(&d->in);
  hzc__wr_free(&d->unit_mem);
  hzc__wr_free(&d->unit_fr);
  for (size_t i = 0; i < d->nfrags; i++) {
    hzc__wr_free(&d->frags[i].mem);
    hzc__wr_free(&d->frags[i].fr);
  }
  free(d->frags);
  memset(d, 0, sizeof *d);
}

static int fdec_deliver(hzc__wr_t *mem, hzc__wr_t *fr, hzc__msg_cb cb, void *ud) {
  hzc__msg_t m;
  int rc = frame_to_msg(mem, fr, &m);
  if (rc == 0) rc = cb(ud, &m);
  hzc__msg_free(&m);
  return rc;
}

/* A unit (frames up to IS_FINAL) is complete: a whole message or a fragment. */
static int fdec_unit(hzc__fdec_t *d, hzc__msg_cb cb, void *ud) {
  int rc = 0;
  size_t n = d->unit_fr.len / sizeof(frec_t);
  frec_t r0;
  memcpy(&r0, d->unit_fr.p, sizeof r0);
  if ((r0.flags & HZC__F_UNFRAGMENTED) == HZC__F_UNFRAGMENTED) {
    rc = fdec_deliver(&d->unit_mem, &d->unit_fr, cb, ud);
    goto out;
  }
  /* Fragment: first frame = int64 fragmentation id. */
  if (r0.len != 8) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  int64_t id;
  hzc__rd_t rd;
  hzc__rd_init(&rd, d->unit_mem.p + r0.off, 8);
  (void)hzc__rd_i64le(&rd, &id);
  size_t k = 0;
  while (k < d->nfrags && d->frags[k].id != id) k++;
  if (r0.flags & HZC__F_BEGIN_FRAGMENT) {
    if (k < d->nfrags || d->nfrags >= MAX_FRAGS || n < 2) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    hzc__frag_t *nf = realloc(d->frags, (d->nfrags + 1) * sizeof *nf);
    if (!nf) {
      rc = -ENOMEM;
      goto out;
    }
    d->frags = nf;
    memset(&d->frags[k], 0, sizeof d->frags[k]);
    d->frags[k].id = id;
    d->nfrags++;
  } else if (k == d->nfrags) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  hzc__frag_t *f = &d->frags[k];
  if (f->mem.len + d->unit_mem.len > d->max_message ||
      f->fr.len / sizeof(frec_t) + n > d->max_frames) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  for (size_t i = 1; i < n; i++) {
    frec_t r;
    memcpy(&r, d->unit_fr.p + i * sizeof r, sizeof r);
    frame_add(&f->mem, &f->fr, r.flags, d->unit_mem.p + r.off, r.len);
  }
  if (f->mem.err || f->fr.err) {
    rc = -ENOMEM;
    goto out;
  }
  if (r0.flags & HZC__F_END_FRAGMENT) {
    hzc__frag_t done = *f;
    d->frags[k] = d->frags[--d->nfrags];
    rc = fdec_deliver(&done.mem, &done.fr, cb, ud);
    hzc__wr_free(&done.mem);
    hzc__wr_free(&done.fr);
  }
out:
  d->unit_mem.len = 0;
  d->unit_fr.len = 0;
  return rc;
}

int hzc__fdec_feed(hzc__fdec_t *d, const void *bytes, size_t len, hzc__msg_cb cb, void *ud) {
  int rc = 0;
  if (d->in_off > 0) { /* compact: keep only the unparsed tail */
    memmove(d->in.p, d->in.p + d->in_off, d->in.len - d->in_off);
    d->in.len -= d->in_off;
    d->in_off = 0;
  }
  hzc__wr_bytes(&d->in, bytes, len);
  if (d->in.err) return -ENOMEM;
  while (d->in.len - d->in_off >= HZC__FRAME_HDR) {
    const uint8_t *p = d->in.p + d->in_off;
    uint32_t flen = hzshm__le32_get(p);
    if (flen < HZC__FRAME_HDR || flen - HZC__FRAME_HDR > d->max_message) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    if (d->in.len - d->in_off < flen) break;
    uint16_t flags = hzshm__le16_get(p + 4);
    if (d->unit_mem.len + (flen - HZC__FRAME_HDR) > d->max_message + 8 ||
        d->unit_fr.len / sizeof(frec_t) >= d->max_frames) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    frame_add(&d->unit_mem, &d->unit_fr, flags, p + HZC__FRAME_HDR, flen - HZC__FRAME_HDR);
    if (d->unit_mem.err || d->unit_fr.err) {
      rc = -ENOMEM;
      goto out;
    }
    d->in_off += flen;
    if (flags & HZC__F_FINAL) {
      rc = fdec_unit(d, cb, ud);
      if (rc) goto out;
    }
  }
out:
  return rc;
}

int hzc__msg_parse(const void *bytes, size_t len, hzc__msg_t *out) {
  hzc__wr_t mem, fr;
  hzc__wr_init(&mem);
  hzc__wr_init(&fr);
  memset(out, 0, sizeof *out);
  const uint8_t *p = bytes;
  size_t off = 0;
  int rc = HZSHM_EPROTO, final = 0;
  while (off < len && !final) {
    if (len - off < HZC__FRAME_HDR) goto out;
    uint32_t flen = hzshm__le32_get(p + off);
    if (flen < HZC__FRAME_HDR || flen > len - off) goto out;
    uint16_t flags = hzshm__le16_get(p + off + 4);
    frame_add(&mem, &fr, flags, p + off + HZC__FRAME_HDR, flen - HZC__FRAME_HDR);
    final = (flags & HZC__F_FINAL) != 0;
    off += flen;
  }
  if (!final || off != len) goto out;
  if (mem.err || fr.err) {
    rc = -ENOMEM;
    goto out;
  }
  rc = frame_to_msg(&mem, &fr, out);
  if (rc) hzc__msg_free(out);
out:
  hzc__wr_free(&mem);
  hzc__wr_free(&fr);
  return rc;
}

/* ---- cursor ---- */

int hzc__cur_next(hzc__cur_t *c, const hzc__frame_t **out) {
  if (c->i >= c->m->n) return HZSHM_EPROTO;
  *out = &c->m->f[c->i++];
  return 0;
}

int hzc__cur_null(hzc__cur_t *c) {
  if (c->i >= c->m->n) return HZSHM_EPROTO;
  if (c->m->f[c->i].flags & HZC__F_NULL) {
    c->i++;
    return 1;
  }
  return 0;
}

int hzc__cur_begin(hzc__cur_t *c) {
  if (c->i >= c->m->n || !(c->m->f[c->i].flags & HZC__F_BEGIN_DS)) return HZSHM_EPROTO;
  c->i++;
  return 0;
}

int hzc__cur_end(hzc__cur_t *c) {
  if (c->i >= c->m->n) return HZSHM_EPROTO;
  if (c->m->f[c->i].flags & HZC__F_END_DS) {
    c->i++;
    return 1;
  }
  return 0;
}

int hzc__cur_list(hzc__cur_t *c, int (*check)(const hzc__frame_t *f), size_t *first, size_t *n) {
  int rc;
  if ((rc = hzc__cur_begin(c))) return rc;
  *first = c->i;
  *n = 0;
  for (;;) {
    if ((rc = hzc__cur_end(c)) < 0) return rc;
    if (rc == 1) return 0;
    const hzc__frame_t *f;
    if ((rc = hzc__cur_next(c, &f)) || (rc = check(f))) return rc;
    ++*n;
  }
}

int hzc__cur_skip_struct(hzc__cur_t *c) {
  size_t depth = 1;
  while (c->i < c->m->n) {
    uint16_t fl = c->m->f[c->i++].flags;
    if (fl & HZC__F_BEGIN_DS) depth++;
    else if (fl & HZC__F_END_DS) {
      if (--depth == 0) return 0;
    }
  }
  return HZSHM_EPROTO;
}

/* ---- builder ---- */

static void mb_close(hzc__mb_t *b) {
  if (!b->open || b->w.err) return;
  hzshm__le32_put(b->w.p + b->cur, (uint32_t)(b->w.len - b->cur));
  b->open = 0;
}

void hzc__mb_open(hzc__mb_t *b, uint16_t flags) {
  mb_close(b);
  b->cur = b->w.len;
  uint8_t *h = hzc__wr_reserve(&b->w, HZC__FRAME_HDR);
  if (!h) return;
  hzshm__le32_put(h, 0);
  hzshm__le16_put(h + 4, flags);
  b->open = 1;
}

static void mb_initial(hzc__mb_t *b, uint16_t flags, int32_t type, int64_t corr) {
  hzc__wr_init(&b->w);
  b->open = 0;
  hzc__mb_open(b, flags);
  hzc__wr_i32le(&b->w, type);
  hzc__wr_i64le(&b->w, corr);
}

void hzc__mb_request(hzc__mb_t *b, int32_t type, int32_t pid) {
  mb_initial(b, HZC__F_UNFRAGMENTED, type, 0);
  hzc__wr_i32le(&b->w, pid);
}

void hzc__mb_response(hzc__mb_t *b, int32_t type, int64_t corr, uint8_t backups) {
  mb_initial(b, HZC__F_UNFRAGMENTED, type, corr);
  hzc__wr_u8(&b->w, backups);
}

void hzc__mb_event(hzc__mb_t *b, int32_t type, int64_t corr, int32_t pid) {
  mb_initial(b, HZC__F_UNFRAGMENTED | HZC__F_EVENT, type, corr);
  hzc__wr_i32le(&b->w, pid);
}

void hzc__mb_frame(hzc__mb_t *b, uint16_t flags, const void *p, size_t n) {
  hzc__mb_open(b, flags);
  hzc__wr_bytes(&b->w, p, n);
}

void hzc__mb_string(hzc__mb_t *b, const char *s) { hzc__mb_frame(b, 0, s, strlen(s)); }
void hzc__mb_null(hzc__mb_t *b) { hzc__mb_frame(b, HZC__F_NULL, NULL, 0); }
void hzc__mb_begin(hzc__mb_t *b) { hzc__mb_frame(b, HZC__F_BEGIN_DS, NULL, 0); }
void hzc__mb_end(hzc__mb_t *b) { hzc__mb_frame(b, HZC__F_END_DS, NULL, 0); }

int hzc__mb_finish(hzc__mb_t *b) {
  int was_open = b->open;
  mb_close(b);
  if (b->w.err) return b->w.err;
  if (!was_open && b->w.len == 0) return HZSHM_EINVAL;
  uint8_t *fl = b->w.p + b->cur + 4;
  hzshm__le16_put(fl, (uint16_t)(hzshm__le16_get(fl) | HZC__F_FINAL));
  return 0;
}

void hzc__mb_free(hzc__mb_t *b) { hzc__wr_free(&b->w); }

void hzc__msg_set_corr(uint8_t *msg, int64_t corr) {
  hzshm__le64_put(msg + HZC__FRAME_HDR + HZC__OFF_CORR, (uint64_t)corr);
}
void hzc__msg_set_pid(uint8_t *msg, int32_t pid) {
  hzshm__le32_put(msg + HZC__FRAME_HDR + HZC__OFF_PID, (uint32_t)pid);
}
