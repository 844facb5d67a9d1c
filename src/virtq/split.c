// SPDX-License-Identifier: MIT
/*
 * Split virtqueue, device side. See split.h for the contract.
 *
 * Spec rules enforced here are named "virtio 1.2 §x (title)". Every check
 * on guest data ends in vq_mark_broken(): a driver that breaks one of these
 * rules is buggy or hostile, and guessing what it meant would only move the
 * damage somewhere else (the spec's answer is DEVICE_NEEDS_RESET).
 *
 * Memory ordering with the driver (virtio 1.2 §2.7.13, §2.7.14):
 *   - avail->idx is loaded with acquire before the ring entries and the
 *     descriptors it exposes;
 *   - used ring entries are stored before used->idx, which is stored with
 *     release;
 *   - a full fence separates "publish" from "read the other side's
 *     suppression field" in both directions, or each side could miss the
 *     other's update and both wait forever.
 *
 * Guest values are read once: descriptors are copied to a local before
 * their fields are used, indirect tables are copied whole into vq->itab
 * before the walk (no double fetch).
 */
#include "virtq/split.h"

#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_config.h>

#include "util/log.h"

/* One chain being collected into the caller's iovec array. */
struct walk {
	struct iovec *iov;
	unsigned int max;
	unsigned int n;        /* iovecs filled */
	unsigned int out_num;  /* of which readable */
	bool writing;          /* a writable descriptor was seen */
	uint64_t out_len;
	uint64_t in_len;
};

static const char *vq_name(const struct vq *vq)
{
	return vq->name ? vq->name : "?";
}

void vq_mark_broken(struct vq *vq, const char *fmt, ...)
{
	va_list ap;

	if (vq->broken)
		return;
	vq->broken = true;
	va_start(ap, fmt);
	vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, ap);
	va_end(ap);
	log_err("virtqueue %s: broken, stopped until reset: %s", vq_name(vq), vq->broken_reason);
}

bool vq_is_broken(const struct vq *vq)
{
	return vq->broken;
}

const char *vq_broken_reason(const struct vq *vq)
{
	return vq->broken ? vq->broken_reason : "";
}

bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	/* event in [old, new_idx) modulo 2^16, without branches on wrap */
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

static int check_config(const struct vq_config *cfg)
{
	/* virtio 1.2 §2.7 (split virtqueues): power of two, at most 32768 */
	if (cfg->num == 0 || cfg->num > VQ_MAX_SIZE || (cfg->num & (cfg->num - 1)) != 0) {
		log_err("virtqueue %s: size %u is not a power of two up to %u",
			cfg->name ? cfg->name : "?", cfg->num, VQ_MAX_SIZE);
		return -EINVAL;
	}
	/* virtio 1.2 §2.7 alignment table: desc 16, avail 2, used 4 */
	if (!cfg->desc || !cfg->avail || !cfg->used || !cfg->mem ||
	    (uintptr_t)cfg->desc % VRING_DESC_ALIGN_SIZE != 0 ||
	    (uintptr_t)cfg->avail % VRING_AVAIL_ALIGN_SIZE != 0 ||
	    (uintptr_t)cfg->used % VRING_USED_ALIGN_SIZE != 0) {
		log_err("virtqueue %s: ring areas missing or misaligned", cfg->name ? cfg->name : "?");
		return -EINVAL;
	}
	return 0;
}

