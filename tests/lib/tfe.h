/* SPDX-License-Identifier: MIT */
/*
 * tfe: the test front end library. It plays both parties the daemon talks
 * to, in one process:
 *
 *   - the VMM: a vhost-user front end on a Unix socket (tfe_fe_*), with one
 *     helper per request and the canned QEMU and crosvm start sequences
 *     (tfe_setup_*), plus raw senders so hostile suites can send anything;
 *   - the guest: RAM in a memfd laid out like QEMU's (tfe_mem_*), the driver
 *     side of virtio split rings in that RAM (tfe_vring_*), and a virtio-vsock
 *     driver with a small stream socket layer (tfe_vsock_*), doing at packet
 *     level what a Linux guest's driver does;
 *   - a helper to run the daemon as a child process (tfe_daemon_*).
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; nothing here calls exit() or assert()s on peer input.
 * Every wait takes a timeout in milliseconds. Nothing is thread-safe: one
 * thread drives one tfe_vm. Values from the peer (replies, used ring entries,
 * packet headers) are checked before use, so a broken daemon produces an
 * error return, never a crash.
 *
 * Addresses: "gpa" is a guest physical address; "uva" is the front-end
 * virtual address reported to the back end, which, as in QEMU, is simply
 * this process's own pointer to that guest memory.
 */
#ifndef TFE_H
#define TFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vhost_user/proto.h"

/* ------------------------------------------------------------------ */
/* Guest memory                                                        */
/* ------------------------------------------------------------------ */

/* The legacy VGA hole QEMU leaves in low memory (REAL-PEERS §5). */
#define TFE_MEM_HOLE_START 0xa0000ull
#define TFE_MEM_HOLE_END 0xc0000ull
#define TFE_MEM_MAX_REGIONS 2u
/* First gpa handed out by the allocator: gpa 0 stays unused, so 0 is never a valid buffer. */
#define TFE_MEM_ALLOC_START 0x1000ull

struct tfe_mem_region {
	uint64_t gpa;          /* guest physical start */
	uint64_t size;         /* bytes */
	uint64_t mmap_offset;  /* offset of gpa in the memfd */
};

struct tfe_mem {
	int fd;                /* memfd holding all guest RAM; -1 when not set up */
	uint8_t *base;         /* our shared mapping of the whole memfd */
	uint64_t size;         /* bytes in the memfd */
	unsigned int nregions;
	struct tfe_mem_region regions[TFE_MEM_MAX_REGIONS];
	uint64_t next;         /* bump allocator: next free gpa */
};

/**
 * tfe_mem_init() - create guest RAM of @size bytes in a memfd and map it.
 * @hole: false: one region {gpa 0, size, offset 0}; true: QEMU's layout,
 *        {gpa 0, 0xa0000, off 0} and {gpa 0xc0000, size - 0xc0000,
 *        off 0xc0000} on the same memfd, with [0xa0000, 0xc0000) unmapped
 *        for the guest (@size must then exceed 0xc0000).
 * Return: 0 or negative errno (-EINVAL for a bad size).
 */
int tfe_mem_init(struct tfe_mem *m, uint64_t size, bool hole);

/** tfe_mem_fini() - unmap and close; safe on a zeroed or finished struct. */
void tfe_mem_fini(struct tfe_mem *m);

/**
 * tfe_mem_ptr() - our pointer to guest range [gpa, gpa + len).
 * Return: the pointer, or NULL unless the whole range (len 0 counts as 1
 * byte) lies inside one region; overflow-safe.
 */
void *tfe_mem_ptr(const struct tfe_mem *m, uint64_t gpa, uint64_t len);

/**
 * tfe_mem_uva() - the front-end virtual address of @gpa.
 * Return: the uva, or 0 when @gpa is not in any region.
 */
uint64_t tfe_mem_uva(const struct tfe_mem *m, uint64_t gpa);

/**
 * tfe_mem_alloc() - take @len bytes aligned to @align (a power of two) from
 * the bump allocator; never straddles a region boundary or the hole.
 * Nothing is ever freed: a test that needs fresh memory makes a new tfe_mem.
 * Return: 0 with *@gpa set, -EINVAL for a bad @align or @len 0, -ENOMEM.
 */
int tfe_mem_alloc(struct tfe_mem *m, uint64_t len, uint64_t align, uint64_t *gpa);

/**
 * tfe_mem_table() - the SET_MEM_TABLE regions (uva = our pointers).
 * Return: the number of entries written to @out (at most TFE_MEM_MAX_REGIONS).
 */
unsigned int tfe_mem_table(const struct tfe_mem *m, struct vu_mem_region *out);

/* ------------------------------------------------------------------ */
/* vhost-user front end                                                */
/* ------------------------------------------------------------------ */

#define TFE_MAX_QUEUES 3u
#define TFE_DEFAULT_TIMEOUT_MS 2000

/* When a request without a reply of its own carries NEED_REPLY. */
enum tfe_need_reply {
	TFE_NR_QEMU = 0,  /* like QEMU: SET_MEM_TABLE only, if REPLY_ACK was negotiated */
	TFE_NR_NONE,      /* never */
	TFE_NR_ALL,       /* every such request, if REPLY_ACK was negotiated */
	TFE_NR_FORCE,     /* every such request, negotiated or not (hostile) */
};

