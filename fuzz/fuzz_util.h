/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the fuzz targets (one translation unit each, so
 * everything here is static):
 *
 * - a cursor that takes little-endian values off the fuzzer's bytes; when
 *   the input runs out it yields zeros, so every byte string is a valid
 *   program for a target and no input is rejected for its length;
 * - FZ_CHECK(): the harness's own invariants. A failed check prints why and
 *   aborts, which libFuzzer and the replay driver both report as a crash.
 *   These check what the code under test promises, never peer input;
 * - fd and mapping accounting, to prove a target released what it took.
 *
 * Messages go to a copy of stderr taken at start-up: fuzz runs close
 * stderr (libFuzzer -close_fd_mask=2) to silence the daemon's own log
 * lines, which every refused input would otherwise print.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct fz_in {
	const uint8_t *p;
	size_t n;
};

/**
 * LLVMFuzzerTestOneInput() - run one input (the entry point libFuzzer and
 * driver.c call; each target defines it).
 * @data: the input
 * @size: its length
 *
 * Return: 0, as libFuzzer requires; a broken invariant aborts instead.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fz_report_fd = 2;

/*
 * Keep a copy of stderr for check failures. A constructor, so it runs
 * before libFuzzer's main() closes stderr, in every target.
 */
__attribute__((constructor)) static void fz_init(void)
{
	int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);

	if (fd >= 0)
		fz_report_fd = fd;
}

static inline __attribute__((noreturn, format(printf, 3, 4))) void
fz_fail(const char *file, int line, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "FUZZ CHECK FAILED %s:%d: ", file, line);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(fz_report_fd, buf, (size_t)n) < 0)
		abort();
	abort();
}

/* Abort with a message unless @cond holds. */
#define FZ_CHECK(cond, ...)                                         \
	do {                                                        \
		if (!(cond))                                        \
			fz_fail(__FILE__, __LINE__, __VA_ARGS__);   \
	} while (0)

static inline bool fz_empty(const struct fz_in *in)
{
	return in->n == 0;
}

/* Up to @len bytes straight from the input; *@got says how many. */
static inline const uint8_t *fz_take(struct fz_in *in, size_t len, size_t *got)
{
	const uint8_t *p = in->p;

	*got = len < in->n ? len : in->n;
	in->p += *got;
	in->n -= *got;
	return p;
}

/* @len bytes into @dst, zero-filled past the end of the input. */
static inline void fz_bytes(struct fz_in *in, void *dst, size_t len)
{
	size_t got;
	const uint8_t *p = fz_take(in, len, &got);

	if (got)
		memcpy(dst, p, got);
	memset((uint8_t *)dst + got, 0, len - got);
}

static inline uint64_t fz_le(struct fz_in *in, unsigned int bytes)
{
	uint8_t b[8];
	uint64_t v = 0;

	fz_bytes(in, b, bytes);
	for (unsigned int i = bytes; i-- > 0;)
		v = v << 8 | b[i];
	return v;
}

static inline uint8_t fz_u8(struct fz_in *in)
{
	return (uint8_t)fz_le(in, 1);
}

static inline uint16_t fz_u16(struct fz_in *in)
{
	return (uint16_t)fz_le(in, 2);
}

static inline uint32_t fz_u32(struct fz_in *in)
{
	return (uint32_t)fz_le(in, 4);
}

static inline uint64_t fz_u64(struct fz_in *in)
{
	return fz_le(in, 8);
}

/*
 * Open fds of this process, pipes aside: the sanitizers' symbolizer talks
 * to its helper over pipes it opens whenever libFuzzer names a newly
 * covered function, and nothing under test ever makes a pipe.
 */
static inline int fz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	FZ_CHECK(d, "cannot open /proc/self/fd");
	while ((e = readdir(d))) {
		char path[300], target[64];
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		if (strncmp(target, "pipe:", 5) != 0)
			n++;
	}
	closedir(d);
	/* the directory stream's own fd */
	return n - 1;
}

/* Abort unless exactly @want fds are open, listing them when not. */
static inline void fz_check_fds(int want)
{
	DIR *d;
	struct dirent *e;
	char path[300], target[256], line[600];
	int n;

	if (fz_count_fds() == want)
		return;
	d = opendir("/proc/self/fd");
	while (d && (e = readdir(d))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		n = snprintf(line, sizeof(line), "  fd %s -> %s\n", e->d_name, target);
		if (n > 0 && write(fz_report_fd, line, (size_t)n) < 0)
			break;
	}
	if (d)
		closedir(d);
	fz_fail(__FILE__, __LINE__, "%d fds open, expected %d", fz_count_fds(), want);
}

/* Mappings whose backing file is a memfd called @name. */
static inline int fz_count_maps(const char *name)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512], needle[128];
	int n = 0;

	FZ_CHECK(f, "cannot open /proc/self/maps");
	snprintf(needle, sizeof(needle), "/memfd:%s ", name);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/* A memfd of @size bytes; the harness cannot work without one. */
static inline int fz_memfd(const char *name, uint64_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	FZ_CHECK(fd >= 0, "memfd_create failed");
	FZ_CHECK(ftruncate(fd, (off_t)size) == 0, "ftruncate of a memfd to %llu failed",
		 (unsigned long long)size);
	return fd;
}

#endif
