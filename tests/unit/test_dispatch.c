// SPDX-License-Identifier: MIT
/*
 * The vhost-user dispatcher against a fake device that records every hook
 * call: QEMU's and crosvm's real message sequences, REPLY_ACK on every
 * request type, and the hostile cases of PROTOCOLS.md §6.2 (ring indices,
 * KICK bit 8, sizes, bases, ring addresses, GET_CONFIG ranges, unknown
 * requests, SET_OWNER twice, resets while running). Guest memory is a
 * memfd; every test ends with none of the fds it handed over still open
 * and no mapping of the memfd left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost_user/dispatch.h"
#include "vhost_user/msg.h"

#define MEMFD_NAME "vu-dispatch-test"
#define MEM_SIZE 0x100000ull
/* Front-end virtual address of the first region (any value will do). */
#define UVA 0x7f1200000000ull
#define F_PROTO (1ull << 30)
#define F_EVENT_IDX (1ull << 29)
#define F_VERSION_1 (1ull << 32)
#define PF(b) (1ull << VU_PROTOCOL_F_##b)
#define OFFERED_PF (PF(MQ) | PF(REPLY_ACK) | PF(CONFIG))
#define NR VU_FLAG_VERSION /* flags of a request without NEED_REPLY */
#define NEED (VU_FLAG_VERSION | VU_FLAG_NEED_REPLY)

/* What the fake device saw. */
struct fake {
	uint64_t offered;
	int fail_owner, fail_features, fail_mem, fail_changed, fail_stop;
	unsigned int n_owner, n_features, n_mem, n_changed, n_stop, n_reset, n_config;
	uint64_t acked;
	unsigned int changed_mask;
	unsigned int mem_nregions;
	uint32_t stop_base;
	uint8_t config[8];
};

struct ctx {
	struct vu_dev dev;
	struct vu_dev_ops ops;
	struct fake fake;
	struct vu_msg reply;
	bool has_reply;
	int memfd;
};

static struct fake *fake_of(struct vu_dev *dev)
{
	return dev->priv;
}

static uint64_t fake_get_features(struct vu_dev *dev)
{
	return fake_of(dev)->offered;
}

static int fake_set_owner(struct vu_dev *dev)
{
	fake_of(dev)->n_owner++;
	return fake_of(dev)->fail_owner;
}

static int fake_set_features(struct vu_dev *dev, uint64_t features)
{
	struct fake *f = fake_of(dev);

	f->n_features++;
	if (f->fail_features)
		return f->fail_features;
	f->acked = features;
	return 0;
}

static int fake_set_mem_table(struct vu_dev *dev, const struct gmem *new_mem)
{
	struct fake *f = fake_of(dev);

	f->n_mem++;
	if (f->fail_mem)
		return f->fail_mem;
	f->mem_nregions = new_mem->nregions;
	return 0;
}

static int fake_vring_changed(struct vu_dev *dev, unsigned int index)
{
	struct fake *f = fake_of(dev);

	f->n_changed++;
	f->changed_mask |= 1u << index;
	return f->fail_changed;
}

static int fake_vring_stop(struct vu_dev *dev, unsigned int index, uint32_t *base)
{
	struct fake *f = fake_of(dev);

	(void)index;
	f->n_stop++;
	if (f->fail_stop)
		return f->fail_stop;
	*base = f->stop_base;
	return 0;
}

/* vsock config space: le64 guest_cid, 8 bytes */
static int fake_get_config(struct vu_dev *dev, uint32_t offset, uint32_t size, uint8_t *out)
{
	struct fake *f = fake_of(dev);

	f->n_config++;
	if (offset > sizeof(f->config) || size > sizeof(f->config) - offset)
		return -EINVAL;
	memcpy(out, f->config + offset, size);
	return 0;
}

static void fake_reset(struct vu_dev *dev)
{
	fake_of(dev)->n_reset++;
}

static const struct vu_dev_ops fake_ops = {
	.nqueues = 3,
	.max_queue_size = 256,
	.protocol_features = OFFERED_PF,
	.get_features = fake_get_features,
	.set_owner = fake_set_owner,
	.set_features = fake_set_features,
	.set_mem_table = fake_set_mem_table,
	.vring_changed = fake_vring_changed,
	.vring_stop = fake_vring_stop,
	.get_config = fake_get_config,
	.reset = fake_reset,
};

/*
 * Every fd the tests hand to the dispatcher is recorded, so that a test can
 * ask how many of them are still open: at the end of each test, none.
 */
static int given[8192];
static unsigned int ngiven;

static int give(int fd)
{
	assert_true(fd >= 0);
	assert_true(ngiven < sizeof(given) / sizeof(given[0]));
	given[ngiven++] = fd;
	return fd;
}

/* Distinct recorded fd numbers that are open now (numbers get reused). */
static unsigned int given_open(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < ngiven; i++) {
		bool seen = false;

		for (unsigned int j = 0; j < i && !seen; j++)
			seen = given[j] == given[i];
		n += !seen && fcntl(given[i], F_GETFD) >= 0;
	}
	return n;
}

static int count_memfd_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:" MEMFD_NAME) != NULL;
	fclose(f);
	return n;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	ngiven = 0;
	c->memfd = memfd_create(MEMFD_NAME, MFD_CLOEXEC);
	assert_true(c->memfd >= 0);
	assert_int_equal(ftruncate(c->memfd, (off_t)MEM_SIZE), 0);
	c->ops = fake_ops;
	c->fake.offered = F_VERSION_1 | F_EVENT_IDX | 1;
	c->fake.stop_base = 0x1234;
	for (unsigned int i = 0; i < 8; i++)
		c->fake.config[i] = (uint8_t)(i == 0 ? 3 : 0x10 + i);
	vu_dev_init(&c->dev, "test", -1, &c->ops, &c->fake);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	vu_dev_fini(&c->dev);
	close(c->memfd);
	assert_int_equal(count_memfd_maps(), 0);
	assert_int_equal(given_open(), 0);
	free(c);
	return 0;
}

/* --- building and sending requests --- */

static void msg_init(struct vu_msg *m, uint32_t request, uint32_t flags, uint32_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr = (struct vu_hdr){ request, flags, size };
	for (unsigned int i = 0; i < VU_MAX_FDS; i++)
		m->fds[i] = -1;
}

static int new_eventfd(void)
{
	return give(eventfd(0, EFD_CLOEXEC));
}

static int run(struct ctx *c, struct vu_msg *m)
{
	memset(&c->reply, 0xee, sizeof(c->reply));
	return vu_dev_handle(&c->dev, m, &c->reply, &c->has_reply);
}

static int req0(struct ctx *c, uint32_t request, uint32_t flags)
{
	struct vu_msg m;

	msg_init(&m, request, flags, 0);
	return run(c, &m);
}

static int req_u64(struct ctx *c, uint32_t request, uint32_t flags, uint64_t v)
{
	struct vu_msg m;

	msg_init(&m, request, flags, 8);
	m.payload.u64 = v;
	return run(c, &m);
}

/* KICK/CALL/ERR; @fd < 0: none attached. The dispatcher owns @fd afterwards. */
static int req_vring_fd(struct ctx *c, uint32_t request, uint32_t flags, uint64_t v, int fd)
{
	struct vu_msg m;

	msg_init(&m, request, flags, 8);
	m.payload.u64 = v;
	if (fd >= 0) {
		m.fds[0] = fd;
		m.nfds = 1;
	}
	return run(c, &m);
}

static int req_state(struct ctx *c, uint32_t request, uint32_t flags, uint32_t index, uint32_t num)
{
	struct vu_msg m;

	msg_init(&m, request, flags, 8);
	m.payload.state = (struct vu_vring_state){ index, num };
	return run(c, &m);
}

static int req_addr(struct ctx *c, uint32_t flags, uint32_t index, uint32_t aflags, uint64_t desc,
		    uint64_t avail, uint64_t used)
{
	struct vu_msg m;

	msg_init(&m, VU_REQ_SET_VRING_ADDR, flags, 40);
	m.payload.addr = (struct vu_vring_addr){ .index = index, .flags = aflags, .desc = desc,
						 .used = used, .avail = avail };
	return run(c, &m);
}

/* Regions as {gpa, size, uva, offset}; each gets its own dup of @fd. */
static int req_mem_fd(struct ctx *c, uint32_t flags, const struct vu_mem_region *r, unsigned int n,
		      int fd)
{
	struct vu_msg m;

	msg_init(&m, VU_REQ_SET_MEM_TABLE, flags, 8 + 32 * n);
	m.payload.mem.nregions = n;
	for (unsigned int i = 0; i < n; i++) {
		m.payload.mem.regions[i] = r[i];
		m.fds[i] = give(dup(fd));
	}
	m.nfds = n;
	return run(c, &m);
}

