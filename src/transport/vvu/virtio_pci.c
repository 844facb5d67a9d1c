// SPDX-License-Identifier: MIT
/*
 * User-space virtio 1.x PCI driver over struct vfio_dev (see virtio_pci.h).
 *
 * The device is hostile: config space, capability fields, register values
 * and used-ring entries are all checked before they steer an access. Every
 * register access goes through vpci_loc_read()/vpci_loc_write(), which
 * bound it by the capability's window, itself bounded by its BAR at probe.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/pci_regs.h>
/* the kernel's header has its own struct vfio_iova_range, clashing with vfio.h's */
#define vfio_iova_range kernel_vfio_iova_range
#include <linux/vfio.h>
#undef vfio_iova_range
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "transport/vvu/virtio_pci.h"
#include "util/log.h"

#define PCI_CFG_SIZE 256u
#define PCI_CAP_MIN 0x40u
#define VENDOR_VIRTIO 0x1af4u
#define DEVICE_MODERN_FIRST 0x1040u
#define DEVICE_MODERN_LAST 0x107fu
#define VIRTIO_CAP_LEN 16u          /* struct virtio_pci_cap */
#define VIRTIO_CAP64_LEN 24u        /* struct virtio_pci_cap64 */
#define VIRTIO_CAP_VENDOR_CFG 9u     /* vendor data in config space only */
#define COMMON_CFG_MIN 56u          /* up to and including queue_used_hi */
#define MAX_QUEUE_SIZE 32768u       /* split ring limit */
#define MAX_BUF_SIZE (1u << 20)
#define RESET_POLL_NS 10000000L     /* 10 ms */
#define RESET_POLLS 100             /* 1 s */
#define IOVA_HIGH (1ull << 32)
#define MSI_WIN_FIRST 0xfee00000ull
#define MSI_WIN_LAST 0xfeefffffull
/* descriptor states in next_free[] besides "free, next is N" */
#define ST_INFLIGHT 0xffffu         /* posted, the device owns it */
#define ST_HELD 0xfffeu             /* completed, the caller reads it */
#define RING_ALIGN 64u

static const char *vname(const struct vpci *p)
{
	return p->vf ? p->vf->name : "?";
}

/* ---- config space -------------------------------------------------------- */

static int cfg_read(struct vpci *p, uint32_t off, void *buf, size_t len)
{
	if (off > PCI_CFG_SIZE || len > PCI_CFG_SIZE - off)
		return -EINVAL;
	return p->vf->ops->region_read(p->vf, VFIO_PCI_CONFIG_REGION_INDEX, off, buf, len);
}

static int cfg_read8(struct vpci *p, uint32_t off, uint8_t *v)
{
	return cfg_read(p, off, v, 1);
}

static int cfg_read16(struct vpci *p, uint32_t off, uint16_t *v)
{
	uint16_t le = 0;
	int r = cfg_read(p, off, &le, 2);

	*v = le16toh(le);
	return r;
}

static int cfg_read32(struct vpci *p, uint32_t off, uint32_t *v)
{
	uint32_t le = 0;
	int r = cfg_read(p, off, &le, 4);

	*v = le32toh(le);
	return r;
}

static int cfg_write16(struct vpci *p, uint32_t off, uint16_t v)
{
	uint16_t le = htole16(v);

	return p->vf->ops->region_write(p->vf, VFIO_PCI_CONFIG_REGION_INDEX, off, &le, 2);
}

/* ---- bounded register access --------------------------------------------- */

int vpci_loc_read(struct vpci *p, const struct vpci_loc *loc, uint64_t off, void *buf, size_t len)
{
	if (!loc->present || off > loc->len || len > loc->len - off)
		return -ERANGE;
	return p->vf->ops->region_read(p->vf, loc->bar, loc->off + off, buf, len);
}

int vpci_loc_write(struct vpci *p, const struct vpci_loc *loc, uint64_t off, const void *buf,
		   size_t len)
{
	if (!loc->present || off > loc->len || len > loc->len - off)
		return -ERANGE;
	return p->vf->ops->region_write(p->vf, loc->bar, loc->off + off, buf, len);
}

static int com_read8(struct vpci *p, uint64_t off, uint8_t *v)
{
	return vpci_loc_read(p, &p->common, off, v, 1);
}

static int com_read16(struct vpci *p, uint64_t off, uint16_t *v)
{
	uint16_t le = 0;
	int r = vpci_loc_read(p, &p->common, off, &le, 2);

	*v = le16toh(le);
	return r;
}

static int com_read32(struct vpci *p, uint64_t off, uint32_t *v)
{
	uint32_t le = 0;
	int r = vpci_loc_read(p, &p->common, off, &le, 4);

	*v = le32toh(le);
	return r;
}

