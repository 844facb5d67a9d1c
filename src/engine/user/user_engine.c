// SPDX-License-Identifier: MIT
/*
 * Userspace engine: the VMs, their threads and their sockets (see
 * user_engine.h). Each VM's loop watches its vhost-user socket (server.c),
 * its hybrid sockets and host connections (device.c) and one eventfd,
 * wake_fd, through which other threads reach it: the main thread to stop
 * it (the stop flag is set first) or to ask for a snapshot (snap_asked is
 * set first), siblings when its inbox fills or when theirs has room again.
 *
 * The wake eventfds of the VMs in the sibling hub belong to the engine,
 * not to the VMs: a sibling may still write to a removed VM's eventfd
 * (sib_set_open() wakes waiters), so it stays open until the engine stops.
 */
#include "engine/user/user_engine.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "daemon/systemd.h"
#include "engine/user/hybrid.h"
#include "util/log.h"

#define USER_MMAP_THRESHOLD (128 * 1024) /* glibc's default */

_Static_assert(CLI_MAX_VMS <= SIB_MAX_PORTS, "every VM needs a sibling port");
/* what the command line accepts, the engine must accept too */
_Static_assert(CLI_MAX_MAX_CONNECTIONS <= CONN_TABLE_MAX_CONNS_LIMIT, "connection cap");
_Static_assert(CLI_MAX_TX_BUFFER_SIZE <= CONN_TABLE_MAX_BUF_ALLOC, "buffer size cap");
_Static_assert(CLI_DEFAULT_MAX_CONNECTIONS == CONN_TABLE_DEFAULT_MAX_CONNS, "default cap");
_Static_assert(CLI_DEFAULT_MAX_PENDING == HYBRID_DEFAULT_MAX_PENDING, "default handshakes");
_Static_assert(CLI_DEFAULT_HANDSHAKE_TIMEOUT_MS == HYBRID_DEFAULT_TIMEOUT_MS, "default time");
_Static_assert(CLI_DEFAULT_CONNECT_TIMEOUT_MS == CONN_DEFAULT_CONNECT_TIMEOUT_MS, "connect");

/* ---- the VM thread --------------------------------------------------------- */

static void snap_fill(struct user_vm *vm, struct ustats_snap *s)
{
	s->c = vm->stats;
	s->frontend = vm->have_srv && server_connected(&vm->srv);
	s->sessions = vm->have_srv ? vm->srv.sessions : 0;
	if (vm->have_srv)
		server_get_tstats(&vm->srv, &s->transport);
	else
		s->transport = (struct server_tstats){ .kind = "unix" };
	udev_snapshot(&vm->dev, s);
}

/* On the VM thread: answer a pending snapshot request. */
static void snap_serve(struct user_vm *vm)
{
	pthread_mutex_lock(&vm->snap_lock);
	if (vm->snap_out && vm->snap_done != vm->snap_req) {
		snap_fill(vm, vm->snap_out);
		vm->snap_done = vm->snap_req;
		pthread_cond_broadcast(&vm->snap_cond);
	}
	pthread_mutex_unlock(&vm->snap_lock);
}

static void on_wake(void *ctx, uint32_t events)
{
	struct user_vm *vm = ctx;
	eventfd_t v;

	(void)events;
	eventfd_read(vm->wake_fd, &v);
	if (atomic_load(&vm->stop)) {
		udev_farewell(&vm->dev);
		loop_stop(&vm->loop);
		return;
	}
	if (atomic_load(&vm->snap_asked))
		snap_serve(vm);
	udev_wake(&vm->dev);
}

static void *vm_thread(void *arg)
{
	struct user_vm *vm = arg;

	ustats_cur = &vm->stats;
	vm->rc = loop_run(&vm->loop);
	if (vm->rc == 0 && vm->srv.failed)
		vm->rc = vm->srv.failed; /* its VVU device was given up on (logged) */
	if (vm->rc < 0)
		log_err("%s: event loop failed: %s", vm->name, strerror(-vm->rc));
	/* stopped by us, or a one-shot front end is gone: let the main thread know */
	if (!atomic_load(&vm->stop))
		eventfd_write(vm->ue->done_fd, 1);
	return NULL;
}

