/* pages.h - which pages back the segment's data file (issue 15): 2 MiB or
 * 4 KiB, found in /proc/self/smaps, and why not 2 MiB (pages.c). A leaf of
 * the agent: it reads /proc and /sys only, never the segment. */
#ifndef HZSHM_AGENT_PAGES_H
#define HZSHM_AGENT_PAGES_H

#include <stddef.h>

enum { PAGES_UNKNOWN = -1, PAGES_4K = 0, PAGES_2M = 1 };

/* The mappings of path (the segment's data file, mapped by this process) in
 * /proc/self/smaps: PAGES_2M if any of their kB is PMD-mapped
 * (ShmemPmdMapped + FilePmdMapped), else PAGES_4K; why[] says which and,
 * for 4 KiB, why not 2 MiB (the directory's file system and tmpfs huge=
 * option, transparent_hugepage/shmem_enabled) and what to do about it.
 * PAGES_UNKNOWN with the reason when /proc cannot tell. Never fails
 * otherwise; changes nothing. */
int pages_probe(const char *path, char *why, size_t cap);

#endif
