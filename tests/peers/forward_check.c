// SPDX-License-Identifier: MIT
/*
 * forward_check: end-to-end check of forwarding to host AF_VSOCK
 * (--forward-cid / --forward-listen, userspace engine), run as root inside
 * the QEMU/TCG guest of tests/peers/run-forward.sh, where vsock_loopback
 * makes CID 1 this guest's own loopback. This process is at once the VMM
 * (a vhost-user front end, through tests/lib), the virtio guest (the tfe
 * guest driver on rings in a memfd) and the "host" programs (real AF_VSOCK
 * sockets on CID 1):
 *
 *   tfe guest --(virtio-vsock, dst CID 2, port P)--> daemon
 *       --(AF_VSOCK connect to 1:P)--> our listener on (ANY, P)
 *   our AF_VSOCK connect to 1:7000 --> daemon's --forward-listen 7000
 *       --(host-initiated REQUEST to guest port 7000)--> tfe guest listener
 *
 *   forward_check --daemon PATH [--workdir DIR]
 *
 * Refuses to run unless /proc/cmdline carries the rig's marker (rig.run=)
 * and "vuv.forward=1" that run-forward.sh adds: this program opens
 * AF_VSOCK sockets, which on any other machine would reach that machine's
 * real vsock transport.
 *
 * Prints one "PASS: <case>" or "FAIL: <case>: <reason>" line per case,
 * "INFO: ..." lines with measurements, and finally
 * "forward: N passed, M failed"; exits 0 iff nothing failed.
 * Derived from kernel_engine_check.c (same pump/pair/stream helpers).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "tfe.h"

#define TOTAL_BUDGET_MS 100000
#define ALARM_SEC 110
#define STEP_MS 3000
#define DATA_MAX (4u << 20)
#define DATA_MIN (4u << 20) /* the brief: at least 4 MiB each way */
#define DATA_SOFT_MS 30000
#define DATA_HARD_MS 40000
#define MEM_SIZE (16ull << 20)
/* the daemon's --forward-listen ports: 7000 STREAM, 7001 SEQPACKET */
#define FWD_PORT 7000u
#define FWD_LISTEN "7000+7001/seqpacket"
#define FWD_SEQ_PORT 7001u
#define VSOCK_F_SEQPACKET 1
#define SEQ_EOM 1u
#define SEQ_EOR 2u
#define SEQ_BUF_ALLOC (64u * 1024u)

struct check {
	const char *daemon;
	const char *workdir;
	uint64_t cid;
	int64_t deadline;
	unsigned int passed, failed;
	uint32_t next_port;
	struct tfe_daemon d1, d2;
	char sock1[108], sock2[108], log1[PATH_MAX], log2[PATH_MAX], uds[108];
	struct tfe_vm vm;
	bool vm_up;
	struct tfe_vsock vs;
	bool vs_up;
	/* the one raw SEQPACKET connection of the seqpacket cases */
	uint32_t seq_gport;      /* our guest port; 0: none */
	bool seq_response, seq_rst, seq_request;
	uint32_t seq_peer_port, seq_peer_buf_alloc;
	uint8_t seq_msgs[4][4096];
	uint32_t seq_len[4], seq_flags[4];
	unsigned int seq_n;      /* messages (RW packets) received */
};

typedef int (*case_fn)(struct check *k, char *why, size_t n);

#define FAILF(...) do { snprintf(why, n, __VA_ARGS__); return -1; } while (0)

/* For the alarm handler: whatever it needs, without locks. */
static volatile pid_t alarm_pids[2];
static volatile unsigned int alarm_passed, alarm_failed;

/* ------------------------------------------------------------------ */
/* Reporting and time                                                  */
/* ------------------------------------------------------------------ */

static void put_uint(char *buf, size_t *len, unsigned int v)
{
	char tmp[12];
	int i = 0;

	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0)
		buf[(*len)++] = tmp[--i];
}

/* Async-signal-safe last words: kill the daemons, report, exit. */
static void on_alarm(int sig)
{
	static const char fail[] = "FAIL: global-timeout: the run exceeded its time limit\n";
	char line[80] = "forward: ";
	size_t len = strlen(line);

	(void)sig;
	for (int i = 0; i < 2; i++)
		if (alarm_pids[i] > 0)
			kill(alarm_pids[i], SIGKILL);
	if (write(STDOUT_FILENO, fail, sizeof(fail) - 1) < 0)
		_exit(1);
	put_uint(line, &len, alarm_passed);
	memcpy(line + len, " passed, ", 9);
	len += 9;
	put_uint(line, &len, alarm_failed + 1);
	memcpy(line + len, " failed\n", 8);
	len += 8;
	if (write(STDOUT_FILENO, line, len) < 0)
		_exit(1);
	_exit(1);
}

static int budget(const struct check *k, int want)
{
	int left = tfe_remaining_ms(k->deadline);

	return left < want ? left : want;
}

static void run_case(struct check *k, const char *name, case_fn fn)
{
	char why[256] = "";

	if (tfe_remaining_ms(k->deadline) == 0) {
		snprintf(why, sizeof(why), "not run: the time budget is spent");
	} else if (fn(k, why, sizeof(why)) == 0) {
		printf("PASS: %s\n", name);
		k->passed++;
		alarm_passed = k->passed;
		fflush(stdout);
		return;
	}
	printf("FAIL: %s: %s\n", name, why[0] ? why : "unknown reason");
	k->failed++;
	alarm_failed = k->failed;
	fflush(stdout);
}

