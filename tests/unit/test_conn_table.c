// SPDX-License-Identifier: MIT
/*
 * Connection table: routing of guest packets (drops, RSTs, new requests),
 * the connection cap, the bounded RST queue, port allocation and its wrap,
 * stale packets after a close, rx fairness, timers, and cleanup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/user/conn_table.h"
#include "user_memstream.h"

#define GUEST 7u

struct fx {
	struct conn_table t;
	struct conn_table_cfg cfg;
	int freed;
	uint8_t rx[4096];
	uint64_t now;
};

static void on_free(void *opaque, struct conn *c)
{
	struct fx *f = opaque;

	assert_non_null(c);
	f->freed++;
}

static void fx_init(struct fx *f, void (*tweak)(struct conn_table_cfg *))
{
	memset(f, 0, sizeof(*f));
	conn_table_cfg_default(&f->cfg, GUEST);
	f->cfg.on_free = on_free;
	f->cfg.opaque = f;
	f->cfg.hash_seed = 42;
	f->now = 100;
	if (tweak)
		tweak(&f->cfg);
	assert_int_equal(conn_table_init(&f->t, &f->cfg), 0);
}

static struct pkt_hdr gh(uint16_t op, uint32_t src_port, uint32_t dst_port)
{
	return (struct pkt_hdr){
		.src_cid = GUEST, .dst_cid = VSOCK_CID_HOST, .src_port = src_port,
		.dst_port = dst_port, .type = VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 65536,
	};
}

static enum conn_table_rc recv_hdr(struct fx *f, struct pkt_hdr h)
{
	return conn_table_recv(&f->t, &h, NULL, 0, f->now);
}

/* Next packet for the guest. Return: its op, or a negative errno. */
static int next_rx(struct fx *f, struct pkt_hdr *out)
{
	struct iovec v = { f->rx, sizeof(f->rx) };
	struct pkt_hdr h;
	size_t len;
	int rc = conn_table_fill_rx(&f->t, &v, 1, &h, &len, f->now);

	if (rc < 0)
		return rc;
	assert_int_equal(h.dst_cid, GUEST);
	if (out)
		*out = h;
	return h.op;
}

/* A guest-initiated connection on an in-memory host, RESPONSE delivered. */
static struct conn *open_peer(struct fx *f, struct memstream *m, uint32_t gport, uint32_t hport)
{
	struct pkt_hdr req = gh(VSOCK_OP_REQUEST, gport, hport), h;
	struct stream s = ms_stream(m);
	struct conn *c = NULL;

	assert_int_equal(recv_hdr(f, req), CT_NEW_REQUEST);
	assert_int_equal(conn_table_accept(&f->t, &req, &s, &c), 0);
	assert_non_null(c);
	assert_int_equal(next_rx(f, &h), VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_port, hport);
	assert_int_equal(h.dst_port, gport);
	return c;
}

static void test_cfg_checks(void **state)
{
	struct conn_table_cfg cfg;
	struct conn_table t;

	(void)state;
#define BAD(expr)                                                        \
	do {                                                             \
		conn_table_cfg_default(&cfg, GUEST);                     \
		expr;                                                    \
		assert_int_equal(conn_table_init(&t, &cfg), -EINVAL);    \
	} while (0)
	BAD(cfg.guest_cid = 2);
	BAD(cfg.guest_cid = 0xffffffffull);
	BAD(cfg.guest_cid = 1ull << 32);
	BAD(cfg.max_conns = 0);
	BAD(cfg.max_conns = CONN_TABLE_MAX_CONNS_LIMIT + 1);
	BAD(cfg.buf_alloc = 0);
	BAD(cfg.buf_alloc = CONN_TABLE_MAX_BUF_ALLOC + 1);
	BAD(cfg.rst_queue_len = 0);
	BAD(cfg.port_count = 0);
	BAD((cfg.port_base = 0xfffffff0u, cfg.port_count = 17));
	BAD(cfg.close_timeout_ms = 0);
	BAD(cfg.connect_timeout_ms = 0);
#undef BAD
	conn_table_cfg_default(&cfg, GUEST);
	cfg.port_base = 0xfffffff0u;
	cfg.port_count = 16; /* up to 0xffffffff inclusive: fine */
	assert_int_equal(conn_table_init(&t, &cfg), 0);
	conn_table_fini(&t);
}

