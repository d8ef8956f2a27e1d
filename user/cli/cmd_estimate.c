// SPDX-License-Identifier: GPL-2.0-only
/*
 * lmig estimate: before a live migration, how long will it take, in how
 * many rounds, with what downtime, and does it converge as it is, only
 * with --throttle auto's CPU limit, or not at all?
 *
 * It watches the memory for --observe seconds and plays the pre-copy
 * with what it saw (live/estimate.h: the model).  The memory of `lmig
 * send` (--mem, --pid) is watched with a dirty tracker, as `lmig
 * dirtyrate` does; a QEMU guest's RAM (--qmp) is read in QEMU's memory,
 * or QEMU asked with calc-dirty-rate; the link is --bandwidth, or
 * measured by a short real send to an `lmig recv` (--to): all of that in
 * cli/estimate_obs.c.  This file: the options, the defaults the
 * observation leaves, and the words of the result.
 */
#include <stdio.h>
#include <string.h>

#include <lmig/wire.h>

#include "cli/cmd.h"
#include "cli/estimate_obs.h"
#include "cli/options.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/parse.h"
#include "live/converge_vm.h"
#include "live/estimate.h"
#include "live/throttle_policy.h"
#include "live/watch.h"

/*
 * lmig send's wire cost of a page: the page, its descriptor, and its share
 * of a frame header (BATCH_TARGET bytes of pages a frame, 64 pages).
 */
#define LMIG_PAGE_WIRE	(LMIG_PAGE_SIZE + sizeof(struct lmig_page_desc) + \
			 sizeof(struct lmig_frame) / 64.0)
/* QEMU 7.2: a page is an 8-byte address-and-flags word and the page; a zero page that word and one byte. */
#define QEMU_PAGE_WIRE	(8.0 + 4096)
#define QEMU_ZERO_WIRE	9.0
/*
 * Fixed costs that no observation gives (Documentation/estimate.md has
 * where they come from): lmig send's connection and handshake before
 * round 0, and its commit after the last page (the receiver's digest
 * check and reply) when --to did not measure them; QEMU's set-up, its
 * dirty bitmap synchronisation, and its stop and device state.
 */
#define LMIG_SETUP_S	0.02
#define LMIG_COMMIT_S	0.01
#define QEMU_SETUP_S	0.05
#define QEMU_SYNC_S	0.005
#define QEMU_SWITCH_S	0.01

enum { EO_TRACKER = OPT_OWN, EO_OBJECT_WRITES, EO_QMP, EO_MAX_ROUNDS, EO_THROTTLE,
       EO_THROTTLE_MAX, EO_OBSERVE, EO_PROBE };

