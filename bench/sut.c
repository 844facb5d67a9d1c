// SPDX-License-Identifier: MIT
/*
 * The system under test and the guest-role end of each connection.
 *
 * The daemon runs as a child with one --vm per guest (user_harness.c), and
 * each guest is a tfe front end set up like QEMU 7.2 (queue size 128) with
 * a Linux-like driver: EVENT_IDX, 256 KiB of receive space per connection,
 * 4 KiB rx buffers, packets of up to 64 KiB, a credit update once the
 * sender may have less than 64 KiB left.
 *
 * The guest asks for tx completion interrupts only while it waits for tx
 * buffers (bench_ends_wait()); otherwise they are reclaimed when it sends
 * next, a choice a virtio driver makes with EVENT_IDX.
 *
 * The baseline end is a socketpair whose guest-role side makes the copies
 * the tfe driver makes: a send copies the bytes once before write(2) (tfe
 * copies them into a tx buffer in guest RAM), a receive copies them twice
 * after read(2) (tfe copies each rx buffer into the connection's queue and
 * from there to the reader). So both runs do the same user-space copies and
 * differ only by the path in between.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define GUEST_BUF_ALLOC (256u * 1024) /* Linux's default vsock buffer size */
#define GUEST_RX_BUF 4096u            /* Linux's rx buffer size */
#define GUEST_TX_PKT (64u * 1024)     /* Linux's largest packet */

/* ---- the daemon ------------------------------------------------------------------------ */

static volatile pid_t watched[2];  /* daemons the watchdog kills */

static void on_alarm(int sig)
{
	static const char msg[] = "vsock-bench: timed out; daemon killed\n";

	(void)sig;
	for (unsigned int i = 0; i < 2; i++)
		if (watched[i] > 0)
			kill(watched[i], SIGKILL);
	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	_exit(1);
}

void bench_watchdog(unsigned int seconds)
{
	signal(SIGALRM, on_alarm);
	alarm(seconds);
}

void bench_watch_pid(pid_t old, pid_t pid)
{
	for (unsigned int i = 0; i < 2; i++) {
		if (watched[i] == old) {
			watched[i] = pid;
			return;
		}
	}
}

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Every VM's vhost-user and hybrid sockets exist. Return: 0 or -ETIMEDOUT. */
static int wait_sockets(struct uh *h)
{
	int64_t deadline = bench_now_ns() + 5000000000ll;

	for (unsigned int i = 0; i < h->nvms; i++) {
		while (!is_socket(h->sock[i]) || !is_socket(h->uds[i])) {
			if (!tfe_daemon_alive(&h->d) || bench_now_ns() > deadline)
				return -ETIMEDOUT;
			poll(NULL, 0, 5);
		}
	}
	return 0;
}

/* argv: the daemon, warnings only, one --vm per VM, then the caller's options. */
static int daemon_start(struct bench_sut *s, const struct bench_opts *o, const char *keys)
{
	static char spec[2][600];
	char *argv[8 + 2 * 2 + 24];
	unsigned int na = 0;
	struct uh *h = &s->h;

	argv[na++] = (char *)o->daemon;
	argv[na++] = "--log-level";
	argv[na++] = "warn";
	for (unsigned int i = 0; i < h->nvms; i++) {
		h->cid[i] = 3 + i;
		snprintf(h->sock[i], sizeof(h->sock[i]), "%s/vm%u.sock", h->dir, i);
		snprintf(h->uds[i], sizeof(h->uds[i]), "%s/vm%u.vsock", h->dir, i);
		/*
		 * The guest driver is a process of its own that a loaded machine
		 * (or ASan) can leave unscheduled for seconds: give it longer than
		 * the 2 s default to answer a host-initiated REQUEST, so a slow
		 * run is slow rather than failed.
		 */
		snprintf(spec[i], sizeof(spec[i]),
			 "socket=%s,guest-cid=%llu,uds-path=%s,connect-timeout-ms=15000%s%s%s%s",
			 h->sock[i], (unsigned long long)h->cid[i], h->uds[i], o->vm_keys[0] ? "," : "",
			 o->vm_keys, keys ? "," : "", keys ? keys : "");
		argv[na++] = "--vm";
		argv[na++] = spec[i];
	}
	for (unsigned int i = 0; o->daemon_args && o->daemon_args[i] && na < 8 + 2 * 2 + 23; i++)
		argv[na++] = (char *)o->daemon_args[i];
	argv[na] = NULL;
	return tfe_daemon_start(&h->d, argv, h->sock[0], h->log, 5000);
}

