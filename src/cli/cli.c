// SPDX-License-Identifier: MIT
/*
 * Command-line parsing: getopt, then the rules that combine options. Every
 * refusal names the option and the reason and maps to exit status 2;
 * nothing here opens a socket or a device (an --fd is only inspected).
 *
 * --print-capabilities is honoured before anything else is parsed: QEMU's
 * conventions say that other options are then ignored, so a management
 * tool can probe the binary without knowing which options it needs.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/sandbox.h"
#include "daemon/systemd.h"
#include "transport/vvu/vfio.h"
#include "version.h"

enum {
	OPT_SOCKET = 's',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_VERBOSE = 'v',
	OPT_VFIO = 0x100,
	OPT_CID,
	OPT_VHOST_SOCKET,
	OPT_UDS_PATH,
	OPT_TX_BUFFER_SIZE,
	OPT_QUEUE_SIZE,
	OPT_GROUPS,
	OPT_VM,
	OPT_CONFIG,
	OPT_LOG_LEVEL,
	OPT_FD,
	OPT_PRINT_CAPS,
	OPT_SOCKET_MODE,
	OPT_MAX_CONNECTIONS,
	OPT_MAX_PENDING,
	OPT_HANDSHAKE_TIMEOUT,
	OPT_CONNECT_TIMEOUT,
	OPT_CONTROL,
	OPT_SANDBOX,
	OPT_USER,
	OPT_GROUP,
	OPT_FORWARD_CID,
	OPT_FORWARD_LISTEN,
	OPT_POLL_US,
};

#define PRINT_CAPS_OPTION "--print-capabilities"


static const struct option long_options[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "socket-path", required_argument, NULL, OPT_SOCKET },
	{ "fd", required_argument, NULL, OPT_FD },
	{ "print-capabilities", no_argument, NULL, OPT_PRINT_CAPS },
	{ "vfio", required_argument, NULL, OPT_VFIO },
	{ "cid", required_argument, NULL, OPT_CID },
	{ "guest-cid", required_argument, NULL, OPT_CID },
	{ "vhost-socket", required_argument, NULL, OPT_VHOST_SOCKET },
	{ "uds-path", required_argument, NULL, OPT_UDS_PATH },
	{ "tx-buffer-size", required_argument, NULL, OPT_TX_BUFFER_SIZE },
	{ "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
	{ "groups", required_argument, NULL, OPT_GROUPS },
	{ "socket-mode", required_argument, NULL, OPT_SOCKET_MODE },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "max-pending-connects", required_argument, NULL, OPT_MAX_PENDING },
	{ "handshake-timeout-ms", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT },
	{ "connect-timeout-ms", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "poll-us", required_argument, NULL, OPT_POLL_US },
	{ "forward-cid", required_argument, NULL, OPT_FORWARD_CID },
	{ "forward-listen", required_argument, NULL, OPT_FORWARD_LISTEN },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "sandbox", required_argument, NULL, OPT_SANDBOX },
	{ "user", required_argument, NULL, OPT_USER },
	{ "group", required_argument, NULL, OPT_GROUP },
	{ "vm", required_argument, NULL, OPT_VM },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* What the single-device options said, before the engine is known. */
struct single {
	struct vm_config vm;
	int socket, cid, vhost, uds, tx_buf, queue, groups, mode;
	int limits; /* a userspace resource bound was given */
	int fwd;    /* --forward-cid or --forward-listen */
	int vms_given;
	const char *config_path;
	int verbose;
	const char *user, *group; /* --user, --group as given */
};

