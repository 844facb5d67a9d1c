// SPDX-License-Identifier: MIT
/*
 * kernel_engine_check: end-to-end check of the daemon's kernel engine, run
 * as root inside a Linux guest where vhost_vsock is loaded. This process is
 * at once the VMM (a vhost-user front end, through tests/lib), the guest (a
 * virtio-vsock driver on rings in a memfd) and the host (real AF_VSOCK
 * sockets, local CID 2): the daemon hands our rings to /dev/vhost-vsock,
 * and the kernel moves packets between them and the host sockets.
 *
 *   kernel_engine_check --daemon PATH [--workdir DIR] [--cid N]
 *
 * Prints one "PASS: <case>" or "FAIL: <case>: <reason>" line per case,
 * "INFO: ..." lines with measurements, and finally
 * "kernel-engine: N passed, M failed"; exits 0 iff nothing failed.
 *
 * Limits: one thread drives everything, so every wait polls the host
 * socket and the guest's call eventfds together; every wait is bounded by
 * its own timeout and by a global budget (TOTAL_BUDGET_MS), and an alarm
 * kills the daemons and exits if even that is overrun. Ports are fresh
 * random numbers per case, because the kernel keeps closed tuples for up to
 * 8 s (REAL-PEERS §7.8). A connection that times out prints both rings'
 * state as INFO lines (pair_diagnose) to tell a lost kick from a stuck device.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "peer_check.h"
#include "tfe.h"

#define TOTAL_BUDGET_MS 52000
#define ALARM_SEC 58
#define DATA_MIN (1u << 20)
#define DATA_SOFT_MS 6000
#define DATA_HARD_MS 12000

/* ------------------------------------------------------------------ */
/* Front ends and daemons                                              */
/* ------------------------------------------------------------------ */

static int start_daemon(struct peer_check *k, struct tfe_daemon *d, const char *sock,
			const char *log, char *why, size_t n)
{
	char cid[24];
	char *argv[] = { (char *)k->daemon, (char *)"--socket", (char *)sock, (char *)"--cid", cid,
			 (char *)"--log-level", (char *)"debug", NULL };

	snprintf(cid, sizeof(cid), "%llu", (unsigned long long)k->cid);
	return peer_daemon_start(k, d, argv, sock, log, why, n);
}

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

static int case_daemon_start(struct peer_check *k, char *why, size_t n)
{
	int rc;

	if (start_daemon(k, &k->d1, k->sock1, k->log1, why, n) < 0)
		return -1;
	rc = guest_up(k, k->sock1, false, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("QEMU-like setup on %s: %s (see %s)", k->sock1, strerror(-rc), k->log1);
	return 0;
}

static int case_vhost_features(struct peer_check *k, char *why, size_t n)
{
	uint64_t f = k->vm.features_offered;

	if (!k->vm_up)
		FAILF("no front end");
	printf("INFO: features offered 0x%016llx\n", (unsigned long long)f);
	if (!(f & (1ull << VU_F_PROTOCOL_FEATURES)))
		FAILF("bit 30 (PROTOCOL_FEATURES) is not offered");
	if (f & (1ull << TFE_F_ACCESS_PLATFORM))
		FAILF("ACCESS_PLATFORM (bit 33) is offered; QEMU refuses to start with it");
	if (f & (1ull << TFE_F_LOG_ALL))
		FAILF("LOG_ALL (bit 26) is offered without dirty logging");
	if (!(f & (1ull << TFE_F_VERSION_1)))
		FAILF("VERSION_1 (bit 32) is not offered");
	return 0;
}

/* ---- memory hot-plug ---- */

#define DIMM_GPA (1ull << 32)
#define DIMM_SIZE (1ull << 20)
#define DIMM_PKT 4096u

/* ADD_MEM_REG or REM_MEM_REG of the DIMM (@fd < 0: none attached), acked. */
static int dimm_request(struct peer_check *k, uint32_t req, uint8_t *ram, int fd)
{
	struct vu_single_region r = { .region = {
		.guest_phys_addr = DIMM_GPA, .memory_size = DIMM_SIZE,
		.userspace_addr = (uintptr_t)ram, .mmap_offset = 0,
	} };

	return tfe_fe_request(&k->vm.fe, req, &r, sizeof(r), fd >= 0 ? &fd : NULL, fd >= 0,
			      true);
}

/*
 * One RW packet for @c whose payload lies only in the DIMM: the header in
 * the first region, the payload descriptor at DIMM_GPA. vhost_vsock reads
 * it through the memory table the daemon gave it, or not at all.
 */
static int send_from_dimm(struct peer_check *k, struct tfe_vsock_conn *c)
{
	struct tfe_vsock_pkt p;
	struct tfe_buf b[2];
	uint64_t hgpa;
	int rc = tfe_mem_alloc(&k->vm.mem, TFE_VSOCK_HDR_SIZE, 8, &hgpa);

	if (rc < 0)
		return rc;
	tfe_vsock_conn_pkt(&k->vs, c, TFE_VSOCK_OP_RW, 0, &p);
	p.len = DIMM_PKT;
	tfe_vsock_hdr_pack(tfe_mem_ptr(&k->vm.mem, hgpa, TFE_VSOCK_HDR_SIZE), &p);
	b[0] = (struct tfe_buf){ .gpa = hgpa, .len = TFE_VSOCK_HDR_SIZE };
	b[1] = (struct tfe_buf){ .gpa = DIMM_GPA, .len = DIMM_PKT };
	/* a token the guest driver does not own: its tx reclaim passes over it */
	rc = tfe_vring_add(&k->vm.vq[1], b, 2, false, UINTPTR_MAX);
	return rc < 0 ? rc : tfe_vring_kick(&k->vm.vq[1]);
}

static int host_read_exact(struct peer_check *k, int fd, uint8_t *buf, size_t len, char *why,
			   size_t n)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, buf + got, len - got);

		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0 || errno != EAGAIN)
			FAILF("host read after %zu of %zu bytes: %s", got, len,
			      r == 0 ? "end of stream" : strerror(errno));
		if (pump(k, fd, POLLIN, STEP_MS) <= 0)
			FAILF("host read %zu of %zu bytes, then nothing", got, len);
	}
	return 0;
}

