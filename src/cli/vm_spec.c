// SPDX-License-Identifier: MIT
/*
 * Per-device settings shared by the single-device options, --vm specs and
 * the configuration file: one setter per key, one parser per value kind.
 * Keys are spelt with '-' or '_' interchangeably, as rust-vmm's
 * vhost-device-vsock accepts both.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Queue sizes are powers of two up to the split ring's 32768 limit. */
#define MAX_QUEUE_SIZE 32768u
/*
 * A connection buffer beyond this only wastes memory per connection; the
 * connection table refuses more (CONN_TABLE_MAX_BUF_ALLOC), and a value it
 * refuses must be a usage error here, not a start-up failure there.
 */
#define MAX_TX_BUFFER_SIZE CLI_MAX_TX_BUFFER_SIZE
#define MIN_TX_BUFFER_SIZE 4096u
#define MAX_GROUPS_LEN 256u

/* cli_error_to(): where this thread's messages go instead of stderr */
static _Thread_local char *err_sink;
static _Thread_local size_t err_sink_size;

void cli_error_to(char *buf, size_t size)
{
	err_sink = size ? buf : NULL;
	err_sink_size = size;
	if (err_sink)
		err_sink[0] = '\0';
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err_sink) {
		/* the first message is the one that explains; keep it */
		if (!err_sink[0])
			vsnprintf(err_sink, err_sink_size, fmt, ap);
		va_end(ap);
		return;
	}
	fprintf(stderr, "vhost-user-vsock: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!text[0] || text[0] == '-' || text[0] == '+' || text[0] == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int cli_parse_cid(const char *text, uint64_t *cid)
{
	uint32_t v;

	if (cli_parse_u32(text, 3, 0xfffffffeu, &v) < 0)
		return -EINVAL;
	*cid = v;
	return 0;
}

int cli_parse_forward_cid(const char *text, uint32_t *cid)
{
	uint32_t v;

	/* 0 is the hypervisor (never a listener), 0xffffffff is VMADDR_CID_ANY */
	if (cli_parse_u32(text, 1, 0xfffffffeu, &v) < 0)
		return -EINVAL;
	*cid = v;
	return 0;
}

int cli_parse_forward_listen(const char *text, struct cli_fwd_port *out, const char **why)
{
	char *copy = strdup(text), *save = NULL, *item;
	int n = 0;

	*why = "is empty";
	if (!copy) {
		*why = "cannot be copied (out of memory)";
		return -EINVAL;
	}
	if (!text[0] || text[0] == '+' || text[strlen(text) - 1] == '+' || strstr(text, "++")) {
		*why = text[0] ? "has an empty port between '+' signs" : "is empty";
		free(copy);
		return -EINVAL;
	}
	for (item = strtok_r(copy, "+", &save); item; item = strtok_r(NULL, "+", &save)) {
		char *slash = strchr(item, '/');
		bool seq = false;
		uint32_t port;

		if (slash) {
			*slash = '\0';
			if (strcmp(slash + 1, "seqpacket") == 0)
				seq = true;
			else if (strcmp(slash + 1, "stream") != 0) {
				*why = "has a socket type other than /stream or /seqpacket";
				goto bad;
			}
		}
		/* 0xffffffff is VMADDR_PORT_ANY: no port to bridge */
		if (cli_parse_u32(item, 0, 0xfffffffeu, &port) < 0) {
			*why = "has a port that is not a number from 0 to 4294967294";
			goto bad;
		}
		for (int i = 0; i < n; i++) {
			if (out[i].port == port) {
				*why = "names a port twice (AF_VSOCK binds a port once, "
				       "whatever the socket type)";
				goto bad;
			}
		}
		if ((unsigned int)n == CLI_MAX_FORWARD_LISTEN) {
			*why = "has more ports than the 32 a device can listen on";
			goto bad;
		}
		out[n++] = (struct cli_fwd_port){ .port = port, .seqpacket = seq };
	}
	free(copy);
	return n;
bad:
	free(copy);
	return -EINVAL;
}

int cli_check_groups(const char *groups)
{
	size_t len = strlen(groups), name_len = 0;

	if (len == 0 || len > MAX_GROUPS_LEN)
		return -EINVAL;
	for (const char *p = groups; *p; p++) {
		if (*p == '+') {
			if (name_len == 0)
				return -EINVAL;
			name_len = 0;
			continue;
		}
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p))
			return -EINVAL;
		name_len++;
	}
	return name_len ? 0 : -EINVAL;
}

