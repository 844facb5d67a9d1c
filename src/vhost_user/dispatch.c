// SPDX-License-Identifier: MIT
/*
 * vhost-user session state and the request dispatcher: one static handler
 * per request, reached from a flat switch; REPLY_ACK answers are added in
 * one place (vu_dev_handle), never by the handlers.
 *
 * Handlers return 0 or a negative errno and log their own refusals, naming
 * the request. A request that owes a reply of its own (GET_*) fills @reply;
 * if it fails it can only be reported by ending the session, except
 * GET_CONFIG whose error form (config size 0) is a reply. Any other request
 * is acked with u64 0/1 when REPLY_ACK was negotiated and NEED_REPLY is set,
 * otherwise a failure ends the session.
 *
 * Invariants: a ring's fds are -1 or owned by the ring; a message's fds are
 * taken by the handler that keeps them and closed by vu_dev_handle() on
 * every other path. A ring with num != 0 and addr_set has desc/avail/used
 * inside dev->mem for their whole size and with their alignment (checked on
 * SET_VRING_ADDR, SET_VRING_NUM and SET_MEM_TABLE). dev->mem is replaced
 * only after the device accepted the new table.
 *
 * Limits: split rings only (SET_VRING_BASE ≤ 0xFFFF); no dirty logging,
 * IOTLB, inflight, postcopy, memory slots, status or back-end channel.
 */
#include "vhost_user/dispatch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost_user/msg.h"

#define VU_F_PROTOCOL_BIT (1ull << VU_F_PROTOCOL_FEATURES)
#define VU_VIRTIO_F_EVENT_IDX_BIT (1ull << 29)
#define VU_PROTO_BIT(f) (1ull << (f))
#define VU_VIRTIO_STATUS_FAILED 0x80u
/* virtio spec "Virtqueues": a split queue has at most 32768 entries */
#define VU_VIRTQ_MAX_SIZE 32768u
/* split ring: the whole 16-bit avail index, free-running */
#define VU_VRING_BASE_MAX 0xffffu

_Static_assert(GMEM_MAX_REGIONS >= VU_MAX_MEM_REGIONS, "a full memory table must fit a gmem");

typedef int (*vu_handler)(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply);

static unsigned int dev_nqueues(const struct vu_dev *dev)
{
	return dev->ops->nqueues < VU_MAX_QUEUES ? dev->ops->nqueues : VU_MAX_QUEUES;
}

static const char *req_name(const struct vu_msg *msg)
{
	return vu_request_name(msg->hdr.request);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void vring_init(struct vu_vring *vr)
{
	memset(vr, 0, sizeof(*vr));
	vr->kick_fd = -1;
	vr->call_fd = -1;
	vr->err_fd = -1;
}

static void vring_reset(struct vu_vring *vr)
{
	close_fd(&vr->kick_fd);
	close_fd(&vr->call_fd);
	close_fd(&vr->err_fd);
	vring_init(vr);
}

static bool vring_configured(const struct vu_vring *vr)
{
	return vr->num || vr->base || vr->addr_set || vr->kick_set || vr->call_fd >= 0 ||
	       vr->err_fd >= 0 || vr->enabled;
}

static int vring_notify(struct vu_dev *dev, unsigned int index)
{
	return dev->ops->vring_changed ? dev->ops->vring_changed(dev, index) : 0;
}

/* Ring @index of a request, or NULL (logged) when the device has no such ring. */
static struct vu_vring *vring_at(struct vu_dev *dev, const struct vu_msg *msg, uint64_t index)
{
	if (index >= dev_nqueues(dev)) {
		log_warn("%s: %s: ring %" PRIu64 " does not exist (the device has %u)", dev->name,
			 req_name(msg), index, dev_nqueues(dev));
		return NULL;
	}
	return &dev->vrings[index];
}

/*
 * virtio spec "Split Virtqueues" sizes and alignments; each part must lie
 * whole inside one region of @mem, not just its first byte.
 * Return: NULL when the ring fits, else the name of the offending part.
 */
static const char *vring_misfit(const struct vu_dev *dev, const struct gmem *mem,
				const struct vu_vring_addr *a, uint32_t num)
{
	uint64_t event = (dev->features & VU_VIRTIO_F_EVENT_IDX_BIT) ? 2 : 0;
	const struct {
		const char *what;
		uint64_t uva, len, align;
	} part[] = {
		{ "descriptor table", a->desc, 16ull * num, 16 },
		{ "available ring", a->avail, 4 + 2ull * num + event, 2 },
		{ "used ring", a->used, 4 + 8ull * num + event, 4 },
	};

	for (unsigned int i = 0; i < sizeof(part) / sizeof(part[0]); i++) {
		if (part[i].uva % part[i].align || !gmem_uva_ptr(mem, part[i].uva, part[i].len))
			return part[i].what;
	}
	return NULL;
}

static void reply_u64(struct vu_msg *reply, uint64_t value)
{
	reply->hdr.size = sizeof(uint64_t);
	reply->payload.u64 = value;
}

static uint64_t offered_features(struct vu_dev *dev)
{
	uint64_t f = dev->ops->get_features ? dev->ops->get_features(dev) : 0;

	return f | VU_F_PROTOCOL_BIT;
}

static int handle_get_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	reply_u64(reply, offered_features(dev));
	return 0;
}