static uint32_t fresh_port(struct check *k)
{
	return k->next_port++;
}

/* ------------------------------------------------------------------ */
/* Host side: AF_VSOCK sockets                                          */
/* ------------------------------------------------------------------ */

static int vsock_socket(void)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	return fd < 0 ? -errno : fd;
}

static int host_listen(uint32_t port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int fd = vsock_socket();

	if (fd < 0)
		return fd;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/*
 * Non-blocking connect to (@cid, @port). @timeout_ms > 0 replaces the
 * kernel's 2 s connect timeout, for connects that must succeed: a loaded
 * TCG host can be slow, and the caller's own wait is the real bound.
 */
static int host_connect(uint64_t cid, uint32_t port, int timeout_ms)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = (unsigned int)cid,
				  .svm_port = port };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };
	int fd = vsock_socket();

	if (fd < 0)
		return fd;
	if ((timeout_ms > 0 && setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv,
					  sizeof(tv)) < 0) ||
	    (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

/*
 * Run the guest while waiting for @events on host socket @fd (or just run
 * it when @fd < 0). Return: the revents seen, 0 on timeout, negative errno.
 */
static int pump(struct check *k, int fd, short events, int timeout_ms)
{
	int64_t end = tfe_now_ms() + budget(k, timeout_ms);

	for (;;) {
		struct pollfd p[3];
		int gfds[2], left = tfe_remaining_ms(end), slice = left < 10 ? left : 10, rc;
		unsigned int ng = tfe_vsock_pollfds(&k->vs, gfds), np = 0;
		bool pending;

		if (fd >= 0)
			p[np++] = (struct pollfd){ .fd = fd, .events = events };
		for (unsigned int i = 0; i < ng; i++)
			p[np++] = (struct pollfd){ .fd = gfds[i], .events = POLLIN };
		/* work already pending: look at the socket without sleeping (arm both rings) */
		pending = tfe_vring_arm(k->vs.rx);
		if (tfe_vring_arm(k->vs.tx) || pending)
			slice = 0;
		rc = poll(p, np, slice);
		if (rc < 0 && errno != EINTR)
			return -errno;
		for (unsigned int i = fd >= 0 ? 1 : 0; i < np; i++) {
			uint64_t v;

			if ((p[i].revents & POLLIN) && read(p[i].fd, &v, sizeof(v)) < 0)
				continue;
		}
		rc = tfe_vsock_poll(&k->vs);
		if (rc < 0)
			return rc;
		if (fd >= 0 && (p[0].revents & (events | POLLERR | POLLHUP)))
			return p[0].revents;
		if (left == 0)
			return 0;
	}
}

static int sock_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return errno;
	return err;
}

/*
 * Diagnostics for a pair that timed out: where both rings stand (times on
 * CLOCK_MONOTONIC, the daemon log's clock), then the same after one
 * unconditional tx kick. tx avail ahead of used with avail_event behind
 * means the device never looked at tx: a lost kick if the kick moves it,
 * a wedged device if not. Runs once the case has failed, so it changes no
 * verdict, though later cases may then run on an unstuck ring.
 */
static void dump_ring(const char *name, const struct tfe_vring *vr)
{
	uint16_t avail = le16toh(__atomic_load_n(&vr->avail->idx, __ATOMIC_ACQUIRE));
	uint16_t used = le16toh(__atomic_load_n(&vr->used->idx, __ATOMIC_ACQUIRE));

	printf("INFO:   %s: avail %u used %u (read %u) kicked at %u avail_event %u flags 0x%x\n",
	       name, avail, used, vr->last_used, vr->kicked_idx,
	       vr->event_idx ? le16toh(*tfe_vring_avail_event(vr)) : 0, le16toh(vr->used->flags));
}

