// SPDX-License-Identifier: MIT
/*
 * SEQPACKET connections of a soak VM (soak.h), guest to a host SEQPACKET
 * listener, at packet level: the tfe driver plays STREAM only, so the
 * guest end sends raw packets and reads the daemon's through the driver's
 * packet observer (soak_seq_observe()), which checks every message host to
 * guest as its pieces arrive: the pattern, and that EOM ends it at exactly
 * the length the host sent. Messages guest to host are sent in one to
 * three RW packets and must reach the host socket whole, one recv each.
 *
 * Credit: each connection carries less than either side's buffer, so no
 * credit update is needed in either direction.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "soak.h"

#define SEQ_MAX_MSG 12000u
#define SEQ_BUDGET (128u * 1024)
#define SEQ_BUF_ALLOC (256u * 1024)
#define VSOCK_F_EOM 1u
#define VSOCK_F_EOR 2u

/* Guest-to-host message @i and host-to-guest message @i use different streams. */
#define SEQ_G2H_SEED(q, i) ((q)->seed + 0x100u + (i))
#define SEQ_H2G_SEED(q, i) ((q)->seed + 0x200u + (i))

static void seq_rw(struct soak_seq *q, const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	uint32_t want;

	if (q->next >= q->nexp)
		return (void)(q->err = -EPROTO);
	want = q->exp_len[q->next];
	if (p->len > want - q->have ||
	    uh_check(payload, SEQ_H2G_SEED(q, q->next), q->have, p->len) != p->len)
		return (void)(q->err = -EBADMSG);
	q->have += p->len;
	q->fwd_cnt += p->len;
	if (!(p->flags & VSOCK_F_EOM))
		return;
	if (q->have != want)
		q->err = -EMSGSIZE;
	q->next++;
	q->have = 0;
}

/* The driver's packet observer: the packets of the SEQPACKET connection in progress. */
static void seq_observe(void *ctx, const struct tfe_vsock_pkt *p, const uint8_t *payload)
{
	struct soak_seq *q = ctx;

	if (p->type != TFE_VSOCK_TYPE_SEQPACKET || q->port == 0 || p->dst_port != q->port ||
	    p->src_port != SOAK_HP_SEQ)
		return;
	switch (p->op) {
	case TFE_VSOCK_OP_RESPONSE:
		q->response = true;
		q->peer_buf_alloc = p->buf_alloc;
		break;
	case TFE_VSOCK_OP_RW:
		seq_rw(q, p, payload);
		break;
	case TFE_VSOCK_OP_SHUTDOWN:
		q->shutdown = true;
		break;
	case TFE_VSOCK_OP_RST:
		q->rst = true;
		break;
	default:
		break;
	}
}

void soak_seq_attach(struct soak_vm *v)
{
	v->g.vs.other_types_raw = true;
	v->g.vs.on_pkt = seq_observe;
	v->g.vs.on_pkt_ctx = &v->seq;
}

static int seq_send(struct soak_vm *v, uint16_t op, uint32_t flags, const void *data, size_t len)
{
	struct tfe_vsock_pkt p = {
		.src_cid = v->g.cid,
		.dst_cid = TFE_VSOCK_HOST_CID,
		.src_port = v->seq.port,
		.dst_port = SOAK_HP_SEQ,
		.type = TFE_VSOCK_TYPE_SEQPACKET,
		.op = op,
		.flags = flags,
		.buf_alloc = SEQ_BUF_ALLOC,
		.fwd_cnt = v->seq.fwd_cnt,
	};

	return uh_raw_send(&v->g, &p, data, len);
}

/* Run the driver until *@flag is set, or the observer saw an error or an RST. */
static int seq_wait(struct soak_vm *v, const bool *flag)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;

	while (!*flag && !v->seq.err && (flag == &v->seq.rst || !v->seq.rst)) {
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		soak_step(v, 2);
	}
	return v->seq.err ? v->seq.err : *flag ? 0 : -ECONNRESET;
}

