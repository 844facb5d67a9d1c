// SPDX-License-Identifier: MIT
/*
 * The control socket server (see control.h). Each connection goes through
 * two phases on the loop: reading its request line (EPOLLIN), then writing
 * the answer (EPOLLOUT), after which it is closed. A timer runs only while
 * connections are open and closes those past their deadline.
 */
#include "control/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "transport/unix.h"
#include "util/log.h"

/* The request as quoted in a refusal: enough to recognise it. */
#define QUOTE_MAX 64

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- answers --------------------------------------------------------------- */

static void refusal(struct json_w *w, const char *msg)
{
	json_w_reset(w);
	json_obj_begin(w);
	json_kv_bool(w, "ok", false);
	json_kv_str(w, "error", msg);
	json_obj_end(w);
}

static void answer_help(struct json_w *w)
{
	const char *p = control_help_text();

	json_key(w, "requests");
	json_arr_begin(w);
	while (*p) {
		char line[128];
		size_t n = strcspn(p, "\n");

		snprintf(line, sizeof(line), "%.*s", (int)n, p);
		json_str(w, line);
		p += n + (p[n] == '\n');
	}
	json_arr_end(w);
}

static int run_request(const struct control_ops *ops, void *ctx, const struct control_req *req,
		       struct json_w *w, char *err, size_t errlen)
{
	switch (req->cmd) {
	case CONTROL_STATS:
		return ops->stats(ctx, w, err, errlen);
	case CONTROL_VM_ADD:
		return ops->vm_add(ctx, req->arg, w, err, errlen);
	case CONTROL_VM_REMOVE:
		return ops->vm_remove(ctx, req->arg, w, err, errlen);
	case CONTROL_HELP:
		answer_help(w);
		return 0;
	}
	snprintf(err, errlen, "unknown request");
	return -EINVAL;
}

int control_answer(const struct control_ops *ops, void *ctx, const char *line, size_t len,
		   struct json_w *out)
{
	struct control_req req;
	char err[CONTROL_ERR_MAX] = "";
	const char *why = NULL;
	size_t q = 0;
	int rc;

	if (control_parse_request(line, len, &req, &why) < 0) {
		while (q < len && line[q] != '\r' && line[q] != '\n')
			q++;

		snprintf(err, sizeof(err), "request '%.*s%s' %s", (int)(q < QUOTE_MAX ? q : QUOTE_MAX),
			 line, q > QUOTE_MAX ? "..." : "", why);
		refusal(out, err);
		return json_w_error(out);
	}
	json_w_reset(out);
	json_obj_begin(out);
	json_kv_bool(out, "ok", true);
	rc = run_request(ops, ctx, &req, out, err, sizeof(err));
	json_obj_end(out);
	if (rc == 0 && json_w_error(out) == 0)
		return 0;
	if (rc == 0)
		snprintf(err, sizeof(err), "the answer could not be built: %s",
			 strerror(-json_w_error(out)));
	else if (!err[0])
		snprintf(err, sizeof(err), "%s", strerror(-rc));
	refusal(out, err);
	return json_w_error(out);
}

/* ---- connections ----------------------------------------------------------- */

static void timer_update(struct control *c)
{
	struct itimerspec its = { 0 };
	bool need = c->nclients > 0;

	if (need == c->timer_on)
		return;
	if (need) {
		its.it_interval.tv_nsec = (long)CONTROL_TICK_MS * 1000000;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(c->timer_fd, 0, &its, NULL) == 0)
		c->timer_on = need;
}

static void client_close(struct control_client *cl)
{
	struct control *c = cl->ctl;

	loop_del(c->loop, &cl->w);
	close(cl->fd);
	cl->fd = -1;
	json_w_free(&cl->out);
	c->nclients--;
	timer_update(c);
}

