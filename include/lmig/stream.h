/* SPDX-License-Identifier: (GPL-2.0 WITH Linux-syscall-note) OR MIT */
/*
 * lmig stream transport (`lmig pipe`, `lmig proxy`), protocol version 1.
 *
 * Carries byte streams of unknown length - QEMU's migration stream on
 * exec:'s stdin/stdout, or each connection QEMU opens for unix:/tcp:
 * migration (the main channel, then one per multifd channel) - from a
 * source to a destination lmig over 1..LMIG_MAX_CHANNELS TCP connections
 * ("channels").  Every integer is little-endian; checksums are XXH3-64
 * (seed 0) over the structure with its checksum field set to zero, as in
 * include/lmig/wire.h.
 *
 * Handshake: the struct lmig_hello and struct lmig_hello_ack of wire.h,
 * with LMIG_CAP_STREAM set and image_size 0.  A page receiver (`lmig
 * recv`) refuses such a hello (empty image); a stream receiver refuses a
 * hello without LMIG_CAP_STREAM.
 *
 *   source lmig                               destination lmig
 *   hello (each channel)         ------>
 *                                <------      hello ack
 *   frames: OPEN, DATA, END ...  ------>      (any channel, any mix)
 *   DONE (last frame of each channel)
 *                                <------      CREDIT ... VERDICT (channel 0)
 *
 * Streams are numbered from 0 in the order the source accepted them (for
 * a pipe: one stream, 0).  A stream's data is cut into blocks of at most
 * LMIG_STREAM_BLOCK_MAX bytes, each sent as one DATA frame on whichever
 * channel has room; the destination puts blocks back in order by
 * (stream, offset), checks each block's hash, and writes each stream in
 * order to its own destination.  It opens those destinations (new
 * connections to the destination QEMU) in stream order, so they are
 * accepted there in the order the source accepted the originals.
 *
 * Flow control: the destination grants each stream a window of
 * LMIG_STREAM_WINDOW bytes beyond what it has written out; the source
 * reads no further from a stream until CREDIT replies move the window.
 * A stream whose consumer is slow therefore never holds up the others,
 * although they share channels.
 *
 * Both ways (LMIG_CAP_RETURN, both ends set it; `lmig proxy` only): what
 * the destination QEMU writes on a connection goes back to the source
 * QEMU's connection of the same stream, as RDATA frames on channel 0
 * (interleaved with the replies; a reader tells them apart by magic),
 * and the source's RCREDIT frames (on any channel) move that direction's
 * window of LMIG_STREAM_RWINDOW bytes.  Each direction ends on its own:
 * END carries the source QEMU's half-close (the destination then shuts
 * down the writing half of its connection), REND the destination QEMU's
 * (the source shuts down its writing half once every returned byte is
 * written).  The source sends DONE only once every stream's REND came and
 * its bytes were written, so DONE stays the last frame of a channel.
 */
#ifndef _LMIG_STREAM_H
#define _LMIG_STREAM_H

#include <linux/types.h>

#include <lmig/wire.h>

/* lmig_hello.caps: a stream transport, not a page image. */
#define LMIG_CAP_STREAM		(1U << 3)
/* lmig_hello.caps: each stream carried both ways (RCREDIT, RDATA, REND). */
#define LMIG_CAP_RETURN		(1U << 5)
/*
 * lmig_hello.caps: channels survive a break (both ends set it): ACK
 * frames, the session secret (lmig_ssecret) after the hello ack, and the
 * resume handshake (lmig_sresume ...) on a reconnected channel.
 */
#define LMIG_CAP_RESUME		(1U << 6)
/*
 * lmig_hello.caps: the destination sends CREDIT every
 * LMIG_STREAM_FINE_STEP bytes a stream wrote out, not every 2 MiB, so a
 * source can keep a stream's bytes in flight small (post-copy) without
 * waiting for credit.  Nothing else changes; either side may be older.
 */
#define LMIG_CAP_FINE_CREDIT	(1U << 7)

