// SPDX-License-Identifier: MIT
/*
 * Forwarding to host AF_VSOCK, with test doubles in place of AF_VSOCK
 * (this test never opens an AF_VSOCK socket): the --forward-listen
 * listeners through a factory that hands out AF_UNIX listeners (a client
 * becomes a connect callback for guest port P with the listener's type; a
 * port that cannot be listened on fails the start, naming nothing left
 * open), and stream_vsock_ops over socketpairs (AF_VSOCK takes the same
 * calls): STREAM bytes and half-close, SEQPACKET lengths, boundaries, EOR
 * and the end of the stream. The data path through a guest runs in the
 * QEMU/TCG rig (tests/peers/run-forward.sh), with real AF_VSOCK there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/user/forward.h"
#include "engine/user/stream.h"
#include "unit_util.h"

struct fx {
	struct loop loop;
	struct fwd fw;
	char dir[64];
	int timer_fd;
	struct loop_watch timer_w;
	int calls, fd, type;
	uint32_t port;
	int fail_port;       /* listen() on this port fails with -EADDRINUSE; -1: none */
	int listens;
};

static void dbl_path(const struct fx *x, uint32_t port, char *out, size_t len)
{
	snprintf(out, len, "%s/p%u", x->dir, port);
}

/* The double: an AF_UNIX listener at <dir>/p<port> of @type. */
static int dbl_listen(void *ctx, uint32_t port, int type)
{
	struct fx *x = ctx;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	x->listens++;
	if ((int)port == x->fail_port)
		return -EADDRINUSE;
	dbl_path(x, port, sa.sun_path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static int dbl_connect(void *ctx, uint32_t cid, uint32_t port, int type, uint32_t timeout_ms)
{
	(void)ctx, (void)cid, (void)port, (void)type, (void)timeout_ms;
	return -ECONNRESET;
}

static struct fwd_ops dbl_ops = {
	.connect = dbl_connect,
	.listen = dbl_listen,
	.stream_init = stream_vsock_init,
};

static void on_connect(void *ctx, int fd, int type, uint32_t port)
{
	struct fx *x = ctx;

	x->calls++;
	x->fd = fd;
	x->type = type;
	x->port = port;
	loop_stop(&x->loop);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct fx *x = ctx;
	uint64_t v;

	(void)events;
	(void)!read(x->timer_fd, &v, sizeof(v));
	loop_stop(&x->loop);
}

static void run(struct fx *x, int ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000 } };

	assert_int_equal(timerfd_settime(x->timer_fd, 0, &its, NULL), 0);
	assert_int_equal(loop_run(&x->loop), 0);
}

