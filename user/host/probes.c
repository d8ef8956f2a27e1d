// SPDX-License-Identifier: GPL-2.0-only
/*
 * The eBPF probes of bpf/probes.bpf.c: load, attach what this kernel
 * offers, and read the maps as differences between two samples.
 *
 * The maps hold only growing counters (bpf/probes_abi.h); a sample reads
 * them all, sorts them by key and subtracts the previous sample's.  An
 * entry the LRU map dropped and made again counts from zero.  The process
 * and exit-reason maps hold one value per CPU: a read adds them up.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "host/probes.h"
#include "host/procfs.h"

#if __has_include("probes_config.h")
#include "probes_config.h"
#else
#define LMIG_PROBES_MISSING "bpf/ was not built with lmig"
#endif

static void set_why(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_why(char *buf, size_t len, const char *fmt, ...)
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
	set_why(p->why, sizeof(p->why), "lmig was built without eBPF probes (%s)",
		LMIG_PROBES_MISSING);
	return -1;
}

int probes_sample(struct probes *p, struct probe_sample *out)
{
	set_why(p->why, sizeof(p->why), "probes are not open");
	return -1;
}

int probes_sample_all(struct probes *p, struct probe_proc **out, unsigned int *n,
		      double *interval_s)
{
	set_why(p->why, sizeof(p->why), "probes are not open");
	return -1;
}

int probes_exit_reasons(struct probes *p, struct probe_reason *out, unsigned int max)
{
	return 0;
}

void probes_close(struct probes *p)
{
	p->ok = false;
}

int probes_unpin(char *why, size_t len)
{
	set_why(why, len, "lmig was built without eBPF probes (%s)", LMIG_PROBES_MISSING);
	return -1;
}

#else

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>

#include "probes_abi.h"
#include "probes.skel.h"

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

struct tsnap {			/* one thread or process as last read */
	uint32_t key, tgid;
	struct probes_counts c;
	char comm[16];		/* processes only */
};

struct rsnap {
	struct probes_reason_key k;
	uint64_t n;
};

struct probes_priv {
	struct probes_bpf *skel;
	struct bpf_link *links[5];
	const char *link_names[5];
	int ncpus;			/* values per entry of the per-CPU maps */
	void *pcpu;			/* a buffer for one per-CPU value */
	int nlinks;
	int lockfd;
	int pidfd;			/* the process counted (not PROBES_ALL), or -1 */
	double t_last;
	struct tsnap *thr, *proc;	/* previous samples, sorted by key */
	size_t nthr, nproc;
	struct rsnap *rs;
	size_t nrs;
	struct probe_thread *out_thr;
	struct probe_proc *out_proc;
};

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

static int cmp_tsnap(const void *a, const void *b)
{
	uint32_t x = ((const struct tsnap *)a)->key, y = ((const struct tsnap *)b)->key;

	return x < y ? -1 : x > y;
}

static int cmp_rsnap(const void *a, const void *b)
{
	const struct probes_reason_key *x = &((const struct rsnap *)a)->k,
				       *y = &((const struct rsnap *)b)->k;

	if (x->tgid != y->tgid)
		return x->tgid < y->tgid ? -1 : 1;
	return x->reason < y->reason ? -1 : x->reason > y->reason;
}

static const struct tsnap *find_snap(const struct tsnap *v, size_t n, uint32_t key)
{
	struct tsnap k = { .key = key };

	return n ? bsearch(&k, v, n, sizeof(*v), cmp_tsnap) : NULL;
}

/* a - b per counter; an entry made again since (smaller) counts from zero. */
static void sub_counts(struct probe_counts *d, const struct probes_counts *a,
		       const struct probes_counts *b)
{
	const __u64 *x = (const __u64 *)a, *y = b ? (const __u64 *)b : NULL;
	uint64_t *o = (uint64_t *)d;

	_Static_assert(sizeof(struct probe_counts) == sizeof(struct probes_counts), "layout");
	for (size_t i = 0; i < sizeof(*a) / sizeof(__u64); i++)
		o[i] = !y || x[i] < y[i] ? x[i] : x[i] - y[i];
}

/* Add up the per-CPU copies of a process's entry in pv->pcpu into *pr. */
static void sum_proc(const struct probes_priv *pv, struct probes_proc *pr)
{
	size_t stride = (sizeof(*pr) + 7) & ~(size_t)7;

	memset(pr, 0, sizeof(*pr));
	for (int cpu = 0; cpu < pv->ncpus; cpu++) {
		const struct probes_proc *v = (const void *)((char *)pv->pcpu + cpu * stride);
		const __u64 *x = (const __u64 *)&v->c;
		__u64 *o = (__u64 *)&pr->c;

		for (size_t i = 0; i < sizeof(v->c) / sizeof(__u64); i++)
			o[i] += x[i];
		/* Only the CPU that made the entry has the name. */
		if (!pr->comm[0] && v->comm[0])
			memcpy(pr->comm, v->comm, sizeof(pr->comm));
	}
}

