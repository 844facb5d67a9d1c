// SPDX-License-Identifier: MIT
/*
 * restart_guest: the guest end of run-restart.sh, which restarts the
 * daemon under a running QEMU guest. Runs from a busybox initramfs
 * (static), opening AF_VSOCK only inside that guest.
 *
 *   restart_guest old --round N --ctrl-port P --port Q [--hang SECONDS]
 *       Holds two connections to the host helper (host_peer, peer_io.h):
 *       its control connection, left idle (blocked in a read, as an
 *       application waiting for a request would be), and a busy one
 *       (ACCEPT stream on Q) where the host streams its pattern to us and
 *       we trickle ours back, 1 KiB every 100 ms, checking every byte.
 *       Once data flowed both ways it prints "restart: ready N" (the run
 *       script then restarts the daemon) and reports what becomes of each
 *       connection, as soon as it happens:
 *         restart: round N busy: <ECONNRESET|EOF|...> after T ms
 *         restart: round N idle: ...
 *       or "hung (nothing in T ms)" when the --hang bound passes first.
 *   restart_guest probe --round N [--limit SECONDS]
 *       Connects to host port 5999 (no listener there) until the device
 *       answers: an RST (ECONNRESET) means a back end serves the rings again;
 *       ETIMEDOUT means nobody does. Prints "restart: round N device back
 *       after T ms" or "... device not back ...".
 *
 * Exit status: 0 when the mode did its job (old: ready was reached; probe:
 * the device answered), 1 otherwise. What the connections saw is a fact
 * for the run script to judge, not this program's verdict.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "../user/peer_io.h"
#include "tfe.h"

#define PROBE_PORT 5999u
#define TRICKLE_BYTES 1024u
#define TRICKLE_MS 100
/* Enough flowed both ways to call the connection busy. */
#define READY_RX (256u * 1024)
#define READY_TX (4u * 1024)
#define STREAM_LEN (1ull << 40) /* never reached: the daemon dies first */
#define SETUP_MS 20000

struct opts {
	const char *mode;
	unsigned int round, hang_s, limit_s;
	uint32_t ctrl_port, port;
};

/* One connection's fate after the restart. */
struct fate {
	const char *name;
	bool done;
};

/* The busy connection's stream positions. */
struct busy {
	int fd;
	uint64_t seed, hseed, tx, rx;
	int64_t next_tx;
};

static int vsock_connect(uint32_t port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port,
				  .svm_cid = VMADDR_CID_HOST };

	return peer_socket(&sa, sizeof(sa), SOCK_STREAM, false);
}

