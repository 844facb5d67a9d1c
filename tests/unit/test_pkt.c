// SPDX-License-Identifier: MIT
/*
 * virtio-vsock packet framing: wire layout, headers split across buffers at
 * every byte, hostile lengths and fields, RST replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "engine/user/pkt.h"

#define GUEST 3u

static struct pkt_hdr sample(void)
{
	return (struct pkt_hdr){
		.src_cid = GUEST, .dst_cid = VSOCK_CID_HOST, .src_port = 0x11223344,
		.dst_port = 0x55667788, .len = 0, .type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_REQUEST, .flags = 0, .buf_alloc = 0xa1a2a3a4, .fwd_cnt = 0xb1b2b3b4,
	};
}

static void test_wire_layout(void **state)
{
	struct pkt_hdr h = sample(), back;
	uint8_t raw[VSOCK_HDR_LEN];

	(void)state;
	h.src_cid = 0x0102030405060708ull;
	h.len = 0xc1c2c3c4;
	h.flags = 0xd1d2d3d4;
	h.op = 0x0506;
	pkt_hdr_encode(&h, raw);
	/* little-endian at the offsets of virtio 1.2 §5.10.6 */
	assert_int_equal(raw[0], 0x08);
	assert_int_equal(raw[7], 0x01);
	assert_int_equal(raw[8], VSOCK_CID_HOST);
	assert_int_equal(raw[16], 0x44);
	assert_int_equal(raw[20], 0x88);
	assert_int_equal(raw[24], 0xc4);
	assert_int_equal(raw[28], VSOCK_TYPE_STREAM);
	assert_int_equal(raw[29], 0);
	assert_int_equal(raw[30], 0x06);
	assert_int_equal(raw[31], 0x05);
	assert_int_equal(raw[32], 0xd4);
	assert_int_equal(raw[36], 0xa4);
	assert_int_equal(raw[43], 0xb1);
	pkt_hdr_decode(raw, &back);
	assert_true(back.src_cid == h.src_cid);
	assert_true(back.dst_cid == h.dst_cid);
	assert_int_equal(back.src_port, h.src_port);
	assert_int_equal(back.dst_port, h.dst_port);
	assert_int_equal(back.len, h.len);
	assert_int_equal(back.type, h.type);
	assert_int_equal(back.op, h.op);
	assert_int_equal(back.flags, h.flags);
	assert_int_equal(back.buf_alloc, h.buf_alloc);
	assert_int_equal(back.fwd_cnt, h.fwd_cnt);
}

/* Header + payload in one flat buffer, then cut into pieces. */
static size_t build(uint8_t *buf, uint32_t len)
{
	struct pkt_hdr h = sample();

	h.op = VSOCK_OP_RW;
	h.len = len;
	pkt_hdr_encode(&h, buf);
	for (uint32_t i = 0; i < len; i++)
		buf[VSOCK_HDR_LEN + i] = (uint8_t)(i * 7 + 1);
	return VSOCK_HDR_LEN + len;
}

static void check_payload(const struct iovec *p, size_t n, uint32_t len)
{
	uint8_t got[256];

	assert_int_equal(pkt_iov_len(p, n), len);
	assert_int_equal(pkt_iov_to_buf(p, n, got, len), len);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(got[i], (uint8_t)(i * 7 + 1));
}

static void test_split_everywhere(void **state)
{
	uint8_t buf[VSOCK_HDR_LEN + 100];
	size_t total = build(buf, 100);

	(void)state;
	for (size_t a = 0; a <= total; a++) {
		for (size_t b = a; b <= total; b += 7) {
			struct iovec chain[4] = {
				{ buf, a }, { buf + a, 0 }, { buf + a, b - a }, { buf + b, total - b },
			};
			struct iovec pl[PKT_MAX_IOV];
			struct pkt_hdr h;
			size_t n;

			assert_int_equal(pkt_parse(chain, 4, &h, pl, PKT_MAX_IOV, &n), 0);
			assert_int_equal(h.len, 100);
			assert_int_equal(h.src_port, 0x11223344);
			assert_int_equal(h.fwd_cnt, 0xb1b2b3b4);
			check_payload(pl, n, 100);
		}
	}
}

