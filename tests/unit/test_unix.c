// SPDX-License-Identifier: MIT
/*
 * Unix listener: the socket file gets the requested mode, the fd is
 * non-blocking and close-on-exec, a stale socket file is replaced, a live
 * one refused, and anything else at the path (regular file, directory,
 * symlink, even a symlink to a stale socket) is refused and left exactly
 * as it was. unix_unlink removes sockets only. Each test works in its own
 * mkdtemp directory and removes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "transport/unix.h"
#include "unit_util.h"

struct tdir {
	char dir[64];
	char sock[128];
};

static int setup(void **state)
{
	struct tdir *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	snprintf(t->dir, sizeof(t->dir), "/tmp/vuv-unix-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->sock, sizeof(t->sock), "%s/vu.sock", t->dir);
	*state = t;
	return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the test directory and whatever a failed test left inside. */
static int teardown(void **state)
{
	struct tdir *t = *state;

	assert_int_equal(nftw(t->dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(t);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void expect_file(const char *path, const char *text)
{
	char buf[64] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(text));
	assert_string_equal(buf, text);
	close(fd);
}

static mode_t lmode(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode;
}

static void test_listen_mode_and_flags(void **state)
{
	struct tdir *t = *state;
	mode_t old = umask(0);
	int lfd, cfd, afd;

	lfd = unix_listen(t->sock, 0600);
	umask(old);
	assert_true(lfd >= 0);
	assert_true(S_ISSOCK(lmode(t->sock)));
	assert_int_equal(lmode(t->sock) & 07777, 0600);
	assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);

	assert_int_equal(unix_accept(lfd), -EAGAIN);
	cfd = connect_to(t->sock);
	assert_true(cfd >= 0);
	afd = unix_accept(lfd);
	assert_true(afd >= 0);
	assert_true(fcntl(afd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(write(cfd, "x", 1), 1);
	char c = 0;
	assert_int_equal(read(afd, &c, 1), 1);
	assert_int_equal(c, 'x');
	close(afd);
	close(cfd);
	close(lfd);
	unix_unlink(t->sock);
	assert_int_equal(access(t->sock, F_OK), -1);
}

static void test_listen_other_mode(void **state)
{
	struct tdir *t = *state;
	int lfd = unix_listen(t->sock, 0660);

	assert_true(lfd >= 0);
	assert_int_equal(lmode(t->sock) & 07777, 0660);
	close(lfd);
}

static void test_stale_replaced(void **state)
{
	struct tdir *t = *state;
	int lfd, cfd;

	ut_stale_socket(t->sock);
	assert_int_equal(connect_to(t->sock), -ECONNREFUSED);
	lfd = unix_listen(t->sock, 0600);
	assert_true(lfd >= 0);
	cfd = connect_to(t->sock);
	assert_true(cfd >= 0);
	close(cfd);
	close(lfd);
}

static void test_live_refused(void **state)
{
	struct tdir *t = *state;
	int lfd, cfd, afd;

	lfd = unix_listen(t->sock, 0600);
	assert_true(lfd >= 0);
	assert_int_equal(unix_listen(t->sock, 0600), -EADDRINUSE);
	/* the first listener is untouched: its file still reaches it */
	assert_true(S_ISSOCK(lmode(t->sock)));
	cfd = connect_to(t->sock);
	assert_true(cfd >= 0);
	afd = unix_accept(lfd);
	assert_true(afd >= 0);
	close(afd);
	close(cfd);
	close(lfd);
}

static void test_regular_file_refused(void **state)
{
	struct tdir *t = *state;

	write_file(t->sock, "keep me");
	assert_int_equal(unix_listen(t->sock, 0600), -EEXIST);
	assert_true(S_ISREG(lmode(t->sock)));
	expect_file(t->sock, "keep me");
	unix_unlink(t->sock);
	expect_file(t->sock, "keep me");
}

static void test_directory_refused(void **state)
{
	struct tdir *t = *state;
	char inner[160];

	assert_int_equal(mkdir(t->sock, 0700), 0);
	snprintf(inner, sizeof(inner), "%s/inner", t->sock);
	write_file(inner, "x");
	assert_int_equal(unix_listen(t->sock, 0600), -EEXIST);
	assert_true(S_ISDIR(lmode(t->sock)));
	unix_unlink(t->sock);
	assert_true(S_ISDIR(lmode(t->sock)));
	expect_file(inner, "x");
	assert_int_equal(unlink(inner), 0);
	assert_int_equal(rmdir(t->sock), 0);
}

/* Symlinks are never followed nor removed, whatever they point at. */
static void test_symlink_refused(void **state)
{
	struct tdir *t = *state;
	char target[160], file[160], link_text[160];
	ssize_t n;

	snprintf(target, sizeof(target), "%s/target.sock", t->dir);
	snprintf(file, sizeof(file), "%s/file", t->dir);

	/* dangling */
	assert_int_equal(symlink(target, t->sock), 0);
	assert_int_equal(unix_listen(t->sock, 0600), -EEXIST);
	assert_true(S_ISLNK(lmode(t->sock)));
	assert_int_equal(access(target, F_OK), -1);  /* nothing created through it */

	/* to a stale socket, which must be neither replaced nor removed */
	ut_stale_socket(target);
	assert_int_equal(unix_listen(t->sock, 0600), -EEXIST);
	assert_true(S_ISLNK(lmode(t->sock)));
	assert_true(S_ISSOCK(lmode(target)));
	unix_unlink(t->sock);
	assert_true(S_ISLNK(lmode(t->sock)));
	assert_true(S_ISSOCK(lmode(target)));
	n = readlink(t->sock, link_text, sizeof(link_text) - 1);
	assert_true(n > 0);
	link_text[n] = '\0';
	assert_string_equal(link_text, target);
	assert_int_equal(unlink(t->sock), 0);

	/* to a regular file */
	write_file(file, "data");
	assert_int_equal(symlink(file, t->sock), 0);
	assert_int_equal(unix_listen(t->sock, 0600), -EEXIST);
	assert_true(S_ISLNK(lmode(t->sock)));
	expect_file(file, "data");
}

static void test_path_length(void **state)
{
	struct tdir *t = *state;
	struct sockaddr_un sa;
	char path[sizeof(sa.sun_path) + 16];
	size_t dlen = strlen(t->dir);
	int lfd;

	/* longest that fits: sizeof(sun_path) - 1 bytes plus the NUL */
	memset(path, 'a', sizeof(path));
	memcpy(path, t->dir, dlen);
	path[dlen] = '/';
	path[sizeof(sa.sun_path) - 1] = '\0';
	lfd = unix_listen(path, 0600);
	assert_true(lfd >= 0);
	assert_true(S_ISSOCK(lmode(path)));
	close(lfd);
	unix_unlink(path);
	assert_int_equal(access(path, F_OK), -1);

	/* one byte more: refused, and nothing created */
	path[sizeof(sa.sun_path) - 1] = 'a';
	path[sizeof(sa.sun_path)] = '\0';
	assert_int_equal(unix_listen(path, 0600), -ENAMETOOLONG);
	assert_int_equal(access(path, F_OK), -1);
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(unix_listen(path, 0600), -ENAMETOOLONG);
	assert_int_equal(unix_listen("", 0600), -ENAMETOOLONG);
}

static void test_missing_parent(void **state)
{
	struct tdir *t = *state;
	char path[160];

	snprintf(path, sizeof(path), "%s/inner/vu.sock", t->dir);
	assert_int_equal(unix_listen(path, 0600), -ENOENT);
}

static void test_unlink_only_sockets(void **state)
{
	struct tdir *t = *state;

	unix_unlink(t->sock);  /* nothing there: harmless */
	ut_stale_socket(t->sock);
	unix_unlink(t->sock);
	assert_int_equal(access(t->sock, F_OK), -1);
	write_file(t->sock, "file");
	unix_unlink(t->sock);
	expect_file(t->sock, "file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_listen_mode_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_other_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regular_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlink_only_sockets, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
