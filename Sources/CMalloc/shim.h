// glibc's malloc tuning (malloc.h is not part of Swift's Glibc module).
#pragma once
#include <malloc.h>

/// Returns freed heap memory to the system once the free top of the heap exceeds `bytes`; also freezes
/// the mmap threshold at its 128 KiB default (no dynamic raise). Returns 1 on success.
static inline int mltomo_set_trim_threshold(int bytes) { return mallopt(M_TRIM_THRESHOLD, bytes); }
