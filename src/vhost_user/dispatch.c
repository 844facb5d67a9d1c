// SPDX-License-Identifier: MIT
/* Placeholder until the dispatcher lands: every session ends at once. */
#include "vhost_user/dispatch.h"

#include <errno.h>
#include <string.h>

#include "vhost_user/msg.h"

void vu_dev_init(struct vu_dev *dev, const char *name, int sock, const struct vu_dev_ops *ops, void *priv)
{ memset(dev, 0, sizeof(*dev)); dev->name = name; dev->sock = sock; dev->ops = ops; dev->priv = priv; }
int vu_dev_process(struct vu_dev *dev) { (void)dev; return -ENOSYS; }
int vu_dev_handle(struct vu_dev *dev, struct vu_msg *msg, struct vu_msg *reply, bool *has_reply)
{ (void)dev; (void)reply; *has_reply = false; vu_msg_close_fds(msg); return -ENOSYS; }
void vu_dev_fini(struct vu_dev *dev) { dev->sock = -1; }
bool vu_vring_ready(const struct vu_vring *vr) { (void)vr; return false; }