static int thread_start(struct user_vm *vm)
{
	int rc = pthread_create(&vm->thread, NULL, vm_thread, vm);

	if (rc) {
		log_err("%s: cannot start a thread: %s", vm->name, strerror(rc));
		return -rc;
	}
	vm->have_thread = true;
	return 0;
}

static void thread_stop(struct user_vm *vm)
{
	if (!vm->have_thread)
		return;
	atomic_store(&vm->stop, true);
	eventfd_write(vm->wake_fd, 1);
	pthread_join(vm->thread, NULL);
	vm->have_thread = false;
}

/* ---- one VM ------------------------------------------------------------------ */

/* Where the front ends of @vm come from: an inherited socket or its path. */
static int vm_socket(struct user_vm *vm, struct server_socket *sock)
{
	const struct config *cfg = vm->ue->cfg;

	/* --vfio: the single device's front end comes through the VVU device */
	if (cfg->vfio && vm->port == 0) {
		*sock = (struct server_socket){ .fd = -1, .vfio = cfg->vfio,
						.vfio_open = cfg->vfio_open };
		return 0;
	}
	if (vm->port >= 0 && (unsigned int)vm->port < cfg->nvms)
		return systemd_pick_socket(cfg, (unsigned int)vm->port, sock);
	*sock = (struct server_socket){
		.path = vm->vc.socket_path, .fd = -1, .listening = true,
		.mode = (mode_t)vm->vc.socket_mode,
	};
	return 0;
}

static void vm_log(const struct user_vm *vm)
{
	const struct vm_config *vc = &vm->vc;

	log_info("%s: guest CID %llu, vhost-user socket %s, hybrid socket %s, groups %s, "
		 "buffer %u, queue size up to %u%s", vm->name, (unsigned long long)vc->cid,
		 vm->inherited ? "(inherited)" : vm->srv.vvu ? "(vfio)" : vc->socket_path,
		 vc->uds_path ? vc->uds_path : "none (forwarding only)",
		 vc->groups ? vc->groups : CLI_DEFAULT_GROUPS, vc->tx_buffer_size, vc->queue_size,
		 vm->port < 0 ? " (added at run time: no sibling routing)" : "");
	if (vc->forward) {
		char ports[CLI_MAX_FORWARD_LISTEN * 22] = "";
		size_t off = 0;

		for (unsigned int i = 0; i < vc->nforward_listen && off < sizeof(ports); i++)
			off += (size_t)snprintf(ports + off, sizeof(ports) - off, "%s%u%s",
						i ? "+" : "", vc->forward_listen[i].port,
						vc->forward_listen[i].seqpacket ? "/seqpacket" : "");
		log_info("%s: forwarding: guest connections to host port P go to AF_VSOCK %u:P%s; "
			 "host AF_VSOCK ports bridged into the guest: %s", vm->name,
			 vc->forward_cid, vc->uds_path ? " (not to the hybrid sockets)" : "",
			 vc->nforward_listen ? ports : "none");
	}
	log_info("%s: limits: %u connections, %u pending host connects, CONNECT line within "
		 "%u ms, guest answer within %u ms; socket files mode %04o", vm->name,
		 vc->max_connections, vc->max_pending_connects, vc->handshake_timeout_ms,
		 vc->connect_timeout_ms, vc->socket_mode);
}