static int req_mem(struct ctx *c, uint32_t flags, const struct vu_mem_region *r, unsigned int n)
{
	return req_mem_fd(c, flags, r, n, c->memfd);
}

static int req_config(struct ctx *c, uint32_t request, uint32_t flags, uint32_t offset,
		      uint32_t size)
{
	struct vu_msg m;

	msg_init(&m, request, flags, VU_CONFIG_HDR_SIZE + size);
	m.payload.config.offset = offset;
	m.payload.config.size = size;
	return run(c, &m);
}

static void assert_ack(struct ctx *c, uint32_t request, uint64_t value)
{
	assert_true(c->has_reply);
	assert_int_equal(c->reply.hdr.request, request);
	assert_int_equal(c->reply.hdr.flags, VU_REPLY_FLAGS);
	assert_int_equal(c->reply.hdr.size, 8);
	assert_int_equal(c->reply.payload.u64, value);
	assert_int_equal(c->reply.nfds, 0);
}

/* request with NEED_REPLY under REPLY_ACK: 0 = accepted, 1 = refused */
#define ACK(c, call, request, value)                        \
	do {                                                \
		assert_int_equal((call), 0);                \
		assert_ack((c), (request), (value));        \
	} while (0)

/* Two regions adjacent in GPA and UVA, both in the memfd. */
static const struct vu_mem_region adjacent[2] = {
	{ .guest_phys_addr = 0, .memory_size = 0x10000, .userspace_addr = UVA, .mmap_offset = 0 },
	{ .guest_phys_addr = 0x10000, .memory_size = 0x10000, .userspace_addr = UVA + 0x10000,
	  .mmap_offset = 0x10000 },
};

/* Ring @i of @num entries laid out in region 0: desc, avail, used. */
static uint64_t ring_desc(unsigned int i)
{
	return UVA + 0x4000ull * i;
}

static uint64_t ring_avail(unsigned int i)
{
	return ring_desc(i) + 0x1000;
}

static uint64_t ring_used(unsigned int i)
{
	return ring_desc(i) + 0x1400;
}

/* Owner, VERSION_1 + bit 30, protocol features with REPLY_ACK, memory, ring 0 sized. */
static void bring_up(struct ctx *c)
{
	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1 | F_PROTO), 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, OFFERED_PF), 0);
	assert_int_equal(req_mem(c, NR, adjacent, 2), 0);
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 0, 256), 0);
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_BASE, NR, 0, 0), 0);
	assert_int_equal(req_addr(c, NR, 0, 0, ring_desc(0), ring_avail(0), ring_used(0)), 0);
	assert_true(c->dev.reply_ack);
	assert_false(c->has_reply);
}

/* --- real front-end sequences --- */

/* REAL-PEERS.md §5, steps 1-8: device realize. */
static void qemu_realize(struct ctx *c)
{
	assert_int_equal(req0(c, VU_REQ_GET_FEATURES, NR), 0);
	assert_true(c->has_reply);
	assert_int_equal(c->reply.hdr.flags, VU_REPLY_FLAGS);
	assert_int_equal(c->reply.hdr.size, 8);
	assert_int_equal(c->reply.payload.u64, 0x140000000ull);
	assert_int_equal(req0(c, VU_REQ_GET_PROTOCOL_FEATURES, NR), 0);
	/* the test device's MQ, REPLY_ACK and CONFIG, and the layer's own STATUS */
	assert_int_equal(c->reply.payload.u64, 0x10209);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, 0x209), 0);
	assert_false(c->has_reply);
	assert_int_equal(req0(c, VU_REQ_GET_QUEUE_NUM, NR), 0);
	assert_int_equal(c->reply.payload.u64, 3);
	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), 0);
	assert_int_equal(req0(c, VU_REQ_GET_FEATURES, NR), 0);
	for (unsigned int r = 0; r < 2; r++) {
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, r, new_eventfd()), 0);
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_ERR, NR, r, new_eventfd()), 0);
	}
	assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NR, 0, 8), 0);
	assert_true(c->has_reply);
	assert_int_equal(c->reply.hdr.request, VU_REQ_GET_CONFIG);
	assert_int_equal(c->reply.hdr.size, 20);
	assert_int_equal(c->reply.payload.config.size, 8);
	assert_memory_equal(c->reply.payload.config.payload, c->fake.config, 8);
}

/* Steps 9-15: the guest driver starts the device. */
static void qemu_start(struct ctx *c)
{
	const struct vu_mem_region qemu[2] = {
		{ .guest_phys_addr = 0, .memory_size = 0xa0000, .userspace_addr = UVA },
		{ .guest_phys_addr = 0xc0000, .memory_size = 0x40000,
		  .userspace_addr = UVA + 0xc0000, .mmap_offset = 0xc0000 },
	};

	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, 1, new_eventfd()), 0);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, 0, new_eventfd()), 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1 | F_PROTO), 0);
	assert_int_equal(c->fake.acked, F_VERSION_1);
	ACK(c, req_mem(c, 0x9, qemu, 2), VU_REQ_SET_MEM_TABLE, 0);
	assert_int_equal(c->fake.mem_nregions, 2);
	for (unsigned int r = 0; r < 2; r++) {
		uint64_t base = UVA + 0x10000 * (r + 1);

		assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, r, 128), 0);
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_BASE, NR, r, 0), 0);
		assert_int_equal(req_addr(c, NR, r, 0, base, base + 0x800, base + 0x940), 0);
		assert_false(vu_vring_ready(&c->dev.vrings[r]));
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, r, new_eventfd()), 0);
		assert_true(vu_vring_ready(&c->dev.vrings[r]));
		assert_false(c->dev.vrings[r].enabled);
	}
	for (unsigned int r = 0; r < 2; r++)
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_ENABLE, NR, r, 1), 0);
	for (unsigned int r = 0; r < 2; r++)
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, r, new_eventfd()), 0);
}

/* Steps 16-18: the guest driver resets; rings stop and report where. */
static void qemu_stop(struct ctx *c)
{
	for (unsigned int r = 0; r < 2; r++)
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_ENABLE, NR, r, 0), 0);
	for (unsigned int r = 0; r < 2; r++) {
		c->fake.stop_base = 3 + r;
		assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NR, r, 0), 0);
		assert_true(c->has_reply);
		assert_int_equal(c->reply.hdr.flags, VU_REPLY_FLAGS);
		assert_int_equal(c->reply.hdr.size, 8);
		assert_int_equal(c->reply.payload.state.index, r);
		assert_int_equal(c->reply.payload.state.num, 3 + r);
		assert_false(c->dev.vrings[r].started);
		assert_int_equal(c->dev.vrings[r].kick_fd, -1);
	}
	for (unsigned int r = 2; r-- > 0;)
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, r, new_eventfd()), 0);
}

/* QEMU 7.2 vhost-user-vsock-pci: two rings of 128, the event queue stays in QEMU. */
static void test_qemu_sequence(void **state)
{
	struct ctx *c = *state;

	c->fake.offered = F_VERSION_1;
	qemu_realize(c);
	qemu_start(c);
	assert_true(c->dev.vrings[0].enabled && c->dev.vrings[1].enabled);
	assert_true(c->dev.vrings[0].started && c->dev.vrings[1].started);
	assert_false(vu_vring_ready(&c->dev.vrings[2]));
	assert_int_equal(c->fake.changed_mask, 0x3);
	qemu_stop(c);
	assert_int_equal(c->fake.n_stop, 2);
	assert_int_equal(c->fake.n_reset, 0);
}

/* crosvm: 3 rings of 256, ENABLE(1) only when bit 30 is acked. */
static void crosvm_sequence(struct ctx *c, bool bit30)
{
	uint64_t acked = F_VERSION_1 | (bit30 ? F_PROTO : 0);

	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), 0);
	assert_int_equal(req0(c, VU_REQ_GET_FEATURES, NR), 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, acked), 0);
	assert_int_equal(req0(c, VU_REQ_GET_PROTOCOL_FEATURES, NR), 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(MQ) | PF(CONFIG)), 0);
	assert_false(c->dev.reply_ack);
	assert_int_equal(req0(c, VU_REQ_GET_QUEUE_NUM, NR), 0);
	assert_int_equal(c->reply.payload.u64, 3);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, acked), 0);
	assert_int_equal(req_mem(c, NR, adjacent, 2), 0);
	for (unsigned int r = 0; r < 3; r++) {
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, r, 256), 0);
		assert_int_equal(req_addr(c, NR, r, 0, ring_desc(r), ring_avail(r), ring_used(r)), 0);
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_BASE, NR, r, 0), 0);
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, r, new_eventfd()), 0);
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, r, new_eventfd()), 0);
		assert_true(vu_vring_ready(&c->dev.vrings[r]));
		if (bit30)
			assert_int_equal(req_state(c, VU_REQ_SET_VRING_ENABLE, NR, r, 1), 0);
		assert_true(c->dev.vrings[r].enabled);
	}
	assert_int_equal(c->fake.changed_mask, 0x7);
	assert_int_equal(c->fake.acked, F_VERSION_1);
}

