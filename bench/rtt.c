// SPDX-License-Identifier: MIT
/*
 * Round trips and fairness.
 *
 * Round trip: the guest writes one byte, the host role echoes it, the
 * guest waits for it (sleeping, never spinning) and checks its value; the
 * time of each trip is kept and the median and 99th percentile reported.
 *
 * Fairness: 16 connections of one guest: 14 stream 64 KiB writes to the
 * host, one measures round trips as above, and one floods 64-byte writes
 * (at most FLOOD_BURST per round of the guest loop, so the guest's own
 * loop gives it no more turns than the others get). The same run without
 * the flooder gives the reference; what matters is how much of the others'
 * throughput and round trip survives the flood, through the daemon and
 * through plain sockets.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RTT_MAX_SAMPLES 2000000u
#define FAIR_STREAMS 14u
#define FAIR_PING 14u
#define FAIR_FLOOD 15u
#define FLOOD_SIZE 64u
#define FLOOD_BURST 16u

struct samples {
	double *v;
	unsigned int n;
};

static int samples_init(struct samples *s)
{
	s->n = 0;
	s->v = malloc(RTT_MAX_SAMPLES * sizeof(*s->v));
	return s->v ? 0 : -ENOMEM;
}

static void samples_add(struct samples *s, int64_t ns)
{
	if (s->n < RTT_MAX_SAMPLES)
		s->v[s->n++] = (double)ns / 1000.0;
}

/* Send all of a short message, waiting for room. Return: 0 or -errno. */
static int send_small(struct bench_ends *e, unsigned int i, const void *buf, size_t n)
{
	int64_t limit = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;

	for (;;) {
		ssize_t k = bench_ends_send(e, i, buf, n);
		int rc;

		if (k == (ssize_t)n)
			return 0;
		if (k >= 0 || k != -EAGAIN)
			return k >= 0 ? -EIO : (int)k;
		if (bench_now_ns() > limit)
			return -ETIMEDOUT;
		rc = bench_ends_wait(e, true, 10);
		if (rc < 0)
			return rc;
	}
}

/* Wait for the echo of @byte. Return: 0, -EBADMSG for another byte, -errno. */
static int recv_echo(struct bench_ends *e, unsigned int i, uint8_t byte)
{
	int64_t limit = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;

	for (;;) {
		uint8_t b;
		ssize_t k;
		int rc;

		bench_ends_poll(e);
		k = bench_ends_recv(e, i, &b, 1);
		if (k == 1)
			return b == byte ? 0 : -EBADMSG;
		if (k != -EAGAIN)
			return k == 0 ? -EPIPE : (int)k;
		if (bench_now_ns() > limit)
			return -ETIMEDOUT;
		rc = bench_ends_wait(e, false, 10);
		if (rc < 0)
			return rc;
	}
}

static void fill_job(struct bench_job *j, const struct bench_ends *e)
{
	memset(j, 0, sizeof(*j));
	j->kind = JOB_STREAMS;
	j->nfds = e->n;
	j->lfd = -1;
	for (unsigned int i = 0; i < e->n; i++) {
		j->fds[i] = e->host_fd[i];
		j->role[i] = ROLE_SINK;
		j->stream[i] = i;
	}
}

/* Start the host role on @e's connections, echoing on @echo. */
static int start_host(struct bench_ends *e, struct bench_host *h, unsigned int echo)
{
	struct bench_job j;
	int rc;

	fill_job(&j, e);
	j.role[echo] = ROLE_ECHO;
	rc = bench_host_start(h, &j);
	bench_ends_handed(e);
	return rc;
}

/* End every stream and collect the host role's result. */
static int finish(struct bench_ends *e, struct bench_host *h, struct bench_result *r)
{
	int64_t limit = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;
	int rc = 0;

	for (unsigned int i = 0; rc == 0 && i < e->n; i++)
		rc = bench_ends_shut(e, i);
	while (rc == 0) {
		rc = bench_host_result(h, r, 2);
		if (rc != -ETIMEDOUT || bench_now_ns() > limit)
			break;
		rc = 0;
		bench_ends_poll(e);
	}
	return rc;
}

