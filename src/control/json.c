// SPDX-License-Identifier: MIT
/*
 * JSON writer and reader (see json.h). The writer never emits invalid
 * JSON: a misuse sets the sticky error and writes nothing more. The reader
 * checks the whole document before any token is used, and every index it
 * hands out is within the token array.
 */
#include "control/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writer ---------------------------------------------------------------- */

void json_w_init(struct json_w *w)
{
	memset(w, 0, sizeof(*w));
}

void json_w_free(struct json_w *w)
{
	free(w->buf);
	json_w_init(w);
}

void json_w_reset(struct json_w *w)
{
	char *buf = w->buf;
	size_t cap = w->cap;

	json_w_init(w);
	w->buf = buf;
	w->cap = cap;
	if (buf)
		buf[0] = '\0';
}

int json_w_error(const struct json_w *w)
{
	if (w->err)
		return w->err;
	return w->depth || w->after_key ? -EINVAL : 0;
}

const char *json_w_text(const struct json_w *w, size_t *len)
{
	bool ok = w->buf && !w->err;

	if (len)
		*len = ok ? w->len : 0;
	return ok ? w->buf : "";
}

static bool reserve(struct json_w *w, size_t more)
{
	size_t cap;
	char *nb;

	if (w->err)
		return false;
	if (w->len >= JSON_MAX_OUT || more > JSON_MAX_OUT - w->len - 1) {
		w->err = -ENOMEM;
		return false;
	}
	if (w->len + more + 1 <= w->cap)
		return true;
	cap = w->cap ? w->cap : 256;
	while (cap < w->len + more + 1)
		cap *= 2;
	nb = realloc(w->buf, cap);
	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

static void put(struct json_w *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_c(struct json_w *w, char c)
{
	put(w, &c, 1);
}

/* Before any value: the comma, and a check that a value may come here. */
static bool value_slot(struct json_w *w)
{
	if (w->err)
		return false;
	if (w->in_object[w->depth] && !w->after_key) {
		w->err = -EINVAL; /* a value inside an object needs its key first */
		return false;
	}
	if (w->after_key) {
		w->after_key = false;
		return true;
	}
	if (w->depth == 0 && w->len) {
		w->err = -EINVAL; /* one top-level value only */
		return false;
	}
	if (w->need_comma[w->depth])
		put_c(w, ',');
	w->need_comma[w->depth] = true;
	return !w->err;
}

static void open_container(struct json_w *w, char c, bool object)
{
	if (!value_slot(w))
		return;
	if (w->depth >= JSON_MAX_DEPTH) {
		w->err = -EINVAL;
		return;
	}
	put_c(w, c);
	w->depth++;
	w->in_object[w->depth] = object;
	w->need_comma[w->depth] = false;
}

static void close_container(struct json_w *w, char c, bool object)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->in_object[w->depth] != object || w->after_key) {
		w->err = -EINVAL;
		return;
	}
	w->depth--;
	put_c(w, c);
}

void json_obj_begin(struct json_w *w)
{
	open_container(w, '{', true);
}

void json_obj_end(struct json_w *w)
{
	close_container(w, '}', true);
}

void json_arr_begin(struct json_w *w)
{
	open_container(w, '[', false);
}

void json_arr_end(struct json_w *w)
{
	close_container(w, ']', false);
}

