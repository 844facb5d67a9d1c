// SPDX-License-Identifier: MIT
/*
 * Kernel engine against the vhost-vsock double: the device hooks are
 * driven the way the vhost-user layer drives them (ring state stored in
 * dev->vrings, then vring_changed), in the orders QEMU and crosvm use, and
 * the double's call record is checked against the kernel's rules. Also the
 * double's own rules, and the real open/ioctl on a device that is not
 * vhost-vsock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/virtio_config.h>
#include <endian.h>
#include <linux/virtio_ring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/kernel/kernel.h"
#include "util/log.h"
#include "vhost_double.h"
#include "vhost_user/msg.h"

#define MEM_SIZE 0x100000ull
#define UVA_BASE 0x7f0000000000ull   /* the front end's address for guest RAM */
#define UVA_OTHER 0x7e0000000000ull  /* somewhere no ring lives */
#define RING_STRIDE 0x10000ull
#define AVAIL_OFF 0x4000ull
#define USED_OFF 0x8000ull
#define F_BIT(n) (1ull << (n))

struct fx {
	struct kern_engine k;
	struct vu_dev dev;
	int memfd;
};

/* ------------------------------------------------------------------ */
/* Log capture                                                         */

static int cap_fd = -1, cap_saved = -1;
static char cap_buf[16384];

static void cap_begin(void)
{
	cap_fd = memfd_create("log", 0);
	assert_true(cap_fd >= 0);
	cap_saved = dup(STDERR_FILENO);
	assert_true(cap_saved >= 0);
	assert_true(dup2(cap_fd, STDERR_FILENO) >= 0);
}

static const char *cap_end(void)
{
	ssize_t n;

	dup2(cap_saved, STDERR_FILENO);
	close(cap_saved);
	n = pread(cap_fd, cap_buf, sizeof(cap_buf) - 1, 0);
	close(cap_fd);
	cap_buf[n > 0 ? n : 0] = '\0';
	fputs(cap_buf, stderr); /* keep it visible in the test log */
	return cap_buf;
}

static unsigned int count_str(const char *hay, const char *needle)
{
	unsigned int n = 0;

	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static uint64_t le64_at(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* ------------------------------------------------------------------ */
/* Fixture: an engine, a session and 1 MiB of memfd "guest RAM"         */

static void map_mem(struct fx *f, struct gmem *m, uint64_t uva)
{
	struct gmem_region_desc d = { .gpa = 0, .size = MEM_SIZE, .uva = uva, .mmap_offset = 0 };

	gmem_init(m);
	assert_int_equal(gmem_map(m, &d, 1, &f->memfd), 0);
}

static void fx_init(struct fx *f, uint64_t cid)
{
	memset(f, 0, sizeof(*f));
	kern_engine_init(&f->k, &vhd_ops, "/dev/vhost-vsock", cid);
	assert_int_equal(kern_engine_open(&f->k), 0);
	f->dev.name = "test";
	f->dev.sock = -1;
	f->dev.ops = &kern_dev_ops;
	f->dev.priv = &f->k;
	gmem_init(&f->dev.mem);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		f->dev.vrings[i].kick_fd = -1;
		f->dev.vrings[i].call_fd = -1;
		f->dev.vrings[i].err_fd = -1;
	}
	f->memfd = memfd_create("guest", 0);
	assert_true(f->memfd >= 0);
	assert_int_equal(ftruncate(f->memfd, (off_t)MEM_SIZE), 0);
}

static void close_fd_if(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The end of a session as the server does it: reset hook, then close. */
static void fx_fini(struct fx *f)
{
	kern_dev_ops.reset(&f->dev);
	kern_engine_close(&f->k);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		close_fd_if(&f->dev.vrings[i].kick_fd);
		close_fd_if(&f->dev.vrings[i].call_fd);
		close_fd_if(&f->dev.vrings[i].err_fd);
	}
	gmem_unmap(&f->dev.mem);
	close_fd_if(&f->memfd);
	assert_int_equal(f->k.vhost_fd, -1);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	vhd_reset();
	fx_init(f, 3);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	fx_fini(f);
	free(f);
	assert_int_equal(vhd_open_fds(), 0);
	assert_int_equal(vhd_bad_closes(), 0);
	return 0;
}

/* ------------------------------------------------------------------ */
/* What the vhost-user layer does per request                          */

static int changed(struct fx *f, unsigned int i)
{
	return kern_dev_ops.vring_changed(&f->dev, i);
}

static void set_mem(struct fx *f, uint64_t uva)
{
	struct gmem nm;

	map_mem(f, &nm, uva);
	assert_int_equal(kern_dev_ops.set_mem_table(&f->dev, &nm), 0);
	gmem_unmap(&f->dev.mem);
	f->dev.mem = nm;
}

static int ring_num(struct fx *f, unsigned int i, uint32_t num)
{
	f->dev.vrings[i].num = num;
	return changed(f, i);
}

static int ring_base(struct fx *f, unsigned int i, uint16_t base)
{
	f->dev.vrings[i].base = base;
	f->dev.vrings[i].base_gen++; /* as the dispatcher does on SET_VRING_BASE */
	return changed(f, i);
}

static int ring_addr_at(struct fx *f, unsigned int i, uint64_t desc)
{
	struct vu_vring *vr = &f->dev.vrings[i];

	vr->addr = (struct vu_vring_addr){ .index = i, .desc = desc, .avail = desc + AVAIL_OFF,
					    .used = desc + USED_OFF };
	vr->addr_set = true;
	return changed(f, i);
}

static int ring_addr(struct fx *f, unsigned int i)
{
	return ring_addr_at(f, i, UVA_BASE + i * RING_STRIDE);
}

/* A new eventfd replaces the old one, which the layer closes. */
static int new_efd(int *slot)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(fd >= 0);
	close_fd_if(slot);
	*slot = fd;
	return fd;
}

static int ring_kick(struct fx *f, unsigned int i)
{
	new_efd(&f->dev.vrings[i].kick_fd);
	f->dev.vrings[i].kick_set = true;
	f->dev.vrings[i].started = true;
	return changed(f, i);
}

static int ring_call(struct fx *f, unsigned int i)
{
	new_efd(&f->dev.vrings[i].call_fd);
	return changed(f, i);
}

static int ring_err(struct fx *f, unsigned int i)
{
	new_efd(&f->dev.vrings[i].err_fd);
	return changed(f, i);
}

static int ring_enable(struct fx *f, unsigned int i, bool on)
{
	f->dev.vrings[i].enabled = on;
	return changed(f, i);
}

static void features(struct fx *f, uint64_t acked)
{
	assert_int_equal(kern_dev_ops.set_features(&f->dev, acked), 0);
	f->dev.features = acked;
}

/* SET_OWNER, features, memory: what both front ends do before the rings. */
static void prologue(struct fx *f, uint64_t acked)
{
	assert_int_equal(kern_dev_ops.set_owner(&f->dev), 0);
	f->dev.owner = true;
	assert_int_equal(kern_dev_ops.get_features(&f->dev) & acked, acked);
	features(f, acked);
	set_mem(f, UVA_BASE);
}

/* QEMU: NUM, BASE, ADDR, KICK per ring, then ENABLE (REAL-PEERS.md §5). */
static void qemu_start(struct fx *f, uint32_t num)
{
	prologue(f, F_BIT(VIRTIO_F_VERSION_1) | F_BIT(VIRTIO_RING_F_EVENT_IDX));
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(ring_num(f, i, num), 0);
		assert_int_equal(ring_base(f, i, 0), 0);
		assert_int_equal(ring_addr(f, i), 0);
		assert_int_equal(ring_kick(f, i), 0);
	}
	assert_false(f->k.running);
	assert_int_equal(ring_enable(f, 0, true), 0);
	assert_false(f->k.running);
	assert_int_equal(ring_enable(f, 1, true), 0);
	assert_true(f->k.running);
}

static const struct vhd_dev *kdev(const struct fx *f)
{
	const struct vhd_dev *d = vhd_dev(f->k.vhost_fd);

	assert_non_null(d);
	return d;
}

static uint64_t host_of(const struct fx *f, uint64_t uva)
{
	return (uint64_t)(uintptr_t)(f->dev.mem.regions[0].host + (uva - f->dev.mem.regions[0].uva));
}

