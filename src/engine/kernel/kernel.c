// SPDX-License-Identifier: MIT
/*
 * Kernel engine: turns a vhost-user session into ioctls on the host's
 * /dev/vhost-vsock (PROTOCOLS.md §3). The kernel runs rx and tx; the event
 * queue stays with the daemon and is only stored by the layer.
 *
 * Ring setup is stored by the vhost-user layer as it arrives and handed to
 * the kernel only when the device starts (rx and tx ready, enabled and
 * started, memory mapped): NUM, BASE, ADDR, KICK, CALL, ERR for each, then
 * the guest CID, then SET_RUNNING(1). The kernel refuses NUM/BASE while
 * running (EBUSY) and its GET_VRING_BASE does not stop anything, so every
 * change that needs them stops the device first (PROTOCOLS.md §3.4).
 *
 * Changes while running, by kind:
 *  - eventfds only: re-issued live (the kernel swaps them under its lock);
 *  - size, base or addresses: stop, re-program, restart;
 *  - a new memory table: stop, table, re-translated addresses, restart.
 *    Restarts the daemon does on its own keep the kernel's ring position
 *    (no SET_VRING_BASE unless the front end sent a new base), since the
 *    front end has not stopped anything.
 *
 * Every SET_RUNNING(1) is followed by one write to the rx and tx kick
 * eventfds: the kernel forgets kicks that came while a ring was not
 * running, and the guest may have queued buffers (and kicked) in that
 * window. The write is skipped when the front end's eventfd counter is
 * full (a blocking eventfd would hang us); a front end that fills it
 * between that check and the write can still block this one write.
 *
 * Limits: no dirty logging (LOG_ALL) and no IOTLB (ACCESS_PLATFORM); both
 * are masked out of the features. VHOST_RESET_OWNER is not implemented by
 * vhost-vsock, so a reset closes the fd (releasing the CID) and the next
 * hook that needs the device opens a fresh one.
 */
#include "engine/kernel/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "engine/event_queue.h"
#include "util/log.h"

#define BIT64(n) (1ull << (n))

/*
 * What we can pass through from the kernel. LOG_ALL (26) needs dirty-log
 * support and ACCESS_PLATFORM (33) needs IOTLB forwarding, neither of which
 * we have; QEMU refuses to start when ACCESS_PLATFORM is offered.
 */
#define KERN_SUPPORTED_FEATURES                                                          \
	(BIT64(VIRTIO_VSOCK_F_SEQPACKET) | BIT64(VIRTIO_F_NOTIFY_ON_EMPTY) |             \
	 BIT64(VIRTIO_F_ANY_LAYOUT) | BIT64(VIRTIO_RING_F_INDIRECT_DESC) |               \
	 BIT64(VIRTIO_RING_F_EVENT_IDX) | BIT64(VIRTIO_F_VERSION_1))

#define KERN_CONFIG_SIZE 8u /* struct virtio_vsock_config: le64 guest_cid */

/* What program_ring() hands to the kernel. */
enum {
	PROG_NUM = 1u << 0,
	PROG_BASE = 1u << 1,
	PROG_ADDR = 1u << 2,
	PROG_FDS = 1u << 3,
	PROG_ALL = PROG_NUM | PROG_BASE | PROG_ADDR | PROG_FDS,
};

/* ------------------------------------------------------------------ */
/* The real device                                                     */

static int sys_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

static int sys_ioctl(int fd, unsigned long request, void *arg)
{
	int rc = ioctl(fd, request, arg);

	return rc < 0 ? -errno : rc;
}

static void sys_close(int fd)
{
	close(fd);
}

const struct kern_vhost_ops kern_vhost_sys = {
	.open = sys_open,
	.ioctl = sys_ioctl,
	.close = sys_close,
};

/* ------------------------------------------------------------------ */
/* ioctl helpers                                                       */

