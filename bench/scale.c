// SPDX-License-Identifier: MIT
/*
 * Scale (--scale N): one daemon serving N VMs, measured against a one-VM
 * daemon started the same way in the same run (the "baseline" column).
 *
 * The N-VM daemon starts from a --config file holding N - N/10 VMs and
 * grows to N by "vm add" over its --control socket, so both ways of getting
 * VMs run at scale. Every VM then gets a front end: QEMU's set-up sequence
 * from the test front end, guest RAM as a memfd, the rx ring filled by the
 * guest driver; only VM 0's guest is ever driven afterwards. Figures:
 *   - start-up: from exec to the control socket (made after every VM's),
 *     wall time and the daemon's CPU time;
 *   - one "vm add", one front end attached (means over the VMs);
 *   - RSS, RssAnon, threads and descriptors per VM: (the N-VM daemon's
 *     figure - the one-VM daemon's) / (N - 1), without and with front ends;
 *   - CPU ticks over opts.idle_secs with every VM idle, front ends attached;
 *   - a 64 KiB-write stream each way through VM 0 while the others idle,
 *     against the same stream through the one-VM daemon, alternating.
 * The idle guests' RAM is only touched where the rings and the buffers'
 * descriptors are, so N of them fit a small machine.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCALE_START_MS 120000
#define SCALE_SETTLE_MS 500
#define SCALE_ANSWER_MAX 2048
#define SCALE_MAX_ARGS 40

struct scale_state {
	struct bench_proc p;
	int fds;
};

struct scale_daemon {
	struct bench_sut s;         /* the daemon, and VM 0's paths and guest */
	unsigned int n;             /* VMs it serves */
	struct uh_guest *idle;      /* guests of VMs 1..n-1 */
	char ctl[108], yaml[108];
	double start_ms, start_cpu_ms, add_ms, attach_ms;
	struct scale_state bare, attached;
};

static void vm_path(const struct scale_daemon *d, unsigned int i, const char *ext, char *out,
		    size_t cap)
{
	snprintf(out, cap, "%s/vm%u.%s", d->s.h.dir, i, ext);
}

static double ms_since(int64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e6;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)) != NULL)
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

static int read_state(const struct scale_daemon *d, struct scale_state *st)
{
	int rc = bench_proc_read(d->s.h.d.pid, &st->p);

	st->fds = rc < 0 ? rc : count_fds(d->s.h.d.pid);
	return st->fds < 0 ? st->fds : 0;
}

/* ---- the configuration file and "vm add" ---------------------------------------------- */

/* opts.vm_keys ("k=v,k=v") as YAML keys of one entry. */
static void keys_yaml(FILE *f, const char *keys)
{
	while (*keys) {
		size_t n = strcspn(keys, ","), k = strcspn(keys, "=");

		if (k < n)
			fprintf(f, "    %.*s: %.*s\n", (int)k, keys, (int)(n - k - 1), keys + k + 1);
		keys += n + (keys[n] == ',');
	}
}