/* Spec: without PROTOCOL_FEATURES acked, rings are enabled from the start. */
static int enable_all_rings(struct vu_dev *dev)
{
	int rc = 0;

	for (unsigned int i = 0; i < dev_nqueues(dev); i++) {
		struct vu_vring *vr = &dev->vrings[i];
		bool tell = vring_configured(vr);
		int r;

		if (vr->enabled)
			continue;
		vr->enabled = true;
		r = tell ? vring_notify(dev, i) : 0;
		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}

/*
 * EVENT_IDX adds 2 bytes to the avail and used rings, so addresses checked
 * before it was acked may no longer fit guest memory. A running ring that
 * would stick out refuses the features; a stopped one forgets its
 * addresses (not ready until a new SET_VRING_ADDR), as after SET_MEM_TABLE.
 */
static int rings_fit_features(struct vu_dev *dev, uint64_t acked)
{
	uint64_t old = dev->features;
	int rc = 0;

	dev->features = acked;
	for (unsigned int i = 0; i < dev_nqueues(dev) && rc == 0; i++) {
		struct vu_vring *vr = &dev->vrings[i];
		const char *bad;

		if (!vr->addr_set || !vr->num)
			continue;
		bad = vring_misfit(dev, &dev->mem, &vr->addr, vr->num);
		if (bad && vr->started) {
			log_warn("%s: SET_FEATURES: with these features the %s of running ring %u "
				 "is outside guest memory", dev->name, bad, i);
			rc = -EFAULT;
		} else if (bad) {
			log_info("%s: SET_FEATURES: ring %u addresses dropped; its %s no longer fits",
				 dev->name, i, bad);
			vr->addr_set = false;
		}
	}
	dev->features = old;
	return rc;
}

static int handle_set_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint64_t acked = msg->payload.u64;
	uint64_t offered = offered_features(dev);
	int rc;

	(void)reply;
	if (acked & ~offered) {
		log_warn("%s: SET_FEATURES: 0x%" PRIx64 " acks bits never offered (offered 0x%" PRIx64 ")",
			 dev->name, acked, offered);
		return -EINVAL;
	}
	rc = rings_fit_features(dev, acked);
	if (rc < 0)
		return rc;
	if (dev->ops->set_features) {
		rc = dev->ops->set_features(dev, acked & ~VU_F_PROTOCOL_BIT);
		if (rc < 0)
			return rc;
	}
	dev->features = acked;
	dev->features_set = true;
	if (!(acked & VU_F_PROTOCOL_BIT))
		return enable_all_rings(dev);
	return 0;
}

/*
 * What this session offers: the device's protocol features and the ones the
 * layer implements itself (STATUS). Memory slots need regions passed as fds:
 * on a transport that shares memory otherwise (virtio-vhost-user lays the
 * table out in one window), one region at a time has no defined place.
 */
static uint64_t offered_protocol_features(const struct vu_dev *dev)
{
	uint64_t offered = dev->ops->protocol_features | VU_PROTO_BIT(VU_PROTOCOL_F_STATUS);

	if (dev->tp.ops && dev->tp.ops->map_mem)
		offered &= ~VU_PROTO_BIT(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	return offered;
}

static bool negotiated(const struct vu_dev *dev, const struct vu_msg *msg, unsigned int feature)
{
	if (dev->protocol_features & VU_PROTO_BIT(feature))
		return true;
	log_warn("%s: %s: its protocol feature (bit %u) was not negotiated", dev->name,
		 req_name(msg), feature);
	return false;
}

static int handle_get_protocol_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	reply_u64(reply, offered_protocol_features(dev));
	return 0;
}