static void test_misaddressed_dropped(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_init(&f, NULL);
	h = gh(VSOCK_OP_RW, 1, 2);
	h.src_cid = GUEST + 1;
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	h = gh(VSOCK_OP_REQUEST, 1, 2);
	h.dst_cid = 5;
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	h = gh(VSOCK_OP_REQUEST, 1, 2);
	h.src_cid |= 1ull << 33;
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	assert_false(conn_table_has_rx(&f.t));
	conn_table_fini(&f.t);
}

static void test_unknown_tuple_answers(void **state)
{
	struct fx f;
	struct pkt_hdr h, r;

	(void)state;
	fx_init(&f, NULL);
	/* RST to nothing: never answered */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RST, 1, 2)), CT_DONE);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	/* anything else to nothing: RST with swapped ports */
	for (uint16_t op = VSOCK_OP_RESPONSE; op <= VSOCK_OP_CREDIT_REQUEST; op++) {
		if (op == VSOCK_OP_RST)
			continue;
		h = gh(op, 1000 + op, 2000);
		assert_int_equal(recv_hdr(&f, h), CT_DONE);
		assert_int_equal(next_rx(&f, &r), VSOCK_OP_RST);
		assert_int_equal(r.src_port, 2000);
		assert_int_equal(r.dst_port, 1000 + op);
		assert_int_equal(r.src_cid, VSOCK_CID_HOST);
	}
	/* unknown type and op: RST, keeping the type */
	h = gh(VSOCK_OP_REQUEST, 1, 2);
	h.type = 77;
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	assert_int_equal(next_rx(&f, &r), VSOCK_OP_RST);
	assert_int_equal(r.type, 77);
	h = gh(42, 1, 2);
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	assert_int_equal(next_rx(&f, &r), VSOCK_OP_RST);
	/* SEQPACKET not negotiated */
	h = gh(VSOCK_OP_REQUEST, 1, 2);
	h.type = VSOCK_TYPE_SEQPACKET;
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	/* but an RST of unknown type is still not answered */
	h = gh(VSOCK_OP_RST, 1, 2);
	h.type = 77;
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	conn_table_fini(&f.t);
}

static void test_request_accept_refuse(void **state)
{
	struct fx f;
	struct memstream *m = ms_new(false), *dup = ms_new(false);
	struct pkt_hdr req = gh(VSOCK_OP_REQUEST, 40000, 22);
	struct stream s = ms_stream(dup);
	struct conn *c;

	(void)state;
	fx_init(&f, NULL);
	c = open_peer(&f, m, 40000, 22);
	assert_ptr_equal(conn_table_lookup(&f.t, 22, 40000, VSOCK_TYPE_STREAM), c);
	assert_null(conn_table_lookup(&f.t, 22, 40000, VSOCK_TYPE_SEQPACKET));
	assert_null(conn_table_lookup(&f.t, 40000, 22, VSOCK_TYPE_STREAM));
	/* accepting the same tuple twice: refused, host stream closed, RST owed */
	assert_int_equal(conn_table_accept(&f.t, &req, &s, NULL), -EEXIST);
	assert_int_equal(dup->closes, 1);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	/* a REQUEST for an existing tuple resets that connection */
	assert_int_equal(recv_hdr(&f, req), CT_DONE);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	assert_null(conn_table_lookup(&f.t, 22, 40000, VSOCK_TYPE_STREAM));
	assert_int_equal(f.freed, 1);
	assert_int_equal(m->closes, 1);
	/* refused because the host side is not there */
	req = gh(VSOCK_OP_REQUEST, 40001, 23);
	assert_int_equal(recv_hdr(&f, req), CT_NEW_REQUEST);
	conn_table_refuse(&f.t, &req);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	assert_int_equal(f.t.count, 0);
	conn_table_fini(&f.t);
	ms_free(m);
	ms_free(dup);
}

/* The daemon leaving: every connection the guest knows gets its RST, and
 * one the guest never heard of (a host connect not yet sent) goes quietly. */
