/* test_listen.c - hzc_test.h's listener fault injection, only in test builds
 * (hzclient_test). Loop thread only. */
#include "codec.h"
#include "hzc_test.h"
#include "listen_int.h"

static hzc__member_t *owner_of(const hzc_client_t *c, uint32_t p) {
  if (!c || !c->pmember || p >= c->partition_count || c->pmember[p] < 0) return NULL;
  return &c->members[c->pmember[p]];
}

int hzc_test_owner_uuid(const hzc_client_t *c, uint32_t p, hzc_uuid_t *out) {
  hzc__member_t *m = owner_of(c, p);
  if (m == NULL) return -1;
  *out = m->uuid;
  return 0;
}

int hzc_test_deregister_on_owner(hzc_client_t *c, hzc_listener_t *l, uint32_t p) {
  hzc__member_t *m = owner_of(c, p);
  if (m == NULL || m->conn == NULL || l == NULL || l->kind != HZC__L_INV) return 0;
  for (hzc__reg_t *r = l->regs; r; r = r->next) {
    if (r->conn != m->conn || !r->acked) continue;
    hzc__mb_t b;
    hzc__enc_remove_entry_listener(&b, l->map, &r->id);
    hzc__call_t *k = hzc__call_new(c, &b, -1, 1, NULL);
    if (k == NULL) return 0;
    k->pin = r->conn;
    return hzc__call_submit(c, k) == 0;
  }
  return 0;
}