static void test_crosvm_sequence_bit30(void **state)
{
	struct ctx *c = *state;

	crosvm_sequence(c, true);
	for (unsigned int r = 0; r < 3; r++)
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_ENABLE, NR, r, 0), 0);
	assert_false(c->dev.vrings[2].enabled);
}

static void test_crosvm_sequence_no_bit30(void **state)
{
	struct ctx *c = *state;

	crosvm_sequence(c, false);
	/* SET_VRING_ENABLE is only valid with bit 30; unreportable → session ends */
	assert_true(req_state(c, VU_REQ_SET_VRING_ENABLE, NR, 0, 0) < 0);
	assert_false(c->has_reply);
	assert_true(c->dev.vrings[0].enabled);
}

/* Without bit 30 every ring is enabled at SET_FEATURES; configured ones are told. */
static void test_features_without_bit30_enable_rings(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 0, 64), 0);
	c->fake.changed_mask = 0;
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1), 0);
	for (unsigned int r = 0; r < 3; r++)
		assert_true(c->dev.vrings[r].enabled);
	assert_int_equal(c->fake.changed_mask, 0x1);
	/* with bit 30, rings start disabled */
	vu_dev_fini(&c->dev);
	vu_dev_init(&c->dev, "test", -1, &c->ops, &c->fake);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1 | F_PROTO), 0);
	assert_false(c->dev.vrings[0].enabled);
}

/* --- features --- */

static void test_set_features(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	ACK(c, req_u64(c, VU_REQ_SET_FEATURES, NEED, 1ull << 5), VU_REQ_SET_FEATURES, 1);
	ACK(c, req_u64(c, VU_REQ_SET_FEATURES, NEED, F_VERSION_1 | (1ull << 33)), VU_REQ_SET_FEATURES, 1);
	assert_int_equal(c->dev.features, F_VERSION_1 | F_PROTO);
	ACK(c, req_u64(c, VU_REQ_SET_FEATURES, NEED, F_VERSION_1 | F_EVENT_IDX | F_PROTO),
	    VU_REQ_SET_FEATURES, 0);
	assert_int_equal(c->fake.acked, F_VERSION_1 | F_EVENT_IDX);
	assert_int_equal(c->dev.features, F_VERSION_1 | F_EVENT_IDX | F_PROTO);
	/* a device that refuses keeps the old features */
	c->fake.fail_features = -EBUSY;
	ACK(c, req_u64(c, VU_REQ_SET_FEATURES, NEED, F_VERSION_1 | F_PROTO), VU_REQ_SET_FEATURES, 1);
	assert_int_equal(c->dev.features, F_VERSION_1 | F_EVENT_IDX | F_PROTO);
}

static void test_protocol_features(void **state)
{
	struct ctx *c = *state;

	/* NEED_REPLY before REPLY_ACK is negotiated: no reply */
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NEED, PF(MQ)), 0);
	assert_false(c->has_reply);
	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NEED), 0);
	assert_false(c->has_reply);
	assert_true(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(BACKEND_REQ)) < 0);
	assert_true(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, 1ull << 63) < 0);
	assert_false(c->dev.reply_ack);
	ACK(c, req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NEED, PF(REPLY_ACK)),
	    VU_REQ_SET_PROTOCOL_FEATURES, 0);
	assert_true(c->dev.reply_ack);
	ACK(c, req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NEED, PF(LOG_SHMFD)),
	    VU_REQ_SET_PROTOCOL_FEATURES, 1);
	assert_int_equal(c->dev.protocol_features, PF(REPLY_ACK));
	/* turning REPLY_ACK off: no more acks */
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(MQ)), 0);
	assert_true(req0(c, VU_REQ_SET_OWNER, NEED) < 0);
	assert_false(c->has_reply);
}

static void test_inband_needs_backend_req(void **state)
{
	struct ctx *c = *state;

	c->ops.protocol_features = OFFERED_PF | PF(INBAND_NOTIFICATIONS) | PF(BACKEND_REQ);
	assert_true(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR,
			    PF(INBAND_NOTIFICATIONS) | PF(REPLY_ACK)) < 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR,
				 PF(INBAND_NOTIFICATIONS) | PF(REPLY_ACK) | PF(BACKEND_REQ)), 0);
}

static void test_get_queue_num_needs_mq(void **state)
{
	struct ctx *c = *state;

	c->ops.protocol_features = PF(REPLY_ACK) | PF(CONFIG);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(REPLY_ACK)), 0);
	assert_true(req0(c, VU_REQ_GET_QUEUE_NUM, NEED) < 0);
	assert_false(c->has_reply);
}

/* --- REPLY_ACK on every request --- */

enum outcome { ACK0, ACK1, OWN, END };

struct every {
	uint32_t request, size;
	unsigned int nfds;
	enum outcome want;
};

static const struct every every[] = {
	{ VU_REQ_GET_FEATURES, 0, 0, OWN },       { VU_REQ_SET_FEATURES, 8, 0, ACK0 },
	{ VU_REQ_SET_OWNER, 0, 0, ACK1 },         { VU_REQ_RESET_OWNER, 0, 0, ACK0 },
	{ VU_REQ_SET_MEM_TABLE, 40, 1, ACK0 },    { VU_REQ_SET_LOG_BASE, 16, 0, ACK1 },
	{ VU_REQ_SET_LOG_FD, 0, 1, ACK1 },        { VU_REQ_SET_VRING_NUM, 8, 0, ACK0 },
	{ VU_REQ_SET_VRING_ADDR, 40, 0, ACK0 },   { VU_REQ_SET_VRING_BASE, 8, 0, ACK0 },
	{ VU_REQ_GET_VRING_BASE, 8, 0, OWN },     { VU_REQ_SET_VRING_KICK, 8, 1, ACK0 },
	{ VU_REQ_SET_VRING_CALL, 8, 1, ACK0 },    { VU_REQ_SET_VRING_ERR, 8, 1, ACK0 },
	{ VU_REQ_GET_PROTOCOL_FEATURES, 0, 0, OWN }, { VU_REQ_SET_PROTOCOL_FEATURES, 8, 0, ACK0 },
	{ VU_REQ_GET_QUEUE_NUM, 0, 0, OWN },      { VU_REQ_SET_VRING_ENABLE, 8, 0, ACK0 },
	{ VU_REQ_SEND_RARP, 8, 0, ACK1 },         { VU_REQ_NET_SET_MTU, 8, 0, ACK1 },
	{ VU_REQ_SET_BACKEND_REQ_FD, 0, 1, ACK1 }, { VU_REQ_IOTLB_MSG, 32, 0, END },
	{ VU_REQ_SET_VRING_ENDIAN, 8, 0, ACK1 },  { VU_REQ_GET_CONFIG, 20, 0, OWN },
	{ VU_REQ_SET_CONFIG, 20, 0, ACK1 },       { VU_REQ_CREATE_CRYPTO_SESSION, 0, 0, END },
	{ VU_REQ_CLOSE_CRYPTO_SESSION, 8, 0, ACK1 }, { VU_REQ_POSTCOPY_ADVISE, 0, 0, END },
	{ VU_REQ_POSTCOPY_LISTEN, 0, 0, ACK1 },   { VU_REQ_POSTCOPY_END, 0, 0, END },
	{ VU_REQ_GET_INFLIGHT_FD, 24, 0, END },   { VU_REQ_SET_INFLIGHT_FD, 24, 1, ACK1 },
	{ VU_REQ_GPU_SET_SOCKET, 0, 1, ACK1 },    { VU_REQ_RESET_DEVICE, 0, 0, ACK0 },
	{ VU_REQ_VRING_KICK, 8, 0, ACK1 },        { VU_REQ_GET_MAX_MEM_SLOTS, 0, 0, END },
	{ VU_REQ_ADD_MEM_REG, 40, 1, ACK1 },      { VU_REQ_REM_MEM_REG, 40, 1, ACK1 },
	{ VU_REQ_SET_STATUS, 8, 0, ACK1 },        { VU_REQ_GET_STATUS, 0, 0, END },
	{ VU_REQ_GET_SHARED_OBJECT, 16, 0, END }, { VU_REQ_SET_DEVICE_STATE_FD, 8, 1, END },
	{ VU_REQ_CHECK_DEVICE_STATE, 0, 0, END }, { VU_REQ_GET_SHMEM_CONFIG, 0, 0, END },
};

