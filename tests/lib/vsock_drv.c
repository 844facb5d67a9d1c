// SPDX-License-Identifier: MIT
/*
 * Guest virtio-vsock driver for tests: what a Linux guest's
 * virtio_transport does at packet level, over tfe rings.
 *
 * Buffers: the rx ring is kept full of device-writable buffers of
 * rx_buf_size bytes (header and payload together in one descriptor like
 * Linux, or split into a 44-byte header descriptor and a payload
 * descriptor); tx packets use one slot of a private pool each, header in
 * its own descriptor and payload in a second one, like Linux (optionally in
 * an indirect table). Every rx buffer is re-posted right after its packet
 * is handled, so the pool never runs dry.
 *
 * Connections (PROTOCOLS §2.3, §2.5): a fixed table of stream connections,
 * each with a receive queue of buf_alloc bytes; credit is tracked with
 * free-running u32 counters; a peer that sends beyond the credit we gave it
 * is reset (as Linux does); SHUTDOWN bits are sticky and a SHUTDOWN with both
 * bits is answered with RST; packets for unknown tuples get RST, except RST
 * itself. Received headers are validated (used length vs header length)
 * before their payload is touched.
 *
 * Nothing here sleeps except tfe_vsock_wait() and the helpers that take a
 * timeout; everything else is non-blocking so that a test can drive the
 * guest and host sockets from one thread.
 */
#include "tfe.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TX_HDR_ROOM 64u   /* header area of a tx slot (raw headers may exceed 44) */
#define WAIT_SLICE_MS 10

/* ---- header wire format ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void tfe_vsock_hdr_pack(uint8_t out[TFE_VSOCK_HDR_SIZE], const struct tfe_vsock_pkt *p)
{
	put_le(out + 0, p->src_cid, 8);
	put_le(out + 8, p->dst_cid, 8);
	put_le(out + 16, p->src_port, 4);
	put_le(out + 20, p->dst_port, 4);
	put_le(out + 24, p->len, 4);
	put_le(out + 28, p->type, 2);
	put_le(out + 30, p->op, 2);
	put_le(out + 32, p->flags, 4);
	put_le(out + 36, p->buf_alloc, 4);
	put_le(out + 40, p->fwd_cnt, 4);
}

void tfe_vsock_hdr_unpack(struct tfe_vsock_pkt *p, const uint8_t in[TFE_VSOCK_HDR_SIZE])
{
	p->src_cid = get_le(in + 0, 8);
	p->dst_cid = get_le(in + 8, 8);
	p->src_port = (uint32_t)get_le(in + 16, 4);
	p->dst_port = (uint32_t)get_le(in + 20, 4);
	p->len = (uint32_t)get_le(in + 24, 4);
	p->type = (uint16_t)get_le(in + 28, 2);
	p->op = (uint16_t)get_le(in + 30, 2);
	p->flags = (uint32_t)get_le(in + 32, 4);
	p->buf_alloc = (uint32_t)get_le(in + 36, 4);
	p->fwd_cnt = (uint32_t)get_le(in + 40, 4);
}

const char *tfe_vsock_op_name(uint16_t op)
{
	static const char *const names[] = {
		"INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN", "RW", "CREDIT_UPDATE",
		"CREDIT_REQUEST",
	};

	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "UNKNOWN";
}

uint32_t tfe_vsock_credit(uint32_t peer_buf_alloc, uint32_t tx_cnt, uint32_t peer_fwd_cnt)
{
	uint32_t in_flight = tx_cnt - peer_fwd_cnt;   /* wraps correctly in u32 */

	return in_flight > peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
}

/* ---- set-up ---- */

static int check_opts(struct tfe_vsock_opts *o, const struct tfe_vring *tx)
{
	if (!o->buf_alloc)
		o->buf_alloc = TFE_VSOCK_DEFAULT_BUF_ALLOC;
	if (!o->rx_buf_size)
		o->rx_buf_size = 4096;
	if (!o->tx_pkt_max)
		o->tx_pkt_max = 16384;
	if (!o->credit_threshold)
		o->credit_threshold = o->buf_alloc / 4 ? o->buf_alloc / 4 : 1;
	if (o->rx_buf_size <= TFE_VSOCK_HDR_SIZE || o->rx_buf_size > TFE_VSOCK_MAX_PKT + 4096 ||
	    o->tx_pkt_max > TFE_VSOCK_MAX_PKT || (o->tx_indirect && !tx->indirect) ||
	    o->buf_alloc > (1u << 30))
		return -EINVAL;
	return 0;
}

