// SPDX-License-Identifier: MIT
/*
 * Split virtqueue (device side) against real rings in memfd guest memory:
 * a tiny driver here writes descriptor tables, avail entries and event
 * fields the way a guest would, then the device side pops, pushes and
 * decides notifications. Every hostile chain shape has its own case in
 * broken_cases[] and must end in a broken queue with the right reason,
 * leaving the used ring untouched.
 *
 * Guest physical layout (one memfd, sparse):
 *   A   gpa 0x0         64 KiB   rings at 0x0 / 0x1000 / 0x2000, buffers from 0x4000
 *   B   gpa 0x10000     64 KiB   adjacent to A: buffers may span A and B
 *       gpa 0x20000..0x100000    hole
 *   C   gpa 0x100000    64 KiB
 *   BIG gpa 0x100000000 2 GiB    only for the u32 chain-length limit (never touched)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/virtio_config.h>

#include "mem/guest_mem.h"
#include "virtq/split.h"

#define GPA_DESC 0x0ull
#define GPA_AVAIL 0x1000ull
#define GPA_USED 0x2000ull
#define GPA_BUF 0x4000ull       /* buffer i at GPA_BUF + 0x100 * i */
#define GPA_ITAB 0x8000ull      /* indirect tables */
#define GPA_B 0x10000ull
#define GPA_HOLE 0x30000ull
#define GPA_C 0x100000ull
#define GPA_BIG 0x100000000ull
#define BIG_SIZE 0x80000000ull
#define FX_IOV 64u

#define F_INDIRECT (1ull << VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT_IDX (1ull << VIRTIO_RING_F_EVENT_IDX)
#define F_NOTIFY_ON_EMPTY (1ull << VIRTIO_F_NOTIFY_ON_EMPTY)

struct broken_case;

struct fx {
	const struct broken_case *bc;  /* for the broken-case runner */
	bool started;
	int fd;
	struct gmem mem;
	unsigned int num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;            /* the driver's next avail index */
	struct vq vq;
	struct iovec iov[FX_IOV];
	struct vq_elem elem;
};

/* ---- the driver side --------------------------------------------------- */

static void *gp(struct fx *f, uint64_t gpa, uint64_t len)
{
	void *p = gmem_gpa_ptr(&f->mem, gpa, len);

	assert_non_null(p);
	return p;
}

static uint64_t buf(unsigned int i)
{
	return GPA_BUF + 0x100ull * i;
}

static void map_guest(struct fx *f)
{
	const struct gmem_region_desc regions[] = {
		{ .gpa = 0, .size = 0x10000, .uva = 0x700000000000ull, .mmap_offset = 0 },
		{ .gpa = GPA_B, .size = 0x10000, .uva = 0x700010000000ull, .mmap_offset = 0x10000 },
		{ .gpa = GPA_C, .size = 0x10000, .uva = 0x700020000000ull, .mmap_offset = 0x20000 },
		{ .gpa = GPA_BIG, .size = BIG_SIZE, .uva = 0x600000000000ull, .mmap_offset = 0 },
	};
	int fds[4];

	f->fd = memfd_create("test-virtq", MFD_CLOEXEC);
	assert_true(f->fd >= 0);
	assert_int_equal(ftruncate(f->fd, (off_t)BIG_SIZE), 0);
	for (unsigned int i = 0; i < 4; i++)
		fds[i] = f->fd;
	gmem_init(&f->mem);
	assert_int_equal(gmem_map(&f->mem, regions, 4, fds), 0);
}

/* A fresh ring of @num entries whose indices (avail, used, last_avail) start at @start. */
static void fx_start(struct fx *f, unsigned int num, uint64_t features, uint16_t start)
{
	struct vq_config cfg = { .name = "test", .num = num, .features = features };

	map_guest(f);
	f->started = true;
	f->num = num;
	f->desc = gp(f, GPA_DESC, 16ull * num);
	f->avail = gp(f, GPA_AVAIL, 6 + 2ull * num);
	f->used = gp(f, GPA_USED, 6 + 8ull * num);
	f->avail->idx = htole16(start);
	f->used->idx = htole16(start);
	f->avail_idx = start;
	cfg.desc = f->desc;
	cfg.avail = f->avail;
	cfg.used = f->used;
	cfg.mem = &f->mem;
	assert_int_equal(vq_init(&f->vq, &cfg), 0);
	vq_set_last_avail(&f->vq, start);
}

static void fx_stop(struct fx *f)
{
	if (!f->started)
		return;
	vq_fini(&f->vq);
	gmem_unmap(&f->mem);
	close(f->fd);
	f->started = false;
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->bc = *state;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	fx_stop(f);
	free(f);
	return 0;
}

static void set_desc(struct vring_desc *t, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16(flags);
	t[i].next = htole16(next);
}

static void desc(struct fx *f, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	set_desc(f->desc, i, addr, len, flags, next);
}