/* Read a whole map of thread or process counters, sorted by key. */
static int read_counts(const struct probes_priv *pv, int fd, bool threads, struct tsnap **out,
		       size_t *n)
{
	size_t cap = 256, len = 0;
	struct tsnap *v = malloc(cap * sizeof(*v));
	uint32_t key, next, *prev = NULL;

	if (!v)
		return -1;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct probes_thread t;
		struct probes_proc pr;
		int r;

		key = next;
		prev = &key;
		if (threads)
			r = bpf_map_lookup_elem(fd, &key, &t);
		else
			r = bpf_map_lookup_elem(fd, &key, pv->pcpu);
		if (r)
			continue;	/* dropped meanwhile */
		if (!threads)
			sum_proc(pv, &pr);
		if (len == cap) {
			struct tsnap *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv) {
				free(v);
				return -1;
			}
			v = nv;
			cap *= 2;
		}
		v[len].key = key;
		v[len].tgid = threads ? t.tgid : key;
		v[len].c = threads ? t.c : pr.c;
		memcpy(v[len].comm, threads ? "" : pr.comm, threads ? 1 : sizeof(pr.comm));
		v[len].comm[sizeof(v[len].comm) - 1] = 0;
		len++;
	}
	qsort(v, len, sizeof(*v), cmp_tsnap);
	*out = v;
	*n = len;
	return 0;
}

