// SPDX-License-Identifier: MIT
/*
 * guest_vsock_check: the guest end of the userspace-engine real-peer test.
 * Runs as /init's command in a QEMU guest whose virtio-vsock device is our
 * daemon (vhost-user-vsock --uds-path UDS), statically linked because the
 * initramfs holds nothing but busybox. It drives the test: checks the
 * device and the local CID, opens a control connection to the host helper
 * (host_peer, peer_io.h) and asks it to accept or dial each connection,
 * runs its own half of every exchange, and compares both halves.
 *
 *   guest_vsock_check --cid N [--ctrl-port P] [--bulk BYTES] [--budget SECONDS]
 *
 * Output: "PASS: <case>" / "FAIL: <case>: <reason>", "INFO: ..." lines in
 * plain words, and last "user-engine: N passed, M failed". Exit status 0
 * iff nothing failed. Cases that need the host helper fail (with the
 * reason) when the control connection could not be made.
 *
 * Limits: every wait has its own deadline; alarm(--budget) ends the
 * program (and so the verdict: no summary line) if they all fail to fire.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "peer_io.h"
#include "tfe.h"

#define HOST_PORT_SMALL 5001u
#define HOST_PORT_BULK 5002u
#define HOST_PORT_SEQ 5003u
#define HOST_PORT_HALF 5004u
#define HOST_PORT_ABSENT 5999u /* the host helper never listens here */
#define GUEST_PORT_SMALL 6001u
#define GUEST_PORT_BULK 6002u
#define GUEST_PORT_SEQ 6003u
#define GUEST_PORT_HALF 6004u
#define GUEST_PORT_ABSENT 6999
#define STR_(x) #x
#define STR(x) STR_(x)
#define SMALL_LEN 65536u
#define HALF_LEN (256u * 1024) /* several credit windows one way after the other */
#define ABSENT_LIMIT_MS 1000
#define VIRTIO_ID_VSOCK "0x0013"
#define FEATURES_MAX 128

struct guest {
	uint64_t cid, bulk;
	uint32_t ctrl_port;
	unsigned int budget_s, passed, failed;
	int ctrl;
	char features[FEATURES_MAX + 1]; /* sysfs bit string, bit 0 first */
};

/* One connection case: who connects, which socket type, how much. */
struct spec {
	const char *name, *verb, *kind;
	uint32_t port;
	uint64_t len;
	int ms;
};

