// SPDX-License-Identifier: GPL-2.0-only
/*
 * `lmig qemu send|recv`: options, help, words and the report; the two
 * sides run in cmd_qemu_send.c and cmd_qemu_recv.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lmig/wire.h>

#include "cli/cmd_qemu.h"
#include "cli/options.h"
#include "cli/report.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"
#include "chan/tls.h"
#include "live/track.h"

static void usage_qemu_send(void)
{
	printf("Usage: lmig qemu send --qmp SRC.sock --to HOST:PORT [OPTIONS]\n"
	       "\n"
	       "Live-migrate the QEMU guest behind the QMP socket SRC.sock to an 'lmig qemu\n"
	       "recv' at HOST:PORT: lmig moves the guest's shared RAM (every backend with\n"
	       "share=on: memory-backend-memfd, memory-backend-file on /dev/shm or\n"
	       "hugetlbfs) with its own pre-copy rounds and dirty tracker, QEMU moves only\n"
	       "the devices (migration capability x-ignore-shared), its stream carried on\n"
	       "lmig's control connection.  Once the predicted downtime fits, QEMU's\n"
	       "migration starts with pause-before-switchover; at pre-switchover (the guest\n"
	       "stopped) the final round goes, the receiver verifies and commits every\n"
	       "block, and migrate-continue lets QEMU finish.  Any failure before that\n"
	       "cancels QEMU's migration: the guest runs on here.\n"
	       "\n"
	       "Options:\n"
	       "      --qmp PATH          the source QEMU's QMP socket (one more -qmp\n"
	       "                          unix:PATH,server=on,wait=off beside libvirt's)\n"
	       "  -t, --to HOST:PORT      the receiver ([ADDR]:PORT for IPv6)\n"
	       "  -c, --channels N        TCP connections of each RAM block (1..%u;\n"
	       "                          default: online CPUs, at most 8)\n"
	       OPTH_COMPRESS
	       "  -b, --bandwidth RATE    cap each RAM block's rate on the wire: 125M, 1G,\n"
	       "                          1Gbit, 64Mi (default: no cap)\n"
	       OPTH_ZEROCOPY
	       "      --timeout S         connect and handshake limit, longest stall, longest\n"
	       "                          wait for each of QEMU's steps (default 10); when\n"
	       "                          given, also the limit on pre-copy\n"
	       "      --tracker NAME      dirty tracker: %s (default auto)\n"
	       "  -d, --downtime-ms N     start QEMU's switch-over once the predicted\n"
	       "                          downtime of the RAM is at most N ms (default 300)\n"
	       "      --max-rounds N      give up after N rounds without converging\n"
	       "                          (default 30)\n"
	       "      --throttle auto|off limit the CPU of QEMU's threads that write while the\n"
	       "                          guest dirties faster than the link carries\n"
	       "                          (default auto); put back afterwards\n"
	       "      --throttle-max PCT  take at most PCT %% of their CPU (1..99, default 90)\n"
	       OPTH_PROGRESS
	       CMD_TLS_HELP
	       CMD_TLS_HOSTNAME_HELP
	       OPTH_JSON_STDOUT
	       OPTH_HELP
	       "\n"
	       "A guest without shared RAM is refused: QEMU's own stream carries it, e.g.\n"
	       "through 'lmig pipe'.\n"
	       "Exit status: 0 migrated (the destination loaded the devices), 1 failed,\n"
	       "2 bad usage, 3 outcome unknown (a block's commit; the guest stays paused).\n",
	       LMIG_MAX_CHANNELS, tracker_names());
}

static void usage_qemu_recv(void)
{
	printf("Usage: lmig qemu recv --qmp DST.sock --listen HOST:PORT [OPTIONS]\n"
	       "\n"
	       "Receive a guest from 'lmig qemu send' into the destination QEMU behind\n"
	       "DST.sock, started with -incoming defer and the same shared RAM backends\n"
	       "(ids and sizes) as the source, e.g. memory-backend-file with\n"
	       "mem-path=/dev/shm/NAME,share=on, a memfd, or huge pages (hugetlb=on, a\n"
	       "file on hugetlbfs: written through a mapping).  Each RAM block is written in\n"
	       "place into the file QEMU maps (QEMU runs no guest code before its devices\n"
	       "arrive, which is after every block's verified commit); lmig sets\n"
	       "x-ignore-shared, issues migrate-incoming on a unix socket of its own and\n"
	       "relays QEMU's stream into it.  On any failure the destination QEMU is told\n"
	       "to quit.\n"
	       "\n"
	       "Options:\n"
	       "      --qmp PATH          the destination QEMU's QMP socket\n"
	       "  -l, --listen HOST:PORT  where to listen for the source (port 0 picks one,\n"
	       "                          see --ready-fd); the RAM blocks' sessions listen\n"
	       "                          on free ports of the same address\n"
	       "      --ready-fd FD       write the listening port and a newline to FD, then\n"
	       "                          close it\n"
	       OPTH_ACCEPT_TIMEOUT
	       "      --timeout S         longest stall and longest wait for each of QEMU's\n"
	       "                          steps (default 10); when given, also the longest\n"
	       "                          wait for the source's pre-copy\n"
	       OPTH_PROGRESS
	       CMD_TLS_HELP
	       OPTH_JSON_STDOUT
	       OPTH_HELP
	       "\n"
	       "Exit status: 0 the guest arrived (QEMU completed its incoming migration),\n"
	       "1 failed, 2 bad usage.\n");
}

void usage_qemu(void)
{
	usage_qemu_send();
	printf("\n");
	usage_qemu_recv();
}

int qemu_host_port(const char *hostport, unsigned int port, char *out, size_t len)
{
	char host[256], p[16];
	int n;

	if (parse_hostport("--to", hostport, host, sizeof(host), p, sizeof(p)))
		return -1;
	n = snprintf(out, len, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

void qemu_memdev_error(const char *cmd, enum qmem_why why, const char *detail)
{
	switch (why) {
	case QMEM_NO_SHARED:
		lmig_err("the guest has no shared RAM: start QEMU with -object memory-backend-memfd,"
			 "id=ram0,size=SIZE,share=on -machine memory-backend=ram0 (or"
			 " memory-backend-file,mem-path=/dev/shm/NAME,share=on); a guest without"
			 " it migrates through QEMU's own stream, with 'lmig pipe'");
		return;
	case QMEM_AMBIGUOUS:
		lmig_err("RAM backend %s: QEMU holds several memfds of its size and maps it at"
			 " no guest address that tells which (give it its own size, or use"
			 " memory-backend-file)", detail);
		return;
	case QMEM_NO_FD:
		lmig_err("RAM backend %s: its memfd is not among QEMU's descriptors (is the QMP"
			 " socket this QEMU's?)", detail);
		return;
	case QMEM_TOO_MANY:
		lmig_err("more than %u shared RAM backends", QMEM_MAX);
		return;
	case QMEM_UNKNOWN_TYPE:
		lmig_err("RAM backend %s is shared but neither memory-backend-memfd nor"
			 " memory-backend-file", detail);
		return;
	case QMEM_OK:
	case QMEM_QMP:
		break;
	}
	(void)cmd;
}

/* ms from pre-switchover to t, or -1 when either was not reached. */
static double since_paused(const struct qemu_result *r, double t)
{
	return r->t_paused > 0 && t > 0 ? (t - r->t_paused) * 1000 : -1;
}

