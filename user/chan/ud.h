/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The user_data of every io_uring request lmig submits: what the request
 * is, and two numbers that say which one.  One encoding for both
 * engines, so the channel layer's requests (chan/channel.h) and an
 * engine's own can share a ring.
 *
 *   bits  0..7   kind (enum ud_kind)
 *   bits  8..31  a channel, or a stream
 *   bits 32..63  a buffer or slot index within it
 *
 * 0 is no kind: a request whose completion is only waited for (a cancel).
 */
#ifndef LMIG_UD_H
#define LMIG_UD_H

#include <stdint.h>

enum ud_kind {
	UD_SEND = 1,		/* a send from a channel's buffer (chan_send()) */
	UD_REPLY,		/* the sender's receive of replies on channel 0 */
	UD_RECV,		/* a receiving channel's receive (chan_rx_arm()) */
	UD_READ,		/* an engine's read of its input */
	UD_WRITE,		/* an engine's write of its output */
	UD_ACCEPT,		/* the stream sender's accept of a QEMU connection */
	UD_CANCEL,		/* a cancel of one */
	UD_DECODE,		/* decode workers have pages done (image_decode.h) */
};

#define UD(kind, a, b)	((uint64_t)(kind) | ((uint64_t)(a) << 8) | ((uint64_t)(b) << 32))

static inline unsigned int ud_kind(uint64_t ud)
{
	return ud & 0xff;
}

static inline unsigned int ud_a(uint64_t ud)
{
	return (ud >> 8) & 0xffffff;
}

static inline unsigned int ud_b(uint64_t ud)
{
	return ud >> 32;
}

#endif
