// SPDX-License-Identifier: MIT
/*
 * Fuzz target (d): vsock packets into the userspace engine's connection
 * table (engine/user/conn_table.h, conn.h, pkt.h), with in-memory host
 * programs (tests/unit/user_memstream.h) on the other side.
 *
 * Input: 8 bytes of table configuration (STREAM or SEQPACKET, connection
 * cap, RST queue length, port range, buffer size, timeouts), then up to
 * VP_MAX_EVENTS events:
 *   guest packet   a header (raw 44 bytes, or built from a few selector
 *                  bytes, optionally aimed at a live connection's tuple)
 *                  and payload, split over up to four descriptors at
 *                  fuzzer-chosen offsets, through pkt_parse() and
 *                  conn_table_recv() like the device's tx path; a
 *                  CT_NEW_REQUEST is accepted or refused;
 *   host connect   a hybrid CONNECT to a guest port;
 *   host event     a host program writes bytes or messages, ends its
 *                  stream, fails reads or writes, or slows down, then the
 *                  table hears it is readable/writable;
 *   rx fill        an rx buffer of fuzzer-chosen size and shape;
 *   time           the clock moves on and timers run;
 *   close          conn_close() or conn_abort() on a connection.
 * The harness plays a correct device: it answers every CT_NEW_REQUEST at
 * once and stops feeding tx packets while conn_table_tx_blocked().
 *
 * Checked after every event: the connection cap, the RST queue bound,
 * every live connection findable by its tuple, credit and buffer bounds
 * (bytes held ≤ buf_alloc, txbuf ≤ buf_alloc + preamble, SEQPACKET queue
 * within its ring and no longer than the txbuf's bytes), a host stream closed at most once. Every rx packet:
 * well-formed, from the host CID to the guest, the header in the buffer
 * equal to the one reported, data within the guest's credit. For STREAM
 * connections, what a host program received is a prefix of what the guest
 * sent it (after the "OK" line for host-initiated ones) and what the guest
 * received is a prefix of what the host program wrote. After expiry no
 * deadline is in the past. At the end every host stream handed over was
 * closed exactly once.
 */
#include <errno.h>
#include <stdint.h>

#include "engine/user/conn_table.h"
#include "fuzz_util.h"
#include "user_memstream.h"

#define VP_GUEST_CID 3u
#define VP_PORT_BASE 1000u
#define VP_MAX_HOSTS 64u
#define VP_MAX_EVENTS 256u
#define VP_MAX_SEQ_FEEDS 200u /* memstream keeps at most MS_MAX_MSGS, ever */
#define VP_MAX_RX (VSOCK_MAX_PKT_LEN + 2 * VSOCK_HDR_LEN)
#define VP_MAX_CHAIN 4u
#define VP_BATCH 4u /* packets a tx batch may hold before it ends */

/* One host program and what each side sent the other (STREAM checks). */
struct vp_host {
	struct memstream *ms;
	struct conn *c;         /* NULL once the table freed it */
	bool local;             /* host-initiated: expects "OK <port>\n" first */
	uint32_t local_port;
	unsigned int seq_feeds;
	uint8_t *to_host;       /* guest payload sent to this connection */
	size_t to_host_len;
	size_t to_guest_len;    /* bytes the guest received from it */
};

struct vp_ctx {
	struct conn_table t;
	struct conn_table_cfg cfg;
	struct vp_host host[VP_MAX_HOSTS];
	unsigned int nhosts;
	uint64_t now;
	/*
	 * A tx batch: conn_table_recv() may hold a packet's payload (iovecs
	 * into it) until conn_table_tx_flush(), as the device holds guest
	 * buffers until it publishes the used ring; each packet of a batch
	 * therefore has a buffer of its own until the batch ends.
	 */
	uint8_t pkt[VP_BATCH][VSOCK_HDR_LEN + VSOCK_MAX_PKT_LEN];
	unsigned int batched;
	uint8_t rx[VP_MAX_RX];
};

