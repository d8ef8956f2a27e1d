/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Dirty trackers: which pages of the migrated memory changed since the
 * destination last received them.  One interface, several mechanisms:
 *
 *   scan  reads every page and compares its XXH3 hash with the hash of
 *         what was last sent; works on any memory lmig can read.
 *   uffd  reads the writer's page tables (PAGEMAP_SCAN) for the pages it
 *         wrote since it was write-protected by its own userfaultfd in
 *         async mode; needs pid, and a writer that registered the memory.
 *   soft-dirty  reads the writer's soft-dirty bits (pagemap bit 55) and
 *         clears them (clear_refs), with the writer stopped in between;
 *         needs pid and a kernel with CONFIG_MEM_SOFT_DIRTY.
 *   (kmod plugs in here too.)
 *
 * For a shared object, tracker_harvest() adds to what kmod, soft-dirty and
 * uffd report the object check (track.c): pages that became holes, and
 * after the object's timestamps changed a comparison of every page with
 * what was sent (write(2) and the like leave no trace in page tables).
 *
 * A round of the live engine calls harvest() and then reads and sends the
 * pages it returned; a page written after the harvest is read in its new
 * state and shows up again in the next harvest, so nothing is lost.
 */
#ifndef LMIG_TRACK_H
#define LMIG_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "live/mapwatch.h"
#include "live/track_choice.h"

/* The memory being migrated. */
struct track_target {
	int fd;			/* shared object (memfd, shm, file), or -1 */
	/*
	 * With fd < 0: the process whose memory it is.  With fd >= 0 it may be
	 * set too: the process that maps and writes the object, for trackers
	 * that watch a process's page tables (uffd).
	 */
	pid_t pid;
	/*
	 * > 0: a pidfd of pid that the caller keeps open; trackers that signal
	 * pid do it through this (else through one they open themselves).
	 */
	int pidfd;
	uint64_t start;		/* with fd < 0: its address in that process */
	/*
	 * With fd >= 0: the caller vouches that the object changes only
	 * through mappings and holes (never write(2), fallocate, splice), so
	 * the object check (track.c) skips its content comparison when the
	 * object's timestamps change (which writes through mappings do too).
	 */
	bool mapped_writes_only;
	uint64_t size;		/* bytes */
	/*
	 * Per page, the XXH3-64 hash of the content the destination holds
	 * (the sender's record of what it sent).  The scan tracker compares
	 * against it, so a page that changes and changes back after it was
	 * sent is still found.
	 */
	const uint64_t *sent;
};

struct tracker;
struct track_obj;

struct tracker_ops {
	const char *name;
	/* 0 if this tracker can watch tg; else -1 with lmig_err() saying why. */
	int (*probe)(const struct track_target *tg);
	int (*start)(struct tracker *t);
	/* OR into bitmap the pages written since the last harvest (or start). */
	int (*harvest)(struct tracker *t, uint64_t *bitmap);
	/*
	 * Optional: one harvest in parts, pages [first, end) at a time, in
	 * any order, each once (begin: the harvest's first part), each
	 * OR-ing into bitmap only the words of its own pages.  See
	 * tracker_harvest_part().
	 */
	int (*harvest_part)(struct tracker *t, uint64_t *bitmap, uint64_t first, uint64_t end,
			    bool begin);
	void (*stop)(struct tracker *t);
	/*
	 * It reads the writer's page tables, which lose what they knew when a
	 * mapping goes: on a shared object it needs the mapping watch
	 * (mapwatch.h) and refuses to watch without it.
	 */
	bool watch_maps;
	/*
	 * After the mapping watch saw a change: follow the object's mappings
	 * anew (uffd registers and protects the new ones), before the rescan.
	 * OR into bitmap what it finds written.  May be NULL.
	 */
	int (*remap)(struct tracker *t, uint64_t *bitmap);
};

struct tracker {
	const struct tracker_ops *ops;
	struct track_target tg;
	uint64_t npages;
	void *priv;
	/* Totals over all harvests, for reports and benchmarks. */
	unsigned int harvests;
	double harvest_s;		/* time spent in harvest() */
	/*
	 * When the tracker armed (lib/clock.h): the first harvest reports the
	 * writes since then (the scan tracker's baseline is the hashes its
	 * caller took before).
	 */
	double t_armed;
	double harvest_cpu_s;		/* CPU time of the harvesting thread in it (user + system) */
	uint64_t bytes_read;		/* memory read to harvest (scan) */
	uint64_t pages_refined;		/* reported by a huge page, found unchanged */
	/* What the object check (track.c, file-backed targets) added. */
	struct track_obj *obj;		/* its state; NULL for private memory and scan */
	uint64_t pages_holed;		/* data at the last harvest, a hole now */
	unsigned int obj_rescans;	/* harvests that compared every page's content */
	double obj_walk_s;		/* time in the data/hole map walk and the stat */
	/*
	 * The tracker itself reports writes by system calls (write(2),
	 * splice, copy_file_range): the object check skips its content
	 * comparison on a changed timestamp (lmig.ko with LMIG_FEAT_RESCAN).
	 */
	bool sees_syscalls;
	/* The mapping watch, for trackers with watch_maps on a shared object. */
	struct mapwatch *mw;
	struct mapwatch_state mws;
	unsigned int map_rescans;	/* harvests it made compare every page */
	double mapwatch_s;		/* time in remap() and those comparisons */
};

