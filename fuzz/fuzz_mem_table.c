// SPDX-License-Identifier: MIT
/*
 * Fuzz target (b): memory tables and address translation (mem/guest_mem.h).
 *
 * Input: a region table as a front end would send it, each region with the
 * kind of fd it comes with (a memfd whose size the input picks, one sized
 * to fit, a memfd shared with the previous region as QEMU does, a closed
 * fd, an eventfd), then translation queries (GPA, UVA, UVA to GPA) with
 * raw addresses or addresses relative to a region, to reach the edges.
 *
 * Checked, from an independent model of the table rather than gmem's own
 * fields: gmem_map() returns exactly the error the documented rules predict
 * (or 0); a refused table leaves nothing mapped; a second map is -EBUSY; a
 * translation succeeds exactly when the whole range lies in one region,
 * and then the first and last byte of the pointer are the right bytes of
 * the right file (written with pwrite, read through the pointer); the UVA
 * and GPA views agree. At the end no mapping of our memfds and no fd is
 * left.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>

#include "fuzz_util.h"
#include "mem/guest_mem.h"

#define MT_MEMFD "fuzz-mem-table"
#define MT_MAX_FILE (4ull << 20)
#define MT_MAX_IN_REGIONS (GMEM_MAX_REGIONS + 1)
#define MT_MAX_QUERIES 64
#define MT_UVA_BASE 0x7f0000000000ull

enum mt_fd_kind {
	MT_FD_SIZED,   /* memfd of a size from the input */
	MT_FD_FIT,     /* memfd exactly mmap_offset + size long */
	MT_FD_SHARED,  /* the previous region's memfd */
	MT_FD_CLOSED,  /* a number that is not open */
	MT_FD_EVENTFD, /* open, but not a file */
	MT_FD_KINDS,
};

struct mt_region {
	struct gmem_region_desc d;
	int fd;
	bool owned;      /* we close it */
	bool regular;    /* a memfd */
	uint64_t fsize;  /* its size when regular */
};

struct mt_case {
	unsigned int n;
	struct mt_region r[MT_MAX_IN_REGIONS];
	struct gmem_region_desc descs[MT_MAX_IN_REGIONS];
	int fds[MT_MAX_IN_REGIONS];
};

static int baseline_fds = -1;

/* Region fields: compact (small, mostly sane values) or raw 64-bit ones. */
static void read_desc(struct fz_in *in, struct gmem_region_desc *d)
{
	uint8_t mode = fz_u8(in);

	if (mode & 1) {
		d->gpa = fz_u64(in);
		d->size = fz_u64(in);
		d->uva = fz_u64(in);
		d->mmap_offset = fz_u64(in);
		return;
	}
	d->gpa = (uint64_t)fz_u32(in);
	d->size = ((uint64_t)fz_u16(in) + 1) << ((mode >> 1) & 7);
	d->uva = MT_UVA_BASE + fz_u32(in);
	d->mmap_offset = fz_u16(in);
}

static void make_fd(struct fz_in *in, struct mt_case *c, unsigned int i)
{
	struct mt_region *r = &c->r[i];
	enum mt_fd_kind kind = (enum mt_fd_kind)(fz_u8(in) % MT_FD_KINDS);
	uint64_t fsize = fz_u32(in) % (MT_MAX_FILE + 1);

	if (kind == MT_FD_SHARED && (i == 0 || !c->r[i - 1].regular))
		kind = MT_FD_FIT;
	if (kind == MT_FD_FIT)
		fsize = r->d.mmap_offset <= MT_MAX_FILE && r->d.size <= MT_MAX_FILE - r->d.mmap_offset
				? r->d.mmap_offset + r->d.size
				: MT_MAX_FILE;
	switch (kind) {
	case MT_FD_SIZED:
	case MT_FD_FIT:
		*r = (struct mt_region){ .d = r->d, .fd = fz_memfd(MT_MEMFD, fsize), .owned = true,
					 .regular = true, .fsize = fsize };
		break;
	case MT_FD_SHARED:
		*r = (struct mt_region){ .d = r->d, .fd = c->r[i - 1].fd, .regular = true,
					 .fsize = c->r[i - 1].fsize };
		break;
	case MT_FD_CLOSED:
		/* -1, or a number far above anything this process holds */
		r->fd = (fsize & 1) ? -1 : 1000 + (int)i;
		FZ_CHECK(r->fd < 0 || fcntl(r->fd, F_GETFD) < 0, "fd %d unexpectedly open", r->fd);
		break;
	default:
		r->fd = eventfd(0, EFD_CLOEXEC);
		FZ_CHECK(r->fd >= 0, "eventfd failed");
		r->owned = true;
		break;
	}
}

static bool overflows(const struct gmem_region_desc *d)
{
	return d->gpa + d->size < d->gpa || d->uva + d->size < d->uva ||
	       d->mmap_offset + d->size < d->mmap_offset;
}

static bool overlap(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	uint64_t lo = a > b ? a : b, hi_a = a + as, hi_b = b + bs;

	return lo < (hi_a < hi_b ? hi_a : hi_b);
}

/* What gmem_map() must return for @c, from the rules in guest_mem.h. */
static int model_map(const struct mt_case *c)
{
	if (c->n == 0 || c->n > GMEM_MAX_REGIONS)
		return -EINVAL;
	for (unsigned int i = 0; i < c->n; i++)
		if (c->r[i].d.size == 0 || overflows(&c->r[i].d))
			return -EINVAL;
	for (unsigned int i = 0; i < c->n; i++)
		for (unsigned int j = i + 1; j < c->n; j++)
			if (overlap(c->r[i].d.gpa, c->r[i].d.size, c->r[j].d.gpa, c->r[j].d.size) ||
			    overlap(c->r[i].d.uva, c->r[i].d.size, c->r[j].d.uva, c->r[j].d.size))
				return -EINVAL;
	for (unsigned int i = 0; i < c->n; i++) {
		const struct mt_region *r = &c->r[i];

		if (r->fd < 0 || fcntl(r->fd, F_GETFD) < 0)
			return -EBADF;
		if (!r->regular || r->d.mmap_offset + r->d.size > r->fsize)
			return -EFAULT;
	}
	return 0;
}

