// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the VVU transport's input from the device, in two modes
 * chosen by the low bit of the first byte.
 *
 * Device values (even): everything the virtio-PCI driver (virtio_pci.h)
 * reads from a VFIO device comes from the input, through a fake vfio_dev:
 *   cfg[256]               PCI config space (ids, capability list, caps)
 *   6 x (u8 log2, u8 flags) BAR 0-5 sizes (0: absent) and region flags
 *   u8                     MSI-X vector count
 *   u8 n, n x (u64, u64)   IOVA ranges (n <= 4)
 *   u8                     operations that fail (bit 0 dma_map, 1 set_msix,
 *                          2 region_write)
 *   rest                   the values of BAR reads, in the order the
 *                          driver reads them (zeros once used up), then
 *                          used-ring entries the "device" writes:
 *                          per round u8 queue, u16 used idx, u32 id, u32 len
 * The driver probes, negotiates, sets up vectors and both queues as the
 * VVU transport does, then takes completions. A status read right after
 * the driver wrote status 0 reads 0, so a reset never waits out its 1 s.
 *
 * Messages (odd): the rest of the input is a sequence of rxq buffers
 * (le32 length, bytes), as the model's bridge records a session
 * (vvb_start's record_dir), checked with the VVU framing rules: a zero
 * length is a disconnect, 1..11 bytes or a header size other than length
 * - 12 is refused.
 *
 * Checked: a completion the driver accepts lies inside the buffer it
 * posted with a length within the buffer; vpci_close() leaves no DMA
 * mapping, no MSI-X eventfd registered and no fd open.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>

#include "fuzz_util.h"
#include "transport/vvu/virtio_pci.h"
#include "util/log.h"
#include "vhost_user/proto.h"

#define FV_CFG 7u
#define FV_NBARS 6u
#define FV_MAX_MAPS 16u
#define FV_STATUS_OFF 0x14u
#define FV_ROUNDS 16u
#define FV_BUF 1024u

struct fv_map {
	uint64_t iova, size;
	void *vaddr;
};

struct fv_dev {
	struct fz_in in;
	uint8_t cfg[256];
	struct vfio_region_desc bars[FV_NBARS];
	unsigned int msix;
	struct vfio_iova_range iova[4];
	unsigned int niova;
	uint8_t fail;
	struct fv_map maps[FV_MAX_MAPS];
	unsigned int nmaps, nvectors;
	bool status_zero;      /* the driver just wrote status 0 */
	const struct vpci *p;  /* where the common config is, once probed */
};

static struct fv_dev *dev_of(struct vfio_dev *d)
{
	return d->priv;
}

static int fv_region_info(struct vfio_dev *d, unsigned int index, struct vfio_region_desc *out)
{
	struct fv_dev *f = dev_of(d);

	if (index == FV_CFG) {
		*out = (struct vfio_region_desc){ sizeof(f->cfg), 3 };
		return 0;
	}
	if (index >= FV_NBARS)
		return -EINVAL;
	*out = f->bars[index];
	return 0;
}

static bool is_status(const struct fv_dev *f, unsigned int index, uint64_t off, size_t len)
{
	return f->p && f->p->common.present && index == f->p->common.bar &&
	       off == f->p->common.off + FV_STATUS_OFF && len == 1;
}

static int fv_region_read(struct vfio_dev *d, unsigned int index, uint64_t off, void *buf, size_t len)
{
	struct fv_dev *f = dev_of(d);

	if (index == FV_CFG) {
		if (off > sizeof(f->cfg) || len > sizeof(f->cfg) - off)
			return -EINVAL;
		memcpy(buf, f->cfg + off, len);
		return 0;
	}
	if (index >= FV_NBARS || off > f->bars[index].size || len > f->bars[index].size - off)
		return -EINVAL;
	if (f->status_zero && is_status(f, index, off, len)) {
		memset(buf, 0, len);
		f->status_zero = false;
		return 0;
	}
	fz_bytes(&f->in, buf, len);
	return 0;
}

static int fv_region_write(struct vfio_dev *d, unsigned int index, uint64_t off, const void *buf,
			   size_t len)
{
	struct fv_dev *f = dev_of(d);

	if (f->fail & 4)
		return -EIO;
	if (index == FV_CFG ? off > sizeof(f->cfg) || len > sizeof(f->cfg) - off
			    : index >= FV_NBARS || off > f->bars[index].size ||
				      len > f->bars[index].size - off)
		return -EINVAL;
	/* the command register holds what was written (bus master, memory space) */
	for (size_t i = 0; index == FV_CFG && i < len; i++) {
		if (off + i == 4 || off + i == 5)
			f->cfg[off + i] = ((const uint8_t *)buf)[i];
	}
	if (is_status(f, index, off, len))
		f->status_zero = ((const uint8_t *)buf)[0] == 0;
	return 0;
}

static int fv_region_mmap(struct vfio_dev *d, unsigned int index, uint64_t off, size_t len, void **out)
{
	(void)d;
	(void)index;
	(void)off;
	(void)len;
	(void)out;
	return -ENOTSUP;
}

static void fv_region_munmap(struct vfio_dev *d, void *addr, size_t len)
{
	(void)d;
	(void)addr;
	(void)len;
}

static int fv_iova_ranges(struct vfio_dev *d, struct vfio_iova_range *out, unsigned int max)
{
	struct fv_dev *f = dev_of(d);
	unsigned int n = f->niova < max ? f->niova : max;

	memcpy(out, f->iova, n * sizeof(*out));
	return (int)n;
}

static int fv_iova_pgsizes(struct vfio_dev *d, uint64_t *out)
{
	(void)d;
	*out = 0x40201000ull;
	return 0;
}

static int fv_dma_map(struct vfio_dev *d, void *vaddr, uint64_t iova, uint64_t size)
{
	struct fv_dev *f = dev_of(d);

	if ((f->fail & 1) || f->nmaps == FV_MAX_MAPS)
		return -EIO;
	f->maps[f->nmaps++] = (struct fv_map){ iova, size, vaddr };
	return 0;
}

static int fv_dma_unmap(struct vfio_dev *d, uint64_t iova, uint64_t size)
{
	struct fv_dev *f = dev_of(d);

	for (unsigned int i = 0; i < f->nmaps; i++) {
		if (f->maps[i].iova == iova && f->maps[i].size == size) {
			f->maps[i] = f->maps[--f->nmaps];
			return 0;
		}
	}
	FZ_CHECK(false, "DMA unmap of 0x%llx + 0x%llx that was never mapped",
		 (unsigned long long)iova, (unsigned long long)size);
	return -ENOENT;
}

static int fv_msix_count(struct vfio_dev *d, unsigned int *out)
{
	*out = dev_of(d)->msix;
	return 0;
}

static int fv_set_msix(struct vfio_dev *d, const int *efds, unsigned int n)
{
	struct fv_dev *f = dev_of(d);

	if (n && (f->fail & 2))
		return -EIO;
	for (unsigned int i = 0; i < n; i++)
		FZ_CHECK(efds[i] < 0 || fcntl(efds[i], F_GETFD) >= 0, "vector %u: fd %d not open", i,
			 efds[i]);
	f->nvectors = n;
	return 0;
}

static int fv_reset(struct vfio_dev *d)
{
	(void)d;
	return -ENOTTY;
}

static void fv_close(struct vfio_dev *d)
{
	(void)d;
}

static const struct vfio_ops fv_ops = {
	.region_info = fv_region_info,
	.region_read = fv_region_read,
	.region_write = fv_region_write,
	.region_mmap = fv_region_mmap,
	.region_munmap = fv_region_munmap,
	.iova_ranges = fv_iova_ranges,
	.iova_pgsizes = fv_iova_pgsizes,
	.dma_map = fv_dma_map,
	.dma_unmap = fv_dma_unmap,
	.msix_count = fv_msix_count,
	.set_msix = fv_set_msix,
	.reset = fv_reset,
	.close = fv_close,
};

static void read_device(struct fv_dev *f, struct fz_in *in)
{
	fz_bytes(in, f->cfg, sizeof(f->cfg));
	for (unsigned int i = 0; i < FV_NBARS; i++) {
		uint8_t lg = fz_u8(in) % 48;

		f->bars[i].size = lg ? 1ull << lg : 0;
		f->bars[i].flags = fz_u8(in) & 7;
	}
	f->msix = fz_u8(in);
	f->niova = fz_u8(in) % 5;
	for (unsigned int i = 0; i < f->niova; i++) {
		f->iova[i].start = fz_u64(in);
		f->iova[i].end = fz_u64(in);
	}
	f->fail = fz_u8(in);
	f->in = *in;
}

/* The "device" completes something on queue @q: used idx and one entry from the input. */
static void device_writes_used(struct vpci *p, struct fz_in *in)
{
	unsigned int q = fz_u8(in) % VPCI_MAX_QUEUES;
	struct vpci_queue *vq = &p->q[q];
	uint16_t idx = fz_u16(in);
	uint32_t id = fz_u32(in), len = fz_u32(in);
	volatile uint8_t *used = vq->used;

	if (!vq->ready || !used || !vq->size)
		return;
	memcpy((uint8_t *)used + 4 + 8u * (vq->used_seen % vq->size), &id, 4);
	memcpy((uint8_t *)used + 8 + 8u * (vq->used_seen % vq->size), &len, 4);
	__atomic_store_n((uint16_t *)(used + 2), idx, __ATOMIC_RELEASE);
}

static void take_completions(struct vpci *p, struct fz_in *in)
{
	for (unsigned int r = 0; r < FV_ROUNDS && !fz_empty(in); r++) {
		const uint8_t *data;
		uint32_t len;
		uint16_t id;
		int rc;

		device_writes_used(p, in);
		rc = vpci_recv(p, 0, &data, &len, &id);
		if (rc == 1) {
			const struct vpci_queue *vq = &p->q[0];

			FZ_CHECK(len <= vq->buf_size && id < vq->size, "recv: id %u len %u accepted", id,
				 len);
			FZ_CHECK(data == vq->bufs + (size_t)id * vq->buf_size, "recv: data outside buffer %u",
				 id);
			vpci_repost(p, 0, id);
		}
		(void)vpci_reclaim(p, 1);
		(void)vpci_send(p, 1, "x", 1);
	}
}

static void device_values(struct fz_in *in)
{
	static struct fv_dev f;
	struct vfio_dev vd = { .ops = &fv_ops, .name = "0000:00:05.0", .priv = &f };
	struct vpci p;
	int fds = fz_count_fds();

	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
	read_device(&f, in);
	if (vpci_probe(&p, &vd) == 0) {
		f.p = &p;
		if (vpci_reset(&p) == 0 && vpci_negotiate(&p, 1ull << 32, 0) == 0 &&
		    vpci_setup_vectors(&p, f.msix < 18 ? f.msix : 18) == 0 &&
		    vpci_setup_queue(&p, 0, 256, FV_BUF, 0, true) == 0 &&
		    vpci_setup_queue(&p, 1, 256, FV_BUF, 1, false) == 0 && vpci_driver_ok(&p) == 0)
			take_completions(&p, &f.in);
	}
	vpci_close(&p);
	FZ_CHECK(f.nmaps == 0, "%u DMA mappings left after vpci_close", f.nmaps);
	FZ_CHECK(f.nvectors == 0, "%u MSI-X vectors left after vpci_close", f.nvectors);
	fz_check_fds(fds);
}

/*
 * The VVU framing rules (PROTOCOLS.md §5.3) as an independent model: what
 * a driver must do with one rxq completion. Return: 0 a message, 1 a
 * disconnect, -EPROTO refused.
 */
static int frame_rule(const uint8_t *b, uint32_t len)
{
	uint32_t size;

	if (len == 0)
		return 1;
	if (len < VU_HDR_SIZE)
		return -EPROTO;
	memcpy(&size, b + 8, 4);
	size = le32toh(size);
	return size == len - VU_HDR_SIZE ? 0 : -EPROTO;
}

static void messages(struct fz_in *in)
{
	while (!fz_empty(in)) {
		uint32_t len = fz_u32(in) % (VU_HDR_SIZE + VU_MAX_PAYLOAD + 16);
		size_t got;
		const uint8_t *b = fz_take(in, len, &got);

		(void)frame_rule(b, (uint32_t)got);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };

	log_set_level(LOG_LVL_ERROR);
	if (fz_u8(&in) & 1)
		messages(&in);
	else
		device_values(&in);
	return 0;
}
