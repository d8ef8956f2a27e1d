// SPDX-License-Identifier: GPL-2.0-only
/*
 * The convergence controller of a QEMU guest (converge_vm.h): a thread
 * that follows the migration over QMP, decides with throttle_policy.c and
 * limits the vCPU threads through host/throttle.h.  Setting up (QMP, the
 * vCPU threads, the probes, the guard) happens in the caller's thread,
 * before the engine starts its own; from then on only the controller's
 * thread touches struct converge_vm until cvm_stop() has joined it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/err.h"
#include "host/guard.h"
#include "host/procfs.h"
#include "host/qmp.h"
#include "live/converge_vm.h"

/* Guest write faults and KVM exits of one vCPU thread since the last decision. */
struct cvm_count {
	uint64_t guest_faults, guest_exits;
};

struct converge_vm {
	struct cvm_conf conf;
	struct cvm_stats *st;
	struct qmp q;
	pthread_t th;
	bool started;
	int wake[2];			/* cvm_stop() writes to wake[1] */
	atomic_bool stop;
	struct guard guard;
	struct probes pr;
	struct probe_sample ps;
	struct cvm_count cnt[CVM_VCPUS_MAX];	/* per vCPU, as st->vcpus */
	/* The vCPU threads' run time (ns, as st->vcpus) at the last two decisions. */
	struct cvm_cpu {
		double t;
		uint64_t ns[CVM_VCPUS_MAX];
	} snap[2];
	struct throttle th_cg;
	struct tpol_conf tc;
	struct tpol_state pol;
	enum tpol_period_rule rule;	/* LMIG_CVM_PERIOD */
	double t0, t_dec;		/* start; the last decision (or the start of the migration) */
	uint64_t xfer;			/* "transferred" at t_dec */
	uint64_t sync;			/* dirty-sync-count at t_dec */
	bool armed;			/* a migration under way was seen */
};

static bool terminal(const char *status)
{
	return !strcmp(status, "completed") || !strcmp(status, "failed") ||
	       !strcmp(status, "cancelled");
}

unsigned int cvm_vcpus_by_name(pid_t pid, pid_t *out, unsigned int max)
{
	char dir[64], comm[64];
	struct dirent *de;
	unsigned int n = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		char tdir[sizeof(dir) + sizeof(de->d_name)];
		unsigned int idx;
		char acc[8];

		if (de->d_name[0] == '.')
			continue;
		snprintf(tdir, sizeof(tdir), "%s/%s", dir, de->d_name);
		if (kfile_read(tdir, "comm", comm, sizeof(comm)))
			continue;
		/* -name ...,debug-threads=on (libvirt sets it): "CPU 0/KVM", "CPU 1/TCG" */
		if (sscanf(comm, "CPU %u/%7[A-Z]", &idx, acc) == 2)
			out[n++] = atoi(de->d_name);
	}
	closedir(d);
	return n;
}

/* The vCPU threads, from QMP (or their names when QMP does not say). */
static int find_vcpus(struct converge_vm *cv)
{
	struct qmp_vcpu v[QMP_VCPUS_MAX];
	struct cvm_stats *st = cv->st;
	int n = qmp_vcpus(&cv->q, v, QMP_VCPUS_MAX);

	st->nvcpus = 0;
	for (int i = 0; i < n && st->nvcpus < CVM_VCPUS_MAX; i++)
		if (v[i].tid > 0)
			st->vcpus[st->nvcpus++] = v[i].tid;
	if (!st->nvcpus) {
		lmig_err_clear();
		st->nvcpus = cvm_vcpus_by_name(st->qemu_pid, st->vcpus, CVM_VCPUS_MAX);
	}
	if (!st->nvcpus)
		return lmig_err("QMP %s: QEMU (process %d) named no vCPU thread", cv->conf.qmp_path,
				(int)st->qemu_pid);
	return 0;
}

static int vcpu_index(const struct cvm_stats *st, pid_t tid)
{
	for (unsigned int i = 0; i < st->nvcpus; i++)
		if (st->vcpus[i] == tid)
			return i;
	return -1;
}

