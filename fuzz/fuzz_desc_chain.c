// SPDX-License-Identifier: MIT
/*
 * Fuzz target (c): descriptor chains (virtq/split.h) over guest memory the
 * fuzzer writes.
 *
 * Input: a 16-byte header (queue size, features EVENT_IDX / INDIRECT_DESC /
 * NOTIFY_ON_EMPTY, memory layout, SET_VRING_BASE value, iovec budget,
 * rounds, push policy, two guest writes applied between rounds), then the
 * guest memory image itself: its bytes land at guest physical address 0,
 * where the descriptor table starts, followed by the avail ring, the used
 * ring and free space for buffers and indirect tables.
 *
 * Layouts: one 128 KiB region; two adjacent 64 KiB regions (a buffer over
 * the seam becomes two iovecs); two regions with a hole between them.
 *
 * Each round runs the consumer loop split.h documents (disable notify, pop
 * until empty or broken, push, flush, should_notify, enable_notify) and
 * touches every byte of every iovec so AddressSanitizer sees any pointer
 * outside what was handed out. Checked: every iovec lies inside one mapped
 * region; iovec counts and lengths add up to out_len/in_len; heads are
 * below the queue size; a failed pop leaves the queue broken with a
 * reason; the device writes nothing but the used ring (the rest of guest
 * memory is compared with a snapshot); a broken queue writes nothing at
 * all; used->idx moves by exactly the number of pushes.
 */
#include <errno.h>
#include <stdint.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "fuzz_util.h"
#include "virtq/split.h"

#define DC_MEMFD "fuzz-desc-chain"
#define DC_MEM_SIZE (128u * 1024)
#define DC_HALF (DC_MEM_SIZE / 2)
#define DC_HOLE_GPA 0x20000ull
#define DC_MAX_LOG2_NUM 10u
#define DC_MAX_IOV 256u
#define DC_HDR_LEN 16u
#define DC_TOUCH_BUDGET (8u << 20)
#define DC_LAYOUTS 3u

struct dc_env {
	int fd;
	uint8_t *img;                   /* our view of the whole memfd */
	uint8_t *snap;                  /* what guest memory must still hold */
	struct gmem mem[DC_LAYOUTS];
	int fds;                        /* fd count after set-up */
};

struct dc_run {
	struct vq vq;
	const struct gmem *mem;
	unsigned int num;
	size_t used_off, used_len;      /* the only bytes the device may write */
	unsigned int iov_max;
	uint8_t policy;
	uint16_t pushes;
	size_t touched;
	struct iovec iov[DC_MAX_IOV];
};

static struct dc_env env = { .fd = -1 };

static void map_layout(struct gmem *m, const struct gmem_region_desc *d, unsigned int n)
{
	int fds[2] = { env.fd, env.fd };

	gmem_init(m);
	FZ_CHECK(gmem_map(m, d, n, fds) == 0, "cannot map the guest memory layout");
}

static void env_init(void)
{
	const struct gmem_region_desc one = { 0, DC_MEM_SIZE, 0x10000000, 0 };
	const struct gmem_region_desc adj[2] = {
		{ 0, DC_HALF, 0x10000000, 0 },
		{ DC_HALF, DC_HALF, 0x20000000, DC_HALF },
	};
	const struct gmem_region_desc hole[2] = {
		{ 0, DC_HALF, 0x10000000, 0 },
		{ DC_HOLE_GPA, DC_HALF, 0x20000000, DC_HALF },
	};

	env.fd = fz_memfd(DC_MEMFD, DC_MEM_SIZE);
	env.img = mmap(NULL, DC_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, env.fd, 0);
	FZ_CHECK(env.img != MAP_FAILED, "cannot map the guest memory image");
	env.snap = malloc(DC_MEM_SIZE);
	FZ_CHECK(env.snap, "out of memory");
	map_layout(&env.mem[0], &one, 1);
	map_layout(&env.mem[1], adj, 2);
	map_layout(&env.mem[2], hole, 2);
	env.fds = fz_count_fds();
}