static void test_abort_all(void **state)
{
	struct memstream *m[3] = { ms_new(false), ms_new(false), ms_new(false) };
	struct pkt_hdr h;
	struct stream s;
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	open_peer(&f, m[0], 40000, 22);
	open_peer(&f, m[1], 40001, 23);
	s = ms_stream(m[2]);
	assert_int_equal(conn_table_connect(&f.t, 5000, &s, f.now, NULL), 0);
	conn_table_abort_all(&f.t);
	for (int i = 0; i < 3; i++)
		assert_int_equal(m[i]->closes, 1);
	/* the unsent host connect is gone; the REQUEST it owed is not sent */
	assert_int_equal(f.t.count, 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(next_rx(&f, &h), VSOCK_OP_RST);
		assert_true(h.dst_port == 40000 || h.dst_port == 40001);
	}
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	assert_int_equal(f.t.count, 0);
	assert_int_equal(f.freed, 3);
	conn_table_fini(&f.t);
	for (int i = 0; i < 3; i++)
		ms_free(m[i]);
}

static void cap4(struct conn_table_cfg *cfg)
{
	cfg->max_conns = 4;
}

static void test_connection_cap(void **state)
{
	struct fx f;
	struct memstream *m[6];
	struct pkt_hdr req;
	struct stream s;

	(void)state;
	fx_init(&f, cap4);
	for (int i = 0; i < 6; i++)
		m[i] = ms_new(false);
	for (uint32_t i = 0; i < 4; i++)
		open_peer(&f, m[i], 1000 + i, 80);
	req = gh(VSOCK_OP_REQUEST, 2000, 80);
	assert_int_equal(recv_hdr(&f, req), CT_DONE); /* no host connect attempted */
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	s = ms_stream(m[4]);
	assert_int_equal(conn_table_accept(&f.t, &req, &s, NULL), -EBUSY);
	assert_int_equal(m[4]->closes, 1);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	s = ms_stream(m[5]);
	assert_int_equal(conn_table_connect(&f.t, 9, &s, f.now, NULL), -EBUSY);
	assert_int_equal(m[5]->closes, 1);
	/* one leaves (guest RST), one more fits */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RST, 1000, 80)), CT_DONE);
	assert_int_equal(f.t.count, 3);
	assert_int_equal(recv_hdr(&f, req), CT_NEW_REQUEST);
	conn_table_fini(&f.t);
	assert_int_equal(f.freed, 4);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(m[i]->closes, 1);
		ms_free(m[i]);
	}
}

static void rstq4(struct conn_table_cfg *cfg)
{
	cfg->rst_queue_len = 4;
}

static void test_rst_queue_bounded(void **state)
{
	struct fx f;
	struct pkt_hdr r;

	(void)state;
	fx_init(&f, rstq4);
	for (uint32_t i = 0; i < 10; i++)
		recv_hdr(&f, gh(VSOCK_OP_RW, 100 + i, 1));
	assert_true(conn_table_tx_blocked(&f.t));
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(next_rx(&f, &r), VSOCK_OP_RST);
		assert_int_equal(r.dst_port, 100 + i); /* in order, the first four */
		assert_false(conn_table_tx_blocked(&f.t));
	}
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	/* a too-small rx buffer leaves the RST queued */
	recv_hdr(&f, gh(VSOCK_OP_RW, 1, 1));
	{
		struct iovec v = { f.rx, 43 };
		size_t len;

		assert_int_equal(conn_table_fill_rx(&f.t, &v, 1, &r, &len, f.now), -ENOBUFS);
	}
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	conn_table_fini(&f.t);
}

static void small_ports(struct conn_table_cfg *cfg)
{
	cfg->port_base = 100;
	cfg->port_count = 3;
}

