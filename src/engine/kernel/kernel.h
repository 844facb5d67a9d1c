/* SPDX-License-Identifier: MIT */
/*
 * Kernel engine: the vsock device whose rx/tx rings are run by the host
 * kernel's vhost-vsock. The daemon translates the vhost-user session into
 * vhost ioctls and stays off the data path; the event queue (ring 2) stays
 * here.
 *
 * The vhost device is reached through struct kern_vhost_ops so that unit
 * tests can put a double behind it; the daemon uses kern_vhost_sys.
 *
 * Invariants: vhost_fd is open only between kern_engine_open() and
 * kern_engine_close() (a reset closes it and the next hook that needs it
 * opens a fresh one); running implies both rx and tx are programmed
 * (prog[].valid) on the current fd; closing the fd always releases the
 * guest CID in the kernel.
 */
#ifndef ENGINE_KERNEL_H
#define ENGINE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/event_queue.h"
#include "vhost_user/dispatch.h"

/* The kernel runs rx (0) and tx (1); the event queue (2) never reaches it. */
#define KERN_NRINGS 2u
#define KERN_NQUEUES 3u
#define KERN_MAX_QUEUE_SIZE 1024u

struct kern_vhost_ops {
	int (*open)(const char *path);                        /* fd or -errno */
	int (*ioctl)(int fd, unsigned long request, void *arg); /* 0/value or -errno */
	void (*close)(int fd);
};

/* The real system calls. */
extern const struct kern_vhost_ops kern_vhost_sys;

/* What the kernel currently holds for one of rx/tx, to see what changed. */
struct kern_ring_prog {
	bool valid;                /* fully programmed on the current fd */
	bool based;                /* the kernel keeps a position for it (BASE given) */
	uint32_t num;
	uint16_t base;             /* the base we gave, not the kernel's position */
	uint32_t base_gen;         /* the vu_vring base_gen that base came from */
	struct vu_vring_addr addr; /* front-end addresses the kernel's were made from */
	int kick_fd;
	int call_fd;
	int err_fd;
};

/* One device: its configuration and the vhost fd of the current front end. */
struct kern_engine {
	const struct kern_vhost_ops *vh;
	const char *vhost_path;
	uint64_t cid;
	int vhost_fd;              /* -1 between sessions and after a reset */
	uint64_t kernel_features;  /* VHOST_GET_FEATURES at open */
	bool running;              /* SET_RUNNING(1) done */
	bool session;              /* between kern_engine_open and kern_engine_close */
	struct vsock_event_watch events; /* TRANSPORT_RESET for a guest that ran before */
	struct kern_ring_prog prog[KERN_NRINGS];
};

/* The vhost-user device table for this engine; dev->priv is a kern_engine. */
extern const struct vu_dev_ops kern_dev_ops;

/** kern_engine_init() - set up an engine; opens nothing. */
void kern_engine_init(struct kern_engine *k, const struct kern_vhost_ops *vh,
		      const char *vhost_path, uint64_t cid);

/**
 * kern_engine_probe() - start-up check: open the vhost device, ask for its
 * features, close it. Logs what is wrong (missing module, no permission,
 * not a vhost-vsock device) and what to do.
 * Return: 0 or negative errno.
 */
int kern_engine_probe(struct kern_engine *k);

/**
 * kern_engine_open() - open the vhost device for a new front end.
 * Return: 0 or negative errno (logged).
 */
int kern_engine_open(struct kern_engine *k);

/** kern_engine_close() - stop the device and close the vhost fd (frees the CID). */
void kern_engine_close(struct kern_engine *k);

#endif