int vq_init(struct vq *vq, const struct vq_config *cfg)
{
	int rc = check_config(cfg);

	if (rc < 0)
		return rc;
	memset(vq, 0, sizeof(*vq));
	vq->name = cfg->name;
	vq->num = cfg->num;
	vq->desc = cfg->desc;
	vq->avail = cfg->avail;
	vq->used = cfg->used;
	vq->mem = cfg->mem;
	vq->event_idx = cfg->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = cfg->features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	vq->notify_on_empty = cfg->features & (1ull << VIRTIO_F_NOTIFY_ON_EMPTY);
	/* the used index survives a back-end restart in guest memory */
	vq->used_idx = le16toh(__atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
	vq->used_published = vq->used_idx;
	return 0;
}

void vq_fini(struct vq *vq)
{
	free(vq->itab);
	vq->itab = NULL;
	vq->itab_cap = 0;
}

void vq_set_last_avail(struct vq *vq, uint16_t idx)
{
	vq->last_avail = idx;
	vq->avail_shadow = idx;
	vq->inflight = 0;
	vq->signalled_valid = false;
}

uint16_t vq_last_avail(const struct vq *vq)
{
	return vq->last_avail;
}

/*
 * Daemon pointer for the start of [gpa, gpa + len) and in *seg how much of
 * it lies in the same region, so a range over adjacent regions is mapped
 * piece by piece. NULL when gpa is in no region.
 */
static void *gpa_seg(const struct gmem *m, uint64_t gpa, uint64_t len, uint64_t *seg)
{
	for (unsigned int i = 0; i < m->nregions && i < GMEM_MAX_REGIONS; i++) {
		const struct gmem_region *r = &m->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size) {
			uint64_t room = r->size - (gpa - r->gpa);

			*seg = len < room ? len : room;
			return gmem_gpa_ptr(m, gpa, *seg);
		}
	}
	return NULL;
}

/* Copy guest range [gpa, gpa + len) to @dst. Return: 0 or -EFAULT. */
static int copy_from_guest(const struct gmem *m, uint64_t gpa, uint64_t len, void *dst)
{
	uint8_t *out = dst;
	uint64_t seg;

	if (gpa > UINT64_MAX - len)
		return -EFAULT;
	while (len > 0) {
		const void *p = gpa_seg(m, gpa, len, &seg);

		if (!p)
			return -EFAULT;
		memcpy(out, p, (size_t)seg);
		out += seg;
		gpa += seg;
		len -= seg;
	}
	return 0;
}

/*
 * Append the guest buffer [addr, addr + len) to the chain, one iovec per
 * memory region it touches. addr + len is known not to wrap.
 */
static int map_buffer(struct vq *vq, struct walk *w, uint64_t addr, uint32_t len, bool wr)
{
	uint64_t left = len, at = addr, seg;

	while (left > 0) {
		void *p = gpa_seg(vq->mem, at, left, &seg);

		if (!p) {
			vq_mark_broken(vq, "buffer 0x%llx+%u is not inside guest memory",
				       (unsigned long long)addr, len);
			return -EIO;
		}
		if (w->n == w->max) {
			vq_mark_broken(vq, "chain needs more than %u buffers", w->max);
			return -EIO;
		}
		w->iov[w->n].iov_base = p;
		w->iov[w->n].iov_len = (size_t)seg;
		w->n++;
		if (!wr)
			w->out_num++;
		at += seg;
		left -= seg;
	}
	return 0;
}

/* Add one direct (non-indirect) descriptor, already copied to @d. */
static int walk_desc(struct vq *vq, struct walk *w, const struct vring_desc *d)
{
	bool wr = d->flags & VRING_DESC_F_WRITE;

	/* virtio 1.2 §2.7.4.2 (message framing): writable elements come after readable ones */
	if (!wr && w->writing) {
		vq_mark_broken(vq, "readable descriptor after a writable one");
		return -EIO;
	}
	w->writing |= wr;
	/* nothing to map; the chain-length cap still bounds the walk */
	if (d->len == 0)
		return 0;
	if (d->addr > UINT64_MAX - d->len) {
		vq_mark_broken(vq, "buffer 0x%llx+%u wraps past 2^64",
			       (unsigned long long)d->addr, d->len);
		return -EIO;
	}
	/* virtio 1.2 §2.7.5.2 (descriptor table): a chain is at most 2^32 bytes; ours must fit u32 */
	if (w->out_len + w->in_len + d->len > UINT32_MAX) {
		vq_mark_broken(vq, "chain longer than %u bytes", UINT32_MAX);
		return -EIO;
	}
	if (wr)
		w->in_len += d->len;
	else
		w->out_len += d->len;
	return map_buffer(vq, w, d->addr, d->len, wr);
}

