/* murmur.c - MurmurHash3_x86_32 (Austin Appleby's public-domain algorithm,
 * written from its description) with Hazelcast's seed and index mapping. */
#include "murmur.h"

#include <string.h>

static inline uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

/* Mixes one 4-byte block into h (the body step). */
static inline uint32_t murmur_block(uint32_t h, uint32_t k) {
  k *= 0xcc9e2d51u;
  k = rotl32(k, 15);
  k *= 0x1b873593u;
  h ^= k;
  h = rotl32(h, 13);
  return h * 5 + 0xe6546b64u;
}

static inline uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

/* Hashes the concatenation pre[0..npre) ++ data[0..len) (npre is 0 or 4), so a
 * String key can be hashed without building its Data. */
static int32_t murmur_cat(const uint8_t *pre, size_t npre, const uint8_t *data, size_t len, uint32_t seed) {
  uint32_t h = seed;
  size_t total = npre + len, i = 0;
  uint8_t blk[4];
#define AT(j) ((j) < npre ? pre[(j)] : data[(j) - npre])
  for (; i + 4 <= total; i += 4) {
    for (int b = 0; b < 4; b++) blk[b] = AT(i + (size_t)b);
    uint32_t k = (uint32_t)blk[0] | (uint32_t)blk[1] << 8 | (uint32_t)blk[2] << 16 | (uint32_t)blk[3] << 24;
    h = murmur_block(h, k);
  }
  uint32_t k = 0;
  switch (total & 3) {
    case 3:
      k ^= (uint32_t)AT(i + 2) << 16;
      /* fall through */
    case 2:
      k ^= (uint32_t)AT(i + 1) << 8;
      /* fall through */
    case 1:
      k ^= AT(i);
      k *= 0xcc9e2d51u;
      k = rotl32(k, 15);
      k *= 0x1b873593u;
      h ^= k;
  }
#undef AT
  h ^= (uint32_t)total;
  return (int32_t)fmix32(h);
}

int32_t hzc__murmur3_32(const void *data, size_t len, uint32_t seed) {
  return murmur_cat(NULL, 0, data, len, seed);
}

int32_t hzc__data_hash(const uint8_t *data, size_t len) {
  if (len < 8) return 0;
  int32_t ph = (int32_t)((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3]);
  if (ph != 0) return ph;
  return hzc__murmur3_32(data + 8, len - 8, HZC__MURMUR_SEED);
}

int32_t hzc__string_hash(const void *key, size_t klen) {
  uint8_t pre[4] = {(uint8_t)(klen >> 24), (uint8_t)(klen >> 16), (uint8_t)(klen >> 8), (uint8_t)klen};
  return murmur_cat(pre, 4, key, klen, HZC__MURMUR_SEED);
}

uint32_t hzc__partition_of(int32_t hash, uint32_t count) {
  if (hash == INT32_MIN || count == 0) return 0;
  uint32_t a = hash < 0 ? (uint32_t)(-(int64_t)hash) : (uint32_t)hash;
  return a % count;
}
