// SPDX-License-Identifier: MIT
/*
 * The control socket of a running daemon (userspace engine, default
 * sandbox): stats checked against a known transfer through the test front
 * end (bytes and packets each way, the connection's row, a refused connect
 * and its RST), a VM added at run time that serves a front end, then
 * removed (sockets gone, its host connection closed) and added again, the
 * refusals (duplicate CID or path, bad keys, unknown VM, bad requests),
 * removing a VM given on the command line, and the client subcommands'
 * output and exit status.
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "control/client.h"
#include "control/json.h"
#include "user_harness.h"

#define GCID 3u
#define NEW_CID 7u
#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)

struct fx {
	struct uh h;
	struct uh_guest g[2];
	bool running;
	char cdir[64], ctl[96];
	char *answer;
	struct json_doc d;
};

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	uh_watchdog(120);
	strcpy(f.cdir, "/tmp/uh-ctl-XXXXXX");
	assert_non_null(mkdtemp(f.cdir));
	snprintf(f.ctl, sizeof(f.ctl), "%s/ctl.sock", f.cdir);
	*state = &f;
	return 0;
}

static void forget_answer(struct fx *f)
{
	if (f->d.tok)
		json_doc_free(&f->d);
	free(f->answer);
	f->answer = NULL;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct stat st;

	forget_answer(f);
	for (unsigned int i = 0; i < 2; i++)
		uh_guest_close(&f->g[i]);
	if (f->running)
		uh_stop(&f->h);
	f->running = false;
	/* the daemon removed its control socket on the way out */
	if (lstat(f->ctl, &st) == 0) {
		unlink(f->ctl);
		rmdir(f->cdir);
		fail_msg("the control socket was left behind");
	}
	rmdir(f->cdir);
	uh_watchdog(0);
	return 0;
}

