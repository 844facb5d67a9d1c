// SPDX-License-Identifier: MIT
/*
 * Guest memory: validate a SET_MEM_TABLE region table, map each region's
 * file range into the daemon, and translate guest physical (GPA) and
 * front-end virtual (UVA) ranges to daemon pointers.
 *
 * Validation happens for the whole table before anything is mapped
 * (vhost-user spec "Memory access"; PROTOCOLS.md §1.9, §6.2): a region table
 * is either accepted and mapped entirely, or refused with nothing mapped.
 *
 * Mapping: MAP_SHARED from mmap_offset rounded down to the mapping
 * granule, the remainder folded into `host`, so QEMU's unaligned RAMBlock
 * offsets work. The granule is the page size, or the file's block size when
 * larger (hugetlbfs reports its huge page size there, and mmap of hugetlbfs
 * needs offsets and lengths aligned to it).
 *
 * Translation: a linear scan over at most GMEM_MAX_REGIONS regions. There
 * is deliberately no "last hit" cache: the table is const during lookups so
 * that concurrent readers (data-plane threads) need no locking, and eight
 * bounds checks cost less than a cache line a writer would bounce.
 *
 * Limits: the table cannot change while translations run; replacing it is
 * the caller's job (map the new one into a second gmem, switch, unmap the
 * old one once nothing refers to it).
 */
#include "mem/guest_mem.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

/* mmap will not take more than 1 GiB alignment from us (largest huge page). */
#define GMEM_MAX_GRANULE (1ull << 30)

void gmem_init(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
}

static bool fits_size_t(uint64_t v)
{
	return v == (uint64_t)(size_t)v;
}

/* [a, a + as) and [b, b + bs) intersect; ends are known not to overflow. */
static bool ranges_overlap(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return a < b + bs && b < a + as;
}

/* Checks on one region that need no file: sizes and u64/size_t overflow. */
static int check_desc(const struct gmem_region_desc *d, unsigned int i)
{
	if (d->size == 0) {
		log_err("mem table: region %u has size 0", i);
		return -EINVAL;
	}
	if (d->gpa > UINT64_MAX - d->size || d->uva > UINT64_MAX - d->size ||
	    d->mmap_offset > UINT64_MAX - d->size || !fits_size_t(d->size) ||
	    !fits_size_t(d->mmap_offset + d->size)) {
		log_err("mem table: region %u (gpa 0x%llx uva 0x%llx offset 0x%llx size 0x%llx) overflows",
			i, (unsigned long long)d->gpa, (unsigned long long)d->uva,
			(unsigned long long)d->mmap_offset, (unsigned long long)d->size);
		return -EINVAL;
	}
	return 0;
}

/*
 * Two regions sharing a GPA would make descriptor addresses ambiguous, and
 * two sharing a UVA would make ring addresses ambiguous (spec: "Memory
 * access"; PROTOCOLS.md §6.2 overlapping / duplicate regions).
 */
