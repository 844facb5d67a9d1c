// SPDX-License-Identifier: MIT
/*
 * host_peer: the host end of the userspace-engine real-peer test. It sits
 * beside the daemon (vhost-user-vsock --uds-path UDS) and does what the
 * guest program asks over the control connection (peer_io.h): listen on
 * "UDS_<port>" for the guest's connections, connect through "UDS" /
 * "UDS_seqpacket" with "CONNECT <port>\n" to the guest's listeners, run the
 * shared exchanges and report what it saw.
 *
 *   host_peer --uds PATH [--ctrl-port N] [--timeout SECONDS]
 *
 * Listens on PATH_<ctrl-port> at once (the run script waits for that
 * listener before it starts QEMU), accepts one control connection and
 * serves it until BYE. Prints one "host: ..." line per event on stdout.
 * Exit status: 0 when BYE came and every session passed, 1 otherwise.
 *
 * Limits: one session at a time; every wait ends at the command's own
 * budget or the overall --timeout. Paths must fit sockaddr_un.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer_io.h"
#include "tfe.h"

#define ABSENT_LIMIT_MS 1000 /* a refused CONNECT must be closed this fast */

struct host {
	const char *uds;
	uint32_t ctrl_port;
	int64_t deadline;
	int ctrl;
	unsigned int ok, failed;
};

struct cmd {
	char verb[16], kind[16];
	uint32_t port;
	uint64_t seed, len;
	int ms;
	int64_t deadline;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("host: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void reply(struct host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct host *h, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = peer_vsend_line(h->ctrl, h->deadline, fmt, ap);
	va_end(ap);
	if (rc < 0)
		say("cannot answer the guest on the control connection: %s", peer_errname(-rc));
}

static int fail_result(struct host *h, const struct cmd *c, const char *why)
{
	h->failed++;
	say("%s %s %u: FAIL: %s", c->verb, c->kind, c->port, why);
	reply(h, "FAIL %s", why);
	return -1;
}

static void ok_result(struct host *h, const struct cmd *c, const struct peer_result *r,
		      const char *text)
{
	h->ok++;
	say("%s %s %u: ok: received %" PRIu64 " (crc %08x), sent %" PRIu64 " (crc %08x) in %"
	    PRId64 " ms; %s", c->verb, c->kind, c->port, r->rx, r->rx_crc, r->tx, r->tx_crc, r->ms,
	    text);
	reply(h, "OK %" PRIu64 " %08x %" PRIu64 " %08x %" PRId64 " %s", r->rx, r->rx_crc, r->tx,
	      r->tx_crc, r->ms, text);
}

/* The host's half of an exchange on a connected socket. */
static int session(const struct cmd *c, int fd, struct peer_result *r, char *why, size_t n)
{
	uint64_t hseed = peer_host_seed(c->seed);
	int64_t start = tfe_now_ms();

	*r = (struct peer_result){ 0 };
	if (strcmp(c->kind, "stream") == 0 || strcmp(c->kind, "halfclose") == 0) {
		struct peer_stream st = { .tx_seed = hseed, .rx_seed = c->seed, .len = c->len };

		/* halfclose: the end that connected sends and shuts down first. */
		if (strcmp(c->kind, "halfclose") == 0)
			st.order = strcmp(c->verb, "ACCEPT") == 0 ? PEER_RX_FIRST : PEER_TX_FIRST;
		return peer_stream_exchange(fd, &st, c->deadline, r, why, n);
	}
	if (peer_seq_recv(fd, c->seed, false, c->deadline, r, why, n) < 0 ||
	    peer_seq_send(fd, hseed, true, c->deadline, r, why, n) < 0 ||
	    peer_expect_eof(fd, c->deadline, why, n) < 0)
		return -1;
	r->ms = tfe_now_ms() - start;
	return 0;
}

/* Accept on @l, unless the guest gives up first (a line on the control
 * connection: it could not connect). Return: the socket or -1 (@why). */
static int accept_or_abort(struct host *h, const struct cmd *c, int l, char *why, size_t n)
{
	struct pollfd p[2] = { { .fd = l, .events = POLLIN }, { .fd = h->ctrl, .events = POLLIN } };
	char line[PEER_LINE_MAX];
	int rc, fd;

	do {
		rc = poll(p, 2, tfe_remaining_ms(c->deadline));
	} while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		snprintf(why, n, "no connection from the daemon within %d ms", c->ms);
		return -1;
	}
	if (rc > 0 && p[1].revents) {
		rc = peer_recv_line(h->ctrl, line, sizeof(line), c->deadline);
		snprintf(why, n, "the guest gave up: %.200s", rc >= 0 ? line : "control connection lost");
		return -1;
	}
	fd = rc < 0 ? -1 : accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		snprintf(why, n, "accept: %s", peer_errname(errno));
	return fd;
}

