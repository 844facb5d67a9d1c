// SPDX-License-Identifier: MIT
/*
 * Hostile guest suite (PROTOCOLS.md §6.3), userspace engine: one daemon
 * serves two VMs. Guest A (CID 3) breaks every data-plane rule in turn,
 * through the raw switches of the test driver (descriptors, avail index,
 * hand-made vsock headers); guest B (CID 4) streams to a host socket on a
 * thread of its own through the whole test, checking every byte.
 *
 * Each case is contained where the rules say:
 *   - a ring rule broken: A's ring stops ("<ring> ring broken", the reason
 *     logged), A's host connections close, and after A's VMM reconnects A
 *     is served again;
 *   - a bad packet: that packet is dropped or answered with RST (as the
 *     case says), A's other connection (the "sentinel", open during every
 *     case) still carries data both ways;
 *   - a packet that breaks one connection's rules (credit, a REQUEST on a
 *     live tuple): that connection is reset, a new one works.
 * And during every case B made progress; at the end B's data was intact,
 * the daemon holds no more fds than when it started, and exits 0.
 *
 * VM A runs with --vm tx-buffer-size=4096, so a 4097-byte packet overruns
 * its credit. argv[1]: the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_watch.h"
#include "user_harness.h"

#define CID_A 3u
#define CID_B 4u
#define HOST_PORT 5000u
#define NOBODY_PORT 7777u       /* no host listener: REQUESTs get RST */
#define A_BUF 4096u             /* A's per-connection buffer */
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)
#define F_INDIRECT (1ull << TFE_F_INDIRECT_DESC)
#define QUIET_MS 300
#define WAIT_MS 5000
#define HOLE 0xa0000ull
#define SEEN_MAX 64u

struct fx {
	struct uh h;
	struct uh_guest a, b;
	int lfd[2];
	uint64_t a_features;
	/* A's sentinel connection and its host end */
	struct tfe_vsock_conn *sc;
	int sfd;
	uint32_t next_port;
	/* packets A's driver saw (last SEEN_MAX) */
	struct tfe_vsock_pkt seen[SEEN_MAX];
	unsigned long nseen, rsts, credit_updates;
	/* B's stream */
	pthread_t bt;
	atomic_bool stop;
	atomic_ulong b_bytes;
	int b_rc;
	struct pw_snap base;
};

static struct fx fx;

/* ------------------------------------------------------------------ */
/* Guest B: a stream that never stops                                  */
/* ------------------------------------------------------------------ */

