// SPDX-License-Identifier: MIT
/*
 * Control requests for the two engines (see ops.h). The JSON written here
 * is the control socket's public format: member names only ever get
 * added, never renamed.
 */
#include "control/ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "daemon/sandbox.h"
#include "daemon/server.h"
#include "engine/kernel/kernel.h"
#include "engine/user/user_engine.h"
#include "version.h"

static void daemon_fields(struct json_w *w, const struct config *cfg, const char *engine)
{
	json_kv_str(w, "engine", engine);
	json_kv_str(w, "version", VUVSOCK_VERSION);
	json_kv_u64(w, "pid", (uint64_t)getpid());
	json_kv_str(w, "sandbox", sandbox_mode_name((enum sandbox_mode)cfg->sandbox));
	json_kv_u64(w, "uid", (uint64_t)geteuid());
}

/* ---- userspace engine ------------------------------------------------------ */

static void pair(struct json_w *w, const char *key, uint64_t packets, uint64_t bytes)
{
	json_key(w, key);
	json_obj_begin(w);
	json_kv_u64(w, "packets", packets);
	json_kv_u64(w, "bytes", bytes);
	json_obj_end(w);
}

static void counters(struct json_w *w, const struct ustats *c)
{
	pair(w, "guest_to_host", c->tx_packets, c->tx_bytes);
	pair(w, "host_to_guest", c->rx_packets, c->rx_bytes);
	json_kv_u64(w, "rst_sent", c->rst_sent);
	json_kv_u64(w, "credit_stalls", c->credit_stalls);
	json_kv_u64(w, "connections_opened", c->conns_opened);
	json_key(w, "errors");
	json_obj_begin(w);
	json_kv_u64(w, "broken_rings", c->broken_rings);
	json_kv_u64(w, "bad_packets", c->bad_packets);
	json_kv_u64(w, "host_socket", c->host_errors);
	json_kv_u64(w, "refused_connects", c->refused_connects);
	json_kv_u64(w, "sibling_drops", c->sibling_drops);
	json_obj_end(w);
}

static void rings(struct json_w *w, const struct ustats_snap *s)
{
	static const char *const names[] = { "rx", "tx" };

	json_key(w, "rings");
	json_arr_begin(w);
	for (unsigned int i = 0; i < 2; i++) {
		json_obj_begin(w);
		json_kv_str(w, "name", names[i]);
		json_kv_bool(w, "running", s->ring[i].running);
		json_kv_u64(w, "size", s->ring[i].size);
		json_kv_u64(w, "next_avail", s->ring[i].next_avail);
		json_obj_end(w);
	}
	json_arr_end(w);
}

static void conns(struct json_w *w, const struct ustats_snap *s)
{
	json_key(w, "connections");
	json_arr_begin(w);
	for (uint32_t i = 0; i < s->nconns; i++) {
		const struct ustats_conn *c = &s->conns[i];

		json_obj_begin(w);
		json_kv_u64(w, "local_port", c->local_port);
		json_kv_u64(w, "peer_port", c->peer_port);
		json_kv_str(w, "type", c->seqpacket ? "seqpacket" : "stream");
		json_kv_str(w, "state", c->state);
		json_kv_u64(w, "bytes_to_host", c->bytes_to_host);
		json_kv_u64(w, "bytes_from_host", c->bytes_from_host);
		json_kv_u64(w, "buffered_to_host", c->buffered_to_host);
		json_kv_u64(w, "buffered_to_guest", c->buffered_to_guest);
		json_kv_u64(w, "guest_credit", c->guest_credit);
		json_kv_u64(w, "age_ms", c->age_ms);
		json_obj_end(w);
	}
	json_arr_end(w);
}

