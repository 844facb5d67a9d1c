/* SPDX-License-Identifier: MIT */
/*
 * vvu_daemon_model: the whole daemon (daemon_main) in this process, its VFIO
 * device being the VVU model and, for the kernel engine, its vhost device
 * the test double (tests/unit/vhost_double.c). A front end connects to the
 * model's socket as it would to the daemon's, so
 *
 *   vvu_daemon_model --model-socket S --vfio 0000:00:05.0 --uds-path H
 *
 * behaves to it like "vhost-user-vsock --socket S --uds-path H".
 *
 * Options of its own (taken out of argv before the daemon sees it):
 *   --model-socket PATH      where the bridge listens
 *   --model-fault NAME[@N]   a fault of enum vvm_fault (at rx message N+1)
 *   --model-record DIR       write each session's rxq messages to DIR
 *   --model-shm-size BYTES   BAR 4 size (a power of two)
 *   --model-device-id ID     PCI device id (0x107d: crosvm's)
 * And so the integration suites run over the model unchanged: a plain
 * "--socket PATH" (or --socket-path) with no --vfio becomes "--model-socket
 * PATH --vfio 0000:00:05.0".
 *
 * Exit status: daemon_main's.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "vhost_double.h"
#include "vvu_model.h"

#define MODEL_PCI_NAME "0000:00:05.0"
#define MAX_ARGS 256

struct model_opts {
	const char *socket;
	const char *record;
	struct vvm_config cfg;
};

static int parse_fault(const char *s, struct vvm_config *cfg)
{
	char name[32];
	const char *at = strchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);

	if (n >= sizeof(name))
		return -EINVAL;
	memcpy(name, s, n);
	name[n] = '\0';
	if (vvm_fault_parse(name, &cfg->fault) < 0)
		return -EINVAL;
	cfg->fault_at = at ? (unsigned int)strtoul(at + 1, NULL, 0) : 0;
	return 0;
}

/* One of ours at argv[i] (with its value at argv[i + 1]). Return: 1 taken, 0 not ours, -EINVAL. */
static int take_option(struct model_opts *o, char **argv, int i, int argc)
{
	const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

	if (strncmp(opt, "--model-", 8) != 0)
		return 0;
	if (!val) {
		fprintf(stderr, "vvu_daemon_model: %s needs a value\n", opt);
		return -EINVAL;
	}
	if (strcmp(opt, "--model-socket") == 0)
		o->socket = val;
	else if (strcmp(opt, "--model-record") == 0)
		o->record = val;
	else if (strcmp(opt, "--model-shm-size") == 0)
		o->cfg.shm_size = strtoull(val, NULL, 0);
	else if (strcmp(opt, "--model-device-id") == 0)
		o->cfg.device_id = (uint16_t)strtoul(val, NULL, 0);
	else if (strcmp(opt, "--model-fault") != 0 || parse_fault(val, &o->cfg) < 0) {
		fprintf(stderr, "vvu_daemon_model: bad option %s %s\n", opt, val);
		return -EINVAL;
	}
	return 1;
}

/* The daemon's argv: ours removed, --socket turned into the model's socket. */
static int build_argv(struct model_opts *o, int argc, char **argv, char **out, int *outc)
{
	bool have_vfio = false;
	const char *sock = NULL;
	int n = 0;

	for (int i = 0; i < argc; i++)
		have_vfio |= strcmp(argv[i], "--vfio") == 0 || strncmp(argv[i], "--vfio=", 7) == 0;
	for (int i = 0; i < argc && n < MAX_ARGS - 3; i++) {
		int rc = i > 0 ? take_option(o, argv, i, argc) : 0;

		if (rc < 0)
			return rc;
		if (rc == 1) {
			i++;
			continue;
		}
		if (!have_vfio && i + 1 < argc &&
		    (strcmp(argv[i], "--socket") == 0 || strcmp(argv[i], "--socket-path") == 0)) {
			sock = argv[++i];
			continue;
		}
		out[n++] = argv[i];
	}
	if (!o->socket)
		o->socket = sock;
	if (!have_vfio) {
		out[n++] = "--vfio";
		out[n++] = MODEL_PCI_NAME;
	}
	out[n] = NULL;
	*outc = n;
	if (!o->socket) {
		fprintf(stderr, "vvu_daemon_model: --model-socket PATH (or --socket PATH) is needed\n");
		return -EINVAL;
	}
	return 0;
}

/* One line for the log: tests read the device's view of the run from it. */
static void print_stats(struct vvm *m)
{
	struct vvm_stats st;

	vvm_stats(m, &st);
	fprintf(stderr,
		"vvu model: rx %lu, disconnects %lu, tx %lu, dma faults %lu, ring faults %lu, "
		"doorbells %lu (%lu without target), notifications %lu, resets %lu, "
		"back-end requests dropped %lu, faults injected %lu\n",
		st.rx_msgs, st.rx_disconnects, st.tx_msgs, st.dma_faults, st.ring_faults, st.doorbells,
		st.doorbells_lost, st.notifications, st.resets, st.backend_dropped, st.faults_injected);
}

int main(int argc, char **argv)
{
	static char *dargv[MAX_ARGS + 1];
	struct model_opts o = { 0 };
	struct daemon_env env = { .vfio_open = vvm_vfio_open, .vhost = &vhd_ops };
	struct vvm *m = NULL;
	struct vvb *b = NULL;
	sigset_t set;
	int dargc, rc;

	if (build_argv(&o, argc, argv, dargv, &dargc) < 0)
		return 2;
	/*
	 * The daemon takes SIGTERM/SIGINT through a signalfd with the signals
	 * blocked in its thread; block them before the bridge thread exists so
	 * that it inherits the mask and a signal cannot end the process there.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	rc = vvm_new(&m, &o.cfg);
	if (rc == 0)
		rc = vvb_start(&b, m, o.socket, o.record);
	if (rc < 0) {
		fprintf(stderr, "vvu_daemon_model: cannot start the model: %s\n", strerror(-rc));
		vvm_free(m);
		return 1;
	}
	if (o.cfg.fault != VVM_FAULT_NONE)
		fprintf(stderr, "vvu model: fault %s at message %u\n", vvm_fault_name(o.cfg.fault),
			o.cfg.fault_at + 1);
	vvm_vfio_attach(m);
	rc = daemon_main(dargc, dargv, &env);
	vvm_vfio_attach(NULL);
	vvb_stop(b);
	print_stats(m);
	vvm_free(m);
	return rc;
}
