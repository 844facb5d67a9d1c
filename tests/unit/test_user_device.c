// SPDX-License-Identifier: MIT
/*
 * Userspace engine device, the parts a unit test reaches without a guest:
 * the hybrid host side (CONNECT handshakes over real Unix sockets on a real
 * loop: lines in pieces, bytes after the line kept, garbage, over-long
 * lines, silence, the pending cap, SEQPACKET first messages, stale files)
 * and the vhost-user hooks (features, config space, ring positions kept
 * across GET/SET_VRING_BASE without a running ring, a ring without a kick
 * fd refused). The data path runs in tests/integration/test_user_*.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/user/device.h"
#include "engine/user/hybrid.h"
#include "vhost_user/msg.h"
#include "unit_util.h"

struct hx {
	struct loop loop;
	struct hybrid hy;
	char dir[64];
	char path[108];
	char seq_path[120];
	int timer_fd;
	struct loop_watch timer_w;
	int calls, fd, type;
	uint32_t port;
};

static void on_connect(void *ctx, int fd, int type, uint32_t port)
{
	struct hx *x = ctx;

	x->calls++;
	x->fd = fd;
	x->type = type;
	x->port = port;
	loop_stop(&x->loop);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct hx *x = ctx;
	uint64_t v;

	(void)events;
	(void)!read(x->timer_fd, &v, sizeof(v));
	loop_stop(&x->loop);
}

/* Run the loop until a connect callback, or @ms. */
static void run(struct hx *x, int ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000 } };

	assert_int_equal(timerfd_settime(x->timer_fd, 0, &its, NULL), 0);
	assert_int_equal(loop_run(&x->loop), 0);
}

static void hx_init(struct hx *x)
{
	memset(x, 0, sizeof(*x));
	x->fd = -1;
	strcpy(x->dir, "/tmp/udev-XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof(x->path), "%s/v.sock", x->dir);
	snprintf(x->seq_path, sizeof(x->seq_path), "%s_seqpacket", x->path);
	assert_int_equal(loop_init(&x->loop), 0);
	x->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	assert_true(x->timer_fd >= 0);
	x->timer_w.fd = -1;
	x->hy.lst[0].fd = x->hy.lst[1].fd = -1;
	assert_int_equal(loop_add(&x->loop, &x->timer_w, x->timer_fd, EPOLLIN, on_timer, x), 0);
}

static void hx_start(struct hx *x)
{
	assert_int_equal(hybrid_start(&x->hy, &x->loop, "t", x->path, on_connect, x), 0);
}

static void hx_fini(struct hx *x)
{
	hybrid_stop(&x->hy);
	/* stop removes both socket files */
	assert_int_equal(access(x->path, F_OK), -1);
	assert_int_equal(access(x->seq_path, F_OK), -1);
	if (x->fd >= 0)
		close(x->fd);
	loop_del(&x->loop, &x->timer_w);
	close(x->timer_fd);
	loop_fini(&x->loop);
	rmdir(x->dir);
}

/* Has the daemon side closed @fd? (EOF, or a reset when it left bytes unread) */
static bool closed_by_peer(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN);
}