/* The region of the model holding all of [addr, addr + len), or -1. */
static int model_find(const struct mt_case *c, uint64_t addr, uint64_t len, bool by_uva,
		      uint64_t *off)
{
	uint64_t last;

	if (len == 0)
		len = 1;
	if (addr > UINT64_MAX - (len - 1))
		return -1;
	last = addr + (len - 1);
	for (unsigned int i = 0; i < c->n; i++) {
		uint64_t start = by_uva ? c->r[i].d.uva : c->r[i].d.gpa;

		if (addr >= start && last <= start + (c->r[i].d.size - 1)) {
			*off = addr - start;
			return (int)i;
		}
	}
	return -1;
}

/* The byte at @p must be the byte at @foff of region @i's file. */
static void check_byte(const struct mt_case *c, unsigned int i, uint64_t foff, volatile uint8_t *p)
{
	static uint8_t marker;
	uint8_t v = ++marker;

	FZ_CHECK(pwrite(c->r[i].fd, &v, 1, (off_t)foff) == 1, "pwrite at 0x%llx",
		 (unsigned long long)foff);
	FZ_CHECK(*p == v, "pointer does not land on file offset 0x%llx of region %u",
		 (unsigned long long)foff, i);
}

static void query(struct fz_in *in, const struct mt_case *c, const struct gmem *m)
{
	uint8_t op = fz_u8(in);
	unsigned int k = ((op >> 3) & 7) % c->n;
	bool by_uva = (op & 3) == 1 || (op & 3) == 2;
	uint64_t base = by_uva ? c->r[k].d.uva : c->r[k].d.gpa;
	uint64_t addr = (op & 4) ? base + (uint64_t)(int64_t)(int32_t)fz_u32(in) : fz_u64(in);
	uint64_t len = (op & 0x40) ? fz_u8(in) : fz_u64(in), off = 0, gpa = 0;
	int want = model_find(c, addr, len, by_uva, &off);
	uint8_t *p;

	if ((op & 3) == 2) {
		int rc = gmem_uva_to_gpa(m, addr, len, &gpa);

		FZ_CHECK(rc == (want >= 0 ? 0 : -EFAULT), "uva_to_gpa 0x%llx+%llu: %d",
			 (unsigned long long)addr, (unsigned long long)len, rc);
		FZ_CHECK(want < 0 || gpa == c->r[want].d.gpa + off, "uva_to_gpa gave a wrong gpa");
		return;
	}
	p = by_uva ? gmem_uva_ptr(m, addr, len) : gmem_gpa_ptr(m, addr, len);
	FZ_CHECK((p != NULL) == (want >= 0), "%s 0x%llx+%llu: %p, model says region %d",
		 by_uva ? "uva" : "gpa", (unsigned long long)addr, (unsigned long long)len,
		 (void *)p, want);
	if (!p)
		return;
	check_byte(c, (unsigned int)want, c->r[want].d.mmap_offset + off, p);
	check_byte(c, (unsigned int)want, c->r[want].d.mmap_offset + off + (len ? len - 1 : 0),
		   p + (len ? len - 1 : 0));
	/* the other address space must reach the same byte */
	base = by_uva ? c->r[want].d.gpa : c->r[want].d.uva;
	FZ_CHECK((by_uva ? gmem_gpa_ptr(m, base + off, 1) : gmem_uva_ptr(m, base + off, 1)) == p,
		 "GPA and UVA views disagree");
}

static void run_table(struct fz_in *in, struct mt_case *c)
{
	int want = model_map(c), rc;
	struct gmem m;

	gmem_init(&m);
	rc = gmem_map(&m, c->descs, c->n, c->fds);
	FZ_CHECK(rc == want, "gmem_map returned %d, the rules say %d", rc, want);
	if (rc < 0) {
		FZ_CHECK(m.nregions == 0, "refused table left %u regions", m.nregions);
		return;
	}
	FZ_CHECK(m.nregions == c->n, "mapped %u of %u regions", m.nregions, c->n);
	FZ_CHECK(gmem_map(&m, c->descs, c->n, c->fds) == -EBUSY && m.nregions == c->n,
		 "mapping over a mapped table");
	for (unsigned int q = 0; q < MT_MAX_QUERIES && !fz_empty(in); q++)
		query(in, c, &m);
	gmem_unmap(&m);
	FZ_CHECK(m.nregions == 0, "gmem_unmap left regions");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct mt_case c;

	if (baseline_fds < 0)
		baseline_fds = fz_count_fds();
	memset(&c, 0, sizeof(c));
	c.n = fz_u8(&in) % (MT_MAX_IN_REGIONS + 1);
	for (unsigned int i = 0; i < c.n; i++) {
		read_desc(&in, &c.r[i].d);
		make_fd(&in, &c, i);
		c.descs[i] = c.r[i].d;
		c.fds[i] = c.r[i].fd;
	}
	run_table(&in, &c);
	FZ_CHECK(fz_count_maps(MT_MEMFD) == 0, "a mapping of the guest memfd survived");
	for (unsigned int i = 0; i < c.n; i++)
		if (c.r[i].owned)
			close(c.r[i].fd);
	fz_check_fds(baseline_fds);
	return 0;
}
