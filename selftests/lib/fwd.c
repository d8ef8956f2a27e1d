// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fwd.h"
#include "sock.h"

static void pair_close(struct fwd_pair *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
	}
}

int fwd_write(struct fwd_pair *c, int s, const uint8_t *buf, size_t n)
{
	return sock_write_full(c->fd[!s], buf, n) ? -1 : 0;
}

static void accept_one(struct fwd *f, struct fwd_pair *c, int *nc)
{
	struct timeval tv = { .tv_sec = 2 };
	int a = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
	int b = a >= 0 ? sock_connect(f->target) : -1;

	if (b < 0) {
		if (a >= 0)
			close(a);
		return;
	}
	/* A stuck peer must not hang the forwarder, and with it the test. */
	setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(b, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	c[*nc] = (struct fwd_pair){ .fd = { a, b }, .first = f->conns == 0 };
	(*nc)++;
	f->conns++;
}

/* What came on side s of c: 0, or 1 when every connection must be cut. */
static int side(struct fwd *f, struct fwd_pair *c, int s, uint8_t *buf, size_t size)
{
	ssize_t len = recv(c->fd[s], buf, size, MSG_DONTWAIT);
	int rc;

	if (len < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (len == 0) {
		/*
		 * Pass the FIN on and keep the other direction open, like a
		 * network: closing both at once would reset a peer that is
		 * still sending, and a reset can destroy the last bytes it
		 * was sent (a verdict).
		 */
		c->eof[s] = true;
		shutdown(c->fd[!s], SHUT_WR);
		if (c->eof[!s])
			pair_close(c);
		return 0;
	}
	if (len < 0) {
		pair_close(c);
		return 0;
	}
	rc = f->pass(f, c, s, buf, len);
	if (rc < 0)
		pair_close(c);
	return rc > 0;
}

static void *fwd_main(void *arg)
{
	struct fwd *f = arg;
	struct fwd_pair c[FWD_MAX_CONN];
	uint8_t buf[65536];
	int nc = 0;

	while (!f->stop) {
		struct pollfd pf[1 + 2 * FWD_MAX_CONN];
		bool cut = false;
		int n = 0, np = nc;	/* pairs in this poll set */

		pf[n++] = (struct pollfd){ .fd = f->lfd, .events = POLLIN };
		for (int i = 0; i < nc; i++)
			for (int s = 0; s < 2; s++) {
				bool quiet = c[i].eof[s] || (f->quiet && f->quiet(f, &c[i], s));

				pf[n++] = (struct pollfd){ .fd = quiet ? -1 : c[i].fd[s],
							   .events = POLLIN };
			}
		/* A short timeout, so fwd_stop() is seen promptly. */
		if (poll(pf, n, 50) <= 0)
			continue;
		if (pf[0].revents && f->lfd >= 0 && nc < FWD_MAX_CONN)
			accept_one(f, c, &nc);
		for (int i = 0; i < np && !cut; i++)
			for (int s = 0; s < 2 && !cut && c[i].fd[s] >= 0; s++)
				if (pf[1 + 2 * i + s].revents)
					cut = side(f, &c[i], s, buf, sizeof(buf));
		if (cut) {
			/* Like a link that died: every connection ends, nothing new comes in. */
			for (int i = 0; i < nc; i++)
				pair_close(&c[i]);
			close(f->lfd);
			f->lfd = -1;
			if (f->on_cut)
				f->on_cut(f);
		}
		/* Drop closed pairs so the poll set stays small. */
		for (int i = 0; i < nc;)
			if (c[i].fd[0] < 0)
				c[i] = c[--nc];
			else
				i++;
	}
	for (int i = 0; i < nc; i++)
		pair_close(&c[i]);
	return NULL;
}

int fwd_start(struct fwd *f, int target_port)
{
	f->target = target_port;
	f->lfd = sock_listen(&f->port);
	if (f->lfd < 0)
		return -1;
	if (pthread_create(&f->thread, NULL, fwd_main, f)) {
		close(f->lfd);
		f->lfd = -1;
		return -1;
	}
	f->running = true;
	return 0;
}

void fwd_stop(struct fwd *f)
{
	if (!f->running)
		return;
	f->stop = true;
	pthread_join(f->thread, NULL);
	f->running = false;
	if (f->lfd >= 0)
		close(f->lfd);
	f->lfd = -1;
}
