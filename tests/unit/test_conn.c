// SPDX-License-Identifier: MIT
/*
 * One vsock connection against an in-memory host (user_memstream.h) and a
 * scripted guest: every state × op, credit in both directions (exhaustion,
 * recovery, u32 wrap, overrun), half-close both ways, close and connect
 * timeouts, SEQPACKET boundaries, the hybrid OK line, host errors, and the
 * real Unix-socket stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/user/conn.h"
#include "user_memstream.h"

#define GUEST 3u
#define GUEST_PORT 5555u
#define HOST_PORT 1234u
#define LOCAL_PORT (1u << 30)
#define RXBUF 4096u

/* Headers are compared as the guest sees them: the 44 wire bytes. */
static void assert_hdr_equal(const struct pkt_hdr *a, const struct pkt_hdr *b)
{
	uint8_t ra[VSOCK_HDR_LEN], rb[VSOCK_HDR_LEN];

	pkt_hdr_encode(a, ra);
	pkt_hdr_encode(b, rb);
	assert_memory_equal(ra, rb, sizeof(ra));
}

struct fx {
	struct conn_params par;
	struct memstream *ms;
	struct conn *c;
	uint16_t type;
	uint32_t local_port;
	uint64_t now;
	/* the scripted guest */
	uint32_t g_buf_alloc;
	uint32_t g_fwd_cnt;   /* bytes it consumed from us */
	uint32_t g_tx_cnt;    /* bytes it sent us */
	uint32_t d_buf_alloc; /* device's credit as last seen */
	uint32_t d_fwd_cnt;
	uint8_t rx[RXBUF];    /* last rx buffer */
};

static void fx_params(struct fx *f, uint16_t type, uint32_t buf_alloc)
{
	memset(f, 0, sizeof(*f));
	f->par = (struct conn_params){ GUEST, buf_alloc, 2000, 8000 };
	f->type = type;
	f->ms = ms_new(type == VSOCK_TYPE_SEQPACKET);
	f->now = 1000;
	f->g_buf_alloc = 65536;
}

static struct pkt_hdr gh(struct fx *f, uint16_t op, uint32_t len, uint32_t flags)
{
	return (struct pkt_hdr){
		.src_cid = GUEST, .dst_cid = VSOCK_CID_HOST, .src_port = GUEST_PORT,
		.dst_port = f->local_port, .len = len, .type = f->type, .op = op,
		.flags = flags, .buf_alloc = f->g_buf_alloc, .fwd_cnt = f->g_fwd_cnt,
	};
}

static int g_send(struct fx *f, uint16_t op, const void *data, uint32_t len, uint32_t flags)
{
	struct pkt_hdr h = gh(f, op, len, flags);
	struct iovec v = { (void *)data, len };

	if (op == VSOCK_OP_RW)
		f->g_tx_cnt += len;
	return conn_recv(f->c, &h, &v, len ? 1 : 0, f->now);
}

/* Offer one rx buffer of @size. Return: the op received, or a negative errno. */
static int g_recv(struct fx *f, size_t size, struct pkt_hdr *out)
{
	struct iovec v = { f->rx, size };
	struct pkt_hdr h, wire;
	size_t len = 0;
	int rc = conn_fill_rx(f->c, &v, 1, &h, &len, f->now);

	if (rc < 0)
		return rc;
	pkt_hdr_decode(f->rx, &wire);
	assert_hdr_equal(&wire, &h);
	assert_int_equal(len, VSOCK_HDR_LEN + h.len);
	assert_int_equal(h.src_cid, VSOCK_CID_HOST);
	assert_int_equal(h.dst_cid, GUEST);
	assert_int_equal(h.src_port, f->local_port);
	assert_int_equal(h.dst_port, GUEST_PORT);
	assert_int_equal(h.type, f->type);
	if (h.op != VSOCK_OP_RW)
		assert_int_equal(h.len, 0);
	f->d_buf_alloc = h.buf_alloc;
	f->d_fwd_cnt = h.fwd_cnt;
	if (h.op == VSOCK_OP_RW)
		f->g_fwd_cnt += h.len; /* the guest app reads at once */
	if (out)
		*out = h;
	return h.op;
}

static uint32_t g_credit(const struct fx *f)
{
	return f->d_buf_alloc - (f->g_tx_cnt - f->d_fwd_cnt);
}

static void fx_peer(struct fx *f, uint16_t type, uint32_t buf_alloc)
{
	struct stream s;
	struct pkt_hdr req;

	fx_params(f, type, buf_alloc);
	f->local_port = HOST_PORT;
	s = ms_stream(f->ms);
	req = gh(f, VSOCK_OP_REQUEST, 0, 0);
	f->c = conn_new_peer(&f->par, &req, &s);
	assert_non_null(f->c);
}

static void fx_established(struct fx *f, uint16_t type, uint32_t buf_alloc)
{
	fx_peer(f, type, buf_alloc);
	assert_int_equal(g_recv(f, RXBUF, NULL), VSOCK_OP_RESPONSE);
	assert_int_equal(f->c->state, CONN_ESTABLISHED);
	assert_int_equal(f->d_buf_alloc, buf_alloc);
}