/* Descriptor @src (guest or private memory) into host order; each field read once. */
static void load_desc(const struct vring_desc *src, struct vring_desc *d)
{
	d->addr = le64toh(__atomic_load_n(&src->addr, __ATOMIC_RELAXED));
	d->len = le32toh(__atomic_load_n(&src->len, __ATOMIC_RELAXED));
	d->flags = le16toh(__atomic_load_n(&src->flags, __ATOMIC_RELAXED));
	d->next = le16toh(__atomic_load_n(&src->next, __ATOMIC_RELAXED));
}

/* Room for @n descriptors in the private indirect copy. */
static int itab_reserve(struct vq *vq, size_t n)
{
	size_t cap = 16;
	struct vring_desc *t;

	if (n <= vq->itab_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	t = malloc(cap * sizeof(*t));
	if (!t) {
		log_err("virtqueue %s: no memory for a %zu-entry indirect table", vq_name(vq), n);
		return -ENOMEM;
	}
	free(vq->itab);
	vq->itab = t;
	vq->itab_cap = cap;
	return 0;
}

/* The checks an indirect descriptor must pass before its table is read. */
static int check_indirect(struct vq *vq, const struct vring_desc *d)
{
	/* virtio 1.2 §2.7.5.3.1 (indirect descriptors, driver requirements) */
	if (!vq->indirect) {
		vq_mark_broken(vq, "indirect descriptor but INDIRECT_DESC was not negotiated");
		return -EIO;
	}
	if (d->flags & VRING_DESC_F_NEXT) {
		vq_mark_broken(vq, "indirect descriptor with NEXT set");
		return -EIO;
	}
	/* §2.7.5.3: the table is an array of 16-byte descriptors */
	if (d->len == 0 || d->len % sizeof(struct vring_desc) != 0) {
		vq_mark_broken(vq, "indirect table length %u is not a non-zero multiple of 16", d->len);
		return -EIO;
	}
	/* PROTOCOLS.md §6.3: our bound, which also caps the private copy at 1 MiB */
	if (d->len / sizeof(struct vring_desc) > VQ_MAX_INDIRECT) {
		vq_mark_broken(vq, "indirect table of %u entries is larger than %u",
			       d->len / (uint32_t)sizeof(struct vring_desc), VQ_MAX_INDIRECT);
		return -EIO;
	}
	return 0;
}

/* Walk the table @d refers to; it ends the chain (no NEXT allowed on @d). */
static int walk_indirect(struct vq *vq, struct walk *w, const struct vring_desc *d)
{
	unsigned int n = d->len / (unsigned int)sizeof(struct vring_desc);
	unsigned int idx = 0;
	int rc = check_indirect(vq, d);

	if (rc == 0)
		rc = itab_reserve(vq, n);
	if (rc < 0)
		return rc;
	if (copy_from_guest(vq->mem, d->addr, d->len, vq->itab) < 0) {
		vq_mark_broken(vq, "indirect table 0x%llx+%u is not inside guest memory",
			       (unsigned long long)d->addr, d->len);
		return -EIO;
	}
	/* walk the snapshot only: no re-load of guest memory past this point */
	__asm__ __volatile__("" ::: "memory");
	for (unsigned int count = 0;; count++) {
		struct vring_desc e;

		/* §2.7.5.2 forbids loops: a table's chain visits each entry at most once */
		if (count == n) {
			vq_mark_broken(vq, "indirect chain longer than its %u-entry table (loop)", n);
			return -EIO;
		}
		load_desc(&vq->itab[idx], &e);
		/* §2.7.5.3.1: no INDIRECT inside an indirect table */
		if (e.flags & VRING_DESC_F_INDIRECT) {
			vq_mark_broken(vq, "nested indirect descriptor");
			return -EIO;
		}
		rc = walk_desc(vq, w, &e);
		if (rc < 0 || !(e.flags & VRING_DESC_F_NEXT))
			return rc;
		if (e.next >= n) {
			vq_mark_broken(vq, "indirect entry %u: next %u is past the %u-entry table",
				       idx, e.next, n);
			return -EIO;
		}
		idx = e.next;
	}
}

/* Collect the chain starting at @head (already checked < num). */
static int walk_chain(struct vq *vq, struct walk *w, uint16_t head)
{
	unsigned int idx = head;
	struct vring_desc d;
	int rc;

	for (unsigned int count = 0;; count++) {
		/*
		 * virtio 1.2 §2.7.5.3.1: no chain longer than the queue size;
		 * §2.7.5.2: no loops. Counting zero-length ones too ends every walk.
		 */
		if (count == vq->num) {
			vq_mark_broken(vq, "chain from head %u longer than the queue size %u (loop)",
				       head, vq->num);
			return -EIO;
		}
		load_desc(&vq->desc[idx], &d);
		/* §2.7.5.3.2: normal descriptors may be followed by one indirect one */
		if (d.flags & VRING_DESC_F_INDIRECT)
			return walk_indirect(vq, w, &d);
		rc = walk_desc(vq, w, &d);
		if (rc < 0 || !(d.flags & VRING_DESC_F_NEXT))
			return rc;
		if (d.next >= vq->num) {
			vq_mark_broken(vq, "descriptor %u: next %u is not below the queue size %u",
				       idx, d.next, vq->num);
			return -EIO;
		}
		idx = d.next;
	}
}

/* Read avail->idx. Return: entries available, or -EIO (broken). */
static int avail_refresh(struct vq *vq)
{
	uint16_t idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));

	/*
	 * virtio 1.2 §2.7.6 (available ring): the driver cannot have more than
	 * queue-size buffers outstanding, so idx moves at most num past us.
	 */
	if ((uint16_t)(idx - vq->last_avail) > vq->num) {
		vq_mark_broken(vq, "guest moved avail index from %u to %u", vq->last_avail, idx);
		return -EIO;
	}
	vq->avail_shadow = idx;
	return (uint16_t)(idx - vq->last_avail);
}