void cli_usage(FILE *out)
{
	fprintf(out,
		"Usage:\n"
		"  vhost-user-vsock (--socket-path PATH | --fd N | --vfio PCI-NAME) --cid N\n"
		"                   [--vhost-socket PATH]\n"
		"  vhost-user-vsock (--socket-path PATH | --fd N | --vfio PCI-NAME)\n"
		"                   (--uds-path PATH | --forward-cid N | both)\n"
		"                   [--guest-cid N] [userspace options]\n"
		"  vhost-user-vsock --vm socket=PATH,uds-path=PATH[,guest-cid=N,...] [--vm ...]\n"
		"  vhost-user-vsock --config FILE.yaml\n"
		"  vhost-user-vsock --print-capabilities\n"
		"  vhost-user-vsock stats CONTROL-PATH [--json]\n"
		"  vhost-user-vsock vm add CONTROL-PATH socket=PATH,uds-path=PATH[,...]\n"
		"  vhost-user-vsock vm remove CONTROL-PATH SOCKET-PATH|CID\n"
		"\n"
		"A vhost-user virtio-vsock device back end. A VMM (QEMU, crosvm, ...) connects\n"
		"to the socket (with --vfio: through a virtio-vhost-user device). Kernel engine (default): the guest's rings are handed to the\n"
		"host's vhost-vsock device and data never passes through this daemon.\n"
		"Userspace engine (--uds-path, --forward-cid, --vm, --config): the daemon is the\n"
		"device and maps guest connections to host Unix sockets (hybrid vsock) or to\n"
		"host AF_VSOCK (forwarding).\n"
		"\n"
		"Options:\n"
		"  -s, --socket-path, --socket PATH\n"
		"                             listen for the VMM on the Unix socket PATH\n"
		"      --fd N                 serve the inherited Unix socket N (>= 3): a\n"
		"                             listening socket, or one connected VMM (the\n"
		"                             daemon exits when it leaves)\n"
		"      --print-capabilities   print the back end's capabilities as JSON, exit\n"
		"      --vfio PCI-NAME        serve through a virtio-vhost-user PCI device bound\n"
		"                             to vfio-pci (0000:00:05.0, 00:05.0 or sysfs path),\n"
		"                             from inside a device VM; no socket is bound\n"
		"      --cid, --guest-cid N   the guest's context id, 3 <= N < 4294967295\n"
		"                             (required for the kernel engine; default 3 otherwise)\n"
		"      --vhost-socket PATH    kernel engine: the vhost-vsock device\n"
		"                             (default " CLI_DEFAULT_VHOST_PATH ")\n"
		"      --uds-path PATH        userspace engine: hybrid vsock socket; guest\n"
		"                             connections to host port P go to PATH_P\n"
		"      --tx-buffer-size N     userspace: bytes buffered per connection (default %u)\n"
		"      --queue-size N         userspace: largest virtqueue size (default %u)\n"
		"      --groups G1+G2         userspace: sibling groups (default \"" CLI_DEFAULT_GROUPS "\")\n"
		"      --max-connections N    userspace: guest connections at once (default %u)\n"
		"      --max-pending-connects N\n"
		"                             userspace: host clients still to send their\n"
		"                             CONNECT line (default %u; more are closed)\n"
		"      --handshake-timeout-ms N\n"
		"                             userspace: time for a host client's CONNECT line\n"
		"                             (default %u)\n"
		"      --connect-timeout-ms N userspace: time for the guest to answer a host\n"
		"                             client's connection (default %u)\n"
		"      --poll-us N            userspace: after each event, the VM's thread polls\n"
		"                             for N more microseconds before it sleeps: lower\n"
		"                             latency for CPU time (default 0: off)\n"
		"      --forward-cid N        userspace: guest connections to host port P go to\n"
		"                             host AF_VSOCK (N, P) instead of PATH_P; N is 1\n"
		"                             (this host's loopback), 2 or 3..4294967294;\n"
		"                             without --uds-path: no hybrid sockets at all\n"
		"      --forward-listen P1+P2 userspace, with --forward-cid: listen on host\n"
		"                             AF_VSOCK port P (P/seqpacket: SOCK_SEQPACKET) and\n"
		"                             connect each client to the guest's port P\n"
		"      --socket-mode MODE     permissions of the socket files the daemon creates,\n"
		"                             octal (default 0600: owner only)\n"
		"      --vm KEY=VALUE,...     userspace: one device per --vm; keys socket, guest-cid,\n"
		"                             uds-path (or forward-cid), tx-buffer-size, queue-size, groups,\n"
		"                             socket-mode, max-connections, max-pending-connects,\n"
		"                             handshake-timeout-ms, connect-timeout-ms, poll-us,\n"
		"                             forward-cid, forward-listen\n"
		"      --config FILE          userspace: devices from a YAML file (a 'vms:' list\n"
		"                             with the --vm keys in snake_case)\n"
		"      --control PATH         a control socket (owner only) for live stats and,\n"
		"                             userspace engine, adding and removing VMs\n"
		"      --sandbox MODE         seccomp (default: a forbidden system call kills the\n"
		"                             daemon), seccomp-errno (it fails with EPERM), none\n"
		"      --user USER            after start-up, run as USER (name or uid)\n"
		"      --group GROUP          with --user: run as GROUP (default: USER's group)\n"
		"      --log-level LEVEL      error, warn, info (default), debug or trace\n"
		"  -v, --verbose              one more log level each time\n"
		"  -h, --help                 print this help and exit\n"
		"  -V, --version              print the version and exit\n"
		"\n"
		"Started by a systemd socket unit (LISTEN_FDS), a single device takes its\n"
		"socket from systemd and needs neither --socket-path nor --fd.\n"
		"\n"
		"Exit status: 0 clean exit, 1 runtime failure, 2 usage error.\n",
		CLI_DEFAULT_TX_BUFFER_SIZE, CLI_DEFAULT_QUEUE_SIZE, CLI_DEFAULT_MAX_CONNECTIONS,
		CLI_DEFAULT_MAX_PENDING, CLI_DEFAULT_HANDSHAKE_TIMEOUT_MS,
		CLI_DEFAULT_CONNECT_TIMEOUT_MS);
}

