/* SPDX-License-Identifier: MIT */
/*
 * What a process holds, read from /proc/PID: open fds, shared-memory
 * mappings of guest RAM (memfd), resident memory. The hostile, bounds and
 * endurance suites take a snapshot with no front end connected and check
 * that the daemon is back to it after each case, so a leaked fd or
 * mapping fails the case that leaked it.
 *
 * Limits: Linux /proc only; counts are racy against a process that is
 * busy, so comparisons go through pw_wait_back(), which retries until a
 * deadline. A daemon under valgrind holds extra fds of valgrind's own, a
 * constant that cancels out in every comparison.
 */
#ifndef PROC_WATCH_H
#define PROC_WATCH_H

#include <stdbool.h>
#include <sys/types.h>

struct pw_snap {
	int fds;       /* entries in /proc/PID/fd */
	int memfds;    /* lines of /proc/PID/maps naming a memfd */
	long rss_kb;   /* VmRSS */
};

/** pw_fd_count() - Return: open fds of @pid, or -errno. */
int pw_fd_count(pid_t pid);

/** pw_memfd_maps() - Return: mappings of @pid backed by a memfd, or -errno. */
int pw_memfd_maps(pid_t pid);

/** pw_rss_kb() - Return: resident set size of @pid in KiB, or -errno. */
long pw_rss_kb(pid_t pid);

/** pw_thread_count() - Return: threads of @pid, or -errno. */
int pw_thread_count(pid_t pid);

/** pw_snap() - fill @s for @pid. Return: 0 or -errno. */
int pw_snap(pid_t pid, struct pw_snap *s);

/**
 * pw_wait_back() - wait until @pid has exactly @want's fds and memfd
 * mappings again (RSS is not compared).
 * Return: 0, or -ETIMEDOUT after @timeout_ms with what differs printed
 * on stderr (and the fd list, to name the leak).
 */
int pw_wait_back(pid_t pid, const struct pw_snap *want, int timeout_ms);

/** pw_dump_fds() - print "fd -> target" for every fd of @pid on stderr. */
void pw_dump_fds(pid_t pid);

/**
 * pw_env_count() - an unsigned count from environment variable @name, or
 * @def when unset or not a number (suites scale their loops with it).
 * Return: the count.
 */
unsigned long pw_env_count(const char *name, unsigned long def);

#endif
