/* SPDX-License-Identifier: MIT */
/*
 * Command line and configuration file: options to a validated struct
 * config. Usage errors are printed here, naming the option (or --vm key, or
 * config file key) and the reason; they map to exit status 2.
 *
 * The engine follows from the options: --uds-path, --vm or --config select
 * the userspace engine (hybrid vsock over host Unix sockets); otherwise the
 * kernel engine (/dev/vhost-vsock). The userspace options and file format
 * follow rust-vmm's vhost-device-vsock so that switching is a drop-in change.
 *
 * QEMU's back-end program conventions are followed too: --socket-path (an
 * alias of --socket), --fd N (an inherited socket, listening or connected)
 * and --print-capabilities. A single device may instead get its socket
 * from systemd socket activation (LISTEN_FDS); --fd and activation never
 * combine with --vm/--config, where every device names its own socket.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/log.h"

#define CLI_DEFAULT_VHOST_PATH "/dev/vhost-vsock"
#define CLI_DEFAULT_CID 3u
#define CLI_DEFAULT_TX_BUFFER_SIZE 262144u /* Linux's SO_VM_SOCKETS_BUFFER_SIZE default */
#define CLI_MAX_TX_BUFFER_SIZE (16u << 20)
#define CLI_DEFAULT_QUEUE_SIZE 1024u
#define CLI_DEFAULT_GROUPS "default"
/*
 * One daemon serves up to 1024 VMs (README "Performance": 1,000 measured).
 * What really bounds it is RLIMIT_NOFILE: every VM holds a few descriptors
 * even when idle, more with a front end; the engine checks the count
 * against the limit at start-up and on "vm add" (user_engine.h).
 */
#define CLI_MAX_VMS 1024u
/* Resource bounds of a userspace device (README "Security", limits table). */
#define CLI_DEFAULT_MAX_CONNECTIONS 1024u
#define CLI_MAX_MAX_CONNECTIONS 65536u
#define CLI_DEFAULT_MAX_PENDING 64u
#define CLI_MAX_MAX_PENDING 4096u
#define CLI_DEFAULT_HANDSHAKE_TIMEOUT_MS 5000u
#define CLI_DEFAULT_CONNECT_TIMEOUT_MS 2000u
#define CLI_MAX_POLL_US 1000000u /* a second: beyond it polling is spinning */
#define CLI_MAX_TIMEOUT_MS 600000u
/* Socket files: owner-only unless the operator says otherwise. */
#define CLI_DEFAULT_SOCKET_MODE 0600u
/* Forwarding to host AF_VSOCK (--forward-cid, --forward-listen). */
#define CLI_MAX_FORWARD_LISTEN 32u

/* One --forward-listen port: P (STREAM) or P/seqpacket. */
struct cli_fwd_port {
	uint32_t port;
	bool seqpacket;
};

enum engine_kind {
	ENGINE_KERNEL,
	ENGINE_USER,
};

/* One device: a vhost-user socket and what it serves. Strings are owned. */
struct vm_config {
	char *socket_path;       /* vhost-user socket (listen) */
	uint64_t cid;            /* the guest's context id */
	char *uds_path;          /* hybrid vsock socket (userspace engine) */
	uint32_t tx_buffer_size; /* per-connection buffer, advertised as buf_alloc */
	uint32_t queue_size;     /* largest virtqueue size accepted */
	char *groups;            /* sibling groups, "g1+g2" */
	uint32_t socket_mode;    /* permissions of every socket file it creates */
	uint32_t max_connections;      /* guest connections at once */
	uint32_t max_pending_connects; /* host clients that have not sent CONNECT yet */
	uint32_t handshake_timeout_ms; /* for a host client's CONNECT line */
	uint32_t connect_timeout_ms;   /* for the guest's answer to a host connect */
	uint32_t poll_us;              /* busy polling after each event; 0: off */
	/* forwarding to host AF_VSOCK: guest connections to the host go to (forward_cid, P) */
	bool forward;                  /* forward_cid is set */
	uint32_t forward_cid;          /* 1 (host loopback), 2, or 3..0xfffffffe */
	unsigned int nforward_listen;  /* host AF_VSOCK ports bridged into the guest */
	struct cli_fwd_port forward_listen[CLI_MAX_FORWARD_LISTEN];
};

struct vfio_dev;

struct config {
	enum engine_kind engine;
	char *vfio;              /* --vfio: PCI name of a virtio-vhost-user device */
	/* how it is opened: a vfio_open_fn (daemon_env), not from the command line */
	int (*vfio_open)(struct vfio_dev *d, const char *name);
	char *vhost_path;        /* --vhost-socket (kernel engine) */
	enum log_level log_level;
	int fd;                  /* --fd: an inherited socket for device 0, or -1 */
	bool fd_listening;       /* that socket listens (else: one connected front end) */
	bool activated;          /* device 0's socket comes from systemd (LISTEN_FDS) */
	unsigned int nvms;
	struct vm_config vms[CLI_MAX_VMS];
	/* operating: control socket and least privilege (daemon/sandbox.h) */
	char *control_path;      /* --control: the stats and VM control socket, or NULL */
	unsigned int sandbox;    /* --sandbox: enum sandbox_mode (0: seccomp) */
	bool drop_privileges;    /* --user given: become uid/gid after start-up */
	uint32_t uid, gid;       /* --user / --group, resolved */
};

