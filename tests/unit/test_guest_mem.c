// SPDX-License-Identifier: MIT
/*
 * Guest memory: mapping of memfd-backed region tables (QEMU's real -m 512M
 * layout, unaligned offsets), translation at region edges, and every
 * hostile table from PROTOCOLS.md §6.2. Each test checks through
 * /proc/self/maps that no mapping of its memfd is left behind, and through
 * pread/pwrite on the fd that a pointer really lands on the right file
 * offset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mem/guest_mem.h"

#define MEMFD_NAME "gmem-unit-test"
#define MiB (1024ull * 1024)

static int make_memfd(uint64_t size)
{
	int fd = memfd_create(MEMFD_NAME, MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* Mappings of our memfds currently in the address space. */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:" MEMFD_NAME))
			n++;
	fclose(f);
	return n;
}

static void put_byte(int fd, uint64_t off, uint8_t v)
{
	assert_int_equal(pwrite(fd, &v, 1, (off_t)off), 1);
}

static uint8_t get_byte(int fd, uint64_t off)
{
	uint8_t v = 0;

	assert_int_equal(pread(fd, &v, 1, (off_t)off), 1);
	return v;
}

/* Expect gmem_map to refuse with @want, leaving @m empty and nothing mapped. */
static void expect_refused(const struct gmem_region_desc *d, unsigned int n, const int *fds,
			   int want)
{
	struct gmem m;
	int before = count_maps();

	gmem_init(&m);
	assert_int_equal(gmem_map(&m, d, n, fds), want);
	assert_int_equal(m.nregions, 0);
	assert_null(gmem_gpa_ptr(&m, d[0].gpa, 1));
	assert_int_equal(count_maps(), before);
}

/* QEMU 7.2, -m 512M on a memfd backend: two regions on the same fd. */
static const struct gmem_region_desc qemu_512m[2] = {
	{ .gpa = 0, .size = 0xa0000, .uva = 0x7f0000000000ull, .mmap_offset = 0 },
	{ .gpa = 0xc0000, .size = 0x1ff40000, .uva = 0x7f00000c0000ull, .mmap_offset = 0xc0000 },
};

static void test_qemu_layout(void **state)
{
	int fd = make_memfd(512 * MiB);
	int fds[2] = { fd, fd };
	int before = count_maps();
	struct gmem m;
	uint8_t *p;
	uint64_t gpa = 0;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, qemu_512m, 2, fds), 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(count_maps(), before + 2);

	/* a GPA pointer lands on file offset gpa (both regions use offset == gpa) */
	put_byte(fd, 0x1234, 0x5a);
	p = gmem_gpa_ptr(&m, 0x1234, 1);
	assert_non_null(p);
	assert_int_equal(*p, 0x5a);
	p = gmem_gpa_ptr(&m, 0x1ff00000, 4);
	assert_non_null(p);
	memcpy(p, "ring", 4);
	assert_int_equal(get_byte(fd, 0x1ff00000), 'r');
	assert_int_equal(get_byte(fd, 0x1ff00003), 'g');

	/* written through the GPA, read through the UVA, and mapped back */
	assert_ptr_equal(gmem_uva_ptr(&m, 0x7f0000000000ull + 0x1ff00000, 4), p);
	assert_int_equal(gmem_uva_to_gpa(&m, 0x7f0000000000ull + 0x1ff00002, 2, &gpa), 0);
	assert_int_equal(gpa, 0x1ff00002);
	assert_int_equal(gmem_uva_to_gpa(&m, 0x7f0000000000ull + 5, 1, &gpa), 0);
	assert_int_equal(gpa, 5);

	/* the VGA hole [0xa0000, 0xc0000) is not guest RAM */
	assert_non_null(gmem_gpa_ptr(&m, 0x9ffff, 1));
	assert_null(gmem_gpa_ptr(&m, 0x9ffff, 2));
	assert_null(gmem_gpa_ptr(&m, 0xa0000, 1));
	assert_null(gmem_gpa_ptr(&m, 0xbffff, 1));
	assert_non_null(gmem_gpa_ptr(&m, 0xc0000, 1));
	assert_null(gmem_uva_ptr(&m, 0x7f00000a0000ull, 1));
	assert_int_equal(gmem_uva_to_gpa(&m, 0x7f00000bffffull, 1, &gpa), -EFAULT);
	/* top of RAM */
	assert_non_null(gmem_gpa_ptr(&m, 0x1fffffff, 1));
	assert_non_null(gmem_gpa_ptr(&m, 0x1fffff00, 0x100));
	assert_null(gmem_gpa_ptr(&m, 0x1fffff00, 0x101));
	assert_null(gmem_gpa_ptr(&m, 0x20000000, 1));

	gmem_unmap(&m);
	assert_int_equal(m.nregions, 0);
	assert_int_equal(count_maps(), before);
	assert_null(gmem_gpa_ptr(&m, 0x1234, 1));
	assert_null(gmem_uva_ptr(&m, 0x7f0000000000ull, 1));
	assert_int_equal(gmem_uva_to_gpa(&m, 0x7f0000000000ull, 1, &gpa), -EFAULT);
	/* the fd is the caller's: still open */
	assert_true(fcntl(fd, F_GETFD) >= 0);
	close(fd);
}