static void start(struct fx *f)
{
	const struct uh_vm_spec spec = { .cid = GCID };
	const char *extra[] = { "--control", f->ctl, NULL };
	struct stat st;

	assert_int_equal(uh_start(&f->h, &spec, 1, true, extra), 0);
	f->running = true;
	/* the control socket comes after the VMs' sockets uh_start() waited for */
	for (int t = 0; t < 5000; t += 10) {
		char *a = NULL;
		int rc = control_request(f->ctl, "help", &a, 1000);

		free(a);
		if (rc == 0)
			break;
		usleep(10000);
	}
	assert_int_equal(lstat(f->ctl, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600); /* owner only */
	assert_int_equal(uh_guest_open(&f->g[0], &f->h, 0, F_EVENT_IDX, NULL), 0);
}

static void finish(struct fx *f)
{
	forget_answer(f);
	assert_true(uh_alive(&f->h));
	for (unsigned int i = 0; i < 2; i++)
		uh_guest_close(&f->g[i]);
	f->running = false;
	assert_int_equal(uh_stop(&f->h), 0);
}

/* Send @line; Return: the answer's "ok" (the document stays in f->d). */
static int ask(struct fx *f, const char *line)
{
	forget_answer(f);
	assert_int_equal(control_request(f->ctl, line, &f->answer, 10000), 0);
	assert_int_equal(json_parse(&f->d, f->answer, strlen(f->answer), 1u << 20), 0);
	return json_bool_at(&f->d, json_get(&f->d, 0, "ok"));
}

/* The stats entry of the VM with @cid, or -1. */
static int vm_of(struct fx *f, uint64_t cid)
{
	int vms = json_get(&f->d, 0, "vms");
	uint64_t v;

	for (uint32_t i = 0; vms >= 0 && i < f->d.tok[vms].size; i++) {
		int vm = json_at(&f->d, vms, i);

		if (json_u64_at(&f->d, json_get(&f->d, vm, "cid"), &v) == 0 && v == cid)
			return vm;
	}
	return -1;
}

/* A number at a dotted path below token @t ("guest_to_host.bytes"). */
static uint64_t num(struct fx *f, int t, const char *path)
{
	char key[64];
	uint64_t v = UINT64_MAX;

	while (t >= 0 && *path) {
		size_t n = strcspn(path, ".");

		snprintf(key, sizeof(key), "%.*s", (int)n, path);
		t = json_get(&f->d, t, key);
		path += n + (path[n] == '.');
	}
	if (json_u64_at(&f->d, t, &v) < 0)
		fail_msg("no number at '%s' in %s", path, f->answer);
	return v;
}

static int flag(struct fx *f, int t, const char *key)
{
	return json_bool_at(&f->d, json_get(&f->d, t, key));
}

static void str(struct fx *f, int t, const char *key, char *buf, size_t size)
{
	assert_true(json_str_at(&f->d, json_get(&f->d, t, key), buf, size) >= 0);
}

static void expect_error(struct fx *f, const char *line, const char *text)
{
	char err[512];

	assert_int_equal(ask(f, line), 0);
	str(f, 0, "error", err, sizeof(err));
	if (!strstr(err, text))
		fail_msg("'%s': '%s' does not say '%s'", line, err, text);
}

/* ---- stats against a known transfer ----------------------------------------- */

static void test_stats_counters(void **state)
{
	const size_t to_host = 300000, to_guest = 123457;
	struct tfe_vsock_conn *c, *refused;
	struct fx *f = *state;
	char s[64];
	int lfd, fd, vm, conns, row;

	start(f);
	lfd = uh_host_listen(f->h.uds[0], 5000, SOCK_STREAM);
	assert_true(lfd >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, TFE_VSOCK_HOST_CID, 5000, 40000, 5000, &c),
			 0);
	fd = uh_accept(lfd, &f->g[0], 5000);
	assert_true(fd >= 0);
	assert_int_equal(uh_guest_to_host(&f->g[0], c, fd, to_host, 21, 30000), 0);
	assert_int_equal(uh_host_to_guest(&f->g[0], c, fd, to_guest, 22, 30000), 0);

	assert_int_equal(ask(f, "stats"), 1);
	str(f, 0, "engine", s, sizeof(s));
	assert_string_equal(s, "user");
	str(f, 0, "sandbox", s, sizeof(s));
	assert_string_equal(s, "seccomp"); /* the default */
	vm = vm_of(f, GCID);
	assert_true(vm >= 0);
	assert_int_equal(flag(f, vm, "frontend_connected"), 1);
	assert_int_equal(flag(f, vm, "features_negotiated"), 1);
	assert_int_equal(flag(f, vm, "running"), 1);
	assert_int_equal(flag(f, vm, "added_at_run_time"), 0);
	assert_int_equal(num(f, vm, "sessions"), 1);
	assert_int_equal(num(f, vm, "connections_open"), 1);
	assert_int_equal(num(f, vm, "connections_opened"), 1);
	/* payload bytes exactly; packets: at least the data and the REQUEST */
	assert_int_equal(num(f, vm, "guest_to_host.bytes"), to_host);
	assert_int_equal(num(f, vm, "host_to_guest.bytes"), to_guest);
	assert_true(num(f, vm, "guest_to_host.packets") >= to_host / 65536 + 2);
	assert_true(num(f, vm, "host_to_guest.packets") >= to_guest / 65536 + 2);
	assert_int_equal(num(f, vm, "errors.broken_rings"), 0);
	assert_int_equal(num(f, vm, "errors.bad_packets"), 0);
	assert_int_equal(num(f, vm, "errors.refused_connects"), 0);
	conns = json_get(&f->d, vm, "connections");
	assert_int_equal(f->d.tok[conns].size, 1);
	row = json_at(&f->d, conns, 0);
	assert_int_equal(num(f, row, "local_port"), 5000);
	assert_int_equal(num(f, row, "peer_port"), 40000);
	assert_int_equal(num(f, row, "bytes_to_host"), to_host);
	assert_int_equal(num(f, row, "bytes_from_host"), to_guest);
	assert_int_equal(num(f, row, "buffered_to_host"), 0);
	str(f, row, "state", s, sizeof(s));
	assert_string_equal(s, "ESTABLISHED");
	str(f, row, "type", s, sizeof(s));
	assert_string_equal(s, "stream");

	/* nobody listens on 5001: refused, with an RST */
	assert_int_equal(tfe_vsock_connect(&f->g[0].vs, TFE_VSOCK_HOST_CID, 5001, 40001, 5000,
					   &refused),
			 -ECONNREFUSED);
	assert_int_equal(ask(f, "stats"), 1);
	vm = vm_of(f, GCID);
	assert_int_equal(num(f, vm, "errors.refused_connects"), 1);
	assert_true(num(f, vm, "rst_sent") >= 1);

	assert_int_equal(tfe_vsock_close(&f->g[0].vs, c, 5000), 0);
	assert_true(uh_host_closed(fd, &f->g[0], 5000));
	close(fd);
	close(lfd);
	assert_int_equal(ask(f, "stats"), 1);
	assert_int_equal(num(f, vm_of(f, GCID), "connections_open"), 0);
	finish(f);
}