static void *b_thread(void *arg)
{
	struct fx *f = arg;
	struct tfe_vsock_conn *c;
	uint32_t seed = 1000;
	int fd;

	f->b_rc = tfe_vsock_connect(&f->b.vs, TFE_VSOCK_HOST_CID, HOST_PORT, 60000, WAIT_MS, &c);
	fd = f->b_rc == 0 ? uh_accept(f->lfd[1], &f->b, WAIT_MS) : -1;
	if (f->b_rc == 0 && fd < 0)
		f->b_rc = fd;
	while (f->b_rc == 0 && !atomic_load(&f->stop)) {
		f->b_rc = uh_guest_to_host(&f->b, c, fd, 128 * 1024, seed++, 30000);
		if (f->b_rc == 0)
			atomic_fetch_add(&f->b_bytes, 128 * 1024);
	}
	if (f->b_rc == 0)
		f->b_rc = tfe_vsock_close(&f->b.vs, c, WAIT_MS);
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* B moved at least one more block since @since. */
static void assert_b_moves(struct fx *f, unsigned long since, const char *name)
{
	int64_t deadline = tfe_now_ms() + WAIT_MS;

	while (atomic_load(&f->b_bytes) <= since && tfe_remaining_ms(deadline) > 0)
		poll(NULL, 0, 5);
	if (atomic_load(&f->b_bytes) <= since)
		fail_msg("case '%s': guest B made no progress (rc %d)", name, f->b_rc);
}

/* ------------------------------------------------------------------ */
/* Guest A                                                             */
/* ------------------------------------------------------------------ */

static void on_pkt(void *ctx, const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	struct fx *f = ctx;

	(void)payload;
	f->seen[f->nseen++ % SEEN_MAX] = *p;
	f->rsts += p->op == TFE_VSOCK_OP_RST;
	f->credit_updates += p->op == TFE_VSOCK_OP_CREDIT_UPDATE;
}

/* Wait for a packet @op to guest port @port after @from packets seen. */
static bool saw(struct fx *f, unsigned long from, uint16_t op, uint32_t port, int ms)
{
	int64_t deadline = tfe_now_ms() + ms;

	for (;;) {
		for (unsigned long i = from; i < f->nseen; i++) {
			const struct tfe_vsock_pkt *p = &f->seen[i % SEEN_MAX];

			if (i + SEEN_MAX >= f->nseen && p->op == op && p->dst_port == port)
				return true;
		}
		if (tfe_remaining_ms(deadline) == 0)
			return false;
		tfe_vsock_wait(&f->a.vs, 10);
	}
}

static int sentinel_open(struct fx *f)
{
	int rc = tfe_vsock_connect(&f->a.vs, TFE_VSOCK_HOST_CID, HOST_PORT, f->next_port++,
				   WAIT_MS, &f->sc);

	if (rc == 0)
		rc = f->sfd = uh_accept(f->lfd[0], &f->a, WAIT_MS);
	return rc < 0 ? rc : 0;
}

static int a_open(struct fx *f, uint64_t features)
{
	const struct tfe_vsock_opts o = { .tx_pkt_max = 65536 };
	int rc = uh_guest_open(&f->a, &f->h, 0, features, &o);

	f->a_features = features;
	if (rc < 0)
		return rc;
	f->a.vs.on_pkt = on_pkt;
	f->a.vs.on_pkt_ctx = f;
	return sentinel_open(f);
}

static void a_close(struct fx *f)
{
	uh_guest_close(&f->a);
	if (f->sfd >= 0)
		close(f->sfd);
	f->sfd = -1;
}

/* The sentinel still carries data both ways. */
static int sentinel_ok(struct fx *f)
{
	int rc = uh_guest_to_host(&f->a, f->sc, f->sfd, 16384, f->next_port, 10000);

	return rc ? rc : uh_host_to_guest(&f->a, f->sc, f->sfd, 16384, f->next_port + 1, 10000);
}

/* A header for A: from @src to host port @dst, stream, @op. */
static struct tfe_vsock_pkt hdr(uint32_t src, uint32_t dst, uint16_t op)
{
	return (struct tfe_vsock_pkt){
		.src_cid = CID_A, .dst_cid = TFE_VSOCK_HOST_CID, .src_port = src, .dst_port = dst,
		.type = TFE_VSOCK_TYPE_STREAM, .op = op, .buf_alloc = 65536,
	};
}

/* Send @p as is (its len field too) with @n payload bytes. */
static int send_hdr(struct fx *f, const struct tfe_vsock_pkt *p, size_t n)
{
	static uint8_t payload[65536];
	uint8_t raw[TFE_VSOCK_HDR_SIZE];

	tfe_vsock_hdr_pack(raw, p);
	return tfe_vsock_send_raw(&f->a.vs, raw, sizeof(raw), payload, n);
}

/* Send @p (len = @n) from a fresh port and expect an RST back, or silence. */
static int expect_answer(struct fx *f, struct tfe_vsock_pkt *p, size_t n, bool rst)
{
	unsigned long from = f->nseen;
	int rc;

	p->src_port = f->next_port++;
	rc = send_hdr(f, p, n);
	if (rc < 0)
		return rc;
	if (rst)
		return saw(f, from, TFE_VSOCK_OP_RST, p->src_port, WAIT_MS) ? 0 : -ETIMEDOUT;
	return saw(f, from, TFE_VSOCK_OP_RST, p->src_port, QUIET_MS) ? -EPROTO : 0;
}

/* ------------------------------------------------------------------ */
/* Ring rules (A's ring breaks)                                        */
/* ------------------------------------------------------------------ */

static struct tfe_vring *tx(struct fx *f)
{
	return &f->a.vm.vq[1];
}

/* @len bytes of A's RAM holding an RW header for a tuple nobody has. */
static uint64_t gbuf(struct fx *f, uint32_t len)
{
	struct tfe_vsock_pkt p = hdr(f->next_port++, NOBODY_PORT, TFE_VSOCK_OP_RW);
	uint64_t gpa = 0;
	uint8_t *b;

	assert_int_equal(tfe_mem_alloc(&f->a.vm.mem, len < 64 ? 64 : len, 16, &gpa), 0);
	b = tfe_mem_ptr(&f->a.vm.mem, gpa, 64);
	tfe_vsock_hdr_pack(b, &p);
	return gpa;
}

/* Descriptor @k of a chain written from the first free one on. */
static uint16_t at(struct tfe_vring *vr, unsigned int k)
{
	return (uint16_t)((vr->free_head + k) % vr->num);
}

static void desc(struct tfe_vring *vr, unsigned int k, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	tfe_vring_write_desc(vr, at(vr, k), addr, len, flags, next);
}

/* Publish the chain that starts at the first free descriptor, and kick. */
static int publish(struct tfe_vring *vr)
{
	tfe_vring_push_avail(vr, at(vr, 0));
	return tfe_vring_notify(vr);
}

static int one_desc(struct fx *f, uint64_t addr, uint32_t len, uint16_t flags)
{
	desc(tx(f), 0, addr, len, flags, 0);
	return publish(tx(f));
}

/* An indirect table of @n entries, @fill writing entry i. */
static uint64_t table(struct fx *f, unsigned int n,
		      void (*fill)(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n))
{
	uint64_t gpa = 0;
	struct tfe_vdesc *t;

	assert_int_equal(tfe_mem_alloc(&f->a.vm.mem, 16ull * n, 16, &gpa), 0);
	t = tfe_mem_ptr(&f->a.vm.mem, gpa, 16ull * n);
	for (unsigned int i = 0; i < n; i++)
		fill(f, &t[i], i, n);
	return gpa;
}

static int indirect(struct fx *f, uint64_t tab, uint32_t len, uint16_t extra)
{
	desc(tx(f), 0, tab, len, TFE_VDESC_F_INDIRECT | extra, at(tx(f), 1));
	return publish(tx(f));
}

static int r_avail_jump(struct fx *f)
{
	tfe_vring_set_avail_idx(tx(f), (uint16_t)(tx(f)->avail_idx + tx(f)->num + 1));
	return tfe_vring_notify(tx(f));
}

static int r_head_oob(struct fx *f)
{
	tfe_vring_push_avail(tx(f), (uint16_t)(tx(f)->num + 3));
	return tfe_vring_notify(tx(f));
}

static int r_next_oob(struct fx *f)
{
	desc(tx(f), 0, gbuf(f, 44), 44, TFE_VDESC_F_NEXT, tx(f)->num);
	return publish(tx(f));
}

static int r_loop(struct fx *f)
{
	desc(tx(f), 0, gbuf(f, 44), 44, TFE_VDESC_F_NEXT, at(tx(f), 1));
	desc(tx(f), 1, gbuf(f, 8), 8, TFE_VDESC_F_NEXT, at(tx(f), 0));
	return publish(tx(f));
}

static int r_zero_loop(struct fx *f)
{
	desc(tx(f), 0, gbuf(f, 44), 0, TFE_VDESC_F_NEXT, at(tx(f), 0));
	return publish(tx(f));
}

static int r_wrap(struct fx *f) { return one_desc(f, UINT64_MAX - 0xfff, 0x2000, 0); }
static int r_past_end(struct fx *f) { return one_desc(f, UH_GUEST_MEM - 16, 64, 0); }
static int r_in_hole(struct fx *f) { return one_desc(f, HOLE + 0x100, 64, 0); }

static int r_write_first(struct fx *f)
{
	desc(tx(f), 0, gbuf(f, 44), 44, TFE_VDESC_F_NEXT | TFE_VDESC_F_WRITE, at(tx(f), 1));
	desc(tx(f), 1, gbuf(f, 16), 16, 0, 0);
	return publish(tx(f));
}

static void fill_plain(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n)
{
	*d = (struct tfe_vdesc){ .addr = gbuf(f, 44), .len = 44,
				 .flags = i + 1 < n ? TFE_VDESC_F_NEXT : 0, .next = (uint16_t)(i + 1) };
}

static void fill_loop(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n)
{
	fill_plain(f, d, i, n);
	d->flags = TFE_VDESC_F_NEXT;
	d->next = (uint16_t)((i + 1) % n);
}

static void fill_next_oob(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n)
{
	fill_plain(f, d, i, n);
	d->flags = TFE_VDESC_F_NEXT;
	d->next = (uint16_t)(n + 3);
}

static void fill_nested(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n)
{
	fill_plain(f, d, i, n);
	d->flags = TFE_VDESC_F_INDIRECT;
	d->len = 32;
}

/* ~31 MiB each, above the hole: 133 of them pass 2^32 bytes. */
static void fill_huge(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n)
{
	(void)f;
	*d = (struct tfe_vdesc){ .addr = 0xc0000, .len = 0x1f00000,
				 .flags = i + 1 < n ? TFE_VDESC_F_NEXT : 0, .next = (uint16_t)(i + 1) };
}

static void fill_bytes(struct fx *f, struct tfe_vdesc *d, unsigned int i, unsigned int n)
{
	static uint64_t one;

	if (!one)
		one = gbuf(f, 64);
	*d = (struct tfe_vdesc){ .addr = one + i % 32, .len = 1,
				 .flags = i + 1 < n ? TFE_VDESC_F_NEXT : 0, .next = (uint16_t)(i + 1) };
}

static int r_ind_unneg(struct fx *f) { return indirect(f, table(f, 2, fill_plain), 32, 0); }
static int r_ind_len0(struct fx *f) { return indirect(f, table(f, 2, fill_plain), 0, 0); }
static int r_ind_len17(struct fx *f) { return indirect(f, table(f, 2, fill_plain), 17, 0); }
static int r_ind_huge(struct fx *f) { return indirect(f, table(f, 2, fill_plain), 65537 * 16, 0); }
static int r_ind_next(struct fx *f)
{
	return indirect(f, table(f, 2, fill_plain), 32, TFE_VDESC_F_NEXT);
}
static int r_ind_nested(struct fx *f) { return indirect(f, table(f, 1, fill_nested), 16, 0); }
static int r_ind_loop(struct fx *f) { return indirect(f, table(f, 3, fill_loop), 48, 0); }
static int r_ind_next_oob(struct fx *f) { return indirect(f, table(f, 2, fill_next_oob), 32, 0); }
static int r_ind_4g(struct fx *f) { return indirect(f, table(f, 140, fill_huge), 140 * 16, 0); }
static int r_ind_iov(struct fx *f) { return indirect(f, table(f, 1100, fill_bytes), 1100 * 16, 0); }
static int r_ind_outside(struct fx *f) { return indirect(f, UH_GUEST_MEM + 0x1000, 32, 0); }

static int send_waiting(struct fx *f, struct tfe_vsock_pkt *p);

/*
 * Every rx buffer the device has not used yet gets @flags and @len, then
 * a ring's worth of packets that each earn an RST follows: the device may
 * hold chains it popped before the change (unchanged copies), and the
 * ones after them are certain to be changed ones. Return: how many were sent.
 */
static unsigned int rx_tamper(struct fx *f, uint16_t flags, uint32_t len, bool wait)
{
	struct tfe_vring *rx = &f->a.vm.vq[0];
	unsigned int sent = 0;

	for (uint16_t i = rx->used->idx; i != rx->avail_idx; i++) {
		uint16_t head = rx->avail->ring[i % rx->num];
		struct tfe_vdesc d = rx->desc[head];

		tfe_vring_write_desc(rx, head, d.addr, len ? len : d.len, flags, d.next);
	}
	for (; sent < rx->num + 2u; sent++) {
		struct tfe_vsock_pkt p = hdr(f->next_port++, NOBODY_PORT, TFE_VSOCK_OP_RW);

		if ((wait ? send_waiting(f, &p) : send_hdr(f, &p, 0)) < 0)
			break;
	}
	return sent;
}

/* Stops at the first error: once the ring broke, the device takes no more tx. */
static int r_rx_readable(struct fx *f)
{
	return rx_tamper(f, 0, 0, false) > 0 ? 0 : -EIO;
}

/* ------------------------------------------------------------------ */
/* Packet rules (the packet is refused; the ring and the sentinel live) */
/* ------------------------------------------------------------------ */

static int p_short(struct fx *f)
{
	static const uint8_t junk[30] = { 1, 2, 3 };
	unsigned long from = f->nseen;
	int rc = tfe_vsock_send_raw(&f->a.vs, junk, sizeof(junk), NULL, 0);

	tfe_vsock_wait(&f->a.vs, QUIET_MS);
	return rc ? rc : f->nseen == from ? 0 : -EPROTO;
}

static int rst_for(struct fx *f, uint16_t op, uint32_t len, size_t n)
{
	struct tfe_vsock_pkt p = hdr(0, NOBODY_PORT, op);

	p.len = len;
	return expect_answer(f, &p, n, true);
}

static int p_len_past(struct fx *f) { return rst_for(f, TFE_VSOCK_OP_RW, 100, 10); }
static int p_len_64k(struct fx *f) { return rst_for(f, TFE_VSOCK_OP_RW, 70000, 100); }
static int p_op0(struct fx *f) { return rst_for(f, 0, 0, 0); }
static int p_op8(struct fx *f) { return rst_for(f, 8, 0, 0); }
static int p_ctrl_payload(struct fx *f) { return rst_for(f, TFE_VSOCK_OP_REQUEST, 10, 10); }
static int p_response(struct fx *f) { return rst_for(f, TFE_VSOCK_OP_RESPONSE, 0, 0); }

/* @p changed by the case, from a fresh port; @rst: an RST is owed, else silence. */
static int field_case(struct fx *f, struct tfe_vsock_pkt p, bool rst)
{
	return expect_answer(f, &p, 0, rst);
}

static int p_type(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, NOBODY_PORT, TFE_VSOCK_OP_REQUEST);

	p.type = 7;
	return field_case(f, p, true);
}

