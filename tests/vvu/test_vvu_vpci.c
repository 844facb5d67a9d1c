/* SPDX-License-Identifier: MIT */
/*
 * The project's virtio-PCI driver (virtio_pci.c) over the VVU model: the
 * whole handshake as the VVU transport does it, messages both ways, and
 * the device-value faults the driver must catch (a capability outside its
 * BAR, queue size 0, a refused vector, bad used entries), each refused
 * with the model left without mappings or interrupts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "transport/vvu/virtio_pci.h"
#include "vvu_model.h"

#define BUF 1024u
#define VERSION_1 (1ull << 32)

struct fx {
	struct vvm *m;
	struct vfio_dev d;
	struct vpci p;
};

static void open_fx(struct fx *f, enum vvm_fault fault, unsigned int at)
{
	struct vvm_config c = { .fault = fault, .fault_at = at };

	memset(f, 0, sizeof(*f));
	assert_int_equal(vvm_new(&f->m, &c), 0);
	vvm_vfio_attach(f->m);
	assert_int_equal(vvm_vfio_open(&f->d, "0000:00:05.0"), 0);
}

static void close_fx(struct fx *f)
{
	vpci_close(&f->p);
	f->d.ops->close(&f->d);
	vvm_vfio_attach(NULL);
	vvm_free(f->m);
}

/* What the VVU transport does: Return: the first failing step's error. */
static int bring_up(struct fx *f)
{
	uint32_t up = 1;
	int rc = vpci_probe(&f->p, &f->d);

	if (rc == 0)
		rc = vpci_reset(&f->p);
	if (rc == 0)
		rc = vpci_negotiate(&f->p, VERSION_1, 0);
	if (rc == 0)
		rc = vpci_setup_vectors(&f->p, VVM_NVECTORS);
	if (rc == 0)
		rc = vpci_setup_queue(&f->p, 0, 256, BUF, 0, true);
	if (rc == 0)
		rc = vpci_setup_queue(&f->p, 1, 256, BUF, 1, false);
	if (rc == 0)
		rc = vpci_driver_ok(&f->p);
	if (rc == 0)
		rc = vpci_cfg_write(&f->p, 0, &up, 4);
	return rc;
}

static void test_handshake_and_messages(void **state)
{
	struct fx f;
	const uint8_t *data;
	uint32_t len;
	uint16_t id;
	uint8_t msg[12] = { 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 }, out[64];

	(void)state;
	open_fx(&f, VVM_FAULT_NONE, 0);
	assert_int_equal(bring_up(&f), 0);
	assert_true(vvm_driver_up(f.m));
	assert_non_null(vpci_find_vcap(&f.p, 6));
	assert_non_null(vpci_find_vcap(&f.p, 7));
	assert_non_null(vpci_find_vcap(&f.p, 8));
	assert_true(f.p.features & (1ull << VVM_F_ACCESS_PLATFORM));
	assert_int_equal(f.p.msix_table_size, VVM_NVECTORS);
	/* rxq: the device's message arrives whole */
	assert_int_equal(vvm_rx_deliver(f.m, msg, sizeof(msg)), 0);
	assert_int_equal(vpci_recv(&f.p, 0, &data, &len, &id), 1);
	assert_int_equal(len, 12);
	assert_memory_equal(data, msg, 12);
	assert_int_equal(vpci_repost(&f.p, 0, id), 0);
	/* a zero-length completion is a valid one (the front end left) */
	assert_int_equal(vvm_rx_deliver(f.m, NULL, 0), 0);
	assert_int_equal(vpci_recv(&f.p, 0, &data, &len, &id), 1);
	assert_int_equal(len, 0);
	assert_int_equal(vpci_repost(&f.p, 0, id), 0);
	/* txq */
	assert_int_equal(vpci_send(&f.p, 1, "reply", 5), 0);
	assert_int_equal(vvm_tx_take(f.m, out, sizeof(out)), 5);
	assert_memory_equal(out, "reply", 5);
	assert_int_equal(vpci_reclaim(&f.p, 1), 1);
	close_fx(&f);
}

static void expect_setup_fails(enum vvm_fault fault)
{
	struct fx f;

	open_fx(&f, fault, 0);
	assert_true(bring_up(&f) < 0);
	assert_false(vvm_driver_up(f.m));
	close_fx(&f);
}

static void test_cap_outside(void **state)
{
	(void)state;
	expect_setup_fails(VVM_FAULT_CAP_OUTSIDE);
}

static void test_queue_size_0(void **state)
{
	(void)state;
	expect_setup_fails(VVM_FAULT_QSIZE0);
}

static void test_vector_refused(void **state)
{
	(void)state;
	expect_setup_fails(VVM_FAULT_VECTOR);
}

static void expect_recv_error(enum vvm_fault fault)
{
	struct fx f;
	const uint8_t *data;
	uint32_t len;
	uint16_t id;
	uint8_t msg[12] = { 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };

	open_fx(&f, fault, 0);
	assert_int_equal(bring_up(&f), 0);
	assert_int_equal(vvm_rx_deliver(f.m, msg, sizeof(msg)), 0);
	assert_int_equal(vpci_recv(&f.p, 0, &data, &len, &id), -EIO);
	close_fx(&f);
}

static void test_used_id(void **state)
{
	(void)state;
	expect_recv_error(VVM_FAULT_USED_ID);
}

static void test_used_len(void **state)
{
	(void)state;
	expect_recv_error(VVM_FAULT_USED_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_and_messages),
		cmocka_unit_test(test_cap_outside),
		cmocka_unit_test(test_queue_size_0),
		cmocka_unit_test(test_vector_refused),
		cmocka_unit_test(test_used_id),
		cmocka_unit_test(test_used_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
