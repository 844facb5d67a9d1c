// SPDX-License-Identifier: MIT
/*
 * Sibling inboxes: who reaches whom, packets copied whole, pieces for small
 * rx buffers with EOM/EOR only on the last, the capacity bound and the
 * wake-ups (receiver on empty → non-empty, blocked senders when room
 * returns or the receiver closes), and records that wrap around the ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine/user/sibling.h"

struct fx {
	struct sib_hub h;
	int efd[3];
};

static void fx_init(struct fx *f, const char *const groups[3], uint32_t cap)
{
	sib_hub_init(&f->h);
	for (unsigned int i = 0; i < 3; i++) {
		f->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(f->efd[i] >= 0);
		assert_int_equal(sib_hub_add(&f->h, 3 + i, groups[i], f->efd[i]), (int)i);
	}
	assert_int_equal(sib_hub_link(&f->h, cap), 0);
}

static void fx_fini(struct fx *f)
{
	sib_hub_fini(&f->h);
	for (unsigned int i = 0; i < 3; i++)
		close(f->efd[i]);
}

/* Return: whether port @i's eventfd was signalled (and clear it). */
static bool woken(struct fx *f, unsigned int i)
{
	eventfd_t v;

	return eventfd_read(f->efd[i], &v) == 0 && v > 0;
}

static struct pkt_hdr hdr(uint64_t src, uint64_t dst, uint16_t type, uint16_t op, uint32_t len,
			  uint32_t flags)
{
	return (struct pkt_hdr){ .src_cid = src, .dst_cid = dst, .src_port = 1000,
				 .dst_port = 2000, .len = len, .type = type, .op = op,
				 .flags = flags, .buf_alloc = 65536, .fwd_cnt = 77 };
}

static void pattern(uint8_t *b, size_t n, unsigned int seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)(i * 31 + seed);
}

static void test_groups(void **state)
{
	(void)state;
	assert_true(sib_groups_share("default", "default"));
	assert_true(sib_groups_share("a+b", "c+b"));
	assert_true(sib_groups_share("b", "a+b+c"));
	assert_false(sib_groups_share("a", "ab"));
	assert_false(sib_groups_share("ab", "a+b"));
	assert_false(sib_groups_share("a+b", "c+d"));
	assert_false(sib_groups_share("", "a"));
	assert_false(sib_groups_share("a", ""));
}

static void test_reach_and_routing(void **state)
{
	const char *const groups[3] = { "g1", "g1+g2", "g3" };
	struct fx f;
	struct pkt_hdr h;
	struct iovec pl = { (void *)"hi", 2 };

	(void)state;
	fx_init(&f, groups, 0);
	assert_true(sib_reaches(&f.h, 0, 1));
	assert_true(sib_reaches(&f.h, 1, 0));
	assert_false(sib_reaches(&f.h, 0, 2));
	assert_false(sib_reaches(&f.h, 2, 0));
	assert_false(sib_reaches(&f.h, 2, 1));
	assert_false(sib_reaches(&f.h, 0, 0));
	/* nobody reaches port 2: no inbox memory at all */
	assert_null(f.h.port[2].buf);
	assert_true(f.h.port[0].cap >= 2 * SIB_RECORD_MAX);
	/* closed until its device runs */
	h = hdr(3, 4, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 2, 0);
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), -ENOTCONN);
	sib_set_open(&f.h, 1, true);
	sib_set_open(&f.h, 2, true);
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), 0);
	/* no shared group, unknown CID, itself: unreachable */
	h.dst_cid = 5;
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), -EHOSTUNREACH);
	h.dst_cid = 99;
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), -EHOSTUNREACH);
	h.dst_cid = 3;
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), -EHOSTUNREACH);
	/* a hostile length never gets queued */
	h = hdr(3, 4, VSOCK_TYPE_STREAM, VSOCK_OP_RW, VSOCK_MAX_PKT_LEN + 1, 0);
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), -EHOSTUNREACH);
	fx_fini(&f);
}