static int p_seq_unneg(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, NOBODY_PORT, TFE_VSOCK_OP_REQUEST);

	p.type = TFE_VSOCK_TYPE_SEQPACKET;
	return field_case(f, p, true);
}

static int p_shut_flags(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, NOBODY_PORT, TFE_VSOCK_OP_SHUTDOWN);

	p.flags = 4;
	return field_case(f, p, true);
}

static int p_eom_request(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, NOBODY_PORT, TFE_VSOCK_OP_REQUEST);

	p.flags = 1;
	return field_case(f, p, true);
}

static int p_src_cid(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, HOST_PORT, TFE_VSOCK_OP_REQUEST);

	p.src_cid = 99;
	return field_case(f, p, false);
}

static int p_dst_high(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, HOST_PORT, TFE_VSOCK_OP_REQUEST);

	p.dst_cid = TFE_VSOCK_HOST_CID | (1ull << 32);
	return field_case(f, p, false);
}

static int p_dst_self(struct fx *f)
{
	struct tfe_vsock_pkt p = hdr(0, HOST_PORT, TFE_VSOCK_OP_REQUEST);

	p.dst_cid = CID_A;
	return field_case(f, p, false);
}

static int p_rst_unknown(struct fx *f)
{
	return field_case(f, hdr(0, NOBODY_PORT, TFE_VSOCK_OP_RST), false);
}

