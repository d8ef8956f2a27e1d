// SPDX-License-Identifier: GPL-2.0-only
/*
 * The eBPF probes of bpf/probes.bpf.c: load them, attach what this kernel
 * offers, pin the maps, and take it all down again.  Reading the maps is
 * probes_sample.c's.
 *
 * A failure is told twice: in words in p->why (for the commands that
 * print it) and in numbers in p->status (for reports, which word it
 * themselves).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/clock.h"
#include "host/probes_priv.h"
#include "host/procfs.h"

void probes_set_why(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	for (char *c = buf; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
}

#ifndef LMIG_HAVE_PROBES

int probes_open(struct probes *p, pid_t pid, unsigned int flags)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->flags = flags;
	p->status = (struct probes_status){ .tried = true, .off = PROBES_OFF_NOT_BUILT };
	snprintf(p->status.detail, sizeof(p->status.detail), "%s", LMIG_PROBES_MISSING);
	probes_set_why(p->why, sizeof(p->why), "lmig was built without eBPF probes (%s)",
		       LMIG_PROBES_MISSING);
	return -1;
}

void probes_close(struct probes *p)
{
	p->ok = false;
}

int probes_unpin(char *why, size_t len)
{
	probes_set_why(why, len, "lmig was built without eBPF probes (%s)", LMIG_PROBES_MISSING);
	return -1;
}

#else

#define BPF_FS		"/sys/fs/bpf"
#define LOCK_PATH	"/run/lmig-probes.lock"
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC	0xcafe4a11
#endif

static const char *const map_names[] = { "lmig_procs", "lmig_threads", "lmig_kvm_exits" };

/* The initial pid namespace's inode number (PROC_PID_INIT_INO). */
#define INIT_PIDNS_INO	0xEFFFFFFCU

/*
 * For lmig top, each per-CPU map holds at most this many bytes of values
 * (entries x CPUs x value size): PROBES_MAX_PROCS processes would take
 * 128 MiB on 256 CPUs.  A watched process makes one process entry and a
 * few dozen exit reasons; the LRU maps keep up to 4 free entries per CPU
 * aside, hence the margin per CPU.
 */
#define PERCPU_BUDGET	(16u << 20)
#define FILTER_PROCS	16
#define FILTER_REASONS	256
#define LRU_PER_CPU	4

/* libbpf's own messages: kept, not printed; the last warning explains a failure. */
static char libbpf_last[200];

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[sizeof(libbpf_last)];

	if (getenv("LMIG_BPF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = 0;
	if (line[0])
		memcpy(libbpf_last, line, sizeof(line));
	return 0;
}

/*
 * Give each existing thread of pid its current run delay and running time
 * (/proc/PID/task/TID/schedstat: the same two kernel counters the probe
 * reads), so that its first switch-out already counts.
 */
static void seed_threads(int fd, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		unsigned long long run, delay;
		struct probes_thread t = { .tgid = pid };
		uint32_t tid = strtoul(de->d_name, NULL, 10);
		char sp[96];
		FILE *f;

		if (!tid)
			continue;
		snprintf(sp, sizeof(sp), "/proc/%d/task/%u/schedstat", (int)pid, tid);
		f = fopen(sp, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu %llu", &run, &delay) == 2 && run) {
			t.last_run = run;
			t.last_delay = delay;
			bpf_map_update_elem(fd, &tid, &t, BPF_NOEXIST);
		}
		fclose(f);
	}
	closedir(d);
}

static bool tracefs_has(const char *event)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/id", event);
	if (!access(path, R_OK))
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s/id", event);
	return !access(path, R_OK);
}

/* Tell what is missing: bit in p->status, words in p->note. */
static void add_note(struct probes *p, enum probes_note bit, const char *s)
{
	size_t n = strlen(p->note);

	p->status.notes |= bit;
	snprintf(p->note + n, sizeof(p->note) - n, "%s%s", n ? "; " : "", s);
}

static bool is_bpffs(const char *path)
{
	struct statfs sf;

	return !statfs(path, &sf) && (unsigned long)sf.f_type == BPF_FS_MAGIC;
}

static bool pinned_links_present(void)
{
	DIR *d = opendir(PROBES_PIN_DIR);
	struct dirent *de;
	bool any = false;

	if (!d)
		return false;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, "link_", 5))
			any = true;
	closedir(d);
	return any;
}

static void unpin_all(void)
{
	DIR *d = opendir(PROBES_PIN_DIR);
	struct dirent *de;
	char path[300];

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", PROBES_PIN_DIR, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(PROBES_PIN_DIR);
}

/*
 * Pin the maps under PROBES_PIN_DIR.  One lmig at a time holds the
 * directory, and holds LOCK_PATH locked while it does; pins found without
 * a holder are left over from a killed lmig and replaced, unless they are
 * programs kept with PROBES_KEEP.
 */
