// SPDX-License-Identifier: GPL-2.0-only
#include <stdio.h>

#include "err.h"
#include "json.h"
#include "opts.h"
#include "report.h"

static void digest_hex(const struct xfer_stats *st, char out[33])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", st->digest[i]);
}

void report_print(const char *role, const struct xfer_stats *st, const char *compress,
		  bool ok, bool json)
{
	double mbps = st->total_s > 0 ? st->bytes_total / st->total_s / 1e6 : 0;
	char hex[33], a[32], b[32];

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
		json_u64(&j, "pages_raw", st->pages_raw);
		json_dbl(&j, "throughput_mbps", ok ? mbps : 0, 1);
		json_dbl(&j, "wire_ratio", st->bytes_total ? (double)st->bytes_wire / st->bytes_total : 0, 4);
		json_u64(&j, "channels", st->channels);
		json_str(&j, "compress", compress);
		json_u64(&j, "lz4_switches", st->lz4_switches);
		if (!role[0] || role[0] == 's')
			json_bool(&j, "zerocopy", st->zerocopy);
		else
			json_bool(&j, "multishot", st->multishot);
		json_str(&j, "digest", ok ? hex : NULL);
		json_end(&j, stdout);
		return;
	}
	if (!ok)
		return;
	printf("%s: completed, %s in %.3f s (%.1f MB/s), %s on the wire (%.1f%%)\n",
	       role, fmt_bytes(a, sizeof(a), (double)st->bytes_total), st->total_s, mbps,
	       fmt_bytes(b, sizeof(b), (double)st->bytes_wire),
	       st->bytes_total ? 100.0 * st->bytes_wire / st->bytes_total : 0);
	printf("  pages %llu: %llu zero, %llu lz4, %llu raw; %u channel%s; compress %s%s\n",
	       (unsigned long long)st->pages_total, (unsigned long long)st->pages_zero,
	       (unsigned long long)st->pages_compressed, (unsigned long long)st->pages_raw,
	       st->channels, st->channels == 1 ? "" : "s", compress,
	       role[0] == 's' ? (st->zerocopy ? ", zero-copy send" : ", copying send") :
				(st->multishot ? ", multishot receive" : ", plain receive"));
	printf("  digest xxh3-128 %s (verified by the receiver)\n", hex);
}
