// SPDX-License-Identifier: MIT
/*
 * The vhost-vsock test double (see vhost_double.h). Each rule below names
 * the kernel behaviour it copies (drivers/vhost/vsock.c and vhost.c as
 * summarised in PROTOCOLS.md §3.4; REAL-PEERS.md §7 for what was observed):
 *
 *  - GET_FEATURES, SET_FEATURES and SET_GUEST_CID need no owner; every
 *    other ioctl except SET_OWNER gives EPERM before SET_OWNER;
 *  - ring ioctls on index >= 2 give ENOBUFS;
 *  - NUM and BASE while running give EBUSY; GET_VRING_BASE only reads;
 *  - the CID is global across the double's open fds and freed on close.
 *
 * Fault injection runs before the rules: an injected failure changes no
 * state, like an ioctl that failed at its first check.
 */
#include "vhost_double.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <string.h>

#define VHD_FD_BASE 1000
#define VHD_MAX_FAULTS 8u
#define VHD_CID_HOST 2u

struct vhd_fault {
	bool armed;
	unsigned long req;
	unsigned int left;  /* calls of req still to let through */
	int err;
};

static struct {
	struct vhd_dev devs[VHD_MAX_DEVS];
	struct vhd_call calls[VHD_MAX_CALLS];
	size_t ncalls;
	size_t dropped;
	struct vhd_fault faults[VHD_MAX_FAULTS];
	uint64_t features;
	bool check_mem;
	unsigned int bad_closes;
} vhd = { .features = VHD_FEATURES_DEFAULT, .check_mem = true };