/* ---- run-time add and remove -------------------------------------------------- */

static void add_new_vm(struct fx *f)
{
	char line[400], s[128];
	int vm;

	snprintf(f->h.sock[1], sizeof(f->h.sock[1]), "%s/new.sock", f->h.dir);
	snprintf(f->h.uds[1], sizeof(f->h.uds[1]), "%s/new.vsock", f->h.dir);
	f->h.cid[1] = NEW_CID;
	f->h.nvms = 2; /* uh_stop checks that its files are gone too */
	snprintf(line, sizeof(line), "vm add socket=%s,uds-path=%s,guest-cid=%u", f->h.sock[1],
		 f->h.uds[1], NEW_CID);
	assert_int_equal(ask(f, line), 1);
	vm = json_get(&f->d, 0, "vm");
	str(f, vm, "name", s, sizeof(s));
	assert_string_equal(s, "cid7");
	assert_int_equal(num(f, vm, "cid"), NEW_CID);
	str(f, vm, "socket", s, sizeof(s));
	assert_string_equal(s, f->h.sock[1]);
}

/* A guest → host transfer through VM @i's hybrid socket. */
static void transfer(struct fx *f, unsigned int i, uint32_t port)
{
	struct tfe_vsock_conn *c;
	int lfd, fd;

	lfd = uh_host_listen(f->h.uds[i], port, SOCK_STREAM);
	assert_true(lfd >= 0);
	assert_int_equal(tfe_vsock_connect(&f->g[i].vs, TFE_VSOCK_HOST_CID, port, 41000, 5000, &c),
			 0);
	fd = uh_accept(lfd, &f->g[i], 5000);
	assert_true(fd >= 0);
	assert_int_equal(uh_guest_to_host(&f->g[i], c, fd, 100000, 30 + i, 30000), 0);
	assert_int_equal(tfe_vsock_close(&f->g[i].vs, c, 5000), 0);
	close(fd);
	close(lfd);
}

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

