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

/**
 * vsock_event_guest_ran() - do rx or tx show that the guest used the device
 * before this session (a non-zero start index from SET_VRING_BASE, or a
 * non-zero used index in guest memory)? A fresh guest starts both at 0.
 */
bool vsock_event_guest_ran(const struct vu_dev *dev);

/**
 * vsock_event_reset_if_reattached() - once per session (*@done), as soon as
 * the event ring can run and rx/tx are addressed: when the guest ran before,
 * post one TRANSPORT_RESET event and signal the ring's call fd. Call after
 * every ring change; clear *@done when the session or device resets. A
 * guest that gave no event buffer, or a broken event ring, is logged and
 * changes nothing else: the front end's request that got here succeeded.
 */
void vsock_event_reset_if_reattached(struct vu_dev *dev, bool *done);

#endif
