// SPDX-License-Identifier: GPL-2.0-only
/*
 * Which build of the page hash runs (page_hash.h).  This file is built for
 * the baseline: it runs before anything knows what the CPU has.
 */
#include <stdbool.h>

#include <lmig/wire.h>

#include "lib/xxh.h"
#include "chan/page_hash.h"

page_hash_fn page_hash_picked = page_hash_generic;

uint64_t page_hash_generic(const void *page)
{
	return XXH3_64bits(page, LMIG_PAGE_SIZE);
}

bool page_hash_cpu_has(page_hash_fn f)
{
	if (!f)
		return false;
#if defined(__x86_64__)
	/* Also checks that the kernel saves the wider registers (XCR0). */
	__builtin_cpu_init();
	if (f == page_hash_avx512)
		return __builtin_cpu_supports("avx512f");
	if (f == page_hash_avx2)
		return __builtin_cpu_supports("avx2");
#endif
	return f == page_hash_generic;
}

/*
 * AVX-512 first: it hashes pages in the cache (the sender's and the
 * receiver's) faster than AVX2, and memory no slower
 * (Documentation/benchmarks.md, "Dirty trackers").
 */
page_hash_fn page_hash_pick(void)
{
	if (page_hash_cpu_has(page_hash_avx512))
		return page_hash_avx512;
	if (page_hash_cpu_has(page_hash_avx2))
		return page_hash_avx2;
	return page_hash_generic;
}

/* Before main(): threads hash pages without any set-up call first. */
__attribute__((constructor)) static void page_hash_init(void)
{
	page_hash_picked = page_hash_pick();
}
