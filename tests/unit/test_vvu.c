// SPDX-License-Identifier: MIT
/*
 * The VVU transport's pure checks: device identity, config and capability
 * values as a hostile device might report them, and the one-message-per-
 * buffer framing in little-endian wire form (buffers built byte by byte,
 * so the test means the same on any host).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/vvu/vvu.h"
#include "util/log.h"
#include "vhost_user/msg.h"

#define MMAP_FLAG 0x4u /* VFIO_REGION_INFO_FLAG_MMAP */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (unsigned int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (unsigned int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A header for @request with @size payload bytes; returns the buffer length. */
static uint32_t put_hdr(uint8_t *buf, uint32_t request, uint32_t flags, uint32_t size)
{
	put_le32(buf, request);
	put_le32(buf + 4, flags);
	put_le32(buf + 8, size);
	return VU_HDR_SIZE + size;
}

static void test_identity(void **state)
{
	(void)state;
	assert_int_equal(vvu_check_identity("0000:00:05.0", 0x1af4, 0x1058), 0);
	assert_int_equal(vvu_check_identity("0000:00:05.0", 0x1af4, 0x107d), 0);
	/* a virtio-net, another vendor's device with the right id */
	assert_int_equal(vvu_check_identity("0000:00:05.0", 0x1af4, 0x1041), -ENODEV);
	assert_int_equal(vvu_check_identity("0000:00:05.0", 0x8086, 0x1058), -ENODEV);
	assert_int_equal(vvu_check_identity("0000:00:05.0", 0xffff, 0xffff), -ENODEV);
}

static void test_max_queues(void **state)
{
	(void)state;
	assert_int_equal(vvu_check_max_queues(3, 3), 0);
	assert_int_equal(vvu_check_max_queues(16, 3), 0);
	assert_int_equal(vvu_check_max_queues(VVU_MAX_VHOST_QUEUES, 3), 0);
	assert_int_equal(vvu_check_max_queues(2, 3), -ENOTSUP);
	assert_int_equal(vvu_check_max_queues(0, 3), -EIO);
	assert_int_equal(vvu_check_max_queues(VVU_MAX_VHOST_QUEUES + 1, 3), -EIO);
	assert_int_equal(vvu_check_max_queues(UINT32_MAX, 3), -EIO);
}

static void test_doorbell(void **state)
{
	struct vpci_loc loc = { .present = true, .bar = 2, .off = 0, .len = 0x2000 };
	struct vvu_doorbell db;

	(void)state;
	/* crosvm: BAR 2, 0x2000 bytes, multiplier 4, 16 queues: calls and errs fit */
	assert_int_equal(vvu_check_doorbell(&loc, 4, 3, 16, &db), 0);
	assert_int_equal(db.mult, 4);
	assert_true(db.have_err);
	assert_int_equal(db.nqueues_dev, 16);
	/* exactly num * mult + 2: calls only (err 16 + i is beyond) */
	loc.len = 3 * 4 + 2;
	assert_int_equal(vvu_check_doorbell(&loc, 4, 3, 16, &db), 0);
	assert_false(db.have_err);
	loc.len = 3 * 4 + 1;
	assert_int_equal(vvu_check_doorbell(&loc, 4, 3, 16, &db), -EIO);
	/* multiplier 0: every doorbell at offset 0, so no separate err doorbells */
	loc.len = 2;
	assert_int_equal(vvu_check_doorbell(&loc, 0, 3, 16, &db), 0);
	assert_false(db.have_err);
	loc.len = 1;
	assert_int_equal(vvu_check_doorbell(&loc, 0, 3, 16, &db), -EIO);
	loc.len = 0;
	assert_int_equal(vvu_check_doorbell(&loc, 0, 3, 16, &db), -EIO);
	/* multipliers that are not powers of two */
	loc.len = 0x2000;
	assert_int_equal(vvu_check_doorbell(&loc, 3, 3, 16, &db), -EIO);
	assert_int_equal(vvu_check_doorbell(&loc, 6, 3, 16, &db), -EIO);
	assert_int_equal(vvu_check_doorbell(&loc, UINT32_MAX, 3, 16, &db), -EIO);
	/* the largest multiplier: offsets far past any cap, no wrap-around */
	loc.len = UINT64_MAX;
	assert_int_equal(vvu_check_doorbell(&loc, 0x80000000u, 3, VVU_MAX_VHOST_QUEUES, &db), 0);
	loc.len = 0x10000;
	assert_int_equal(vvu_check_doorbell(&loc, 0x80000000u, 3, 16, &db), -EIO);
	/* no queues, no cap */
	assert_int_equal(vvu_check_doorbell(&loc, 4, 0, 16, &db), -EIO);
	loc.present = false;
	assert_int_equal(vvu_check_doorbell(&loc, 4, 3, 16, &db), -ENODEV);
}

static void test_notification(void **state)
{
	struct vpci_loc loc = { .present = true, .bar = 2, .off = 0x2000, .len = 0x1000 };

	(void)state;
	assert_int_equal(vvu_check_notification(&loc), 0);
	loc.len = VVU_NOTIF_LEN;
	assert_int_equal(vvu_check_notification(&loc), 0);
	loc.len = VVU_NOTIF_LEN - 1;
	assert_int_equal(vvu_check_notification(&loc), -ENODEV);
	loc.present = false;
	loc.len = 0x1000;
	assert_int_equal(vvu_check_notification(&loc), -ENODEV);
}

static void test_shmem(void **state)
{
	struct vfio_region_desc bar = { .size = 1ull << 30, .flags = MMAP_FLAG | 0x3 };
	struct vpci_loc loc = { .present = true, .bar = 4, .off = 0, .len = 1ull << 30 };

	(void)state;
	assert_int_equal(vvu_check_shmem(&loc, &bar), 0);
	loc.off = 0x1000;
	loc.len = (1ull << 30) - 0x1000;
	assert_int_equal(vvu_check_shmem(&loc, &bar), 0);
	/* one page past the BAR's end */
	loc.len = 1ull << 30;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	/* an offset whose sum with the length wraps */
	loc.off = UINT64_MAX - 0xfff;
	loc.len = 0x2000;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	/* alignment and emptiness */
	loc.off = 0x800;
	loc.len = 0x1000;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	loc.off = 0;
	loc.len = 0x1800;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	loc.len = 0;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	/* a BAR that cannot be mapped, one that does not exist */
	loc.len = 0x1000;
	bar.flags = 0x3;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	bar = (struct vfio_region_desc){ .size = 0, .flags = MMAP_FLAG };
	assert_int_equal(vvu_check_shmem(&loc, &bar), -EIO);
	loc.present = false;
	assert_int_equal(vvu_check_shmem(&loc, &bar), -ENODEV);
}

static void test_framing_refusals(void **state)
{
	static uint8_t buf[VVU_BUF_SIZE + 16];
	static struct vu_msg m;
	uint32_t len;

	(void)state;
	/* the sibling left */
	assert_int_equal(vvu_msg_from_buffer(buf, 0, &m), -ECONNRESET);
	assert_int_equal(m.nfds, 0);
	/* shorter than a header */
	assert_int_equal(vvu_msg_from_buffer(buf, 1, &m), -EBADMSG);
	assert_int_equal(vvu_msg_from_buffer(buf, VU_HDR_SIZE - 1, &m), -EBADMSG);
	/* header says 8, buffer holds 7 or 9 */
	len = put_hdr(buf, VU_REQ_SET_FEATURES, VU_FLAG_VERSION, 8);
	assert_int_equal(vvu_msg_from_buffer(buf, len - 1, &m), -EBADMSG);
	assert_int_equal(vvu_msg_from_buffer(buf, len + 1, &m), -EBADMSG);
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	/* two messages in one buffer */
	put_hdr(buf + len, VU_REQ_GET_FEATURES, VU_FLAG_VERSION, 0);
	assert_int_equal(vvu_msg_from_buffer(buf, len + VU_HDR_SIZE, &m), -EBADMSG);
	/* a size over the limit, consistent with the buffer or not, and one that wraps */
	put_hdr(buf, VU_REQ_SET_FEATURES, VU_FLAG_VERSION, VU_MAX_PAYLOAD + 1);
	assert_int_equal(vvu_msg_from_buffer(buf, VU_HDR_SIZE + VU_MAX_PAYLOAD + 1, &m), -EBADMSG);
	assert_int_equal(vvu_msg_from_buffer(buf, VU_HDR_SIZE + 8, &m), -EBADMSG);
	put_hdr(buf, VU_REQ_SET_FEATURES, VU_FLAG_VERSION, UINT32_MAX - VU_HDR_SIZE + 9);
	assert_int_equal(vvu_msg_from_buffer(buf, 8, &m), -EBADMSG);
	put_hdr(buf, VU_REQ_SET_FEATURES, VU_FLAG_VERSION, UINT32_MAX);
	assert_int_equal(vvu_msg_from_buffer(buf, UINT32_MAX, &m), -EBADMSG);
	/* the largest message we accept fits one buffer exactly */
	len = put_hdr(buf, VU_REQ_CREATE_CRYPTO_SESSION, VU_FLAG_VERSION, VU_MAX_PAYLOAD);
	assert_int_equal(len, VVU_BUF_SIZE);
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	assert_int_equal(m.hdr.size, VU_MAX_PAYLOAD);
}

static void test_mem_table_le(void **state)
{
	static uint8_t buf[VVU_BUF_SIZE];
	static struct vu_msg m;
	uint8_t *p = buf + VU_HDR_SIZE;
	uint32_t len = put_hdr(buf, VU_REQ_SET_MEM_TABLE, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY,
			       8 + 2 * 32);

	(void)state;
	put_le32(p, 2);
	put_le32(p + 4, 0);
	for (unsigned int i = 0; i < 2; i++) {
		uint8_t *r = p + 8 + 32 * i;

		put_le64(r, 0x100000000ull * i);
		put_le64(r + 8, 0x40000000ull + i);
		put_le64(r + 16, 0x7f0000000000ull + 0x1000000000ull * i);
		put_le64(r + 24, 0xc0000ull * i);
	}
	memset(&m, 0xa5, sizeof(m));
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	assert_int_equal(m.hdr.request, VU_REQ_SET_MEM_TABLE);
	assert_int_equal(m.hdr.flags, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY);
	assert_int_equal(m.payload.mem.nregions, 2);
	assert_int_equal(m.payload.mem.regions[1].guest_phys_addr, 0x100000000ull);
	assert_int_equal(m.payload.mem.regions[1].memory_size, 0x40000001ull);
	assert_int_equal(m.payload.mem.regions[1].userspace_addr, 0x7f1000000000ull);
	assert_int_equal(m.payload.mem.regions[1].mmap_offset, 0xc0000ull);
	/* no fds ever come with a VVU message: none are held, none to close */
	assert_int_equal(m.nfds, 0);
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		assert_int_equal(m.fds[i], -1);
	/* fd-less, it passes the dispatcher's checks only on a memory-sharing transport */
	assert_int_equal(vu_msg_check_fdless_mem(&m), 0);
	assert_int_equal(vu_msg_check(&m), -EPROTO);
}

static void test_vring_messages_le(void **state)
{
	static uint8_t buf[VVU_BUF_SIZE];
	static struct vu_msg m;
	uint8_t *p = buf + VU_HDR_SIZE;
	uint32_t len;

	(void)state;
	len = put_hdr(buf, VU_REQ_SET_VRING_ADDR, VU_FLAG_VERSION, 40);
	put_le32(p, 1);
	put_le32(p + 4, 0);
	put_le64(p + 8, 0x7f0000001000ull);
	put_le64(p + 16, 0x7f0000003000ull);
	put_le64(p + 24, 0x7f0000002000ull);
	put_le64(p + 32, 0);
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	assert_int_equal(m.payload.addr.index, 1);
	assert_int_equal(m.payload.addr.desc, 0x7f0000001000ull);
	assert_int_equal(m.payload.addr.used, 0x7f0000003000ull);
	assert_int_equal(m.payload.addr.avail, 0x7f0000002000ull);
	assert_int_equal(vu_msg_check(&m), 0);

	len = put_hdr(buf, VU_REQ_SET_VRING_NUM, VU_FLAG_VERSION, 8);
	put_le32(p, 2);
	put_le32(p + 4, 256);
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	assert_int_equal(m.payload.state.index, 2);
	assert_int_equal(m.payload.state.num, 256);

	/* SET_VRING_CALL: bit 8 as the sibling sent it, no fd; the transport attaches its own */
	len = put_hdr(buf, VU_REQ_SET_VRING_CALL, VU_FLAG_VERSION, 8);
	put_le64(p, 0x101);
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	assert_int_equal(m.payload.u64, 0x101);
	assert_int_equal(m.nfds, 0);

	len = put_hdr(buf, VU_REQ_GET_CONFIG, VU_FLAG_VERSION, VU_CONFIG_HDR_SIZE + 8);
	put_le32(p, 0);
	put_le32(p + 4, 8);
	put_le32(p + 8, 0);
	assert_int_equal(vvu_msg_from_buffer(buf, len, &m), 0);
	assert_int_equal(m.payload.config.size, 8);
	assert_int_equal(vu_msg_check(&m), 0);
}

static void test_reply_to_buffer(void **state)
{
	static uint8_t buf[VVU_BUF_SIZE];
	static struct vu_msg r, back;
	int n;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.hdr = (struct vu_hdr){ VU_REQ_GET_FEATURES, VU_REPLY_FLAGS, 8 };
	r.payload.u64 = 0x140000000ull;
	n = vvu_msg_to_buffer(&r, buf, sizeof(buf));
	assert_int_equal(n, VU_HDR_SIZE + 8);
	assert_int_equal(buf[0], VU_REQ_GET_FEATURES);
	assert_int_equal(buf[4], VU_REPLY_FLAGS);
	assert_int_equal(buf[8], 8);
	assert_int_equal(get_le64(buf + VU_HDR_SIZE), 0x140000000ull);
	/* too small a buffer for it */
	assert_int_equal(vvu_msg_to_buffer(&r, buf, VU_HDR_SIZE + 7), -EMSGSIZE);
	assert_int_equal(vvu_msg_to_buffer(&r, buf, 4), -EMSGSIZE);
	r.hdr.size = VU_MAX_PAYLOAD + 1;
	assert_int_equal(vvu_msg_to_buffer(&r, buf, sizeof(buf)), -EMSGSIZE);

	/* GET_VRING_BASE's state, read back through the same framing */
	r.hdr = (struct vu_hdr){ VU_REQ_GET_VRING_BASE, VU_REPLY_FLAGS, 8 };
	r.payload.state = (struct vu_vring_state){ .index = 1, .num = 0x1234 };
	n = vvu_msg_to_buffer(&r, buf, sizeof(buf));
	assert_int_equal(n, VU_HDR_SIZE + 8);
	assert_int_equal(buf[VU_HDR_SIZE], 1);
	assert_int_equal(buf[VU_HDR_SIZE + 4], 0x34);
	assert_int_equal(buf[VU_HDR_SIZE + 5], 0x12);
	assert_int_equal(vvu_msg_from_buffer(buf, (uint32_t)n, &back), 0);
	assert_int_equal(back.hdr.flags, VU_REPLY_FLAGS);
	assert_int_equal(back.payload.state.num, 0x1234);
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

static void vring_msg(struct vu_msg *m, uint32_t request, uint64_t v)
{
	memset(m, 0, sizeof(*m));
	m->hdr = (struct vu_hdr){ request, VU_FLAG_VERSION, 8 };
	m->payload.u64 = v;
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		m->fds[i] = -1;
}

/*
 * KICK/CALL/ERR get our eventfds: kick i the vector 2 + i eventfd, call and
 * err our private ones, whatever bit 8 said; rings we do not serve, and err
 * without err doorbells, get none (bit 8 set, so the dispatcher sees no fd).
 */
static void test_attach_fds(void **state)
{
	static struct vvu v;
	int vec[VVU_VEC_NOTIFY0 + 3];
	struct vu_msg m;

	(void)state;
	memset(&v, 0, sizeof(v));
	v.nq = 3;
	for (unsigned int i = 0; i < VVU_VEC_NOTIFY0 + 3; i++)
		vec[i] = eventfd(0, EFD_CLOEXEC);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		v.call_fd[i] = i < 3 ? eventfd(0, EFD_CLOEXEC) : -1;
		v.err_fd[i] = i < 3 ? eventfd(0, EFD_CLOEXEC) : -1;
	}
	v.p.nvectors = VVU_VEC_NOTIFY0 + 3;
	v.p.vector_fds = vec;

	vring_msg(&m, VU_REQ_SET_VRING_KICK, 1);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 1);
	assert_int_equal(m.payload.u64, 1);
	assert_true(same_file(m.fds[0], vec[VVU_VEC_NOTIFY0 + 1]));
	assert_int_not_equal(m.fds[0], vec[VVU_VEC_NOTIFY0 + 1]);
	vu_msg_close_fds(&m);

	vring_msg(&m, VU_REQ_SET_VRING_CALL, 0x100 | 2);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 1);
	assert_int_equal(m.payload.u64, 2);
	assert_true(same_file(m.fds[0], v.call_fd[2]));
	assert_int_equal(vu_msg_check_fdless_mem(&m), 0);
	vu_msg_close_fds(&m);

	/* err only when the doorbell cap reaches the err doorbells */
	vring_msg(&m, VU_REQ_SET_VRING_ERR, 0);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(m.payload.u64, 0x100);
	v.db.have_err = true;
	vring_msg(&m, VU_REQ_SET_VRING_ERR, 0);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 1);
	assert_true(same_file(m.fds[0], v.err_fd[0]));
	vu_msg_close_fds(&m);

	/* a ring we do not serve, reserved bits: no fd, left for the dispatcher to refuse */
	vring_msg(&m, VU_REQ_SET_VRING_KICK, 3);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(m.payload.u64, 0x103);
	vring_msg(&m, VU_REQ_SET_VRING_CALL, 0x10000 | 1);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.payload.u64 & 0x10000, 0x10000);
	vu_msg_close_fds(&m);
	/* other requests and other sizes are not touched */
	vring_msg(&m, VU_REQ_SET_FEATURES, 1);
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 0);
	assert_int_equal(m.payload.u64, 1);
	vring_msg(&m, VU_REQ_SET_VRING_KICK, 1);
	m.hdr.size = 4;
	assert_int_equal(vvu_attach_fds(&v, &m), 0);
	assert_int_equal(m.nfds, 0);

	for (unsigned int i = 0; i < VVU_VEC_NOTIFY0 + 3; i++)
		close(vec[i]);
	for (unsigned int i = 0; i < 3; i++) {
		close(v.call_fd[i]);
		close(v.err_fd[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_max_queues),
		cmocka_unit_test(test_doorbell),
		cmocka_unit_test(test_notification),
		cmocka_unit_test(test_shmem),
		cmocka_unit_test(test_framing_refusals),
		cmocka_unit_test(test_mem_table_le),
		cmocka_unit_test(test_vring_messages_le),
		cmocka_unit_test(test_reply_to_buffer),
		cmocka_unit_test(test_attach_fds),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
