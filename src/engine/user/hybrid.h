/* SPDX-License-Identifier: MIT */
/*
 * Hybrid vsock, host side (PROTOCOLS.md §4.1): the Unix sockets host
 * programs connect to in order to reach a guest port, and the handshake
 * that runs on each connection until its CONNECT line is complete.
 *
 *   <uds_path>             SOCK_STREAM: "CONNECT <port>\n", then raw bytes
 *   <uds_path>_seqpacket   SOCK_SEQPACKET: the first message is the same
 *                          CONNECT line, the first reply "OK <port>\n", then
 *                          one vsock message per socket message
 *
 * The second name follows cloud-hypervisor's open proposal for seqpacket
 * hybrid vsock (no peer implements one yet); a guest port with a numeric
 * name "<uds_path>_<port>" cannot collide with it.
 *
 * Limits: at most max_pending connections in handshake (more are accepted
 * and closed at once, so the backlog never fills with them); each must
 * finish its line within timeout_ms (both set by the operator through
 * struct hybrid_limits: --max-pending-connects, --handshake-timeout-ms;
 * the socket files get --socket-mode, 0600 by default); a line that is
 * not a CONNECT line (hybrid_proto.h), too long, or a SEQPACKET first
 * message that is more or less than one line, closes that socket only. Bytes a STREAM client sends
 * after its line stay in the socket for the connection (the line is peeked
 * and only its own bytes are taken).
 *
 * Invariants: a pending slot is in use exactly while its fd is open and
 * watched; a finished handshake hands its fd to the connect callback and
 * forgets it. Single-threaded: everything runs on the VM's loop.
 */
#ifndef ENGINE_USER_HYBRID_H
#define ENGINE_USER_HYBRID_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "engine/user/hybrid_proto.h"
#include "loop/loop.h"

#define HYBRID_DEFAULT_MAX_PENDING 64u
#define HYBRID_DEFAULT_TIMEOUT_MS 5000u
#define HYBRID_DEFAULT_MODE 0600
#define HYBRID_SEQPACKET_SUFFIX "_seqpacket"

/* Operator-set bounds (--max-pending-connects, --handshake-timeout-ms, --socket-mode). */
struct hybrid_limits {
	unsigned int max_pending;  /* 0: HYBRID_DEFAULT_MAX_PENDING */
	uint32_t timeout_ms;       /* 0: HYBRID_DEFAULT_TIMEOUT_MS */
	mode_t mode;               /* socket files; 0: HYBRID_DEFAULT_MODE */
};

/*
 * A complete CONNECT line on @fd (a connected AF_UNIX socket of @type,
 * SOCK_STREAM or SOCK_SEQPACKET) asks for guest port @port. The callee
 * owns @fd from now on.
 */
typedef void (*hybrid_connect_cb)(void *ctx, int fd, int type, uint32_t port);

struct hybrid;

struct hybrid_pending {
	struct hybrid *hy;
	int fd;                    /* -1: slot free */
	int type;
	struct hybrid_parser parser;
	uint64_t deadline_ms;
	struct loop_watch w;
};

struct hybrid_listener {
	struct hybrid *hy;
	int fd;
	int type;
	char path[108];
	struct loop_watch w;
};

struct hybrid {
	const char *name;          /* for log lines */
	struct loop *loop;
	struct hybrid_listener lst[2]; /* STREAM, SEQPACKET */
	struct hybrid_pending *pend;
	unsigned int max_pending;
	unsigned int npending;
	uint32_t timeout_ms;
	mode_t mode;
	hybrid_connect_cb on_connect;
	void *ctx;
	unsigned long refused;     /* connections closed for the pending cap */
};

/**
 * hybrid_start() - listen on @uds_path and @uds_path + "_seqpacket".
 * @hy: the state
 * @loop: the VM's loop
 * @name: for log lines (borrowed)
 * @uds_path: the hybrid socket path (borrowed)
 * @cb: called for each complete CONNECT line
 * @ctx: passed to @cb
 *
 * Stale socket files are replaced, live ones and other files refused
 * (unix_listen()).
 * Return: 0 or negative errno (logged); nothing is left open on error.
 */
int hybrid_start(struct hybrid *hy, struct loop *loop, const char *name, const char *uds_path,
		 hybrid_connect_cb cb, void *ctx);

/**
 * hybrid_start_limits() - hybrid_start() with operator-set bounds.
 * @hy: the state
 * @loop: the VM's loop
 * @name: for log lines (borrowed)
 * @uds_path: the hybrid socket path (borrowed)
 * @lim: the bounds (NULL or zero fields: the defaults)
 * @cb: called for each complete CONNECT line
 * @ctx: passed to @cb
 *
 * Return: 0 or negative errno (logged); nothing is left open on error.
 */
int hybrid_start_limits(struct hybrid *hy, struct loop *loop, const char *name,
			const char *uds_path, const struct hybrid_limits *lim,
			hybrid_connect_cb cb, void *ctx);

/** hybrid_stop() - close the listeners (removing their files) and every handshake. */
void hybrid_stop(struct hybrid *hy);

/**
 * hybrid_expire() - close handshakes whose deadline has passed.
 * @hy: the state
 * @now_ms: monotonic clock
 */
void hybrid_expire(struct hybrid *hy, uint64_t now_ms);

/** hybrid_busy() - Return: whether handshakes are pending (a timer is needed). */
bool hybrid_busy(const struct hybrid *hy);

/** hybrid_now_ms() - Return: CLOCK_MONOTONIC in milliseconds. */
uint64_t hybrid_now_ms(void);

#endif
