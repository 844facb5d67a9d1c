// SPDX-License-Identifier: MIT
/* Placeholder until the framing module lands: refuses every message. */
#include "vhost_user/msg.h"

#include <errno.h>
#include <unistd.h>

int vu_msg_recv(int sock, struct vu_msg *msg) { (void)sock; msg->nfds = 0; return -ENOSYS; }
int vu_msg_send(int sock, const struct vu_msg *msg) { (void)sock; (void)msg; return -ENOSYS; }
int vu_msg_check(const struct vu_msg *msg) { (void)msg; return -EOPNOTSUPP; }
void vu_msg_close_fds(struct vu_msg *msg) { for (unsigned i = 0; i < msg->nfds; i++) close(msg->fds[i]); msg->nfds = 0; }
int vu_msg_take_fd(struct vu_msg *msg, unsigned int i) { int fd = msg->fds[i]; msg->fds[i] = -1; return fd; }
const char *vu_request_name(uint32_t request) { (void)request; return "UNKNOWN"; }