/* On the sentinel's tuple, with its credit fields; @op, payload @n bytes, len @len. */
static int on_sentinel(struct fx *f, uint16_t op, uint32_t len, size_t n)
{
	struct tfe_vsock_pkt p;

	tfe_vsock_conn_pkt(&f->a.vs, f->sc, op, 0, &p);
	p.len = len;
	return send_hdr(f, &p, n);
}

/* A 60000-byte buffer whose header says 0: nothing is taken, nothing held. */
static int p_big_len0(struct fx *f)
{
	unsigned long from = f->nseen;
	int rc = on_sentinel(f, TFE_VSOCK_OP_RW, 0, 60000);

	tfe_vsock_wait(&f->a.vs, QUIET_MS);
	return rc ? rc : saw(f, from, TFE_VSOCK_OP_RST, f->sc->local_port, 0) ? -EPROTO : 0;
}

/* The guest's fwd_cnt moves back, or acknowledges bytes never sent: ignored. */
static int fwd_cnt_case(struct fx *f, int64_t delta)
{
	struct tfe_vsock_pkt p;

	tfe_vsock_conn_pkt(&f->a.vs, f->sc, TFE_VSOCK_OP_CREDIT_UPDATE, 0, &p);
	p.fwd_cnt = (uint32_t)(p.fwd_cnt + delta);
	return send_hdr(f, &p, 0);
}

