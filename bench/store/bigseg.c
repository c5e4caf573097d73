/* bigseg.c - see bigseg.h. Single writer: every call runs on the thread that
 * built the segment; the segment's own code orders the publication of entries
 * for its readers (shm/shm_write.c). */
#define _GNU_SOURCE
#include "bigseg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "butil.h"
#include "shm.h"

struct bigseg {
  hzshm__shm_t *w;
  char name[HZSHM_SHM_NAME_MAX + 1];
};

/* rd: 0 = the data file, 1 = the reader file (wherever HZSHM_SHM_DIR puts them). */
static void file_sizes(const char *name, int rd, uint64_t *size, uint64_t *resident) {
  char path[HZSHM_SHM_PATH_MAX];
  struct stat st;
  if (hzshm__shm_path(name, rd, path, sizeof path) != 0 || stat(path, &st) != 0) return;
  *size = (uint64_t)st.st_size;
  if (resident) *resident = (uint64_t)st.st_blocks * 512u;
}

int bigseg_build(const char *name, uint64_t memory, const char *sid, uint64_t n, size_t vsize, bigseg_t **out,
                 bigseg_info_t *info) {
  int rc = -ENOMEM, reused = 0;
  uint8_t *val = malloc(vsize ? vsize : 1);
  bigseg_t *b = calloc(1, sizeof *b);
  if (val == NULL || b == NULL) goto fail;
  snprintf(b->name, sizeof b->name, "%s", name);
  hzshm__shm_config_t cfg = {.memory_bytes = memory, .max_sessions = 1024, .reader_slots = 256,
                             .stale_after_ns = 3600ull * 1000000000ull};
  rc = hzshm__shm_w_open(name, &cfg, 1, &b->w, &reused);
  if (rc != 0) goto fail;
  rc = hzshm__shm_w_set_socket(b->w, "/nonexistent/hzshm-bench-bigseg.sock");
  if (rc != 0) goto fail;
  hzshm__shm_w_heartbeat(b->w, HZSHM_SHM_SERVING);
  hzshm__sref_t ref;
  rc = hzshm__shm_w_session(b->w, sid, strlen(sid), &ref);
  if (rc != 0) goto fail;
  uint64_t t0 = bu_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    char key[BU_KEYLEN + 1];
    bu_key(key, i);
    bu_value(val, i, vsize);
    rc = hzshm__shm_w_put(b->w, &ref, key, BU_KEYLEN, val, vsize, (uint32_t)(i % 271), hzshm__shm_w_stamp(b->w), 0,
                          0);
    if (rc != 0) goto fail;
    if ((i & 0xffff) == 0) hzshm__shm_w_heartbeat(b->w, HZSHM_SHM_SERVING);
  }
  info->fill_s = (double)(bu_now_ns() - t0) / 1e9;
  hzshm__shm_w_heartbeat(b->w, HZSHM_SHM_SERVING);
  hzshm__shm_stats_t st;
  rc = hzshm__shm_stats(b->w, &st);
  if (rc != 0) goto fail;
  info->entries = st.entries;
  info->evictions = st.evictions;
  info->memory_used = st.memory_used;
  info->memory_limit = st.memory_limit;
  file_sizes(name, 0, &info->file_bytes, &info->resident_bytes);
  file_sizes(name, 1, &info->rd_file_bytes, NULL);
  free(val);
  *out = b;
  return 0;
fail:
  free(val);
  if (b) bigseg_destroy(b);
  return rc;
}

void bigseg_heartbeat(bigseg_t *b) { hzshm__shm_w_heartbeat(b->w, HZSHM_SHM_SERVING); }

void bigseg_destroy(bigseg_t *b) {
  if (b == NULL) return;
  if (b->w) hzshm__shm_close(b->w);
  hzshm__shm_unlink(b->name);
  free(b);
}
