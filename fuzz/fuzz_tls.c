// SPDX-License-Identifier: GPL-2.0-only
/*
 * The userspace TLS record path (user/chan/tls_record.c): tls_seal() on one end,
 * tls_open_feed()/tls_open_read() (the receivers' path) or
 * tls_open_msgs() (the sender reading replies) on the other.
 *
 * Every input gets a real session: tls_handshake() on both ends of a
 * socketpair (the sender's in a thread), with a pre-shared key, exactly
 * as lmig's channels do it.  A unix socket never takes kTLS, so both
 * directions go through tls_record.c's own BIOs.  Then the input is a program:
 *
 *   byte 0   bit 0: direction (0: sender seals, receiver opens with
 *            tls_open_feed/read; 1: receiver seals 120-byte replies, the
 *            sender opens them with tls_open_msgs); bit 1: open in place,
 *            as image_recv.c does (plaintext written TLS_SLACK before the
 *            records still to be read, in the same buffer)
 *   ops      u8 op, le16 arg, then per op:
 *            0 SEAL  arg bytes of plaintext follow: sealed onto the wire
 *            1 FLIP  one byte x follows: wire[arg % length] ^= x
 *            2 FEED  le16 cap follows: the next arg bytes of the wire (all
 *                    that is left if arg is 0) are fed, then opened into
 *                    cap + 1 bytes at a time until nothing more opens
 *            3 JUNK  arg raw bytes follow, appended to the wire
 *
 * At the end the rest of the wire is fed.  The oracle: while the wire is
 * untouched (no FLIP or JUNK), what opens is exactly what was sealed, in
 * order, and nothing fails; once it is touched anything may fail, but
 * only with an error, and nothing that was not sealed ever comes out
 * (AEAD).  Buffers are exact-size heap blocks, so ASan sees a byte read
 * or written past them, or the fed buffer used after it was released.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/err.h"
#include "loop.h"
#include "chan/tls.h"

#define SLACK		(32 * 1024)	/* image_recv.c's TLS_SLACK */
#define MSG_LEN		sizeof(struct lmig_result)
#define WIRE_MAX	(4 << 20)

static struct tls_conf srv, cli;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	loop_setup();
	loop_tls_confs(loop_tmpdir("fuzz-tls"), &srv, &cli);
	return 0;
}

struct side {
	int fd;
	struct tls_chan t;
	int rc;
};

static void *client(void *arg)
{
	struct side *s = arg;

	s->rc = tls_handshake(&cli, s->fd, 5000, "fuzz server", &s->t);
	return NULL;
}

struct run {
	struct tls_chan *seal, *open;
	bool to_msgs, inplace, touched, failed;
	uint8_t *wire;
	size_t wlen, wpos;
	uint8_t *sealed;		/* plaintext sealed so far */
	size_t slen, olen;		/* sealed, opened */
	size_t have;			/* tls_open_msgs: bytes of the message so far */
	uint8_t msg[MSG_LEN];
};

static void opened(struct run *r, const uint8_t *p, size_t n)
{
	/* AEAD: whatever opens was sealed, touched wire or not. */
	if (!n)
		return;
	if (r->olen + n > r->slen || memcmp(r->sealed + r->olen, p, n)) {
		fprintf(stderr, "fuzz_tls: %zu bytes opened at %zu that were never sealed there\n", n,
			r->olen);
		abort();
	}
	r->olen += n;
}

static int got_msg(void *arg)
{
	struct run *r = arg;

	opened(r, r->msg, MSG_LEN);
	return 0;
}

static void feed(struct run *r, size_t n, size_t cap)
{
	uint8_t *in, *buf = NULL, *out;
	ssize_t k;

	if (r->failed)
		return;
	if (!n || n > r->wlen - r->wpos)
		n = r->wlen - r->wpos;
	if (!r->wire)
		r->wire = malloc(1);	/* feeding nothing is still a feed */
	if (r->to_msgs) {
		bool stop = false;

		in = malloc(n ? n : 1);
		memcpy(in, r->wire + r->wpos, n);
		r->wpos += n;
		if (tls_open_msgs(r->open, in, n, r->msg, MSG_LEN, &r->have, &stop, got_msg, r))
			r->failed = true;
		free(in);
		return;
	}
	if (r->inplace) {
		/* One receive buffer: records at SLACK, plaintext from its start. */
		buf = malloc(SLACK + n);
		in = buf + SLACK;
	} else {
		in = malloc(n ? n : 1);
	}
	memcpy(in, r->wire + r->wpos, n);
	r->wpos += n;
	if (tls_open_feed(r->open, in, n)) {
		r->failed = true;
	} else if (r->inplace) {
		k = tls_open_read(r->open, buf, SLACK + n);
		if (k < 0)
			r->failed = true;
		else if ((size_t)k > SLACK + n)
			abort();
		else
			opened(r, buf, k);
	} else {
		out = malloc(cap);
		while ((k = tls_open_read(r->open, out, cap)) > 0) {
			if ((size_t)k > cap)
				abort();
			opened(r, out, k);
		}
		if (k < 0)
			r->failed = true;
		free(out);
	}
	free(buf ? buf : in);
	if (r->failed && !r->touched) {
		fprintf(stderr, "fuzz_tls: an untouched record failed to open: %s\n", lmig_errmsg());
		abort();
	}
}

