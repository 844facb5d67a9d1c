// SPDX-License-Identifier: MIT
/*
 * Hostile front end suite (PROTOCOLS.md §6.2): every control-plane check,
 * sent through the test front end's raw switches to two back ends:
 *
 *   - the daemon, userspace engine, in a child process (three --vm devices,
 *     so the cases that wait for the 5 s receive timeout run side by side);
 *   - the kernel engine in this process: the real server, dispatcher and
 *     engine on their own threads, /dev/vhost-vsock replaced by the vhost
 *     double of the unit tests (serialised by a lock: it is not thread-safe).
 *
 * Every case starts a fresh front end, brings the session to the state it
 * needs, does the hostile thing and checks the answer: an error reply
 * (REPLY_ACK non-zero, GET_CONFIG's empty form) or a closed connection, as
 * the case says; cases that are valid protocol (a free-running base, the
 * rings enabled without bit 30...) must be accepted instead. Then the front
 * end leaves and the case checks the log line naming the refusal, that the
 * back end holds exactly the fds and memfd mappings it held before any
 * front end came (/proc/PID), and that it serves the next front end: a
 * real transfer through the daemon, a full start (SET_RUNNING) on the
 * double.
 *
 * argv[1]: the daemon. VUV_HOSTILE_REPEAT scales the fd-replacement loops
 * (default 100000 SET_VRING_CALLs, a hundredth of that for the others).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/server.h"
#include "engine/kernel/kernel.h"
#include "proc_watch.h"
#include "user_harness.h"
#include "vhost_double.h"

#define NSOCK 3u
#define MEM_SIZE (2u << 20)            /* with QEMU's hole: two regions */
#define ANSWER_MS 3000
#define STALL_MS 15000                 /* 5 s deadline + 5 s receive timeout + slack */
#define BACK_MS 8000
#define HOST_PORT 5000u
#define PF_WANT ((1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) | \
		 (1ull << VU_PROTOCOL_F_CONFIG))
#define F_PROTOCOL (1ull << VU_F_PROTOCOL_FEATURES)
#define F_VERSION_1 (1ull << TFE_F_VERSION_1)
#define NR (VU_FLAG_VERSION | VU_FLAG_NEED_REPLY)

/* What the back end did with a hostile message. */
enum out { OUT_ACK = 1, OUT_NACK, OUT_REPLY, OUT_CLOSED, OUT_SILENT };

/* How far a case's session gets before the hostile message. */
enum state { ST_FRESH, ST_OWNED, ST_MEM, ST_RUNNING };

/* A back end under test. */
struct target {
	const char *name;
	char sock[NSOCK][108];
	pid_t pid;                 /* whose /proc to watch */
	struct uh log;             /* only .log is used for the kernel target */
	struct pw_snap base;
	bool kernel;
	struct uh *h;              /* the daemon (user target) */
	int host_lfd[NSOCK];       /* host listeners for the transfer check */
};

static struct target *tgt;

/* ------------------------------------------------------------------ */
/* The kernel engine in this process                                   */
/* ------------------------------------------------------------------ */

/* Its threads reach the vhost double through vhd_locked_ops, the checks between vhd_lock/unlock. */
struct kside {
	char name[8];
	struct loop loop;
	struct server srv;
	struct kern_engine k;
	int stop_fd;
	struct loop_watch stop_w;
	pthread_t th;
};

static struct kside ks[NSOCK];

static int k_attach(void *priv)
{
	return kern_engine_open(priv);
}

static void k_detach(void *priv)
{
	kern_engine_close(priv);
}

static void on_stop(void *ctx, uint32_t events)
{
	(void)events;
	loop_stop(ctx);
}

static void *kside_thread(void *arg)
{
	struct kside *s = arg;

	loop_run(&s->loop);
	return NULL;
}

static int kside_start(struct kside *s, unsigned int i, const char *path)
{
	const struct server_engine eng = {
		.ops = &kern_dev_ops, .priv = &s->k, .attach = k_attach, .detach = k_detach,
	};
	int rc;

	snprintf(s->name, sizeof(s->name), "k%u", i);
	kern_engine_init(&s->k, &vhd_locked_ops, "/dev/vhost-vsock", 3 + i);
	s->stop_w.fd = -1;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rc = s->stop_fd < 0 ? -errno : loop_init(&s->loop);
	if (rc == 0)
		rc = loop_add(&s->loop, &s->stop_w, s->stop_fd, EPOLLIN, on_stop, &s->loop);
	if (rc == 0)
		rc = server_start(&s->srv, &s->loop, s->name, path, &eng);
	if (rc == 0)
		rc = -pthread_create(&s->th, NULL, kside_thread, s);
	return rc;
}

static void kside_stop(struct kside *s)
{
	eventfd_write(s->stop_fd, 1);
	pthread_join(s->th, NULL);
	server_stop(&s->srv);
	loop_del(&s->loop, &s->stop_w);
	loop_fini(&s->loop);
	close(s->stop_fd);
}

static unsigned int vhd_open_locked(void)
{
	unsigned int n;

	vhd_lock();
	n = vhd_open_fds();
	vhd_unlock();
	return n;
}

/* The double's last SET_RUNNING succeeded with 1. */
static bool vhd_running_locked(void)
{
	const struct vhd_call *c = NULL;
	long i = -1, at;

	vhd_lock();
	while ((at = vhd_find(VHOST_VSOCK_SET_RUNNING, (size_t)(i + 1))) >= 0)
		i = at;
	if (i >= 0)
		c = vhd_call_at((size_t)i);
	vhd_unlock();
	return c && c->rc == 0 && c->val == 1;
}

static void vhd_clear_locked(void)
{
	vhd_lock();
	vhd_clear_calls();
	vhd_unlock();
}

/* ------------------------------------------------------------------ */
/* Talking to the back end                                             */
/* ------------------------------------------------------------------ */

/* The last reply's payload, for cases that look into it. */
static union {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_config config;
	uint8_t raw[VU_MAX_PAYLOAD];
} answer;
static uint32_t answer_size;

/*
 * What the back end does next about request @req: a reply (an ack when
 * @is_ack: classified by its u64), closing the connection, or nothing.
 * Return: an enum out, or -EPROTO for a reply of the wrong shape.
 */
static int outcome(struct tfe_fe *fe, uint32_t req, bool is_ack, int timeout_ms)
{
	struct vu_hdr h;
	int fds[8];
	unsigned int nfds = 8;
	int rc = tfe_fe_recv(fe, &h, answer.raw, sizeof(answer.raw), fds, &nfds, timeout_ms);

	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	if (rc == -ECONNRESET || rc == -EPIPE)
		return OUT_CLOSED;
	if (rc == -ETIMEDOUT)
		return OUT_SILENT;
	if (rc < 0)
		return rc;
	answer_size = h.size;
	if (h.request != req || h.flags != VU_REPLY_FLAGS || nfds) {
		fprintf(stderr, "reply to %u: request %u flags 0x%x, %u fds\n", req, h.request,
			h.flags, nfds);
		return -EPROTO;
	}
	if (!is_ack)
		return OUT_REPLY;
	if (h.size != sizeof(uint64_t))
		return -EPROTO;
	return answer.u64 ? OUT_NACK : OUT_ACK;
}

/* spec "Communication": requests whose definition includes a reply */
static bool owes_reply(uint32_t req)
{
	switch (req) {
	case VU_REQ_GET_FEATURES: case VU_REQ_GET_PROTOCOL_FEATURES: case VU_REQ_GET_VRING_BASE:
	case VU_REQ_GET_QUEUE_NUM: case VU_REQ_GET_CONFIG: case VU_REQ_IOTLB_MSG:
	case VU_REQ_CREATE_CRYPTO_SESSION: case VU_REQ_POSTCOPY_ADVISE: case VU_REQ_POSTCOPY_END:
	case VU_REQ_GET_INFLIGHT_FD: case VU_REQ_GET_MAX_MEM_SLOTS: case VU_REQ_GET_STATUS:
	case VU_REQ_GET_SHARED_OBJECT: case VU_REQ_SET_DEVICE_STATE_FD:
	case VU_REQ_CHECK_DEVICE_STATE: case VU_REQ_GET_SHMEM_CONFIG:
		return true;
	default:
		return false;
	}
}

/* Send @req as given and say what came back. Return: an enum out or -errno. */
static int send_req(struct tfe_fe *fe, uint32_t req, uint32_t flags, const void *p,
		    uint32_t size, const int *fds, unsigned int nfds)
{
	int rc = tfe_fe_send(fe, req, flags, p, size, fds, nfds);

	if (rc == -EPIPE || rc == -ECONNRESET)
		return OUT_CLOSED;
	if (rc < 0)
		return rc;
	return outcome(fe, req, !owes_reply(req), ANSWER_MS);
}

/* A request with the usual flags (version 1, NEED_REPLY). */
static int req(struct tfe_fe *fe, uint32_t r, const void *p, uint32_t size)
{
	return send_req(fe, r, NR, p, size, NULL, 0);
}

static int req_u64(struct tfe_fe *fe, uint32_t r, uint64_t v)
{
	return req(fe, r, &v, sizeof(v));
}