static void on_free(void *opaque, struct conn *c)
{
	struct vp_ctx *x = opaque;

	for (unsigned int i = 0; i < x->nhosts; i++)
		if (x->host[i].c == c)
			x->host[i].c = NULL;
}

static struct vp_host *host_of(struct vp_ctx *x, const struct conn *c)
{
	for (unsigned int i = 0; c && i < x->nhosts; i++)
		if (x->host[i].c == c)
			return &x->host[i];
	return NULL;
}

/* A new host program, or NULL when the harness has no slot left. */
static struct vp_host *host_new(struct vp_ctx *x, bool seq, bool local)
{
	struct vp_host *h;

	if (x->nhosts == VP_MAX_HOSTS)
		return NULL;
	h = &x->host[x->nhosts++];
	memset(h, 0, sizeof(*h));
	h->ms = ms_new(seq);
	h->local = local;
	FZ_CHECK(h->ms, "out of memory");
	return h;
}

static void read_cfg(struct fz_in *in, struct conn_table_cfg *cfg)
{
	static const uint32_t bufs[] = { 1, 7, 64, 4096, CONN_DEFAULT_BUF_ALLOC, 262144,
					 CONN_TABLE_MAX_BUF_ALLOC, 1000 };
	uint8_t b[8];

	fz_bytes(in, b, sizeof(b));
	cfg->seqpacket = b[0] & 1;
	cfg->max_conns = 1u + b[1] % 8;
	cfg->rst_queue_len = 1u + b[2] % 8;
	cfg->port_base = VP_PORT_BASE;
	cfg->port_count = (b[3] & 0x80) ? CONN_TABLE_DEFAULT_PORT_COUNT : 1u + b[3] % 8;
	cfg->buf_alloc = bufs[b[4] % 8];
	cfg->connect_timeout_ms = 1u + b[5] * 16u;
	cfg->close_timeout_ms = 1u + b[6] * 16u;
	cfg->hash_seed = 42 + b[7];
}

/* ---- guest packets ------------------------------------------------------ */

static uint32_t pick_u32(struct fz_in *in, uint8_t sel, uint32_t known)
{
	static const uint32_t v[] = { 0, 1, 4096, CONN_DEFAULT_BUF_ALLOC, 262144 };

	switch (sel % 8) {
	case 5: return known;
	case 6: return fz_u32(in);
	case 7: return UINT32_MAX;
	default: return v[sel % 8];
	}
}

/* A header from selector bytes; @plen is the payload the input carries. */
static void build_hdr(struct vp_ctx *x, struct fz_in *in, struct pkt_hdr *h, uint32_t plen)
{
	uint8_t a = fz_u8(in), ports = fz_u8(in), fl = fz_u8(in), cr = fz_u8(in);
	struct vp_host *t = x->nhosts ? &x->host[ports % x->nhosts] : NULL;

	*h = (struct pkt_hdr){
		.src_cid = (a & 0x20) ? fz_u64(in) : VP_GUEST_CID,
		.dst_cid = (a & 0x40) ? fz_u64(in) : VSOCK_CID_HOST,
		.src_port = ports & 0x0f,
		.dst_port = (ports & 0x10) ? VP_PORT_BASE + (ports >> 5) : (ports >> 5),
		.len = plen,
		.type = (uint16_t)((a >> 3) & 3),
		.op = (uint16_t)(a & 7),
		.flags = (fl & 0x80) ? fz_u32(in) : (fl & 3u),
	};
	/* aim at a live connection: its tuple and type */
	if ((a & 0x80) && t && t->c) {
		h->src_port = t->c->peer_port;
		h->dst_port = t->c->local_port;
		h->type = t->c->type;
	}
	h->buf_alloc = pick_u32(in, cr, CONN_DEFAULT_BUF_ALLOC);
	/* a guest that acks what it got (5), or anything */
	h->fwd_cnt = pick_u32(in, cr >> 3, (t && t->c) ? t->c->cr.tx_cnt : 0);
	if (fl & 0x40)
		h->len = fz_u32(in);
}

