// SPDX-License-Identifier: MIT
/*
 * Stream throughput: guest → host and host → guest, 4 KiB and 64 KiB
 * application writes, 1 and 16 connections; daemon CPU per GB; two VMs
 * streaming at once.
 *
 * Timing: a run writes for opts.secs, then ends its streams; throughput is
 * the bytes the reader checked divided by the time from the first write to
 * the last byte read (one CLOCK_MONOTONIC across processes). The reader
 * checks every byte against the pattern and the byte counts of both ends
 * must agree, or the run fails.
 */
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stream_cfg {
	const char *id;
	bool g2h;
	unsigned int n;
	uint32_t wsize;
};

struct stream_out {
	double gbps;
	double daemon_s_per_gb;  /* ours only */
	double total_s_per_gb;   /* every process involved */
	uint64_t host_hwm_kb;
};

static const struct stream_cfg cfgs[] = {
	{ "g2h_4k_1", true, 1, 4096 },    { "g2h_64k_1", true, 1, 65536 },
	{ "g2h_4k_16", true, 16, 4096 },  { "g2h_64k_16", true, 16, 65536 },
	{ "h2g_4k_1", false, 1, 4096 },   { "h2g_64k_1", false, 1, 65536 },
	{ "h2g_4k_16", false, 16, 4096 }, { "h2g_64k_16", false, 16, 65536 },
};

static uint64_t base_host_hwm_kb;

/* ---- guest-role loops ------------------------------------------------------------- */

/* Write pattern bytes round-robin until @end_ns, then end every stream. */
static int guest_send(struct bench_ends *e, uint32_t wsize, int64_t end_ns, uint64_t *sent)
{
	int rc = 0;

	while (rc == 0 && bench_now_ns() < end_ns) {
		bool moved = false;

		bench_ends_poll(e);
		for (unsigned int i = 0; rc == 0 && i < e->n; i++) {
			ssize_t k = bench_ends_send(e, i, bench_pat_at(i, sent[i]), wsize);

			if (k > 0) {
				sent[i] += (uint64_t)k;
				moved = true;
			} else if (k != -EAGAIN) {
				rc = (int)k;
			}
		}
		if (rc == 0 && !moved)
			rc = bench_ends_wait(e, true, 10);
	}
	for (unsigned int i = 0; rc == 0 && i < e->n; i++)
		rc = bench_ends_shut(e, i);
	return rc;
}

/* One receive attempt on connection @i. Return: 1 moved, 0 nothing, -errno. */
static int recv_one(struct bench_ends *e, unsigned int i, uint8_t *buf, uint64_t *got,
		    bool *eof, int64_t *t_last)
{
	ssize_t k = bench_ends_recv(e, i, buf, BENCH_IO_MAX);

	if (k == -EAGAIN)
		return 0;
	if (k < 0)
		return (int)k;
	if (k == 0) {
		*eof = true;
		return 1;
	}
	if (!bench_pat_ok(i, *got, buf, (size_t)k)) {
		fprintf(stderr, "vsock-bench: guest got wrong bytes on stream %u at offset %llu\n", i,
			(unsigned long long)*got);
		return -EBADMSG;
	}
	*got += (uint64_t)k;
	*t_last = bench_now_ns();
	return 1;
}

/* Read and check every stream until each has ended. */
static int guest_recv(struct bench_ends *e, int64_t limit_ns, uint64_t *got, int64_t *t_last)
{
	bool eof[BENCH_MAX_CONNS] = { false };
	unsigned int left = e->n;
	uint8_t *buf = malloc(BENCH_IO_MAX);
	int rc = buf ? 0 : -ENOMEM;

	while (rc == 0 && left) {
		bool moved = false;

		bench_ends_poll(e);
		for (unsigned int i = 0; rc >= 0 && i < e->n; i++) {
			if (eof[i])
				continue;
			rc = recv_one(e, i, buf, &got[i], &eof[i], t_last);
			moved |= rc > 0;
			left -= eof[i];
		}
		rc = rc < 0 ? rc : 0;
		if (rc == 0 && !moved)
			rc = bench_ends_wait(e, false, 10);
		if (rc == 0 && bench_now_ns() > limit_ns)
			rc = -ETIMEDOUT;
	}
	free(buf);
	return rc;
}

