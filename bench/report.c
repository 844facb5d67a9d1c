// SPDX-License-Identifier: MIT
/*
 * Figures, medians, the table on stdout and the JSON file.
 *
 * Each figure keeps every repetition's value for ours and the baseline.
 * Reported: the median of each, and the ratio ours/baseline as the median
 * of the per-repetition ratios (each pair ran back to back, so the ratio of
 * a pair is less exposed to the machine's load drifting than the ratio of
 * two medians). A target is checked against that median.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAX_FIGS 48u

struct fig_meta {
	const char *id, *label, *unit;
	enum bench_goal goal;
	double target;
	const char *note;
};

static const char base_host[] = "baseline: the host-role process of the plain socket pair";
static const char scale_base[] = "ours: the daemon with --scale N VMs; baseline: a one-VM daemon";
static const char scale_marginal[] =
	"(the N-VM daemon's figure - the one-VM daemon's) / (N - 1); no baseline";

static const struct fig_meta metas[] = {
	{ "g2h_4k_1", "stream guest->host, 4 KiB writes, 1 conn", "GB/s", GOAL_RATIO_MIN, 1.2 },
	{ "g2h_64k_1", "stream guest->host, 64 KiB writes, 1 conn", "GB/s", GOAL_RATIO_MIN, 0.8 },
	{ "g2h_4k_16", "stream guest->host, 4 KiB writes, 16 conns", "GB/s" },
	{ "g2h_64k_16", "stream guest->host, 64 KiB writes, 16 conns", "GB/s" },
	{ "h2g_4k_1", "stream host->guest, 4 KiB writes, 1 conn", "GB/s" },
	{ "h2g_64k_1", "stream host->guest, 64 KiB writes, 1 conn", "GB/s", GOAL_RATIO_MIN, 1.5 },
	{ "h2g_4k_16", "stream host->guest, 4 KiB writes, 16 conns", "GB/s" },
	{ "h2g_64k_16", "stream host->guest, 64 KiB writes, 16 conns", "GB/s" },
	{ "rtt_p50", "1-byte round trip guest->host->guest, median", "us", GOAL_RATIO_MAX, 2.0 },
	{ "rtt_p99", "1-byte round trip guest->host->guest, p99", "us" },
	{ "conn_guest", "connection set-up, guest-initiated", "conn/s", GOAL_RATIO_MIN, 0.5 },
	{ "conn_host", "connection set-up, host-initiated", "conn/s", GOAL_RATIO_MIN, 0.5 },
	{ "cpu_daemon_g2h", "daemon CPU per GB, guest->host 64 KiB", "s/GB", GOAL_NONE, 0,
	  "baseline: CPU of both processes of the plain socket pair" },
	{ "cpu_daemon_h2g", "daemon CPU per GB, host->guest 64 KiB", "s/GB", GOAL_NONE, 0,
	  "baseline: CPU of both processes of the plain socket pair" },
	{ "cpu_total_g2h", "all processes' CPU per GB, guest->host 64 KiB", "s/GB" },
	{ "cpu_total_h2g", "all processes' CPU per GB, host->guest 64 KiB", "s/GB" },
	{ "peak_rss", "daemon peak RSS (VmHWM) after the traffic runs", "MiB", GOAL_NONE, 0,
	  base_host },
	{ "idle_rss_conn", "daemon RSS per idle connection", "bytes", GOAL_OURS_MAX, 4096,
	  base_host },
	{ "idle_cpu", "idle daemon CPU, no connections, per window", "ticks", GOAL_OURS_MAX, 1,
	  base_host },
	{ "idle_cpu_conns", "idle daemon CPU, idle connections open, per window", "ticks",
	  GOAL_OURS_MAX, 1, base_host },
	{ "two_vm_gbps", "two VMs streaming at once, 64 KiB, aggregate", "GB/s" },
	{ "two_vm_cpu", "daemon CPU while two VMs stream (>100: 2nd core used)", "%",
	  GOAL_OURS_MIN, 100, "no baseline: the plain pairs have no daemon" },
	{ "fair_gbps", "fairness: 14 streams with a 64-byte flooder", "GB/s" },
	{ "fair_gbps_solo", "fairness: 14 streams without the flooder", "GB/s" },
	{ "fair_kept", "fairness: streams' throughput kept under the flood", "%" },
	{ "fair_rtt", "fairness: round trip median with the flooder", "us" },
	{ "fair_rtt_solo", "fairness: round trip median without the flooder", "us" },
	{ "fair_flood", "fairness: flooder's 64-byte writes delivered", "msg/s" },
	{ "scale_start", "scale: start-up, --config file to control socket", "ms", GOAL_NONE, 0,
	  scale_base },
	{ "scale_start_cpu", "scale: start-up, the daemon's CPU time", "ms", GOAL_NONE, 0,
	  scale_base },
	{ "scale_add", "scale: one vm-add request over --control", "ms", GOAL_NONE, 0, scale_base },
	{ "scale_attach", "scale: one front end attached (QEMU's set-up)", "ms", GOAL_NONE, 0,
	  scale_base },
	{ "scale_rss_vm", "scale: daemon RSS per idle VM, no front end", "KiB", GOAL_OURS_MAX, 64,
	  scale_marginal },
	{ "scale_rss_vm_fe", "scale: daemon RSS per idle VM, front end attached", "KiB",
	  GOAL_OURS_MAX, 256, scale_marginal },
	{ "scale_anon_vm_fe", "scale: daemon RssAnon per idle VM, front end attached", "KiB",
	  GOAL_NONE, 0, scale_marginal },
	{ "scale_threads_vm", "scale: daemon threads per VM", "threads", GOAL_NONE, 0,
	  scale_marginal },
	{ "scale_fds_vm", "scale: daemon descriptors per VM, front end attached", "fds", GOAL_NONE,
	  0, scale_marginal },
	{ "scale_idle_cpu", "scale: daemon CPU, every VM idle with a front end, per window",
	  "ticks", GOAL_OURS_MAX, 0, scale_base },
	{ "scale_g2h", "scale: 1 VM streams guest->host 64 KiB, the others idle", "GB/s",
	  GOAL_RATIO_MIN, 0.9, scale_base },
	{ "scale_h2g", "scale: 1 VM streams host->guest 64 KiB, the others idle", "GB/s",
	  GOAL_RATIO_MIN, 0.9, scale_base },
};

static struct bench_fig figs[MAX_FIGS];
static unsigned int nfigs;

static const struct fig_meta *meta_of(const char *id)
{
	for (size_t i = 0; i < sizeof(metas) / sizeof(metas[0]); i++)
		if (strcmp(metas[i].id, id) == 0)
			return &metas[i];
	return NULL;
}

struct bench_fig *bench_fig_find(const char *id)
{
	const struct fig_meta *m = meta_of(id);
	struct bench_fig *f;

	for (unsigned int i = 0; i < nfigs; i++)
		if (strcmp(figs[i].id, id) == 0)
			return &figs[i];
	if (nfigs == MAX_FIGS)
		return NULL;
	f = &figs[nfigs++];
	*f = (struct bench_fig){ .id = m ? m->id : id, .label = m ? m->label : id,
				 .unit = m ? m->unit : "" };
	if (m) {
		f->goal = m->goal;
		f->target = m->target;
		f->note = m->note;
	}
	return f;
}

void bench_fig_add(const char *id, double ours, double base)
{
	struct bench_fig *f = bench_fig_find(id);

	if (!f || f->n_ours == BENCH_MAX_REPEATS)
		return;
	f->ours[f->n_ours++] = ours;
	if (base >= 0)
		f->base[f->n_base++] = base;
}

/* ---- statistics ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double bench_quantile(double *v, unsigned int n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	k = (size_t)(q * (double)(n - 1) + 0.5);
	return v[k < n ? k : n - 1];
}

double bench_median(const double *v, unsigned int n)
{
	double tmp[BENCH_MAX_REPEATS];

	if (n == 0 || n > BENCH_MAX_REPEATS)
		return 0;
	memcpy(tmp, v, n * sizeof(*v));
	qsort(tmp, n, sizeof(*tmp), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

/* Median of the per-repetition ratios; NAN without a usable baseline. */
static double fig_ratio(const struct bench_fig *f)
{
	double r[BENCH_MAX_REPEATS];
	unsigned int n = 0;

	for (unsigned int i = 0; i < f->n_ours && i < f->n_base; i++)
		if (f->base[i] > 0)
			r[n++] = f->ours[i] / f->base[i];
	return n ? bench_median(r, n) : NAN;
}

