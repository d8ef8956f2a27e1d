/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * --compress auto: compress only while the network, not the CPU, is the
 * bottleneck.  Following the model of Ha et al. (SEC'17), the sender
 * estimates its compression throughput P and ratio r (from the pages it
 * compresses, or samples while not compressing), its CPU cost per byte
 * without compression, and the rate R at which the network drains its
 * queues, and re-decides every window which mode gives the higher image
 * throughput: min(R / wire_bytes_per_byte, cpu_rate) for each mode.
 *
 * Below lz4 at its slowest and best acceleration lies zstd (where the
 * receiver takes it, cpolicy_allow_zstd()): a link that still keeps the
 * sender waiting with lz4 at acceleration 1 gets zstd pages, fewer bytes
 * for more CPU, and lz4 again once zstd leaves the network
 * idle and lz4 is predicted to move the image faster.
 */
#ifndef LMIG_POLICY_H
#define LMIG_POLICY_H

#include <stdbool.h>
#include <stdint.h>

enum compress_mode { COMPRESS_NONE, COMPRESS_LZ4, COMPRESS_AUTO, COMPRESS_ZSTD };

/* What a page cpolicy_try_lz4() said to compress is compressed with. */
enum cpolicy_enc { CENC_LZ4, CENC_ZSTD };

/*
 * zstd's level for pages: where zstd is the sender's bottleneck, the
 * fastest level moves the image sooner (design.md, "Compression policy").
 */
#define CPOLICY_ZSTD_LEVEL	-1

struct cpolicy {
	enum compress_mode mode;
	bool lz4;			/* the current decision: compress (lz4, or zstd below) */
	bool zstd;			/* ... with zstd rather than lz4 */
	bool zstd_ok;			/* the receiver takes zstd pages */
	unsigned int zstd_switches;	/* steps between lz4 and zstd */
	int zstd_lean;			/* windows in a row that asked for a step (+ down, - back) */
	double Pz, ratio_z;		/* zstd's P and r, once it ran */
	bool have_Pz;
	unsigned int switches;
	uint64_t sample_ctr;
	/* current window */
	double win_start, win_wait, win_idle, win_comp_s;
	uint64_t win_img, win_nonzero, win_wire, win_comp_in, win_comp_out;
	/* estimates */
	double P, ratio, c_base, R;	/* bytes/s, fraction, s/byte, bytes/s */
	bool have_P, have_R;
	bool net_bound;
	bool close;			/* lz4 within reach of the current mode: sample often */
	unsigned int favour_other;	/* windows in a row that favoured the other mode */
	/*
	 * lz4's acceleration (LZ4_compress_fast): 1 is LZ4_compress_default;
	 * each doubling trades a few points of ratio for speed.  Raised while
	 * compressing keeps the network waiting, lowered while the network
	 * keeps us waiting, so lz4 uses the CPU there is and no more.
	 */
	int accel;
	int accel_max;			/* the highest it went */
	int accel_lean;			/* windows in a row that asked for a change (+ up, - down) */
};

void cpolicy_init(struct cpolicy *p, enum compress_mode mode);
/* The lz4 acceleration to compress with now. */
static inline int cpolicy_accel(const struct cpolicy *p)
{
	return p->accel;
}
/*
 * The receiver takes zstd pages: --compress zstd uses them, and auto may
 * step down to them.  Without this call neither does (zstd is lz4 then).
 */
void cpolicy_allow_zstd(struct cpolicy *p);
/* Should this non-zero page be run through lz4 (or zstd: cpolicy_enc())? */
bool cpolicy_try_lz4(struct cpolicy *p);
static inline enum cpolicy_enc cpolicy_enc(const struct cpolicy *p)
{
	return p->zstd ? CENC_ZSTD : CENC_LZ4;
}
/* A page went through lz4 or zstd: bytes in, bytes it would cost on the wire, seconds. */
void cpolicy_sampled(struct cpolicy *p, unsigned int in, unsigned int out, double secs);
void cpolicy_frame(struct cpolicy *p, uint64_t img, uint64_t nonzero, uint64_t wire);
/* The sender blocked this long waiting for the network (buffers or --bandwidth). */
void cpolicy_waited(struct cpolicy *p, double secs);
/*
 * ... or this long waiting for its input (a QEMU that sends slower than
 * lmig and the link could carry): neither CPU nor network time.
 */
void cpolicy_idle(struct cpolicy *p, double secs);
/* Re-decide when a window is complete. */
void cpolicy_tick(struct cpolicy *p, double now);
const char *compress_mode_name(enum compress_mode m);

#endif
