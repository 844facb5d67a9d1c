// SPDX-License-Identifier: MIT
/*
 * The virtio-PCI driver against a small fake device behind vfio_ops: PCI
 * config space with a capability list, common-config register semantics,
 * DMA maps that the fake translates to reach the driver's rings, and a
 * device side that completes rx buffers and consumes tx buffers. Knobs
 * make the fake hostile; the driver must refuse cleanly and never access a
 * register outside a BAR (the fake counts such accesses as violations).
 *
 * Fake layout:
 *   BAR 4 (0x4000): common @0x0 (0x100), ISR @0x1000, device cfg @0x2000
 *                   (0x100), notify @0x3000 (0x1000, multiplier 4)
 *   BAR 2 (0x4000): VVU doorbell @0 (multiplier 4), notification @0x2000
 *   BAR 0 (8 GiB):  a 64-bit shared-memory capability of 4 GiB
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "transport/vvu/virtio_pci.h"
#include "unit_util.h"

#define CFG_REGION 7u
#define REG_BAR 4u
#define DB_BAR 2u
#define SHM_BAR 0u
#define OFF_ISR 0x1000u
#define OFF_DEV 0x2000u
#define OFF_NOTIFY 0x3000u
#define NOTIFY_MULT 4u
#define DEV_QSIZE 256u
#define MAX_MAPS 8u
#define GiB (1ull << 30)

struct fq {
	uint16_t size, vector, enable, noff;
	uint64_t desc, avail, used;
	uint16_t last_avail;  /* device side */
	uint16_t used_idx;
	unsigned int notifies;
};

struct fmap {
	uint8_t *vaddr;
	uint64_t iova, size;
};

struct fake {
	struct vfio_dev vf;
	uint8_t cfg[256];
	uint64_t bar_size[6];
	uint8_t devcfg[0x100];
	uint32_t dfselect, gfselect;
	uint64_t dev_features, drv_features;
	uint8_t status;
	uint16_t msix_config, qsel, numq;
	struct fq q[2];
	struct fmap maps[MAX_MAPS];
	unsigned int nmaps;
	struct vfio_iova_range ranges[4];
	unsigned int nranges;
	int msix_n;
	unsigned int violations;   /* accesses outside a region, bad DMA maps */
	/* hostile knobs */
	bool refuse_vector, ignore_qsize_write, sticky_status, refuse_features;
	uint16_t report_qsize;     /* 0: DEV_QSIZE */
	uint16_t report_noff;
};

static struct fake *F(struct vfio_dev *d)
{
	return d->priv;
}

/* ---- config space -------------------------------------------------------- */

static void put16(uint8_t *b, unsigned int off, uint16_t v)
{
	v = htole16(v);
	memcpy(b + off, &v, 2);
}

static void put32(uint8_t *b, unsigned int off, uint32_t v)
{
	v = htole32(v);
	memcpy(b + off, &v, 4);
}

static void vcap(struct fake *f, uint8_t pos, uint8_t next, uint8_t len, uint8_t type, uint8_t bar,
		 uint32_t off, uint32_t length)
{
	f->cfg[pos] = PCI_CAP_ID_VNDR;
	f->cfg[pos + 1] = next;
	f->cfg[pos + 2] = len;
	f->cfg[pos + 3] = type;
	f->cfg[pos + 4] = bar;
	f->cfg[pos + 5] = type == 8 ? 7 : 0;
	put32(f->cfg, pos + 8, off);
	put32(f->cfg, pos + 12, length);
}

