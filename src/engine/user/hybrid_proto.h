/* SPDX-License-Identifier: MIT */
/*
 * Hybrid vsock text protocol (Firecracker convention, PROTOCOLS.md §4):
 * a host program connects to the device's Unix socket and writes
 * "CONNECT <port>\n"; once the guest accepts, the device answers
 * "OK <port>\n" and the socket becomes a raw byte pipe. Guest-initiated
 * connections go to the Unix socket "<uds_path>_<port>".
 *
 * Accepted line, and why:
 * - "CONNECT" (Firecracker) or "connect" (rust-vmm lower-cases the word, so
 *   its clients may send this); mixed case is refused.
 * - exactly one space, then 1+ decimal digits, value ≤ 4294967295; leading
 *   zeros are accepted (both reference parsers do); no sign, no spaces.
 * - "\n", or "\r\n" (line-oriented tools such as socat's crlf mode; the
 *   reference parsers split on whitespace and so accept it too).
 * - at most HYBRID_LINE_MAX bytes including the newline: a host client
 *   cannot make us buffer without bound (rust-vmm has no cap).
 *
 * The parser is incremental and keeps no copy of the line: feed it bytes as
 * they arrive. It stops right after the newline and says how much it
 * consumed, so bytes a client sends early stay in the caller's hands.
 */
#ifndef ENGINE_USER_HYBRID_PROTO_H
#define ENGINE_USER_HYBRID_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define HYBRID_LINE_MAX 32u /* bytes, newline included */

enum hybrid_state {
	HYBRID_WORD,   /* in the command word */
	HYBRID_SPACE,  /* after the word, expecting the one space */
	HYBRID_DIGITS, /* in the port number */
	HYBRID_CR,     /* after '\r', expecting '\n' */
	HYBRID_DONE,
	HYBRID_ERROR,
};

struct hybrid_parser {
	enum hybrid_state state;
	int error;           /* sticky negative errno once in HYBRID_ERROR */
	uint32_t len;        /* bytes of the line consumed so far */
	uint32_t pos;        /* index into the command word */
	uint32_t ndigits;
	uint32_t port;
	const char *word;    /* "CONNECT" or "connect", chosen by the first byte */
};

/** hybrid_parser_init() - ready for a new line. */
void hybrid_parser_init(struct hybrid_parser *p);

/**
 * hybrid_parser_feed() - consume the next bytes of a CONNECT line.
 * @p: the parser
 * @buf: bytes received
 * @n: their number
 * @consumed: receives how many of them belong to the line
 * @port: receives the port once the line is complete
 *
 * Return: 1 when the line is complete (@port set; bytes past *@consumed
 * are not part of it); 0 when more bytes are needed (all consumed);
 * -EINVAL for anything that is not a CONNECT line, -ERANGE for a port
 * above 4294967295, -EMSGSIZE for a line longer than HYBRID_LINE_MAX.
 * Errors are sticky; a completed parser keeps returning 1 and consumes
 * nothing.
 */
int hybrid_parser_feed(struct hybrid_parser *p, const void *buf, size_t n, size_t *consumed,
		       uint32_t *port);

/**
 * hybrid_format_ok() - the reply line "OK <port>\n".
 * @port: the port to report (we report our side's port, like Firecracker)
 * @buf: destination
 * @size: its size
 *
 * Return: the line's length (no NUL counted; one is written), or -ENOSPC.
 */
int hybrid_format_ok(uint32_t port, char *buf, size_t size);

/**
 * hybrid_uds_name() - the Unix socket path "<uds_path>_<port>".
 * @uds_path: the device's hybrid socket path
 * @port: the guest's destination port
 * @buf: destination
 * @size: its size
 *
 * Return: 0; -EINVAL for an empty @uds_path; -ENAMETOOLONG when the name
 * and its NUL do not fit in @size or in sockaddr_un's sun_path.
 */
int hybrid_uds_name(const char *uds_path, uint32_t port, char *buf, size_t size);

#endif
