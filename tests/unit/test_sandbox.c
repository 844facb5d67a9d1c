// SPDX-License-Identifier: MIT
/*
 * Least privilege (daemon/sandbox.c), each case in a forked child since a
 * filter or a change of user cannot be undone: forbidden calls kill the
 * process (SIGSYS) with the default filter and fail with EPERM with
 * seccomp-errno; what the daemon needs still works (threads, Unix
 * sockets, eventfd/epoll/timerfd, memory); clone3 is answered ENOSYS so
 * glibc falls back to the filterable clone; the kernel engine's filter
 * allows exactly the vhost device's open flags and ioctls; no_new_privs and
 * seccomp mode 2 are in force; --user lookups; and, as root, a drop to
 * nobody that cannot be undone and hands the socket files over.
 *
 * Sanitizer builds allow more (their run-time's needs, sandbox.c), so the
 * cases for those calls are skipped there; the gcc and clang builds run
 * them all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/vfio.h>
#include <linux/vhost.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/sandbox.h"
#include "unit_util.h"
#include "util/sanitizer.h"


#define NOBODY 65534u

enum attempt {
	TRY_EXECVE,
	TRY_INET_SOCKET,
	TRY_EXEC_MAPPING,
	TRY_FORK,
	TRY_OPEN_FILE,
	TRY_PTRACE,
	TRY_IOCTL,
};

/* Return: what the call returned (-errno), if the process survives it. */
static int attempt(enum attempt what)
{
	static char *const argv[] = { "x", NULL };
	void *p;
	int rc = 0;

	switch (what) {
	case TRY_EXECVE:
		rc = execve("/nonexistent/x", argv, argv + 1);
		break;
	case TRY_INET_SOCKET:
		rc = socket(AF_INET, SOCK_STREAM, 0);
		break;
	case TRY_EXEC_MAPPING:
		p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		rc = p == MAP_FAILED ? -1 : 0;
		break;
	case TRY_FORK:
		rc = (int)fork();
		if (rc == 0)
			_exit(0);
		break;
	case TRY_OPEN_FILE:
		rc = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
		break;
	case TRY_PTRACE:
		rc = (int)ptrace(PTRACE_TRACEME, 0, NULL, NULL);
		break;
	case TRY_IOCTL:
		rc = ioctl(STDERR_FILENO, FIONREAD, &rc);
		break;
	}
	return rc < 0 ? -errno : rc;
}

/* Run @fn in a child; Return: its wait status. */
static int in_child(int (*fn)(void *), void *arg)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

struct try_arg {
	enum sandbox_mode mode;
	bool kernel;
	enum attempt what;
};

/* Child: exit 0 when the call failed with EPERM, 1 when it went through. */
static int child_try(void *arg)
{
	const struct try_arg *t = arg;

	if (sandbox_install_filter(t->mode, t->kernel) < 0)
		return 3;
	return attempt(t->what) == -EPERM ? 0 : 1;
}

static void expect_killed(enum attempt what, bool kernel)
{
	struct try_arg t = { SANDBOX_SECCOMP, kernel, what };
	int st = in_child(child_try, &t);

	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
		fail_msg("attempt %d (%s engine): status 0x%x, not killed by SIGSYS", what,
			 kernel ? "kernel" : "userspace", st);
	t.mode = SANDBOX_SECCOMP_ERRNO;
	st = in_child(child_try, &t);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("attempt %d with seccomp-errno: status 0x%x, not EPERM", what, st);
}

static void test_forbidden_calls(void **state)
{
	(void)state;
	/* in every build */
	expect_killed(TRY_INET_SOCKET, false);
	expect_killed(TRY_INET_SOCKET, true);
	expect_killed(TRY_IOCTL, false);
	expect_killed(TRY_IOCTL, true); /* not a vhost request */
	if (SANITIZER_BUILD) {
		print_message("sanitizer build: execve, fork, open, ptrace and PROT_EXEC cases "
			      "skipped (the run-time needs them)\n");
		return;
	}
	expect_killed(TRY_EXECVE, false);
	expect_killed(TRY_EXECVE, true);
	expect_killed(TRY_EXEC_MAPPING, false);
	expect_killed(TRY_FORK, false);
	expect_killed(TRY_OPEN_FILE, true); /* other flags than the vhost device's */
	expect_killed(TRY_PTRACE, false);
}