static int post_rx(struct tfe_vsock *vs, uint16_t slot)
{
	uint64_t gpa = vs->rx_pool + (uint64_t)slot * vs->o.rx_buf_size;
	struct tfe_buf b[2] = {
		{ .gpa = gpa, .len = vs->o.rx_buf_size, .write = true },
		{ .gpa = gpa + TFE_VSOCK_HDR_SIZE, .len = vs->o.rx_buf_size - TFE_VSOCK_HDR_SIZE,
		  .write = true },
	};
	int rc;

	if (vs->o.rx_split)
		b[0].len = TFE_VSOCK_HDR_SIZE;
	rc = tfe_vring_add(vs->rx, b, vs->o.rx_split ? 2 : 1, false, slot);
	return rc < 0 ? rc : 0;
}

static uint16_t rx_slots(const struct tfe_vsock *vs)
{
	return vs->o.rx_split ? (uint16_t)(vs->rx->num / 2) : vs->rx->num;
}

static int post_event(struct tfe_vsock *vs, uint16_t slot)
{
	struct tfe_buf b = { .gpa = vs->ev_pool + 4ull * slot, .len = 4, .write = true };
	int rc = tfe_vring_add(vs->ev, &b, 1, false, slot);

	return rc < 0 ? rc : 0;
}

static int alloc_pools(struct tfe_vsock *vs)
{
	int rc;

	vs->tx_slots = vs->tx->num / 2 ? (uint16_t)(vs->tx->num / 2) : 1;
	vs->tx_slot_size = TX_HDR_ROOM + vs->o.tx_pkt_max;
	rc = tfe_mem_alloc(vs->mem, (uint64_t)vs->rx->num * vs->o.rx_buf_size, 64, &vs->rx_pool);
	if (rc == 0)
		rc = tfe_mem_alloc(vs->mem, (uint64_t)vs->tx_slots * vs->tx_slot_size, 64,
				   &vs->tx_pool);
	if (rc == 0 && vs->ev)
		rc = tfe_mem_alloc(vs->mem, 4ull * vs->ev->num, 4, &vs->ev_pool);
	if (rc < 0)
		return rc;
	vs->tx_free = calloc(vs->tx_slots, sizeof(*vs->tx_free));
	if (!vs->tx_free)
		return -ENOMEM;
	for (uint16_t i = 0; i < vs->tx_slots; i++)
		vs->tx_free[i] = i;
	vs->tx_nfree = vs->tx_slots;
	return 0;
}

int tfe_vsock_init(struct tfe_vsock *vs, struct tfe_mem *mem, struct tfe_vring *rx,
		   struct tfe_vring *tx, struct tfe_vring *ev, uint64_t cid,
		   const struct tfe_vsock_opts *o)
{
	int rc;

	memset(vs, 0, sizeof(*vs));
	vs->mem = mem;
	vs->rx = rx;
	vs->tx = tx;
	vs->ev = ev;
	vs->cid = cid;
	if (o)
		vs->o = *o;
	rc = check_opts(&vs->o, tx);
	if (rc == 0)
		rc = alloc_pools(vs);
	for (uint16_t i = 0; rc == 0 && i < rx_slots(vs); i++)
		rc = post_rx(vs, i);
	for (uint16_t i = 0; rc == 0 && ev && i < ev->num; i++)
		rc = post_event(vs, i);
	if (rc < 0) {
		tfe_vsock_fini(vs);
		return rc;
	}
	if (ev)
		tfe_vring_kick(ev);
	rc = tfe_vring_kick(rx);
	return rc < 0 ? rc : 0;
}

static void free_conn(struct tfe_vsock_conn *c)
{
	free(c->rxq);
	memset(c, 0, sizeof(*c));
}

void tfe_vsock_fini(struct tfe_vsock *vs)
{
	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++)
		free_conn(&vs->conns[i]);
	free(vs->tx_free);
	vs->tx_free = NULL;
	vs->tx_nfree = 0;
}

/* ---- tx ---- */

static void reclaim_tx(struct tfe_vsock *vs, unsigned int *work)
{
	uint32_t len;
	uintptr_t slot;

	while (tfe_vring_get_used(vs->tx, &len, &slot) == 1) {
		if (slot < vs->tx_slots && vs->tx_nfree < vs->tx_slots)
			vs->tx_free[vs->tx_nfree++] = (uint16_t)slot;
		(*work)++;
	}
}

