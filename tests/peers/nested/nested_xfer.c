// SPDX-License-Identifier: MIT
/*
 * nested_xfer: the data checker of the nested full-stack test. One static
 * program runs at both levels: in L1 (the host side of vhost_vsock, from
 * the host root over 9p) and in L2 (the guest, from a busybox initramfs).
 *
 *   nested_xfer cid EXPECTED
 *   nested_xfer listen PORT BYTES [--wait S] [--timeout S] [--peer CID]
 *   nested_xfer connect CID PORT BYTES [--wait S] [--timeout S]
 *   nested_xfer selftest
 *
 * cid reads /dev/vsock's IOCTL_VM_SOCKETS_GET_LOCAL_CID. connect sends
 * BYTES of a seeded pseudo-random stream (seed: the port) and reads them
 * back; listen accepts one connection, checks the stream and echoes it. So
 * BYTES flow each way, every byte is checked against the generator where it
 * arrives, and both ends print a CRC-32 of what they sent and received for
 * the caller to compare across levels. --wait bounds accepting, or the
 * connect retries (the peer may still be booting); --timeout bounds the
 * transfer. One line per run: "xfer-ok: role=... in_crc=... out_crc=..."
 * or "xfer-fail: role=...: reason"; exit 0, 1 (check failed) or 2 (usage).
 *
 * Both directions are driven by one poll() loop on a non-blocking socket:
 * a writer that sent everything before reading would stall as soon as both
 * credit windows (256 KiB each in Linux) are full. The echo side keeps a
 * bounded ring, reads only while it has room, and writes only what it has.
 *
 * selftest runs both roles over a Unix socket pair with injected faults (a
 * flipped byte, a short echo, an extra byte, a silent peer), so a checker
 * that stopped checking fails here before it can pass a nested run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define CHUNK (64u * 1024u)
#define RING (256u * 1024u)
#define BYTES_MAX (1ull << 34)
#define RETRY_MS 200
#define EOF_WAIT_MS 5000

/* A fault the selftest injects into one role. */
enum fault { FAULT_NONE, FAULT_FLIP, FAULT_SHORT, FAULT_EXTRA, FAULT_MUTE };

struct xfer {
	const char *role;
	int fd;
	uint64_t total;
	uint64_t seed;
	uint64_t sent, recvd;
	uint32_t crc_in, crc_out;
	int64_t deadline;
	enum fault fault;
	uint64_t fault_at;
	char why[200];
};

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* Running CRC-32 (IEEE 802.3); start and end with the value 0. */
static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Byte @off of stream @seed: random access, so a retried send regenerates. */
static uint8_t stream_byte(uint64_t seed, uint64_t off)
{
	uint64_t z = seed * 0x9e3779b97f4a7c15ull + (off >> 3) + 1;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint8_t)(z >> ((off & 7) * 8));
}

