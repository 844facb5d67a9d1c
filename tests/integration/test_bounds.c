// SPDX-License-Identifier: MIT
/*
 * Resource bounds of the userspace engine, each at its edge: exactly the
 * limit works, one more is refused cleanly (logged, nothing else
 * disturbed), and a freed slot can be taken again.
 *
 *   connections per VM      --max-connections / max-connections= / max_connections:
 *   pending host handshakes --max-pending-connects (+ _pending_ keys)
 *   CONNECT line time       --handshake-timeout-ms
 *   guest's answer time     --connect-timeout-ms
 *   bytes held per conn.    --tx-buffer-size (the credit the guest gets)
 *   CONNECT line length     32 bytes, newline included (fixed)
 *
 * Plus the option parsers at their edges (the largest value starts, one
 * more is a usage error, exit 2) and one value set through each of the
 * three paths (option, --vm key, YAML key), read back from the daemon's
 * "limits:" line.
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_run.h"
#include "proc_watch.h"
#include "user_harness.h"

#define GCID 3u
#define MAX_CONNS 8u
#define MAX_PENDING 4u
/*
 * The timeouts, and how late past them a close may come (the daemon checks
 * deadlines on a 250 ms tick). A daemon under a wrapper (valgrind) can lose
 * the CPU for seconds: then every time is five times longer.
 */
#define HANDSHAKE_MS (1000 * time_scale())
#define CONNECT_MS (600 * time_scale())
#define TICK_SLACK_MS (1300 * time_scale()) /* tick + a loaded machine, still below the defaults */
#define BUF 4096u
#define HOST_PORT 5000u
#define GUEST_PORT 6000u
#define WAIT_MS 15000 /* an upper bound only: a loaded machine took over 5 s to log a start */
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)

static int time_scale(void)
{
	const char *w = getenv("VUV_DAEMON_WRAPPER");

	return w && *w ? 5 : 1;
}

/*
 * Not much later than the limit. Under a wrapper (valgrind, ~20x slower, on a
 * shared machine) only "closed, and not early" is checked: those runs look
 * for memory errors, the plain and sanitizer runs check the timing.
 */
static bool within_slack(long ms, long limit)
{
	return time_scale() > 1 ? ms > 0 : ms <= limit + TICK_SLACK_MS;
}

struct fx {
	struct uh h;
	struct uh_guest g, g2;
	bool running;
};

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	uh_watchdog(120);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	uh_guest_close(&f->g);
	uh_guest_close(&f->g2);
	if (f->running)
		uh_stop(&f->h);
	f->running = false;
	uh_watchdog(0);
	return 0;
}

static void start(struct fx *f, const struct uh_vm_spec *specs, unsigned int n, bool single,
		  const char *const *extra)
{
	assert_int_equal(uh_start(&f->h, specs, n, single, extra), 0);
	f->running = true;
	assert_int_equal(uh_guest_open(&f->g, &f->h, 0, F_EVENT_IDX, NULL), 0);
}

static void finish(struct fx *f)
{
	assert_true(uh_alive(&f->h));
	uh_guest_close(&f->g);
	uh_guest_close(&f->g2);
	f->running = false;
	assert_int_equal(uh_stop(&f->h), 0);
}

/* A host client for guest port @port that got its OK. */
static int host_to_guest(struct fx *f, struct uh_guest *g, unsigned int vm, uint32_t port,
			 struct tfe_vsock_conn **c)
{
	int fd = uh_host_connect(f->h.uds[vm], port, SOCK_STREAM);

	if (fd < 0)
		return fd;
	if (tfe_vsock_accept(&g->vs, port, WAIT_MS, c) != 0 || uh_host_wait_ok(fd, g, WAIT_MS) != 0) {
		close(fd);
		return -ECONNREFUSED;
	}
	return fd;
}

/* ---- connections per VM ---- */

