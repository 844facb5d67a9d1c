/* SPDX-License-Identifier: MIT */
/*
 * Userspace engine, daemon side: one device per --vm (or the single
 * --uds-path device), each with its own vhost-user socket, hybrid sockets,
 * event loop and thread (ARCHITECTURE.md "Threads": no locks on the data
 * path). The VMs meet only in the sibling hub (sibling.h).
 *
 * Life cycle: user_engine_start() creates every socket first (any failure
 * is a start-up failure: nothing runs, everything is closed and removed),
 * then starts the threads. A VM thread ends when user_engine_stop() asks,
 * or by itself when its front end came on an inherited connected socket
 * and left (QEMU's back-end conventions: then the daemon exits); the
 * caller learns of the latter through user_engine_done_fd(). Tear-down
 * happens after every thread is joined, so it needs no locking.
 *
 * Failure isolation: a VM's broken ring or vanished front end is handled
 * on its own thread and never reaches the others; a sibling that is not
 * running only makes packets to it drop.
 */
#ifndef ENGINE_USER_USER_ENGINE_H
#define ENGINE_USER_USER_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "daemon/server.h"
#include "engine/user/device.h"
#include "engine/user/sibling.h"
#include "loop/loop.h"

struct config;
struct user_engine;

struct user_vm {
	struct user_engine *ue;
	unsigned int idx;
	char name[32];
	struct loop loop;
	struct udev dev;
	struct server srv;
	int wake_fd;               /* eventfd: stop requests and sibling wake-ups */
	struct loop_watch wake_w;
	atomic_bool stop;
	pthread_t thread;
	bool have_loop, have_dev, have_srv, have_thread;
	int rc;                    /* loop_run()'s result */
};

struct user_engine {
	unsigned int n;
	struct user_vm *vms;
	struct sib_hub hub;
	int done_fd;               /* eventfd: a VM thread ended by itself */
};

/**
 * user_engine_start() - set up every VM of @cfg and start their threads.
 * @ue: the engine
 * @cfg: the parsed configuration (engine ENGINE_USER; must outlive @ue)
 *
 * Signals the daemon handles must already be blocked in the calling
 * thread: the VM threads inherit its mask.
 * Return: 0 or negative errno (logged; nothing is left running or open).
 */
int user_engine_start(struct user_engine *ue, const struct config *cfg);

/** user_engine_done_fd() - Return: an fd that becomes readable when a VM thread ended by itself. */
int user_engine_done_fd(const struct user_engine *ue);

/**
 * user_engine_stop() - stop and join every thread, end the sessions, close
 * and remove every socket.
 * @ue: the engine
 *
 * Return: 0, or -EIO when a VM's loop failed.
 */
int user_engine_stop(struct user_engine *ue);

#endif
