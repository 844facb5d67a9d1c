/* SPDX-License-Identifier: MIT */
/*
 * What the control socket's requests do for each engine (struct
 * control_ops, control.h). Both run on the daemon's main thread.
 *
 * Userspace engine: "stats" asks every VM thread for its snapshot
 * (user_engine_snapshot(), stats.h) and writes one JSON object per VM;
 * "vm add" parses the --vm keys and adds a VM; "vm remove" finds a VM by
 * CID or socket path and removes it.
 *
 * Kernel engine: "stats" reads the one device's state directly (it runs on
 * the main thread: front end, features, running, CID); "vm add" and
 * "vm remove" are refused, since the kernel engine serves one VM per
 * daemon.
 *
 * The JSON members are described in the man page (CONTROL SOCKET).
 */
#ifndef CONTROL_OPS_H
#define CONTROL_OPS_H

#include "control/control.h"

struct config;
struct kern_engine;
struct server;
struct user_engine;

struct control_user_ctx {
	struct user_engine *ue;
	const struct config *cfg;
};

struct control_kern_ctx {
	struct kern_engine *k;
	struct server *srv;
	const struct config *cfg;
};

/* ctx: struct control_user_ctx */
extern const struct control_ops control_user_ops;
/* ctx: struct control_kern_ctx */
extern const struct control_ops control_kern_ops;

#endif