static void pair_diagnose(struct check *k, int64_t t_start)
{
	int64_t now = tfe_now_ms();

	if (!k->vs_up)
		return;
	printf("INFO: rings at %lld.%03lld (pair started at %lld.%03lld):\n", (long long)now / 1000,
	       (long long)now % 1000, (long long)t_start / 1000, (long long)t_start % 1000);
	dump_ring("rx", k->vs.rx);
	dump_ring("tx", k->vs.tx);
	if (tfe_vring_notify(k->vs.tx) == 0 && pump(k, -1, 0, 500) >= 0) {
		printf("INFO: rings after one unconditional tx kick:\n");
		dump_ring("rx", k->vs.rx);
		dump_ring("tx", k->vs.tx);
	}
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Connection pairs (host socket <-> guest connection)                 */
/* ------------------------------------------------------------------ */

/* Guest connects to a host listener; accept() must name the guest. */
static int pair_from_guest(struct check *k, int *hostfd, struct tfe_vsock_conn **c, char *why,
			   size_t n)
{
	uint32_t hport = fresh_port(k), gport = fresh_port(k);
	struct sockaddr_vm peer;
	socklen_t plen = sizeof(peer);
	int64_t t0 = tfe_now_ms();
	int lfd = host_listen(hport), rc, fd;

	if (lfd < 0)
		FAILF("host listen on port %u: %s", hport, strerror(-lfd));
	rc = tfe_vsock_connect(&k->vs, TFE_VSOCK_HOST_CID, hport, gport, budget(k, STEP_MS), c);
	if (rc < 0) {
		pair_diagnose(k, t0);
		close(lfd);
		FAILF("guest connect %u -> 2:%u: %s", gport, hport, strerror(-rc));
	}
	rc = pump(k, lfd, POLLIN, STEP_MS);
	fd = rc > 0 ? accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC | SOCK_NONBLOCK)
		    : -1;
	close(lfd);
	if (fd < 0) {
		pair_diagnose(k, t0);
		tfe_vsock_reset(&k->vs, *c);
		*c = NULL;
		FAILF("host accept on port %u: %s", hport, rc > 0 ? strerror(errno) : "timed out");
	}
	*hostfd = fd;
	/* the daemon connected from this machine: loopback CID 1, its own port */
	if (peer.svm_cid != VMADDR_CID_LOCAL)
		FAILF("accept() saw peer %u:%u, expected the daemon on CID 1", peer.svm_cid,
		      peer.svm_port);
	return 0;
}

/* Host connects to a guest listener; connect() must complete. */
static int pair_from_host(struct check *k, int *hostfd, struct tfe_vsock_conn **c, char *why,
			  size_t n)
{
	uint32_t gport = FWD_PORT;
	int64_t t0 = tfe_now_ms();
	int fd, rc, err;

	tfe_vsock_listen(&k->vs, gport);
	/* the daemon's --forward-listen socket on this machine, through loopback */
	fd = host_connect(VMADDR_CID_LOCAL, gport, 2 * STEP_MS);
	if (fd < 0) {
		tfe_vsock_unlisten(&k->vs, gport);
		FAILF("host connect to 1:%u: %s", gport, strerror(-fd));
	}
	rc = tfe_vsock_accept(&k->vs, gport, budget(k, STEP_MS), c);
	tfe_vsock_unlisten(&k->vs, gport);
	if (rc < 0) {
		pair_diagnose(k, t0);
		close(fd);
		FAILF("the guest saw no REQUEST for port %u: %s", gport, strerror(-rc));
	}
	rc = pump(k, fd, POLLOUT, STEP_MS);
	err = rc > 0 ? sock_error(fd) : ETIMEDOUT;
	*hostfd = fd;
	if (err) {
		pair_diagnose(k, t0);
		FAILF("host connect() to 1:%u: %s", gport, strerror(err));
	}
	if ((*c)->peer_cid != TFE_VSOCK_HOST_CID)
		FAILF("REQUEST came from CID %llu, not 2", (unsigned long long)(*c)->peer_cid);
	return 0;
}

static bool conn_closed(void *ctx)
{
	const struct tfe_vsock_conn *c = ctx;

	return c->state == TFE_CONN_CLOSED || c->state == TFE_CONN_FREE;
}

/* Tear a pair down without judging it: host close, guest answers, free. */
static void pair_close(struct check *k, int hostfd, struct tfe_vsock_conn *c)
{
	if (hostfd >= 0)
		close(hostfd);
	if (c) {
		tfe_vsock_wait_until(&k->vs, conn_closed, c, budget(k, 1000));
		tfe_vsock_close(&k->vs, c, 0);
	}
}

/* ------------------------------------------------------------------ */
/* Front ends and daemons                                              */
/* ------------------------------------------------------------------ */

/* Observer: packets of the raw SEQPACKET connection. */
static void seq_on_pkt(void *ctx, const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	struct check *k = ctx;

	if (p->type != TFE_VSOCK_TYPE_SEQPACKET || !k->seq_gport || p->dst_port != k->seq_gport)
		return;
	switch (p->op) {
	case TFE_VSOCK_OP_RESPONSE:
		k->seq_response = true;
		k->seq_peer_port = p->src_port;
		k->seq_peer_buf_alloc = p->buf_alloc;
		break;
	case TFE_VSOCK_OP_REQUEST:
		k->seq_request = true;
		k->seq_peer_port = p->src_port;
		k->seq_peer_buf_alloc = p->buf_alloc;
		break;
	case TFE_VSOCK_OP_RST:
		k->seq_rst = true;
		break;
	case TFE_VSOCK_OP_RW:
		if (k->seq_n < 4) {
			uint32_t l = p->len < 4096 ? p->len : 4096;

			memcpy(k->seq_msgs[k->seq_n], payload, l);
			k->seq_len[k->seq_n] = p->len;
			k->seq_flags[k->seq_n] = p->flags;
		}
		k->seq_n++;
		break;
	default:
		break;
	}
}

static void guest_down(struct check *k)
{
	if (k->vs_up)
		tfe_vsock_fini(&k->vs);
	if (k->vm_up)
		tfe_vm_close(&k->vm);
	k->vs_up = k->vm_up = false;
}

