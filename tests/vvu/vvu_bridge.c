/* SPDX-License-Identifier: MIT */
/*
 * The front-end bridge: a vhost-user back end on a Unix socket in front of
 * the VVU device, doing what the VVU proxy in the sibling's VMM does
 * (PROTOCOLS.md §5.3-5.4): it keeps the fds a front end attaches and turns
 * them into device resources (memory regions into BAR 4 at cumulative
 * offsets, kick eventfds into MSI-X notifications, doorbells into call
 * eventfds), and moves the messages themselves, fd-less, through rxq and
 * txq.
 *
 * One thread; it serves one front end at a time and accepts only while the
 * driver is up (DRIVER_OK and SLAVE_UP). A front end that goes away is a
 * zero-length rxq completion; a device reset while a front end is
 * connected ends that front end's session.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost_user/proto.h"
#include "vvu_model.h"

/*
 * Messages go from the socket (native order) to the queues (little-endian)
 * unchanged: that is only right on a little-endian host, which is all this
 * project builds for.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the bridge assumes a little-endian host");

#define POLL_MS 20
#define MAXQ VVM_MAX_VHOST_QUEUES

struct vvb {
	struct vvm *m;
	pthread_t thread;
	bool running;
	int wake;            /* eventfd: model notifications and stop */
	bool stop;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lsock;           /* -1 until the driver is first up */
	int conn;            /* the front end, -1 when none */
	unsigned long conn_gen;
	/* fds the front end gave; call/err are read by the doorbell hook */
	pthread_mutex_t fd_lock;
	int kick[MAXQ], call[MAXQ], err[MAXQ];
	int backend;         /* SET_BACKEND_REQ_FD's socket */
	uint64_t shm_mapped; /* bytes of BAR 4 holding front-end memory */
	/* one message waiting for an rxq buffer */
	uint8_t pend[VVM_MAX_MSG];
	size_t pend_len;
	bool pend_valid;
	bool disc_pending;   /* a zero-length completion is due */
	unsigned long disc_gen;
	bool disc_wait;      /* no new front end before the device was reset */
	unsigned long sessions;
	const char *record_dir;
	FILE *record;
	vvb_mem_filter *filter;
	void *filter_opaque;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void hook_wake(void *opaque)
{
	struct vvb *b = opaque;
	uint64_t one = 1;

	if (write(b->wake, &one, sizeof(one)) < 0)
		return; /* a full counter still wakes */
}

/* Doorbell i is the call of vring i, N+i its err (the draft's numbering). */
static bool hook_doorbell(void *opaque, unsigned int index)
{
	struct vvb *b = opaque;
	uint64_t one = 1;
	int fd = -1;

	pthread_mutex_lock(&b->fd_lock);
	if (index < MAXQ)
		fd = b->call[index];
	else if (index < 2 * MAXQ)
		fd = b->err[index - MAXQ];
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		fd = -1;
	pthread_mutex_unlock(&b->fd_lock);
	return fd >= 0;
}