/*
 * Trackers that watch page tables or folios report a huge page (2 MiB
 * THP, a large folio) as a whole when one byte of it was written.
 * tracker_harvest() refines every fully reported, aligned block of
 * TRACK_HUGE_PAGES pages by comparing each page's hash with what was
 * sent (tg.sent): only pages that really changed stay set.  That is safe
 * because it runs after the tracker re-armed: a write after the
 * comparison is in the next harvest.
 */
#define TRACK_HUGE_PAGES	512

/*
 * Open the tracker called name for tg and start it.  "auto" leaves out
 * each tracker whose probe refuses tg; of two or more left it times one
 * calibration harvest each and picks by cost (live/track_pick.h), then
 * starts the one picked afresh.  c receives, for auto, which tracker was
 * picked, why the others could not watch, and what each calibration cost.
 */
int tracker_open_choice(struct tracker *t, const char *name, const struct track_target *tg,
			struct track_choice *c);
/* The same, with the choice in words in why ("" unless auto). */
int tracker_open(struct tracker *t, const char *name, const struct track_target *tg,
		 char *why, size_t whylen);
int tracker_harvest(struct tracker *t, uint64_t *bitmap);
/*
 * A harvest in parts, so that the pages of one part can go out while the
 * next is read (the final round of a paused workload).  Only a tracker
 * with harvest_part and neither the object check nor the mapping watch
 * (which see the whole object at once) has parts; for the others the
 * one part is [0, npages).
 */
bool tracker_has_parts(const struct tracker *t);
/*
 * Pages [first, end) into bitmap (first a multiple of 64, end too or
 * npages), leaving the words of other pages alone; a harvest's parts in
 * any order, each once, begin set on the first, last on the last.  0, or
 * -1 with lmig_err().
 */
int tracker_harvest_part(struct tracker *t, uint64_t *bitmap, uint64_t first, uint64_t end,
			 bool begin, bool last);
/*
 * Called, when set, inside tracker_open() once the tracker armed and
 * before it returns: a test sets it to make the writer change its
 * mappings at that point.  NULL in lmig.
 */
extern void (*tracker_start_hook)(struct tracker *t);
void tracker_close(struct tracker *t);
/* Names tracker_open() accepts, for --help and errors. */
const char *tracker_names(void);
bool tracker_known(const char *name);

/*
 * Read len bytes at offset off of the target (pread on the object, or
 * process_vm_readv from the process).  Returns 0, or -1 with lmig_err().
 */
int track_read(const struct track_target *tg, uint64_t off, void *buf, size_t len);

/*
 * Which pages of the first size bytes of file fd hold data: bit p of map
 * (one bit a page, zeroed first) is set when any byte of page p is data,
 * by SEEK_DATA/SEEK_HOLE, two lseek calls per data extent.  Returns 0, or
 * -1 with lmig_err().  A file system without holes reports all data.
 */
int track_data_map(int fd, uint64_t size, uint64_t *map);
/*
 * The same for pages [first, end) only, without zeroing: sets the bits of
 * those that hold data, leaves the others as they were.  SEEK_HOLE reads
 * on to the end of the extent, past end.
 */
int track_data_runs(int fd, uint64_t size, uint64_t first, uint64_t end, uint64_t *map);

extern const struct tracker_ops track_softdirty_ops;
extern const struct tracker_ops track_uffd_ops;
extern const struct tracker_ops track_scan_ops;
extern const struct tracker_ops track_kmod_ops;

static inline void bitmap_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= 1ULL << (i % 64);
}

static inline bool bitmap_test(const uint64_t *b, uint64_t i)
{
	return b[i / 64] >> (i % 64) & 1;
}

static inline uint64_t bitmap_words(uint64_t bits)
{
	return (bits + 63) / 64;
}

uint64_t bitmap_count(const uint64_t *b, uint64_t bits);

#endif