static int handle_set_protocol_features(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const uint64_t inband_needs = VU_PROTO_BIT(VU_PROTOCOL_F_BACKEND_REQ) |
				      VU_PROTO_BIT(VU_PROTOCOL_F_REPLY_ACK);
	uint64_t acked = msg->payload.u64;
	uint64_t offered = offered_protocol_features(dev);

	(void)reply;
	if (acked & ~offered) {
		log_warn("%s: SET_PROTOCOL_FEATURES: 0x%" PRIx64 " acks bits never offered (offered 0x%" PRIx64 ")",
			 dev->name, acked, offered);
		return -EINVAL;
	}
	/* spec: INBAND_NOTIFICATIONS is an error without BACKEND_REQ and REPLY_ACK */
	if ((acked & VU_PROTO_BIT(VU_PROTOCOL_F_INBAND_NOTIFICATIONS)) &&
	    (acked & inband_needs) != inband_needs) {
		log_warn("%s: SET_PROTOCOL_FEATURES: INBAND_NOTIFICATIONS without BACKEND_REQ and REPLY_ACK",
			 dev->name);
		return -EINVAL;
	}
	dev->protocol_features = acked;
	dev->reply_ack = acked & VU_PROTO_BIT(VU_PROTOCOL_F_REPLY_ACK);
	return 0;
}

static int handle_get_queue_num(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	if (!(dev->ops->protocol_features & VU_PROTO_BIT(VU_PROTOCOL_F_MQ))) {
		log_warn("%s: GET_QUEUE_NUM: protocol feature MQ was not offered", dev->name);
		return -EOPNOTSUPP;
	}
	reply_u64(reply, dev_nqueues(dev));
	return 0;
}

static int handle_set_owner(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	int rc;

	(void)msg;
	(void)reply;
	if (dev->owner) {
		log_warn("%s: SET_OWNER: the session already has an owner", dev->name);
		return -EBUSY;
	}
	if (dev->ops->set_owner) {
		rc = dev->ops->set_owner(dev);
		if (rc < 0)
			return rc;
	}
	dev->owner = true;
	return 0;
}

/* Back to the state after SET_OWNER: device stopped, rings, memory and features gone. */
static void session_reset(struct vu_dev *dev)
{
	if (dev->ops->reset)
		dev->ops->reset(dev);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		vring_reset(&dev->vrings[i]);
	gmem_unmap(&dev->mem);
	dev->features = 0;
	dev->features_set = false;
	dev->status = 0;
}

/*
 * RESET_OWNER (deprecated) and RESET_DEVICE. Protocol features are kept:
 * they belong to the connection, and QEMU does not negotiate them again.
 */
static int handle_reset(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)reply;
	log_info("%s: %s: resetting the device", dev->name, req_name(msg));
	session_reset(dev);
	if (msg->hdr.request == VU_REQ_RESET_OWNER)
		dev->owner = false;
	return 0;
}

/* Rings the device is running must stay reachable in a new table. */
static int started_rings_fit(struct vu_dev *dev, const struct gmem *mem, const char *what)
{
	for (unsigned int i = 0; i < dev_nqueues(dev); i++) {
		const struct vu_vring *vr = &dev->vrings[i];
		const char *bad;

		if (!vr->started || !vr->addr_set || !vr->num)
			continue;
		bad = vring_misfit(dev, mem, &vr->addr, vr->num);
		if (bad) {
			log_warn("%s: %s: the %s of running ring %u is outside the new table",
				 dev->name, what, bad, i);
			return -EFAULT;
		}
	}
	return 0;
}

/* A stopped ring's old addresses may not survive a new table: ask for new ones. */
static void forget_stale_addrs(struct vu_dev *dev)
{
	for (unsigned int i = 0; i < dev_nqueues(dev); i++) {
		struct vu_vring *vr = &dev->vrings[i];

		if (vr->addr_set && vr->num && vring_misfit(dev, &dev->mem, &vr->addr, vr->num)) {
			log_info("%s: SET_MEM_TABLE: ring %u addresses dropped; the new table lacks them",
				 dev->name, i);
			vr->addr_set = false;
		}
	}
}

