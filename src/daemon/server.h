/* SPDX-License-Identifier: MIT */
/*
 * One vhost-user device served on one listening socket: accept a front end,
 * run its session, and after it disconnects wait for the next one (a VMM
 * restart or QEMU's reconnect= needs no daemon restart). One front end at a
 * time: a second connection while a session runs is closed at once.
 */
#ifndef DAEMON_SERVER_H
#define DAEMON_SERVER_H

#include "loop/loop.h"
#include "vhost_user/dispatch.h"

/* The device behind the socket, and its per-session hooks. */
struct server_engine {
	const struct vu_dev_ops *ops;
	void *priv;
	/* a front end connected: get ready for a session (0 or -errno, logged) */
	int (*attach)(void *priv);
	/* the session is over: release what attach took */
	void (*detach)(void *priv);
};

struct server {
	const char *name;
	const char *path;
	struct loop *loop;
	struct server_engine eng;
	int listen_fd;
	struct loop_watch listen_w;
	int conn_fd;
	struct loop_watch conn_w;
	struct vu_dev dev;
	unsigned long sessions;   /* front ends served so far */
};

/**
 * server_start() - listen on @path and serve front ends from @loop.
 * Return: 0 or negative errno (logged).
 */
int server_start(struct server *s, struct loop *loop, const char *name, const char *path,
		 const struct server_engine *eng);

/** server_stop() - end any session, close the socket and remove its file. */
void server_stop(struct server *s);

#endif