static void test_line_in_pieces_keeps_early_bytes(void **state)
{
	struct hx x;
	char buf[16];
	int c;

	(void)state;
	hx_init(&x);
	hx_start(&x);
	c = ut_connect(x.path, SOCK_STREAM);
	assert_int_equal(write(c, "CONN", 4), 4);
	run(&x, 50);
	assert_int_equal(x.calls, 0);
	assert_true(hybrid_busy(&x.hy));
	assert_int_equal(write(c, "ECT 42\nearly", 12), 12);
	run(&x, 2000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.port, 42);
	assert_int_equal(x.type, SOCK_STREAM);
	assert_false(hybrid_busy(&x.hy));
	/* what the client sent after its line is still there for the connection */
	assert_int_equal(read(x.fd, buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "early", 5);
	close(c);
	hx_fini(&x);
}

static void test_bad_lines_close_that_socket(void **state)
{
	const char *bad[] = { "GET / HTTP/1.0\n", "CONNECT x\n", "Connect 5\n",
			      "CONNECT 4294967296\n", "CONNECT 00000000000000000000000000000001\n" };
	struct hx x;
	int keep, c;

	(void)state;
	hx_init(&x);
	hx_start(&x);
	keep = ut_connect(x.path, SOCK_STREAM);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = ut_connect(x.path, SOCK_STREAM);
		assert_int_equal(write(c, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		run(&x, 100);
		assert_true(closed_by_peer(c));
		close(c);
	}
	/* the quiet one is still waiting, and still gets through */
	assert_false(closed_by_peer(keep));
	assert_int_equal(write(keep, "connect 7\r\n", 11), 11);
	run(&x, 2000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.port, 7);
	close(keep);
	hx_fini(&x);
}

static void test_silence_times_out(void **state)
{
	struct hx x;
	int c;

	(void)state;
	hx_init(&x);
	hx_start(&x);
	x.hy.timeout_ms = 20;
	c = ut_connect(x.path, SOCK_STREAM);
	assert_int_equal(write(c, "CONNECT 1", 9), 9);
	run(&x, 50);
	hybrid_expire(&x.hy, hybrid_now_ms() + 1);
	assert_false(hybrid_busy(&x.hy));
	assert_true(closed_by_peer(c));
	assert_int_equal(x.calls, 0);
	close(c);
	hx_fini(&x);
}

static void test_pending_cap(void **state)
{
	int c[HYBRID_DEFAULT_MAX_PENDING + 1];
	struct hx x;

	(void)state;
	hx_init(&x);
	hx_start(&x);
	for (unsigned int i = 0; i <= HYBRID_DEFAULT_MAX_PENDING; i++) {
		c[i] = ut_connect(x.path, SOCK_STREAM);
		run(&x, 5);
	}
	assert_int_equal(x.hy.npending, HYBRID_DEFAULT_MAX_PENDING);
	assert_int_equal(x.hy.refused, 1);
	assert_true(closed_by_peer(c[HYBRID_DEFAULT_MAX_PENDING]));
	assert_false(closed_by_peer(c[0]));
	/* the waiting ones still complete */
	assert_int_equal(write(c[3], "CONNECT 3\n", 10), 10);
	run(&x, 2000);
	assert_int_equal(x.port, 3);
	for (unsigned int i = 0; i <= HYBRID_DEFAULT_MAX_PENDING; i++)
		close(c[i]);
	hx_fini(&x);
}

static void test_seqpacket_first_message(void **state)
{
	struct hx x;
	int c;

	(void)state;
	hx_init(&x);
	hx_start(&x);
	/* the line split over two messages, or with more in its message: refused */
	c = ut_connect(x.seq_path, SOCK_SEQPACKET);
	assert_int_equal(send(c, "CONN", 4, 0), 4);
	run(&x, 100);
	assert_true(closed_by_peer(c));
	close(c);
	c = ut_connect(x.seq_path, SOCK_SEQPACKET);
	assert_int_equal(send(c, "CONNECT 9\nxyz", 13, 0), 13);
	run(&x, 100);
	assert_true(closed_by_peer(c));
	close(c);
	assert_int_equal(x.calls, 0);
	c = ut_connect(x.seq_path, SOCK_SEQPACKET);
	assert_int_equal(send(c, "CONNECT 9\n", 10, 0), 10);
	run(&x, 2000);
	assert_int_equal(x.calls, 1);
	assert_int_equal(x.port, 9);
	assert_int_equal(x.type, SOCK_SEQPACKET);
	close(c);
	hx_fini(&x);
}

static void test_stale_and_foreign_files(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct hybrid other;
	struct hx x;
	int s, fd;

	(void)state;
	hx_init(&x);
	/* a socket file nobody listens on is replaced */
	s = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, x.path);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	hx_start(&x);
	/* a live one is not: a second VM on the same path fails to start */
	assert_int_equal(hybrid_start(&other, &x.loop, "u", x.path, on_connect, &x), -EADDRINUSE);
	hybrid_stop(&x.hy);
	/* nor is a file that is not a socket */
	fd = open(x.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(hybrid_start(&x.hy, &x.loop, "t", x.path, on_connect, &x), -EEXIST);
	unlink(x.path);
	hx_fini(&x);
}

/* ---- vhost-user hooks ---- */

struct dx {
	struct hx x;
	struct udev d;
	struct vu_dev vu;
};

static void dx_init(struct dx *t)
{
	struct udev_cfg cfg = { .name = "t", .cid = 0x11223344ull, .buf_alloc = 65536,
				.max_queue_size = 256 };

	hx_init(&t->x);
	cfg.uds_path = t->x.path;
	assert_int_equal(udev_init(&t->d, &cfg, &t->x.loop), 0);
	vu_dev_init(&t->vu, "t", -1, &t->d.ops, &t->d);
}

static void dx_fini(struct dx *t)
{
	vu_dev_fini(&t->vu);
	udev_detach(&t->d);
	udev_fini(&t->d);
	hx_fini(&t->x);
}

static int handle(struct dx *t, uint32_t request, const void *payload, uint32_t size,
		  struct vu_msg *reply)
{
	struct vu_msg m;
	bool has_reply;

	memset(&m, 0, sizeof(m));
	m.hdr.request = request;
	m.hdr.flags = VU_FLAG_VERSION;
	m.hdr.size = size;
	memcpy(&m.payload, payload, size);
	return vu_dev_handle(&t->vu, &m, reply, &has_reply);
}

static void test_hooks(void **state)
{
	const uint64_t all = (1ull << 32) | (1ull << 29) | (1ull << 28) | (1ull << 1);
	uint8_t cfg[8];
	struct dx t;

	(void)state;
	dx_init(&t);
	assert_int_equal(t.d.ops.nqueues, 3);
	assert_int_equal(t.d.ops.max_queue_size, 256);
	assert_int_equal(t.d.ops.get_features(&t.vu), all);
	assert_int_equal(t.d.ops.set_features(&t.vu, all), 0);
	assert_true(t.d.ct.cfg.seqpacket);
	assert_int_equal(t.d.ops.set_features(&t.vu, 1ull << 24), -EINVAL);
	assert_int_equal(t.d.ops.set_features(&t.vu, 1ull << 32), 0);
	assert_false(t.d.ct.cfg.seqpacket);
	/* config space: le64 guest_cid, any slice of it, nothing beyond */
	assert_int_equal(t.d.ops.get_config(&t.vu, 0, 8, cfg), 0);
	assert_memory_equal(cfg, "\x44\x33\x22\x11\0\0\0\0", 8);
	assert_int_equal(t.d.ops.get_config(&t.vu, 2, 2, cfg), 0);
	assert_memory_equal(cfg, "\x22\x11", 2);
	assert_int_equal(t.d.ops.get_config(&t.vu, 7, 2, cfg), -EINVAL);
	assert_int_equal(t.d.ops.get_config(&t.vu, 8, 1, cfg), -EINVAL);
	assert_int_equal(t.d.ops.get_config(&t.vu, 0xffffffffu, 1, cfg), -EINVAL);
	assert_false(udev_running(&t.d));
	dx_fini(&t);
}

static void test_ring_positions_without_memory(void **state)
{
	struct vu_vring_state st = { .index = 1, .num = 0xfffe };
	struct vu_msg reply;
	uint64_t v;
	struct dx t;

	(void)state;
	dx_init(&t);
	v = 1ull << 32;
	assert_int_equal(handle(&t, VU_REQ_SET_FEATURES, &v, 8, &reply), 0);
	assert_int_equal(handle(&t, VU_REQ_SET_VRING_BASE, &st, 8, &reply), 0);
	/* nothing runs (no memory, no rings): the position is reported back as set */
	st.num = 0;
	assert_int_equal(handle(&t, VU_REQ_GET_VRING_BASE, &st, 8, &reply), 0);
	assert_int_equal(reply.payload.state.num, 0xfffe);
	/* the event queue keeps whatever it was given */
	st = (struct vu_vring_state){ .index = 2, .num = 9 };
	assert_int_equal(handle(&t, VU_REQ_SET_VRING_BASE, &st, 8, &reply), 0);
	st.num = 0;
	assert_int_equal(handle(&t, VU_REQ_GET_VRING_BASE, &st, 8, &reply), 0);
	assert_int_equal(reply.payload.state.num, 9);
	assert_false(udev_running(&t.d));
	dx_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_in_pieces_keeps_early_bytes),
		cmocka_unit_test(test_bad_lines_close_that_socket),
		cmocka_unit_test(test_silence_times_out),
		cmocka_unit_test(test_pending_cap),
		cmocka_unit_test(test_seqpacket_first_message),
		cmocka_unit_test(test_stale_and_foreign_files),
		cmocka_unit_test(test_hooks),
		cmocka_unit_test(test_ring_positions_without_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