static void test_vm_add_remove(void **state)
{
	struct fx *f = *state;
	char seq[160], line[400];
	struct tfe_vsock_conn *c;
	int lfd, fd, vm;

	start(f);
	add_new_vm(f);
	snprintf(seq, sizeof(seq), "%s_seqpacket", f->h.uds[1]);
	assert_true(is_socket(f->h.sock[1]) && is_socket(f->h.uds[1]) && is_socket(seq));
	/* it serves a front end */
	assert_int_equal(uh_guest_open(&f->g[1], &f->h, 1, F_EVENT_IDX, NULL), 0);
	transfer(f, 1, 6000);
	assert_int_equal(ask(f, "stats"), 1);
	vm = vm_of(f, NEW_CID);
	assert_true(vm >= 0);
	assert_int_equal(flag(f, vm, "added_at_run_time"), 1);
	assert_int_equal(flag(f, vm, "frontend_connected"), 1);
	assert_int_equal(num(f, vm, "guest_to_host.bytes"), 100000);
	assert_int_equal(num(f, vm_of(f, GCID), "guest_to_host.bytes"), 0); /* per VM */

	/* removed with a host connection open: it is closed, the files go */
	lfd = uh_host_listen(f->h.uds[1], 6001, SOCK_STREAM);
	assert_int_equal(tfe_vsock_connect(&f->g[1].vs, TFE_VSOCK_HOST_CID, 6001, 41001, 5000, &c),
			 0);
	fd = uh_accept(lfd, &f->g[1], 5000);
	assert_true(fd >= 0);
	assert_int_equal(ask(f, "vm remove 7"), 1);
	assert_int_equal(num(f, json_get(&f->d, 0, "vm"), "cid"), NEW_CID);
	assert_true(uh_host_closed(fd, NULL, 5000));
	close(fd);
	close(lfd);
	assert_false(is_socket(f->h.sock[1]) || is_socket(f->h.uds[1]) || is_socket(seq));
	uh_guest_close(&f->g[1]);
	assert_int_equal(ask(f, "stats"), 1);
	assert_int_equal(vm_of(f, NEW_CID), -1);
	assert_int_equal(f->d.tok[json_get(&f->d, 0, "vms")].size, 1);
	expect_error(f, "vm remove 7", "no VM has the CID or socket path '7'");

	/* the same CID and paths again: a fresh VM, serving again */
	add_new_vm(f);
	assert_int_equal(uh_guest_open(&f->g[1], &f->h, 1, F_EVENT_IDX, NULL), 0);
	transfer(f, 1, 6002);
	/* the first VM was never disturbed */
	transfer(f, 0, 6003);
	snprintf(line, sizeof(line), "vm remove %s", f->h.sock[1]);
	uh_guest_close(&f->g[1]);
	assert_int_equal(ask(f, line), 1);
	finish(f);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	char line[400];

	start(f);
	snprintf(line, sizeof(line), "vm add socket=%s/x.sock,uds-path=%s/x.vsock,guest-cid=%u",
		 f->h.dir, f->h.dir, GCID);
	expect_error(f, line, "guest CID 3 is already served by cid3");
	snprintf(line, sizeof(line), "vm add socket=%s,uds-path=%s/x.vsock,guest-cid=9",
		 f->h.uds[0], f->h.dir);
	expect_error(f, line, "is already used by cid3");
	snprintf(line, sizeof(line), "vm add socket=%s/x.sock,uds-path=%s,guest-cid=9", f->h.dir,
		 f->h.sock[0]);
	expect_error(f, line, "is already used by cid3");
	expect_error(f, "vm add socket=/a,uds-path=/b,colour=blue", "unknown key 'colour'");
	expect_error(f, "vm add socket=/a,uds-path=/b,guest-cid=2", "guest-cid '2'");
	expect_error(f, "vm add socket=/a", "uds-path or forward-cid is required");
	expect_error(f, "vm add socket=/a,uds-path=/b,groups=g1", "take no part in sibling routing");
	/* refused before anything is opened: no AF_VSOCK socket on this machine */
	expect_error(f, "vm add socket=/a,uds-path=/b,guest-cid=9,forward-cid=1",
		     "forward-cid needs a VM that forwards from start-up");
	expect_error(f, "vm add socket=/a,uds-path=/b,forward-cid=0", "forward-cid '0'");
	/* a directory that does not exist: the set-up fails and nothing is left */
	expect_error(f, "vm add socket=/nonexistent/a.sock,uds-path=/nonexistent/a.vsock,"
			"guest-cid=9", "cannot set up cid9");
	expect_error(f, "vm remove 99", "no VM has");
	expect_error(f, "vm remove /nonexistent.sock", "no VM has");
	expect_error(f, "reboot", "is not a request");
	expect_error(f, "stats please", "takes no argument");
	assert_int_equal(ask(f, "stats"), 1);
	assert_int_equal(f->d.tok[json_get(&f->d, 0, "vms")].size, 1);
	transfer(f, 0, 7000); /* still serving */
	finish(f);
}

