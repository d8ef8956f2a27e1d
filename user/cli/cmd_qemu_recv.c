// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig qemu recv`: the destination side.  The destination QEMU waits
 * with -incoming defer and its guest RAM in shared backends; lmig finds
 * their files over QMP, has QEMU listen for its own stream on a unix
 * socket (migrate-incoming), accepts `lmig qemu send`, receives each RAM
 * block in place into the file QEMU maps (one image_recv each, side by
 * side; a block on hugetlbfs is written through a mapping of its file), relays QEMU's stream, and reports QEMU's result back.  QEMU runs
 * no guest code before its devices arrived, which come only after every
 * block's verified commit: nothing reads the RAM while it is written.
 * On any failure the destination QEMU is told to quit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cmd_qemu.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "chan/net.h"
#include "chan/tls.h"
#include "host/qmp.h"
#include "host/qmp_mig.h"
#include "live/qemu_link.h"

/* The source may take this long over its pre-copy before QEMU's stream starts. */
#define PRECOPY_WAIT_MS	(24 * 3600 * 1000)

struct block_recv {
	pthread_t th;
	struct recv_opts o;
	char listen[300];
	int pipe[2];
	struct image_stats *st;
	int *ret;
	char err[300];
};

static void *recv_thread(void *arg)
{
	struct block_recv *br = arg;

	*br->ret = image_recv(&br->o, br->st);
	if (*br->ret)
		snprintf(br->err, sizeof(br->err), "%s", lmig_errmsg());
	return NULL;
}

/* The source's blocks, matched with ours (qlink_match()): r->b in the source's order. */
static int match_blocks(struct qemu_result *r, const struct qmem_block *mine, unsigned int n,
			const struct qlink_block *theirs, unsigned int tn, char *detail, size_t dl)
{
	int bad = qlink_match(mine, n, theirs, tn, r->b);

	if (bad < 0) {
		r->nblocks = tn;
		return 0;
	}
	if ((unsigned int)bad < tn)
		snprintf(detail, dl, "the source's RAM block %.63s of %llu bytes is not among this"
			 " QEMU's shared backends", theirs[bad].id,
			 (unsigned long long)theirs[bad].size);
	else
		snprintf(detail, dl, "this QEMU's shared backend %.63s (%llu bytes) is not among"
			 " the source's", mine[bad - tn].id,
			 (unsigned long long)mine[bad - tn].size);
	return -1;
}

/* Start every block's receiver; their ports into ports. */
static int start_blocks(const struct qemu_args *a, struct qemu_result *r, struct block_recv *br,
			uint16_t *ports, unsigned int *started)
{
	for (unsigned int i = 0; i < r->nblocks; i++) {
		char buf[16] = "";
		ssize_t n;

		br[i].o = (struct recv_opts){
			.out = r->b[i].path, .in_place = true, .expect_size = r->b[i].size,
			.timeout_ms = a->timeout_ms, .accept_timeout_ms = a->timeout_ms,
			.sync = true, .tls = a->tls, .progress = a->progress && r->nblocks == 1,
			.events = a->so.events,
		};
		if (qemu_host_port(a->listen, 0, br[i].listen, sizeof(br[i].listen)))
			return lmig_err("bad --listen %s", a->listen);
		br[i].o.listen = br[i].listen;
		if (pipe(br[i].pipe))
			return lmig_err_errno(errno, "pipe");
		br[i].o.ready_fd = br[i].pipe[1];
		br[i].st = &r->st[i];
		br[i].ret = &r->block_ret[i];
		if (pthread_create(&br[i].th, NULL, recv_thread, &br[i]))
			return lmig_err("cannot start a thread");
		(*started)++;
		n = read(br[i].pipe[0], buf, sizeof(buf) - 1);
		close(br[i].pipe[0]);
		if (n <= 0 || atoi(buf) <= 0 || atoi(buf) > 65535)
			return lmig_err("RAM block %s: its receiver did not listen: %s", r->b[i].id,
					br[i].err[0] ? br[i].err : "?");
		ports[i] = (uint16_t)atoi(buf);
	}
	return 0;
}

static int join_blocks(struct qemu_result *r, struct block_recv *br, unsigned int started)
{
	int failed = 0;

	for (unsigned int i = 0; i < started; i++)
		pthread_join(br[i].th, NULL);
	for (unsigned int i = 0; i < started; i++)
		if (r->block_ret[i] && !failed++)
			lmig_err("RAM block %s: %s", r->b[i].id, br[i].err);
	return failed ? -1 : 0;
}

