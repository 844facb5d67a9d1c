// SPDX-License-Identifier: MIT
/*
 * The daemon's sandbox from the outside: with the self-test switch
 * (VHOST_USER_VSOCK_SANDBOX_SELFTEST=1) the daemon tries forbidden system
 * calls once it is sandboxed, and the default filter kills it with SIGSYS;
 * with --sandbox=seccomp-errno it gets EPERM and keeps serving; with
 * --sandbox=none the calls go through. As root, --user nobody: the daemon
 * runs as nobody for good, its socket files are nobody's, it serves a
 * front end and the control socket, and it removes its files on exit.
 * Bad --sandbox/--user/--group/--control values are usage errors (exit 2)
 * naming the option. (The rest of the suite runs with the default filter.)
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/client.h"
#include "control/json.h"
#include "daemon/sandbox.h"
#include "user_harness.h"

#define NOBODY 65534u

struct fx {
	char dir[64], sock[96], uds[96], ctl[96], log[96];
	pid_t pid;
};

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	uh_watchdog(120);
	strcpy(f.dir, "/tmp/uh-sbx-XXXXXX");
	assert_non_null(mkdtemp(f.dir));
	snprintf(f.sock, sizeof(f.sock), "%s/vm.sock", f.dir);
	snprintf(f.uds, sizeof(f.uds), "%s/vm.vsock", f.dir);
	snprintf(f.ctl, sizeof(f.ctl), "%s/ctl.sock", f.dir);
	snprintf(f.log, sizeof(f.log), "%s/daemon.log", f.dir);
	*state = &f;
	return 0;
}

static void dump_log(const struct fx *f)
{
	char line[512];
	FILE *fp = fopen(f->log, "r");

	while (fp && fgets(line, sizeof(line), fp))
		fputs(line, stderr);
	if (fp)
		fclose(fp);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char path[160];
	const char *names[] = { "vm.sock", "vm.vsock", "vm.vsock_seqpacket", "ctl.sock",
				"daemon.log", "vm.vsock_5000" };

	if (f->pid > 0) {
		kill(f->pid, SIGKILL);
		waitpid(f->pid, NULL, 0);
		dump_log(f);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
		unlink(path);
	}
	rmdir(f->dir);
	uh_watchdog(0);
	return 0;
}

/* Start the daemon with @args (NULL-terminated), @selftest in its environment. */
static void spawn(struct fx *f, const char *const *args, bool selftest)
{
	char *argv[16];
	int n = 0;

	argv[n++] = (char *)uh_daemon_path;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	fflush(NULL);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0) {
		FILE *log = fopen(f->log, "w");

		if (!log)
			_exit(127);
		dup2(fileno(log), STDERR_FILENO);
		dup2(fileno(log), STDOUT_FILENO);
		if (selftest)
			setenv(SANDBOX_SELFTEST_ENV, "1", 1);
		else
			unsetenv(SANDBOX_SELFTEST_ENV);
		execv(argv[0], argv);
		_exit(127);
	}
}

/* Wait for the daemon to end; Return: its wait status, or -1 on timeout. */
static int reap(struct fx *f, int timeout_ms)
{
	int st;

	for (int t = 0; t < timeout_ms; t += 10) {
		if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
			f->pid = 0;
			return st;
		}
		poll(NULL, 0, 10);
	}
	return -1;
}

static bool log_has(const struct fx *f, const char *text)
{
	static char buf[1 << 16];
	FILE *fp = fopen(f->log, "r");
	size_t n;

	if (!fp)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static void wait_log(const struct fx *f, const char *text)
{
	for (int t = 0; t < 10000; t += 10) {
		if (log_has(f, text))
			return;
		poll(NULL, 0, 10);
	}
	dump_log(f);
	fail_msg("the daemon never logged '%s'", text);
}

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* SIGTERM: a clean exit that removes every socket file. */
static void stop_clean(struct fx *f)
{
	int st;

	kill(f->pid, SIGTERM);
	st = reap(f, 10000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		dump_log(f);
		fail_msg("the daemon did not exit 0 on SIGTERM (status 0x%x)", st);
	}
	assert_false(is_socket(f->sock) || is_socket(f->uds) || is_socket(f->ctl));
}

static void test_forbidden_call_kills(void **state)
{
	struct fx *f = *state;
	const char *args[] = { "--socket", f->sock, "--uds-path", f->uds, NULL };
	int st;

	spawn(f, args, true);
	st = reap(f, 10000);
	if (st == -1 || !WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS) {
		dump_log(f);
		fail_msg("expected death by SIGSYS, status 0x%x", st);
	}
	assert_true(log_has(f, "sandbox: seccomp allow-list installed"));
	assert_true(log_has(f, "sandbox self-test"));
	assert_false(log_has(f, "socket(AF_INET) returned")); /* it never got that far */
}

static void test_forbidden_call_eperm(void **state)
{
	struct fx *f = *state;
	const char *args[] = { "--socket", f->sock, "--uds-path", f->uds, "--control", f->ctl,
			       "--sandbox", "seccomp-errno", NULL };
	char *answer = NULL;

	spawn(f, args, true);
	wait_log(f, "socket(AF_INET) returned");
	assert_true(log_has(f, "socket(AF_INET) returned -1: Operation not permitted"));
	/* still serving, and says how it is sandboxed */
	assert_int_equal(control_request(f->ctl, "stats", &answer, 10000), 0);
	assert_non_null(strstr(answer, "\"sandbox\":\"seccomp-errno\""));
	free(answer);
	stop_clean(f);
}

static void test_no_sandbox(void **state)
{
	struct fx *f = *state;
	const char *args[] = { "--socket", f->sock, "--uds-path", f->uds, "--sandbox", "none",
			       NULL };

	spawn(f, args, true);
	wait_log(f, "socket(AF_INET) returned");
	assert_true(log_has(f, "every system call is allowed"));
	assert_false(log_has(f, "Operation not permitted"));
	stop_clean(f);
}

/* ---- --user ------------------------------------------------------------------- */

static void check_ids(pid_t pid, uint32_t id)
{
	char path[64], line[256], want[64];
	bool uid = false, gid = false;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		snprintf(want, sizeof(want), "Uid:\t%u\t%u\t%u\t%u\n", id, id, id, id);
		uid |= strcmp(line, want) == 0;
		snprintf(want, sizeof(want), "Gid:\t%u\t%u\t%u\t%u\n", id, id, id, id);
		gid |= strcmp(line, want) == 0;
	}
	fclose(fp);
	assert_true(uid);
	assert_true(gid);
}

