// SPDX-License-Identifier: MIT
/*
 * Control request lines (see request.h): checked byte by byte before any
 * word is looked at, then split into at most two command words and the
 * rest of the line.
 */
#include "control/request.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The line without its ending, checked. Return: its length or -EINVAL. */
static long clean_length(const char *line, size_t len, const char **why)
{
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	if (len >= CONTROL_MAX_LINE) {
		*why = "is too long (the limit is 4095 bytes)";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*why = "contains a control character or NUL";
			return -EINVAL;
		}
	}
	return (long)len;
}

/* The next word of [*pos, len): its start in @w, length returned. */
static size_t next_word(const char *line, size_t len, size_t *pos, const char **w)
{
	size_t start;

	while (*pos < len && blank(line[*pos]))
		(*pos)++;
	start = *pos;
	while (*pos < len && !blank(line[*pos]))
		(*pos)++;
	*w = line + start;
	return *pos - start;
}

static bool word_is(const char *w, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(w, name, n) == 0;
}

/* The rest of the line, blanks around it removed, into req->arg. */
static int take_rest(const char *line, size_t len, size_t pos, struct control_req *req,
		     const char **why)
{
	while (pos < len && blank(line[pos]))
		pos++;
	while (len > pos && blank(line[len - 1]))
		len--;
	if (pos == len) {
		*why = req->cmd == CONTROL_VM_ADD ?
			       "needs the VM's keys: vm add socket=PATH,uds-path=PATH[,...]" :
			       "needs the VM: vm remove SOCKET-PATH or vm remove CID";
		return -EINVAL;
	}
	memcpy(req->arg, line + pos, len - pos);
	req->arg[len - pos] = '\0';
	return 0;
}

static int parse_vm(const char *line, size_t len, size_t pos, struct control_req *req,
		    const char **why)
{
	const char *w;
	size_t n = next_word(line, len, &pos, &w);

	if (word_is(w, n, "add"))
		req->cmd = CONTROL_VM_ADD;
	else if (word_is(w, n, "remove"))
		req->cmd = CONTROL_VM_REMOVE;
	else {
		*why = "is not a request: after 'vm' comes 'add' or 'remove'";
		return -EINVAL;
	}
	return take_rest(line, len, pos, req, why);
}

int control_parse_request(const char *line, size_t len, struct control_req *req,
			  const char **why)
{
	long clean = clean_length(line, len, why);
	size_t pos = 0, n, end;
	const char *w;

	memset(req, 0, sizeof(*req));
	if (clean < 0)
		return -EINVAL;
	len = (size_t)clean;
	n = next_word(line, len, &pos, &w);
	if (word_is(w, n, "vm"))
		return parse_vm(line, len, pos, req, why);
	if (word_is(w, n, "stats"))
		req->cmd = CONTROL_STATS;
	else if (word_is(w, n, "help"))
		req->cmd = CONTROL_HELP;
	else {
		*why = n ? "is not a request (known: stats, vm add, vm remove, help)" :
			   "is empty (known requests: stats, vm add, vm remove, help)";
		return -EINVAL;
	}
	end = pos;
	if (next_word(line, len, &end, &w)) {
		*why = "has words after the request, which takes no argument";
		return -EINVAL;
	}
	return 0;
}

const char *control_help_text(void)
{
	return "stats\n"
	       "vm add socket=PATH,uds-path=PATH[,guest-cid=N,...]\n"
	       "vm remove SOCKET-PATH|CID\n"
	       "help\n";
}
