/* SPDX-License-Identifier: MIT */
/*
 * One virtio-vsock connection of the userspace engine, between a guest
 * socket and a host stream (hybrid vsock: a Unix socket). Pure state
 * machine: no rings, no event loop, no clock; the caller passes packets,
 * readiness and the time in, and takes packets for the guest out.
 *
 * Shape (Linux virtio_transport_common): conn_recv() dispatches on the
 * state into conn_recv_<state>(), each a switch on the op; anything out of
 * place takes the single reset path (an RST to the guest, host stream
 * closed). Half-close is bits (local_shut / peer_shut), not states.
 *
 * States (PROTOCOLS.md §2.5):
 *   LOCAL_INIT   host connected via CONNECT; our REQUEST to the guest is
 *                pending or sent; RESPONSE → ESTABLISHED (and "OK <port>\n"
 *                to the host), RST or the connect deadline → gone.
 *   PEER_INIT    guest REQUEST accepted, host stream connected; sending
 *                the RESPONSE moves to ESTABLISHED.
 *   ESTABLISHED  data both ways, credit, SHUTDOWN bits.
 *   CLOSING      a close is under way: the guest said both SHUTDOWN bits
 *                (we flush to the host, then RST), or we did (we wait for
 *                the guest's RST). The close deadline ends in RST.
 *   CLOSED       host stream closed; at most an RST left to send.
 *
 * Guest → host: RW payload is written to the host straight from the
 * guest's buffers; what the host cannot take now is copied to a buffer
 * allocated only while bytes wait and never larger than buf_alloc (plus
 * the hybrid "OK" line). A guest that overruns our credit gets an RST.
 * fwd_cnt moves when bytes reach the host. SEQPACKET messages are sent to
 * the host whole, one per EOM.
 *
 * Host → guest: pending control packets first (rxops bitmask, in the
 * order RST (alone), RESPONSE, REQUEST, CREDIT_UPDATE, SHUTDOWN), then data
 * read from the host straight into the guest's rx buffers (one readv may
 * fill several, each a packet), never more than the guest's credit, the
 * buffer, or 64 KiB per packet. SEQPACKET messages larger
 * than that are split; only the last fragment carries EOM/EOR.
 *
 * Bounds: per connection at most buf_alloc (+16) bytes toward the host,
 * one message per byte of it waiting for a SEQPACKET host, and one
 * host message (≤ min(buf_alloc, guest buf_alloc)) being fragmented toward
 * the guest. Control replies coalesce in bits, so CREDIT_REQUEST floods
 * cost nothing.
 *
 * Not thread-safe: one connection belongs to one event loop.
 */
#ifndef ENGINE_USER_CONN_H
#define ENGINE_USER_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/user/credit.h"
#include "engine/user/pkt.h"
#include "engine/user/stream.h"

#define CONN_DEFAULT_BUF_ALLOC (256u * 1024) /* Linux's vsock default: the guest's send window */
#define CONN_DEFAULT_CONNECT_TIMEOUT_MS 2000u /* Firecracker's REQUEST timeout */
#define CONN_DEFAULT_CLOSE_TIMEOUT_MS 8000u   /* Linux's VSOCK_CLOSE_TIMEOUT */
/*
 * Complete guest messages held for a SEQPACKET host that is not reading:
 * their ring starts this big and doubles as needed. The guest's credit
 * bounds it (an empty message is dropped, so at most one message per byte
 * held); a fixed limit would reset a guest that stays within its credit.
 */
#define CONN_SEQ_MIN_MSGS 16u
/* The most of the guest's buffer size a host AF_VSOCK socket takes on. */
#define CONN_HOST_BUF_MAX (16u << 20)
/* "OK 4294967295\n" fits. */
#define CONN_PREAMBLE_MAX 16u

enum conn_state {
	CONN_LOCAL_INIT,
	CONN_PEER_INIT,
	CONN_ESTABLISHED,
	CONN_CLOSING,
	CONN_CLOSED,
};

