// SPDX-License-Identifier: MIT
/*
 * vsock-bench: command line and the order of the runs (see bench.h).
 *
 *   vsock-bench --daemon PATH [--json FILE] [--repeats N] [--secs S]
 *               [--idle-secs S] [--idle-conns N] [--only PREFIX]
 *               [--vm-keys K=V,...] [--daemon-arg ARG]... [--cpus LIST] [--smoke]
 *   vsock-bench --daemon PATH --scale N [same options]
 *
 * One daemon with two VMs serves every traffic run (so its peak RSS covers
 * them all); the idle measurements start a fresh daemon each repetition.
 * --scale N runs only the scale figures (bench/scale.c): N VMs in one
 * daemon against a one-VM daemon.
 * --smoke is the CI mode: one short repetition of everything, which still
 * checks every byte and writes the JSON, and asserts nothing about speed.
 * Exit status: 0 when every run completed and checked out, 1 otherwise
 * (missed targets are reported, not failed: the machine decides those).
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_DAEMON_ARGS 16
/* The daemon's own defaults (256 KiB of credit, Linux's): what a new user gets. */
#define DEFAULT_VM_KEYS ""

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vsock-bench --daemon PATH [options]\n"
		"  --json FILE        also write the results as JSON\n"
		"  --repeats N        repetitions (median reported; default 5, max %u)\n"
		"  --secs S           length of each timed run (default 1.0)\n"
		"  --idle-secs S      idle CPU windows (default 3.0)\n"
		"  --idle-conns N     idle connections for the memory figure (default 10000)\n"
		"  --only PREFIX      only figures whose id starts with PREFIX (ID$: that one)\n"
		"  --vm-keys K=V,...  appended to each --vm spec of the daemon\n"
		"                     (default: none, the daemon's defaults)\n"
		"  --daemon-arg ARG   pass ARG to the daemon (repeatable)\n"
		"  --cpus LIST        pin every process (daemon, guest, host programs, the\n"
		"                     baseline's) to these CPUs, e.g. 0 or 0-1\n"
		"  --scale N          only the scale run: N VMs (2..%u) in one daemon, each\n"
		"                     with a front end, against a one-VM daemon\n"
		"  --smoke            CI mode: 1 short repetition, 200 idle connections\n"
		"  --verbose          each run's bytes and time, and the guest driver's\n"
		"                     refusals, on stderr\n",
		BENCH_MAX_REPEATS, BENCH_MAX_SCALE);
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_opt(struct bench_opts *o, int c, const char *arg, const char **dargs,
		     unsigned int *nd)
{
	double v = 0;
	int rc = 0;

	switch (c) {
	case 'd': o->daemon = arg; break;
	case 'j': o->json = arg; break;
	case 'o': o->only = arg; break;
	case 'k': o->vm_keys = arg; break;
	case 'c': o->cpus = arg; break;
	case 's': o->smoke = true; break;
	case 'v': o->verbose = true; tfe_verbosity = 2; break;
	case 'r': rc = parse_num(arg, 1, BENCH_MAX_REPEATS, &v); o->repeats = (unsigned int)v; break;
	case 't': rc = parse_num(arg, 0.01, 600, &o->secs); break;
	case 'i': rc = parse_num(arg, 0.01, 600, &o->idle_secs); break;
	case 'n': rc = parse_num(arg, 1, 60000, &v); o->idle_conns = (unsigned int)v; break;
	case 'S': rc = parse_num(arg, 2, BENCH_MAX_SCALE, &v); o->scale = (unsigned int)v; break;
	case 'a':
		if (*nd == MAX_DAEMON_ARGS)
			return -E2BIG;
		dargs[(*nd)++] = arg;
		break;
	default: return -EINVAL;
	}
	return rc;
}

