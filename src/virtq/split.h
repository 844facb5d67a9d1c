/* SPDX-License-Identifier: MIT */
/*
 * Split virtqueue, device side (virtio 1.2 §2.7): take descriptor chains
 * the driver made available, hand them to the caller as bounded iovec
 * lists, return them on the used ring, and decide when each side must
 * notify the other (EVENT_IDX or the flag fields).
 *
 * Everything the guest wrote is hostile. A ring that breaks a spec rule is
 * marked broken, the reason is logged once, and the queue does nothing more
 * (no pops, no pushes, no guest memory touched) until vq_init() again. No
 * input makes this module read or write outside the guest's mapped regions
 * or the three ring areas the caller validated.
 *
 * Threading: one struct vq is used by one thread at a time. The guest runs
 * concurrently: ring fields are read once with __atomic loads, descriptors
 * are copied to locals (indirect tables to private memory) before use.
 *
 * Use: a consumer drains, then re-arms kicks and drains again if the
 * re-arm found new buffers, or it may sleep on a kick that never comes
 * (with EVENT_IDX the driver only kicks past the avail_event we publish):
 *
 *	do {
 *		vq_disable_notify(vq);
 *		while (vq_pop(vq, iov, n, &e) == 0)
 *			... vq_push(vq, e.head, written);
 *		vq_flush(vq);
 *		if (vq_should_notify(vq))
 *			... signal the call fd;
 *	} while (vq_enable_notify(vq));
 *
 * Limits: queue size is a power of two up to 32768; indirect tables hold at
 * most 65536 entries (their private copy, up to 1 MiB, is allocated on
 * first use and kept until vq_fini()); a descriptor may span two or more
 * adjacent memory regions, each piece becoming its own iovec.
 */
#ifndef VQ_SPLIT_H
#define VQ_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <linux/virtio_ring.h>

#include "mem/guest_mem.h"

/* Split ring queue size limit (virtio 1.2 §2.7: at most 32768). */
#define VQ_MAX_SIZE 32768u
/* Largest indirect table we accept, in descriptors (PROTOCOLS.md §6.3). */
#define VQ_MAX_INDIRECT 65536u

/* How a ring is set up; the pointers are already translated and checked. */
struct vq_config {
	const char *name;     /* for log lines ("rx", "tx", "event") */
	unsigned int num;     /* queue size: power of two, 1..VQ_MAX_SIZE */
	/*
	 * Daemon pointers to the three areas, each checked by the caller to
	 * cover its full size including the event field: desc 16 * num bytes,
	 * avail 6 + 2 * num, used 6 + 8 * num; aligned 16, 2 and 4.
	 */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t features;    /* negotiated; EVENT_IDX, INDIRECT_DESC, NOTIFY_ON_EMPTY are used */
	const struct gmem *mem; /* guest memory for descriptor addresses; must outlive the vq */
};

/* One popped chain: iov[0, out_num) readable, iov[out_num, out_num + in_num) writable. */
struct vq_elem {
	uint16_t head;        /* give this back to vq_push() */
	unsigned int out_num;
	unsigned int in_num;
	uint32_t out_len;     /* bytes in the readable part */
	uint32_t in_len;      /* bytes in the writable part */
};

struct vq {
	const char *name;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	const struct gmem *mem;
	bool event_idx;
	bool indirect;
	bool notify_on_empty;

	uint16_t last_avail;      /* next avail ring entry to pop */
	uint16_t avail_shadow;    /* avail->idx as last read */
	uint16_t used_idx;        /* next used ring slot (not yet published) */
	uint16_t used_published;  /* used->idx as last written */
	uint16_t signalled_used;  /* used idx at the last notify decision */
	bool signalled_valid;     /* signalled_used means something */
	unsigned int inflight;    /* popped, not yet pushed */

	bool broken;
	char broken_reason[128];

	struct vring_desc *itab;  /* private copy of the current indirect table */
	size_t itab_cap;          /* its capacity, in descriptors */
};