/* BAR 4 back to an empty reservation: the front end's memory leaves the process. */
static void shm_unmap(struct vvb *b)
{
	uint8_t *base;
	uint64_t size;

	if (b->shm_mapped == 0)
		return;
	vvm_shm_base(b->m, &base, &size);
	if (mmap(base, b->shm_mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		fprintf(stderr, "vvu bridge: cannot reset BAR 4: %s\n", strerror(errno));
	b->shm_mapped = 0;
}

/*
 * SET_MEM_TABLE: each region's fd at the running offset, in table order.
 * A region that does not fit or is not page aligned ends the mapping
 * there; the message still goes to the driver, which must refuse it.
 */
static void shm_map_table(struct vvb *b, const uint8_t *payload, uint32_t size, const int *fds,
			  unsigned int nfds)
{
	uint8_t *base;
	uint64_t shm_size, at = 0;
	struct vu_mem_table t;
	long page = sysconf(_SC_PAGESIZE);

	vvm_shm_base(b->m, &base, &shm_size);
	memset(&t, 0, sizeof(t));
	memcpy(&t, payload, size < sizeof(t) ? size : sizeof(t));
	if (size < 8 || t.nregions > VU_MAX_MEM_REGIONS || t.nregions != nfds ||
	    size < 8 + 32ull * t.nregions) {
		fprintf(stderr, "vvu bridge: SET_MEM_TABLE with %u regions and %u fds not mapped\n",
			t.nregions, nfds);
		return;
	}
	for (unsigned int i = 0; i < t.nregions; i++) {
		const struct vu_mem_region *r = &t.regions[i];

		if (r->memory_size == 0 || r->memory_size % page || r->mmap_offset % page ||
		    r->memory_size > shm_size - at) {
			fprintf(stderr, "vvu bridge: region %u (%llu bytes) does not fit BAR 4 at %llu\n",
				i, (unsigned long long)r->memory_size, (unsigned long long)at);
			break;
		}
		if (mmap(base + at, r->memory_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fds[i], (off_t)r->mmap_offset) == MAP_FAILED) {
			fprintf(stderr, "vvu bridge: mapping region %u: %s\n", i, strerror(errno));
			break;
		}
		at += r->memory_size;
	}
	/* whatever an earlier, larger table left past the new end goes */
	if (at < b->shm_mapped &&
	    mmap(base + at, b->shm_mapped - at, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
		fprintf(stderr, "vvu bridge: cannot trim BAR 4: %s\n", strerror(errno));
	b->shm_mapped = at;
}

static void keep_fd(struct vvb *b, int *slot, int fd)
{
	pthread_mutex_lock(&b->fd_lock);
	close_fd(slot);
	*slot = fd;
	pthread_mutex_unlock(&b->fd_lock);
}

/* The fds of one front-end message become device resources or are closed. */
static void take_fds(struct vvb *b, uint32_t req, const uint8_t *payload, uint32_t size, int *fds,
		     unsigned int nfds)
{
	uint64_t u64 = 0;
	unsigned int idx;

	if (size >= 8)
		memcpy(&u64, payload, 8);
	idx = (unsigned int)(u64 & VU_VRING_IDX_MASK);
	switch (req) {
	case VU_REQ_SET_MEM_TABLE:
		shm_map_table(b, payload, size, fds, nfds);
		break;
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR: {
		int *slots = req == VU_REQ_SET_VRING_KICK ? b->kick :
			     req == VU_REQ_SET_VRING_CALL ? b->call : b->err;

		if (nfds == 1 && idx < vvm_max_vhost_queues(b->m) && !(u64 & VU_VRING_NOFD_MASK)) {
			keep_fd(b, &slots[idx], fds[0]);
			fds[0] = -1;
		}
		break;
	}
	case VU_REQ_SET_BACKEND_REQ_FD:
		if (nfds == 1) {
			keep_fd(b, &b->backend, fds[0]);
			fds[0] = -1;
		}
		break;
	default:
		break;
	}
	for (unsigned int i = 0; i < nfds; i++)
		close_fd(&fds[i]);
}

static void record(struct vvb *b, const void *msg, size_t len)
{
	uint32_t n = htole32((uint32_t)len);

	if (!b->record)
		return;
	if (fwrite(&n, sizeof(n), 1, b->record) != 1 || (len && fwrite(msg, 1, len, b->record) != len))
		fprintf(stderr, "vvu bridge: recording failed\n");
	fflush(b->record);
}

static void record_open(struct vvb *b)
{
	char name[PATH_MAX];

	if (!b->record_dir)
		return;
	snprintf(name, sizeof(name), "%s/session-%lu", b->record_dir, b->sessions);
	b->record = fopen(name, "w");
	/* fuzz_vvu's mode byte for a message sequence: the file is a seed as it stands */
	if (b->record && fputc(1, b->record) == EOF)
		fprintf(stderr, "vvu bridge: recording failed\n");
}

unsigned int vvb_cmsg_fds(struct msghdr *mh, int *fds, unsigned int max)
{
	unsigned int n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int f;

			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n < max)
				fds[n++] = f;
			else
				close(f);
		}
	}
	return n;
}

int vvb_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, MSG_WAITALL);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

