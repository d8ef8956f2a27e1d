// SPDX-License-Identifier: GPL-2.0-only
/*
 * Blocking control I/O on a channel (tls.h): the hellos, replies and
 * commits that are not the bulk stream, through the channel's TLS when
 * it has any, plain otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/net.h"
#include "chan/tls.h"
#include "chan/tls_int.h"

int chan_write_full(int fd, struct tls_chan *t, const void *buf, size_t len, int timeout_ms,
		    const char *what)
{
	uint8_t small[1024], *out = small;
	size_t cap = tls_seal_bound(len);
	ssize_t n;
	int rc;

	if (!t || !t->ssl || t->ktls_tx)
		return net_write_full(fd, buf, len, timeout_ms, what);
	if (cap > sizeof(small) && !(out = malloc(cap)))
		return lmig_err("%s: out of memory", what);
	n = tls_seal(t, buf, len, out, cap);
	/*
	 * A session that failed (a record that did not authenticate) cannot
	 * seal any more, but OpenSSL left its alert in the BIO: send that, so
	 * the peer learns why instead of seeing a closed connection.
	 */
	if (n < 0) {
		size_t m = tls_sink_take_spill(t, out, cap);

		if (m)
			net_write_full(fd, out, m, timeout_ms, what);
	}
	rc = n < 0 ? -1 : net_write_full(fd, out, n, timeout_ms, what);
	if (out != small)
		free(out);
	return rc;
}

int chan_read_full(int fd, struct tls_chan *t, void *buf, size_t len, int timeout_ms,
		   const char *what)
{
	long long deadline = now_ms() + timeout_ms;
	uint8_t in[17 * 1024];
	size_t got = 0;

	if (!t || !t->ssl || t->ktls_rx)
		return net_read_full(fd, buf, len, timeout_ms, what);
	while (got < len) {
		ssize_t n = tls_open_read(t, (char *)buf + got, len - got);

		if (n < 0) {
			char m[400];

			snprintf(m, sizeof(m), "%s", lmig_errmsg());
			lmig_err_clear();
			return lmig_err("%s: %s", what, m);
		}
		got += n;
		if (got == len)
			break;
		/* Only whole records open: take what came in and try again. */
		n = net_recv_some(fd, in, sizeof(in), deadline, what);
		if (n < 0 || tls_open_feed(t, in, n))
			return -1;
	}
	return 0;
}

int tls_open_msgs(struct tls_chan *t, const void *in, size_t n, void *msg, size_t len,
		  size_t *have, const bool *stop, int (*got)(void *arg), void *arg)
{
	if (tls_open_feed(t, in, n))
		return -1;
	while (!*stop) {
		ssize_t k = tls_open_read(t, (uint8_t *)msg + *have, len - *have);

		if (k < 0)
			return -1;
		if (!k)
			break;
		*have += k;
		if (*have < len)
			continue;
		*have = 0;
		if (got(arg))
			return -1;
	}
	return 0;
}