/* An indirect table of @n entries at @gpa (filled by the caller through the pointer). */
static struct vring_desc *itab(struct fx *f, uint64_t gpa, unsigned int n)
{
	return gp(f, gpa, 16ull * n);
}

static void publish_avail(struct fx *f, uint16_t idx)
{
	__atomic_store_n(&f->avail->idx, htole16(idx), __ATOMIC_RELEASE);
}

/* Make chain @head available, as a driver does. */
static void avail(struct fx *f, uint16_t head)
{
	f->avail->ring[f->avail_idx & (f->num - 1)] = htole16(head);
	f->avail_idx++;
	publish_avail(f, f->avail_idx);
}

static void set_used_event(struct fx *f, uint16_t v)
{
	f->avail->ring[f->num] = htole16(v);
}

static uint16_t avail_event(struct fx *f)
{
	uint16_t v;

	memcpy(&v, (uint8_t *)f->used + 4 + 8 * f->num, sizeof(v));
	return le16toh(v);
}

static uint16_t used_idx(struct fx *f)
{
	return le16toh(f->used->idx);
}

static int pop_n(struct fx *f, unsigned int iov_max)
{
	return vq_pop(&f->vq, f->iov, iov_max, &f->elem);
}

static int pop(struct fx *f)
{
	return pop_n(f, FX_IOV);
}

/* The popped chain has this shape. */
static void expect_elem(struct fx *f, unsigned int out_num, unsigned int in_num, uint32_t out_len,
			uint32_t in_len)
{
	assert_int_equal(f->elem.out_num, out_num);
	assert_int_equal(f->elem.in_num, in_num);
	assert_int_equal(f->elem.out_len, out_len);
	assert_int_equal(f->elem.in_len, in_len);
}

/* iovec @i is guest range [gpa, gpa + len). */
static void expect_iov(struct fx *f, unsigned int i, uint64_t gpa, size_t len)
{
	assert_ptr_equal(f->iov[i].iov_base, gp(f, gpa, len));
	assert_int_equal(f->iov[i].iov_len, len);
}

/* @k single-buffer chains: make available, pop, push, flush (one batch). */
static void cycle(struct fx *f, unsigned int k)
{
	uint16_t heads[16];

	assert_true(k <= 16 && k <= f->num);
	for (unsigned int i = 0; i < k; i++) {
		desc(f, i, buf(i), 32, VRING_DESC_F_WRITE, 0);
		avail(f, (uint16_t)i);
	}
	for (unsigned int i = 0; i < k; i++) {
		assert_int_equal(pop(f), 0);
		heads[i] = f->elem.head;
	}
	for (unsigned int i = 0; i < k; i++)
		assert_int_equal(vq_push(&f->vq, heads[i], 32), 0);
	vq_flush(&f->vq);
}

/* ---- good chains ------------------------------------------------------- */

static void test_init_rejects_bad_config(void **state)
{
	struct fx *f = *state;
	const unsigned int bad_num[] = { 0, 3, 6, 100, 65536, 32769 };
	struct vq_config cfg;
	struct vq vq;

	fx_start(f, 8, 0, 0);
	cfg = (struct vq_config){ .name = "bad", .num = 8, .desc = f->desc, .avail = f->avail,
				  .used = f->used, .mem = &f->mem };
	for (unsigned int i = 0; i < sizeof(bad_num) / sizeof(bad_num[0]); i++) {
		cfg.num = bad_num[i];
		assert_int_equal(vq_init(&vq, &cfg), -EINVAL);
	}
	cfg.num = 8;
	cfg.desc = (struct vring_desc *)((uint8_t *)f->desc + 8);
	assert_int_equal(vq_init(&vq, &cfg), -EINVAL);
	cfg.desc = f->desc;
	cfg.avail = (struct vring_avail *)((uint8_t *)f->avail + 1);
	assert_int_equal(vq_init(&vq, &cfg), -EINVAL);
	cfg.avail = f->avail;
	cfg.used = (struct vring_used *)((uint8_t *)f->used + 2);
	assert_int_equal(vq_init(&vq, &cfg), -EINVAL);
	cfg.used = f->used;
	cfg.mem = NULL;
	assert_int_equal(vq_init(&vq, &cfg), -EINVAL);
	cfg.mem = &f->mem;
	cfg.num = VQ_MAX_SIZE;
	assert_int_equal(vq_init(&vq, &cfg), 0);
	vq_fini(&vq);
}

static void test_single(void **state)
{
	struct fx *f = *state;
	uint8_t *b;

	fx_start(f, 8, 0, 0);
	assert_int_equal(pop(f), -EAGAIN);
	b = gp(f, buf(3), 64);
	for (unsigned int i = 0; i < 64; i++)
		b[i] = (uint8_t)(i * 7);
	desc(f, 5, buf(3), 64, 0, 0);
	avail(f, 5);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->elem.head, 5);
	expect_elem(f, 1, 0, 64, 0);
	expect_iov(f, 0, buf(3), 64);
	assert_int_equal(((uint8_t *)f->iov[0].iov_base)[10], 70);
	assert_int_equal(pop(f), -EAGAIN);
	assert_int_equal(vq_last_avail(&f->vq), 1);
	assert_false(vq_is_broken(&f->vq));
	assert_string_equal(vq_broken_reason(&f->vq), "");
}

