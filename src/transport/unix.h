/* SPDX-License-Identifier: MIT */
/*
 * Unix-socket transport: the listening socket a front end connects to.
 * Moving messages and fds over the connection is the vhost-user layer's
 * framing (vhost_user/msg.c); this module only creates and accepts.
 */
#ifndef TRANSPORT_UNIX_H
#define TRANSPORT_UNIX_H

#include <sys/types.h>

/**
 * unix_listen() - create, bind and listen on a stream socket at @path.
 * A stale socket file (nobody accepting) is replaced; a live one, a
 * symlink, or any other kind of file at @path is refused. The socket file
 * gets permissions @mode.
 * Return: the listening fd (non-blocking, close-on-exec) or negative errno
 * (logged).
 */
int unix_listen(const char *path, mode_t mode);

/**
 * unix_listen_type() - unix_listen() for a socket of @type (SOCK_STREAM or
 * SOCK_SEQPACKET); the stale-file check probes with the same type.
 * Return: the listening fd or negative errno (logged).
 */
int unix_listen_type(const char *path, mode_t mode, int type);

/**
 * unix_accept() - accept one connection, close-on-exec, blocking.
 * Return: fd, or negative errno (-EAGAIN when nobody is waiting).
 */
int unix_accept(int listen_fd);

/** unix_unlink() - remove the socket file at @path if it is a socket. */
void unix_unlink(const char *path);

#endif