/* Child: the userspace engine's filter answers open() with EACCES (glibc copes). */
static int child_open(void *arg)
{
	enum sandbox_mode mode = *(enum sandbox_mode *)arg;

	if (sandbox_install_filter(mode, false) < 0)
		return 3;
	return attempt(TRY_OPEN_FILE) == -EACCES ? 0 : 1;
}

static void test_open_refused_softly(void **state)
{
	enum sandbox_mode modes[] = { SANDBOX_SECCOMP, SANDBOX_SECCOMP_ERRNO };
	int st;

	(void)state;
	if (SANITIZER_BUILD) {
		skip(); /* the leak checker reads /proc */
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		st = in_child(child_open, &modes[i]);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("mode %s: status 0x%x", sandbox_mode_name(modes[i]), st);
	}
}

static void *thread_fn(void *arg)
{
	return arg;
}

/* Child: what the daemon does after start-up still works. Exit 0 or the step. */
static int child_allowed(void *arg)
{
	const struct try_arg *t = arg;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	pthread_t th;
	void *ret = NULL;
	int fd, ep, ev, tm;
	char *big;

	if (sandbox_install_filter(t->mode, t->kernel) < 0)
		return 1;
	if (pthread_create(&th, NULL, thread_fn, &sa) != 0 || pthread_join(th, &ret) != 0 ||
	    ret != &sa)
		return 2;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/test-sandbox-%d.sock", (int)getpid());
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0 ||
	    chmod(sa.sun_path, 0600) < 0 || unlink(sa.sun_path) < 0)
		return 3;
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev = eventfd(0, EFD_CLOEXEC);
	tm = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (ep < 0 || ev < 0 || tm < 0 || eventfd_write(ev, 1) < 0)
		return 4;
	big = malloc(64u << 20); /* mmap'd by malloc */
	if (!big)
		return 5;
	memset(big, 1, 64u << 20);
	free(big);
	/* clone3 is refused softly, so that glibc falls back to clone */
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 6;
	close(fd);
	close(ep);
	close(ev);
	close(tm);
	return 0;
}

static void test_needed_calls_allowed(void **state)
{
	struct try_arg t = { SANDBOX_SECCOMP, false, 0 };
	int st;

	(void)state;
	for (int kernel = 0; kernel < 2; kernel++) {
		t.kernel = kernel;
		st = in_child(child_allowed, &t);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("%s engine: status 0x%x", kernel ? "kernel" : "userspace", st);
	}
}

/* Child: the vhost device's open and ioctls go through (and fail as the kernel says). */
static int child_vhost(void *arg)
{
	int fd, sk;
	uint64_t features;

	(void)arg;
	if (sandbox_install_filter(SANDBOX_SECCOMP, true) < 0)
		return 1;
	fd = open("/nonexistent/vhost-vsock", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0 || errno != ENOENT)
		return 2;
	sk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sk < 0)
		return 3;
	/* allowed by the filter, refused by the socket */
	if (ioctl(sk, VHOST_GET_FEATURES, &features) == 0 || errno != ENOTTY)
		return 4;
	return 0;
}

