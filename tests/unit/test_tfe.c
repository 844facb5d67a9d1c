// SPDX-License-Identifier: MIT
/*
 * Unit test of the test front end library (tests/lib), with no daemon and
 * no kernel device: the ring driver against a device-side reader written
 * here, the vsock driver against a scripted fake device on those rings, the
 * header and credit helpers byte for byte, the vhost-user front end against
 * a fake back end on a socketpair (replies queued in advance, or a thread
 * that answers whole start sequences), and the daemon runner against a fake
 * daemon (this program re-executed) and against the real daemon refusing to
 * start.
 *
 * Built from tests/lib/meson.build; argv[1] is the daemon's path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tfe.h"

static const char *daemon_path;

/* ------------------------------------------------------------------ */
/* A device-side view of a split ring                                  */
/* ------------------------------------------------------------------ */

struct dev_ring {
	struct tfe_vring *vr;
	uint16_t last_avail;
	uint16_t used_idx;
};

struct dev_chain {
	uint16_t head;
	unsigned int n;
	struct tfe_vdesc d[TFE_VRING_MAX_CHAIN];
	bool indirect;
};

/* Pop the next avail chain as a device would; 0 when none. */
static int dev_pop(struct dev_ring *dr, struct dev_chain *ch)
{
	struct tfe_vring *vr = dr->vr;
	uint16_t avail = le16toh(__atomic_load_n(&vr->avail->idx, __ATOMIC_ACQUIRE));
	const struct tfe_vdesc *table = vr->desc;
	uint16_t i, limit = vr->num;

	if (avail == dr->last_avail)
		return 0;
	memset(ch, 0, sizeof(*ch));
	ch->head = le16toh(vr->avail->ring[dr->last_avail++ & (vr->num - 1)]);
	assert_true(ch->head < vr->num);
	i = ch->head;
	if (le16toh(vr->desc[i].flags) & TFE_VDESC_F_INDIRECT) {
		uint32_t len = le32toh(vr->desc[i].len);

		ch->indirect = true;
		assert_int_equal(len % 16, 0);
		table = tfe_mem_ptr(vr->mem, le64toh(vr->desc[i].addr), len);
		assert_non_null(table);
		limit = (uint16_t)(len / 16);
		i = 0;
	}
	for (;;) {
		assert_true(i < limit && ch->n < TFE_VRING_MAX_CHAIN);
		ch->d[ch->n++] = table[i];
		if (!(le16toh(table[i].flags) & TFE_VDESC_F_NEXT))
			break;
		i = le16toh(table[i].next);
	}
	return 1;
}

static void dev_push(struct dev_ring *dr, uint16_t head, uint32_t len)
{
	struct tfe_vring *vr = dr->vr;

	vr->used->ring[dr->used_idx & (vr->num - 1)].id = htole32(head);
	vr->used->ring[dr->used_idx & (vr->num - 1)].len = htole32(len);
	dr->used_idx++;
	__atomic_store_n(&vr->used->idx, htole16(dr->used_idx), __ATOMIC_RELEASE);
}

static uint64_t read_eventfd(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/* ------------------------------------------------------------------ */
/* Guest memory                                                        */
/* ------------------------------------------------------------------ */

static void test_mem_layout(void **state)
{
	struct tfe_mem m;
	struct vu_mem_region t[TFE_MEM_MAX_REGIONS];
	uint8_t *p;

	(void)state;
	assert_int_equal(tfe_mem_init(&m, 0x200000, true), 0);
	assert_int_equal(tfe_mem_table(&m, t), 2);
	assert_int_equal(t[0].guest_phys_addr, 0);
	assert_int_equal(t[0].memory_size, 0xa0000);
	assert_int_equal(t[0].mmap_offset, 0);
	assert_int_equal(t[1].guest_phys_addr, 0xc0000);
	assert_int_equal(t[1].memory_size, 0x200000 - 0xc0000);
	assert_int_equal(t[1].mmap_offset, 0xc0000);
	assert_int_equal(t[1].userspace_addr, (uint64_t)(uintptr_t)m.base + 0xc0000);
	/* in the hole, straddling into it, past the end, overflowing */
	assert_null(tfe_mem_ptr(&m, 0xa0000, 1));
	assert_null(tfe_mem_ptr(&m, 0x9ffff, 2));
	assert_null(tfe_mem_ptr(&m, 0x1ffff0, 0x20));
	assert_null(tfe_mem_ptr(&m, 0xc0000, UINT64_MAX));
	assert_null(tfe_mem_ptr(&m, UINT64_MAX, 2));
	assert_int_equal(tfe_mem_uva(&m, 0xb0000), 0);
	p = tfe_mem_ptr(&m, 0x9ffff, 1);
	assert_ptr_equal(p, m.base + 0x9ffff);
	assert_int_equal(tfe_mem_uva(&m, 0xc0010), (uint64_t)(uintptr_t)m.base + 0xc0010);
	/* the same bytes through the memfd: the back end sees what we wrote */
	p = tfe_mem_ptr(&m, 0xc1000, 4);
	memcpy(p, "ABCD", 4);
	{
		char back[4];

		assert_int_equal(pread(m.fd, back, 4, 0xc1000), 4);
		assert_memory_equal(back, "ABCD", 4);
	}
	tfe_mem_fini(&m);
	tfe_mem_fini(&m);
}

static void test_mem_alloc(void **state)
{
	struct tfe_mem m;
	uint64_t a, b, c;

	(void)state;
	assert_int_equal(tfe_mem_init(&m, 0xa0000, true), -EINVAL);
	assert_int_equal(tfe_mem_init(&m, 0x1001, false), -EINVAL);
	assert_int_equal(tfe_mem_init(&m, 0x100000, true), 0);
	assert_int_equal(tfe_mem_alloc(&m, 100, 3, &a), -EINVAL);
	assert_int_equal(tfe_mem_alloc(&m, 0, 8, &a), -EINVAL);
	assert_int_equal(tfe_mem_alloc(&m, 100, 4096, &a), 0);
	assert_int_equal(a, TFE_MEM_ALLOC_START);
	assert_int_equal(tfe_mem_alloc(&m, 0x1000, 64, &b), 0);
	assert_int_equal(b, a + 128);
	assert_int_equal(tfe_mem_alloc(&m, 0x90000, 16, &c), 0);
	assert_true(c + 0x90000 <= 0xa0000);
	/* does not fit below the hole any more: lands above it */
	assert_int_equal(tfe_mem_alloc(&m, 0x20000, 16, &c), 0);
	assert_int_equal(c, 0xc0000);
	assert_non_null(tfe_mem_ptr(&m, c, 0x20000));
	assert_int_equal(tfe_mem_alloc(&m, 0x30000, 16, &c), -ENOMEM);
	tfe_mem_fini(&m);
}

/* ------------------------------------------------------------------ */
/* Ring driver                                                         */
/* ------------------------------------------------------------------ */

struct ring_fixture {
	struct tfe_mem m;
	struct tfe_vring vr;
	struct dev_ring dr;
	int kick, call;
};

static void ring_setup(struct ring_fixture *f, uint16_t num, unsigned int flags)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(tfe_mem_init(&f->m, 0x100000, false), 0);
	assert_int_equal(tfe_vring_init(&f->vr, &f->m, num, flags), 0);
	f->kick = eventfd(0, EFD_NONBLOCK);
	f->call = eventfd(0, EFD_NONBLOCK);
	tfe_vring_set_fds(&f->vr, f->kick, f->call);
	f->dr.vr = &f->vr;
}

