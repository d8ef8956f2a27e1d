// SPDX-License-Identifier: GPL-2.0-only
/*
 * The words of the convergence controller of a QEMU guest (--qmp,
 * live/converge_vm.h) in the report of lmig pipe / proxy send: the
 * "throttle" object of --json, and the proxy's text lines.
 */
#include <stdio.h>
#include <string.h>

#include "cli/report.h"
#include "cli/report_throttle.h"
#include "lib/json.h"
#include "live/converge_vm.h"

static const char *accel_word(enum cvm_accel a)
{
	return a == CVM_ACCEL_KVM ? "kvm" : a == CVM_ACCEL_TCG ? "tcg" : "unknown";
}

/* Short codes, for tools. */
static const char *whom_code(enum cvm_whom w)
{
	switch (w) {
	case CVM_WHOM_NONE: return "none";
	case CVM_WHOM_ALL_TCG: return "all-tcg";
	case CVM_WHOM_ALL_NO_EXITS: return "all-no-kvm-exits";
	case CVM_WHOM_ALL_NO_PROBES: return "all-no-probes";
	case CVM_WHOM_ALL_FEW: return "all-few-faults";
	case CVM_WHOM_ALL_MOST: return "all-most-write";
	case CVM_WHOM_WRITERS: return "writers";
	}
	return "?";
}

/* Why those threads, in words. */
static const char *whom_words(enum cvm_whom w)
{
	switch (w) {
	case CVM_WHOM_NONE: return "none limited";
	case CVM_WHOM_ALL_TCG:
		return "all vCPU threads: under TCG nothing tells which vCPU writes";
	case CVM_WHOM_ALL_NO_EXITS:
		return "all vCPU threads: no KVM exit seen on them, so no per-vCPU write signal";
	case CVM_WHOM_ALL_NO_PROBES:
		return "all vCPU threads: without the eBPF probes nothing tells which vCPU writes";
	case CVM_WHOM_ALL_FEW:
		return "all vCPU threads: too few guest write faults to tell which vCPU writes";
	case CVM_WHOM_ALL_MOST:
		return "all vCPU threads: most of them took the guest write faults";
	case CVM_WHOM_WRITERS:
		return "the vCPU threads that took most of the guest write faults";
	}
	return "?";
}

static const char *end_code(enum cvm_end e)
{
	switch (e) {
	case CVM_END_STOPPED: return "stopped";
	case CVM_END_COMPLETED: return "completed";
	case CVM_END_FAILED: return "failed";
	case CVM_END_CANCELLED: return "cancelled";
	case CVM_END_QMP_LOST: return "qmp-lost";
	}
	return "?";
}

static const char *why_code(enum tpol_why w)
{
	switch (w) {
	case TPOL_DISABLED: return "off";
	case TPOL_GIVEN_UP: return "given-up";
	case TPOL_CONVERGING: return "converging";
	case TPOL_WATCHING: return "watching";
	case TPOL_NOT_CONVERGING: return "start";
	case TPOL_LONG_LOOK: return "start-long-pass";
	case TPOL_INEFFECTIVE: return "lifted-ineffective";
	case TPOL_FLOOR_FUTILE: return "lifted-floor-futile";
	case TPOL_TIGHTEN: return "tighten";
	case TPOL_RAISE: return "raise";
	case TPOL_HOLD: return "hold";
	}
	return "?";
}

/* What went wrong with the limit, in words ("" for nothing). */
static void note_words(const struct cvm_stats *s, char *buf, size_t len)
{
	switch (s->note) {
	case CVM_NOTE_NONE:
		buf[0] = 0;
		break;
	case CVM_NOTE_CANNOT:
		snprintf(buf, len, "cannot limit the vCPU threads%s: %s",
			 s->retry ? " (will try again)" : "", s->err);
		break;
	case CVM_NOTE_WHOLE_PROCESS:
		snprintf(buf, len, "not limited: this host's cgroups could only hold QEMU whole, which would slow its migration thread too");
		break;
	case CVM_NOTE_INEFFECTIVE:
		snprintf(buf, len, "lifted: taking CPU from the vCPU threads did not lower the dirty rate");
		break;
	case CVM_NOTE_FLOOR_FUTILE:
		snprintf(buf, len, "lifted: the limit stayed at its floor for %d passes and the predicted downtime did not fall by a quarter",
			 TPOL_FLOOR_PASSES);
		break;
	case CVM_NOTE_SET_FAILED:
		snprintf(buf, len, "cannot change the limit, put back: %s", s->err);
		break;
	}
}