static void test_port_allocation_wraps(void **state)
{
	struct fx f;
	struct memstream *m[4];
	struct conn *c[4];
	struct stream s;

	(void)state;
	fx_init(&f, small_ports);
	for (int i = 0; i < 4; i++)
		m[i] = ms_new(false);
	for (int i = 0; i < 3; i++) {
		s = ms_stream(m[i]);
		assert_int_equal(conn_table_connect(&f.t, 5000, &s, f.now, &c[i]), 0);
		assert_int_equal(c[i]->local_port, 100 + (uint32_t)i);
	}
	/* all three ports taken for guest port 5000 */
	s = ms_stream(m[3]);
	assert_int_equal(conn_table_connect(&f.t, 5000, &s, f.now, NULL), -EADDRINUSE);
	assert_int_equal(m[3]->closes, 1);
	/* another guest port may reuse them: tuples differ */
	{
		uint32_t p;

		assert_int_equal(conn_table_alloc_port(&f.t, 5001, VSOCK_TYPE_STREAM, &p), 0);
		assert_int_equal(p, 100); /* wrapped */
	}
	/* REQUESTs never sent time out quietly: no RST for the guest */
	conn_table_expire(&f.t, f.now + 2000);
	assert_int_equal(f.t.count, 0); /* none was announced yet: all gone quietly */
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	conn_table_fini(&f.t);
	for (int i = 0; i < 4; i++)
		ms_free(m[i]);
}

static void top_ports(struct conn_table_cfg *cfg)
{
	cfg->port_base = 0xfffffffeu;
	cfg->port_count = 2;
}

static void test_port_any_never_allocated(void **state)
{
	struct fx f;
	uint32_t p;

	(void)state;
	fx_init(&f, top_ports);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(conn_table_alloc_port(&f.t, 1, VSOCK_TYPE_STREAM, &p), 0);
		assert_int_equal(p, 0xfffffffeu);
	}
	conn_table_fini(&f.t);
}

static void test_ports_rotate_after_close(void **state)
{
	struct fx f;
	struct memstream *m1 = ms_new(false), *m2 = ms_new(false);
	struct stream s = ms_stream(m1);
	struct conn *c;
	struct pkt_hdr h;
	uint32_t first;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(conn_table_connect(&f.t, 5000, &s, f.now, &c), 0);
	first = c->local_port;
	assert_int_equal(first, CONN_TABLE_DEFAULT_PORT_BASE);
	assert_int_equal(next_rx(&f, &h), VSOCK_OP_REQUEST);
	assert_int_equal(h.src_port, first);
	assert_int_equal(h.dst_port, 5000);
	/* refused by the guest */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RST, 5000, first)), CT_DONE);
	assert_int_equal(m1->closes, 1);
	assert_int_equal(f.t.count, 0);
	/* the next connection to the same guest port does not reuse the tuple */
	s = ms_stream(m2);
	assert_int_equal(conn_table_connect(&f.t, 5000, &s, f.now, &c), 0);
	assert_int_equal(c->local_port, first + 1);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_REQUEST);
	/* a stale RESPONSE for the old tuple: RST, and the new one is untouched */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RESPONSE, 5000, first)), CT_DONE);
	assert_int_equal(next_rx(&f, &h), VSOCK_OP_RST);
	assert_int_equal(h.src_port, first);
	assert_int_equal(c->state, CONN_LOCAL_INIT);
	/* its own RESPONSE establishes it and the host gets OK */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RESPONSE, 5000, first + 1)), CT_DONE);
	assert_int_equal(c->state, CONN_ESTABLISHED);
	assert_int_equal(m2->out_len, strlen("OK 1073741825\n"));
	assert_memory_equal(m2->out, "OK 1073741825\n", m2->out_len);
	conn_table_fini(&f.t);
	ms_free(m1);
	ms_free(m2);
}

