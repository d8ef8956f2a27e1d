// SPDX-License-Identifier: GPL-2.0-only
/*
 * Sender engine: one thread, one io_uring.
 *
 * Each channel owns NBUF registered buffers, and a buffer goes round:
 *
 *   free -> READING: a read of the next run of pages lands at the
 *           payload end of the buffer (IORING_OP_READ_FIXED);
 *   READY: the pages were encoded in place — hashed while cache-hot,
 *          zero pages dropped, lz4 output or raw pages packed behind
 *          each other — and the header and descriptors written right
 *          before them, so the frame is one contiguous block;
 *   sent with IORING_OP_SEND_ZC from the registered buffer (plain send
 *   where the kernel lacks it, or on loopback where it only costs).
 *
 * Reading through the kernel rather than through a mapping of the image
 * costs one copy from the page cache, which is cheaper than faulting in
 * and walking a mapping of every page, and every page is hashed and sent
 * from the same private copy: what the digest covers is what was sent,
 * even if the image changes meanwhile.
 *
 * A channel has at most one send in flight, so its frames stay in order
 * on the stream; a buffer is reused only after its send completed AND
 * every zero-copy notification for it arrived, because until then the
 * kernel may still read it.  With TLS the kernel (kTLS) encrypts what the
 * sends carry; without kTLS a frame is sealed into its buffer's twin,
 * cipher, just before it is sent (records must leave in the order they
 * were sealed, and frames leave a channel in buffer order).  Channel 0
 * also has a receive armed for the
 * receiver's verdict from the start, so an early rejection (checksum,
 * disk full) is reported as such.
 *
 * Which pages go out is a bitmap, "todo": every page in a cold send; in a
 * live send (--pid) every page in round 0 and then, round after round, the
 * pages a dirty tracker harvested.  A round ends with a ROUND frame on
 * every channel (END frames after the last round).  The live controller
 * (live/precopy.h) harvests, predicts the downtime, and decides when to
 * freeze the workload for the final round: it is asked at every round's
 * end and, once all is on the wire, for the switch-over.
 */
#include <errno.h>
#include <signal.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/clock.h"
#include "chan/codec.h"
#include "lib/err.h"
#include "image/image_file.h"
#include "chan/channel.h"
#include "lib/parse.h"
#include "chan/policy.h"
#include "chan/ratelimit.h"
#include "live/precopy.h"
#include "chan/tls.h"
#include "live/track.h"
#include "host/tracemark.h"
#include "chan/ud.h"
#include "chan/uring.h"
#include "image/image.h"


#include "image/image_send.h"

static int channels_connect(struct sender *s)
{
	uint32_t want = LMIG_CAPS_V1 | LMIG_CAP_CONFIRM | (s->live ? LMIG_CAP_ROUNDS : 0) |
			(s->o->compress != COMPRESS_NONE ? LMIG_CAP_ZSTD : 0);
	struct hello_info hi = { .caps = want, .nchannels = s->nch, .image_size = s->im.size };
	uint32_t caps, all = want;

	if (chan_session(&hi))
		return -1;
	for (unsigned int i = 0; i < s->nch; i++) {
		hi.channel = i;
		if (chan_dial(&s->ch[i].link, s->o->to, s->o->timeout_ms, s->o->tls, false, &hi,
			      &caps))
			return -1;
		if ((caps & LMIG_CAPS_V1) != LMIG_CAPS_V1)
			return lmig_err("receiver lacks lz4 or zero-run support (caps 0x%x)", caps);
		if (s->live && !(caps & LMIG_CAP_ROUNDS))
			return lmig_err("receiver cannot take a live migration (no rounds; caps 0x%x): upgrade its lmig",
					caps);
		if (i == 0)
			s->confirm = caps & LMIG_CAP_CONFIRM;
		all &= caps;
	}
	/* zstd pages only to a receiver that took them on every channel; lz4 otherwise. */
	if (all & LMIG_CAP_ZSTD)
		cpolicy_allow_zstd(&s->pol);
	return 0;
}

static int result_got(void *arg);

static int ring_setup(struct sender *s)
{
	if (chan_tx_setup(&s->tx, &s->ring, 4 * s->nch * NBUF + 8, s->o->zerocopy,
			  s->ch[0].link.fd, s->nch, NBUF, BUF_SIZE))
		return -1;
	for (unsigned int c = 0; c < s->nch; c++)
		for (unsigned int b = 0; b < NBUF; b++)
			if (chan_tx_buf(&s->tx, &s->ch[c].link, c, b, &s->ch[c].buf[b].sb))
				return -1;
	s->rp = (struct chan_reply){ .ch = &s->ch[0].link, .msg = &s->result,
				     .len = sizeof(s->result), .stop = &s->result_in,
				     .got = result_got, .arg = s, .what = "verdict",
				     .waiting = "waiting for the receiver's verdict" };
	return chan_reply_init(&s->rp);
}

