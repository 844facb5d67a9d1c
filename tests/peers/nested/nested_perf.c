// SPDX-License-Identifier: MIT
/*
 * nested_perf: the measuring end of the nested comparison (compare.sh):
 * the same L2 guest kernel behind QEMU's own vhost-vsock-pci and behind
 * our daemon's kernel engine, measured from L1 the same way.
 *
 *   nested_perf serve PORT                       (in L2, forever)
 *   nested_perf run CID PORT BYTES TRIPS [--wait S]   (in L1)
 *   nested_perf selftest
 *
 * run opens three connections to the server, each starting with a 9-byte
 * request (an op letter and a little-endian u64):
 *   'S' N: N pattern bytes L1 -> L2; the server checks them all and
 *          answers one byte, 'K' (or 'X' for a wrong byte);
 *          timed from the first write to the answer (host -> guest);
 *   'G' N: the server writes N pattern bytes; run checks them;
 *          timed from the request to the last byte (guest -> host);
 *   'E' N: N one-byte round trips; the median trip is reported.
 * Output: "perf-ok: cid=C h2g_mib_s=X g2h_mib_s=Y rtt_us=Z" or
 * "perf-fail: cid=C: reason"; exit 0, 1 (failed) or 2 (usage).
 * serve first prints "perf-features: B,B,..." (the feature bits the guest's
 * driver negotiated with its vsock device, from sysfs; "perf-features:
 * unknown (why)" when it cannot tell), for compare.sh to check that both
 * set-ups are the same.
 * selftest runs both ends over Unix socket pairs, once honest and once
 * with a server that corrupts a byte, which run must catch.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define CHUNK (64u * 1024u)
#define REQ_LEN 9u
#define MAX_TRIPS 100000u
#define IO_TIMEOUT_MS 120000

static bool corrupt; /* selftest: the server flips one byte of 'G' */

static uint8_t pat(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 13));
}

static void fill(uint8_t *b, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(off + i);
}

static bool check(const uint8_t *b, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] != pat(off + i))
			return false;
	return true;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Blocking I/O with a bound: Return: 0, or -1 on error, EOF or timeout. */
static int wait_fd(int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, IO_TIMEOUT_MS) == 1 ? 0 : -1;
}

static int read_all(int fd, void *buf, size_t n)
{
	for (size_t got = 0; got < n;) {
		ssize_t k;

		if (wait_fd(fd, POLLIN) < 0)
			return -1;
		k = read(fd, (uint8_t *)buf + got, n - got);
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	for (size_t put = 0; put < n;) {
		ssize_t k;

		if (wait_fd(fd, POLLOUT) < 0)
			return -1;
		k = write(fd, (const uint8_t *)buf + put, n - put);
		if (k <= 0)
			return -1;
		put += (size_t)k;
	}
	return 0;
}

/* ---- the server ---------------------------------------------------------------------- */

static int serve_sink(int fd, uint64_t n)
{
	static uint8_t buf[CHUNK];
	uint8_t ok = 'K';

	for (uint64_t off = 0; off < n;) {
		size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;

		if (read_all(fd, buf, k) < 0)
			return -1;
		if (!check(buf, off, k))
			ok = 'X';
		off += k;
	}
	return write_all(fd, &ok, 1);
}

static int serve_source(int fd, uint64_t n)
{
	static uint8_t buf[CHUNK];

	for (uint64_t off = 0; off < n;) {
		size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;

		fill(buf, off, k);
		if (corrupt && off == 0)
			buf[k / 2] ^= 1;
		if (write_all(fd, buf, k) < 0)
			return -1;
		off += k;
	}
	return 0;
}

static int serve_echo(int fd, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		uint8_t c;

		if (read_all(fd, &c, 1) < 0 || write_all(fd, &c, 1) < 0)
			return -1;
	}
	return 0;
}