/* One message and its fds from @fd. Return: 0 or negative errno. */
static int read_msg(int fd, uint8_t *msg, size_t *len, int *fds, unsigned int *nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
	struct iovec iov = { msg, VU_HDR_SIZE };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct vu_hdr h;
	ssize_t n;

	*nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	*nfds = vvb_cmsg_fds(&mh, fds, VU_MAX_FDS);
	if (n < (ssize_t)VU_HDR_SIZE || (mh.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	memcpy(&h, msg, sizeof(h));
	if (h.size > VU_MAX_PAYLOAD)
		return -EMSGSIZE;
	*len = VU_HDR_SIZE + h.size;
	return vvb_read_full(fd, msg + VU_HDR_SIZE, h.size);
}

static void drop_front_end(struct vvb *b, const char *why)
{
	if (b->conn < 0)
		return;
	fprintf(stderr, "vvu bridge: front end %lu ends: %s\n", b->sessions, why);
	close_fd(&b->conn);
	pthread_mutex_lock(&b->fd_lock);
	for (unsigned int i = 0; i < MAXQ; i++) {
		close_fd(&b->kick[i]);
		close_fd(&b->call[i]);
		close_fd(&b->err[i]);
	}
	close_fd(&b->backend);
	pthread_mutex_unlock(&b->fd_lock);
	b->pend_valid = false;
	record(b, NULL, 0);
	if (b->record)
		fclose(b->record);
	b->record = NULL;
}

/* A message from the front end (or a reply on the back-end channel) into the pending slot. */
static void from_front_end(struct vvb *b, int fd)
{
	int fds[VU_MAX_FDS];
	unsigned int nfds;
	struct vu_hdr h = { 0 };
	int rc = read_msg(fd, b->pend, &b->pend_len, fds, &nfds);

	if (rc == 0) {
		memcpy(&h, b->pend, sizeof(h));
		if (h.request == VU_REQ_SET_MEM_TABLE && b->filter) {
			rc = b->filter(b->filter_opaque, b->pend, &b->pend_len, fds, &nfds);
			memcpy(&h, b->pend, sizeof(h));
		}
	}
	if (rc < 0) {
		for (unsigned int i = 0; i < nfds; i++)
			close(fds[i]);
		drop_front_end(b, rc == -ECONNRESET ? "disconnected" : strerror(-rc));
		b->disc_pending = true;
		b->disc_gen = vvm_generation(b->m);
		b->disc_wait = true;
		return;
	}
	take_fds(b, h.request, b->pend + VU_HDR_SIZE, h.size, fds, nfds);
	b->pend_valid = true;
}

/* The driver's messages: replies to the front end, back-end requests to its channel. */
static void to_front_end(struct vvb *b, const uint8_t *msg, int len)
{
	struct vu_hdr h;
	int fd;

	if (len < (int)VU_HDR_SIZE) {
		fprintf(stderr, "vvu bridge: txq message of %d bytes dropped\n", len);
		return;
	}
	memcpy(&h, msg, sizeof(h));
	if (h.size != (uint32_t)len - VU_HDR_SIZE) {
		fprintf(stderr, "vvu bridge: txq message size %u in %d bytes dropped\n", h.size, len);
		return;
	}
	if (h.flags & VU_FLAG_REPLY) {
		fd = b->conn;
	} else {
		/* the draft: back-end requests before SET_BACKEND_REQ_FD are discarded */
		pthread_mutex_lock(&b->fd_lock);
		fd = b->backend;
		pthread_mutex_unlock(&b->fd_lock);
		if (fd < 0) {
			fprintf(stderr, "vvu bridge: back-end request %u before SET_BACKEND_REQ_FD dropped\n",
				h.request);
			vvm_count_backend_drop(b->m);
			return;
		}
	}
	if (fd >= 0 && send(fd, msg, (size_t)len, MSG_NOSIGNAL) != len)
		fprintf(stderr, "vvu bridge: relaying request %u: %s\n", h.request, strerror(errno));
}

static void drain_txq(struct vvb *b)
{
	uint8_t msg[VVM_MAX_MSG];
	int n;

	while ((n = vvm_tx_take(b->m, msg, sizeof(msg))) != 0) {
		if (n == -EMSGSIZE) {
			fprintf(stderr, "vvu bridge: txq message over %zu bytes dropped\n", sizeof(msg));
			continue;
		}
		if (n < 0)
			return;
		to_front_end(b, msg, n);
	}
}

static void deliver_pending(struct vvb *b)
{
	int rc;

	if (b->disc_pending) {
		rc = vvm_rx_deliver(b->m, NULL, 0);
		if (rc != -EAGAIN)
			b->disc_pending = false;
	}
	if (!b->pend_valid)
		return;
	rc = vvm_rx_deliver(b->m, b->pend, b->pend_len);
	if (rc == -EAGAIN)
		return;
	if (rc < 0)
		fprintf(stderr, "vvu bridge: request dropped, the device cannot take it: %s\n",
			strerror(-rc));
	else
		record(b, b->pend, b->pend_len);
	b->pend_valid = false;
}

static int listen_socket(struct vvb *b)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -errno;
	memcpy(sa.sun_path, b->path, sizeof(sa.sun_path));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 4) < 0) {
		int rc = -errno;

		close(s);
		fprintf(stderr, "vvu bridge: cannot listen on %s: %s\n", b->path, strerror(-rc));
		return rc;
	}
	b->lsock = s;
	return 0;
}