/* mmap_offset not page aligned, and different for GPA and file. */
static void test_unaligned_offset(void **state)
{
	const uint64_t offs[] = { 1, 0x1234, 0x3001, 0x1fff, 0x10000 - 3 };
	int fd = make_memfd(1 * MiB);
	int before = count_maps();

	(void)state;
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		struct gmem_region_desc d = { .gpa = 0x100000, .size = 0x5000, .uva = 0x40000000,
					      .mmap_offset = offs[i] };
		struct gmem m;
		uint8_t *p;

		gmem_init(&m);
		put_byte(fd, offs[i], (uint8_t)(0xa0 + i));
		put_byte(fd, offs[i] + 0x4fff, (uint8_t)(0xb0 + i));
		assert_int_equal(gmem_map(&m, &d, 1, &fd), 0);
		p = gmem_gpa_ptr(&m, 0x100000, 0x5000);
		assert_non_null(p);
		assert_int_equal(p[0], 0xa0 + i);
		assert_int_equal(p[0x4fff], 0xb0 + i);
		p[1] = 0x77;
		assert_int_equal(get_byte(fd, offs[i] + 1), 0x77);
		assert_ptr_equal(gmem_uva_ptr(&m, 0x40000001, 1), p + 1);
		gmem_unmap(&m);
		assert_int_equal(count_maps(), before);
	}
	close(fd);
}

/* Two regions adjacent in GPA but far apart in UVA and in the file. */
static void test_edges_and_straddle(void **state)
{
	int fd = make_memfd(1 * MiB);
	const struct gmem_region_desc d[2] = {
		{ .gpa = 0x10000, .size = 0x1000, .uva = 0x900000, .mmap_offset = 0x8000 },
		{ .gpa = 0x11000, .size = 0x2000, .uva = 0x100000, .mmap_offset = 0x20000 },
	};
	int fds[2] = { fd, fd };
	struct gmem m;
	uint8_t *a, *b;
	uint64_t gpa = 0;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, d, 2, fds), 0);
	a = gmem_gpa_ptr(&m, 0x10fff, 1);
	b = gmem_gpa_ptr(&m, 0x11000, 1);
	assert_non_null(a);
	assert_non_null(b);
	*a = 1;
	*b = 2;
	assert_int_equal(get_byte(fd, 0x8fff), 1);
	assert_int_equal(get_byte(fd, 0x20000), 2);
	/* contiguous in GPA, not in the daemon: a range across both must fail */
	assert_null(gmem_gpa_ptr(&m, 0x10fff, 2));
	assert_null(gmem_gpa_ptr(&m, 0x10000, 0x3000));
	/* len 0 counts as one byte */
	assert_ptr_equal(gmem_gpa_ptr(&m, 0x10fff, 0), a);
	assert_null(gmem_gpa_ptr(&m, 0x13000, 0));
	assert_null(gmem_gpa_ptr(&m, 0xffff, 0));
	/* whole regions */
	assert_non_null(gmem_gpa_ptr(&m, 0x10000, 0x1000));
	assert_non_null(gmem_gpa_ptr(&m, 0x11000, 0x2000));
	assert_null(gmem_gpa_ptr(&m, 0x11000, 0x2001));
	/* UVA edges */
	assert_ptr_equal(gmem_uva_ptr(&m, 0x900fff, 1), a);
	assert_null(gmem_uva_ptr(&m, 0x901000, 1));
	assert_null(gmem_uva_ptr(&m, 0x900fff, 2));
	assert_null(gmem_uva_ptr(&m, 0x8fffff, 1));
	assert_int_equal(gmem_uva_to_gpa(&m, 0x101fff, 1, &gpa), 0);
	assert_int_equal(gpa, 0x12fff);
	gpa = 42;
	assert_int_equal(gmem_uva_to_gpa(&m, 0x101fff, 2, &gpa), -EFAULT);
	assert_int_equal(gpa, 42);
	gmem_unmap(&m);
	close(fd);
}