void cli_vm_defaults(struct vm_config *vm)
{
	memset(vm, 0, sizeof(*vm));
	vm->cid = CLI_DEFAULT_CID;
	vm->tx_buffer_size = CLI_DEFAULT_TX_BUFFER_SIZE;
	vm->queue_size = CLI_DEFAULT_QUEUE_SIZE;
	vm->socket_mode = CLI_DEFAULT_SOCKET_MODE;
	vm->max_connections = CLI_DEFAULT_MAX_CONNECTIONS;
	vm->max_pending_connects = CLI_DEFAULT_MAX_PENDING;
	vm->handshake_timeout_ms = CLI_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	vm->connect_timeout_ms = CLI_DEFAULT_CONNECT_TIMEOUT_MS;
}

int cli_parse_mode(const char *text, uint32_t *mode)
{
	size_t len = strlen(text);
	uint32_t v = 0;

	/* octal only: "660" read as decimal would be a surprising 01224 */
	if (len < 3 || len > 4 || strspn(text, "01234567") != len)
		return -EINVAL;
	for (const char *p = text; *p; p++)
		v = v * 8 + (uint32_t)(*p - '0');
	if (v > 0777 || (v & 0600) != 0600)
		return -EINVAL;
	*mode = v;
	return 0;
}

static int set_string(char **slot, const char *origin, const char *key, const char *value)
{
	if (!value[0]) {
		cli_error("%s: %s is empty", origin, key);
		return -EINVAL;
	}
	free(*slot);
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

/* "guest_cid" and "guest-cid" are the same key. */
static int key_is(const char *key, const char *name)
{
	for (; *key && *name; key++, name++) {
		char k = *key == '_' ? '-' : *key;

		if (k != *name)
			return 0;
	}
	return *key == *name;
}

/* The u32 keys: range, and whether the value must be a power of two. */
struct num_key {
	const char *name;
	size_t off;
	uint32_t min, max;
	bool pow2;
	const char *what;
};

#define NUM_KEY(n, field, lo, hi, p2, w) { n, offsetof(struct vm_config, field), lo, hi, p2, w }

static const struct num_key num_keys[] = {
	NUM_KEY("tx-buffer-size", tx_buffer_size, MIN_TX_BUFFER_SIZE, MAX_TX_BUFFER_SIZE, false,
		"bytes"),
	NUM_KEY("queue-size", queue_size, 1, MAX_QUEUE_SIZE, true, "entries, a power of two"),
	NUM_KEY("max-connections", max_connections, 1, CLI_MAX_MAX_CONNECTIONS, false,
		"connections"),
	NUM_KEY("max-pending-connects", max_pending_connects, 1, CLI_MAX_MAX_PENDING, false,
		"host clients"),
	NUM_KEY("handshake-timeout-ms", handshake_timeout_ms, 1, CLI_MAX_TIMEOUT_MS, false,
		"milliseconds"),
	NUM_KEY("connect-timeout-ms", connect_timeout_ms, 1, CLI_MAX_TIMEOUT_MS, false,
		"milliseconds"),
	NUM_KEY("poll-us", poll_us, 0, CLI_MAX_POLL_US, false, "microseconds"),
};

static const struct num_key *num_key_find(const char *key)
{
	for (size_t i = 0; i < sizeof(num_keys) / sizeof(num_keys[0]); i++) {
		if (key_is(key, num_keys[i].name))
			return &num_keys[i];
	}
	return NULL;
}

static int set_number(const char *origin, const struct num_key *k, const char *value,
		      struct vm_config *vm)
{
	uint32_t v;

	if (cli_parse_u32(value, k->min, k->max, &v) == 0 && (!k->pow2 || (v & (v - 1)) == 0)) {
		memcpy((char *)vm + k->off, &v, sizeof(v));
		return 0;
	}
	cli_error("%s: %s '%s' must be %u to %u %s", origin, k->name, value, k->min, k->max,
		  k->what);
	return -EINVAL;
}

static int set_scalar(struct vm_config *vm, const char *origin, const char *key,
		      const char *value)
{
	if (key_is(key, "guest-cid")) {
		if (cli_parse_cid(value, &vm->cid) == 0)
			return 0;
		cli_error("%s: guest-cid '%s' is not a guest CID (3 to 4294967294)", origin, value);
		return -EINVAL;
	}
	if (cli_parse_mode(value, &vm->socket_mode) == 0)
		return 0;
	cli_error("%s: socket-mode '%s' must be octal permissions such as 0600 or 0660, "
		  "at most 0777, with the owner's read and write bits", origin, value);
	return -EINVAL;
}

/* forward-cid, forward-listen (forwarding to host AF_VSOCK) */
static int set_forward(struct vm_config *vm, const char *origin, const char *key,
		       const char *value)
{
	struct cli_fwd_port ports[CLI_MAX_FORWARD_LISTEN];
	const char *why;
	int n;

	if (key_is(key, "forward-cid")) {
		if (cli_parse_forward_cid(value, &vm->forward_cid) == 0) {
			vm->forward = true;
			return 0;
		}
		cli_error("%s: forward-cid '%s' must be 1 (this host's loopback), 2 (VMADDR_CID_"
			  "HOST) or a CID from 3 to 4294967294; 0 is the hypervisor and "
			  "4294967295 is VMADDR_CID_ANY", origin, value);
		return -EINVAL;
	}
	n = cli_parse_forward_listen(value, ports, &why);
	if (n < 0) {
		cli_error("%s: forward-listen '%s' %s (expected PORT[/seqpacket]+PORT...)", origin,
			  value, why);
		return -EINVAL;
	}
	memcpy(vm->forward_listen, ports, (size_t)n * sizeof(ports[0]));
	vm->nforward_listen = (unsigned int)n;
	return 0;
}

int cli_vm_set(struct vm_config *vm, const char *origin, const char *key, const char *value)
{
	const struct num_key *nk = num_key_find(key);

	if (nk)
		return set_number(origin, nk, value, vm);
	if (key_is(key, "socket"))
		return set_string(&vm->socket_path, origin, "socket", value);
	if (key_is(key, "uds-path"))
		return set_string(&vm->uds_path, origin, "uds-path", value);
	if (key_is(key, "groups")) {
		if (cli_check_groups(value) < 0) {
			cli_error("%s: groups '%s' must be names of letters, digits, '_', '.', '-' "
				  "joined by '+'", origin, value);
			return -EINVAL;
		}
		return set_string(&vm->groups, origin, "groups", value);
	}
	if (key_is(key, "guest-cid") || key_is(key, "socket-mode"))
		return set_scalar(vm, origin, key, value);
	if (key_is(key, "forward-cid") || key_is(key, "forward-listen"))
		return set_forward(vm, origin, key, value);
	cli_error("%s: unknown key '%s' (known: socket, guest-cid, uds-path, tx-buffer-size, "
		  "queue-size, groups, socket-mode, max-connections, max-pending-connects, "
		  "handshake-timeout-ms, connect-timeout-ms, poll-us, forward-cid, forward-listen)",
		  origin, key);
	return -EINVAL;
}

int cli_check_forward(const struct vm_config *vm, const char *origin)
{
	/* as vhost-device-vsock 0.3: Unix sockets, host AF_VSOCK, or both */
	if (!vm->uds_path && !vm->forward) {
		cli_error("%s: uds-path or forward-cid is required (where host programs are "
			  "reached: hybrid Unix sockets, or host AF_VSOCK)", origin);
		return -EINVAL;
	}
	if (vm->nforward_listen && !vm->forward) {
		cli_error("%s: forward-listen needs forward-cid (forwarding to host AF_VSOCK is "
			  "configured by forward-cid)", origin);
		return -EINVAL;
	}
	return 0;
}

int cli_parse_vm_spec(struct vm_config *vm, const char *spec)
{
	char *copy = strdup(spec), *save = NULL, *item;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (item = strtok_r(copy, ",", &save); item && rc == 0; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');

		if (!eq) {
			cli_error("--vm: '%s' is not key=value", item);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		rc = cli_vm_set(vm, "--vm", item, eq + 1);
	}
	free(copy);
	if (rc == 0 && !vm->socket_path) {
		cli_error("--vm '%s': socket=PATH is required", spec);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = cli_check_forward(vm, "--vm");
	return rc;
}