static int com_write8(struct vpci *p, uint64_t off, uint8_t v)
{
	return vpci_loc_write(p, &p->common, off, &v, 1);
}

static int com_write16(struct vpci *p, uint64_t off, uint16_t v)
{
	uint16_t le = htole16(v);

	return vpci_loc_write(p, &p->common, off, &le, 2);
}

static int com_write32(struct vpci *p, uint64_t off, uint32_t v)
{
	uint32_t le = htole32(v);

	return vpci_loc_write(p, &p->common, off, &le, 4);
}

/* Devices need not take 64-bit accesses to common config (VFIO.md). */
static int com_write64(struct vpci *p, uint64_t off, uint64_t v)
{
	int r = com_write32(p, off, (uint32_t)v);

	return r ? r : com_write32(p, off + 4, (uint32_t)(v >> 32));
}

/* ---- probe ----------------------------------------------------------------- */

/* The capability's window must lie inside its BAR. */
static int loc_check(struct vpci *p, struct vpci_loc *loc, uint8_t cfg_type)
{
	struct vfio_region_desc rd;
	int r;

	if (loc->bar > VFIO_PCI_BAR5_REGION_INDEX) {
		log_err("vfio %s: virtio capability type %u names BAR %u", vname(p), cfg_type,
			loc->bar);
		return -ENODEV;
	}
	r = p->vf->ops->region_info(p->vf, loc->bar, &rd);
	if (r < 0 || loc->off > rd.size || loc->len > rd.size - loc->off) {
		log_err("vfio %s: virtio capability type %u (BAR %u, 0x%llx + 0x%llx) lies outside its BAR (size 0x%llx)",
			vname(p), cfg_type, loc->bar, (unsigned long long)loc->off,
			(unsigned long long)loc->len, r < 0 ? 0ull : (unsigned long long)rd.size);
		return -ENODEV;
	}
	return 0;
}

static int read_vendor_cap(struct vpci *p, uint8_t pos, uint8_t cap_len, struct vpci_loc *loc,
			   uint8_t *cfg_type, uint8_t *id)
{
	uint32_t off32, len32, hi;
	int r;

	if (cap_len < VIRTIO_CAP_LEN || cap_len > PCI_CFG_SIZE - pos)
		return -ENODEV;
	r = cfg_read8(p, pos + 3, cfg_type);
	r = r ? r : cfg_read8(p, pos + 4, &loc->bar);
	r = r ? r : cfg_read8(p, pos + 5, id);
	r = r ? r : cfg_read32(p, pos + 8, &off32);
	r = r ? r : cfg_read32(p, pos + 12, &len32);
	if (r)
		return r;
	loc->off = off32;
	loc->len = len32;
	/* shared-memory caps are the 64-bit form: offset_hi, length_hi follow */
	if (*cfg_type == VIRTIO_PCI_CAP_SHARED_MEMORY_CFG && cap_len >= VIRTIO_CAP64_LEN) {
		r = cfg_read32(p, pos + 16, &hi);
		loc->off |= (uint64_t)hi << 32;
		r = r ? r : cfg_read32(p, pos + 20, &hi);
		loc->len |= (uint64_t)hi << 32;
		if (r)
			return r;
	}
	loc->present = true;
	return 0;
}

static int take_vendor_cap(struct vpci *p, uint8_t pos)
{
	struct vpci_loc loc = { 0 }, *std = NULL;
	uint8_t cap_len, cfg_type, id;
	int r;

	r = cfg_read8(p, pos + 2, &cap_len);
	r = r ? r : read_vendor_cap(p, pos, cap_len, &loc, &cfg_type, &id);
	if (r) {
		log_err("vfio %s: malformed virtio capability at 0x%x", vname(p), pos);
		return -ENODEV;
	}
	switch (cfg_type) {
	case VIRTIO_PCI_CAP_COMMON_CFG: std = &p->common; break;
	case VIRTIO_PCI_CAP_NOTIFY_CFG: std = &p->notify; break;
	case VIRTIO_PCI_CAP_ISR_CFG: std = &p->isr; break;
	case VIRTIO_PCI_CAP_DEVICE_CFG: std = &p->device; break;
	case VIRTIO_PCI_CAP_PCI_CFG: return 0;  /* an access window we do not use */
	case VIRTIO_CAP_VENDOR_CFG: return 0;   /* no BAR structure */
	default: break;
	}
	/* the spec has drivers use the first capability of each type */
	if (std && std->present)
		return 0;
	if (loc_check(p, &loc, cfg_type))
		return -ENODEV;
	if (std) {
		if (cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			if (cap_len < VIRTIO_CAP_LEN + 4 || cfg_read32(p, pos + 16, &p->notify_mult)) {
				log_err("vfio %s: notify capability without its multiplier", vname(p));
				return -ENODEV;
			}
		}
		*std = loc;
		return 0;
	}
	if (p->nvcaps == VPCI_MAX_VENDOR_CAPS) {
		log_debug("vfio %s: vendor capability type %u ignored: table full", vname(p), cfg_type);
		return 0;
	}
	p->vcaps[p->nvcaps++] = (struct vpci_vendor_cap){
		.cfg_type = cfg_type, .id = id, .cap_off = pos, .cap_len = cap_len, .loc = loc,
	};
	return 0;
}

