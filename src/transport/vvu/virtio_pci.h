/* SPDX-License-Identifier: MIT */
/*
 * A virtio 1.x PCI ("modern") driver in user space over struct vfio_dev:
 * capability walk, status handshake, feature negotiation, split virtqueues
 * in memory the driver allocates and DMA-maps itself, MSI-X vectors as
 * eventfds, and whole-buffer send/receive on those queues.
 *
 * It serves one device-specific driver above it (VVU, or a plain device in
 * the real-VFIO test) and knows nothing of vhost-user.
 *
 * The device is untrusted: every capability offset and length is checked
 * against its BAR, queue sizes against what was asked, used ids and lengths
 * against the ring and the buffer. A completion is only ever taken from the
 * used ring (interrupts may be spurious or missing); the caller waits on
 * the queue's eventfd and then polls.
 */
#ifndef TRANSPORT_VVU_VIRTIO_PCI_H
#define TRANSPORT_VVU_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/vvu/vfio.h"

#define VPCI_MAX_QUEUES 2u
#define VPCI_MAX_VENDOR_CAPS 8u
#define VPCI_NO_VECTOR 0xffffu

/* Where a capability's structure lives: @len bytes at @off of BAR @bar. */
struct vpci_loc {
	bool present;
	uint8_t bar;
	uint64_t off;
	uint64_t len;
};

/*
 * A virtio vendor capability of a cfg_type other than COMMON, NOTIFY, ISR,
 * DEVICE and PCI_CFG (VVU's doorbell 6, notification 7, shared memory 8).
 * @cap_off is its offset in config space, for fields that follow the
 * generic header (VVU's doorbell multiplier); @id is the cap's id byte
 * (shared-memory caps carry one).
 */
struct vpci_vendor_cap {
	uint8_t cfg_type;
	uint8_t id;
	uint8_t cap_off;
	uint8_t cap_len;
	struct vpci_loc loc;
};

struct vpci_queue {
	bool ready;
	uint16_t size;          /* entries, a power of two */
	uint32_t buf_size;      /* bytes per buffer; one buffer per descriptor */
	uint16_t vector;        /* MSI-X vector, or VPCI_NO_VECTOR */
	bool device_writes;     /* rx-style queue: buffers are device-writable */
	/* one DMA-mapped block: ring, then size * buf_size bytes of buffers */
	void *mem;
	size_t mem_len;
	uint64_t iova;
	volatile void *desc, *avail, *used; /* inside @mem */
	uint8_t *bufs;
	uint16_t avail_idx;     /* next avail index the driver publishes */
	uint16_t used_seen;     /* next used index the driver consumes */
	uint16_t free_head;     /* free descriptor list (device_writes == false) */
	uint16_t nfree;
	uint16_t *next_free;    /* size entries */
	uint64_t notify_off;    /* byte offset of this queue's notify address in its BAR */
};

struct vpci {
	struct vfio_dev *vf;
	uint16_t vendor_id, device_id, subsys_device_id;
	struct vpci_loc common, notify, isr, device;
	uint32_t notify_mult;
	struct vpci_vendor_cap vcaps[VPCI_MAX_VENDOR_CAPS];
	unsigned int nvcaps;
	uint16_t msix_table_size;   /* from the MSI-X capability */
	uint64_t device_features;
	uint64_t features;          /* negotiated */
	unsigned int nvectors;      /* eventfds handed to VFIO */
	int *vector_fds;            /* nvectors eventfds (vector i signals vector_fds[i]) */
	struct vpci_queue q[VPCI_MAX_QUEUES];
	struct vfio_iova_range iova[VFIO_DEV_MAX_IOVA_RANGES];
	unsigned int niova;
	uint64_t iova_next;         /* where the next DMA block goes */
};

/**
 * vpci_probe() - read config space: ids, bus mastering on, the virtio
 * capabilities (all checked against the BAR sizes) and the MSI-X table size.
 * Return: 0, -ENODEV when it is not a modern virtio device or a structure
 * is missing or out of bounds (logged with the reason).
 */
