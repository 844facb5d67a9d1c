// SPDX-License-Identifier: MIT
/*
 * Connection table of one guest (see conn_table.h). Invariants: a
 * connection is in the hash exactly while the table owns it; it is on the
 * ready list only while conn_wants_rx() was true when last settled; the
 * RST queue never holds more than cfg.rst_queue_len headers and never an
 * answer to an RST.
 */
#include "engine/user/conn_table.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "engine/user/stats.h"
#include "util/log.h"

#define PORT_ANY UINT32_MAX /* VMADDR_PORT_ANY: never a real port */

void conn_table_cfg_default(struct conn_table_cfg *cfg, uint64_t guest_cid)
{
	*cfg = (struct conn_table_cfg){
		.guest_cid = guest_cid,
		.max_conns = CONN_TABLE_DEFAULT_MAX_CONNS,
		.buf_alloc = CONN_DEFAULT_BUF_ALLOC,
		.rst_queue_len = CONN_TABLE_DEFAULT_RST_QUEUE,
		.port_base = CONN_TABLE_DEFAULT_PORT_BASE,
		.port_count = CONN_TABLE_DEFAULT_PORT_COUNT,
		.connect_timeout_ms = CONN_DEFAULT_CONNECT_TIMEOUT_MS,
		.close_timeout_ms = CONN_DEFAULT_CLOSE_TIMEOUT_MS,
	};
}

static int cfg_check(const struct conn_table_cfg *c)
{
	/* Reserved CIDs (virtio spec, Socket Device, "Device configuration
	 * layout"): 0, 1, 2, and 32-bit ANY and up. */
	if (c->guest_cid <= VSOCK_CID_HOST || c->guest_cid >= UINT32_MAX)
		return -EINVAL;
	if (!c->max_conns || c->max_conns > CONN_TABLE_MAX_CONNS_LIMIT)
		return -EINVAL;
	if (!c->buf_alloc || c->buf_alloc > CONN_TABLE_MAX_BUF_ALLOC)
		return -EINVAL;
	if (!c->rst_queue_len || c->rst_queue_len > 65536)
		return -EINVAL;
	if (!c->port_count || c->port_count - 1 > UINT32_MAX - c->port_base)
		return -EINVAL;
	if (!c->connect_timeout_ms || !c->close_timeout_ms)
		return -EINVAL;
	return 0;
}

static uint64_t random_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	/* Early boot without entropy: weaker, and the cap bounds chains anyway. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&seed;
}

int conn_table_init(struct conn_table *t, const struct conn_table_cfg *cfg)
{
	int rc = cfg_check(cfg);
	uint32_t nb = 16;

	if (rc < 0)
		return rc;
	*t = (struct conn_table){ .cfg = *cfg };
	while (nb < cfg->max_conns)
		nb <<= 1;
	t->buckets = calloc(nb, sizeof(*t->buckets));
	t->rst_q = calloc(cfg->rst_queue_len, sizeof(*t->rst_q));
	if (!t->buckets || !t->rst_q) {
		free(t->buckets);
		free(t->rst_q);
		return -ENOMEM;
	}
	t->nbuckets = nb;
	if (!t->cfg.hash_seed)
		t->cfg.hash_seed = random_seed();
	t->par = (struct conn_params){
		.gather = &t->gather,
		.guest_cid = cfg->guest_cid,
		.buf_alloc = cfg->buf_alloc,
		.connect_timeout_ms = cfg->connect_timeout_ms,
		.close_timeout_ms = cfg->close_timeout_ms,
	};
	t->next_port = cfg->port_base;
	return 0;
}

/* ---- hash ---------------------------------------------------------------- */

static uint32_t tuple_hash(const struct conn_table *t, uint32_t local_port,
			   uint32_t peer_port, uint16_t type)
{
	uint64_t x = ((uint64_t)local_port << 32 | peer_port) ^ t->cfg.hash_seed;

	/* splitmix64's finalizer: every input bit reaches the low bits */
	x += (uint64_t)type * 0x9e3779b97f4a7c15ull;
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (uint32_t)x & (t->nbuckets - 1);
}