static int take_msix_cap(struct vpci *p, uint8_t pos)
{
	uint16_t ctrl;

	if (pos > PCI_CFG_SIZE - 4 || cfg_read16(p, pos + PCI_MSIX_FLAGS, &ctrl)) {
		log_err("vfio %s: unreadable MSI-X capability at 0x%x", vname(p), pos);
		return -ENODEV;
	}
	p->msix_table_size = (ctrl & PCI_MSIX_FLAGS_QSIZE) + 1;
	return 0;
}

/* Walk the capability list; a pointer out of range or a loop is an error. */
static int walk_caps(struct vpci *p)
{
	uint8_t seen[PCI_CFG_SIZE / 4] = { 0 };
	uint8_t pos, id;
	uint16_t status;
	int r;

	if (cfg_read16(p, PCI_STATUS, &status) || !(status & PCI_STATUS_CAP_LIST)) {
		log_err("vfio %s: no PCI capability list", vname(p));
		return -ENODEV;
	}
	if (cfg_read8(p, PCI_CAPABILITY_LIST, &pos))
		return -ENODEV;
	pos &= 0xfc;
	while (pos) {
		if (pos < PCI_CAP_MIN || pos > PCI_CFG_SIZE - 4 || seen[pos / 4]) {
			log_err("vfio %s: PCI capability list %s at 0x%x", vname(p),
				seen[pos / 4] ? "loops" : "points outside config space", pos);
			return -ENODEV;
		}
		seen[pos / 4] = 1;
		if (cfg_read8(p, pos, &id))
			return -ENODEV;
		r = 0;
		if (id == PCI_CAP_ID_VNDR)
			r = take_vendor_cap(p, pos);
		else if (id == PCI_CAP_ID_MSIX)
			r = take_msix_cap(p, pos);
		if (r || cfg_read8(p, pos + 1, &pos))
			return -ENODEV;
		pos &= 0xfc;
	}
	return 0;
}

static int check_structs(struct vpci *p)
{
	const char *missing = !p->common.present ? "common config" :
			      !p->notify.present ? "notify" :
			      !p->device.present ? "device config" :
			      !p->msix_table_size ? "MSI-X" : NULL;

	if (missing) {
		log_err("vfio %s: no %s capability: not a usable modern virtio device", vname(p),
			missing);
		return -ENODEV;
	}
	if (p->common.len < COMMON_CFG_MIN) {
		log_err("vfio %s: common config is %llu bytes, less than %u", vname(p),
			(unsigned long long)p->common.len, COMMON_CFG_MIN);
		return -ENODEV;
	}
	return 0;
}

