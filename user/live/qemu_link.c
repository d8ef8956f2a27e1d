// SPDX-License-Identifier: GPL-2.0-only
/* lmig qemu's control connection and the relay of QEMU's stream (qemu_link.h). */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/err.h"
#include "chan/net.h"
#include "live/qemu_link.h"

struct qlink_hdr {
	uint32_t magic, type, len;
};

struct qlink_wblock {
	char id[64];
	uint64_t size;
};

static struct tls_chan *tls_of(struct qlink *l)
{
	return l->tls.ssl ? &l->tls : NULL;
}

int qlink_send(struct qlink *l, uint32_t type, const void *p, uint32_t len)
{
	struct qlink_hdr h = { htole32(QLINK_MAGIC), htole32(type), htole32(len) };

	if (chan_write_full(l->fd, tls_of(l), &h, sizeof(h), l->timeout_ms, "control message"))
		return -1;
	return len ? chan_write_full(l->fd, tls_of(l), p, len, l->timeout_ms, "control message") : 0;
}

int qlink_recv(struct qlink *l, uint32_t *type, void *buf, uint32_t cap, uint32_t *len,
	       int wait_ms)
{
	struct qlink_hdr h;

	if (chan_read_full(l->fd, tls_of(l), &h, sizeof(h), wait_ms, "control message"))
		return -1;
	if (le32toh(h.magic) != QLINK_MAGIC)
		return lmig_err("the peer is not lmig qemu (bad control message)");
	*type = le32toh(h.type);
	*len = le32toh(h.len);
	if (*len > cap)
		return lmig_err("control message %u of %u bytes: at most %u expected", *type, *len,
				cap);
	return *len ? chan_read_full(l->fd, tls_of(l), buf, *len, l->timeout_ms,
				     "control message") : 0;
}

int qlink_hello(struct qlink *l, const struct qmem_block *b, unsigned int n)
{
	struct { uint32_t version, n; struct qlink_wblock b[QMEM_MAX]; } m;

	memset(&m, 0, sizeof(m));
	m.version = htole32(QLINK_VERSION);
	m.n = htole32(n);

	for (unsigned int i = 0; i < n && i < QMEM_MAX; i++) {
		snprintf(m.b[i].id, sizeof(m.b[i].id), "%s", b[i].id);
		m.b[i].size = htole64(b[i].size);
	}
	return qlink_send(l, QL_HELLO, &m, 8 + n * sizeof(m.b[0]));
}

int qlink_read_hello(struct qlink *l, struct qlink_block *b, unsigned int *n, int wait_ms)
{
	struct { uint32_t version, n; struct qlink_wblock b[QMEM_MAX]; } m;
	uint32_t type, len;

	if (qlink_recv(l, &type, &m, sizeof(m), &len, wait_ms))
		return -1;
	if (type != QL_HELLO || len < 8)
		return lmig_err("the peer is not lmig qemu send (control message %u)", type);
	if (le32toh(m.version) != QLINK_VERSION) {
		qlink_refuse(l, QLR_VERSION, "");
		return lmig_err("lmig qemu send speaks control version %u, this is %u",
				le32toh(m.version), QLINK_VERSION);
	}
	*n = le32toh(m.n);
	if (!*n || *n > QMEM_MAX || len != 8 + *n * sizeof(m.b[0]))
		return lmig_err("bad HELLO from lmig qemu send (%u blocks, %u bytes)", *n, len);
	for (unsigned int i = 0; i < *n; i++) {
		m.b[i].id[sizeof(m.b[i].id) - 1] = 0;
		snprintf(b[i].id, sizeof(b[i].id), "%s", m.b[i].id);
		b[i].size = le64toh(m.b[i].size);
	}
	return 0;
}

int qlink_ready(struct qlink *l, const uint16_t *ports, unsigned int n)
{
	uint16_t p[QMEM_MAX];

	for (unsigned int i = 0; i < n && i < QMEM_MAX; i++)
		p[i] = htole16(ports[i]);
	return qlink_send(l, QL_READY, p, n * sizeof(p[0]));
}

