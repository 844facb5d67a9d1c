// SPDX-License-Identifier: MIT
/* Credit helpers: modular arithmetic across the u32 wrap, hostile peer values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine/user/credit.h"

static void test_peer_free_basic(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 4096);
	assert_int_equal(credit_peer_free(&c), 0); /* no buf_alloc from the guest yet */
	assert_true(credit_peer_update(&c, 1000, 0));
	assert_int_equal(credit_peer_free(&c), 1000);
	credit_tx_sent(&c, 600);
	assert_int_equal(credit_peer_free(&c), 400);
	credit_tx_sent(&c, 400);
	assert_int_equal(credit_peer_free(&c), 0);
	assert_true(credit_peer_update(&c, 1000, 700));
	assert_int_equal(credit_peer_free(&c), 700);
}

static void test_peer_free_wraps(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 4096);
	c.tx_cnt = UINT32_MAX - 99;
	c.peer_fwd_cnt = UINT32_MAX - 99;
	assert_true(credit_peer_update(&c, 500, UINT32_MAX - 99));
	credit_tx_sent(&c, 300); /* tx_cnt wraps to 200 */
	assert_int_equal(c.tx_cnt, 200);
	assert_int_equal(credit_peer_free(&c), 200);
	/* the guest acknowledges across the wrap */
	assert_true(credit_peer_update(&c, 500, 50));
	assert_int_equal(credit_peer_free(&c), 350);
	assert_true(credit_peer_update(&c, 500, 200));
	assert_int_equal(credit_peer_free(&c), 500);
}

static void test_peer_shrinks_buffer(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 4096);
	assert_true(credit_peer_update(&c, 1000, 0));
	credit_tx_sent(&c, 900);
	/* 900 in flight, guest now says 100: no credit, not 4 GiB of it */
	assert_true(credit_peer_update(&c, 100, 0));
	assert_int_equal(credit_peer_free(&c), 0);
	assert_true(credit_peer_update(&c, 0, 900));
	assert_int_equal(credit_peer_free(&c), 0);
}

static void test_peer_fwd_cnt_hostile(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 4096);
	assert_true(credit_peer_update(&c, 1000, 0));
	credit_tx_sent(&c, 500);
	/* acknowledges bytes never sent */
	assert_false(credit_peer_update(&c, 1000, 501));
	assert_int_equal(c.peer_fwd_cnt, 0);
	assert_int_equal(c.peer_buf_alloc, 1000);
	assert_true(credit_peer_update(&c, 1000, 300));
	/* moves backwards */
	assert_false(credit_peer_update(&c, 1000, 299));
	assert_false(credit_peer_update(&c, 1000, UINT32_MAX));
	assert_int_equal(c.peer_fwd_cnt, 300);
	assert_int_equal(credit_peer_free(&c), 800);
	/* exactly everything sent is fine */
	assert_true(credit_peer_update(&c, 1000, 500));
	assert_int_equal(credit_peer_free(&c), 1000);
}

static void test_rx_fits_and_wrap(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 1000);
	c.rx_cnt = c.fwd_cnt = c.adv_fwd_cnt = UINT32_MAX - 10;
	assert_true(credit_rx_fits(&c, 1000));
	assert_false(credit_rx_fits(&c, 1001));
	credit_rx_accept(&c, 600); /* rx_cnt wraps */
	assert_int_equal(credit_rx_queued(&c), 600);
	assert_true(credit_rx_fits(&c, 400));
	assert_false(credit_rx_fits(&c, 401));
	assert_false(credit_rx_fits(&c, UINT32_MAX));
	credit_rx_forwarded(&c, 600);
	assert_int_equal(credit_rx_queued(&c), 0);
	assert_int_equal(credit_advertise(&c), (uint32_t)(UINT32_MAX - 10 + 600));
	assert_int_equal(c.adv_fwd_cnt, c.fwd_cnt);
}

static void test_threshold(void **state)
{
	(void)state;
	assert_int_equal(credit_update_threshold(0), 1);
	assert_int_equal(credit_update_threshold(1), 1);
	assert_int_equal(credit_update_threshold(3), 1);
	assert_int_equal(credit_update_threshold(4096), 2048);
	assert_int_equal(credit_update_threshold(256 * 1024), VSOCK_MAX_PKT_LEN);
	assert_int_equal(credit_update_threshold(UINT32_MAX), VSOCK_MAX_PKT_LEN);
}

static void test_update_due(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 4096);
	assert_false(credit_update_due(&c)); /* guest sees all 4096 free */
	credit_rx_accept(&c, 3000);
	credit_rx_forwarded(&c, 3000);
	/* guest sees 1096 free (< 2048), real free is 4096 */
	assert_true(credit_update_due(&c));
	credit_advertise(&c);
	assert_false(credit_update_due(&c));
	/* slow host: guest view low, but we cannot offer much either */
	credit_rx_accept(&c, 4096);
	assert_false(credit_update_due(&c));
	credit_rx_forwarded(&c, 1000); /* real free 1000 < 2048 */
	assert_false(credit_update_due(&c));
	credit_rx_forwarded(&c, 1100); /* real free 2100 */
	assert_true(credit_update_due(&c));
}

static void test_update_due_tiny_buffer(void **state)
{
	struct credit c;

	(void)state;
	/* with buf_alloc 1 an exhausted guest must still be told */
	credit_init(&c, 1);
	credit_rx_accept(&c, 1);
	assert_false(credit_update_due(&c));
	credit_rx_forwarded(&c, 1);
	assert_true(credit_update_due(&c));
}

static void test_update_due_wrap(void **state)
{
	struct credit c;

	(void)state;
	credit_init(&c, 4096);
	c.rx_cnt = c.fwd_cnt = c.adv_fwd_cnt = UINT32_MAX - 1000;
	credit_rx_accept(&c, 4000);
	credit_rx_forwarded(&c, 4000);
	assert_true(credit_update_due(&c));
	credit_advertise(&c);
	assert_false(credit_update_due(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer_free_basic),
		cmocka_unit_test(test_peer_free_wraps),
		cmocka_unit_test(test_peer_shrinks_buffer),
		cmocka_unit_test(test_peer_fwd_cnt_hostile),
		cmocka_unit_test(test_rx_fits_and_wrap),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_update_due),
		cmocka_unit_test(test_update_due_tiny_buffer),
		cmocka_unit_test(test_update_due_wrap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
