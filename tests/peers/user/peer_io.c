// SPDX-License-Identifier: MIT
/*
 * The exchanges and small socket helpers both ends of the userspace-engine
 * real-peer test share (see peer_io.h for the protocol). Works the same on
 * AF_VSOCK and AF_UNIX sockets; never blocks past a deadline (blocking
 * sends on SEQPACKET sockets are bounded by SO_SNDTIMEO).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer_io.h"
#include "tfe.h"

#define CHUNK_MAX 65536u

/* Static buffers: one exchange at a time (peer_io.h). Larger than any
 * message, so that two messages merged into one show as a wrong length. */
static uint8_t tx_buf[CHUNK_MAX], rx_buf[CHUNK_MAX], want_buf[CHUNK_MAX];
_Static_assert(PEER_SEQ_MAX < CHUNK_MAX, "a message must fit the buffers with room to spare");

static int failf(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int failf(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

uint64_t peer_host_seed(uint64_t seed)
{
	return ~seed * 0x2545f4914f6cdd1dull + 1;
}

/* splitmix64's finaliser: every 8-byte word of the pattern on its own. */
static uint64_t mix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void peer_pattern(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t o = off + i;
		uint64_t w = mix64(seed + (o >> 3) * 0x9e3779b97f4a7c15ull);

		for (unsigned int b = o & 7; b < 8 && i < n; b++, i++)
			buf[i] = (uint8_t)(w >> (8 * b));
	}
}

uint32_t peer_crc32(uint32_t crc, const void *buf, size_t n)
{
	static uint32_t table[256];
	const uint8_t *p = buf;

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	crc = ~crc;
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint32_t peer_seq_len(unsigned int i)
{
	/* Small, around the guest's rx buffer size (one 3776-byte descriptor
	 * under Linux, REAL-PEERS §5), and several rx buffers long. */
	static const uint32_t lens[PEER_SEQ_COUNT] = {
		1, 2, 100, 1000, 3776, 3777, 4096, 16384, 32768, PEER_SEQ_MAX,
	};

	return lens[i % PEER_SEQ_COUNT];
}

const char *peer_errname(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "unknown errno";
}

int peer_socket(const void *sa, unsigned int len, int type, bool listening)
{
	const struct sockaddr *a = sa;
	int fd = socket(a->sa_family, type | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	if (listening)
		rc = bind(fd, a, len) < 0 || listen(fd, 4) < 0 ? -errno : 0;
	else
		rc = connect(fd, a, len) < 0 ? -errno : 0;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int peer_unix(const char *path, int type, bool listening)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (listening)
		(void)unlink(path);
	return peer_socket(&sa, sizeof(sa), type, listening);
}

int peer_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	do {
		rc = poll(&p, 1, tfe_remaining_ms(deadline));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	return p.revents;
}

int peer_send_all(int fd, const void *buf, size_t n, int64_t deadline)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		int rc = peer_wait(fd, POLLOUT, deadline);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int peer_send_line(int fd, int64_t deadline, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = peer_vsend_line(fd, deadline, fmt, ap);
	va_end(ap);
	return rc;
}

int peer_vsend_line(int fd, int64_t deadline, const char *fmt, va_list ap)
{
	char line[PEER_LINE_MAX];
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);

	if (n < 0)
		return -EINVAL;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n] = '\n';
	return peer_send_all(fd, line, (size_t)n + 1, deadline);
}

int peer_recv_line(int fd, char *buf, size_t size, int64_t deadline)
{
	size_t len = 0;

	buf[0] = '\0';
	for (;;) {
		char c;
		ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);

		if (r == 0)
			return -EPIPE;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (r < 0) {
			int rc = peer_wait(fd, POLLIN, deadline);

			if (rc < 0)
				return rc;
			continue;
		}
		if (c == '\n')
			return (int)len;
		if (len + 1 >= size)
			return -EMSGSIZE;
		buf[len++] = c;
		buf[len] = '\0';
	}
}

/* One direction's progress in a stream exchange. */
struct xfer {
	uint64_t tx_seed, rx_seed, len, tx_off, rx_off, rng;
	uint32_t tx_crc, rx_crc;
	bool tx_done, eof;
};

