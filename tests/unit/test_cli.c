// SPDX-License-Identifier: MIT
/* Command-line parsing: accepted forms, every refusal, exit-status classes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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
			       "g1+g2", "--poll-us", "50", NULL };
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
	assert_int_equal(cfg.vms[0].poll_us, 50);
	assert_int_equal(parse(&cfg, defaults), CLI_RUN);
	assert_int_equal(cfg.vms[0].poll_us, 0);
	assert_int_equal(cfg.vms[0].cid, 3);
	assert_int_equal(cfg.vms[0].tx_buffer_size, 262144);
	assert_int_equal(cfg.vms[0].queue_size, 1024);
	assert_string_equal(cfg.vms[0].groups, "default");
}

static void test_vm_specs(void **state)
{
	struct config cfg;
	const char *args[] = { "--vm", "socket=/a.sock,guest-cid=3,uds-path=/a.vsock,groups=g1",
			       "--vm", "socket=/b.sock,guest_cid=4,uds_path=/b.vsock,groups=g1+g2,"
			       "queue-size=128,tx_buffer_size=8192,poll_us=1000000", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	assert_int_equal(cfg.nvms, 2);
	assert_string_equal(cfg.vms[0].socket_path, "/a.sock");
	assert_string_equal(cfg.vms[1].uds_path, "/b.vsock");
	assert_int_equal(cfg.vms[1].cid, 4);
	assert_int_equal(cfg.vms[1].queue_size, 128);
	assert_int_equal(cfg.vms[1].tx_buffer_size, 8192);
	assert_int_equal(cfg.vms[1].poll_us, 1000000);
	assert_int_equal(cfg.vms[0].poll_us, 0);
	assert_string_equal(cfg.vms[1].groups, "g1+g2");
}

static void test_forward_options(void **state)
{
	struct config cfg;
	const char *single[] = { "--socket", "/a.sock", "--uds-path", "/a.vsock", "--forward-cid",
				 "1", "--forward-listen", "7000+7001/seqpacket+0x10/stream", NULL };
	const char *spec[] = { "--vm", "socket=/a.sock,uds-path=/a.vsock,forward_cid=2,"
			       "forward-listen=9", NULL };
	const char *plain[] = { "--socket", "/a.sock", "--uds-path", "/a.vsock", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, single), CLI_RUN);
	assert_true(cfg.vms[0].forward);
	assert_int_equal(cfg.vms[0].forward_cid, 1);
	assert_int_equal(cfg.vms[0].nforward_listen, 3);
	assert_int_equal(cfg.vms[0].forward_listen[0].port, 7000);
	assert_false(cfg.vms[0].forward_listen[0].seqpacket);
	assert_int_equal(cfg.vms[0].forward_listen[1].port, 7001);
	assert_true(cfg.vms[0].forward_listen[1].seqpacket);
	assert_int_equal(cfg.vms[0].forward_listen[2].port, 16);
	assert_false(cfg.vms[0].forward_listen[2].seqpacket);
	assert_int_equal(parse(&cfg, spec), CLI_RUN);
	assert_int_equal(cfg.vms[0].forward_cid, 2);
	assert_int_equal(cfg.vms[0].nforward_listen, 1);
	assert_int_equal(parse(&cfg, plain), CLI_RUN);
	assert_false(cfg.vms[0].forward);
	assert_int_equal(cfg.vms[0].nforward_listen, 0);
}

static void test_forward_errors(void **state)
{
	static const char *const bad_cid[] = { "0", "4294967295", "-1", "x", "", "4294967296" };
	static const char *const bad_listen[] = {
		"", "+", "7000+", "+7000", "7000++7001", "7000+7000", "7000+7000/seqpacket",
		"4294967295", "x", "7000/dgram", "7000/", "-1",
		("1+2+3+4+5+6+7+8+9+10+11+12+13+14+15+16+17+18+19+20+21+22+23+24+25+26+27+28+29+"
		 "30+31+32+33"),
	};
	struct config cfg;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cid) / sizeof(bad_cid[0]); i++) {
		const char *a[] = { "--socket", "/a", "--uds-path", "/u", "--forward-cid",
				    bad_cid[i], NULL };

		if (parse(&cfg, a) != CLI_USAGE)
			fail_msg("forward-cid '%s' was accepted", bad_cid[i]);
	}
	for (size_t i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++) {
		const char *a[] = { "--socket", "/a", "--uds-path", "/u", "--forward-cid", "1",
				    "--forward-listen", bad_listen[i], NULL };

		if (parse(&cfg, a) != CLI_USAGE)
			fail_msg("forward-listen '%s' was accepted", bad_listen[i]);
	}
	{
		/* --forward-listen needs --forward-cid; single-device options stay out of --vm;
		 * the kernel engine has no forwarding */
		const char *l[] = { "--socket", "/a", "--uds-path", "/u", "--forward-listen", "7",
				    NULL };
		const char *m[] = { "--vm", "socket=/a,uds-path=/u", "--forward-cid", "1", NULL };
		const char *v[] = { "--socket", "/a", "--forward-cid", "1", "--vhost-socket", "/v",
				    NULL };

		assert_int_equal(parse(&cfg, l), CLI_USAGE);
		assert_int_equal(parse(&cfg, m), CLI_USAGE);
		assert_int_equal(parse(&cfg, v), CLI_USAGE);
	}
}