static int p_fwd_back(struct fx *f) { return fwd_cnt_case(f, -1000); }
static int p_fwd_ahead(struct fx *f) { return fwd_cnt_case(f, 1000000); }

/* buf_alloc 0: the device sends nothing more until the guest gives credit again. */
static int p_buf0(struct fx *f)
{
	static const char data[1000];
	struct tfe_vsock_pkt p;
	char got[1000];
	ssize_t n;

	tfe_vsock_conn_pkt(&f->a.vs, f->sc, TFE_VSOCK_OP_CREDIT_UPDATE, 0, &p);
	p.buf_alloc = 0;
	if (send_hdr(f, &p, 0) < 0 || tfe_vsock_wait(&f->a.vs, 50) < 0 ||
	    write(f->sfd, data, sizeof(data)) != sizeof(data))
		return -EIO;
	tfe_vsock_wait(&f->a.vs, QUIET_MS);
	if (f->sc->rxq_len != 0)
		return -EPROTO;
	tfe_vsock_conn_pkt(&f->a.vs, f->sc, TFE_VSOCK_OP_CREDIT_UPDATE, 0, &p);
	if (send_hdr(f, &p, 0) < 0)
		return -EIO;
	n = tfe_vsock_recv_wait(&f->a.vs, f->sc, got, sizeof(got), WAIT_MS);
	while (n > 0 && n < (ssize_t)sizeof(got)) {
		ssize_t m = tfe_vsock_recv_wait(&f->a.vs, f->sc, got + n, sizeof(got) - (size_t)n,
						WAIT_MS);

		n = m > 0 ? n + m : m;
	}
	return n == sizeof(got) ? 0 : -EPROTO;
}

/* Exactly the credit the device gave: taken whole, and it reaches the host. */
static int p_credit_exact(struct fx *f)
{
	char buf[A_BUF];
	size_t got = 0;
	int64_t deadline = tfe_now_ms() + WAIT_MS;
	int rc = on_sentinel(f, TFE_VSOCK_OP_RW, A_BUF, A_BUF);

	f->sc->tx_cnt += A_BUF; /* sent behind the driver's back */
	while (rc == 0 && got < A_BUF && tfe_remaining_ms(deadline) > 0) {
		ssize_t n = read(f->sfd, buf, sizeof(buf) - got);

		got += n > 0 ? (size_t)n : 0;
		tfe_vsock_wait(&f->a.vs, 5);
	}
	return rc ? rc : got == A_BUF ? 0 : -ETIMEDOUT;
}

/* One byte over the credit: that connection is reset, and only that one. */
static int p_credit_over(struct fx *f)
{
	unsigned long from = f->nseen;
	int rc = on_sentinel(f, TFE_VSOCK_OP_RW, A_BUF + 1, A_BUF + 1);

	if (rc == 0 && !saw(f, from, TFE_VSOCK_OP_RST, f->sc->local_port, WAIT_MS))
		rc = -ETIMEDOUT;
	return rc;
}

/* A REQUEST for a tuple that is connected: that connection is reset. */
static int p_request_live(struct fx *f)
{
	unsigned long from = f->nseen;
	int rc = on_sentinel(f, TFE_VSOCK_OP_REQUEST, 0, 0);

	if (rc == 0 && !saw(f, from, TFE_VSOCK_OP_RST, f->sc->local_port, WAIT_MS))
		rc = -ETIMEDOUT;
	return rc;
}

