// SPDX-License-Identifier: MIT
/*
 * The VVU checks that need no device: identity, config and capability
 * values, and one message per buffer in little-endian wire form (the draft
 * spec's byte order on this transport; on a socket it is the host's).
 *
 * Byte order: le*toh and htole* are the same swap (or none), so one
 * function turns a payload either way; it knows each layout we parse or
 * send, and leaves the others (refused later by the dispatcher) as raw bytes.
 */
#include "transport/vvu/vvu.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "util/log.h"
#include "vhost_user/msg.h"

int vvu_check_identity(const char *name, uint16_t vendor, uint16_t device)
{
	if (vendor == VVU_PCI_VENDOR &&
	    (device == VVU_PCI_DEVICE_DRAFT || device == VVU_PCI_DEVICE_CROSVM))
		return 0;
	log_err("PCI device %s (%04x:%04x) is not a virtio-vhost-user device (want %04x:%04x or "
		"%04x:%04x)", name, vendor, device, VVU_PCI_VENDOR, VVU_PCI_DEVICE_DRAFT,
		VVU_PCI_VENDOR, VVU_PCI_DEVICE_CROSVM);
	return -ENODEV;
}

int vvu_check_max_queues(uint32_t max_vhost_queues, unsigned int needed)
{
	if (max_vhost_queues == 0 || max_vhost_queues > VVU_MAX_VHOST_QUEUES) {
		log_err("vvu: device reports max_vhost_queues %" PRIu32 " (must be 1 to %u)",
			max_vhost_queues, VVU_MAX_VHOST_QUEUES);
		return -EIO;
	}
	if (max_vhost_queues < needed) {
		log_err("vvu: device serves %" PRIu32 " vhost-user queues; vsock needs %u",
			max_vhost_queues, needed);
		return -ENOTSUP;
	}
	return 0;
}

/* Doorbell @idx lies wholly inside a cap of @len bytes: idx * mult + 2 <= len. */
static bool doorbell_fits(uint64_t idx, uint32_t mult, uint64_t len)
{
	uint64_t off;

	if (mult && idx > (UINT64_MAX - 2) / mult)
		return false;
	off = idx * mult;
	return len >= 2 && off <= len - 2;
}

int vvu_check_doorbell(const struct vpci_loc *loc, uint32_t mult, unsigned int nq, uint32_t ndev,
		       struct vvu_doorbell *out)
{
	memset(out, 0, sizeof(*out));
	if (!loc->present) {
		log_err("vvu: device has no doorbell capability (cfg_type %u)", VVU_CAP_DOORBELL);
		return -ENODEV;
	}
	if (mult & (mult - 1)) {
		log_err("vvu: doorbell multiplier %" PRIu32 " is neither 0 nor a power of two", mult);
		return -EIO;
	}
	/* the draft's rule: length >= num * multiplier + 2 */
	if (nq == 0 || !doorbell_fits(nq, mult, loc->len)) {
		log_err("vvu: doorbell capability of %" PRIu64 " bytes is too short for %u queues "
			"at multiplier %" PRIu32, loc->len, nq, mult);
		return -EIO;
	}
	out->loc = *loc;
	out->mult = mult;
	out->nqueues_dev = ndev;
	/* err doorbells N + i are optional; with multiplier 0 they would alias the calls */
	out->have_err = mult != 0 && ndev >= nq && doorbell_fits((uint64_t)ndev + nq - 1, mult, loc->len);
	return 0;
}

int vvu_check_notification(const struct vpci_loc *loc)
{
	if (!loc->present || loc->len < VVU_NOTIF_LEN) {
		log_err("vvu: device has no usable notification capability (cfg_type %u, %" PRIu64
			" bytes; need %u)", VVU_CAP_NOTIFICATION, loc->present ? loc->len : 0,
			VVU_NOTIF_LEN);
		return -ENODEV;
	}
	return 0;
}

