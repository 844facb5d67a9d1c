// SPDX-License-Identifier: MIT
/*
 * vfio_sys: the --vfio name parser, and the opener's refusals this machine
 * can show without /dev/vfio (no such device, a device bound to another
 * driver). The real-kernel paths run in tests/peers/run-vfio.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transport/vvu/vfio.h"
#include "unit_util.h"

static void parse_ok(const char *in, const char *want)
{
	char out[13];

	memset(out, 'x', sizeof(out));
	assert_int_equal(vfio_parse_pci_name(in, out), 0);
	assert_string_equal(out, want);
}

static void parse_bad(const char *in)
{
	char out[13];

	assert_int_equal(vfio_parse_pci_name(in, out), -EINVAL);
}

static void parses_names(void **state)
{
	(void)state;
	parse_ok("0000:00:05.0", "0000:00:05.0");
	parse_ok("00:05.0", "0000:00:05.0");
	parse_ok("0001:0A:1F.7", "0001:0a:1f.7");
	parse_ok("/sys/bus/pci/devices/0000:00:05.0", "0000:00:05.0");
	parse_ok("/sys/bus/pci/devices/0000:00:05.0/", "0000:00:05.0");
	parse_ok("/sys/devices/pci0000:00/0000:00:10.0", "0000:00:10.0");
	parse_ok("ab:01.2", "0000:ab:01.2");
}

static void refuses_other_names(void **state)
{
	(void)state;
	parse_bad(NULL);
	parse_bad("");
	parse_bad("/");
	parse_bad("0:05.0");
	parse_bad("00:05");
	parse_bad("00:05.8");      /* function has 3 bits */
	parse_bad("00:20.0");      /* device has 5 bits */
	parse_bad("0000:00:05.0x");
	parse_bad("000g:00:05.0");
	parse_bad("0000-00:05.0");
	parse_bad("/sys/bus/pci/devices/");
	parse_bad("eth0");
	parse_bad("0000:00:05.0/../../etc");
}

static void open_refuses(void **state)
{
	struct vfio_dev d = { 0 };
	int fds = ut_fd_count();

	(void)state;
	assert_int_equal(vfio_sys_open(&d, "not-a-device"), -EINVAL);
	assert_int_equal(vfio_sys_open(&d, "ffff:ff:1f.7"), -ENODEV);
	assert_null(d.ops);
	assert_int_equal(ut_fd_count(), fds);
}

/* A PCI device of this machine bound to a driver other than vfio-pci, if any. */
static bool other_driver_device(char *name, size_t len)
{
	char path[PATH_MAX], target[PATH_MAX];
	struct dirent *e;
	DIR *dp = opendir("/sys/bus/pci/devices");
	bool found = false;
	ssize_t n;

	while (dp && !found && (e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "/vfio-pci"))
			continue;
		found = snprintf(name, len, "%s", e->d_name) < (int)len;
	}
	if (dp)
		closedir(dp);
	return found;
}

static void open_names_the_other_driver(void **state)
{
	struct vfio_dev d = { 0 };
	char name[64];

	(void)state;
	if (!other_driver_device(name, sizeof(name)))
		skip();
	assert_int_equal(vfio_sys_open(&d, name), -ENODEV);
	assert_null(d.ops);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_names),
		cmocka_unit_test(refuses_other_names),
		cmocka_unit_test(open_refuses),
		cmocka_unit_test(open_names_the_other_driver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
