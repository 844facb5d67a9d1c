/* SPDX-License-Identifier: MIT */
/*
 * What every device the CLI accepts must satisfy, shared by the --vm and
 * the configuration file targets: the daemon can run it as it is, with no
 * further check. The rules are the ones cli/cli.h documents per key.
 */
#ifndef FUZZ_CLI_H
#define FUZZ_CLI_H

#include <errno.h>

#include "cli/cli.h"
#include "fuzz_util.h"

static inline void fz_check_vm(const struct vm_config *vm, const char *what)
{
	FZ_CHECK(vm->socket_path && vm->socket_path[0], "%s: accepted without a socket path", what);
	FZ_CHECK((vm->uds_path && vm->uds_path[0]) || vm->forward,
		 "%s: accepted with neither a uds path nor forwarding", what);
	FZ_CHECK(!vm->uds_path || vm->uds_path[0], "%s: accepted an empty uds path", what);
	FZ_CHECK(vm->nforward_listen == 0 || vm->forward,
		 "%s: accepted forward-listen without forward-cid", what);
	FZ_CHECK(vm->cid >= 3 && vm->cid <= 0xfffffffeull, "%s: cid %llu accepted", what,
		 (unsigned long long)vm->cid);
	FZ_CHECK(vm->queue_size >= 1 && vm->queue_size <= 32768 &&
		 !(vm->queue_size & (vm->queue_size - 1)), "%s: queue size %u accepted", what,
		 vm->queue_size);
	FZ_CHECK(vm->tx_buffer_size >= 4096, "%s: tx buffer size %u accepted", what,
		 vm->tx_buffer_size);
	FZ_CHECK(!vm->groups || cli_check_groups(vm->groups) == 0, "%s: groups '%s' accepted",
		 what, vm->groups);
}

/* Parse @spec as one --vm device, as the CLI and `vm add` do, and check it. */
static inline void fz_parse_vm_spec(const char *spec, const char *what)
{
	struct config cfg;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.nvms = 1;
	cli_vm_defaults(&cfg.vms[0]);
	rc = cli_parse_vm_spec(&cfg.vms[0], spec);
	FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM, "%s: cli_parse_vm_spec returned %d",
		 what, rc);
	if (rc == 0)
		fz_check_vm(&cfg.vms[0], what);
	cli_config_free(&cfg);
}

#endif
