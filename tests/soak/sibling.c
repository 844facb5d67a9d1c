// SPDX-License-Identifier: MIT
/*
 * Sibling streams of a soak VM (soak.h): VM i sends to VM i + 1 (mod n)
 * through the daemon's VM-to-VM routing, one stream at a time. The stream
 * describes itself (a 16-byte header: magic, seed, length), so the
 * receiver, on another thread, checks every byte without being told
 * anything else; at the end of the stream it answers with what it counted
 * (length and FNV-1a of the payload) and closes, and the sender compares.
 *
 * Neither side blocks on the other: the sender's connect and the
 * receiver's close are answered in later steps, and a stream fits the
 * receiver driver's buffer (256 KiB), so the sender sends it whole and
 * then only polls for the answer, while the receiver reads whenever its
 * thread comes round.
 * A stream is "cut" (not an error) when the receiver's front end went
 * away meanwhile: the epoch of that VM changed. The receiver cannot tell
 * from its own clock whether a stream began before the sender's last
 * reconnect (the REQUEST may wait in its ring while the sender goes and
 * comes back), so the header carries the sender's epoch; and since a
 * sender has one stream at a time, a second one arriving means that the
 * one held was abandoned.
 */
#include <errno.h>
#include <string.h>

#include "soak.h"

#define SIB_MAGIC 0x534f414bu   /* "SOAK" */
#define SIB_ACK 0x41434b21u     /* "ACK!" */
#define SIB_HDR 16u
#define SIB_MAX_BYTES (200u * 1024)

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static struct soak_vm *next_vm(struct soak_vm *v)
{
	return &v->s->vm[(v->idx + 1) % v->s->nvms];
}

static struct soak_vm *prev_vm(struct soak_vm *v)
{
	return &v->s->vm[(v->idx + v->s->nvms - 1) % v->s->nvms];
}

/* A failure that the receiver's reconnect explains is a cut; else an error. */
static int tx_end(struct soak_vm *v, int err, const char *what)
{
	struct soak_sib_tx *t = &v->stx;
	bool cut = atomic_load(&next_vm(v)->epoch) != t->peer_epoch;

	if (t->c)
		tfe_vsock_reset(&v->g.vs, t->c);
	t->c = NULL;
	if (!cut)
		return soak_fail(v, "sibling stream to VM %u: %s: %s", next_vm(v)->idx, what,
				 strerror(-err));
	v->n.cut[SOAK_SIBLING]++;
	return 0;
}

/*
 * Ask for a connection; the answer comes in a later step. Waiting for it
 * here would stall this VM's own receiver for as long as the peer takes:
 * up to SOAK_TIMEOUT_MS when the peer's front end goes away with the
 * REQUEST unread, which made the previous VM's stream go unanswered.
 */
static int tx_open(struct soak_vm *v)
{
	uint32_t port = soak_next_port(v);
	struct soak_sib_tx *t = &v->stx;
	struct soak_vm *peer = next_vm(v);
	int rc;

	memset(t, 0, sizeof(*t));
	t->peer_epoch = atomic_load(&peer->epoch);
	if (t->peer_epoch & 1)
		return 0; /* its front end is away: try again later */
	rc = tfe_vsock_connect_start(&v->g.vs, v->s->h.cid[peer->idx], SOAK_GP_SIB, port, &t->c);
	if (rc < 0)
		return tx_end(v, rc, "connect");
	t->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	return 1;
}

/* Connected: send the whole stream (it fits the receiver's credit), then half-close. */
static int tx_send(struct soak_vm *v)
{
	uint32_t seed = soak_next_seed(v);
	struct soak_sib_tx *t = &v->stx;
	uint8_t hdr[SIB_HDR] = { 0 };
	int rc;

	t->len = uh_rand(&v->rnd) % (SIB_MAX_BYTES - SIB_HDR);
	put32(hdr, SIB_MAGIC);
	put32(hdr + 4, seed);
	put32(hdr + 8, t->len);
	put32(hdr + 12, atomic_load(&v->epoch));
	rc = tfe_vsock_send_all(&v->g.vs, t->c, hdr, SIB_HDR, SOAK_TIMEOUT_MS);
	t->fnv = UH_FNV_INIT;
	for (uint32_t off = 0; rc == 0 && off < t->len; off += SOAK_IO_MAX) {
		uint32_t n = t->len - off < SOAK_IO_MAX ? t->len - off : SOAK_IO_MAX;

		uh_fill(v->wbuf, seed, off, n);
		t->fnv = uh_fnv(t->fnv, v->wbuf, n);
		rc = tfe_vsock_send_all(&v->g.vs, t->c, v->wbuf, n, SOAK_TIMEOUT_MS);
	}
	if (rc == 0)
		rc = tfe_vsock_shutdown(&v->g.vs, t->c, TFE_VSOCK_SHUTDOWN_SEND);
	if (rc < 0)
		return tx_end(v, rc, "send");
	t->sent = true;
	t->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	return 1;
}