/* The kernel holds ring @i with daemon pointers for the front end's addresses. */
static void assert_ring_in_kernel(const struct fx *f, unsigned int i)
{
	const struct vhd_vq *vq = &kdev(f)->vq[i];
	const struct vu_vring *vr = &f->dev.vrings[i];

	assert_int_equal(vq->num, vr->num);
	assert_int_equal(vq->addr.flags, 0);
	assert_int_equal(vq->addr.desc_user_addr, host_of(f, vr->addr.desc));
	assert_int_equal(vq->addr.avail_user_addr, host_of(f, vr->addr.avail));
	assert_int_equal(vq->addr.used_user_addr, host_of(f, vr->addr.used));
	assert_int_equal(vq->kick, vr->kick_fd);
	assert_int_equal(vq->call, vr->call_fd);
	assert_int_equal(vq->err, vr->err_fd);
}

/* No recorded call failed, and none reached a ring the kernel does not have. */
static void assert_all_calls_ok(void)
{
	for (size_t i = 0; i < vhd_ncalls(); i++) {
		const struct vhd_call *c = vhd_call_at(i);

		if (c->rc < 0)
			fail_msg("call %zu %s failed: %d", i, vhd_req_name(c->req), c->rc);
		assert_true(c->index < 2);
	}
}

static long find_running(int on, size_t from)
{
	for (long i = vhd_find(VHOST_VSOCK_SET_RUNNING, from); i >= 0;
	     i = vhd_find(VHOST_VSOCK_SET_RUNNING, (size_t)i + 1))
		if (vhd_call_at((size_t)i)->val == (uint64_t)on)
			return i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Start orders                                                        */

static void test_qemu_order(void **state)
{
	struct fx *f = *state;
	const char *log;
	long cid_at, run_at;

	cap_begin();
	qemu_start(f, 128);
	log = cap_end();
	assert_non_null(strstr(log, "device started: guest CID 3, rx/tx size 128"));
	assert_true(kdev(f)->running);
	assert_int_equal(kdev(f)->cid, 3);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_all_calls_ok();
	/* ring ioctls, then the CID, then running, exactly once */
	cid_at = vhd_find(VHOST_VSOCK_SET_GUEST_CID, 0);
	run_at = find_running(1, 0);
	assert_true(cid_at > vhd_find(VHOST_SET_VRING_ERR, (size_t)vhd_find(VHOST_SET_VRING_ERR, 0) + 1));
	assert_true(run_at > cid_at);
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 1);
	assert_int_equal(vhd_count(VHOST_SET_VRING_NUM), 2);
	/* QEMU's final irqfds: swapped live, no restart */
	vhd_clear_calls();
	assert_int_equal(ring_call(f, 0), 0);
	assert_int_equal(ring_call(f, 1), 0);
	assert_int_equal(vhd_count(VHOST_SET_VRING_CALL), 2);
	assert_int_equal(vhd_ncalls(), 2);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_true(kdev(f)->running);
}

static void test_crosvm_order(void **state)
{
	struct fx *f = *state;

	prologue(f, F_BIT(VIRTIO_F_VERSION_1));
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(ring_num(f, i, 256), 0);
		assert_int_equal(ring_addr(f, i), 0);
		assert_int_equal(ring_base(f, i, 0), 0);
		assert_int_equal(ring_call(f, i), 0);
		assert_int_equal(ring_kick(f, i), 0);
		assert_int_equal(ring_enable(f, i, true), 0);
		assert_int_equal(f->k.running, i >= 1);
	}
	assert_true(kdev(f)->running);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	/* nothing about ring 2 reached the kernel (it would say ENOBUFS) */
	assert_all_calls_ok();
	/* and changing ring 2 while running leaves the kernel alone */
	vhd_clear_calls();
	assert_int_equal(ring_kick(f, 2), 0);
	assert_int_equal(ring_enable(f, 2, false), 0);
	assert_int_equal(vhd_ncalls(), 0);
	assert_true(kdev(f)->running);
}

/* Without bit 30 the layer marks rings enabled from the start. */
static void test_no_protocol_features(void **state)
{
	struct fx *f = *state;

	prologue(f, F_BIT(VIRTIO_F_VERSION_1));
	for (unsigned int i = 0; i < 3; i++)
		f->dev.vrings[i].enabled = true;
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(ring_num(f, i, 64), 0);
		assert_int_equal(ring_base(f, i, 0), 0);
		assert_int_equal(ring_addr(f, i), 0);
		assert_false(f->k.running);
		assert_int_equal(ring_kick(f, i), 0);
	}
	assert_true(kdev(f)->running);
	assert_ring_in_kernel(f, 1);
	assert_all_calls_ok();
}

/* Rings ready but no memory table yet: nothing starts. */
static void test_no_memory_no_start(void **state)
{
	struct fx *f = *state;

	assert_int_equal(kern_dev_ops.set_owner(&f->dev), 0);
	for (unsigned int i = 0; i < 2; i++) {
		f->dev.vrings[i].enabled = true;
		assert_int_equal(ring_num(f, i, 64), 0);
		assert_int_equal(ring_addr(f, i), 0);
		assert_int_equal(ring_kick(f, i), 0);
	}
	assert_false(f->k.running);
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 0);
}

/* ------------------------------------------------------------------ */
/* Stop, GET_VRING_BASE, restart                                       */

static void test_disable_stops(void **state)
{
	struct fx *f = *state;
	size_t mark;

	qemu_start(f, 128);
	vhd_advance(f->k.vhost_fd, 1, 5);
	cap_begin();
	assert_int_equal(ring_enable(f, 1, false), 0);
	assert_non_null(strstr(cap_end(), "device stopped"));
	assert_false(f->k.running);
	assert_false(kdev(f)->running);
	assert_true(find_running(0, 0) > 0);
	/*
	 * Enable again: programmed from what the front end configured, but the
	 * kernel resumes where the ring was (a stale base would replay old
	 * descriptors): no SET_VRING_BASE, position 5 kept.
	 */
	mark = vhd_ncalls();
	assert_int_equal(ring_enable(f, 1, true), 0);
	assert_true(kdev(f)->running);
	assert_true(vhd_find(VHOST_SET_VRING_NUM, mark) > 0);
	assert_true(vhd_find(VHOST_SET_VRING_BASE, mark) < 0);
	assert_int_equal(kdev(f)->vq[1].last_avail, 5);
	assert_true(find_running(1, mark) > 0);
	/* a base the front end sends, even the old value 0, is given */
	assert_int_equal(ring_enable(f, 1, false), 0);
	assert_int_equal(ring_base(f, 1, 0), 0);
	mark = vhd_ncalls();
	assert_int_equal(ring_enable(f, 1, true), 0);
	assert_true(vhd_find(VHOST_SET_VRING_BASE, mark) > 0);
	assert_int_equal(kdev(f)->vq[1].last_avail, 0);
	assert_all_calls_ok();
}

static void test_get_vring_base_stops_first(void **state)
{
	struct fx *f = *state;
	uint32_t base = 0xdead;
	long stop_at, get_at;

	qemu_start(f, 128);
	vhd_advance(f->k.vhost_fd, 0, 3);
	vhd_advance(f->k.vhost_fd, 1, 4);
	vhd_clear_calls();
	assert_int_equal(kern_dev_ops.vring_stop(&f->dev, 0, &base), 0);
	assert_int_equal(base, 3);
	stop_at = find_running(0, 0);
	get_at = vhd_find(VHOST_GET_VRING_BASE, 0);
	assert_true(stop_at >= 0);
	assert_true(get_at > stop_at);
	assert_false(kdev(f)->running);
	assert_int_equal(kern_dev_ops.vring_stop(&f->dev, 1, &base), 0);
	assert_int_equal(base, 4);
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 1);
	assert_int_equal(vhd_count(VHOST_GET_VRING_BASE), 2);
	assert_all_calls_ok();
}

/* The event queue's base is ours; asking for it stops nothing. */
static void test_get_vring_base_event_queue(void **state)
{
	struct fx *f = *state;
	uint32_t base = 0;

	qemu_start(f, 128);
	f->dev.vrings[2].base = 77;
	vhd_clear_calls();
	assert_int_equal(kern_dev_ops.vring_stop(&f->dev, 2, &base), 0);
	assert_int_equal(base, 77);
	assert_int_equal(vhd_ncalls(), 0);
	assert_true(kdev(f)->running);
	assert_int_equal(kern_dev_ops.vring_stop(&f->dev, VU_MAX_QUEUES, &base), -EINVAL);
}

/* A ring the kernel never saw: the stored base, no kernel call. */
static void test_get_vring_base_unprogrammed(void **state)
{
	struct fx *f = *state;
	uint32_t base = 0;

	assert_int_equal(kern_dev_ops.set_owner(&f->dev), 0);
	assert_int_equal(ring_base(f, 1, 0x1234), 0);
	assert_int_equal(kern_dev_ops.vring_stop(&f->dev, 1, &base), 0);
	assert_int_equal(base, 0x1234);
	assert_int_equal(vhd_count(VHOST_GET_VRING_BASE), 0);
}

