/* SPDX-License-Identifier: MIT */
/*
 * vvu_proxy - the VVU proxy device as a test peer (run-vvu.sh): the VVU
 * device model of tests/vvu (device + vhost-user bridge) behind a second
 * front door, a vfio-user server (QEMU's docs/interop/vfio-user.rst), so
 * that a real QEMU (>= 10.1, -device vfio-user-pci) presents the device to
 * a real "device VM" whose kernel binds it to vfio-pci, while a real
 * "sibling VM" (QEMU with -device vhost-user-vsock-pci) is the bridge's
 * vhost-user front end.
 *
 *   vvu_proxy --vfio-user SOCK --vhost-user SOCK --bar4 FILE
 *             [--bar4-size BYTES] [--control FIFO] [--fault NAME[:AT]]
 *
 * BAR 4 and the sibling's memory. A region that QEMU mmaps is one fd
 * given at GET_REGION_INFO time, when the device VM starts, long before
 * any sibling connects; and the sibling's memory must be in BAR 4 without
 * a copy. So BAR 4 is a file the proxy creates (FILE, on a tmpfs, sized
 * to the BAR) and the sibling's QEMU is started with all its RAM in that
 * very file (-object memory-backend-file,mem-path=FILE,share=on); every
 * fd of the sibling's SET_MEM_TABLE must be that file (same inode), or the
 * table is refused. The draft's layout puts the regions back to back in
 * table order; here BAR offset = file offset, so the table is rewritten
 * (mem_filter below) to regions that ARE back to back at their file
 * offsets: QEMU cuts its RAM around holes (below 1 MiB: the SMRAM/VGA
 * window at 0xa0000-0xc0000), and a hole of the same size in guest
 * address, QEMU address and file offset is closed by merging the two
 * regions over it. The device VM then sees the hole's bytes of the file,
 * which the sibling's guest never uses. A table that cannot be made so
 * (first region not at file offset 0, regions out of file order, a gap
 * that differs between the three address spaces) is refused: the
 * session ends and the proxy says why.
 *
 * DMA. The device VM's RAM must be a shared memfd: DMA_MAPs then carry
 * fds, and each is mapped into a reservation at base + IOVA, so
 * consecutive pages are consecutive addresses and the model
 * (dma_pages) keeps one entry per contiguous run. A DMA_MAP without fd is
 * acknowledged but not reachable (the model's access to it is a DMA
 * fault, logged): DMA_READ/WRITE messages are not implemented.
 *
 * Interrupts: one eventfd per MSI-X vector from SET_IRQS, owned here and
 * lent to the model. Doorbells (BAR 2 writes, trapped) reach the model
 * as REGION_WRITEs; the model's hooks write the sibling's call eventfds.
 *
 * --control FIFO: lines "fault NAME AT" arm a message fault (vvm_arm_fault)
 * for the next session; "stats" prints the counters. --fault arms one
 * from the start. The proxy exits when the device VM's QEMU disconnects,
 * printing its counters.
 *
 * Every vfio-user message is checked (size, counts, offsets, fds) before
 * use; a malformed one gets an error reply or, when its framing cannot be
 * trusted, ends the connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhost_user/proto.h"
#include "vvu_model.h"

/* vfio-user commands (vfio-user.rst, "Commands") */
enum {
	VU_CMD_VERSION = 1,
	VU_CMD_DMA_MAP = 2,
	VU_CMD_DMA_UNMAP = 3,
	VU_CMD_GET_INFO = 4,
	VU_CMD_GET_REGION_INFO = 5,
	VU_CMD_GET_IRQ_INFO = 7,
	VU_CMD_SET_IRQS = 8,
	VU_CMD_REGION_READ = 9,
	VU_CMD_REGION_WRITE = 10,
	VU_CMD_DEVICE_RESET = 13,
};