void cli_print_capabilities(FILE *out)
{
	/* QEMU's vhost-user.json defines no vsock-specific features */
	fprintf(out, "{\n  \"type\": \"vsock\",\n  \"features\": []\n}\n");
}

int cli_check_socket_fd(int fd, bool *listening)
{
	int domain, type, acc;
	socklen_t len = sizeof(int);

	if (fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return errno == ENOTSOCK ? -ENOTSOCK : -errno;
	if (domain != AF_UNIX)
		return -EAFNOSUPPORT;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	if (type != SOCK_STREAM)
		return -EPROTOTYPE;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0)
		return -errno;
	*listening = acc != 0;
	return 0;
}

const char *cli_socket_fd_error(int err)
{
	switch (err) {
	case -EBADF:
		return "is not open in this process (was it inherited across exec?)";
	case -ENOTSOCK:
		return "is not a socket";
	case -EAFNOSUPPORT:
		return "is not a Unix-domain socket";
	case -EPROTOTYPE:
		return "is not a stream (SOCK_STREAM) socket";
	default:
		return "cannot be inspected";
	}
}

static int parse_fd(const char *arg, struct config *cfg)
{
	uint32_t n;
	int rc;

	if (cfg->fd >= 0) {
		cli_error("--fd: give it once");
		return -EINVAL;
	}
	if (cli_parse_u32(arg, 0, INT_MAX, &n) < 0) {
		cli_error("--fd: '%s' is not a file descriptor number", arg);
		return -EINVAL;
	}
	if (n <= STDERR_FILENO) {
		cli_error("--fd %u: 0, 1 and 2 are stdin, stdout and stderr; the socket must be "
			  "3 or above", n);
		return -EINVAL;
	}
	rc = cli_check_socket_fd((int)n, &cfg->fd_listening);
	if (rc < 0) {
		cli_error("--fd %u: the descriptor %s", n, cli_socket_fd_error(rc));
		return rc;
	}
	cfg->fd = (int)n;
	return 0;
}

static int add_vm_spec(struct config *cfg, const char *spec)
{
	struct vm_config *vm;

	if (cfg->nvms >= CLI_MAX_VMS) {
		cli_error("--vm: at most %u devices", CLI_MAX_VMS);
		return -EINVAL;
	}
	vm = &cfg->vms[cfg->nvms++];
	cli_vm_defaults(vm);
	return cli_parse_vm_spec(vm, spec);
}

static int set_string(char **slot, const char *opt, const char *value)
{
	if (!value[0]) {
		cli_error("%s: the value is empty", opt);
		return -EINVAL;
	}
	free(*slot);
	*slot = strdup(value);
	return *slot ? 0 : -ENOMEM;
}

static int parse_limit(int opt, const char *arg, struct single *s);