static void test_kernel_engine_vhost(void **state)
{
	int st;

	(void)state;
	st = in_child(child_vhost, NULL);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Child: filter, then tell the parent and wait, so it can look at /proc. */
static int child_wait(void *arg)
{
	int *p = arg;
	char c = 'x';

	close(p[3]); /* the parent's end: its close is the signal to go */
	if (sandbox_install_filter(SANDBOX_SECCOMP, false) < 0)
		return 1;
	if (write(p[1], &c, 1) != 1 || read(p[2], &c, 1) < 0)
		return 2;
	return 0;
}

static void test_no_new_privs(void **state)
{
	int up[2], down[2], pipes[4], st;
	char path[64], line[128], c;
	bool nnp = false, filtered = false;
	pid_t pid;
	FILE *f;

	(void)state;
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pipes[0] = up[0];
	pipes[1] = up[1];
	pipes[2] = down[0];
	pipes[3] = down[1];
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_wait(pipes));
	assert_int_equal(read(up[0], &c, 1), 1);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		nnp |= strcmp(line, "NoNewPrivs:\t1\n") == 0;
		filtered |= strcmp(line, "Seccomp:\t2\n") == 0;
	}
	fclose(f);
	close(down[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(nnp);
	assert_true(filtered);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	close(up[0]);
	close(up[1]);
	close(down[0]);
}

static void test_modes_and_lookups(void **state)
{
	enum sandbox_mode m;
	uint32_t uid = 1, gid = 1;
	bool has_gid = false;

	(void)state;
	assert_int_equal(sandbox_parse_mode("seccomp", &m), 0);
	assert_int_equal(m, SANDBOX_SECCOMP);
	assert_int_equal(sandbox_parse_mode("seccomp-errno", &m), 0);
	assert_int_equal(m, SANDBOX_SECCOMP_ERRNO);
	assert_int_equal(sandbox_parse_mode("none", &m), 0);
	assert_int_equal(m, SANDBOX_NONE);
	assert_int_equal(sandbox_parse_mode("Seccomp", &m), -EINVAL);
	assert_int_equal(sandbox_parse_mode("", &m), -EINVAL);
	assert_string_equal(sandbox_mode_name(SANDBOX_SECCOMP_ERRNO), "seccomp-errno");

	assert_int_equal(sandbox_lookup_user("root", &uid, &gid, &has_gid), 0);
	assert_int_equal(uid, 0);
	assert_true(has_gid);
	assert_int_equal(gid, 0);
	assert_int_equal(sandbox_lookup_user("0", &uid, &gid, &has_gid), 0);
	assert_int_equal(uid, 0);
	assert_true(has_gid);
	/* a number needs no entry, but then the group is unknown */
	assert_int_equal(sandbox_lookup_user("3999999", &uid, &gid, &has_gid), 0);
	assert_int_equal(uid, 3999999);
	assert_false(has_gid);
	assert_int_equal(sandbox_lookup_user("no-such-user-here", &uid, &gid, &has_gid), -ENOENT);
	assert_int_equal(sandbox_lookup_user("-1", &uid, &gid, &has_gid), -ENOENT);
	assert_int_equal(sandbox_lookup_user("4294967295", &uid, &gid, &has_gid), -ENOENT);
	assert_int_equal(sandbox_lookup_user("", &uid, &gid, &has_gid), -ENOENT);
	assert_int_equal(sandbox_lookup_group("root", &gid), 0);
	assert_int_equal(gid, 0);
	assert_int_equal(sandbox_lookup_group("12345", &gid), 0);
	assert_int_equal(gid, 12345);
	assert_int_equal(sandbox_lookup_group("no-such-group-here", &gid), -ENOENT);
	assert_int_equal(sandbox_lookup_group("1x", &gid), -ENOENT);
}

/* ---- as root: the change of user ------------------------------------------------ */

/* Child: drop to nobody; root must be out of reach. Exit 0 or the step. */
static int child_drop(void *arg)
{
	(void)arg;
	if (sandbox_drop_privileges(NOBODY, NOBODY, NULL) < 0)
		return 1;
	if (getuid() != NOBODY || geteuid() != NOBODY || getgid() != NOBODY)
		return 2;
	if (setuid(0) == 0 || setgid(0) == 0 || seteuid(0) == 0)
		return 3;
	/* a second change, now without the right to it, is refused */
	if (sandbox_drop_privileges(1234, 1234, NULL) != -EPERM)
		return 4;
	return 0;
}

static void test_drop_privileges(void **state)
{
	int st;

	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	st = in_child(child_drop, NULL);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

struct enter_arg {
	struct config cfg;
	char dir[64];
};

static int child_enter(void *arg)
{
	struct enter_arg *e = arg;

	return sandbox_enter(&e->cfg) == 0 && geteuid() == NOBODY ? 0 : 1;
}

static void test_enter_hands_files_over(void **state)
{
	static struct enter_arg e;
	static char sock[96], uds[96], seq[112], ctl[96];
	const char *files[] = { sock, uds, seq, ctl };
	struct stat st;
	int status;

	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	memset(&e, 0, sizeof(e));
	strcpy(e.dir, "/tmp/test-sandbox-XXXXXX");
	assert_non_null(mkdtemp(e.dir));
	snprintf(sock, sizeof(sock), "%s/vm.sock", e.dir);
	snprintf(uds, sizeof(uds), "%s/vm.vsock", e.dir);
	snprintf(seq, sizeof(seq), "%s_seqpacket", uds);
	snprintf(ctl, sizeof(ctl), "%s/ctl.sock", e.dir);
	for (size_t i = 0; i < 4; i++)
		ut_stale_socket(files[i]);
	e.cfg.engine = ENGINE_USER;
	e.cfg.fd = -1;
	e.cfg.nvms = 1;
	e.cfg.vms[0].socket_path = sock;
	e.cfg.vms[0].uds_path = uds;
	e.cfg.control_path = ctl;
	e.cfg.drop_privileges = true;
	e.cfg.uid = e.cfg.gid = NOBODY;
	e.cfg.sandbox = SANDBOX_SECCOMP;
	status = in_child(child_enter, &e);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(lstat(files[i], &st), 0);
		assert_int_equal(st.st_uid, NOBODY);
		assert_int_equal(st.st_gid, NOBODY);
		unlink(files[i]);
	}
	rmdir(e.dir);
}

struct vfio_arg {
	enum sandbox_mode mode;
	bool kernel, vfio;
	int fd;
};

/*
 * Child: what the VVU transport does after start-up: register access with
 * pread/pwrite on the device fd, VFIO ioctls (here on a memfd, which
 * answers ENOTTY instead of being killed). Exit 0 when all went through.
 */
static int child_vfio(void *arg)
{
	const struct vfio_arg *a = arg;
	uint32_t v = 0x5a5a5a5a, back = 0;

	if (sandbox_install_filter_vfio(a->mode, a->kernel, a->vfio) < 0)
		return 1;
	if (pwrite(a->fd, &v, sizeof(v), 8) != (ssize_t)sizeof(v))
		return 2;
	if (pread(a->fd, &back, sizeof(back), 8) != (ssize_t)sizeof(back) || back != v)
		return 3;
	if (ioctl(a->fd, VFIO_DEVICE_RESET) != -1 || errno != ENOTTY)
		return 4;
	if (ioctl(a->fd, VFIO_DEVICE_SET_IRQS, NULL) != -1 || errno != ENOTTY)
		return 5;
	return 0;
}

static void test_vfio_calls(void **state)
{
	struct vfio_arg a = { SANDBOX_SECCOMP, false, true, -1 };
	int st;

	(void)state;
	a.fd = memfd_create("sandbox-vfio", MFD_CLOEXEC);
	assert_true(a.fd >= 0);
	assert_int_equal(ftruncate(a.fd, 4096), 0);
	for (int kernel = 0; kernel < 2; kernel++) {
		a.kernel = kernel;
		st = in_child(child_vfio, &a);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fail_msg("--vfio, %s engine: status 0x%x", kernel ? "kernel" : "userspace", st);
	}
	/* without --vfio, register access is not part of the daemon's work */
	if (!SANITIZER_BUILD) {
		a.vfio = false;
		st = in_child(child_vfio, &a);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
			fail_msg("no --vfio: pwrite was not killed (status 0x%x)", st);
	}
	close(a.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forbidden_calls),
		cmocka_unit_test(test_open_refused_softly),
		cmocka_unit_test(test_needed_calls_allowed),
		cmocka_unit_test(test_kernel_engine_vhost),
		cmocka_unit_test(test_vfio_calls),
		cmocka_unit_test(test_no_new_privs),
		cmocka_unit_test(test_modes_and_lookups),
		cmocka_unit_test(test_drop_privileges),
		cmocka_unit_test(test_enter_hands_files_over),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
