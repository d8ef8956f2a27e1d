/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the harnesses that drive a real receiver share: the input split
 * into per-channel byte streams, the loopback connections that carry
 * them, and the process state a receiver run in-process changes.
 *
 * Input layout (after the harness's own first byte of flags):
 *
 *   segment*  where segment = u8 channel, le16 length, length bytes
 *
 * The bytes of all segments of channel c, in order, are channel c's
 * stream; the harness fixes it up (checksums etc.) as a whole, then the
 * segments are written in input order, each with one send(): the order
 * and the cut points between channels are the fuzzer's.  A last segment
 * shorter than its length takes what is left.
 */
#ifndef LMIG_FUZZ_LOOP_H
#define LMIG_FUZZ_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOOP_MAX_CHANNELS	4
#define LOOP_MAX_SEGS		4096

struct loop_in {
	uint8_t *buf[LOOP_MAX_CHANNELS];	/* each channel's stream, fixed up in place */
	size_t len[LOOP_MAX_CHANNELS];
	struct { uint8_t ch; uint32_t len; } seg[LOOP_MAX_SEGS];
	size_t off[LOOP_MAX_SEGS];		/* where each segment starts in its stream */
	unsigned int nseg;
};

/* Split d[0..n) into channel streams; loop_free() after. */
void loop_split(const uint8_t *d, size_t n, struct loop_in *in);
void loop_free(struct loop_in *in);

/*
 * Connect nconn sockets to 127.0.0.1:port (in channel order, so the
 * receiver accepts them in that order), write the segments, then end
 * each with shutdown(SHUT_WR).  The sockets are returned in fds (to be
 * closed with loop_close() once the receiver has finished: it may still
 * be answering on them).  A write that cannot proceed within a second
 * gives up that channel.
 */
void loop_send(struct loop_in *in, int port, unsigned int nconn, int *fds);
/*
 * The same through TLS (a receiver started with tls): each connection
 * does its handshake as a sender would (tls_handshake), sends its
 * channel's first hello-sized piece and reads the answer before the next
 * one connects, as the receiver takes channels one by one; every later
 * segment is sealed into records (tls_seal) and sent.  t holds the sessions until loop_close_tls().
 */
struct tls_conf;
struct tls_chan;
void loop_send_tls(struct loop_in *in, int port, unsigned int nconn, int *fds,
		   const struct tls_conf *cli, struct tls_chan *t);
void loop_close_tls(struct tls_chan *t, unsigned int nconn);
/* Server and client configurations sharing a pre-shared key (a file in dir). */
void loop_tls_confs(const char *dir, struct tls_conf *srv, struct tls_conf *cli);
void loop_close(int *fds, unsigned int nconn);

/*
 * A receiver started in a thread: run(arg) with ready_fd the write end of
 * a pipe; returns the port it printed there, or -1 (then the thread has
 * already ended).
 */
struct loop_thread {
	void *thr;
	int ready[2];
	int (*run)(void *arg, int ready_fd);
	void *arg;
	int rc;
	bool has_err;			/* the run recorded an error ... */
	char err[512];			/* ... this one (errors are per thread) */
	struct sigaction sa[3];		/* SIGINT, SIGTERM, SIGHUP before the run */
};
int loop_start(struct loop_thread *t, int (*run)(void *arg, int ready_fd), void *arg);
/*
 * Wait for it; restores the signal handlers it replaced.  Its return
 * value; the error it recorded is recorded again in the caller's thread.
 */
int loop_join(struct loop_thread *t);

/*
 * Process set-up, once: SIGPIPE ignored, as lmig's main() does (OpenSSL
 * writes to sockets without MSG_NOSIGNAL).  And, when it may (root), the
 * process moves into a network namespace of its own (nameless: it goes
 * with the process) with only loopback up: every run leaves a few
 * connections in TIME_WAIT, and thousands of runs a second would
 * otherwise fill the host's table that others use too.
 */
void loop_setup(void);

/*
 * A private directory for the outputs, removed at exit (and by the next
 * harness to start, if its process was killed): its path.
 */
const char *loop_tmpdir(const char *name);
/* True when dir holds nothing but (optionally) the file keep. */
int loop_dir_only(const char *dir, const char *keep);

#endif