/* Random write sizes (1 .. 64 KiB) exercise every split of the stream. */
static int xfer_send(int fd, struct xfer *x, char *why, size_t whylen)
{
	uint64_t left = x->len - x->tx_off;
	size_t want;
	ssize_t w;

	x->rng ^= x->rng << 13;
	x->rng ^= x->rng >> 7;
	x->rng ^= x->rng << 17;
	want = 1 + (size_t)(x->rng % CHUNK_MAX);
	if (want > left)
		want = (size_t)left;
	peer_pattern(x->tx_seed, x->tx_off, tx_buf, want);
	w = send(fd, tx_buf, want, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN && errno != EINTR)
		return failf(why, whylen, "send after %llu of %llu bytes: %s",
			     (unsigned long long)x->tx_off, (unsigned long long)x->len,
			     peer_errname(errno));
	if (w > 0) {
		x->tx_crc = peer_crc32(x->tx_crc, tx_buf, (size_t)w);
		x->tx_off += (uint64_t)w;
	}
	if (x->tx_off == x->len) {
		x->tx_done = true;
		if (shutdown(fd, SHUT_WR) < 0)
			return failf(why, whylen, "shutdown(SHUT_WR): %s", peer_errname(errno));
	}
	return 0;
}

static int xfer_check(struct xfer *x, size_t n, char *why, size_t whylen)
{
	if (n > x->len - x->rx_off)
		return failf(why, whylen, "received %llu bytes, more than the %llu sent",
			     (unsigned long long)(x->rx_off + n), (unsigned long long)x->len);
	peer_pattern(x->rx_seed, x->rx_off, want_buf, n);
	if (memcmp(rx_buf, want_buf, n) != 0) {
		size_t i = 0;

		while (rx_buf[i] == want_buf[i])
			i++;
		return failf(why, whylen, "wrong byte at offset %llu: 0x%02x, expected 0x%02x",
			     (unsigned long long)(x->rx_off + i), rx_buf[i], want_buf[i]);
	}
	x->rx_crc = peer_crc32(x->rx_crc, rx_buf, n);
	x->rx_off += n;
	return 0;
}

static int xfer_recv(int fd, struct xfer *x, char *why, size_t whylen)
{
	ssize_t r = recv(fd, rx_buf, CHUNK_MAX, MSG_DONTWAIT);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r < 0)
		return failf(why, whylen, "recv after %llu of %llu bytes: %s",
			     (unsigned long long)x->rx_off, (unsigned long long)x->len,
			     peer_errname(errno));
	if (r == 0) {
		if (x->rx_off != x->len)
			return failf(why, whylen, "end of stream after %llu of %llu bytes",
				     (unsigned long long)x->rx_off, (unsigned long long)x->len);
		x->eof = true;
		return 0;
	}
	return xfer_check(x, (size_t)r, why, whylen);
}

static short xfer_events(const struct xfer *x, enum peer_order order)
{
	short ev = 0;

	if (!x->tx_done && (order != PEER_RX_FIRST || x->eof))
		ev |= POLLOUT;
	if (!x->eof && (order != PEER_TX_FIRST || x->tx_done))
		ev |= POLLIN;
	return ev;
}

static int xfer_timeout(const struct xfer *x, char *why, size_t whylen)
{
	return failf(why, whylen, "timed out: sent %llu, received %llu of %llu bytes%s",
		     (unsigned long long)x->tx_off, (unsigned long long)x->rx_off,
		     (unsigned long long)x->len,
		     x->rx_off == x->len ? " (no end of stream after the last byte)" : "");
}

int peer_stream_exchange(int fd, const struct peer_stream *st, int64_t deadline,
			 struct peer_result *r, char *why, size_t whylen)
{
	struct xfer x = { .tx_seed = st->tx_seed, .rx_seed = st->rx_seed, .len = st->len,
			  .rng = st->tx_seed | 1, .tx_done = st->len == 0 };
	int64_t start = tfe_now_ms();
	int rc = 0;

	if (x.tx_done && shutdown(fd, SHUT_WR) < 0)
		return failf(why, whylen, "shutdown(SHUT_WR): %s", peer_errname(errno));
	while (rc == 0 && !(x.tx_done && x.eof)) {
		short want = xfer_events(&x, st->order);
		int ev = peer_wait(fd, want, deadline);

		if (ev == -ETIMEDOUT)
			rc = xfer_timeout(&x, why, whylen);
		else if (ev < 0)
			rc = failf(why, whylen, "poll: %s", peer_errname(-ev));
		if (rc == 0 && (want & POLLIN) && (ev & (POLLIN | POLLHUP | POLLERR)))
			rc = xfer_recv(fd, &x, why, whylen);
		/* On HUP/ERR a send reports the reason instead of polling again. */
		if (rc == 0 && (want & POLLOUT) && (ev & (POLLOUT | POLLHUP | POLLERR)))
			rc = xfer_send(fd, &x, why, whylen);
	}
	*r = (struct peer_result){ .tx = x.tx_off, .rx = x.rx_off, .tx_crc = x.tx_crc,
				   .rx_crc = x.rx_crc, .ms = tfe_now_ms() - start };
	return rc;
}

