// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stream sender's side of channel 0 (`lmig proxy send`,
 * user/stream/stream_send_ret.c): what a destination sends back, replies
 * (CREDIT, VERDICT) and return frames (RDATA, REND), parsed by the real
 * stream_send() in a thread.  This harness plays the destination lmig:
 * it accepts the channel, answers the hello (granting LMIG_CAP_RETURN
 * unless flag bit 4 says not to), connects one client to the sender as
 * QEMU would, sends 10 bytes on it and ends its half, waits for the
 * stream's OPEN, then sends the input on channel 0 and ends its half.
 *
 * Input: a flags byte, then messages one after the other, each told by
 * its magic ("MGSR": a 128-byte reply, "MGSF": a 56-byte frame header and
 * its len payload bytes, cut at the end of the input); anything else is
 * sent as it is up to the end.  Unless a flag bit says to leave it:
 *
 *   bit 0  checksums of replies and frames
 *   bit 1  RDATA hashes (XXH3-64 of the payload)
 *   bit 2  REND digests (XXH3-128 of the stream's RDATA payloads so far)
 *   bit 3  return frame sequence numbers
 *   bit 4  the ack does not grant LMIG_CAP_RETURN
 *
 * Checked after each run, besides the sanitizers: a sender that fails
 * says why, and the client never gets more bytes back than the input's
 * RDATA payloads carried.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "lib/err.h"
#include "loop.h"
#include "chan/wire.h"
#include "stream/stream.h"
#include "lib/xxh.h"

enum { KEEP_CSUM = 1, KEEP_HASH = 2, KEEP_DIGEST = 4, KEEP_SEQ = 8, NO_RETURN = 16 };

#define SF	sizeof(struct lmig_sframe)
#define SR	sizeof(struct lmig_sreply)

static int lfd = -1, lport;

static int tcp_listen(int *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16) ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl))
		abort();
	*port = ntohs(sa.sin_port);
	return fd;
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, ms) == 1 ? 0 : -1;
}

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t k;

		if (wait_fd(fd, POLLIN, 2000))
			return -1;
		k = read(fd, p, n);
		if (k <= 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t k;

		if (wait_fd(fd, POLLOUT, 2000))
			return -1;
		k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		p += k;
		n -= k;
	}
	return 0;
}

/* The destination lmig: the channel's hello answered. */
struct peer {
	pthread_t thr;
	bool grant;
	int fd;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	struct lmig_hello h;
	struct lmig_hello_ack a;

	if (wait_fd(lfd, POLLIN, 5000))
		return NULL;
	p->fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (p->fd < 0 || read_full(p->fd, &h, sizeof(h)))
		return NULL;
	wire_ack_build(&a, LMIG_CAP_STREAM | (p->grant ? LMIG_CAP_RETURN : 0), LMIG_ST_OK, NULL);
	write_full(p->fd, &a, sizeof(a));
	return NULL;
}

struct srun {
	struct stream_send_opts o;
	struct stream_stats st;
};

static int run_send(void *arg, int ready_fd)
{
	struct srun *r = arg;

	r->o.ready_fd = ready_fd;
	return stream_send(&r->o, &r->st);
}