static void build_cfg(struct fake *f)
{
	put16(f->cfg, PCI_VENDOR_ID, 0x1af4);
	put16(f->cfg, PCI_DEVICE_ID, 0x1058);
	put16(f->cfg, PCI_SUBSYSTEM_ID, 0x0018);
	put16(f->cfg, PCI_COMMAND, 0x0103 & ~PCI_COMMAND_MASTER);
	put16(f->cfg, PCI_STATUS, PCI_STATUS_CAP_LIST);
	f->cfg[PCI_CAPABILITY_LIST] = 0x40;
	vcap(f, 0x40, 0x50, 16, VIRTIO_PCI_CAP_COMMON_CFG, REG_BAR, 0, 0x100);
	vcap(f, 0x50, 0x60, 16, VIRTIO_PCI_CAP_ISR_CFG, REG_BAR, OFF_ISR, 4);
	vcap(f, 0x60, 0x70, 16, VIRTIO_PCI_CAP_DEVICE_CFG, REG_BAR, OFF_DEV, 0x100);
	vcap(f, 0x70, 0x88, 20, VIRTIO_PCI_CAP_NOTIFY_CFG, REG_BAR, OFF_NOTIFY, 0x1000);
	put32(f->cfg, 0x70 + 16, NOTIFY_MULT);
	f->cfg[0x88] = PCI_CAP_ID_MSIX;
	f->cfg[0x89] = 0x90;
	put16(f->cfg, 0x88 + PCI_MSIX_FLAGS, 4 - 1);
	vcap(f, 0x90, 0xa8, 20, 6, DB_BAR, 0, 0x2000);
	put32(f->cfg, 0x90 + 16, 4);
	vcap(f, 0xa8, 0xb8, 16, 7, DB_BAR, 0x2000, 0x1000);
	vcap(f, 0xb8, 0x00, 24, VIRTIO_PCI_CAP_SHARED_MEMORY_CFG, SHM_BAR, 0, 0);
	put32(f->cfg, 0xb8 + 20, 1);  /* length_hi: 4 GiB */
}

/* ---- common config ------------------------------------------------------- */

static void dev_reset(struct fake *f)
{
	unsigned int i;

	f->status = 0;
	f->drv_features = 0;
	f->msix_config = VPCI_NO_VECTOR;
	for (i = 0; i < 2; i++)
		f->q[i] = (struct fq){ .size = f->report_qsize ? f->report_qsize : DEV_QSIZE,
				       .vector = VPCI_NO_VECTOR, .noff = i };
	f->q[1].noff = f->report_noff ? f->report_noff : 1;
}

static struct fq *selq(struct fake *f)
{
	return f->qsel < 2 ? &f->q[f->qsel] : NULL;
}

static uint64_t common_get(struct fake *f, uint64_t off)
{
	struct fq *q = selq(f);

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: return f->dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return f->dfselect == 0 ? (uint32_t)f->dev_features :
		       f->dfselect == 1 ? (uint32_t)(f->dev_features >> 32) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT: return f->gfselect;
	case VIRTIO_PCI_COMMON_MSIX: return f->msix_config;
	case VIRTIO_PCI_COMMON_NUMQ: return f->numq;
	case VIRTIO_PCI_COMMON_STATUS: return f->status;
	case VIRTIO_PCI_COMMON_Q_SELECT: return f->qsel;
	case VIRTIO_PCI_COMMON_Q_SIZE: return q ? q->size : 0;
	case VIRTIO_PCI_COMMON_Q_MSIX: return q ? q->vector : VPCI_NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE: return q ? q->enable : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF: return q ? q->noff : 0;
	default: return 0;
	}
}

static void set_half(uint64_t *v, bool hi, uint32_t half)
{
	if (hi)
		*v = (*v & 0xffffffffull) | (uint64_t)half << 32;
	else
		*v = (*v & ~0xffffffffull) | half;
}

static void common_status(struct fake *f, uint8_t v)
{
	if (v == 0) {
		if (!f->sticky_status)
			dev_reset(f);
		return;
	}
	if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(f->status & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    (f->refuse_features || (f->drv_features & ~f->dev_features)))
		v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
	f->status = v;
}

static void common_put(struct fake *f, uint64_t off, uint32_t v)
{
	struct fq *q = selq(f);

	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT: f->dfselect = v; return;
	case VIRTIO_PCI_COMMON_GFSELECT: f->gfselect = v; return;
	case VIRTIO_PCI_COMMON_GF:
		if (f->gfselect < 2)
			set_half(&f->drv_features, f->gfselect == 1, v);
		return;
	case VIRTIO_PCI_COMMON_MSIX: f->msix_config = (uint16_t)v; return;
	case VIRTIO_PCI_COMMON_STATUS: common_status(f, (uint8_t)v); return;
	case VIRTIO_PCI_COMMON_Q_SELECT: f->qsel = (uint16_t)v; return;
	default: break;
	}
	if (!q)
		return;
	switch (off) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		if (!f->ignore_qsize_write)
			q->size = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_Q_MSIX: q->vector = f->refuse_vector ? VPCI_NO_VECTOR : (uint16_t)v; return;
	case VIRTIO_PCI_COMMON_Q_ENABLE: q->enable = (uint16_t)v; return;
	case VIRTIO_PCI_COMMON_Q_DESCLO: set_half(&q->desc, false, v); return;
	case VIRTIO_PCI_COMMON_Q_DESCHI: set_half(&q->desc, true, v); return;
	case VIRTIO_PCI_COMMON_Q_AVAILLO: set_half(&q->avail, false, v); return;
	case VIRTIO_PCI_COMMON_Q_AVAILHI: set_half(&q->avail, true, v); return;
	case VIRTIO_PCI_COMMON_Q_USEDLO: set_half(&q->used, false, v); return;
	case VIRTIO_PCI_COMMON_Q_USEDHI: set_half(&q->used, true, v); return;
	default: return;
	}
}