static void transport(struct json_w *w, const struct server_tstats *t)
{
	json_key(w, "transport");
	json_obj_begin(w);
	json_kv_str(w, "kind", t->kind);
	if (strcmp(t->kind, "vfio") == 0) {
		json_kv_str(w, "pci", t->pci);
		json_kv_u64(w, "messages_in", t->msgs_in);
		json_kv_u64(w, "messages_out", t->msgs_out);
		json_kv_u64(w, "call_doorbells", t->calls);
		json_kv_u64(w, "err_doorbells", t->errs);
		json_kv_u64(w, "device_resets", t->resets);
		json_kv_u64(w, "device_faults", t->faults);
	}
	json_obj_end(w);
}

static void user_vm_ids(struct json_w *w, const struct user_vm *vm)
{
	json_kv_str(w, "name", vm->name);
	json_kv_u64(w, "cid", vm->vc.cid);
	json_kv_str(w, "socket", vm->inherited ? NULL : vm->vc.socket_path);
	json_kv_str(w, "uds_path", vm->vc.uds_path);
}

static void user_vm(struct json_w *w, const struct user_vm *vm, const struct ustats_snap *s,
		    bool responding)
{
	json_obj_begin(w);
	user_vm_ids(w, vm);
	json_kv_str(w, "groups", vm->vc.groups);
	json_kv_bool(w, "added_at_run_time", vm->port < 0);
	json_kv_bool(w, "responding", responding);
	if (responding) {
		json_kv_bool(w, "frontend_connected", s->frontend);
		json_kv_u64(w, "sessions", s->sessions);
		transport(w, &s->transport);
		json_kv_bool(w, "features_negotiated", s->features_set);
		json_kv_hex(w, "features", s->features);
		json_kv_bool(w, "running", s->running);
		json_kv_bool(w, "failed", s->failed);
		rings(w, s);
		json_kv_u64(w, "connections_open", s->conns_open);
		counters(w, &s->c);
		conns(w, s);
	}
	json_obj_end(w);
}

/*
 * Every VM is asked first and answered after, so their threads take their
 * snapshots in parallel. Rows are malloc()ed, not calloc()ed: only the
 * rows a VM writes cost memory.
 */
static int user_stats(void *ctx, struct json_w *w, char *err, size_t errlen)
{
	struct control_user_ctx *u = ctx;
	struct ustats_snap *s = calloc(CLI_MAX_VMS, sizeof(*s));
	uint64_t *ticket = calloc(CLI_MAX_VMS, sizeof(*ticket));
	struct timespec until;
	int rc = s && ticket ? 0 : -ENOMEM;

	user_engine_snapshot_deadline(&until);
	for (unsigned int i = 0; rc == 0 && i < CLI_MAX_VMS; i++) {
		struct user_vm *vm = u->ue->vm[i];

		if (!vm)
			continue;
		s[i].conns_cap = vm->vc.max_connections ? vm->vc.max_connections : 1024;
		s[i].conns = malloc(s[i].conns_cap * sizeof(*s[i].conns));
		if (!s[i].conns)
			rc = -ENOMEM;
		else
			ticket[i] = user_engine_snapshot_ask(vm, &s[i]);
	}
	daemon_fields(w, u->cfg, "user");
	json_key(w, "vms");
	json_arr_begin(w);
	for (unsigned int i = 0; s && ticket && i < CLI_MAX_VMS; i++) {
		struct user_vm *vm = u->ue->vm[i];
		bool ok;

		if (!vm || !s[i].conns)
			continue;
		ok = user_engine_snapshot_wait(vm, ticket[i], &until) == 0;
		if (rc == 0)
			user_vm(w, vm, &s[i], ok);
		free(s[i].conns);
	}
	json_arr_end(w);
	free(s);
	free(ticket);
	if (rc < 0)
		snprintf(err, errlen, "stats: out of memory");
	return rc;
}