/* Wait for the host role's answer, keeping the guest driver going meanwhile. */
static int wait_result(struct bench_ends *e, struct bench_host *h, struct bench_result *r)
{
	int64_t limit = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;

	for (;;) {
		int rc = bench_host_result(h, r, 2);

		if (rc != -ETIMEDOUT)
			return rc;
		if (bench_now_ns() > limit)
			return rc;
		bench_ends_poll(e);
	}
}

static int counts_match(const uint64_t *a, const uint64_t *b, unsigned int n, const char *what)
{
	for (unsigned int i = 0; i < n; i++) {
		if (a[i] != b[i]) {
			fprintf(stderr, "vsock-bench: %s: stream %u: %llu bytes sent, %llu received\n",
				what, i, (unsigned long long)a[i], (unsigned long long)b[i]);
			return -EBADMSG;
		}
	}
	return 0;
}

/* ---- one run ----------------------------------------------------------------------------- */

static void fill_job(struct bench_job *j, const struct bench_ends *e, enum bench_role role,
		     uint32_t wsize, double secs)
{
	memset(j, 0, sizeof(*j));
	j->kind = JOB_STREAMS;
	j->nfds = e->n;
	j->lfd = -1;
	j->wsize = wsize;
	j->duration_ns = (int64_t)(secs * 1e9);
	for (unsigned int i = 0; i < e->n; i++) {
		j->fds[i] = e->host_fd[i];
		j->role[i] = (uint8_t)role;
		j->stream[i] = i;
	}
}

/* The transfer itself. Return: 0 with *t0 and *t_end set, or -errno. */
static int transfer(struct bench_ends *e, struct bench_host *h, const struct stream_cfg *c,
		    double secs, struct bench_result *r, int64_t *t0, int64_t *t_end)
{
	uint64_t mine[BENCH_MAX_CONNS] = { 0 };
	int rc;

	*t0 = bench_now_ns();
	if (c->g2h) {
		rc = guest_send(e, c->wsize, *t0 + (int64_t)(secs * 1e9), mine);
		if (rc == 0)
			rc = wait_result(e, h, r);
		*t_end = r->t_last_ns;
		return rc ? rc : counts_match(mine, r->bytes, e->n, c->id);
	}
	rc = bench_host_go(h);
	if (rc == 0)
		rc = guest_recv(e, *t0 + (int64_t)(secs * 1e9) + (int64_t)BENCH_TIMEOUT_MS * 1000000,
				mine, t_end);
	if (rc == 0)
		rc = wait_result(e, h, r);
	return rc ? rc : counts_match(r->bytes, mine, e->n, c->id);
}

static double sum_gb(const uint64_t *b, unsigned int n)
{
	double s = 0;

	for (unsigned int i = 0; i < n; i++)
		s += (double)b[i];
	return s / 1e9;
}

