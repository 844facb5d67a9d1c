// SPDX-License-Identifier: MIT
/*
 * Connection set-up rate, one connection at a time, for opts.secs.
 *
 * Guest-initiated: the guest sends REQUEST to host port P and waits for
 * the RESPONSE (the daemon has connected <uds>_P by then), then resets the
 * connection; the host role accepts and closes. Baseline: connect(2) to a
 * listening Unix socket of the host role, then close(2).
 *
 * Host-initiated: the host role connects to the hybrid socket, writes
 * "CONNECT P\n", waits for "OK <port>\n", closes; the guest listens on P
 * and resets each connection it accepted. Baseline: the same lines over a
 * plain Unix socket, this process accepting and answering "OK".
 *
 * Every connection counted was confirmed by both ends (the host role's
 * accept count must equal the guest's connects).
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#define TX_RESERVE 8u

/* ---- guest-initiated ------------------------------------------------------------------- */

/* One connection; the port pool is never reused within a run. Return: 0 or -errno. */
static int guest_connect_once(struct bench_sut *s, bool base)
{
	struct tfe_vsock *vs = &s->g[0].vs;
	struct tfe_vsock_conn *c;
	int rc, fd;

	if (base) {
		fd = bench_connect_to(s->base_path);
		if (fd < 0)
			return fd;
		close(fd);
		return 0;
	}
	rc = tfe_vsock_connect(vs, TFE_VSOCK_HOST_CID, BENCH_HOST_PORT, s->next_port++,
			       BENCH_TIMEOUT_MS, &c);
	if (rc == 0)
		rc = tfe_vsock_reset(vs, c);
	return rc;
}

static int guest_rate(struct bench_sut *s, const struct bench_opts *o, bool base, double *rate)
{
	char path[160];
	struct bench_job j = { .kind = JOB_ACCEPT };
	struct bench_host h = { 0, -1 };
	struct bench_result r;
	uint64_t n = 0, refused = 0;
	int64_t t0, end;
	int rc;

	snprintf(path, sizeof(path), "%s_%u", s->h.uds[0], BENCH_HOST_PORT);
	j.lfd = bench_listen_at(base ? s->base_path : path, BENCH_BACKLOG);
	if (j.lfd < 0)
		return j.lfd;
	rc = bench_host_start(&h, &j);
	close(j.lfd);
	t0 = bench_now_ns();
	end = t0 + (int64_t)(o->secs * 1e9);
	while (rc == 0 && bench_now_ns() < end) {
		rc = guest_connect_once(s, base);
		n += rc == 0;
		if (rc == -ECONNREFUSED && refused++ < n + 100) {
			/* the host role's backlog was full (it was not scheduled): retry, as a client would */
			poll(NULL, 0, 1);
			rc = 0;
		}
	}
	*rate = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
	if (refused && o->verbose)
		fprintf(stderr, "vsock-bench: conn_guest: %llu refused (listener backlog full), retried\n",
			(unsigned long long)refused);
	if (rc == 0)
		rc = bench_host_go(&h);
	if (rc == 0)
		rc = bench_host_result(&h, &r, BENCH_TIMEOUT_MS);
	if (rc == 0 && r.count != n)
		rc = -EBADMSG;
	bench_host_end(&h);
	return rc;
}

/* ---- host-initiated -------------------------------------------------------------------- */

/* Accept what the guest driver has and reset it. Return: 0 or -errno. */
static int guest_take(struct tfe_vsock *vs)
{
	struct tfe_vsock_conn *c;

	/* keep tx room for the RESPONSEs the driver sends on its own (it drops them otherwise) */
	if (vs->tx_nfree < TX_RESERVE)
		tfe_vring_wait(vs->tx, 10);
	tfe_vsock_wait(vs, 1);
	while (tfe_vsock_accept(vs, BENCH_GUEST_PORT, 0, &c) == 0) {
		int rc = tfe_vsock_reset(vs, c);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Baseline server: accept, read "CONNECT P\n", answer "OK 1\n", close. */
static int base_take(int lfd)
{
	static const char ok[] = "OK 1\n";
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	char line[40];
	size_t have = 0;
	int fd;

	if (poll(&p, 1, 1) != 1)
		return 0;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EAGAIN ? 0 : -errno;
	while (have < sizeof(line) && (have == 0 || line[have - 1] != '\n')) {
		ssize_t n = read(fd, line + have, sizeof(line) - have);

		if (n <= 0)
			break;
		have += (size_t)n;
	}
	if (have && line[have - 1] == '\n' && strncmp(line, "CONNECT ", 8) == 0)
		(void)!write(fd, ok, sizeof(ok) - 1);
	close(fd);
	return 0;
}

static int host_rate(struct bench_sut *s, const struct bench_opts *o, bool base, double *rate)
{
	struct bench_job j = { .kind = JOB_CONNECT, .lfd = -1, .hybrid = true,
			       .port = BENCH_GUEST_PORT };
	struct tfe_vsock *vs = &s->g[0].vs;
	struct bench_host h = { 0, -1 };
	struct bench_result r;
	int lfd = -1, rc;

	j.duration_ns = (int64_t)(o->secs * 1e9);
	snprintf(j.path, sizeof(j.path), "%s", base ? s->base_path : s->h.uds[0]);
	if (base)
		lfd = bench_listen_at(s->base_path, BENCH_BACKLOG);
	rc = lfd < 0 && base ? lfd : 0;
	if (rc == 0 && !base)
		rc = tfe_vsock_listen(vs, BENCH_GUEST_PORT);
	if (rc == 0)
		rc = bench_host_start(&h, &j);
	if (rc == 0)
		rc = bench_host_go(&h);
	while (rc == 0 && (rc = bench_host_result(&h, &r, 0)) == -ETIMEDOUT)
		rc = base ? base_take(lfd) : guest_take(vs);
	if (rc == 0)
		*rate = (double)r.count / o->secs;
	if (rc < 0 && !base) {
		unsigned int used = 0;

		for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++)
			used += vs->conns[i].state != TFE_CONN_FREE;
		fprintf(stderr, "vsock-bench: conn_host: the guest driver dropped %lu replies, "
			"sent %lu RSTs, has %u connections, saw %lu bad packets\n",
			vs->dropped_replies, vs->rst_sent, used, vs->bad_pkts);
	}
	if (!base)
		tfe_vsock_unlisten(vs, BENCH_GUEST_PORT);
	if (lfd >= 0)
		close(lfd);
	bench_host_end(&h);
	return rc;
}

/* ---- both ------------------------------------------------------------------------------ */

typedef int (*rate_fn)(struct bench_sut *s, const struct bench_opts *o, bool base, double *rate);

static int rate_pair(struct bench_sut *s, const struct bench_opts *o, unsigned int rep,
		     const char *id, rate_fn fn)
{
	double ours = 0, base = 0;
	int rc;

	if (!bench_wanted(o, id))
		return 0;
	rc = fn(s, o, rep % 2 != 0, rep % 2 ? &base : &ours);
	rc = rc ? rc : fn(s, o, rep % 2 == 0, rep % 2 ? &ours : &base);
	if (rc < 0) {
		fprintf(stderr, "vsock-bench: %s failed: %s\n", id, strerror(-rc));
		return rc;
	}
	bench_fig_add(id, ours, base);
	return 0;
}

int bench_run_connect(struct bench_sut *s, const struct bench_opts *o, unsigned int rep)
{
	int rc = rate_pair(s, o, rep, "conn_guest", guest_rate);

	return rc ? rc : rate_pair(s, o, rep, "conn_host", host_rate);
}
