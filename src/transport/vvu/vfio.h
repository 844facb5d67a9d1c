/* SPDX-License-Identifier: MIT */
/*
 * VFIO device access behind a small table of functions, so that the
 * virtio-PCI driver above it runs unchanged on the kernel's VFIO (vfio_sys.c)
 * and on a device model in the tests.
 *
 * Region indices are the kernel's VFIO_PCI_*_REGION_INDEX numbers (BAR 0-5,
 * ROM 6, config space 7); the MSI-X interrupt index is VFIO_PCI_MSIX_IRQ_INDEX.
 * Everything the device reports (region sizes, flags, IOVA ranges, vector
 * counts) is input to be checked by the caller like any other.
 */
#ifndef TRANSPORT_VVU_VFIO_H
#define TRANSPORT_VVU_VFIO_H

#include <stddef.h>
#include <stdint.h>

#define VFIO_DEV_MAX_IOVA_RANGES 16u

struct vfio_region_desc {
	uint64_t size;   /* bytes; 0 for a region the device lacks */
	uint32_t flags;  /* VFIO_REGION_INFO_FLAG_READ | _WRITE | _MMAP */
};

struct vfio_iova_range {
	uint64_t start;  /* first usable IOVA */
	uint64_t end;    /* last usable IOVA (inclusive) */
};

struct vfio_dev;

/*
 * Every function returns 0 (or a count, where said) or a negative errno,
 * and logs nothing: the caller decides and logs once.
 */
struct vfio_ops {
	int (*region_info)(struct vfio_dev *d, unsigned int index, struct vfio_region_desc *out);
	/* exactly @len bytes at @off of region @index (config space, BARs) */
	int (*region_read)(struct vfio_dev *d, unsigned int index, uint64_t off, void *buf, size_t len);
	int (*region_write)(struct vfio_dev *d, unsigned int index, uint64_t off, const void *buf,
			    size_t len);
	/* map [off, off + len) of a mmap-capable region, shared, read/write */
	int (*region_mmap)(struct vfio_dev *d, unsigned int index, uint64_t off, size_t len,
			   void **out);
	void (*region_munmap)(struct vfio_dev *d, void *addr, size_t len);
	/* usable IOVA ranges; Return: how many were stored (<= @max) */
	int (*iova_ranges)(struct vfio_dev *d, struct vfio_iova_range *out, unsigned int max);
	/* IOMMU page sizes the container supports (bit n set: 2^n bytes) */
	int (*iova_pgsizes)(struct vfio_dev *d, uint64_t *out);
	/* make [vaddr, vaddr + size) reachable by the device at @iova */
	int (*dma_map)(struct vfio_dev *d, void *vaddr, uint64_t iova, uint64_t size);
	int (*dma_unmap)(struct vfio_dev *d, uint64_t iova, uint64_t size);
	/* MSI-X vectors the device has (VFIO_DEVICE_GET_IRQ_INFO count) */
	int (*msix_count)(struct vfio_dev *d, unsigned int *out);
	/*
	 * Signal eventfd @efds[i] for MSI-X vector i, i < @n; @n == 0 turns
	 * MSI-X off. An entry of -1 leaves that vector without an eventfd.
	 */
	int (*set_msix)(struct vfio_dev *d, const int *efds, unsigned int n);
	/* function-level reset; -ENOTTY when the device has none */
	int (*reset)(struct vfio_dev *d);
	/* release everything (mappings the caller made are its own to undo) */
	void (*close)(struct vfio_dev *d);
};

struct vfio_dev {
	const struct vfio_ops *ops;
	char name[64];  /* canonical PCI name, "0000:00:05.0", for log lines */
	void *priv;     /* the implementation's own state */
};

/*
 * How a VFIO device is opened: the kernel's (vfio_sys_open) or a model's.
 * @name is what the user gave (--vfio): "0000:00:05.0", "00:05.0" or a
 * sysfs path of the device. Return: 0, or a negative errno after logging
 * the cause in words a user can act on (not bound to vfio-pci, group not
 * viable, no IOMMU type, permission).
 */
typedef int (*vfio_open_fn)(struct vfio_dev *d, const char *name);

/** vfio_sys_open() - the kernel's VFIO (container, group, device fds). */
int vfio_sys_open(struct vfio_dev *d, const char *name);

/**
 * vfio_parse_pci_name() - canonical "DDDD:BB:DD.F" from "DDDD:BB:DD.F",
 * "BB:DD.F" (domain 0) or a sysfs path ending in one of them.
 * Return: 0, or -EINVAL for anything else.
 */
int vfio_parse_pci_name(const char *in, char out[13]);

#endif