/* ---- sending ---------------------------------------------------------- */

static int submit_send(struct sender *s, unsigned int c)
{
	struct image_tx_chan *ch = &s->ch[c];

	if (chan_send(&s->tx, &ch->link, c, ch->head, &ch->buf[ch->head].sb))
		return -1;
	ch->inflight = true;
	return 0;
}

static void arm_result(struct sender *s)
{
	if (s->result_armed)
		return;
	chan_reply_arm(&s->rp, &s->ring);
	s->result_armed = true;
}

static bool all_sent(struct sender *s);

static void release_if_done(struct sbuf *b)
{
	if (chan_sbuf_idle(&b->sb))
		b->state = SB_FREE;
}

/* A whole reply is in s->result: a round acknowledged, or the verdict. */
static int result_got(void *arg)
{
	struct sender *s = arg;
	uint64_t round;
	int ack = wire_round_ack_parse(&s->result, &round);

	if (ack < 0)
		return -1;
	if (ack == 0) {
		if (!s->live || round != s->rounds_acked)
			return lmig_err("receiver acknowledged round %llu out of turn",
					(unsigned long long)round);
		s->rounds_acked++;
		return 0;
	}
	s->result_in = true;
	return 0;
}

/* A send's completion on channel c. */
static int send_done(struct sender *s, unsigned int c, unsigned int bi,
		     const struct io_uring_cqe *cqe)
{
	struct image_tx_chan *ch = &s->ch[c];
	struct sbuf *b = &ch->buf[bi];
	int rc = chan_send_done(&s->tx, &b->sb, cqe, c, "mid-transfer", &s->st->bytes_wire);

	if (rc != CHAN_NOTIF)
		ch->inflight = false;
	if (rc == CHAN_NO_ZC)
		s->st->zerocopy = false;
	if (rc == CHAN_SENT) {
		ch->head = (ch->head + 1) % NBUF;
		ch->queued--;
	}
	/* A short send or a refused zero-copy stays READY: run() sends it again. */
	if (rc == CHAN_NOTIF || rc == CHAN_SENT)
		release_if_done(b);
	return rc < 0 ? -1 : 0;
}

static int handle_cqe(struct sender *s, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned int kind = ud_kind(ud), c = ud_a(ud), bi = ud_b(ud);

	if (kind == UD_REPLY) {
		s->result_armed = false;
		if (chan_reply_in(&s->rp, cqe->res, all_sent(s) ?
				  "receiver closed the connection before it committed the image" :
				  "receiver closed the connection mid-transfer"))
			return -1;
		if (!s->result_in)
			arm_result(s);
		return 0;
	}
	if (kind == UD_READ)
		return send_read_done(s, c, bi, cqe->res);
	return send_done(s, c, bi, cqe);
}

static bool all_sent(struct sender *s)
{
	if (!s->round_closed || !s->final)
		return false;
	for (unsigned int c = 0; c < s->nch; c++)
		if (!s->ch[c].end_built || s->ch[c].queued)
			return false;
	return true;
}

static bool drained(struct sender *s)
{
	for (unsigned int c = 0; c < s->nch; c++)
		if (s->ch[c].rounds_due || s->ch[c].queued)
			return false;
	return true;
}

/* ---- rounds ----------------------------------------------------------- */

static void set_markers(struct sender *s, bool end)
{
	for (unsigned int c = 0; c < s->nch; c++) {
		if (end)
			s->ch[c].end_due = true;
		else
			s->ch[c].rounds_due++;
	}
}

/*
 * Begin round st->rounds with the pages in the todo bitmap; in a live
 * send, the controller adds to its record what the harvest measured.
 */
static int round_begin(struct sender *s, uint64_t pages, bool final)
{
	struct round_stat *r;
	unsigned int n = s->st->rounds;

	r = realloc(s->st->round, (n + 1) * sizeof(*r));
	if (!r)
		return lmig_err("out of memory");
	s->st->round = r;
	r += n;
	*r = (struct round_stat){ .round = n, .dirty_pages = pages, .frozen = final && s->live,
				  .start_s = now_s() - s->t0, .faults_per_s = -1,
				  .write_faults_per_s = -1, .guest_faults_per_s = -1,
				  .guest_exits_per_s = -1, .steal_pct = -1 };
	s->st->rounds = n + 1;
	s->final = final;
	s->round_closed = false;
	s->cursor = 0;
	s->round_pages = 0;
	s->round_wire = 0;
	s->round_t0 = now_s();
	if (s->live)
		tracemark("round %u begins: %llu pages%s", n, (unsigned long long)pages,
			  final ? ", workload paused" : "");
	return 0;
}