static void add_wire(struct run *r, const void *p, size_t n)
{
	if (!n || r->wlen + n > WIRE_MAX)
		return;
	r->wire = realloc(r->wire, r->wlen + n);
	memcpy(r->wire + r->wlen, p, n);
	r->wlen += n;
}

static void seal(struct run *r, const uint8_t *p, size_t n)
{
	size_t cap = tls_seal_bound(n);
	uint8_t *out = malloc(cap);
	ssize_t k = tls_seal(r->seal, p, n, out, cap);

	if (k < 0 || (size_t)k > cap) {
		fprintf(stderr, "fuzz_tls: sealing %zu bytes failed: %s\n", n, lmig_errmsg());
		abort();
	}
	add_wire(r, out, k);
	r->sealed = realloc(r->sealed, r->slen + n + 1);
	memcpy(r->sealed + r->slen, p, n);
	r->slen += n;
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct side s = { .fd = -1 }, c = { .fd = -1 };
	struct run r = { 0 };
	pthread_t thr;
	int sv[2];

	if (!n)
		return 0;
	lmig_err_clear();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	s.fd = sv[0];
	c.fd = sv[1];
	pthread_create(&thr, NULL, client, &c);
	s.rc = tls_handshake(&srv, s.fd, 5000, "fuzz client", &s.t);
	pthread_join(thr, NULL);
	if (s.rc || c.rc || !s.t.rmem || !s.t.wmem || !c.t.rmem || !c.t.wmem) {
		fprintf(stderr, "fuzz_tls: no userspace session: %s\n", lmig_errmsg());
		abort();
	}
	r.to_msgs = d[0] & 1;
	r.inplace = d[0] & 2;
	r.seal = r.to_msgs ? &s.t : &c.t;
	r.open = r.to_msgs ? &c.t : &s.t;
	d++, n--;
	while (n >= 3) {
		unsigned int op = d[0] % 4, arg = d[1] | d[2] << 8;
		uint8_t msg[MSG_LEN];

		d += 3, n -= 3;
		switch (op) {
		case 0:
			if (arg > n)
				arg = n;
			if (r.to_msgs) {
				/* The sender reads whole replies: seal them whole. */
				for (unsigned int i = 0; i < arg; i += MSG_LEN) {
					memset(msg, 0, sizeof(msg));
					memcpy(msg, d + i, arg - i < MSG_LEN ? arg - i : MSG_LEN);
					seal(&r, msg, MSG_LEN);
				}
			} else {
				seal(&r, d, arg);
			}
			d += arg, n -= arg;
			break;
		case 1:
			if (n && r.wlen > r.wpos && d[0]) {
				r.wire[r.wpos + arg % (r.wlen - r.wpos)] ^= d[0];
				r.touched = true;
			}
			d += !!n, n -= !!n;
			break;
		case 2:
			if (n >= 2) {
				feed(&r, arg, 1 + (d[0] | d[1] << 8));
				d += 2, n -= 2;
			}
			break;
		case 3:
			if (arg > n)
				arg = n;
			add_wire(&r, d, arg);
			r.touched |= arg > 0;
			d += arg, n -= arg;
			break;
		}
	}
	feed(&r, 0, 1 << 16);
	if (!r.touched && (r.olen != r.slen || (r.to_msgs && r.have))) {
		fprintf(stderr, "fuzz_tls: %zu bytes sealed, %zu opened\n", r.slen, r.olen);
		abort();
	}
	tls_chan_free(&s.t);
	tls_chan_free(&c.t);
	close(sv[0]);
	close(sv[1]);
	free(r.wire);
	free(r.sealed);
	return 0;
}