/* Waiting for the answer to the REQUEST. */
static int tx_connecting(struct soak_vm *v)
{
	struct soak_sib_tx *t = &v->stx;

	if (t->c->state == TFE_CONN_ESTABLISHED)
		return tx_send(v);
	if (t->c->state != TFE_CONN_CONNECTING)
		return tx_end(v, t->c->error ? t->c->error : -ECONNREFUSED, "connect");
	return tfe_remaining_ms(t->deadline) == 0 ? tx_end(v, -ETIMEDOUT, "connect") : 0;
}

/* The receiver's answer and its close: the stream counts when they match. */
static int tx_done(struct soak_vm *v)
{
	struct soak_sib_tx *t = &v->stx;
	uint64_t fnv;
	int rc;

	memcpy(&fnv, t->ack + 8, sizeof(fnv));
	if (t->ack_len != SIB_HDR || get32(t->ack) != SIB_ACK || get32(t->ack + 4) != t->len ||
	    fnv != t->fnv)
		return tx_end(v, -EBADMSG, "the receiver counted something else");
	rc = tfe_vsock_close(&v->g.vs, t->c, SOAK_TIMEOUT_MS);
	t->c = NULL;
	if (rc < 0)
		return tx_end(v, rc, "close");
	v->n.conns[SOAK_SIBLING]++;
	v->n.sib += t->len;
	return 1;
}

int soak_sib_tx_step(struct soak_vm *v, bool stopping)
{
	struct soak_sib_tx *t = &v->stx;
	ssize_t r;

	if (!t->c)
		return stopping || v->s->nvms < 2 ? 0 : tx_open(v);
	if (atomic_load(&next_vm(v)->epoch) != t->peer_epoch)
		return tx_end(v, -ECONNRESET, "cut");
	if (!t->sent)
		return tx_connecting(v);
	r = tfe_vsock_recv(&v->g.vs, t->c, t->ack + t->ack_len,
			   t->ack_len < SIB_HDR ? SIB_HDR - t->ack_len : 1);
	if (r > 0 && t->ack_len + (size_t)r > SIB_HDR)
		return tx_end(v, -EPROTO, "more than the answer");
	if (r > 0) {
		t->ack_len += (unsigned int)r;
		t->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
		return 1;
	}
	if (r == 0)
		return tx_done(v);
	if (r != -EAGAIN)
		return tx_end(v, (int)r, "waiting for the answer");
	return tfe_remaining_ms(t->deadline) == 0 ? tx_end(v, -ETIMEDOUT, "no answer") : 0;
}

/* A front-end reconnect of this VM: the stream goes with the guest. */
void soak_sib_cut(struct soak_vm *v)
{
	if (v->stx.c)
		v->n.cut[SOAK_SIBLING]++;
	v->stx.c = NULL;
	v->srx.c = NULL;
}

/* ---- receiving ---- */

static int rx_drop(struct soak_vm *v)
{
	tfe_vsock_reset(&v->g.vs, v->srx.c);
	v->srx.c = NULL;
	return 0;
}

/*
 * Whether the sender reconnected since it began the stream held: its epoch
 * in the header says; before the header, any reconnect since the last
 * stream that ended here counts.
 */
static bool rx_stale(struct soak_vm *v)
{
	struct soak_sib_rx *x = &v->srx;
	unsigned int now = atomic_load(&prev_vm(v)->epoch);

	return x->hdr_len == SIB_HDR ? get32(x->hdr + 12) != now : now != x->ref_epoch;
}

/* Another stream from the sender waits to be accepted: the one held was abandoned. */
static bool rx_superseded(const struct soak_vm *v)
{
	for (unsigned int i = 0; i < TFE_VSOCK_MAX_CONNS; i++) {
		const struct tfe_vsock_conn *c = &v->g.vs.conns[i];

		if (c->state != TFE_CONN_FREE && c->incoming && !c->accepted &&
		    c->local_port == SOAK_GP_SIB)
			return true;
	}
	return false;
}

/* Is source port @a later than @b in the sender's wrapping sequence (soak_next_port())? */
static bool port_later(uint32_t a, uint32_t b)
{
	const uint32_t span = SOAK_PORT_LAST - SOAK_PORT_FIRST + 1;
	uint32_t d = (a + span - b) % span;

	return d != 0 && d < span / 2;
}

/*
 * Accept the sender's latest stream and reset any older one still waiting:
 * one the sender abandoned when its own front end went away is never
 * written to, and the driver hands out waiting streams by slot, not by age,
 * so taking the older one first would make the newer look superseded.
 */
