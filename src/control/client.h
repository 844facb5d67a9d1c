/* SPDX-License-Identifier: MIT */
/*
 * The client subcommands of the control socket (control.h), run instead of
 * the daemon when the first argument names one:
 *
 *   vhost-user-vsock stats PATH [--json]
 *   vhost-user-vsock vm add PATH KEY=VALUE,... [--json]
 *   vhost-user-vsock vm remove PATH SOCKET-PATH|CID [--json]
 *
 * They send one request line, read the one-line JSON answer, and print it:
 * as is with --json, else as a table (stats) or a sentence (vm). Exit
 * status: 0 when the daemon said "ok", 1 when it refused (its reason on
 * stderr) or could not be reached, 2 for a usage error.
 *
 * Limits: the answer is read within CONTROL_CLIENT_TIMEOUT_MS and at most
 * JSON_MAX_OUT bytes; it is parsed as untrusted input (json.h).
 */
#ifndef CONTROL_CLIENT_H
#define CONTROL_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include "control/json.h"

#define CONTROL_CLIENT_TIMEOUT_MS 15000

/** control_client_is_command() - Return: whether @arg names a client subcommand. */
bool control_client_is_command(const char *arg);

/**
 * control_client_main() - run a subcommand.
 * @argc: as main()'s
 * @argv: as main()'s; argv[1] is the subcommand
 *
 * Return: the exit status (0, 1 or 2).
 */
int control_client_main(int argc, char **argv);

/**
 * control_request() - send @line (no '\n' needed) to the control socket at
 * @path and read the answer.
 * @path: the socket
 * @line: the request
 * @answer: receives the answer, NUL-terminated, without its '\n' (free())
 * @timeout_ms: for connecting, sending and receiving each
 *
 * Return: 0, or negative errno (-EPROTO: the daemon closed without a whole
 * answer; -EFBIG: the answer is larger than JSON_MAX_OUT).
 */
int control_request(const char *path, const char *line, char **answer, int timeout_ms);

/**
 * control_print_stats() - the stats answer @doc as tables, one row per VM
 * and, below it, one per connection.
 * @out: where to print
 * @doc: the parsed answer (an object with "ok": true)
 *
 * Return: 0, or -EINVAL when the document lacks the fields of a stats answer.
 */
int control_print_stats(FILE *out, const struct json_doc *doc);

#endif
