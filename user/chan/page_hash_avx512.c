// SPDX-License-Identifier: GPL-2.0-only
/*
 * The page hash built for AVX-512 (AVX512F; page_hash.h).  The whole
 * file is compiled for it, so that xxHash's inline code, which picks its
 * vector path by the compiler's target macros, takes that one.  Nothing
 * here may run before page_hash_cpu_has() says the CPU has it: page_hash.c
 * calls only through the pointer.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("avx512f")
#endif

#include <stddef.h>

#include <lmig/wire.h>

#include "lib/xxh.h"
#include "chan/page_hash.h"

#if defined(__x86_64__) && XXH_VECTOR == XXH_AVX512
static uint64_t hash_avx512(const void *page)
{
	return XXH3_64bits(page, LMIG_PAGE_SIZE);
}

const page_hash_fn page_hash_avx512 = hash_avx512;
#else
const page_hash_fn page_hash_avx512;
#endif