/* QEMU stop then start: ENABLE 0, GET_VRING_BASE, then a new setup. */
static void test_restart_after_reprogramming(void **state)
{
	struct fx *f = *state;
	uint32_t base[2];

	qemu_start(f, 128);
	vhd_advance(f->k.vhost_fd, 0, 3);
	vhd_advance(f->k.vhost_fd, 1, 9);
	for (unsigned int i = 0; i < 2; i++)
		assert_int_equal(ring_enable(f, i, false), 0);
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(kern_dev_ops.vring_stop(&f->dev, i, &base[i]), 0);
		f->dev.vrings[i].started = false;
	}
	assert_int_equal(base[0], 3);
	assert_int_equal(base[1], 9);
	vhd_clear_calls();
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(ring_num(f, i, 256), 0);
		assert_int_equal(ring_base(f, i, (uint16_t)base[i]), 0);
		assert_int_equal(ring_addr(f, i), 0);
		assert_int_equal(ring_kick(f, i), 0);
		assert_int_equal(ring_enable(f, i, true), 0);
	}
	assert_true(kdev(f)->running);
	assert_int_equal(kdev(f)->vq[0].last_avail, 3);
	assert_int_equal(kdev(f)->vq[1].last_avail, 9);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_all_calls_ok(); /* in particular no EBUSY */
}

/* A new size while running: stop, re-program, restart, position kept. */
static void test_resize_while_running(void **state)
{
	struct fx *f = *state;
	long stop_at, num_at, start_at;

	qemu_start(f, 128);
	vhd_advance(f->k.vhost_fd, 0, 7);
	vhd_clear_calls();
	assert_int_equal(ring_num(f, 0, 512), 0);
	stop_at = find_running(0, 0);
	num_at = vhd_find(VHOST_SET_VRING_NUM, 0);
	start_at = find_running(1, 0);
	assert_true(stop_at >= 0 && num_at > stop_at && start_at > num_at);
	assert_int_equal(vhd_count(VHOST_SET_VRING_BASE), 0);
	assert_int_equal(kdev(f)->vq[0].last_avail, 7);
	assert_int_equal(kdev(f)->vq[0].num, 512);
	assert_true(kdev(f)->running);
	assert_ring_in_kernel(f, 0);
	assert_all_calls_ok();
}

/* A new kick fd while running: handed over live, no stop. */
static void test_new_kick_while_running(void **state)
{
	struct fx *f = *state;

	qemu_start(f, 128);
	vhd_clear_calls();
	assert_int_equal(ring_kick(f, 1), 0);
	assert_int_equal(ring_err(f, 0), 0);
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 0);
	assert_int_equal(vhd_count(VHOST_SET_VRING_KICK), 1);
	assert_int_equal(vhd_count(VHOST_SET_VRING_ERR), 1);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_all_calls_ok();
}

/* ------------------------------------------------------------------ */
/* Memory tables                                                       */

static void test_mem_table_while_running(void **state)
{
	struct fx *f = *state;
	struct gmem nm;
	long stop_at, tab_at, addr_at, start_at;

	qemu_start(f, 128);
	vhd_advance(f->k.vhost_fd, 1, 2);
	map_mem(f, &nm, UVA_BASE);
	assert_ptr_not_equal(nm.regions[0].host, f->dev.mem.regions[0].host);
	vhd_clear_calls();
	assert_int_equal(kern_dev_ops.set_mem_table(&f->dev, &nm), 0);
	stop_at = find_running(0, 0);
	tab_at = vhd_find(VHOST_SET_MEM_TABLE, 0);
	addr_at = vhd_find(VHOST_SET_VRING_ADDR, 0);
	start_at = find_running(1, 0);
	assert_true(stop_at >= 0 && tab_at > stop_at && addr_at > tab_at && start_at > addr_at);
	assert_int_equal(vhd_count(VHOST_SET_VRING_ADDR), 2);
	assert_int_equal(vhd_count(VHOST_SET_VRING_BASE), 0);
	/* the layer now unmaps the old table */
	gmem_unmap(&f->dev.mem);
	f->dev.mem = nm;
	assert_int_equal(kdev(f)->regions[0].userspace_addr, (uintptr_t)nm.regions[0].host);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_int_equal(kdev(f)->vq[1].last_avail, 2);
	assert_true(kdev(f)->running);
	assert_all_calls_ok();
}

/* A table the rings do not fit in: refused before the kernel hears of it. */
static void test_mem_table_without_rings(void **state)
{
	struct fx *f = *state;
	struct gmem nm;

	qemu_start(f, 128);
	map_mem(f, &nm, UVA_OTHER);
	vhd_clear_calls();
	cap_begin();
	assert_int_equal(kern_dev_ops.set_mem_table(&f->dev, &nm), -EFAULT);
	assert_non_null(strstr(cap_end(), "not inside guest memory"));
	assert_int_equal(vhd_ncalls(), 0);
	assert_true(kdev(f)->running);
	gmem_unmap(&nm); /* the layer drops the refused table */
}

/* A failure after the new table is in: old table back, device stopped. */
static void test_mem_table_rollback(void **state)
{
	struct fx *f = *state;
	struct gmem nm;
	const char *log;

	qemu_start(f, 128);
	map_mem(f, &nm, UVA_BASE);
	assert_int_equal(vhd_fail(VHOST_SET_VRING_ADDR, 2, EINVAL), 0);
	cap_begin();
	assert_int_equal(kern_dev_ops.set_mem_table(&f->dev, &nm), -EINVAL);
	log = cap_end();
	assert_int_equal(count_str(log, "VHOST_SET_VRING_ADDR failed"), 1);
	assert_false(kdev(f)->running);
	assert_false(f->k.running);
	assert_int_equal(kdev(f)->regions[0].userspace_addr,
			 (uintptr_t)f->dev.mem.regions[0].host);
	gmem_unmap(&nm);
}

/* The kernel refuses the table: it keeps the old one and goes on running. */
static void test_mem_table_refused_by_kernel(void **state)
{
	struct fx *f = *state;
	struct gmem nm;

	qemu_start(f, 128);
	map_mem(f, &nm, UVA_BASE);
	assert_int_equal(vhd_fail(VHOST_SET_MEM_TABLE, 1, E2BIG), 0);
	assert_int_equal(kern_dev_ops.set_mem_table(&f->dev, &nm), -E2BIG);
	assert_true(kdev(f)->running);
	assert_int_equal(kdev(f)->regions[0].userspace_addr,
			 (uintptr_t)f->dev.mem.regions[0].host);
	gmem_unmap(&nm);
}

static void test_mem_table_stopped(void **state)
{
	struct fx *f = *state;

	assert_int_equal(kern_dev_ops.set_owner(&f->dev), 0);
	set_mem(f, UVA_BASE);
	assert_int_equal(vhd_count(VHOST_SET_MEM_TABLE), 1);
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 0);
	assert_int_equal(kdev(f)->nregions, 1);
	assert_int_equal(kdev(f)->regions[0].guest_phys_addr, 0);
	assert_int_equal(kdev(f)->regions[0].memory_size, MEM_SIZE);
	assert_int_equal(kdev(f)->regions[0].userspace_addr,
			 (uintptr_t)f->dev.mem.regions[0].host);
}

static void ready_but_kick1(struct fx *f, unsigned int num)
{
	prologue(f, F_BIT(VIRTIO_F_VERSION_1));
	for (unsigned int i = 0; i < 2; i++) {
		f->dev.vrings[i].enabled = true;
		assert_int_equal(ring_num(f, i, num), 0);
		assert_int_equal(ring_addr(f, i), 0);
	}
	assert_int_equal(ring_kick(f, 0), 0);
}

/* ------------------------------------------------------------------ */
/* CIDs                                                                */

static void test_duplicate_cid(void **state)
{
	struct fx *f = *state;
	struct fx g;
	const char *log;

	qemu_start(f, 128);
	fx_init(&g, 3);
	prologue(&g, F_BIT(VIRTIO_F_VERSION_1));
	for (unsigned int i = 0; i < 2; i++) {
		g.dev.vrings[i].enabled = true;
		assert_int_equal(ring_num(&g, i, 128), 0);
		assert_int_equal(ring_addr(&g, i), 0);
	}
	assert_int_equal(ring_kick(&g, 0), 0);
	cap_begin();
	assert_int_equal(ring_kick(&g, 1), -EADDRINUSE);
	log = cap_end();
	assert_int_equal(count_str(log, "guest CID 3 is already in use by another vhost-vsock"), 1);
	assert_false(g.k.running);
	assert_false(kdev(&g)->running);
	/* the first device is unaffected */
	assert_true(kdev(f)->running);
	assert_int_equal(kdev(f)->cid, 3);
	fx_fini(&g);
	assert_true(kdev(f)->running);
}