static void fx_local(struct fx *f)
{
	struct stream s;

	fx_params(f, VSOCK_TYPE_STREAM, 4096);
	f->local_port = LOCAL_PORT;
	s = ms_stream(f->ms);
	f->c = conn_new_local(&f->par, &s, VSOCK_TYPE_STREAM, LOCAL_PORT, GUEST_PORT, f->now);
	assert_non_null(f->c);
	assert_int_equal(f->c->state, CONN_LOCAL_INIT);
}

static void fx_done(struct fx *f)
{
	conn_free(f->c);
	/* the host stream is closed exactly once over the connection's life */
	assert_int_equal(f->ms->closes, 1);
	ms_free(f->ms);
}

/* ---- every state × op -------------------------------------------------- */

enum setup { S_LOCAL, S_PEER, S_EST, S_CLOSING, S_CLOSED };

static void fx_in(struct fx *f, enum setup st)
{
	switch (st) {
	case S_LOCAL:
		fx_local(f);
		assert_int_equal(g_recv(f, RXBUF, NULL), VSOCK_OP_REQUEST);
		break;
	case S_PEER:
		fx_peer(f, VSOCK_TYPE_STREAM, 4096);
		break;
	case S_EST:
		fx_established(f, VSOCK_TYPE_STREAM, 4096);
		break;
	case S_CLOSING: {
		struct pkt_hdr h;

		fx_established(f, VSOCK_TYPE_STREAM, 4096);
		conn_close(f->c, f->now);
		assert_int_equal(g_recv(f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
		assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
		break;
	}
	case S_CLOSED:
		fx_established(f, VSOCK_TYPE_STREAM, 4096);
		conn_abort(f->c);
		break;
	}
}

#define NONE (-EAGAIN)

static void test_state_op_table(void **state)
{
	static const struct {
		enum setup st;
		uint16_t op;
		enum conn_state want;
		int rx;          /* next op to the guest, or NONE */
		size_t host_out; /* bytes the host program got */
		int closes;
	} rows[] = {
		{ S_LOCAL, VSOCK_OP_REQUEST, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_LOCAL, VSOCK_OP_RESPONSE, CONN_ESTABLISHED, NONE, 14, 0 },
		{ S_LOCAL, VSOCK_OP_RST, CONN_CLOSED, NONE, 0, 1 },
		{ S_LOCAL, VSOCK_OP_SHUTDOWN, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_LOCAL, VSOCK_OP_RW, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_LOCAL, VSOCK_OP_CREDIT_UPDATE, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_LOCAL, VSOCK_OP_CREDIT_REQUEST, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_LOCAL, VSOCK_OP_INVALID, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_LOCAL, 9, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },

		{ S_PEER, VSOCK_OP_REQUEST, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_PEER, VSOCK_OP_RESPONSE, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_PEER, VSOCK_OP_RST, CONN_CLOSED, NONE, 0, 1 },
		{ S_PEER, VSOCK_OP_SHUTDOWN, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_PEER, VSOCK_OP_RW, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_PEER, VSOCK_OP_CREDIT_UPDATE, CONN_PEER_INIT, VSOCK_OP_RESPONSE, 0, 0 },
		{ S_PEER, VSOCK_OP_CREDIT_REQUEST, CONN_PEER_INIT, VSOCK_OP_RESPONSE, 0, 0 },
		{ S_PEER, VSOCK_OP_INVALID, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_PEER, 9, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },

		{ S_EST, VSOCK_OP_REQUEST, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_EST, VSOCK_OP_RESPONSE, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_EST, VSOCK_OP_RST, CONN_CLOSED, NONE, 0, 1 },
		{ S_EST, VSOCK_OP_SHUTDOWN, CONN_ESTABLISHED, NONE, 0, 0 },
		{ S_EST, VSOCK_OP_RW, CONN_ESTABLISHED, NONE, 4, 0 },
		{ S_EST, VSOCK_OP_CREDIT_UPDATE, CONN_ESTABLISHED, NONE, 0, 0 },
		{ S_EST, VSOCK_OP_CREDIT_REQUEST, CONN_ESTABLISHED, VSOCK_OP_CREDIT_UPDATE, 0, 0 },
		{ S_EST, VSOCK_OP_INVALID, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_EST, 9, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },

		{ S_CLOSING, VSOCK_OP_REQUEST, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_CLOSING, VSOCK_OP_RESPONSE, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_CLOSING, VSOCK_OP_RST, CONN_CLOSED, NONE, 0, 1 },
		{ S_CLOSING, VSOCK_OP_SHUTDOWN, CONN_CLOSING, NONE, 0, 0 },
		{ S_CLOSING, VSOCK_OP_RW, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_CLOSING, VSOCK_OP_CREDIT_UPDATE, CONN_CLOSING, NONE, 0, 0 },
		{ S_CLOSING, VSOCK_OP_CREDIT_REQUEST, CONN_CLOSING, NONE, 0, 0 },
		{ S_CLOSING, VSOCK_OP_INVALID, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
		{ S_CLOSING, 9, CONN_CLOSED, VSOCK_OP_RST, 0, 1 },
	};
	static const uint16_t all_ops[] = { 0, 1, 2, 3, 4, 5, 6, 7, 9 };

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fx f;
		uint32_t flags = rows[i].op == VSOCK_OP_SHUTDOWN ? VSOCK_SHUTDOWN_SEND : 0;
		uint32_t len = rows[i].op == VSOCK_OP_RW ? 4 : 0;

		fx_in(&f, rows[i].st);
		g_send(&f, rows[i].op, "abcd", len, flags);
		if (f.c->state != rows[i].want)
			fail_msg("row %zu: state %s", i, conn_state_name(f.c->state));
		assert_int_equal(g_recv(&f, RXBUF, NULL), rows[i].rx);
		assert_int_equal(f.ms->out_len, rows[i].host_out);
		assert_int_equal(f.ms->closes, rows[i].closes);
		if (rows[i].rx == VSOCK_OP_RST || rows[i].op == VSOCK_OP_RST) {
			/* exactly one RST, then the connection can go */
			assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
			assert_true(conn_is_done(f.c));
		}
		fx_done(&f);
	}
	/* CLOSED with an RST pending: any packet changes nothing */
	for (size_t i = 0; i < sizeof(all_ops) / sizeof(all_ops[0]); i++) {
		struct fx f;

		fx_in(&f, S_CLOSED);
		assert_int_equal(g_send(&f, all_ops[i], "abcd", all_ops[i] == 5 ? 4 : 0, 0), 0);
		assert_int_equal(f.c->state, CONN_CLOSED);
		assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
		assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
		assert_true(conn_is_done(f.c));
		assert_int_equal(f.ms->out_len, 0);
		fx_done(&f);
	}
}

/* ---- credit ---------------------------------------------------------------- */

static void test_host_to_guest_credit(void **state)
{
	static uint8_t data[3000];
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_peer(&f, VSOCK_TYPE_STREAM, 4096);
	f.c->cr.peer_buf_alloc = 1000; /* as if the REQUEST had said 1000 */
	f.g_buf_alloc = 1000;
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RESPONSE);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	ms_feed(f.ms, data, sizeof(data));
	conn_host_readable(f.c);
	assert_true(conn_wants_rx(f.c));
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 1000);
	assert_memory_equal(f.rx + VSOCK_HDR_LEN, data, 1000);
	/* exhausted: nothing more, and nothing asked of the host */
	assert_false(conn_may_read_host(f.c));
	assert_false(conn_wants_rx(f.c));
	assert_false(conn_wants_host_read(f.c));
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	/* the guest's CREDIT_UPDATE unblocks it */
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_true(conn_wants_rx(f.c));
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 1000);
	assert_memory_equal(f.rx + VSOCK_HDR_LEN, data + 1000, 1000);
	/* a partial update gives partial credit */
	f.g_fwd_cnt -= 400;
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 600);
	/* a small rx buffer bounds the packet too */
	f.g_fwd_cnt += 400;
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, VSOCK_HDR_LEN + 100, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 100);
	assert_memory_equal(f.rx + VSOCK_HDR_LEN, data + 2600, 100);
	fx_done(&f);
}