static bool rx_accept(struct soak_vm *v)
{
	struct tfe_vsock_conn *c, *best = NULL;

	while (tfe_vsock_accept(&v->g.vs, SOAK_GP_SIB, 0, &c) == 0) {
		if (best && !port_later(c->peer_port, best->peer_port)) {
			tfe_vsock_reset(&v->g.vs, c);
			continue;
		}
		if (best)
			tfe_vsock_reset(&v->g.vs, best);
		best = c;
	}
	v->srx.c = best;
	return best != NULL;
}

/* The sender's failures are its to count; here only the unexplained ones are errors. */
static int rx_fail(struct soak_vm *v, const char *what)
{
	struct soak_sib_rx *x = &v->srx;

	if (rx_stale(v))
		return rx_drop(v);
	rx_drop(v);
	return soak_fail(v, "sibling stream from VM %u (seed %#x, %llu of %u bytes): %s",
			 prev_vm(v)->idx, x->seed, (unsigned long long)x->got, x->len, what);
}

/* Take @n received bytes: the header first, then payload checked against it. */
static int rx_take(struct soak_vm *v, const uint8_t *buf, size_t n)
{
	struct soak_sib_rx *x = &v->srx;
	size_t h = x->hdr_len < SIB_HDR ? SIB_HDR - x->hdr_len : 0;

	h = h < n ? h : n;
	memcpy(x->hdr + x->hdr_len, buf, h);
	x->hdr_len += (unsigned int)h;
	if (h && x->hdr_len == SIB_HDR) {
		x->seed = get32(x->hdr + 4);
		x->len = get32(x->hdr + 8);
		if (get32(x->hdr) != SIB_MAGIC || x->len > SIB_MAX_BYTES)
			return rx_fail(v, "bad header");
	}
	buf += h;
	n -= h;
	if (n && (x->got + n > x->len || uh_check(buf, x->seed, x->got, n) != n))
		return rx_fail(v, "wrong or extra byte");
	x->fnv = uh_fnv(x->fnv, buf, n);
	x->got += n;
	return 1;
}

/*
 * End of stream: answer with what was counted and start the close; the
 * sender's RST is awaited in later steps (rx_closing()), not here, for the
 * same reason as tx_open() does not wait.
 */
static int rx_end(struct soak_vm *v)
{
	struct soak_sib_rx *x = &v->srx;
	uint8_t ack[SIB_HDR];
	int rc;

	if (x->hdr_len != SIB_HDR || x->got != x->len)
		return rx_fail(v, "ended early");
	put32(ack, SIB_ACK);
	put32(ack + 4, x->len);
	memcpy(ack + 8, &x->fnv, sizeof(x->fnv));
	rc = tfe_vsock_send_all(&v->g.vs, x->c, ack, sizeof(ack), SOAK_TIMEOUT_MS);
	if (rc == 0)
		rc = tfe_vsock_close_start(&v->g.vs, x->c);
	if (rc < 0)
		return rx_fail(v, "sending the answer");
	x->closing = true;
	x->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	return 1;
}

static int rx_closing(struct soak_vm *v)
{
	struct soak_sib_rx *x = &v->srx;
	bool stale = rx_stale(v); /* the sender went away: no RST will come */
	int rc = 0;

	if (!stale && x->c->state == TFE_CONN_CLOSING && tfe_remaining_ms(x->deadline) > 0)
		return 0;
	if (stale)
		tfe_vsock_reset(&v->g.vs, x->c);
	else
		rc = tfe_vsock_close(&v->g.vs, x->c, 0); /* the RST came, or time is up */
	x->c = NULL;
	if (rc < 0)
		return soak_fail(v, "sibling stream from VM %u: close: %s", prev_vm(v)->idx,
				 strerror(-rc));
	x->ref_epoch = atomic_load(&prev_vm(v)->epoch);
	return 1;
}

int soak_sib_rx_step(struct soak_vm *v)
{
	struct soak_sib_rx *x = &v->srx;
	ssize_t r;

	if (!x->c) {
		if (!rx_accept(v))
			return 0;
		x->closing = false;
		x->hdr_len = 0;
		x->got = 0;
		x->len = 0;
		x->fnv = UH_FNV_INIT;
		x->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	}
	if (x->closing)
		return rx_closing(v);
	if ((x->hdr_len == SIB_HDR && rx_stale(v)) || rx_superseded(v))
		return rx_drop(v);
	r = tfe_vsock_recv(&v->g.vs, x->c, v->rbuf, SOAK_IO_MAX);
	if (r > 0) {
		x->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
		return rx_take(v, v->rbuf, (size_t)r);
	}
	if (r == 0)
		return rx_end(v);
	if (r != -EAGAIN)
		return rx_fail(v, strerror((int)-r));
	return tfe_remaining_ms(x->deadline) == 0 ? rx_fail(v, "no data") : 0;
}