int tfe_vsock_send_raw(struct tfe_vsock *vs, const void *hdr, size_t hdr_len,
		       const void *payload, size_t len)
{
	bool indirect = vs->o.tx_indirect;
	unsigned int work = 0, n = 0;
	struct tfe_buf b[2];
	uint64_t base;
	uint16_t slot;
	int rc;

	reclaim_tx(vs, &work);
	if (hdr_len > TX_HDR_ROOM || len > vs->o.tx_pkt_max)
		return -EMSGSIZE;
	if (hdr_len + len == 0)
		return -EINVAL;
	if (vs->tx_nfree == 0 || vs->tx->num_free < (indirect ? 1u : 2u))
		return -EAGAIN;
	slot = vs->tx_free[--vs->tx_nfree];
	base = vs->tx_pool + (uint64_t)slot * vs->tx_slot_size;
	if (hdr_len) {
		memcpy(tfe_mem_ptr(vs->mem, base, hdr_len), hdr, hdr_len);
		b[n++] = (struct tfe_buf){ .gpa = base, .len = (uint32_t)hdr_len };
	}
	if (len) {
		memcpy(tfe_mem_ptr(vs->mem, base + TX_HDR_ROOM, len), payload, len);
		b[n++] = (struct tfe_buf){ .gpa = base + TX_HDR_ROOM, .len = (uint32_t)len };
	}
	rc = tfe_vring_add(vs->tx, b, n, indirect, slot);
	if (rc < 0) {
		vs->tx_free[vs->tx_nfree++] = slot;
		return rc == -ENOSPC ? -EAGAIN : rc;
	}
	vs->tx_pkts++;
	rc = tfe_vring_kick(vs->tx);
	return rc < 0 ? rc : 0;
}

int tfe_vsock_send_pkt(struct tfe_vsock *vs, struct tfe_vsock_pkt *p, const void *payload,
		       size_t len)
{
	uint8_t raw[TFE_VSOCK_HDR_SIZE];

	p->len = (uint32_t)len;
	tfe_vsock_hdr_pack(raw, p);
	return tfe_vsock_send_raw(vs, raw, sizeof(raw), payload, len);
}

void tfe_vsock_conn_pkt(const struct tfe_vsock *vs, const struct tfe_vsock_conn *c,
			uint16_t op, uint32_t flags, struct tfe_vsock_pkt *p)
{
	*p = (struct tfe_vsock_pkt){
		.src_cid = vs->cid, .dst_cid = c->peer_cid,
		.src_port = c->local_port, .dst_port = c->peer_port,
		.type = TFE_VSOCK_TYPE_STREAM, .op = op, .flags = flags,
		.buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt,
	};
}

/* Every packet advertises our credit, so each one counts as an update. */
static int conn_send(struct tfe_vsock *vs, struct tfe_vsock_conn *c, uint16_t op, uint32_t flags,
		     const void *payload, size_t len)
{
	struct tfe_vsock_pkt p;
	int rc;

	tfe_vsock_conn_pkt(vs, c, op, flags, &p);
	rc = tfe_vsock_send_pkt(vs, &p, payload, len);
	if (rc == 0) {
		c->fwd_cnt_sent = c->fwd_cnt;
		if (op == TFE_VSOCK_OP_RST)
			vs->rst_sent++;
	} else if (op != TFE_VSOCK_OP_RW) {
		vs->dropped_replies++;
		tfe_log(1, "vsock %s on port %u not sent: %s", tfe_vsock_op_name(op),
			 c->local_port, strerror(-rc));
	}
	return rc;
}

/* RST for a packet that matches no connection: swap the tuple (§2.5). */
static void rst_reply(struct tfe_vsock *vs, const struct tfe_vsock_pkt *in)
{
	struct tfe_vsock_pkt p = {
		.src_cid = vs->cid, .dst_cid = in->src_cid,
		.src_port = in->dst_port, .dst_port = in->src_port,
		.type = in->type, .op = TFE_VSOCK_OP_RST,
	};

	if (in->op == TFE_VSOCK_OP_RST)
		return;    /* never answer RST with RST */
	if (tfe_vsock_send_pkt(vs, &p, NULL, 0) == 0)
		vs->rst_sent++;
	else
		vs->dropped_replies++;
}