static int setup_once(struct check *k, const char *sock, bool crosvm, enum tfe_need_reply nr)
{
	struct tfe_setup_opts o = {
		.want_features = (1ull << TFE_F_VERSION_1) | (1ull << TFE_F_EVENT_IDX) |
				 (1ull << TFE_F_INDIRECT_DESC) | (1ull << VSOCK_F_SEQPACKET),
		.need_reply = nr,
	};
	int rc = tfe_vm_open(&k->vm, sock, MEM_SIZE, true, budget(k, STEP_MS));

	if (rc < 0)
		return rc;
	k->vm_up = true;
	k->vm.fe.timeout_ms = budget(k, STEP_MS);
	return crosvm ? tfe_setup_crosvm(&k->vm, &o) : tfe_setup_qemu(&k->vm, &o);
}

/*
 * A front end and a guest driver on it. The daemon serves one front end at
 * a time and may not have noticed the previous one leaving yet, in which
 * case it closes the new connection: retry for a while.
 */
static int guest_up(struct check *k, const char *sock, bool crosvm, enum tfe_need_reply nr)
{
	int64_t end = tfe_now_ms() + budget(k, 5000);
	struct tfe_vsock_opts vo = { 0 };
	int rc;

	for (;;) {
		rc = setup_once(k, sock, crosvm, nr);
		if (rc == 0 || (rc != -ECONNRESET && rc != -EPIPE) || tfe_remaining_ms(end) == 0)
			break;
		guest_down(k);
		poll(NULL, 0, 100);
	}
	if (rc < 0)
		return rc;
	vo.tx_indirect = k->vm.vq[1].indirect;
	rc = tfe_vsock_init(&k->vs, &k->vm.mem, &k->vm.vq[0], &k->vm.vq[1],
			    k->vm.nvq > 2 ? &k->vm.vq[2] : NULL, k->cid, &vo);
	k->vs_up = rc == 0;
	k->vs.other_types_raw = true; /* SEQPACKET packets: seq_on_pkt() */
	k->vs.on_pkt = seq_on_pkt;
	k->vs.on_pkt_ctx = k;
	return rc;
}

