/* SPDX-License-Identifier: MIT */
/*
 * The VVU device model on its own, through its vfio_ops front door: config
 * space and capabilities, common config semantics, IOMMU rules, the two
 * queues driven by a minimal driver written here (independent of
 * virtio_pci.c, so a bug shared by both cannot hide), and the bridge in
 * front of a tfe front end: messages both ways, BAR 4 holding the front
 * end's memory, kicks as MSI-X, doorbells as calls, disconnects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tfe.h"
#include "transport/vvu/vfio.h"
#include "vvu_model.h"

#define CFG 7u
#define QSIZE 16u
#define BUFSZ 2048u
#define QMEM 0xc000u
#define QIOVA 0x100000000ull

/* A minimal virtio-PCI driver over vfio_ops: enough to move buffers. */
struct mq {
	uint8_t *mem;
	uint64_t iova;
	uint16_t avail_idx, used_seen;
};

struct drv {
	struct vvm *m;
	struct vfio_dev d;
	struct mq q[2];
	int vec[VVM_NVECTORS];
};

static void w(struct drv *t, uint64_t off, uint64_t v, size_t len)
{
	assert_int_equal(t->d.ops->region_write(&t->d, VVM_BAR_REGS, off, &v, len), 0);
}

static uint64_t r(struct drv *t, uint64_t off, size_t len)
{
	uint64_t v = 0;

	assert_int_equal(t->d.ops->region_read(&t->d, VVM_BAR_REGS, off, &v, len), 0);
	return v;
}

static uint8_t cfg8(struct drv *t, uint64_t off)
{
	uint8_t v;

	assert_int_equal(t->d.ops->region_read(&t->d, CFG, off, &v, 1), 0);
	return v;
}

static uint32_t cfg32(struct drv *t, uint64_t off)
{
	uint32_t v;

	assert_int_equal(t->d.ops->region_read(&t->d, CFG, off, &v, 4), 0);
	return v;
}

static void open_model(struct drv *t, const struct vvm_config *c)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(vvm_new(&t->m, c), 0);
	vvm_vfio_attach(t->m);
	assert_int_equal(vvm_vfio_open(&t->d, "00:05.0"), 0);
	assert_string_equal(t->d.name, "0000:00:05.0");
	for (unsigned int i = 0; i < VVM_NVECTORS; i++)
		t->vec[i] = -1;
}

static void close_model(struct drv *t)
{
	for (unsigned int i = 0; i < 2; i++) {
		if (t->q[i].mem)
			munmap(t->q[i].mem, QMEM);
	}
	t->d.ops->close(&t->d);
	for (unsigned int i = 0; i < VVM_NVECTORS; i++) {
		if (t->vec[i] >= 0)
			close(t->vec[i]);
	}
	vvm_vfio_attach(NULL);
	vvm_free(t->m);
}