int vvu_check_shmem(const struct vpci_loc *loc, const struct vfio_region_desc *bar)
{
	if (!loc->present) {
		log_err("vvu: device has no shared-memory capability (cfg_type %u)",
			VVU_CAP_SHARED_MEMORY);
		return -ENODEV;
	}
	if (loc->len == 0 || loc->off % VVU_SHM_ALIGN || loc->len % VVU_SHM_ALIGN) {
		log_err("vvu: shared memory at BAR %u offset 0x%" PRIx64 " length 0x%" PRIx64
			" is not a nonempty run of 4 KiB pages", loc->bar, loc->off, loc->len);
		return -EIO;
	}
	if (loc->off > bar->size || loc->len > bar->size - loc->off) {
		log_err("vvu: shared memory 0x%" PRIx64 "+0x%" PRIx64 " is outside BAR %u (0x%" PRIx64
			" bytes)", loc->off, loc->len, loc->bar, bar->size);
		return -EIO;
	}
	if (!(bar->flags & 0x4u /* VFIO_REGION_INFO_FLAG_MMAP */)) {
		log_err("vvu: BAR %u holding the shared memory cannot be mapped", loc->bar);
		return -EIO;
	}
	if (loc->len != (uint64_t)(size_t)loc->len) {
		log_err("vvu: shared memory of 0x%" PRIx64 " bytes does not fit our address space",
			loc->len);
		return -EIO;
	}
	return 0;
}

/* ---- framing ---- */

enum vvu_layout { L_RAW, L_U64, L_STATE, L_ADDR, L_MEM, L_REGION, L_LOG, L_CONFIG };

static enum vvu_layout request_layout(uint32_t request)
{
	switch (request) {
	case VU_REQ_SET_FEATURES:
	case VU_REQ_SET_PROTOCOL_FEATURES:
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR:
	case VU_REQ_SEND_RARP:
	case VU_REQ_NET_SET_MTU:
	case VU_REQ_SET_STATUS:
		return L_U64;
	case VU_REQ_SET_VRING_NUM:
	case VU_REQ_SET_VRING_BASE:
	case VU_REQ_GET_VRING_BASE:
	case VU_REQ_SET_VRING_ENABLE:
	case VU_REQ_SET_VRING_ENDIAN:
	case VU_REQ_VRING_KICK:
		return L_STATE;
	case VU_REQ_SET_VRING_ADDR:
		return L_ADDR;
	case VU_REQ_SET_MEM_TABLE:
		return L_MEM;
	case VU_REQ_ADD_MEM_REG:
	case VU_REQ_REM_MEM_REG:
		return L_REGION;
	case VU_REQ_SET_LOG_BASE:
		return L_LOG;
	case VU_REQ_GET_CONFIG:
	case VU_REQ_SET_CONFIG:
		return L_CONFIG;
	default:
		return L_RAW;
	}
}

/* A reply is u64 (GET_* values, REPLY_ACK) unless its request has its own layout. */
static enum vvu_layout reply_layout(const struct vu_msg *m)
{
	if (m->hdr.request == VU_REQ_GET_VRING_BASE && m->hdr.size == sizeof(struct vu_vring_state))
		return L_STATE;
	if (m->hdr.request == VU_REQ_GET_CONFIG)
		return L_CONFIG;
	return m->hdr.size == sizeof(uint64_t) ? L_U64 : L_RAW;
}

static void swap_region(struct vu_mem_region *r)
{
	r->guest_phys_addr = le64toh(r->guest_phys_addr);
	r->memory_size = le64toh(r->memory_size);
	r->userspace_addr = le64toh(r->userspace_addr);
	r->mmap_offset = le64toh(r->mmap_offset);
}

