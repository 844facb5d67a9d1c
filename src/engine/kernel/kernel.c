// SPDX-License-Identifier: MIT
/* Placeholder until the kernel engine lands: the device cannot be opened. */
#include "engine/kernel/kernel.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

static int sys_open(const char *p) { (void)p; return -ENOSYS; }
static int sys_ioctl(int fd, unsigned long r, void *a) { (void)fd; (void)r; (void)a; return -ENOSYS; }
static void sys_close(int fd) { (void)fd; }
const struct kern_vhost_ops kern_vhost_sys = { sys_open, sys_ioctl, sys_close };
const struct vu_dev_ops kern_dev_ops = { .nqueues = 3, .max_queue_size = 1024 };

void kern_engine_init(struct kern_engine *k, const struct kern_vhost_ops *vh, const char *path, uint64_t cid)
{ memset(k, 0, sizeof(*k)); k->vh = vh; k->vhost_path = path; k->cid = cid; k->vhost_fd = -1; }
int kern_engine_probe(struct kern_engine *k)
{ log_err("%s: the kernel engine is not implemented yet", k->vhost_path); return -ENOSYS; }
int kern_engine_open(struct kern_engine *k) { (void)k; return -ENOSYS; }
void kern_engine_close(struct kern_engine *k) { (void)k; }