/* ---- the vfio_ops ------------------------------------------------------- */

static int f_region_info(struct vfio_dev *d, unsigned int index, struct vfio_region_desc *out)
{
	if (index == CFG_REGION) {
		*out = (struct vfio_region_desc){ .size = 256, .flags = 3 };
		return 0;
	}
	if (index > 5)
		return -EINVAL;
	*out = (struct vfio_region_desc){ .size = F(d)->bar_size[index], .flags = 3 };
	return 0;
}

static bool in_region(struct fake *f, unsigned int index, uint64_t off, size_t len)
{
	uint64_t size = index == CFG_REGION ? 256 : index <= 5 ? f->bar_size[index] : 0;

	if (off > size || len > size - off) {
		f->violations++;
		return false;
	}
	return true;
}

static int f_region_read(struct vfio_dev *d, unsigned int index, uint64_t off, void *buf, size_t len)
{
	struct fake *f = F(d);
	uint64_t v;

	if (!in_region(f, index, off, len))
		return -EINVAL;
	memset(buf, 0, len);
	if (index == CFG_REGION) {
		memcpy(buf, f->cfg + off, len);
	} else if (index == REG_BAR && off < 0x100) {
		v = htole64(common_get(f, off));
		memcpy(buf, &v, len < 8 ? len : 8);
	} else if (index == REG_BAR && off >= OFF_DEV && off + len <= OFF_DEV + 0x100) {
		memcpy(buf, f->devcfg + (off - OFF_DEV), len);
	}
	return 0;
}

static int f_region_write(struct vfio_dev *d, unsigned int index, uint64_t off, const void *buf,
			  size_t len)
{
	struct fake *f = F(d);
	uint32_t v = 0;

	if (!in_region(f, index, off, len))
		return -EINVAL;
	if (index == CFG_REGION) {
		if (off == PCI_COMMAND && len == 2)
			memcpy(f->cfg + off, buf, 2);
		return 0;
	}
	if (index != REG_BAR)
		return 0;
	memcpy(&v, buf, len < 4 ? len : 4);
	v = le32toh(v);
	if (off < 0x100)
		common_put(f, off, v);
	else if (off >= OFF_DEV && off + len <= OFF_DEV + 0x100)
		memcpy(f->devcfg + (off - OFF_DEV), buf, len);
	else if (off >= OFF_NOTIFY && (off - OFF_NOTIFY) / NOTIFY_MULT < 2 && len == 2)
		f->q[(off - OFF_NOTIFY) / NOTIFY_MULT].notifies++;
	return 0;
}

static int f_region_mmap(struct vfio_dev *d, unsigned int index, uint64_t off, size_t len, void **out)
{
	(void)d, (void)index, (void)off, (void)len, (void)out;
	return -ENOTSUP;
}

static void f_region_munmap(struct vfio_dev *d, void *addr, size_t len)
{
	(void)d, (void)addr, (void)len;
}

static int f_iova_ranges(struct vfio_dev *d, struct vfio_iova_range *out, unsigned int max)
{
	struct fake *f = F(d);
	unsigned int i;

	for (i = 0; i < f->nranges && i < max; i++)
		out[i] = f->ranges[i];
	return (int)i;
}

static int f_iova_pgsizes(struct vfio_dev *d, uint64_t *out)
{
	(void)d;
	*out = 0x40201000ull;  /* 4 KiB, 2 MiB, 1 GiB */
	return 0;
}

static bool iova_ok(struct fake *f, uint64_t iova, uint64_t size)
{
	unsigned int i;

	if (iova <= 0xfeefffffull && iova + size - 1 >= 0xfee00000ull)
		return false;
	for (i = 0; i < f->nranges; i++)
		if (iova >= f->ranges[i].start && iova + size - 1 <= f->ranges[i].end)
			return true;
	return false;
}

