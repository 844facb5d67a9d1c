// SPDX-License-Identifier: MIT
/*
 * vhost-user framing: one message is a 12-byte header, hdr.size payload
 * bytes and up to VU_MAX_FDS descriptors passed as SCM_RIGHTS.
 *
 * Reading: the header comes in with recvmsg() and an ancillary buffer for
 * VU_MAX_FDS fds, looping over short reads and EINTR. The flags and the size
 * are checked before a single payload byte is read, so a hostile size never
 * makes us buffer more than VU_MAX_PAYLOAD. Descriptors are accepted only
 * while the header is being read (front ends attach them to the first byte
 * of the message); any that arrive with the payload make the message
 * invalid. Received fds are close-on-exec from the start (MSG_CMSG_CLOEXEC).
 *
 * A message must arrive whole within VU_MSG_DEADLINE_MS of its first byte.
 * The server's receive timeout only bounds each read, so without this a
 * front end sending a byte every few seconds would hold the VM's loop for
 * hours per message; with blocking sockets the bound is the deadline plus
 * one receive timeout.
 *
 * Invariant: on every error path the message holds no open fd, so a refused
 * message can never leak one; msg->nfds only counts fds we actually own.
 *
 * The per-request table below is the single place that knows each request's
 * name, payload layout and fd count; vu_msg_check() needs no session state.
 */
#include "vhost_user/msg.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost_user/transport.h"

/* How a request's payload size is judged. */
enum vu_size_rule {
	VU_SIZE_FIXED,   /* exactly .size bytes */
	VU_SIZE_MEM,     /* 8 + 32 * nregions */
	VU_SIZE_CONFIG,  /* 12 + config.size */
	VU_SIZE_ANY,     /* variable layout we never parse (refused later) */
};

/* How many fds a request may carry. */
enum vu_fd_rule {
	VU_FDS_NONE,
	VU_FDS_ONE,
	VU_FDS_OPTIONAL,  /* 0 or 1 (spec: REM_MEM_REG MAY carry one) */
	VU_FDS_VRING,     /* KICK/CALL/ERR: 1 unless bit 8 says "no fd" */
	VU_FDS_REGIONS,   /* SET_MEM_TABLE: one per region */
};

struct vu_req_info {
	const char *name;
	enum vu_size_rule size_rule;
	uint32_t size;
	enum vu_fd_rule fds;
};

#define REQ(id, rule, sz, fd) [VU_REQ_##id] = { #id, VU_SIZE_##rule, sz, VU_FDS_##fd }

/*
 * Sizes from the spec's payload layouts (PROTOCOLS.md §1.2/§1.3). Requests
 * whose payload QEMU actually sends differently from the spec table
 * (SET_LOG_BASE: the 16-byte log description) follow QEMU.
 */
static const struct vu_req_info req_info[VU_REQ_MAX] = {
	REQ(NONE, FIXED, 0, NONE),
	REQ(GET_FEATURES, FIXED, 0, NONE),
	REQ(SET_FEATURES, FIXED, 8, NONE),
	REQ(SET_OWNER, FIXED, 0, NONE),
	REQ(RESET_OWNER, FIXED, 0, NONE),
	REQ(SET_MEM_TABLE, MEM, 0, REGIONS),
	REQ(SET_LOG_BASE, FIXED, 16, OPTIONAL),
	REQ(SET_LOG_FD, FIXED, 0, ONE),
	REQ(SET_VRING_NUM, FIXED, 8, NONE),
	REQ(SET_VRING_ADDR, FIXED, 40, NONE),
	REQ(SET_VRING_BASE, FIXED, 8, NONE),
	REQ(GET_VRING_BASE, FIXED, 8, NONE),
	REQ(SET_VRING_KICK, FIXED, 8, VRING),
	REQ(SET_VRING_CALL, FIXED, 8, VRING),
	REQ(SET_VRING_ERR, FIXED, 8, VRING),
	REQ(GET_PROTOCOL_FEATURES, FIXED, 0, NONE),
	REQ(SET_PROTOCOL_FEATURES, FIXED, 8, NONE),
	REQ(GET_QUEUE_NUM, FIXED, 0, NONE),
	REQ(SET_VRING_ENABLE, FIXED, 8, NONE),
	REQ(SEND_RARP, FIXED, 8, NONE),
	REQ(NET_SET_MTU, FIXED, 8, NONE),
	REQ(SET_BACKEND_REQ_FD, FIXED, 0, ONE),
	REQ(IOTLB_MSG, FIXED, 32, NONE),
	REQ(SET_VRING_ENDIAN, FIXED, 8, NONE),
	REQ(GET_CONFIG, CONFIG, 0, NONE),
	REQ(SET_CONFIG, CONFIG, 0, NONE),
	REQ(CREATE_CRYPTO_SESSION, ANY, 0, NONE),
	REQ(CLOSE_CRYPTO_SESSION, FIXED, 8, NONE),
	REQ(POSTCOPY_ADVISE, FIXED, 0, NONE),
	REQ(POSTCOPY_LISTEN, FIXED, 0, NONE),
	REQ(POSTCOPY_END, FIXED, 0, NONE),
	REQ(GET_INFLIGHT_FD, FIXED, 24, NONE),
	REQ(SET_INFLIGHT_FD, FIXED, 24, ONE),
	REQ(GPU_SET_SOCKET, FIXED, 0, ONE),
	REQ(RESET_DEVICE, FIXED, 0, NONE),
	REQ(VRING_KICK, FIXED, 8, NONE),
	REQ(GET_MAX_MEM_SLOTS, FIXED, 0, NONE),
	REQ(ADD_MEM_REG, FIXED, 40, ONE),
	REQ(REM_MEM_REG, FIXED, 40, OPTIONAL),
	REQ(SET_STATUS, FIXED, 8, NONE),
	REQ(GET_STATUS, FIXED, 0, NONE),
	REQ(GET_SHARED_OBJECT, FIXED, 16, NONE),
	REQ(SET_DEVICE_STATE_FD, FIXED, 8, ONE),
	REQ(CHECK_DEVICE_STATE, FIXED, 0, NONE),
	REQ(GET_SHMEM_CONFIG, FIXED, 0, NONE),
};