static void close_with_rst(struct tfe_vsock *vs, struct tfe_vsock_conn *c, int error)
{
	conn_send(vs, c, TFE_VSOCK_OP_RST, 0, NULL, 0);
	c->state = TFE_CONN_CLOSED;
	c->error = error;
}

static void send_credit_update(struct tfe_vsock *vs, struct tfe_vsock_conn *c)
{
	c->pending_update = conn_send(vs, c, TFE_VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0) == -EAGAIN;
}

/* ---- connection table ---- */

static struct tfe_vsock_conn *find_conn(struct tfe_vsock *vs, uint64_t peer_cid,
					uint32_t peer_port, uint32_t local_port)
{
	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++) {
		struct tfe_vsock_conn *c = &vs->conns[i];

		if (c->state != TFE_CONN_FREE && c->peer_cid == peer_cid &&
		    c->peer_port == peer_port && c->local_port == local_port)
			return c;
	}
	return NULL;
}

static struct tfe_vsock_conn *new_conn(struct tfe_vsock *vs, uint64_t peer_cid,
				       uint32_t peer_port, uint32_t local_port)
{
	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++) {
		struct tfe_vsock_conn *c = &vs->conns[i];

		if (c->state != TFE_CONN_FREE)
			continue;
		c->rxq = malloc(vs->o.buf_alloc);
		if (!c->rxq)
			return NULL;
		c->peer_cid = peer_cid;
		c->peer_port = peer_port;
		c->local_port = local_port;
		c->buf_alloc = vs->o.buf_alloc;
		c->state = TFE_CONN_CONNECTING;
		return c;
	}
	return NULL;
}

static bool listening(const struct tfe_vsock *vs, uint32_t port)
{
	for (unsigned int i = 0; i < vs->nlisten; i++)
		if (vs->listen_ports[i] == port)
			return true;
	return false;
}

/* ---- receive path ---- */

static void rxq_put(struct tfe_vsock_conn *c, const uint8_t *data, uint32_t len)
{
	uint32_t tail = (c->rxq_head + c->rxq_len) % c->buf_alloc;
	uint32_t first = c->buf_alloc - tail < len ? c->buf_alloc - tail : len;

	memcpy(c->rxq + tail, data, first);
	memcpy(c->rxq, data + first, len - first);
	c->rxq_len += len;
}

static void recv_rw(struct tfe_vsock *vs, struct tfe_vsock_conn *c, const struct tfe_vsock_pkt *p,
		    const uint8_t *payload)
{
	/* the peer may only use the credit we advertised (§2.3) */
	if (p->len > c->buf_alloc - c->rxq_len) {
		tfe_log(1, "vsock peer overran our credit on port %u (%u queued, %u more)",
			 c->local_port, c->rxq_len, p->len);
		close_with_rst(vs, c, -ENOBUFS);
		return;
	}
	rxq_put(c, payload, p->len);
}

static void recv_shutdown(struct tfe_vsock *vs, struct tfe_vsock_conn *c, uint32_t flags)
{
	c->peer_shutdown |= flags & TFE_VSOCK_SHUTDOWN_BOTH;
	/* both directions done: answer with RST like Linux, the data stays readable */
	if (c->peer_shutdown == TFE_VSOCK_SHUTDOWN_BOTH)
		close_with_rst(vs, c, 0);
}

static void recv_connected(struct tfe_vsock *vs, struct tfe_vsock_conn *c,
			   const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	switch (p->op) {
	case TFE_VSOCK_OP_RW:
		recv_rw(vs, c, p, payload);
		break;
	case TFE_VSOCK_OP_CREDIT_UPDATE:
		break;  /* the credit fields were taken already */
	case TFE_VSOCK_OP_CREDIT_REQUEST:
		send_credit_update(vs, c);
		break;
	case TFE_VSOCK_OP_SHUTDOWN:
		recv_shutdown(vs, c, p->flags);
		break;
	case TFE_VSOCK_OP_RST:
		c->rst_received = true;
		/* after an orderly close an RST is the expected end, not an error */
		c->error = (c->state == TFE_CONN_CLOSING ||
			    c->peer_shutdown == TFE_VSOCK_SHUTDOWN_BOTH) ? 0 : -ECONNRESET;
		c->state = TFE_CONN_CLOSED;
		break;
	default:
		vs->bad_pkts++;
		tfe_log(2, "vsock %s on an established connection ignored",
			  tfe_vsock_op_name(p->op));
	}
}