static int start_daemon(struct check *k, struct tfe_daemon *d, const char *sock,
			const char *log, char *why, size_t n)
{
	char cid[24];
	char *argv[] = { (char *)k->daemon, (char *)"--socket", (char *)sock, (char *)"--guest-cid",
			 cid, (char *)"--uds-path", k->uds, (char *)"--forward-cid", (char *)"1",
			 (char *)"--forward-listen", (char *)FWD_LISTEN, (char *)"--log-level",
			 (char *)"debug", NULL };
	int rc;

	snprintf(cid, sizeof(cid), "%llu", (unsigned long long)k->cid);
	unlink(log);
	rc = tfe_daemon_start(d, argv, sock, log, budget(k, 5000));
	if (rc == -ECHILD)
		FAILF("%s exited (%s %d) before creating %s; see %s", k->daemon,
		      WIFEXITED(d->status) ? "status" : "signal",
		      WIFEXITED(d->status) ? WEXITSTATUS(d->status) : WTERMSIG(d->status), sock, log);
	if (rc < 0)
		FAILF("starting %s: %s", k->daemon, strerror(-rc));
	alarm_pids[d == &k->d1 ? 0 : 1] = d->pid;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

static int case_daemon_start(struct check *k, char *why, size_t n)
{
	int rc;

	if (start_daemon(k, &k->d1, k->sock1, k->log1, why, n) < 0)
		return -1;
	rc = guest_up(k, k->sock1, false, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("front end and guest driver: %s", strerror(-rc));
	return 0;
}

static int case_guest_connect(struct check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = pair_from_guest(k, &fd, &c, why, n);
	pair_close(k, fd, c);
	return rc;
}

static int case_host_connect(struct check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = pair_from_host(k, &fd, &c, why, n);
	pair_close(k, fd, c);
	return rc;
}

/* ---- bulk data ---- */

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * FNV_PRIME;
	return h;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

struct stream {
	uint8_t *data;      /* DATA_MAX bytes of pseudo-random data */
	size_t target;      /* bytes to move; shrinks to what was sent if slow */
	size_t sent, received;
	uint64_t rx_hash;
	uint64_t rng;
	int64_t t0;
};

static void stream_init(struct stream *st, uint8_t *data)
{
	uint64_t seed = (uint64_t)tfe_now_ms() | 1;

	st->data = data;
	st->rng = seed;
	for (size_t i = 0; i < DATA_MAX; i += 8) {
		uint64_t v = xorshift(&seed);

		memcpy(data + i, &v, 8);
	}
	st->target = DATA_MAX;
	st->sent = st->received = 0;
	st->rx_hash = FNV_OFFSET;
	st->t0 = tfe_now_ms();
}

/* Random write sizes, 1 byte to 64 KiB. */
static size_t next_chunk(struct stream *st)
{
	size_t want = 1 + (size_t)(xorshift(&st->rng) % 65536), left = st->target - st->sent;

	return want < left ? want : left;
}

/* Stop producing early when the link is slow, once the minimum is sent. */
static void stream_adjust(struct stream *st)
{
	if (st->sent >= DATA_MIN && tfe_now_ms() - st->t0 > DATA_SOFT_MS)
		st->target = st->sent;
}

static int stream_verdict(const struct stream *st, const char *name, char *why, size_t n)
{
	double secs = (double)(tfe_now_ms() - st->t0) / 1000.0;

	if (st->received != st->target)
		FAILF("%zu of %zu bytes arrived in %.1f s", st->received, st->target, secs);
	if (fnv1a(FNV_OFFSET, st->data, st->target) != st->rx_hash)
		FAILF("checksum mismatch over %zu bytes", st->target);
	printf("INFO: %s: %zu bytes in %.2f s (%.2f MB/s), FNV-1a matches\n", name, st->target,
	       secs, secs > 0 ? (double)st->target / secs / 1e6 : 0.0);
	return 0;
}

static int move_guest_to_host(struct check *k, struct stream *st, int fd, struct tfe_vsock_conn *c,
			      char *why, size_t n)
{
	int64_t end = tfe_now_ms() + budget(k, DATA_HARD_MS);
	uint8_t buf[65536];

	while (st->received < st->target) {
		if (st->sent < st->target) {
			ssize_t w = tfe_vsock_send(&k->vs, c, st->data + st->sent, next_chunk(st));

			if (w < 0 && w != -EAGAIN)
				FAILF("guest send after %zu bytes: %s", st->sent, strerror((int)-w));
			st->sent += w > 0 ? (size_t)w : 0;
			stream_adjust(st);
		}
		if (pump(k, fd, POLLIN, 1) < 0)
			FAILF("guest driver failed");
		for (ssize_t r; (r = read(fd, buf, sizeof(buf))) != 0;) {
			if (r < 0 && errno == EAGAIN)
				break;
			if (r < 0)
				FAILF("host read after %zu bytes: %s", st->received, strerror(errno));
			st->rx_hash = fnv1a(st->rx_hash, buf, (size_t)r);
			st->received += (size_t)r;
		}
		if (tfe_remaining_ms(end) == 0)
			break;
	}
	return 0;
}

static int move_host_to_guest(struct check *k, struct stream *st, int fd, struct tfe_vsock_conn *c,
			      char *why, size_t n)
{
	int64_t end = tfe_now_ms() + budget(k, DATA_HARD_MS);
	uint8_t buf[65536];

	while (st->received < st->target) {
		if (st->sent < st->target) {
			ssize_t w = write(fd, st->data + st->sent, next_chunk(st));

			if (w < 0 && errno != EAGAIN)
				FAILF("host write after %zu bytes: %s", st->sent, strerror(errno));
			st->sent += w > 0 ? (size_t)w : 0;
			stream_adjust(st);
		}
		if (pump(k, fd, POLLOUT, 1) < 0)
			FAILF("guest driver failed");
		for (ssize_t r; (r = tfe_vsock_recv(&k->vs, c, buf, sizeof(buf))) != -EAGAIN;) {
			if (r <= 0)
				FAILF("guest recv after %zu bytes: %s", st->received,
				      r == 0 ? "end of stream" : strerror((int)-r));
			st->rx_hash = fnv1a(st->rx_hash, buf, (size_t)r);
			st->received += (size_t)r;
		}
		if (tfe_remaining_ms(end) == 0)
			break;
	}
	return 0;
}

static int data_case(struct check *k, bool to_host, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	struct stream st;
	uint8_t *data;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	data = malloc(DATA_MAX);
	if (!data)
		FAILF("out of memory");
	stream_init(&st, data);
	rc = to_host ? pair_from_guest(k, &fd, &c, why, n) : pair_from_host(k, &fd, &c, why, n);
	if (rc == 0)
		rc = to_host ? move_guest_to_host(k, &st, fd, c, why, n)
			     : move_host_to_guest(k, &st, fd, c, why, n);
	if (rc == 0)
		rc = stream_verdict(&st, to_host ? "guest-to-host" : "host-to-guest", why, n);
	pair_close(k, fd, c);
	free(data);
	return rc;
}

static int case_data_g2h(struct check *k, char *why, size_t n)
{
	return data_case(k, true, why, n);
}

static int case_data_h2g(struct check *k, char *why, size_t n)
{
	return data_case(k, false, why, n);
}

/* ---- shutdown and reset ---- */

/* Wait for the host socket to read end-of-stream (0) without data first. */
static int host_expect_eof(struct check *k, int fd, char *why, size_t n)
{
	int64_t end = tfe_now_ms() + budget(k, STEP_MS);
	char b[16];

	for (;;) {
		ssize_t r = read(fd, b, sizeof(b));

		if (r == 0)
			return 0;
		if (r > 0)
			FAILF("host read data where end of stream was expected");
		if (errno != EAGAIN)
			FAILF("host read: %s", strerror(errno));
		if (tfe_remaining_ms(end) == 0)
			FAILF("host read did not return 0 after the guest's SHUTDOWN(send)");
		pump(k, fd, POLLIN, 50);
	}
}

static int half_close(struct check *k, int fd, struct tfe_vsock_conn *c, char *why, size_t n)
{
	char b[8] = { 0 };
	ssize_t r;
	int rc = tfe_vsock_shutdown(&k->vs, c, TFE_VSOCK_SHUTDOWN_SEND);

	if (rc < 0)
		FAILF("guest SHUTDOWN(send): %s", strerror(-rc));
	if (host_expect_eof(k, fd, why, n) < 0)
		return -1;
	/* half-close: the other direction still works */
	if (write(fd, "pong", 4) != 4)
		FAILF("host write after the guest's half-close: %s", strerror(errno));
	r = tfe_vsock_recv_wait(&k->vs, c, b, sizeof(b), budget(k, STEP_MS));
	if (r != 4 || memcmp(b, "pong", 4) != 0)
		FAILF("guest did not receive the host's data after its half-close (%zd)", r);
	return 0;
}

static int case_shutdown(struct check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = pair_from_guest(k, &fd, &c, why, n);
	if (rc == 0)
		rc = half_close(k, fd, c, why, n);
	if (rc == 0) {
		/* full close: the guest's other half, then the host's close */
		rc = tfe_vsock_shutdown(&k->vs, c, TFE_VSOCK_SHUTDOWN_RCV);
		close(fd);
		fd = -1;
		if (rc == 0)
			rc = tfe_vsock_wait_until(&k->vs, conn_closed, c, budget(k, STEP_MS));
		if (rc < 0)
			snprintf(why, n, "full close did not finish (no RST/SHUTDOWN from the host): %s",
				 strerror(-rc));
	}
	pair_close(k, fd, c);
	return rc < 0 ? -1 : 0;
}



/* The host half-closes: the guest sees SHUTDOWN(send) and can still send. */
static int case_host_half_close(struct check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	char b[8];
	int64_t end;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = pair_from_host(k, &fd, &c, why, n);
	if (rc < 0) {
		pair_close(k, fd, c);
		return rc;
	}
	if (shutdown(fd, SHUT_WR) < 0) {
		snprintf(why, n, "host shutdown(SHUT_WR): %s", strerror(errno));
		rc = -1;
	}
	end = tfe_now_ms() + budget(k, STEP_MS);
	while (rc == 0 && !(c->peer_shutdown & TFE_VSOCK_SHUTDOWN_SEND)) {
		if (tfe_remaining_ms(end) == 0) {
			snprintf(why, n, "the guest saw no SHUTDOWN(send) after the host's SHUT_WR");
			rc = -1;
		}
		pump(k, -1, 0, 20);
	}
	if (rc == 0) {
		int s1 = tfe_vsock_send_all(&k->vs, c, "ping", 4, budget(k, STEP_MS));
		int p1 = s1 < 0 ? 0 : pump(k, fd, POLLIN, STEP_MS);
		ssize_t r = p1 <= 0 ? -1 : read(fd, b, sizeof(b));

		if (s1 < 0 || p1 <= 0 || r != 4 || memcmp(b, "ping", 4) != 0) {
			snprintf(why, n, "the guest's data after the host's half-close did not "
				 "arrive (guest send %d, host poll 0x%x, read %zd: %s; guest conn "
				 "state %d, peer_shutdown %u, rst %d; bytes %.8s)", s1, p1, r,
				 r < 0 ? strerror(errno) : "-", (int)c->state, c->peer_shutdown,
				 (int)c->rst_received, r > 0 ? b : "");
			rc = -1;
		}
	}
	pair_close(k, fd, c);
	return rc;
}

/* No AF_VSOCK listener at (1, P): the guest's REQUEST gets an RST at once. */
static int case_refused(struct check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	uint32_t hport = fresh_port(k), gport = fresh_port(k);
	int64_t t0 = tfe_now_ms(), ms;
	int rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = tfe_vsock_connect(&k->vs, TFE_VSOCK_HOST_CID, hport, gport, budget(k, STEP_MS), &c);
	ms = tfe_now_ms() - t0;
	if (rc == 0) {
		pair_close(k, -1, c);
		FAILF("the guest's connect to 2:%u succeeded with no listener at 1:%u", hport,
		      hport);
	}
	if (rc != -ECONNRESET && rc != -ECONNREFUSED)
		FAILF("the guest's connect to 2:%u failed with %s after %lld ms, not an RST", hport,
		      strerror(-rc), (long long)ms);
	printf("INFO: refused: RST after %lld ms\n", (long long)ms);
	if (ms > 1500)
		FAILF("the RST came after %lld ms, not at once", (long long)ms);
	return 0;
}

/* A raw SEQPACKET packet from the guest's connection. */
static int seq_send(struct check *k, uint16_t op, uint32_t flags, const void *data, size_t len)
{
	struct tfe_vsock_pkt p = {
		.src_cid = k->cid, .dst_cid = TFE_VSOCK_HOST_CID, .src_port = k->seq_gport,
		.dst_port = k->seq_peer_port, .type = TFE_VSOCK_TYPE_SEQPACKET, .op = op,
		.flags = flags, .buf_alloc = SEQ_BUF_ALLOC, .fwd_cnt = 0,
	};

	return tfe_vsock_send_pkt(&k->vs, &p, data, len);
}

static bool seq_wait(struct check *k, const bool *flag, int ms)
{
	int64_t end = tfe_now_ms() + budget(k, ms);

	while (!*flag && !k->seq_rst && tfe_remaining_ms(end) > 0)
		pump(k, -1, 0, 10);
	return *flag;
}

/* Host reads one message: @want bytes, MSG_EOR when @eor. */
static int seq_host_expect(struct check *k, int fd, const char *want, size_t len, bool eor,
			   char *why, size_t n)
{
	char buf[8192];
	struct iovec v = { buf, sizeof(buf) };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	ssize_t r = -1;

	if (pump(k, fd, POLLIN, STEP_MS) > 0)
		r = recvmsg(fd, &m, MSG_DONTWAIT);
	if (r != (ssize_t)len || memcmp(buf, want, len) != 0)
		FAILF("host read %zd bytes (%s), expected the %zu-byte message", r,
		      r < 0 ? strerror(errno) : "other bytes", len);
	if (eor != !!(m.msg_flags & MSG_EOR))
		FAILF("host message of %zu bytes: MSG_EOR %s, expected %s", len,
		      (m.msg_flags & MSG_EOR) ? "set" : "clear", eor ? "set" : "clear");
	return 0;
}

/* Guest -> host: boundaries and EOR kept; host -> guest: EOM/EOR from MSG_EOR. */
static int seq_exchange(struct check *k, int fd, char *why, size_t n)
{
	static char big[3000];
	int64_t end;

	memset(big, 'q', sizeof(big));
	if (seq_send(k, TFE_VSOCK_OP_RW, SEQ_EOM | SEQ_EOR, "hello", 5) < 0 ||
	    seq_send(k, TFE_VSOCK_OP_RW, 0, big, 1000) < 0 ||
	    seq_send(k, TFE_VSOCK_OP_RW, SEQ_EOM, big + 1000, 2000) < 0)
		FAILF("guest send failed");
	if (seq_host_expect(k, fd, "hello", 5, true, why, n) < 0 ||
	    seq_host_expect(k, fd, big, sizeof(big), false, why, n) < 0)
		return -1;
	if (send(fd, "abc", 3, MSG_EOR) != 3 || send(fd, "defgh", 5, 0) != 5)
		FAILF("host send: %s", strerror(errno));
	end = tfe_now_ms() + budget(k, STEP_MS);
	while (k->seq_n < 2 && !k->seq_rst && tfe_remaining_ms(end) > 0)
		pump(k, -1, 0, 10);
	if (k->seq_n != 2)
		FAILF("the guest got %u RW packets, expected 2 messages%s", k->seq_n,
		      k->seq_rst ? " (RST)" : "");
	if (k->seq_len[0] != 3 || memcmp(k->seq_msgs[0], "abc", 3) != 0 ||
	    k->seq_flags[0] != (SEQ_EOM | SEQ_EOR))
		FAILF("first message: %u bytes, flags 0x%x (expected 3, EOM|EOR)", k->seq_len[0],
		      k->seq_flags[0]);
	if (k->seq_len[1] != 5 || memcmp(k->seq_msgs[1], "defgh", 5) != 0 ||
	    k->seq_flags[1] != SEQ_EOM)
		FAILF("second message: %u bytes, flags 0x%x (expected 5, EOM)", k->seq_len[1],
		      k->seq_flags[1]);
	return 0;
}

static void seq_reset(struct check *k)
{
	if (k->seq_gport && k->seq_peer_port && !k->seq_rst)
		seq_send(k, TFE_VSOCK_OP_RST, 0, NULL, 0);
	pump(k, -1, 0, 50);
	k->seq_gport = 0;
	k->seq_response = k->seq_request = k->seq_rst = false;
	k->seq_peer_port = 0;
	k->seq_n = 0;
}

/* SEQPACKET guest -> (2, P) -> AF_VSOCK SOCK_SEQPACKET listener at (ANY, P). */
static int case_seq_from_guest(struct check *k, char *why, size_t n)
{
	uint32_t hport = fresh_port(k);
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = hport };
	int lfd = socket(AF_VSOCK, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), fd = -1;
	int rc = -1;

	if (!k->vs_up)
		FAILF("no guest");
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		snprintf(why, n, "host SOCK_SEQPACKET listen on %u: %s", hport, strerror(errno));
		goto out;
	}
	k->seq_gport = fresh_port(k);
	k->seq_peer_port = hport;
	if (seq_send(k, TFE_VSOCK_OP_REQUEST, 0, NULL, 0) < 0 ||
	    !seq_wait(k, &k->seq_response, STEP_MS)) {
		snprintf(why, n, "no RESPONSE to the guest's SEQPACKET REQUEST%s",
			 k->seq_rst ? " (RST)" : "");
		goto out;
	}
	if (pump(k, lfd, POLLIN, STEP_MS) > 0)
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		snprintf(why, n, "host accept: %s", strerror(errno));
		goto out;
	}
	rc = seq_exchange(k, fd, why, n);
