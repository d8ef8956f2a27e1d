// SPDX-License-Identifier: GPL-2.0-only
/* What both ends of the stream transport share: endpoints, frames, the report. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/err.h"
#include "chan/net.h"
#include "lib/parse.h"
#include "stream/stream.h"
#include "lib/xxh.h"

_Static_assert(sizeof(struct lmig_sframe) == 56, "stream frame layout");
_Static_assert(sizeof(struct lmig_sreply) == 128, "stream reply layout");

int sendpoint_parse(const char *what, const char *s, struct sendpoint *ep)
{
	char host[256], port[16];

	if (!strncmp(s, "unix:", 5)) {
		ep->kind = SEP_UNIX;
		ep->addr = s + 5;
		if (!*ep->addr)
			return lmig_err("%s: 'unix:' needs a path", what);
		if (strlen(ep->addr) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return lmig_err("%s: socket path '%s' is too long", what, ep->addr);
		return 0;
	}
	ep->kind = SEP_TCP;
	ep->addr = !strncmp(s, "tcp:", 4) ? s + 4 : s;
	return parse_hostport(what, ep->addr, host, sizeof(host), port, sizeof(port));
}

static void unix_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path);
}

int sendpoint_listen(const struct sendpoint *ep)
{
	struct sockaddr_un sa;
	struct stat sb;
	int fd;

	if (ep->kind == SEP_TCP)
		return net_listen(ep->addr, 64);
	unix_addr(&sa, ep->addr);
	/* A socket file left by an earlier run is replaced; anything else is not ours. */
	if (!lstat(ep->addr, &sb)) {
		if (!S_ISSOCK(sb.st_mode))
			return lmig_err("cannot listen on %s: it exists and is not a socket", ep->addr);
		unlink(ep->addr);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lmig_err_errno(errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		lmig_err_errno(errno, "cannot listen on %s", ep->addr);
		close(fd);
		return -1;
	}
	return fd;
}

int sendpoint_connect(const struct sendpoint *ep, int timeout_ms)
{
	struct sockaddr_un sa;
	int fd;

	if (ep->kind == SEP_TCP)
		return net_connect(ep->addr, timeout_ms);
	unix_addr(&sa, ep->addr);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lmig_err_errno(errno, "socket");
	/* A unix connect does not wait for accept(): it is queued or refused at once. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = errno;

		lmig_err_errno(err, "cannot connect to %s", ep->addr);
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

void sendpoint_ready(const struct sendpoint *ep, int lfd, int ready_fd)
{
	if (ready_fd < 0)
		return;
	if (ep->kind == SEP_UNIX)
		dprintf(ready_fd, "%s\n", ep->addr);
	else
		dprintf(ready_fd, "%d\n", net_local_port(lfd));
	close(ready_fd);
}

void sock_abort_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	/* TCP sends a reset; a unix socket has none, its peer sees the stream end early. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

void sframe_build(struct lmig_sframe *f, unsigned int type, unsigned int flags, uint32_t stream,
		  uint32_t len, uint64_t seq, uint64_t offset, uint32_t raw_len, uint64_t hash)
{
	*f = (struct lmig_sframe){
		.magic = htole32(LMIG_SFRAME_MAGIC), .type = htole16(type), .flags = htole16(flags),
		.stream = htole32(stream), .len = htole32(len), .seq = htole64(seq),
		.offset = htole64(offset), .raw_len = htole32(raw_len), .hash = htole64(hash),
	};
	f->checksum = htole64(XXH3_64bits(f, sizeof(*f)));
}

bool sframe_csum_ok(const struct lmig_sframe *f)
{
	struct lmig_sframe h = *f;

	h.checksum = 0;
	return XXH3_64bits(&h, sizeof(h)) == le64toh(f->checksum);
}

void sreply_build(struct lmig_sreply *r, unsigned int type, unsigned int status, uint32_t stream,
		  uint64_t bytes, const char *reason)
{
	memset(r, 0, sizeof(*r));
	r->magic = htole32(LMIG_SREPLY_MAGIC);
	r->type = htole16(type);
	r->status = htole16(status);
	r->stream = htole32(stream);
	r->bytes = htole64(bytes);
	if (reason)
		snprintf(r->reason, sizeof(r->reason), "%s", reason);
	r->checksum = htole64(XXH3_64bits(r, sizeof(*r)));
}

bool sreply_csum_ok(const struct lmig_sreply *r)
{
	struct lmig_sreply h = *r;

	h.checksum = 0;
	return XXH3_64bits(&h, sizeof(h)) == le64toh(r->checksum);
}