static void test_credit_request_flood(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_REQUEST, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	fx_done(&f);
}

static void test_bogus_fwd_cnt_ignored(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.g_fwd_cnt = 5000; /* acknowledges bytes we never sent */
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_int_equal(f.c->cr.peer_fwd_cnt, 0);
	assert_int_equal(credit_peer_free(&f.c->cr), 65536);
	assert_int_equal(f.c->state, CONN_ESTABLISHED);
	fx_done(&f);
}

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 131 + 7);
}

/*
 * A guest that always writes exactly up to the credit it was given, a host
 * that reads @tick bytes per round: the transfer must finish, in order,
 * without an RST, however the counters start.
 */
static void transfer(uint32_t start, uint32_t buf_alloc, size_t total, size_t tick)
{
	static uint8_t chunk[1500];
	size_t sent = 0, rounds = 0;
	int updates = 0;
	struct fx f;
	struct pkt_hdr h;

	fx_peer(&f, VSOCK_TYPE_STREAM, buf_alloc);
	f.c->cr.rx_cnt = f.c->cr.fwd_cnt = f.c->cr.adv_fwd_cnt = start;
	f.g_tx_cnt = start;
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RESPONSE);
	f.ms->out_room = 0;
	while (f.ms->out_len < total) {
		uint32_t credit;

		while ((credit = g_credit(&f)) > 0 && sent < total) {
			uint32_t n = credit < sizeof(chunk) ? credit : sizeof(chunk);

			if (n > total - sent)
				n = (uint32_t)(total - sent);
			for (uint32_t i = 0; i < n; i++)
				chunk[i] = pattern(sent + i);
			assert_int_equal(g_send(&f, VSOCK_OP_RW, chunk, n, 0), 0);
			sent += n;
		}
		f.ms->out_room += tick;
		assert_int_equal(conn_flush(f.c, f.now), 0);
		while (conn_wants_rx(f.c)) {
			assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_CREDIT_UPDATE);
			updates++;
		}
		assert_true(++rounds < total / tick * 2 + 100); /* no stall */
	}
	assert_int_equal(f.c->state, CONN_ESTABLISHED);
	assert_int_equal(f.ms->out_len, total);
	for (size_t i = 0; i < total; i++)
		if (f.ms->out[i] != pattern(i))
			fail_msg("byte %zu wrong", i);
	assert_true(updates > 0);
	assert_int_equal(f.c->cr.fwd_cnt, (uint32_t)(start + total));
	assert_null(f.c->tx.data); /* buffer freed once drained */
	fx_done(&f);
}