/* The latest of the blocks' times of one step (0 unless every block reached it). */
static double last_block(const struct qemu_result *r, size_t off)
{
	double last = 0;

	for (unsigned int i = 0; i < r->nblocks; i++) {
		double t = *(const double *)((const char *)&r->st[i] + off);

		if (t <= 0)
			return 0;
		if (t > last)
			last = t;
	}
	return last;
}

#define LAST_BLOCK(r, field) last_block(r, offsetof(struct image_stats, field))

/* What the guest's stop inside QEMU's pause went to, in ms from pre-switchover. */
static void pause_json(struct json_obj *j, const struct qemu_result *r)
{
	json_obj_begin(j, "pause_steps_ms");
	json_dbl(j, "harvested", since_paused(r, LAST_BLOCK(r, t_harvested)), 1);
	json_dbl(j, "final_sent", since_paused(r, LAST_BLOCK(r, t_final_sent)), 1);
	json_dbl(j, "verified", since_paused(r, LAST_BLOCK(r, t_verdict)), 1);
	json_dbl(j, "committed", since_paused(r, LAST_BLOCK(r, t_committed)), 1);
	json_dbl(j, "continued", since_paused(r, r->t_continued), 1);
	json_dbl(j, "completed", since_paused(r, r->t_completed), 1);
	json_obj_end(j);
}