/* Only what hdr.size covers is touched; the rest of the payload is never read. */
static void swap_payload(struct vu_msg *m, enum vvu_layout l)
{
	uint32_t size = m->hdr.size;
	uint32_t n;

	if (l == L_U64 && size >= 8) {
		m->payload.u64 = le64toh(m->payload.u64);
	} else if (l == L_STATE && size >= 8) {
		m->payload.state.index = le32toh(m->payload.state.index);
		m->payload.state.num = le32toh(m->payload.state.num);
	} else if (l == L_ADDR && size >= sizeof(struct vu_vring_addr)) {
		struct vu_vring_addr *a = &m->payload.addr;

		a->index = le32toh(a->index);
		a->flags = le32toh(a->flags);
		a->desc = le64toh(a->desc);
		a->used = le64toh(a->used);
		a->avail = le64toh(a->avail);
		a->log = le64toh(a->log);
	} else if (l == L_MEM && size >= 8) {
		m->payload.mem.nregions = le32toh(m->payload.mem.nregions);
		m->payload.mem.padding = le32toh(m->payload.mem.padding);
		n = (size - 8) / sizeof(struct vu_mem_region);
		for (uint32_t i = 0; i < n && i < VU_MAX_MEM_REGIONS; i++)
			swap_region(&m->payload.mem.regions[i]);
	} else if (l == L_REGION && size >= sizeof(struct vu_single_region)) {
		m->payload.region.padding = le64toh(m->payload.region.padding);
		swap_region(&m->payload.region.region);
	} else if (l == L_LOG && size >= sizeof(struct vu_log)) {
		m->payload.log.mmap_size = le64toh(m->payload.log.mmap_size);
		m->payload.log.mmap_offset = le64toh(m->payload.log.mmap_offset);
	} else if (l == L_CONFIG && size >= VU_CONFIG_HDR_SIZE) {
		m->payload.config.offset = le32toh(m->payload.config.offset);
		m->payload.config.size = le32toh(m->payload.config.size);
		m->payload.config.flags = le32toh(m->payload.config.flags);
	}
}

int vvu_msg_from_buffer(const uint8_t *buf, uint32_t len, struct vu_msg *out)
{
	struct vu_hdr h;

	memset(&out->hdr, 0, sizeof(out->hdr));
	out->nfds = 0;
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		out->fds[i] = -1;
	if (len == 0)
		return -ECONNRESET;
	if (len < VU_HDR_SIZE) {
		log_err("vvu: a %" PRIu32 "-byte buffer is shorter than a message header", len);
		return -EBADMSG;
	}
	memcpy(&h, buf, sizeof(h));
	h.request = le32toh(h.request);
	h.flags = le32toh(h.flags);
	h.size = le32toh(h.size);
	if (h.size > VU_MAX_PAYLOAD || len - VU_HDR_SIZE != h.size) {
		log_err("vvu: %s: a %" PRIu32 "-byte buffer holding a header that says %" PRIu32
			" payload bytes (one whole message per buffer, at most %u)",
			vu_request_name(h.request), len, h.size, VU_MAX_PAYLOAD);
		return -EBADMSG;
	}
	out->hdr = h;
	memcpy(out->payload.raw, buf + VU_HDR_SIZE, h.size);
	swap_payload(out, request_layout(h.request));
	return 0;
}

int vvu_msg_to_buffer(const struct vu_msg *msg, uint8_t *buf, uint32_t cap)
{
	struct vu_msg wire;
	uint32_t size = msg->hdr.size;

	if (size > VU_MAX_PAYLOAD || cap < VU_HDR_SIZE || size > cap - VU_HDR_SIZE)
		return -EMSGSIZE;
	wire.hdr = msg->hdr;
	memcpy(wire.payload.raw, msg->payload.raw, size);
	swap_payload(&wire, reply_layout(msg));
	wire.hdr.request = htole32(msg->hdr.request);
	wire.hdr.flags = htole32(msg->hdr.flags);
	wire.hdr.size = htole32(size);
	memcpy(buf, &wire.hdr, VU_HDR_SIZE);
	memcpy(buf + VU_HDR_SIZE, wire.payload.raw, size);
	return (int)(VU_HDR_SIZE + size);
}