/* The VM of the command line can go too; the daemon then serves none. */
static void test_remove_startup_vm(void **state)
{
	struct fx *f = *state;
	char line[200];
	char seq[160];

	start(f);
	uh_guest_close(&f->g[0]);
	snprintf(line, sizeof(line), "vm remove %s", f->h.uds[0]);
	assert_int_equal(ask(f, line), 1);
	snprintf(seq, sizeof(seq), "%s_seqpacket", f->h.uds[0]);
	assert_false(is_socket(f->h.sock[0]) || is_socket(f->h.uds[0]) || is_socket(seq));
	assert_int_equal(ask(f, "stats"), 1);
	assert_int_equal(f->d.tok[json_get(&f->d, 0, "vms")].size, 0);
	/* and can get a VM again */
	add_new_vm(f);
	assert_int_equal(uh_guest_open(&f->g[1], &f->h, 1, F_EVENT_IDX, NULL), 0);
	transfer(f, 1, 7100);
	finish(f);
}

/* ---- the client subcommands ---------------------------------------------------- */

/* Run the daemon binary with @args; Return: exit status, output in @out. */
static int run_client(const char *const *args, char *out, size_t size)
{
	char *argv[8];
	int p[2], st;
	size_t n = 0;
	ssize_t k;
	pid_t pid;

	argv[0] = (char *)uh_daemon_path;
	for (int i = 0; args[i] && i < 6; i++) {
		argv[i + 1] = (char *)args[i];
		argv[i + 2] = NULL;
	}
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	while (n + 1 < size && (k = read(p[0], out + n, size - 1 - n)) > 0)
		n += (size_t)k;
	out[n] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_client(void **state)
{
	static char out[1 << 16];
	struct fx *f = *state;
	struct json_doc d;
	char line[400];

	start(f);
	assert_int_equal(run_client((const char *[]){ "stats", f->ctl, NULL }, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "userspace engine, 1 VM"));
	assert_non_null(strstr(out, "cid3"));
	assert_int_equal(run_client((const char *[]){ "stats", f->ctl, "--json", NULL }, out,
				    sizeof(out)), 0);
	assert_int_equal(json_parse(&d, out, strlen(out), 1u << 16), 0);
	assert_int_equal(json_bool_at(&d, json_get(&d, 0, "ok")), 1);
	json_doc_free(&d);
	snprintf(line, sizeof(line), "socket=%s/c.sock,uds-path=%s/c.vsock,guest-cid=11",
		 f->h.dir, f->h.dir);
	assert_int_equal(run_client((const char *[]){ "vm", "add", f->ctl, line, NULL }, out,
				    sizeof(out)), 0);
	assert_non_null(strstr(out, "added cid11"));
	assert_int_equal(run_client((const char *[]){ "vm", "remove", f->ctl, "11", NULL }, out,
				    sizeof(out)), 0);
	assert_non_null(strstr(out, "removed cid11"));
	/* refused by the daemon: 1, with its reason */
	assert_int_equal(run_client((const char *[]){ "vm", "remove", f->ctl, "11", NULL }, out,
				    sizeof(out)), 1);
	assert_non_null(strstr(out, "vm remove: no VM has"));
	/* usage: 2 */
	assert_int_equal(run_client((const char *[]){ "vm", "delete", f->ctl, "11", NULL }, out,
				    sizeof(out)), 2);
	assert_int_equal(run_client((const char *[]){ "stats", NULL }, out, sizeof(out)), 2);
	/* nobody there: 1 */
	snprintf(line, sizeof(line), "%s/none.sock", f->cdir);
	assert_int_equal(run_client((const char *[]){ "stats", line, NULL }, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "is the daemon running with --control"));
	finish(f);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stats_counters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_startup_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client, setup, teardown),
	};

	if (uh_args(argc, argv) < 0)
		return 2;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
