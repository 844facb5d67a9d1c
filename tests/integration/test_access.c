// SPDX-License-Identifier: MIT
/*
 * Access control of the socket files (issue 7, item 7), at every path the
 * daemon creates: the vhost-user socket, the hybrid socket (UDS_PATH) and
 * its seqpacket twin (UDS_PATH_seqpacket).
 *
 *   - owner-only (0600) by default, whatever the umask the daemon inherits;
 *   - --socket-mode, the socket-mode= --vm key and the socket_mode YAML key
 *     set another mode, exactly (the umask does not take bits away), for
 *     that device only;
 *   - a symlink (dangling, or to a file), a regular file, a directory or a
 *     socket some process listens on at any of the three paths: the daemon
 *     refuses to start (exit 1, the path named in its log), leaves the
 *     thing exactly as it was (a symlink is not followed: its target is
 *     neither created nor changed) and removes the socket files it had
 *     already made;
 *   - a stale socket file (nobody listening) is replaced.
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon_run.h"
#include "user_harness.h"

#define WAIT_MS 5000

enum which { P_SOCK, P_UDS, P_SEQ, P_COUNT };

static const char *const which_name[P_COUNT] = { "vhost-user socket", "hybrid socket",
						 "hybrid seqpacket socket" };

static const char *path_of(const struct dr *r, enum which w)
{
	return w == P_SOCK ? r->sock : w == P_UDS ? r->uds : r->seq;
}

static int mode_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return -1;
	return (int)(st.st_mode & 07777);
}

/* All three files of @r are sockets with @mode. */
static void assert_modes(const struct dr *r, int mode)
{
	for (int w = 0; w < P_COUNT; w++) {
		int m = mode_of(path_of(r, w));

		if (m != mode)
			fail_msg("%s: mode %04o, expected %04o", which_name[w], m, mode);
	}
}

static void run_and_check(const char *const *args, mode_t umask_value, int mode)
{
	mode_t old = umask(umask_value);
	struct dr r;

	assert_int_equal(dr_init(&r), 0);
	assert_int_equal(dr_start(&r, args, true, NULL), 0);
	umask(old);
	assert_int_equal(uh_wait_log(&r.logh, "host programs connect to", 1, WAIT_MS), 0);
	assert_modes(&r, mode);
	assert_int_equal(tfe_daemon_stop(&r.d, WAIT_MS), 0);
	for (int w = 0; w < P_COUNT; w++)
		assert_int_equal(mode_of(path_of(&r, w)), -1);
	dr_fini(&r);
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_default_owner_only(void **state)
{
	(void)state;
	/* an open umask (0) and a strict one: 0600 either way */
	run_and_check(NULL, 0, 0600);
	run_and_check(NULL, 077, 0600);
}

static void test_socket_mode_option(void **state)
{
	(void)state;
	run_and_check(ARGS("--socket-mode", "0660"), 0, 0660);
	/* the umask takes nothing away from what was asked */
	run_and_check(ARGS("--socket-mode", "0666"), 077, 0666);
}

/* --vm socket-mode= for one device; the other keeps 0600. YAML the same. */
static void test_socket_mode_keys(void **state)
{
	char spec[2][256], yaml[128];
	struct dr a, b;
	FILE *f;

	(void)state;
	assert_int_equal(dr_init(&a), 0);
	assert_int_equal(dr_init(&b), 0);
	snprintf(spec[0], sizeof(spec[0]), "socket=%s,uds-path=%s,guest-cid=3,socket-mode=0640",
		 a.sock, a.uds);
	snprintf(spec[1], sizeof(spec[1]), "socket=%s,uds-path=%s,guest-cid=4", b.sock, b.uds);
	assert_int_equal(dr_start(&a, ARGS("--vm", spec[0], "--vm", spec[1]), false, b.sock), 0);
	assert_modes(&a, 0640);
	assert_modes(&b, 0600);
	assert_int_equal(tfe_daemon_stop(&a.d, WAIT_MS), 0);
	dr_fini(&b);
	snprintf(yaml, sizeof(yaml), "%s/vms.yaml", a.dir);
	f = fopen(yaml, "w");
	assert_non_null(f);
	fprintf(f, "vms:\n  - socket: %s\n    uds_path: %s\n    socket_mode: \"0660\"\n", a.sock,
		a.uds);
	fclose(f);
	assert_int_equal(dr_start(&a, ARGS("--config", yaml), false, NULL), 0);
	assert_modes(&a, 0660);
	assert_int_equal(tfe_daemon_stop(&a.d, WAIT_MS), 0);
	dr_fini(&a);
}

/* ---- things at the socket paths ---- */

enum thing { T_LINK_FILE, T_LINK_DANGLING, T_FILE, T_DIR, T_LIVE, T_COUNT };

static const char *const thing_name[T_COUNT] = { "symlink to a file", "dangling symlink",
						 "regular file", "directory", "live socket" };

static int listener(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void expect_file(const char *path, const char *text, mode_t mode)
{
	char buf[64] = { 0 };
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), (ssize_t)strlen(text));
	assert_string_equal(buf, text);
	close(fd);
}

