// SPDX-License-Identifier: MIT
/*
 * Fuzz target (e3): the YAML configuration file (cli_load_config_file() in
 * cli/cli.h, libyaml underneath).
 *
 * Input: the file's contents. They are written to a memfd that the loader
 * opens by its /proc/self/fd path, so nothing touches the file system.
 *
 * Checked: the loader returns 0 or a negative errno; on success there are
 * 1..CLI_MAX_VMS devices, each one runnable (the same rules as the --vm
 * target: paths set, CID, queue size, buffer size, groups); the loaded
 * count never exceeds CLI_MAX_VMS even on failure; everything is released
 * by cli_config_free() (LeakSanitizer) and no fd is left open.
 */
#include <errno.h>
#include <stdint.h>

#include "cli/cli.h"
#include "fuzz_cli.h"

#define CF_MAX_LEN (256u * 1024)

static int baseline_fds = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = size < CF_MAX_LEN ? size : CF_MAX_LEN;
	struct config cfg;
	char path[64];
	int fd, rc;

	if (baseline_fds < 0)
		baseline_fds = fz_count_fds();
	fd = fz_memfd("fuzz-config", 0);
	FZ_CHECK(write(fd, data, n) == (ssize_t)n, "cannot write the config memfd");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&cfg, 0, sizeof(cfg));
	rc = cli_load_config_file(&cfg, path);
	FZ_CHECK(rc <= 0, "cli_load_config_file returned %d", rc);
	FZ_CHECK(cfg.nvms <= CLI_MAX_VMS, "%u vms loaded", cfg.nvms);
	if (rc == 0) {
		FZ_CHECK(cfg.nvms >= 1, "an accepted file with no vms");
		for (unsigned int i = 0; i < cfg.nvms; i++) {
			char what[32];

			snprintf(what, sizeof(what), "vms[%u]", i);
			fz_check_vm(&cfg.vms[i], what);
		}
	}
	cli_config_free(&cfg);
	close(fd);
	fz_check_fds(baseline_fds);
	return 0;
}
