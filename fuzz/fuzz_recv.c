// SPDX-License-Identifier: GPL-2.0-only
/*
 * The page receiver (`lmig recv`, user/image/image_recv.c) as it runs: the real
 * image_recv() in a thread, listening on 127.0.0.1 port 0 and writing its
 * image into a private tmpfs directory, fed over loopback TCP by this
 * harness.  Its frame and descriptor decoder, its io_uring receive and
 * write paths, the handshake, the round barrier and the commit are all
 * exercised unchanged.
 *
 * Input: a flags byte, then segments (fuzz/loop.h) that make up each
 * channel's stream: hello, then frames.  Before sending, each stream is
 * walked the way the format says and made consistent with the project's
 * own functions, unless a flag bit says to leave that part alone:
 *
 *   bit 0  hello and frame checksums (wire_checksum, wire_frame_checksum)
 *   bit 1  page hashes in the descriptors (codec_page_hash of the raw
 *          page, of the lz4 or zstd page once decoded; zstd pages only
 *          where channel 0's hello set LMIG_CAP_ZSTD, as the receiver
 *          takes them only then)
 *   bit 2  payload lengths, the counts of END and ROUND frames, round
 *          numbers, and END's image digest (codec_digest)
 *   bit 3  frame sequence numbers
 *   bit 4  TLS: the receiver requires a pre-shared key; each connection
 *          does its handshake and the streams go as records (tls_seal), so
 *          the receiver opens them in place in its receive buffers
 *          (userspace TLS: there is no kTLS on a fuzzing host, nor for
 *          it in a harness that wants the userspace path)
 *
 * The hello's image size is cut to at most 1 MiB and its channel count to
 * 1..4 (how many connections are made), so a run takes milliseconds.
 *
 * Checked after each run, besides the sanitizers: a receiver that fails
 * leaves nothing in its directory (no image, no partial file); one that
 * succeeds leaves exactly the image, of the announced size, and with one
 * channel every page of it hashes to what the stream last sent for that
 * page (the stream is replayed here page by page).
 */
#include <endian.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan/codec.h"
#include "lib/err.h"
#include "loop.h"
#include "chan/tls.h"
#include "chan/wire.h"
#include "image/image.h"

#define MAX_IMAGE	(1U << 20)
#define MAX_PAGES	(MAX_IMAGE / LMIG_PAGE_SIZE)

enum { KEEP_CSUM = 1, KEEP_HASH = 2, KEEP_COUNT = 4, KEEP_SEQ = 8, TLS = 16 };

static char dir[300], out[320];
static struct tls_conf tls_srv, tls_cli;
static bool with_tls;

/* What the stream says the image is, page by page. */
struct model {
	uint64_t image_size, npages;
	unsigned int nchannels;
	bool zstd;			/* channel 0's hello offered LMIG_CAP_ZSTD */
	uint64_t hash[MAX_PAGES];
	size_t end_at[LOOP_MAX_CHANNELS];	/* END payload offset in each stream, 0: none */
};

static void fix_hello(uint8_t *b, unsigned int flags, struct model *m, bool first)
{
	struct lmig_hello h;
	uint64_t sz;
	unsigned int nch;

	memcpy(&h, b, sizeof(h));
	sz = le64toh(h.image_size);
	nch = le16toh(h.nchannels);
	if (sz > MAX_IMAGE)
		h.image_size = htole64(1 + sz % MAX_IMAGE);
	if (nch > LOOP_MAX_CHANNELS) {
		nch = 1 + nch % LOOP_MAX_CHANNELS;
		h.nchannels = htole16(nch);
		h.channel = htole16(le16toh(h.channel) % nch);
	}
	if (!(flags & KEEP_CSUM))
		h.checksum = htole64(wire_checksum(&h, sizeof(h), offsetof(struct lmig_hello, checksum)));
	memcpy(b, &h, sizeof(h));
	if (first) {
		m->image_size = le64toh(h.image_size);
		m->npages = (m->image_size + LMIG_PAGE_SIZE - 1) / LMIG_PAGE_SIZE;
		if (m->npages > MAX_PAGES)
			m->npages = MAX_PAGES;
		m->nchannels = nch;
		m->zstd = le32toh(h.caps) & LMIG_CAP_ZSTD;
	}
}

static void set_hash(struct model *m, uint64_t idx, uint64_t n, uint64_t h)
{
	for (uint64_t p = idx; p < m->npages && p - idx < n; p++)
		m->hash[p] = h;
}