static void read_comm(pid_t pid, pid_t tid, char comm[16])
{
	char path[64];
	ssize_t r;
	int fd;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	comm[0] = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	r = read(fd, comm, 15);
	close(fd);
	comm[r > 0 ? r : 0] = 0;
	comm[strcspn(comm, "\n")] = 0;
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

static void add_note(struct probes *p, const char *s)
{
	size_t n = strlen(p->note);

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

		snprintf(s, sizeof(s), "maps not pinned: cannot mount bpffs on %s: %s", BPF_FS,
			 strerror(errno));
		add_note(p, s);
		return;
	}
	pv->lockfd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (pv->lockfd < 0 || flock(pv->lockfd, LOCK_EX | LOCK_NB)) {
		add_note(p, "maps not pinned: another lmig holds " PROBES_PIN_DIR);
		goto fail;
	}
	if (pinned_links_present()) {
		add_note(p, "maps not pinned: " PROBES_PIN_DIR " holds probes kept with --pin "
			    "('lmig stat --unpin' removes them)");
		goto fail;
	}
	unpin_all();
	if (mkdir(PROBES_PIN_DIR, 0700) && errno != EEXIST) {
		add_note(p, "maps not pinned: cannot create " PROBES_PIN_DIR);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(map_names) / sizeof(map_names[0]); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(pv->skel->obj, map_names[i]);

		snprintf(path, sizeof(path), "%s/%s", PROBES_PIN_DIR, map_names[i]);
		if (!m || bpf_map__pin(m, path)) {
			unpin_all();
			add_note(p, "maps not pinned: bpf_map__pin failed");
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

	if (err) {
		set_why(p->why, sizeof(p->why), "cannot run the eBPF setup program: %s",
			strerror(-err));
		return -1;
	}
	/* The probes would count other pids than the ones lmig knows. */
	if (s->bss->ns_inum != (uint32_t)ns->st_ino ||
	    s->bss->self_tid != (uint32_t)syscall(SYS_gettid)) {
		set_why(p->why, sizeof(p->why),
			"the eBPF probes do not see lmig's pid namespace (inode %u, tid %u; "
			"the kernel says %u, %u)", (unsigned int)ns->st_ino,
			(unsigned int)syscall(SYS_gettid), s->bss->ns_inum, s->bss->self_tid);
		return -1;
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
		if (must)
			set_why(p->why, sizeof(p->why), "cannot attach the %s probe: %s", name,
				strerror(errno));
		return -1;
	}
	pv->link_names[pv->nlinks] = name;
	pv->links[pv->nlinks++] = l;
	return 0;
}

int probes_open(struct probes *p, pid_t pid, unsigned int flags)
{
	struct probes_priv *pv;
	struct probes_bpf *s;
	int err, pidfd = -1;
	struct stat ns;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->flags = flags;
	if (!(flags & PROBES_ALL)) {
		/* Its liveness is asked of this pidfd: a reused pid is another process. */
		pidfd = pid > 0 ? pidfd_of(pid) : -1;
		if (pidfd < 0) {
			set_why(p->why, sizeof(p->why), "no process %d", (int)pid);
			return -1;
		}
	}
	if (geteuid() != 0) {
		set_why(p->why, sizeof(p->why), "eBPF probes need root (CAP_BPF and CAP_PERFMON)");
		if (pidfd >= 0)
			close(pidfd);
		return -1;
	}
	pv = calloc(1, sizeof(*pv));
	if (!pv) {
		set_why(p->why, sizeof(p->why), "out of memory");
		if (pidfd >= 0)
			close(pidfd);
		return -1;
	}
	pv->lockfd = -1;
	pv->pidfd = pidfd;
	p->priv = pv;
	libbpf_set_print(libbpf_quiet);
	libbpf_last[0] = 0;
	s = pv->skel = probes_bpf__open();
	if (!s) {
		set_why(p->why, sizeof(p->why), "cannot open the eBPF probes: %s", strerror(errno));
		goto fail;
	}
	/* Threads and names come from /proc: it must show lmig's namespace. */
	if (!proc_is_own()) {
		if (!(flags & PROBES_ALL)) {
			set_why(p->why, sizeof(p->why), "/proc belongs to another pid namespace than "
				"lmig's (mount one of its own, e.g. unshare --pid --fork --mount-proc)");
			goto fail;
		}
		add_note(p, "/proc belongs to another pid namespace: process names may be wrong");
	}
	/* The pids lmig knows are numbers in its own pid namespace. */
	if (stat("/proc/self/ns/pid", &ns)) {
		set_why(p->why, sizeof(p->why), "cannot stat /proc/self/ns/pid: %s",
			strerror(errno));
		goto fail;
	}
	s->rodata->filter = !(flags & PROBES_ALL);
	s->rodata->target_tgid = s->rodata->filter ? pid : 0;
	s->rodata->pidns_walk = ns.st_ino != INIT_PIDNS_INO;
	pv->ncpus = libbpf_num_possible_cpus();
	if (pv->ncpus <= 0) {
		set_why(p->why, sizeof(p->why), "cannot count the possible CPUs: %s",
			strerror(-pv->ncpus));
		goto fail;
	}
	pv->pcpu = calloc(pv->ncpus, (sizeof(struct probes_proc) + 7) & ~(size_t)7);
	if (!pv->pcpu) {
		set_why(p->why, sizeof(p->why), "out of memory");
		goto fail;
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
	/* The exit-reason histogram reads a trace record: it needs tracefs. */
	p->exit_reasons = tracefs_has("kvm/kvm_exit");
	bpf_program__set_autoload(s->progs.lmig_kvm_reason, p->exit_reasons);
	err = probes_bpf__load(s);
	if (err) {
		set_why(p->why, sizeof(p->why), "cannot load the eBPF probes: %s%s%s",
			strerror(-err), libbpf_last[0] ? ": " : "", libbpf_last);
		goto fail;
	}
	if (run_setup(p, &ns))
		goto fail;
	if (s->rodata->filter)
		seed_threads(bpf_map__fd(s->maps.lmig_threads), pid);
	if (attach(p, s->progs.lmig_fault, "page_fault_user", true) ||
	    attach(p, s->progs.lmig_switch, "sched_switch", true))
		goto fail;
	p->kvm = !attach(p, s->progs.lmig_kvm_exit, "kvm_exit", false) &&
		 !attach(p, s->progs.lmig_kvm_fault, "kvm_page_fault", false);
	if (!p->kvm) {
		add_note(p, "no KVM tracepoints (kvm not loaded): guest faults and exits not counted");
		p->exit_reasons = false;
	} else if (!p->exit_reasons) {
		add_note(p, "tracefs not mounted: no KVM exit reasons");
	} else if (!s->bss->have_exit_reason) {
		/* kvm_exit of another architecture (arm64: esr_ec, no exit_reason). */
		add_note(p, "kvm:kvm_exit has no exit_reason field on this kernel: no KVM exit "
			    "reasons");
		p->exit_reasons = false;
	} else if (attach(p, s->progs.lmig_kvm_reason, "kvm_exit reasons", false)) {
		add_note(p, "KVM exit reasons not counted (tracepoint kvm:kvm_exit did not attach)");
		p->exit_reasons = false;
	}
	if (flags & PROBES_PIN)
		pin_maps(p);
	/* The process may have exited while the probes loaded. */
	if (!(flags & PROBES_ALL) && !pidfd_alive(pv->pidfd)) {
		set_why(p->why, sizeof(p->why), "process %d exited", (int)pid);
		goto fail;
	}
	pv->t_last = now_s();
	p->ok = true;
	return 0;
fail:
	probes_close(p);
	return -1;
}


static double steal_of(const struct probe_counts *c)
{
	uint64_t want = c->rq_delay_ns + c->run_ns;

	return want ? 100.0 * c->rq_delay_ns / want : 0;
}

static bool counts_zero(const struct probe_counts *c)
{
	return !c->faults && !c->guest_exits && !c->guest_faults && !c->rq_delay_ns && !c->run_ns;
}

/* Live threads of pid, in *tids (malloc'ed), sorted; their number, or -1. */
static int list_tasks(pid_t pid, uint32_t **tids)
{
	size_t cap = 64, n = 0;
	uint32_t *v = malloc(cap * sizeof(*v));
	char path[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d || !v) {
		if (d)
			closedir(d);
		free(v);
		return -1;
	}
	while ((de = readdir(d))) {
		uint32_t tid = strtoul(de->d_name, NULL, 10);

		if (!tid)
			continue;
		if (n == cap) {
			uint32_t *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		v[n++] = tid;
	}
	closedir(d);
	*tids = v;
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int probes_sample(struct probes *p, struct probe_sample *out)
{
	struct probes_priv *pv = p->priv;
	struct tsnap *thr = NULL, *proc = NULL;
	size_t nthr = 0, nproc = 0, k = 0;
	uint32_t *tids = NULL;
	int ntids;
	double t;

	memset(out, 0, sizeof(*out));
	if (!p->ok || (p->flags & PROBES_ALL)) {
		set_why(p->why, sizeof(p->why), "probes are not open on a process");
		return -1;
	}
	out->pid = p->pid;
	if (read_counts(pv, bpf_map__fd(pv->skel->maps.lmig_threads), true, &thr, &nthr) ||
	    read_counts(pv, bpf_map__fd(pv->skel->maps.lmig_procs), false, &proc, &nproc)) {
		free(thr);
		set_why(p->why, sizeof(p->why), "cannot read the probe maps: %s", strerror(errno));
		return -1;
	}
	t = now_s();
	out->interval_s = t - pv->t_last;
	pv->t_last = t;
	out->alive = pv->pidfd >= 0 && pidfd_alive(pv->pidfd);
	{
		const struct tsnap *c = find_snap(proc, nproc, p->pid);
		const struct tsnap *o = find_snap(pv->proc, pv->nproc, p->pid);

		if (c)
			sub_counts(&out->c, &c->c, o ? &o->c : NULL);
	}
	out->steal_pct = steal_of(&out->c);

	ntids = list_tasks(p->pid, &tids);
	if (ntids > 0)
		qsort(tids, ntids, sizeof(*tids), cmp_u32);
	free(pv->out_thr);
	pv->out_thr = calloc(nthr + (ntids > 0 ? ntids : 0) + 1, sizeof(*pv->out_thr));
	if (!pv->out_thr) {
		free(thr);
		free(proc);
		free(tids);
		set_why(p->why, sizeof(p->why), "out of memory");
		return -1;
	}
	/* Threads with counters: live ones, and those that ran and exited. */
	for (size_t i = 0; i < nthr; i++) {
		const struct tsnap *o;
		struct probe_thread *th = &pv->out_thr[k];
		bool live;

		if (thr[i].tgid != (uint32_t)p->pid)
			continue;
		o = find_snap(pv->thr, pv->nthr, thr[i].key);
		th->tid = thr[i].key;
		sub_counts(&th->c, &thr[i].c, o && o->tgid == thr[i].tgid ? &o->c : NULL);
		live = ntids > 0 && bsearch(&thr[i].key, tids, ntids, sizeof(*tids), cmp_u32);
		if (!live && counts_zero(&th->c))
			continue;
		k++;
	}
	/* Live threads the probes have not seen yet (they never faulted nor slept). */
	for (int i = 0; i < ntids; i++) {
		const struct tsnap *c = find_snap(thr, nthr, tids[i]);

		if (c && c->tgid == (uint32_t)p->pid)
			continue;
		memset(&pv->out_thr[k], 0, sizeof(pv->out_thr[k]));
		pv->out_thr[k++].tid = tids[i];
	}
	for (size_t i = 0; i < k; i++) {
		struct probe_thread *th = &pv->out_thr[i];

		read_comm(p->pid, th->tid, th->comm);
		th->steal_pct = out->interval_s > 0 ?
				100.0 * th->c.rq_delay_ns / (out->interval_s * 1e9) : 0;
		if (th->steal_pct > 100)
			th->steal_pct = 100;
	}
	qsort(pv->out_thr, k, sizeof(*pv->out_thr), cmp_u32);	/* tid is the first member */
	out->threads = pv->out_thr;
	out->nthreads = k;
	free(tids);
	free(pv->thr);
	free(pv->proc);
	pv->thr = thr;
	pv->nthr = nthr;
	pv->proc = proc;
	pv->nproc = nproc;
	return 0;
}

int probes_sample_all(struct probes *p, struct probe_proc **out, unsigned int *n,
		      double *interval_s)
{
	struct probes_priv *pv = p->priv;
	struct tsnap *proc = NULL;
	size_t nproc = 0, k = 0;
	double t;

	*n = 0;
	if (!p->ok) {
		set_why(p->why, sizeof(p->why), "probes are not open");
		return -1;
	}
	if (read_counts(pv, bpf_map__fd(pv->skel->maps.lmig_procs), false, &proc, &nproc)) {
		set_why(p->why, sizeof(p->why), "cannot read the probe maps: %s", strerror(errno));
		return -1;
	}
	t = now_s();
	*interval_s = t - pv->t_last;
	pv->t_last = t;
	free(pv->out_proc);
	pv->out_proc = calloc(nproc + 1, sizeof(*pv->out_proc));
	if (!pv->out_proc) {
		free(proc);
		set_why(p->why, sizeof(p->why), "out of memory");
		return -1;
	}
	for (size_t i = 0; i < nproc; i++) {
		const struct tsnap *o = find_snap(pv->proc, pv->nproc, proc[i].key);
		struct probe_proc *pp = &pv->out_proc[k];

		pp->pid = proc[i].key;
		sub_counts(&pp->c, &proc[i].c, o ? &o->c : NULL);
		if (counts_zero(&pp->c))
			continue;
		pp->steal_pct = steal_of(&pp->c);
		read_comm(pp->pid, 0, pp->comm);
		if (!pp->comm[0])	/* exited: the name the probe kept */
			memcpy(pp->comm, proc[i].comm, sizeof(pp->comm));
		k++;
	}
	free(pv->proc);
	pv->proc = proc;
	pv->nproc = nproc;
	*out = pv->out_proc;
	*n = k;
	return 0;
}

int probes_exit_reasons(struct probes *p, struct probe_reason *out, unsigned int max)
{
	struct probes_priv *pv = p->priv;
	struct probes_reason_key key, next, *prev = NULL;
	size_t cap = 64, len = 0;
	struct rsnap *v;
	unsigned int k = 0;
	int fd;

	if (!p->ok || !p->exit_reasons)
		return 0;
	fd = bpf_map__fd(pv->skel->maps.lmig_kvm_exits);
	v = malloc(cap * sizeof(*v));
	if (!v)
		return 0;
	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (len == cap) {
			struct rsnap *nv = realloc(v, 2 * cap * sizeof(*v));

			if (!nv)
				break;
			v = nv;
			cap *= 2;
		}
		if (bpf_map_lookup_elem(fd, &key, pv->pcpu))
			continue;
		v[len].n = 0;
		for (int cpu = 0; cpu < pv->ncpus; cpu++)
			v[len].n += ((const __u64 *)pv->pcpu)[cpu];
		v[len++].k = key;
	}
	qsort(v, len, sizeof(*v), cmp_rsnap);
	for (size_t i = 0; i < len; i++) {
		struct rsnap *o = pv->nrs ? bsearch(&v[i], pv->rs, pv->nrs, sizeof(*v), cmp_rsnap) : NULL;
		uint64_t d = o && o->n <= v[i].n ? v[i].n - o->n : v[i].n;

		if ((p->flags & PROBES_ALL || v[i].k.tgid == (uint32_t)p->pid) && d && k < max) {
			out[k].reason = v[i].k.reason;
			out[k++].count = d;
		}
	}
	/* Most frequent first. */
	for (unsigned int i = 1; i < k; i++)
		for (unsigned int j = i; j > 0 && out[j].count > out[j - 1].count; j--) {
			struct probe_reason t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	free(pv->rs);
	pv->rs = v;
	pv->nrs = len;
	return k;
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
		set_why(why, len, "a running lmig holds %s", PROBES_PIN_DIR);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	unpin_all();
	close(fd);
	return 0;
}

#endif