static void recv_connecting(struct tfe_vsock *vs, struct tfe_vsock_conn *c,
			    const struct tfe_vsock_pkt *p)
{
	switch (p->op) {
	case TFE_VSOCK_OP_RESPONSE:
		c->state = TFE_CONN_ESTABLISHED;
		c->responded = true;
		break;
	case TFE_VSOCK_OP_RST:
		c->rst_received = true;
		c->state = TFE_CONN_CLOSED;
		c->error = -ECONNREFUSED;
		break;
	case TFE_VSOCK_OP_INVALID:
		break;
	default:
		/* like Linux in SYN_SENT: anything else is a protocol error */
		close_with_rst(vs, c, -EPROTO);
	}
}

static void recv_request(struct tfe_vsock *vs, const struct tfe_vsock_pkt *p)
{
	struct tfe_vsock_conn *c = NULL;

	if (listening(vs, p->dst_port))
		c = new_conn(vs, p->src_cid, p->src_port, p->dst_port);
	if (!c) {
		rst_reply(vs, p);
		return;
	}
	c->incoming = true;
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	c->state = TFE_CONN_ESTABLISHED;
	if (conn_send(vs, c, TFE_VSOCK_OP_RESPONSE, 0, NULL, 0) < 0)
		free_conn(c);
}

static void handle_pkt(struct tfe_vsock *vs, const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	struct tfe_vsock_conn *c;

	if (p->dst_cid != vs->cid) {
		vs->bad_pkts++;
		return;
	}
	if (p->type != TFE_VSOCK_TYPE_STREAM) {
		if (!vs->other_types_raw)
			rst_reply(vs, p);
		return;
	}
	c = find_conn(vs, p->src_cid, p->src_port, p->dst_port);
	if (!c) {
		if (p->op == TFE_VSOCK_OP_REQUEST)
			recv_request(vs, p);
		else
			rst_reply(vs, p);
		return;
	}
	if (p->buf_alloc != c->peer_buf_alloc || p->fwd_cnt != c->peer_fwd_cnt)
		c->credit_requested = false;
	c->peer_buf_alloc = p->buf_alloc;
	c->peer_fwd_cnt = p->fwd_cnt;
	if (c->state == TFE_CONN_CONNECTING)
		recv_connecting(vs, c, p);
	else if (c->state == TFE_CONN_CLOSED)
		rst_reply(vs, p);
	else
		recv_connected(vs, c, p, payload);
}

/* One used rx buffer: validate it, then hand the packet on. */
static void rx_buffer(struct tfe_vsock *vs, uint16_t slot, uint32_t used_len)
{
	uint64_t gpa = vs->rx_pool + (uint64_t)slot * vs->o.rx_buf_size;
	const uint8_t *buf = tfe_mem_ptr(vs->mem, gpa, vs->o.rx_buf_size);
	struct tfe_vsock_pkt p;

	vs->rx_pkts++;
	if (!buf || used_len < TFE_VSOCK_HDR_SIZE || used_len > vs->o.rx_buf_size) {
		vs->bad_pkts++;
		tfe_log(1, "vsock rx buffer used with length %u", used_len);
		return;
	}
	tfe_vsock_hdr_unpack(&p, buf);
	if (p.len > used_len - TFE_VSOCK_HDR_SIZE) {
		vs->bad_pkts++;
		tfe_log(1, "vsock rx header says %u payload bytes, buffer holds %u", p.len,
			 used_len - TFE_VSOCK_HDR_SIZE);
		return;
	}
	if (vs->on_pkt)
		vs->on_pkt(vs->on_pkt_ctx, &p, buf + TFE_VSOCK_HDR_SIZE);
	handle_pkt(vs, &p, buf + TFE_VSOCK_HDR_SIZE);
}

/*
 * Every slot is taken and some hold connections a peer opened that the
 * program has not accepted yet: it can free them, so the next REQUEST
 * should wait for that rather than be refused for want of a slot.
 */
static bool backlog_full(const struct tfe_vsock *vs)
{
	bool waiting = false;

	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++) {
		const struct tfe_vsock_conn *c = &vs->conns[i];

		if (c->state == TFE_CONN_FREE)
			return false;
		waiting = waiting || (c->incoming && !c->accepted);
	}
	return waiting;
}