/* SO_SNDTIMEO bounds the blocking send of a whole message by the deadline. */
static void set_send_timeout(int fd, int64_t deadline)
{
	int ms = tfe_remaining_ms(deadline);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (ms == 0)
		tv.tv_usec = 1000;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int peer_seq_send(int fd, uint64_t seed, bool reverse, int64_t deadline, struct peer_result *r,
		  char *why, size_t whylen)
{
	for (unsigned int i = 0; i < PEER_SEQ_COUNT; i++) {
		uint32_t len = peer_seq_len(reverse ? PEER_SEQ_COUNT - 1 - i : i);
		ssize_t w;

		peer_pattern(seed + i, 0, want_buf, len);
		set_send_timeout(fd, deadline);
		w = send(fd, want_buf, len, MSG_NOSIGNAL);
		if (w < 0)
			return failf(why, whylen, "message %u (%u bytes): send: %s", i, len,
				     peer_errname(errno));
		if ((size_t)w != len)
			return failf(why, whylen, "message %u: sent %zd of %u bytes", i, w, len);
		r->tx++;
		r->tx_crc = peer_crc32(r->tx_crc, want_buf, len);
	}
	return 0;
}

/* One message, whole (rx_buf is larger than any message we send);
 * MSG_TRUNC makes a longer one report its real length. */
static ssize_t seq_recv_one(int fd, int64_t deadline, int *msg_flags)
{
	struct iovec iov = { .iov_base = rx_buf, .iov_len = sizeof(rx_buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	for (;;) {
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (n >= 0 || (errno != EAGAIN && errno != EINTR))
			break;
		int rc = peer_wait(fd, POLLIN, deadline);

		if (rc < 0)
			return rc;
	}
	if (n < 0)
		return -errno;
	*msg_flags = mh.msg_flags;
	return n;
}

int peer_seq_recv(int fd, uint64_t seed, bool reverse, int64_t deadline, struct peer_result *r,
		  char *why, size_t whylen)
{
	for (unsigned int i = 0; i < PEER_SEQ_COUNT; i++) {
		uint32_t len = peer_seq_len(reverse ? PEER_SEQ_COUNT - 1 - i : i);
		int flags = 0;
		ssize_t n = seq_recv_one(fd, deadline, &flags);

		if (n < 0)
			return failf(why, whylen, "message %u (%u bytes expected): %s", i, len,
				     n == -ETIMEDOUT ? "timed out" : peer_errname((int)-n));
		if (n == 0)
			return failf(why, whylen, "end of stream before message %u", i);
		if ((flags & MSG_TRUNC) || (size_t)n != len)
			return failf(why, whylen, "message %u is %zd bytes%s, expected %u: boundary lost",
				     i, n, (flags & MSG_TRUNC) ? " (truncated)" : "", len);
		peer_pattern(seed + i, 0, want_buf, len);
		if (memcmp(rx_buf, want_buf, len) != 0)
			return failf(why, whylen, "message %u (%u bytes): wrong contents", i, len);
		r->rx++;
		r->rx_crc = peer_crc32(r->rx_crc, rx_buf, len);
	}
	return 0;
}

int peer_expect_eof(int fd, int64_t deadline, char *why, size_t whylen)
{
	for (;;) {
		ssize_t n = recv(fd, rx_buf, sizeof(rx_buf), MSG_DONTWAIT);

		if (n == 0)
			return 0;
		if (n > 0)
			return failf(why, whylen, "%zd unexpected bytes instead of end of stream", n);
		if (errno != EAGAIN && errno != EINTR)
			return failf(why, whylen, "%s instead of end of stream", peer_errname(errno));
		int rc = peer_wait(fd, POLLIN, deadline);

		if (rc == -ETIMEDOUT)
			return failf(why, whylen, "no end of stream (peer's close not seen)");
		if (rc < 0)
			return failf(why, whylen, "poll: %s", peer_errname(-rc));
	}
}
