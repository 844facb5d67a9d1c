/* SPDX-License-Identifier: MIT */
/*
 * Command line: options to a validated struct config. Prints its own
 * usage errors (naming the option and the reason) on stderr.
 */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "util/log.h"

#define CLI_DEFAULT_VHOST_PATH "/dev/vhost-vsock"

struct config {
	const char *socket_path;  /* --socket: listen here for the front end */
	const char *vfio;         /* --vfio: PCI name of a virtio-vhost-user device */
	uint64_t cid;             /* --cid: the guest's context id */
	const char *vhost_path;   /* --vhost-socket: the host's vhost-vsock device */
	enum log_level log_level;
};

enum cli_result {
	CLI_RUN = 0,    /* options are valid: run the daemon */
	CLI_EXIT_OK,    /* --help or --version was printed: exit 0 */
	CLI_USAGE,      /* bad options, error printed: exit 2 */
};

/** cli_parse() - parse @argv into @cfg. */
enum cli_result cli_parse(int argc, char **argv, struct config *cfg);

/** cli_parse_cid() - a guest CID: 3 <= cid < 0xffffffff. Return: 0 or -EINVAL. */
int cli_parse_cid(const char *text, uint64_t *cid);

/** cli_usage() - the --help text. */
void cli_usage(FILE *out);

#endif
