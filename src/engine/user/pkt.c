// SPDX-License-Identifier: MIT
/*
 * virtio-vsock packet framing and validation (see pkt.h). Pure functions
 * over iovec lists: no allocation, no logging, no guest memory touched
 * except through the iovecs the caller hands in, each byte read once.
 */
#include "engine/user/pkt.h"

#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint16_t get_le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

void pkt_hdr_decode(const uint8_t raw[VSOCK_HDR_LEN], struct pkt_hdr *h)
{
	h->src_cid = get_le64(raw + 0);
	h->dst_cid = get_le64(raw + 8);
	h->src_port = get_le32(raw + 16);
	h->dst_port = get_le32(raw + 20);
	h->len = get_le32(raw + 24);
	h->type = get_le16(raw + 28);
	h->op = get_le16(raw + 30);
	h->flags = get_le32(raw + 32);
	h->buf_alloc = get_le32(raw + 36);
	h->fwd_cnt = get_le32(raw + 40);
}

void pkt_hdr_encode(const struct pkt_hdr *h, uint8_t raw[VSOCK_HDR_LEN])
{
	put_le64(raw + 0, h->src_cid);
	put_le64(raw + 8, h->dst_cid);
	put_le32(raw + 16, h->src_port);
	put_le32(raw + 20, h->dst_port);
	put_le32(raw + 24, h->len);
	put_le16(raw + 28, h->type);
	put_le16(raw + 30, h->op);
	put_le32(raw + 32, h->flags);
	put_le32(raw + 36, h->buf_alloc);
	put_le32(raw + 40, h->fwd_cnt);
}

size_t pkt_iov_len(const struct iovec *iov, size_t niov)
{
	size_t total = 0;

	for (size_t i = 0; i < niov; i++) {
		if (iov[i].iov_len > SIZE_MAX - total)
			return SIZE_MAX;
		total += iov[i].iov_len;
	}
	return total;
}

size_t pkt_iov_slice(const struct iovec *in, size_t nin, size_t off, size_t len,
		     struct iovec *out, size_t max_out, size_t *nout)
{
	size_t covered = 0, n = 0;

	for (size_t i = 0; i < nin && covered < len && n < max_out; i++) {
		size_t seg = in[i].iov_len;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		seg -= off;
		if (seg > len - covered)
			seg = len - covered;
		out[n].iov_base = (uint8_t *)in[i].iov_base + off;
		out[n].iov_len = seg;
		n++;
		covered += seg;
		off = 0;
	}
	*nout = n;
	return covered;
}

size_t pkt_iov_to_buf(const struct iovec *iov, size_t niov, void *buf, size_t len)
{
	uint8_t *dst = buf;
	size_t done = 0;

	for (size_t i = 0; i < niov && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		if (n) /* a zero-length entry may carry a NULL base */
			memcpy(dst + done, iov[i].iov_base, n);
		done += n;
	}
	return done;
}

size_t pkt_buf_to_iov(const struct iovec *iov, size_t niov, const void *buf, size_t len)
{
	const uint8_t *src = buf;
	size_t done = 0;

	for (size_t i = 0; i < niov && done < len; i++) {
		size_t n = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;

		if (n)
			memcpy(iov[i].iov_base, src + done, n);
		done += n;
	}
	return done;
}

int pkt_parse(const struct iovec *chain, size_t nchain, struct pkt_hdr *h,
	      struct iovec *payload, size_t max_payload, size_t *npayload)
{
	uint8_t raw[VSOCK_HDR_LEN];
	size_t total = pkt_iov_len(chain, nchain);

