// SPDX-License-Identifier: MIT
/*
 * Idle cost, on a fresh daemon with one guest attached (so earlier runs
 * leave no freed heap behind for the connections to reuse):
 *   - CPU ticks the daemon uses over opts.idle_secs with no connection;
 *   - its RSS growth per connection with opts.idle_conns connections open
 *     and idle, and the ticks it uses over opts.idle_secs then.
 * The guest driver keeps at most 16 connections, so these are opened with
 * raw REQUEST packets and their RESPONSEs read straight off the rx ring;
 * nothing in this process answers them afterwards, and nothing moves.
 *
 * Baseline: a host-role process holding the same number of accepted Unix
 * sockets: its RSS growth per connection, and its ticks over the same time.
 */
#include "bench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDLE_BATCH 64u        /* REQUESTs in flight at once */
#define IDLE_SRC_PORT 100000u
#define SETTLE_MS 200

struct idle_out {
	double rss_per_conn;  /* bytes */
	double ticks_empty;
	double ticks_full;
};

static void pause_ms(double ms)
{
	poll(NULL, 0, (int)ms);
}

/* @n connections from raw REQUESTs. Return: 0, -ECONNREFUSED, or -errno. */
static int open_raw(struct uh_guest *g, uint32_t n)
{
	struct uh_pkt *pk = malloc(sizeof(*pk));
	uint32_t sent = 0, got = 0, refused = 0;
	int rc = pk ? 0 : -ENOMEM;

	while (rc == 0 && got < n) {
		while (rc == 0 && sent < n && sent - got < IDLE_BATCH) {
			struct tfe_vsock_pkt p = {
				.src_cid = g->cid, .dst_cid = TFE_VSOCK_HOST_CID,
				.src_port = IDLE_SRC_PORT + sent, .dst_port = BENCH_HOST_PORT,
				.type = TFE_VSOCK_TYPE_STREAM, .op = TFE_VSOCK_OP_REQUEST,
				.buf_alloc = 256 * 1024,
			};

			rc = uh_raw_send(g, &p, NULL, 0);
			sent += rc == 0;
		}
		if (rc == 0)
			rc = uh_raw_recv(g, pk, BENCH_TIMEOUT_MS);
		got += rc == 0;
		refused += rc == 0 && pk->h.op != TFE_VSOCK_OP_RESPONSE;
	}
	free(pk);
	if (rc == 0 && refused) {
		fprintf(stderr, "vsock-bench: %u of %u idle connections refused\n", refused, n);
		rc = -ECONNREFUSED;
	}
	return rc;
}

static int hold_start(struct bench_host *h, const char *path, uint32_t n)
{
	struct bench_job j = { .kind = JOB_HOLD, .count = n };
	int rc;

	j.lfd = bench_listen_at(path, BENCH_BACKLOG);
	if (j.lfd < 0)
		return j.lfd;
	rc = bench_host_start(h, &j);
	close(j.lfd);
	return rc;
}

static int idle_conns_ours(struct bench_sut *s, const struct bench_opts *o, struct idle_out *out)
{
	struct bench_host h = { 0, -1 };
	struct bench_result r;
	struct bench_proc p0, p1;
	char path[160];
	int rc;

	snprintf(path, sizeof(path), "%s_%u", s->h.uds[0], BENCH_HOST_PORT);
	rc = bench_proc_read(s->h.d.pid, &p0);
	if (rc == 0)
		rc = hold_start(&h, path, o->idle_conns);
	if (rc == 0)
		rc = open_raw(&s->g[0], o->idle_conns);
	if (rc == 0)
		rc = bench_host_result(&h, &r, BENCH_TIMEOUT_MS);
	pause_ms(SETTLE_MS);
	if (rc == 0)
		rc = bench_proc_read(s->h.d.pid, &p1);
	if (rc == 0) {
		out->rss_per_conn = ((double)p1.rss_kb - (double)p0.rss_kb) * 1024.0 / o->idle_conns;
		pause_ms(o->idle_secs * 1000);
		rc = bench_proc_read(s->h.d.pid, &p0);
		out->ticks_full = (double)(p0.ticks - p1.ticks);
	}
	bench_host_end(&h);
	return rc;
}

static int idle_ours(const struct bench_opts *o, struct idle_out *out)
{
	struct bench_sut s;
	struct bench_proc p0, p1;
	char keys[48];
	int rc;

	/* room for every idle connection, whatever the default cap */
	snprintf(keys, sizeof(keys), "max-connections=%u", o->idle_conns + 64);
	rc = bench_sut_start(&s, o, 1, keys);

	if (rc < 0)
		return rc;
	pause_ms(SETTLE_MS);
	rc = bench_proc_read(s.h.d.pid, &p0);
	pause_ms(o->idle_secs * 1000);
	if (rc == 0)
		rc = bench_proc_read(s.h.d.pid, &p1);
	if (rc == 0)
		out->ticks_empty = (double)(p1.ticks - p0.ticks);
	if (rc == 0)
		rc = idle_conns_ours(&s, o, out);
	if (bench_sut_stop(&s) < 0 && rc == 0)
		rc = -EIO;
	return rc;
}

static int connect_all(const char *path, int *fds, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		fds[i] = bench_connect_to(path);
		if (fds[i] < 0)
			return fds[i];
	}
	return 0;
}

static int idle_base(const struct bench_opts *o, struct idle_out *out)
{
	char dir[] = "/tmp/vsock-bench-XXXXXX", path[64];
	struct bench_host h = { 0, -1 };
	struct bench_result r;
	struct bench_proc p0, p1;
	int *fds = calloc(o->idle_conns, sizeof(int));
	int rc = fds && mkdtemp(dir) ? 0 : -ENOMEM;

	snprintf(path, sizeof(path), "%s/hold.sock", dir);
	for (uint32_t i = 0; fds && i < o->idle_conns; i++)
		fds[i] = -1;
	rc = rc ? rc : hold_start(&h, path, o->idle_conns);
	rc = rc ? rc : connect_all(path, fds, o->idle_conns);
	rc = rc ? rc : bench_host_result(&h, &r, BENCH_TIMEOUT_MS);
	rc = rc ? rc : bench_proc_read(h.pid, &p0);
	if (rc == 0) {
		out->rss_per_conn = ((double)r.rss_kb - (double)r.rss_start_kb) * 1024.0 /
				    o->idle_conns;
		pause_ms(o->idle_secs * 1000);
		rc = bench_proc_read(h.pid, &p1);
		out->ticks_empty = out->ticks_full = (double)(p1.ticks - p0.ticks);
	}
	for (uint32_t i = 0; fds && i < o->idle_conns; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	bench_host_end(&h);
	unlink(path);
	rmdir(dir);
	return rc;
}

int bench_run_idle(const struct bench_opts *o, unsigned int rep)
{
	struct idle_out ours = { 0 }, base = { 0 };
	int rc;

	(void)rep;
	if (!bench_wanted(o, "idle"))
		return 0;
	rc = idle_ours(o, &ours);
	if (rc == 0)
		rc = idle_base(o, &base);
	if (rc < 0) {
		fprintf(stderr, "vsock-bench: idle test failed: %s\n", strerror(-rc));
		return rc;
	}
	bench_fig_add("idle_rss_conn", ours.rss_per_conn, base.rss_per_conn);
	bench_fig_add("idle_cpu", ours.ticks_empty, base.ticks_empty);
	bench_fig_add("idle_cpu_conns", ours.ticks_full, base.ticks_full);
	return 0;
}