static void test_chain_mixed(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	/* out of order indices: 5 -> 2 -> 7 -> 3 */
	desc(f, 5, buf(0), 20, VRING_DESC_F_NEXT, 2);
	desc(f, 2, buf(1), 24, VRING_DESC_F_NEXT, 7);
	desc(f, 7, buf(2), 100, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
	desc(f, 3, buf(4), 50, VRING_DESC_F_WRITE, 0);
	avail(f, 5);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->elem.head, 5);
	expect_elem(f, 2, 2, 44, 150);
	expect_iov(f, 0, buf(0), 20);
	expect_iov(f, 1, buf(1), 24);
	expect_iov(f, 2, buf(2), 100);
	expect_iov(f, 3, buf(4), 50);
}

/* A 44-byte vsock header split 10 + 34 and a payload: gathering gives the bytes back. */
static void test_header_split(void **state)
{
	struct fx *f = *state;
	uint8_t want[60], got[60];
	size_t at = 0;

	fx_start(f, 8, 0, 0);
	for (unsigned int i = 0; i < sizeof(want); i++)
		want[i] = (uint8_t)(0xA0 ^ i);
	memcpy(gp(f, buf(0), 10), want, 10);
	memcpy(gp(f, buf(1), 34), want + 10, 34);
	memcpy(gp(f, buf(2), 16), want + 44, 16);
	desc(f, 0, buf(0), 10, VRING_DESC_F_NEXT, 1);
	desc(f, 1, buf(1), 34, VRING_DESC_F_NEXT, 2);
	desc(f, 2, buf(2), 16, 0, 0);
	avail(f, 0);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 3, 0, 60, 0);
	for (unsigned int i = 0; i < f->elem.out_num; i++) {
		assert_true(at + f->iov[i].iov_len <= sizeof(got));
		memcpy(got + at, f->iov[i].iov_base, f->iov[i].iov_len);
		at += f->iov[i].iov_len;
	}
	assert_memory_equal(got, want, sizeof(want));
}

static void test_zero_length_skipped(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	/* zero-length descriptors with addresses that map nowhere are harmless */
	desc(f, 0, 0xdeadbeef00000000ull, 0, VRING_DESC_F_NEXT, 1);
	desc(f, 1, buf(0), 8, VRING_DESC_F_NEXT, 2);
	desc(f, 2, UINT64_MAX, 0, VRING_DESC_F_WRITE, 0);
	avail(f, 0);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 1, 0, 8, 0);
	expect_iov(f, 0, buf(0), 8);
}

/* A buffer over the A/B boundary becomes two iovecs, one per region. */
static void test_cross_region_split(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	desc(f, 0, GPA_B - 0x30, 0x60, VRING_DESC_F_NEXT, 1);
	desc(f, 1, GPA_B - 0x10, 0x20, VRING_DESC_F_WRITE, 0);
	avail(f, 0);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 2, 2, 0x60, 0x20);
	expect_iov(f, 0, GPA_B - 0x30, 0x30);
	expect_iov(f, 1, GPA_B, 0x30);
	expect_iov(f, 2, GPA_B - 0x10, 0x10);
	expect_iov(f, 3, GPA_B, 0x10);
}

/* A chain of exactly the queue size, and an avail jump of exactly the queue size, are legal. */
static void test_limits_exactly_reached(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	for (unsigned int i = 0; i < 8; i++)
		desc(f, i, buf(i), 4, i < 7 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	for (unsigned int i = 0; i < 8; i++)
		f->avail->ring[i] = htole16(0);
	f->avail_idx = 8;
	publish_avail(f, 8);
	for (unsigned int i = 0; i < 8; i++) {
		assert_int_equal(pop_n(f, 8), 0);
		expect_elem(f, 8, 0, 32, 0);
	}
	assert_int_equal(pop(f), -EAGAIN);
	assert_false(vq_is_broken(&f->vq));
}

/* Two descriptors of 1.5 GiB: 3 GiB total still fits the u32 chain length. */
static void test_large_chain_fits_u32(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	desc(f, 0, GPA_BIG, 0x60000000, VRING_DESC_F_NEXT, 1);
	desc(f, 1, GPA_BIG + 0x10000000, 0x60000000, VRING_DESC_F_WRITE, 0);
	avail(f, 0);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 1, 1, 0x60000000u, 0x60000000u);
}

