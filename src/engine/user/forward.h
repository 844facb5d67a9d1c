/* SPDX-License-Identifier: MIT */
/*
 * Forwarding to host AF_VSOCK, host side (--forward-cid, --forward-listen;
 * rust-vmm vhost-device-vsock's "vsock backend"): the listening AF_VSOCK
 * sockets whose clients become host-initiated connections into the guest,
 * and the socket factory both directions use.
 *
 *   guest -> host: a REQUEST to host port P is connected to (forward_cid, P)
 *                  through fwd_ops.connect (device.c guest_connect())
 *   host -> guest: each accepted client of port P is handed to the
 *                  connect callback as a request for guest port P, the path
 *                  a hybrid CONNECT line takes (no line, no OK reply)
 *
 * The factory is a table so that unit tests put socketpairs and AF_UNIX
 * listeners where AF_VSOCK would be: fwd_vsock_ops (the real one) is used
 * only when the operator configured forwarding.
 *
 * Single-threaded: everything runs on the VM's loop.
 */
#ifndef ENGINE_USER_FORWARD_H
#define ENGINE_USER_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/cli.h"
#include "engine/user/hybrid.h"
#include "engine/user/stream.h"
#include "loop/loop.h"

/* How long a guest's connect to host AF_VSOCK may block the VM thread. */
#define FWD_CONNECT_TIMEOUT_MS 1000u

struct fwd_ops {
	/* a connected socket to (@cid, @port) of @type, or -errno (logged by the caller) */
	int (*connect)(void *ctx, uint32_t cid, uint32_t port, int type, uint32_t timeout_ms);
	/* a listening socket on @port of @type (accept4() must work on it), or -errno */
	int (*listen)(void *ctx, uint32_t port, int type);
	/* wrap a connected socket from connect() or accept4() in a stream */
	void (*stream_init)(struct stream *s, int fd);
	void *ctx;
};

/* The real AF_VSOCK factory (vsock_connect_to(), vsock_listen_on(), stream_vsock_init()). */
extern const struct fwd_ops fwd_vsock_ops;

struct fwd;

struct fwd_listener {
	struct fwd *fw;
	int fd;
	uint32_t port;
	int type;
	struct loop_watch w;
};

struct fwd {
	const char *name;          /* for log lines */
	struct loop *loop;
	const struct fwd_ops *ops;
	struct fwd_listener lst[CLI_MAX_FORWARD_LISTEN];
	unsigned int n;
	hybrid_connect_cb on_connect; /* (ctx, fd, type, guest port) */
	void *ctx;
	unsigned long accepted;
};

/**
 * fwd_start() - listen on every port of @ports.
 * @fw: the state
 * @loop: the VM's loop
 * @name: for log lines (borrowed)
 * @ops: the socket factory (borrowed)
 * @ports: the ports; @n of them
 * @n: how many
 * @cb: called with each accepted client (the callee owns the fd)
 * @ctx: passed to @cb
 *
 * Return: 0 or negative errno (logged, naming the port); nothing is left
 * open on error.
 */
int fwd_start(struct fwd *fw, struct loop *loop, const char *name, const struct fwd_ops *ops,
	      const struct cli_fwd_port *ports, unsigned int n, hybrid_connect_cb cb, void *ctx);

/** fwd_stop() - close the listeners. */
void fwd_stop(struct fwd *fw);

#endif
