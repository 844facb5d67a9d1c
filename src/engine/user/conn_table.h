/* SPDX-License-Identifier: MIT */
/*
 * The connections of one guest (one device): lookup by (local port, peer
 * port, type), routing of validated guest packets, the RSTs owed for
 * packets that match no connection, the queue of connections with
 * something for the guest's rx ring, and port allocation for
 * host-initiated connections.
 *
 * Rules enforced here (PROTOCOLS.md §2.5, §6.3):
 * - misaddressed packets (src_cid not the guest's, dst_cid not the host)
 *   are dropped without a word; unknown type/op or bad flags get an RST;
 * - a packet for an unknown tuple gets an RST unless it is an RST (never
 *   answer an RST) or a REQUEST (the caller decides: accept or refuse);
 * - at most max_conns connections (a REQUEST beyond that gets an RST);
 * - RSTs owed without a connection wait in a bounded queue (rst_queue_len;
 *   the tx ring size is a good value): when it is full,
 *   conn_table_tx_blocked() tells the caller to stop taking tx packets
 *   until rx buffers drain it (virtio spec, Socket Device, "Virtqueue
 *   Flow Control"; Linux's queued_replies);
 * - a tuple is removed as soon as its connection is done, and ports for
 *   host-initiated connections rotate through the whole range, so a stale
 *   packet for a closed tuple finds no connection (and at worst earns an
 *   RST) instead of disturbing a newer one.
 *
 * Lookup is a chained hash keyed with a per-table secret, so a guest that
 * picks its ports cannot aim them all at one chain; the cap bounds a chain
 * anyway. Timers are the caller's: conn_table_next_deadline() and
 * conn_table_expire() scan all connections (O(n), n ≤ max_conns).
 *
 * The table owns its connections: a conn pointer is valid until a
 * conn_table_* call frees it, and on_free() (if set) is called just before.
 */
#ifndef ENGINE_USER_CONN_TABLE_H
#define ENGINE_USER_CONN_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/user/conn.h"
#include "engine/user/pkt.h"
#include "engine/user/stream.h"

#define CONN_TABLE_DEFAULT_MAX_CONNS 1024u
#define CONN_TABLE_MAX_CONNS_LIMIT 65536u
#define CONN_TABLE_DEFAULT_RST_QUEUE 128u
#define CONN_TABLE_DEFAULT_PORT_BASE (1u << 30) /* Firecracker's host ports */
#define CONN_TABLE_DEFAULT_PORT_COUNT (1u << 30)
#define CONN_TABLE_MAX_BUF_ALLOC (16u << 20)

struct conn_table_cfg {
	uint64_t guest_cid;
	uint32_t max_conns;          /* 1 .. CONN_TABLE_MAX_CONNS_LIMIT */
	uint32_t buf_alloc;          /* 1 .. CONN_TABLE_MAX_BUF_ALLOC */
	uint32_t rst_queue_len;      /* 1 .. 65536 */
	uint32_t port_base;          /* host-initiated ports: [base, base + count) */
	uint32_t port_count;         /* ≥ 1, range within u32 */
	uint32_t connect_timeout_ms; /* ≥ 1 */
	uint32_t close_timeout_ms;   /* ≥ 1 */
	bool seqpacket;              /* VIRTIO_VSOCK_F_SEQPACKET negotiated */
	uint64_t hash_seed;          /* 0: pick a random one */
	void (*on_free)(void *opaque, struct conn *c);
	void *opaque;
};

struct conn_table {
	struct conn_table_cfg cfg;
	struct conn_params par;
	struct conn_gather gather;   /* par.gather: see conn_table_tx_flush() */
	struct conn **buckets;
	uint32_t nbuckets;   /* a power of two */
	uint32_t count;
	struct conn *ready_head, *ready_tail;
	uint32_t ready_count;
	struct pkt_hdr *rst_q;
	uint32_t rst_head, rst_count;
	uint32_t next_port;
};

enum conn_table_rc {
	CT_DONE = 0,      /* handled (delivered, answered or dropped) */
	CT_NEW_REQUEST,   /* a guest REQUEST for a new tuple: accept or refuse it */
};