static int f_dma_map(struct vfio_dev *d, void *vaddr, uint64_t iova, uint64_t size)
{
	struct fake *f = F(d);

	if (((uintptr_t)vaddr | iova | size) & 0xfff || !size || !iova_ok(f, iova, size) ||
	    f->nmaps == MAX_MAPS) {
		f->violations++;
		return -EINVAL;
	}
	f->maps[f->nmaps++] = (struct fmap){ vaddr, iova, size };
	return 0;
}

static int f_dma_unmap(struct vfio_dev *d, uint64_t iova, uint64_t size)
{
	struct fake *f = F(d);
	unsigned int i;

	for (i = 0; i < f->nmaps; i++) {
		if (f->maps[i].iova == iova && f->maps[i].size == size) {
			f->maps[i] = f->maps[--f->nmaps];
			return 0;
		}
	}
	f->violations++;
	return -EINVAL;
}

static int f_msix_count(struct vfio_dev *d, unsigned int *out)
{
	(void)d;
	*out = 4;
	return 0;
}

static int f_set_msix(struct vfio_dev *d, const int *efds, unsigned int n)
{
	(void)efds;
	F(d)->msix_n = (int)n;
	return 0;
}

static int f_reset(struct vfio_dev *d)
{
	(void)d;
	return -ENOTTY;
}

static void f_close(struct vfio_dev *d)
{
	(void)d;
}

static const struct vfio_ops fake_ops = {
	.region_info = f_region_info,
	.region_read = f_region_read,
	.region_write = f_region_write,
	.region_mmap = f_region_mmap,
	.region_munmap = f_region_munmap,
	.iova_ranges = f_iova_ranges,
	.iova_pgsizes = f_iova_pgsizes,
	.dma_map = f_dma_map,
	.dma_unmap = f_dma_unmap,
	.msix_count = f_msix_count,
	.set_msix = f_set_msix,
	.reset = f_reset,
	.close = f_close,
};

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->vf.ops = &fake_ops;
	f->vf.priv = f;
	strcpy(f->vf.name, "0000:00:05.0");
	f->bar_size[REG_BAR] = 0x4000;
	f->bar_size[DB_BAR] = 0x4000;
	f->bar_size[SHM_BAR] = 8 * GiB;
	f->numq = 2;
	f->dev_features = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_ACCESS_PLATFORM;
	f->ranges[0] = (struct vfio_iova_range){ 0, 0xfedfffffull };
	f->ranges[1] = (struct vfio_iova_range){ 0xfef00000ull, (1ull << 48) - 1 };
	f->nranges = 2;
	build_cfg(f);
	dev_reset(f);
	return f;
}

/* ---- the device side of the rings ---------------------------------------- */

static void *dma_ptr(struct fake *f, uint64_t iova, uint64_t len)
{
	unsigned int i;

	for (i = 0; i < f->nmaps; i++) {
		struct fmap *m = &f->maps[i];

		if (iova >= m->iova && iova - m->iova <= m->size && len <= m->size - (iova - m->iova))
			return m->vaddr + (iova - m->iova);
	}
	fail_msg("IOVA 0x%llx + %llu not mapped", (unsigned long long)iova, (unsigned long long)len);
	return NULL;
}

static struct vring_avail *f_avail(struct fake *f, unsigned int qi)
{
	return dma_ptr(f, f->q[qi].avail, 4 + 2u * f->q[qi].size);
}

static struct vring_used *f_used(struct fake *f, unsigned int qi)
{
	return dma_ptr(f, f->q[qi].used, 4 + 8u * f->q[qi].size);
}

static void push_used(struct fake *f, unsigned int qi, uint32_t id, uint32_t len)
{
	struct fq *q = &f->q[qi];
	struct vring_used *u = f_used(f, qi);

	u->ring[q->used_idx % q->size].id = htole32(id);
	u->ring[q->used_idx % q->size].len = htole32(len);
	q->used_idx++;
	u->idx = htole16(q->used_idx);
}

/* Next available descriptor; false when the driver posted none. */
static bool pop_avail(struct fake *f, unsigned int qi, uint16_t *head, struct vring_desc *d)
{
	struct fq *q = &f->q[qi];
	struct vring_avail *a = f_avail(f, qi);
	struct vring_desc *table = dma_ptr(f, q->desc, 16u * q->size);

	if (le16toh(a->idx) == q->last_avail)
		return false;
	*head = le16toh(a->ring[q->last_avail % q->size]);
	q->last_avail++;
	assert_true(*head < q->size);
	*d = table[*head];
	return true;
}

