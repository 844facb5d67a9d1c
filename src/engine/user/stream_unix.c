// SPDX-License-Identifier: MIT
/*
 * Host stream over a connected AF_UNIX socket (hybrid vsock). Every call is
 * non-blocking by flag (MSG_DONTWAIT), so the fd's own O_NONBLOCK state does
 * not matter, and MSG_NOSIGNAL keeps a vanished peer from raising SIGPIPE.
 *
 * SEQPACKET end of stream: recv() returns 0 both for an empty message and
 * after the peer's shutdown. peek_len() tells them apart with POLLRDHUP,
 * which AF_UNIX raises only on shutdown; an empty message queued right
 * before a shutdown is then read as the end, which loses nothing.
 */
#include "engine/user/stream.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t unix_readv(struct stream *s, const struct iovec *iov, int niov,
			  unsigned int *flags)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)niov };
	ssize_t n;

	do {
		n = recvmsg(s->fd, &m, MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	*flags = 0;
	if (m.msg_flags & MSG_EOR)
		*flags |= STREAM_F_EOR;
	if (m.msg_flags & MSG_TRUNC)
		*flags |= STREAM_F_TRUNC;
	return n;
}

static ssize_t unix_peek_len(struct stream *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLRDHUP };
	ssize_t n;

	do {
		n = recv(s->fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (n == 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)))
		return -EPIPE;
	return n;
}

static ssize_t unix_writev(struct stream *s, const struct iovec *iov, int niov,
			   unsigned int flags)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)niov };
	int f = MSG_DONTWAIT | MSG_NOSIGNAL;
	ssize_t n;

	if (flags & STREAM_F_EOR)
		f |= MSG_EOR;
	do {
		n = sendmsg(s->fd, &m, f);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n;
}

static int unix_shutdown_wr(struct stream *s)
{
	return shutdown(s->fd, SHUT_WR) < 0 ? -errno : 0;
}

static int unix_shutdown_rd(struct stream *s)
{
	return shutdown(s->fd, SHUT_RD) < 0 ? -errno : 0;
}

/* AF_UNIX raises POLLHUP once both directions are shut: the peer closed. */
static bool unix_peer_closed(struct stream *s)
{
	struct pollfd p = { .fd = s->fd, .events = 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP);
}

static void unix_close(struct stream *s)
{
	close(s->fd);
	s->fd = -1;
}

const struct stream_ops stream_unix_ops = {
	.readv = unix_readv,
	.peek_len = unix_peek_len,
	.writev = unix_writev,
	.shutdown_wr = unix_shutdown_wr,
	.shutdown_rd = unix_shutdown_rd,
	.peer_closed = unix_peer_closed,
	.close = unix_close,
};

void stream_unix_init(struct stream *s, int fd)
{
	s->ops = &stream_unix_ops;
	s->ctx = NULL;
	s->fd = fd;
}