/** conn_table_cfg_default() - defaults for a guest with CID @guest_cid. */
void conn_table_cfg_default(struct conn_table_cfg *cfg, uint64_t guest_cid);

/**
 * conn_table_init() - an empty table.
 * @t: the table
 * @cfg: configuration (copied)
 *
 * Return: 0, -EINVAL for a value out of range, -ENOMEM.
 */
int conn_table_init(struct conn_table *t, const struct conn_table_cfg *cfg);

/** conn_table_fini() - free every connection (host streams closed, no RSTs sent). */
void conn_table_fini(struct conn_table *t);

/** conn_table_lookup() - Return: the connection for the tuple, or NULL. */
struct conn *conn_table_lookup(const struct conn_table *t, uint32_t local_port,
			       uint32_t peer_port, uint16_t type);

/**
 * conn_table_recv() - route one parsed guest packet.
 * @t: the table
 * @h: the private header copy
 * @payload: the payload iovecs from pkt_parse()
 * @npayload: their number
 * @now_ms: monotonic clock
 *
 * Return: CT_NEW_REQUEST when @h is a REQUEST for a tuple we do not have
 * and there is room: the caller connects the host side and calls
 * conn_table_accept() or conn_table_refuse(). CT_DONE otherwise.
 */
enum conn_table_rc conn_table_recv(struct conn_table *t, const struct pkt_hdr *h,
				   const struct iovec *payload, size_t npayload,
				   uint64_t now_ms);

/**
 * conn_table_recv_malformed() - a tx chain pkt_parse() refused.
 * @t: the table
 * @h: the header, when pkt_parse() could read one
 *
 * A known tuple is reset; otherwise an RST is owed (virtio: a malformed
 * packet must not be silently accepted; Linux resets the flow).
 */
void conn_table_recv_malformed(struct conn_table *t, const struct pkt_hdr *h);

/**
 * conn_table_accept() - admit a guest REQUEST whose host side is connected.
 * @t: the table
 * @req: the REQUEST conn_table_recv() returned CT_NEW_REQUEST for
 * @host: the connected host stream (owned by the table from now on, even
 *        on error)
 * @out: receives the connection (may be NULL)
 *
 * Return: 0; -EEXIST if the tuple exists; -EBUSY at the cap; -ENOMEM.
 * On error an RST is owed to the guest.
 */
int conn_table_accept(struct conn_table *t, const struct pkt_hdr *req,
		      const struct stream *host, struct conn **out);

/** conn_table_refuse() - answer a REQUEST with RST (host side unreachable). */
void conn_table_refuse(struct conn_table *t, const struct pkt_hdr *req);

/**
 * conn_table_alloc_port() - a free local port for a host-initiated connection.
 * @t: the table
 * @peer_port: the guest port it will connect to
 * @type: its type
 * @port: receives the port
 *
 * Round-robin over [port_base, port_base + port_count), wrapping, skipping
 * tuples in use and 0xFFFFFFFF (VMADDR_PORT_ANY).
 * Return: 0 or -EADDRINUSE.
 */
int conn_table_alloc_port(struct conn_table *t, uint32_t peer_port, uint16_t type,
			  uint32_t *port);

/**
 * conn_table_connect() - a host program asked for guest port @peer_port.
 * @t: the table
 * @peer_port: port from the CONNECT line
 * @host: the host stream (owned by the table from now on, even on error)
 * @now_ms: monotonic clock
 * @out: receives the connection (may be NULL)
 *
 * Return: 0 (a REQUEST to the guest is queued); -EBUSY at the cap;
 * -EADDRINUSE if no port is free; -ENOMEM.
 */
int conn_table_connect(struct conn_table *t, uint32_t peer_port, const struct stream *host,
		       uint64_t now_ms, struct conn **out);