/* Seven from the guest, the eighth from the host: the cap counts both. */
static void fill_cap(struct fx *f, int lfd, struct tfe_vsock_conn **c, int *fds)
{
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	for (unsigned int i = 0; i < MAX_CONNS - 1; i++) {
		assert_int_equal(tfe_vsock_connect(&f->g.vs, 2, HOST_PORT, 40000 + i, WAIT_MS, &c[i]), 0);
		fds[i] = uh_accept(lfd, &f->g, WAIT_MS);
		assert_true(fds[i] >= 0);
	}
	fds[MAX_CONNS - 1] = host_to_guest(f, &f->g, 0, GUEST_PORT, &c[MAX_CONNS - 1]);
	assert_true(fds[MAX_CONNS - 1] >= 0);
}

static void test_max_connections(void **state)
{
	const struct uh_vm_spec specs[] = {
		{ .cid = GCID, .keys = "max-connections=8" },
		{ .cid = 4 },
	};
	const char *const extra[] = { "--log-level", "debug", NULL };
	struct tfe_vsock_conn *c[MAX_CONNS + 1], *hc;
	struct fx *f = *state;
	int lfd, fds[MAX_CONNS], hfd;

	start(f, specs, 2, false, extra);
	lfd = uh_host_listen(f->h.uds[0], HOST_PORT, SOCK_STREAM);
	assert_true(lfd >= 0);
	fill_cap(f, lfd, c, fds);
	/* one more either way: RST to the guest, the host socket closed without OK */
	assert_int_equal(tfe_vsock_connect(&f->g.vs, 2, HOST_PORT, 40100, WAIT_MS, &c[MAX_CONNS]),
			 -ECONNREFUSED);
	assert_int_equal(uh_wait_log(&f->h, "connection cap 8 reached", 1, WAIT_MS), 0);
	hfd = uh_host_connect(f->h.uds[0], GUEST_PORT, SOCK_STREAM);
	assert_true(hfd >= 0);
	assert_true(uh_host_closed(hfd, &f->g, WAIT_MS));
	close(hfd);
	assert_int_equal(uh_wait_log(&f->h, "closed: Device or resource busy", 1, WAIT_MS), 0);
	/* the other VM has its own cap */
	assert_int_equal(uh_guest_open(&f->g2, &f->h, 1, F_EVENT_IDX, NULL), 0);
	assert_int_equal(tfe_vsock_listen(&f->g2.vs, GUEST_PORT), 0);
	hfd = host_to_guest(f, &f->g2, 1, GUEST_PORT, &hc);
	assert_true(hfd >= 0);
	close(hfd);
	/* the full ones still carry data; freeing one makes room for exactly one */
	assert_int_equal(uh_guest_to_host(&f->g, c[0], fds[0], 65536, 1, 10000), 0);
	assert_int_equal(tfe_vsock_close(&f->g.vs, c[0], WAIT_MS), 0);
	assert_true(uh_host_closed(fds[0], &f->g, WAIT_MS));
	close(fds[0]);
	assert_int_equal(tfe_vsock_connect(&f->g.vs, 2, HOST_PORT, 40200, WAIT_MS, &c[0]), 0);
	fds[0] = uh_accept(lfd, &f->g, WAIT_MS);
	assert_true(fds[0] >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g.vs, 2, HOST_PORT, 40201, WAIT_MS, &c[MAX_CONNS]),
			 -ECONNREFUSED);
	for (unsigned int i = 0; i < MAX_CONNS; i++)
		close(fds[i]);
	close(lfd);
	finish(f);
}

/* ---- pending handshakes and their time ---- */

static int raw_client(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	return fd;
}

static void send_line(int fd, const char *line)
{
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
}