out:
	seq_reset(k);
	if (fd >= 0)
		close(fd);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

/* AF_VSOCK SOCK_SEQPACKET connect to (1, 7001) -> the guest's port 7001. */
static int case_seq_from_host(struct check *k, char *why, size_t n)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_LOCAL,
				  .svm_port = FWD_SEQ_PORT };
	int fd = socket(AF_VSOCK, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc = -1;

	if (!k->vs_up)
		FAILF("no guest");
	k->seq_gport = FWD_SEQ_PORT;
	if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		       errno != EINPROGRESS)) {
		snprintf(why, n, "host SOCK_SEQPACKET connect to 1:%u: %s", FWD_SEQ_PORT,
			 strerror(errno));
		goto out;
	}
	if (!seq_wait(k, &k->seq_request, STEP_MS)) {
		snprintf(why, n, "the guest saw no SEQPACKET REQUEST for port %u", FWD_SEQ_PORT);
		goto out;
	}
	if (seq_send(k, TFE_VSOCK_OP_RESPONSE, 0, NULL, 0) < 0) {
		snprintf(why, n, "guest RESPONSE failed");
		goto out;
	}
	if (pump(k, fd, POLLOUT, STEP_MS) <= 0 || sock_error(fd)) {
		snprintf(why, n, "host connect did not complete");
		goto out;
	}
	rc = seq_exchange(k, fd, why, n);
