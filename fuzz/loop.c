// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "lib/err.h"
#include "loop.h"
#include "chan/tls.h"

void loop_split(const uint8_t *d, size_t n, struct loop_in *in)
{
	size_t cap[LOOP_MAX_CHANNELS] = { 0 };

	memset(in, 0, sizeof(*in));
	while (n >= 3 && in->nseg < LOOP_MAX_SEGS) {
		unsigned int c = d[0] % LOOP_MAX_CHANNELS;
		size_t len = d[1] | (size_t)d[2] << 8;

		d += 3;
		n -= 3;
		if (len > n)
			len = n;
		if (!len)
			continue;
		if (in->len[c] + len > cap[c]) {
			cap[c] = 2 * (in->len[c] + len);
			in->buf[c] = realloc(in->buf[c], cap[c]);
			if (!in->buf[c])
				abort();
		}
		memcpy(in->buf[c] + in->len[c], d, len);
		in->seg[in->nseg].ch = c;
		in->seg[in->nseg].len = len;
		in->off[in->nseg] = in->len[c];
		in->len[c] += len;
		in->nseg++;
		d += len;
		n -= len;
	}
}

void loop_free(struct loop_in *in)
{
	for (unsigned int c = 0; c < LOOP_MAX_CHANNELS; c++)
		free(in->buf[c]);
}

static int connect_to(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 1 };
	/* Closed with a reset: a fuzzing run must not fill the port space with TIME_WAIT. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* len bytes to fd, sealed first with t; false when the peer stopped reading. */
static bool send_all(int fd, struct tls_chan *t, const uint8_t *p, size_t len)
{
	uint8_t *sealed = NULL;
	bool ok = true;

	if (t && t->ssl && len) {
		size_t cap = tls_seal_bound(len);
		ssize_t n;

		sealed = malloc(cap);
		n = sealed ? tls_seal(t, p, len, sealed, cap) : -1;
		if (n < 0)
			abort();	/* sealing never fails on a healthy session */
		p = sealed;
		len = n;
	}
	while (len) {
		ssize_t k = send(fd, p, len, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ok = false;
			break;
		}
		p += k;
		len -= k;
	}
	free(sealed);
	return ok;
}

static void send_segments(struct loop_in *in, unsigned int nconn, int *fds, struct tls_chan *t,
			  size_t *pos)
{
	bool dead[LOOP_MAX_CHANNELS] = { false };

	for (unsigned int i = 0; i < in->nseg; i++) {
		unsigned int c = in->seg[i].ch;
		size_t len = in->seg[i].len, skip;

		if (c >= nconn || fds[c] < 0 || dead[c])
			continue;
		/* What went ahead (the TLS hello) is not sent again. */
		skip = pos[c] > in->off[i] ? pos[c] - in->off[i] : 0;
		if (skip >= len)
			continue;
		if (!send_all(fds[c], t ? &t[c] : NULL, in->buf[c] + in->off[i] + skip, len - skip)) {
			/* The receiver stopped reading (refused, or waits on another channel). */
			dead[c] = true;
		}
		pos[c] = in->off[i] + len;
	}
	for (unsigned int c = 0; c < nconn; c++)
		if (fds[c] >= 0)
			shutdown(fds[c], SHUT_WR);
}

/*
 * Each channel's hello, and the rest only after the receiver's answer, as
 * lmig's senders do: with TLS, records that come with the hello stay in
 * the receiver's session until more arrive (a small stream sent at once
 * would only be found truncated); without, a stream sent and ended whole
 * before the receiver accepted the next channel would look like a source
 * that went away while connecting.
 */
static void send_hellos(struct loop_in *in, int port, unsigned int nconn, int *fds,
			const struct tls_conf *cli, struct tls_chan *t, size_t *pos)
{
	struct lmig_hello_ack ack;

	for (unsigned int c = 0; c < nconn; c++) {
		if (t)
			memset(&t[c], 0, sizeof(t[c]));
		fds[c] = connect_to(port);
		if (fds[c] < 0 || (t && tls_handshake(cli, fds[c], 1000, "fuzzed receiver", &t[c])))
			continue;	/* refused: the receiver says why */
		pos[c] = in->len[c] < sizeof(struct lmig_hello) ? in->len[c] : sizeof(struct lmig_hello);
		if (!send_all(fds[c], t ? &t[c] : NULL, in->buf[c], pos[c]) ||
		    pos[c] < sizeof(struct lmig_hello) ||
		    chan_read_full(fds[c], t ? &t[c] : NULL, &ack, sizeof(ack), 1000, "reading the ack"))
			shutdown(fds[c], SHUT_WR);
	}
}