int qlink_refuse(struct qlink *l, enum qlink_refuse why, const char *detail)
{
	struct { uint32_t why; char detail[128]; } m;

	memset(&m, 0, sizeof(m));
	m.why = htole32(why);

	snprintf(m.detail, sizeof(m.detail), "%s", detail);
	return qlink_send(l, QL_REFUSE, &m, sizeof(m));
}

int qlink_read_ready(struct qlink *l, uint16_t *ports, unsigned int n, enum qlink_refuse *why,
		     char *detail, size_t dlen)
{
	union {
		uint16_t p[QMEM_MAX];
		struct { uint32_t why; char detail[128]; } r;
	} m;
	uint32_t type, len;

	if (qlink_recv(l, &type, &m, sizeof(m), &len, l->timeout_ms))
		return -1;
	if (type == QL_REFUSE && len == sizeof(m.r)) {
		*why = le32toh(m.r.why);
		m.r.detail[sizeof(m.r.detail) - 1] = 0;
		snprintf(detail, dlen, "%s", m.r.detail);
		return 1;
	}
	if (type != QL_READY || len != n * sizeof(m.p[0]))
		return lmig_err("bad answer from lmig qemu recv (message %u, %u bytes)", type, len);
	for (unsigned int i = 0; i < n; i++)
		ports[i] = le16toh(m.p[i]);
	return 0;
}

int qlink_result(struct qlink *l, bool ok, const char *detail)
{
	struct { uint32_t ok; char detail[200]; } m;

	memset(&m, 0, sizeof(m));
	m.ok = htole32(ok);

	snprintf(m.detail, sizeof(m.detail), "%s", detail);
	return qlink_send(l, QL_RESULT, &m, sizeof(m));
}

int qlink_read_result(struct qlink *l, bool *ok, char *detail, size_t dlen, int wait_ms)
{
	struct { uint32_t ok; char detail[200]; } m;
	uint32_t type, len;

	if (qlink_recv(l, &type, &m, sizeof(m), &len, wait_ms))
		return -1;
	if (type != QL_RESULT || len != sizeof(m))
		return lmig_err("bad result from lmig qemu recv (message %u)", type);
	*ok = le32toh(m.ok);
	m.detail[sizeof(m.detail) - 1] = 0;
	snprintf(detail, dlen, "%s", m.detail);
	return 0;
}

int qlink_match(const struct qmem_block *mine, unsigned int n, const struct qlink_block *theirs,
		unsigned int tn, struct qmem_block *out)
{
	bool named[QMEM_MAX] = { false };

	for (unsigned int i = 0; i < tn; i++) {
		unsigned int j;

		for (j = 0; j < n && j < QMEM_MAX; j++)
			if (!named[j] && !strcmp(mine[j].id, theirs[i].id) &&
			    mine[j].size == theirs[i].size)
				break;
		if (j == n || j == QMEM_MAX)
			return (int)i;
		named[j] = true;
		out[i] = mine[j];
	}
	for (unsigned int j = 0; j < n && j < QMEM_MAX; j++)
		if (!named[j])
			return (int)(tn + j);
	return -1;
}

/* ---- the relay ------------------------------------------------------------ */

static int unix_addr(struct sockaddr_un *sa, const char *path)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa->sun_path))
		return lmig_err("unix socket path too long: %s", path);
	memcpy(sa->sun_path, path, strlen(path) + 1);
	return 0;
}

static int relay_fail(struct qrelay *r, const char *what)
{
	snprintf(r->err, sizeof(r->err), "%s: %s", what, lmig_errmsg());
	return r->ret = -1;
}

