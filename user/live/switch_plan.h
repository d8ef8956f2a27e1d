/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The switch-over's final round when the tracker harvests in parts
 * (tracker_harvest_part()): the pages of each part go out while the next
 * part is read, so the pause lasts about the longer of the harvest and
 * the send, not their sum.  Two decisions, numbers in and numbers out
 * (no I/O, no clock; selftests/test_switch_plan.c):
 *
 *  - the order of the parts: those most written in the last live
 *    harvest, counting each part's pages and those of the part before it
 *    (a writer that sweeps upwards has moved on into the next part),
 *    first; ties lower part first.  The link then has pages to carry
 *    from the first parts on while the quiet rest is read;
 *  - the pause that harvest and send then take, for the prediction that
 *    decides the switch-over: with n parts, the harvest of all of them
 *    followed by the send of the last part's share, or the first part's
 *    harvest followed by the whole send, whichever is longer.  With one
 *    part that is the sum, as without parts.
 */
#ifndef LMIG_SWITCH_PLAN_H
#define LMIG_SWITCH_PLAN_H

#include <stdint.h>

/*
 * The final harvest goes in parts of this size, the pages of each sent
 * while the next is read: the pause lasts about the longer of the two,
 * not their sum.  Small enough that a part takes less time than the
 * frames queued ahead of it take to leave.
 */
#define SPLAN_PART_BYTES	(8u << 20)

/* Parts of part_pages pages that npages take (the last may be short). */
unsigned int splan_parts(uint64_t npages, uint64_t part_pages);
/*
 * order[0..n) := the parts 0..n-1, heaviest first (dirty[i] + dirty[i - 1]),
 * ties by index.
 * dirty may be NULL (no harvest yet): in order.
 */
void splan_order(const uint64_t *dirty, unsigned int n, unsigned int *order);
/* Seconds the paused harvest of n parts and the final round's send take. */
double splan_pause_s(double harvest_s, double send_s, unsigned int n);

#endif