static int req_state(struct tfe_fe *fe, uint32_t r, uint32_t index, uint32_t num)
{
	struct vu_vring_state s = { .index = index, .num = num };

	return req(fe, r, &s, sizeof(s));
}

/* ------------------------------------------------------------------ */
/* Descriptors to attach                                               */
/* ------------------------------------------------------------------ */

enum fdkind { FD_EVENT, FD_MEMFD, FD_SOCKET, FD_PIPE, FD_RDONLY_MEMFD };

/* The read end of the last FD_PIPE: open, never read, so writes to it block. */
static int pipe_reader = -1;

static void drop_pipe_reader(void)
{
	if (pipe_reader >= 0)
		close(pipe_reader);
	pipe_reader = -1;
}

/* A memfd the size of our guest RAM, reopened read-only: it cannot be mapped shared+write. */
static int rdonly_memfd(void)
{
	char path[40];
	int fd = memfd_create("hostile-region", MFD_CLOEXEC), ro;

	if (fd < 0 || ftruncate(fd, MEM_SIZE) < 0)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	close(fd);
	return ro < 0 ? -errno : ro;
}

static int make_fd(enum fdkind k)
{
	int sv[2], fd;

	switch (k) {
	case FD_EVENT:
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	case FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
			return -errno;
		close(sv[1]); /* the peer is gone: a watched socket reports EOF forever */
		return sv[0];
	case FD_PIPE:
		if (pipe2(sv, O_CLOEXEC) < 0)
			return -errno;
		drop_pipe_reader();
		pipe_reader = sv[0];
		return sv[1];
	case FD_MEMFD:
		fd = memfd_create("hostile-region", MFD_CLOEXEC);
		if (fd < 0 || ftruncate(fd, MEM_SIZE) < 0)
			return -errno;
		return fd;
	case FD_RDONLY_MEMFD:
		return rdonly_memfd();
	}
	return -EINVAL;
}

/* Send @r with @n fresh fds of @kind attached (our copies closed after). */
static int send_with_fds(struct tfe_fe *fe, uint32_t r, uint32_t flags, const void *p,
			 uint32_t size, enum fdkind kind, unsigned int n)
{
	int fds[64];
	unsigned int made = 0;
	int rc = n > 64 ? -EINVAL : 0;

	while (rc == 0 && made < n) {
		int fd = make_fd(kind);

		if (fd < 0)
			rc = fd;
		else
			fds[made++] = fd;
	}
	if (rc == 0)
		rc = send_req(fe, r, flags, p, size, fds, made);
	for (unsigned int i = 0; i < made; i++)
		close(fds[i]);
	return rc;
}

/* SET_FEATURES(VERSION_1... any 8 bytes) as raw bytes, for cases that cut it up. */
static const uint8_t features_msg[VU_HDR_SIZE + 8] = {
	VU_REQ_SET_FEATURES, 0, 0, 0, VU_FLAG_VERSION, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
};

/* ------------------------------------------------------------------ */
/* Sessions                                                            */
/* ------------------------------------------------------------------ */

/* Features and protocol features (with REPLY_ACK) negotiated, owner set. */
static int to_owned(struct tfe_vm *vm, uint64_t pf_want)
{
	struct tfe_fe *fe = &vm->fe;
	uint64_t pf = 0;
	int rc = tfe_fe_get_u64(fe, VU_REQ_GET_FEATURES, &vm->features_offered);

	if (rc == 0)
		rc = tfe_fe_get_u64(fe, VU_REQ_GET_PROTOCOL_FEATURES, &pf);
	if (rc == 0)
		rc = tfe_fe_set_u64(fe, VU_REQ_SET_PROTOCOL_FEATURES, pf & pf_want);
	if (rc == 0)
		rc = tfe_fe_set_owner(fe);
	return rc;
}

static int to_state(struct tfe_vm *vm, enum state st)
{
	struct tfe_setup_opts so = { .need_reply = TFE_NR_ALL };
	int rc = 0;

	switch (st) {
	case ST_FRESH:
		return 0;
	case ST_OWNED:
		return to_owned(vm, PF_WANT);
	case ST_MEM:
		rc = to_owned(vm, PF_WANT);
		if (rc == 0)
			rc = tfe_fe_set_u64(&vm->fe, VU_REQ_SET_FEATURES, F_VERSION_1 | F_PROTOCOL);
		if (rc == 0)
			rc = tfe_fe_set_mem_table(&vm->fe, &vm->mem);
		return rc;
	case ST_RUNNING:
		return tfe_setup_qemu(vm, &so);
	}
	return -EINVAL;
}

static uint64_t uva(const struct tfe_vm *vm, uint64_t gpa)
{
	return tfe_mem_uva(&vm->mem, gpa);
}

/* ------------------------------------------------------------------ */
/* One-message cases                                                   */
/* ------------------------------------------------------------------ */

union pl {
	uint64_t u64;
	struct vu_vring_state st;
	struct vu_vring_addr addr;
	struct vu_log log;
	struct vu_single_region reg;
	struct vu_config cfg;
	uint8_t raw[VU_CONFIG_HDR_SIZE + VU_MAX_CONFIG_SIZE];
};

struct mcase {
	const char *name;
	enum state st;
	uint32_t req;
	uint32_t flags;          /* 0: version 1 + NEED_REPLY */
	uint32_t size;           /* header size */
	bool header_only;        /* send no payload bytes at all */
	union pl p;
	enum fdkind fk;
	unsigned int nfds;
	int expect;              /* enum out */
	const char *log;         /* "a|b": one of them must appear once more; NULL: none */
	int reply_size;          /* for OUT_REPLY: -1 any */
};

#define U64(v) { .u64 = (v) }
#define ST(i, n) { .st = { .index = (i), .num = (n) } }
#define CFG(o, s) { .cfg = { .offset = (o), .size = (s) } }
#define BAD_FLAGS "bad header flags"
#define LAYOUT "does not match the request's layout"
#define UNSUP "not supported"
/* a request whose protocol feature is offered but was not acked */
#define UNNEG "was not negotiated"
#define NOT_EV "is not an eventfd"
#define NO_RING "does not exist"
#define CFG_RANGE "outside the config space|config space is 8 bytes|outside the 8-byte config"