static void result(struct guest *g, const char *name, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void result(struct guest *g, const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		g->passed++;
		printf("PASS: %s\n", name);
	} else {
		g->failed++;
		printf("FAIL: %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
	fflush(stdout);
}

static void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void info(const char *fmt, ...)
{
	va_list ap;

	fputs("INFO: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Early in boot the entropy pool may not be ready; never wait for it. */
static uint64_t fresh_seed(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != sizeof(s))
		s = (uint64_t)tfe_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return s;
}

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* Device, CID, features                                               */
/* ------------------------------------------------------------------ */

/* Find the virtio-vsock device in sysfs. Return: 0 (@drv, g->features set)
 * or -ENOENT. */
static int find_vsock_device(struct guest *g, char *name, size_t nsize, char *drv, size_t dsize)
{
	DIR *d = opendir("/sys/bus/virtio/devices");
	struct dirent *e;
	char path[PATH_MAX], link[PATH_MAX], id[32];
	int rc = -ENOENT;

	if (!d)
		return -errno;
	while (rc < 0 && (e = readdir(d)) != NULL) {
		ssize_t n;

		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/device", e->d_name);
		if (e->d_name[0] == '.' || read_file(path, id, sizeof(id)) < 0 ||
		    strcmp(id, VIRTIO_ID_VSOCK) != 0)
			continue;
		snprintf(name, nsize, "%.32s", e->d_name);
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/features", e->d_name);
		if (read_file(path, g->features, sizeof(g->features)) < 0)
			g->features[0] = '\0';
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/driver", e->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		snprintf(drv, dsize, "%.48s", strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
		rc = 0;
	}
	closedir(d);
	return rc;
}

static bool has_feature(const struct guest *g, unsigned int bit)
{
	return bit < strlen(g->features) && g->features[bit] == '1';
}

static void print_features(const struct guest *g, const char *dev)
{
	static const struct { unsigned int bit; const char *name; } names[] = {
		{ 0, "STREAM" }, { 1, "SEQPACKET" }, { 24, "NOTIFY_ON_EMPTY" },
		{ 27, "ANY_LAYOUT" }, { 28, "INDIRECT_DESC" }, { 29, "EVENT_IDX" },
		{ 30, "bit30" }, { 32, "VERSION_1" }, { 33, "ACCESS_PLATFORM" },
		{ 34, "RING_PACKED" }, { 35, "IN_ORDER" },
	};
	char list[256] = "";
	uint64_t mask = 0;
	size_t len = 0;

	for (unsigned int i = 0; i < 64; i++)
		mask |= has_feature(g, i) ? 1ull << i : 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (has_feature(g, names[i].bit) && len < sizeof(list))
			len += (size_t)snprintf(list + len, sizeof(list) - len, " %s", names[i].name);
	info("guest negotiated features 0x%09" PRIx64 " on %s (sysfs bits %s):%s", mask, dev,
	     g->features, len ? list : " none");
}

static void case_device(struct guest *g)
{
	char dev[64], drv[64];

	if (find_vsock_device(g, dev, sizeof(dev), drv, sizeof(drv)) < 0) {
		result(g, "vsock-device", false, "no virtio device with id %s in /sys/bus/virtio/devices "
		       "(is -device vhost-user-vsock-pci on QEMU's command line, and did the back end "
		       "answer QEMU?)", VIRTIO_ID_VSOCK);
		return;
	}
	print_features(g, dev);
	result(g, "vsock-device", strcmp(drv, "vmw_vsock_virtio_transport") == 0,
	       "%s is bound to '%s', not vmw_vsock_virtio_transport", dev, drv[0] ? drv : "no driver");
}

static void case_local_cid(struct guest *g)
{
	unsigned int cid = 0;
	int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		result(g, "local-cid", false, "open /dev/vsock: %s", peer_errname(errno));
		return;
	}
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid) < 0) {
		result(g, "local-cid", false, "IOCTL_VM_SOCKETS_GET_LOCAL_CID: %s", peer_errname(errno));
		close(fd);
		return;
	}
	close(fd);
	info("guest's local CID is %u (the daemon's --guest-cid is %" PRIu64 ")", cid, g->cid);
	result(g, "local-cid", cid == g->cid, "IOCTL_VM_SOCKETS_GET_LOCAL_CID gives %u, expected %"
	       PRIu64 " (the device's config space)", cid, g->cid);
}

/* ------------------------------------------------------------------ */
/* AF_VSOCK sockets                                                    */
/* ------------------------------------------------------------------ */

/* To the host (CID 2), or listening on any CID. Return: socket or -errno. */
static int vsock_socket(int type, uint32_t port, bool listening)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_port = port,
				  .svm_cid = listening ? VMADDR_CID_ANY : VMADDR_CID_HOST };

	return peer_socket(&sa, sizeof(sa), type, listening);
}

/* Why a connect to the host failed, in words a reader can act on. */
static const char *connect_hint(int err)
{
	switch (err) {
	case ECONNRESET:
		return " (the device answered RST: no host listener at UDS_<port>?)";
	case ETIMEDOUT:
		return " (no answer from the device: is the daemon's userspace engine serving "
		       "the rings?)";
	case ENODEV:
	case ENETUNREACH:
		return " (no vsock transport: the virtio-vsock device is missing)";
	case ESOCKTNOSUPPORT:
		return " (the transport refuses this socket type: SEQPACKET not negotiated?)";
	default:
		return "";
	}
}

/* ------------------------------------------------------------------ */
/* Control connection                                                  */
/* ------------------------------------------------------------------ */

/* After a failed or late exchange the two ends no longer agree on which
 * line answers which command: drop the control connection, so that later
 * cases say so instead of reading a stale answer. */
static void ctrl_drop(struct guest *g)
{
	if (g->ctrl >= 0)
		close(g->ctrl);
	g->ctrl = -1;
}

