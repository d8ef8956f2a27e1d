// SPDX-License-Identifier: GPL-2.0-only
#include "lib/clock.h"
#include "chan/policy.h"

#define WINDOW_S	0.05	/* re-decide this often */
#define HYSTERESIS	1.10	/* the other mode must promise this much more */
#define NET_BOUND	0.15	/* fraction of a window spent waiting on the network */
#define CONFIRM		2	/* windows in a row before a switch */
#define PROBE_IDLE	0.05	/* ... below this, the network is clearly not the limit */
#define PROBE_GROWTH	1.5	/* per window, for the estimate of R then */
#define ACCEL_MAX	16	/* lz4 acceleration at most: each step buys speed with ratio */
#define CBASE_MIN	(1 << 20)	/* bytes in a window for a per-byte CPU cost */

void cpolicy_init(struct cpolicy *p, enum compress_mode mode)
{
	*p = (struct cpolicy){ .mode = mode, .lz4 = mode == COMPRESS_LZ4 || mode == COMPRESS_ZSTD,
			       .accel = 1, .accel_max = 1 };
	p->win_start = now_s();
}

void cpolicy_allow_zstd(struct cpolicy *p)
{
	p->zstd_ok = true;
	p->zstd = p->mode == COMPRESS_ZSTD;
}

bool cpolicy_try_lz4(struct cpolicy *p)
{
	if (p->mode != COMPRESS_AUTO || p->lz4)
		return p->lz4;
	/*
	 * Not compressing: sample a few pages to keep P and r current.  Sample
	 * often only while the decision is close; when lz4 is far from paying
	 * (CPU-bound, or data that does not compress) sampling would be the
	 * main cost of auto mode.
	 */
	return (p->sample_ctr++ & (p->close || !p->have_P ? 15 : 255)) == 0;
}

void cpolicy_sampled(struct cpolicy *p, unsigned int in, unsigned int out, double secs)
{
	p->win_comp_in += in;
	p->win_comp_out += out;
	p->win_comp_s += secs;
}

void cpolicy_frame(struct cpolicy *p, uint64_t img, uint64_t nonzero, uint64_t wire)
{
	p->win_img += img;
	p->win_nonzero += nonzero;
	p->win_wire += wire;
}

void cpolicy_waited(struct cpolicy *p, double secs)
{
	p->win_wait += secs;
}

void cpolicy_idle(struct cpolicy *p, double secs)
{
	p->win_idle += secs;
}

static double ewma(double old, double v, bool have, double a)
{
	return have ? old + a * (v - old) : v;
}

static double min2(double a, double b)
{
	return a < b ? a : b;
}

/*
 * While lz4 runs: a network left idle (we are the bottleneck, compressing)
 * asks for a faster lz4, a network that keeps us waiting for a better
 * ratio.  CONFIRM windows in a row move the acceleration one step (x2).
 */
static void tune_accel(struct cpolicy *p, double elapsed)
{
	double wait = p->win_wait / elapsed;
	int want = 0;

	if (!p->lz4 || p->zstd || !p->win_comp_in)
		return;
	/* Compressing took most of the window and the network waited for it. */
	if (wait < PROBE_IDLE && p->win_comp_s > 0.3 * elapsed && p->accel < ACCEL_MAX)
		want = 1;
	else if (wait > NET_BOUND && p->accel > 1)
		want = -1;
	p->accel_lean = want && (want > 0) == (p->accel_lean > 0) ? p->accel_lean + want : want;
	if (p->accel_lean >= CONFIRM || p->accel_lean <= -CONFIRM) {
		p->accel = p->accel_lean > 0 ? p->accel * 2 : p->accel / 2;
		if (p->accel > p->accel_max)
			p->accel_max = p->accel;
		p->accel_lean = 0;
	}
}

/* Image bytes per second with lz4 (zstd false) or zstd, as decide() predicts them. */
static double predict(const struct cpolicy *p, double fz, bool zstd)
{
	double ratio = zstd ? p->ratio_z : p->ratio, P = zstd ? p->Pz : p->P;

	return min2(p->R / (fz * ratio), 1 / (p->c_base + fz / P));
}

/*
 * The step below lz4 at acceleration 1, and back.  Down: CONFIRM windows
 * in a row that waited on the network with lz4 at its best ratio, and,
 * once zstd ran and its P and r are known, a prediction that it moves the
 * image HYSTERESIS faster (without it, a CPU too slow for zstd on this
 * link would be tried again every few windows).  Back: CONFIRM windows in
 * a row that left the network idle (the sender is CPU-bound with zstd)
 * and a prediction that lz4 moves the image HYSTERESIS faster; R grows
 * while the network idles (decide()), so a zstd that is slower than the
 * link is left within a few windows.  Back needs HYSTERESIS too: in a
 * run of mostly zero pages the sender idles the network with either
 * codec, both predict about the same, and stepping back and down again
 * at each such run cost four windows of the wrong codec (design.md,
 * "Compression policy").
 */
