/* SPDX-License-Identifier: MIT */
/*
 * The host end of a vsock connection, behind a table of operations so that
 * conn.c never calls read(2)/write(2) itself: the daemon uses Unix sockets
 * (stream_unix_ops, hybrid vsock), unit tests an in-memory pair.
 *
 * Contract for every implementation:
 * - Non-blocking: an operation that cannot make progress returns -EAGAIN.
 * - STREAM handles may write short; SEQPACKET handles move whole messages
 *   (a write is all or nothing, a read consumes one message and copies
 *   what fits, reporting STREAM_F_TRUNC when some was lost).
 * - End of stream is readv() == 0 for STREAM, peek_len() == -EPIPE for
 *   SEQPACKET (where a 0-length read would be ambiguous with an empty
 *   message).
 * - close() is called exactly once, by the connection that owns the handle.
 */
#ifndef ENGINE_USER_STREAM_H
#define ENGINE_USER_STREAM_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* readv() flags out / writev() flags in */
#define STREAM_F_EOR 0x1u   /* the message ends a record (MSG_EOR) */
#define STREAM_F_TRUNC 0x2u /* the message was longer than the buffer */

struct stream;

struct stream_ops {
	/* bytes read, 0 = end of stream (STREAM), or -errno */
	ssize_t (*readv)(struct stream *s, const struct iovec *iov, int niov, unsigned int *flags);
	/* SEQPACKET only: length of the next message, -EAGAIN, -EPIPE at end */
	ssize_t (*peek_len)(struct stream *s);
	/* bytes written (all of them for SEQPACKET), or -errno */
	ssize_t (*writev)(struct stream *s, const struct iovec *iov, int niov, unsigned int flags);
	/* no more writes from us (SHUT_WR); 0 or -errno */
	int (*shutdown_wr)(struct stream *s);
	void (*close)(struct stream *s);
};

struct stream {
	const struct stream_ops *ops; /* NULL once closed */
	void *ctx;                    /* implementation's own (in-memory streams) */
	int fd;                       /* implementation's own (sockets); -1 if none */
};

/* AF_UNIX SOCK_STREAM / SOCK_SEQPACKET sockets, O_NONBLOCK not required. */
extern const struct stream_ops stream_unix_ops;

/**
 * stream_unix_init() - wrap a connected Unix socket; the stream owns @fd.
 * @s: the stream
 * @fd: the socket
 */
void stream_unix_init(struct stream *s, int fd);

#endif