static int handle_set_mem_table(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	struct gmem_region_desc descs[VU_MAX_MEM_REGIONS];
	const struct vu_mem_table *t = &msg->payload.mem;
	struct gmem mem;
	int rc;

	(void)reply;
	for (unsigned int i = 0; i < t->nregions; i++) {
		descs[i] = (struct gmem_region_desc){
			.gpa = t->regions[i].guest_phys_addr,
			.size = t->regions[i].memory_size,
			.uva = t->regions[i].userspace_addr,
			.mmap_offset = t->regions[i].mmap_offset,
		};
	}
	gmem_init(&mem);
	/* the fds are closed by vu_dev_handle(): the mappings keep the files */
	if (msg->nfds == 0 && dev->tp.ops && dev->tp.ops->map_mem)
		rc = dev->tp.ops->map_mem(dev->tp.priv, &mem, descs, t->nregions);
	else
		rc = gmem_map(&mem, descs, t->nregions, msg->fds);
	if (rc < 0) {
		log_warn("%s: SET_MEM_TABLE: refusing the %u-region table: %s", dev->name,
			 t->nregions, strerror(-rc));
		return rc;
	}
	rc = started_rings_fit(dev, &mem, "SET_MEM_TABLE");
	if (rc == 0 && dev->ops->set_mem_table)
		rc = dev->ops->set_mem_table(dev, &mem);
	if (rc < 0) {
		gmem_unmap(&mem);
		return rc;
	}
	gmem_unmap(&dev->mem);
	dev->mem = mem;
	forget_stale_addrs(dev);
	return 0;
}