static int user_vm_add(void *ctx, const char *spec, struct json_w *w, char *err, size_t errlen)
{
	struct control_user_ctx *u = ctx;
	struct vm_config vc;
	char why[CONTROL_ERR_MAX];
	struct user_vm *vm = NULL;
	int rc;

	cli_vm_defaults(&vc);
	cli_error_to(why, sizeof(why));
	rc = cli_parse_vm_spec(&vc, spec);
	cli_error_to(NULL, 0);
	if (rc < 0) {
		snprintf(err, errlen, "vm add: %s", why[0] ? why : strerror(-rc));
	} else if (vc.groups) {
		/* the sibling hub is linked once, at start (user_engine.h) */
		snprintf(err, errlen, "vm add: groups=%s: VMs added at run time take no part in "
			 "sibling routing; leave out groups", vc.groups);
		rc = -EINVAL;
	} else {
		vm = user_engine_add(u->ue, &vc, err, errlen);
	}
	free(vc.socket_path);
	free(vc.uds_path);
	free(vc.groups);
	if (!vm)
		return rc < 0 ? rc : -EINVAL;
	json_key(w, "vm");
	json_obj_begin(w);
	user_vm_ids(w, vm);
	json_obj_end(w);
	return 0;
}

static int user_vm_remove(void *ctx, const char *target, struct json_w *w, char *err,
			  size_t errlen)
{
	struct control_user_ctx *u = ctx;
	struct user_vm *vm = user_engine_find(u->ue, target);

	if (!vm) {
		snprintf(err, errlen, "vm remove: no VM has the CID or socket path '%s'", target);
		return -ENOENT;
	}
	json_key(w, "vm");
	json_obj_begin(w);
	json_kv_str(w, "name", vm->name);
	json_kv_u64(w, "cid", vm->vc.cid);
	json_obj_end(w);
	user_engine_remove(u->ue, vm);
	return 0;
}

const struct control_ops control_user_ops = {
	.stats = user_stats,
	.vm_add = user_vm_add,
	.vm_remove = user_vm_remove,
};

/* ---- kernel engine ----------------------------------------------------------- */

static int kern_stats(void *ctx, struct json_w *w, char *err, size_t errlen)
{
	struct control_kern_ctx *kc = ctx;
	const struct config *cfg = kc->cfg;
	bool connected = server_connected(kc->srv);
	struct server_tstats t;

	(void)err;
	(void)errlen;
	server_get_tstats(kc->srv, &t);
	daemon_fields(w, cfg, "kernel");
	json_key(w, "vms");
	json_arr_begin(w);
	json_obj_begin(w);
	json_kv_str(w, "name", kc->srv->name);
	json_kv_u64(w, "cid", kc->k->cid);
	json_kv_str(w, "socket", kc->srv->path);
	json_kv_str(w, "vhost_device", kc->k->vhost_path);
	json_kv_bool(w, "frontend_connected", connected);
	json_kv_u64(w, "sessions", kc->srv->sessions);
	transport(w, &t);
	json_kv_bool(w, "features_negotiated", connected && kc->srv->dev.features_set);
	json_kv_hex(w, "features", connected ? kc->srv->dev.features : 0);
	json_kv_bool(w, "running", kc->k->running);
	json_obj_end(w);
	json_arr_end(w);
	return 0;
}

static int kern_refuse(const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "vm %s: the kernel engine serves one VM per daemon; adding and "
			      "removing VMs at run time needs the userspace engine (--vm, "
			      "--uds-path or --config)", what);
	return -EOPNOTSUPP;
}

static int kern_vm_add(void *ctx, const char *arg, struct json_w *w, char *err, size_t errlen)
{
	(void)ctx;
	(void)arg;
	(void)w;
	return kern_refuse("add", err, errlen);
}

static int kern_vm_remove(void *ctx, const char *arg, struct json_w *w, char *err,
			  size_t errlen)
{
	(void)ctx;
	(void)arg;
	(void)w;
	return kern_refuse("remove", err, errlen);
}

const struct control_ops control_kern_ops = {
	.stats = kern_stats,
	.vm_add = kern_vm_add,
	.vm_remove = kern_vm_remove,
};
