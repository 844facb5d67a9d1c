// SPDX-License-Identifier: MIT
/*
 * The daemon restarted under a running guest (issue 16, item 2), userspace
 * engine; tests/peers/run-restart.sh does the same against real QEMU.
 *
 *  - SIGTERM with a connection open: the leaving daemon puts an RST for it
 *    in the guest's rx ring, so the guest's socket fails at once (QEMU
 *    never reconnects a vsock device to the next daemon, README
 *    "Restarting the daemon").
 *  - SIGKILL, a new daemon, and a front end that reconnects keeping its
 *    guest and rings (crosvm; tfe_resume_crosvm): the new daemon resumes
 *    each ring at the base it is given (traffic goes on with nothing
 *    dropped or replayed), tells the guest its transport was reset, answers
 *    a packet of an old connection it never knew with RST, and serves new
 *    connections both ways.
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "user_harness.h"

#define CID 7u
#define OLD_PORT 5000u
#define NEW_PORT 5001u
#define GUEST_PORT 6000u
#define OLD_SRC 41000u
#define XFER (256u * 1024)

struct fx {
	struct uh h[2]; /* the first daemon, the one started after it */
	struct uh_guest g;
	bool running[2];
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

	uh_guest_close(&f->g);
	for (unsigned int i = 0; i < 2; i++) {
		if (f->running[i])
			uh_stop(&f->h[i]);
		f->running[i] = false;
	}
	uh_watchdog(0);
	return 0;
}

static void start(struct fx *f, unsigned int i)
{
	const struct uh_vm_spec spec = { .cid = CID };

	assert_int_equal(uh_start(&f->h[i], &spec, 1, true, NULL), 0);
	f->running[i] = true;
}

/* A guest connection to host port @port of daemon @i with data both ways. */
static struct tfe_vsock_conn *busy_conn(struct fx *f, unsigned int i, uint32_t port, uint32_t src,
					uint32_t seed, int *fd)
{
	struct tfe_vsock_conn *c = NULL;
	int l = uh_host_listen(f->h[i].uds[0], port, SOCK_STREAM);

	assert_true(l >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g.vs, TFE_VSOCK_HOST_CID, port, src, 5000, &c), 0);
	*fd = uh_accept(l, &f->g, 5000);
	close(l);
	assert_true(*fd >= 0);
	assert_int_equal(uh_guest_to_host(&f->g, c, *fd, XFER, seed, 30000), 0);
	assert_int_equal(uh_host_to_guest(&f->g, c, *fd, XFER, seed + 1, 30000), 0);
	return c;
}

static bool conn_closed(void *ctx)
{
	const struct tfe_vsock_conn *c = ctx;

	return c->state == TFE_CONN_CLOSED;
}

static void test_sigterm_resets_guest_connections(void **state)
{
	struct fx *f = *state;
	struct tfe_vsock_conn *c;
	int fd;

	start(f, 0);
	assert_int_equal(uh_guest_open(&f->g, &f->h[0], 0, 1ull << TFE_F_EVENT_IDX, NULL), 0);
	c = busy_conn(f, 0, OLD_PORT, OLD_SRC, 11, &fd);
	f->running[0] = false;
	assert_int_equal(uh_stop(&f->h[0]), 0);
	/* the daemon is gone: only what it left in the rx ring can end it */
	assert_int_equal(tfe_vsock_wait_until(&f->g.vs, conn_closed, c, 5000), 0);
	assert_true(c->rst_received);
	assert_int_equal(c->error, -ECONNRESET);
	close(fd);
}

/* A crash: no farewell, the guest keeps its rings as they were. */
static void crash(struct fx *f, unsigned int i)
{
	assert_int_equal(kill(f->h[i].d.pid, SIGKILL), 0);
	for (int n = 0; n < 500 && tfe_daemon_alive(&f->h[i].d); n++)
		usleep(10 * 1000);
	assert_false(tfe_daemon_alive(&f->h[i].d));
	f->running[i] = false;
}

