/* SPDX-License-Identifier: MIT */
/*
 * Shared by the two ends of the userspace-engine real-peer test: the guest
 * program (guest_vsock_check, AF_VSOCK sockets inside a QEMU guest) and the
 * host helper (host_peer, AF_UNIX sockets beside the daemon). Both ends run
 * the same exchanges from here, so what one sends is by construction what
 * the other checks.
 *
 * Control protocol (text lines on one vsock stream, guest → host port
 * PEER_CTRL_PORT, i.e. the host helper's Unix listener "<uds>_5000"). The
 * guest drives; the host helper answers every command with one line:
 *   ACCEPT <kind> <port> <seed> <len> <ms>
 *       host listens on "<uds>_<port>" (kind stream|halfclose|seqpacket), answers
 *       "READY", accepts one connection within <ms>, runs the exchange,
 *       answers the result line. The guest may send "ABORT" instead of
 *       connecting (its connect failed); the host then answers FAIL.
 *   DIAL <kind> <port> <seed> <len> <ms>
 *       host connects to "<uds>" (stream, halfclose) or "<uds>_seqpacket"
 *       (seqpacket), sends "CONNECT <port>\n", checks the "OK <n>\n"
 *       answer, runs the exchange, answers the result. Kinds absent (no
 *       guest listener on <port>) and garbage (sends "CONNECT -<port>\n")
 *       expect the daemon to close the socket within 1 s, sending nothing.
 *   BYE
 *       host answers "BYE <ok> <failed>" (its own session counts) and ends.
 * Result lines: "OK <rx> <rx_crc> <tx> <tx_crc> <ms> <text>" (counts in
 * bytes or messages, CRCs in hex, from the host's side) or "FAIL <reason>".
 *
 * Exchanges:
 *   stream     both ends send <len> bytes of peer_pattern() at once (the
 *              guest with <seed>, the host with peer_host_seed(<seed>)) in
 *              random write sizes, SHUT_WR after the last byte, and read
 *              until EOF, checking every byte and its offset; poll()-based
 *              so credit windows cannot deadlock.
 *   halfclose  the same bytes, one way after the other: the connecting
 *              end sends and shuts its side down first, the other end
 *              reads to EOF and only then answers through the half that
 *              is still open.
 *   seqpacket  the guest sends PEER_SEQ_COUNT messages of peer_seq_len(i)
 *              bytes, the host checks each message's length and contents,
 *              then sends its own set back (lengths in reverse order); the
 *              guest closes, the host expects EOF.
 *
 * Limits: one exchange at a time per process; every wait is bounded by a
 * deadline (CLOCK_MONOTONIC milliseconds, tfe_now_ms()). Messages are at
 * most PEER_SEQ_MAX bytes, below the daemon's default 64 KiB buffer, which
 * bounds a SEQPACKET message in both directions.
 */
#ifndef PEERS_USER_PEER_IO_H
#define PEERS_USER_PEER_IO_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEER_CTRL_PORT 5000u
#define PEER_LINE_MAX 256u
#define PEER_SEQ_COUNT 10u
#define PEER_SEQ_MAX 60000u
#define PEER_SEQ_SUFFIX "_seqpacket"

/* What one end saw of an exchange. */
struct peer_result {
	uint64_t tx, rx;        /* bytes (stream) or messages (seqpacket) */
	uint32_t tx_crc, rx_crc; /* CRC-32 of all bytes sent / received */
	int64_t ms;             /* duration */
};

/**
 * peer_host_seed() - the seed of the host's half of an exchange.
 * @seed: the guest's seed from the command line
 *
 * Return: a different, deterministic seed.
 */
uint64_t peer_host_seed(uint64_t seed);

/**
 * peer_pattern() - the test byte stream for @seed, from byte @off on.
 * @seed: which stream
 * @off: offset of buf[0] in the stream
 * @buf: destination
 * @n: number of bytes
 *
 * The same (seed, offset) always gives the same byte, however the stream
 * is cut into writes.
 */
void peer_pattern(uint64_t seed, uint64_t off, uint8_t *buf, size_t n);

/**
 * peer_crc32() - CRC-32 (IEEE 802.3, as zlib) continued over @n bytes.
 * @crc: the CRC so far (0 to start)
 * @buf: bytes
 * @n: their number
 *
 * Return: the updated CRC.
 */
uint32_t peer_crc32(uint32_t crc, const void *buf, size_t n);

/**
 * peer_seq_len() - length of message @i of the seqpacket exchange.
 * @i: index, < PEER_SEQ_COUNT
 *
 * Return: 1 .. PEER_SEQ_MAX.
 */
uint32_t peer_seq_len(unsigned int i);

/**
 * peer_socket() - a connected or listening socket of any family.
 * @sa: the address (its family gives the socket's)
 * @len: its size
 * @type: SOCK_STREAM or SOCK_SEQPACKET
 * @listening: bind and listen (backlog 4) instead of connect
 *
 * A blocking connect: AF_VSOCK bounds it by its connect timeout (2 s), a
 * Unix socket answers at once.
 *
 * Return: the socket (close-on-exec), or -errno.
 */
int peer_socket(const void *sa, unsigned int len, int type, bool listening);

/**
 * peer_unix() - peer_socket() on the Unix socket @path.
 * @path: the socket file; a listener first removes a stale one
 * @type: SOCK_STREAM or SOCK_SEQPACKET
 * @listening: listen instead of connect
 *
 * Return: the socket, -ENAMETOOLONG, or -errno.
 */