#define HDR 16u
#define FLAG_REPLY 0x1u
#define FLAG_NO_REPLY 0x10u
#define FLAG_ERROR 0x20u
#define MAX_FDS 32u
#define MAX_XFER 4096u               /* max_data_xfer_size we accept */
#define MAX_MSG (HDR + 64u + MAX_XFER)
#define NUM_REGIONS 9u               /* VFIO_PCI_NUM_REGIONS */
#define NUM_IRQS 5u                  /* VFIO_PCI_NUM_IRQS */
#define IRQ_MSIX 2u                  /* VFIO_PCI_MSIX_IRQ_INDEX */
#define IOVA_SPACE (1ull << 39)      /* the model's IOVA_TOP + 1 */
#define PAGE 4096ull
#define DEFAULT_BAR4 (256ull << 20)

/* VFIO_IRQ_SET_* */
#define IRQ_DATA_NONE 1u
#define IRQ_DATA_BOOL 2u
#define IRQ_DATA_EVENTFD 4u
#define IRQ_ACTION_TRIGGER 32u

struct proxy {
	struct vvm *m;
	struct vvb *bridge;
	int bar4_fd;
	uint64_t bar4_size;
	struct stat bar4_st;
	uint8_t *iova_base;          /* IOVA_SPACE of address space, PROT_NONE where unmapped */
	int msix[VVM_NVECTORS];
	int client;
	bool no_reply;               /* the command being served asked for none */
	int control;
	unsigned long msgs, dma_maps, dma_maps_nofd, dma_unmaps, region_rw, bad_msgs;
	unsigned long tables_rewritten, tables_refused;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* ---- the sibling's memory table ------------------------------------------ */

static int same_file(const struct proxy *p, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev == p->bar4_st.st_dev && st.st_ino == p->bar4_st.st_ino;
}

/* @b continues @a across a hole of the same size in all three address spaces. */
static bool continues(const struct vu_mem_region *a, const struct vu_mem_region *b, uint64_t *gap)
{
	uint64_t end = a->mmap_offset + a->memory_size;

	if (b->mmap_offset < end)
		return false;
	*gap = b->mmap_offset - end;
	return b->guest_phys_addr == a->guest_phys_addr + a->memory_size + *gap &&
	       b->userspace_addr == a->userspace_addr + a->memory_size + *gap;
}

static void log_table(const char *what, const struct vu_mem_table *t)
{
	fprintf(stderr, "vvu proxy: %s memory table, %u regions:\n", what, t->nregions);
	for (unsigned int i = 0; i < t->nregions && i < VU_MAX_MEM_REGIONS; i++)
		fprintf(stderr, "vvu proxy:   gpa 0x%" PRIx64 " size 0x%" PRIx64 " uaddr 0x%" PRIx64
			" offset 0x%" PRIx64 "\n", t->regions[i].guest_phys_addr, t->regions[i].memory_size,
			t->regions[i].userspace_addr, t->regions[i].mmap_offset);
}

/* Merge @t's regions, over their holes, into one at file offset 0. Return: 0 or -EINVAL. */
static int merge_regions(struct proxy *p, struct vu_mem_table *t)
{
	struct vu_mem_region *out = t->regions;
	uint64_t gap, end;

	if (out[0].mmap_offset != 0) {
		fprintf(stderr, "vvu proxy: memory table refused: its first region is at file offset "
			"0x%" PRIx64 ", BAR 4 offset 0 needs 0\n", out[0].mmap_offset);
		return -EINVAL;
	}
	for (unsigned int i = 1; i < t->nregions; i++) {
		if (!continues(out, &t->regions[i], &gap)) {
			fprintf(stderr, "vvu proxy: memory table refused: region %u does not follow region "
				"%u in file order with one hole in guest, QEMU and file addresses\n", i, i - 1);
			return -EINVAL;
		}
		out->memory_size += gap + t->regions[i].memory_size;
	}
	end = out->mmap_offset + out->memory_size;
	if (end < out->memory_size || end > p->bar4_size) {
		fprintf(stderr, "vvu proxy: memory table refused: 0x%" PRIx64 " bytes do not fit BAR 4 "
			"(0x%" PRIx64 ")\n", end, p->bar4_size);
		return -EINVAL;
	}
	t->nregions = 1;
	return 0;
}

static int mem_filter(void *opaque, uint8_t *msg, size_t *len, int *fds, unsigned int *nfdsp)
{
	unsigned int nfds = *nfdsp;
	struct proxy *p = opaque;
	struct vu_mem_table t;
	uint32_t size;
	int rc;

	memcpy(&size, msg + 8, 4);
	memset(&t, 0, sizeof(t));
	memcpy(&t, msg + VU_HDR_SIZE, size < sizeof(t) ? size : sizeof(t));
	if (size < 8 || t.nregions == 0 || t.nregions > VU_MAX_MEM_REGIONS ||
	    size < 8 + 32ull * t.nregions || nfds != t.nregions) {
		fprintf(stderr, "vvu proxy: memory table refused: %u regions, %u fds, %u bytes\n",
			t.nregions, nfds, size);
		p->tables_refused++;
		return -EINVAL;
	}
	log_table("sibling's", &t);
	for (unsigned int i = 0; i < nfds; i++) {
		if (!same_file(p, fds[i])) {
			fprintf(stderr, "vvu proxy: memory table refused: region %u is not in the BAR 4 file "
				"(start the sibling with mem-path= that file, share=on)\n", i);
			p->tables_refused++;
			return -EINVAL;
		}
	}
	rc = merge_regions(p, &t);
	if (rc < 0) {
		p->tables_refused++;
		return rc;
	}
	/* the bridge maps one fd per region: the first serves the merged one */
	for (unsigned int i = t.nregions; i < nfds; i++)
		close(fds[i]);
	*nfdsp = t.nregions;
	size = 8 + 32 * t.nregions;
	memcpy(msg + 8, &size, 4);
	memcpy(msg + VU_HDR_SIZE, &t, size);
	*len = VU_HDR_SIZE + size;
	log_table("device's", &t);
	p->tables_rewritten++;
	return 0;
}

/* ---- the vfio-user connection -------------------------------------------- */

static int send_msg(struct proxy *p, const uint8_t *hdr_in, uint32_t err, const void *payload,
		    uint32_t plen, const int *fds, unsigned int nfds)
{
	uint8_t hdr[HDR];
	char ctl[CMSG_SPACE(sizeof(int) * 2)];
	struct iovec iov[2] = { { hdr, HDR }, { (void *)payload, err ? 0 : plen } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t want = HDR + (err ? 0 : plen), n;

	if (p->no_reply)
		return 0;
	memcpy(hdr, hdr_in, 4); /* message id and command */
	wr32(hdr + 4, (uint32_t)want);
	wr32(hdr + 8, FLAG_REPLY | (err ? FLAG_ERROR : 0));
	wr32(hdr + 12, err);
	if (nfds && !err) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(p->client, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != want) {
		fprintf(stderr, "vvu proxy: reply to command %u: %s\n", (unsigned int)(hdr[2] | hdr[3] << 8),
			n < 0 ? strerror(errno) : "short write");
		return -EIO;
	}
	return 0;
}

static int reply_err(struct proxy *p, const uint8_t *hdr, int rc)
{
	return send_msg(p, hdr, (uint32_t)(rc < 0 ? -rc : EINVAL), NULL, 0, NULL, 0);
}

static int reply(struct proxy *p, const uint8_t *hdr, const void *payload, uint32_t plen)
{
	return send_msg(p, hdr, 0, payload, plen, NULL, 0);
}

static int do_version(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen)
{
	static const char caps[] = "{\"capabilities\":{\"max_msg_fds\":16,\"max_data_xfer_size\":4096,"
				   "\"pgsizes\":4096,\"max_dma_maps\":65535}}";
	uint8_t out[4 + sizeof(caps)];
	uint16_t major;

	if (plen < 4)
		return reply_err(p, hdr, -EINVAL);
	memcpy(&major, pl, 2);
	if (major != 0) {
		fprintf(stderr, "vvu proxy: client speaks vfio-user %u, this proxy 0\n", major);
		return reply_err(p, hdr, -ENOTSUP);
	}
	memset(out, 0, 4);
	memcpy(out + 4, caps, sizeof(caps));
	return reply(p, hdr, out, sizeof(out));
}

static bool in_iova_space(uint64_t iova, uint64_t size)
{
	return size != 0 && iova < IOVA_SPACE && size <= IOVA_SPACE - iova;
}

static void iova_release(struct proxy *p, uint64_t iova, uint64_t size)
{
	if (mmap(p->iova_base + iova, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
		 -1, 0) == MAP_FAILED)
		fprintf(stderr, "vvu proxy: cannot release IOVA 0x%" PRIx64 ": %s\n", iova, strerror(errno));
}

static int do_dma_map(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen,
		      const int *fds, unsigned int nfds)
{
	uint64_t off, iova, size;
	uint32_t flags;
	int prot, rc;

	if (plen < 32 || nfds > 1)
		return reply_err(p, hdr, -EINVAL);
	flags = rd32(pl + 4);
	off = rd64(pl + 8);
	iova = rd64(pl + 16);
	size = rd64(pl + 24);
	if (nfds == 0) {
		p->dma_maps_nofd++;
		return reply(p, hdr, NULL, 0); /* reachable only by DMA_READ/WRITE: not implemented */
	}
	if (!in_iova_space(iova, size) || iova % PAGE || size % PAGE || off % PAGE) {
		fprintf(stderr, "vvu proxy: DMA_MAP 0x%" PRIx64 "+0x%" PRIx64 " refused\n", iova, size);
		return reply_err(p, hdr, -EINVAL);
	}
	prot = (flags & 1 ? PROT_READ : 0) | (flags & 2 ? PROT_WRITE : 0);
	if (mmap(p->iova_base + iova, size, prot, MAP_SHARED | MAP_FIXED, fds[0], (off_t)off) == MAP_FAILED) {
		rc = -errno;
		fprintf(stderr, "vvu proxy: DMA_MAP 0x%" PRIx64 ": mmap: %s\n", iova, strerror(-rc));
		iova_release(p, iova, size);
		return reply_err(p, hdr, rc);
	}
	rc = vvm_dma_map(p->m, p->iova_base + iova, iova, size);
	if (rc < 0) {
		fprintf(stderr, "vvu proxy: DMA_MAP 0x%" PRIx64 "+0x%" PRIx64 ": %s\n", iova, size,
			strerror(-rc));
		/* EEXIST: the old mapping is still the model's, keep its pages */
		if (rc != -EEXIST)
			iova_release(p, iova, size);
		return reply_err(p, hdr, rc);
	}
	p->dma_maps++;
	return reply(p, hdr, NULL, 0);
}

/* Unmapping is lenient (VFIO.md: empty unmaps over the whole space after each IOMMU flush). */
static int do_dma_unmap(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen)
{
	uint64_t iova, size;

	if (plen < 24)
		return reply_err(p, hdr, -EINVAL);
	iova = rd64(pl + 8);
	size = rd64(pl + 16);
	p->dma_unmaps++;
	if (iova < IOVA_SPACE && size) {
		uint64_t n = size > IOVA_SPACE - iova ? IOVA_SPACE - iova : size;
		int rc = vvm_dma_unmap(p->m, iova, n);

		if (rc < 0)
			return reply_err(p, hdr, rc);
		iova_release(p, iova & ~(PAGE - 1), ((iova + n + PAGE - 1) & ~(PAGE - 1)) - (iova & ~(PAGE - 1)));
	}
	return reply(p, hdr, pl, 24);
}

static int do_get_info(struct proxy *p, const uint8_t *hdr, uint32_t plen)
{
	uint8_t out[16];

	if (plen < 16)
		return reply_err(p, hdr, -EINVAL);
	wr32(out, 16);
	wr32(out + 4, 1 | 2); /* VFIO_DEVICE_FLAGS_RESET | _PCI */
	wr32(out + 8, NUM_REGIONS);
	wr32(out + 12, NUM_IRQS);
	return reply(p, hdr, out, sizeof(out));
}

static int do_region_info(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen)
{
	uint8_t out[32];
	uint32_t index, flags;
	uint64_t size;
	int rc;

	if (plen < 32)
		return reply_err(p, hdr, -EINVAL);
	index = rd32(pl + 8);
	if (index >= NUM_REGIONS)
		return reply_err(p, hdr, -EINVAL);
	rc = vvm_region_size(p->m, index, &size, &flags);
	if (rc < 0)
		return reply_err(p, hdr, rc);
	memset(out, 0, sizeof(out));
	wr32(out, 32);
	wr32(out + 4, flags);
	wr32(out + 8, index);
	wr64(out + 16, size);
	if (index == VVM_BAR_SHM)
		return send_msg(p, hdr, 0, out, sizeof(out), &p->bar4_fd, 1);
	return reply(p, hdr, out, sizeof(out));
}

static int do_irq_info(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen)
{
	uint8_t out[16];
	uint32_t index;

	if (plen < 16)
		return reply_err(p, hdr, -EINVAL);
	index = rd32(pl + 8);
	if (index >= NUM_IRQS)
		return reply_err(p, hdr, -EINVAL);
	wr32(out, 16);
	/* MSI-X only: EVENTFD | NORESIZE; the config space has no INTx pin and no MSI cap */
	wr32(out + 4, index == IRQ_MSIX ? 1 | 8 : 0);
	wr32(out + 8, index);
	wr32(out + 12, index == IRQ_MSIX ? VVM_NVECTORS : 0);
	return reply(p, hdr, out, sizeof(out));
}

/* The model gets the new table before the old fds close: it never writes a closed fd. */
static int msix_apply(struct proxy *p, const int *next)
{
	int old[VVM_NVECTORS];
	int rc;

	memcpy(old, p->msix, sizeof(old));
	rc = vvm_set_msix(p->m, next, VVM_NVECTORS);
	if (rc < 0)
		return rc;
	memcpy(p->msix, next, sizeof(p->msix));
	for (unsigned int i = 0; i < VVM_NVECTORS; i++) {
		if (old[i] >= 0 && old[i] != p->msix[i])
			close(old[i]);
	}
	return 0;
}

static void msix_off(struct proxy *p)
{
	vvm_set_msix(p->m, NULL, 0);
	for (unsigned int i = 0; i < VVM_NVECTORS; i++) {
		if (p->msix[i] >= 0)
			close(p->msix[i]);
		p->msix[i] = -1;
	}
}

static int do_set_irqs(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen,
		       int *fds, unsigned int nfds)
{
	int next[VVM_NVECTORS];
	uint32_t flags, index, start, count;
	int rc;

	if (plen < 20)
		return reply_err(p, hdr, -EINVAL);
	flags = rd32(pl + 4);
	index = rd32(pl + 8);
	start = rd32(pl + 12);
	count = rd32(pl + 16);
	if (index != IRQ_MSIX)
		return nfds ? reply_err(p, hdr, -EINVAL) : reply(p, hdr, NULL, 0);
	if ((flags & IRQ_DATA_NONE) && count == 0) {
		msix_off(p);
		return reply(p, hdr, NULL, 0);
	}
	if (!(flags & IRQ_ACTION_TRIGGER) || !(flags & IRQ_DATA_EVENTFD))
		return reply(p, hdr, NULL, 0); /* masking and software triggers: nothing to keep */
	if (start > VVM_NVECTORS || count > VVM_NVECTORS - start || (nfds && nfds != count))
		return reply_err(p, hdr, -EINVAL);
	memcpy(next, p->msix, sizeof(next));
	for (uint32_t i = 0; i < count; i++)
		next[start + i] = nfds ? fds[i] : -1;
	rc = msix_apply(p, next);
	if (rc < 0)
		return reply_err(p, hdr, rc);
	for (unsigned int i = 0; i < nfds; i++)
		fds[i] = -1; /* kept */
	return reply(p, hdr, NULL, 0);
}

static int do_region_rw(struct proxy *p, const uint8_t *hdr, uint16_t cmd, const uint8_t *pl,
			uint32_t plen)
{
	uint8_t out[16 + MAX_XFER];
	uint64_t off;
	uint32_t region, count;
	int rc;

	if (plen < 16)
		return reply_err(p, hdr, -EINVAL);
	off = rd64(pl);
	region = rd32(pl + 8);
	count = rd32(pl + 12);
	if (count == 0 || count > MAX_XFER || (cmd == VU_CMD_REGION_WRITE && plen - 16 != count))
		return reply_err(p, hdr, -EINVAL);
	p->region_rw++;
	memcpy(out, pl, 16);
	if (cmd == VU_CMD_REGION_READ) {
		rc = vvm_region_read(p->m, region, off, out + 16, count);
		return rc < 0 ? reply_err(p, hdr, rc) : reply(p, hdr, out, 16 + count);
	}
	rc = vvm_region_write(p->m, region, off, pl + 16, count);
	return rc < 0 ? reply_err(p, hdr, rc) : reply(p, hdr, out, 16);
}

static int dispatch(struct proxy *p, const uint8_t *hdr, const uint8_t *pl, uint32_t plen, int *fds,
		    unsigned int nfds)
{
	uint16_t cmd;

	memcpy(&cmd, hdr + 2, 2);
	switch (cmd) {
	case VU_CMD_VERSION:
		return do_version(p, hdr, pl, plen);
	case VU_CMD_DMA_MAP:
		return do_dma_map(p, hdr, pl, plen, fds, nfds);
	case VU_CMD_DMA_UNMAP:
		return do_dma_unmap(p, hdr, pl, plen);
	case VU_CMD_GET_INFO:
		return do_get_info(p, hdr, plen);
	case VU_CMD_GET_REGION_INFO:
		return do_region_info(p, hdr, pl, plen);
	case VU_CMD_GET_IRQ_INFO:
		return do_irq_info(p, hdr, pl, plen);
	case VU_CMD_SET_IRQS:
		return do_set_irqs(p, hdr, pl, plen, fds, nfds);
	case VU_CMD_REGION_READ:
	case VU_CMD_REGION_WRITE:
		return do_region_rw(p, hdr, cmd, pl, plen);
	case VU_CMD_DEVICE_RESET:
		vvm_flr(p->m);
		return reply(p, hdr, NULL, 0);
	default:
		fprintf(stderr, "vvu proxy: vfio-user command %u not supported\n", cmd);
		return reply_err(p, hdr, -ENOTSUP);
	}
}

/* One command from the client and its reply. Return: 0, or -errno to end the connection. */
static int serve_one(struct proxy *p)
{
	static uint8_t msg[MAX_MSG];
	char ctl[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct iovec iov = { msg, HDR };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	int fds[MAX_FDS];
	unsigned int nfds;
	uint32_t size, flags;
	ssize_t n;
	int rc;

	do
		n = recvmsg(p->client, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	nfds = vvb_cmsg_fds(&mh, fds, MAX_FDS);
	size = rd32(msg + 4);
	flags = rd32(msg + 8);
	rc = 0;
	if (n != HDR || (mh.msg_flags & MSG_CTRUNC) || size < HDR || size > MAX_MSG) {
		fprintf(stderr, "vvu proxy: malformed vfio-user message (%zd header bytes, size %u)\n", n,
			size);
		p->bad_msgs++;
		rc = -EPROTO;
	} else if ((flags & 0xf) != 0) {
		fprintf(stderr, "vvu proxy: unexpected vfio-user reply from the client\n");
		rc = -EPROTO;
	} else {
		rc = vvb_read_full(p->client, msg + HDR, size - HDR);
	}
	if (rc == 0) {
		p->msgs++;
		p->no_reply = flags & FLAG_NO_REPLY;
		rc = dispatch(p, msg, msg + HDR, size - HDR, fds, nfds);
		p->no_reply = false;
	}
	for (unsigned int i = 0; i < nfds; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	return rc;
}

/* ---- set-up, control, main loop ------------------------------------------ */

static void print_stats(struct proxy *p)
{
	struct vvm_stats s;

	vvm_stats(p->m, &s);
	fprintf(stderr, "vvu proxy: stats: vfio-user msgs %lu bad %lu, dma maps %lu (no fd %lu) unmaps %lu, "
		"region rw %lu; sessions %lu, tables rewritten %lu refused %lu; rx msgs %lu disconnects %lu, "
		"tx msgs %lu, dma faults %lu, ring faults %lu, doorbells %lu lost %lu, notifications %lu, "
		"resets %lu, faults injected %lu\n",
		p->msgs, p->bad_msgs, p->dma_maps, p->dma_maps_nofd, p->dma_unmaps, p->region_rw,
		vvb_sessions(p->bridge), p->tables_rewritten, p->tables_refused, s.rx_msgs,
		s.rx_disconnects, s.tx_msgs, s.dma_faults, s.ring_faults, s.doorbells, s.doorbells_lost,
		s.notifications, s.resets, s.faults_injected);
}

static int arm(struct proxy *p, const char *name, unsigned int at)
{
	enum vvm_fault f;
	int rc = vvm_fault_parse(name, &f);

	if (rc == 0)
		rc = vvm_arm_fault(p->m, f, at);
	if (rc < 0)
		fprintf(stderr, "vvu proxy: cannot arm fault '%s'\n", name);
	else
		fprintf(stderr, "vvu proxy: fault %s armed at rx message %u\n", name, at);
	return rc;
}

static void control_line(struct proxy *p, char *line)
{
	char name[32];
	unsigned int at;

	if (sscanf(line, "fault %31s %u", name, &at) == 2)
		arm(p, name, at);
	else if (strncmp(line, "stats", 5) == 0)
		print_stats(p);
	else if (line[0])
		fprintf(stderr, "vvu proxy: unknown control line '%s'\n", line);
}

static void read_control(struct proxy *p)
{
	static char buf[256];
	static size_t have;
	ssize_t n = read(p->control, buf + have, sizeof(buf) - 1 - have);
	char *nl;

	if (n <= 0)
		return;
	have += (size_t)n;
	buf[have] = 0;
	while ((nl = strchr(buf, '\n'))) {
		*nl = 0;
		control_line(p, buf);
		have -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, have + 1);
	}
	if (have == sizeof(buf) - 1)
		have = 0; /* a line that long is no command */
}

static int open_bar4(struct proxy *p, const char *path)
{
	p->bar4_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->bar4_fd < 0 || ftruncate(p->bar4_fd, (off_t)p->bar4_size) < 0 ||
	    fstat(p->bar4_fd, &p->bar4_st) < 0) {
		fprintf(stderr, "vvu proxy: BAR 4 file %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int listen_on(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vvu proxy: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	unlink(path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
		fprintf(stderr, "vvu proxy: cannot listen on %s: %s\n", path, strerror(errno));
		return -1;
	}
	return s;
}

/* Serve the device VM's QEMU until it goes. Return: 0 on its disconnect, 1 on a protocol error. */
static int serve(struct proxy *p, int lsock)
{
	int rc = 0;

	while (!stop && p->client < 0) {
		struct pollfd pf[2] = { { lsock, POLLIN, 0 }, { p->control, POLLIN, 0 } };

		if (poll(pf, p->control >= 0 ? 2 : 1, 500) > 0) {
			if (pf[1].revents & POLLIN)
				read_control(p);
			if (pf[0].revents & POLLIN)
				p->client = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		}
	}
	if (p->client >= 0)
		fprintf(stderr, "vvu proxy: device VM's QEMU connected\n");
	while (!stop && p->client >= 0) {
		struct pollfd pf[2] = { { p->client, POLLIN, 0 }, { p->control, POLLIN, 0 } };

		if (poll(pf, p->control >= 0 ? 2 : 1, 500) <= 0)
			continue;
		if (pf[1].revents & POLLIN)
			read_control(p);
		if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		rc = serve_one(p);
		if (rc < 0) {
			fprintf(stderr, "vvu proxy: device VM's QEMU %s\n",
				rc == -ECONNRESET ? "disconnected" : strerror(-rc));
			break;
		}
	}
	return rc == 0 || rc == -ECONNRESET ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: vvu_proxy --vfio-user SOCK --vhost-user SOCK --bar4 FILE "
			"[--bar4-size BYTES] [--control FIFO] [--fault NAME[:AT]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vfio-user", required_argument, NULL, 'v' }, { "vhost-user", required_argument, NULL, 'u' },
		{ "bar4", required_argument, NULL, 'b' },      { "bar4-size", required_argument, NULL, 's' },
		{ "control", required_argument, NULL, 'c' },   { "fault", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *vfio_path = NULL, *vu_path = NULL, *bar4 = NULL, *control = NULL, *fault = NULL;
	struct proxy p = { .bar4_size = DEFAULT_BAR4, .client = -1, .control = -1 };
	struct vvm_config cfg = { .dma_pages = true };
	int c, lsock, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v': vfio_path = optarg; break;
		case 'u': vu_path = optarg; break;
		case 'b': bar4 = optarg; break;
		case 's': p.bar4_size = strtoull(optarg, NULL, 0); break;
		case 'c': control = optarg; break;
		case 'f': fault = optarg; break;
		default: usage();
		}
	}
	if (!vfio_path || !vu_path || !bar4 || optind != argc)
		usage();
	for (unsigned int i = 0; i < VVM_NVECTORS; i++)
		p.msix[i] = -1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	cfg.shm_size = p.bar4_size;
	rc = vvm_new(&p.m, &cfg);
	if (rc < 0) {
		fprintf(stderr, "vvu proxy: device: %s (BAR 4 size must be a power of two)\n", strerror(-rc));
		return 1;
	}
	if (open_bar4(&p, bar4) < 0)
		return 1;
	p.iova_base = mmap(NULL, IOVA_SPACE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p.iova_base == MAP_FAILED) {
		fprintf(stderr, "vvu proxy: cannot reserve the IOVA space: %s\n", strerror(errno));
		return 1;
	}
	if (control && (p.control = open(control, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fprintf(stderr, "vvu proxy: control %s: %s\n", control, strerror(errno));
		return 1;
	}
	if (fault) {
		char name[32];
		unsigned int at = 0;

		if (sscanf(fault, "%31[^:]:%u", name, &at) < 1 || arm(&p, name, at) < 0)
			return 1;
	}
	rc = vvb_start_filtered(&p.bridge, p.m, vu_path, NULL, mem_filter, &p);
	if (rc < 0) {
		fprintf(stderr, "vvu proxy: bridge on %s: %s\n", vu_path, strerror(-rc));
		return 1;
	}
	lsock = listen_on(vfio_path);
	if (lsock < 0)
		return 1;
	fprintf(stderr, "vvu proxy: vfio-user on %s, vhost-user on %s (once the driver is up), "
		"BAR 4 %s (0x%" PRIx64 " bytes)\n", vfio_path, vu_path, bar4, p.bar4_size);
	rc = serve(&p, lsock);
	print_stats(&p);
	vvb_stop(p.bridge);
	msix_off(&p);
	vvm_dma_unmap(p.m, 0, UINT64_MAX);
	vvm_free(p.m);
	close(lsock);
	unlink(vfio_path);
	return rc;
}
