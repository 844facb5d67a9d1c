// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpora under fuzz/corpus/<target>/ (run it with
 * `ninja -C <build> fuzz-corpus`; the files are committed, so this only
 * runs when a target's input format or the seeds change).
 *
 * Seeds are valid, typical inputs in each target's encoding (see the head
 * of each fuzz_<target>.c) plus a few hostile ones, so fuzzing starts deep
 * in the code instead of at the first length check:
 *   vu_msg       the QEMU and crosvm start sequences of the test front end
 *                (tests/lib/tfe.h), recorded as they reach a real
 *                dispatcher and kernel engine (over the vhost double) in
 *                this process, then re-encoded as the target's records,
 *                for either device of the target;
 *   mem_table    QEMU's RAM layout with the VGA hole, edge queries, and
 *                tables that must be refused;
 *   desc_chain   rings with plain, indirect, EVENT_IDX and cross-region
 *                chains, and broken rings (loops, wild heads, index jumps);
 *   vsock_pkt    guest- and host-initiated connections moving data, a
 *                SEQPACKET exchange, credit overrun and junk packets;
 *   hybrid_line, vm_spec, config_file, control: typical and broken text.
 *
 * Limits: files are small (the whole corpus stays far below 1 MiB); names
 * are stable so that a regenerated corpus replaces, not adds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/kernel/kernel.h"
#include "engine/user/pkt.h"
#include "tfe.h"
#include "vhost_double.h"
#include "vhost_user/dispatch.h"
#include "vhost_user/msg.h"

struct gbuf {
	uint8_t *p;
	size_t len, cap;
};

static const char *out_dir;

/* ---- byte buffers and files ----------------------------------------------- */

static void put(struct gbuf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void put_le(struct gbuf *b, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++) {
		uint8_t c = (uint8_t)(v >> (8 * i));

		put(b, &c, 1);
	}
}

#define P8(b, v) put_le(b, v, 1)
#define P16(b, v) put_le(b, v, 2)
#define P32(b, v) put_le(b, v, 4)
#define P64(b, v) put_le(b, v, 8)