static void test_max_pending(void **state)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	const char *const extra[] = { "--max-pending-connects", "4", "--log-level", "debug", NULL };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int fds[MAX_PENDING], extra_fd;
	char line[32];

	start(f, &spec, 1, true, extra);
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	for (unsigned int i = 0; i < MAX_PENDING; i++) {
		fds[i] = raw_client(f->h.uds[0]);
		assert_true(fds[i] >= 0);
	}
	/* the fifth is taken and closed at once; the four are still waiting */
	extra_fd = raw_client(f->h.uds[0]);
	assert_true(extra_fd >= 0);
	assert_true(uh_host_closed(extra_fd, NULL, WAIT_MS));
	close(extra_fd);
	assert_int_equal(uh_wait_log(&f->h, "4 hybrid handshakes pending", 1, WAIT_MS), 0);
	snprintf(line, sizeof(line), "CONNECT %u\n", GUEST_PORT);
	for (unsigned int i = 0; i < MAX_PENDING; i++) {
		send_line(fds[i], line);
		assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, WAIT_MS, &c), 0);
		assert_int_equal(uh_host_wait_ok(fds[i], &f->g, WAIT_MS), 0);
	}
	/* all four finished: room again for four */
	for (unsigned int i = 0; i < MAX_PENDING; i++) {
		close(fds[i]);
		fds[i] = raw_client(f->h.uds[0]);
		assert_true(fds[i] >= 0);
	}
	send_line(fds[0], line);
	assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, WAIT_MS, &c), 0);
	assert_int_equal(uh_host_wait_ok(fds[0], &f->g, WAIT_MS), 0);
	for (unsigned int i = 0; i < MAX_PENDING; i++)
		close(fds[i]);
	finish(f);
}

/* Milliseconds until @fd's peer closes it, running nothing else meanwhile. */
/*
 * From @t0, taken before the connection was made: the daemon's clock starts
 * later, so "not early" holds however long the steps in between took.
 */
static long ms_to_close(int fd, int64_t t0, int limit_ms)
{
	if (!uh_host_closed(fd, NULL, limit_ms))
		return -1;
	return (long)(tfe_now_ms() - t0);
}

static void test_handshake_timeout(void **state)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	char limit[16];
	const char *const extra[] = { "--handshake-timeout-ms", limit, "--log-level", "debug", NULL };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	char line[32];
	int64_t t0;
	long ms;
	int slow, silent;

	snprintf(limit, sizeof(limit), "%d", HANDSHAKE_MS);
	start(f, &spec, 1, true, extra);
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	slow = raw_client(f->h.uds[0]);
	t0 = tfe_now_ms();
	silent = raw_client(f->h.uds[0]);
	assert_true(slow >= 0 && silent >= 0);
	/* the line at 60% of the time still counts */
	poll(NULL, 0, HANDSHAKE_MS * 6 / 10);
	snprintf(line, sizeof(line), "CONNECT %u\n", GUEST_PORT);
	send_line(slow, line);
	assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, WAIT_MS, &c), 0);
	assert_int_equal(uh_host_wait_ok(slow, &f->g, WAIT_MS), 0);
	/* the silent one goes when its time is up, not before */
	ms = ms_to_close(silent, t0, 4 * HANDSHAKE_MS * time_scale());
	printf("  silent client closed after about %ld ms (limit %d)\n", ms, HANDSHAKE_MS);
	assert_true(ms >= HANDSHAKE_MS - 50 && within_slack(ms, HANDSHAKE_MS));
	assert_int_equal(uh_wait_log(&f->h, "no CONNECT line in time", 1, WAIT_MS), 0);
	close(silent);
	close(slow);
	finish(f);
}

static void test_connect_timeout(void **state)
{
	char keys[40];
	const struct uh_vm_spec spec = { .cid = GCID, .keys = keys };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int64_t t0;
	long ms;
	int fd;

	snprintf(keys, sizeof(keys), "connect-timeout-ms=%d", CONNECT_MS);
	start(f, &spec, 1, false, NULL);
	/* a guest that answers in time */
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	fd = host_to_guest(f, &f->g, 0, GUEST_PORT, &c);
	assert_true(fd >= 0);
	close(fd);
	/* one that never looks at its rx ring: the host client is let go, the guest gets RST */
	t0 = tfe_now_ms();
	fd = uh_host_connect(f->h.uds[0], GUEST_PORT + 1, SOCK_STREAM);
	assert_true(fd >= 0);
	ms = ms_to_close(fd, t0, 4 * CONNECT_MS + WAIT_MS);
	printf("  unanswered connect closed after %ld ms (limit %d)\n", ms, CONNECT_MS);
	assert_true(ms >= CONNECT_MS - 50 && within_slack(ms, CONNECT_MS));
	close(fd);
	finish(f);
}