/*
 * Used rx buffers in order. With the backlog full the rest stays in the
 * ring until the program has accepted (the next poll takes it), as a
 * program blocked in accept() runs before a listener's queue overflows.
 */
static int drain_rx(struct tfe_vsock *vs, unsigned int *work)
{
	bool posted = false;
	uint32_t len;
	uintptr_t slot;
	int rc = 0;

	while (!backlog_full(vs) && (rc = tfe_vring_get_used(vs->rx, &len, &slot)) == 1) {
		(*work)++;
		if (slot >= rx_slots(vs))
			return -EIO;
		rx_buffer(vs, (uint16_t)slot, len);
		if (post_rx(vs, (uint16_t)slot) == 0)
			posted = true;
	}
	if (posted)
		tfe_vring_kick(vs->rx);
	return rc;
}

static void drain_events(struct tfe_vsock *vs, unsigned int *work)
{
	uint32_t len;
	uintptr_t slot;
	bool posted = false;

	while (vs->ev && tfe_vring_get_used(vs->ev, &len, &slot) == 1) {
		(*work)++;
		vs->events++;
		if (slot < vs->ev->num && post_event(vs, (uint16_t)slot) == 0)
			posted = true;
	}
	if (posted)
		tfe_vring_kick(vs->ev);
}

int tfe_vsock_poll(struct tfe_vsock *vs)
{
	unsigned int work = 0;
	int rc;

	reclaim_tx(vs, &work);
	rc = drain_rx(vs, &work);
	if (rc < 0)
		return -EIO;
	drain_events(vs, &work);
	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++)
		if (vs->conns[i].pending_update && vs->conns[i].state == TFE_CONN_ESTABLISHED)
			send_credit_update(vs, &vs->conns[i]);
	return (int)work;
}

unsigned int tfe_vsock_pollfds(const struct tfe_vsock *vs, int fds[2])
{
	unsigned int n = 0;

	if (vs->rx->call_fd >= 0)
		fds[n++] = vs->rx->call_fd;
	if (vs->tx->call_fd >= 0)
		fds[n++] = vs->tx->call_fd;
	return n;
}

static void drain_eventfd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;  /* EAGAIN: someone else drained it */
}

int tfe_vsock_wait(struct tfe_vsock *vs, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	int rc;

	do {
		struct pollfd p[2];
		int fds[2];
		unsigned int n = tfe_vsock_pollfds(vs, fds);
		/* rx left in the ring for a full backlog is not work we can do */
		bool pending = tfe_vring_arm(vs->rx) && !backlog_full(vs);
		int slice = tfe_remaining_ms(deadline);

		pending = tfe_vring_arm(vs->tx) || pending;
		for (unsigned int i = 0; i < n; i++)
			p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (!pending && slice > 0 &&
		    poll(p, n, slice < WAIT_SLICE_MS ? slice : WAIT_SLICE_MS) > 0) {
			for (unsigned int i = 0; i < n; i++)
				if (p[i].revents & POLLIN)
					drain_eventfd(p[i].fd);
		}
		rc = tfe_vsock_poll(vs);
	} while (rc == 0 && tfe_remaining_ms(deadline) > 0);
	return rc;
}