/* Two normal descriptors, then an indirect one whose table chains 0 -> 2 -> 1. */
static void test_indirect(void **state)
{
	struct fx *f = *state;
	struct vring_desc *t;

	fx_start(f, 8, F_INDIRECT, 0);
	t = itab(f, GPA_ITAB, 3);
	set_desc(t, 0, buf(10), 16, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, buf(11), 32, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(t, 1, buf(12), 8, VRING_DESC_F_WRITE, 0);
	desc(f, 4, buf(0), 8, VRING_DESC_F_NEXT, 6);
	/* the WRITE flag on the descriptor naming the table is ignored (§2.7.5.3.2) */
	desc(f, 6, GPA_ITAB, 48, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	avail(f, 4);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->elem.head, 4);
	expect_elem(f, 2, 2, 24, 40);
	expect_iov(f, 0, buf(0), 8);
	expect_iov(f, 1, buf(10), 16);
	expect_iov(f, 2, buf(11), 32);
	expect_iov(f, 3, buf(12), 8);

	/* a larger table next (private copy grows), read straight through */
	t = itab(f, GPA_ITAB + 0x400, 40);
	for (unsigned int i = 0; i < 40; i++)
		set_desc(t, i, buf(i), 1, i < 39 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	desc(f, 1, GPA_ITAB + 0x400, 40 * 16, VRING_DESC_F_INDIRECT, 0);
	avail(f, 1);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 40, 0, 40, 0);
	expect_iov(f, 39, buf(39), 1);

	/* the largest table allowed: 65536 zeroed entries, the first ends the chain */
	desc(f, 2, GPA_BIG, VQ_MAX_INDIRECT * 16, VRING_DESC_F_INDIRECT, 0);
	avail(f, 2);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 0, 0, 0, 0);
	assert_false(vq_is_broken(&f->vq));
}

/* The table itself may span the A/B boundary: it is copied piecewise. */
static void test_indirect_table_across_regions(void **state)
{
	struct fx *f = *state;
	struct vring_desc t[2];

	fx_start(f, 8, F_INDIRECT, 0);
	set_desc(t, 0, buf(1), 5, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, buf(2), 6, VRING_DESC_F_WRITE, 0);
	memcpy(gp(f, GPA_B - 16, 16), &t[0], 16);
	memcpy(gp(f, GPA_B, 16), &t[1], 16);
	desc(f, 0, GPA_B - 16, 32, VRING_DESC_F_INDIRECT, 0);
	avail(f, 0);
	assert_int_equal(pop(f), 0);
	expect_elem(f, 1, 1, 5, 6);
	expect_iov(f, 1, buf(2), 6);
}

/* ---- hostile chains ---------------------------------------------------- */

/* A descriptor as the test writes it. */
struct tdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define R(a, l) { (a), (l), 0, 0 }
#define RN(a, l, n) { (a), (l), VRING_DESC_F_NEXT, (n) }
#define W(a, l) { (a), (l), VRING_DESC_F_WRITE, 0 }
#define WN(a, l, n) { (a), (l), VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (n) }
#define IND(a, l) { (a), (l), VRING_DESC_F_INDIRECT, 0 }
#define IND_F(a, l, f) { (a), (l), VRING_DESC_F_INDIRECT | (f), 1 }

/*
 * One hostile shape. Unless @avail_idx is set, @main goes to descriptors
 * 0..3, @table to an indirect table at GPA_ITAB, and @head is made
 * available; with @avail_idx, only avail->idx is published (ring untouched).
 */
struct broken_case {
	const char *name;
	uint64_t features;
	unsigned int iov_max;          /* 0: FX_IOV */
	uint16_t head;
	struct tdesc main[4];
	struct tdesc table[2];
	uint32_t avail_idx;            /* 0: none; else the value + 1 */
	const char *reason;            /* substring of vq_broken_reason() */
};

#define HOLE_END (GPA_B + 0x10000 - 0x10)
#define TWO_GB_SLICE 0x60000000u