static const struct mcase mcases[] = {
	/* framing: version, REPLY, reserved bits, size */
	{ "version 2", ST_OWNED, VU_REQ_GET_FEATURES, 0x2 | VU_FLAG_NEED_REPLY, 0, .expect = OUT_CLOSED, .log = BAD_FLAGS },
	{ "REPLY on a request", ST_OWNED, VU_REQ_SET_OWNER, VU_REPLY_FLAGS, 0, .expect = OUT_CLOSED, .log = BAD_FLAGS },
	{ "reserved flag bit", ST_OWNED, VU_REQ_GET_FEATURES, 0x11, 0, .expect = OUT_CLOSED, .log = BAD_FLAGS },
	{ "payload over 4096", ST_OWNED, VU_REQ_SET_FEATURES, 0, 5000, true, .expect = OUT_CLOSED, .log = "exceeds the 4096-byte limit" },
	{ "payload of 4 GiB", ST_OWNED, VU_REQ_SET_FEATURES, 0, 0xffffffffu, true, .expect = OUT_CLOSED, .log = "exceeds the 4096-byte limit" },
	{ "SET_FEATURES of 4 bytes", ST_OWNED, VU_REQ_SET_FEATURES, 0, 4, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "SET_VRING_NUM of 16 bytes", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 16, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "SET_VRING_ADDR of 32 bytes", ST_MEM, VU_REQ_SET_VRING_ADDR, 0, 32, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "GET_FEATURES of 8 bytes", ST_OWNED, VU_REQ_GET_FEATURES, 0, 8, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "SET_OWNER of 8 bytes", ST_FRESH, VU_REQ_SET_OWNER, 0, 8, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "SET_MEM_TABLE of 4 bytes", ST_OWNED, VU_REQ_SET_MEM_TABLE, 0, 4, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "GET_CONFIG of 8 bytes", ST_OWNED, VU_REQ_GET_CONFIG, 0, 8, .expect = OUT_CLOSED, .log = LAYOUT },
	{ "GET_CONFIG of 300 config bytes", ST_OWNED, VU_REQ_GET_CONFIG, 0, 12, .p = CFG(0, 300), .expect = OUT_CLOSED, .log = LAYOUT },
	{ "GET_CONFIG size disagreeing", ST_OWNED, VU_REQ_GET_CONFIG, 0, 12, .p = CFG(0, 4), .expect = OUT_CLOSED, .log = LAYOUT },
	/* unknown requests */
	{ "request 0", ST_OWNED, 0, 0, 0, .expect = OUT_CLOSED, .log = "unknown request 0" },
	{ "request 45", ST_OWNED, 45, 0, 0, .expect = OUT_CLOSED, .log = "unknown request 45" },
	{ "request 100", ST_OWNED, 100, 0, 8, .expect = OUT_CLOSED, .log = "unknown request 100" },
	{ "request 0xffffffff", ST_FRESH, 0xffffffffu, 0, 0, .expect = OUT_CLOSED, .log = "unknown request 4294967295" },
	/* descriptors: unexpected, too many, missing, not eventfds */
	{ "fd on SET_FEATURES", ST_OWNED, VU_REQ_SET_FEATURES, 0, 8, .p = U64(F_VERSION_1), .fk = FD_EVENT, .nfds = 1, .expect = OUT_CLOSED, .log = "1 fds attached, 0..0 expected" },
	{ "fd on GET_FEATURES", ST_FRESH, VU_REQ_GET_FEATURES, 0, 0, .fk = FD_MEMFD, .nfds = 1, .expect = OUT_CLOSED, .log = "1 fds attached, 0..0 expected" },
	{ "9 fds", ST_OWNED, VU_REQ_SET_FEATURES, 0, 8, .fk = FD_EVENT, .nfds = 9, .expect = OUT_CLOSED, .log = "more than 8 descriptors" },
	{ "40 fds", ST_OWNED, VU_REQ_SET_VRING_CALL, 0, 8, .fk = FD_MEMFD, .nfds = 40, .expect = OUT_CLOSED, .log = "more than 8 descriptors" },
	{ "KICK no-fd flag with an fd", ST_MEM, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(0x100), .fk = FD_EVENT, .nfds = 1, .expect = OUT_CLOSED, .log = "1 fds attached, 0..0 expected" },
	{ "KICK without an fd", ST_MEM, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(0), .expect = OUT_CLOSED, .log = "0 fds attached, 1..1 expected" },
	{ "KICK reserved bits", ST_MEM, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(0x200), .fk = FD_EVENT, .nfds = 1, .expect = OUT_NACK, .log = "reserved bits set" },
	{ "KICK ring 255", ST_MEM, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(0xff), .fk = FD_EVENT, .nfds = 1, .expect = OUT_NACK, .log = "ring 255 " NO_RING },
	{ "KICK a memfd", ST_MEM, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(0), .fk = FD_MEMFD, .nfds = 1, .expect = OUT_NACK, .log = NOT_EV },
	{ "KICK a dead socket", ST_MEM, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(1), .fk = FD_SOCKET, .nfds = 1, .expect = OUT_NACK, .log = NOT_EV },
	{ "CALL a pipe", ST_MEM, VU_REQ_SET_VRING_CALL, 0, 8, .p = U64(0), .fk = FD_PIPE, .nfds = 1, .expect = OUT_NACK, .log = NOT_EV },
	{ "ERR a socket", ST_MEM, VU_REQ_SET_VRING_ERR, 0, 8, .p = U64(1), .fk = FD_SOCKET, .nfds = 1, .expect = OUT_NACK, .log = NOT_EV },
	{ "KICK a dead socket, running", ST_RUNNING, VU_REQ_SET_VRING_KICK, 0, 8, .p = U64(0), .fk = FD_SOCKET, .nfds = 1, .expect = OUT_NACK, .log = NOT_EV },
	{ "CALL a pipe, running", ST_RUNNING, VU_REQ_SET_VRING_CALL, 0, 8, .p = U64(1), .fk = FD_PIPE, .nfds = 1, .expect = OUT_NACK, .log = NOT_EV },
	{ "CALL ring 3", ST_MEM, VU_REQ_SET_VRING_CALL, 0, 8, .p = U64(3), .fk = FD_EVENT, .nfds = 1, .expect = OUT_NACK, .log = "ring 3 " NO_RING },
	/* requests whose protocol feature is never offered; their fds are closed */
	{ "SET_LOG_BASE", ST_OWNED, VU_REQ_SET_LOG_BASE, 0, 16, .expect = OUT_NACK, .log = UNSUP },
	{ "SET_LOG_BASE with a memfd", ST_OWNED, VU_REQ_SET_LOG_BASE, 0, 16, .fk = FD_MEMFD, .nfds = 1, .expect = OUT_NACK, .log = UNSUP },
	{ "SET_LOG_FD", ST_OWNED, VU_REQ_SET_LOG_FD, 0, 0, .fk = FD_MEMFD, .nfds = 1, .expect = OUT_NACK, .log = UNSUP },
	{ "SET_VRING_ENDIAN", ST_OWNED, VU_REQ_SET_VRING_ENDIAN, 0, 8, .expect = OUT_NACK, .log = UNSUP },
	{ "SEND_RARP", ST_OWNED, VU_REQ_SEND_RARP, 0, 8, .expect = OUT_NACK, .log = UNSUP },
	{ "NET_SET_MTU", ST_OWNED, VU_REQ_NET_SET_MTU, 0, 8, .expect = OUT_NACK, .log = UNSUP },
	{ "SET_BACKEND_REQ_FD", ST_OWNED, VU_REQ_SET_BACKEND_REQ_FD, 0, 0, .fk = FD_SOCKET, .nfds = 1, .expect = OUT_NACK, .log = UNSUP },
	{ "IOTLB_MSG", ST_OWNED, VU_REQ_IOTLB_MSG, 0, 32, .expect = OUT_CLOSED, .log = UNSUP },
	{ "CREATE_CRYPTO_SESSION", ST_OWNED, VU_REQ_CREATE_CRYPTO_SESSION, 0, 16, .expect = OUT_CLOSED, .log = UNSUP },
	{ "CLOSE_CRYPTO_SESSION", ST_OWNED, VU_REQ_CLOSE_CRYPTO_SESSION, 0, 8, .expect = OUT_NACK, .log = UNSUP },
	{ "POSTCOPY_ADVISE", ST_OWNED, VU_REQ_POSTCOPY_ADVISE, 0, 0, .expect = OUT_CLOSED, .log = UNSUP },
	{ "POSTCOPY_LISTEN", ST_OWNED, VU_REQ_POSTCOPY_LISTEN, 0, 0, .expect = OUT_NACK, .log = UNSUP },
	{ "GET_INFLIGHT_FD", ST_MEM, VU_REQ_GET_INFLIGHT_FD, 0, 24, .expect = OUT_CLOSED, .log = UNSUP },
	{ "SET_INFLIGHT_FD", ST_MEM, VU_REQ_SET_INFLIGHT_FD, 0, 24, .fk = FD_MEMFD, .nfds = 1, .expect = OUT_NACK, .log = UNSUP },
	{ "GPU_SET_SOCKET", ST_OWNED, VU_REQ_GPU_SET_SOCKET, 0, 0, .fk = FD_SOCKET, .nfds = 1, .expect = OUT_NACK, .log = UNSUP },
	{ "VRING_KICK", ST_MEM, VU_REQ_VRING_KICK, 0, 8, .expect = OUT_NACK, .log = UNSUP },
	{ "GET_MAX_MEM_SLOTS", ST_OWNED, VU_REQ_GET_MAX_MEM_SLOTS, 0, 0, .expect = OUT_CLOSED, .log = UNNEG },
	{ "ADD_MEM_REG", ST_MEM, VU_REQ_ADD_MEM_REG, 0, 40, .fk = FD_MEMFD, .nfds = 1, .expect = OUT_NACK, .log = UNNEG },
	{ "REM_MEM_REG", ST_MEM, VU_REQ_REM_MEM_REG, 0, 40, .expect = OUT_NACK, .log = UNNEG },
	{ "REM_MEM_REG with an fd", ST_MEM, VU_REQ_REM_MEM_REG, 0, 40, .fk = FD_MEMFD, .nfds = 1, .expect = OUT_NACK, .log = UNNEG },
	{ "SET_STATUS", ST_OWNED, VU_REQ_SET_STATUS, 0, 8, .expect = OUT_NACK, .log = UNNEG },
	{ "GET_STATUS", ST_OWNED, VU_REQ_GET_STATUS, 0, 0, .expect = OUT_CLOSED, .log = UNNEG },
	{ "GET_SHARED_OBJECT", ST_OWNED, VU_REQ_GET_SHARED_OBJECT, 0, 16, .expect = OUT_CLOSED, .log = UNSUP },
	{ "SET_DEVICE_STATE_FD", ST_OWNED, VU_REQ_SET_DEVICE_STATE_FD, 0, 8, .fk = FD_PIPE, .nfds = 1, .expect = OUT_CLOSED, .log = UNSUP },
	{ "CHECK_DEVICE_STATE", ST_OWNED, VU_REQ_CHECK_DEVICE_STATE, 0, 0, .expect = OUT_CLOSED, .log = UNSUP },
	{ "GET_SHMEM_CONFIG", ST_OWNED, VU_REQ_GET_SHMEM_CONFIG, 0, 0, .expect = OUT_CLOSED, .log = UNSUP },
	/* features and ordering */
	{ "SET_FEATURES bit 63", ST_OWNED, VU_REQ_SET_FEATURES, 0, 8, .p = U64(1ull << 63), .expect = OUT_NACK, .log = "acks bits never offered" },
	{ "SET_PROTOCOL_FEATURES bit 40", ST_OWNED, VU_REQ_SET_PROTOCOL_FEATURES, 0, 8, .p = U64(1ull << 40), .expect = OUT_NACK, .log = "acks bits never offered" },
	{ "INBAND_NOTIFICATIONS alone", ST_OWNED, VU_REQ_SET_PROTOCOL_FEATURES, 0, 8, .p = U64((1ull << VU_PROTOCOL_F_INBAND_NOTIFICATIONS) | (1ull << VU_PROTOCOL_F_REPLY_ACK)), .expect = OUT_NACK, .log = "acks bits never offered" },
	{ "GET_PROTOCOL_FEATURES first", ST_FRESH, VU_REQ_GET_PROTOCOL_FEATURES, 0, 0, .expect = OUT_REPLY, .reply_size = 8 },
	{ "SET_PROTOCOL_FEATURES first", ST_FRESH, VU_REQ_SET_PROTOCOL_FEATURES, 0, 8, .p = U64(1ull << VU_PROTOCOL_F_REPLY_ACK), .expect = OUT_ACK },
	{ "SET_VRING_ENABLE before SET_FEATURES", ST_OWNED, VU_REQ_SET_VRING_ENABLE, 0, 8, .p = ST(0, 1), .expect = OUT_NACK, .log = "only valid once PROTOCOL_FEATURES" },
	{ "SET_OWNER twice", ST_OWNED, VU_REQ_SET_OWNER, 0, 0, .expect = OUT_NACK, .log = "already has an owner" },
	{ "GET_QUEUE_NUM", ST_OWNED, VU_REQ_GET_QUEUE_NUM, 0, 0, .expect = OUT_REPLY, .reply_size = 8 },
	{ "RESET_OWNER before anything", ST_FRESH, VU_REQ_RESET_OWNER, VU_FLAG_VERSION, 0, .expect = OUT_SILENT, .log = "resetting the device" },
	/* vring numbers and indices */
	{ "SET_VRING_NUM ring 3", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(3, 128), .expect = OUT_NACK, .log = "ring 3 " NO_RING },
	{ "SET_VRING_NUM ring 256", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(256, 128), .expect = OUT_NACK, .log = "ring 256 " NO_RING },
	{ "SET_VRING_NUM ring 0xffffffff", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(0xffffffffu, 128), .expect = OUT_NACK, .log = "ring 4294967295 " NO_RING },
	{ "SET_VRING_NUM 0", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(0, 0), .expect = OUT_NACK, .log = "size 0 is not a power of two" },
	{ "SET_VRING_NUM 3", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(0, 3), .expect = OUT_NACK, .log = "size 3 is not a power of two" },
	{ "SET_VRING_NUM 2048", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(1, 2048), .expect = OUT_NACK, .log = "size 2048 is not a power of two" },
	{ "SET_VRING_NUM 65536", ST_MEM, VU_REQ_SET_VRING_NUM, 0, 8, .p = ST(0, 65536), .expect = OUT_NACK, .log = "size 65536 is not a power of two" },
	{ "SET_VRING_BASE 0x10000", ST_MEM, VU_REQ_SET_VRING_BASE, 0, 8, .p = ST(0, 0x10000), .expect = OUT_NACK, .log = "does not fit a split ring" },
	{ "SET_VRING_BASE 0xffff", ST_MEM, VU_REQ_SET_VRING_BASE, 0, 8, .p = ST(1, 0xffff), .expect = OUT_ACK },
	{ "SET_VRING_ENABLE 2", ST_MEM, VU_REQ_SET_VRING_ENABLE, 0, 8, .p = ST(0, 2), .expect = OUT_NACK, .log = "neither 0 nor 1" },
	{ "SET_VRING_ENABLE ring 9", ST_MEM, VU_REQ_SET_VRING_ENABLE, 0, 8, .p = ST(9, 1), .expect = OUT_NACK, .log = "ring 9 " NO_RING },
	{ "SET_VRING_ENABLE before ADDR and KICK", ST_MEM, VU_REQ_SET_VRING_ENABLE, 0, 8, .p = ST(0, 1), .expect = OUT_ACK },
	{ "SET_VRING_ADDR flags 2", ST_MEM, VU_REQ_SET_VRING_ADDR, 0, 40, .p = { .addr = { .index = 0, .flags = 2 } }, .expect = OUT_NACK, .log = "only LOG is defined" },
	{ "SET_VRING_ADDR ring 3", ST_MEM, VU_REQ_SET_VRING_ADDR, 0, 40, .p = { .addr = { .index = 3 } }, .expect = OUT_NACK, .log = "ring 3 " NO_RING },
	{ "GET_VRING_BASE ring 3", ST_MEM, VU_REQ_GET_VRING_BASE, 0, 8, .p = ST(3, 0), .expect = OUT_CLOSED, .log = "ring 3 " NO_RING },
	{ "GET_VRING_BASE of the event queue", ST_MEM, VU_REQ_GET_VRING_BASE, 0, 8, .p = ST(2, 0), .expect = OUT_REPLY, .reply_size = 8 },
	{ "GET_VRING_BASE never started", ST_MEM, VU_REQ_GET_VRING_BASE, 0, 8, .p = ST(0, 0), .expect = OUT_REPLY, .reply_size = 8 },
	/* config space: read-only, 8 bytes */
	{ "GET_CONFIG 0/0", ST_OWNED, VU_REQ_GET_CONFIG, 0, 12, .p = CFG(0, 0), .expect = OUT_REPLY, .log = CFG_RANGE, .reply_size = 12 },
	{ "GET_CONFIG 0/9", ST_OWNED, VU_REQ_GET_CONFIG, 0, 21, .p = CFG(0, 9), .expect = OUT_REPLY, .log = CFG_RANGE, .reply_size = 12 },
	{ "GET_CONFIG 8/1", ST_OWNED, VU_REQ_GET_CONFIG, 0, 13, .p = CFG(8, 1), .expect = OUT_REPLY, .log = CFG_RANGE, .reply_size = 12 },
	{ "GET_CONFIG 7/2", ST_OWNED, VU_REQ_GET_CONFIG, 0, 14, .p = CFG(7, 2), .expect = OUT_REPLY, .log = CFG_RANGE, .reply_size = 12 },
	{ "GET_CONFIG 0xffffffff/1", ST_OWNED, VU_REQ_GET_CONFIG, 0, 13, .p = CFG(0xffffffffu, 1), .expect = OUT_REPLY, .log = CFG_RANGE, .reply_size = 12 },
	{ "GET_CONFIG 0/8", ST_OWNED, VU_REQ_GET_CONFIG, 0, 20, .p = CFG(0, 8), .expect = OUT_REPLY, .reply_size = 20 },
	{ "SET_CONFIG", ST_OWNED, VU_REQ_SET_CONFIG, 0, 20, .p = CFG(0, 8), .expect = OUT_NACK, .log = "read-only" },
};

