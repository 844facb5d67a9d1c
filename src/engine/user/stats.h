/* SPDX-License-Identifier: MIT */
/*
 * Userspace engine statistics: the counters of one VM and the snapshot the
 * control socket shows (control.h, "stats").
 *
 * Threads and cost: each VM runs on its own thread, and only that thread
 * writes its counters: plain integers, no atomics, no locks, one add each
 * on the data path. Nobody else reads them while they change: a snapshot
 * is taken by the VM's own thread when the main thread asks for it
 * (user_engine_snapshot(): an eventfd wake-up and a mutex-protected
 * hand-over, outside the data path).
 *
 * The counting code below the device (conn.c, conn_table.c) has no
 * pointer to its VM; it counts through ustats_cur, which each VM thread
 * points at its own counters when it starts (NULL elsewhere, e.g. in unit
 * tests: nothing is counted). Keeping the interfaces below unchanged is
 * the point; the thread-local pointer costs one load.
 *
 * The few functions the snapshot needs from the device, the connection
 * and the table are declared here rather than in their headers, so that
 * all of the statistics interface is in one place.
 */
#ifndef ENGINE_USER_STATS_H
#define ENGINE_USER_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/server.h"

/* Counters of one VM since the daemon started serving it. */
struct ustats {
	uint64_t tx_packets;        /* guest → host: packets taken from the tx ring */
	uint64_t tx_bytes;          /* their payload (RW) bytes */
	uint64_t rx_packets;        /* host and siblings → guest: packets put on the rx ring */
	uint64_t rx_bytes;          /* their payload bytes */
	uint64_t rst_sent;          /* RSTs to the guest */
	uint64_t credit_stalls;     /* a connection used up the guest's credit */
	uint64_t conns_opened;      /* connections established with a host socket */
	/* errors, by kind */
	uint64_t broken_rings;      /* a ring broke a virtio rule; the device stopped */
	uint64_t bad_packets;       /* malformed or invalid guest packets */
	uint64_t host_errors;       /* host socket read/write failures */
	uint64_t refused_connects;  /* connections refused (no listener, limits) */
	uint64_t sibling_drops;     /* packets for another VM dropped */
};

extern _Thread_local struct ustats *ustats_cur __attribute__((tls_model("initial-exec")));

/*
 * Count on the current VM's counters, if this thread has any. A build with
 * -DUSTATS_OFF counts nothing: the benchmark's baseline for what counting
 * costs (README "Live stats").
 */
#ifdef USTATS_OFF
#define USTATS_ADD(field, n) ((void)(n))
#else
#define USTATS_ADD(field, n)                             \
	do {                                             \
		struct ustats *ustats_p_ = ustats_cur;   \
		if (ustats_p_)                           \
			ustats_p_->field += (n);         \
	} while (0)
#endif

/* One connection, as the snapshot shows it. */
struct ustats_conn {
	uint32_t local_port;        /* the host side's port */
	uint32_t peer_port;         /* the guest's port */
	bool seqpacket;
	const char *state;          /* conn_state_name() (static) */
	uint64_t bytes_to_host;     /* written to its host socket */
	uint64_t bytes_from_host;   /* read from its host socket */
	uint32_t buffered_to_host;  /* guest bytes waiting for the host socket */
	uint32_t buffered_to_guest; /* host bytes read, waiting for rx buffers */
	uint32_t guest_credit;      /* bytes the guest can take now */
	uint64_t age_ms;
};

struct ustats_ring {
	bool running;
	uint32_t size;
	uint16_t next_avail;        /* where the device reads next */
};

/* One VM; @conns is the caller's array of @conns_cap entries. */
struct ustats_snap {
	struct ustats c;
	bool frontend;              /* a front end is connected */
	unsigned long sessions;     /* front ends served so far */
	struct server_tstats transport;
	bool features_set;
	uint64_t features;          /* acked virtio features */
	bool running;               /* rx and tx run */
	bool failed;                /* a ring broke; stopped until a reset */
	struct ustats_ring ring[2]; /* rx, tx */
	uint32_t conns_open;        /* connections in the table */
	uint32_t nconns;            /* entries filled in @conns */
	uint32_t conns_cap;
	struct ustats_conn *conns;
};

struct udev;
struct conn;
struct conn_table;

/**
 * udev_snapshot() - fill @s from device @d (device.c; on the VM's thread).
 * @d: the device
 * @s: receives everything but the counters, frontend and sessions
 * Return: nothing.
 */
void udev_snapshot(const struct udev *d, struct ustats_snap *s);

/**
 * conn_describe() - ports, type, state and buffers of @c (conn.c).
 * @c: the connection
 * @out: receives them; bytes and age are the caller's
 * Return: nothing.
 */
void conn_describe(const struct conn *c, struct ustats_conn *out);

/**
 * conn_table_foreach() - call @fn for every connection of @t (conn_table.c),
 * in no particular order; @fn must not change the table.
 * @t: the table
 * @fn: the callback
 * @ctx: passed to @fn
 * Return: nothing.
 */
void conn_table_foreach(const struct conn_table *t, void (*fn)(void *ctx, const struct conn *c),
			void *ctx);

#endif