/* Return: 1 met, 0 missed, -1 no target. */
static int fig_met(const struct bench_fig *f)
{
	double ours = bench_median(f->ours, f->n_ours), ratio = fig_ratio(f);

	switch (f->goal) {
	case GOAL_RATIO_MIN:
		return !isnan(ratio) && ratio >= f->target;
	case GOAL_RATIO_MAX:
		return !isnan(ratio) && ratio <= f->target;
	case GOAL_OURS_MAX:
		return ours <= f->target;
	case GOAL_OURS_MIN:
		return ours >= f->target;
	case GOAL_NONE:
		break;
	}
	return -1;
}

static const char *goal_text(const struct bench_fig *f, char *buf, size_t cap)
{
	switch (f->goal) {
	case GOAL_RATIO_MIN:
		snprintf(buf, cap, "ratio >= %g", f->target);
		break;
	case GOAL_RATIO_MAX:
		snprintf(buf, cap, "ratio <= %g", f->target);
		break;
	case GOAL_OURS_MAX:
		snprintf(buf, cap, "<= %g", f->target);
		break;
	case GOAL_OURS_MIN:
		snprintf(buf, cap, ">= %g", f->target);
		break;
	case GOAL_NONE:
		buf[0] = '\0';
		break;
	}
	return buf;
}

/* ---- the table --------------------------------------------------------------------------- */