/* Split @base[0, len) into up to four descriptors at fuzzer-chosen points. */
static size_t split_chain(struct fz_in *in, uint8_t *base, size_t len, struct iovec *v)
{
	uint8_t parts = fz_u8(in) % VP_MAX_CHAIN;
	size_t at = 0, n = 0;

	for (uint8_t i = 0; i < parts && at < len; i++) {
		size_t cut = at + fz_u16(in) % (len - at + 1);

		v[n++] = (struct iovec){ base + at, cut - at };
		at = cut;
	}
	v[n++] = (struct iovec){ base + at, len - at };
	return n;
}

static void record_to_host(struct vp_ctx *x, const struct pkt_hdr *h, const struct iovec *pl,
			   size_t npl)
{
	struct vp_host *hp;

	if (h->op != VSOCK_OP_RW ||
	    pkt_validate(h, x->cfg.guest_cid, x->cfg.seqpacket) != PKT_OK)
		return;
	hp = host_of(x, conn_table_lookup(&x->t, h->dst_port, h->src_port, h->type));
	if (!hp || hp->ms->seq)
		return;
	hp->to_host = realloc(hp->to_host, hp->to_host_len + h->len + 1);
	FZ_CHECK(hp->to_host, "out of memory");
	FZ_CHECK(pkt_iov_to_buf(pl, npl, hp->to_host + hp->to_host_len, h->len) == h->len,
		 "payload iovecs shorter than len");
	hp->to_host_len += h->len;
}

static void answer_request(struct vp_ctx *x, struct fz_in *in, const struct pkt_hdr *h)
{
	struct vp_host *hp = NULL;
	struct stream s;
	struct conn *c = NULL;
	int rc;

	FZ_CHECK(h->op == VSOCK_OP_REQUEST && x->t.count < x->cfg.max_conns &&
		 !conn_table_lookup(&x->t, h->dst_port, h->src_port, h->type),
		 "CT_NEW_REQUEST for op %u with %u conns", h->op, x->t.count);
	if (!(fz_u8(in) & 1) || !(hp = host_new(x, h->type == VSOCK_TYPE_SEQPACKET, false))) {
		conn_table_refuse(&x->t, h);
		return;
	}
	s = ms_stream(hp->ms);
	rc = conn_table_accept(&x->t, h, &s, &c);
	FZ_CHECK(rc == 0 && c, "accept after CT_NEW_REQUEST failed: %d", rc);
	hp->c = c;
	hp->local_port = c->local_port;
}

/* The batch ends: the held payload goes out before its buffers are reused. */
static void batch_end(struct vp_ctx *x)
{
	conn_table_tx_flush(&x->t, x->now);
	x->batched = 0;
}

static void ev_guest_packet(struct vp_ctx *x, struct fz_in *in)
{
	struct iovec chain[VP_MAX_CHAIN], payload[PKT_MAX_IOV];
	uint8_t mode = fz_u8(in);
	uint32_t plen = fz_u16(in) % (VSOCK_MAX_PKT_LEN + 1);
	struct pkt_hdr h, want;
	size_t nchain, np = 0, got;
	const uint8_t *p;
	uint8_t *pkt;
	int rc;

	if (x->batched == VP_BATCH)
		batch_end(x);
	pkt = x->pkt[x->batched];
	if (mode & 1) {
		fz_bytes(in, pkt, VSOCK_HDR_LEN);
	} else {
		build_hdr(x, in, &want, plen);
		pkt_hdr_encode(&want, pkt);
	}
	p = fz_take(in, plen, &got);
	memcpy(pkt + VSOCK_HDR_LEN, p, got);
	/* a guest cannot send while the device is not taking tx packets */
	if (conn_table_tx_blocked(&x->t))
		return;
	x->batched++; /* the batch holds this buffer until it ends */
	nchain = split_chain(in, pkt, VSOCK_HDR_LEN + got, chain);
	rc = pkt_parse(chain, nchain, &h, payload, PKT_MAX_IOV, &np);
	if (rc < 0) {
		conn_table_recv_malformed(&x->t, rc == -EBADMSG ? NULL : &h);
		return;
	}
	FZ_CHECK(pkt_iov_len(payload, np) == h.len, "pkt_parse payload %zu != len %u",
		 pkt_iov_len(payload, np), h.len);
	record_to_host(x, &h, payload, np);
	if (conn_table_recv(&x->t, &h, payload, np, x->now) == CT_NEW_REQUEST)
		answer_request(x, in, &h);
	if (mode & 0x80)
		batch_end(x);
}