void usage_estimate(void)
{
	printf("Usage: lmig estimate --mem PATH [--pid PID] (--bandwidth RATE | --to HOST:PORT)\n"
	       "                     [OPTIONS]\n"
	       "       lmig estimate --qmp SOCKET [--mem /proc/QEMU_PID/fd/N]\n"
	       "                     [--bandwidth RATE | --to HOST:PORT] [OPTIONS]\n"
	       "\n"
	       "Predict a live migration before starting it: watch how the memory is\n"
	       "written, then play the pre-copy round by round as `lmig send` (or, with\n"
	       "--qmp, QEMU) runs it.  Says the total time, the rounds and the downtime,\n"
	       "and whether it converges as it is, only with --throttle auto (leaving the\n"
	       "workload which share of its CPU), or not at all.\n"
	       "\n"
	       "What is watched:\n"
	       "  -m, --mem PATH          the memory of `lmig send --mem`: a shm/tmpfs file,\n"
	       "                          /proc/PID/fd/N of a memfd, or anon:START-END of --pid;\n"
	       "                          with --qmp, guest RAM shared as a memfd (optional)\n"
	       "  -p, --pid PID           the process that writes it (as for lmig dirtyrate)\n"
	       "      --tracker NAME      %s (default auto)\n"
	       "      --object-writes any|mapped\n"
	       "                          as for lmig send\n"
	       "      --qmp SOCKET        a QEMU guest's QMP socket: its RAM size, downtime\n"
	       "                          limit and max-bandwidth; its RAM is watched in\n"
	       "                          QEMU's memory (root), else asked with calc-dirty-rate;\n"
	       "                          predicts QEMU's own pre-copy\n"
	       "      --observe S         watch this long, 1..600 s (default 5); progress on\n"
	       "                          stderr meanwhile\n"
	       "\n"
	       "The link (one of them; with --qmp QEMU's max-bandwidth, when set, caps it):\n"
	       "  -b, --bandwidth RATE    the rate it carries, bytes/s: 125M, 1Gbit, 64Mi\n"
	       "  -t, --to HOST:PORT      measure it: send a probe image (a copy of the first\n"
	       "                          --probe bytes of --mem, or random data) to an `lmig\n"
	       "                          recv` listening there, which stores it at its --out;\n"
	       "                          with --bandwidth too, the probe is held to it\n"
	       "      --probe SIZE        probe image size (default 128M)\n"
	       "  -c, --channels N, -z, --compress MODE, --zerocopy MODE, --timeout S\n"
	       "                          for the probe send, as for lmig send\n"
	       "\n"
	       "The migration planned:\n"
	       "  -d, --downtime-ms N     the downtime budget (default 300; with --qmp,\n"
	       "                          QEMU's downtime-limit)\n"
	       "      --max-rounds N      lmig send's (default 30)\n"
	       "      --throttle auto|off whether a CPU limit may help (default auto)\n"
	       "      --throttle-max PCT  take at most PCT %% of its CPU (1..99, default 90;\n"
	       "                          99 with --qmp: lmig pipe|proxy send --qmp go\n"
	       "                          below 90 where a limit there does not work)\n"
	       "\n"
	       "      --progress, --no-progress\n"
	       "                          progress while watching (default: when stderr is a\n"
	       "                          terminal)\n"
	       "  -j, --json              one JSON object with the estimate on stdout\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "Exit status: 0 estimated (whatever the verdict), 1 failed, 2 bad usage.\n",
	       tracker_names());
}

static const char *verdict_name(enum est_verdict v)
{
	return v == EST_CONVERGES ? "converges" : v == EST_THROTTLE ? "throttle" : "never";
}

static const char *fail_name(enum est_fail f)
{
	return f == EST_FAIL_ROUNDS ? "rounds" : f == EST_FAIL_HARVEST ? "harvest" :
	       f == EST_FAIL_LINK ? "link" : "none";
}

/* One predicted migration, its keys named with prefix. */
static void json_run(struct json_obj *j, const char *prefix, const struct est_run *r)
{
	char k[64];

#define KEY(name)	(snprintf(k, sizeof(k), "%s%s", prefix, name), k)
	json_bool(j, KEY("converged"), r->converged);
	json_str(j, KEY("fail"), fail_name(r->fail));
	json_u64(j, KEY("rounds"), r->rounds);
	json_dbl(j, KEY("total_s"), r->total_s, 3);
	json_dbl(j, KEY("downtime_ms"), r->converged ? r->downtime_s * 1000 : 0, 1);
	json_dbl(j, KEY("predicted_downtime_ms"), r->predicted_downtime_s * 1000, 1);
	json_u64(j, KEY("bytes_wire"), (uint64_t)r->wire_bytes);
	json_dbl(j, KEY("cpu_share_pct"), r->share * 100, 1);
	json_u64(j, KEY("throttle_from_round"), r->throttle_round);
	json_u64(j, KEY("throttle_steps"), r->throttle_steps);
	json_bool(j, KEY("throttle_lifted"), r->throttle_lifted);
	json_dbl(j, KEY("cpu_share_last_pct"), r->share_last * 100, 1);
#undef KEY
}

