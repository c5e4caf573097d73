/* codec_client.c - Client service messages (Client.yaml, custom/Custom.yaml):
 * Authentication, AddClusterViewListener and its events, Ping,
 * CreateProxy/DestroyProxy, distributed-object listener, error responses. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "codec.h"
#include "data.h"

static int fixed(const hzc__frame_t *f, size_t need, hzc__rd_t *r) {
  if (f->len < need) return HZSHM_EPROTO;
  hzc__rd_init(r, f->p, f->len);
  return 0;
}

int hzc__dec_string(hzc__cur_t *c, char *buf, size_t cap) {
  const hzc__frame_t *f;
  int rc = hzc__cur_next(c, &f);
  if (rc) return rc;
  if (f->flags & (HZC__F_NULL | HZC__F_BEGIN_DS | HZC__F_END_DS)) return HZSHM_EPROTO;
  if (f->len >= cap) return HZSHM_EPROTO;
  memcpy(buf, f->p, f->len);
  buf[f->len] = 0;
  return 0;
}

/* Address (Custom.yaml Address): begin, fixed {port int32}, host String, end. */
static int dec_address(hzc__cur_t *c, char *host, size_t hcap, int32_t *port) {
  const hzc__frame_t *f;
  hzc__rd_t r;
  int rc;
  if ((rc = hzc__cur_begin(c)) || (rc = hzc__cur_next(c, &f)) || (rc = fixed(f, 4, &r)) ||
      (rc = hzc__rd_i32le(&r, port)) || (rc = hzc__dec_string(c, host, hcap)))
    return rc;
  return hzc__cur_skip_struct(c);
}

/* Client.yaml Authentication 0x000100 (2.8 layout: routingMode, cpDirectToLeaderRouting). */
void hzc__enc_auth(hzc__mb_t *b, const char *cluster, const hzc_uuid_t *uuid, const char *client_name) {
  hzc__mb_request(b, HZC__MT_AUTH, -1);
  hzc__wr_uuid(&b->w, uuid);
  hzc__wr_u8(&b->w, 1); /* serializationVersion */
  hzc__wr_u8(&b->w, 1); /* routingMode: ALL_MEMBERS (smart) */
  hzc__wr_u8(&b->w, 0); /* cpDirectToLeaderRouting */
  hzc__mb_string(b, cluster);
  hzc__mb_null(b); /* username: null on open-source members */
  hzc__mb_null(b); /* password */
  hzc__mb_string(b, "CPP"); /* clientType: a known 3-letter code; member only records it */
  hzc__mb_string(b, "5.5.0");
  hzc__mb_string(b, client_name);
  hzc__mb_begin(b); /* labels: empty List_String */
  hzc__mb_end(b);
}

int hzc__dec_auth(const hzc__msg_t *m, hzc__auth_resp_t *o) {
  hzc__rd_t r;
  hzc__cur_t c;
  int rc;
  memset(o, 0, sizeof *o);
  if ((rc = fixed(&m->f[0], 54, &r)) || (rc = hzc__rd_skip(&r, HZC__RESP_FIXED)) ||
      (rc = hzc__rd_u8(&r, &o->status)) || (rc = hzc__rd_uuid(&r, &o->member, NULL)) ||
      (rc = hzc__rd_u8(&r, &o->serialization_version)) || (rc = hzc__rd_i32le(&r, &o->partition_count)) ||
      (rc = hzc__rd_uuid(&r, &o->cluster_id, NULL)))
    return rc;
  uint8_t fo;
  if ((rc = hzc__rd_u8(&r, &fo))) return rc;
  o->failover_supported = fo != 0;
  if (hzc__rd_left(&r) >= 8) {
    o->has_versions = 1;
    (void)hzc__rd_i32le(&r, &o->member_list_version);
    (void)hzc__rd_i32le(&r, &o->partition_list_version);
  }
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_null(&c)) < 0) return rc;
  if (rc == 0 && (rc = dec_address(&c, o->host, sizeof o->host, &o->port))) return rc;
  if ((rc = hzc__dec_string(&c, o->server_version, sizeof o->server_version))) return rc;
  if (o->status == 0 && (o->partition_count <= 0 || o->partition_count > (1 << 20))) return HZSHM_EPROTO;
  o->trailing_frames = m->n - c.i;
  return 0; /* 2.7/2.8 trailing frames (tpc, memberInfos, partitions, keyValuePairs) are ignored */
}

