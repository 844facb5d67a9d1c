// SPDX-License-Identifier: MIT
/*
 * Accepting front ends and running their sessions on the event loop.
 *
 * A front end that stops in the middle of a message would block the loop in
 * the message reader; the connection therefore has a receive timeout, after
 * which the session is ended like any other protocol error.
 *
 * The service manager is told each change (STATUS=), so `systemctl status`
 * shows whether a VMM is attached.
 */
#include "daemon/server.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon/systemd.h"
#include "transport/unix.h"
#include "util/log.h"

#define SERVER_MSG_TIMEOUT_SEC 5
/* owner-only: whoever may connect controls the device and maps guest RAM */
#define SERVER_DEFAULT_MODE 0600

static const char *where(const struct server *s)
{
	return s->path ? s->path : "the inherited socket";
}

void server_session_end(struct server *s, int rc)
{
	if (!s->in_session)
		return;
	if (rc == -ECONNRESET)
		log_info("%s: front end disconnected", s->name);
	else if (rc < 0)
		log_warn("%s: ending session: %s", s->name, strerror(-rc));
	vu_dev_fini(&s->dev);
	if (s->eng.detach)
		s->eng.detach(s->eng.priv);
	s->in_session = false;
}

int server_session_begin(struct server *s, const struct vu_transport *tp, int sock)
{
	int rc;

	if (s->eng.attach) {
		rc = s->eng.attach(s->eng.priv);
		if (rc < 0)
			return rc;
	}
	if (tp)
		vu_dev_init_transport(&s->dev, s->name, tp, s->eng.ops, s->eng.priv);
	else
		vu_dev_init(&s->dev, s->name, sock, s->eng.ops, s->eng.priv);
	s->in_session = true;
	s->sessions++;
	log_info("%s: front end connected (session %lu)", s->name, s->sessions);
	systemd_notify_status("%s: serving front end (session %lu)", s->name, s->sessions);
	return 0;
}

static void end_session(struct server *s, int rc)
{
	if (s->conn_fd < 0)
		return;
	loop_del(s->loop, &s->conn_w);
	server_session_end(s, rc);
	close(s->conn_fd);
	s->conn_fd = -1;
	if (s->one_shot) {
		/* nobody can reach us again: the convention is to exit */
		log_info("%s: the front end of the inherited connection is gone; stopping", s->name);
		systemd_notify_status("%s: front end disconnected, exiting", s->name);
		loop_stop(s->loop);
		return;
	}
	log_info("%s: waiting for a front end on %s", s->name, where(s));
	systemd_notify_status("%s: waiting for a front end", s->name);
}

static void on_conn(void *ctx, uint32_t events)
{
	struct server *s = ctx;
	int rc;

	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
		end_session(s, -ECONNRESET);
		return;
	}
	rc = vu_dev_process(&s->dev);
	if (rc < 0)
		end_session(s, rc);
}

static int begin_session(struct server *s, int fd)
{
	struct timeval tv = { .tv_sec = SERVER_MSG_TIMEOUT_SEC };
	int rc;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	rc = loop_add(s->loop, &s->conn_w, fd, EPOLLIN, on_conn, s);
	if (rc < 0)
		return rc;
	rc = server_session_begin(s, NULL, fd);
	if (rc < 0) {
		loop_del(s->loop, &s->conn_w);
		return rc;
	}
	s->conn_fd = fd;
	return 0;
}

/*
 * A front end that reconnects closes its old connection and connects at
 * once; the loop may report the listener before the old connection's
 * hang-up. Finish the old session first (its last messages, then its end),
 * so the reconnect is served instead of refused as a second front end.
 */
static void finish_if_hung_up(struct server *s)
{
	struct pollfd p = { .fd = s->conn_fd, .events = POLLIN | POLLRDHUP };

	if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
		return;
	/* each round reads a message or ends the session: a closed peer cannot block it */
	while (s->conn_fd >= 0)
		on_conn(s, EPOLLIN);
}

static void on_listen(void *ctx, uint32_t events)
{
	struct server *s = ctx;
	int fd, rc;

	(void)events;
	fd = unix_accept(s->listen_fd);
	if (fd < 0) {
		if (fd != -EAGAIN && fd != -EINTR)
			log_warn("%s: accept: %s", s->name, strerror(-fd));
		return;
	}
	if (s->conn_fd >= 0)
		finish_if_hung_up(s);
	if (s->conn_fd >= 0) {
		log_warn("%s: refusing a second front end while one is connected", s->name);
		close(fd);
		return;
	}
	rc = begin_session(s, fd);
	if (rc < 0) {
		log_err("%s: cannot serve the front end: %s", s->name, strerror(-rc));
		close(fd);
	}
}

static int watch_listener(struct server *s)
{
	int rc = loop_add(s->loop, &s->listen_w, s->listen_fd, EPOLLIN, on_listen, s);

	if (rc < 0) {
		log_err("%s: cannot watch the socket: %s", s->name, strerror(-rc));
		close(s->listen_fd);
		if (s->path)
			unix_unlink(s->path);
		s->listen_fd = -1;
		return rc;
	}
	log_info("%s: waiting for a front end on %s", s->name, where(s));
	systemd_notify_status("%s: waiting for a front end", s->name);
	return 0;
}

static int serve_connected(struct server *s, int fd)
{
	int rc;

	s->one_shot = true;
	rc = begin_session(s, fd);
	if (rc < 0) {
		log_err("%s: cannot serve the front end: %s", s->name, strerror(-rc));
		close(fd);
	}
	return rc;
}

int server_start_on(struct server *s, struct loop *loop, const char *name,
		    const struct server_socket *sock, const struct server_engine *eng)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->loop = loop;
	s->eng = *eng;
	s->conn_fd = -1;
	s->conn_w.fd = -1;
	s->listen_w.fd = -1;
	s->listen_fd = -1;
	if (sock->vfio)
		return server_vvu_start(s, sock);
	if (sock->fd >= 0 && !sock->listening)
		return serve_connected(s, sock->fd);
	if (sock->fd >= 0) {
		s->listen_fd = sock->fd;
	} else {
		s->path = sock->path;
		s->listen_fd = unix_listen(sock->path, sock->mode ? sock->mode : SERVER_DEFAULT_MODE);
		if (s->listen_fd < 0)
			return s->listen_fd;
	}
	return watch_listener(s);
}

int server_start(struct server *s, struct loop *loop, const char *name, const char *path,
		 const struct server_engine *eng)
{
	const struct server_socket sock = { .path = path, .fd = -1, .listening = true };

	return server_start_on(s, loop, name, &sock, eng);
}

bool server_connected(const struct server *s)
{
	return s->in_session || s->conn_fd >= 0;
}

void server_get_tstats(const struct server *s, struct server_tstats *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = "unix";
	if (s->vvu)
		server_vvu_tstats(s, out);
}

void server_stop(struct server *s)
{
	if (s->vvu)
		server_vvu_stop(s);
	if (s->conn_fd >= 0)
		end_session(s, -ECONNRESET);
	if (s->listen_fd >= 0) {
		loop_del(s->loop, &s->listen_w);
		close(s->listen_fd);
		if (s->path)
			unix_unlink(s->path);
		s->listen_fd = -1;
	}
}
