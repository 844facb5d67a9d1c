// SPDX-License-Identifier: MIT
/*
 * The daemon: parse the command line, set up the engine and the transport,
 * run the event loop until SIGTERM or SIGINT. Exit status: 0 clean exit,
 * 1 runtime failure, 2 usage error.
 *
 * Start-up order: sockets and devices first (as whoever started us), then
 * the control socket, then least privilege (sandbox.h: --user, seccomp)
 * while the daemon is still one thread, then the VM threads, then
 * readiness. "stats" and "vm" as the first argument run the control
 * socket client instead (client.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "control/client.h"
#include "control/control.h"
#include "control/ops.h"
#include "daemon/daemon.h"
#include "daemon/sandbox.h"
#include "daemon/server.h"
#include "daemon/systemd.h"
#include "engine/kernel/kernel.h"
#include "engine/user/user_engine.h"
#include "loop/loop.h"
#include "util/log.h"

static void on_signal(void *ctx, uint32_t events)
{
	struct loop *loop = ctx;

	(void)events;
	loop_stop(loop);
}

/* SIGTERM/SIGINT arrive as readable events so shutdown runs in the loop. */
static int watch_signals(struct loop *loop, struct loop_watch *w)
{
	sigset_t set;
	int fd, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	rc = loop_add(loop, w, fd, EPOLLIN, on_signal, loop);
	if (rc < 0)
		close(fd);
	return rc;
}

static void unwatch_signals(struct loop *loop, struct loop_watch *w)
{
	int fd = w->fd;

	if (fd < 0)
		return;
	loop_del(loop, w);
	close(fd);
}

/* --control, when given: served on @loop by @ops. */
static int start_control(struct control *ctl, bool *have, struct loop *loop,
			 const struct config *cfg, const struct control_ops *ops, void *ctx)
{
	int rc;

	*have = false;
	if (!cfg->control_path)
		return 0;
	rc = control_start(ctl, loop, cfg->control_path, ops, ctx);
	*have = rc == 0;
	return rc;
}

/*
 * The kernel engine opens the vhost device for every front end: after a
 * change of user, make sure the new user still can, now rather than at
 * the first VMM.
 */
static int recheck_vhost(struct kern_engine *k, const struct config *cfg)
{
	if (!cfg->drop_privileges || kern_engine_probe(k) == 0)
		return 0;
	log_err("--user: uid %u cannot use %s: give it access (a group such as kvm, or a udev "
		"rule), or leave out --user", cfg->uid, cfg->vhost_path);
	return -EACCES;
}

static int kern_attach(void *priv)
{
	return kern_engine_open(priv);
}

static void kern_detach(void *priv)
{
	kern_engine_close(priv);
}

/* With the device's socket open: control socket, sandbox, then the loop. */
static int serve_kernel(struct loop *loop, const struct config *cfg, struct kern_engine *k,
			struct server *srv)
{
	struct control_kern_ctx cctx = { .k = k, .srv = srv, .cfg = cfg };
	struct control ctl;
	bool have_ctl = false;
	int rc = start_control(&ctl, &have_ctl, loop, cfg, &control_kern_ops, &cctx);

	if (rc == 0)
		rc = sandbox_enter(cfg);
	if (rc == 0)
		rc = recheck_vhost(k, cfg);
	if (rc == 0) {
		systemd_notify_ready();
		log_info("kernel engine: guest CID %llu, vhost device %s",
			 (unsigned long long)k->cid, cfg->vhost_path);
		rc = loop_run(loop);
		if (rc < 0)
			log_err("event loop failed: %s", strerror(-rc));
	}
	log_info("shutting down");
	if (have_ctl)
		control_stop(&ctl);
	return rc;
}

