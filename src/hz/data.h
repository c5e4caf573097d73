/* data.h - Hazelcast serialized Data for our keys (String) and values
 * (byte[]), and type detection of values written by other clients
 * (hazelcast-client-protocol.md §2.1: HeapData = int32 BE partition hash,
 * int32 BE type id, payload; String payload = int32 BE UTF-8 byte count +
 * UTF-8; byte[] payload = int32 BE length + bytes). Pure functions. */
#ifndef HZSHM_HZ_DATA_H
#define HZSHM_HZ_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "hzc.h"

#define HZC__TYPE_STRING HZC_TYPE_ID_STRING
#define HZC__TYPE_BYTES HZC_TYPE_ID_BYTES
#define HZC__DATA_MAX ((size_t)INT32_MAX - 64)

/* Appends a Data frame holding the String / byte[] (flags 0). */
/* A Data frame of serializer type id `type` holding n bytes (byte[] / String layout). */
void hzshm__mb_data(hzc__mb_t *b, int32_t type, const void *p, size_t n);
void hzc__mb_data_string(hzc__mb_t *b, const void *s, size_t n);
void hzc__mb_data_bytes(hzc__mb_t *b, const void *p, size_t n);
/* Writes the Data bytes into w (no frame header). */
void hzc__wr_data(hzc__wr_t *w, int32_t type, const void *p, size_t n);
/* Decodes a Data blob: empty = HZC_NULL; byte[] / String with their payload;
 * any other type HZC_OTHER with data/len = bytes after the 8-byte header.
 * HZSHM_EPROTO if shorter than 8 bytes or a length field overruns. */
int hzc__data_decode(const uint8_t *p, size_t len, hzc_value_t *v);

#endif