out:
	seq_reset(k);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int stop_one(struct tfe_daemon *d, const char *name, char *why, size_t n)
{
	int rc;

	if (d->pid == 0 && d->status == -1)
		return 0;    /* never started */
	rc = tfe_daemon_stop(d, 3000);
	if (rc == -ETIMEDOUT)
		FAILF("%s did not exit within 3 s of SIGTERM (killed)", name);
	if (rc == -EPROTO)
		FAILF("%s exited with %s %d", name, WIFEXITED(d->status) ? "status" : "signal",
		      WIFEXITED(d->status) ? WEXITSTATUS(d->status) : WTERMSIG(d->status));
	if (rc == -EEXIST)
		FAILF("%s left its socket file %s behind", name, d->sock_path);
	return 0;
}

static int case_daemon_exit(struct check *k, char *why, size_t n)
{
	int rc;

	guest_down(k);
	rc = stop_one(&k->d1, "the daemon", why, n);
	alarm_pids[0] = 0;
	return rc;
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */


/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

/* Only inside run-forward.sh's guest: its kernel command line says so. */
static int in_rig_guest(char *why, size_t n)
{
	char cmd[4096] = "";
	FILE *f = fopen("/proc/cmdline", "r");
	size_t len = f ? fread(cmd, 1, sizeof(cmd) - 1, f) : 0;

	if (f)
		fclose(f);
	cmd[len] = '\0';
	if (!strstr(cmd, "rig.run=") || !strstr(cmd, "vuv.forward=1")) {
		snprintf(why, n, "this is not the QEMU/TCG guest of tests/peers/run-forward.sh "
			 "(/proc/cmdline lacks rig.run= and vuv.forward=1): it opens AF_VSOCK "
			 "sockets, which here would reach this machine's real vsock transport");
		return -1;
	}
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: forward_check --daemon PATH [--workdir DIR]\n"
		     "  Runs only inside run-forward.sh's guest (vsock_loopback loaded); starts\n"
		     "  the daemon at PATH with --forward-cid 1 --forward-listen " FWD_LISTEN "\n"
		     "  (sockets and log in DIR, default /tmp).\n");
}

