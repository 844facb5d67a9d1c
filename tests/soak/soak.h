/* SPDX-License-Identifier: MIT */
/*
 * The soak test (issue 16, item 3): several VMs in one daemon (userspace
 * engine) under a mix of traffic for VUV_SOAK_SECONDS, every byte checked
 * end to end, then the daemon's fds, memfd mappings, threads and RSS
 * compared with the start.
 *
 * One thread per VM drives its guest (the tfe library is per-VM
 * single-threaded) and the host ends of that VM's connections, round
 * robin: two long full-duplex streams (one opened by the guest, one by the
 * host) that end with half-closes after a random length and start again,
 * short connections from either side (data, half-close, data the other
 * way), SEQPACKET connections (raw packets: the tfe driver plays STREAM
 * only) with message boundaries checked, and a sibling stream to the next
 * VM. The main thread asks VM threads to disconnect and reconnect their
 * front end, adds and removes an extra VM over --control, and watches the
 * daemon.
 *
 * Accounting: a connection counts when it closed cleanly with every byte
 * checked. A front-end reconnect cuts the connections of that VM (and the
 * sibling streams to and from it); those count as "cut", not as errors,
 * and their bytes are not counted. Anything else that goes wrong is an
 * error and fails the run.
 */
#ifndef SOAK_H
#define SOAK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "user_harness.h"

#define SOAK_VMS UH_MAX_VMS
#define SOAK_TIMEOUT_MS 30000      /* any single wait: the machine is loaded */
#define SOAK_IO_MAX 65536u         /* largest single read or write */

/* Host listener ports (on each VM's hybrid socket) and guest listener ports. */
#define SOAK_HP_LONG 5000u
#define SOAK_HP_SHORT 5001u
#define SOAK_HP_SEQ 5002u
#define SOAK_GP_LONG 6000u
#define SOAK_GP_SHORT 6001u
#define SOAK_GP_SIB 6002u
/* guest source ports, handed out in turn (soak_next_port()) */
#define SOAK_PORT_FIRST 20000u
#define SOAK_PORT_LAST 59999u

enum soak_kind {
	SOAK_LONG_GUEST,    /* long duplex stream opened by the guest */
	SOAK_LONG_HOST,     /* ... by the host */
	SOAK_SHORT_GUEST,   /* short connection opened by the guest */
	SOAK_SHORT_HOST,
	SOAK_SEQPACKET,
	SOAK_SIBLING,       /* guest to the next VM's guest */
	SOAK_NKINDS,
};

struct soak_counts {
	uint64_t conns[SOAK_NKINDS];   /* closed cleanly, every byte checked */
	uint64_t cut[SOAK_NKINDS];     /* cut by a front-end reconnect */
	uint64_t g2h, h2g, sib;        /* bytes checked: guest to host, host to guest, VM to VM */
	uint64_t seq_msgs;             /* SEQPACKET messages checked, both ways */
	uint64_t reconnects;
};

/* Long full-duplex stream: the guest and the host end both send and check. */
struct soak_duplex {
	bool open, guest_opened;
	bool g_shut, h_shut, g_eof, h_eof;
	struct tfe_vsock_conn *c;
	int fd;
	uint32_t seed;                 /* seed: guest to host; seed + 1: host to guest */
	uint64_t g_sent, h_got, h_sent, g_got;
	uint64_t len_g, len_h;         /* bytes each way before the half-close */
	int64_t deadline;              /* no progress by then: error */
};

/* The VM-to-VM stream this VM sends to the next one. */
struct soak_sib_tx {
	struct tfe_vsock_conn *c;      /* NULL: none open */
	bool sent;                     /* the stream went out whole: the answer is awaited */
	unsigned int peer_epoch;       /* the receiver's epoch when connected */
	uint32_t len;                  /* payload bytes after the header */
	uint64_t fnv;
	uint8_t ack[16];
	unsigned int ack_len;
	int64_t deadline;
};

/* The VM-to-VM stream this VM receives from the previous one. */
struct soak_sib_rx {
	struct tfe_vsock_conn *c;
	bool closing;                  /* answered: the sender's RST is awaited */
	unsigned int ref_epoch;        /* the sender's epoch when its last stream here ended */
	uint8_t hdr[16];
	unsigned int hdr_len;
	uint32_t seed, len;
	uint64_t got, fnv;
	int64_t deadline;
};