struct tfe_fe {
	int sock;                      /* connected socket; -1 when closed */
	int timeout_ms;                /* how long to wait for a reply */
	enum tfe_need_reply need_reply;
	uint64_t protocol_acked;       /* last SET_PROTOCOL_FEATURES value sent */
	uint64_t last_ack;             /* u64 of the last REPLY_ACK reply */
	/* eventfds the front end owns, created by tfe_fe_eventfds(); -1 if none */
	int kick[TFE_MAX_QUEUES];
	int call[TFE_MAX_QUEUES];
	int err[TFE_MAX_QUEUES];
};

/**
 * tfe_fe_init() - adopt an already connected socket (e.g. a socketpair end).
 * @sock: owned by @fe from now on; tfe_fe_close() closes it.
 */
void tfe_fe_init(struct tfe_fe *fe, int sock);

/**
 * tfe_fe_connect() - connect to the back end's socket at @path, retrying
 * while it does not exist yet or refuses, for up to @timeout_ms.
 * Return: 0, -ETIMEDOUT, or another negative errno (-ENAMETOOLONG...).
 */
int tfe_fe_connect(struct tfe_fe *fe, const char *path, int timeout_ms);

/** tfe_fe_close() - close the socket and every eventfd; idempotent. */
void tfe_fe_close(struct tfe_fe *fe);

/**
 * tfe_fe_eventfds() - create kick, call and err eventfds (non-blocking) for
 * rings 0..@nqueues-1 that have none yet.
 * Return: 0, -EINVAL for @nqueues > TFE_MAX_QUEUES, or negative errno.
 */
int tfe_fe_eventfds(struct tfe_fe *fe, unsigned int nqueues);

/**
 * tfe_fe_send() - send one message exactly as given: header {@request,
 * @flags, @size}, @size bytes of @payload, and @nfds descriptors (copies are
 * sent; the caller keeps its fds). No check of any field: hostile tests use
 * it to send garbage.
 * Return: 0 or negative errno (-EPIPE when the back end has gone).
 */
int tfe_fe_send(struct tfe_fe *fe, uint32_t request, uint32_t flags, const void *payload,
		uint32_t size, const int *fds, unsigned int nfds);

/**
 * tfe_fe_send_bytes() - write @len raw bytes (any framing, possibly a
 * partial header) with @nfds descriptors attached to the first byte.
 * Return: 0 or negative errno.
 */
int tfe_fe_send_bytes(struct tfe_fe *fe, const void *buf, size_t len, const int *fds,
		      unsigned int nfds);

/**
 * tfe_fe_recv() - read one message from the back end, whatever it is.
 * @hdr:     the header as received
 * @payload: gets min(hdr.size, @cap) bytes; a longer payload is drained and
 *           reported as -EMSGSIZE
 * @fds/@nfds: descriptors that came with it (may be NULL: they are closed);
 *           *@nfds is in/out: capacity in, count out
 * Return: payload bytes stored, -ETIMEDOUT, -ECONNRESET on EOF, -EMSGSIZE,
 * or another negative errno.
 */
int tfe_fe_recv(struct tfe_fe *fe, struct vu_hdr *hdr, void *payload, size_t cap, int *fds,
		unsigned int *nfds, int timeout_ms);

/**
 * tfe_fe_reply() - wait for the reply to @request and check it like QEMU
 * does: same request id, flags exactly 0x5, size exactly @size, no fds.
 * Return: 0, -EPROTO for a wrong id, flags, size or attached fds,
 * -ETIMEDOUT, -ECONNRESET, or another negative errno.
 */
int tfe_fe_reply(struct tfe_fe *fe, uint32_t request, void *payload, uint32_t size);

/**
 * tfe_fe_request() - send a request that has no reply of its own; with
 * @need_reply set NEED_REPLY and wait for the u64 ack (kept in
 * fe->last_ack).
 * Return: 0, -EIO when the back end acked with a non-zero value, or an
 * error from sending or from tfe_fe_reply().
 */
int tfe_fe_request(struct tfe_fe *fe, uint32_t request, const void *payload, uint32_t size,
		   const int *fds, unsigned int nfds, bool need_reply);

/**
 * tfe_fe_wants_ack() - whether the helpers below set NEED_REPLY on
 * @request, from fe->need_reply and the negotiated protocol features.
 * Return: true when they do.
 */
bool tfe_fe_wants_ack(const struct tfe_fe *fe, uint32_t request);

/**
 * tfe_fe_get_u64() - GET_FEATURES, GET_PROTOCOL_FEATURES or GET_QUEUE_NUM.
 * Return: 0 with *@val set, or an error from tfe_fe_reply().
 */
int tfe_fe_get_u64(struct tfe_fe *fe, uint32_t request, uint64_t *val);

/**
 * tfe_fe_set_u64() - SET_FEATURES, SET_PROTOCOL_FEATURES or any request
 * whose payload is one u64. SET_PROTOCOL_FEATURES also records the value in
 * fe->protocol_acked (before sending, so an ack on it is already expected
 * when REPLY_ACK is part of @val).
 * Return: as tfe_fe_request().
 */