static const struct broken_case broken_cases[] = {
	{ "avail idx jumps past queue size", .avail_idx = 9 + 1,
	  .reason = "guest moved avail index from 0 to 9" },
	{ "avail idx moves backwards", .avail_idx = 0xffff + 1,
	  .reason = "guest moved avail index from 0 to 65535" },
	{ "head == queue size", .head = 8, .reason = "head 8 is not below the queue size 8" },
	{ "head 0xffff", .head = 0xffff, .reason = "head 65535" },
	{ "next == queue size", .main = { RN(GPA_BUF, 16, 8) }, .reason = "next 8 is not below" },
	{ "self loop", .main = { RN(GPA_BUF, 16, 0) }, .reason = "loop" },
	{ "two-descriptor loop", .main = { RN(GPA_BUF, 16, 1), RN(GPA_BUF, 16, 0) },
	  .reason = "loop" },
	{ "zero-length loop", .main = { RN(GPA_BUF, 0, 0) }, .reason = "loop" },
	{ "addr + len wraps", .main = { R(UINT64_MAX - 5, 10) }, .reason = "wraps past 2^64" },
	{ "buffer in a hole", .main = { R(GPA_HOLE, 16) }, .reason = "not inside guest memory" },
	{ "buffer past the last region", .main = { R(GPA_BIG + BIG_SIZE - 8, 16) },
	  .reason = "not inside guest memory" },
	{ "buffer runs into a hole", .main = { R(HOLE_END, 0x20) },
	  .reason = "not inside guest memory" },
	{ "readable after writable", .main = { WN(GPA_BUF, 16, 1), R(GPA_BUF, 16) },
	  .reason = "readable descriptor after" },
	{ "chain over 4 GiB",
	  .main = { RN(GPA_BIG, TWO_GB_SLICE, 1), RN(GPA_BIG, TWO_GB_SLICE, 2), R(GPA_BIG, TWO_GB_SLICE) },
	  .reason = "chain longer than 4294967295 bytes" },
	{ "more buffers than iovecs", .iov_max = 2,
	  .main = { RN(GPA_BUF, 1, 1), RN(GPA_BUF, 1, 2), R(GPA_BUF, 1) },
	  .reason = "more than 2 buffers" },
	{ "region split needs an iovec", .iov_max = 1, .main = { R(GPA_B - 8, 16) },
	  .reason = "more than 1 buffers" },
	{ "indirect not negotiated", .main = { IND(GPA_ITAB, 16) }, .table = { R(GPA_BUF, 4) },
	  .reason = "INDIRECT_DESC was not negotiated" },
	{ "indirect with NEXT", F_INDIRECT,
	  .main = { IND_F(GPA_ITAB, 16, VRING_DESC_F_NEXT), R(GPA_BUF, 4) },
	  .table = { R(GPA_BUF, 4) }, .reason = "NEXT set" },
	{ "indirect len 0", F_INDIRECT, .main = { IND(GPA_ITAB, 0) }, .reason = "length 0 is not" },
	{ "indirect len 24", F_INDIRECT, .main = { IND(GPA_ITAB, 24) },
	  .reason = "length 24 is not" },
	{ "indirect > 65536 entries", F_INDIRECT, .main = { IND(GPA_ITAB, (VQ_MAX_INDIRECT + 1) * 16) },
	  .reason = "65537 entries" },
	{ "nested indirect", F_INDIRECT, .main = { IND(GPA_ITAB, 32) },
	  .table = { RN(GPA_BUF, 4, 1), IND(GPA_ITAB, 32) }, .reason = "nested" },
	{ "indirect loop", F_INDIRECT, .main = { IND(GPA_ITAB, 32) },
	  .table = { RN(GPA_BUF, 4, 1), RN(GPA_BUF, 4, 0) }, .reason = "2-entry table (loop)" },
	{ "indirect next past table", F_INDIRECT, .main = { IND(GPA_ITAB, 32) },
	  .table = { RN(GPA_BUF, 4, 2), R(GPA_BUF, 4) }, .reason = "next 2 is past" },
	{ "indirect table in a hole", F_INDIRECT, .main = { IND(GPA_HOLE, 32) },
	  .reason = "indirect table 0x" },
	{ "indirect table runs into a hole", F_INDIRECT, .main = { IND(GPA_C + 0x10000 - 16, 32) },
	  .reason = "indirect table 0x" },
	{ "indirect readable after writable", F_INDIRECT, .main = { IND(GPA_ITAB, 32) },
	  .table = { WN(GPA_BUF, 4, 1), R(GPA_BUF, 4) }, .reason = "readable descriptor after" },
	/* the order rule holds across the main chain / table boundary */
	{ "main writable, table readable", F_INDIRECT,
	  .main = { WN(GPA_BUF, 4, 1), IND(GPA_ITAB, 16) }, .table = { R(GPA_BUF, 4) },
	  .reason = "readable descriptor after" },
	{ "indirect entry in a hole", F_INDIRECT, .main = { IND(GPA_ITAB, 16) },
	  .table = { R(GPA_HOLE, 4) }, .reason = "not inside guest memory" },
	{ "indirect entry wraps", F_INDIRECT, .main = { IND(GPA_ITAB, 16) },
	  .table = { R(UINT64_MAX - 1, 4) }, .reason = "wraps past 2^64" },
};

#define N_BROKEN (sizeof(broken_cases) / sizeof(broken_cases[0]))

/* One hostile shape: the pop breaks the queue, for the right reason, and nothing else moves. */
static void test_broken_case(void **state)
{
	struct fx *f = *state;
	const struct broken_case *bc = f->bc;
	unsigned int iov_max = bc->iov_max ? bc->iov_max : FX_IOV;
	int rc;

	fx_start(f, 8, bc->features, 0);
	if (bc->avail_idx) {
		publish_avail(f, (uint16_t)(bc->avail_idx - 1));
	} else {
		struct vring_desc *t = itab(f, GPA_ITAB, 2);

		for (unsigned int i = 0; i < 4; i++)
			desc(f, i, bc->main[i].addr, bc->main[i].len, bc->main[i].flags, bc->main[i].next);
		for (unsigned int i = 0; i < 2; i++)
			set_desc(t, i, bc->table[i].addr, bc->table[i].len, bc->table[i].flags,
				 bc->table[i].next);
		avail(f, bc->head);
	}
	rc = pop_n(f, iov_max);
	if (rc != -EIO)
		fail_msg("%s: pop returned %d, want -EIO", bc->name, rc);
	if (!vq_is_broken(&f->vq) || !strstr(vq_broken_reason(&f->vq), bc->reason))
		fail_msg("%s: reason \"%s\", want \"%s\"", bc->name, vq_broken_reason(&f->vq),
			 bc->reason);
	assert_int_equal(pop_n(f, iov_max), -EIO);
	assert_int_equal(vq_push(&f->vq, 0, 0), -EIO);
	vq_flush(&f->vq);
	assert_int_equal(vq_last_avail(&f->vq), 0);
	assert_int_equal(used_idx(f), 0);
	assert_false(vq_should_notify(&f->vq));
}

