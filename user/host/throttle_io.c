// SPDX-License-Identifier: GPL-2.0-only
/*
 * The disk-write throttle (throttle.h): write limits on
 * the block devices the workload writes to.
 *
 *   cgroup v2: io.max "MAJ:MIN wbps=N" on the cgroup that holds the
 *              process during the migration (the io controller is a
 *              domain controller: whole processes only)
 *   cgroup v1: blkio.throttle.write_bps_device "MAJ:MIN N" in the blkio
 *              hierarchy: in place when the process is alone in its
 *              blkio cgroup, else a transient child holding the threads
 *              that write to disk (or the whole process)
 *
 * Which devices: those holding a file the workload has open (a disk image,
 * a data file), partitions mapped to their disk, since the kernel only
 * throttles whole disks.  The kernel does not say which of them the writes
 * went to, so each gets the same limit; writes to one spend only its own.
 * v1's blkio throttle sees direct and synchronous writes; buffered writes
 * that the kernel's flusher threads write back later are charged to the
 * workload only by cgroup v2 (with the memory controller).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/err.h"
#include "host/cgroup.h"
#include "host/procfs.h"
#include "host/throttle.h"

/* The whole disk of block device maj:min (itself when it is not a partition). */
static void whole_disk(unsigned int *maj, unsigned int *min)
{
	char dir[64], real[512], buf[32];
	unsigned int a, b;

	snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", *maj, *min);
	if (kfile_read(dir, "partition", buf, sizeof(buf)) || !realpath(dir, real))
		return;
	/* .../block/vda/vda1: the disk is the parent directory. */
	if (!kfile_read(dirname(real), "dev", buf, sizeof(buf)) && sscanf(buf, "%u:%u", &a, &b) == 2)
		*maj = a, *min = b;
}

/* The disks holding files pid has open, into io->dev; how many. */
static unsigned int find_disks(pid_t pid, struct throttle_io *io)
{
	char path[64], fdp[320], dir[64];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d)) && io->ndev < THROTTLE_MAX_DEVS) {
		unsigned int maj, min, i;
		struct stat sb;
		dev_t dev;

		snprintf(fdp, sizeof(fdp), "%s/%s", path, de->d_name);
		if (de->d_name[0] == '.' || stat(fdp, &sb))
			continue;
		if (S_ISBLK(sb.st_mode))
			dev = sb.st_rdev;
		else if (S_ISREG(sb.st_mode))
			dev = sb.st_dev;
		else
			continue;
		maj = major(dev);
		min = minor(dev);
		/* tmpfs, proc, overlay...: no block device behind them */
		snprintf(dir, sizeof(dir), "/sys/dev/block/%u:%u", maj, min);
		if (!maj || access(dir, F_OK))
			continue;
		whole_disk(&maj, &min);
		for (i = 0; i < io->ndev; i++)
			if (io->dev[i].maj == maj && io->dev[i].min == min)
				break;
		if (i == io->ndev) {
			io->dev[io->ndev].maj = maj;
			io->dev[io->ndev].min = min;
			io->ndev++;
		}
	}
	if (d)
		closedir(d);
	return io->ndev;
}

/*
 * The write limit of device maj:min in cgroup dir: v2 io.max's "wbps="
 * ("max" when the device has no line), v1's write_bps_device ("0").
 */
static void read_wbps(const struct throttle_io *io, const char *dir, unsigned int maj,
		      unsigned int min, char *out, size_t len)
{
	char buf[4096], key[32], *line, *save = NULL;

	snprintf(out, len, "%s", io->v2 ? "max" : "0");
	if (kfile_read(dir, io->v2 ? "io.max" : "blkio.throttle.write_bps_device", buf, sizeof(buf)))
		return;
	snprintf(key, sizeof(key), "%u:%u ", maj, min);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *w;

		if (strncmp(line, key, strlen(key)))
			continue;
		if (!io->v2)
			snprintf(out, len, "%.31s", line + strlen(key));
		else if ((w = strstr(line, "wbps=")))
			snprintf(out, len, "%.*s", (int)strcspn(w + 5, " "), w + 5);
	}
}

static int write_wbps(const struct throttle_io *io, unsigned int i, const char *val)
{
	char line[96];

	snprintf(line, sizeof(line), io->v2 ? "%u:%u wbps=%s" : "%u:%u %s", io->dev[i].maj,
		 io->dev[i].min, val);
	return kfile_write(io->cg, io->v2 ? "io.max" : "blkio.throttle.write_bps_device", line);
}

