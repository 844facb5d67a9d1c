// SPDX-License-Identifier: MIT
/*
 * Userspace engine: the VMs, their threads and their sockets (see
 * user_engine.h). Each VM's loop watches its vhost-user socket (server.c),
 * its hybrid sockets and host connections (device.c) and one eventfd,
 * wake_fd, through which other threads reach it: the main thread to stop
 * it (the stop flag is set first), siblings when its inbox fills or when
 * theirs has room again.
 */
#include "engine/user/user_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/systemd.h"
#include "util/log.h"

_Static_assert(CLI_MAX_VMS <= SIB_MAX_PORTS, "every VM needs a sibling port");

static void on_wake(void *ctx, uint32_t events)
{
	struct user_vm *vm = ctx;
	eventfd_t v;

	(void)events;
	eventfd_read(vm->wake_fd, &v);
	if (atomic_load(&vm->stop)) {
		loop_stop(&vm->loop);
		return;
	}
	udev_wake(&vm->dev);
}

static void *vm_thread(void *arg)
{
	struct user_vm *vm = arg;

	vm->rc = loop_run(&vm->loop);
	if (vm->rc < 0)
		log_err("%s: event loop failed: %s", vm->name, strerror(-vm->rc));
	/* stopped by us, or a one-shot front end is gone: let the main thread know */
	if (!atomic_load(&vm->stop))
		eventfd_write(vm->ue->done_fd, 1);
	return NULL;
}

/* The device and the vhost-user socket of VM @vm, on its own loop. */
static int vm_setup(struct user_vm *vm, const struct config *cfg)
{
	const struct vm_config *vc = &cfg->vms[vm->idx];
	struct udev_cfg dc = {
		.name = vm->name,
		.cid = vc->cid,
		.uds_path = vc->uds_path,
		.buf_alloc = vc->tx_buffer_size,
		.max_queue_size = vc->queue_size,
		.hub = &vm->ue->hub,
		.port = vm->idx,
	};
	struct server_engine eng = {
		.ops = &vm->dev.ops, .priv = &vm->dev, .attach = udev_attach, .detach = udev_detach,
	};
	struct server_socket sock;
	int rc = loop_init(&vm->loop);

	if (rc < 0) {
		log_err("%s: cannot create an event loop: %s", vm->name, strerror(-rc));
		return rc;
	}
	vm->have_loop = true;
	rc = loop_add(&vm->loop, &vm->wake_w, vm->wake_fd, EPOLLIN, on_wake, vm);
	if (rc == 0)
		rc = udev_init(&vm->dev, &dc, &vm->loop);
	if (rc < 0)
		return rc;
	vm->have_dev = true;
	rc = systemd_pick_socket(cfg, vm->idx, &sock);
	if (rc == 0)
		rc = server_start_on(&vm->srv, &vm->loop, vm->name, &sock, &eng);
	if (rc < 0)
		return rc;
	vm->have_srv = true;
	log_info("%s: guest CID %llu, vhost-user socket %s, hybrid socket %s, groups %s, "
		 "buffer %u, queue size up to %u", vm->name, (unsigned long long)vc->cid,
		 vc->socket_path ? vc->socket_path : "(inherited)", vc->uds_path,
		 vc->groups ? vc->groups : CLI_DEFAULT_GROUPS, vc->tx_buffer_size, vc->queue_size);
	return 0;
}

/* Tear one VM down; its thread (if any) is joined. */
static void vm_teardown(struct user_vm *vm)
{
	if (vm->have_srv)
		server_stop(&vm->srv);
	if (vm->have_dev)
		udev_fini(&vm->dev);
	if (vm->have_loop) {
		loop_del(&vm->loop, &vm->wake_w);
		loop_fini(&vm->loop);
	}
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	vm->have_srv = vm->have_dev = vm->have_loop = false;
	vm->wake_fd = -1;
}

