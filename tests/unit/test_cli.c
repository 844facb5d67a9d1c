// SPDX-License-Identifier: MIT
/* Command-line parsing: accepted forms, every refusal, exit-status classes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static enum cli_result parse(struct config *cfg, const char *const *args)
{
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
	return r;
}

static void test_minimal(void **state)
{
	struct config cfg;
	const char *args[] = { "--socket", "/tmp/x.sock", "--cid", "3", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_string_equal(cfg.socket_path, "/tmp/x.sock");
	assert_int_equal(cfg.cid, 3);
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
	assert_int_equal(cfg.cid, 0xfffffffeULL);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
