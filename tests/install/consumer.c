/* consumer.c - a program outside the tree, built against an INSTALLED hzshm
 * (tests/install/run: once through pkg-config, once through find_package).
 *   consumer NAME SESSION KEY VALUE: sets KEY, reads it back, exits 0 when
 *   the value read is VALUE; prints what went wrong and exits 1 otherwise. */
#include <hzshm.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: consumer NAME SESSION KEY VALUE\n");
    return 2;
  }
  hzshm_t *h = NULL;
  hzshm_session_t *s = NULL;
  int rc = hzshm_open(argv[1], NULL, &h);
  if (rc == 0) rc = hzshm_session_open(h, argv[2], strlen(argv[2]), &s);
  if (rc == 0) rc = hzshm_set(s, argv[3], strlen(argv[3]), argv[4], strlen(argv[4]));
  char buf[256];
  size_t n = 0;
  if (rc == 0) rc = hzshm_get(s, argv[3], strlen(argv[3]), buf, sizeof buf, &n);
  int ok = rc == 0 && n == strlen(argv[4]) && memcmp(buf, argv[4], n) == 0;
  if (!ok) fprintf(stderr, "consumer: %s (%s)\n", rc ? hzshm_strerror(rc) : "value differs", HZSHM_VERSION_STRING);
  else printf("consumer: ok (hzshm %s)\n", HZSHM_VERSION_STRING);
  if (s) hzshm_session_close(s);
  if (h) hzshm_close(h);
  return ok ? 0 : 1;
}
