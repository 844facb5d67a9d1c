// SPDX-License-Identifier: MIT
/* Hybrid vsock CONNECT parser, OK formatter and socket names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "engine/user/hybrid_proto.h"

/* Whole line in one feed. Return: the parser's result; *port on success. */
static int parse(const char *line, uint32_t *port, size_t *consumed)
{
	struct hybrid_parser p;

	hybrid_parser_init(&p);
	return hybrid_parser_feed(&p, line, strlen(line), consumed, port);
}

static void test_accepts(void **state)
{
	static const struct {
		const char *line;
		uint32_t port;
	} ok[] = {
		{ "CONNECT 1234\n", 1234 },
		{ "connect 1234\n", 1234 },
		{ "CONNECT 0\n", 0 },
		{ "CONNECT 4294967295\n", 4294967295u },
		{ "CONNECT 0005\n", 5 },
		{ "CONNECT 52\r\n", 52 },
		/* exactly 32 bytes with the newline */
		{ "CONNECT 0000000000000000000007\r\n", 7 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint32_t port = 0xdead;
		size_t used = 0;

		assert_int_equal(parse(ok[i].line, &port, &used), 1);
		assert_int_equal(port, ok[i].port);
		assert_int_equal(used, strlen(ok[i].line));
	}
}

static void test_refuses(void **state)
{
	static const struct {
		const char *line;
		int err;
	} bad[] = {
		{ "Connect 5\n", -EINVAL },      /* mixed case */
		{ "cONNECT 5\n", -EINVAL },
		{ "CONNECT\n", -EINVAL },
		{ "CONNECT  5\n", -EINVAL },     /* two spaces */
		{ "CONNECT\t5\n", -EINVAL },
		{ " CONNECT 5\n", -EINVAL },
		{ "CONNECT \n", -EINVAL },       /* no digits */
		{ "CONNECT +5\n", -EINVAL },
		{ "CONNECT -5\n", -EINVAL },
		{ "CONNECT 5 \n", -EINVAL },     /* trailing space */
		{ "CONNECT 5x\n", -EINVAL },
		{ "CONNECT 0x10\n", -EINVAL },
		{ "CONNECT 5\r\r\n", -EINVAL },
		{ "CONNECT 5\rX", -EINVAL },
		{ "CONNECTED 5\n", -EINVAL },
		{ "GET / HTTP/1.1\r\n", -EINVAL },
		{ "\n", -EINVAL },
		{ "CONNECT 4294967296\n", -ERANGE },
		{ "CONNECT 99999999999999\n", -ERANGE },
		/* 33 bytes */
		{ "CONNECT 00000000000000000000007\r\n", -EMSGSIZE },
		{ "CONNECT 000000000000000000000000000000000000000000000001\n", -EMSGSIZE },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t port = 0;
		size_t used = 99;

		assert_int_equal(parse(bad[i].line, &port, &used), bad[i].err);
		assert_int_equal(used, 0);
	}
}

static void test_nul_byte(void **state)
{
	struct hybrid_parser p;
	uint32_t port;
	size_t used;

	(void)state;
	hybrid_parser_init(&p);
	assert_int_equal(hybrid_parser_feed(&p, "CONNECT 1\0\n", 11, &used, &port), -EINVAL);
}

static void test_pieces(void **state)
{
	const char *line = "CONNECT 65535\r\n";
	size_t len = strlen(line);

	(void)state;
	/* every split into two pieces, then byte by byte */
	for (size_t cut = 0; cut <= len; cut++) {
		struct hybrid_parser p;
		uint32_t port = 0;
		size_t used;

		hybrid_parser_init(&p);
		assert_int_equal(hybrid_parser_feed(&p, line, cut, &used, &port), cut == len);
		assert_int_equal(used, cut);
		if (cut < len) {
			assert_int_equal(hybrid_parser_feed(&p, line + cut, len - cut, &used, &port), 1);
			assert_int_equal(used, len - cut);
		}
		assert_int_equal(port, 65535);
	}
	{
		struct hybrid_parser p;
		uint32_t port = 0;
		size_t used;

		hybrid_parser_init(&p);
		for (size_t i = 0; i + 1 < len; i++)
			assert_int_equal(hybrid_parser_feed(&p, line + i, 1, &used, &port), 0);
		assert_int_equal(hybrid_parser_feed(&p, line + len - 1, 1, &used, &port), 1);
		assert_int_equal(port, 65535);
	}
}

static void test_missing_newline_waits(void **state)
{
	struct hybrid_parser p;
	uint32_t port = 7;
	size_t used;

	(void)state;
	hybrid_parser_init(&p);
	assert_int_equal(hybrid_parser_feed(&p, "CONNECT 0", 9, &used, &port), 0);
	assert_int_equal(used, 9);
	assert_int_equal(port, 7); /* untouched until complete */
	/* a client that never sends the newline hits the cap */
	for (int i = 0; i < 22; i++)
		assert_int_equal(hybrid_parser_feed(&p, "0", 1, &used, &port), 0);
	assert_int_equal(hybrid_parser_feed(&p, "0", 1, &used, &port), -EMSGSIZE);
}

static void test_data_after_line(void **state)
{
	struct hybrid_parser p;
	const char buf[] = "CONNECT 22\nhello";
	uint32_t port;
	size_t used;

	(void)state;
	hybrid_parser_init(&p);
	assert_int_equal(hybrid_parser_feed(&p, buf, sizeof(buf) - 1, &used, &port), 1);
	assert_int_equal(used, 11);
	assert_int_equal(port, 22);
	/* done: consumes nothing more */
	assert_int_equal(hybrid_parser_feed(&p, "x", 1, &used, &port), 1);
	assert_int_equal(used, 0);
}

static void test_errors_sticky(void **state)
{
	struct hybrid_parser p;
	uint32_t port;
	size_t used;

	(void)state;
	hybrid_parser_init(&p);
	assert_int_equal(hybrid_parser_feed(&p, "CONNEXT", 7, &used, &port), -EINVAL);
	assert_int_equal(hybrid_parser_feed(&p, "CONNECT 1\n", 10, &used, &port), -EINVAL);
	assert_int_equal(used, 0);
	hybrid_parser_init(&p);
	assert_int_equal(hybrid_parser_feed(&p, "CONNECT 1\n", 10, &used, &port), 1);
	assert_int_equal(port, 1);
}

static void test_format_ok(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(hybrid_format_ok(1073741824u, buf, sizeof(buf)), 14);
	assert_string_equal(buf, "OK 1073741824\n");
	assert_int_equal(hybrid_format_ok(4294967295u, buf, 16), 14);
	assert_int_equal(hybrid_format_ok(0, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "OK 0\n");
	assert_int_equal(hybrid_format_ok(12345, buf, 10), 9);
	assert_string_equal(buf, "OK 12345\n");
	assert_int_equal(hybrid_format_ok(12345, buf, 9), -ENOSPC);
	assert_int_equal(hybrid_format_ok(1, buf, 0), -ENOSPC);
}

static void test_uds_name(void **state)
{
	char buf[256], path[200];
	size_t sun = sizeof(((struct sockaddr_un *)0)->sun_path);

	(void)state;
	assert_int_equal(hybrid_uds_name("/tmp/vm4.vsock", 1234, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/tmp/vm4.vsock_1234");
	assert_int_equal(hybrid_uds_name("", 1, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(hybrid_uds_name("/tmp/x", 4294967295u, buf, 18), 0);
	assert_string_equal(buf, "/tmp/x_4294967295");
	assert_int_equal(hybrid_uds_name("/tmp/x", 4294967295u, buf, 17), -ENAMETOOLONG);
	/* sun_path is the real limit, whatever the buffer */
	memset(path, 'a', sizeof(path));
	path[sun - 3] = '\0'; /* + "_5" + NUL = sun bytes: fits */
	assert_int_equal(hybrid_uds_name(path, 5, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf), sun - 1);
	assert_int_equal(hybrid_uds_name(path, 55, buf, sizeof(buf)), -ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_refuses),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_pieces),
		cmocka_unit_test(test_missing_newline_waits),
		cmocka_unit_test(test_data_after_line),
		cmocka_unit_test(test_errors_sticky),
		cmocka_unit_test(test_format_ok),
		cmocka_unit_test(test_uds_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
