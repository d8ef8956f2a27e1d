// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "relay.h"
#include "sock.h"

struct rpair {
	int fd[2];		/* [0] the sender's side, [1] the receiver's */
	bool first;		/* the connection whose replies are damaged */
	bool eof[2];		/* side s sent its FIN (passed on as a half-close) */
	bool held;		/* replies are no longer passed on */
	uint8_t msg[RELAY_MSG];	/* first connection: the reply being assembled */
	size_t have;
};

static void rpair_close(struct rpair *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0)
			close(c->fd[i]);
		c->fd[i] = -1;
	}
}

/*
 * Replies of the first connection, whole messages at a time.  Returns -1
 * when the pair failed, 1 when every connection must be cut, else 0.
 */
static int replies(struct relay *p, struct rpair *c, const uint8_t *buf, size_t n)
{
	while (n) {
		size_t k = RELAY_MSG - c->have < n ? RELAY_MSG - c->have : n;
		uint32_t magic;

		memcpy(c->msg + c->have, buf, k);
		c->have += k;
		buf += k;
		n -= k;
		if (c->have < RELAY_MSG)
			break;
		c->have = 0;
		if (c->held)
			continue;
		magic = c->msg[0] | c->msg[1] << 8 | c->msg[2] << 16 | (uint32_t)c->msg[3] << 24;
		if (magic == p->magic && !p->hit) {
			p->hit = true;
			if (p->act == RELAY_CUT)
				return 1;
			if (p->act == RELAY_HOLD || p->act == RELAY_SWALLOW) {
				c->held = true;
				continue;
			}
			c->msg[9] ^= 0x01;	/* the pages field: only the checksum tells */
		}
		if (sock_write_full(c->fd[0], c->msg, RELAY_MSG))
			return -1;
	}
	return 0;
}

static void *relay_main(void *arg)
{
	struct relay *p = arg;
	struct rpair c[RELAY_MAX_CONN];
	struct timeval tv = { .tv_sec = 2 };
	uint8_t buf[65536];
	int nc = 0;

	while (!p->stop) {
		struct pollfd pf[1 + 2 * RELAY_MAX_CONN];
		bool cut = false;
		int n = 0, np = nc;

		pf[n++] = (struct pollfd){ .fd = p->lfd, .events = POLLIN };
		for (int i = 0; i < nc; i++)
			for (int s = 0; s < 2; s++) {
				/* RELAY_HOLD: the receiver's end is not passed on either. */
				bool quiet = c[i].eof[s] || (s == 1 && c[i].held && p->act == RELAY_HOLD);

				pf[n++] = (struct pollfd){ .fd = quiet ? -1 : c[i].fd[s],
							   .events = POLLIN };
			}
		if (poll(pf, n, 50) <= 0)
			continue;
		if (pf[0].revents && p->lfd >= 0 && nc < RELAY_MAX_CONN) {
			int a = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
			int b = a >= 0 ? sock_connect(p->target) : -1;

			if (b < 0) {
				if (a >= 0)
					close(a);
			} else {
				setsockopt(a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				setsockopt(b, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
				c[nc] = (struct rpair){ .fd = { a, b }, .first = p->conns == 0 };
				nc++;
				p->conns++;
			}
		}
		for (int i = 0; i < np && !cut; i++) {
			for (int s = 0; s < 2; s++) {
				ssize_t len;
				int rc = 0;

				if (!pf[1 + 2 * i + s].revents || c[i].fd[s] < 0)
					continue;
				len = recv(c[i].fd[s], buf, sizeof(buf), MSG_DONTWAIT);
				if (len < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (len == 0) {
					/* A half-close, as a network passes it on. */
					c[i].eof[s] = true;
					shutdown(c[i].fd[!s], SHUT_WR);
					if (c[i].eof[!s]) {
						rpair_close(&c[i]);
						break;
					}
					continue;
				}
				if (len < 0) {
					rpair_close(&c[i]);
					break;
				}
				if (c[i].first && s == 1)
					rc = replies(p, &c[i], buf, len);
				else if (sock_write_full(c[i].fd[!s], buf, len))
					rc = -1;
				if (rc > 0) {
					cut = true;
					break;
				}
				if (rc < 0) {
					rpair_close(&c[i]);
					break;
				}
			}
		}
		if (cut) {
			for (int i = 0; i < nc; i++)
				rpair_close(&c[i]);
			close(p->lfd);
			p->lfd = -1;
		}
		for (int i = 0; i < nc;)
			if (c[i].fd[0] < 0)
				c[i] = c[--nc];
			else
				i++;
	}
	for (int i = 0; i < nc; i++)
		rpair_close(&c[i]);
	return NULL;
}

int relay_start(struct relay *p, int target_port, uint32_t magic, enum relay_act act)
{
	memset(p, 0, sizeof(*p));
	p->target = target_port;
	p->magic = magic;
	p->act = act;
	p->lfd = sock_listen(&p->port);
	if (p->lfd < 0)
		return -1;
	if (pthread_create(&p->thread, NULL, relay_main, p)) {
		close(p->lfd);
		p->lfd = -1;
		return -1;
	}
	p->running = true;
	return 0;
}

void relay_stop(struct relay *p)
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
