// SPDX-License-Identifier: MIT
/*
 * Helpers for the userspace engine integration tests (see user_harness.h).
 * Host sockets are non-blocking; every loop that waits for the daemon also
 * runs the guest driver, since the test is both ends of each connection.
 */
#include "user_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CHUNK_MAX 40000u
#define UH_MAX_ARGS 64u
/* start and stop bounds: a daemon under valgrind is slow at both */
#define UH_DAEMON_MS 20000
#define SLICE_MS 2

const char *uh_daemon_path;
static volatile pid_t watched_pid;

static void on_alarm(int sig)
{
	static const char msg[] = "user_harness: test timed out; daemon killed\n";

	(void)sig;
	if (watched_pid > 0)
		kill(watched_pid, SIGKILL);
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

void uh_watchdog(unsigned int seconds)
{
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

/* ---- the daemon ---- */

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int add_arg(char **argv, unsigned int *n, unsigned int max, char *arg)
{
	if (*n + 1 >= max)
		return -E2BIG;
	argv[(*n)++] = arg;
	argv[*n] = NULL;
	return 0;
}

/* The words of environment variable @name, each added to argv; the text is kept in @buf. */
static int add_env_words(const char *name, char *buf, size_t size, char **argv, unsigned int *n,
			 unsigned int max)
{
	const char *w = getenv(name);
	char *save = NULL;
	int rc = 0;

	if (!w || !w[0])
		return 0;
	if (strlen(w) >= size)
		return -E2BIG;
	strcpy(buf, w);
	for (char *t = strtok_r(buf, " ", &save); t && rc == 0; t = strtok_r(NULL, " ", &save))
		rc = add_arg(argv, n, max, t);
	return rc;
}

/*
 * VUV_DAEMON_WRAPPER="/usr/bin/valgrind --error-exitcode=1 ..." runs the
 * daemon under that program (words split at spaces; the first must be an
 * absolute path: tfe_daemon_start() uses execv). The wrapper must run the
 * daemon in its own process, as valgrind does, so that the pid the tests
 * watch (fds, memory) is the daemon's. VUV_DAEMON_ARGS adds options to
 * every run (valgrind needs "--sandbox none": it cannot run seccomp).
 */
int uh_daemon_argv(char **argv, unsigned int *n, unsigned int max)
{
	static char wrapper[512], args[256];
	int rc = add_env_words("VUV_DAEMON_WRAPPER", wrapper, sizeof(wrapper), argv, n, max);

	if (rc == 0)
		rc = add_arg(argv, n, max, (char *)uh_daemon_path);
	if (rc == 0)
		rc = add_env_words("VUV_DAEMON_ARGS", args, sizeof(args), argv, n, max);
	return rc;
}

static int wait_sockets(struct uh *h)
{
	int64_t deadline = tfe_now_ms() + 5000;

	for (unsigned int i = 0; i < h->nvms; i++) {
		while (!is_socket(h->sock[i]) || !is_socket(h->uds[i])) {
			if (!tfe_daemon_alive(&h->d) || tfe_remaining_ms(deadline) == 0)
				return -ETIMEDOUT;
			poll(NULL, 0, 5);
		}
	}
	return 0;
}

int uh_start(struct uh *h, const struct uh_vm_spec *specs, unsigned int n, bool single,
	     const char *const *extra)
{
	static char vmspec[UH_MAX_VMS][400], cid[24];
	char *argv[UH_MAX_ARGS];
	unsigned int na = 0;
	int rc = 0;

	memset(h, 0, sizeof(*h));
	if (n == 0 || n > UH_MAX_VMS)
		return -EINVAL;
	strcpy(h->dir, "/tmp/uh-XXXXXX");
	if (!mkdtemp(h->dir))
		return -errno;
	snprintf(h->log, sizeof(h->log), "%s/daemon.log", h->dir);
	h->nvms = n;
	rc = uh_daemon_argv(argv, &na, UH_MAX_ARGS);
	for (unsigned int i = 0; i < n; i++) {
		h->cid[i] = specs[i].cid;
		snprintf(h->sock[i], sizeof(h->sock[i]), "%s/vm%u.sock", h->dir, i);
		snprintf(h->uds[i], sizeof(h->uds[i]), "%s/vm%u.vsock", h->dir, i);
		snprintf(vmspec[i], sizeof(vmspec[i]), "socket=%s,guest-cid=%llu,uds-path=%s%s%s%s%s",
			 h->sock[i], (unsigned long long)specs[i].cid, h->uds[i],
			 specs[i].groups ? ",groups=" : "", specs[i].groups ? specs[i].groups : "",
			 specs[i].keys ? "," : "", specs[i].keys ? specs[i].keys : "");
	}
	if (single && n == 1) {
		snprintf(cid, sizeof(cid), "%llu", (unsigned long long)specs[0].cid);
		char *args[] = { "--socket", h->sock[0], "--guest-cid", cid, "--uds-path", h->uds[0] };

		for (unsigned int i = 0; rc == 0 && i < 6; i++)
			rc = add_arg(argv, &na, UH_MAX_ARGS, args[i]);
	} else {
		for (unsigned int i = 0; rc == 0 && i < n; i++) {
			rc = add_arg(argv, &na, UH_MAX_ARGS, "--vm");
			if (rc == 0)
				rc = add_arg(argv, &na, UH_MAX_ARGS, vmspec[i]);
		}
	}
	for (unsigned int i = 0; rc == 0 && extra && extra[i]; i++)
		rc = add_arg(argv, &na, UH_MAX_ARGS, (char *)extra[i]);
	if (rc == 0)
		rc = tfe_daemon_start(&h->d, argv, h->sock[0], h->log, UH_DAEMON_MS);
	if (rc == 0) {
		watched_pid = h->d.pid;
		rc = wait_sockets(h);
	}
	return rc;
}

bool uh_alive(struct uh *h)
{
	return tfe_daemon_alive(&h->d);
}

/* Occurrences of @text in the log, read in chunks (logs of long runs exceed any buffer). */
static unsigned int log_count(const struct uh *h, const char *text)
{
	char buf[65536 + 1];
	size_t tlen = strlen(text), keep = 0, len;
	FILE *f = fopen(h->log, "r");
	unsigned int n = 0;

	if (!f || tlen == 0 || tlen >= sizeof(buf) / 2) {
		if (f)
			fclose(f);
		return 0;
	}
	while ((len = fread(buf + keep, 1, sizeof(buf) - 1 - keep, f)) > 0) {
		len += keep;
		buf[len] = '\0';
		for (const char *p = buf; (p = strstr(p, text)) != NULL; p++)
			n++;
		/* a match may straddle chunks: carry the tail that cannot hold a whole one */
		keep = tlen - 1 < len ? tlen - 1 : len;
		memmove(buf, buf + len - keep, keep);
	}
	fclose(f);
	return n;
}

unsigned int uh_log_count(const struct uh *h, const char *text)
{
	return log_count(h, text);
}

bool uh_log_has(const struct uh *h, const char *text)
{
	return log_count(h, text) > 0;
}

int uh_wait_log(const struct uh *h, const char *text, unsigned int count, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	while (log_count(h, text) < count) {
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		poll(NULL, 0, 5);
	}
	return 0;
}

static void dump_log(const struct uh *h)
{
	char line[512];
	FILE *f = fopen(h->log, "r");

	if (!f)
		return;
	fprintf(stderr, "---- daemon log (%s) ----\n", h->log);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* The private directory and whatever the test left in it (host listeners). */
static void remove_dir(const struct uh *h)
{
	char path[400];
	struct dirent *e;
	DIR *d = opendir(h->dir);

	while (d && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", h->dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(h->dir);
}

/* Every socket file the daemon made must be gone after a clean exit. */
static int check_files_gone(const struct uh *h)
{
	char path[160];

	for (unsigned int i = 0; i < h->nvms; i++) {
		snprintf(path, sizeof(path), "%s_seqpacket", h->uds[i]);
		if (is_socket(h->sock[i]) || is_socket(h->uds[i]) || is_socket(path)) {
			fprintf(stderr, "user_harness: socket files of VM %u left behind\n", i);
			return -EEXIST;
		}
	}
	return 0;
}

int uh_stop(struct uh *h)
{
	bool alive = uh_alive(h);
	int rc = tfe_daemon_stop(&h->d, UH_DAEMON_MS);

	watched_pid = 0;
	if (!alive) {
		fprintf(stderr, "user_harness: the daemon died during the test (status 0x%x)\n",
			h->d.status);
		rc = -ECHILD;
	}
	if (rc == 0)
		rc = check_files_gone(h);
	else if (alive)
		fprintf(stderr, "user_harness: stopping the daemon: %s\n", strerror(-rc));
	dump_log(h);
	remove_dir(h);
	return rc;
}

/* ---- guests ---- */

int uh_guest_open(struct uh_guest *g, const struct uh *h, unsigned int i, uint64_t features,
		  const struct tfe_vsock_opts *o)
{
	struct tfe_setup_opts so = {
		.want_features = features | (1ull << TFE_F_VERSION_1),
	};
	int rc;

	memset(g, 0, sizeof(*g));
	g->cid = h->cid[i];
	rc = tfe_vm_open(&g->vm, h->sock[i], UH_GUEST_MEM, true, 5000);
	if (rc < 0)
		return rc;
	/* a loaded machine may delay a set-up reply by seconds; a missing one still fails */
	g->vm.fe.timeout_ms = UH_TIMEOUT_MS;
	rc = tfe_setup_qemu(&g->vm, &so);
	if (rc == 0)
		rc = tfe_vsock_init(&g->vs, &g->vm.mem, &g->vm.vq[0], &g->vm.vq[1], NULL, g->cid, o);
	if (rc < 0) {
		tfe_vm_close(&g->vm);
		return rc;
	}
	g->open = true;
	return 0;
}

void uh_guest_close(struct uh_guest *g)
{
	if (!g->open)
		return;
	tfe_vsock_fini(&g->vs);
	tfe_vm_close(&g->vm);
	g->open = false;
}

/* Run the guest driver a little; sleep up to @ms when there is nothing to do. */
static void guest_step(struct uh_guest *g, int ms)
{
	if (!g) {
		poll(NULL, 0, ms);
		return;
	}
	if (tfe_vsock_poll(&g->vs) <= 0)
		tfe_vsock_wait(&g->vs, ms);
}

/* ---- host sockets ---- */

static int fill_sun(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int uh_host_listen(const char *uds, uint32_t port, int type)
{
	struct sockaddr_un sa;
	char path[160];
	int fd;

	snprintf(path, sizeof(path), "%s_%u", uds, port);
	if (fill_sun(&sa, path) < 0)
		return -ENAMETOOLONG;
	unlink(path);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int uh_host_connect(const char *uds, uint32_t port, int type)
{
	struct sockaddr_un sa;
	char path[160], line[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s%s", uds, type == SOCK_SEQPACKET ? "_seqpacket" : "");
	if (fill_sun(&sa, path) < 0)
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, (size_t)n, MSG_NOSIGNAL) != n ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* Read the "OK" line: byte by byte on a stream, one message on seqpacket. */
static ssize_t read_line(int fd, char *line, size_t cap, size_t *have)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	ssize_t n;

	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl);
	if (type == SOCK_SEQPACKET) {
		n = recv(fd, line, cap - 1, 0);
		if (n > 0)
			*have = (size_t)n;
		return n;
	}
	n = recv(fd, line + *have, 1, 0);
	if (n > 0)
		*have += (size_t)n;
	return n;
}

int uh_host_wait_ok(int fd, struct uh_guest *g, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	char line[32];
	size_t have = 0;

	while (have == 0 || line[have - 1] != '\n') {
		ssize_t n = have + 1 < sizeof(line) ? read_line(fd, line, sizeof(line), &have) : -1;

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return n == 0 || errno == ECONNRESET ? -ECONNRESET : -EPROTO;
		if (n > 0)
			continue;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		guest_step(g, SLICE_MS);
	}
	line[have] = '\0';
	if (strncmp(line, "OK ", 3) != 0 || strspn(line + 3, "0123456789") != have - 4)
		return -EPROTO;
	return 0;
}

int uh_accept(int lfd, struct uh_guest *g, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd >= 0)
			return fd;
		if (errno != EAGAIN)
			return -errno;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		guest_step(g, SLICE_MS);
	}
}

bool uh_host_closed(int fd, struct uh_guest *g, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	char buf[4096];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
		if (n > 0)
			continue;
		if (tfe_remaining_ms(deadline) == 0)
			return false;
		guest_step(g, SLICE_MS);
	}
}

/* ---- data ---- */

uint8_t uh_pattern(uint32_t seed, uint64_t off)
{
	uint64_t x = off * 0x9e3779b97f4a7c15ull + seed;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)x;
}

void uh_fill(uint8_t *buf, uint32_t seed, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = uh_pattern(seed, off + i);
}

size_t uh_check(const uint8_t *buf, uint32_t seed, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i] != uh_pattern(seed, off + i))
			return i;
	}
	return n;
}