/* Message @i guest to host, in up to three packets; the host must read it whole. */
static int seq_g2h_msg(struct soak_vm *v, int fd, unsigned int i, uint32_t len)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	uint32_t cut1 = uh_rand(&v->rnd) % len, cut2 = cut1 + uh_rand(&v->rnd) % (len - cut1);
	uint32_t eom = uh_rand(&v->rnd) % 2 ? VSOCK_F_EOM | VSOCK_F_EOR : VSOCK_F_EOM;
	ssize_t r;
	int rc;

	uh_fill(v->wbuf, SEQ_G2H_SEED(&v->seq, i), 0, len);
	/* like Linux, no empty piece: the last one holds at least a byte */
	rc = cut1 ? seq_send(v, TFE_VSOCK_OP_RW, 0, v->wbuf, cut1) : 0;
	if (rc == 0 && cut2 > cut1)
		rc = seq_send(v, TFE_VSOCK_OP_RW, 0, v->wbuf + cut1, cut2 - cut1);
	if (rc == 0)
		rc = seq_send(v, TFE_VSOCK_OP_RW, eom, v->wbuf + cut2, len - cut2);
	while (rc == 0 && (r = recv(fd, v->rbuf, SOAK_IO_MAX, MSG_DONTWAIT)) < 0) {
		if (errno != EAGAIN)
			return -errno;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		soak_step(v, 2);
	}
	if (rc == 0 && (r != (ssize_t)len || uh_check(v->rbuf, SEQ_G2H_SEED(&v->seq, i), 0, len) != len)) {
		soak_fail(v, "seqpacket: message %u of %u bytes arrived as %zd bytes%s", i, len, r,
			  r == (ssize_t)len ? " with a wrong byte" : "");
		return -EBADMSG;
	}
	return rc;
}

static int seq_g2h(struct soak_vm *v, int fd)
{
	uint32_t budget = v->seq.peer_buf_alloc < SEQ_BUDGET ? v->seq.peer_buf_alloc : SEQ_BUDGET;
	unsigned int n = 1 + uh_rand(&v->rnd) % SOAK_SEQ_MSGS;
	uint32_t used = 0;

	for (unsigned int i = 0; i < n; i++) {
		uint32_t len = 1 + uh_rand(&v->rnd) % SEQ_MAX_MSG;
		int rc;

		if (len > budget - used)
			break;
		rc = seq_g2h_msg(v, fd, i, len);
		if (rc < 0)
			return rc;
		used += len;
		v->n.g2h += len;
		v->n.seq_msgs++;
	}
	return 0;
}

static int seq_h2g(struct soak_vm *v, int fd)
{
	struct soak_seq *q = &v->seq;
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	int rc;

	q->nexp = 1 + uh_rand(&v->rnd) % SOAK_SEQ_MSGS;
	for (unsigned int i = 0; i < q->nexp; i++)
		q->exp_len[i] = 1 + uh_rand(&v->rnd) % SEQ_MAX_MSG;
	for (unsigned int i = 0; i < q->nexp; i++) {
		uh_fill(v->wbuf, SEQ_H2G_SEED(q, i), 0, q->exp_len[i]);
		while (send(fd, v->wbuf, q->exp_len[i], MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			if (errno != EAGAIN)
				return -errno;
			if (tfe_remaining_ms(deadline) == 0)
				return -ETIMEDOUT;
			soak_step(v, 2);
		}
	}
	while (q->next < q->nexp && !q->err && !q->rst) {
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		soak_step(v, 2);
	}
	rc = q->err ? q->err : q->rst ? -ECONNRESET : 0;
	for (unsigned int i = 0; rc == 0 && i < q->nexp; i++)
		v->n.h2g += q->exp_len[i];
	v->n.seq_msgs += rc == 0 ? q->nexp : 0;
	return rc;
}

/*
 * One SEQPACKET connection from the guest: connect, messages both ways,
 * close (SHUTDOWN both; the host end sees the end, the daemon answers RST).
 */
int soak_seq_conn(struct soak_vm *v, uint32_t port, uint32_t seed)
{
	struct soak_seq *q = &v->seq;
	int fd = -1, rc;

	memset(q, 0, sizeof(*q));
	q->port = port;
	q->seed = seed;
	rc = seq_send(v, TFE_VSOCK_OP_REQUEST, 0, NULL, 0);
	if (rc == 0)
		rc = seq_wait(v, &q->response);
	if (rc == 0)
		rc = fd = uh_accept(v->lfd_seq, &v->g, SOAK_TIMEOUT_MS);
	if (rc >= 0)
		rc = seq_g2h(v, fd);
	if (rc == 0)
		rc = seq_h2g(v, fd);
	if (rc == 0)
		rc = seq_send(v, TFE_VSOCK_OP_SHUTDOWN, TFE_VSOCK_SHUTDOWN_BOTH, NULL, 0);
	if (rc == 0 && !uh_host_closed(fd, &v->g, SOAK_TIMEOUT_MS))
		rc = -ETIMEDOUT;
	if (rc == 0)
		rc = seq_wait(v, &q->rst);
	if (rc < 0 && q->response && !q->rst)
		seq_send(v, TFE_VSOCK_OP_RST, 0, NULL, 0);
	if (fd >= 0)
		close(fd);
	q->port = 0;
	if (rc < 0)
		return soak_fail(v, "seqpacket connection from port %u: %s (host to guest: message %u "
				 "of %u, %u bytes of it in, %u sent)", port, strerror(-rc), q->next,
				 q->nexp, q->have, q->next < q->nexp ? q->exp_len[q->next] : 0);
	v->n.conns[SOAK_SEQPACKET]++;
	return 0;
}
