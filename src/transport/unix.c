// SPDX-License-Identifier: MIT
/*
 * Listening Unix sockets. The path is checked with lstat() before binding so
 * that the daemon never follows a symlink or deletes a file that is not a
 * socket; a socket file is replaced only when connecting to it fails with
 * ECONNREFUSED, i.e. no process is listening there any more.
 *
 * The socket file is created with its final permissions: the umask is set
 * for the bind() alone. A chmod() by name afterwards would follow a symlink
 * that someone with write access to the directory swapped in after the
 * bind, and change the mode of whatever file it points at. bind() itself
 * never follows a symlink (an existing name fails with EADDRINUSE). The
 * umask is process-wide, but no other thread of the daemon creates files,
 * so the moment it is changed affects nothing else.
 */
#include "transport/unix.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof(sa->sun_path)) {
		log_err("socket path '%s': length must be 1 to %zu bytes", path,
			sizeof(sa->sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa->sun_path, path, len);
	return 0;
}

/*
 * Is someone accepting on the socket file at @sa? Non-blocking, so a live
 * listener with a full backlog (EAGAIN) counts as live instead of hanging
 * start-up.
 */
static int socket_is_live(const struct sockaddr_un *sa, int type)
{
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int live;

	if (fd < 0)
		return -errno;
	live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno != ECONNREFUSED;
	close(fd);
	return live;
}

static int clear_path(const char *path, const struct sockaddr_un *sa, int type)
{
	struct stat st;
	int live;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_err("socket path '%s' exists and is not a socket (%s): refusing to replace it",
			path, S_ISLNK(st.st_mode) ? "a symlink" : "another kind of file");
		return -EEXIST;
	}
	live = socket_is_live(sa, type);
	if (live < 0)
		return live;
	if (live) {
		log_err("socket path '%s' is in use by another process", path);
		return -EADDRINUSE;
	}
	log_info("replacing stale socket file '%s'", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* bind() with the file created as @mode exactly; errno is kept on failure. */
static int bind_with_mode(int fd, const struct sockaddr_un *sa, mode_t mode)
{
	mode_t old = umask(~mode & 0777);
	int rc = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int err = errno;

	umask(old);
	errno = err;
	return rc;
}

int unix_listen_type(const char *path, mode_t mode, int type)
{
	struct sockaddr_un sa;
	int fd, rc;

	rc = fill_addr(path, &sa);
	if (rc < 0)
		return rc;
	rc = clear_path(path, &sa, type);
	if (rc < 0)
		return rc;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind_with_mode(fd, &sa, mode) < 0) {
		rc = -errno;
		log_err("cannot bind '%s': %s", path, strerror(-rc));
		goto err_close;
	}
	if (listen(fd, 16) < 0) {
		rc = -errno;
		log_err("cannot listen on '%s': %s", path, strerror(-rc));
		unlink(path);
		goto err_close;
	}
	return fd;

err_close:
	close(fd);
	return rc;
}

int unix_listen(const char *path, mode_t mode)
{
	return unix_listen_type(path, mode, SOCK_STREAM);
}

int unix_accept(int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

void unix_unlink(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}