/**
 * vq_init() - set up @vq for a ring described by @cfg.
 * Reads the current used->idx (the front end owns it across restarts);
 * writes nothing to guest memory. last_avail starts at 0: call
 * vq_set_last_avail() with the SET_VRING_BASE value.
 *
 * Return: 0, or -EINVAL when @cfg is unusable (size not a power of two in
 * 1..VQ_MAX_SIZE, NULL or misaligned pointers). @vq must be fresh or
 * vq_fini()'ed.
 */
int vq_init(struct vq *vq, const struct vq_config *cfg);

/** vq_fini() - release private memory; @vq must be vq_init()'ed again before use. */
void vq_fini(struct vq *vq);

/**
 * vq_set_last_avail() - start popping at avail index @idx (SET_VRING_BASE).
 * Forgets chains in flight and the last notify decision.
 */
void vq_set_last_avail(struct vq *vq, uint16_t idx);

/** vq_last_avail() - Return: the next avail index to pop (GET_VRING_BASE). */
uint16_t vq_last_avail(const struct vq *vq);

/**
 * vq_pop() - take the next available chain.
 * @iov:     caller's array for the chain's buffers
 * @iov_max: its size; a chain needing more iovecs breaks the queue
 * @elem:    filled on success
 *
 * Return: 0 with @elem and @iov filled; -EAGAIN when no chain is
 * available; -EIO when the queue is (or just became) broken; -ENOMEM when
 * an indirect table could not be copied (nothing consumed, retry later).
 */
int vq_pop(struct vq *vq, struct iovec *iov, unsigned int iov_max, struct vq_elem *elem);

/**
 * vq_unpop() - give back the @n chains popped last, unused: they are
 * popped again (descriptors read afresh) by the next vq_pop() calls. For a
 * caller that took chains ahead of a read that did not reach them.
 * @n must not exceed the chains popped since the last vq_push() of a
 * later one (a caller bug otherwise: clamped to the chains in flight).
 */
void vq_unpop(struct vq *vq, unsigned int n);

/**
 * vq_push() - write a used ring entry for chain @head with @len bytes
 * written into its writable part (at most the chain's in_len, virtio 1.2
 * §2.7.8.2). Not visible to the guest until vq_flush().
 *
 * Return: 0; -EIO when the queue is broken; -EINVAL when @head is out of
 * range or no chain is in flight (a caller bug; logged).
 */
int vq_push(struct vq *vq, uint16_t head, uint32_t len);

/** vq_flush() - publish every pushed entry to the guest with one used->idx update. */
void vq_flush(struct vq *vq);

/**
 * vq_should_notify() - decide whether the guest wants a used buffer
 * notification for what was flushed since the previous decision.
 * Return: true when the caller should signal the call fd.
 */
bool vq_should_notify(struct vq *vq);

/**
 * vq_enable_notify() - ask the guest to kick on new buffers, then re-check
 * the ring so a buffer added meanwhile is not missed.
 * Return: true when buffers are available (pop again instead of sleeping).
 */
bool vq_enable_notify(struct vq *vq);

/** vq_disable_notify() - tell the guest kicks are not needed while we poll. */
void vq_disable_notify(struct vq *vq);

/**
 * vq_mark_broken() - stop the queue for good and log why (once).
 * For device-level rule violations the caller finds in a chain.
 */
void vq_mark_broken(struct vq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** vq_is_broken() - Return: true once a rule violation stopped the queue. */
bool vq_is_broken(const struct vq *vq);

/** vq_broken_reason() - Return: why the queue is broken, "" when it is not. */
const char *vq_broken_reason(const struct vq *vq);

/**
 * vq_need_event() - the virtio event index rule: does moving an index from
 * @old to @new_idx pass @event (i.e. is @event in [@old, @new_idx), mod 2^16)?
 * Return: true when the other side asked to be notified.
 */
bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old);

#endif
