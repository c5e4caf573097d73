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

static void emit(hzshm__mb_t *b) {
  if (hzshm__mb_finish(b) != 0) return;
  char path[512];
  snprintf(path, sizeof path, "%s/seed-%02d", dir, nfile++);
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(b->w.p, 1, b->w.len, f);
    fclose(f);
  }
  hzshm__mb_free(b);
}

static void address(hzshm__mb_t *b) {
  hzshm__mb_begin(b);
  hzshm__mb_open(b, 0);
  hzshm__wr_i32le(&b->w, 5701);
  hzshm__mb_string(b, "127.0.0.1");
  hzshm__mb_end(b);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  dir = argv[1];
  hzshm__mb_t b;
  hzc_uuid_t u;
  for (int i = 0; i < 16; i++) u.b[i] = (uint8_t)i;
  hzshm__mb_response(&b, HZSHM__MT_AUTH + 1, 1, 0);
  hzshm__wr_u8(&b.w, 0);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__wr_u8(&b.w, 1);
  hzshm__wr_i32le(&b.w, 271);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__wr_u8(&b.w, 0);
  hzshm__wr_i32le(&b.w, 1);
  hzshm__wr_i32le(&b.w, 1);
  address(&b);
  hzshm__mb_string(&b, "5.5.0");
  emit(&b);
  hzshm__mb_event(&b, HZSHM__MT_VIEW_MEMBERS, 2, -1);
  hzshm__wr_i32le(&b.w, 1);
  hzshm__mb_begin(&b);
  hzshm__mb_begin(&b);
  hzshm__mb_open(&b, 0);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__wr_u8(&b.w, 0);
  address(&b);
  hzshm__mb_begin(&b);
  hzshm__mb_end(&b);
  hzshm__mb_end(&b);
  hzshm__mb_end(&b);
  emit(&b);
  hzshm__mb_event(&b, HZSHM__MT_VIEW_PARTITIONS, 2, -1);
  hzshm__wr_i32le(&b.w, 1);
  hzshm__mb_begin(&b);
  hzshm__mb_open(&b, 0);
  hzshm__wr_i32le(&b.w, 0);
  hzshm__wr_i32le(&b.w, 1);
  hzshm__mb_end(&b);
  hzshm__mb_open(&b, 0);
  hzshm__wr_uuid(&b.w, &u);
  emit(&b);
  hzshm__mb_event(&b, HZSHM__MT_MAP_INVALIDATION, 3, 21);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__wr_i64le(&b.w, 7);
  hzshm__mb_data_string(&b, "k1", 2);
  emit(&b);
  hzshm__mb_event(&b, HZSHM__MT_MAP_BATCH_INVALIDATION, 3, -1);
  hzshm__mb_begin(&b);
  hzshm__mb_data_string(&b, "a", 1);
  hzshm__mb_end(&b);
  hzshm__mb_open(&b, 0);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__mb_open(&b, 0);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__mb_open(&b, 0);
  hzshm__wr_i64le(&b.w, 1);
  emit(&b);
  hzshm__mb_response(&b, HZSHM__MT_MAP_FETCH_META + 1, 4, 0);
  hzshm__mb_begin(&b);
  hzshm__mb_string(&b, "m");
  hzshm__mb_open(&b, 0);
  hzshm__wr_i32le(&b.w, 1);
  hzshm__wr_i64le(&b.w, 2);
  hzshm__mb_end(&b);
  hzshm__mb_open(&b, 0);
  hzshm__wr_i32le(&b.w, 1);
  hzshm__wr_uuid(&b.w, &u);
  emit(&b);
  hzshm__mb_response(&b, HZSHM__MT_MAP_GET_ALL + 1, 5, 0);
  hzshm__mb_begin(&b);
  hzshm__mb_data_string(&b, "k", 1);
  hzshm__mb_data_bytes(&b, "v", 1);
  hzshm__mb_end(&b);
  emit(&b);
  hzshm__mb_response(&b, 0, 6, 0);
  hzshm__mb_begin(&b);
  hzshm__mb_begin(&b);
  hzshm__mb_open(&b, 0);
  hzshm__wr_i32le(&b.w, 39);
  hzshm__mb_string(&b, "X");
  hzshm__mb_null(&b);
  hzshm__mb_begin(&b);
  hzshm__mb_end(&b);
  hzshm__mb_end(&b);
  hzshm__mb_end(&b);
  emit(&b);
  hzshm__mb_event(&b, HZSHM__MT_OBJ_EVENT, 7, -1);
  hzshm__wr_uuid(&b.w, &u);
  hzshm__mb_string(&b, "m");
  hzshm__mb_string(&b, HZSHM__MAP_SERVICE);
  hzshm__mb_string(&b, "CREATED");
  emit(&b);
  hzshm__mb_response(&b, HZSHM__MT_MAP_GET + 1, 8, 0);
  hzshm__mb_data_bytes(&b, "value", 5);
  emit(&b);
  hzshm__mb_response(&b, HZSHM__MT_MAP_CONTAINS + 1, 9, 0);
  hzshm__wr_u8(&b.w, 1);
  emit(&b);
  /* a fragmented Get response: two fragments with id 5 */
  hzshm__mb_t f;
  hzshm__wr_init(&f.w);
  f.open = 0;
  hzshm__mb_frame(&f, HZSHM__F_BEGIN_FRAGMENT, "\x05\0\0\0\0\0\0\0", 8);
  hzshm__mb_open(&f, HZSHM__F_UNFRAGMENTED | HZSHM__F_FINAL);
  hzshm__wr_i32le(&f.w, HZSHM__MT_MAP_GET + 1);
  hzshm__wr_i64le(&f.w, 10);
  hzshm__wr_u8(&f.w, 0);
  hzshm__mb_frame(&f, HZSHM__F_END_FRAGMENT, "\x05\0\0\0\0\0\0\0", 8);
  hzshm__mb_open(&f, 0);
  hzshm__wr_data(&f.w, HZSHM__TYPE_BYTES, "xy", 2);
  emit(&f);
  printf("%d seeds in %s\n", nfile, dir);
  return 0;
}