/* Pending control packets to the guest (rust-vmm's rxops). */
#define CONN_RXOP_RST (1u << 0) /* exclusive: scheduling it clears the rest */
#define CONN_RXOP_RESPONSE (1u << 1)
#define CONN_RXOP_REQUEST (1u << 2)
#define CONN_RXOP_CREDIT_UPDATE (1u << 3)
#define CONN_RXOP_SHUTDOWN (1u << 4)

/*
 * Guest → host stream payload held back while the tx ring is drained, so
 * that the consecutive RW packets of one connection reach its host socket
 * in one writev() instead of one system call (and one wake-up of the host
 * program) per packet. The payload stays in guest memory: its chains are
 * pushed but not published until conn_gather_flush() has run (the device
 * flushes before it publishes the tx ring). Bounded by the connection's
 * credit and by CONN_GATHER_IOV entries.
 */
#define CONN_GATHER_IOV 64u

struct conn_gather {
	struct conn *c;                     /* whose bytes; NULL when empty */
	struct iovec iov[CONN_GATHER_IOV];
	unsigned int niov;
	uint32_t len;
};

/* Shared by every connection of one device. */
struct conn_params {
	uint64_t guest_cid;
	uint32_t buf_alloc;          /* our receive space per connection (1 .. 16 MiB) */
	uint32_t connect_timeout_ms; /* LOCAL_INIT: guest must answer our REQUEST */
	uint32_t close_timeout_ms;   /* CLOSING: then RST */
	struct conn_gather *gather;  /* NULL: every RW packet is written on its own */
};

/* Guest bytes the host has not taken yet: [off, off + len) of data. */
struct conn_txbuf {
	uint8_t *data; /* NULL while empty */
	uint32_t cap;
	uint32_t off;
	uint32_t len;
	uint32_t pre;  /* leading bytes that are our "OK" line, not guest payload */
};

/* A queued message's length (< CONN_TABLE_MAX_BUF_ALLOC + 16), or'd with: */
#define CONN_SEQ_EOR 0x80000000u /* the message ends a record */

/* SEQPACKET guest → host: the complete messages in the txbuf, in order. */
struct conn_seq_in {
	uint32_t *msgs; /* ring of cap entries; NULL while none waits */
	uint32_t cap;
	uint32_t head;
	uint32_t count;
	uint32_t partial; /* bytes of the unfinished message at the txbuf's tail */
};

/* SEQPACKET host → guest: one message too big for one rx buffer. */
struct conn_seq_out {
	uint8_t *data; /* NULL when no message is being split */
	uint32_t len;
	uint32_t off;
	bool eor;
};

struct conn {
	/* Fields are private to conn.c and conn_table.c; use the accessors. */
	const struct conn_params *par;
	struct stream host;
	uint32_t local_port;   /* our side of the tuple (guest's dst_port) */
	uint32_t peer_port;    /* the guest's port */
	uint16_t type;         /* enum vsock_type */
	enum conn_state state;
	uint32_t rxops;        /* CONN_RXOP_* */
	uint8_t local_shut;    /* VSOCK_SHUTDOWN_* we announced or will */
	uint8_t peer_shut;     /* VSOCK_SHUTDOWN_* the guest announced */
	bool host_wr_shut;     /* shutdown_wr() done on the host stream */
	bool host_rd_shut;     /* shutdown_rd() done on the host stream */
	uint32_t host_buf_size; /* last set_buffer_size() on the host stream; 0: none */
	bool host_readable;    /* host said readable and no read hit -EAGAIN since */
	bool host_bulk;        /* the last host read filled more than one buffer: batch the next */
	bool announced;        /* the guest has heard of this connection */
	bool no_ok;            /* host-initiated without a CONNECT line (forwarding):
				  no "OK <port>" line when the guest accepts */
	uint64_t deadline_ms;  /* 0 = none; else when conn_timeout() acts */
	struct credit cr;
	struct conn_txbuf tx;
	struct conn_seq_in seq_in;
	struct conn_seq_out seq_out;
	/* conn_table linkage */
	struct conn *hnext;
	struct conn *rprev, *rnext;
	bool on_ready;
};