/* Send @p, waiting for a tx slot while the driver drains rx meanwhile. */
static int send_waiting(struct fx *f, struct tfe_vsock_pkt *p)
{
	int64_t deadline = tfe_now_ms() + WAIT_MS;
	int rc;

	while ((rc = send_hdr(f, p, 0)) == -EAGAIN && tfe_remaining_ms(deadline) > 0)
		tfe_vsock_wait(&f->a.vs, 2);
	return rc;
}

#define FLOOD 3000u

/* REQUESTs to a port nobody listens on: each answered, in bounded memory. */
static int p_request_flood(struct fx *f)
{
	unsigned long rsts = f->rsts;
	long rss = pw_rss_kb(f->h.d.pid);
	int64_t deadline;
	int rc = 0;

	for (unsigned int i = 0; i < FLOOD && rc == 0; i++) {
		struct tfe_vsock_pkt p = hdr(f->next_port++, NOBODY_PORT, TFE_VSOCK_OP_REQUEST);

		rc = send_waiting(f, &p);
	}
	deadline = tfe_now_ms() + WAIT_MS;
	while (rc == 0 && f->rsts - rsts < FLOOD && tfe_remaining_ms(deadline) > 0)
		tfe_vsock_wait(&f->a.vs, 10);
	printf("    %lu RSTs for %u REQUESTs; daemon RSS %ld -> %ld KiB\n", f->rsts - rsts, FLOOD,
	       rss, pw_rss_kb(f->h.d.pid));
	if (rc == 0 && (f->rsts - rsts != FLOOD || pw_rss_kb(f->h.d.pid) - rss > 4096))
		rc = -EPROTO;
	return rc;
}

/* CREDIT_REQUESTs on one connection: the answers coalesce, memory stays put. */
static int p_credit_request_flood(struct fx *f)
{
	unsigned long cu = f->credit_updates;
	long rss = pw_rss_kb(f->h.d.pid);
	int rc = 0;

	for (unsigned int i = 0; i < FLOOD && rc == 0; i++) {
		struct tfe_vsock_pkt p;

		tfe_vsock_conn_pkt(&f->a.vs, f->sc, TFE_VSOCK_OP_CREDIT_REQUEST, 0, &p);
		rc = send_waiting(f, &p);
	}
	tfe_vsock_wait(&f->a.vs, QUIET_MS);
	printf("    %lu CREDIT_UPDATEs for %u CREDIT_REQUESTs; daemon RSS %ld -> %ld KiB\n",
	       f->credit_updates - cu, FLOOD, rss, pw_rss_kb(f->h.d.pid));
	if (rc == 0 && (f->credit_updates == cu || f->credit_updates - cu > FLOOD ||
			pw_rss_kb(f->h.d.pid) - rss > 4096))
		rc = -EPROTO;
	return rc;
}