static int ctrl_send(struct guest *g, const char *line, int64_t deadline)
{
	int rc = g->ctrl < 0 ? -ENOTCONN : peer_send_line(g->ctrl, deadline, "%s", line);

	if (rc < 0)
		ctrl_drop(g);
	return rc;
}

static int ctrl_recv(struct guest *g, char *line, size_t size, int64_t deadline)
{
	int rc = g->ctrl < 0 ? -ENOTCONN : peer_recv_line(g->ctrl, line, size, deadline);

	if (rc < 0) {
		snprintf(line, size, "no answer from the host helper: %s",
			 rc == -EPIPE ? "control connection closed" : peer_errname(-rc));
		ctrl_drop(g);
	}
	return rc < 0 ? rc : 0;
}

static void case_control(struct guest *g)
{
	int fd = vsock_socket(SOCK_STREAM, g->ctrl_port, false);

	if (fd < 0) {
		result(g, "control-connection", false, "connect to host port %u: %s%s", g->ctrl_port,
		       peer_errname(-fd), connect_hint(-fd));
		return;
	}
	g->ctrl = fd;
	info("guest connected to host port %u: the host helper's control connection",
	     g->ctrl_port);
	result(g, "control-connection", true, "-");
}

/* ------------------------------------------------------------------ */
/* Connection cases                                                    */
/* ------------------------------------------------------------------ */

/* The guest's half of an exchange; closes @fd (the host expects EOF). */
static int guest_half(const struct spec *s, int fd, uint64_t seed, int64_t deadline,
		      struct peer_result *r, char *why, size_t n)
{
	uint64_t hseed = peer_host_seed(seed);
	int64_t start = tfe_now_ms();
	int rc;

	*r = (struct peer_result){ 0 };
	if (strcmp(s->kind, "seqpacket") != 0) {
		struct peer_stream st = { .tx_seed = seed, .rx_seed = hseed, .len = s->len };

		/* halfclose: the end that connected sends and shuts down first. */
		if (strcmp(s->kind, "halfclose") == 0)
			st.order = strcmp(s->verb, "ACCEPT") == 0 ? PEER_TX_FIRST : PEER_RX_FIRST;
		rc = peer_stream_exchange(fd, &st, deadline, r, why, n);
	} else {
		rc = peer_seq_send(fd, seed, false, deadline, r, why, n);
		if (rc == 0)
			rc = peer_seq_recv(fd, hseed, true, deadline, r, why, n);
		r->ms = tfe_now_ms() - start;
	}
	close(fd);
	return rc;
}

/* Compare the host's result line with our half. Return: true when they
 * agree (@why explains otherwise). */
static bool halves_agree(const struct peer_result *me, const char *line, char *text,
			 size_t tsize, char *why, size_t n)
{
	struct peer_result h;
	int off = -1;

	if (strncmp(line, "FAIL ", 5) == 0) {
		snprintf(why, n, "host side: %s", line + 5);
		return false;
	}
	if (sscanf(line, "OK %" SCNu64 " %" SCNx32 " %" SCNu64 " %" SCNx32 " %" SCNd64 " %n",
		   &h.rx, &h.rx_crc, &h.tx, &h.tx_crc, &h.ms, &off) != 5 || off < 0) {
		snprintf(why, n, "unexpected answer from the host helper: '%.80s'", line);
		return false;
	}
	snprintf(text, tsize, "%s", line + off);
	if (h.rx != me->tx || h.rx_crc != me->tx_crc || h.tx != me->rx || h.tx_crc != me->rx_crc) {
		snprintf(why, n, "halves disagree: guest sent %" PRIu64 " (crc %08x), host got %"
			 PRIu64 " (crc %08x); host sent %" PRIu64 " (crc %08x), guest got %" PRIu64
			 " (crc %08x)", me->tx, me->tx_crc, h.rx, h.rx_crc, h.tx, h.tx_crc, me->rx,
			 me->rx_crc);
		return false;
	}
	return true;
}

static void size_words(uint64_t n, char *buf, size_t size)
{
	if (n >= (1u << 20))
		snprintf(buf, size, "%.2f MiB", (double)n / (1u << 20));
	else if (n >= 1024)
		snprintf(buf, size, "%.1f KiB", (double)n / 1024);
	else
		snprintf(buf, size, "%" PRIu64 " bytes", n);
}