/*
 * Memory hot-plug with the real vhost_vsock: a DIMM plugged while the device
 * runs (ADD_MEM_REG) is in the kernel's table at once, so a packet whose
 * payload lies only there arrives intact; unplugged (REM_MEM_REG), the
 * device still moves data through the memory that stays.
 */
static int case_mem_hotplug(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	uint8_t got[DIMM_PKT], *ram;
	int memfd, fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	if (!(k->vm.fe.protocol_acked & (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		FAILF("the daemon did not offer memory slots (protocol features 0x%llx)",
		      (unsigned long long)k->vm.protocol_offered);
	memfd = memfd_create("dimm", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, (off_t)DIMM_SIZE) < 0)
		FAILF("memfd: %s", strerror(errno));
	ram = mmap(NULL, DIMM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED) {
		close(memfd);
		FAILF("mmap: %s", strerror(errno));
	}
	for (unsigned int i = 0; i < DIMM_PKT; i++)
		ram[i] = (uint8_t)(i * 7 + 3);
	rc = dimm_request(k, VU_REQ_ADD_MEM_REG, ram, memfd);
	close(memfd);
	if (rc < 0) {
		munmap(ram, DIMM_SIZE);
		FAILF("ADD_MEM_REG of 1 MiB at 4 GiB refused: %s", strerror(-rc));
	}
	rc = pair_from_guest(k, &fd, &c, why, n);
	if (rc == 0 && send_from_dimm(k, c) < 0) {
		snprintf(why, n, "could not post the packet from the DIMM");
		rc = -1;
	}
	if (rc == 0)
		rc = host_read_exact(k, fd, got, sizeof(got), why, n);
	if (rc == 0 && memcmp(got, ram, sizeof(got)) != 0) {
		snprintf(why, n, "the host read other bytes than the DIMM held");
		rc = -1;
	}
	/* the guest driver's byte count for @c no longer matches: a fresh pair follows */
	pair_close(k, fd, c);
	if (rc == 0 && dimm_request(k, VU_REQ_REM_MEM_REG, ram, -1) < 0) {
		snprintf(why, n, "REM_MEM_REG of the DIMM refused");
		rc = -1;
	}
	munmap(ram, DIMM_SIZE);
	if (rc < 0)
		return rc;
	return case_data_g2h(k, why, n);
}

/* ---- shutdown and reset ---- */

static bool peer_gone(void *ctx)
{
	const struct tfe_vsock_conn *c = ctx;

	return c->rst_received || c->peer_shutdown == TFE_VSOCK_SHUTDOWN_BOTH;
}

/* After a guest RST the host must see the connection end, and sending must fail. */
static int host_sees_reset(struct peer_check *k, int fd, char *why, size_t n)
{
	char b[8];
	ssize_t r;
	int err;

	pump(k, fd, POLLIN, STEP_MS);
	r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	err = errno;
	if (r > 0 || (r < 0 && err == EAGAIN))
		FAILF("host recv after the guest's RST: %s", r > 0 ? "data" : "still waiting");
	printf("INFO: reset: host recv after guest RST returned %zd (%s)\n", r,
	       r < 0 ? strerror(err) : "end of stream");
	if (r < 0 && err != ECONNRESET)
		FAILF("host recv failed with %s, expected ECONNRESET or end of stream",
		      strerror(err));
	if (send(fd, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
		FAILF("host send still works after the guest's RST");
	return 0;
}

static int case_reset(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	if (!k->vs_up)
		FAILF("no guest");
	/* host close: the guest sees SHUTDOWN(both) or RST */
	rc = pair_from_guest(k, &fd, &c, why, n);
	if (rc < 0) {
		pair_close(k, fd, c);
		return rc;
	}
	close(fd);
	rc = tfe_vsock_wait_until(&k->vs, peer_gone, c, budget(k, STEP_MS));
	tfe_vsock_close(&k->vs, c, 0);
	if (rc < 0)
		FAILF("host close: the guest saw neither SHUTDOWN nor RST");
	/* guest RST: the host's connection ends */
	c = NULL;
	rc = pair_from_host(k, &fd, &c, why, n);
	if (rc == 0) {
		tfe_vsock_reset(&k->vs, c);
		c = NULL;
		rc = host_sees_reset(k, fd, why, n);
	}
	pair_close(k, fd, c);
	return rc;
}

/* ---- device control ---- */

/* SET_VRING_ENABLE, acknowledged when REPLY_ACK allows, so the daemon has acted on it. */
static int ring_enable(struct peer_check *k, uint32_t ring, uint32_t on)
{
	struct vu_vring_state s = { .index = ring, .num = on };
	bool ack = k->vm.fe.protocol_acked & (1ull << VU_PROTOCOL_F_REPLY_ACK);

	return tfe_fe_request(&k->vm.fe, VU_REQ_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0, ack);
}

/* With the device stopped, a host connect must neither complete nor fail at once. */
static int connect_must_stall(struct peer_check *k, char *why, size_t n)
{
	uint32_t port = fresh_port(k);
	int fd, rc, err;

	tfe_vsock_listen(&k->vs, port);
	fd = host_connect(k->cid, port, 0);
	if (fd < 0) {
		tfe_vsock_unlisten(&k->vs, port);
		FAILF("host connect while stopped failed at once: %s", strerror(-fd));
	}
	rc = pump(k, fd, POLLOUT, 1500);
	err = rc > 0 ? sock_error(fd) : 0;
	close(fd);
	tfe_vsock_unlisten(&k->vs, port);
	if (rc > 0 && err == 0)
		FAILF("a host connect completed while the tx ring was disabled");
	if (rc > 0 && err != ETIMEDOUT)
		FAILF("host connect while stopped ended with %s, expected no answer", strerror(err));
	return 0;
}

static int case_ring_disable(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vsock_conn *c = NULL;
	int fd = -1, rc;

	/* runs last, on a fresh QEMU-like session: stopping rings can break one */
	guest_down(k);
	if (!tfe_daemon_alive(&k->d1))
		FAILF("daemon 1 is not running (see %s)", k->log1);
	rc = guest_up(k, k->sock1, false, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("QEMU-like setup: %s (see %s)", strerror(-rc), k->log1);
	/* traffic first, so that the rings have moved when they are stopped */
	if (case_guest_connect(k, why, n) < 0)
		return -1;
	rc = ring_enable(k, 1, 0);
	if (rc < 0)
		FAILF("SET_VRING_ENABLE(tx, 0): %s", strerror(-rc));
	if (connect_must_stall(k, why, n) < 0)
		return -1;
	rc = ring_enable(k, 1, 1);
	if (rc < 0)
		FAILF("SET_VRING_ENABLE(tx, 1): %s", strerror(-rc));
	rc = pair_from_host(k, &fd, &c, why, n);
	if (rc < 0)
		snprintf(why + strlen(why), n - strlen(why), " (after re-enable)");
	pair_close(k, fd, c);
	return rc;
}

static int case_reconnect(struct peer_check *k, char *why, size_t n)
{
	int rc;

	guest_down(k);
	if (!tfe_daemon_alive(&k->d1))
		FAILF("daemon 1 is not running (see %s)", k->log1);
	rc = guest_up(k, k->sock1, false, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("second front end's setup: %s (see %s)", strerror(-rc), k->log1);
	return case_guest_connect(k, why, n);
}

/*
 * A line of the daemon's log at @path, within a second: one holding
 * @needle, or with @needle NULL any warn or error line.
 */
static int log_has(struct peer_check *k, const char *path, const char *needle, char *line,
		   size_t len)
{
	int64_t end = tfe_now_ms() + budget(k, 1000);

	do {
		FILE *f = fopen(path, "r");
		bool found = false;

		while (f && !found && fgets(line, (int)len, f))
			found = needle ? strstr(line, needle) != NULL
				       : strstr(line, " error: ") || strstr(line, " warn: ");
		if (f)
			fclose(f);
		if (found) {
			line[strcspn(line, "\n")] = '\0';
			return 0;
		}
		poll(NULL, 0, 50);
	} while (tfe_remaining_ms(end) > 0);
	return -1;
}

static int case_duplicate_cid(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vm first = k->vm;
	struct tfe_vsock first_vs = k->vs;
	char line[512];
	int rc;

	if (!k->vs_up)
		FAILF("no guest");
	if (start_daemon(k, &k->d2, k->sock2, k->log2, why, n) < 0)
		return -1;
	/* a second VMM on the second daemon, asking for acks on everything */
	k->vm_up = k->vs_up = false;
	rc = setup_once(k, k->sock2, false, TFE_NR_ALL);
	if (k->vm_up)
		tfe_vm_close(&k->vm);
	k->vm = first;
	k->vs = first_vs;
	k->vm_up = k->vs_up = true;
	if (rc == 0)
		FAILF("the second daemon accepted a front end for CID %llu, which is in use",
		      (unsigned long long)k->cid);
	printf("INFO: duplicate-cid: second front end refused with %s\n", strerror(-rc));
	if (log_has(k, k->log2, NULL, line, sizeof(line)) < 0)
		FAILF("no warn/error line in %s about the refused CID", k->log2);
	printf("INFO: duplicate-cid: daemon 2 logged: %s\n", line);
	return case_guest_connect(k, why, n);
}

static int case_crosvm(struct peer_check *k, char *why, size_t n)
{
	int rc;

	guest_down(k);
	if (!tfe_daemon_alive(&k->d1))
		FAILF("daemon 1 is not running (see %s)", k->log1);
	rc = guest_up(k, k->sock1, true, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("crosvm-like setup: %s (see %s)", strerror(-rc), k->log1);
	if (k->vm.nvq != 3 || k->vm.vq[0].num != 256)
		FAILF("expected 3 rings of 256");
	return case_guest_connect(k, why, n);
}

/*
 * The front end stops the rings, as QEMU does, and gives ring 0 a new
 * address, but with its descriptor table past the end of guest memory: the
 * daemon refuses SET_VRING_ADDR itself (no address it cannot translate
 * reaches the kernel), keeps serving, and the next front end moves data.
 */
static int case_hostile_ring_address(struct peer_check *k, char *why, size_t n)
{
	struct vu_vring_addr a;
	char line[512];
	int rc;

	if (!k->vs_up)
		FAILF("no guest");
	rc = tfe_stop_qemu(&k->vm, NULL);
	if (rc < 0)
		FAILF("stopping the rings: %s", strerror(-rc));
	tfe_vring_addr(&k->vm.vq[0], 0, &a);
	a.desc = tfe_mem_uva(&k->vm.mem, 0) + MEM_SIZE + (1u << 20);
	k->vm.fe.need_reply = TFE_NR_ALL;
	rc = tfe_fe_set_vring_addr(&k->vm.fe, &a);
	if (rc == 0)
		FAILF("SET_VRING_ADDR with the descriptor table outside guest memory was acked 0");
	printf("INFO: hostile-ring-address: refused with %s\n", strerror(-rc));
	if (log_has(k, k->log1, "not inside one memory region", line, sizeof(line)) < 0)
		FAILF("no log line in %s about the refused SET_VRING_ADDR", k->log1);
	printf("INFO: hostile-ring-address: daemon logged: %s\n", line);
	return case_reconnect(k, why, n);
}

static bool err_fd_fired(void *ctx)
{
	struct pollfd p = { .fd = *(int *)ctx, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/*
 * The guest moves the tx avail index more than a ring ahead: the kernel's
 * vhost stops that ring and signals the front end's error eventfd, which
 * the daemon handed to it (VHOST_SET_VRING_ERR); the daemon keeps serving
 * and the next front end moves data.
 */
static int case_hostile_avail_jump(struct peer_check *k, char *why, size_t n)
{
	struct tfe_vring *tx = &k->vm.vq[1];
	int err_fd = k->vm.fe.err[1];
	int64_t end = tfe_now_ms() + budget(k, STEP_MS);

	if (!k->vs_up)
		FAILF("no guest");
	if (err_fd_fired(&err_fd))
		FAILF("the tx ring's error eventfd had fired before the jump");
	tfe_vring_set_avail_idx(tx, (uint16_t)(tx->avail_idx + tx->num + 1));
	if (tfe_vring_notify(tx) < 0)
		FAILF("kick: %s", strerror(errno));
	while (!err_fd_fired(&err_fd) && tfe_remaining_ms(end) > 0)
		poll(NULL, 0, 20);
	if (!err_fd_fired(&err_fd))
		FAILF("the tx ring's error eventfd never fired after avail moved by %u",
		      tx->num + 1);
	printf("INFO: hostile-avail-jump: the kernel stopped tx and signalled its error fd\n");
	if (!tfe_daemon_alive(&k->d1))
		FAILF("daemon 1 is gone (see %s)", k->log1);
	return case_reconnect(k, why, n);
}

static int case_daemon_exit(struct peer_check *k, char *why, size_t n)
{
	int rc;

	guest_down(k);
	rc = stop_one(&k->d1, "daemon 1", why, n);
	alarm_pids[0] = 0;
	if (stop_one(&k->d2, "daemon 2", rc < 0 ? why + strlen(why) : why,
		     rc < 0 ? n - strlen(why) : n) < 0)
		rc = -1;
	alarm_pids[1] = 0;
	return rc;
}

/* After the vhost fd that carried it closed, the host socket is reset. */
static int host_sees_gone(struct peer_check *k, int fd, char *why, size_t n)
{
	char b[8];
	ssize_t r;

	pump(k, fd, POLLIN, STEP_MS);
	r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	if (r > 0 || (r < 0 && errno == EAGAIN))
		FAILF("host recv after the daemon died: %s", r > 0 ? "data" : "still waiting");
	printf("INFO: daemon-restart: host recv after the old daemon died returned %zd (%s)\n", r,
	       r < 0 ? strerror(errno) : "end of stream");
	return 0;
}

static bool got_rst(void *ctx)
{
	const struct tfe_vsock_conn *c = ctx;

	return c->rst_received;
}

/*
 * Daemon 1 killed under a guest whose front end reconnects to its
 * successor keeping its rings (crosvm; QEMU never reconnects, README
 * "Restarting the daemon"): the old vhost fd closing resets the host side
 * of an open connection; the new daemon resumes the rings and posts
 * TRANSPORT_RESET; a guest packet on the old connection is answered RST
 * by the kernel, which knows no such socket; a new connection works.
 */
static int case_daemon_restart(struct peer_check *k, char *why, size_t n)
{
	struct tfe_setup_opts o = { .want_features = (1ull << TFE_F_VERSION_1) |
				    (1ull << TFE_F_EVENT_IDX) | (1ull << TFE_F_INDIRECT_DESC) };
	struct tfe_vsock_conn *c = NULL;
	struct tfe_vsock_pkt p;
	int fd = -1, rc;

	guest_down(k);
	rc = guest_up(k, k->sock1, true, TFE_NR_QEMU);
	if (rc < 0)
		FAILF("crosvm-like setup: %s (see %s)", strerror(-rc), k->log1);
	if (pair_from_guest(k, &fd, &c, why, n) < 0)
		return -1;
	kill(k->d1.pid, SIGKILL);
	for (int i = 0; i < 300 && tfe_daemon_alive(&k->d1); i++)
		poll(NULL, 0, 10);
	alarm_pids[0] = 0;
	rc = host_sees_gone(k, fd, why, n);
	close(fd);
	if (rc < 0)
		return rc;
	if (start_daemon(k, &k->d1, k->sock1, k->log1, why, n) < 0)
		return -1;
	rc = tfe_resume_crosvm(&k->vm, k->sock1, &o, budget(k, STEP_MS));
	if (rc < 0)
		FAILF("the front end's reconnect: %s (see %s)", strerror(-rc), k->log1);
	tfe_vsock_conn_pkt(&k->vs, c, TFE_VSOCK_OP_RW, 0, &p);
	p.len = 4;
	rc = tfe_vsock_send_pkt(&k->vs, &p, "late", 4);
	if (rc == 0)
		rc = tfe_vsock_wait_until(&k->vs, got_rst, c, budget(k, STEP_MS));
	if (rc < 0)
		FAILF("no RST for a packet of the old connection: %s", strerror(-rc));
	printf("INFO: daemon-restart: old connection's packet answered RST; %lu transport "
	       "event(s) seen\n", k->vs.events);
	tfe_vsock_close(&k->vs, c, 0);
	return case_guest_connect(k, why, n);
}

/* ------------------------------------------------------------------ */
/* main                                                                */
/* ------------------------------------------------------------------ */

static void usage(FILE *out)
{
	fprintf(out, "usage: kernel_engine_check --daemon PATH [--workdir DIR] [--cid N]\n"
		     "  Runs inside a guest with vhost_vsock loaded; starts the daemon at PATH\n"
		     "  (socket and logs in DIR, default /tmp) for guest CID N (default 3).\n");
}

static int parse_args(struct peer_check *k, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "workdir", required_argument, NULL, 'w' },
		{ "cid", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'd') {
			k->daemon = optarg;
		} else if (o == 'w') {
			k->workdir = optarg;
		} else if (o == 'c') {
			errno = 0;
			k->cid = strtoull(optarg, &end, 0);
			if (errno || *end || k->cid < 3 || k->cid >= 0xffffffffull)
				return -1;
		} else {
			return o == 'h' ? 1 : -1;
		}
	}
	return (k->daemon && optind == argc) ? 0 : -1;
}

static int init_paths(struct peer_check *k)
{
	uint32_t r = 0;

	if (snprintf(k->sock1, sizeof(k->sock1), "%s/vu.sock", k->workdir) >= (int)sizeof(k->sock1) ||
	    snprintf(k->sock2, sizeof(k->sock2), "%s/vu2.sock", k->workdir) >= (int)sizeof(k->sock2))
		return -1;
	snprintf(k->log1, sizeof(k->log1), "%s/daemon.log", k->workdir);
	snprintf(k->log2, sizeof(k->log2), "%s/daemon2.log", k->workdir);
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)time(NULL) ^ (uint32_t)getpid();
	/* fresh ports each run, clear of the well-known low range */
	k->next_port = 20000 + r % 1000000000u;
	k->d1.status = k->d2.status = -1;
	return 0;
}

int main(int argc, char **argv)
{
	static struct peer_check k = {
		.workdir = "/tmp", .cid = 3,
		.data_min = DATA_MIN, .data_soft_ms = DATA_SOFT_MS, .data_hard_ms = DATA_HARD_MS,
		/* what QEMU takes too, so that case_mem_hotplug can plug memory */
		.more_protocol = 1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS,
	};
	static const struct { const char *name; case_fn fn; } cases[] = {
		{ "daemon-start", case_daemon_start },
		{ "vhost-features", case_vhost_features },
		{ "guest-connect", case_guest_connect },
		{ "host-connect", case_host_connect },
		{ "data-guest-to-host", case_data_g2h },
		{ "data-host-to-guest", case_data_h2g },
		{ "shutdown", case_shutdown },
		{ "reset", case_reset },
		{ "reconnect", case_reconnect },
		{ "duplicate-cid", case_duplicate_cid },
		{ "crosvm-order", case_crosvm },
		{ "ring-disable-stops", case_ring_disable },
		{ "hostile-ring-address", case_hostile_ring_address },
		{ "hostile-avail-jump", case_hostile_avail_jump },
		{ "mem-hotplug", case_mem_hotplug },
		{ "daemon-restart", case_daemon_restart },
		{ "daemon-exit", case_daemon_exit },
	};
	int rc = parse_args(&k, argc, argv);

	if (rc != 0) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (init_paths(&k) < 0) {
		fprintf(stderr, "kernel_engine_check: --workdir path too long\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	peer_check_on_alarm("kernel-engine");
	alarm(ALARM_SEC);
	k.deadline = tfe_now_ms() + TOTAL_BUDGET_MS;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* the last case always runs, so the daemons are never left behind */
		if (i + 1 == sizeof(cases) / sizeof(cases[0]))
			k.deadline = tfe_now_ms() + 5000;
		run_case(&k, cases[i].name, cases[i].fn);
	}
	printf("kernel-engine: %u passed, %u failed\n", k.passed, k.failed);
	return k.failed ? 1 : 0;
}
