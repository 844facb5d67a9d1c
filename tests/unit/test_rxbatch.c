// SPDX-License-Identifier: MIT
/*
 * The batched host → guest path: vq_unpop() (split.c) and conn_fill_rxv()
 * (conn.c), which let one host read fill several guest rx buffers.
 *
 * vq_unpop: chains given back are popped again with their descriptors
 * read afresh (a driver that rewrote them is seen as it is now, and a
 * broken one still breaks the ring); more than were popped is clamped.
 * conn_fill_rxv: a read that filled its buffer makes the next one take
 * more buffers, each a packet of its own with the right length and bytes,
 * in order; the guest's credit, 64 KiB per packet, a bare header buffer
 * and the caller running out of buffers all end the batch; a short read
 * stops reading without another read that would only say EAGAIN; end of
 * stream and host errors still come out as one control packet.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/user/conn.h"
#include "mem/guest_mem.h"
#include "user_memstream.h"
#include "virtq/split.h"

#define GUEST 3u
#define GUEST_PORT 5555u
#define HOST_PORT 1234u
#define NBUF 8u
#define BUFSZ 4096u
#define ROOM (BUFSZ - VSOCK_HDR_LEN)

/* ---- vq_unpop ------------------------------------------------------------------ */

struct ring {
	int fd;
	struct gmem mem;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	struct vq vq;
	struct iovec iov[4];
	struct vq_elem e;
};

static void ring_up(struct ring *r)
{
	const struct gmem_region_desc region = { .gpa = 0, .size = 0x10000,
						 .uva = 0x700000000000ull };
	struct vq_config cfg = { .name = "rx", .num = 8 };

	r->fd = memfd_create("test-rxbatch", MFD_CLOEXEC);
	assert_true(r->fd >= 0);
	assert_int_equal(ftruncate(r->fd, 0x10000), 0);
	gmem_init(&r->mem);
	assert_int_equal(gmem_map(&r->mem, &region, 1, &r->fd), 0);
	r->desc = gmem_gpa_ptr(&r->mem, 0, 16 * 8);
	r->avail = gmem_gpa_ptr(&r->mem, 0x1000, 6 + 2 * 8);
	r->used = gmem_gpa_ptr(&r->mem, 0x2000, 6 + 8 * 8);
	cfg.desc = r->desc;
	cfg.avail = r->avail;
	cfg.used = r->used;
	cfg.mem = &r->mem;
	assert_int_equal(vq_init(&r->vq, &cfg), 0);
	/* chains 0..3: one writable 256-byte buffer each, all available */
	for (uint16_t i = 0; i < 4; i++) {
		r->desc[i].addr = htole64(0x4000 + 0x100 * i);
		r->desc[i].len = htole32(256);
		r->desc[i].flags = htole16(VRING_DESC_F_WRITE);
		r->avail->ring[i] = htole16(i);
	}
	r->avail->idx = htole16(4);
}

static void ring_down(struct ring *r)
{
	vq_fini(&r->vq);
	gmem_unmap(&r->mem);
	close(r->fd);
}

static uint16_t pop_head(struct ring *r)
{
	assert_int_equal(vq_pop(&r->vq, r->iov, 4, &r->e), 0);
	return r->e.head;
}

static void test_unpop_pops_again_afresh(void **state)
{
	struct ring r;

	(void)state;
	ring_up(&r);
	assert_int_equal(pop_head(&r), 0);
	assert_int_equal(pop_head(&r), 1);
	assert_int_equal(pop_head(&r), 2);
	vq_unpop(&r.vq, 2);
	assert_int_equal(vq_last_avail(&r.vq), 1);
	/* the driver may not, but a hostile one does: the re-pop sees it */
	r.desc[1].len = htole32(100);
	assert_int_equal(pop_head(&r), 1);
	assert_int_equal(r.e.in_len, 100);
	assert_int_equal(pop_head(&r), 2);
	assert_int_equal(pop_head(&r), 3);
	assert_int_equal(vq_pop(&r.vq, r.iov, 4, &r.e), -EAGAIN);
	/* four in flight: each can be pushed once, no more */
	for (uint16_t h = 0; h < 4; h++)
		assert_int_equal(vq_push(&r.vq, h, 0), 0);
	assert_int_equal(vq_push(&r.vq, 0, 0), -EINVAL);
	ring_down(&r);
}

