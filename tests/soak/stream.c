// SPDX-License-Identifier: MIT
/*
 * Stream workers of a soak VM (soak.h): the long full-duplex streams,
 * stepped without blocking so that they stay open while everything else
 * runs, and the short connections, run start to end in one call (they
 * last milliseconds; the long streams wait in their socket buffers
 * meanwhile).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "soak.h"

#define LONG_MIN_BYTES (256u * 1024)
#define LONG_SPAN_BYTES (16u * 1024 * 1024)
#define SHORT_MAX_BYTES 8192u
#define DX_ROUNDS 8

uint32_t soak_next_port(struct soak_vm *v)
{
	v->next_port = v->next_port >= SOAK_PORT_LAST ? SOAK_PORT_FIRST : v->next_port + 1;
	return v->next_port;
}

uint32_t soak_next_seed(struct soak_vm *v)
{
	/* distinct per VM and per connection; + 1 is the other direction's */
	v->seeds += 2;
	return v->idx << 28 ^ v->seeds;
}

static size_t min_sz(uint64_t a, size_t b)
{
	return a < b ? (size_t)a : b;
}

void soak_step(struct soak_vm *v, int ms)
{
	if (tfe_vsock_poll(&v->g.vs) <= 0)
		tfe_vsock_wait(&v->g.vs, ms);
}

/* ---- host-end I/O: non-blocking; 0 means "would block" ---- */

static ssize_t host_write(int fd, const void *buf, size_t n)
{
	ssize_t r = send(fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	return r >= 0 ? r : errno == EAGAIN ? 0 : -errno;
}

static bool host_writable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1;
}

/* @n bytes just read into v->rbuf, at offset @off of stream @seed. Return: 0 or -EBADMSG (recorded). */
static int check_bytes(struct soak_vm *v, const char *end, uint32_t seed, uint64_t off, size_t n)
{
	size_t bad = uh_check(v->rbuf, seed, off, n);

	if (bad == n)
		return 0;
	soak_fail(v, "%s end: wrong byte in stream %#x at %llu+%zu", end, seed,
		  (unsigned long long)off, bad);
	return -EBADMSG;
}

/* Bytes read and checked against stream @seed at *@off (> 0), 0 at EOF, -EAGAIN, or -errno. */
static ssize_t host_read_check(struct soak_vm *v, int fd, uint32_t seed, uint64_t *off)
{
	ssize_t r = recv(fd, v->rbuf, SOAK_IO_MAX, MSG_DONTWAIT);

	if (r < 0)
		return -errno;
	if (check_bytes(v, "host", seed, *off, (size_t)r) < 0)
		return -EBADMSG;
	*off += (uint64_t)r;
	return r;
}

static ssize_t guest_read_check(struct soak_vm *v, struct tfe_vsock_conn *c, uint32_t seed,
				uint64_t *off)
{
	ssize_t r = tfe_vsock_recv(&v->g.vs, c, v->rbuf, SOAK_IO_MAX);

	if (r > 0 && check_bytes(v, "guest", seed, *off, (size_t)r) < 0)
		return -EBADMSG;
	if (r > 0)
		*off += (uint64_t)r;
	return r;
}

/* ---- long duplex streams ---- */

static int dx_open(struct soak_vm *v, struct soak_duplex *d)
{
	int rc;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->guest_opened = d == &v->dx[0];
	d->seed = soak_next_seed(v);
	d->len_g = LONG_MIN_BYTES + uh_rand(&v->rnd) % LONG_SPAN_BYTES;
	d->len_h = LONG_MIN_BYTES + uh_rand(&v->rnd) % LONG_SPAN_BYTES;
	if (d->guest_opened) {
		rc = tfe_vsock_connect(&v->g.vs, TFE_VSOCK_HOST_CID, SOAK_HP_LONG, soak_next_port(v),
				       SOAK_TIMEOUT_MS, &d->c);
		d->fd = rc < 0 ? rc : uh_accept(v->lfd_long, &v->g, SOAK_TIMEOUT_MS);
	} else {
		d->fd = uh_host_connect(v->s->h.uds[v->idx], SOAK_GP_LONG, SOCK_STREAM);
		rc = d->fd < 0 ? d->fd : tfe_vsock_accept(&v->g.vs, SOAK_GP_LONG, SOAK_TIMEOUT_MS, &d->c);
		rc = rc < 0 ? rc : uh_host_wait_ok(d->fd, &v->g, SOAK_TIMEOUT_MS);
	}
	rc = rc < 0 ? rc : d->fd < 0 ? d->fd : 0;
	if (rc < 0) {
		if (d->fd >= 0)
			close(d->fd);
		return soak_fail(v, "opening a long stream (%s): %s",
				 d->guest_opened ? "guest" : "host", strerror(-rc));
	}
	d->open = true;
	d->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	return 1;
}

