/* fuzz_hz.c - libFuzzer target over the client's wire decoding: the bytes
 * are fed to the frame stream decoder (split at a position taken from the
 * input, to exercise partial frames and fragment reassembly), and every
 * message it yields is given to every codec decoder. Any crash, leak,
 * overrun or UB is a bug; decoders may only return 0 or HZSHM_EPROTO. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "data.h"
#include "frame.h"

static int cb_part(void *ud, const hzc_uuid_t *o, int32_t p) { return 0; }
static int cb_inv(void *ud, const hzc__inv_t *inv) {
  hzc_value_t v;
  if (inv->key) (void)hzc__data_decode(inv->key, inv->klen, &v);
  return 0;
}
static int cb_seq(void *ud, const char *map, int32_t p, int64_t s) { return (int)strlen(map) < 0; }
static int cb_uuid(void *ud, int32_t p, const hzc_uuid_t *u) { return 0; }
static int cb_entry(void *ud, const hzc_value_t *k, const hzc_value_t *v) { return 0; }

#define OK(rc) do { int r_ = (rc); if (r_ != 0 && r_ != HZSHM_EPROTO) abort(); } while (0)

static int on_msg(void *ud, hzc__msg_t *m) {
  hzc__auth_resp_t ar;
  int32_t v, code;
  char a[64], b[64];
  hzc__member_info_t *mi;
  size_t n;
  hzc_uuid_t u;
  hzc_value_t val;
  int bo, pr;
  OK(hzc__dec_auth(m, &ar));
  OK(hzc__dec_error(m, &code, a, sizeof a, b, sizeof b));
  if (hzc__dec_members_view(m, &v, &mi, &n) == 0) free(mi);
  OK(hzc__dec_partitions_view(m, &v, cb_part, NULL));
  (void)hzc__dec_invalidation(m, cb_inv, NULL);
  OK(hzc__dec_fetch_meta(m, cb_seq, cb_uuid, NULL));
  OK(hzc__dec_get_all(m, cb_entry, NULL));
  OK(hzc__dec_obj_event(m, &u, a, sizeof a, b, sizeof b, &bo));
  OK(hzc__dec_resp_data(m, &val));
  OK(hzc__dec_resp_bool(m, &bo, &pr));
  OK(hzc__dec_resp_i32(m, &v));
  OK(hzc__dec_resp_uuid(m, &u));
  (void)hzc__msg_type(m);
  (void)hzc__msg_corr(m);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hzc__fdec_t d;
  size_t split = size ? data[0] % (size + 1) : 0;
  hzc__fdec_init(&d, 1 << 20);
  int rc = hzc__fdec_feed(&d, data, split, on_msg, NULL);
  if (rc == 0) rc = hzc__fdec_feed(&d, data + split, size - split, on_msg, NULL);
  if (rc != 0 && rc != HZSHM_EPROTO) abort();
  hzc__fdec_free(&d);
  /* the same bytes as one message */
  hzc__msg_t m;
  if (hzc__msg_parse(data, size, &m) == 0) {
    on_msg(NULL, &m);
    hzc__msg_free(&m);
  }
  return 0;
}
