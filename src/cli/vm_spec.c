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
#include <stdlib.h>
#include <string.h>

/* Queue sizes are powers of two up to the split ring's 32768 limit. */
#define MAX_QUEUE_SIZE 32768u
/* A connection buffer beyond this only wastes memory per connection. */
#define MAX_TX_BUFFER_SIZE (64u << 20)
#define MIN_TX_BUFFER_SIZE 4096u
#define MAX_GROUPS_LEN 256u

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhost-user-vsock: ");
	va_start(ap, fmt);
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

static int set_number(const char *origin, const char *key, const char *value,
		      struct vm_config *vm)
{
	if (key_is(key, "guest-cid")) {
		if (cli_parse_cid(value, &vm->cid) == 0)
			return 0;
		cli_error("%s: guest-cid '%s' is not a guest CID (3 to 4294967294)", origin, value);
	} else if (key_is(key, "tx-buffer-size")) {
		if (cli_parse_u32(value, MIN_TX_BUFFER_SIZE, MAX_TX_BUFFER_SIZE,
				  &vm->tx_buffer_size) == 0)
			return 0;
		cli_error("%s: tx-buffer-size '%s' must be %u to %u bytes", origin, value,
			  MIN_TX_BUFFER_SIZE, MAX_TX_BUFFER_SIZE);
	} else {
		uint32_t q;

		if (cli_parse_u32(value, 1, MAX_QUEUE_SIZE, &q) == 0 && (q & (q - 1)) == 0) {
			vm->queue_size = q;
			return 0;
		}
		cli_error("%s: queue-size '%s' must be a power of two from 1 to %u", origin, value,
			  MAX_QUEUE_SIZE);
	}
	return -EINVAL;
}

int cli_vm_set(struct vm_config *vm, const char *origin, const char *key, const char *value)
{
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
	if (key_is(key, "guest-cid") || key_is(key, "tx-buffer-size") || key_is(key, "queue-size"))
		return set_number(origin, key, value, vm);
	if (key_is(key, "forward-cid") || key_is(key, "forward-listen")) {
		cli_error("%s: '%s' (forwarding to AF_VSOCK) is not supported; use uds-path", origin,
			  key);
		return -EINVAL;
	}
	cli_error("%s: unknown key '%s' (known: socket, guest-cid, uds-path, tx-buffer-size, "
		  "queue-size, groups)", origin, key);
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
