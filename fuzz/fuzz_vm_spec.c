// SPDX-License-Identifier: MIT
/*
 * Fuzz target (e2): the --vm device spec parser (cli_parse_vm_spec() in
 * cli/cli.h), "socket=/a,guest-cid=3,uds-path=/b,...".
 *
 * Input: the spec text (cut at the first NUL, as argv would be).
 *
 * Checked: a spec the parser accepts yields a device the daemon can run:
 * both paths set and non-empty, a guest CID in 3..0xfffffffe, a queue size
 * that is a power of two up to 32768, a buffer size the option allows,
 * groups that pass cli_check_groups(); a refused spec is -EINVAL or
 * -ENOMEM. Every string is released (LeakSanitizer) by cli_config_free().
 */
#include <stdint.h>

#include "cli/cli.h"
#include "fuzz_cli.h"

#define VS_MAX_LEN 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *spec;
	size_t n = size < VS_MAX_LEN ? size : VS_MAX_LEN;

	spec = malloc(n + 1);
	FZ_CHECK(spec, "out of memory");
	memcpy(spec, data, n);
	spec[n] = '\0';
	fz_parse_vm_spec(spec, "--vm");
	free(spec);
	return 0;
}
