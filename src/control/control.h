/* SPDX-License-Identifier: MIT */
/*
 * The control socket (--control PATH): live stats and run-time VM add and
 * remove for operators, served on the daemon's main loop.
 *
 * Protocol: a client connects, sends one request line (request.h) and
 * reads one answer, a JSON object on one line ended by '\n', after which
 * the daemon closes the connection. Every answer has "ok": true or false;
 * a refusal carries "error": a sentence naming the request and the reason.
 *
 * Access: the socket file is created owner-only (0600, like the vhost-user
 * sockets, unix_listen()), and a client whose SO_PEERCRED uid is neither
 * root nor the daemon's own is refused as well, in case the directory or
 * the mode is changed behind our back.
 *
 * Limits: CONTROL_MAX_CLIENTS connections at once (more are closed at
 * once); a request must arrive within CONTROL_IDLE_MS and an answer be
 * taken within the same time, else the connection is closed; answers are
 * written without blocking, so a client that stops reading holds only its
 * own connection.
 *
 * What the requests do is the engine's business (struct control_ops): the
 * handlers run on the loop's thread and write the answer's members.
 */
#ifndef CONTROL_CONTROL_H
#define CONTROL_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control/json.h"
#include "control/request.h"
#include "loop/loop.h"

#define CONTROL_MAX_CLIENTS 8u
#define CONTROL_IDLE_MS 10000u
#define CONTROL_TICK_MS 500u
#define CONTROL_ERR_MAX 512u

/*
 * Request handlers. Each writes the members of the answer object after
 * "ok": true (the object is open; write keys and values only), or returns
 * a negative errno with a sentence in @err (what the operator can act on);
 * whatever it wrote is then dropped.
 */
struct control_ops {
	int (*stats)(void *ctx, struct json_w *w, char *err, size_t errlen);
	int (*vm_add)(void *ctx, const char *spec, struct json_w *w, char *err, size_t errlen);
	int (*vm_remove)(void *ctx, const char *target, struct json_w *w, char *err,
			 size_t errlen);
};

struct control;

struct control_client {
	struct control *ctl;
	int fd;                        /* -1: slot free */
	struct loop_watch w;
	uint64_t deadline_ms;
	char in[CONTROL_MAX_LINE + 1];
	size_t in_len;
	bool answering;                /* the request is in: sending the answer */
	struct json_w out;             /* the answer being sent */
	size_t out_off;
};

struct control {
	struct loop *loop;
	const char *path;              /* borrowed */
	int listen_fd;
	struct loop_watch listen_w;
	int timer_fd;
	struct loop_watch timer_w;
	bool timer_on;
	const struct control_ops *ops;
	void *ctx;
	unsigned int nclients;
	struct control_client cl[CONTROL_MAX_CLIENTS];
};

/**
 * control_start() - listen on @path and answer requests from @loop.
 * @c: the server
 * @loop: the daemon's main loop
 * @path: where the socket is created (borrowed; a stale socket file is
 *        replaced, anything else there is refused)
 * @ops: the handlers
 * @ctx: passed to them
 *
 * Return: 0 or negative errno (logged, naming --control).
 */
int control_start(struct control *c, struct loop *loop, const char *path,
		  const struct control_ops *ops, void *ctx);

/** control_stop() - close every connection and the socket, remove its file. Return: nothing. */
void control_stop(struct control *c);

/**
 * control_answer() - the answer to one request line, transport-free (the
 * server's core, and what unit tests drive).
 * @ops: the handlers
 * @ctx: passed to them
 * @line: the request line (with or without '\n')
 * @len: its length
 * @out: receives the JSON answer and its '\n' (reset first)
 *
 * Return: 0 when @out holds an answer (success or refusal), -ENOMEM when
 * not even a refusal could be written.
 */
int control_answer(const struct control_ops *ops, void *ctx, const char *line, size_t len,
		   struct json_w *out);

#endif