static void test_user_nobody(void **state)
{
	struct fx *f = *state;
	const char *args[] = { "--socket", f->sock, "--uds-path", f->uds, "--control", f->ctl,
			       "--user", "65534", "--group", "65534", NULL };
	const char *files[] = { f->sock, f->uds, f->ctl };
	struct uh h;
	struct uh_guest g;
	struct tfe_vsock_conn *c;
	char *answer = NULL;
	struct stat st;
	int lfd, fd;

	if (geteuid() != 0) {
		skip();
		return;
	}
	/* nobody must be able to remove its files and reach our listener */
	assert_int_equal(chmod(f->dir, 0777), 0);
	spawn(f, args, false);
	wait_log(f, "running as uid 65534");
	wait_log(f, "sandbox: seccomp allow-list installed");
	check_ids(f->pid, NOBODY);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(lstat(files[i], &st), 0);
		assert_int_equal(st.st_uid, NOBODY);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	assert_int_equal(control_request(f->ctl, "stats", &answer, 10000), 0);
	assert_non_null(strstr(answer, "\"uid\":65534"));
	free(answer);
	/* it serves a front end and reaches host sockets as nobody */
	memset(&h, 0, sizeof(h));
	snprintf(h.sock[0], sizeof(h.sock[0]), "%s", f->sock);
	h.cid[0] = 3;
	assert_int_equal(uh_guest_open(&g, &h, 0, 0, NULL), 0);
	lfd = uh_host_listen(f->uds, 5000, SOCK_STREAM);
	assert_true(lfd >= 0);
	snprintf(h.uds[0], sizeof(h.uds[0]), "%s_5000", f->uds);
	assert_int_equal(chmod(h.uds[0], 0777), 0);
	assert_int_equal(tfe_vsock_connect(&g.vs, TFE_VSOCK_HOST_CID, 5000, 40000, 5000, &c), 0);
	fd = uh_accept(lfd, &g, 5000);
	assert_true(fd >= 0);
	assert_int_equal(uh_guest_to_host(&g, c, fd, 200000, 5, 30000), 0);
	tfe_vsock_close(&g.vs, c, 5000);
	close(fd);
	close(lfd);
	uh_guest_close(&g);
	stop_clean(f);
}

/* ---- usage errors -------------------------------------------------------------- */

static void expect_usage(struct fx *f, const char *const *args, const char *text)
{
	int st;

	spawn(f, args, false);
	st = reap(f, 10000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 2 || !log_has(f, text)) {
		dump_log(f);
		fail_msg("expected exit 2 saying '%s', status 0x%x", text, st);
	}
}

static void test_usage_errors(void **state)
{
	struct fx *f = *state;

	expect_usage(f, (const char *[]){ "--socket", f->sock, "--uds-path", f->uds, "--sandbox",
					  "strict", NULL },
		     "--sandbox: 'strict' is not one of seccomp, seccomp-errno, none");
	expect_usage(f, (const char *[]){ "--socket", f->sock, "--uds-path", f->uds, "--group",
					  "0", NULL },
		     "--group 0: give --user as well");
	expect_usage(f, (const char *[]){ "--socket", f->sock, "--uds-path", f->uds, "--user",
					  "no-such-user-here", NULL },
		     "--user no-such-user-here: no such user");
	expect_usage(f, (const char *[]){ "--socket", f->sock, "--uds-path", f->uds, "--user",
					  "3999999", NULL },
		     "its group is unknown: add --group");
	expect_usage(f, (const char *[]){ "--socket", f->sock, "--uds-path", f->uds, "--control",
					  f->uds, NULL },
		     "already uses that path for a socket");
	expect_usage(f, (const char *[]){ "--socket", f->sock, "--uds-path", f->uds, "--control",
					  "", NULL },
		     "--control: the value is empty");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forbidden_call_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forbidden_call_eperm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_sandbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_user_nobody, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
