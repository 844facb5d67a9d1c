/* SPDX-License-Identifier: MIT */
/*
 * Logging: one line per event on stderr, with a level. The level is set
 * once at start-up; messages above it cost one comparison.
 *
 * When stderr is connected to the systemd journal (JOURNAL_STREAM names
 * it), each line starts with the "<N>" syslog priority instead of our time
 * stamp (sd-daemon(3)), so the journal keeps the level and its own time.
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
	LOG_LVL_TRACE,
};

extern enum log_level log_threshold;

/** log_set_level() - messages above @level are dropped. */
void log_set_level(enum log_level level);

/** log_parse_level() - "error".."trace" to a level. Return: 0 or -EINVAL. */
int log_parse_level(const char *name, enum log_level *level);

/**
 * log_detect_stream() - (re)decide whether stderr is the journal, from
 * JOURNAL_STREAM ("<device>:<inode>") and fstat(stderr). The first message
 * does this by itself; call it again after redirecting stderr.
 */
void log_detect_stream(void);

/** log_msg() - print one line if @level is enabled. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_trace(...) log_msg(LOG_LVL_TRACE, __VA_ARGS__)

#endif