static void ring_teardown(struct ring_fixture *f)
{
	tfe_vring_fini(&f->vr);
	tfe_mem_fini(&f->m);
	close(f->kick);
	close(f->call);
}

static void test_vring_layout(void **state)
{
	struct ring_fixture f;
	struct vu_vring_addr a;

	(void)state;
	ring_setup(&f, 128, 0);
	assert_int_equal(f.vr.desc_gpa % 4096, 0);
	assert_int_equal(f.vr.avail_gpa, f.vr.desc_gpa + 16 * 128);
	assert_int_equal(f.vr.used_gpa % 4, 0);
	assert_true(f.vr.used_gpa >= f.vr.avail_gpa + 6 + 2 * 128);
	tfe_vring_addr(&f.vr, 1, &a);
	assert_int_equal(a.index, 1);
	assert_int_equal(a.desc, (uint64_t)(uintptr_t)f.m.base + f.vr.desc_gpa);
	assert_int_equal(a.avail, (uint64_t)(uintptr_t)f.m.base + f.vr.avail_gpa);
	assert_int_equal(a.used, (uint64_t)(uintptr_t)f.m.base + f.vr.used_gpa);
	ring_teardown(&f);
	assert_int_equal(tfe_vring_init(&f.vr, &f.m, 100, 0), -EINVAL);
	assert_int_equal(tfe_vring_init(&f.vr, &f.m, 0, 0), -EINVAL);
}

static void test_vring_chain_roundtrip(void **state)
{
	struct ring_fixture f;
	struct dev_chain ch;
	struct tfe_buf b[3] = {
		{ .gpa = 0x10000, .len = 44 }, { .gpa = 0x20000, .len = 100 },
		{ .gpa = 0x30000, .len = 4096, .write = true },
	};
	uint32_t len;
	uintptr_t tok;
	int head;

	(void)state;
	ring_setup(&f, 8, 0);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), 0);
	head = tfe_vring_add(&f.vr, b, 3, false, 0xabc);
	assert_true(head >= 0);
	assert_int_equal(f.vr.num_free, 5);
	assert_int_equal(dev_pop(&f.dr, &ch), 1);
	assert_int_equal(ch.head, head);
	assert_int_equal(ch.n, 3);
	assert_false(ch.indirect);
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(le64toh(ch.d[i].addr), b[i].gpa);
		assert_int_equal(le32toh(ch.d[i].len), b[i].len);
		assert_int_equal(!!(le16toh(ch.d[i].flags) & TFE_VDESC_F_WRITE), b[i].write);
	}
	assert_int_equal(dev_pop(&f.dr, &ch), 0);
	assert_false(tfe_vring_has_used(&f.vr));
	dev_push(&f.dr, (uint16_t)head, 77);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), 1);
	assert_int_equal(len, 77);
	assert_int_equal(tok, 0xabc);
	assert_int_equal(f.vr.num_free, 8);
	/* the freed descriptors are reusable: fill the whole ring, then no more */
	for (unsigned int i = 0; i < 8; i++)
		assert_true(tfe_vring_add(&f.vr, b, 1, false, i) >= 0);
	assert_int_equal(tfe_vring_add(&f.vr, b, 1, false, 9), -ENOSPC);
	assert_int_equal(tfe_vring_add(&f.vr, b, 0, false, 9), -EINVAL);
	assert_int_equal(tfe_vring_add(&f.vr, b, 2, true, 9), -EINVAL); /* no tables */
	ring_teardown(&f);
}

static void test_vring_indirect(void **state)
{
	struct ring_fixture f;
	struct dev_chain ch;
	struct tfe_buf b[2] = { { .gpa = 0x10000, .len = 44 }, { .gpa = 0x11000, .len = 9 } };
	int head;

	(void)state;
	ring_setup(&f, 16, TFE_VRING_INDIRECT);
	head = tfe_vring_add(&f.vr, b, 2, true, 5);
	assert_true(head >= 0);
	assert_int_equal(f.vr.num_free, 15);  /* one ring descriptor per chain */
	assert_int_equal(dev_pop(&f.dr, &ch), 1);
	assert_true(ch.indirect);
	assert_int_equal(ch.n, 2);
	assert_int_equal(le64toh(ch.d[1].addr), 0x11000);
	assert_int_equal(le32toh(ch.d[1].len), 9);
	ring_teardown(&f);
}

static void test_vring_hostile_device(void **state)
{
	struct ring_fixture f;
	struct tfe_buf b = { .gpa = 0x10000, .len = 8 };
	uint32_t len;
	uintptr_t tok;
	int head;

	(void)state;
	ring_setup(&f, 8, 0);
	head = tfe_vring_add(&f.vr, &b, 1, false, 1);
	/* an id that is not outstanding, then one beyond the ring */
	dev_push(&f.dr, (uint16_t)((head + 1) % 8), 0);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), -EIO);
	dev_push(&f.dr, 200, 0);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), -EIO);
	/* used idx jumping by more than the ring size */
	f.dr.used_idx = (uint16_t)(f.dr.used_idx + 50);
	__atomic_store_n(&f.vr.used->idx, htole16(f.dr.used_idx), __ATOMIC_RELEASE);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), -EIO);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), 0);
	/* raw writers, for hostile suites: a self-loop published as-is */
	tfe_vring_write_desc(&f.vr, 3, 0x1000, 16, TFE_VDESC_F_NEXT, 3);
	tfe_vring_push_avail(&f.vr, 3);
	assert_int_equal(le16toh(f.vr.desc[3].next), 3);
	assert_int_equal(le16toh(f.vr.avail->ring[1]), 3);
	tfe_vring_set_avail_idx(&f.vr, 1000);
	assert_int_equal(le16toh(f.vr.avail->idx), 1000);
	ring_teardown(&f);
}

static void test_vring_need_event(void **state)
{
	(void)state;
	/* the device wants a kick when the index passes its event value */
	assert_true(tfe_vring_need_event(5, 6, 5));
	assert_false(tfe_vring_need_event(6, 6, 5));
	assert_true(tfe_vring_need_event(3, 10, 2));
	assert_false(tfe_vring_need_event(11, 10, 2));
	/* across the 16-bit wrap */
	assert_true(tfe_vring_need_event(0xffff, 2, 0xfffe));
	assert_false(tfe_vring_need_event(2, 2, 0xfffe));
}