/* Accept the source and agree on the blocks; 0, or -1 (refused or broken). */
static int accept_source(const struct qemu_args *a, struct qemu_result *r, struct qlink *l,
			 const struct qmem_block *mine, unsigned int nmine)
{
	struct qlink_block theirs[QMEM_MAX];
	char detail[200];
	unsigned int tn;
	int lfd;

	lfd = net_listen(a->listen, 1);
	if (lfd < 0)
		return -1;
	if (a->ready_fd >= 0) {
		dprintf(a->ready_fd, "%d\n", net_local_port(lfd));
		close(a->ready_fd);
	}
	l->fd = net_accept(lfd, a->accept_timeout_ms, NULL, 0);
	close(lfd);
	if (l->fd < 0)
		return -1;
	if (a->tls && tls_handshake(a->tls, l->fd, a->timeout_ms, "sender", &l->tls))
		return -1;
	if (qlink_read_hello(l, theirs, &tn, a->timeout_ms))
		return -1;
	if (match_blocks(r, mine, nmine, theirs, tn, detail, sizeof(detail))) {
		qlink_refuse(l, QLR_BLOCKS, detail);
		return lmig_err("%s", detail);
	}
	return 0;
}

/* Long because: the destination's steps in order; every failure ends in quit. */
int qemu_recv_run(const struct qemu_args *a, struct qemu_result *r)
{
	struct qlink l = { .fd = -1, .timeout_ms = a->timeout_ms };
	struct qmem_block mine[QMEM_MAX];
	struct block_recv br[QMEM_MAX];
	uint16_t ports[QMEM_MAX];
	struct qrelay relay = { .lfd = -1, .qfd = -1 };
	struct qmp_migrate m;
	struct qmp q = { .fd = -1 };
	char detail[200], sock[108] = "", uri[128];
	unsigned int nmine = 0, started = 0;
	enum qmem_why mw;
	double t0 = now_s();
	int ret = -1;

	memset(br, 0, sizeof(br));
	r->qemu_downtime_ms = r->qemu_total_ms = -1;
	r->stage = "qmp";
	if (qmp_open(&q, a->qmp, a->timeout_ms))
		return -1;
	r->stage = "memdev";
	mw = qmem_list(&q, mine, &nmine, detail, sizeof(detail));
	if (mw != QMEM_OK) {
		if (mw != QMEM_QMP)
			qemu_memdev_error("qemu recv", mw, detail);
		goto quit;
	}
	r->stage = "incoming";
	snprintf(sock, sizeof(sock), "/tmp/lmig-qemu-dst-%d.sock", (int)getpid());
	snprintf(uri, sizeof(uri), "unix:%s", sock);
	unlink(sock);
	if (qmig_caps(&q, false) || qmig_incoming(&q, uri))
		goto quit;
	r->stage = "accept";
	if (accept_source(a, r, &l, mine, nmine))
		goto quit;
	r->stage = "ram";
	if (start_blocks(a, r, br, ports, &started)) {
		qlink_refuse(&l, QLR_SETUP, lmig_errmsg());
		goto join;
	}
	if (qlink_ready(&l, ports, r->nblocks) ||
	    qrelay_dst_start(&relay, &l, sock, a->live_timeout_ms ? a->live_timeout_ms :
			     PRECOPY_WAIT_MS))
		goto join;
	if (join_blocks(r, br, started)) {
		started = 0;
		goto quit;
	}
	started = 0;
	r->stage = "devices";
	if (qrelay_join(&relay)) {
		lmig_err("%s", relay.err);
		goto quit;
	}
	r->dev_bytes = relay.bytes;
	r->stage = "load";
	if (qmig_wait(&q, "completed", a->timeout_ms, &m))
		goto quit;
	snprintf(r->qemu_status, sizeof(r->qemu_status), "%s", m.status);
	if (strcmp(m.status, "completed")) {
		lmig_err("QEMU's incoming migration ended %s%s%s", m.status,
			 m.error_desc[0] ? ": " : "", m.error_desc);
		qlink_result(&l, false, lmig_errmsg());
		goto quit;
	}
	r->qemu_total_ms = m.total_time_ms;
	if (qlink_result(&l, true, ""))
		goto out;
	r->stage = NULL;
	ret = 0;
	goto out;
join:
	if (l.fd >= 0)
		shutdown(l.fd, SHUT_RDWR);	/* the source's sessions give up too */
	join_blocks(r, br, started);
quit:
	if (relay.started)
		qrelay_stop(&relay);
	/* A destination QEMU that did not get the whole guest must not run it. */
	if (q.fd >= 0) {
		char err[300];

		snprintf(err, sizeof(err), "%s", lmig_errmsg());
		qmig_quit(&q);
		lmig_err_clear();
		lmig_err("%s", err);
	}
out:
	if (relay.started)
		qrelay_join(&relay);
	if (sock[0])
		unlink(sock);	/* QEMU's listening socket: QEMU leaves it */
	r->total_s = now_s() - t0;
	if (l.fd >= 0)
		close(l.fd);
	tls_chan_free(&l.tls);
	qmp_close(&q);
	return ret;
}