/* One ioctl; a failure is logged here, once, with the ioctl's name. */
static int vh_ioctl(struct kern_engine *k, unsigned long req, const char *name, void *arg)
{
	int rc;

	if (k->vhost_fd < 0)
		return -EBADF;
	rc = k->vh->ioctl(k->vhost_fd, req, arg);
	if (rc < 0) {
		log_err("%s: %s failed: %s", k->vhost_path, name, strerror(-rc));
		return rc;
	}
	/* control plane only: a handful per start, never per packet */
	log_debug("%s: %s", k->vhost_path, name);
	return 0;
}

#define VH(k, req, arg) vh_ioctl((k), (req), #req, (arg))

static void forget_programming(struct kern_engine *k)
{
	for (unsigned int i = 0; i < KERN_NRINGS; i++) {
		k->prog[i].valid = false;
		k->prog[i].based = false;
	}
}

static void close_fd(struct kern_engine *k)
{
	if (k->vhost_fd >= 0)
		k->vh->close(k->vhost_fd);
	k->vhost_fd = -1;
	k->running = false;
	forget_programming(k);
}

/* Turn an open() failure into something an operator can act on. */
static void explain_open_error(const char *path, int err)
{
	switch (err) {
	case -ENOENT:
		log_err("%s: no such device: load the vhost_vsock module (modprobe vhost_vsock) "
			"or pass --vhost-socket", path);
		break;
	case -EACCES:
	case -EPERM:
		log_err("%s: permission denied: run as a user that may open it (group or udev rule)",
			path);
		break;
	default:
		log_err("%s: cannot open: %s", path, strerror(-err));
		break;
	}
}

/* Open the device and read its features; on failure nothing stays open. */
static int open_device(struct kern_engine *k)
{
	uint64_t features = 0;
	int fd, rc;

	fd = k->vh->open(k->vhost_path);
	if (fd < 0) {
		explain_open_error(k->vhost_path, fd);
		return fd;
	}
	rc = k->vh->ioctl(fd, VHOST_GET_FEATURES, &features);
	if (rc < 0) {
		if (rc == -ENOTTY || rc == -EINVAL)
			log_err("%s: not a vhost-vsock device (VHOST_GET_FEATURES: %s)",
				k->vhost_path, strerror(-rc));
		else
			log_err("%s: VHOST_GET_FEATURES failed: %s", k->vhost_path, strerror(-rc));
		k->vh->close(fd);
		return rc;
	}
	k->kernel_features = features;
	k->vhost_fd = fd;
	return 0;
}

/* The fd for a hook; reopened lazily after a reset, never outside a session. */
static int ensure_fd(struct kern_engine *k)
{
	if (k->vhost_fd >= 0)
		return 0;
	if (!k->session) {
		log_err("%s: no front-end session: the vhost device is closed", k->vhost_path);
		return -ENODEV;
	}
	return open_device(k);
}

/*
 * The fd for a hook that needs the device set up. A fresh fd after a reset
 * is claimed again when the session still has an owner: RESET_DEVICE keeps
 * the owner, so no SET_OWNER will follow it (RESET_OWNER clears it, and
 * the front end's next SET_OWNER does the claim).
 */
static int dev_fd(struct vu_dev *dev)
{
	struct kern_engine *k = dev->priv;
	bool fresh = k->vhost_fd < 0;
	int rc = ensure_fd(k);

	if (rc < 0 || !fresh || !dev->owner)
		return rc;
	rc = VH(k, VHOST_SET_OWNER, NULL);
	if (rc < 0)
		close_fd(k); /* an fd nobody owns is useless: try again next time */
	return rc;
}

/* ------------------------------------------------------------------ */
/* Rings                                                               */

static bool ring_runnable(const struct vu_dev *dev, unsigned int i)
{
	const struct vu_vring *vr = &dev->vrings[i];

	return vu_vring_ready(vr) && vr->enabled && vr->started;
}

/* Start condition: rx and tx can run and there is memory to run them in. */
static bool can_run(const struct vu_dev *dev)
{
	return dev->mem.nregions > 0 && ring_runnable(dev, 0) && ring_runnable(dev, 1);
}

/*
 * Translate ring @i's front-end virtual addresses to daemon pointers, each
 * whole ring inside one region (split ring sizes, virtio 1.x §2.7; the
 * event-idx words count when EVENT_IDX was acked, as the kernel checks).
 */