/* A block's rounds: where its session's time went between set-up and pause. */
static void rounds_json(struct json_obj *j, const struct image_stats *st)
{
	json_array_begin(j, "round_stats");
	for (unsigned int i = 0; i < st->rounds; i++) {
		const struct round_stat *rs = &st->round[i];

		json_elem_begin(j);
		json_u64(j, "round", rs->round);
		json_u64(j, "pages", rs->dirty_pages);
		json_u64(j, "bytes_wire", rs->bytes_wire);
		json_dbl(j, "start_ms", rs->start_s * 1000, 1);
		json_dbl(j, "harvest_ms", rs->harvest_ms, 1);
		json_dbl(j, "predicted_downtime_ms", rs->predicted_downtime_ms, 1);
		json_bool(j, "frozen", rs->frozen);
		json_elem_end(j);
	}
	json_array_end(j);
}

static void block_json(struct json_obj *j, const struct qemu_result *r, unsigned int i)
{
	const struct image_stats *st = &r->st[i];

	json_elem_begin(j);
	json_str(j, "id", r->b[i].id);
	json_str(j, "kind", r->b[i].kind == QMEM_MEMFD ? "memfd" : "file");
	json_bool(j, "hugetlb", r->b[i].hugetlb);
	json_str(j, "path", r->b[i].path);
	json_u64(j, "size", r->b[i].size);
	json_str(j, "status", r->block_ret[i] ? "failed" : "completed");
	json_u64(j, "bytes_wire", st->bytes_wire);
	json_u64(j, "pages_zero", st->pages_zero);
	json_u64(j, "rounds", st->rounds);
	if (r->send) {
		json_str(j, "tracker", st->tracker ? st->tracker : "");
		json_dbl(j, "downtime_ms", st->downtime_s * 1000, 1);
		json_dbl(j, "final_harvest_ms", st->final_harvest_s * 1000, 1);
		json_dbl(j, "harvested_ms", since_paused(r, st->t_harvested), 1);
		json_dbl(j, "final_sent_ms", since_paused(r, st->t_final_sent), 1);
		json_dbl(j, "verified_ms", since_paused(r, st->t_verdict), 1);
		json_dbl(j, "committed_ms", since_paused(r, st->t_committed), 1);
		json_u64(j, "final_bytes_wire", st->rounds && st->converged ?
			 st->round[st->rounds - 1].bytes_wire : 0);
		rounds_json(j, st);
	}
	json_elem_end(j);
}