/*
 * The hash of what the image keeps of a page: the last page of an image
 * whose size is not a page multiple is stored only up to the image's end
 * (the bytes beyond are hashed on the wire, but belong to no file).
 */
static uint64_t stored_hash(const struct model *m, uint64_t idx, uint8_t *page)
{
	uint64_t end = m->image_size - idx * LMIG_PAGE_SIZE;

	if (idx < m->npages && end < LMIG_PAGE_SIZE)
		memset(page + end, 0, LMIG_PAGE_SIZE - end);
	return codec_page_hash(page);
}

/* One channel's stream: hello, then frames, fixed up in place. */
static void fix_stream(uint8_t *b, size_t len, unsigned int c, unsigned int flags, struct model *m)
{
	static struct lmig_page_desc d[LMIG_MAX_FRAME_DESC];
	static uint8_t page[LMIG_PAGE_SIZE];
	uint64_t seq = 0, pages = 0, frames = 0, round = 0;
	size_t pos = sizeof(struct lmig_hello);

	if (len < pos)
		return;
	fix_hello(b, flags, m, c == 0);
	while (pos + sizeof(struct lmig_frame) <= len) {
		struct lmig_frame f;
		uint32_t nd, type;
		size_t q;

		memcpy(&f, b + pos, sizeof(f));
		type = le16toh(f.type);
		nd = le32toh(f.ndesc);
		if (!(flags & KEEP_SEQ))
			f.seq = htole64(seq);
		seq++;
		if (type == LMIG_FRAME_BATCH) {
			uint64_t sum = 0;

			q = pos + sizeof(f) + (size_t)nd * sizeof(*d);
			if (nd > LMIG_MAX_FRAME_DESC || q > len)
				break;
			memcpy(d, b + pos + sizeof(f), nd * sizeof(*d));
			for (uint32_t i = 0; i < nd; i++) {
				uint32_t enc = le16toh(d[i].enc), dl = le32toh(d[i].len);
				uint64_t idx = le64toh(d[i].index), h = 0;
				bool have = false;

				if (enc == LMIG_ENC_ZERO) {
					pages += dl;
					set_hash(m, idx, dl, codec_zero_hash());
					continue;
				}
				pages++;
				if (enc == LMIG_ENC_RAW && dl == LMIG_PAGE_SIZE && q + dl <= len) {
					memcpy(page, b + q, LMIG_PAGE_SIZE);
					have = true;
				} else if (enc == LMIG_ENC_LZ4 && dl && dl < LMIG_PAGE_SIZE && q + dl <= len &&
					   !codec_unlz4_page(b + q, dl, page)) {
					have = true;
				} else if (enc == LMIG_ENC_ZSTD && m->zstd && dl && dl < LMIG_PAGE_SIZE &&
					   q + dl <= len && !codec_unzstd_page(b + q, dl, page)) {
					have = true;
				}
				if (have) {
					h = codec_page_hash(page);
					if (!(flags & KEEP_HASH))
						d[i].hash = htole64(h);
					set_hash(m, idx, 1, stored_hash(m, idx, page));
				}
				sum += dl;
				q += dl;
			}
			if (!(flags & KEEP_COUNT) && sum <= LMIG_MAX_PAYLOAD)
				f.payload_len = htole32((uint32_t)sum);
			frames++;
			if (!(flags & KEEP_CSUM))
				f.checksum = htole64(wire_frame_checksum(&f, d, nd));
			memcpy(b + pos, &f, sizeof(f));
			memcpy(b + pos + sizeof(f), d, nd * sizeof(*d));
			pos += sizeof(f) + (size_t)nd * sizeof(*d) + le32toh(f.payload_len);
		} else if (type == LMIG_FRAME_END || type == LMIG_FRAME_ROUND) {
			bool end = type == LMIG_FRAME_END;
			size_t pl = end ? sizeof(struct lmig_end) : sizeof(struct lmig_round);

			if (!(flags & KEEP_COUNT)) {
				f.ndesc = 0;
				f.payload_len = htole32(pl);
			}
			if (!(flags & KEEP_CSUM))
				f.checksum = htole64(wire_frame_checksum(&f, NULL, 0));
			memcpy(b + pos, &f, sizeof(f));
			q = pos + sizeof(f);
			if (end && q + pl <= len) {
				struct lmig_end e;

				memcpy(&e, b + q, sizeof(e));
				if (!(flags & KEEP_COUNT)) {
					e.pages = htole64(pages);
					e.frames = htole64(frames);
					m->end_at[c] = q;
				}
				memcpy(b + q, &e, sizeof(e));
			} else if (!end && q + pl <= len) {
				struct lmig_round r;

				memcpy(&r, b + q, sizeof(r));
				if (!(flags & KEEP_COUNT)) {
					r.round = htole64(round);
					r.pages = htole64(pages);
					r.frames = htole64(frames);
					r.reserved = 0;
				}
				memcpy(b + q, &r, sizeof(r));
				round++;
			}
			pos = q + le32toh(f.payload_len);
		} else {
			break;
		}
	}
}

