// SPDX-License-Identifier: MIT
/*
 * Userspace engine, several VMs and front-end life cycles: two guests
 * talking through sibling routing (and the groups that forbid it), a front
 * end that disconnects and comes back (repeatedly, with connections open),
 * a guest that breaks its tx ring (its session fails cleanly, its host
 * connections close, the other VM keeps going, the daemon keeps serving),
 * and crosvm's set-up (all three rings, no REPLY_ACK). Each test ends by
 * checking that the daemon is alive and exits 0 on SIGTERM.
 *
 * Two guests run at once on two threads, one tfe_vm each (the library is
 * per-VM single-threaded).
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "user_harness.h"

#define MIB (1024u * 1024u)
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)
#define F_INDIRECT (1ull << TFE_F_INDIRECT_DESC)
#define SIB_PORT 9000u

struct fx {
	struct uh h;
	struct uh_guest g[UH_MAX_VMS];
	bool running;
};

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	uh_watchdog(120);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	for (unsigned int i = 0; i < UH_MAX_VMS; i++)
		uh_guest_close(&f->g[i]);
	if (f->running)
		uh_stop(&f->h);
	f->running = false;
	uh_watchdog(0);
	return 0;
}

static void start(struct fx *f, const struct uh_vm_spec *specs, unsigned int n)
{
	assert_int_equal(uh_start(&f->h, specs, n, false, NULL), 0);
	f->running = true;
}

static void finish(struct fx *f)
{
	assert_true(uh_alive(&f->h));
	for (unsigned int i = 0; i < UH_MAX_VMS; i++)
		uh_guest_close(&f->g[i]);
	f->running = false;
	assert_int_equal(uh_stop(&f->h), 0);
}

/* Receive @total pattern bytes on @c and check them. Return: 0 or negative errno. */
static int recv_pattern(struct uh_guest *g, struct tfe_vsock_conn *c, size_t total, uint32_t seed)
{
	static __thread uint8_t buf[32768];
	size_t got = 0;

	while (got < total) {
		ssize_t n = tfe_vsock_recv_wait(&g->vs, c, buf, sizeof(buf), 10000);

		if (n <= 0)
			return n == 0 ? -EPIPE : (int)n;
		if (uh_check(buf, seed, got, (size_t)n) != (size_t)n)
			return -EBADMSG;
		got += (size_t)n;
	}
	return 0;
}

static int send_pattern(struct uh_guest *g, struct tfe_vsock_conn *c, size_t total, uint32_t seed)
{
	static __thread uint8_t buf[20000];
	size_t sent = 0;
	uint32_t rnd = seed;

	while (sent < total) {
		size_t n = 1 + uh_rand(&rnd) % sizeof(buf);
		int rc;

		if (n > total - sent)
			n = total - sent;
		uh_fill(buf, seed, sent, n);
		rc = tfe_vsock_send_all(&g->vs, c, buf, n, 10000);
		if (rc < 0)
			return rc;
		sent += n;
	}
	return 0;
}

/* ---- siblings ---- */

struct peer_job {
	struct uh_guest *g;
	int rc;
};

/* Guest B: accept, take 2 MiB, send 1 MiB back, wait for A's close. */
static void *peer_b(void *arg)
{
	struct peer_job *j = arg;
	struct tfe_vsock_conn *c;
	uint8_t b;

	j->rc = tfe_vsock_accept(&j->g->vs, SIB_PORT, 10000, &c);
	if (j->rc == 0)
		j->rc = recv_pattern(j->g, c, 2 * MIB, 71);
	if (j->rc == 0)
		j->rc = send_pattern(j->g, c, MIB, 72);
	if (j->rc == 0 && tfe_vsock_recv_wait(&j->g->vs, c, &b, 1, 10000) != 0)
		j->rc = -EPROTO;
	/* keep answering until A is done with its close */
	tfe_vsock_wait(&j->g->vs, 200);
	return NULL;
}