/* Length of the valid UTF-8 sequence at @s (RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void put_escaped(struct json_w *w, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	while (left && !w->err) {
		size_t n = utf8_len(p, left);
		char esc[8];

		if (n == 0) {
			put(w, "\\ufffd", 6);
			n = 1;
		} else if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(w, esc, 2);
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(w, esc, 6);
		} else {
			put(w, (const char *)p, n);
		}
		p += n;
		left -= n;
	}
}

void json_key(struct json_w *w, const char *key)
{
	if (w->err)
		return;
	if (!w->in_object[w->depth] || w->after_key) {
		w->err = -EINVAL;
		return;
	}
	if (w->need_comma[w->depth])
		put_c(w, ',');
	w->need_comma[w->depth] = true;
	put_c(w, '"');
	put_escaped(w, key);
	put(w, "\":", 2);
	w->after_key = true;
}

void json_str(struct json_w *w, const char *s)
{
	if (!s) {
		json_null(w);
		return;
	}
	if (!value_slot(w))
		return;
	put_c(w, '"');
	put_escaped(w, s);
	put_c(w, '"');
}

void json_u64(struct json_w *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);

	if (value_slot(w))
		put(w, num, (size_t)n);
}

void json_bool(struct json_w *w, bool v)
{
	if (value_slot(w))
		put(w, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json_w *w)
{
	if (value_slot(w))
		put(w, "null", 4);
}

void json_kv_str(struct json_w *w, const char *key, const char *s)
{
	json_key(w, key);
	json_str(w, s);
}

void json_kv_u64(struct json_w *w, const char *key, uint64_t v)
{
	json_key(w, key);
	json_u64(w, v);
}

void json_kv_bool(struct json_w *w, const char *key, bool v)
{
	json_key(w, key);
	json_bool(w, v);
}

void json_kv_hex(struct json_w *w, const char *key, uint64_t v)
{
	char hex[24];

	snprintf(hex, sizeof(hex), "0x%llx", (unsigned long long)v);
	json_kv_str(w, key, hex);
}

/* ---- reader ---------------------------------------------------------------- */

struct parser {
	const char *s;
	size_t len, pos;
	struct json_doc *doc;
	uint32_t max;   /* tokens allowed */
	uint32_t cap;   /* tokens allocated: grows by doubling up to max */
};

static int parse_value(struct parser *p, unsigned int depth);

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
		p->pos++;
}

static int new_tok(struct parser *p, enum json_type type, uint32_t start)
{
	struct json_doc *d = p->doc;

	if (d->ntok >= p->max)
		return -E2BIG;
	if (d->ntok == p->cap) {
		uint32_t cap = p->cap > p->max / 2 ? p->max : p->cap * 2;
		struct json_tok *t = realloc(d->tok, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		d->tok = t;
		p->cap = cap;
	}
	d->tok[d->ntok] = (struct json_tok){ .type = type, .start = start, .end = start };
	return (int)d->ntok++;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string token; p->pos is at the opening quote. */
static int parse_string(struct parser *p)
{
	int t = new_tok(p, JSON_STRING, (uint32_t)(p->pos + 1));

	if (t < 0)
		return t;
	for (p->pos++; p->pos < p->len; p->pos++) {
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == '"') {
			p->doc->tok[t].end = (uint32_t)p->pos++;
			p->doc->tok[t].next = (uint32_t)t + 1;
			return 0;
		}
		if (c < 0x20)
			return -EINVAL;
		if (c != '\\')
			continue;
		if (++p->pos >= p->len)
			return -EINVAL;
		c = (unsigned char)p->s[p->pos];
		if (c == 'u') {
			if (p->len - p->pos < 5)
				return -EINVAL;
			for (int i = 1; i <= 4; i++) {
				if (!is_hex(p->s[p->pos + (size_t)i]))
					return -EINVAL;
			}
			p->pos += 4;
		} else if (!strchr("\"\\/bfnrt", c) || !c) {
			return -EINVAL;
		}
	}
	return -EINVAL;
}

static size_t digits(struct parser *p)
{
	size_t n = 0;

	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		p->pos++;
		n++;
	}
	return n;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int parse_number(struct parser *p)
{
	int t = new_tok(p, JSON_NUMBER, (uint32_t)p->pos);
	size_t first;

	if (t < 0)
		return t;
	if (p->s[p->pos] == '-')
		p->pos++;
	first = p->pos;
	if (digits(p) == 0 || (p->s[first] == '0' && p->pos - first > 1))
		return -EINVAL;
	if (p->pos < p->len && p->s[p->pos] == '.') {
		p->pos++;
		if (digits(p) == 0)
			return -EINVAL;
	}
	if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
		p->pos++;
		if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (digits(p) == 0)
			return -EINVAL;
	}
	p->doc->tok[t].end = (uint32_t)p->pos;
	p->doc->tok[t].next = (uint32_t)t + 1;
	return 0;
}

