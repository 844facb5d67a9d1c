/* SPDX-License-Identifier: MIT */
/*
 * vhost-user wire format: request numbers, flags, feature bits and payload
 * layouts, as the front end puts them on the socket (host byte order).
 *
 * Only layout lives here; no logic. Sizes are fixed by the protocol, so each
 * struct is checked with a static assertion below.
 */
#ifndef VU_PROTO_H
#define VU_PROTO_H

#include <stdint.h>

enum vu_request {
	VU_REQ_NONE = 0,
	VU_REQ_GET_FEATURES = 1,
	VU_REQ_SET_FEATURES = 2,
	VU_REQ_SET_OWNER = 3,
	VU_REQ_RESET_OWNER = 4,
	VU_REQ_SET_MEM_TABLE = 5,
	VU_REQ_SET_LOG_BASE = 6,
	VU_REQ_SET_LOG_FD = 7,
	VU_REQ_SET_VRING_NUM = 8,
	VU_REQ_SET_VRING_ADDR = 9,
	VU_REQ_SET_VRING_BASE = 10,
	VU_REQ_GET_VRING_BASE = 11,
	VU_REQ_SET_VRING_KICK = 12,
	VU_REQ_SET_VRING_CALL = 13,
	VU_REQ_SET_VRING_ERR = 14,
	VU_REQ_GET_PROTOCOL_FEATURES = 15,
	VU_REQ_SET_PROTOCOL_FEATURES = 16,
	VU_REQ_GET_QUEUE_NUM = 17,
	VU_REQ_SET_VRING_ENABLE = 18,
	VU_REQ_SEND_RARP = 19,
	VU_REQ_NET_SET_MTU = 20,
	VU_REQ_SET_BACKEND_REQ_FD = 21,
	VU_REQ_IOTLB_MSG = 22,
	VU_REQ_SET_VRING_ENDIAN = 23,
	VU_REQ_GET_CONFIG = 24,
	VU_REQ_SET_CONFIG = 25,
	VU_REQ_CREATE_CRYPTO_SESSION = 26,
	VU_REQ_CLOSE_CRYPTO_SESSION = 27,
	VU_REQ_POSTCOPY_ADVISE = 28,
	VU_REQ_POSTCOPY_LISTEN = 29,
	VU_REQ_POSTCOPY_END = 30,
	VU_REQ_GET_INFLIGHT_FD = 31,
	VU_REQ_SET_INFLIGHT_FD = 32,
	VU_REQ_GPU_SET_SOCKET = 33,
	VU_REQ_RESET_DEVICE = 34,
	VU_REQ_VRING_KICK = 35,
	VU_REQ_GET_MAX_MEM_SLOTS = 36,
	VU_REQ_ADD_MEM_REG = 37,
	VU_REQ_REM_MEM_REG = 38,
	VU_REQ_SET_STATUS = 39,
	VU_REQ_GET_STATUS = 40,
	VU_REQ_GET_SHARED_OBJECT = 41,
	VU_REQ_SET_DEVICE_STATE_FD = 42,
	VU_REQ_CHECK_DEVICE_STATE = 43,
	VU_REQ_GET_SHMEM_CONFIG = 44,
	VU_REQ_MAX
};

/* Header flags. Bits 0-1 carry the protocol version, which must be 1. */
#define VU_FLAG_VERSION_MASK 0x3u
#define VU_FLAG_VERSION 0x1u
#define VU_FLAG_REPLY 0x4u
#define VU_FLAG_NEED_REPLY 0x8u
/* QEMU accepts exactly this value on a reply and nothing else. */
#define VU_REPLY_FLAGS (VU_FLAG_VERSION | VU_FLAG_REPLY)

#define VU_HDR_SIZE 12u
/* The spec sets no maximum; the largest request we accept is far below it. */
#define VU_MAX_PAYLOAD 4096u
/* QEMU never attaches more than 8 fds (its SET_MEM_TABLE limit). */
#define VU_MAX_FDS 8u
#define VU_MAX_MEM_REGIONS 8u
#define VU_MAX_CONFIG_SIZE 256u

/* SET_VRING_KICK/CALL/ERR u64: index in bits 0-7, bit 8 = no fd attached. */
#define VU_VRING_IDX_MASK 0xffull
#define VU_VRING_NOFD_MASK 0x100ull

/* SET_VRING_ADDR flags: only dirty logging is defined. */
#define VU_VRING_F_LOG 0x1u

/* Virtio feature bit 30, reused by vhost-user to announce protocol features. */
#define VU_F_PROTOCOL_FEATURES 30

enum vu_protocol_feature {
	VU_PROTOCOL_F_MQ = 0,
	VU_PROTOCOL_F_LOG_SHMFD = 1,
	VU_PROTOCOL_F_RARP = 2,
	VU_PROTOCOL_F_REPLY_ACK = 3,
	VU_PROTOCOL_F_MTU = 4,
	VU_PROTOCOL_F_BACKEND_REQ = 5,
	VU_PROTOCOL_F_CROSS_ENDIAN = 6,
	VU_PROTOCOL_F_CRYPTO_SESSION = 7,
	VU_PROTOCOL_F_PAGEFAULT = 8,
	VU_PROTOCOL_F_CONFIG = 9,
	VU_PROTOCOL_F_BACKEND_SEND_FD = 10,
	VU_PROTOCOL_F_HOST_NOTIFIER = 11,
	VU_PROTOCOL_F_INFLIGHT_SHMFD = 12,
	VU_PROTOCOL_F_RESET_DEVICE = 13,
	VU_PROTOCOL_F_INBAND_NOTIFICATIONS = 14,
	VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS = 15,
	VU_PROTOCOL_F_STATUS = 16,
	VU_PROTOCOL_F_XEN_MMAP = 17,
	VU_PROTOCOL_F_SHARED_OBJECT = 18,
	VU_PROTOCOL_F_DEVICE_STATE = 19,
};

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

/* Note the field order: used comes before avail on the wire. */
struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_mem_region {
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t mmap_offset;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MAX_MEM_REGIONS];
};

/* ADD_MEM_REG / REM_MEM_REG payload. */
struct vu_single_region {
	uint64_t padding;
	struct vu_mem_region region;
};

struct vu_log {
	uint64_t mmap_size;
	uint64_t mmap_offset;
};

#define VU_CONFIG_HDR_SIZE 12u
struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VU_MAX_CONFIG_SIZE];
};

/*
 * One message as read from or written to the socket. fds[] holds the
 * descriptors that arrived with it (owned by the message until taken).
 */
struct vu_msg {
	struct vu_hdr hdr;
	union {
		uint64_t u64;
		struct vu_vring_state state;
		struct vu_vring_addr addr;
		struct vu_mem_table mem;
		struct vu_single_region region;
		struct vu_log log;
		struct vu_config config;
		uint8_t raw[VU_MAX_PAYLOAD];
	} payload;
	int fds[VU_MAX_FDS];
	unsigned int nfds;
};

_Static_assert(sizeof(struct vu_hdr) == VU_HDR_SIZE, "vhost-user header is 12 bytes");
_Static_assert(sizeof(struct vu_vring_state) == 8, "vring state is 8 bytes");
_Static_assert(sizeof(struct vu_vring_addr) == 40, "vring address is 40 bytes");
_Static_assert(sizeof(struct vu_mem_region) == 32, "memory region is 32 bytes");
_Static_assert(sizeof(struct vu_single_region) == 40, "single region is 40 bytes");
_Static_assert(sizeof(struct vu_log) == 16, "log description is 16 bytes");

#endif