/* The guest end sends; at the length, it half-closes. Return: 1 progress, 0, or -errno. */
static int dx_guest_send(struct soak_vm *v, struct soak_duplex *d)
{
	struct tfe_vsock_conn *c = d->c;
	size_t n = min_sz(d->len_g - d->g_sent, SOAK_IO_MAX);
	uint32_t credit = tfe_vsock_credit(c->peer_buf_alloc, c->tx_cnt, c->peer_fwd_cnt);
	ssize_t r;

	if (n == 0) {
		if (d->g_shut)
			return 0;
		d->g_shut = true;
		return tfe_vsock_shutdown(&v->g.vs, c, TFE_VSOCK_SHUTDOWN_SEND) < 0 ? -EPIPE : 1;
	}
	/* without credit, one byte makes the driver ask for more */
	n = min_sz(credit ? credit : 1, n);
	uh_fill(v->wbuf, d->seed, d->g_sent, n);
	r = tfe_vsock_send(&v->g.vs, c, v->wbuf, n);
	if (r == -EAGAIN)
		return 0;
	if (r < 0)
		return (int)r;
	d->g_sent += (uint64_t)r;
	return 1;
}

static int dx_host_send(struct soak_vm *v, struct soak_duplex *d)
{
	size_t n = min_sz(d->len_h - d->h_sent, SOAK_IO_MAX);
	ssize_t r;

	if (n == 0) {
		if (d->h_shut)
			return 0;
		d->h_shut = true;
		return shutdown(d->fd, SHUT_WR) < 0 ? -errno : 1;
	}
	if (!host_writable(d->fd))
		return 0;
	uh_fill(v->wbuf, d->seed + 1, d->h_sent, n);
	r = host_write(d->fd, v->wbuf, n);
	if (r > 0)
		d->h_sent += (uint64_t)r;
	return r > 0 ? 1 : (int)r;
}

/* An end of stream is right only after the other end's half-close, with every byte in. */
static int dx_eof(struct soak_vm *v, struct soak_duplex *d, bool at_host)
{
	bool ok = at_host ? d->g_shut && d->h_got == d->len_g : d->h_shut && d->g_got == d->len_h;

	if (!ok)
		return soak_fail(v, "long stream %#x: %s end saw the end after %llu of %llu bytes",
				 d->seed, at_host ? "host" : "guest",
				 (unsigned long long)(at_host ? d->h_got : d->g_got),
				 (unsigned long long)(at_host ? d->len_g : d->len_h));
	*(at_host ? &d->h_eof : &d->g_eof) = true;
	return 1;
}

static int dx_recv(struct soak_vm *v, struct soak_duplex *d)
{
	int p = 0;
	ssize_t r;

	if (!d->h_eof) {
		r = host_read_check(v, d->fd, d->seed, &d->h_got);
		if (r == 0)
			return dx_eof(v, d, true);
		if (r < 0 && r != -EAGAIN)
			return soak_fail(v, "long stream %#x, host end: %s", d->seed, strerror((int)-r));
		p += r > 0;
	}
	if (!d->g_eof) {
		r = guest_read_check(v, d->c, d->seed + 1, &d->g_got);
		if (r == 0)
			return dx_eof(v, d, false);
		if (r < 0 && r != -EAGAIN)
			return soak_fail(v, "long stream %#x, guest end: %s", d->seed, strerror((int)-r));
		p += r > 0;
	}
	return p;
}

/* Both ends saw the other's half-close: an orderly close, every byte counted. */
static int dx_close(struct soak_vm *v, struct soak_duplex *d)
{
	int rc = tfe_vsock_close(&v->g.vs, d->c, SOAK_TIMEOUT_MS);
	enum soak_kind k = d->guest_opened ? SOAK_LONG_GUEST : SOAK_LONG_HOST;

	close(d->fd);
	d->open = false;
	if (rc < 0)
		return soak_fail(v, "long stream %#x: close: %s", d->seed, strerror(-rc));
	v->n.conns[k]++;
	v->n.g2h += d->len_g;
	v->n.h2g += d->len_h;
	return 1;
}

