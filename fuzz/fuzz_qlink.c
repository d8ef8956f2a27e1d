// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig qemu's control connection (user/live/qemu_link.c) against a peer
 * that sends whatever the fuzzer likes: the message header (magic, type,
 * length against the room given), HELLO's version and block list,
 * READY's ports or a REFUSE, RESULT, and a stream of DEV messages.
 *
 * Input: all the peer sends, written by a thread into one end of a
 * socketpair, whose sending side is then shut (no read ever waits for a
 * timeout).  The reader takes, in turn, a HELLO, a READY for the blocks
 * it announced (or 1), a RESULT, then messages until one fails.  Besides
 * surviving the sanitizers: a HELLO read has 1..QMEM_MAX blocks with ids
 * NUL-terminated in their field; every failure is one line.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/err.h"
#include "live/qemu_link.h"

struct peer {
	int fd;
	const uint8_t *d;
	size_t n;
};

static void *peer_run(void *arg)
{
	struct peer *p = arg;
	char buf[4096];
	size_t off = 0;

	while (off < p->n) {
		ssize_t w = send(p->fd, p->d + off, p->n - off, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		off += w;
	}
	shutdown(p->fd, SHUT_WR);
	while (read(p->fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static void one_line(void)
{
	if (strchr(lmig_errmsg(), '\n'))
		abort();
	lmig_err_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static char buf[QLINK_DEV_MAX];
	struct qlink_block b[QMEM_MAX];
	uint16_t ports[QMEM_MAX];
	enum qlink_refuse why;
	struct peer p = { .d = d, .n = n };
	struct qlink l = { .timeout_ms = 2000 };
	char detail[200];
	unsigned int nb = 0;
	uint32_t type, len;
	pthread_t th;
	int sv[2];
	bool ok;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return 0;
	p.fd = sv[1];
	l.fd = sv[0];
	if (pthread_create(&th, NULL, peer_run, &p)) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	if (qlink_read_hello(&l, b, &nb, 2000) == 0) {
		if (!nb || nb > QMEM_MAX)
			abort();
		for (unsigned int i = 0; i < nb; i++)
			if (!memchr(b[i].id, 0, sizeof(b[i].id)))
				abort();
	} else {
		one_line();
		nb = 1;
	}
	if (qlink_read_ready(&l, ports, nb, &why, detail, sizeof(detail)) < 0)
		one_line();
	if (qlink_read_result(&l, &ok, detail, sizeof(detail), 2000))
		one_line();
	else if (!memchr(detail, 0, sizeof(detail)))
		abort();
	for (int i = 0; i < 1000; i++) {
		if (qlink_recv(&l, &type, buf, sizeof(buf), &len, 2000)) {
			one_line();
			break;
		}
		if (len > sizeof(buf))
			abort();
	}
	shutdown(sv[0], SHUT_RDWR);
	pthread_join(th, NULL);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
