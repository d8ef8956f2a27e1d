/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * lmig wire format, protocol version 1.
 *
 * Every integer is little-endian.  Structures are naturally aligned and
 * have no implicit padding, so they can be sent as they are on
 * little-endian hosts; lmig_wire.c converts on others.
 *
 * A migration is carried by 1..LMIG_MAX_CHANNELS TCP connections
 * ("channels").  On each channel the sender speaks first:
 *
 *   sender                                receiver
 *   struct lmig_hello            ----->
 *                                <-----   struct lmig_hello_ack
 *   frames (BATCH ... END)       ----->
 *                                <-----   struct lmig_result (channel 0 only)
 *
 * A BATCH frame is a struct lmig_frame, ndesc struct lmig_page_desc and
 * payload_len bytes of page data.  Each channel ends with one END frame
 * whose payload is struct lmig_end.  After the END frames of every
 * channel the receiver checks that every page arrived exactly once and
 * that the image digest matches, makes the image durable and visible
 * under its final name, and only then sends a struct lmig_result with
 * status LMIG_ST_OK on channel 0 ("verified commit").
 *
 * With LMIG_CAP_CONFIRM (both ends set it) the commit is confirmed, so a
 * result lost on its way never leaves an image next to a resumed source:
 *
 *   END frames                   ----->
 *                                <-----   lmig_result, LMIG_RESULT_MAGIC:
 *                                         verified, not yet committed
 *   lmig_result, LMIG_CONFIRM_MAGIC ---->
 *                                <-----   lmig_result, LMIG_FINAL_MAGIC:
 *                                         committed (OK) or not (status)
 *
 * The receiver commits only on a valid CONFIRM (pages = the image's
 * pages); without one within its timeout it discards the image.  A sender
 * that sent CONFIRM and reads no valid FINAL cannot know the outcome: it
 * leaves the source paused (Documentation/wire-format.md, "Confirmed
 * commit").
 *
 * Checksums are XXH3-64 (seed 0).  The checksum of a structure is
 * computed over the structure with its checksum field set to zero; the
 * checksum of a frame also covers its descriptors.  Page data is covered
 * by the per-page hash in its descriptor, taken over the decoded page.
 *
 * Live migrations (LMIG_CAP_ROUNDS) send the image in rounds: round 0
 * carries every page, each later round the pages written since.  A round
 * ends on every channel with a ROUND frame; the receiver applies no page
 * of round n + 1 before every channel delivered its ROUND frame for round
 * n and every write of round n completed, so a page sent again in a later
 * round, on whichever channel, always replaces the older copy.  Within a
 * round a page appears at most once.  Once a round is applied, the
 * receiver says so on channel 0 with a struct lmig_result whose magic is
 * LMIG_ROUND_ACK_MAGIC and whose pages field holds the round number: the
 * sender freezes the workload only when everything sent before is
 * applied, so the downtime does not include the receiver's backlog.  The
 * END frames follow the last
 * round's pages; the digest then covers the final content of each page.
 *
 * The image digest is XXH3-128 over the array of per-page hashes
 * (le64, in page order; a zero page hashes as LMIG_ZERO_PAGE_HASH would
 * compute it, i.e. XXH3-64 of a zeroed page), so either side can build it
 * while pages arrive in any order on any channel.
 */
#ifndef _LMIG_WIRE_H
#define _LMIG_WIRE_H

#include <linux/types.h>

#define LMIG_WIRE_MAGIC		0x47494d4cU	/* "LMIG" */
#define LMIG_FRAME_MAGIC	0x5246474dU	/* "MGFR" */
#define LMIG_RESULT_MAGIC	0x5352474dU	/* "MGRS" */
#define LMIG_ROUND_ACK_MAGIC	0x4152474dU	/* "MGRA": a round applied (LMIG_CAP_ROUNDS) */
#define LMIG_CONFIRM_MAGIC	0x4643474dU	/* "MGCF": commit now (LMIG_CAP_CONFIRM) */
#define LMIG_FINAL_MAGIC	0x4c46474dU	/* "MGFL": committed or not (LMIG_CAP_CONFIRM) */
#define LMIG_WIRE_VERSION	1
#define LMIG_PAGE_SHIFT		12
#define LMIG_PAGE_SIZE		(1U << LMIG_PAGE_SHIFT)
#define LMIG_MAX_CHANNELS	64
/* Upper bounds on one frame (descriptors, payload bytes), so a receiver can size its buffers. */
#define LMIG_MAX_FRAME_DESC	256
#define LMIG_MAX_PAYLOAD	(LMIG_MAX_FRAME_DESC * LMIG_PAGE_SIZE)

/* Capabilities (lmig_hello.caps, lmig_hello_ack.caps). */
#define LMIG_CAP_LZ4		(1U << 0)	/* LMIG_ENC_LZ4 pages */
#define LMIG_CAP_ZERO_RUNS	(1U << 1)	/* LMIG_ENC_ZERO with count > 1 */
#define LMIG_CAP_ROUNDS		(1U << 2)	/* ROUND frames; pages resent in later rounds */
#define LMIG_CAP_CONFIRM	(1U << 4)	/* verdict, CONFIRM, then the commit and FINAL (bit 3: stream.h) */
#define LMIG_CAP_ZSTD		(1U << 8)	/* LMIG_ENC_ZSTD pages (bits 5-7: stream.h) */
/* Reserved so later versions can negotiate them without a new magic. */
#define LMIG_CAP_AUTH		(1U << 16)
#define LMIG_CAP_TLS		(1U << 17)
#define LMIG_CAPS_V1		(LMIG_CAP_LZ4 | LMIG_CAP_ZERO_RUNS)

struct lmig_hello {
	__le32 magic;		/* LMIG_WIRE_MAGIC */
	__le16 version;		/* LMIG_WIRE_VERSION */
	__le16 length;		/* sizeof(struct lmig_hello) */
	__le32 caps;		/* what the sender may use */
	__le32 flags;		/* none defined, must be 0 */
	__u8   session[16];	/* random, the same on every channel */
	__le16 channel;		/* 0 .. nchannels - 1 */
	__le16 nchannels;
	__le32 page_shift;	/* LMIG_PAGE_SHIFT */
	__le64 image_size;	/* bytes; need not be a page multiple */
	__le32 auth_len;	/* bytes of authentication data that follow; 0 in v1 */
	__le32 reserved[3];	/* must be 0 */
	__le64 checksum;
};

/* Status codes of lmig_hello_ack and lmig_result. */
enum lmig_status {
	LMIG_ST_OK		= 0,
	LMIG_ST_VERSION		= 1,	/* protocol version not spoken */
	LMIG_ST_PROTOCOL	= 2,	/* malformed or unexpected data */
	LMIG_ST_SESSION		= 3,	/* channel belongs to another migration */
	LMIG_ST_SIZE		= 4,	/* image size refused */
	LMIG_ST_IO		= 5,	/* receiver could not store the image */
	LMIG_ST_CHECKSUM	= 6,	/* a frame or page failed its checksum */
	LMIG_ST_DIGEST		= 7,	/* image digest mismatch */
	LMIG_ST_INCOMPLETE	= 8,	/* pages missing or sent twice */
};

#define LMIG_REASON_LEN	96

struct lmig_hello_ack {
	__le32 magic;		/* LMIG_WIRE_MAGIC */
	__le16 version;		/* receiver's LMIG_WIRE_VERSION */
	__le16 length;
	__le32 caps;		/* accepted subset of the hello's caps */
	__le32 status;		/* enum lmig_status */
	/*
	 * NUL-terminated text when status != OK: to a peer that TLS did not
	 * authenticate, fixed text for the status, never the receiver's paths
	 * (Documentation/wire-format.md, "Status codes and reason text").
	 */
	char   reason[LMIG_REASON_LEN];
	__le64 checksum;
};

enum lmig_frame_type {
	LMIG_FRAME_BATCH	= 1,
	LMIG_FRAME_END		= 2,
	LMIG_FRAME_ROUND	= 3,	/* payload: struct lmig_round (LMIG_CAP_ROUNDS) */
};

struct lmig_frame {
	__le32 magic;		/* LMIG_FRAME_MAGIC */
	__le16 type;		/* enum lmig_frame_type */
	__le16 flags;		/* none defined, must be 0 */
	__le32 ndesc;		/* descriptors that follow (BATCH), 0 for END */
	__le32 payload_len;	/* bytes after the descriptors */
	__le64 seq;		/* per channel, from 0 */
	__le64 checksum;	/* over this header and the descriptors */
};

/* Page encodings (lmig_page_desc.enc). */
enum lmig_page_enc {
	LMIG_ENC_ZERO	= 0,	/* 'count' zero pages from 'index'; no payload */
	LMIG_ENC_RAW	= 1,	/* LMIG_PAGE_SIZE bytes of payload */
	LMIG_ENC_LZ4	= 2,	/* 'len' bytes of LZ4 block data */
	/*
	 * 'len' bytes: one zstd frame (RFC 8878) that declares its content
	 * size, LMIG_PAGE_SIZE, and a window of at most LMIG_PAGE_SIZE, and
	 * decodes to exactly one page (LMIG_CAP_ZSTD).
	 */
	LMIG_ENC_ZSTD	= 3,
};

struct lmig_page_desc {
	__le64 index;		/* page number in the image */
	__le16 enc;		/* enum lmig_page_enc */
	__le16 reserved;	/* must be 0 */
	__le32 len;		/* payload bytes (RAW, LZ4, ZSTD) or page count (ZERO) */
	__le64 hash;		/* XXH3-64 of the decoded page; 0 for ZERO */
};

struct lmig_end {
	__le64 pages;		/* pages this channel described, zero runs included */
	__le64 frames;		/* BATCH frames this channel sent */
	__u8   digest[16];	/* image digest (XXH3-128, big-endian canonical form) */
};

/*
 * The end of a round on one channel.  pages and frames count, like
 * lmig_end, everything this channel sent since the migration began.
 */
struct lmig_round {
	__le64 round;		/* 0, 1, ... in order */
	__le64 pages;
	__le64 frames;
	__le64 reserved;	/* must be 0 */
};

struct lmig_result {
	__le32 magic;		/* LMIG_RESULT_MAGIC */
	__le32 status;		/* enum lmig_status */
	__le64 pages;		/* pages the receiver stored */
	char   reason[LMIG_REASON_LEN];
	__le64 checksum;
};

#endif /* _LMIG_WIRE_H */