/* ---- host side ---------------------------------------------------------- */

static void ev_host_connect(struct vp_ctx *x, struct fz_in *in)
{
	uint32_t port = fz_u8(in) & 0x0f;
	struct vp_host *hp = host_new(x, false, true);
	struct conn *c = NULL;
	struct stream s;

	if (!hp)
		return;
	s = ms_stream(hp->ms);
	if (conn_table_connect(&x->t, port, &s, x->now, &c) == 0) {
		FZ_CHECK(c && c->peer_port == port, "connect gave no connection");
		hp->c = c;
		hp->local_port = c->local_port;
	}
}

static void host_feed(struct vp_host *hp, struct fz_in *in, uint8_t act)
{
	size_t got;
	uint16_t n = fz_u16(in) % 4096;
	const uint8_t *p = fz_take(in, n, &got);

	/* bits 0-2 pick the action; 0x40 EOR, 0x80 readable, 0x20 writable */
	switch ((act & 7) % 6) {
	case 0:
		if (!hp->ms->seq)
			ms_feed(hp->ms, p, got);
		else if (hp->seq_feeds < VP_MAX_SEQ_FEEDS) {
			hp->seq_feeds++;
			ms_feed_msg(hp->ms, p, (uint32_t)got, act & 0x40);
		}
		break;
	case 1: hp->ms->in_eof = true; break;
	case 2: hp->ms->read_err = (act & 0x40) ? -ECONNRESET : 0; break;
	case 3: hp->ms->write_err = (act & 0x40) ? -EPIPE : 0; break;
	case 4: hp->ms->out_room = n; break;
	default: hp->ms->out_room = SIZE_MAX; break;
	}
}

static void ev_host_event(struct vp_ctx *x, struct fz_in *in)
{
	uint8_t k = fz_u8(in), act = fz_u8(in);
	struct vp_host *hp = x->nhosts ? &x->host[k % x->nhosts] : NULL;

	if (!hp || !hp->c)
		return;
	host_feed(hp, in, act);
	conn_table_host_event(&x->t, hp->c, act & 0x80, act & 0x20, x->now);
}

/* ---- rx ----------------------------------------------------------------- */

static void check_rx_data(struct vp_ctx *x, const struct pkt_hdr *o, uint32_t credit_before)
{
	struct conn *c = conn_table_lookup(&x->t, o->src_port, o->dst_port, o->type);
	struct vp_host *hp = host_of(x, c);

	/* a connection may be freed by the fill that sent its last bytes */
	if (!c)
		return;
	FZ_CHECK(o->len <= credit_before, "RW of %u bytes with %u credit", o->len, credit_before);
	if (!hp || hp->ms->seq)
		return;
	FZ_CHECK(hp->to_guest_len + o->len <= hp->ms->in_len &&
		 memcmp(x->rx + VSOCK_HDR_LEN, hp->ms->in + hp->to_guest_len, o->len) == 0,
		 "the guest got bytes the host did not send");
	hp->to_guest_len += o->len;
}