int tfe_fe_set_u64(struct tfe_fe *fe, uint32_t request, uint64_t val);

/** tfe_fe_set_owner() - SET_OWNER. Return: as tfe_fe_request(). */
int tfe_fe_set_owner(struct tfe_fe *fe);

/**
 * tfe_fe_set_mem_table() - SET_MEM_TABLE for @m, one copy of the memfd per
 * region, like QEMU. Return: as tfe_fe_request().
 */
int tfe_fe_set_mem_table(struct tfe_fe *fe, const struct tfe_mem *m);

/**
 * tfe_fe_set_vring_state() - SET_VRING_NUM, SET_VRING_BASE,
 * SET_VRING_ENABLE (or any other {index, num} request).
 * Return: as tfe_fe_request().
 */
int tfe_fe_set_vring_state(struct tfe_fe *fe, uint32_t request, uint32_t index, uint32_t num);

/** tfe_fe_set_vring_addr() - SET_VRING_ADDR. Return: as tfe_fe_request(). */
int tfe_fe_set_vring_addr(struct tfe_fe *fe, const struct vu_vring_addr *addr);

/**
 * tfe_fe_set_vring_fd() - SET_VRING_KICK, _CALL or _ERR for ring @index with
 * @fd attached, or with the no-fd flag (0x100) when @fd < 0.
 * Return: as tfe_fe_request().
 */
int tfe_fe_set_vring_fd(struct tfe_fe *fe, uint32_t request, uint32_t index, int fd);

/**
 * tfe_fe_get_vring_base() - GET_VRING_BASE for ring @index.
 * Return: 0 with *@num set (the reply's index must match), or an error.
 */
int tfe_fe_get_vring_base(struct tfe_fe *fe, uint32_t index, uint32_t *num);

/**
 * tfe_fe_get_config() - GET_CONFIG of @size bytes at @offset into @out.
 * Return: 0, -EIO for the back end's error form (reply size 0), -EINVAL for
 * @size > VU_MAX_CONFIG_SIZE, or an error from tfe_fe_reply() (a reply of
 * any other shape is -EPROTO).
 */
int tfe_fe_get_config(struct tfe_fe *fe, uint32_t offset, uint32_t size, void *out);

/* ------------------------------------------------------------------ */
/* Split virtqueue, driver side                                        */
/* ------------------------------------------------------------------ */

#define TFE_VDESC_F_NEXT 1u
#define TFE_VDESC_F_WRITE 2u
#define TFE_VDESC_F_INDIRECT 4u
#define TFE_VUSED_F_NO_NOTIFY 1u
#define TFE_VAVAIL_F_NO_INTERRUPT 1u

/* Virtio feature bits the library knows about. */
#define TFE_F_INDIRECT_DESC 28
#define TFE_F_EVENT_IDX 29
#define TFE_F_VERSION_1 32
#define TFE_F_ACCESS_PLATFORM 33
#define TFE_F_LOG_ALL 26

/* Ring layouts as they sit in guest memory (little-endian fields). */
struct tfe_vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct tfe_vavail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];       /* num entries, then used_event with EVENT_IDX */
};

struct tfe_vused_elem {
	uint32_t id;
	uint32_t len;
};

struct tfe_vused {
	uint16_t flags;
	uint16_t idx;
	struct tfe_vused_elem ring[];  /* num entries, then avail_event (le16) */
};

/* tfe_vring_init() flags */
#define TFE_VRING_EVENT_IDX 0x1u
#define TFE_VRING_INDIRECT 0x2u

/* Most entries one chain may have (direct or in its indirect table). */
#define TFE_VRING_MAX_CHAIN 16u

struct tfe_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;            /* device-writable */
};

struct tfe_vring {
	struct tfe_mem *mem;
	uint16_t num;                  /* queue size, a power of two */
	bool event_idx;
	bool indirect;                 /* indirect tables were allocated */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct tfe_vdesc *desc;
	struct tfe_vavail *avail;
	struct tfe_vused *used;
	uint64_t indirect_gpa;         /* num tables of TFE_VRING_MAX_CHAIN entries */
	uint16_t avail_idx;            /* our shadow of avail->idx */
	uint16_t kicked_idx;           /* avail_idx at the last kick (EVENT_IDX) */
	uint16_t last_used;            /* next used entry to read */
	uint16_t free_head;            /* first free descriptor */
	uint16_t num_free;
	uint16_t *next_free;           /* private free list (device can't corrupt it) */
	uint16_t *chain_len;           /* per head: descriptors taken, 0 = free */
	uintptr_t *token;              /* per head: caller's cookie */
	int kick_fd;                   /* borrowed; -1: kicks are dropped */
	int call_fd;                   /* borrowed; -1: waits poll the ring */
};

/**
 * tfe_vring_init() - allocate a ring of @num entries in @mem: descriptor
 * table (4 KiB aligned), avail ring right after it, used ring 64-byte
 * aligned; with TFE_VRING_INDIRECT also one indirect table per descriptor.
 * Return: 0, -EINVAL unless @num is a power of two in 1..32768, -ENOMEM.
 */