static void test_stale_packets_after_close(void **state)
{
	struct fx f;
	struct memstream *a = ms_new(false), *b = ms_new(false), *sq = ms_new(true);
	struct conn *cb, *cs;
	struct pkt_hdr h;

	(void)state;
	fx_init(&f, NULL);
	f.t.cfg.seqpacket = true;
	open_peer(&f, a, 3000, 80);
	cb = open_peer(&f, b, 3001, 80);
	/* same ports as a's, other type */
	h = gh(VSOCK_OP_REQUEST, 3000, 80);
	h.type = VSOCK_TYPE_SEQPACKET;
	assert_int_equal(recv_hdr(&f, h), CT_NEW_REQUEST);
	{
		struct stream s = ms_stream(sq);

		assert_int_equal(conn_table_accept(&f.t, &h, &s, &cs), 0);
	}
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RESPONSE);
	/* a closes */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RST, 3000, 80)), CT_DONE);
	assert_int_equal(a->closes, 1);
	/* stale RST: nothing; stale RW: RST, for a's tuple only */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_RST, 3000, 80)), CT_DONE);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	h = gh(VSOCK_OP_SHUTDOWN, 3000, 80);
	assert_int_equal(recv_hdr(&f, h), CT_DONE);
	assert_int_equal(next_rx(&f, &h), VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 3000);
	assert_int_equal(h.type, VSOCK_TYPE_STREAM);
	assert_int_equal(cb->state, CONN_ESTABLISHED);
	assert_int_equal(cs->state, CONN_ESTABLISHED);
	assert_int_equal(b->closes + sq->closes, 0);
	/* the guest reuses a's ports: a fresh connection */
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_REQUEST, 3000, 80)), CT_NEW_REQUEST);
	conn_table_fini(&f.t);
	ms_free(a);
	ms_free(b);
	ms_free(sq);
}

static void test_malformed(void **state)
{
	struct fx f;
	struct memstream *m = ms_new(false);
	struct pkt_hdr h;

	(void)state;
	fx_init(&f, NULL);
	open_peer(&f, m, 1, 2);
	conn_table_recv_malformed(&f.t, NULL);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	h = gh(VSOCK_OP_RW, 1, 2);
	h.src_cid = 99;
	conn_table_recv_malformed(&f.t, &h);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	conn_table_recv_malformed(&f.t, &(struct pkt_hdr){ 0 });
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	/* unknown tuple: RST; known: that connection is reset */
	conn_table_recv_malformed(&f.t, &(struct pkt_hdr){ .src_cid = GUEST, .dst_cid = 2,
							  .src_port = 9, .dst_port = 9,
							  .type = 1, .op = 5 });
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	h = gh(VSOCK_OP_RW, 1, 2);
	conn_table_recv_malformed(&f.t, &h);
	assert_int_equal(next_rx(&f, &h), VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 1);
	assert_int_equal(m->closes, 1);
	assert_int_equal(f.t.count, 0);
	conn_table_fini(&f.t);
	ms_free(m);
}

static void test_rx_round_robin(void **state)
{
	struct fx f;
	struct memstream *a = ms_new(false), *b = ms_new(false);
	struct conn *ca, *cb;
	struct pkt_hdr h;
	static uint8_t data[20000];

	(void)state;
	fx_init(&f, NULL);
	ca = open_peer(&f, a, 10, 80);
	cb = open_peer(&f, b, 11, 80);
	ms_feed(a, data, sizeof(data));
	ms_feed(b, data, sizeof(data));
	conn_table_host_event(&f.t, ca, true, false, f.now);
	conn_table_host_event(&f.t, cb, true, false, f.now);
	assert_true(conn_table_has_rx(&f.t));
	for (int i = 0; i < 8; i++) {
		assert_int_equal(next_rx(&f, &h), VSOCK_OP_RW);
		assert_int_equal(h.dst_port, i % 2 ? 11u : 10u);
	}
	conn_table_fini(&f.t);
	ms_free(a);
	ms_free(b);
}

static void test_host_event_flush_and_ready(void **state)
{
	struct fx f;
	struct memstream *m = ms_new(false);
	struct conn *c;
	struct pkt_hdr h = gh(VSOCK_OP_RW, 10, 80);
	struct iovec v = { (void *)"hello", 5 };

	(void)state;
	fx_init(&f, NULL);
	c = open_peer(&f, m, 10, 80);
	m->out_room = 0;
	h.len = 5;
	assert_int_equal(conn_table_recv(&f.t, &h, &v, 1, f.now), CT_DONE);
	conn_table_tx_flush(&f.t, f.now);
	assert_true(conn_wants_host_write(c));
	m->out_room = 100;
	conn_table_host_event(&f.t, c, false, true, f.now);
	assert_int_equal(m->out_len, 5);
	assert_false(conn_wants_host_write(c));
	/* no data yet: the connection is not queued for rx */
	conn_table_host_event(&f.t, c, true, false, f.now);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	assert_false(conn_table_has_rx(&f.t));
	conn_table_fini(&f.t);
	ms_free(m);
}

