// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "loop.h"

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
		in->len[c] += len;
		in->seg[in->nseg].ch = c;
		in->seg[in->nseg].len = len;
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

void loop_send(struct loop_in *in, int port, unsigned int nconn, int *fds)
{
	size_t pos[LOOP_MAX_CHANNELS] = { 0 };

	for (unsigned int c = 0; c < nconn; c++)
		fds[c] = connect_to(port);
	for (unsigned int i = 0; i < in->nseg; i++) {
		unsigned int c = in->seg[i].ch;
		const uint8_t *p = in->buf[c] + pos[c];
		size_t len = in->seg[i].len;

		pos[c] += len;
		if (c >= nconn || fds[c] < 0)
			continue;
		while (len) {
			ssize_t k = send(fds[c], p, len, MSG_NOSIGNAL);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				/* The receiver stopped reading (refused, or waits on another channel). */
				shutdown(fds[c], SHUT_WR);
				break;
			}
			p += k;
			len -= k;
		}
		if (len)
			in->len[c] = 0, in->seg[i].len = 0;
	}
	for (unsigned int c = 0; c < nconn; c++)
		if (fds[c] >= 0)
			shutdown(fds[c], SHUT_WR);
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
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &t->sa[i], NULL);
	return t->rc;
}

static char tmpdir[256];

static void rm_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(tmpdir);
}

const char *loop_tmpdir(const char *name)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(tmpdir, sizeof(tmpdir), "%s/lmig-%s.XXXXXX", base, name);
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

void loop_private_net(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

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
