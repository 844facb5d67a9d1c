// SPDX-License-Identifier: MIT
/*
 * Userspace engine device (see device.h): vhost-user hooks, the rx and tx
 * rings, host sockets, timers, sibling packets.
 *
 * Host sockets are wrapped in a stream of our own (ep_ops) that forwards to
 * stream_unix_ops and notes every use: whatever the connection does with
 * its socket marks the endpoint "dirty", and after each event the dirty
 * endpoints get their epoll interest recomputed from the connection
 * (conn_wants_host_read/write). Closing the stream (the connection decides
 * when) removes the watch before the fd is closed, so a watch never
 * outlives its fd and no callback sees a freed endpoint.
 *
 * A popped chain that cannot be used yet (a ready connection turned out to
 * have nothing after all, a sibling inbox is full) is held, not returned:
 * it is used first next time, and "un-popped" (the ring's position moved
 * back by one) when the ring stops or moves to a new memory table. Between
 * events at most one chain per ring is in flight, since each is pushed as
 * soon as it is handled.
 *
 * One read from a host socket may fill several rx buffers (conn_fill_rxv()):
 * the connection asks for more chains while it plans the read (rx_more()),
 * and those the read did not reach are un-popped right after (vq_unpop()),
 * so the rule above holds and a guest sees the same lazy device: one
 * system call per batch instead of one per 4 KiB buffer.
 *
 * Kick eventfds are duplicated before they are watched: the front end's
 * copy may be closed by the vhost-user layer at any time, and an epoll
 * registration lives as long as the open file, not the fd number.
 */
#include "engine/user/device.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/user/hybrid_proto.h"
#include "engine/user/stats.h"
#include "engine/user/stream.h"
#include "engine/event_queue.h"
#include "util/log.h"

#define BIT64(n) (1ull << (n))
#define RING_RX 0u
#define RING_TX 1u
#define UDEV_CONFIG_SIZE 8u /* struct virtio_vsock_config: le64 guest_cid */
#define SEQPACKET_BIT BIT64(VIRTIO_VSOCK_F_SEQPACKET)
/* Most rx chains one host read may fill: 128 KiB in Linux's 4 KiB buffers. */
#define UDEV_RX_BATCH 32u

/* One rx fill: the ring's current chain (r->e) and the extra chains taken for it. */
struct udev_rxbatch {
	struct udev_ring *r;
	struct conn_rxbufs rb;
	struct conn_rxbuf buf[UDEV_RX_BATCH];  /* [0]: r->e; then the extra chains */
	struct vq_elem e[UDEV_RX_BATCH];       /* [0] unused */
	struct iovec *iov[UDEV_RX_BATCH];      /* [0] unused; UDEV_IOV_MAX entries each */
	struct iovec *block;                   /* the arrays, one allocation */
};

/* tx_batch() results */
enum { TX_EMPTY, TX_STOPPED, TX_BUDGET, TX_BROKEN };

static void pump(struct udev *d);

/* ---- guest-triggered logging ------------------------------------------------- */

static bool glog_allow(struct udev *d)
{
	uint64_t sec = hybrid_now_ms() / 1000;

	if (sec != d->glog_sec) {
		if (d->glog_dropped)
			log_warn("%s: %lu guest-triggered messages suppressed", d->cfg.name,
				 d->glog_dropped);
		d->glog_sec = sec;
		d->glog_n = 0;
		d->glog_dropped = 0;
	}
	if (d->glog_n < UDEV_GLOG_PER_SEC) {
		d->glog_n++;
		return true;
	}
	d->glog_dropped++;
	return false;
}

/* A line a guest (or a host client) can cause: at most UDEV_GLOG_PER_SEC a second. */
#define glog(d, lvl, ...)                                               \
	do {                                                            \
		if ((lvl) <= log_threshold && glog_allow(d))            \
			log_msg((lvl), __VA_ARGS__);                    \
	} while (0)

/* ---- host endpoints ------------------------------------------------------------ */

struct hostep {
	struct udev *d;
	struct conn *c;          /* NULL until the connection exists */
	int fd;
	uint32_t events;         /* what the watch asks for; 0: not registered */
	struct loop_watch w;
	struct hostep *dprev, *dnext;
	bool dirty;
	uint64_t to_host, from_host; /* bytes on the socket (stats.h) */
	uint64_t born_ms;
	bool sndbuf_grown;       /* ep_grow_sndbuf() ran */
	struct stream inner;     /* the socket's own stream (Unix or AF_VSOCK) */
};

static void ep_mark(struct hostep *ep)
{
	struct udev *d = ep->d;

	if (ep->dirty)
		return;
	ep->dirty = true;
	ep->dprev = NULL;
	ep->dnext = d->dirty;
	if (d->dirty)
		d->dirty->dprev = ep;
	d->dirty = ep;
}

static void ep_unmark(struct hostep *ep)
{
	if (!ep->dirty)
		return;
	if (ep->dprev)
		ep->dprev->dnext = ep->dnext;
	else
		ep->d->dirty = ep->dnext;
	if (ep->dnext)
		ep->dnext->dprev = ep->dprev;
	ep->dprev = ep->dnext = NULL;
	ep->dirty = false;
}

/* Bytes moved and failures, for the stats (an -EAGAIN is no failure). */
static ssize_t ep_count(ssize_t n, uint64_t *bytes)
{
	if (n > 0)
		*bytes += (uint64_t)n;
	else if (n < 0 && n != -EAGAIN)
		USTATS_ADD(host_errors, 1);
	return n;
}

static ssize_t ep_readv(struct stream *s, const struct iovec *iov, int niov, unsigned int *flags)
{
	struct hostep *ep = s->ctx;

	ep_mark(ep);
	return ep_count(ep->inner.ops->readv(&ep->inner, iov, niov, flags), &ep->from_host);
}

static ssize_t ep_peek_len(struct stream *s)
{
	struct hostep *ep = s->ctx;

	ep_mark(ep);
	return ep->inner.ops->peek_len(&ep->inner);
}

