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
 * The daemon forwards only (no --uds-path, as vhost-device-vsock 0.3
 * allows); nested-forward runs forwarding beside --uds-path.
 * Shares its pump/pair/stream helpers with kernel_engine_check.c (peer_check.c).
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

#include "peer_check.h"
#include "tfe.h"

#define TOTAL_BUDGET_MS 100000
#define ALARM_SEC 110
#define DATA_MIN (4u << 20) /* the brief: at least 4 MiB each way */
#define DATA_SOFT_MS 30000
#define DATA_HARD_MS 40000
/* the daemon's --forward-listen ports: 7000 STREAM, 7001 SEQPACKET */
#define FWD_PORT 7000u
#define FWD_LISTEN "7000+7001/seqpacket"
#define FWD_SEQ_PORT 7001u
#define VSOCK_F_SEQPACKET 1
#define SEQ_EOM 1u
#define SEQ_EOR 2u
#define SEQ_BUF_ALLOC (64u * 1024u)

/* the one raw SEQPACKET connection of the seqpacket cases */
static struct {
	uint32_t gport;      /* our guest port; 0: none */
	bool response, rst, request;
	uint32_t peer_port, peer_buf_alloc;
	uint8_t msgs[4][4096];
	uint32_t len[4], flags[4];
	unsigned int n;      /* messages (RW packets) received */
} seq;

/* ------------------------------------------------------------------ */
/* Front ends and daemons                                              */
/* ------------------------------------------------------------------ */

/* Observer: packets of the raw SEQPACKET connection. */
static void seq_on_pkt(void *ctx, const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	(void)ctx;
	if (p->type != TFE_VSOCK_TYPE_SEQPACKET || !seq.gport || p->dst_port != seq.gport)
		return;
	switch (p->op) {
	case TFE_VSOCK_OP_RESPONSE:
		seq.response = true;
		seq.peer_port = p->src_port;
		seq.peer_buf_alloc = p->buf_alloc;
		break;
	case TFE_VSOCK_OP_REQUEST:
		seq.request = true;
		seq.peer_port = p->src_port;
		seq.peer_buf_alloc = p->buf_alloc;
		break;
	case TFE_VSOCK_OP_RST:
		seq.rst = true;
		break;
	case TFE_VSOCK_OP_RW:
		if (seq.n < 4) {
			uint32_t l = p->len < 4096 ? p->len : 4096;

			memcpy(seq.msgs[seq.n], payload, l);
			seq.len[seq.n] = p->len;
			seq.flags[seq.n] = p->flags;
		}
		seq.n++;
		break;
	default:
		break;
	}
}

/* The shared guest_up(), with SEQPACKET packets handed to seq_on_pkt(). */
static int seq_guest_up(struct peer_check *k, const char *sock, bool crosvm,
			enum tfe_need_reply nr)
{
	int rc = guest_up(k, sock, crosvm, nr);

	if (rc == 0) {
		k->vs.other_types_raw = true;
		k->vs.on_pkt = seq_on_pkt;
	}
	return rc;
}

