// SPDX-License-Identifier: MIT
/*
 * Front ends through a virtio-vhost-user device (--vfio) instead of a
 * listening socket. The device is set up once at start (before the
 * sandbox, so its errors stop the daemon at once), then again after every
 * session: a zero-length rxq completion (the sibling's front end left),
 * any message or device fault, ends the session, resets the device and
 * waits for the next front end, as the socket source does.
 *
 * On the loop: the rxq vector's eventfd (requests; a session begins with
 * the first one), and one private eventfd per ring for call and for err,
 * turned into doorbell writes. The kick vectors are never watched here:
 * they go to the engine (the kernel with the kernel engine), so the data
 * path stays off this loop.
 *
 * A device that keeps failing (set-up refused, broken queues, malformed
 * messages: VVU_MAX_FAULTS in a row without one good request) is given up
 * on: the loop stops and the daemon exits 1 with the reason logged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "daemon/server.h"
#include "daemon/systemd.h"
#include "transport/vvu/vvu.h"
#include "util/log.h"

#define VVU_RETRY_MS 100

struct vvu_ring_watch {
	struct server *s;
	unsigned int idx;
	bool err;
	struct loop_watch w;
};

struct server_vvu {
	struct vvu v;
	const char *pci;               /* as the user gave it */
	unsigned int faults;           /* in a row, without a good request between */
	struct loop_watch rx_w;
	struct vvu_ring_watch calls[VU_MAX_QUEUES], errs[VU_MAX_QUEUES];
};

static void on_rx(void *ctx, uint32_t events);
static void on_ring_fd(void *ctx, uint32_t events);

static void unwatch(struct server *s)
{
	struct server_vvu *sv = s->vvu;

	loop_del(s->loop, &sv->rx_w);
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		loop_del(s->loop, &sv->calls[i].w);
		loop_del(s->loop, &sv->errs[i].w);
	}
}

static int watch_ring(struct server *s, struct vvu_ring_watch *rw, unsigned int i, bool err, int fd)
{
	rw->s = s;
	rw->idx = i;
	rw->err = err;
	return loop_add(s->loop, &rw->w, fd, EPOLLIN, on_ring_fd, rw);
}

static int watch(struct server *s)
{
	struct server_vvu *sv = s->vvu;
	struct vvu *v = &sv->v;
	int rc = loop_add(s->loop, &sv->rx_w, vpci_vector_fd(&v->p, VVU_RXQ), EPOLLIN, on_rx, s);

	for (unsigned int i = 0; rc == 0 && i < v->nq; i++) {
		rc = watch_ring(s, &sv->calls[i], i, false, v->call_fd[i]);
		if (rc == 0 && v->db.have_err)
			rc = watch_ring(s, &sv->errs[i], i, true, v->err_fd[i]);
	}
	if (rc < 0) {
		log_err("%s: cannot watch the device's eventfds: %s", s->name, strerror(-rc));
		unwatch(s);
	}
	return rc;
}

static void pause_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Set the device up and watch it, trying again while it fails, up to the
 * fault budget. Return: 0, or the last error once the budget is spent.
 */
static int bring_up(struct server *s)
{
	struct server_vvu *sv = s->vvu;
	int rc;

	for (;;) {
		rc = vvu_start(&sv->v);
		if (rc == 0) {
			rc = watch(s);
			if (rc < 0)
				vvu_stop(&sv->v);
		}
		if (rc == 0)
			break;
		/* not a VVU device, or not one that can serve vsock: no retry will change that */
		if (rc == -ENODEV || rc == -ENOTSUP || ++sv->faults >= VVU_MAX_FAULTS)
			return rc;
		log_warn("%s: setting up %s failed (%s); trying again (%u of %u)", s->name,
			 sv->v.vf.name, strerror(-rc), sv->faults + 1, VVU_MAX_FAULTS);
		pause_ms(VVU_RETRY_MS);
	}
	log_info("%s: waiting for a front end through %s", s->name, sv->v.vf.name);
	systemd_notify_status("%s: waiting for a front end (vfio %s)", s->name, sv->v.vf.name);
	return 0;
}

static void give_up(struct server *s, int rc)
{
	log_err("%s: giving up on %s after %u faults in a row: %s", s->name, s->vvu->v.vf.name,
		s->vvu->faults, strerror(-rc));
	s->failed = rc;
	loop_stop(s->loop);
}

static bool is_device_fault(int rc)
{
	return rc == -EIO || rc == -EBADMSG;
}

