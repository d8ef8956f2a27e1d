// SPDX-License-Identifier: GPL-2.0-only
/*
 * The words of what a send or a receive tells while it runs: the progress
 * line (redrawn twice a second on a terminal, a line a round otherwise),
 * the tracker --tracker auto chose, the throttle's notes and warnings.
 * The engines decide when to tell; this file only says it.
 */
#include <stdio.h>

#include "cli/report.h"
#include "cli/report_throttle.h"
#include "host/throttle.h"
#include "lib/err.h"
#include "lib/parse.h"
#include "image/image.h"

/* A cold send, or any receive: bytes done of the image, rate, and a note. */
static void transfer_line(const struct image_progress *p)
{
	char a[32], b[32], extra[32] = "";
	double rate = p->elapsed > 0 ? p->done / p->elapsed / 1e6 : 0;

	if (p->send)
		snprintf(extra, sizeof(extra), "%s",
			 p->zstd ? "zstd on" : p->lz4 ? "lz4 on" : "lz4 off");
	else if (p->live)
		snprintf(extra, sizeof(extra), "round %u", p->round);
	fprintf(stderr, "\r%s %s / %s  %3.0f%%  %7.1f MB/s%s%s%s", p->send ? "sent" : "received",
		fmt_bytes(a, sizeof(a), (double)p->done), fmt_bytes(b, sizeof(b), (double)p->total),
		p->total ? 100.0 * p->done / p->total : 100.0, rate,
		extra[0] ? "  " : "", extra, p->final ? "\n" : "   ");
}

/* A live send: the round, the rates, the prediction, and the throttle in force. */
static void live_line(const struct image_progress *p)
{
	char a[32], line[256], th[128] = "";
	int n = 0;

	if (p->throttle_pct >= 0)
		n += snprintf(th + n, sizeof(th) - n, "  throttle %.0f%% CPU", p->throttle_pct);
	if (p->throttle_pct >= 0 && p->io_limit_mbps >= 0)
		n += snprintf(th + n, sizeof(th) - n, " %.0f MB/s disk", p->io_limit_mbps);
	if (p->write_faults_per_s >= 0)
		snprintf(th + n, sizeof(th) - n, "  wf %.0f/s steal %.0f%%", p->write_faults_per_s,
			 p->steal_pct);
	snprintf(line, sizeof(line),
		 "round %u%s  dirty %.1f MB/s  sent %s  %.1f MB/s  ETA %.1f s  predicted downtime %.0f ms%s",
		 p->round, p->frozen ? " (frozen)" : "", p->dirty_mbps,
		 fmt_bytes(a, sizeof(a), (double)p->bytes_wire), p->rate_mbps, p->eta_s,
		 p->predicted_ms, th);
	if (p->plain)
		fprintf(stderr, "%.1f s  %s%s\n", p->elapsed, line, p->final ? "  done" : "");
	else
		fprintf(stderr, "\r%.1f s  %s\033[K%s", p->elapsed, line, p->final ? "\n" : "");
}

void cli_image_event(void *ctx, enum image_event ev, const struct image_progress *p,
		     const struct image_stats *st)
{
	/* Whose notes: the command that runs the engine (ctx), lmig send's by default. */
	const char *who = ctx ? ctx : "lmig send";
	char words[256];

	switch (ev) {
	case IMAGE_EV_PROGRESS:
		if (p->send && p->live)
			live_line(p);
		else
			transfer_line(p);
		break;
	case IMAGE_EV_TRACKER:
		report_tracker_words(&st->tracker_why, words, sizeof(words));
		if (words[0])
			fprintf(stderr, "%s: tracker %s (%s)\n", who, st->tracker, words);
		break;
	case IMAGE_EV_THROTTLE:
		/* The report's size for the note: the same cut as before. */
		throttle_note_words(&st->throttle_note, words, 200);
		fprintf(stderr, "\n%s: %s%s\n", who,
			st->throttle_note.kind == THROTTLE_NOTE_INEFFECTIVE ? "throttle " : "", words);
		break;
	case IMAGE_EV_WARNING:
		fprintf(stderr, "%s: warning: %s\n", who, lmig_errmsg());
		break;
	case IMAGE_EV_RESTORE_FAILED:
		fprintf(stderr, "%s: warning: %s; run 'lmig throttle --restore'\n", who,
			lmig_errmsg());
		break;
	}
	fflush(stderr);
}

void cli_restored(void *ctx, const struct throttle_restored *r)
{
	fprintf(stderr, "lmig: restored the CPU limit of process %d (%s)%s%s%s\n", (int)r->pid,
		r->cg, r->io_cg ? " and its disk write limit (" : "", r->io_cg ? r->io_cg : "",
		r->io_cg ? ")" : "");
}

const struct image_events cli_events = { .fn = cli_image_event, .restored = cli_throttle_restored };
const struct image_events cli_qemu_events = { .fn = cli_image_event,
					      .restored = cli_throttle_restored,
					      .ctx = "lmig qemu send" };