/* A well-formed instance of @e, valid in the state bring_up() leaves. */
static void build_every(struct ctx *c, const struct every *e, uint32_t flags, struct vu_msg *m)
{
	msg_init(m, e->request, flags, e->size);
	switch (e->request) {
	case VU_REQ_SET_FEATURES:
		m->payload.u64 = F_VERSION_1 | F_PROTO;
		break;
	case VU_REQ_SET_PROTOCOL_FEATURES:
		m->payload.u64 = OFFERED_PF;
		break;
	case VU_REQ_SET_MEM_TABLE:
		m->payload.mem.nregions = 1;
		m->payload.mem.regions[0] = adjacent[0];
		break;
	case VU_REQ_SET_VRING_NUM:
		m->payload.state.num = 256;
		break;
	case VU_REQ_SET_VRING_ADDR:
		m->payload.addr = (struct vu_vring_addr){ .desc = ring_desc(0),
							  .avail = ring_avail(0),
							  .used = ring_used(0) };
		break;
	case VU_REQ_SET_VRING_ENABLE:
		m->payload.state.num = 1;
		break;
	case VU_REQ_GET_CONFIG:
	case VU_REQ_SET_CONFIG:
		m->payload.config.size = 8;
		break;
	}
	for (unsigned int i = 0; i < e->nfds; i++)
		m->fds[i] = e->request == VU_REQ_SET_MEM_TABLE ? give(dup(c->memfd)) : new_eventfd();
	m->nfds = e->nfds;
}

static void check_every(struct ctx *c, const struct every *e, bool ack)
{
	struct vu_msg m;
	int rc;

	vu_dev_fini(&c->dev);
	vu_dev_init(&c->dev, "test", -1, &c->ops, &c->fake);
	bring_up(c);
	if (!ack)
		assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(MQ) | PF(CONFIG)), 0);
	build_every(c, e, NEED, &m);
	rc = run(c, &m);
	/* the ack follows the state after the request: this one turns REPLY_ACK on */
	if (e->request == VU_REQ_SET_PROTOCOL_FEATURES)
		ack = true;
	if (e->want == END || (!ack && e->want == ACK1)) {
		assert_true(rc < 0);
		assert_false(c->has_reply);
	} else if (e->want == OWN) {
		assert_int_equal(rc, 0);
		assert_true(c->has_reply);
		assert_int_equal(c->reply.hdr.request, e->request);
		assert_int_equal(c->reply.hdr.flags, VU_REPLY_FLAGS);
		assert_int_equal(c->reply.hdr.size, e->request == VU_REQ_GET_CONFIG ? 20 : 8);
	} else if (ack) {
		ACK(c, rc, e->request, e->want == ACK1 ? 1 : 0);
	} else {
		assert_int_equal(rc, 0);
		assert_false(c->has_reply);
	}
}

static void test_reply_ack_every_request(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(sizeof(every) / sizeof(every[0]), VU_REQ_MAX - 1);
	for (unsigned int i = 0; i < sizeof(every) / sizeof(every[0]); i++) {
		assert_int_equal(every[i].request, i + 1);
		check_every(c, &every[i], true);
		check_every(c, &every[i], false);
	}
}

/* --- hostile ring messages --- */

static void test_bad_ring_indices(void **state)
{
	static const uint32_t bad[] = { 3, 7, 8, 255, 256, 0xffffffffu };
	struct ctx *c = *state;

	bring_up(c);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t x = bad[i];

		ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, x, 64), VU_REQ_SET_VRING_NUM, 1);
		ACK(c, req_state(c, VU_REQ_SET_VRING_BASE, NEED, x, 0), VU_REQ_SET_VRING_BASE, 1);
		ACK(c, req_state(c, VU_REQ_SET_VRING_ENABLE, NEED, x, 1), VU_REQ_SET_VRING_ENABLE, 1);
		ACK(c, req_addr(c, NEED, x, 0, ring_desc(0), ring_avail(0), ring_used(0)),
		    VU_REQ_SET_VRING_ADDR, 1);
		/* owes a reply it cannot give */
		assert_true(req_state(c, VU_REQ_GET_VRING_BASE, NEED, x, 0) < 0);
		assert_false(c->has_reply);
	}
	/* KICK/CALL/ERR: index in bits 0-7, bits 9-63 reserved */
	static const uint64_t badv[] = { 3, 0xff, 0x200, 0x203, 1ull << 32, 1ull << 63 };

	for (unsigned int i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
		ACK(c, req_vring_fd(c, VU_REQ_SET_VRING_KICK, NEED, badv[i], new_eventfd()),
		    VU_REQ_SET_VRING_KICK, 1);
		ACK(c, req_vring_fd(c, VU_REQ_SET_VRING_CALL, NEED, badv[i], new_eventfd()),
		    VU_REQ_SET_VRING_CALL, 1);
		ACK(c, req_vring_fd(c, VU_REQ_SET_VRING_ERR, NEED, badv[i], new_eventfd()),
		    VU_REQ_SET_VRING_ERR, 1);
	}
	assert_false(c->dev.vrings[0].kick_set);
	assert_int_equal(c->dev.vrings[0].call_fd, -1);
}

static void test_kick_bit8_mismatch(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	/* bit 8 set with an fd, and clear without one: malformed, session ends */
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NEED, 0x100, new_eventfd()), -EPROTO);
	assert_false(c->has_reply);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NEED, 0x101, new_eventfd()), -EPROTO);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NEED, 0, -1), -EPROTO);
	assert_false(c->dev.vrings[0].kick_set);
	/* bit 8 set, no fd: polling mode, the ring starts without an fd */
	ACK(c, req_vring_fd(c, VU_REQ_SET_VRING_KICK, NEED, 0x100, -1), VU_REQ_SET_VRING_KICK, 0);
	assert_true(c->dev.vrings[0].kick_set);
	assert_true(c->dev.vrings[0].started);
	assert_int_equal(c->dev.vrings[0].kick_fd, -1);
	ACK(c, req_vring_fd(c, VU_REQ_SET_VRING_CALL, NEED, 0x102, -1), VU_REQ_SET_VRING_CALL, 0);
	assert_int_equal(c->dev.vrings[2].call_fd, -1);
}

static void test_vring_num(void **state)
{
	static const uint32_t bad[] = { 0, 3, 100, 255, 257, 512, 32768, 0x80000000u, 0xffffffffu };
	struct ctx *c = *state;

	bring_up(c);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 1, bad[i]), VU_REQ_SET_VRING_NUM, 1);
	assert_int_equal(c->dev.vrings[1].num, 0);
	ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 1, 1), VU_REQ_SET_VRING_NUM, 0);
	ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 1, 256), VU_REQ_SET_VRING_NUM, 0);
	assert_int_equal(c->dev.vrings[1].num, 256);
	assert_true(c->fake.changed_mask & 0x2);
}

static void test_vring_base(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	ACK(c, req_state(c, VU_REQ_SET_VRING_BASE, NEED, 0, 0xffff), VU_REQ_SET_VRING_BASE, 0);
	assert_int_equal(c->dev.vrings[0].base, 0xffff);
	/* free-running: larger than the queue size (256) is fine */
	ACK(c, req_state(c, VU_REQ_SET_VRING_BASE, NEED, 0, 300), VU_REQ_SET_VRING_BASE, 0);
	assert_int_equal(c->dev.vrings[0].base, 300);
	ACK(c, req_state(c, VU_REQ_SET_VRING_BASE, NEED, 0, 0x10000), VU_REQ_SET_VRING_BASE, 1);
	ACK(c, req_state(c, VU_REQ_SET_VRING_BASE, NEED, 0, 0xffffffffu), VU_REQ_SET_VRING_BASE, 1);
	assert_int_equal(c->dev.vrings[0].base, 300);
}

static void assert_addr_refused(struct ctx *c, uint32_t aflags, uint64_t desc, uint64_t avail,
				uint64_t used)
{
	ACK(c, req_addr(c, NEED, 1, aflags, desc, avail, used), VU_REQ_SET_VRING_ADDR, 1);
	assert_false(c->dev.vrings[1].addr_set);
}