static int do_accept(struct host *h, const struct cmd *c)
{
	int type = strcmp(c->kind, "seqpacket") == 0 ? SOCK_SEQPACKET : SOCK_STREAM;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 16], why[PEER_LINE_MAX - 8];
	struct peer_result r;
	int l, fd, rc;

	snprintf(path, sizeof(path), "%s_%u", h->uds, c->port);
	l = peer_unix(path, type, true);
	if (l < 0) {
		snprintf(why, sizeof(why), "cannot listen on %s: %s", path, peer_errname(-l));
		return fail_result(h, c, why);
	}
	reply(h, "READY");
	fd = accept_or_abort(h, c, l, why, sizeof(why));
	close(l);
	(void)unlink(path);
	if (fd < 0)
		return fail_result(h, c, why);
	rc = session(c, fd, &r, why, sizeof(why));
	close(fd);
	if (rc < 0)
		return fail_result(h, c, why);
	ok_result(h, c, &r, "accepted");
	return 0;
}

/* SEQPACKET: the answer is one message. Return: 0 or a negative errno. */
static int recv_ok_msg(int fd, char *okline, size_t size, int64_t deadline)
{
	int rc = peer_wait(fd, POLLIN, deadline);
	ssize_t got;

	if (rc < 0)
		return rc;
	got = recv(fd, okline, size - 1, MSG_DONTWAIT);
	if (got < 0)
		return -errno;
	okline[got] = '\0';
	if (got == 0)
		return -EPIPE;
	if (okline[got - 1] != '\n')
		return -EBADMSG;
	okline[got - 1] = '\0';
	return 0;
}

/* Hybrid vsock handshake: "CONNECT <port>\n" in, "OK <n>\n" out (one
 * message each on a SEQPACKET socket). Return: 0 (@okline set) or -1. */
static int handshake(const struct cmd *c, int fd, bool seq, char *okline, size_t size,
		     char *why, size_t n)
{
	char line[32];
	int len = snprintf(line, sizeof(line), "CONNECT %u\n", c->port), rc;
	size_t digits;

	rc = peer_send_all(fd, line, (size_t)len, c->deadline);
	if (rc == 0 && seq)
		rc = recv_ok_msg(fd, okline, size, c->deadline);
	else if (rc == 0)
		rc = peer_recv_line(fd, okline, size, c->deadline);
	if (rc < 0) {
		snprintf(why, n, "no 'OK <port>' answer to CONNECT %u: %s%s%.40s", c->port,
			 rc == -EPIPE ? "socket closed" : rc == -EBADMSG ? "no newline"
			 : peer_errname(-rc), okline[0] ? ", got: " : "", okline);
		return -1;
	}
	/* strspn() only once "OK " is known to be there, not past the NUL. */
	digits = strncmp(okline, "OK ", 3) == 0 ? strspn(okline + 3, "0123456789") : 0;
	if (digits == 0 || okline[3 + digits] != '\0') {
		snprintf(why, n, "bad answer to CONNECT %u: '%.40s'", c->port, okline);
		return -1;
	}
	return 0;
}

/* A line the daemon must refuse by closing the host socket promptly and
 * sending nothing: CONNECT to a guest port nobody listens on (PROTOCOLS.md
 * §4.1 step 4, kind "absent"), or a line that is no CONNECT line at all
 * (kind "garbage"). */
static int refused(const struct cmd *c, int fd, struct peer_result *r, char *why, size_t n)
{
	bool garbage = strcmp(c->kind, "garbage") == 0;
	char line[32], buf[64];
	int len = garbage ? snprintf(line, sizeof(line), "CONNECT -%u\n", c->port)
			  : snprintf(line, sizeof(line), "CONNECT %u\n", c->port);
	int64_t start = tfe_now_ms(), limit = start + ABSENT_LIMIT_MS;
	const char *what = garbage ? "a malformed CONNECT line" : "CONNECT to a port without listener";
	ssize_t got;
	int rc;

	*r = (struct peer_result){ 0 };
	rc = peer_send_all(fd, line, (size_t)len, c->deadline);
	if (rc < 0) {
		snprintf(why, n, "sending CONNECT: %s", peer_errname(-rc));
		return -1;
	}
	rc = peer_wait(fd, POLLIN, limit < c->deadline ? limit : c->deadline);
	got = rc < 0 ? -1 : recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	r->ms = tfe_now_ms() - start;
	if (rc == -ETIMEDOUT) {
		snprintf(why, n, "socket still open %d ms after %s", ABSENT_LIMIT_MS, what);
		return -1;
	}
	if (got > 0) {
		buf[got] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		snprintf(why, n, "got '%.40s' for %s", buf, what);
		return -1;
	}
	if (got < 0 && errno != ECONNRESET) {
		snprintf(why, n, "%s instead of a close", peer_errname(rc < 0 ? -rc : errno));
		return -1;
	}
	return 0;
}

