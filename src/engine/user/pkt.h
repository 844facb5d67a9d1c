/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock packets (virtio spec "Socket Device", PROTOCOLS.md §2.2): the
 * 44-byte little-endian header, its private host-order copy, the checks a
 * guest packet must pass before any connection sees it, and the headers the
 * device sends back.
 *
 * Limits and invariants:
 * - A guest header is read once, from the chain into a struct pkt_hdr on
 *   our side (the guest may rewrite its buffers at any time; the copy is
 *   what we validated and what we act on).
 * - The header may be split across descriptors at any byte; payload
 *   iovecs point into the chain after byte 44 and cover exactly hdr.len.
 * - A payload larger than VSOCK_MAX_PKT_LEN (64 KiB, Linux's
 *   VIRTIO_VSOCK_MAX_PKT_BUF_SIZE) or longer than the bytes present, or
 *   scattered over more than the caller's iovec array, is refused.
 * - Nothing here allocates or logs; callers decide what a refusal costs.
 */
#ifndef ENGINE_USER_PKT_H
#define ENGINE_USER_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VSOCK_HDR_LEN 44u
#define VSOCK_MAX_PKT_LEN 65536u
#define VSOCK_CID_HOST 2u
/* Payload iovec arrays on the stack are this long; see pkt_parse(). */
#define PKT_MAX_IOV 128u

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

enum vsock_type {
	VSOCK_TYPE_STREAM = 1,
	VSOCK_TYPE_SEQPACKET = 2,
};

/* SHUTDOWN flags (values, as Linux names them). */
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u
#define VSOCK_SHUTDOWN_BOTH (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)
/* SEQPACKET RW flags. */
#define VSOCK_SEQ_EOM 1u
#define VSOCK_SEQ_EOR 2u

/* Host-order copy of struct virtio_vsock_hdr. */
struct pkt_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;        /* payload bytes after the header */
	uint16_t type;       /* enum vsock_type */
	uint16_t op;         /* enum vsock_op */
	uint32_t flags;      /* SHUTDOWN bits or SEQ_EOM/EOR */
	uint32_t buf_alloc;  /* sender's receive buffer for this flow */
	uint32_t fwd_cnt;    /* sender's free-running consumed count */
};

/* What to do with a guest packet, decided before any connection lookup. */
enum pkt_verdict {
	PKT_OK = 0,    /* well formed; route it */
	PKT_DROP,      /* drop silently (misaddressed) */
	PKT_RST,       /* malformed for its tuple: answer RST (unless it is one) */
};

/** pkt_hdr_decode() - wire bytes (little-endian) to a host-order header. */
void pkt_hdr_decode(const uint8_t raw[VSOCK_HDR_LEN], struct pkt_hdr *h);

/** pkt_hdr_encode() - host-order header to wire bytes (little-endian). */
void pkt_hdr_encode(const struct pkt_hdr *h, uint8_t raw[VSOCK_HDR_LEN]);

/**
 * pkt_iov_len() - total length of an iovec list.
 * @iov: the list
 * @niov: number of entries
 *
 * Return: the sum, saturated at SIZE_MAX (a guest cannot wrap it).
 */
size_t pkt_iov_len(const struct iovec *iov, size_t niov);

/**
 * pkt_iov_slice() - describe bytes [@off, @off + @len) of an iovec list.
 * @in: source list
 * @nin: its length
 * @off: first byte
 * @len: bytes wanted
 * @out: destination array (entries point into @in's memory)
 * @max_out: its capacity
 * @nout: entries written
 *
 * Zero-length source entries are skipped. Stops early when @in ends or
 * @out is full.
 * Return: the number of bytes covered by @out (≤ @len).
 */
size_t pkt_iov_slice(const struct iovec *in, size_t nin, size_t off, size_t len,
		     struct iovec *out, size_t max_out, size_t *nout);

/**
 * pkt_iov_to_buf() - copy bytes out of an iovec list.
 * @iov: source list
 * @niov: its length
 * @buf: destination
 * @len: bytes to copy
 *
 * Return: bytes copied (< @len when the list is shorter).
 */
size_t pkt_iov_to_buf(const struct iovec *iov, size_t niov, void *buf, size_t len);

/**
 * pkt_buf_to_iov() - copy bytes into an iovec list.
 * @iov: destination list
 * @niov: its length
 * @buf: source
 * @len: bytes to copy
 *
 * Return: bytes copied (< @len when the list is shorter).
 */
size_t pkt_buf_to_iov(const struct iovec *iov, size_t niov, const void *buf, size_t len);

/**
 * pkt_parse() - take a guest tx chain apart into header and payload.
 * @chain: the chain's readable buffers, in order
 * @nchain: number of entries
 * @h: receives the private header copy
 * @payload: receives iovecs covering exactly @h->len payload bytes
 * @max_payload: capacity of @payload (PKT_MAX_IOV is plenty for real guests)
 * @npayload: entries written to @payload
 *
 * Only the framing is checked here (virtio spec, Socket Device, "Device
 * Operation": the header comes first; len counts the payload after it). Field semantics
 * are pkt_validate()'s job.
 * Return: 0; -EBADMSG if the chain is shorter than the header; -EMSGSIZE if
 * len exceeds VSOCK_MAX_PKT_LEN or the bytes present after the header;
 * -E2BIG if the payload is scattered over more than @max_payload buffers.
 * On error @h is still filled when 44 bytes were present, so the caller
 * can answer with an RST for the tuple.
 */
int pkt_parse(const struct iovec *chain, size_t nchain, struct pkt_hdr *h,
	      struct iovec *payload, size_t max_payload, size_t *npayload);

/**
 * pkt_validate() - check a parsed guest header against the device rules.
 * @h: the header
 * @guest_cid: the CID this device's guest owns
 * @seqpacket: whether VIRTIO_VSOCK_F_SEQPACKET was negotiated
 *
 * Misaddressed packets (src_cid not the guest's, dst_cid not the host,
 * reserved upper CID bits set) are dropped silently, as Linux vhost does:
 * answering would let a guest make us talk as another CID. Unknown type or
 * op, payload on a control op, and flags a given op does not define get an
 * RST (virtio spec, Socket Device, "Receive and Transmit": a packet of
 * unknown type MUST be answered with RST).
 * Return: the verdict.
 */
enum pkt_verdict pkt_validate(const struct pkt_hdr *h, uint64_t guest_cid, bool seqpacket);

/**
 * pkt_reply_rst() - build the RST that answers a packet with no connection.
 * @in: the offending guest packet
 * @out: the reply (src/dst swapped, same type, no payload, no credit)
 *
 * Return: false when @in is itself an RST: an RST is never answered, or
 * two peers could bounce RSTs forever.
 */
bool pkt_reply_rst(const struct pkt_hdr *in, struct pkt_hdr *out);

/**
 * pkt_hdr_to_iov() - write a header at the start of a guest rx buffer.
 * @h: the header
 * @iov: the rx buffer (device-writable)
 * @niov: number of entries
 *
 * Return: 0, or -ENOBUFS if the buffer holds fewer than 44 bytes.
 */
int pkt_hdr_to_iov(const struct pkt_hdr *h, const struct iovec *iov, size_t niov);

/** pkt_op_name() - op name for logs. Return: a static string. */
const char *pkt_op_name(uint16_t op);

#endif