/* ---- bytes held per connection ---- */

static uint32_t credit(const struct tfe_vsock_conn *c)
{
	return tfe_vsock_credit(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
}

/* Send while credit lasts; the host reads nothing. Return: bytes sent. */
static size_t fill(struct fx *f, struct tfe_vsock_conn *c, uint32_t seed, size_t off)
{
	static uint8_t buf[4096];
	size_t sent = 0;

	for (int64_t end = tfe_now_ms() + WAIT_MS; tfe_remaining_ms(end) > 0;) {
		ssize_t n;

		uh_fill(buf, seed, off + sent, sizeof(buf));
		n = tfe_vsock_send(&f->g.vs, c, buf, sizeof(buf));
		sent += n > 0 ? (size_t)n : 0;
		tfe_vsock_wait(&f->g.vs, 5);
		if (n == -EAGAIN && credit(c) == 0 && sent > 4 * BUF)
			break;
	}
	return sent;
}

/* The host reads @total pattern bytes of @seed from @fd, checking each. */
static void drain(struct fx *f, int fd, uint32_t seed, size_t total)
{
	uint8_t buf[BUF];
	size_t got = 0;

	while (got < total) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n > 0) {
			assert_int_equal(uh_check(buf, seed, got, (size_t)n), (size_t)n);
			got += (size_t)n;
		}
		tfe_vsock_poll(&f->g.vs);
	}
}

/* A guest connection to the host listener @lfd from @port, and its host end. */
static int guest_conn(struct fx *f, int lfd, uint32_t port, struct tfe_vsock_conn **c)
{
	assert_int_equal(tfe_vsock_connect(&f->g.vs, 2, HOST_PORT, port, WAIT_MS, c), 0);
	return uh_accept(lfd, &f->g, WAIT_MS);
}

/* One RW of @len bytes on @c behind the driver's back (its credit view kept right). */
static void raw_rw(struct fx *f, struct tfe_vsock_conn *c, uint32_t len)
{
	static uint8_t data[2 * BUF];
	struct tfe_vsock_pkt p;

	uh_fill(data, 9, 0, len);
	tfe_vsock_conn_pkt(&f->g.vs, c, TFE_VSOCK_OP_RW, 0, &p);
	assert_int_equal(uh_raw_send(&f->g, &p, data, len), 0);
	c->tx_cnt += len;
}

static void test_buffer_per_connection(void **state)
{
	const struct uh_vm_spec spec = { .cid = GCID, .keys = "tx-buffer-size=4096" };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	size_t sent;
	int lfd, fd;

	start(f, &spec, 1, false, NULL);
	lfd = uh_host_listen(f->h.uds[0], HOST_PORT, SOCK_STREAM);
	fd = guest_conn(f, lfd, 40000, &c);
	assert_true(fd >= 0);
	assert_int_equal(c->peer_buf_alloc, BUF);
	/* the host reads nothing: the guest runs out of credit, and nothing is lost */
	sent = fill(f, c, 3, 0);
	assert_int_equal(credit(c), 0);
	printf("  %zu bytes sent before the credit ran out\n", sent);
	drain(f, fd, 3, sent);
	close(fd);
	/* one packet of exactly the buffer is taken whole */
	fd = guest_conn(f, lfd, 40001, &c);
	raw_rw(f, c, BUF);
	drain(f, fd, 9, BUF);
	close(fd);
	/* one byte more than the buffer: that connection is reset, its host end closed */
	fd = guest_conn(f, lfd, 40002, &c);
	raw_rw(f, c, BUF + 1);
	assert_true(uh_host_closed(fd, &f->g, WAIT_MS));
	for (int64_t end = tfe_now_ms() + WAIT_MS; c->state != TFE_CONN_CLOSED;) {
		assert_true(tfe_remaining_ms(end) > 0);
		tfe_vsock_wait(&f->g.vs, 10);
	}
	assert_int_equal(c->error, -ECONNRESET);
	close(fd);
	close(lfd);
	finish(f);
}

/* ---- CONNECT line length ---- */

