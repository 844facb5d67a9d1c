/* SPDX-License-Identifier: MIT */
/*
 * One vhost-user device served on one listening socket: accept a front end,
 * run its session, and after it disconnects wait for the next one (a VMM
 * restart or QEMU's reconnect= needs no daemon restart). One front end at a
 * time: a second connection while a session runs is closed at once.
 *
 * The socket may also be inherited (--fd, systemd socket activation): a
 * listening one is served like our own but its file is not ours to remove;
 * a connected one is a single front end, after which the server stops the
 * loop so the daemon exits cleanly (QEMU's back-end program conventions).
 */
#ifndef DAEMON_SERVER_H
#define DAEMON_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop/loop.h"
#include "transport/vvu/vfio.h"
#include "vhost_user/dispatch.h"
#include "vhost_user/transport.h"

/* The device behind the socket, and its per-session hooks. */
struct server_engine {
	const struct vu_dev_ops *ops;
	void *priv;
	/* a front end connected: get ready for a session (0 or -errno, logged) */
	int (*attach)(void *priv);
	/* the session is over: release what attach took */
	void (*detach)(void *priv);
};

/* Where front ends come from. */
struct server_socket {
	const char *path; /* create and listen here; NULL with an inherited fd */
	int fd;           /* inherited socket (the server takes it over), or -1 */
	bool listening;   /* @fd listens; else it is one connected front end */
	mode_t mode;      /* permissions of the socket file made at @path; 0: 0600 */
	/* or a virtio-vhost-user device (--vfio): its PCI name and how to open it */
	const char *vfio;
	vfio_open_fn vfio_open;
};

struct server_vvu;

/* What `stats` shows of a server's transport. */
struct server_tstats {
	const char *kind;          /* "unix" or "vfio" */
	char pci[64];              /* vfio: the device's PCI name */
	uint64_t msgs_in;          /* vfio: requests taken from the device */
	uint64_t msgs_out;         /* vfio: replies given to it */
	uint64_t calls;            /* vfio: call signals forwarded as doorbell writes */
	uint64_t errs;             /* vfio: err signals forwarded */
	uint64_t resets;           /* vfio: device resets */
	uint64_t faults;           /* vfio: device or message faults */
};

struct server {
	const char *name;
	const char *path;         /* socket file we created, or NULL */
	bool one_shot;            /* an inherited connected fd: stop after it */
	struct loop *loop;
	struct server_engine eng;
	int listen_fd;
	struct loop_watch listen_w;
	int conn_fd;
	struct loop_watch conn_w;
	struct vu_dev dev;
	bool in_session;          /* a front end is being served (see server_connected) */
	unsigned long sessions;   /* front ends served so far */
	struct server_vvu *vvu;   /* the VVU source (--vfio), or NULL */
	int failed;               /* why the server stopped the loop for good, or 0 */
};

/**
 * server_start() - listen on @path and serve front ends from @loop.
 * Return: 0 or negative errno (logged).
 */
int server_start(struct server *s, struct loop *loop, const char *name, const char *path,
		 const struct server_engine *eng);

/**
 * server_start_on() - serve front ends from @sock: listen on @sock->path,
 * or take over @sock->fd (closed by server_stop(), or at once on failure).
 * With a connected fd the session starts here; when it ends, @loop is
 * stopped.
 * Return: 0 or negative errno (logged).
 */
int server_start_on(struct server *s, struct loop *loop, const char *name,
		    const struct server_socket *sock, const struct server_engine *eng);

/*
 * For the sources (socket here, VVU in server_vvu.c): a front end arrived
 * on @tp (NULL: the Unix socket @sock); attach the engine and start its
 * session. Return: 0 or negative errno (the engine logged).
 */
int server_session_begin(struct server *s, const struct vu_transport *tp, int sock);

/* The session is over (@rc: why; -ECONNRESET: a clean disconnect; 0: already logged). */
void server_session_end(struct server *s, int rc);

/* The VVU source (server_vvu.c): device set up, its interrupts on the loop. */
int server_vvu_start(struct server *s, const struct server_socket *sock);
void server_vvu_stop(struct server *s);
void server_vvu_tstats(const struct server *s, struct server_tstats *out);

/** server_connected() - a front end is being served. */
bool server_connected(const struct server *s);

/** server_get_tstats() - the transport's name and counters (on the server's thread). */
void server_get_tstats(const struct server *s, struct server_tstats *out);

/**
 * server_stop() - end any session, close the socket and remove its file
 * (only a file the server created).
 */
void server_stop(struct server *s);

#endif