#undef REQ

const char *vu_request_name(uint32_t request)
{
	if (request >= VU_REQ_MAX || !req_info[request].name)
		return "UNKNOWN";
	return req_info[request].name;
}

void vu_msg_close_fds(struct vu_msg *msg)
{
	unsigned int n = msg->nfds < VU_MAX_FDS ? msg->nfds : VU_MAX_FDS;

	for (unsigned int i = 0; i < n; i++) {
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
		msg->fds[i] = -1;
	}
	msg->nfds = 0;
}

int vu_msg_take_fd(struct vu_msg *msg, unsigned int i)
{
	int fd;

	if (i >= msg->nfds || i >= VU_MAX_FDS)
		return -1;
	fd = msg->fds[i];
	msg->fds[i] = -1;
	return fd;
}

/* Spec "Message Specification": version 1, no REPLY on a request, bits 4-31 reserved. */
static int check_flags(const struct vu_hdr *hdr)
{
	uint32_t known = VU_FLAG_VERSION_MASK | VU_FLAG_REPLY | VU_FLAG_NEED_REPLY;

	if ((hdr->flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION || (hdr->flags & VU_FLAG_REPLY) ||
	    (hdr->flags & ~known)) {
		log_warn("vhost-user: %s: bad header flags 0x%x (want version 1, no REPLY, no reserved bits)",
			 vu_request_name(hdr->request), hdr->flags);
		return -EPROTO;
	}
	return 0;
}

/*
 * Collect the SCM_RIGHTS fds of one recvmsg() into @fds (@nfds so far). Any
 * fd past VU_MAX_FDS is closed at once; the caller closes the rest when the
 * message is refused.
 */
static int collect_fds(struct msghdr *mh, int *fds, unsigned int *nfds)
{
	bool too_many = (mh->msg_flags & MSG_CTRUNC) != 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (*nfds < VU_MAX_FDS) {
				fds[(*nfds)++] = fd;
			} else {
				close(fd);
				too_many = true;
			}
		}
	}
	return too_many ? -EPROTO : 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Read exactly @len bytes into @buf, adding received fds to @fds/@nfds.
 * Unless @fds_ok, any fd at all is an error (they belong to no message we
 * accept). A socket timeout (EAGAIN on a blocking socket), or still
 * missing bytes after @deadline, is -ETIMEDOUT.
 * Return: bytes read (< @len only on EOF), or a negative errno.
 */
static ssize_t read_full(int sock, void *buf, size_t len, int *fds, unsigned int *nfds,
			 bool fds_ok, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	size_t done = 0;

	while (done < len) {
		struct iovec iov = { .iov_base = (char *)buf + done, .iov_len = len - done };
		struct msghdr mh = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctrl.buf, .msg_controllen = sizeof(ctrl.buf),
		};
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (collect_fds(&mh, fds, nfds) < 0) {
			log_warn("vhost-user: more than %u descriptors attached to a message",
				 VU_MAX_FDS);
			return -EPROTO;
		}
		if (!fds_ok && *nfds) {
			log_warn("vhost-user: descriptors attached to a message payload");
			return -EPROTO;
		}
		if (n == 0)
			break;
		done += (size_t)n;
		if (done < len && now_ms() > deadline)
			return -ETIMEDOUT;
	}
	return (ssize_t)done;
}