int bench_guest_open(struct uh_guest *g, const struct uh *h, unsigned int i)
{
	const struct tfe_vsock_opts vo = {
		.buf_alloc = GUEST_BUF_ALLOC, .rx_buf_size = GUEST_RX_BUF, .tx_pkt_max = GUEST_TX_PKT,
		/* Linux: a credit update once the sender may send less than one packet */
		.credit_threshold = GUEST_BUF_ALLOC - GUEST_TX_PKT,
	};

	return uh_guest_open(g, h, i, 1ull << TFE_F_EVENT_IDX, &vo);
}

int bench_sut_start(struct bench_sut *s, const struct bench_opts *o, unsigned int nvms,
		    const char *keys)
{
	int rc;

	memset(s, 0, sizeof(*s));
	strcpy(s->h.dir, "/tmp/vsock-bench-XXXXXX");
	if (nvms == 0 || nvms > 2 || !mkdtemp(s->h.dir))
		return -EINVAL;
	snprintf(s->h.log, sizeof(s->h.log), "%s/daemon.log", s->h.dir);
	snprintf(s->base_path, sizeof(s->base_path), "%s/baseline.sock", s->h.dir);
	s->h.nvms = nvms;
	s->next_port = 10000;
	rc = daemon_start(s, o, keys);
	if (rc == 0) {
		bench_watch_pid(0, s->h.d.pid);
		rc = wait_sockets(&s->h);
	}
	for (unsigned int i = 0; rc == 0 && i < nvms; i++) {
		rc = bench_guest_open(&s->g[i], &s->h, i);
		s->nvms += rc == 0;
	}
	if (rc < 0) {
		fprintf(stderr, "vsock-bench: starting %s with %u VM%s: %s\n", o->daemon, nvms,
			nvms == 1 ? "" : "s", strerror(-rc));
		bench_sut_stop(s);
	}
	return rc;
}

/* The daemon's log (warnings and errors only), after a failure. */
static void dump_log(const struct uh *h)
{
	char line[512];
	FILE *f = fopen(h->log, "r");

	while (f && fgets(line, sizeof(line), f))
		fprintf(stderr, "daemon: %s", line);
	if (f)
		fclose(f);
}