int tfe_vsock_wait_until(struct tfe_vsock *vs, bool (*done)(void *ctx), void *ctx,
			 int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	for (;;) {
		int left, rc;

		if (done(ctx))
			return 0;
		left = tfe_remaining_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		rc = tfe_vsock_wait(vs, left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
		if (rc < 0)
			return rc;
	}
}

/* ---- socket layer ---- */

static bool not_connecting(void *ctx)
{
	return ((struct tfe_vsock_conn *)ctx)->state != TFE_CONN_CONNECTING;
}

int tfe_vsock_connect_start(struct tfe_vsock *vs, uint64_t dst_cid, uint32_t dst_port,
			    uint32_t src_port, struct tfe_vsock_conn **out)
{
	struct tfe_vsock_conn *c;
	int rc;

	if (find_conn(vs, dst_cid, dst_port, src_port))
		return -EADDRINUSE;
	c = new_conn(vs, dst_cid, dst_port, src_port);
	if (!c)
		return -EMFILE;
	rc = conn_send(vs, c, TFE_VSOCK_OP_REQUEST, 0, NULL, 0);
	if (rc < 0) {
		free_conn(c);
		return rc;
	}
	*out = c;
	return 0;
}

int tfe_vsock_connect(struct tfe_vsock *vs, uint64_t dst_cid, uint32_t dst_port,
		      uint32_t src_port, int timeout_ms, struct tfe_vsock_conn **out)
{
	struct tfe_vsock_conn *c;
	int rc = tfe_vsock_connect_start(vs, dst_cid, dst_port, src_port, &c);

	if (rc < 0)
		return rc;
	rc = tfe_vsock_wait_until(vs, not_connecting, c, timeout_ms);
	if (rc == 0 && c->responded) {
		*out = c;
		return 0;
	}
	if (rc == -ETIMEDOUT)
		conn_send(vs, c, TFE_VSOCK_OP_RST, 0, NULL, 0);
	else if (rc == 0)
		rc = c->error ? c->error : -ECONNREFUSED;
	free_conn(c);
	return rc;
}

int tfe_vsock_listen(struct tfe_vsock *vs, uint32_t port)
{
	if (listening(vs, port))
		return -EADDRINUSE;
	if (vs->nlisten == TFE_VSOCK_MAX_LISTEN)
		return -ENOSPC;
	vs->listen_ports[vs->nlisten++] = port;
	return 0;
}

void tfe_vsock_unlisten(struct tfe_vsock *vs, uint32_t port)
{
	for (unsigned int i = 0; i < vs->nlisten; i++) {
		if (vs->listen_ports[i] == port) {
			vs->listen_ports[i] = vs->listen_ports[--vs->nlisten];
			return;
		}
	}
}

struct accept_ctx {
	struct tfe_vsock *vs;
	uint32_t port;
	struct tfe_vsock_conn *found;
};

static bool accept_ready(void *ctx)
{
	struct accept_ctx *a = ctx;

	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++) {
		struct tfe_vsock_conn *c = &a->vs->conns[i];

		if (c->state != TFE_CONN_FREE && c->incoming && !c->accepted &&
		    c->local_port == a->port) {
			a->found = c;
			return true;
		}
	}
	return false;
}

int tfe_vsock_accept(struct tfe_vsock *vs, uint32_t port, int timeout_ms,
		     struct tfe_vsock_conn **out)
{
	struct accept_ctx a = { .vs = vs, .port = port };
	int rc = tfe_vsock_wait_until(vs, accept_ready, &a, timeout_ms);

	if (rc < 0)
		return rc;
	a.found->accepted = true;
	*out = a.found;
	return 0;
}

static int send_state_error(const struct tfe_vsock_conn *c)
{
	if (c->state == TFE_CONN_CLOSING)
		return -EPIPE;
	if (c->state != TFE_CONN_ESTABLISHED)
		return c->error ? c->error : -ENOTCONN;
	if ((c->local_shutdown & TFE_VSOCK_SHUTDOWN_SEND) ||
	    (c->peer_shutdown & TFE_VSOCK_SHUTDOWN_RCV))
		return -EPIPE;
	return 0;
}

