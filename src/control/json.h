/* SPDX-License-Identifier: MIT */
/*
 * A small JSON writer and reader for the control socket (control.h): the
 * daemon writes its stats and results with the writer, the client
 * subcommands (client.h) and the tests read them back with the reader.
 *
 * Writer: appends compact JSON to a growing buffer; commas and nesting are
 * tracked, so callers only say what comes next. Strings are escaped, and
 * bytes that are not valid UTF-8 (a path may hold any byte) become U+FFFD,
 * so the output is always valid JSON. Memory is bounded (JSON_MAX_OUT); a
 * failed allocation or a misuse (a value where a key is due, too deep)
 * sticks and is reported once by json_w_error().
 *
 * Reader: a one-pass tokenizer in the style of jsmn: every value becomes a
 * token (type, byte range, number of children, index of the token after
 * its subtree), in document order, so lookups walk the array without
 * recursion. Input is untrusted: nesting is limited to JSON_MAX_DEPTH, the
 * number of tokens to the caller's bound, numbers and escapes are checked
 * strictly (RFC 8259), and anything after the top-level value but
 * whitespace is an error.
 */
#ifndef CONTROL_JSON_H
#define CONTROL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32u
#define JSON_MAX_OUT (64u << 20)

struct json_w {
	char *buf;
	size_t len, cap;
	int err;                           /* first error, sticky */
	unsigned int depth;
	bool in_object[JSON_MAX_DEPTH + 1];
	bool need_comma[JSON_MAX_DEPTH + 1];
	bool after_key;                    /* a key was written: its value is due */
};

/** json_w_init() - an empty writer. Return: nothing. */
void json_w_init(struct json_w *w);

/** json_w_free() - release the buffer. Return: nothing. */
void json_w_free(struct json_w *w);

/** json_w_reset() - forget what was written, keep the buffer. Return: nothing. */
void json_w_reset(struct json_w *w);

/**
 * json_w_error() - Return: 0, -ENOMEM (allocation or JSON_MAX_OUT), or
 * -EINVAL (misuse: unbalanced, too deep, a key outside an object).
 */
int json_w_error(const struct json_w *w);

/**
 * json_w_text() - the document so far, NUL-terminated.
 * @w: the writer
 * @len: receives its length (may be NULL)
 *
 * Return: the text ("" when nothing was written or after an error).
 */
const char *json_w_text(const struct json_w *w, size_t *len);

/*
 * The writing calls below return nothing: a misuse or a failed allocation
 * sticks in @w and is reported by json_w_error() once the document is done.
 */

/** json_obj_begin() - open an object (a value: after a key, in an array, or on top). */
void json_obj_begin(struct json_w *w);
/** json_obj_end() - close the innermost object. */
void json_obj_end(struct json_w *w);
/** json_arr_begin() - open an array. */
void json_arr_begin(struct json_w *w);
/** json_arr_end() - close the innermost array. */
void json_arr_end(struct json_w *w);
/** json_key() - the next member's name (inside an object only). */
void json_key(struct json_w *w, const char *key);
/** json_str() - a string value, escaped; NULL writes null. */
void json_str(struct json_w *w, const char *s);
/** json_u64() - an unsigned integer value. */
void json_u64(struct json_w *w, uint64_t v);
/** json_bool() - true or false. */
void json_bool(struct json_w *w, bool v);
/** json_null() - null. */
void json_null(struct json_w *w);
/** json_kv_str() - json_key() then json_str(). */
void json_kv_str(struct json_w *w, const char *key, const char *s);
/** json_kv_u64() - json_key() then json_u64(). */
void json_kv_u64(struct json_w *w, const char *key, uint64_t v);
/** json_kv_bool() - json_key() then json_bool(). */
void json_kv_bool(struct json_w *w, const char *key, bool v);
/** json_kv_hex() - a 64-bit mask as the string "0x..." (JSON numbers lose bits). */
void json_kv_hex(struct json_w *w, const char *key, uint64_t v);

enum json_type {
	JSON_OBJECT = 1,
	JSON_ARRAY,
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
};

struct json_tok {
	enum json_type type;
	uint32_t start, end;  /* bytes of the value (a string: inside the quotes) */
	uint32_t size;        /* members of an object (keys), items of an array */
	uint32_t next;        /* index of the first token after this subtree */
};

struct json_doc {
	const char *text;
	size_t len;
	struct json_tok *tok;
	uint32_t ntok;
};

/**
 * json_parse() - tokenize @len bytes of @text (borrowed: it must outlive
 * @doc). Object members appear as a key token (a string) followed by
 * the value's tokens.
 * @doc: receives the tokens; free with json_doc_free()
 * @text: the document
 * @len: its length
 * @max_tokens: refuse documents with more values than this
 *
 * Return: 0; -EINVAL for malformed JSON; -E2BIG past @max_tokens or
 * JSON_MAX_DEPTH; -ENOMEM.
 */
int json_parse(struct json_doc *doc, const char *text, size_t len, uint32_t max_tokens);

/** json_doc_free() - release the tokens. Return: nothing. */
void json_doc_free(struct json_doc *doc);

/**
 * json_get() - the value of member @key of the object at token @obj.
 * Return: its token index, or -1 (not an object, or no such member).
 */
int json_get(const struct json_doc *doc, int obj, const char *key);

/**
 * json_at() - item @i of the array at token @arr.
 * Return: its token index, or -1.
 */
int json_at(const struct json_doc *doc, int arr, uint32_t i);

/**
 * json_u64_at() - the unsigned integer at token @t (no sign, fraction or
 * exponent; at most UINT64_MAX).
 * Return: 0, or -EINVAL (absent, another type, out of range).
 */
int json_u64_at(const struct json_doc *doc, int t, uint64_t *out);

/**
 * json_bool_at() - Return: 1 for true, 0 for false, -EINVAL otherwise.
 */
int json_bool_at(const struct json_doc *doc, int t);

/**
 * json_str_at() - the string at token @t, unescaped (\uXXXX as UTF-8,
 * surrogate pairs joined; a \u0000 is refused), into @buf.
 * Return: its length, -EINVAL (absent, not a string, bad escape) or
 * -ENOSPC (@size too small; @buf then holds a truncated prefix).
 */
int json_str_at(const struct json_doc *doc, int t, char *buf, size_t size);

#endif
