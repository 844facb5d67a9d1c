// SPDX-License-Identifier: MIT
/*
 * Hybrid vsock host side: listeners and CONNECT handshakes (see hybrid.h).
 * Host programs are local but not trusted to behave: every failure of one
 * closes that socket only, and is logged at debug level so that a client
 * looping on garbage cannot fill the log.
 */
#include "engine/user/hybrid.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport/unix.h"
#include "util/log.h"

uint64_t hybrid_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *type_name(int type)
{
	return type == SOCK_SEQPACKET ? "seqpacket" : "stream";
}

/* ---- pending handshakes ----------------------------------------------------- */

static void pending_close(struct hybrid_pending *p)
{
	struct hybrid *hy = p->hy;

	loop_del(hy->loop, &p->w);
	close(p->fd);
	p->fd = -1;
	hy->npending--;
}

static void pending_fail(struct hybrid_pending *p, int err)
{
	log_debug("%s: hybrid %s client closed: %s", p->hy->name, type_name(p->type),
		  err == -EMSGSIZE ? "CONNECT line too long" :
		  err == -ETIMEDOUT ? "no CONNECT line in time" :
		  err == 0 ? "closed before its CONNECT line" : strerror(-err));
	pending_close(p);
}

static void pending_done(struct hybrid_pending *p, uint32_t port)
{
	struct hybrid *hy = p->hy;
	int fd = p->fd, type = p->type;

	/* hand the fd over: forget it here without closing */
	loop_del(hy->loop, &p->w);
	p->fd = -1;
	hy->npending--;
	hy->on_connect(hy->ctx, fd, type, port);
}

/*
 * One read of the handshake. STREAM: peek, let the parser take its line,
 * then remove exactly those bytes, so anything the client sent after the
 * line stays for the connection. SEQPACKET: the first message must be
 * exactly one CONNECT line.
 * Return: 1 with *@port set, 0 for more to come, or the negative errno
 * that ends the handshake.
 */
static int step(struct hybrid_pending *p, uint32_t *port)
{
	bool seq = p->type == SOCK_SEQPACKET;
	char buf[HYBRID_LINE_MAX];
	size_t used = 0;
	ssize_t n;
	int rc;

	n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT | (seq ? MSG_TRUNC : MSG_PEEK));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if (n == 0)
		return -ECONNRESET; /* end of stream (or an empty first message): no line */
	if ((size_t)n > sizeof(buf))
		return -EMSGSIZE;   /* a first message longer than any line */
	rc = hybrid_parser_feed(&p->parser, buf, (size_t)n, &used, port);
	if (rc < 0)
		return rc;
	if (seq)
		return rc == 1 && used == (size_t)n ? 1 : -EINVAL;
	if (used && recv(p->fd, buf, used, MSG_DONTWAIT) != (ssize_t)used)
		return -EIO;
	return rc;
}

/* Return: true when the handshake ended (connected or closed), false for more to come. */
static bool pending_step(struct hybrid_pending *p)
{
	uint32_t port = 0;
	int rc = step(p, &port);

	if (rc == 1)
		pending_done(p, port);
	else if (rc < 0)
		pending_fail(p, rc == -ECONNRESET ? 0 : rc);
	return rc != 0;
}

static void on_pending(void *ctx, uint32_t events)
{
	(void)events;
	pending_step(ctx);
}

static struct hybrid_pending *free_slot(struct hybrid *hy)
{
	for (unsigned int i = 0; i < hy->max_pending; i++) {
		if (hy->pend[i].fd < 0)
			return &hy->pend[i];
	}
	return NULL;
}

static void on_listen(void *ctx, uint32_t events)
{
	struct hybrid_listener *l = ctx;
	struct hybrid *hy = l->hy;
	struct hybrid_pending *p;
	int fd;

	(void)events;
	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return; /* EAGAIN, or the client gave up already */
	p = free_slot(hy);
	if (!p) {
		if (hy->refused++ % 1000 == 0)
			log_warn("%s: %u hybrid handshakes pending: closing new host connections",
				 hy->name, hy->max_pending);
		close(fd);
		return;
	}
	p->fd = fd;
	p->type = l->type;
	p->deadline_ms = hybrid_now_ms() + hy->timeout_ms;
	hybrid_parser_init(&p->parser);
	hy->npending++;
	/*
	 * A client usually writes its line right after connect(), so it is
	 * often here already: then no watch, no wake-up and no epoll_ctl pair.
	 */
	if (pending_step(p))
		return;
	if (loop_add(hy->loop, &p->w, fd, EPOLLIN, on_pending, p) < 0)
		pending_close(p);
}

