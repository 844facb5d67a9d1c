/* SPDX-License-Identifier: MIT */
/*
 * A software virtio-vhost-user (VVU) PCI device (PROTOCOLS.md §5.5), split
 * in three layers so that each can be reused alone:
 *
 *   - the device (vvu_model.c): PCI config space with its capabilities,
 *     BAR 2 registers (virtio common/notify/ISR/device config, doorbells,
 *     notifications, MSI-X table), BAR 4 (a PROT_NONE reservation the
 *     front end's memory is mapped into), an IOMMU of recorded DMA maps,
 *     MSI-X eventfds, two split virtqueues in driver memory, and fault
 *     injection. It knows nothing of sockets or of vfio_ops.
 *   - the front door (vvu_model_vfio.c): struct vfio_ops over the device,
 *     for a driver in the same process (the daemon in the tests). A later
 *     vfio-user server is another front door over the same device.
 *   - the bridge (vvu_bridge.c): a vhost-user back end on a Unix socket
 *     whose front end (tests/lib's tfe, QEMU) passes fds; it turns them
 *     into BAR 4 mappings, MSI-X interrupts and doorbell targets, and the
 *     messages into rxq/txq traffic.
 *
 * Locking: one mutex per model; every vvm_* function takes it, so the
 * daemon's threads (through the front door) and the bridge thread may call
 * in concurrently. Callbacks are made with the lock held.
 *
 * All driver-provided values (queue addresses, ring indices, descriptor
 * addresses and lengths) are checked; a bad one is a recorded fault, never
 * an access outside a DMA mapping.
 */
#ifndef TESTS_VVU_MODEL_H
#define TESTS_VVU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Layout, published so tests can poke registers directly. */
#define VVM_BAR_REGS 2u
#define VVM_BAR_SHM 4u
#define VVM_BAR2_SIZE 0x4000u
#define VVM_COMMON_OFF 0x0000u
#define VVM_COMMON_LEN 0x0100u
#define VVM_ISR_OFF 0x0100u
#define VVM_ISR_LEN 0x0100u
#define VVM_DEVCFG_OFF 0x0200u
#define VVM_DEVCFG_LEN 0x0100u
#define VVM_NOTIFY_OFF 0x0300u
#define VVM_NOTIFY_LEN 0x0100u
#define VVM_NOTIFY_MULT 4u
#define VVM_DOORBELL_OFF 0x1000u
#define VVM_DOORBELL_LEN 0x1000u
#define VVM_DOORBELL_MULT 4u
#define VVM_NOTIFICATION_OFF 0x2000u
#define VVM_NOTIFICATION_LEN 0x0100u
#define VVM_MSIX_TABLE_OFF 0x3000u
#define VVM_MSIX_PBA_OFF 0x3800u

#define VVM_NQUEUES 2u            /* rxq 0, txq 1 */
#define VVM_QUEUE_MAX 256u
#define VVM_MAX_VHOST_QUEUES 16u  /* vrings of the sibling, as crosvm offers */
#define VVM_NVECTORS (2u + VVM_MAX_VHOST_QUEUES)
#define VVM_MAX_DMA_MAPS 64u
#define VVM_MAX_MSG (12u + 4096u)
#define VVM_DEFAULT_SHM_SIZE (1ull << 30)
#define VVM_PCI_DEVICE_ID 0x1058u /* virtio id 24; crosvm used 0x107d */

/* Virtio status bits and device config status bits. */
#define VVM_S_ACKNOWLEDGE 1u
#define VVM_S_DRIVER 2u
#define VVM_S_DRIVER_OK 4u
#define VVM_S_FEATURES_OK 8u
#define VVM_S_NEEDS_RESET 0x40u
#define VVM_S_FAILED 0x80u
#define VVM_CFG_SLAVE_UP 1u
#define VVM_CFG_MASTER_UP 2u

#define VVM_F_VERSION_1 32u
#define VVM_F_ACCESS_PLATFORM 33u

/*
 * Faults the model can inject (§5.5 item 8 and the device-value checks).
 * Message faults hit the @at-th message delivered on rxq (1-based) since
 * the last reset; probe faults are there from the start.
 */
