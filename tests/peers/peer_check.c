// SPDX-License-Identifier: MIT
/*
 * The guest-side check library of the real-peer rigs (peer_check.h).
 * Connections use fresh ports because the kernel keeps closed tuples for
 * up to 8 s (REAL-PEERS §7.8); a pair that times out prints both rings'
 * state as INFO lines (pair_diagnose) to tell a lost kick from a stuck
 * device.
 */
#include "peer_check.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

volatile pid_t alarm_pids[2];
static volatile unsigned int alarm_passed, alarm_failed;
static char alarm_label[40] = "check";

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

struct stream {
	uint8_t *data;      /* DATA_MAX bytes of pseudo-random data */
	size_t target;      /* bytes to move; shrinks to what was sent if slow */
	size_t sent, received;
	uint64_t rx_hash;
	uint64_t rng;
	int64_t t0;
	size_t min;         /* never shrink below this */
	int soft_ms;        /* after this long, shrink to what was sent */
};

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
	char line[80];
	size_t len = strlen(alarm_label);

	(void)sig;
	memcpy(line, alarm_label, len);
	memcpy(line + len, ": ", 2);
	len += 2;
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

void peer_check_on_alarm(const char *label)
{
	/* the line must fit on_alarm's buffer with two numbers */
	snprintf(alarm_label, sizeof(alarm_label), "%s", label);
	signal(SIGALRM, on_alarm);
}

int budget(const struct peer_check *k, int want)
{
	int left = tfe_remaining_ms(k->deadline);

	return left < want ? left : want;
}

void run_case(struct peer_check *k, const char *name, case_fn fn)
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

uint32_t fresh_port(struct peer_check *k)
{
	return k->next_port++;
}

static int vsock_socket(void)
{
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	return fd < 0 ? -errno : fd;
}

int host_listen(uint32_t port)
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
int host_connect(uint64_t cid, uint32_t port, int timeout_ms)
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
int pump(struct peer_check *k, int fd, short events, int timeout_ms)
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

int sock_error(int fd)
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

void pair_diagnose(struct peer_check *k, int64_t t_start)
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

/* Guest connects to a host listener; accept() must name the guest. */
int pair_from_guest(struct peer_check *k, int *hostfd, struct tfe_vsock_conn **c, char *why,
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
	/* a forwarding daemon connects from this machine: loopback CID 1, its own port */
	if (k->via_loopback && peer.svm_cid != VMADDR_CID_LOCAL)
		FAILF("accept() saw peer %u:%u, expected the daemon on CID 1", peer.svm_cid,
		      peer.svm_port);
	if (!k->via_loopback && (peer.svm_cid != k->cid || peer.svm_port != gport))
		FAILF("accept() saw peer %u:%u, expected %llu:%u", peer.svm_cid, peer.svm_port,
		      (unsigned long long)k->cid, gport);
	return 0;
}

/* Host connects to a guest listener; connect() must complete. */
int pair_from_host(struct peer_check *k, int *hostfd, struct tfe_vsock_conn **c, char *why,
		   size_t n)
{
	uint32_t gport = k->guest_port ? k->guest_port : fresh_port(k);
	/* through a forwarding daemon: its --forward-listen socket on this machine */
	uint64_t cid = k->via_loopback ? VMADDR_CID_LOCAL : k->cid;
	int64_t t0 = tfe_now_ms();
	int fd, rc, err;

	tfe_vsock_listen(&k->vs, gport);
	fd = host_connect(cid, gport, 2 * STEP_MS);
	if (fd < 0) {
		tfe_vsock_unlisten(&k->vs, gport);
		FAILF("host connect to %llu:%u: %s", (unsigned long long)cid, gport, strerror(-fd));
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
		FAILF("host connect() to %llu:%u: %s", (unsigned long long)cid, gport,
		      strerror(err));
	}
	if ((*c)->peer_cid != TFE_VSOCK_HOST_CID)
		FAILF("REQUEST came from CID %llu, not 2", (unsigned long long)(*c)->peer_cid);
	return 0;
}

bool conn_closed(void *ctx)
{
	const struct tfe_vsock_conn *c = ctx;

	return c->state == TFE_CONN_CLOSED || c->state == TFE_CONN_FREE;
}