static void test_whole_packet(void **state)
{
	const char *const groups[3] = { "default", "default", "default" };
	uint8_t payload[300], rx[4096], raw[VSOCK_HDR_LEN];
	struct iovec pl[2] = { { payload, 100 }, { payload + 100, 200 } };
	struct iovec rxv[3] = { { rx, 10 }, { rx + 10, 40 }, { rx + 50, sizeof(rx) - 50 } };
	struct pkt_hdr h = hdr(3, 5, VSOCK_TYPE_STREAM, VSOCK_OP_RW, 300, 0), got;
	struct fx f;
	size_t len = 0;

	(void)state;
	fx_init(&f, groups, 0);
	sib_set_open(&f.h, 2, true);
	pattern(payload, sizeof(payload), 1);
	pkt_hdr_encode(&h, raw);
	assert_false(sib_pending(&f.h, 2));
	assert_int_equal(sib_send(&f.h, 0, &h, pl, 2), 0);
	assert_true(woken(&f, 2));
	/* only the first packet of a burst wakes the receiver */
	assert_int_equal(sib_send(&f.h, 0, &h, pl, 2), 0);
	assert_false(woken(&f, 2));
	assert_true(sib_pending(&f.h, 2));
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(sib_recv(&f.h, 2, rxv, 3, &len), 0);
		assert_int_equal(len, VSOCK_HDR_LEN + 300);
		/* the header arrives as the sender wrote it, field for field */
		assert_memory_equal(rx, raw, VSOCK_HDR_LEN);
		pkt_hdr_decode(rx, &got);
		assert_int_equal(got.len, 300);
		assert_memory_equal(rx + VSOCK_HDR_LEN, payload, 300);
	}
	assert_int_equal(sib_recv(&f.h, 2, rxv, 3, &len), -EAGAIN);
	/* a control packet fits a bare header buffer */
	h = hdr(3, 5, VSOCK_TYPE_STREAM, VSOCK_OP_REQUEST, 0, 0);
	assert_int_equal(sib_send(&f.h, 0, &h, NULL, 0), 0);
	rxv[0].iov_len = VSOCK_HDR_LEN - 1;
	assert_int_equal(sib_recv(&f.h, 2, rxv, 1, &len), -ENOBUFS);
	rxv[0].iov_len = VSOCK_HDR_LEN;
	assert_int_equal(sib_recv(&f.h, 2, rxv, 1, &len), 0);
	assert_int_equal(len, VSOCK_HDR_LEN);
	fx_fini(&f);
}

/* A message larger than the rx buffer: pieces, EOM/EOR on the last one only. */
static void test_pieces(void **state)
{
	const char *const groups[3] = { "x", "x", "x" };
	static uint8_t payload[10000], rx[2048], joined[10000];
	struct iovec pl = { payload, sizeof(payload) }, rxv = { rx, sizeof(rx) };
	struct pkt_hdr h = hdr(4, 3, VSOCK_TYPE_SEQPACKET, VSOCK_OP_RW, 10000,
			       VSOCK_SEQ_EOM | VSOCK_SEQ_EOR), got;
	size_t len, have = 0;
	unsigned int pieces = 0;
	struct fx f;

	(void)state;
	fx_init(&f, groups, 0);
	sib_set_open(&f.h, 0, true);
	pattern(payload, sizeof(payload), 2);
	assert_int_equal(sib_send(&f.h, 1, &h, &pl, 1), 0);
	/* a buffer with room for the header only cannot take a piece */
	rxv.iov_len = VSOCK_HDR_LEN;
	assert_int_equal(sib_recv(&f.h, 0, &rxv, 1, &len), -ENOBUFS);
	rxv.iov_len = sizeof(rx);
	while (have < sizeof(joined)) {
		assert_int_equal(sib_recv(&f.h, 0, &rxv, 1, &len), 0);
		pkt_hdr_decode(rx, &got);
		assert_int_equal(got.len, len - VSOCK_HDR_LEN);
		assert_true(got.len <= sizeof(rx) - VSOCK_HDR_LEN);
		assert_int_equal(got.src_port, 1000);
		assert_int_equal(got.fwd_cnt, 77);
		memcpy(joined + have, rx + VSOCK_HDR_LEN, got.len);
		have += got.len;
		pieces++;
		assert_int_equal(got.flags, have == sizeof(joined) ? (VSOCK_SEQ_EOM | VSOCK_SEQ_EOR) : 0);
	}
	assert_int_equal(pieces, 5);
	assert_memory_equal(joined, payload, sizeof(payload));
	assert_false(sib_pending(&f.h, 0));
	fx_fini(&f);
}

/* Full inbox: -EAGAIN, and the sender is woken when room returns. */
static void test_bound_and_waiters(void **state)
{
	const char *const groups[3] = { "d", "d", "d" };
	static uint8_t payload[VSOCK_MAX_PKT_LEN], rx[VSOCK_HDR_LEN + VSOCK_MAX_PKT_LEN];
	struct iovec pl = { payload, sizeof(payload) }, rxv = { rx, sizeof(rx) };
	struct pkt_hdr h = hdr(3, 4, VSOCK_TYPE_STREAM, VSOCK_OP_RW, VSOCK_MAX_PKT_LEN, 0);
	unsigned int queued = 0;
	size_t len;
	struct fx f;
	int rc;

	(void)state;
	fx_init(&f, groups, 0);
	sib_set_open(&f.h, 1, true);
	while ((rc = sib_send(&f.h, 0, &h, &pl, 1)) == 0)
		queued++;
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(queued, f.h.port[1].cap / (4 + VSOCK_HDR_LEN + VSOCK_MAX_PKT_LEN));
	assert_true(f.h.port[1].used <= f.h.port[1].cap);
	assert_false(woken(&f, 0));
	assert_int_equal(sib_recv(&f.h, 1, &rxv, 1, &len), 0);
	assert_true(woken(&f, 0));
	assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), 0);
	/* closing discards everything and wakes whoever waits */
	assert_int_equal(sib_send(&f.h, 2, &h, &pl, 1), -EAGAIN);
	sib_set_open(&f.h, 1, false);
	assert_true(woken(&f, 2));
	assert_false(sib_pending(&f.h, 1));
	assert_int_equal(sib_send(&f.h, 2, &h, &pl, 1), -ENOTCONN);
	fx_fini(&f);
}