/* ErrorHolder (Custom.yaml): begin, fixed {errorCode int32}, className String,
 * message String(N), stackTraceElements List, end - inside a List_ErrorHolder. */
int hzc__dec_error(const hzc__msg_t *m, int32_t *code, char *cls, size_t clen, char *msg, size_t mlen) {
  hzc__cur_t c;
  const hzc__frame_t *f;
  hzc__rd_t r;
  int rc;
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_begin(&c)) || (rc = hzc__cur_begin(&c)) || (rc = hzc__cur_next(&c, &f)) ||
      (rc = fixed(f, 4, &r)) || (rc = hzc__rd_i32le(&r, code)))
    return rc;
  if ((rc = hzc__cur_next(&c, &f))) return rc;
  if (f->flags & (HZC__F_NULL | HZC__F_BEGIN_DS | HZC__F_END_DS)) return HZSHM_EPROTO;
  size_t n = f->len < clen - 1 ? f->len : clen - 1;
  memcpy(cls, f->p, n);
  cls[n] = 0;
  if ((rc = hzc__cur_null(&c)) < 0) return rc;
  msg[0] = 0;
  if (rc == 0) {
    if ((rc = hzc__cur_next(&c, &f))) return rc;
    if (f->flags & (HZC__F_BEGIN_DS | HZC__F_END_DS)) return HZSHM_EPROTO;
    n = f->len < mlen - 1 ? f->len : mlen - 1;
    memcpy(msg, f->p, n);
    msg[n] = 0;
  }
  return hzc__cur_skip_struct(&c);
}

/* Client.yaml AddClusterViewListener 0x000300: no parameters. */
void hzc__enc_view(hzc__mb_t *b) { hzc__mb_request(b, HZC__MT_VIEW, -1); }

/* MembersView event 0x000302: fixed version @16; List_MemberInfo. MemberInfo
 * (Custom.yaml): begin, fixed {uuid UUID, liteMember bool}, address Address,
 * attributes, version, addressMap..., end. */
int hzc__dec_members_view(const hzc__msg_t *m, int32_t *version, hzc__member_info_t **out, size_t *n) {
  hzc__rd_t r;
  hzc__cur_t c;
  hzc__member_info_t *v = NULL;
  size_t cnt = 0, cap = 0;
  int rc;
  *out = NULL;
  *n = 0;
  if ((rc = fixed(&m->f[0], 20, &r)) || (rc = hzc__rd_skip(&r, 16)) || (rc = hzc__rd_i32le(&r, version)))
    goto fail;
  hzc__cur_init(&c, m);
  if ((rc = hzc__cur_begin(&c))) goto fail;
  for (;;) {
    if ((rc = hzc__cur_end(&c)) < 0) goto fail;
    if (rc == 1) break;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 8;
      if (cap > 4096) {
        rc = HZSHM_EPROTO;
        goto fail;
      }
      hzc__member_info_t *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        rc = -ENOMEM;
        goto fail;
      }
      v = nv;
    }
    hzc__member_info_t *mi = &v[cnt];
    memset(mi, 0, sizeof *mi);
    const hzc__frame_t *f;
    uint8_t lite;
    if ((rc = hzc__cur_begin(&c)) || (rc = hzc__cur_next(&c, &f)) || (rc = fixed(f, 18, &r)) ||
        (rc = hzc__rd_uuid(&r, &mi->uuid, NULL)) || (rc = hzc__rd_u8(&r, &lite)) ||
        (rc = dec_address(&c, mi->host, sizeof mi->host, &mi->port)) || (rc = hzc__cur_skip_struct(&c)))
      goto fail;
    mi->lite = lite != 0;
    cnt++;
  }
  *out = v;
  *n = cnt;
  return 0;
fail:
  free(v);
  return rc;
}

/* One List_Integer frame of the PartitionsView entry list. */
static int int_list_frame(const hzc__frame_t *f) {
  return (f->flags & (HZC__F_BEGIN_DS | HZC__F_NULL)) || f->len % 4 ? HZSHM_EPROTO : 0;
}

/* PartitionsView event 0x000303: fixed version @16; EntryList_UUID_List_Integer
 * = begin, List_Integer per entry, end, then List_UUID with the keys. */