static void test_vring_event_idx(void **state)
{
	struct ring_fixture f;
	struct tfe_buf b = { .gpa = 0x10000, .len = 8 };
	struct dev_chain ch;
	uint32_t len;
	uintptr_t tok;

	(void)state;
	ring_setup(&f, 8, TFE_VRING_EVENT_IDX);
	/* device: "notify me when avail idx passes 0" -> first add kicks */
	*tfe_vring_avail_event(&f.vr) = htole16(0);
	tfe_vring_add(&f.vr, &b, 1, false, 1);
	assert_int_equal(tfe_vring_kick(&f.vr), 1);
	assert_int_equal(read_eventfd(f.kick), 1);
	/* device still at 0: the next add is suppressed */
	tfe_vring_add(&f.vr, &b, 1, false, 2);
	assert_int_equal(tfe_vring_kick(&f.vr), 0);
	assert_int_equal(read_eventfd(f.kick), 0);
	/* device caught up and asks for idx 2 -> the third add kicks */
	*tfe_vring_avail_event(&f.vr) = htole16(2);
	tfe_vring_add(&f.vr, &b, 1, false, 3);
	assert_int_equal(tfe_vring_kick(&f.vr), 1);
	/* used_event: after consuming, the driver asks for the next entry */
	assert_int_equal(dev_pop(&f.dr, &ch), 1);
	dev_push(&f.dr, ch.head, 0);
	assert_int_equal(tfe_vring_get_used(&f.vr, &len, &tok), 1);
	assert_false(tfe_vring_arm(&f.vr));
	assert_int_equal(le16toh(*tfe_vring_used_event(&f.vr)), 1);
	assert_int_equal(tfe_vring_wait(&f.vr, 30), -ETIMEDOUT);
	assert_int_equal(dev_pop(&f.dr, &ch), 1);
	dev_push(&f.dr, ch.head, 0);
	assert_int_equal(tfe_vring_wait(&f.vr, 1000), 0);
	ring_teardown(&f);
}

static void test_vring_no_notify_flag(void **state)
{
	struct ring_fixture f;
	struct tfe_buf b = { .gpa = 0x10000, .len = 8 };

	(void)state;
	ring_setup(&f, 8, 0);
	f.vr.used->flags = htole16(TFE_VUSED_F_NO_NOTIFY);
	tfe_vring_add(&f.vr, &b, 1, false, 1);
	assert_int_equal(tfe_vring_kick(&f.vr), 0);
	f.vr.used->flags = 0;
	tfe_vring_add(&f.vr, &b, 1, false, 2);
	assert_int_equal(tfe_vring_kick(&f.vr), 1);
	assert_int_equal(read_eventfd(f.kick), 1);
	ring_teardown(&f);
}

/* ------------------------------------------------------------------ */
/* vsock header and credit                                             */
/* ------------------------------------------------------------------ */

static void test_vsock_hdr_layout(void **state)
{
	struct tfe_vsock_pkt p = {
		.src_cid = 0x0102030405060708ull, .dst_cid = 0x1112131415161718ull,
		.src_port = 0x21222324, .dst_port = 0x31323334, .len = 0x41424344,
		.type = 0x5152, .op = 0x6162, .flags = 0x71727374, .buf_alloc = 0x81828384,
		.fwd_cnt = 0x91929394,
	};
	const uint8_t want[44] = {
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  /* src_cid @0 */
		0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11,  /* dst_cid @8 */
		0x24, 0x23, 0x22, 0x21, 0x34, 0x33, 0x32, 0x31,  /* ports @16 @20 */
		0x44, 0x43, 0x42, 0x41, 0x52, 0x51, 0x62, 0x61,  /* len @24, type @28, op @30 */
		0x74, 0x73, 0x72, 0x71, 0x84, 0x83, 0x82, 0x81,  /* flags @32, buf_alloc @36 */
		0x94, 0x93, 0x92, 0x91,                          /* fwd_cnt @40 */
	};
	uint8_t raw[44];
	struct tfe_vsock_pkt back;

	(void)state;
	tfe_vsock_hdr_pack(raw, &p);
	assert_memory_equal(raw, want, sizeof(want));
	tfe_vsock_hdr_unpack(&back, raw);
	assert_int_equal(back.src_cid, p.src_cid);
	assert_int_equal(back.dst_cid, p.dst_cid);
	assert_int_equal(back.src_port, p.src_port);
	assert_int_equal(back.dst_port, p.dst_port);
	assert_int_equal(back.len, p.len);
	assert_int_equal(back.type, p.type);
	assert_int_equal(back.op, p.op);
	assert_int_equal(back.flags, p.flags);
	assert_int_equal(back.buf_alloc, p.buf_alloc);
	assert_int_equal(back.fwd_cnt, p.fwd_cnt);
	assert_string_equal(tfe_vsock_op_name(TFE_VSOCK_OP_CREDIT_REQUEST), "CREDIT_REQUEST");
	assert_string_equal(tfe_vsock_op_name(99), "UNKNOWN");
}

static void test_vsock_credit(void **state)
{
	(void)state;
	assert_int_equal(tfe_vsock_credit(1000, 0, 0), 1000);
	assert_int_equal(tfe_vsock_credit(1000, 600, 100), 500);
	assert_int_equal(tfe_vsock_credit(1000, 1100, 100), 0);
	/* counters wrapped: 5 - 0xfffffff0 = 21 bytes in flight */
	assert_int_equal(tfe_vsock_credit(1000, 5, 0xfffffff0u), 979);
	assert_int_equal(tfe_vsock_credit(0xffffffffu, 0x10, 0xfffffff0u), 0xffffffffu - 0x20);
	/* a peer claiming to have consumed more than we sent gives no credit */
	assert_int_equal(tfe_vsock_credit(1000, 100, 200), 0);
	assert_int_equal(tfe_vsock_credit(0, 0, 0), 0);
}

/* ------------------------------------------------------------------ */
/* vsock driver against a scripted device                              */
/* ------------------------------------------------------------------ */

#define GCID 7u

struct vs_fixture {
	struct tfe_mem m;
	struct tfe_vring rx, tx;
	struct dev_ring drx, dtx;
	struct tfe_vsock vs;
	int kick[2], call[2];
};

static void vs_setup(struct vs_fixture *f, const struct tfe_vsock_opts *o, unsigned int txflags)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(tfe_mem_init(&f->m, 0x400000, true), 0);
	assert_int_equal(tfe_vring_init(&f->rx, &f->m, 16, 0), 0);
	assert_int_equal(tfe_vring_init(&f->tx, &f->m, 16, txflags), 0);
	for (unsigned int i = 0; i < 2; i++) {
		f->kick[i] = eventfd(0, EFD_NONBLOCK);
		f->call[i] = eventfd(0, EFD_NONBLOCK);
	}
	tfe_vring_set_fds(&f->rx, f->kick[0], f->call[0]);
	tfe_vring_set_fds(&f->tx, f->kick[1], f->call[1]);
	f->drx.vr = &f->rx;
	f->dtx.vr = &f->tx;
	assert_int_equal(tfe_vsock_init(&f->vs, &f->m, &f->rx, &f->tx, NULL, GCID, o), 0);
}

static void vs_teardown(struct vs_fixture *f)
{
	tfe_vsock_fini(&f->vs);
	tfe_vring_fini(&f->rx);
	tfe_vring_fini(&f->tx);
	tfe_mem_fini(&f->m);
	for (unsigned int i = 0; i < 2; i++) {
		close(f->kick[i]);
		close(f->call[i]);
	}
}

