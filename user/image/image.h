/* SPDX-License-Identifier: GPL-2.0-only */
/* The transfer engines behind `lmig send` and `lmig recv`. */
#ifndef LMIG_IMAGE_H
#define LMIG_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "chan/policy.h"
#include "host/probes.h"
#include "live/track_choice.h"

struct throttle_restored;
struct freeze_hook;

struct tls_conf;

/* One round of a live migration, as the sender saw it. */
struct round_stat {
	unsigned int round;
	uint64_t dirty_pages;		/* pages this round sent (round 0: every page) */
	double dirty_mbps;		/* pages harvested for it / time since the previous harvest */
	uint64_t bytes_wire;		/* wire bytes of this round's frames */
	double rate_mbps;		/* memory bytes per second the link moved (estimate) */
	double predicted_downtime_ms;	/* if the workload were frozen after this round's harvest */
	double harvest_ms;		/* the harvest that produced this round */
	double start_s;			/* since the migration began */
	bool frozen;			/* the final round, sent with the workload paused */
	double cpu_used;		/* CPUs the workload (or its throttled threads) used before it */
	/* eBPF probes over the same interval as dirty_mbps (-1: no probes) */
	double faults_per_s, write_faults_per_s, guest_faults_per_s, guest_exits_per_s;
	double steal_pct;
	double throttle_cpus;		/* CPU limit in force during it, 0 = none */
	double io_limit_mbps;		/* disk write limit in force, 0 = none */
	double disk_write_mbps;		/* what the workload wrote to disk before it */
};

/*
 * What --throttle auto did, as numbers and names; cli/report.c words
 * them (throttle_note_words()).
 */
enum throttle_note_kind {
	THROTTLE_NOTE_NONE,
	THROTTLE_NOTE_APPLIED,		/* limited: the process, or the threads that write */
	THROTTLE_NOTE_CANNOT,		/* applying a limit failed (err) */
	THROTTLE_NOTE_INEFFECTIVE,	/* lifted: its CPU taken, its dirty rate not lower */
};

struct throttle_note {
	enum throttle_note_kind kind;
	bool threads;			/* APPLIED: only the threads that write */
	bool v2;			/* APPLIED: cgroup v2 */
	bool retry;			/* CANNOT: it will be tried again */
	double cpu_taken_pct;		/* INEFFECTIVE: of the CPU it used before */
	double dirty_mbps, dirty_before_mbps;	/* INEFFECTIVE: now and before the limit */
	char cg[700];			/* APPLIED: the cgroup holding the limit */
	char err[200];			/* CANNOT: the error */
};

enum throttle_io_note_kind {
	THROTTLE_IO_NOTE_NONE,
	THROTTLE_IO_NOTE_LIMITED,	/* its disk writes are limited */
	THROTTLE_IO_NOTE_NOT_LIMITED,	/* setting that up failed (err) */
	THROTTLE_IO_NOTE_SET_FAILED,	/* changing the limit failed (err): lifted */
};

struct throttle_io_note {
	enum throttle_io_note_kind kind;
	bool per_thread;		/* LIMITED: the threads that write to disk */
	bool v2;			/* LIMITED: io.max, else v1 blkio */
	double bps;			/* LIMITED: their rate before; NOT_LIMITED: the process's */
	unsigned int ndev;		/* LIMITED: devices */
	char cg[640];			/* LIMITED: the cgroup */
	char err[300];			/* NOT_LIMITED, SET_FAILED: the error */
};


struct image_stats {
	uint64_t bytes_total;		/* image size */
	uint64_t bytes_wire;		/* everything written to / read from the sockets */
	uint64_t pages_total, pages_zero, pages_compressed, pages_raw;
	uint64_t pages_zstd;		/* of pages_compressed, those in zstd (the rest lz4) */
	uint64_t frames;
	double total_s;
	unsigned int channels;
	unsigned int lz4_switches;
	unsigned int lz4_accel_max;	/* the fastest lz4 acceleration used (1 = default) */
	unsigned int zstd_switches;	/* send: --compress auto's steps between lz4 and zstd */
	bool zerocopy;			/* SEND_ZC used */
	bool multishot;			/* multishot recv with provided buffers used */
	const char *tls;		/* "off", "ktls", "userspace" (tls_mode()) */
	char tls_binding[65];		/* channel 0's tls_binding(), "" without TLS */
	uint8_t digest[16];
	double readback_s;		/* recv --verify-readback: reading back took this, else 0 */
	uint64_t write_ops;		/* recv: writes and hole punches submitted to the output */
	unsigned int decode_threads;	/* recv: threads decoding lz4 pages, 0 when inline */
	/* Live migrations. */
	bool live;
	unsigned int rounds;
	bool converged;			/* the switch-over happened */
	double downtime_s;		/* freeze -> verified commit acknowledged */
	double freeze_s, final_harvest_s;
	/*
	 * The switch-over's steps as now_s() times (0: not reached): the
	 * workload paused, the final harvest done, the final round all on
	 * the wire, the receiver's verdict in, the commit confirmed.
	 */
	double t_frozen, t_harvested, t_final_sent, t_verdict, t_committed;
	const char *tracker, *frozen;
	/* The trackers' object check (track.c), when it ran: a file-backed target. */
	bool object_check;
	double object_walk_s;		/* stats and data/hole map walks, all harvests */
	unsigned int object_rescans;	/* harvests that compared every page's content */
	unsigned int map_rescans;	/* of them, because the mapping watch saw a change */
	uint64_t pages_holed;		/* reported for going from data to hole */
	const char *source_state;	/* "paused", "killed", "resumed", "running" */
	/*
	 * The sender's: "committed", or "unknown" when the receiver was told
	 * to commit and its final result never came (EXIT_UNKNOWN); else NULL.
	 */
	const char *outcome;
	struct track_choice tracker_why;	/* --tracker auto's choice */
	struct round_stat *round;	/* rounds entries */
	struct probes_status probes;	/* whether the probes ran, or why not */
	bool throttled;
	struct throttle_note throttle_note;	/* where it throttled, or why it could not or stopped */
	struct throttle_io_note throttle_io_note;	/* where its disk writes were limited, or why not */
};