/*
 * Room in the socket for the guest's whole credit window (the kernel
 * doubles the value for its overhead; capped by net.core.wmem_max):
 * otherwise a full socket makes us copy the rest of the window, wait for
 * the host program to empty half the socket, and only then give the guest
 * its credit back. Pinned to one CPU, guest -> host 64 KiB writes went
 * from 0.03-0.07x to 0.57-0.85x of the baseline. Asked for only once the
 * default buffer turned out too small (a short write, or a message larger
 * than it): most connections never fill it, and set-up then costs one
 * system call less. Memory is taken only while bytes wait; best effort.
 */
static void ep_grow_sndbuf(struct hostep *ep)
{
	int sndbuf = (int)ep->d->cfg.buf_alloc;

	ep->sndbuf_grown = true;
	if (setsockopt(ep->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		log_debug("%s: SO_SNDBUF %d: %s", ep->d->cfg.name, sndbuf, strerror(errno));
}

static bool ep_short(ssize_t n, const struct iovec *iov, int niov)
{
	if (n == -EAGAIN || n == -EMSGSIZE)
		return true;
	return n >= 0 && (size_t)n < pkt_iov_len(iov, (size_t)niov);
}

static ssize_t ep_writev(struct stream *s, const struct iovec *iov, int niov, unsigned int flags)
{
	struct hostep *ep = s->ctx;
	ssize_t n;

	ep_mark(ep);
	n = ep->inner.ops->writev(&ep->inner, iov, niov, flags);
	if (!ep->sndbuf_grown && ep_short(n, iov, niov)) {
		ep_grow_sndbuf(ep);
		/* nothing was written: the larger buffer may take it now */
		if (n < 0)
			n = ep->inner.ops->writev(&ep->inner, iov, niov, flags);
	}
	return ep_count(n, &ep->to_host);
}

static int ep_shutdown_wr(struct stream *s)
{
	struct hostep *ep = s->ctx;

	ep_mark(ep);
	return ep->inner.ops->shutdown_wr(&ep->inner);
}

static int ep_shutdown_rd(struct stream *s)
{
	struct hostep *ep = s->ctx;

	ep_mark(ep);
	return ep->inner.ops->shutdown_rd(&ep->inner);
}

static int ep_set_buffer_size(struct stream *s, uint32_t bytes)
{
	struct hostep *ep = s->ctx;

	if (!ep->inner.ops->set_buffer_size)
		return 0;
	return ep->inner.ops->set_buffer_size(&ep->inner, bytes);
}

static bool ep_peer_closed(struct stream *s)
{
	struct hostep *ep = s->ctx;

	return ep->inner.ops->peer_closed(&ep->inner);
}

static void ep_close(struct stream *s)
{
	struct hostep *ep = s->ctx;

	/* the socket is ours alone: closing it ends the watch (one epoll_ctl fewer) */
	loop_forget(ep->d->loop, &ep->w);
	ep_unmark(ep);
	ep->inner.ops->close(&ep->inner);
	s->fd = -1;
	free(ep);
}

static const struct stream_ops ep_ops = {
	.readv = ep_readv,
	.peek_len = ep_peek_len,
	.writev = ep_writev,
	.shutdown_wr = ep_shutdown_wr,
	.shutdown_rd = ep_shutdown_rd,
	.set_buffer_size = ep_set_buffer_size,
	.peer_closed = ep_peer_closed,
	.close = ep_close,
};

/*
 * An endpoint for connected socket @fd and the stream @s that owns it;
 * @init wraps @fd in its own stream (stream_unix_init, or the forwarding
 * factory's).
 */
static struct hostep *ep_new(struct udev *d, int fd, struct stream *s,
			     void (*init)(struct stream *s, int fd))
{
	struct hostep *ep = calloc(1, sizeof(*ep));

	if (!ep) {
		log_warn("%s: out of memory for a host connection", d->cfg.name);
		close(fd);
		return NULL;
	}
	ep->d = d;
	ep->fd = fd;
	ep->w.fd = -1;
	ep->born_ms = hybrid_now_ms();
	init(&ep->inner, fd);
	*s = (struct stream){ .ops = &ep_ops, .ctx = ep, .fd = fd };
	return ep;
}

static void on_host(void *ctx, uint32_t events);

/* Watch the socket for what its connection wants now. */
static void ep_sync(struct hostep *ep)
{
	struct udev *d = ep->d;
	uint32_t want = 0;
	int rc = 0;

	if (!ep->c)
		return;
	if (conn_wants_host_read(ep->c))
		want |= EPOLLIN;
	if (conn_wants_host_write(ep->c))
		want |= EPOLLOUT;
	if (want == ep->events)
		return;
	if (!want)
		loop_del(d->loop, &ep->w);
	else if (!ep->events)
		rc = loop_add(d->loop, &ep->w, ep->fd, want, on_host, ep);
	else
		rc = loop_mod(d->loop, &ep->w, want);
	if (rc < 0) {
		/* a connection we cannot watch would hang: end it */
		log_warn("%s: cannot watch a host socket: %s", d->cfg.name, strerror(-rc));
		conn_abort(ep->c);
		conn_table_settle(&d->ct, ep->c);
		return;
	}
	ep->events = want;
}

static void sync_watches(struct udev *d)
{
	while (d->dirty) {
		struct hostep *ep = d->dirty;

		ep_unmark(ep);
		ep_sync(ep);
	}
}

/* The connection for a tuple changed: look at its watch after this event. */
static void touch(struct udev *d, uint32_t local_port, uint32_t peer_port, uint16_t type)
{
	struct conn *c = conn_table_lookup(&d->ct, local_port, peer_port, type);
	struct hostep *ep = c ? conn_host_ctx(c) : NULL;

	if (ep)
		ep_mark(ep);
}

static void on_host(void *ctx, uint32_t events)
{
	struct hostep *ep = ctx;
	struct udev *d = ep->d;
	bool err = events & (EPOLLERR | EPOLLHUP);
	bool rd = (ep->events & EPOLLIN) && (err || (events & (EPOLLIN | EPOLLRDHUP)));
	bool wr = (ep->events & EPOLLOUT) && (err || (events & EPOLLOUT));

	ep_mark(ep);
	/* may close the socket and free ep */
	conn_table_host_event(&d->ct, ep->c, rd, wr, hybrid_now_ms());
	pump(d);
}

/* ---- connections to and from the host ------------------------------------------ */

static int connect_host(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd;

	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* AF_UNIX connects at once or fails (EAGAIN: backlog full); nothing is in progress */
	if (connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * A guest REQUEST to host port P: connect <uds_path>_P now. Refused or
 * absent means RST at once, so the guest's connect() fails promptly.
 */
static void guest_connect(struct udev *d, const struct pkt_hdr *req)
{
	int type = req->type == VSOCK_TYPE_SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const struct fwd_ops *fo = d->fw.ops;
	struct hostep *ep;
	struct stream s;
	struct conn *c;
	int fd;

	if (d->cfg.forward) {
		/* forwarding replaces <uds_path>_P: a blocking connect, bounded */
		snprintf(path, sizeof(path), "AF_VSOCK %u:%u", d->cfg.forward_cid, req->dst_port);
		fd = fo->connect(fo->ctx, d->cfg.forward_cid, req->dst_port, type,
				 FWD_CONNECT_TIMEOUT_MS);
	} else {
		fd = hybrid_uds_name(d->cfg.uds_path, req->dst_port, path, sizeof(path));
		if (fd == 0)
			fd = connect_host(path, type);
	}
	if (fd < 0) {
		if (d->cfg.forward)
			glog(d, LOG_LVL_INFO, "%s: guest port %u -> host port %u refused (%s: %s)",
			     d->cfg.name, req->src_port, req->dst_port, path, strerror(-fd));
		else
			glog(d, LOG_LVL_INFO, "%s: guest port %u -> host port %u refused (%s_%u: %s)",
			     d->cfg.name, req->src_port, req->dst_port, d->cfg.uds_path,
			     req->dst_port, strerror(-fd));
		USTATS_ADD(refused_connects, 1);
		conn_table_refuse(&d->ct, req);
		return;
	}
	ep = ep_new(d, fd, &s, d->cfg.forward ? fo->stream_init : stream_unix_init);
	if (!ep) {
		USTATS_ADD(refused_connects, 1);
		conn_table_refuse(&d->ct, req);
		return;
	}
	if (conn_table_accept(&d->ct, req, &s, &c) == 0) {
		ep->c = c;
		ep_mark(ep);
		USTATS_ADD(conns_opened, 1);
		log_debug("%s: guest port %u connected to %s", d->cfg.name, req->src_port, path);
	} else {
		USTATS_ADD(refused_connects, 1);
	}
}

/*
 * hybrid_connect_cb: a host program's CONNECT <port> line is complete. The
 * REQUEST waits in the table until the guest's rings run (a client may
 * come while the VMM is still starting them); the connect deadline bounds
 * the wait.
 */
static void host_connect_as(struct udev *d, int fd, int type, uint32_t port,
			    void (*init)(struct stream *s, int fd), bool ok_line)
{
	uint16_t vtype = type == SOCK_SEQPACKET ? VSOCK_TYPE_SEQPACKET : VSOCK_TYPE_STREAM;
	struct hostep *ep;
	struct stream s;
	struct conn *c;
	int rc = 0;

	if (d->failed)
		rc = -ENETDOWN;
	else if (vtype == VSOCK_TYPE_SEQPACKET && d->vu && d->vu->features_set &&
		 !(d->features & SEQPACKET_BIT))
		rc = -EPROTONOSUPPORT; /* the guest driver has no SEQPACKET */
	if (rc == 0) {
		ep = ep_new(d, fd, &s, init);
		if (!ep)
			return; /* logged, fd closed */
		rc = conn_table_connect_type(&d->ct, port, vtype, &s, hybrid_now_ms(), &c);
	} else {
		close(fd);
	}
	if (rc < 0) {
		glog(d, LOG_LVL_INFO, "%s: host client for guest port %u closed: %s", d->cfg.name,
		     port, strerror(-rc));
		USTATS_ADD(refused_connects, 1);
		return;
	}
	c->no_ok = !ok_line;
	ep->c = c;
	ep_mark(ep);
	USTATS_ADD(conns_opened, 1);
	pump(d);
}

static void host_connect(void *ctx, int fd, int type, uint32_t port)
{
	host_connect_as(ctx, fd, type, port, stream_unix_init, true);
}

/*
 * A client of a --forward-listen port (forward.h): the same as a hybrid
 * CONNECT to guest port @port, on an AF_VSOCK stream, with no reply line.
 */
static void fwd_connect(void *ctx, int fd, int type, uint32_t port)
{
	struct udev *d = ctx;

	host_connect_as(d, fd, type, port, d->fw.ops->stream_init, false);
}

/* ---- rings ---------------------------------------------------------------------- */

static const char *ring_name(unsigned int i)
{
	return i == RING_RX ? "rx" : "tx";
}

/*
 * Ring @i's areas in @mem, at the sizes struct vq_config asks for (event
 * words included). The vhost-user layer checked them on SET_VRING_ADDR,
 * SET_VRING_NUM and SET_MEM_TABLE; this only turns them into pointers.
 */
static int ring_translate(struct udev *d, const struct gmem *mem, unsigned int i,
			  struct vq_config *cfg)
{
	const struct vu_vring *vr = &d->vu->vrings[i];
	uint64_t n = vr->num;

	*cfg = (struct vq_config){
		.name = ring_name(i),
		.num = vr->num,
		.desc = gmem_uva_ptr(mem, vr->addr.desc, 16 * n),
		.avail = gmem_uva_ptr(mem, vr->addr.avail, 6 + 2 * n),
		.used = gmem_uva_ptr(mem, vr->addr.used, 6 + 8 * n),
		.features = d->features,
		.mem = &d->vu->mem, /* the table this one becomes, at the same address */
	};
	if (!cfg->desc || !cfg->avail || !cfg->used) {
		log_err("%s: %s ring (size %u) does not fit in guest memory", d->cfg.name,
			ring_name(i), vr->num);
		return -EFAULT;
	}
	return 0;
}

static void on_kick(void *ctx, uint32_t events);

static void ring_unwatch(struct udev *d, struct udev_ring *r)
{
	loop_del(d->loop, &r->kick_w);
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	r->kick_fd = -1;
	vq_fini(&r->vq);
	r->live = false;
	r->held = false;
	if (r->index == RING_TX)
		d->tx_hold_since = 0;
	if (r->index == RING_RX && d->cfg.hub)
		sib_set_open(d->cfg.hub, d->cfg.port, false);
}

static int ring_start(struct udev *d, struct udev_ring *r)
{
	const struct vu_vring *vr = &d->vu->vrings[r->index];
	struct vq_config cfg;
	int rc = ring_translate(d, &d->vu->mem, r->index, &cfg);

	if (rc < 0)
		return rc;
	r->kick_fd = fcntl(vr->kick_fd, F_DUPFD_CLOEXEC, 3);
	if (r->kick_fd < 0) {
		rc = -errno;
		log_err("%s: %s ring: unusable kick fd: %s", d->cfg.name, cfg.name, strerror(-rc));
		return rc;
	}
	rc = vq_init(&r->vq, &cfg);
	if (rc == 0)
		rc = loop_add(d->loop, &r->kick_w, r->kick_fd, EPOLLIN, on_kick, r);
	if (rc < 0) {
		log_err("%s: cannot start the %s ring: %s", d->cfg.name, cfg.name, strerror(-rc));
		ring_unwatch(d, r);
		return rc;
	}
	vq_set_last_avail(&r->vq, r->pos);
	r->live = true;
	r->held = false;
	r->kick_warned = false;
	r->src_kick = vr->kick_fd;
	r->num = vr->num;
	r->addr = vr->addr;
	r->features = d->features;
	if (r->index == RING_RX && d->cfg.hub)
		sib_set_open(d->cfg.hub, d->cfg.port, true);
	log_info("%s: %s ring started: size %u, next avail index %u", d->cfg.name, cfg.name,
		 r->num, r->pos);
	return 0;
}

/* Stop @r, remembering where: a held chain goes back to the guest's side. */
static void ring_stop(struct udev *d, struct udev_ring *r)
{
	if (!r->live)
		return;
	vq_flush(&r->vq);
	r->pos = (uint16_t)(vq_last_avail(&r->vq) - (r->held ? 1 : 0));
	ring_unwatch(d, r);
}

/* Same ring, new memory table: same positions, new pointers. */
static void ring_remap(struct udev *d, struct udev_ring *r, const struct vq_config *cfg)
{
	uint16_t pos;

	vq_flush(&r->vq);
	pos = (uint16_t)(vq_last_avail(&r->vq) - (r->held ? 1 : 0));
	r->held = false;
	vq_fini(&r->vq);
	if (vq_init(&r->vq, cfg) < 0) {
		r->pos = pos;
		ring_unwatch(d, r);
		return;
	}
	vq_set_last_avail(&r->vq, pos);
	/* run once more when the table is in place (it is not, during the hook) */
	eventfd_write(r->kick_fd, 1);
}

static bool ring_wanted(const struct udev *d, const struct vu_vring *vr)
{
	return !d->failed && d->vu->mem.nregions > 0 && vu_vring_ready(vr) && vr->enabled &&
	       vr->started;
}

/* The running vq was built from other values than the ring has now. */
static bool ring_stale(const struct udev *d, const struct udev_ring *r, const struct vu_vring *vr)
{
	return r->num != vr->num || r->src_kick != vr->kick_fd || r->features != d->features ||
	       memcmp(&r->addr, &vr->addr, sizeof(r->addr)) != 0;
}

static void ring_publish(struct udev *d, struct udev_ring *r)
{
	int fd;

	if (!r->live)
		return;
	vq_flush(&r->vq);
	if (!vq_should_notify(&r->vq))
		return;
	fd = d->vu ? d->vu->vrings[r->index].call_fd : -1;
	if (fd >= 0)
		eventfd_write(fd, 1);
}

/* Come back after the loop has served other fds. */
static void ring_yield(struct udev_ring *r)
{
	eventfd_write(r->kick_fd, 1);
}

/* The held chain, or the next one. Return: as vq_pop(). */
static int ring_next(struct udev_ring *r)
{
	if (r->held) {
		r->held = false;
		return 0;
	}
	return vq_pop(&r->vq, r->iov, UDEV_IOV_MAX, &r->e);
}

static void close_all(struct udev *d, const char *why)
{
	uint32_t n = d->ct.count;

	conn_table_clear(&d->ct);
	if (n)
		log_info("%s: %u connection%s closed: %s", d->cfg.name, n, n == 1 ? "" : "s", why);
}

/* A ring broke a virtio rule: stop the device until the front end acts. */
static void dev_fail(struct udev *d, struct udev_ring *r)
{
	int err_fd = d->vu ? d->vu->vrings[r->index].err_fd : -1;

	log_err("%s: %s ring broken (%s): device stopped until the front end stops or resets it",
		d->cfg.name, ring_name(r->index), vq_broken_reason(&r->vq));
	if (err_fd >= 0)
		eventfd_write(err_fd, 1);
	d->failed = true;
	USTATS_ADD(broken_rings, 1);
	for (unsigned int i = 0; i < UDEV_NRINGS; i++)
		ring_stop(d, &d->ring[i]);
	close_all(d, "ring broken");
}

/* ---- tx: guest → host ----------------------------------------------------------- */

/* Return: true when done with the chain, false to hold it (sibling inbox full). */
static bool tx_sibling(struct udev *d, const struct pkt_hdr *h, const struct iovec *pl,
		       size_t npl, uint64_t now)
{
	int rc = d->cfg.hub ? sib_send(d->cfg.hub, d->cfg.port, h, pl, npl) : -EHOSTUNREACH;

	if (rc == -EAGAIN) {
		if (!d->tx_hold_since)
			d->tx_hold_since = now;
		if (now - d->tx_hold_since < UDEV_SIB_HOLD_MS)
			return false;
		glog(d, LOG_LVL_WARN, "%s: CID %llu takes no packets: %s dropped", d->cfg.name,
		     (unsigned long long)h->dst_cid, pkt_op_name(h->op));
		USTATS_ADD(sibling_drops, 1);
	} else if (rc < 0) {
		USTATS_ADD(sibling_drops, 1);
		log_debug("%s: %s to CID %llu dropped: %s", d->cfg.name, pkt_op_name(h->op),
			  (unsigned long long)h->dst_cid,
			  rc == -ENOTCONN ? "its device is not running" : "no such sibling");
	}
	d->tx_hold_since = 0;
	return true;
}

/* One tx chain. Return: true when done with it, false to hold it. */
static bool tx_packet(struct udev *d, const struct udev_ring *r, uint64_t now)
{
	struct iovec pl[PKT_MAX_IOV];
	struct pkt_hdr h;
	size_t npl = 0;
	int rc = pkt_parse(r->iov, r->e.out_num, &h, pl, PKT_MAX_IOV, &npl);

	/* virtio "Socket Device": tx buffers are device-readable only */
	if (r->e.in_num && rc == 0)
		rc = -EINVAL;
	if (rc < 0) {
		glog(d, LOG_LVL_WARN, "%s: malformed tx packet (%u bytes, %u writable): %s",
		     d->cfg.name, r->e.out_len, r->e.in_len, strerror(-rc));
		conn_table_recv_malformed(&d->ct, rc == -EBADMSG ? NULL : &h);
		USTATS_ADD(bad_packets, 1);
		return true;
	}
	if (h.src_cid != d->cfg.cid) {
		/* a guest must not speak for another CID: drop, never answer */
		glog(d, LOG_LVL_WARN, "%s: %s from CID %llu dropped: the guest is CID %llu",
		     d->cfg.name, pkt_op_name(h.op), (unsigned long long)h.src_cid,
		     (unsigned long long)d->cfg.cid);
		USTATS_ADD(bad_packets, 1);
		return true;
	}
	if (h.dst_cid != VSOCK_CID_HOST) {
		if (!tx_sibling(d, &h, pl, npl, now))
			return false;
	} else if (conn_table_recv(&d->ct, &h, pl, npl, now) == CT_NEW_REQUEST) {
		guest_connect(d, &h);
	} else {
		touch(d, h.dst_port, h.src_port, h.type);
	}
	if (h.op == VSOCK_OP_RW)
		USTATS_ADD(tx_bytes, h.len);
	return true;
}

static int tx_batch(struct udev *d, struct udev_ring *r, uint64_t now)
{
	while (!conn_table_tx_blocked(&d->ct)) {
		int rc;

		if (!d->tx_budget)
			return TX_BUDGET;
		rc = ring_next(r);
		if (rc == -EAGAIN)
			return TX_EMPTY;
		if (rc == -ENOMEM)
			return TX_BUDGET; /* nothing taken: try again after other events */
		if (rc < 0)
			return TX_BROKEN;
		if (!tx_packet(d, r, now)) {
			r->held = true;
			return TX_STOPPED;
		}
		if (vq_push(&r->vq, r->e.head, 0) < 0)
			return TX_BROKEN;
		d->tx_budget--;
		USTATS_ADD(tx_packets, 1);
	}
	return TX_STOPPED; /* replies cannot be delivered: wait for rx to drain them */
}

static void tx_drain(struct udev *d, uint64_t now)
{
	struct udev_ring *r = &d->ring[RING_TX];
	int rc;

	while (r->live) {
		vq_disable_notify(&r->vq);
		rc = tx_batch(d, r, now);
		/* the held payload lives in chains ring_publish() hands back */
		conn_table_tx_flush(&d->ct, now);
		if (rc == TX_BROKEN) {
			dev_fail(d, r);
			return;
		}
		ring_publish(d, r);
		/* kicks back on: what stopped us is resolved by another event */
		if (!vq_enable_notify(&r->vq) && rc == TX_EMPTY)
			return;
		if (rc == TX_BUDGET)
			ring_yield(r);
		if (rc != TX_EMPTY)
			return;
	}
}

/* ---- rx: host and siblings → guest ---------------------------------------------- */

static bool rx_has_work(struct udev *d)
{
	return conn_table_has_rx(&d->ct) || (d->cfg.hub && sib_pending(d->cfg.hub, d->cfg.port));
}

static int rx_source(struct udev *d, bool sibling, struct conn_rxbufs *rb, uint64_t now)
{
	struct pkt_hdr out;
	int rc;

	if (sibling) {
		rc = d->cfg.hub ? sib_recv(d->cfg.hub, d->cfg.port, rb->buf[0].iov, rb->buf[0].niov,
					   &rb->buf[0].len)
				: -EAGAIN;
		return rc < 0 ? rc : 1;
	}
	rc = conn_table_fill_rxv(&d->ct, rb, &out, now);
	if (rc > 0)
		touch(d, out.src_port, out.dst_port, out.type);
	if (rc > 0 && out.op == VSOCK_OP_RST)
		USTATS_ADD(rst_sent, 1);
	return rc;
}

/* conn_rxbufs.more: one more chain for the read being planned. */
static bool rx_more(struct conn_rxbufs *rb)
{
	struct udev_rxbatch *b = rb->ctx;
	unsigned int k = rb->n;

	if (vq_pop(&b->r->vq, b->iov[k], UDEV_IOV_MAX, &b->e[k]) < 0)
		return false;
	rb->n++; /* taken: pushed or un-popped by rx_fill() */
	if (b->e[k].out_num) {
		/* virtio "Socket Device": rx buffers are device-writable only */
		vq_mark_broken(&b->r->vq, "rx chain %u has %u device-readable buffers", b->e[k].head,
			       b->e[k].out_num);
		return false;
	}
	rb->buf[k] = (struct conn_rxbuf){ .iov = b->iov[k], .niov = b->e[k].in_num };
	return true;
}

/*
 * Fill the current chain, and more chains if a host read wants them.
 * Return: buffers filled (r->e's first), -EAGAIN, -ENOBUFS.
 */
static int rx_packet(struct udev *d, struct udev_ring *r, uint64_t now)
{
	struct udev_rxbatch *b = r->rxb;
	bool sib = d->rx_turn;
	int rc;

	b->r = r;
	b->buf[0] = (struct conn_rxbuf){ .iov = r->iov, .niov = r->e.in_num };
	b->rb = (struct conn_rxbufs){ .buf = b->buf, .n = 1, .max = UDEV_RX_BATCH,
				      .more = rx_more, .ctx = b };
	d->rx_turn = !d->rx_turn;
	rc = rx_source(d, sib, &b->rb, now);
	if (rc == -EAGAIN)
		rc = rx_source(d, !sib, &b->rb, now);
	return rc;
}

/* Return: 0 with a chain in r->e, -EAGAIN (none: kicks armed), -EIO (broken). */
static int rx_chain(struct udev_ring *r)
{
	int rc = ring_next(r);

	if (rc == -EAGAIN && vq_enable_notify(&r->vq))
		rc = ring_next(r);
	if (rc == 0 && r->e.out_num) {
		/* virtio "Socket Device": rx buffers are device-writable only */
		vq_mark_broken(&r->vq, "rx chain %u has %u device-readable buffers", r->e.head,
			       r->e.out_num);
		return -EIO;
	}
	if (rc == -ENOMEM)
		rc = -EAGAIN;
	return rc;
}

static void rx_count(size_t len)
{
	if (len >= VSOCK_HDR_LEN) {
		USTATS_ADD(rx_packets, 1);
		USTATS_ADD(rx_bytes, len - VSOCK_HDR_LEN);
	}
}

/*
 * Used entries for the @n buffers filled, in order; the extra chains the
 * read did not reach go back (they are the last ones popped).
 * Return: 0 or -EIO (the ring broke).
 */
static int rx_complete(struct udev_ring *r, unsigned int n)
{
	struct udev_rxbatch *b = r->rxb;
	int rc = vq_push(&r->vq, r->e.head, (uint32_t)b->buf[0].len);

	rx_count(b->buf[0].len);
	for (unsigned int k = 1; rc == 0 && k < n; k++) {
		rc = vq_push(&r->vq, b->e[k].head, (uint32_t)b->buf[k].len);
		rx_count(b->buf[k].len);
	}
	vq_unpop(&r->vq, b->rb.n - n);
	return rc < 0 || vq_is_broken(&r->vq) ? -EIO : 0;
}

static void rx_fill(struct udev *d, uint64_t now)
{
	struct udev_ring *r = &d->ring[RING_RX];
	unsigned int budget;
	int rc;

	if (!r->live)
		return;
	for (budget = 4 * r->num; rx_has_work(d);) {
		if (!budget) {
			ring_yield(r);
			break;
		}
		rc = rx_chain(r);
		if (rc == -EIO) {
			dev_fail(d, r);
			return;
		}
		if (rc < 0)
			break; /* no buffer: the guest's next kick brings us back */
		rc = rx_packet(d, r, now);
		if (rc == -EAGAIN) {
			vq_unpop(&r->vq, r->rxb->rb.n - 1);
			r->held = true; /* nothing to send after all: keep the buffer */
			if (vq_is_broken(&r->vq)) {
				dev_fail(d, r);
				return;
			}
			break;
		}
		if (rc == -ENOBUFS)
			glog(d, LOG_LVL_WARN, "%s: rx buffer of %u bytes is too small: returned unused",
			     d->cfg.name, r->e.in_len);
		if (rc < 0) {
			r->rxb->buf[0].len = 0;
			rc = 1;
		}
		if (rx_complete(r, (unsigned int)rc) < 0) {
			dev_fail(d, r);
			return;
		}
		budget -= (unsigned int)rc < budget ? (unsigned int)rc : budget;
	}
	ring_publish(d, r);
	if (!rx_has_work(d))
		vq_disable_notify(&r->vq); /* no kicks needed until something waits for a buffer */
}

/* ---- events --------------------------------------------------------------------- */

static bool timer_needed(const struct udev *d)
{
	return d->ct.count > 0 || hybrid_busy(&d->hy) || d->tx_hold_since;
}

static void timer_set(struct udev *d, bool on)
{
	struct itimerspec its = { 0 };

	if (on) {
		its.it_interval.tv_nsec = (long)UDEV_TICK_MS * 1000000;
		its.it_value = its.it_interval;
	}
	if (timerfd_settime(d->timer_fd, 0, &its, NULL) == 0)
		d->timer_on = on;
}

/*
 * Armed as soon as something needs it, disarmed only by a tick that finds
 * nothing to do (on_timer()): a connection that comes and goes between two
 * ticks costs no timerfd_settime() pair, and an idle device still sleeps
 * after at most one more tick.
 */
static void timer_update(struct udev *d)
{
	if (!d->timer_on && timer_needed(d))
		timer_set(d, true);
}

/*
 * Everything an event may have made possible: tx until it stops, rx, and
 * tx again if rx made room for its replies (each round takes tx budget,
 * so this ends), then watches and the timer.
 */
static void pump(struct udev *d)
{
	uint64_t now = hybrid_now_ms();

	d->tx_budget = 4 * (d->ring[RING_TX].num ? d->ring[RING_TX].num : 1);
	for (;;) {
		bool blocked;

		tx_drain(d, now);
		blocked = conn_table_tx_blocked(&d->ct);
		rx_fill(d, now);
		if (d->failed || !blocked || conn_table_tx_blocked(&d->ct) || !d->tx_budget)
			break;
	}
	sync_watches(d);
	timer_update(d);
}

static void on_kick(void *ctx, uint32_t events)
{
	struct udev_ring *r = ctx;
	struct udev *d = r->dev;
	uint64_t v;

	(void)events;
	if (read(r->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR) {
		/* not an eventfd after all: stop watching it rather than spin */
		if (!r->kick_warned)
			log_warn("%s: %s kick fd unreadable (%s): the ring waits for other events",
				 d->cfg.name, ring_name(r->index), strerror(errno));
		r->kick_warned = true;
		loop_del(d->loop, &r->kick_w);
	}
	pump(d);
}

static void on_timer(void *ctx, uint32_t events)
{
	struct udev *d = ctx;
	uint64_t ticks, now = hybrid_now_ms();

	(void)events;
	if (read(d->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	conn_table_expire(&d->ct, now);
	hybrid_expire(&d->hy, now);
	pump(d);
	if (d->timer_on && !timer_needed(d))
		timer_set(d, false);
}

void udev_wake(struct udev *d)
{
	pump(d);
}

unsigned int udev_farewell(struct udev *d)
{
	uint32_t n = d->ct.count;

	if (!n || !udev_running(d))
		return 0;
	conn_table_abort_all(&d->ct);
	/* rx only: tx could start connections nobody will serve */
	rx_fill(d, hybrid_now_ms());
	log_info("%s: leaving: %u connection%s reset (RST to the guest)", d->cfg.name, n,
		 n == 1 ? "" : "s");
	return n;
}

/* ---- vhost-user hooks ---------------------------------------------------------- */

static struct udev *dev_of(struct vu_dev *vu)
{
	struct udev *d = vu->priv;

	d->vu = vu;
	return d;
}

uint64_t udev_features(void)
{
	return BIT64(VIRTIO_F_VERSION_1) | BIT64(VIRTIO_RING_F_EVENT_IDX) |
	       BIT64(VIRTIO_RING_F_INDIRECT_DESC) | SEQPACKET_BIT;
}

static uint64_t u_get_features(struct vu_dev *vu)
{
	(void)vu;
	return udev_features();
}

/* Rebuild running rings whose vq was made with other features. */
static void restart_stale(struct udev *d)
{
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		struct udev_ring *r = &d->ring[i];

		if (!r->live || !ring_stale(d, r, &d->vu->vrings[i]))
			continue;
		ring_stop(d, r);
		if (ring_start(d, r) < 0)
			log_warn("%s: %s ring stopped after a feature change", d->cfg.name,
				 ring_name(i));
	}
}

static int u_set_features(struct vu_dev *vu, uint64_t features)
{
	struct udev *d = dev_of(vu);

	if (features & ~udev_features()) {
		log_err("%s: front end acked features 0x%llx that were not offered", d->cfg.name,
			(unsigned long long)(features & ~udev_features()));
		return -EINVAL;
	}
	d->features = features;
	/* the table reads it for every packet (pkt_validate) */
	d->ct.cfg.seqpacket = features & SEQPACKET_BIT;
	restart_stale(d);
	return 0;
}

static int u_set_mem_table(struct vu_dev *vu, const struct gmem *new_mem)
{
	struct udev *d = dev_of(vu);
	struct vq_config cfg[UDEV_NRINGS];
	int rc;

	/* translate everything first: a misfit leaves every ring as it was */
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		rc = d->ring[i].live ? ring_translate(d, new_mem, i, &cfg[i]) : 0;
		if (rc < 0)
			return rc;
	}
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		if (d->ring[i].live)
			ring_remap(d, &d->ring[i], &cfg[i]);
	}
	return 0;
}

static int u_ring_changed(struct vu_dev *vu, unsigned int index);

/* The guest learns of connections it can no longer have, whichever ring changed. */
static int u_vring_changed(struct vu_dev *vu, unsigned int index)
{
	struct udev *d = dev_of(vu);
	int rc;

	vsock_event_judge(vu, &d->events, index);
	rc = u_ring_changed(vu, index);
	if (rc == 0)
		vsock_event_reset_if_reattached(vu, &d->events);
	return rc;
}

static int u_ring_changed(struct vu_dev *vu, unsigned int index)
{
	struct udev *d = dev_of(vu);
	const struct vu_vring *vr;
	struct udev_ring *r;
	bool base_changed;
	int rc;

	if (index >= UDEV_NRINGS)
		return 0; /* the event queue: we never post events */
	r = &d->ring[index];
	vr = &vu->vrings[index];
	base_changed = vr->base != r->seen_base;
	r->seen_base = vr->base;
	if (r->live && (base_changed || !ring_wanted(d, vr) || ring_stale(d, r, vr)))
		ring_stop(d, r);
	if (base_changed)
		r->pos = vr->base;
	if (r->live || !ring_wanted(d, vr))
		return 0;
	if (vr->kick_fd < 0) {
		log_err("%s: %s ring has no kick eventfd; polling rings is not supported",
			d->cfg.name, ring_name(index));
		return -EINVAL;
	}
	rc = ring_start(d, r);
	if (rc == 0)
		pump(d);
	return rc;
}

static int u_vring_stop(struct vu_dev *vu, unsigned int index, uint32_t *base)
{
	struct udev *d = dev_of(vu);
	struct udev_ring *r;

	if (index >= UDEV_NRINGS) {
		*base = vu->vrings[index].base; /* never run: still where the front end put it */
		return 0;
	}
	r = &d->ring[index];
	ring_stop(d, r);
	*base = r->pos;
	r->seen_base = r->pos; /* the layer stores it as the ring's base */
	if (d->failed)
		log_info("%s: front end stopped the %s ring: the device may start again",
			 d->cfg.name, ring_name(index));
	d->failed = false;
	sync_watches(d);
	timer_update(d);
	return 0;
}

static int u_get_config(struct vu_dev *vu, uint32_t offset, uint32_t size, uint8_t *out)
{
	struct udev *d = dev_of(vu);
	uint64_t le_cid = htole64(d->cfg.cid);

	if (offset >= UDEV_CONFIG_SIZE || size > UDEV_CONFIG_SIZE - offset) {
		log_warn("%s: GET_CONFIG of %u bytes at %u: the config space is %u bytes",
			 d->cfg.name, size, offset, UDEV_CONFIG_SIZE);
		return -EINVAL;
	}
	memcpy(out, (const uint8_t *)&le_cid + offset, size);
	return 0;
}

static void udev_reset(struct udev *d, const char *why)
{
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		ring_stop(d, &d->ring[i]);
		d->ring[i].pos = 0;
		d->ring[i].seen_base = 0;
	}
	close_all(d, why);
	d->features = 0;
	d->ct.cfg.seqpacket = false;
	d->failed = false;
	sync_watches(d);
	timer_update(d);
}

static void u_reset(struct vu_dev *vu)
{
	struct udev *d = dev_of(vu);

	memset(&d->events, 0, sizeof(d->events));
	udev_reset(d, "device reset");
}

static const struct vu_dev_ops udev_ops_template = {
	.nqueues = UDEV_NQUEUES,
	.protocol_features = BIT64(VU_PROTOCOL_F_MQ) | BIT64(VU_PROTOCOL_F_REPLY_ACK) |
			     BIT64(VU_PROTOCOL_F_CONFIG) | BIT64(VU_PROTOCOL_F_RESET_DEVICE) |
			     BIT64(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
	.get_features = u_get_features,
	.set_features = u_set_features,
	.set_mem_table = u_set_mem_table,
	.vring_changed = u_vring_changed,
	.vring_stop = u_vring_stop,
	.get_config = u_get_config,
	.reset = u_reset,
};

/* ---- life cycle ----------------------------------------------------------------- */

bool udev_running(const struct udev *d)
{
	return !d->failed && d->ring[RING_RX].live && d->ring[RING_TX].live;
}

int udev_attach(void *priv)
{
	struct udev *d = priv;

	d->vu = NULL;
	memset(&d->events, 0, sizeof(d->events));
	return 0;
}

void udev_detach(void *priv)
{
	struct udev *d = priv;

	if (d->vu)
		udev_reset(d, "front end gone");
	d->vu = NULL;
}

static int table_init(struct udev *d)
{
	struct conn_table_cfg tc;
	int rc;

	conn_table_cfg_default(&tc, d->cfg.cid);
	tc.buf_alloc = d->cfg.buf_alloc;
	if (d->cfg.max_conns)
		tc.max_conns = d->cfg.max_conns;
	if (d->cfg.connect_timeout_ms)
		tc.connect_timeout_ms = d->cfg.connect_timeout_ms;
	rc = conn_table_init(&d->ct, &tc);
	if (rc < 0)
		log_err("%s: cannot set up the connection table (CID %llu, buffer %u): %s",
			d->cfg.name, (unsigned long long)d->cfg.cid, d->cfg.buf_alloc,
			strerror(-rc));
	return rc;
}

/* The rx batch: its iovec arrays are touched only as far as chains reach. */
static int rxb_init(struct udev_ring *r)
{
	struct iovec *iov = calloc((size_t)UDEV_RX_BATCH * UDEV_IOV_MAX, sizeof(*iov));

	r->rxb = calloc(1, sizeof(*r->rxb));
	if (!r->rxb || !iov) {
		free(iov);
		return -ENOMEM;
	}
	r->rxb->block = iov;
	for (unsigned int i = 0; i < UDEV_RX_BATCH; i++)
		r->rxb->iov[i] = iov + (size_t)i * UDEV_IOV_MAX;
	return 0;
}

static void rxb_fini(struct udev_ring *r)
{
	if (!r->rxb)
		return;
	free(r->rxb->block);
	free(r->rxb);
	r->rxb = NULL;
}

static int rings_init(struct udev *d)
{
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		struct udev_ring *r = &d->ring[i];

		r->dev = d;
		r->index = i;
		r->kick_fd = -1;
		r->kick_w.fd = -1;
		/*
		 * Not zeroed: vq_pop() writes the entries it reports, and pages
		 * nobody writes cost no memory (an idle VM's RSS, README "Performance").
		 */
		r->iov = malloc(UDEV_IOV_MAX * sizeof(*r->iov));
		if (!r->iov)
			return -ENOMEM;
	}
	return rxb_init(&d->ring[RING_RX]);
}

int udev_init(struct udev *d, const struct udev_cfg *cfg, struct loop *loop)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	d->loop = loop;
	d->ops = udev_ops_template;
	d->ops.max_queue_size = cfg->max_queue_size;
	d->timer_w.fd = -1;
	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	rc = d->timer_fd < 0 ? -errno : rings_init(d);
	if (rc == 0)
		rc = loop_add(loop, &d->timer_w, d->timer_fd, EPOLLIN, on_timer, d);
	if (rc < 0) {
		log_err("%s: cannot set up the device: %s", cfg->name, strerror(-rc));
		goto err;
	}
	rc = table_init(d);
	if (rc < 0)
		goto err;
	rc = hybrid_start_limits(&d->hy, loop, cfg->name, cfg->uds_path, &cfg->hybrid,
				 host_connect, d);
	if (rc < 0) {
		conn_table_fini(&d->ct);
		goto err;
	}
	d->fw.ops = cfg->fwd_ops ? cfg->fwd_ops : &fwd_vsock_ops;
	if (cfg->forward && cfg->nforward_listen) {
		rc = fwd_start(&d->fw, loop, cfg->name, d->fw.ops, cfg->forward_listen,
			       cfg->nforward_listen, fwd_connect, d);
		if (rc < 0) {
			hybrid_stop(&d->hy);
			conn_table_fini(&d->ct);
			goto err;
		}
	}
	return 0;
err:
	loop_del(loop, &d->timer_w);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		free(d->ring[i].iov);
		rxb_fini(&d->ring[i]);
	}
	return rc;
}

void udev_fini(struct udev *d)
{
	udev_reset(d, "shutting down");
	fwd_stop(&d->fw);
	hybrid_stop(&d->hy);
	conn_table_fini(&d->ct);
	loop_del(d->loop, &d->timer_w);
	close(d->timer_fd);
	d->timer_fd = -1;
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		free(d->ring[i].iov);
		d->ring[i].iov = NULL;
		rxb_fini(&d->ring[i]);
	}
}

/* ---- statistics (stats.h) -------------------------------------------------------- */

static void snap_conn(void *ctx, const struct conn *c)
{
	struct ustats_snap *s = ctx;
	const struct hostep *ep = conn_host_ctx(c);
	struct ustats_conn *o;

	if (s->nconns >= s->conns_cap)
		return;
	o = &s->conns[s->nconns++];
	memset(o, 0, sizeof(*o));
	conn_describe(c, o);
	if (ep) {
		o->bytes_to_host = ep->to_host;
		o->bytes_from_host = ep->from_host;
		o->age_ms = hybrid_now_ms() - ep->born_ms;
	}
}

void udev_snapshot(const struct udev *d, struct ustats_snap *s)
{
	s->features_set = d->vu && d->vu->features_set;
	s->features = d->features;
	s->running = udev_running(d);
	s->failed = d->failed;
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		const struct udev_ring *r = &d->ring[i];

		s->ring[i].running = r->live;
		s->ring[i].size = r->live ? r->num : 0;
		s->ring[i].next_avail = r->live ? vq_last_avail(&r->vq) : r->pos;
	}
	s->conns_open = d->ct.count;
	s->nconns = 0;
	if (s->conns)
		conn_table_foreach(&d->ct, snap_conn, s);
}