/* Closing the fd frees the CID: the next front end gets it (REAL-PEERS §7.6). */
static void test_close_frees_cid(void **state)
{
	struct fx *f = *state;
	struct fx g;

	qemu_start(f, 128);
	assert_int_equal(vhd_open_fds(), 1);
	kern_dev_ops.reset(&f->dev);
	kern_engine_close(&f->k);
	assert_int_equal(vhd_open_fds(), 0);
	assert_false(f->k.running);
	fx_init(&g, 3);
	qemu_start(&g, 128);
	assert_int_equal(kdev(&g)->cid, 3);
	fx_fini(&g);
	assert_int_equal(vhd_open_fds(), 0);
}

/* Reserved CIDs fail the start, logged with the ioctl's name. */
static void test_reserved_cid(void **state)
{
	struct fx *f = *state;
	const uint64_t bad[] = { 0, 1, 2, 0xffffffffull, 1ull << 32 };

	ready_but_kick1(f, 128);
	for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
		f->k.cid = bad[j];
		cap_begin();
		assert_int_equal(ring_kick(f, 1), -EINVAL);
		assert_int_equal(count_str(cap_end(), "VHOST_VSOCK_SET_GUEST_CID"), 1);
		assert_false(f->k.running);
	}
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 0);
}

/* ------------------------------------------------------------------ */
/* Hostile or broken configurations                                    */

static void test_ring_outside_memory(void **state)
{
	struct fx *f = *state;

	ready_but_kick1(f, 128);
	/* the used ring runs past the end of the region */
	f->dev.vrings[1].addr.used = UVA_BASE + MEM_SIZE - 8;
	cap_begin();
	assert_int_equal(ring_kick(f, 1), -EFAULT);
	assert_non_null(strstr(cap_end(), "used ring"));
	assert_false(f->k.running);
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 0);
	/* an address near 2^64 must not wrap into the region */
	f->dev.vrings[1].addr.used = UVA_BASE + USED_OFF;
	f->dev.vrings[1].addr.desc = UINT64_MAX - 15;
	assert_int_equal(changed(f, 1), -EFAULT);
	assert_false(f->k.running);
}

/* With EVENT_IDX the used ring has 2 more bytes (used_event): they must fit too. */
static void test_event_idx_ring_size(void **state)
{
	struct fx *f = *state;
	const uint64_t used_end = UVA_BASE + MEM_SIZE - (4 + 8 * 128); /* fits exactly without */

	ready_but_kick1(f, 128);
	f->dev.features |= F_BIT(VIRTIO_RING_F_EVENT_IDX);
	f->dev.vrings[1].addr.used = used_end;
	cap_begin();
	assert_int_equal(ring_kick(f, 1), -EFAULT);
	assert_non_null(strstr(cap_end(), "used ring"));
	assert_int_equal(vhd_count(VHOST_VSOCK_SET_RUNNING), 0);
	/* without EVENT_IDX the same ring fits and runs */
	f->dev.features &= ~F_BIT(VIRTIO_RING_F_EVENT_IDX);
	assert_int_equal(changed(f, 1), 0);
	assert_true(kdev(f)->running);
	assert_int_equal(kdev(f)->vq[1].addr.used_user_addr, host_of(f, used_end));
}

static void test_no_kick_fd(void **state)
{
	struct fx *f = *state;

	ready_but_kick1(f, 128);
	f->dev.vrings[1].kick_set = true; /* the polling flag: no fd */
	f->dev.vrings[1].started = true;
	cap_begin();
	assert_int_equal(changed(f, 1), -EINVAL);
	assert_non_null(strstr(cap_end(), "no kick eventfd"));
	assert_false(f->k.running);
}

/* Every step of the start failing in turn: error out, device not running. */
static void test_start_faults(void **state)
{
	struct fx *f = *state;
	/*
	 * The second call of each ring ioctl is tx's; there is one SET_RUNNING.
	 * BASE is the exception: rx got its base in the first attempt and the
	 * kernel keeps that position, so later attempts give only tx's.
	 */
	const struct {
		unsigned long req;
		unsigned int nth;
	} steps[] = {
		{ VHOST_SET_VRING_NUM, 2 }, { VHOST_SET_VRING_BASE, 1 },
		{ VHOST_SET_VRING_ADDR, 2 }, { VHOST_SET_VRING_KICK, 2 },
		{ VHOST_SET_VRING_CALL, 1 }, { VHOST_SET_VRING_ERR, 2 },
		{ VHOST_VSOCK_SET_RUNNING, 1 },
	};

	ready_but_kick1(f, 128);
	for (size_t j = 0; j < sizeof(steps) / sizeof(steps[0]); j++) {
		assert_int_equal(vhd_fail(steps[j].req, steps[j].nth, EIO), 0);
		cap_begin();
		assert_int_equal(ring_kick(f, 1), -EIO);
		assert_int_equal(count_str(cap_end(), vhd_req_name(steps[j].req)), 1);
		assert_false(f->k.running);
		assert_false(kdev(f)->running);
	}
	assert_int_equal(ring_kick(f, 1), 0);
	assert_true(kdev(f)->running);
}

/* ------------------------------------------------------------------ */
/* Kicks after a start                                                 */