static uint32_t wrap_len(uint32_t i)
{
	return (i * 7919u) % 5000u;
}

/* Take the next record and check it is record @want, whole and in order. */
static void wrap_take(struct fx *f, uint32_t want)
{
	static uint8_t rx[6000], expect[5000];
	struct iovec rxv = { rx, sizeof(rx) };
	struct pkt_hdr got;
	size_t len;

	assert_int_equal(sib_recv(&f->h, 2, &rxv, 1, &len), 0);
	pkt_hdr_decode(rx, &got);
	assert_int_equal(got.src_port, want);
	assert_int_equal(got.len, wrap_len(want));
	assert_int_equal(len, VSOCK_HDR_LEN + got.len);
	pattern(expect, got.len, want);
	assert_memory_equal(rx + VSOCK_HDR_LEN, expect, got.len);
}

/* Many odd-sized records through the ring: wrap-around keeps every byte and the order. */
static void test_wrap_around(void **state)
{
	const char *const groups[3] = { "w", "w", "w" };
	static uint8_t payload[5000];
	uint32_t next = 0;
	struct fx f;

	(void)state;
	fx_init(&f, groups, 0);
	sib_set_open(&f.h, 2, true);
	for (uint32_t i = 0; i < 3000; i++) {
		struct pkt_hdr h = hdr(3, 5, VSOCK_TYPE_STREAM, VSOCK_OP_RW, wrap_len(i), 0);
		struct iovec pl = { payload, wrap_len(i) };

		h.src_port = i;
		pattern(payload, wrap_len(i), i);
		assert_int_equal(sib_send(&f.h, 0, &h, &pl, 1), 0);
		/* drain in bursts so the ring fills, empties and wraps at every offset */
		if (f.h.port[2].used > f.h.port[2].cap / 2 || i % 97 == 0) {
			while (next <= i)
				wrap_take(&f, next++);
		}
	}
	while (next < 3000)
		wrap_take(&f, next++);
	assert_false(sib_pending(&f.h, 2));
	fx_fini(&f);
}

/*
 * A full hub: ports past the first 64-bit word of the maps route, wait
 * and are woken like the first ones (only ports 0, 700 and SIB_MAX_PORTS - 1
 * share a group; the others have one each, so they get no inbox).
 */
static void test_many_ports(void **state)
{
	static struct sib_hub h;
	static uint8_t payload[VSOCK_MAX_PKT_LEN];
	static char names[SIB_MAX_PORTS][8];
	const unsigned int last = SIB_MAX_PORTS - 1;
	struct iovec pl = { payload, sizeof(payload) };
	struct pkt_hdr p = hdr(3 + last, 3 + 700, VSOCK_TYPE_STREAM, VSOCK_OP_RW,
			       VSOCK_MAX_PKT_LEN, 0);
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), rc;
	eventfd_t v;

	(void)state;
	assert_true(efd >= 0);
	sib_hub_init(&h);
	for (unsigned int i = 0; i < SIB_MAX_PORTS; i++) {
		bool shared = i == 0 || i == 700 || i == last;

		snprintf(names[i], sizeof(names[i]), shared ? "s" : "p%u", i);
		/* one eventfd for all: what matters is that the right one is written */
		assert_int_equal(sib_hub_add(&h, 3 + i, names[i], i == last ? efd : -1), (int)i);
	}
	assert_int_equal(sib_hub_add(&h, 3 + SIB_MAX_PORTS, "s", -1), -ENOSPC);
	assert_int_equal(sib_hub_link(&h, 0), 0);
	assert_true(sib_reaches(&h, last, 700));
	assert_true(sib_reaches(&h, 0, last));
	assert_false(sib_reaches(&h, 699, 700));
	assert_null(h.port[699].buf);
	sib_set_open(&h, 700, true);
	while ((rc = sib_send(&h, last, &p, &pl, 1)) == 0)
		;
	assert_int_equal(rc, -EAGAIN);
	assert_int_equal(eventfd_read(efd, &v), -1); /* nothing yet */
	sib_set_open(&h, 700, false);
	assert_int_equal(eventfd_read(efd, &v), 0); /* the waiter past word 0 is woken */
	p.src_cid = 3 + 699;
	assert_int_equal(sib_send(&h, 699, &p, &pl, 1), -EHOSTUNREACH);
	sib_hub_fini(&h);
	close(efd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_reach_and_routing),
		cmocka_unit_test(test_whole_packet),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_bound_and_waiters),
		cmocka_unit_test(test_wrap_around),
		cmocka_unit_test(test_many_ports),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