static void serve_one(int fd)
{
	uint8_t req[REQ_LEN];
	uint64_t n = 0;

	if (read_all(fd, req, REQ_LEN) < 0)
		return;
	for (int i = 8; i >= 1; i--)
		n = n << 8 | req[i];
	if (req[0] == 'S')
		serve_sink(fd, n);
	else if (req[0] == 'G')
		serve_source(fd, n);
	else if (req[0] == 'E' && n <= MAX_TRIPS)
		serve_echo(fd, n);
}

/*
 * Print the negotiated feature bits of the guest's virtio vsock device
 * (virtio device id 19; sysfs "features" is one '0'/'1' character per bit,
 * bit 0 first).
 */
static void print_features(void)
{
	char path[300], buf[160];
	struct dirent *e;
	DIR *d = opendir("/sys/bus/virtio/devices");
	FILE *f;

	if (!d) {
		printf("perf-features: unknown (/sys/bus/virtio/devices: %s)\n", strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/device", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		buf[0] = '\0';
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		if (strtoul(buf, NULL, 0) != 19)
			continue;
		snprintf(path, sizeof(path), "/sys/bus/virtio/devices/%s/features", e->d_name);
		f = fopen(path, "r");
		if (!f || !fgets(buf, sizeof(buf), f)) {
			printf("perf-features: unknown (%s: %s)\n", path, strerror(errno));
			if (f)
				fclose(f);
			closedir(d);
			return;
		}
		fclose(f);
		printf("perf-features:");
		for (unsigned int i = 0, n = 0; buf[i] == '0' || buf[i] == '1'; i++) {
			if (buf[i] == '1')
				printf("%s%u", n++ ? "," : " ", i);
		}
		printf("\n");
		closedir(d);
		return;
	}
	closedir(d);
	printf("perf-features: unknown (no virtio device 19 in /sys/bus/virtio/devices)\n");
}

static int serve(unsigned int port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int lfd;

	/* first: its sysfs reads would clobber errno for the message below */
	print_features();
	lfd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		printf("perf-fail: serve %u: %s\n", port, strerror(errno));
		return 1;
	}
	printf("perf-serving: port=%u\n", port);
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		serve_one(fd);
		close(fd);
	}
}

/* ---- the measuring end ------------------------------------------------------------------ */

typedef int (*open_fn)(void *ctx);

static int request(int fd, char op, uint64_t n)
{
	uint8_t req[REQ_LEN] = { (uint8_t)op };

	for (int i = 1; i <= 8; i++, n >>= 8)
		req[i] = (uint8_t)n;
	return write_all(fd, req, REQ_LEN);
}

static int measure_h2g(int fd, uint64_t n, double *mib_s, const char **why)
{
	static uint8_t buf[CHUNK];
	double t0 = now_s();
	uint8_t ans = 0;

	if (request(fd, 'S', n) < 0)
		return *why = "h2g: request", -1;
	for (uint64_t off = 0; off < n;) {
		size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;

		fill(buf, off, k);
		if (write_all(fd, buf, k) < 0)
			return *why = "h2g: write", -1;
		off += k;
	}
	if (read_all(fd, &ans, 1) < 0 || ans != 'K')
		return *why = ans == 'X' ? "h2g: the server got a wrong byte" : "h2g: no answer", -1;
	*mib_s = (double)n / (1 << 20) / (now_s() - t0);
	return 0;
}

