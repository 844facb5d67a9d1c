// SPDX-License-Identifier: MIT
/*
 * Host stream over a connected AF_VSOCK socket (forwarding to host
 * AF_VSOCK, stream.h). The socket calls are the Unix stream's own
 * (stream_unix_ops: recvmsg/sendmsg with MSG_DONTWAIT, MSG_EOR both ways,
 * POLLRDHUP for the end of a SEQPACKET stream): AF_VSOCK takes them the
 * same way. What differs is MSG_PEEK on SOCK_SEQPACKET, which Linux
 * before 6.4 does not support (6.1 dequeues the message): peek_len() reads
 * the next message whole into a stash that the next readv() serves.
 *
 * Safety: nothing here is called on a machine unless the operator gave
 * --forward-cid / --forward-listen; the unit tests never call
 * vsock_connect_to() or vsock_listen_on() (they hand the device a socket
 * factory of their own).
 */
#include "engine/user/stream.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* A SEQPACKET message read ahead by peek_len() (s->ctx; NULL until needed). */
struct vsock_stash {
	bool full;      /* buf holds the next message */
	bool eof;       /* the end of the stream was seen */
	size_t len;     /* its length as the kernel told it (may exceed the buffer) */
	unsigned int flags; /* STREAM_F_EOR of that read */
	unsigned char buf[STREAM_VSOCK_STASH];
};

static ssize_t vsock_readv(struct stream *s, const struct iovec *iov, int niov,
			   unsigned int *flags)
{
	struct vsock_stash *st = s->ctx;
	size_t off = 0, have;

	if (!st || !st->full)
		return stream_unix_ops.readv(s, iov, niov, flags);
	have = st->len < sizeof(st->buf) ? st->len : sizeof(st->buf);
	for (int i = 0; i < niov && off < have; i++) {
		size_t n = have - off < iov[i].iov_len ? have - off : iov[i].iov_len;

		memcpy(iov[i].iov_base, st->buf + off, n);
		off += n;
	}
	*flags = st->flags;
	if (off < st->len)
		*flags |= STREAM_F_TRUNC;
	st->full = false;
	return (ssize_t)off;
}

/*
 * SEQPACKET: the next message's length, read whole into the stash. Never
 * MSG_PEEK: Linux before 6.4 does not refuse it on AF_VSOCK SEQPACKET but
 * dequeues the message (the rig saw it on 6.1), so a peek would lose it.
 */
static ssize_t vsock_peek_len(struct stream *s)
{
	struct vsock_stash *st = s->ctx;
	struct iovec v;
	struct msghdr m;
	struct pollfd p = { .fd = s->fd, .events = POLLRDHUP };
	ssize_t n;

	if (!st) {
		st = calloc(1, sizeof(*st));
		if (!st)
			return -ENOMEM;
		s->ctx = st;
	}
	if (st->full)
		return (ssize_t)st->len;
	if (st->eof)
		return -EPIPE;
	v = (struct iovec){ st->buf, sizeof(st->buf) };
	do {
		m = (struct msghdr){ .msg_iov = &v, .msg_iovlen = 1 };
		n = recvmsg(s->fd, &m, MSG_DONTWAIT | MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	/* 0: an empty message, or the end (then the socket says RDHUP) */
	if (n == 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP))) {
		st->eof = true;
		return -EPIPE;
	}
	st->full = true;
	st->len = (size_t)n;
	st->flags = (m.msg_flags & MSG_EOR) ? STREAM_F_EOR : 0;
	return n;
}

static ssize_t vsock_writev(struct stream *s, const struct iovec *iov, int niov,
			    unsigned int flags)
{
	return stream_unix_ops.writev(s, iov, niov, flags);
}

static int vsock_shutdown_wr(struct stream *s)
{
	return stream_unix_ops.shutdown_wr(s);
}

static int vsock_shutdown_rd(struct stream *s)
{
	return stream_unix_ops.shutdown_rd(s);
}

/*
 * Linux (Debian's 6.12.117 on) caps a sender's bytes in flight by its own
 * buffer as well as the peer's: the maximum first, since it bounds the size.
 */
static int vsock_set_buffer_size(struct stream *s, uint32_t bytes)
{
	unsigned long long v = bytes;

	if (setsockopt(s->fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &v, sizeof(v)) < 0 ||
	    setsockopt(s->fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &v, sizeof(v)) < 0)
		return -errno;
	return 0;
}

/*
 * AF_VSOCK raises no POLLHUP for a peer that closed while data was still
 * queued, but refuses any send, an empty one included, once the peer has
 * shut its receive side: an empty send asks without moving a byte.
 */
static bool vsock_peer_closed(struct stream *s)
{
	struct msghdr m = { 0 };
	ssize_t n;

	do {
		n = sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n < 0 && errno == EPIPE;
}

static void vsock_close(struct stream *s)
{
	free(s->ctx);
	s->ctx = NULL;
	stream_unix_ops.close(s);
}

const struct stream_ops stream_vsock_ops = {
	.readv = vsock_readv,
	.peek_len = vsock_peek_len,
	.writev = vsock_writev,
	.shutdown_wr = vsock_shutdown_wr,
	.shutdown_rd = vsock_shutdown_rd,
	.set_buffer_size = vsock_set_buffer_size,
	.peer_closed = vsock_peer_closed,
	.close = vsock_close,
};

void stream_vsock_init(struct stream *s, int fd)
{
	s->ops = &stream_vsock_ops;
	s->ctx = NULL;
	s->fd = fd;
}

int vsock_connect_to(uint32_t cid, uint32_t port, int type, uint32_t timeout_ms)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	struct timeval tv = { .tv_sec = timeout_ms / 1000,
			      .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000 };
	int fd = socket(AF_VSOCK, type | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	/* a blocking connect bounded by the socket's own timeout: the answer (or
	 * the RST) is known when it returns, so a refusal reaches the guest at once */
	if (setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv)) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	do {
		rc = connect(fd, (const struct sockaddr *)&sa, sizeof(sa));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int vsock_listen_on(uint32_t port, int type)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int fd = socket(AF_VSOCK, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc;

	if (fd < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}
