// SPDX-License-Identifier: GPL-2.0-only
/*
 * The stream receiver (`lmig proxy recv` and `lmig pipe recv`,
 * user/stream/stream_recv.c) as it runs: the real stream_recv() in a thread,
 * listening on 127.0.0.1 port 0, fed over loopback TCP by this harness.
 * Its destinations are drained by a thread here: with flag bit 4 clear
 * they are connections to a unix socket (proxy: one per stream), with it
 * set stdout is a pipe (pipe: one stream).  A connection shuts its
 * writing half once its stream ended, as QEMU's destination does, and
 * when the first hello asks for LMIG_CAP_RETURN it says something back as
 * it is accepted: the return direction is carried too (RDATA, REND;
 * RCREDIT from the input).
 *
 * Input: a flags byte, then segments (fuzz/loop.h) making up each
 * channel's stream: hello, then frames.  Each stream is made consistent
 * before sending, unless a flag bit says to leave that part alone:
 *
 *   bit 0  hello and frame checksums (wire_checksum)
 *   bit 1  DATA block hashes (XXH3-64 of the block, decoded if lz4)
 *   bit 2  END digests (XXH3-128 of the stream as its DATA blocks put
 *          it together) and DONE's frame counts
 *   bit 3  frame sequence numbers
 *   bit 4  pipe mode (stdout) instead of proxy mode (unix socket)
 *   bit 5  TLS with a pre-shared key (userspace records, see fuzz_recv.c)
 *
 * The hello's channel count is cut to 1..4 (the connections made).
 *
 * Checked after each run, besides the sanitizers: a receiver that fails
 * says why; one that succeeds delivered, in stream order, one
 * destination connection per stream (pipe: one), each carrying exactly
 * the bytes its DATA blocks put together up to its END.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/err.h"
#include "loop.h"
#include "stream/resume_buf.h"
#include "stream/stream.h"
#include "chan/tls.h"
#include "chan/wire.h"
#include "lib/xxh.h"

enum { KEEP_CSUM = 1, KEEP_HASH = 2, KEEP_COUNT = 4, KEEP_SEQ = 8, PIPE = 16, TLS = 32 };

#define MODEL_STREAMS	16
#define MODEL_MAX	(8U << 20)	/* stream bytes the model keeps */
#define MAX_DEST	(LMIG_STREAM_MAX + 8)

static char sock_path[300];
static int lfd = -1;
static struct tls_conf tls_srv, tls_cli;

/* What the frames say each stream is. */
struct model {
	unsigned int nchannels;
	bool ret;			/* the first hello asks for LMIG_CAP_RETURN */
	uint8_t *data[MODEL_STREAMS];
	uint64_t len[MODEL_STREAMS];	/* bytes set so far (the highest end) */
	uint64_t end[MODEL_STREAMS];	/* END's length */
	bool over[MODEL_STREAMS];	/* beyond what the model keeps */
};

static void model_put(struct model *m, uint32_t s, uint64_t off, const uint8_t *p, uint32_t n)
{
	if (s >= MODEL_STREAMS || m->over[s])
		return;
	if (off > MODEL_MAX || n > MODEL_MAX - off) {
		m->over[s] = true;
		return;
	}
	if (off + n > m->len[s]) {
		m->data[s] = realloc(m->data[s], off + n);
		memset(m->data[s] + m->len[s], 0, off + n - m->len[s]);
		m->len[s] = off + n;
	}
	memcpy(m->data[s] + off, p, n);
}

