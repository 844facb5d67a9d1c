/* SPDX-License-Identifier: MIT */
/*
 * A test double for /dev/vhost-vsock behind struct kern_vhost_ops: an
 * in-memory device that enforces the kernel's rules (PROTOCOLS.md §3.4,
 * REAL-PEERS.md §7), records every call, injects faults and counts open
 * fds so tests can check the engine's ioctl sequence and that it releases
 * everything.
 *
 * Limits: one global instance (the ops table has no context pointer), at
 * most VHD_MAX_DEVS fds open at once, VHD_MAX_CALLS calls recorded (later
 * ones are counted in vhd_dropped_calls()). Its fds are fake numbers that
 * are never real descriptors; the eventfds handed to it must be real.
 */
#ifndef TESTS_VHOST_DOUBLE_H
#define TESTS_VHOST_DOUBLE_H

#include <linux/vhost.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/kernel/kernel.h"

#define VHD_MAX_DEVS 8u
#define VHD_MAX_CALLS 512u
#define VHD_MAX_REGIONS 64u  /* the kernel's default max_mem_regions */
#define VHD_NVQS 2u
/* What kernel 6.1 reports (REAL-PEERS.md §4). */
#define VHD_FEATURES_DEFAULT 0x33d000002ull
/* Pseudo request number for fault injection and records of open(). */
#define VHD_OPEN 0ul
/* Pseudo request number for records of close(). */
#define VHD_CLOSE 1ul

struct vhd_vq {
	bool num_set;
	uint32_t num;
	uint32_t last_avail;          /* the position GET_VRING_BASE reports */
	bool addr_set;
	struct vhost_vring_addr addr;
	int kick;                     /* -1 unbound */
	int call;
	int err;
	bool backend;                 /* running (the kernel's vq->private_data) */
};

struct vhd_dev {
	bool open;
	bool owner;
	uint64_t acked;               /* SET_FEATURES value */
	uint64_t cid;                 /* 0 = none */
	bool running;
	bool mem_set;
	unsigned int nregions;
	struct vhost_memory_region regions[VHD_MAX_REGIONS];
	struct vhd_vq vq[VHD_NVQS];
};

/* One recorded call. */
struct vhd_call {
	int fd;                       /* the double's fd (-1 for a failed open) */
	unsigned long req;            /* ioctl number, VHD_OPEN or VHD_CLOSE */
	int rc;                       /* what the double returned */
	uint32_t index;               /* ring ioctls */
	uint64_t val;                 /* num/base, features, CID, running, eventfd */
	struct vhost_vring_addr addr; /* SET_VRING_ADDR */
};

/* The ops table to hand to kern_engine_init(). */
extern const struct kern_vhost_ops vhd_ops;

/*
 * The same double behind one mutex, for a daemon thread that calls it
 * while a test thread looks at it: the test reads between vhd_lock() and
 * vhd_unlock().
 */
extern const struct kern_vhost_ops vhd_locked_ops;
void vhd_lock(void);
void vhd_unlock(void);

/** vhd_reset() - forget every device, record, fault and setting. */
void vhd_reset(void);

/** vhd_set_features() - what VHOST_GET_FEATURES reports from now on. */
void vhd_set_features(uint64_t features);

/** vhd_check_ring_memory() - at SET_RUNNING(1), require rings inside the memory table. */
void vhd_check_ring_memory(bool on);

/**
 * vhd_fail() - make the @nth call (1 = the next one) of @req fail with
 * -@err; @req may be VHD_OPEN. At most 8 pending faults.
 * Return: 0, or -ENOSPC when the fault table is full.
 */
int vhd_fail(unsigned long req, unsigned int nth, int err);

/** vhd_advance() - the "guest" consumed @n entries on ring @idx of @fd. */
void vhd_advance(int fd, unsigned int idx, uint32_t n);

/** vhd_open_fds() - Return: how many double fds are open now. */
unsigned int vhd_open_fds(void);

/** vhd_bad_closes() - Return: close() calls on fds the double did not have open. */
unsigned int vhd_bad_closes(void);

/** vhd_dev() - Return: the state behind @fd, or NULL when @fd is not open. */
const struct vhd_dev *vhd_dev(int fd);

/** vhd_ncalls() - Return: number of recorded calls. */
size_t vhd_ncalls(void);

/** vhd_dropped_calls() - Return: calls not recorded because the log was full. */
size_t vhd_dropped_calls(void);

/** vhd_call_at() - Return: recorded call @i, or NULL past the end. */
const struct vhd_call *vhd_call_at(size_t i);

/**
 * vhd_find() - the first recorded call of @req at or after @from.
 * Return: its index, or -1 when there is none.
 */
long vhd_find(unsigned long req, size_t from);

/** vhd_count() - Return: recorded calls of @req (successful or not). */
size_t vhd_count(unsigned long req);

/** vhd_req_name() - Return: "VHOST_SET_OWNER" etc., "open", "close" or "unknown". */
const char *vhd_req_name(unsigned long req);

/** vhd_clear_calls() - forget the recorded calls only. */
void vhd_clear_calls(void);

#endif