static void test_siblings(void **state)
{
	const struct uh_vm_spec specs[] = {
		{ .cid = 3, .groups = "g1" },
		{ .cid = 4, .groups = "g1+g2" },
		{ .cid = 5, .groups = "g2" },
	};
	struct tfe_vsock_opts small_rx = { .rx_buf_size = 2048 };
	struct peer_job job = { .g = NULL };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	pthread_t t;

	start(f, specs, 3);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(uh_guest_open(&f->g[i], &f->h, i, F_EVENT_IDX | F_INDIRECT,
					       i == 1 ? &small_rx : NULL), 0);
	assert_int_equal(tfe_vsock_listen(&f->g[1].vs, SIB_PORT), 0);
	assert_int_equal(tfe_vsock_listen(&f->g[2].vs, SIB_PORT), 0);
	job.g = &f->g[1];
	assert_int_equal(pthread_create(&t, NULL, peer_b, &job), 0);
	/* A (g1) reaches B (g1+g2); packets larger than B's rx buffers arrive in pieces */
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 4, SIB_PORT, 50000, 10000, &c), 0);
	assert_int_equal(send_pattern(&f->g[0], c, 2 * MIB, 71), 0);
	assert_int_equal(recv_pattern(&f->g[0], c, MIB, 72), 0);
	assert_int_equal(tfe_vsock_close(&f->g[0].vs, c, 5000), 0);
	pthread_join(t, NULL);
	assert_int_equal(job.rc, 0);
	/* A and C share no group, and nobody has CID 77: dropped, no answer at all */
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 5, SIB_PORT, 50001, 500, &c), -ETIMEDOUT);
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 77, SIB_PORT, 50002, 500, &c), -ETIMEDOUT);
	/* C saw nothing of it */
	tfe_vsock_poll(&f->g[2].vs);
	assert_int_equal(f->g[2].vs.rx_pkts, 0);
	finish(f);
}

/* A sibling whose front end is gone: packets to it drop, the sender is never held up. */
static void test_sibling_gone(void **state)
{
	const struct uh_vm_spec specs[] = { { .cid = 3 }, { .cid = 4 } };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int lfd, fd;

	start(f, specs, 2);
	assert_int_equal(uh_guest_open(&f->g[0], &f->h, 0, F_EVENT_IDX, NULL), 0);
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 4, SIB_PORT, 50000, 300, &c), -ETIMEDOUT);
	/* A's traffic to the host is unaffected */
	lfd = uh_host_listen(f->h.uds[0], 5000, SOCK_STREAM);
	assert_true(lfd >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 2, 5000, 50001, 5000, &c), 0);
	fd = uh_accept(lfd, &f->g[0], 5000);
	assert_true(fd >= 0);
	assert_int_equal(uh_guest_to_host(&f->g[0], c, fd, MIB, 80, 30000), 0);
	close(fd);
	close(lfd);
	finish(f);
}

/* ---- front-end life cycle ---- */

static void test_reconnect(void **state)
{
	const struct uh_vm_spec spec = { .cid = 3 };
	struct tfe_vsock_conn *c;
	struct fx *f = *state;
	int lfd, fd, hfd;

	start(f, &spec, 1);
	lfd = uh_host_listen(f->h.uds[0], 5000, SOCK_STREAM);
	assert_true(lfd >= 0);
	for (unsigned int round = 0; round < 3; round++) {
		assert_int_equal(uh_guest_open(&f->g[0], &f->h, 0, F_EVENT_IDX, NULL), 0);
		assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 2, 5000, 50000, 5000, &c), 0);
		fd = uh_accept(lfd, &f->g[0], 5000);
		assert_true(fd >= 0);
		assert_int_equal(uh_guest_to_host(&f->g[0], c, fd, MIB, 90 + round, 30000), 0);
		/* a host → guest connection is open too when the VMM goes away */
		assert_int_equal(tfe_vsock_listen(&f->g[0].vs, 6000), 0);
		hfd = uh_host_connect(f->h.uds[0], 6000, SOCK_STREAM);
		assert_true(hfd >= 0);
		assert_int_equal(tfe_vsock_accept(&f->g[0].vs, 6000, 5000, &c), 0);
		assert_int_equal(uh_host_wait_ok(hfd, &f->g[0], 5000), 0);
		uh_guest_close(&f->g[0]);
		/* the daemon closes the host side of both */
		assert_true(uh_host_closed(fd, NULL, 5000));
		assert_true(uh_host_closed(hfd, NULL, 5000));
		close(fd);
		close(hfd);
		assert_true(uh_alive(&f->h));
	}
	close(lfd);
	finish(f);
}

