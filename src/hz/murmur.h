/* murmur.h - MurmurHash3_x86_32 and Hazelcast's partition id
 * (hazelcast-client-protocol.md §2.2; HashUtil.MurmurHash3_x86_32 and
 * HashUtil.hashToIndex in the member). Pure functions, thread-safe. */
#ifndef HZSHM_HZ_MURMUR_H
#define HZSHM_HZ_MURMUR_H

#include <stddef.h>
#include <stdint.h>

#define HZC__MURMUR_SEED 0x01000193u

/* 4-byte blocks read little-endian, standard tail and fmix32. */
int32_t hzc__murmur3_32(const void *data, size_t len, uint32_t seed);
/* Hash of a serialized Data: its partition-hash field if non-zero, else
 * murmur over the payload [8, len). len must be >= 8. */
int32_t hzc__data_hash(const uint8_t *data, size_t len);
/* Hash of the String key `key` (UTF-8) as its Data would hash. */
int32_t hzc__string_hash(const void *key, size_t klen);
/* hashToIndex: INT32_MIN -> 0, else |hash| % count. count must be > 0. */
uint32_t hzc__partition_of(int32_t hash, uint32_t count);

#endif