/* Lengths that wrap past 2^64 must not sneak back into a region. */
static void test_wraparound(void **state)
{
	int fd = make_memfd(0x10000);
	const struct gmem_region_desc d = { .gpa = 0, .size = 0x10000, .uva = 0, .mmap_offset = 0 };
	const struct gmem_region_desc top = { .gpa = UINT64_MAX - 0x10000, .size = 0x10000,
					      .uva = UINT64_MAX - 0x10000, .mmap_offset = 0 };
	struct gmem m;
	uint64_t gpa;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, &d, 1, &fd), 0);
	assert_null(gmem_gpa_ptr(&m, 0x10, UINT64_MAX));
	assert_null(gmem_gpa_ptr(&m, 1, UINT64_MAX));
	assert_null(gmem_gpa_ptr(&m, UINT64_MAX, 2));
	assert_null(gmem_gpa_ptr(&m, UINT64_MAX, 1));
	assert_null(gmem_gpa_ptr(&m, 0x8000, UINT64_MAX - 0x7000));
	assert_null(gmem_uva_ptr(&m, 0x10, UINT64_MAX));
	assert_int_equal(gmem_uva_to_gpa(&m, 0x10, UINT64_MAX - 0xf, &gpa), -EFAULT);
	assert_non_null(gmem_gpa_ptr(&m, 0, 0x10000));
	gmem_unmap(&m);

	/* a region ending one byte below 2^64 */
	assert_int_equal(gmem_map(&m, &top, 1, &fd), 0);
	assert_non_null(gmem_gpa_ptr(&m, UINT64_MAX - 1, 1));
	assert_null(gmem_gpa_ptr(&m, UINT64_MAX - 1, 2));
	assert_null(gmem_gpa_ptr(&m, UINT64_MAX, 1));
	assert_null(gmem_gpa_ptr(&m, UINT64_MAX - 1, UINT64_MAX));
	assert_null(gmem_uva_ptr(&m, UINT64_MAX, 0));
	gmem_unmap(&m);
	close(fd);
}

static void test_region_count(void **state)
{
	struct gmem_region_desc d[GMEM_MAX_REGIONS + 1];
	int fds[GMEM_MAX_REGIONS + 1];
	int fd = make_memfd(1 * MiB);
	int before = count_maps();
	struct gmem m;

	(void)state;
	for (unsigned int i = 0; i <= GMEM_MAX_REGIONS; i++) {
		d[i] = (struct gmem_region_desc){ .gpa = i * 0x10000ull, .size = 0x1000,
						  .uva = 0x1000000 + i * 0x10000ull,
						  .mmap_offset = i * 0x1000ull };
		fds[i] = fd;
	}
	expect_refused(d, 0, fds, -EINVAL);
	expect_refused(d, GMEM_MAX_REGIONS + 1, fds, -EINVAL);
	expect_refused(d, 1000, fds, -EINVAL);
	expect_refused(d, UINT32_MAX, fds, -EINVAL);

	gmem_init(&m);
	assert_int_equal(gmem_map(&m, d, GMEM_MAX_REGIONS, fds), 0);
	assert_int_equal(count_maps(), before + (int)GMEM_MAX_REGIONS);
	for (unsigned int i = 0; i < GMEM_MAX_REGIONS; i++) {
		uint8_t *p = gmem_gpa_ptr(&m, i * 0x10000ull + 0xfff, 1);

		assert_non_null(p);
		*p = (uint8_t)(i + 1);
		assert_int_equal(get_byte(fd, i * 0x1000ull + 0xfff), i + 1);
	}
	/* mapping over a live table is refused and keeps it */
	assert_int_equal(gmem_map(&m, d, 1, fds), -EBUSY);
	assert_int_equal(m.nregions, GMEM_MAX_REGIONS);
	assert_non_null(gmem_gpa_ptr(&m, 0, 1));
	gmem_unmap(&m);
	gmem_unmap(&m);
	assert_int_equal(count_maps(), before);
	/* the same gmem can be used again */
	assert_int_equal(gmem_map(&m, d, 1, fds), 0);
	gmem_unmap(&m);
	close(fd);
}

