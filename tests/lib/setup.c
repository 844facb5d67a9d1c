// SPDX-License-Identifier: MIT
/*
 * Canned front-end sequences: the order in which QEMU 7.2 (REAL-PEERS §5,
 * observed) and crosvm (PROTOCOLS §1.11, from its source) set up a
 * vhost-user-vsock back end, so that tests exercise the daemon the way real
 * VMMs do. Each step is named in the log when it fails; the first failure
 * ends the sequence and is returned.
 *
 * Feature choice: the front end acks what the back end offers intersected
 * with what the test wants (default VERSION_1), plus bit 30 when offered,
 * as QEMU does after the guest driver acked its set.
 */
#include "tfe.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#define QEMU_QUEUE_SIZE 128
#define CROSVM_QUEUE_SIZE 256
#define VM_PROTOCOL_BIT (1ull << VU_F_PROTOCOL_FEATURES)

int tfe_vm_open(struct tfe_vm *vm, const char *path, uint64_t mem_size, bool hole, int timeout_ms)
{
	int rc;

	memset(vm, 0, sizeof(*vm));
	tfe_fe_init(&vm->fe, -1);
	rc = tfe_mem_init(&vm->mem, mem_size, hole);
	if (rc < 0)
		return rc;
	rc = tfe_fe_connect(&vm->fe, path, timeout_ms);
	if (rc < 0)
		tfe_mem_fini(&vm->mem);
	return rc;
}

void tfe_vm_close(struct tfe_vm *vm)
{
	tfe_fe_close(&vm->fe);
	for (unsigned int i = 0; i < TFE_MAX_QUEUES; i++)
		tfe_vring_fini(&vm->vq[i]);
	tfe_mem_fini(&vm->mem);
}

/* Log the failing step once; pass rc through. */
static int step(const char *seq, const char *what, unsigned int ring, int rc)
{
	if (rc < 0)
		tfe_log(1, "%s sequence: %s (ring %u) failed: %s", seq, what, ring, strerror(-rc));
	return rc;
}

static uint64_t acked_features(const struct tfe_vm *vm, const struct tfe_setup_opts *o)
{
	uint64_t want = o->want_features ? o->want_features : 1ull << TFE_F_VERSION_1;
	uint64_t acked = vm->features_offered & want & ~VM_PROTOCOL_BIT;

	if ((vm->features_offered & VM_PROTOCOL_BIT) && !o->no_protocol_bit)
		acked |= VM_PROTOCOL_BIT;
	return acked;
}

static int init_rings(struct tfe_vm *vm, unsigned int n, uint16_t size)
{
	unsigned int flags = 0;
	int rc;

	if (vm->features_acked & (1ull << TFE_F_EVENT_IDX))
		flags |= TFE_VRING_EVENT_IDX;
	if (vm->features_acked & (1ull << TFE_F_INDIRECT_DESC))
		flags |= TFE_VRING_INDIRECT;
	rc = tfe_fe_eventfds(&vm->fe, n);
	for (unsigned int i = 0; i < n && rc == 0; i++) {
		tfe_vring_fini(&vm->vq[i]);
		rc = tfe_vring_init(&vm->vq[i], &vm->mem, size, flags);
		if (rc == 0)
			tfe_vring_set_fds(&vm->vq[i], vm->fe.kick[i], vm->fe.call[i]);
	}
	vm->nvq = rc == 0 ? n : 0;
	return rc;
}

static int ring_addr(struct tfe_vm *vm, unsigned int i)
{
	struct vu_vring_addr a;

	tfe_vring_addr(&vm->vq[i], i, &a);
	return tfe_fe_set_vring_addr(&vm->fe, &a);
}

/*
 * GET/SET_PROTOCOL_FEATURES (offered ∩ @want) when bit 30 was offered, then
 * GET_QUEUE_NUM when MQ was taken: the same in both VMMs.
 */
static int negotiate_protocol(struct tfe_vm *vm, const char *seq, uint64_t want)
{
	struct tfe_fe *fe = &vm->fe;
	int rc = 0;

	if (vm->features_offered & VM_PROTOCOL_BIT) {
		rc = step(seq, "GET_PROTOCOL_FEATURES", 0,
			  tfe_fe_get_u64(fe, VU_REQ_GET_PROTOCOL_FEATURES, &vm->protocol_offered));
		if (rc == 0)
			rc = step(seq, "SET_PROTOCOL_FEATURES", 0,
				  tfe_fe_set_u64(fe, VU_REQ_SET_PROTOCOL_FEATURES,
						 vm->protocol_offered & want));
	}
	if (rc == 0 && (fe->protocol_acked & (1ull << VU_PROTOCOL_F_MQ)))
		rc = step(seq, "GET_QUEUE_NUM", 0,
			  tfe_fe_get_u64(fe, VU_REQ_GET_QUEUE_NUM, &vm->queue_num));
	return rc;
}