/* Options that configure the single device; --vm/--config exclude them. */
static int parse_single(int opt, const char *arg, struct single *s, struct config *cfg)
{
	struct vm_config *vm = &s->vm;

	switch (opt) {
	case OPT_SOCKET:
		s->socket = 1;
		return set_string(&vm->socket_path, "--socket", arg);
	case OPT_CID:
		s->cid = 1;
		return cli_vm_set(vm, "--cid", "guest-cid", arg);
	case OPT_VHOST_SOCKET:
		s->vhost = 1;
		return set_string(&cfg->vhost_path, "--vhost-socket", arg);
	case OPT_UDS_PATH:
		s->uds = 1;
		return set_string(&vm->uds_path, "--uds-path", arg);
	case OPT_TX_BUFFER_SIZE:
		s->tx_buf = 1;
		return cli_vm_set(vm, "--tx-buffer-size", "tx-buffer-size", arg);
	case OPT_QUEUE_SIZE:
		s->queue = 1;
		return cli_vm_set(vm, "--queue-size", "queue-size", arg);
	case OPT_GROUPS:
		s->groups = 1;
		return cli_vm_set(vm, "--groups", "groups", arg);
	case OPT_SOCKET_MODE:
		s->mode = 1;
		return cli_vm_set(vm, "--socket-mode", "socket-mode", arg);
	case OPT_FORWARD_CID:
		s->fwd = 1;
		return cli_vm_set(vm, "--forward-cid", "forward-cid", arg);
	case OPT_FORWARD_LISTEN:
		s->fwd = 1;
		return cli_vm_set(vm, "--forward-listen", "forward-listen", arg);
	}
	return parse_limit(opt, arg, s);
}

/* The userspace engine's resource bounds and busy polling, one --vm key each. */
static int parse_limit(int opt, const char *arg, struct single *s)
{
	static const struct {
		int opt;
		const char *key;
	} keys[] = {
		{ OPT_MAX_CONNECTIONS, "max-connections" },
		{ OPT_MAX_PENDING, "max-pending-connects" },
		{ OPT_HANDSHAKE_TIMEOUT, "handshake-timeout-ms" },
		{ OPT_CONNECT_TIMEOUT, "connect-timeout-ms" },
		{ OPT_POLL_US, "poll-us" },
	};
	char origin[32];

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].opt != opt)
			continue;
		s->limits = 1;
		snprintf(origin, sizeof(origin), "--%s", keys[i].key);
		return cli_vm_set(&s->vm, origin, keys[i].key, arg);
	}
	return -EINVAL;
}

/* --control, --sandbox, --user, --group: how the daemon runs, whatever the engine. */
static int parse_operating(int opt, const char *arg, struct single *s, struct config *cfg)
{
	enum sandbox_mode mode;

	switch (opt) {
	case OPT_CONTROL:
		return set_string(&cfg->control_path, "--control", arg);
	case OPT_SANDBOX:
		if (sandbox_parse_mode(arg, &mode) < 0) {
			cli_error("--sandbox: '%s' is not one of seccomp, seccomp-errno, none", arg);
			return -EINVAL;
		}
		cfg->sandbox = mode;
		return 0;
	case OPT_USER:
		s->user = arg;
		return 0;
	default:
		s->group = arg;
		return 0;
	}
}

/* Return: CLI_RUN to go on, or the final result. */
static int parse_one(int opt, const char *arg, struct single *s, struct config *cfg)
{
	switch (opt) {
	case OPT_VFIO:
		return set_string(&cfg->vfio, "--vfio", arg) < 0 ? CLI_USAGE : CLI_RUN;
	case OPT_FD:
		return parse_fd(arg, cfg) < 0 ? CLI_USAGE : CLI_RUN;
	case OPT_PRINT_CAPS:
		cli_print_capabilities(stdout);
		return CLI_EXIT_OK;
	case OPT_VM:
		s->vms_given = 1;
		return add_vm_spec(cfg, arg) < 0 ? CLI_USAGE : CLI_RUN;
	case OPT_CONFIG:
		if (s->config_path) {
			cli_error("--config: give it once");
			return CLI_USAGE;
		}
		s->config_path = arg;
		return CLI_RUN;
	case OPT_LOG_LEVEL:
		if (log_parse_level(arg, &cfg->log_level) == 0)
			return CLI_RUN;
		cli_error("--log-level: '%s' is not one of error, warn, info, debug, trace", arg);
		return CLI_USAGE;
	case OPT_VERBOSE:
		s->verbose++;
		return CLI_RUN;
	case OPT_CONTROL:
	case OPT_SANDBOX:
	case OPT_USER:
	case OPT_GROUP:
		return parse_operating(opt, arg, s, cfg) < 0 ? CLI_USAGE : CLI_RUN;
	case OPT_HELP:
		cli_usage(stdout);
		return CLI_EXIT_OK;
	case OPT_VERSION:
		printf("vhost-user-vsock %s\n", VUVSOCK_VERSION);
		return CLI_EXIT_OK;
	case '?':
	case ':':
		return CLI_USAGE; /* getopt has named the option */
	default:
		return parse_single(opt, arg, s, cfg) < 0 ? CLI_USAGE : CLI_RUN;
	}
}