static void pin_maps(struct probes *p)
{
	struct probes_priv *pv = p->priv;
	char path[300];

	if (!is_bpffs(BPF_FS) && mount("bpf", BPF_FS, "bpf", 0, "mode=0700")) {
		char s[160];

		p->status.pin_err = errno;
		snprintf(s, sizeof(s), "maps not pinned: cannot mount bpffs on %s: %s", BPF_FS,
			 strerror(errno));
		add_note(p, PROBES_NOTE_PIN_MOUNT, s);
		return;
	}
	pv->lockfd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (pv->lockfd < 0 || flock(pv->lockfd, LOCK_EX | LOCK_NB)) {
		add_note(p, PROBES_NOTE_PIN_HELD, "maps not pinned: another lmig holds " PROBES_PIN_DIR);
		goto fail;
	}
	if (pinned_links_present()) {
		add_note(p, PROBES_NOTE_PIN_KEPT, "maps not pinned: " PROBES_PIN_DIR " holds probes kept with --pin "
			    "('lmig stat --unpin' removes them)");
		goto fail;
	}
	unpin_all();
	if (mkdir(PROBES_PIN_DIR, 0700) && errno != EEXIST) {
		add_note(p, PROBES_NOTE_PIN_MKDIR, "maps not pinned: cannot create " PROBES_PIN_DIR);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(pv->skel->obj, map_names[i]);

		snprintf(path, sizeof(path), "%s/%s", PROBES_PIN_DIR, map_names[i]);
		if (!m || bpf_map__pin(m, path)) {
			unpin_all();
			add_note(p, PROBES_NOTE_PIN_FAILED, "maps not pinned: bpf_map__pin failed");
			goto fail;
		}
	}
	p->pinned = true;
	return;
fail:
	if (pv->lockfd >= 0)
		close(pv->lockfd);
	pv->lockfd = -1;
}

/* Record why probes_open() fails, in numbers; the words go to p->why. */
static int off(struct probes *p, enum probes_off why, int err)
{
	p->status.off = why;
	p->status.err = err;
	return -1;
}

/*
 * Run lmig_setup in this process (BPF_PROG_TEST_RUN runs it in the
 * caller's context): it finds this process's pid namespace for the
 * probes, and whether kvm:kvm_exit has an exit_reason field.  0, or -1
 * with the reason in p->why.
 */
static int run_setup(struct probes *p, const struct stat *ns)
{
	struct probes_bpf *s = p->priv->skel;
	LIBBPF_OPTS(bpf_test_run_opts, o);
	int err = bpf_prog_test_run_opts(bpf_program__fd(s->progs.lmig_setup), &o);
	unsigned int tid = (unsigned int)syscall(SYS_gettid);

	if (err) {
		probes_set_why(p->why, sizeof(p->why), "cannot run the eBPF setup program: %s",
			       strerror(-err));
		return off(p, PROBES_OFF_SETUP, -err);
	}
	/* The probes would count other pids than the ones lmig knows. */
	if (s->bss->ns_inum != (uint32_t)ns->st_ino || s->bss->self_tid != tid) {
		probes_set_why(p->why, sizeof(p->why),
			       "the eBPF probes do not see lmig's pid namespace (inode %u, tid %u; "
			       "the kernel says %u, %u)", (unsigned int)ns->st_ino, tid,
			       s->bss->ns_inum, s->bss->self_tid);
		p->status.ns[0] = (unsigned int)ns->st_ino;
		p->status.ns[1] = tid;
		p->status.ns[2] = s->bss->ns_inum;
		p->status.ns[3] = s->bss->self_tid;
		return off(p, PROBES_OFF_PIDNS, 0);
	}
	return 0;
}

/* /proc/self is this process: /proc was mounted in its pid namespace. */
static bool proc_is_own(void)
{
	char link[32];
	ssize_t n = readlink("/proc/self", link, sizeof(link) - 1);

	if (n <= 0)
		return false;
	link[n] = 0;
	return strtol(link, NULL, 10) == (long)getpid();
}

static int attach(struct probes *p, struct bpf_program *prog, const char *name, bool must)
{
	struct probes_priv *pv = p->priv;
	struct bpf_link *l = bpf_program__attach(prog);

	if (!l) {
		if (must) {
			off(p, PROBES_OFF_ATTACH, errno);
			probes_set_why(p->why, sizeof(p->why), "cannot attach the %s probe: %s", name,
				       strerror(p->status.err));
			snprintf(p->status.detail, sizeof(p->status.detail), "%s", name);
		}
		return -1;
	}
	pv->link_names[pv->nlinks] = name;
	pv->links[pv->nlinks++] = l;
	return 0;
}