static void test_long_transfer_exact_credit(void **state)
{
	(void)state;
	transfer(0, 4096, 1 << 20, 1000);
	transfer(UINT32_MAX - 300000, 4096, 1 << 20, 1000);    /* counters wrap mid-way */
	transfer(UINT32_MAX - 5, 65536, 1 << 20, 7000);
	transfer(12345, 1, 3000, 1);                           /* one byte of buffer */
	transfer(0, 4096, 1 << 18, 1 << 20);                   /* host never blocks */
}

static void test_overrun_gets_rst(void **state)
{
	static uint8_t buf[4097];
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->out_room = 0;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, buf, 4000, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, buf, 96, 0), 0);
	assert_int_equal(f.c->tx.len, 4096); /* held, exactly buf_alloc */
	assert_int_equal(g_send(&f, VSOCK_OP_RW, buf, 1, 0), -ENOBUFS);
	assert_int_equal(f.c->state, CONN_CLOSED);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_int_equal(f.ms->closes, 1);
	assert_null(f.c->tx.data);
	fx_done(&f);

	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, buf, 4097, 0), -ENOBUFS);
	assert_int_equal(f.ms->out_len, 0); /* nothing of it reached the host */
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);
}

static void test_partial_host_write_keeps_order(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->out_room = 3;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "hello", 5, 0), 0);
	assert_true(conn_wants_host_write(f.c));
	assert_int_equal(f.c->cr.fwd_cnt, 3);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, " world", 6, 0), 0);
	assert_int_equal(f.ms->out_len, 3);
	f.ms->out_room = 100;
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->out_len, 11);
	assert_memory_equal(f.ms->out, "hello world", 11);
	assert_false(conn_wants_host_write(f.c));
	assert_int_equal(f.c->cr.fwd_cnt, 11);
	fx_done(&f);
}

/* ---- half-close and close -------------------------------------------------- */

static void test_guest_shutdown_send(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->out_room = 2;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "data", 4, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_SEND), 0);
	assert_int_equal(f.ms->shutdowns, 0); /* not before the last byte */
	f.ms->out_room = 10;
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->shutdowns, 1);
	assert_memory_equal(f.ms->out, "data", 4);
	/* the other direction still flows */
	ms_feed(f.ms, "reply", 5);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_memory_equal(f.rx + VSOCK_HDR_LEN, "reply", 5);
	/* the guest breaking its word gets an RST */
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "x", 1, 0), -EPROTO);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);
}

static void test_both_half_closes_end_in_close(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_SEND), 0);
	assert_int_equal(f.ms->shutdowns, 1);
	ms_feed(f.ms, "last", 4);
	f.ms->in_eof = true;
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	/* host EOF with the guest already done sending: one SHUTDOWN, both bits */
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
	assert_int_equal(f.c->state, CONN_CLOSING);
	assert_int_equal(conn_deadline(f.c), f.now + 8000);
	/* the guest's RST ends it, unanswered */
	assert_int_equal(g_send(&f, VSOCK_OP_RST, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	assert_true(conn_is_done(f.c));
	fx_done(&f);
}

static void test_host_eof_half_close(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->in_eof = true;
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	assert_int_equal(f.c->state, CONN_ESTABLISHED);
	assert_false(conn_wants_host_read(f.c));
	/* the guest may keep sending */
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "more", 4, 0), 0);
	assert_memory_equal(f.ms->out, "more", 4);
	/* then closes both ways: we flush, then RST */
	f.ms->out_room = 0;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "tail", 4, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_BOTH), 0);
	assert_int_equal(f.c->state, CONN_CLOSING);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	f.ms->out_room = 100;
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_memory_equal(f.ms->out, "moretail", 8);
	/*
	 * After the last byte the host gets a close and no half-close first: a
	 * host AF_VSOCK peer woken by a half-close could send before the close
	 * and miss its EPIPE (vsock_test "SOCK_STREAM server close", forwarded).
	 */
	assert_int_equal(f.ms->shutdowns, 0);
	assert_int_equal(f.ms->closes, 1);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_true(conn_is_done(f.c));
	fx_done(&f);
}

/* A guest close() with nothing pending is one host close, then our RST. */
static void test_guest_close_is_one_close(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "bye", 3, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_BOTH), 0);
	assert_memory_equal(f.ms->out, "bye", 3);
	assert_int_equal(f.ms->shutdowns, 0);
	assert_int_equal(f.ms->closes, 1);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_true(conn_is_done(f.c));
	fx_done(&f);
}

/* A host that closed (not half-closed) is one SHUTDOWN with both bits. */
static void test_host_close_is_both_shutdowns(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	ms_feed(f.ms, "last", 4);
	f.ms->in_eof = true;
	f.ms->peer_closed = true;
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_memory_equal(f.rx + VSOCK_HDR_LEN, "last", 4);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
	assert_int_equal(f.c->state, CONN_CLOSING);
	/* the guest's RST ends it, unanswered */
	assert_int_equal(g_send(&f, VSOCK_OP_RST, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	assert_true(conn_is_done(f.c));
	fx_done(&f);
}

static void test_guest_shutdown_rcv_stops_reads(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_RCV), 0);
	assert_int_equal(f.ms->rd_shutdowns, 1); /* the host hears it */
	ms_feed(f.ms, "unwanted", 8);
	conn_host_readable(f.c);
	assert_false(conn_may_read_host(f.c));
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	/* guest → host still works */
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "ok", 2, 0), 0);
	assert_int_equal(f.ms->out_len, 2);
	assert_int_equal(f.ms->rd_shutdowns, 1);
	assert_int_equal(f.ms->shutdowns, 0);
	fx_done(&f);

	/* closing both ways at once is a close, no half-shutdown first */
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_BOTH), 0);
	assert_int_equal(f.ms->rd_shutdowns, 0);
	fx_done(&f);
}