/* Device: take one tx packet; header and payload concatenated; 0 if none. */
static int dev_tx(struct vs_fixture *f, struct tfe_vsock_pkt *p, uint8_t *payload, size_t cap)
{
	struct dev_chain ch;
	uint8_t all[TFE_VSOCK_HDR_SIZE + 70000];
	size_t got = 0;

	if (!dev_pop(&f->dtx, &ch))
		return 0;
	for (unsigned int i = 0; i < ch.n; i++) {
		uint32_t len = le32toh(ch.d[i].len);

		assert_false(le16toh(ch.d[i].flags) & TFE_VDESC_F_WRITE);
		assert_true(got + len <= sizeof(all));
		memcpy(all + got, tfe_mem_ptr(&f->m, le64toh(ch.d[i].addr), len), len);
		got += len;
	}
	dev_push(&f->dtx, ch.head, 0);
	assert_true(got >= TFE_VSOCK_HDR_SIZE);
	tfe_vsock_hdr_unpack(p, all);
	assert_int_equal(p->len, got - TFE_VSOCK_HDR_SIZE);
	assert_true(p->len <= cap);
	memcpy(payload, all + TFE_VSOCK_HDR_SIZE, p->len);
	return 1;
}

/* Device: deliver one packet into the next rx buffer (writable descriptors only). */
static void dev_rx(struct vs_fixture *f, const struct tfe_vsock_pkt *p, const void *payload)
{
	uint8_t all[4096];
	size_t total = TFE_VSOCK_HDR_SIZE + p->len, done = 0;
	struct dev_chain ch;

	assert_true(total <= sizeof(all));
	tfe_vsock_hdr_pack(all, p);
	if (p->len)
		memcpy(all + TFE_VSOCK_HDR_SIZE, payload, p->len);
	assert_int_equal(dev_pop(&f->drx, &ch), 1);
	for (unsigned int i = 0; i < ch.n && done < total; i++) {
		uint32_t len = le32toh(ch.d[i].len);
		size_t n = total - done < len ? total - done : len;

		assert_true(le16toh(ch.d[i].flags) & TFE_VDESC_F_WRITE);
		memcpy(tfe_mem_ptr(&f->m, le64toh(ch.d[i].addr), n), all + done, n);
		done += n;
	}
	assert_int_equal(done, total);
	dev_push(&f->drx, ch.head, (uint32_t)total);
}

/* Let the driver work; the number of rx packets it handled. */
static unsigned long poll_rx(struct vs_fixture *f)
{
	unsigned long before = f->vs.rx_pkts;

	assert_true(tfe_vsock_poll(&f->vs) >= 0);
	return f->vs.rx_pkts - before;
}

static struct tfe_vsock_pkt host_pkt(uint16_t op, uint32_t sport, uint32_t dport, uint32_t len)
{
	return (struct tfe_vsock_pkt){
		.src_cid = 2, .dst_cid = GCID, .src_port = sport, .dst_port = dport, .len = len,
		.type = TFE_VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 100, .fwd_cnt = 0,
	};
}

static void test_vsock_rx_fill(void **state)
{
	struct tfe_vsock_opts split = { .rx_split = true, .rx_buf_size = 1024 };
	struct vs_fixture f;
	struct dev_chain ch;

	(void)state;
	vs_setup(&f, NULL, 0);
	/* Linux-like: every rx buffer is one writable 4 KiB descriptor, ring full */
	assert_int_equal(f.rx.num_free, 0);
	assert_int_equal(dev_pop(&f.drx, &ch), 1);
	assert_int_equal(ch.n, 1);
	assert_int_equal(le32toh(ch.d[0].len), 4096);
	assert_int_equal(read_eventfd(f.kick[0]), 1);
	vs_teardown(&f);

	vs_setup(&f, &split, 0);
	assert_int_equal(dev_pop(&f.drx, &ch), 1);
	assert_int_equal(ch.n, 2);
	assert_int_equal(le32toh(ch.d[0].len), 44);
	assert_int_equal(le32toh(ch.d[1].len), 1024 - 44);
	vs_teardown(&f);
}

static void test_vsock_listen_and_data(void **state)
{
	struct tfe_vsock_opts o = { .buf_alloc = 1000, .credit_threshold = 300 };
	struct vs_fixture f;
	struct tfe_vsock_pkt p, q;
	struct tfe_vsock_conn *c;
	uint8_t buf[2048];

	(void)state;
	vs_setup(&f, &o, 0);
	assert_int_equal(tfe_vsock_listen(&f.vs, 5000), 0);
	assert_int_equal(tfe_vsock_listen(&f.vs, 5000), -EADDRINUSE);
	p = host_pkt(TFE_VSOCK_OP_REQUEST, 1234, 5000, 0);
	dev_rx(&f, &p, NULL);
	assert_int_equal(poll_rx(&f), 1);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_RESPONSE);
	assert_int_equal(q.src_cid, GCID);
	assert_int_equal(q.dst_cid, 2);
	assert_int_equal(q.src_port, 5000);
	assert_int_equal(q.dst_port, 1234);
	assert_int_equal(q.buf_alloc, 1000);
	assert_int_equal(tfe_vsock_accept(&f.vs, 5000, 0, &c), 0);
	assert_int_equal(tfe_vsock_accept(&f.vs, 5000, 0, &c), -ETIMEDOUT);
	/* data in, read out; a credit update follows once 300 bytes were read */
	p = host_pkt(TFE_VSOCK_OP_RW, 1234, 5000, 400);
	memset(buf, 'x', 400);
	dev_rx(&f, &p, buf);
	assert_int_equal(poll_rx(&f), 1);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, 200), 200);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 0);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, sizeof(buf)), 200);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(q.fwd_cnt, 400);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, sizeof(buf)), -EAGAIN);
	/* a peer overrunning our 1000-byte window is reset */
	for (unsigned int i = 0; i < 3; i++) {
		p = host_pkt(TFE_VSOCK_OP_RW, 1234, 5000, 400);
		dev_rx(&f, &p, buf);
	}
	assert_int_equal(poll_rx(&f), 3);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_RST);
	assert_int_equal(c->state, TFE_CONN_CLOSED);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, sizeof(buf)), 800);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, sizeof(buf)), -ENOBUFS);
	assert_int_equal(tfe_vsock_reset(&f.vs, c), 0);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 0);  /* already closed: no 2nd RST */
	vs_teardown(&f);
}