static int stream_once(struct bench_sut *s, const struct bench_opts *o, const struct stream_cfg *c,
		       bool base, struct stream_out *out)
{
	struct bench_ends e;
	struct bench_host h = { 0, -1 };
	struct bench_result r = { 0 };
	struct bench_proc p0 = { 0 }, p1 = { 0 };
	struct bench_job j;
	int64_t t0 = 0, t_end = 0, cpu0;
	long sw0 = bench_switches();
	int rc = bench_ends_open(&e, s, 0, base, c->n);

	if (rc < 0)
		return rc;
	fill_job(&j, &e, c->g2h ? ROLE_SINK : ROLE_SOURCE, c->wsize, o->secs);
	rc = bench_host_start(&h, &j);
	bench_ends_handed(&e);
	bench_proc_read(s->h.d.pid, &p0);
	cpu0 = bench_cpu_ns();
	if (rc == 0)
		rc = transfer(&e, &h, c, o->secs, &r, &t0, &t_end);
	if (rc == 0) {
		double gb = sum_gb(r.bytes, c->n);
		double daemon_s = 0;

		if (!base && bench_proc_read(s->h.d.pid, &p1) == 0)
			daemon_s = (double)(p1.ticks - p0.ticks) / (double)bench_clk_tck();
		out->gbps = t_end > t0 ? gb / ((double)(t_end - t0) / 1e9) : 0;
		out->daemon_s_per_gb = gb > 0 ? daemon_s / gb : 0;
		out->total_s_per_gb = gb > 0 ? (daemon_s + (double)(bench_cpu_ns() - cpu0 +
							       r.cpu_ns) / 1e9) / gb : 0;
		out->host_hwm_kb = r.hwm_kb;
		if (o->verbose)
			fprintf(stderr, "vsock-bench: %s %s: %.0f bytes in %.3f s, daemon %.2f s CPU, "
				"guest slept %ld times\n", c->id, base ? "baseline" : "vsock", gb * 1e9,
				(double)(t_end - t0) / 1e9, daemon_s, bench_switches() - sw0);
	}
	if (bench_ends_close(&e) < 0 && rc == 0)
		rc = -EIO;
	bench_host_end(&h);
	if (rc < 0)
		fprintf(stderr, "vsock-bench: %s (%s) failed: %s\n", c->id, base ? "baseline" : "vsock",
			strerror(-rc));
	return rc;
}

static int stream_pair(struct bench_sut *s, const struct bench_opts *o, const struct stream_cfg *c,
		       unsigned int rep)
{
	struct stream_out ours = { 0 }, base = { 0 };
	int rc;

	/* alternate which goes first, so a load change hits both alike */
	if (rep % 2 == 0) {
		rc = stream_once(s, o, c, false, &ours);
		rc = rc ? rc : stream_once(s, o, c, true, &base);
	} else {
		rc = stream_once(s, o, c, true, &base);
		rc = rc ? rc : stream_once(s, o, c, false, &ours);
	}
	if (rc < 0)
		return rc;
	bench_fig_add(c->id, ours.gbps, base.gbps);
	if (base.host_hwm_kb > base_host_hwm_kb)
		base_host_hwm_kb = base.host_hwm_kb;
	if (c->n == 1 && c->wsize == 65536) {
		bench_fig_add(c->g2h ? "cpu_daemon_g2h" : "cpu_daemon_h2g", ours.daemon_s_per_gb,
			      base.total_s_per_gb);
		bench_fig_add(c->g2h ? "cpu_total_g2h" : "cpu_total_h2g", ours.total_s_per_gb,
			      base.total_s_per_gb);
	}
	return 0;
}

int bench_stream_one(struct bench_sut *s, const struct bench_opts *o, bool g2h, double *gbps)
{
	const struct stream_cfg *c = &cfgs[g2h ? 1 : 5]; /* 64 KiB writes, 1 connection */
	struct stream_out out = { 0 };
	int rc = stream_once(s, o, c, false, &out);

	*gbps = out.gbps;
	return rc;
}