static void test_user_usage_errors(void **state)
{
	static const char *const cases[][8] = {
		{ "--socket", "/a", "--uds-path", "/u", "--vhost-socket", "/dev/x", NULL },
		{ "--socket", "/a", "--cid", "3", "--queue-size", "256", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--queue-size", "300", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--queue-size", "0", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--tx-buffer-size", "1", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--poll-us", "1000001", NULL },
		{ "--socket", "/a", "--cid", "3", "--poll-us", "10", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--groups", "a++b", NULL },
		{ "--socket", "/a", "--uds-path", "/u", "--groups", "a b", NULL },
		{ "--vm", "socket=/a,uds-path=/u", "--socket", "/b", NULL },
		{ "--vm", "socket=/a,uds-path=/u", "--config", "/x.yaml", NULL },
		{ "--vm", "socket=/a", NULL },
		{ "--vm", "uds-path=/u", NULL },
		{ "--vm", "socket=/a,uds-path=/u,colour=blue", NULL },
		{ "--vm", "socket=/a,uds-path=/u,forward-cid=0", NULL },
		{ "--vm", "socket=/a,uds-path=/u,forward-listen=7000", NULL },
		{ "--vm", "socket=/a,uds-path=/u", "--forward-cid", "1", NULL },
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
				"    guest_cid: 5\n"
				"    forward_cid: 1\n"
				"    forward_listen: 7000+7001/seqpacket\n");
	const char *args[] = { "--config", path, NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	assert_int_equal(cfg.nvms, 2);
	assert_int_equal(cfg.vms[0].cid, 4);
	assert_string_equal(cfg.vms[0].groups, "group1+group2");
	assert_string_equal(cfg.vms[1].uds_path, "/tmp/vm5.vsock");
	assert_string_equal(cfg.vms[1].groups, "default");
	assert_false(cfg.vms[0].forward);
	assert_true(cfg.vms[1].forward);
	assert_int_equal(cfg.vms[1].forward_cid, 1);
	assert_int_equal(cfg.vms[1].nforward_listen, 2);
	assert_true(cfg.vms[1].forward_listen[1].seqpacket);
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
		"vms:\n  - socket: /a\n    uds_path: /u\n    forward_cid: 4294967295\n",
		"vms:\n  - socket: /a\n    uds_path: /u\n    forward_listen: 7000\n",
		("vms:\n  - socket: /a\n    uds_path: /u\n    forward_cid: 1\n"
		 "    forward_listen: 7000+7000\n"),
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

/* Parse with stderr captured into @err. Return: the result. */
static enum cli_result parse_err(const char *const *args, char *err, size_t size)
{
	FILE *saved = stderr, *tmp = tmpfile();
	struct config cfg;
	enum cli_result r;
	char *argv[32];
	int argc = 0;
	size_t n;

	assert_non_null(tmp);
	argv[argc++] = (char *)"vhost-user-vsock";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	stderr = tmp;
	r = cli_parse(argc, argv, &cfg);
	stderr = saved;
	cli_config_free(&cfg);
	rewind(tmp);
	n = fread(err, 1, size - 1, tmp);
	err[n] = '\0';
	fclose(tmp);
	return r;
}

static int listening_fd(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	/* autobind to an abstract name: no file to clean up */
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa_family_t)), 0);
	assert_int_equal(listen(fd, 1), 0);
	return fd;
}

static void test_socket_path_alias(void **state)
{
	struct config cfg;
	const char *args[] = { "--socket-path", "/tmp/y.sock", "--cid", "5", NULL };
	const char *both[] = { "--socket-path", "/a", "--socket", "/b", "--cid", "5", NULL };

	(void)state;
	assert_int_equal(parse(&cfg, args), CLI_RUN);
	assert_string_equal(cfg.vms[0].socket_path, "/tmp/y.sock");
	assert_int_equal(cfg.fd, -1);
	assert_false(cfg.activated);
	/* the same option twice: the last one counts, as for --socket */
	assert_int_equal(parse(&cfg, both), CLI_RUN);
	assert_string_equal(cfg.vms[0].socket_path, "/b");
}