int hzc__dec_partitions_view(const hzc__msg_t *m, int32_t *version, hzc__part_cb cb, void *ud) {
  hzc__rd_t r;
  hzc__cur_t c;
  int rc;
  if ((rc = fixed(&m->f[0], 20, &r)) || (rc = hzc__rd_skip(&r, 16)) || (rc = hzc__rd_i32le(&r, version)))
    return rc;
  hzc__cur_init(&c, m);
  size_t first, k;
  if ((rc = hzc__cur_list(&c, int_list_frame, &first, &k))) return rc;
  const hzc__frame_t *uf;
  if ((rc = hzc__cur_next(&c, &uf))) return rc;
  if (uf->len != k * 17) return HZSHM_EPROTO;
  for (size_t i = 0; i < k; i++) {
    hzc__rd_t ur;
    hzc_uuid_t owner;
    hzc__rd_init(&ur, uf->p + i * 17, 17);
    (void)hzc__rd_uuid(&ur, &owner, NULL);
    const hzc__frame_t *lf = &m->f[first + i];
    for (size_t j = 0; j < lf->len / 4; j++) {
      rc = cb(ud, &owner, (int32_t)hzshm__le32_get(lf->p + 4 * j));
      if (rc) return rc;
    }
  }
  return 0;
}

/* Client.yaml Ping 0x000B00 / TriggerPartitionAssignment 0x001000: no parameters. */
void hzc__enc_ping(hzc__mb_t *b) { hzc__mb_request(b, HZC__MT_PING, -1); }
void hzc__enc_trigger_partitions(hzc__mb_t *b) { hzc__mb_request(b, HZC__MT_TRIGGER_PARTITIONS, -1); }

/* Client.yaml CreateProxy 0x000400 / DestroyProxy 0x000500: name, serviceName. */
void hzc__enc_proxy(hzc__mb_t *b, int32_t type, const char *name, const char *service) {
  hzc__mb_request(b, type, -1);
  hzc__mb_string(b, name);
  hzc__mb_string(b, service);
}

/* Client.yaml AddDistributedObjectListener 0x000900: localOnly bool @16. */
void hzc__enc_add_obj_listener(hzc__mb_t *b, int local_only) {
  hzc__mb_request(b, HZC__MT_ADD_OBJ_LISTENER, -1);
  hzc__wr_u8(&b->w, local_only ? 1 : 0);
}

/* Client.yaml RemoveDistributedObjectListener 0x000A00: registrationId UUID @16. */
void hzc__enc_remove_obj_listener(hzc__mb_t *b, const hzc_uuid_t *reg) {
  hzc__mb_request(b, HZC__MT_REMOVE_OBJ_LISTENER, -1);
  hzc__wr_uuid(&b->w, reg);
}

/* DistributedObject event 0x000902: source UUID @16; name, serviceName, eventType. */
int hzc__dec_obj_event(const hzc__msg_t *m, hzc_uuid_t *source, char *name, size_t nlen, char *service,
                         size_t slen, int *destroyed) {
  hzc__rd_t r;
  hzc__cur_t c;
  char type[32];
  int rc;
  if ((rc = fixed(&m->f[0], 33, &r)) || (rc = hzc__rd_skip(&r, 16)) ||
      (rc = hzc__rd_uuid(&r, source, NULL)))
    return rc;
  hzc__cur_init(&c, m);
  if ((rc = hzc__dec_string(&c, name, nlen)) || (rc = hzc__dec_string(&c, service, slen)) ||
      (rc = hzc__dec_string(&c, type, sizeof type)))
    return rc;
  if (strcmp(type, "DESTROYED") == 0) *destroyed = 1;
  else if (strcmp(type, "CREATED") == 0) *destroyed = 0;
  else return HZSHM_EPROTO;
  return 0;
}

int hzc__dec_resp_uuid(const hzc__msg_t *m, hzc_uuid_t *u) {
  hzc__rd_t r;
  int rc;
  if ((rc = fixed(&m->f[0], 30, &r)) || (rc = hzc__rd_skip(&r, HZC__RESP_FIXED))) return rc;
  return hzc__rd_uuid(&r, u, NULL);
}

int hzc__dec_resp_bool(const hzc__msg_t *m, int *v, int *present) {
  *v = 0;
  if (m->f[0].len < 14) {
    if (present) {
      *present = 0;
      return 0;
    }
    return HZSHM_EPROTO;
  }
  if (present) *present = 1;
  *v = m->f[0].p[13] != 0;
  return 0;
}

int hzc__dec_resp_i32(const hzc__msg_t *m, int32_t *v) {
  hzc__rd_t r;
  int rc;
  if ((rc = fixed(&m->f[0], 17, &r)) || (rc = hzc__rd_skip(&r, HZC__RESP_FIXED))) return rc;
  return hzc__rd_i32le(&r, v);
}