static void test_parse_hostile(void **state)
{
	uint8_t buf[VSOCK_HDR_LEN + 64];
	struct iovec pl[PKT_MAX_IOV];
	struct pkt_hdr h;
	size_t n = 99;
	struct iovec chain[1] = { { buf, VSOCK_HDR_LEN - 1 } };

	(void)state;
	build(buf, 64);
	/* shorter than a header */
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), -EBADMSG);
	assert_int_equal(n, 0);
	assert_int_equal(pkt_parse(NULL, 0, &h, pl, PKT_MAX_IOV, &n), -EBADMSG);
	/* len claims more than is there: the header is still handed back */
	chain[0].iov_len = VSOCK_HDR_LEN + 63;
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), -EMSGSIZE);
	assert_int_equal(h.len, 64);
	/* extra bytes after len are fine (buffers may be longer) */
	chain[0].iov_len = sizeof(buf);
	buf[24] = 10;
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), 0);
	assert_int_equal(pkt_iov_len(pl, n), 10);
	/* len = 0 with a big buffer: nothing is described */
	buf[24] = 0;
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), 0);
	assert_int_equal(n, 0);
}

static void test_parse_len_limits(void **state)
{
	static uint8_t big[VSOCK_HDR_LEN + VSOCK_MAX_PKT_LEN + 1];
	struct iovec chain[1] = { { big, sizeof(big) } };
	struct iovec pl[PKT_MAX_IOV];
	struct pkt_hdr h = sample();
	size_t n;

	(void)state;
	h.op = VSOCK_OP_RW;
	h.len = VSOCK_MAX_PKT_LEN;
	pkt_hdr_encode(&h, big);
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), 0);
	assert_int_equal(pkt_iov_len(pl, n), VSOCK_MAX_PKT_LEN);
	h.len = VSOCK_MAX_PKT_LEN + 1;
	pkt_hdr_encode(&h, big);
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), -EMSGSIZE);
	h.len = UINT32_MAX;
	pkt_hdr_encode(&h, big);
	assert_int_equal(pkt_parse(chain, 1, &h, pl, PKT_MAX_IOV, &n), -EMSGSIZE);
}

static void test_parse_too_scattered(void **state)
{
	uint8_t buf[VSOCK_HDR_LEN + 8];
	struct iovec chain[9];
	struct iovec pl[8];
	struct pkt_hdr h;
	size_t n;

	(void)state;
	build(buf, 8);
	chain[0] = (struct iovec){ buf, VSOCK_HDR_LEN };
	for (int i = 0; i < 8; i++)
		chain[1 + i] = (struct iovec){ buf + VSOCK_HDR_LEN + i, 1 };
	assert_int_equal(pkt_parse(chain, 9, &h, pl, 4, &n), -E2BIG);
	assert_int_equal(n, 0);
	assert_int_equal(pkt_parse(chain, 9, &h, pl, 8, &n), 0);
	assert_int_equal(n, 8);
}

static void test_iov_len_saturates(void **state)
{
	struct iovec v[3] = { { NULL, SIZE_MAX - 10 }, { NULL, 20 }, { NULL, 5 } };

	(void)state;
	assert_true(pkt_iov_len(v, 3) == SIZE_MAX);
	assert_int_equal(pkt_iov_len(v + 1, 2), 25);
}

static void test_validate(void **state)
{
	struct pkt_hdr h;

	(void)state;
#define V(expr, want)                                                   \
	do {                                                            \
		h = sample();                                           \
		expr;                                                   \
		assert_int_equal(pkt_validate(&h, GUEST, false), want); \
	} while (0)
	V((void)0, PKT_OK);
	V(h.src_cid = 4, PKT_DROP);                           /* another guest's CID */
	V(h.src_cid = GUEST | (1ull << 32), PKT_DROP);       /* reserved upper bits */
	V(h.dst_cid = 3, PKT_DROP);                           /* not to the host */
	V(h.dst_cid = VSOCK_CID_HOST | (1ull << 40), PKT_DROP);
	V(h.type = 0, PKT_RST);
	V(h.type = 3, PKT_RST);
	V(h.type = VSOCK_TYPE_SEQPACKET, PKT_RST);            /* not negotiated */
	V(h.op = VSOCK_OP_INVALID, PKT_RST);
	V(h.op = 8, PKT_RST);
	V(h.op = 0xffff, PKT_RST);
	V(h.len = 1, PKT_RST);                                /* payload on REQUEST */
	V((h.op = VSOCK_OP_RW, h.len = 1), PKT_OK);
	V((h.op = VSOCK_OP_RW, h.flags = 0xff), PKT_OK);      /* STREAM RW flags ignored */
	V((h.op = VSOCK_OP_SHUTDOWN, h.flags = 3), PKT_OK);
	V((h.op = VSOCK_OP_SHUTDOWN, h.flags = 4), PKT_RST);
	V((h.op = VSOCK_OP_CREDIT_UPDATE, h.flags = VSOCK_SEQ_EOM), PKT_RST);
	V((h.op = VSOCK_OP_RST, h.flags = 1), PKT_RST);
	/* misaddressing wins over everything else */
	V((h.src_cid = 9, h.type = 77), PKT_DROP);
#undef V
	h = sample();
	h.type = VSOCK_TYPE_SEQPACKET;
	h.op = VSOCK_OP_RW;
	h.flags = VSOCK_SEQ_EOM | VSOCK_SEQ_EOR;
	assert_int_equal(pkt_validate(&h, GUEST, true), PKT_OK);
	h.flags = 4;
	assert_int_equal(pkt_validate(&h, GUEST, true), PKT_RST);
}