/* The probes' counts since their last sample, added to each vCPU's. */
static void sample_probes(struct converge_vm *cv)
{
	if (!cv->pr.ok || probes_sample(&cv->pr, &cv->ps))
		return;
	for (unsigned int i = 0; i < cv->ps.nthreads; i++) {
		int k = vcpu_index(cv->st, cv->ps.threads[i].tid);

		if (k < 0)
			continue;
		cv->cnt[k].guest_faults += cv->ps.threads[i].c.guest_faults;
		cv->cnt[k].guest_exits += cv->ps.threads[i].c.guest_exits;
	}
}

/*
 * Whom to limit, into st->limited: the vCPU threads that write when that
 * can be told (KVM, probes, enough faults), else all of them.
 */
static void choose(struct converge_vm *cv)
{
	struct cvm_stats *st = cv->st;
	struct tpol_thread t[CVM_VCPUS_MAX];
	uint64_t exits = 0;
	int n = -1;

	for (unsigned int i = 0; i < st->nvcpus; i++) {
		t[i] = (struct tpol_thread){ .tid = st->vcpus[i],
					     .write_faults = cv->cnt[i].guest_faults };
		exits += cv->cnt[i].guest_exits;
	}
	if (st->accel == CVM_ACCEL_TCG)
		st->whom = CVM_WHOM_ALL_TCG;
	else if (!cv->pr.ok)
		st->whom = CVM_WHOM_ALL_NO_PROBES;
	else if (!exits)
		st->whom = CVM_WHOM_ALL_NO_EXITS;
	else if ((n = tpol_writers(t, st->nvcpus, st->limited, CVM_VCPUS_MAX)) < 0)
		st->whom = CVM_WHOM_ALL_FEW;
	else if (n == 0)
		st->whom = CVM_WHOM_ALL_MOST;
	else
		st->whom = CVM_WHOM_WRITERS;
	if (n > 0) {
		st->nlimited = n;
		return;
	}
	memcpy(st->limited, st->vcpus, st->nvcpus * sizeof(*st->vcpus));
	st->nlimited = st->nvcpus;
}

/*
 * The vCPU threads' run time from /proc/PID/task/TID/schedstat, in ns:
 * a limited vCPU uses a few milliseconds a second, below the 10 ms
 * ticks of /proc's stat.
 */
static void cpu_take(const struct converge_vm *cv, struct cvm_cpu *c)
{
	const struct cvm_stats *st = cv->st;

	c->t = now_s();
	for (unsigned int i = 0; i < st->nvcpus; i++) {
		char dir[64], buf[128];
		unsigned long long ns;

		snprintf(dir, sizeof(dir), "/proc/%d/task/%d", (int)st->qemu_pid, (int)st->vcpus[i]);
		c->ns[i] = !kfile_read(dir, "schedstat", buf, sizeof(buf)) &&
			   sscanf(buf, "%llu", &ns) == 1 ? ns : 0;
	}
}

/* CPUs the threads in tids used between the last two decisions. */
static double cpus_of(const struct converge_vm *cv, const pid_t *tids, unsigned int n)
{
	const struct cvm_stats *st = cv->st;
	double dt = cv->snap[1].t - cv->snap[0].t, ns = 0;

	if (dt <= 0)
		return 0;
	for (unsigned int k = 0; k < n; k++) {
		int i = vcpu_index(st, tids[k]);

		if (i >= 0 && cv->snap[1].ns[i] > cv->snap[0].ns[i])
			ns += cv->snap[1].ns[i] - cv->snap[0].ns[i];
	}
	return ns / 1e9 / dt;
}

/* The CPUs the threads that count (those limited, once) used. */
static double cpu_used(const struct converge_vm *cv)
{
	const struct cvm_stats *st = cv->st;

	if (cv->pol.on)
		return cpus_of(cv, st->limited, st->nlimited);
	return cpus_of(cv, st->vcpus, st->nvcpus);
}

static void note_err(struct converge_vm *cv, enum cvm_note note)
{
	cv->st->note = note;
	snprintf(cv->st->err, sizeof(cv->st->err), "%s", lmig_errmsg());
	lmig_err_clear();
}

/* Undo the limit; false if that failed (the state file keeps what is left). */
static bool undo(struct converge_vm *cv)
{
	if (!cv->th_cg.applied)
		return true;
	if (throttle_restore(&cv->th_cg)) {
		snprintf(cv->st->err, sizeof(cv->st->err), "%s", lmig_errmsg());
		lmig_err_clear();
		cv->st->restored = false;
		return false;
	}
	cv->st->restored = true;
	cv->st->restored_s = now_s() - cv->t0;
	return true;
}