int tfe_vring_init(struct tfe_vring *vr, struct tfe_mem *mem, uint16_t num, unsigned int flags);

/** tfe_vring_fini() - free private state (guest memory is not reclaimed). */
void tfe_vring_fini(struct tfe_vring *vr);

/** tfe_vring_set_fds() - the kick and call eventfds (borrowed) of this ring. */
void tfe_vring_set_fds(struct tfe_vring *vr, int kick_fd, int call_fd);

/**
 * tfe_vring_addr() - the SET_VRING_ADDR payload for this ring as ring
 * @index (uvas, flags 0, log 0).
 */
void tfe_vring_addr(const struct tfe_vring *vr, uint32_t index, struct vu_vring_addr *out);

/**
 * tfe_vring_add() - expose a chain of @n buffers and publish it in the
 * avail ring (release barrier before the idx store). Readable buffers must
 * come before writable ones (not enforced: hostile tests may break it).
 * @indirect: put the chain in this head's indirect table (needs
 *            TFE_VRING_INDIRECT)
 * @token:    returned by tfe_vring_get_used() for this chain
 * Return: the head index, -EINVAL for @n 0 or > TFE_VRING_MAX_CHAIN or
 * @indirect without tables, -ENOSPC when too few descriptors are free.
 */
int tfe_vring_add(struct tfe_vring *vr, const struct tfe_buf *bufs, unsigned int n, bool indirect,
		  uintptr_t token);

/**
 * tfe_vring_kick_needed() - whether the device asked to be notified of what
 * was published since the last kick (EVENT_IDX: avail_event; otherwise the
 * used ring's NO_NOTIFY flag). Issues the full barrier the check needs.
 * Return: true when a kick is due.
 */
bool tfe_vring_kick_needed(struct tfe_vring *vr);

/**
 * tfe_vring_kick() - notify the device if tfe_vring_kick_needed().
 * Return: 1 kicked, 0 suppressed, or negative errno from the eventfd write.
 */
int tfe_vring_kick(struct tfe_vring *vr);

/** tfe_vring_notify() - write the kick eventfd unconditionally. Return: 0 or -errno. */
int tfe_vring_notify(struct tfe_vring *vr);

/**
 * tfe_vring_get_used() - take the next used entry, if any, and free its
 * descriptors.
 * Return: 1 with *@len and *@token set, 0 when none is pending, -EIO when the
 * device returned an id that is not an outstanding head or moved used->idx
 * more than num past our position (the entry is skipped).
 */
int tfe_vring_get_used(struct tfe_vring *vr, uint32_t *len, uintptr_t *token);

/** tfe_vring_has_used() - whether tfe_vring_get_used() would return an entry. Return: bool. */
bool tfe_vring_has_used(const struct tfe_vring *vr);

/**
 * tfe_vring_arm() - ask for an interrupt on the next used entry (EVENT_IDX:
 * used_event = last_used) and recheck.
 * Return: true when used entries are already pending (no need to sleep).
 */
bool tfe_vring_arm(struct tfe_vring *vr);

/**
 * tfe_vring_wait() - wait until a used entry is pending: arm, then sleep on
 * the call eventfd (drained when it fires) in short slices, re-polling the
 * ring after each, so a missed interrupt costs at most a slice.
 * Return: 0 or -ETIMEDOUT.
 */
int tfe_vring_wait(struct tfe_vring *vr, int timeout_ms);

/** tfe_vring_need_event() - virtio's vring_need_event(). Return: bool. */
bool tfe_vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx);

/** tfe_vring_used_event() - pointer to used_event (end of avail ring). Return: pointer. */
uint16_t *tfe_vring_used_event(const struct tfe_vring *vr);

/** tfe_vring_avail_event() - pointer to avail_event (end of used ring). Return: pointer. */
uint16_t *tfe_vring_avail_event(const struct tfe_vring *vr);

/* Hostile switches: raw ring writes with no bookkeeping and no checks. */

/**
 * tfe_vring_write_desc() - write descriptor @i (taken modulo num) verbatim.
 * Return: 0.
 */
int tfe_vring_write_desc(struct tfe_vring *vr, uint16_t i, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t next);

/**
 * tfe_vring_push_avail() - put @head (any value) in the next avail slot and
 * publish it, without touching the free list.
 * Return: 0.
 */
int tfe_vring_push_avail(struct tfe_vring *vr, uint16_t head);

/** tfe_vring_set_avail_idx() - store any avail->idx (e.g. jump by > num). Return: 0. */
int tfe_vring_set_avail_idx(struct tfe_vring *vr, uint16_t idx);

/* ------------------------------------------------------------------ */
/* Canned front-end sequences                                          */
/* ------------------------------------------------------------------ */

struct tfe_setup_opts {
	uint16_t queue_size;         /* 0: 128 (QEMU) or 256 (crosvm) */
	uint64_t want_features;      /* acked when offered; 0: VERSION_1 only */
	bool no_protocol_bit;        /* leave bit 30 out of SET_FEATURES */
	enum tfe_need_reply need_reply;
	uint64_t more_protocol;      /* QEMU: protocol features acked beyond MQ|REPLY_ACK|CONFIG */
};

