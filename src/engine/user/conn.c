// SPDX-License-Identifier: MIT
/*
 * One virtio-vsock connection: state machine, credit, host stream (see
 * conn.h for the states and bounds).
 *
 * Invariants kept here:
 * - Every way out of a bad situation goes through conn_reset(): it closes
 *   the host stream, frees the buffers, and leaves at most an RST pending
 *   (none if the guest never heard of the connection or sent the RST).
 * - tx.len - tx.pre == rx_cnt - fwd_cnt (guest bytes we hold), and it never
 *   exceeds buf_alloc; for SEQPACKET, tx holds seq_in.count complete
 *   messages followed by seq_in.partial bytes of the next one.
 * - Guest-triggered log lines are debug level: a guest must not be able to
 *   flood the host's logs.
 */
#include "engine/user/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/user/hybrid_proto.h"
#include "engine/user/stats.h"
#include "util/log.h"

/* conn_emit_*(): the state changed (end of stream, reset, dropped message); look again. */
#define CONN_RETRY 1

const char *conn_state_name(enum conn_state s)
{
	switch (s) {
	case CONN_LOCAL_INIT: return "LOCAL_INIT";
	case CONN_PEER_INIT: return "PEER_INIT";
	case CONN_ESTABLISHED: return "ESTABLISHED";
	case CONN_CLOSING: return "CLOSING";
	case CONN_CLOSED: return "CLOSED";
	}
	return "?";
}

/* ---- guest bytes waiting for the host ---------------------------------- */

static uint32_t txbuf_max(const struct conn *c)
{
	return c->par->buf_alloc + CONN_PREAMBLE_MAX;
}

/* Make room for @n more bytes at the tail, growing on demand up to @max. */
static int txbuf_reserve(struct conn_txbuf *b, uint32_t n, uint32_t max)
{
	uint32_t need;
	uint64_t want;
	uint8_t *p;

	if (n > max - b->len)
		return -ENOBUFS;
	need = b->len + n;
	if (need <= b->cap - b->off)
		return 0;
	if (b->off) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	if (need <= b->cap)
		return 0;
	want = (uint64_t)b->cap * 2;
	if (want < 4096)
		want = 4096;
	if (want < need)
		want = need;
	if (want > max)
		want = max;
	p = realloc(b->data, (size_t)want);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = (uint32_t)want;
	return 0;
}

static int txbuf_append_iov(struct conn_txbuf *b, const struct iovec *iov, size_t niov,
			    size_t skip, uint32_t n, uint32_t max)
{
	struct iovec part[PKT_MAX_IOV];
	size_t np;
	int rc;

	if (n == 0)
		return 0; /* data may still be NULL */
	rc = txbuf_reserve(b, n, max);
	if (rc < 0)
		return rc;
	if (pkt_iov_slice(iov, niov, skip, n, part, PKT_MAX_IOV, &np) != n)
		return -EINVAL;
	pkt_iov_to_buf(part, np, b->data + b->off + b->len, n);
	b->len += n;
	return 0;
}

static void txbuf_release_if_empty(struct conn_txbuf *b)
{
	if (b->len == 0) {
		free(b->data);
		*b = (struct conn_txbuf){ 0 };
	}
}

/* @n bytes left the front of the buffer for the host. */
static void tx_consumed(struct conn *c, uint32_t n)
{
	uint32_t pre = n < c->tx.pre ? n : c->tx.pre;

	c->tx.pre -= pre;
	credit_rx_forwarded(&c->cr, n - pre);
	c->tx.off += n;
	c->tx.len -= n;
	txbuf_release_if_empty(&c->tx);
}

/* ---- lifecycle ---------------------------------------------------------- */

/* A reset connection's held payload is never written. */
static void gather_drop(struct conn *c)
{
	struct conn_gather *g = c->par->gather;

	if (g && g->c == c)
		*g = (struct conn_gather){ .c = NULL };
}

static void release_host(struct conn *c)
{
	gather_drop(c);
	if (c->host.ops) {
		c->host.ops->close(&c->host);
		c->host.ops = NULL;
	}
	free(c->tx.data);
	c->tx = (struct conn_txbuf){ 0 };
	free(c->seq_out.data);
	c->seq_out = (struct conn_seq_out){ 0 };
	free(c->seq_in.msgs);
	c->seq_in = (struct conn_seq_in){ 0 };
	c->host_readable = false;
	c->deadline_ms = 0;
}

/* The single reset path. @err says why (0: orderly end); returned as is. */
static int conn_reset(struct conn *c, int err)
{
	if (err)
		log_debug("vsock %u<->%u: reset in %s: %s", c->local_port, c->peer_port,
			  conn_state_name(c->state), strerror(-err));
	release_host(c);
	c->state = CONN_CLOSED;
	c->rxops = c->announced ? CONN_RXOP_RST : 0;
	return err;
}

static void enter_closing(struct conn *c, uint64_t now_ms)
{
	c->state = CONN_CLOSING;
	if (!c->deadline_ms)
		c->deadline_ms = now_ms + c->par->close_timeout_ms;
}

static struct conn *conn_alloc(const struct conn_params *par, const struct stream *host,
			       uint16_t type, uint32_t local_port, uint32_t peer_port)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c) {
		struct stream s = *host;

		if (s.ops)
			s.ops->close(&s);
		return NULL;
	}
	c->par = par;
	c->host = *host;
	c->type = type;
	c->local_port = local_port;
	c->peer_port = peer_port;
	credit_init(&c->cr, par->buf_alloc);
	return c;
}