/* TPOL_START: the cgroup set up for the chosen threads; -1 if it could not be. */
static int start(struct converge_vm *cv, struct tpol_round *r, struct tpol_decision *d)
{
	struct cvm_stats *st = cv->st;

	choose(cv);
	if (throttle_init(&cv->th_cg, st->qemu_pid, st->limited, st->nlimited)) {
		note_err(cv, CVM_NOTE_CANNOT);
		st->retry = !tpol_failed(&cv->pol);
		return -1;
	}
	if (!cv->th_cg.per_thread) {
		/*
		 * Only QEMU whole could be held (cgroup v2 without a threaded
		 * child): that would slow its migration thread as much as its
		 * vCPUs, so no limit at all.
		 */
		undo(cv);
		st->note = CVM_NOTE_WHOLE_PROCESS;
		tpol_unset(&cv->pol, false);
		return -1;
	}
	r->cpu_used = cpus_of(cv, st->limited, st->nlimited);
	tpol_start(&cv->pol, &cv->tc, r, 0, d);
	st->throttled = true;
	st->restored = false;
	st->first_s = now_s() - cv->t0;
	st->v2 = cv->th_cg.v2;
	st->kind = throttle_kind(&cv->th_cg);
	snprintf(st->cg, sizeof(st->cg), "%s", cv->th_cg.tcg[0] ? cv->th_cg.tcg : cv->th_cg.cg);
	st->note = CVM_NOTE_NONE;
	return 0;
}

static void apply(struct converge_vm *cv, const struct tpol_decision *d)
{
	/*
	 * QEMU stops the vCPUs inside its downtime: the short period gives
	 * the least wait a share allows, as long as the rule keeps it.
	 */
	cv->th_cg.short_period = tpol_short_period(cv->rule);
	if (throttle_set(&cv->th_cg, d->cpus)) {
		note_err(cv, CVM_NOTE_SET_FAILED);
		tpol_unset(&cv->pol, undo(cv));
		return;
	}
	if (!cv->st->min_cpus || d->cpus < cv->st->min_cpus)
		cv->st->min_cpus = d->cpus;
}

static void record(struct converge_vm *cv, const struct tpol_round *r, enum tpol_why why,
		   uint64_t sync)
{
	struct cvm_stats *st = cv->st;

	if (st->nsteps == CVM_STEPS_MAX) {
		/* The first ones stay (how it began), the last one is the latest. */
		st->steps_lost++;
		st->nsteps--;
	}
	st->steps[st->nsteps++] = (struct cvm_step){
		.t_s = now_s() - cv->t0, .sync = sync, .dirty_mbps = r->dirty_mbps,
		.link_mbps = r->link_mbps, .pred_ms = r->pred_s * 1000, .cpu_used = r->cpu_used,
		.cpus = cv->pol.on ? cv->th_cg.share : 0, .why = why,
	};
}

/* A new dirty-sync-count: measure, decide, apply. */
static void decide(struct converge_vm *cv, const struct qmp_migrate *m)
{
	struct cvm_stats *st = cv->st;
	struct qmp_params p;
	struct tpol_round r;
	struct tpol_decision d;
	double t = now_s(), dt = t - cv->t_dec;
	double link = dt > 0 && m->transferred > cv->xfer ? (m->transferred - cv->xfer) / dt :
		      m->mbps * 1e6 / 8;
	uint64_t psz = m->page_size ? m->page_size : 4096;

	if (!qmp_params(&cv->q, &p) && p.downtime_limit_ms > 0)
		st->downtime_limit_ms = p.downtime_limit_ms;
	lmig_err_clear();
	cv->tc.downtime_ms = st->downtime_limit_ms;
	cv->tc.min_cpus = cvm_least_cpus(st->downtime_limit_ms);
	st->least_cpus = cv->tc.min_cpus;
	cv->snap[0] = cv->snap[1];
	cpu_take(cv, &cv->snap[1]);
	r = (struct tpol_round){
		.dirty_mbps = m->dirty_pages_rate * psz / 1e6, .link_mbps = link / 1e6,
		.pred_s = link > 0 ? m->remaining / link : 3600, .look_s = dt,
		.cpu_used = cpu_used(cv), .cur_cpus = cv->th_cg.share,
		/* What the pass that just began has to send: the dirty set. */
		.pages = m->remaining / psz,
	};
	/*
	 * "Most of the memory" for the policy's verdict that a limit is
	 * useless: the most a pass ever found dirty, not all of the guest's
	 * RAM.  A guest that rewrites its working set within every pass keeps
	 * the count of distinct dirty pages up while it writes less.
	 */
	if (r.pages > st->dirty_set_max)
		st->dirty_set_max = r.pages;
	r.npages = st->dirty_set_max;
	tpol_decide(&cv->pol, &cv->tc, &r, &d);
	switch (d.action) {
	case TPOL_KEEP:
		break;
	case TPOL_LIFT:
		st->note = d.why == TPOL_FLOOR_FUTILE ? CVM_NOTE_FLOOR_FUTILE : CVM_NOTE_INEFFECTIVE;
		undo(cv);
		break;
	case TPOL_START:
		if (start(cv, &r, &d) == 0)
			apply(cv, &d);
		break;
	case TPOL_SET:
		apply(cv, &d);
		break;
	}
	record(cv, &r, d.why, m->dirty_sync_count);
	st->syncs++;
	memset(cv->cnt, 0, sizeof(cv->cnt));
	cv->t_dec = t;
	cv->xfer = m->transferred;
	cv->sync = m->dirty_sync_count;
}