/* The device may write the used ring only; everything else must be as the guest left it. */
static void check_untouched(const struct dc_run *r, bool include_used)
{
	size_t end = r->used_off + r->used_len;

	if (include_used) {
		FZ_CHECK(memcmp(env.img, env.snap, DC_MEM_SIZE) == 0,
			 "a broken queue wrote to guest memory");
		return;
	}
	FZ_CHECK(memcmp(env.img, env.snap, r->used_off) == 0 &&
		 memcmp(env.img + end, env.snap + end, DC_MEM_SIZE - end) == 0,
		 "the device wrote guest memory outside the used ring");
}

/* @p..@p+len inside one region of the layout. */
static bool in_region(const struct gmem *m, const uint8_t *p, size_t len)
{
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct gmem_region *g = &m->regions[i];

		if (p >= g->host && len <= g->size && (uint64_t)(p - g->host) <= g->size - len)
			return true;
	}
	return false;
}

/*
 * Read every readable byte, rewrite every writable one with its own value:
 * through memcpy, which ASan checks as one range and which is not traced
 * byte by byte like a loop in this file would be.
 */
static void touch(struct dc_run *r, const struct iovec *v, bool writable)
{
	static uint8_t scratch[DC_MEM_SIZE];
	size_t n = v->iov_len < sizeof(scratch) ? v->iov_len : sizeof(scratch);

	if (r->touched > DC_TOUCH_BUDGET)
		n = 1;
	r->touched += n;
	memcpy(scratch, v->iov_base, n);
	if (writable)
		memcpy(v->iov_base, scratch, n);
}

static void check_elem(struct dc_run *r, const struct vq_elem *e)
{
	uint64_t out = 0, in = 0;
	unsigned int n = e->out_num + e->in_num;

	FZ_CHECK(e->head < r->num, "head %u with queue size %u", e->head, r->num);
	FZ_CHECK(n <= r->iov_max, "%u iovecs with a budget of %u", n, r->iov_max);
	for (unsigned int i = 0; i < n; i++) {
		const struct iovec *v = &r->iov[i];

		FZ_CHECK(v->iov_len > 0 && in_region(r->mem, v->iov_base, v->iov_len),
			 "iovec %u (%p+%zu) is not inside one mapped region", i, v->iov_base,
			 v->iov_len);
		touch(r, v, i >= e->out_num);
		*(i < e->out_num ? &out : &in) += v->iov_len;
	}
	FZ_CHECK(out == e->out_len && in == e->in_len,
		 "iovecs hold %llu/%llu bytes, elem says %u/%u", (unsigned long long)out,
		 (unsigned long long)in, e->out_len, e->in_len);
}

/* Pop until empty or broken. Return: chains popped. */
static unsigned int drain(struct dc_run *r)
{
	unsigned int popped = 0;
	struct vq_elem e;
	int rc;

	while ((rc = vq_pop(&r->vq, r->iov, r->iov_max, &e)) == 0) {
		check_elem(r, &e);
		popped++;
		/* policy bit 1: keep chains in flight, so reuse of a head is seen */
		if (!(r->policy & 2) || (popped & 1)) {
			FZ_CHECK(vq_push(&r->vq, e.head, (r->policy & 1) ? e.in_len : 0) == 0,
				 "push of a popped chain failed");
			r->pushes++;
		}
	}
	FZ_CHECK(rc == -EAGAIN || rc == -EIO, "vq_pop returned %d", rc);
	FZ_CHECK((rc == -EIO) == vq_is_broken(&r->vq), "pop %d but broken=%d", rc,
		 vq_is_broken(&r->vq));
	FZ_CHECK(!vq_is_broken(&r->vq) || vq_broken_reason(&r->vq)[0], "broken without a reason");
	return popped;
}