/* One line in plain words per passed case; the CRCs stay for the record. */
static void report(struct guest *g, const struct spec *s, const struct peer_result *me,
		   const char *text)
{
	bool by_guest = strcmp(s->verb, "ACCEPT") == 0;
	char tx[32], rx[32], who[96], how[224];

	size_words(me->tx, tx, sizeof(tx));
	size_words(me->rx, rx, sizeof(rx));
	if (by_guest)
		snprintf(who, sizeof(who), "guest connected to host port %u", s->port);
	else
		snprintf(who, sizeof(who), "host connected to guest port %u (%.40s)", s->port, text);
	if (strcmp(s->kind, "seqpacket") == 0)
		snprintf(how, sizeof(how), "SOCK_SEQPACKET, %" PRIu64 " messages of 1 to %u bytes "
			 "each way, every message boundary kept", me->tx, PEER_SEQ_MAX);
	else if (strcmp(s->kind, "halfclose") == 0)
		snprintf(how, sizeof(how), "the %s sent %s and shut its side down, the %s read to "
			 "the end and answered %s through the half still open", by_guest ? "guest"
			 : "host", by_guest ? tx : rx, by_guest ? "host" : "guest", by_guest ? rx : tx);
	else
		snprintf(how, sizeof(how), "sent %s and received %s at the same time", tx, rx);
	info("%s: %s; checksums ok, %" PRId64 " ms (crc32 %08x, %08x)", who, how, me->ms,
	     me->tx_crc, me->rx_crc);
	result(g, s->name, true, "-");
}

/* Wait for the host's connection, unless the host answers first (it
 * failed). Return: the socket, or -1 with the host's line in @line. */
static int accept_or_answer(struct guest *g, int l, int64_t deadline, char *line, size_t size)
{
	struct pollfd p[2] = { { .fd = l, .events = POLLIN }, { .fd = g->ctrl, .events = POLLIN } };
	int rc;

	do {
		rc = poll(p, 2, tfe_remaining_ms(deadline));
	} while (rc < 0 && errno == EINTR);
	if (rc > 0 && (p[0].revents & POLLIN))
		return accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (rc > 0) {
		ctrl_recv(g, line, size, deadline);
	} else {
		snprintf(line, size, "FAIL no connection from the host before the deadline");
		ctrl_drop(g); /* its late answer would be taken for the next one's */
	}
	return -1;
}

/* Open this case's connection. Return: the socket, or -1 (@why). */
static int open_conn(struct guest *g, const struct spec *s, const char *cmd, int64_t deadline,
		     char *why, size_t n)
{
	int type = strcmp(s->kind, "seqpacket") == 0 ? SOCK_SEQPACKET : SOCK_STREAM;
	char line[PEER_LINE_MAX];
	int fd, l = -1;

	if (strcmp(s->verb, "DIAL") == 0) {
		l = vsock_socket(type, s->port, true);
		if (l < 0) {
			snprintf(why, n, "listen on guest port %u: %s", s->port, peer_errname(-l));
			return -1;
		}
	}
	if (ctrl_send(g, cmd, deadline) < 0) {
		snprintf(why, n, "control connection lost");
		fd = -1;
	} else if (l >= 0) {
		fd = accept_or_answer(g, l, deadline, line, sizeof(line));
		if (fd < 0)
			snprintf(why, n, "%s", strncmp(line, "FAIL ", 5) == 0 ? line + 5 : line);
	} else if (ctrl_recv(g, line, sizeof(line), deadline) < 0 || strcmp(line, "READY") != 0) {
		snprintf(why, n, "host helper not ready: %.200s", line);
		fd = -1;
	} else {
		fd = vsock_socket(type, s->port, false);
		if (fd < 0) {
			snprintf(why, n, "connect to host port %u: %s%s", s->port, peer_errname(-fd),
				 connect_hint(-fd));
			(void)ctrl_send(g, "ABORT", deadline);
			(void)ctrl_recv(g, line, sizeof(line), deadline);
		}
	}
	if (l >= 0)
		close(l);
	return fd;
}