static uint64_t offered(struct tfe_fe *fe)
{
	uint64_t v = 0;

	assert_int_equal(tfe_fe_get_u64(fe, VU_REQ_GET_FEATURES, &v), 0);
	return v;
}

/* VM 0 breaks its tx ring; VM 1 goes on; VM 0 is served again after a reconnect. */
static void test_broken_ring(void **state)
{
	const struct uh_vm_spec specs[] = { { .cid = 3 }, { .cid = 4 } };
	struct tfe_vsock_conn *c0, *c1;
	struct fx *f = *state;
	struct tfe_vring *tx;
	int lfd0, lfd1, fd0, fd1;

	start(f, specs, 2);
	for (unsigned int i = 0; i < 2; i++)
		assert_int_equal(uh_guest_open(&f->g[i], &f->h, i, F_EVENT_IDX, NULL), 0);
	lfd0 = uh_host_listen(f->h.uds[0], 5000, SOCK_STREAM);
	lfd1 = uh_host_listen(f->h.uds[1], 5000, SOCK_STREAM);
	assert_true(lfd0 >= 0 && lfd1 >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 2, 5000, 50000, 5000, &c0), 0);
	assert_int_equal(tfe_vsock_connect(&f->g[1].vs, 2, 5000, 50000, 5000, &c1), 0);
	fd0 = uh_accept(lfd0, &f->g[0], 5000);
	fd1 = uh_accept(lfd1, &f->g[1], 5000);
	assert_true(fd0 >= 0 && fd1 >= 0);
	/* the avail index jumps by more than the queue size (virtio: at most num) */
	tx = &f->g[0].vm.vq[1];
	assert_int_equal(tfe_vring_set_avail_idx(tx, (uint16_t)(tx->avail_idx + tx->num + 5)), 0);
	assert_int_equal(tfe_vring_notify(tx), 0);
	assert_true(uh_host_closed(fd0, NULL, 5000));
	assert_true(uh_log_has(&f->h, "tx ring broken"));
	/* the session stays up and answers; the other VM is untouched */
	assert_true(offered(&f->g[0].vm.fe) & (1ull << TFE_F_VERSION_1));
	assert_int_equal(uh_guest_to_host(&f->g[1], c1, fd1, 2 * MIB, 100, 30000), 0);
	/* the VMM gives up on VM 0 and reconnects: served as new */
	uh_guest_close(&f->g[0]);
	close(fd0);
	assert_int_equal(uh_wait_log(&f->h, "cid3: front end disconnected", 1, 5000), 0);
	assert_int_equal(uh_guest_open(&f->g[0], &f->h, 0, F_EVENT_IDX, NULL), 0);
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, 2, 5000, 50001, 5000, &c0), 0);
	fd0 = uh_accept(lfd0, &f->g[0], 5000);
	assert_true(fd0 >= 0);
	assert_int_equal(uh_guest_to_host(&f->g[0], c0, fd0, MIB, 101, 30000), 0);
	close(fd0);
	close(fd1);
	close(lfd0);
	close(lfd1);
	finish(f);
}