/* Make the messages consistent, as the flags say; the RDATA bytes a client may get. */
static size_t fix_input(uint8_t *b, size_t len, unsigned int flags)
{
	XXH3_state_t dig[4];
	uint64_t seq = 0;
	size_t pos = 0, back = 0;

	for (int i = 0; i < 4; i++)
		XXH3_128bits_reset(&dig[i]);
	while (pos + 4 <= len) {
		uint32_t magic;

		memcpy(&magic, b + pos, 4);
		if (le32toh(magic) == LMIG_SREPLY_MAGIC && pos + SR <= len) {
			struct lmig_sreply r;

			memcpy(&r, b + pos, SR);
			if (!(flags & KEEP_CSUM)) {
				r.checksum = 0;
				r.checksum = htole64(XXH3_64bits(&r, SR));
			}
			memcpy(b + pos, &r, SR);
			pos += SR;
		} else if (le32toh(magic) == LMIG_SFRAME_MAGIC && pos + SF <= len) {
			struct lmig_sframe f;
			uint32_t n, s;
			const uint8_t *p = b + pos + SF;

			memcpy(&f, b + pos, SF);
			n = le32toh(f.len);
			if (n > len - pos - SF)
				n = len - pos - SF;	/* cut: the sender waits for the rest */
			s = le32toh(f.stream) % 4;
			if (!(flags & KEEP_SEQ))
				f.seq = htole64(seq);
			seq++;
			if (le16toh(f.type) == LMIG_SF_RDATA && n == le32toh(f.len)) {
				if (!(flags & KEEP_HASH))
					f.hash = htole64(XXH3_64bits(p, n));
				XXH3_128bits_update(&dig[s], p, n);
				back += n;
			} else if (le16toh(f.type) == LMIG_SF_REND && n == 16 && !(flags & KEEP_DIGEST)) {
				XXH128_canonical_t c;

				XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&dig[s]));
				memcpy(b + pos + SF, c.digest, 16);
			}
			if (!(flags & KEEP_CSUM)) {
				f.checksum = 0;
				f.checksum = htole64(XXH3_64bits(&f, SF));
			}
			memcpy(b + pos, &f, SF);
			pos += SF + n;
		} else {
			break;
		}
	}
	return back;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	loop_setup();
	lfd = tcp_listen(&lport);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static char to[32];
	struct peer peer = { .fd = -1 };
	struct srun r = { 0 };
	struct loop_thread t;
	struct lmig_sframe f;
	uint8_t *in, got[4096], pay[LMIG_STREAM_BLOCK_MAX];
	unsigned int flags;
	size_t len, back, have = 0;
	int cport, cl = -1, rc;

	if (!n)
		return 0;
	flags = data[0];
	len = n - 1;
	in = malloc(len + 1);
	if (!in)
		abort();
	memcpy(in, data + 1, len);
	back = fix_input(in, len, flags);
	snprintf(to, sizeof(to), "127.0.0.1:%d", lport);
	r.o = (struct stream_send_opts){
		.from = { .kind = SEP_TCP, .addr = "127.0.0.1:0" },
		.to = to, .channels = 1, .compress = COMPRESS_NONE, .timeout_ms = 500, .streams = 1,
		.grace_ms = 50, .accept_timeout_ms = 2000, .zerocopy = 0,
	};
	peer.grant = !(flags & NO_RETURN);
	if (pthread_create(&peer.thr, NULL, peer_main, &peer))
		abort();
	lmig_err_clear();
	cport = loop_start(&t, run_send, &r);
	pthread_join(peer.thr, NULL);
	if (cport > 0) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(cport),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

		cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (cl < 0 || connect(cl, (struct sockaddr *)&sa, sizeof(sa)))
			abort();
		write_full(cl, "0123456789", 10);
		shutdown(cl, SHUT_WR);
	}
	/* The source's frames until the connection's OPEN, then the input. */
	while (peer.fd >= 0 && !read_full(peer.fd, &f, sizeof(f)) &&
	       le32toh(f.len) <= sizeof(pay) && !read_full(peer.fd, pay, le32toh(f.len)))
		if (le16toh(f.type) == LMIG_SF_OPEN) {
			write_full(peer.fd, in, len);
			shutdown(peer.fd, SHUT_WR);
			break;
		}
	/* What the client gets back, until the sender ends it. */
	while (cl >= 0 && have < sizeof(got) && !wait_fd(cl, POLLIN, 3000)) {
		ssize_t k = read(cl, got + have, sizeof(got) - have);

		if (k <= 0)
			break;
		have += k;
	}
	if (peer.fd >= 0)
		shutdown(peer.fd, SHUT_RDWR);
	rc = cport > 0 ? loop_join(&t) : t.rc;
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_stream_back: %s (%zu bytes back)\n", rc ? lmig_errmsg() : "ok",
			have);
	if (cport <= 0) {
		fprintf(stderr, "fuzz_stream_back: the sender did not start: %s\n", lmig_errmsg());
		abort();
	}
	if (rc && !lmig_has_err()) {
		fprintf(stderr, "fuzz_stream_back: the sender failed without saying why\n");
		abort();
	}
	if (have > back) {
		fprintf(stderr, "fuzz_stream_back: the client got %zu bytes back, the input returned %zu\n",
			have, back);
		abort();
	}
	if (cl >= 0)
		close(cl);
	if (peer.fd >= 0)
		close(peer.fd);
	free(in);
	return 0;
}