/* Return: 1 when everything is sent, 0 to wait for room, -errno. */
static int send_answer(struct control_client *cl)
{
	size_t len;
	const char *text = json_w_text(&cl->out, &len);

	while (cl->out_off < len + 1) {
		struct iovec iov[2] = {
			{ (void *)(text + (cl->out_off < len ? cl->out_off : len)),
			  cl->out_off < len ? len - cl->out_off : 0 },
			{ (void *)"\n", 1 },
		};
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
		ssize_t n = sendmsg(cl->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		cl->out_off += (size_t)n;
	}
	return 1;
}

static void on_client_out(struct control_client *cl)
{
	int rc = send_answer(cl);

	if (rc < 0)
		log_debug("control: a client went away before its answer: %s", strerror(-rc));
	if (rc != 0)
		client_close(cl);
}

/* The request is complete (or the client stopped sending): answer it. */
static void respond(struct control_client *cl)
{
	struct control *c = cl->ctl;

	if (control_answer(c->ops, c->ctx, cl->in, cl->in_len, &cl->out) < 0) {
		log_warn("control: out of memory for an answer");
		client_close(cl);
		return;
	}
	cl->out_off = 0;
	cl->answering = true;
	if (loop_mod(c->loop, &cl->w, EPOLLOUT) < 0) {
		client_close(cl);
		return;
	}
	on_client_out(cl);
}

/* Return: true once the request line is complete (or can grow no more). */
static bool read_request(struct control_client *cl, bool *gone)
{
	while (cl->in_len < CONTROL_MAX_LINE) {
		ssize_t n = recv(cl->fd, cl->in + cl->in_len, CONTROL_MAX_LINE - cl->in_len,
				 MSG_DONTWAIT);

		if (n < 0) {
			*gone = errno != EAGAIN && errno != EINTR;
			return false;
		}
		if (n == 0) {
			/* shut down without '\n': what came is the request */
			*gone = cl->in_len == 0;
			return cl->in_len > 0;
		}
		cl->in_len += (size_t)n;
		if (memchr(cl->in + cl->in_len - (size_t)n, '\n', (size_t)n)) {
			cl->in_len = (size_t)((char *)memchr(cl->in, '\n', cl->in_len) - cl->in) + 1;
			return true;
		}
	}
	return true; /* too long: the parser refuses it by its length */
}

static void on_client(void *ctx, uint32_t events)
{
	struct control_client *cl = ctx;
	bool gone = false;

	if (cl->answering) {
		on_client_out(cl);
		return;
	}
	if (read_request(cl, &gone)) {
		cl->in[cl->in_len] = '\0';
		respond(cl);
		return;
	}
	if (gone || (events & (EPOLLERR | EPOLLHUP)))
		client_close(cl);
}

/* Root and the daemon's own user only, whatever the file's mode says. */
static bool peer_allowed(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	return cr.uid == 0 || cr.uid == geteuid();
}

static struct control_client *free_slot(struct control *c)
{
	for (unsigned int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (c->cl[i].fd < 0)
			return &c->cl[i];
	}
	return NULL;
}

static void on_listen(void *ctx, uint32_t events)
{
	struct control *c = ctx;
	struct control_client *cl;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	(void)events;
	if (fd < 0)
		return;
	cl = free_slot(c);
	if (!cl || !peer_allowed(fd)) {
		log_warn("control: connection refused: %s",
			 cl ? "the peer is neither root nor the daemon's user" :
			      "too many control connections at once");
		close(fd);
		return;
	}
	memset(cl, 0, sizeof(*cl));
	cl->ctl = c;
	cl->w.fd = -1;
	json_w_init(&cl->out);
	cl->deadline_ms = now_ms() + CONTROL_IDLE_MS;
	if (loop_add(c->loop, &cl->w, fd, EPOLLIN | EPOLLRDHUP, on_client, cl) < 0) {
		close(fd);
		cl->fd = -1;
		return;
	}
	cl->fd = fd;
	c->nclients++;
	timer_update(c);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct control *c = ctx;
	uint64_t ticks, now = now_ms();

	(void)events;
	if (read(c->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	for (unsigned int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		struct control_client *cl = &c->cl[i];

		if (cl->fd >= 0 && now >= cl->deadline_ms) {
			log_debug("control: closing a connection idle for %u ms", CONTROL_IDLE_MS);
			client_close(cl);
		}
	}
}

int control_start(struct control *c, struct loop *loop, const char *path,
		  const struct control_ops *ops, void *ctx)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->path = path;
	c->ops = ops;
	c->ctx = ctx;
	c->listen_w.fd = c->timer_w.fd = -1;
	for (unsigned int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		c->cl[i].fd = -1;
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c->listen_fd = unix_listen(path, 0600);
	rc = c->timer_fd < 0 ? -errno : c->listen_fd;
	if (rc >= 0)
		rc = loop_add(loop, &c->timer_w, c->timer_fd, EPOLLIN, on_timer, c);
	if (rc >= 0)
		rc = loop_add(loop, &c->listen_w, c->listen_fd, EPOLLIN, on_listen, c);
	if (rc < 0) {
		log_err("--control %s: cannot serve the control socket: %s", path, strerror(-rc));
		control_stop(c);
		return rc;
	}
	log_info("control socket: %s (try: vhost-user-vsock stats %s)", path, path);
	return 0;
}

void control_stop(struct control *c)
{
	for (unsigned int i = 0; i < CONTROL_MAX_CLIENTS; i++) {
		if (c->cl[i].fd >= 0)
			client_close(&c->cl[i]);
	}
	loop_del(c->loop, &c->listen_w);
	loop_del(c->loop, &c->timer_w);
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unix_unlink(c->path);
	}
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	c->listen_fd = c->timer_fd = -1;
}