enum vvm_fault {
	VVM_FAULT_NONE = 0,
	VVM_FAULT_OVERSIZE,      /* message longer than the rxq buffer */
	VVM_FAULT_TRUNCATED,     /* completion of 1..11 bytes */
	VVM_FAULT_SIZE_MISMATCH, /* header size != completion length - 12 */
	VVM_FAULT_UNKNOWN_REQ,   /* request id the protocol does not have */
	VVM_FAULT_VRING_INDEX,   /* vring index >= max_vhost_queues in a ring request */
	VVM_FAULT_BAD_LAYOUT,    /* SET_MEM_TABLE regions larger than BAR 4 */
	VVM_FAULT_RESET,         /* the device resets itself while running */
	VVM_FAULT_USED_ID,       /* used id out of range */
	VVM_FAULT_USED_LEN,      /* used length over the buffer */
	VVM_FAULT_CAP_OUTSIDE,   /* common config cap reaches past BAR 2 */
	VVM_FAULT_QSIZE0,        /* queue_size reads 0 */
	VVM_FAULT_VECTOR,        /* queue vectors refused (0xffff on read-back) */
	VVM_FAULT_COUNT
};

struct vvm_config {
	uint16_t device_id;       /* 0: VVM_PCI_DEVICE_ID */
	uint64_t shm_size;        /* BAR 4 bytes, power of two; 0: default */
	uint32_t max_vhost_queues; /* 0: VVM_MAX_VHOST_QUEUES */
	enum vvm_fault fault;
	unsigned int fault_at;    /* message number for message faults (0 = 1st) */
	/*
	 * DMA maps as an IOMMU's page table sees them (the vfio-user front
	 * door, where a guest's map of N pages arrives as N 4 KiB maps): a map
	 * that continues another in IOVA and address extends it, and an unmap
	 * cuts its range out of whatever it overlaps. Off: type1's rules
	 * (whole mappings only), which the in-process tests check.
	 */
	bool dma_pages;
};

struct vvm_stats {
	unsigned long rx_msgs;         /* rxq completions with a message */
	unsigned long rx_disconnects;  /* zero-length completions */
	unsigned long tx_msgs;         /* txq buffers consumed */
	unsigned long dma_faults;      /* device accesses to unmapped IOVAs */
	unsigned long ring_faults;     /* bad ring indices/descriptors seen */
	unsigned long doorbells;       /* doorbell writes with a target */
	unsigned long doorbells_lost;  /* doorbell writes without one */
	unsigned long notifications;   /* MSI-X raised for a vring kick */
	unsigned long resets;          /* status 0 writes and FLRs */
	unsigned long backend_dropped; /* back-end requests before SET_BACKEND_REQ_FD */
	unsigned long faults_injected;
};

struct vvm;

/*
 * Events towards the bridge, called with the model locked (keep them
 * short: write an eventfd). @doorbell: a doorbell write for vring @index
 * (call) or @index >= max queues (err/log). @wake: the driver notified a
 * queue or the device state changed (reset, SLAVE_UP).
 */
struct vvm_hooks {
	bool (*doorbell)(void *opaque, unsigned int index); /* Return: had a target */
	void (*wake)(void *opaque);
	void *opaque;
};

/** vvm_new() - a device in its power-on state. Return: 0 or -errno. */
int vvm_new(struct vvm **out, const struct vvm_config *cfg);

/** vvm_free() - unmap BAR 4; NULL is fine. */
void vvm_free(struct vvm *m);

void vvm_set_hooks(struct vvm *m, const struct vvm_hooks *h);

/* ---- the PCI/VFIO side (what the front door calls) ---- */

int vvm_region_size(struct vvm *m, unsigned int index, uint64_t *size, uint32_t *flags);
int vvm_region_read(struct vvm *m, unsigned int index, uint64_t off, void *buf, size_t len);
int vvm_region_write(struct vvm *m, unsigned int index, uint64_t off, const void *buf, size_t len);
/** vvm_shm_ptr() - pointer into BAR 4 for [off, off + len). Return: 0 or -EINVAL. */
int vvm_shm_ptr(struct vvm *m, uint64_t off, size_t len, void **out);
int vvm_dma_map(struct vvm *m, void *vaddr, uint64_t iova, uint64_t size);
int vvm_dma_unmap(struct vvm *m, uint64_t iova, uint64_t size);
/*
 * vvm_set_msix() - the eventfds are used, not dup()ed (dup is outside the
 * daemon's seccomp allow-list, and this runs in its threads): the caller
 * keeps them open until MSI-X is changed or off (@n == 0), as vpci does.
 */
int vvm_set_msix(struct vvm *m, const int *efds, unsigned int n);
/**
 * vvm_arm_fault() - inject message fault @f once, at the @at-th rx
 * message (0-based) since the last reset, or at the next one when that is
 * past; the probe faults are only taken from the config at vvm_new().
 * Return: 0 or -EINVAL.
 */
int vvm_arm_fault(struct vvm *m, enum vvm_fault f, unsigned int at);
/** vvm_flr() - function-level reset (as VFIO_DEVICE_RESET). */
void vvm_flr(struct vvm *m);
/** vvm_iova_ranges() - the usable IOVA ranges (2): below and above the MSI window. Return: 2. */
unsigned int vvm_iova_ranges(uint64_t starts[2], uint64_t ends[2]);

