// SPDX-License-Identifier: MIT
/*
 * Driver side of a virtio split ring (virtio 1.x §2.7) in the test guest's
 * memory: what a guest kernel's virtio_ring does, reduced to what tests need.
 *
 * Ordering: descriptors and the avail slot are written first, then avail->idx
 * with a release store, so the device never sees an index before the entry
 * it covers. Reading used->idx is an acquire load, so the used entries it
 * covers are read after it. The notification checks (avail_event, used
 * flags) need a full barrier after publishing, exactly as in the spec's
 * driver requirements.
 *
 * The free-descriptor list (and, while a chain is outstanding, the links of
 * its descriptors) lives in private memory, not in the descriptors' next
 * fields, so a device writing to the descriptor table (or a hostile
 * test using the raw writers) cannot corrupt our bookkeeping. Values the
 * device returns (used ids, used idx) are checked before use.
 *
 * Indirect tables: one table of TFE_VRING_MAX_CHAIN entries per descriptor
 * slot, used by the chain whose head sits in that slot.
 */
#include "tfe.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define USED_ALIGN 64u

int tfe_vring_init(struct tfe_vring *vr, struct tfe_mem *mem, uint16_t num, unsigned int flags)
{
	uint64_t desc_len = 16ull * num, avail_len = 6ull + 2ull * num, used_len = 6ull + 8ull * num;
	int rc;

	memset(vr, 0, sizeof(*vr));
	vr->kick_fd = vr->call_fd = -1;
	if (num == 0 || num > 32768 || (num & (num - 1)))
		return -EINVAL;
	vr->mem = mem;
	vr->num = num;
	vr->event_idx = flags & TFE_VRING_EVENT_IDX;
	rc = tfe_mem_alloc(mem, desc_len + avail_len, 4096, &vr->desc_gpa);
	if (rc == 0)
		rc = tfe_mem_alloc(mem, used_len, USED_ALIGN, &vr->used_gpa);
	if (rc == 0 && (flags & TFE_VRING_INDIRECT))
		rc = tfe_mem_alloc(mem, 16ull * TFE_VRING_MAX_CHAIN * num, 16, &vr->indirect_gpa);
	if (rc < 0)
		return rc;
	vr->indirect = flags & TFE_VRING_INDIRECT;
	vr->avail_gpa = vr->desc_gpa + desc_len;
	vr->desc = tfe_mem_ptr(mem, vr->desc_gpa, desc_len);
	vr->avail = tfe_mem_ptr(mem, vr->avail_gpa, avail_len);
	vr->used = tfe_mem_ptr(mem, vr->used_gpa, used_len);
	vr->next_free = calloc(num, sizeof(*vr->next_free));
	vr->chain_len = calloc(num, sizeof(*vr->chain_len));
	vr->token = calloc(num, sizeof(*vr->token));
	if (!vr->next_free || !vr->chain_len || !vr->token) {
		tfe_vring_fini(vr);
		return -ENOMEM;
	}
	memset(vr->desc, 0, desc_len + avail_len);
	memset(vr->used, 0, used_len);
	for (uint16_t i = 0; i < num; i++)
		vr->next_free[i] = (uint16_t)(i + 1);
	vr->num_free = num;
	return 0;
}

void tfe_vring_fini(struct tfe_vring *vr)
{
	free(vr->next_free);
	free(vr->chain_len);
	free(vr->token);
	vr->next_free = vr->chain_len = NULL;
	vr->token = NULL;
	vr->num = 0;
}

void tfe_vring_set_fds(struct tfe_vring *vr, int kick_fd, int call_fd)
{
	vr->kick_fd = kick_fd;
	vr->call_fd = call_fd;
}

void tfe_vring_addr(const struct tfe_vring *vr, uint32_t index, struct vu_vring_addr *out)
{
	memset(out, 0, sizeof(*out));
	out->index = index;
	out->desc = tfe_mem_uva(vr->mem, vr->desc_gpa);
	out->used = tfe_mem_uva(vr->mem, vr->used_gpa);
	out->avail = tfe_mem_uva(vr->mem, vr->avail_gpa);
}

