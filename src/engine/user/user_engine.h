/* SPDX-License-Identifier: MIT */
/*
 * Userspace engine, daemon side: one device per --vm (or the single
 * --uds-path device), each with its own vhost-user socket, hybrid sockets,
 * event loop and thread (ARCHITECTURE.md "Threads": no locks on the data
 * path). The VMs meet only in the sibling hub (sibling.h).
 *
 * Life cycle: user_engine_start() creates every socket first (any failure
 * is a start-up failure: nothing runs, everything is closed and removed);
 * user_engine_run() then starts the threads, so that the daemon can drop
 * privileges and install its sandbox in between, while it is still one
 * thread. A VM thread ends when user_engine_stop() or a removal asks, or
 * by itself when its front end came on an inherited connected socket and
 * left (QEMU's back-end conventions: then the daemon exits); the caller
 * learns of the latter through user_engine_done_fd(). Tear-down happens
 * after the thread is joined, so it needs no locking.
 *
 * Run-time changes (the control socket, control.h), all from the thread
 * that called user_engine_start(): user_engine_add() sets up a VM and
 * starts its thread; user_engine_remove() stops it, closes its front end,
 * connections and sockets and removes its socket files. The VM table is
 * only ever touched by that thread; VM threads know only their own VM.
 * A VM added at run time takes no part in sibling routing (the hub is
 * linked once, at start): its packets to other CIDs are dropped, and so
 * are other VMs' packets to it. A VM removed at run time keeps its hub
 * port, closed, until the engine stops.
 *
 * Statistics (stats.h): each VM thread counts on its own struct ustats;
 * user_engine_snapshot() asks the thread for a copy through its wake-up
 * eventfd and waits for it under a mutex, off the data path.
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
#include <stddef.h>

#include "cli/cli.h"
#include "daemon/server.h"
#include "engine/user/device.h"
#include "engine/user/sibling.h"
#include "engine/user/stats.h"
#include "loop/loop.h"

/* How long user_engine_snapshot() waits for a VM thread. */
#define USER_SNAPSHOT_TIMEOUT_MS 2000
/*
 * Descriptors one VM holds apart from its guest connections, with a front
 * end attached: listening sockets, epoll, eventfds, the front end's socket,
 * its rings' kick/call/err eventfds and guest memory regions (measured:
 * README "Performance", scale). The daemon itself needs a few more.
 */
#define USER_VM_FDS 16u
#define USER_DAEMON_FDS 64u

struct user_engine;

struct user_vm {
	struct user_engine *ue;
	unsigned int idx;          /* slot in ue->vm[] */
	int port;                  /* sibling hub port, or -1 (added at run time) */
	char name[32];
	struct vm_config vc;       /* our own copy; strings owned */
	bool inherited;            /* its socket came with --fd or socket activation */
	struct loop loop;
	struct udev dev;
	struct server srv;
	int wake_fd;               /* eventfd: stop, snapshot and sibling wake-ups */
	struct loop_watch wake_w;
	atomic_bool stop;
	pthread_t thread;
	bool have_loop, have_dev, have_srv, have_thread;
	int rc;                    /* loop_run()'s result */
	struct ustats stats;       /* written by the VM thread only */
	/* snapshot hand-over: under snap_lock */
	pthread_mutex_t snap_lock;
	pthread_cond_t snap_cond;
	atomic_bool snap_asked;    /* a request waits (checked without the lock) */
	uint64_t snap_req, snap_done;
	struct ustats_snap *snap_out;
};

struct user_engine {
	const struct config *cfg;
	unsigned int n;                      /* VMs in vm[] */
	struct user_vm *vm[CLI_MAX_VMS];     /* NULL: a free slot */
	struct sib_hub hub;
	int hub_wake[SIB_MAX_PORTS];         /* the hub ports' eventfds, open until the end */
	int done_fd;                         /* eventfd: a VM thread ended by itself */
	uint64_t fd_limit;                   /* RLIMIT_NOFILE in force (UINT64_MAX: none) */
	bool running;                        /* user_engine_run() was called */
};

/**
 * user_engine_start() - set up every VM of @cfg: sockets, devices, loops.
 * @ue: the engine
 * @cfg: the parsed configuration (engine ENGINE_USER; must outlive @ue)
 *
 * Return: 0 or negative errno (logged; nothing is left open).
 */
int user_engine_start(struct user_engine *ue, const struct config *cfg);

/**
 * user_engine_run() - start the VM threads.
 * @ue: the engine
 *
 * Signals the daemon handles must already be blocked in the calling
 * thread: the VM threads inherit its mask (so do the ones added later).
 * Return: 0 or negative errno (logged; the caller then stops the engine).
 */
int user_engine_run(struct user_engine *ue);

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

/**
 * user_engine_add() - set up and start one more VM.
 * @ue: the engine (started)
 * @vc: its configuration, complete (groups set); copied
 * @err: receives the reason on failure, for the operator
 * @errlen: its size
 *
 * Refused: a CID or a socket path (vhost-user or hybrid) that a VM has,
 * no free slot (CLI_MAX_VMS), no room for its descriptors under
 * RLIMIT_NOFILE (USER_VM_FDS), or sockets that cannot be created.
 * Return: the new VM, or NULL with @err set.
 */
struct user_vm *user_engine_add(struct user_engine *ue, const struct vm_config *vc, char *err,
				size_t errlen);

/**
 * user_engine_find() - the VM whose CID is @target (decimal), or whose
 * vhost-user or hybrid socket path is @target.
 * Return: the VM or NULL.
 */
struct user_vm *user_engine_find(struct user_engine *ue, const char *target);

/**
 * user_engine_remove() - stop @vm's thread, end its session, close its
 * connections and sockets, remove its socket files, free it.
 * @ue: the engine
 * @vm: one of its VMs (invalid afterwards)
 * Return: nothing.
 */
void user_engine_remove(struct user_engine *ue, struct user_vm *vm);

/**
 * user_engine_snapshot() - the counters and state of @vm, taken on its
 * own thread (or directly before the threads run).
 * @ue: the engine
 * @vm: the VM
 * @s: receives the snapshot; s->conns/conns_cap are the caller's array
 *     (may be NULL/0: no per-connection rows)
 *
 * Return: 0, or -ETIMEDOUT when the VM thread did not answer within
 * USER_SNAPSHOT_TIMEOUT_MS.
 */
int user_engine_snapshot(struct user_engine *ue, struct user_vm *vm, struct ustats_snap *s);

/*
 * The same in two halves, so that many VMs are asked at once and their
 * threads answer in parallel (1,000 VMs asked one after another took 30 s
 * on a loaded machine). Every ask must be waited for before @s is freed:
 * the wait, even one that times out, is what stops the VM thread from
 * writing to @s.
 */

/** user_engine_snapshot_ask() - Return: the ticket to wait for (0: @s is filled already). */
uint64_t user_engine_snapshot_ask(struct user_vm *vm, struct ustats_snap *s);

/**
 * user_engine_snapshot_wait() - wait for @ticket until @until (CLOCK_MONOTONIC).
 * Return: 0, or -ETIMEDOUT (@s then holds nothing usable).
 */
int user_engine_snapshot_wait(struct user_vm *vm, uint64_t ticket, const struct timespec *until);

/** user_engine_snapshot_deadline() - @until: USER_SNAPSHOT_TIMEOUT_MS from now. */
void user_engine_snapshot_deadline(struct timespec *until);

#endif
