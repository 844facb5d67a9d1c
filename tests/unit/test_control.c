// SPDX-License-Identifier: MIT
/*
 * Control socket: the JSON writer (escaping, invalid UTF-8, misuse), the
 * JSON reader on hostile documents (truncation, bad numbers and escapes,
 * lone surrogates, depth and token bombs, trailing bytes), the request
 * parser (every refusal), control_answer() with test handlers (success,
 * refusals, a handler that breaks the document), the kernel engine's
 * answers (stats read from its state, add/remove refused), the stats table
 * printer, the client's usage errors, and the server over a real socket:
 * a request answered, an over-long line refused, a client that shuts down
 * without '\n', the connection cap, and the socket file's mode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/client.h"
#include "control/control.h"
#include "control/json.h"
#include "control/ops.h"
#include "control/request.h"
#include "daemon/server.h"
#include "engine/kernel/kernel.h"

/* ---- JSON writer ---------------------------------------------------------------- */

static void test_writer_document(void **state)
{
	struct json_w w;
	size_t len;

	(void)state;
	json_w_init(&w);
	json_obj_begin(&w);
	json_kv_str(&w, "a", "x\"y\\z\n\x01\x7f");
	json_kv_u64(&w, "n", UINT64_MAX);
	json_kv_bool(&w, "t", true);
	json_key(&w, "l");
	json_arr_begin(&w);
	json_u64(&w, 1);
	json_null(&w);
	json_str(&w, NULL);
	json_obj_begin(&w);
	json_obj_end(&w);
	json_arr_end(&w);
	json_kv_hex(&w, "f", 0x100000001ull);
	json_obj_end(&w);
	assert_int_equal(json_w_error(&w), 0);
	assert_string_equal(json_w_text(&w, &len),
			    "{\"a\":\"x\\\"y\\\\z\\u000a\\u0001\\u007f\",\"n\":18446744073709551615,"
			    "\"t\":true,\"l\":[1,null,null,{}],\"f\":\"0x100000001\"}");
	assert_int_equal(len, strlen(json_w_text(&w, NULL)));
	json_w_free(&w);
}

static void test_writer_utf8(void **state)
{
	struct json_w w;

	(void)state;
	json_w_init(&w);
	json_arr_begin(&w);
	json_str(&w, "caf\xc3\xa9 \xf0\x9f\x98\x80");   /* valid: kept */
	json_str(&w, "a\xff" "b\xc3");                    /* stray and truncated */
	json_str(&w, "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80"); /* overlong, surrogate, > U+10FFFF */
	json_arr_end(&w);
	assert_int_equal(json_w_error(&w), 0);
	assert_string_equal(json_w_text(&w, NULL),
			    "[\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"a\\ufffdb\\ufffd\","
			    "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"]");
	json_w_free(&w);
}

static void test_writer_misuse(void **state)
{
	struct json_w w;

	(void)state;
	json_w_init(&w);
	json_obj_begin(&w);
	json_u64(&w, 1); /* a value where a key is due */
	assert_int_equal(json_w_error(&w), -EINVAL);
	assert_string_equal(json_w_text(&w, NULL), "");

	json_w_reset(&w);
	json_arr_begin(&w);
	json_key(&w, "k"); /* a key in an array */
	assert_int_equal(json_w_error(&w), -EINVAL);

	json_w_reset(&w);
	json_arr_begin(&w);
	json_obj_end(&w); /* the wrong closer */
	assert_int_equal(json_w_error(&w), -EINVAL);

	json_w_reset(&w);
	json_u64(&w, 1);
	json_u64(&w, 2); /* two documents */
	assert_int_equal(json_w_error(&w), -EINVAL);

	json_w_reset(&w);
	json_obj_begin(&w); /* unbalanced */
	assert_int_equal(json_w_error(&w), -EINVAL);

	json_w_reset(&w);
	json_obj_begin(&w);
	json_key(&w, "k"); /* a key without its value */
	json_obj_end(&w);
	assert_int_equal(json_w_error(&w), -EINVAL);

	json_w_reset(&w);
	for (unsigned int i = 0; i <= JSON_MAX_DEPTH; i++)
		json_arr_begin(&w);
	assert_int_equal(json_w_error(&w), -EINVAL);
	json_w_free(&w);
}