/* ------------------------------------------------------------------ */
/* Memory tables                                                       */
/* ------------------------------------------------------------------ */

struct region_set {
	uint32_t nregions;       /* as sent in the header */
	uint32_t padding;
	unsigned int n;          /* regions in the payload */
	struct vu_mem_region r[VU_MAX_MEM_REGIONS + 1];
	unsigned int nfds;
	enum fdkind fk;          /* FD_MEMFD: copies of the guest RAM memfd */
};

static int send_table(struct tfe_vm *vm, const struct region_set *rs)
{
	uint8_t buf[8 + 32 * (VU_MAX_MEM_REGIONS + 1)];
	int fds[VU_MAX_FDS];
	unsigned int made = 0;
	int rc = 0;

	memcpy(buf, &rs->nregions, 4);
	memcpy(buf + 4, &rs->padding, 4);
	memcpy(buf + 8, rs->r, 32 * rs->n);
	while (rc == 0 && made < rs->nfds) {
		int fd = rs->fk == FD_MEMFD ? dup(vm->mem.fd) : make_fd(rs->fk);

		if (fd < 0)
			rc = -errno;
		else
			fds[made++] = fd;
	}
	if (rc == 0)
		rc = send_req(&vm->fe, VU_REQ_SET_MEM_TABLE, NR, buf, 8 + 32 * rs->n, fds, made);
	for (unsigned int i = 0; i < made; i++)
		close(fds[i]);
	return rc;
}

/* Region 0 of our RAM (gpa 0, below the hole) as a starting point. */
static struct region_set one_region(const struct tfe_vm *vm)
{
	struct region_set rs = { .nregions = 1, .n = 1, .nfds = 1, .fk = FD_MEMFD };
	struct vu_mem_region all[TFE_MEM_MAX_REGIONS];

	tfe_mem_table(&vm->mem, all);
	rs.r[0] = all[0];
	return rs;
}

static int m_nregions(struct tfe_vm *vm, uint32_t nregions, unsigned int n)
{
	struct region_set rs = one_region(vm);

	rs.nregions = nregions;
	rs.n = n;
	rs.nfds = n < VU_MAX_FDS ? n : VU_MAX_FDS;
	for (unsigned int i = 1; i < n; i++)
		rs.r[i] = rs.r[0];
	return send_table(vm, &rs);
}