static void test_bad_sizes_and_overflow(void **state)
{
	int fd = make_memfd(1 * MiB);
	const struct gmem_region_desc ok = { .gpa = 0x1000, .size = 0x1000, .uva = 0x2000,
					     .mmap_offset = 0 };
	struct gmem_region_desc d[2];
	int fds[2] = { fd, fd };

	(void)state;
	d[0] = ok;
	d[0].size = 0;
	expect_refused(d, 1, fds, -EINVAL);
	/* a bad second region refuses the whole table */
	d[0] = ok;
	d[1] = (struct gmem_region_desc){ .gpa = 0x10000, .size = 0, .uva = 0x10000 };
	expect_refused(d, 2, fds, -EINVAL);

	d[0] = ok;
	d[0].gpa = UINT64_MAX - 0xfff;  /* end would be exactly 2^64 */
	expect_refused(d, 1, fds, -EINVAL);
	d[0].gpa = UINT64_MAX;
	expect_refused(d, 1, fds, -EINVAL);
	d[0] = ok;
	d[0].size = UINT64_MAX;
	expect_refused(d, 1, fds, -EINVAL);
	d[0] = ok;
	d[0].uva = UINT64_MAX - 0x800;
	expect_refused(d, 1, fds, -EINVAL);
	d[0] = ok;
	d[0].mmap_offset = UINT64_MAX - 0xfff;
	expect_refused(d, 1, fds, -EINVAL);
	d[0] = ok;
	d[0].mmap_offset = 1ull << 63;  /* no overflow, but far past the file */
	expect_refused(d, 1, fds, -EFAULT);
	close(fd);
}

static void test_overlaps(void **state)
{
	int fd = make_memfd(1 * MiB);
	int fds[3] = { fd, fd, fd };
	const struct gmem_region_desc a = { .gpa = 0x10000, .size = 0x4000, .uva = 0x80000,
					    .mmap_offset = 0 };
	struct gmem_region_desc d[3];

	(void)state;
	d[0] = a;
	d[1] = a;  /* duplicate */
	expect_refused(d, 2, fds, -EINVAL);
	/* GPA overlap by one byte at each end; UVA apart */
	d[1] = (struct gmem_region_desc){ .gpa = 0x13fff, .size = 0x1000, .uva = 0x100000 };
	expect_refused(d, 2, fds, -EINVAL);
	d[1].gpa = 0xf001;
	expect_refused(d, 2, fds, -EINVAL);
	/* GPA containment */
	d[1] = (struct gmem_region_desc){ .gpa = 0x11000, .size = 0x1000, .uva = 0x100000 };
	expect_refused(d, 2, fds, -EINVAL);
	d[1] = (struct gmem_region_desc){ .gpa = 0, .size = 0x100000, .uva = 0x100000 };
	expect_refused(d, 2, fds, -EINVAL);
	/* UVA overlap, GPA apart */
	d[1] = (struct gmem_region_desc){ .gpa = 0x40000, .size = 0x1000, .uva = 0x83fff };
	expect_refused(d, 2, fds, -EINVAL);
	d[1].uva = 0x7f001;
	expect_refused(d, 2, fds, -EINVAL);
	/* overlap between the 1st and 3rd regions only */
	d[1] = (struct gmem_region_desc){ .gpa = 0x40000, .size = 0x1000, .uva = 0x200000 };
	d[2] = (struct gmem_region_desc){ .gpa = 0x50000, .size = 0x1000, .uva = 0x81000 };
	expect_refused(d, 3, fds, -EINVAL);

	/* touching but not overlapping in both spaces is fine */
	struct gmem m;

	d[1] = (struct gmem_region_desc){ .gpa = 0x14000, .size = 0x1000, .uva = 0x7f000 };
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, d, 2, fds), 0);
	gmem_unmap(&m);
	close(fd);
}