#define LMIG_SFRAME_MAGIC	0x4653474dU	/* "MGSF" */
#define LMIG_SREPLY_MAGIC	0x5253474dU	/* "MGSR" */

#define LMIG_STREAM_MAX		256		/* streams in one session */
#define LMIG_STREAM_BLOCK_MAX	(256 * 1024)	/* stream bytes in one DATA frame */
#define LMIG_STREAM_WINDOW	(16U << 20)	/* bytes in flight per stream */
#define LMIG_STREAM_RWINDOW	(1U << 20)	/* returned bytes in flight per stream */
#define LMIG_STREAM_FINE_STEP	(64U << 10)	/* CREDIT step under LMIG_CAP_FINE_CREDIT */

enum lmig_sframe_type {
	LMIG_SF_OPEN	= 1,	/* a stream begins; no payload */
	LMIG_SF_DATA	= 2,	/* a block of a stream */
	LMIG_SF_END	= 3,	/* a stream ended; payload: 16-byte digest */
	LMIG_SF_DONE	= 4,	/* the last frame of a channel; no payload */
	/* LMIG_CAP_RETURN only: */
	LMIG_SF_RCREDIT	= 5,	/* source: returned bytes written to its QEMU; no payload */
	LMIG_SF_RDATA	= 6,	/* destination, channel 0: a block its QEMU wrote */
	LMIG_SF_REND	= 7,	/* destination, channel 0: its QEMU's half-close; 16-byte digest */
	/* LMIG_CAP_RESUME only: */
	LMIG_SF_ACK	= 8,	/* either way: channel bytes taken so far; no payload */
};

/* lmig_sframe.flags */
#define LMIG_SF_LZ4		(1U << 0)	/* DATA payload is one LZ4 block */

/*
 * One frame header, followed by len payload bytes.
 *
 *   type   stream      offset                   raw_len          hash        payload
 *   OPEN   id          0                        0                0           none
 *   DATA   id          stream offset of block   block bytes      XXH3-64     len bytes
 *   END    id          stream length            0                0           XXH3-128 digest (16)
 *   DONE   streams     frames sent before it    0                0           none
 *   RCREDIT id         returned bytes written   0                0           none
 *   RDATA  id          return offset of block   block bytes      XXH3-64     len bytes
 *   REND   id          returned length          0                0           XXH3-128 digest (16)
 *   ACK    channel     channel bytes taken      0                0           none
 *
 * DATA: the payload is the block as it is (len == raw_len) or, with
 * LMIG_SF_LZ4, an LZ4 block that decodes to exactly raw_len bytes
 * (len < raw_len); hash is taken over the decoded bytes.  1 <= raw_len <=
 * LMIG_STREAM_BLOCK_MAX.  END's digest is XXH3-128, canonical (big-endian)
 * form, over all bytes of the stream in order.
 *
 * RDATA and REND go from the destination on channel 0 only, in order
 * (offset is always the bytes returned before it), never compressed
 * (len == raw_len); their seq counts the frames of channel 0's return
 * direction from 0, the replies not included.  RDATA may end no further
 * than the last RCREDIT's offset plus LMIG_STREAM_RWINDOW.  RCREDIT
 * counts in its channel's seq like every source frame.  Every frame
 * names its stream and the absolute offset of its bytes in its own
 * direction, so a later resume can replay from an acknowledged offset
 * per direction and a receiver can drop what it already has.
 */
struct lmig_sframe {
	__le32 magic;		/* LMIG_SFRAME_MAGIC */
	__le16 type;		/* enum lmig_sframe_type */
	__le16 flags;		/* LMIG_SF_LZ4 on DATA; otherwise 0 */
	__le32 stream;
	__le32 len;		/* payload bytes that follow */
	__le64 seq;		/* frames on this channel, from 0 */
	__le64 offset;
	__le32 raw_len;
	__le32 reserved;	/* must be 0 */
	__le64 hash;
	__le64 checksum;	/* over this header */
};

