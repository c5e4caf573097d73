// test_shm_cxx.cpp - the public headers compile as C++ and link from C++.
#include "hzshm.h"
#include "shm.h"

#include <cstdio>
#include <cstring>

int main() {
  hzshm__shm_t *s = nullptr;
  int rc = hzshm__shm_r_attach("no-such-segment-cxx", &s);
  if (std::strcmp(hzshm_err_name(rc), "ENOENT") != 0 || s != nullptr) {
    std::fprintf(stderr, "unexpected %s\n", hzshm_err_name(rc));
    return 1;
  }
  return 0;
}