static void test_unpop_checks_again(void **state)
{
	struct ring r;

	(void)state;
	ring_up(&r);
	assert_int_equal(pop_head(&r), 0);
	vq_unpop(&r.vq, 1);
	/* made device-readable-after-writable while given back: the ring breaks on re-pop */
	r.desc[0].flags = htole16(VRING_DESC_F_WRITE | VRING_DESC_F_NEXT);
	r.desc[0].next = htole16(1);
	r.desc[1].flags = htole16(0);
	assert_int_equal(vq_pop(&r.vq, r.iov, 4, &r.e), -EIO);
	assert_true(vq_is_broken(&r.vq));
	ring_down(&r);
}

static void test_unpop_clamped(void **state)
{
	struct ring r;

	(void)state;
	ring_up(&r);
	assert_int_equal(pop_head(&r), 0);
	vq_unpop(&r.vq, 5); /* more than popped: only the one goes back */
	assert_int_equal(vq_last_avail(&r.vq), 0);
	vq_unpop(&r.vq, 1);
	assert_int_equal(vq_last_avail(&r.vq), 0);
	assert_int_equal(pop_head(&r), 0);
	ring_down(&r);
}

/* ---- conn_fill_rxv ----------------------------------------------------------- */

struct fx {
	struct conn_params par;
	struct memstream *ms;
	struct stream_ops ops;     /* the memstream's, with reads counted */
	unsigned int reads;
	struct conn *c;
	uint8_t buf[NBUF][BUFSZ];
	size_t size[NBUF];         /* each buffer's size as offered */
	struct iovec iov[NBUF];
	struct conn_rxbuf rxb[NBUF];
	struct conn_rxbufs rb;
	unsigned int avail;        /* buffers more() may still hand out */
	uint64_t got;              /* stream bytes checked so far */
};

static struct fx *fx_of_stream;

static ssize_t counted_readv(struct stream *s, const struct iovec *iov, int niov,
			     unsigned int *flags)
{
	fx_of_stream->reads++;
	return ms_readv(s, iov, niov, flags);
}

static uint8_t pat(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 8));
}

static void feed(struct fx *f, uint64_t from, size_t n)
{
	uint8_t *b = malloc(n);

	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		b[i] = pat(from + i);
	ms_feed(f->ms, b, n);
	free(b);
}

static bool more(struct conn_rxbufs *rb)
{
	struct fx *f = rb->ctx;
	unsigned int k = rb->n;

	if (!f->avail)
		return false;
	f->avail--;
	f->iov[k] = (struct iovec){ f->buf[k], f->size[k] };
	rb->buf[k] = (struct conn_rxbuf){ .iov = &f->iov[k], .niov = 1 };
	rb->n++;
	return true;
}

/* Offer buffer 0 and up to @extra more. Return: conn_fill_rxv()'s result. */
static int offer(struct fx *f, unsigned int extra, struct pkt_hdr *out)
{
	f->avail = extra;
	f->iov[0] = (struct iovec){ f->buf[0], f->size[0] };
	f->rxb[0] = (struct conn_rxbuf){ .iov = &f->iov[0], .niov = 1 };
	f->rb = (struct conn_rxbufs){ .buf = f->rxb, .n = 1, .max = NBUF, .more = more, .ctx = f };
	memset(f->buf, 0xee, sizeof(f->buf));
	return conn_fill_rxv(f->c, &f->rb, out, 1000);
}

/* Buffer @k holds an RW packet of @len bytes: the next ones of the stream. */
static void check_rw(struct fx *f, unsigned int k, uint32_t len)
{
	struct pkt_hdr h;

	pkt_hdr_decode(f->buf[k], &h);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, len);
	assert_int_equal(h.src_port, HOST_PORT);
	assert_int_equal(h.dst_port, GUEST_PORT);
	assert_int_equal(h.dst_cid, GUEST);
	assert_int_equal(f->rxb[k].len, VSOCK_HDR_LEN + len);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(f->buf[k][VSOCK_HDR_LEN + i], pat(f->got + i));
	f->got += len;
}