static int parse_word(struct parser *p, const char *word, enum json_type type)
{
	size_t n = strlen(word);
	int t;

	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return -EINVAL;
	t = new_tok(p, type, (uint32_t)p->pos);
	if (t < 0)
		return t;
	p->pos += n;
	p->doc->tok[t].end = (uint32_t)p->pos;
	p->doc->tok[t].next = (uint32_t)t + 1;
	return 0;
}

/* One member "key": value of an object. */
static int parse_member(struct parser *p, unsigned int depth)
{
	int rc;

	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return -EINVAL;
	rc = parse_string(p);
	if (rc < 0)
		return rc;
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return -EINVAL;
	p->pos++;
	return parse_value(p, depth);
}

/* An object or array; p->pos is at its opening bracket. */
static int parse_container(struct parser *p, unsigned int depth, bool object)
{
	char close = object ? '}' : ']';
	int t = new_tok(p, object ? JSON_OBJECT : JSON_ARRAY, (uint32_t)p->pos);
	int rc;

	if (t < 0)
		return t;
	if (depth >= JSON_MAX_DEPTH)
		return -E2BIG;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
	} else {
		for (;;) {
			rc = object ? parse_member(p, depth + 1) : parse_value(p, depth + 1);
			if (rc < 0)
				return rc;
			p->doc->tok[t].size++;
			skip_ws(p);
			if (p->pos >= p->len)
				return -EINVAL;
			if (p->s[p->pos++] == close)
				break;
			if (p->s[p->pos - 1] != ',')
				return -EINVAL;
		}
	}
	p->doc->tok[t].end = (uint32_t)p->pos;
	p->doc->tok[t].next = p->doc->ntok;
	return 0;
}

static int parse_value(struct parser *p, unsigned int depth)
{
	char c;

	skip_ws(p);
	if (p->pos >= p->len)
		return -EINVAL;
	c = p->s[p->pos];
	switch (c) {
	case '{':
	case '[':
		return parse_container(p, depth, c == '{');
	case '"':
		return parse_string(p);
	case 't':
		return parse_word(p, "true", JSON_TRUE);
	case 'f':
		return parse_word(p, "false", JSON_FALSE);
	case 'n':
		return parse_word(p, "null", JSON_NULL);
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return parse_number(p);
		return -EINVAL;
	}
}

int json_parse(struct json_doc *doc, const char *text, size_t len, uint32_t max_tokens)
{
	struct parser p = { .s = text, .len = len, .doc = doc, .max = max_tokens };
	int rc;

	memset(doc, 0, sizeof(*doc));
	if (len > UINT32_MAX - 1 || max_tokens == 0)
		return -E2BIG;
	p.cap = max_tokens < 64 ? max_tokens : 64;
	doc->tok = malloc(p.cap * sizeof(*doc->tok));
	if (!doc->tok)
		return -ENOMEM;
	doc->text = text;
	doc->len = len;
	rc = parse_value(&p, 0);
	skip_ws(&p);
	if (rc == 0 && p.pos != len)
		rc = -EINVAL;
	if (rc < 0)
		json_doc_free(doc);
	return rc;
}

void json_doc_free(struct json_doc *doc)
{
	free(doc->tok);
	memset(doc, 0, sizeof(*doc));
}

static bool tok_ok(const struct json_doc *doc, int t)
{
	return t >= 0 && (uint32_t)t < doc->ntok;
}

