// SPDX-License-Identifier: MIT
/*
 * Fuzz target (f): what crosses the control socket (control/control.h).
 * The daemon reads request lines from whoever can reach the socket; the
 * client subcommands read the daemon's JSON answer, which must not be
 * trusted more than any other input.
 *
 * Input: one mode byte, then the text.
 *   mode bit 0 clear: a request line into control_parse_request(); a
 *     "vm add" argument then goes through cli_parse_vm_spec(), as the
 *     daemon does (ops.c).
 *   mode bit 0 set: a JSON document into json_parse() with a token bound
 *     of 1 + (mode >> 1) * 4 (from the smallest to well above what the
 *     corpus needs), then into control_print_stats(), as `stats` does.
 *
 * Checked, for requests: the result is 0 or -EINVAL with a reason; an
 * accepted line was at most CONTROL_MAX_LINE - 1 bytes without its ending
 * and held no control character; its argument is a non-empty part of the
 * line with no blank at either end, and only "vm add"/"vm remove" have one.
 * For JSON: the result is 0, -EINVAL or -E2BIG; an accepted document's
 * tokens form one tree (every token's byte range inside the text, `next`
 * past its subtree, object members key-then-value with string keys), at
 * most the bound; every string unescapes to no more bytes than it has raw,
 * without a NUL; the document written back through the writer (json_w)
 * parses again to the same tree with the same strings and integers, and
 * the writer's output is always valid UTF-8.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "control/client.h"
#include "control/json.h"
#include "control/request.h"
#include "fuzz_cli.h"
#include "fuzz_util.h"

#define CT_MAX_LEN (64u << 10)

static FILE *devnull;

/* ---- request lines --------------------------------------------------------- */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void check_request(const char *line, size_t len)
{
	static struct control_req req;
	const char *why = NULL;
	size_t body = len, arglen;
	int rc = control_parse_request(line, len, &req, &why);

	FZ_CHECK(rc == 0 || rc == -EINVAL, "control_parse_request returned %d", rc);
	if (rc < 0) {
		FZ_CHECK(why && why[0], "a refused request without a reason");
		return;
	}
	if (body && line[body - 1] == '\n')
		body--;
	if (body && line[body - 1] == '\r')
		body--;
	FZ_CHECK(body < CONTROL_MAX_LINE, "a line of %zu bytes accepted", body);
	for (size_t i = 0; i < body; i++)
		FZ_CHECK((unsigned char)line[i] >= 0x20 ? line[i] != 0x7f : line[i] == '\t',
			 "control byte 0x%02x accepted at %zu", (unsigned char)line[i], i);
	arglen = strnlen(req.arg, sizeof(req.arg));
	FZ_CHECK(arglen < sizeof(req.arg), "argument not terminated");
	switch (req.cmd) {
	case CONTROL_STATS:
	case CONTROL_HELP:
		FZ_CHECK(arglen == 0, "request %d has an argument", req.cmd);
		return;
	case CONTROL_VM_ADD:
	case CONTROL_VM_REMOVE:
		FZ_CHECK(arglen > 0 && !is_blank(req.arg[0]) && !is_blank(req.arg[arglen - 1]),
			 "argument '%s' empty or not trimmed", req.arg);
		FZ_CHECK(memmem(line, body, req.arg, arglen) != NULL,
			 "argument '%s' is not part of the line", req.arg);
		if (req.cmd == CONTROL_VM_ADD)
			fz_parse_vm_spec(req.arg, "vm add");
		return;
	default:
		fz_fail(__FILE__, __LINE__, "unknown command %d accepted", req.cmd);
	}
}

/* ---- JSON ------------------------------------------------------------------ */

/*
 * Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
 * Written apart from json.c's decoder on purpose: it judges that code.
 */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Token @t's subtree is well formed. Return: the index after it. */
static uint32_t check_tree(const struct json_doc *d, uint32_t t)
{
	const struct json_tok *k;
	uint32_t c;

	FZ_CHECK(t < d->ntok, "token %u of %u", t, d->ntok);
	k = &d->tok[t];
	FZ_CHECK(k->start <= k->end && k->end <= d->len, "token %u spans %u..%u of %zu", t,
		 k->start, k->end, d->len);
	FZ_CHECK(k->next > t && k->next <= d->ntok, "token %u: next %u", t, k->next);
	if (k->type != JSON_OBJECT && k->type != JSON_ARRAY) {
		FZ_CHECK(k->next == t + 1 && k->size == 0, "scalar %u has children", t);
		return k->next;
	}
	c = t + 1;
	for (uint32_t i = 0; i < k->size; i++) {
		if (k->type == JSON_OBJECT) {
			FZ_CHECK(c < d->ntok && d->tok[c].type == JSON_STRING, "member %u of %u: key "
				 "is not a string", i, t);
			c = check_tree(d, c);
		}
		c = check_tree(d, c);
		FZ_CHECK(d->tok[c - 1].end <= k->end, "child of %u ends past it", t);
	}
	FZ_CHECK(c == k->next, "token %u: children end at %u, next says %u", t, c, k->next);
	return c;
}

/* String token @t unescaped into @buf (@size > its raw length). */
static int unescaped(const struct json_doc *d, uint32_t t, char *buf, size_t size)
{
	int n = json_str_at(d, (int)t, buf, size);
	size_t raw = d->tok[t].end - d->tok[t].start;

	if (n < 0) {
		FZ_CHECK(n == -EINVAL, "json_str_at returned %d with room to spare", n);
		return n;
	}
	FZ_CHECK((size_t)n <= raw && strlen(buf) == (size_t)n, "string %u: %d bytes from %zu raw",
		 t, n, raw);
	return n;
}

