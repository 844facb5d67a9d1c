/* SPDX-License-Identifier: MIT */
/*
 * The whole daemon behind main(): command line, engine, transport, control
 * socket, sandbox and event loop. Its outside world (the VFIO devices it
 * opens, the vhost device the kernel engine drives) comes in through
 * struct daemon_env, so a test can run the real daemon in-process over a
 * device model and a vhost double.
 */
#ifndef DAEMON_DAEMON_H
#define DAEMON_DAEMON_H

#include "transport/vvu/vfio.h"

struct kern_vhost_ops;

struct daemon_env {
	vfio_open_fn vfio_open;                 /* vfio_sys_open in the real daemon */
	const struct kern_vhost_ops *vhost;     /* kern_vhost_sys in the real daemon (engine/kernel/kernel.h) */
};

/*
 * The whole daemon (everything src/main.c's main() does today), with its
 * outside world injectable. Return: the exit status (0 clean exit, 1
 * runtime failure, 2 usage error).
 */
int daemon_main(int argc, char **argv, const struct daemon_env *env);

#endif