ssize_t tfe_vsock_send(struct tfe_vsock *vs, struct tfe_vsock_conn *c, const void *buf,
		       size_t len)
{
	size_t sent = 0;
	int rc = send_state_error(c);

	if (rc < 0)
		return rc;
	while (sent < len) {
		uint32_t credit = tfe_vsock_credit(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
		size_t chunk = len - sent;

		if (credit == 0) {
			/* stuck: ask once; the peer's next packet clears the flag */
			if (!c->credit_requested &&
			    conn_send(vs, c, TFE_VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0) == 0)
				c->credit_requested = true;
			break;
		}
		if (chunk > credit)
			chunk = credit;
		if (chunk > vs->o.tx_pkt_max)
			chunk = vs->o.tx_pkt_max;
		rc = conn_send(vs, c, TFE_VSOCK_OP_RW, 0, (const uint8_t *)buf + sent, chunk);
		if (rc < 0)
			break;
		c->tx_cnt += (uint32_t)chunk;
		sent += chunk;
	}
	if (sent)
		return (ssize_t)sent;
	return rc < 0 ? rc : -EAGAIN;
}

int tfe_vsock_send_all(struct tfe_vsock *vs, struct tfe_vsock_conn *c, const void *buf,
		       size_t len, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;
	size_t done = 0;

	while (done < len) {
		ssize_t n = tfe_vsock_send(vs, c, (const uint8_t *)buf + done, len - done);
		int left = tfe_remaining_ms(deadline), rc;

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n != -EAGAIN)
			return (int)n;
		if (left == 0)
			return -ETIMEDOUT;
		rc = tfe_vsock_wait(vs, left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void maybe_credit_update(struct tfe_vsock *vs, struct tfe_vsock_conn *c)
{
	if (c->state == TFE_CONN_ESTABLISHED &&
	    c->fwd_cnt - c->fwd_cnt_sent >= vs->o.credit_threshold)
		send_credit_update(vs, c);
}

ssize_t tfe_vsock_recv(struct tfe_vsock *vs, struct tfe_vsock_conn *c, void *buf, size_t len)
{
	uint32_t n, first;

	if (c->rxq_len == 0) {
		if (c->state == TFE_CONN_CONNECTING || c->state == TFE_CONN_FREE)
			return -ENOTCONN;
		if (c->error == -ECONNRESET || c->error == -ENOBUFS)
			return c->error;
		if (c->state == TFE_CONN_ESTABLISHED && !(c->peer_shutdown & TFE_VSOCK_SHUTDOWN_SEND))
			return -EAGAIN;
		return 0;
	}
	n = len < c->rxq_len ? (uint32_t)len : c->rxq_len;
	first = c->buf_alloc - c->rxq_head < n ? c->buf_alloc - c->rxq_head : n;
	memcpy(buf, c->rxq + c->rxq_head, first);
	memcpy((uint8_t *)buf + first, c->rxq, n - first);
	c->rxq_head = (c->rxq_head + n) % c->buf_alloc;
	c->rxq_len -= n;
	c->fwd_cnt += n;
	maybe_credit_update(vs, c);
	return n;
}

ssize_t tfe_vsock_recv_wait(struct tfe_vsock *vs, struct tfe_vsock_conn *c, void *buf,
			    size_t len, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	for (;;) {
		ssize_t n = tfe_vsock_recv(vs, c, buf, len);
		int left = tfe_remaining_ms(deadline), rc;

		if (n != -EAGAIN)
			return n;
		if (left == 0)
			return -ETIMEDOUT;
		rc = tfe_vsock_wait(vs, left < WAIT_SLICE_MS ? left : WAIT_SLICE_MS);
		if (rc < 0)
			return rc;
	}
}

int tfe_vsock_shutdown(struct tfe_vsock *vs, struct tfe_vsock_conn *c, uint32_t flags)
{
	int rc;

	if (flags == 0 || (flags & ~TFE_VSOCK_SHUTDOWN_BOTH))
		return -EINVAL;
	if (c->state != TFE_CONN_ESTABLISHED)
		return -ENOTCONN;
	rc = conn_send(vs, c, TFE_VSOCK_OP_SHUTDOWN, flags, NULL, 0);
	if (rc == 0)
		c->local_shutdown |= flags;
	return rc;
}

static bool not_closing(void *ctx)
{
	return ((struct tfe_vsock_conn *)ctx)->state != TFE_CONN_CLOSING;
}

int tfe_vsock_close_start(struct tfe_vsock *vs, struct tfe_vsock_conn *c)
{
	int rc;

	if (c->state != TFE_CONN_ESTABLISHED)
		return 0;
	rc = conn_send(vs, c, TFE_VSOCK_OP_SHUTDOWN, TFE_VSOCK_SHUTDOWN_BOTH, NULL, 0);
	c->local_shutdown = TFE_VSOCK_SHUTDOWN_BOTH;
	if (rc == 0)
		c->state = TFE_CONN_CLOSING;
	return rc;
}

int tfe_vsock_close(struct tfe_vsock *vs, struct tfe_vsock_conn *c, int timeout_ms)
{
	int rc = tfe_vsock_close_start(vs, c);

	if (c->state == TFE_CONN_CLOSING)
		rc = tfe_vsock_wait_until(vs, not_closing, c, timeout_ms);
	if (c->state == TFE_CONN_ESTABLISHED || c->state == TFE_CONN_CLOSING ||
	    c->state == TFE_CONN_CONNECTING)
		conn_send(vs, c, TFE_VSOCK_OP_RST, 0, NULL, 0);
	free_conn(c);
	return rc;
}

int tfe_vsock_reset(struct tfe_vsock *vs, struct tfe_vsock_conn *c)
{
	int rc = 0;

	if (c->state != TFE_CONN_CLOSED && c->state != TFE_CONN_FREE)
		rc = conn_send(vs, c, TFE_VSOCK_OP_RST, 0, NULL, 0);
	free_conn(c);
	return rc;
}
