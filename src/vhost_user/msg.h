/* SPDX-License-Identifier: MIT */
/*
 * vhost-user message framing over a Unix stream socket: header, payload
 * and SCM_RIGHTS descriptors in, replies out. Validates everything that can
 * be checked without session state: version and flag bits, payload size
 * against the request's fixed layout, and the number of attached fds.
 */
#ifndef VU_MSG_H
#define VU_MSG_H

#include "vhost_user/proto.h"

/* A message must be complete this long after its first byte was read. */
#define VU_MSG_DEADLINE_MS 5000u

/**
 * vu_msg_recv() - read one whole message (header, payload, fds).
 * Return: 0; -ECONNRESET on a clean EOF before the header; -EPROTO or
 * -EBADMSG for a malformed message (truncated, too large, bad flags,
 * MSG_CTRUNC); -ETIMEDOUT when the socket's receive timeout expired or the
 * message was not complete within VU_MSG_DEADLINE_MS; other negative errno
 * from the socket. On any error no fd from the message stays open.
 */
int vu_msg_recv(int sock, struct vu_msg *msg);

/**
 * vu_msg_send() - write hdr + hdr.size payload bytes and msg->nfds fds.
 * Return: 0, -ETIMEDOUT when the socket's send timeout expired (the peer
 * does not read), or another negative errno.
 */
int vu_msg_send(int sock, const struct vu_msg *msg);

/**
 * vu_msg_check() - per-request checks of payload size and fd count that
 * need no session state.
 * Return: 0, -EBADMSG for a wrong size, -EPROTO for wrong fds or flags,
 * -EOPNOTSUPP for an unknown request number.
 */
int vu_msg_check(const struct vu_msg *msg);

/**
 * vu_msg_check_fdless_mem() - vu_msg_check() on a transport that shares
 * memory by other means: SET_MEM_TABLE must then come with no fds at all.
 */
int vu_msg_check_fdless_mem(const struct vu_msg *msg);

/** vu_msg_close_fds() - close and forget every fd still held by @msg. */
void vu_msg_close_fds(struct vu_msg *msg);

/** vu_msg_take_fd() - take fd @i out of @msg (the message forgets it). */
int vu_msg_take_fd(struct vu_msg *msg, unsigned int i);

/** vu_request_name() - "SET_MEM_TABLE" etc., or "UNKNOWN". */
const char *vu_request_name(uint32_t request);

#endif