static void report_json(const struct est_obs *ob, const struct est_result *res, bool qemu)
{
	const struct est_input *in = &ob->in;
	struct json_obj j;

	json_begin(&j);
	json_str(&j, "role", "estimate");
	json_str(&j, "status", "completed");
	json_str(&j, "model", qemu ? "qemu" : "lmig");
	json_str(&j, "tracker", ob->tracker);
	json_str(&j, "tracker_why", ob->why[0] ? ob->why : NULL);
	json_str(&j, "accel", ob->accel[0] ? ob->accel : NULL);
	json_dbl(&j, "observed_s", ob->observed_s, 2);
	json_u64(&j, "harvests", ob->harvests);
	json_dbl(&j, "harvest_ms", in->harvest_s * 1000, 2);
	json_dbl(&j, "harvest_min_ms", ob->harvest_s * 1000, 2);
	{
		int us[EST_HARVESTS_MAX];

		for (unsigned int i = 0; i < in->nharvests && i < EST_HARVESTS_MAX; i++)
			us[i] = (int)(in->harvests[i] * 1e6);
		json_int_array(&j, "harvests_us", us, in->nharvests);
	}
	json_dbl(&j, "harvest_mean_ms", in->harvest_live_s * 1000, 2);
	json_dbl(&j, "cpu_used_pct", in->cpu_used * 100, 1);
	json_dbl(&j, "busiest_thread_runnable_pct", in->cpu_busy * 100, 1);
	json_dbl(&j, "cpu_quiet_pct", in->cpu_quiet * 100, 1);
	json_dbl(&j, "pace", res->pace, 2);
	json_u64(&j, "bytes_total", in->npages * (uint64_t)LMIG_PAGE_SIZE);
	json_u64(&j, "pages_total", in->npages);
	json_u64(&j, "pages_zero", in->zero_pages);
	json_array_begin(&j, "curve");
	for (unsigned int i = 0; i < in->curve.n; i++) {
		json_elem_begin(&j);
		json_dbl(&j, "s", in->curve.t[i], 3);
		json_dbl(&j, "pages", in->curve.pages[i], 1);
		json_dbl(&j, "mbps", in->curve.pages[i] * LMIG_PAGE_SIZE / in->curve.t[i] / 1e6, 2);
		json_elem_end(&j);
	}
	json_array_end(&j);
	json_dbl(&j, "dirty_mbps", res->dirty_pps * LMIG_PAGE_SIZE / 1e6, 2);
	json_u64(&j, "working_set_bytes", (uint64_t)(res->working_set * LMIG_PAGE_SIZE));
	json_dbl(&j, "link_mbps", in->link_bps / 1e6, 2);
	json_str(&j, "link_from", ob->link_from);
	json_dbl(&j, "final_mbps", (in->final_bps > 0 ? in->final_bps : in->link_bps) / 1e6, 2);
	json_dbl(&j, "page_wire", in->page_wire, 1);
	json_dbl(&j, "setup_ms", in->setup_s * 1000, 1);
	json_dbl(&j, "switch_ms", in->switch_s * 1000, 1);
	json_u64(&j, "downtime_limit_ms", in->downtime_ms);
	json_u64(&j, "max_rounds", qemu ? 0 : in->max_rounds);
	json_str(&j, "verdict", verdict_name(res->verdict));
	/*
	 * The migration as it would go: with the limit when one is needed;
	 * for lmig send --throttle auto, its controller's course.
	 */
	json_run(&j, "", res->verdict == EST_THROTTLE || res->course ? &res->throttled :
			 &res->as_is);
	json_run(&j, "as_is_", &res->as_is);
	json_bool(&j, "writer_idle", res->idle_writer);
	json_dbl(&j, "throttle_floor_pct", res->floor * 100, 1);
	json_dbl(&j, "throttle_least_cpu_pct",
		 (in->least_cpus > 0 ? in->least_cpus : TPOL_CPUS_MIN) * 100, 2);
	json_dbl(&j, "throttle_needed_pct", res->share_needed * 100, 1);
	json_dbl(&j, "throttle_share_pct", res->verdict == EST_THROTTLE ? res->share * 100 : 0, 1);
	json_end(&j, stdout);
}

/* "about 3.1 s in 4 rounds, downtime about 75 ms" */
static void say_run(const struct est_run *r)
{
	printf("about %.1f s in %u rounds, downtime about %.0f ms (%.0f MB on the wire)\n",
	       r->total_s, r->rounds, r->downtime_s * 1000, r->wire_bytes / 1e6);
}

