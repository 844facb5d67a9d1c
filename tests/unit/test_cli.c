// SPDX-License-Identifier: MIT
/* Command-line parsing: accepted forms, every refusal, exit-status classes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static enum cli_result parse(struct config *cfg, const char *const *args)
{
	static struct config last;

	cli_config_free(&last);
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"vhost-user-vsock";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	/* keep getopt's diagnostics out of the test output */
	FILE *saved = stderr;
	stderr = fopen("/dev/null", "w");
	enum cli_result r = cli_parse(argc, argv, cfg);
	fclose(stderr);
	stderr = saved;
	last = *cfg;
	return r;
}

static void test_minimal(void **state)
{
	struct config cfg;
	const char *args[] = { "--socket", "/tmp/x.sock", "--cid", "3", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_KERNEL);
	assert_int_equal(cfg.nvms, 1);
	assert_string_equal(cfg.vms[0].socket_path, "/tmp/x.sock");
	assert_int_equal(cfg.vms[0].cid, 3);
	assert_string_equal(cfg.vhost_path, "/dev/vhost-vsock");
	assert_null(cfg.vfio);
	assert_int_equal(cfg.log_level, LOG_LVL_INFO);
}

static void test_all_options(void **state)
{
	struct config cfg;
	const char *args[] = { "-s", "/a", "--cid=0xfffffffe", "--vhost-socket", "/dev/other",
			       "--log-level", "warn", "-v", "-v", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.vms[0].cid, 0xfffffffeULL);
	assert_string_equal(cfg.vhost_path, "/dev/other");
	assert_int_equal(cfg.log_level, LOG_LVL_DEBUG);
}