int vpci_probe(struct vpci *p, struct vfio_dev *vf);

/** vpci_reset() - device status 0, wait (<= 1 s) until it reads back 0. */
int vpci_reset(struct vpci *p);

/**
 * vpci_negotiate() - ACKNOWLEDGE | DRIVER, then features: @required must
 * all be offered (VERSION_1 always is required), @wanted are taken when
 * offered, ACCESS_PLATFORM is accepted when offered; FEATURES_OK read back.
 * Return: 0 or -ENOTSUP / -EIO (logged).
 */
int vpci_negotiate(struct vpci *p, uint64_t required, uint64_t wanted);

/**
 * vpci_setup_vectors() - @n eventfds registered as MSI-X vectors 0..n-1
 * with VFIO (n <= msix_table_size); msix_config set to VPCI_NO_VECTOR.
 */
int vpci_setup_vectors(struct vpci *p, unsigned int n);

/**
 * vpci_setup_queue() - queue @idx with at most @max_size entries of
 * @buf_size bytes each, at an IOVA inside the device's reported ranges;
 * its vector written and read back (the device may refuse: 0xffff).
 * @device_writes: rx-style (every buffer posted device-writable at once).
 */
int vpci_setup_queue(struct vpci *p, unsigned int idx, uint16_t max_size, uint32_t buf_size,
		     uint16_t vector, bool device_writes);

/** vpci_driver_ok() - enable the queues set up and set DRIVER_OK. */
int vpci_driver_ok(struct vpci *p);

/** vpci_status() - the device status byte (DEVICE_NEEDS_RESET is bit 6). */
int vpci_status(struct vpci *p, uint8_t *status);

/** vpci_cfg_read() / vpci_cfg_write() - device-specific config space. */
int vpci_cfg_read(struct vpci *p, uint64_t off, void *buf, size_t len);
int vpci_cfg_write(struct vpci *p, uint64_t off, const void *buf, size_t len);

/** vpci_loc_read() / vpci_loc_write() - @len bytes at @off inside @loc (bounds checked). */
int vpci_loc_read(struct vpci *p, const struct vpci_loc *loc, uint64_t off, void *buf, size_t len);
int vpci_loc_write(struct vpci *p, const struct vpci_loc *loc, uint64_t off, const void *buf,
		   size_t len);

/** vpci_find_vcap() - the first vendor capability of @cfg_type, or NULL. */
const struct vpci_vendor_cap *vpci_find_vcap(const struct vpci *p, uint8_t cfg_type);

/**
 * vpci_send() - copy @len bytes into a free buffer of a driver-writes queue,
 * publish it and notify the device. Return: 0, -EMSGSIZE when @len is over
 * the buffer size, -ENOBUFS when every buffer is in flight.
 */
int vpci_send(struct vpci *p, unsigned int idx, const void *data, size_t len);

/**
 * vpci_reclaim() - take back the buffers the device used on a driver-writes
 * queue. Return: how many, or -EIO for a used entry the driver never posted.
 */
int vpci_reclaim(struct vpci *p, unsigned int idx);

/**
 * vpci_recv() - the next completed buffer of a device-writes queue.
 * Return: 1 with *@data / *@len / *@id set (len checked against the
 * buffer), 0 when none is completed, -EIO for a bad id or length. Give the
 * buffer back with vpci_repost() once done with it.
 */
int vpci_recv(struct vpci *p, unsigned int idx, const uint8_t **data, uint32_t *len, uint16_t *id);

/** vpci_repost() - make buffer @id of a device-writes queue available again and notify. */
int vpci_repost(struct vpci *p, unsigned int idx, uint16_t id);

/** vpci_vector_fd() - eventfd of vector @v, or -1. */
int vpci_vector_fd(const struct vpci *p, unsigned int v);

/**
 * vpci_close() - reset the device, MSI-X off, queues unmapped and freed,
 * vector eventfds closed. The vfio_dev stays open. Safe after a failed setup.
 */
void vpci_close(struct vpci *p);

#endif
