// SPDX-License-Identifier: MIT
/*
 * Fuzz target (e1): the hybrid vsock CONNECT line parser
 * (engine/user/hybrid_proto.h), plus the "OK" reply and the per-port Unix
 * socket name built from the port it yields.
 *
 * Input: one byte choosing how the rest is cut into chunks, then the bytes
 * a host program sends.
 *
 * Checked against a small model written from the rules in hybrid_proto.h
 * (word CONNECT or connect, one space, 1+ digits up to 4294967295, "\n" or
 * "\r\n", at most HYBRID_LINE_MAX bytes): a complete valid line is
 * accepted with its port and exactly its length consumed, never more; a
 * valid prefix shorter than the limit asks for more and consumes all;
 * anything else is one of the documented errors. The result does not
 * depend on how the bytes are chunked; errors and completion are sticky.
 * hybrid_format_ok() and hybrid_uds_name() give exactly the documented
 * strings or errors.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/un.h>

#include "engine/user/hybrid_proto.h"
#include "fuzz_util.h"

enum hl_verdict { HL_MORE, HL_LINE, HL_BAD };

struct hl_result {
	int rc;
	size_t consumed;
	uint32_t port;
};

/* Does @b[0, n) start with a valid line (*@len, *@port), or could it still? */
static enum hl_verdict model(const uint8_t *b, size_t n, size_t *len, uint32_t *port)
{
	const char *word = n && b[0] == 'c' ? "connect" : "CONNECT";
	uint64_t v = 0;
	size_t i = 0, digits = 0;

	for (; i < 7; i++)
		if (i == n)
			return HL_MORE;
		else if (b[i] != (uint8_t)word[i])
			return HL_BAD;
	if (i == n)
		return HL_MORE;
	if (b[i++] != ' ')
		return HL_BAD;
	for (; i < n && b[i] >= '0' && b[i] <= '9'; i++, digits++) {
		v = v * 10 + (b[i] - '0');
		if (v > UINT32_MAX)
			return HL_BAD;
	}
	/* a prefix can still complete if its newline fits the limit */
	if (i == n)
		return n < HYBRID_LINE_MAX ? HL_MORE : HL_BAD;
	if (!digits)
		return HL_BAD;
	if (b[i] == '\r' && ++i == n)
		return n < HYBRID_LINE_MAX ? HL_MORE : HL_BAD;
	if (b[i] != '\n')
		return HL_BAD;
	*len = i + 1;
	*port = (uint32_t)v;
	return *len <= HYBRID_LINE_MAX ? HL_LINE : HL_BAD;
}

/* Feed @b in chunks of @chunk bytes until the parser stops asking. */
static struct hl_result feed(const uint8_t *b, size_t n, size_t chunk)
{
	struct hybrid_parser p;
	struct hl_result r = { 0, 0, 0 };

	hybrid_parser_init(&p);
	for (size_t at = 0; at < n && r.rc == 0; at += chunk) {
		size_t len = n - at < chunk ? n - at : chunk, used = 0;

		r.rc = hybrid_parser_feed(&p, b + at, len, &used, &r.port);
		FZ_CHECK(used <= len, "consumed %zu of %zu", used, len);
		FZ_CHECK(r.rc != 0 || used == len, "asked for more but left %zu bytes", len - used);
		r.consumed += used;
	}
	if (r.rc != 0 && n) {
		/* sticky: more bytes change nothing */
		size_t used = 1;
		uint32_t port = r.port;
		int again = hybrid_parser_feed(&p, b, 1, &used, &port);

		FZ_CHECK(again == r.rc && (r.rc < 0 || (used == 0 && port == r.port)),
			 "result %d not sticky (%d, used %zu)", r.rc, again, used);
	}
	return r;
}

static void check_replies(uint32_t port, const uint8_t *b, size_t n, uint8_t size_sel)
{
	char want[64], buf[sizeof(((struct sockaddr_un *)0)->sun_path) + 16], path[128];
	size_t size = 1 + size_sel % sizeof(buf), plen = n < sizeof(path) - 1 ? n : sizeof(path) - 1;
	int len = snprintf(want, sizeof(want), "OK %u\n", port), rc;

	FZ_CHECK(hybrid_format_ok(port, buf, sizeof(buf)) == len && strcmp(buf, want) == 0,
		 "OK line for %u", port);
	FZ_CHECK(hybrid_format_ok(port, buf, (size_t)len) == -ENOSPC, "OK line without room");
	memcpy(path, b, plen);
	path[plen] = '\0';
	rc = hybrid_uds_name(path, port, buf, size);
	len = snprintf(want, sizeof(want), "_%u", port);
	if (!path[0])
		FZ_CHECK(rc == -EINVAL, "empty uds path gave %d", rc);
	else if (strlen(path) + (size_t)len + 1 > size ||
		 strlen(path) + (size_t)len + 1 > sizeof(((struct sockaddr_un *)0)->sun_path))
		FZ_CHECK(rc == -ENAMETOOLONG, "uds name %s%s in %zu bytes gave %d", path, want,
			 size, rc);
	else
		FZ_CHECK(rc == 0 && strncmp(buf, path, strlen(path)) == 0 &&
			 strcmp(buf + strlen(path), want) == 0, "uds name %s", buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_result whole, chunked;
	size_t len = 0, n = size ? size - 1 : 0;
	const uint8_t *b = data + (size ? 1 : 0);
	uint32_t port = 0;
	enum hl_verdict v;

	if (!size)
		return 0;
	whole = feed(b, n, n ? n : 1);
	chunked = feed(b, n, 1u + data[0] % 7);
	/* after an error, how much was consumed is not part of the contract */
	FZ_CHECK(whole.rc == chunked.rc &&
		 (whole.rc < 0 || (whole.consumed == chunked.consumed && whole.port == chunked.port)),
		 "chunking changed the result: %d/%zu vs %d/%zu", whole.rc, whole.consumed,
		 chunked.rc, chunked.consumed);
	v = model(b, n, &len, &port);
	if (v == HL_LINE)
		FZ_CHECK(whole.rc == 1 && whole.consumed == len && whole.port == port,
			 "valid %zu-byte line for port %u: rc %d consumed %zu port %u", len, port,
			 whole.rc, whole.consumed, whole.port);
	else if (v == HL_MORE)
		FZ_CHECK(whole.rc == 0 && whole.consumed == n, "valid prefix: rc %d", whole.rc);
	else
		FZ_CHECK(whole.rc == -EINVAL || whole.rc == -ERANGE || whole.rc == -EMSGSIZE,
			 "invalid line: rc %d", whole.rc);
	if (whole.rc == 1)
		check_replies(whole.port, b, n, data[0]);
	return 0;
}
