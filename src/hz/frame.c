/* frame.c - frame stream decoder with fragment reassembly, frame cursor and
 * message builder (see frame.h; hazelcast-client-protocol.md §1.2-1.6, which
 * restates ClientMessage.java / ClientMessageReader.java / ClientMessageSplitter.java).
 *
 * Bounds: a frame length below 6 or a message above max_message content
 * bytes or max_frames frames is a protocol error; at most HZSHM__MAX_FRAGS
 * fragmented messages may be open at once. The decoder copies every frame's
 * content once into the arena of its message, so a 1 MiB value costs one
 * copy out of the read buffer.
 */
#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HZSHM__MAX_FRAGS 16

typedef struct {
  uint16_t flags;
  uint32_t len;
  size_t off;
} hzshm__frec_t;

struct hzshm__frag {
  int64_t id;
  hzshm__wr_t mem;
  hzshm__wr_t fr;
};

void hzshm__msg_free(hzshm__msg_t *m) {
  if (!m) return;
  free(m->f);
  free(m->mem);
  memset(m, 0, sizeof *m);
}

int hzshm__msg_check_initial(const hzshm__msg_t *m) {
  if (m->n == 0 || m->f[0].len < 12) return HZSHM_EPROTO;
  return 0;
}
int32_t hzshm__msg_type(const hzshm__msg_t *m) { return (int32_t)hzshm__ld_u32le(m->f[0].p); }
int64_t hzshm__msg_corr(const hzshm__msg_t *m) {
  const uint8_t *p = m->f[0].p + HZSHM__OFF_CORR;
  return (int64_t)((uint64_t)hzshm__ld_u32le(p) | (uint64_t)hzshm__ld_u32le(p + 4) << 32);
}
int hzshm__msg_is_event(const hzshm__msg_t *m) { return (m->f[0].flags & HZSHM__F_EVENT) != 0; }

/* Turns an arena + frame records into a message (takes the arena). */
static int hzshm__frame_to_msg(hzshm__wr_t *mem, hzshm__wr_t *fr, hzshm__msg_t *out) {
  size_t n = fr->len / sizeof(hzshm__frec_t);
  memset(out, 0, sizeof *out);
  out->f = calloc(n ? n : 1, sizeof *out->f);
  if (!out->f) return -ENOMEM;
  static const uint8_t empty[1];
  /* The arena no longer grows, so pointers into it stay valid. */
  for (size_t i = 0; i < n; i++) {
    hzshm__frec_t r;
    memcpy(&r, fr->p + i * sizeof r, sizeof r);
    out->f[i].flags = r.flags;
    out->f[i].len = r.len;
    out->f[i].p = mem->p ? mem->p + r.off : empty;
  }
  out->mem = mem->p;
  out->n = n;
  out->bytes = mem->len;
  hzshm__wr_init(mem);
  hzshm__wr_free(fr);
  return hzshm__msg_check_initial(out);
}

static void hzshm__frame_add(hzshm__wr_t *mem, hzshm__wr_t *fr, uint16_t flags, const uint8_t *p, uint32_t len) {
  hzshm__frec_t r = {.flags = flags, .len = len, .off = mem->len};
  hzshm__wr_bytes(mem, p, len);
  hzshm__wr_bytes(fr, &r, sizeof r);
}

void hzshm__fdec_init(hzshm__fdec_t *d, size_t max_message) {
  memset(d, 0, sizeof *d);
  d->max_message = max_message ? max_message : (size_t)256 << 20;
  d->max_frames = 1u << 22;
}

void hzshm__fdec_free(hzshm__fdec_t *d) {
  hzshm__wr_free(&d->in);
  hzshm__wr_free(&d->unit_mem);
  hzshm__wr_free(&d->unit_fr);
  for (size_t i = 0; i < d->nfrags; i++) {
    hzshm__wr_free(&d->frags[i].mem);
    hzshm__wr_free(&d->frags[i].fr);
  }
  free(d->frags);
  memset(d, 0, sizeof *d);
}

