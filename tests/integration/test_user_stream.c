// SPDX-License-Identifier: MIT
/*
 * Userspace engine, one VM: the daemon runs in a child process with
 * --uds-path; the test is both the VMM (tfe front end, QEMU's sequence),
 * the guest (tfe driver, or raw packets where the driver has no support)
 * and the host programs (Unix sockets). Covers streams both ways with
 * checked data, credit exhaustion and recovery (and that a stalled
 * connection costs no CPU), half-close both ways, the RST rules, SEQPACKET
 * message boundaries both ways, a memory table re-sent while running, and
 * a stop/start of the rings. Each test ends by checking that the daemon is
 * alive and exits 0 on SIGTERM, leaving no socket file behind.
 *
 * argv[1]: the daemon.
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "user_harness.h"

#define GCID 3u
#define MIB (1024u * 1024u)
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)
#define F_INDIRECT (1ull << TFE_F_INDIRECT_DESC)
#define F_SEQPACKET (1ull << UH_VSOCK_F_SEQPACKET)
#define QUIET_MS 300

struct fx {
	struct uh h;
	struct uh_guest g;
	bool running;
};

static int start(struct fx *f, uint64_t features, const struct tfe_vsock_opts *o,
		 const char *const *extra)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	int rc;

	memset(f, 0, sizeof(*f));
	uh_watchdog(120);
	rc = uh_start(&f->h, &spec, 1, true, extra);
	if (rc == 0) {
		f->running = true;
		rc = uh_guest_open(&f->g, &f->h, 0, features, o);
	}
	return rc;
}

/* The end of every test: the daemon survived, and exits cleanly. */
static void finish(struct fx *f)
{
	assert_true(uh_alive(&f->h));
	uh_guest_close(&f->g);
	f->running = false;
	assert_int_equal(uh_stop(&f->h), 0);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	uh_guest_close(&f->g);
	if (f->running)
		uh_stop(&f->h);
	f->running = false;
	uh_watchdog(0);
	return 0;
}

static int setup(void **state)
{
	static struct fx f;

	*state = &f;
	return 0;
}

/* A guest → host connection to a listener on host port @port. */
static void connect_to_host(struct fx *f, uint32_t port, uint32_t src, int *lfd, int *fd,
			    struct tfe_vsock_conn **c)
{
	*lfd = uh_host_listen(f->h.uds[0], port, SOCK_STREAM);
	assert_true(*lfd >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g.vs, TFE_VSOCK_HOST_CID, port, src, 5000, c), 0);
	*fd = uh_accept(*lfd, &f->g, 5000);
	assert_true(*fd >= 0);
}

/* A host → guest connection (CONNECT) to a guest listener on @port. */
static void connect_to_guest(struct fx *f, uint32_t port, int *fd, struct tfe_vsock_conn **c)
{
	assert_int_equal(tfe_vsock_listen(&f->g.vs, port), 0);
	*fd = uh_host_connect(f->h.uds[0], port, SOCK_STREAM);
	assert_true(*fd >= 0);
	assert_int_equal(tfe_vsock_accept(&f->g.vs, port, 5000, c), 0);
	assert_int_equal(uh_host_wait_ok(*fd, &f->g, 5000), 0);
}

static long daemon_cpu_ms(struct uh *h)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)h->d.pid);
	fp = fopen(path, "r");
	if (!fp)
		return -1;
	p = fgets(buf, sizeof(buf), fp);
	fclose(fp);
	p = p ? strrchr(buf, ')') : NULL;
	/* fields 14 and 15 (utime, stime) counted from after the command name */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* Let the guest driver take whatever the daemon sends for @ms. */
static void settle(struct uh_guest *g, int ms)
{
	int64_t end = tfe_now_ms() + ms;

	while (tfe_remaining_ms(end) > 0)
		tfe_vsock_wait(&g->vs, 10);
}

/*
 * While a connection is stalled the daemon must sleep, not spin (a busy
 * loop would burn the whole window). A settling period first lets it
 * finish work already queued, which a loaded machine may have delayed;
 * then 1 s is measured.
 */
