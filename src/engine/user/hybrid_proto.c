// SPDX-License-Identifier: MIT
/*
 * Hybrid vsock CONNECT/OK lines and socket names (see hybrid_proto.h). A
 * byte-at-a-time state machine: no buffering, so a line split anywhere
 * across reads parses the same as one read.
 */
#include "engine/user/hybrid_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

static const char word_upper[] = "CONNECT";
static const char word_lower[] = "connect";
#define WORD_LEN (sizeof(word_upper) - 1)

void hybrid_parser_init(struct hybrid_parser *p)
{
	*p = (struct hybrid_parser){ .state = HYBRID_WORD };
}

static int fail(struct hybrid_parser *p, int err)
{
	p->state = HYBRID_ERROR;
	p->error = err;
	return err;
}

static int step_word(struct hybrid_parser *p, char ch)
{
	if (p->pos == 0)
		p->word = ch == 'c' ? word_lower : word_upper;
	if (ch != p->word[p->pos])
		return fail(p, -EINVAL);
	if (++p->pos == WORD_LEN)
		p->state = HYBRID_SPACE;
	return 0;
}

static int step_digits(struct hybrid_parser *p, char ch)
{
	if (ch >= '0' && ch <= '9') {
		uint32_t d = (uint32_t)(ch - '0');

		if (p->port > (UINT32_MAX - d) / 10)
			return fail(p, -ERANGE);
		p->port = p->port * 10 + d;
		p->ndigits++;
		return 0;
	}
	if (p->ndigits == 0 || (ch != '\n' && ch != '\r'))
		return fail(p, -EINVAL);
	p->state = ch == '\n' ? HYBRID_DONE : HYBRID_CR;
	return 0;
}

/* One byte of the line. Return: 0 or the (sticky) error. */
static int step(struct hybrid_parser *p, char ch)
{
	/* The last byte the cap allows can only be the newline. */
	if (p->len + 1 >= HYBRID_LINE_MAX && !(p->len + 1 == HYBRID_LINE_MAX && ch == '\n'))
		return fail(p, -EMSGSIZE);
	p->len++;
	switch (p->state) {
	case HYBRID_WORD:
		return step_word(p, ch);
	case HYBRID_SPACE:
		if (ch != ' ')
			return fail(p, -EINVAL);
		p->state = HYBRID_DIGITS;
		return 0;
	case HYBRID_DIGITS:
		return step_digits(p, ch);
	case HYBRID_CR:
		if (ch != '\n')
			return fail(p, -EINVAL);
		p->state = HYBRID_DONE;
		return 0;
	case HYBRID_DONE:
	case HYBRID_ERROR:
		break;
	}
	return fail(p, -EINVAL);
}

int hybrid_parser_feed(struct hybrid_parser *p, const void *buf, size_t n, size_t *consumed,
		       uint32_t *port)
{
	const char *s = buf;
	size_t i = 0;

	*consumed = 0;
	if (p->state == HYBRID_ERROR)
		return p->error;
	while (i < n && p->state != HYBRID_DONE) {
		int rc = step(p, s[i]);

		if (rc < 0)
			return rc;
		i++;
	}
	*consumed = i;
	if (p->state != HYBRID_DONE)
		return 0;
	*port = p->port;
	return 1;
}

int hybrid_format_ok(uint32_t port, char *buf, size_t size)
{
	int n = snprintf(buf, size, "OK %u\n", port);

	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

int hybrid_uds_name(const char *uds_path, uint32_t port, char *buf, size_t size)
{
	size_t limit = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n;

	if (!uds_path[0])
		return -EINVAL;
	if (size < limit)
		limit = size;
	n = snprintf(buf, limit, "%s_%u", uds_path, port);
	if (n < 0 || (size_t)n >= limit)
		return -ENAMETOOLONG;
	return 0;
}