/* ---- round trip -------------------------------------------------------------------------- */

static int rtt_loop(struct bench_ends *e, double secs, struct samples *sm)
{
	int64_t end = bench_now_ns() + (int64_t)(secs * 1e9);
	uint8_t byte = 0;
	int rc = 0;

	while (rc == 0 && bench_now_ns() < end) {
		int64_t t = bench_now_ns();

		byte++;
		rc = send_small(e, 0, &byte, 1);
		if (rc == 0)
			rc = recv_echo(e, 0, byte);
		if (rc == 0)
			samples_add(sm, bench_now_ns() - t);
	}
	return rc;
}

static int rtt_once(struct bench_sut *s, const struct bench_opts *o, bool base, double *p50,
		    double *p99)
{
	struct bench_ends e;
	struct bench_host h = { 0, -1 };
	struct bench_result r;
	struct samples sm = { 0 };
	int rc = bench_ends_open(&e, s, 0, base, 1);

	if (rc < 0)
		return rc;
	rc = start_host(&e, &h, 0);
	if (rc == 0)
		rc = samples_init(&sm);
	if (rc == 0)
		rc = rtt_loop(&e, o->secs, &sm);
	if (rc == 0)
		rc = finish(&e, &h, &r);
	if (rc == 0 && r.count == 0)
		rc = -EPROTO;
	if (rc == 0) {
		*p50 = bench_quantile(sm.v, sm.n, 0.5);
		*p99 = bench_quantile(sm.v, sm.n, 0.99);
	}
	free(sm.v);
	bench_ends_close(&e);
	bench_host_end(&h);
	if (rc < 0)
		fprintf(stderr, "vsock-bench: round trip (%s) failed: %s\n",
			base ? "baseline" : "vsock", strerror(-rc));
	return rc;
}

int bench_run_rtt(struct bench_sut *s, const struct bench_opts *o, unsigned int rep)
{
	double o50 = 0, o99 = 0, b50 = 0, b99 = 0;
	int rc;

	if (!bench_wanted(o, "rtt"))
		return 0;
	if (rep % 2 == 0) {
		rc = rtt_once(s, o, false, &o50, &o99);
		rc = rc ? rc : rtt_once(s, o, true, &b50, &b99);
	} else {
		rc = rtt_once(s, o, true, &b50, &b99);
		rc = rc ? rc : rtt_once(s, o, false, &o50, &o99);
	}
	if (rc < 0)
		return rc;
	bench_fig_add("rtt_p50", o50, b50);
	bench_fig_add("rtt_p99", o99, b99);
	return 0;
}

/* ---- fairness ---------------------------------------------------------------------------- */

struct fair_state {
	struct bench_ends *e;
	bool flood;
	uint64_t sent[BENCH_MAX_CONNS];
	bool ping_out;
	uint8_t byte;
	int64_t t_ping;
	struct samples sm;
};

static int fair_ping(struct fair_state *f, bool *moved)
{
	uint8_t b;
	ssize_t k;

	if (!f->ping_out) {
		f->byte++;
		k = bench_ends_send(f->e, FAIR_PING, &f->byte, 1);
		f->ping_out = k == 1;
		f->t_ping = bench_now_ns();
	} else {
		k = bench_ends_recv(f->e, FAIR_PING, &b, 1);
		if (k == 1 && b != f->byte)
			return -EBADMSG;
		if (k == 1)
			samples_add(&f->sm, bench_now_ns() - f->t_ping);
		f->ping_out = k != 1;
	}
	*moved |= k > 0;
	return k >= 0 || k == -EAGAIN ? 0 : (int)k;
}

static int fair_send(struct fair_state *f, unsigned int i, uint32_t size, bool *moved)
{
	ssize_t k = bench_ends_send(f->e, i, bench_pat_at(i, f->sent[i]), size);

	if (k > 0) {
		f->sent[i] += (uint64_t)k;
		*moved = true;
		return 0;
	}
	return k == -EAGAIN ? 0 : (int)k;
}

