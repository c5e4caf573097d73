/* fuzz_seg.h - the input format of fuzz_seg (shared with its seed generator).
 *
 *   byte 0      flags (SEG_F_*)
 *   bytes 1-2   data file size in 4 KiB pages (LE; capped at SEG_MAX_PAGES)
 *   bytes 3-4   reader file size in 4 KiB pages
 *   records until the end, each starting with a kind byte:
 *     SEG_R_DATA / SEG_R_RD  u24 offset, u16 length, bytes: written into the
 *                            data / reader file (clipped to the file size)
 *     SEG_R_FLIP             u24 offset, u8 length, bytes: xor-ed into the
 *                            mapped data file while reads run (SEG_F_THREAD:
 *                            by a second thread, over and over; otherwise
 *                            one flip record before each read step)
 *     SEG_R_SESSION / SEG_R_KEY  u8 length, bytes: one more session id / key
 *                            to look up (besides the seeds' s0..s3, k0..k7)
 *     SEG_R_REF              u32 idx, u64 gen: a forged session reference
 */
#ifndef HZSHM_FUZZ_SEG_H
#define HZSHM_FUZZ_SEG_H

#include <stdint.h>

enum {
  SEG_F_FIXGEOM = 0x01, /* recompute the header's geometry hash after the records are written */
  SEG_F_FRESH = 0x02,   /* set the heartbeat to now and the state to serving (so lookups walk) */
  SEG_F_THREAD = 0x04,  /* flips from a second thread during the reads */
  SEG_F_WRITER = 0x08,  /* afterwards, open the file as the writer (reuse path) with seed config WRITER_CFG */
  SEG_F_CFG_B = 0x10,   /* which seed configuration SEG_F_WRITER uses */
};
enum { SEG_R_DATA = 0, SEG_R_RD = 1, SEG_R_FLIP = 2, SEG_R_SESSION = 3, SEG_R_KEY = 4, SEG_R_REF = 5, SEG_R_KINDS = 6 };
#define SEG_MAX_PAGES 768u /* 3 MiB */

/* The seed segments' configurations (the generator makes one of each). */
#define SEG_CFG_A {.memory_bytes = 1310720, .max_sessions = 8, .reader_slots = 4, .partition_count = 7}
#define SEG_CFG_B {.memory_bytes = 2621440, .max_sessions = 16, .reader_slots = 8, .partition_count = 271}

#endif