/* What was written to ring @i's kick eventfd since the last look (0: nothing). */
static uint64_t kicks(struct fx *f, unsigned int i)
{
	uint64_t v = 0;

	if (read(f->dev.vrings[i].kick_fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return v;
}

/*
 * The kernel forgets a kick that comes before SET_RUNNING(1), so a start
 * writes each rx/tx kick eventfd once, and only after the start: nothing
 * while the rings are configured, nothing on the event queue, nothing when
 * eventfds are swapped live.
 */
static void test_start_kicks_rings(void **state)
{
	struct fx *f = *state;

	prologue(f, F_BIT(VIRTIO_F_VERSION_1) | F_BIT(VIRTIO_RING_F_EVENT_IDX));
	for (unsigned int i = 0; i < 3; i++) {
		assert_int_equal(ring_num(f, i, 128), 0);
		assert_int_equal(ring_addr(f, i), 0);
		assert_int_equal(ring_kick(f, i), 0);
		assert_int_equal(ring_enable(f, i, i != 1), 0);
	}
	assert_false(f->k.running);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(kicks(f, i), 0);
	assert_int_equal(ring_enable(f, 1, true), 0);
	assert_true(kdev(f)->running);
	assert_int_equal(kicks(f, 0), 1);
	assert_int_equal(kicks(f, 1), 1);
	assert_int_equal(kicks(f, 2), 0);
	/* QEMU's final irqfds and a new kick fd: no restart, no kick */
	assert_int_equal(ring_call(f, 0), 0);
	assert_int_equal(ring_kick(f, 1), 0);
	assert_int_equal(kicks(f, 0), 0);
	assert_int_equal(kicks(f, 1), 0);
	assert_int_equal(kdev(f)->vq[1].kick, f->dev.vrings[1].kick_fd);
}

/* Every restart kicks again; a stop does not. */
static void test_restart_kicks_rings(void **state)
{
	struct fx *f = *state;
	struct gmem nm;

	qemu_start(f, 128);
	assert_int_equal(kicks(f, 0) + kicks(f, 1), 2);
	/* disable/enable tx, the ring-disable case of the real-kernel check */
	assert_int_equal(ring_enable(f, 1, false), 0);
	assert_false(kdev(f)->running);
	assert_int_equal(kicks(f, 0) + kicks(f, 1), 0);
	assert_int_equal(ring_enable(f, 1, true), 0);
	assert_true(kdev(f)->running);
	assert_int_equal(kicks(f, 0), 1);
	assert_int_equal(kicks(f, 1), 1);
	/* a re-size restarts the device */
	assert_int_equal(ring_num(f, 1, 256), 0);
	assert_int_equal(kicks(f, 0), 1);
	assert_int_equal(kicks(f, 1), 1);
	/* so does a new memory table */
	map_mem(f, &nm, UVA_BASE);
	assert_int_equal(kern_dev_ops.set_mem_table(&f->dev, &nm), 0);
	gmem_unmap(&f->dev.mem);
	f->dev.mem = nm;
	assert_int_equal(kicks(f, 0), 1);
	assert_int_equal(kicks(f, 1), 1);
	assert_all_calls_ok();
}

/* A start the kernel refuses kicks nothing: the kick is never sent first. */
static void test_failed_start_kicks_nothing(void **state)
{
	struct fx *f = *state;

	ready_but_kick1(f, 128);
	assert_int_equal(vhd_fail(VHOST_VSOCK_SET_RUNNING, 1, EIO), 0);
	cap_begin();
	assert_int_equal(ring_kick(f, 1), -EIO);
	cap_end();
	assert_false(kdev(f)->running);
	assert_int_equal(kicks(f, 0), 0);
	assert_int_equal(kicks(f, 1), 0);
}

static void on_alarm(int sig)
{
	(void)sig;
	fail_msg("the engine blocked writing a kick eventfd");
}

/*
 * Hostile front end: a blocking kick eventfd whose counter is full. A write
 * would block the daemon for good; the start completes without the kick.
 */
static void test_kick_counter_full(void **state)
{
	struct fx *f = *state;
	const uint64_t full = 0xfffffffffffffffeull;
	uint64_t v = 0;
	int efd = eventfd(0, EFD_CLOEXEC);

	assert_true(efd >= 0);
	assert_int_equal(write(efd, &full, sizeof(full)), sizeof(full));
	ready_but_kick1(f, 128);
	f->dev.vrings[1].kick_fd = efd;
	f->dev.vrings[1].kick_set = f->dev.vrings[1].started = true;
	signal(SIGALRM, on_alarm);
	alarm(10);
	cap_begin();
	assert_int_equal(changed(f, 1), 0);
	assert_non_null(strstr(cap_end(), "ring 1: kick eventfd not writable"));
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	assert_true(kdev(f)->running);
	assert_int_equal(kicks(f, 0), 1);
	assert_int_equal(read(efd, &v, sizeof(v)), sizeof(v));
	assert_true(v == full);
}

/* ------------------------------------------------------------------ */
/* Reset, session end, probe                                           */

static void test_reset_closes_and_reopens(void **state)
{
	struct fx *f = *state;
	int old_fd;

	qemu_start(f, 128);
	old_fd = f->k.vhost_fd;
	kern_dev_ops.reset(&f->dev);
	assert_int_equal(vhd_count(VHOST_RESET_OWNER), 0);
	assert_true(find_running(0, 0) >= 0);
	assert_int_equal(f->k.vhost_fd, -1);
	assert_int_equal(vhd_open_fds(), 0);
	assert_null(vhd_dev(old_fd));
	/* a reset again, or in the other order with close, is harmless */
	kern_dev_ops.reset(&f->dev);
	/* the next SET_OWNER works on a fresh device */
	assert_int_equal(kern_dev_ops.set_owner(&f->dev), 0);
	assert_int_equal(vhd_open_fds(), 1);
	assert_true(kdev(f)->owner);
	assert_int_equal(vhd_count(VHD_OPEN), 2);
	assert_int_equal(vhd_bad_closes(), 0);
}

/* RESET_DEVICE keeps the session's owner: the fresh fd is claimed without a SET_OWNER. */
static void test_reset_device_keeps_owner(void **state)
{
	struct fx *f = *state;

	qemu_start(f, 128);
	kern_dev_ops.reset(&f->dev);
	assert_int_equal(vhd_open_fds(), 0);
	vhd_clear_calls();
	features(f, F_BIT(VIRTIO_F_VERSION_1));
	assert_int_equal(vhd_find(VHD_OPEN, 0), 0);
	assert_true(vhd_find(VHOST_SET_OWNER, 0) < vhd_find(VHOST_SET_FEATURES, 0));
	assert_true(kdev(f)->owner);
	assert_int_equal(kdev(f)->acked, F_BIT(VIRTIO_F_VERSION_1));
	/* a claim that fails leaves no unowned fd behind, and is retried */
	kern_dev_ops.reset(&f->dev);
	assert_int_equal(vhd_fail(VHOST_SET_OWNER, 1, EIO), 0);
	cap_begin();
	assert_int_equal(kern_dev_ops.set_features(&f->dev, F_BIT(VIRTIO_F_VERSION_1)), -EIO);
	cap_end();
	assert_int_equal(vhd_open_fds(), 0);
	features(f, F_BIT(VIRTIO_F_VERSION_1));
	assert_true(kdev(f)->owner);
}

static void test_close_then_reset(void **state)
{
	struct fx *f = *state;

	qemu_start(f, 128);
	kern_engine_close(&f->k);
	assert_int_equal(vhd_open_fds(), 0);
	kern_dev_ops.reset(&f->dev);
	kern_engine_close(&f->k);
	assert_int_equal(vhd_count(VHD_CLOSE), 1);
	/* no session: hooks do not reopen the device */
	cap_begin();
	assert_int_equal(kern_dev_ops.set_owner(&f->dev), -ENODEV);
	cap_end();
	assert_int_equal(vhd_open_fds(), 0);
	/* a new session works again */
	assert_int_equal(kern_engine_open(&f->k), 0);
	assert_int_equal(kern_dev_ops.set_owner(&f->dev), 0);
}

/* The session's end stops the device before closing it. */
static void test_session_end_stops(void **state)
{
	struct fx *f = *state;
	long stop_at, close_at;

	qemu_start(f, 128);
	vhd_clear_calls();
	kern_engine_close(&f->k);
	stop_at = find_running(0, 0);
	close_at = vhd_find(VHD_CLOSE, 0);
	assert_true(stop_at >= 0 && close_at > stop_at);
	assert_int_equal(vhd_open_fds(), 0);
}

static void probe_fails(unsigned long req, int err, const char *msg)
{
	struct kern_engine k;
	const char *log;

	vhd_reset();
	kern_engine_init(&k, &vhd_ops, "/dev/vhost-vsock", 3);
	assert_int_equal(vhd_fail(req, 1, err), 0);
	cap_begin();
	assert_int_equal(kern_engine_probe(&k), -err);
	log = cap_end();
	assert_int_equal(count_str(log, msg), 1);
	assert_int_equal(vhd_open_fds(), 0);
	assert_int_equal(k.vhost_fd, -1);
}

static void test_probe(void **state)
{
	struct kern_engine k;

	(void)state;
	probe_fails(VHD_OPEN, ENOENT, "modprobe vhost_vsock");
	probe_fails(VHD_OPEN, EACCES, "permission denied");
	probe_fails(VHD_OPEN, EPERM, "permission denied");
	probe_fails(VHOST_GET_FEATURES, ENOTTY, "not a vhost-vsock device");
	probe_fails(VHOST_GET_FEATURES, EINVAL, "not a vhost-vsock device");
	vhd_reset();
	kern_engine_init(&k, &vhd_ops, "/dev/vhost-vsock", 3);
	assert_int_equal(kern_engine_probe(&k), 0);
	assert_int_equal(k.kernel_features, VHD_FEATURES_DEFAULT);
	assert_int_equal(vhd_open_fds(), 0);
	assert_int_equal(vhd_count(VHD_CLOSE), 1);
}

/* The real system calls on paths that are not vhost-vsock. */
static void test_probe_real_device(void **state)
{
	struct kern_engine k;
	const char *log;

	(void)state;
	kern_engine_init(&k, &kern_vhost_sys, "/dev/null", 3);
	cap_begin();
	assert_int_equal(kern_engine_probe(&k), -ENOTTY);
	log = cap_end();
	assert_non_null(strstr(log, "not a vhost-vsock device"));
	assert_int_equal(k.vhost_fd, -1);
	kern_engine_init(&k, &kern_vhost_sys, "/nonexistent/vhost-vsock", 3);
	cap_begin();
	assert_int_equal(kern_engine_probe(&k), -ENOENT);
	assert_non_null(strstr(cap_end(), "modprobe vhost_vsock"));
}

static void test_open_failure(void **state)
{
	struct fx *f = *state;

	kern_engine_close(&f->k);
	assert_int_equal(vhd_fail(VHD_OPEN, 1, EMFILE), 0);
	cap_begin();
	assert_int_equal(kern_engine_open(&f->k), -EMFILE);
	cap_end();
	assert_false(f->k.session);
	assert_int_equal(vhd_open_fds(), 0);
	assert_int_equal(kern_engine_open(&f->k), 0);
	/* opening twice does not leak the first fd */
	cap_begin();
	assert_int_equal(kern_engine_open(&f->k), 0);
	cap_end();
	assert_int_equal(vhd_open_fds(), 1);
}

/* ------------------------------------------------------------------ */
/* Features and config                                                 */

static void test_masked_features(void **state)
{
	struct fx *f = *state;
	const uint64_t want = F_BIT(1) | F_BIT(24) | F_BIT(27) | F_BIT(28) | F_BIT(29) | F_BIT(32);

	assert_int_equal(kern_dev_ops.get_features(&f->dev), want);
	assert_int_equal(kern_dev_ops.get_features(&f->dev) & (F_BIT(26) | F_BIT(33)), 0);
	cap_begin();
	assert_int_equal(kern_dev_ops.set_features(&f->dev, F_BIT(32) | F_BIT(26)), -EINVAL);
	assert_int_equal(kern_dev_ops.set_features(&f->dev, F_BIT(32) | F_BIT(33)), -EINVAL);
	assert_int_equal(kern_dev_ops.set_features(&f->dev, F_BIT(32) | F_BIT(40)), -EINVAL);
	cap_end();
	assert_int_equal(vhd_count(VHOST_SET_FEATURES), 0);
	assert_int_equal(kern_dev_ops.set_features(&f->dev, want), 0);
	assert_int_equal(kdev(f)->acked, want);
	/* an older kernel without SEQPACKET: not offered */
	kern_engine_close(&f->k);
	vhd_set_features(0x13d000000ull);
	assert_int_equal(kern_engine_open(&f->k), 0);
	assert_int_equal(kern_dev_ops.get_features(&f->dev), want & ~F_BIT(1));
}

static void test_get_config(void **state)
{
	struct fx *f = *state;
	uint8_t out[8];
	const uint8_t le[8] = { 0x55, 0x44, 0x33, 0x22, 0x11, 0, 0, 0 };

	f->k.cid = 0x1122334455ull;
	memset(out, 0xee, sizeof(out));
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 0, 8, out), 0);
	assert_memory_equal(out, le, 8);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 2, 3, out), 0);
	assert_memory_equal(out, le + 2, 3);
	assert_int_equal(out[3], 0xee);
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 7, 1, out), 0);
	assert_int_equal(out[0], 0);
	cap_begin();
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 8, 1, out), -EINVAL);
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 4, 5, out), -EINVAL);
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 0, 0, out), -EINVAL);
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 0, 9, out), -EINVAL);
	assert_int_equal(kern_dev_ops.get_config(&f->dev, UINT32_MAX, 2, out), -EINVAL);
	assert_int_equal(kern_dev_ops.get_config(&f->dev, 1, UINT32_MAX, out), -EINVAL);
	cap_end();
}

