// SPDX-License-Identifier: MIT
/*
 * /proc readers for the leak checks of the integration suites (see
 * proc_watch.h). Nothing here changes the watched process.
 */
#include "proc_watch.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PW_STEP_MS 1

int pw_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	/* our own opendir fd shows up when watching ourselves */
	return pid == getpid() ? n - 1 : n;
}

int pw_memfd_maps(pid_t pid)
{
	char path[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "/memfd:"))
			n++;
	}
	fclose(f);
	return n;
}

/* The number after @key ("VmRSS:", "Threads:") in /proc/PID/status, or -errno. */
static long status_field(pid_t pid, const char *key)
{
	char path[64], line[256];
	long val = -ENOENT;
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) == 0 && sscanf(line + klen, "%ld", &val) == 1)
			break;
	}
	fclose(f);
	return val;
}

long pw_rss_kb(pid_t pid)
{
	return status_field(pid, "VmRSS:");
}

int pw_thread_count(pid_t pid)
{
	return (int)status_field(pid, "Threads:");
}

int pw_snap(pid_t pid, struct pw_snap *s)
{
	s->fds = pw_fd_count(pid);
	s->memfds = pw_memfd_maps(pid);
	s->rss_kb = pw_rss_kb(pid);
	if (s->fds < 0)
		return s->fds;
	if (s->memfds < 0)
		return s->memfds;
	return s->rss_kb < 0 ? (int)s->rss_kb : 0;
}

void pw_dump_fds(pid_t pid)
{
	char path[64], link[PATH_MAX + 64], target[PATH_MAX];
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
	}
	closedir(d);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pw_wait_back(pid_t pid, const struct pw_snap *want, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	int fds, memfds;

	for (;;) {
		fds = pw_fd_count(pid);
		memfds = pw_memfd_maps(pid);
		if (fds == want->fds && memfds == want->memfds)
			return 0;
		if (mono_ms() >= deadline)
			break;
		poll(NULL, 0, PW_STEP_MS);
	}
	fprintf(stderr, "proc_watch: pid %d holds %d fds (want %d) and %d memfd mappings "
		"(want %d)\n", (int)pid, fds, want->fds, memfds, want->memfds);
	pw_dump_fds(pid);
	return -ETIMEDOUT;
}

unsigned long pw_env_count(const char *name, unsigned long def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoul(v, &end, 10);
	return errno || *end ? def : n;
}