static void report_text(const struct est_obs *ob, const struct est_result *res, bool qemu)
{
	const struct est_input *in = &ob->in;
	const char *who = qemu ? "QEMU's pre-copy" : "lmig send";

	printf("watched %.1f s (%s%s%s): %.1f MB, %.1f %% zero pages\n", ob->observed_s,
	       ob->tracker, ob->accel[0] ? ", accel " : "", ob->accel,
	       in->npages * (double)LMIG_PAGE_SIZE / 1e6,
	       in->npages ? 100.0 * in->zero_pages / in->npages : 0);
	printf("dirtied (distinct pages):");
	for (unsigned int i = 0; i < in->curve.n; i++)
		printf("%s %.1f MB in %.2f s", i ? "," : "",
		       in->curve.pages[i] * LMIG_PAGE_SIZE / 1e6, in->curve.t[i]);
	printf("\n  %.1f MB/s over a round 0, working set about %.1f MB",
	       res->dirty_pps * LMIG_PAGE_SIZE / 1e6, res->working_set * LMIG_PAGE_SIZE / 1e6);
	if (in->cpu_used > 0)
		printf(", the writer used %.0f %% of a CPU", in->cpu_used * 100);
	printf("\n");
	printf("link: %.1f MB/s (%s), %.0f wire bytes a page; downtime budget %u ms\n",
	       in->link_bps / 1e6, ob->link_from, in->page_wire, in->downtime_ms);
	if (in->final_bps > in->link_bps)
		printf("  the last pass, with the guest stopped, at %.1f MB/s\n", in->final_bps / 1e6);
	switch (res->verdict) {
	case EST_CONVERGES:
		printf("%s converges as it is: ", who);
		say_run(&res->as_is);
		if (res->course && res->throttled.throttle_round) {
			printf("  --throttle auto would start a limit at round %u%s: ",
			       res->throttled.throttle_round,
			       res->throttled.throttle_lifted ? " and lift it as useless" : "");
			say_run(&res->throttled);
		}
		return;
	case EST_THROTTLE:
		printf("%s does not converge as it is: the rounds do not shrink to the budget\n", who);
		if (res->course) {
			printf("with --throttle auto it does, its limit from round %u down to %.0f %% of the CPU the writer would use: ",
			       res->throttled.throttle_round, res->share * 100);
			say_run(&res->throttled);
			return;
		}
		printf("with --throttle auto it does once the workload is held to %.0f %% of its CPU or less",
		       res->share_needed * 100);
		if (res->share < res->share_needed)
			printf(" (it would aim at %.0f %%)", res->share * 100);
		printf(": ");
		say_run(&res->throttled);
		return;
	case EST_NEVER:
		break;
	}
	if (res->as_is.fail == EST_FAIL_HARVEST)
		printf("%s does not converge: the harvest alone (%.0f ms) is over the budget\n", who,
		       in->harvest_s * 1000);
	else if (res->idle_writer && in->throttle_max_pct)
		printf("%s does not converge, and a CPU limit would not help: the writer's busiest thread ran or waited to run %.0f %% of the time while watched (it sleeps between writes; a limit does not slow it)\n",
		       who, in->cpu_busy * 100);
	else if (res->floor < 1)
		printf("%s does not converge, not even with the workload's CPU cut to %.0f %% (--throttle-max, or the least limit of %.2f %% of a CPU)\n",
		       who, res->floor * 100, (in->least_cpus > 0 ? in->least_cpus : TPOL_CPUS_MIN) * 100);
	else
		printf("%s does not converge (and --throttle is off)\n", who);
}

static int estimate_opt(int opt, const char *arg, void *ctx)
{
	struct est_args *a = ctx;

	switch (opt) {
	case 'm': a->mem = arg; return EXIT_OK;
	case 'p': return opts_uint("estimate", "--pid", arg, 1, 1UL << 22, &a->pid);
	case EO_TRACKER: a->tname = arg; return EXIT_OK;
	case EO_OBJECT_WRITES:
		if (strcmp(arg, "any") && strcmp(arg, "mapped"))
			return usage_error("estimate", "--object-writes: '%s' is not any or mapped",
					   arg);
		a->tg.mapped_writes_only = !strcmp(arg, "mapped");
		return EXIT_OK;
	case EO_QMP: a->qmp = arg; return EXIT_OK;
	case 'd':
		a->downtime_set = true;
		return opts_uint("estimate", "--downtime-ms", arg, 1, 3600000, &a->downtime_ms);
	case EO_MAX_ROUNDS: return opts_uint("estimate", "--max-rounds", arg, 1, 10000, &a->max_rounds);
	case EO_THROTTLE:
		if (strcmp(arg, "auto") && strcmp(arg, "off"))
			return usage_error("estimate", "--throttle: '%s' is not auto or off", arg);
		a->throttle_off = !strcmp(arg, "off");
		return EXIT_OK;
	case EO_THROTTLE_MAX:
		return opts_uint("estimate", "--throttle-max", arg, 1, 99, &a->throttle_max);
	case EO_OBSERVE: return opts_uint("estimate", "--observe", arg, 1, 600, &a->observe_s);
	case EO_PROBE:
		if (parse_bytes("--probe", arg, &a->probe))
			return usage_error("estimate", "%s", lmig_errmsg());
		/* Whole pages: 128M (decimal) is 31250 of them. */
		a->probe -= a->probe % LMIG_PAGE_SIZE;
		if (a->probe < (1 << 20))
			return usage_error("estimate", "--probe: at least 1Mi");
		return EXIT_OK;
	}
	return OPT_NOT_OWN;
}