static int m_zero_regions(struct tfe_vm *vm) { return m_nregions(vm, 0, 0); }
static int m_nine_regions(struct tfe_vm *vm) { return m_nregions(vm, 9, 9); }
static int m_huge_nregions(struct tfe_vm *vm) { return m_nregions(vm, 0xffffffffu, 1); }

static int m_padding(struct tfe_vm *vm)
{
	struct region_set rs = one_region(vm);

	rs.padding = 1;
	return send_table(vm, &rs);
}

/* Region 0 with one field changed. */
static int m_field(struct tfe_vm *vm, unsigned int field, uint64_t v)
{
	struct region_set rs = one_region(vm);
	uint64_t *f[] = { &rs.r[0].guest_phys_addr, &rs.r[0].memory_size,
			  &rs.r[0].userspace_addr, &rs.r[0].mmap_offset };

	*f[field] = v;
	return send_table(vm, &rs);
}

static int m_size0(struct tfe_vm *vm) { return m_field(vm, 1, 0); }
static int m_beyond_file(struct tfe_vm *vm) { return m_field(vm, 1, MEM_SIZE + 0x1000); }
static int m_gpa_wrap(struct tfe_vm *vm) { return m_field(vm, 0, UINT64_MAX - 0x1000); }
static int m_uva_wrap(struct tfe_vm *vm) { return m_field(vm, 2, UINT64_MAX - 0x1000); }
static int m_off_wrap(struct tfe_vm *vm) { return m_field(vm, 3, UINT64_MAX - 0x1000); }

static int m_unaligned_offset(struct tfe_vm *vm)
{
	struct region_set rs = one_region(vm);

	rs.r[0].mmap_offset = 0x10;
	rs.r[0].memory_size = 0x1000;
	return send_table(vm, &rs);
}

/* Two 8 KiB regions of our RAM; @gpa_step and @uva_step 0x1000 make them overlap. */
static int m_pair(struct tfe_vm *vm, uint64_t gpa_step, uint64_t uva_step, unsigned int nfds)
{
	struct region_set rs = one_region(vm);

	rs.nregions = rs.n = 2;
	rs.nfds = nfds;
	rs.r[0].memory_size = 0x2000;
	rs.r[1] = rs.r[0];
	rs.r[1].guest_phys_addr += gpa_step;
	rs.r[1].userspace_addr += uva_step;
	rs.r[1].mmap_offset += 0x10000;
	return send_table(vm, &rs);
}

static int m_gpa_overlap(struct tfe_vm *vm) { return m_pair(vm, 0x1000, 0x10000, 2); }
static int m_uva_overlap(struct tfe_vm *vm) { return m_pair(vm, 0x10000, 0x1000, 2); }
static int m_duplicate(struct tfe_vm *vm) { return m_pair(vm, 0, 0, 2); }
static int m_fewer_fds(struct tfe_vm *vm) { return m_pair(vm, 0x10000, 0x10000, 1); }

static int m_more_fds(struct tfe_vm *vm)
{
	struct region_set rs = one_region(vm);

	rs.nfds = 2;
	return send_table(vm, &rs);
}

static int m_fd_kind(struct tfe_vm *vm, enum fdkind k)
{
	struct region_set rs = one_region(vm);

	rs.fk = k;
	rs.r[0].mmap_offset = 0;
	rs.r[0].memory_size = 0x10000;
	return send_table(vm, &rs);
}

static int m_eventfd(struct tfe_vm *vm) { return m_fd_kind(vm, FD_EVENT); }
static int m_socket(struct tfe_vm *vm) { return m_fd_kind(vm, FD_SOCKET); }
static int m_rdonly(struct tfe_vm *vm) { return m_fd_kind(vm, FD_RDONLY_MEMFD); }

/* Exactly the most regions a table may have: eight disjoint 4 KiB pieces. */
static int m_eight(struct tfe_vm *vm)
{
	struct region_set rs = one_region(vm);

	rs.nregions = rs.n = rs.nfds = VU_MAX_MEM_REGIONS;
	for (unsigned int i = 0; i < rs.n; i++) {
		rs.r[i] = rs.r[0];
		rs.r[i].memory_size = 0x1000;
		rs.r[i].guest_phys_addr = 0x100000 + 0x2000ull * i;
		rs.r[i].userspace_addr = uva(vm, 0x2000ull * i);
		rs.r[i].mmap_offset = 0x2000ull * i;
	}
	return send_table(vm, &rs);
}

/* While running: a table with only the RAM above the hole, where no ring is. */
static int m_drop_rings(struct tfe_vm *vm)
{
	struct vu_mem_region all[TFE_MEM_MAX_REGIONS];
	struct region_set rs = { .nregions = 1, .n = 1, .nfds = 1, .fk = FD_MEMFD };

	tfe_mem_table(&vm->mem, all);
	rs.r[0] = all[1];
	return send_table(vm, &rs);
}

static int m_same_again(struct tfe_vm *vm)
{
	struct vu_mem_region all[TFE_MEM_MAX_REGIONS];
	struct region_set rs = { .nregions = 2, .n = 2, .nfds = 2, .fk = FD_MEMFD };

	tfe_mem_table(&vm->mem, all);
	memcpy(rs.r, all, sizeof(all));
	return send_table(vm, &rs);
}

/* ------------------------------------------------------------------ */
/* Ring addresses                                                      */
/* ------------------------------------------------------------------ */

/* SET_VRING_NUM 128 on ring 0, then SET_VRING_ADDR with these guest addresses. */
static int a_ring(struct tfe_vm *vm, uint64_t desc, uint64_t avail, uint64_t used,
		  uint32_t flags, uint64_t log)
{
	struct vu_vring_addr a = { .index = 0, .flags = flags, .desc = desc, .avail = avail,
				   .used = used, .log = log };
	int rc = req_state(&vm->fe, VU_REQ_SET_VRING_NUM, 0, 128);

	if (rc != OUT_ACK)
		return rc < 0 ? rc : -EPROTO;
	return req(&vm->fe, VU_REQ_SET_VRING_ADDR, &a, sizeof(a));
}

static int a_good(struct tfe_vm *vm, uint64_t desc_gpa)
{
	return a_ring(vm, uva(vm, desc_gpa), uva(vm, desc_gpa + 0x800), uva(vm, desc_gpa + 0x1000),
		      0, 0);
}

static int a_before_table(struct tfe_vm *vm) { return a_good(vm, 0x10000); }
static int a_desc_misaligned(struct tfe_vm *vm) { return a_good(vm, 0x10008); }
static int a_across_hole(struct tfe_vm *vm) { return a_good(vm, 0xa0000 - 0x400); }

static int a_used_misaligned(struct tfe_vm *vm)
{
	return a_ring(vm, uva(vm, 0x10000), uva(vm, 0x10800), uva(vm, 0x11002), 0, 0);
}

static int a_outside(struct tfe_vm *vm)
{
	return a_ring(vm, 0x1000, uva(vm, 0x10800), uva(vm, 0x11000), 0, 0);
}

static int a_past_end(struct tfe_vm *vm)
{
	return a_ring(vm, uva(vm, 0x10000), uva(vm, MEM_SIZE - 0x10), uva(vm, 0x11000), 0, 0);
}

/* All three parts at one address: the guest's problem, harmless to us. */
static int a_overlapping(struct tfe_vm *vm)
{
	uint64_t a = uva(vm, 0x10000);

	return a_ring(vm, a, a, a, 0, 0);
}

/* LOG flag with a log address nowhere: we never log, so nothing reads it. */
static int a_wild_log(struct tfe_vm *vm)
{
	return a_ring(vm, uva(vm, 0x10000), uva(vm, 0x10800), uva(vm, 0x11000), VU_VRING_F_LOG,
		      0xdead0000ull);
}

/* The descriptor table ends at the hole with 128 entries; 256 would run into it. */
static int a_num_grows(struct tfe_vm *vm)
{
	int rc = a_ring(vm, uva(vm, 0xa0000 - 0x800), uva(vm, 0x20000), uva(vm, 0x21000), 0, 0);

	if (rc != OUT_ACK)
		return rc < 0 ? rc : -EPROTO;
	return req_state(&vm->fe, VU_REQ_SET_VRING_NUM, 0, 256);
}

/* ------------------------------------------------------------------ */
/* Session life                                                        */
/* ------------------------------------------------------------------ */

/* Nothing came for what was sent last: the next message is the reply to GET_FEATURES. */
static int silent_since(struct tfe_fe *fe)
{
	int rc = tfe_fe_send(fe, VU_REQ_GET_FEATURES, VU_FLAG_VERSION, NULL, 0, NULL, 0);

	if (rc < 0)
		return rc == -EPIPE ? OUT_CLOSED : rc;
	rc = outcome(fe, VU_REQ_GET_FEATURES, false, ANSWER_MS);
	return rc == OUT_REPLY ? OUT_SILENT : rc;
}

/* NEED_REPLY without REPLY_ACK negotiated: the spec says no ack comes. */
static int s_need_reply_unacked(struct tfe_vm *vm)
{
	int rc = tfe_fe_send(&vm->fe, VU_REQ_SET_OWNER, NR, NULL, 0, NULL, 0);

	return rc < 0 ? rc : silent_since(&vm->fe);
}