static void assert_idle(struct fx *f, struct uh_guest *g)
{
	long before, after;

	settle(g, 300);
	before = daemon_cpu_ms(&f->h);
	settle(g, 1000);
	after = daemon_cpu_ms(&f->h);
	assert_true(before >= 0 && after >= 0);
	assert_true(after - before < 150);
}

/* ---- streams ---- */

static void test_guest_to_host(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int lfd, fd;

	assert_int_equal(start(f, F_EVENT_IDX | F_INDIRECT, NULL, NULL), 0);
	connect_to_host(f, 5000, 40000, &lfd, &fd, &c);
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, 8 * MIB, 11, 60000), 0);
	/* orderly close: SHUTDOWN(both) is answered by the device's RST */
	assert_int_equal(tfe_vsock_close(&f->g.vs, c, 5000), 0);
	assert_true(uh_host_closed(fd, &f->g, 5000));
	close(fd);
	close(lfd);
	finish(f);
}

static void test_host_to_guest(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	uint8_t b;
	int fd;

	assert_int_equal(start(f, F_EVENT_IDX, NULL, NULL), 0);
	connect_to_guest(f, 6000, &fd, &c);
	assert_int_equal(uh_host_to_guest(&f->g, c, fd, 8 * MIB, 12, 60000), 0);
	/* the host closes: the guest reads end of stream */
	close(fd);
	assert_int_equal(tfe_vsock_recv_wait(&f->g.vs, c, &b, 1, 5000), 0);
	tfe_vsock_close(&f->g.vs, c, 2000);
	finish(f);
}

/* Both ways at once, plain rings (no EVENT_IDX, no indirect), split rx buffers. */
static void test_both_ways_plain_rings(void **state)
{
	struct tfe_vsock_opts o = { .rx_split = true, .tx_pkt_max = 4096 };
	struct tfe_vsock_conn *c1, *c2;
	struct fx *f = *state;
	int lfd, fd1, fd2;

	assert_int_equal(start(f, 0, &o, NULL), 0);
	connect_to_host(f, 5001, 40001, &lfd, &fd1, &c1);
	connect_to_guest(f, 6001, &fd2, &c2);
	assert_int_equal(uh_guest_to_host(&f->g, c1, fd1, 2 * MIB, 21, 60000), 0);
	assert_int_equal(uh_host_to_guest(&f->g, c2, fd2, 2 * MIB, 22, 60000), 0);
	close(fd1);
	close(fd2);
	close(lfd);
	finish(f);
}

