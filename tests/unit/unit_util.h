/* SPDX-License-Identifier: MIT */
/*
 * Small helpers the unit tests share: counting this process's fds (the
 * leak checks compare a count taken before a test with one after) and
 * Unix socket files in the states the tests need. Include after <cmocka.h>.
 */
#ifndef UNIT_UTIL_H
#define UNIT_UTIL_H

#include <dirent.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Open fds of this process, not counting the one used to count them. */
static inline int ut_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;
}

static inline void ut_sockaddr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(sa->sun_path));
	strcpy(sa->sun_path, path);
}

/* A client socket of @type connected to @path; the test fails if it cannot. */
static inline int ut_connect(const char *path, int type)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	ut_sockaddr(&sa, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Leave a socket file at @path that nobody listens on. */
static inline void ut_stale_socket(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	ut_sockaddr(&sa, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

#endif