/* What the options allow together; the one-line refusal if not. */
static int estimate_check(struct est_args *a, const struct cli_opts *c)
{
	if (!a->mem && !a->qmp)
		return usage_error("estimate", "missing --mem PATH or --qmp SOCKET");
	if (!c->bandwidth && !c->to && !a->qmp)
		return usage_error("estimate", "the link: give --bandwidth RATE or --to HOST:PORT");
	if (c->to && cmd_check_address("estimate", "--to", c->to))
		return EXIT_USAGE;
	if (a->mem && !strncmp(a->mem, "anon:", 5)) {
		if (!a->pid)
			return usage_error("estimate", "--mem anon: needs --pid");
		if (parse_anon_range("--mem", a->mem, &a->tg.start, &a->tg.size))
			return usage_error("estimate", "%s", lmig_errmsg());
	}
	if (!tracker_known(a->tname))
		return usage_error("estimate", "--tracker: '%s' is not one of %s", a->tname,
				   tracker_names());
	a->tg.pid = (pid_t)a->pid;
	return EXIT_OK;
}

/* The model's inputs that the observation and the probe left unset. */
static void fill_defaults(const struct est_args *a, const struct cli_opts *c, struct est_obs *ob,
			  int64_t max_bw)
{
	struct est_input *in = &ob->in;

	in->max_rounds = a->max_rounds;
	/*
	 * Not given: lmig send's default; with --qmp the least limit, where
	 * lmig pipe|proxy send --qmp go when their floor does not work.
	 */
	in->throttle_max_pct = a->throttle_off ? 0 : a->throttle_max ? a->throttle_max :
			       a->qmp ? 99 : 90;
	if (!in->downtime_ms)
		in->downtime_ms = a->downtime_ms;
	if (!in->link_bps && c->bandwidth) {
		in->link_bps = c->bandwidth;
		ob->link_from = "--bandwidth";
	}
	if (in->kind == EST_QEMU) {
		/*
		 * QEMU holds to its own max-bandwidth whatever the link could
		 * carry, except in the last pass, with the guest stopped.
		 */
		in->final_bps = in->link_bps;
		if (max_bw > 0 && (!in->link_bps || max_bw < in->link_bps)) {
			in->link_bps = max_bw;
			ob->link_from = "QEMU's max-bandwidth";
		}
		in->page_wire = QEMU_PAGE_WIRE;
		in->zero_wire = QEMU_ZERO_WIRE;
		in->setup_s = QEMU_SETUP_S;
		in->switch_s = QEMU_SWITCH_S;
		/* QEMU reads its dirty log, not the memory: cheaper than a scan. */
		in->harvest_s = QEMU_SYNC_S;
		in->content_compare = false;
		in->least_cpus = cvm_least_cpus(in->downtime_ms);
		return;
	}
	in->overrun_cpus = EST_LIMIT_OVERRUN_CPUS;
	if (!in->page_wire)
		in->page_wire = LMIG_PAGE_WIRE;
	if (!in->setup_s)
		in->setup_s = LMIG_SETUP_S;
	if (!in->switch_s)
		in->switch_s = LMIG_COMMIT_S;
	/* The token bucket of --bandwidth refills while a harvest runs. */
	if (c->bandwidth)
		in->burst = estimate_burst(c->bandwidth);
}

