/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tests' own loopback sockets: fake peers and the proxy.  All CLOEXEC,
 * so a spawned lmig never holds a test's end of a connection open.
 */
#ifndef SELFTEST_SOCK_H
#define SELFTEST_SOCK_H

#include <stddef.h>

/* Listen on 127.0.0.1 with a kernel-chosen port; returns the fd, or -1. */
int sock_listen(int *port);
/*
 * Bind a port on 127.0.0.1 without listening: connects to it are refused,
 * and nobody else can take the port while the fd is open.
 */
int sock_reserve(int *port);
int sock_connect(int port);
/* accept() with a deadline; -1 on timeout or error. */
int sock_accept(int lfd, double timeout_s);
/* Whole buffer or -1 (error, EOF, or timeout). */
int sock_read_full(int fd, void *buf, size_t len, double timeout_s);
int sock_write_full(int fd, const void *buf, size_t len);
/* A unix stream socket listening at path, or connected to it; fd or -1. */
int sock_unix_listen(const char *path);
int sock_unix_connect(const char *path);

#endif