static void test_ops_table(void **state)
{
	(void)state;
	assert_int_equal(kern_dev_ops.nqueues, 3);
	assert_int_equal(kern_dev_ops.max_queue_size, 1024);
	assert_int_equal(kern_dev_ops.max_queue_size & (kern_dev_ops.max_queue_size - 1), 0);
	assert_int_equal(kern_dev_ops.protocol_features,
			 F_BIT(VU_PROTOCOL_F_MQ) | F_BIT(VU_PROTOCOL_F_REPLY_ACK) |
				 F_BIT(VU_PROTOCOL_F_CONFIG) | F_BIT(VU_PROTOCOL_F_RESET_DEVICE) |
				 F_BIT(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS));
}

/* ------------------------------------------------------------------ */
/* Through the real vhost-user dispatcher                              */

/* One request; fails the test if the session would end. Return: u64 reply/ack. */
static uint64_t vu_req(struct fx *f, uint32_t req, const void *payload, uint32_t size, int fd)
{
	struct vu_msg msg, reply;
	bool has_reply = false;

	memset(&msg, 0, sizeof(msg));
	msg.hdr.request = req;
	msg.hdr.flags = VU_FLAG_VERSION | (f->dev.reply_ack ? VU_FLAG_NEED_REPLY : 0);
	msg.hdr.size = size;
	if (size)
		memcpy(msg.payload.raw, payload, size);
	if (fd >= 0) {
		msg.fds[0] = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		msg.nfds = 1;
	}
	memset(&reply, 0, sizeof(reply));
	assert_int_equal(vu_dev_handle(&f->dev, &msg, &reply, &has_reply), 0);
	if (!has_reply)
		return 0;
	if (req == VU_REQ_GET_VRING_BASE)
		return reply.payload.state.num;
	if (req == VU_REQ_GET_CONFIG)
		return reply.payload.config.size == 8 ? le64_at(reply.payload.config.payload) : ~0ull;
	return reply.payload.u64;
}

static uint64_t vu_u64(struct fx *f, uint32_t req, uint64_t v)
{
	return vu_req(f, req, &v, sizeof(v), -1);
}

static uint64_t vu_state(struct fx *f, uint32_t req, uint32_t index, uint32_t num)
{
	struct vu_vring_state st = { .index = index, .num = num };

	return vu_req(f, req, &st, sizeof(st), -1);
}

static uint64_t vu_efd(struct fx *f, uint32_t req, uint32_t index)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v = index;
	uint64_t r;

	assert_true(efd >= 0);
	r = vu_req(f, req, &v, sizeof(v), efd);
	close(efd);
	return r;
}

static uint64_t vu_mem(struct fx *f)
{
	struct vu_mem_table t = { .nregions = 1 };

	t.regions[0] = (struct vu_mem_region){ .guest_phys_addr = 0, .memory_size = MEM_SIZE,
					       .userspace_addr = UVA_BASE, .mmap_offset = 0 };
	return vu_req(f, VU_REQ_SET_MEM_TABLE, &t, 8 + sizeof(t.regions[0]), f->memfd);
}

/* QEMU's start after DRIVER_OK (REAL-PEERS.md §5 rows 10-14); the acks. */
static uint64_t vu_qemu_activate(struct fx *f, uint32_t num)
{
	uint64_t acks = 0;

	acks |= vu_u64(f, VU_REQ_SET_FEATURES, F_BIT(32) | F_BIT(30) | F_BIT(29) | F_BIT(1));
	acks |= vu_mem(f);
	for (uint32_t i = 0; i < 2; i++) {
		struct vu_vring_addr a = { .index = i, .desc = UVA_BASE + i * RING_STRIDE };

		a.avail = a.desc + AVAIL_OFF;
		a.used = a.desc + USED_OFF;
		acks |= vu_state(f, VU_REQ_SET_VRING_NUM, i, num);
		acks |= vu_state(f, VU_REQ_SET_VRING_BASE, i, 0);
		acks |= vu_req(f, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), -1);
		acks |= vu_efd(f, VU_REQ_SET_VRING_KICK, i);
	}
	acks |= vu_state(f, VU_REQ_SET_VRING_ENABLE, 0, 1);
	acks |= vu_state(f, VU_REQ_SET_VRING_ENABLE, 1, 1);
	return acks;
}

/* QEMU's realize (rows 1-8). */
static void vu_qemu_realize(struct fx *f)
{
	uint64_t feat;

	vu_dev_init(&f->dev, "test", -1, &kern_dev_ops, &f->k);
	feat = vu_req(f, VU_REQ_GET_FEATURES, NULL, 0, -1);
	assert_int_equal(feat & (F_BIT(30) | F_BIT(32) | F_BIT(33) | F_BIT(26)),
			 F_BIT(30) | F_BIT(32));
	/* the engine's bits, and STATUS from the layer */
	assert_int_equal(vu_req(f, VU_REQ_GET_PROTOCOL_FEATURES, NULL, 0, -1), 0x1a209);
	assert_int_equal(vu_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, 0x209), 0);
	assert_int_equal(vu_req(f, VU_REQ_GET_QUEUE_NUM, NULL, 0, -1), 3);
	assert_int_equal(vu_req(f, VU_REQ_SET_OWNER, NULL, 0, -1), 0);
	for (uint32_t i = 0; i < 2; i++) {
		assert_int_equal(vu_efd(f, VU_REQ_SET_VRING_CALL, i), 0);
		assert_int_equal(vu_efd(f, VU_REQ_SET_VRING_ERR, i), 0);
	}
}

static uint64_t vu_get_config(struct fx *f)
{
	struct vu_config c = { .offset = 0, .size = 8 };

	return vu_req(f, VU_REQ_GET_CONFIG, &c, VU_CONFIG_HDR_SIZE + 8, -1);
}

static uint64_t vu_region(struct fx *f, uint32_t req, uint64_t gpa, uint64_t uva, int fd)
{
	struct vu_single_region r = { .region = { .guest_phys_addr = gpa, .memory_size = MEM_SIZE,
						  .userspace_addr = uva, .mmap_offset = 0 } };

	return vu_req(f, req, &r, sizeof(r), fd);
}

/*
 * Memory hot-plug while the device runs (QEMU with CONFIGURE_MEM_SLOTS):
 * the kernel gets the grown and the shrunk table, the rings stay where they
 * are, and the device runs on. The ring-holding region cannot be removed.
 */