static void test_vsock_send_credit(void **state)
{
	struct tfe_vsock_opts o = { .tx_pkt_max = 64, .tx_indirect = true };
	struct vs_fixture f;
	struct tfe_vsock_pkt p, q;
	struct tfe_vsock_conn *c;
	uint8_t data[300], buf[2048];
	size_t got = 0;
	unsigned int requests = 0;

	(void)state;
	for (unsigned int i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	vs_setup(&f, &o, TFE_VRING_INDIRECT);
	tfe_vsock_listen(&f.vs, 80);
	p = host_pkt(TFE_VSOCK_OP_REQUEST, 9, 80, 0);   /* peer buf_alloc 100 */
	dev_rx(&f, &p, NULL);
	poll_rx(&f);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(tfe_vsock_accept(&f.vs, 80, 0, &c), 0);
	/* 100 bytes of credit, in packets of at most 64; then stuck: one CREDIT_REQUEST */
	assert_int_equal(tfe_vsock_send(&f.vs, c, data, sizeof(data)), 100);
	while (dev_tx(&f, &q, buf + got, sizeof(buf) - got)) {
		if (q.op == TFE_VSOCK_OP_CREDIT_REQUEST) {
			requests++;
			continue;
		}
		assert_int_equal(q.op, TFE_VSOCK_OP_RW);
		assert_true(q.len <= 64);
		got += q.len;
	}
	assert_int_equal(got, 100);
	assert_int_equal(requests, 1);
	/* not one request per attempt */
	assert_int_equal(tfe_vsock_send(&f.vs, c, data + 100, 200), -EAGAIN);
	assert_int_equal(tfe_vsock_send(&f.vs, c, data + 100, 200), -EAGAIN);
	assert_int_equal(dev_tx(&f, &q, buf + got, sizeof(buf) - got), 0);
	/* the peer consumed 100: 100 more may go */
	p = host_pkt(TFE_VSOCK_OP_CREDIT_UPDATE, 9, 80, 0);
	p.fwd_cnt = 100;
	dev_rx(&f, &p, NULL);
	poll_rx(&f);
	assert_int_equal(tfe_vsock_send(&f.vs, c, data + 100, 200), 100);
	while (dev_tx(&f, &q, buf + got, sizeof(buf) - got))
		got += q.len;
	assert_int_equal(got, 200);
	assert_memory_equal(buf, data, 200);
	/* our CREDIT_REQUEST answering: peer asks, we answer with our counters */
	p = host_pkt(TFE_VSOCK_OP_CREDIT_REQUEST, 9, 80, 0);
	dev_rx(&f, &p, NULL);
	poll_rx(&f);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(q.buf_alloc, TFE_VSOCK_DEFAULT_BUF_ALLOC);
	vs_teardown(&f);
}

static void test_vsock_shutdown_rst(void **state)
{
	struct vs_fixture f;
	struct tfe_vsock_pkt p, q;
	struct tfe_vsock_conn *c;
	uint8_t buf[256];

	(void)state;
	vs_setup(&f, NULL, 0);
	tfe_vsock_listen(&f.vs, 80);
	p = host_pkt(TFE_VSOCK_OP_REQUEST, 9, 80, 0);
	dev_rx(&f, &p, NULL);
	poll_rx(&f);
	dev_tx(&f, &q, buf, sizeof(buf));
	tfe_vsock_accept(&f.vs, 80, 0, &c);
	/* our half-close: the peer may still send to us */
	assert_int_equal(tfe_vsock_shutdown(&f.vs, c, 4), -EINVAL);
	assert_int_equal(tfe_vsock_shutdown(&f.vs, c, TFE_VSOCK_SHUTDOWN_SEND), 0);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_SHUTDOWN);
	assert_int_equal(q.flags, TFE_VSOCK_SHUTDOWN_SEND);
	assert_int_equal(tfe_vsock_send(&f.vs, c, "x", 1), -EPIPE);
	p = host_pkt(TFE_VSOCK_OP_RW, 9, 80, 3);
	dev_rx(&f, &p, "abc");
	p = host_pkt(TFE_VSOCK_OP_SHUTDOWN, 9, 80, 0);
	p.flags = TFE_VSOCK_SHUTDOWN_BOTH;
	dev_rx(&f, &p, NULL);
	poll_rx(&f);
	/* both directions shut: we answer RST, the data stays readable, then EOF */
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_RST);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, sizeof(buf)), 3);
	assert_int_equal(tfe_vsock_recv(&f.vs, c, buf, sizeof(buf)), 0);
	assert_int_equal(tfe_vsock_close(&f.vs, c, 0), 0);
	/* unknown tuple: RW gets RST, RST gets nothing; REQUEST to a closed port: RST */
	p = host_pkt(TFE_VSOCK_OP_RW, 9, 81, 1);
	dev_rx(&f, &p, "z");
	p = host_pkt(TFE_VSOCK_OP_RST, 9, 82, 0);
	dev_rx(&f, &p, NULL);
	p = host_pkt(TFE_VSOCK_OP_REQUEST, 9, 83, 0);
	dev_rx(&f, &p, NULL);
	assert_int_equal(poll_rx(&f), 3);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_RST);
	assert_int_equal(q.src_port, 81);
	assert_int_equal(q.dst_port, 9);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.dst_port, 9);
	assert_int_equal(q.src_port, 83);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 0);
	vs_teardown(&f);
}

static void test_vsock_connect_paths(void **state)
{
	struct vs_fixture f;
	struct tfe_vsock_pkt q;
	struct tfe_vsock_conn *c;
	uint8_t buf[64];

	(void)state;
	vs_setup(&f, NULL, 0);
	/* nobody answers: timeout, and the half-open attempt is reset */
	assert_int_equal(tfe_vsock_connect(&f.vs, 2, 1234, 40000, 30, &c), -ETIMEDOUT);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_REQUEST);
	assert_int_equal(q.src_cid, GCID);
	assert_int_equal(q.dst_cid, 2);
	assert_int_equal(q.src_port, 40000);
	assert_int_equal(q.dst_port, 1234);
	assert_int_equal(q.type, TFE_VSOCK_TYPE_STREAM);
	assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 1);
	assert_int_equal(q.op, TFE_VSOCK_OP_RST);
	/* malformed rx buffers are counted and dropped, not parsed */
	{
		struct dev_chain ch;
		uint8_t *hdr;

		assert_int_equal(dev_pop(&f.drx, &ch), 1);
		dev_push(&f.drx, ch.head, 10);                  /* shorter than a header */
		assert_int_equal(dev_pop(&f.drx, &ch), 1);
		hdr = tfe_mem_ptr(&f.m, le64toh(ch.d[0].addr), 44);
		memset(hdr, 0, 44);
		hdr[24] = 200;                                  /* len 200, 4 bytes present */
		dev_push(&f.drx, ch.head, 48);
		assert_int_equal(poll_rx(&f), 2);
		assert_int_equal(f.vs.bad_pkts, 2);
		assert_int_equal(dev_tx(&f, &q, buf, sizeof(buf)), 0);
	}
	vs_teardown(&f);
}

/* ------------------------------------------------------------------ */
/* Front end against a fake back end                                   */
/* ------------------------------------------------------------------ */

struct fake_msg {
	struct vu_hdr hdr;
	uint8_t payload[512] __attribute__((aligned(8)));
	int fds[8];
	unsigned int nfds;
};