/* The device fills the next rx buffer with @len bytes. */
static void rx_complete(struct fake *f, unsigned int qi, const void *data, uint32_t len)
{
	struct vring_desc d;
	uint16_t head;

	assert_true(pop_avail(f, qi, &head, &d));
	assert_true(le16toh(d.flags) & VRING_DESC_F_WRITE);
	assert_true(len <= le32toh(d.len));
	memcpy(dma_ptr(f, le64toh(d.addr), len), data, len);
	push_used(f, qi, head, len);
}

/* The device consumes the next tx buffer; Return: its length. */
static uint32_t tx_consume(struct fake *f, unsigned int qi, void *out, size_t max)
{
	struct vring_desc d;
	uint16_t head;
	uint32_t len;

	assert_true(pop_avail(f, qi, &head, &d));
	assert_false(le16toh(d.flags) & VRING_DESC_F_WRITE);
	len = le32toh(d.len);
	assert_true(len <= max);
	memcpy(out, dma_ptr(f, le64toh(d.addr), len), len);
	push_used(f, qi, head, 0);
	return len;
}

/* ---- fixtures ------------------------------------------------------------ */

struct fx {
	struct fake *f;
	struct vpci p;
	int fds_before;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->fds_before = ut_fd_count();
	x->f = fake_new();
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	vpci_close(&x->p);
	assert_int_equal(x->f->nmaps, 0);
	assert_int_equal(x->f->msix_n, 0);
	assert_int_equal(x->f->violations, 0);
	assert_int_equal(ut_fd_count(), x->fds_before);
	free(x->f);
	free(x);
	return 0;
}

/* Probe, reset, negotiate, 3 vectors, rx queue 0 and tx queue 1, DRIVER_OK. */
static void bring_up(struct fx *x, uint16_t qsize)
{
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_reset(&x->p), 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 0), 0);
	assert_int_equal(vpci_setup_vectors(&x->p, 3), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 0, qsize, 1024, 0, true), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 1, qsize, 1024, 1, false), 0);
	assert_int_equal(vpci_driver_ok(&x->p), 0);
}

/* ---- tests --------------------------------------------------------------- */

static void probe_finds_everything(void **state)
{
	struct fx *x = *state;
	const struct vpci_vendor_cap *db, *shm;
	uint16_t cmd;

	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(x->p.vendor_id, 0x1af4);
	assert_int_equal(x->p.device_id, 0x1058);
	assert_int_equal(x->p.subsys_device_id, 0x18);
	assert_true(x->p.common.present && x->p.notify.present && x->p.isr.present &&
		    x->p.device.present);
	assert_int_equal(x->p.notify.off, OFF_NOTIFY);
	assert_int_equal(x->p.notify_mult, NOTIFY_MULT);
	assert_int_equal(x->p.msix_table_size, 4);
	assert_int_equal(x->p.nvcaps, 3);
	db = vpci_find_vcap(&x->p, 6);
	assert_non_null(db);
	assert_int_equal(db->cap_off, 0x90);
	assert_int_equal(db->loc.bar, DB_BAR);
	assert_int_equal(db->loc.len, 0x2000);
	shm = vpci_find_vcap(&x->p, 8);
	assert_non_null(shm);
	assert_int_equal(shm->id, 7);
	assert_int_equal(shm->loc.len, 4 * GiB);
	assert_null(vpci_find_vcap(&x->p, 9));
	memcpy(&cmd, x->f->cfg + PCI_COMMAND, 2);
	assert_true(le16toh(cmd) & PCI_COMMAND_MASTER);
	assert_true(le16toh(cmd) & PCI_COMMAND_MEMORY);
}