int json_get(const struct json_doc *doc, int obj, const char *key)
{
	size_t klen = strlen(key);
	uint32_t t;

	if (!tok_ok(doc, obj) || doc->tok[obj].type != JSON_OBJECT)
		return -1;
	t = (uint32_t)obj + 1;
	for (uint32_t i = 0; i < doc->tok[obj].size; i++) {
		const struct json_tok *k = &doc->tok[t];
		char name[256];
		int n = json_str_at(doc, (int)t, name, sizeof(name));

		if (n >= 0 && (size_t)n == klen && memcmp(name, key, klen) == 0)
			return (int)k->next;
		t = doc->tok[k->next].next; /* past the key and its value */
	}
	return -1;
}

int json_at(const struct json_doc *doc, int arr, uint32_t i)
{
	uint32_t t;

	if (!tok_ok(doc, arr) || doc->tok[arr].type != JSON_ARRAY || i >= doc->tok[arr].size)
		return -1;
	t = (uint32_t)arr + 1;
	while (i--)
		t = doc->tok[t].next;
	return (int)t;
}

int json_u64_at(const struct json_doc *doc, int t, uint64_t *out)
{
	uint64_t v = 0;

	if (!tok_ok(doc, t) || doc->tok[t].type != JSON_NUMBER)
		return -EINVAL;
	for (uint32_t i = doc->tok[t].start; i < doc->tok[t].end; i++) {
		unsigned int d = (unsigned int)(doc->text[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -EINVAL; /* a sign, fraction, exponent, or too large */
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int json_bool_at(const struct json_doc *doc, int t)
{
	if (!tok_ok(doc, t))
		return -EINVAL;
	if (doc->tok[t].type == JSON_TRUE)
		return 1;
	return doc->tok[t].type == JSON_FALSE ? 0 : -EINVAL;
}

static unsigned int hex4(const char *s)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v = v * 16 + (unsigned int)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The \u escape at s[*i] ('u' already passed): one code point, pairs joined. */
static int unescape_u(const char *s, uint32_t end, uint32_t *i, uint32_t *cp)
{
	uint32_t lo;

	*cp = hex4(s + *i);
	*i += 4;
	if (*cp >= 0xdc00 && *cp <= 0xdfff)
		return -EINVAL; /* a lone low surrogate */
	if (*cp >= 0xd800 && *cp <= 0xdbff) {
		if (end - *i < 6 || s[*i] != '\\' || s[*i + 1] != 'u')
			return -EINVAL;
		lo = hex4(s + *i + 2);
		if (lo < 0xdc00 || lo > 0xdfff)
			return -EINVAL;
		*cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
		*i += 6;
	}
	return *cp == 0 ? -EINVAL : 0;
}

static char simple_escape(char c)
{
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	default:
		return c; /* '"', '\\', '/': the tokenizer allowed nothing else */
	}
}

int json_str_at(const struct json_doc *doc, int t, char *buf, size_t size)
{
	const char *s = doc->text;
	size_t n = 0;
	uint32_t i, end;

	if (!tok_ok(doc, t) || doc->tok[t].type != JSON_STRING || size == 0)
		return -EINVAL;
	end = doc->tok[t].end;
	for (i = doc->tok[t].start; i < end;) {
		char tmp[4];
		size_t k = 1;
		uint32_t cp;

		if (s[i] != '\\') {
			tmp[0] = s[i++];
		} else if (s[i + 1] == 'u') {
			i += 2;
			if (unescape_u(s, end, &i, &cp) < 0)
				return -EINVAL;
			k = utf8_put(cp, tmp);
		} else {
			tmp[0] = simple_escape(s[i + 1]);
			i += 2;
		}
		if (n + k >= size) {
			buf[n] = '\0';
			return -ENOSPC;
		}
		memcpy(buf + n, tmp, k);
		n += k;
	}
	buf[n] = '\0';
	return (int)n;
}
