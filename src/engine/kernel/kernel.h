/* SPDX-License-Identifier: MIT */
/*
 * Kernel engine: the vsock device whose rx/tx rings are run by the host
 * kernel's vhost-vsock. The daemon translates the vhost-user session into
 * vhost ioctls and stays off the data path; the event queue (ring 2) stays
 * here.
 *
 * The vhost device is reached through struct kern_vhost_ops so that unit
 * tests can put a double behind it; the daemon uses kern_vhost_sys.
 */
#ifndef ENGINE_KERNEL_H
#define ENGINE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "vhost_user/dispatch.h"

struct kern_vhost_ops {
	int (*open)(const char *path);                        /* fd or -errno */
	int (*ioctl)(int fd, unsigned long request, void *arg); /* 0/value or -errno */
	void (*close)(int fd);
};

/* The real system calls. */
extern const struct kern_vhost_ops kern_vhost_sys;

/* What the device offers on top of the kernel's set (see kernel.c). */
struct kern_engine {
	const struct kern_vhost_ops *vh;
	const char *vhost_path;
	uint64_t cid;
	int vhost_fd;              /* -1 between sessions */
	uint64_t kernel_features;  /* VHOST_GET_FEATURES at open */
	bool running;              /* SET_RUNNING(1) done */
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
