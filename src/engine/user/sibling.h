/* SPDX-License-Identifier: MIT */
/*
 * Sibling routing between the VMs one daemon serves (PROTOCOLS.md §4.4,
 * vhost-device-vsock's convention): a guest packet whose dst_cid is another
 * VM's CID, when the two VMs share a group, is copied whole (header and
 * payload) into that VM's inbox and injected into its guest's rx ring as
 * is. The daemon is a switch: the two guest kernels run the connection,
 * with their own credit and state.
 *
 * Threads: each VM runs on its own thread; a port (one VM's inbox) is
 * filled by other VMs' threads and drained by its owner, under the port's
 * mutex. No thread ever holds two ports' locks. A port's owner is woken
 * through its eventfd when the inbox goes from empty to non-empty, and a
 * sender that found the inbox full is woken the same way once space frees.
 *
 * Limits and invariants:
 * - At most SIB_MAX_PORTS VMs, as many as the daemon serves (bit maps say
 *   who reaches whom and who waits for room).
 * - Each inbox is a byte ring of records (u32 length, 44-byte header,
 *   payload); it never holds more than its capacity, so a guest flooding
 *   its siblings is held back (sib_send() returns -EAGAIN) instead of
 *   growing memory. Capacity is at least two largest packets.
 * - A closed port (its device not running) refuses packets: they are
 *   dropped by the sender, and queued ones are discarded when it closes,
 *   so a VM that is gone never holds its siblings back.
 * - A record larger than the receiving guest's rx buffer is delivered in
 *   pieces, as Linux vhost does: the header is repeated with len cut to
 *   the piece, and SEQPACKET EOM/EOR stay only on the last piece.
 * - Nothing here allocates per packet; set-up and tear-down are
 *   single-threaded (before the VM threads start, after they are joined).
 */
#ifndef ENGINE_USER_SIBLING_H
#define ENGINE_USER_SIBLING_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "engine/user/pkt.h"

#define SIB_MAX_PORTS 1024u
#define SIB_MAP_WORDS (SIB_MAX_PORTS / 64u)
#define SIB_RECORD_MAX (4u + VSOCK_HDR_LEN + VSOCK_MAX_PKT_LEN)
#define SIB_DEFAULT_CAPACITY (512u * 1024)

/* One VM's inbox and identity. */
struct sib_port {
	pthread_mutex_t lock;
	/* fixed once the hub is linked */
	uint64_t cid;
	const char *groups; /* "g1+g2", borrowed */
	uint64_t reach[SIB_MAP_WORDS];   /* bit j: port j shares a group with this one */
	int wake_fd;        /* eventfd of the owner's loop */
	/* under lock */
	bool open;          /* the owner's device takes packets */
	uint8_t *buf;       /* byte ring of records; NULL when nobody reaches us */
	uint32_t cap;
	uint32_t head;      /* offset of the first record */
	uint32_t used;      /* bytes held */
	uint32_t frag_off;  /* payload bytes of the first record already delivered */
	uint64_t waiters[SIB_MAP_WORDS]; /* bit j: port j found us full and waits */
};

struct sib_hub {
	unsigned int n;
	struct sib_port port[SIB_MAX_PORTS];
};

/** sib_reaches() - Return: whether port @from may send to port @to. */
bool sib_reaches(const struct sib_hub *h, unsigned int from, unsigned int to);

/**
 * sib_hub_init() - an empty hub.
 * @h: the hub
 */
void sib_hub_init(struct sib_hub *h);

/**
 * sib_hub_add() - describe the next VM.
 * @h: the hub
 * @cid: its guest CID (unique: the command line refuses duplicates)
 * @groups: its groups, "name(+name)*" (borrowed; must outlive the hub)
 * @wake_fd: eventfd its loop watches (borrowed)
 *
 * Return: the port index, or -ENOSPC past SIB_MAX_PORTS.
 */
int sib_hub_add(struct sib_hub *h, uint64_t cid, const char *groups, int wake_fd);

/**
 * sib_hub_link() - work out who reaches whom (a shared group name) and
 * allocate inboxes of @cap bytes for the ports somebody can reach.
 * @h: the hub
 * @cap: inbox size in bytes; raised to 2 * SIB_RECORD_MAX if smaller
 *
 * Return: 0 or -ENOMEM.
 */
int sib_hub_link(struct sib_hub *h, uint32_t cap);

/** sib_hub_fini() - free the inboxes (every VM thread must be done). */
void sib_hub_fini(struct sib_hub *h);

/**
 * sib_groups_share() - whether two group lists have a name in common.
 * @a: "name(+name)*"
 * @b: "name(+name)*"
 *
 * Return: true if some name appears in both.
 */
bool sib_groups_share(const char *a, const char *b);

/**
 * sib_send() - copy one guest packet into a sibling's inbox.
 * @h: the hub
 * @from: the sender's port index
 * @hdr: the sender's private header copy (already checked: src_cid is the
 *       sender's, len bytes are in @payload)
 * @payload: the payload, in the sender's guest memory
 * @npayload: entries in @payload
 *
 * Return: 0 queued; -EHOSTUNREACH when no VM has dst_cid or it shares no
 * group with the sender; -ENOTCONN when that VM's device is not running;
 * -EAGAIN when its inbox is full (the sender is woken when space frees,
 * and should try again then).
 */
int sib_send(struct sib_hub *h, unsigned int from, const struct pkt_hdr *hdr,
	     const struct iovec *payload, size_t npayload);

/**
 * sib_recv() - move the next packet (or the next piece of it) from the
 * inbox of port @idx into a guest rx buffer.
 * @h: the hub
 * @idx: the receiving port (called by its owner only)
 * @rx: the device-writable buffer
 * @nrx: entries in @rx
 * @len: receives the bytes written (the used length)
 *
 * Return: 0; -EAGAIN when the inbox is empty; -ENOBUFS when @rx cannot
 * hold the header and at least one payload byte of a packet that has one.
 */
int sib_recv(struct sib_hub *h, unsigned int idx, const struct iovec *rx, size_t nrx,
	     size_t *len);

/**
 * sib_pending() - Return: whether the inbox of port @idx holds a packet.
 * @h: the hub
 * @idx: the port
 */
bool sib_pending(struct sib_hub *h, unsigned int idx);

/**
 * sib_set_open() - the device of port @idx starts or stops taking packets.
 * @h: the hub
 * @idx: the port
 * @open: true while its guest's rx ring runs
 *
 * Closing discards what the inbox holds and wakes waiting senders (their
 * next try finds the port closed and drops).
 */
void sib_set_open(struct sib_hub *h, unsigned int idx, bool open);

#endif
