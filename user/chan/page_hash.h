/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * XXH3-64 of one page (codec_page_hash()) by the widest vector unit the
 * CPU has.  XXH3's value does not depend on the path that computes it, so
 * every build hashes a page to the same 64 bits as the baseline one and
 * as the peer, whatever its CPU.
 */
#ifndef LMIG_PAGE_HASH_H
#define LMIG_PAGE_HASH_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t (*page_hash_fn)(const void *page);

/* The one codec_page_hash() calls: picked before main() runs. */
extern page_hash_fn page_hash_picked;

/* Built for the x86-64 baseline (SSE2), or whatever the target's is. */
uint64_t page_hash_generic(const void *page);
/*
 * Built for AVX2 and for AVX-512 (page_hash_avx2.c, page_hash_avx512.c):
 * NULL where the compiler cannot build them (not x86-64, or a compiler
 * whose target pragma leaves xxHash's own choice of path alone).  Call
 * one only where page_hash_cpu_has() says the CPU runs it.
 */
extern const page_hash_fn page_hash_avx2, page_hash_avx512;
bool page_hash_cpu_has(page_hash_fn f);
/* The fastest build this CPU runs. */
page_hash_fn page_hash_pick(void);

#endif
