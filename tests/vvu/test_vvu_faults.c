/* SPDX-License-Identifier: MIT */
/*
 * Fault injection over the VVU model (PROTOCOLS.md §5.5 item 8 and the
 * device values the driver must check): the daemon runs in process with
 * the model (vvu_daemon_model, argv[1]) as a child of this program, a
 * fault is armed with --model-fault, and a QEMU-like front end connects.
 *
 * Faults in a session (bad messages, bad used entries, a reset under the
 * driver, a memory table larger than BAR 4): the daemon logs an error (or
 * the warning that ends a session over bad peer input), the device is
 * reset (the model logs it), the daemon is back to the fds
 * and memfd mappings it had before the front end came (no leak), and a
 * second front end is served.
 *
 * Without a fault: three front ends one after the other, each departure a
 * device reset, no leak, and the device saw no DMA or ring fault.
 *
 * Faults at probe time (a capability outside its BAR, queue size 0, a
 * refused vector): the daemon logs an error and does not serve; if it
 * exits, it exits with a status, not a signal.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_watch.h"
#include "user_harness.h"

#define GCID 3u
#define WAIT_MS 5000
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)

/*
 * The daemon said what went wrong: an error line, or the warning with
 * which it ends a session over a peer's bad input.
 */
static bool daemon_complained(const struct uh *h)
{
	for (int t = 0; t < WAIT_MS; t += 50) {
		if (uh_log_has(h, "] error: ") || uh_log_has(h, "ending session"))
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static void session_fault(const char *fault)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	const char *extra[] = { "--model-fault", fault, NULL };
	struct uh h;
	struct uh_guest g, g2;
	struct pw_snap base;

	memset(&g, 0, sizeof(g));
	memset(&g2, 0, sizeof(g2));
	uh_watchdog(120);
	assert_int_equal(uh_start(&h, &spec, 1, true, extra), 0);
	assert_int_equal(pw_snap(h.d.pid, &base), 0);
	/* the fault breaks this front end's start-up (or the session right after it) */
	(void)uh_guest_open(&g, &h, 0, F_EVENT_IDX, NULL);
	assert_int_equal(uh_wait_log(&h, "vvu model: injecting fault", 1, WAIT_MS), 0);
	uh_guest_close(&g);
	assert_true(daemon_complained(&h));
	assert_int_equal(uh_wait_log(&h, "vvu model: device reset", 1, WAIT_MS), 0);
	assert_true(uh_alive(&h));
	assert_int_equal(pw_wait_back(h.d.pid, &base, WAIT_MS), 0);
	/* faults fire once: the next front end gets a working device */
	assert_int_equal(uh_guest_open(&g2, &h, 0, F_EVENT_IDX, NULL), 0);
	uh_guest_close(&g2);
	assert_int_equal(pw_wait_back(h.d.pid, &base, WAIT_MS), 0);
	assert_int_equal(uh_stop(&h), 0);
	uh_watchdog(0);
}

static void probe_fault(const char *fault)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	const char *extra[] = { "--model-fault", fault, NULL };
	struct uh h;
	int rc;

	uh_watchdog(120);
	/* the model's socket only appears once the driver is up, which it never is */
	rc = uh_start(&h, &spec, 1, true, extra);
	assert_int_not_equal(rc, 0);
	assert_int_equal(uh_wait_log(&h, "] error: ", 1, WAIT_MS), 0);
	for (int t = 0; t < WAIT_MS && uh_alive(&h); t += 50)
		usleep(50 * 1000);
	if (!uh_alive(&h))
		assert_true(WIFEXITED(h.d.status));
	else
		uh_stop(&h);
	uh_watchdog(0);
}

/*
 * No fault: front ends come and go. Each departure is a zero-length
 * completion after which the daemon resets the device and serves the next
 * one, holding no more fds or mappings than before the first.
 */
static void lifecycle_test(void **state)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	struct uh h;
	struct uh_guest g;
	struct pw_snap base;

	(void)state;
	uh_watchdog(120);
	assert_int_equal(uh_start(&h, &spec, 1, true, NULL), 0);
	assert_int_equal(pw_snap(h.d.pid, &base), 0);
	for (unsigned int i = 1; i <= 3; i++) {
		memset(&g, 0, sizeof(g));
		assert_int_equal(uh_guest_open(&g, &h, 0, F_EVENT_IDX, NULL), 0);
		uh_guest_close(&g);
		assert_int_equal(uh_wait_log(&h, "vvu model: device reset", i, WAIT_MS), 0);
		assert_int_equal(pw_wait_back(h.d.pid, &base, WAIT_MS), 0);
	}
	assert_int_equal(uh_log_count(&h, "front end 3 ends: disconnected"), 1);
	assert_false(uh_log_has(&h, "vvu model: DMA fault"));
	assert_false(uh_log_has(&h, "vvu model: ring fault"));
	assert_int_equal(uh_stop(&h), 0);
	uh_watchdog(0);
}

/* cmocka hands each case its --model-fault value as the initial state */
static void session_test(void **state)
{
	session_fault(*state);
}

static void probe_test(void **state)
{
	probe_fault(*state);
}

int main(int argc, char **argv)
{
	/* @N: the rx message (from 0) the fault hits; 3 is inside QEMU's start-up */
	const struct CMUnitTest tests[] = {
		{ "lifecycle", lifecycle_test, NULL, NULL, NULL },
		{ "oversize", session_test, NULL, NULL, "oversize@3" },
		{ "truncated", session_test, NULL, NULL, "truncated@3" },
		{ "size-mismatch", session_test, NULL, NULL, "size-mismatch@3" },
		{ "unknown-request", session_test, NULL, NULL, "unknown-request@3" },
		{ "vring-index", session_test, NULL, NULL, "vring-index@0" },
		{ "bad-layout", session_test, NULL, NULL, "bad-layout@0" },
		{ "reset-while-running", session_test, NULL, NULL, "reset@12" },
		{ "used-id", session_test, NULL, NULL, "used-id@3" },
		{ "used-len", session_test, NULL, NULL, "used-len@3" },
		{ "cap-outside", probe_test, NULL, NULL, "cap-outside" },
		{ "queue-size-0", probe_test, NULL, NULL, "queue-size-0" },
		{ "vector-refused", probe_test, NULL, NULL, "vector-refused" },
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