/* Back-end side: read one message with its fds. */
static int fake_read(int sock, struct fake_msg *m)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { .iov_base = &m->hdr, .iov_len = sizeof(m->hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(sock, &mh, MSG_WAITALL);

	m->nfds = 0;
	if (n != (ssize_t)sizeof(m->hdr))
		return -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		m->nfds = (unsigned int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		memcpy(m->fds, CMSG_DATA(c), m->nfds * sizeof(int));
	}
	if (m->hdr.size > sizeof(m->payload))
		return -1;
	if (m->hdr.size && recv(sock, m->payload, m->hdr.size, MSG_WAITALL) != m->hdr.size)
		return -1;
	return 0;
}

static void fake_close_fds(struct fake_msg *m)
{
	for (unsigned int i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static void fake_write(int sock, uint32_t req, uint32_t flags, const void *p, uint32_t size)
{
	struct vu_hdr h = { req, flags, size };

	assert_int_equal(write(sock, &h, sizeof(h)), sizeof(h));
	if (size)
		assert_int_equal(write(sock, p, size), size);
}

static void fake_u64(int sock, uint32_t req, uint32_t flags, uint64_t v)
{
	fake_write(sock, req, flags, &v, sizeof(v));
}

struct fe_fixture {
	struct tfe_fe fe;
	int be;
};

static void fe_setup(struct fe_fixture *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	tfe_fe_init(&f->fe, sv[0]);
	f->be = sv[1];
	f->fe.timeout_ms = 500;
}

static void fe_teardown(struct fe_fixture *f)
{
	tfe_fe_close(&f->fe);
	if (f->be >= 0)
		close(f->be);
}

static void test_fe_reply_checks(void **state)
{
	struct fe_fixture f;
	struct fake_msg m;
	uint64_t v = 0;

	(void)state;
	fe_setup(&f);
	fake_u64(f.be, VU_REQ_GET_FEATURES, 0x5, 0x140000000ull);
	assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_FEATURES, &v), 0);
	assert_int_equal(v, 0x140000000ull);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(m.hdr.request, VU_REQ_GET_FEATURES);
	assert_int_equal(m.hdr.flags, 0x1);
	assert_int_equal(m.hdr.size, 0);
	/* flags must be exactly 0x5: NEED_REPLY echoed is refused, as in QEMU */
	fake_u64(f.be, VU_REQ_GET_FEATURES, 0xd, 1);
	assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_FEATURES, &v), -EPROTO);
	fake_u64(f.be, VU_REQ_GET_FEATURES, 0x1, 1);
	assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_FEATURES, &v), -EPROTO);
	/* wrong request id, wrong size */
	fake_u64(f.be, VU_REQ_GET_PROTOCOL_FEATURES, 0x5, 1);
	assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_FEATURES, &v), -EPROTO);
	fake_write(f.be, VU_REQ_GET_QUEUE_NUM, 0x5, "abcd", 4);
	assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_QUEUE_NUM, &v), -EPROTO);
	/* oversized: drained and reported, the stream stays in step */
	{
		uint8_t big[600] = { 0 };

		fake_write(f.be, VU_REQ_GET_QUEUE_NUM, 0x5, big, sizeof(big));
		assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_QUEUE_NUM, &v), -EPROTO);
		fake_u64(f.be, VU_REQ_GET_QUEUE_NUM, 0x5, 3);
		assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_QUEUE_NUM, &v), 0);
		assert_int_equal(v, 3);
	}
	/* silence, then EOF */
	f.fe.timeout_ms = 50;
	assert_int_equal(tfe_fe_get_u64(&f.fe, VU_REQ_GET_FEATURES, &v), -ETIMEDOUT);
	close(f.be);
	f.be = -1;
	assert_int_equal(tfe_fe_reply(&f.fe, 1, &v, 8), -ECONNRESET);
	fe_teardown(&f);
}

static void test_fe_need_reply(void **state)
{
	struct fe_fixture f;
	struct fake_msg m;

	(void)state;
	fe_setup(&f);
	/* without REPLY_ACK negotiated, TFE_NR_ALL sends no NEED_REPLY */
	f.fe.need_reply = TFE_NR_ALL;
	assert_int_equal(tfe_fe_set_owner(&f.fe), 0);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(m.hdr.flags, 0x1);
	fake_u64(f.be, VU_REQ_SET_PROTOCOL_FEATURES, 0x5, 0);
	assert_int_equal(tfe_fe_set_u64(&f.fe, VU_REQ_SET_PROTOCOL_FEATURES,
					1ull << VU_PROTOCOL_F_REPLY_ACK), 0);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(m.hdr.flags, 0x9);
	/* ack 0 is success, anything else -EIO with the value kept */
	fake_u64(f.be, VU_REQ_SET_VRING_NUM, 0x5, 0);
	assert_int_equal(tfe_fe_set_vring_state(&f.fe, VU_REQ_SET_VRING_NUM, 1, 256), 0);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(m.hdr.size, 8);
	assert_int_equal(((struct vu_vring_state *)m.payload)->index, 1);
	assert_int_equal(((struct vu_vring_state *)m.payload)->num, 256);
	fake_u64(f.be, VU_REQ_SET_VRING_ENABLE, 0x5, 22);
	assert_int_equal(tfe_fe_set_vring_state(&f.fe, VU_REQ_SET_VRING_ENABLE, 0, 1), -EIO);
	assert_int_equal(f.fe.last_ack, 22);
	assert_int_equal(fake_read(f.be, &m), 0);
	/* QEMU mode acks only SET_MEM_TABLE */
	f.fe.need_reply = TFE_NR_QEMU;
	assert_false(tfe_fe_wants_ack(&f.fe, VU_REQ_SET_VRING_NUM));
	assert_true(tfe_fe_wants_ack(&f.fe, VU_REQ_SET_MEM_TABLE));
	f.fe.need_reply = TFE_NR_FORCE;
	f.fe.protocol_acked = 0;
	assert_true(tfe_fe_wants_ack(&f.fe, VU_REQ_SET_VRING_NUM));
	fe_teardown(&f);
}

static void test_fe_fds_delivered(void **state)
{
	struct fe_fixture f;
	struct fake_msg m;
	struct tfe_mem mem;
	const struct vu_mem_table *t = (const void *)m.payload;
	uint64_t v;

	(void)state;
	fe_setup(&f);
	assert_int_equal(tfe_mem_init(&mem, 0x200000, true), 0);
	memcpy(tfe_mem_ptr(&mem, 0x150000, 6), "guest!", 6);
	assert_int_equal(tfe_fe_set_mem_table(&f.fe, &mem), 0);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(m.hdr.request, VU_REQ_SET_MEM_TABLE);
	assert_int_equal(m.hdr.size, 8 + 2 * 32);
	assert_int_equal(t->nregions, 2);
	assert_int_equal(m.nfds, 2);
	/* the back end maps region 1 from its own fd and sees the guest's bytes */
	{
		const struct vu_mem_region *r = &t->regions[1];
		uint8_t *map = mmap(NULL, r->memory_size, PROT_READ, MAP_SHARED, m.fds[1],
				    (off_t)r->mmap_offset);

		assert_true(map != MAP_FAILED);
		assert_memory_equal(map + (0x150000 - r->guest_phys_addr), "guest!", 6);
		munmap(map, r->memory_size);
	}
	fake_close_fds(&m);
	/* kick fd: what the back end writes, our eventfd reads */
	assert_int_equal(tfe_fe_eventfds(&f.fe, 2), 0);
	assert_int_equal(tfe_fe_set_vring_fd(&f.fe, VU_REQ_SET_VRING_CALL, 1, f.fe.call[1]), 0);
	assert_int_equal(fake_read(f.be, &m), 0);
	memcpy(&v, m.payload, 8);
	assert_int_equal(v, 1);
	assert_int_equal(m.nfds, 1);
	v = 1;
	assert_int_equal(write(m.fds[0], &v, 8), 8);
	assert_int_equal(read_eventfd(f.fe.call[1]), 1);
	fake_close_fds(&m);
	/* no fd: flag 0x100, nothing attached */
	assert_int_equal(tfe_fe_set_vring_fd(&f.fe, VU_REQ_SET_VRING_KICK, 2, -1), 0);
	assert_int_equal(fake_read(f.be, &m), 0);
	memcpy(&v, m.payload, 8);
	assert_int_equal(v, 0x102);
	assert_int_equal(m.nfds, 0);
	tfe_mem_fini(&mem);
	fe_teardown(&f);
}