static int hub_setup(struct user_engine *ue, const struct config *cfg)
{
	sib_hub_init(&ue->hub);
	for (unsigned int i = 0; i < ue->n; i++) {
		const struct vm_config *vc = &cfg->vms[i];
		struct user_vm *vm = &ue->vms[i];

		vm->ue = ue;
		vm->idx = i;
		vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		vm->wake_w.fd = -1;
		atomic_init(&vm->stop, false);
		snprintf(vm->name, sizeof(vm->name), "cid%llu", (unsigned long long)vc->cid);
		if (vm->wake_fd < 0)
			return -errno;
		if (sib_hub_add(&ue->hub, vc->cid, vc->groups ? vc->groups : CLI_DEFAULT_GROUPS,
				vm->wake_fd) < 0)
			return -ENOSPC;
	}
	return sib_hub_link(&ue->hub, SIB_DEFAULT_CAPACITY);
}

static void engine_free(struct user_engine *ue)
{
	for (unsigned int i = 0; i < ue->n; i++)
		vm_teardown(&ue->vms[i]);
	sib_hub_fini(&ue->hub);
	free(ue->vms);
	ue->vms = NULL;
	if (ue->done_fd >= 0)
		close(ue->done_fd);
	ue->done_fd = -1;
	ue->n = 0;
}

static void stop_threads(struct user_engine *ue)
{
	for (unsigned int i = 0; i < ue->n; i++) {
		struct user_vm *vm = &ue->vms[i];

		if (!vm->have_thread)
			continue;
		atomic_store(&vm->stop, true);
		eventfd_write(vm->wake_fd, 1);
	}
	for (unsigned int i = 0; i < ue->n; i++) {
		struct user_vm *vm = &ue->vms[i];

		if (vm->have_thread)
			pthread_join(vm->thread, NULL);
		vm->have_thread = false;
	}
}

static int start_threads(struct user_engine *ue)
{
	for (unsigned int i = 0; i < ue->n; i++) {
		struct user_vm *vm = &ue->vms[i];
		int rc = pthread_create(&vm->thread, NULL, vm_thread, vm);

		if (rc) {
			log_err("%s: cannot start a thread: %s", vm->name, strerror(rc));
			return -rc;
		}
		vm->have_thread = true;
	}
	return 0;
}

/*
 * Every guest connection holds a host socket (up to 1024 per VM), far past
 * the usual soft limit of 1024 fds: take what the hard limit allows.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_debug("open file limit raised to %llu", (unsigned long long)rl.rlim_cur);
}

int user_engine_start(struct user_engine *ue, const struct config *cfg)
{
	int rc;

	memset(ue, 0, sizeof(*ue));
	ue->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ue->vms = calloc(cfg->nvms, sizeof(*ue->vms));
	if (ue->done_fd < 0 || !ue->vms) {
		log_err("cannot set up the userspace engine: %s", strerror(errno));
		free(ue->vms);
		if (ue->done_fd >= 0)
			close(ue->done_fd);
		return -ENOMEM;
	}
	ue->n = cfg->nvms;
	for (unsigned int i = 0; i < ue->n; i++)
		ue->vms[i].wake_fd = -1;
	/* the first line decides the log format before threads exist (log.c) */
	log_info("userspace engine: %u VM%s", ue->n, ue->n == 1 ? "" : "s");
	raise_fd_limit();
	rc = hub_setup(ue, cfg);
	if (rc < 0)
		log_err("cannot set up sibling routing: %s", strerror(-rc));
	for (unsigned int i = 0; rc == 0 && i < ue->n; i++)
		rc = vm_setup(&ue->vms[i], cfg);
	if (rc == 0)
		rc = start_threads(ue);
	if (rc < 0) {
		stop_threads(ue);
		engine_free(ue);
	}
	return rc;
}

int user_engine_done_fd(const struct user_engine *ue)
{
	return ue->done_fd;
}

int user_engine_stop(struct user_engine *ue)
{
	int rc = 0;

	stop_threads(ue);
	for (unsigned int i = 0; i < ue->n; i++) {
		if (ue->vms[i].rc < 0)
			rc = -EIO;
	}
	engine_free(ue);
	return rc;
}