/*
 * Write token @t's subtree back. Strings that do not unescape and numbers
 * that are not u64 become null, so the comparison knows what to expect.
 */
static uint32_t rewrite(const struct json_doc *d, uint32_t t, struct json_w *w, char *buf,
			size_t size)
{
	const struct json_tok *k = &d->tok[t];
	uint64_t v;
	uint32_t c = t + 1;

	switch (k->type) {
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (k->type == JSON_OBJECT)
			json_obj_begin(w);
		else
			json_arr_begin(w);
		for (uint32_t i = 0; i < k->size; i++) {
			if (k->type == JSON_OBJECT) {
				/* a key that does not unescape is written as "" */
				if (unescaped(d, c, buf, size) < 0)
					buf[0] = '\0';
				json_key(w, buf);
				c++;
			}
			c = rewrite(d, c, w, buf, size);
		}
		if (k->type == JSON_OBJECT)
			json_obj_end(w);
		else
			json_arr_end(w);
		return c;
	case JSON_STRING:
		if (unescaped(d, t, buf, size) < 0)
			json_null(w);
		else
			json_str(w, buf);
		return c;
	case JSON_NUMBER:
		if (json_u64_at(d, (int)t, &v) == 0)
			json_u64(w, v);
		else
			json_null(w);
		return c;
	case JSON_TRUE:
	case JSON_FALSE:
		json_bool(w, k->type == JSON_TRUE);
		return c;
	default:
		json_null(w);
		return c;
	}
}

/* The rewritten document @e says the same as @d. */
static void compare(const struct json_doc *d, const struct json_doc *e, char *b1, char *b2,
		    size_t size)
{
	FZ_CHECK(d->ntok == e->ntok, "rewritten: %u tokens, was %u", e->ntok, d->ntok);
	for (uint32_t t = 0; t < d->ntok; t++) {
		const struct json_tok *x = &d->tok[t], *y = &e->tok[t];
		uint64_t u, v;
		int n, m;

		FZ_CHECK(x->size == y->size && x->next == y->next, "rewritten token %u differs", t);
		if (x->type == JSON_STRING) {
			n = unescaped(d, t, b1, size);
			m = y->type == JSON_STRING ? unescaped(e, t, b2, size) : -EINVAL;
			if (n < 0) {
				FZ_CHECK(y->type == JSON_NULL || (y->type == JSON_STRING && m == 0),
					 "token %u: a bad string came back as %d", t, y->type);
				continue;
			}
			FZ_CHECK(m >= 0, "token %u: the writer's string does not unescape", t);
			if (utf8_valid((const unsigned char *)b1, (size_t)n))
				FZ_CHECK(n == m && memcmp(b1, b2, (size_t)n) == 0,
					 "token %u: string changed in the round trip", t);
		} else if (x->type == JSON_NUMBER && json_u64_at(d, (int)t, &u) == 0) {
			FZ_CHECK(json_u64_at(e, (int)t, &v) == 0 && u == v,
				 "token %u: number changed in the round trip", t);
		} else if (x->type == JSON_NUMBER) {
			FZ_CHECK(y->type == JSON_NULL, "token %u: odd number came back as %d", t,
				 y->type);
		} else {
			FZ_CHECK(x->type == y->type, "token %u: type %d came back as %d", t, x->type,
				 y->type);
		}
	}
}

static void check_json(const char *text, size_t len, uint32_t max_tokens)
{
	struct json_doc d, e;
	struct json_w w;
	size_t size = len + 1, out_len;
	const char *out;
	char *b1, *b2;
	int rc = json_parse(&d, text, len, max_tokens);

	FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG, "json_parse returned %d", rc);
	if (rc < 0)
		return;
	FZ_CHECK(d.ntok >= 1 && d.ntok <= max_tokens, "%u tokens, bound %u", d.ntok, max_tokens);
	FZ_CHECK(check_tree(&d, 0) == d.ntok, "tokens after the top-level value");

	/* the writer may spell a byte that is not UTF-8 as \uFFFD: three bytes */
	size = size * 3 + 16;
	b1 = malloc(size);
	b2 = malloc(size);
	FZ_CHECK(b1 && b2, "out of memory");
	json_w_init(&w);
	rewrite(&d, 0, &w, b1, size);
	FZ_CHECK(json_w_error(&w) == 0, "the writer refused a parsed document: %d",
		 json_w_error(&w));
	out = json_w_text(&w, &out_len);
	FZ_CHECK(utf8_valid((const unsigned char *)out, out_len), "the writer wrote bad UTF-8");
	rc = json_parse(&e, out, out_len, d.ntok);
	FZ_CHECK(rc == 0, "the writer's output does not parse: %d: %.200s", rc, out);
	compare(&d, &e, b1, b2, size);
	json_doc_free(&e);
	json_w_free(&w);

	rc = control_print_stats(devnull, &d);
	FZ_CHECK(rc == 0 || rc == -EINVAL, "control_print_stats returned %d", rc);
	json_doc_free(&d);
	free(b1);
	free(b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint8_t mode = fz_u8(&in);
	size_t len = in.n < CT_MAX_LEN ? in.n : CT_MAX_LEN;
	char *text = malloc(len ? len : 1);

	if (!devnull) {
		devnull = fopen("/dev/null", "we");
		FZ_CHECK(devnull, "cannot open /dev/null");
	}
	FZ_CHECK(text, "out of memory");
	memcpy(text, in.p, len);
	if (mode & 1)
		check_json(text, len, 1 + (uint32_t)(mode >> 1) * 4);
	else
		check_request(text, len);
	free(text);
	return 0;
}
