// SPDX-License-Identifier: MIT
/*
 * vhost-user framing over a socketpair: messages with and without fds,
 * short reads, every malformed header, oversized and truncated messages,
 * fds in the wrong place, and the per-request size/fd table. Each test
 * checks that the process holds the same number of fds afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost_user/msg.h"
#include "unit_util.h"

struct pair {
	int fe;      /* front end side (test writes) */
	int be;      /* back end side (vu_msg_recv reads) */
	int nfds0;   /* fds open before the test */
};

/* A reader that waits for bytes never sent fails the test instead of hanging it. */
static void set_timeout(int sock)
{
	struct timeval tv = { .tv_sec = 1 };

	assert_int_equal(setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static int setup(void **state)
{
	static struct pair p;
	int sv[2];

	p.nfds0 = ut_fd_count();
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p.fe = sv[0];
	p.be = sv[1];
	set_timeout(p.be);
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	if (p->fe >= 0)
		close(p->fe);
	if (p->be >= 0)
		close(p->be);
	assert_int_equal(ut_fd_count(), p->nfds0);
	return 0;
}

/* Raw sendmsg of @len bytes with @nfds fds, independent of vu_msg_send. */
static void raw_send(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctrl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	assert_true(nfds <= 16);
	memset(&ctrl, 0, sizeof(ctrl));
	if (nfds) {
		struct cmsghdr *c;

		mh.msg_control = ctrl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void send_hdr(int sock, uint32_t request, uint32_t flags, uint32_t size, const int *fds,
		     unsigned int nfds)
{
	struct vu_hdr h = { .request = request, .flags = flags, .size = size };

	raw_send(sock, &h, sizeof(h), fds, nfds);
}

static void make_eventfds(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
}

static void close_all(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		close(fds[i]);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/*
 * The message sent so far must be refused with @want and leave no fd open;
 * @hang_up closes the front end first (EOF in the middle of the message).
 */
static void expect_refused(struct pair *p, bool hang_up, int want)
{
	struct vu_msg in;

	if (hang_up) {
		close(p->fe);
		p->fe = -1;
	}
	assert_int_equal(vu_msg_recv(p->be, &in), want);
	assert_int_equal(in.nfds, 0);
}

static void test_roundtrip_with_fds(void **state)
{
	struct pair *p = *state;
	struct vu_msg out = { .hdr = { VU_REQ_SET_VRING_CALL, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, 8 } };
	struct vu_msg in;

	make_eventfds(out.fds, 2);
	out.nfds = 2;
	out.payload.u64 = 0x1234;
	assert_int_equal(vu_msg_send(p->fe, &out), 0);
	assert_int_equal(vu_msg_recv(p->be, &in), 0);
	assert_int_equal(in.hdr.request, VU_REQ_SET_VRING_CALL);
	assert_int_equal(in.hdr.flags, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY);
	assert_int_equal(in.hdr.size, 8);
	assert_int_equal(in.payload.u64, 0x1234);
	assert_int_equal(in.nfds, 2);
	for (unsigned int i = 0; i < 2; i++) {
		assert_true(same_file(in.fds[i], out.fds[i]));
		assert_true(fcntl(in.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	close_all(out.fds, 2);
	vu_msg_close_fds(&in);
	assert_int_equal(in.nfds, 0);
}

static void test_roundtrip_no_payload(void **state)
{
	struct pair *p = *state;
	struct vu_msg out = { .hdr = { VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 0 } };
	struct vu_msg in;

	assert_int_equal(vu_msg_send(p->fe, &out), 0);
	assert_int_equal(vu_msg_recv(p->be, &in), 0);
	assert_int_equal(in.hdr.request, VU_REQ_GET_FEATURES);
	assert_int_equal(in.hdr.size, 0);
	assert_int_equal(in.nfds, 0);
}

/* A child writes the message in small pieces so the reader sees short reads. */
static void test_short_reads(void **state)
{
	struct pair *p = *state;
	uint8_t buf[VU_HDR_SIZE + 40];
	struct vu_hdr h = { VU_REQ_SET_VRING_ADDR, VU_FLAG_VERSION, 40 };
	struct vu_msg in;
	int fd, status;
	pid_t pid;

	memcpy(buf, &h, sizeof(h));
	for (unsigned int i = 0; i < 40; i++)
		buf[VU_HDR_SIZE + i] = (uint8_t)(i + 1);
	make_eventfds(&fd, 1);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const size_t cut[] = { 0, 5, 12, 20, 52 };

		for (unsigned int i = 0; i + 1 < 5; i++) {
			raw_send(p->fe, buf + cut[i], cut[i + 1] - cut[i], &fd, i == 0);
			usleep(20000);
		}
		_exit(0);
	}
	assert_int_equal(vu_msg_recv(p->be, &in), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(in.hdr.size, 40);
	assert_memory_equal(in.payload.raw, buf + VU_HDR_SIZE, 40);
	assert_int_equal(in.nfds, 1);
	assert_true(same_file(in.fds[0], fd));
	vu_msg_close_fds(&in);
	close(fd);
}

static void test_eof_before_header(void **state)
{
	expect_refused(*state, true, -ECONNRESET);
}

static void test_truncated_header(void **state)
{
	struct pair *p = *state;
	struct vu_hdr h = { VU_REQ_SET_VRING_KICK, VU_FLAG_VERSION, 8 };
	int fd;

	make_eventfds(&fd, 1);
	raw_send(p->fe, &h, 5, &fd, 1);
	close(fd);
	expect_refused(p, true, -EPROTO);
}

static void test_truncated_payload(void **state)
{
	struct pair *p = *state;
	uint8_t part[3] = { 1, 2, 3 };
	int fd;

	make_eventfds(&fd, 1);
	send_hdr(p->fe, VU_REQ_SET_VRING_KICK, VU_FLAG_VERSION, 8, &fd, 1);
	raw_send(p->fe, part, sizeof(part), NULL, 0);
	close(fd);
	expect_refused(p, true, -EPROTO);
}

static void test_oversized_payload(void **state)
{
	struct pair *p = *state;
	int fd;

	make_eventfds(&fd, 1);
	send_hdr(p->fe, VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, VU_MAX_PAYLOAD + 1, &fd, 1);
	close(fd);
	expect_refused(p, false, -EBADMSG);
}

static void test_max_payload_accepted(void **state)
{
	struct pair *p = *state;
	static struct vu_msg out, in;

	out.hdr = (struct vu_hdr){ VU_REQ_CREATE_CRYPTO_SESSION, VU_FLAG_VERSION, VU_MAX_PAYLOAD };
	memset(out.payload.raw, 0xab, VU_MAX_PAYLOAD);
	out.nfds = 0;
	/* 4 KiB fits the socket buffer, so one thread can write and then read */
	assert_int_equal(vu_msg_send(p->fe, &out), 0);
	assert_int_equal(vu_msg_recv(p->be, &in), 0);
	assert_int_equal(in.hdr.size, VU_MAX_PAYLOAD);
	assert_memory_equal(in.payload.raw, out.payload.raw, VU_MAX_PAYLOAD);
}

static void test_bad_flags(void **state)
{
	static const uint32_t bad[] = {
		0x0, 0x2, 0x3, VU_FLAG_VERSION | VU_FLAG_REPLY, VU_REPLY_FLAGS | VU_FLAG_NEED_REPLY,
		VU_FLAG_VERSION | 0x10, VU_FLAG_VERSION | 0x80000000u, 0xffffffffu,
	};
	(void)state;
	/* a fresh connection each time: a refused message leaves the stream unusable */
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pair q;
		int fd, sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		q = (struct pair){ .fe = sv[0], .be = sv[1] };
		set_timeout(q.be);
		make_eventfds(&fd, 1);
		send_hdr(q.fe, VU_REQ_SET_VRING_CALL, bad[i], 8, &fd, 1);
		close(fd);
		expect_refused(&q, true, -EPROTO);
		close(q.be);
	}
}

static void test_too_many_fds(void **state)
{
	struct pair *p = *state;
	int fds[VU_MAX_FDS + 1];

	make_eventfds(fds, VU_MAX_FDS + 1);
	send_hdr(p->fe, VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, 0, fds, VU_MAX_FDS + 1);
	close_all(fds, VU_MAX_FDS + 1);
	expect_refused(p, false, -EPROTO);
}

static void test_max_fds_accepted(void **state)
{
	struct pair *p = *state;
	struct vu_msg in;
	int fds[VU_MAX_FDS];

	make_eventfds(fds, VU_MAX_FDS);
	send_hdr(p->fe, VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, 0, fds, VU_MAX_FDS);
	close_all(fds, VU_MAX_FDS);
	assert_int_equal(vu_msg_recv(p->be, &in), 0);
	assert_int_equal(in.nfds, VU_MAX_FDS);
	vu_msg_close_fds(&in);
}

/* Two header pieces each carrying fds: more than 8 in total is refused too. */
static void test_too_many_fds_split(void **state)
{
	struct pair *p = *state;
	struct vu_hdr h = { VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, 0 };
	int fds[6];
	pid_t pid;
	int status;

	make_eventfds(fds, 6);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		raw_send(p->fe, &h, 4, fds, 6);
		usleep(20000);
		raw_send(p->fe, (char *)&h + 4, 8, fds, 6);
		_exit(0);
	}
	expect_refused(p, false, -EPROTO);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	close_all(fds, 6);
}

static void test_fds_with_payload(void **state)
{
	struct pair *p = *state;
	uint64_t v = 0;
	int fd;

	make_eventfds(&fd, 1);
	send_hdr(p->fe, VU_REQ_SET_VRING_KICK, VU_FLAG_VERSION, 8, NULL, 0);
	raw_send(p->fe, &v, sizeof(v), &fd, 1);
	close(fd);
	expect_refused(p, false, -EPROTO);
}

static void test_send_errors(void **state)
{
	struct pair *p = *state;
	struct vu_msg m = { .hdr = { VU_REQ_GET_FEATURES, VU_REPLY_FLAGS, VU_MAX_PAYLOAD + 1 } };

	assert_int_equal(vu_msg_send(p->be, &m), -EINVAL);
	m.hdr.size = 0;
	m.nfds = VU_MAX_FDS + 1;
	assert_int_equal(vu_msg_send(p->be, &m), -EINVAL);
	m.nfds = 0;
	close(p->fe);
	p->fe = -1;
	/* MSG_NOSIGNAL: an error, not SIGPIPE killing the test */
	assert_int_equal(vu_msg_send(p->be, &m), -EPIPE);
}

/* 10^4 fd-carrying messages must not leave one fd behind. */
static void test_no_fd_leak_loop(void **state)
{
	struct pair *p = *state;
	struct vu_msg out = { .hdr = { VU_REQ_SET_VRING_KICK, VU_FLAG_VERSION, 8 } };
	struct vu_msg in;
	int before;

	make_eventfds(out.fds, 1);
	out.nfds = 1;
	before = ut_fd_count();
	for (unsigned int i = 0; i < 10000; i++) {
		assert_int_equal(vu_msg_send(p->fe, &out), 0);
		assert_int_equal(vu_msg_recv(p->be, &in), 0);
		assert_int_equal(vu_msg_check(&in), 0);
		vu_msg_close_fds(&in);
	}
	assert_int_equal(ut_fd_count(), before);
	close(out.fds[0]);
}

static void test_take_fd(void **state)
{
	struct vu_msg m = { .nfds = 2 };
	int fd;

	(void)state;
	make_eventfds(m.fds, 2);
	fd = vu_msg_take_fd(&m, 1);
	assert_true(fd >= 0);
	assert_int_equal(m.fds[1], -1);
	assert_int_equal(vu_msg_take_fd(&m, 1), -1);
	assert_int_equal(vu_msg_take_fd(&m, 2), -1);
	assert_int_equal(vu_msg_take_fd(&m, 1000), -1);
	vu_msg_close_fds(&m);
	/* the taken fd is still ours and open */
	assert_int_equal(fcntl(fd, F_GETFD) >= 0, 1);
	close(fd);
}

/* --- vu_msg_check: sizes, fd counts, unknown requests --- */

static int check(uint32_t request, uint32_t size, unsigned int nfds)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr = (struct vu_hdr){ request, VU_FLAG_VERSION, size };
	m.nfds = nfds;
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		m.fds[i] = -1;
	return vu_msg_check(&m);
}

static void test_check_fixed_sizes(void **state)
{
	static const struct {
		uint32_t request, size;
	} t[] = {
		{ VU_REQ_GET_FEATURES, 0 },           { VU_REQ_SET_FEATURES, 8 },
		{ VU_REQ_SET_OWNER, 0 },              { VU_REQ_RESET_OWNER, 0 },
		{ VU_REQ_SET_VRING_NUM, 8 },          { VU_REQ_SET_VRING_ADDR, 40 },
		{ VU_REQ_SET_VRING_BASE, 8 },         { VU_REQ_GET_VRING_BASE, 8 },
		{ VU_REQ_GET_PROTOCOL_FEATURES, 0 },  { VU_REQ_SET_PROTOCOL_FEATURES, 8 },
		{ VU_REQ_GET_QUEUE_NUM, 0 },          { VU_REQ_SET_VRING_ENABLE, 8 },
		{ VU_REQ_RESET_DEVICE, 0 },           { VU_REQ_SET_LOG_BASE, 16 },
		{ VU_REQ_IOTLB_MSG, 32 },             { VU_REQ_GET_INFLIGHT_FD, 24 },
		{ VU_REQ_REM_MEM_REG, 40 },           { VU_REQ_SET_STATUS, 8 },
	};

	(void)state;
	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(check(t[i].request, t[i].size, 0), 0);
		assert_int_equal(check(t[i].request, t[i].size + 1, 0), -EBADMSG);
		if (t[i].size)
			assert_int_equal(check(t[i].request, t[i].size - 1, 0), -EBADMSG);
		assert_int_equal(check(t[i].request, VU_MAX_PAYLOAD + 1, 0), -EBADMSG);
	}
}

static void test_check_vring_fd_rule(void **state)
{
	static const uint32_t reqs[] = { VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_CALL,
					 VU_REQ_SET_VRING_ERR };
	struct vu_msg m;

	(void)state;
	for (unsigned int i = 0; i < 3; i++) {
		memset(&m, 0, sizeof(m));
		m.hdr = (struct vu_hdr){ reqs[i], VU_FLAG_VERSION, 8 };
		m.payload.u64 = 1;
		m.nfds = 1;
		assert_int_equal(vu_msg_check(&m), 0);
		m.nfds = 0;
		assert_int_equal(vu_msg_check(&m), -EPROTO);    /* bit 8 clear, no fd */
		m.payload.u64 = 1 | VU_VRING_NOFD_MASK;
		assert_int_equal(vu_msg_check(&m), 0);
		m.nfds = 1;
		assert_int_equal(vu_msg_check(&m), -EPROTO);    /* bit 8 set, an fd */
		m.nfds = 2;
		m.payload.u64 = 1;
		assert_int_equal(vu_msg_check(&m), -EPROTO);
	}
}

static void test_check_fd_counts(void **state)
{
	static const uint32_t one[] = { VU_REQ_SET_LOG_FD, VU_REQ_SET_BACKEND_REQ_FD,
					VU_REQ_SET_INFLIGHT_FD, VU_REQ_ADD_MEM_REG };
	static const uint32_t sizes[] = { 0, 0, 24, 40 };

	(void)state;
	for (unsigned int i = 0; i < 4; i++) {
		assert_int_equal(check(one[i], sizes[i], 1), 0);
		assert_int_equal(check(one[i], sizes[i], 0), -EPROTO);
		assert_int_equal(check(one[i], sizes[i], 2), -EPROTO);
	}
	/* fds on requests that take none */
	assert_int_equal(check(VU_REQ_GET_FEATURES, 0, 1), -EPROTO);
	assert_int_equal(check(VU_REQ_SET_VRING_NUM, 8, 1), -EPROTO);
	assert_int_equal(check(VU_REQ_GET_CONFIG, 0, 1), -EBADMSG);
	/* REM_MEM_REG: spec allows one fd (to be closed) */
	assert_int_equal(check(VU_REQ_REM_MEM_REG, 40, 1), 0);
	assert_int_equal(check(VU_REQ_REM_MEM_REG, 40, 2), -EPROTO);
	assert_int_equal(check(VU_REQ_GET_FEATURES, 0, VU_MAX_FDS + 1), -EBADMSG);
}

static int check_mem(uint32_t nregions, uint32_t padding, uint32_t size, unsigned int nfds)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr = (struct vu_hdr){ VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION, size };
	m.payload.mem.nregions = nregions;
	m.payload.mem.padding = padding;
	m.nfds = nfds;
	return vu_msg_check(&m);
}

static void test_check_mem_table(void **state)
{
	(void)state;
	assert_int_equal(check_mem(1, 0, 40, 1), 0);
	assert_int_equal(check_mem(2, 0, 72, 2), 0);
	assert_int_equal(check_mem(8, 0, 264, 8), 0);
	assert_int_equal(check_mem(0, 0, 8, 0), -EBADMSG);
	assert_int_equal(check_mem(9, 0, 8 + 9 * 32, 8), -EBADMSG);
	assert_int_equal(check_mem(0xffffffffu, 0, 264, 8), -EBADMSG);
	assert_int_equal(check_mem(2, 0, 8 + 8 * 32, 2), -EBADMSG);  /* full array sent */
	assert_int_equal(check_mem(2, 0, 71, 2), -EBADMSG);
	assert_int_equal(check_mem(1, 1, 40, 1), -EBADMSG);          /* padding */
	assert_int_equal(check_mem(1, 0, 4, 1), -EBADMSG);
	assert_int_equal(check_mem(1, 0, 0, 1), -EBADMSG);
	assert_int_equal(check_mem(2, 0, 72, 1), -EPROTO);           /* fewer fds */
	assert_int_equal(check_mem(2, 0, 72, 3), -EPROTO);           /* more fds */
}

static int check_config(uint32_t request, uint32_t cfg_size, uint32_t size)
{
	struct vu_msg m;

	memset(&m, 0, sizeof(m));
	m.hdr = (struct vu_hdr){ request, VU_FLAG_VERSION, size };
	m.payload.config.size = cfg_size;
	return vu_msg_check(&m);
}

static void test_check_config(void **state)
{
	(void)state;
	for (uint32_t r = VU_REQ_GET_CONFIG; r <= VU_REQ_SET_CONFIG; r++) {
		assert_int_equal(check_config(r, 8, 20), 0);
		assert_int_equal(check_config(r, 0, 12), 0);
		assert_int_equal(check_config(r, 256, 268), 0);
		assert_int_equal(check_config(r, 257, 269), -EBADMSG);
		assert_int_equal(check_config(r, 8, 12), -EBADMSG);
		assert_int_equal(check_config(r, 8, 21), -EBADMSG);
		assert_int_equal(check_config(r, 0, 11), -EBADMSG);
		assert_int_equal(check_config(r, 0xfffffff4u, 0), -EBADMSG);  /* 12 + size wraps */
	}
}

static void test_check_unknown_and_flags(void **state)
{
	struct vu_msg m;

	(void)state;
	assert_int_equal(check(VU_REQ_NONE, 0, 0), -EOPNOTSUPP);
	assert_int_equal(check(VU_REQ_MAX, 0, 0), -EOPNOTSUPP);
	assert_int_equal(check(99, 0, 0), -EOPNOTSUPP);
	assert_int_equal(check(0xffffffffu, 0, 0), -EOPNOTSUPP);
	memset(&m, 0, sizeof(m));
	m.hdr = (struct vu_hdr){ VU_REQ_GET_FEATURES, VU_REPLY_FLAGS, 0 };
	assert_int_equal(vu_msg_check(&m), -EPROTO);
	m.hdr.flags = VU_FLAG_VERSION | 0x100;
	assert_int_equal(vu_msg_check(&m), -EPROTO);
	m.hdr.flags = 2;
	assert_int_equal(vu_msg_check(&m), -EPROTO);
	m.hdr.flags = VU_FLAG_VERSION | VU_FLAG_NEED_REPLY;
	assert_int_equal(vu_msg_check(&m), 0);
}

static void test_request_names(void **state)
{
	(void)state;
	assert_string_equal(vu_request_name(VU_REQ_SET_MEM_TABLE), "SET_MEM_TABLE");
	assert_string_equal(vu_request_name(VU_REQ_GET_VRING_BASE), "GET_VRING_BASE");
	assert_string_equal(vu_request_name(VU_REQ_SET_BACKEND_REQ_FD), "SET_BACKEND_REQ_FD");
	assert_string_equal(vu_request_name(VU_REQ_GET_SHMEM_CONFIG), "GET_SHMEM_CONFIG");
	assert_string_equal(vu_request_name(VU_REQ_MAX), "UNKNOWN");
	assert_string_equal(vu_request_name(0xffffffffu), "UNKNOWN");
	/* every request has its own name */
	for (uint32_t a = 1; a < VU_REQ_MAX; a++) {
		assert_string_not_equal(vu_request_name(a), "UNKNOWN");
		for (uint32_t b = a + 1; b < VU_REQ_MAX; b++)
			assert_string_not_equal(vu_request_name(a), vu_request_name(b));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_with_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_no_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof_before_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_payload_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_fds_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_fds_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fds_with_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_send_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fd_leak_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take_fd, setup, teardown),
		cmocka_unit_test(test_check_fixed_sizes),
		cmocka_unit_test(test_check_vring_fd_rule),
		cmocka_unit_test(test_check_fd_counts),
		cmocka_unit_test(test_check_mem_table),
		cmocka_unit_test(test_check_config),
		cmocka_unit_test(test_check_unknown_and_flags),
		cmocka_unit_test(test_request_names),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