static void *src_thread(void *arg)
{
	static __thread char buf[QLINK_DEV_MAX];
	struct qrelay *r = arg;

	r->qfd = net_accept(r->lfd, r->wait_ms, NULL, 0);
	if (r->qfd < 0) {
		relay_fail(r, "QEMU did not connect its migration stream");
		return NULL;
	}
	for (;;) {
		ssize_t n = read(r->qfd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			lmig_err_errno(errno, "read");
			relay_fail(r, "QEMU's migration stream");
			return NULL;
		}
		if (n == 0)
			break;
		if (qlink_send(r->l, QL_DEV, buf, (uint32_t)n)) {
			relay_fail(r, "relaying QEMU's stream");
			return NULL;
		}
		r->bytes += n;
	}
	if (qlink_send(r->l, QL_DEV_END, NULL, 0)) {
		relay_fail(r, "relaying QEMU's stream");
		return NULL;
	}
	r->ended = true;
	return NULL;
}

int qrelay_src_start(struct qrelay *r, struct qlink *l, const char *path, int wait_ms)
{
	struct sockaddr_un sa;

	*r = (struct qrelay){ .l = l, .lfd = -1, .qfd = -1, .wait_ms = wait_ms };
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (unix_addr(&sa, path))
		return -1;
	r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (r->lfd < 0)
		return lmig_err_errno(errno, "socket");
	unlink(path);
	if (bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(r->lfd, 1))
		return lmig_err_errno(errno, "cannot listen on %s", path);
	if (pthread_create(&r->th, NULL, src_thread, r))
		return lmig_err("cannot start a thread");
	r->started = true;
	return 0;
}

static int dst_write(struct qrelay *r, const char *buf, uint32_t len)
{
	if (r->qfd < 0) {
		struct sockaddr_un sa;

		if (unix_addr(&sa, r->path))
			return -1;
		r->qfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (r->qfd < 0)
			return lmig_err_errno(errno, "socket");
		if (connect(r->qfd, (struct sockaddr *)&sa, sizeof(sa)))
			return lmig_err_errno(errno, "cannot connect to QEMU's incoming socket %s",
					      r->path);
	}
	/* QEMU reads as it loads: a stall here is QEMU's, bounded like any other. */
	return net_write_full(r->qfd, buf, len, r->l->timeout_ms, "QEMU's incoming stream");
}

static void *dst_thread(void *arg)
{
	static __thread char buf[QLINK_DEV_MAX];
	struct qrelay *r = arg;
	uint32_t type, len;
	int wait = r->wait_ms;	/* the first message waits for the whole pre-copy */

	for (;;) {
		if (qlink_recv(r->l, &type, buf, sizeof(buf), &len, wait)) {
			relay_fail(r, "the source's control connection");
			return NULL;
		}
		wait = r->l->timeout_ms;
		if (type == QL_DEV_END)
			break;
		if (type != QL_DEV) {
			lmig_err("unexpected control message %u", type);
			relay_fail(r, "the source's control connection");
			return NULL;
		}
		if (dst_write(r, buf, len)) {
			relay_fail(r, "relaying QEMU's stream");
			return NULL;
		}
		r->bytes += len;
	}
	if (r->qfd >= 0)
		shutdown(r->qfd, SHUT_WR);
	r->ended = true;
	return NULL;
}

int qrelay_dst_start(struct qrelay *r, struct qlink *l, const char *path, int wait_ms)
{
	*r = (struct qrelay){ .l = l, .lfd = -1, .qfd = -1, .wait_ms = wait_ms };
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (pthread_create(&r->th, NULL, dst_thread, r))
		return lmig_err("cannot start a thread");
	r->started = true;
	return 0;
}

int qrelay_join(struct qrelay *r)
{
	if (r->started) {
		pthread_join(r->th, NULL);
		r->started = false;
	}
	if (r->qfd >= 0)
		close(r->qfd);
	if (r->lfd >= 0) {
		close(r->lfd);
		unlink(r->path);
	}
	r->qfd = r->lfd = -1;
	return r->ret;
}

void qrelay_stop(struct qrelay *r)
{
	if (r->started) {
		if (r->lfd >= 0)
			shutdown(r->lfd, SHUT_RDWR);
		if (r->qfd >= 0)
			shutdown(r->qfd, SHUT_RDWR);
		shutdown(r->l->fd, SHUT_RDWR);
	}
	qrelay_join(r);
}