static const struct {
	unsigned long req;
	const char *name;
} vhd_names[] = {
	{ VHD_OPEN, "open" },
	{ VHD_CLOSE, "close" },
	{ VHOST_GET_FEATURES, "VHOST_GET_FEATURES" },
	{ VHOST_SET_FEATURES, "VHOST_SET_FEATURES" },
	{ VHOST_SET_OWNER, "VHOST_SET_OWNER" },
	{ VHOST_RESET_OWNER, "VHOST_RESET_OWNER" },
	{ VHOST_SET_MEM_TABLE, "VHOST_SET_MEM_TABLE" },
	{ VHOST_SET_VRING_NUM, "VHOST_SET_VRING_NUM" },
	{ VHOST_SET_VRING_ADDR, "VHOST_SET_VRING_ADDR" },
	{ VHOST_SET_VRING_BASE, "VHOST_SET_VRING_BASE" },
	{ VHOST_GET_VRING_BASE, "VHOST_GET_VRING_BASE" },
	{ VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK" },
	{ VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL" },
	{ VHOST_SET_VRING_ERR, "VHOST_SET_VRING_ERR" },
	{ VHOST_VSOCK_SET_GUEST_CID, "VHOST_VSOCK_SET_GUEST_CID" },
	{ VHOST_VSOCK_SET_RUNNING, "VHOST_VSOCK_SET_RUNNING" },
};

const char *vhd_req_name(unsigned long req)
{
	for (size_t i = 0; i < sizeof(vhd_names) / sizeof(vhd_names[0]); i++)
		if (vhd_names[i].req == req)
			return vhd_names[i].name;
	return "unknown";
}

/* ------------------------------------------------------------------ */
/* Bookkeeping                                                         */

static struct vhd_dev *dev_of(int fd)
{
	struct vhd_dev *d;

	if (fd < VHD_FD_BASE || fd >= VHD_FD_BASE + (int)VHD_MAX_DEVS)
		return NULL;
	d = &vhd.devs[fd - VHD_FD_BASE];
	return d->open ? d : NULL;
}

/* A record for this call; past the limit a scratch one that nobody reads. */
static struct vhd_call *record(int fd, unsigned long req)
{
	static struct vhd_call scratch;
	struct vhd_call *c = &scratch;

	if (vhd.ncalls < VHD_MAX_CALLS)
		c = &vhd.calls[vhd.ncalls++];
	else
		vhd.dropped++;
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->req = req;
	return c;
}

/* An injected failure for this call of @req, or 0. */
static int injected(unsigned long req)
{
	for (unsigned int i = 0; i < VHD_MAX_FAULTS; i++) {
		struct vhd_fault *f = &vhd.faults[i];

		if (!f->armed || f->req != req)
			continue;
		if (--f->left == 0) {
			f->armed = false;
			return -f->err;
		}
	}
	return 0;
}

static void vq_init(struct vhd_vq *vq)
{
	memset(vq, 0, sizeof(*vq));
	vq->kick = vq->call = vq->err = -1;
}

/* ------------------------------------------------------------------ */
/* open / close                                                        */

static int vhd_open(const char *path)
{
	struct vhd_call *c = record(-1, VHD_OPEN);
	int rc = injected(VHD_OPEN);

	(void)path;
	for (unsigned int i = 0; rc == 0 && i < VHD_MAX_DEVS; i++) {
		struct vhd_dev *d = &vhd.devs[i];

		if (d->open)
			continue;
		memset(d, 0, sizeof(*d));
		d->open = true;
		for (unsigned int q = 0; q < VHD_NVQS; q++)
			vq_init(&d->vq[q]);
		c->fd = VHD_FD_BASE + (int)i;
		c->rc = c->fd;
		return c->fd;
	}
	c->rc = rc ? rc : -EMFILE;
	return c->rc;
}

/* Closing releases the CID and stops the device (REAL-PEERS.md §7.6). */
static void vhd_close(int fd)
{
	struct vhd_dev *d = dev_of(fd);
	struct vhd_call *c = record(fd, VHD_CLOSE);

	if (!d) {
		vhd.bad_closes++;
		c->rc = -EBADF;
		return;
	}
	memset(d, 0, sizeof(*d));
}

/* ------------------------------------------------------------------ */
/* Device ioctls                                                       */

static int do_set_owner(struct vhd_dev *d)
{
	if (d->owner)
		return -EBUSY;
	d->owner = true;
	return 0;
}

static int do_set_features(struct vhd_dev *d, const uint64_t *f, struct vhd_call *c)
{
	c->val = *f;
	if (*f & ~vhd.features)
		return -EOPNOTSUPP;
	d->acked = *f;
	return 0;
}

static bool regions_overlap(const struct vhost_memory_region *a,
			    const struct vhost_memory_region *b)
{
	return a->guest_phys_addr < b->guest_phys_addr + b->memory_size &&
	       b->guest_phys_addr < a->guest_phys_addr + a->memory_size;
}

static int check_region(const struct vhost_memory *m, unsigned int i)
{
	const struct vhost_memory_region *r = &m->regions[i];

	if (r->memory_size == 0 || r->guest_phys_addr > UINT64_MAX - r->memory_size ||
	    r->userspace_addr > UINT64_MAX - r->memory_size)
		return -EFAULT;
	for (unsigned int j = 0; j < i; j++)
		if (regions_overlap(r, &m->regions[j]))
			return -EFAULT;
	return 0;
}

static int do_set_mem_table(struct vhd_dev *d, const struct vhost_memory *m, struct vhd_call *c)
{
	int rc;

	c->val = m->nregions;
	if (m->padding != 0)
		return -EOPNOTSUPP;
	if (m->nregions > VHD_MAX_REGIONS)
		return -E2BIG;
	for (unsigned int i = 0; i < m->nregions; i++) {
		rc = check_region(m, i);
		if (rc < 0)
			return rc;
	}
	d->nregions = m->nregions;
	memcpy(d->regions, m->regions, m->nregions * sizeof(m->regions[0]));
	d->mem_set = true;
	return 0;
}

/* CID rules of vhost_vsock_set_cid(): reserved values, one owner per CID. */
static int do_set_cid(struct vhd_dev *d, const uint64_t *cid, struct vhd_call *c)
{
	c->val = *cid;
	if (*cid <= VHD_CID_HOST || *cid >= UINT32_MAX)
		return -EINVAL;
	for (unsigned int i = 0; i < VHD_MAX_DEVS; i++) {
		const struct vhd_dev *o = &vhd.devs[i];

		if (o != d && o->open && o->cid == *cid)
			return -EADDRINUSE;
	}
	d->cid = *cid;
	return 0;
}

/* [addr, addr + len) inside one region's userspace range. */
static bool uva_in_table(const struct vhd_dev *d, uint64_t addr, uint64_t len)
{
	for (unsigned int i = 0; i < d->nregions; i++) {
		const struct vhost_memory_region *r = &d->regions[i];

		if (addr >= r->userspace_addr && len <= r->memory_size &&
		    addr - r->userspace_addr <= r->memory_size - len)
			return true;
	}
	return false;
}

/* vhost_vq_access_ok() at start: rings set, and (optionally) in the table. */
static int vq_access_ok(const struct vhd_dev *d, const struct vhd_vq *vq)
{
	uint64_t n = vq->num;
	uint64_t ev = (d->acked & (1ull << VIRTIO_RING_F_EVENT_IDX)) ? 2 : 0;

	if (!vq->num_set || !vq->addr_set)
		return -EFAULT;
	if (!vhd.check_mem)
		return 0;
	if (!uva_in_table(d, vq->addr.desc_user_addr, 16 * n) ||
	    !uva_in_table(d, vq->addr.avail_user_addr, 4 + 2 * n + ev) ||
	    !uva_in_table(d, vq->addr.used_user_addr, 4 + 8 * n + ev))
		return -EFAULT;
	return 0;
}

static int do_set_running(struct vhd_dev *d, const int *on, struct vhd_call *c)
{
	int rc;

	c->val = (uint64_t)(int64_t)*on;
	if (!d->owner)
		return -EPERM;
	if (*on) {
		for (unsigned int q = 0; q < VHD_NVQS; q++) {
			rc = vq_access_ok(d, &d->vq[q]);
			if (rc < 0)
				return rc;
		}
	}
	d->running = *on != 0;
	for (unsigned int q = 0; q < VHD_NVQS; q++)
		d->vq[q].backend = d->running;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Ring ioctls (vhost_vring_ioctl)                                     */

static int vq_state(struct vhd_dev *d, unsigned long req, struct vhost_vring_state *s,
		    struct vhd_call *c)
{
	struct vhd_vq *vq = &d->vq[s->index];

	c->val = s->num;
	if (req == VHOST_GET_VRING_BASE) {
		s->num = vq->last_avail;
		c->val = s->num;
		return 0;
	}
	if (vq->backend)
		return -EBUSY;
	if (req == VHOST_SET_VRING_NUM) {
		if (s->num == 0 || s->num > 0xffff || (s->num & (s->num - 1)))
			return -EINVAL;
		vq->num = s->num;
		vq->num_set = true;
		return 0;
	}
	if (s->num > 0xffff)
		return -EINVAL;
	vq->last_avail = s->num;
	return 0;
}

static int vq_addr(struct vhd_dev *d, const struct vhost_vring_addr *a, struct vhd_call *c)
{
	struct vhd_vq *vq = &d->vq[a->index];

	c->addr = *a;
	if (a->flags & ~(1u << VHOST_VRING_F_LOG))
		return -EOPNOTSUPP;
	if ((a->avail_user_addr & 1) || (a->used_user_addr & 3) || (a->log_guest_addr & 3))
		return -EINVAL;
	vq->addr = *a;
	vq->addr_set = true;
	return 0;
}

static int vq_file(struct vhd_dev *d, unsigned long req, const struct vhost_vring_file *f,
		   struct vhd_call *c)
{
	struct vhd_vq *vq = &d->vq[f->index];

	c->val = (uint64_t)(int64_t)f->fd;
	/* the kernel takes eventfd references: a stale number is EBADF */
	if (f->fd < -1 || (f->fd >= 0 && fcntl(f->fd, F_GETFD) < 0))
		return -EBADF;
	if (req == VHOST_SET_VRING_KICK)
		vq->kick = f->fd;
	else if (req == VHOST_SET_VRING_CALL)
		vq->call = f->fd;
	else
		vq->err = f->fd;
	return 0;
}

static bool is_vring_ioctl(unsigned long req)
{
	return req == VHOST_SET_VRING_NUM || req == VHOST_SET_VRING_BASE ||
	       req == VHOST_GET_VRING_BASE || req == VHOST_SET_VRING_ADDR ||
	       req == VHOST_SET_VRING_KICK || req == VHOST_SET_VRING_CALL ||
	       req == VHOST_SET_VRING_ERR;
}

/*
 * Everything vhost_vring_ioctl() handles; the index is the first u32 of
 * every argument. RESET_OWNER lands here too, as in the kernel, and fails:
 * EFAULT reading the index from a NULL argument, ENOTTY otherwise.
 */
static int vring_ioctl(struct vhd_dev *d, unsigned long req, void *arg, struct vhd_call *c)
{
	if (!arg)
		return -EFAULT;
	c->index = *(const uint32_t *)arg;
	if (c->index >= VHD_NVQS)
		return -ENOBUFS;
	if (!is_vring_ioctl(req))
		return -ENOTTY;
	if (req == VHOST_SET_VRING_ADDR)
		return vq_addr(d, arg, c);
	if (req == VHOST_SET_VRING_KICK || req == VHOST_SET_VRING_CALL ||
	    req == VHOST_SET_VRING_ERR)
		return vq_file(d, req, arg, c);
	return vq_state(d, req, arg, c);
}

/* The owner-checked part (vhost_dev_ioctl, then the ring ioctls). */
static int owned_ioctl(struct vhd_dev *d, unsigned long req, void *arg, struct vhd_call *c)
{
	if (req == VHOST_SET_OWNER)
		return do_set_owner(d);
	if (!d->owner)
		return -EPERM;
	if (req == VHOST_SET_MEM_TABLE)
		return arg ? do_set_mem_table(d, arg, c) : -EFAULT;
	return vring_ioctl(d, req, arg, c);
}

static int dispatch(struct vhd_dev *d, unsigned long req, void *arg, struct vhd_call *c)
{
	switch (req) {
	case VHOST_GET_FEATURES:
		if (!arg)
			return -EFAULT;
		*(uint64_t *)arg = vhd.features;
		c->val = vhd.features;
		return 0;
	case VHOST_SET_FEATURES:
		return arg ? do_set_features(d, arg, c) : -EFAULT;
	case VHOST_VSOCK_SET_GUEST_CID:
		return arg ? do_set_cid(d, arg, c) : -EFAULT;
	case VHOST_VSOCK_SET_RUNNING:
		return arg ? do_set_running(d, arg, c) : -EFAULT;
	default:
		return owned_ioctl(d, req, arg, c);
	}
}

static int vhd_ioctl(int fd, unsigned long req, void *arg)
{
	struct vhd_dev *d = dev_of(fd);
	struct vhd_call *c = record(fd, req);
	int rc = injected(req);

	if (rc == 0)
		rc = d ? dispatch(d, req, arg, c) : -EBADF;
	c->rc = rc;
	return rc;
}

const struct kern_vhost_ops vhd_ops = {
	.open = vhd_open,
	.ioctl = vhd_ioctl,
	.close = vhd_close,
};

/* ------------------------------------------------------------------ */
/* The double shared between threads                                   */

static pthread_mutex_t vhd_mutex = PTHREAD_MUTEX_INITIALIZER;

void vhd_lock(void)
{
	pthread_mutex_lock(&vhd_mutex);
}

void vhd_unlock(void)
{
	pthread_mutex_unlock(&vhd_mutex);
}

static int locked_open(const char *path)
{
	int rc;

	vhd_lock();
	rc = vhd_ops.open(path);
	vhd_unlock();
	return rc;
}

static int locked_ioctl(int fd, unsigned long req, void *arg)
{
	int rc;

	vhd_lock();
	rc = vhd_ops.ioctl(fd, req, arg);
	vhd_unlock();
	return rc;
}

static void locked_close(int fd)
{
	vhd_lock();
	vhd_ops.close(fd);
	vhd_unlock();
}

const struct kern_vhost_ops vhd_locked_ops = {
	.open = locked_open,
	.ioctl = locked_ioctl,
	.close = locked_close,
};

/* ------------------------------------------------------------------ */
/* Test controls                                                       */

void vhd_reset(void)
{
	memset(&vhd, 0, sizeof(vhd));
	vhd.features = VHD_FEATURES_DEFAULT;
	vhd.check_mem = true;
}

void vhd_set_features(uint64_t features)
{
	vhd.features = features;
}

void vhd_check_ring_memory(bool on)
{
	vhd.check_mem = on;
}

int vhd_fail(unsigned long req, unsigned int nth, int err)
{
	for (unsigned int i = 0; i < VHD_MAX_FAULTS; i++) {
		struct vhd_fault *f = &vhd.faults[i];

		if (f->armed)
			continue;
		*f = (struct vhd_fault){ .armed = true, .req = req, .left = nth ? nth : 1, .err = err };
		return 0;
	}
	return -ENOSPC;
}

void vhd_advance(int fd, unsigned int idx, uint32_t n)
{
	struct vhd_dev *d = dev_of(fd);

	if (d && idx < VHD_NVQS)
		d->vq[idx].last_avail = (d->vq[idx].last_avail + n) & 0xffff;
}

unsigned int vhd_open_fds(void)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < VHD_MAX_DEVS; i++)
		n += vhd.devs[i].open;
	return n;
}

unsigned int vhd_bad_closes(void)
{
	return vhd.bad_closes;
}

const struct vhd_dev *vhd_dev(int fd)
{
	return dev_of(fd);
}

size_t vhd_ncalls(void)
{
	return vhd.ncalls;
}

size_t vhd_dropped_calls(void)
{
	return vhd.dropped;
}

const struct vhd_call *vhd_call_at(size_t i)
{
	return i < vhd.ncalls ? &vhd.calls[i] : NULL;
}

long vhd_find(unsigned long req, size_t from)
{
	for (size_t i = from; i < vhd.ncalls; i++)
		if (vhd.calls[i].req == req)
			return (long)i;
	return -1;
}

size_t vhd_count(unsigned long req)
{
	size_t n = 0;

	for (size_t i = 0; i < vhd.ncalls; i++)
		n += vhd.calls[i].req == req;
	return n;
}

void vhd_clear_calls(void)
{
	vhd.ncalls = 0;
	vhd.dropped = 0;
}
