/* SPDX-License-Identifier: MIT */
/*
 * The VVU device itself: registers, IOMMU, MSI-X, virtqueues, faults.
 * See vvu_model.h for the layering and the locking rule.
 */
#include "vvu_model.h"

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhost_user/proto.h"

#define CFG_SPACE_SIZE 256u
#define REGION_CONFIG 7u
#define NO_VECTOR 0xffffu
#define VRING_DESC_F_NEXT 1u
#define VRING_DESC_F_WRITE 2u
/* first cap in config space and the size of the common config struct */
#define CAP_START 0x40u
#define COMMON_SIZE 0x38u
#define VIRTIO_ID_VHOST_USER 24u
/* IOVA space: 39 bits (a common IOMMU width) minus the x86 MSI window */
#define IOVA_TOP ((1ull << 39) - 1)
#define MSI_START 0xfee00000ull
#define MSI_END 0xfeefffffull
#define PAGE 4096ull

struct vvm_queue {
	uint16_t size;
	uint16_t vector;
	bool enabled;
	uint64_t desc, driver, device;
	uint16_t last_avail;  /* next avail entry the device takes */
	uint16_t used_idx;    /* next used index the device publishes */
};

struct vvm_dma {
	uint64_t iova, size;
	uint8_t *vaddr;
};

struct vvm {
	pthread_mutex_t lock;
	struct vvm_config cfg;
	struct vvm_hooks hooks;
	uint8_t pcicfg[CFG_SPACE_SIZE];
	/* common config */
	uint32_t dfselect, gfselect;
	uint64_t guest_features;
	uint16_t msix_config;
	uint8_t status;
	uint8_t cfg_generation;
	uint16_t queue_select;
	struct vvm_queue q[VVM_NQUEUES];
	uint8_t isr;
	/* device config and notifications */
	uint32_t dev_status;
	uint8_t uuid[16];
	uint16_t notif_select;
	uint16_t notif_vector[VVM_MAX_VHOST_QUEUES];
	/* IOMMU and interrupts */
	struct vvm_dma dma[VVM_MAX_DMA_MAPS];
	unsigned int ndma;
	int msix[VVM_NVECTORS];
	unsigned int nmsix;
	/* BAR 4 */
	uint8_t *shm;
	/* faults and counters */
	unsigned long rx_seen;   /* messages since the last reset */
	bool fault_done;
	unsigned long generation;
	struct vvm_stats st;
};

static const char *const fault_names[VVM_FAULT_COUNT] = {
	[VVM_FAULT_NONE] = "none",
	[VVM_FAULT_OVERSIZE] = "oversize",
	[VVM_FAULT_TRUNCATED] = "truncated",
	[VVM_FAULT_SIZE_MISMATCH] = "size-mismatch",
	[VVM_FAULT_UNKNOWN_REQ] = "unknown-request",
	[VVM_FAULT_VRING_INDEX] = "vring-index",
	[VVM_FAULT_BAD_LAYOUT] = "bad-layout",
	[VVM_FAULT_RESET] = "reset",
	[VVM_FAULT_USED_ID] = "used-id",
	[VVM_FAULT_USED_LEN] = "used-len",
	[VVM_FAULT_CAP_OUTSIDE] = "cap-outside",
	[VVM_FAULT_QSIZE0] = "queue-size-0",
	[VVM_FAULT_VECTOR] = "vector-refused",
};

const char *vvm_fault_name(enum vvm_fault f)
{
	return f < VVM_FAULT_COUNT ? fault_names[f] : "?";
}