/* The device and the vhost-user socket of VM @vm, on its own loop. */
static int vm_setup(struct user_vm *vm)
{
	const struct vm_config *vc = &vm->vc;
	struct udev_cfg dc = {
		.name = vm->name,
		.cid = vc->cid,
		.uds_path = vc->uds_path,
		.buf_alloc = vc->tx_buffer_size,
		.max_queue_size = vc->queue_size,
		.hub = vm->port >= 0 ? &vm->ue->hub : NULL,
		.port = vm->port >= 0 ? (unsigned int)vm->port : 0,
		.max_conns = vc->max_connections,
		.connect_timeout_ms = vc->connect_timeout_ms,
		.forward = vc->forward,
		.forward_cid = vc->forward_cid,
		.forward_listen = vc->forward_listen,
		.nforward_listen = vc->nforward_listen,
		.hybrid = {
			.max_pending = vc->max_pending_connects,
			.timeout_ms = vc->handshake_timeout_ms,
			.mode = (mode_t)vc->socket_mode,
		},
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
	loop_set_poll(&vm->loop, vc->poll_us);
	vm->have_loop = true;
	rc = loop_add(&vm->loop, &vm->wake_w, vm->wake_fd, EPOLLIN, on_wake, vm);
	if (rc == 0)
		rc = udev_init(&vm->dev, &dc, &vm->loop);
	if (rc < 0)
		return rc;
	vm->have_dev = true;
	rc = vm_socket(vm, &sock);
	vm->inherited = rc == 0 && sock.fd >= 0;
	if (rc == 0)
		rc = server_start_on(&vm->srv, &vm->loop, vm->name, &sock, &eng);
	if (rc < 0)
		return rc;
	vm->have_srv = true;
	vm_log(vm);
	return 0;
}

static void vm_config_release(struct vm_config *vc)
{
	free(vc->socket_path);
	free(vc->uds_path);
	free(vc->groups);
	memset(vc, 0, sizeof(*vc));
}

static int vm_config_copy(struct vm_config *dst, const struct vm_config *src)
{
	*dst = *src;
	dst->socket_path = src->socket_path ? strdup(src->socket_path) : NULL;
	dst->uds_path = src->uds_path ? strdup(src->uds_path) : NULL;
	dst->groups = strdup(src->groups ? src->groups : CLI_DEFAULT_GROUPS);
	if ((src->socket_path && !dst->socket_path) || (src->uds_path && !dst->uds_path) ||
	    !dst->groups) {
		vm_config_release(dst);
		return -ENOMEM;
	}
	return 0;
}

/* A VM with nothing set up yet; @wake_fd is the hub's (port >= 0) or -1. */
static struct user_vm *vm_new(struct user_engine *ue, unsigned int idx, int port,
			      const struct vm_config *vc)
{
	struct user_vm *vm = calloc(1, sizeof(*vm));
	pthread_condattr_t ca;

	if (!vm)
		return NULL;
	if (vm_config_copy(&vm->vc, vc) < 0) {
		free(vm);
		return NULL;
	}
	vm->ue = ue;
	vm->idx = idx;
	vm->port = port;
	vm->wake_w.fd = -1;
	vm->wake_fd = port >= 0 ? ue->hub_wake[port] : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	atomic_init(&vm->stop, false);
	atomic_init(&vm->snap_asked, false);
	snprintf(vm->name, sizeof(vm->name), "cid%llu", (unsigned long long)vc->cid);
	pthread_mutex_init(&vm->snap_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&vm->snap_cond, &ca);
	pthread_condattr_destroy(&ca);
	if (vm->wake_fd < 0) {
		vm_config_release(&vm->vc);
		free(vm);
		return NULL;
	}
	return vm;
}

/* Tear one VM down (its thread is joined first) and free it. */
static void vm_free(struct user_vm *vm)
{
	thread_stop(vm);
	if (vm->have_srv)
		server_stop(&vm->srv);
	if (vm->have_dev)
		udev_fini(&vm->dev);
	if (vm->have_loop) {
		loop_del(&vm->loop, &vm->wake_w);
		loop_fini(&vm->loop);
	}
	if (vm->port < 0 && vm->wake_fd >= 0)
		close(vm->wake_fd);
	pthread_cond_destroy(&vm->snap_cond);
	pthread_mutex_destroy(&vm->snap_lock);
	vm_config_release(&vm->vc);
	free(vm);
}

/* ---- the engine ---------------------------------------------------------------- */

static int hub_setup(struct user_engine *ue, const struct config *cfg)
{
	sib_hub_init(&ue->hub);
	for (unsigned int i = 0; i < cfg->nvms; i++) {
		const struct vm_config *vc = &cfg->vms[i];

		ue->hub_wake[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ue->hub_wake[i] < 0)
			return -errno;
		/* the groups string is cfg's, which outlives the hub */
		if (sib_hub_add(&ue->hub, vc->cid, vc->groups ? vc->groups : CLI_DEFAULT_GROUPS,
				ue->hub_wake[i]) != (int)i)
			return -ENOSPC;
	}
	return sib_hub_link(&ue->hub, SIB_DEFAULT_CAPACITY);
}

static void engine_free(struct user_engine *ue)
{
	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		if (ue->vm[i])
			vm_free(ue->vm[i]);
		ue->vm[i] = NULL;
	}
	sib_hub_fini(&ue->hub);
	for (unsigned int i = 0; i < SIB_MAX_PORTS; i++) {
		if (ue->hub_wake[i] >= 0)
			close(ue->hub_wake[i]);
		ue->hub_wake[i] = -1;
	}
	if (ue->done_fd >= 0)
		close(ue->done_fd);
	ue->done_fd = -1;
	ue->n = 0;
	ue->running = false;
}