static uint16_t used_idx(const struct fx *f, unsigned int ring)
{
	return le16toh(f->g.vm.vq[ring].used->idx);
}

static void test_restart_resumes_rings(void **state)
{
	struct tfe_setup_opts so = {
		.want_features = (1ull << TFE_F_VERSION_1) | (1ull << TFE_F_EVENT_IDX),
	};
	struct tfe_vsock_conn *old, *c;
	struct tfe_vsock_pkt p;
	struct uh_pkt reply;
	struct fx *f = *state;
	uint16_t rx0, tx0;
	int ofd, fd;

	start(f, 0);
	assert_int_equal(tfe_vm_open(&f->g.vm, f->h[0].sock[0], UH_GUEST_MEM, false, 5000), 0);
	assert_int_equal(tfe_setup_crosvm(&f->g.vm, &so), 0);
	f->g.cid = CID;
	assert_int_equal(tfe_vsock_init(&f->g.vs, &f->g.vm.mem, &f->g.vm.vq[0], &f->g.vm.vq[1],
					&f->g.vm.vq[2], CID, NULL), 0);
	f->g.open = true;
	old = busy_conn(f, 0, OLD_PORT, OLD_SRC, 21, &ofd);
	rx0 = used_idx(f, 0);
	tx0 = used_idx(f, 1);
	assert_true(rx0 > 0 && tx0 > 0);
	crash(f, 0);
	close(ofd);

	start(f, 1);
	assert_int_equal(tfe_resume_crosvm(&f->g.vm, f->h[1].sock[0], &so, 5000), 0);
	assert_int_equal(uh_wait_log(&f->h[1], "told it the transport was reset", 1, 5000), 0);
	for (int i = 0; i < 50 && f->g.vs.events == 0; i++)
		tfe_vsock_wait(&f->g.vs, 100);
	assert_int_equal(f->g.vs.events, 1);

	/* a guest that missed the event still writes on its old connection */
	tfe_vsock_conn_pkt(&f->g.vs, old, TFE_VSOCK_OP_RW, 0, &p);
	p.len = 4;
	assert_int_equal(uh_raw_send(&f->g, &p, "late", 4), 0);
	assert_int_equal(uh_raw_recv(&f->g, &reply, 5000), 0);
	assert_int_equal(reply.h.op, TFE_VSOCK_OP_RST);
	assert_int_equal(reply.h.dst_port, OLD_SRC);
	assert_int_equal(reply.h.src_port, OLD_PORT);
	assert_int_equal(reply.h.dst_cid, CID);

	/* new connections both ways, on rings that went on from where they were */
	c = busy_conn(f, 1, NEW_PORT, OLD_SRC + 1, 31, &fd);
	close(fd);
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	fd = uh_host_connect(f->h[1].uds[0], GUEST_PORT, SOCK_STREAM);
	assert_true(fd >= 0);
	assert_int_equal(tfe_vsock_accept(&f->g.vs, GUEST_PORT, 5000, &c), 0);
	assert_int_equal(uh_host_wait_ok(fd, &f->g, 5000), 0);
	assert_int_equal(uh_host_to_guest(&f->g, c, fd, XFER, 41, 30000), 0);
	assert_int_equal(uh_guest_to_host(&f->g, c, fd, XFER, 42, 30000), 0);
	close(fd);
	assert_true((uint16_t)(used_idx(f, 0) - rx0) > 0);
	assert_true((uint16_t)(used_idx(f, 1) - tx0) > 0);
	assert_false(uh_log_has(&f->h[1], "broken"));
	assert_true(uh_alive(&f->h[1]));
	uh_guest_close(&f->g);
	f->running[1] = false;
	assert_int_equal(uh_stop(&f->h[1]), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sigterm_resets_guest_connections, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_restart_resumes_rings, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