static void fx_up(struct fx *f, uint32_t guest_buf_alloc)
{
	struct pkt_hdr req = {
		.src_cid = GUEST, .dst_cid = VSOCK_CID_HOST, .src_port = GUEST_PORT,
		.dst_port = HOST_PORT, .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_REQUEST,
		.buf_alloc = guest_buf_alloc,
	};
	struct stream s;
	struct pkt_hdr h;

	memset(f, 0, sizeof(*f));
	fx_of_stream = f;
	f->par = (struct conn_params){ GUEST, 65536, 2000, 8000 };
	f->ms = ms_new(false);
	s = ms_stream(f->ms);
	f->ops = *s.ops;
	f->ops.readv = counted_readv;
	s.ops = &f->ops;
	for (unsigned int k = 0; k < NBUF; k++)
		f->size[k] = BUFSZ;
	f->c = conn_new_peer(&f->par, &req, &s);
	assert_non_null(f->c);
	assert_int_equal(offer(f, 3, &h), 1); /* the RESPONSE takes one buffer only */
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(f->rb.n, 1);
	conn_host_readable(f->c);
}

static void fx_down(struct fx *f)
{
	conn_free(f->c);
	ms_free(f->ms);
}

static void test_full_read_then_batch(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_up(&f, 1 << 20);
	feed(&f, 0, 5 * ROOM + 100);
	/* no read has filled a buffer yet: one buffer, no more taken */
	assert_int_equal(offer(&f, 6, &h), 1);
	assert_int_equal(f.rb.n, 1);
	check_rw(&f, 0, ROOM);
	/* it did: the next read spans buffers, one readv, each a packet */
	f.reads = 0;
	assert_int_equal(offer(&f, 6, &h), 5);
	assert_int_equal(f.reads, 1);
	for (unsigned int k = 0; k < 4; k++)
		check_rw(&f, k, ROOM);
	check_rw(&f, 4, 100);
	/* taken and not reached: the caller's to give back */
	assert_int_equal(f.rb.n, 7);
	assert_int_equal(f.rxb[5].len, 0);
	assert_int_equal(f.rxb[6].len, 0);
	/* the short read emptied the socket: off the rx queue, watched for input again */
	assert_false(conn_wants_rx(f.c));
	assert_true(conn_wants_host_read(f.c));
	/* the host writes in bulk: the next wake's read is a batch at once */
	feed(&f, 5 * ROOM + 100, 2 * ROOM);
	conn_host_readable(f.c);
	f.reads = 0;
	assert_int_equal(offer(&f, 6, &h), 2);
	assert_int_equal(f.reads, 1);
	check_rw(&f, 0, ROOM);
	check_rw(&f, 1, ROOM);
	/* asked with the socket empty: one read says so, then single buffers again */
	f.reads = 0;
	assert_int_equal(offer(&f, 6, &h), -EAGAIN);
	assert_int_equal(f.reads, 1);
	f.reads = 0;
	assert_int_equal(offer(&f, 6, &h), -EAGAIN);
	assert_int_equal(f.reads, 1);
	assert_int_equal(f.rb.n, 1);
	fx_down(&f);
}

/* Small messages stay single-buffer reads: no chains popped to be given back. */
static void test_small_reads_stay_single(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_up(&f, 1 << 20);
	for (uint64_t i = 0; i < 3; i++) {
		feed(&f, i * 100, 100);
		conn_host_readable(f.c);
		f.reads = 0;
		assert_int_equal(offer(&f, 6, &h), 1);
		assert_int_equal(f.reads, 1);
		assert_int_equal(f.rb.n, 1);
		check_rw(&f, 0, 100);
	}
	fx_down(&f);
}

static void test_batch_within_credit(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_up(&f, 2 * ROOM + 10); /* the guest takes this much, no more */
	feed(&f, 0, 8 * BUFSZ);
	assert_int_equal(offer(&f, 6, &h), 1);
	check_rw(&f, 0, ROOM);
	assert_int_equal(offer(&f, 6, &h), 2);
	check_rw(&f, 0, ROOM);
	check_rw(&f, 1, 10);
	assert_int_equal(f.rb.n, 2); /* nothing taken past the credit */
	assert_false(conn_may_read_host(f.c));
	assert_int_equal(offer(&f, 6, &h), -EAGAIN);
	fx_down(&f);
}

