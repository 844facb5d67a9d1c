// SPDX-License-Identifier: MIT
/*
 * Endurance (issue 7, item 6), userspace engine:
 *
 *   - front-end cycles: connect, the whole QEMU (or crosvm, every other
 *     cycle) set-up, disconnect; every 50th cycle also carries data;
 *   - guest connections opened and closed one after the other, half from
 *     the guest to a host listener, half from a host client to a guest
 *     listener, each with a little data both ways and an orderly close.
 *
 * Afterwards the daemon holds exactly the fds and memfd mappings it held
 * before the first front end, and its resident memory is back within
 * RSS_SLACK_KB of the start: glibc keeps freed chunks in its arenas (the VM
 * thread's arena appears with its first allocation and is never returned
 * whole), and pages touched once for the first session's ring iovec arrays
 * and indirect-table copy stay resident though free. Growth per cycle,
 * which a leak shows, is far above that over these counts.
 *
 * Counts: VUV_ENDURANCE_CYCLES (default 1000), VUV_ENDURANCE_CONNS (10000).
 * Under a wrapper (valgrind) and in sanitizer builds the RSS
 * comparison is skipped (rss_meaningful()); fds and mappings are always
 * compared. argv[1]: the daemon.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_watch.h"
#include "user_harness.h"
#include "util/sanitizer.h"

#define GCID 3u
#define HOST_PORT 5000u
#define GUEST_PORT 6000u
#define SMALL_MEM (2u << 20)
#define RSS_SLACK_KB 1024
#define WAIT_MS 5000
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)
#define F_INDIRECT (1ull << TFE_F_INDIRECT_DESC)

struct fx {
	struct uh h;
	struct uh_guest g;
	struct pw_snap base;
	int lfd;
	bool running;
};

static int setup(void **state)
{
	static struct fx f;
	const struct uh_vm_spec spec = { .cid = GCID };

	memset(&f, 0, sizeof(f));
	uh_watchdog(600);
	if (uh_start(&f.h, &spec, 1, true, NULL) < 0)
		return -1;
	f.running = true;
	f.lfd = uh_host_listen(f.h.uds[0], HOST_PORT, SOCK_STREAM);
	if (f.lfd < 0 || pw_snap(f.h.d.pid, &f.base) < 0)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int rc = 0;

	uh_guest_close(&f->g);
	if (f->lfd >= 0)
		close(f->lfd);
	/* the daemon ends cleanly: exit 0 (under valgrind: no error, no leak) */
	if (f->running)
		rc = uh_stop(&f->h);
	uh_watchdog(0);
	return rc ? -1 : 0;
}

/*
 * Whether RSS means anything: not under a wrapper (it measures valgrind),
 * nor in a sanitizer build (this program's build is the daemon's): freed
 * memory waits in ASan's quarantine, up to 256 MiB, by design, and TSan
 * keeps shadow and history memory that grows with what the threads touch.
 */
static bool rss_meaningful(void)
{
	const char *w = getenv("VUV_DAEMON_WRAPPER");

	return !(w && *w) && !SANITIZER_BUILD;
}

/* Back to the start: same fds and mappings, RSS within the slack. */
static void assert_back(struct fx *f, const char *what)
{
	long rss;

	assert_int_equal(pw_wait_back(f->h.d.pid, &f->base, WAIT_MS), 0);
	rss = pw_rss_kb(f->h.d.pid);
	printf("  after %s: %d fds, %d memfd maps (as at start); RSS %ld KiB (start %ld)\n", what,
	       f->base.fds, f->base.memfds, rss, f->base.rss_kb);
	if (rss_meaningful() && rss - f->base.rss_kb > RSS_SLACK_KB)
		fail_msg("%s: RSS grew by %ld KiB", what, rss - f->base.rss_kb);
}

/* 64 KiB from a guest connection to the host listener. */
static int carry(struct fx *f, struct uh_guest *g, uint32_t src, uint32_t seed)
{
	struct tfe_vsock_conn *c;
	int fd, rc = tfe_vsock_connect(&g->vs, 2, HOST_PORT, src, WAIT_MS, &c);

	if (rc < 0)
		return rc;
	fd = uh_accept(f->lfd, g, WAIT_MS);
	if (fd < 0)
		return fd;
	rc = uh_guest_to_host(g, c, fd, 65536, seed, 10000);
	if (rc == 0)
		rc = tfe_vsock_close(&g->vs, c, WAIT_MS);
	close(fd);
	return rc;
}