int peer_unix(const char *path, int type, bool listening);

/**
 * peer_wait() - poll one fd until @events or the deadline.
 * @fd: the descriptor
 * @events: poll events wanted
 * @deadline: tfe_now_ms() value
 *
 * Return: the revents (> 0), -ETIMEDOUT, or -errno from poll().
 */
int peer_wait(int fd, short events, int64_t deadline);

/**
 * peer_send_all() - write all of @buf to a stream socket before @deadline.
 * @fd: the socket
 * @buf: bytes
 * @n: their number
 * @deadline: tfe_now_ms() value
 *
 * Return: 0, -ETIMEDOUT, or -errno from send().
 */
int peer_send_all(int fd, const void *buf, size_t n, int64_t deadline);

/**
 * peer_send_line() - format one line, add '\n', and send it whole.
 * @fd: a stream socket
 * @deadline: tfe_now_ms() value
 * @fmt: printf format of the line, without the newline; a longer line than
 *       PEER_LINE_MAX - 1 bytes is cut there (so it stays one line)
 *
 * Return: 0, -ETIMEDOUT, or -errno from send().
 */
int peer_send_line(int fd, int64_t deadline, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/**
 * peer_vsend_line() - peer_send_line() with a va_list.
 * @fd: a stream socket
 * @deadline: tfe_now_ms() value
 * @fmt: printf format of the line, without the newline
 * @ap: its arguments
 *
 * Return: as peer_send_line().
 */
int peer_vsend_line(int fd, int64_t deadline, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/**
 * peer_recv_line() - read one '\n'-terminated line, byte by byte so that
 * nothing after the newline is consumed.
 * @fd: a stream socket
 * @buf: receives the line without '\n', NUL-terminated
 * @size: its size (the longest line is @size - 1 bytes)
 * @deadline: tfe_now_ms() value
 *
 * Return: the line's length; -EPIPE at end of stream (with the partial
 * line in @buf), -EMSGSIZE when the line does not fit, -ETIMEDOUT, or
 * -errno from recv().
 */
int peer_recv_line(int fd, char *buf, size_t size, int64_t deadline);

/* Who sends when, in a stream exchange. */
enum peer_order {
	PEER_DUPLEX,   /* send and receive at once */
	PEER_TX_FIRST, /* send all, SHUT_WR, only then receive */
	PEER_RX_FIRST, /* receive to EOF, only then send */
};

/* One end's view of a stream exchange. */
struct peer_stream {
	uint64_t tx_seed; /* pattern to send */
	uint64_t rx_seed; /* pattern expected */
	uint64_t len;     /* bytes each way */
	enum peer_order order;
};

/**
 * peer_stream_exchange() - a stream exchange on a connected socket.
 * @fd: the socket (any blocking mode; MSG_DONTWAIT is used)
 * @st: seeds, length, order (TX_FIRST on one end needs RX_FIRST on the
 *      other: each end's SHUT_WR must leave the other direction open)
 * @deadline: tfe_now_ms() value
 * @r: receives byte counts, CRCs and the duration
 * @why: receives the reason on failure
 * @whylen: its size
 *
 * Return: 0 when @st->len bytes went each way, the received ones were
 * right, and end of stream came after them; -1 otherwise (@why says what).
 */
int peer_stream_exchange(int fd, const struct peer_stream *st, int64_t deadline,
			 struct peer_result *r, char *why, size_t whylen);

/**
 * peer_seq_send() - send the PEER_SEQ_COUNT messages of one seqpacket
 * half, one send() each.
 * @fd: a connected SOCK_SEQPACKET socket
 * @seed: pattern seed; message i carries peer_pattern(@seed + i, 0, ...)
 * @reverse: use the lengths in reverse order (the host's half)
 * @deadline: tfe_now_ms() value
 * @r: tx and tx_crc are updated
 * @why: receives the reason on failure
 * @whylen: its size
 *
 * Return: 0 or -1 (@why says what).
 */
int peer_seq_send(int fd, uint64_t seed, bool reverse, int64_t deadline, struct peer_result *r,
		  char *why, size_t whylen);

/**
 * peer_seq_recv() - receive and check the PEER_SEQ_COUNT messages of one
 * seqpacket half: each must arrive as one message of exactly its length
 * (boundaries kept: neither merged, split nor truncated) with the right
 * contents.
 * @fd: a connected SOCK_SEQPACKET socket
 * @seed: the sender's seed
 * @reverse: the sender used the reverse order
 * @deadline: tfe_now_ms() value
 * @r: rx and rx_crc are updated
 * @why: receives the reason on failure
 * @whylen: its size
 *
 * Return: 0 or -1 (@why says what).
 */
int peer_seq_recv(int fd, uint64_t seed, bool reverse, int64_t deadline, struct peer_result *r,
		  char *why, size_t whylen);

/**
 * peer_expect_eof() - wait for end of stream (recv() returning 0).
 * @fd: a connected socket
 * @deadline: tfe_now_ms() value
 * @why: receives the reason on failure
 * @whylen: its size
 *
 * Return: 0 on EOF; -1 on data, an error or the deadline.
 */
int peer_expect_eof(int fd, int64_t deadline, char *why, size_t whylen);

/**
 * peer_errname() - "ECONNRESET"-style name for an errno value, for verdict
 * lines that must be greppable.
 * @err: a positive errno
 *
 * Return: a static string.
 */
const char *peer_errname(int err);

#endif