void loop_send(struct loop_in *in, int port, unsigned int nconn, int *fds)
{
	size_t pos[LOOP_MAX_CHANNELS] = { 0 };

	send_hellos(in, port, nconn, fds, NULL, NULL, pos);
	send_segments(in, nconn, fds, NULL, pos);
}

void loop_send_tls(struct loop_in *in, int port, unsigned int nconn, int *fds,
		   const struct tls_conf *cli, struct tls_chan *t)
{
	size_t pos[LOOP_MAX_CHANNELS] = { 0 };

	send_hellos(in, port, nconn, fds, cli, t, pos);
	send_segments(in, nconn, fds, t, pos);
}

void loop_close_tls(struct tls_chan *t, unsigned int nconn)
{
	for (unsigned int c = 0; c < nconn; c++)
		tls_chan_free(&t[c]);
}

void loop_tls_confs(const char *dir, struct tls_conf *srv, struct tls_conf *cli)
{
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/psk", dir);
	f = fopen(path, "w");
	if (!f)
		abort();
	fprintf(f, "fuzz:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
	fclose(f);
	chmod(path, 0600);
	if (tls_conf_init(srv, true, NULL, path, NULL, NULL) ||
	    tls_conf_init(cli, false, NULL, path, NULL, NULL)) {
		fprintf(stderr, "fuzz: TLS set-up: %s\n", lmig_errmsg());
		abort();
	}
}

void loop_close(int *fds, unsigned int nconn)
{
	for (unsigned int c = 0; c < nconn; c++)
		if (fds[c] >= 0)
			close(fds[c]);
}

static void *thread_main(void *arg)
{
	struct loop_thread *t = arg;

	t->rc = t->run(t->arg, t->ready[1]);
	t->has_err = lmig_has_err();
	if (t->has_err)
		snprintf(t->err, sizeof(t->err), "%s", lmig_errmsg());
	return NULL;
}

static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };

int loop_start(struct loop_thread *t, int (*run)(void *arg, int ready_fd), void *arg)
{
	char buf[16] = { 0 };
	ssize_t n;
	size_t got = 0;

	t->run = run;
	t->arg = arg;
	t->rc = -1;
	t->has_err = false;
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], NULL, &t->sa[i]);
	if (pipe2(t->ready, O_CLOEXEC))
		abort();
	t->thr = malloc(sizeof(pthread_t));
	if (!t->thr || pthread_create(t->thr, NULL, thread_main, t))
		abort();
	/* The receiver closes its end after the port (it keeps it open if it fails first). */
	while (got < sizeof(buf) - 1) {
		struct pollfd p = { .fd = t->ready[0], .events = POLLIN };

		if (poll(&p, 1, 10000) == 0)
			break;
		n = read(t->ready[0], buf + got, sizeof(buf) - 1 - got);
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += n;
		if (memchr(buf, '\n', got))
			break;
	}
	close(t->ready[0]);
	return memchr(buf, '\n', got) ? atoi(buf) : -1;
}

int loop_join(struct loop_thread *t)
{
	pthread_join(*(pthread_t *)t->thr, NULL);
	free(t->thr);
	if (t->has_err && !lmig_has_err())
		lmig_err("%s", t->err);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &t->sa[i], NULL);
	return t->rc;
}

static char tmpdir[256];

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
			if (unlink(p) && errno == EISDIR)
				rm_tree(p);
		}
	closedir(d);
	rmdir(path);
}

static void rm_tmpdir(void)
{
	rm_tree(tmpdir);
}

/*
 * Directories of harness processes that are gone: a fuzzing process can
 * be killed (libFuzzer's fork mode, a timeout) before its atexit().
 */
static void rm_stale(const char *base)
{
	DIR *d = opendir(base);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d))) {
		const char *dot = strchr(e->d_name, '.');
		long pid = dot ? atol(dot + 1) : 0;

		if (strncmp(e->d_name, "lmig-fuzz-", 10) || pid <= 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(p, sizeof(p), "%s/%s", base, e->d_name);
		rm_tree(p);
	}
	closedir(d);
}

const char *loop_tmpdir(const char *name)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	rm_stale(base);
	snprintf(tmpdir, sizeof(tmpdir), "%s/lmig-%s.%d.XXXXXX", base, name, (int)getpid());
	if (!mkdtemp(tmpdir))
		abort();
	atexit(rm_tmpdir);
	return tmpdir;
}

int loop_dir_only(const char *dir, const char *keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ok = 1;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (!keep || strcmp(e->d_name, keep)))
			ok = 0;
	closedir(d);
	return ok;
}

void loop_setup(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	/* As lmig's main() does: a peer gone is an error to handle, not a death. */
	signal(SIGPIPE, SIG_IGN);
	if (unshare(CLONE_NEWNET))
		return;		/* not root: the host's loopback it is */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) == -1)
		abort();
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) == -1)
		abort();
	close(fd);
}