/* The host socket's own buffer follows the guest's, once per change, capped. */
static void test_host_buffer_follows_guest(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 4096);
	assert_int_equal(f.ms->buf_size, 65536); /* the guest's from the start */
	f.g_buf_alloc = 2u << 20;                /* SO_VM_SOCKETS_BUFFER_SIZE in the guest */
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_int_equal(f.ms->buf_size, 2u << 20);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "m", 1, VSOCK_SEQ_EOM), 0);
	assert_int_equal(f.ms->buf_sets, 2);
	f.g_buf_alloc = UINT32_MAX;
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_int_equal(f.ms->buf_size, CONN_HOST_BUF_MAX);
	fx_done(&f);
}

static void test_close_timeout(void **state)
{
	struct fx f;

	(void)state;
	fx_in(&f, S_CLOSING);
	assert_false(conn_timeout(f.c, f.now + 7999));
	assert_true(conn_timeout(f.c, f.now + 8000));
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_true(conn_is_done(f.c));
	assert_int_equal(conn_deadline(f.c), 0);
	fx_done(&f);

	/* a guest that closes both ways while the host is stuck */
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->out_room = 0;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "stuck", 5, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_BOTH), 0);
	assert_int_equal(conn_deadline(f.c), f.now + 8000);
	assert_true(conn_timeout(f.c, f.now + 9000));
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_int_equal(f.ms->out_len, 0);
	fx_done(&f);
}

static void test_connect_timeout(void **state)
{
	struct fx f;

	(void)state;
	fx_in(&f, S_LOCAL);
	assert_int_equal(conn_deadline(f.c), f.now + 2000);
	assert_false(conn_timeout(f.c, f.now + 1999));
	assert_true(conn_timeout(f.c, f.now + 2000));
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_int_equal(f.ms->out_len, 0); /* the host program never got OK */
	fx_done(&f);

	/* a REQUEST never sent needs no RST */
	fx_local(&f);
	assert_true(conn_timeout(f.c, f.now + 5000));
	assert_true(conn_is_done(f.c));
	fx_done(&f);

	/* a RESPONSE to a REQUEST not yet sent is a guess: dropped quietly */
	fx_local(&f);
	assert_int_equal(g_send(&f, VSOCK_OP_RESPONSE, NULL, 0, 0), -EPROTO);
	assert_true(conn_is_done(f.c));
	fx_done(&f);
}

static void test_close_other_states(void **state)
{
	struct fx f;

	(void)state;
	fx_in(&f, S_PEER);
	conn_close(f.c, f.now);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);
	fx_in(&f, S_CLOSED);
	conn_close(f.c, f.now);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	fx_done(&f);
}

/* ---- hybrid OK line ---------------------------------------------------------- */

static void test_ok_line_then_data(void **state)
{
	struct fx f;
	const char *ok = "OK 1073741824\n";

	(void)state;
	fx_in(&f, S_LOCAL);
	f.ms->out_room = 5; /* slow host: the line goes out in pieces */
	assert_int_equal(g_send(&f, VSOCK_OP_RESPONSE, NULL, 0, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "abc", 3, 0), 0);
	assert_int_equal(f.ms->out_len, 5);
	assert_int_equal(f.c->cr.fwd_cnt, 0);
	f.ms->out_room = 100;
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->out_len, strlen(ok) + 3);
	assert_memory_equal(f.ms->out, "OK 1073741824\nabc", strlen(ok) + 3);
	/* the line is ours, not guest payload: fwd_cnt counts 3 */
	assert_int_equal(f.c->cr.fwd_cnt, 3);
	assert_int_equal(conn_deadline(f.c), 0);
	fx_done(&f);
}

/* ---- host errors and small buffers ------------------------------------------ */

static void test_host_errors_reset(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->write_err = -EPIPE;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "x", 1, 0), -EPIPE);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);

	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->read_err = -ECONNRESET;
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);

	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->shut_err = -ENOTCONN;
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_SEND), -ENOTCONN);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);

	/* a flush that fails later also resets */
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	f.ms->out_room = 0;
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "x", 1, 0), 0);
	f.ms->write_err = -EIO;
	assert_int_equal(conn_flush(f.c, f.now), -EIO);
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RST);
	fx_done(&f);
}

