// SPDX-License-Identifier: GPL-2.0-only
/*
 * The words of the notes a live send reports (report.h): whether the eBPF
 * probes ran and why not (struct probes_status), and what --tracker auto
 * chose (struct track_choice).  They are the words host/probes.c puts in
 * pr.why and pr.note and live/track.c in tracker_open()'s why, cut at the
 * same lengths, so the report reads as it always has.
 */
#include <stdio.h>
#include <string.h>

#include "cli/report.h"

/* As the probes' one-line reasons: line breaks become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

static void probes_off_words(const struct probes_status *ps, char *w, size_t len)
{
	const char *e = strerror(ps->err);

	switch (ps->off) {
	case PROBES_OFF_NOT_BUILT:
		snprintf(w, len, "lmig was built without eBPF probes (%s)", ps->detail);
		break;
	case PROBES_OFF_NO_PROCESS:
		snprintf(w, len, "no process %d", (int)ps->pid);
		break;
	case PROBES_OFF_NOT_ROOT:
		snprintf(w, len, "eBPF probes need root (CAP_BPF and CAP_PERFMON)");
		break;
	case PROBES_OFF_NO_MEMORY:
		snprintf(w, len, "out of memory");
		break;
	case PROBES_OFF_OPEN:
		snprintf(w, len, "cannot open the eBPF probes: %s", e);
		break;
	case PROBES_OFF_FOREIGN_PROC:
		snprintf(w, len, "/proc belongs to another pid namespace than lmig's (mount one of "
			 "its own, e.g. unshare --pid --fork --mount-proc)");
		break;
	case PROBES_OFF_STAT_NS:
		snprintf(w, len, "cannot stat /proc/self/ns/pid: %s", e);
		break;
	case PROBES_OFF_CPUS:
		snprintf(w, len, "cannot count the possible CPUs: %s", e);
		break;
	case PROBES_OFF_LOAD:
		snprintf(w, len, "cannot load the eBPF probes: %s%s%s", e, ps->detail[0] ? ": " : "",
			 ps->detail);
		break;
	case PROBES_OFF_SETUP:
		snprintf(w, len, "cannot run the eBPF setup program: %s", e);
		break;
	case PROBES_OFF_PIDNS:
		snprintf(w, len, "the eBPF probes do not see lmig's pid namespace (inode %u, tid %u; "
			 "the kernel says %u, %u)", ps->ns[0], ps->ns[1], ps->ns[2], ps->ns[3]);
		break;
	case PROBES_OFF_ATTACH:
		snprintf(w, len, "cannot attach the %s probe: %s", ps->detail, e);
		break;
	case PROBES_OFF_EXITED:
		snprintf(w, len, "process %d exited", (int)ps->pid);
		break;
	case PROBES_OFF_NONE:
		w[0] = 0;
		break;
	}
	one_line(w);
}

static void add_note(char *w, size_t len, const char *s)
{
	size_t n = strlen(w);

	snprintf(w + n, len - n, "%s%s", n ? "; " : "", s);
}

/* What works only in part, in the order probes_open() tells it. */
static void probes_notes_words(const struct probes_status *ps, char *w, size_t len)
{
	unsigned int b = ps->notes;

	w[0] = 0;
	if (b & PROBES_NOTE_FOREIGN_PROC)
		add_note(w, len, "/proc belongs to another pid namespace: process names may be wrong");
	if (b & PROBES_NOTE_NO_KVM)
		add_note(w, len, "no KVM tracepoints (kvm not loaded): guest faults and exits not counted");
	if (b & PROBES_NOTE_NO_TRACEFS)
		add_note(w, len, "tracefs not mounted: no KVM exit reasons");
	if (b & PROBES_NOTE_NO_REASON_FIELD)
		add_note(w, len, "kvm:kvm_exit has no exit_reason field on this kernel: no KVM exit reasons");
	if (b & PROBES_NOTE_NO_REASON_ATTACH)
		add_note(w, len, "KVM exit reasons not counted (tracepoint kvm:kvm_exit did not attach)");
	if (b & PROBES_NOTE_PIN_MOUNT) {
		char s[160];

		snprintf(s, sizeof(s), "maps not pinned: cannot mount bpffs on /sys/fs/bpf: %s",
			 strerror(ps->pin_err));
		add_note(w, len, s);
	}
	if (b & PROBES_NOTE_PIN_HELD)
		add_note(w, len, "maps not pinned: another lmig holds " PROBES_PIN_DIR);
	if (b & PROBES_NOTE_PIN_KEPT)
		add_note(w, len, "maps not pinned: " PROBES_PIN_DIR " holds probes kept with --pin "
			 "('lmig stat --unpin' removes them)");
	if (b & PROBES_NOTE_PIN_MKDIR)
		add_note(w, len, "maps not pinned: cannot create " PROBES_PIN_DIR);
	if (b & PROBES_NOTE_PIN_FAILED)
		add_note(w, len, "maps not pinned: bpf_map__pin failed");
}

void report_probes_words(const struct probes_status *ps, char *out, size_t len)
{
	char w[256];	/* as struct probes' why and note */

	out[0] = 0;
	if (!ps->tried)
		return;
	if (!ps->on) {
		probes_off_words(ps, w, sizeof(w));
		snprintf(out, len, "off: %.190s", w);
		return;
	}
	probes_notes_words(ps, w, sizeof(w));
	snprintf(out, len, "on%s%.180s", w[0] ? ": " : "", w);
}

void report_tracker_words(const struct track_choice *c, char *out, size_t len)
{
	size_t n = 0;

	out[0] = 0;
	for (unsigned int i = 0; i < c->nrefused && n < len; i++)
		n += snprintf(out + n, len - n, "%s%s: %s", n ? "; " : "", c->refused[i].tracker,
			      c->refused[i].why);
	for (unsigned int i = 0; i < c->ncal && n < len; i++)
		n += snprintf(out + n, len - n, "%s%s: %.1f ms a harvest%s", n ? "; " : "",
			      c->cal[i].tracker, c->cal[i].cost.harvest_s * 1000,
			      c->cal[i].cost.stops_writer ? " with the writer stopped" : "");
	/* track_pick.h: then soft-dirty is not picked by cost. */
	if (c->ncal && c->huge && n < len)
		n += snprintf(out + n, len - n, "%shuge folios", n ? "; " : "");
	if (c->picked && n < len)
		snprintf(out + n, len - n, "%sauto picked %s", n ? "; " : "", c->picked);
}
