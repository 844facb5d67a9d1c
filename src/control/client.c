// SPDX-License-Identifier: MIT
/*
 * Control socket client subcommands (see client.h). Blocking I/O with
 * timeouts: this is a short-lived command, not the daemon.
 */
#include "control/client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "control/request.h"

/* A stats answer holds a few tokens per counter: this bounds 64 busy VMs. */
#define MAX_TOKENS (8u << 20)

static void usage_error(const char *msg)
{
	fprintf(stderr, "vhost-user-vsock: %s\n", msg);
	fprintf(stderr, "Usage:\n"
			"  vhost-user-vsock stats CONTROL-PATH [--json]\n"
			"  vhost-user-vsock vm add CONTROL-PATH KEY=VALUE,... [--json]\n"
			"  vhost-user-vsock vm remove CONTROL-PATH SOCKET-PATH|CID [--json]\n");
}

bool control_client_is_command(const char *arg)
{
	return arg && (strcmp(arg, "stats") == 0 || strcmp(arg, "vm") == 0);
}

/* ---- talking to the daemon --------------------------------------------------- */

static int connect_to(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Everything until EOF, at most JSON_MAX_OUT + 1 bytes. */
static int recv_all(int fd, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap), *nb;

	while (buf) {
		ssize_t k;

		if (n + 1 == cap) {
			if (cap > JSON_MAX_OUT) {
				free(buf);
				return -EFBIG;
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		k = recv(fd, buf + n, cap - n - 1, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int err = errno == EAGAIN ? -ETIMEDOUT : -errno;

			free(buf);
			return err;
		}
		if (k == 0) {
			buf[n] = '\0';
			*out = buf;
			*len = n;
			return 0;
		}
		n += (size_t)k;
	}
	free(buf);
	return -ENOMEM;
}

int control_request(const char *path, const char *line, char **answer, int timeout_ms)
{
	size_t len = 0;
	char *buf = NULL;
	int fd = connect_to(path, timeout_ms), rc;

	*answer = NULL;
	if (fd < 0)
		return fd;
	rc = send_all(fd, line, strlen(line));
	if (rc == 0)
		rc = send_all(fd, "\n", 1);
	if (rc == 0)
		shutdown(fd, SHUT_WR);
	if (rc == 0)
		rc = recv_all(fd, &buf, &len);
	close(fd);
	if (rc < 0)
		return rc;
	/* one line, ended by '\n': anything else is a daemon that died mid-answer */
	if (len == 0 || buf[len - 1] != '\n' || memchr(buf, '\n', len) != buf + len - 1) {
		free(buf);
		return -EPROTO;
	}
	buf[len - 1] = '\0';
	*answer = buf;
	return 0;
}

/* ---- printing ------------------------------------------------------------------ */

static uint64_t num(const struct json_doc *d, int obj, const char *key)
{
	uint64_t v = 0;

	json_u64_at(d, json_get(d, obj, key), &v);
	return v;
}

static const char *yes_no(const struct json_doc *d, int obj, const char *key)
{
	int b = json_bool_at(d, json_get(d, obj, key));

	return b < 0 ? "-" : b ? "yes" : "no";
}

static void str(const struct json_doc *d, int obj, const char *key, char *buf, size_t size)
{
	if (json_str_at(d, json_get(d, obj, key), buf, size) < 0 && size > 0)
		snprintf(buf, size, "-");
}

/*
 * The "errors" member as an object of name: count pairs, or -1: the answer
 * comes from a daemon that may be of another version (or not ours), and
 * walking an array or a string as pairs would read past its tokens.
 */
static int errors_obj(const struct json_doc *d, int vm)
{
	int e = json_get(d, vm, "errors");

	return e >= 0 && d->tok[e].type == JSON_OBJECT ? e : -1;
}

static uint64_t errors_total(const struct json_doc *d, int vm)
{
	int e = errors_obj(d, vm);
	uint64_t sum = 0;

	if (e < 0)
		return 0;
	for (uint32_t i = 0, t = (uint32_t)e + 1; i < d->tok[e].size; i++) {
		uint64_t v = 0;

		json_u64_at(d, (int)d->tok[t].next, &v);
		sum += v;
		t = d->tok[d->tok[t].next].next;
	}
	return sum;
}

static void print_errors(FILE *out, const struct json_doc *d, int vm)
{
	int e = errors_obj(d, vm);
	const char *sep = "    errors: ";

	if (e < 0 || errors_total(d, vm) == 0)
		return;
	for (uint32_t i = 0, t = (uint32_t)e + 1; i < d->tok[e].size; i++) {
		char name[64];
		uint64_t v = 0;

		json_str_at(d, (int)t, name, sizeof(name));
		json_u64_at(d, (int)d->tok[t].next, &v);
		if (v) {
			fprintf(out, "%s%s %" PRIu64, sep, name, v);
			sep = ", ";
		}
		t = d->tok[d->tok[t].next].next;
	}
	fputc('\n', out);
}

static void print_conns(FILE *out, const struct json_doc *d, int vm)
{
	int conns = json_get(d, vm, "connections");

	if (conns < 0 || d->tok[conns].size == 0)
		return;
	fprintf(out, "    %-11s %-11s %-9s %-12s %12s %12s %10s %8s\n", "LOCAL-PORT", "PEER-PORT",
		"TYPE", "STATE", "TO-HOST", "FROM-HOST", "BUFFERED", "AGE-S");
	for (uint32_t i = 0; i < d->tok[conns].size; i++) {
		int c = json_at(d, conns, i);
		char type[16], state[16];

		str(d, c, "type", type, sizeof(type));
		str(d, c, "state", state, sizeof(state));
		fprintf(out, "    %-11" PRIu64 " %-11" PRIu64 " %-9s %-12s %12" PRIu64 " %12" PRIu64
			" %10" PRIu64 " %8" PRIu64 "\n",
			num(d, c, "local_port"), num(d, c, "peer_port"), type, state,
			num(d, c, "bytes_to_host"), num(d, c, "bytes_from_host"),
			num(d, c, "buffered_to_host") + num(d, c, "buffered_to_guest"),
			num(d, c, "age_ms") / 1000);
	}
}

/* Only a VVU transport has anything to say beyond the VM line. */
static void print_transport(FILE *out, const struct json_doc *d, int vm)
{
	int t = json_get(d, vm, "transport");
	char kind[8], pci[64];

	if (t < 0)
		return;
	str(d, t, "kind", kind, sizeof(kind));
	if (strcmp(kind, "vfio") != 0)
		return;
	str(d, t, "pci", pci, sizeof(pci));
	fprintf(out, "  vfio %s: messages in/out %" PRIu64 "/%" PRIu64 ", doorbells call/err %"
		PRIu64 "/%" PRIu64 ", device resets %" PRIu64 ", faults %" PRIu64 "\n", pci,
		num(d, t, "messages_in"), num(d, t, "messages_out"), num(d, t, "call_doorbells"),
		num(d, t, "err_doorbells"), num(d, t, "device_resets"), num(d, t, "device_faults"));
}

static void print_user_vm(FILE *out, const struct json_doc *d, int vm)
{
	int g2h = json_get(d, vm, "guest_to_host"), h2g = json_get(d, vm, "host_to_guest");
	char name[64], pk[48], by[48];

	str(d, vm, "name", name, sizeof(name));
	snprintf(pk, sizeof(pk), "%" PRIu64 "/%" PRIu64, num(d, g2h, "packets"),
		 num(d, h2g, "packets"));
	snprintf(by, sizeof(by), "%" PRIu64 "/%" PRIu64, num(d, g2h, "bytes"),
		 num(d, h2g, "bytes"));
	fprintf(out, "%-10s %-10" PRIu64 " %-9s %-7s %6" PRIu64 " %21s %25s %6" PRIu64 " %7" PRIu64
		" %6" PRIu64 "\n",
		name, num(d, vm, "cid"), yes_no(d, vm, "frontend_connected"),
		yes_no(d, vm, "running"), num(d, vm, "connections_open"), pk, by,
		num(d, vm, "rst_sent"), num(d, vm, "credit_stalls"), errors_total(d, vm));
	print_transport(out, d, vm);
	print_errors(out, d, vm);
	print_conns(out, d, vm);
}

static void print_kernel_vm(FILE *out, const struct json_doc *d, int vm)
{
	char name[64], feat[24];

	str(d, vm, "name", name, sizeof(name));
	str(d, vm, "features", feat, sizeof(feat));
	fprintf(out, "%-10s %-10" PRIu64 " %-9s %-7s %-20s %" PRIu64 "\n", name, num(d, vm, "cid"),
		yes_no(d, vm, "frontend_connected"), yes_no(d, vm, "running"), feat,
		num(d, vm, "sessions"));
	print_transport(out, d, vm);
}

int control_print_stats(FILE *out, const struct json_doc *d)
{
	int vms = json_get(d, 0, "vms");
	char engine[16];
	bool user;

	if (vms < 0 || d->tok[vms].type != JSON_ARRAY ||
	    json_str_at(d, json_get(d, 0, "engine"), engine, sizeof(engine)) < 0)
		return -EINVAL;
	user = strcmp(engine, "user") == 0;
	fprintf(out, "%s engine, %u VM%s\n", user ? "userspace" : "kernel", d->tok[vms].size,
		d->tok[vms].size == 1 ? "" : "s");
	if (user)
		fprintf(out, "%-10s %-10s %-9s %-7s %6s %21s %25s %6s %7s %6s\n", "VM", "CID",
			"FRONT-END", "RUNNING", "CONNS", "PACKETS-G>H/H>G", "BYTES-G>H/H>G", "RSTS",
			"STALLS", "ERRORS");
	else
		fprintf(out, "%-10s %-10s %-9s %-7s %-20s %s\n", "VM", "CID", "FRONT-END",
			"RUNNING", "FEATURES", "SESSIONS");
	for (uint32_t i = 0; i < d->tok[vms].size; i++) {
		int vm = json_at(d, vms, i);

		if (user)
			print_user_vm(out, d, vm);
		else
			print_kernel_vm(out, d, vm);
	}
	return 0;
}

static int print_vm_result(const struct json_doc *d, bool add)
{
	int vm = json_get(d, 0, "vm");
	char name[64], sock[128], uds[128];

	str(d, vm, "name", name, sizeof(name));
	str(d, vm, "socket", sock, sizeof(sock));
	str(d, vm, "uds_path", uds, sizeof(uds));
	if (add)
		printf("added %s: guest CID %" PRIu64 ", vhost-user socket %s, hybrid socket %s\n",
		       name, num(d, vm, "cid"), sock, uds);
	else
		printf("removed %s (guest CID %" PRIu64 "): its connections are closed and its "
		       "socket files removed\n", name, num(d, vm, "cid"));
	return 0;
}

/* ---- the subcommands ----------------------------------------------------------- */

/* Print the answer; Return: the exit status. */
static int show(const char *path, const char *answer, bool json, enum control_cmd cmd)
{
	struct json_doc d;
	char err[CONTROL_MAX_LINE];
	int ok, rc;

	if (json_parse(&d, answer, strlen(answer), MAX_TOKENS) < 0 ||
	    d.tok[0].type != JSON_OBJECT || (ok = json_bool_at(&d, json_get(&d, 0, "ok"))) < 0) {
		fprintf(stderr, "vhost-user-vsock: %s answered something that is not a control "
				"answer\n", path);
		if (d.tok)
			json_doc_free(&d);
		return 1;
	}
	if (!ok) {
		if (json_str_at(&d, json_get(&d, 0, "error"), err, sizeof(err)) < 0)
			snprintf(err, sizeof(err), "(no reason given)");
		fprintf(stderr, "vhost-user-vsock: %s\n", err);
		json_doc_free(&d);
		return 1;
	}
	if (json)
		printf("%s\n", answer);
	if (!json && cmd == CONTROL_STATS)
		rc = control_print_stats(stdout, &d);
	else
		rc = json ? 0 : print_vm_result(&d, cmd == CONTROL_VM_ADD);
	json_doc_free(&d);
	return rc < 0 ? 1 : 0;
}

static int run(const char *path, const char *line, bool json, enum control_cmd cmd)
{
	char *answer;
	int rc = control_request(path, line, &answer, CONTROL_CLIENT_TIMEOUT_MS);

	if (rc < 0) {
		fprintf(stderr, "vhost-user-vsock: control socket %s: %s%s\n", path, strerror(-rc),
			rc == -ENOENT || rc == -ECONNREFUSED ?
				" (is the daemon running with --control at that path?)" :
				"");
		return 1;
	}
	rc = show(path, answer, json, cmd);
	free(answer);
	return rc;
}

/* Drop a "--json" from the arguments after the subcommand. Return: whether it was there. */
static bool take_json(int *argc, char **argv, int from)
{
	bool found = false;
	int j = from;

	for (int i = from; i < *argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			found = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	return found;
}

int control_client_main(int argc, char **argv)
{
	char line[CONTROL_MAX_LINE];
	bool json;
	bool add;

	if (strcmp(argv[1], "stats") == 0) {
		json = take_json(&argc, argv, 2);
		if (argc != 3) {
			usage_error("stats: give the control socket's path");
			return 2;
		}
		return run(argv[2], "stats", json, CONTROL_STATS);
	}
	json = take_json(&argc, argv, 2);
	if (argc != 5 || (strcmp(argv[2], "add") != 0 && strcmp(argv[2], "remove") != 0)) {
		usage_error("vm: give 'add' or 'remove', the control socket's path and the VM");
		return 2;
	}
	add = strcmp(argv[2], "add") == 0;
	if ((size_t)snprintf(line, sizeof(line), "vm %s %s", argv[2], argv[4]) >= sizeof(line)) {
		usage_error("vm: the VM argument is too long");
		return 2;
	}
	return run(argv[3], line, json, add ? CONTROL_VM_ADD : CONTROL_VM_REMOVE);
}