/*
 * The first checks, before anything is loaded: the process (a pidfd, so
 * that a reused pid is not mistaken for it), root, memory.  0, or -1 with
 * nothing left to close.
 */
static int open_checks(struct probes *p, pid_t pid, unsigned int flags)
{
	struct probes_priv *pv;
	int pidfd = -1;

	if (!(flags & PROBES_ALL)) {
		pidfd = pid > 0 ? pidfd_of(pid) : -1;
		if (pidfd < 0) {
			probes_set_why(p->why, sizeof(p->why), "no process %d", (int)pid);
			p->status.pid = pid;
			return off(p, PROBES_OFF_NO_PROCESS, 0);
		}
	}
	if (geteuid() != 0) {
		probes_set_why(p->why, sizeof(p->why), "eBPF probes need root (CAP_BPF and CAP_PERFMON)");
		off(p, PROBES_OFF_NOT_ROOT, 0);
		goto fail;
	}
	pv = calloc(1, sizeof(*pv));
	if (!pv) {
		probes_set_why(p->why, sizeof(p->why), "out of memory");
		off(p, PROBES_OFF_NO_MEMORY, 0);
		goto fail;
	}
	pv->lockfd = -1;
	pv->pidfd = pidfd;
	p->priv = pv;
	return 0;
fail:
	if (pidfd >= 0)
		close(pidfd);
	return -1;
}

/* Size the maps for one process or for all (PERCPU_BUDGET).  0, or -1 with why. */
static int size_maps(struct probes *p)
{
	struct probes_priv *pv = p->priv;
	struct probes_bpf *s = pv->skel;

	pv->ncpus = libbpf_num_possible_cpus();
	if (pv->ncpus <= 0) {
		probes_set_why(p->why, sizeof(p->why), "cannot count the possible CPUs: %s",
			       strerror(-pv->ncpus));
		return off(p, PROBES_OFF_CPUS, -pv->ncpus);
	}
	pv->pcpu = calloc(pv->ncpus, (sizeof(struct probes_proc) + 7) & ~(size_t)7);
	if (!pv->pcpu) {
		probes_set_why(p->why, sizeof(p->why), "out of memory");
		return off(p, PROBES_OFF_NO_MEMORY, 0);
	}
	if (s->rodata->filter) {
		bpf_map__set_max_entries(s->maps.lmig_procs, FILTER_PROCS + LRU_PER_CPU * pv->ncpus);
		bpf_map__set_max_entries(s->maps.lmig_kvm_exits,
					 FILTER_REASONS + LRU_PER_CPU * pv->ncpus);
	} else {
		size_t n = PERCPU_BUDGET / pv->ncpus / sizeof(struct probes_proc);

		bpf_map__set_max_entries(s->maps.lmig_procs, n < PROBES_MAX_PROCS ? n : PROBES_MAX_PROCS);
		n = PERCPU_BUDGET / pv->ncpus / sizeof(__u64);
		bpf_map__set_max_entries(s->maps.lmig_kvm_exits,
					 n < PROBES_MAX_REASONS ? n : PROBES_MAX_REASONS);
	}
	return 0;
}

/*
 * Attach the probes that must work (faults, scheduler), then the KVM ones
 * this kernel offers, noting what is missing.  0, or -1 with why.
 */
static int attach_all(struct probes *p)
{
	struct probes_bpf *s = p->priv->skel;

	if (attach(p, s->progs.lmig_fault, "page_fault_user", true) ||
	    attach(p, s->progs.lmig_switch, "sched_switch", true))
		return -1;
	p->kvm = !attach(p, s->progs.lmig_kvm_exit, "kvm_exit", false) &&
		 !attach(p, s->progs.lmig_kvm_fault, "kvm_page_fault", false);
	if (!p->kvm) {
		add_note(p, PROBES_NOTE_NO_KVM,
			 "no KVM tracepoints (kvm not loaded): guest faults and exits not counted");
		p->exit_reasons = false;
	} else if (!p->exit_reasons) {
		add_note(p, PROBES_NOTE_NO_TRACEFS, "tracefs not mounted: no KVM exit reasons");
	} else if (!s->bss->have_exit_reason) {
		/* kvm_exit of another architecture (arm64: esr_ec, no exit_reason). */
		add_note(p, PROBES_NOTE_NO_REASON_FIELD,
			 "kvm:kvm_exit has no exit_reason field on this kernel: no KVM exit reasons");
		p->exit_reasons = false;
	} else if (attach(p, s->progs.lmig_kvm_reason, "kvm_exit reasons", false)) {
		add_note(p, PROBES_NOTE_NO_REASON_ATTACH,
			 "KVM exit reasons not counted (tracepoint kvm:kvm_exit did not attach)");
		p->exit_reasons = false;
	}
	return 0;
}