static int check_kernel(struct single *s, struct config *cfg)
{
	if (s->tx_buf || s->queue || s->groups || s->limits) {
		cli_error("--tx-buffer-size, --queue-size, --groups, --poll-us and the connection "
			  "limits belong to the userspace engine: add --uds-path PATH, or drop them");
		return -EINVAL;
	}
	if (!s->cid) {
		cli_error("--cid N is required with the kernel engine");
		return -EINVAL;
	}
	cfg->engine = ENGINE_KERNEL;
	return 0;
}

/* Where the single device's front end comes from: exactly one source. */
static int check_source(struct single *s, struct config *cfg)
{
	int given = (s->socket != 0) + (cfg->fd >= 0) + (cfg->vfio != NULL);
	char canon[13];

	if (given > 1) {
		cli_error("--socket-path, --fd and --vfio exclude each other: give one");
		return -EINVAL;
	}
	/* an explicit --fd wins: it may well be the activated socket itself */
	if (cfg->fd < 0 && systemd_activation_pending()) {
		if (given) {
			cli_error("started by socket activation (LISTEN_FDS): the socket comes from "
				  "systemd, drop --%s", s->socket ? "socket-path" : "vfio");
			return -EINVAL;
		}
		cfg->activated = true;
		return 0;
	}
	if (cfg->vfio && vfio_parse_pci_name(cfg->vfio, canon) < 0) {
		cli_error("--vfio %s: not a PCI device name (0000:00:05.0, 00:05.0 or the device's "
			  "sysfs path)", cfg->vfio);
		return -EINVAL;
	}
	if (!given) {
		cli_error("give one of --socket-path PATH, --fd N or --vfio PCI-NAME (or --vm / "
			  "--config), or start from a systemd socket unit");
		return -EINVAL;
	}
	return 0;
}

static int check_single(struct single *s, struct config *cfg)
{
	if (check_source(s, cfg) < 0)
		return -EINVAL;
	if (!s->uds && !s->fwd)
		return check_kernel(s, cfg);
	if (s->vhost) {
		cli_error("--vhost-socket belongs to the kernel engine; --uds-path and "
			  "--forward-cid select the userspace engine: give one of them");
		return -EINVAL;
	}
	if (cli_check_forward(&s->vm, "--forward-listen") < 0)
		return -EINVAL;
	cfg->engine = ENGINE_USER;
	return 0;
}

static int check_multi(struct single *s, struct config *cfg)
{
	if (s->vms_given && s->config_path) {
		cli_error("--vm and --config exclude each other");
		return -EINVAL;
	}
	if (cfg->fd >= 0) {
		cli_error("--fd serves a single device; with %s every device names its own "
			  "socket (socket=PATH)", s->vms_given ? "--vm" : "--config");
		return -EINVAL;
	}
	if (systemd_activation_pending()) {
		cli_error("socket activation (LISTEN_FDS) serves a single device; %s devices "
			  "listen on their own socket paths: start them without a socket unit",
			  s->vms_given ? "--vm" : "--config");
		return -EINVAL;
	}
	if (s->socket || s->cid || s->vhost || s->uds || s->tx_buf || s->queue || s->groups ||
	    s->mode || s->limits || s->fwd || cfg->vfio) {
		cli_error("%s cannot be combined with single-device options (--socket, --cid, "
			  "--uds-path, ...)", s->vms_given ? "--vm" : "--config");
		return -EINVAL;
	}
	cfg->engine = ENGINE_USER;
	if (s->config_path)
		return cli_load_config_file(cfg, s->config_path);
	return 0;
}

