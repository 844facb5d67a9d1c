// SPDX-License-Identifier: MIT
/*
 * Service-manager integration: the sd_notify datagram (our sender and the
 * public path, which is libsystemd's when built with it), STATUS= text
 * bounds, LISTEN_PID/LISTEN_FDS detection and taking the activated socket,
 * choosing the socket from a config (an --fd listening or connected, a
 * path, a non-socket refused), the server on inherited fds (a listening
 * one it must not unlink; a connected one after which it stops the loop),
 * and the "<N>" journal prefix of log lines.
 *
 * Notification datagrams are read from a socket the test binds; AF_UNIX
 * datagrams are queued synchronously, so a non-blocking recv() right after
 * the call sees them or proves that nothing was sent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "build_config.h"
#include "cli/cli.h"
#include "daemon/server.h"
#include "daemon/systemd.h"
#include "util/log.h"
#include "unit_util.h"

static void clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	unsetenv("JOURNAL_STREAM");
}

/* ---- notifications ---------------------------------------------------- */

struct sink {
	char dir[64];
	char path[128];
	int fd;
};

static void sink_open(struct sink *k)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(k->dir, sizeof(k->dir), "/tmp/vuv-sd-XXXXXX");
	assert_non_null(mkdtemp(k->dir));
	snprintf(k->path, sizeof(k->path), "%s/notify", k->dir);
	k->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(k->fd >= 0);
	strcpy(sa.sun_path, k->path);
	assert_int_equal(bind(k->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", k->path, 1), 0);
}

static void sink_close(struct sink *k)
{
	close(k->fd);
	unlink(k->path);
	rmdir(k->dir);
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram, or "" when none is queued. */
static const char *sink_read(int fd)
{
	static char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	if (n < 0) {
		assert_int_equal(errno, EAGAIN);
		n = 0;
	}
	buf[n] = '\0';
	return buf;
}

static void test_notify_unset_is_noop(void **state)
{
	(void)state;
	clear_env();
	assert_int_equal(systemd_notify_datagram("READY=1"), 0);
	assert_int_equal(systemd_notify("READY=1"), 0);
	systemd_notify_ready();
	systemd_notify_status("nobody listens");
	assert_int_equal(setenv("NOTIFY_SOCKET", "", 1), 0);
	assert_int_equal(systemd_notify_datagram("READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

static void test_notify_path(void **state)
{
	struct sink k;

	(void)state;
	clear_env();
	sink_open(&k);
	assert_int_equal(systemd_notify_datagram("READY=1"), 1);
	assert_string_equal(sink_read(k.fd), "READY=1");
	assert_true(systemd_notify("STATUS=public path") > 0);
	assert_string_equal(sink_read(k.fd), "STATUS=public path");
	systemd_notify_ready();
	assert_string_equal(sink_read(k.fd), "READY=1");
	systemd_notify_status("%s: serving front end (session %lu)", "vsock", 7ul);
	assert_string_equal(sink_read(k.fd), "STATUS=vsock: serving front end (session 7)");
	assert_string_equal(sink_read(k.fd), "");
	sink_close(&k);
}

static void test_notify_status_is_bounded(void **state)
{
	char long_text[1000];
	const char *got;
	struct sink k;

	(void)state;
	clear_env();
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	sink_open(&k);
	systemd_notify_status("%s", long_text);
	got = sink_read(k.fd);
	assert_int_equal(strncmp(got, "STATUS=xxx", 10), 0);
	assert_true(strlen(got) < 300);
	assert_true(strlen(got) > 200);
	sink_close(&k);
}

static void test_notify_abstract(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char name[64];
	socklen_t len;
	int fd;

	(void)state;
	clear_env();
	snprintf(name, sizeof(name), "@vuv-test-notify-%d", (int)getpid());
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	memcpy(sa.sun_path + 1, name + 1, strlen(name) - 1);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	assert_int_equal(systemd_notify_datagram("READY=1"), 1);
	assert_string_equal(sink_read(fd), "READY=1");
	systemd_notify_ready();
	assert_string_equal(sink_read(fd), "READY=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_notify_bad_addresses(void **state)
{
	char too_long[200];

	(void)state;
	clear_env();
	memset(too_long, 'a', sizeof(too_long) - 1);
	too_long[0] = '/';
	too_long[sizeof(too_long) - 1] = '\0';
	const char *const bad[] = { "relative/path", "@", "/", too_long, "vsock:2:1234" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(setenv("NOTIFY_SOCKET", bad[i], 1), 0);
		assert_int_equal(systemd_notify_datagram("READY=1"), -EINVAL);
		systemd_notify_ready(); /* logs at most; never fails the daemon */
	}
	/* nobody bound there: the send fails, the error is returned */
	assert_int_equal(setenv("NOTIFY_SOCKET", "/nonexistent-dir/notify", 1), 0);
	assert_true(systemd_notify_datagram("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
}

/* ---- socket activation ------------------------------------------------ */

static void set_listen_env(const char *pid, const char *fds)
{
	char own[32];

	if (!pid) {
		snprintf(own, sizeof(own), "%d", (int)getpid());
		pid = own;
	}
	assert_int_equal(setenv("LISTEN_PID", pid, 1), 0);
	if (fds)
		assert_int_equal(setenv("LISTEN_FDS", fds, 1), 0);
	else
		unsetenv("LISTEN_FDS");
}

static void test_activation_pending(void **state)
{
	char other[32];

	(void)state;
	clear_env();
	assert_false(systemd_activation_pending());
	set_listen_env(NULL, "1");
	assert_true(systemd_activation_pending());
	snprintf(other, sizeof(other), "%d", (int)getpid() + 1);
	set_listen_env(other, "1");
	assert_false(systemd_activation_pending()); /* meant for another process */
	set_listen_env(NULL, NULL);
	assert_false(systemd_activation_pending());
	const char *const bad_pids[] = { "", "x", "12x", "-1", "99999999999999999999999" };

	for (size_t i = 0; i < sizeof(bad_pids) / sizeof(bad_pids[0]); i++) {
		set_listen_env(bad_pids[i], "1");
		assert_false(systemd_activation_pending());
	}
	clear_env();
}

static int listening_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	/* autobind: an abstract address, no file to clean up */
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* sd_listen_fds() hands out fds from 3 up; the test needs them free. */
static void need_free_fds(int first, int count)
{
	for (int fd = first; fd < first + count; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			skip();
	}
}

static void test_listen_fd(void **state)
{
	int l, fd;

	(void)state;
	clear_env();
	need_free_fds(3, 2);
	l = listening_socket();
	if (l != 3) {
		assert_int_equal(dup2(l, 3), 3);
		close(l);
	}
	set_listen_env(NULL, "1");
	fd = systemd_listen_fd();
#if HAVE_LIBSYSTEMD
	assert_int_equal(fd, 3);
	/* consumed: nothing started later may take the socket as its own */
	assert_null(getenv("LISTEN_FDS"));
	assert_false(systemd_activation_pending());
	assert_true(fcntl(3, F_GETFD) & FD_CLOEXEC);
#else
	assert_int_equal(fd, -ENOTSUP);
#endif
	close(3);
	clear_env();
}

static void test_listen_fd_counts(void **state)
{
	(void)state;
	clear_env();
	need_free_fds(3, 2);
	assert_int_equal(open("/dev/null", O_RDONLY), 3);
	assert_int_equal(open("/dev/null", O_RDONLY), 4);
	set_listen_env(NULL, "2");
#if HAVE_LIBSYSTEMD
	assert_int_equal(systemd_listen_fd(), -E2BIG);
	set_listen_env(NULL, "0");
	assert_true(systemd_listen_fd() < 0);
	set_listen_env(NULL, "many");
	assert_true(systemd_listen_fd() < 0);
#else
	assert_int_equal(systemd_listen_fd(), -ENOTSUP);
#endif
	close(3);
	close(4);
	clear_env();
}

/* ---- picking the socket ----------------------------------------------- */

static void one_device(struct config *cfg, char *path)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->fd = -1;
	cfg->nvms = 2;
	cfg->vms[0].socket_path = path;
	cfg->vms[1].socket_path = path;
}

static void test_pick_socket(void **state)
{
	char path[] = "/run/x.sock";
	struct server_socket sock;
	struct config cfg;
	int sp[2], pfd[2], l;

	(void)state;
	clear_env();
	one_device(&cfg, path);
	assert_int_equal(systemd_pick_socket(&cfg, 0, &sock), 0);
	assert_ptr_equal(sock.path, path);
	assert_int_equal(sock.fd, -1);

	l = listening_socket();
	cfg.fd = l;
	assert_int_equal(systemd_pick_socket(&cfg, 0, &sock), 0);
	assert_null(sock.path);
	assert_int_equal(sock.fd, l);
	assert_true(sock.listening);
	assert_true(fcntl(l, F_GETFL) & O_NONBLOCK);
	/* only device 0 can have an inherited socket */
	assert_int_equal(systemd_pick_socket(&cfg, 1, &sock), 0);
	assert_ptr_equal(sock.path, path);
	close(l);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	cfg.fd = sp[0];
	assert_int_equal(systemd_pick_socket(&cfg, 0, &sock), 0);
	assert_false(sock.listening);
	assert_int_equal(fcntl(sp[0], F_GETFL) & O_NONBLOCK, 0);
	assert_true(fcntl(sp[0], F_GETFD) & FD_CLOEXEC);
	close(sp[0]);
	close(sp[1]);

	assert_int_equal(pipe(pfd), 0);
	cfg.fd = pfd[0];
	assert_int_equal(systemd_pick_socket(&cfg, 0, &sock), -ENOTSOCK);
	close(pfd[0]);
	close(pfd[1]);
	cfg.fd = pfd[0]; /* closed now */
	assert_int_equal(systemd_pick_socket(&cfg, 0, &sock), -EBADF);
}

static void test_check_socket_fd(void **state)
{
	bool listening = true;
	int fd;

	(void)state;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(cli_check_socket_fd(fd, &listening), -EPROTOTYPE);
	close(fd);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(cli_check_socket_fd(fd, &listening), -EAFNOSUPPORT);
	close(fd);
	/* bound but not listening yet: a stream socket, not a listener */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(cli_check_socket_fd(fd, &listening), 0);
	assert_false(listening);
	close(fd);
	assert_int_equal(cli_check_socket_fd(-1, &listening), -EBADF);
	assert_string_equal(cli_socket_fd_error(-EPROTOTYPE), "is not a stream (SOCK_STREAM) socket");
	assert_string_equal(cli_socket_fd_error(-EIO), "cannot be inspected");
}

/* ---- the server on inherited sockets ---------------------------------- */

struct srv_fix {
	struct loop loop;
	struct server srv;
	struct server_engine eng;
	int timer_fd;
	struct loop_watch timer_w;
	bool timed_out;
	int attached, detached, attach_rc;
	int fds_before;
};

static int count_attach(void *priv)
{
	struct srv_fix *f = priv;

	f->attached++;
	return f->attach_rc;
}

static void count_detach(void *priv)
{
	struct srv_fix *f = priv;

	f->detached++;
}

/* The dispatcher's device hooks are optional; these tests only move sessions. */
static const struct vu_dev_ops bare_ops = {
	.nqueues = 2,
	.max_queue_size = 256,
};

static void on_timer(void *ctx, uint32_t events)
{
	struct srv_fix *f = ctx;

	(void)events;
	f->timed_out = true;
	loop_stop(&f->loop);
}

static int srv_setup(void **state)
{
	struct srv_fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	clear_env();
	f->fds_before = ut_fd_count();
	assert_int_equal(loop_init(&f->loop), 0);
	f->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	assert_true(f->timer_fd >= 0);
	assert_int_equal(loop_add(&f->loop, &f->timer_w, f->timer_fd, EPOLLIN, on_timer, f), 0);
	f->eng = (struct server_engine){ .ops = &bare_ops, .priv = f, .attach = count_attach,
					 .detach = count_detach };
	*state = f;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv_fix *f = *state;

	server_stop(&f->srv);
	loop_del(&f->loop, &f->timer_w);
	close(f->timer_fd);
	loop_fini(&f->loop);
	assert_int_equal(f->detached, f->attached - (f->attach_rc < 0));
	assert_int_equal(ut_fd_count(), f->fds_before);
	free(f);
	return 0;
}

/* Run the loop until something stops it, at most @ms milliseconds. */
static void run_for(struct srv_fix *f, long ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (ms % 1000) * 1000000 } };

	f->timed_out = false;
	assert_int_equal(timerfd_settime(f->timer_fd, 0, &its, NULL), 0);
	assert_int_equal(loop_run(&f->loop), 0);
}

static bool peer_closed(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int connect_to(int listen_fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void test_server_inherited_listener(void **state)
{
	struct srv_fix *f = *state;
	struct server_socket sock = { .fd = -1, .listening = true };
	char dir[] = "/tmp/vuv-sdl-XXXXXX", path[64];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int c;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/activated.sock", dir);
	strcpy(sa.sun_path, path);
	sock.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(bind(sock.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(sock.fd, 4), 0);
	assert_int_equal(server_start_on(&f->srv, &f->loop, "t", &sock, &f->eng), 0);

	/* a readiness probe: connect and leave at once */
	c = connect_to(sock.fd);
	close(c);
	run_for(f, 100);
	run_for(f, 100);
	assert_int_equal(f->detached, f->attached);
	assert_int_equal(f->srv.conn_fd, -1);

	/* the next VMM is served */
	c = connect_to(sock.fd);
	run_for(f, 100);
	assert_true(f->timed_out);
	assert_int_equal(f->srv.conn_fd >= 0, 1);
	assert_false(peer_closed(c));
	close(c);
	run_for(f, 100);
	assert_int_equal(f->srv.conn_fd, -1);

	/* stop closes the fd but leaves the file to whoever made it */
	server_stop(&f->srv);
	assert_int_equal(fcntl(sock.fd, F_GETFD), -1);
	assert_int_equal(lstat(path, &st), 0);
	unlink(path);
	rmdir(dir);
}

static void test_server_connected_fd_once(void **state)
{
	struct srv_fix *f = *state;
	struct server_socket sock = { .listening = false };
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	sock.fd = sp[0];
	assert_int_equal(server_start_on(&f->srv, &f->loop, "t", &sock, &f->eng), 0);
	/* served at once: no accept, no listening socket */
	assert_int_equal(f->attached, 1);
	assert_int_equal(f->srv.sessions, 1);
	assert_int_equal(f->srv.listen_fd, -1);
	run_for(f, 50);
	assert_true(f->timed_out); /* still serving */
	close(sp[1]);
	run_for(f, 5000);
	assert_false(f->timed_out); /* the server stopped the loop itself */
	assert_int_equal(f->detached, 1);
	assert_int_equal(fcntl(sp[0], F_GETFD), -1);
}

static void test_server_connected_fd_bad_message(void **state)
{
	struct srv_fix *f = *state;
	struct server_socket sock = { .listening = false };
	const uint8_t junk[12] = { 0 };
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	sock.fd = sp[0];
	assert_int_equal(server_start_on(&f->srv, &f->loop, "t", &sock, &f->eng), 0);
	assert_int_equal(send(sp[1], junk, sizeof(junk), MSG_NOSIGNAL), (ssize_t)sizeof(junk));
	run_for(f, 5000);
	assert_false(f->timed_out);
	assert_int_equal(f->detached, 1);
	assert_true(peer_closed(sp[1]));
	close(sp[1]);
}

static void test_server_connected_fd_attach_fails(void **state)
{
	struct srv_fix *f = *state;
	struct server_socket sock = { .listening = false };
	int sp[2];

	f->attach_rc = -EIO;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	sock.fd = sp[0];
	assert_int_equal(server_start_on(&f->srv, &f->loop, "t", &sock, &f->eng), -EIO);
	assert_int_equal(fcntl(sp[0], F_GETFD), -1); /* taken over, closed */
	assert_true(peer_closed(sp[1]));
	close(sp[1]);
}

static void test_server_status_lines(void **state)
{
	struct srv_fix *f = *state;
	struct server_socket sock = { .fd = -1, .listening = true };
	struct sink k;
	int c;

	sink_open(&k);
	sock.fd = listening_socket();
	assert_int_equal(server_start_on(&f->srv, &f->loop, "vsock", &sock, &f->eng), 0);
	assert_string_equal(sink_read(k.fd), "STATUS=vsock: waiting for a front end");
	c = connect_to(sock.fd);
	run_for(f, 100);
	assert_string_equal(sink_read(k.fd), "STATUS=vsock: serving front end (session 1)");
	close(c);
	run_for(f, 100);
	assert_string_equal(sink_read(k.fd), "STATUS=vsock: waiting for a front end");
	assert_string_equal(sink_read(k.fd), "");
	server_stop(&f->srv);
	sink_close(&k);
}

/* ---- journal prefix --------------------------------------------------- */

/* Log one line with stderr on a pipe and JOURNAL_STREAM set to @env. */
static const char *log_line_with(const char *env, enum log_level level)
{
	static char buf[512];
	int p[2], saved;
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	if (env && strcmp(env, "match") == 0) {
		struct stat st;
		char id[64];

		assert_int_equal(fstat(STDERR_FILENO, &st), 0);
		snprintf(id, sizeof(id), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", id, 1);
	} else if (env) {
		setenv("JOURNAL_STREAM", env, 1);
	} else {
		unsetenv("JOURNAL_STREAM");
	}
	log_detect_stream();
	log_msg(level, "hello %d", 42);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	unsetenv("JOURNAL_STREAM");
	log_detect_stream();
	return buf;
}

static void test_journal_prefix(void **state)
{
	const char *line;

	(void)state;
	log_set_level(LOG_LVL_TRACE);
	assert_string_equal(log_line_with("match", LOG_LVL_ERROR), "<3>hello 42\n");
	assert_string_equal(log_line_with("match", LOG_LVL_WARN), "<4>hello 42\n");
	assert_string_equal(log_line_with("match", LOG_LVL_INFO), "<6>hello 42\n");
	assert_string_equal(log_line_with("match", LOG_LVL_TRACE), "<7>hello 42\n");
	/* stderr is not the journal's stream, or the variable is malformed */
	const char *const others[] = { NULL, "1:1", "abc", "1:", ":2", "1:2x", "-1:-1", "" };

	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		line = log_line_with(others[i], LOG_LVL_WARN);
		assert_int_equal(strncmp(line, "vhost-user-vsock[", 17), 0);
		assert_non_null(strstr(line, "warn: hello 42\n"));
	}
	log_set_level(LOG_LVL_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_unset_is_noop),
		cmocka_unit_test(test_notify_path),
		cmocka_unit_test(test_notify_status_is_bounded),
		cmocka_unit_test(test_notify_abstract),
		cmocka_unit_test(test_notify_bad_addresses),
		cmocka_unit_test(test_activation_pending),
		cmocka_unit_test(test_listen_fd),
		cmocka_unit_test(test_listen_fd_counts),
		cmocka_unit_test(test_pick_socket),
		cmocka_unit_test(test_check_socket_fd),
		cmocka_unit_test_setup_teardown(test_server_inherited_listener, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_connected_fd_once, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_connected_fd_bad_message, srv_setup,
						srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_connected_fd_attach_fails, srv_setup,
						srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_status_lines, srv_setup, srv_teardown),
		cmocka_unit_test(test_journal_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