/*
 * A host AF_VSOCK socket takes on the guest's buffer size (at most
 * CONN_HOST_BUF_MAX): Linux caps a sender's bytes in flight by its own
 * buffer, so the daemon's socket must let through what the guest's own
 * socket would (vsock_test 6.12 "SOCK_SEQPACKET msg bounds": 768 KiB sent
 * with 2 MiB buffers before the peer reads stalled at the default 256 KiB).
 */
static void mirror_buf_size(struct conn *c)
{
	uint32_t want = c->cr.peer_buf_alloc < CONN_HOST_BUF_MAX ? c->cr.peer_buf_alloc
								  : CONN_HOST_BUF_MAX;
	int rc;

	if (!c->host.ops || !c->host.ops->set_buffer_size || want == c->host_buf_size)
		return;
	c->host_buf_size = want;
	rc = c->host.ops->set_buffer_size(&c->host, want);
	if (rc < 0)
		log_debug("vsock %u<->%u: host buffer size %u: %s", c->local_port, c->peer_port, want,
			  strerror(-rc));
}

struct conn *conn_new_peer(const struct conn_params *par, const struct pkt_hdr *req,
			   const struct stream *host)
{
	struct conn *c = conn_alloc(par, host, req->type, req->dst_port, req->src_port);

	if (!c)
		return NULL;
	c->state = CONN_PEER_INIT;
	c->rxops = CONN_RXOP_RESPONSE;
	c->announced = true;
	credit_peer_update(&c->cr, req->buf_alloc, req->fwd_cnt);
	mirror_buf_size(c);
	return c;
}

struct conn *conn_new_local(const struct conn_params *par, const struct stream *host,
			    uint16_t type, uint32_t local_port, uint32_t peer_port,
			    uint64_t now_ms)
{
	struct conn *c = conn_alloc(par, host, type, local_port, peer_port);

	if (!c)
		return NULL;
	c->state = CONN_LOCAL_INIT;
	c->rxops = CONN_RXOP_REQUEST;
	c->deadline_ms = now_ms + par->connect_timeout_ms;
	return c;
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	release_host(c);
	free(c);
}

/* ---- pushing guest bytes to the host ------------------------------------ */

static int flush_stream(struct conn *c)
{
	while (c->tx.len) {
		struct iovec v = { c->tx.data + c->tx.off, c->tx.len };
		ssize_t n = c->host.ops->writev(&c->host, &v, 1, 0);

		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		if (n == 0 || (size_t)n > c->tx.len)
			return -EIO;
		tx_consumed(c, (uint32_t)n);
	}
	return 0;
}

/*
 * Queue a complete message of @len bytes (already in the txbuf) for the
 * host, growing the ring when it is full. Return: 0 or -errno.
 */