static void test_small_rx_buffers(void **state)
{
	struct fx f;
	uint8_t a[10], b[40], c[100];
	struct iovec rx[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct pkt_hdr h, wire;
	uint8_t flat[150];
	size_t len;

	(void)state;
	fx_established(&f, VSOCK_TYPE_STREAM, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_REQUEST, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, 43, NULL), -ENOBUFS);
	/* a bare header fits a control packet ... */
	assert_int_equal(g_recv(&f, 44, NULL), VSOCK_OP_CREDIT_UPDATE);
	/* ... but no data */
	ms_feed(f.ms, "0123456789", 10);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, 44, NULL), -ENOBUFS);
	/* header and data split over three buffers */
	assert_int_equal(conn_fill_rx(f.c, rx, 3, &h, &len, f.now), 0);
	assert_int_equal(len, VSOCK_HDR_LEN + 10);
	memcpy(flat, a, 10);
	memcpy(flat + 10, b, 40);
	memcpy(flat + 50, c, 100);
	pkt_hdr_decode(flat, &wire);
	assert_hdr_equal(&wire, &h);
	assert_memory_equal(flat + VSOCK_HDR_LEN, "0123456789", 10);
	/* many empty segments cost no payload slot; only empty ones leave no
	 * room, which must not read as the host's end of stream */
	ms_feed(f.ms, "abc", 3);
	{
		static struct iovec many[PKT_MAX_IOV + 2];

		many[0] = (struct iovec){ flat, VSOCK_HDR_LEN };
		for (size_t i = 1; i <= PKT_MAX_IOV; i++)
			many[i] = (struct iovec){ flat, 0 };
		many[PKT_MAX_IOV + 1] = (struct iovec){ c, sizeof(c) };
		assert_int_equal(conn_fill_rx(f.c, many, PKT_MAX_IOV + 1, &h, &len, f.now),
				 -ENOBUFS);
		assert_int_equal(conn_fill_rx(f.c, many, PKT_MAX_IOV + 2, &h, &len, f.now), 0);
		assert_int_equal(h.op, VSOCK_OP_RW);
		assert_int_equal(h.len, 3);
		assert_memory_equal(c, "abc", 3);
	}
	assert_int_equal(f.c->local_shut, 0);
	fx_done(&f);
}

/* ---- SEQPACKET ------------------------------------------------------------- */

static void test_seq_guest_fragments(void **state)
{
	static uint8_t msg[160];
	struct fx f;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i + 1);
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, msg, 100, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, msg + 100, 50, 0), 0);
	assert_int_equal(f.ms->out_nmsg, 0);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, msg + 150, 10, VSOCK_SEQ_EOM | VSOCK_SEQ_EOR), 0);
	assert_int_equal(f.ms->out_nmsg, 1);
	assert_int_equal(f.ms->out_msg[0], 160);
	assert_true(f.ms->out_eor[0]);
	assert_memory_equal(f.ms->out, msg, 160);
	assert_int_equal(f.c->cr.fwd_cnt, 160);
	/* an empty message would read as EOF on the host: dropped */
	assert_int_equal(g_send(&f, VSOCK_OP_RW, NULL, 0, VSOCK_SEQ_EOM), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "x", 1, VSOCK_SEQ_EOM), 0);
	assert_int_equal(f.ms->out_nmsg, 2);
	assert_int_equal(f.ms->out_msg[1], 1);
	assert_false(f.ms->out_eor[1]);
	fx_done(&f);
}

static void test_seq_guest_blocked_host(void **state)
{
	enum { NMSG = 16 };
	struct fx f;
	char m[4];

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 4096);
	f.ms->out_room = 0;
	for (unsigned int i = 0; i < NMSG; i++) {
		memset(m, 'a' + (int)i, sizeof(m));
		assert_int_equal(g_send(&f, VSOCK_OP_RW, m, 2, 0), 0);
		assert_int_equal(g_send(&f, VSOCK_OP_RW, m, 2, VSOCK_SEQ_EOM), 0);
	}
	assert_true(conn_wants_host_write(f.c));
	f.ms->out_room = 8; /* room for two messages */
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->out_nmsg, 2);
	assert_memory_equal(f.ms->out, "aaaabbbb", 8);
	f.ms->out_room = 1000;
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->out_nmsg, NMSG);
	assert_int_equal(f.c->cr.fwd_cnt, 4 * NMSG);
	assert_false(conn_wants_host_write(f.c));
	fx_done(&f);
}

/*
 * A guest within its credit may queue any number of small messages while
 * the host sleeps (vsock_test 6.12 "SOCK_SEQPACKET msg bounds" sends 2 MiB
 * of them before its peer reads): all reach the host, in order, bounds and
 * record ends kept; none is refused.
 */
static void test_seq_guest_many_small_messages(void **state)
{
	enum { NMSG = 200 }; /* within MS_MAX_MSGS, far more than a first ring */
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 4096);
	f.ms->out_room = 0;
	for (unsigned int i = 0; i < NMSG; i++) {
		char b = (char)('!' + i % 90);

		assert_int_equal(g_send(&f, VSOCK_OP_RW, &b, 1,
					VSOCK_SEQ_EOM | (i % 3 ? 0 : VSOCK_SEQ_EOR)), 0);
	}
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	assert_int_equal(f.c->seq_in.count, NMSG);
	f.ms->out_room = 5; /* part of them, then the rest */
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->out_nmsg, 5);
	f.ms->out_room = 1000;
	assert_int_equal(conn_flush(f.c, f.now), 0);
	assert_int_equal(f.ms->out_nmsg, NMSG);
	for (unsigned int i = 0; i < NMSG; i++) {
		assert_int_equal(f.ms->out_msg[i], 1);
		assert_int_equal(f.ms->out[i], '!' + i % 90);
		assert_int_equal(f.ms->out_eor[i], i % 3 == 0);
	}
	assert_int_equal(f.c->cr.fwd_cnt, NMSG);
	assert_null(f.c->seq_in.msgs); /* the ring goes with the burst */
	assert_false(conn_wants_host_write(f.c));
	fx_done(&f);
}

