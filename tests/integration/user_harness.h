/* SPDX-License-Identifier: MIT */
/*
 * Shared by the userspace engine integration tests (test_user_*.c): the
 * daemon in a child process in a private directory, guests (a tfe front
 * end plus the tfe guest driver), host sockets for hybrid vsock, a byte
 * pattern to check streams with, and a raw packet layer for what the tfe
 * driver does not do (SEQPACKET, hand-made packets).
 *
 * Every wait is bounded. A test that hangs is ended by SIGALRM
 * (uh_watchdog()), which kills the daemon first so that none is left
 * behind.
 */
#ifndef UH_HARNESS_H
#define UH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tfe.h"

#define UH_MAX_VMS 4u
#define UH_TIMEOUT_MS 10000
#define UH_VSOCK_F_SEQPACKET 1
#define UH_GUEST_MEM (32u << 20)

struct uh_vm_spec {
	uint64_t cid;
	const char *groups;      /* NULL: default */
	const char *keys;        /* more --vm keys ("tx-buffer-size=4096,..."), or NULL */
};

/* The daemon and where its sockets are. */
struct uh {
	char dir[64];
	char log[96];
	unsigned int nvms;
	char sock[UH_MAX_VMS][108];
	char uds[UH_MAX_VMS][108];
	uint64_t cid[UH_MAX_VMS];
	struct tfe_daemon d;
};

/* One VM as the daemon sees it: front end, guest RAM and rings, guest driver. */
struct uh_guest {
	struct tfe_vm vm;
	struct tfe_vsock vs;
	uint64_t cid;
	bool open;
};

/** uh_daemon_path - the daemon under test (argv[1] of the test program). */
extern const char *uh_daemon_path;

/** uh_args() - take the daemon's path from argv[1]. Return: 0, or -EINVAL (usage printed). */
int uh_args(int argc, char **argv);

/**
 * uh_watchdog() - end the test program after @seconds, killing the
 * daemon first; 0 disarms. Return: nothing.
 */
void uh_watchdog(unsigned int seconds);

/**
 * uh_daemon_argv() - the start of a command line that runs the daemon:
 * the words of VUV_DAEMON_WRAPPER (e.g. valgrind), uh_daemon_path, the
 * words of VUV_DAEMON_ARGS; added to @argv at *@n (NULL-terminated).
 * Return: 0 or -E2BIG.
 */
int uh_daemon_argv(char **argv, unsigned int *n, unsigned int max);

/**
 * uh_start() - run the daemon with one --vm per @specs entry (or the
 * single-device options when @n is 1 and @single), plus @extra options.
 * Return: 0 or negative errno.
 */
int uh_start(struct uh *h, const struct uh_vm_spec *specs, unsigned int n, bool single,
	     const char *const *extra);

/**
 * uh_stop() - SIGTERM the daemon. Return: 0 when it was still alive,
 * exited 0 and removed every socket file it made; else negative errno.
 */
int uh_stop(struct uh *h);

/** uh_alive() - Return: whether the daemon still runs. */
bool uh_alive(struct uh *h);

/** uh_log_count() - Return: how many times the daemon's log (h->log) contains @text. */
unsigned int uh_log_count(const struct uh *h, const char *text);

/** uh_log_has() - Return: whether the daemon's log contains @text. */
bool uh_log_has(const struct uh *h, const char *text);

/**
 * uh_wait_log() - wait until the daemon's log contains @text at least
 * @count times. Return: 0 or -ETIMEDOUT.
 */
int uh_wait_log(const struct uh *h, const char *text, unsigned int count, int timeout_ms);

/**
 * uh_guest_open() - connect a front end to VM @i, set it up like QEMU with
 * @features wanted (VERSION_1 always), start the guest driver.
 * Return: 0 or negative errno.
 */
int uh_guest_open(struct uh_guest *g, const struct uh *h, unsigned int i, uint64_t features,
		  const struct tfe_vsock_opts *o);

/** uh_guest_close() - driver, rings, memory and front end. */
void uh_guest_close(struct uh_guest *g);

/** uh_host_listen() - listen on "<uds>_<port>" (@type SOCK_STREAM/SEQPACKET). Return: fd or -errno. */
int uh_host_listen(const char *uds, uint32_t port, int type);

/**
 * uh_host_connect() - connect to the hybrid socket (the "_seqpacket" one
 * for SOCK_SEQPACKET) and send "CONNECT <port>\n".
 * Return: the connected non-blocking fd, or negative errno.
 */
int uh_host_connect(const char *uds, uint32_t port, int type);

/**
 * uh_host_wait_ok() - read the "OK <n>\n" answer on @fd while the guest
 * driver runs (it must accept the connection).
 * Return: 0, -ECONNRESET if the socket closed, -EPROTO, -ETIMEDOUT.
 */
int uh_host_wait_ok(int fd, struct uh_guest *g, int timeout_ms);

/**
 * uh_accept() - accept on listening @lfd while the guest driver runs.
 * Return: non-blocking fd or negative errno.
 */
int uh_accept(int lfd, struct uh_guest *g, int timeout_ms);

/**
 * uh_host_closed() - whether the peer of @fd closed (EOF or reset),
 * reading and discarding data meanwhile, while @g (may be NULL) runs.
 * Return: true when it closed within @timeout_ms.
 */
bool uh_host_closed(int fd, struct uh_guest *g, int timeout_ms);

/* The test pattern: byte @off of stream @seed. */
uint8_t uh_pattern(uint32_t seed, uint64_t off);
void uh_fill(uint8_t *buf, uint32_t seed, uint64_t off, size_t n);
/** uh_check() - Return: index of the first wrong byte, or n when all match. */
size_t uh_check(const uint8_t *buf, uint32_t seed, uint64_t off, size_t n);
/** uh_fnv() - FNV-1a over @n bytes, continuing from @h. Return: the hash. */
uint64_t uh_fnv(uint64_t h, const uint8_t *buf, size_t n);
#define UH_FNV_INIT 0xcbf29ce484222325ull

/** uh_rand() - xorshift32 step. Return: the next value. */
uint32_t uh_rand(uint32_t *state);

/**
 * uh_guest_to_host() - send @total pattern bytes from guest connection @c
 * to host socket @fd in random-sized writes, reading and checking them at
 * the host in random-sized reads.
 * Return: 0, or a negative errno (-EBADMSG on a wrong byte or checksum).
 */
int uh_guest_to_host(struct uh_guest *g, struct tfe_vsock_conn *c, int fd, size_t total,
		     uint32_t seed, int timeout_ms);

/** uh_host_to_guest() - the other direction. Return: as uh_guest_to_host(). */
int uh_host_to_guest(struct uh_guest *g, struct tfe_vsock_conn *c, int fd, size_t total,
		     uint32_t seed, int timeout_ms);

/* ---- raw packets (bypassing the driver's receive path) ---- */

struct uh_pkt {
	struct tfe_vsock_pkt h;
	uint8_t data[TFE_VSOCK_MAX_PKT];
};

/**
 * uh_raw_send() - send a packet from guest @g. Return: 0 or negative errno.
 */
int uh_raw_send(struct uh_guest *g, const struct tfe_vsock_pkt *p, const void *payload,
		size_t len);

/**
 * uh_raw_recv() - take the next packet the device put on @g's rx ring,
 * without the driver seeing it, and give the buffer back.
 * Return: 0, -ETIMEDOUT, -EIO for a malformed rx entry.
 */
int uh_raw_recv(struct uh_guest *g, struct uh_pkt *p, int timeout_ms);

#endif