static void session_moves_messages(void **state)
{
	struct fx *x = *state;
	struct fake *f = x->f;
	const uint8_t *data;
	char out[1024];
	uint32_t len;
	uint16_t id;
	uint32_t v = htole32(1);

	bring_up(x, 64);
	assert_true(x->p.features & (1ull << VIRTIO_F_ACCESS_PLATFORM));
	assert_true(f->status & VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(f->msix_config, VPCI_NO_VECTOR);
	assert_int_equal(f->msix_n, 3);
	assert_int_equal(x->p.q[0].size, 64);
	assert_int_equal(f->q[0].size, 64);
	assert_int_equal(f->q[0].enable, 1);
	assert_int_equal(f->q[1].vector, 1);
	/* above 4 GiB, written as two halves, inside one of our maps */
	assert_true(f->q[0].desc >= 4 * GiB && f->q[1].used >= 4 * GiB);
	assert_int_equal(f->q[0].desc, x->p.q[0].iova);
	assert_true(f->q[0].notifies >= 1);
	assert_true(vpci_vector_fd(&x->p, 2) >= 0);
	assert_int_equal(vpci_vector_fd(&x->p, 3), -1);

	assert_int_equal(vpci_recv(&x->p, 0, &data, &len, &id), 0);
	rx_complete(f, 0, "hello", 5);
	assert_int_equal(vpci_recv(&x->p, 0, &data, &len, &id), 1);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	assert_int_equal(vpci_repost(&x->p, 0, id), 0);
	assert_int_equal(vpci_repost(&x->p, 0, id), -EINVAL);  /* not held any more */

	assert_int_equal(vpci_send(&x->p, 1, "world!", 6), 0);
	assert_int_equal(tx_consume(f, 1, out, sizeof(out)), 6);
	assert_memory_equal(out, "world!", 6);
	assert_int_equal(vpci_reclaim(&x->p, 1), 1);
	assert_int_equal(vpci_send(&x->p, 1, out, 1025), -EMSGSIZE);
	assert_int_equal(vpci_send(&x->p, 0, out, 1), -EINVAL);  /* rx queue */

	assert_int_equal(vpci_cfg_write(&x->p, 0, &v, 4), 0);
	assert_int_equal(f->devcfg[0], 1);
	assert_int_equal(vpci_cfg_read(&x->p, 0xfe, &v, 4), -ERANGE);
}

static void tx_runs_out_then_recovers(void **state)
{
	struct fx *x = *state;
	char out[16];
	unsigned int i;

	bring_up(x, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(vpci_send(&x->p, 1, "abcd", 4), 0);
	assert_int_equal(vpci_send(&x->p, 1, "abcd", 4), -ENOBUFS);
	assert_int_equal(tx_consume(x->f, 1, out, sizeof(out)), 4);
	/* send reclaims on its own when every buffer is out */
	assert_int_equal(vpci_send(&x->p, 1, "efgh", 4), 0);
	for (i = 0; i < 4; i++)
		tx_consume(x->f, 1, out, sizeof(out));
	assert_memory_equal(out, "efgh", 4);
	assert_int_equal(vpci_reclaim(&x->p, 1), 4);
}

static void rx_wraps_around(void **state)
{
	struct fx *x = *state;
	const uint8_t *data;
	uint32_t len, i;
	uint16_t id;

	bring_up(x, 4);
	for (i = 0; i < 20; i++) {
		rx_complete(x->f, 0, &i, 4);
		assert_int_equal(vpci_recv(&x->p, 0, &data, &len, &id), 1);
		assert_memory_equal(data, &i, 4);
		assert_int_equal(vpci_repost(&x->p, 0, id), 0);
	}
}

static void second_session_after_close(void **state)
{
	struct fx *x = *state;
	const uint8_t *data;
	uint32_t len;
	uint16_t id;

	bring_up(x, 8);
	vpci_close(&x->p);
	assert_int_equal(x->f->nmaps, 0);
	assert_int_equal(x->f->status, 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 0), 0);
	assert_int_equal(vpci_setup_vectors(&x->p, 2), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 0, 8, 256, 0, true), 0);
	assert_int_equal(vpci_driver_ok(&x->p), 0);
	rx_complete(x->f, 0, "again", 5);
	assert_int_equal(vpci_recv(&x->p, 0, &data, &len, &id), 1);
	assert_memory_equal(data, "again", 5);
}

/* ---- hostile devices ------------------------------------------------------ */

static void probe_fails(struct fx *x)
{
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), -ENODEV);
}

static void cap_past_bar(void **state)
{
	struct fx *x = *state;

	put32(x->f->cfg, 0x60 + 8, 0x3f80);  /* device cfg 0x3f80 + 0x100 > 0x4000 */
	probe_fails(x);
}

static void cap_length_wraps(void **state)
{
	struct fx *x = *state;

	put32(x->f->cfg, 0xb8 + 8, 0x1000);
	put32(x->f->cfg, 0xb8 + 16, 0xffffffff);  /* offset near 2^64 */
	put32(x->f->cfg, 0xb8 + 20, 0xffffffff);
	probe_fails(x);
}

