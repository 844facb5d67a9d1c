// SPDX-License-Identifier: MIT
/*
 * Fuzz target: the VVU transport's input from the device. The first byte
 * picks the mode: bit 0 set, messages; else device values, bit 1 choosing
 * the VVU transport's own start-up (vvu_start/vvu_next, transport/vvu/vvu.h)
 * over the plain virtio-PCI sequence.
 *
 * Device values: everything the virtio-PCI driver (virtio_pci.h)
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
 *                          and, through vvu_next, u16 n and n bytes written
 *                          into the buffer first
 * The driver probes, negotiates, sets up vectors and both queues (or
 * vvu_start does all of it with its own checks of the VVU capabilities
 * and the shared-memory window), then takes completions. A status read
 * right after the driver wrote status 0 reads 0, so a reset never waits
 * out its 1 s.
 *
 * Messages (odd): the rest of the input is a sequence of rxq buffers
 * (le32 length, bytes), as the model's bridge records a session
 * (vvb_start's record_dir). Each goes through vvu_msg_from_buffer(),
 * checked against an independent statement of the framing rules (a zero
 * length is a disconnect; under 12 bytes, a header size other than length
 * - 12, or over 4096 is refused), and an accepted one must come back
 * byte for byte from vvu_msg_to_buffer().
 *
 * Checked besides: a completion the driver accepts lies inside the buffer
 * it posted with a length within the buffer; vpci_close() / vvu_close()
 * leave no DMA mapping, no MSI-X eventfd registered, no BAR mapping and no
 * fd open.
 */
#include <endian.h>
#include <errno.h>
#include <stdint.h>

#include "fuzz_util.h"
#include "transport/vvu/virtio_pci.h"
#include "util/log.h"
#include "vhost_user/proto.h"
#if __has_include("transport/vvu/vvu.h")
#include "transport/vvu/vvu.h"
#include "vhost_user/msg.h"
#define FV_HAVE_VVU 1
#else
#define FV_HAVE_VVU 0
#endif

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
	unsigned int nmaps, nvectors, nbar_maps;
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

/* A BAR mapping is an inaccessible reservation: nothing under test reads guest RAM here. */
static int fv_region_mmap(struct vfio_dev *d, unsigned int index, uint64_t off, size_t len, void **out)
{
	struct fv_dev *f = dev_of(d);
	void *p;

	if (index >= FV_NBARS || !(f->bars[index].flags & 4) || off > f->bars[index].size ||
	    len > f->bars[index].size - off || len == 0 || len > (1ull << 32))
		return -EINVAL;
	p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	f->nbar_maps++;
	*out = p;
	return 0;
}