/* Once broken, valid chains made available later are not popped and no ring field is written. */
static void test_broken_stays_broken(void **state)
{
	struct fx *f = *state;
	char reason[sizeof(f->vq.broken_reason)];

	fx_start(f, 8, 0, 0);
	/* a completed chain not yet flushed when the queue breaks is never published */
	desc(f, 2, buf(2), 8, 0, 0);
	avail(f, 2);
	assert_int_equal(pop(f), 0);
	assert_int_equal(vq_push(&f->vq, 2, 0), 0);
	avail(f, 9);
	assert_int_equal(pop(f), -EIO);
	vq_flush(&f->vq);
	assert_int_equal(used_idx(f), 0);
	strcpy(reason, vq_broken_reason(&f->vq));
	/* the driver "repairs" the entry and adds a good chain */
	f->avail->ring[1] = htole16(1);
	desc(f, 1, buf(1), 8, 0, 0);
	avail(f, 1);
	f->used->flags = htole16(0x4321);
	assert_int_equal(pop(f), -EIO);
	assert_false(vq_enable_notify(&f->vq));
	vq_disable_notify(&f->vq);
	assert_int_equal(le16toh(f->used->flags), 0x4321);
	assert_int_equal(vq_last_avail(&f->vq), 1);
	/* a later violation does not replace the first reason */
	vq_mark_broken(&f->vq, "second");
	assert_string_equal(vq_broken_reason(&f->vq), reason);
	assert_non_null(strstr(reason, "head 9"));
}

/* A driver that re-offers descriptors still in flight: more than num chains out. */
static void test_inflight_reuse(void **state)
{
	struct fx *f = *state;

	fx_start(f, 4, 0, 0);
	desc(f, 0, buf(0), 8, 0, 0);
	for (unsigned int i = 0; i < 4; i++)
		avail(f, 0);
	for (unsigned int i = 0; i < 4; i++)
		assert_int_equal(pop(f), 0);
	avail(f, 0);
	assert_int_equal(pop(f), -EIO);
	assert_non_null(strstr(vq_broken_reason(&f->vq), "in flight"));
}

static void test_mark_broken(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	desc(f, 0, buf(0), 8, 0, 0);
	avail(f, 0);
	vq_mark_broken(&f->vq, "event buffer is read-only (%d)", 7);
	assert_true(vq_is_broken(&f->vq));
	assert_string_equal(vq_broken_reason(&f->vq), "event buffer is read-only (7)");
	assert_int_equal(pop(f), -EIO);
}

/* ---- indices, batching, notifications ---------------------------------- */

/* 40 chains from 0xFFF0: indices wrap at 2^16, ring slots at the queue size. */
static void test_wraparound(void **state)
{
	struct fx *f = *state;
	const uint16_t start = 0xfff0;

	fx_start(f, 16, 0, start);
	for (unsigned int r = 0; r < 40; r++) {
		uint16_t head = (uint16_t)((r * 5) % 16);
		uint16_t slot = (uint16_t)(start + r) & 15;

		desc(f, head, buf(r), r + 1, VRING_DESC_F_WRITE, 0);
		avail(f, head);
		assert_int_equal(pop(f), 0);
		assert_int_equal(f->elem.head, head);
		assert_int_equal(f->elem.in_len, r + 1);
		assert_int_equal(vq_push(&f->vq, head, r * 3), 0);
		vq_flush(&f->vq);
		assert_int_equal(used_idx(f), (uint16_t)(start + r + 1));
		assert_int_equal(le32toh(f->used->ring[slot].id), head);
		assert_int_equal(le32toh(f->used->ring[slot].len), r * 3);
	}
	assert_int_equal(vq_last_avail(&f->vq), 0x0018);

	/* a batch of 10 offered at once across the next wrap of the 16-entry ring */
	for (unsigned int i = 0; i < 10; i++) {
		desc(f, i, buf(i), 4, 0, 0);
		avail(f, (uint16_t)i);
	}
	for (unsigned int i = 0; i < 10; i++) {
		assert_int_equal(pop(f), 0);
		assert_int_equal(f->elem.head, i);
	}
	assert_int_equal(pop(f), -EAGAIN);
}

