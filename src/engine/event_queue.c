// SPDX-License-Identifier: MIT
/*
 * TRANSPORT_RESET on the event queue. The ring is driven only for the one
 * event: a private struct vq starts at the ring's base, pops one
 * device-writable buffer, writes the 4-byte event id and returns it; the
 * ring's base then moves past it, so a later GET_VRING_BASE reports the
 * buffer as consumed. Everything read from the guest goes through the
 * split-ring module's checks.
 */
#include "engine/event_queue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>

#include "util/log.h"
#include "virtq/split.h"

#define EVENT_IOV_MAX 8u

static uint16_t used_idx_in_guest(const struct vu_dev *dev, unsigned int i)
{
	const struct vu_vring *vr = &dev->vrings[i];
	const uint8_t *used;
	uint16_t idx;

	if (!vr->addr_set || !vr->num)
		return 0;
	used = gmem_uva_ptr(&dev->mem, vr->addr.used, 4);
	if (!used)
		return 0;
	idx = __atomic_load_n((const uint16_t *)(used + 2), __ATOMIC_ACQUIRE);
	return le16toh(idx);
}

void vsock_event_judge(const struct vu_dev *dev, struct vsock_event_watch *w, unsigned int index)
{
	const struct vu_vring *vr;

	if (index >= VSOCK_EVENT_RING || w->judged[index])
		return;
	vr = &dev->vrings[index];
	if (!vu_vring_ready(vr))
		return;
	w->judged[index] = true;
	if (vr->base != 0 || used_idx_in_guest(dev, index) != 0)
		w->guest_ran = true;
}

static bool event_ring_can_run(const struct vu_dev *dev)
{
	const struct vu_vring *ev = &dev->vrings[VSOCK_EVENT_RING];

	if (dev->ops->nqueues <= VSOCK_EVENT_RING || !vu_vring_ready(ev) || !ev->enabled)
		return false;
	return true;
}

static int event_vq_init(const struct vu_dev *dev, struct vq *vq)
{
	const struct vu_vring *vr = &dev->vrings[VSOCK_EVENT_RING];
	const uint64_t n = vr->num;
	const struct vq_config cfg = {
		.name = "event",
		.num = vr->num,
		.desc = gmem_uva_ptr(&dev->mem, vr->addr.desc, 16 * n),
		.avail = gmem_uva_ptr(&dev->mem, vr->addr.avail, 6 + 2 * n),
		.used = gmem_uva_ptr(&dev->mem, vr->addr.used, 6 + 8 * n),
		.features = dev->features,
		.mem = &dev->mem,
	};
	int rc;

	if (!cfg.desc || !cfg.avail || !cfg.used) {
		log_err("%s: event ring (size %u) does not fit in guest memory", dev->name, vr->num);
		return -EFAULT;
	}
	memset(vq, 0, sizeof(*vq));
	rc = vq_init(vq, &cfg);
	if (rc < 0) {
		log_err("%s: event ring unusable: %s", dev->name, strerror(-rc));
		return rc;
	}
	vq_set_last_avail(vq, vr->base);
	return 0;
}

/* The 4-byte event id into the writable part of @iov, however it is split. */
static int put_event(const struct iovec *iov, const struct vq_elem *e, uint32_t id)
{
	const uint32_t le = htole32(id);
	const uint8_t *src = (const uint8_t *)&le;
	size_t left = sizeof(le);

	if (e->out_num != 0 || e->in_len < sizeof(le))
		return -EINVAL;
	for (unsigned int i = 0; left && i < e->in_num; i++) {
		size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;

		memcpy(iov[i].iov_base, src, n);
		src += n;
		left -= n;
	}
	return 0;
}

/* Return: 1 posted, 0 no buffer to post into, or a negative errno (logged). */
static int post_event(struct vu_dev *dev, uint32_t id)
{
	struct vu_vring *vr = &dev->vrings[VSOCK_EVENT_RING];
	struct iovec iov[EVENT_IOV_MAX];
	struct vq_elem e;
	struct vq vq;
	int rc = event_vq_init(dev, &vq);

	if (rc < 0)
		return rc;
	rc = vq_pop(&vq, iov, EVENT_IOV_MAX, &e);
	if (rc == -EAGAIN) {
		log_warn("%s: the guest gave no event buffer: it was not told of the transport reset",
			 dev->name);
		rc = 0;
		goto out;
	}
	if (rc == 0 && put_event(iov, &e, id) < 0) {
		vq_mark_broken(&vq, "event buffer of %u readable and %u writable bytes (4 writable needed)",
			       e.out_len, e.in_len);
		rc = -EIO;
	}
	if (rc == 0)
		rc = vq_push(&vq, e.head, sizeof(uint32_t));
	if (rc < 0) {
		/* a broken ring said why when it broke */
		if (!vq_is_broken(&vq))
			log_err("%s: cannot post the transport reset event: %s", dev->name,
				strerror(-rc));
		goto out;
	}
	vq_flush(&vq);
	vr->base = vq.last_avail;
	if (vq_should_notify(&vq) && vr->call_fd >= 0)
		eventfd_write(vr->call_fd, 1);
	rc = 1;
out:
	vq_fini(&vq);
	return rc;
}

void vsock_event_reset_if_reattached(struct vu_dev *dev, struct vsock_event_watch *w)
{
	if (w->done || !w->judged[0] || !w->judged[1] || !event_ring_can_run(dev))
		return;
	w->done = true;
	if (w->guest_ran && post_event(dev, VSOCK_EVENT_TRANSPORT_RESET) > 0)
		log_info("%s: the guest ran before this front end: told it the transport was reset "
			 "(its old connections are gone)", dev->name);
}