/* The head id in avail entry last_avail, checked against the queue size. */
static int avail_head(struct vq *vq, uint16_t *head)
{
	uint16_t slot = vq->last_avail & (uint16_t)(vq->num - 1);
	uint16_t h = le16toh(__atomic_load_n(&vq->avail->ring[slot], __ATOMIC_RELAXED));

	/* virtio 1.2 §2.7.6: ring entries are descriptor indices */
	if (h >= vq->num) {
		vq_mark_broken(vq, "avail entry %u: head %u is not below the queue size %u",
			       vq->last_avail, h, vq->num);
		return -EIO;
	}
	/* §2.7.13: only free descriptors are made available, so at most num chains are out */
	if (vq->inflight >= vq->num) {
		vq_mark_broken(vq, "more than %u chains in flight (descriptor reused)", vq->num);
		return -EIO;
	}
	*head = h;
	return 0;
}

int vq_pop(struct vq *vq, struct iovec *iov, unsigned int iov_max, struct vq_elem *elem)
{
	struct walk w = { .iov = iov, .max = iov_max };
	uint16_t head;
	int rc;

	if (vq->broken)
		return -EIO;
	if (vq->avail_shadow == vq->last_avail) {
		rc = avail_refresh(vq);
		if (rc <= 0)
			return rc < 0 ? rc : -EAGAIN;
	}
	rc = avail_head(vq, &head);
	if (rc == 0)
		rc = walk_chain(vq, &w, head);
	if (rc < 0)
		return rc;
	elem->head = head;
	elem->out_num = w.out_num;
	elem->in_num = w.n - w.out_num;
	elem->out_len = (uint32_t)w.out_len;
	elem->in_len = (uint32_t)w.in_len;
	vq->last_avail++;
	vq->inflight++;
	return 0;
}

