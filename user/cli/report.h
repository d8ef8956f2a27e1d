/* SPDX-License-Identifier: GPL-2.0-only */
/* The end-of-command report: text for people, one JSON object for tools. */
#ifndef LMIG_REPORT_H
#define LMIG_REPORT_H

#include <stdbool.h>

#include "image/image.h"

/* role: "send" or "recv"; ok: the migration completed and was verified. */
void report_print(const char *role, const struct image_stats *st, const char *compress,
		  bool ok, bool json);
/*
 * The notes of a live send in words (report_notes.c): the probes ("on",
 * "on: what is missing", "off: why"; "" if never tried) and the choice of
 * --tracker auto ("" for a tracker named), cut to len bytes.  The report
 * holds them in 200 and 256 bytes.
 */
void report_probes_words(const struct probes_status *ps, char *out, size_t len);
void report_tracker_words(const struct track_choice *c, char *out, size_t len);

/* The words of a throttle note (as the report and the progress lines print them); "" for none. */
void throttle_note_words(const struct throttle_note *n, char *buf, size_t len);
void throttle_io_note_words(const struct throttle_io_note *n, char *buf, size_t len);
/* Words, on stderr, for what a send or receive tells while it runs (progress.c). */
void cli_image_event(void *ctx, enum image_event ev, const struct image_progress *p,
		     const struct image_stats *st);
extern const struct image_events cli_events;
extern const struct image_events cli_qemu_events;	/* the same, its notes as lmig qemu send's */
/* "lmig: restored the CPU limit of process ..." on stderr. */
void cli_restored(void *ctx, const struct throttle_restored *r);

struct stream_stats;
struct cvm_stats;
/*
 * lmig pipe/proxy's report on fd: one JSON object (json), or a line when
 * the stream completed (ok); vm (NULL: none) is what --qmp followed.
 */
void stream_report(const char *role, const struct stream_stats *st, const char *compress,
		   const struct cvm_stats *vm, bool ok, bool json, int fd);
/*
 * The convergence of a QEMU guest (report_vm.c): the "throttle" object of
 * the JSON report, the text lines, and a warning on stderr when a limit
 * could not be undone.
 */
struct json_obj;
void cvm_report_json(struct json_obj *j, const struct cvm_stats *s);
void cvm_report_text(int fd, const struct cvm_stats *s);
void cvm_report_unrestored(const char *role, const struct cvm_stats *s);

#endif