/* Several pushes are invisible to the guest until one flush publishes them all. */
static void test_batching(void **state)
{
	struct fx *f = *state;
	uint16_t heads[3];

	fx_start(f, 8, 0, 0);
	for (unsigned int i = 0; i < 3; i++) {
		desc(f, i + 2, buf(i), 16, VRING_DESC_F_WRITE, 0);
		avail(f, (uint16_t)(i + 2));
	}
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(pop(f), 0);
		heads[i] = f->elem.head;
	}
	/* completed out of order */
	assert_int_equal(vq_push(&f->vq, heads[1], 10), 0);
	assert_int_equal(vq_push(&f->vq, heads[0], 20), 0);
	assert_int_equal(vq_push(&f->vq, heads[2], 30), 0);
	assert_int_equal(used_idx(f), 0);
	assert_int_equal(le32toh(f->used->ring[0].id), 3);
	assert_int_equal(le32toh(f->used->ring[1].id), 2);
	assert_int_equal(le32toh(f->used->ring[2].id), 4);
	assert_int_equal(le32toh(f->used->ring[2].len), 30);
	vq_flush(&f->vq);
	assert_int_equal(used_idx(f), 3);
	assert_true(vq_should_notify(&f->vq));
	assert_false(vq_should_notify(&f->vq));
	vq_flush(&f->vq);
	assert_int_equal(used_idx(f), 3);
}

static void test_push_misuse(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	assert_int_equal(vq_push(&f->vq, 0, 0), -EINVAL);
	desc(f, 0, buf(0), 8, 0, 0);
	avail(f, 0);
	assert_int_equal(pop(f), 0);
	assert_int_equal(vq_push(&f->vq, 8, 0), -EINVAL);
	assert_int_equal(vq_push(&f->vq, 0, 0), 0);
	assert_int_equal(vq_push(&f->vq, 0, 0), -EINVAL);
	vq_flush(&f->vq);
	assert_int_equal(used_idx(f), 1);
	assert_false(vq_is_broken(&f->vq));
}

/* SET_VRING_BASE / GET_VRING_BASE: pops resume at the given avail index. */
static void test_set_last_avail(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	for (unsigned int i = 0; i < 4; i++) {
		desc(f, i, buf(i), 8, 0, 0);
		avail(f, (uint16_t)(3 - i));
	}
	vq_set_last_avail(&f->vq, 2);
	assert_int_equal(vq_last_avail(&f->vq), 2);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->elem.head, 1);
	assert_int_equal(pop(f), 0);
	assert_int_equal(f->elem.head, 0);
	assert_int_equal(pop(f), -EAGAIN);
	assert_int_equal(vq_last_avail(&f->vq), 4);
}

/* After a ring restart the first notify decision is "yes", whatever used_event says. */
static void test_restart_resets_notify(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, F_EVENT_IDX, 0);
	set_used_event(f, 100);
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));
	cycle(f, 1);
	assert_false(vq_should_notify(&f->vq));
	vq_set_last_avail(&f->vq, vq_last_avail(&f->vq));
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));
}

static void test_need_event_table(void **state)
{
	static const struct {
		uint16_t event, new_idx, old;
		bool want;
	} t[] = {
		{ 5, 6, 5, true },            /* event exactly at old: entry 5 just used */
		{ 5, 5, 4, false },           /* event at new: not reached yet */
		{ 4, 6, 3, true },            /* inside the batch */
		{ 2, 6, 3, false },           /* before old: already notified past it */
		{ 7, 6, 3, false },           /* after new */
		{ 5, 5, 5, false },           /* nothing moved */
		{ 0xffff, 1, 0xfffe, true },  /* wrap, event before 0 */
		{ 0, 1, 0xfffe, true },       /* wrap, event at 0 */
		{ 1, 1, 0xfffe, false },      /* wrap, event at new */
		{ 0xfffd, 1, 0xfffe, false }, /* wrap, event before old */
		{ 0x8000, 0x8001, 0, true },  /* a long way */
		{ 0x8001, 0x8001, 0, false },
	};

	(void)state;
	for (unsigned int i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (vq_need_event(t[i].event, t[i].new_idx, t[i].old) != t[i].want)
			fail_msg("need_event(%u, %u, %u) != %d", t[i].event, t[i].new_idx, t[i].old,
				 t[i].want);
	}
}

static void test_event_idx_notify(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, F_EVENT_IDX, 0);
	/* NO_INTERRUPT is ignored with EVENT_IDX */
	f->avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	set_used_event(f, 0);
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));    /* first decision after a (re)start */
	assert_false(vq_should_notify(&f->vq));   /* nothing new */
	set_used_event(f, 1);                     /* exactly the next entry */
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));
	set_used_event(f, 5);                     /* after */
	cycle(f, 1);
	assert_false(vq_should_notify(&f->vq));
	set_used_event(f, 2);                     /* before: already passed */
	cycle(f, 1);
	assert_false(vq_should_notify(&f->vq));
	cycle(f, 2);                              /* used 4 -> 6 passes 5 */
	set_used_event(f, 5);
	assert_true(vq_should_notify(&f->vq));
	assert_int_equal(used_idx(f), 6);
}

