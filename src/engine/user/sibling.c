// SPDX-License-Identifier: MIT
/*
 * Sibling inboxes (see sibling.h). Each inbox is a byte ring; a record is
 * a u32 length (header plus payload, host order), the 44 wire bytes of the
 * header, then the payload, and may wrap around the end of the ring. Only
 * the owner removes records and only under the lock, so the first record
 * is stable while its pieces are delivered.
 */
#include "engine/user/sibling.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

/* ---- port bit maps ------------------------------------------------------------ */

static void map_set(uint64_t *map, unsigned int i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static bool map_test(const uint64_t *map, unsigned int i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

static bool map_empty(const uint64_t *map)
{
	for (unsigned int w = 0; w < SIB_MAP_WORDS; w++) {
		if (map[w])
			return false;
	}
	return true;
}

/* Move the bits of @from into @to (the waiters to wake, taken under the port's lock). */
static void map_take(uint64_t *to, uint64_t *from)
{
	memcpy(to, from, SIB_MAP_WORDS * sizeof(*from));
	memset(from, 0, SIB_MAP_WORDS * sizeof(*from));
}

bool sib_reaches(const struct sib_hub *h, unsigned int from, unsigned int to)
{
	return from < h->n && to < h->n && map_test(h->port[from].reach, to);
}

/* ---- the hub ---------------------------------------------------------------------- */

void sib_hub_init(struct sib_hub *h)
{
	memset(h, 0, sizeof(*h));
}

int sib_hub_add(struct sib_hub *h, uint64_t cid, const char *groups, int wake_fd)
{
	struct sib_port *p;

	if (h->n >= SIB_MAX_PORTS)
		return -ENOSPC;
	p = &h->port[h->n];
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->cid = cid;
	p->groups = groups ? groups : "";
	p->wake_fd = wake_fd;
	return (int)h->n++;
}

/* Is the @len-byte name at @name one of the '+'-separated names of @list? */
static bool group_listed(const char *name, size_t len, const char *list)
{
	while (*list) {
		size_t l = strcspn(list, "+");

		if (l == len && len && memcmp(list, name, len) == 0)
			return true;
		list += l;
		if (*list == '+')
			list++;
	}
	return false;
}

bool sib_groups_share(const char *a, const char *b)
{
	while (*a) {
		size_t l = strcspn(a, "+");

		if (group_listed(a, l, b))
			return true;
		a += l;
		if (*a == '+')
			a++;
	}
	return false;
}

int sib_hub_link(struct sib_hub *h, uint32_t cap)
{
	if (cap < 2 * SIB_RECORD_MAX)
		cap = 2 * SIB_RECORD_MAX;
	for (unsigned int i = 0; i < h->n; i++) {
		struct sib_port *p = &h->port[i];

		memset(p->reach, 0, sizeof(p->reach));
		for (unsigned int j = 0; j < h->n; j++) {
			if (j != i && sib_groups_share(p->groups, h->port[j].groups))
				map_set(p->reach, j);
		}
	}
	for (unsigned int i = 0; i < h->n; i++) {
		struct sib_port *p = &h->port[i];

		/* reach is symmetric: nobody we reach means nobody reaches us */
		if (map_empty(p->reach) || p->buf)
			continue;
		p->buf = malloc(cap);
		if (!p->buf)
			return -ENOMEM;
		p->cap = cap;
	}
	return 0;
}

void sib_hub_fini(struct sib_hub *h)
{
	for (unsigned int i = 0; i < h->n; i++) {
		free(h->port[i].buf);
		h->port[i].buf = NULL;
		pthread_mutex_destroy(&h->port[i].lock);
	}
	h->n = 0;
}

/* ---- the byte ring (caller holds the lock) ------------------------------ */

static void ring_put(struct sib_port *p, const void *src, uint32_t n)
{
	uint32_t tail = (p->head + p->used) % p->cap;
	uint32_t first = p->cap - tail < n ? p->cap - tail : n;

	memcpy(p->buf + tail, src, first);
	memcpy(p->buf, (const uint8_t *)src + first, n - first);
	p->used += n;
}

static void ring_put_iov(struct sib_port *p, const struct iovec *iov, size_t niov)
{
	for (size_t i = 0; i < niov; i++)
		ring_put(p, iov[i].iov_base, (uint32_t)iov[i].iov_len);
}

/* Copy @n bytes starting @off bytes past the first record's start. */
static void ring_get(const struct sib_port *p, uint32_t off, void *dst, uint32_t n)
{
	uint32_t pos = (uint32_t)(((uint64_t)p->head + off) % p->cap);
	uint32_t first = p->cap - pos < n ? p->cap - pos : n;

	memcpy(dst, p->buf + pos, first);
	memcpy((uint8_t *)dst + first, p->buf, n - first);
}

static void ring_get_iov(const struct sib_port *p, uint32_t off, const struct iovec *iov,
			 size_t niov)
{
	for (size_t i = 0; i < niov; i++) {
		ring_get(p, off, iov[i].iov_base, (uint32_t)iov[i].iov_len);
		off += (uint32_t)iov[i].iov_len;
	}
}

static void wake(int fd)
{
	if (fd >= 0)
		eventfd_write(fd, 1);
}

static void wake_waiters(const struct sib_hub *h, const uint64_t *waiters)
{
	for (unsigned int w = 0; w < SIB_MAP_WORDS; w++) {
		for (uint64_t bits = waiters[w]; bits; bits &= bits - 1) {
			unsigned int j = w * 64 + (unsigned int)__builtin_ctzll(bits);

			if (j < h->n)
				wake(h->port[j].wake_fd);
		}
	}
}

/* ---- sending -------------------------------------------------------------- */

static int find_port(const struct sib_hub *h, unsigned int from, uint64_t cid)
{
	for (unsigned int j = 0; j < h->n; j++) {
		if (h->port[j].cid == cid)
			return map_test(h->port[from].reach, j) ? (int)j : -EHOSTUNREACH;
	}
	return -EHOSTUNREACH;
}

int sib_send(struct sib_hub *h, unsigned int from, const struct pkt_hdr *hdr,
	     const struct iovec *payload, size_t npayload)
{
	uint8_t raw[VSOCK_HDR_LEN];
	uint32_t rec = VSOCK_HDR_LEN + hdr->len;
	struct sib_port *p;
	bool was_empty;
	int j;

	if (from >= h->n || hdr->len > VSOCK_MAX_PKT_LEN)
		return -EHOSTUNREACH;
	j = find_port(h, from, hdr->dst_cid);
	if (j < 0)
		return j;
	p = &h->port[j];
	pkt_hdr_encode(hdr, raw);
	pthread_mutex_lock(&p->lock);
	if (!p->open || !p->buf) {
		pthread_mutex_unlock(&p->lock);
		return -ENOTCONN;
	}
	if (p->cap - p->used < sizeof(rec) + rec) {
		map_set(p->waiters, from);
		pthread_mutex_unlock(&p->lock);
		return -EAGAIN;
	}
	was_empty = p->used == 0;
	ring_put(p, &rec, sizeof(rec));
	ring_put(p, raw, sizeof(raw));
	ring_put_iov(p, payload, npayload);
	pthread_mutex_unlock(&p->lock);
	/* the owner drains to empty or until its rx ring is empty (and then an rx kick resumes it) */
	if (was_empty)
		wake(p->wake_fd);
	return 0;
}

/* ---- receiving ------------------------------------------------------------ */

/* Drop the first record; @woken receives the senders to wake. */
static void pop_record(struct sib_port *p, uint32_t rec, uint64_t *woken)
{
	p->head = (uint32_t)(((uint64_t)p->head + sizeof(rec) + rec) % p->cap);
	p->used -= (uint32_t)sizeof(rec) + rec;
	p->frag_off = 0;
	if (p->used == 0)
		p->head = 0;
	map_take(woken, p->waiters);
}

/* The next piece of the first record into @rx. Caller holds the lock. */
static int deliver(struct sib_port *p, const struct iovec *rx, size_t nrx, size_t *len,
		   uint64_t *woken)
{
	struct iovec dst[PKT_MAX_IOV];
	uint8_t raw[VSOCK_HDR_LEN];
	struct pkt_hdr h;
	uint32_t rec, rest, chunk;
	size_t nd;

	ring_get(p, 0, &rec, sizeof(rec));
	ring_get(p, sizeof(rec), raw, sizeof(raw));
	pkt_hdr_decode(raw, &h);
	rest = rec - VSOCK_HDR_LEN - p->frag_off;
	if (pkt_iov_len(rx, nrx) < VSOCK_HDR_LEN)
		return -ENOBUFS;
	chunk = (uint32_t)pkt_iov_slice(rx, nrx, VSOCK_HDR_LEN, rest, dst, PKT_MAX_IOV, &nd);
	if (rest && !chunk)
		return -ENOBUFS;
	if (chunk < rest && h.type == VSOCK_TYPE_SEQPACKET)
		h.flags &= ~(VSOCK_SEQ_EOM | VSOCK_SEQ_EOR); /* only the last piece ends the message */
	h.len = chunk;
	pkt_hdr_to_iov(&h, rx, nrx);
	ring_get_iov(p, (uint32_t)sizeof(rec) + VSOCK_HDR_LEN + p->frag_off, dst, nd);
	p->frag_off += chunk;
	if (chunk == rest)
		pop_record(p, rec, woken);
	*len = VSOCK_HDR_LEN + (size_t)chunk;
	return 0;
}

int sib_recv(struct sib_hub *h, unsigned int idx, const struct iovec *rx, size_t nrx,
	     size_t *len)
{
	uint64_t woken[SIB_MAP_WORDS] = { 0 };
	struct sib_port *p;
	int rc = -EAGAIN;

	if (idx >= h->n)
		return -EAGAIN;
	p = &h->port[idx];
	pthread_mutex_lock(&p->lock);
	if (p->used)
		rc = deliver(p, rx, nrx, len, woken);
	pthread_mutex_unlock(&p->lock);
	wake_waiters(h, woken);
	return rc;
}

bool sib_pending(struct sib_hub *h, unsigned int idx)
{
	struct sib_port *p;
	bool any;

	if (idx >= h->n)
		return false;
	p = &h->port[idx];
	pthread_mutex_lock(&p->lock);
	any = p->used != 0;
	pthread_mutex_unlock(&p->lock);
	return any;
}

void sib_set_open(struct sib_hub *h, unsigned int idx, bool open)
{
	uint64_t woken[SIB_MAP_WORDS] = { 0 };
	struct sib_port *p;

	if (idx >= h->n)
		return;
	p = &h->port[idx];
	pthread_mutex_lock(&p->lock);
	p->open = open;
	if (!open) {
		p->head = p->used = p->frag_off = 0;
		map_take(woken, p->waiters);
	}
	pthread_mutex_unlock(&p->lock);
	wake_waiters(h, woken);
}