int probes_open(struct probes *p, pid_t pid, unsigned int flags)
{
	struct probes_priv *pv;
	struct probes_bpf *s;
	struct stat ns;
	int err;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->flags = flags;
	p->status.tried = true;
	if (open_checks(p, pid, flags))
		return -1;
	pv = p->priv;
	libbpf_set_print(libbpf_quiet);
	libbpf_last[0] = 0;
	s = pv->skel = probes_bpf__open();
	if (!s) {
		off(p, PROBES_OFF_OPEN, errno);
		probes_set_why(p->why, sizeof(p->why), "cannot open the eBPF probes: %s",
			       strerror(p->status.err));
		goto fail;
	}
	/* Threads and names come from /proc: it must show lmig's namespace. */
	if (!proc_is_own()) {
		if (!(flags & PROBES_ALL)) {
			probes_set_why(p->why, sizeof(p->why), "/proc belongs to another pid namespace than "
				       "lmig's (mount one of its own, e.g. unshare --pid --fork --mount-proc)");
			off(p, PROBES_OFF_FOREIGN_PROC, 0);
			goto fail;
		}
		add_note(p, PROBES_NOTE_FOREIGN_PROC,
			 "/proc belongs to another pid namespace: process names may be wrong");
	}
	/* The pids lmig knows are numbers in its own pid namespace. */
	if (stat("/proc/self/ns/pid", &ns)) {
		off(p, PROBES_OFF_STAT_NS, errno);
		probes_set_why(p->why, sizeof(p->why), "cannot stat /proc/self/ns/pid: %s",
			       strerror(p->status.err));
		goto fail;
	}
	s->rodata->filter = !(flags & PROBES_ALL);
	s->rodata->target_tgid = s->rodata->filter ? pid : 0;
	s->rodata->pidns_walk = ns.st_ino != INIT_PIDNS_INO;
	if (size_maps(p))
		goto fail;
	/* The exit-reason histogram reads a trace record: it needs tracefs. */
	p->exit_reasons = tracefs_has("kvm/kvm_exit");
	bpf_program__set_autoload(s->progs.lmig_kvm_reason, p->exit_reasons);
	err = probes_bpf__load(s);
	if (err) {
		probes_set_why(p->why, sizeof(p->why), "cannot load the eBPF probes: %s%s%s",
			       strerror(-err), libbpf_last[0] ? ": " : "", libbpf_last);
		snprintf(p->status.detail, sizeof(p->status.detail), "%s", libbpf_last);
		off(p, PROBES_OFF_LOAD, -err);
		goto fail;
	}
	if (run_setup(p, &ns))
		goto fail;
	if (s->rodata->filter)
		seed_threads(bpf_map__fd(s->maps.lmig_threads), pid);
	if (attach_all(p))
		goto fail;
	if (flags & PROBES_PIN)
		pin_maps(p);
	/* The process may have exited while the probes loaded. */
	if (!(flags & PROBES_ALL) && !pidfd_alive(pv->pidfd)) {
		probes_set_why(p->why, sizeof(p->why), "process %d exited", (int)pid);
		p->status.pid = pid;
		off(p, PROBES_OFF_EXITED, 0);
		goto fail;
	}
	pv->t_last = now_s();
	p->ok = true;
	p->status.on = true;
	return 0;
fail:
	probes_close(p);
	return -1;
}

void probes_close(struct probes *p)
{
	struct probes_priv *pv = p->priv;

	if (!pv)
		return;
	if (p->pinned && (p->flags & PROBES_KEEP)) {
		char path[300];

		for (int i = 0; i < pv->nlinks; i++) {
			snprintf(path, sizeof(path), "%s/link_%s", PROBES_PIN_DIR,
				 pv->link_names[i]);
			for (char *c = path + strlen(PROBES_PIN_DIR) + 1; *c; c++)
				if (*c == ' ')
					*c = '_';
			bpf_link__pin(pv->links[i], path);
		}
	} else if (p->pinned) {
		unpin_all();
	}
	for (int i = 0; i < pv->nlinks; i++)
		bpf_link__destroy(pv->links[i]);
	probes_bpf__destroy(pv->skel);
	free(pv->pcpu);
	if (pv->lockfd >= 0)
		close(pv->lockfd);
	if (pv->pidfd >= 0)
		close(pv->pidfd);
	free(pv->thr);
	free(pv->proc);
	free(pv->rs);
	free(pv->out_thr);
	free(pv->out_proc);
	free(pv);
	p->priv = NULL;
	p->ok = false;
	p->pinned = false;
}

int probes_unpin(char *why, size_t len)
{
	int fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB)) {
		probes_set_why(why, len, "a running lmig holds %s", PROBES_PIN_DIR);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	unpin_all();
	close(fd);
	return 0;
}

#endif