static void conn_case(struct guest *g, const struct spec *s)
{
	uint64_t seed = fresh_seed();
	int64_t deadline = tfe_now_ms() + s->ms + 2000;
	char cmd[PEER_LINE_MAX], line[PEER_LINE_MAX], why[PEER_LINE_MAX], text[PEER_LINE_MAX];
	struct peer_result me;
	int fd;

	if (g->ctrl < 0) {
		result(g, s->name, false, "not run: no control connection to the host helper "
		       "(never made, or dropped after an earlier failure)");
		return;
	}
	if (strcmp(s->kind, "seqpacket") == 0 && !has_feature(g, 1)) {
		result(g, s->name, false, "VIRTIO_VSOCK_F_SEQPACKET was not negotiated (features %s)",
		       g->features);
		return;
	}
	snprintf(cmd, sizeof(cmd), "%s %s %u %" PRIu64 " %" PRIu64 " %d", s->verb, s->kind,
		 s->port, seed, s->len, s->ms);
	fd = open_conn(g, s, cmd, deadline, why, sizeof(why));
	if (fd < 0) {
		result(g, s->name, false, "%s", why);
		return;
	}
	if (guest_half(s, fd, seed, deadline, &me, why, sizeof(why)) < 0) {
		(void)ctrl_recv(g, line, sizeof(line), deadline);
		result(g, s->name, false, "guest side: %s; host side: %s", why, line);
		return;
	}
	if (ctrl_recv(g, line, sizeof(line), deadline) < 0 ||
	    !halves_agree(&me, line, text, sizeof(text), why, sizeof(why))) {
		result(g, s->name, false, "%s", strncmp(line, "no answer", 9) == 0 ? line : why);
		return;
	}
	report(g, s, &me, text);
}

/* Host lines the daemon must refuse by closing that socket promptly,
 * without an "OK" line: CONNECT to a guest port without listener
 * ("absent"), and a malformed CONNECT line ("garbage"). */
static void refused_case(struct guest *g, const char *name, const char *kind, const char *what)
{
	static const struct peer_result none;
	char cmd[PEER_LINE_MAX], line[PEER_LINE_MAX], why[PEER_LINE_MAX], text[PEER_LINE_MAX];
	int64_t deadline = tfe_now_ms() + 5000;

	if (g->ctrl < 0) {
		result(g, name, false, "not run: no control connection to the host helper");
		return;
	}
	snprintf(cmd, sizeof(cmd), "DIAL %s %u 0 0 3000", kind, GUEST_PORT_ABSENT);
	if (ctrl_send(g, cmd, deadline) < 0 || ctrl_recv(g, line, sizeof(line), deadline) < 0) {
		result(g, name, false, "%s", line);
		return;
	}
	if (!halves_agree(&none, line, text, sizeof(text), why, sizeof(why))) {
		result(g, name, false, "%s", why);
		return;
	}
	info("host sent %s: %s", what, text);
	result(g, name, true, "-");
}

/* A guest connect to a host port nobody listens on must fail at once with
 * ECONNRESET (the device's RST), not after the 2 s connect timeout. */
static void absent_host_port(struct guest *g)
{
	int64_t start = tfe_now_ms(), ms;
	int fd = vsock_socket(SOCK_STREAM, HOST_PORT_ABSENT, false);

	ms = tfe_now_ms() - start;
	if (fd >= 0) {
		close(fd);
		result(g, "absent-host-port-reset", false, "connect to host port %u succeeded",
		       HOST_PORT_ABSENT);
		return;
	}
	info("guest connect to host port %u (no listener): %s after %" PRId64 " ms",
	     HOST_PORT_ABSENT, peer_errname(-fd), ms);
	if (fd != -ECONNRESET)
		result(g, "absent-host-port-reset", false, "%s after %" PRId64 " ms, expected ECONNRESET",
		       peer_errname(-fd), ms);
	else
		result(g, "absent-host-port-reset", ms < ABSENT_LIMIT_MS,
		       "ECONNRESET only after %" PRId64 " ms (limit %d)", ms, ABSENT_LIMIT_MS);
}