static void check_rx(struct vp_ctx *x, const struct pkt_hdr *o, size_t len, size_t cap,
		     const uint32_t *credit)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vp_host *hp;

	FZ_CHECK(len >= VSOCK_HDR_LEN && len <= cap && len == VSOCK_HDR_LEN + (size_t)o->len,
		 "rx used length %zu for payload %u in %zu bytes", len, o->len, cap);
	pkt_hdr_encode(o, raw);
	FZ_CHECK(memcmp(raw, x->rx, VSOCK_HDR_LEN) == 0,
		 "rx header written differs from the one reported");
	FZ_CHECK(o->src_cid == VSOCK_CID_HOST && o->dst_cid == x->cfg.guest_cid,
		 "rx packet %llu -> %llu", (unsigned long long)o->src_cid,
		 (unsigned long long)o->dst_cid);
	/* an RST answering a packet of unknown type keeps that type, as Linux does */
	FZ_CHECK(o->op >= VSOCK_OP_REQUEST && o->op <= VSOCK_OP_CREDIT_REQUEST &&
		 (o->type == VSOCK_TYPE_STREAM || o->type == VSOCK_TYPE_SEQPACKET ||
		  o->op == VSOCK_OP_RST) &&
		 o->len <= VSOCK_MAX_PKT_LEN && (o->op == VSOCK_OP_RW || o->len == 0),
		 "malformed rx packet op %u type %u len %u", o->op, o->type, o->len);
	if (o->op != VSOCK_OP_RW)
		return;
	hp = host_of(x, conn_table_lookup(&x->t, o->src_port, o->dst_port, o->type));
	check_rx_data(x, o, hp ? credit[hp - x->host] : 0);
}

static void ev_rx_fill(struct vp_ctx *x, struct fz_in *in)
{
	uint32_t cap = fz_u32(in) % (VP_MAX_RX + 1), credit[VP_MAX_HOSTS];
	uint8_t drain = fz_u8(in);
	struct iovec v[VP_MAX_CHAIN];
	struct pkt_hdr o;
	size_t n, len;

	for (unsigned int round = 0; round < 1u + drain % 16; round++) {
		for (unsigned int i = 0; i < x->nhosts; i++)
			credit[i] = x->host[i].c ? credit_peer_free(&x->host[i].c->cr) : 0;
		n = split_chain(in, x->rx, cap, v);
		/* every round reads its bytes, so an empty one keeps the input in step */
		if (conn_table_fill_rx(&x->t, v, n, &o, &len, x->now) == 0)
			check_rx(x, &o, len, cap, credit);
	}
}

/* ---- time and closing --------------------------------------------------- */

static void ev_time(struct vp_ctx *x, struct fz_in *in)
{
	uint64_t d;

	x->now += fz_u16(in);
	conn_table_expire(&x->t, x->now);
	d = conn_table_next_deadline(&x->t);
	FZ_CHECK(d == 0 || d > x->now, "deadline %llu not past now %llu after expiry",
		 (unsigned long long)d, (unsigned long long)x->now);
}

static void ev_close(struct vp_ctx *x, struct fz_in *in)
{
	uint8_t k = fz_u8(in);
	struct vp_host *hp = x->nhosts ? &x->host[k % x->nhosts] : NULL;

	if (!hp || !hp->c)
		return;
	if (k & 0x80)
		conn_abort(hp->c);
	else
		conn_close(hp->c, x->now);
	conn_table_settle(&x->t, hp->c);
}

/* ---- invariants ---------------------------------------------------------- */