static void round_trip(struct dc_run *r, uint16_t used_start)
{
	uint16_t before = vq_last_avail(&r->vq);
	unsigned int popped = 0, loops = 0;
	uint16_t used_idx;

	do {
		vq_disable_notify(&r->vq);
		popped += drain(r);
		vq_flush(&r->vq);
		(void)vq_should_notify(&r->vq);
	} while (vq_enable_notify(&r->vq) && ++loops < 4);
	check_untouched(r, false);
	FZ_CHECK((uint16_t)(vq_last_avail(&r->vq) - before) == (uint16_t)popped,
		 "last_avail moved by %u for %u pops", (uint16_t)(vq_last_avail(&r->vq) - before),
		 popped);
	if (!vq_is_broken(&r->vq)) {
		memcpy(&used_idx, env.img + r->used_off + 2, 2);
		FZ_CHECK(used_idx == (uint16_t)(used_start + r->pushes), "used->idx %u, want %u",
			 used_idx, (uint16_t)(used_start + r->pushes));
	}
}

/*
 * The guest writes a u16 between rounds (new buffers, a moved index...).
 * Not into the used ring: the device owns it and reads only used->idx,
 * once, at vq_init().
 */
static void guest_write(const struct dc_run *r, uint16_t off, uint16_t val)
{
	size_t at = off & ~(size_t)1;

	if (at + 2 > r->used_off && at < r->used_off + r->used_len)
		return;
	memcpy(env.img + at, &val, 2);
	memcpy(env.snap + at, &val, 2);
}

static void setup_ring(struct dc_run *r, const uint8_t *hdr)
{
	size_t avail_off = 16u * r->num;
	struct vq_config cfg = {
		.name = "fuzz",
		.num = r->num,
		.mem = r->mem,
		.features = ((hdr[1] & 1) ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
			    ((hdr[1] & 2) ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0) |
			    ((hdr[1] & 4) ? 1ull << VIRTIO_F_NOTIFY_ON_EMPTY : 0),
	};

	r->used_off = (avail_off + 6 + 2u * r->num + 3) & ~(size_t)3;
	r->used_len = 6 + 8u * r->num;
	cfg.desc = gmem_gpa_ptr(r->mem, 0, avail_off);
	cfg.avail = gmem_gpa_ptr(r->mem, avail_off, 6 + 2u * r->num);
	cfg.used = gmem_gpa_ptr(r->mem, r->used_off, r->used_len);
	FZ_CHECK(vq_init(&r->vq, &cfg) == 0, "vq_init refused a valid ring");
	vq_set_last_avail(&r->vq, (uint16_t)(hdr[2] | hdr[3] << 8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dc_run r;
	uint8_t hdr[DC_HDR_LEN] = { 0 };
	unsigned int rounds;
	uint16_t used_start;

	if (env.fd < 0)
		env_init();
	memcpy(hdr, data, size < DC_HDR_LEN ? size : DC_HDR_LEN);
	memset(&r, 0, sizeof(r));
	r.num = 1u << (hdr[0] % (DC_MAX_LOG2_NUM + 1));
	r.mem = &env.mem[((hdr[1] >> 3) & 3) % DC_LAYOUTS];
	r.iov_max = 1u + hdr[4] % DC_MAX_IOV;
	rounds = 1u + hdr[5] % 4;
	r.policy = hdr[6];
	memset(env.img, 0, DC_MEM_SIZE);
	if (size > DC_HDR_LEN)
		memcpy(env.img, data + DC_HDR_LEN,
		       size - DC_HDR_LEN < DC_MEM_SIZE ? size - DC_HDR_LEN : DC_MEM_SIZE);
	memcpy(env.snap, env.img, DC_MEM_SIZE);
	setup_ring(&r, hdr);
	memcpy(&used_start, env.img + r.used_off + 2, 2);
	for (unsigned int i = 0; i < rounds; i++) {
		bool broken = vq_is_broken(&r.vq);

		if (broken)
			memcpy(env.snap, env.img, DC_MEM_SIZE);
		round_trip(&r, used_start);
		if (broken)
			check_untouched(&r, true);
		if (i < 2)
			guest_write(&r, (uint16_t)(hdr[8 + 4 * i] | hdr[9 + 4 * i] << 8),
				    (uint16_t)(hdr[10 + 4 * i] | hdr[11 + 4 * i] << 8));
	}
	vq_fini(&r.vq);
	fz_check_fds(env.fds);
	return 0;
}