static int handle_get_max_mem_slots(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	if (!negotiated(dev, msg, VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -EOPNOTSUPP;
	reply_u64(reply, GMEM_MAX_REGIONS);
	return 0;
}

static struct gmem_region_desc single_region_desc(const struct vu_msg *msg)
{
	const struct vu_mem_region *r = &msg->payload.region.region;

	return (struct gmem_region_desc){
		.gpa = r->guest_phys_addr,
		.size = r->memory_size,
		.uva = r->userspace_addr,
		.mmap_offset = r->mmap_offset,
	};
}

/*
 * ADD_MEM_REG: the table grows by one region; the others keep their
 * mappings, so rings and buffers the device is using stay where they are.
 */
static int handle_add_mem_reg(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct gmem_region_desc d = single_region_desc(msg);
	struct gmem next = dev->mem;
	int rc;

	(void)reply;
	if (!negotiated(dev, msg, VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -EOPNOTSUPP;
	rc = gmem_add(&next, &d, msg->fds[0]);
	if (rc < 0) {
		log_warn("%s: ADD_MEM_REG: refusing region gpa 0x%" PRIx64 " size 0x%" PRIx64 ": %s",
			 dev->name, d.gpa, d.size, strerror(-rc));
		return rc;
	}
	rc = dev->ops->set_mem_table ? dev->ops->set_mem_table(dev, &next) : 0;
	if (rc < 0) {
		gmem_region_unmap(&next.regions[next.nregions - 1]);
		return rc;
	}
	dev->mem = next;
	log_info("%s: ADD_MEM_REG: gpa 0x%" PRIx64 " size 0x%" PRIx64 " mapped (%u regions)",
		 dev->name, d.gpa, d.size, dev->mem.nregions);
	return 0;
}

/*
 * REM_MEM_REG: a region still holding a running ring's structures is
 * refused, so nothing the device is using is ever unmapped under it; the
 * region is unmapped only once the device has moved to the smaller table.
 */
static int handle_rem_mem_reg(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct gmem_region_desc d = single_region_desc(msg);
	struct gmem next = dev->mem;
	struct gmem_region gone;
	int rc;

	(void)reply;
	if (!negotiated(dev, msg, VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return -EOPNOTSUPP;
	if (gmem_take(&next, d.gpa, d.uva, d.size, &gone) < 0) {
		log_warn("%s: REM_MEM_REG: no region gpa 0x%" PRIx64 " uva 0x%" PRIx64 " size 0x%" PRIx64,
			 dev->name, d.gpa, d.uva, d.size);
		return -ENOENT;
	}
	if (started_rings_fit(dev, &next, "REM_MEM_REG") < 0)
		return -EBUSY; /* the region stays mapped and in the table */
	rc = dev->ops->set_mem_table ? dev->ops->set_mem_table(dev, &next) : 0;
	if (rc < 0)
		return rc;
	dev->mem = next;
	gmem_region_unmap(&gone);
	forget_stale_addrs(dev);
	log_info("%s: REM_MEM_REG: gpa 0x%" PRIx64 " size 0x%" PRIx64 " unmapped (%u regions)",
		 dev->name, d.gpa, d.size, dev->mem.nregions);
	return 0;
}

/*
 * SET_STATUS / GET_STATUS: the virtio device status as the front end's
 * guest driver set it. Rings start and stop through the ring messages, as
 * without STATUS (QEMU sends both), so the status is kept and reported;
 * a driver that gave up (FAILED) is worth a line in the log.
 */
/* The virtio status bits set in @status, in words (virtio 1.2 §2.1). */
static const char *status_words(uint8_t status)
{
	static const char *const names[8] = {
		"ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK",
		"bit 4", "bit 5", "DEVICE_NEEDS_RESET", "FAILED",
	};
	static __thread char buf[96];
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned int i = 0; i < 8; i++) {
		if (status & (1u << i))
			off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", off ? " " : "",
						names[i]);
	}
	return off ? buf : "reset";
}

static int handle_set_status(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint64_t status = msg->payload.u64;

	(void)reply;
	if (!negotiated(dev, msg, VU_PROTOCOL_F_STATUS))
		return -EOPNOTSUPP;
	if (status > 0xff) {
		log_warn("%s: SET_STATUS: 0x%" PRIx64 " is not a virtio status byte", dev->name, status);
		return -EINVAL;
	}
	if ((status & VU_VIRTIO_STATUS_FAILED) && !(dev->status & VU_VIRTIO_STATUS_FAILED))
		log_warn("%s: SET_STATUS: the guest driver marked the device FAILED", dev->name);
	/* a few per session: each change says how far the guest driver got */
	if (status != dev->status)
		log_info("%s: SET_STATUS: 0x%02" PRIx64 " (%s)", dev->name, status,
			 status_words((uint8_t)status));
	dev->status = (uint8_t)status;
	return 0;
}

static int handle_get_status(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	if (!negotiated(dev, msg, VU_PROTOCOL_F_STATUS))
		return -EOPNOTSUPP;
	reply_u64(reply, dev->status);
	return 0;
}

static int handle_set_vring_num(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_vring_state *s = &msg->payload.state;
	struct vu_vring *vr = vring_at(dev, msg, s->index);
	uint32_t max = dev->ops->max_queue_size;
	const char *bad;

	(void)reply;
	if (!vr)
		return -EINVAL;
	if (max == 0 || max > VU_VIRTQ_MAX_SIZE)
		max = VU_VIRTQ_MAX_SIZE;
	if (s->num == 0 || (s->num & (s->num - 1)) || s->num > max) {
		log_warn("%s: SET_VRING_NUM: ring %u size %u is not a power of two in 1..%u",
			 dev->name, s->index, s->num, max);
		return -EINVAL;
	}
	bad = vr->addr_set ? vring_misfit(dev, &dev->mem, &vr->addr, s->num) : NULL;
	if (bad) {
		log_warn("%s: SET_VRING_NUM: with %u entries the %s of ring %u leaves guest memory",
			 dev->name, s->num, bad, s->index);
		return -EFAULT;
	}
	vr->num = s->num;
	return vring_notify(dev, s->index);
}

static int handle_set_vring_base(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_vring_state *s = &msg->payload.state;
	struct vu_vring *vr = vring_at(dev, msg, s->index);

	(void)reply;
	if (!vr)
		return -EINVAL;
	/* spec: a free-running index, not bounded by the queue size */
	if (s->num > VU_VRING_BASE_MAX) {
		log_warn("%s: SET_VRING_BASE: ring %u base 0x%x does not fit a split ring's 16 bits",
			 dev->name, s->index, s->num);
		return -EINVAL;
	}
	vr->base = (uint16_t)s->num;
	vr->base_gen++;
	return vring_notify(dev, s->index);
}

static int handle_set_vring_addr(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_vring_addr *a = &msg->payload.addr;
	struct vu_vring *vr = vring_at(dev, msg, a->index);
	const char *bad;

	(void)reply;
	if (!vr)
		return -EINVAL;
	if (a->flags & ~VU_VRING_F_LOG) {
		log_warn("%s: SET_VRING_ADDR: ring %u flags 0x%x (only LOG is defined)", dev->name,
			 a->index, a->flags);
		return -EINVAL;
	}
	/* without a size the ring cannot be measured yet; SET_VRING_NUM checks it */
	bad = vr->num ? vring_misfit(dev, &dev->mem, a, vr->num) : NULL;
	if (bad) {
		log_warn("%s: SET_VRING_ADDR: ring %u %s is misaligned or not inside one memory region",
			 dev->name, a->index, bad);
		return -EFAULT;
	}
	vr->addr = *a;
	vr->addr_set = true;
	return vring_notify(dev, a->index);
}

/*
 * Whether @fd can serve as a ring's eventfd: an anonymous inode (no file
 * type bits), as eventfds are. That keeps out pipes, FIFOs, sockets,
 * terminals and files, on which our 8-byte reads and writes could block or
 * report end-of-file forever; the other anonymous kinds (timerfd, epoll...)
 * fail those calls at once, which the engines handle. Checked with fstat()
 * alone, so the sandbox needs nothing more (no /proc lookup).
 */
static bool is_eventfd(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == 0;
}

/*
 * SET_VRING_KICK / CALL / ERR: replace the ring's eventfd (or "none").
 * Spec "Ring states"/kernel vhost: these must be eventfds. Anything else is
 * refused here, for both engines: a pipe or socket the daemon writes call
 * notifications to blocks its thread once the front end stops reading,
 * and one it watches for kicks can report end-of-file forever.
 */
static int handle_vring_fd(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint64_t v = msg->payload.u64;
	unsigned int index = (unsigned int)(v & VU_VRING_IDX_MASK);
	struct vu_vring *vr;
	int *slot;

	(void)reply;
	if (v & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD_MASK)) {
		log_warn("%s: %s: reserved bits set in 0x%" PRIx64, dev->name, req_name(msg), v);
		return -EINVAL;
	}
	vr = vring_at(dev, msg, index);
	if (!vr)
		return -EINVAL;
	if (!(v & VU_VRING_NOFD_MASK) && !is_eventfd(msg->fds[0])) {
		log_warn("%s: %s: ring %u: the descriptor is not an eventfd", dev->name,
			 req_name(msg), index);
		return -EINVAL;
	}
	if (msg->hdr.request == VU_REQ_SET_VRING_KICK)
		slot = &vr->kick_fd;
	else if (msg->hdr.request == VU_REQ_SET_VRING_CALL)
		slot = &vr->call_fd;
	else
		slot = &vr->err_fd;
	close_fd(slot);
	*slot = (v & VU_VRING_NOFD_MASK) ? -1 : vu_msg_take_fd(msg, 0);
	if (msg->hdr.request == VU_REQ_SET_VRING_KICK) {
		/* spec "Ring states": a kick starts the ring */
		vr->kick_set = true;
		vr->started = true;
	}
	return vring_notify(dev, index);
}

static int handle_set_vring_enable(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_vring_state *s = &msg->payload.state;
	struct vu_vring *vr;

	(void)reply;
	if (!(dev->features & VU_F_PROTOCOL_BIT)) {
		log_warn("%s: SET_VRING_ENABLE: only valid once PROTOCOL_FEATURES (bit 30) is acked",
			 dev->name);
		return -EINVAL;
	}
	vr = vring_at(dev, msg, s->index);
	if (!vr)
		return -EINVAL;
	if (s->num > 1) {
		log_warn("%s: SET_VRING_ENABLE: ring %u state %u is neither 0 nor 1", dev->name,
			 s->index, s->num);
		return -EINVAL;
	}
	vr->enabled = s->num;
	return vring_notify(dev, s->index);
}

static int handle_get_vring_base(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	uint32_t index = msg->payload.state.index;
	struct vu_vring *vr = vring_at(dev, msg, index);
	uint32_t base;
	int rc;

	if (!vr)
		return -EINVAL;
	base = vr->base;
	if (dev->ops->vring_stop) {
		rc = dev->ops->vring_stop(dev, index, &base);
		if (rc < 0)
			return rc;
	}
	/* spec: GET_VRING_BASE stops the ring; the next start brings a new kick */
	vr->started = false;
	vr->kick_set = false;
	close_fd(&vr->kick_fd);
	vr->base = (uint16_t)base;
	reply->hdr.size = sizeof(struct vu_vring_state);
	reply->payload.state = (struct vu_vring_state){ .index = index, .num = base };
	return 0;
}

static int config_read(struct vu_dev *dev, const struct vu_config *c, uint8_t *out)
{
	if (!(dev->protocol_features & VU_PROTO_BIT(VU_PROTOCOL_F_CONFIG)) || !dev->ops->get_config) {
		log_warn("%s: GET_CONFIG: protocol feature CONFIG was not negotiated", dev->name);
		return -EOPNOTSUPP;
	}
	if (c->size == 0 || c->offset > VU_MAX_CONFIG_SIZE || c->size > VU_MAX_CONFIG_SIZE - c->offset) {
		log_warn("%s: GET_CONFIG: %u bytes at offset %u are outside the config space",
			 dev->name, c->size, c->offset);
		return -EINVAL;
	}
	return dev->ops->get_config(dev, c->offset, c->size, out);
}

/* spec: a GET_CONFIG that fails is answered with config size 0 */
static int handle_get_config(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	const struct vu_config *c = &msg->payload.config;
	struct vu_config *out = &reply->payload.config;

	out->offset = c->offset;
	out->size = 0;
	out->flags = c->flags;
	reply->hdr.size = VU_CONFIG_HDR_SIZE;
	if (config_read(dev, c, out->payload) == 0) {
		out->size = c->size;
		reply->hdr.size += c->size;
	}
	return 0;
}

static int handle_set_config(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)msg;
	(void)reply;
	log_warn("%s: SET_CONFIG: the device config space is read-only", dev->name);
	return -EPERM;
}

static int handle_unsupported(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply)
{
	(void)reply;
	log_warn("%s: %s: not supported (its protocol feature is never offered)", dev->name,
		 req_name(msg));
	return -EOPNOTSUPP;
}

static vu_handler handler_for(uint32_t request)
{
	switch (request) {
	case VU_REQ_GET_FEATURES: return handle_get_features;
	case VU_REQ_SET_FEATURES: return handle_set_features;
	case VU_REQ_GET_PROTOCOL_FEATURES: return handle_get_protocol_features;
	case VU_REQ_SET_PROTOCOL_FEATURES: return handle_set_protocol_features;
	case VU_REQ_GET_QUEUE_NUM: return handle_get_queue_num;
	case VU_REQ_SET_OWNER: return handle_set_owner;
	case VU_REQ_RESET_OWNER: return handle_reset;
	case VU_REQ_RESET_DEVICE: return handle_reset;
	case VU_REQ_SET_MEM_TABLE: return handle_set_mem_table;
	case VU_REQ_SET_VRING_NUM: return handle_set_vring_num;
	case VU_REQ_SET_VRING_BASE: return handle_set_vring_base;
	case VU_REQ_SET_VRING_ADDR: return handle_set_vring_addr;
	case VU_REQ_SET_VRING_KICK: return handle_vring_fd;
	case VU_REQ_SET_VRING_CALL: return handle_vring_fd;
	case VU_REQ_SET_VRING_ERR: return handle_vring_fd;
	case VU_REQ_SET_VRING_ENABLE: return handle_set_vring_enable;
	case VU_REQ_GET_VRING_BASE: return handle_get_vring_base;
	case VU_REQ_GET_CONFIG: return handle_get_config;
	case VU_REQ_SET_CONFIG: return handle_set_config;
	case VU_REQ_GET_MAX_MEM_SLOTS: return handle_get_max_mem_slots;
	case VU_REQ_ADD_MEM_REG: return handle_add_mem_reg;
	case VU_REQ_REM_MEM_REG: return handle_rem_mem_reg;
	case VU_REQ_SET_STATUS: return handle_set_status;
	case VU_REQ_GET_STATUS: return handle_get_status;
	default: return handle_unsupported;
	}
}

/* spec "Communication": requests whose definition includes a reply payload */
static bool owes_reply(uint32_t request)
{
	switch (request) {
	case VU_REQ_GET_FEATURES:
	case VU_REQ_GET_PROTOCOL_FEATURES:
	case VU_REQ_GET_VRING_BASE:
	case VU_REQ_GET_QUEUE_NUM:
	case VU_REQ_GET_CONFIG:
	case VU_REQ_IOTLB_MSG:
	case VU_REQ_CREATE_CRYPTO_SESSION:
	case VU_REQ_POSTCOPY_ADVISE:
	case VU_REQ_POSTCOPY_END:
	case VU_REQ_GET_INFLIGHT_FD:
	case VU_REQ_GET_MAX_MEM_SLOTS:
	case VU_REQ_GET_STATUS:
	case VU_REQ_GET_SHARED_OBJECT:
	case VU_REQ_SET_DEVICE_STATE_FD:
	case VU_REQ_CHECK_DEVICE_STATE:
	case VU_REQ_GET_SHMEM_CONFIG:
		return true;
	default:
		return false;
	}
}

int vu_dev_handle(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply, bool *has_reply)
{
	uint32_t request = msg->hdr.request;
	int rc;

	*has_reply = false;
	rc = dev->tp.ops && dev->tp.ops->map_mem ? vu_msg_check_fdless_mem(msg) : vu_msg_check(msg);
	if (rc < 0) {
		vu_msg_close_fds(msg);
		return rc;
	}
	log_debug("%s: %s", dev->name, vu_request_name(request));
	memset(&reply->hdr, 0, sizeof(reply->hdr));
	reply->nfds = 0;
	rc = handler_for(request)(dev, msg, reply);
	vu_msg_close_fds(msg);
	if (owes_reply(request) && rc == 0) {
		/* the handler filled the payload */
	} else if (!owes_reply(request) && (msg->hdr.flags & VU_FLAG_NEED_REPLY) && dev->reply_ack) {
		/* spec "REPLY_ACK": u64 0 for success, non-zero for failure */
		reply_u64(reply, rc < 0 ? 1 : 0);
	} else {
		if (rc < 0)
			log_warn("%s: %s failed (%s) and cannot be reported: ending the session",
				 dev->name, vu_request_name(request), strerror(-rc));
		return rc;
	}
	reply->hdr.request = request;
	reply->hdr.flags = VU_REPLY_FLAGS;
	*has_reply = true;
	return 0;
}

int vu_dev_process(struct vu_dev *dev)
{
	struct vu_msg msg, reply;
	bool has_reply = false;
	int rc, src;

	rc = dev->tp.ops->recv(dev->tp.priv, &msg);
	if (rc < 0)
		return rc;
	rc = vu_dev_handle(dev, &msg, &reply, &has_reply);
	if (!has_reply)
		return rc;
	src = dev->tp.ops->send(dev->tp.priv, &reply);
	if (src < 0) {
		log_warn("%s: %s: cannot send the reply: %s", dev->name,
			 vu_request_name(reply.hdr.request), strerror(-src));
		return src;
	}
	return rc;
}

void vu_dev_init_transport(struct vu_dev *dev, const char *name, const struct vu_transport *tp,
			   const struct vu_dev_ops *ops, void *priv)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name ? name : "vhost-user";
	dev->sock = -1;
	dev->tp = *tp;
	dev->ops = ops;
	dev->priv = priv;
	gmem_init(&dev->mem);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		vring_init(&dev->vrings[i]);
}

void vu_dev_init(struct vu_dev *dev, const char *name, int sock, const struct vu_dev_ops *ops,
		 void *priv)
{
	const struct vu_transport tp = { &vu_sock_transport_ops, NULL };

	vu_dev_init_transport(dev, name, &tp, ops, priv);
	/* the socket is read where it is kept, so a caller may swap it */
	dev->tp.priv = &dev->sock;
	dev->sock = sock;
}

static bool session_has_state(const struct vu_dev *dev)
{
	if (dev->owner || dev->features_set || dev->mem.nregions)
		return true;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		if (vring_configured(&dev->vrings[i]))
			return true;
	}
	return false;
}

void vu_dev_fini(struct vu_dev *dev)
{
	if (session_has_state(dev) && dev->ops->reset)
		dev->ops->reset(dev);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		vring_reset(&dev->vrings[i]);
	gmem_unmap(&dev->mem);
	dev->owner = false;
	dev->features_set = false;
	dev->features = 0;
	dev->protocol_features = 0;
	dev->reply_ack = false;
	dev->status = 0;
	dev->sock = -1;
}

bool vu_vring_ready(const struct vu_vring *vr)
{
	return vr->num != 0 && vr->addr_set && vr->kick_set;
}