/*
 * Every guest connection holds a host socket (up to 1024 per VM), far past
 * the usual soft limit of 1024 fds: take what the hard limit allows.
 * Return: the limit now in force (read once: the sandbox may refuse
 * getrlimit later, when "vm add" needs it).
 */
static uint64_t raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return UINT64_MAX;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit want = { rl.rlim_max, rl.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &want) == 0) {
			rl = want;
			log_debug("open file limit raised to %llu", (unsigned long long)rl.rlim_cur);
		}
	}
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/*
 * Can @nvms VMs have their front ends attached within the open file
 * limit? A VM's own descriptors (USER_VM_FDS) are counted, not its guest
 * connections' host sockets, which its max-connections bounds and whose
 * accept() fails cleanly (EMFILE) when the limit is reached.
 * Return: 0, or -EMFILE with @err saying so.
 */
static int check_fd_room(const struct user_engine *ue, unsigned int nvms, char *err,
			 size_t errlen)
{
	uint64_t need = (uint64_t)nvms * USER_VM_FDS + USER_DAEMON_FDS;

	if (need <= ue->fd_limit)
		return 0;
	snprintf(err, errlen, "%u VMs need about %llu file descriptors (%u per VM with its front "
		 "end, before guest connections), but the open file limit (RLIMIT_NOFILE) is %llu: "
		 "raise it (ulimit -n, or LimitNOFILE= in the service unit)", nvms,
		 (unsigned long long)need, USER_VM_FDS, (unsigned long long)ue->fd_limit);
	return -EMFILE;
}