static void test_seq_half_message_then_shutdown(void **state)
{
	struct fx f;

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 4096);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "part", 4, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_SEND), 0);
	/* the unfinished message is dropped; the host hears the shutdown */
	assert_int_equal(f.ms->out_nmsg, 0);
	assert_int_equal(f.ms->shutdowns, 1);
	assert_null(f.c->tx.data);
	fx_done(&f);
}

static void feed_pattern(struct memstream *m, uint32_t n, bool eor, uint8_t seed)
{
	static uint8_t buf[70000];

	for (uint32_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(seed + i * 3);
	ms_feed_msg(m, buf, n, eor);
}

static void check_pattern(const uint8_t *p, uint32_t off, uint32_t n, uint8_t seed)
{
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(p[i], (uint8_t)(seed + (off + i) * 3));
}

static void test_seq_host_messages(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 65536);
	feed_pattern(f.ms, 100, true, 1);
	feed_pattern(f.ms, 10000, false, 2);
	feed_pattern(f.ms, 4052, false, 3);
	conn_host_readable(f.c);
	/* small message: whole, EOM and EOR */
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 100);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM | VSOCK_SEQ_EOR);
	check_pattern(f.rx + VSOCK_HDR_LEN, 0, 100, 1);
	/* large message: split, EOM only on the last fragment */
	for (uint32_t off = 0, i = 0; i < 3; i++) {
		uint32_t want = i < 2 ? RXBUF - VSOCK_HDR_LEN : 10000 - 2 * (RXBUF - VSOCK_HDR_LEN);

		assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
		assert_int_equal(h.len, want);
		assert_int_equal(h.flags, i < 2 ? 0 : VSOCK_SEQ_EOM);
		check_pattern(f.rx + VSOCK_HDR_LEN, off, want, 2);
		off += want;
	}
	/* exactly one buffer's worth: one packet */
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 4052);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	assert_false(conn_wants_rx(f.c));
	fx_done(&f);
}

static void test_seq_host_credit_limited(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_peer(&f, VSOCK_TYPE_SEQPACKET, 65536);
	f.c->cr.peer_buf_alloc = 6000;
	f.g_buf_alloc = 6000;
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RESPONSE);
	feed_pattern(f.ms, 5000, false, 4);
	feed_pattern(f.ms, 3000, true, 5);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 4052);
	assert_int_equal(h.flags, 0);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 948);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM);
	/* next message: only 1000 bytes of credit left (guest consumed none yet) */
	f.g_fwd_cnt = 0;
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 1000);
	assert_int_equal(h.flags, 0);
	check_pattern(f.rx + VSOCK_HDR_LEN, 0, 1000, 5);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	assert_true(conn_wants_rx(f.c) == false);
	/* credit returns: the rest of the message */
	f.g_fwd_cnt = 6000;
	assert_int_equal(g_send(&f, VSOCK_OP_CREDIT_UPDATE, NULL, 0, 0), 0);
	assert_true(conn_wants_rx(f.c)); /* a half-sent message counts as work */
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 2000);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM | VSOCK_SEQ_EOR);
	check_pattern(f.rx + VSOCK_HDR_LEN, 1000, 2000, 5);
	fx_done(&f);
}

static void test_seq_host_oversize_dropped(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 8192);
	feed_pattern(f.ms, 8193, false, 6); /* over our buf_alloc */
	feed_pattern(f.ms, 10, false, 7);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 10);
	check_pattern(f.rx + VSOCK_HDR_LEN, 0, 10, 7);
	fx_done(&f);
	/* over the guest's buf_alloc */
	fx_peer(&f, VSOCK_TYPE_SEQPACKET, 65536);
	f.c->cr.peer_buf_alloc = 1000;
	f.g_buf_alloc = 1000;
	assert_int_equal(g_recv(&f, RXBUF, NULL), VSOCK_OP_RESPONSE);
	feed_pattern(f.ms, 1001, false, 8);
	feed_pattern(f.ms, 1000, false, 9);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 1000);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM);
	check_pattern(f.rx + VSOCK_HDR_LEN, 0, 1000, 9);
	fx_done(&f);
}

static void test_seq_host_eof(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_established(&f, VSOCK_TYPE_SEQPACKET, 4096);
	feed_pattern(f.ms, 0, false, 0); /* an empty message is data, not the end */
	f.ms->in_eof = true;
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 0);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	fx_done(&f);
}

/* ---- the real Unix-socket stream --------------------------------------------- */