	*npayload = 0;
	/* virtio spec, Socket Device, "Device Operation": header first. */
	if (total < VSOCK_HDR_LEN)
		return -EBADMSG;
	/* One copy out of guest memory; everything below reads the copy. */
	pkt_iov_to_buf(chain, nchain, raw, sizeof(raw));
	pkt_hdr_decode(raw, h);
	/* len is the guest's word: bound it by policy and by what is there. */
	if (h->len > VSOCK_MAX_PKT_LEN || h->len > total - VSOCK_HDR_LEN)
		return -EMSGSIZE;
	if (pkt_iov_slice(chain, nchain, VSOCK_HDR_LEN, h->len, payload, max_payload, npayload) !=
	    h->len) {
		*npayload = 0;
		return -E2BIG;
	}
	return 0;
}

static bool cid_is_guest(uint64_t cid, uint64_t guest_cid)
{
	/* The upper 32 bits are reserved and zero (virtio spec, Socket Device). */
	return (cid >> 32) == 0 && cid == guest_cid;
}

/* Flags each op may carry (virtio spec, Socket Device: "Stream Sockets"
 * for SHUTDOWN, "Seqpacket Sockets" for EOM/EOR). */
static bool flags_ok(const struct pkt_hdr *h)
{
	switch (h->op) {
	case VSOCK_OP_SHUTDOWN:
		return (h->flags & ~VSOCK_SHUTDOWN_BOTH) == 0;
	case VSOCK_OP_RW:
		/* Linux ignores flags on STREAM data; so do we. */
		if (h->type == VSOCK_TYPE_STREAM)
			return true;
		return (h->flags & ~(VSOCK_SEQ_EOM | VSOCK_SEQ_EOR)) == 0;
	default:
		return h->flags == 0;
	}
}

enum pkt_verdict pkt_validate(const struct pkt_hdr *h, uint64_t guest_cid, bool seqpacket)
{
	/* Only correctly addressed packets are accepted (Linux vhost, §2.5). */
	if (!cid_is_guest(h->src_cid, guest_cid) || h->dst_cid != VSOCK_CID_HOST)
		return PKT_DROP;
	if (h->type != VSOCK_TYPE_STREAM && !(h->type == VSOCK_TYPE_SEQPACKET && seqpacket))
		return PKT_RST;
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return PKT_RST;
	/* Control ops carry no payload; a guest that attaches one is confused. */
	if (h->op != VSOCK_OP_RW && h->len != 0)
		return PKT_RST;
	if (!flags_ok(h))
		return PKT_RST;
	return PKT_OK;
}

bool pkt_reply_rst(const struct pkt_hdr *in, struct pkt_hdr *out)
{
	if (in->op == VSOCK_OP_RST)
		return false;
	*out = (struct pkt_hdr){
		.src_cid = in->dst_cid,
		.dst_cid = in->src_cid,
		.src_port = in->dst_port,
		.dst_port = in->src_port,
		.type = in->type,
		.op = VSOCK_OP_RST,
	};
	return true;
}

int pkt_hdr_to_iov(const struct pkt_hdr *h, const struct iovec *iov, size_t niov)
{
	uint8_t raw[VSOCK_HDR_LEN];

	if (pkt_iov_len(iov, niov) < VSOCK_HDR_LEN)
		return -ENOBUFS;
	pkt_hdr_encode(h, raw);
	pkt_buf_to_iov(iov, niov, raw, sizeof(raw));
	return 0;
}

const char *pkt_op_name(uint16_t op)
{
	static const char *const names[] = {
		[VSOCK_OP_INVALID] = "INVALID",
		[VSOCK_OP_REQUEST] = "REQUEST",
		[VSOCK_OP_RESPONSE] = "RESPONSE",
		[VSOCK_OP_RST] = "RST",
		[VSOCK_OP_SHUTDOWN] = "SHUTDOWN",
		[VSOCK_OP_RW] = "RW",
		[VSOCK_OP_CREDIT_UPDATE] = "CREDIT_UPDATE",
		[VSOCK_OP_CREDIT_REQUEST] = "CREDIT_REQUEST",
	};

	if (op < sizeof(names) / sizeof(names[0]))
		return names[op];
	return "UNKNOWN";
}