static void fix_hello(uint8_t *b, unsigned int flags, struct model *m, bool first)
{
	struct lmig_hello h;
	unsigned int nch;

	memcpy(&h, b, sizeof(h));
	nch = le16toh(h.nchannels);
	if (nch > LOOP_MAX_CHANNELS) {
		nch = 1 + nch % LOOP_MAX_CHANNELS;
		h.nchannels = htole16(nch);
		h.channel = htole16(le16toh(h.channel) % nch);
	}
	if (!(flags & KEEP_CSUM))
		h.checksum = htole64(wire_checksum(&h, sizeof(h), offsetof(struct lmig_hello, checksum)));
	memcpy(b, &h, sizeof(h));
	if (first) {
		m->nchannels = nch;
		m->ret = le32toh(h.caps) & LMIG_CAP_RETURN;
	}
}

#define SF sizeof(struct lmig_sframe)

/* Pass 1: the frames of one channel, fixed up but for END digests; DATA into the model. */
static void fix_stream(uint8_t *b, size_t len, unsigned int c, unsigned int flags, struct model *m,
		       uint8_t *blk)
{
	uint64_t seq = 0;
	size_t pos = sizeof(struct lmig_hello);

	if (len < pos)
		return;
	fix_hello(b, flags, m, c == 0);
	while (pos + SF <= len) {
		struct lmig_sframe f;
		uint32_t n, raw, type, s;

		memcpy(&f, b + pos, SF);
		type = le16toh(f.type);
		n = le32toh(f.len);
		raw = le32toh(f.raw_len);
		s = le32toh(f.stream);
		if (!(flags & KEEP_SEQ))
			f.seq = htole64(seq);
		if (type == LMIG_SF_DONE && !(flags & KEEP_COUNT))
			f.offset = htole64(seq);
		seq++;
		if (pos + SF + n > len)
			n = 0;		/* truncated: leave it */
		if (type == LMIG_SF_DATA && n && raw && raw <= LMIG_STREAM_BLOCK_MAX) {
			const uint8_t *p = b + pos + SF;
			bool ok = true;

			if (le16toh(f.flags) & LMIG_SF_LZ4) {
				ok = LZ4_decompress_safe((const char *)p, (char *)blk, (int)n, (int)raw) == (int)raw;
				p = blk;
			} else {
				ok = n == raw;
			}
			if (ok) {
				if (!(flags & KEEP_HASH))
					f.hash = htole64(XXH3_64bits(p, raw));
				model_put(m, s, le64toh(f.offset), p, raw);
			}
		} else if (type == LMIG_SF_END && s < MODEL_STREAMS) {
			m->end[s] = le64toh(f.offset);
		}
		if (!(flags & KEEP_CSUM))
			f.checksum = htole64(wire_checksum(&f, SF, offsetof(struct lmig_sframe, checksum)));
		memcpy(b + pos, &f, SF);
		pos += SF + le32toh(f.len);
	}
}

/* Pass 2: END digests over the streams as the model has them. */
static void fix_ends(uint8_t *b, size_t len, const struct model *m)
{
	size_t pos = sizeof(struct lmig_hello);

	while (pos + SF <= len) {
		struct lmig_sframe f;
		uint32_t s;

		memcpy(&f, b + pos, SF);
		s = le32toh(f.stream);
		if (le16toh(f.type) == LMIG_SF_END && le32toh(f.len) == 16 && pos + SF + 16 <= len &&
		    s < MODEL_STREAMS && !m->over[s] && m->end[s] <= m->len[s]) {
			XXH128_canonical_t cd;

			XXH128_canonicalFromHash(&cd, XXH3_128bits(m->data[s] ? m->data[s] : (uint8_t *)"",
								   m->end[s]));
			memcpy(b + pos + SF, cd.digest, 16);
		}
		pos += SF + le32toh(f.len);
	}
}

/* ---- the destinations ----------------------------------------------------- */

struct dest {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	bool eof, reset;
};

struct drain {
	pthread_t thr;
	int listen_fd;		/* -1 in pipe mode */
	int pipe_fd;		/* pipe mode: the read end */
	int stop[2];
	struct dest d[MAX_DEST];
	unsigned int nd;
	bool talk;		/* the streams go both ways: say something back */
};