static void show_progress(struct sender *s, bool final);

/* A round the controller asked for: its pages are in todo. */
static int live_round(struct sender *s, const struct live_verdict *v, bool final)
{
	if (round_begin(s, v->pages, final))
		return -1;
	live_round_begun(s->lv);
	show_progress(s, false);
	return 0;
}

/*
 * Everything sent and acknowledged: the controller freezes, the final
 * round begins empty and final_part() fills it as the harvest goes on.
 */
static int switch_over(struct sender *s)
{
	struct live_verdict v = { .step = LIVE_NEXT };

	s->draining = false;
	if (live_switch_over(s->lv, s->todo))
		return -1;
	s->harvesting = true;
	return live_round(s, &v, true);
}

/* The next part of the final harvest: its pages join the round under way. */
static int final_part(struct sender *s)
{
	uint64_t from = 0, pages = 0;
	int more = live_final_part(s->lv, s->todo, &from, &pages);

	if (more < 0)
		return -1;
	/* Parts come in any order: the send looks again from this one's start. */
	if (from < s->cursor)
		s->cursor = from;
	if (!more)
		s->harvesting = false;
	return 0;
}

/* The current round's pages are all encoded: mark its end, ask what next. */
static int round_close(struct sender *s)
{
	struct live_sample smp = { .final = s->final, .pages = s->round_pages,
				   .wire = s->round_wire, .secs = now_s() - s->round_t0 };
	struct live_verdict v = { .step = LIVE_DONE };

	s->round_closed = true;
	s->st->round[s->st->rounds - 1].bytes_wire = s->round_wire;
	if (s->live)
		live_round_end(s->lv, &smp, s->todo, &v);
	if (s->final) {
		codec_digest(s->hashes, s->im.npages, s->digest);
		s->digest_done = true;
		set_markers(s, true);
		return 0;
	}
	set_markers(s, false);
	switch (v.step) {
	case LIVE_FREEZE_AFTER_DRAIN:
		s->draining = true;	/* switch_over() once it is all on the wire */
		return 0;
	case LIVE_NEXT:
		return live_round(s, &v, false);
	case LIVE_FAIL:
		return -1;	/* lmig_err() says why */
	case LIVE_DONE:
		break;
	}
	return lmig_err("round %u ended without a verdict", s->st->rounds - 1);
}

static void show_progress(struct sender *s, bool final)
{
	double t = now_s();
	uint64_t done = s->pages_done * LMIG_PAGE_SIZE;
	struct image_progress p = { .send = true, .final = final, .plain = s->o->plain_progress,
				    .elapsed = t - s->t0, .total = s->im.size,
				    .done = done > s->im.size ? s->im.size : done,
				    .lz4 = s->pol.lz4, .zstd = s->pol.lz4 && s->pol.zstd,
				    .live = s->live };

	if (!s->o->progress || (!final && t - s->last_progress < 0.5 && !s->o->plain_progress))
		return;
	/* Plain lines (not a terminal): one per round, not a redraw twice a second. */
	if (s->live && s->o->plain_progress && !final && s->last_progress >= s->round_t0 &&
	    s->last_progress)
		return;
	s->last_progress = t;
	if (s->live)
		live_progress(s->lv, s->round_pages, &p);
	image_tell(s->o->events, IMAGE_EV_PROGRESS, &p, s->st);
}

