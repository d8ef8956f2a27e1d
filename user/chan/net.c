// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "chan/net.h"
#include "lib/parse.h"

static int resolve(const char *hostport, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC };
	char host[256], port[16];
	int rc;

	if (parse_hostport("address", hostport, host, sizeof(host), port, sizeof(port)))
		return -1;
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, res);
	if (rc)
		return lmig_err("cannot resolve '%s': %s", hostport, gai_strerror(rc));
	return 0;
}

bool net_is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl))
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

void net_tune(int fd)
{
	int one = 1;

	/* Frames are batched by lmig itself; Nagle would only delay the END frame. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int net_connect(const char *hostport, int timeout_ms)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = 0;

	if (resolve(hostport, false, &res))
		return errno = 0, -1;	/* no system error to tell */
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t sl = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			goto connected;
		err = errno;
		if (err == EINPROGRESS) {
			p = (struct pollfd){ .fd = fd, .events = POLLOUT };
			int n = poll(&p, 1, timeout_ms);

			if (n == 0)
				err = ETIMEDOUT;
			else if (n < 0)
				err = errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && !err)
				goto connected;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	lmig_err_errno(err, "cannot connect to %s", hostport);
	errno = err;
	return -1;
connected:
	freeaddrinfo(res);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	net_tune(fd);
	return fd;
}

int net_listen(const char *hostport, int backlog)
{
	struct addrinfo *res, *ai;
	int fd = -1, err = 0, one = 1;

	if (resolve(hostport, true, &res))
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return lmig_err_errno(err, "cannot listen on %s", hostport);
	return fd;
}

int net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int net_accept(int lfd, int timeout_ms, char *peer, size_t peerlen)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int n, fd;

	n = poll(&p, 1, timeout_ms);
	if (n == 0)
		return lmig_err("no connection within %d ms", timeout_ms);
	if (n < 0)
		return lmig_err_errno(errno, "accept");
	fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	if (fd < 0)
		return lmig_err_errno(errno, "accept");
	if (peer && getnameinfo((struct sockaddr *)&ss, sl, peer, peerlen, NULL, 0,
				NI_NUMERICHOST))
		snprintf(peer, peerlen, "?");
	net_tune(fd);
	return fd;
}

static int wait_fd(int fd, short ev, long long deadline, const char *what)
{
	struct pollfd p = { .fd = fd, .events = ev };
	long long left = deadline - now_ms();
	int n;

	if (left < 0)
		left = 0;
	n = poll(&p, 1, (int)left);
	if (n == 0)
		return lmig_err("%s: timed out", what);
	if (n < 0 && errno != EINTR)
		return lmig_err_errno(errno, "%s", what);
	return 0;
}

ssize_t net_recv_some(int fd, void *buf, size_t len, long long deadline_ms, const char *what)
{
	for (;;) {
		ssize_t n;

		if (wait_fd(fd, POLLIN, deadline_ms, what))
			return -1;
		n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n > 0)
			return n;
		if (n == 0)
			return lmig_err("%s: connection closed by peer", what);
		if (errno != EAGAIN && errno != EINTR)
			return lmig_err_errno(errno, "%s", what);
	}
}

int net_read_full(int fd, void *buf, size_t len, int timeout_ms, const char *what)
{
	long long deadline = now_ms() + timeout_ms;
	size_t got = 0;

	while (got < len) {
		ssize_t n = net_recv_some(fd, (char *)buf + got, len - got, deadline, what);

		if (n < 0)
			return -1;
		got += n;
	}
	return 0;
}

int net_write_full(int fd, const void *buf, size_t len, int timeout_ms, const char *what)
{
	long long deadline = now_ms() + timeout_ms;
	size_t put = 0;

	while (put < len) {
		if (wait_fd(fd, POLLOUT, deadline, what))
			return -1;
		ssize_t n = send(fd, (const char *)buf + put, len - put,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return lmig_err_errno(errno, "%s", what);
		}
		put += n;
	}
	return 0;
}

void net_close_draining(const int *fds, unsigned int n, int timeout_ms)
{
	static char sink[65536];
	struct pollfd pf[64];
	unsigned int open_n = 0;
	double deadline = now_s() + timeout_ms / 1000.0;

	for (unsigned int i = 0; i < n && i < 64; i++) {
		pf[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (fds[i] >= 0) {
			shutdown(fds[i], SHUT_WR);
			open_n++;
		}
	}
	while (open_n && now_s() < deadline) {
		if (poll(pf, n < 64 ? n : 64, 20) <= 0)
			continue;
		for (unsigned int i = 0; i < n && i < 64; i++) {
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			ssize_t r = recv(pf[i].fd, sink, sizeof(sink), MSG_DONTWAIT);

			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(pf[i].fd);
				pf[i].fd = -1;
				open_n--;
			}
		}
	}
	for (unsigned int i = 0; i < n; i++)
		if (i >= 64 ? fds[i] >= 0 : pf[i].fd >= 0)
			close(fds[i]);
}