static void test_fe_reply_with_fd(void **state)
{
	struct fe_fixture f;
	struct tfe_fe be;
	int efd = eventfd(0, 0);
	uint64_t v = 7;

	(void)state;
	fe_setup(&f);
	/* a reply carrying an fd is refused (and the fd closed) */
	tfe_fe_init(&be, f.be);
	assert_int_equal(tfe_fe_send(&be, VU_REQ_GET_QUEUE_NUM, 0x5, &v, 8, &efd, 1), 0);
	assert_int_equal(tfe_fe_reply(&f.fe, VU_REQ_GET_QUEUE_NUM, &v, 8), -EPROTO);
	close(efd);
	fe_teardown(&f);
}

static void test_fe_config_and_base(void **state)
{
	struct fe_fixture f;
	struct fake_msg m;
	uint8_t cfg[20] = { 0 };
	struct vu_vring_state s = { .index = 1, .num = 77 };
	uint64_t cid = 0;
	uint32_t num = 0;

	(void)state;
	fe_setup(&f);
	/* reply echoes {offset, size, flags} then the 8 config bytes */
	cfg[4] = 8;
	cfg[12] = 42;
	fake_write(f.be, VU_REQ_GET_CONFIG, 0x5, cfg, 20);
	assert_int_equal(tfe_fe_get_config(&f.fe, 0, 8, &cid), 0);
	assert_int_equal(le64toh(cid), 42);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(m.hdr.size, 20);
	/* the error form: size 0, header only */
	cfg[4] = 0;
	fake_write(f.be, VU_REQ_GET_CONFIG, 0x5, cfg, 12);
	assert_int_equal(tfe_fe_get_config(&f.fe, 0, 8, &cid), -EIO);
	assert_int_equal(fake_read(f.be, &m), 0);
	assert_int_equal(tfe_fe_get_config(&f.fe, 0, 300, &cid), -EINVAL);
	fake_write(f.be, VU_REQ_GET_VRING_BASE, 0x5, &s, 8);
	assert_int_equal(tfe_fe_get_vring_base(&f.fe, 1, &num), 0);
	assert_int_equal(num, 77);
	fake_write(f.be, VU_REQ_GET_VRING_BASE, 0x5, &s, 8);
	assert_int_equal(tfe_fe_get_vring_base(&f.fe, 0, &num), -EPROTO);
	fe_teardown(&f);
}

/* A back end that answers whole start sequences and records the requests. */
struct seq_backend {
	int sock;
	uint64_t features, protocol;
	uint32_t reqs[64];
	uint32_t flags[64];
	unsigned int n;
};

static void seq_answer(struct seq_backend *b, const struct fake_msg *m)
{
	struct vu_vring_state s;

	switch (m->hdr.request) {
	case VU_REQ_GET_FEATURES:
		fake_u64(b->sock, m->hdr.request, 0x5, b->features);
		return;
	case VU_REQ_GET_PROTOCOL_FEATURES:
		fake_u64(b->sock, m->hdr.request, 0x5, b->protocol);
		return;
	case VU_REQ_GET_QUEUE_NUM:
		fake_u64(b->sock, m->hdr.request, 0x5, 3);
		return;
	case VU_REQ_GET_CONFIG: {
		uint8_t c[20] = { 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9 };

		fake_write(b->sock, m->hdr.request, 0x5, c, sizeof(c));
		return;
	}
	case VU_REQ_GET_VRING_BASE:
		memcpy(&s, m->payload, sizeof(s));
		s.num = 5;
		fake_write(b->sock, m->hdr.request, 0x5, &s, sizeof(s));
		return;
	default:
		if (m->hdr.flags & VU_FLAG_NEED_REPLY)
			fake_u64(b->sock, m->hdr.request, 0x5, 0);
	}
}

static void *seq_thread(void *arg)
{
	struct seq_backend *b = arg;
	struct fake_msg m;

	while (b->n < 64 && fake_read(b->sock, &m) == 0) {
		b->flags[b->n] = m.hdr.flags;
		b->reqs[b->n++] = m.hdr.request;
		fake_close_fds(&m);
		seq_answer(b, &m);
	}
	return NULL;
}

static void run_sequence(struct seq_backend *b, bool crosvm, uint64_t want, int *rc,
			 struct tfe_vm *vm)
{
	struct tfe_setup_opts o = { .want_features = want };
	pthread_t th;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	memset(vm, 0, sizeof(*vm));
	assert_int_equal(tfe_mem_init(&vm->mem, 0x400000, true), 0);
	tfe_fe_init(&vm->fe, sv[0]);
	b->sock = sv[1];
	assert_int_equal(pthread_create(&th, NULL, seq_thread, b), 0);
	*rc = crosvm ? tfe_setup_crosvm(vm, &o) : tfe_setup_qemu(vm, &o);
	if (!crosvm && *rc == 0)
		*rc = tfe_stop_qemu(vm, NULL);
	tfe_vm_close(vm);     /* EOF ends the thread */
	pthread_join(th, NULL);
	close(sv[1]);
}

static void test_setup_qemu_order(void **state)
{
	static const uint32_t want[] = {
		VU_REQ_GET_FEATURES, VU_REQ_GET_PROTOCOL_FEATURES, VU_REQ_SET_PROTOCOL_FEATURES,
		VU_REQ_GET_QUEUE_NUM, VU_REQ_SET_OWNER, VU_REQ_GET_FEATURES,
		VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_ERR, VU_REQ_SET_VRING_CALL,
		VU_REQ_SET_VRING_ERR, VU_REQ_GET_CONFIG, VU_REQ_SET_FEATURES, VU_REQ_SET_MEM_TABLE,
		VU_REQ_SET_VRING_NUM, VU_REQ_SET_VRING_BASE, VU_REQ_SET_VRING_ADDR,
		VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_NUM, VU_REQ_SET_VRING_BASE,
		VU_REQ_SET_VRING_ADDR, VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_ENABLE,
		VU_REQ_SET_VRING_ENABLE, VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_CALL,
		VU_REQ_SET_VRING_ENABLE, VU_REQ_SET_VRING_ENABLE, VU_REQ_GET_VRING_BASE,
		VU_REQ_GET_VRING_BASE,
	};
	struct seq_backend b = { .features = 0x17d000002ull, .protocol = 0x20b };
	struct tfe_vm vm;
	int rc;

	(void)state;
	run_sequence(&b, false, (1ull << 32) | (1ull << 29) | (1ull << 28), &rc, &vm);
	assert_int_equal(rc, 0);
	assert_int_equal(b.n, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < b.n; i++) {
		assert_int_equal(b.reqs[i], want[i]);
		/* NEED_REPLY on SET_MEM_TABLE only (REPLY_ACK offered) */
		assert_int_equal(b.flags[i], want[i] == VU_REQ_SET_MEM_TABLE ? 0x9 : 0x1);
	}
	assert_int_equal(vm.features_acked, 0x170000000ull);
	assert_int_equal(vm.fe.protocol_acked, 0x209);  /* offered ∩ MQ|REPLY_ACK|CONFIG */
	assert_int_equal(vm.config_cid, 9);
	assert_int_equal(vm.queue_num, 3);
}

