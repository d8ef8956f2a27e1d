/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * xxHash from Debian's libxxhash-dev, inlined: page hashing is on the hot
 * path of both engines and the inline XXH3 lets the compiler specialise it
 * for the constant page size.
 */
#ifndef LMIG_XXH_H
#define LMIG_XXH_H

#define XXH_INLINE_ALL
#include <xxhash.h>

#endif