void cvm_report_json(struct json_obj *j, const struct cvm_stats *s)
{
	char w[512];

	json_obj_begin(j, "throttle");
	json_str(j, "mode", s->throttle ? "auto" : "off");
	json_u64(j, "qemu_pid", (uint64_t)s->qemu_pid);
	json_str(j, "accel", accel_word(s->accel));
	json_int_array(j, "vcpu_threads", s->vcpus, s->nvcpus);
	json_i64(j, "downtime_limit_ms", s->downtime_limit_ms);
	/* The least limit the downtime limit allows (1 ms every quarter of it). */
	json_dbl(j, "least_limit_pct", s->least_cpus * 100, 2);
	json_bool(j, "throttled", s->throttled);
	json_int_array(j, "limited", s->limited, s->throttled ? s->nlimited : 0);
	json_str(j, "whom", whom_code(s->throttled ? s->whom : CVM_WHOM_NONE));
	json_str(j, "whom_why", whom_words(s->throttled ? s->whom : CVM_WHOM_NONE));
	if (s->throttled) {
		json_str(j, "cgroup", s->cg);
		json_u64(j, "cgroup_version", s->v2 ? 2 : 1);
		json_str(j, "mechanism", throttle_kind_words(s->kind));
		json_dbl(j, "min_limit_pct", s->min_cpus * 100, 1);
		/* What the tightest limit may add to QEMU's stop of the vCPUs. */
		if (s->min_cpus > 0)
			json_dbl(j, "stop_wait_ms", cvm_stop_wait_s(s->min_cpus) * 1000, 0);
		json_dbl(j, "limited_from_s", s->first_s, 2);
		if (s->restored)
			json_dbl(j, "restored_at_s", s->restored_s, 2);
	}
	json_bool(j, "restored", s->restored);
	note_words(s, w, sizeof(w));
	json_str(j, "note", w[0] ? w : NULL);
	json_str(j, "error", s->err[0] && !s->restored ? s->err : NULL);
	json_str(j, "end", end_code(s->end));
	json_str(j, "qemu_status", s->qemu_status);
	if (s->end == CVM_END_QMP_LOST)
		json_str(j, "qmp_error", s->err);
	if (s->stale_restored > 0)
		json_i64(j, "stale_restored", s->stale_restored);
	report_probes_words(&s->probes, w, sizeof(w));
	json_str(j, "probes", w[0] ? w : NULL);
	json_u64(j, "decisions", s->syncs);
	json_u64(j, "steps_lost", s->steps_lost);
	json_array_begin(j, "steps");
	for (unsigned int i = 0; i < s->nsteps; i++) {
		const struct cvm_step *t = &s->steps[i];

		json_elem_begin(j);
		json_dbl(j, "t_s", t->t_s, 2);
		json_u64(j, "sync", t->sync);
		json_dbl(j, "dirty_mbps", t->dirty_mbps, 1);
		json_dbl(j, "link_mbps", t->link_mbps, 1);
		json_dbl(j, "pred_ms", t->pred_ms, 0);
		json_dbl(j, "cpu_used_pct", t->cpu_used * 100, 1);
		json_dbl(j, "limit_pct", t->cpus * 100, 1);
		json_str(j, "why", why_code(t->why));
		json_elem_end(j);
	}
	json_array_end(j);
	json_obj_end(j);
}

void cvm_report_text(int fd, const struct cvm_stats *s)
{
	char note[512];

	note_words(s, note, sizeof(note));
	if (!s->throttle) {
		dprintf(fd, "  throttle: off (%llu of QEMU's passes looked at)\n",
			(unsigned long long)s->syncs);
	} else if (!s->throttled && !note[0]) {
		dprintf(fd, "  throttle: not needed (%llu of QEMU's passes looked at)\n",
			(unsigned long long)s->syncs);
		return;
	} else if (!s->throttled) {
		dprintf(fd, "  throttle: none applied: %s\n", note);
		return;
	} else {
		dprintf(fd, "  throttle: %u of %u vCPU thread%s limited (%s; %s), down to %.1f%% of a CPU, from %.1f s%s\n",
			s->nlimited, s->nvcpus, s->nvcpus == 1 ? "" : "s", whom_words(s->whom),
			throttle_kind_words(s->kind), s->min_cpus * 100, s->first_s,
			s->restored ? "" : "; NOT RESTORED");
		if (s->restored)
			dprintf(fd, "  throttle: restored at %.1f s (QEMU %s)\n", s->restored_s,
				s->qemu_status);
	}
	if (note[0])
		dprintf(fd, "  throttle: %s\n", note);
}

void cvm_report_unrestored(const char *role, const struct cvm_stats *s)
{
	if (s->on && !s->restored)
		fprintf(stderr, "lmig %s: the CPU limit of QEMU %d's vCPU threads is still set (%s); 'lmig throttle --restore' undoes it\n",
			role, (int)s->qemu_pid, s->err);
}