static int start_daemon(struct peer_check *k, struct tfe_daemon *d, const char *sock,
			const char *log, char *why, size_t n)
{
	char cid[24];
	char *argv[] = { (char *)k->daemon, (char *)"--socket", (char *)sock, (char *)"--guest-cid",
			 cid, (char *)"--forward-cid", (char *)"1",
			 (char *)"--forward-listen", (char *)FWD_LISTEN, (char *)"--log-level",
			 (char *)"debug", NULL };

	snprintf(cid, sizeof(cid), "%llu", (unsigned long long)k->cid);
	return peer_daemon_start(k, d, argv, sock, log, why, n);
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

static int case_daemon_start(struct peer_check *k, char *why, size_t n)
{
	int rc;

	if (start_daemon(k, &k->d1, k->sock1, k->log1, why, n) < 0)
		return -1;
	rc = seq_guest_up(k, k->sock1, false, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("front end and guest driver: %s", strerror(-rc));
	return 0;
}

/* ---- shutdown and reset ---- */

/* The host half-closes: the guest sees SHUTDOWN(send) and can still send. */
static int case_host_half_close(struct peer_check *k, char *why, size_t n)
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
static int case_refused(struct peer_check *k, char *why, size_t n)
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
static int seq_send(struct peer_check *k, uint16_t op, uint32_t flags, const void *data, size_t len)
{
	struct tfe_vsock_pkt p = {
		.src_cid = k->cid, .dst_cid = TFE_VSOCK_HOST_CID, .src_port = seq.gport,
		.dst_port = seq.peer_port, .type = TFE_VSOCK_TYPE_SEQPACKET, .op = op,
		.flags = flags, .buf_alloc = SEQ_BUF_ALLOC, .fwd_cnt = 0,
	};

	return tfe_vsock_send_pkt(&k->vs, &p, data, len);
}

static bool seq_wait(struct peer_check *k, const bool *flag, int ms)
{
	int64_t end = tfe_now_ms() + budget(k, ms);

	while (!*flag && !seq.rst && tfe_remaining_ms(end) > 0)
		pump(k, -1, 0, 10);
	return *flag;
}

/* Host reads one message: @want bytes, MSG_EOR when @eor. */
static int seq_host_expect(struct peer_check *k, int fd, const char *want, size_t len, bool eor,
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
static int seq_exchange(struct peer_check *k, int fd, char *why, size_t n)
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
	while (seq.n < 2 && !seq.rst && tfe_remaining_ms(end) > 0)
		pump(k, -1, 0, 10);
	if (seq.n != 2)
		FAILF("the guest got %u RW packets, expected 2 messages%s", seq.n,
		      seq.rst ? " (RST)" : "");
	if (seq.len[0] != 3 || memcmp(seq.msgs[0], "abc", 3) != 0 ||
	    seq.flags[0] != (SEQ_EOM | SEQ_EOR))
		FAILF("first message: %u bytes, flags 0x%x (expected 3, EOM|EOR)", seq.len[0],
		      seq.flags[0]);
	if (seq.len[1] != 5 || memcmp(seq.msgs[1], "defgh", 5) != 0 ||
	    seq.flags[1] != SEQ_EOM)
		FAILF("second message: %u bytes, flags 0x%x (expected 5, EOM)", seq.len[1],
		      seq.flags[1]);
	return 0;
}

static void seq_reset(struct peer_check *k)
{
	if (seq.gport && seq.peer_port && !seq.rst)
		seq_send(k, TFE_VSOCK_OP_RST, 0, NULL, 0);
	pump(k, -1, 0, 50);
	seq.gport = 0;
	seq.response = seq.request = seq.rst = false;
	seq.peer_port = 0;
	seq.n = 0;
}

/* SEQPACKET guest -> (2, P) -> AF_VSOCK SOCK_SEQPACKET listener at (ANY, P). */
static int case_seq_from_guest(struct peer_check *k, char *why, size_t n)
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
	seq.gport = fresh_port(k);
	seq.peer_port = hport;
	if (seq_send(k, TFE_VSOCK_OP_REQUEST, 0, NULL, 0) < 0 ||
	    !seq_wait(k, &seq.response, STEP_MS)) {
		snprintf(why, n, "no RESPONSE to the guest's SEQPACKET REQUEST%s",
			 seq.rst ? " (RST)" : "");
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
static int case_seq_from_host(struct peer_check *k, char *why, size_t n)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_LOCAL,
				  .svm_port = FWD_SEQ_PORT };
	int fd = socket(AF_VSOCK, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc = -1;

	if (!k->vs_up)
		FAILF("no guest");
	seq.gport = FWD_SEQ_PORT;
	if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		       errno != EINPROGRESS)) {
		snprintf(why, n, "host SOCK_SEQPACKET connect to 1:%u: %s", FWD_SEQ_PORT,
			 strerror(errno));
		goto out;
	}
	if (!seq_wait(k, &seq.request, STEP_MS)) {
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

static int case_daemon_exit(struct peer_check *k, char *why, size_t n)
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

static int parse_args(struct peer_check *k, int argc, char **argv)
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

static int init_paths(struct peer_check *k)
{
	uint32_t r = 0;

	if (snprintf(k->sock1, sizeof(k->sock1), "%s/vu.sock", k->workdir) >= (int)sizeof(k->sock1))
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
	static struct peer_check k = {
		.workdir = "/tmp", .cid = 3, .via_loopback = true, .guest_port = FWD_PORT,
		.data_min = DATA_MIN, .data_soft_ms = DATA_SOFT_MS, .data_hard_ms = DATA_HARD_MS,
		.more_features = 1ull << VSOCK_F_SEQPACKET,
	};
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
	peer_check_on_alarm("forward");
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