/**
 * conn_new_peer() - a connection for an accepted guest REQUEST.
 * @par: device parameters (must outlive the connection)
 * @req: the guest's REQUEST (validated by pkt_validate())
 * @host: the connected host stream; the connection owns it from now on
 *
 * Starts in PEER_INIT with a RESPONSE pending; the guest's credit is taken
 * from @req.
 * Return: the connection, or NULL (out of memory; @host is then closed).
 */
struct conn *conn_new_peer(const struct conn_params *par, const struct pkt_hdr *req,
			   const struct stream *host);

/**
 * conn_new_local() - a connection the host asked for (hybrid CONNECT).
 * @par: device parameters
 * @host: the host stream that sent CONNECT; owned from now on
 * @type: VSOCK_TYPE_STREAM or VSOCK_TYPE_SEQPACKET (the "OK" line is then
 *        the first message to the host)
 * @local_port: port allocated on our side
 * @peer_port: the guest port from CONNECT
 * @now_ms: the caller's monotonic clock
 *
 * Starts in LOCAL_INIT with a REQUEST pending and the connect deadline set.
 * Return: the connection, or NULL (out of memory; @host is then closed).
 */
struct conn *conn_new_local(const struct conn_params *par, const struct stream *host,
			    uint16_t type, uint32_t local_port, uint32_t peer_port,
			    uint64_t now_ms);

/** conn_free() - close the host stream and free everything. */
void conn_free(struct conn *c);

/**
 * conn_recv() - a guest packet for this connection (guest → host).
 * @c: the connection (its tuple matches @h)
 * @h: the validated private header copy
 * @payload: exactly @h->len payload bytes, in guest memory
 * @npayload: entries in @payload
 * @now_ms: monotonic clock
 *
 * Return: 0, or the negative errno for which the connection was reset (an
 * RST is then pending): -EPROTO (op not allowed in this state), -ENOBUFS
 * (credit overrun), -ENOMEM, or a host stream error.
 */
int conn_recv(struct conn *c, const struct pkt_hdr *h, const struct iovec *payload,
	      size_t npayload, uint64_t now_ms);

/**
 * conn_fill_rx() - the next packet for the guest (host → guest).
 * @c: the connection
 * @rx: a device-writable guest rx buffer
 * @nrx: entries in @rx
 * @out: receives the header written at the start of @rx
 * @len: receives the bytes written (44 + payload): the used length
 * @now_ms: monotonic clock
 *
 * Return: 0 with a packet in @rx; -EAGAIN if there is nothing to send now;
 * -ENOBUFS if @rx holds fewer than 44 bytes, or only data is pending and
 * not one payload byte fits (nothing written either way).
 */
int conn_fill_rx(struct conn *c, const struct iovec *rx, size_t nrx, struct pkt_hdr *out,
		 size_t *len, uint64_t now_ms);

/* conn_fill_rxv(): most extra buffers one host read may fill, and iovecs it may use. */
#define CONN_RXV_MAX 64u
#define CONN_RXV_IOV 256u

/* One guest rx buffer for conn_fill_rxv(). */
struct conn_rxbuf {
	const struct iovec *iov; /* device-writable */
	size_t niov;
	size_t len;              /* out: used length (44 + payload), 0 when unused */
};

/* The rx buffers of one conn_fill_rxv(): the first given, more taken on demand. */
struct conn_rxbufs {
	struct conn_rxbuf *buf;  /* buf[0] is given; more() appends */
	unsigned int n;          /* buffers taken so far (>= 1) */
	unsigned int max;        /* capacity of @buf */
	/* take one more buffer into buf[n]; false when there is none (may still count it) */
	bool (*more)(struct conn_rxbufs *rb);
	void *ctx;               /* the caller's */
};