static void test_beyond_file_end(void **state)
{
	int fd = make_memfd(0x10000);
	struct gmem_region_desc d = { .gpa = 0, .size = 0x10000, .uva = 0, .mmap_offset = 0 };
	struct gmem m;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, &d, 1, &fd), 0);  /* exactly the file */
	gmem_unmap(&m);
	d.size = 0x10001;
	expect_refused(&d, 1, &fd, -EFAULT);
	d.size = 0x1000;
	d.mmap_offset = 0xf001;
	expect_refused(&d, 1, &fd, -EFAULT);
	d.mmap_offset = 0x10000;
	expect_refused(&d, 1, &fd, -EFAULT);
	/* an empty memfd (never truncated) */
	int empty = memfd_create(MEMFD_NAME, MFD_CLOEXEC);

	assert_true(empty >= 0);
	d.mmap_offset = 0;
	expect_refused(&d, 1, &empty, -EFAULT);
	close(empty);
	close(fd);
}

/* Two one-page regions on consecutive pages of a 2-page file. */
static const struct gmem_region_desc two_pages[2] = {
	{ .gpa = 0, .size = 0x1000, .uva = 0, .mmap_offset = 0 },
	{ .gpa = 0x1000, .size = 0x1000, .uva = 0x1000, .mmap_offset = 0x1000 },
};

static void test_bad_fds(void **state)
{
	const struct gmem_region_desc *d = two_pages;
	int mfd = make_memfd(0x2000);
	int sp[2], pp[2], efd, dirfd, closed;
	int fds[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
	efd = eventfd(0, EFD_CLOEXEC);
	assert_true(efd >= 0);
	dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dirfd >= 0);
	closed = dup(mfd);
	close(closed);

	const int bad[] = { sp[0], pp[0], pp[1], efd, dirfd };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_refused(d, 1, &bad[i], -EFAULT);
		fds[0] = mfd;  /* good first, bad second */
		fds[1] = bad[i];
		expect_refused(d, 2, fds, -EFAULT);
		assert_true(fcntl(bad[i], F_GETFD) >= 0);  /* not closed by us */
	}
	fds[0] = -1;
	expect_refused(d, 1, fds, -EBADF);
	fds[0] = closed;
	expect_refused(d, 1, fds, -EBADF);
	fds[0] = mfd;
	fds[1] = -1;
	expect_refused(d, 2, fds, -EBADF);

	close(sp[0]);
	close(sp[1]);
	close(pp[0]);
	close(pp[1]);
	close(efd);
	close(dirfd);
	close(mfd);
}

/*
 * A regular file opened read-only passes validation but cannot be mapped
 * shared writable: the first region, already mapped, must be undone.
 */
static void test_mmap_failure_unwinds(void **state)
{
	const struct gmem_region_desc *d = two_pages;
	int mfd = make_memfd(0x2000);
	char path[64];
	int rofd, fds[2];

	(void)state;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	rofd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(rofd >= 0);
	fds[0] = mfd;
	fds[1] = rofd;
	expect_refused(d, 2, fds, -EACCES);
	close(rofd);
	close(mfd);
}

/* A hugetlb memfd with an offset that is page- but not huge-page-aligned. */
static void test_hugetlb_if_available(void **state)
{
	const uint64_t huge = 2 * MiB;
	int fd = memfd_create(MEMFD_NAME, MFD_CLOEXEC | MFD_HUGETLB);
	struct gmem_region_desc d = { .gpa = 0x100000, .size = 0x3000, .uva = 0,
				      .mmap_offset = huge + 0x5000 };
	struct gmem m;
	uint8_t *p;
	void *probe;

	(void)state;
	if (fd < 0)
		skip();
	probe = ftruncate(fd, (off_t)(2 * huge)) == 0
		? mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
	if (probe == MAP_FAILED) {
		close(fd);
		skip();
	}
	((uint8_t *)probe)[huge + 0x5001] = 0x99;
	munmap(probe, 2 * huge);
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, &d, 1, &fd), 0);
	p = gmem_gpa_ptr(&m, 0x100001, 1);
	assert_non_null(p);
	assert_int_equal(*p, 0x99);
	gmem_unmap(&m);
	close(fd);
}

/*
 * VVU's shared-memory window: the QEMU table laid back to back (region 1
 * right after region 0's 0xa0000 bytes, whatever its mmap_offset says), an
 * exact fit, and nothing unmapped by gmem_unmap (the window is the caller's).
 */
