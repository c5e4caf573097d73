/* hzshm_version.h - library version. */
#ifndef HZSHM_VERSION_H
#define HZSHM_VERSION_H
#define HZSHM_VERSION_MAJOR 0
#define HZSHM_VERSION_MINOR 1
#define HZSHM_VERSION_PATCH 0
#define HZSHM_VERSION_STRING "0.1.0"
#endif