static void report(const char *cmd, const struct qemu_result *r, bool ok, bool json)
{
	uint64_t wire = r->dev_bytes;

	for (unsigned int i = 0; i < r->nblocks; i++)
		wire += r->st[i].bytes_wire;
	if (json) {
		struct json_obj j;

		json_begin(&j);
		json_str(&j, "role", r->send ? "send" : "recv");
		json_str(&j, "status", ok ? "completed" : r->unknown ? "unknown" : "failed");
		if (!ok) {
			json_str(&j, "error", lmig_errmsg());
			json_str(&j, "stage", r->stage ? r->stage : "");
		}
		if (r->send)
			json_str(&j, "source", r->source ? r->source : "");
		json_str(&j, "qemu_status", r->qemu_status);
		json_u64(&j, "total_ms", (uint64_t)(r->total_s * 1000 + 0.5));
		if (r->send) {
			json_i64(&j, "qemu_downtime_ms", r->qemu_downtime_ms);
			json_i64(&j, "qemu_total_ms", r->qemu_total_ms);
			json_dbl(&j, "pause_ms", r->pause_ms, 1);
			json_dbl(&j, "switch_ms", r->switch_ms, 1);
			json_dbl(&j, "ram_start_ms", r->t_ram > 0 ? (r->t_ram - r->t_start) * 1000 : -1,
				 1);
			pause_json(&j, r);
		}
		json_str(&j, "tls", r->nblocks && r->st[0].tls ? r->st[0].tls : "off");
		json_u64(&j, "device_bytes", r->dev_bytes);
		json_u64(&j, "bytes_wire", wire);
		json_array_begin(&j, "blocks");
		for (unsigned int i = 0; i < r->nblocks; i++)
			block_json(&j, r, i);
		json_array_end(&j);
		json_end(&j, stdout);
		return;
	}
	if (!ok)
		return;
	printf("lmig %s: %u RAM block%s, %.1f MB on the wire (QEMU's stream %.1f MB) in %.2f s",
	       cmd, r->nblocks, r->nblocks == 1 ? "" : "s", wire / 1e6, r->dev_bytes / 1e6,
	       r->total_s);
	if (r->send)
		printf("; QEMU's downtime %lld ms (pre-switchover after %.0f ms, stopped %.0f ms)",
		       (long long)r->qemu_downtime_ms, r->pause_ms, r->switch_ms);
	printf("\n");
	if (r->send)
		printf("  from pre-switchover: final harvest %.0f ms, final round on the wire %.0f,"
		       " verified %.0f, committed %.0f, migrate-continue %.0f, completed %.0f\n",
		       since_paused(r, LAST_BLOCK(r, t_harvested)),
		       since_paused(r, LAST_BLOCK(r, t_final_sent)),
		       since_paused(r, LAST_BLOCK(r, t_verdict)),
		       since_paused(r, LAST_BLOCK(r, t_committed)), since_paused(r, r->t_continued),
		       since_paused(r, r->t_completed));
	for (unsigned int i = 0; i < r->nblocks; i++)
		printf("  %s: %llu MB %s, %u rounds%s%s, %.1f MB on the wire\n", r->b[i].id,
		       (unsigned long long)(r->b[i].size >> 20),
		       r->b[i].kind == QMEM_MEMFD ? "memfd" : "file", r->st[i].rounds,
		       r->send && r->st[i].tracker ? ", tracker " : "",
		       r->send && r->st[i].tracker ? r->st[i].tracker : "",
		       r->st[i].bytes_wire / 1e6);
}

enum { QO_TRACKER = OPT_OWN, QO_MAX_ROUNDS };

struct qemu_opts {
	struct qemu_args a;
	const char *live_opt;
	const char *cmd;
};

