/* bytes.h - the one set of byte-order helpers: fixed-position loads and
 * stores of little-endian integers (the local protocol, the segment's
 * records, Hazelcast's frame fields) and of the big-endian ones of
 * Hazelcast's Data. Unchecked: the caller proved the buffer holds them. */
#ifndef HZSHM_BYTES_H
#define HZSHM_BYTES_H

#include <stdint.h>

static inline void hzshm__le16_put(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void hzshm__le32_put(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void hzshm__le64_put(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t hzshm__le16_get(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t hzshm__le32_get(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t hzshm__le64_get(const uint8_t *p) {
  return (uint64_t)hzshm__le32_get(p) | ((uint64_t)hzshm__le32_get(p + 4) << 32);
}

static inline void hzshm__be32_put(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline uint32_t hzshm__be32_get(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

#endif /* HZSHM_BYTES_H */