/* Bytes a host client writes right after its CONNECT line come after "OK". */
static void test_hybrid_early_bytes(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	uint8_t buf[100], got[100];
	int fd;

	assert_int_equal(start(f, 0, NULL, NULL), 0);
	assert_int_equal(tfe_vsock_listen(&f->g.vs, 6002), 0);
	fd = uh_host_connect(f->h.uds[0], 6002, SOCK_STREAM);
	assert_true(fd >= 0);
	uh_fill(buf, 5, 0, sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(tfe_vsock_accept(&f->g.vs, 6002, 5000, &c), 0);
	assert_int_equal(uh_host_wait_ok(fd, &f->g, 5000), 0);
	for (size_t have = 0; have < sizeof(got);) {
		ssize_t n = tfe_vsock_recv_wait(&f->g.vs, c, got + have, sizeof(got) - have, 5000);

		assert_true(n > 0);
		have += (size_t)n;
	}
	assert_memory_equal(got, buf, sizeof(buf));
	close(fd);
	finish(f);
}

/* Hostile host clients: garbage, an over-long line, silence. Each closes alone. */
static void test_hybrid_bad_clients(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	const char *bad[] = { "HELLO 5\n", "CONNECT\n", "CONNECT 99999999999\n",
			      "CONNECT 1234567890123456789012345678901234\n", "connect -1\n" };
	int fd;

	assert_int_equal(start(f, 0, NULL, NULL), 0);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		strcpy(sa.sun_path, f->h.uds[0]);
		assert_int_equal(connect(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_true(write(s, bad[i], strlen(bad[i])) > 0);
		assert_true(uh_host_closed(s, &f->g, 2000));
		close(s);
	}
	/* a guest port nobody listens on: the guest RSTs, the host socket closes */
	fd = uh_host_connect(f->h.uds[0], 6999, SOCK_STREAM);
	assert_true(fd >= 0);
	assert_int_equal(uh_host_wait_ok(fd, &f->g, 2000), -ECONNRESET);
	close(fd);
	/* and a good client still gets through */
	connect_to_guest(f, 6003, &fd, &c);
	assert_int_equal(uh_host_to_guest(&f->g, c, fd, 64 * 1024, 3, 10000), 0);
	close(fd);
	finish(f);
}

/* ---- credit ---- */

static uint32_t guest_credit(const struct tfe_vsock_conn *c)
{
	return tfe_vsock_credit(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
}

/* The host does not read: the guest runs out of credit, nothing is lost, then it recovers. */
static void test_credit_guest_to_host(void **state)
{
	const char *const extra[] = { "--tx-buffer-size", "32768", NULL };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	uint8_t buf[16384];
	size_t sent = 0, got = 0;
	int lfd, fd;

	assert_int_equal(start(f, F_EVENT_IDX, NULL, extra), 0);
	connect_to_host(f, 5002, 40002, &lfd, &fd, &c);
	assert_int_equal(c->peer_buf_alloc, 32768);
	for (int64_t end = tfe_now_ms() + 20000; tfe_remaining_ms(end) > 0;) {
		ssize_t n;

		uh_fill(buf, 7, sent, sizeof(buf));
		n = tfe_vsock_send(&f->g.vs, c, buf, sizeof(buf));
		if (n > 0)
			sent += (size_t)n;
		tfe_vsock_wait(&f->g.vs, 5);
		if (n != -EAGAIN || guest_credit(c) != 0 || sent <= 64 * 1024)
			continue;
		/*
		 * Out of credit, but a slow daemon may still be moving what it
		 * holds into the host socket, and then gives the credit back:
		 * full only once no credit returns for a while.
		 */
		settle(&f->g, 300);
		if (guest_credit(c) == 0)
			break;
	}
	/* held back by credit: the socket buffer plus at most buf_alloc in the daemon */
	assert_int_equal(guest_credit(c), 0);
	assert_true(sent < 8 * MIB);
	assert_int_equal(c->state, TFE_CONN_ESTABLISHED);
	assert_idle(f, &f->g);
	assert_int_equal(guest_credit(c), 0);
	/* the host reads everything; credit comes back */
	for (int64_t end = tfe_now_ms() + 10000; got < sent;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		assert_true(tfe_remaining_ms(end) > 0);

		if (n > 0) {
			assert_int_equal(uh_check(buf, 7, got, (size_t)n), (size_t)n);
			got += (size_t)n;
		}
		tfe_vsock_poll(&f->g.vs);
	}
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, MIB, 8, 30000), 0);
	assert_true(guest_credit(c) > 0);
	close(fd);
	close(lfd);
	finish(f);
}

/* The guest does not read: the device stops reading the host, never overruns the guest. */
static void test_credit_host_to_guest(void **state)
{
	struct tfe_vsock_opts o = { .buf_alloc = 65536 };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	uint8_t buf[16384];
	size_t written = 0, got = 0;
	int fd;

	assert_int_equal(start(f, F_EVENT_IDX, &o, NULL), 0);
	connect_to_guest(f, 6004, &fd, &c);
	for (int64_t end = tfe_now_ms() + 5000; tfe_remaining_ms(end) > 0;) {
		ssize_t n;

		uh_fill(buf, 9, written, sizeof(buf));
		n = write(fd, buf, sizeof(buf));
		if (n > 0)
			written += (size_t)n;
		tfe_vsock_wait(&f->g.vs, 5);
		if (n < 0 && c->rxq_len == o.buf_alloc)
			break;
	}
	assert_int_equal(c->rxq_len, o.buf_alloc);
	assert_int_equal(c->state, TFE_CONN_ESTABLISHED);
	assert_int_equal(c->error, 0);
	assert_idle(f, &f->g);
	assert_int_equal(c->rxq_len, o.buf_alloc);
	assert_int_equal(c->error, 0);
	while (got < written) {
		ssize_t n = tfe_vsock_recv_wait(&f->g.vs, c, buf, sizeof(buf), 5000);

		assert_true(n > 0);
		assert_int_equal(uh_check(buf, 9, got, (size_t)n), (size_t)n);
		got += (size_t)n;
	}
	assert_int_equal(uh_host_to_guest(&f->g, c, fd, MIB, 10, 30000), 0);
	close(fd);
	finish(f);
}

/* No rx buffers at all: host data waits in the host socket, unread, without spinning. */
static void test_no_rx_buffers(void **state)
{
	/*
	 * Credit well beyond what the ring's buffers hold (128 of 4 KiB), so
	 * the buffers, not the credit, run out first however the daemon's
	 * reads happen to cut the stream.
	 */
	const struct tfe_vsock_opts o = { .buf_alloc = 4u << 20 };
	struct tfe_vring *rx;
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	uint8_t buf[4096];
	bool full = false;
	int fd;

	assert_int_equal(start(f, 0, &o, NULL), 0);
	rx = f->g.vs.rx;
	connect_to_guest(f, 6005, &fd, &c);
	uh_fill(buf, 4, 0, sizeof(buf));
	/* the guest stops posting: used buffers are taken and never given back */
	for (int64_t end = tfe_now_ms() + 20000; !full && tfe_remaining_ms(end) > 0;) {
		uint32_t len;
		uintptr_t slot;

		while (tfe_vring_get_used(rx, &len, &slot) == 1)
			;
		full = write(fd, buf, sizeof(buf)) < 0 && errno == EAGAIN && rx->num_free == rx->num;
		poll(NULL, 0, 2);
	}
	assert_true(full);
	assert_idle(f, &f->g);
	assert_int_equal(rx->num_free, rx->num);
	close(fd);
	finish(f);
}

/* ---- half-close ---- */

static void recv_exact(struct uh_guest *g, struct tfe_vsock_conn *c, const char *want)
{
	char buf[64];
	size_t have = 0, n = strlen(want);

	while (have < n) {
		ssize_t r = tfe_vsock_recv_wait(&g->vs, c, buf + have, n - have, 5000);

		assert_true(r > 0);
		have += (size_t)r;
	}
	assert_memory_equal(buf, want, n);
}

static void host_read_exact(struct uh_guest *g, int fd, const char *want)
{
	char buf[64];
	size_t have = 0, n = strlen(want);
	int64_t end = tfe_now_ms() + 5000;

	while (have < n && tfe_remaining_ms(end) > 0) {
		ssize_t r = read(fd, buf + have, n - have);

		if (r > 0)
			have += (size_t)r;
		else
			tfe_vsock_wait(&g->vs, 2);
	}
	assert_int_equal(have, n);
	assert_memory_equal(buf, want, n);
}

/* The guest stops sending; the host still sends; then the host stops too. */
static void test_half_close_guest_first(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int lfd, fd;
	char b;

	assert_int_equal(start(f, 0, NULL, NULL), 0);
	connect_to_host(f, 5003, 40003, &lfd, &fd, &c);
	assert_int_equal(tfe_vsock_send(&f->g.vs, c, "hello", 5), 5);
	assert_int_equal(tfe_vsock_shutdown(&f->g.vs, c, TFE_VSOCK_SHUTDOWN_SEND), 0);
	host_read_exact(&f->g, fd, "hello");
	assert_true(uh_host_closed(fd, &f->g, 5000)); /* EOF on the host's read side */
	assert_int_equal(write(fd, "world", 5), 5);
	recv_exact(&f->g, c, "world");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	assert_int_equal(tfe_vsock_recv_wait(&f->g.vs, c, &b, 1, 5000), 0);
	tfe_vsock_close(&f->g.vs, c, 2000);
	close(fd);
	close(lfd);
	finish(f);
}

/* The host stops sending; the guest still sends; then the guest stops too. */
static void test_half_close_host_first(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int fd;
	char b;

	assert_int_equal(start(f, 0, NULL, NULL), 0);
	connect_to_guest(f, 6006, &fd, &c);
	assert_int_equal(write(fd, "ping", 4), 4);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	recv_exact(&f->g, c, "ping");
	assert_int_equal(tfe_vsock_recv_wait(&f->g.vs, c, &b, 1, 5000), 0);
	assert_int_equal(tfe_vsock_send(&f->g.vs, c, "pong", 4), 4);
	host_read_exact(&f->g, fd, "pong");
	assert_int_equal(tfe_vsock_shutdown(&f->g.vs, c, TFE_VSOCK_SHUTDOWN_SEND), 0);
	assert_true(uh_host_closed(fd, &f->g, 5000));
	tfe_vsock_close(&f->g.vs, c, 2000);
	close(fd);
	finish(f);
}

/*
 * A host program's close() is not a half-close: the guest hears SHUTDOWN
 * with both bits after the last byte (its send then fails with EPIPE), and
 * its RST ends the connection.
 */
static void test_host_close_ends_both(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int fd;
	char b;

	assert_int_equal(start(f, 0, NULL, NULL), 0);
	connect_to_guest(f, 6007, &fd, &c);
	assert_int_equal(write(fd, "bye", 3), 3);
	close(fd);
	recv_exact(&f->g, c, "bye");
	assert_int_equal(tfe_vsock_recv_wait(&f->g.vs, c, &b, 1, 5000), 0);
	assert_int_equal(c->peer_shutdown, TFE_VSOCK_SHUTDOWN_BOTH);
	tfe_vsock_close(&f->g.vs, c, 2000);
	finish(f);
}

/* ---- RST rules ---- */

static struct tfe_vsock_pkt pkt(uint64_t src_cid, uint32_t src, uint32_t dst, uint16_t type,
				uint16_t op)
{
	return (struct tfe_vsock_pkt){
		.src_cid = src_cid, .dst_cid = TFE_VSOCK_HOST_CID, .src_port = src,
		.dst_port = dst, .type = type, .op = op, .buf_alloc = 65536,
	};
}

static void expect_rst(struct uh_guest *g, uint32_t host_port, uint32_t guest_port)
{
	struct uh_pkt r;

	assert_int_equal(uh_raw_recv(g, &r, 2000), 0);
	assert_int_equal(r.h.op, TFE_VSOCK_OP_RST);
	assert_int_equal(r.h.src_cid, TFE_VSOCK_HOST_CID);
	assert_int_equal(r.h.dst_cid, g->cid);
	assert_int_equal(r.h.src_port, host_port);
	assert_int_equal(r.h.dst_port, guest_port);
	assert_int_equal(r.h.len, 0);
}

static void expect_silence(struct uh_guest *g)
{
	struct uh_pkt r;

	assert_int_equal(uh_raw_recv(g, &r, QUIET_MS), -ETIMEDOUT);
}

static void test_rst_rules(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	struct tfe_vsock_pkt p;
	uint8_t junk[30] = { 0 };
	int64_t t0;
	int lfd, fd;

	assert_int_equal(start(f, 0, NULL, NULL), 0);
	/* connect to a port with nothing behind it: refused at once */
	t0 = tfe_now_ms();
	assert_int_equal(tfe_vsock_connect(&f->g.vs, 2, 7777, 41000, 5000, &c), -ECONNREFUSED);
	assert_true(tfe_now_ms() - t0 < 1000);
	/* a packet for no connection: RST */
	p = pkt(GCID, 42000, 5555, TFE_VSOCK_TYPE_STREAM, TFE_VSOCK_OP_RW);
	assert_int_equal(uh_raw_send(&f->g, &p, "x", 1), 0);
	expect_rst(&f->g, 5555, 42000);
	/* an RST is never answered */
	p.op = TFE_VSOCK_OP_RST;
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	expect_silence(&f->g);
	/* another CID's packet, and a truncated header: dropped without a word */
	p = pkt(99, 42001, 5555, TFE_VSOCK_TYPE_STREAM, TFE_VSOCK_OP_REQUEST);
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	assert_int_equal(tfe_vsock_send_raw(&f->g.vs, junk, sizeof(junk), NULL, 0), 0);
	expect_silence(&f->g);
	/* unknown op, unknown type, SEQPACKET not negotiated: RST */
	p = pkt(GCID, 42002, 5555, TFE_VSOCK_TYPE_STREAM, 9);
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	expect_rst(&f->g, 5555, 42002);
	p = pkt(GCID, 42003, 5555, 7, TFE_VSOCK_OP_REQUEST);
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	expect_rst(&f->g, 5555, 42003);
	p = pkt(GCID, 42004, 5555, TFE_VSOCK_TYPE_SEQPACKET, TFE_VSOCK_OP_REQUEST);
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	expect_rst(&f->g, 5555, 42004);
	/* a bad op on a live connection resets it, and its host socket closes */
	connect_to_host(f, 5004, 40004, &lfd, &fd, &c);
	p = pkt(GCID, 40004, 5004, TFE_VSOCK_TYPE_STREAM, TFE_VSOCK_OP_INVALID);
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	expect_rst(&f->g, 5004, 40004);
	assert_true(uh_host_closed(fd, NULL, 2000));
	/* and the tuple is free again: a stale packet for it earns an RST, not a disturbance */
	p.op = TFE_VSOCK_OP_CREDIT_UPDATE;
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	expect_rst(&f->g, 5004, 40004);
	close(fd);
	close(lfd);
	finish(f);
}

/* ---- SEQPACKET ---- */

/* Receive one message (RW packets up to EOM) for tuple @host_port → @guest_port. */
static size_t raw_recv_msg(struct uh_guest *g, uint32_t host_port, uint32_t guest_port,
			   uint8_t *msg, size_t cap, unsigned int *pieces)
{
	static struct uh_pkt r;
	size_t have = 0;

	*pieces = 0;
	for (;;) {
		assert_int_equal(uh_raw_recv(g, &r, 5000), 0);
		if (r.h.op == TFE_VSOCK_OP_CREDIT_UPDATE)
			continue;
		assert_int_equal(r.h.op, TFE_VSOCK_OP_RW);
		assert_int_equal(r.h.type, TFE_VSOCK_TYPE_SEQPACKET);
		assert_int_equal(r.h.src_port, host_port);
		assert_int_equal(r.h.dst_port, guest_port);
		assert_true(have + r.h.len <= cap);
		memcpy(msg + have, r.data, r.h.len);
		have += r.h.len;
		(*pieces)++;
		if (r.h.flags & 1u) /* EOM */
			return have;
		assert_int_equal(r.h.flags, 0); /* EOR only with EOM */
	}
}

static void raw_send_rw(struct uh_guest *g, uint32_t src, uint32_t dst, uint32_t flags,
			const void *data, size_t len)
{
	struct tfe_vsock_pkt p = pkt(GCID, src, dst, TFE_VSOCK_TYPE_SEQPACKET, TFE_VSOCK_OP_RW);

	p.flags = flags;
	p.buf_alloc = 256 * 1024;
	assert_int_equal(uh_raw_send(g, &p, data, len), 0);
}

/* Host messages of @sizes reach the guest whole (pieces end with EOM only at the end). */
static void seq_host_to_guest(struct uh_guest *g, int fd, uint32_t host_port, uint32_t guest_port)
{
	static uint8_t msg[70000], got[70000];
	const size_t sizes[] = { 1, 5000, 100, 60000 };
	unsigned int pieces;

	for (unsigned int i = 0; i < 4; i++) {
		uh_fill(msg, 30 + i, 0, sizes[i]);
		assert_int_equal(send(fd, msg, sizes[i], 0), (ssize_t)sizes[i]);
	}
	for (unsigned int i = 0; i < 4; i++) {
		size_t n = raw_recv_msg(g, host_port, guest_port, got, sizeof(got), &pieces);

		assert_int_equal(n, sizes[i]);
		assert_int_equal(uh_check(got, 30 + i, 0, n), n);
		if (sizes[i] > 4096)
			assert_true(pieces > 1);
	}
}

/* Guest messages (in one or several RW packets) reach the host socket whole. */
static void seq_guest_to_host(struct uh_guest *g, int fd, uint32_t guest_port, uint32_t host_port)
{
	static uint8_t msg[8192], got[8192];
	ssize_t n;

	uh_fill(msg, 40, 0, 3000);
	raw_send_rw(g, guest_port, host_port, 0, msg, 1000);
	raw_send_rw(g, guest_port, host_port, 1u, msg + 1000, 2000);
	uh_fill(msg, 41, 0, 10);
	raw_send_rw(g, guest_port, host_port, 3u, msg, 10);
	uh_fill(msg, 42, 0, 1);
	raw_send_rw(g, guest_port, host_port, 1u, msg, 1);
	for (unsigned int i = 0; i < 3; i++) {
		const size_t want[] = { 3000, 10, 1 };
		int64_t end = tfe_now_ms() + 5000;

		while ((n = recv(fd, got, sizeof(got), 0)) < 0 && errno == EAGAIN &&
		       tfe_remaining_ms(end) > 0)
			poll(NULL, 0, 2);
		assert_int_equal(n, (ssize_t)want[i]);
		assert_int_equal(uh_check(got, 40 + i, 0, (size_t)n), (size_t)n);
	}
}

static void test_seqpacket_guest_to_host(void **state)
{
	struct fx *f = *state;
	struct tfe_vsock_pkt p;
	struct uh_pkt r;
	int lfd, fd;

	assert_int_equal(start(f, F_SEQPACKET | F_EVENT_IDX, NULL, NULL), 0);
	lfd = uh_host_listen(f->h.uds[0], 7000, SOCK_SEQPACKET);
	assert_true(lfd >= 0);
	p = pkt(GCID, 43000, 7000, TFE_VSOCK_TYPE_SEQPACKET, TFE_VSOCK_OP_REQUEST);
	p.buf_alloc = 256 * 1024;
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	assert_int_equal(uh_raw_recv(&f->g, &r, 5000), 0);
	assert_int_equal(r.h.op, TFE_VSOCK_OP_RESPONSE);
	assert_int_equal(r.h.type, TFE_VSOCK_TYPE_SEQPACKET);
	fd = uh_accept(lfd, NULL, 5000);
	assert_true(fd >= 0);
	seq_guest_to_host(&f->g, fd, 43000, 7000);
	seq_host_to_guest(&f->g, fd, 7000, 43000);
	/* the guest closes: the host sees the end, the guest gets the final RST */
	p.op = TFE_VSOCK_OP_SHUTDOWN;
	p.flags = 3;
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	assert_true(uh_host_closed(fd, NULL, 5000));
	do {
		assert_int_equal(uh_raw_recv(&f->g, &r, 5000), 0);
	} while (r.h.op != TFE_VSOCK_OP_RST);
	close(fd);
	close(lfd);
	finish(f);
}

static void test_seqpacket_host_to_guest(void **state)
{
	struct fx *f = *state;
	struct tfe_vsock_pkt p;
	struct uh_pkt r;
	int fd;

	assert_int_equal(start(f, F_SEQPACKET, NULL, NULL), 0);
	fd = uh_host_connect(f->h.uds[0], 8000, SOCK_SEQPACKET);
	assert_true(fd >= 0);
	assert_int_equal(uh_raw_recv(&f->g, &r, 5000), 0);
	assert_int_equal(r.h.op, TFE_VSOCK_OP_REQUEST);
	assert_int_equal(r.h.type, TFE_VSOCK_TYPE_SEQPACKET);
	assert_int_equal(r.h.dst_port, 8000);
	p = pkt(GCID, 8000, r.h.src_port, TFE_VSOCK_TYPE_SEQPACKET, TFE_VSOCK_OP_RESPONSE);
	p.buf_alloc = 256 * 1024;
	assert_int_equal(uh_raw_send(&f->g, &p, NULL, 0), 0);
	assert_int_equal(uh_host_wait_ok(fd, NULL, 5000), 0);
	seq_host_to_guest(&f->g, fd, r.h.src_port, 8000);
	seq_guest_to_host(&f->g, fd, 8000, r.h.src_port);
	close(fd);
	finish(f);
}

/* ---- ring life cycle ---- */

/* QEMU re-sends the memory table while connections run (hot-plug). */
static void test_mem_table_while_running(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int lfd, fd;

	assert_int_equal(start(f, F_EVENT_IDX, NULL, NULL), 0);
	connect_to_host(f, 5005, 40005, &lfd, &fd, &c);
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, MIB, 50, 30000), 0);
	assert_int_equal(tfe_fe_set_mem_table(&f->g.vm.fe, &f->g.vm.mem), 0);
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, MIB, 51, 30000), 0);
	assert_int_equal(tfe_fe_set_mem_table(&f->g.vm.fe, &f->g.vm.mem), 0);
	assert_int_equal(uh_host_to_guest(&f->g, c, fd, MIB, 52, 30000), 0);
	close(fd);
	close(lfd);
	finish(f);
}

