/* SPDX-License-Identifier: MIT */
/*
 * Test double for the userspace engine's host stream (engine/user/stream.h):
 * an in-memory host program. Bytes the connection writes land in `out`
 * (message lengths recorded for SEQPACKET) up to `out_room`, so a test can
 * play a slow host; bytes and messages for the connection are queued with
 * ms_feed()/ms_feed_msg(); errors and end of stream are switches.
 * The struct is the test's: close() only counts, so results stay readable.
 */
#ifndef TESTS_UNIT_USER_MEMSTREAM_H
#define TESTS_UNIT_USER_MEMSTREAM_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/user/pkt.h"
#include "engine/user/stream.h"

#define MS_MAX_MSGS 256

struct memstream {
	bool seq;
	/* connection → host */
	uint8_t *out;
	size_t out_len, out_cap;
	size_t out_room;          /* bytes the host still accepts */
	uint32_t out_msg[MS_MAX_MSGS];
	bool out_eor[MS_MAX_MSGS];
	unsigned int out_nmsg;
	int write_err;            /* returned by writev() when set */
	int writes;               /* writev() calls that moved bytes */
	int shut_err;
	int shutdowns;
	int rd_shutdowns;          /* shutdown_rd() calls */
	uint32_t buf_size;         /* last set_buffer_size() */
	int buf_sets;              /* set_buffer_size() calls */
	/* host → connection */
	uint8_t *in;
	size_t in_len, in_off, in_cap;
	uint32_t in_msg[MS_MAX_MSGS];
	bool in_eor[MS_MAX_MSGS];
	unsigned int in_head, in_nmsg;
	bool in_eof;
	bool peer_closed;         /* with in_eof: the host closed, not half-closed */
	int read_err;
	int closes;
};

static inline size_t ms_iov_total(const struct iovec *iov, int n)
{
	return pkt_iov_len(iov, (size_t)n);
}

static inline ssize_t ms_readv(struct stream *s, const struct iovec *iov, int niov,
			       unsigned int *flags)
{
	struct memstream *m = s->ctx;
	size_t cap = ms_iov_total(iov, niov), n;

	*flags = 0;
	if (m->read_err)
		return m->read_err;
	if (!m->seq) {
		if (m->in_off == m->in_len)
			return m->in_eof ? 0 : -EAGAIN;
		n = m->in_len - m->in_off < cap ? m->in_len - m->in_off : cap;
		pkt_buf_to_iov(iov, (size_t)niov, m->in + m->in_off, n);
		m->in_off += n;
		return (ssize_t)n;
	}
	if (!m->in_nmsg)
		return m->in_eof ? 0 : -EAGAIN;
	n = m->in_msg[m->in_head] < cap ? m->in_msg[m->in_head] : cap;
	pkt_buf_to_iov(iov, (size_t)niov, m->in + m->in_off, n);
	if (n < m->in_msg[m->in_head])
		*flags |= STREAM_F_TRUNC;
	if (m->in_eor[m->in_head])
		*flags |= STREAM_F_EOR;
	m->in_off += m->in_msg[m->in_head];
	m->in_head++;
	m->in_nmsg--;
	return (ssize_t)n;
}

static inline ssize_t ms_peek_len(struct stream *s)
{
	struct memstream *m = s->ctx;

	if (m->read_err)
		return m->read_err;
	if (m->in_nmsg)
		return m->in_msg[m->in_head];
	return m->in_eof ? -EPIPE : -EAGAIN;
}

static inline void ms_out_append(struct memstream *m, const struct iovec *iov, int niov, size_t n)
{
	if (m->out_len + n + 1 > m->out_cap) {
		m->out_cap = (m->out_len + n + 1) * 2;
		m->out = realloc(m->out, m->out_cap);
	}
	pkt_iov_to_buf(iov, (size_t)niov, m->out + m->out_len, n);
	m->out_len += n;
	m->out_room -= n;
}

static inline ssize_t ms_writev(struct stream *s, const struct iovec *iov, int niov,
				unsigned int flags)
{
	struct memstream *m = s->ctx;
	size_t total = ms_iov_total(iov, niov), n;

	if (m->write_err)
		return m->write_err;
	if (m->seq) {
		if (total > m->out_room || m->out_nmsg == MS_MAX_MSGS)
			return -EAGAIN;
		ms_out_append(m, iov, niov, total);
		m->out_eor[m->out_nmsg] = flags & STREAM_F_EOR;
		m->out_msg[m->out_nmsg++] = (uint32_t)total;
		return (ssize_t)total;
	}
	n = total < m->out_room ? total : m->out_room;
	if (total && !n)
		return -EAGAIN;
	ms_out_append(m, iov, niov, n);
	m->writes += n > 0;
	return (ssize_t)n;
}

static inline int ms_shutdown_wr(struct stream *s)
{
	struct memstream *m = s->ctx;

	m->shutdowns++;
	return m->shut_err;
}

static inline int ms_shutdown_rd(struct stream *s)
{
	((struct memstream *)s->ctx)->rd_shutdowns++;
	return 0;
}

static inline int ms_set_buffer_size(struct stream *s, uint32_t bytes)
{
	struct memstream *m = s->ctx;

	m->buf_size = bytes;
	m->buf_sets++;
	return 0;
}

static inline bool ms_peer_closed(struct stream *s)
{
	return ((struct memstream *)s->ctx)->peer_closed;
}

static inline void ms_close(struct stream *s)
{
	((struct memstream *)s->ctx)->closes++;
}

static const struct stream_ops ms_ops = {
	.readv = ms_readv,
	.peek_len = ms_peek_len,
	.writev = ms_writev,
	.shutdown_wr = ms_shutdown_wr,
	.shutdown_rd = ms_shutdown_rd,
	.set_buffer_size = ms_set_buffer_size,
	.peer_closed = ms_peer_closed,
	.close = ms_close,
};

/* A fresh host that accepts everything; free with ms_free(). */
static inline struct memstream *ms_new(bool seq)
{
	struct memstream *m = calloc(1, sizeof(*m));

	m->seq = seq;
	m->out_room = SIZE_MAX;
	return m;
}

static inline void ms_free(struct memstream *m)
{
	free(m->in);
	free(m->out);
	free(m);
}

static inline struct stream ms_stream(struct memstream *m)
{
	return (struct stream){ .ops = &ms_ops, .ctx = m, .fd = -1 };
}

/* Host program writes bytes (STREAM). */
static inline void ms_feed(struct memstream *m, const void *buf, size_t n)
{
	if (!m->in || m->in_len + n > m->in_cap) {
		m->in_cap = (m->in_len + n) * 2 + 1;
		m->in = realloc(m->in, m->in_cap);
	}
	if (n)
		memcpy(m->in + m->in_len, buf, n);
	m->in_len += n;
}

/* Host program sends one message (SEQPACKET). */
static inline void ms_feed_msg(struct memstream *m, const void *buf, uint32_t n, bool eor)
{
	unsigned int i = m->in_head + m->in_nmsg;

	ms_feed(m, buf, n);
	m->in_msg[i] = n;
	m->in_eor[i] = eor;
	m->in_nmsg++;
}

#endif