static void test_dispatcher_mem_slots_running(void **state)
{
	struct fx *f = *state;
	const uint64_t pf = 0x209 | F_BIT(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	const uint64_t gpa2 = 0x100000000ull, uva2 = UVA_BASE + 0x40000000ull;
	int dimm = memfd_create("dimm", MFD_CLOEXEC);

	assert_true(dimm >= 0);
	assert_int_equal(ftruncate(dimm, (off_t)MEM_SIZE), 0);
	vu_dev_init(&f->dev, "test", -1, &kern_dev_ops, &f->k);
	assert_int_equal(vu_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, pf), 0);
	assert_int_equal(vu_req(f, VU_REQ_SET_OWNER, NULL, 0, -1), 0);
	assert_int_equal(vu_req(f, VU_REQ_GET_MAX_MEM_SLOTS, NULL, 0, -1), 32);
	assert_int_equal(vu_qemu_activate(f, 128), 0);
	assert_true(kdev(f)->running);
	vhd_advance(f->k.vhost_fd, 1, 5);
	assert_int_equal(vu_region(f, VU_REQ_ADD_MEM_REG, gpa2, uva2, dimm), 0);
	assert_int_equal(kdev(f)->nregions, 2);
	assert_int_equal(kdev(f)->regions[1].guest_phys_addr, gpa2);
	assert_int_equal(kdev(f)->regions[1].userspace_addr, (uintptr_t)f->dev.mem.regions[1].host);
	assert_true(kdev(f)->running);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_int_equal(kdev(f)->vq[1].last_avail, 5);
	/* REPLY_ACK: 1 = refused */
	assert_int_equal(vu_region(f, VU_REQ_REM_MEM_REG, 0, UVA_BASE, -1), 1);
	assert_int_equal(kdev(f)->nregions, 2);
	assert_int_equal(vu_region(f, VU_REQ_REM_MEM_REG, gpa2, uva2, -1), 0);
	assert_int_equal(kdev(f)->nregions, 1);
	assert_true(kdev(f)->running);
	assert_ring_in_kernel(f, 1);
	assert_all_calls_ok();
	close(dimm);
}

/* ------------------------------------------------------------------ */
/* The event queue: TRANSPORT_RESET for a guest that ran before         */

#define EV_BUF_GPA 0x30000ull