int vvm_fault_parse(const char *s, enum vvm_fault *out)
{
	for (unsigned int i = 0; i < VVM_FAULT_COUNT; i++) {
		if (strcmp(s, fault_names[i]) == 0) {
			*out = (enum vvm_fault)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

/* [off, off + len) inside [0, size), overflow-safe */
static bool in_range(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* A virtio vendor cap at @at: generic 16-byte header, @extra bytes after it. */
static void put_vcap(uint8_t *c, uint8_t at, uint8_t next, uint8_t type, uint8_t bar, uint32_t off,
		     uint32_t len, uint8_t caplen)
{
	c[at] = 0x09;
	c[at + 1] = next;
	c[at + 2] = caplen;
	c[at + 3] = type;
	c[at + 4] = bar;
	put32(c + at + 8, off);
	put32(c + at + 12, len);
}

static void build_config_space(struct vvm *m)
{
	uint8_t *c = m->pcicfg;
	uint32_t common_off = VVM_COMMON_OFF;

	memset(c, 0, sizeof(m->pcicfg));
	put16(c + 0x00, 0x1af4);
	put16(c + 0x02, m->cfg.device_id);
	put16(c + 0x06, 0x0010); /* capability list present */
	c[0x08] = 1;
	c[0x0b] = 0xff; /* class: misc */
	put32(c + 0x18, 0xfe000004u); /* BAR 2: 64-bit memory */
	put32(c + 0x20, 0x0000000cu); /* BAR 4: 64-bit prefetchable */
	put32(c + 0x24, 0x00000008u);
	put16(c + 0x2c, 0x1af4);
	put16(c + 0x2e, 0x0040);
	c[0x34] = CAP_START;
	/* MSI-X: table size N-1, table and PBA in BAR 2 */
	c[0x40] = 0x11;
	c[0x41] = 0x4c;
	put16(c + 0x42, VVM_NVECTORS - 1);
	put32(c + 0x44, VVM_MSIX_TABLE_OFF | VVM_BAR_REGS);
	put32(c + 0x48, VVM_MSIX_PBA_OFF | VVM_BAR_REGS);
	if (m->cfg.fault == VVM_FAULT_CAP_OUTSIDE)
		common_off = VVM_BAR2_SIZE - COMMON_SIZE / 2;
	put_vcap(c, 0x4c, 0x5c, 1, VVM_BAR_REGS, common_off, COMMON_SIZE, 16);
	put_vcap(c, 0x5c, 0x70, 2, VVM_BAR_REGS, VVM_NOTIFY_OFF, VVM_NOTIFY_LEN, 20);
	put32(c + 0x5c + 16, VVM_NOTIFY_MULT);
	put_vcap(c, 0x70, 0x80, 3, VVM_BAR_REGS, VVM_ISR_OFF, 1, 16);
	put_vcap(c, 0x80, 0x90, 4, VVM_BAR_REGS, VVM_DEVCFG_OFF, 24, 16);
	put_vcap(c, 0x90, 0xa4, 6, VVM_BAR_REGS, VVM_DOORBELL_OFF, VVM_DOORBELL_LEN, 20);
	put32(c + 0x90 + 16, VVM_DOORBELL_MULT);
	put_vcap(c, 0xa4, 0xb4, 7, VVM_BAR_REGS, VVM_NOTIFICATION_OFF, 4, 16);
	/* shared memory: the 64-bit form, offset_hi and length_hi after the header */
	put_vcap(c, 0xb4, 0x00, 8, VVM_BAR_SHM, 0, (uint32_t)m->cfg.shm_size, 24);
	put32(c + 0xb4 + 20, (uint32_t)(m->cfg.shm_size >> 32));
}

static void raise_locked(struct vvm *m, uint16_t vector)
{
	uint64_t one = 1;

	if (vector >= m->nmsix || m->msix[vector] < 0)
		return;
	/* a full eventfd counter still interrupts: the value is irrelevant */
	if (write(m->msix[vector], &one, sizeof(one)) < 0)
		return;
}

static void wake_locked(struct vvm *m)
{
	if (m->hooks.wake)
		m->hooks.wake(m->hooks.opaque);
}

/* Status 0 or FLR: everything the driver set up is forgotten. */
static void reset_locked(struct vvm *m)
{
	/* tests look for this line: a reset after the driver was up ends a session */
	if (m->status & VVM_S_DRIVER_OK)
		fprintf(stderr, "vvu model: device reset (status was 0x%02x)\n", m->status);
	m->dfselect = m->gfselect = 0;
	m->guest_features = 0;
	m->msix_config = NO_VECTOR;
	m->status = 0;
	m->cfg_generation++;
	m->queue_select = 0;
	for (unsigned int i = 0; i < VVM_NQUEUES; i++) {
		memset(&m->q[i], 0, sizeof(m->q[i]));
		m->q[i].size = VVM_QUEUE_MAX;
		m->q[i].vector = NO_VECTOR;
	}
	m->isr = 0;
	m->dev_status = 0;
	m->notif_select = 0;
	for (unsigned int i = 0; i < VVM_MAX_VHOST_QUEUES; i++)
		m->notif_vector[i] = NO_VECTOR;
	m->rx_seen = 0;
	m->generation++;
	m->st.resets++;
	wake_locked(m);
}

int vvm_new(struct vvm **out, const struct vvm_config *cfg)
{
	struct vvm *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	if (!m->cfg.device_id)
		m->cfg.device_id = VVM_PCI_DEVICE_ID;
	if (!m->cfg.shm_size)
		m->cfg.shm_size = VVM_DEFAULT_SHM_SIZE;
	if (!m->cfg.max_vhost_queues || m->cfg.max_vhost_queues > VVM_MAX_VHOST_QUEUES)
		m->cfg.max_vhost_queues = VVM_MAX_VHOST_QUEUES;
	if (m->cfg.shm_size & (m->cfg.shm_size - 1) || m->cfg.shm_size < PAGE) {
		free(m);
		return -EINVAL;
	}
	/* BAR 4 is a reservation: the bridge maps the front end's RAM into it */
	m->shm = mmap(NULL, m->cfg.shm_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		      -1, 0);
	if (m->shm == MAP_FAILED) {
		int rc = -errno;

		free(m);
		return rc;
	}
	pthread_mutex_init(&m->lock, NULL);
	for (unsigned int i = 0; i < VVM_NVECTORS; i++)
		m->msix[i] = -1;
	for (unsigned int i = 0; i < sizeof(m->uuid); i++)
		m->uuid[i] = (uint8_t)(0xa0 + i);
	build_config_space(m);
	reset_locked(m);
	m->st.resets = 0;
	*out = m;
	return 0;
}

static void msix_off_locked(struct vvm *m)
{
	for (unsigned int i = 0; i < m->nmsix; i++)
		m->msix[i] = -1;
	m->nmsix = 0;
}

void vvm_free(struct vvm *m)
{
	if (!m)
		return;
	msix_off_locked(m);
	munmap(m->shm, m->cfg.shm_size);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void vvm_set_hooks(struct vvm *m, const struct vvm_hooks *h)
{
	pthread_mutex_lock(&m->lock);
	m->hooks = *h;
	pthread_mutex_unlock(&m->lock);
}

int vvm_region_size(struct vvm *m, unsigned int index, uint64_t *size, uint32_t *flags)
{
	/* VFIO_REGION_INFO_FLAG_READ 1, _WRITE 2, _MMAP 4 */
	*size = 0;
	*flags = 0;
	if (index == REGION_CONFIG) {
		*size = CFG_SPACE_SIZE;
		*flags = 3;
	} else if (index == VVM_BAR_REGS) {
		*size = VVM_BAR2_SIZE;
		*flags = 3;
	} else if (index == VVM_BAR_SHM) {
		*size = m->cfg.shm_size;
		*flags = 7;
	} else if (index > REGION_CONFIG + 2) {
		return -EINVAL;
	}
	return 0;
}

/* ---- register images: read builds bytes, write diffs them ---- */

static void common_image(struct vvm *m, uint8_t *b)
{
	const struct vvm_queue *q = m->queue_select < VVM_NQUEUES ? &m->q[m->queue_select] : NULL;
	uint64_t offered = (1ull << VVM_F_VERSION_1) | (1ull << VVM_F_ACCESS_PLATFORM);

	memset(b, 0, VVM_COMMON_LEN);
	put32(b + 0x00, m->dfselect);
	put32(b + 0x04, m->dfselect < 2 ? (uint32_t)(offered >> (32 * m->dfselect)) : 0);
	put32(b + 0x08, m->gfselect);
	put32(b + 0x0c, m->gfselect < 2 ? (uint32_t)(m->guest_features >> (32 * m->gfselect)) : 0);
	put16(b + 0x10, m->msix_config);
	put16(b + 0x12, VVM_NQUEUES);
	b[0x14] = m->status;
	b[0x15] = m->cfg_generation;
	put16(b + 0x16, m->queue_select);
	if (!q)
		return;
	put16(b + 0x18, m->cfg.fault == VVM_FAULT_QSIZE0 ? 0 : q->size);
	put16(b + 0x1a, q->vector);
	put16(b + 0x1c, q->enabled);
	put16(b + 0x1e, m->queue_select);
	put64(b + 0x20, q->desc);
	put64(b + 0x28, q->driver);
	put64(b + 0x30, q->device);
}

static bool touches(uint64_t off, size_t len, uint64_t field, uint64_t flen)
{
	return off < field + flen && field < off + len;
}

static uint16_t checked_vector(struct vvm *m, uint16_t v)
{
	if (v == NO_VECTOR || v >= VVM_NVECTORS)
		return NO_VECTOR;
	(void)m;
	return v;
}

static void set_status_locked(struct vvm *m, uint8_t v)
{
	uint64_t offered = (1ull << VVM_F_VERSION_1) | (1ull << VVM_F_ACCESS_PLATFORM);

	if (v == 0) {
		reset_locked(m);
		return;
	}
	/* FEATURES_OK sticks only for a subset of the offer that has VERSION_1 */
	if ((v & VVM_S_FEATURES_OK) && !(m->status & VVM_S_FEATURES_OK) &&
	    ((m->guest_features & ~offered) || !(m->guest_features & (1ull << VVM_F_VERSION_1))))
		v &= (uint8_t)~VVM_S_FEATURES_OK;
	m->status = v | (m->status & VVM_S_NEEDS_RESET);
	wake_locked(m);
}

static void queue_write(struct vvm *m, const uint8_t *b, uint64_t off, size_t len)
{
	struct vvm_queue *q;

	if (m->queue_select >= VVM_NQUEUES)
		return;
	q = &m->q[m->queue_select];
	if (touches(off, len, 0x1a, 2)) {
		q->vector = m->cfg.fault == VVM_FAULT_VECTOR ? NO_VECTOR
							      : checked_vector(m, get16(b + 0x1a));
	}
	if (touches(off, len, 0x1c, 2) && get16(b + 0x1c) == 1 && !q->enabled) {
		q->enabled = true;
		q->last_avail = q->used_idx = 0;
	}
	if (q->enabled)
		return; /* size and addresses are fixed while enabled */
	if (touches(off, len, 0x18, 2)) {
		uint16_t s = get16(b + 0x18);

		if (s && s <= VVM_QUEUE_MAX && !(s & (s - 1)))
			q->size = s;
	}
	if (touches(off, len, 0x20, 8))
		q->desc = get64(b + 0x20);
	if (touches(off, len, 0x28, 8))
		q->driver = get64(b + 0x28);
	if (touches(off, len, 0x30, 8))
		q->device = get64(b + 0x30);
}

static void common_write(struct vvm *m, uint64_t off, const void *buf, size_t len)
{
	uint8_t b[VVM_COMMON_LEN];

	common_image(m, b);
	memcpy(b + off, buf, len);
	if (touches(off, len, 0x00, 4))
		m->dfselect = get32(b);
	if (touches(off, len, 0x08, 4))
		m->gfselect = get32(b + 0x08);
	if (touches(off, len, 0x0c, 4) && m->gfselect < 2 && !(m->status & VVM_S_FEATURES_OK)) {
		unsigned int sh = 32 * m->gfselect;

		m->guest_features &= ~(0xffffffffull << sh);
		m->guest_features |= (uint64_t)get32(b + 0x0c) << sh;
	}
	if (touches(off, len, 0x10, 2))
		m->msix_config = checked_vector(m, get16(b + 0x10));
	if (touches(off, len, 0x16, 2))
		m->queue_select = get16(b + 0x16);
	else
		queue_write(m, b, off, len);
	if (touches(off, len, 0x14, 1))
		set_status_locked(m, b[0x14]);
}

static void devcfg_image(struct vvm *m, uint8_t *b)
{
	memset(b, 0, VVM_DEVCFG_LEN);
	put32(b, m->dev_status);
	put32(b + 4, m->cfg.max_vhost_queues);
	memcpy(b + 8, m->uuid, sizeof(m->uuid));
}

static void devcfg_write(struct vvm *m, uint64_t off, const void *buf, size_t len)
{
	uint8_t b[VVM_DEVCFG_LEN];
	uint32_t was = m->dev_status;

	devcfg_image(m, b);
	memcpy(b + off, buf, len);
	if (!touches(off, len, 0, 4))
		return;
	/* only SLAVE_UP is the driver's; MASTER_UP stays the device's */
	m->dev_status = (m->dev_status & ~VVM_CFG_SLAVE_UP) | (get32(b) & VVM_CFG_SLAVE_UP);
	if (m->dev_status != was)
		wake_locked(m);
}

static void notification_image(struct vvm *m, uint8_t *b)
{
	memset(b, 0, VVM_NOTIFICATION_LEN);
	put16(b, m->notif_select);
	if (m->notif_select < m->cfg.max_vhost_queues)
		put16(b + 2, m->notif_vector[m->notif_select]);
	else
		put16(b + 2, NO_VECTOR);
}

static void notification_write(struct vvm *m, uint64_t off, const void *buf, size_t len)
{
	uint8_t b[VVM_NOTIFICATION_LEN];

	notification_image(m, b);
	memcpy(b + off, buf, len);
	if (touches(off, len, 0, 2))
		m->notif_select = get16(b);
	else if (touches(off, len, 2, 2) && m->notif_select < m->cfg.max_vhost_queues)
		m->notif_vector[m->notif_select] = checked_vector(m, get16(b + 2));
}

static void doorbell_write(struct vvm *m, uint64_t off)
{
	if (off % VVM_DOORBELL_MULT) {
		m->st.doorbells_lost++;
		return;
	}
	if (m->hooks.doorbell && m->hooks.doorbell(m->hooks.opaque, (unsigned int)(off / VVM_DOORBELL_MULT)))
		m->st.doorbells++;
	else
		m->st.doorbells_lost++;
}

/* Which BAR 2 window [@base, @base + @wlen) holds the access, as an offset in it. */
static bool window(uint64_t off, size_t len, uint64_t base, uint64_t wlen, uint64_t *rel)
{
	if (off < base || !in_range(off - base, len, wlen))
		return false;
	*rel = off - base;
	return true;
}

static void bar2_read(struct vvm *m, uint64_t off, uint8_t *out, size_t len)
{
	uint8_t b[VVM_COMMON_LEN];
	uint64_t rel;

	memset(out, 0, len);
	if (window(off, len, VVM_COMMON_OFF, VVM_COMMON_LEN, &rel)) {
		common_image(m, b);
		memcpy(out, b + rel, len);
	} else if (window(off, len, VVM_ISR_OFF, VVM_ISR_LEN, &rel)) {
		if (rel == 0) {
			out[0] = m->isr; /* reading ISR clears it */
			m->isr = 0;
		}
	} else if (window(off, len, VVM_DEVCFG_OFF, VVM_DEVCFG_LEN, &rel)) {
		devcfg_image(m, b);
		memcpy(out, b + rel, len);
	} else if (window(off, len, VVM_NOTIFICATION_OFF, VVM_NOTIFICATION_LEN, &rel)) {
		notification_image(m, b);
		memcpy(out, b + rel, len);
	}
}

static void bar2_write(struct vvm *m, uint64_t off, const uint8_t *in, size_t len)
{
	uint64_t rel;

	if (window(off, len, VVM_COMMON_OFF, VVM_COMMON_LEN, &rel))
		common_write(m, rel, in, len);
	else if (window(off, len, VVM_DEVCFG_OFF, VVM_DEVCFG_LEN, &rel))
		devcfg_write(m, rel, in, len);
	else if (window(off, len, VVM_NOTIFICATION_OFF, VVM_NOTIFICATION_LEN, &rel))
		notification_write(m, rel, in, len);
	else if (window(off, len, VVM_NOTIFY_OFF, VVM_NOTIFY_LEN, &rel))
		wake_locked(m); /* a queue notify: the bridge looks at both queues */
	else if (window(off, len, VVM_DOORBELL_OFF, VVM_DOORBELL_LEN, &rel))
		doorbell_write(m, rel);
}

static int region_check(struct vvm *m, unsigned int index, uint64_t off, size_t len)
{
	uint64_t size;
	uint32_t flags;

	if (len == 0 || vvm_region_size(m, index, &size, &flags) < 0 || !in_range(off, len, size))
		return -EINVAL;
	if (index != REGION_CONFIG && index != VVM_BAR_REGS)
		return -EINVAL; /* BAR 4 is only reached through its mapping */
	return 0;
}

int vvm_region_read(struct vvm *m, unsigned int index, uint64_t off, void *buf, size_t len)
{
	int rc = region_check(m, index, off, len);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	if (index == REGION_CONFIG)
		memcpy(buf, m->pcicfg + off, len);
	else
		bar2_read(m, off, buf, len);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vvm_region_write(struct vvm *m, unsigned int index, uint64_t off, const void *buf, size_t len)
{
	int rc = region_check(m, index, off, len);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&m->lock);
	if (index == REGION_CONFIG) {
		/* only the command register is writable (bus master, memory space) */
		for (size_t i = 0; i < len; i++) {
			if (off + i == 0x04 || off + i == 0x05)
				m->pcicfg[off + i] = ((const uint8_t *)buf)[i];
		}
	} else {
		bar2_write(m, off, buf, len);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int vvm_shm_ptr(struct vvm *m, uint64_t off, size_t len, void **out)
{
	if (len == 0 || !in_range(off, len, m->cfg.shm_size))
		return -EINVAL;
	*out = m->shm + off;
	return 0;
}

void vvm_shm_base(struct vvm *m, uint8_t **base, uint64_t *size)
{
	*base = m->shm;
	*size = m->cfg.shm_size;
}

int vvm_arm_fault(struct vvm *m, enum vvm_fault f, unsigned int at)
{
	if (f <= VVM_FAULT_NONE || f >= VVM_FAULT_CAP_OUTSIDE)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	m->cfg.fault = f;
	m->cfg.fault_at = at;
	m->fault_done = false;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- IOMMU ---- */

unsigned int vvm_iova_ranges(uint64_t starts[2], uint64_t ends[2])
{
	starts[0] = 0;
	ends[0] = MSI_START - 1;
	starts[1] = MSI_END + 1;
	ends[1] = IOVA_TOP;
	return 2;
}

static bool iova_usable(uint64_t iova, uint64_t size)
{
	uint64_t last;

	if (size == 0 || __builtin_add_overflow(iova, size - 1, &last) || last > IOVA_TOP)
		return false;
	return last < MSI_START || iova > MSI_END;
}

/*
 * dma_pages: the new map continues an existing one (or is continued by
 * it) in both IOVA and address, so one entry covers both and a ring or
 * buffer across the page boundary stays one pointer.
 */
static bool dma_extend_locked(struct vvm *m, uint8_t *vaddr, uint64_t iova, uint64_t size)
{
	for (unsigned int i = 0; i < m->ndma; i++) {
		struct vvm_dma *d = &m->dma[i];

		if (d->iova + d->size == iova && d->vaddr + d->size == vaddr) {
			d->size += size;
			return true;
		}
		if (iova + size == d->iova && vaddr + size == d->vaddr) {
			d->iova = iova;
			d->vaddr = vaddr;
			d->size += size;
			return true;
		}
	}
	return false;
}

/* dma_pages: [iova, iova + size) leaves every entry it overlaps, splitting one it is inside. */
static int dma_cut_locked(struct vvm *m, uint64_t iova, uint64_t size)
{
	uint64_t end = iova + size < iova ? UINT64_MAX : iova + size;

	unsigned int i = 0;

	while (i < m->ndma) {
		struct vvm_dma *d = &m->dma[i];
		uint64_t d_end = d->iova + d->size;

		if (end <= d->iova || d_end <= iova) {
			i++;
			continue;
		}
		if (iova > d->iova && end < d_end) {
			if (m->ndma == VVM_MAX_DMA_MAPS)
				return -ENOSPC;
			m->dma[m->ndma++] = (struct vvm_dma){ end, d_end - end, d->vaddr + (end - d->iova) };
			d->size = iova - d->iova;
		} else if (iova > d->iova) {
			d->size = iova - d->iova;
		} else if (end < d_end) {
			d->vaddr += end - d->iova;
			d->size = d_end - end;
			d->iova = end;
		} else {
			/* wholly inside: the last entry takes its slot, to be looked at next */
			m->dma[i] = m->dma[--m->ndma];
			continue;
		}
		i++;
	}
	return 0;
}

int vvm_dma_map(struct vvm *m, void *vaddr, uint64_t iova, uint64_t size)
{
	int rc = 0;

	/* the type1 rules VFIO.md lists: page aligned, inside the ranges, no overlap */
	if ((uintptr_t)vaddr % PAGE || iova % PAGE || size % PAGE || !iova_usable(iova, size))
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	for (unsigned int i = 0; i < m->ndma && rc == 0; i++) {
		if (iova < m->dma[i].iova + m->dma[i].size && m->dma[i].iova < iova + size)
			rc = -EEXIST;
	}
	if (rc == 0 && !(m->cfg.dma_pages && dma_extend_locked(m, vaddr, iova, size))) {
		if (m->ndma == VVM_MAX_DMA_MAPS)
			rc = -ENOSPC;
		else
			m->dma[m->ndma++] = (struct vvm_dma){ iova, size, vaddr };
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int vvm_dma_unmap(struct vvm *m, uint64_t iova, uint64_t size)
{
	unsigned int kept = 0;

	pthread_mutex_lock(&m->lock);
	if (m->cfg.dma_pages) {
		int rc = dma_cut_locked(m, iova, size);

		pthread_mutex_unlock(&m->lock);
		return rc;
	}
	/* like type1: every mapping wholly inside the range goes */
	for (unsigned int i = 0; i < m->ndma; i++) {
		const struct vvm_dma *d = &m->dma[i];
		bool inside = d->iova >= iova && d->iova - iova <= size && d->size <= size - (d->iova - iova);

		if (!inside)
			m->dma[kept++] = *d;
	}
	m->ndma = kept;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* The device's only way into driver memory; a miss is a DMA fault. */
static void *dma_ptr(struct vvm *m, uint64_t iova, uint64_t len)
{
	for (unsigned int i = 0; i < m->ndma; i++) {
		const struct vvm_dma *d = &m->dma[i];

		if (iova >= d->iova && in_range(iova - d->iova, len, d->size))
			return d->vaddr + (iova - d->iova);
	}
	m->st.dma_faults++;
	/* the IOMMU's fault line: tests look for it */
	fprintf(stderr, "vvu model: DMA fault: 0x%llx + 0x%llx is not mapped\n", (unsigned long long)iova,
		(unsigned long long)len);
	return NULL;
}

/* ---- MSI-X ---- */

int vvm_set_msix(struct vvm *m, const int *efds, unsigned int n)
{
	if (n > VVM_NVECTORS)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	msix_off_locked(m);
	for (unsigned int i = 0; i < n; i++)
		m->msix[i] = efds[i] < 0 ? -1 : efds[i];
	m->nmsix = n;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void vvm_flr(struct vvm *m)
{
	pthread_mutex_lock(&m->lock);
	reset_locked(m);
	pthread_mutex_unlock(&m->lock);
}

bool vvm_driver_up(struct vvm *m)
{
	bool up;

	pthread_mutex_lock(&m->lock);
	up = (m->status & VVM_S_DRIVER_OK) && !(m->status & VVM_S_NEEDS_RESET) &&
	     (m->dev_status & VVM_CFG_SLAVE_UP);
	pthread_mutex_unlock(&m->lock);
	return up;
}

uint32_t vvm_max_vhost_queues(struct vvm *m)
{
	return m->cfg.max_vhost_queues;
}

unsigned long vvm_generation(struct vvm *m)
{
	unsigned long g;

	pthread_mutex_lock(&m->lock);
	g = m->generation;
	pthread_mutex_unlock(&m->lock);
	return g;
}

int vvm_notification(struct vvm *m, unsigned int index)
{
	int rc = -EINVAL;

	pthread_mutex_lock(&m->lock);
	if (index < m->cfg.max_vhost_queues) {
		raise_locked(m, m->notif_vector[index]);
		m->st.notifications++;
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/* ---- virtqueues ---- */

struct ring_view {
	struct vvm_queue *q;
	uint8_t *desc, *avail, *used;
};

static int ring_view(struct vvm *m, unsigned int idx, struct ring_view *v)
{
	struct vvm_queue *q = &m->q[idx];

	if (!(m->status & VVM_S_DRIVER_OK) || (m->status & VVM_S_NEEDS_RESET) || !q->enabled)
		return -ENODEV;
	v->q = q;
	v->desc = dma_ptr(m, q->desc, 16ull * q->size);
	v->avail = dma_ptr(m, q->driver, 4 + 2ull * q->size);
	v->used = dma_ptr(m, q->device, 4 + 8ull * q->size);
	if (!v->desc || !v->avail || !v->used)
		return -EIO;
	return 0;
}

/* A bad ring is the driver's fault: the device stops and asks for a reset. */
static int ring_fault(struct vvm *m)
{
	m->st.ring_faults++;
	fprintf(stderr, "vvu model: ring fault: the device needs a reset\n");
	m->status |= VVM_S_NEEDS_RESET;
	return -EIO;
}

/* The next available head and its descriptor. Return: 1, 0 (none), or -EIO. */
static int next_avail(struct vvm *m, struct ring_view *v, uint16_t *head, uint64_t *addr,
		      uint32_t *len, uint16_t *flags)
{
	uint16_t aidx = __atomic_load_n((uint16_t *)(v->avail + 2), __ATOMIC_ACQUIRE);
	const uint8_t *d;

	aidx = le16toh(aidx);
	if (aidx == v->q->last_avail)
		return 0;
	if ((uint16_t)(aidx - v->q->last_avail) > v->q->size)
		return ring_fault(m);
	*head = get16(v->avail + 4 + 2u * (v->q->last_avail % v->q->size));
	if (*head >= v->q->size)
		return ring_fault(m);
	d = v->desc + 16u * *head;
	*addr = get64(d);
	*len = get32(d + 8);
	*flags = get16(d + 12);
	return 1;
}

static void push_used(struct vvm *m, struct ring_view *v, uint32_t id, uint32_t len, uint16_t vector)
{
	uint8_t *e = v->used + 4 + 8u * (v->q->used_idx % v->q->size);

	put32(e, id);
	put32(e + 4, len);
	v->q->last_avail++;
	v->q->used_idx++;
	__atomic_store_n((uint16_t *)(v->used + 2), htole16(v->q->used_idx), __ATOMIC_RELEASE);
	raise_locked(m, vector);
}

static bool is_ring_request(uint32_t req)
{
	return (req >= VU_REQ_SET_VRING_NUM && req <= VU_REQ_SET_VRING_ERR) ||
	       req == VU_REQ_SET_VRING_ENABLE;
}

/*
 * The fault due on this message, if any: message faults fire once per
 * model, at the configured message or (ring index, layout) at the first
 * message they can apply to from there on.
 */
static enum vvm_fault due_fault(struct vvm *m, const uint8_t *msg, size_t len)
{
	enum vvm_fault f = m->cfg.fault;
	uint32_t req = len >= 12 ? get32(msg) : 0;

	if (m->fault_done || f == VVM_FAULT_NONE || f >= VVM_FAULT_CAP_OUTSIDE || len == 0 ||
	    m->rx_seen < m->cfg.fault_at + 1)
		return VVM_FAULT_NONE;
	if (f == VVM_FAULT_VRING_INDEX && !(is_ring_request(req) && len >= 16))
		return VVM_FAULT_NONE;
	if (f == VVM_FAULT_BAD_LAYOUT && !(req == VU_REQ_SET_MEM_TABLE && len >= 12 + 8 + 32))
		return VVM_FAULT_NONE;
	m->fault_done = true;
	m->st.faults_injected++;
	fprintf(stderr, "vvu model: injecting fault %s into rx message %lu\n", vvm_fault_name(f),
		m->rx_seen);
	return f;
}

/* Rewrite @msg in place (it has room for VVM_MAX_MSG + 16 bytes) for fault @f. */
static size_t apply_fault(struct vvm *m, enum vvm_fault f, uint8_t *msg, size_t len, uint32_t buflen)
{
	switch (f) {
	case VVM_FAULT_OVERSIZE:
		put32(msg + 8, buflen + 4);
		return (size_t)buflen + 16;
	case VVM_FAULT_TRUNCATED:
		return 7;
	case VVM_FAULT_SIZE_MISMATCH:
		put32(msg + 8, get32(msg + 8) + 8);
		return len;
	case VVM_FAULT_UNKNOWN_REQ:
		put32(msg, 0x7fff);
		return len;
	case VVM_FAULT_VRING_INDEX:
		/* KICK/CALL/ERR carry the index in bits 0-7 of a u64, the rest in a u32 */
		put32(msg + 12, (get32(msg + 12) & ~0xffu) | 0xfe);
		return len;
	case VVM_FAULT_BAD_LAYOUT: {
		uint32_t n = get32(msg + 12);

		/* past BAR 4 whatever came before it, even after a proxy merged the table into one region */
		if (n >= 1 && n <= VU_MAX_MEM_REGIONS && len >= 20 + 32ull * n)
			put64(msg + 20 + 32 * (n - 1) + 8, m->cfg.shm_size + PAGE);
		return len;
	}
	default:
		return len;
	}
}

/* Copy @n bytes to the driver's buffer at @addr (DMA-checked). */
static int dma_write(struct vvm *m, uint64_t addr, const void *src, size_t n)
{
	void *dst;

	if (n == 0)
		return 0;
	dst = dma_ptr(m, addr, n);
	if (!dst)
		return -EIO;
	memcpy(dst, src, n);
	return 0;
}

static int rx_deliver_locked(struct vvm *m, const void *msg, size_t len)
{
	uint8_t tmp[VVM_MAX_MSG + 32];
	struct ring_view v;
	uint64_t addr;
	uint32_t blen, used_len, used_id;
	uint16_t head, flags;
	enum vvm_fault f;
	int rc;

	if (len > VVM_MAX_MSG)
		return -EMSGSIZE;
	rc = ring_view(m, 0, &v);
	if (rc < 0)
		return rc == -EIO ? ring_fault(m) : rc;
	rc = next_avail(m, &v, &head, &addr, &blen, &flags);
	if (rc <= 0)
		return rc == 0 ? -EAGAIN : rc;
	if (!(flags & VRING_DESC_F_WRITE) || (flags & VRING_DESC_F_NEXT))
		return ring_fault(m);
	if (len) {
		memcpy(tmp, msg, len);
		m->rx_seen++;
	}
	f = due_fault(m, tmp, len);
	if (f == VVM_FAULT_RESET) {
		uint16_t vector = v.q->vector;

		/* the device goes away under the driver, as after a surprise FLR; the interrupt wakes it */
		reset_locked(m);
		raise_locked(m, vector);
		return 0;
	}
	len = apply_fault(m, f, tmp, len, blen);
	used_len = (uint32_t)len;
	if (len > blen) {
		/* the draft: a message that does not fit needs a device reset */
		used_len = blen;
		m->status |= VVM_S_NEEDS_RESET;
	}
	if (dma_write(m, addr, tmp, used_len) < 0)
		return ring_fault(m);
	used_id = f == VVM_FAULT_USED_ID ? v.q->size + 3u : head;
	if (f == VVM_FAULT_USED_LEN)
		used_len = blen + 64;
	push_used(m, &v, used_id, used_len, v.q->vector);
	if (len)
		m->st.rx_msgs++;
	else
		m->st.rx_disconnects++;
	return 0;
}

int vvm_rx_deliver(struct vvm *m, const void *msg, size_t len)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = rx_deliver_locked(m, msg, len);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int tx_take_locked(struct vvm *m, void *buf, size_t cap)
{
	struct ring_view v;
	uint64_t addr;
	uint32_t blen;
	uint16_t head, flags;
	const void *src;
	int rc = ring_view(m, 1, &v);

	if (rc < 0)
		return rc == -EIO ? ring_fault(m) : rc;
	rc = next_avail(m, &v, &head, &addr, &blen, &flags);
	if (rc <= 0)
		return rc;
	if ((flags & VRING_DESC_F_WRITE) || (flags & VRING_DESC_F_NEXT))
		return ring_fault(m);
	src = blen ? dma_ptr(m, addr, blen) : NULL;
	if (blen && !src)
		return ring_fault(m);
	rc = blen > cap ? -EMSGSIZE : (int)blen;
	if (rc > 0)
		memcpy(buf, src, blen);
	push_used(m, &v, head, 0, v.q->vector);
	m->st.tx_msgs++;
	return rc;
}

int vvm_tx_take(struct vvm *m, void *buf, size_t cap)
{
	int rc;

	pthread_mutex_lock(&m->lock);
	rc = tx_take_locked(m, buf, cap);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void vvm_count_backend_drop(struct vvm *m)
{
	pthread_mutex_lock(&m->lock);
	m->st.backend_dropped++;
	pthread_mutex_unlock(&m->lock);
}

void vvm_stats(struct vvm *m, struct vvm_stats *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
}