static void test_vring_addr(void **state)
{
	struct ctx *c = *state;
	const uint64_t d = ring_desc(1), a = ring_avail(1), u = ring_used(1);
	const uint64_t end = UVA + 0x20000;   /* end of region 1 */

	bring_up(c);
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 1, 256), 0);
	assert_addr_refused(c, 0, d + 8, a, u);          /* desc not 16-aligned */
	assert_addr_refused(c, 0, d, a + 1, u);          /* avail not 2-aligned */
	assert_addr_refused(c, 0, d, a, u + 2);          /* used not 4-aligned */
	assert_addr_refused(c, 0, 0, a, u);              /* outside every region */
	assert_addr_refused(c, 0, d, UVA - 0x1000, u);
	assert_addr_refused(c, 0, d, a, end);
	assert_addr_refused(c, 2, d, a, u);              /* undefined flag */
	assert_addr_refused(c, 0x80000000u, d, a, u);
	/* straddles the boundary between the two (adjacent) regions */
	assert_addr_refused(c, 0, UVA + 0x10000 - 0x800, a, u);
	/* runs past the end of the last region */
	assert_addr_refused(c, 0, end - 0x800, a, u);
	/* used ring sized as the avail ring would fit: must still be refused */
	assert_addr_refused(c, 0, d, a, end - (4 + 2 * 256));
	assert_addr_refused(c, 0, d, a, 0xfffffffffffffffcull);
	/* exact fits are fine, and LOG is a defined flag */
	ACK(c, req_addr(c, NEED, 1, 0, d, end - (4 + 2 * 256), end - 0x1000 - (4 + 8 * 256)),
	    VU_REQ_SET_VRING_ADDR, 0);
	ACK(c, req_addr(c, NEED, 1, VU_VRING_F_LOG, d, a, end - (4 + 8 * 256)),
	    VU_REQ_SET_VRING_ADDR, 0);
	assert_true(c->dev.vrings[1].addr_set);
	assert_int_equal(c->dev.vrings[1].addr.used, end - (4 + 8 * 256));
}

/* With EVENT_IDX acked, avail and used grow by 2 bytes each. */
static void test_vring_addr_event_idx(void **state)
{
	struct ctx *c = *state;
	const uint64_t end = UVA + 0x20000;

	bring_up(c);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1 | F_EVENT_IDX | F_PROTO), 0);
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 1, 256), 0);
	assert_addr_refused(c, 0, ring_desc(1), end - (4 + 2 * 256), ring_used(1));
	assert_addr_refused(c, 0, ring_desc(1), ring_avail(1), end - (4 + 8 * 256));
	ACK(c, req_addr(c, NEED, 1, 0, ring_desc(1), end - (6 + 2 * 256), ring_used(1)),
	    VU_REQ_SET_VRING_ADDR, 0);
	ACK(c, req_addr(c, NEED, 1, 0, ring_desc(1), ring_avail(1), end - (8 + 8 * 256)),
	    VU_REQ_SET_VRING_ADDR, 0);
}

/* Addresses before the size are stored, and the size is checked against them. */
static void test_vring_addr_before_num(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	ACK(c, req_addr(c, NEED, 1, 0, UVA + 0x1fff0, ring_avail(1), ring_used(1)),
	    VU_REQ_SET_VRING_ADDR, 0);
	assert_false(vu_vring_ready(&c->dev.vrings[1]));
	/* 16 descriptors at 0x1fff0 would leave memory; 1 fits */
	ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 1, 16), VU_REQ_SET_VRING_NUM, 1);
	assert_int_equal(c->dev.vrings[1].num, 0);
	ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 1, 1), VU_REQ_SET_VRING_NUM, 0);
	/* rings before any memory table cannot be placed */
	vu_dev_fini(&c->dev);
	vu_dev_init(&c->dev, "test", -1, &c->ops, &c->fake);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(REPLY_ACK)), 0);
	ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 0, 64), VU_REQ_SET_VRING_NUM, 0);
	ACK(c, req_addr(c, NEED, 0, 0, ring_desc(0), ring_avail(0), ring_used(0)),
	    VU_REQ_SET_VRING_ADDR, 1);
}

static void test_vring_enable(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(REPLY_ACK)), 0);
	/* before SET_FEATURES acked bit 30 */
	ACK(c, req_state(c, VU_REQ_SET_VRING_ENABLE, NEED, 0, 1), VU_REQ_SET_VRING_ENABLE, 1);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1 | F_PROTO), 0);
	ACK(c, req_state(c, VU_REQ_SET_VRING_ENABLE, NEED, 0, 2), VU_REQ_SET_VRING_ENABLE, 1);
	ACK(c, req_state(c, VU_REQ_SET_VRING_ENABLE, NEED, 0, 0xffffffffu),
	    VU_REQ_SET_VRING_ENABLE, 1);
	assert_false(c->dev.vrings[0].enabled);
	/* enable before ADDR/KICK is allowed: the ring is not ready yet */
	ACK(c, req_state(c, VU_REQ_SET_VRING_ENABLE, NEED, 0, 1), VU_REQ_SET_VRING_ENABLE, 0);
	assert_true(c->dev.vrings[0].enabled);
	assert_false(vu_vring_ready(&c->dev.vrings[0]));
	assert_true(c->fake.changed_mask & 1);
}

static void test_get_vring_base(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	/* never started */
	assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NR, 2, 0), 0);
	assert_int_equal(c->reply.payload.state.index, 2);
	assert_int_equal(c->reply.payload.state.num, 0x1234);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, 0, new_eventfd()), 0);
	assert_true(c->dev.vrings[0].started);
	/* a device that cannot stop ends the session: no reply can say so */
	c->fake.fail_stop = -EIO;
	assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NEED, 0, 0), -EIO);
	assert_false(c->has_reply);
	c->fake.fail_stop = 0;
	c->fake.stop_base = 77;
	assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NEED, 0, 0), 0);
	assert_int_equal(c->reply.hdr.size, 8);
	assert_int_equal(c->reply.payload.state.num, 77);
	assert_false(c->dev.vrings[0].started);
	assert_false(c->dev.vrings[0].kick_set);
	assert_int_equal(c->dev.vrings[0].kick_fd, -1);
	/* messages after the stop still work, and a new kick starts it again */
	ACK(c, req_state(c, VU_REQ_SET_VRING_BASE, NEED, 0, 77), VU_REQ_SET_VRING_BASE, 0);
	ACK(c, req_vring_fd(c, VU_REQ_SET_VRING_KICK, NEED, 0, new_eventfd()), VU_REQ_SET_VRING_KICK, 0);
	assert_true(vu_vring_ready(&c->dev.vrings[0]));
}

/* Repeated fd-carrying messages: the previous fd is closed each time. */
static void test_vring_fd_replacement(void **state)
{
	struct ctx *c = *state;
	bring_up(c);
	for (unsigned int i = 0; i < 3000; i++) {
		uint32_t req = VU_REQ_SET_VRING_KICK + i % 3;

		assert_int_equal(req_vring_fd(c, req, NR, i % 3, new_eventfd()), 0);
	}
	/* one fd per (ring, kind) is kept: kick, call, err on rings 0..2 */
	assert_int_equal(given_open(), 3);
	assert_true(c->dev.vrings[0].kick_fd >= 0);
	assert_true(c->dev.vrings[1].call_fd >= 0);
	assert_true(c->dev.vrings[2].err_fd >= 0);
}

/* --- memory table --- */

static void test_mem_table(void **state)
{
	struct ctx *c = *state;
	const struct vu_mem_region overlap[2] = { adjacent[0], adjacent[0] };
	const struct vu_mem_region past_end = { .memory_size = 0x2000, .userspace_addr = UVA,
						.mmap_offset = MEM_SIZE - 0x1000 };
	const struct vu_mem_region zero = { .memory_size = 0, .userspace_addr = UVA };
	int efd = new_eventfd();

	bring_up(c);
	assert_int_equal(c->fake.n_mem, 1);
	ACK(c, req_mem(c, NEED, overlap, 2), VU_REQ_SET_MEM_TABLE, 1);
	ACK(c, req_mem(c, NEED, &past_end, 1), VU_REQ_SET_MEM_TABLE, 1);
	ACK(c, req_mem(c, NEED, &zero, 1), VU_REQ_SET_MEM_TABLE, 1);
	ACK(c, req_mem_fd(c, NEED, adjacent, 1, efd), VU_REQ_SET_MEM_TABLE, 1);
	close(efd);
	assert_int_equal(c->fake.n_mem, 1);
	assert_int_equal(c->dev.mem.nregions, 2);
	/* the device refuses: the old table stays */
	c->fake.fail_mem = -ENOMEM;
	ACK(c, req_mem(c, NEED, adjacent, 1), VU_REQ_SET_MEM_TABLE, 1);
	assert_int_equal(c->dev.mem.nregions, 2);
	c->fake.fail_mem = 0;
	ACK(c, req_mem(c, NEED, adjacent, 1), VU_REQ_SET_MEM_TABLE, 0);
	assert_int_equal(c->dev.mem.nregions, 1);
	assert_int_equal(c->fake.mem_nregions, 1);
	assert_non_null(gmem_uva_ptr(&c->dev.mem, ring_used(0), 4));
	assert_null(gmem_uva_ptr(&c->dev.mem, UVA + 0x10000, 4));
	assert_int_equal(count_memfd_maps(), 1);
}