/* ---- the device's own side (what the bridge calls) ---- */

/** vvm_driver_up() - Return: whether DRIVER_OK and SLAVE_UP are both set. */
bool vvm_driver_up(struct vvm *m);
uint32_t vvm_max_vhost_queues(struct vvm *m);
/** vvm_generation() - bumped by every reset: lets the bridge see one happened. */
unsigned long vvm_generation(struct vvm *m);

/**
 * vvm_rx_deliver() - complete one rxq buffer with @len bytes of @msg
 * (@len 0: a disconnect), applying a pending message fault, and raise the
 * rxq vector. Return: 0, -EAGAIN when no buffer is posted, -ENODEV when
 * the queue is not running, -EIO after a ring or DMA fault (recorded).
 */
int vvm_rx_deliver(struct vvm *m, const void *msg, size_t len);

/**
 * vvm_tx_take() - consume the next txq buffer into @buf (@cap bytes) and
 * raise the txq vector. Return: the message length, 0 when none is
 * available, -ENODEV when the queue is not running, -EMSGSIZE when the
 * buffer is over @cap (consumed), -EIO after a fault.
 */
int vvm_tx_take(struct vvm *m, void *buf, size_t cap);

/**
 * vvm_notification() - the sibling kicked vring @index: raise its MSI-X
 * vector (notification_msix_vector[@index]). Return: 0 or -errno.
 */
int vvm_notification(struct vvm *m, unsigned int index);

/** vvm_shm_base() - BAR 4 base and size, for the bridge's mappings. */
void vvm_shm_base(struct vvm *m, uint8_t **base, uint64_t *size);

/** vvm_count_backend_drop() / vvm_stats() - counters. */
void vvm_count_backend_drop(struct vvm *m);
void vvm_stats(struct vvm *m, struct vvm_stats *out);

/** vvm_fault_name() / vvm_fault_parse() - "oversize", "truncated", ... */
const char *vvm_fault_name(enum vvm_fault f);
int vvm_fault_parse(const char *s, enum vvm_fault *out);

/* ---- the in-process front door (vvu_model_vfio.c) ---- */

struct vfio_dev;

/**
 * vvm_vfio_attach() - the model that vvm_vfio_open() opens from now on
 * (vfio_open_fn has no context pointer). NULL detaches.
 */
void vvm_vfio_attach(struct vvm *m);

/** vvm_vfio_open() - a vfio_open_fn over the attached model. */
int vvm_vfio_open(struct vfio_dev *d, const char *name);

/* ---- the bridge (vvu_bridge.c) ---- */

struct vvb;

/**
 * vvb_start() - listen on @path and run the bridge thread over @m.
 * @record_dir: when not NULL, each session's rxq messages are also
 * written to @record_dir/session-N: a byte 1, then per message a le32
 * length and its bytes (a zero length: the disconnect), which is
 * fuzz_vvu's message-mode input. Return: 0 or -errno.
 */
int vvb_start(struct vvb **out, struct vvm *m, const char *path, const char *record_dir);

/*
 * vvb_mem_filter - a proxy's own check of SET_MEM_TABLE, before the bridge
 * maps it and passes it on: it may rewrite the whole message @msg in place
 * (@len bytes, room for VVM_MAX_MSG; header size kept consistent), and
 * close fds it leaves out of the table (then lowering *@nfds).
 * Return: 0, or -errno to refuse the table, which ends the session.
 */
typedef int vvb_mem_filter(void *opaque, uint8_t *msg, size_t *len, int *fds,
			   unsigned int *nfds);

/** vvb_start_filtered() - vvb_start() with @filter (and its @opaque) on every memory table. */
int vvb_start_filtered(struct vvb **out, struct vvm *m, const char *path, const char *record_dir,
		       vvb_mem_filter *filter, void *opaque);

struct msghdr;

/**
 * vvb_cmsg_fds() - the SCM_RIGHTS fds a recvmsg() brought in @mh, up to
 * @max into @fds (the rest closed). Return: how many.
 */
unsigned int vvb_cmsg_fds(struct msghdr *mh, int *fds, unsigned int max);

/** vvb_read_full() - read exactly @len bytes from a stream socket. Return: 0, -ECONNRESET, -errno. */
int vvb_read_full(int fd, void *buf, size_t len);

/** vvb_stop() - stop the thread, close everything, remove the socket file. */
void vvb_stop(struct vvb *b);

/** vvb_sessions() - front ends served so far (accepted). */
unsigned long vvb_sessions(struct vvb *b);

#endif