static int seq_queue(struct conn *c, uint32_t len, bool eor)
{
	struct conn_seq_in *q = &c->seq_in;

	if (q->count == q->cap) {
		/* count <= bytes held <= txbuf_max(): a bigger ring means a bug */
		uint64_t cap = q->cap ? 2ull * q->cap : CONN_SEQ_MIN_MSGS;
		uint32_t *m;

		if (q->cap >= txbuf_max(c))
			return -ENOBUFS;
		m = malloc((size_t)cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		for (uint32_t i = 0; i < q->count; i++)
			m[i] = q->msgs[(q->head + i) % q->cap];
		free(q->msgs);
		q->msgs = m;
		q->cap = (uint32_t)cap;
		q->head = 0;
	}
	q->msgs[(q->head + q->count) % q->cap] = len | (eor ? CONN_SEQ_EOR : 0);
	q->count++;
	return 0;
}

static int flush_seq(struct conn *c)
{
	struct conn_seq_in *q = &c->seq_in;

	while (q->count) {
		uint32_t l = q->msgs[q->head] & ~CONN_SEQ_EOR;
		struct iovec v = { c->tx.data + c->tx.off, l };
		ssize_t n = c->host.ops->writev(&c->host, &v, 1,
						(q->msgs[q->head] & CONN_SEQ_EOR) ? STREAM_F_EOR : 0);

		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		if ((size_t)n != l)
			return -EMSGSIZE; /* a message socket moves whole messages */
		tx_consumed(c, l);
		q->head = (q->head + 1) % q->cap;
		q->count--;
	}
	/* a burst's ring is not kept for the connection's lifetime */
	free(q->msgs);
	*q = (struct conn_seq_in){ .partial = q->partial };
	return 0;
}

static int flush_host(struct conn *c)
{
	if (!c->host.ops)
		return 0;
	return c->type == VSOCK_TYPE_SEQPACKET ? flush_seq(c) : flush_stream(c);
}

static bool tx_drained(const struct conn *c)
{
	const struct conn_gather *g = c->par->gather;

	return c->tx.len == 0 && !(g && g->c == c);
}

/*
 * After bytes moved or bits changed: the close steps that have become
 * possible. The guest closing both ways waits for our RST (virtio spec,
 * Socket Device, "Stream Sockets": clean disconnect); both directions
 * ended by half-closes start our own close.
 */
static int conn_maybe_finish(struct conn *c, uint64_t now_ms)
{
	if (!tx_drained(c))
		return 0;
	if (c->peer_shut == VSOCK_SHUTDOWN_BOTH)
		return conn_reset(c, 0);
	if (c->state == CONN_ESTABLISHED && (c->peer_shut & VSOCK_SHUTDOWN_SEND) &&
	    (c->local_shut & VSOCK_SHUTDOWN_SEND)) {
		c->local_shut = VSOCK_SHUTDOWN_BOTH;
		c->rxops |= CONN_RXOP_SHUTDOWN;
		enter_closing(c, now_ms);
	}
	return 0;
}

static int conn_progress(struct conn *c, uint64_t now_ms)
{
	if (c->state == CONN_CLOSED)
		return 0;
	/*
	 * The guest's SEND shutdown reaches the host only after its last byte.
	 * A guest that closed both ways gets a plain close instead: an AF_VSOCK
	 * host peer woken by a half-close first could still send in the gap
	 * before the close and miss the EPIPE a close() promises.
	 */
	if (tx_drained(c) && c->peer_shut == VSOCK_SHUTDOWN_SEND && !c->host_wr_shut) {
		int rc = c->host.ops->shutdown_wr(&c->host);

		c->host_wr_shut = true;
		if (rc < 0)
			return conn_reset(c, rc);
	}
	/*
	 * The guest's RCV shutdown alone makes the host's sends fail (EPIPE),
	 * as against a peer socket; closing both ways gets the close above.
	 */
	if (c->peer_shut == VSOCK_SHUTDOWN_RCV && !c->host_rd_shut && c->host.ops) {
		int rc = c->host.ops->shutdown_rd(&c->host);

		c->host_rd_shut = true;
		if (rc < 0)
			return conn_reset(c, rc);
	}
	if (c->state == CONN_ESTABLISHED && !(c->peer_shut & VSOCK_SHUTDOWN_SEND) &&
	    credit_update_due(&c->cr))
		c->rxops |= CONN_RXOP_CREDIT_UPDATE;
	return conn_maybe_finish(c, now_ms);
}

/* ---- guest → host: per-state handlers ----------------------------------- */

/*
 * Hold @len bytes of payload in the device's gather instead of writing them
 * now. Return: whether they were taken (false: write them as usual).
 */
static bool gather_take(struct conn *c, const struct iovec *payload, size_t n, uint32_t len,
			uint64_t now_ms)
{
	struct conn_gather *g = c->par->gather;

	if (!g || (g->c && g->c != c) || n > CONN_GATHER_IOV)
		return false;
	if (g->niov + n > CONN_GATHER_IOV) {
		/* full: out with the held bytes first, they come before ours */
		conn_gather_flush(g, now_ms);
		if (c->state != CONN_ESTABLISHED || c->tx.len)
			return false;
	}
	memcpy(g->iov + g->niov, payload, n * sizeof(*payload));
	g->niov += (unsigned int)n;
	g->len += len;
	g->c = c;
	return true;
}

static int rw_stream(struct conn *c, const struct iovec *payload, size_t n, uint32_t len,
		     uint64_t now_ms)
{
	uint32_t done = 0;
	int rc = flush_host(c);

	if (rc < 0)
		return rc;
	/* held only when nothing is queued ahead (order) */
	if (c->tx.len == 0 && len && gather_take(c, payload, n, len, now_ms))
		return 0;
	if (c->state == CONN_CLOSED)
		return -EPIPE; /* the held bytes' flush failed and reset it */
	/* Straight from guest memory when nothing is queued ahead (order). */
	if (tx_drained(c) && len) {
		ssize_t w = c->host.ops->writev(&c->host, payload, (int)n, 0);

		if (w < 0 && w != -EAGAIN)
			return (int)w;
		if (w > (ssize_t)len)
			return -EIO;
		if (w > 0) {
			done = (uint32_t)w;
			credit_rx_forwarded(&c->cr, done);
		}
	}
	return txbuf_append_iov(&c->tx, payload, n, done, len - done, txbuf_max(c));
}

/* A whole message, when no earlier one waits: its start (if any) is all of tx. */
static int seq_send_direct(struct conn *c, const struct iovec *payload, size_t n,
			   uint32_t len, bool eor)
{
	struct conn_seq_in *q = &c->seq_in;
	struct iovec v[PKT_MAX_IOV + 1];
	size_t nv = 0;
	ssize_t w;

	if (q->partial)
		v[nv++] = (struct iovec){ c->tx.data + c->tx.off, q->partial };
	memcpy(v + nv, payload, n * sizeof(*payload));
	nv += n;
	w = c->host.ops->writev(&c->host, v, (int)nv, eor ? STREAM_F_EOR : 0);
	if (w < 0)
		return (int)w;
	if ((size_t)w != (size_t)q->partial + len)
		return -EMSGSIZE;
	if (q->partial)
		tx_consumed(c, q->partial);
	credit_rx_forwarded(&c->cr, len);
	q->partial = 0;
	return 0;
}

static int rw_seq(struct conn *c, const struct pkt_hdr *h, const struct iovec *payload,
		  size_t n)
{
	struct conn_seq_in *q = &c->seq_in;
	bool eor = h->flags & VSOCK_SEQ_EOR;
	uint32_t total = q->partial + h->len;
	int rc;

	if (!(h->flags & VSOCK_SEQ_EOM)) {
		rc = txbuf_append_iov(&c->tx, payload, n, 0, h->len, txbuf_max(c));
		if (rc == 0)
			q->partial += h->len;
		return rc;
	}
	/* An empty message would read as end of stream on an AF_UNIX host. */
	if (total == 0)
		return 0;
	if (q->count == 0) {
		rc = seq_send_direct(c, payload, n, h->len, eor);
		if (rc != -EAGAIN)
			return rc;
	}
	rc = txbuf_append_iov(&c->tx, payload, n, 0, h->len, txbuf_max(c));
	if (rc < 0)
		return rc;
	rc = seq_queue(c, total, eor);
	if (rc < 0)
		return rc;
	q->partial = 0;
	return 0;
}

static int conn_recv_rw(struct conn *c, const struct pkt_hdr *h, const struct iovec *payload,
			size_t n, uint64_t now_ms)
{
	int rc;

	/* The guest promised to send no more (SHUTDOWN SEND is permanent). */
	if (c->peer_shut & VSOCK_SHUTDOWN_SEND)
		return conn_reset(c, -EPROTO);
	/* Overrunning our advertised credit: RST, as Linux does. */
	if (!credit_rx_fits(&c->cr, h->len))
		return conn_reset(c, -ENOBUFS);
	credit_rx_accept(&c->cr, h->len);
	if (c->type == VSOCK_TYPE_SEQPACKET)
		rc = rw_seq(c, h, payload, n);
	else
		rc = rw_stream(c, payload, n, h->len, now_ms);
	if (rc < 0)
		return conn_reset(c, rc);
	return conn_progress(c, now_ms);
}

bool conn_gather_continues(const struct conn_gather *g, const struct pkt_hdr *h)
{
	const struct conn *c = g->c;

	return c && h->op == VSOCK_OP_RW && h->dst_port == c->local_port &&
	       h->src_port == c->peer_port && h->type == c->type;
}

struct conn *conn_gather_flush(struct conn_gather *g, uint64_t now_ms)
{
	struct conn *c = g->c;
	uint32_t len = g->len, done = 0;
	ssize_t w;
	int rc;

	if (!c)
		return NULL;
	g->c = NULL; /* from here the bytes are written or in c->tx */
	w = c->host.ops->writev(&c->host, g->iov, (int)g->niov, 0);
	if (w > (ssize_t)len) {
		rc = -EIO;
	} else if (w < 0 && w != -EAGAIN) {
		rc = (int)w;
	} else {
		done = w > 0 ? (uint32_t)w : 0;
		credit_rx_forwarded(&c->cr, done);
		rc = txbuf_append_iov(&c->tx, g->iov, g->niov, done, len - done, txbuf_max(c));
	}
	g->niov = 0;
	g->len = 0;
	if (rc < 0)
		conn_reset(c, rc);
	else
		conn_progress(c, now_ms);
	return c;
}

/* The unfinished message of a guest that stopped sending can never complete. */
static void drop_partial(struct conn *c)
{
	struct conn_seq_in *q = &c->seq_in;

	if (c->type != VSOCK_TYPE_SEQPACKET || !q->partial)
		return;
	c->tx.len -= q->partial;
	credit_rx_forwarded(&c->cr, q->partial);
	q->partial = 0;
	txbuf_release_if_empty(&c->tx);
}

static int conn_recv_shutdown(struct conn *c, const struct pkt_hdr *h, uint64_t now_ms)
{
	c->peer_shut |= (uint8_t)(h->flags & VSOCK_SHUTDOWN_BOTH);
	if (c->peer_shut & VSOCK_SHUTDOWN_SEND)
		drop_partial(c);
	if (c->peer_shut == VSOCK_SHUTDOWN_BOTH && c->state != CONN_CLOSING)
		enter_closing(c, now_ms);
	return conn_progress(c, now_ms);
}

static int conn_send_ok(struct conn *c, uint64_t now_ms)
{
	char line[CONN_PREAMBLE_MAX];
	int n, rc;

	if (c->no_ok) /* an AF_VSOCK client (--forward-listen) asked no CONNECT */
		return conn_progress(c, now_ms);
	n = hybrid_format_ok(c->local_port, line, sizeof(line));
	if (n < 0)
		return conn_reset(c, n);
	rc = txbuf_reserve(&c->tx, (uint32_t)n, txbuf_max(c));
	if (rc < 0)
		return conn_reset(c, rc);
	memcpy(c->tx.data + c->tx.off + c->tx.len, line, (size_t)n);
	c->tx.len += (uint32_t)n;
	c->tx.pre += (uint32_t)n;
	if (c->type == VSOCK_TYPE_SEQPACKET) {
		/* a message socket gets the line as its first message (tx was empty) */
		rc = seq_queue(c, (uint32_t)n, false);
		if (rc < 0)
			return conn_reset(c, rc);
	}
	rc = flush_host(c);
	if (rc < 0)
		return conn_reset(c, rc);
	return conn_progress(c, now_ms);
}

static int conn_recv_local_init(struct conn *c, const struct pkt_hdr *h, uint64_t now_ms)
{
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		/* A RESPONSE to a REQUEST we have not sent is a guess. */
		if (!c->announced)
			return conn_reset(c, -EPROTO);
		c->state = CONN_ESTABLISHED;
		c->deadline_ms = 0;
		return conn_send_ok(c, now_ms);
	default:
		return conn_reset(c, -EPROTO);
	}
}