static int start_vms(struct user_engine *ue, const struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nvms; i++) {
		struct user_vm *vm = vm_new(ue, i, (int)i, &cfg->vms[i]);
		int rc;

		if (!vm) {
			log_err("cannot set up VM %u: out of memory", i);
			return -ENOMEM;
		}
		ue->vm[i] = vm;
		ue->n++;
		rc = vm_setup(vm);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int user_engine_start(struct user_engine *ue, const struct config *cfg)
{
	char why[256];
	int rc;

	memset(ue, 0, sizeof(*ue));
	ue->cfg = cfg;
	for (unsigned int i = 0; i < SIB_MAX_PORTS; i++)
		ue->hub_wake[i] = -1;
	ue->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ue->done_fd < 0) {
		log_err("cannot set up the userspace engine: %s", strerror(errno));
		return -errno;
	}
	/*
	 * Each VM's large buffers (the rx batch's iovecs, sibling inboxes)
	 * must stay mmap()ed, untouched until used. glibc raises its mmap
	 * threshold when a large block is freed (parsing a big --config does
	 * that), and then serves them from the heap and calloc() clears them:
	 * 125 KiB of RSS per idle VM at 1,000 VMs instead of 50. A fixed
	 * threshold keeps the glibc default without that adjustment.
	 */
	mallopt(M_MMAP_THRESHOLD, USER_MMAP_THRESHOLD);
	/* the first line decides the log format before threads exist (log.c) */
	log_info("userspace engine: %u VM%s", cfg->nvms, cfg->nvms == 1 ? "" : "s");
	ue->fd_limit = raise_fd_limit();
	rc = check_fd_room(ue, cfg->nvms, why, sizeof(why));
	if (rc < 0) {
		log_err("%s", why);
		engine_free(ue);
		return rc;
	}
	rc = hub_setup(ue, cfg);
	if (rc < 0)
		log_err("cannot set up sibling routing: %s", strerror(-rc));
	if (rc == 0)
		rc = start_vms(ue, cfg);
	if (rc < 0)
		engine_free(ue);
	return rc;
}

int user_engine_run(struct user_engine *ue)
{
	ue->running = true;
	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		int rc = ue->vm[i] ? thread_start(ue->vm[i]) : 0;

		if (rc < 0)
			return rc;
	}
	return 0;
}

int user_engine_done_fd(const struct user_engine *ue)
{
	return ue->done_fd;
}

int user_engine_stop(struct user_engine *ue)
{
	int rc = 0;

	/* ask every thread first, so they wind down together */
	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		struct user_vm *vm = ue->vm[i];

		if (vm && vm->have_thread) {
			atomic_store(&vm->stop, true);
			eventfd_write(vm->wake_fd, 1);
		}
	}
	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		struct user_vm *vm = ue->vm[i];

		if (!vm)
			continue;
		thread_stop(vm);
		if (vm->rc < 0)
			rc = -EIO;
	}
	engine_free(ue);
	return rc;
}

/* ---- run-time changes ---------------------------------------------------------- */

static bool same_path(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Does one of @vm's socket files have the name @path? */
static bool vm_has_path(const struct user_vm *vm, const char *path)
{
	char seq[256] = "";

	if (vm->vc.uds_path)
		snprintf(seq, sizeof(seq), "%s%s", vm->vc.uds_path, HYBRID_SEQPACKET_SUFFIX);
	return (!vm->inherited && same_path(vm->vc.socket_path, path)) ||
	       same_path(vm->vc.uds_path, path) || (seq[0] && same_path(seq, path));
}

/* Return: 0, or -EEXIST with @err naming what is taken and by whom. */
static int check_unique(const struct user_engine *ue, const struct vm_config *vc, char *err,
			size_t errlen)
{
	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		const struct user_vm *vm = ue->vm[i];
		const char *clash = NULL;
		char seq[256] = "";

		if (!vm)
			continue;
		if (vc->uds_path)
			snprintf(seq, sizeof(seq), "%s%s", vc->uds_path, HYBRID_SEQPACKET_SUFFIX);
		if (vm->vc.cid == vc->cid) {
			snprintf(err, errlen, "vm add: guest CID %llu is already served by %s",
				 (unsigned long long)vc->cid, vm->name);
			return -EEXIST;
		}
		if (vm_has_path(vm, vc->socket_path))
			clash = vc->socket_path;
		else if (vm_has_path(vm, vc->uds_path) || (seq[0] && vm_has_path(vm, seq)))
			clash = vc->uds_path;
		if (clash) {
			snprintf(err, errlen, "vm add: socket path %s is already used by %s", clash,
				 vm->name);
			return -EEXIST;
		}
	}
	return 0;
}

static bool forwards_at_start(const struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nvms; i++) {
		if (cfg->vms[i].forward)
			return true;
	}
	return false;
}

static int free_slot(const struct user_engine *ue)
{
	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		if (!ue->vm[i])
			return (int)i;
	}
	return -ENOSPC;
}

