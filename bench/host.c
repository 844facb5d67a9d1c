// SPDX-License-Identifier: MIT
/*
 * The host role: a program on the host side of the Unix sockets. The
 * benchmark forks and re-executes itself ("--host-role FD") so the host
 * side is a fresh process with its own memory and CPU accounting, in the
 * daemon runs and the baseline runs alike.
 *
 * Protocol on the control socket (SOCK_SEQPACKET): the parent sends one
 * struct bench_job; the child may wait for a one-byte "go"; it answers
 * with one struct bench_result and then holds its sockets until the parent
 * closes the control socket. Every wait in the child is bounded, and the
 * child ends when its parent goes away.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_LIMIT_MS 120000 /* nothing a child does takes longer */

/* ---- parent side ------------------------------------------------------------------ */

static void keep_fd(int fd)
{
	if (fd >= 0)
		fcntl(fd, F_SETFD, 0);
}

static void exec_child(int ctl, const struct bench_job *job, const char *arg)
{
	char *argv[] = { "vsock-bench", "--host-role", (char *)arg, NULL };

	keep_fd(ctl);
	keep_fd(job->lfd);
	for (unsigned int i = 0; i < job->nfds; i++)
		keep_fd(job->fds[i]);
	execv("/proc/self/exe", argv);
	_exit(127);
}

int bench_host_start(struct bench_host *h, const struct bench_job *job)
{
	char arg[16];
	int sv[2];
	pid_t pid;

	h->pid = 0;
	h->ctl = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	snprintf(arg, sizeof(arg), "%d", sv[1]); /* formatted before fork: threads may run */
	pid = fork();
	if (pid == 0)
		exec_child(sv[1], job, arg);
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return -errno;
	}
	h->pid = pid;
	h->ctl = sv[0];
	if (send(h->ctl, job, sizeof(*job), MSG_NOSIGNAL) != (ssize_t)sizeof(*job)) {
		bench_host_end(h);
		return -EPIPE;
	}
	return 0;
}

