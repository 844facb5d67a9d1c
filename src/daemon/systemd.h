/* SPDX-License-Identifier: MIT */
/*
 * Service-manager integration: where the vhost-user socket comes from
 * (a path to listen on, an fd given with --fd, or systemd socket
 * activation) and telling the service manager how the daemon is doing
 * (READY=1 once the socket accepts, STATUS= lines on connect/disconnect).
 *
 * Socket activation uses libsystemd's sd_listen_fds() when the build has
 * libsystemd (Meson option 'systemd'); without it, LISTEN_FDS is refused
 * with a message pointing at --fd. Notifications go through sd_notify()
 * with libsystemd and through our own sender of the same datagram
 * otherwise, so Type=notify units work in both builds. Every notification
 * is a no-op when NOTIFY_SOCKET is unset (not run by a service manager).
 *
 * Limits: one inherited socket serves one device; --fd and activation are
 * single-device only (the command line enforces that).
 */
#ifndef DAEMON_SYSTEMD_H
#define DAEMON_SYSTEMD_H

#include <stdbool.h>

struct config;
struct server_socket;

/**
 * systemd_activation_pending() - whether the environment passes sockets to
 * this process: LISTEN_FDS is set and LISTEN_PID is our pid (sd_listen_fds(3):
 * variables meant for another process are ignored).
 * Return: true when socket activation is in effect.
 */
bool systemd_activation_pending(void);

/**
 * systemd_listen_fd() - take the one socket passed by socket activation.
 * Refuses (logged) a count other than one and builds without libsystemd.
 * Return: the fd (3), or negative errno.
 */
int systemd_listen_fd(void);

/**
 * systemd_pick_socket() - where device @index of @cfg is served: the --fd
 * socket, the activated socket, or its --socket path. An inherited fd is
 * checked (a Unix stream socket), made close-on-exec, and set non-blocking
 * when it listens and blocking when it is a connected front end.
 * Return: 0 with @sock filled, or negative errno (logged).
 */
int systemd_pick_socket(const struct config *cfg, unsigned int index,
			struct server_socket *sock);

/**
 * systemd_notify() - send @state ("READY=1", "STATUS=...") to the service
 * manager: sd_notify() with libsystemd, systemd_notify_datagram() without.
 * Return: 1 sent, 0 no service manager (NOTIFY_SOCKET unset), or negative
 * errno (not logged: a failed notification never stops the daemon).
 */
int systemd_notify(const char *state);

/**
 * systemd_notify_datagram() - our own sender of the sd_notify(3) protocol:
 * one datagram with @state to the AF_UNIX socket named by NOTIFY_SOCKET
 * (an absolute path, or "@name" for the abstract namespace). Used when the
 * build has no libsystemd; public so that tests cover it in every build.
 * Return: 1 sent, 0 NOTIFY_SOCKET unset, -EINVAL for a malformed address,
 * or negative errno from sendto().
 */
int systemd_notify_datagram(const char *state);

/** systemd_notify_ready() - READY=1: the socket accepts front ends now. */
void systemd_notify_ready(void);

/** systemd_notify_status() - STATUS=<text> (shown by systemctl status). */
void systemd_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