static int measure_g2h(int fd, uint64_t n, double *mib_s, const char **why)
{
	static uint8_t buf[CHUNK];
	double t0 = now_s();

	if (request(fd, 'G', n) < 0)
		return *why = "g2h: request", -1;
	for (uint64_t off = 0; off < n;) {
		size_t k = n - off < CHUNK ? (size_t)(n - off) : CHUNK;

		if (read_all(fd, buf, k) < 0)
			return *why = "g2h: short stream", -1;
		if (!check(buf, off, k))
			return *why = "g2h: wrong byte", -1;
		off += k;
	}
	*mib_s = (double)n / (1 << 20) / (now_s() - t0);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int measure_rtt(int fd, unsigned int trips, double *us, const char **why)
{
	double *t = calloc(trips, sizeof(*t));

	if (!t || request(fd, 'E', trips) < 0) {
		free(t);
		return *why = "rtt: request", -1;
	}
	for (unsigned int i = 0; i < trips; i++) {
		uint8_t c = (uint8_t)i, back = 0;
		double t0 = now_s();

		if (write_all(fd, &c, 1) < 0 || read_all(fd, &back, 1) < 0 || back != c) {
			free(t);
			return *why = "rtt: lost or wrong echo", -1;
		}
		t[i] = (now_s() - t0) * 1e6;
	}
	qsort(t, trips, sizeof(*t), cmp_double);
	*us = t[trips / 2];
	free(t);
	return 0;
}

/* The three measurements, each on a connection of its own from @open. */
static int run_all(open_fn open, void *ctx, uint64_t bytes, unsigned int trips,
		   double out[3], const char **why)
{
	int rc = 0;

	for (int m = 0; rc == 0 && m < 3; m++) {
		int fd = open(ctx);

		if (fd < 0)
			return *why = "cannot connect", -1;
		rc = m == 0 ? measure_h2g(fd, bytes, &out[0], why) :
		     m == 1 ? measure_g2h(fd, bytes, &out[1], why) :
			      measure_rtt(fd, trips, &out[2], why);
		close(fd);
	}
	return rc;
}

struct vsock_target {
	unsigned int cid, port;
	double until;
};

/* Connect, retrying while the server may still be starting. */
static int open_vsock(void *ctx)
{
	const struct vsock_target *t = ctx;
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = t->cid, .svm_port = t->port };

	for (;;) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		if (now_s() > t->until)
			return -1;
		usleep(200000);
	}
}

static int run(unsigned int cid, unsigned int port, uint64_t bytes, unsigned int trips,
	       double wait_s)
{
	struct vsock_target t = { cid, port, now_s() + wait_s };
	const char *why = "";
	double r[3];

	if (run_all(open_vsock, &t, bytes, trips, r, &why) < 0) {
		printf("perf-fail: cid=%u: %s\n", cid, why);
		return 1;
	}
	printf("perf-ok: cid=%u h2g_mib_s=%.3f g2h_mib_s=%.3f rtt_us=%.1f\n", cid, r[0], r[1], r[2]);
	return 0;
}

/* ---- selftest ------------------------------------------------------------------------------ */

/* A socket pair with a forked server on one end. */
static int open_pair(void *ctx)
{
	int sv[2];
	pid_t pid;

	(void)ctx;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		serve_one(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	return pid < 0 ? -1 : sv[0];
}

static int selftest(void)
{
	const char *why = "";
	double r[3];
	int honest, caught;

	honest = run_all(open_pair, NULL, 3 * CHUNK + 5, 50, r, &why);
	corrupt = true;
	caught = run_all(open_pair, NULL, 3 * CHUNK + 5, 50, r, &why) < 0 &&
		 strcmp(why, "g2h: wrong byte") == 0;
	while (wait(NULL) > 0)
		;
	printf("selftest: honest %s, corrupted byte %s\n", honest == 0 ? "ok" : why,
	       caught ? "caught" : "MISSED");
	return honest == 0 && caught ? 0 : 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: nested_perf serve PORT | run CID PORT BYTES TRIPS [--wait S] | "
			"selftest\n");
	return 2;
}

int main(int argc, char **argv)
{
	double wait_s = 60;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* a peer that leaves is an error return, not our end */
	if (argc == 2 && strcmp(argv[1], "selftest") == 0)
		return selftest();
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		return serve((unsigned int)strtoul(argv[2], NULL, 0));
	if ((argc == 6 || argc == 8) && strcmp(argv[1], "run") == 0) {
		unsigned long trips = strtoul(argv[5], NULL, 0);

		if (argc == 8 && strcmp(argv[6], "--wait") == 0)
			wait_s = strtod(argv[7], NULL);
		if (trips == 0 || trips > MAX_TRIPS)
			return usage();
		return run((unsigned int)strtoul(argv[2], NULL, 0),
			   (unsigned int)strtoul(argv[3], NULL, 0), strtoull(argv[4], NULL, 0),
			   (unsigned int)trips, wait_s);
	}
	return usage();
}