static int save(const char *target, const char *name, const void *d, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wbe");
	if (!f || fwrite(d, 1, n, f) != n) {
		fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* Save @b and empty it for the next seed. */
static int flush(const char *target, const char *name, struct gbuf *b)
{
	int rc = save(target, name, b->p, b->len);

	b->len = 0;
	return rc;
}

static int save_text(const char *target, const char *name, const char *text)
{
	return save(target, name, text, strlen(text));
}

/* ---- vu_msg: recorded front-end sessions ---------------------------------- */

struct rec_session {
	int fe_sock;
	bool crosvm;
	bool restart;       /* stop QEMU and run the sequence a second time */
	uint64_t want;      /* features the "guest" wants */
	int rc;
};

/* The front end's side: a canned sequence, then close. */
static void *play(void *arg)
{
	struct rec_session *r = arg;
	struct tfe_setup_opts o = { .want_features = r->want };
	struct tfe_vm vm;

	memset(&vm, 0, sizeof(vm));
	tfe_fe_init(&vm.fe, r->fe_sock);
	r->rc = tfe_mem_init(&vm.mem, 2u << 20, !r->crosvm);
	if (r->rc == 0)
		r->rc = r->crosvm ? tfe_setup_crosvm(&vm, &o) : tfe_setup_qemu(&vm, &o);
	if (r->rc == 0 && !r->crosvm)
		r->rc = tfe_stop_qemu(&vm, NULL);
	tfe_vm_close(&vm);
	return NULL;
}

/* One message as fuzz_vu_msg reads a record (kind, request, control, payload). */
static void encode_msg(struct gbuf *b, const struct vu_msg *m)
{
	P8(b, 0);
	P8(b, m->hdr.request);
	P8(b, (m->hdr.flags & VU_FLAG_NEED_REPLY) ? 1 : 0);
	if (m->hdr.request == VU_REQ_SET_MEM_TABLE) {
		P8(b, m->payload.mem.nregions - 1);
		put(b, m->payload.mem.regions, 32u * m->payload.mem.nregions);
	} else {
		put(b, m->payload.raw, m->hdr.size);
	}
}

/* Serve one recorded front end with the real dispatcher; encode what it sent. */
static int record(struct gbuf *b, bool crosvm, uint64_t want)
{
	struct rec_session r = { .crosvm = crosvm, .want = want };
	struct kern_engine k;
	struct vu_dev dev;
	pthread_t th;
	int sv[2], rc = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	r.fe_sock = sv[0];
	vhd_reset();
	kern_engine_init(&k, &vhd_ops, "/dev/vhost-vsock", 3);
	if (kern_engine_open(&k) < 0 || pthread_create(&th, NULL, play, &r) != 0)
		return -EIO;
	vu_dev_init(&dev, "gen", sv[1], &kern_dev_ops, &k);
	while (rc == 0) {
		struct vu_msg m, reply;
		bool has_reply = false;

		if (vu_msg_recv(sv[1], &m) < 0)
			break;
		encode_msg(b, &m);
		rc = vu_dev_handle(&dev, &m, &reply, &has_reply);
		if (rc == 0 && has_reply)
			rc = vu_msg_send(sv[1], &reply);
	}
	pthread_join(th, NULL);
	vu_dev_fini(&dev);
	kern_engine_close(&k);
	close(sv[1]);
	return rc < 0 ? rc : r.rc;
}

static int gen_vu_msg(void)
{
	const uint64_t v1 = 1ull << 32, evidx = 1ull << 29, indirect = 1ull << 28;
	struct gbuf b = { 0 };
	int rc = 0;

	P8(&b, 0);
	rc |= record(&b, false, v1);
	rc |= flush("vu_msg", "qemu", &b);
	P8(&b, 0);
	rc |= record(&b, true, v1 | evidx | indirect);
	rc |= flush("vu_msg", "crosvm-event-idx", &b);
	/* QEMU, then the front end restarts and comes back (a VMM reconnect) */
	P8(&b, 1);
	rc |= record(&b, false, v1 | evidx);
	P8(&b, 7);
	rc |= record(&b, false, v1);
	rc |= flush("vu_msg", "qemu-reconnect", &b);
	/* the kernel refuses SET_RUNNING once: the start fails cleanly */
	P8(&b, 0);
	P8(&b, 6);
	P8(&b, 13);
	P8(&b, 0);
	rc |= record(&b, false, v1);
	rc |= flush("vu_msg", "qemu-running-fails", &b);
	/* the same sessions against the userspace engine's device (cfg bit 2) */
	P8(&b, 4);
	rc |= record(&b, false, v1);
	rc |= flush("vu_msg", "user-qemu", &b);
	P8(&b, 4);
	rc |= record(&b, true, v1 | evidx | indirect);
	P8(&b, 7);
	rc |= record(&b, true, v1);
	rc |= flush("vu_msg", "user-crosvm-reconnect", &b);
	/* crosvm, then garbage framing with fds attached */
	P8(&b, 0);
	rc |= record(&b, true, v1);
	P8(&b, 5);
	P16(&b, 20);
	P8(&b, 3);
	P8(&b, 0x5);
	for (int i = 0; i < 20; i++)
		P8(&b, 0xff);
	rc |= flush("vu_msg", "crosvm-then-garbage", &b);
	free(b.p);
	return rc;
}

/* ---- mem_table ------------------------------------------------------------ */

/* A region in raw mode with its fd kind (see fuzz_mem_table.c). */
static void mt_region(struct gbuf *b, uint64_t gpa, uint64_t size, uint64_t uva, uint64_t off,
		      uint8_t fd_kind, uint32_t fsize)
{
	P8(b, 1);
	P64(b, gpa);
	P64(b, size);
	P64(b, uva);
	P64(b, off);
	P8(b, fd_kind);
	P32(b, fsize);
}

/* A query relative to region @k (op bits: 0-1 kind, 2 relative, 3-5 region, 6 small len). */
static void mt_query(struct gbuf *b, unsigned int kind, unsigned int k, int32_t delta, uint8_t len)
{
	P8(b, kind | 4 | k << 3 | 0x40);
	P32(b, (uint32_t)delta);
	P8(b, len);
}

static int gen_mem_table(void)
{
	const uint64_t uva = 0x7f0000000000ull;
	struct gbuf b = { 0 };
	int rc = 0;

	/* QEMU -m 2M: one memfd, VGA hole at 0xa0000..0xc0000 */
	P8(&b, 2);
	mt_region(&b, 0, 0xa0000, uva, 0, 0, 2u << 20);
	mt_region(&b, 0xc0000, 0x140000, uva + 0xc0000, 0xc0000, 2, 0);
	mt_query(&b, 0, 0, 0, 1);
	mt_query(&b, 0, 0, 0x9ffff, 1);
	mt_query(&b, 0, 0, 0x9ffff, 2);
	mt_query(&b, 0, 0, 0xa0000, 1);
	mt_query(&b, 1, 1, 0, 64);
	mt_query(&b, 2, 1, 0x100, 8);
	mt_query(&b, 3, 1, 0x13ffff, 1);
	rc |= flush("mem_table", "qemu-hole", &b);
	/* one region at an unaligned file offset, fitted memfd */
	P8(&b, 1);
	mt_region(&b, 0x100000, 0x10000, uva, 0x123, 1, 0);
	mt_query(&b, 0, 0, 0, 255);
	mt_query(&b, 1, 0, 0xffff, 1);
	mt_query(&b, 1, 0, -1, 1);
	rc |= flush("mem_table", "unaligned-offset", &b);
	/* refused: overlap in GPA space, file too short, eventfd, closed fd */
	P8(&b, 2);
	mt_region(&b, 0, 0x2000, uva, 0, 1, 0);
	mt_region(&b, 0x1000, 0x2000, uva + 0x10000, 0, 1, 0);
	rc |= flush("mem_table", "overlap", &b);
	P8(&b, 1);
	mt_region(&b, 0, 0x2000, uva, 0x1000, 0, 0x2000);
	rc |= flush("mem_table", "beyond-file", &b);
	P8(&b, 2);
	mt_region(&b, 0, 0x1000, uva, 0, 4, 0);
	mt_region(&b, 0x1000, 0x1000, uva + 0x1000, 0, 3, 1);
	rc |= flush("mem_table", "not-files", &b);
	/* refused: wraps past 2^64 */
	P8(&b, 1);
	mt_region(&b, UINT64_MAX - 0xfff, 0x2000, uva, 0, 1, 0);
	rc |= flush("mem_table", "wraps", &b);
	free(b.p);
	return rc;
}

/* ---- desc_chain ----------------------------------------------------------- */

#define DC_HDR 16u
#define VQF_NEXT 1u
#define VQF_WRITE 2u
#define VQF_INDIRECT 4u

/* A guest memory image for ring size @num: header, then memory from GPA 0. */
struct dc_img {
	uint8_t hdr[DC_HDR];
	uint8_t mem[8192];
	unsigned int num;
	size_t avail, used, top;
};

static void dc_init(struct dc_img *g, unsigned int log2num, uint8_t features, uint8_t layout)
{
	memset(g, 0, sizeof(*g));
	g->num = 1u << log2num;
	g->hdr[0] = (uint8_t)log2num;
	g->hdr[1] = (uint8_t)(features | layout << 3);
	g->hdr[4] = 63; /* 64 iovecs */
	g->hdr[5] = 1;  /* two rounds */
	g->hdr[6] = 1;  /* push the written length */
	g->avail = 16u * g->num;
	g->used = (g->avail + 6 + 2u * g->num + 3) & ~(size_t)3;
	g->top = g->used + 6 + 8u * g->num;
}

static void le(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void dc_desc(struct dc_img *g, size_t at, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	le(g->mem + at, addr, 8);
	le(g->mem + at + 8, len, 4);
	le(g->mem + at + 12, flags, 2);
	le(g->mem + at + 14, next, 2);
}

/* Publish heads @heads[0..n) in the avail ring. */
static void dc_avail(struct dc_img *g, const uint16_t *heads, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		le(g->mem + g->avail + 4 + 2 * (i % g->num), heads[i], 2);
	le(g->mem + g->avail + 2, n, 2);
}

static int dc_save(struct dc_img *g, const char *name, size_t len)
{
	struct gbuf b = { 0 };
	int rc;

	put(&b, g->hdr, DC_HDR);
	put(&b, g->mem, len);
	rc = flush("desc_chain", name, &b);
	free(b.p);
	return rc;
}

static int gen_desc_chain_ok(void)
{
	static const uint16_t h01[] = { 0, 2 }, h0[] = { 0 };
	struct dc_img g;
	int rc = 0;

	/* header out, reply in: what a vsock tx/rx pair looks like */
	dc_init(&g, 3, 0, 0);
	dc_desc(&g, 0, 0x400, 44, VQF_NEXT, 1);
	dc_desc(&g, 16, 0x500, 100, 0, 0);
	dc_desc(&g, 32, 0x600, 4096, VQF_WRITE, 0);
	dc_avail(&g, h01, 2);
	rc |= dc_save(&g, "two-chains", g.top);
	/* EVENT_IDX and NOTIFY_ON_EMPTY, used_event set, a second round adds a chain */
	dc_init(&g, 3, 1 | 4, 0);
	le(g.mem + g.avail + 4 + 2 * g.num, 1, 2);
	dc_desc(&g, 0, 0x400, 64, 0, 0);
	dc_desc(&g, 16, 0x500, 64, VQF_WRITE, 0);
	dc_avail(&g, h0, 1);
	le(g.mem + g.avail + 6, 1, 2);
	le(g.hdr + 8, g.avail + 2, 2);
	le(g.hdr + 10, 2, 2);
	rc |= dc_save(&g, "event-idx-two-rounds", g.top);
	/* an indirect table of three entries */
	dc_init(&g, 4, 2, 0);
	dc_desc(&g, 0, 0x800, 48, VQF_INDIRECT, 0);
	dc_desc(&g, 0x800, 0x1000, 44, VQF_NEXT, 1);
	dc_desc(&g, 0x810, 0x1100, 200, VQF_NEXT, 2);
	dc_desc(&g, 0x820, 0x1200, 512, VQF_WRITE, 0);
	dc_avail(&g, h0, 1);
	rc |= dc_save(&g, "indirect", 0x830);
	/* a buffer across the seam of two adjacent regions, and one past the hole */
	dc_init(&g, 3, 0, 1);
	dc_desc(&g, 0, 0xfff0, 32, VQF_NEXT, 1);
	dc_desc(&g, 16, 0x1ff00, 256, VQF_WRITE, 0);
	dc_avail(&g, h0, 1);
	rc |= dc_save(&g, "region-seam", g.top);
	dc_init(&g, 3, 0, 2);
	dc_desc(&g, 0, 0x20000, 128, VQF_WRITE, 0);
	dc_avail(&g, h0, 1);
	rc |= dc_save(&g, "past-hole", g.top);
	return rc;
}

static int gen_desc_chain_bad(void)
{
	static const uint16_t h0[] = { 0 }, wild[] = { 9 };
	struct dc_img g;
	int rc = 0;

	dc_init(&g, 3, 0, 0);
	dc_desc(&g, 0, 0x400, 8, VQF_NEXT, 1);
	dc_desc(&g, 16, 0x400, 8, VQF_NEXT, 0);
	dc_avail(&g, h0, 1);
	rc |= dc_save(&g, "loop", g.top);
	dc_init(&g, 3, 0, 0);
	dc_avail(&g, wild, 1);
	rc |= dc_save(&g, "wild-head", g.top);
	dc_init(&g, 3, 0, 0);
	le(g.mem + g.avail + 2, 100, 2);
	rc |= dc_save(&g, "avail-jump", g.top);
	/* an indirect table that points at itself as indirect */
	dc_init(&g, 3, 2, 0);
	dc_desc(&g, 0, 0x800, 16, VQF_INDIRECT, 0);
	dc_desc(&g, 0x800, 0x800, 16, VQF_INDIRECT, 0);
	dc_avail(&g, h0, 1);
	rc |= dc_save(&g, "nested-indirect", 0x810);
	/* readable after writable, past the end of memory */
	dc_init(&g, 3, 0, 0);
	dc_desc(&g, 0, 0x400, 8, VQF_WRITE | VQF_NEXT, 1);
	dc_desc(&g, 16, 0x1fff0, 64, 0, 0);
	dc_avail(&g, h0, 1);
	rc |= dc_save(&g, "write-then-read", g.top);
	return rc;
}

/* ---- vsock_pkt ------------------------------------------------------------ */

enum { VP_PKT = 0, VP_CONNECT = 2, VP_HOST = 3, VP_RX = 4, VP_TIME = 6, VP_CLOSE = 7 };

/* cfg: seqpacket, cap 4, RST queue 4, default ports, buffer selector, timeouts */
static void vp_cfg(struct gbuf *b, bool seq, uint8_t buf_sel)
{
	const uint8_t c[8] = { seq, 3, 3, 0x80, buf_sel, 10, 10, 0 };

	put(b, c, sizeof(c));
}

/*
 * A templated guest packet: op, type; aimed at host program @host when
 * >= 0 (else guest port 5 → host port 0); flags; credit selectors
 * (buf_alloc 64 KiB, fwd_cnt "what I got"); payload; the chain split once
 * after the header; @answer for a CT_NEW_REQUEST.
 */
static void vp_pkt(struct gbuf *b, uint16_t op, uint16_t type, int host, uint8_t flags,
		   const char *payload, int answer)
{
	size_t n = payload ? strlen(payload) : 0;

	P8(b, VP_PKT);
	P8(b, 0);
	P16(b, n);
	P8(b, (uint8_t)(op | type << 3 | (host >= 0 ? 0x80 : 0)));
	P8(b, host >= 0 ? (uint8_t)host : 5);
	P8(b, flags);
	P8(b, 3 | 5 << 3);
	put(b, payload, n);
	P8(b, 1);
	P16(b, VSOCK_HDR_LEN);
	if (answer >= 0)
		P8(b, (uint8_t)answer);
}

static void vp_rx(struct gbuf *b, uint32_t cap, unsigned int rounds)
{
	P8(b, VP_RX);
	P32(b, cap);
	P8(b, (uint8_t)(rounds - 1));
	for (unsigned int i = 0; i < rounds; i++)
		P8(b, 0);
}

static void vp_host(struct gbuf *b, uint8_t host, uint8_t act, const char *bytes)
{
	size_t n = bytes ? strlen(bytes) : 0;

	P8(b, VP_HOST);
	P8(b, host);
	P8(b, act);
	P16(b, n);
	put(b, bytes, n);
}

static int gen_vsock_peer(void)
{
	struct gbuf b = { 0 };
	int rc;

	vp_cfg(&b, false, 4);
	vp_pkt(&b, VSOCK_OP_REQUEST, VSOCK_TYPE_STREAM, -1, 0, NULL, 1);
	vp_rx(&b, 4096, 1);
	vp_pkt(&b, VSOCK_OP_RW, VSOCK_TYPE_STREAM, 0, 0, "hello from the guest", -1);
	vp_host(&b, 0, 0x80 | 0x20, "hello from the host");
	vp_rx(&b, 4096, 3);
	vp_pkt(&b, VSOCK_OP_CREDIT_REQUEST, VSOCK_TYPE_STREAM, 0, 0, NULL, -1);
	vp_rx(&b, 4096, 1);
	vp_pkt(&b, VSOCK_OP_SHUTDOWN, VSOCK_TYPE_STREAM, 0, 3, NULL, -1);
	vp_host(&b, 0, 0x20 | 1, NULL);
	vp_rx(&b, 4096, 2);
	P8(&b, VP_TIME);
	P16(&b, 0xffff);
	vp_rx(&b, 4096, 2);
	rc = flush("vsock_pkt", "guest-connects", &b);
	free(b.p);
	return rc;
}

static int gen_vsock_local(void)
{
	struct gbuf b = { 0 };
	int rc;

	vp_cfg(&b, false, 3);
	P8(&b, VP_CONNECT);
	P8(&b, 7);
	vp_rx(&b, 4096, 1);
	vp_pkt(&b, VSOCK_OP_RESPONSE, VSOCK_TYPE_STREAM, 0, 0, NULL, -1);
	vp_host(&b, 0, 0x80 | 0x20, "data from a host program");
	vp_rx(&b, 30, 2);
	vp_pkt(&b, VSOCK_OP_RW, VSOCK_TYPE_STREAM, 0, 0, "reply", -1);
	P8(&b, VP_CLOSE);
	P8(&b, 0);
	vp_rx(&b, 4096, 1);
	vp_pkt(&b, VSOCK_OP_RST, VSOCK_TYPE_STREAM, 0, 0, NULL, -1);
	rc = flush("vsock_pkt", "host-connects", &b);
	/* the guest never answers: the connect deadline resets it */
	vp_cfg(&b, false, 4);
	P8(&b, VP_CONNECT);
	P8(&b, 9);
	vp_rx(&b, 4096, 1);
	P8(&b, VP_TIME);
	P16(&b, 0x1000);
	vp_rx(&b, 4096, 1);
	rc |= flush("vsock_pkt", "connect-timeout", &b);
	free(b.p);
	return rc;
}

static int gen_vsock_other(void)
{
	struct gbuf b = { 0 };
	int rc;

	vp_cfg(&b, true, 4);
	vp_pkt(&b, VSOCK_OP_REQUEST, VSOCK_TYPE_SEQPACKET, -1, 0, NULL, 1);
	vp_rx(&b, 4096, 1);
	vp_pkt(&b, VSOCK_OP_RW, VSOCK_TYPE_SEQPACKET, 0, 0, "first half ", -1);
	vp_pkt(&b, VSOCK_OP_RW, VSOCK_TYPE_SEQPACKET, 0, 3, "second half", -1);
	vp_host(&b, 0, 0x80 | 0x40, "one message from the host");
	vp_rx(&b, 60, 3);
	rc = flush("vsock_pkt", "seqpacket", &b);
	/* buf_alloc 7: the guest overruns our credit */
	vp_cfg(&b, false, 1);
	vp_pkt(&b, VSOCK_OP_REQUEST, VSOCK_TYPE_STREAM, -1, 0, NULL, 1);
	vp_rx(&b, 4096, 1);
	vp_pkt(&b, VSOCK_OP_RW, VSOCK_TYPE_STREAM, 0, 0, "more than seven bytes", -1);
	vp_rx(&b, 4096, 2);
	rc |= flush("vsock_pkt", "credit-overrun", &b);
	/* packets for no connection fill the RST queue; an unknown op; a raw header */
	vp_cfg(&b, false, 4);
	for (int i = 0; i < 6; i++)
		vp_pkt(&b, VSOCK_OP_RW, VSOCK_TYPE_STREAM, -1, 0, "x", -1);
	vp_pkt(&b, 0, VSOCK_TYPE_STREAM, -1, 0, NULL, -1);
	P8(&b, VP_PKT);
	P8(&b, 1);
	P16(&b, 0);
	for (unsigned int i = 0; i < VSOCK_HDR_LEN; i++)
		P8(&b, i);
	P8(&b, 0);
	vp_rx(&b, 4096, 8);
	rc |= flush("vsock_pkt", "junk", &b);
	free(b.p);
	return rc;
}

/* ---- text targets --------------------------------------------------------- */

static int gen_text(void)
{
	static const char *const lines[][2] = {
		{ "connect", "\x03" "CONNECT 1234\n" },
		{ "connect-lower-crlf", "\x01" "connect 52\r\nearly data" },
		{ "connect-max", "\x00" "CONNECT 4294967295\n" },
		{ "connect-overflow", "\x02" "CONNECT 4294967296\n" },
		{ "connect-zeros", "\x05" "CONNECT 0000000000000000000001\n" },
		{ "mixed-case", "\x04" "Connect 5\n" },
	};
	static const char *const specs[][2] = {
		{ "full", "socket=/run/vm3.sock,guest-cid=3,uds-path=/run/vm3.vsock,"
			  "tx-buffer-size=65536,queue-size=1024,groups=a+b" },
		{ "underscores", "socket=/a,guest_cid=0x10,uds_path=/b,queue_size=256" },
		{ "bad-cid", "socket=/a,guest-cid=2,uds-path=/b" },
		{ "no-value", "socket,uds-path=/b" },
		{ "forward", "socket=/a,uds-path=/b,forward-cid=1" },
	};
	static const char *const configs[][2] = {
		{ "two-vms", "vms:\n  - guest_cid: 3\n    socket: /run/vm3.sock\n"
			     "    uds_path: /run/vm3.vsock\n    tx_buffer_size: 65536\n"
			     "    queue_size: 1024\n    groups: default\n"
			     "  - guest-cid: 4\n    socket: /run/vm4.sock\n    uds-path: /run/vm4.vsock\n" },
		{ "flow-style", "{vms: [{socket: /a, uds_path: /b, guest_cid: 7}]}\n" },
		{ "anchors", "base: &b {socket: /a, uds_path: /b}\nvms: [*b]\n" },
		{ "not-a-list", "vms: 3\n" },
		{ "bad-yaml", "vms:\n  - socket: [\n" },
	};
	/* control: a mode byte (even: request line, odd: JSON), then the text */
	static const char *const controls[][2] = {
		{ "stats", "\x00" "stats\n" },
		{ "help-crlf", "\x00" "help\r\n" },
		{ "vm-add", "\x00" "vm add socket=/run/vm5.sock,uds-path=/run/vm5.vsock,guest-cid=5\n" },
		{ "vm-add-spaces", "\x00" "vm\tadd   socket=/a b,uds_path=/c  \n" },
		{ "vm-remove", "\x00" "vm remove 5" },
		{ "words-after", "\x00" "stats now\n" },
		{ "json-stats", "\xff"
				"{\"ok\":true,\"engine\":\"user\",\"version\":\"0.1.0\",\"pid\":4795,\"sandbox\":\"seccom"
				"p\",\"uid\":0,\"vms\":[{\"name\":\"cid3\",\"cid\":3,\"socket\":\"/run/vm3.sock\",\"uds_p"
				"ath\":\"/run/vm3.vsock\",\"groups\":\"default\",\"added_at_run_time\":false,\"responding"
				"\":true,\"frontend_connected\":true,\"sessions\":1,\"features_negotiated\":true,\"featur"
				"es\":\"0x130000002\",\"running\":true,\"failed\":false,\"rings\":[{\"name\":\"rx\",\"run"
				"ning\":true,\"size\":256,\"next_avail\":17},{\"name\":\"tx\",\"running\":true,\"size\":2"
				"56,\"next_avail\":9}],\"connections_open\":1,\"guest_to_host\":{\"packets\":9,\"bytes\":"
				"4096},\"host_to_guest\":{\"packets\":17,\"bytes\":65536},\"rst_sent\":0,\"credit_stalls\""
				":1,\"connections_opened\":1,\"errors\":{\"broken_rings\":0,\"bad_packets\":0,\"host_sock"
				"et\":0,\"refused_connects\":0,\"sibling_drops\":0},\"connections\":[{\"type\":\"stream\""
				",\"local_port\":1024,\"peer_port\":52,\"state\":\"established\",\"age_ms\":1500,\"bytes_"
				"to_host\":4096,\"bytes_from_host\":65536,\"buffered_to_host\":0,\"buffered_to_guest\":0}"
				"]}]}" },
		{ "json-kernel", "\xff" "{\"ok\":true,\"engine\":\"kernel\",\"vms\":[{\"socket\":"
				 "\"/run/vm.sock\",\"guest_cid\":3,\"running\":false}]}" },
		{ "json-escapes", "\x41" "[\"\\u00e9\\ud83d\\ude00\\n\\\"\\/\", -1.5e+3, 0, "
				  "18446744073709551615, 18446744073709551616, null, false, {}]" },
		{ "json-error", "\x21" "{\"ok\":false,\"error\":\"vm remove: no VM has the CID 9\"}" },
		{ "json-bad", "\x21" "{\"a\":[1,2,}" },
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++)
		rc |= save("control", controls[i][0], controls[i][1],
			   strlen(controls[i][1] + 1) + 1);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		rc |= save("hybrid_line", lines[i][0], lines[i][1],
			   strlen(lines[i][1] + 1) + 1);
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
		rc |= save_text("vm_spec", specs[i][0], specs[i][1]);
	for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
		rc |= save_text("config_file", configs[i][0], configs[i][1]);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	rc |= gen_mem_table();
	rc |= gen_desc_chain_ok();
	rc |= gen_desc_chain_bad();
	rc |= gen_vsock_peer();
	rc |= gen_vsock_local();
	rc |= gen_vsock_other();
	rc |= gen_text();
	rc |= gen_vu_msg();
	if (rc)
		fprintf(stderr, "gen_corpus: some seeds could not be made\n");
	return rc ? 1 : 0;
}