static int ring_addr(const struct vu_dev *dev, const struct gmem *mem, unsigned int i,
		     struct vhost_vring_addr *out)
{
	const struct vu_vring *vr = &dev->vrings[i];
	uint64_t n = vr->num;
	uint64_t ev = (dev->features & BIT64(VIRTIO_RING_F_EVENT_IDX)) ? 2 : 0;
	void *desc = gmem_uva_ptr(mem, vr->addr.desc, 16 * n);
	void *avail = gmem_uva_ptr(mem, vr->addr.avail, 4 + 2 * n + ev);
	void *used = gmem_uva_ptr(mem, vr->addr.used, 4 + 8 * n + ev);

	if (!desc || !avail || !used) {
		log_err("%s: ring %u (size %u): %s ring at 0x%llx is not inside guest memory",
			dev->name, i, vr->num, !desc ? "descriptor" : !avail ? "available" : "used",
			(unsigned long long)(!desc ? vr->addr.desc :
					     !avail ? vr->addr.avail : vr->addr.used));
		return -EFAULT;
	}
	memset(out, 0, sizeof(*out));
	out->index = i;
	out->flags = 0; /* no LOG_ALL offered, so never VHOST_VRING_F_LOG */
	out->desc_user_addr = (uint64_t)(uintptr_t)desc;
	out->avail_user_addr = (uint64_t)(uintptr_t)avail;
	out->used_user_addr = (uint64_t)(uintptr_t)used;
	out->log_guest_addr = vr->addr.log;
	return 0;
}

static int set_ring_file(struct kern_engine *k, unsigned long req, const char *name,
			 unsigned int i, int fd)
{
	struct vhost_vring_file f = { .index = i, .fd = fd };

	return vh_ioctl(k, req, name, &f);
}

/* Kick, call and err eventfds; with @only_changed, those that differ from prog. */
static int set_ring_fds(struct kern_engine *k, const struct vu_vring *vr, unsigned int i,
			bool only_changed)
{
	const struct kern_ring_prog *p = &k->prog[i];
	int rc = 0;

	if (!only_changed || vr->kick_fd != p->kick_fd)
		rc = set_ring_file(k, VHOST_SET_VRING_KICK, "VHOST_SET_VRING_KICK", i, vr->kick_fd);
	if (rc == 0 && (!only_changed || vr->call_fd != p->call_fd))
		rc = set_ring_file(k, VHOST_SET_VRING_CALL, "VHOST_SET_VRING_CALL", i, vr->call_fd);
	if (rc == 0 && (!only_changed || vr->err_fd != p->err_fd))
		rc = set_ring_file(k, VHOST_SET_VRING_ERR, "VHOST_SET_VRING_ERR", i, vr->err_fd);
	return rc;
}

static void remember_ring(struct kern_engine *k, const struct vu_vring *vr, unsigned int i)
{
	struct kern_ring_prog *p = &k->prog[i];

	p->valid = true;
	p->num = vr->num;
	p->base = vr->base;
	p->base_gen = vr->base_gen;
	p->addr = vr->addr;
	p->kick_fd = vr->kick_fd;
	p->call_fd = vr->call_fd;
	p->err_fd = vr->err_fd;
}

