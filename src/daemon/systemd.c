// SPDX-License-Identifier: MIT
/*
 * Service-manager integration (see systemd.h). An inherited socket is
 * trusted no more than a path: it is checked to be a Unix stream socket
 * before use, because a wrong fd number in a unit file would otherwise
 * surface later as a confusing protocol error.
 *
 * Notifications are best effort: the service manager may be gone or the
 * socket full, and neither is a reason to stop serving the guest.
 */
#include "daemon/systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "build_config.h"
#include "cli/cli.h"
#include "daemon/server.h"
#include "util/log.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

bool systemd_activation_pending(void)
{
	const char *pid = getenv("LISTEN_PID");
	char *end;
	unsigned long long v;

	if (!pid || !getenv("LISTEN_FDS"))
		return false;
	errno = 0;
	v = strtoull(pid, &end, 10);
	if (errno || end == pid || *end)
		return false;
	return v == (unsigned long long)getpid();
}

#if HAVE_LIBSYSTEMD
int systemd_listen_fd(void)
{
	/* unset the variables: nothing we start may take the socket as its own */
	int n = sd_listen_fds(1);

	if (n < 0) {
		log_err("socket activation: cannot read LISTEN_FDS: %s", strerror(-n));
		return n;
	}
	if (n != 1) {
		log_err("socket activation passed %d sockets; one device is served from exactly one: "
			"give the socket unit a single ListenStream=", n);
		return n == 0 ? -ENOENT : -E2BIG;
	}
	return SD_LISTEN_FDS_START;
}

int systemd_notify(const char *state)
{
	return sd_notify(0, state);
}
#else
int systemd_listen_fd(void)
{
	log_err("socket activation: LISTEN_FDS is set, but this build has no libsystemd "
		"(rebuild with -Dsystemd=enabled); or pass the socket with --fd 3");
	return -ENOTSUP;
}

int systemd_notify(const char *state)
{
	return systemd_notify_datagram(state);
}
#endif

/* A listening fd feeds the event loop; a connected one is read like an accepted one. */
static int set_fd_flags(int fd, bool listening)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	fl = listening ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

static int adopt_fd(int fd, const char *origin, struct server_socket *sock)
{
	bool listening;
	int rc = cli_check_socket_fd(fd, &listening);

	if (rc < 0) {
		log_err("%s: fd %d %s", origin, fd, cli_socket_fd_error(rc));
		return rc;
	}
	rc = set_fd_flags(fd, listening);
	if (rc < 0) {
		log_err("%s: fd %d: cannot set its flags: %s", origin, fd, strerror(-rc));
		return rc;
	}
	sock->path = NULL;
	sock->fd = fd;
	sock->listening = listening;
	log_info("%s: fd %d is %s", origin, fd,
		 listening ? "a listening socket" : "a connected front end (served once)");
	return 0;
}

int systemd_pick_socket(const struct config *cfg, unsigned int index,
			struct server_socket *sock)
{
	int fd;

	*sock = (struct server_socket){
		.path = cfg->vms[index].socket_path,
		.fd = -1,
		.listening = true,
		.mode = (mode_t)cfg->vms[index].socket_mode,
	};
	if (index != 0)
		return 0;
	if (cfg->fd >= 0)
		return adopt_fd(cfg->fd, "--fd", sock);
	if (!cfg->activated)
		return 0;
	fd = systemd_listen_fd();
	if (fd < 0)
		return fd;
	return adopt_fd(fd, "socket activation", sock);
}

int systemd_notify_datagram(const char *state)
{
	const char *addr = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	ssize_t n;
	int fd, rc;

	if (!addr || !addr[0])
		return 0;
	len = strlen(addr);
	if ((addr[0] != '/' && addr[0] != '@') || len < 2 || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, addr, len);
	if (addr[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace: the name is the exact length */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	rc = n < 0 ? -errno : 1;
	close(fd);
	return rc;
}

void systemd_notify_ready(void)
{
	int rc = systemd_notify("READY=1");

	if (rc < 0)
		log_warn("cannot tell the service manager that we are ready: %s", strerror(-rc));
	else if (rc > 0)
		log_debug("told the service manager: ready");
}

void systemd_notify_status(const char *fmt, ...)
{
	char state[256] = "STATUS=";
	const size_t off = sizeof("STATUS=") - 1;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(state + off, sizeof(state) - off, fmt, ap);
	va_end(ap);
	systemd_notify(state);
}