/* Tear a pair down without judging it: host close, guest answers, free. */
void pair_close(struct peer_check *k, int hostfd, struct tfe_vsock_conn *c)
{
	if (hostfd >= 0)
		close(hostfd);
	if (c) {
		tfe_vsock_wait_until(&k->vs, conn_closed, c, budget(k, 1000));
		tfe_vsock_close(&k->vs, c, 0);
	}
}

void guest_down(struct peer_check *k)
{
	if (k->vs_up)
		tfe_vsock_fini(&k->vs);
	if (k->vm_up)
		tfe_vm_close(&k->vm);
	k->vs_up = k->vm_up = false;
}

/* A front end on @sock (QEMU's or crosvm's order) and its guest RAM. */
int setup_once(struct peer_check *k, const char *sock, bool crosvm, enum tfe_need_reply nr)
{
	struct tfe_setup_opts o = {
		.want_features = (1ull << TFE_F_VERSION_1) | (1ull << TFE_F_EVENT_IDX) |
				 (1ull << TFE_F_INDIRECT_DESC) | k->more_features,
		.need_reply = nr,
		.more_protocol = k->more_protocol,
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
int guest_up(struct peer_check *k, const char *sock, bool crosvm, enum tfe_need_reply nr)
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
	return rc;
}

int case_guest_connect(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = pair_from_guest(k, &fd, &c, why, n);
	pair_close(k, fd, c);
	return rc;
}

int case_host_connect(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = pair_from_host(k, &fd, &c, why, n);
	pair_close(k, fd, c);
	return rc;
}

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

static void stream_init(struct stream *st, const struct peer_check *k, uint8_t *data)
{
	uint64_t seed = (uint64_t)tfe_now_ms() | 1;

	st->min = k->data_min;
	st->soft_ms = k->data_soft_ms;

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
	if (st->sent >= st->min && tfe_now_ms() - st->t0 > st->soft_ms)
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

static int move_guest_to_host(struct peer_check *k, struct stream *st, int fd,
			      struct tfe_vsock_conn *c, char *why, size_t n)
{
	int64_t end = tfe_now_ms() + budget(k, k->data_hard_ms);
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

static int move_host_to_guest(struct peer_check *k, struct stream *st, int fd,
			      struct tfe_vsock_conn *c, char *why, size_t n)
{
	int64_t end = tfe_now_ms() + budget(k, k->data_hard_ms);
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

static int data_case(struct peer_check *k, bool to_host, char *why, size_t n)
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
	stream_init(&st, k, data);
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

int case_data_g2h(struct peer_check *k, char *why, size_t n)
{
	return data_case(k, true, why, n);
}

int case_data_h2g(struct peer_check *k, char *why, size_t n)
{
	return data_case(k, false, why, n);
}

/* Wait for the host socket to read end-of-stream (0) without data first. */
int host_expect_eof(struct peer_check *k, int fd, char *why, size_t n)
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

static int half_close(struct peer_check *k, int fd, struct tfe_vsock_conn *c, char *why, size_t n)
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

int case_shutdown(struct peer_check *k, char *why, size_t n)
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

/*
 * Start the daemon of @argv on @sock (its log in @log) and register it
 * with the alarm handler, slot 0 for k->d1, 1 otherwise.
 */
int peer_daemon_start(struct peer_check *k, struct tfe_daemon *d, char *const argv[],
		      const char *sock, const char *log, char *why, size_t n)
{
	int rc;

	unlink(log);
	rc = tfe_daemon_start(d, argv, sock, log, budget(k, 5000));
	if (rc == -ECHILD)
		FAILF("%s exited (%s %d) before creating %s; see %s", argv[0],
		      WIFEXITED(d->status) ? "status" : "signal",
		      WIFEXITED(d->status) ? WEXITSTATUS(d->status) : WTERMSIG(d->status), sock, log);
	if (rc < 0)
		FAILF("starting %s: %s", argv[0], strerror(-rc));
	alarm_pids[d == &k->d1 ? 0 : 1] = d->pid;
	return 0;
}

int stop_one(struct tfe_daemon *d, const char *name, char *why, size_t n)
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
