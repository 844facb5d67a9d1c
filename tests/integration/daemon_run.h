/* SPDX-License-Identifier: MIT */
/*
 * The daemon run directly, for suites that need what the user harness
 * does not give: options that must fail (usage errors), a --config file,
 * or files placed at the socket paths before the daemon starts. Each run
 * gets a private directory with the paths a single device would use:
 * dir/s (vhost-user socket), dir/u (hybrid socket) and dir/log.
 *
 * Every wait is bounded (tfe_daemon_start/stop); dr_fini() removes the
 * directory and whatever was left in it.
 */
#ifndef DAEMON_RUN_H
#define DAEMON_RUN_H

#include <stdbool.h>

#include "user_harness.h"

struct dr {
	char dir[64];
	char sock[96];           /* dir/s */
	char uds[96];            /* dir/u */
	char seq[112];           /* dir/u_seqpacket */
	struct uh logh;          /* only .log (dir/log) is set: for uh_log_* */
	struct tfe_daemon d;
};

/** dr_init() - a fresh private directory. Return: 0 or -errno. */
int dr_init(struct dr *r);

/**
 * dr_start() - run the daemon (uh_daemon_path) with "--socket dir/s
 * --uds-path dir/u" first when @own_paths, then @args (NULL-terminated),
 * output to dir/log, and wait for @wait_sock (NULL: dir/s) to appear.
 * Return: 0 when it runs; -ECHILD when it exited first (r->d.status);
 * -ETIMEDOUT; another negative errno.
 */
int dr_start(struct dr *r, const char *const *args, bool own_paths, const char *wait_sock);

/** dr_exit_status() - Return: the exit status of a daemon that exited, or -1. */
int dr_exit_status(const struct dr *r);

/** dr_fini() - stop the daemon if it runs, remove the directory. */
void dr_fini(struct dr *r);

#endif