struct user_vm *user_engine_add(struct user_engine *ue, const struct vm_config *vc, char *err,
				size_t errlen)
{
	int slot = free_slot(ue), rc;
	struct user_vm *vm;
	char why[256];

	if (check_unique(ue, vc, err, errlen) < 0)
		return NULL;
	if (vc->forward && !forwards_at_start(ue->cfg)) {
		/* the seccomp filter allows AF_VSOCK sockets only when started so */
		snprintf(err, errlen, "vm add: forward-cid needs a VM that forwards from start-up "
			 "(the sandbox allows AF_VSOCK sockets only then)");
		return NULL;
	}
	if (slot < 0) {
		snprintf(err, errlen, "vm add: the daemon serves %u VMs already, the most it can",
			 CLI_MAX_VMS);
		return NULL;
	}
	if (check_fd_room(ue, ue->n + 1, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "vm add: %s", why);
		return NULL;
	}
	vm = vm_new(ue, (unsigned int)slot, -1, vc);
	if (!vm) {
		snprintf(err, errlen, "vm add: out of memory");
		return NULL;
	}
	rc = vm_setup(vm);
	if (rc == 0 && ue->running)
		rc = thread_start(vm);
	if (rc < 0) {
		snprintf(err, errlen, "vm add: cannot set up %s: %s (the daemon's log says more)",
			 vm->name, strerror(-rc));
		vm_free(vm);
		return NULL;
	}
	ue->vm[slot] = vm;
	ue->n++;
	log_info("%s: added at run time", vm->name);
	return vm;
}

struct user_vm *user_engine_find(struct user_engine *ue, const char *target)
{
	uint64_t cid = 0;
	bool by_cid = cli_parse_cid(target, &cid) == 0;

	for (unsigned int i = 0; i < CLI_MAX_VMS; i++) {
		struct user_vm *vm = ue->vm[i];

		if (vm && ((by_cid && vm->vc.cid == cid) || vm_has_path(vm, target)))
			return vm;
	}
	return NULL;
}

void user_engine_remove(struct user_engine *ue, struct user_vm *vm)
{
	log_info("%s: removed at run time", vm->name);
	ue->vm[vm->idx] = NULL;
	ue->n--;
	vm_free(vm);
}

uint64_t user_engine_snapshot_ask(struct user_vm *vm, struct ustats_snap *s)
{
	uint64_t ticket;

	if (!vm->have_thread) {
		snap_fill(vm, s); /* nobody else runs it */
		return 0;
	}
	pthread_mutex_lock(&vm->snap_lock);
	vm->snap_out = s;
	ticket = ++vm->snap_req;
	atomic_store(&vm->snap_asked, true);
	pthread_mutex_unlock(&vm->snap_lock);
	eventfd_write(vm->wake_fd, 1);
	return ticket;
}

int user_engine_snapshot_wait(struct user_vm *vm, uint64_t ticket, const struct timespec *until)
{
	int rc = 0;

	if (ticket == 0)
		return 0;
	pthread_mutex_lock(&vm->snap_lock);
	while (vm->snap_done != ticket && rc == 0)
		rc = pthread_cond_timedwait(&vm->snap_cond, &vm->snap_lock, until);
	rc = vm->snap_done == ticket ? 0 : -ETIMEDOUT;
	vm->snap_out = NULL;
	atomic_store(&vm->snap_asked, false);
	pthread_mutex_unlock(&vm->snap_lock);
	return rc;
}

void user_engine_snapshot_deadline(struct timespec *until)
{
	clock_gettime(CLOCK_MONOTONIC, until);
	until->tv_sec += USER_SNAPSHOT_TIMEOUT_MS / 1000;
}

int user_engine_snapshot(struct user_engine *ue, struct user_vm *vm, struct ustats_snap *s)
{
	struct timespec until;

	(void)ue;
	user_engine_snapshot_deadline(&until);
	return user_engine_snapshot_wait(vm, user_engine_snapshot_ask(vm, s), &until);
}
