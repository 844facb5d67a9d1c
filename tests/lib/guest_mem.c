// SPDX-License-Identifier: MIT
/*
 * Guest RAM for the test front end: one memfd, mapped once (MAP_SHARED) by
 * us, described to the back end as one or two regions. With the hole, the
 * layout is QEMU's for a PC guest (REAL-PEERS §5): the same memfd appears
 * twice, once for low memory below the VGA hole and once above it, and gpa
 * equals the file offset in both, as in QEMU.
 *
 * The uva we report is our own pointer (base + file offset), again as QEMU
 * does, so a back end that confuses uva and gpa gets addresses that are
 * plainly different.
 *
 * Allocation is a bump pointer that skips the hole; nothing is freed.
 */
#include "tfe.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int tfe_mem_init(struct tfe_mem *m, uint64_t size, bool hole)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size == 0 || size > (1ull << 40) || (size & 0xfff) || (hole && size <= TFE_MEM_HOLE_END))
		return -EINVAL;
	m->fd = memfd_create("tfe-guest-ram", MFD_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)size) < 0)
		goto err;
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->base == MAP_FAILED) {
		m->base = NULL;
		goto err;
	}
	m->size = size;
	if (hole) {
		m->regions[0] = (struct tfe_mem_region){ 0, TFE_MEM_HOLE_START, 0 };
		m->regions[1] = (struct tfe_mem_region){ TFE_MEM_HOLE_END, size - TFE_MEM_HOLE_END,
							 TFE_MEM_HOLE_END };
		m->nregions = 2;
	} else {
		m->regions[0] = (struct tfe_mem_region){ 0, size, 0 };
		m->nregions = 1;
	}
	m->next = TFE_MEM_ALLOC_START;
	return 0;
err:
	{
		int rc = -errno;

		close(m->fd);
		m->fd = -1;
		return rc;
	}
}

void tfe_mem_fini(struct tfe_mem *m)
{
	if (m->base)
		munmap(m->base, m->size);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
	m->nregions = 0;
}

/* The region holding all of [gpa, gpa + len), or NULL. */
static const struct tfe_mem_region *find_region(const struct tfe_mem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct tfe_mem_region *r = &m->regions[i];

		/* written so that nothing can overflow: gpa - r->gpa only when gpa >= r->gpa */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

void *tfe_mem_ptr(const struct tfe_mem *m, uint64_t gpa, uint64_t len)
{
	const struct tfe_mem_region *r = find_region(m, gpa, len);

	if (!r)
		return NULL;
	return m->base + r->mmap_offset + (gpa - r->gpa);
}

uint64_t tfe_mem_uva(const struct tfe_mem *m, uint64_t gpa)
{
	void *p = tfe_mem_ptr(m, gpa, 1);

	return p ? (uint64_t)(uintptr_t)p : 0;
}

int tfe_mem_alloc(struct tfe_mem *m, uint64_t len, uint64_t align, uint64_t *gpa)
{
	if (len == 0 || align == 0 || (align & (align - 1)))
		return -EINVAL;
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct tfe_mem_region *r = &m->regions[i];
		uint64_t start = m->next > r->gpa ? m->next : r->gpa;
		uint64_t end = r->gpa + r->size;

		if (start > UINT64_MAX - (align - 1))
			return -ENOMEM;
		start = (start + align - 1) & ~(align - 1);
		if (start < end && len <= end - start) {
			*gpa = start;
			m->next = start + len;
			return 0;
		}
	}
	tfe_log(1, "guest RAM exhausted (%llu bytes wanted)", (unsigned long long)len);
	return -ENOMEM;
}

unsigned int tfe_mem_table(const struct tfe_mem *m, struct vu_mem_region *out)
{
	for (unsigned int i = 0; i < m->nregions; i++) {
		out[i].guest_phys_addr = m->regions[i].gpa;
		out[i].memory_size = m->regions[i].size;
		out[i].userspace_addr = (uint64_t)(uintptr_t)(m->base + m->regions[i].mmap_offset);
		out[i].mmap_offset = m->regions[i].mmap_offset;
	}
	return m->nregions;
}
