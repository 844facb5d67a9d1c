/* SPDX-License-Identifier: MIT */
/*
 * Where a session's messages come from and its replies go: a connected
 * Unix socket (framing and SCM_RIGHTS in msg.c), or a virtio-vhost-user
 * device whose virtqueues carry whole messages and no fds
 * (transport/vvu/vvu.c). The dispatcher and the engines see the same
 * struct vu_msg either way.
 */
#ifndef VU_TRANSPORT_H
#define VU_TRANSPORT_H

#include "mem/guest_mem.h"
#include "vhost_user/proto.h"

struct vu_transport_ops {
	/*
	 * The next message, validated for framing (not per request).
	 * Return: 0, -EAGAIN when none is waiting (a queue-based transport),
	 * -ECONNRESET when the front end left between messages, another
	 * negative errno (logged) when the session must end.
	 */
	int (*recv)(void *priv, struct vu_msg *msg);
	/* a reply; 0 or a negative errno (not logged: the caller names the reply) */
	int (*send)(void *priv, const struct vu_msg *msg);
	/*
	 * Optional: map a SET_MEM_TABLE that came without fds (the memory is
	 * already reachable through the transport). Set only on such a
	 * transport; its presence is what lets an fd-less table through.
	 */
	int (*map_mem)(void *priv, struct gmem *m, const struct gmem_region_desc *descs,
		       unsigned int n);
};

struct vu_transport {
	const struct vu_transport_ops *ops;
	void *priv;
};

/* The Unix-socket transport; its priv points to the connected socket's fd. */
extern const struct vu_transport_ops vu_sock_transport_ops;

#endif