/* One tick: false once the controller has nothing more to do. */
static bool tick(struct converge_vm *cv)
{
	struct cvm_stats *st = cv->st;
	struct qmp_migrate m;

	if (qmp_query_migrate(&cv->q, &m)) {
		/* Blind now: the source must not stay limited on a guess. */
		snprintf(st->err, sizeof(st->err), "%s", lmig_errmsg());
		lmig_err_clear();
		st->end = CVM_END_QMP_LOST;
		return false;
	}
	snprintf(st->qemu_status, sizeof(st->qemu_status), "%s", m.status);
	if (terminal(m.status)) {
		/* A status left from an earlier migration says nothing of this one. */
		if (!cv->armed)
			return true;
		st->end = !strcmp(m.status, "completed") ? CVM_END_COMPLETED :
			  !strcmp(m.status, "failed") ? CVM_END_FAILED : CVM_END_CANCELLED;
		return false;
	}
	if (!strcmp(m.status, "none"))
		return true;
	if (!cv->armed) {
		/* Its first pass is measured from here. */
		cv->armed = true;
		cv->t_dec = now_s();
		cv->xfer = m.transferred;
		cv->sync = m.dirty_sync_count;
		cpu_take(cv, &cv->snap[1]);
		return true;
	}
	sample_probes(cv);
	/* Count 1 is the set-up's sync; a rate comes with the next ones. */
	if (!strcmp(m.status, "active") && m.dirty_sync_count != cv->sync &&
	    m.dirty_sync_count >= 2 && now_s() - cv->t_dec >= CVM_LOOK_MIN_S)
		decide(cv, &m);
	return true;
}

static void *cvm_main(void *arg)
{
	struct converge_vm *cv = arg;
	sigset_t set;

	/* The engine's thread takes SIGINT, SIGTERM and SIGHUP, not this one. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!atomic_load(&cv->stop) && tick(cv)) {
		struct pollfd pfd = { .fd = cv->wake[0], .events = POLLIN };

		poll(&pfd, 1, CVM_TICK_MS);
	}
	/* The migration ended (or cvm_stop() came): the source runs free at once. */
	undo(cv);
	return NULL;
}

static enum cvm_accel accel_of(struct qmp *q)
{
	char a[16];

	if (qmp_accel(q, a, sizeof(a))) {
		lmig_err_clear();
		return CVM_ACCEL_UNKNOWN;
	}
	return !strcmp(a, "kvm") ? CVM_ACCEL_KVM : !strcmp(a, "tcg") ? CVM_ACCEL_TCG :
	       CVM_ACCEL_UNKNOWN;
}

/*
 * LMIG_CVM_PERIOD (auto, short or long; unset: auto) picks the period
 * rule, so that the rules can be compared on the same guest
 * (bench/converge_kvm.sh).
 */
static int period_rule(enum tpol_period_rule *rule)
{
	const char *e = getenv("LMIG_CVM_PERIOD");

	*rule = TPOL_PERIOD_AUTO;
	if (!e || !*e || !strcmp(e, "auto"))
		return 0;
	if (!strcmp(e, "short"))
		*rule = TPOL_PERIOD_SHORT;
	else if (!strcmp(e, "long"))
		*rule = TPOL_PERIOD_LONG;
	else
		return lmig_err("LMIG_CVM_PERIOD=%s: not auto, short or long", e);
	return 0;
}

