/* SPDX-License-Identifier: MIT */
/*
 * The guest-side check library of the real-peer rigs that drive the daemon
 * through tests/lib inside a QEMU/TCG guest (kernel_engine_check,
 * forward_check): reporting with a time budget, host AF_VSOCK sockets,
 * connection pairs (host socket <-> tfe guest connection), bulk data with
 * a checksum, half-close and stopping a daemon.
 *
 * The two programs differ in where their host sockets meet the guest: the
 * kernel engine's guest is a vhost_vsock guest with its own CID, while a
 * forwarding daemon sits between the guest and this machine's loopback
 * (CID 1). struct peer_check says which (via_loopback, guest_port).
 */
#ifndef VUV_PEER_CHECK_H
#define VUV_PEER_CHECK_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tfe.h"

#define STEP_MS 3000
#define MEM_SIZE (16ull << 20) /* the guest RAM of every front end */
#define DATA_MAX (4u << 20)

struct peer_check {
	const char *daemon;
	const char *workdir;
	uint64_t cid;
	int64_t deadline;
	unsigned int passed, failed;
	uint32_t next_port;
	struct tfe_daemon d1, d2;
	char sock1[108], sock2[108], log1[PATH_MAX], log2[PATH_MAX];
	struct tfe_vm vm;
	bool vm_up;
	struct tfe_vsock vs;
	bool vs_up;
	/* host sockets reach the guest through a forwarding daemon on CID 1 */
	bool via_loopback;
	/* the guest port host connects reach (a --forward-listen port); 0: a fresh one each */
	uint32_t guest_port;
	/* bulk data: at least data_min bytes, fewer than DATA_MAX once past data_soft_ms */
	size_t data_min;
	int data_soft_ms, data_hard_ms;
	/* the front end's wishes beyond VERSION_1, EVENT_IDX and INDIRECT_DESC */
	uint64_t more_features, more_protocol;
};

typedef int (*case_fn)(struct peer_check *k, char *why, size_t n);

#define FAILF(...) do { snprintf(why, n, __VA_ARGS__); return -1; } while (0)

/* For the alarm handler: whatever it needs, without locks. */
extern volatile pid_t alarm_pids[2];

/* The summary's label ("LABEL: N passed, M failed"), also on a timeout. */
void peer_check_on_alarm(const char *label);
int budget(const struct peer_check *k, int want);
void run_case(struct peer_check *k, const char *name, case_fn fn);
uint32_t fresh_port(struct peer_check *k);

int host_listen(uint32_t port);
int host_connect(uint64_t cid, uint32_t port, int timeout_ms);
int pump(struct peer_check *k, int fd, short events, int timeout_ms);
int sock_error(int fd);
void pair_diagnose(struct peer_check *k, int64_t t_start);

int pair_from_guest(struct peer_check *k, int *hostfd, struct tfe_vsock_conn **c, char *why,
		    size_t n);
int pair_from_host(struct peer_check *k, int *hostfd, struct tfe_vsock_conn **c, char *why,
		   size_t n);
bool conn_closed(void *ctx);
void pair_close(struct peer_check *k, int hostfd, struct tfe_vsock_conn *c);
void guest_down(struct peer_check *k);
int setup_once(struct peer_check *k, const char *sock, bool crosvm, enum tfe_need_reply nr);
int guest_up(struct peer_check *k, const char *sock, bool crosvm, enum tfe_need_reply nr);
int host_expect_eof(struct peer_check *k, int fd, char *why, size_t n);
int peer_daemon_start(struct peer_check *k, struct tfe_daemon *d, char *const argv[],
		      const char *sock, const char *log, char *why, size_t n);
int stop_one(struct tfe_daemon *d, const char *name, char *why, size_t n);

int case_guest_connect(struct peer_check *k, char *why, size_t n);
int case_host_connect(struct peer_check *k, char *why, size_t n);
int case_data_g2h(struct peer_check *k, char *why, size_t n);
int case_data_h2g(struct peer_check *k, char *why, size_t n);
int case_shutdown(struct peer_check *k, char *why, size_t n);

#endif