static int check_overlaps(const struct gmem_region_desc *d, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		for (unsigned int j = i + 1; j < n; j++) {
			bool gpa = ranges_overlap(d[i].gpa, d[i].size, d[j].gpa, d[j].size);
			bool uva = ranges_overlap(d[i].uva, d[i].size, d[j].uva, d[j].size);

			if (gpa || uva) {
				log_err("mem table: regions %u and %u overlap in %s space", i, j,
					gpa ? "guest physical" : "front-end virtual");
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int check_table(const struct gmem_region_desc *d, unsigned int n)
{
	int rc;

	if (n == 0 || n > GMEM_MAX_REGIONS) {
		log_err("mem table: %u regions (must be 1 to %u)", n, GMEM_MAX_REGIONS);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < n; i++) {
		rc = check_desc(&d[i], i);
		if (rc < 0)
			return rc;
	}
	return check_overlaps(d, n);
}

/*
 * The fd must be a file whose size covers the range: mapping a socket or
 * eventfd makes no sense, and touching a shared mapping past the end of its
 * file raises SIGBUS in the daemon (PROTOCOLS.md §6.2). Stores the mapping
 * granule in @granule.
 */
static int check_file(int fd, const struct gmem_region_desc *d, unsigned int i, uint64_t *granule)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t blk;
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0) {
		log_err("mem table: region %u: fd %d is not open", i, fd);
		return -EBADF;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("mem table: region %u: fd %d is not a regular file or memfd", i, fd);
		return -EFAULT;
	}
	if (st.st_size < 0 || d->mmap_offset + d->size > (uint64_t)st.st_size) {
		log_err("mem table: region %u: offset 0x%llx + size 0x%llx is beyond the file end 0x%llx",
			i, (unsigned long long)d->mmap_offset, (unsigned long long)d->size,
			(unsigned long long)st.st_size);
		return -EFAULT;
	}
	blk = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 0;
	if (blk > page && blk <= GMEM_MAX_GRANULE && (blk & (blk - 1)) == 0)
		page = blk;
	*granule = page;
	return 0;
}

/* Map one validated region into @r. */
static int map_region(struct gmem_region *r, const struct gmem_region_desc *d, int fd,
		      uint64_t granule, unsigned int i)
{
	uint64_t base = d->mmap_offset & ~(granule - 1);
	uint64_t rem = d->mmap_offset - base;
	uint64_t len = rem + d->size;
	void *p;

	/* round the length up too: hugetlbfs munmap wants whole huge pages */
	if (len > UINT64_MAX - (granule - 1) || !fits_size_t((len + granule - 1) & ~(granule - 1))) {
		log_err("mem table: region %u: mapping length overflows", i);
		return -EINVAL;
	}
	len = (len + granule - 1) & ~(granule - 1);
	p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
	if (p == MAP_FAILED) {
		int rc = -errno;

		log_err("mem table: region %u: mmap of 0x%llx bytes at offset 0x%llx failed: %s", i,
			(unsigned long long)len, (unsigned long long)base, strerror(-rc));
		return rc;
	}
	r->gpa = d->gpa;
	r->size = d->size;
	r->uva = d->uva;
	r->mmap_offset = d->mmap_offset;
	r->map_base = p;
	r->map_len = (size_t)len;
	r->host = (uint8_t *)p + rem;
	return 0;
}

int gmem_map(struct gmem *m, const struct gmem_region_desc *descs, unsigned int n, const int *fds)
{
	uint64_t granule[GMEM_MAX_REGIONS];
	int rc;

	if (m->nregions != 0) {
		log_err("mem table: mapping over a table that is still mapped");
		return -EBUSY;
	}
	rc = check_table(descs, n);
	for (unsigned int i = 0; rc == 0 && i < n; i++)
		rc = check_file(fds[i], &descs[i], i, &granule[i]);
	if (rc != 0)
		return rc; /* every granule is set only when every check passed */
	for (unsigned int i = 0; i < n; i++) {
		rc = map_region(&m->regions[i], &descs[i], fds[i], granule[i], i);
		if (rc < 0) {
			gmem_unmap(m);
			return rc;
		}
		m->nregions = i + 1;
	}
	return 0;
}

/*
 * Region i starts where region i-1 ends; the draft VVU spec lays them out so,
 * whatever mmap_offset the front end sent (crosvm's back end used the latter
 * and only worked because its front end's offsets happened to coincide).
 */
int gmem_map_window(struct gmem *m, const struct gmem_region_desc *descs, unsigned int n,
		    void *base, uint64_t len)
{
	uint64_t off = 0;
	int rc;

	if (m->nregions != 0) {
		log_err("mem table: mapping over a table that is still mapped");
		return -EBUSY;
	}
	rc = check_table(descs, n);
	if (rc < 0)
		return rc;
	for (unsigned int i = 0; i < n; i++) {
		if (off > len || descs[i].size > len - off) {
			log_err("mem table: region %u (size 0x%llx at window offset 0x%llx) does not fit "
				"the 0x%llx-byte shared memory window", i,
				(unsigned long long)descs[i].size, (unsigned long long)off,
				(unsigned long long)len);
			return -EFAULT;
		}
		off += descs[i].size;
	}
	off = 0;
	for (unsigned int i = 0; i < n; i++) {
		struct gmem_region *r = &m->regions[i];

		r->gpa = descs[i].gpa;
		r->size = descs[i].size;
		r->uva = descs[i].uva;
		r->mmap_offset = descs[i].mmap_offset;
		r->host = (uint8_t *)base + off;
		r->map_base = NULL;
		r->map_len = 0;
		off += descs[i].size;
	}
	m->nregions = n;
	return 0;
}

static void region_desc_of(const struct gmem_region *r, struct gmem_region_desc *d)
{
	*d = (struct gmem_region_desc){
		.gpa = r->gpa, .size = r->size, .uva = r->uva, .mmap_offset = r->mmap_offset,
	};
}

int gmem_add(struct gmem *m, const struct gmem_region_desc *d, int fd)
{
	struct gmem_region_desc all[GMEM_MAX_REGIONS];
	unsigned int n = m->nregions;
	uint64_t granule;
	int rc;

	if (n >= GMEM_MAX_REGIONS) {
		log_err("mem table: no free slot for another region (%u in use)", n);
		return -ENOSPC;
	}
	/* the whole table as it would be, so overlaps are judged as for a full table */
	for (unsigned int i = 0; i < n; i++)
		region_desc_of(&m->regions[i], &all[i]);
	all[n] = *d;
	rc = check_table(all, n + 1);
	if (rc == 0)
		rc = check_file(fd, d, n, &granule);
	if (rc == 0)
		rc = map_region(&m->regions[n], d, fd, granule, n);
	if (rc == 0)
		m->nregions = n + 1;
	return rc;
}

int gmem_take(struct gmem *m, uint64_t gpa, uint64_t uva, uint64_t size, struct gmem_region *out)
{
	for (unsigned int i = 0; i < m->nregions; i++) {
		struct gmem_region *r = &m->regions[i];

		if (r->gpa != gpa || r->uva != uva || r->size != size)
			continue;
		*out = *r;
		memmove(r, r + 1, (size_t)(m->nregions - i - 1) * sizeof(*r));
		m->nregions--;
		memset(&m->regions[m->nregions], 0, sizeof(m->regions[0]));
		return 0;
	}
	return -ENOENT;
}

void gmem_region_unmap(struct gmem_region *r)
{
	if (r->map_base)
		munmap(r->map_base, r->map_len);
	memset(r, 0, sizeof(*r));
}

void gmem_unmap(struct gmem *m)
{
	for (unsigned int i = 0; i < m->nregions; i++)
		gmem_region_unmap(&m->regions[i]);
	gmem_init(m);
}

/*
 * The region holding all of [addr, addr + len) in GPA space (@by_uva false)
 * or UVA space, and the offset of @addr inside it; NULL when the range
 * wraps past 2^64, misses every region, or crosses a region's end.
 */
static const struct gmem_region *lookup(const struct gmem *m, uint64_t addr, uint64_t len,
					bool by_uva, uint64_t *off)
{
	uint64_t last;

	if (len == 0)
		len = 1;
	if (addr > UINT64_MAX - (len - 1))
		return NULL;
	last = addr + (len - 1);
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct gmem_region *r = &m->regions[i];
		uint64_t start = by_uva ? r->uva : r->gpa;

		/* addr >= start, so last - start cannot wrap */
		if (addr >= start && last - start < r->size) {
			*off = addr - start;
			return r;
		}
	}
	return NULL;
}

void *gmem_gpa_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	uint64_t off;
	const struct gmem_region *r = lookup(m, gpa, len, false, &off);

	return r ? r->host + off : NULL;
}

void *gmem_uva_ptr(const struct gmem *m, uint64_t uva, uint64_t len)
{
	uint64_t off;
	const struct gmem_region *r = lookup(m, uva, len, true, &off);

	return r ? r->host + off : NULL;
}

int gmem_uva_to_gpa(const struct gmem *m, uint64_t uva, uint64_t len, uint64_t *gpa)
{
	uint64_t off;
	const struct gmem_region *r = lookup(m, uva, len, true, &off);

	if (!r)
		return -EFAULT;
	*gpa = r->gpa + off;
	return 0;
}