void hybrid_expire(struct hybrid *hy, uint64_t now_ms)
{
	for (unsigned int i = 0; hy->npending && i < hy->max_pending; i++) {
		struct hybrid_pending *p = &hy->pend[i];

		if (p->fd >= 0 && now_ms >= p->deadline_ms)
			pending_fail(p, -ETIMEDOUT);
	}
}

bool hybrid_busy(const struct hybrid *hy)
{
	return hy->npending > 0;
}

/* ---- listeners ------------------------------------------------------------ */

static int listener_open(struct hybrid *hy, struct hybrid_listener *l, const char *path,
			 const char *suffix, int type)
{
	int n = snprintf(l->path, sizeof(l->path), "%s%s", path, suffix);
	int rc;

	l->hy = hy;
	l->type = type;
	l->fd = -1;
	l->w.fd = -1;
	if (n < 0 || (size_t)n >= sizeof(l->path)) {
		log_err("%s: hybrid socket path '%s%s' is too long", hy->name, path, suffix);
		return -ENAMETOOLONG;
	}
	l->fd = unix_listen_type(l->path, hy->mode, type);
	if (l->fd < 0)
		return l->fd;
	rc = loop_add(hy->loop, &l->w, l->fd, EPOLLIN, on_listen, l);
	if (rc < 0) {
		log_err("%s: cannot watch '%s': %s", hy->name, l->path, strerror(-rc));
		close(l->fd);
		unix_unlink(l->path);
		l->fd = -1;
	}
	return rc;
}

static void listener_close(struct hybrid *hy, struct hybrid_listener *l)
{
	if (l->fd < 0)
		return;
	loop_del(hy->loop, &l->w);
	close(l->fd);
	unix_unlink(l->path);
	l->fd = -1;
}

int hybrid_start(struct hybrid *hy, struct loop *loop, const char *name, const char *uds_path,
		 hybrid_connect_cb cb, void *ctx)
{
	return hybrid_start_limits(hy, loop, name, uds_path, NULL, cb, ctx);
}

int hybrid_start_limits(struct hybrid *hy, struct loop *loop, const char *name,
			const char *uds_path, const struct hybrid_limits *lim,
			hybrid_connect_cb cb, void *ctx)
{
	int rc;

	memset(hy, 0, sizeof(*hy));
	hy->name = name;
	hy->loop = loop;
	hy->on_connect = cb;
	hy->ctx = ctx;
	hy->max_pending = lim && lim->max_pending ? lim->max_pending : HYBRID_DEFAULT_MAX_PENDING;
	hy->timeout_ms = lim && lim->timeout_ms ? lim->timeout_ms : HYBRID_DEFAULT_TIMEOUT_MS;
	hy->mode = lim && lim->mode ? lim->mode : HYBRID_DEFAULT_MODE;
	hy->lst[0].fd = hy->lst[1].fd = -1;
	if (!uds_path)
		return 0; /* forwarding only: no hybrid sockets, hybrid_stop() still safe */
	hy->pend = calloc(hy->max_pending, sizeof(*hy->pend));
	if (!hy->pend)
		return -ENOMEM;
	for (unsigned int i = 0; i < hy->max_pending; i++) {
		hy->pend[i] = (struct hybrid_pending){ .hy = hy, .fd = -1, .w = { .fd = -1 } };
	}
	rc = listener_open(hy, &hy->lst[0], uds_path, "", SOCK_STREAM);
	if (rc == 0)
		rc = listener_open(hy, &hy->lst[1], uds_path, HYBRID_SEQPACKET_SUFFIX,
				   SOCK_SEQPACKET);
	if (rc < 0) {
		hybrid_stop(hy);
		return rc;
	}
	log_info("%s: host programs connect to %s (stream) and %s (seqpacket)", name,
		 hy->lst[0].path, hy->lst[1].path);
	return 0;
}

void hybrid_stop(struct hybrid *hy)
{
	listener_close(hy, &hy->lst[0]);
	listener_close(hy, &hy->lst[1]);
	for (unsigned int i = 0; hy->pend && i < hy->max_pending; i++) {
		if (hy->pend[i].fd >= 0)
			pending_close(&hy->pend[i]);
	}
	free(hy->pend);
	hy->pend = NULL;
}