static int run_recv(void *arg, int ready_fd)
{
	struct image_stats *st = arg;
	struct recv_opts o = {
		.listen = "127.0.0.1:0",
		.out = out,
		.timeout_ms = 500,
		.accept_timeout_ms = 1000,
		.ready_fd = ready_fd,
		.tls = with_tls ? &tls_srv : NULL,
	};

	return image_recv(&o, st);
}

/* With one channel the stream says exactly what each page ends up as. */
static void check_image(const struct model *m)
{
	static uint8_t page[LMIG_PAGE_SIZE];
	struct stat sb;
	int fd = open(out, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &sb) || (uint64_t)sb.st_size != m->image_size) {
		fprintf(stderr, "fuzz_recv: verified image missing or of the wrong size\n");
		abort();
	}
	for (uint64_t p = 0; p < m->npages && m->nchannels == 1; p++) {
		ssize_t n = pread(fd, page, sizeof(page), (off_t)(p * LMIG_PAGE_SIZE));

		if (n < 0)
			abort();
		memset(page + n, 0, sizeof(page) - n);
		if (codec_page_hash(page) != m->hash[p]) {
			fprintf(stderr, "fuzz_recv: page %llu of the verified image is not what was sent last\n",
				(unsigned long long)p);
			abort();
		}
	}
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	loop_setup();
	const char *top = loop_tmpdir("fuzz-recv");

	loop_tls_confs(top, &tls_srv, &tls_cli);
	/* The receiver's directory holds nothing else: what it leaves is seen. */
	snprintf(dir, sizeof(dir), "%s/out", top);
	if (mkdir(dir, 0700))
		abort();
	snprintf(out, sizeof(out), "%s/img", dir);
	codec_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static struct model m;
	struct image_stats st = { 0 };
	struct loop_thread t;
	struct loop_in in;
	unsigned int flags, nconn;
	int fds[LOOP_MAX_CHANNELS], port, rc;
	struct tls_chan tc[LOOP_MAX_CHANNELS];

	if (!n)
		return 0;
	flags = data[0];
	loop_split(data + 1, n - 1, &in);
	memset(&m, 0, sizeof(m));
	for (unsigned int c = 0; c < LOOP_MAX_CHANNELS; c++)
		fix_stream(in.buf[c], in.len[c], c, flags, &m);
	if (!(flags & KEEP_COUNT)) {
		uint8_t digest[16];

		codec_digest(m.hash, m.npages, digest);
		for (unsigned int c = 0; c < LOOP_MAX_CHANNELS; c++)
			if (m.end_at[c])
				memcpy(in.buf[c] + m.end_at[c] + offsetof(struct lmig_end, digest), digest, 16);
	}
	nconn = m.nchannels ? m.nchannels : 1;
	lmig_err_clear();
	with_tls = flags & TLS;
	port = loop_start(&t, run_recv, &st);
	if (port > 0 && with_tls)
		loop_send_tls(&in, port, nconn, fds, &tls_cli, tc);
	else if (port > 0)
		loop_send(&in, port, nconn, fds);
	rc = loop_join(&t);
	if (port > 0)
		loop_close(fds, nconn);
	if (port > 0 && with_tls)
		loop_close_tls(tc, nconn);
	/* FUZZ_VERBOSE=1: what the receiver made of each input (corpus checks). */
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_recv: %s\n", rc ? lmig_errmsg() : "ok");
	if (port <= 0) {
		fprintf(stderr, "fuzz_recv: the receiver did not start: %s\n", lmig_errmsg());
		abort();
	}
	if (rc == 0) {
		check_image(&m);
		unlink(out);
	} else if (!lmig_has_err()) {
		fprintf(stderr, "fuzz_recv: the receiver failed without saying why\n");
		abort();
	}
	if (!loop_dir_only(dir, NULL)) {
		fprintf(stderr, "fuzz_recv: the receiver %sleft files behind in %s\n", rc ? "failed and " : "",
			dir);
		abort();
	}
	free(st.round);
	loop_free(&in);
	return 0;
}