struct conn *conn_table_lookup(const struct conn_table *t, uint32_t local_port,
			       uint32_t peer_port, uint16_t type)
{
	struct conn *c = t->buckets[tuple_hash(t, local_port, peer_port, type)];

	while (c && !(c->local_port == local_port && c->peer_port == peer_port && c->type == type))
		c = c->hnext;
	return c;
}

static void hash_insert(struct conn_table *t, struct conn *c)
{
	struct conn **b = &t->buckets[tuple_hash(t, c->local_port, c->peer_port, c->type)];

	c->hnext = *b;
	*b = c;
	t->count++;
}

static void hash_remove(struct conn_table *t, struct conn *c)
{
	struct conn **pp = &t->buckets[tuple_hash(t, c->local_port, c->peer_port, c->type)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = c->hnext;
		t->count--;
	}
}

/* ---- ready list ---------------------------------------------------------- */

static void ready_push(struct conn_table *t, struct conn *c)
{
	if (c->on_ready)
		return;
	c->rprev = t->ready_tail;
	c->rnext = NULL;
	if (t->ready_tail)
		t->ready_tail->rnext = c;
	else
		t->ready_head = c;
	t->ready_tail = c;
	c->on_ready = true;
	t->ready_count++;
}

static void ready_unlink(struct conn_table *t, struct conn *c)
{
	if (!c->on_ready)
		return;
	if (c->rprev)
		c->rprev->rnext = c->rnext;
	else
		t->ready_head = c->rnext;
	if (c->rnext)
		c->rnext->rprev = c->rprev;
	else
		t->ready_tail = c->rprev;
	c->rprev = c->rnext = NULL;
	c->on_ready = false;
	t->ready_count--;
}

static void remove_conn(struct conn_table *t, struct conn *c)
{
	ready_unlink(t, c);
	hash_remove(t, c);
	if (t->cfg.on_free)
		t->cfg.on_free(t->cfg.opaque, c);
	conn_free(c);
}

void conn_table_tx_flush(struct conn_table *t, uint64_t now_ms)
{
	struct conn *c = conn_gather_flush(&t->gather, now_ms);

	if (c)
		conn_table_settle(t, c);
}

void conn_table_settle(struct conn_table *t, struct conn *c)
{
	if (conn_is_done(c))
		remove_conn(t, c);
	else if (conn_wants_rx(c))
		ready_push(t, c);
}

void conn_table_clear(struct conn_table *t)
{
	for (uint32_t i = 0; t->buckets && i < t->nbuckets; i++) {
		while (t->buckets[i])
			remove_conn(t, t->buckets[i]);
	}
	t->rst_head = 0;
	t->rst_count = 0;
}

void conn_table_fini(struct conn_table *t)
{
	conn_table_clear(t);
	free(t->buckets);
	free(t->rst_q);
	t->buckets = NULL;
	t->rst_q = NULL;
}

/* ---- RSTs owed without a connection --------------------------------------- */

static void rst_owe(struct conn_table *t, const struct pkt_hdr *h)
{
	struct pkt_hdr r;

	if (!pkt_reply_rst(h, &r))
		return;
	if (t->rst_count == t->cfg.rst_queue_len) {
		log_debug("vsock: RST queue full, not answering %s %u->%u", pkt_op_name(h->op),
			  h->src_port, h->dst_port);
		return;
	}
	t->rst_q[(t->rst_head + t->rst_count) % t->cfg.rst_queue_len] = r;
	t->rst_count++;
}

static void stream_discard(const struct stream *host)
{
	struct stream s = *host;

	if (s.ops)
		s.ops->close(&s);
}

/* ---- guest packets --------------------------------------------------------- */

static enum conn_table_rc no_conn(struct conn_table *t, const struct pkt_hdr *h)
{
	if (h->op != VSOCK_OP_REQUEST) {
		rst_owe(t, h); /* skips RSTs itself */
		return CT_DONE;
	}
	if (t->count >= t->cfg.max_conns) {
		log_debug("vsock: connection cap %u reached, refusing port %u", t->cfg.max_conns,
			  h->dst_port);
		rst_owe(t, h);
		return CT_DONE;
	}
	return CT_NEW_REQUEST;
}

