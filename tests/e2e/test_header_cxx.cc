// test_header_cxx.cc - the public header compiles as C++ and links.
#include "hzshm.h"

#include <cerrno>
#include <cstdio>

int main() {
  hzshm_t *h = nullptr;
  int rc = hzshm_open("no-such-cache-cxx", nullptr, &h);
  std::printf("hzshm_open from C++: %s\n", hzshm_err_name(rc));
  return rc == -ENOENT ? 0 : 1;
}