static int dx_round(struct soak_vm *v, struct soak_duplex *d)
{
	int a = dx_guest_send(v, d), b, c;

	if (a < 0)
		return soak_fail(v, "long stream %#x, guest send: %s", d->seed, strerror(-a));
	b = dx_host_send(v, d);
	if (b < 0)
		return soak_fail(v, "long stream %#x, host send: %s", d->seed, strerror(-b));
	c = dx_recv(v, d);
	if (c < 0)
		return c;
	if (d->g_eof && d->h_eof)
		return dx_close(v, d);
	return a + b + c;
}

int soak_dx_step(struct soak_vm *v, struct soak_duplex *d, bool stopping)
{
	int p = 0, r;

	if (!d->open)
		return stopping ? 0 : dx_open(v, d);
	for (int i = 0; i < DX_ROUNDS && d->open; i++) {
		r = dx_round(v, d);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		p += r;
		tfe_vsock_poll(&v->g.vs);
	}
	if (p)
		d->deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	else if (d->open && tfe_remaining_ms(d->deadline) == 0)
		return soak_fail(v, "long stream %#x: no progress in %d ms (%llu/%llu/%llu/%llu)",
				 d->seed, SOAK_TIMEOUT_MS, (unsigned long long)d->g_sent,
				 (unsigned long long)d->h_got, (unsigned long long)d->h_sent,
				 (unsigned long long)d->g_got);
	return p;
}

/* The run ends: each direction ends at what it has sent so far. */
void soak_dx_wind_down(struct soak_duplex *d)
{
	d->len_g = d->g_sent;
	d->len_h = d->h_sent;
}

/* A front-end reconnect: the host end goes; the guest end goes with the guest. */
void soak_dx_cut(struct soak_vm *v, struct soak_duplex *d)
{
	if (!d->open)
		return;
	close(d->fd);
	d->open = false;
	v->n.cut[d->guest_opened ? SOAK_LONG_GUEST : SOAK_LONG_HOST]++;
}

/* ---- short connections ---- */

/* Send @n bytes of stream @seed from the host end, running the guest meanwhile. */
static int host_send_all(struct soak_vm *v, int fd, uint32_t seed, size_t n)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	size_t sent = 0;

	uh_fill(v->wbuf, seed, 0, n);
	while (sent < n) {
		ssize_t r = host_write(fd, v->wbuf + sent, n - sent);

		if (r < 0)
			return (int)r;
		sent += (size_t)r;
		if (r == 0 && tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		if (r == 0)
			soak_step(v, 2);
	}
	return 0;
}

/* Read the host end to its end, checking stream @seed. Return: bytes, or -errno. */
static int64_t host_read_to_end(struct soak_vm *v, int fd, uint32_t seed)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	uint64_t got = 0;
	ssize_t r;

	while ((r = host_read_check(v, fd, seed, &got)) != 0) {
		if (r < 0 && r != -EAGAIN)
			return r;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		if (r < 0)
			soak_step(v, 2);
	}
	return (int64_t)got;
}

static int64_t guest_read_to_end(struct soak_vm *v, struct tfe_vsock_conn *c, uint32_t seed)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	uint64_t got = 0;
	ssize_t r;

	while ((r = guest_read_check(v, c, seed, &got)) != 0) {
		if (r < 0 && r != -EAGAIN)
			return r;
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		if (r < 0)
			soak_step(v, 2);
	}
	return (int64_t)got;
}

static int guest_send_all(struct soak_vm *v, struct tfe_vsock_conn *c, uint32_t seed, size_t n)
{
	uh_fill(v->wbuf, seed, 0, n);
	return tfe_vsock_send_all(&v->g.vs, c, v->wbuf, n, SOAK_TIMEOUT_MS);
}

/* A byte count that is not the one sent is an error of its own. */
static int check_len(struct soak_vm *v, const char *what, int64_t got, size_t want)
{
	if (got < 0)
		return soak_fail(v, "%s: %s", what, strerror((int)-got));
	if ((uint64_t)got != want)
		return soak_fail(v, "%s: %lld bytes, %zu sent", what, (long long)got, want);
	return 0;
}

/*
 * The guest connects, sends, half-closes; the host reads to the end,
 * answers, half-closes; the guest reads to the end and closes.
 */