/*
 * A packet pkt_validate() answers with RST. A live connection on its tuple
 * ends as well: the RST tells the guest so, and Linux resets it the same
 * way; an RST itself still gets no answer.
 */
static void reject(struct conn_table *t, const struct pkt_hdr *h, uint64_t now_ms)
{
	struct conn *c = conn_table_lookup(t, h->dst_port, h->src_port, h->type);

	if (!c) {
		rst_owe(t, h);
		return;
	}
	if (h->op == VSOCK_OP_RST)
		conn_recv(c, h, NULL, 0, now_ms);
	else
		conn_abort(c);
	conn_table_settle(t, c);
}

enum conn_table_rc conn_table_recv(struct conn_table *t, const struct pkt_hdr *h,
				   const struct iovec *payload, size_t npayload,
				   uint64_t now_ms)
{
	struct conn *c;

	/* the held bytes go first unless this packet joins them */
	if (!conn_gather_continues(&t->gather, h))
		conn_table_tx_flush(t, now_ms);
	switch (pkt_validate(h, t->cfg.guest_cid, t->cfg.seqpacket)) {
	case PKT_DROP:
		log_debug("vsock: dropping misaddressed %s from cid %llu", pkt_op_name(h->op),
			  (unsigned long long)h->src_cid);
		USTATS_ADD(bad_packets, 1);
		return CT_DONE;
	case PKT_RST:
		USTATS_ADD(bad_packets, 1);
		reject(t, h, now_ms);
		return CT_DONE;
	case PKT_OK:
		break;
	}
	c = conn_table_lookup(t, h->dst_port, h->src_port, h->type);
	if (!c)
		return no_conn(t, h);
	conn_recv(c, h, payload, npayload, now_ms);
	conn_table_settle(t, c);
	return CT_DONE;
}

void conn_table_recv_malformed(struct conn_table *t, const struct pkt_hdr *h)
{
	struct conn *c;

	if (!h || pkt_validate(h, t->cfg.guest_cid, t->cfg.seqpacket) == PKT_DROP)
		return;
	c = conn_table_lookup(t, h->dst_port, h->src_port, h->type);
	if (!c) {
		rst_owe(t, h);
		return;
	}
	conn_abort(c);
	conn_table_settle(t, c);
}

int conn_table_accept(struct conn_table *t, const struct pkt_hdr *req,
		      const struct stream *host, struct conn **out)
{
	struct conn *c;
	int rc = 0;

	if (conn_table_lookup(t, req->dst_port, req->src_port, req->type))
		rc = -EEXIST;
	else if (t->count >= t->cfg.max_conns)
		rc = -EBUSY;
	if (rc) {
		stream_discard(host);
		rst_owe(t, req);
		return rc;
	}
	c = conn_new_peer(&t->par, req, host);
	if (!c) {
		rst_owe(t, req);
		return -ENOMEM;
	}
	hash_insert(t, c);
	conn_table_settle(t, c);
	if (out)
		*out = c;
	return 0;
}

void conn_table_refuse(struct conn_table *t, const struct pkt_hdr *req)
{
	rst_owe(t, req);
}

/* ---- host-initiated connections -------------------------------------------- */

int conn_table_alloc_port(struct conn_table *t, uint32_t peer_port, uint16_t type,
			  uint32_t *port)
{
	/* count + 2 distinct candidates hold a free one (count used, PORT_ANY). */
	uint64_t tries = (uint64_t)t->count + 2;

	if (tries > t->cfg.port_count)
		tries = t->cfg.port_count;
	for (uint64_t i = 0; i < tries; i++) {
		uint32_t p = t->next_port;

		t->next_port = p - t->cfg.port_base == t->cfg.port_count - 1 ? t->cfg.port_base
									       : p + 1;
		if (p != PORT_ANY && !conn_table_lookup(t, p, peer_port, type)) {
			*port = p;
			return 0;
		}
	}
	return -EADDRINUSE;
}

int conn_table_connect(struct conn_table *t, uint32_t peer_port, const struct stream *host,
		       uint64_t now_ms, struct conn **out)
{
	return conn_table_connect_type(t, peer_port, VSOCK_TYPE_STREAM, host, now_ms, out);
}