/* End the session (if any), reset the device and wait for the next front end. */
static void restart(struct server *s, int rc)
{
	struct server_vvu *sv = s->vvu;

	/* a device gets a reset for anything but a clean disconnect: an error, said once */
	if (rc != -ECONNRESET)
		log_err("%s: %s: %s; %sresetting the device", s->name, sv->v.vf.name, strerror(-rc),
			s->in_session ? "ending the session, " : "");
	server_session_end(s, rc == -ECONNRESET ? rc : 0);
	unwatch(s);
	vvu_stop(&sv->v);
	if (is_device_fault(rc) && ++sv->faults >= VVU_MAX_FAULTS) {
		give_up(s, rc);
		return;
	}
	rc = bring_up(s);
	if (rc < 0)
		give_up(s, rc);
}

/* The first request of a session is taken off rxq here, to begin it. */
static int take_first(struct server *s)
{
	struct vvu *v = &s->vvu->v;
	const struct vu_transport tp = { &vvu_transport_ops, v };
	int rc = vvu_next(v, &v->staged);

	if (rc < 0)
		return rc;
	v->have_staged = true;
	rc = server_session_begin(s, &tp, -1);
	if (rc < 0)
		log_err("%s: cannot serve the front end: %s", s->name, strerror(-rc));
	return rc;
}

static void on_rx(void *ctx, uint32_t events)
{
	struct server *s = ctx;
	eventfd_t cnt;
	int rc = 0;

	(void)events;
	/* interrupts can be spurious or merged: the used ring alone says what came */
	eventfd_read(s->vvu->rx_w.fd, &cnt);
	for (unsigned int n = 0; n < VVU_QUEUE_SIZE; n++) {
		rc = s->in_session ? 0 : take_first(s);
		if (rc == 0)
			rc = vu_dev_process(&s->dev);
		/* nothing (more) came: a device that reset itself says so only in its status */
		if (rc == -EAGAIN) {
			rc = vvu_check_alive(&s->vvu->v);
			if (rc == 0)
				return;
		}
		if (rc < 0)
			break;
		s->vvu->faults = 0;
	}
	if (rc == 0) {
		/* a device that never stops posting must not starve the loop: come back later */
		eventfd_write(s->vvu->rx_w.fd, 1);
		return;
	}
	restart(s, rc);
}

static void on_ring_fd(void *ctx, uint32_t events)
{
	struct vvu_ring_watch *rw = ctx;
	struct server *s = rw->s;
	eventfd_t cnt;

	(void)events;
	/* several signals before we ran are one doorbell: the front end reads the whole count */
	if (eventfd_read(rw->w.fd, &cnt) < 0)
		return;
	if (vvu_doorbell(&s->vvu->v, rw->idx, rw->err) < 0)
		restart(s, -EIO);
}

int server_vvu_start(struct server *s, const struct server_socket *sock)
{
	struct server_vvu *sv = calloc(1, sizeof(*sv));
	int rc;

	if (!sv) {
		log_err("%s: out of memory", s->name);
		return -ENOMEM;
	}
	sv->pci = sock->vfio;
	sv->rx_w.fd = -1;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++) {
		sv->calls[i].w.fd = -1;
		sv->errs[i].w.fd = -1;
	}
	s->vvu = sv;
	rc = vvu_open(&sv->v, sock->vfio_open, sock->vfio, s->eng.ops->nqueues);
	if (rc == 0)
		rc = bring_up(s);
	if (rc < 0) {
		if (sv->v.vf_open)
			log_err("%s: %s cannot be used: %s", s->name, sock->vfio, strerror(-rc));
		vvu_close(&sv->v);
		free(sv);
		s->vvu = NULL;
	}
	return rc;
}

void server_vvu_stop(struct server *s)
{
	if (!s->vvu)
		return;
	server_session_end(s, -ECONNRESET);
	unwatch(s);
	vvu_close(&s->vvu->v);
	free(s->vvu);
	s->vvu = NULL;
}

void server_vvu_tstats(const struct server *s, struct server_tstats *out)
{
	const struct vvu *v = &s->vvu->v;

	out->kind = "vfio";
	snprintf(out->pci, sizeof(out->pci), "%s", v->vf_open ? v->vf.name : s->vvu->pci);
	out->msgs_in = v->st.msgs_in;
	out->msgs_out = v->st.msgs_out;
	out->calls = v->st.calls;
	out->errs = v->st.errs;
	out->resets = v->st.resets;
	out->faults = v->st.faults;
}