/* rx buffers too small for a header: returned unused; the RSTs still come, later. */
static int p_rx_tiny(struct fx *f)
{
	unsigned long rsts = f->rsts;
	int64_t deadline = tfe_now_ms() + WAIT_MS;
	int verbosity = tfe_verbosity;
	unsigned int n;

	tfe_verbosity = 0; /* the driver would note each unused buffer */
	n = rx_tamper(f, TFE_VDESC_F_WRITE, 10, true);
	while (f->rsts - rsts < n && tfe_remaining_ms(deadline) > 0)
		tfe_vsock_wait(&f->a.vs, 10);
	tfe_verbosity = verbosity;
	return n == f->a.vm.vq[0].num + 2u && f->rsts - rsts == n ? 0 : -ETIMEDOUT;
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

enum scope { RING, PACKET, CONNECTION };

struct gcase {
	const char *name;
	int (*fn)(struct fx *f);
	enum scope scope;
	const char *log;         /* must appear once more (NULL: nothing to say) */
	uint64_t features;       /* A's features; 0: EVENT_IDX + INDIRECT */
	bool rx;                 /* RING: the rx ring breaks, not tx */
};

static const struct gcase gcases[] = {
	{ "avail index jumps past the ring", r_avail_jump, RING, "guest moved avail index" },
	{ "head index past the ring", r_head_oob, RING, "is not below the queue size" },
	{ "next index past the ring", r_next_oob, RING, "is not below the queue size" },
	{ "descriptor loop", r_loop, RING, "longer than the queue size" },
	{ "zero-length descriptor loop", r_zero_loop, RING, "longer than the queue size" },
	{ "buffer wraps past 2^64", r_wrap, RING, "wraps past 2^64" },
	{ "buffer past the end of RAM", r_past_end, RING, "is not inside guest memory" },
	{ "buffer in the memory hole", r_in_hole, RING, "is not inside guest memory" },
	{ "writable before readable", r_write_first, RING, "readable descriptor after a writable" },
	{ "INDIRECT not negotiated", r_ind_unneg, RING, "INDIRECT_DESC was not negotiated", F_EVENT_IDX },
	{ "empty indirect table", r_ind_len0, RING, "not a non-zero multiple of 16" },
	{ "indirect table of 17 bytes", r_ind_len17, RING, "not a non-zero multiple of 16" },
	{ "indirect table of 65537 entries", r_ind_huge, RING, "is larger than 65536" },
	{ "INDIRECT with NEXT", r_ind_next, RING, "indirect descriptor with NEXT set" },
	{ "nested indirect table", r_ind_nested, RING, "nested indirect descriptor" },
	{ "loop inside an indirect table", r_ind_loop, RING, "longer than its 3-entry table" },
	{ "indirect next past its table", r_ind_next_oob, RING, "is past the 2-entry table" },
	{ "chain of more than 4 GiB", r_ind_4g, RING, "chain longer than 4294967295 bytes" },
	{ "chain of 1100 buffers", r_ind_iov, RING, "chain needs more than 1024 buffers" },
	{ "indirect table outside RAM", r_ind_outside, RING, "is not inside guest memory" },
	{ "device-readable rx buffer", r_rx_readable, RING, "device-readable buffers", .rx = true },
	{ "chain shorter than a header", p_short, PACKET, "malformed tx packet" },
	{ "len past the chain", p_len_past, PACKET, "malformed tx packet" },
	{ "len over 64 KiB", p_len_64k, PACKET, "malformed tx packet" },
	{ "op 0", p_op0, PACKET, NULL },
	{ "op 8", p_op8, PACKET, NULL },
	{ "unknown type", p_type, PACKET, NULL },
	{ "SEQPACKET not negotiated", p_seq_unneg, PACKET, NULL },
	{ "control op with payload", p_ctrl_payload, PACKET, NULL },
	{ "SHUTDOWN flag bit 2", p_shut_flags, PACKET, NULL },
	{ "EOM on a REQUEST", p_eom_request, PACKET, NULL },
	{ "RESPONSE never requested", p_response, PACKET, NULL },
	{ "RST for no connection", p_rst_unknown, PACKET, NULL },
	{ "another guest's src_cid", p_src_cid, PACKET, "dropped: the guest is CID 3" },
	{ "dst_cid upper bits set", p_dst_high, PACKET, NULL },
	{ "dst_cid of its own", p_dst_self, PACKET, NULL },
	{ "big buffer, len 0", p_big_len0, PACKET, NULL },
	{ "fwd_cnt moving back", p_fwd_back, PACKET, NULL },
	{ "fwd_cnt of bytes never sent", p_fwd_ahead, PACKET, NULL },
	{ "buf_alloc 0, then credit", p_buf0, PACKET, NULL },
	{ "exactly the credit", p_credit_exact, PACKET, NULL },
	{ "rx buffer under 44 bytes", p_rx_tiny, PACKET, "is too small: returned unused" },
	{ "REQUEST flood", p_request_flood, PACKET, NULL },
	{ "CREDIT_REQUEST flood", p_credit_request_flood, PACKET, NULL },
	{ "one byte over the credit", p_credit_over, CONNECTION, NULL },
	{ "REQUEST on a live connection", p_request_live, CONNECTION, NULL },
};

/* A as the case wants it (its last session over), with a sentinel connection. */
static void a_ready(struct fx *f, const struct gcase *c)
{
	uint64_t want = c->features ? c->features : F_EVENT_IDX | F_INDIRECT;

	if (f->a.open && f->a_features != want) {
		unsigned int gone = uh_log_count(&f->h, "cid3: front end disconnected");

		a_close(f);
		assert_int_equal(uh_wait_log(&f->h, "cid3: front end disconnected", gone + 1,
					     WAIT_MS), 0);
	}
	if (!f->a.open)
		assert_int_equal(a_open(f, want), 0);
	else if (f->sfd < 0)
		assert_int_equal(sentinel_open(f), 0);
}

/* The ring is stopped: the sentinel's host end closes; A's VMM gives up and leaves. */
static void after_ring(struct fx *f, const struct gcase *c)
{
	unsigned int gone = uh_log_count(&f->h, "cid3: front end disconnected");

	if (!uh_host_closed(f->sfd, NULL, WAIT_MS))
		fail_msg("case '%s': A's connection was not closed with its ring", c->name);
	a_close(f);
	assert_int_equal(uh_wait_log(&f->h, "cid3: front end disconnected", gone + 1, WAIT_MS), 0);
}

static void after_connection(struct fx *f, const struct gcase *c)
{
	if (!uh_host_closed(f->sfd, &f->a, WAIT_MS))
		fail_msg("case '%s': the reset connection's host end stayed open", c->name);
	close(f->sfd);
	f->sfd = -1;
	assert_int_equal(sentinel_open(f), 0);
	if (sentinel_ok(f) != 0)
		fail_msg("case '%s': a new connection does not work", c->name);
}

/* The ring broke (the one the case names) for the case's reason. */
static void after_break(struct fx *f, const struct gcase *c, unsigned int ring0, unsigned int why0)
{
	const char *ring = c->rx ? "cid3: rx ring broken" : "cid3: tx ring broken";

	if (uh_wait_log(&f->h, c->log, why0 + 1, WAIT_MS) != 0 ||
	    uh_wait_log(&f->h, ring, ring0 + 1, WAIT_MS) != 0)
		fail_msg("case '%s': no '%s' for '%s'", c->name, ring, c->log);
	after_ring(f, c);
}

/*
 * Guest-triggered lines are rate-limited per second (of the monotonic
 * clock, which we share): a case that looks for one starts a new second,
 * so that the lines of the cases before it cannot have used the budget.
 */
static void fresh_second(void)
{
	int64_t now = tfe_now_ms();

	poll(NULL, 0, (int)(1000 - now % 1000) + 5);
}

static void run_gcase(struct fx *f, const struct gcase *c)
{
	unsigned int ring0, why0;
	unsigned long b0;
	int rc;

	a_ready(f, c);
	if (c->scope == PACKET && c->log)
		fresh_second();
	ring0 = uh_log_count(&f->h, c->rx ? "cid3: rx ring broken" : "cid3: tx ring broken");
	why0 = c->log ? uh_log_count(&f->h, c->log) : 0;
	b0 = atomic_load(&f->b_bytes);
	rc = c->fn(f);
	printf("  %-36s %s\n", c->name, rc == 0 ? "contained" : strerror(-rc));
	if (rc != 0)
		fail_msg("case '%s': %s", c->name, strerror(-rc));
	if (c->scope == RING) {
		after_break(f, c, ring0, why0);
	} else if (c->scope == CONNECTION) {
		after_connection(f, c);
	} else {
		if (c->log && uh_wait_log(&f->h, c->log, why0 + 1, WAIT_MS) != 0)
			fail_msg("case '%s': no log line '%s'", c->name, c->log);
		if (sentinel_ok(f) != 0)
			fail_msg("case '%s': A's other connection stopped working", c->name);
	}
	assert_true(uh_alive(&f->h));
	assert_b_moves(f, b0, c->name);
}

/* ------------------------------------------------------------------ */
/* The test                                                            */
/* ------------------------------------------------------------------ */

static int setup(void **state)
{
	struct fx *f = &fx;

	memset(f, 0, sizeof(*f));
	f->sfd = -1;
	f->lfd[0] = f->lfd[1] = -1;
	f->next_port = 40000;
	uh_watchdog(300);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	atomic_store(&f->stop, true);
	if (f->bt)
		pthread_join(f->bt, NULL);
	f->bt = 0;
	a_close(f);
	uh_guest_close(&f->b);
	for (unsigned int i = 0; i < 2; i++) {
		if (f->lfd[i] >= 0)
			close(f->lfd[i]);
	}
	if (f->h.d.pid)
		uh_stop(&f->h);
	uh_watchdog(0);
	return 0;
}

static void start(struct fx *f)
{
	const struct uh_vm_spec specs[] = {
		{ .cid = CID_A, .keys = "tx-buffer-size=4096" },
		{ .cid = CID_B },
	};

	assert_int_equal(uh_start(&f->h, specs, 2, false, NULL), 0);
	assert_int_equal(pw_snap(f->h.d.pid, &f->base), 0);
	for (unsigned int i = 0; i < 2; i++) {
		f->lfd[i] = uh_host_listen(f->h.uds[i], HOST_PORT, SOCK_STREAM);
		assert_true(f->lfd[i] >= 0);
	}
	assert_int_equal(uh_guest_open(&f->b, &f->h, 1, F_EVENT_IDX, NULL), 0);
	assert_int_equal(pthread_create(&f->bt, NULL, b_thread, f), 0);
}

/* B is stopped: every byte it sent arrived intact; nothing of A's is left. */
static void finish(struct fx *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->bt, NULL);
	f->bt = 0;
	printf("  guest B streamed %lu KiB meanwhile\n", atomic_load(&f->b_bytes) / 1024);
	assert_int_equal(f->b_rc, 0);
	a_close(f);
	uh_guest_close(&f->b);
	assert_int_equal(pw_wait_back(f->h.d.pid, &f->base, WAIT_MS), 0);
	assert_true(uh_alive(&f->h));
	assert_int_equal(uh_stop(&f->h), 0);
	f->h.d.pid = 0;
}

static void test_hostile_guest(void **state)
{
	struct fx *f = *state;

	start(f);
	for (size_t i = 0; i < sizeof(gcases) / sizeof(gcases[0]); i++)
		run_gcase(f, &gcases[i]);
	finish(f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hostile_guest, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