/* RW packet @i of 5-byte packets "pkt0 " "pkt1 " ... from guest port @src. */
static void recv_rw(struct fx *f, uint32_t src, int i)
{
	static char data[8][6];
	struct pkt_hdr h = gh(VSOCK_OP_RW, src, 80);
	struct iovec v = { data[i % 8], 5 };

	snprintf(data[i % 8], sizeof(data[i % 8]), "pkt%d ", i % 8);
	h.len = 5;
	assert_int_equal(conn_table_recv(&f->t, &h, &v, 1, f->now), CT_DONE);
}

/* Consecutive RW packets of one connection: one writev, at the flush. */
static void test_gather_one_write(void **state)
{
	struct fx f;
	struct memstream *m = ms_new(false);
	struct conn *c;

	(void)state;
	fx_init(&f, NULL);
	c = open_peer(&f, m, 10, 80);
	for (int i = 0; i < 3; i++)
		recv_rw(&f, 10, i);
	assert_int_equal(m->out_len, 0);
	assert_false(conn_wants_host_write(c));
	conn_table_tx_flush(&f.t, f.now);
	assert_int_equal(m->writes, 1);
	assert_int_equal(m->out_len, 15);
	assert_memory_equal(m->out, "pkt0 pkt1 pkt2 ", 15);
	conn_table_tx_flush(&f.t, f.now); /* empty: nothing more */
	assert_int_equal(m->writes, 1);
	conn_table_fini(&f.t);
	ms_free(m);
}

/* Another connection's packet, or a SHUTDOWN, sends the held bytes first. */
static void test_gather_order(void **state)
{
	struct fx f;
	struct memstream *a = ms_new(false), *b = ms_new(false);
	struct pkt_hdr sh = gh(VSOCK_OP_SHUTDOWN, 10, 80);

	(void)state;
	fx_init(&f, NULL);
	open_peer(&f, a, 10, 80);
	open_peer(&f, b, 11, 80);
	recv_rw(&f, 10, 0);
	recv_rw(&f, 10, 1);
	recv_rw(&f, 11, 2);
	assert_int_equal(a->out_len, 10);
	assert_int_equal(b->out_len, 0);
	recv_rw(&f, 10, 3);
	assert_int_equal(b->out_len, 5);
	sh.flags = VSOCK_SHUTDOWN_SEND;
	assert_int_equal(conn_table_recv(&f.t, &sh, NULL, 0, f.now), CT_DONE);
	assert_int_equal(a->out_len, 15);
	assert_memory_equal(a->out, "pkt0 pkt1 pkt3 ", 15);
	assert_int_equal(a->shutdowns, 1);
	assert_int_equal(a->writes, 2);
	conn_table_fini(&f.t);
	ms_free(a);
	ms_free(b);
}

/* What the host does not take at the flush is buffered, and credited when it goes. */
static void test_gather_partial(void **state)
{
	struct fx f;
	struct memstream *m = ms_new(false);
	struct conn *c;

	(void)state;
	fx_init(&f, NULL);
	c = open_peer(&f, m, 10, 80);
	m->out_room = 7;
	for (int i = 0; i < 3; i++)
		recv_rw(&f, 10, i);
	conn_table_tx_flush(&f.t, f.now);
	assert_int_equal(m->out_len, 7);
	assert_int_equal(c->cr.fwd_cnt, 7);
	assert_true(conn_wants_host_write(c));
	m->out_room = 100;
	conn_table_host_event(&f.t, c, false, true, f.now);
	assert_int_equal(m->out_len, 15);
	assert_memory_equal(m->out, "pkt0 pkt1 pkt2 ", 15);
	assert_int_equal(c->cr.fwd_cnt, 15);
	conn_table_fini(&f.t);
	ms_free(m);
}