static void setup_queue(struct drv *t, unsigned int i, bool device_writes)
{
	struct mq *q = &t->q[i];

	if (q->mem) {
		assert_int_equal(t->d.ops->dma_unmap(&t->d, q->iova, QMEM), 0);
		munmap(q->mem, QMEM);
	}
	q->avail_idx = q->used_seen = 0;
	q->mem = mmap(NULL, QMEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(q->mem != MAP_FAILED);
	q->iova = QIOVA + i * 0x10000ull;
	assert_int_equal(t->d.ops->dma_map(&t->d, q->mem, q->iova, QMEM), 0);
	w(t, VVM_COMMON_OFF + 0x16, i, 2);
	assert_int_equal(r(t, VVM_COMMON_OFF + 0x18, 2), VVM_QUEUE_MAX);
	w(t, VVM_COMMON_OFF + 0x18, QSIZE, 2);
	/* 64-bit addresses as two 32-bit halves, as VFIO.md says drivers do */
	w(t, VVM_COMMON_OFF + 0x20, (uint32_t)q->iova, 4);
	w(t, VVM_COMMON_OFF + 0x24, q->iova >> 32, 4);
	w(t, VVM_COMMON_OFF + 0x28, (uint32_t)(q->iova + 0x1000), 4);
	w(t, VVM_COMMON_OFF + 0x2c, (q->iova + 0x1000) >> 32, 4);
	w(t, VVM_COMMON_OFF + 0x30, (uint32_t)(q->iova + 0x2000), 4);
	w(t, VVM_COMMON_OFF + 0x34, (q->iova + 0x2000) >> 32, 4);
	assert_int_equal(r(t, VVM_COMMON_OFF + 0x20, 8), q->iova);
	w(t, VVM_COMMON_OFF + 0x1a, i, 2);
	assert_int_equal(r(t, VVM_COMMON_OFF + 0x1a, 2), i);
	for (unsigned int k = 0; k < QSIZE; k++) {
		uint8_t *d = q->mem + 16 * k;
		uint64_t a = q->iova + 0x4000 + k * BUFSZ;
		uint32_t l = BUFSZ;
		uint16_t f = device_writes ? 2 : 0;

		memcpy(d, &a, 8);
		memcpy(d + 8, &l, 4);
		memcpy(d + 12, &f, 2);
	}
	w(t, VVM_COMMON_OFF + 0x1c, 1, 2);
}

static void post(struct drv *t, unsigned int i, uint16_t id, uint32_t len)
{
	struct mq *q = &t->q[i];
	uint16_t idx;

	memcpy(q->mem + 16 * id + 8, &len, 4);
	memcpy(q->mem + 0x1000 + 4 + 2 * (q->avail_idx % QSIZE), &id, 2);
	idx = ++q->avail_idx;
	__atomic_store_n((uint16_t *)(q->mem + 0x1000 + 2), idx, __ATOMIC_RELEASE);
	w(t, VVM_NOTIFY_OFF + i * VVM_NOTIFY_MULT, i, 2);
}

/* Return: 1 with the id and length of the next used entry in @id and @len, or 0. */
static int used(struct drv *t, unsigned int i, uint32_t *id, uint32_t *len)
{
	struct mq *q = &t->q[i];
	uint16_t uidx = __atomic_load_n((uint16_t *)(q->mem + 0x2000 + 2), __ATOMIC_ACQUIRE);
	const uint8_t *e;

	if (uidx == q->used_seen)
		return 0;
	e = q->mem + 0x2000 + 4 + 8 * (q->used_seen++ % QSIZE);
	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	return 1;
}

/* Status handshake up to DRIVER_OK with both queues, vectors 0..n-1 and SLAVE_UP. */
static void bring_up(struct drv *t)
{
	uint64_t feat = (1ull << VVM_F_VERSION_1) | (1ull << VVM_F_ACCESS_PLATFORM);

	w(t, VVM_COMMON_OFF + 0x14, 0, 1);
	w(t, VVM_COMMON_OFF + 0x14, VVM_S_ACKNOWLEDGE | VVM_S_DRIVER, 1);
	w(t, VVM_COMMON_OFF + 0x08, 0, 4);
	w(t, VVM_COMMON_OFF + 0x0c, (uint32_t)feat, 4);
	w(t, VVM_COMMON_OFF + 0x08, 1, 4);
	w(t, VVM_COMMON_OFF + 0x0c, feat >> 32, 4);
	w(t, VVM_COMMON_OFF + 0x14, VVM_S_ACKNOWLEDGE | VVM_S_DRIVER | VVM_S_FEATURES_OK, 1);
	assert_true(r(t, VVM_COMMON_OFF + 0x14, 1) & VVM_S_FEATURES_OK);
	for (unsigned int i = 0; i < VVM_NVECTORS; i++) {
		if (t->vec[i] < 0)
			t->vec[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
	assert_int_equal(t->d.ops->set_msix(&t->d, t->vec, VVM_NVECTORS), 0);
	setup_queue(t, 0, true);
	setup_queue(t, 1, false);
	for (unsigned int i = 0; i < 3; i++) {
		w(t, VVM_NOTIFICATION_OFF, i, 2);
		w(t, VVM_NOTIFICATION_OFF + 2, 2 + i, 2);
		assert_int_equal(r(t, VVM_NOTIFICATION_OFF + 2, 2), 2 + i);
	}
	w(t, VVM_COMMON_OFF + 0x14,
	  VVM_S_ACKNOWLEDGE | VVM_S_DRIVER | VVM_S_FEATURES_OK | VVM_S_DRIVER_OK, 1);
	for (uint16_t k = 0; k < QSIZE; k++)
		post(t, 0, k, BUFSZ);
	w(t, VVM_DEVCFG_OFF, VVM_CFG_SLAVE_UP, 4);
	assert_true(vvm_driver_up(t->m));
}

static bool backend_drop_seen(struct vvm *m, int timeout_ms)
{
	struct vvm_stats st;

	for (int waited = 0; waited <= timeout_ms; waited += 5) {
		vvm_stats(m, &st);
		if (st.backend_dropped >= 1)
			return true;
		usleep(5000);
	}
	return false;
}

static bool fired(int efd, int timeout_ms)
{
	struct pollfd p = { efd, POLLIN, 0 };
	uint64_t v;

	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	return read(efd, &v, sizeof(v)) == sizeof(v);
}

static void test_config_space(void **state)
{
	struct drv t;
	struct vvm_config c = { 0 };
	unsigned int seen = 0, guard = 0;
	struct vfio_region_desc rd;

	(void)state;
	open_model(&t, &c);
	assert_int_equal(cfg32(&t, 0) & 0xffff, 0x1af4);
	assert_int_equal(cfg32(&t, 0) >> 16, 0x1058);
	for (uint8_t at = cfg8(&t, 0x34); at && guard < 32; at = cfg8(&t, at + 1), guard++) {
		uint8_t id = cfg8(&t, at);

		if (id == 0x11) {
			assert_int_equal((cfg32(&t, at) >> 16 & 0x7ff) + 1, VVM_NVECTORS);
			seen |= 1u << 0;
		} else {
			assert_int_equal(id, 0x09);
			seen |= 1u << cfg8(&t, at + 3);
			if (cfg8(&t, at + 3) == 6)
				assert_int_equal(cfg32(&t, at + 16), VVM_DOORBELL_MULT);
			if (cfg8(&t, at + 3) == 8) {
				assert_int_equal(cfg8(&t, at + 4), VVM_BAR_SHM);
				assert_int_equal(cfg32(&t, at + 12) | (uint64_t)cfg32(&t, at + 20) << 32,
						 VVM_DEFAULT_SHM_SIZE);
			}
		}
	}
	assert_int_equal(seen, 1u | 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 6 | 1u << 7 | 1u << 8);
	assert_int_equal(t.d.ops->region_info(&t.d, VVM_BAR_SHM, &rd), 0);
	assert_true(rd.flags & 4);
	assert_int_equal(t.d.ops->region_info(&t.d, VVM_BAR_REGS, &rd), 0);
	assert_int_equal(rd.size, VVM_BAR2_SIZE);
	/* reads past a region are refused, not clipped */
	assert_int_equal(t.d.ops->region_read(&t.d, VVM_BAR_REGS, VVM_BAR2_SIZE - 2, &guard, 4), -EINVAL);
	close_model(&t);
}

static void test_common_config(void **state)
{
	struct drv t;
	struct vvm_config c = { 0 };

	(void)state;
	open_model(&t, &c);
	w(&t, VVM_COMMON_OFF, 0, 4);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 4, 4), 0);
	w(&t, VVM_COMMON_OFF, 1, 4);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 4, 4), 3); /* VERSION_1 | ACCESS_PLATFORM */
	/* a feature not offered: FEATURES_OK does not stick */
	w(&t, VVM_COMMON_OFF + 0x14, 3, 1);
	w(&t, VVM_COMMON_OFF + 0x08, 0, 4);
	w(&t, VVM_COMMON_OFF + 0x0c, 1, 4);
	w(&t, VVM_COMMON_OFF + 0x08, 1, 4);
	w(&t, VVM_COMMON_OFF + 0x0c, 1, 4);
	w(&t, VVM_COMMON_OFF + 0x14, 0xb, 1);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 0x14, 1), 3);
	/* vectors beyond the table read back as refused */
	w(&t, VVM_COMMON_OFF + 0x10, VVM_NVECTORS, 2);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 0x10, 2), 0xffff);
	w(&t, VVM_COMMON_OFF + 0x16, 1, 2);
	w(&t, VVM_COMMON_OFF + 0x1a, 1, 2);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 0x1a, 2), 1);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 0x1e, 2), 1);
	/* reset: status reads 0 and the queue forgot its vector */
	w(&t, VVM_COMMON_OFF + 0x14, 0, 1);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 0x14, 1), 0);
	w(&t, VVM_COMMON_OFF + 0x16, 1, 2);
	assert_int_equal(r(&t, VVM_COMMON_OFF + 0x1a, 2), 0xffff);
	/* device config: SLAVE_UP is the driver's, the rest read-only */
	w(&t, VVM_DEVCFG_OFF, 0xffffffffu, 4);
	assert_int_equal(r(&t, VVM_DEVCFG_OFF, 4), VVM_CFG_SLAVE_UP);
	assert_int_equal(r(&t, VVM_DEVCFG_OFF + 4, 4), VVM_MAX_VHOST_QUEUES);
	close_model(&t);
}

