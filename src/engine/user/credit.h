/* SPDX-License-Identifier: MIT */
/*
 * virtio-vsock credit (flow control, PROTOCOLS.md §2.3) for one connection,
 * seen from the device: tiny inline helpers, each testable alone.
 *
 * Two directions share the struct:
 * - guest → host (we receive): we advertise buf_alloc and fwd_cnt; rx_cnt
 *   counts payload accepted from the guest, fwd_cnt the part of it handed to
 *   the host socket. rx_cnt - fwd_cnt is what we hold in our buffer.
 * - host → guest (we send): tx_cnt counts payload sent; the guest's
 *   buf_alloc/fwd_cnt arrive in each of its packets.
 *
 * Invariants: every counter is a free-running u32 and all arithmetic is
 * modular, so wrap-around is normal operation. rx_cnt - fwd_cnt never
 * exceeds buf_alloc (credit_rx_fits() is checked before credit_rx_accept()).
 * The peer's fwd_cnt is only believed when it acknowledges bytes we did
 * send (tx_cnt - peer_fwd_cnt never grows by a peer's update).
 */
#ifndef ENGINE_USER_CREDIT_H
#define ENGINE_USER_CREDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/user/pkt.h"

struct credit {
	uint32_t buf_alloc;      /* our receive space, advertised to the guest */
	uint32_t rx_cnt;         /* payload bytes accepted from the guest */
	uint32_t fwd_cnt;        /* of those, bytes written to the host socket */
	uint32_t adv_fwd_cnt;    /* fwd_cnt as last carried by a packet to the guest */
	uint32_t tx_cnt;         /* payload bytes sent to the guest */
	uint32_t peer_buf_alloc; /* guest's receive space, from its last packet */
	uint32_t peer_fwd_cnt;   /* guest's consumed count, from its last packet */
};

/** credit_init() - fresh connection with @buf_alloc bytes of receive space. */
static inline void credit_init(struct credit *c, uint32_t buf_alloc)
{
	*c = (struct credit){ .buf_alloc = buf_alloc };
}

/**
 * credit_peer_free() - bytes we may still send to the guest.
 * @c: the credit state
 *
 * peer_buf_alloc - (tx_cnt - peer_fwd_cnt) in u32 arithmetic; when the guest
 * shrank buf_alloc below what is in flight the answer is 0, not a wrapped
 * huge number (the bug older Linux had).
 * Return: the credit in bytes.
 */
static inline uint32_t credit_peer_free(const struct credit *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/** credit_tx_sent() - account @n payload bytes sent to the guest. */
static inline void credit_tx_sent(struct credit *c, uint32_t n)
{
	c->tx_cnt += n;
}

/**
 * credit_peer_update() - take the credit fields of a guest packet.
 * @c: the credit state
 * @buf_alloc: the packet's buf_alloc
 * @fwd_cnt: the packet's fwd_cnt
 *
 * buf_alloc is the guest's to choose (0 just means "send nothing"). A
 * fwd_cnt that moves backwards or acknowledges bytes never sent is ignored:
 * believing it would corrupt in-flight accounting for the rest of the flow.
 * Return: false if @fwd_cnt was ignored.
 */
static inline bool credit_peer_update(struct credit *c, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	c->peer_buf_alloc = buf_alloc;
	if ((uint32_t)(fwd_cnt - c->peer_fwd_cnt) > (uint32_t)(c->tx_cnt - c->peer_fwd_cnt))
		return false;
	c->peer_fwd_cnt = fwd_cnt;
	return true;
}

/** credit_rx_queued() - Return: guest bytes accepted but not yet at the host. */
static inline uint32_t credit_rx_queued(const struct credit *c)
{
	return c->rx_cnt - c->fwd_cnt;
}

/**
 * credit_rx_fits() - whether an RW of @len bytes stays within our credit.
 * @c: the credit state
 * @len: payload length of the guest packet
 *
 * A guest that respects credit never fails this: its view of our free
 * space uses an fwd_cnt no newer than ours. Like Linux, a failure means the
 * guest overran us and gets an RST.
 * Return: true if the bytes fit in buf_alloc on top of what we hold.
 */
static inline bool credit_rx_fits(const struct credit *c, uint32_t len)
{
	return len <= c->buf_alloc - credit_rx_queued(c);
}

/** credit_rx_accept() - account @n bytes taken from the guest. */
static inline void credit_rx_accept(struct credit *c, uint32_t n)
{
	c->rx_cnt += n;
}

/** credit_rx_forwarded() - account @n held bytes written to the host. */
static inline void credit_rx_forwarded(struct credit *c, uint32_t n)
{
	c->fwd_cnt += n;
}

/**
 * credit_advertise() - note that a packet to the guest carries our counters.
 * @c: the credit state
 *
 * Return: the fwd_cnt to put in the header.
 */
static inline uint32_t credit_advertise(struct credit *c)
{
	c->adv_fwd_cnt = c->fwd_cnt;
	return c->fwd_cnt;
}

/**
 * credit_update_threshold() - free space below which the guest hears from us.
 * @buf_alloc: our receive space
 *
 * Half the buffer, at most one maximum packet (64 KiB), at least 1 byte.
 * Why: a guest whose view of our space drops below one full packet starts
 * sending short packets; updating at that point (Linux's own rule, with its
 * 256 KiB default) keeps packets full, and half the buffer keeps small
 * buffers from waiting on a last few bytes. The floor of 1 guarantees an
 * exhausted guest is always told when space returns.
 * Return: the threshold in bytes.
 */
static inline uint32_t credit_update_threshold(uint32_t buf_alloc)
{
	uint32_t t = buf_alloc / 2;

	if (t > VSOCK_MAX_PKT_LEN)
		t = VSOCK_MAX_PKT_LEN;
	return t ? t : 1;
}

/**
 * credit_update_due() - whether an unsolicited CREDIT_UPDATE is worth sending.
 * @c: the credit state
 *
 * Due when the guest's view of our free space (from the fwd_cnt we last
 * advertised) is below the threshold and an update would lift it to at
 * least the threshold. The second half stops a slow host from costing one
 * update per trickle of forwarded bytes.
 * Return: true if due.
 */
static inline bool credit_update_due(const struct credit *c)
{
	uint32_t thr = credit_update_threshold(c->buf_alloc);
	uint32_t seen_used = c->rx_cnt - c->adv_fwd_cnt;
	uint32_t seen_free = seen_used >= c->buf_alloc ? 0 : c->buf_alloc - seen_used;
	uint32_t real_free = c->buf_alloc - credit_rx_queued(c);

	return seen_free < thr && real_free >= thr;
}

#endif