/* A running ring must stay inside a new table; a stopped one loses stale addresses. */
static void test_mem_table_rings(void **state)
{
	struct ctx *c = *state;
	const struct vu_mem_region high = adjacent[1];

	bring_up(c);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, 0, new_eventfd()), 0);
	ACK(c, req_mem(c, NEED, &high, 1), VU_REQ_SET_MEM_TABLE, 1);
	assert_int_equal(c->dev.mem.nregions, 2);
	assert_int_equal(c->fake.n_mem, 1);
	assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NR, 0, 0), 0);
	ACK(c, req_mem(c, NEED, &high, 1), VU_REQ_SET_MEM_TABLE, 0);
	assert_false(c->dev.vrings[0].addr_set);
	assert_false(vu_vring_ready(&c->dev.vrings[0]));
}

/* --- memory slots and status --- */

#define SLOT_PF (OFFERED_PF | PF(CONFIGURE_MEM_SLOTS) | PF(STATUS))

/* Owner, features and protocol features with memory slots and STATUS; no table. */
static void bring_up_slots(struct ctx *c)
{
	c->ops.protocol_features |= PF(CONFIGURE_MEM_SLOTS);
	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), 0);
	assert_int_equal(req_u64(c, VU_REQ_SET_FEATURES, NR, F_VERSION_1 | F_PROTO), 0);
	assert_int_equal(req0(c, VU_REQ_GET_PROTOCOL_FEATURES, NR), 0);
	assert_int_equal(c->reply.payload.u64, SLOT_PF);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, SLOT_PF), 0);
}

/* ADD_MEM_REG / REM_MEM_REG of one region; @fd < 0: none attached. */
static int req_region(struct ctx *c, uint32_t request, const struct vu_mem_region *r, int fd)
{
	struct vu_msg m;

	msg_init(&m, request, NEED, 40);
	m.payload.region.region = *r;
	if (fd >= 0) {
		m.fds[0] = give(dup(fd));
		m.nfds = 1;
	}
	return run(c, &m);
}

static void test_mem_slots(void **state)
{
	struct ctx *c = *state;

	bring_up_slots(c);
	assert_int_equal(req0(c, VU_REQ_GET_MAX_MEM_SLOTS, NR), 0);
	assert_int_equal(c->reply.payload.u64, GMEM_MAX_REGIONS);
	ACK(c, req_region(c, VU_REQ_ADD_MEM_REG, &adjacent[0], c->memfd), VU_REQ_ADD_MEM_REG, 0);
	/* the same range again overlaps; a region beyond the file end is refused */
	ACK(c, req_region(c, VU_REQ_ADD_MEM_REG, &adjacent[0], c->memfd), VU_REQ_ADD_MEM_REG, 1);
	ACK(c, req_region(c, VU_REQ_ADD_MEM_REG,
			  &(struct vu_mem_region){ .guest_phys_addr = 0x100000, .memory_size = 0x2000,
						   .userspace_addr = UVA + 0x100000,
						   .mmap_offset = MEM_SIZE - 0x1000 },
			  c->memfd),
	    VU_REQ_ADD_MEM_REG, 1);
	ACK(c, req_region(c, VU_REQ_ADD_MEM_REG, &adjacent[1], c->memfd), VU_REQ_ADD_MEM_REG, 0);
	assert_int_equal(c->dev.mem.nregions, 2);
	assert_int_equal(c->fake.mem_nregions, 2);
	assert_int_equal(count_memfd_maps(), 2);
	/* the device refuses: the new region is unmapped again, the table unchanged */
	c->fake.fail_mem = -ENOMEM;
	ACK(c, req_region(c, VU_REQ_ADD_MEM_REG,
			  &(struct vu_mem_region){ .guest_phys_addr = 0x20000, .memory_size = 0x1000,
						   .userspace_addr = UVA + 0x20000, .mmap_offset = 0x20000 },
			  c->memfd),
	    VU_REQ_ADD_MEM_REG, 1);
	c->fake.fail_mem = 0;
	assert_int_equal(c->dev.mem.nregions, 2);
	assert_int_equal(count_memfd_maps(), 2);
	/* a running ring in region 0 keeps it; region 1 goes, and its mapping with it */
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 0, 256), 0);
	assert_int_equal(req_addr(c, NR, 0, 0, ring_desc(0), ring_avail(0), ring_used(0)), 0);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, 0, new_eventfd()), 0);
	ACK(c, req_region(c, VU_REQ_REM_MEM_REG, &adjacent[0], -1), VU_REQ_REM_MEM_REG, 1);
	assert_int_equal(c->dev.mem.nregions, 2);
	ACK(c, req_region(c, VU_REQ_REM_MEM_REG, &adjacent[1], c->memfd), VU_REQ_REM_MEM_REG, 0);
	assert_int_equal(c->dev.mem.nregions, 1);
	assert_int_equal(c->fake.mem_nregions, 1);
	assert_int_equal(count_memfd_maps(), 1);
	assert_null(gmem_uva_ptr(&c->dev.mem, UVA + 0x10000, 4));
	assert_non_null(gmem_uva_ptr(&c->dev.mem, ring_used(0), 4));
	/* gone already; a size that does not match is another region */
	ACK(c, req_region(c, VU_REQ_REM_MEM_REG, &adjacent[1], -1), VU_REQ_REM_MEM_REG, 1);
	ACK(c, req_region(c, VU_REQ_REM_MEM_REG,
			  &(struct vu_mem_region){ .memory_size = 0x8000, .userspace_addr = UVA }, -1),
	    VU_REQ_REM_MEM_REG, 1);
	/* once stopped, region 0 may go too */
	assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NR, 0, 0), 0);
	ACK(c, req_region(c, VU_REQ_REM_MEM_REG, &adjacent[0], -1), VU_REQ_REM_MEM_REG, 0);
	assert_int_equal(c->dev.mem.nregions, 0);
	assert_int_equal(count_memfd_maps(), 0);
}

/* Every slot taken: the next region is refused, nothing leaks. */
static void test_mem_slots_full(void **state)
{
	struct ctx *c = *state;
	struct vu_mem_region r = { .memory_size = 0x1000, .userspace_addr = UVA };

	bring_up_slots(c);
	for (unsigned int i = 0; i <= GMEM_MAX_REGIONS; i++) {
		r.guest_phys_addr = 0x1000ull * i;
		r.userspace_addr = UVA + 0x1000ull * i;
		r.mmap_offset = 0x1000ull * i;
		ACK(c, req_region(c, VU_REQ_ADD_MEM_REG, &r, c->memfd), VU_REQ_ADD_MEM_REG,
		    i == GMEM_MAX_REGIONS);
	}
	assert_int_equal(c->dev.mem.nregions, GMEM_MAX_REGIONS);
	assert_int_equal(count_memfd_maps(), (int)GMEM_MAX_REGIONS);
	/* a SET_MEM_TABLE replaces all of them */
	ACK(c, req_mem(c, NEED, adjacent, 2), VU_REQ_SET_MEM_TABLE, 0);
	assert_int_equal(count_memfd_maps(), 2);
}

static void test_status(void **state)
{
	struct ctx *c = *state;

	bring_up_slots(c);
	assert_int_equal(req0(c, VU_REQ_GET_STATUS, NR), 0);
	assert_int_equal(c->reply.payload.u64, 0);
	ACK(c, req_u64(c, VU_REQ_SET_STATUS, NEED, 0x0f), VU_REQ_SET_STATUS, 0);
	assert_int_equal(req0(c, VU_REQ_GET_STATUS, NR), 0);
	assert_int_equal(c->reply.payload.u64, 0x0f);
	ACK(c, req_u64(c, VU_REQ_SET_STATUS, NEED, 0x100), VU_REQ_SET_STATUS, 1);
	ACK(c, req_u64(c, VU_REQ_SET_STATUS, NEED, 0x8f), VU_REQ_SET_STATUS, 0);
	/* a device reset starts from status 0 and keeps the protocol features */
	ACK(c, req0(c, VU_REQ_RESET_DEVICE, NEED), VU_REQ_RESET_DEVICE, 0);
	assert_int_equal(req0(c, VU_REQ_GET_STATUS, NR), 0);
	assert_int_equal(c->reply.payload.u64, 0);
	assert_int_equal(c->dev.protocol_features, SLOT_PF);
}

static int window_map(void *priv, struct gmem *m, const struct gmem_region_desc *d, unsigned int n)
{
	(void)priv, (void)m, (void)d, (void)n;
	return -EFAULT;
}