static int conn_recv_peer_init(struct conn *c, const struct pkt_hdr *h)
{
	switch (h->op) {
	case VSOCK_OP_CREDIT_UPDATE:
	case VSOCK_OP_CREDIT_REQUEST: /* the pending RESPONSE carries our credit */
		return 0;
	default:
		return conn_reset(c, -EPROTO);
	}
}

static int conn_recv_established(struct conn *c, const struct pkt_hdr *h,
				 const struct iovec *payload, size_t n, uint64_t now_ms)
{
	switch (h->op) {
	case VSOCK_OP_RW:
		return conn_recv_rw(c, h, payload, n, now_ms);
	case VSOCK_OP_CREDIT_UPDATE:
		return 0;
	case VSOCK_OP_CREDIT_REQUEST:
		c->rxops |= CONN_RXOP_CREDIT_UPDATE;
		return 0;
	case VSOCK_OP_SHUTDOWN:
		return conn_recv_shutdown(c, h, now_ms);
	default:
		return conn_reset(c, -EPROTO);
	}
}

static int conn_recv_closing(struct conn *c, const struct pkt_hdr *h, uint64_t now_ms)
{
	switch (h->op) {
	case VSOCK_OP_SHUTDOWN:
		return conn_recv_shutdown(c, h, now_ms);
	case VSOCK_OP_CREDIT_UPDATE:
	case VSOCK_OP_CREDIT_REQUEST:
		return 0; /* no more data flows; nothing to answer */
	default:
		/* RW included: one side has said it will not receive or send. */
		return conn_reset(c, -EPROTO);
	}
}

