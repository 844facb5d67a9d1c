// SPDX-License-Identifier: MIT
/*
 * The vhost-user front end of the test library: a connected Unix stream
 * socket, messages out (with SCM_RIGHTS fds), replies in, and one helper per
 * request the tests need.
 *
 * Replies are checked the way QEMU checks them (PROTOCOLS §1.1, §1.7):
 * the request id must match, flags must be exactly 0x5, the size exactly
 * what the request defines, and no fds may come along. A reply that fails
 * any check is -EPROTO; the connection is then out of step and the caller
 * should close it.
 *
 * Every read waits with poll() and a timeout; the socket itself stays
 * blocking so that a partly written message is always completed.
 */
#include "tfe.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int tfe_verbosity = 1;

void tfe_log(int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	if (level > tfe_verbosity)
		return;
	memcpy(line, "tfe: ", 5);
	va_start(ap, fmt);
	n = vsnprintf(line + 5, sizeof(line) - 6, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n += 5;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* one write per line so that lines from several processes do not mix */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

int64_t tfe_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tfe_remaining_ms(int64_t deadline_ms)
{
	int64_t left = deadline_ms - tfe_now_ms();

	if (left <= 0)
		return 0;
	return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

void tfe_fe_init(struct tfe_fe *fe, int sock)
{
	memset(fe, 0, sizeof(*fe));
	fe->sock = sock;
	fe->timeout_ms = TFE_DEFAULT_TIMEOUT_MS;
	for (unsigned int i = 0; i < TFE_MAX_QUEUES; i++)
		fe->kick[i] = fe->call[i] = fe->err[i] = -1;
}

static int try_connect(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

int tfe_fe_connect(struct tfe_fe *fe, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int64_t deadline = tfe_now_ms() + timeout_ms;
	int fd;

	tfe_fe_init(fe, -1);
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		fd = try_connect(&sa);
		if (fd >= 0)
			break;
		/* not there yet, or a stale file nobody listens on: keep trying */
		if (fd != -ENOENT && fd != -ECONNREFUSED && fd != -EAGAIN)
			return fd;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		poll(NULL, 0, 20);
	}
	fe->sock = fd;
	return 0;
}

void tfe_fe_close(struct tfe_fe *fe)
{
	if (fe->sock >= 0)
		close(fe->sock);
	fe->sock = -1;
	for (unsigned int i = 0; i < TFE_MAX_QUEUES; i++) {
		int *fds[3] = { &fe->kick[i], &fe->call[i], &fe->err[i] };

		for (unsigned int j = 0; j < 3; j++) {
			if (*fds[j] >= 0)
				close(*fds[j]);
			*fds[j] = -1;
		}
	}
}

static int new_eventfd(int *fd)
{
	if (*fd >= 0)
		return 0;
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

int tfe_fe_eventfds(struct tfe_fe *fe, unsigned int nqueues)
{
	int rc = 0;

	if (nqueues > TFE_MAX_QUEUES)
		return -EINVAL;
	for (unsigned int i = 0; i < nqueues && rc == 0; i++) {
		rc = new_eventfd(&fe->kick[i]);
		if (rc == 0)
			rc = new_eventfd(&fe->call[i]);
		if (rc == 0)
			rc = new_eventfd(&fe->err[i]);
	}
	return rc;
}

/* sendmsg() of iov with fds on the first byte, completing short writes. */
static int send_iov(int sock, struct iovec *iov, int iovcnt, const int *fds, unsigned int nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 64)];
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)iovcnt };

	if (nfds > 64)
		return -EINVAL;
	if (nfds > 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	while (mh.msg_iovlen > 0) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (mh.msg_iovlen > 0 && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

int tfe_fe_send(struct tfe_fe *fe, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, unsigned int nfds)
{
	struct vu_hdr hdr = { .request = request, .flags = flags, .size = size };
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = payload ? size : 0 },
	};

	if (fe->sock < 0)
		return -ENOTCONN;
	return send_iov(fe->sock, iov, iov[1].iov_len ? 2 : 1, fds, nfds);
}

int tfe_fe_send_bytes(struct tfe_fe *fe, const void *buf, size_t len, const int *fds,
		      unsigned int nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	if (fe->sock < 0)
		return -ENOTCONN;
	return send_iov(fe->sock, &iov, 1, fds, nfds);
}

static int wait_readable(int fd, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	for (;;) {
		int rc = poll(&p, 1, tfe_remaining_ms(deadline));

		if (rc > 0)
			return 0;
		if (rc == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Where received fds go: up to cap are kept, the rest are closed. */
struct fd_sink {
	int *fds;
	unsigned int cap;
	unsigned int n;
};

static void sink_fds(struct msghdr *mh, struct fd_sink *sink)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		unsigned int cnt;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (unsigned int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned int i = 0; i < cnt; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (sink && sink->n < sink->cap)
				sink->fds[sink->n++] = fd;
			else
				close(fd);
		}
	}
}

/* Receive exactly len bytes; fds that come along go to sink (or are closed). */
static int recv_exact(int sock, void *buf, size_t len, int64_t deadline, struct fd_sink *sink)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 64)];
	size_t got = 0;

	while (got < len) {
		struct iovec iov = { .iov_base = (char *)buf + got, .iov_len = len - got };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
		int rc = wait_readable(sock, deadline);
		ssize_t n;

		if (rc < 0)
			return rc;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		sink_fds(&mh, sink);
		if (n == 0)
			return -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

/* Drain and drop n payload bytes the caller has no room for. */
static int drain(int sock, size_t n, int64_t deadline)
{
	char junk[512];

	while (n > 0) {
		size_t chunk = n < sizeof(junk) ? n : sizeof(junk);
		int rc = recv_exact(sock, junk, chunk, deadline, NULL);

		if (rc < 0)
			return rc;
		n -= chunk;
	}
	return 0;
}

int tfe_fe_recv(struct tfe_fe *fe, struct vu_hdr *hdr, void *payload, size_t cap, int *fds,
		unsigned int *nfds, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	struct fd_sink sink = { .fds = fds, .cap = (fds && nfds) ? *nfds : 0 };
	size_t keep;
	int rc;

	if (nfds)
		*nfds = 0;
	if (fe->sock < 0)
		return -ENOTCONN;
	rc = recv_exact(fe->sock, hdr, sizeof(*hdr), deadline, &sink);
	if (rc == 0) {
		keep = hdr->size < cap ? hdr->size : cap;
		rc = recv_exact(fe->sock, payload, keep, deadline, &sink);
		if (rc == 0 && hdr->size > keep)
			rc = drain(fe->sock, hdr->size - keep, deadline);
		if (rc == 0)
			rc = hdr->size > keep ? -EMSGSIZE : (int)keep;
	}
	if (nfds)
		*nfds = sink.n;
	return rc;
}

static int check_reply(const struct vu_hdr *hdr, uint32_t request, uint32_t size, int rc,
		       unsigned int nfds)
{
	if (rc < 0 && rc != -EMSGSIZE)
		return rc;
	if (hdr->request != request) {
		tfe_log(1, "reply to request %u has request id %u", request, hdr->request);
		return -EPROTO;
	}
	if (hdr->flags != VU_REPLY_FLAGS) {
		tfe_log(1, "reply to request %u has flags 0x%x, not 0x5", request,
			 hdr->flags);
		return -EPROTO;
	}
	if (hdr->size != size || nfds != 0) {
		tfe_log(1, "reply to request %u has size %u (want %u) and %u fds",
			 request, hdr->size, size, nfds);
		return -EPROTO;
	}
	return 0;
}

int tfe_fe_reply(struct tfe_fe *fe, uint32_t request, void *payload, uint32_t size)
{
	struct vu_hdr hdr;
	int fds[4];
	unsigned int nfds = 4;
	int rc = tfe_fe_recv(fe, &hdr, payload, size, fds, &nfds, fe->timeout_ms);

	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	return check_reply(&hdr, request, size, rc, nfds);
}

int tfe_fe_request(struct tfe_fe *fe, uint32_t request, const void *payload, uint32_t size,
		   const int *fds, unsigned int nfds, bool need_reply)
{
	uint32_t flags = VU_FLAG_VERSION | (need_reply ? VU_FLAG_NEED_REPLY : 0);
	int rc = tfe_fe_send(fe, request, flags, payload, size, fds, nfds);

	if (rc < 0 || !need_reply)
		return rc;
	rc = tfe_fe_reply(fe, request, &fe->last_ack, sizeof(fe->last_ack));
	if (rc < 0)
		return rc;
	return fe->last_ack == 0 ? 0 : -EIO;
}

bool tfe_fe_wants_ack(const struct tfe_fe *fe, uint32_t request)
{
	bool negotiated = fe->protocol_acked & (1ull << VU_PROTOCOL_F_REPLY_ACK);

	switch (fe->need_reply) {
	case TFE_NR_NONE:
		return false;
	case TFE_NR_FORCE:
		return true;
	case TFE_NR_ALL:
		return negotiated;
	case TFE_NR_QEMU:
	default:
		return negotiated && request == VU_REQ_SET_MEM_TABLE;
	}
}

int tfe_fe_get_u64(struct tfe_fe *fe, uint32_t request, uint64_t *val)
{
	int rc = tfe_fe_send(fe, request, VU_FLAG_VERSION, NULL, 0, NULL, 0);

	if (rc < 0)
		return rc;
	return tfe_fe_reply(fe, request, val, sizeof(*val));
}

int tfe_fe_set_u64(struct tfe_fe *fe, uint32_t request, uint64_t val)
{
	if (request == VU_REQ_SET_PROTOCOL_FEATURES)
		fe->protocol_acked = val;
	return tfe_fe_request(fe, request, &val, sizeof(val), NULL, 0,
			      tfe_fe_wants_ack(fe, request));
}

int tfe_fe_set_owner(struct tfe_fe *fe)
{
	return tfe_fe_request(fe, VU_REQ_SET_OWNER, NULL, 0, NULL, 0,
			      tfe_fe_wants_ack(fe, VU_REQ_SET_OWNER));
}

int tfe_fe_set_mem_table(struct tfe_fe *fe, const struct tfe_mem *m)
{
	struct vu_mem_table t = { 0 };
	int fds[TFE_MEM_MAX_REGIONS];

	t.nregions = tfe_mem_table(m, t.regions);
	for (unsigned int i = 0; i < t.nregions; i++)
		fds[i] = m->fd;
	/* QEMU sends only the regions in use: 8 + 32 * n bytes */
	return tfe_fe_request(fe, VU_REQ_SET_MEM_TABLE, &t,
			      (uint32_t)(8 + sizeof(struct vu_mem_region) * t.nregions), fds,
			      t.nregions, tfe_fe_wants_ack(fe, VU_REQ_SET_MEM_TABLE));
}

int tfe_fe_set_vring_state(struct tfe_fe *fe, uint32_t request, uint32_t index, uint32_t num)
{
	struct vu_vring_state s = { .index = index, .num = num };

	return tfe_fe_request(fe, request, &s, sizeof(s), NULL, 0, tfe_fe_wants_ack(fe, request));
}

int tfe_fe_set_vring_addr(struct tfe_fe *fe, const struct vu_vring_addr *addr)
{
	return tfe_fe_request(fe, VU_REQ_SET_VRING_ADDR, addr, sizeof(*addr), NULL, 0,
			      tfe_fe_wants_ack(fe, VU_REQ_SET_VRING_ADDR));
}

int tfe_fe_set_vring_fd(struct tfe_fe *fe, uint32_t request, uint32_t index, int fd)
{
	uint64_t v = (index & VU_VRING_IDX_MASK) | (fd < 0 ? VU_VRING_NOFD_MASK : 0);

	return tfe_fe_request(fe, request, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1,
			      tfe_fe_wants_ack(fe, request));
}

int tfe_fe_get_vring_base(struct tfe_fe *fe, uint32_t index, uint32_t *num)
{
	struct vu_vring_state s = { .index = index, .num = 0 };
	int rc = tfe_fe_send(fe, VU_REQ_GET_VRING_BASE, VU_FLAG_VERSION, &s, sizeof(s), NULL, 0);

	if (rc == 0)
		rc = tfe_fe_reply(fe, VU_REQ_GET_VRING_BASE, &s, sizeof(s));
	if (rc < 0)
		return rc;
	if (s.index != index) {
		tfe_log(1, "GET_VRING_BASE for ring %u answered for ring %u", index, s.index);
		return -EPROTO;
	}
	*num = s.num;
	return 0;
}

int tfe_fe_get_config(struct tfe_fe *fe, uint32_t offset, uint32_t size, void *out)
{
	struct vu_config c = { .offset = offset, .size = size, .flags = 0 };
	struct vu_hdr hdr;
	int fds[4];
	unsigned int nfds = 4;
	int rc;

	if (size > VU_MAX_CONFIG_SIZE)
		return -EINVAL;
	rc = tfe_fe_send(fe, VU_REQ_GET_CONFIG, VU_FLAG_VERSION, &c, VU_CONFIG_HDR_SIZE + size,
			 NULL, 0);
	if (rc < 0)
		return rc;
	rc = tfe_fe_recv(fe, &hdr, &c, sizeof(c), fds, &nfds, fe->timeout_ms);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	if (rc >= 0 && nfds == 0 && hdr.size == VU_CONFIG_HDR_SIZE && hdr.request == VU_REQ_GET_CONFIG &&
	    hdr.flags == VU_REPLY_FLAGS)
		return -EIO; /* the spec's error form: no payload */
	rc = check_reply(&hdr, VU_REQ_GET_CONFIG, VU_CONFIG_HDR_SIZE + size, rc, nfds);
	if (rc < 0)
		return rc;
	if (c.offset != offset || c.size != size) {
		tfe_log(1, "GET_CONFIG reply is for %u+%u, asked %u+%u", c.offset, c.size,
			 offset, size);
		return -EPROTO;
	}
	memcpy(out, c.payload, size);
	return 0;
}