int conn_table_connect_type(struct conn_table *t, uint32_t peer_port, uint16_t type,
			    const struct stream *host, uint64_t now_ms, struct conn **out)
{
	struct conn *c;
	uint32_t port;
	int rc = t->count >= t->cfg.max_conns ? -EBUSY : 0;

	if (!rc)
		rc = conn_table_alloc_port(t, peer_port, type, &port);
	if (rc) {
		stream_discard(host);
		return rc;
	}
	c = conn_new_local(&t->par, host, type, port, peer_port, now_ms);
	if (!c)
		return -ENOMEM;
	hash_insert(t, c);
	conn_table_settle(t, c);
	if (out)
		*out = c;
	return 0;
}

/* ---- rx side, events, timers ----------------------------------------------- */

static int fill_owed_rst(struct conn_table *t, const struct iovec *rx, size_t nrx,
			 struct pkt_hdr *out, size_t *len)
{
	int rc = pkt_hdr_to_iov(&t->rst_q[t->rst_head], rx, nrx);

	if (rc < 0)
		return rc;
	*out = t->rst_q[t->rst_head];
	*len = VSOCK_HDR_LEN;
	t->rst_head = (t->rst_head + 1) % t->cfg.rst_queue_len;
	t->rst_count--;
	return 0;
}

int conn_table_fill_rxv(struct conn_table *t, struct conn_rxbufs *rb, struct pkt_hdr *out,
			uint64_t now_ms)
{
	if (t->rst_count) {
		int rc = fill_owed_rst(t, rb->buf[0].iov, rb->buf[0].niov, out, &rb->buf[0].len);

		return rc < 0 ? rc : 1;
	}
	/* One pass at most: a connection that yields nothing goes to the back. */
	for (uint32_t i = t->ready_count; i > 0 && t->ready_head; i--) {
		struct conn *c = t->ready_head;
		int rc;

		ready_unlink(t, c);
		rc = conn_fill_rxv(c, rb, out, now_ms);
		conn_table_settle(t, c);
		if (rc != -EAGAIN)
			return rc;
	}
	return -EAGAIN;
}

int conn_table_fill_rx(struct conn_table *t, const struct iovec *rx, size_t nrx,
		       struct pkt_hdr *out, size_t *len, uint64_t now_ms)
{
	struct conn_rxbuf b = { .iov = rx, .niov = nrx };
	struct conn_rxbufs rb = { .buf = &b, .n = 1, .max = 1 };
	int rc = conn_table_fill_rxv(t, &rb, out, now_ms);

	if (rc < 0)
		return rc;
	*len = b.len;
	return 0;
}

void conn_table_host_event(struct conn_table *t, struct conn *c, bool readable, bool writable,
			   uint64_t now_ms)
{
	if (writable)
		conn_flush(c, now_ms);
	if (readable)
		conn_host_readable(c);
	conn_table_settle(t, c);
}

void conn_table_expire(struct conn_table *t, uint64_t now_ms)
{
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		struct conn *c = t->buckets[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			if (conn_timeout(c, now_ms))
				conn_table_settle(t, c);
		}
	}
}

void conn_table_abort_all(struct conn_table *t)
{
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		struct conn *c = t->buckets[i], *next;

		for (; c; c = next) {
			next = c->hnext;
			conn_abort(c);
			conn_table_settle(t, c);
		}
	}
}

uint64_t conn_table_next_deadline(const struct conn_table *t)
{
	uint64_t best = 0;

	for (uint32_t i = 0; i < t->nbuckets; i++) {
		for (const struct conn *c = t->buckets[i]; c; c = c->hnext) {
			uint64_t d = conn_deadline(c);

			if (d && (!best || d < best))
				best = d;
		}
	}
	return best;
}

bool conn_table_tx_blocked(const struct conn_table *t)
{
	return t->rst_count == t->cfg.rst_queue_len;
}

bool conn_table_has_rx(const struct conn_table *t)
{
	return t->rst_count || t->ready_head;
}

void conn_table_foreach(const struct conn_table *t, void (*fn)(void *ctx, const struct conn *c),
			void *ctx)
{
	for (uint32_t b = 0; b < t->nbuckets; b++) {
		for (const struct conn *c = t->buckets[b]; c; c = c->hnext)
			fn(ctx, c);
	}
}