void vq_unpop(struct vq *vq, unsigned int n)
{
	if (n > vq->inflight)
		n = vq->inflight;
	vq->last_avail = (uint16_t)(vq->last_avail - n);
	vq->inflight -= n;
}

int vq_push(struct vq *vq, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e;

	if (vq->broken)
		return -EIO;
	if (head >= vq->num || vq->inflight == 0) {
		log_err("virtqueue %s: push of head %u with %u chains in flight", vq_name(vq), head,
			vq->inflight);
		return -EINVAL;
	}
	e = &vq->used->ring[vq->used_idx & (uint16_t)(vq->num - 1)];
	__atomic_store_n(&e->id, htole32((uint32_t)head), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(len), __ATOMIC_RELAXED);
	vq->used_idx++;
	vq->inflight--;
	return 0;
}

void vq_flush(struct vq *vq)
{
	if (vq->broken || vq->used_idx == vq->used_published)
		return;
	/* virtio 1.2 §2.7.8.2: entries are visible before the idx that exposes them */
	__atomic_store_n(&vq->used->idx, htole16(vq->used_idx), __ATOMIC_RELEASE);
	vq->used_published = vq->used_idx;
}

/* used_event: the last avail ring slot (virtio 1.2 §2.7.6, with EVENT_IDX). */
static uint16_t used_event(const struct vq *vq)
{
	return le16toh(__atomic_load_n(&vq->avail->ring[vq->num], __ATOMIC_RELAXED));
}

bool vq_should_notify(struct vq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_published;
	bool valid = vq->signalled_valid;

	if (vq->broken || (valid && old == now))
		return false;
	vq->signalled_used = now;
	vq->signalled_valid = true;
	/* our used->idx store must be visible before we read the driver's wish */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* virtio 1.2 §6.3 (NOTIFY_ON_EMPTY): notify when the device ran out of buffers */
	if (vq->notify_on_empty &&
	    le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE)) == vq->last_avail)
		return true;
	/* §2.7.7.2 (used buffer notification suppression) */
	if (vq->event_idx)
		return !valid || vq_need_event(used_event(vq), now, old);
	return !(le16toh(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED)) &
		 VRING_AVAIL_F_NO_INTERRUPT);
}

bool vq_enable_notify(struct vq *vq)
{
	/* avail_event: just past the used ring entries (virtio 1.2 §2.7.8) */
	uint16_t *avail_event = (uint16_t *)(void *)((uint8_t *)vq->used +
						     offsetof(struct vring_used, ring) +
						     sizeof(struct vring_used_elem) * vq->num);
	uint16_t idx;

	if (vq->broken)
		return false;
	/*
	 * virtio 1.2 §2.7.10.2 (available buffer notification suppression):
	 * flags stays 0 with EVENT_IDX; avail_event = the first index we have
	 * not seen yet, so the driver kicks when it publishes that one.
	 */
	__atomic_store_n(&vq->used->flags, htole16(0), __ATOMIC_RELAXED);
	if (vq->event_idx)
		__atomic_store_n(avail_event, htole16(vq->avail_shadow), __ATOMIC_RELAXED);
	/* the driver may have added buffers before it saw the change: look again */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	idx = le16toh(__atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE));
	return idx != vq->last_avail;
}

void vq_disable_notify(struct vq *vq)
{
	/* with EVENT_IDX, leaving avail_event behind already stops kicks */
	if (vq->broken || vq->event_idx)
		return;
	__atomic_store_n(&vq->used->flags, htole16(VRING_USED_F_NO_NOTIFY), __ATOMIC_RELAXED);
}