static int parse_args(struct check *k, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'd')
			k->daemon = optarg;
		else if (o == 'w')
			k->workdir = optarg;
		else
			return o == 'h' ? 1 : -1;
	}
	return (k->daemon && optind == argc) ? 0 : -1;
}

static int init_paths(struct check *k)
{
	uint32_t r = 0;

	if (snprintf(k->sock1, sizeof(k->sock1), "%s/vu.sock", k->workdir) >= (int)sizeof(k->sock1) ||
	    snprintf(k->uds, sizeof(k->uds), "%s/hy.sock", k->workdir) >= (int)sizeof(k->uds))
		return -1;
	snprintf(k->log1, sizeof(k->log1), "%s/daemon.log", k->workdir);
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	k->next_port = 20000 + r % 1000000000u;
	k->d1.status = k->d2.status = -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct check k = { .workdir = "/tmp", .cid = 3 };
	static const struct { const char *name; case_fn fn; } cases[] = {
		{ "daemon-start", case_daemon_start },
		{ "guest-connect", case_guest_connect },
		{ "host-connect", case_host_connect },
		{ "refused-rst", case_refused },
		{ "data-guest-to-host", case_data_g2h },
		{ "data-host-to-guest", case_data_h2g },
		{ "guest-half-close", case_shutdown },
		{ "host-half-close", case_host_half_close },
		{ "seqpacket-guest-to-host", case_seq_from_guest },
		{ "seqpacket-host-to-guest", case_seq_from_host },
		{ "daemon-exit", case_daemon_exit },
	};
	char why[512];
	int rc = parse_args(&k, argc, argv);

	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (in_rig_guest(why, sizeof(why)) < 0) {
		fprintf(stderr, "forward_check: refusing to run: %s\n", why);
		return 2;
	}
	if (init_paths(&k) < 0) {
		fprintf(stderr, "forward_check: --workdir path too long\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(ALARM_SEC);
	k.deadline = tfe_now_ms() + TOTAL_BUDGET_MS;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (i + 1 == sizeof(cases) / sizeof(cases[0]))
			k.deadline = tfe_now_ms() + 5000;
		run_case(&k, cases[i].name, cases[i].fn);
	}
	printf("forward: %u passed, %u failed\n", k.passed, k.failed);
	return k.failed ? 1 : 0;
}