int throttle_io_init(struct throttle *t, const pid_t *tids, unsigned int ntids)
{
	struct throttle_io *io = &t->io;
	char v2dir[512];
	bool v2root = false, v1root = false;
	int ret;

	*io = (struct throttle_io){ .v2 = t->v2 };
	if (t->nvcg)
		return lmig_err("the CPU limit of process %d is on per-vCPU threaded cgroups, where disk writes cannot be limited (io is a domain controller)",
				(int)t->pid);
	if (!find_disks(t->pid, io))
		return lmig_err("process %d has no file open on a block device", (int)t->pid);
	if (io->v2) {
		/* Where the process is now: its own cgroup, or the transient one. */
		char iomax[700];

		snprintf(io->cg, sizeof(io->cg), "%s", t->cg);
		snprintf(iomax, sizeof(iomax), "%s/io.max", io->cg);
		if (access(iomax, F_OK))
			return lmig_err("cgroup %s has no io.max (the io controller is not enabled for it)",
					io->cg);
	} else {
		if (cgroup_dirs(t->pid, "blkio", v2dir, sizeof(v2dir), io->home, sizeof(io->home),
				&v2root, &v1root))
			return -1;
		if (!io->home[0])
			return lmig_err("process %d is in no cgroup v1 blkio hierarchy", (int)t->pid);
		if (ntids > THROTTLE_MAX_TIDS)
			ntids = THROTTLE_MAX_TIDS;
		memcpy(io->tids, tids, ntids * sizeof(*tids));
		io->ntids = ntids;
		io->per_thread = ntids > 0;
		if (!io->per_thread && !v1root && cgroup_alone(io->home, t->pid)) {
			snprintf(io->cg, sizeof(io->cg), "%s", io->home);
		} else {
			snprintf(io->cg, sizeof(io->cg), "%s/lmig-throttle-%d", io->home, (int)t->pid);
			io->transient = true;
		}
	}
	for (unsigned int i = 0; i < io->ndev; i++)
		if (io->transient)
			snprintf(io->dev[i].saved, sizeof(io->dev[i].saved), "0");
		else
			read_wbps(io, io->cg, io->dev[i].maj, io->dev[i].min, io->dev[i].saved,
				  sizeof(io->dev[i].saved));
	/* Recorded before anything changes. */
	io->on = true;
	if (throttle_state_save(t)) {
		io->on = false;
		return -1;
	}
	if (io->transient) {
		if (mkdir(io->cg, 0755) && errno != EEXIST) {
			ret = -errno;
			goto fail;
		}
		ret = cgroup_move(io->cg, t->pid, io->tids, io->per_thread ? io->ntids : 0);
		if (ret) {
			rmdir(io->cg);
			goto fail;
		}
	}
	return 0;
fail:
	io->on = false;
	throttle_state_save(t);
	return lmig_err_errno(-ret, "cannot move process %d into %s", (int)t->pid, io->cg);
}

int throttle_io_set(struct throttle *t, double bps)
{
	struct throttle_io *io = &t->io;
	char val[32];

	if (!io->on)
		return 0;
	if (bps < THROTTLE_IO_MIN_BPS)
		bps = THROTTLE_IO_MIN_BPS;
	snprintf(val, sizeof(val), "%.0f", bps);
	for (unsigned int i = 0; i < io->ndev; i++) {
		int ret = write_wbps(io, i, val);

		if (ret)
			return lmig_err_errno(-ret, "cannot set the disk write limit of %u:%u in %s",
					      io->dev[i].maj, io->dev[i].min, io->cg);
	}
	io->bps = bps;
	return 0;
}

int throttle_io_restore(struct throttle_io *io)
{
	int ret = 0, r;

	if (!io->on)
		return 0;
	if (io->transient) {
		/*
		 * Lifted first: writes queued in this cgroup's throttle stay
		 * charged to it after their threads move, and would keep
		 * waiting (and their threads with them).  Then every thread in
		 * it goes home, also those started since.
		 */
		for (unsigned int i = 0; i < io->ndev; i++)
			write_wbps(io, i, io->v2 ? "max" : "0");
		ret = cgroup_empty_into(io->cg, io->home, "tasks");
	} else {
		for (unsigned int i = 0; i < io->ndev; i++) {
			r = write_wbps(io, i, io->dev[i].saved);
			/* the cgroup went away with its workload */
			if (r && r != -ENOENT && r != -ENODEV && !ret)
				ret = r;
		}
	}
	if (!ret) {
		io->on = false;
		io->bps = 0;
	}
	return ret;
}
