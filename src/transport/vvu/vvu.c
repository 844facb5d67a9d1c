// SPDX-License-Identifier: MIT
/*
 * The VVU device over the user-space virtio-PCI driver (virtio_pci.h):
 * set-up per PROTOCOLS.md §5.3, then messages in and out of the two queues,
 * kicks as MSI-X vector eventfds and calls as doorbell writes.
 *
 * The device is reset and set up again for every front end (a zero-length
 * rxq completion ends one), so every set-up re-reads and re-checks every
 * device value: a device that changed its mind between sessions is caught
 * like one that was wrong from the start.
 *
 * Back-end requests: we send none (the engines need no back-end channel),
 * so SET_BACKEND_REQ_FD is never accepted and nothing is ever put on txq
 * but replies. A message with REPLY set on rxq answers a request we never
 * made: refused.
 */
#include "transport/vvu/vvu.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "vhost_user/msg.h"

/* VFIO_PCI_CONFIG_REGION_INDEX: where the doorbell multiplier is read */
#define VVU_PCI_CONFIG_REGION 7u

static void close_fds(int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int vvu_open(struct vvu *v, vfio_open_fn opener, const char *name, unsigned int nq)
{
	int rc;

	memset(v, 0, sizeof(*v));
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		v->call_fd[i] = -1;
		v->err_fd[i] = -1;
	}
	if (nq == 0 || nq > VU_MAX_QUEUES) {
		log_err("vvu: %u vhost-user queues asked for (1 to %u)", nq, VU_MAX_QUEUES);
		return -EINVAL;
	}
	v->nq = nq;
	if (!opener) {
		log_err("--vfio %s: this build has no VFIO support", name);
		return -ENOTSUP;
	}
	rc = opener(&v->vf, name);
	if (rc < 0)
		return rc; /* the opener said why */
	v->vf_open = true;
	return 0;
}

/* Read the doorbell multiplier that follows the doorbell cap in config space. */
static int read_doorbell(struct vvu *v, uint32_t ndev)
{
	const struct vpci_vendor_cap *cap = vpci_find_vcap(&v->p, VVU_CAP_DOORBELL);
	struct vpci_loc none = { 0 };
	uint32_t mult = 0;
	int rc;

	if (cap && cap->cap_len < VVU_DOORBELL_MULT_OFF + sizeof(mult)) {
		log_err("vvu: %s: doorbell capability of %u bytes has no multiplier", v->vf.name,
			cap->cap_len);
		return -EIO;
	}
	if (cap) {
		rc = v->vf.ops->region_read(&v->vf, VVU_PCI_CONFIG_REGION,
					    (uint64_t)cap->cap_off + VVU_DOORBELL_MULT_OFF, &mult,
					    sizeof(mult));
		if (rc < 0) {
			log_err("vvu: %s: reading the doorbell multiplier: %s", v->vf.name,
				strerror(-rc));
			return rc;
		}
	}
	return vvu_check_doorbell(cap ? &cap->loc : &none, le32toh(mult), v->nq, ndev, &v->db);
}

static int read_config(struct vvu *v, uint32_t *status, uint32_t *maxq)
{
	int rc = vpci_cfg_read(&v->p, VVU_CFG_STATUS, status, sizeof(*status));

	if (rc == 0)
		rc = vpci_cfg_read(&v->p, VVU_CFG_MAX_QUEUES, maxq, sizeof(*maxq));
	if (rc < 0) {
		log_err("vvu: %s: reading the device config: %s", v->vf.name, strerror(-rc));
		return rc;
	}
	*status = le32toh(*status);
	*maxq = le32toh(*maxq);
	return 0;
}

/* The shared-memory window: inside a mappable BAR, page-aligned. */
static int check_window(struct vvu *v, const struct vpci_vendor_cap *shm)
{
	struct vpci_loc none = { 0 };
	struct vfio_region_desc bar = { 0 };
	int rc = 0;

	if (shm && shm->loc.bar > 5) {
		log_err("vvu: %s: shared memory in BAR %u, which does not exist", v->vf.name,
			shm->loc.bar);
		return -EIO;
	}
	if (shm)
		rc = v->vf.ops->region_info(&v->vf, shm->loc.bar, &bar);
	if (rc < 0) {
		log_err("vvu: %s: BAR %u of the shared memory: %s", v->vf.name, shm->loc.bar,
			strerror(-rc));
		return rc;
	}
	rc = vvu_check_shmem(shm ? &shm->loc : &none, &bar);
	if (rc < 0)
		return rc;
	v->shm_bar = shm->loc.bar;
	v->shm_len = shm->loc.len;
	v->shm_off = shm->loc.off;
	return 0;
}