static int hzshm__fdec_deliver(hzshm__wr_t *mem, hzshm__wr_t *fr, hzshm__msg_cb cb, void *ud) {
  hzshm__msg_t m;
  int rc = hzshm__frame_to_msg(mem, fr, &m);
  if (rc == 0) rc = cb(ud, &m);
  hzshm__msg_free(&m);
  return rc;
}

/* A unit (frames up to IS_FINAL) is complete: a whole message or a fragment. */
static int hzshm__fdec_unit(hzshm__fdec_t *d, hzshm__msg_cb cb, void *ud) {
  int rc = 0;
  size_t n = d->unit_fr.len / sizeof(hzshm__frec_t);
  hzshm__frec_t r0;
  memcpy(&r0, d->unit_fr.p, sizeof r0);
  if ((r0.flags & HZSHM__F_UNFRAGMENTED) == HZSHM__F_UNFRAGMENTED) {
    rc = hzshm__fdec_deliver(&d->unit_mem, &d->unit_fr, cb, ud);
    goto out;
  }
  /* Fragment: first frame = int64 fragmentation id. */
  if (r0.len != 8) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  int64_t id;
  hzshm__rd_t rd;
  hzshm__rd_init(&rd, d->unit_mem.p + r0.off, 8);
  (void)hzshm__rd_i64le(&rd, &id);
  size_t k = 0;
  while (k < d->nfrags && d->frags[k].id != id) k++;
  if (r0.flags & HZSHM__F_BEGIN_FRAGMENT) {
    if (k < d->nfrags || d->nfrags >= HZSHM__MAX_FRAGS || n < 2) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    hzshm__frag_t *nf = realloc(d->frags, (d->nfrags + 1) * sizeof *nf);
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
  hzshm__frag_t *f = &d->frags[k];
  if (f->mem.len + d->unit_mem.len > d->max_message ||
      f->fr.len / sizeof(hzshm__frec_t) + n > d->max_frames) {
    rc = HZSHM_EPROTO;
    goto out;
  }
  for (size_t i = 1; i < n; i++) {
    hzshm__frec_t r;
    memcpy(&r, d->unit_fr.p + i * sizeof r, sizeof r);
    hzshm__frame_add(&f->mem, &f->fr, r.flags, d->unit_mem.p + r.off, r.len);
  }
  if (f->mem.err || f->fr.err) {
    rc = -ENOMEM;
    goto out;
  }
  if (r0.flags & HZSHM__F_END_FRAGMENT) {
    hzshm__frag_t done = *f;
    d->frags[k] = d->frags[--d->nfrags];
    rc = hzshm__fdec_deliver(&done.mem, &done.fr, cb, ud);
    hzshm__wr_free(&done.mem);
    hzshm__wr_free(&done.fr);
  }
out:
  d->unit_mem.len = 0;
  d->unit_fr.len = 0;
  return rc;
}

int hzshm__fdec_feed(hzshm__fdec_t *d, const void *bytes, size_t len, hzshm__msg_cb cb, void *ud) {
  int rc = 0;
  if (d->in_off > 0) { /* compact: keep only the unparsed tail */
    memmove(d->in.p, d->in.p + d->in_off, d->in.len - d->in_off);
    d->in.len -= d->in_off;
    d->in_off = 0;
  }
  hzshm__wr_bytes(&d->in, bytes, len);
  if (d->in.err) return -ENOMEM;
  while (d->in.len - d->in_off >= HZSHM__FRAME_HDR) {
    const uint8_t *p = d->in.p + d->in_off;
    uint32_t flen = hzshm__ld_u32le(p);
    if (flen < HZSHM__FRAME_HDR || flen - HZSHM__FRAME_HDR > d->max_message) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    if (d->in.len - d->in_off < flen) break;
    uint16_t flags = hzshm__ld_u16le(p + 4);
    if (d->unit_mem.len + (flen - HZSHM__FRAME_HDR) > d->max_message + 8 ||
        d->unit_fr.len / sizeof(hzshm__frec_t) >= d->max_frames) {
      rc = HZSHM_EPROTO;
      goto out;
    }
    hzshm__frame_add(&d->unit_mem, &d->unit_fr, flags, p + HZSHM__FRAME_HDR, flen - HZSHM__FRAME_HDR);
    if (d->unit_mem.err || d->unit_fr.err) {
      rc = -ENOMEM;
      goto out;
    }
    d->in_off += flen;
    if (flags & HZSHM__F_FINAL) {
      rc = hzshm__fdec_unit(d, cb, ud);
      if (rc) goto out;
    }
  }
out:
  return rc;
}

int hzshm__msg_parse(const void *bytes, size_t len, hzshm__msg_t *out) {
  hzshm__wr_t mem, fr;
  hzshm__wr_init(&mem);
  hzshm__wr_init(&fr);
  memset(out, 0, sizeof *out);
  const uint8_t *p = bytes;
  size_t off = 0;
  int rc = HZSHM_EPROTO, final = 0;
  while (off < len && !final) {
    if (len - off < HZSHM__FRAME_HDR) goto out;
    uint32_t flen = hzshm__ld_u32le(p + off);
    if (flen < HZSHM__FRAME_HDR || flen > len - off) goto out;
    uint16_t flags = hzshm__ld_u16le(p + off + 4);
    hzshm__frame_add(&mem, &fr, flags, p + off + HZSHM__FRAME_HDR, flen - HZSHM__FRAME_HDR);
    final = (flags & HZSHM__F_FINAL) != 0;
    off += flen;
  }
  if (!final || off != len) goto out;
  if (mem.err || fr.err) {
    rc = -ENOMEM;
    goto out;
  }
  rc = hzshm__frame_to_msg(&mem, &fr, out);
  if (rc) hzshm__msg_free(out);
out:
  hzshm__wr_free(&mem);
  hzshm__wr_free(&fr);
  return rc;
}

/* ---- cursor ---- */

int hzshm__cur_next(hzshm__cur_t *c, const hzshm__frame_t **out) {
  if (c->i >= c->m->n) return HZSHM_EPROTO;
  *out = &c->m->f[c->i++];
  return 0;
}

int hzshm__cur_null(hzshm__cur_t *c) {
  if (c->i >= c->m->n) return HZSHM_EPROTO;
  if (c->m->f[c->i].flags & HZSHM__F_NULL) {
    c->i++;
    return 1;
  }
  return 0;
}

int hzshm__cur_begin(hzshm__cur_t *c) {
  if (c->i >= c->m->n || !(c->m->f[c->i].flags & HZSHM__F_BEGIN_DS)) return HZSHM_EPROTO;
  c->i++;
  return 0;
}

int hzshm__cur_end(hzshm__cur_t *c) {
  if (c->i >= c->m->n) return HZSHM_EPROTO;
  if (c->m->f[c->i].flags & HZSHM__F_END_DS) {
    c->i++;
    return 1;
  }
  return 0;
}

int hzshm__cur_list(hzshm__cur_t *c, int (*check)(const hzshm__frame_t *f), size_t *first, size_t *n) {
  int rc;
  if ((rc = hzshm__cur_begin(c))) return rc;
  *first = c->i;
  *n = 0;
  for (;;) {
    if ((rc = hzshm__cur_end(c)) < 0) return rc;
    if (rc == 1) return 0;
    const hzshm__frame_t *f;
    if ((rc = hzshm__cur_next(c, &f)) || (rc = check(f))) return rc;
    ++*n;
  }
}

int hzshm__cur_skip_struct(hzshm__cur_t *c) {
  size_t depth = 1;
  while (c->i < c->m->n) {
    uint16_t fl = c->m->f[c->i++].flags;
    if (fl & HZSHM__F_BEGIN_DS) depth++;
    else if (fl & HZSHM__F_END_DS) {
      if (--depth == 0) return 0;
    }
  }
  return HZSHM_EPROTO;
}

/* ---- builder ---- */

static void hzshm__mb_close(hzshm__mb_t *b) {
  if (!b->open || b->w.err) return;
  hzshm__st_u32le(b->w.p + b->cur, (uint32_t)(b->w.len - b->cur));
  b->open = 0;
}

void hzshm__mb_open(hzshm__mb_t *b, uint16_t flags) {
  hzshm__mb_close(b);
  b->cur = b->w.len;
  uint8_t *h = hzshm__wr_reserve(&b->w, HZSHM__FRAME_HDR);
  if (!h) return;
  hzshm__st_u32le(h, 0);
  hzshm__st_u16le(h + 4, flags);
  b->open = 1;
}

static void hzshm__mb_initial(hzshm__mb_t *b, uint16_t flags, int32_t type, int64_t corr) {
  hzshm__wr_init(&b->w);
  b->open = 0;
  hzshm__mb_open(b, flags);
  hzshm__wr_i32le(&b->w, type);
  hzshm__wr_i64le(&b->w, corr);
}

void hzshm__mb_request(hzshm__mb_t *b, int32_t type, int32_t pid) {
  hzshm__mb_initial(b, HZSHM__F_UNFRAGMENTED, type, 0);
  hzshm__wr_i32le(&b->w, pid);
}

void hzshm__mb_response(hzshm__mb_t *b, int32_t type, int64_t corr, uint8_t backups) {
  hzshm__mb_initial(b, HZSHM__F_UNFRAGMENTED, type, corr);
  hzshm__wr_u8(&b->w, backups);
}

void hzshm__mb_event(hzshm__mb_t *b, int32_t type, int64_t corr, int32_t pid) {
  hzshm__mb_initial(b, HZSHM__F_UNFRAGMENTED | HZSHM__F_EVENT, type, corr);
  hzshm__wr_i32le(&b->w, pid);
}

void hzshm__mb_frame(hzshm__mb_t *b, uint16_t flags, const void *p, size_t n) {
  hzshm__mb_open(b, flags);
  hzshm__wr_bytes(&b->w, p, n);
}

void hzshm__mb_string(hzshm__mb_t *b, const char *s) { hzshm__mb_frame(b, 0, s, strlen(s)); }
void hzshm__mb_null(hzshm__mb_t *b) { hzshm__mb_frame(b, HZSHM__F_NULL, NULL, 0); }
void hzshm__mb_begin(hzshm__mb_t *b) { hzshm__mb_frame(b, HZSHM__F_BEGIN_DS, NULL, 0); }
void hzshm__mb_end(hzshm__mb_t *b) { hzshm__mb_frame(b, HZSHM__F_END_DS, NULL, 0); }

int hzshm__mb_finish(hzshm__mb_t *b) {
  int was_open = b->open;
  hzshm__mb_close(b);
  if (b->w.err) return b->w.err;
  if (!was_open && b->w.len == 0) return HZSHM_EINVAL;
  uint8_t *fl = b->w.p + b->cur + 4;
  hzshm__st_u16le(fl, (uint16_t)(hzshm__ld_u16le(fl) | HZSHM__F_FINAL));
  return 0;
}

void hzshm__mb_free(hzshm__mb_t *b) { hzshm__wr_free(&b->w); }

void hzshm__msg_set_corr(uint8_t *msg, int64_t corr) {
  hzshm__st_u64le(msg + HZSHM__FRAME_HDR + HZSHM__OFF_CORR, (uint64_t)corr);
}
void hzshm__msg_set_pid(uint8_t *msg, int32_t pid) {
  hzshm__st_u32le(msg + HZSHM__FRAME_HDR + HZSHM__OFF_PID, (uint32_t)pid);
}