/* Hand ring @i to the kernel (the parts in @what); the device must be stopped. */
static int program_ring(struct kern_engine *k, const struct vu_dev *dev, const struct gmem *mem,
			unsigned int i, unsigned int what)
{
	const struct vu_vring *vr = &dev->vrings[i];
	struct vhost_vring_state st = { .index = i };
	struct vhost_vring_addr a;
	int rc = 0;

	k->prog[i].valid = false;
	if (what & PROG_NUM) {
		st.num = vr->num;
		rc = VH(k, VHOST_SET_VRING_NUM, &st);
	}
	if (rc == 0 && (what & PROG_BASE)) {
		st.num = vr->base;
		rc = VH(k, VHOST_SET_VRING_BASE, &st);
		k->prog[i].based |= rc == 0;
	}
	if (rc == 0 && (what & PROG_ADDR)) {
		rc = ring_addr(dev, mem, i, &a);
		if (rc == 0)
			rc = VH(k, VHOST_SET_VRING_ADDR, &a);
	}
	if (rc == 0 && (what & PROG_FDS))
		rc = set_ring_fds(k, vr, i, false);
	if (rc == 0)
		remember_ring(k, vr, i);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                      */

/*
 * Make the kernel look at rx and tx once, as a guest kick would. vhost
 * drops a kick that arrives while its ring has no backend (before
 * SET_RUNNING(1), or while stopped), and starting only schedules the rx
 * work: a REQUEST the guest queued in that window would sit in tx until the
 * next kick, and with EVENT_IDX the driver does not kick again before the
 * device publishes a newer avail_event, so it would sit there for good.
 * A spurious kick costs the kernel one look at an empty ring.
 */
static void kick_rings(struct kern_engine *k)
{
	const uint64_t one = 1;

	for (unsigned int i = 0; i < KERN_NRINGS; i++) {
		int fd = k->prog[i].valid ? k->prog[i].kick_fd : -1;
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		if (fd < 0)
			continue;
		/* the front end's eventfd may be blocking: never wait on a full counter */
		if (poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
			log_warn("%s: ring %u: kick eventfd not writable; pending buffers wait for "
				 "the guest's next kick", k->vhost_path, i);
			continue;
		}
		if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			log_warn("%s: ring %u: cannot write the kick eventfd: %s", k->vhost_path,
				 i, strerror(errno));
		else
			log_debug("%s: ring %u kicked after the start", k->vhost_path, i);
	}
}

/* Every start, first or restart, is followed by a kick of both rings. */
static int set_running(struct kern_engine *k, int on)
{
	int rc = VH(k, VHOST_VSOCK_SET_RUNNING, &on);

	if (rc == 0)
		k->running = on != 0;
	if (rc == 0 && on)
		kick_rings(k);
	return rc;
}

/* Stop the device if it runs; @why goes to the info log unless NULL. */
static int stop_device(struct kern_engine *k, const char *name, const char *why)
{
	int rc;

	if (!k->running)
		return 0;
	rc = set_running(k, 0);
	if (rc == 0 && why)
		log_info("%s: device stopped: %s", name, why);
	return rc;
}

static int set_guest_cid(struct kern_engine *k, const char *name)
{
	uint64_t cid = k->cid;
	int rc;

	if (k->vhost_fd < 0)
		return -EBADF;
	rc = k->vh->ioctl(k->vhost_fd, VHOST_VSOCK_SET_GUEST_CID, &cid);
	if (rc == -EADDRINUSE)
		log_err("%s: guest CID %llu is already in use by another vhost-vsock device "
			"(or is this host's own CID)", name, (unsigned long long)cid);
	else if (rc < 0)
		log_err("%s: VHOST_VSOCK_SET_GUEST_CID %llu failed: %s", name,
			(unsigned long long)cid, strerror(-rc));
	return rc;
}

static int check_kick_fds(const struct vu_dev *dev)
{
	for (unsigned int i = 0; i < KERN_NRINGS; i++) {
		/* the kernel cannot poll a ring: without a kick fd it never runs */
		if (dev->vrings[i].kick_fd < 0) {
			log_err("%s: ring %u has no kick eventfd; the kernel engine needs one",
				dev->name, i);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The kernel keeps a ring's position across a stop on the same fd. A
 * disable/enable cycle must resume there, so the front end's base is given
 * only when it sent one since the ring was last programmed: restarting from
 * a stale base makes the kernel re-read old descriptors and stall.
 */
static unsigned int start_what(const struct kern_engine *k, const struct vu_dev *dev,
			       unsigned int i)
{
	const struct kern_ring_prog *p = &k->prog[i];

	if (p->based && p->base_gen == dev->vrings[i].base_gen)
		return PROG_ALL & ~PROG_BASE;
	return PROG_ALL;
}

/*
 * Full start from what the front end configured: both rings programmed
 * from scratch (including the base it gave), then the CID, then running.
 * A device without a CID would run and drop every packet (REAL-PEERS §7.7),
 * so a CID failure is a start failure.
 */
static int start_device(struct kern_engine *k, const struct vu_dev *dev)
{
	const struct vu_vring *rx = &dev->vrings[0], *tx = &dev->vrings[1];
	int rc = check_kick_fds(dev);

	for (unsigned int i = 0; rc == 0 && i < KERN_NRINGS; i++)
		rc = program_ring(k, dev, &dev->mem, i, start_what(k, dev, i));
	if (rc == 0)
		rc = set_guest_cid(k, dev->name);
	if (rc == 0)
		rc = set_running(k, 1);
	if (rc < 0)
		return rc;
	if (rx->num == tx->num)
		log_info("%s: device started: guest CID %llu, rx/tx size %u", dev->name,
			 (unsigned long long)k->cid, rx->num);
	else
		log_info("%s: device started: guest CID %llu, rx size %u, tx size %u", dev->name,
			 (unsigned long long)k->cid, rx->num, tx->num);
	return 0;
}

/* What the front end changed on running ring @i since it was programmed. */
static unsigned int ring_changes(const struct kern_engine *k, const struct vu_vring *vr,
				 unsigned int i)
{
	const struct kern_ring_prog *p = &k->prog[i];
	unsigned int what = 0;

	if (!p->valid)
		return PROG_ALL;
	if (vr->num != p->num)
		what |= PROG_NUM | PROG_ADDR; /* the ring sizes change with num */
	if (vr->base_gen != p->base_gen)
		what |= PROG_BASE;
	if (memcmp(&vr->addr, &p->addr, sizeof(p->addr)) != 0)
		what |= PROG_ADDR;
	if (vr->kick_fd != p->kick_fd || vr->call_fd != p->call_fd || vr->err_fd != p->err_fd)
		what |= PROG_FDS;
	return what;
}

/*
 * Running ring @i changed. New eventfds are swapped live; anything else
 * needs the kernel stopped (NUM/BASE give EBUSY while running).
 */
static int update_running_ring(struct kern_engine *k, const struct vu_dev *dev, unsigned int i)
{
	const struct vu_vring *vr = &dev->vrings[i];
	unsigned int what = ring_changes(k, vr, i);
	int rc;

	if (what == 0)
		return 0;
	if (what == PROG_FDS) {
		rc = check_kick_fds(dev);
		if (rc == 0)
			rc = set_ring_fds(k, vr, i, true);
		if (rc == 0)
			remember_ring(k, vr, i);
		return rc;
	}
	log_info("%s: ring %u re-configured while running: restarting the device", dev->name, i);
	rc = stop_device(k, dev->name, NULL);
	if (rc == 0)
		rc = check_kick_fds(dev);
	if (rc == 0)
		rc = program_ring(k, dev, &dev->mem, i, what);
	if (rc == 0)
		rc = set_running(k, 1);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Memory table                                                        */

/* VHOST_SET_MEM_TABLE with the daemon's own pointers for each region. */
static int set_kernel_mem(struct kern_engine *k, const struct gmem *mem)
{
	struct vhost_memory *vm;
	int rc;

	vm = calloc(1, sizeof(*vm) + (size_t)mem->nregions * sizeof(vm->regions[0]));
	if (!vm) {
		log_err("%s: out of memory for the memory table", k->vhost_path);
		return -ENOMEM;
	}
	vm->nregions = mem->nregions;
	for (unsigned int i = 0; i < mem->nregions; i++) {
		vm->regions[i].guest_phys_addr = mem->regions[i].gpa;
		vm->regions[i].memory_size = mem->regions[i].size;
		vm->regions[i].userspace_addr = (uint64_t)(uintptr_t)mem->regions[i].host;
	}
	rc = VH(k, VHOST_SET_MEM_TABLE, vm);
	free(vm);
	return rc;
}

/*
 * Moving a running device to @new_mem. Everything is translated first, so
 * a ring that falls outside the new table leaves the device untouched on
 * the old one. After the new table is in, any failure puts the old table
 * back and leaves the device stopped: the layer unmaps @new_mem when we
 * fail, and the kernel must not be left holding it.
 */
static int move_running(struct kern_engine *k, const struct vu_dev *dev,
			const struct gmem *new_mem)
{
	struct vhost_vring_addr a[KERN_NRINGS];
	int rc = 0;

	for (unsigned int i = 0; rc == 0 && i < KERN_NRINGS; i++)
		rc = ring_addr(dev, new_mem, i, &a[i]);
	if (rc == 0)
		rc = stop_device(k, dev->name, NULL);
	if (rc < 0)
		return rc;
	rc = set_kernel_mem(k, new_mem);
	if (rc < 0)
		goto restart_old; /* the kernel kept the old table */
	for (unsigned int i = 0; rc == 0 && i < KERN_NRINGS; i++)
		rc = VH(k, VHOST_SET_VRING_ADDR, &a[i]);
	if (rc == 0)
		rc = set_running(k, 1);
	if (rc == 0) {
		log_info("%s: device moved to a new memory table (%u regions)", dev->name,
			 new_mem->nregions);
		return 0;
	}
	if (set_kernel_mem(k, &dev->mem) < 0)
		log_err("%s: could not put the old memory table back", dev->name);
	log_warn("%s: device stopped: new memory table refused", dev->name);
	return rc;

restart_old:
	if (set_running(k, 1) < 0)
		log_warn("%s: device stopped: could not restart on the old memory table", dev->name);
	return rc;
}

/* ------------------------------------------------------------------ */
/* vhost-user device hooks                                             */

static uint64_t kern_get_features(struct vu_dev *dev)
{
	struct kern_engine *k = dev->priv;

	return k->kernel_features & KERN_SUPPORTED_FEATURES;
}

static int kern_set_owner(struct vu_dev *dev)
{
	struct kern_engine *k = dev->priv;
	int rc = ensure_fd(k);

	return rc < 0 ? rc : VH(k, VHOST_SET_OWNER, NULL);
}

static int kern_set_features(struct vu_dev *dev, uint64_t features)
{
	struct kern_engine *k = dev->priv;
	uint64_t extra = features & ~kern_get_features(dev);
	int rc;

	if (extra) {
		log_err("%s: front end acked features 0x%llx that were not offered", dev->name,
			(unsigned long long)extra);
		return -EINVAL;
	}
	rc = dev_fd(dev);
	return rc < 0 ? rc : VH(k, VHOST_SET_FEATURES, &features);
}

static int kern_set_mem_table(struct vu_dev *dev, const struct gmem *new_mem)
{
	struct kern_engine *k = dev->priv;
	int rc = dev_fd(dev);

	if (rc < 0)
		return rc;
	if (k->running)
		return move_running(k, dev, new_mem);
	/* stopped: ring addresses are translated again at the next start */
	return set_kernel_mem(k, new_mem);
}

static int kern_ring_changed(struct vu_dev *dev, unsigned int index)
{
	struct kern_engine *k = dev->priv;
	int rc;

	if (index >= KERN_NRINGS)
		return 0; /* the event queue is ours; the kernel has only rx and tx */
	if (k->running) {
		if (!can_run(dev))
			return stop_device(k, dev->name, "rx or tx ring no longer runnable");
		return update_running_ring(k, dev, index);
	}
	if (!can_run(dev))
		return 0;
	rc = dev_fd(dev);
	return rc < 0 ? rc : start_device(k, dev);
}

static int kern_vring_changed(struct vu_dev *dev, unsigned int index)
{
	struct kern_engine *k = dev->priv;
	int rc;

	vsock_event_judge(dev, &k->events, index);
	rc = kern_ring_changed(dev, index);
	if (rc == 0)
		vsock_event_reset_if_reattached(dev, &k->events);
	return rc;
}

static int kern_vring_stop(struct vu_dev *dev, unsigned int index, uint32_t *base)
{
	struct kern_engine *k = dev->priv;
	struct vhost_vring_state st = { .index = index };
	int rc;

	if (index >= VU_MAX_QUEUES) {
		log_err("%s: GET_VRING_BASE: no ring %u", dev->name, index);
		return -EINVAL;
	}
	if (index >= KERN_NRINGS) {
		/* the event queue: rx and tx keep running */
		*base = dev->vrings[index].base;
		return 0;
	}
	/* the kernel's GET_VRING_BASE only reads the index: stop it first */
	rc = stop_device(k, dev->name, "GET_VRING_BASE");
	if (rc == 0 && !k->prog[index].based) {
		*base = dev->vrings[index].base; /* the kernel never had this ring */
		return 0;
	}
	if (rc == 0)
		rc = VH(k, VHOST_GET_VRING_BASE, &st);
	if (rc == 0)
		*base = st.num;
	return rc;
}

static int kern_get_config(struct vu_dev *dev, uint32_t offset, uint32_t size, uint8_t *out)
{
	struct kern_engine *k = dev->priv;
	uint8_t cfg[KERN_CONFIG_SIZE];

	if (offset >= KERN_CONFIG_SIZE || size == 0 || size > KERN_CONFIG_SIZE - offset) {
		log_err("%s: GET_CONFIG offset %u size %u is outside the %u-byte config",
			dev->name, offset, size, KERN_CONFIG_SIZE);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < KERN_CONFIG_SIZE; i++)
		cfg[i] = (uint8_t)(k->cid >> (8 * i)); /* le64 guest_cid */
	memcpy(out, cfg + offset, size);
	return 0;
}

/*
 * vhost-vsock has no RESET_OWNER: stop, then drop the fd (freeing the CID
 * and the owner binding). The next hook that needs the device reopens it.
 */
static void kern_reset(struct vu_dev *dev)
{
	struct kern_engine *k = dev->priv;

	memset(&k->events, 0, sizeof(k->events));
	if (k->vhost_fd < 0)
		return;
	if (stop_device(k, dev->name, "reset") < 0)
		log_warn("%s: closing the vhost device without a clean stop", dev->name);
	close_fd(k);
}

const struct vu_dev_ops kern_dev_ops = {
	.nqueues = KERN_NQUEUES,
	.max_queue_size = KERN_MAX_QUEUE_SIZE,
	.protocol_features = BIT64(VU_PROTOCOL_F_MQ) | BIT64(VU_PROTOCOL_F_REPLY_ACK) |
			     BIT64(VU_PROTOCOL_F_CONFIG) | BIT64(VU_PROTOCOL_F_RESET_DEVICE) |
			     BIT64(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
	.get_features = kern_get_features,
	.set_owner = kern_set_owner,
	.set_features = kern_set_features,
	.set_mem_table = kern_set_mem_table,
	.vring_changed = kern_vring_changed,
	.vring_stop = kern_vring_stop,
	.get_config = kern_get_config,
	.reset = kern_reset,
};

/* ------------------------------------------------------------------ */
/* Engine life cycle                                                   */

void kern_engine_init(struct kern_engine *k, const struct kern_vhost_ops *vh,
		      const char *vhost_path, uint64_t cid)
{
	memset(k, 0, sizeof(*k));
	k->vh = vh;
	k->vhost_path = vhost_path;
	k->cid = cid;
	k->vhost_fd = -1;
}

int kern_engine_probe(struct kern_engine *k)
{
	int rc;

	if (k->vhost_fd >= 0)
		return 0;
	rc = open_device(k);
	if (rc < 0)
		return rc;
	log_debug("%s: vhost-vsock features 0x%llx", k->vhost_path,
		  (unsigned long long)k->kernel_features);
	close_fd(k);
	return 0;
}

int kern_engine_open(struct kern_engine *k)
{
	int rc;

	if (k->vhost_fd >= 0) {
		log_warn("%s: previous session was not closed; closing it now", k->vhost_path);
		kern_engine_close(k);
	}
	k->session = true;
	memset(&k->events, 0, sizeof(k->events));
	rc = open_device(k);
	if (rc < 0)
		k->session = false;
	return rc;
}

void kern_engine_close(struct kern_engine *k)
{
	if (k->vhost_fd >= 0 && stop_device(k, k->vhost_path, "front end gone") < 0)
		log_warn("%s: closing the vhost device without a clean stop", k->vhost_path);
	close_fd(k);
	k->session = false;
}