static void test_reply_rst(void **state)
{
	struct pkt_hdr in = sample(), out;

	(void)state;
	in.op = VSOCK_OP_RW;
	in.len = 5;
	in.flags = 3;
	in.type = 9;
	assert_true(pkt_reply_rst(&in, &out));
	assert_int_equal(out.op, VSOCK_OP_RST);
	assert_int_equal(out.src_cid, VSOCK_CID_HOST);
	assert_int_equal(out.dst_cid, GUEST);
	assert_int_equal(out.src_port, in.dst_port);
	assert_int_equal(out.dst_port, in.src_port);
	assert_int_equal(out.type, 9);
	assert_int_equal(out.len, 0);
	assert_int_equal(out.flags, 0);
	in.op = VSOCK_OP_RST;
	assert_false(pkt_reply_rst(&in, &out));
}

static void test_hdr_to_iov(void **state)
{
	uint8_t a[10], b[30], c[10];
	struct iovec rx[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct pkt_hdr h = sample();
	uint8_t flat[VSOCK_HDR_LEN], want[VSOCK_HDR_LEN];

	(void)state;
	memset(c, 0xee, sizeof(c));
	assert_int_equal(pkt_hdr_to_iov(&h, rx, 2), -ENOBUFS);
	assert_int_equal(pkt_hdr_to_iov(&h, rx, 3), 0);
	memcpy(flat, a, 10);
	memcpy(flat + 10, b, 30);
	memcpy(flat + 40, c, 4);
	pkt_hdr_encode(&h, want);
	assert_memory_equal(flat, want, sizeof(want));
	assert_int_equal(c[4], 0xee); /* nothing written past the header */
}

static void test_slice(void **state)
{
	uint8_t buf[20];
	struct iovec in[3] = { { buf, 5 }, { buf + 5, 0 }, { buf + 5, 15 } };
	struct iovec out[2];
	size_t n;

	(void)state;
	assert_int_equal(pkt_iov_slice(in, 3, 3, 10, out, 2, &n), 10);
	assert_int_equal(n, 2);
	assert_ptr_equal(out[0].iov_base, buf + 3);
	assert_int_equal(out[0].iov_len, 2);
	assert_int_equal(out[1].iov_len, 8);
	/* output too small: stops early and says how much */
	assert_int_equal(pkt_iov_slice(in, 3, 0, 20, out, 1, &n), 5);
	/* past the end */
	assert_int_equal(pkt_iov_slice(in, 3, 25, 5, out, 2, &n), 0);
	assert_int_equal(n, 0);
}

static void test_op_names(void **state)
{
	(void)state;
	assert_string_equal(pkt_op_name(VSOCK_OP_CREDIT_REQUEST), "CREDIT_REQUEST");
	assert_string_equal(pkt_op_name(VSOCK_OP_RW), "RW");
	assert_string_equal(pkt_op_name(8), "UNKNOWN");
	assert_string_equal(pkt_op_name(0xffff), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_layout),
		cmocka_unit_test(test_split_everywhere),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_parse_len_limits),
		cmocka_unit_test(test_parse_too_scattered),
		cmocka_unit_test(test_iov_len_saturates),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_reply_rst),
		cmocka_unit_test(test_hdr_to_iov),
		cmocka_unit_test(test_slice),
		cmocka_unit_test(test_op_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