static void test_setup_crosvm_order(void **state)
{
	static const uint32_t head[] = {
		VU_REQ_SET_OWNER, VU_REQ_GET_FEATURES, VU_REQ_SET_FEATURES,
		VU_REQ_GET_PROTOCOL_FEATURES, VU_REQ_SET_PROTOCOL_FEATURES, VU_REQ_GET_QUEUE_NUM,
		VU_REQ_SET_FEATURES, VU_REQ_SET_MEM_TABLE,
	};
	static const uint32_t ring[] = {
		VU_REQ_SET_VRING_NUM, VU_REQ_SET_VRING_ADDR, VU_REQ_SET_VRING_BASE,
		VU_REQ_SET_VRING_CALL, VU_REQ_SET_VRING_KICK, VU_REQ_SET_VRING_ENABLE,
	};
	struct seq_backend b = { .features = 0x140000000ull, .protocol = 0x20b };
	struct tfe_vm vm;
	int rc;

	(void)state;
	run_sequence(&b, true, 0, &rc, &vm);
	assert_int_equal(rc, 0);
	assert_int_equal(b.n, 8 + 3 * 6);
	for (unsigned int i = 0; i < 8; i++)
		assert_int_equal(b.reqs[i], head[i]);
	for (unsigned int i = 8; i < b.n; i++) {
		assert_int_equal(b.reqs[i], ring[(i - 8) % 6]);
		assert_int_equal(b.flags[i], 0x1);   /* REPLY_ACK not taken: no acks */
	}
	assert_int_equal(vm.fe.protocol_acked, 0x201);  /* MQ|CONFIG only */
	assert_int_equal(vm.nvq, 3);
}

/* ------------------------------------------------------------------ */
/* Daemon runner                                                       */
/* ------------------------------------------------------------------ */

/* Re-executed as a fake daemon: listen on argv[2], exit on SIGTERM. */
static int fake_daemon(const char *path, bool well_behaved)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sigset_t set;
	int fd, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0)
		return 1;
	fprintf(stderr, "fake daemon listening\n");
	sigwait(&set, &sig);
	if (!well_behaved)
		return 3;
	unlink(path);
	return 0;
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "/tmp/tfe-test-%d-%s", (int)getpid(), name);
	unlink(buf);
}

static void test_daemon_runner(void **state)
{
	char sock[108], log[108], logline[64] = { 0 };
	char *good[] = { (char *)"/proc/self/exe", (char *)"--fake-daemon", sock, NULL };
	char *bad[] = { (char *)"/proc/self/exe", (char *)"--fake-daemon-bad", sock, NULL };
	struct tfe_daemon d;
	FILE *f;

	(void)state;
	tmp_path(sock, sizeof(sock), "sock");
	tmp_path(log, sizeof(log), "log");
	assert_int_equal(tfe_daemon_start(&d, good, sock, log, 5000), 0);
	assert_true(tfe_daemon_alive(&d));
	assert_int_equal(tfe_daemon_stop(&d, 5000), 0);
	assert_false(tfe_daemon_alive(&d));
	f = fopen(log, "r");
	assert_non_null(f);
	assert_non_null(fgets(logline, sizeof(logline), f));
	fclose(f);
	assert_string_equal(logline, "fake daemon listening\n");
	/* wrong exit status, socket left behind */
	assert_int_equal(tfe_daemon_start(&d, bad, sock, NULL, 5000), 0);
	assert_int_equal(tfe_daemon_stop(&d, 5000), -EPROTO);
	assert_int_equal(WEXITSTATUS(d.status), 3);
	unlink(sock);
	unlink(log);
}

static void test_daemon_refuses_without_vhost(void **state)
{
	char sock[108], log[108], text[4096] = { 0 };
	char *argv[] = { (char *)daemon_path, (char *)"--socket", sock, (char *)"--cid", (char *)"3",
			 (char *)"--vhost-socket", (char *)"/nonexistent/vhost-vsock", NULL };
	struct tfe_daemon d;
	int64_t t0 = tfe_now_ms();
	FILE *f;

	(void)state;
	if (!daemon_path) {
		skip();
		return;
	}
	tmp_path(sock, sizeof(sock), "dsock");
	tmp_path(log, sizeof(log), "dlog");
	/* no vhost device: it must exit 1 at once, without a socket */
	assert_int_equal(tfe_daemon_start(&d, argv, sock, log, 5000), -ECHILD);
	assert_true(tfe_now_ms() - t0 < 4000);
	assert_true(WIFEXITED(d.status));
	assert_int_equal(WEXITSTATUS(d.status), 1);
	assert_int_equal(access(sock, F_OK), -1);
	f = fopen(log, "r");
	assert_non_null(f);
	assert_true(fread(text, 1, sizeof(text) - 1, f) > 0);
	fclose(f);
	assert_non_null(strstr(text, "error"));
	unlink(log);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_layout),
		cmocka_unit_test(test_mem_alloc),
		cmocka_unit_test(test_vring_layout),
		cmocka_unit_test(test_vring_chain_roundtrip),
		cmocka_unit_test(test_vring_indirect),
		cmocka_unit_test(test_vring_hostile_device),
		cmocka_unit_test(test_vring_need_event),
		cmocka_unit_test(test_vring_event_idx),
		cmocka_unit_test(test_vring_no_notify_flag),
		cmocka_unit_test(test_vsock_hdr_layout),
		cmocka_unit_test(test_vsock_credit),
		cmocka_unit_test(test_vsock_rx_fill),
		cmocka_unit_test(test_vsock_listen_and_data),
		cmocka_unit_test(test_vsock_send_credit),
		cmocka_unit_test(test_vsock_shutdown_rst),
		cmocka_unit_test(test_vsock_connect_paths),
		cmocka_unit_test(test_fe_reply_checks),
		cmocka_unit_test(test_fe_need_reply),
		cmocka_unit_test(test_fe_fds_delivered),
		cmocka_unit_test(test_fe_reply_with_fd),
		cmocka_unit_test(test_fe_config_and_base),
		cmocka_unit_test(test_setup_qemu_order),
		cmocka_unit_test(test_setup_crosvm_order),
		cmocka_unit_test(test_daemon_runner),
		cmocka_unit_test(test_daemon_refuses_without_vhost),
	};

	if (argc == 3 && strcmp(argv[1], "--fake-daemon") == 0)
		return fake_daemon(argv[2], true);
	if (argc == 3 && strcmp(argv[1], "--fake-daemon-bad") == 0)
		return fake_daemon(argv[2], false);
	if (argc >= 2)
		daemon_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	tfe_verbosity = 0;  /* the hostile cases are expected to complain */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
