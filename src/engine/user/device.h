/* SPDX-License-Identifier: MIT */
/*
 * Userspace engine device: the daemon is the virtio-vsock device of one VM
 * (virtio spec "Socket Device", PROTOCOLS.md §2). It implements the
 * vhost-user device hooks (struct vu_dev_ops), runs the rx and tx rings
 * itself, and connects guest sockets to host Unix sockets through the
 * connection table (hybrid vsock, §4) and to sibling VMs (§4.4).
 *
 * Rings: rx (0) and tx (1) run when ready, enabled, started (a kick fd)
 * and the memory table is mapped; the event queue (2) is accepted and never
 * used (QEMU keeps it; crosvm hands it over and we have no event to post).
 * GET_VRING_BASE stops a ring and reports where; a new memory table moves
 * running rings to it keeping their positions; a reset, a disconnect or a
 * broken ring closes every connection and the host sockets behind them.
 *
 * Data path, per event (kick, host socket, timer, sibling wake-up):
 * drain tx (until empty, or until replies cannot be delivered, or a
 * sibling's inbox is full), then fill rx from the connection table and
 * the sibling inbox, then update which host sockets are watched. A host
 * socket is watched for input only while its connection may send to the
 * guest (credit, state) and has not already said it is readable, and for
 * output only while guest bytes wait for it; a guest that posts no rx
 * buffers therefore leaves host sockets unread, without spinning.
 *
 * Limits: a chain needing more than UDEV_IOV_MAX iovecs breaks its ring;
 * at most 4 × queue size chains per ring per event before yielding to the
 * loop; deadlines (connect and close timeouts, hybrid handshakes, a held
 * sibling packet) are checked on a UDEV_TICK_MS tick that runs only while
 * connections, handshakes or a held packet exist, so they fire up to one
 * tick late. Guest-triggered log lines are rate-limited per VM
 * (UDEV_GLOG_PER_SEC).
 *
 * Threading: a device and everything it owns belong to one loop (one
 * thread); only the sibling inboxes are shared (sibling.h).
 */
#ifndef ENGINE_USER_DEVICE_H
#define ENGINE_USER_DEVICE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/event_queue.h"
#include "engine/user/conn_table.h"
#include "engine/user/forward.h"
#include "engine/user/hybrid.h"
#include "engine/user/sibling.h"
#include "loop/loop.h"
#include "engine/event_queue.h"
#include "vhost_user/dispatch.h"
#include "virtq/split.h"

#define UDEV_NQUEUES 3u
#define UDEV_NRINGS 2u /* rx and tx; the event queue is never run */
#define UDEV_IOV_MAX 1024u
#define UDEV_TICK_MS 250u
#define UDEV_GLOG_PER_SEC 10u
/* How long a packet for a sibling waits for room before it is dropped. */
#define UDEV_SIB_HOLD_MS 1000u

struct udev_cfg {
	const char *name;         /* for log lines (borrowed) */
	uint64_t cid;             /* the guest's CID */
	const char *uds_path;     /* hybrid socket path (borrowed) */
	uint32_t buf_alloc;       /* per-connection receive space (--tx-buffer-size) */
	uint32_t max_queue_size;  /* largest ring accepted (--queue-size) */
	struct sib_hub *hub;      /* NULL: no siblings */
	unsigned int port;        /* this VM's index in @hub */
	/* resource bounds and socket permissions; 0: the module's default */
	uint32_t max_conns;       /* guest connections (--max-connections) */
	uint32_t connect_timeout_ms; /* guest's answer to a host connect */
	struct hybrid_limits hybrid; /* handshakes pending, their time, socket mode */
	/* forwarding to host AF_VSOCK (forward.h); forward false: hybrid only */
	bool forward;             /* guest connections to the host go to forward_cid */
	uint32_t forward_cid;
	const struct cli_fwd_port *forward_listen; /* borrowed */
	unsigned int nforward_listen;
	const struct fwd_ops *fwd_ops; /* NULL: real AF_VSOCK (fwd_vsock_ops); tests: doubles */
};

struct udev;

/* One of rx/tx. */
struct udev_ring {
	struct udev *dev;
	unsigned int index;
	struct vq vq;
	bool live;                /* vq is set up and its kick watched */
	int kick_fd;              /* our duplicate of the front end's kick fd */
	struct loop_watch kick_w;
	/* what the running vq was made from, to notice changes */
	int src_kick;
	uint32_t num;
	struct vu_vring_addr addr;
	uint64_t features;
	/* where to start next time (SET_VRING_BASE, or where we stopped) */
	uint16_t pos;
	uint16_t seen_base;       /* vu_vring.base as last seen */
	/* a popped chain not consumed yet (no data for it / sibling full) */
	bool held;
	struct vq_elem e;
	struct iovec *iov;        /* UDEV_IOV_MAX entries */
	struct udev_rxbatch *rxb; /* rx only: chains popped ahead of use (device.c) */
	bool kick_warned;
};

struct udev {
	struct udev_cfg cfg;
	struct vu_dev_ops ops;    /* the hook table with this VM's queue size */
	struct loop *loop;
	struct vu_dev *vu;        /* the session the hooks were last called for */
	uint64_t features;        /* acked virtio features */
	bool failed;              /* a ring broke; nothing runs until a stop or reset */
	struct vsock_event_watch events; /* TRANSPORT_RESET for a guest that ran before */
	struct conn_table ct;
	struct udev_ring ring[UDEV_NRINGS];
	struct hybrid hy;
	struct fwd fw;            /* --forward-listen listeners and the factory */
	struct hostep *dirty;     /* host endpoints whose watch may need changing */
	int timer_fd;
	struct loop_watch timer_w;
	bool timer_on;
	bool rx_turn;             /* alternate connection and sibling packets */
	uint64_t tx_hold_since;   /* a sibling packet waits since then; 0: none */
	unsigned int tx_budget;   /* tx chains left in this event */
	/* guest-triggered log rate limit */
	uint64_t glog_sec;
	unsigned int glog_n;
	unsigned long glog_dropped;
};

/**
 * udev_init() - set up a device: connection table, timer, hybrid listeners.
 * @d: the device
 * @cfg: its configuration (copied; strings borrowed)
 * @loop: the VM's loop
 *
 * Return: 0 or negative errno (logged); nothing is left open on error.
 */
int udev_init(struct udev *d, const struct udev_cfg *cfg, struct loop *loop);

/** udev_fini() - close everything (the session must be over). */
void udev_fini(struct udev *d);

/**
 * udev_attach() - a front end connected (server_engine.attach).
 * @priv: the device
 * Return: 0.
 */
int udev_attach(void *priv);

/**
 * udev_detach() - the front end is gone (server_engine.detach): every
 * connection closed, rings forgotten, ready for the next front end.
 * @priv: the device
 */
void udev_detach(void *priv);

/**
 * udev_wake() - the VM's wake-up eventfd fired: sibling packets arrived or
 * a sibling inbox has room again.
 * @d: the device
 */
void udev_wake(struct udev *d);

/**
 * udev_farewell() - the daemon is leaving this VM (SIGTERM, vm remove):
 * reset every connection and put the RSTs in the guest's rx buffers now,
 * so its sockets fail at once instead of waiting on a back end that is
 * gone (no vhost-user front end reconnects a vsock device to the next one).
 * @d: the device
 *
 * Return: the connections reset.
 */
unsigned int udev_farewell(struct udev *d);

/** udev_running() - Return: whether rx and tx run (and no ring broke). */
bool udev_running(const struct udev *d);

/** udev_features() - Return: the virtio features this device offers. */
uint64_t udev_features(void);

#endif