/* Without fds (virtio-vhost-user) a region has no place of its own: no memory slots. */
static void test_no_mem_slots_without_fds(void **state)
{
	struct ctx *c = *state;
	static const struct vu_transport_ops window_tp = { .map_mem = window_map };
	const struct vu_transport tp = { &window_tp, NULL };

	vu_dev_fini(&c->dev);
	c->ops.protocol_features |= PF(CONFIGURE_MEM_SLOTS);
	vu_dev_init_transport(&c->dev, "test", &tp, &c->ops, &c->fake);
	assert_int_equal(req0(c, VU_REQ_GET_PROTOCOL_FEATURES, NR), 0);
	assert_int_equal(c->reply.payload.u64, OFFERED_PF | PF(STATUS));
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, SLOT_PF), -EINVAL);
}

/* --- config --- */

static void assert_config_reply(struct ctx *c, uint32_t offset, uint32_t size)
{
	assert_true(c->has_reply);
	assert_int_equal(c->reply.hdr.request, VU_REQ_GET_CONFIG);
	assert_int_equal(c->reply.hdr.flags, VU_REPLY_FLAGS);
	assert_int_equal(c->reply.hdr.size, VU_CONFIG_HDR_SIZE + size);
	assert_int_equal(c->reply.payload.config.offset, offset);
	assert_int_equal(c->reply.payload.config.size, size);
}

static void test_get_config(void **state)
{
	static const struct {
		uint32_t offset, size;
		bool device_asked;
	} bad[] = {
		{ 0, 0, false }, { 0, 9, true }, { 8, 1, true }, { 7, 2, true },
		{ 0xffffffffu, 1, false }, { 0xfffffff8u, 8, false }, { 255, 2, false },
		{ 256, 1, false }, { 0, 256, true },
	};
	struct ctx *c = *state;

	/* before CONFIG is negotiated: error form */
	assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NR, 0, 8), 0);
	assert_config_reply(c, 0, 0);
	bring_up(c);
	for (unsigned int i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned int n = c->fake.n_config;

		assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NEED, bad[i].offset, bad[i].size), 0);
		assert_config_reply(c, bad[i].offset, 0);
		assert_int_equal(c->fake.n_config, n + bad[i].device_asked);
	}
	assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NR, 0, 8), 0);
	assert_config_reply(c, 0, 8);
	assert_memory_equal(c->reply.payload.config.payload, c->fake.config, 8);
	assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NR, 4, 4), 0);
	assert_config_reply(c, 4, 4);
	assert_memory_equal(c->reply.payload.config.payload, c->fake.config + 4, 4);
	/* config.size 257 is a malformed message */
	assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NR, 0, 257), -EBADMSG);
	assert_false(c->has_reply);
}

static void test_set_config_refused(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	ACK(c, req_config(c, VU_REQ_SET_CONFIG, NEED, 0, 8), VU_REQ_SET_CONFIG, 1);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(CONFIG)), 0);
	assert_true(req_config(c, VU_REQ_SET_CONFIG, NR, 0, 8) < 0);
}

/* --- session --- */

static void test_unknown_requests(void **state)
{
	static const uint32_t unknown[] = { 0, VU_REQ_GET_SHMEM_CONFIG, VU_REQ_MAX, 99, 0xffffffffu };
	struct ctx *c = *state;

	bring_up(c);
	for (unsigned int i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		struct vu_msg m;

		msg_init(&m, unknown[i], NEED, 0);
		m.fds[0] = new_eventfd();
		m.nfds = 1;
		assert_true(run(c, &m) < 0);
		assert_false(c->has_reply);
		msg_init(&m, unknown[i], NEED, 0);
		assert_true(run(c, &m) < 0);
		assert_false(c->has_reply);
	}
}

static void test_set_owner_twice(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), 0);
	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), -EBUSY);
	assert_int_equal(c->fake.n_owner, 1);
	assert_int_equal(req_u64(c, VU_REQ_SET_PROTOCOL_FEATURES, NR, PF(REPLY_ACK)), 0);
	ACK(c, req0(c, VU_REQ_SET_OWNER, NEED), VU_REQ_SET_OWNER, 1);
	/* a device that refuses ownership leaves the session unowned */
	vu_dev_fini(&c->dev);
	vu_dev_init(&c->dev, "test", -1, &c->ops, &c->fake);
	c->fake.fail_owner = -EPERM;
	assert_int_equal(req0(c, VU_REQ_SET_OWNER, NR), -EPERM);
	assert_false(c->dev.owner);
}

static void run_everything(struct ctx *c)
{
	bring_up(c);
	for (unsigned int r = 0; r < 3; r++) {
		if (r) {
			assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, r, 256), 0);
			assert_int_equal(req_addr(c, NR, r, 0, ring_desc(r), ring_avail(r),
						  ring_used(r)), 0);
		}
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_CALL, NR, r, new_eventfd()), 0);
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_ERR, NR, r, new_eventfd()), 0);
		assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, r, new_eventfd()), 0);
		assert_int_equal(req_state(c, VU_REQ_SET_VRING_ENABLE, NR, r, 1), 0);
	}
}

static void assert_rings_clear(struct ctx *c)
{
	for (unsigned int r = 0; r < VU_MAX_QUEUES; r++) {
		const struct vu_vring *vr = &c->dev.vrings[r];

		assert_int_equal(vr->kick_fd, -1);
		assert_int_equal(vr->call_fd, -1);
		assert_int_equal(vr->err_fd, -1);
		assert_false(vr->started || vr->enabled || vr->addr_set || vr->kick_set);
		assert_int_equal(vr->num, 0);
	}
}

static void test_reset_owner_while_running(void **state)
{
	struct ctx *c = *state;
	run_everything(c);
	assert_int_equal(given_open(), 9);
	ACK(c, req0(c, VU_REQ_RESET_OWNER, NEED), VU_REQ_RESET_OWNER, 0);
	assert_int_equal(c->fake.n_reset, 1);
	assert_rings_clear(c);
	assert_int_equal(given_open(), 0);
	assert_int_equal(count_memfd_maps(), 0);
	assert_false(c->dev.owner);
	assert_false(c->dev.features_set);
	assert_true(c->dev.reply_ack);
	/* the session can start over */
	ACK(c, req0(c, VU_REQ_SET_OWNER, NEED), VU_REQ_SET_OWNER, 0);
	assert_int_equal(c->fake.n_owner, 2);
	/* a second reset with nothing set up is harmless */
	ACK(c, req0(c, VU_REQ_RESET_OWNER, NEED), VU_REQ_RESET_OWNER, 0);
}

static void test_reset_device_keeps_owner(void **state)
{
	struct ctx *c = *state;

	run_everything(c);
	ACK(c, req0(c, VU_REQ_RESET_DEVICE, NEED), VU_REQ_RESET_DEVICE, 0);
	assert_int_equal(c->fake.n_reset, 1);
	assert_rings_clear(c);
	assert_true(c->dev.owner);
	assert_int_equal(c->dev.mem.nregions, 0);
	ACK(c, req0(c, VU_REQ_SET_OWNER, NEED), VU_REQ_SET_OWNER, 1);
}

static void test_fini(void **state)
{
	struct ctx *c = *state;

	vu_dev_fini(&c->dev);
	assert_int_equal(c->fake.n_reset, 0);
	vu_dev_init(&c->dev, "test", -1, &c->ops, &c->fake);
	run_everything(c);
	vu_dev_fini(&c->dev);
	assert_int_equal(c->fake.n_reset, 1);
	assert_rings_clear(c);
	assert_false(c->dev.owner || c->dev.reply_ack);
	assert_int_equal(c->dev.sock, -1);
	vu_dev_fini(&c->dev);
	assert_int_equal(c->fake.n_reset, 1);
}

static void test_hook_failure(void **state)
{
	struct ctx *c = *state;

	bring_up(c);
	c->fake.fail_changed = -EIO;
	ACK(c, req_state(c, VU_REQ_SET_VRING_NUM, NEED, 1, 64), VU_REQ_SET_VRING_NUM, 1);
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 1, 64), -EIO);
}

/* A device without hooks (only the limits) must not crash the layer. */
static void test_no_hooks(void **state)
{
	struct ctx *c = *state;

	memset(&c->ops, 0, sizeof(c->ops));
	c->ops.nqueues = 2;
	c->ops.protocol_features = OFFERED_PF;
	assert_int_equal(req0(c, VU_REQ_GET_FEATURES, NR), 0);
	assert_int_equal(c->reply.payload.u64, F_PROTO);
	/* features are the one thing bring_up() needs offered */
	c->ops.get_features = fake_get_features;
	bring_up(c);
	assert_int_equal(req_vring_fd(c, VU_REQ_SET_VRING_KICK, NR, 0, new_eventfd()), 0);
	assert_int_equal(req_state(c, VU_REQ_GET_VRING_BASE, NR, 0, 0), 0);
	assert_int_equal(c->reply.payload.state.num, 0);
	assert_int_equal(req_config(c, VU_REQ_GET_CONFIG, NR, 0, 8), 0);
	assert_config_reply(c, 0, 0);
	/* no max_queue_size: the virtio limit applies */
	assert_int_equal(req_state(c, VU_REQ_SET_VRING_NUM, NR, 1, 32768), 0);
	assert_true(req_state(c, VU_REQ_SET_VRING_NUM, NR, 1, 65536) < 0);
	assert_true(req_state(c, VU_REQ_SET_VRING_NUM, NR, 2, 64) < 0);
}