static void print_table(const struct bench_opts *o)
{
	char goal[32];

	printf("\nvsock-bench: medians of %u repetition%s, %.2f s per timed run, %s%s\n",
	       o->repeats, o->repeats == 1 ? "" : "s", o->secs, o->cpus ? "pinned to CPUs " : "unpinned",
	       o->cpus ? o->cpus : "");
	printf("%-56s %-7s %11s %11s %7s  %s\n", "figure", "unit", "ours", "baseline", "ratio",
	       "target");
	for (unsigned int i = 0; i < nfigs; i++) {
		const struct bench_fig *f = &figs[i];
		double ratio = fig_ratio(f);
		int met = fig_met(f);
		char b[24] = "-", r[16] = "-";

		if (f->n_base)
			snprintf(b, sizeof(b), "%11.4g", bench_median(f->base, f->n_base));
		if (!isnan(ratio))
			snprintf(r, sizeof(r), "%7.3f", ratio);
		printf("%-56s %-7s %11.4g %11s %7s  %s%s\n", f->label, f->unit,
		       bench_median(f->ours, f->n_ours), b, r, goal_text(f, goal, sizeof(goal)),
		       met < 0 ? "" : met ? " met" : " MISSED");
	}
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.6g", v);
}

static void json_list(FILE *f, const double *v, unsigned int n)
{
	fputc('[', f);
	for (unsigned int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		json_num(f, v[i]);
	}
	fputc(']', f);
}

static void json_fig(FILE *f, const struct bench_fig *g, bool last)
{
	char goal[32];
	int met = fig_met(g);

	fprintf(f, "    {\"id\": \"%s\", \"label\": \"%s\", \"unit\": \"%s\",\n", g->id, g->label,
		g->unit);
	fputs("     \"ours\": ", f);
	json_num(f, bench_median(g->ours, g->n_ours));
	fputs(", \"baseline\": ", f);
	json_num(f, g->n_base ? bench_median(g->base, g->n_base) : NAN);
	fputs(", \"ratio\": ", f);
	json_num(f, fig_ratio(g));
	fprintf(f, ", \"target\": \"%s\", \"met\": %s,\n", goal_text(g, goal, sizeof(goal)),
		met < 0 ? "null" : met ? "true" : "false");
	if (g->note)
		fprintf(f, "     \"note\": \"%s\",\n", g->note);
	fputs("     \"ours_runs\": ", f);
	json_list(f, g->ours, g->n_ours);
	fputs(", \"baseline_runs\": ", f);
	json_list(f, g->base, g->n_base);
	fprintf(f, "}%s\n", last ? "" : ",");
}

static void json_head(FILE *f, const struct bench_opts *o, double load_start)
{
	struct utsname u;
	char when[32];
	time_t t = time(NULL);

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	fprintf(f, "{\n  \"tool\": \"vsock-bench\",\n  \"date\": \"%s\",\n", when);
	fprintf(f, "  \"machine\": {\"cpus\": %ld, \"kernel\": \"%s\", \"load1_start\": %.2f, "
		"\"load1_end\": %.2f},\n", sysconf(_SC_NPROCESSORS_ONLN), u.release, load_start,
		bench_loadavg());
	fprintf(f, "  \"config\": {\"repeats\": %u, \"secs\": %g, \"idle_secs\": %g, "
		"\"idle_conns\": %u, \"smoke\": %s, \"cpus\": \"%s\"},\n", o->repeats, o->secs,
		o->idle_secs, o->idle_conns, o->smoke ? "true" : "false", o->cpus ? o->cpus : "");
}

/* Read the file back: a truncated or missing one fails the run. */
static int json_verify(const char *path)
{
	static char buf[1 << 18];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (n < 2 || buf[0] != '{' || strcmp(buf + n - 2, "}\n") != 0)
		return -EPROTO;
	for (unsigned int i = 0; i < nfigs; i++)
		if (!strstr(buf, figs[i].id))
			return -EPROTO;
	return 0;
}

static int write_json(const struct bench_opts *o, double load_start)
{
	FILE *f = fopen(o->json, "w");

	if (!f)
		return -errno;
	json_head(f, o, load_start);
	fputs("  \"figures\": [\n", f);
	for (unsigned int i = 0; i < nfigs; i++)
		json_fig(f, &figs[i], i + 1 == nfigs);
	fputs("  ]\n}\n", f);
	if (fclose(f) != 0)
		return -errno;
	return json_verify(o->json);
}

int bench_report(const struct bench_opts *o, double load_start)
{
	int rc = 0;

	print_table(o);
	printf("load average (1 min): %.2f at start, %.2f at end, %ld CPUs\n", load_start,
	       bench_loadavg(), sysconf(_SC_NPROCESSORS_ONLN));
	if (o->json) {
		rc = write_json(o, load_start);
		if (rc < 0)
			fprintf(stderr, "vsock-bench: writing %s: %s\n", o->json, strerror(-rc));
		else
			printf("results written to %s\n", o->json);
	}
	return rc;
}