static int s_config_unnegotiated(struct tfe_vm *vm)
{
	union pl p = CFG(0, 8);
	int rc = to_owned(vm, 1ull << VU_PROTOCOL_F_REPLY_ACK);

	if (rc < 0)
		return rc;
	rc = req(&vm->fe, VU_REQ_GET_CONFIG, &p, VU_CONFIG_HDR_SIZE + 8);
	return rc == OUT_REPLY && answer_size == VU_CONFIG_HDR_SIZE ? OUT_NACK : -EPROTO;
}

/* QEMU's start sequence on rings 0 and 1 again, after a device reset. */
static int restart(struct tfe_vm *vm)
{
	struct tfe_fe *fe = &vm->fe;
	struct vu_vring_addr a;
	int rc = tfe_fe_set_u64(fe, VU_REQ_SET_FEATURES, vm->features_acked);

	if (rc == 0)
		rc = tfe_fe_set_mem_table(fe, &vm->mem);
	for (unsigned int i = 0; i < 2 && rc == 0; i++) {
		tfe_vring_addr(&vm->vq[i], i, &a);
		rc = tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_NUM, i, vm->vq[i].num);
		if (rc == 0)
			rc = tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_BASE, i, 0);
		if (rc == 0)
			rc = tfe_fe_set_vring_addr(fe, &a);
		if (rc == 0)
			rc = tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_KICK, i, fe->kick[i]);
		if (rc == 0)
			rc = tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_ENABLE, i, 1);
		if (rc == 0)
			rc = tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_CALL, i, fe->call[i]);
	}
	return rc;
}

static int s_reset_device_running(struct tfe_vm *vm)
{
	int rc = req(&vm->fe, VU_REQ_RESET_DEVICE, NULL, 0);

	if (rc != OUT_ACK)
		return rc;
	rc = restart(vm);
	return rc == 0 ? OUT_ACK : rc;
}

static int s_reset_owner_running(struct tfe_vm *vm)
{
	struct tfe_setup_opts so = { .need_reply = TFE_NR_ALL };
	int rc = req(&vm->fe, VU_REQ_RESET_OWNER, NULL, 0);

	if (rc != OUT_ACK)
		return rc;
	rc = tfe_setup_qemu(vm, &so);
	return rc == 0 ? OUT_ACK : rc;
}

/* After GET_VRING_BASE stopped ring 0: new addresses, base and kick start it again. */
static int s_after_get_base(struct tfe_vm *vm)
{
	struct tfe_fe *fe = &vm->fe;
	struct vu_vring_addr a;
	uint32_t base = 0;
	int rc = tfe_fe_get_vring_base(fe, 0, &base);

	tfe_vring_addr(&vm->vq[0], 0, &a);
	if (rc == 0)
		rc = tfe_fe_set_vring_addr(fe, &a);
	if (rc == 0)
		rc = tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_BASE, 0, base);
	if (rc == 0)
		rc = tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_KICK, 0, fe->kick[0]);
	return rc == 0 ? OUT_ACK : rc;
}

/* The session started with VERSION_1 only; now EVENT_IDX too, rings running. */
static int s_features_change(struct tfe_vm *vm)
{
	uint64_t f = F_VERSION_1 | F_PROTOCOL | (vm->features_offered & (1ull << TFE_F_EVENT_IDX));

	return req_u64(&vm->fe, VU_REQ_SET_FEATURES, f);
}

/* The header alone, then its payload with an fd riding on it. */
static int s_fd_on_payload(struct tfe_vm *vm)
{
	const uint8_t *msg = features_msg;
	int fd = eventfd(0, EFD_CLOEXEC), rc;

	rc = fd < 0 ? -errno : tfe_fe_send_bytes(&vm->fe, msg, VU_HDR_SIZE, NULL, 0);
	if (rc == 0)
		rc = tfe_fe_send_bytes(&vm->fe, msg + VU_HDR_SIZE, 8, &fd, 1);
	if (fd >= 0)
		close(fd);
	return rc < 0 ? rc : outcome(&vm->fe, VU_REQ_SET_FEATURES, true, ANSWER_MS);
}

static int s_num_change(struct tfe_vm *vm)
{
	return req_state(&vm->fe, VU_REQ_SET_VRING_NUM, 0, 64);
}

/* ------------------------------------------------------------------ */
/* Custom cases                                                        */
/* ------------------------------------------------------------------ */

struct ccase {
	const char *name;
	enum state st;
	int (*fn)(struct tfe_vm *vm);
	int expect;
	int expect_kernel;       /* 0: as expect */
	const char *log;
};

static const struct ccase ccases[] = {
	{ "nregions 0", ST_OWNED, m_zero_regions, OUT_CLOSED, 0, LAYOUT },
	{ "nregions 9", ST_OWNED, m_nine_regions, OUT_CLOSED, 0, LAYOUT },
	{ "nregions 0xffffffff", ST_OWNED, m_huge_nregions, OUT_CLOSED, 0, LAYOUT },
	{ "table padding 1", ST_OWNED, m_padding, OUT_CLOSED, 0, LAYOUT },
	{ "region of size 0", ST_OWNED, m_size0, OUT_NACK, 0, "has size 0" },
	{ "region past its file", ST_OWNED, m_beyond_file, OUT_NACK, 0, "beyond the file end" },
	{ "gpa + size wraps", ST_OWNED, m_gpa_wrap, OUT_NACK, 0, ") overflows" },
	{ "uva + size wraps", ST_OWNED, m_uva_wrap, OUT_NACK, 0, ") overflows" },
	{ "offset + size wraps", ST_OWNED, m_off_wrap, OUT_NACK, 0, ") overflows" },
	{ "unaligned mmap offset", ST_OWNED, m_unaligned_offset, OUT_ACK, 0, NULL },
	{ "overlapping guest ranges", ST_OWNED, m_gpa_overlap, OUT_NACK, 0, "overlap in guest physical space" },
	{ "overlapping front-end ranges", ST_OWNED, m_uva_overlap, OUT_NACK, 0, "overlap in front-end virtual space" },
	{ "duplicate regions", ST_OWNED, m_duplicate, OUT_NACK, 0, "overlap in guest physical space" },
	{ "fewer fds than regions", ST_OWNED, m_fewer_fds, OUT_CLOSED, 0, "1 fds attached, 2..2 expected" },
	{ "more fds than regions", ST_OWNED, m_more_fds, OUT_CLOSED, 0, "2 fds attached, 1..1 expected" },
	{ "eventfd as memory", ST_OWNED, m_eventfd, OUT_NACK, 0, "not a regular file or memfd" },
	{ "socket as memory", ST_OWNED, m_socket, OUT_NACK, 0, "not a regular file or memfd" },
	{ "read-only memfd", ST_OWNED, m_rdonly, OUT_NACK, 0, "failed: Permission denied" },
	{ "eight regions", ST_OWNED, m_eight, OUT_ACK, 0, NULL },
	{ "table without the running rings", ST_RUNNING, m_drop_rings, OUT_NACK, 0, "outside the new table" },
	{ "same table while running", ST_RUNNING, m_same_again, OUT_ACK, 0, NULL },
	{ "ring address before a table", ST_OWNED, a_before_table, OUT_NACK, 0, "not inside one memory region" },
	{ "descriptor table misaligned", ST_MEM, a_desc_misaligned, OUT_NACK, 0, "descriptor table is misaligned" },
	{ "used ring misaligned", ST_MEM, a_used_misaligned, OUT_NACK, 0, "used ring is misaligned" },
	{ "ring outside every region", ST_MEM, a_outside, OUT_NACK, 0, "descriptor table is misaligned or not inside" },
	{ "ring across the hole", ST_MEM, a_across_hole, OUT_NACK, 0, "not inside one memory region" },
	{ "ring past the end of RAM", ST_MEM, a_past_end, OUT_NACK, 0, "available ring is misaligned or not inside" },
	{ "ring grows out of its region", ST_MEM, a_num_grows, OUT_NACK, 0, "leaves guest memory" },
	{ "ring parts overlapping", ST_MEM, a_overlapping, OUT_ACK, 0, NULL },
	{ "LOG flag, wild log address", ST_MEM, a_wild_log, OUT_ACK, 0, NULL },
	{ "NEED_REPLY without REPLY_ACK", ST_FRESH, s_need_reply_unacked, OUT_SILENT, 0, NULL },
	{ "GET_CONFIG without CONFIG", ST_FRESH, s_config_unnegotiated, OUT_NACK, 0, "CONFIG was not negotiated" },
	{ "RESET_DEVICE while running", ST_RUNNING, s_reset_device_running, OUT_ACK, 0, "RESET_DEVICE: resetting the device" },
	{ "RESET_OWNER while running", ST_RUNNING, s_reset_owner_running, OUT_ACK, 0, "RESET_OWNER: resetting the device" },
	{ "messages after GET_VRING_BASE", ST_RUNNING, s_after_get_base, OUT_ACK, 0, NULL },
	{ "features changed while running", ST_RUNNING, s_features_change, OUT_ACK, 0, NULL },
	{ "ring size changed while running", ST_RUNNING, s_num_change, OUT_ACK, 0, NULL },
	{ "fd on the payload, not the header", ST_OWNED, s_fd_on_payload, OUT_CLOSED, 0, "descriptors attached to a message payload" },
};