int conn_recv(struct conn *c, const struct pkt_hdr *h, const struct iovec *payload,
	      size_t npayload, uint64_t now_ms)
{
	if (c->state == CONN_CLOSED)
		return 0; /* an RST is on its way; nothing else matters */
	if (h->op == VSOCK_OP_RST) {
		log_debug("vsock %u<->%u: reset by the guest in %s", c->local_port, c->peer_port,
			  conn_state_name(c->state));
		conn_reset(c, 0);
		c->rxops = 0; /* never answer an RST */
		return 0;
	}
	if (!credit_peer_update(&c->cr, h->buf_alloc, h->fwd_cnt))
		log_debug("vsock %u<->%u: ignoring fwd_cnt %u (sent %u, acked %u)", c->local_port,
			  c->peer_port, h->fwd_cnt, c->cr.tx_cnt, c->cr.peer_fwd_cnt);
	mirror_buf_size(c);
	switch (c->state) {
	case CONN_LOCAL_INIT:
		return conn_recv_local_init(c, h, now_ms);
	case CONN_PEER_INIT:
		return conn_recv_peer_init(c, h);
	case CONN_ESTABLISHED:
		return conn_recv_established(c, h, payload, npayload, now_ms);
	case CONN_CLOSING:
		return conn_recv_closing(c, h, now_ms);
	case CONN_CLOSED:
		break;
	}
	return 0;
}

/* ---- host → guest -------------------------------------------------------- */

/* One guest rx buffer being filled: the header goes first, payload after. */
struct rx_slot {
	const struct iovec *rx;
	size_t nrx;
	struct pkt_hdr *out;
	size_t *len;
	struct iovec dst[PKT_MAX_IOV]; /* the payload area ... */
	size_t nd;
	uint32_t room;                 /* ... and its size */
};

static void conn_hdr(struct conn *c, struct pkt_hdr *h, uint16_t op, uint32_t flags,
		     uint32_t len)
{
	*h = (struct pkt_hdr){
		.src_cid = VSOCK_CID_HOST,
		.dst_cid = c->par->guest_cid,
		.src_port = c->local_port,
		.dst_port = c->peer_port,
		.len = len,
		.type = c->type,
		.op = op,
		.flags = flags,
		.buf_alloc = c->cr.buf_alloc,
		.fwd_cnt = credit_advertise(&c->cr),
	};
}

static void conn_emit(struct conn *c, struct rx_slot *s, uint16_t op, uint32_t flags,
		      uint32_t n)
{
	conn_hdr(c, s->out, op, flags, n);
	pkt_hdr_to_iov(s->out, s->rx, s->nrx);
	*s->len = VSOCK_HDR_LEN + (size_t)n;
}

static int conn_emit_ctrl(struct conn *c, struct rx_slot *s)
{
	static const struct {
		uint32_t bit;
		uint16_t op;
	} order[] = {
		{ CONN_RXOP_RST, VSOCK_OP_RST },
		{ CONN_RXOP_RESPONSE, VSOCK_OP_RESPONSE },
		{ CONN_RXOP_REQUEST, VSOCK_OP_REQUEST },
		{ CONN_RXOP_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE },
		{ CONN_RXOP_SHUTDOWN, VSOCK_OP_SHUTDOWN },
	};
	size_t i = 0, n = sizeof(order) / sizeof(order[0]);

	while (i < n && !(c->rxops & order[i].bit))
		i++;
	if (i == n) { /* no bit we know: nothing to send */
		c->rxops = 0;
		return -EAGAIN;
	}
	conn_emit(c, s, order[i].op, order[i].op == VSOCK_OP_SHUTDOWN ? c->local_shut : 0, 0);
	c->rxops &= ~order[i].bit;
	/* Every header carries buf_alloc/fwd_cnt: no separate update needed. */
	c->rxops &= ~CONN_RXOP_CREDIT_UPDATE;
	if (order[i].op == VSOCK_OP_RESPONSE)
		c->state = CONN_ESTABLISHED;
	if (order[i].op == VSOCK_OP_REQUEST)
		c->announced = true;
	return 0;
}

