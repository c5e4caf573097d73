/* gen_corpus.c - writes the fuzz seed corpus: one valid encoded message of
 * every kind the client decodes (auth response, views, invalidations,
 * metadata, getAll, error, object event, value responses) plus a fragmented
 * one. usage: gen_corpus DIR */
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "data.h"
#include "frame.h"

static const char *dir;
static int nfile;

static void emit(hzc__mb_t *b) {
  if (hzc__mb_finish(b) != 0) return;
  char path[512];
  snprintf(path, sizeof path, "%s/seed-%02d", dir, nfile++);
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(b->w.p, 1, b->w.len, f);
    fclose(f);
  }
  hzc__mb_free(b);
}

static void address(hzc__mb_t *b) {
  hzc__mb_begin(b);
  hzc__mb_open(b, 0);
  hzc__wr_i32le(&b->w, 5701);
  hzc__mb_string(b, "127.0.0.1");
  hzc__mb_end(b);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  dir = argv[1];
  hzc__mb_t b;
  hzc_uuid_t u;
  for (int i = 0; i < 16; i++) u.b[i] = (uint8_t)i;
  hzc__mb_response(&b, HZC__MT_AUTH + 1, 1, 0);
  hzc__wr_u8(&b.w, 0);
  hzc__wr_uuid(&b.w, &u);
  hzc__wr_u8(&b.w, 1);
  hzc__wr_i32le(&b.w, 271);
  hzc__wr_uuid(&b.w, &u);
  hzc__wr_u8(&b.w, 0);
  hzc__wr_i32le(&b.w, 1);
  hzc__wr_i32le(&b.w, 1);
  address(&b);
  hzc__mb_string(&b, "5.5.0");
  emit(&b);
  hzc__mb_event(&b, HZC__MT_VIEW_MEMBERS, 2, -1);
  hzc__wr_i32le(&b.w, 1);
  hzc__mb_begin(&b);
  hzc__mb_begin(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u);
  hzc__wr_u8(&b.w, 0);
  address(&b);
  hzc__mb_begin(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  emit(&b);
  hzc__mb_event(&b, HZC__MT_VIEW_PARTITIONS, 2, -1);
  hzc__wr_i32le(&b.w, 1);
  hzc__mb_begin(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 0);
  hzc__wr_i32le(&b.w, 1);
  hzc__mb_end(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u);
  emit(&b);
  hzc__mb_event(&b, HZC__MT_MAP_INVALIDATION, 3, 21);
  hzc__wr_uuid(&b.w, &u);
  hzc__wr_uuid(&b.w, &u);
  hzc__wr_i64le(&b.w, 7);
  hzc__mb_data_string(&b, "k1", 2);
  emit(&b);
  hzc__mb_event(&b, HZC__MT_MAP_BATCH_INVALIDATION, 3, -1);
  hzc__mb_begin(&b);
  hzc__mb_data_string(&b, "a", 1);
  hzc__mb_end(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u);
  hzc__mb_open(&b, 0);
  hzc__wr_uuid(&b.w, &u);
  hzc__mb_open(&b, 0);
  hzc__wr_i64le(&b.w, 1);
  emit(&b);
  hzc__mb_response(&b, HZC__MT_MAP_FETCH_META + 1, 4, 0);
  hzc__mb_begin(&b);
  hzc__mb_string(&b, "m");
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 1);
  hzc__wr_i64le(&b.w, 2);
  hzc__mb_end(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 1);
  hzc__wr_uuid(&b.w, &u);
  emit(&b);
  hzc__mb_response(&b, HZC__MT_MAP_GET_ALL + 1, 5, 0);
  hzc__mb_begin(&b);
  hzc__mb_data_string(&b, "k", 1);
  hzc__mb_data_bytes(&b, "v", 1);
  hzc__mb_end(&b);
  emit(&b);
  hzc__mb_response(&b, 0, 6, 0);
  hzc__mb_begin(&b);
  hzc__mb_begin(&b);
  hzc__mb_open(&b, 0);
  hzc__wr_i32le(&b.w, 39);
  hzc__mb_string(&b, "X");
  hzc__mb_null(&b);
  hzc__mb_begin(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  hzc__mb_end(&b);
  emit(&b);
  hzc__mb_event(&b, HZC__MT_OBJ_EVENT, 7, -1);
  hzc__wr_uuid(&b.w, &u);
  hzc__mb_string(&b, "m");
  hzc__mb_string(&b, HZC__MAP_SERVICE);
  hzc__mb_string(&b, "CREATED");
  emit(&b);
  hzc__mb_response(&b, HZC__MT_MAP_GET + 1, 8, 0);
  hzc__mb_data_bytes(&b, "value", 5);
  emit(&b);
  hzc__mb_response(&b, HZC__MT_MAP_CONTAINS + 1, 9, 0);
  hzc__wr_u8(&b.w, 1);
  emit(&b);
  /* a fragmented Get response: two fragments with id 5 */
  hzc__mb_t f;
  hzc__wr_init(&f.w);
  f.open = 0;
  hzc__mb_frame(&f, HZC__F_BEGIN_FRAGMENT, "\x05\0\0\0\0\0\0\0", 8);
  hzc__mb_open(&f, HZC__F_UNFRAGMENTED | HZC__F_FINAL);
  hzc__wr_i32le(&f.w, HZC__MT_MAP_GET + 1);
  hzc__wr_i64le(&f.w, 10);
  hzc__wr_u8(&f.w, 0);
  hzc__mb_frame(&f, HZC__F_END_FRAGMENT, "\x05\0\0\0\0\0\0\0", 8);
  hzc__mb_open(&f, 0);
  hzc__wr_data(&f.w, HZC__TYPE_BYTES, "xy", 2);
  emit(&f);
  printf("%d seeds in %s\n", nfile, dir);
  return 0;
}