static int check_unique(const struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nvms; i++) {
		for (unsigned int j = 0; j < i; j++) {
			const struct vm_config *a = &cfg->vms[i], *b = &cfg->vms[j];

			if (a->cid == b->cid) {
				cli_error("guest CID %llu is given to two devices",
					  (unsigned long long)a->cid);
				return -EINVAL;
			}
			if (strcmp(a->socket_path, b->socket_path) == 0 ||
			    (a->uds_path && b->uds_path && strcmp(a->uds_path, b->uds_path) == 0)) {
				cli_error("devices %u and %u share a socket path", j, i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int finish_groups(struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nvms; i++) {
		if (!cfg->vms[i].groups) {
			cfg->vms[i].groups = strdup(CLI_DEFAULT_GROUPS);
			if (!cfg->vms[i].groups)
				return -ENOMEM;
		}
	}
	return 0;
}

/* --user/--group to ids, now, so that a typo is a usage error. */
static int resolve_ids(const struct single *s, struct config *cfg)
{
	bool has_gid = false;

	if (!s->user) {
		if (s->group)
			cli_error("--group %s: give --user as well (changing only the group while "
				  "staying root gains nothing)", s->group);
		return s->group ? -EINVAL : 0;
	}
	if (sandbox_lookup_user(s->user, &cfg->uid, &cfg->gid, &has_gid) < 0) {
		cli_error("--user %s: no such user (give a name from the user database or a "
			  "number)", s->user);
		return -EINVAL;
	}
	if (s->group && sandbox_lookup_group(s->group, &cfg->gid) < 0) {
		cli_error("--group %s: no such group (give a name or a number)", s->group);
		return -EINVAL;
	}
	if (!s->group && !has_gid) {
		cli_error("--user %s: the user has no entry in the user database, so its group is "
			  "unknown: add --group", s->user);
		return -EINVAL;
	}
	cfg->drop_privileges = true;
	return 0;
}

static int finish_operating(const struct single *s, struct config *cfg)
{
	const char *c = cfg->control_path;

	for (unsigned int i = 0; c && i < cfg->nvms; i++) {
		const struct vm_config *vm = &cfg->vms[i];

		if ((vm->socket_path && strcmp(vm->socket_path, c) == 0) ||
		    (vm->uds_path && strcmp(vm->uds_path, c) == 0)) {
			cli_error("--control %s: device %u already uses that path for a socket", c,
				  i);
			return -EINVAL;
		}
	}
	return resolve_ids(s, cfg);
}

static int finish(struct single *s, struct config *cfg)
{
	int rc;

	if (s->vms_given || s->config_path) {
		rc = check_multi(s, cfg);
	} else {
		rc = check_single(s, cfg);
		if (rc == 0) {
			cfg->vms[0] = s->vm;
			cfg->nvms = 1;
			memset(&s->vm, 0, sizeof(s->vm));
		}
	}
	if (rc == 0 && !cfg->vhost_path)
		rc = set_string(&cfg->vhost_path, "--vhost-socket", CLI_DEFAULT_VHOST_PATH);
	if (rc == 0 && cfg->engine == ENGINE_USER)
		rc = finish_groups(cfg);
	if (rc == 0)
		rc = check_unique(cfg);
	if (rc == 0)
		rc = finish_operating(s, cfg);
	return rc;
}

static void free_vm(struct vm_config *vm)
{
	free(vm->socket_path);
	free(vm->uds_path);
	free(vm->groups);
	memset(vm, 0, sizeof(*vm));
}

void cli_config_free(struct config *cfg)
{
	for (unsigned int i = 0; i < cfg->nvms; i++)
		free_vm(&cfg->vms[i]);
	cfg->nvms = 0;
	free(cfg->vfio);
	free(cfg->vhost_path);
	free(cfg->control_path);
	cfg->vfio = NULL;
	cfg->vhost_path = NULL;
	cfg->control_path = NULL;
}

static bool wants_capabilities(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], PRINT_CAPS_OPTION) == 0)
			return true;
	}
	return false;
}

enum cli_result cli_parse(int argc, char **argv, struct config *cfg)
{
	struct single s;
	int opt, rc = CLI_RUN;

	memset(cfg, 0, sizeof(*cfg));
	memset(&s, 0, sizeof(s));
	cli_vm_defaults(&s.vm);
	cfg->log_level = LOG_LVL_INFO;
	cfg->fd = -1;
	if (wants_capabilities(argc, argv)) {
		cli_print_capabilities(stdout);
		return CLI_EXIT_OK;
	}
	optind = 1;
	opterr = 1;
	while (rc == CLI_RUN && (opt = getopt_long(argc, argv, "s:hVv", long_options, NULL)) != -1)
		rc = parse_one(opt, optarg, &s, cfg);
	if (rc == CLI_RUN && optind < argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		rc = CLI_USAGE;
	}
	if (rc == CLI_RUN && finish(&s, cfg) < 0)
		rc = CLI_USAGE;
	free_vm(&s.vm);
	if (rc == CLI_USAGE)
		fprintf(stderr, "Try 'vhost-user-vsock --help' for more information.\n");
	while (rc == CLI_RUN && s.verbose-- > 0 && cfg->log_level < LOG_LVL_TRACE)
		cfg->log_level++;
	return (enum cli_result)rc;
}