/* ------------------------------------------------------------------ */
/* After every case                                                    */
/* ------------------------------------------------------------------ */

/* Occurrences of any of the '|'-separated texts in @alts. */
static unsigned int log_count(const char *alts)
{
	char buf[256], *save = NULL;
	unsigned int n = 0;

	if (!alts)
		return 0;
	snprintf(buf, sizeof(buf), "%s", alts);
	for (char *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
		n += uh_log_count(&tgt->log, t);
	return n;
}

static bool log_grew(const char *alts, unsigned int before, unsigned int by)
{
	int64_t deadline = tfe_now_ms() + ANSWER_MS;

	while (log_count(alts) < before + by) {
		if (tfe_remaining_ms(deadline) == 0) {
			fprintf(stderr, "the log does not say '%s' (%u times, want %u)\n", alts,
				log_count(alts), before + by);
			return false;
		}
		poll(NULL, 0, 10);
	}
	return true;
}

/* The back end holds what it held with no front end; the double too. */
static void assert_back(void)
{
	int64_t deadline = tfe_now_ms() + BACK_MS;

	assert_int_equal(pw_wait_back(tgt->pid, &tgt->base, BACK_MS), 0);
	while (tgt->kernel && vhd_open_locked() != 0 && tfe_remaining_ms(deadline) > 0)
		poll(NULL, 0, 10);
	if (tgt->kernel)
		assert_int_equal(vhd_open_locked(), 0);
}

static uint32_t src_port = 40000;

/* A guest connection to a host listener through VM @i, 64 KiB across, closed. */
static int serve_user(unsigned int i)
{
	static struct uh_guest g;
	struct tfe_vsock_conn *c;
	int rc = uh_guest_open(&g, tgt->h, i, 1ull << TFE_F_EVENT_IDX, NULL);
	int fd = -1;

	if (rc == 0)
		rc = tfe_vsock_connect(&g.vs, TFE_VSOCK_HOST_CID, HOST_PORT, src_port++, 5000, &c);
	if (rc == 0)
		rc = fd = uh_accept(tgt->host_lfd[i], &g, 5000);
	if (rc >= 0)
		rc = uh_guest_to_host(&g, c, fd, 65536, src_port, 10000);
	if (rc == 0)
		rc = tfe_vsock_close(&g.vs, c, 5000);
	if (fd >= 0)
		close(fd);
	uh_guest_close(&g);
	return rc;
}

/* QEMU's whole start on the double: it must end in SET_RUNNING(1). */
static int serve_kernel(unsigned int i)
{
	static struct tfe_vm vm;
	struct tfe_setup_opts so = { .need_reply = TFE_NR_ALL };
	int rc;

	vhd_clear_locked();
	rc = tfe_vm_open(&vm, tgt->sock[i], MEM_SIZE, true, 5000);
	if (rc < 0)
		return rc;
	rc = tfe_setup_qemu(&vm, &so);
	if (rc == 0 && !vhd_running_locked())
		rc = -ENODEV;
	tfe_vm_close(&vm);
	return rc;
}

/* The case is over: logged, nothing kept, and the next front end is served. */
static void after_case(const char *name, const char *log, unsigned int before, unsigned int i)
{
	drop_pipe_reader();
	if (log && !log_grew(log, before, 1))
		fail_msg("case '%s': no log line", name);
	assert_back();
	if ((tgt->kernel ? serve_kernel(i) : serve_user(i)) != 0)
		fail_msg("case '%s': the next front end is not served", name);
	assert_back();
}

static const char *out_name(int o)
{
	static const char *const names[] = { "?", "ack", "error ack", "reply", "closed", "silence" };

	return o >= OUT_ACK && o <= OUT_SILENT ? names[o] : strerror(-o);
}

static void check_outcome(const char *name, int got, int want)
{
	printf("  %-40s %s\n", name, out_name(got));
	if (got != want)
		fail_msg("case '%s': %s, expected %s", name, out_name(got), out_name(want));
}

static int open_in(struct tfe_vm *vm, enum state st, unsigned int i)
{
	int rc = tfe_vm_open(vm, tgt->sock[i], MEM_SIZE, true, 5000);

	if (rc == 0) {
		vm->fe.timeout_ms = ANSWER_MS;
		rc = to_state(vm, st);
	}
	return rc;
}

static void run_mcase(const struct mcase *c)
{
	static struct tfe_vm vm;
	unsigned int before;
	int got;

	if (open_in(&vm, c->st, 0) != 0)
		fail_msg("case '%s': cannot reach its state", c->name);
	before = log_count(c->log);
	got = c->expect == OUT_SILENT ? tfe_fe_send(&vm.fe, c->req, c->flags, &c->p, c->size, NULL, 0)
				      : 0;
	if (c->expect == OUT_SILENT)
		got = got < 0 ? got : silent_since(&vm.fe);
	else
		got = send_with_fds(&vm.fe, c->req, c->flags ? c->flags : NR,
				    c->header_only ? NULL : &c->p, c->size, c->fk, c->nfds);
	if (got == OUT_REPLY && c->reply_size >= 0 && answer_size != (uint32_t)c->reply_size)
		fail_msg("case '%s': reply of %u bytes, expected %d", c->name, answer_size,
			 c->reply_size);
	tfe_vm_close(&vm);
	check_outcome(c->name, got, c->expect);
	after_case(c->name, c->log, before, 0);
}

static void run_ccase(const struct ccase *c)
{
	static struct tfe_vm vm;
	int want = tgt->kernel && c->expect_kernel ? c->expect_kernel : c->expect;
	unsigned int before;
	int got;

	if (open_in(&vm, c->st, 0) != 0)
		fail_msg("case '%s': cannot reach its state", c->name);
	before = log_count(c->log);
	got = c->fn(&vm);
	tfe_vm_close(&vm);
	check_outcome(c->name, got, want);
	after_case(c->name, c->log, before, 0);
}

static void test_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mcases) / sizeof(mcases[0]); i++)
		run_mcase(&mcases[i]);
}

static void test_tables_rings_sessions(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ccases) / sizeof(ccases[0]); i++)
		run_ccase(&ccases[i]);
}

/* ------------------------------------------------------------------ */
/* Front ends that vanish or stall mid-message (one thread each)       */
/* ------------------------------------------------------------------ */


static int v_header_gone(struct tfe_fe *fe)
{
	int rc = tfe_fe_send_bytes(fe, features_msg, 6, NULL, 0);

	tfe_fe_close(fe);
	return rc < 0 ? rc : OUT_CLOSED;
}

static int v_payload_gone(struct tfe_fe *fe)
{
	int rc = tfe_fe_send_bytes(fe, features_msg, VU_HDR_SIZE + 3, NULL, 0);

	tfe_fe_close(fe);
	return rc < 0 ? rc : OUT_CLOSED;
}

static int v_header_stall(struct tfe_fe *fe)
{
	int rc = tfe_fe_send_bytes(fe, features_msg, 6, NULL, 0);

	return rc < 0 ? rc : outcome(fe, VU_REQ_SET_FEATURES, true, STALL_MS);
}

static int v_payload_stall(struct tfe_fe *fe)
{
	int rc = tfe_fe_send_bytes(fe, features_msg, VU_HDR_SIZE + 3, NULL, 0);

	return rc < 0 ? rc : outcome(fe, VU_REQ_SET_FEATURES, true, STALL_MS);
}

/* One byte a second: each read makes progress, the whole message never comes. */
static int v_dribble(struct tfe_fe *fe)
{
	for (size_t i = 0; i < sizeof(features_msg); i++) {
		struct pollfd p = { .fd = fe->sock, .events = POLLIN };

		if (tfe_fe_send_bytes(fe, features_msg + i, 1, NULL, 0) < 0 || poll(&p, 1, 1000) > 0)
			return outcome(fe, VU_REQ_SET_FEATURES, true, STALL_MS);
	}
	return outcome(fe, VU_REQ_SET_FEATURES, true, ANSWER_MS);
}