/* A guest-initiated connection, established, to a Unix socket pair's sv[0]. */
static void fx_unix(struct fx *f, uint16_t type, int sv[2], struct stream *s)
{
	struct pkt_hdr req;

	assert_int_equal(socketpair(AF_UNIX, type == VSOCK_TYPE_STREAM ? SOCK_STREAM : SOCK_SEQPACKET,
				    0, sv),
			 0);
	fx_params(f, type, 4096);
	f->local_port = HOST_PORT;
	stream_unix_init(s, sv[0]);
	req = gh(f, VSOCK_OP_REQUEST, 0, 0);
	f->c = conn_new_peer(&f->par, &req, s);
	assert_int_equal(g_recv(f, RXBUF, NULL), VSOCK_OP_RESPONSE);
}

static void test_unix_stream(void **state)
{
	struct fx f;
	struct pkt_hdr h;
	struct stream s;
	char buf[64];
	int sv[2];

	(void)state;
	fx_unix(&f, VSOCK_TYPE_STREAM, sv, &s);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "ping", 4, 0), 0);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE); /* -EAGAIN from the socket */
	assert_false(f.c->host_readable);
	assert_int_equal(write(sv[1], "pong", 4), 4);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_memory_equal(f.rx + VSOCK_HDR_LEN, "pong", 4);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_SEND), 0);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 0); /* SHUT_WR reached the host */
	shutdown(sv[1], SHUT_WR);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_BOTH);
	conn_free(f.c);
	assert_int_equal(read(sv[1], buf, sizeof(buf)), 0);
	close(sv[1]);
	ms_free(f.ms);
}

/*
 * vsock_test 6.12 "SOCK_STREAM SHUT_RD" through a forwarding daemon: the
 * guest's shutdown(SHUT_RD) makes the host program's send fail with EPIPE.
 */
static void test_guest_shutdown_rcv_host_send_fails(void **state)
{
	struct fx f;
	struct stream s;
	int sv[2];

	(void)state;
	fx_unix(&f, VSOCK_TYPE_STREAM, sv, &s);
	assert_int_equal(send(sv[1], "a", 1, MSG_NOSIGNAL), 1);
	assert_int_equal(g_send(&f, VSOCK_OP_SHUTDOWN, NULL, 0, VSOCK_SHUTDOWN_RCV), 0);
	assert_int_equal(send(sv[1], "b", 1, MSG_NOSIGNAL), -1);
	assert_int_equal(errno, EPIPE);
	conn_free(f.c);
	close(sv[1]);
	ms_free(f.ms);
}

static void test_unix_seqpacket(void **state)
{
	struct fx f;
	struct pkt_hdr h;
	struct stream s;
	char buf[64];
	int sv[2];

	(void)state;
	fx_unix(&f, VSOCK_TYPE_SEQPACKET, sv, &s);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "ab", 2, 0), 0);
	assert_int_equal(g_send(&f, VSOCK_OP_RW, "cd", 2, VSOCK_SEQ_EOM | VSOCK_SEQ_EOR), 0);
	assert_int_equal(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), 4);
	assert_memory_equal(buf, "abcd", 4);
	/* host → guest: a message, an empty one, then the end */
	assert_int_equal(send(sv[1], "hello", 5, 0), 5);
	assert_int_equal(send(sv[1], "", 0, 0), 0);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_int_equal(h.flags, VSOCK_SEQ_EOM);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_RW);
	assert_int_equal(h.len, 0);
	assert_int_equal(g_recv(&f, RXBUF, NULL), NONE);
	shutdown(sv[1], SHUT_WR);
	conn_host_readable(f.c);
	assert_int_equal(g_recv(&f, RXBUF, &h), VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	conn_free(f.c);
	close(sv[1]);
	ms_free(f.ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_op_table),
		cmocka_unit_test(test_host_to_guest_credit),
		cmocka_unit_test(test_credit_request_flood),
		cmocka_unit_test(test_bogus_fwd_cnt_ignored),
		cmocka_unit_test(test_long_transfer_exact_credit),
		cmocka_unit_test(test_overrun_gets_rst),
		cmocka_unit_test(test_partial_host_write_keeps_order),
		cmocka_unit_test(test_guest_shutdown_send),
		cmocka_unit_test(test_both_half_closes_end_in_close),
		cmocka_unit_test(test_host_eof_half_close),
		cmocka_unit_test(test_guest_close_is_one_close),
		cmocka_unit_test(test_host_close_is_both_shutdowns),
		cmocka_unit_test(test_guest_shutdown_rcv_stops_reads),
		cmocka_unit_test(test_guest_shutdown_rcv_host_send_fails),
		cmocka_unit_test(test_host_buffer_follows_guest),
		cmocka_unit_test(test_close_timeout),
		cmocka_unit_test(test_connect_timeout),
		cmocka_unit_test(test_close_other_states),
		cmocka_unit_test(test_ok_line_then_data),
		cmocka_unit_test(test_host_errors_reset),
		cmocka_unit_test(test_small_rx_buffers),
		cmocka_unit_test(test_seq_guest_fragments),
		cmocka_unit_test(test_seq_guest_blocked_host),
		cmocka_unit_test(test_seq_guest_many_small_messages),
		cmocka_unit_test(test_seq_half_message_then_shutdown),
		cmocka_unit_test(test_seq_host_messages),
		cmocka_unit_test(test_seq_host_credit_limited),
		cmocka_unit_test(test_seq_host_oversize_dropped),
		cmocka_unit_test(test_seq_host_eof),
		cmocka_unit_test(test_unix_stream),
		cmocka_unit_test(test_unix_seqpacket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
