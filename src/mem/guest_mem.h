/* SPDX-License-Identifier: MIT */
/*
 * Guest memory: the regions a front end shares with SET_MEM_TABLE, mapped
 * into the daemon, and bounded translation of guest physical addresses
 * (GPA) and front-end virtual addresses (UVA) to daemon pointers.
 *
 * Invariants: every mapped region has size > 0; no two regions overlap in
 * GPA space nor in UVA space; gpa + size, uva + size and
 * mmap_offset + size never overflow. A translation succeeds only when the
 * whole range [addr, addr + len) lies inside one region.
 */
#ifndef GMEM_GUEST_MEM_H
#define GMEM_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Memory slots: SET_MEM_TABLE carries at most 8 regions, ADD_MEM_REG grows
 * the table one region at a time (memory hot-plug). 32 leaves QEMU room to
 * plug DIMMs and stays under the kernel's default vhost max_mem_regions (64).
 */
#define GMEM_MAX_REGIONS 32u

/* A region as the front end describes it (same fields as the wire). */
struct gmem_region_desc {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

struct gmem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
	uint8_t *host;    /* daemon pointer for gpa */
	void *map_base;   /* what mmap returned, for munmap; NULL: not ours (a window) */
	size_t map_len;
};

struct gmem {
	unsigned int nregions;
	struct gmem_region regions[GMEM_MAX_REGIONS];
};

/** gmem_init() - an empty table (nothing mapped). */
void gmem_init(struct gmem *m);

/**
 * gmem_map() - validate and map a new set of regions into @m.
 * @m:     must be empty (gmem_init or gmem_unmap'ed)
 * @descs: @n region descriptions
 * @fds:   @n file descriptors, one per region; not closed here
 *
 * Return: 0, or -EINVAL for a bad table (n == 0 or > GMEM_MAX_REGIONS,
 * zero size, overflow, overlap), -EBADF for an fd that is not open,
 * -EFAULT for an fd that is not a regular file/memfd or a range beyond the
 * end of its file, or the mmap error; on these nothing stays mapped and
 * @m is empty. -EBUSY when @m was not empty (left as it was).
 */
int gmem_map(struct gmem *m, const struct gmem_region_desc *descs, unsigned int n, const int *fds);

/**
 * gmem_map_window() - the regions of a table that lie back to back in one
 * existing mapping [@base, @base + @len) in table order, region i at the sum
 * of the sizes before it (virtio-vhost-user's shared-memory BAR). The same
 * whole-table validation as gmem_map(); the mapping stays the caller's:
 * gmem_unmap() forgets the regions without unmapping anything.
 *
 * Return: 0, -EINVAL for a bad table, -EFAULT when the table does not fit
 * the window (nothing is recorded), -EBUSY when @m was not empty.
 */
int gmem_map_window(struct gmem *m, const struct gmem_region_desc *descs, unsigned int n,
		    void *base, uint64_t len);

/**
 * gmem_add() - map one more region into @m (ADD_MEM_REG): the same checks as
 * gmem_map() against itself and against every region already in @m. The new
 * region is the last one of @m. @fd is not closed here.
 * Return: 0, -ENOSPC when @m is full, or gmem_map()'s errors; @m is
 * unchanged on failure.
 */
int gmem_add(struct gmem *m, const struct gmem_region_desc *d, int fd);

/**
 * gmem_take() - remove from @m the region with exactly this guest physical
 * address, front-end virtual address and size (REM_MEM_REG; the spec has the
 * front end match on these three), without unmapping it: it is stored in
 * @out, for gmem_region_unmap() once nothing uses it.
 * Return: 0, or -ENOENT when @m has no such region.
 */
int gmem_take(struct gmem *m, uint64_t gpa, uint64_t uva, uint64_t size, struct gmem_region *out);

/** gmem_region_unmap() - release the mapping of one region (none for a window). */
void gmem_region_unmap(struct gmem_region *r);

/** gmem_unmap() - release every mapping; @m is empty afterwards. */
void gmem_unmap(struct gmem *m);

/**
 * gmem_gpa_ptr() - daemon pointer for guest physical range [gpa, gpa+len).
 * Return: the pointer, or NULL unless the whole range is inside one region
 * (len 0 is treated as 1 byte).
 */
void *gmem_gpa_ptr(const struct gmem *m, uint64_t gpa, uint64_t len);

/** gmem_uva_ptr() - the same for a front-end virtual address range. */
void *gmem_uva_ptr(const struct gmem *m, uint64_t uva, uint64_t len);

/**
 * gmem_uva_to_gpa() - guest physical address of front-end virtual range.
 * Return: 0, or -EFAULT unless the whole range is inside one region.
 */
int gmem_uva_to_gpa(const struct gmem *m, uint64_t uva, uint64_t len, uint64_t *gpa);

#endif