static int write_config(const struct scale_daemon *d, const struct bench_opts *o,
			unsigned int nvms)
{
	FILE *f = fopen(d->yaml, "w");
	char sock[108], uds[108];

	if (!f)
		return -errno;
	fputs("vms:\n", f);
	for (unsigned int i = 0; i < nvms; i++) {
		vm_path(d, i, "sock", sock, sizeof(sock));
		vm_path(d, i, "vsock", uds, sizeof(uds));
		/* a loaded machine can leave the guest unscheduled: see sut.c */
		fprintf(f, "  - guest_cid: %u\n    socket: %s\n    uds_path: %s\n"
			"    connect_timeout_ms: 15000\n", 3 + i, sock, uds);
		keys_yaml(f, o->vm_keys);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

/* Read the daemon's one-line answer until it closes. Return: 0 for "ok": true, or -errno. */
static int control_answer(int fd, const char *request)
{
	char ans[SCALE_ANSWER_MAX];
	size_t got = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t k;

		if (poll(&p, 1, BENCH_TIMEOUT_MS) != 1)
			return -ETIMEDOUT;
		k = read(fd, ans + got, sizeof(ans) - 1 - got);
		if (k < 0)
			return -errno;
		got += (size_t)k;
		if (k == 0 || got == sizeof(ans) - 1)
			break;
	}
	ans[got] = '\0';
	if (strstr(ans, "\"ok\":true") || strstr(ans, "\"ok\": true"))
		return 0;
	fprintf(stderr, "vsock-bench: %s: %s\n", request, ans);
	return -EPROTO;
}

static int vm_add(const struct scale_daemon *d, const struct bench_opts *o, unsigned int i)
{
	char sock[108], uds[108], req[600];
	int fd = bench_connect_to(d->ctl), rc;

	if (fd < 0)
		return fd;
	vm_path(d, i, "sock", sock, sizeof(sock));
	vm_path(d, i, "vsock", uds, sizeof(uds));
	snprintf(req, sizeof(req), "vm add socket=%s,uds-path=%s,guest-cid=%u,"
		 "connect-timeout-ms=15000%s%s\n", sock, uds, 3 + i, o->vm_keys[0] ? "," : "",
		 o->vm_keys);
	rc = write(fd, req, strlen(req)) == (ssize_t)strlen(req) ? 0 : -EIO;
	if (rc == 0)
		rc = control_answer(fd, "vm add");
	close(fd);
	return rc;
}

/* ---- one daemon ------------------------------------------------------------------------- */

static int daemon_up(struct scale_daemon *d, const struct bench_opts *o)
{
	char *argv[SCALE_MAX_ARGS];
	unsigned int na = 0;
	int64_t t0;
	int rc;

	argv[na++] = (char *)o->daemon;
	argv[na++] = "--log-level";
	argv[na++] = "warn";
	argv[na++] = "--config";
	argv[na++] = d->yaml;
	argv[na++] = "--control";
	argv[na++] = d->ctl;
	for (unsigned int i = 0; o->daemon_args && o->daemon_args[i] && na < SCALE_MAX_ARGS - 1; i++)
		argv[na++] = (char *)o->daemon_args[i];
	argv[na] = NULL;
	t0 = bench_now_ns();
	rc = tfe_daemon_start(&d->s.h.d, argv, d->ctl, d->s.h.log, SCALE_START_MS);
	d->start_ms = ms_since(t0);
	if (rc == 0) {
		struct bench_proc p;

		bench_watch_pid(0, d->s.h.d.pid);
		/* wall time on a loaded machine is mostly waiting for a CPU: CPU time too */
		rc = bench_proc_read(d->s.h.d.pid, &p);
		d->start_cpu_ms = (double)p.ticks * 1000.0 / (double)bench_clk_tck();
	}
	return rc;
}

/* The daemon from a file with the first n - n/10 VMs, then "vm add" for the rest. */
static int scale_start(struct scale_daemon *d, const struct bench_opts *o, unsigned int n)
{
	unsigned int nfile = n - n / 10;
	int64_t t0;
	int rc;

	memset(d, 0, sizeof(*d));
	d->n = n;
	strcpy(d->s.h.dir, "/tmp/vsock-scale-XXXXXX");
	if (!mkdtemp(d->s.h.dir))
		return -errno;
	snprintf(d->s.h.log, sizeof(d->s.h.log), "%s/daemon.log", d->s.h.dir);
	snprintf(d->ctl, sizeof(d->ctl), "%s/control.sock", d->s.h.dir);
	snprintf(d->yaml, sizeof(d->yaml), "%s/vms.yaml", d->s.h.dir);
	d->s.h.nvms = 1;
	d->s.h.cid[0] = 3;
	vm_path(d, 0, "sock", d->s.h.sock[0], sizeof(d->s.h.sock[0]));
	vm_path(d, 0, "vsock", d->s.h.uds[0], sizeof(d->s.h.uds[0]));
	d->s.next_port = 10000;
	rc = write_config(d, o, nfile);
	if (rc == 0)
		rc = daemon_up(d, o);
	t0 = bench_now_ns();
	for (unsigned int i = nfile; rc == 0 && i < n; i++)
		rc = vm_add(d, o, i);
	if (n > nfile)
		d->add_ms = ms_since(t0) / (n - nfile);
	if (rc < 0)
		fprintf(stderr, "vsock-bench: scale: starting a daemon with %u VMs: %s\n", n,
			strerror(-rc));
	return rc;
}

/* A front end on every VM: VM 0's as the traffic runs', the others alike but never driven. */
static int scale_attach(struct scale_daemon *d)
{
	struct uh one;
	int64_t t0 = bench_now_ns();
	int rc;

	d->idle = calloc(d->n, sizeof(*d->idle));
	if (!d->idle)
		return -ENOMEM;
	rc = bench_guest_open(&d->s.g[0], &d->s.h, 0);
	d->s.nvms = rc == 0;
	memset(&one, 0, sizeof(one));
	for (unsigned int i = 1; rc == 0 && i < d->n; i++) {
		one.cid[0] = 3 + i;
		vm_path(d, i, "sock", one.sock[0], sizeof(one.sock[0]));
		rc = bench_guest_open(&d->idle[i], &one, 0);
	}
	d->attach_ms = ms_since(t0) / d->n;
	if (rc < 0)
		fprintf(stderr, "vsock-bench: scale: attaching %u front ends: %s\n", d->n,
			strerror(-rc));
	return rc;
}

static int scale_stop(struct scale_daemon *d, bool failed)
{
	for (unsigned int i = 1; d->idle && i < d->n; i++)
		uh_guest_close(&d->idle[i]);
	free(d->idle);
	d->idle = NULL;
	d->s.failed = failed;
	return bench_sut_stop(&d->s);
}

/* ---- the figures ---------------------------------------------------------------------------- */

static double per_vm(double many, double one, unsigned int n)
{
	return (many - one) / (double)(n - 1);
}

static void record_states(const struct scale_daemon *m, const struct scale_daemon *one)
{
	const struct scale_state *mb = &m->bare, *ma = &m->attached;
	const struct scale_state *ob = &one->bare, *oa = &one->attached;
	unsigned int n = m->n;

	bench_fig_add("scale_start", m->start_ms, one->start_ms);
	bench_fig_add("scale_start_cpu", m->start_cpu_ms, one->start_cpu_ms);
	bench_fig_add("scale_add", m->add_ms, -1);
	bench_fig_add("scale_attach", m->attach_ms, one->attach_ms);
	bench_fig_add("scale_rss_vm", per_vm((double)mb->p.rss_kb, (double)ob->p.rss_kb, n), -1);
	bench_fig_add("scale_rss_vm_fe", per_vm((double)ma->p.rss_kb, (double)oa->p.rss_kb, n), -1);
	bench_fig_add("scale_anon_vm_fe", per_vm((double)ma->p.anon_kb, (double)oa->p.anon_kb, n),
		      -1);
	bench_fig_add("scale_threads_vm", per_vm(ma->p.threads, oa->p.threads, n), -1);
	bench_fig_add("scale_fds_vm", per_vm(ma->fds, oa->fds, n), -1);
	printf("scale: %u VMs: RSS %llu KiB bare, %llu KiB with front ends (RssAnon %llu KiB), "
	       "%u threads, %d fds; one VM: RSS %llu / %llu KiB (RssAnon %llu KiB), %u threads, "
	       "%d fds\n", n, (unsigned long long)mb->p.rss_kb, (unsigned long long)ma->p.rss_kb,
	       (unsigned long long)ma->p.anon_kb, ma->p.threads, ma->fds,
	       (unsigned long long)ob->p.rss_kb, (unsigned long long)oa->p.rss_kb,
	       (unsigned long long)oa->p.anon_kb, oa->p.threads, oa->fds);
}

/* Settle, then the state of both daemons. */
static int read_both(struct scale_daemon *m, struct scale_daemon *one, bool attached)
{
	int rc;

	poll(NULL, 0, SCALE_SETTLE_MS);
	rc = read_state(m, attached ? &m->attached : &m->bare);
	return rc ? rc : read_state(one, attached ? &one->attached : &one->bare);
}

/* CPU ticks of both daemons over one idle window. */
static int idle_window(struct scale_daemon *m, struct scale_daemon *one, const struct bench_opts *o)
{
	struct bench_proc m0, m1, o0, o1;
	int rc = bench_proc_read(m->s.h.d.pid, &m0);

	rc = rc ? rc : bench_proc_read(one->s.h.d.pid, &o0);
	poll(NULL, 0, (int)(o->idle_secs * 1000));
	rc = rc ? rc : bench_proc_read(m->s.h.d.pid, &m1);
	rc = rc ? rc : bench_proc_read(one->s.h.d.pid, &o1);
	if (rc == 0)
		bench_fig_add("scale_idle_cpu", (double)(m1.ticks - m0.ticks),
			      (double)(o1.ticks - o0.ticks));
	return rc;
}

/* One repetition of the streams, the two daemons in alternating order. */
static int streams(struct scale_daemon *m, struct scale_daemon *one, const struct bench_opts *o,
		   unsigned int rep)
{
	for (int dir = 0; dir < 2; dir++) {
		bool g2h = dir == 0;
		double gm = 0, g1 = 0;
		int rc;

		if (!bench_wanted(o, g2h ? "scale_g2h" : "scale_h2g"))
			continue;
		if (rep % 2 == 0) {
			rc = bench_stream_one(&m->s, o, g2h, &gm);
			rc = rc ? rc : bench_stream_one(&one->s, o, g2h, &g1);
		} else {
			rc = bench_stream_one(&one->s, o, g2h, &g1);
			rc = rc ? rc : bench_stream_one(&m->s, o, g2h, &gm);
		}
		if (rc < 0)
			return rc;
		bench_fig_add(g2h ? "scale_g2h" : "scale_h2g", gm, g1);
	}
	return 0;
}

static int scale_measure(struct scale_daemon *m, struct scale_daemon *one,
			 const struct bench_opts *o)
{
	int rc = read_both(m, one, false);

	rc = rc ? rc : scale_attach(one);
	rc = rc ? rc : scale_attach(m);
	rc = rc ? rc : read_both(m, one, true);
	if (rc == 0)
		record_states(m, one);
	rc = rc ? rc : idle_window(m, one, o);
	for (unsigned int rep = 0; rc == 0 && rep < o->repeats; rep++) {
		fprintf(stderr, "vsock-bench: scale: repetition %u of %u (load %.2f)\n", rep + 1,
			o->repeats, bench_loadavg());
		rc = streams(m, one, o, rep);
	}
	return rc;
}

int bench_run_scale(const struct bench_opts *o)
{
	static struct scale_daemon many, one;
	int rc = scale_start(&one, o, 1);

	rc = rc ? rc : scale_start(&many, o, o->scale);
	if (rc == 0)
		fprintf(stderr, "vsock-bench: scale: %u VMs up in %.0f ms, %.1f ms per vm add\n",
			o->scale, many.start_ms, many.add_ms);
	rc = rc ? rc : scale_measure(&many, &one, o);
	if (scale_stop(&many, rc < 0) < 0 && rc == 0)
		rc = -EIO;
	if (scale_stop(&one, rc < 0) < 0 && rc == 0)
		rc = -EIO;
	return rc;
}