static void say(const struct opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct opts *o, const char *fmt, ...)
{
	va_list ap;

	printf("restart: round %u ", o->round);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Report @f's end once, in the words the run script greps. */
static void fate_report(const struct opts *o, struct fate *f, const char *what, int64_t since)
{
	if (f->done)
		return;
	f->done = true;
	say(o, "%s: %s after %" PRId64 " ms", f->name, what, tfe_now_ms() - since);
}

/* Send the next trickle of our pattern. Return: 0 or -errno. */
static int busy_send(struct busy *b)
{
	uint8_t buf[TRICKLE_BYTES];
	ssize_t n;

	if (tfe_now_ms() < b->next_tx)
		return 0;
	peer_pattern(b->seed, b->tx, buf, sizeof(buf));
	n = send(b->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	b->tx += (uint64_t)n;
	b->next_tx = tfe_now_ms() + TRICKLE_MS;
	return 0;
}

/* Take what the host sent and check it. Return: 0, -EPIPE at EOF,
 * -EBADMSG on wrong bytes, or -errno. */
static int busy_recv(struct busy *b)
{
	uint8_t buf[16384], want[sizeof(buf)];
	ssize_t n = recv(b->fd, buf, sizeof(buf), MSG_DONTWAIT);

	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	peer_pattern(b->hseed, b->rx, want, (size_t)n);
	if (memcmp(buf, want, (size_t)n) != 0)
		return -EBADMSG;
	b->rx += (uint64_t)n;
	return 0;
}

static const char *fate_words(int err)
{
	return err == EPIPE ? "EOF" : err == EBADMSG ? "wrong bytes" : peer_errname(err);
}

/* An idle connection has nothing to read; anything it gets is its end. */
static int idle_event(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	if (n == 0)
		return -EPIPE;
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return -EBADMSG;
}

/* Open the busy connection through the control connection @ctrl. */
static int busy_open(const struct opts *o, int ctrl, struct busy *b)
{
	int64_t deadline = tfe_now_ms() + SETUP_MS;
	char line[PEER_LINE_MAX];
	int rc;

	if (getrandom(&b->seed, sizeof(b->seed), 0) != sizeof(b->seed))
		b->seed = (uint64_t)tfe_now_ms();
	b->hseed = peer_host_seed(b->seed);
	rc = peer_send_line(ctrl, deadline, "ACCEPT stream %u %" PRIu64 " %llu %d", o->port,
			    b->seed, STREAM_LEN, 120000);
	if (rc == 0)
		rc = peer_recv_line(ctrl, line, sizeof(line), deadline);
	if (rc >= 0 && strcmp(line, "READY") != 0)
		rc = -EPROTO;
	if (rc >= 0)
		rc = b->fd = vsock_connect(o->port);
	return rc < 0 ? rc : 0;
}

/* Until both connections ended or the hang bound: poll them, keep the
 * busy one flowing, print "ready" once it did. Return: 0 or -ETIMEDOUT
 * when it never got busy. */
static int watch(const struct opts *o, int ctrl, struct busy *b)
{
	struct fate busy = { .name = "busy" }, idle = { .name = "idle" };
	int64_t ready = 0, setup_end = tfe_now_ms() + SETUP_MS;

	while (!busy.done || !idle.done) {
		struct pollfd p[2] = { { .fd = b->fd, .events = POLLIN }, { .fd = ctrl, .events = POLLIN } };
		int64_t now = tfe_now_ms();
		int rc;

		if (!ready && now > setup_end)
			return -ETIMEDOUT;
		if (ready && now > ready + (int64_t)o->hang_s * 1000) {
			fate_report(o, &busy, "hung (no error)", ready);
			fate_report(o, &idle, "hung (no error)", ready);
			break;
		}
		if (poll(p, 2, TRICKLE_MS / 2) < 0 && errno != EINTR)
			return -errno;
		rc = busy.done ? 0 : busy_send(b);
		if (rc == 0 && !busy.done && (p[0].revents || ready == 0))
			rc = busy_recv(b);
		if (rc < 0 && !ready)
			return rc;
		if (rc < 0)
			fate_report(o, &busy, fate_words(-rc), ready);
		rc = idle.done || !p[1].revents ? 0 : idle_event(ctrl);
		if (rc < 0 && !ready)
			return rc;
		if (rc < 0)
			fate_report(o, &idle, fate_words(-rc), ready);
		if (!ready && b->rx >= READY_RX && b->tx >= READY_TX) {
			ready = tfe_now_ms();
			say(o, "ready: busy connection %" PRIu64 " bytes in, %" PRIu64 " out", b->rx,
			    b->tx);
		}
	}
	return 0;
}

static int mode_old(const struct opts *o)
{
	struct busy b = { .fd = -1 };
	int ctrl = vsock_connect(o->ctrl_port), rc;

	rc = ctrl < 0 ? ctrl : busy_open(o, ctrl, &b);
	if (rc == 0)
		rc = watch(o, ctrl, &b);
	if (rc < 0)
		say(o, "setup failed: %s (host ports %u, %u)", peer_errname(-rc), o->ctrl_port,
		    o->port);
	if (b.fd >= 0)
		close(b.fd);
	if (ctrl >= 0)
		close(ctrl);
	return rc < 0;
}

static int mode_probe(const struct opts *o)
{
	int64_t start = tfe_now_ms(), end = start + (int64_t)o->limit_s * 1000;
	int fd = -ETIMEDOUT;

	while (tfe_now_ms() < end) {
		fd = vsock_connect(PROBE_PORT);
		if (fd >= 0)
			close(fd); /* someone listens there: the device works too */
		if (fd >= 0 || fd == -ECONNRESET) {
			say(o, "device back after %" PRId64 " ms (connect answered %s)",
			    tfe_now_ms() - start, fd >= 0 ? "by a listener" : "RST");
			return 0;
		}
		usleep(200 * 1000);
	}
	say(o, "device not back after %" PRId64 " ms (last connect: %s)", tfe_now_ms() - start,
	    peer_errname(-fd));
	return 1;
}

static int parse_args(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "round", required_argument, NULL, 'r' },
		{ "ctrl-port", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "hang", required_argument, NULL, 'h' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	if (argc < 2)
		return -1;
	o->mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		unsigned long v = c == '?' ? 0 : strtoul(optarg, NULL, 10);

		if (c == '?' || (v == 0 && c != 'r') || v > 65535)
			return -1;
		if (c == 'r')
			o->round = (unsigned int)v;
		else if (c == 'c')
			o->ctrl_port = (uint32_t)v;
		else if (c == 'p')
			o->port = (uint32_t)v;
		else if (c == 'h')
			o->hang_s = (unsigned int)v;
		else
			o->limit_s = (unsigned int)v;
	}
	if (optind != argc)
		return -1;
	if (strcmp(o->mode, "old") == 0)
		return o->ctrl_port && o->port ? 0 : -1;
	return strcmp(o->mode, "probe") == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o = { .hang_s = 20, .limit_s = 30 };

	if (parse_args(&o, argc, argv) < 0) {
		fprintf(stderr, "usage: restart_guest old --round N --ctrl-port P --port Q "
			"[--hang SECONDS]\n       restart_guest probe --round N [--limit SECONDS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return strcmp(o.mode, "old") == 0 ? mode_old(&o) : mode_probe(&o);
}