/* ---- JSON reader ---------------------------------------------------------------- */

static int parse(struct json_doc *d, const char *text)
{
	return json_parse(d, text, strlen(text), 1000);
}

static void test_reader_lookup(void **state)
{
	const char *text = " {\"a\": [1, {\"b\": \"x\\u00e9\\ud83d\\ude00\\n\"}, true],"
			   " \"c\": {\"d\": 18446744073709551615}, \"e\": false, \"f\": null,"
			   " \"g\": -1, \"h\": 1.5e3} ";
	struct json_doc d;
	char s[32];
	uint64_t v;
	int a, o;

	(void)state;
	assert_int_equal(parse(&d, text), 0);
	assert_int_equal(d.tok[0].type, JSON_OBJECT);
	assert_int_equal(d.tok[0].size, 6);
	a = json_get(&d, 0, "a");
	assert_int_equal(d.tok[a].type, JSON_ARRAY);
	assert_int_equal(json_u64_at(&d, json_at(&d, a, 0), &v), 0);
	assert_int_equal(v, 1);
	o = json_at(&d, a, 1);
	assert_int_equal(json_str_at(&d, json_get(&d, o, "b"), s, sizeof(s)), 8);
	assert_string_equal(s, "x\xc3\xa9\xf0\x9f\x98\x80\n");
	assert_int_equal(json_bool_at(&d, json_at(&d, a, 2)), 1);
	assert_int_equal(json_at(&d, a, 3), -1);
	assert_int_equal(json_u64_at(&d, json_get(&d, json_get(&d, 0, "c"), "d"), &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(json_bool_at(&d, json_get(&d, 0, "e")), 0);
	assert_int_equal(d.tok[json_get(&d, 0, "f")].type, JSON_NULL);
	/* numbers a u64 cannot hold are refused, not wrapped */
	assert_int_equal(json_u64_at(&d, json_get(&d, 0, "g"), &v), -EINVAL);
	assert_int_equal(json_u64_at(&d, json_get(&d, 0, "h"), &v), -EINVAL);
	assert_int_equal(json_get(&d, 0, "zz"), -1);
	assert_int_equal(json_get(&d, a, "a"), -1);     /* not an object */
	assert_int_equal(json_bool_at(&d, 999), -EINVAL); /* out of range */
	assert_int_equal(json_str_at(&d, json_get(&d, 0, "e"), s, sizeof(s)), -EINVAL);
	assert_int_equal(json_str_at(&d, json_get(&d, o, "b"), s, 4), -ENOSPC);
	json_doc_free(&d);
}

static void test_reader_overflow_number(void **state)
{
	struct json_doc d;
	uint64_t v;

	(void)state;
	assert_int_equal(parse(&d, "18446744073709551616"), 0);
	assert_int_equal(json_u64_at(&d, 0, &v), -EINVAL);
	json_doc_free(&d);
}

static void test_reader_hostile(void **state)
{
	static const char *const bad[] = {
		"", " ", "{", "[1,", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]",
		"{1:2}", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"tab\there\"",
		"01", "1.", "-", "1e", "+1", ".5", "tru", "nul", "[1]x", "{} {}", "\"a\"\"b\"",
		"[\"\\", "\x01",
	};
	struct json_doc d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(&d, bad[i]) != -EINVAL)
			fail_msg("accepted malformed JSON #%zu: '%s'", i, bad[i]);
		assert_null(d.tok);
	}
}

static void test_reader_strings_hostile(void **state)
{
	static const char *const bad[] = {
		"\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\u0000\"",
	};
	struct json_doc d;
	char s[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* well-formed tokens, but no string a C program should get */
		assert_int_equal(parse(&d, bad[i]), 0);
		assert_int_equal(json_str_at(&d, 0, s, sizeof(s)), -EINVAL);
		json_doc_free(&d);
	}
}

