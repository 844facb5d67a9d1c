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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
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
	/* no more reads by us (SHUT_RD): the host's sends fail; 0 or -errno */
	int (*shutdown_rd)(struct stream *s);
	/* NULL where it means nothing: the socket's own buffer size; 0 or -errno */
	int (*set_buffer_size)(struct stream *s, uint32_t bytes);
	/*
	 * After the end of stream: whether the peer has stopped reading too
	 * (closed, not just half-closed), so that a write of ours would fail.
	 */
	bool (*peer_closed)(struct stream *s);
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

/*
 * Host AF_VSOCK sockets (forwarding, --forward-cid / --forward-listen).
 * STREAM sockets behave as Unix ones and use the same calls; SEQPACKET
 * peek_len() never peeks (AF_VSOCK SEQPACKET before Linux 6.4 dequeues on
 * MSG_PEEK) but reads the whole message into a buffer of the stream's own
 * (up to STREAM_VSOCK_STASH bytes; a longer message is reported at its
 * full length and then read truncated, which resets the connection) that
 * the next readv() serves.
 * Unit tests drive it over AF_UNIX sockets, which take the same calls.
 */
#define STREAM_VSOCK_STASH (256u << 10)
extern const struct stream_ops stream_vsock_ops;

/**
 * stream_vsock_init() - wrap a connected AF_VSOCK socket; the stream owns @fd.
 * @s: the stream
 * @fd: the socket
 */
void stream_vsock_init(struct stream *s, int fd);

/**
 * vsock_connect_to() - connect a new AF_VSOCK socket of @type to (@cid, @port).
 * @cid: the peer's CID
 * @port: its port
 * @type: SOCK_STREAM or SOCK_SEQPACKET
 * @timeout_ms: how long the connect may take (SO_VM_SOCKETS_CONNECT_TIMEOUT);
 *              the calling thread waits that long at most
 *
 * Return: the connected socket (close-on-exec; the stream calls never block
 * whatever its flags), or -errno
 * (-ECONNRESET/-ECONNREFUSED: nobody listens; -ETIMEDOUT).
 */
int vsock_connect_to(uint32_t cid, uint32_t port, int type, uint32_t timeout_ms);

/**
 * vsock_listen_on() - a listening AF_VSOCK socket of @type on
 * (VMADDR_CID_ANY, @port), non-blocking, close-on-exec.
 * Return: the socket or -errno.
 */
int vsock_listen_on(uint32_t port, int type);

#endif