uint16_t *tfe_vring_used_event(const struct tfe_vring *vr)
{
	return &vr->avail->ring[vr->num];
}

uint16_t *tfe_vring_avail_event(const struct tfe_vring *vr)
{
	return (uint16_t *)&vr->used->ring[vr->num];
}

static void put_desc(struct tfe_vdesc *d, const struct tfe_buf *b, uint16_t flags, uint16_t next)
{
	d->addr = htole64(b->gpa);
	d->len = htole32(b->len);
	d->flags = htole16((uint16_t)(flags | (b->write ? TFE_VDESC_F_WRITE : 0)));
	d->next = htole16(next);
}

/* Take n descriptors off the free list, linked in order; returns the head. */
static uint16_t take_descs(struct tfe_vring *vr, unsigned int n, uint16_t *ids)
{
	for (unsigned int i = 0; i < n; i++) {
		ids[i] = vr->free_head;
		vr->free_head = vr->next_free[vr->free_head];
	}
	vr->num_free = (uint16_t)(vr->num_free - n);
	return ids[0];
}

static void publish(struct tfe_vring *vr, uint16_t head)
{
	vr->avail->ring[vr->avail_idx & (vr->num - 1)] = htole16(head);
	vr->avail_idx++;
	__atomic_store_n(&vr->avail->idx, htole16(vr->avail_idx), __ATOMIC_RELEASE);
}

static uint16_t add_indirect(struct tfe_vring *vr, const struct tfe_buf *bufs, unsigned int n)
{
	uint64_t table_gpa;
	struct tfe_vdesc *table;
	struct tfe_buf whole;
	uint16_t head;

	take_descs(vr, 1, &head);
	table_gpa = vr->indirect_gpa + 16ull * TFE_VRING_MAX_CHAIN * head;
	table = tfe_mem_ptr(vr->mem, table_gpa, 16ull * n);
	for (unsigned int i = 0; i < n; i++)
		put_desc(&table[i], &bufs[i], i + 1 < n ? TFE_VDESC_F_NEXT : 0,
			 (uint16_t)(i + 1 < n ? i + 1 : 0));
	whole = (struct tfe_buf){ .gpa = table_gpa, .len = (uint32_t)(16 * n), .write = false };
	put_desc(&vr->desc[head], &whole, TFE_VDESC_F_INDIRECT, 0);
	vr->chain_len[head] = 1;
	return head;
}

int tfe_vring_add(struct tfe_vring *vr, const struct tfe_buf *bufs, unsigned int n, bool indirect,
		  uintptr_t token)
{
	uint16_t ids[TFE_VRING_MAX_CHAIN];
	uint16_t head;

	if (n == 0 || n > TFE_VRING_MAX_CHAIN || (indirect && !vr->indirect))
		return -EINVAL;
	if (vr->num_free < (indirect ? 1u : n))
		return -ENOSPC;
	if (indirect) {
		head = add_indirect(vr, bufs, n);
	} else {
		head = take_descs(vr, n, ids);
		for (unsigned int i = 0; i < n; i++)
			put_desc(&vr->desc[ids[i]], &bufs[i], i + 1 < n ? TFE_VDESC_F_NEXT : 0,
				 i + 1 < n ? ids[i + 1] : 0);
		vr->chain_len[head] = (uint16_t)n;
	}
	vr->token[head] = token;
	publish(vr, head);
	return head;
}

bool tfe_vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

bool tfe_vring_kick_needed(struct tfe_vring *vr)
{
	uint16_t old = vr->kicked_idx;
	bool need;

	/* the device's suppression state must be read after avail->idx is visible */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vr->event_idx) {
		uint16_t ev = le16toh(__atomic_load_n(tfe_vring_avail_event(vr), __ATOMIC_RELAXED));

		need = tfe_vring_need_event(ev, vr->avail_idx, old);
	} else {
		need = !(le16toh(__atomic_load_n(&vr->used->flags, __ATOMIC_RELAXED)) &
			 TFE_VUSED_F_NO_NOTIFY);
	}
	vr->kicked_idx = vr->avail_idx;
	return need;
}

