// SPDX-License-Identifier: MIT
/*
 * Server: the socket file's life (created 0600, removed on stop, a live or
 * foreign file at the path refused), one front end at a time (a second one
 * is closed at once), the engine's attach/detach pairing over connect,
 * disconnect, a malformed first message, a failing attach and a stop in
 * the middle of a session, and that a new front end is served after the
 * previous one left. Nothing here depends on what the dispatcher answers:
 * the only requests sent are malformed ones, which end any session.
 *
 * The loop is run one batch at a time: a permanently readable eventfd in
 * the loop stops it after each batch, and Unix-socket connect() and close()
 * take effect synchronously, so the event under test is in that batch.
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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/server.h"
#include "unit_util.h"

struct fixture {
	char dir[64];
	char path[128];
	struct loop loop;
	int stop_fd;
	struct loop_watch stop_w;
	struct server srv;
	struct server_engine eng;
	int attached, detached, attach_rc;
	int fds_before;
};

static int fake_attach(void *priv)
{
	struct fixture *f = priv;

	f->attached++;
	return f->attach_rc;
}

static void fake_detach(void *priv)
{
	struct fixture *f = priv;

	f->detached++;
	assert_true(f->detached <= f->attached);
}

static uint64_t no_features(struct vu_dev *dev)
{
	(void)dev;
	return 0;
}

static void no_reset(struct vu_dev *dev)
{
	(void)dev;
}

static const struct vu_dev_ops fake_ops = {
	.nqueues = 2,
	.max_queue_size = 256,
	.get_features = no_features,
	.reset = no_reset,
};

static void on_stop(void *ctx, uint32_t events)
{
	(void)events;
	loop_stop(ctx);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->fds_before = ut_fd_count();
	snprintf(f->dir, sizeof(f->dir), "/tmp/vuv-srv-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/vu.sock", f->dir);
	assert_int_equal(loop_init(&f->loop), 0);
	f->stop_fd = eventfd(1, EFD_CLOEXEC);
	assert_true(f->stop_fd >= 0);
	assert_int_equal(loop_add(&f->loop, &f->stop_w, f->stop_fd, EPOLLIN, on_stop, &f->loop), 0);
	f->eng = (struct server_engine){ .ops = &fake_ops, .priv = f, .attach = fake_attach,
					 .detach = fake_detach };
	f->srv.listen_fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->srv.listen_fd >= 0)
		server_stop(&f->srv);
	loop_del(&f->loop, &f->stop_w);
	close(f->stop_fd);
	loop_fini(&f->loop);
	unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);
	/* every fd the server or the test opened is closed again */
	assert_int_equal(ut_fd_count(), f->fds_before);
	/* every session that attached was detached again */
	assert_int_equal(f->detached, (int)f->srv.sessions);
	free(f);
	return 0;
}

static void run_batch(struct fixture *f)
{
	assert_int_equal(loop_run(&f->loop), 0);
}

/* The server closed its end: recv sees EOF at once (or a reset). */
static bool closed_by_server(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void start(struct fixture *f)
{
	assert_int_equal(server_start(&f->srv, &f->loop, "test", f->path, &f->eng), 0);
}

static void test_socket_file_lifecycle(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	start(f);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(f->srv.conn_fd, -1);
	server_stop(&f->srv);
	assert_int_equal(f->srv.listen_fd, -1);
	assert_int_equal(lstat(f->path, &st), -1);
	server_stop(&f->srv);  /* twice is harmless */
	assert_int_equal(f->attached, 0);
}

static void test_path_refused(void **state)
{
	struct fixture *f = *state;
	struct server other;
	struct stat st;
	int fd;

	start(f);
	/* a second server on a live socket */
	assert_int_equal(server_start(&other, &f->loop, "other", f->path, &f->eng), -EADDRINUSE);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	server_stop(&f->srv);

	/* a regular file is left alone */
	fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(server_start(&f->srv, &f->loop, "test", f->path, &f->eng), -EEXIST);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void test_session_and_reconnect(void **state)
{
	struct fixture *f = *state;
	int c1, c2, c3;

	start(f);
	c1 = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_int_equal(f->attached, 1);
	assert_int_equal(f->srv.sessions, 1);
	assert_true(f->srv.conn_fd >= 0);
	assert_false(closed_by_server(c1));

	/* a second front end while one is served: closed, no attach */
	c2 = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_true(closed_by_server(c2));
	assert_int_equal(f->attached, 1);
	assert_int_equal(f->srv.sessions, 1);
	assert_false(closed_by_server(c1));
	close(c2);

	/* the first leaves: detach, and the next one is served */
	close(c1);
	run_batch(f);
	assert_int_equal(f->detached, 1);
	assert_int_equal(f->srv.conn_fd, -1);
	c3 = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_int_equal(f->attached, 2);
	assert_int_equal(f->srv.sessions, 2);
	assert_false(closed_by_server(c3));
	close(c3);
	run_batch(f);
	assert_int_equal(f->detached, 2);
}

/* A header with version 0 and request 0 is malformed under any dispatcher. */
static void test_malformed_message_ends_session(void **state)
{
	struct fixture *f = *state;
	const uint8_t bad[12] = { 0 };
	int c;

	start(f);
	c = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_int_equal(f->attached, 1);
	assert_int_equal(send(c, bad, sizeof(bad), MSG_NOSIGNAL), (ssize_t)sizeof(bad));
	run_batch(f);
	assert_int_equal(f->detached, 1);
	assert_int_equal(f->srv.conn_fd, -1);
	assert_true(closed_by_server(c));
	close(c);
}

static void test_attach_failure(void **state)
{
	struct fixture *f = *state;
	int c;

	f->attach_rc = -EIO;
	start(f);
	c = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_int_equal(f->attached, 1);
	assert_int_equal(f->detached, 0);
	assert_int_equal(f->srv.sessions, 0);
	assert_int_equal(f->srv.conn_fd, -1);
	assert_true(closed_by_server(c));
	close(c);

	/* the server keeps listening and serves the next one */
	f->attach_rc = 0;
	c = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_int_equal(f->srv.sessions, 1);
	assert_false(closed_by_server(c));
	close(c);
}

static void test_stop_during_session(void **state)
{
	struct fixture *f = *state;
	struct stat st;
	int c;

	start(f);
	c = ut_connect(f->path, SOCK_STREAM);
	run_batch(f);
	assert_int_equal(f->attached, 1);
	server_stop(&f->srv);
	assert_int_equal(f->detached, 1);
	assert_int_equal(f->srv.conn_fd, -1);
	assert_int_equal(f->srv.listen_fd, -1);
	assert_true(closed_by_server(c));
	assert_int_equal(lstat(f->path, &st), -1);
	close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_file_lifecycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_and_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_message_ends_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_session, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