/* ADD_MEM_REG / REM_MEM_REG: one region in and out, the others untouched. */
static void test_add_and_take(void **state)
{
	int fd = make_memfd(1 * MiB), other = make_memfd(64 * 1024);
	int before = count_maps();
	struct gmem_region gone;
	struct gmem m;
	uint8_t *first;

	(void)state;
	gmem_init(&m);
	assert_int_equal(gmem_map(&m, two_pages, 1, &fd), 0);
	first = gmem_gpa_ptr(&m, two_pages[0].gpa, 1);
	assert_int_equal(gmem_add(&m, &two_pages[1], fd), 0);
	assert_int_equal(m.nregions, 2);
	assert_ptr_equal(gmem_gpa_ptr(&m, two_pages[0].gpa, 1), first);
	assert_non_null(gmem_gpa_ptr(&m, two_pages[1].gpa, 1));
	/* overlapping either space, empty, beyond its file, not a file: refused, @m unchanged */
	assert_int_equal(gmem_add(&m, &two_pages[1], fd), -EINVAL);
	assert_int_equal(gmem_add(&m, &(struct gmem_region_desc){ .gpa = 1ull << 40, .size = 0x1000,
								.uva = two_pages[0].uva },
				  fd),
			 -EINVAL);
	assert_int_equal(gmem_add(&m, &(struct gmem_region_desc){ .gpa = 1ull << 40, .uva = 1ull << 41 },
				  fd),
			 -EINVAL);
	assert_int_equal(gmem_add(&m, &(struct gmem_region_desc){ .gpa = 1ull << 40, .size = 0x20000,
								.uva = 1ull << 41 },
				  other),
			 -EFAULT);
	assert_int_equal(gmem_add(&m, &(struct gmem_region_desc){ .gpa = 1ull << 40, .size = 0x1000,
								.uva = 1ull << 41 },
				  -1),
			 -EBADF);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(count_maps(), before + 2);
	/* taken out by all three of gpa, uva and size; still mapped until unmapped */
	assert_int_equal(gmem_take(&m, two_pages[0].gpa, two_pages[0].uva, 1, &gone), -ENOENT);
	assert_int_equal(gmem_take(&m, two_pages[0].gpa, two_pages[1].uva, two_pages[0].size, &gone),
			 -ENOENT);
	assert_int_equal(gmem_take(&m, two_pages[0].gpa, two_pages[0].uva, two_pages[0].size, &gone), 0);
	assert_int_equal(m.nregions, 1);
	assert_null(gmem_gpa_ptr(&m, two_pages[0].gpa, 1));
	assert_non_null(gmem_gpa_ptr(&m, two_pages[1].gpa, 1));
	assert_ptr_equal(gone.host, first);
	*first = 0x5a;
	assert_int_equal(count_maps(), before + 2);
	gmem_region_unmap(&gone);
	assert_int_equal(count_maps(), before + 1);
	gmem_unmap(&m);
	assert_int_equal(count_maps(), before);
	close(fd);
	close(other);
}

static void test_add_when_full(void **state)
{
	int fd = make_memfd(1 * MiB);
	int before = count_maps();
	struct gmem m;

	(void)state;
	gmem_init(&m);
	for (unsigned int i = 0; i <= GMEM_MAX_REGIONS; i++) {
		const struct gmem_region_desc d = { .gpa = i * 0x10000ull, .size = 0x1000,
						    .uva = 0x1000000 + i * 0x10000ull,
						    .mmap_offset = i * 0x1000ull };

		assert_int_equal(gmem_add(&m, &d, fd), i < GMEM_MAX_REGIONS ? 0 : -ENOSPC);
	}
	assert_int_equal(m.nregions, GMEM_MAX_REGIONS);
	gmem_unmap(&m);
	assert_int_equal(count_maps(), before);
	close(fd);
}

static void test_window_layout(void **state)
{
	const uint64_t len = 0xa0000 + 0x1ff40000;
	uint8_t *win = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t gpa = 0;
	struct gmem m;

	(void)state;
	assert_true(win != MAP_FAILED);
	gmem_init(&m);
	assert_int_equal(gmem_map_window(&m, qemu_512m, 2, win, len), 0);
	assert_int_equal(m.nregions, 2);
	assert_ptr_equal(gmem_gpa_ptr(&m, 0, 1), win);
	assert_ptr_equal(gmem_gpa_ptr(&m, 0x9ffff, 1), win + 0x9ffff);
	assert_ptr_equal(gmem_gpa_ptr(&m, 0xc0000, 1), win + 0xa0000);
	assert_ptr_equal(gmem_uva_ptr(&m, 0x7f00000c0000ull + 0x10, 4), win + 0xa0010);
	/* the last byte of the window is the last byte of region 1 */
	assert_ptr_equal(gmem_gpa_ptr(&m, 0x1fffffff, 1), win + len - 1);
	assert_null(gmem_gpa_ptr(&m, 0x1fffffff, 2));
	assert_null(gmem_gpa_ptr(&m, 0xa0000, 1));
	assert_int_equal(gmem_uva_to_gpa(&m, 0x7f00000c0000ull + 2, 2, &gpa), 0);
	assert_int_equal(gpa, 0xc0002);
	/* still a table in use: no mapping over it */
	assert_int_equal(gmem_map_window(&m, qemu_512m, 2, win, len), -EBUSY);
	gmem_unmap(&m);
	assert_int_equal(m.nregions, 0);
	/* gmem_unmap left the window mapped: it is still writable */
	win[len - 1] = 0x42;
	assert_int_equal(win[len - 1], 0x42);
	assert_int_equal(munmap(win, (size_t)len), 0);
}