static void test_batch_ends_at_bare_header_buffer(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_up(&f, 1 << 20);
	feed(&f, 0, 8 * BUFSZ);
	assert_int_equal(offer(&f, 6, &h), 1);
	check_rw(&f, 0, ROOM);
	f.size[2] = VSOCK_HDR_LEN; /* no byte of payload fits */
	assert_int_equal(offer(&f, 6, &h), 2);
	check_rw(&f, 0, ROOM);
	check_rw(&f, 1, ROOM);
	assert_int_equal(f.rb.n, 3);
	assert_int_equal(f.rxb[2].len, 0);
	fx_down(&f);
}

static void test_batch_ends_when_buffers_do(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_up(&f, 1 << 20);
	feed(&f, 0, 8 * BUFSZ);
	assert_int_equal(offer(&f, 0, &h), 1);
	check_rw(&f, 0, ROOM);
	assert_int_equal(offer(&f, 2, &h), 3);
	for (unsigned int k = 0; k < 3; k++)
		check_rw(&f, k, ROOM);
	/* still full: the next one batches again */
	assert_int_equal(offer(&f, 1, &h), 2);
	check_rw(&f, 0, ROOM);
	check_rw(&f, 1, ROOM);
	fx_down(&f);
}

static void test_eof_and_errors_in_a_batch(void **state)
{
	struct fx f;
	struct pkt_hdr h;

	(void)state;
	fx_up(&f, 1 << 20);
	feed(&f, 0, ROOM);
	assert_int_equal(offer(&f, 6, &h), 1);
	check_rw(&f, 0, ROOM);
	/* end of stream while batching: one SHUTDOWN in the first buffer */
	f.ms->in_eof = true;
	assert_int_equal(offer(&f, 6, &h), 1);
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(f.rxb[0].len, VSOCK_HDR_LEN);
	fx_down(&f);

	fx_up(&f, 1 << 20);
	feed(&f, 0, ROOM);
	assert_int_equal(offer(&f, 6, &h), 1);
	check_rw(&f, 0, ROOM);
	f.ms->read_err = -ECONNRESET;
	assert_int_equal(offer(&f, 6, &h), 1);
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_true(conn_is_done(f.c));
	fx_down(&f);
}

static void test_single_buffer_api_unchanged(void **state)
{
	struct fx f;
	struct pkt_hdr h;
	struct iovec v;
	size_t len = 0;

	(void)state;
	fx_up(&f, 1 << 20);
	feed(&f, 0, 3 * BUFSZ);
	/* one buffer at a time, whatever the last read did; -EAGAIN leaves len alone */
	for (int i = 0; i < 4; i++) {
		v = (struct iovec){ f.buf[0], BUFSZ };
		assert_int_equal(conn_fill_rx(f.c, &v, 1, &h, &len, 1000), 0);
		assert_int_equal(len, VSOCK_HDR_LEN + h.len);
		f.rxb[0].len = len;
		check_rw(&f, 0, h.len);
	}
	assert_int_equal(f.got, 3 * BUFSZ);
	len = 12345;
	assert_int_equal(conn_fill_rx(f.c, &v, 1, &h, &len, 1000), -EAGAIN);
	assert_int_equal(len, 12345);
	fx_down(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unpop_pops_again_afresh),
		cmocka_unit_test(test_unpop_checks_again),
		cmocka_unit_test(test_unpop_clamped),
		cmocka_unit_test(test_full_read_then_batch),
		cmocka_unit_test(test_small_reads_stay_single),
		cmocka_unit_test(test_batch_within_credit),
		cmocka_unit_test(test_batch_ends_at_bare_header_buffer),
		cmocka_unit_test(test_batch_ends_when_buffers_do),
		cmocka_unit_test(test_eof_and_errors_in_a_batch),
		cmocka_unit_test(test_single_buffer_api_unchanged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
