/* shm_util.c - small pure helpers: the keyed key hash (SipHash-1-3), the
 * unkeyed fold (fingerprints, geometry checks), random bytes, the layout
 * fingerprint, the coarse clock, the process start time, name checks, the
 * byte lock.
 * No shared state; thread-safe.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "shm_int.h"

/* The unkeyed fold (layout fingerprint, geometry check; never for keys an
 * outsider chooses: anybody can compute its collisions). Multiply-fold mixing in the style of the wyhash/mum family
 * (written here from the idea, not copied): 16 bytes per round, each round a
 * 64x64->128 multiply whose halves are xor-folded, which diffuses every input
 * bit into the whole word; two folds for a key of up to 16 bytes. Good enough
 * distribution for a chained table, ~1 ns for a 16-byte key. The seed is the
 * session generation, so equal keys of different sessions land apart. */
#define K0 0xa0761d6478bd642full
#define K1 0xe7037ed1a0b428dbull
#define K2 0x8ebc6af09c88c6e3ull

static inline uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
static inline uint64_t mumix(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t hzshm__shm_fold(const void *key, size_t len, uint64_t seed) {
  const uint8_t *p = key;
  uint64_t h = seed ^ K0 ^ ((uint64_t)len * K1);
  size_t n = len;
  while (n >= 16) {
    h = mumix(rd64(p) ^ K1, rd64(p + 8) ^ h);
    p += 16;
    n -= 16;
  }
  uint64_t a = 0, b = 0;
  if (n >= 8) {
    a = rd64(p);
    p += 8;
    n -= 8;
  }
  for (size_t i = 0; i < n; i++) b |= (uint64_t)p[i] << (8 * i);
  /* No finalizer after this second 64x64->128 fold: it already spreads every
   * input bit over both halves (wyhash ends the same way), and the hash is
   * on the critical path of every lookup (the bucket address depends on
   * it): dropping the murmur finalizer took ~11 cycles off it. */
  return mumix(a ^ K2 ^ h, b ^ K1 ^ (uint64_t)len);
}

uint64_t hzshm__shm_layout_fingerprint(void) {
  uint64_t vals[] = {
#define HZSHM__FP(expr, val) (uint64_t)(expr),
      HZSHM__LAYOUT_FIELDS(HZSHM__FP)
#undef HZSHM__FP
          HZSHM_SHM_LAYOUT_VERSION};
  return hzshm__shm_fold(vals, sizeof vals, 0x68757368ull);
}

uint64_t hzshm__shm_sip13(const uint64_t k[2], uint64_t prefix, const void *data, size_t len) {
  return hzshm__shm_sip13_inline(k, prefix, data, len);
}
uint64_t hzshm__shm_sip24(const uint64_t k[2], uint64_t prefix, const void *data, size_t len) {
  return hzshm__shm_sip(k, prefix, data, len, 2, 4);
}

int hzshm__shm_random(void *buf, size_t len) {
  uint8_t *p = buf;
  while (len) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? -errno : -EIO;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* CLOCK_MONOTONIC_COARSE: a vDSO read of the jiffy clock (~3 ns, no
 * syscall), the one clock used on the hit path and for the heartbeat. */
uint64_t hzshm__shm_now_coarse(void) { return hzshm__shm_clock_coarse(); }

_Atomic int64_t hzshm__shm_clock_off_ns;

/* The monotonic offset of this process's time namespace, from
 * /proc/self/timens_offsets ("monotonic <s> <ns>"). That file shows the
 * namespace of the process's future children: when it is not the process's
 * own (it called unshare(CLONE_NEWTIME) itself) the own offset is unknown
 * and stays 0, as without time namespaces (no file). */
void hzshm__shm_clock_init(void) {
  char own[64], kids[64];
  ssize_t a = readlink("/proc/self/ns/time", own, sizeof own - 1);
  ssize_t b = readlink("/proc/self/ns/time_for_children", kids, sizeof kids - 1);
  if (a <= 0 || a != b || memcmp(own, kids, (size_t)a) != 0) return;
  FILE *f = fopen("/proc/self/timens_offsets", "r");
  if (!f) return;
  char clock[32];
  long long sec, nsec;
  int64_t off = 0;
  while (fscanf(f, "%31s %lld %lld", clock, &sec, &nsec) == 3)
    if (strcmp(clock, "monotonic") == 0) off = (int64_t)sec * 1000000000 + nsec;
  fclose(f);
  /* relaxed: see hzshm__shm_clock_coarse */
  atomic_store_explicit(&hzshm__shm_clock_off_ns, off, memory_order_relaxed);
}

/* Field 22 of /proc/self/stat, read once per process. */
uint64_t hzshm__shm_proc_start(void) {
  static _Atomic uint64_t cached; /* relaxed: idempotent computation, any thread may fill it */
  static _Atomic int32_t cached_pid;
  uint64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
  if (v && atomic_load_explicit(&cached_pid, memory_order_relaxed) == (int32_t)getpid()) return v;
  FILE *f = fopen("/proc/self/stat", "r");
  if (!f) return 0;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  int field = 2;
  unsigned long long start = 0;
  while (p && *p) {
    if (*p == ' ') {
      field++;
      if (field == 22) {
        start = strtoull(p + 1, NULL, 10);
        break;
      }
    }
    p++;
  }
  atomic_store_explicit(&cached, (uint64_t)start, memory_order_relaxed);
  atomic_store_explicit(&cached_pid, (int32_t)getpid(), memory_order_relaxed);
  return start;
}

/* A segment's files are "hzshm." + name + one of "", ".rd", ".lock",
 * ".rd.<pid>.<n>.<random>" (shm_open.c, shm_private.c). Two names give
 * colliding files only if one is the other followed by ".rd" or ".lock" as
 * a dot-separated part (then its files are the other's reader or lock file,
 * or lie under its private reader file prefix, whose writer examines and
 * removes them): such parts are refused after the first. */
int hzshm__shm_name_ok(const char *name) {
  if (!name) return 0;
  size_t n = strlen(name);
  if (n < 1 || n > HZSHM_SHM_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return 0;
  }
  for (const char *p = strchr(name, '.'); p; p = strchr(p + 1, '.')) {
    size_t len = strcspn(p + 1, ".");
    if ((len == 2 && memcmp(p + 1, "rd", 2) == 0) || (len == 4 && memcmp(p + 1, "lock", 4) == 0)) return 0;
  }
  return name[0] != '.';
}

int hzshm__shm_lock_byte(int fd, short type, off_t at) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
  return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}