/**
 * conn_fill_rxv() - conn_fill_rx() over one or more rx buffers.
 * @c: the connection
 * @rb: the buffers; more() is called only to plan a host read
 * @out: receives the header written into the first buffer
 * @now_ms: monotonic clock
 *
 * A control packet or SEQPACKET data takes the first buffer. Stream data
 * from a host that filled its last read takes further buffers, as the
 * guest's credit allows (up to CONN_RXV_MAX more), and one readv() puts the
 * data straight into their payload areas, each buffer a packet of its own.
 * Return: buffers filled (>= 1, always buf[0..n)), -EAGAIN or -ENOBUFS as
 * conn_fill_rx(). Buffers taken and not filled are the caller's to return.
 */
int conn_fill_rxv(struct conn *c, struct conn_rxbufs *rb, struct pkt_hdr *out, uint64_t now_ms);

/**
 * conn_flush() - the host stream is writable: push buffered guest bytes.
 * @c: the connection
 * @now_ms: monotonic clock
 *
 * Return: 0, or the negative errno for which the connection was reset.
 */
int conn_flush(struct conn *c, uint64_t now_ms);

/**
 * conn_gather_continues() - Return: whether guest packet @h is stream data
 * for the connection whose payload @g holds (it may join it); false when
 * @g is empty.
 */
bool conn_gather_continues(const struct conn_gather *g, const struct pkt_hdr *h);

/**
 * conn_gather_flush() - write what @g holds to its connection's host
 * socket in one writev(); what the socket does not take is copied to the
 * connection's buffer, as for a single packet. Leaves @g empty.
 * @g: the gather
 * @now_ms: monotonic clock
 *
 * Return: the connection written to (for the caller to settle: it may have
 * been reset, or owe a credit update), or NULL when @g was empty.
 */
struct conn *conn_gather_flush(struct conn_gather *g, uint64_t now_ms);

/** conn_host_readable() - the host stream has data (or end of stream). */
void conn_host_readable(struct conn *c);

/**
 * conn_close() - close from our side (device going away, policy).
 * @c: the connection
 * @now_ms: monotonic clock
 *
 * ESTABLISHED: SHUTDOWN (both bits) to the guest and wait for its RST until
 * the close deadline; any other state: reset.
 */
void conn_close(struct conn *c, uint64_t now_ms);

/**
 * conn_abort() - reset now (malformed packet for this tuple, device error).
 * @c: the connection
 */
void conn_abort(struct conn *c);

/**
 * conn_timeout() - act on the deadline if it has passed.
 * @c: the connection
 * @now_ms: monotonic clock
 *
 * LOCAL_INIT past the connect deadline and CLOSING past the close deadline
 * are reset (an RST goes to the guest if it ever heard of the connection).
 * Return: true if the deadline had passed.
 */
bool conn_timeout(struct conn *c, uint64_t now_ms);

/** conn_deadline() - Return: when conn_timeout() must be called; 0 for never. */
uint64_t conn_deadline(const struct conn *c);

/** conn_may_read_host() - Return: whether host data could go to the guest now. */
bool conn_may_read_host(const struct conn *c);

/** conn_wants_host_read() - Return: whether to watch the host stream for input. */
bool conn_wants_host_read(const struct conn *c);

/** conn_wants_host_write() - Return: whether to watch the host stream for output. */
bool conn_wants_host_write(const struct conn *c);

/** conn_wants_rx() - Return: whether conn_fill_rx() has something to send. */
bool conn_wants_rx(const struct conn *c);

/** conn_is_done() - Return: whether the connection can be freed. */
bool conn_is_done(const struct conn *c);

/**
 * conn_host_ctx() - the ctx of the connection's host stream, for the
 * stream's owner to find its own state from a connection.
 * @c: the connection
 *
 * Return: host.ctx, or NULL once the host stream is closed.
 */
void *conn_host_ctx(const struct conn *c);

/** conn_state_name() - Return: the state's name, for logs. */
const char *conn_state_name(enum conn_state s);

#endif