/*
 * The payload area: after the header, at most the guest's credit and
 * 64 KiB, and what PKT_MAX_IOV entries cover. Return: its size; 0 when not
 * a byte fits (a bare 44-byte buffer, or a chain of empty segments).
 */
static uint32_t rx_slot_area(const struct conn *c, struct rx_slot *s, size_t cap)
{
	size_t room = cap - VSOCK_HDR_LEN;
	uint32_t credit = credit_peer_free(&c->cr);

	if (room > credit)
		room = credit;
	if (room > VSOCK_MAX_PKT_LEN)
		room = VSOCK_MAX_PKT_LEN;
	s->room = (uint32_t)pkt_iov_slice(s->rx, s->nrx, VSOCK_HDR_LEN, room, s->dst,
					  PKT_MAX_IOV, &s->nd);
	return s->room;
}

static void conn_emit_rw(struct conn *c, struct rx_slot *s, uint32_t n, uint32_t flags)
{
	credit_tx_sent(&c->cr, n);
	if (credit_peer_free(&c->cr) == 0)
		USTATS_ADD(credit_stalls, 1); /* host data now waits for the guest's credit */
	conn_emit(c, s, VSOCK_OP_RW, flags, n);
}

/*
 * The host will send no more: tell the guest, SEND only for a half-close,
 * both bits when the host end was closed, so the guest's next send fails
 * at once (EPIPE) as it would against a peer's close() on real vsock,
 * instead of being taken and then answered with an RST.
 */
static int conn_host_eof(struct conn *c, uint64_t now_ms)
{
	c->host_readable = false;
	if (c->state == CONN_ESTABLISHED && c->host.ops->peer_closed(&c->host)) {
		conn_close(c, now_ms);
		return CONN_RETRY;
	}
	c->local_shut |= VSOCK_SHUTDOWN_SEND;
	c->rxops |= CONN_RXOP_SHUTDOWN;
	conn_maybe_finish(c, now_ms);
	return CONN_RETRY;
}

/* Stream data over more than one rx buffer (conn_fill_rxv()). */
struct rx_more {
	struct conn_rxbufs *rb;
	unsigned int n;                 /* buffers the read may fill, the first included */
	uint32_t room[CONN_RXV_MAX + 1];/* payload bytes each takes */
	struct iovec v[CONN_RXV_IOV];   /* every payload area, in order */
	size_t nv;
};

/* The next buffer of the batch, taken from the caller if need be. */
static struct conn_rxbuf *rx_next_buf(struct rx_more *m)
{
	struct conn_rxbufs *rb = m->rb;

	if (m->n > CONN_RXV_MAX)
		return NULL;
	if (m->n < rb->n)
		return &rb->buf[m->n];
	if (rb->n == rb->max || !rb->more || !rb->more(rb))
		return NULL;
	return &rb->buf[m->n];
}

/*
 * The payload areas of the first buffer and of as many more as the
 * guest's credit and the iovec array allow, side by side for one readv;
 * each buffer stays a packet of its own (header first, at most 64 KiB).
 * Return: the room of them all.
 */
static uint32_t rx_more_area(const struct conn *c, const struct rx_slot *s, struct rx_more *m)
{
	uint32_t credit = credit_peer_free(&c->cr) - s->room, total = s->room;
	struct conn_rxbuf *b;

	memcpy(m->v, s->dst, s->nd * sizeof(*s->dst));
	m->nv = s->nd;
	m->room[0] = s->room;
	for (m->n = 1; credit && m->nv < CONN_RXV_IOV && (b = rx_next_buf(m)) != NULL; m->n++) {
		size_t cap = pkt_iov_len(b->iov, b->niov), nd;
		size_t room = cap > VSOCK_HDR_LEN ? cap - VSOCK_HDR_LEN : 0;

		if (room > credit)
			room = credit;
		if (room > VSOCK_MAX_PKT_LEN)
			room = VSOCK_MAX_PKT_LEN;
		room = pkt_iov_slice(b->iov, b->niov, VSOCK_HDR_LEN, room, m->v + m->nv,
				     CONN_RXV_IOV - m->nv, &nd);
		if (!room)
			break; /* a bare header buffer: it ends the batch */
		m->room[m->n] = (uint32_t)room;
		m->nv += nd;
		credit -= (uint32_t)room;
		total += (uint32_t)room;
	}
	return total;
}