/* crosvm configures the event queue too and negotiates no REPLY_ACK. */
static void test_crosvm(void **state)
{
	const struct uh_vm_spec spec = { .cid = 7 };
	struct tfe_setup_opts so = {
		.queue_size = 256,
		.want_features = (1ull << TFE_F_VERSION_1) | F_EVENT_IDX | F_INDIRECT,
	};
	struct tfe_vsock_opts o = { .tx_indirect = true };
	struct tfe_vsock_conn *c;
	struct uh_guest *g;
	struct fx *f = *state;
	uint32_t base = 1;
	int fd;

	start(f, &spec, 1);
	g = &f->g[0];
	assert_int_equal(tfe_vm_open(&g->vm, f->h.sock[0], UH_GUEST_MEM, false, 5000), 0);
	assert_int_equal(tfe_setup_crosvm(&g->vm, &so), 0);
	assert_int_equal(g->vm.config_cid, 0); /* crosvm does not ask */
	g->cid = 7;
	assert_int_equal(tfe_vsock_init(&g->vs, &g->vm.mem, &g->vm.vq[0], &g->vm.vq[1],
					&g->vm.vq[2], 7, &o), 0);
	g->open = true;
	assert_int_equal(tfe_vsock_listen(&g->vs, 6000), 0);
	fd = uh_host_connect(f->h.uds[0], 6000, SOCK_STREAM);
	assert_true(fd >= 0);
	assert_int_equal(tfe_vsock_accept(&g->vs, 6000, 5000, &c), 0);
	assert_int_equal(uh_host_wait_ok(fd, g, 5000), 0);
	assert_int_equal(uh_host_to_guest(g, c, fd, 2 * MIB, 110, 30000), 0);
	assert_int_equal(uh_guest_to_host(g, c, fd, 2 * MIB, 111, 30000), 0);
	/* the event queue is never used: its base is where it started */
	assert_int_equal(tfe_fe_get_vring_base(&g->vm.fe, 2, &base), 0);
	assert_int_equal(base, 0);
	close(fd);
	finish(f);
}

/*
 * A crosvm-style front end re-attaches to a guest that already moved data:
 * the daemon no longer holds its connections and says so on the event
 * queue (one TRANSPORT_RESET); a new connection then works.
 */
static void test_crosvm_reattach_resets_transport(void **state)
{
	const struct uh_vm_spec spec = { .cid = 7 };
	struct tfe_setup_opts so = {
		.queue_size = 256,
		.want_features = (1ull << TFE_F_VERSION_1) | F_EVENT_IDX,
	};
	struct tfe_vsock_opts o = { 0 };
	struct tfe_vsock_conn *c;
	struct uh_guest *g;
	struct fx *f = *state;
	int fd;

	start(f, &spec, 1);
	g = &f->g[0];
	assert_int_equal(tfe_vm_open(&g->vm, f->h.sock[0], UH_GUEST_MEM, false, 5000), 0);
	assert_int_equal(tfe_setup_crosvm(&g->vm, &so), 0);
	g->cid = 7;
	assert_int_equal(tfe_vsock_init(&g->vs, &g->vm.mem, &g->vm.vq[0], &g->vm.vq[1],
					&g->vm.vq[2], 7, &o), 0);
	g->open = true;
	assert_int_equal(tfe_vsock_listen(&g->vs, 6000), 0);
	fd = uh_host_connect(f->h.uds[0], 6000, SOCK_STREAM);
	assert_true(fd >= 0);
	assert_int_equal(tfe_vsock_accept(&g->vs, 6000, 5000, &c), 0);
	assert_int_equal(uh_host_wait_ok(fd, g, 5000), 0);
	assert_int_equal(uh_host_to_guest(g, c, fd, 256 * 1024, 120, 30000), 0);
	close(fd);
	assert_int_equal(g->vs.events, 0);
	assert_int_equal(tfe_resume_crosvm(&g->vm, f->h.sock[0], &so, 5000), 0);
	assert_int_equal(uh_wait_log(&f->h, "told it the transport was reset", 1, 5000), 0);
	for (int i = 0; i < 50 && g->vs.events == 0; i++)
		tfe_vsock_wait(&g->vs, 100);
	assert_int_equal(g->vs.events, 1);
	/* the device still works for a connection of the new session */
	assert_int_equal(tfe_vsock_listen(&g->vs, 6001), 0);
	fd = uh_host_connect(f->h.uds[0], 6001, SOCK_STREAM);
	assert_true(fd >= 0);
	assert_int_equal(tfe_vsock_accept(&g->vs, 6001, 5000, &c), 0);
	assert_int_equal(uh_host_wait_ok(fd, g, 5000), 0);
	assert_int_equal(uh_guest_to_host(g, c, fd, 256 * 1024, 121, 30000), 0);
	close(fd);
	finish(f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_siblings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sibling_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crosvm_reattach_resets_transport, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crosvm, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