/* Put @t at @path; the target of a symlink is dir/target. Return: a listener fd, or -1. */
static int place(const struct dr *r, const char *path, enum thing t)
{
	char target[128];

	snprintf(target, sizeof(target), "%s/target", r->dir);
	switch (t) {
	case T_LINK_FILE:
		write_file(target, "the target", 0644);
		assert_int_equal(symlink(target, path), 0);
		break;
	case T_LINK_DANGLING:
		assert_int_equal(symlink(target, path), 0);
		break;
	case T_FILE:
		write_file(path, "not a socket", 0644);
		break;
	case T_DIR:
		assert_int_equal(mkdir(path, 0755), 0);
		break;
	case T_LIVE:
		return listener(path);
	case T_COUNT:
		break;
	}
	return -1;
}

/* @t is at @path exactly as place() left it. */
static void unchanged(const struct dr *r, const char *path, enum thing t)
{
	char target[128], link[128] = { 0 };
	struct stat st;

	snprintf(target, sizeof(target), "%s/target", r->dir);
	assert_int_equal(lstat(path, &st), 0);
	switch (t) {
	case T_LINK_FILE:
	case T_LINK_DANGLING:
		assert_true(S_ISLNK(st.st_mode));
		assert_true(readlink(path, link, sizeof(link) - 1) > 0);
		assert_string_equal(link, target);
		if (t == T_LINK_FILE)
			expect_file(target, "the target", 0644);
		else
			assert_int_equal(access(target, F_OK), -1);
		break;
	case T_FILE:
		expect_file(path, "not a socket", 0644);
		break;
	case T_DIR:
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 07777, 0755);
		break;
	case T_LIVE:
	case T_COUNT:
		assert_true(S_ISSOCK(st.st_mode));
		break;
	}
}

static void refuse_one(enum which w, enum thing t)
{
	const char *want = t == T_LIVE ? "is in use by another process" : "is not a socket";
	struct dr r;
	int lfd, rc;

	assert_int_equal(dr_init(&r), 0);
	lfd = place(&r, path_of(&r, w), t);
	rc = dr_start(&r, NULL, true, NULL);
	/* a live socket at dir/s "appears" at once: wait for the exit instead */
	for (int64_t end = tfe_now_ms() + WAIT_MS; rc == 0 && tfe_remaining_ms(end) > 0;) {
		if (!tfe_daemon_alive(&r.d))
			rc = -ECHILD;
		poll(NULL, 0, 10);
	}
	printf("  %-24s at the %-24s %s\n", thing_name[t], which_name[w],
	       rc == -ECHILD ? "refused" : "ACCEPTED");
	if (rc != -ECHILD || dr_exit_status(&r) != 1)
		fail_msg("%s at the %s: start rc %d, exit %d", thing_name[t], which_name[w], rc,
			 dr_exit_status(&r));
	if (!uh_log_has(&r.logh, path_of(&r, w)) || !uh_log_has(&r.logh, want))
		fail_msg("%s at the %s: the log does not say '%s'", thing_name[t], which_name[w],
			 want);
	unchanged(&r, path_of(&r, w), t);
	/* nothing of ours left at the other two paths */
	for (int o = 0; o < P_COUNT; o++) {
		if (o != (int)w)
			assert_int_equal(mode_of(path_of(&r, o)), -1);
	}
	if (lfd >= 0)
		close(lfd);
	dr_fini(&r);
}

static void test_refusals(void **state)
{
	(void)state;
	for (int w = 0; w < P_COUNT; w++) {
		for (int t = 0; t < T_COUNT; t++)
			refuse_one(w, t);
	}
}

/* A socket file nobody listens on (a daemon that was killed) is replaced. */
static void test_stale_replaced(void **state)
{
	struct dr r;

	(void)state;
	assert_int_equal(dr_init(&r), 0);
	for (int w = 0; w < P_COUNT; w++)
		close(listener(path_of(&r, w)));
	assert_int_equal(dr_start(&r, NULL, true, NULL), 0);
	assert_int_equal(uh_wait_log(&r.logh, "replacing stale socket file", P_COUNT, WAIT_MS), 0);
	assert_modes(&r, 0600);
	assert_int_equal(tfe_daemon_stop(&r.d, WAIT_MS), 0);
	dr_fini(&r);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_owner_only),
		cmocka_unit_test(test_socket_mode_option),
		cmocka_unit_test(test_socket_mode_keys),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_stale_replaced),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	uh_watchdog(120);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