#define SOAK_SEQ_MSGS 8u

/* The SEQPACKET connection in progress, fed by the driver's packet observer. */
struct soak_seq {
	uint32_t port;                 /* our (guest) port; 0: no connection */
	bool response, rst, shutdown;
	uint32_t peer_buf_alloc;
	uint32_t seed;
	unsigned int nexp, next;       /* messages expected from the host, index of the next */
	uint32_t exp_len[SOAK_SEQ_MSGS];
	uint32_t have;                 /* bytes of message @next so far */
	uint32_t fwd_cnt;              /* bytes taken, told to the daemon */
	int err;
};

struct soak;

struct soak_vm {
	struct soak *s;
	unsigned int idx;
	struct uh_guest g;
	int lfd_long, lfd_short, lfd_seq;
	struct soak_duplex dx[2];
	struct soak_sib_tx stx;
	struct soak_sib_rx srx;
	struct soak_seq seq;
	uint32_t rnd, next_port, seeds;
	unsigned int turn;             /* which short kind goes next */
	atomic_uint epoch;             /* odd while the front end is away (or not yet set up) */
	atomic_bool reconnect;         /* asked by the main thread */
	atomic_bool tx_done;           /* no more sibling streams will be sent */
	struct soak_counts n;
	uint8_t wbuf[SOAK_IO_MAX], rbuf[SOAK_IO_MAX];
	char err[512];
};

struct soak {
	struct uh h;
	unsigned int nvms;
	struct soak_vm vm[SOAK_VMS];
	atomic_bool stop, failed;
	/*
	 * VUV_SOAK_RECONNECT_LAG_MS: VM 0, about to reconnect its front end,
	 * stops polling its guest this long first, as a preempted thread
	 * does on a loaded machine; packets siblings send it meanwhile are
	 * lost with the front end (0: none). One VM only, so that what this
	 * does to its neighbours is not hidden by the same happening to theirs.
	 */
	unsigned long reconnect_lag_ms;
};

/** soak_fail() - record the first error of @v and stop the run. Return: -1. */
int soak_fail(struct soak_vm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** soak_guest_open() - connect @v's front end, start its driver and listeners. Return: 0 or -errno. */
int soak_guest_open(struct soak_vm *v);

/** soak_vm_thread() - the VM's workers until the run stops. Return: NULL. */
void *soak_vm_thread(void *arg);

/** soak_step() - run the guest driver; sleep up to @ms when it had nothing to do. */
void soak_step(struct soak_vm *v, int ms);

/** soak_next_port() - Return: a fresh guest source port of @v (SOAK_PORT_FIRST..LAST, wrapping). */
uint32_t soak_next_port(struct soak_vm *v);

/** soak_next_seed() - Return: a fresh pattern seed; seed + 1 is free for the other direction. */
uint32_t soak_next_seed(struct soak_vm *v);

/*
 * Workers. Step functions never block on another party of this thread;
 * they return 1 when they made progress, 0 when not, -1 after soak_fail().
 */

/** soak_dx_step() - open (unless @stopping) or move long stream @d. */
int soak_dx_step(struct soak_vm *v, struct soak_duplex *d, bool stopping);

/** soak_dx_wind_down() - end each direction of @d at what it has sent. */
void soak_dx_wind_down(struct soak_duplex *d);

/** soak_dx_cut() - drop @d for a front-end reconnect (counted as cut). */
void soak_dx_cut(struct soak_vm *v, struct soak_duplex *d);

/** soak_short_turn() - one short connection (guest, host, SEQPACKET in turn). Return: 0 or -1. */
int soak_short_turn(struct soak_vm *v);

/** soak_seq_conn() - one SEQPACKET connection from guest port @port. Return: 0 or -1. */
int soak_seq_conn(struct soak_vm *v, uint32_t port, uint32_t seed);

/** soak_seq_attach() - let the SEQPACKET observer see @v's received packets. */
void soak_seq_attach(struct soak_vm *v);

/** soak_sib_tx_step() - open (unless @stopping) or finish the sibling stream sent. */
int soak_sib_tx_step(struct soak_vm *v, bool stopping);

/** soak_sib_rx_step() - accept or read the sibling stream received. */
int soak_sib_rx_step(struct soak_vm *v);

/** soak_sib_cut() - drop both sibling streams for a front-end reconnect. */
void soak_sib_cut(struct soak_vm *v);

#endif