/* One VMM session: set up like QEMU or crosvm, maybe carry data, leave. */
static int cycle(struct fx *f, unsigned long i)
{
	const struct tfe_setup_opts so = { .want_features = F_EVENT_IDX | F_INDIRECT };
	static struct uh_guest g;
	int rc = tfe_vm_open(&g.vm, f->h.sock[0], SMALL_MEM, true, WAIT_MS);

	if (rc < 0)
		return rc;
	rc = i % 2 ? tfe_setup_crosvm(&g.vm, &so) : tfe_setup_qemu(&g.vm, &so);
	if (rc == 0 && i % 50 == 0) {
		rc = tfe_vsock_init(&g.vs, &g.vm.mem, &g.vm.vq[0], &g.vm.vq[1], NULL, GCID, NULL);
		if (rc == 0)
			rc = carry(f, &g, 40000, (uint32_t)i);
		tfe_vsock_fini(&g.vs);
	}
	tfe_vm_close(&g.vm);
	/* one front end at a time: wait for the daemon to let this one go */
	return rc ? rc : pw_wait_back(f->h.d.pid, &f->base, WAIT_MS);
}

static void test_frontend_cycles(void **state)
{
	struct fx *f = *state;
	unsigned long n = pw_env_count("VUV_ENDURANCE_CYCLES", 1000);
	int64_t t0 = tfe_now_ms();

	for (unsigned long i = 0; i < n; i++) {
		int rc = cycle(f, i);

		if (rc != 0)
			fail_msg("cycle %lu: %s", i, strerror(-rc));
	}
	printf("  %lu front-end cycles in %lld ms\n", n, (long long)(tfe_now_ms() - t0));
	assert_true(uh_alive(&f->h));
	assert_back(f, "the front-end cycles");
}

/* A host client for guest port GUEST_PORT, 4 KiB each way, orderly close. */
static int host_side(struct fx *f, uint32_t seed)
{
	struct tfe_vsock_conn *c;
	int rc, fd = uh_host_connect(f->h.uds[0], GUEST_PORT, SOCK_STREAM);

	if (fd < 0)
		return fd;
	rc = tfe_vsock_accept(&f->g.vs, GUEST_PORT, WAIT_MS, &c);
	if (rc == 0)
		rc = uh_host_wait_ok(fd, &f->g, WAIT_MS);
	if (rc == 0)
		rc = uh_host_to_guest(&f->g, c, fd, 4096, seed, 10000);
	if (rc == 0)
		rc = uh_guest_to_host(&f->g, c, fd, 4096, seed + 1, 10000);
	if (rc == 0)
		rc = tfe_vsock_close(&f->g.vs, c, WAIT_MS);
	close(fd);
	return rc;
}

static int guest_side(struct fx *f, uint32_t src, uint32_t seed)
{
	struct tfe_vsock_conn *c;
	int fd, rc = tfe_vsock_connect(&f->g.vs, 2, HOST_PORT, src, WAIT_MS, &c);

	if (rc < 0)
		return rc;
	fd = uh_accept(f->lfd, &f->g, WAIT_MS);
	if (fd < 0)
		return fd;
	rc = uh_guest_to_host(&f->g, c, fd, 4096, seed, 10000);
	if (rc == 0)
		rc = uh_host_to_guest(&f->g, c, fd, 4096, seed + 1, 10000);
	if (rc == 0)
		rc = tfe_vsock_close(&f->g.vs, c, WAIT_MS);
	close(fd);
	return rc;
}

static void test_guest_connections(void **state)
{
	struct fx *f = *state;
	unsigned long n = pw_env_count("VUV_ENDURANCE_CONNS", 10000);
	int64_t t0 = tfe_now_ms();
	struct pw_snap during;
	uint64_t features;

	assert_int_equal(uh_guest_open(&f->g, &f->h, 0, F_EVENT_IDX, NULL), 0);
	assert_int_equal(tfe_vsock_listen(&f->g.vs, GUEST_PORT), 0);
	/* a reply proves the daemon handled the whole set-up before the snapshot */
	assert_int_equal(tfe_fe_get_u64(&f->g.vm.fe, VU_REQ_GET_FEATURES, &features), 0);
	assert_int_equal(pw_snap(f->h.d.pid, &during), 0);
	for (unsigned long i = 0; i < n; i++) {
		int rc = i % 2 ? host_side(f, (uint32_t)i)
			       : guest_side(f, 30000 + (uint32_t)(i % 20000), (uint32_t)i);

		if (rc != 0)
			fail_msg("connection %lu: %s", i, strerror(-rc));
	}
	printf("  %lu guest connections in %lld ms\n", n, (long long)(tfe_now_ms() - t0));
	/* with the guest still there: no connection left behind */
	assert_int_equal(pw_wait_back(f->h.d.pid, &during, WAIT_MS), 0);
	uh_guest_close(&f->g);
	assert_true(uh_alive(&f->h));
	assert_back(f, "the guest connections");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frontend_cycles),
		cmocka_unit_test(test_guest_connections),
	};
	int rc;

	if (uh_args(argc, argv) < 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = cmocka_run_group_tests(tests, setup, teardown);
	return rc;
}