static int run_kernel_engine(const struct config *cfg, const struct daemon_env *env)
{
	struct kern_engine k;
	struct server srv;
	struct loop loop;
	struct loop_watch sig_w = { .fd = -1 };
	struct server_socket sock;
	struct server_engine eng = {
		.ops = &kern_dev_ops, .priv = &k, .attach = kern_attach, .detach = kern_detach,
	};
	int rc;

	if (systemd_pick_socket(cfg, 0, &sock) < 0)
		return EXIT_FAILURE;
	kern_engine_init(&k, env->vhost ? env->vhost : &kern_vhost_sys, cfg->vhost_path, cfg->vms[0].cid);
	if (kern_engine_probe(&k) < 0)
		return EXIT_FAILURE;
	rc = loop_init(&loop);
	if (rc < 0) {
		log_err("cannot create the event loop: %s", strerror(-rc));
		return EXIT_FAILURE;
	}
	rc = watch_signals(&loop, &sig_w);
	if (rc < 0) {
		log_err("cannot watch signals: %s", strerror(-rc));
		goto out_loop;
	}
	rc = server_start_on(&srv, &loop, "vsock", &sock, &eng);
	if (rc < 0)
		goto out_signals;
	rc = serve_kernel(&loop, cfg, &k, &srv);
	server_stop(&srv);
out_signals:
	unwatch_signals(&loop, &sig_w);
out_loop:
	loop_fini(&loop);
	return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The main loop: until a signal, or a VM whose inherited front end left. */
static int serve_user(struct loop *loop, struct user_engine *ue)
{
	struct loop_watch done_w = { .fd = -1 };
	int rc = loop_add(loop, &done_w, user_engine_done_fd(ue), EPOLLIN, on_signal, loop);

	if (rc < 0) {
		log_err("cannot watch the VM threads: %s", strerror(-rc));
		return rc;
	}
	systemd_notify_ready();
	rc = loop_run(loop);
	if (rc < 0)
		log_err("event loop failed: %s", strerror(-rc));
	loop_del(loop, &done_w);
	return rc;
}

/*
 * The userspace engine runs each VM on its own thread; this thread waits
 * for SIGTERM/SIGINT or a VM whose inherited front end left, and serves
 * the control socket.
 */
static int run_user_engine(const struct config *cfg)
{
	static struct user_engine ue;
	struct loop_watch sig_w = { .fd = -1 };
	struct control_user_ctx cctx = { .ue = &ue, .cfg = cfg };
	struct control ctl;
	bool have_ctl = false;
	struct loop loop;
	int rc, src;

	rc = loop_init(&loop);
	if (rc < 0) {
		log_err("cannot create the event loop: %s", strerror(-rc));
		return EXIT_FAILURE;
	}
	/* blocked before the VM threads exist, so that they inherit the mask */
	rc = watch_signals(&loop, &sig_w);
	if (rc < 0) {
		log_err("cannot watch signals: %s", strerror(-rc));
		goto out_loop;
	}
	rc = user_engine_start(&ue, cfg);
	if (rc < 0)
		goto out_signals;
	rc = start_control(&ctl, &have_ctl, &loop, cfg, &control_user_ops, &cctx);
	if (rc == 0)
		rc = sandbox_enter(cfg);
	if (rc == 0)
		rc = user_engine_run(&ue);
	if (rc == 0)
		rc = serve_user(&loop, &ue);
	log_info("shutting down");
	if (have_ctl)
		control_stop(&ctl);
	src = user_engine_stop(&ue);
	if (rc == 0)
		rc = src;
out_signals:
	unwatch_signals(&loop, &sig_w);
out_loop:
	loop_fini(&loop);
	return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int run(const struct config *cfg, const struct daemon_env *env)
{
	if (cfg->vfio) {
		log_err("--vfio %s: the virtio-vhost-user (VFIO) transport is not available in "
			"this version; use --socket PATH", cfg->vfio);
		return EXIT_FAILURE;
	}
	if (cfg->engine == ENGINE_USER)
		return run_user_engine(cfg);
	return run_kernel_engine(cfg, env);
}

int daemon_main(int argc, char **argv, const struct daemon_env *env)
{
	static struct config cfg;
	int status;

	if (argc > 1 && control_client_is_command(argv[1]))
		return control_client_main(argc, argv);
	switch (cli_parse(argc, argv, &cfg)) {
	case CLI_EXIT_OK:
		cli_config_free(&cfg);
		return EXIT_SUCCESS;
	case CLI_USAGE:
		cli_config_free(&cfg);
		return 2;
	case CLI_RUN:
		break;
	}
	log_set_level(cfg.log_level);
	signal(SIGPIPE, SIG_IGN);
	status = run(&cfg, env);
	cli_config_free(&cfg);
	return status;
}
