// SPDX-License-Identifier: MIT
/*
 * Forwarding to host AF_VSOCK: the listeners of --forward-listen (see
 * forward.h). Accepting is bounded per event (FWD_ACCEPT_BATCH) so that a
 * flood of host clients cannot starve the rings; the connection table's
 * cap then refuses what does not fit, as it does for hybrid clients.
 */
#include "engine/user/forward.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

#define FWD_ACCEPT_BATCH 16

static int real_connect(void *ctx, uint32_t cid, uint32_t port, int type, uint32_t timeout_ms)
{
	(void)ctx;
	return vsock_connect_to(cid, port, type, timeout_ms);
}

static int real_listen(void *ctx, uint32_t port, int type)
{
	(void)ctx;
	return vsock_listen_on(port, type);
}

const struct fwd_ops fwd_vsock_ops = {
	.connect = real_connect,
	.listen = real_listen,
	.stream_init = stream_vsock_init,
};

static void on_accept(void *ctx, uint32_t events)
{
	struct fwd_listener *l = ctx;
	struct fwd *fw = l->fw;

	(void)events;
	for (int i = 0; i < FWD_ACCEPT_BATCH; i++) {
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("%s: accept on host AF_VSOCK port %u: %s", fw->name, l->port,
					 strerror(errno));
			return;
		}
		fw->accepted++;
		log_debug("%s: host AF_VSOCK client on port %u", fw->name, l->port);
		fw->on_connect(fw->ctx, fd, l->type, l->port);
	}
}

int fwd_start(struct fwd *fw, struct loop *loop, const char *name, const struct fwd_ops *ops,
	      const struct cli_fwd_port *ports, unsigned int n, hybrid_connect_cb cb, void *ctx)
{
	memset(fw, 0, sizeof(*fw));
	fw->name = name;
	fw->loop = loop;
	fw->ops = ops;
	fw->on_connect = cb;
	fw->ctx = ctx;
	for (unsigned int i = 0; i < n; i++) {
		struct fwd_listener *l = &fw->lst[i];
		int type = ports[i].seqpacket ? SOCK_SEQPACKET : SOCK_STREAM;
		int fd = ops->listen(ops->ctx, ports[i].port, type), rc;

		if (fd < 0) {
			log_err("%s: cannot listen on host AF_VSOCK port %u (%s): %s", name,
				ports[i].port, ports[i].seqpacket ? "SOCK_SEQPACKET" : "SOCK_STREAM",
				strerror(-fd));
			fwd_stop(fw);
			return fd;
		}
		*l = (struct fwd_listener){ .fw = fw, .fd = fd, .port = ports[i].port,
					    .type = type };
		l->w.fd = -1;
		fw->n = i + 1;
		rc = loop_add(loop, &l->w, fd, EPOLLIN, on_accept, l);
		if (rc < 0) {
			log_err("%s: cannot watch host AF_VSOCK port %u: %s", name, ports[i].port,
				strerror(-rc));
			fwd_stop(fw);
			return rc;
		}
	}
	return 0;
}

void fwd_stop(struct fwd *fw)
{
	for (unsigned int i = 0; i < fw->n; i++) {
		struct fwd_listener *l = &fw->lst[i];

		if (l->fd < 0)
			continue;
		loop_del(fw->loop, &l->w);
		close(l->fd);
		l->fd = -1;
	}
	fw->n = 0;
}