/* QEMU's negotiation at device realize (steps 1-8 of REAL-PEERS §5). */
static int qemu_realize(struct tfe_vm *vm)
{
	const uint64_t pf_want = (1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_REPLY_ACK) |
				 (1ull << VU_PROTOCOL_F_CONFIG);
	struct tfe_fe *fe = &vm->fe;
	uint64_t v;
	int rc;

	rc = step("qemu", "GET_FEATURES", 0,
		  tfe_fe_get_u64(fe, VU_REQ_GET_FEATURES, &vm->features_offered));
	if (rc == 0)
		rc = negotiate_protocol(vm, "qemu", pf_want);
	if (rc == 0)
		rc = step("qemu", "SET_OWNER", 0, tfe_fe_set_owner(fe));
	if (rc == 0)
		rc = step("qemu", "GET_FEATURES", 0, tfe_fe_get_u64(fe, VU_REQ_GET_FEATURES, &v));
	if (rc == 0)
		rc = tfe_fe_eventfds(fe, 2);
	for (unsigned int i = 0; i < 2 && rc == 0; i++) {
		rc = step("qemu", "SET_VRING_CALL", i,
			  tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_CALL, i, fe->call[i]));
		if (rc == 0)
			rc = step("qemu", "SET_VRING_ERR", i,
				  tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_ERR, i, fe->err[i]));
	}
	if (rc == 0 && (fe->protocol_acked & (1ull << VU_PROTOCOL_F_CONFIG))) {
		uint64_t le_cid = 0;

		rc = step("qemu", "GET_CONFIG", 0, tfe_fe_get_config(fe, 0, 8, &le_cid));
		vm->config_cid = le64toh(le_cid);
	}
	return rc;
}

/* QEMU's vhost_dev_start when the guest driver sets DRIVER_OK (steps 10-15). */
static int qemu_start(struct tfe_vm *vm, uint16_t qsize)
{
	struct tfe_fe *fe = &vm->fe;
	int rc;

	rc = step("qemu", "SET_FEATURES", 0,
		  tfe_fe_set_u64(fe, VU_REQ_SET_FEATURES, vm->features_acked));
	if (rc == 0)
		rc = step("qemu", "SET_MEM_TABLE", 0, tfe_fe_set_mem_table(fe, &vm->mem));
	for (unsigned int i = 0; i < 2 && rc == 0; i++) {
		rc = step("qemu", "SET_VRING_NUM", i,
			  tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_NUM, i, qsize));
		if (rc == 0)
			rc = step("qemu", "SET_VRING_BASE", i,
				  tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_BASE, i, 0));
		if (rc == 0)
			rc = step("qemu", "SET_VRING_ADDR", i, ring_addr(vm, i));
		if (rc == 0)
			rc = step("qemu", "SET_VRING_KICK", i,
				  tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_KICK, i, fe->kick[i]));
	}
	for (unsigned int i = 0; i < 2 && rc == 0 && (vm->features_acked & VM_PROTOCOL_BIT); i++)
		rc = step("qemu", "SET_VRING_ENABLE", i,
			  tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_ENABLE, i, 1));
	for (unsigned int i = 0; i < 2 && rc == 0; i++)
		rc = step("qemu", "SET_VRING_CALL", i,
			  tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_CALL, i, fe->call[i]));
	return rc;
}

int tfe_setup_qemu(struct tfe_vm *vm, const struct tfe_setup_opts *o)
{
	uint16_t qsize = o->queue_size ? o->queue_size : QEMU_QUEUE_SIZE;
	int rc;

	vm->fe.need_reply = o->need_reply;
	rc = qemu_realize(vm);
	if (rc < 0)
		return rc;
	vm->features_acked = acked_features(vm, o);
	rc = step("qemu", "ring allocation", 0, init_rings(vm, 2, qsize));
	if (rc < 0)
		return rc;
	return qemu_start(vm, qsize);
}

static int crosvm_negotiate(struct tfe_vm *vm, const struct tfe_setup_opts *o)
{
	const uint64_t pf_want = (1ull << VU_PROTOCOL_F_MQ) | (1ull << VU_PROTOCOL_F_CONFIG);
	struct tfe_fe *fe = &vm->fe;
	int rc;

	rc = step("crosvm", "SET_OWNER", 0, tfe_fe_set_owner(fe));
	if (rc == 0)
		rc = step("crosvm", "GET_FEATURES", 0,
			  tfe_fe_get_u64(fe, VU_REQ_GET_FEATURES, &vm->features_offered));
	if (rc < 0)
		return rc;
	vm->features_acked = acked_features(vm, o);
	rc = step("crosvm", "SET_FEATURES", 0,
		  tfe_fe_set_u64(fe, VU_REQ_SET_FEATURES, vm->features_acked));
	if (rc == 0)
		rc = negotiate_protocol(vm, "crosvm", pf_want);
	return rc;
}