/* QEMU's stop (enable 0, GET_VRING_BASE) and start again from the reported bases. */
static void test_stop_start(void **state)
{
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	uint32_t base[2];
	int lfd, fd;

	assert_int_equal(start(f, F_EVENT_IDX, NULL, NULL), 0);
	connect_to_host(f, 5006, 40006, &lfd, &fd, &c);
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, MIB, 60, 30000), 0);
	/* let the device take every tx chain the guest made available */
	for (int64_t end = tfe_now_ms() + 2000; tfe_remaining_ms(end) > 0;) {
		struct tfe_vring *tx = &f->g.vm.vq[1];

		if (le16toh(__atomic_load_n(&tx->used->idx, __ATOMIC_ACQUIRE)) == tx->avail_idx)
			break;
		tfe_vsock_wait(&f->g.vs, 2);
	}
	assert_int_equal(tfe_stop_qemu(&f->g.vm, base), 0);
	/* every tx chain was consumed; rx stopped at what it used */
	assert_int_equal(base[1], f->g.vm.vq[1].avail_idx);
	assert_true((uint16_t)(f->g.vm.vq[0].avail_idx - base[0]) <= f->g.vm.vq[0].num);
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(tfe_fe_set_vring_state(&f->g.vm.fe, VU_REQ_SET_VRING_BASE, i,
							base[i]), 0);
		assert_int_equal(tfe_fe_set_vring_fd(&f->g.vm.fe, VU_REQ_SET_VRING_KICK, i,
						     f->g.vm.fe.kick[i]), 0);
		assert_int_equal(tfe_fe_set_vring_state(&f->g.vm.fe, VU_REQ_SET_VRING_ENABLE, i,
							1), 0);
	}
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, MIB, 61, 30000), 0);
	assert_int_equal(uh_host_to_guest(&f->g, c, fd, MIB, 62, 30000), 0);
	close(fd);
	close(lfd);
	finish(f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_guest_to_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_to_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_ways_plain_rings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_early_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hybrid_bad_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_guest_to_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_host_to_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_rx_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close_guest_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_half_close_host_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_close_ends_both, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seqpacket_guest_to_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seqpacket_host_to_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mem_table_while_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_start, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