static void fx_init(struct fx *x)
{
	memset(x, 0, sizeof(*x));
	x->fd = -1;
	x->fail_port = -1;
	strcpy(x->dir, "/tmp/fwd-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	assert_int_equal(loop_init(&x->loop), 0);
	x->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	assert_true(x->timer_fd >= 0);
	x->timer_w.fd = -1;
	assert_int_equal(loop_add(&x->loop, &x->timer_w, x->timer_fd, EPOLLIN, on_timer, x), 0);
	dbl_ops.ctx = x;
}

static void fx_fini(struct fx *x)
{
	char p[108];

	fwd_stop(&x->fw);
	if (x->fd >= 0)
		close(x->fd);
	for (uint32_t port = 7000; port < 7003; port++) {
		dbl_path(x, port, p, sizeof(p));
		unlink(p);
	}
	loop_del(&x->loop, &x->timer_w);
	close(x->timer_fd);
	loop_fini(&x->loop);
	rmdir(x->dir);
}

static void test_listeners_hand_over_clients(void **state)
{
	static const struct cli_fwd_port ports[] = { { 7000, false }, { 7001, true } };
	struct fx x;
	char p[108];
	int c1, c2;

	(void)state;
	fx_init(&x);
	assert_int_equal(fwd_start(&x.fw, &x.loop, "t", &dbl_ops, ports, 2, on_connect, &x), 0);
	assert_int_equal(x.fw.n, 2);
	dbl_path(&x, 7000, p, sizeof(p));
	c1 = ut_connect(p, SOCK_STREAM);
	run(&x, 2000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.port, 7000);
	assert_int_equal(x.type, SOCK_STREAM);
	close(x.fd);
	dbl_path(&x, 7001, p, sizeof(p));
	c2 = ut_connect(p, SOCK_SEQPACKET);
	run(&x, 2000);
	assert_int_equal(x.calls, 2);
	assert_int_equal(x.port, 7001);
	assert_int_equal(x.type, SOCK_SEQPACKET);
	assert_int_equal(x.fw.accepted, 2);
	close(c1);
	close(c2);
	fx_fini(&x);
}

static void test_listen_failure_closes_all(void **state)
{
	static const struct cli_fwd_port ports[] = { { 7000, false }, { 7001, false },
						     { 7002, false } };
	struct fx x;

	(void)state;
	fx_init(&x);
	x.fail_port = 7001;
	assert_int_equal(fwd_start(&x.fw, &x.loop, "t", &dbl_ops, ports, 3, on_connect, &x),
			 -EADDRINUSE);
	assert_int_equal(x.listens, 2); /* stopped at the failing port */
	assert_int_equal(x.fw.n, 0);
	assert_int_equal(x.fw.lst[0].fd, -1); /* the first listener was closed */
	fx_fini(&x);
}

static void test_stream_ops_stream(void **state)
{
	struct stream s;
	struct iovec v;
	unsigned int fl = 9;
	char buf[16];
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	stream_vsock_init(&s, sp[0]);
	v = (struct iovec){ buf, sizeof(buf) };
	assert_int_equal(s.ops->readv(&s, &v, 1, &fl), -EAGAIN);
	v = (struct iovec){ (void *)"hello", 5 };
	assert_int_equal(s.ops->writev(&s, &v, 1, 0), 5);
	assert_int_equal(read(sp[1], buf, sizeof(buf)), 5);
	assert_int_equal(write(sp[1], "abc", 3), 3);
	v = (struct iovec){ buf, sizeof(buf) };
	assert_int_equal(s.ops->readv(&s, &v, 1, &fl), 3);
	assert_memory_equal(buf, "abc", 3);
	/* half-close both ways */
	assert_int_equal(s.ops->shutdown_wr(&s), 0);
	assert_int_equal(read(sp[1], buf, sizeof(buf)), 0);
	assert_int_equal(shutdown(sp[1], SHUT_WR), 0);
	assert_int_equal(s.ops->readv(&s, &v, 1, &fl), 0);
	s.ops->close(&s);
	assert_int_equal(s.fd, -1);
	close(sp[1]);
}

static void test_stream_ops_seqpacket(void **state)
{
	struct stream s;
	struct iovec v[2];
	unsigned int fl = 0;
	char a[4], b[16];
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
	stream_vsock_init(&s, sp[0]);
	assert_int_equal(s.ops->peek_len(&s), -EAGAIN);
	assert_int_equal(send(sp[1], "0123456789", 10, MSG_EOR), 10);
	assert_int_equal(send(sp[1], "xy", 2, 0), 2);
	assert_int_equal(s.ops->peek_len(&s), 10);
	assert_int_equal(s.ops->peek_len(&s), 10); /* a peek consumes nothing */
	v[0] = (struct iovec){ a, sizeof(a) };
	v[1] = (struct iovec){ b, sizeof(b) };
	assert_int_equal(s.ops->readv(&s, v, 2, &fl), 10);
	assert_memory_equal(a, "0123", 4);
	assert_memory_equal(b, "456789", 6);
	assert_false(fl & STREAM_F_TRUNC);
	assert_int_equal(s.ops->peek_len(&s), 2);
	v[0] = (struct iovec){ a, 1 };
	assert_int_equal(s.ops->readv(&s, v, 1, &fl), 1);
	assert_true(fl & STREAM_F_TRUNC); /* one message per read */
	/* a whole message each write, with its EOR */
	v[0] = (struct iovec){ (void *)"msg", 3 };
	assert_int_equal(s.ops->writev(&s, v, 1, STREAM_F_EOR), 3);
	assert_int_equal(recv(sp[1], b, sizeof(b), 0), 3);
	/* the end of the stream */
	assert_int_equal(shutdown(sp[1], SHUT_WR), 0);
	assert_int_equal(s.ops->peek_len(&s), -EPIPE);
	s.ops->close(&s);
	close(sp[1]);
}

/*
 * Half-closed or closed: both host stream kinds tell them apart after the
 * end of stream (the AF_VSOCK one by an empty send, run here over AF_UNIX,
 * which refuses it the same way once the peer has gone).
 */
static void check_peer_closed(void (*init)(struct stream *, int), int type)
{
	struct stream s;
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, type, 0, sp), 0);
	init(&s, sp[0]);
	assert_false(s.ops->peer_closed(&s));
	assert_int_equal(shutdown(sp[1], SHUT_WR), 0);
	assert_false(s.ops->peer_closed(&s));
	close(sp[1]);
	assert_true(s.ops->peer_closed(&s));
	s.ops->close(&s);
}

static void test_stream_ops_peer_closed(void **state)
{
	(void)state;
	check_peer_closed(stream_vsock_init, SOCK_STREAM);
	check_peer_closed(stream_unix_init, SOCK_STREAM);
	check_peer_closed(stream_unix_init, SOCK_SEQPACKET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listeners_hand_over_clients),
		cmocka_unit_test(test_listen_failure_closes_all),
		cmocka_unit_test(test_stream_ops_stream),
		cmocka_unit_test(test_stream_ops_seqpacket),
		cmocka_unit_test(test_stream_ops_peer_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