static int parse_args(int argc, char **argv, struct bench_opts *o, const char **dargs)
{
	static const struct option lo[] = {
		{ "daemon", required_argument, NULL, 'd' }, { "json", required_argument, NULL, 'j' },
		{ "repeats", required_argument, NULL, 'r' }, { "secs", required_argument, NULL, 't' },
		{ "idle-secs", required_argument, NULL, 'i' },
		{ "idle-conns", required_argument, NULL, 'n' },
		{ "only", required_argument, NULL, 'o' },
		{ "daemon-arg", required_argument, NULL, 'a' },
		{ "vm-keys", required_argument, NULL, 'k' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "scale", required_argument, NULL, 'S' },
		{ "smoke", no_argument, NULL, 's' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	unsigned int nd = 0;
	int c;

	*o = (struct bench_opts){ .repeats = 5, .secs = 1.0, .idle_secs = 3.0,
				  .idle_conns = 10000, .vm_keys = DEFAULT_VM_KEYS,
				  .daemon_args = dargs };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (parse_opt(o, c, optarg, dargs, &nd) < 0) {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (o->smoke)
		*o = (struct bench_opts){ .daemon = o->daemon, .json = o->json, .only = o->only,
					  .repeats = 1, .secs = 0.1, .idle_secs = 0.2,
					  .idle_conns = 200, .smoke = true, .vm_keys = o->vm_keys,
					  .cpus = o->cpus, .verbose = o->verbose, .scale = o->scale,
					  .daemon_args = dargs };
	if (!o->daemon || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* --only X: ids starting with X, or X exactly when it ends in '$'. */
bool bench_wanted(const struct bench_opts *o, const char *prefix)
{
	size_t n = o->only ? strlen(o->only) : 0;

	if (!o->only)
		return true;
	if (n && o->only[n - 1] == '$')
		return strlen(prefix) == n - 1 && strncmp(prefix, o->only, n - 1) == 0;
	return strncmp(prefix, o->only, n) == 0 || strncmp(o->only, prefix, strlen(prefix)) == 0;
}

/* The idle test keeps thousands of sockets in each process. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int traffic(const struct bench_opts *o)
{
	struct bench_sut s;
	int rc = bench_sut_start(&s, o, 2, NULL);

	for (unsigned int rep = 0; rc == 0 && rep < o->repeats; rep++) {
		fprintf(stderr, "vsock-bench: repetition %u of %u (load %.2f)\n", rep + 1,
			o->repeats, bench_loadavg());
		rc = bench_run_streams(&s, o, rep);
		rc = rc ? rc : bench_run_rtt(&s, o, rep);
		rc = rc ? rc : bench_run_connect(&s, o, rep);
		rc = rc ? rc : (bench_wanted(o, "two_vm") ? bench_run_two_vms(&s, o, rep) : 0);
		rc = rc ? rc : bench_run_fairness(&s, o, rep);
	}
	if (rc == 0 && bench_wanted(o, "peak"))
		bench_record_peak(&s);
	s.failed = rc < 0;
	if (s.h.d.pid > 0 && bench_sut_stop(&s) < 0 && rc == 0)
		rc = -EIO;
	return rc;
}

int main(int argc, char **argv)
{
	const char *dargs[MAX_DAEMON_ARGS + 1] = { NULL };
	struct bench_opts o;
	double load;
	int rc;

	if (argc == 3 && strcmp(argv[1], "--host-role") == 0)
		return bench_host_main(atoi(argv[2]));
	/* a full tx ring is normal under load: keep the driver quiet unless asked */
	tfe_verbosity = 0;
	if (parse_args(argc, argv, &o, dargs) < 0)
		return 2;
	raise_fd_limit();
	/* before any child exists: they all inherit it */
	if (o.cpus && bench_pin(o.cpus) < 0) {
		fprintf(stderr, "vsock-bench: --cpus %s: not a usable CPU list\n", o.cpus);
		return 2;
	}
	if (bench_pat_init() < 0)
		return 1;
	/* a hang ends the run (and the daemon) instead of the CI job */
	bench_watchdog((unsigned int)(300 + o.repeats * (o.secs * 90 + o.idle_secs * 4 + 30) +
				      o.scale));
	load = bench_loadavg();
	if (o.scale) {
		rc = bench_run_scale(&o);
	} else {
		rc = traffic(&o);
		for (unsigned int rep = 0; rc == 0 && rep < o.repeats; rep++)
			rc = bench_run_idle(&o, rep);
	}
	if (bench_report(&o, load) < 0 && rc == 0)
		rc = -EIO;
	if (rc < 0)
		fprintf(stderr, "vsock-bench: FAILED: %s\n", strerror(-rc));
	return rc < 0;
}