/* Tables that do not fit, or are bad in themselves, record nothing. */
static void test_window_refused(void **state)
{
	static uint8_t win[0x4000];
	struct gmem_region_desc d[3] = {
		{ .gpa = 0, .size = 0x2000, .uva = 0x10000 },
		{ .gpa = 0x10000, .size = 0x2000, .uva = 0x20000 },
		{ .gpa = 0x20000, .size = 1, .uva = 0x30000 },
	};
	struct gmem m;

	(void)state;
	gmem_init(&m);
	/* exact fit of two, one byte too many with the third */
	assert_int_equal(gmem_map_window(&m, d, 2, win, sizeof(win)), 0);
	gmem_unmap(&m);
	assert_int_equal(gmem_map_window(&m, d, 3, win, sizeof(win)), -EFAULT);
	assert_int_equal(m.nregions, 0);
	assert_int_equal(gmem_map_window(&m, d, 2, win, sizeof(win) - 1), -EFAULT);
	assert_int_equal(gmem_map_window(&m, d, 1, win, 0), -EFAULT);
	/* sizes whose sum wraps past 2^64 must not look small */
	d[0].size = UINT64_MAX - 0xfff;
	d[0].gpa = 0x100000;
	d[0].uva = 0x100000;
	d[1] = (struct gmem_region_desc){ .gpa = 0, .size = 0x2000, .uva = 0 };
	assert_int_equal(gmem_map_window(&m, d, 2, win, sizeof(win)), -EINVAL);
	/* two halves of the address space: one byte more than the window */
	d[0] = (struct gmem_region_desc){ .gpa = 0, .size = 1ull << 63, .uva = 0 };
	d[1] = (struct gmem_region_desc){ .gpa = 1ull << 63, .size = (1ull << 63) - 1,
					  .uva = 1ull << 63 };
	assert_int_equal(gmem_map_window(&m, d, 2, win, UINT64_MAX - 1), -EFAULT);
	assert_int_equal(m.nregions, 0);
	/* the whole-table checks of gmem_map apply too */
	d[0] = (struct gmem_region_desc){ .gpa = 0, .size = 0x1000, .uva = 0x10000 };
	d[1] = (struct gmem_region_desc){ .gpa = 0x800, .size = 0x1000, .uva = 0x20000 };
	assert_int_equal(gmem_map_window(&m, d, 2, win, sizeof(win)), -EINVAL);
	d[1] = (struct gmem_region_desc){ .gpa = 0x1000, .size = 0, .uva = 0x20000 };
	assert_int_equal(gmem_map_window(&m, d, 2, win, sizeof(win)), -EINVAL);
	assert_int_equal(gmem_map_window(&m, d, 0, win, sizeof(win)), -EINVAL);
	assert_int_equal(gmem_map_window(&m, d, GMEM_MAX_REGIONS + 1, win, sizeof(win)), -EINVAL);
	assert_int_equal(m.nregions, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_layout),
		cmocka_unit_test(test_unaligned_offset),
		cmocka_unit_test(test_edges_and_straddle),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_region_count),
		cmocka_unit_test(test_bad_sizes_and_overflow),
		cmocka_unit_test(test_overlaps),
		cmocka_unit_test(test_beyond_file_end),
		cmocka_unit_test(test_bad_fds),
		cmocka_unit_test(test_mmap_failure_unwinds),
		cmocka_unit_test(test_hugetlb_if_available),
		cmocka_unit_test(test_add_and_take),
		cmocka_unit_test(test_add_when_full),
		cmocka_unit_test(test_window_layout),
		cmocka_unit_test(test_window_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
