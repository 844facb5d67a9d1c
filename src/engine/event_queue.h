/* SPDX-License-Identifier: MIT */
/*
 * The virtio-vsock event queue (ring 2) where the daemon owns it (front ends
 * in crosvm's manner configure all three rings; QEMU keeps ring 2 itself).
 * Both engines use it for one thing: telling a guest whose front end
 * re-attached that the connections it remembers are gone (virtio 1.2
 * §5.10.6.5, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET), so its sockets fail at
 * once instead of waiting for packets that will never come.
 */
#ifndef ENGINE_EVENT_QUEUE_H
#define ENGINE_EVENT_QUEUE_H

#include <stdbool.h>

#include "vhost_user/dispatch.h"

#define VSOCK_EVENT_RING 2u
#define VSOCK_EVENT_TRANSPORT_RESET 0u

/* One session's view: did the guest use rx/tx before it, and was it told? */
struct vsock_event_watch {
	bool judged[VSOCK_EVENT_RING]; /* rx, tx looked at when first ready */
	bool guest_ran;
	bool done;                     /* the decision to post was made */
};

/**
 * vsock_event_judge() - before the engine acts on a change of ring @index:
 * the first time rx or tx is ready in this session, note whether the guest
 * used it before (a non-zero start index from SET_VRING_BASE, or a non-zero
 * used index in guest memory; a fresh guest starts both at 0). Judged
 * before the engine runs the ring, so this session's own traffic never
 * counts.
 */
void vsock_event_judge(const struct vu_dev *dev, struct vsock_event_watch *w, unsigned int index);

/**
 * vsock_event_reset_if_reattached() - after every ring change: once per
 * session, when rx and tx were judged and the event ring can run, post one
 * TRANSPORT_RESET event if the guest ran before, and signal the ring's call
 * fd. Zero @w when the session or the device resets. A guest that gave no
 * event buffer, or a broken event ring, is logged and changes nothing else:
 * the front end's request that got here succeeded.
 */
void vsock_event_reset_if_reattached(struct vu_dev *dev, struct vsock_event_watch *w);

#endif
