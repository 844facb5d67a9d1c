// SPDX-License-Identifier: MIT
/*
 * The daemon under test as a child process: start it with its output sent
 * to a log file, wait for its listening socket to appear, stop it with
 * SIGTERM and check that it exited 0 and removed its socket file.
 *
 * Every wait is bounded; a child that does not stop in time is killed
 * (SIGKILL) and reaped, so a test never leaves a daemon behind.
 */
#include "tfe.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_STEP_MS 10

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* In the child: redirect output, exec. Only async-signal-safe calls. */
static void child_exec(char *const argv[], const char *log_path)
{
	if (log_path) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
	}
	execv(argv[0], argv);
	_exit(127);
}

bool tfe_daemon_alive(struct tfe_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
		d->status = st;
		d->pid = 0;
		return false;
	}
	return true;
}

/* SIGKILL and reap; the status is recorded. */
static void kill_and_reap(struct tfe_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return;
	kill(d->pid, SIGKILL);
	if (waitpid(d->pid, &st, 0) == d->pid)
		d->status = st;
	d->pid = 0;
}

int tfe_daemon_start(struct tfe_daemon *d, char *const argv[], const char *sock_path,
		     const char *log_path, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	memset(d, 0, sizeof(*d));
	d->status = -1;
	if (strlen(sock_path) >= sizeof(d->sock_path))
		return -ENAMETOOLONG;
	strcpy(d->sock_path, sock_path);
	d->pid = fork();
	if (d->pid < 0) {
		d->pid = 0;
		return -errno;
	}
	if (d->pid == 0)
		child_exec(argv, log_path);
	while (!is_socket(sock_path)) {
		if (!tfe_daemon_alive(d))
			return -ECHILD;
		if (tfe_remaining_ms(deadline) == 0) {
			tfe_log(1, "%s did not create %s in %d ms", argv[0], sock_path, timeout_ms);
			kill_and_reap(d);
			return -ETIMEDOUT;
		}
		poll(NULL, 0, POLL_STEP_MS);
	}
	return 0;
}

int tfe_daemon_stop(struct tfe_daemon *d, int timeout_ms)
{
	int64_t deadline = tfe_now_ms() + timeout_ms;

	if (d->pid > 0)
		kill(d->pid, SIGTERM);
	while (tfe_daemon_alive(d)) {
		if (tfe_remaining_ms(deadline) == 0) {
			kill_and_reap(d);
			return -ETIMEDOUT;
		}
		poll(NULL, 0, POLL_STEP_MS);
	}
	if (!WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0)
		return -EPROTO;
	if (is_socket(d->sock_path))
		return -EEXIST;
	return 0;
}