int bench_host_go(struct bench_host *h)
{
	char c = 'g';

	return send(h->ctl, &c, 1, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

int bench_host_result(struct bench_host *h, struct bench_result *r, int timeout_ms)
{
	struct pollfd p = { .fd = h->ctl, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	n = recv(h->ctl, r, sizeof(*r), 0);
	if (n != (ssize_t)sizeof(*r))
		return -EPROTO;
	return r->rc;
}

void bench_host_end(struct bench_host *h)
{
	int64_t deadline = bench_now_ns() + 5000000000ll;

	if (h->ctl >= 0)
		close(h->ctl);
	h->ctl = -1;
	if (h->pid <= 0)
		return;
	while (waitpid(h->pid, NULL, WNOHANG) == 0) {
		if (bench_now_ns() > deadline) {
			kill(h->pid, SIGKILL);
			waitpid(h->pid, NULL, 0);
			break;
		}
		poll(NULL, 0, 1);
	}
	h->pid = 0;
}

/* ---- child side: shared helpers -------------------------------------------------- */

/* Wait for a byte (go) or EOF on the control socket. Return: 1 byte, 0 EOF, -ETIMEDOUT. */
static int ctl_wait(int ctl, int timeout_ms)
{
	struct pollfd p = { .fd = ctl, .events = POLLIN };
	char c;

	if (poll(&p, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	return recv(ctl, &c, 1, 0) == 1 ? 1 : 0;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Write all of @buf to non-blocking @fd. Return: 0 or -errno. */
static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);
		struct pollfd pf = { .fd = fd, .events = POLLOUT };

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			return -errno;
		} else if (poll(&pf, 1, BENCH_TIMEOUT_MS) != 1) {
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* ---- JOB_STREAMS -------------------------------------------------------------------- */

struct streams {
	const struct bench_job *j;
	struct bench_result *r;
	uint8_t *buf;
	bool done[BENCH_MAX_CONNS];
	unsigned int left;
	int64_t end_ns;         /* sources stop writing then; 0: no sources */
};

/* Return: 0, or -errno to end the job. */
static int on_readable(struct streams *s, unsigned int i)
{
	const struct bench_job *j = s->j;
	ssize_t n = read(j->fds[i], s->buf, BENCH_IO_MAX);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0) {
		s->done[i] = true;
		s->left--;
		return 0;
	}
	if (j->role[i] == ROLE_ECHO) {
		s->r->bytes[i] += (uint64_t)n;
		s->r->count++;
		return write_all(j->fds[i], s->buf, (size_t)n);
	}
	if (!bench_pat_ok(j->stream[i], s->r->bytes[i], s->buf, (size_t)n)) {
		fprintf(stderr, "vsock-bench host: wrong bytes on stream %u at offset %llu\n",
			j->stream[i], (unsigned long long)s->r->bytes[i]);
		return -EBADMSG;
	}
	s->r->bytes[i] += (uint64_t)n;
	s->r->t_last_ns = bench_now_ns();
	return 0;
}

static int on_writable(struct streams *s, unsigned int i)
{
	const struct bench_job *j = s->j;
	ssize_t n = write(j->fds[i], bench_pat_at(j->stream[i], s->r->bytes[i]), j->wsize);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	s->r->bytes[i] += (uint64_t)n;
	return 0;
}

/* Sources past their time: end of stream for the reader. */
static int stop_sources(struct streams *s)
{
	for (unsigned int i = 0; i < s->j->nfds; i++) {
		if (s->j->role[i] != ROLE_SOURCE || s->done[i])
			continue;
		if (shutdown(s->j->fds[i], SHUT_WR) < 0)
			return -errno;
		s->done[i] = true;
		s->left--;
	}
	return 0;
}

static int streams_round(struct streams *s)
{
	struct pollfd p[BENCH_MAX_CONNS];
	int64_t now = bench_now_ns();
	int rc = 0;

	if (s->end_ns && now >= s->end_ns)
		rc = stop_sources(s);
	for (unsigned int i = 0; i < s->j->nfds; i++) {
		bool src = s->j->role[i] == ROLE_SOURCE;

		p[i] = (struct pollfd){ .fd = s->done[i] ? -1 : s->j->fds[i],
					.events = src ? POLLOUT : POLLIN };
	}
	if (rc < 0 || !s->left)
		return rc;
	if (poll(p, s->j->nfds, s->end_ns && now < s->end_ns ? 10 : 1000) < 0)
		return errno == EINTR ? 0 : -errno;
	for (unsigned int i = 0; rc == 0 && i < s->j->nfds; i++) {
		if (!p[i].revents)
			continue;
		rc = s->j->role[i] == ROLE_SOURCE ? on_writable(s, i) : on_readable(s, i);
	}
	return rc;
}

static int job_streams(const struct bench_job *j, struct bench_result *r, int ctl)
{
	struct streams s = { .j = j, .r = r, .left = j->nfds };
	int64_t limit = bench_now_ns() + (int64_t)CHILD_LIMIT_MS * 1000000;
	bool sources = false;
	int rc = 0;

	s.buf = malloc(BENCH_IO_MAX);
	if (!s.buf)
		return -ENOMEM;
	for (unsigned int i = 0; i < j->nfds; i++) {
		set_nonblock(j->fds[i]);
		sources |= j->role[i] == ROLE_SOURCE;
	}
	if (sources && ctl_wait(ctl, BENCH_TIMEOUT_MS) != 1)
		rc = -ECANCELED;
	s.end_ns = sources ? bench_now_ns() + j->duration_ns : 0;
	while (rc == 0 && s.left) {
		rc = streams_round(&s);
		if (rc == 0 && bench_now_ns() > limit)
			rc = -ETIMEDOUT;
	}
	free(s.buf);
	return rc;
}

/* ---- JOB_ACCEPT, JOB_HOLD ------------------------------------------------------------ */

/* Accept and close until the parent says stop, then drain the backlog. */
static int job_accept(const struct bench_job *j, struct bench_result *r, int ctl)
{
	int64_t limit = bench_now_ns() + (int64_t)CHILD_LIMIT_MS * 1000000;
	bool stop = false;

	set_nonblock(j->lfd);
	for (;;) {
		struct pollfd p[2] = { { .fd = j->lfd, .events = POLLIN },
				       { .fd = stop ? -1 : ctl, .events = POLLIN } };
		int fd = accept4(j->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			close(fd);
			r->count++;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (stop)
			return 0;
		if (bench_now_ns() > limit)
			return -ETIMEDOUT;
		if (poll(p, 2, 1000) > 0 && p[1].revents)
			stop = ctl_wait(ctl, 0) >= 0;
	}
}

/* Accept @count connections and keep them open (they are closed at exit). */
static int job_hold(const struct bench_job *j, struct bench_result *r)
{
	int64_t limit = bench_now_ns() + (int64_t)CHILD_LIMIT_MS * 1000000;
	struct pollfd p = { .fd = j->lfd, .events = POLLIN };

	set_nonblock(j->lfd);
	while (r->count < j->count) {
		int fd = accept4(j->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0) {
			r->count++;
			continue;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (bench_now_ns() > limit)
			return -ETIMEDOUT;
		poll(&p, 1, 1000);
	}
	return 0;
}

/* ---- JOB_CONNECT --------------------------------------------------------------------- */

/* Read one line ending in '\n' into @line. Return: its length or -errno. */
static ssize_t read_line(int fd, char *line, size_t cap)
{
	size_t have = 0;

	while (have + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n = read(fd, line + have, cap - 1 - have);

		if (n > 0) {
			have += (size_t)n;
			if (line[have - 1] == '\n')
				break;
			continue;
		}
		if (n == 0)
			return -ENODATA; /* end of stream before the line */
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (poll(&p, 1, BENCH_TIMEOUT_MS) != 1)
			return -ETIMEDOUT;
	}
	line[have] = '\0';
	return (ssize_t)have;
}

/* One connection: connect, then (hybrid) CONNECT <port> and its OK line. */
static int connect_once(const struct bench_job *j)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char line[40];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = 0;
	int n;

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, j->path, sizeof(j->path) < sizeof(sa.sun_path) ? sizeof(j->path)
									 : sizeof(sa.sun_path));
	sa.sun_path[sizeof(sa.sun_path) - 1] = '\0';
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		rc = -errno;
	if (rc == 0 && j->hybrid) {
		ssize_t l;

		n = snprintf(line, sizeof(line), "CONNECT %u\n", j->port);
		rc = write_all(fd, line, (size_t)n);
		l = rc == 0 ? read_line(fd, line, sizeof(line)) : 0;
		if (l < 0)
			rc = (int)l; /* -ENODATA: closed without OK */
		if (rc == 0 && strncmp(line, "OK ", 3) != 0)
			rc = -EPROTO;
	}
	if (rc < 0)
		fprintf(stderr, "vsock-bench host: connecting to %s: %s\n", j->path, strerror(-rc));
	close(fd);
	return rc;
}

static int job_connect(const struct bench_job *j, struct bench_result *r, int ctl)
{
	int64_t end;
	int rc = 0;

	if (ctl_wait(ctl, BENCH_TIMEOUT_MS) != 1)
		return -ECANCELED;
	end = bench_now_ns() + j->duration_ns;
	while (rc == 0 && bench_now_ns() < end) {
		rc = connect_once(j);
		if (rc == 0)
			r->count++;
	}
	return rc;
}

/* ---- child main ------------------------------------------------------------------------ */

static int run_job(const struct bench_job *j, struct bench_result *r, int ctl)
{
	switch (j->kind) {
	case JOB_STREAMS:
		return j->nfds <= BENCH_MAX_CONNS ? job_streams(j, r, ctl) : -EINVAL;
	case JOB_ACCEPT:
		return job_accept(j, r, ctl);
	case JOB_HOLD:
		return job_hold(j, r);
	case JOB_CONNECT:
		return job_connect(j, r, ctl);
	}
	return -EINVAL;
}

int bench_host_main(int ctl)
{
	struct bench_job j;
	struct bench_result r = { 0 };
	struct bench_proc pr;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (recv(ctl, &j, sizeof(j), 0) != (ssize_t)sizeof(j) || bench_pat_init() < 0)
		return 2;
	if (bench_proc_read(getpid(), &pr) == 0)
		r.rss_start_kb = pr.rss_kb;
	r.rc = run_job(&j, &r, ctl);
	r.cpu_ns = bench_cpu_ns();
	if (bench_proc_read(getpid(), &pr) == 0) {
		r.rss_kb = pr.rss_kb;
		r.hwm_kb = pr.hwm_kb;
	}
	if (send(ctl, &r, sizeof(r), MSG_NOSIGNAL) != (ssize_t)sizeof(r))
		return 1;
	/* hold the sockets until the parent is done with them */
	while (ctl_wait(ctl, CHILD_LIMIT_MS) == 1)
		;
	return r.rc ? 1 : 0;
}