uint64_t uh_fnv(uint64_t h, const uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= buf[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint32_t uh_rand(uint32_t *state)
{
	uint32_t x = *state ? *state : 0x2545f491u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

struct xfer {
	size_t total, sent, got;
	uint64_t h_sent, h_got;
	uint32_t seed, rnd;
	uint8_t *wb, *rb;
};

static int xfer_init(struct xfer *x, size_t total, uint32_t seed)
{
	memset(x, 0, sizeof(*x));
	x->total = total;
	x->seed = seed;
	x->rnd = seed * 2654435761u + 1;
	x->h_sent = x->h_got = UH_FNV_INIT;
	x->wb = malloc(CHUNK_MAX);
	x->rb = malloc(CHUNK_MAX);
	return x->wb && x->rb ? 0 : -ENOMEM;
}

static int xfer_end(struct xfer *x, int rc)
{
	free(x->wb);
	free(x->rb);
	if (rc == 0 && x->h_sent != x->h_got)
		rc = -EBADMSG;
	if (rc < 0)
		fprintf(stderr, "user_harness: transfer stopped at %zu of %zu bytes sent, %zu received: %s\n",
			x->sent, x->total, x->got, strerror(-rc));
	return rc;
}

/* Next write: a random size, filled with the pattern at x->sent. */
static size_t xfer_next(struct xfer *x)
{
	size_t n = 1 + uh_rand(&x->rnd) % CHUNK_MAX;

	if (n > x->total - x->sent)
		n = x->total - x->sent;
	uh_fill(x->wb, x->seed, x->sent, n);
	return n;
}

static int xfer_sent(struct xfer *x, ssize_t n)
{
	if (n < 0)
		return n == -EAGAIN ? 0 : (int)n;
	x->h_sent = uh_fnv(x->h_sent, x->wb, (size_t)n);
	x->sent += (size_t)n;
	return 1;
}

static int xfer_got(struct xfer *x, ssize_t n)
{
	if (n < 0)
		return n == -EAGAIN ? 0 : (int)n;
	if (n == 0)
		return -EPIPE;
	if (uh_check(x->rb, x->seed, x->got, (size_t)n) != (size_t)n)
		return -EBADMSG;
	x->h_got = uh_fnv(x->h_got, x->rb, (size_t)n);
	x->got += (size_t)n;
	return 1;
}

/* The two ends of a connection under test. */
struct ends {
	struct uh_guest *g;
	struct tfe_vsock_conn *c;
	int fd;
};

typedef ssize_t (*io_fn)(const struct ends *e, void *buf, size_t n);

static ssize_t guest_send(const struct ends *e, void *buf, size_t n)
{
	return tfe_vsock_send(&e->g->vs, e->c, buf, n);
}

static ssize_t guest_recv(const struct ends *e, void *buf, size_t n)
{
	return tfe_vsock_recv(&e->g->vs, e->c, buf, n);
}

static ssize_t host_send(const struct ends *e, void *buf, size_t n)
{
	ssize_t r = write(e->fd, buf, n);

	return r < 0 ? -errno : r;
}

static ssize_t host_recv(const struct ends *e, void *buf, size_t n)
{
	ssize_t r = read(e->fd, buf, n);

	return r < 0 ? -errno : r;
}

/* Random-sized writes through @snd, random-sized checked reads through @rcv. */
static int transfer(const struct ends *e, io_fn snd, io_fn rcv, size_t total, uint32_t seed,
		    int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	struct xfer x;
	int rc = xfer_init(&x, total, seed);

	while (rc == 0 && x.got < total) {
		int a = 0, b;

		if (x.sent < total)
			a = xfer_sent(&x, snd(e, x.wb, xfer_next(&x)));
		b = xfer_got(&x, rcv(e, x.rb, 1 + uh_rand(&x.rnd) % CHUNK_MAX));
		rc = a < 0 ? a : b < 0 ? b : 0;
		if (rc == 0 && tfe_remaining_ms(deadline) == 0)
			rc = -ETIMEDOUT;
		if (rc == 0 && !a && !b)
			guest_step(e->g, SLICE_MS);
		else if (rc == 0)
			tfe_vsock_poll(&e->g->vs);
	}
	return xfer_end(&x, rc);
}

int uh_guest_to_host(struct uh_guest *g, struct tfe_vsock_conn *c, int fd, size_t total,
		     uint32_t seed, int timeout_ms)
{
	const struct ends e = { g, c, fd };

	return transfer(&e, guest_send, host_recv, total, seed, timeout_ms);
}

int uh_host_to_guest(struct uh_guest *g, struct tfe_vsock_conn *c, int fd, size_t total,
		     uint32_t seed, int timeout_ms)
{
	const struct ends e = { g, c, fd };

	return transfer(&e, host_send, guest_recv, total, seed, timeout_ms);
}

int uh_args(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DAEMON\n", argv[0]);
		return -EINVAL;
	}
	uh_daemon_path = argv[1];
	return 0;
}

/* ---- raw packets ---- */

int uh_raw_send(struct uh_guest *g, const struct tfe_vsock_pkt *p, const void *payload,
		size_t len)
{
	int64_t deadline = tfe_now_ms() + UH_TIMEOUT_MS;
	struct tfe_vsock_pkt copy = *p;

	for (;;) {
		int rc = tfe_vsock_send_pkt(&g->vs, &copy, payload, len);

		if (rc != -EAGAIN)
			return rc;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		tfe_vring_wait(g->vs.tx, SLICE_MS);
	}
}

int uh_raw_recv(struct uh_guest *g, struct uh_pkt *p, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	struct tfe_vsock *vs = &g->vs;

	for (;;) {
		uint32_t len;
		uintptr_t slot;
		int rc = tfe_vring_get_used(vs->rx, &len, &slot);

		if (rc == 1) {
			uint64_t gpa = vs->rx_pool + (uint64_t)slot * vs->o.rx_buf_size;
			const uint8_t *buf = tfe_mem_ptr(vs->mem, gpa, vs->o.rx_buf_size);
			struct tfe_buf b = { .gpa = gpa, .len = vs->o.rx_buf_size, .write = true };

			if (!buf || len < TFE_VSOCK_HDR_SIZE || len > vs->o.rx_buf_size)
				return -EIO;
			tfe_vsock_hdr_unpack(&p->h, buf);
			if (p->h.len > len - TFE_VSOCK_HDR_SIZE)
				return -EIO;
			memcpy(p->data, buf + TFE_VSOCK_HDR_SIZE, p->h.len);
			tfe_vring_add(vs->rx, &b, 1, false, slot);
			tfe_vring_kick(vs->rx);
			return 0;
		}
		if (rc < 0)
			return -EIO;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		tfe_vring_wait(vs->rx, tfe_remaining_ms(deadline) < 20 ? tfe_remaining_ms(deadline) : 20);
	}
}