/* Cut the @n bytes read into packets, one per buffer, in order. Return: buffers used. */
static unsigned int rx_spread(struct conn *c, struct rx_slot *s, struct rx_more *m, uint32_t n)
{
	uint32_t part = n < s->room ? n : s->room;
	unsigned int k;

	conn_emit_rw(c, s, part, 0);
	n -= part;
	for (k = 1; n && k < m->n; k++) {
		struct conn_rxbuf *b = &m->rb->buf[k];
		struct pkt_hdr h;
		struct rx_slot t = { .rx = b->iov, .nrx = b->niov, .out = &h, .len = &b->len };

		part = n < m->room[k] ? n : m->room[k];
		conn_emit_rw(c, &t, part, 0);
		n -= part;
	}
	return k;
}

/*
 * Host bytes straight into the guest's buffers: after a read that filled
 * its buffers, as many as one readv fills. A short read means the socket
 * was empty: stop until it is readable again (level-triggered, so nothing
 * is missed), which spares the read that would only say EAGAIN.
 * Return: 0 (buffers used in *used), -EAGAIN, or CONN_RETRY.
 */
static int conn_emit_stream(struct conn *c, struct rx_slot *s, struct conn_rxbufs *rb,
			    unsigned int *used, uint64_t now_ms)
{
	struct rx_more m = { .rb = rb, .n = 1 };
	uint32_t total = c->host_bulk ? rx_more_area(c, s, &m) : s->room;
	unsigned int fl = 0;
	ssize_t n = m.n > 1 ? c->host.ops->readv(&c->host, m.v, (int)m.nv, &fl)
			    : c->host.ops->readv(&c->host, s->dst, (int)s->nd, &fl);

	if (n == -EAGAIN) {
		c->host_readable = false;
		c->host_bulk = false;
		return -EAGAIN;
	}
	if (n < 0 || n > (ssize_t)total) {
		conn_reset(c, n < 0 ? (int)n : -EIO);
		return CONN_RETRY;
	}
	if (n == 0)
		return conn_host_eof(c, now_ms);
	/*
	 * Batch the next read when this one filled every buffer (more is
	 * waiting) or more than one (the host writes in bulk: the next wake
	 * likely brings as much, and one readv takes it). A read that fit one
	 * buffer keeps the next one to a single buffer, so small messages do
	 * not pop chains only to give them back.
	 */
	c->host_bulk = (uint32_t)n == total || (uint32_t)n > s->room;
	if ((uint32_t)n < total)
		c->host_readable = false;
	*used = rx_spread(c, s, &m, (uint32_t)n);
	return 0;
}

static uint32_t seq_flags(bool last, bool eor)
{
	if (!last)
		return 0;
	return VSOCK_SEQ_EOM | (eor ? VSOCK_SEQ_EOR : 0);
}

static int conn_emit_fragment(struct conn *c, struct rx_slot *s)
{
	struct conn_seq_out *m = &c->seq_out;
	uint32_t n = m->len - m->off;
	bool eor = m->eor, last;

	if (n > s->room)
		n = s->room;
	pkt_buf_to_iov(s->dst, s->nd, m->data + m->off, n);
	m->off += n;
	last = m->off == m->len;
	if (last) {
		free(m->data);
		*m = (struct conn_seq_out){ 0 };
	}
	conn_emit_rw(c, s, n, seq_flags(last, eor));
	return 0;
}

/* Larger than both sides' buffers: it cannot be delivered whole; drop it. */
static int conn_discard_msg(struct conn *c, ssize_t l)
{
	uint8_t byte;
	struct iovec v = { &byte, 1 };
	unsigned int fl;
	ssize_t n = c->host.ops->readv(&c->host, &v, 1, &fl);

	log_debug("vsock %u<->%u: dropped a %zd-byte host message (limit %u)", c->local_port,
		  c->peer_port, l, c->par->buf_alloc);
	if (n < 0 && n != -EAGAIN)
		conn_reset(c, (int)n);
	return CONN_RETRY;
}

/* Read the next host message of @l bytes: into the guest buffer if it fits. */
static int conn_read_msg(struct conn *c, struct rx_slot *s, uint32_t l)
{
	struct iovec whole;
	const struct iovec *dst = s->dst;
	size_t nd = s->nd;
	unsigned int fl = 0;
	ssize_t n;

	if (l > s->room) { /* to be split: keep a private copy */
		c->seq_out.data = malloc(l);
		if (!c->seq_out.data) {
			conn_reset(c, -ENOMEM);
			return CONN_RETRY;
		}
		whole = (struct iovec){ c->seq_out.data, l };
		dst = &whole;
		nd = 1;
	}
	n = c->host.ops->readv(&c->host, dst, (int)nd, &fl);
	if (n != (ssize_t)l || (fl & STREAM_F_TRUNC)) {
		conn_reset(c, n < 0 ? (int)n : -EIO);
		return CONN_RETRY;
	}
	if (!c->seq_out.data) {
		conn_emit_rw(c, s, l, seq_flags(true, fl & STREAM_F_EOR));
		return 0;
	}
	c->seq_out.len = l;
	c->seq_out.eor = fl & STREAM_F_EOR;
	return conn_emit_fragment(c, s);
}

static int conn_emit_seq(struct conn *c, struct rx_slot *s, uint64_t now_ms)
{
	uint32_t limit = c->cr.peer_buf_alloc < c->par->buf_alloc ? c->cr.peer_buf_alloc
								  : c->par->buf_alloc;
	ssize_t l;

	if (c->seq_out.data)
		return conn_emit_fragment(c, s);
	l = c->host.ops->peek_len(&c->host);
	if (l == -EAGAIN) {
		c->host_readable = false;
		return -EAGAIN;
	}
	if (l == -EPIPE)
		return conn_host_eof(c, now_ms);
	if (l < 0) {
		conn_reset(c, (int)l);
		return CONN_RETRY;
	}
	if ((uint64_t)l > limit)
		return conn_discard_msg(c, l);
	return conn_read_msg(c, s, (uint32_t)l);
}

