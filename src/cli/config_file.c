// SPDX-License-Identifier: MIT
/*
 * The YAML configuration file (--config), read with libyaml:
 *
 *   vms:
 *     - guest_cid: 3
 *       socket: /run/vm3.sock
 *       uds_path: /run/vm3.vsock
 *       tx_buffer_size: 65536
 *       queue_size: 1024
 *       groups: default
 *       forward_cid: 1
 *       forward_listen: 9000+9001/seqpacket
 *
 * Keys are the --vm keys (snake_case or kebab-case); anything else is an
 * error naming the file, the entry and the key.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

static const char *scalar(yaml_node_t *node)
{
	if (!node || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

static int load_vm(yaml_document_t *doc, yaml_node_t *map, struct vm_config *vm,
		   const char *origin)
{
	yaml_node_pair_t *pair;

	if (map->type != YAML_MAPPING_NODE) {
		cli_error("%s: each entry of vms must be a mapping of keys", origin);
		return -EINVAL;
	}
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		const char *key = scalar(yaml_document_get_node(doc, pair->key));
		const char *value = scalar(yaml_document_get_node(doc, pair->value));
		int rc;

		if (!key || !value) {
			cli_error("%s: keys and values must be plain scalars", origin);
			return -EINVAL;
		}
		rc = cli_vm_set(vm, origin, key, value);
		if (rc < 0)
			return rc;
	}
	if (!vm->socket_path) {
		cli_error("%s: 'socket' is required", origin);
		return -EINVAL;
	}
	return cli_check_forward(vm, origin);
}

static int load_vms(struct config *cfg, yaml_document_t *doc, yaml_node_t *seq, const char *path)
{
	yaml_node_item_t *item;
	char origin[512];

	if (seq->type != YAML_SEQUENCE_NODE) {
		cli_error("%s: 'vms' must be a list", path);
		return -EINVAL;
	}
	for (item = seq->data.sequence.items.start; item < seq->data.sequence.items.top; item++) {
		struct vm_config *vm;
		int rc;

		if (cfg->nvms >= CLI_MAX_VMS) {
			cli_error("%s: more than %u vms", path, CLI_MAX_VMS);
			return -EINVAL;
		}
		vm = &cfg->vms[cfg->nvms++];
		cli_vm_defaults(vm);
		snprintf(origin, sizeof(origin), "%s: vms[%u]", path, cfg->nvms - 1);
		rc = load_vm(doc, yaml_document_get_node(doc, *item), vm, origin);
		if (rc < 0)
			return rc;
	}
	if (cfg->nvms == 0) {
		cli_error("%s: 'vms' is empty", path);
		return -EINVAL;
	}
	return 0;
}

static int load_root(struct config *cfg, yaml_document_t *doc, const char *path)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	yaml_node_pair_t *pair;
	yaml_node_t *vms = NULL;

	if (!root || root->type != YAML_MAPPING_NODE) {
		cli_error("%s: expected a mapping with a 'vms' list", path);
		return -EINVAL;
	}
	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		const char *key = scalar(yaml_document_get_node(doc, pair->key));

		if (!key || strcmp(key, "vms") != 0) {
			cli_error("%s: unknown top-level key '%s' (expected 'vms')", path,
				  key ? key : "?");
			return -EINVAL;
		}
		vms = yaml_document_get_node(doc, pair->value);
	}
	if (!vms) {
		cli_error("%s: no 'vms' list", path);
		return -EINVAL;
	}
	return load_vms(cfg, doc, vms, path);
}

int cli_load_config_file(struct config *cfg, const char *path)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	FILE *f;
	int rc;

	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		cli_error("--config %s: %s", path, strerror(-rc));
		return rc;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		cli_error("%s:%zu:%zu: YAML error: %s", path, parser.problem_mark.line + 1,
			  parser.problem_mark.column + 1, parser.problem ? parser.problem : "?");
		rc = -EINVAL;
	} else {
		rc = load_root(cfg, &doc, path);
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}