/* Device-side state changes: resets end sessions, an up driver may take the next front end. */
static void follow_device(struct vvb *b, bool up)
{
	unsigned long gen = vvm_generation(b->m);

	if (b->conn >= 0 && gen != b->conn_gen) {
		drop_front_end(b, "the device was reset");
		b->disc_wait = false;
	}
	if (b->disc_wait && gen != b->disc_gen && !b->disc_pending)
		b->disc_wait = false;
	if (b->disc_pending && gen != b->disc_gen)
		b->disc_pending = false; /* a reset already told the driver */
	/* the driver has finished with the old memory once it is up again */
	if (b->conn < 0 && up && !b->disc_wait)
		shm_unmap(b);
	if (up && b->lsock < 0)
		listen_socket(b);
}

static void accept_front_end(struct vvb *b)
{
	int c = accept4(b->lsock, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	b->conn = c;
	b->conn_gen = vvm_generation(b->m);
	b->sessions++;
	record_open(b);
}

static void read_kick(struct vvb *b, unsigned int i)
{
	uint64_t v;

	if (read(b->kick[i], &v, sizeof(v)) == sizeof(v))
		vvm_notification(b->m, i);
}

enum slot_kind { SLOT_WAKE, SLOT_LISTEN, SLOT_CONN, SLOT_BACKEND, SLOT_KICK };

struct slot {
	enum slot_kind kind;
	unsigned int ring;
};

static unsigned int poll_set(struct vvb *b, bool up, struct pollfd *p, struct slot *s)
{
	unsigned int n = 0;

	s[n] = (struct slot){ SLOT_WAKE, 0 };
	p[n++] = (struct pollfd){ b->wake, POLLIN, 0 };
	if (b->lsock >= 0 && b->conn < 0 && up && !b->disc_wait) {
		s[n] = (struct slot){ SLOT_LISTEN, 0 };
		p[n++] = (struct pollfd){ b->lsock, POLLIN, 0 };
	}
	/* one message at a time: the next is read once the device took this one */
	if (b->conn >= 0 && !b->pend_valid) {
		s[n] = (struct slot){ SLOT_CONN, 0 };
		p[n++] = (struct pollfd){ b->conn, POLLIN, 0 };
		if (b->backend >= 0) {
			s[n] = (struct slot){ SLOT_BACKEND, 0 };
			p[n++] = (struct pollfd){ b->backend, POLLIN, 0 };
		}
	}
	for (unsigned int i = 0; i < MAXQ; i++) {
		if (b->kick[i] >= 0) {
			s[n] = (struct slot){ SLOT_KICK, i };
			p[n++] = (struct pollfd){ b->kick[i], POLLIN, 0 };
		}
	}
	return n;
}

static void handle(struct vvb *b, const struct pollfd *p, const struct slot *s)
{
	uint64_t v;

	switch (s->kind) {
	case SLOT_WAKE:
		if (read(b->wake, &v, sizeof(v)) < 0)
			return;
		break;
	case SLOT_LISTEN:
		accept_front_end(b);
		break;
	case SLOT_CONN:
	case SLOT_BACKEND:
		/* an earlier entry of this round may have ended the session or filled the slot */
		if (b->conn >= 0 && !b->pend_valid &&
		    p->fd == (s->kind == SLOT_CONN ? b->conn : b->backend))
			from_front_end(b, p->fd);
		break;
	case SLOT_KICK:
		if (b->kick[s->ring] == p->fd)
			read_kick(b, s->ring);
		break;
	}
}

static void *bridge_thread(void *arg)
{
	struct vvb *b = arg;

	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p[4 + MAXQ];
		struct slot s[4 + MAXQ];
		bool up = vvm_driver_up(b->m);
		unsigned int n;

		follow_device(b, up);
		deliver_pending(b);
		drain_txq(b);
		n = poll_set(b, up, p, s);
		if (poll(p, n, POLL_MS) <= 0)
			continue;
		for (unsigned int i = 0; i < n; i++) {
			if (p[i].revents)
				handle(b, &p[i], &s[i]);
		}
	}
	return NULL;
}

