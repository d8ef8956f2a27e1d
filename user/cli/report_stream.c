// SPDX-License-Identifier: GPL-2.0-only
/* The end-of-command report of lmig pipe and lmig proxy: text or JSON. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/report.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"
#include "live/converge_vm.h"
#include "stream/stream.h"

void stream_report(const char *role, const struct stream_stats *st, const char *compress,
		   const struct cvm_stats *vm, bool ok, bool json, int json_fd)
{
	double mbps = st->total_s > 0 ? st->bytes_stream / st->total_s / 1e6 : 0;
	double ratio = st->bytes_stream ? (double)st->bytes_wire / st->bytes_stream : 0;
	bool source = strstr(role, "send") != NULL;
	char a[32], b[32];

	if (json) {
		struct json_obj j;
		FILE *f;
		int fd = dup(json_fd);

		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f) {
			if (fd >= 0)
				close(fd);
			return;
		}
		json_begin(&j);
		json_str(&j, "role", role);
		json_str(&j, "status", ok ? "completed" : "failed");
		if (!ok)
			json_str(&j, "error", lmig_errmsg());
		json_u64(&j, "total_ms", (uint64_t)(st->total_s * 1000 + 0.5));
		/* bytes_in: read from QEMU (source); bytes_out: written to QEMU (destination). */
		json_u64(&j, source ? "bytes_in" : "bytes_out", st->bytes_stream);
		json_u64(&j, "bytes_wire", st->bytes_wire);
		/* What the destination QEMU wrote back: read there, written to the source QEMU here. */
		json_bool(&j, "both_ways", st->both_ways);
		json_u64(&j, "bytes_returned", st->bytes_return);
		json_dbl(&j, "wire_ratio", ratio, 4);
		json_dbl(&j, "throughput_mbps", mbps, 1);
		json_u64(&j, "streams", st->streams);
		json_u64(&j, "channels", st->channels);
		json_u64(&j, "blocks", st->blocks);
		json_u64(&j, "blocks_lz4", st->blocks_lz4);
		json_str(&j, "compress", compress);
		json_u64(&j, "lz4_switches", st->lz4_switches);
		if (st->lz4_accel_max)	/* the sender's */
			json_u64(&j, "lz4_accel_max", st->lz4_accel_max);
		if (source)
			json_bool(&j, "zerocopy", st->zerocopy);
		else
			json_bool(&j, "multishot", st->multishot);
		json_bool(&j, "resume", st->resume);
		json_u64(&j, "reconnects", st->reconnects);
		json_u64(&j, "reconnect_ms", (uint64_t)(st->reconnect_s * 1000 + 0.5));
		if (!source)
			json_u64(&j, "resume_refused", st->resume_refused);
		json_str(&j, "tls", st->tls);
		if (st->tls_binding[0])
			json_str(&j, "tls_binding", st->tls_binding);
		if (vm && vm->on)
			cvm_report_json(&j, vm);
		json_end(&j, f);
		fclose(f);
		return;
	}
	if (!ok)
		return;
	dprintf(json_fd, "%s: completed, %u stream%s, %s %s QEMU in %.3f s (%.1f MB/s), %s on the wire (%.1f%%), %u channel%s, compress %s\n",
		role, st->streams, st->streams == 1 ? "" : "s",
		fmt_bytes(a, sizeof(a), (double)st->bytes_stream), source ? "from" : "to",
		st->total_s, mbps, fmt_bytes(b, sizeof(b), (double)st->bytes_wire), ratio * 100,
		st->channels, st->channels == 1 ? "" : "s", compress);
	if (st->both_ways)
		dprintf(json_fd, "%s: both ways, %s returned %s QEMU\n", role,
			fmt_bytes(a, sizeof(a), (double)st->bytes_return), source ? "to" : "from");
	if (st->reconnects || st->resume_refused)
		dprintf(json_fd, "%s: %u channel%s resumed after a break (%.3f s broken in all)%s\n",
			role, st->reconnects, st->reconnects == 1 ? "" : "s", st->reconnect_s,
			st->resume_refused ? ", reconnects without this session's proof refused" : "");
	if (vm && vm->on)
		cvm_report_text(json_fd, vm);
}