static void step_zstd(struct cpolicy *p, double elapsed)
{
	double wait = p->win_wait / elapsed, idle = p->win_idle / elapsed, fz;
	int want = 0;

	if (p->mode != COMPRESS_AUTO || !p->zstd_ok || !p->lz4 || !p->have_P || !p->have_R ||
	    !p->win_nonzero)
		return;
	fz = (double)p->win_nonzero / p->win_img;
	if (p->zstd) {
		if (wait < PROBE_IDLE && idle < PROBE_IDLE &&
		    predict(p, fz, false) > HYSTERESIS * predict(p, fz, true))
			want = -1;
	} else if (p->accel == 1 && wait > NET_BOUND &&
		   (!p->have_Pz || predict(p, fz, true) > HYSTERESIS * predict(p, fz, false))) {
		want = 1;
	}
	p->zstd_lean = want && (want > 0) == (p->zstd_lean > 0) ? p->zstd_lean + want : want;
	if (p->zstd_lean >= CONFIRM || p->zstd_lean <= -CONFIRM) {
		p->zstd = p->zstd_lean > 0;
		p->zstd_switches++;
		p->zstd_lean = 0;
		p->accel_lean = 0;
	}
}

static void decide(struct cpolicy *p, double elapsed)
{
	double busy = elapsed - p->win_wait - p->win_idle, fz, t_none, t_lz4, wire_rate;

	if (busy < 1e-6)
		busy = 1e-6;
	if (p->win_comp_in && p->zstd) {
		p->Pz = ewma(p->Pz, p->win_comp_in / (p->win_comp_s > 1e-9 ? p->win_comp_s : 1e-9),
			     p->have_Pz, 0.5);
		p->ratio_z = ewma(p->ratio_z, (double)p->win_comp_out / p->win_comp_in,
				  p->have_Pz, 0.5);
		p->have_Pz = true;
	} else if (p->win_comp_in) {
		p->P = ewma(p->P, p->win_comp_in / (p->win_comp_s > 1e-9 ? p->win_comp_s : 1e-9),
			    p->have_P, 0.5);
		p->ratio = ewma(p->ratio, (double)p->win_comp_out / p->win_comp_in, p->have_P, 0.5);
		p->have_P = true;
	}
	/*
	 * The CPU each byte costs without lz4, from windows that carried
	 * enough bytes to say: a window holding only the set-up and QEMU's
	 * first few hundred bytes of header reads a per-byte cost orders of
	 * magnitude above the steady state, which kept lz4 off for many
	 * windows while it decayed, and the start of every proxied QEMU
	 * migration went out raw (design.md, "Compression policy").
	 */
	if (busy > p->win_comp_s && p->win_img >= CBASE_MIN)
		p->c_base = ewma(p->c_base, (busy - p->win_comp_s) / p->win_img, p->c_base > 0, 0.5);
	p->net_bound = p->win_wait / elapsed > NET_BOUND;
	tune_accel(p, elapsed);
	wire_rate = p->win_wire / elapsed;
	if (p->net_bound) {
		/* An estimate far above what was just measured was a probe: drop it. */
		p->R = ewma(p->R, wire_rate, p->have_R && p->R < 2 * wire_rate, 0.5);
		p->have_R = true;
	} else if (p->have_R && p->win_wait / elapsed < PROBE_IDLE &&
		   p->win_idle / elapsed < PROBE_IDLE) {
		/*
		 * The network took all we gave it, so R is only a lower bound,
		 * and may be a stale one (taken during TCP slow start, or while
		 * the receiver was busy): let it grow until the other mode is
		 * tried and R is measured again.  Without this, lz4 chosen on
		 * one bad early window would never be left.  Not while the
		 * input kept us waiting: then the network idled for want of
		 * data, not because we are faster than it (a probe then made
		 * the proxy under QEMU multifd switch lz4 on and off over and
		 * over: design.md, "Compression policy").
		 */
		p->R = (wire_rate > p->R ? wire_rate : p->R) * PROBE_GROWTH;
	} else if (p->have_R && wire_rate > p->R) {
		p->R = wire_rate;	/* the link carries at least this */
	}
	step_zstd(p, elapsed);
	if (p->mode != COMPRESS_AUTO || p->zstd || !p->have_P || !p->have_R || !p->win_nonzero) {
		p->close = !p->have_R ? p->net_bound : true;
		return;
	}

	fz = (double)p->win_nonzero / p->win_img;
	t_none = min2(p->R / fz, 1 / p->c_base);
	t_lz4 = min2(p->R / (fz * p->ratio), 1 / (p->c_base + fz / p->P));
	p->close = t_lz4 > 0.7 * t_none;
	/*
	 * Switch only when CONFIRM windows in a row favour the other mode:
	 * one window can be an outlier (slow start, a receiver that is still
	 * allocating its image), and on a fast path a wrong switch costs more
	 * than a late one on a slow path.
	 */
	if (p->lz4 ? t_none > HYSTERESIS * t_lz4 : t_lz4 > HYSTERESIS * t_none)
		p->favour_other++;
	else
		p->favour_other = 0;
	if (p->favour_other >= CONFIRM) {
		p->lz4 = !p->lz4;
		p->switches++;
		p->favour_other = 0;
	}
}

void cpolicy_tick(struct cpolicy *p, double now)
{
	double elapsed = now - p->win_start;

	if (elapsed < WINDOW_S || !p->win_img)
		return;
	decide(p, elapsed);
	p->win_start = now;
	p->win_wait = p->win_idle = p->win_comp_s = 0;
	p->win_img = p->win_nonzero = p->win_wire = p->win_comp_in = p->win_comp_out = 0;
}

const char *compress_mode_name(enum compress_mode m)
{
	return m == COMPRESS_NONE ? "none" : m == COMPRESS_LZ4 ? "lz4" :
	       m == COMPRESS_ZSTD ? "zstd" : "auto";
}
