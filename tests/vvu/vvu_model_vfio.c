/* SPDX-License-Identifier: MIT */
/*
 * The in-process front door: struct vfio_ops over a vvu_model, for a
 * driver in the same process. It adds what a VFIO container adds to a
 * device: one user at a time, and on close the IOMMU mappings and MSI-X
 * eventfds are dropped and the device is reset.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "transport/vvu/vfio.h"
#include "vvu_model.h"

static pthread_mutex_t attach_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vvm *attached;
static bool in_use;

void vvm_vfio_attach(struct vvm *m)
{
	pthread_mutex_lock(&attach_lock);
	attached = m;
	pthread_mutex_unlock(&attach_lock);
}

static struct vvm *model(struct vfio_dev *d)
{
	return d->priv;
}

static int fd_region_info(struct vfio_dev *d, unsigned int index, struct vfio_region_desc *out)
{
	return vvm_region_size(model(d), index, &out->size, &out->flags);
}

static int fd_region_read(struct vfio_dev *d, unsigned int index, uint64_t off, void *buf,
			  size_t len)
{
	return vvm_region_read(model(d), index, off, buf, len);
}

static int fd_region_write(struct vfio_dev *d, unsigned int index, uint64_t off, const void *buf,
			   size_t len)
{
	return vvm_region_write(model(d), index, off, buf, len);
}

/* BAR 4 is already a reservation in this process: a "mapping" is a pointer into it. */
static int fd_region_mmap(struct vfio_dev *d, unsigned int index, uint64_t off, size_t len,
			  void **out)
{
	if (index != VVM_BAR_SHM)
		return -EINVAL;
	return vvm_shm_ptr(model(d), off, len, out);
}

static void fd_region_munmap(struct vfio_dev *d, void *addr, size_t len)
{
	(void)d;
	(void)addr;
	(void)len;
}

static int fd_iova_ranges(struct vfio_dev *d, struct vfio_iova_range *out, unsigned int max)
{
	uint64_t s[2], e[2];
	unsigned int n = vvm_iova_ranges(s, e);

	(void)d;
	if (n > max)
		n = max;
	for (unsigned int i = 0; i < n; i++)
		out[i] = (struct vfio_iova_range){ s[i], e[i] };
	return (int)n;
}

static int fd_iova_pgsizes(struct vfio_dev *d, uint64_t *out)
{
	(void)d;
	*out = (1ull << 12) | (1ull << 21) | (1ull << 30);
	return 0;
}

static int fd_dma_map(struct vfio_dev *d, void *vaddr, uint64_t iova, uint64_t size)
{
	return vvm_dma_map(model(d), vaddr, iova, size);
}

static int fd_dma_unmap(struct vfio_dev *d, uint64_t iova, uint64_t size)
{
	return vvm_dma_unmap(model(d), iova, size);
}

static int fd_msix_count(struct vfio_dev *d, unsigned int *out)
{
	(void)d;
	*out = VVM_NVECTORS;
	return 0;
}

static int fd_set_msix(struct vfio_dev *d, const int *efds, unsigned int n)
{
	return vvm_set_msix(model(d), efds, n);
}

static int fd_reset(struct vfio_dev *d)
{
	vvm_flr(model(d));
	return 0;
}

static void fd_close(struct vfio_dev *d)
{
	struct vvm *m = model(d);

	vvm_set_msix(m, NULL, 0);
	vvm_dma_unmap(m, 0, UINT64_MAX);
	vvm_flr(m);
	d->priv = NULL;
	pthread_mutex_lock(&attach_lock);
	in_use = false;
	pthread_mutex_unlock(&attach_lock);
}

static const struct vfio_ops model_ops = {
	.region_info = fd_region_info,
	.region_read = fd_region_read,
	.region_write = fd_region_write,
	.region_mmap = fd_region_mmap,
	.region_munmap = fd_region_munmap,
	.iova_ranges = fd_iova_ranges,
	.iova_pgsizes = fd_iova_pgsizes,
	.dma_map = fd_dma_map,
	.dma_unmap = fd_dma_unmap,
	.msix_count = fd_msix_count,
	.set_msix = fd_set_msix,
	.reset = fd_reset,
	.close = fd_close,
};

/* "DDDD:BB:DD.F" from "DDDD:BB:DD.F" or "BB:DD.F"; anything else is refused. */
static int canonical_name(const char *in, char out[13])
{
	unsigned int dom = 0, bus, dev, fn;
	char tail;

	if (sscanf(in, "%4x:%2x:%2x.%1u%c", &dom, &bus, &dev, &fn, &tail) != 4 &&
	    (dom = 0, sscanf(in, "%2x:%2x.%1u%c", &bus, &dev, &fn, &tail) != 3))
		return -EINVAL;
	if (dev > 0x1f || fn > 7)
		return -EINVAL;
	snprintf(out, 13, "%04x:%02x:%02x.%u", dom, bus, dev, fn);
	return 0;
}

int vvm_vfio_open(struct vfio_dev *d, const char *name)
{
	char canon[13];
	const char *base = strrchr(name, '/');
	int rc = canonical_name(base ? base + 1 : name, canon);

	if (rc < 0) {
		fprintf(stderr, "vvu model: '%s' is not a PCI device name\n", name);
		return rc;
	}
	pthread_mutex_lock(&attach_lock);
	if (!attached)
		rc = -ENODEV;
	else if (in_use)
		rc = -EBUSY;
	else
		in_use = true;
	pthread_mutex_unlock(&attach_lock);
	if (rc < 0) {
		fprintf(stderr, "vvu model: %s: %s\n", canon,
			rc == -EBUSY ? "already open" : "no model device attached");
		return rc;
	}
	memset(d, 0, sizeof(*d));
	d->ops = &model_ops;
	snprintf(d->name, sizeof(d->name), "%s", canon);
	d->priv = attached;
	return 0;
}
