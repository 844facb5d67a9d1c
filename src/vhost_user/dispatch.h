/* SPDX-License-Identifier: MIT */
/*
 * vhost-user session: the state one front end builds up (features, memory,
 * rings) and the dispatcher that handles its requests, one handler per
 * request. Device-agnostic: the device (an engine) plugs in through
 * struct vu_dev_ops and never sees the wire format.
 *
 * Error policy: a request that fails is answered with a non-zero REPLY_ACK
 * when the front end asked for one; a request that owes a reply payload
 * gets its error form (GET_CONFIG: size 0); any other failure, and every
 * malformed message, ends the session (the spec allows closing the
 * connection when an error cannot be reported). Either way, fds that came
 * with a refused message are closed.
 */
#ifndef VU_DISPATCH_H
#define VU_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "vhost_user/proto.h"
#include "vhost_user/transport.h"

/* vsock needs 3 (rx, tx, event); the layer itself allows a few more. */
#define VU_MAX_QUEUES 8u

struct vu_vring {
	uint32_t num;               /* queue size; 0 until SET_VRING_NUM */
	uint16_t base;              /* next avail index from SET_VRING_BASE */
	uint32_t base_gen;          /* counts SET_VRING_BASE: a new base, even of an old value */
	bool addr_set;              /* addr holds a validated SET_VRING_ADDR */
	struct vu_vring_addr addr;  /* front-end virtual addresses, as sent */
	int kick_fd;                /* -1 when none */
	int call_fd;
	int err_fd;
	bool kick_set;              /* SET_VRING_KICK seen (fd or polling flag) */
	bool started;               /* kick set and not stopped by GET_VRING_BASE */
	bool enabled;               /* SET_VRING_ENABLE state */
};

struct vu_dev;

/*
 * What a device provides. Every hook returns 0 or a negative errno; the
 * dispatcher logs nothing for a failed hook, the hook logs its own reason.
 */
struct vu_dev_ops {
	/* number of queues (GET_QUEUE_NUM, and the bound on ring indices) */
	unsigned int nqueues;
	/* largest queue size accepted by SET_VRING_NUM (a power of two) */
	uint32_t max_queue_size;
	/* protocol features offered (VU_PROTOCOL_F_* bits) */
	uint64_t protocol_features;

	/* virtio device features offered, without bit 30 (the layer adds it) */
	uint64_t (*get_features)(struct vu_dev *dev);
	int (*set_owner)(struct vu_dev *dev);
	/* features acked by the front end, bit 30 already removed */
	int (*set_features)(struct vu_dev *dev, uint64_t features);
	/*
	 * A new memory table is mapped in @new_mem; dev->mem still holds the
	 * old one. The device moves everything it uses over to @new_mem. On
	 * success the layer unmaps the old table; on failure the new one.
	 * @new_mem itself is a temporary: its contents become dev->mem after
	 * the call, so keep no pointer to the struct (pointers into the
	 * mappings stay valid).
	 */
	int (*set_mem_table)(struct vu_dev *dev, const struct gmem *new_mem);
	/*
	 * Something about ring @index changed (size, base, addresses, fds,
	 * enable, started). The device starts or stops whatever depends on it.
	 */
	int (*vring_changed)(struct vu_dev *dev, unsigned int index);
	/* GET_VRING_BASE: stop ring @index and report where it stopped */
	int (*vring_stop)(struct vu_dev *dev, unsigned int index, uint32_t *base);
	/*
	 * fill @size bytes of config space from @offset. The layer only checks
	 * size >= 1 and offset + size <= VU_MAX_CONFIG_SIZE; the device refuses
	 * ranges beyond its own config space.
	 */
	int (*get_config)(struct vu_dev *dev, uint32_t offset, uint32_t size, uint8_t *out);
	/*
	 * Forget the session's device state (RESET_OWNER, RESET_DEVICE and the
	 * end of a session). Ring fds and memory are released by the layer.
	 */
	void (*reset)(struct vu_dev *dev);
};

struct vu_dev {
	const char *name;             /* for log lines */
	int sock;                     /* connected front end, -1 when none (socket transport) */
	struct vu_transport tp;       /* where requests come from and replies go */
	const struct vu_dev_ops *ops;
	void *priv;                   /* the device's own state */

	bool owner;                   /* SET_OWNER seen */
	bool features_set;            /* SET_FEATURES seen */
	uint64_t features;            /* acked, including bit 30 if acked */
	uint64_t protocol_features;   /* acked */
	bool reply_ack;               /* REPLY_ACK negotiated */
	uint8_t status;               /* SET_STATUS: the virtio device status */

	struct gmem mem;
	struct vu_vring vrings[VU_MAX_QUEUES];
};

/**
 * vu_dev_init() - start a session on a connected socket.
 * @sock is borrowed: vu_dev_fini() does not close it.
 */
void vu_dev_init(struct vu_dev *dev, const char *name, int sock,
		 const struct vu_dev_ops *ops, void *priv);

/**
 * vu_dev_init_transport() - start a session on another transport; @tp is
 * copied, and its priv stays the caller's.
 */
void vu_dev_init_transport(struct vu_dev *dev, const char *name, const struct vu_transport *tp,
			   const struct vu_dev_ops *ops, void *priv);

/**
 * vu_dev_process() - read one request from the transport, handle it, reply.
 * Return: 0 to keep going, -EAGAIN when the transport had no message
 * waiting, -ECONNRESET when the front end closed the connection between
 * messages, another negative errno when the session must end (already
 * logged).
 */
int vu_dev_process(struct vu_dev *dev);

/**
 * vu_dev_handle() - handle one already-received request (transport-free:
 * used by the socket path, other transports, unit tests and fuzzers).
 * @msg:   the request; its fds are taken or closed, never leaked
 * @reply: filled when *@has_reply is set on return
 * Return: 0, or a negative errno when the session must end.
 */
int vu_dev_handle(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply, bool *has_reply);

/**
 * vu_dev_fini() - end the session: device reset, ring fds closed, memory
 * unmapped. The dev can be vu_dev_init()ed again for the next front end.
 */
void vu_dev_fini(struct vu_dev *dev);

/** vu_vring_ready() - ring has size, addresses and a kick: it can run. */
bool vu_vring_ready(const struct vu_vring *vr);

#endif