enum cli_result {
	CLI_RUN = 0,    /* options are valid: run the daemon */
	CLI_EXIT_OK,    /* --help, --version or --print-capabilities printed: exit 0 */
	CLI_USAGE,      /* bad options, error printed: exit 2 */
};

/** cli_parse() - parse @argv into @cfg; free with cli_config_free() whatever the result. */
enum cli_result cli_parse(int argc, char **argv, struct config *cfg);

/** cli_config_free() - release the strings a parse allocated. */
void cli_config_free(struct config *cfg);

/** cli_parse_cid() - a guest CID: 3 <= cid < 0xffffffff. Return: 0 or -EINVAL. */
int cli_parse_cid(const char *text, uint64_t *cid);

/** cli_parse_u32() - decimal or 0x number in [min, max]. Return: 0 or -EINVAL. */
int cli_parse_u32(const char *text, uint32_t min, uint32_t max, uint32_t *out);

/**
 * cli_parse_forward_cid() - a --forward-cid: 1 (VMADDR_CID_LOCAL), 2
 * (VMADDR_CID_HOST) or 3 <= cid < 0xffffffff; 0 (the hypervisor) and
 * 0xffffffff (VMADDR_CID_ANY) are refused. Return: 0 or -EINVAL.
 */
int cli_parse_forward_cid(const char *text, uint32_t *cid);

/**
 * cli_parse_forward_listen() - "P1+P2[/seqpacket]+...": ports below
 * 0xffffffff (VMADDR_PORT_ANY), no port twice, at most
 * CLI_MAX_FORWARD_LISTEN. @why receives the reason on failure.
 * Return: the number of ports, or -EINVAL.
 */
int cli_parse_forward_listen(const char *text, struct cli_fwd_port *out, const char **why);

/**
 * cli_check_forward() - the forwarding keys of @vm agree: forward-listen
 * needs forward-cid. @origin names the source in the error.
 * Return: 0, or -EINVAL with the error printed.
 */
int cli_check_forward(const struct vm_config *vm, const char *origin);

/** cli_check_groups() - "name(+name)*", names of [A-Za-z0-9_.-]. Return: 0 or -EINVAL. */
int cli_check_groups(const char *groups);

/**
 * cli_parse_mode() - a socket file mode: 3 or 4 octal digits, at most 0777,
 * with the owner's read and write bits (the VMM must be able to connect).
 * Return: 0 or -EINVAL.
 */
int cli_parse_mode(const char *text, uint32_t *mode);

/**
 * cli_vm_set() - set one key of @vm from text (a --vm key or a config file
 * key; '-' and '_' are the same). @origin names the source in errors.
 * Return: 0, or -EINVAL with the error printed.
 */
int cli_vm_set(struct vm_config *vm, const char *origin, const char *key, const char *value);

/** cli_vm_defaults() - the defaults for a device not yet configured. */
void cli_vm_defaults(struct vm_config *vm);

/**
 * cli_parse_vm_spec() - "socket=/a,guest-cid=3,uds-path=/b" into @vm.
 * Return: 0, or -EINVAL with the error printed.
 */
int cli_parse_vm_spec(struct vm_config *vm, const char *spec);

/**
 * cli_load_config_file() - read a YAML file with a top-level "vms:" list.
 * Return: 0, or -EINVAL/-errno with the error printed.
 */
int cli_load_config_file(struct config *cfg, const char *path);

/**
 * cli_check_socket_fd() - whether @fd is an open Unix stream socket, and
 * whether it listens (SO_ACCEPTCONN) or is connected. Opens nothing.
 * Return: 0 with @listening set; -EBADF (not open), -ENOTSOCK,
 * -EAFNOSUPPORT (not AF_UNIX) or -EPROTOTYPE (not SOCK_STREAM).
 */
int cli_check_socket_fd(int fd, bool *listening);

/**
 * cli_socket_fd_error() - why cli_check_socket_fd() refused, as the end of
 * a sentence ("is not open in this process").
 * Return: a static string.
 */
const char *cli_socket_fd_error(int err);

/**
 * cli_print_capabilities() - the JSON QEMU's back-end program conventions
 * ask for: the VHostUserBackendCapabilities of a "vsock" back end.
 */
void cli_print_capabilities(FILE *out);

/** cli_usage() - the --help text. */
void cli_usage(FILE *out);

/** cli_error() - print "vhost-user-vsock: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * cli_error_to() - send this thread's cli_error() messages to @buf instead
 * of stderr (only the first one is kept: it names the cause), for parsing
 * done at run time (the control socket's "vm add"); a @size of 0 restores
 * stderr.
 * @buf: receives the message, NUL-terminated ("" until one comes)
 * @size: its size
 */
void cli_error_to(char *buf, size_t size);

#endif