static void remove_dir(const char *dir)
{
	char path[400];
	struct dirent *de;
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

int bench_sut_stop(struct bench_sut *s)
{
	pid_t pid = s->h.d.pid;
	bool alive;
	int rc;

	for (unsigned int i = 0; i < s->nvms; i++)
		uh_guest_close(&s->g[i]);
	s->nvms = 0;
	alive = pid > 0 && tfe_daemon_alive(&s->h.d);
	rc = pid > 0 ? tfe_daemon_stop(&s->h.d, 5000) : 0;
	bench_watch_pid(pid, 0);
	if (pid > 0 && (!alive || rc < 0)) {
		fprintf(stderr, "vsock-bench: the daemon %s (status 0x%x)\n",
			alive ? "did not stop cleanly" : "died during the run", s->h.d.status);
		rc = rc ? rc : -ECHILD;
	}
	if (pid > 0 && (rc < 0 || s->failed))
		dump_log(&s->h);
	remove_dir(s->h.dir);
	return rc;
}

/* ---- plain Unix sockets ---------------------------------------------------------------- */

int bench_listen_at(const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

int bench_connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	strncpy(sa.sun_path, path, sizeof(sa.sun_path) - 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

/* ---- opening ------------------------------------------------------------------------- */

static int open_ours(struct bench_ends *e, struct bench_sut *s, struct uh_guest *g,
		     unsigned int vm)
{
	int lfd = uh_host_listen(s->h.uds[vm], BENCH_HOST_PORT, SOCK_STREAM);
	int rc = lfd < 0 ? lfd : 0;

	/* one at a time: the listener's backlog is small */
	for (unsigned int i = 0; rc == 0 && i < e->n; i++) {
		rc = tfe_vsock_connect(&g->vs, TFE_VSOCK_HOST_CID, BENCH_HOST_PORT, s->next_port++,
				       BENCH_TIMEOUT_MS, &e->c[i]);
		if (rc == 0) {
			e->host_fd[i] = uh_accept(lfd, g, BENCH_TIMEOUT_MS);
			rc = e->host_fd[i] < 0 ? e->host_fd[i] : 0;
		}
	}
	if (lfd >= 0)
		close(lfd);
	return rc;
}

static int open_base(struct bench_ends *e)
{
	e->stage = malloc(2 * (size_t)BENCH_IO_MAX);
	if (!e->stage)
		return -ENOMEM;
	for (unsigned int i = 0; i < e->n; i++) {
		int sv[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
			return -errno;
		e->fd[i] = sv[0];
		e->host_fd[i] = sv[1];
	}
	return 0;
}

int bench_ends_open(struct bench_ends *e, struct bench_sut *s, unsigned int vm, bool base,
		    unsigned int n)
{
	int rc;

	memset(e, 0, sizeof(*e));
	if (n == 0 || n > BENCH_MAX_CONNS || vm >= s->nvms)
		return -EINVAL;
	e->base = base;
	e->n = n;
	e->g = &s->g[vm];
	for (unsigned int i = 0; i < BENCH_MAX_CONNS; i++)
		e->fd[i] = e->host_fd[i] = -1;
	rc = base ? open_base(e) : open_ours(e, s, e->g, vm);
	if (rc < 0) {
		fprintf(stderr, "vsock-bench: opening %u %s connection%s: %s\n", n,
			base ? "baseline" : "vsock", n == 1 ? "" : "s", strerror(-rc));
		bench_ends_handed(e);
		bench_ends_close(e);
	}
	return rc;
}

void bench_ends_handed(struct bench_ends *e)
{
	for (unsigned int i = 0; i < BENCH_MAX_CONNS; i++) {
		if (e->host_fd[i] >= 0)
			close(e->host_fd[i]);
		e->host_fd[i] = -1;
	}
}

int bench_ends_close(struct bench_ends *e)
{
	int rc = 0;

	for (unsigned int i = 0; i < BENCH_MAX_CONNS; i++) {
		if (e->c[i]) {
			int r = tfe_vsock_close(&e->g->vs, e->c[i], BENCH_TIMEOUT_MS);

			rc = rc ? rc : r;
			e->c[i] = NULL;
		}
		if (e->fd[i] >= 0)
			close(e->fd[i]);
		e->fd[i] = -1;
	}
	free(e->stage);
	e->stage = NULL;
	return rc;
}

/* ---- moving bytes -------------------------------------------------------------------- */

ssize_t bench_ends_send(struct bench_ends *e, unsigned int i, const void *buf, size_t n)
{
	ssize_t w;

	if (!e->base)
		return tfe_vsock_send(&e->g->vs, e->c[i], buf, n);
	if (n > BENCH_IO_MAX)
		n = BENCH_IO_MAX;
	memcpy(e->stage, buf, n);
	w = write(e->fd[i], e->stage, n);
	return w < 0 ? -errno : w;
}

ssize_t bench_ends_recv(struct bench_ends *e, unsigned int i, void *buf, size_t n)
{
	ssize_t r;

	if (!e->base)
		return tfe_vsock_recv(&e->g->vs, e->c[i], buf, n);
	if (n > BENCH_IO_MAX)
		n = BENCH_IO_MAX;
	r = read(e->fd[i], e->stage, n);
	if (r < 0)
		return -errno;
	memcpy(e->stage + BENCH_IO_MAX, e->stage, (size_t)r);
	memcpy(buf, e->stage + BENCH_IO_MAX, (size_t)r);
	return r;
}

void bench_ends_poll(struct bench_ends *e)
{
	if (!e->base)
		tfe_vsock_poll(&e->g->vs);
}

/* The guest is out of tx buffers (rather than credit): it needs tx completions. */
static bool tx_short(const struct tfe_vsock *vs)
{
	return vs->tx_nfree == 0 || vs->tx->num_free < 2;
}

int bench_ends_wait(struct bench_ends *e, bool out, int ms)
{
	struct pollfd p[BENCH_MAX_CONNS];
	int rc;

	if (!e->base && out && tx_short(&e->g->vs)) {
		rc = tfe_vsock_wait(&e->g->vs, ms);
		return rc < 0 ? rc : 0;
	}
	/*
	 * Other waits (to receive, or for credit) arm the rx ring only: tx
	 * buffers are reclaimed by the next send (as Linux's virtio-net does),
	 * so a tx completion does not wake the guest, and the device need not
	 * signal it.
	 */
	if (!e->base) {
		rc = tfe_vring_wait(e->g->vs.rx, ms);
		return rc == -ETIMEDOUT ? 0 : rc;
	}
	for (unsigned int i = 0; i < e->n; i++)
		p[i] = (struct pollfd){ .fd = e->fd[i], .events = out ? POLLIN | POLLOUT : POLLIN };
	return poll(p, e->n, ms) < 0 && errno != EINTR ? -errno : 0;
}

int bench_ends_shut(struct bench_ends *e, unsigned int i)
{
	int64_t deadline = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;
	int rc;

	if (e->base)
		return shutdown(e->fd[i], SHUT_WR) < 0 ? -errno : 0;
	/* it needs a free tx buffer: wait for the device to return one */
	while ((rc = tfe_vsock_shutdown(&e->g->vs, e->c[i], TFE_VSOCK_SHUTDOWN_SEND)) == -EAGAIN) {
		if (bench_now_ns() > deadline)
			return -ETIMEDOUT;
		tfe_vsock_wait(&e->g->vs, 1);
	}
	return rc;
}
