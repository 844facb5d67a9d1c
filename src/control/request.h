/* SPDX-License-Identifier: MIT */
/*
 * Control socket requests: one line of text each (control.h). The grammar
 * is small and strict, since anyone who can reach the socket can send it:
 *
 *   stats                       a JSON snapshot of every VM
 *   vm add KEY=VALUE,...        a new VM (the --vm keys; userspace engine)
 *   vm remove SOCKET-PATH|CID   stop a VM, close its sockets, remove its files
 *   help                        the list of requests
 *
 * Words are separated by spaces or tabs; the argument of "vm add" and
 * "vm remove" is the rest of the line (a path may hold spaces), without
 * surrounding blanks. A line holds at most CONTROL_MAX_LINE - 1 bytes
 * before its '\n' (a "\r\n" ending is accepted), no NUL and no other
 * control character.
 */
#ifndef CONTROL_REQUEST_H
#define CONTROL_REQUEST_H

#include <stddef.h>

#define CONTROL_MAX_LINE 4096u

enum control_cmd {
	CONTROL_STATS = 1,
	CONTROL_VM_ADD,
	CONTROL_VM_REMOVE,
	CONTROL_HELP,
};

struct control_req {
	enum control_cmd cmd;
	char arg[CONTROL_MAX_LINE]; /* "vm add"/"vm remove": the argument; else "" */
};

/**
 * control_parse_request() - one request line.
 * @line: the bytes received, with or without the final '\n'
 * @len: their number
 * @req: receives the request
 * @why: receives, on error, the reason as the end of a sentence
 *       ("is not a request: ..."), a static string
 *
 * Return: 0, or -EINVAL with @why set.
 */
int control_parse_request(const char *line, size_t len, struct control_req *req,
			  const char **why);

/** control_help_text() - Return: the requests, one per line (static). */
const char *control_help_text(void);

#endif