/* Everything cvm_start() opened, closed again (the thread is not running). */
static void release(struct converge_vm *cv)
{
	guard_stop(&cv->guard);
	probes_close(&cv->pr);
	if (cv->q.fd >= 0)
		qmp_close(&cv->q);
	if (cv->wake[0] >= 0) {
		close(cv->wake[0]);
		close(cv->wake[1]);
	}
	free(cv);
}

int cvm_start(struct converge_vm **out, const struct cvm_conf *c, struct cvm_stats *st)
{
	struct converge_vm *cv = calloc(1, sizeof(*cv));
	struct qmp_params p;

	*out = NULL;
	*st = (struct cvm_stats){ .on = true, .throttle = c->throttle, .restored = true,
				  .downtime_limit_ms = 300 };
	if (!cv)
		return lmig_err("out of memory");
	cv->conf = *c;
	cv->st = st;
	cv->q.fd = -1;
	cv->wake[0] = cv->wake[1] = -1;
	cv->guard = (struct guard){ .fd = -1 };
	cv->t0 = now_s();
	if (period_rule(&cv->rule))
		goto fail;
	if (qmp_open(&cv->q, c->qmp_path, CVM_QMP_TIMEOUT_MS))
		goto fail;
	st->qemu_pid = cv->q.pid;
	if (c->vm_pid && c->vm_pid != cv->q.pid) {
		lmig_err("--vm-pid %d: QMP %s belongs to process %d", (int)c->vm_pid, c->qmp_path,
			 (int)cv->q.pid);
		goto fail;
	}
	st->accel = accel_of(&cv->q);
	if (find_vcpus(cv))
		goto fail;
	if (!qmp_params(&cv->q, &p) && p.downtime_limit_ms > 0)
		st->downtime_limit_ms = p.downtime_limit_ms;
	lmig_err_clear();
	cv->tc = (struct tpol_conf){ .enabled = c->throttle,
				     .downtime_ms = (unsigned int)st->downtime_limit_ms,
				     .max_pct = c->max_pct ? c->max_pct : CVM_MAX_PCT_DEFAULT,
				     .soft_floor = !c->max_pct,
				     .min_cpus = cvm_least_cpus(st->downtime_limit_ms),
				     .hold_converging = true, .lift_look_s = TPOL_LONG_LOOK_S,
				     .lift_futile_floor = true, .tighten_before_lift = true };
	st->least_cpus = cv->tc.min_cpus;
	if (c->throttle) {
		/* Limits a killed lmig left (its guard may have undone them already). */
		st->stale_restored = throttle_restore_files(true, NULL, NULL);
		lmig_err_clear();
		/* Which vCPUs write, under KVM: optional. */
		probes_open(&cv->pr, st->qemu_pid, 0);
		st->probes = cv->pr.status;
		/* Forked while lmig has one thread and is small. */
		if (guard_start(&cv->guard, st->qemu_pid, -1, NULL, NULL))
			goto fail;
	}
	if (pipe2(cv->wake, O_CLOEXEC)) {
		lmig_err_errno(errno, "pipe");
		goto fail;
	}
	if (pthread_create(&cv->th, NULL, cvm_main, cv)) {
		lmig_err("cannot start the convergence thread");
		goto fail;
	}
	cv->started = true;
	*out = cv;
	return 0;
fail:
	release(cv);
	st->on = false;
	return -1;
}

void cvm_stop(struct converge_vm *cv)
{
	if (!cv)
		return;
	atomic_store(&cv->stop, true);
	if (write(cv->wake[1], "x", 1) != 1)
		(void)0;	/* the thread wakes at its next tick anyway */
	pthread_join(cv->th, NULL);
	/* The thread undid the limit; if that failed, once more from here. */
	undo(cv);
	/* Only once nothing is left to undo may the guard go: it would undo it. */
	if (cv->st->restored) {
		guard_stop(&cv->guard);
	} else if (cv->guard.fd >= 0) {
		/* Its pipe closed: the guard tries once more, on its own. */
		close(cv->guard.fd);
		cv->guard = (struct guard){ .fd = -1 };
	}
	release(cv);
}