static void test_iommu_rules(void **state)
{
	struct drv t;
	struct vvm_config c = { 0 };
	struct vfio_iova_range rg[4];
	void *p = mmap(NULL, 0x3000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	open_model(&t, &c);
	assert_int_equal(t.d.ops->iova_ranges(&t.d, rg, 4), 2);
	assert_true(rg[0].end < 0xfee00000ull && rg[1].start > 0xfeefffffull);
	assert_int_equal(t.d.ops->dma_map(&t.d, (uint8_t *)p + 1, 0x10000, 0x1000), -EINVAL);
	assert_int_equal(t.d.ops->dma_map(&t.d, p, 0xfee00000ull, 0x1000), -EINVAL);
	assert_int_equal(t.d.ops->dma_map(&t.d, p, 1ull << 39, 0x1000), -EINVAL);
	assert_int_equal(t.d.ops->dma_map(&t.d, p, 0x10000, 0x2000), 0);
	assert_int_equal(t.d.ops->dma_map(&t.d, p, 0x11000, 0x1000), -EEXIST);
	assert_int_equal(t.d.ops->dma_unmap(&t.d, 0x10000, 0x2000), 0);
	assert_int_equal(t.d.ops->dma_map(&t.d, p, 0x11000, 0x1000), 0);
	close_model(&t);
	munmap(p, 0x3000);
}

/*
 * dma_pages (the vfio-user proxy's IOMMU): a guest map arrives page by
 * page, so adjacent pages must merge (else the table fills after
 * VVM_MAX_DMA_MAPS pages) and an unmap must cut a hole that can be mapped
 * again; without dma_pages the same sequence hits the table's limit.
 */
static void map_pages(struct vvm *m, uint8_t *base, unsigned int n, int want_last)
{
	for (unsigned int i = 0; i + 1 < n; i++)
		assert_int_equal(vvm_dma_map(m, base + i * 0x1000ull, 0x100000000ull + i * 0x1000ull, 0x1000), 0);
	assert_int_equal(vvm_dma_map(m, base + (n - 1) * 0x1000ull, 0x100000000ull + (n - 1) * 0x1000ull,
				     0x1000), want_last);
}

static void test_dma_pages(void **state)
{
	const unsigned int n = VVM_MAX_DMA_MAPS + 8;
	uint8_t *p = mmap(NULL, n * 0x1000ull, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct vvm_config c = { .dma_pages = true };
	struct vvm *m;

	(void)state;
	assert_true(p != MAP_FAILED);
	assert_int_equal(vvm_new(&m, &c), 0);
	map_pages(m, p, n, 0);
	/* a hole in the middle, an overlap refused, the hole mapped again */
	assert_int_equal(vvm_dma_unmap(m, 0x100000000ull + 0x5000, 0x2000), 0);
	assert_int_equal(vvm_dma_map(m, p + 0x4000, 0x100000000ull + 0x4000, 0x2000), -EEXIST);
	assert_int_equal(vvm_dma_map(m, p + 0x5000, 0x100000000ull + 0x5000, 0x2000), 0);
	/* an address that does not continue the run is a new entry, not an extension */
	assert_int_equal(vvm_dma_unmap(m, 0x100000000ull, n * 0x1000ull), 0);
	assert_int_equal(vvm_dma_map(m, p + 0x2000, 0x100000000ull, 0x1000), 0);
	assert_int_equal(vvm_dma_map(m, p, 0x100000000ull + 0x1000, 0x1000), 0);
	assert_int_equal(vvm_arm_fault(m, VVM_FAULT_QSIZE0, 0), -EINVAL);
	assert_int_equal(vvm_arm_fault(m, VVM_FAULT_OVERSIZE, 3), 0);
	vvm_free(m);

	c.dma_pages = false;
	assert_int_equal(vvm_new(&m, &c), 0);
	map_pages(m, p, VVM_MAX_DMA_MAPS + 1, -ENOSPC);
	vvm_free(m);
	munmap(p, n * 0x1000ull);
}

static void test_queues(void **state)
{
	struct drv t;
	struct vvm_config c = { 0 };
	struct vvm_stats st;
	uint32_t id, len;
	uint8_t msg[64] = { 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };

	(void)state;
	open_model(&t, &c);
	/* before DRIVER_OK nothing moves */
	assert_int_equal(vvm_rx_deliver(t.m, msg, 12), -ENODEV);
	bring_up(&t);
	fired(t.vec[0], 0);
	assert_int_equal(vvm_rx_deliver(t.m, msg, 12), 0);
	assert_true(fired(t.vec[0], 100));
	assert_int_equal(used(&t, 0, &id, &len), 1);
	assert_int_equal(id, 0);
	assert_int_equal(len, 12);
	assert_memory_equal(t.q[0].mem + 0x4000, msg, 12);
	/* txq: a driver buffer comes out whole */
	memcpy(t.q[1].mem + 0x4000 + 3 * BUFSZ, "hello, front end", 16);
	post(&t, 1, 3, 16);
	assert_int_equal(vvm_tx_take(t.m, msg, sizeof(msg)), 16);
	assert_memory_equal(msg, "hello, front end", 16);
	assert_true(fired(t.vec[1], 100));
	assert_int_equal(used(&t, 1, &id, &len), 1);
	assert_int_equal(id, 3);
	assert_int_equal(vvm_tx_take(t.m, msg, sizeof(msg)), 0);
	/* a descriptor at an unmapped IOVA: a DMA fault, and the device wants a reset */
	{
		uint64_t bad = 0x7000000000ull;

		memcpy(t.q[1].mem + 16 * 4, &bad, 8);
		post(&t, 1, 4, 16);
		assert_int_equal(vvm_tx_take(t.m, msg, sizeof(msg)), -EIO);
		vvm_stats(t.m, &st);
		assert_int_equal(st.dma_faults, 1);
		assert_true(r(&t, VVM_COMMON_OFF + 0x14, 1) & VVM_S_NEEDS_RESET);
		assert_false(vvm_driver_up(t.m));
	}
	close_model(&t);
}

static void test_faults_in_used_ring(void **state)
{
	struct drv t;
	struct vvm_config c = { .fault = VVM_FAULT_USED_ID, .fault_at = 1 };
	uint32_t id, len;
	uint8_t msg[12] = { 1 };

	(void)state;
	open_model(&t, &c);
	bring_up(&t);
	assert_int_equal(vvm_rx_deliver(t.m, msg, 12), 0);
	assert_int_equal(used(&t, 0, &id, &len), 1);
	assert_int_equal(id, 0);
	assert_int_equal(vvm_rx_deliver(t.m, msg, 12), 0);
	assert_int_equal(used(&t, 0, &id, &len), 1);
	assert_true(id >= QSIZE);
	close_model(&t);
}

/* ---- the bridge ---- */

/* Pump rx into our driver: the next rxq message into @out. Return: its length, or -1. */
static int driver_recv(struct drv *t, uint8_t *out, size_t cap)
{
	uint32_t id, len;

	for (int i = 0; i < 200; i++) {
		if (used(t, 0, &id, &len) == 1) {
			assert_true(id < QSIZE && len <= BUFSZ && len <= cap);
			memcpy(out, t->q[0].mem + 0x4000 + id * BUFSZ, len);
			post(t, 0, (uint16_t)id, BUFSZ);
			return (int)len;
		}
		fired(t->vec[0], 10);
	}
	return -1;
}

static void driver_reply(struct drv *t, uint32_t req, const void *payload, uint32_t size)
{
	static uint16_t next;
	uint16_t id = next++ % QSIZE;
	uint8_t *b = t->q[1].mem + 0x4000 + id * BUFSZ;
	uint32_t flags = 5;
	uint32_t u, l;

	memcpy(b, &req, 4);
	memcpy(b + 4, &flags, 4);
	memcpy(b + 8, &size, 4);
	memcpy(b + 12, payload, size);
	post(t, 1, id, 12 + size);
	for (int i = 0; i < 200 && used(t, 1, &u, &l) == 0; i++)
		fired(t->vec[1], 10);
}

static void test_bridge(void **state)
{
	char dir[] = "/tmp/vvm-XXXXXX", path[64];
	struct drv t;
	struct vvm_config c = { .shm_size = 64ull << 20 };
	struct vvb *b;
	struct tfe_fe fe;
	struct tfe_mem mem;
	uint8_t msg[VVM_MAX_MSG], *shm;
	uint64_t shm_size, feat = 0, ring = 1;
	struct vvm_stats st;
	int n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/fe.sock", dir);
	open_model(&t, &c);
	assert_int_equal(vvb_start(&b, t.m, path, NULL), 0);
	bring_up(&t);
	tfe_fe_init(&fe, -1);
	assert_int_equal(tfe_fe_connect(&fe, path, 2000), 0);
	/* a request and its reply */
	assert_int_equal(tfe_fe_send(&fe, VU_REQ_GET_FEATURES, 1, NULL, 0, NULL, 0), 0);
	n = driver_recv(&t, msg, sizeof(msg));
	assert_int_equal(n, 12);
	assert_int_equal(msg[0], VU_REQ_GET_FEATURES);
	feat = 0x140000000ull;
	driver_reply(&t, VU_REQ_GET_FEATURES, &feat, 8);
	feat = 0;
	assert_int_equal(tfe_fe_reply(&fe, VU_REQ_GET_FEATURES, &feat, 8), 0);
	assert_int_equal(feat, 0x140000000ull);
	/* the memory table: fds stripped, memory at cumulative offsets in BAR 4 */
	assert_int_equal(tfe_mem_init(&mem, 4u << 20, true), 0);
	memset(mem.base, 0x5a, mem.size);
	mem.base[0xc0000] = 0x77;
	fe.need_reply = TFE_NR_NONE;
	assert_int_equal(tfe_fe_set_mem_table(&fe, &mem), 0);
	n = driver_recv(&t, msg, sizeof(msg));
	assert_int_equal(n, 12 + 8 + 2 * 32);
	vvm_shm_base(t.m, &shm, &shm_size);
	assert_int_equal(shm[0], 0x5a);
	assert_int_equal(shm[0xa0000], 0x77); /* region 1 right after region 0's 0xa0000 bytes */
	/* kick 1 -> MSI-X vector 3; doorbell 1 -> call 1 */
	assert_int_equal(tfe_fe_eventfds(&fe, 2), 0);
	assert_int_equal(tfe_fe_set_vring_fd(&fe, VU_REQ_SET_VRING_KICK, 1, fe.kick[1]), 0);
	assert_int_equal(driver_recv(&t, msg, sizeof(msg)), 20);
	assert_int_equal(tfe_fe_set_vring_fd(&fe, VU_REQ_SET_VRING_CALL, 1, fe.call[1]), 0);
	assert_int_equal(driver_recv(&t, msg, sizeof(msg)), 20);
	assert_int_equal(write(fe.kick[1], &ring, 8), 8);
	assert_true(fired(t.vec[3], 1000));
	w(&t, VVM_DOORBELL_OFF + 1 * VVM_DOORBELL_MULT, 1, 1);
	assert_true(fired(fe.call[1], 1000));
	w(&t, VVM_DOORBELL_OFF + 9 * VVM_DOORBELL_MULT, 1, 1);
	/* a back-end request before SET_BACKEND_REQ_FD is dropped */
	{
		uint32_t hdr[3] = { 1, 1, 0 };
		uint16_t id = 15;

		memcpy(t.q[1].mem + 0x4000 + id * BUFSZ, hdr, 12);
		post(&t, 1, id, 12);
	}
	/* the bridge drains txq on its own thread: let it judge that message first */
	assert_true(backend_drop_seen(t.m, 2000));
	/* the front end goes: a zero-length completion */
	tfe_fe_close(&fe);
	assert_int_equal(driver_recv(&t, msg, sizeof(msg)), 0);
	vvm_stats(t.m, &st);
	assert_int_equal(st.rx_disconnects, 1);
	assert_int_equal(st.backend_dropped, 1);
	assert_int_equal(st.doorbells, 1);
	assert_int_equal(st.doorbells_lost, 1);
	assert_int_equal(st.notifications, 1);
	/* reset and up again: the memory leaves BAR 4, a second front end is served */
	bring_up(&t);
	tfe_fe_init(&fe, -1);
	assert_int_equal(tfe_fe_connect(&fe, path, 2000), 0);
	assert_int_equal(tfe_fe_send(&fe, VU_REQ_GET_QUEUE_NUM, 1, NULL, 0, NULL, 0), 0);
	assert_int_equal(driver_recv(&t, msg, sizeof(msg)), 12);
	assert_int_equal(msg[0], VU_REQ_GET_QUEUE_NUM);
	assert_int_equal(vvb_sessions(b), 2);
	tfe_fe_close(&fe);
	tfe_mem_fini(&mem);
	vvb_stop(b);
	close_model(&t);
	assert_int_equal(access(path, F_OK), -1);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_space),
		cmocka_unit_test(test_common_config),
		cmocka_unit_test(test_iommu_rules),
		cmocka_unit_test(test_dma_pages),
		cmocka_unit_test(test_queues),
		cmocka_unit_test(test_faults_in_used_ring),
		cmocka_unit_test(test_bridge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