static int fair_round(struct fair_state *f)
{
	bool moved = false;
	int rc = 0;

	bench_ends_poll(f->e);
	for (unsigned int i = 0; rc == 0 && i < FAIR_STREAMS; i++)
		rc = fair_send(f, i, 65536, &moved);
	for (unsigned int k = 0; rc == 0 && f->flood && k < FLOOD_BURST; k++)
		rc = fair_send(f, FAIR_FLOOD, FLOOD_SIZE, &moved);
	if (rc == 0)
		rc = fair_ping(f, &moved);
	if (rc == 0 && !moved)
		rc = bench_ends_wait(f->e, true, 10);
	return rc;
}

struct fair_out {
	double gbps, rtt, flood_mps;
};

static int fair_measure(struct fair_state *f, struct bench_host *h, double secs,
			struct fair_out *out)
{
	int64_t t0 = bench_now_ns(), end = t0 + (int64_t)(secs * 1e9);
	struct bench_result r;
	uint64_t others = 0;
	int rc = 0;

	while (rc == 0 && bench_now_ns() < end)
		rc = fair_round(f);
	if (rc == 0)
		rc = finish(f->e, h, &r);
	for (unsigned int i = 0; rc == 0 && i < BENCH_MAX_CONNS; i++) {
		if (i != FAIR_PING && r.bytes[i] != f->sent[i])
			rc = -EBADMSG;
		others += i < FAIR_STREAMS ? r.bytes[i] : 0;
	}
	if (rc == 0 && r.t_last_ns > t0) {
		out->gbps = (double)others / 1e9 / ((double)(r.t_last_ns - t0) / 1e9);
		out->rtt = bench_quantile(f->sm.v, f->sm.n, 0.5);
		out->flood_mps = (double)(r.bytes[FAIR_FLOOD] / FLOOD_SIZE) / secs;
	}
	return rc;
}

static int fair_once(struct bench_sut *s, const struct bench_opts *o, bool base, bool flood,
		     struct fair_out *out)
{
	struct bench_ends e;
	struct bench_host h = { 0, -1 };
	struct fair_state f = { .e = &e, .flood = flood };
	int rc = bench_ends_open(&e, s, 0, base, BENCH_MAX_CONNS);

	if (rc < 0)
		return rc;
	rc = start_host(&e, &h, FAIR_PING);
	if (rc == 0)
		rc = samples_init(&f.sm);
	if (rc == 0)
		rc = fair_measure(&f, &h, o->secs, out);
	free(f.sm.v);
	bench_ends_close(&e);
	bench_host_end(&h);
	if (rc < 0)
		fprintf(stderr, "vsock-bench: fairness (%s, %s flooder) failed: %s\n",
			base ? "baseline" : "vsock", flood ? "with" : "without", strerror(-rc));
	return rc;
}

int bench_run_fairness(struct bench_sut *s, const struct bench_opts *o, unsigned int rep)
{
	struct fair_out ow = { 0 }, os = { 0 }, bw = { 0 }, bs = { 0 };
	int rc;

	if (!bench_wanted(o, "fair"))
		return 0;
	rc = fair_once(s, o, rep % 2, true, rep % 2 ? &bw : &ow);
	rc = rc ? rc : fair_once(s, o, !(rep % 2), true, rep % 2 ? &ow : &bw);
	rc = rc ? rc : fair_once(s, o, false, false, &os);
	rc = rc ? rc : fair_once(s, o, true, false, &bs);
	if (rc < 0)
		return rc;
	bench_fig_add("fair_gbps", ow.gbps, bw.gbps);
	bench_fig_add("fair_gbps_solo", os.gbps, bs.gbps);
	bench_fig_add("fair_kept", os.gbps > 0 ? 100.0 * ow.gbps / os.gbps : 0,
		      bs.gbps > 0 ? 100.0 * bw.gbps / bs.gbps : 0);
	bench_fig_add("fair_rtt", ow.rtt, bw.rtt);
	bench_fig_add("fair_rtt_solo", os.rtt, bs.rtt);
	bench_fig_add("fair_flood", ow.flood_mps, bw.flood_mps);
	return 0;
}