static void case_bye(struct guest *g)
{
	char line[PEER_LINE_MAX];
	unsigned int ok, bad;
	int64_t deadline = tfe_now_ms() + 3000;

	if (g->ctrl < 0) {
		result(g, "host-helper-bye", false, "not run: no control connection");
		return;
	}
	if (ctrl_send(g, "BYE", deadline) < 0 || ctrl_recv(g, line, sizeof(line), deadline) < 0) {
		result(g, "host-helper-bye", false, "%s", line);
		return;
	}
	if (sscanf(line, "BYE %u %u", &ok, &bad) != 2) {
		result(g, "host-helper-bye", false, "unexpected answer '%.80s'", line);
		return;
	}
	info("host helper: %u sessions passed, %u failed", ok, bad);
	result(g, "host-helper-bye", bad == 0, "the host helper counted %u failed sessions", bad);
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static void run_cases(struct guest *g)
{
	uint64_t small = SMALL_LEN + fresh_seed() % 4096;
	uint64_t bulk = g->bulk + fresh_seed() % 4096;
	const struct spec specs[] = {
		{ "guest-to-host-connect", "ACCEPT", "stream", HOST_PORT_SMALL, small, 8000 },
		{ "host-to-guest-connect", "DIAL", "stream", GUEST_PORT_SMALL, small, 8000 },
		{ "stream-bulk-guest-initiated", "ACCEPT", "stream", HOST_PORT_BULK, bulk, 45000 },
		{ "stream-bulk-host-initiated", "DIAL", "stream", GUEST_PORT_BULK, bulk, 45000 },
		{ "half-close-guest-first", "ACCEPT", "halfclose", HOST_PORT_HALF, HALF_LEN, 15000 },
		{ "half-close-host-first", "DIAL", "halfclose", GUEST_PORT_HALF, HALF_LEN, 15000 },
		{ "seqpacket-guest-to-host", "ACCEPT", "seqpacket", HOST_PORT_SEQ, 0, 10000 },
		{ "seqpacket-host-to-guest", "DIAL", "seqpacket", GUEST_PORT_SEQ, 0, 10000 },
	};

	case_device(g);
	case_local_cid(g);
	case_control(g);
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		conn_case(g, &specs[i]);
		if (i == 1) {
			absent_host_port(g);
			refused_case(g, "absent-guest-port-closed", "absent",
				     "CONNECT " STR(GUEST_PORT_ABSENT) " to a guest port without listener");
			refused_case(g, "garbage-line-closed", "garbage",
				     "a malformed line 'CONNECT -" STR(GUEST_PORT_ABSENT) "'");
		}
	}
	case_bye(g);
}

static int parse_args(struct guest *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cid", required_argument, NULL, 'c' },
		{ "ctrl-port", required_argument, NULL, 'p' },
		{ "bulk", required_argument, NULL, 'b' },
		{ "budget", required_argument, NULL, 't' },
		{ 0 },
	};
	char *end;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned long long v;

		if (o == '?')
			return -1;
		errno = 0;
		v = strtoull(optarg, &end, 10);
		if (errno || *end || end == optarg)
			return -1;
		if (o == 'c')
			g->cid = v;
		else if (o == 'p')
			g->ctrl_port = (uint32_t)v;
		else if (o == 'b')
			g->bulk = v;
		else
			g->budget_s = (unsigned int)v;
	}
	if (optind != argc || g->cid < 3 || g->cid > UINT32_MAX || g->bulk == 0 ||
	    g->bulk > (1ull << 30) || g->budget_s == 0 || g->ctrl_port == 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct guest g = { .cid = 0, .bulk = 4u << 20, .ctrl_port = PEER_CTRL_PORT,
			   .budget_s = 110, .ctrl = -1 };

	if (parse_args(&g, argc, argv) < 0) {
		fprintf(stderr, "usage: guest_vsock_check --cid N [--ctrl-port P] [--bulk BYTES] "
			"[--budget SECONDS]\n");
		return 2;
	}
	alarm(g.budget_s);
	info("userspace engine check: guest CID %" PRIu64 ", host control port %u, "
	     "%" PRIu64 " bytes each way in the bulk cases", g.cid, g.ctrl_port, g.bulk);
	run_cases(&g);
	if (g.ctrl >= 0)
		close(g.ctrl);
	printf("user-engine: %u passed, %u failed\n", g.passed, g.failed);
	fflush(stdout);
	return g.failed ? 1 : 0;
}
