/* SPDX-License-Identifier: MIT */
/*
 * Internals of vfio_sys.c that its unit test reaches; the daemon uses
 * vfio.h only.
 */
#ifndef TRANSPORT_VVU_VFIO_SYS_H
#define TRANSPORT_VVU_VFIO_SYS_H

#include <stddef.h>

#include "transport/vvu/vfio.h"

/**
 * vfio_sys_parse_iova() - usable IOVA ranges from a VFIO_IOMMU_GET_INFO
 * answer of @size bytes (struct vfio_iommu_type1_info and its capability
 * chain). Without an IOVA-range capability: [0, 2^48) minus the MSI window.
 * Return: how many ranges were stored (<= @max), or -EIO when the chain
 * leaves the buffer, loops or is misaligned.
 */
int vfio_sys_parse_iova(const void *info, size_t size, struct vfio_iova_range *out,
			unsigned int max);

#endif
