// SPDX-License-Identifier: MIT
/*
 * Logging to stderr. Lines are built in one buffer and written with a single
 * write(2) so that lines from several threads or processes never interleave.
 * Whether stderr is the journal is decided once, at the first message: the
 * daemon is single-threaded and never redirects stderr afterwards.
 */
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_INFO;

/* -1 until decided; then whether stderr is a journal stream */
static int to_journal = -1;

/* syslog priorities (sd-daemon(3) "<N>" prefixes) for our levels */
static const char journal_prio[] = {
	[LOG_LVL_ERROR] = '3',
	[LOG_LVL_WARN] = '4',
	[LOG_LVL_INFO] = '6',
	[LOG_LVL_DEBUG] = '7',
	[LOG_LVL_TRACE] = '7',
};

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
	[LOG_LVL_TRACE] = "trace",
};

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_parse_level(const char *name, enum log_level *level)
{
	for (unsigned int i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_ull(const char *text, char stop, unsigned long long *v, const char **rest)
{
	char *end;

	if (*text < '0' || *text > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(text, &end, 10);
	if (errno || *end != stop)
		return -EINVAL;
	*rest = end;
	return 0;
}

void log_detect_stream(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	to_journal = 0;
	/* systemd.exec(7): compare the device and inode, since stderr may have been redirected */
	if (!env || parse_ull(env, ':', &dev, &env) < 0 || parse_ull(env + 1, '\0', &ino, &env) < 0)
		return;
	if (fstat(STDERR_FILENO, &st) < 0)
		return;
	to_journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int line_prefix(char *line, size_t size, enum log_level level)
{
	struct timespec ts;

	if (to_journal < 0)
		log_detect_stream();
	if (to_journal)
		return snprintf(line, size, "<%c>", journal_prio[level]);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return snprintf(line, size, "vhost-user-vsock[%ld.%03ld] %s: ", (long)ts.tv_sec,
			ts.tv_nsec / 1000000, level_names[level]);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n, m;

	if (level > log_threshold)
		return;
	n = line_prefix(line, sizeof(line), level);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* Best effort: a log line that cannot be written is not an error. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