static void test_vring_ready(void **state)
{
	struct vu_vring vr = { .kick_fd = -1, .call_fd = -1, .err_fd = -1 };

	(void)state;
	assert_false(vu_vring_ready(&vr));
	vr.num = 8;
	assert_false(vu_vring_ready(&vr));
	vr.addr_set = true;
	assert_false(vu_vring_ready(&vr));
	vr.kick_set = true;
	assert_true(vu_vring_ready(&vr));
	vr.num = 0;
	assert_false(vu_vring_ready(&vr));
}

/* vu_dev_process over a real socket: replies on the wire, EOF, malformed. */
static void test_process_socket(void **state)
{
	struct ctx *c = *state;
	struct vu_msg m;
	uint8_t buf[VU_HDR_SIZE + 8];
	struct vu_hdr h;
	uint64_t v;
	int sv[2];

	struct timeval tv = { .tv_sec = 1 };

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* a regression that waits for bytes never sent fails instead of hanging */
	assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	c->dev.sock = sv[1];
	msg_init(&m, VU_REQ_GET_FEATURES, NEED, 0);
	m.nfds = 0;
	assert_int_equal(vu_msg_send(sv[0], &m), 0);
	assert_int_equal(vu_dev_process(&c->dev), 0);
	assert_int_equal(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), (ssize_t)sizeof(buf));
	memcpy(&h, buf, sizeof(h));
	memcpy(&v, buf + VU_HDR_SIZE, sizeof(v));
	assert_int_equal(h.request, VU_REQ_GET_FEATURES);
	assert_int_equal(h.flags, VU_REPLY_FLAGS);
	assert_int_equal(h.size, 8);
	assert_int_equal(v, c->fake.offered | F_PROTO);
	/* no reply owed: nothing on the wire */
	msg_init(&m, VU_REQ_SET_OWNER, VU_FLAG_VERSION, 0);
	assert_int_equal(vu_msg_send(sv[0], &m), 0);
	assert_int_equal(vu_dev_process(&c->dev), 0);
	assert_int_equal(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), -1);
	/* a reply on the request channel is malformed */
	msg_init(&m, VU_REQ_GET_FEATURES, VU_REPLY_FLAGS, 0);
	assert_int_equal(vu_msg_send(sv[0], &m), 0);
	assert_int_equal(vu_dev_process(&c->dev), -EPROTO);
	close(sv[0]);
	assert_int_equal(vu_dev_process(&c->dev), -ECONNRESET);
	close(sv[1]);
}

/*
 * A transport whose memory is already mapped (VVU): an fd-less
 * SET_MEM_TABLE goes to its map_mem hook and is refused on a socket;
 * vu_dev_process() reads and replies through the transport's hooks.
 */
struct fake_tp {
	uint8_t window[0x4000];
	unsigned int n_map, n_recv, n_send;
	struct vu_msg next, sent;
	bool have_next;
};

static int tp_recv(void *priv, struct vu_msg *msg)
{
	struct fake_tp *t = priv;

	t->n_recv++;
	if (!t->have_next)
		return -EAGAIN;
	*msg = t->next;
	t->have_next = false;
	return 0;
}

static int tp_send(void *priv, const struct vu_msg *msg)
{
	struct fake_tp *t = priv;

	t->n_send++;
	t->sent = *msg;
	return 0;
}

static int tp_map_mem(void *priv, struct gmem *m, const struct gmem_region_desc *d, unsigned int n)
{
	struct fake_tp *t = priv;

	t->n_map++;
	return gmem_map_window(m, d, n, t->window, sizeof(t->window));
}

static void test_transport_seam(void **state)
{
	static const struct vu_transport_ops tp_ops = {
		.recv = tp_recv, .send = tp_send, .map_mem = tp_map_mem,
	};
	struct ctx *c = *state;
	static struct fake_tp t;
	const struct vu_transport tp = { &tp_ops, &t };
	const struct vu_mem_region r[2] = {
		{ .guest_phys_addr = 0, .memory_size = 0x1000, .userspace_addr = UVA },
		{ .guest_phys_addr = 0x100000, .memory_size = 0x2000, .userspace_addr = UVA + 0x100000,
		  .mmap_offset = 0x100000 },
	};
	struct vu_msg m;

	/* on a socket, a table without fds is malformed */
	msg_init(&m, VU_REQ_SET_MEM_TABLE, NR, 8 + 32 * 2);
	m.payload.mem.nregions = 2;
	memcpy(m.payload.mem.regions, r, sizeof(r));
	assert_int_equal(run(c, &m), -EPROTO);
	assert_int_equal(c->fake.n_mem, 0);

	vu_dev_fini(&c->dev);
	memset(&t, 0, sizeof(t));
	vu_dev_init_transport(&c->dev, "test", &tp, &c->ops, &c->fake);
	assert_int_equal(run(c, &m), 0);
	assert_int_equal(t.n_map, 1);
	assert_int_equal(c->fake.mem_nregions, 2);
	/* region 1 lies right after region 0 in the window, not at its mmap_offset */
	assert_ptr_equal(gmem_gpa_ptr(&c->dev.mem, 0x100000, 1), t.window + 0x1000);
	assert_ptr_equal(gmem_uva_ptr(&c->dev.mem, UVA + 0x101fff, 1), t.window + 0x2fff);
	/* on such a transport a table with fds is malformed (and they are closed) */
	msg_init(&m, VU_REQ_SET_MEM_TABLE, NR, 8 + 32);
	m.payload.mem.nregions = 1;
	m.payload.mem.regions[0] = r[0];
	m.fds[0] = new_eventfd();
	m.nfds = 1;
	assert_int_equal(run(c, &m), -EPROTO);
	assert_int_equal(t.n_map, 1);
	/* a table larger than the window */
	msg_init(&m, VU_REQ_SET_MEM_TABLE, NR, 8 + 32);
	m.payload.mem.nregions = 1;
	m.payload.mem.regions[0] = r[0];
	m.payload.mem.regions[0].memory_size = sizeof(t.window) + 1;
	assert_int_equal(run(c, &m), -EFAULT);

	/* vu_dev_process through the hooks: nothing waiting, then one request */
	assert_int_equal(vu_dev_process(&c->dev), -EAGAIN);
	msg_init(&t.next, VU_REQ_GET_FEATURES, NR, 0);
	t.have_next = true;
	assert_int_equal(vu_dev_process(&c->dev), 0);
	assert_int_equal(t.n_send, 1);
	assert_int_equal(t.sent.hdr.request, VU_REQ_GET_FEATURES);
	assert_int_equal(t.sent.hdr.flags, VU_REPLY_FLAGS);
	assert_int_equal(t.sent.payload.u64, c->fake.offered | F_PROTO);
	vu_dev_fini(&c->dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_qemu_sequence),
		T(test_crosvm_sequence_bit30),
		T(test_crosvm_sequence_no_bit30),
		T(test_features_without_bit30_enable_rings),
		T(test_set_features),
		T(test_protocol_features),
		T(test_inband_needs_backend_req),
		T(test_get_queue_num_needs_mq),
		T(test_reply_ack_every_request),
		T(test_bad_ring_indices),
		T(test_kick_bit8_mismatch),
		T(test_vring_num),
		T(test_vring_base),
		T(test_vring_addr),
		T(test_vring_addr_event_idx),
		T(test_vring_addr_before_num),
		T(test_vring_enable),
		T(test_get_vring_base),
		T(test_vring_fd_replacement),
		T(test_mem_table),
		T(test_mem_table_rings),
		T(test_mem_slots),
		T(test_mem_slots_full),
		T(test_status),
		T(test_no_mem_slots_without_fds),
		T(test_get_config),
		T(test_set_config_refused),
		T(test_unknown_requests),
		T(test_set_owner_twice),
		T(test_reset_owner_while_running),
		T(test_reset_device_keeps_owner),
		T(test_fini),
		T(test_hook_failure),
		T(test_no_hooks),
		T(test_process_socket),
		T(test_transport_seam),
		cmocka_unit_test(test_vring_ready),
#undef T
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