enum lmig_sreply_type {
	LMIG_SR_CREDIT	= 1,	/* bytes: the stream's bytes written out so far */
	LMIG_SR_VERDICT	= 2,	/* status: enum lmig_status; bytes: total stream bytes */
};

/* What the destination says back, on channel 0 only. */
struct lmig_sreply {
	__le32 magic;		/* LMIG_SREPLY_MAGIC */
	__le16 type;		/* enum lmig_sreply_type */
	__le16 status;		/* VERDICT: enum lmig_status */
	__le32 stream;		/* CREDIT: the stream */
	__le32 reserved;	/* must be 0 */
	__le64 bytes;
	/*
	 * VERDICT with status != OK, NUL-terminated: like an ack's reason,
	 * never the receiver's paths to a source TLS did not authenticate.
	 */
	char   reason[LMIG_REASON_LEN];
	__le64 checksum;
};

/*
 * Surviving a break (LMIG_CAP_RESUME).  Each direction of each channel
 * counts its bytes from the hello ack on (frames only, the handshake not
 * included); an ACK says how many of the other direction's bytes were
 * taken, always at a frame boundary.  The sender keeps what was sent and
 * not acknowledged (at most --resume-buffer bytes a channel a direction:
 * it stops sending instead) and replays it after a reconnect.
 *
 * After the hello ack of channel 0 the destination sends the session
 * secret, inside TLS when TLS is on:
 */
#define LMIG_SSECRET_MAGIC	0x5353474dU	/* "MGSS" */
#define LMIG_SRESUME_MAGIC	0x5553474dU	/* "MGSU" */
#define LMIG_RESUME_MAC_LEN	32		/* HMAC-SHA256 */
#define LMIG_RESUME_NONCE_LEN	16

struct lmig_ssecret {
	__le32 magic;		/* LMIG_SSECRET_MAGIC */
	__le32 reserved;	/* must be 0 */
	__u8   secret[32];	/* random, never sent again */
	__le64 checksum;
};

/*
 * A reconnected channel (the source connects again, TLS first when on)
 * starts with RESUME instead of a hello; four messages prove each end
 * knows the secret of this session without sending it:
 *
 *   source                                   destination
 *   RESUME session, channel        ------>
 *                                  <------   CHALLENGE nonce_d
 *   PROOF nonce_s, mac_s, have     ------>   (refused: status != 0, reason, close)
 *                                  <------   RESUMED mac_d, have
 *
 *   mac_s = HMAC-SHA256(secret, "lmig-resume-src" session channel nonce_d nonce_s)
 *   mac_d = HMAC-SHA256(secret, "lmig-resume-dst" session channel nonce_d nonce_s)
 *
 * (channel as __le16).  have is what that end took of the channel's other
 * direction (its last ACK may have been lost); each end then sends from
 * the other's have.  A destination refuses a session it does not know, a
 * wrong mac, or a channel it does not miss, with a one-line reason, and
 * the session goes on without that connection.
 */
enum lmig_sresume_type {
	LMIG_SU_RESUME		= 1,
	LMIG_SU_CHALLENGE	= 2,
	LMIG_SU_PROOF		= 3,
	LMIG_SU_RESUMED		= 4,
};

struct lmig_sresume {
	__le32 magic;		/* LMIG_SRESUME_MAGIC */
	__le16 type;		/* enum lmig_sresume_type */
	__le16 status;		/* RESUMED: enum lmig_status; otherwise 0 */
	__u8   session[16];	/* lmig_hello.session of the session */
	__le16 channel;
	__le16 reserved0;	/* must be 0 */
	__le32 reserved1;	/* must be 0 */
	__le64 have;		/* PROOF, RESUMED: channel bytes taken */
	__u8   nonce[LMIG_RESUME_NONCE_LEN];	/* CHALLENGE: nonce_d; PROOF: nonce_s */
	__u8   mac[LMIG_RESUME_MAC_LEN];	/* PROOF: mac_s; RESUMED: mac_d */
	char   reason[LMIG_REASON_LEN];		/* RESUMED with status != OK */
	__le64 checksum;
};

#endif /* _LMIG_STREAM_H */