int cmd_estimate(int argc, char **argv, struct global_opts *g)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "pid", required_argument, NULL, 'p' },
		{ "tracker", required_argument, NULL, EO_TRACKER },
		{ "object-writes", required_argument, NULL, EO_OBJECT_WRITES },
		{ "qmp", required_argument, NULL, EO_QMP },
		{ "observe", required_argument, NULL, EO_OBSERVE },
		{ "probe", required_argument, NULL, EO_PROBE },
		{ "downtime-ms", required_argument, NULL, 'd' },
		{ "max-rounds", required_argument, NULL, EO_MAX_ROUNDS },
		{ "throttle", required_argument, NULL, EO_THROTTLE },
		{ "throttle-max", required_argument, NULL, EO_THROTTLE_MAX },
		OPTE_TO,
		OPTE_WIRE,
		OPTE_TIMEOUT,
		OPTE_PROGRESS,
		OPTE_JSON,
		OPTE_HELP,
		OPTE_END };
	struct est_args a = { .tname = "auto", .tg = { .fd = -1 }, .observe_s = 5,
			      .downtime_ms = 300, .max_rounds = 30, .throttle_max = 0,
			      .probe = 128 << 20 };
	const struct cli_parse p = { "estimate", ":m:p:d:t:c:z:b:jh", lo, usage_estimate,
				     estimate_opt, &a };
	struct watch w = { .tg = { .fd = -1 } };
	struct est_obs ob = { .tracker = "", .link_from = "" };
	struct est_result res;
	struct cli_opts c;
	int64_t max_bw = -1;
	uint64_t ram = 0, ram_at = 0;
	pid_t qpid = 0;
	char anon[64];
	bool progress;
	int ret;

	opts_init(&c);
	ret = opts_parse(&p, &c, g, argc, argv);
	if (ret != OPTS_RUN)
		return ret;
	if (estimate_check(&a, &c))
		return EXIT_USAGE;
	progress = cmd_progress_default(c.progress, g);
	ob.in.kind = a.qmp ? EST_QEMU : EST_LMIG;
	ret = a.qmp ? estimate_ask_qmp(&a, progress, false, &ob, &max_bw, &qpid, &ram) : 0;
	/*
	 * A guest's RAM is QEMU's memory: read there, with the scan tracker,
	 * it gives the curve in distinct pages and the zero pages exactly.
	 * Where it cannot be read, QEMU's calc-dirty-rate, and no zero pages.
	 */
	if (!ret && a.qmp && !a.mem) {
		if (estimate_qemu_ram(qpid, ram, &ram_at) == 0) {
			snprintf(anon, sizeof(anon), "anon:%llx-%llx", (unsigned long long)ram_at,
				 (unsigned long long)(ram_at + ram));
			a.mem = anon;
			a.tname = "scan";
			a.tg.pid = qpid;
			a.tg.start = ram_at;
			a.tg.size = ram;
		} else {
			ret = estimate_ask_qmp(&a, progress, true, &ob, &max_bw, &qpid, &ram);
		}
	}
	if (!ret && a.mem) {
		uint64_t npages = ob.in.npages;

		ret = estimate_watch_mem(&w, &a, progress, &ob);
		/* Guest RAM not ours to read (no ptrace right): ask QEMU instead. */
		if (ret && a.mem == anon) {
			lmig_err_clear();
			watch_close(&w);
			ob.in.zero_pages = 0;
			ob.why[0] = '\0';
			ret = estimate_ask_qmp(&a, progress, true, &ob, &max_bw, &qpid, &ram);
		}
		/* QEMU's idea of its RAM decides the model's image. */
		if (!ret && a.qmp && npages) {
			ob.in.npages = npages;
			if (ob.in.zero_pages > npages)
				ob.in.zero_pages = npages;
		}
	}
	if (!ret && c.to)
		ret = estimate_probe_link(&a, &c, a.mem && !a.qmp ? &w : NULL, &ob);
	watch_close(&w);
	if (ret) {
		fprintf(stderr, "lmig estimate: %s\n", lmig_errmsg());
		return EXIT_FAIL;
	}
	fill_defaults(&a, &c, &ob, max_bw);
	if (!ob.in.link_bps) {
		fprintf(stderr, "lmig estimate: QEMU has no max-bandwidth: give --bandwidth RATE or --to HOST:PORT\n");
		return EXIT_USAGE;
	}
	est_predict(&ob.in, &res);
	if (g->json)
		report_json(&ob, &res, a.qmp != NULL);
	else
		report_text(&ob, &res, a.qmp != NULL);
	return EXIT_OK;
}
