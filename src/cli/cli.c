// SPDX-License-Identifier: MIT
/*
 * Command-line parsing. Every refusal names the option and the reason, and
 * maps to exit status 2; nothing here opens a file or a socket.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"

enum {
	OPT_SOCKET = 's',
	OPT_VFIO = 0x100,
	OPT_CID,
	OPT_VHOST_SOCKET,
	OPT_LOG_LEVEL,
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_VERBOSE = 'v',
};

static const struct option long_options[] = {
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "vfio", required_argument, NULL, OPT_VFIO },
	{ "cid", required_argument, NULL, OPT_CID },
	{ "vhost-socket", required_argument, NULL, OPT_VHOST_SOCKET },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

void cli_usage(FILE *out)
{
	fprintf(out,
		"Usage: vhost-user-vsock (--socket PATH | --vfio PCI-NAME) --cid N [options]\n"
		"\n"
		"A vhost-user virtio-vsock device back end. A VMM (QEMU, crosvm, ...)\n"
		"connects to PATH; the guest's vsock rings are handed to the host\n"
		"kernel's vhost-vsock device, so the data never passes through this daemon.\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH        listen for the VMM on the Unix socket PATH\n"
		"      --vfio PCI-NAME      serve through a virtio-vhost-user PCI device\n"
		"                           (not supported yet: refused with an error)\n"
		"      --cid N              the guest's context id, 3 <= N < 4294967295\n"
		"      --vhost-socket PATH  the host's vhost-vsock device\n"
		"                           (default " CLI_DEFAULT_VHOST_PATH ")\n"
		"      --log-level LEVEL    error, warn, info (default), debug or trace\n"
		"  -v, --verbose            one more log level each time\n"
		"  -h, --help               print this help and exit\n"
		"  -V, --version            print the version and exit\n"
		"\n"
		"Exit status: 0 clean exit, 1 runtime failure, 2 usage error.\n");
}

int cli_parse_cid(const char *text, uint64_t *cid)
{
	char *end;
	unsigned long long v;

	if (!text[0] || text[0] == '-' || text[0] == '+')
		return -EINVAL;
	errno = 0;
	v = strtoull(text, &end, 0);
	if (errno || *end || v < 3 || v >= 0xffffffffULL)
		return -EINVAL;
	*cid = v;
	return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vhost-user-vsock: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vhost-user-vsock --help' for more information.\n");
	return CLI_USAGE;
}

static int parse_one(int opt, const char *arg, struct config *cfg, int *verbose)
{
	switch (opt) {
	case OPT_SOCKET:
		if (!arg[0])
			return usage_error("--socket: the path is empty");
		cfg->socket_path = arg;
		return CLI_RUN;
	case OPT_VFIO:
		cfg->vfio = arg;
		return CLI_RUN;
	case OPT_CID:
		if (cli_parse_cid(arg, &cfg->cid) < 0)
			return usage_error("--cid: '%s' is not a guest CID "
					   "(a number from 3 to 4294967294)", arg);
		return CLI_RUN;
	case OPT_VHOST_SOCKET:
		if (!arg[0])
			return usage_error("--vhost-socket: the path is empty");
		cfg->vhost_path = arg;
		return CLI_RUN;
	case OPT_LOG_LEVEL:
		if (log_parse_level(arg, &cfg->log_level) < 0)
			return usage_error("--log-level: '%s' is not one of error, warn, info, "
					   "debug, trace", arg);
		return CLI_RUN;
	case OPT_VERBOSE:
		(*verbose)++;
		return CLI_RUN;
	case OPT_HELP:
		cli_usage(stdout);
		return CLI_EXIT_OK;
	case OPT_VERSION:
		printf("vhost-user-vsock %s\n", VUVSOCK_VERSION);
		return CLI_EXIT_OK;
	default:
		/* getopt has already named the bad option */
		fprintf(stderr, "Try 'vhost-user-vsock --help' for more information.\n");
		return CLI_USAGE;
	}
}

static int check_combination(struct config *cfg, int cid_given)
{
	if (cfg->socket_path && cfg->vfio)
		return usage_error("--socket and --vfio exclude each other: give one");
	if (!cfg->socket_path && !cfg->vfio)
		return usage_error("give one of --socket PATH or --vfio PCI-NAME");
	if (!cid_given)
		return usage_error("--cid N is required");
	return CLI_RUN;
}

enum cli_result cli_parse(int argc, char **argv, struct config *cfg)
{
	int verbose = 0, cid_given = 0, opt, rc;

	memset(cfg, 0, sizeof(*cfg));
	cfg->vhost_path = CLI_DEFAULT_VHOST_PATH;
	cfg->log_level = LOG_LVL_INFO;
	optind = 1;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "s:hVv", long_options, NULL)) != -1) {
		rc = parse_one(opt, optarg, cfg, &verbose);
		if (rc != CLI_RUN)
			return (enum cli_result)rc;
		if (opt == OPT_CID)
			cid_given = 1;
	}
	if (optind < argc)
		return (enum cli_result)usage_error("unexpected argument '%s'", argv[optind]);
	rc = check_combination(cfg, cid_given);
	if (rc != CLI_RUN)
		return (enum cli_result)rc;
	while (verbose-- > 0 && cfg->log_level < LOG_LVL_TRACE)
		cfg->log_level++;
	return CLI_RUN;
}