static void cap_in_missing_bar(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0x90 + 4] = 6;  /* no such BAR */
	probe_fails(x);
}

static void cap_loop(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0xb8 + 1] = 0x50;
	probe_fails(x);
}

static void cap_pointer_low(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0x50 + 1] = 0x10;
	probe_fails(x);
}

static void cap_runs_off_config(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0xb8 + 1] = 0xfc;
	x->f->cfg[0xfc] = PCI_CAP_ID_VNDR;
	x->f->cfg[0xfe] = 16;  /* 16 bytes from 0xfc */
	probe_fails(x);
}

static void cap_too_short(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0x50 + 2] = 8;  /* shorter than struct virtio_pci_cap */
	probe_fails(x);
}

static void notify_cap_without_multiplier(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0x70 + 2] = 16;
	probe_fails(x);
}

static void no_common_cap(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0x40 + 3] = 0x20;  /* unknown type: kept as a vendor cap */
	probe_fails(x);
}

static void not_virtio(void **state)
{
	struct fx *x = *state;

	put16(x->f->cfg, PCI_DEVICE_ID, 0x1000);  /* transitional: legacy interface */
	probe_fails(x);
}

static void reset_never_completes(void **state)
{
	struct fx *x = *state;

	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	x->f->status = VIRTIO_CONFIG_S_ACKNOWLEDGE;
	x->f->sticky_status = true;
	assert_int_equal(vpci_reset(&x->p), -ETIMEDOUT);
	x->f->sticky_status = false;
}

static void no_version_1(void **state)
{
	struct fx *x = *state;

	x->f->dev_features = 1ull << VIRTIO_F_ACCESS_PLATFORM;
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 0), -ENOTSUP);
	assert_true(x->f->status & VIRTIO_CONFIG_S_FAILED);
}

static void features_refused(void **state)
{
	struct fx *x = *state;

	x->f->refuse_features = true;
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 1ull << 40), -EIO);
}

static void wanted_only_when_offered(void **state)
{
	struct fx *x = *state;

	x->f->dev_features |= 1ull << 3;
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 1ull << 3 | 1ull << 5), 0);
	assert_int_equal(x->f->drv_features, 1ull << 3 | 1ull << VIRTIO_F_VERSION_1 |
					     1ull << VIRTIO_F_ACCESS_PLATFORM);
}

static void queue_fails(struct fx *x, uint16_t max, int err)
{
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 0), 0);
	assert_int_equal(vpci_setup_vectors(&x->p, 2), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 0, max, 512, 0, true), err);
	assert_false(x->p.q[0].ready);
	assert_int_equal(x->f->nmaps, 0);
}

static void queue_size_zero(void **state)
{
	struct fx *x = *state;

	x->f->report_qsize = 0xffff;  /* not a power of two either */
	dev_reset(x->f);
	queue_fails(x, 64, -EIO);
	x->f->q[0].size = 0;
	assert_int_equal(vpci_setup_queue(&x->p, 0, 64, 512, 0, true), -EIO);
}

static void queue_size_not_pow2(void **state)
{
	struct fx *x = *state;

	x->f->report_qsize = 96;
	dev_reset(x->f);
	queue_fails(x, 64, -EIO);
}

static void queue_size_over_asked(void **state)
{
	struct fx *x = *state;

	x->f->ignore_qsize_write = true;  /* keeps reading 256 after we write 64 */
	queue_fails(x, 64, -EIO);
}

static void vector_refused(void **state)
{
	struct fx *x = *state;

	x->f->refuse_vector = true;
	queue_fails(x, 64, -EIO);
}

static void notify_off_outside(void **state)
{
	struct fx *x = *state;

	x->f->report_noff = 0x400;  /* 0x400 * 4 = 0x1000: just past the window */
	dev_reset(x->f);
	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_negotiate(&x->p, 0, 0), 0);
	assert_int_equal(vpci_setup_vectors(&x->p, 2), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 0, 64, 512, 0, true), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 1, 64, 512, 1, false), -EIO);
}

