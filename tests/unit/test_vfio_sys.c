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

/* the kernel's header has its own struct vfio_iova_range, clashing with vfio.h's */
#define vfio_iova_range kernel_vfio_iova_range
#include <linux/vfio.h>
#undef vfio_iova_range

#include "transport/vvu/vfio.h"
#include "transport/vvu/vfio_sys.h"
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

/* ---- the IOVA capability chain ------------------------------------------- */

#define INFO_SIZE 256u
#define CAP_AT 36u   /* after the 24-byte info and a 12-byte other capability: only 4-aligned, as the kernel does */

union info_buf {
	struct vfio_iommu_type1_info info;
	uint8_t b[INFO_SIZE];
};

/* The capability's fields by byte offset: at CAP_AT they are not 8-aligned. */
static void cap_put32(union info_buf *u, size_t off, uint32_t v)
{
	memcpy(u->b + CAP_AT + off, &v, 4);
}

static void cap_range(union info_buf *u, uint32_t i, uint64_t start, uint64_t end)
{
	memcpy(u->b + CAP_AT + 16 + 16 * i, &start, 8);
	memcpy(u->b + CAP_AT + 24 + 16 * i, &end, 8);
}

/* An info with an unrelated capability at 24 pointing to an IOVA one with @nr ranges. */
static void info_build(union info_buf *u, uint32_t nr)
{
	struct vfio_info_cap_header *other = (void *)(u->b + sizeof(u->info));
	uint32_t i;

	memset(u, 0, sizeof(*u));
	u->info.argsz = INFO_SIZE;
	u->info.flags = VFIO_IOMMU_INFO_CAPS | VFIO_IOMMU_INFO_PGSIZES;
	u->info.cap_offset = sizeof(u->info);
	other->id = 0x7777;
	other->next = CAP_AT;
	cap_put32(u, 0, VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE | 1u << 16);
	cap_put32(u, 8, nr);
	for (i = 0; i < nr && CAP_AT + 16 + 16 * (i + 1) <= INFO_SIZE; i++)
		cap_range(u, i, 0x100000ull * (i + 1), 0x100000ull * (i + 1) + 0xfffff);
}

static void iova_from_capability(void **state)
{
	struct vfio_iova_range r[4];
	union info_buf u;

	(void)state;
	info_build(&u, 3);
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), 3);
	assert_int_equal(r[2].start, 0x300000);
	assert_int_equal(r[2].end, 0x3fffff);
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 2), 2);  /* only what fits */
	cap_range(&u, 1, 0x200000, 0);  /* end before start: skipped */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), 2);
	assert_int_equal(r[1].start, 0x300000);
}

static void iova_without_capability(void **state)
{
	struct vfio_iova_range r[4];
	union info_buf u;

	(void)state;
	info_build(&u, 1);
	u.info.flags &= ~VFIO_IOMMU_INFO_CAPS;
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), 2);
	assert_int_equal(r[0].end, 0xfedfffff);
	assert_int_equal(r[1].start, 0xfef00000);
	assert_int_equal(r[1].end, (1ull << 48) - 1);
	u.info.flags |= VFIO_IOMMU_INFO_CAPS;
	cap_put32(&u, 0, 0x7778);  /* a chain without one */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), 2);
}

static void iova_hostile_chains(void **state)
{
	struct vfio_iova_range r[4];
	union info_buf u;

	(void)state;
	info_build(&u, 14);  /* 16 + 14 * 16 bytes from 36: past 256 */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	info_build(&u, 0x10000001u);  /* nr * 16 wraps 32 bits */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	info_build(&u, 1);
	u.info.argsz = CAP_AT + 20;  /* the kernel says the buffer ends inside the capability */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	info_build(&u, 1);
	u.info.cap_offset = INFO_SIZE - 4;  /* header past the end */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	u.info.cap_offset = 8;  /* inside the info itself */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	u.info.cap_offset = 26;  /* not even 4-aligned */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	info_build(&u, 1);
	((struct vfio_info_cap_header *)(u.b + sizeof(u.info)))->next = sizeof(u.info);  /* loop */
	assert_int_equal(vfio_sys_parse_iova(&u, sizeof(u), r, 4), -EIO);
	assert_int_equal(vfio_sys_parse_iova(&u, 8, r, 4), -EIO);  /* shorter than the info */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_names),
		cmocka_unit_test(refuses_other_names),
		cmocka_unit_test(open_refuses),
		cmocka_unit_test(open_names_the_other_driver),
		cmocka_unit_test(iova_from_capability),
		cmocka_unit_test(iova_without_capability),
		cmocka_unit_test(iova_hostile_chains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