int tfe_vring_notify(struct tfe_vring *vr)
{
	uint64_t one = 1;

	if (vr->kick_fd < 0)
		return 0;
	if (write(vr->kick_fd, &one, sizeof(one)) != sizeof(one) && errno != EAGAIN)
		return -errno;
	return 0;
}

int tfe_vring_kick(struct tfe_vring *vr)
{
	int rc;

	if (!tfe_vring_kick_needed(vr))
		return 0;
	rc = tfe_vring_notify(vr);
	return rc < 0 ? rc : 1;
}

bool tfe_vring_has_used(const struct tfe_vring *vr)
{
	return le16toh(__atomic_load_n(&vr->used->idx, __ATOMIC_ACQUIRE)) != vr->last_used;
}

/*
 * While a chain is outstanding, next_free[] of its descriptors still links
 * them in order (take_descs() took them off the list that way), so the
 * chain is returned by splicing it back in front of the list.
 */
static void free_chain(struct tfe_vring *vr, uint16_t head)
{
	uint16_t n = vr->chain_len[head], tail = head;

	for (uint16_t i = 0; i + 1 < n; i++)
		tail = vr->next_free[tail];
	vr->next_free[tail] = vr->free_head;
	vr->free_head = head;
	vr->num_free = (uint16_t)(vr->num_free + n);
	vr->chain_len[head] = 0;
}

int tfe_vring_get_used(struct tfe_vring *vr, uint32_t *len, uintptr_t *token)
{
	uint16_t used_idx = le16toh(__atomic_load_n(&vr->used->idx, __ATOMIC_ACQUIRE));
	const struct tfe_vused_elem *e;
	uint32_t id;

	if (used_idx == vr->last_used)
		return 0;
	if ((uint16_t)(used_idx - vr->last_used) > vr->num) {
		tfe_log(1, "device moved used idx from %u to %u (ring of %u)", vr->last_used,
			 used_idx, vr->num);
		vr->last_used = used_idx;
		return -EIO;
	}
	e = &vr->used->ring[vr->last_used & (vr->num - 1)];
	id = le32toh(e->id);
	vr->last_used++;
	if (id >= vr->num || vr->chain_len[id] == 0) {
		tfe_log(1, "device returned descriptor %u, which is not an outstanding head", id);
		return -EIO;
	}
	*len = le32toh(e->len);
	*token = vr->token[id];
	free_chain(vr, (uint16_t)id);
	return 1;
}

bool tfe_vring_arm(struct tfe_vring *vr)
{
	if (vr->event_idx)
		__atomic_store_n(tfe_vring_used_event(vr), htole16(vr->last_used), __ATOMIC_RELAXED);
	/* the device must see used_event before we decide to sleep */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return tfe_vring_has_used(vr);
}

int tfe_vring_wait(struct tfe_vring *vr, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	for (;;) {
		int slice = tfe_remaining_ms(deadline);
		struct pollfd p = { .fd = vr->call_fd, .events = POLLIN };

		if (tfe_vring_arm(vr))
			return 0;
		if (slice == 0)
			return -ETIMEDOUT;
		/* short slices: a lost or suppressed interrupt costs little */
		if (slice > 10)
			slice = 10;
		if (poll(vr->call_fd >= 0 ? &p : NULL, vr->call_fd >= 0 ? 1 : 0, slice) > 0) {
			uint64_t v;

			if (read(vr->call_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return -errno;
		}
	}
}

int tfe_vring_write_desc(struct tfe_vring *vr, uint16_t i, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t next)
{
	struct tfe_vdesc *d = &vr->desc[i & (vr->num - 1)];

	d->addr = htole64(addr);
	d->len = htole32(len);
	d->flags = htole16(flags);
	d->next = htole16(next);
	return 0;
}

int tfe_vring_push_avail(struct tfe_vring *vr, uint16_t head)
{
	publish(vr, head);
	return 0;
}

int tfe_vring_set_avail_idx(struct tfe_vring *vr, uint16_t idx)
{
	vr->avail_idx = idx;
	__atomic_store_n(&vr->avail->idx, htole16(idx), __ATOMIC_RELEASE);
	return 0;
}