static void check_host_bytes(const struct vp_host *hp)
{
	char ok[CONN_PREAMBLE_MAX + 1];
	size_t pre = 0, out = hp->ms->out_len;

	if (hp->ms->seq || out == 0)
		return;
	if (hp->local)
		pre = (size_t)snprintf(ok, sizeof(ok), "OK %u\n", hp->local_port);
	FZ_CHECK(memcmp(hp->ms->out, ok, out < pre ? out : pre) == 0, "host got a bad OK line");
	if (out <= pre)
		return;
	FZ_CHECK(out - pre <= hp->to_host_len &&
		 memcmp(hp->ms->out + pre, hp->to_host, out - pre) == 0,
		 "the host got bytes the guest did not send");
}

static void check_conn(struct vp_ctx *x, const struct vp_host *hp)
{
	const struct conn *c = hp->c;

	FZ_CHECK(conn_table_lookup(&x->t, c->local_port, c->peer_port, c->type) == c,
		 "live connection not found by its tuple");
	FZ_CHECK(credit_rx_queued(&c->cr) <= c->cr.buf_alloc, "holding %u bytes with buf_alloc %u",
		 credit_rx_queued(&c->cr), c->cr.buf_alloc);
	FZ_CHECK(c->tx.len <= x->cfg.buf_alloc + CONN_PREAMBLE_MAX &&
		 (uint64_t)c->tx.off + c->tx.len <= c->tx.cap,
		 "txbuf %u+%u in %u", c->tx.off, c->tx.len, c->tx.cap);
	FZ_CHECK(c->seq_in.count <= c->seq_in.cap && c->seq_in.count <= c->tx.len,
		 "%u messages queued in a ring of %u, %u bytes", c->seq_in.count, c->seq_in.cap,
		 c->tx.len);
	FZ_CHECK(hp->ms->closes == 0 || !c->host.ops, "host stream closed but still in use");
}

static void check_all(struct vp_ctx *x)
{
	FZ_CHECK(x->t.count <= x->cfg.max_conns, "%u connections, cap %u", x->t.count,
		 x->cfg.max_conns);
	FZ_CHECK(x->t.rst_count <= x->cfg.rst_queue_len, "RST queue %u", x->t.rst_count);
	for (unsigned int i = 0; i < x->nhosts; i++) {
		const struct vp_host *hp = &x->host[i];

		FZ_CHECK(hp->ms->closes <= 1, "host stream closed %d times", hp->ms->closes);
		check_host_bytes(hp);
		if (hp->c)
			check_conn(x, hp);
	}
}

static void run_events(struct vp_ctx *x, struct fz_in *in)
{
	for (unsigned int n = 0; n < VP_MAX_EVENTS && !fz_empty(in); n++) {
		uint8_t ev = fz_u8(in) % 8;

		/* the device runs nothing else between a batch's packets */
		if (ev > 1 && x->batched)
			batch_end(x);
		switch (ev) {
		case 0:
		case 1: ev_guest_packet(x, in); break;
		case 2: ev_host_connect(x, in); break;
		case 3: ev_host_event(x, in); break;
		case 4:
		case 5: ev_rx_fill(x, in); break;
		case 6: ev_time(x, in); break;
		default: ev_close(x, in); break;
		}
		check_all(x);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vp_ctx x;
	struct fz_in in = { data, size };

	memset(&x.t, 0, sizeof(x.t));
	x.nhosts = 0;
	x.now = 1000;
	conn_table_cfg_default(&x.cfg, VP_GUEST_CID);
	read_cfg(&in, &x.cfg);
	x.cfg.on_free = on_free;
	x.cfg.opaque = &x;
	FZ_CHECK(conn_table_init(&x.t, &x.cfg) == 0, "conn_table_init refused a valid config");
	x.batched = 0;
	run_events(&x, &in);
	batch_end(&x);
	conn_table_fini(&x.t);
	for (unsigned int i = 0; i < x.nhosts; i++) {
		FZ_CHECK(x.host[i].ms->closes == 1 && !x.host[i].c,
			 "host stream %u closed %d times at the end", i, x.host[i].ms->closes);
		ms_free(x.host[i].ms);
		free(x.host[i].to_host);
	}
	return 0;
}