/* SIGINT/SIGTERM/SIGHUP end a live send through its normal failure path. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static int confirm_commit(struct sender *s);

static int run(struct sender *s)
{
	int stall_ms = s->o->timeout_ms;
	double last_event = now_s();

	arm_result(s);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts;
		bool blocked;
		double wait = send_fill(s, &blocked), t;
		bool rate_wait = wait > 0;
		int ret;

		if (wait < 0)
			return -1;
		if (!s->round_closed && !s->reading && !s->harvesting &&
		    send_next_todo(s) >= s->im.npages) {
			if (round_close(s))
				return -1;
			continue;	/* markers and the next round's pages */
		}
		if (s->draining && drained(s) && s->rounds_acked == s->st->rounds) {
			if (switch_over(s))
				return -1;
			continue;
		}
		for (unsigned int c = 0; c < s->nch; c++)
			if (!s->ch[c].inflight && s->ch[c].queued &&
			    s->ch[c].buf[s->ch[c].head].state == SB_READY &&
			    submit_send(s, c))
				return -1;
		if (s->live && !s->st->t_final_sent && all_sent(s))
			s->st->t_final_sent = now_s();
		if (s->result_in)
			break;
		if (all_sent(s) && !s->result_armed)
			break;
		if (stop_signal)
			return lmig_err("interrupted by signal %d", (int)stop_signal);
		/* --timeout bounds pre-copy even inside a long round. */
		if (s->live && live_check_timeout(s->lv, s->round_pages))
			return -1;

		io_uring_submit(&s->ring);
		if (s->harvesting) {
			/* The parts harvested meanwhile; a look again soon for more. */
			if (final_part(s))
				return -1;
			last_event = now_s();
			if (wait <= 0 || wait > 0.001)
				wait = 0.001;
		} else if (wait <= 0 || wait > 0.5) {
			wait = 0.5;
		}
		ts.tv_sec = (long long)wait;
		ts.tv_nsec = (long long)((wait - ts.tv_sec) * 1e9);
		t = now_s();
		/* Waiting for our own --bandwidth tokens is not a stall of the receiver. */
		if (rate_wait)
			last_event = t;
		ret = io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts);
		if (blocked || rate_wait || all_sent(s))
			cpolicy_waited(&s->pol, now_s() - t);
		if (ret < 0 && ret != -ETIME && ret != -EINTR)
			return lmig_err_errno(-ret, "io_uring_wait_cqe");
		if (ret == 0) {
			unsigned int head, n = 0;

			io_uring_for_each_cqe(&s->ring, head, cqe) {
				n++;
				if (handle_cqe(s, cqe)) {
					io_uring_cq_advance(&s->ring, n);
					return -1;
				}
			}
			io_uring_cq_advance(&s->ring, n);
			last_event = now_s();
		} else if (now_s() - last_event > stall_ms / 1000.0) {
			return lmig_err("no progress for %d s: receiver stalled", stall_ms / 1000);
		}
		cpolicy_tick(&s->pol, now_s());
		show_progress(s, false);
	}
	if (!s->result_in)
		return lmig_err("receiver sent no verdict");
	if (s->live)
		s->st->t_verdict = now_s();
	if (wire_result_parse(&s->result, &(uint64_t){ 0 }))
		return -1;
	/* Before anything else: a kill of lmig from now on must not resume the source. */
	if (s->live)
		live_commit_point(s->lv);
	if (s->confirm && confirm_commit(s))
		return -1;
	if (s->live)
		live_committed(s->lv);
	/* The kernel may still hold zero-copy references: wait for every notification. */
	for (;;) {
		bool pending = false;
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts = { .tv_sec = 2 };

		for (unsigned int c = 0; c < s->nch; c++)
			for (unsigned int b = 0; b < NBUF; b++)
				pending |= s->ch[c].buf[b].notifs > 0;
		if (!pending)
			break;
		if (io_uring_wait_cqe_timeout(&s->ring, &cqe, &ts))
			break;
		handle_cqe(s, cqe);
		io_uring_cqe_seen(&s->ring, cqe);
	}
	show_progress(s, true);
	return 0;
}

/*
 * LMIG_CAP_CONFIRM: the verdict said "verified, ready to commit", and the
 * guard knows that the source must not run again on its own (a kill of
 * lmig from here on leaves it paused).  Now the receiver is told to
 * commit, and its final result decides.  A FINAL that does not
 * come, or comes damaged, leaves the outcome unknown: the image may or
 * may not be committed, so the source stays paused.
 */
static int confirm_commit(struct sender *s)
{
	struct lmig_result m;
	uint32_t status;
	char why[300];

	wire_result_build_as(&m, LMIG_CONFIRM_MAGIC, LMIG_ST_OK, s->im.npages, NULL);
	if (chan_write_full(s->ch[0].link.fd, &s->ch[0].link.tls, &m, sizeof(m), s->o->timeout_ms,
			    "confirming the commit") == 0) {
		if (chan_read_full(s->ch[0].link.fd, &s->ch[0].link.tls, &m, sizeof(m), s->o->timeout_ms,
				   "waiting for the receiver's final result") == 0 &&
		    wire_final_parse(&m, &status) == 0)
			return status == LMIG_ST_OK ? 0 : -1;	/* not committed: resume */
	}
	/* Even a CONFIRM that failed to go out whole may have reached the receiver. */
	snprintf(why, sizeof(why), "%s", lmig_errmsg());
	lmig_err_clear();
	s->unknown = true;
	return lmig_err("outcome unknown: the receiver verified the image and was told to commit it, but no valid final result came (%s); the source stays paused: check --out on the receiver",
			why);
}