/* The log line for a failed read of the message part @what. */
static void log_read_error(const struct vu_msg *msg, const char *what, ssize_t n)
{
	if (n == -EPROTO)
		return; /* read_full() said why */
	if (n == -ETIMEDOUT)
		log_warn("vhost-user: %s: the front end stalled: no complete %s within %u ms",
			 msg->hdr.request ? vu_request_name(msg->hdr.request) : "message", what,
			 VU_MSG_DEADLINE_MS);
	else
		log_warn("vhost-user: %s: reading the %s: %s",
			 msg->hdr.request ? vu_request_name(msg->hdr.request) : "message", what,
			 strerror((int)-n));
}

static int recv_header(int sock, struct vu_msg *msg, int64_t deadline)
{
	ssize_t n = read_full(sock, &msg->hdr, VU_HDR_SIZE, msg->fds, &msg->nfds, true, deadline);

	if (n < 0) {
		memset(&msg->hdr, 0, sizeof(msg->hdr)); /* a partial header names nothing */
		log_read_error(msg, "header", n);
		return (int)n;
	}
	if (n == 0)
		return -ECONNRESET;
	if ((size_t)n < VU_HDR_SIZE) {
		log_warn("vhost-user: connection closed after %zd of %u header bytes", n, VU_HDR_SIZE);
		return -EPROTO;
	}
	return 0;
}

static int recv_payload(int sock, struct vu_msg *msg, int64_t deadline)
{
	int stray[VU_MAX_FDS];
	unsigned int nstray = 0;
	ssize_t n;

	if (msg->hdr.size > VU_MAX_PAYLOAD) {
		/* The body cannot be skipped safely; the session ends instead. */
		log_warn("vhost-user: %s: payload of %u bytes exceeds the %u-byte limit",
			 vu_request_name(msg->hdr.request), msg->hdr.size, VU_MAX_PAYLOAD);
		return -EBADMSG;
	}
	if (msg->hdr.size == 0)
		return 0;
	n = read_full(sock, msg->payload.raw, msg->hdr.size, stray, &nstray, false, deadline);
	for (unsigned int i = 0; i < nstray; i++)
		close(stray[i]);
	if (n < 0) {
		log_read_error(msg, "payload", n);
		return (int)n;
	}
	if ((size_t)n < msg->hdr.size) {
		log_warn("vhost-user: %s: connection closed after %zd of %u payload bytes",
			 vu_request_name(msg->hdr.request), n, msg->hdr.size);
		return -EPROTO;
	}
	return 0;
}

int vu_msg_recv(int sock, struct vu_msg *msg)
{
	int64_t deadline;
	int rc;

	memset(&msg->hdr, 0, sizeof(msg->hdr));
	msg->nfds = 0;
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		msg->fds[i] = -1;

	deadline = now_ms() + VU_MSG_DEADLINE_MS;
	rc = recv_header(sock, msg, deadline);
	if (rc == 0)
		rc = check_flags(&msg->hdr);
	if (rc == 0)
		rc = recv_payload(sock, msg, deadline);
	if (rc < 0)
		vu_msg_close_fds(msg);
	return rc;
}

static int sock_recv(void *priv, struct vu_msg *msg)
{
	return vu_msg_recv(*(const int *)priv, msg);
}

static int sock_send(void *priv, const struct vu_msg *msg)
{
	return vu_msg_send(*(const int *)priv, msg);
}

const struct vu_transport_ops vu_sock_transport_ops = {
	.recv = sock_recv,
	.send = sock_send,
};

/* @buf must have room for CMSG_SPACE of VU_MAX_FDS ints, aligned for a cmsghdr. */
static void attach_fds(struct msghdr *mh, char *buf, const int *fds, unsigned int nfds)
{
	struct cmsghdr *c;

	mh->msg_control = buf;
	mh->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
}