/* "CONNECT 000...6000" padded to @len bytes with @nl ("\n" or "\r\n"). */
static void padded_line(char *out, size_t len, const char *nl)
{
	size_t digits = len - strlen("CONNECT ") - strlen(nl);

	snprintf(out, len + 1, "CONNECT %0*u%s", (int)digits, GUEST_PORT, nl);
	assert_int_equal(strlen(out), len);
}

/* One client with @line: accepted (OK comes) or closed without the guest seeing it. */
static void client_line(struct fx *f, const char *line, bool ok)
{
	struct tfe_vsock_conn *c;
	int fd = raw_client(f->h.uds[0]);

	assert_true(fd >= 0);
	send_line(fd, line);
	if (ok) {
		assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, WAIT_MS, &c), 0);
		assert_int_equal(uh_host_wait_ok(fd, &f->g, WAIT_MS), 0);
		close(fd);
		assert_int_equal(tfe_vsock_close(&f->g.vs, c, WAIT_MS), 0);
		return;
	}
	assert_true(uh_host_closed(fd, &f->g, WAIT_MS));
	close(fd);
}

/*
 * The word in lower case (rust-vmm's clients) is fine; a port past u32 is
 * not; a client that leaves before its OK costs nothing: the guest's end
 * is reset and the daemon is back to what it held.
 */
static void odd_clients(struct fx *f)
{
	struct tfe_vsock_conn *c;
	struct pw_snap base;
	char line[32];
	int fd;

	assert_int_equal(tfe_fe_get_u64(&f->g.vm.fe, VU_REQ_GET_FEATURES, &(uint64_t){ 0 }), 0);
	assert_int_equal(pw_snap(f->h.d.pid, &base), 0);
	snprintf(line, sizeof(line), "connect %u\n", GUEST_PORT);
	client_line(f, line, true);
	client_line(f, "CONNECT 4294967296\n", false);
	client_line(f, "CONNECT -1\n", false);
	fd = raw_client(f->h.uds[0]);
	snprintf(line, sizeof(line), "CONNECT %u\n", GUEST_PORT);
	send_line(fd, line);
	close(fd);
	assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, WAIT_MS, &c), 0);
	for (int64_t end = tfe_now_ms() + WAIT_MS; c->state != TFE_CONN_CLOSED;) {
		assert_true(tfe_remaining_ms(end) > 0);
		tfe_vsock_wait(&f->g.vs, 10);
	}
	assert_int_equal(pw_wait_back(f->h.d.pid, &base, WAIT_MS), 0);
}

static void test_line_length(void **state)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	const char *const extra[] = { "--log-level", "debug", NULL };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	char line[64];

	start(f, &spec, 1, true, extra);
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	for (unsigned int crlf = 0; crlf < 2; crlf++) {
		/* 32 bytes with the newline: accepted; 33: closed, the guest never hears of it */
		padded_line(line, 32, crlf ? "\r\n" : "\n");
		client_line(f, line, true);
		padded_line(line, 33, crlf ? "\r\n" : "\n");
		client_line(f, line, false);
	}
	assert_int_equal(uh_wait_log(&f->h, "CONNECT line too long", 2, WAIT_MS), 0);
	assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, 300, &c), -ETIMEDOUT);
	odd_clients(f);
	finish(f);
}

/* ---- the options at their edges, and the three ways to set them ---- */

/*
 * Run the daemon with @args after "--socket S --uds-path U" of its own, or
 * alone when @sock names the socket the args create. It must exit at once
 * with status 2 and say @msg, or (@msg NULL) start, log @limits and stop
 * cleanly.
 */
