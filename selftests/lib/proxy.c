// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "proxy.h"
#include "sock.h"

struct pair {
	int fd[2];		/* [0] the sender's side, [1] the receiver's */
	bool first;		/* the connection faults apply to */
	bool eof[2];		/* side s sent its FIN (passed on as a half-close) */
};

static void pair_close(struct pair *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
	}
}

/*
 * Bytes from c->fd[0] about to go to the receiver: apply the faults.
 * Returns how many of the n bytes to forward; sets *cut when the stream
 * must end after them.
 */
static size_t damage(struct proxy *p, uint8_t *buf, size_t n, bool *cut)
{
	int64_t at = p->forwarded;

	if (p->flip_at >= at && p->flip_at < at + (int64_t)n) {
		buf[p->flip_at - at] ^= 0xff;
		p->flipped = true;
	}
	if (p->cut_after >= 0 && at + (int64_t)n >= p->cut_after) {
		n = p->cut_after - at;
		*cut = true;
	}
	p->forwarded += n;
	return n;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	struct pair c[PROXY_MAX_CONN];
	struct timeval tv = { .tv_sec = 2 };
	uint8_t buf[65536];
	int nc = 0;

	while (!p->stop) {
		struct pollfd pf[1 + 2 * PROXY_MAX_CONN];
		bool cut = false;
		int n = 0, np = nc;	/* pairs in this poll set */

		pf[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		for (int i = 0; i < nc; i++)
			for (int s = 0; s < 2; s++)
				pf[n++] = (struct pollfd){ .fd = c[i].eof[s] ? -1 : c[i].fd[s],
							   .events = POLLIN };
		/* A short timeout, so proxy_stop() is seen promptly. */
		if (poll(pf, n, 50) <= 0)
			continue;
		if (pf[0].revents && p->lfd >= 0 && nc < PROXY_MAX_CONN) {
			int a = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
			int b = a >= 0 ? sock_connect(p->target) : -1;

			if (b < 0) {
				if (a >= 0)
					close(a);
			} else {
				/* A stuck peer must not hang the proxy, and with it the test. */
				setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				setsockopt(b, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				c[nc] = (struct pair){ { a, b }, p->conns == 0 };
				nc++;
				p->conns++;
			}
		}
		for (int i = 0; i < np && !cut; i++) {
			for (int s = 0; s < 2; s++) {
				ssize_t len;
				size_t fwd;

				if (!pf[1 + 2 * i + s].revents || c[i].fd[s] < 0)
					continue;
				len = recv(c[i].fd[s], buf, sizeof(buf), MSG_DONTWAIT);
				if (len < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (len == 0) {
					/*
					 * Pass the FIN on and keep the other direction
					 * open, like a network: closing both at once would
					 * reset a peer that is still sending, and a reset
					 * can destroy the last bytes it was sent (a verdict).
					 */
					c[i].eof[s] = true;
					shutdown(c[i].fd[!s], SHUT_WR);
					if (c[i].eof[!s]) {
						pair_close(&c[i]);
						break;
					}
					continue;
				}
				if (len < 0) {
					pair_close(&c[i]);
					break;
				}
				fwd = len;
				if (c[i].first && s == 0)
					fwd = damage(p, buf, len, &cut);
				if (sock_write_full(c[i].fd[!s], buf, fwd)) {
					pair_close(&c[i]);
					break;
				}
				if (cut)
					break;
			}
		}
		if (cut) {
			/* Like a link that died: every connection ends, nothing new comes in. */
			for (int i = 0; i < nc; i++)
				pair_close(&c[i]);
			close(p->lfd);
			p->lfd = -1;
			p->cut = true;
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

int proxy_start(struct proxy *p, int target_port, int64_t flip_at, int64_t cut_after)
{
	memset(p, 0, sizeof(*p));
	p->target = target_port;
	p->flip_at = flip_at;
	p->cut_after = cut_after;
	p->lfd = sock_listen(&p->port);
	if (p->lfd < 0)
		return -1;
	if (pthread_create(&p->thread, NULL, proxy_main, p)) {
		close(p->lfd);
		p->lfd = -1;
		return -1;
	}
	p->running = true;
	return 0;
}

void proxy_stop(struct proxy *p)
{
	if (!p->running)
		return;
	p->stop = true;
	pthread_join(p->thread, NULL);
	p->running = false;
	if (p->lfd >= 0)
		close(p->lfd);
	p->lfd = -1;
}
