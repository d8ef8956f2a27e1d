// SPDX-License-Identifier: GPL-2.0-only
/*
 * halfzero SRC OUT SIZE
 *
 * Writes the "half-zero" benchmark image: SIZE bytes in which runs of 16
 * zero pages (64 KiB) alternate with runs of 16 non-zero pages taken in
 * order from SRC (wrapping around at its end).  The zero pages of SRC are
 * skipped, so exactly half of the 4 KiB pages of OUT are zero, no more.
 * SIZE must be a multiple of 128 KiB so that the last run is complete.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096
#define RUN 16 /* pages per run: 64 KiB */

static const char *src_path;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "halfzero: %s %s: %s\n", what, path, errno ? strerror(errno) : "failed");
	exit(1);
}

static int is_zero(const unsigned char *p)
{
	static const unsigned char zero[PAGE];

	return !memcmp(p, zero, PAGE);
}

/* Next non-zero page of SRC into buf; rewinds at the end, fails if SRC has none. */
static void next_data_page(FILE *src, unsigned char *buf)
{
	int rewound = 0;

	for (;;) {
		size_t n = fread(buf, 1, PAGE, src);

		if (n == PAGE) {
			if (!is_zero(buf))
				return;
			continue;
		}
		if (ferror(src))
			die("read", src_path);
		/* End of SRC (a partial last page is ignored): start over once. */
		if (rewound) {
			errno = 0;
			die("no non-zero page in", src_path);
		}
		rewind(src);
		rewound = 1;
	}
}

int main(int argc, char **argv)
{
	static const unsigned char zero[PAGE];
	unsigned char buf[PAGE];
	unsigned long long size, pages;
	char *end;
	FILE *src, *out;

	if (argc != 4) {
		fprintf(stderr, "usage: halfzero SRC OUT SIZE\n");
		return 2;
	}
	src_path = argv[1];
	errno = 0;
	size = strtoull(argv[3], &end, 10);
	if (errno || *end || !size || size % (2 * RUN * PAGE)) {
		fprintf(stderr, "halfzero: SIZE must be a positive multiple of %d bytes\n",
			2 * RUN * PAGE);
		return 2;
	}
	src = fopen(argv[1], "rb");
	if (!src)
		die("open", argv[1]);
	out = fopen(argv[2], "wb");
	if (!out)
		die("create", argv[2]);

	pages = size / PAGE;
	for (unsigned long long i = 0; i < pages; i++) {
		const unsigned char *p = zero;

		/* Data first, then zeros: page i is zero iff its run number is odd. */
		if (!((i / RUN) & 1)) {
			next_data_page(src, buf);
			p = buf;
		}
		if (fwrite(p, 1, PAGE, out) != PAGE)
			die("write", argv[2]);
	}
	if (fclose(out))
		die("write", argv[2]);
	fclose(src);
	return 0;
}