int bench_run_streams(struct bench_sut *s, const struct bench_opts *o, unsigned int rep)
{
	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
		int rc;

		if (!bench_wanted(o, cfgs[i].id) && !bench_wanted(o, "cpu"))
			continue;
		rc = stream_pair(s, o, &cfgs[i], rep);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void bench_record_peak(struct bench_sut *s)
{
	struct bench_proc p;

	if (bench_proc_read(s->h.d.pid, &p) == 0)
		bench_fig_add("peak_rss", (double)p.hwm_kb / 1024.0,
			      base_host_hwm_kb ? (double)base_host_hwm_kb / 1024.0 : -1);
}

/* ---- two VMs at once ------------------------------------------------------------------- */

struct vm_run {
	struct bench_ends e;
	struct bench_host h;
	struct bench_result r;
	pthread_barrier_t *go;
	int64_t t0;
	double secs;
	int rc;
};

static void *vm_thread(void *arg)
{
	static const struct stream_cfg c = { "two_vm", true, 1, 65536 };
	struct vm_run *v = arg;
	int64_t t_end;

	pthread_barrier_wait(v->go);
	v->rc = transfer(&v->e, &v->h, &c, v->secs, &v->r, &v->t0, &t_end);
	return NULL;
}

static int two_start(struct bench_sut *s, const struct bench_opts *o, bool base,
		     struct vm_run *v, pthread_barrier_t *go)
{
	for (unsigned int i = 0; i < 2; i++) {
		struct bench_job j;
		int rc = bench_ends_open(&v[i].e, s, i, base, 1);

		if (rc < 0)
			return rc;
		fill_job(&j, &v[i].e, ROLE_SINK, 65536, o->secs);
		rc = bench_host_start(&v[i].h, &j);
		bench_ends_handed(&v[i].e);
		if (rc < 0)
			return rc;
		v[i].go = go;
		v[i].secs = o->secs;
	}
	return 0;
}

/* Return: 0 with aggregate GB/s and the daemon's CPU% in @gbps/@cpu, or -errno. */
static int two_once(struct bench_sut *s, const struct bench_opts *o, bool base, double *gbps,
		    double *cpu)
{
	struct vm_run v[2] = { { .h = { 0, -1 } }, { .h = { 0, -1 } } };
	struct bench_proc p0 = { 0 }, p1 = { 0 };
	pthread_barrier_t go;
	pthread_t th[2];
	int64_t w0, w1;
	int rc;

	pthread_barrier_init(&go, NULL, 3);
	rc = two_start(s, o, base, v, &go);
	for (unsigned int i = 0; rc == 0 && i < 2; i++)
		rc = -pthread_create(&th[i], NULL, vm_thread, &v[i]);
	if (rc == 0) {
		bench_proc_read(s->h.d.pid, &p0);
		w0 = bench_now_ns();
		pthread_barrier_wait(&go);
		pthread_join(th[0], NULL);
		pthread_join(th[1], NULL);
		w1 = bench_now_ns();
		bench_proc_read(s->h.d.pid, &p1);
		rc = v[0].rc ? v[0].rc : v[1].rc;
	}
	if (rc == 0) {
		int64_t t0 = v[0].t0 < v[1].t0 ? v[0].t0 : v[1].t0;
		int64_t t1 = v[0].r.t_last_ns > v[1].r.t_last_ns ? v[0].r.t_last_ns : v[1].r.t_last_ns;

		*gbps = (sum_gb(v[0].r.bytes, 1) + sum_gb(v[1].r.bytes, 1)) / ((double)(t1 - t0) / 1e9);
		*cpu = 100.0 * (double)(p1.ticks - p0.ticks) / (double)bench_clk_tck() /
		       ((double)(w1 - w0) / 1e9);
	}
	for (unsigned int i = 0; i < 2; i++) {
		bench_ends_close(&v[i].e);
		bench_host_end(&v[i].h);
	}
	pthread_barrier_destroy(&go);
	if (rc < 0)
		fprintf(stderr, "vsock-bench: two VMs (%s) failed: %s\n", base ? "baseline" : "vsock",
			strerror(-rc));
	return rc;
}

int bench_run_two_vms(struct bench_sut *s, const struct bench_opts *o, unsigned int rep)
{
	double g_ours = 0, g_base = 0, cpu = 0, cpu_base = 0;
	int rc;

	(void)rep;
	if (s->nvms < 2)
		return 0;
	rc = two_once(s, o, false, &g_ours, &cpu);
	if (rc == 0)
		rc = two_once(s, o, true, &g_base, &cpu_base);
	if (rc < 0)
		return rc;
	bench_fig_add("two_vm_gbps", g_ours, g_base);
	bench_fig_add("two_vm_cpu", cpu, -1);
	return 0;
}