/**
 * conn_table_connect_type() - conn_table_connect() for a connection of
 * @type (VSOCK_TYPE_STREAM, or VSOCK_TYPE_SEQPACKET for a host program on
 * the seqpacket hybrid socket; the caller checks the guest negotiated it).
 * @t: the table
 * @peer_port: port from the CONNECT line
 * @type: the vsock type
 * @host: the host stream (owned by the table from now on, even on error)
 * @now_ms: monotonic clock
 * @out: receives the connection (may be NULL)
 *
 * Return: as conn_table_connect().
 */
int conn_table_connect_type(struct conn_table *t, uint32_t peer_port, uint16_t type,
			    const struct stream *host, uint64_t now_ms, struct conn **out);

/**
 * conn_table_clear() - free every connection (host streams closed, no RSTs
 * sent) and forget owed RSTs; the table stays usable (device reset).
 * @t: the table
 */
void conn_table_clear(struct conn_table *t);

/**
 * conn_table_abort_all() - reset every connection: host streams closed, an
 * RST owed to the guest for each one it knows of (the daemon is leaving).
 * @t: the table
 */
void conn_table_abort_all(struct conn_table *t);

/**
 * conn_table_fill_rx() - the next packet for the guest, from any connection.
 * @t: the table
 * @rx: a device-writable rx buffer
 * @nrx: entries in @rx
 * @out: receives the header written
 * @len: receives the used length
 * @now_ms: monotonic clock
 *
 * Owed RSTs first, then connections in ready order (round-robin).
 * Return: 0 with a packet; -EAGAIN when nothing is pending; -ENOBUFS when
 * @rx is too small for what is pending (nothing written).
 */
int conn_table_fill_rx(struct conn_table *t, const struct iovec *rx, size_t nrx,
		       struct pkt_hdr *out, size_t *len, uint64_t now_ms);

/**
 * conn_table_fill_rxv() - conn_table_fill_rx() over one or more rx buffers:
 * an owed RST or a control packet takes the first, stream data as many as
 * one host read fills (conn_fill_rxv()).
 * @t: the table
 * @rb: the buffers (buf[0] given, more taken on demand)
 * @out: receives the header written into the first buffer
 * @now_ms: monotonic clock
 *
 * Return: buffers filled (>= 1, the first ones, all for one connection),
 * -EAGAIN when nothing is pending, -ENOBUFS when the first buffer is too
 * small for what is pending (nothing written). Buffers taken and not
 * filled are the caller's to return.
 */
int conn_table_fill_rxv(struct conn_table *t, struct conn_rxbufs *rb, struct pkt_hdr *out,
			uint64_t now_ms);

/**
 * conn_table_host_event() - the host stream of @c is readable and/or writable.
 * @t: the table
 * @c: the connection (may be freed by this call)
 * @readable: input or end of stream is pending
 * @writable: output space is available
 * @now_ms: monotonic clock
 */
void conn_table_host_event(struct conn_table *t, struct conn *c, bool readable, bool writable,
			   uint64_t now_ms);

/**
 * conn_table_settle() - after acting on @c directly (conn_close() ...): queue
 * it for rx if it has something to send, free it if it is done.
 * @t: the table
 * @c: the connection (may be freed by this call)
 */
void conn_table_settle(struct conn_table *t, struct conn *c);

/**
 * conn_table_tx_flush() - write the guest payload held back by
 * conn_table_recv() (consecutive RW packets of one connection go out in one
 * writev()). The caller must call it before it publishes the tx chains
 * those packets came in, and before anything but conn_table_recv() touches
 * the table.
 * @t: the table
 * @now_ms: monotonic clock
 */
void conn_table_tx_flush(struct conn_table *t, uint64_t now_ms);

/** conn_table_expire() - run conn_timeout() on every connection. */
void conn_table_expire(struct conn_table *t, uint64_t now_ms);

/** conn_table_next_deadline() - Return: the earliest deadline, 0 for none. */
uint64_t conn_table_next_deadline(const struct conn_table *t);

/** conn_table_tx_blocked() - Return: true while the RST queue is full. */
bool conn_table_tx_blocked(const struct conn_table *t);

/** conn_table_has_rx() - Return: whether conn_table_fill_rx() may produce a packet. */
bool conn_table_has_rx(const struct conn_table *t);

#endif