static void stream_fill(uint64_t seed, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(seed, off + i);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static int failf(struct xfer *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(struct xfer *x, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x->why, sizeof(x->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* Check @n received bytes against the stream at x->recvd, then count them. */
static int take_bytes(struct xfer *x, const uint8_t *buf, size_t n)
{
	if (n > x->total - x->recvd)
		return failf(x, "peer sent more than %" PRIu64 " bytes", x->total);
	for (size_t i = 0; i < n; i++) {
		uint8_t want = stream_byte(x->seed, x->recvd + i);

		if (buf[i] != want)
			return failf(x, "byte %" PRIu64 ": got 0x%02x, want 0x%02x",
				     x->recvd + i, buf[i], want);
	}
	x->crc_in = crc_update(x->crc_in, buf, n);
	x->recvd += n;
	return 0;
}

/* Receive what is there. Return: bytes, 0 at EOF, -1 with x->why set. */
static ssize_t recv_some(struct xfer *x, uint8_t *buf, size_t cap)
{
	ssize_t n = recv(x->fd, buf, cap, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -2;
	if (n < 0)
		return failf(x, "recv after %" PRIu64 " bytes: %s", x->recvd, strerror(errno));
	if (n == 0 && x->recvd < x->total)
		return failf(x, "EOF after %" PRIu64 " of %" PRIu64 " bytes", x->recvd, x->total);
	return n;
}

/* Send up to @n bytes of @buf. Return: bytes sent (maybe 0), or -1. */
static ssize_t send_some(struct xfer *x, const uint8_t *buf, size_t n)
{
	ssize_t w = send(x->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (w < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (w < 0)
		return failf(x, "send after %" PRIu64 " bytes: %s", x->sent, strerror(errno));
	x->crc_out = crc_update(x->crc_out, buf, (size_t)w);
	x->sent += (uint64_t)w;
	return w;
}

/* poll() for @events within the deadline. Return: revents, or -1. */
static int wait_fd(struct xfer *x, short events)
{
	struct pollfd p = { .fd = x->fd, .events = events };
	int rc;

	do {
		rc = poll(&p, 1, left_ms(x->deadline));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return failf(x, "poll: %s", strerror(errno));
	if (rc == 0)
		return failf(x, "timed out: sent %" PRIu64 ", received %" PRIu64 " of %" PRIu64,
			     x->sent, x->recvd, x->total);
	return p.revents;
}

/* Connecting side: send the stream, read the echo, check both. */
static int run_sender(struct xfer *x)
{
	static uint8_t out[CHUNK], in[CHUNK];
	uint64_t limit = x->total + (x->fault == FAULT_EXTRA ? 1 : 0);

	while (x->recvd < x->total || x->sent < limit) {
		short ev = POLLIN;
		int re;

		if (x->sent < limit)
			ev |= POLLOUT;
		re = wait_fd(x, ev);
		if (re < 0)
			return -1;
		if ((re & POLLOUT) && x->sent < limit) {
			size_t n = limit - x->sent < CHUNK ? (size_t)(limit - x->sent) : CHUNK;

			stream_fill(x->seed, x->sent, out, n);
			if (x->fault == FAULT_FLIP && x->fault_at - x->sent < n)
				out[x->fault_at - x->sent] ^= 0x01;
			if (send_some(x, out, n) < 0)
				return -1;
		}
		if (re & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv_some(x, in, sizeof(in));

			if (n == -1 || (n > 0 && take_bytes(x, in, (size_t)n) < 0))
				return -1;
		}
	}
	/* Whatever already came in beyond the echo is an error too. */
	if (recv(x->fd, in, 1, MSG_DONTWAIT) > 0)
		return failf(x, "peer sent more than %" PRIu64 " bytes", x->total);
	return 0;
}

/* Echo side, read half: fill the ring's free space at its tail. */
static int echo_read(struct xfer *x, uint8_t *ring, size_t head, size_t *len)
{
	size_t tail = (head + *len) % RING;
	size_t room = RING - *len < RING - tail ? RING - *len : RING - tail;
	ssize_t n;

	/* Leave bytes beyond the stream in the socket for expect_eof(). */
	if (room > x->total - x->recvd)
		room = (size_t)(x->total - x->recvd);
	n = recv_some(x, ring + tail, room);

	if (n == -2 || n == 0)
		return 0;
	if (n < 0 || take_bytes(x, ring + tail, (size_t)n) < 0)
		return -1;
	if (x->fault == FAULT_FLIP && x->fault_at >= x->recvd - (uint64_t)n &&
	    x->fault_at < x->recvd)
		ring[tail + (x->fault_at - (x->recvd - (uint64_t)n))] ^= 0x01;
	*len += (size_t)n;
	return 0;
}

/* Echo side: check the stream as it arrives and send it back unchanged. */
static int run_echo(struct xfer *x)
{
	static uint8_t ring[RING];
	size_t head = 0, len = 0;
	uint64_t stop = x->fault == FAULT_SHORT ? x->total / 2 : x->total;

	while (x->sent < stop) {
		short ev = 0;
		int re;

		if (x->recvd < x->total && len < RING && x->fault != FAULT_MUTE)
			ev |= POLLIN;
		if (len > 0)
			ev |= POLLOUT;
		re = wait_fd(x, ev);
		if (re < 0)
			return -1;
		if ((re & (POLLIN | POLLHUP | POLLERR)) && (ev & POLLIN) &&
		    echo_read(x, ring, head, &len) < 0)
			return -1;
		if ((re & POLLOUT) && len > 0) {
			size_t n = len < RING - head ? len : RING - head;
			ssize_t w;

			if (stop - x->sent < n)
				n = (size_t)(stop - x->sent);
			w = send_some(x, ring + head, n);
			if (w < 0)
				return -1;
			head = (head + (size_t)w) % RING;
			len -= (size_t)w;
		}
		if ((re & (POLLHUP | POLLERR)) && !(ev & POLLIN) && !(re & POLLOUT))
			return failf(x, "peer hung up after %" PRIu64 " bytes", x->recvd);
	}
	return 0;
}

/* After the echo: the peer must close without sending anything more. */
static int expect_eof(struct xfer *x)
{
	uint8_t b[64];
	int64_t end = now_ms() + EOF_WAIT_MS;

	if (x->deadline > end)
		x->deadline = end;
	for (;;) {
		int re = wait_fd(x, POLLIN);
		ssize_t n;

		if (re < 0)
			return failf(x, "no EOF from the peer after the echo");
		n = recv(x->fd, b, sizeof(b), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n > 0)
			return failf(x, "peer sent more than %" PRIu64 " bytes", x->total);
		if (errno != EAGAIN && errno != EINTR)
			return failf(x, "recv after the echo: %s", strerror(errno));
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void report(const struct xfer *x, int rc, const char *peer, int64_t ms)
{
	if (rc == 0) {
		double mib = (double)x->total / (1 << 20);

		printf("xfer-ok: role=%s peer=%s bytes=%" PRIu64 " in_crc=%08" PRIx32
		       " out_crc=%08" PRIx32 " ms=%" PRId64 " mib_s=%.2f\n",
		       x->role, peer, x->total, x->crc_in, x->crc_out, ms,
		       ms > 0 ? mib * 1000.0 / (double)ms : 0.0);
	} else {
		printf("xfer-fail: role=%s peer=%s: %s\n", x->role, peer, x->why);
	}
	fflush(stdout);
}

/* -------------------------------------------------------------------- */
/* AF_VSOCK roles                                                        */
/* -------------------------------------------------------------------- */

static int vsock_accept_one(struct xfer *x, uint32_t port, int wait_s, char *peer, size_t n)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	int rc;

	if (lfd < 0)
		return failf(x, "socket(AF_VSOCK): %s", strerror(errno));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
		failf(x, "bind/listen port %" PRIu32 ": %s", port, strerror(errno));
		close(lfd);
		return -1;
	}
	do {
		rc = poll(&p, 1, wait_s * 1000);
	} while (rc < 0 && errno == EINTR);
	x->fd = rc > 0 ? accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC) : -1;
	if (x->fd < 0)
		failf(x, "no connection on port %" PRIu32 " within %d s%s%s", port, wait_s,
		      rc > 0 ? ": " : "", rc > 0 ? strerror(errno) : "");
	else
		snprintf(peer, n, "%" PRIu32 ":%" PRIu32, sa.svm_cid, sa.svm_port);
	close(lfd);
	return x->fd < 0 ? -1 : 0;
}

/* Connect, retrying until @wait_s: the peer may not be listening yet. */
static int vsock_connect_retry(struct xfer *x, uint32_t cid, uint32_t port, int wait_s)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	int64_t end = now_ms() + (int64_t)wait_s * 1000;
	unsigned int tries = 0;
	int err;

	do {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return failf(x, "socket(AF_VSOCK): %s", strerror(errno));
		tries++;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			x->fd = fd;
			return 0;
		}
		err = errno;
		close(fd);
		if (left_ms(end) > 0)
			usleep(RETRY_MS * 1000);
	} while (left_ms(end) > 0);
	return failf(x, "connect %" PRIu32 ":%" PRIu32 ": %s (%u tries in %d s)", cid, port,
		     strerror(err), tries, wait_s);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -1;
	*out = v;
	return 0;
}

struct opts {
	uint64_t cid, port, bytes, peer;
	int wait_s, timeout_s;
	bool have_peer;
};

/* Parse "[CID] PORT BYTES [--wait S] [--timeout S] [--peer CID]". */
static int parse_opts(int argc, char **argv, bool with_cid, struct opts *o)
{
	int i = 0;
	uint64_t v;

	*o = (struct opts){ .wait_s = 30, .timeout_s = 60 };
	if (with_cid && (i >= argc || parse_u64(argv[i++], UINT32_MAX, &o->cid) < 0))
		return -1;
	if (i + 2 > argc || parse_u64(argv[i], UINT32_MAX, &o->port) < 0 ||
	    parse_u64(argv[i + 1], BYTES_MAX, &o->bytes) < 0 || o->bytes == 0)
		return -1;
	for (i += 2; i + 1 < argc; i += 2) {
		if (parse_u64(argv[i + 1], 3600, &v) < 0)
			return -1;
		if (!strcmp(argv[i], "--wait"))
			o->wait_s = (int)v;
		else if (!strcmp(argv[i], "--timeout"))
			o->timeout_s = (int)v;
		else if (!strcmp(argv[i], "--peer") && !with_cid)
			o->have_peer = true, o->peer = v;
		else
			return -1;
	}
	return i == argc ? 0 : -1;
}

/* Once connected (rc 0): the transfer within @timeout_s, its report. */
static int transfer(struct xfer *x, int rc, bool echo, int timeout_s, const char *peer)
{
	int64_t t0 = now_ms();

	x->deadline = t0 + (int64_t)timeout_s * 1000;
	if (rc == 0 && set_nonblock(x->fd) < 0)
		rc = failf(x, "O_NONBLOCK: %s", strerror(errno));
	if (rc == 0)
		rc = echo ? run_echo(x) : run_sender(x);
	if (rc == 0 && echo)
		rc = expect_eof(x);
	report(x, rc, peer, now_ms() - t0);
	if (x->fd >= 0)
		close(x->fd);
	return rc == 0 ? 0 : 1;
}

static int cmd_listen(int argc, char **argv)
{
	struct opts o;
	struct xfer x = { .role = "listen", .fd = -1 };
	char peer[48] = "-";
	int rc;

	if (parse_opts(argc, argv, false, &o) < 0)
		return 2;
	x.total = o.bytes;
	x.seed = o.port;
	rc = vsock_accept_one(&x, (uint32_t)o.port, o.wait_s, peer, sizeof(peer));
	if (rc == 0 && o.have_peer && strtoull(peer, NULL, 10) != o.peer)
		rc = failf(&x, "connection from CID %s, want CID %" PRIu64, peer, o.peer);
	return transfer(&x, rc, true, o.timeout_s, peer);
}

static int cmd_connect(int argc, char **argv)
{
	struct opts o;
	struct xfer x = { .role = "connect", .fd = -1 };
	char peer[48];
	int rc;

	if (parse_opts(argc, argv, true, &o) < 0)
		return 2;
	snprintf(peer, sizeof(peer), "%" PRIu64 ":%" PRIu64, o.cid, o.port);
	x.total = o.bytes;
	x.seed = o.port;
	rc = vsock_connect_retry(&x, (uint32_t)o.cid, (uint32_t)o.port, o.wait_s);
	return transfer(&x, rc, false, o.timeout_s, peer);
}

static int cmd_cid(int argc, char **argv)
{
	uint64_t want;
	unsigned int cid = 0;
	int fd, rc;

	if (argc != 1 || parse_u64(argv[0], UINT32_MAX, &want) < 0)
		return 2;
	fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("xfer-fail: role=cid: open /dev/vsock: %s\n", strerror(errno));
		return 1;
	}
	rc = ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
	close(fd);
	if (rc < 0)
		printf("xfer-fail: role=cid: IOCTL_VM_SOCKETS_GET_LOCAL_CID: %s\n", strerror(errno));
	else if (cid != want)
		printf("xfer-fail: role=cid: local CID %u, want %" PRIu64 "\n", cid, want);
	else
		printf("xfer-ok: role=cid cid=%u\n", cid);
	return rc == 0 && cid == want ? 0 : 1;
}

/* -------------------------------------------------------------------- */
/* selftest: both roles over a Unix socket pair, with injected faults     */
/* -------------------------------------------------------------------- */

struct st_case {
	const char *name;
	enum fault echo_fault, send_fault;
	bool echo_ok, send_ok;
	const char *send_why; /* expected in the sender's reason, or NULL */
	const char *echo_why; /* expected in the echo's reason, or NULL */
};

/* What the echo child of a selftest case reports back. */
struct st_echo {
	uint32_t crc_in, crc_out;
	char why[200];
};

/* The echo end of a selftest case, in a child: report on @out_fd. */
static void __attribute__((noreturn))
st_echo_child(const struct st_case *c, int fd, int out_fd, uint64_t total)
{
	struct xfer e = { .role = "listen", .fd = fd, .total = total, .seed = 7,
			  .fault = c->echo_fault, .fault_at = total / 3 + 5,
			  .deadline = now_ms() + 3000 };
	struct st_echo r;
	int rc = set_nonblock(e.fd) < 0 ? -1 : run_echo(&e);

	if (rc == 0)
		rc = expect_eof(&e);
	r.crc_in = e.crc_in;
	r.crc_out = e.crc_out;
	memcpy(r.why, e.why, sizeof(r.why));
	if (write(out_fd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
	_exit(rc == 0 ? 0 : 1);
}

/* Judge a finished case. Return: 0 when both ends ended as expected. */
static int st_judge(const struct st_case *c, const struct xfer *s, int rc, bool echo_ok,
		    const struct st_echo *e, char *why, size_t n)
{
	if ((rc == 0) != c->send_ok)
		snprintf(why, n, "sender %s (%s)", rc == 0 ? "passed" : "failed", s->why);
	else if (echo_ok != c->echo_ok)
		snprintf(why, n, "echo side %s", echo_ok ? "passed" : "failed");
	else if (c->send_why && !strstr(s->why, c->send_why))
		snprintf(why, n, "sender's reason '%s' lacks '%s'", s->why, c->send_why);
	else if (c->echo_why && !strstr(e->why, c->echo_why))
		snprintf(why, n, "echo's reason '%s' lacks '%s'", e->why, c->echo_why);
	else if (rc == 0 && echo_ok && (e->crc_in != s->crc_out || e->crc_out != s->crc_in ||
					s->crc_in == 0))
		snprintf(why, n, "CRCs differ: sent %08x got %08x, echoed %08x got %08x",
			 s->crc_out, e->crc_in, e->crc_out, s->crc_in);
	else
		return 0;
	return -1;
}

/* Run one case: the sender here, the echo in a child. */
static int st_run(const struct st_case *c, uint64_t total, char *why, size_t n)
{
	struct xfer s = { .role = "connect", .total = total, .seed = 7,
			  .fault = c->send_fault, .fault_at = total / 3 + 5 };
	struct st_echo e = { .crc_in = 0 };
	int sv[2], cp[2], status = 0, rc;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe(cp) < 0) {
		snprintf(why, n, "socketpair/pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		close(cp[0]);
		st_echo_child(c, sv[1], cp[1], total);
	}
	close(sv[1]);
	close(cp[1]);
	s.fd = sv[0];
	/* generous for the cases that end by themselves: a sanitizer build on a loaded machine took over 3 s */
	s.deadline = now_ms() + (c->echo_fault == FAULT_MUTE ? 1000 : 60000);
	rc = pid < 0 || set_nonblock(s.fd) < 0 ? failf(&s, "fork/fcntl: %s", strerror(errno))
					       : run_sender(&s);
	close(s.fd);
	if (read(cp[0], &e, sizeof(e)) != sizeof(e))
		snprintf(e.why, sizeof(e.why), "no report from the echo child");
	close(cp[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	return st_judge(c, &s, rc, pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
			&e, why, n);
}

static int cmd_selftest(void)
{
	static const struct st_case cases[] = {
		{ "clean echo passes", FAULT_NONE, FAULT_NONE, true, true, NULL, NULL },
		{ "flipped echo byte is caught by the sender", FAULT_FLIP, FAULT_NONE, false, false,
		  "byte 1398106:", NULL },
		{ "flipped sent byte is caught by the echo", FAULT_NONE, FAULT_FLIP, false, false,
		  NULL, "byte 1398106:" },
		{ "short echo is caught", FAULT_SHORT, FAULT_NONE, false, false, NULL, NULL },
		{ "extra byte is caught", FAULT_NONE, FAULT_EXTRA, false, true, NULL,
		  "more than 4194304" },
		{ "silent peer times out", FAULT_MUTE, FAULT_NONE, false, false, "timed out", NULL },
	};
	unsigned int passed = 0, failed = 0;
	char why[300];

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = 0;
		if (st_run(&cases[i], 4u << 20, why, sizeof(why)) == 0) {
			printf("PASS: %s\n", cases[i].name);
			passed++;
		} else {
			printf("FAIL: %s: %s\n", cases[i].name, why);
			failed++;
		}
		fflush(stdout);
	}
	printf("nested_xfer selftest: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}

static int usage(void)
{
	fputs("usage: nested_xfer cid EXPECTED\n"
	      "       nested_xfer listen PORT BYTES [--wait S] [--timeout S] [--peer CID]\n"
	      "       nested_xfer connect CID PORT BYTES [--wait S] [--timeout S]\n"
	      "       nested_xfer selftest\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	int rc = 2;

	crc_init();
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && !strcmp(argv[1], "cid"))
		rc = cmd_cid(argc - 2, argv + 2);
	else if (argc >= 2 && !strcmp(argv[1], "listen"))
		rc = cmd_listen(argc - 2, argv + 2);
	else if (argc >= 2 && !strcmp(argv[1], "connect"))
		rc = cmd_connect(argc - 2, argv + 2);
	else if (argc == 2 && !strcmp(argv[1], "selftest"))
		rc = cmd_selftest();
	return rc == 2 ? usage() : rc;
}
