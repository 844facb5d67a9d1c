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
	if (key_is(key, "forward-cid") || key_is(key, "forward-listen")) {
		cli_error("%s: '%s' (forwarding to AF_VSOCK) is not supported; use uds-path", origin,
			  key);
		return -EINVAL;
	}
	cli_error("%s: unknown key '%s' (known: socket, guest-cid, uds-path, tx-buffer-size, "
		  "queue-size, groups, socket-mode, max-connections, max-pending-connects, "
		  "handshake-timeout-ms, connect-timeout-ms)", origin, key);
	return -EINVAL;
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
	if (rc == 0 && !vm->uds_path) {
		cli_error("--vm '%s': uds-path=PATH is required", spec);
		rc = -EINVAL;
	}
	return rc;
}
