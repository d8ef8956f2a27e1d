// SPDX-License-Identifier: GPL-2.0-only
/*
 * The QMP client (user/host/qmp.c) against a peer that says whatever the
 * fuzzer likes: its framing of messages, the greeting, replies matched
 * by id, events, QEMU's errors, and each query's reading of its reply.
 *
 * Input: all the peer sends.  A thread plays QEMU on a unix socket of the
 * process's own: it accepts the client, writes the input, shuts its
 * sending side (so the client never waits for a timeout) and reads what
 * the client sends until it closes.  The client opens (greeting,
 * qmp_capabilities: id 1) and, if that worked, runs query-migrate (2),
 * query-cpus-fast (3), query-migrate-parameters (4), query-kvm (5) and
 * qmp_exec of query-status (6); the seeds (corpus/fuzz_qmp/) are QEMU
 * 7.2's own messages with those ids.
 *
 * Besides surviving the sanitizers: every failure is one line, starting
 * "QMP PATH: "; a failed open leaves nothing open; the answers are
 * NUL-terminated within their fields, vCPUs within the room given with
 * real thread ids, the accelerator one of the three words, and the text
 * qmp_exec hands out is one JSON value that parses alone.  FUZZ_VERBOSE=1
 * prints what the client said of each input.
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/qmp.h"
#include "lib/err.h"
#include "lib/json_read.h"

static char path[108];
static int lfd = -1;

struct peer {
	const uint8_t *d;
	size_t n;
};

static void *peer_run(void *arg)
{
	struct peer *p = arg;
	struct pollfd pfd = { .fd = lfd, .events = POLLIN };
	char buf[4096];
	size_t off = 0;
	int fd;

	/* Never stuck: a client that did not connect is not waited for. */
	if (poll(&pfd, 1, 5000) != 1)
		return NULL;
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	while (off < p->n) {
		ssize_t w = send(fd, p->d + off, p->n - off, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		off += w;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
	return NULL;
}

static void unlink_path(void)
{
	unlink(path);
}

static void setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(path, sizeof(path), "/tmp/lmig-fuzz_qmp-%d.sock", (int)getpid());
	unlink(path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4))
		abort();
	atexit(unlink_path);
}

/* A failure: one line, naming the socket; then cleared for the next call. */
static void check_err(void)
{
	char head[130];

	snprintf(head, sizeof(head), "QMP %s: ", path);
	if (getenv("FUZZ_VERBOSE"))
		fprintf(stderr, "fuzz_qmp: %s\n", lmig_errmsg());
	if (!lmig_has_err() || strncmp(lmig_errmsg(), head, strlen(head)) ||
	    strchr(lmig_errmsg(), '\n'))
		abort();
	lmig_err_clear();
}

static void terminated(const char *s, size_t len)
{
	if (strnlen(s, len) >= len)
		abort();
}

static void queries(struct qmp *q)
{
	struct qmp_vcpu v[4];
	struct qmp_migrate m;
	struct qmp_params p;
	struct jr_doc d;
	char a[8], out[512];
	int n;

	if (qmp_query_migrate(q, &m)) {
		check_err();
	} else {
		terminated(m.status, sizeof(m.status));
		terminated(m.error_desc, sizeof(m.error_desc));
	}
	n = qmp_vcpus(q, v, 4);
	if (n < 0)
		check_err();
	if (n > 4)
		abort();
	for (int i = 0; i < n; i++)
		if (v[i].tid <= 0 || v[i].index < 0)
			abort();
	if (qmp_params(q, &p))
		check_err();
	if (qmp_accel(q, a, sizeof(a)))
		check_err();
	else if (strcmp(a, "kvm") && strcmp(a, "tcg") && strcmp(a, ""))
		abort();
	if (qmp_exec(q, "query-status", NULL, out, sizeof(out))) {
		check_err();
	} else {
		if (getenv("FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz_qmp: %s %s %d vCPUs, %s, %s\n", m.status, a, n, out,
				q->last_event);
		if (jr_parse(&d, out, strlen(out), &jr_limits_default, NULL))
			abort();
		jr_free(&d);
	}
	terminated(q->last_event, sizeof(q->last_event));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	struct peer p = { .d = data, .n = n };
	pthread_t thr;
	struct qmp q;

	if (lfd < 0)
		setup();
	lmig_err_clear();
	if (pthread_create(&thr, NULL, peer_run, &p))
		abort();
	if (qmp_open(&q, path, 5000)) {
		check_err();
		if (q.fd != -1 || q.buf)
			abort();
	} else {
		if (q.version[0] > 0xffff)
			abort();
		queries(&q);
	}
	qmp_close(&q);
	pthread_join(thr, NULL);
	return 0;
}