int vu_msg_send(int sock, const struct vu_msg *msg)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctrl;
	size_t total, done = 0;
	const char *payload = (const char *)msg->payload.raw;
	bool fds_sent = false;

	if (msg->hdr.size > VU_MAX_PAYLOAD || msg->nfds > VU_MAX_FDS)
		return -EINVAL;
	total = VU_HDR_SIZE + msg->hdr.size;
	memset(&ctrl, 0, sizeof(ctrl));
	while (done < total) {
		struct iovec iov[2];
		struct msghdr mh = { .msg_iov = iov };
		ssize_t n;

		/* After a partial write, resume in whichever part we stopped. */
		if (done < VU_HDR_SIZE) {
			iov[0] = (struct iovec){ (char *)&msg->hdr + done, VU_HDR_SIZE - done };
			iov[1] = (struct iovec){ (void *)payload, msg->hdr.size };
			mh.msg_iovlen = msg->hdr.size ? 2 : 1;
		} else {
			iov[0] = (struct iovec){ (void *)(payload + done - VU_HDR_SIZE), total - done };
			mh.msg_iovlen = 1;
		}
		/* the fds ride on the first byte we manage to send */
		if (!fds_sent && msg->nfds)
			attach_fds(&mh, ctrl.buf, msg->fds, msg->nfds);
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		/* a blocking socket's send timeout: the front end stopped reading */
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		if (n == 0)
			return -EIO;
		fds_sent = true;
		done += (size_t)n;
	}
	return 0;
}

/*
 * The size a request's payload must have, judged from the payload itself for
 * the variable layouts. Return: false when even the layout's own header is
 * missing or out of range.
 */
static bool wanted_size(const struct vu_msg *msg, const struct vu_req_info *ri, uint32_t *want)
{
	uint32_t size = msg->hdr.size;

	switch (ri->size_rule) {
	case VU_SIZE_ANY:
		*want = size;
		return true;
	case VU_SIZE_FIXED:
		*want = ri->size;
		return true;
	case VU_SIZE_MEM:
		/* spec: nregions regions follow, and QEMU sends exactly that many */
		if (size < 8 || msg->payload.mem.nregions < 1 ||
		    msg->payload.mem.nregions > VU_MAX_MEM_REGIONS || msg->payload.mem.padding)
			return false;
		*want = 8 + 32 * msg->payload.mem.nregions;
		return true;
	case VU_SIZE_CONFIG:
		if (size < VU_CONFIG_HDR_SIZE || msg->payload.config.size > VU_MAX_CONFIG_SIZE)
			return false;
		*want = VU_CONFIG_HDR_SIZE + msg->payload.config.size;
		return true;
	}
	return false;
}

static int check_size(const struct vu_msg *msg, const struct vu_req_info *ri)
{
	uint32_t want = 0;

	if (wanted_size(msg, ri, &want) && msg->hdr.size == want)
		return 0;
	log_warn("vhost-user: %s: payload of %u bytes does not match the request's layout",
		 ri->name, msg->hdr.size);
	return -EBADMSG;
}

/* Only called once the size is known good, so the payload can be read. */
static unsigned int fds_wanted(const struct vu_msg *msg, const struct vu_req_info *ri,
			       bool fdless_mem, unsigned int *max)
{
	unsigned int want = 0;

	switch (ri->fds) {
	case VU_FDS_NONE:
		break;
	case VU_FDS_ONE:
		want = 1;
		break;
	case VU_FDS_OPTIONAL:
		*max = 1;
		return 0;
	case VU_FDS_VRING:
		want = (msg->payload.u64 & VU_VRING_NOFD_MASK) ? 0 : 1;
		break;
	case VU_FDS_REGIONS:
		want = fdless_mem ? 0 : msg->payload.mem.nregions;
		break;
	}
	*max = want;
	return want;
}

static int check_msg(const struct vu_msg *msg, bool fdless_mem)
{
	const struct vu_req_info *ri;
	unsigned int min, max;
	int rc;

	if (msg->hdr.request == VU_REQ_NONE || msg->hdr.request >= VU_REQ_MAX) {
		log_warn("vhost-user: unknown request %u", msg->hdr.request);
		return -EOPNOTSUPP;
	}
	ri = &req_info[msg->hdr.request];
	rc = check_flags(&msg->hdr);
	if (rc < 0)
		return rc;
	if (msg->hdr.size > VU_MAX_PAYLOAD || msg->nfds > VU_MAX_FDS) {
		log_warn("vhost-user: %s: %u payload bytes, %u fds: over the limits",
			 ri->name, msg->hdr.size, msg->nfds);
		return -EBADMSG;
	}
	rc = check_size(msg, ri);
	if (rc < 0)
		return rc;
	min = fds_wanted(msg, ri, fdless_mem, &max);
	if (msg->nfds < min || msg->nfds > max) {
		log_warn("vhost-user: %s: %u fds attached, %u..%u expected", ri->name, msg->nfds,
			 min, max);
		return -EPROTO;
	}
	return 0;
}

int vu_msg_check(const struct vu_msg *msg)
{
	return check_msg(msg, false);
}

int vu_msg_check_fdless_mem(const struct vu_msg *msg)
{
	return check_msg(msg, true);
}