static void bad_args(void **state)
{
	struct fx *x = *state;

	assert_int_equal(vpci_probe(&x->p, &x->f->vf), 0);
	assert_int_equal(vpci_setup_vectors(&x->p, 5), -ENOSPC);  /* table has 4 */
	assert_int_equal(vpci_setup_vectors(&x->p, 2), 0);
	assert_int_equal(vpci_setup_queue(&x->p, 2, 64, 512, 0, true), -EINVAL);
	assert_int_equal(vpci_setup_queue(&x->p, 0, 48, 512, 0, true), -EINVAL);
	assert_int_equal(vpci_setup_queue(&x->p, 0, 64, 0, 0, true), -EINVAL);
	assert_int_equal(vpci_setup_queue(&x->p, 0, 64, 512, 2, true), -EINVAL);
	x->f->numq = 1;
	assert_int_equal(vpci_setup_queue(&x->p, 1, 64, 512, 1, false), -ENODEV);
}

/* vpci_recv() on the rx queue, for cases that only look at its verdict */
static int recv_rx(struct fx *x)
{
	const uint8_t *data;
	uint32_t len;
	uint16_t id;

	return vpci_recv(&x->p, 0, &data, &len, &id);
}

static void used_id_out_of_range(void **state)
{
	struct fx *x = *state;

	bring_up(x, 8);
	push_used(x->f, 0, 8, 4);
	assert_int_equal(recv_rx(x), -EIO);
	push_used(x->f, 1, 0xffffffffu, 0);
	assert_int_equal(vpci_reclaim(&x->p, 1), -EIO);
}

static void used_id_never_posted(void **state)
{
	struct fx *x = *state;

	bring_up(x, 8);
	assert_int_equal(vpci_send(&x->p, 1, "x", 1), 0);  /* descriptor 0 */
	push_used(x->f, 1, 3, 0);
	assert_int_equal(vpci_reclaim(&x->p, 1), -EIO);
}

static void used_id_twice(void **state)
{
	struct fx *x = *state;

	bring_up(x, 8);
	push_used(x->f, 0, 2, 4);
	push_used(x->f, 0, 2, 4);
	assert_int_equal(recv_rx(x), 1);
	assert_int_equal(recv_rx(x), -EIO);
}

static void used_len_over_buffer(void **state)
{
	struct fx *x = *state;

	bring_up(x, 8);
	push_used(x->f, 0, 0, 1025);
	assert_int_equal(recv_rx(x), -EIO);
}

static void used_idx_jumps(void **state)
{
	struct fx *x = *state;

	bring_up(x, 8);
	f_used(x->f, 0)->idx = htole16(9);
	assert_int_equal(recv_rx(x), -EIO);
	f_used(x->f, 1)->idx = htole16(0x8000);
	assert_int_equal(vpci_reclaim(&x->p, 1), -EIO);
}

static void iova_low_only(void **state)
{
	struct fx *x = *state;

	/* no room above 4 GiB: below it, and never in the MSI window */
	x->f->ranges[0] = (struct vfio_iova_range){ 0xfed00000ull, 0xfeffffffull };
	x->f->ranges[1] = (struct vfio_iova_range){ 0x1000, 0xfedfffffull };
	bring_up(x, 8);
	assert_true(x->p.q[0].iova + x->p.q[0].mem_len <= 0xfee00000ull ||
		    x->p.q[0].iova >= 0xfef00000ull);
	assert_true(x->p.q[1].iova < 4 * GiB);
}

static void iova_none(void **state)
{
	struct fx *x = *state;

	x->f->nranges = 0;
	queue_fails(x, 64, -ENOSPC);
}

static void close_after_failed_probe(void **state)
{
	struct fx *x = *state;

	x->f->cfg[0xb8 + 1] = 0x50;
	probe_fails(x);
	vpci_close(&x->p);
	vpci_close(&x->p);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(probe_finds_everything), T(session_moves_messages), T(tx_runs_out_then_recovers),
		T(rx_wraps_around), T(second_session_after_close), T(cap_past_bar),
		T(cap_length_wraps), T(cap_in_missing_bar), T(cap_loop), T(cap_pointer_low),
		T(cap_runs_off_config), T(cap_too_short), T(notify_cap_without_multiplier),
		T(no_common_cap), T(not_virtio), T(reset_never_completes),
		T(no_version_1), T(features_refused), T(wanted_only_when_offered),
		T(queue_size_zero), T(queue_size_not_pow2), T(queue_size_over_asked),
		T(vector_refused), T(notify_off_outside), T(bad_args), T(used_id_out_of_range),
		T(used_id_never_posted), T(used_id_twice), T(used_len_over_buffer),
		T(used_idx_jumps), T(iova_low_only), T(iova_none), T(close_after_failed_probe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