/* Guest RAM as the guest sees it (the memfd, GPA 0 at offset 0). */
static uint8_t *guest_ram(struct fx *f)
{
	void *p = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

/*
 * The guest's event ring (ring 2 at RING_STRIDE * 2): @n buffers of 8 bytes
 * made available, device-writable unless @readonly.
 */
static void guest_event_buffers(uint8_t *ram, unsigned int n, bool readonly)
{
	const uint64_t ring = 2 * RING_STRIDE;
	struct vring_desc *d = (struct vring_desc *)(ram + ring);
	struct vring_avail *a = (struct vring_avail *)(ram + ring + AVAIL_OFF);

	for (unsigned int i = 0; i < n; i++) {
		d[i] = (struct vring_desc){ .addr = EV_BUF_GPA + 8 * i, .len = 8,
					    .flags = readonly ? 0 : VRING_DESC_F_WRITE };
		a->ring[i] = (uint16_t)i;
		memset(ram + EV_BUF_GPA + 8 * i, 0xee, 8);
	}
	a->idx = (uint16_t)n;
}

/*
 * crosvm's start of all three rings (PROTOCOLS §1.11) with rx/tx starting
 * at @base, ring 2's call fd a dup of @ev_call.
 */
static void vu_crosvm_activate(struct fx *f, uint16_t base, int ev_call)
{
	vu_dev_init(&f->dev, "test", -1, &kern_dev_ops, &f->k);
	assert_int_equal(vu_req(f, VU_REQ_SET_OWNER, NULL, 0, -1), 0);
	assert_int_equal(vu_u64(f, VU_REQ_SET_PROTOCOL_FEATURES, F_BIT(VU_PROTOCOL_F_MQ)), 0);
	assert_int_equal(vu_u64(f, VU_REQ_SET_FEATURES, F_BIT(32) | F_BIT(30)), 0);
	assert_int_equal(vu_mem(f), 0);
	for (uint32_t i = 0; i < 3; i++) {
		struct vu_vring_addr a = { .index = i, .desc = UVA_BASE + i * RING_STRIDE };
		uint64_t v = i;

		a.avail = a.desc + AVAIL_OFF;
		a.used = a.desc + USED_OFF;
		assert_int_equal(vu_state(f, VU_REQ_SET_VRING_NUM, i, 256), 0);
		assert_int_equal(vu_state(f, VU_REQ_SET_VRING_BASE, i, i < 2 ? base : 0), 0);
		assert_int_equal(vu_req(f, VU_REQ_SET_VRING_ADDR, &a, sizeof(a), -1), 0);
		assert_int_equal(vu_efd(f, VU_REQ_SET_VRING_KICK, i), 0);
		if (i == 2)
			assert_int_equal(vu_req(f, VU_REQ_SET_VRING_CALL, &v, sizeof(v), ev_call), 0);
		else
			assert_int_equal(vu_efd(f, VU_REQ_SET_VRING_CALL, i), 0);
	}
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(vu_state(f, VU_REQ_SET_VRING_ENABLE, i, 1), 0);
	assert_true(kdev(f)->running);
}

static uint16_t event_used_idx(const uint8_t *ram)
{
	return ((const struct vring_used *)(ram + 2 * RING_STRIDE + USED_OFF))->idx;
}

/* A fresh guest (rings at 0) gets no event; one that ran gets exactly one. */
static void test_event_reset_on_reattach(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = guest_ram(f);
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	const struct vring_used *u = (const struct vring_used *)(ram + 2 * RING_STRIDE + USED_OFF);
	eventfd_t n = 0;

	assert_true(call >= 0);
	guest_event_buffers(ram, 4, false);
	vu_crosvm_activate(f, 0, call);
	assert_int_equal(event_used_idx(ram), 0);
	assert_int_equal(eventfd_read(call, &n), -1);
	/* the front end leaves; a new one finds rx and tx already used */
	vu_dev_fini(&f->dev);
	kern_engine_close(&f->k);
	assert_int_equal(kern_engine_open(&f->k), 0);
	vu_crosvm_activate(f, 7, call);
	assert_int_equal(event_used_idx(ram), 1);
	assert_int_equal(u->ring[0].id, 0);
	assert_int_equal(u->ring[0].len, 4);
	assert_int_equal(le32toh(*(const uint32_t *)(ram + EV_BUF_GPA)), 0);
	assert_int_equal(ram[EV_BUF_GPA + 4], 0xee);
	assert_int_equal(eventfd_read(call, &n), 0);
	assert_int_equal(n, 1);
	/* once per session; GET_VRING_BASE on ring 2 counts the used buffer */
	assert_int_equal(vu_state(f, VU_REQ_SET_VRING_ENABLE, 1, 1), 0);
	assert_int_equal(event_used_idx(ram), 1);
	assert_int_equal(vu_state(f, VU_REQ_GET_VRING_BASE, 2, 0), 1);
	munmap(ram, MEM_SIZE);
	close(call);
}

/* No buffer, or a read-only one: the guest is not told, nothing is written, rings run. */
static void test_event_reset_without_buffer(void **state)
{
	struct fx *f = *state;
	uint8_t *ram = guest_ram(f);
	int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	assert_true(call >= 0);
	vu_crosvm_activate(f, 3, call);
	assert_int_equal(event_used_idx(ram), 0);
	vu_dev_fini(&f->dev);
	kern_engine_close(&f->k);
	assert_int_equal(kern_engine_open(&f->k), 0);
	guest_event_buffers(ram, 1, true);
	vu_crosvm_activate(f, 3, call);
	assert_int_equal(event_used_idx(ram), 0);
	assert_int_equal(ram[EV_BUF_GPA], 0xee);
	assert_true(kdev(f)->running);
	munmap(ram, MEM_SIZE);
	close(call);
}

static void test_dispatcher_qemu_session(void **state)
{
	struct fx *f = *state;

	vu_qemu_realize(f);
	assert_int_equal(vu_get_config(f), 3);
	assert_int_equal(vu_qemu_activate(f, 128), 0);
	assert_true(kdev(f)->running);
	assert_int_equal(kdev(f)->cid, 3);
	assert_ring_in_kernel(f, 0);
	assert_ring_in_kernel(f, 1);
	assert_int_equal(vu_efd(f, VU_REQ_SET_VRING_CALL, 1), 0);
	assert_int_equal(vu_efd(f, VU_REQ_SET_VRING_CALL, 0), 0);
	assert_ring_in_kernel(f, 0);
	/* stop: ENABLE 0, then GET_VRING_BASE per ring (rows 16-17) */
	vhd_advance(f->k.vhost_fd, 0, 3);
	vhd_advance(f->k.vhost_fd, 1, 4);
	assert_int_equal(vu_state(f, VU_REQ_SET_VRING_ENABLE, 0, 0), 0);
	assert_false(kdev(f)->running);
	assert_int_equal(vu_state(f, VU_REQ_SET_VRING_ENABLE, 1, 0), 0);
	assert_int_equal(vu_state(f, VU_REQ_GET_VRING_BASE, 0, 0), 3);
	assert_int_equal(vu_state(f, VU_REQ_GET_VRING_BASE, 1, 0), 4);
	/* guest driver reset: RESET_DEVICE, then a new activation on a fresh fd */
	assert_int_equal(vu_req(f, VU_REQ_RESET_DEVICE, NULL, 0, -1), 0);
	assert_int_equal(vhd_open_fds(), 0);
	assert_int_equal(vu_qemu_activate(f, 256), 0);
	assert_true(kdev(f)->running);
	assert_true(kdev(f)->owner);
	assert_int_equal(kdev(f)->vq[1].num, 256);
	assert_int_equal(kdev(f)->vq[1].last_avail, 0);
	vu_dev_fini(&f->dev);
	kern_engine_close(&f->k);
	assert_int_equal(vhd_open_fds(), 0);
}

/* A CID held by another device: the activation is NACKed, the session goes on. */
static void test_dispatcher_cid_in_use(void **state)
{
	struct fx *f = *state;
	struct fx g;
	const char *log;

	qemu_start(f, 128);
	fx_init(&g, 3);
	vu_qemu_realize(&g);
	cap_begin();
	assert_int_not_equal(vu_qemu_activate(&g, 128), 0);
	log = cap_end();
	assert_int_equal(count_str(log, "guest CID 3 is already in use"), 1);
	assert_false(kdev(&g)->running);
	assert_true(kdev(f)->running);
	/* the session still answers */
	assert_int_equal(vu_get_config(&g), 3);
	vu_dev_fini(&g.dev);
	fx_fini(&g);
	assert_int_equal(vhd_open_fds(), 1);
}

/* ------------------------------------------------------------------ */
/* The double keeps the kernel's rules                                 */

static int dio(int fd, unsigned long req, void *arg)
{
	return vhd_ops.ioctl(fd, req, arg);
}

static void test_double_rules(void **state)
{
	struct vhost_vring_state st = { .index = 2, .num = 8 };
	struct vhost_vring_addr a = { .index = 0, .flags = 2 };
	uint64_t v = 1ull << 40;
	int fd, on = 1;

	(void)state;
	vhd_reset();
	fd = vhd_ops.open("/dev/vhost-vsock");
	assert_true(fd >= 0);
	assert_int_equal(dio(fd, VHOST_SET_VRING_NUM, &st), -EPERM); /* no owner yet */
	assert_int_equal(dio(fd, VHOST_SET_OWNER, NULL), 0);
	assert_int_equal(dio(fd, VHOST_SET_OWNER, NULL), -EBUSY);
	assert_int_equal(dio(fd, VHOST_SET_VRING_NUM, &st), -ENOBUFS);
	st = (struct vhost_vring_state){ .index = 0, .num = 0 };
	assert_int_equal(dio(fd, VHOST_SET_VRING_NUM, &st), -EINVAL);
	st.num = 3;
	assert_int_equal(dio(fd, VHOST_SET_VRING_NUM, &st), -EINVAL);
	st.num = 0x10000;
	assert_int_equal(dio(fd, VHOST_SET_VRING_BASE, &st), -EINVAL);
	assert_int_equal(dio(fd, VHOST_SET_VRING_ADDR, &a), -EOPNOTSUPP);
	a.flags = 0;
	a.avail_user_addr = 1;
	assert_int_equal(dio(fd, VHOST_SET_VRING_ADDR, &a), -EINVAL);
	a.avail_user_addr = 2;
	a.used_user_addr = 2;
	assert_int_equal(dio(fd, VHOST_SET_VRING_ADDR, &a), -EINVAL);
	assert_int_equal(dio(fd, VHOST_SET_FEATURES, &v), -EOPNOTSUPP);
	assert_int_equal(dio(fd, VHOST_RESET_OWNER, NULL), -EFAULT);
	/* running without rings: the access check fails */
	assert_int_equal(dio(fd, VHOST_VSOCK_SET_RUNNING, &on), -EFAULT);
	assert_int_equal(dio(fd, 0xdeadul, &v), -ENOTTY);
	assert_int_equal(dio(fd + 1, VHOST_GET_FEATURES, &v), -EBADF);
	vhd_ops.close(fd);
	vhd_ops.close(fd);
	assert_int_equal(vhd_bad_closes(), 1);
	assert_int_equal(vhd_open_fds(), 0);
	vhd_reset();
}

static void test_double_mem_and_cid(void **state)
{
	union {
		struct vhost_memory m;
		uint8_t raw[sizeof(struct vhost_memory) + 2 * sizeof(struct vhost_memory_region)];
	} t;
	uint64_t cid = 3;
	int a, b;

	(void)state;
	vhd_reset();
	a = vhd_ops.open("x");
	b = vhd_ops.open("x");
	assert_int_equal(dio(a, VHOST_SET_OWNER, NULL), 0);
	memset(&t, 0, sizeof(t));
	t.m.nregions = 1;
	t.m.padding = 1;
	assert_int_equal(dio(a, VHOST_SET_MEM_TABLE, &t), -EOPNOTSUPP);
	t.m.padding = 0;
	assert_int_equal(dio(a, VHOST_SET_MEM_TABLE, &t), -EFAULT); /* size 0 */
	t.m.nregions = 2;
	t.m.regions[0].memory_size = t.m.regions[1].memory_size = 0x1000;
	t.m.regions[1].guest_phys_addr = 0x800;
	assert_int_equal(dio(a, VHOST_SET_MEM_TABLE, &t), -EFAULT); /* overlap */
	t.m.nregions = 65;
	assert_int_equal(dio(a, VHOST_SET_MEM_TABLE, &t), -E2BIG);
	assert_int_equal(dio(a, VHOST_VSOCK_SET_GUEST_CID, &cid), 0);
	assert_int_equal(dio(a, VHOST_VSOCK_SET_GUEST_CID, &cid), 0); /* same fd again */
	assert_int_equal(dio(b, VHOST_VSOCK_SET_GUEST_CID, &cid), -EADDRINUSE);
	vhd_ops.close(a);
	assert_int_equal(dio(b, VHOST_VSOCK_SET_GUEST_CID, &cid), 0);
	vhd_ops.close(b);
	assert_int_equal(vhd_open_fds(), 0);
	vhd_reset();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_qemu_order),
		T(test_crosvm_order),
		T(test_no_protocol_features),
		T(test_no_memory_no_start),
		T(test_disable_stops),
		T(test_get_vring_base_stops_first),
		T(test_get_vring_base_event_queue),
		T(test_get_vring_base_unprogrammed),
		T(test_restart_after_reprogramming),
		T(test_resize_while_running),
		T(test_new_kick_while_running),
		T(test_mem_table_while_running),
		T(test_mem_table_without_rings),
		T(test_mem_table_rollback),
		T(test_mem_table_refused_by_kernel),
		T(test_mem_table_stopped),
		T(test_duplicate_cid),
		T(test_close_frees_cid),
		T(test_reserved_cid),
		T(test_ring_outside_memory),
		T(test_event_idx_ring_size),
		T(test_no_kick_fd),
		T(test_start_faults),
		T(test_start_kicks_rings),
		T(test_restart_kicks_rings),
		T(test_failed_start_kicks_nothing),
		T(test_kick_counter_full),
		T(test_reset_closes_and_reopens),
		T(test_reset_device_keeps_owner),
		T(test_close_then_reset),
		T(test_session_end_stops),
		T(test_open_failure),
		T(test_masked_features),
		T(test_get_config),
		T(test_dispatcher_qemu_session),
		T(test_dispatcher_mem_slots_running),
		T(test_event_reset_on_reattach),
		T(test_event_reset_without_buffer),
		T(test_dispatcher_cid_in_use),
#undef T
		cmocka_unit_test(test_probe),
		cmocka_unit_test(test_probe_real_device),
		cmocka_unit_test(test_ops_table),
		cmocka_unit_test(test_double_rules),
		cmocka_unit_test(test_double_mem_and_cid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