static void test_vfio_parses(void **state)
{
	struct config cfg;
	const char *args[] = { "--vfio", "0000:00:05.0", "--cid", "7", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_string_equal(cfg.vfio, "0000:00:05.0");
}

static void test_bad_cids(void **state)
{
	const char *bad[] = { "0", "1", "2", "0xffffffff", "4294967295", "4294967296", "-3",
			      "+3", "3x", "", "abc", "99999999999999999999999", NULL };
	struct config cfg;

	(void)state;
	for (const char **b = bad; *b; b++) {
		const char *args[] = { "--socket", "/a", "--cid", *b, NULL };

		assert_int_equal(parse(&cfg, args), CLI_USAGE);
	}
}

static void test_usage_errors(void **state)
{
	static const char *const cases[][8] = {
		{ "--cid", "3", NULL },                                  /* no socket */
		{ "--socket", "/a", NULL },                              /* no cid */
		{ "--socket", "/a", "--vfio", "x", "--cid", "3", NULL }, /* both */
		{ "--socket", "/a", "--cid", "3", "extra", NULL },
		{ "--socket", "/a", "--cid", "3", "--bogus", NULL },
		{ "--socket", "", "--cid", "3", NULL },
		{ "--socket", "/a", "--cid", "3", "--log-level", "loud", NULL },
		{ "--socket", NULL },
	};
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(parse(&cfg, (const char *const *)cases[i]), CLI_USAGE);
}

static void test_help_version(void **state)
{
	struct config cfg;
	const char *help[] = { "--help", NULL };
	const char *version[] = { "-V", NULL };
	FILE *saved = stdout;

	(void)state;
	stdout = fopen("/dev/null", "w");
	assert_int_equal(parse(&cfg, help), CLI_EXIT_OK);
	assert_int_equal(parse(&cfg, version), CLI_EXIT_OK);
	fclose(stdout);
	stdout = saved;
}

static void test_parse_cid_edges(void **state)
{
	uint64_t cid = 0;

	(void)state;
	assert_int_equal(cli_parse_cid("3", &cid), 0);
	assert_int_equal(cid, 3);
	assert_int_equal(cli_parse_cid("4294967294", &cid), 0);
	assert_int_equal(cid, 4294967294ULL);
	assert_int_equal(cli_parse_cid("4294967295", &cid), -22);
}


static void test_user_single(void **state)
{
	struct config cfg;
	const char *args[] = { "--socket", "/a.sock", "--uds-path", "/a.vsock", "--guest-cid", "9",
			       "--tx-buffer-size", "131072", "--queue-size", "256", "--groups",
			       "g1+g2", NULL };
	const char *defaults[] = { "--socket", "/a.sock", "--uds-path", "/a.vsock", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	assert_int_equal(cfg.nvms, 1);
	assert_int_equal(cfg.vms[0].cid, 9);
	assert_string_equal(cfg.vms[0].uds_path, "/a.vsock");
	assert_int_equal(cfg.vms[0].tx_buffer_size, 131072);
	assert_int_equal(cfg.vms[0].queue_size, 256);
	assert_string_equal(cfg.vms[0].groups, "g1+g2");
	assert_int_equal(parse(&cfg, defaults), CLI_RUN);
	assert_int_equal(cfg.vms[0].cid, 3);
	assert_int_equal(cfg.vms[0].tx_buffer_size, 65536);
	assert_int_equal(cfg.vms[0].queue_size, 1024);
	assert_string_equal(cfg.vms[0].groups, "default");
}

static void test_vm_specs(void **state)
{
	struct config cfg;
	const char *args[] = { "--vm", "socket=/a.sock,guest-cid=3,uds-path=/a.vsock,groups=g1",
			       "--vm", "socket=/b.sock,guest_cid=4,uds_path=/b.vsock,groups=g1+g2,"
			       "queue-size=128,tx_buffer_size=8192", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	assert_int_equal(cfg.nvms, 2);
	assert_string_equal(cfg.vms[0].socket_path, "/a.sock");
	assert_string_equal(cfg.vms[1].uds_path, "/b.vsock");
	assert_int_equal(cfg.vms[1].cid, 4);
	assert_int_equal(cfg.vms[1].queue_size, 128);
	assert_int_equal(cfg.vms[1].tx_buffer_size, 8192);
	assert_string_equal(cfg.vms[1].groups, "g1+g2");
}

static void test_user_usage_errors(void **state)
{
	static const char *const cases[][8] = {
		{ "--socket", "/a", "--uds-path", "/u", "--vhost-socket", "/dev/x", NULL },
		{ "--socket", "/a", "--cid", "3", "--queue-size", "256", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--queue-size", "300", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--queue-size", "0", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--tx-buffer-size", "1", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--groups", "a++b", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--groups", "a b", NULL },
		{ "--vm", "socket=/a,uds-path=/u", "--socket", "/b", NULL },
		{ "--vm", "socket=/a,uds-path=/u", "--config", "/x.yaml", NULL },
		{ "--vm", "socket=/a", NULL },
		{ "--vm", "uds-path=/u", NULL },
		{ "--vm", "socket=/a,uds-path=/u,colour=blue", NULL },
		{ "--vm", "socket=/a,uds-path=/u,forward-cid=1", NULL },
		{ "--vm", "socket=/a,uds-path", NULL },
		{ "--vm", "socket=/a,uds-path=/u", "--vm", "socket=/b,uds-path=/v", NULL },
		{ "--vm", "socket=/a,uds-path=/u,guest-cid=4", "--vm",
		  "socket=/a,uds-path=/v,guest-cid=5", NULL },
		{ "--config", "/nonexistent/vms.yaml", NULL },
	};
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(&cfg, (const char *const *)cases[i]) != CLI_USAGE)
			fail_msg("case %zu was accepted", i);
	}
}

static char *write_file(const char *text)
{
	static char path[64];
	FILE *f;

	strcpy(path, "/tmp/test_cli_XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_config_file(void **state)
{
	struct config cfg;
	char *path = write_file("vms:\n"
				"  - guest_cid: 4\n"
				"    socket: /tmp/vhost4.socket\n"
				"    uds_path: /tmp/vm4.vsock\n"
				"    tx_buffer_size: 65536\n"
				"    queue_size: 1024\n"
				"    groups: group1+group2\n"
				"  - socket: /tmp/vhost5.socket\n"
				"    uds-path: /tmp/vm5.vsock\n"
				"    guest_cid: 5\n");
	const char *args[] = { "--config", path, NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	assert_int_equal(cfg.nvms, 2);
	assert_int_equal(cfg.vms[0].cid, 4);
	assert_string_equal(cfg.vms[0].groups, "group1+group2");
	assert_string_equal(cfg.vms[1].uds_path, "/tmp/vm5.vsock");
	assert_string_equal(cfg.vms[1].groups, "default");
	unlink(path);
}

static void test_config_file_errors(void **state)
{
	static const char *const bad[] = {
		"vms: []\n",
		"vms: 3\n",
		"machines:\n  - socket: /a\n",
		"vms:\n  - socket: /a\n",
		"vms:\n  - socket: /a\n    uds_path: /u\n    colour: blue\n",
		"vms:\n  - socket: /a\n    uds_path: /u\n    guest_cid: 2\n",
		"vms:\n  - socket: /a\n    uds_path: [1, 2]\n",
		"vms:\n  - socket: /a\n   uds_path: /u\n",
		"vms: [\n",
		"- socket: /a\n",
		"",
	};
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *path = write_file(bad[i]);
		const char *args[] = { "--config", path, NULL };

		if (parse(&cfg, args) != CLI_USAGE)
			fail_msg("config %zu was accepted", i);
		unlink(path);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_all_options),
		cmocka_unit_test(test_vfio_parses),
		cmocka_unit_test(test_bad_cids),
		cmocka_unit_test(test_usage_errors),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_parse_cid_edges),
		cmocka_unit_test(test_user_single),
		cmocka_unit_test(test_vm_specs),
		cmocka_unit_test(test_user_usage_errors),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_config_file_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