static int qemu_opt(int opt, const char *arg, void *ctx)
{
	struct qemu_opts *q = ctx;
	unsigned long v;

	switch (opt) {
	case QO_TRACKER:
		if (!tracker_known(arg))
			return usage_error(q->cmd, "--tracker: '%s' is not one of %s", arg,
					   tracker_names());
		q->a.so.tracker = arg;
		q->live_opt = "--tracker";
		return EXIT_OK;
	case 'd':
		if (opts_uint(q->cmd, "--downtime-ms", arg, 1, 3600000, &v))
			return EXIT_USAGE;
		q->a.so.downtime_ms = v;
		q->live_opt = "--downtime-ms";
		return EXIT_OK;
	case QO_MAX_ROUNDS:
		if (opts_uint(q->cmd, "--max-rounds", arg, 1, 100000, &v))
			return EXIT_USAGE;
		q->a.so.max_rounds = v;
		q->live_opt = "--max-rounds";
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

static int finish(const char *cmd, int ret, const struct qemu_result *r, bool progress,
		  const struct global_opts *g)
{
	if (ret && progress)
		fputc('\n', stderr);
	report(cmd, r, ret == 0, g->json);
	if (!ret)
		return EXIT_OK;
	fprintf(stderr, "lmig %s: %s\n", cmd, lmig_errmsg());
	return r->unknown ? EXIT_UNKNOWN : EXIT_FAIL;
}

/* Long because: one option table and the checks of both sides. */
static int qemu_side(bool send, int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "qmp", required_argument, NULL, OPT_QMP },
		OPTE_TO, OPTE_LISTEN, OPTE_WIRE, OPTE_TIMEOUT, OPTE_ACCEPT_TIMEOUT, OPTE_READY_FD,
		OPTE_PROGRESS, OPTE_JSON,
		{ "tracker", required_argument, NULL, QO_TRACKER },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, QO_MAX_ROUNDS },
		{ "throttle", required_argument, NULL, OPT_THROTTLE },
		{ "throttle-max", required_argument, NULL, OPT_THROTTLE_MAX },
		OPTE_TLS, OPTE_TLS_HOSTNAME, OPTE_HELP, OPTE_END };
	const char *cmd = send ? "qemu send" : "qemu recv";
	struct qemu_opts q = { .cmd = cmd, .a = { .so = {
		.freeze = "none", .tracker = "auto", .downtime_ms = 300, .max_rounds = 30,
		.throttle = true, .throttle_max_pct = 90, .mapped_writes_only = true,
	} } };
	const struct cli_parse p = { cmd, ":t:l:c:z:b:jhd:", lo,
				     send ? usage_qemu_send : usage_qemu_recv, qemu_opt, &q };
	struct qemu_result r;
	struct cli_opts c;
	struct tls_conf tls;
	int ret;

	memset(&r, 0, sizeof(r));
	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (!c.vm.qmp)
		return usage_error(cmd, "missing --qmp PATH (the %s QEMU's QMP socket)",
				   send ? "source" : "destination");
	if (c.vm.pid)
		return usage_error(cmd, "unknown option '--vm-pid' (QEMU's pid comes from --qmp)");
	if (send) {
		if (c.listen)
			return usage_error(cmd, "unknown option '--listen' (the source dials --to)");
		if (c.ready_fd >= 0 || c.accept_timeout_ms >= 0)
			return usage_error(cmd, "--ready-fd and --accept-timeout are recv's options");
		if (opts_check_to(cmd, &c))
			return EXIT_USAGE;
	} else {
		if (c.to)
			return usage_error(cmd, "unknown option '--to' (the destination listens)");
		if (q.live_opt || c.vm.opt)
			return usage_error(cmd, "%s is the source's option (lmig qemu send)",
					   q.live_opt ? q.live_opt : c.vm.opt);
		if (c.tls.hostname)
			return usage_error(cmd, "unknown option '--tls-hostname' (the source's)");
		if (opts_check_listen(cmd, &c))
			return EXIT_USAGE;
	}
	if (opts_tls(cmd, &c, &tls, !send))
		return EXIT_USAGE;
	q.a.qmp = c.vm.qmp;
	q.a.to = c.to;
	q.a.listen = c.listen;
	q.a.timeout_ms = c.timeout_ms;
	q.a.live_timeout_ms = c.timeout_set ? c.timeout_ms : 0;
	q.a.accept_timeout_ms = c.accept_timeout_ms;
	q.a.ready_fd = c.ready_fd;
	q.a.tls = tls_on(&tls) ? &tls : NULL;
	q.a.progress = cmd_progress_default(c.progress, g);
	q.a.g = g;
	q.a.so.channels = c.channels;
	q.a.so.compress = c.compress;
	q.a.so.bandwidth = c.bandwidth;
	q.a.so.zerocopy = c.zerocopy;
	q.a.so.timeout_ms = c.timeout_ms > 10000 ? 10000 : c.timeout_ms;
	q.a.so.live_timeout_ms = q.a.live_timeout_ms;
	q.a.so.tls = q.a.tls;
	q.a.so.progress = q.a.progress;
	q.a.so.plain_progress = !isatty(STDERR_FILENO);
	q.a.so.events = &cli_qemu_events;
	if (c.vm.throttle >= 0)
		q.a.so.throttle = c.vm.throttle;
	q.a.so.throttle_max_pct = c.vm.max_pct;
	ret = send ? qemu_send_run(&q.a, &r) : qemu_recv_run(&q.a, &r);
	ret = finish(cmd, ret, &r, q.a.progress, g);
	tls_conf_free(&tls);
	return ret;
}

int cmd_qemu(int argc, char **argv, struct global_opts *g)
{
	if (argc < 2)
		return usage_error("qemu", "missing send or recv");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_qemu();
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "send"))
		return qemu_side(true, argc - 1, argv + 1, g);
	if (!strcmp(argv[1], "recv"))
		return qemu_side(false, argc - 1, argv + 1, g);
	return usage_error("qemu", "'%s' is not send or recv", argv[1]);
}
