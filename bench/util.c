// SPDX-License-Identifier: MIT
/*
 * Benchmark utilities: the data pattern, clocks, and /proc readings.
 *
 * Pattern: a table of BENCH_PAT_PERIOD pseudo-random bytes (a prime
 * length, so no power-of-two block that is lost, repeated or misplaced
 * lines up with the period) plus BENCH_IO_MAX bytes of wrap-around slack,
 * so the bytes of any read are one contiguous memcmp() away. Each
 * connection's stream starts at its own offset in the table, so bytes that
 * reach the wrong connection are caught too. memcmp() keeps checking far
 * faster than the data path, so the check does not limit what is measured.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PAT_PERIOD 1048573u
#define STREAM_SPACING 104729u  /* a prime: streams start far apart in the table */

static uint8_t *pat;

int bench_pat_init(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	if (pat)
		return 0;
	pat = malloc(BENCH_PAT_PERIOD + BENCH_IO_MAX);
	if (!pat)
		return -ENOMEM;
	for (uint32_t i = 0; i < BENCH_PAT_PERIOD; i++) {
		/* xorshift64*: cheap, and no short cycles within the table */
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		pat[i] = (uint8_t)((x * 0x2545f4914f6cdd1dull) >> 56);
	}
	memcpy(pat + BENCH_PAT_PERIOD, pat, BENCH_IO_MAX);
	return 0;
}

const uint8_t *bench_pat_at(unsigned int conn, uint64_t off)
{
	return pat + (off + (uint64_t)conn * STREAM_SPACING) % BENCH_PAT_PERIOD;
}

bool bench_pat_ok(unsigned int conn, uint64_t off, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		size_t k = n < BENCH_IO_MAX ? n : BENCH_IO_MAX;

		if (memcmp(p, bench_pat_at(conn, off), k) != 0)
			return false;
		p += k;
		off += k;
		n -= k;
	}
	return true;
}

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t bench_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

long bench_switches(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_nvcsw : 0;
}

long bench_clk_tck(void)
{
	long t = sysconf(_SC_CLK_TCK);

	return t > 0 ? t : 100;
}

/* utime + stime from a /proc stat line; the comm field may hold spaces. */
static int stat_ticks(const char *path, long *ticks)
{
	char buf[1024];
	unsigned long ut, st;
	FILE *f = fopen(path, "r");
	size_t n;
	char *p;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* after "pid (comm)": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			 &st) != 2)
		return -EPROTO;
	*ticks = (long)(ut + st);
	return 0;
}

static int status_kb(pid_t pid, struct bench_proc *p)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long v;

		if (sscanf(line, "VmRSS: %llu", &v) == 1)
			p->rss_kb = v;
		else if (sscanf(line, "VmHWM: %llu", &v) == 1)
			p->hwm_kb = v;
		else if (sscanf(line, "RssAnon: %llu", &v) == 1)
			p->anon_kb = v;
		else if (sscanf(line, "Threads: %llu", &v) == 1)
			p->threads = (unsigned int)v;
	}
	fclose(f);
	return 0;
}

int bench_proc_read(pid_t pid, struct bench_proc *p)
{
	char path[64];
	int rc;

	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	rc = stat_ticks(path, &p->ticks);
	return rc < 0 ? rc : status_kb(pid, p);
}

int bench_thread_ticks(pid_t pid, long *ticks, unsigned int max)
{
	char path[300];
	struct dirent *de;
	unsigned int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while (n < max && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, de->d_name);
		if (stat_ticks(path, &ticks[n]) == 0)
			n++;
	}
	closedir(d);
	return (int)n;
}

double bench_loadavg(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

/* One "N" or "N-M" of a CPU list into @set. Return: 0 or -EINVAL. */
static int pin_range(const char *s, size_t len, cpu_set_t *set)
{
	char item[32], *end;
	unsigned long lo, hi;

	if (len == 0 || len >= sizeof(item))
		return -EINVAL;
	memcpy(item, s, len);
	item[len] = '\0';
	lo = strtoul(item, &end, 10);
	hi = lo;
	if (end != item && *end == '-')
		hi = strtoul(end + 1, &end, 10);
	if (end == item || *end || lo > hi || hi >= CPU_SETSIZE)
		return -EINVAL;
	for (unsigned long c = lo; c <= hi; c++)
		CPU_SET(c, set);
	return 0;
}

int bench_pin(const char *list)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (const char *p = list;;) {
		size_t len = strcspn(p, ",");

		if (pin_range(p, len, &set) < 0)
			return -EINVAL;
		if (!p[len])
			break;
		p += len + 1;
	}
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	return 0;
}