/* VFIO.md: bus mastering is off after the bind, and the device then does nothing. */
static int enable_bus_master(struct vpci *p)
{
	uint16_t cmd;

	if (cfg_read16(p, PCI_COMMAND, &cmd))
		goto fail;
	cmd |= PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (cfg_write16(p, PCI_COMMAND, cmd) || cfg_read16(p, PCI_COMMAND, &cmd))
		goto fail;
	if ((cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !=
	    (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
		goto fail;
	return 0;
fail:
	log_err("vfio %s: cannot turn on memory decoding and bus mastering", vname(p));
	return -EIO;
}

int vpci_probe(struct vpci *p, struct vfio_dev *vf)
{
	memset(p, 0, sizeof(*p));
	p->vf = vf;
	if (cfg_read16(p, PCI_VENDOR_ID, &p->vendor_id) ||
	    cfg_read16(p, PCI_DEVICE_ID, &p->device_id) ||
	    cfg_read16(p, PCI_SUBSYSTEM_ID, &p->subsys_device_id)) {
		log_err("vfio %s: cannot read PCI config space", vname(p));
		return -ENODEV;
	}
	if (p->vendor_id != VENDOR_VIRTIO || p->device_id < DEVICE_MODERN_FIRST ||
	    p->device_id > DEVICE_MODERN_LAST) {
		log_err("vfio %s: PCI id %04x:%04x is not a modern virtio device", vname(p),
			p->vendor_id, p->device_id);
		return -ENODEV;
	}
	if (walk_caps(p) || check_structs(p))
		return -ENODEV;
	return enable_bus_master(p) ? -ENODEV : 0;
}

/* ---- status, features ---------------------------------------------------- */

int vpci_status(struct vpci *p, uint8_t *status)
{
	return com_read8(p, VIRTIO_PCI_COMMON_STATUS, status);
}

static int status_or(struct vpci *p, uint8_t bits)
{
	uint8_t s;
	int r = vpci_status(p, &s);

	return r ? r : com_write8(p, VIRTIO_PCI_COMMON_STATUS, s | bits);
}

int vpci_reset(struct vpci *p)
{
	const struct timespec step = { 0, RESET_POLL_NS };
	uint8_t s = 0xff;
	int i, r;

	r = com_write8(p, VIRTIO_PCI_COMMON_STATUS, 0);
	for (i = 0; !r && i <= RESET_POLLS; i++) {
		r = vpci_status(p, &s);
		if (r || s == 0)
			break;
		nanosleep(&step, NULL);
	}
	if (r) {
		log_err("vfio %s: device status unreachable: %s", vname(p), strerror(-r));
		return r;
	}
	if (s != 0) {
		log_err("vfio %s: device status still 0x%x 1 s after reset", vname(p), s);
		return -ETIMEDOUT;
	}
	return 0;
}

static int read_features(struct vpci *p, uint64_t *f)
{
	uint32_t lo = 0, hi = 0;
	int r = com_write32(p, VIRTIO_PCI_COMMON_DFSELECT, 0);

	r = r ? r : com_read32(p, VIRTIO_PCI_COMMON_DF, &lo);
	r = r ? r : com_write32(p, VIRTIO_PCI_COMMON_DFSELECT, 1);
	r = r ? r : com_read32(p, VIRTIO_PCI_COMMON_DF, &hi);
	*f = (uint64_t)hi << 32 | lo;
	return r;
}

static int write_features(struct vpci *p, uint64_t f)
{
	int r = com_write32(p, VIRTIO_PCI_COMMON_GFSELECT, 0);

	r = r ? r : com_write32(p, VIRTIO_PCI_COMMON_GF, (uint32_t)f);
	r = r ? r : com_write32(p, VIRTIO_PCI_COMMON_GFSELECT, 1);
	return r ? r : com_write32(p, VIRTIO_PCI_COMMON_GF, (uint32_t)(f >> 32));
}

int vpci_negotiate(struct vpci *p, uint64_t required, uint64_t wanted)
{
	const uint64_t platform = 1ull << VIRTIO_F_ACCESS_PLATFORM;
	uint8_t s;
	int r;

	required |= 1ull << VIRTIO_F_VERSION_1;
	r = status_or(p, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	r = r ? r : status_or(p, VIRTIO_CONFIG_S_DRIVER);
	r = r ? r : read_features(p, &p->device_features);
	if (r)
		goto io;
	if ((p->device_features & required) != required) {
		log_err("vfio %s: device lacks required features 0x%llx", vname(p),
			(unsigned long long)(required & ~p->device_features));
		status_or(p, VIRTIO_CONFIG_S_FAILED);
		return -ENOTSUP;
	}
	p->features = required | (wanted & p->device_features) | (platform & p->device_features);
	r = write_features(p, p->features);
	r = r ? r : status_or(p, VIRTIO_CONFIG_S_FEATURES_OK);
	r = r ? r : vpci_status(p, &s);
	if (r)
		goto io;
	if (!(s & VIRTIO_CONFIG_S_FEATURES_OK)) {
		log_err("vfio %s: device refused features 0x%llx", vname(p),
			(unsigned long long)p->features);
		status_or(p, VIRTIO_CONFIG_S_FAILED);
		return -EIO;
	}
	return 0;
io:
	log_err("vfio %s: feature negotiation: %s", vname(p), strerror(-r));
	return -EIO;
}

/* ---- MSI-X vectors ------------------------------------------------------- */

static void vectors_free(struct vpci *p)
{
	unsigned int i;

	if (p->nvectors)
		p->vf->ops->set_msix(p->vf, NULL, 0);
	for (i = 0; i < p->nvectors; i++)
		close(p->vector_fds[i]);
	free(p->vector_fds);
	p->vector_fds = NULL;
	p->nvectors = 0;
}

int vpci_setup_vectors(struct vpci *p, unsigned int n)
{
	unsigned int i;
	int r;

	vectors_free(p);
	if (n == 0 || n > p->msix_table_size) {
		log_err("vfio %s: %u MSI-X vectors wanted, device has %u", vname(p), n,
			p->msix_table_size);
		return -ENOSPC;
	}
	p->vector_fds = calloc(n, sizeof(*p->vector_fds));
	if (!p->vector_fds)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		p->vector_fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->vector_fds[i] < 0) {
			r = -errno;
			goto fail;
		}
		p->nvectors = i + 1;
	}
	r = p->vf->ops->set_msix(p->vf, p->vector_fds, n);
	if (r == 0)
		r = com_write16(p, VIRTIO_PCI_COMMON_MSIX, VPCI_NO_VECTOR);
	if (r == 0)
		return 0;
fail:
	log_err("vfio %s: MSI-X setup: %s", vname(p), strerror(-r));
	vectors_free(p);
	return r;
}

int vpci_vector_fd(const struct vpci *p, unsigned int v)
{
	return v < p->nvectors ? p->vector_fds[v] : -1;
}

/* ---- IOVA space ---------------------------------------------------------- */

static int iova_load(struct vpci *p)
{
	int n;

	if (p->niova)
		return 0;
	n = p->vf->ops->iova_ranges(p->vf, p->iova, VFIO_DEV_MAX_IOVA_RANGES);
	if (n <= 0 || (unsigned int)n > VFIO_DEV_MAX_IOVA_RANGES) {
		log_err("vfio %s: no usable IOVA ranges", vname(p));
		return n < 0 ? n : -ENOSPC;
	}
	p->niova = (unsigned int)n;
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* First @align-aligned start >= @floor in @rg where @len fits, off the MSI window. */
static bool iova_fit(const struct vfio_iova_range *rg, uint64_t floor, uint64_t len,
		     uint64_t align, uint64_t *out)
{
	uint64_t s = floor > rg->start ? floor : rg->start;

	if (s > UINT64_MAX - align)
		return false;
	s = align_up(s, align);
	if (s <= MSI_WIN_LAST && s + len - 1 >= MSI_WIN_FIRST && s + len - 1 >= s)
		s = align_up(MSI_WIN_LAST + 1, align);
	if (s < rg->start || s > rg->end || len - 1 > rg->end - s)
		return false;
	*out = s;
	return true;
}

/*
 * Above 4 GiB when the ranges allow it (VFIO.md: past guest RAM, so a
 * mapping bug cannot work by accident), else anywhere in them.
 */
static int iova_alloc(struct vpci *p, uint64_t len, uint64_t align, uint64_t *out)
{
	uint64_t floors[2] = { IOVA_HIGH, 0 };
	unsigned int f, i;
	int r = iova_load(p);

	if (r)
		return r;
	for (f = 0; f < 2; f++) {
		uint64_t floor = floors[f] > p->iova_next ? floors[f] : p->iova_next;

		for (i = 0; i < p->niova; i++) {
			if (p->iova[i].start > p->iova[i].end)
				continue;
			if (iova_fit(&p->iova[i], floor, len, align, out)) {
				p->iova_next = *out + len;
				return 0;
			}
		}
	}
	log_err("vfio %s: no room for 0x%llx bytes of IOVA", vname(p), (unsigned long long)len);
	return -ENOSPC;
}

/* ---- queues -------------------------------------------------------------- */

static uint64_t dma_align(struct vpci *p)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE), sizes = 0;

	/* the IOMMU's smallest page, if larger than ours */
	if (p->vf->ops->iova_pgsizes(p->vf, &sizes) == 0 && sizes) {
		uint64_t min = sizes & -sizes;

		if (min > pg && min <= (1ull << 30))
			pg = min;
	}
	return pg;
}

struct ring_layout {
	size_t desc, avail, used, bufs, total;
};

static int ring_layout(uint16_t size, uint32_t buf_size, uint64_t align, struct ring_layout *l)
{
	uint64_t total;

	l->desc = 0;
	l->avail = align_up(16ull * size, RING_ALIGN);
	l->used = align_up(l->avail + 6 + 2ull * size, RING_ALIGN);
	l->bufs = align_up(l->used + 6 + 8ull * size, align);
	/* size <= 32768, buf_size <= 1 MiB: no overflow in 64 bits */
	total = align_up(l->bufs + (uint64_t)size * buf_size, align);
	if (total > SIZE_MAX)
		return -ENOMEM;
	l->total = (size_t)total;
	return 0;
}

static volatile struct vring_desc *q_desc(struct vpci_queue *q, uint16_t i)
{
	return (volatile struct vring_desc *)q->desc + i;
}

static volatile struct vring_avail *q_avail(struct vpci_queue *q)
{
	return (volatile struct vring_avail *)q->avail;
}

static volatile struct vring_used *q_used(struct vpci_queue *q)
{
	return (volatile struct vring_used *)q->used;
}

/* Rewritten on every post: the device could have scribbled on it. */
static void desc_fill(struct vpci_queue *q, uint16_t i, uint32_t len)
{
	volatile struct vring_desc *d = q_desc(q, i);

	d->addr = htole64(q->iova + (uint64_t)((uint8_t *)q->bufs - (uint8_t *)q->mem) +
			  (uint64_t)i * q->buf_size);
	d->len = htole32(len);
	d->flags = htole16(q->device_writes ? VRING_DESC_F_WRITE : 0);
	d->next = 0;
}

static void queue_free(struct vpci *p, struct vpci_queue *q)
{
	if (q->size && p->vf)
		p->vf->ops->dma_unmap(p->vf, q->iova, q->mem_len);
	if (q->mem)
		munmap(q->mem, q->mem_len);
	free(q->next_free);
	memset(q, 0, sizeof(*q));
	q->vector = VPCI_NO_VECTOR;
}

static int queue_alloc(struct vpci *p, struct vpci_queue *q, uint16_t size, uint32_t buf_size)
{
	uint64_t align = dma_align(p), iova;
	struct ring_layout l;
	int r;

	if (ring_layout(size, buf_size, align, &l))
		return -ENOMEM;
	q->next_free = calloc(size, sizeof(*q->next_free));
	q->mem = mmap(NULL, l.total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (q->mem == MAP_FAILED)
		q->mem = NULL;
	if (!q->next_free || !q->mem)
		return -ENOMEM;
	q->mem_len = l.total;
	r = iova_alloc(p, l.total, align, &iova);
	if (r)
		return r;
	r = p->vf->ops->dma_map(p->vf, q->mem, iova, l.total);
	if (r) {
		log_err("vfio %s: DMA map of 0x%zx bytes at IOVA 0x%llx: %s", vname(p), l.total,
			(unsigned long long)iova, strerror(-r));
		return r;
	}
	q->iova = iova;
	q->size = size;
	q->buf_size = buf_size;
	q->desc = (uint8_t *)q->mem + l.desc;
	q->avail = (uint8_t *)q->mem + l.avail;
	q->used = (uint8_t *)q->mem + l.used;
	q->bufs = (uint8_t *)q->mem + l.bufs;
	return 0;
}

static void queue_post_all(struct vpci_queue *q)
{
	uint16_t i;

	for (i = 0; i < q->size; i++) {
		if (q->device_writes) {
			desc_fill(q, i, q->buf_size);
			q_avail(q)->ring[i] = htole16(i);
			q->next_free[i] = ST_INFLIGHT;
		} else {
			q->next_free[i] = (uint16_t)(i + 1);
		}
	}
	q->free_head = 0;
	q->nfree = q->device_writes ? 0 : q->size;
	q->avail_idx = q->device_writes ? q->size : 0;
	__atomic_store_n(&q_avail(q)->idx, htole16(q->avail_idx), __ATOMIC_RELEASE);
}

/* Queue size: the device's, capped at what was asked; both powers of two. */
static int queue_size(struct vpci *p, unsigned int idx, uint16_t max_size, uint16_t *size)
{
	uint16_t dev, back;
	int r = com_read16(p, VIRTIO_PCI_COMMON_Q_SIZE, &dev);

	if (r)
		return r;
	if (dev == 0 || (dev & (dev - 1))) {
		log_err("vfio %s: queue %u size %u is not a non-zero power of two", vname(p), idx, dev);
		return -EIO;
	}
	*size = dev < max_size ? dev : max_size;
	r = com_write16(p, VIRTIO_PCI_COMMON_Q_SIZE, *size);
	r = r ? r : com_read16(p, VIRTIO_PCI_COMMON_Q_SIZE, &back);
	if (r)
		return r;
	if (back != *size) {
		log_err("vfio %s: queue %u size reads %u after writing %u", vname(p), idx, back, *size);
		return -EIO;
	}
	return 0;
}

static int queue_vector(struct vpci *p, unsigned int idx, uint16_t vector)
{
	uint16_t back;
	int r = com_write16(p, VIRTIO_PCI_COMMON_Q_MSIX, vector);

	r = r ? r : com_read16(p, VIRTIO_PCI_COMMON_Q_MSIX, &back);
	if (r)
		return r;
	if (back != vector) {
		log_err("vfio %s: queue %u vector %u refused (reads 0x%x)", vname(p), idx, vector, back);
		return -EIO;
	}
	return 0;
}

static int queue_notify_addr(struct vpci *p, unsigned int idx, struct vpci_queue *q)
{
	uint16_t noff;
	uint64_t off;
	int r = com_read16(p, VIRTIO_PCI_COMMON_Q_NOFF, &noff);

	if (r)
		return r;
	off = (uint64_t)noff * p->notify_mult;  /* < 2^48: no overflow */
	if (off > p->notify.len || p->notify.len - off < 2) {
		log_err("vfio %s: queue %u notify offset 0x%llx outside the notify window (0x%llx)",
			vname(p), idx, (unsigned long long)off, (unsigned long long)p->notify.len);
		return -EIO;
	}
	q->notify_off = p->notify.off + off;
	return 0;
}

static int queue_program(struct vpci *p, unsigned int idx, struct vpci_queue *q)
{
	uint64_t base = q->iova;
	int r;

	r = com_write64(p, VIRTIO_PCI_COMMON_Q_DESCLO,
			base + (uint64_t)((uint8_t *)q->desc - (uint8_t *)q->mem));
	r = r ? r : com_write64(p, VIRTIO_PCI_COMMON_Q_AVAILLO,
				base + (uint64_t)((uint8_t *)q->avail - (uint8_t *)q->mem));
	r = r ? r : com_write64(p, VIRTIO_PCI_COMMON_Q_USEDLO,
				base + (uint64_t)((uint8_t *)q->used - (uint8_t *)q->mem));
	r = r ? r : queue_vector(p, idx, q->vector);
	return r ? r : queue_notify_addr(p, idx, q);
}

static int setup_args_ok(struct vpci *p, unsigned int idx, uint16_t max_size, uint32_t buf_size,
			 uint16_t vector)
{
	uint16_t numq;

	if (idx >= VPCI_MAX_QUEUES || max_size == 0 || (max_size & (max_size - 1)) ||
	    max_size > MAX_QUEUE_SIZE || buf_size == 0 || buf_size > MAX_BUF_SIZE ||
	    (vector != VPCI_NO_VECTOR && vector >= p->nvectors))
		return -EINVAL;
	if (com_read16(p, VIRTIO_PCI_COMMON_NUMQ, &numq))
		return -EIO;
	if (idx >= numq) {
		log_err("vfio %s: queue %u wanted, device has %u", vname(p), idx, numq);
		return -ENODEV;
	}
	return 0;
}

int vpci_setup_queue(struct vpci *p, unsigned int idx, uint16_t max_size, uint32_t buf_size,
		     uint16_t vector, bool device_writes)
{
	struct vpci_queue *q;
	uint16_t size;
	int r = setup_args_ok(p, idx, max_size, buf_size, vector);

	if (r)
		return r;
	q = &p->q[idx];
	queue_free(p, q);
	r = com_write16(p, VIRTIO_PCI_COMMON_Q_SELECT, (uint16_t)idx);
	r = r ? r : queue_size(p, idx, max_size, &size);
	r = r ? r : queue_alloc(p, q, size, buf_size);
	if (r)
		goto fail;
	q->vector = vector;
	q->device_writes = device_writes;
	queue_post_all(q);
	r = queue_program(p, idx, q);
	if (r)
		goto fail;
	q->ready = true;
	return 0;
fail:
	/* the specific reason, where the device gave one, is already logged */
	log_debug("vfio %s: queue %u setup failed: %s", vname(p), idx, strerror(-r));
	queue_free(p, q);
	return r;
}

static int notify(struct vpci *p, unsigned int idx)
{
	uint16_t v = htole16((uint16_t)idx);

	/* orders our ring writes before the device's read after the doorbell */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return p->vf->ops->region_write(p->vf, p->notify.bar, p->q[idx].notify_off, &v, 2);
}

int vpci_driver_ok(struct vpci *p)
{
	unsigned int i;
	int r = 0;

	for (i = 0; i < VPCI_MAX_QUEUES && !r; i++) {
		if (!p->q[i].ready)
			continue;
		r = com_write16(p, VIRTIO_PCI_COMMON_Q_SELECT, (uint16_t)i);
		r = r ? r : com_write16(p, VIRTIO_PCI_COMMON_Q_ENABLE, 1);
	}
	r = r ? r : status_or(p, VIRTIO_CONFIG_S_DRIVER_OK);
	/* tell the device about the buffers posted before it was live */
	for (i = 0; i < VPCI_MAX_QUEUES && !r; i++)
		if (p->q[i].ready && p->q[i].device_writes)
			r = notify(p, i);
	if (r)
		log_err("vfio %s: DRIVER_OK: %s", vname(p), strerror(-r));
	return r;
}

/* ---- device config, vendor caps ------------------------------------------ */

int vpci_cfg_read(struct vpci *p, uint64_t off, void *buf, size_t len)
{
	return vpci_loc_read(p, &p->device, off, buf, len);
}

int vpci_cfg_write(struct vpci *p, uint64_t off, const void *buf, size_t len)
{
	return vpci_loc_write(p, &p->device, off, buf, len);
}

const struct vpci_vendor_cap *vpci_find_vcap(const struct vpci *p, uint8_t cfg_type)
{
	unsigned int i;

	for (i = 0; i < p->nvcaps; i++)
		if (p->vcaps[i].cfg_type == cfg_type)
			return &p->vcaps[i];
	return NULL;
}

/* ---- data path ----------------------------------------------------------- */

static struct vpci_queue *queue_get(struct vpci *p, unsigned int idx, bool device_writes)
{
	if (idx >= VPCI_MAX_QUEUES || !p->q[idx].ready || p->q[idx].device_writes != device_writes)
		return NULL;
	return &p->q[idx];
}

static void publish(struct vpci_queue *q, uint16_t id)
{
	q_avail(q)->ring[q->avail_idx & (q->size - 1)] = htole16(id);
	q->avail_idx++;
	__atomic_store_n(&q_avail(q)->idx, htole16(q->avail_idx), __ATOMIC_RELEASE);
}

/*
 * Completed entries not yet consumed; more than the ring holds means the
 * device wrote a nonsense index.
 */
static int used_pending(struct vpci *p, unsigned int idx, struct vpci_queue *q, uint16_t *n)
{
	uint16_t used_idx = le16toh(__atomic_load_n(&q_used(q)->idx, __ATOMIC_ACQUIRE));

	*n = (uint16_t)(used_idx - q->used_seen);
	if (*n > q->size) {
		log_err("vfio %s: queue %u used index %u is %u ahead of %u", vname(p), idx, used_idx,
			*n, q->used_seen);
		return -EIO;
	}
	return 0;
}

static int used_take(struct vpci *p, unsigned int idx, struct vpci_queue *q, uint16_t *id,
		     uint32_t *len)
{
	volatile struct vring_used_elem *e = &q_used(q)->ring[q->used_seen & (q->size - 1)];
	uint32_t raw_id = le32toh(e->id);

	*len = le32toh(e->len);
	if (raw_id >= q->size || q->next_free[raw_id] != ST_INFLIGHT) {
		log_err("vfio %s: queue %u used id %u is not one in flight", vname(p), idx, raw_id);
		return -EIO;
	}
	*id = (uint16_t)raw_id;
	return 0;
}

int vpci_send(struct vpci *p, unsigned int idx, const void *data, size_t len)
{
	struct vpci_queue *q = queue_get(p, idx, false);
	uint16_t id;
	int r;

	if (!q)
		return -EINVAL;
	if (len > q->buf_size)
		return -EMSGSIZE;
	if (q->nfree == 0 && (r = vpci_reclaim(p, idx)) < 0)
		return r;
	if (q->nfree == 0)
		return -ENOBUFS;
	id = q->free_head;
	q->free_head = q->next_free[id];
	q->nfree--;
	q->next_free[id] = ST_INFLIGHT;
	memcpy(q->bufs + (size_t)id * q->buf_size, data, len);
	desc_fill(q, id, (uint32_t)len);
	publish(q, id);
	return notify(p, idx);
}

int vpci_reclaim(struct vpci *p, unsigned int idx)
{
	struct vpci_queue *q = queue_get(p, idx, false);
	uint16_t n, i, id;
	uint32_t len;
	int r;

	if (!q)
		return -EINVAL;
	r = used_pending(p, idx, q, &n);
	for (i = 0; !r && i < n; i++) {
		r = used_take(p, idx, q, &id, &len);
		if (r)
			break;
		q->next_free[id] = q->nfree ? q->free_head : 0;
		q->free_head = id;
		q->nfree++;
		q->used_seen++;
	}
	return r ? r : (int)n;
}

int vpci_recv(struct vpci *p, unsigned int idx, const uint8_t **data, uint32_t *len, uint16_t *id)
{
	struct vpci_queue *q = queue_get(p, idx, true);
	uint16_t n;
	int r;

	if (!q)
		return -EINVAL;
	r = used_pending(p, idx, q, &n);
	if (r || n == 0)
		return r;
	r = used_take(p, idx, q, id, len);
	if (r)
		return r;
	if (*len > q->buf_size) {
		log_err("vfio %s: queue %u used length %u over the %u-byte buffer", vname(p), idx, *len,
			q->buf_size);
		return -EIO;
	}
	q->next_free[*id] = ST_HELD;
	q->used_seen++;
	*data = q->bufs + (size_t)*id * q->buf_size;
	return 1;
}

int vpci_repost(struct vpci *p, unsigned int idx, uint16_t id)
{
	struct vpci_queue *q = queue_get(p, idx, true);

	if (!q || id >= q->size || q->next_free[id] != ST_HELD)
		return -EINVAL;
	q->next_free[id] = ST_INFLIGHT;
	desc_fill(q, id, q->buf_size);
	publish(q, id);
	return notify(p, idx);
}

/* ---- teardown ------------------------------------------------------------ */

void vpci_close(struct vpci *p)
{
	unsigned int i;

	if (!p->vf)
		return;
	/* the device must stop using the rings before they are unmapped */
	if (p->common.present)
		vpci_reset(p);
	vectors_free(p);
	for (i = 0; i < VPCI_MAX_QUEUES; i++)
		queue_free(p, &p->q[i]);
	p->features = 0;
	p->iova_next = 0;
}
