/* layout_model.h - a model of the one-miss segment layout that issue 15 asks
 * for (docs/SHM.md, "A one-miss layout, modelled"), measured beside the real
 * segment in bench_app --model.
 *
 * Not the segment: no writer protocol, no reclamation, no sharing between
 * processes. What it keeps is every load and store a reader of such a layout
 * would issue on a hit, in the same memory a segment uses (a file in the
 * segment directory, 4 KiB pages, mapped shared), so that its time per hit is
 * what the layout would cost on this machine:
 *
 *   index   64-byte buckets of 10 (16-bit tag, 32-bit entry offset in 8-byte
 *           units) pairs and a count, 65 % full (an entry of a full bucket
 *           goes to a later one, flagged; 1-2 % do): 9.8 B per entry,
 *           small enough to stay in the last-level cache (the current
 *           bucket words are reached the same way, but chains make a hit
 *           wait for the bucket word, then the entry)
 *   entry   a 28-byte header (version, key and value lengths packed, session
 *           generation, fill stamp, partition, flags, expiry), then key and
 *           value, packed on 8-byte boundaries (no 64-byte classes)
 *   reader  what r_get does besides the walk: slot epoch enter/exit, the
 *           fail-closed heartbeat check on the coarse clock, the keyed
 *           SipHash-1-3 of the key, the slab word and the entry version before
 *           and after the copy, the partition's stale mark, the SIEVE bit in a
 *           separate read-write mapping (the reader file)
 *
 * Single thread; the builder is the only writer and has finished before any
 * lookup, so plain loads stand for the relaxed/acquire loads of the real
 * reader (the same instructions on x86-64). */
#ifndef HZSHM_BENCH_LAYOUT_MODEL_H
#define HZSHM_BENCH_LAYOUT_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef struct layout_model layout_model_t;

/* n entries: keys[i * klen .. + klen), values bu_value(i, vsize). 0 or -errno. */
int layout_model_build(uint32_t n, const char *keys, size_t klen, size_t vsize, layout_model_t **out);
/* 0 = hit (the value copied into buf), 1 = miss, -1 = the buffer is too small. */
int layout_model_get(layout_model_t *m, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen);
uint64_t layout_model_bytes(const layout_model_t *m);       /* arena in use + index */
uint64_t layout_model_index_bytes(const layout_model_t *m); /* the index alone */
double layout_model_load_factor(const layout_model_t *m);
uint32_t layout_model_overflowed(const layout_model_t *m); /* entries placed in the bucket after their own */
void layout_model_free(layout_model_t *m);

#endif