/* Identity, config and the three VVU capabilities, all checked before use. */
static int check_device(struct vvu *v)
{
	const struct vpci_vendor_cap *notif = vpci_find_vcap(&v->p, VVU_CAP_NOTIFICATION);
	struct vpci_loc none = { 0 };
	uint32_t status = 0, maxq = 0;
	int rc = vvu_check_identity(v->vf.name, v->p.vendor_id, v->p.device_id);

	if (rc == 0)
		rc = read_config(v, &status, &maxq);
	if (rc == 0)
		rc = vvu_check_max_queues(maxq, v->nq);
	if (rc == 0)
		rc = read_doorbell(v, maxq);
	if (rc == 0)
		rc = vvu_check_notification(notif ? &notif->loc : &none);
	if (rc == 0)
		rc = check_window(v, vpci_find_vcap(&v->p, VVU_CAP_SHARED_MEMORY));
	if (rc < 0)
		return rc;
	v->notif = notif->loc;
	return 0;
}

/* Kick i raises vector 2 + i: program each and make sure the device kept it. */
static int setup_notifications(struct vvu *v)
{
	for (unsigned int i = 0; i < v->nq; i++) {
		uint16_t sel = htole16((uint16_t)i), vec = htole16((uint16_t)(VVU_VEC_NOTIFY0 + i));
		uint16_t back = 0;
		int rc = vpci_loc_write(&v->p, &v->notif, VVU_NOTIF_SELECT, &sel, sizeof(sel));

		if (rc == 0)
			rc = vpci_loc_write(&v->p, &v->notif, VVU_NOTIF_VECTOR, &vec, sizeof(vec));
		if (rc == 0)
			rc = vpci_loc_read(&v->p, &v->notif, VVU_NOTIF_VECTOR, &back, sizeof(back));
		if (rc < 0) {
			log_err("vvu: %s: notification %u: %s", v->vf.name, i, strerror(-rc));
			return rc;
		}
		if (le16toh(back) != VVU_VEC_NOTIFY0 + i) {
			log_err("vvu: %s: notification %u: the device refused MSI-X vector %u (reads "
				"back 0x%x)", v->vf.name, i, VVU_VEC_NOTIFY0 + i, le16toh(back));
			return -EIO;
		}
	}
	return 0;
}