static int do_dial(struct host *h, const struct cmd *c)
{
	bool seq = strcmp(c->kind, "seqpacket") == 0;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 16], why[PEER_LINE_MAX - 8];
	char okline[PEER_LINE_MAX / 4] = "", text[PEER_LINE_MAX / 2];
	struct peer_result r;
	int fd, rc;

	snprintf(path, sizeof(path), "%s%s", h->uds, seq ? PEER_SEQ_SUFFIX : "");
	fd = peer_unix(path, seq ? SOCK_SEQPACKET : SOCK_STREAM, false);
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot connect to %s: %s", path, peer_errname(-fd));
		return fail_result(h, c, why);
	}
	if (strcmp(c->kind, "absent") == 0 || strcmp(c->kind, "garbage") == 0) {
		rc = refused(c, fd, &r, why, sizeof(why));
		snprintf(text, sizeof(text), "closed after %" PRId64 " ms without an answer", r.ms);
	} else {
		rc = handshake(c, fd, seq, okline, sizeof(okline), why, sizeof(why));
		if (rc == 0)
			rc = session(c, fd, &r, why, sizeof(why));
		snprintf(text, sizeof(text), "answer '%s'", okline);
	}
	close(fd);
	if (rc < 0)
		return fail_result(h, c, why);
	ok_result(h, c, &r, text);
	return 0;
}

static bool valid_kind(const struct cmd *c)
{
	bool dial = strcmp(c->verb, "DIAL") == 0;

	return (strcmp(c->kind, "stream") == 0 || strcmp(c->kind, "seqpacket") == 0 ||
		strcmp(c->kind, "halfclose") == 0 ||
		(dial && (strcmp(c->kind, "absent") == 0 || strcmp(c->kind, "garbage") == 0))) &&
	       c->ms > 0 && c->ms <= 120000;
}

/* One control line. Return: 1 after BYE, 0 to go on. */
static int serve_line(struct host *h, const char *line)
{
	struct cmd c = { 0 };

	if (strcmp(line, "BYE") == 0) {
		reply(h, "BYE %u %u", h->ok, h->failed);
		return 1;
	}
	if (sscanf(line, "%15s %15s %" SCNu32 " %" SCNu64 " %" SCNu64 " %d", c.verb, c.kind,
		   &c.port, &c.seed, &c.len, &c.ms) != 6 || !valid_kind(&c) ||
	    (strcmp(c.verb, "ACCEPT") != 0 && strcmp(c.verb, "DIAL") != 0)) {
		h->failed++;
		say("bad command from the guest: '%s'", line);
		reply(h, "FAIL bad command");
		return 0;
	}
	say("guest asks: %s", line);
	c.deadline = tfe_now_ms() + c.ms;
	if (c.deadline > h->deadline)
		c.deadline = h->deadline;
	if (strcmp(c.verb, "ACCEPT") == 0)
		do_accept(h, &c);
	else
		do_dial(h, &c);
	return 0;
}

static int serve(struct host *h, int l)
{
	char line[PEER_LINE_MAX];
	int rc = peer_wait(l, POLLIN, h->deadline);

	if (rc < 0) {
		say("no control connection from the guest: %s",
		    rc == -ETIMEDOUT ? "timed out" : peer_errname(-rc));
		return 1;
	}
	h->ctrl = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (h->ctrl < 0) {
		say("accept: %s", peer_errname(errno));
		return 1;
	}
	say("guest connected to the control port %u", h->ctrl_port);
	for (;;) {
		rc = peer_recv_line(h->ctrl, line, sizeof(line), h->deadline);
		if (rc < 0) {
			say("control connection ended without BYE: %s",
			    rc == -EPIPE ? "closed" : peer_errname(-rc));
			return 1;
		}
		if (serve_line(h, line) == 1)
			break;
	}
	say("done: %u sessions passed, %u failed", h->ok, h->failed);
	return h->failed ? 1 : 0;
}

static int parse_args(struct host *h, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uds", required_argument, NULL, 'u' },
		{ "ctrl-port", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ 0 },
	};
	long timeout = 100;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'u')
			h->uds = optarg;
		else if (o == 'c')
			h->ctrl_port = (uint32_t)strtoul(optarg, NULL, 10);
		else if (o == 't')
			timeout = strtol(optarg, NULL, 10);
		else
			return -1;
	}
	if (!h->uds || optind != argc || timeout <= 0 || timeout > 3600)
		return -1;
	h->deadline = tfe_now_ms() + timeout * 1000;
	return 0;
}

int main(int argc, char **argv)
{
	struct host h = { .ctrl_port = PEER_CTRL_PORT, .ctrl = -1 };
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	int l, status;

	if (parse_args(&h, argc, argv) < 0) {
		fprintf(stderr, "usage: host_peer --uds PATH [--ctrl-port N] [--timeout SECONDS]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(path, sizeof(path), "%s_%u", h.uds, h.ctrl_port);
	l = peer_unix(path, SOCK_STREAM, true);
	if (l < 0) {
		say("cannot listen on %s: %s", path, peer_errname(-l));
		return 1;
	}
	say("listening for the guest's control connection on %s", path);
	status = serve(&h, l);
	close(l);
	(void)unlink(path);
	if (h.ctrl >= 0)
		close(h.ctrl);
	return status;
}