static void dest_read(struct dest *d)
{
	uint8_t tmp[65536];
	ssize_t k = read(d->fd, tmp, sizeof(tmp));

	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k <= 0) {
		d->eof = true;
		d->reset = k < 0;
		/* The return direction ends (a pipe has none). */
		shutdown(d->fd, SHUT_WR);
		return;
	}
	if (d->len + k > d->cap) {
		d->cap = 2 * (d->len + k);
		d->buf = realloc(d->buf, d->cap);
	}
	memcpy(d->buf + d->len, tmp, k);
	d->len += k;
}

static void *drain_main(void *arg)
{
	struct drain *dr = arg;
	bool stopping = false;

	for (;;) {
		struct pollfd p[MAX_DEST + 2];
		unsigned int np = 0, open_n = 0;

		p[np++] = (struct pollfd){ .fd = dr->stop[0], .events = POLLIN };
		p[np++] = (struct pollfd){ .fd = dr->listen_fd, .events = POLLIN };
		for (unsigned int i = 0; i < dr->nd; i++) {
			p[np++] = (struct pollfd){ .fd = dr->d[i].eof ? -1 : dr->d[i].fd, .events = POLLIN };
			open_n += !dr->d[i].eof;
		}
		/* After the receiver returned: every destination it had is closed. */
		if (stopping && !open_n)
			break;
		if (poll(p, np, stopping ? 100 : -1) <= 0) {
			if (stopping)
				break;
			continue;
		}
		if (p[0].revents)
			stopping = true;
		if (p[1].revents && dr->nd < MAX_DEST) {
			int fd = accept4(dr->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				/*
				 * Like QEMU's PONG, only when the receiver reads it:
				 * bytes left unread make a unix socket's close a reset.
				 */
				if (dr->talk &&
				    send(fd, "return", 6, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
					(void)0;
				dr->d[dr->nd++] = (struct dest){ .fd = fd };
			}
		}
		for (unsigned int i = 0; i < dr->nd; i++)
			if (p[2 + i].revents)
				dest_read(&dr->d[i]);
	}
	/* Connections the receiver opened but nobody accepted yet count too. */
	for (int fd; dr->listen_fd >= 0 && dr->nd < MAX_DEST &&
		     (fd = accept4(dr->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;) {
		dr->d[dr->nd] = (struct dest){ .fd = fd };
		while (!dr->d[dr->nd].eof)
			dest_read(&dr->d[dr->nd]);
		dr->nd++;
	}
	return NULL;
}

/* ---- a run ------------------------------------------------------------------ */

struct srun {
	struct stream_recv_opts o;
	struct stream_stats st;
};

static int run_stream(void *arg, int ready_fd)
{
	struct srun *r = arg;

	r->o.ready_fd = ready_fd;
	return stream_recv(&r->o, &r->st);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *dir;

	loop_setup();
	dir = loop_tmpdir("fuzz-stream");
	snprintf(sock_path, sizeof(sock_path), "%s/dst.sock", dir);
	loop_tls_confs(dir, &tls_srv, &tls_cli);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 512))
		abort();
	return 0;
}

static void check_delivery(const struct model *m, const struct drain *dr, unsigned int streams)
{
	if (dr->nd != streams) {
		fprintf(stderr, "fuzz_stream: %u streams ended whole, %u destinations were opened\n",
			streams, dr->nd);
		abort();
	}
	for (unsigned int i = 0; i < dr->nd; i++) {
		const struct dest *d = &dr->d[i];

		if (i >= MODEL_STREAMS || m->over[i])
			continue;
		if (d->reset || d->len != m->end[i] || (d->len && memcmp(d->buf, m->data[i], d->len))) {
			fprintf(stderr, "fuzz_stream: stream %u was delivered as %zu bytes%s, not the %llu its blocks make\n",
				i, d->len, d->reset ? " and reset" : "", (unsigned long long)m->end[i]);
			abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static struct model m;
	static uint8_t blk[LMIG_STREAM_BLOCK_MAX];
	struct srun r = { 0 };
	struct drain dr = { .listen_fd = -1, .pipe_fd = -1 };
	struct loop_thread t;
	struct loop_in in;
	unsigned int flags, nconn;
	int fds[LOOP_MAX_CHANNELS], port, rc, saved_out = -1;
	struct tls_chan tc[LOOP_MAX_CHANNELS];

	if (!n)
		return 0;
	flags = data[0];
	loop_split(data + 1, n - 1, &in);
	memset(&m, 0, sizeof(m));
	for (unsigned int c = 0; c < LOOP_MAX_CHANNELS; c++)
		fix_stream(in.buf[c], in.len[c], c, flags, &m, blk);
	if (!(flags & KEEP_COUNT))
		for (unsigned int c = 0; c < LOOP_MAX_CHANNELS; c++)
			fix_ends(in.buf[c], in.len[c], &m);
	nconn = m.nchannels ? m.nchannels : 1;

	r.o = (struct stream_recv_opts){
		.listen = "127.0.0.1:0",
		.timeout_ms = 500,
		.accept_timeout_ms = 1000,
		.max_pending = STREAM_MAX_PENDING_DEFAULT,	/* the CLI's default */
		/* A hello with caps bit 6 gets ACKs, the secret, the resume buffer. */
		.resume_timeout_ms = 300,
		.resume_buf = RESUME_BUF_MIN,
		.tls = flags & TLS ? &tls_srv : NULL,
	};
	if (pipe2(dr.stop, O_CLOEXEC))
		abort();
	if (flags & PIPE) {
		int p[2];

		if (pipe2(p, O_CLOEXEC))
			abort();
		saved_out = dup(STDOUT_FILENO);
		dup2(p[1], STDOUT_FILENO);
		close(p[1]);
		dr.d[0] = (struct dest){ .fd = p[0] };
		dr.nd = 1;
		r.o.to.kind = SEP_STDIO;
	} else {
		dr.listen_fd = lfd;
		dr.talk = m.ret;
		r.o.to = (struct sendpoint){ .kind = SEP_UNIX, .addr = sock_path };
	}
	pthread_create(&dr.thr, NULL, drain_main, &dr);

	lmig_err_clear();
	port = loop_start(&t, run_stream, &r);
	if (port > 0 && (flags & TLS))
		loop_send_tls(&in, port, nconn, fds, &tls_cli, tc);
	else if (port > 0)
		loop_send(&in, port, nconn, fds);
	rc = loop_join(&t);
	if (port > 0)
		loop_close(fds, nconn);
	if (port > 0 && (flags & TLS))
		loop_close_tls(tc, nconn);
	if (saved_out >= 0) {
		/* The receiver closed or replaced stdout; the pipe ends with this. */
		dup2(saved_out, STDOUT_FILENO);
		close(saved_out);
	}
	if (write(dr.stop[1], "", 1) != 1)
		abort();
	pthread_join(dr.thr, NULL);
	/* FUZZ_VERBOSE=1: what the receiver made of each input (corpus checks). */
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_stream: %s\n", rc ? lmig_errmsg() : "ok");
	if (port <= 0) {
		fprintf(stderr, "fuzz_stream: the receiver did not start: %s\n", lmig_errmsg());
		abort();
	}
	if (rc == 0)
		check_delivery(&m, &dr, r.st.streams);
	else if (!lmig_has_err()) {
		fprintf(stderr, "fuzz_stream: the receiver failed without saying why\n");
		abort();
	}
	for (unsigned int i = 0; i < dr.nd; i++) {
		close(dr.d[i].fd);
		free(dr.d[i].buf);
	}
	close(dr.stop[0]);
	close(dr.stop[1]);
	for (unsigned int s = 0; s < MODEL_STREAMS; s++)
		free(m.data[s]);
	loop_free(&in);
	return 0;
}