static int make_eventfds(struct vvu *v)
{
	for (unsigned int i = 0; i < v->nq; i++) {
		v->call_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		v->err_fd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->call_fd[i] < 0 || v->err_fd[i] < 0) {
			int rc = -errno;

			log_err("vvu: %s: cannot create eventfds: %s", v->vf.name, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static int map_window(struct vvu *v)
{
	void *p = NULL;
	int rc = v->vf.ops->region_mmap(&v->vf, v->shm_bar, v->shm_off, (size_t)v->shm_len, &p);

	if (rc < 0 || !p) {
		log_err("vvu: %s: mapping 0x%" PRIx64 " bytes of shared memory in BAR %u: %s",
			v->vf.name, v->shm_len, v->shm_bar, strerror(rc < 0 ? -rc : EFAULT));
		return rc < 0 ? rc : -EFAULT;
	}
	v->shm = p;
	return 0;
}

static int set_slave_up(struct vvu *v)
{
	uint32_t status = 0;
	int rc = vpci_cfg_read(&v->p, VVU_CFG_STATUS, &status, sizeof(status));

	status = htole32(le32toh(status) | VVU_STATUS_SLAVE_UP);
	if (rc == 0)
		rc = vpci_cfg_write(&v->p, VVU_CFG_STATUS, &status, sizeof(status));
	if (rc < 0)
		log_err("vvu: %s: setting SLAVE_UP: %s", v->vf.name, strerror(-rc));
	return rc;
}

/* PROTOCOLS.md §5.3, after the capability walk vpci_probe() did. */
static int handshake(struct vvu *v)
{
	int rc = vpci_reset(&v->p);

	if (rc == 0)
		rc = vpci_negotiate(&v->p, 0, 0);
	if (rc == 0)
		rc = vpci_setup_vectors(&v->p, VVU_VEC_NOTIFY0 + v->nq);
	if (rc == 0)
		rc = vpci_setup_queue(&v->p, VVU_RXQ, VVU_QUEUE_SIZE, VVU_BUF_SIZE, VVU_RXQ, true);
	if (rc == 0)
		rc = vpci_setup_queue(&v->p, VVU_TXQ, VVU_QUEUE_SIZE, VVU_BUF_SIZE, VVU_TXQ, false);
	if (rc == 0)
		rc = setup_notifications(v);
	if (rc == 0)
		rc = vpci_driver_ok(&v->p);
	return rc;
}

int vvu_start(struct vvu *v)
{
	int rc = vpci_probe(&v->p, &v->vf);

	if (rc == 0)
		rc = check_device(v);
	if (rc == 0)
		rc = handshake(v);
	if (rc == 0)
		rc = make_eventfds(v);
	if (rc == 0)
		rc = map_window(v);
	if (rc == 0)
		rc = set_slave_up(v);
	if (rc < 0) {
		v->st.faults++;
		vvu_stop(v);
		return rc;
	}
	v->up = true;
	log_info("vvu: %s: ready (device %04x, %u queues served, shared memory 0x%" PRIx64
		 " bytes in BAR %u, doorbell multiplier %" PRIu32 "%s)", v->vf.name, v->p.device_id,
		 v->nq, v->shm_len, v->shm_bar, v->db.mult, v->db.have_err ? ", err doorbells" : "");
	return 0;
}

void vvu_stop(struct vvu *v)
{
	if (v->shm) {
		v->vf.ops->region_munmap(&v->vf, v->shm, (size_t)v->shm_len);
		v->shm = NULL;
	}
	close_fds(v->call_fd, VU_MAX_QUEUES);
	close_fds(v->err_fd, VU_MAX_QUEUES);
	if (v->have_staged) {
		vu_msg_close_fds(&v->staged);
		v->have_staged = false;
	}
	if (v->vf_open) {
		vpci_close(&v->p);
		v->st.resets++;
	}
	v->up = false;
}

void vvu_close(struct vvu *v)
{
	vvu_stop(v);
	if (v->vf_open)
		v->vf.ops->close(&v->vf);
	v->vf_open = false;
}

/* ---- messages ---- */

int vvu_attach_fds(struct vvu *v, struct vu_msg *msg)
{
	uint32_t r = msg->hdr.request;
	uint64_t idx;
	int src, fd;

	if ((r != VU_REQ_SET_VRING_KICK && r != VU_REQ_SET_VRING_CALL &&
	     r != VU_REQ_SET_VRING_ERR) || msg->hdr.size != sizeof(uint64_t))
		return 0; /* not ours to fix; the dispatcher judges it */
	/* crosvm: bit 8 means nothing here; the ring always gets our eventfd */
	idx = msg->payload.u64 & VU_VRING_IDX_MASK;
	msg->payload.u64 |= VU_VRING_NOFD_MASK;
	if (idx >= v->nq)
		return 0; /* the dispatcher names the missing ring */
	if (r == VU_REQ_SET_VRING_KICK)
		src = vpci_vector_fd(&v->p, VVU_VEC_NOTIFY0 + (unsigned int)idx);
	else if (r == VU_REQ_SET_VRING_CALL)
		src = v->call_fd[idx];
	else
		src = v->db.have_err ? v->err_fd[idx] : -1;
	if (src < 0)
		return 0;
	fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		int rc = -errno;

		log_err("vvu: %s: %s: cannot duplicate the eventfd of ring %" PRIu64 ": %s",
			v->vf.name, vu_request_name(r), idx, strerror(-rc));
		return rc;
	}
	msg->payload.u64 &= ~VU_VRING_NOFD_MASK;
	msg->fds[0] = fd;
	msg->nfds = 1;
	return 0;
}

int vvu_next(struct vvu *v, struct vu_msg *msg)
{
	const uint8_t *data = NULL;
	uint32_t len = 0;
	uint16_t id = 0;
	int rc = vpci_recv(&v->p, VVU_RXQ, &data, &len, &id);
	int prc;

	if (rc == 0)
		return -EAGAIN;
	if (rc < 0) {
		log_err("vvu: %s: rxq: the device completed a buffer it was not given, or overran "
			"it", v->vf.name);
		v->st.faults++;
		return -EIO;
	}
	rc = vvu_msg_from_buffer(data, len, msg);
	/* the copy is taken: the buffer goes back whatever it held */
	prc = vpci_repost(&v->p, VVU_RXQ, id);
	if (prc < 0) {
		log_err("vvu: %s: rxq: cannot give buffer %u back: %s", v->vf.name, id,
			strerror(-prc));
		rc = -EIO;
	}
	if (rc == -EBADMSG || rc == -EIO)
		v->st.faults++;
	if (rc < 0)
		return rc;
	if (msg->hdr.flags & VU_FLAG_REPLY) {
		log_err("vvu: %s: %s: a reply to a back-end request, but we send none", v->vf.name,
			vu_request_name(msg->hdr.request));
		return -EPROTO;
	}
	v->st.msgs_in++;
	return vvu_attach_fds(v, msg);
}

/* virtio status bits (virtio 1.x "Device Status Field") */
#define VVU_VIRTIO_DRIVER_OK 0x04u
#define VVU_VIRTIO_NEEDS_RESET 0x40u

int vvu_check_alive(struct vvu *v)
{
	uint8_t status = 0;
	int rc = vpci_status(&v->p, &status);

	if (rc < 0) {
		log_err("vvu: %s: reading the device status: %s", v->vf.name, strerror(-rc));
	} else if (status & VVU_VIRTIO_NEEDS_RESET) {
		log_err("vvu: %s: the device asks for a reset (status 0x%02x)", v->vf.name, status);
		rc = -EIO;
	} else if (!(status & VVU_VIRTIO_DRIVER_OK)) {
		log_err("vvu: %s: the device was reset under us (status 0x%02x)", v->vf.name, status);
		rc = -EIO;
	}
	if (rc < 0)
		v->st.faults++;
	return rc < 0 ? -EIO : 0;
}

int vvu_doorbell(struct vvu *v, unsigned int i, bool err)
{
	/* the value is not looked at; the ring index helps whoever traces it */
	uint16_t val = htole16((uint16_t)i);
	uint64_t idx = err ? (uint64_t)v->db.nqueues_dev + i : i;
	int rc;

	if (!v->up || i >= v->nq || (err && !v->db.have_err))
		return -EINVAL;
	/* vvu_check_doorbell() made sure idx * mult + 2 fits the cap */
	rc = vpci_loc_write(&v->p, &v->db.loc, idx * v->db.mult, &val, sizeof(val));
	if (rc < 0) {
		log_err("vvu: %s: %s doorbell of ring %u: %s", v->vf.name, err ? "err" : "call", i,
			strerror(-rc));
		v->st.faults++;
		return rc;
	}
	if (err)
		v->st.errs++;
	else
		v->st.calls++;
	return 0;
}

static int tp_recv(void *priv, struct vu_msg *msg)
{
	struct vvu *v = priv;

	if (!v->up)
		return -EAGAIN;
	if (!v->have_staged)
		return vvu_next(v, msg);
	*msg = v->staged;
	v->have_staged = false;
	return 0;
}

static int tp_send(void *priv, const struct vu_msg *msg)
{
	struct vvu *v = priv;
	uint8_t buf[VVU_BUF_SIZE];
	int n = vvu_msg_to_buffer(msg, buf, sizeof(buf));
	int rc;

	if (n < 0)
		return n;
	if (!v->up)
		return -EIO;
	rc = vpci_reclaim(&v->p, VVU_TXQ);
	if (rc >= 0)
		rc = vpci_send(&v->p, VVU_TXQ, buf, (size_t)n);
	if (rc == -ENOBUFS) {
		/* every buffer still in flight: the device stopped taking replies */
		log_err("vvu: %s: txq: the device takes no more replies", v->vf.name);
		rc = -EIO;
	}
	if (rc < 0) {
		v->st.faults++;
		return rc;
	}
	v->st.msgs_out++;
	return 0;
}

static int tp_map_mem(void *priv, struct gmem *m, const struct gmem_region_desc *descs,
		      unsigned int n)
{
	struct vvu *v = priv;

	if (!v->shm)
		return -EFAULT;
	return gmem_map_window(m, descs, n, v->shm, v->shm_len);
}

const struct vu_transport_ops vvu_transport_ops = {
	.recv = tp_recv,
	.send = tp_send,
	.map_mem = tp_map_mem,
};