static void test_event_idx_notify_wrap(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, F_EVENT_IDX, 0xfffc);
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));    /* used 0xfffd */
	set_used_event(f, 0xffff);
	cycle(f, 3);                              /* 0xfffd -> 0x0000 */
	assert_int_equal(used_idx(f), 0);
	assert_true(vq_should_notify(&f->vq));
	set_used_event(f, 1);
	cycle(f, 1);                              /* 0 -> 1: not yet */
	assert_false(vq_should_notify(&f->vq));
	cycle(f, 1);                              /* 1 -> 2 */
	assert_true(vq_should_notify(&f->vq));
}

static void test_no_interrupt_flag(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));
	f->avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	cycle(f, 1);
	assert_false(vq_should_notify(&f->vq));
	f->avail->flags = 0;
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));
	assert_false(vq_should_notify(&f->vq));   /* nothing new since */
	/* used_event is ignored without EVENT_IDX */
	set_used_event(f, 100);
	cycle(f, 1);
	assert_true(vq_should_notify(&f->vq));
}

static void test_notify_on_empty(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, F_NOTIFY_ON_EMPTY, 0);
	f->avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	cycle(f, 1);                              /* queue now empty */
	assert_true(vq_should_notify(&f->vq));
	desc(f, 6, buf(6), 8, 0, 0);
	avail(f, 6);
	cycle(f, 1);                              /* one chain still waiting */
	assert_false(vq_should_notify(&f->vq));
}

/* A buffer added between "ring empty" and "notifications on" must not be slept on. */
static void test_enable_notify_race(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, 0, 0);
	vq_disable_notify(&f->vq);
	assert_int_equal(le16toh(f->used->flags), VRING_USED_F_NO_NOTIFY);
	assert_int_equal(pop(f), -EAGAIN);
	desc(f, 0, buf(0), 8, 0, 0);
	avail(f, 0);                              /* the driver saw NO_NOTIFY: no kick */
	assert_true(vq_enable_notify(&f->vq));
	assert_int_equal(le16toh(f->used->flags), 0);
	assert_int_equal(pop(f), 0);
	assert_false(vq_enable_notify(&f->vq));
}

static void test_enable_notify_event_idx(void **state)
{
	struct fx *f = *state;

	fx_start(f, 8, F_EVENT_IDX, 0x10);
	vq_disable_notify(&f->vq);
	assert_int_equal(le16toh(f->used->flags), 0);
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(avail_event(f), 0x10);
	desc(f, 0, buf(0), 8, 0, 0);
	avail(f, 0);
	avail(f, 0);
	assert_true(vq_enable_notify(&f->vq));
	assert_int_equal(pop(f), 0);
	assert_true(vq_enable_notify(&f->vq));    /* the second is still waiting */
	assert_int_equal(pop(f), 0);
	assert_false(vq_enable_notify(&f->vq));
	assert_int_equal(avail_event(f), 0x12);
}

#define T(fn) { #fn, fn, fx_setup, fx_teardown, NULL }

static const struct CMUnitTest fixed_tests[] = {
	T(test_init_rejects_bad_config),
	T(test_single),
	T(test_chain_mixed),
	T(test_header_split),
	T(test_zero_length_skipped),
	T(test_cross_region_split),
	T(test_limits_exactly_reached),
	T(test_large_chain_fits_u32),
	T(test_indirect),
	T(test_indirect_table_across_regions),
	T(test_broken_stays_broken),
	T(test_inflight_reuse),
	T(test_mark_broken),
	T(test_wraparound),
	T(test_batching),
	T(test_push_misuse),
	T(test_set_last_avail),
	T(test_restart_resets_notify),
	T(test_need_event_table),
	T(test_event_idx_notify),
	T(test_event_idx_notify_wrap),
	T(test_no_interrupt_flag),
	T(test_notify_on_empty),
	T(test_enable_notify_race),
	T(test_enable_notify_event_idx),
};

#define N_FIXED (sizeof(fixed_tests) / sizeof(fixed_tests[0]))

int main(void)
{
	struct CMUnitTest tests[N_FIXED + N_BROKEN];

	memcpy(tests, fixed_tests, sizeof(fixed_tests));
	/* one named test per hostile shape, so a failure names the shape */
	for (unsigned int i = 0; i < N_BROKEN; i++) {
		tests[N_FIXED + i] = (struct CMUnitTest){
			.name = broken_cases[i].name,
			.test_func = test_broken_case,
			.setup_func = fx_setup,
			.teardown_func = fx_teardown,
			.initial_state = (void *)&broken_cases[i],
		};
	}
	return _cmocka_run_group_tests("virtq", tests, N_FIXED + N_BROKEN, NULL, NULL);
}