static void run_opts(const char *const *args, const char *sock, const char *msg,
		     const char *limits)
{
	struct dr r;
	int rc;

	assert_int_equal(dr_init(&r), 0);
	rc = dr_start(&r, args, !sock, sock);
	if (msg) {
		assert_int_equal(rc, -ECHILD);
		assert_int_equal(dr_exit_status(&r), 2);
		if (!uh_log_has(&r.logh, msg))
			fail_msg("'%s ...': no '%s' in its output", args[0], msg);
	} else {
		assert_int_equal(rc, 0);
		assert_int_equal(uh_wait_log(&r.logh, limits, 1, WAIT_MS), 0);
		assert_int_equal(tfe_daemon_stop(&r.d, WAIT_MS), 0);
	}
	dr_fini(&r);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_option_edges(void **state)
{
	(void)state;
	run_opts(ARGS("--max-connections", "65536"), NULL, NULL, "limits: 65536 connections");
	run_opts(ARGS("--max-connections", "65537"), NULL, "must be 1 to 65536", NULL);
	run_opts(ARGS("--max-connections", "0"), NULL, "must be 1 to 65536", NULL);
	run_opts(ARGS("--max-pending-connects", "4096"), NULL, NULL, "4096 pending host connects");
	run_opts(ARGS("--max-pending-connects", "4097"), NULL, "must be 1 to 4096", NULL);
	run_opts(ARGS("--handshake-timeout-ms", "600000"), NULL, NULL, "within 600000 ms, guest");
	run_opts(ARGS("--handshake-timeout-ms", "600001"), NULL, "must be 1 to 600000", NULL);
	run_opts(ARGS("--connect-timeout-ms", "600000"), NULL, NULL, "guest answer within 600000 ms");
	run_opts(ARGS("--connect-timeout-ms", "0"), NULL, "must be 1 to 600000", NULL);
	run_opts(ARGS("--tx-buffer-size", "16777216"), NULL, NULL, "buffer 16777216");
	run_opts(ARGS("--tx-buffer-size", "16777217"), NULL, "must be 4096 to 16777216", NULL);
	run_opts(ARGS("--socket-mode", "0777"), NULL, NULL, "socket files mode 0777");
	run_opts(ARGS("--socket-mode", "660"), NULL, NULL, "socket files mode 0660");
	run_opts(ARGS("--socket-mode", "1777"), NULL, "socket-mode '1777' must be", NULL);
	run_opts(ARGS("--socket-mode", "0400"), NULL, "socket-mode '0400' must be", NULL);
	run_opts(ARGS("--socket-mode", "0x1ff"), NULL, "socket-mode '0x1ff' must be", NULL);
	/* the connection limits are the userspace engine's */
	run_opts(ARGS("--socket", "/tmp/x.sock", "--cid", "3", "--max-connections", "5"),
		 "/tmp/x.sock", "belong to the userspace engine", NULL);
}

/* The same values through an option, a --vm key and a YAML key. */
static void test_three_paths(void **state)
{
	static const char want[] = "limits: 7 connections, 3 pending host connects, CONNECT line "
				   "within 700 ms, guest answer within 900 ms; socket files mode 0640";
	char dir[] = "/tmp/bounds-XXXXXX", yaml[64], spec[256], sock[64];
	FILE *fp;

	(void)state;
	run_opts(ARGS("--max-connections", "7", "--max-pending-connects", "3",
		      "--handshake-timeout-ms", "700", "--connect-timeout-ms", "900",
		      "--socket-mode", "0640"), NULL, NULL, want);
	assert_non_null(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "socket=%s/s,uds-path=%s/u,max-connections=7,"
		 "max-pending-connects=3,handshake-timeout-ms=700,connect_timeout_ms=900,"
		 "socket-mode=0640", dir, dir);
	snprintf(sock, sizeof(sock), "%s/s", dir);
	run_opts(ARGS("--vm", spec), sock, NULL, want);
	snprintf(yaml, sizeof(yaml), "%s/vms.yaml", dir);
	fp = fopen(yaml, "w");
	assert_non_null(fp);
	fprintf(fp, "vms:\n  - socket: %s/s\n    uds_path: %s/u\n    max_connections: 7\n"
		"    max_pending_connects: 3\n    handshake_timeout_ms: 700\n"
		"    connect_timeout_ms: 900\n    socket_mode: \"0640\"\n", dir, dir);
	fclose(fp);
	run_opts(ARGS("--config", yaml), sock, NULL, want);
	unlink(yaml);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_max_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handshake_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buffer_per_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_option_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_three_paths, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
