/* SPDX-License-Identifier: GPL-2.0-only */
/* Blocking socket helpers for set-up and handshakes; bulk data goes through io_uring. */
#ifndef LMIG_NET_H
#define LMIG_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Each returns an fd or 0, or -1 with lmig_err() set. */
/* net_connect() also leaves the cause in errno (0: the name did not resolve). */
int net_connect(const char *hostport, int timeout_ms);
int net_listen(const char *hostport, int backlog);
int net_accept(int lfd, int timeout_ms, char *peer, size_t peerlen);
int net_read_full(int fd, void *buf, size_t len, int timeout_ms, const char *what);
/*
 * Wait (until deadline_ms, CLOCK_MONOTONIC milliseconds) for data and
 * read what there is, up to len: bytes (> 0), or -1 with lmig_err() on a
 * timeout, a closed connection or an error.
 */
ssize_t net_recv_some(int fd, void *buf, size_t len, long long deadline_ms, const char *what);
int net_write_full(int fd, const void *buf, size_t len, int timeout_ms, const char *what);
/* Local port a listening socket is bound to (for HOST:0). */
int net_local_port(int fd);
/* Is the connected peer on a loopback address? */
bool net_is_loopback(int fd);
/*
 * Close connections whose peer may still be sending: FIN first, then read
 * and drop what arrives until each peer closes or timeout_ms passes.  A
 * plain close() with unread data sends a RST, and a RST can destroy what
 * we sent last (a verdict) before the peer reads it.
 */
void net_close_draining(const int *fds, unsigned int n, int timeout_ms);
/* Options for a bulk data socket. */
void net_tune(int fd);

#endif
