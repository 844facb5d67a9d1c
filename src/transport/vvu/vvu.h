/* SPDX-License-Identifier: MIT */
/*
 * virtio-vhost-user (VVU) device driver: the vhost-user transport of a back
 * end running in a device VM (PROTOCOLS.md §5). Front-end requests arrive
 * one whole message per buffer on rxq (queue 0), replies leave on txq
 * (queue 1); the sibling's memory is the shared-memory BAR, regions back to
 * back in SET_MEM_TABLE order; kick i is MSI-X vector 2 + i, call i and
 * err i are doorbell writes. No fds travel: the transport attaches its own
 * eventfds to SET_VRING_KICK/CALL/ERR so the dispatcher and the engines are
 * the same as on a socket.
 *
 * Every value read from the device is input: checked, and a device that
 * breaks a rule gets one log line naming it and a reset.
 *
 * The pure checks (vvu_check_*, vvu_msg_from_buffer/to_buffer) need no
 * device, so fuzzers and unit tests call them directly.
 */
#ifndef TRANSPORT_VVU_VVU_H
#define TRANSPORT_VVU_VVU_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/vvu/vfio.h"
#include "transport/vvu/virtio_pci.h"
#include "vhost_user/dispatch.h"
#include "vhost_user/transport.h"

#define VVU_PCI_VENDOR 0x1af4u
#define VVU_PCI_DEVICE_DRAFT 0x1058u   /* 0x1040 + virtio device id 24 (draft spec) */
#define VVU_PCI_DEVICE_CROSVM 0x107du  /* crosvm's proxy device */

/* virtio_pci_cap.cfg_type of the VVU-specific capabilities */
#define VVU_CAP_DOORBELL 6u
#define VVU_CAP_NOTIFICATION 7u
#define VVU_CAP_SHARED_MEMORY 8u
/* the generic virtio_pci_cap is 16 bytes; the doorbell multiplier follows it */
#define VVU_DOORBELL_MULT_OFF 16u

/* device config: le32 status @0, le32 max_vhost_queues @4, uuid[16] @8 */
#define VVU_CFG_STATUS 0u
#define VVU_CFG_MAX_QUEUES 4u
#define VVU_STATUS_SLAVE_UP 0x1u
#define VVU_STATUS_MASTER_UP 0x2u

/* notification registers: le16 select @0, le16 MSI-X vector @2 */
#define VVU_NOTIF_SELECT 0u
#define VVU_NOTIF_VECTOR 2u
#define VVU_NOTIF_LEN 4u

#define VVU_RXQ 0u
#define VVU_TXQ 1u
/* MSI-X: 0 rxq, 1 txq, 2 + i notification (kick) of vhost-user queue i */
#define VVU_VEC_NOTIFY0 2u

/*
 * A device may claim many vhost queues (crosvm: 16); anything beyond this
 * is not a device we believe. We only ever use the engine's (vsock: 3).
 */
#define VVU_MAX_VHOST_QUEUES 1024u
/*
 * One buffer holds the largest message we accept (VU_HDR_SIZE +
 * VU_MAX_PAYLOAD). crosvm's 1024 bytes would make a legal 4 KiB request
 * (the biggest our reader takes on a socket) fail here only, and a
 * message may not span buffers.
 */
#define VVU_BUF_SIZE (VU_HDR_SIZE + VU_MAX_PAYLOAD)
/*
 * vhost-user is request/reply with few messages in flight: 64 buffers of
 * each queue are plenty and keep the DMA blocks near 260 KiB each.
 */
#define VVU_QUEUE_SIZE 64u
#define VVU_SHM_ALIGN 4096u
/* consecutive device faults (failed set-up, broken message) before giving up */
#define VVU_MAX_FAULTS 5u

/* Where the doorbells are and which exist. */
struct vvu_doorbell {
	struct vpci_loc loc;
	uint32_t mult;         /* 0 or a power of two */
	uint32_t nqueues_dev;  /* the device's max_vhost_queues: err i is doorbell N + i */
	bool have_err;         /* the cap reaches the err doorbells of our queues */
};

struct vvu_stats {
	uint64_t msgs_in;     /* requests taken from rxq */
	uint64_t msgs_out;    /* replies put on txq */
	uint64_t calls;       /* call eventfd signals forwarded as doorbell writes */
	uint64_t errs;        /* err eventfd signals forwarded */
	uint64_t resets;      /* device resets (end of session, faults) */
	uint64_t faults;      /* device or message faults seen */
};