static void fv_region_munmap(struct vfio_dev *d, void *addr, size_t len)
{
	struct fv_dev *f = dev_of(d);

	FZ_CHECK(f->nbar_maps > 0, "BAR unmap without a mapping");
	FZ_CHECK(munmap(addr, len) == 0, "BAR unmap of %zu bytes failed", len);
	f->nbar_maps--;
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

static struct fv_dev fv;

static void check_released(const struct fv_dev *f, int fds)
{
	FZ_CHECK(f->nmaps == 0, "%u DMA mappings left after close", f->nmaps);
	FZ_CHECK(f->nvectors == 0, "%u MSI-X vectors left after close", f->nvectors);
	FZ_CHECK(f->nbar_maps == 0, "%u BAR mappings left after close", f->nbar_maps);
	fz_check_fds(fds);
}

static void plain_driver(struct fv_dev *f, struct vfio_dev *vd)
{
	struct vpci p;

	memset(&p, 0, sizeof(p));
	if (vpci_probe(&p, vd) == 0) {
		f->p = &p;
		if (vpci_reset(&p) == 0 && vpci_negotiate(&p, 1ull << 32, 0) == 0 &&
		    vpci_setup_vectors(&p, f->msix < 18 ? f->msix : 18) == 0 &&
		    vpci_setup_queue(&p, 0, 256, FV_BUF, 0, true) == 0 &&
		    vpci_setup_queue(&p, 1, 256, FV_BUF, 1, false) == 0 && vpci_driver_ok(&p) == 0)
			take_completions(&p, &f->in);
	}
	vpci_close(&p);
	f->p = NULL;
}

#if FV_HAVE_VVU
static int fv_open(struct vfio_dev *d, const char *name)
{
	memset(d, 0, sizeof(*d));
	d->ops = &fv_ops;
	d->priv = &fv;
	snprintf(d->name, sizeof(d->name), "%s", name);
	return 0;
}

/* The "device" puts bytes from the input in the next rxq buffer and completes it. */
static void device_sends(struct vpci *p, struct fz_in *in)
{
	struct vpci_queue *vq = &p->q[0];
	uint16_t n = fz_u16(in);
	size_t got;
	const uint8_t *b = fz_take(in, n, &got);

	if (vq->ready && vq->bufs && vq->size) {
		uint16_t id = (uint16_t)(vq->used_seen % vq->size);

		memcpy(vq->bufs + (size_t)id * vq->buf_size, b, got < vq->buf_size ? got : vq->buf_size);
	}
	device_writes_used(p, in);
}

static void vvu_driver(struct fv_dev *f)
{
	static struct vvu v;
	static struct vu_msg msg;

	if (vvu_open(&v, fv_open, "0000:00:05.0", 3) < 0)
		return;
	f->p = &v.p;
	if (vvu_start(&v) == 0) {
		for (unsigned int r = 0; r < FV_ROUNDS && !fz_empty(&f->in); r++) {
			device_sends(&v.p, &f->in);
			/* a message comes with the transport's own eventfd attached, ours to close */
			if (vvu_next(&v, &msg) == 0) {
				FZ_CHECK(msg.nfds <= 1, "%u fds attached to one request", msg.nfds);
				vu_msg_close_fds(&msg);
			}
		}
	}
	vvu_close(&v);
	f->p = NULL;
}
#endif

static void device_values(struct fz_in *in, bool transport)
{
	struct vfio_dev vd = { .ops = &fv_ops, .name = "0000:00:05.0", .priv = &fv };
	int fds = fz_count_fds();

	memset(&fv, 0, sizeof(fv));
	read_device(&fv, in);
#if FV_HAVE_VVU
	if (transport)
		vvu_driver(&fv);
	else
		plain_driver(&fv, &vd);
#else
	(void)transport;
	plain_driver(&fv, &vd);
#endif
	check_released(&fv, fds);
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
	return size <= VU_MAX_PAYLOAD && size == len - VU_HDR_SIZE ? 0 : -EPROTO;
}

#if FV_HAVE_VVU
/* One rxq buffer through the transport's framing, against frame_rule(). */
static void one_buffer(const uint8_t *b, uint32_t len)
{
	static struct vu_msg msg;
	static uint8_t back[VU_HDR_SIZE + VU_MAX_PAYLOAD];
	int want = frame_rule(b, len), rc = vvu_msg_from_buffer(b, len, &msg);

	FZ_CHECK(want == 1 ? rc == -ECONNRESET : want < 0 ? rc == -EBADMSG : rc == 0,
		 "%u-byte buffer: framing says %d, vvu_msg_from_buffer %d", len, want, rc);
	FZ_CHECK(rc < 0 || msg.nfds == 0, "a message from a buffer carries fds");
	if (rc < 0)
		return;
	/* on a little-endian host the wire form is the message itself */
	rc = vvu_msg_to_buffer(&msg, back, sizeof(back));
	FZ_CHECK(rc == (int)len && memcmp(back, b, len) == 0, "%u-byte message does not round-trip (%d)",
		 len, rc);
}
#else
static void one_buffer(const uint8_t *b, uint32_t len)
{
	(void)frame_rule(b, len);
}
#endif

static void messages(struct fz_in *in)
{
	while (!fz_empty(in)) {
		uint32_t len = fz_u32(in) % (VU_HDR_SIZE + VU_MAX_PAYLOAD + 16);
		size_t got;
		const uint8_t *b = fz_take(in, len, &got);

		one_buffer(b, (uint32_t)got);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t mode;

	log_set_level(LOG_LVL_ERROR);
	mode = fz_u8(&in);

	if (mode & 1)
		messages(&in);
	else
		device_values(&in, mode & 2);
	return 0;
}