/* One VMM + guest: the front-end connection and the guest RAM and rings it shares. */
struct tfe_vm {
	struct tfe_fe fe;
	struct tfe_mem mem;
	struct tfe_vring vq[TFE_MAX_QUEUES];
	unsigned int nvq;            /* rings set up on the back end */
	uint64_t features_offered;   /* GET_FEATURES */
	uint64_t features_acked;     /* SET_FEATURES (with bit 30 if sent) */
	uint64_t protocol_offered;   /* GET_PROTOCOL_FEATURES, 0 if not asked */
	uint64_t queue_num;          /* GET_QUEUE_NUM, 0 if not asked */
	uint64_t config_cid;         /* GET_CONFIG guest_cid, 0 if not asked */
};

/**
 * tfe_vm_open() - guest RAM of @mem_size bytes (QEMU's layout with the
 * hole when @hole) and a front end connected to @path.
 * Return: 0 or negative errno (nothing left open on error).
 */
int tfe_vm_open(struct tfe_vm *vm, const char *path, uint64_t mem_size, bool hole, int timeout_ms);

/** tfe_vm_close() - close the front end (the back end sees EOF), rings, RAM. */
void tfe_vm_close(struct tfe_vm *vm);

/**
 * tfe_setup_qemu() - QEMU 7.2's start sequence for vhost-user-vsock
 * (REAL-PEERS §5): rings 0 and 1 only, event queue kept by the "VMM".
 * Return: 0, or the first failing step's error (logged with its name).
 */
int tfe_setup_qemu(struct tfe_vm *vm, const struct tfe_setup_opts *o);

/**
 * tfe_setup_crosvm() - crosvm's sequence (PROTOCOLS §1.11): protocol
 * features MQ|CONFIG only, all three rings.
 * Return: 0 or the first failing step's error (logged).
 */
int tfe_setup_crosvm(struct tfe_vm *vm, const struct tfe_setup_opts *o);

/**
 * tfe_resume_crosvm() - the VMM reconnects to @path with the guest still
 * running (after a back-end restart): a new connection, crosvm's
 * negotiation, the same memory and rings, each ring resuming at its used
 * index. The rings' kick and call eventfds are new.
 * Return: 0 or the first failing step's error (logged).
 */
int tfe_resume_crosvm(struct tfe_vm *vm, const char *path, const struct tfe_setup_opts *o,
		      int timeout_ms);

/**
 * tfe_stop_qemu() - QEMU's stop: SET_VRING_ENABLE 0 on rings 0 and 1, then
 * GET_VRING_BASE on each; @base (may be NULL) gets the two answers.
 * Return: 0 or the first error.
 */
int tfe_stop_qemu(struct tfe_vm *vm, uint32_t base[2]);

/* ------------------------------------------------------------------ */
/* Guest virtio-vsock driver                                           */
/* ------------------------------------------------------------------ */

#define TFE_VSOCK_HDR_SIZE 44u
#define TFE_VSOCK_HOST_CID 2u
#define TFE_VSOCK_TYPE_STREAM 1u
#define TFE_VSOCK_TYPE_SEQPACKET 2u
#define TFE_VSOCK_SHUTDOWN_RCV 1u
#define TFE_VSOCK_SHUTDOWN_SEND 2u
#define TFE_VSOCK_SHUTDOWN_BOTH 3u
#define TFE_VSOCK_MAX_PKT 65536u
#define TFE_VSOCK_MAX_CONNS 16u
#define TFE_VSOCK_MAX_LISTEN 8u
#define TFE_VSOCK_DEFAULT_BUF_ALLOC (256u * 1024u)

enum tfe_vsock_op {
	TFE_VSOCK_OP_INVALID = 0,
	TFE_VSOCK_OP_REQUEST = 1,
	TFE_VSOCK_OP_RESPONSE = 2,
	TFE_VSOCK_OP_RST = 3,
	TFE_VSOCK_OP_SHUTDOWN = 4,
	TFE_VSOCK_OP_RW = 5,
	TFE_VSOCK_OP_CREDIT_UPDATE = 6,
	TFE_VSOCK_OP_CREDIT_REQUEST = 7,
};