/* Requests, and never a reply read: the back end's sends time out. */
static int v_never_reads(struct tfe_fe *fe)
{
	struct timeval tv = { .tv_sec = STALL_MS / 1000 };
	int64_t deadline = tfe_now_ms() + STALL_MS;

	setsockopt(fe->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (tfe_remaining_ms(deadline) > 0) {
		int rc = tfe_fe_send(fe, VU_REQ_GET_FEATURES, VU_FLAG_VERSION, NULL, 0, NULL, 0);

		if (rc == -EPIPE || rc == -ECONNRESET)
			return OUT_CLOSED;
		if (rc < 0)
			return rc;
	}
	return OUT_SILENT;
}

/* Requests in flight, then gone before any reply is read. */
static int v_gone_in_flight(struct tfe_fe *fe)
{
	for (unsigned int i = 0; i < 200; i++) {
		if (tfe_fe_send(fe, VU_REQ_GET_FEATURES, VU_FLAG_VERSION, NULL, 0, NULL, 0) < 0)
			break;
	}
	tfe_fe_close(fe);
	return OUT_CLOSED;
}

struct slow {
	const char *name;
	int (*fn)(struct tfe_fe *fe);
	const char *log;
	int rc;
	unsigned int sock;
	unsigned int before;
	pthread_t th;
};

#define STALLED "the front end stalled"
static struct slow slows[] = {
	{ "partial header, stall", v_header_stall, STALLED },
	{ "partial payload, stall", v_payload_stall, STALLED },
	{ "one byte a second", v_dribble, STALLED },
	{ "never reads replies", v_never_reads, "cannot send the reply" },
	{ "partial header, gone", v_header_gone, "closed after 6 of 12 header bytes" },
	{ "partial payload, gone", v_payload_gone, "closed after 3 of 8 payload bytes" },
	{ "gone with requests in flight", v_gone_in_flight, "cannot send the reply|front end disconnected" },
};

static void *slow_thread(void *arg)
{
	struct slow *s = arg;
	struct tfe_fe fe;

	tfe_fe_init(&fe, -1);
	s->rc = tfe_fe_connect(&fe, tgt->sock[s->sock], 5000);
	if (s->rc == 0)
		s->rc = s->fn(&fe);
	tfe_fe_close(&fe);
	return NULL;
}

/* Cases @from..@to-1 at once, one per socket. */
static void run_wave(unsigned int from, unsigned int to)
{
	for (unsigned int i = from; i < to; i++) {
		slows[i].sock = i - from;
		slows[i].before = log_count(slows[i].log);
		assert_int_equal(pthread_create(&slows[i].th, NULL, slow_thread, &slows[i]), 0);
	}
	for (unsigned int i = from; i < to; i++)
		pthread_join(slows[i].th, NULL);
	for (unsigned int i = from; i < to; i++) {
		unsigned int same = 0;

		for (unsigned int j = from; j < to; j++)
			same += strcmp(slows[i].log, slows[j].log) == 0;
		check_outcome(slows[i].name, slows[i].rc, OUT_CLOSED);
		if (!log_grew(slows[i].log, slows[i].before, same))
			fail_msg("case '%s': no log line", slows[i].name);
	}
	for (unsigned int i = from; i < to; i++)
		after_case(slows[i].name, NULL, 0, slows[i].sock);
}

static void test_vanish_and_stall(void **state)
{
	const unsigned int n = sizeof(slows) / sizeof(slows[0]);

	(void)state;
	for (unsigned int i = 0; i < n; i += NSOCK)
		run_wave(i, i + NSOCK < n ? i + NSOCK : n);
}

/* ------------------------------------------------------------------ */
/* Replaced fds are closed: loop, watch the count                       */
/* ------------------------------------------------------------------ */

static void sync_fe(struct tfe_fe *fe)
{
	uint64_t f;

	assert_int_equal(tfe_fe_get_u64(fe, VU_REQ_GET_FEATURES, &f), 0);
}

/* @n times @r for ring @ring with a fresh eventfd, no reply asked. */
static void replace_fds(struct tfe_fe *fe, uint32_t r, uint32_t ring, unsigned long n)
{
	uint64_t v = ring;

	for (unsigned long i = 0; i < n; i++) {
		int fd = eventfd(0, EFD_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(tfe_fe_send(fe, r, VU_FLAG_VERSION, &v, sizeof(v), &fd, 1), 0);
		close(fd);
		if (i % 1024 == 1023)
			sync_fe(fe);
	}
	sync_fe(fe);
}

static void replace_rest(struct tfe_vm *vm, unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		assert_int_equal(tfe_fe_set_mem_table(&vm->fe, &vm->mem), 0);
		assert_int_equal(send_with_fds(&vm->fe, VU_REQ_SET_LOG_FD, NR, NULL, 0, FD_MEMFD, 1),
				 OUT_NACK);
	}
	replace_fds(&vm->fe, VU_REQ_SET_VRING_ERR, 0, n);
	replace_fds(&vm->fe, VU_REQ_SET_VRING_KICK, 1, n);
}

static void test_repeated_fds(void **state)
{
	static struct tfe_vm vm;
	unsigned long n = pw_env_count("VUV_HOSTILE_REPEAT", 100000);
	struct pw_snap warm, after;

	(void)state;
	assert_int_equal(open_in(&vm, ST_RUNNING, 0), 0);
	replace_fds(&vm.fe, VU_REQ_SET_VRING_CALL, 0, 16);
	replace_rest(&vm, 2);
	assert_int_equal(pw_snap(tgt->pid, &warm), 0);
	replace_fds(&vm.fe, VU_REQ_SET_VRING_CALL, 0, n);
	replace_rest(&vm, n / 100 + 1);
	assert_int_equal(pw_snap(tgt->pid, &after), 0);
	printf("  %lu CALL, %lu ERR/KICK/SET_MEM_TABLE/SET_LOG_FD: %d fds, %d memfd maps before;"
	       " %d, %d after\n", n, n / 100 + 1, warm.fds, warm.memfds, after.fds, after.memfds);
	assert_int_equal(after.fds, warm.fds);
	assert_int_equal(after.memfds, warm.memfds);
	tfe_vm_close(&vm);
	after_case("repeated fd replacement", NULL, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

static struct uh daemon_h;
static struct target user_t = { .name = "userspace engine (daemon)" };
static struct target kern_t = { .name = "kernel engine (in process, vhost double)", .kernel = true };
static char kdir[64];
static int saved_stderr = -1;

static int user_setup(void **state)
{
	const struct uh_vm_spec specs[NSOCK] = { { .cid = 3 }, { .cid = 4 }, { .cid = 5 } };

	(void)state;
	uh_watchdog(600);
	tgt = &user_t;
	if (uh_start(&daemon_h, specs, NSOCK, false, NULL) < 0)
		return -1;
	user_t.h = &daemon_h;
	user_t.pid = daemon_h.d.pid;
	snprintf(user_t.log.log, sizeof(user_t.log.log), "%s", daemon_h.log);
	for (unsigned int i = 0; i < NSOCK; i++) {
		snprintf(user_t.sock[i], sizeof(user_t.sock[i]), "%s", daemon_h.sock[i]);
		user_t.host_lfd[i] = uh_host_listen(daemon_h.uds[i], HOST_PORT, SOCK_STREAM);
		if (user_t.host_lfd[i] < 0)
			return -1;
	}
	printf("%s\n", user_t.name);
	return pw_snap(user_t.pid, &user_t.base);
}

static int user_teardown(void **state)
{
	int rc;

	(void)state;
	for (unsigned int i = 0; i < NSOCK; i++)
		close(user_t.host_lfd[i]);
	rc = uh_alive(&daemon_h) ? uh_stop(&daemon_h) : -1;
	uh_watchdog(0);
	return rc;
}

/* The in-process back end logs to our stderr: send it to a file to grep. */
static int kern_setup(void **state)
{
	int fd;

	(void)state;
	uh_watchdog(600);
	tgt = &kern_t;
	snprintf(kdir, sizeof(kdir), "/tmp/hfe-XXXXXX");
	if (!mkdtemp(kdir))
		return -1;
	snprintf(kern_t.log.log, sizeof(kern_t.log.log), "%s/log", kdir);
	fd = open(kern_t.log.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	saved_stderr = dup(STDERR_FILENO);
	if (fd < 0 || saved_stderr < 0 || dup2(fd, STDERR_FILENO) < 0)
		return -1;
	close(fd);
	vhd_reset();
	for (unsigned int i = 0; i < NSOCK; i++) {
		snprintf(kern_t.sock[i], sizeof(kern_t.sock[i]), "%s/k%u.sock", kdir, i);
		if (kside_start(&ks[i], i, kern_t.sock[i]) < 0)
			return -1;
	}
	kern_t.pid = getpid();
	printf("%s\n", kern_t.name);
	return pw_snap(kern_t.pid, &kern_t.base);
}

static int kern_teardown(void **state)
{
	char line[512];
	FILE *f;

	(void)state;
	for (unsigned int i = 0; i < NSOCK; i++)
		kside_stop(&ks[i]);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	f = fopen(kern_t.log.log, "re");
	fprintf(stderr, "---- in-process back end log ----\n");
	while (f && fgets(line, sizeof(line), f))
		fputs(line, stderr);
	if (f)
		fclose(f);
	unlink(kern_t.log.log);
	rmdir(kdir);
	uh_watchdog(0);
	return vhd_bad_closes() == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_tables_rings_sessions),
		cmocka_unit_test(test_vanish_and_stall),
		cmocka_unit_test(test_repeated_fds),
	};
	int failed;

	if (uh_args(argc, argv) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	failed = cmocka_run_group_tests_name("hostile front end: daemon", tests, user_setup,
					     user_teardown);
	failed += cmocka_run_group_tests_name("hostile front end: kernel engine", tests,
					      kern_setup, kern_teardown);
	return failed ? 1 : 0;
}