int vvb_start(struct vvb **out, struct vvm *m, const char *path, const char *record_dir)
{
	return vvb_start_filtered(out, m, path, record_dir, NULL, NULL);
}

int vvb_start_filtered(struct vvb **out, struct vvm *m, const char *path, const char *record_dir,
		       vvb_mem_filter *filter, void *opaque)
{
	struct vvb *b;
	struct vvm_hooks h;
	int rc;

	if (strlen(path) >= sizeof(b->path))
		return -ENAMETOOLONG;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->m = m;
	b->lsock = b->conn = b->backend = -1;
	for (unsigned int i = 0; i < MAXQ; i++)
		b->kick[i] = b->call[i] = b->err[i] = -1;
	snprintf(b->path, sizeof(b->path), "%s", path);
	b->record_dir = record_dir;
	b->filter = filter;
	b->filter_opaque = opaque;
	pthread_mutex_init(&b->fd_lock, NULL);
	b->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->wake < 0) {
		rc = -errno;
		free(b);
		return rc;
	}
	h = (struct vvm_hooks){ .doorbell = hook_doorbell, .wake = hook_wake, .opaque = b };
	vvm_set_hooks(m, &h);
	rc = -pthread_create(&b->thread, NULL, bridge_thread, b);
	if (rc < 0) {
		vvm_set_hooks(m, &(struct vvm_hooks){ 0 });
		close(b->wake);
		free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void vvb_stop(struct vvb *b)
{
	if (!b)
		return;
	__atomic_store_n(&b->stop, true, __ATOMIC_RELEASE);
	hook_wake(b);
	pthread_join(b->thread, NULL);
	vvm_set_hooks(b->m, &(struct vvm_hooks){ 0 });
	drop_front_end(b, "the bridge stops");
	shm_unmap(b);
	if (b->lsock >= 0) {
		close(b->lsock);
		unlink(b->path);
	}
	close(b->wake);
	pthread_mutex_destroy(&b->fd_lock);
	free(b);
}

unsigned long vvb_sessions(struct vvb *b)
{
	return b->sessions;
}
