/* test_fake_server_ctl.c - the C helper for fake_server: start, port, log
 * waits (blocking and non-blocking), an unknown scenario, and a client that
 * sends garbage being disconnected. Synchronizes on the fake's log only.
 */
#include "fake_server_ctl.h"
#include "itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_CASE(fake_server_ctl) {
  hzshm__fake_t *fs = NULL;
  CHECK_RC(hzshm__fake_start("no-such-scenario", NULL, &fs), HZSHM_EINVAL);
  CHECK_EQ(fs, NULL);

  const char *extra[] = {"--partitions", "7", NULL};
  CHECK_RC(hzshm__fake_start("normal", extra, &fs), 0);
  CHECK_NE(fs, NULL);
  CHECK_GT(hzshm__fake_port(fs), 0);
  CHECK_RC(hzshm__fake_wait_log(fs, "accepted", 0, NULL, 0), HZSHM_ETIMEDOUT); /* nothing yet */

  /* A client that sends a frame length below 6 after the preamble is disconnected. */
  int fd = connect_to(hzshm__fake_port(fs));
  CHECK_GE(fd, 0);
  char line[256];
  CHECK_RC(hzshm__fake_wait_log(fs, "conn 1 accepted", 10000, line, sizeof(line)), 0);
  static const unsigned char garbage[] = {'C', 'P', '2', 3, 0, 0, 0, 0, 0};
  CHECK_EQ(write(fd, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
  CHECK_RC(hzshm__fake_wait_log(fs, "conn 1 closed", 10000, line, sizeof(line)), 0);
  CHECK_NE(strstr(line, "bad frame length"), NULL);
  char c;
  CHECK_RC((int)read(fd, &c, 1), 0); /* EOF: the fake closed it */
  close(fd);

  /* A bad preamble is refused too; lines are matched in order after the earlier ones. */
  fd = connect_to(hzshm__fake_port(fs));
  CHECK_EQ(write(fd, "XYZ", 3), 3);
  CHECK_RC(hzshm__fake_wait_log(fs, "conn 2 closed (bad preamble)", 10000, NULL, 0), 0);
  close(fd);
  hzshm__fake_stop(fs);

  printf("test_fake_server_ctl: all checks passed\n");
}