/* A host error at the flush resets the connection: RST to the guest. */
static void test_gather_error(void **state)
{
	struct fx f;
	struct memstream *m = ms_new(false);
	struct pkt_hdr h;

	(void)state;
	fx_init(&f, NULL);
	open_peer(&f, m, 10, 80);
	recv_rw(&f, 10, 0);
	m->write_err = -EPIPE;
	conn_table_tx_flush(&f.t, f.now);
	assert_int_equal(next_rx(&f, &h), VSOCK_OP_RST);
	assert_int_equal(h.dst_port, 10u);
	conn_table_fini(&f.t);
	ms_free(m);
}

static void test_timers(void **state)
{
	struct fx f;
	struct memstream *a = ms_new(false), *b = ms_new(false);
	struct stream s = ms_stream(a);
	struct conn *cb;

	(void)state;
	fx_init(&f, NULL);
	assert_int_equal(conn_table_next_deadline(&f.t), 0);
	assert_int_equal(conn_table_connect(&f.t, 1, &s, 1000, NULL), 0);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_REQUEST);
	cb = open_peer(&f, b, 2, 80);
	conn_close(cb, 500);
	conn_table_settle(&f.t, cb);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_SHUTDOWN);
	assert_int_equal(conn_table_next_deadline(&f.t), 1000 + CONN_DEFAULT_CONNECT_TIMEOUT_MS);
	conn_table_expire(&f.t, 2999);
	assert_int_equal(next_rx(&f, NULL), -EAGAIN);
	conn_table_expire(&f.t, 3000);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	assert_int_equal(f.t.count, 1);
	assert_int_equal(conn_table_next_deadline(&f.t), 500 + CONN_DEFAULT_CLOSE_TIMEOUT_MS);
	conn_table_expire(&f.t, 500 + CONN_DEFAULT_CLOSE_TIMEOUT_MS);
	assert_int_equal(next_rx(&f, NULL), VSOCK_OP_RST);
	assert_int_equal(f.t.count, 0);
	assert_int_equal(f.freed, 2);
	assert_int_equal(conn_table_next_deadline(&f.t), 0);
	conn_table_fini(&f.t);
	ms_free(a);
	ms_free(b);
}

static void test_many_connections(void **state)
{
	static struct memstream *m[1024];
	struct fx f;

	(void)state;
	fx_init(&f, NULL);
	for (uint32_t i = 0; i < 1024; i++) {
		struct pkt_hdr req = gh(VSOCK_OP_REQUEST, 50000 + i, i % 7);
		struct stream s;

		m[i] = ms_new(false);
		s = ms_stream(m[i]);
		assert_int_equal(recv_hdr(&f, req), CT_NEW_REQUEST);
		assert_int_equal(conn_table_accept(&f.t, &req, &s, NULL), 0);
	}
	for (uint32_t i = 0; i < 1024; i++) {
		struct conn *c = conn_table_lookup(&f.t, i % 7, 50000 + i, VSOCK_TYPE_STREAM);

		assert_non_null(c);
		assert_int_equal(c->peer_port, 50000 + i);
	}
	assert_int_equal(recv_hdr(&f, gh(VSOCK_OP_REQUEST, 1, 1)), CT_DONE); /* cap */
	conn_table_fini(&f.t);
	assert_int_equal(f.freed, 1024);
	for (uint32_t i = 0; i < 1024; i++) {
		assert_int_equal(m[i]->closes, 1);
		ms_free(m[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cfg_checks),
		cmocka_unit_test(test_misaddressed_dropped),
		cmocka_unit_test(test_unknown_tuple_answers),
		cmocka_unit_test(test_request_accept_refuse),
		cmocka_unit_test(test_abort_all),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_rst_queue_bounded),
		cmocka_unit_test(test_port_allocation_wraps),
		cmocka_unit_test(test_port_any_never_allocated),
		cmocka_unit_test(test_ports_rotate_after_close),
		cmocka_unit_test(test_stale_packets_after_close),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_rx_round_robin),
		cmocka_unit_test(test_host_event_flush_and_ready),
		cmocka_unit_test(test_gather_one_write),
		cmocka_unit_test(test_gather_order),
		cmocka_unit_test(test_gather_partial),
		cmocka_unit_test(test_gather_error),
		cmocka_unit_test(test_timers),
		cmocka_unit_test(test_many_connections),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