/* A packet header in host byte order; tfe_vsock_hdr_pack() makes the wire form. */
struct tfe_vsock_pkt {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/** tfe_vsock_hdr_pack() - the 44 little-endian wire bytes of @p (PROTOCOLS §2.2). */
void tfe_vsock_hdr_pack(uint8_t out[TFE_VSOCK_HDR_SIZE], const struct tfe_vsock_pkt *p);

/** tfe_vsock_hdr_unpack() - parse 44 wire bytes into @p. */
void tfe_vsock_hdr_unpack(struct tfe_vsock_pkt *p, const uint8_t in[TFE_VSOCK_HDR_SIZE]);

/** tfe_vsock_op_name() - "REQUEST" etc., or "UNKNOWN". Return: a static string. */
const char *tfe_vsock_op_name(uint16_t op);

/**
 * tfe_vsock_credit() - bytes a sender may still send (PROTOCOLS §2.3):
 * peer_buf_alloc - (tx_cnt - peer_fwd_cnt) in u32 arithmetic, 0 when the
 * peer reports more in flight than its buffer (a lying or confused peer).
 * Return: the credit.
 */
uint32_t tfe_vsock_credit(uint32_t peer_buf_alloc, uint32_t tx_cnt, uint32_t peer_fwd_cnt);

enum tfe_conn_state {
	TFE_CONN_FREE = 0,
	TFE_CONN_CONNECTING,   /* REQUEST sent, waiting for RESPONSE or RST */
	TFE_CONN_ESTABLISHED,  /* includes half-closed */
	TFE_CONN_CLOSING,      /* we sent SHUTDOWN(both), waiting for RST */
	TFE_CONN_CLOSED,       /* RST seen or sent; data may still be queued */
};

struct tfe_vsock_conn {
	enum tfe_conn_state state;
	uint64_t peer_cid;
	uint32_t peer_port;
	uint32_t local_port;
	bool accepted;             /* handed out by tfe_vsock_accept() */
	bool incoming;             /* created by a peer REQUEST */
	int error;                 /* why it closed: -ECONNREFUSED, -ECONNRESET, -ENOBUFS... */
	/* credit (PROTOCOLS §2.3); all free-running u32 */
	uint32_t buf_alloc;        /* ours */
	uint32_t fwd_cnt;          /* bytes handed to the reader */
	uint32_t fwd_cnt_sent;     /* fwd_cnt in the last packet we sent */
	uint32_t tx_cnt;           /* payload bytes sent */
	uint32_t peer_buf_alloc;
	uint32_t peer_fwd_cnt;
	bool credit_requested;     /* CREDIT_REQUEST sent, no update since */
	uint32_t peer_shutdown;    /* TFE_VSOCK_SHUTDOWN_* bits received */
	uint32_t local_shutdown;   /* bits we sent */
	bool rst_received;
	bool responded;            /* a RESPONSE came (connect succeeded) */
	bool pending_update;       /* a CREDIT_UPDATE is owed (tx ring was full) */
	/* received payload not yet read: a ring of buf_alloc bytes */
	uint8_t *rxq;
	uint32_t rxq_head;
	uint32_t rxq_len;
};

struct tfe_vsock_opts {
	uint32_t buf_alloc;        /* per connection; 0: 256 KiB */
	uint32_t rx_buf_size;      /* bytes per rx buffer incl. header; 0: 4096 */
	bool rx_split;             /* header and payload in two descriptors */
	uint32_t tx_pkt_max;       /* largest RW payload; 0: 16 KiB; <= 64 KiB */
	bool tx_indirect;          /* tx chains in indirect tables (ring needs them) */
	uint32_t credit_threshold; /* send CREDIT_UPDATE after this much read; 0: buf_alloc/4 */
};

/* Observer called for every well-formed packet received, before it is handled. */
typedef void (*tfe_vsock_pkt_cb)(void *ctx, const struct tfe_vsock_pkt *p, const uint8_t *payload);

struct tfe_vsock {
	struct tfe_mem *mem;
	struct tfe_vring *rx, *tx, *ev;
	uint64_t cid;
	struct tfe_vsock_opts o;
	uint64_t rx_pool;          /* gpa: rx->num buffers of rx_buf_size */
	uint64_t tx_pool;          /* gpa: tx_slots slots of tx_slot_size */
	uint64_t ev_pool;
	uint32_t tx_slot_size;
	uint16_t tx_slots;
	uint16_t tx_nfree;
	uint16_t *tx_free;         /* stack of free tx slots */
	struct tfe_vsock_conn conns[TFE_VSOCK_MAX_CONNS];
	uint32_t listen_ports[TFE_VSOCK_MAX_LISTEN];
	unsigned int nlisten;
	tfe_vsock_pkt_cb on_pkt;
	void *on_pkt_ctx;
	/* non-STREAM packets are left to on_pkt (no RST): a test plays SEQPACKET itself */
	bool other_types_raw;
	/* counters, for tests and diagnostics */
	unsigned long rx_pkts, tx_pkts, bad_pkts, rst_sent, dropped_replies, events;
};

/**
 * tfe_vsock_init() - a guest driver for guest CID @cid over @rx and @tx
 * (and optionally the event ring @ev, which gets 4-byte buffers): allocates
 * buffer pools in @mem and fills the rx ring (and kicks it).
 * Return: 0, -EINVAL for bad options, -ENOMEM.
 */
int tfe_vsock_init(struct tfe_vsock *vs, struct tfe_mem *mem, struct tfe_vring *rx,
		   struct tfe_vring *tx, struct tfe_vring *ev, uint64_t cid,
		   const struct tfe_vsock_opts *o);

/** tfe_vsock_fini() - free connection buffers and private state. */
void tfe_vsock_fini(struct tfe_vsock *vs);

/**
 * tfe_vsock_poll() - do all pending work without sleeping: reclaim tx
 * buffers, handle every received packet, refill and kick rx, send owed
 * credit updates.
 * Return: the number of used entries consumed (rx packets plus tx and event
 * completions; 0 means the device did nothing), or -EIO when the device
 * returned a bad rx entry.
 */
int tfe_vsock_poll(struct tfe_vsock *vs);

/**
 * tfe_vsock_wait() - wait up to @timeout_ms for the device to do something:
 * sleeps on the rx and tx call eventfds in slices of at most 10 ms and runs
 * tfe_vsock_poll() after each, returning after the first slice with work.
 * Return: as tfe_vsock_poll() (0 after the timeout with nothing done).
 */
int tfe_vsock_wait(struct tfe_vsock *vs, int timeout_ms);

/**
 * tfe_vsock_pollfds() - the call eventfds to add to a caller's poll() set.
 * Return: the number of fds written to @fds (at most 2).
 */
unsigned int tfe_vsock_pollfds(const struct tfe_vsock *vs, int fds[2]);

/**
 * tfe_vsock_send_raw() - send one packet made of @hdr_len raw header bytes
 * (need not be 44 nor well formed) and @len payload bytes, in two
 * descriptors like Linux (one chain; indirect if so configured).
 * Return: 0, -EAGAIN when no tx slot or descriptors are free, -EMSGSIZE
 * when it does not fit a tx slot, or a kick error.
 */
int tfe_vsock_send_raw(struct tfe_vsock *vs, const void *hdr, size_t hdr_len,
		       const void *payload, size_t len);

/**
 * tfe_vsock_send_pkt() - send a packet built from @p (p->len is set from
 * @len). Return: as tfe_vsock_send_raw().
 */
int tfe_vsock_send_pkt(struct tfe_vsock *vs, struct tfe_vsock_pkt *p, const void *payload,
		       size_t len);

/**
 * tfe_vsock_conn_pkt() - a header for @conn: its tuple, stream type, @op,
 * @flags, our buf_alloc and fwd_cnt.
 */
void tfe_vsock_conn_pkt(const struct tfe_vsock *vs, const struct tfe_vsock_conn *c,
			uint16_t op, uint32_t flags, struct tfe_vsock_pkt *p);

/**
 * tfe_vsock_connect_start() - REQUEST from @src_port to (@dst_cid,
 * @dst_port) without waiting: *@out stays TFE_CONN_CONNECTING until the
 * answer comes in a later poll (ESTABLISHED, or CLOSED with conn->error).
 * A program that serves other peers meanwhile must not block on one whose
 * answer may never come. Return: 0, -EADDRINUSE, -EMFILE or a send error.
 */
int tfe_vsock_connect_start(struct tfe_vsock *vs, uint64_t dst_cid, uint32_t dst_port,
			    uint32_t src_port, struct tfe_vsock_conn **out);

/**
 * tfe_vsock_connect() - REQUEST from @src_port to (@dst_cid, @dst_port),
 * then wait for RESPONSE.
 * Return: 0 with *@out set once a RESPONSE came, even if the peer closed or
 * reset the connection in the same batch (as connect() succeeds and the
 * next read tells), -ECONNREFUSED on RST, -EPROTO on any other
 * answer, -ETIMEDOUT (an RST is sent), -EADDRINUSE for a tuple in use,
 * -EMFILE when every connection slot is taken.
 */
int tfe_vsock_connect(struct tfe_vsock *vs, uint64_t dst_cid, uint32_t dst_port,
		      uint32_t src_port, int timeout_ms, struct tfe_vsock_conn **out);

/**
 * tfe_vsock_listen() - answer REQUESTs to @port with RESPONSE from now on.
 * Return: 0, -EADDRINUSE, -ENOSPC.
 */
int tfe_vsock_listen(struct tfe_vsock *vs, uint32_t port);

/** tfe_vsock_unlisten() - stop listening on @port (later REQUESTs get RST). */
void tfe_vsock_unlisten(struct tfe_vsock *vs, uint32_t port);

/**
 * tfe_vsock_accept() - wait for a connection to listening @port that was not
 * accepted yet.
 * Return: 0 with *@out set, or -ETIMEDOUT.
 */
int tfe_vsock_accept(struct tfe_vsock *vs, uint32_t port, int timeout_ms,
		     struct tfe_vsock_conn **out);

/**
 * tfe_vsock_send() - queue up to @len bytes without waiting: as much as the
 * peer's credit, free tx slots and tx_pkt_max-sized packets allow. With no
 * credit left it sends one CREDIT_REQUEST (until the peer answers).
 * Return: bytes sent (> 0), -EAGAIN, -EPIPE after our SHUTDOWN(send) or the
 * peer's SHUTDOWN(rcv), or conn->error / -ENOTCONN when not established.
 */
ssize_t tfe_vsock_send(struct tfe_vsock *vs, struct tfe_vsock_conn *c, const void *buf,
		       size_t len);

/**
 * tfe_vsock_send_all() - tfe_vsock_send() until all of @buf is sent.
 * Return: 0, -ETIMEDOUT, or the send error.
 */
int tfe_vsock_send_all(struct tfe_vsock *vs, struct tfe_vsock_conn *c, const void *buf,
		       size_t len, int timeout_ms);

/**
 * tfe_vsock_recv() - take up to @len received bytes without waiting; sends
 * a CREDIT_UPDATE once credit_threshold bytes were read since the last one
 * we advertised.
 * Return: bytes (> 0), 0 at end of stream (peer SHUTDOWN(send) or an
 * orderly close, queue empty), conn->error (-ECONNRESET, -ENOBUFS) when the
 * connection was reset and the queue is empty, -ENOTCONN before it is
 * established, -EAGAIN.
 */
ssize_t tfe_vsock_recv(struct tfe_vsock *vs, struct tfe_vsock_conn *c, void *buf, size_t len);

/**
 * tfe_vsock_recv_wait() - tfe_vsock_recv(), waiting up to @timeout_ms for
 * data or end of stream. Return: as tfe_vsock_recv(), or -ETIMEDOUT.
 */
ssize_t tfe_vsock_recv_wait(struct tfe_vsock *vs, struct tfe_vsock_conn *c, void *buf,
			    size_t len, int timeout_ms);

/**
 * tfe_vsock_shutdown() - send SHUTDOWN with @flags (TFE_VSOCK_SHUTDOWN_*).
 * Return: 0, -EINVAL for other bits, -ENOTCONN, or a send error.
 */
int tfe_vsock_shutdown(struct tfe_vsock *vs, struct tfe_vsock_conn *c, uint32_t flags);

/**
 * tfe_vsock_close_start() - the first half of tfe_vsock_close(): send
 * SHUTDOWN(both) to an established connection, which stays
 * TFE_CONN_CLOSING until the peer's RST; tfe_vsock_close() then finishes
 * it. Return: 0 or a send error (the connection stays established).
 */
int tfe_vsock_close_start(struct tfe_vsock *vs, struct tfe_vsock_conn *c);

/**
 * tfe_vsock_close() - orderly close: SHUTDOWN(both) unless already closed,
 * wait up to @timeout_ms for the peer's RST (PROTOCOLS §2.5), send RST if
 * none came, then free the connection.
 * Return: 0 when the peer answered (or had already closed), -ETIMEDOUT.
 */
int tfe_vsock_close(struct tfe_vsock *vs, struct tfe_vsock_conn *c, int timeout_ms);

/**
 * tfe_vsock_reset() - send RST (unless the connection is already closed)
 * and free the connection. Return: 0 or the send error.
 */
int tfe_vsock_reset(struct tfe_vsock *vs, struct tfe_vsock_conn *c);

/**
 * tfe_vsock_wait_until() - poll the device until @done(@ctx) is true.
 * Return: 0, or -ETIMEDOUT after @timeout_ms, or a poll error.
 */
int tfe_vsock_wait_until(struct tfe_vsock *vs, bool (*done)(void *ctx), void *ctx,
			 int timeout_ms);

/* ------------------------------------------------------------------ */
/* The daemon as a child process                                       */
/* ------------------------------------------------------------------ */

struct tfe_daemon {
	pid_t pid;                 /* 0 when not running */
	char sock_path[108];
	int status;                /* wait status once reaped, else -1 */
};

/**
 * tfe_daemon_start() - run @argv (argv[0] is the program path) with
 * stderr (and stdout) appended to @log_path (or inherited when NULL), and
 * wait up to @timeout_ms for a socket file at @sock_path to appear.
 * Return: 0; -ECHILD when the program exited first (its status is in
 * d->status); -ETIMEDOUT (the child is killed); another negative errno.
 */
int tfe_daemon_start(struct tfe_daemon *d, char *const argv[], const char *sock_path,
		     const char *log_path, int timeout_ms);

/**
 * tfe_daemon_stop() - SIGTERM, wait up to @timeout_ms, then SIGKILL.
 * Return: 0 when it exited with status 0 and removed its socket file;
 * -ETIMEDOUT when it had to be killed; -EPROTO for another exit status
 * (d->status); -EEXIST when the socket file is still there.
 */
int tfe_daemon_stop(struct tfe_daemon *d, int timeout_ms);

/**
 * tfe_daemon_alive() - reap the child if it has exited.
 * Return: true while it runs.
 */
bool tfe_daemon_alive(struct tfe_daemon *d);

/* ------------------------------------------------------------------ */
/* Small shared helpers                                                */
/* ------------------------------------------------------------------ */

/*
 * Diagnostics: the library explains its error returns on stderr, one line
 * each, prefixed "tfe: ". Level 1 is a warning (printed by default), level 2
 * debug detail. It does not use the daemon's logger so that programs built
 * on it need nothing from the daemon's core (and can be linked statically).
 */
extern int tfe_verbosity;

/** tfe_log() - print one line when @level <= tfe_verbosity. */
void tfe_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** tfe_now_ms() - CLOCK_MONOTONIC in milliseconds. Return: the time. */
int64_t tfe_now_ms(void);

/**
 * tfe_remaining_ms() - milliseconds left until @deadline_ms (>= 0).
 * Return: the remaining time, 0 when past.
 */
int tfe_remaining_ms(int64_t deadline_ms);

#endif