/* ---- set-up ----------------------------------------------------------- */

static int source_open(struct sender *s)
{
	const struct send_opts *o = s->o;

	if (o->anon_size) {
		/* A process's private memory: read with process_vm_readv. */
		s->im = (struct src_image){ .fd = -1, .size = o->anon_size, .in_memory = true,
					    .npages = o->anon_size / LMIG_PAGE_SIZE };
		return 0;
	}
	return src_image_open(&s->im, o->mem);
}

int image_send(const struct send_opts *o, struct image_stats *st)
{
	struct sender s = { .o = o, .st = st, .nch = o->channels, .live = o->pid > 0 };
	uint64_t nw;
	int ret = -1;

	codec_init();
	s.t0 = now_s();
	st->tls = o->tls ? NULL : "off";	/* null: no TLS session came up */
	st->channels = o->channels;
	st->live = s.live;
	if (source_open(&s))
		return -1;
	s.sync_read = s.im.in_memory;
	st->bytes_total = s.im.size;
	st->pages_total = s.im.npages;
	nw = bitmap_words(s.im.npages);
	s.ch = calloc(s.nch, sizeof(*s.ch));
	s.hashes = calloc(s.im.npages, sizeof(*s.hashes));
	s.todo = calloc(nw, 8);
	if (!s.ch || !s.hashes || !s.todo) {
		lmig_err("out of memory for %llu page hashes", (unsigned long long)s.im.npages);
		goto out;
	}
	/* Round 0: every page. */
	memset(s.todo, 0xff, nw * 8);
	if (s.im.npages % 64)
		s.todo[nw - 1] = (1ULL << (s.im.npages % 64)) - 1;
	for (unsigned int c = 0; c < s.nch; c++)
		s.ch[c].link.fd = -1;
	cpolicy_init(&s.pol, o->compress);
	ratelimit_init(&s.rl, o->bandwidth);
	/*
	 * A slow --bandwidth gets smaller frames, so the receiver sees data
	 * often enough not to take the link for a stalled sender.
	 */
	s.batch_pages = BATCH_TARGET / LMIG_PAGE_SIZE;
	if (o->bandwidth && o->bandwidth / 10 < BATCH_TARGET)
		s.batch_pages = (o->bandwidth / 10 > BATCH_MIN ? o->bandwidth / 10 : BATCH_MIN) /
				LMIG_PAGE_SIZE;
	/* The tracker starts before round 0 reads anything: no write goes unseen. */
	if (s.live) {
		struct sigaction sa = { .sa_handler = on_stop };
		struct live_image li = { .fd = s.im.fd, .size = s.im.size,
					 .npages = s.im.npages, .sent = s.hashes };

		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		if (live_open(&s.lv, o, st, &li, s.t0))
			goto out;
	}
	if (channels_connect(&s) || ring_setup(&s))
		goto out;
	st->zerocopy = s.tx.zc;
	st->tls = tls_mode(o->tls ? &s.ch[0].link.tls : NULL, true);
	tls_binding(o->tls ? &s.ch[0].link.tls : NULL, st->tls_binding);
	if (round_begin(&s, s.im.npages, !s.live))
		goto out;
	ret = run(&s);
	memcpy(st->digest, s.digest, sizeof(st->digest));
	st->outcome = ret == 0 ? "committed" : s.unknown ? "unknown" : NULL;
out:
	if (s.live)
		live_close(s.lv, ret == 0, s.unknown);
	st->lz4_switches = s.pol.switches;
	st->lz4_accel_max = s.pol.accel_max;
	st->zstd_switches = s.pol.zstd_switches;
	st->total_s = now_s() - s.t0;
	chan_tx_end(&s.tx);
	if (s.ch)
		for (unsigned int c = 0; c < s.nch; c++) {
			tls_chan_free(&s.ch[c].link.tls);
			if (s.ch[c].link.fd >= 0)
				close(s.ch[c].link.fd);
		}
	chan_reply_free(&s.rp);
	chan_tx_free(&s.tx);
	free(s.ch);
	free(s.hashes);
	free(s.todo);
	if (s.im.fd >= 0)
		src_image_close(&s.im);
	return ret;
}