static void test_reader_bombs(void **state)
{
	char deep[2 * JSON_MAX_DEPTH + 8];
	struct json_doc d;
	size_t n = 0;

	(void)state;
	for (unsigned int i = 0; i <= JSON_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (unsigned int i = 0; i <= JSON_MAX_DEPTH; i++)
		deep[n++] = ']';
	assert_int_equal(json_parse(&d, deep, n, 1000), -E2BIG);
	/* one level less is fine */
	assert_int_equal(json_parse(&d, deep + 1, n - 2, 1000), 0);
	json_doc_free(&d);
	assert_int_equal(json_parse(&d, "[1,2,3,4]", 9, 4), -E2BIG);
	assert_int_equal(json_parse(&d, "[1,2,3,4]", 9, 5), 0);
	json_doc_free(&d);
	/* not NUL-terminated: the length bounds the reading */
	assert_int_equal(json_parse(&d, "[1]]]", 3, 10), 0);
	json_doc_free(&d);
}

static void test_round_trip(void **state)
{
	struct json_w w;
	struct json_doc d;
	char s[64];
	const char *text;
	size_t len;

	(void)state;
	json_w_init(&w);
	json_obj_begin(&w);
	json_kv_str(&w, "path", "/run/a \"b\"\t\xff.sock");
	json_obj_end(&w);
	text = json_w_text(&w, &len);
	assert_int_equal(json_parse(&d, text, len, 100), 0);
	assert_true(json_str_at(&d, json_get(&d, 0, "path"), s, sizeof(s)) > 0);
	assert_string_equal(s, "/run/a \"b\"\t\xef\xbf\xbd.sock");
	json_doc_free(&d);
	json_w_free(&w);
}

/* ---- requests ----------------------------------------------------------------- */

static void test_request_good(void **state)
{
	struct control_req r;
	const char *why = NULL;

	(void)state;
	assert_int_equal(control_parse_request("stats\n", 6, &r, &why), 0);
	assert_int_equal(r.cmd, CONTROL_STATS);
	assert_int_equal(control_parse_request("  stats \t\r\n", 11, &r, &why), 0);
	assert_int_equal(r.cmd, CONTROL_STATS);
	assert_int_equal(control_parse_request("help", 4, &r, &why), 0);
	assert_int_equal(r.cmd, CONTROL_HELP);
	assert_int_equal(control_parse_request("vm add socket=/a b,uds-path=/c \n", 32, &r, &why), 0);
	assert_int_equal(r.cmd, CONTROL_VM_ADD);
	assert_string_equal(r.arg, "socket=/a b,uds-path=/c");
	assert_int_equal(control_parse_request("vm\tremove   7", 13, &r, &why), 0);
	assert_int_equal(r.cmd, CONTROL_VM_REMOVE);
	assert_string_equal(r.arg, "7");
}

static void expect_refused(const char *line, size_t len, const char *because)
{
	struct control_req r;
	const char *why = NULL;

	assert_int_equal(control_parse_request(line, len, &r, &why), -EINVAL);
	assert_non_null(why);
	if (!strstr(why, because))
		fail_msg("'%.*s': '%s' does not say '%s'", (int)len, line, why, because);
}

static void test_request_refused(void **state)
{
	static char longline[CONTROL_MAX_LINE + 2];

	(void)state;
	expect_refused("", 0, "empty");
	expect_refused("\n", 1, "empty");
	expect_refused("status\n", 7, "not a request");
	expect_refused("stats now\n", 10, "takes no argument");
	expect_refused("vm\n", 3, "'add' or 'remove'");
	expect_refused("vm start x\n", 11, "'add' or 'remove'");
	expect_refused("vm add\n", 7, "needs the VM's keys");
	expect_refused("vm remove   \n", 13, "needs the VM");
	expect_refused("stats\0\n", 7, "control character");
	expect_refused("vm add a=\x1b[1m\n", 13, "control character");
	expect_refused("vm add a=\x7f\n", 11, "control character");
	memset(longline, 'a', CONTROL_MAX_LINE);
	expect_refused(longline, CONTROL_MAX_LINE, "too long");
	/* the longest line that fits */
	memcpy(longline, "vm add ", 7);
	longline[CONTROL_MAX_LINE - 1] = '\n';
	{
		struct control_req r;
		const char *why;

		assert_int_equal(control_parse_request(longline, CONTROL_MAX_LINE, &r, &why), 0);
		assert_int_equal(strlen(r.arg), CONTROL_MAX_LINE - 1 - 7);
	}
}

/* ---- answers -------------------------------------------------------------------- */

struct fake {
	int stats_rc;
	bool break_doc;
	char last_arg[64];
	int calls;
};

static int fake_stats(void *ctx, struct json_w *w, char *err, size_t errlen)
{
	struct fake *f = ctx;

	f->calls++;
	if (f->stats_rc) {
		snprintf(err, errlen, "stats: the reason");
		return f->stats_rc;
	}
	json_kv_u64(w, "answer", 42);
	if (f->break_doc)
		json_obj_begin(w); /* a value where a key is due */
	return 0;
}

static int fake_vm(void *ctx, const char *arg, struct json_w *w, char *err, size_t errlen)
{
	struct fake *f = ctx;

	(void)err;
	(void)errlen;
	f->calls++;
	snprintf(f->last_arg, sizeof(f->last_arg), "%s", arg);
	json_kv_str(w, "arg", arg);
	return 0;
}

static const struct control_ops fake_ops = {
	.stats = fake_stats, .vm_add = fake_vm, .vm_remove = fake_vm,
};

/* The answer to @line as a document; its "ok" returned. */
static int answer(struct fake *f, const char *line, struct json_doc *d, struct json_w *w)
{
	size_t len;
	const char *text;

	assert_int_equal(control_answer(&fake_ops, f, line, strlen(line), w), 0);
	text = json_w_text(w, &len);
	assert_int_equal(json_parse(d, text, len, 1000), 0);
	return json_bool_at(d, json_get(d, 0, "ok"));
}

static void test_answers(void **state)
{
	struct fake f = { 0 };
	struct json_w w;
	struct json_doc d;
	char s[256];
	uint64_t v;

	(void)state;
	json_w_init(&w);
	assert_int_equal(answer(&f, "stats\n", &d, &w), 1);
	assert_int_equal(json_u64_at(&d, json_get(&d, 0, "answer"), &v), 0);
	assert_int_equal(v, 42);
	json_doc_free(&d);

	assert_int_equal(answer(&f, "vm add socket=/x,uds-path=/y\n", &d, &w), 1);
	assert_string_equal(f.last_arg, "socket=/x,uds-path=/y");
	json_doc_free(&d);

	assert_int_equal(answer(&f, "help\n", &d, &w), 1);
	assert_int_equal(d.tok[json_get(&d, 0, "requests")].size, 4);
	json_doc_free(&d);

	/* a refused request is quoted back, with the reason */
	f.calls = 0;
	assert_int_equal(answer(&f, "reboot now\n", &d, &w), 0);
	assert_true(json_str_at(&d, json_get(&d, 0, "error"), s, sizeof(s)) > 0);
	assert_string_equal(s, "request 'reboot now' is not a request (known: stats, vm add, "
			       "vm remove, help)");
	assert_int_equal(f.calls, 0);
	json_doc_free(&d);

	f.stats_rc = -EIO;
	assert_int_equal(answer(&f, "stats", &d, &w), 0);
	json_str_at(&d, json_get(&d, 0, "error"), s, sizeof(s));
	assert_string_equal(s, "stats: the reason");
	assert_int_equal(json_get(&d, 0, "answer"), -1); /* what it wrote is dropped */
	json_doc_free(&d);

	f.stats_rc = 0;
	f.break_doc = true;
	assert_int_equal(answer(&f, "stats", &d, &w), 0);
	json_str_at(&d, json_get(&d, 0, "error"), s, sizeof(s));
	assert_non_null(strstr(s, "could not be built"));
	json_doc_free(&d);
	json_w_free(&w);
}

/* The kernel engine answers from its own state and refuses run-time changes. */
static void test_kernel_ops(void **state)
{
	struct config cfg = { .sandbox = 0 };
	struct kern_engine k;
	struct server srv;
	struct control_kern_ctx ctx = { .k = &k, .srv = &srv, .cfg = &cfg };
	struct json_w w;
	struct json_doc d;
	char s[300];
	uint64_t v;
	int vm;

	(void)state;
	kern_engine_init(&k, &kern_vhost_sys, "/dev/vhost-vsock", 7);
	k.running = true;
	memset(&srv, 0, sizeof(srv));
	srv.name = "vsock";
	srv.path = "/run/vm7.sock";
	srv.conn_fd = 5;
	srv.sessions = 2;
	srv.dev.features_set = true;
	srv.dev.features = 0x100000000ull;
	json_w_init(&w);
	assert_int_equal(control_answer(&control_kern_ops, &ctx, "stats", 5, &w), 0);
	assert_int_equal(json_parse(&d, json_w_text(&w, NULL), strlen(json_w_text(&w, NULL)), 500),
			 0);
	json_str_at(&d, json_get(&d, 0, "engine"), s, sizeof(s));
	assert_string_equal(s, "kernel");
	vm = json_at(&d, json_get(&d, 0, "vms"), 0);
	assert_int_equal(json_u64_at(&d, json_get(&d, vm, "cid"), &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(json_bool_at(&d, json_get(&d, vm, "frontend_connected")), 1);
	assert_int_equal(json_bool_at(&d, json_get(&d, vm, "running")), 1);
	json_str_at(&d, json_get(&d, vm, "features"), s, sizeof(s));
	assert_string_equal(s, "0x100000000");
	json_u64_at(&d, json_get(&d, vm, "sessions"), &v);
	assert_int_equal(v, 2);
	json_doc_free(&d);

	assert_int_equal(control_answer(&control_kern_ops, &ctx, "vm add socket=/a,uds-path=/b",
					28, &w), 0);
	assert_int_equal(json_parse(&d, json_w_text(&w, NULL), strlen(json_w_text(&w, NULL)), 50),
			 0);
	assert_int_equal(json_bool_at(&d, json_get(&d, 0, "ok")), 0);
	json_str_at(&d, json_get(&d, 0, "error"), s, sizeof(s));
	assert_non_null(strstr(s, "vm add: the kernel engine serves one VM"));
	assert_non_null(strstr(s, "userspace engine"));
	json_doc_free(&d);
	json_w_free(&w);
}

/* ---- printing and the client ------------------------------------------------ */

static void test_print_stats(void **state)
{
	const char *text =
		"{\"ok\":true,\"engine\":\"user\",\"vms\":[{\"name\":\"cid3\",\"cid\":3,"
		"\"frontend_connected\":true,\"running\":true,\"connections_open\":1,"
		"\"guest_to_host\":{\"packets\":12,\"bytes\":3456},"
		"\"host_to_guest\":{\"packets\":7,\"bytes\":89},\"rst_sent\":2,"
		"\"credit_stalls\":1,\"errors\":{\"bad_packets\":5,\"host_socket\":0},"
		"\"connections\":[{\"local_port\":1234,\"peer_port\":5678,\"type\":\"stream\","
		"\"state\":\"ESTABLISHED\",\"bytes_to_host\":3456,\"bytes_from_host\":89,"
		"\"buffered_to_host\":0,\"buffered_to_guest\":0,\"age_ms\":61000}]}]}";
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	struct json_doc d;

	(void)state;
	assert_int_equal(json_parse(&d, text, strlen(text), 1000), 0);
	assert_int_equal(control_print_stats(f, &d), 0);
	fclose(f);
	assert_non_null(strstr(out, "userspace engine, 1 VM\n"));
	assert_non_null(strstr(out, "cid3"));
	assert_non_null(strstr(out, "12/7"));
	assert_non_null(strstr(out, "3456/89"));
	assert_non_null(strstr(out, "errors: bad_packets 5\n"));
	assert_non_null(strstr(out, "ESTABLISHED"));
	assert_non_null(strstr(out, " 61\n")); /* age in seconds */
	free(out);
	json_doc_free(&d);

	/* not a stats answer */
	assert_int_equal(json_parse(&d, "{\"ok\":true}", 11, 10), 0);
	f = open_memstream(&out, &len);
	assert_int_equal(control_print_stats(f, &d), -EINVAL);
	fclose(f);
	free(out);
	json_doc_free(&d);
}

static void test_client_usage(void **state)
{
	char a0[] = "vhost-user-vsock", st[] = "stats", vm[] = "vm", add[] = "add",
	     rm[] = "remove", frob[] = "frob", p[] = "/nonexistent/ctl.sock", j[] = "--json",
	     x[] = "7";
	char *v1[] = { a0, st, NULL };
	char *v2[] = { a0, vm, add, p, NULL };
	char *v3[] = { a0, vm, frob, p, x, NULL };
	char *v4[] = { a0, st, p, j, NULL };
	char *v5[] = { a0, vm, rm, p, x, NULL };

	(void)state;
	assert_true(control_client_is_command("stats"));
	assert_true(control_client_is_command("vm"));
	assert_false(control_client_is_command("--stats"));
	assert_false(control_client_is_command(NULL));
	assert_int_equal(control_client_main(2, v1), 2);
	assert_int_equal(control_client_main(4, v2), 2);
	assert_int_equal(control_client_main(5, v3), 2);
	/* well-formed, but nobody is there: a runtime failure */
	assert_int_equal(control_client_main(4, v4), 1);
	assert_int_equal(control_client_main(5, v5), 1);
}

/* ---- the server over a socket --------------------------------------------------- */

struct srv_fx {
	char dir[64], path[96];
	struct loop loop;
	struct control ctl;
	struct fake f;
	pthread_t thread;
	int stop_fd;
	struct loop_watch stop_w;
};

static void on_stop(void *ctx, uint32_t events)
{
	struct srv_fx *x = ctx;

	(void)events;
	loop_stop(&x->loop);
}

static void *loop_thread(void *arg)
{
	struct srv_fx *x = arg;

	loop_run(&x->loop);
	return NULL;
}

static int srv_setup(void **state)
{
	static struct srv_fx x;

	memset(&x, 0, sizeof(x));
	strcpy(x.dir, "/tmp/test-control-XXXXXX");
	assert_non_null(mkdtemp(x.dir));
	snprintf(x.path, sizeof(x.path), "%s/ctl.sock", x.dir);
	assert_int_equal(loop_init(&x.loop), 0);
	assert_int_equal(control_start(&x.ctl, &x.loop, x.path, &fake_ops, &x.f), 0);
	x.stop_fd = eventfd(0, EFD_CLOEXEC);
	x.stop_w.fd = -1;
	assert_int_equal(loop_add(&x.loop, &x.stop_w, x.stop_fd, EPOLLIN, on_stop, &x), 0);
	assert_int_equal(pthread_create(&x.thread, NULL, loop_thread, &x), 0);
	*state = &x;
	return 0;
}

static int srv_teardown(void **state)
{
	struct srv_fx *x = *state;
	struct stat st;

	eventfd_write(x->stop_fd, 1);
	pthread_join(x->thread, NULL);
	control_stop(&x->ctl);
	assert_int_equal(x->ctl.nclients, 0);
	loop_del(&x->loop, &x->stop_w);
	close(x->stop_fd);
	loop_fini(&x->loop);
	/* the socket file goes with the server */
	assert_int_equal(lstat(x->path, &st), -1);
	rmdir(x->dir);
	return 0;
}

static int connect_raw(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 5 };

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Everything the server sends until it closes. */
static size_t read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t k;

	while (n < size - 1 && (k = recv(fd, buf + n, size - 1 - n, 0)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
	return n;
}

static void test_server_answers(void **state)
{
	struct srv_fx *x = *state;
	struct stat st;
	char *ans = NULL;

	assert_int_equal(stat(x->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600); /* owner only */
	assert_int_equal(control_request(x->path, "stats", &ans, 5000), 0);
	assert_string_equal(ans, "{\"ok\":true,\"answer\":42}");
	free(ans);
	assert_int_equal(control_request(x->path, "vm remove /run/x.sock", &ans, 5000), 0);
	assert_string_equal(ans, "{\"ok\":true,\"arg\":\"/run/x.sock\"}");
	free(ans);
}

static void test_server_hostile_clients(void **state)
{
	struct srv_fx *x = *state;
	static char big[CONTROL_MAX_LINE + 100];
	char buf[512];
	int fd;

	/* a line past the limit: refused, connection closed */
	memset(big, 'x', sizeof(big));
	fd = connect_raw(x->path);
	send(fd, big, sizeof(big), MSG_NOSIGNAL);
	read_all(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"ok\":false"));
	assert_non_null(strstr(buf, "too long"));
	close(fd);

	/* no '\n', then shut down: what came is the request */
	fd = connect_raw(x->path);
	send(fd, "stats", 5, MSG_NOSIGNAL);
	shutdown(fd, SHUT_WR);
	read_all(fd, buf, sizeof(buf));
	assert_string_equal(buf, "{\"ok\":true,\"answer\":42}\n");
	close(fd);

	/* only the first line of a pipelined burst is answered */
	fd = connect_raw(x->path);
	send(fd, "help\nstats\nstats\n", 17, MSG_NOSIGNAL);
	read_all(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"requests\""));
	assert_null(strstr(strstr(buf, "\"ok\"") + 1, "\"ok\""));
	close(fd);

	/* connect and say nothing, then go away: nothing answered, nothing leaked */
	fd = connect_raw(x->path);
	close(fd);
}

static void test_server_connection_cap(void **state)
{
	struct srv_fx *x = *state;
	int fds[CONTROL_MAX_CLIENTS + 1];
	char buf[256];
	char *ans = NULL;

	for (unsigned int i = 0; i < CONTROL_MAX_CLIENTS; i++)
		fds[i] = connect_raw(x->path);
	/* one more is closed at once, unanswered */
	fds[CONTROL_MAX_CLIENTS] = connect_raw(x->path);
	send(fds[CONTROL_MAX_CLIENTS], "stats\n", 6, MSG_NOSIGNAL);
	assert_int_equal(read_all(fds[CONTROL_MAX_CLIENTS], buf, sizeof(buf)), 0);
	/* the silent ones free their slots by leaving; then service resumes */
	for (unsigned int i = 0; i <= CONTROL_MAX_CLIENTS; i++)
		close(fds[i]);
	for (int tries = 0; tries < 100; tries++) {
		if (control_request(x->path, "stats", &ans, 5000) == 0)
			break;
		usleep(10000);
	}
	assert_non_null(ans);
	assert_string_equal(ans, "{\"ok\":true,\"answer\":42}");
	free(ans);
}

static void test_server_refuses_path(void **state)
{
	struct loop loop;
	struct control c;
	char dir[] = "/tmp/test-control-XXXXXX", path[64];
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/not-a-socket", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(loop_init(&loop), 0);
	/* a regular file is never replaced */
	assert_true(control_start(&c, &loop, path, &fake_ops, NULL) < 0);
	loop_fini(&loop);
	assert_int_equal(unlink(path), 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_document),
		cmocka_unit_test(test_writer_utf8),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test(test_reader_lookup),
		cmocka_unit_test(test_reader_overflow_number),
		cmocka_unit_test(test_reader_hostile),
		cmocka_unit_test(test_reader_strings_hostile),
		cmocka_unit_test(test_reader_bombs),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_request_good),
		cmocka_unit_test(test_request_refused),
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_kernel_ops),
		cmocka_unit_test(test_print_stats),
		cmocka_unit_test(test_client_usage),
		cmocka_unit_test_setup_teardown(test_server_answers, srv_setup, srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_hostile_clients, srv_setup,
						srv_teardown),
		cmocka_unit_test_setup_teardown(test_server_connection_cap, srv_setup,
						srv_teardown),
		cmocka_unit_test(test_server_refuses_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