static int short_guest(struct soak_vm *v)
{
	uint32_t seed = soak_next_seed(v);
	size_t n1 = 1 + uh_rand(&v->rnd) % SHORT_MAX_BYTES, n2 = uh_rand(&v->rnd) % SHORT_MAX_BYTES;
	struct tfe_vsock_conn *c;
	int fd = -1, rc = tfe_vsock_connect(&v->g.vs, TFE_VSOCK_HOST_CID, SOAK_HP_SHORT,
					    soak_next_port(v), SOAK_TIMEOUT_MS, &c);

	if (rc < 0)
		return soak_fail(v, "short connection from the guest: connect: %s", strerror(-rc));
	fd = uh_accept(v->lfd_short, &v->g, SOAK_TIMEOUT_MS);
	rc = fd < 0 ? soak_fail(v, "short connection from the guest: accept: %s", strerror(-fd)) : 0;
	if (rc == 0)
		rc = check_len(v, "short from the guest, guest send", guest_send_all(v, c, seed, n1), 0);
	if (rc == 0 && tfe_vsock_shutdown(&v->g.vs, c, TFE_VSOCK_SHUTDOWN_SEND) < 0)
		rc = soak_fail(v, "short connection from the guest: shutdown failed");
	if (rc == 0)
		rc = check_len(v, "short from the guest, host read", host_read_to_end(v, fd, seed), n1);
	if (rc == 0)
		rc = check_len(v, "short from the guest, host send", host_send_all(v, fd, seed + 1, n2), 0);
	if (rc == 0 && shutdown(fd, SHUT_WR) < 0)
		rc = soak_fail(v, "short connection from the guest: host shutdown: %s", strerror(errno));
	if (rc == 0)
		rc = check_len(v, "short from the guest, guest read", guest_read_to_end(v, c, seed + 1), n2);
	if (rc == 0)
		rc = check_len(v, "short from the guest, close", tfe_vsock_close(&v->g.vs, c, SOAK_TIMEOUT_MS), 0);
	else
		tfe_vsock_reset(&v->g.vs, c);
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		v->n.conns[SOAK_SHORT_GUEST]++;
		v->n.g2h += n1;
		v->n.h2g += n2;
	}
	return rc;
}

/*
 * The host connects, sends, half-closes; the guest reads to the end,
 * answers and closes; the host reads to the end.
 */
static int short_host(struct soak_vm *v)
{
	uint32_t seed = soak_next_seed(v);
	size_t n1 = 1 + uh_rand(&v->rnd) % SHORT_MAX_BYTES, n2 = uh_rand(&v->rnd) % SHORT_MAX_BYTES;
	struct tfe_vsock_conn *c = NULL;
	int fd = uh_host_connect(v->s->h.uds[v->idx], SOAK_GP_SHORT, SOCK_STREAM), rc = fd;

	if (rc >= 0)
		rc = tfe_vsock_accept(&v->g.vs, SOAK_GP_SHORT, SOAK_TIMEOUT_MS, &c);
	if (rc >= 0)
		rc = uh_host_wait_ok(fd, &v->g, SOAK_TIMEOUT_MS);
	rc = rc < 0 ? soak_fail(v, "short connection from the host: %s", strerror(-rc)) : 0;
	if (rc == 0)
		rc = check_len(v, "short from the host, host send", host_send_all(v, fd, seed, n1), 0);
	if (rc == 0 && shutdown(fd, SHUT_WR) < 0)
		rc = soak_fail(v, "short connection from the host: shutdown: %s", strerror(errno));
	if (rc == 0)
		rc = check_len(v, "short from the host, guest read", guest_read_to_end(v, c, seed), n1);
	if (rc == 0)
		rc = check_len(v, "short from the host, guest send", guest_send_all(v, c, seed + 1, n2), 0);
	if (rc == 0)
		rc = check_len(v, "short from the host, close", tfe_vsock_close(&v->g.vs, c, SOAK_TIMEOUT_MS), 0);
	else if (c)
		tfe_vsock_reset(&v->g.vs, c);
	if (rc == 0)
		rc = check_len(v, "short from the host, host read", host_read_to_end(v, fd, seed + 1), n2);
	if (fd >= 0)
		close(fd);
	if (rc == 0) {
		v->n.conns[SOAK_SHORT_HOST]++;
		v->n.h2g += n1;
		v->n.g2h += n2;
	}
	return rc;
}

/* One short connection, of each kind in turn. Return: 0 or -1 (recorded). */
int soak_short_turn(struct soak_vm *v)
{
	switch (v->turn++ % 3) {
	case 0:
		return short_guest(v);
	case 1:
		return short_host(v);
	default:
		return soak_seq_conn(v, soak_next_port(v), soak_next_seed(v));
	}
}