static void test_fd_accepted(void **state)
{
	struct config cfg;
	char num[16];
	int l = listening_fd(), sp[2];

	(void)state;
	snprintf(num, sizeof(num), "%d", l);
	const char *kern[] = { "--fd", num, "--cid", "3", NULL };
	const char *user[] = { "--fd", num, "--uds-path", "/u", NULL };

	assert_int_equal(parse(&cfg, kern), CLI_RUN);
	assert_int_equal(cfg.fd, l);
	assert_true(cfg.fd_listening);
	assert_null(cfg.vms[0].socket_path);
	assert_int_equal(cfg.engine, ENGINE_KERNEL);
	assert_int_equal(parse(&cfg, user), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	close(l);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	snprintf(num, sizeof(num), "%d", sp[1]);
	assert_int_equal(parse(&cfg, kern), CLI_RUN);
	assert_int_equal(cfg.fd, sp[1]);
	assert_false(cfg.fd_listening);
	close(sp[0]);
	close(sp[1]);
}

struct fd_case {
	const char *args[8];
	const char *why;   /* part of the message */
};

static void check_refusals(const struct fd_case *cases, size_t n)
{
	char err[1024];

	for (size_t i = 0; i < n; i++) {
		if (parse_err(cases[i].args, err, sizeof(err)) != CLI_USAGE)
			fail_msg("case %zu was accepted", i);
		if (!strstr(err, cases[i].why))
			fail_msg("case %zu: '%s' not in: %s", i, cases[i].why, err);
	}
}

static void test_fd_refused(void **state)
{
	char lnum[16], pnum[16], dnum[16], cnum[16];
	int l = listening_fd(), p[2], d, closed;

	(void)state;
	assert_int_equal(pipe(p), 0);
	d = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	/* far above anything the test opens (tmpfile() reuses low numbers) */
	closed = 1000;
	assert_int_equal(fcntl(closed, F_GETFD), -1);
	snprintf(lnum, sizeof(lnum), "%d", l);
	snprintf(pnum, sizeof(pnum), "%d", p[0]);
	snprintf(dnum, sizeof(dnum), "%d", d);
	snprintf(cnum, sizeof(cnum), "%d", closed);
	const struct fd_case cases[] = {
		{ { "--fd", "2", "--cid", "3", NULL }, "3 or above" },
		{ { "--fd", "0", "--cid", "3", NULL }, "3 or above" },
		{ { "--fd", "-1", "--cid", "3", NULL }, "not a file descriptor number" },
		{ { "--fd", "abc", "--cid", "3", NULL }, "not a file descriptor number" },
		{ { "--fd", "99999999999", "--cid", "3", NULL }, "not a file descriptor number" },
		{ { "--fd", cnum, "--cid", "3", NULL }, "not open" },
		{ { "--fd", pnum, "--cid", "3", NULL }, "not a socket" },
		{ { "--fd", dnum, "--cid", "3", NULL }, "not a stream" },
		{ { "--fd", lnum, "--fd", lnum, "--cid", "3", NULL }, "give it once" },
		{ { "--fd", lnum, "--socket", "/a", "--cid", "3", NULL }, "exclude each other" },
		{ { "--socket-path", "/a", "--fd", lnum, "--cid", "3", NULL }, "exclude each other" },
		{ { "--fd", lnum, "--vfio", "0000:00:01.0", "--cid", "3", NULL }, "exclude each other" },
		{ { "--fd", lnum, "--vm", "socket=/a,uds-path=/u", NULL }, "--fd serves a single device" },
		{ { "--fd", lnum, "--config", "/nonexistent.yaml", NULL }, "--fd serves a single device" },
		{ { "--fd", lnum, NULL }, "--cid N is required" },
		{ { "--vfio", "bogus", "--cid", "3", NULL }, "not a PCI device name" },
		{ { "--vfio", "0000:00:05", "--uds-path", "/u", NULL }, "not a PCI device name" },
	};

	check_refusals(cases, sizeof(cases) / sizeof(cases[0]));
	close(l);
	close(d);
	close(p[0]);
	close(p[1]);
}

/* Run with stdout captured; Return: what was printed. */
static const char *stdout_of(const char *const *args, enum cli_result *r)
{
	static char out[512];
	struct config cfg;
	FILE *saved = stdout, *tmp = tmpfile();
	size_t n;

	assert_non_null(tmp);
	stdout = tmp;
	*r = parse(&cfg, args);
	fflush(tmp);
	stdout = saved;
	rewind(tmp);
	n = fread(out, 1, sizeof(out) - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return out;
}

/* JSON without the insignificant white space (there are no strings with spaces). */
static void squeeze(const char *in, char *out)
{
	for (; *in; in++) {
		if (!isspace((unsigned char)*in))
			*out++ = *in;
	}
	*out = '\0';
}

static void test_print_capabilities(void **state)
{
	static const char *const cases[][8] = {
		{ "--print-capabilities", NULL },
		{ "--bogus", "--print-capabilities", NULL },
		{ "--socket", "/a", "--cid", "0", "--print-capabilities", NULL },
		{ "--fd", "1", "--vm", "junk", "--print-capabilities", NULL },
		{ "--print-cap", NULL },  /* getopt's unambiguous abbreviation */
	};
	const char *no[] = { "--", "--print-capabilities", NULL };
	char flat[512];
	enum cli_result r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		squeeze(stdout_of((const char *const *)cases[i], &r), flat);
		if (r != CLI_EXIT_OK)
			fail_msg("case %zu: result %d", i, r);
		assert_string_equal(flat, "{\"type\":\"vsock\",\"features\":[]}");
	}
	/* after "--" it is an operand, not the option */
	assert_string_equal(stdout_of(no, &r), "");
	assert_int_equal(r, CLI_USAGE);
}

static void set_activation(int pid)
{
	char num[32];

	snprintf(num, sizeof(num), "%d", pid);
	setenv("LISTEN_PID", num, 1);
	setenv("LISTEN_FDS", "1", 1);
}

static void test_activation(void **state)
{
	struct config cfg;
	char lnum[16];
	int l = listening_fd();
	const char *plain[] = { "--cid", "3", NULL };

	(void)state;
	snprintf(lnum, sizeof(lnum), "%d", l);
	const char *with_fd[] = { "--fd", lnum, "--cid", "3", NULL };
	const struct fd_case cases[] = {
		{ { "--socket", "/a", "--cid", "3", NULL }, "drop --socket-path" },
		{ { "--vfio", "0000:00:01.0", "--cid", "3", NULL }, "drop --vfio" },
		{ { "--vm", "socket=/a,uds-path=/u", NULL }, "serves a single device" },
		{ { NULL }, "--cid N is required" },
	};

	set_activation((int)getpid());
	assert_int_equal(parse(&cfg, plain), CLI_RUN);
	assert_true(cfg.activated);
	assert_int_equal(cfg.fd, -1);
	assert_null(cfg.vms[0].socket_path);
	/* an explicit --fd wins over the environment */
	assert_int_equal(parse(&cfg, with_fd), CLI_RUN);
	assert_false(cfg.activated);
	assert_int_equal(cfg.fd, l);
	check_refusals(cases, sizeof(cases) / sizeof(cases[0]));

	/* variables meant for another process change nothing */
	set_activation((int)getpid() + 1);
	assert_int_equal(parse(&cfg, plain), CLI_USAGE);
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	assert_int_equal(parse(&cfg, plain), CLI_USAGE);
	close(l);
}

/* Forwarding alone, as vhost-device-vsock 0.3 allows: no hybrid sockets. */
static void test_forward_only(void **state)
{
	const char *single[] = { "--socket", "/a", "--cid", "3", "--forward-cid", "1",
				 "--forward-listen", "9000", NULL };
	const char *spec[] = { "--vm", "socket=/a,guest-cid=4,forward-cid=2", NULL };
	const char *neither[] = { "--vm", "socket=/a,guest-cid=4", NULL };
	const char *listen_only[] = { "--vm", "socket=/a,forward-listen=9", NULL };
	char *path = write_file("vms:\n  - socket: /a\n    guest_cid: 5\n    forward_cid: 1\n");
	const char *file[] = { "--config", path, NULL };
	char err[512];
	struct config cfg;

	(void)state;
	assert_int_equal(parse(&cfg, single), CLI_RUN);
	assert_int_equal(cfg.engine, ENGINE_USER);
	assert_null(cfg.vms[0].uds_path);
	assert_int_equal(cfg.vms[0].cid, 3);
	assert_int_equal(cfg.vms[0].forward_cid, 1);
	assert_int_equal(parse(&cfg, spec), CLI_RUN);
	assert_null(cfg.vms[0].uds_path);
	assert_int_equal(cfg.vms[0].forward_cid, 2);
	assert_int_equal(parse(&cfg, file), CLI_RUN);
	assert_null(cfg.vms[0].uds_path);
	assert_int_equal(cfg.vms[0].cid, 5);
	unlink(path);
	assert_int_equal(parse_err(neither, err, sizeof(err)), CLI_USAGE);
	assert_non_null(strstr(err, "uds-path or forward-cid is required"));
	assert_int_equal(parse_err(listen_only, err, sizeof(err)), CLI_USAGE);
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
		cmocka_unit_test(test_socket_path_alias),
		cmocka_unit_test(test_fd_accepted),
		cmocka_unit_test(test_fd_refused),
		cmocka_unit_test(test_print_capabilities),
		cmocka_unit_test(test_activation),
		cmocka_unit_test(test_forward_options),
		cmocka_unit_test(test_forward_errors),
		cmocka_unit_test(test_forward_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