static int crosvm_ring(struct tfe_vm *vm, unsigned int i, uint16_t qsize, uint16_t base)
{
	struct tfe_fe *fe = &vm->fe;
	int rc;

	rc = step("crosvm", "SET_VRING_NUM", i,
		  tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_NUM, i, qsize));
	if (rc == 0)
		rc = step("crosvm", "SET_VRING_ADDR", i, ring_addr(vm, i));
	if (rc == 0)
		rc = step("crosvm", "SET_VRING_BASE", i,
			  tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_BASE, i, base));
	if (rc == 0)
		rc = step("crosvm", "SET_VRING_CALL", i,
			  tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_CALL, i, fe->call[i]));
	if (rc == 0)
		rc = step("crosvm", "SET_VRING_KICK", i,
			  tfe_fe_set_vring_fd(fe, VU_REQ_SET_VRING_KICK, i, fe->kick[i]));
	if (rc == 0 && (vm->features_acked & VM_PROTOCOL_BIT))
		rc = step("crosvm", "SET_VRING_ENABLE", i,
			  tfe_fe_set_vring_state(fe, VU_REQ_SET_VRING_ENABLE, i, 1));
	return rc;
}

int tfe_setup_crosvm(struct tfe_vm *vm, const struct tfe_setup_opts *o)
{
	uint16_t qsize = o->queue_size ? o->queue_size : CROSVM_QUEUE_SIZE;
	int rc;

	vm->fe.need_reply = o->need_reply;
	rc = crosvm_negotiate(vm, o);
	if (rc < 0)
		return rc;
	/* activate: the acked set again, then memory and all three rings */
	rc = step("crosvm", "SET_FEATURES", 0,
		  tfe_fe_set_u64(&vm->fe, VU_REQ_SET_FEATURES, vm->features_acked));
	if (rc == 0)
		rc = step("crosvm", "ring allocation", 0, init_rings(vm, 3, qsize));
	if (rc == 0)
		rc = step("crosvm", "SET_MEM_TABLE", 0, tfe_fe_set_mem_table(&vm->fe, &vm->mem));
	for (unsigned int i = 0; i < 3 && rc == 0; i++)
		rc = crosvm_ring(vm, i, qsize, 0);
	return rc;
}

int tfe_resume_crosvm(struct tfe_vm *vm, const char *path, const struct tfe_setup_opts *o,
		      int timeout_ms)
{
	uint16_t qsize = vm->vq[0].num;
	int rc;

	if (vm->nvq != 3)
		return -EINVAL;
	tfe_fe_close(&vm->fe);
	rc = step("crosvm resume", "connect", 0, tfe_fe_connect(&vm->fe, path, timeout_ms));
	if (rc == 0) {
		vm->fe.need_reply = o->need_reply;
		rc = crosvm_negotiate(vm, o);
	}
	if (rc == 0)
		rc = step("crosvm resume", "SET_FEATURES", 0,
			  tfe_fe_set_u64(&vm->fe, VU_REQ_SET_FEATURES, vm->features_acked));
	if (rc == 0)
		rc = step("crosvm resume", "eventfds", 0, tfe_fe_eventfds(&vm->fe, 3));
	for (unsigned int i = 0; i < 3 && rc == 0; i++)
		tfe_vring_set_fds(&vm->vq[i], vm->fe.kick[i], vm->fe.call[i]);
	if (rc == 0)
		rc = step("crosvm resume", "SET_MEM_TABLE", 0, tfe_fe_set_mem_table(&vm->fe, &vm->mem));
	/* every chain the old back end took was returned: it resumes at the used index */
	for (unsigned int i = 0; i < 3 && rc == 0; i++)
		rc = crosvm_ring(vm, i, qsize, le16toh(vm->vq[i].used->idx));
	return rc;
}

int tfe_stop_qemu(struct tfe_vm *vm, uint32_t base[2])
{
	uint32_t b[2] = { 0, 0 };
	int rc = 0;

	for (unsigned int i = 0; i < 2 && rc == 0; i++)
		rc = step("qemu stop", "SET_VRING_ENABLE", i,
			  tfe_fe_set_vring_state(&vm->fe, VU_REQ_SET_VRING_ENABLE, i, 0));
	for (unsigned int i = 0; i < 2 && rc == 0; i++)
		rc = step("qemu stop", "GET_VRING_BASE", i,
			  tfe_fe_get_vring_base(&vm->fe, i, &b[i]));
	if (base)
		memcpy(base, b, sizeof(b));
	return rc;
}
