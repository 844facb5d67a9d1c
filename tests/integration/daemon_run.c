// SPDX-License-Identifier: MIT
/*
 * Running the daemon in a private directory (see daemon_run.h).
 */
#include "daemon_run.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DR_MAX_ARGS 32u
#define DR_WAIT_MS 20000 /* a daemon under valgrind starts slowly */

int dr_init(struct dr *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/tmp/dr-XXXXXX");
	if (!mkdtemp(r->dir))
		return -errno;
	snprintf(r->sock, sizeof(r->sock), "%s/s", r->dir);
	snprintf(r->uds, sizeof(r->uds), "%s/u", r->dir);
	snprintf(r->seq, sizeof(r->seq), "%s/u_seqpacket", r->dir);
	snprintf(r->logh.log, sizeof(r->logh.log), "%s/log", r->dir);
	return 0;
}

int dr_start(struct dr *r, const char *const *args, bool own_paths, const char *wait_sock)
{
	char *argv[DR_MAX_ARGS];
	unsigned int n = 0;

	if (uh_daemon_argv(argv, &n, DR_MAX_ARGS - 4) < 0)
		return -E2BIG;
	if (own_paths) {
		argv[n++] = "--socket";
		argv[n++] = r->sock;
		argv[n++] = "--uds-path";
		argv[n++] = r->uds;
	}
	for (unsigned int i = 0; args && args[i]; i++) {
		if (n + 1 >= DR_MAX_ARGS)
			return -E2BIG;
		argv[n++] = (char *)args[i];
	}
	argv[n] = NULL;
	return tfe_daemon_start(&r->d, argv, wait_sock ? wait_sock : r->sock, r->logh.log,
				DR_WAIT_MS);
}

int dr_exit_status(const struct dr *r)
{
	if (r->d.pid || r->d.status < 0 || !WIFEXITED(r->d.status))
		return -1;
	return WEXITSTATUS(r->d.status);
}

/* Remove @path and, if it is a directory, everything in it. */
static void remove_entry(const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[512];
	DIR *d;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	d = opendir(path);
	while (d && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		remove_entry(sub);
	}
	if (d)
		closedir(d);
	rmdir(path);
}

void dr_fini(struct dr *r)
{
	if (r->d.pid > 0)
		tfe_daemon_stop(&r->d, DR_WAIT_MS);
	if (r->dir[0])
		remove_entry(r->dir);
	r->dir[0] = '\0';
}
