// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"
#include "cli/report.h"

static void digest_hex(const struct image_stats *st, char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", st->digest[i]);
}

void throttle_note_words(const struct throttle_note *n, char *buf, size_t len)
{
	switch (n->kind) {
	case THROTTLE_NOTE_APPLIED:
		snprintf(buf, len, "%s %s (cgroup %s%.150s)", n->threads ? "threads" : "process",
			 n->threads ? "that write" : "whole", n->v2 ? "v2 " : "v1 ", n->cg);
		return;
	case THROTTLE_NOTE_CANNOT:
		snprintf(buf, len, "cannot throttle%s: %s", n->retry ? " (will try again)" : "",
			 n->err);
		return;
	case THROTTLE_NOTE_INEFFECTIVE:
		snprintf(buf, len,
			 "ineffective: %.0f%% of its CPU taken, dirty rate still %.1f of %.1f MB/s; the writer does not need the CPU to write",
			 n->cpu_taken_pct, n->dirty_mbps, n->dirty_before_mbps);
		return;
	case THROTTLE_NOTE_NONE:
		break;
	}
	if (len)
		buf[0] = 0;
}

void throttle_io_note_words(const struct throttle_io_note *n, char *buf, size_t len)
{
	switch (n->kind) {
	case THROTTLE_IO_NOTE_LIMITED:
		snprintf(buf, len, "disk writes of the %s (%.1f MB/s) limited on %u device%s (cgroup %s%.120s)",
			 n->per_thread ? "threads that write to disk" : "process", n->bps / 1e6,
			 n->ndev, n->ndev == 1 ? "" : "s", n->v2 ? "v2 io.max " : "v1 blkio ", n->cg);
		return;
	case THROTTLE_IO_NOTE_NOT_LIMITED:
		snprintf(buf, len, "disk writes (%.1f MB/s) not limited: %s", n->bps / 1e6, n->err);
		return;
	case THROTTLE_IO_NOTE_SET_FAILED:
		snprintf(buf, len, "%s", n->err);
		return;
	case THROTTLE_IO_NOTE_NONE:
		break;
	}
	if (len)
		buf[0] = 0;
}

static void live_json(struct json_obj *j, const struct image_stats *st)
{
	/* The sizes the notes always had: longer words are cut there, as before. */
	char why[256], probes[200], note[200], io_note[300];

	report_tracker_words(&st->tracker_why, why, sizeof(why));
	report_probes_words(&st->probes, probes, sizeof(probes));
	throttle_note_words(&st->throttle_note, note, sizeof(note));
	throttle_io_note_words(&st->throttle_io_note, io_note, sizeof(io_note));
	json_bool(j, "live", true);
	json_str(j, "tracker", st->tracker);
	json_str(j, "tracker_why", why[0] ? why : NULL);
	json_str(j, "frozen", st->frozen);
	json_bool(j, "converged", st->converged);
	json_dbl(j, "downtime_ms", st->converged ? st->downtime_s * 1000 : 0, 1);
	json_dbl(j, "freeze_ms", st->freeze_s * 1000, 2);
	json_dbl(j, "final_harvest_ms", st->final_harvest_s * 1000, 2);
	if (st->object_check) {
		json_dbl(j, "object_walk_ms", st->object_walk_s * 1000, 2);
		json_u64(j, "object_rescans", st->object_rescans);
		json_u64(j, "map_rescans", st->map_rescans);
		json_u64(j, "pages_holed", st->pages_holed);
	}
	json_str(j, "source", st->source_state);
	json_str(j, "probes", probes[0] ? probes : NULL);
	json_array_begin(j, "rounds");
	for (unsigned int i = 0; i < st->rounds; i++) {
		const struct round_stat *r = &st->round[i];

		json_elem_begin(j);
		json_u64(j, "round", r->round);
		json_u64(j, "dirty_pages", r->dirty_pages);
		json_dbl(j, "dirty_mbps", r->dirty_mbps, 2);
		json_u64(j, "bytes_wire", r->bytes_wire);
		json_dbl(j, "rate_mbps", r->rate_mbps, 1);
		json_dbl(j, "predicted_downtime_ms", r->predicted_downtime_ms, 1);
		json_dbl(j, "harvest_ms", r->harvest_ms, 2);
		json_dbl(j, "start_ms", r->start_s * 1000, 1);
		json_bool(j, "frozen", r->frozen);
		if (r->faults_per_s >= 0) {
			json_dbl(j, "faults_per_s", r->faults_per_s, 1);
			json_dbl(j, "write_faults_per_s", r->write_faults_per_s, 1);
			json_dbl(j, "guest_faults_per_s", r->guest_faults_per_s, 1);
			json_dbl(j, "guest_exits_per_s", r->guest_exits_per_s, 1);
			json_dbl(j, "steal_pct", r->steal_pct, 2);
		}
		json_elem_end(j);
	}
	json_array_end(j);
	json_bool(j, "throttled", st->throttled);
	json_str(j, "throttle_note", note[0] ? note : NULL);
	json_str(j, "throttle_io_note", io_note[0] ? io_note : NULL);
	json_array_begin(j, "throttle");
	for (unsigned int i = 0; i < st->rounds; i++) {
		const struct round_stat *r = &st->round[i];

		json_elem_begin(j);
		json_u64(j, "round", r->round);
		json_dbl(j, "cpu_limit_pct", r->throttle_cpus * 100, 1);
		json_dbl(j, "cpu_used_pct", r->cpu_used * 100, 1);
		json_dbl(j, "dirty_mbps", r->dirty_mbps, 2);
		json_dbl(j, "disk_write_mbps", r->disk_write_mbps, 2);
		json_dbl(j, "io_limit_mbps", r->io_limit_mbps, 2);
		json_elem_end(j);
	}
	json_array_end(j);
}