struct vvu {
	struct vfio_dev vf;
	bool vf_open;
	struct vpci p;
	bool up;                       /* handshake done, SLAVE_UP set */
	unsigned int nq;               /* vhost-user queues we serve */
	struct vvu_doorbell db;
	struct vpci_loc notif;
	uint8_t shm_bar;
	void *shm;                     /* the shared-memory window, mapped */
	uint64_t shm_off;              /* of the window in its BAR */
	uint64_t shm_len;
	int call_fd[VU_MAX_QUEUES];    /* ours; the engine gets dups */
	int err_fd[VU_MAX_QUEUES];
	struct vu_msg staged;          /* a request taken off rxq, not yet handled */
	bool have_staged;
	struct vvu_stats st;
};

/* ---- checks on device values (pure) ---- */

/** vvu_check_identity() - 0 for a VVU device; else -ENODEV, logged naming @name. */
int vvu_check_identity(const char *name, uint16_t vendor, uint16_t device);

/** vvu_check_max_queues() - the device's max_vhost_queues covers @needed and is believable. */
int vvu_check_max_queues(uint32_t max_vhost_queues, unsigned int needed);

/**
 * vvu_check_doorbell() - @loc/@mult of the doorbell cap serve call doorbells
 * 0..@nq-1 (multiplier 0 or a power of two, length >= nq * mult + 2, no
 * overflow); @out says whether the err doorbells @ndev + i fit too.
 */
int vvu_check_doorbell(const struct vpci_loc *loc, uint32_t mult, unsigned int nq, uint32_t ndev,
		       struct vvu_doorbell *out);

/** vvu_check_notification() - the notification cap holds its two le16 registers. */
int vvu_check_notification(const struct vpci_loc *loc);

/**
 * vvu_check_shmem() - the shared-memory window: offset and length nonzero
 * multiples of 4096, inside BAR @bar (as VFIO describes it), mappable.
 */
int vvu_check_shmem(const struct vpci_loc *loc, const struct vfio_region_desc *bar);

/* ---- message framing (pure) ---- */

/**
 * vvu_msg_from_buffer() - the message in one rxq buffer: exactly
 * VU_HDR_SIZE + hdr.size bytes, little-endian fields turned into ours, no
 * fds. Return: 0; -ECONNRESET for an empty buffer (the sibling left);
 * -EBADMSG for a buffer that is not one whole message (logged).
 */
int vvu_msg_from_buffer(const uint8_t *buf, uint32_t len, struct vu_msg *out);

/**
 * vvu_msg_to_buffer() - a reply in wire form (little-endian) in @buf.
 * Return: its length, or -EMSGSIZE when it does not fit @cap.
 */
int vvu_msg_to_buffer(const struct vu_msg *msg, uint8_t *buf, uint32_t cap);

/* ---- the device ---- */

/** vvu_open() - open the VFIO device @name through @opener; serve @nq vhost-user queues. */
int vvu_open(struct vvu *v, vfio_open_fn opener, const char *name, unsigned int nq);

/**
 * vvu_start() - probe and check the device, handshake (PROTOCOLS.md §5.3),
 * map the shared memory, set SLAVE_UP. On failure the device is left reset
 * and everything taken is released. Return: 0 or a negative errno (logged).
 */
int vvu_start(struct vvu *v);

/** vvu_stop() - reset the device and release queues, vectors, window, eventfds. */
void vvu_stop(struct vvu *v);

/** vvu_close() - vvu_stop() and close the VFIO device. */
void vvu_close(struct vvu *v);

/**
 * vvu_next() - take the next request off rxq into @msg (buffer reposted).
 * Return: 0, -EAGAIN when none is waiting, -ECONNRESET when the sibling
 * disconnected, -EPROTO for a reply to a back-end request (we send none),
 * -EBADMSG / -EIO for a broken message or queue (logged).
 */
int vvu_next(struct vvu *v, struct vu_msg *msg);

/**
 * vvu_attach_fds() - give SET_VRING_KICK/CALL/ERR of ring i < nq our
 * eventfd for it (kick: a dup of vector 2 + i; call/err: a dup of ours)
 * and clear bit 8; other requests, and rings we do not serve, are left
 * alone (the dispatcher refuses those). Return: 0 or -errno (logged).
 */
int vvu_attach_fds(struct vvu *v, struct vu_msg *msg);

/**
 * vvu_check_alive() - the device still runs what we set up: DRIVER_OK and
 * no DEVICE_NEEDS_RESET. Asked when an interrupt brought no message (a
 * device reset under us raises one). Return: 0, or -EIO (logged).
 */
int vvu_check_alive(struct vvu *v);

/** vvu_doorbell() - ring call doorbell @i (@err: err doorbell). */
int vvu_doorbell(struct vvu *v, unsigned int i, bool err);

/**
 * The vhost-user transport over the device: recv hands over the staged
 * request, if any, else vvu_next(); send puts a reply on txq; map_mem lays
 * the table into the shared-memory window. priv is the struct vvu.
 */
extern const struct vu_transport_ops vvu_transport_ops;

#endif