int conn_fill_rxv(struct conn *c, struct conn_rxbufs *rb, struct pkt_hdr *out, uint64_t now_ms)
{
	struct conn_rxbuf *b0 = &rb->buf[0];
	struct rx_slot s = { .rx = b0->iov, .nrx = b0->niov, .out = out, .len = &b0->len };
	size_t cap = pkt_iov_len(b0->iov, b0->niov);

	b0->len = 0;
	if (cap < VSOCK_HDR_LEN)
		return -ENOBUFS;
	/* A round may end the stream or reset, which leaves a control packet. */
	for (int round = 0; round < 3; round++) {
		unsigned int used = 1;
		int rc;

		if (c->rxops)
			return conn_emit_ctrl(c, &s) < 0 ? -EAGAIN : 1;
		if (!conn_may_read_host(c))
			return -EAGAIN;
		if (!rx_slot_area(c, &s, cap))
			return -ENOBUFS; /* no byte of data fits */
		if (c->type == VSOCK_TYPE_SEQPACKET)
			rc = conn_emit_seq(c, &s, now_ms);
		else
			rc = conn_emit_stream(c, &s, rb, &used, now_ms);
		if (rc != CONN_RETRY)
			return rc < 0 ? rc : (int)used;
	}
	return -EAGAIN;
}

int conn_fill_rx(struct conn *c, const struct iovec *rx, size_t nrx, struct pkt_hdr *out,
		 size_t *len, uint64_t now_ms)
{
	struct conn_rxbuf b = { .iov = rx, .niov = nrx };
	struct conn_rxbufs rb = { .buf = &b, .n = 1, .max = 1 };
	int rc = conn_fill_rxv(c, &rb, out, now_ms);

	if (rc < 0)
		return rc;
	*len = b.len;
	return 0;
}

/* ---- events from the caller ---------------------------------------------- */

int conn_flush(struct conn *c, uint64_t now_ms)
{
	int rc;

	if (c->state == CONN_CLOSED)
		return 0;
	rc = flush_host(c);
	if (rc < 0)
		return conn_reset(c, rc);
	return conn_progress(c, now_ms);
}

void conn_host_readable(struct conn *c)
{
	if (c->host.ops)
		c->host_readable = true;
}

void conn_close(struct conn *c, uint64_t now_ms)
{
	if (c->state == CONN_ESTABLISHED) {
		c->local_shut = VSOCK_SHUTDOWN_BOTH;
		c->rxops |= CONN_RXOP_SHUTDOWN;
		enter_closing(c, now_ms);
		return;
	}
	if (c->state != CONN_CLOSED)
		conn_reset(c, -ECONNABORTED);
}

void conn_abort(struct conn *c)
{
	if (c->state != CONN_CLOSED)
		conn_reset(c, -EPROTO);
}

bool conn_timeout(struct conn *c, uint64_t now_ms)
{
	if (!c->deadline_ms || now_ms < c->deadline_ms)
		return false;
	conn_reset(c, -ETIMEDOUT);
	return true;
}

uint64_t conn_deadline(const struct conn *c)
{
	return c->deadline_ms;
}

bool conn_may_read_host(const struct conn *c)
{
	return c->state == CONN_ESTABLISHED && c->host.ops &&
	       !(c->local_shut & VSOCK_SHUTDOWN_SEND) && !(c->peer_shut & VSOCK_SHUTDOWN_RCV) &&
	       credit_peer_free(&c->cr) > 0;
}

bool conn_wants_host_read(const struct conn *c)
{
	return conn_may_read_host(c) && !c->host_readable && !c->seq_out.data;
}

bool conn_wants_host_write(const struct conn *c)
{
	if (!c->host.ops)
		return false;
	if (c->type == VSOCK_TYPE_SEQPACKET)
		return c->seq_in.count > 0;
	return c->tx.len > 0;
}

bool conn_wants_rx(const struct conn *c)
{
	if (c->rxops)
		return true;
	return (c->host_readable || c->seq_out.data) && conn_may_read_host(c);
}

bool conn_is_done(const struct conn *c)
{
	return c->state == CONN_CLOSED && !c->rxops;
}

void *conn_host_ctx(const struct conn *c)
{
	return c->host.ops ? c->host.ctx : NULL;
}

/* Counted by the VM thread that runs (stats.h); NULL: nothing counted. */
_Thread_local struct ustats *ustats_cur;

void conn_describe(const struct conn *c, struct ustats_conn *out)
{
	out->local_port = c->local_port;
	out->peer_port = c->peer_port;
	out->seqpacket = c->type == VSOCK_TYPE_SEQPACKET;
	out->state = conn_state_name(c->state);
	out->buffered_to_host = c->tx.len > c->tx.pre ? c->tx.len - c->tx.pre : 0;
	out->buffered_to_guest = c->seq_out.data ? c->seq_out.len - c->seq_out.off : 0;
	out->guest_credit = credit_peer_free(&c->cr);
}