static void live_text(const struct image_stats *st)
{
	char note[200], io_note[300];

	throttle_note_words(&st->throttle_note, note, sizeof(note));
	throttle_io_note_words(&st->throttle_io_note, io_note, sizeof(io_note));
	printf("  live: tracker %s, freeze %s, %u rounds; downtime %.1f ms (freeze %.2f ms, final harvest %.2f ms); source %s\n",
	       st->tracker, st->frozen, st->rounds, st->downtime_s * 1000, st->freeze_s * 1000,
	       st->final_harvest_s * 1000, st->source_state);
	printf("  round  pages      dirty MB/s  wire bytes    MB/s    predicted ms\n");
	for (unsigned int i = 0; i < st->rounds; i++) {
		const struct round_stat *r = &st->round[i];

		printf("  %5u%s %-10llu %9.1f  %-12llu %7.1f  %8.1f\n", r->round, r->frozen ? "*" : " ",
		       (unsigned long long)r->dirty_pages, r->dirty_mbps,
		       (unsigned long long)r->bytes_wire, r->rate_mbps, r->predicted_downtime_ms);
	}
	printf("  (* sent with the workload paused)\n");
	if (st->throttled || note[0])
		printf("  throttle: %s\n", note);
	if (io_note[0])
		printf("  throttle: %s\n", io_note);
}

void report_print(const char *role, const struct image_stats *st, const char *compress,
		  bool ok, bool json)
{
	double mbps = st->total_s > 0 ? st->bytes_total / st->total_s / 1e6 : 0;
	char hex[33], a[32], b[32], zs[32] = "";

	digest_hex(st, hex);
	if (json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "role", role);
		json_str(&j, "status", ok ? "completed" : "failed");
		if (!ok)
			json_str(&j, "error", lmig_errmsg());
		json_u64(&j, "total_ms", (uint64_t)(st->total_s * 1000 + 0.5));
		json_u64(&j, "bytes_total", st->bytes_total);
		json_u64(&j, "bytes_wire", st->bytes_wire);
		json_u64(&j, "pages_total", st->pages_total);
		json_u64(&j, "pages_zero", st->pages_zero);
		json_u64(&j, "pages_compressed", st->pages_compressed);
		json_u64(&j, "pages_zstd", st->pages_zstd);
		json_u64(&j, "pages_raw", st->pages_raw);
		json_dbl(&j, "throughput_mbps", ok ? mbps : 0, 1);
		json_dbl(&j, "wire_ratio", st->bytes_total ? (double)st->bytes_wire / st->bytes_total : 0, 4);
		json_u64(&j, "channels", st->channels);
		json_str(&j, "compress", compress);
		json_u64(&j, "lz4_switches", st->lz4_switches);
		if (st->lz4_accel_max)	/* the sender's */
			json_u64(&j, "lz4_accel_max", st->lz4_accel_max);
		if (st->zstd_switches)
			json_u64(&j, "zstd_switches", st->zstd_switches);
		if (!role[0] || role[0] == 's')
			json_bool(&j, "zerocopy", st->zerocopy);
		else
			json_bool(&j, "multishot", st->multishot);
		json_str(&j, "tls", st->tls);
		if (st->tls_binding[0])
			json_str(&j, "tls_binding", st->tls_binding);
		json_str(&j, "digest", ok ? hex : NULL);
		if (st->outcome)
			json_str(&j, "outcome", st->outcome);
		if (st->readback_s > 0)
			json_u64(&j, "readback_ms", (uint64_t)(st->readback_s * 1000 + 0.5));
		if (st->write_ops)
			json_u64(&j, "write_ops", st->write_ops);
		if (st->decode_threads)
			json_u64(&j, "decode_threads", st->decode_threads);
		if (st->live)
			live_json(&j, st);
		json_end(&j, stdout);
		return;
	}
	if (!ok)
		return;
	printf("%s: completed, %s in %.3f s (%.1f MB/s), %s on the wire (%.1f%%)\n",
	       role, fmt_bytes(a, sizeof(a), (double)st->bytes_total), st->total_s, mbps,
	       fmt_bytes(b, sizeof(b), (double)st->bytes_wire),
	       st->bytes_total ? 100.0 * st->bytes_wire / st->bytes_total : 0);
	if (st->pages_zstd)
		snprintf(zs, sizeof(zs), "%llu zstd, ", (unsigned long long)st->pages_zstd);
	printf("  pages %llu: %llu zero, %llu lz4, %s%llu raw; %u channel%s; compress %s%s\n",
	       (unsigned long long)st->pages_total, (unsigned long long)st->pages_zero,
	       (unsigned long long)(st->pages_compressed - st->pages_zstd), zs,
	       (unsigned long long)st->pages_raw,
	       st->channels, st->channels == 1 ? "" : "s", compress,
	       role[0] == 's' ? (st->zerocopy ? ", zero-copy send" : ", copying send") :
				(st->multishot ? ", multishot receive" : ", plain receive"));
	if (st->tls && strcmp(st->tls, "off"))
		printf("  TLS 1.3, %s\n", !strcmp(st->tls, "ktls") ? "kernel TLS (kTLS)" :
		       "encrypted in userspace (no kTLS)");
	printf("  digest xxh3-128 %s (verified by the receiver)\n", hex);
	if (st->readback_s > 0)
		printf("  output read back and re-hashed in %.3f s\n", st->readback_s);
	if (st->live)
		live_text(st);
}