/*
 * What a send or a receive tells its command line while it runs, as
 * numbers; the command line words it (cli/progress.c).
 */
enum image_event {
	IMAGE_EV_PROGRESS,	/* where the transfer is: p */
	IMAGE_EV_TRACKER,	/* --tracker auto chose st->tracker (st->tracker_why) */
	IMAGE_EV_THROTTLE,	/* st->throttle_note changed: cannot, or lifted */
	IMAGE_EV_WARNING,	/* lmig_errmsg() did not stop the migration */
	IMAGE_EV_RESTORE_FAILED,/* lmig_errmsg(): a limit could not be restored */
};

struct image_progress {
	bool send;			/* else a receive */
	bool final;			/* the last one: the transfer is over */
	bool plain;			/* a line each, not one redrawn line */
	double elapsed;			/* seconds since the transfer began */
	uint64_t done, total;		/* image bytes */
	bool lz4;			/* a cold send: lz4 on at the moment */
	bool zstd;			/* ... zstd rather than lz4 */
	/* A live migration (the receiver knows only the round). */
	bool live;
	unsigned int round;
	bool frozen;			/* the round sent with the workload paused */
	double dirty_mbps;		/* of the latest harvest */
	uint64_t bytes_wire;
	double rate_mbps;		/* memory bytes a second the link moves */
	double eta_s;			/* for the rest of this round at that rate */
	double predicted_ms;		/* downtime if frozen after the latest harvest */
	double throttle_pct;		/* CPU share allowed, < 0: no limit */
	double io_limit_mbps;		/* disk-write limit, < 0: none */
	double write_faults_per_s;	/* the probes' rates, < 0: no probes */
	double steal_pct;
};

struct image_events {
	void (*fn)(void *ctx, enum image_event ev, const struct image_progress *p,
		   const struct image_stats *st);
	/* A limit an earlier, killed lmig left behind was undone. */
	void (*restored)(void *ctx, const struct throttle_restored *r);
	void *ctx;
};

/* Tell ev (which may be NULL or have no fn). */
static inline void image_tell(const struct image_events *ev, enum image_event e,
			      const struct image_progress *p, const struct image_stats *st)
{
	if (ev && ev->fn)
		ev->fn(ev->ctx, e, p, st);
}

struct send_opts {
	const char *mem;		/* image path */
	const char *to;			/* HOST:PORT */
	unsigned int channels;
	enum compress_mode compress;
	uint64_t bandwidth;		/* bytes/s, 0 = unlimited */
	int zerocopy;			/* -1 auto, 0 off, 1 on */
	int timeout_ms;			/* connect, handshake and stall limit */
	bool progress;
	bool plain_progress;		/* lines instead of a redrawn line (not a terminal) */
	const struct image_events *events;	/* progress and notes while it runs */
	/* Live migration: pid > 0. */
	pid_t pid;			/* the process that writes the memory */
	const char *freeze;		/* "signal", "cgroup:DIR", "none" */
	const char *tracker;		/* "auto" or a tracker name */
	bool mapped_writes_only;	/* --object-writes mapped (track_target's) */
	uint64_t anon_start;		/* mem is "anon:START-END": pid's private memory */
	uint64_t anon_size;
	unsigned int downtime_ms;	/* switch over once the predicted downtime is below */
	unsigned int max_rounds;
	int live_timeout_ms;		/* pre-copy must converge within this, 0 = no limit */
	bool then_kill;			/* end the source after the verified commit */
	bool throttle;			/* --throttle auto */
	unsigned int throttle_max_pct;	/* take at most this % of its CPU */
	const struct tls_conf *tls;	/* NULL: plain TCP */
	/*
	 * With freeze "none": what pauses and resumes the workload instead
	 * (live/freeze.h; lmig qemu's QEMU migration up to pre-switchover).
	 */
	const struct freeze_hook *pause;
};

struct recv_opts {
	const char *listen;		/* HOST:PORT */
	const char *out;		/* final path */
	bool in_place;			/* out exists at the image's size: write it there */
	uint64_t expect_size;		/* 0 = accept any */
	uint64_t max_size;		/* refuse larger images; 0 = no limit */
	int timeout_ms;			/* stall limit once a sender is connected */
	int accept_timeout_ms;		/* for the first connection; -1 = forever */
	bool sync;			/* fdatasync before the commit */
	bool verify_readback;		/* re-read and re-hash the output before the commit */
	bool progress;
	const struct image_events *events;	/* progress while it runs */
	int ready_fd;			/* write "PORT\n" here once listening, or -1 */
	const struct tls_conf *tls;	/* NULL: plain TCP */
};

int image_send(const struct send_opts *o, struct image_stats *st);
int image_recv(const struct recv_opts *o, struct image_stats *st);

#endif
