// SPDX-License-Identifier: GPL-2.0-only
/*
 * replay: feed `lmig recv` a stream encoded before the clock starts, so
 * that what is measured is the receiver alone, not the sender's reads and
 * lz4 compression.
 *
 *   replay IMAGE HOST:PORT raw|lz4 [CHANNELS]
 *
 * Encodes IMAGE (a multiple of 4 KiB) the way `lmig send --compress
 * none|lz4` does (zero pages as runs, a page kept lz4 only when it saves
 * at least a sixteenth), one frame per 256 consecutive pages, frames dealt
 * to the channels in turn; then connects, sends every channel's stream
 * from a thread of its own and waits for the receiver's verdict.  Prints
 * "encoded BYTES wire_ratio R" and the verdict's status name; exits 0 if
 * the image was committed.  Built by bench/disk-recv.sh against user/.
 */
#include <endian.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chan/codec.h"
#include "chan/wire.h"

#define PAGE	LMIG_PAGE_SIZE

struct chan {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	uint64_t seq, pages, frames;
	pthread_t th;
	int err;
};

static void put(struct chan *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->cap + n) * 2;
		c->buf = realloc(c->buf, c->cap);
		if (!c->buf) {
			perror("replay: realloc");
			exit(1);
		}
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void frame(struct chan *c, uint16_t type, const struct lmig_page_desc *d, unsigned int nd,
		  const void *payload, size_t plen)
{
	struct lmig_frame f = {
		.magic = htole32(LMIG_FRAME_MAGIC), .type = htole16(type),
		.ndesc = htole32(nd), .payload_len = htole32(plen), .seq = htole64(c->seq++),
	};

	f.checksum = htole64(wire_frame_checksum(&f, d, nd));
	put(c, &f, sizeof(f));
	put(c, d, nd * sizeof(*d));
	put(c, payload, plen);
}

static int connect_to(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
	int fd, one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -1;
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = 0;
	if (getaddrinfo(host, colon + 1, &hints, &ai))
		return -1;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int full(int fd, void *p, size_t n, bool wr)
{
	while (n) {
		ssize_t k = wr ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);

		if (k <= 0)
			return -1;
		p = (uint8_t *)p + k;
		n -= k;
	}
	return 0;
}

static void *sender(void *arg)
{
	struct chan *c = arg;

	c->err = full(c->fd, c->buf, c->len, true);
	return NULL;
}

int main(int argc, char **argv)
{
	static uint8_t payload[LMIG_MAX_PAYLOAD];
	struct lmig_page_desc d[LMIG_MAX_FRAME_DESC];
	unsigned int nch = argc > 4 ? atoi(argv[4]) : 2;
	bool lz4;
	struct hello_info hi = { .caps = LMIG_CAPS_V1 };
	struct chan *ch;
	struct stat sb;
	uint64_t npages, *hash, wire = 0;
	uint8_t *img, digest[16];
	struct lmig_result res;
	int fd;

	if (argc < 4 || (strcmp(argv[3], "raw") && strcmp(argv[3], "lz4")) || !nch ||
	    nch > LMIG_MAX_CHANNELS) {
		fprintf(stderr, "usage: replay IMAGE HOST:PORT raw|lz4 [CHANNELS]\n");
		return 2;
	}
	lz4 = !strcmp(argv[3], "lz4");
	codec_init();
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &sb) || !sb.st_size || sb.st_size % PAGE) {
		fprintf(stderr, "replay: %s: not a non-empty multiple of 4 KiB\n", argv[1]);
		return 1;
	}
	img = mmap(NULL, sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	npages = sb.st_size / PAGE;
	hash = calloc(npages, sizeof(*hash));
	ch = calloc(nch, sizeof(*ch));
	if (img == MAP_FAILED || !hash || !ch) {
		perror("replay");
		return 1;
	}
	for (uint64_t first = 0, f = 0; first < npages; first += LMIG_MAX_FRAME_DESC, f++) {
		struct chan *c = &ch[f % nch];
		uint64_t end = first + LMIG_MAX_FRAME_DESC < npages ? first + LMIG_MAX_FRAME_DESC : npages;
		unsigned int nd = 0;
		size_t plen = 0;

		for (uint64_t p = first; p < end; p++) {
			const uint8_t *page = img + p * PAGE;
			unsigned int n;

			hash[p] = codec_page_hash(page);
			if (hash[p] == codec_zero_hash() && codec_page_is_zero(page)) {
				if (nd && le16toh(d[nd - 1].enc) == LMIG_ENC_ZERO &&
				    le64toh(d[nd - 1].index) + le32toh(d[nd - 1].len) == p)
					d[nd - 1].len = htole32(le32toh(d[nd - 1].len) + 1);
				else
					d[nd++] = (struct lmig_page_desc){
						.index = htole64(p), .enc = htole16(LMIG_ENC_ZERO),
						.len = htole32(1), .hash = htole64(hash[p]) };
				continue;
			}
			d[nd] = (struct lmig_page_desc){ .index = htole64(p), .enc = htole16(LMIG_ENC_RAW),
							 .len = htole32(PAGE), .hash = htole64(hash[p]) };
			if (lz4 && (n = codec_lz4_page(page, payload + plen))) {
				d[nd].enc = htole16(LMIG_ENC_LZ4);
				d[nd].len = htole32(n);
				plen += n;
			} else {
				memcpy(payload + plen, page, PAGE);
				plen += PAGE;
			}
			nd++;
		}
		c->pages += end - first;
		c->frames++;
		frame(c, LMIG_FRAME_BATCH, d, nd, payload, plen);
	}
	codec_digest(hash, npages, digest);
	hi.nchannels = nch;
	hi.image_size = sb.st_size;
	getrandom(hi.session, sizeof(hi.session), 0);
	for (unsigned int i = 0; i < nch; i++) {
		struct lmig_end e = { .pages = htole64(ch[i].pages), .frames = htole64(ch[i].frames) };

		memcpy(e.digest, digest, 16);
		frame(&ch[i], LMIG_FRAME_END, NULL, 0, &e, sizeof(e));
		wire += ch[i].len;
	}
	printf("encoded %llu wire_ratio %.4f\n", (unsigned long long)wire, (double)wire / sb.st_size);
	fflush(stdout);
	for (unsigned int i = 0; i < nch; i++) {
		struct lmig_hello h;
		struct lmig_hello_ack a;
		uint32_t caps;

		hi.channel = i;
		wire_hello_build(&h, &hi);
		ch[i].fd = connect_to(argv[2]);
		if (ch[i].fd < 0 || full(ch[i].fd, &h, sizeof(h), true) ||
		    full(ch[i].fd, &a, sizeof(a), false) || wire_ack_parse(&a, &caps)) {
			fprintf(stderr, "replay: channel %u: no hello ack from %s\n", i, argv[2]);
			return 1;
		}
	}
	for (unsigned int i = 0; i < nch; i++)
		pthread_create(&ch[i].th, NULL, sender, &ch[i]);
	for (unsigned int i = 0; i < nch; i++)
		pthread_join(ch[i].th, NULL);
	if (full(ch[0].fd, &res, sizeof(res), false)) {
		fprintf(stderr, "replay: no verdict\n");
		return 1;
	}
	printf("%s\n", wire_status_name(le32toh(res.status)));
	return le32toh(res.status) != LMIG_ST_OK;
}
