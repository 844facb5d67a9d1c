// SPDX-License-Identifier: MIT
/*
 * Fuzz target (a): the vhost-user message stream with fds, through the
 * real framing (vu_msg_recv/send), dispatcher (vu_dev_handle via
 * vu_dev_process) and a device: the kernel engine over the unit tests'
 * vhost double (tests/unit/vhost_double.h), or the userspace engine's
 * device (engine/user/device.h; its hybrid socket in a temporary
 * directory, its event loop never run: this target covers its control
 * plane, fuzz_desc_chain and fuzz_vsock_pkt its data path).
 *
 * Input: one configuration byte (device, the double's feature set and
 * ring-memory check, guest CID) then up to VM_MAX_RECORDS records:
 *   message   request number, control bits (NEED_REPLY, raw flags, raw
 *             size, explicit fds) and payload. By default the size is the
 *             request's own (probed from vu_msg_check(), or computed for
 *             SET_MEM_TABLE and GET/SET_CONFIG) and fds are synthesized as
 *             the request wants them: one memfd per region, covering it,
 *             for memory tables; eventfds for ring notifications;
 *   raw       any bytes with any fds (framing garbage, partial messages);
 *   fault     make the N-th call of a vhost ioctl (or open) fail;
 *   restart   the front end goes away; a new one connects.
 * Messages travel over a real socketpair with SCM_RIGHTS, so the daemon
 * owns its own copies of every fd, as with a real front end. A session
 * that ends (error or restart) is torn down the way the server does and a
 * new one starts, as the daemon must serve the next front end.
 *
 * Checked: replies are well-formed (flags exactly VERSION|REPLY, sane
 * size, no fds) and, while the stream is in step, answer the request just
 * sent, with a REPLY_ACK value of 0 or 1 and exactly one reply for a
 * request that owes one; the dispatcher's documented invariant (a sized,
 * addressed ring lies inside the memory table with its alignment); ring
 * fds are open; the kernel engine's invariants (running implies rx and tx
 * programmed on an open vhost fd); the double never sees a bad close.
 * The userspace device may not run a ring that leaves guest memory.
 * At the end of each input: no double fd open, no memfd mapping left, and
 * exactly the fds open that were open before.
 */
#include <errno.h>
#include <linux/vhost.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "engine/kernel/kernel.h"
#include "engine/user/device.h"
#include "fuzz_util.h"
#include "tfe.h"
#include "util/log.h"
#include "vhost_double.h"
#include "vhost_user/dispatch.h"
#include "vhost_user/msg.h"

#define VM_MEMFD "fuzz-vu-mem"
#define VM_MAX_RECORDS 64u
#define VM_MAX_SEND_FDS 12u      /* more than VU_MAX_FDS on purpose */
#define VM_MAX_MEMFD (64ull << 20)
#define VM_RAW_MAX 512u
#define VM_EVENT_IDX (1ull << 29)

struct vm_sess {
	struct tfe_fe fe;      /* our end: the test front end's raw senders */
	int be;                /* the daemon's end, non-blocking */
	bool user;             /* the userspace device, not the kernel engine */
	bool live;             /* a session is running on be */
	bool in_step;          /* we know where the next message starts */
	struct vu_dev dev;
	struct kern_engine k;
};

/* What we sent last, for the reply checks. */
struct vm_sent {
	uint32_t request;
	bool need_reply;
	bool known;            /* sent whole and in step */
};

/* The userspace device: made once, a session attached to it per front end. */
static struct {
	struct loop loop;
	struct udev dev;
	char dir[32];
	char path[48];
} user;

static uint32_t fixed_size[VU_REQ_MAX];
static int baseline_fds = -1;
/* a memfd was made for this input: look for surviving mappings at the end */
static bool made_memfd;

/* The fixed payload size of each request, as vu_msg_check() wants it. */
static void probe_sizes(void)
{
	static struct vu_msg m;
	enum log_level saved = log_threshold;

	log_set_level(LOG_LVL_ERROR);
	for (uint32_t r = 0; r < VU_REQ_MAX; r++) {
		m.hdr = (struct vu_hdr){ .request = r, .flags = VU_FLAG_VERSION };
		for (uint32_t s = 0; s <= 64; s += 8) {
			m.hdr.size = s;
			if (vu_msg_check(&m) != -EBADMSG) {
				fixed_size[r] = s;
				break;
			}
		}
	}
	log_set_level(saved);
}

static void user_cleanup(void)
{
	udev_fini(&user.dev);
	loop_fini(&user.loop);
}

static void user_init(void)
{
	struct udev_cfg c = {
		.name = "fuzz-user", .cid = 3, .uds_path = user.path,
		.buf_alloc = 65536, .max_queue_size = 1024,
	};
	char sock[sizeof(user.path) + 16];

	snprintf(user.dir, sizeof(user.dir), "/tmp/vuv-fuzz-XXXXXX");
	FZ_CHECK(mkdtemp(user.dir), "mkdtemp");
	snprintf(user.path, sizeof(user.path), "%s/h", user.dir);
	FZ_CHECK(loop_init(&user.loop) == 0, "loop_init");
	FZ_CHECK(udev_init(&user.dev, &c, &user.loop) == 0, "udev_init");
	/* nobody connects to the hybrid sockets: remove them now, so a crash leaves nothing */
	snprintf(sock, sizeof(sock), "%s_seqpacket", user.path);
	unlink(sock);
	unlink(user.path);
	rmdir(user.dir);
	atexit(user_cleanup);
}

/* ---- sessions ------------------------------------------------------------- */

static void sess_start(struct vm_sess *s)
{
	int sv[2];

	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	tfe_fe_init(&s->fe, sv[0]);
	s->be = sv[1];
	/* a message cut short must end the session, not block the harness */
	FZ_CHECK(fcntl(s->be, F_SETFL, O_NONBLOCK) == 0, "O_NONBLOCK");
	s->in_step = true;
	if (s->user) {
		s->live = udev_attach(&user.dev) == 0;
		vu_dev_init(&s->dev, "fuzz", s->be, &user.dev.ops, &user.dev);
		return;
	}
	/* what the server's attach hook does; an injected open fault refuses the front end */
	s->live = kern_engine_open(&s->k) == 0;
	if (s->live)
		vu_dev_init(&s->dev, "fuzz", s->be, &kern_dev_ops, &s->k);
}

static void sess_end(struct vm_sess *s)
{
	if (s->live) {
		vu_dev_fini(&s->dev);
		if (s->user)
			udev_detach(&user.dev);
		else
			kern_engine_close(&s->k);
	}
	s->live = false;
	tfe_fe_close(&s->fe);
	close(s->be);
	s->be = -1;
}

/* ---- building messages ---------------------------------------------------- */

static int make_fd(bool memfd, uint64_t size)
{
	int fd;

	if (memfd) {
		made_memfd = true;
		return fz_memfd(VM_MEMFD, size < VM_MAX_MEMFD ? size : VM_MAX_MEMFD);
	}
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	FZ_CHECK(fd >= 0, "eventfd");
	return fd;
}

/* The fds a well-behaved front end attaches to @m. Return: how many. */
static unsigned int auto_fds(const struct vu_msg *m, int *fds)
{
	const struct vu_mem_table *t = &m->payload.mem;
	const struct vu_mem_region *r = &m->payload.region.region;

	switch (m->hdr.request) {
	case VU_REQ_SET_MEM_TABLE:
		for (unsigned int i = 0; i < t->nregions && i < VU_MAX_MEM_REGIONS; i++) {
			const struct vu_mem_region *g = &t->regions[i];
			uint64_t end = g->mmap_offset + g->memory_size;

			fds[i] = make_fd(true, end < g->mmap_offset ? VM_MAX_MEMFD : end);
		}
		return t->nregions < VU_MAX_MEM_REGIONS ? t->nregions : VU_MAX_MEM_REGIONS;
	case VU_REQ_SET_VRING_KICK:
	case VU_REQ_SET_VRING_CALL:
	case VU_REQ_SET_VRING_ERR:
		if (m->payload.u64 & VU_VRING_NOFD_MASK)
			return 0;
		fds[0] = make_fd(false, 0);
		return 1;
	case VU_REQ_ADD_MEM_REG:
		fds[0] = make_fd(true, r->mmap_offset + r->memory_size);
		return 1;
	case VU_REQ_SET_LOG_BASE:
	case VU_REQ_SET_INFLIGHT_FD:
		fds[0] = make_fd(true, 1u << 20);
		return 1;
	case VU_REQ_SET_LOG_FD:
	case VU_REQ_SET_BACKEND_REQ_FD:
	case VU_REQ_GPU_SET_SOCKET:
	case VU_REQ_SET_DEVICE_STATE_FD:
		fds[0] = make_fd(false, 0);
		return 1;
	default:
		return 0;
	}
}

/* fds the input asks for: a count and a memfd/eventfd pattern. */
static unsigned int explicit_fds(struct fz_in *in, int *fds)
{
	uint8_t spec = fz_u8(in), kinds = fz_u8(in);
	unsigned int n = spec % (VM_MAX_SEND_FDS + 1);

	for (unsigned int i = 0; i < n; i++)
		fds[i] = make_fd(kinds & (1u << (i % 8)), (uint64_t)(spec >> 4) << 16);
	return n;
}

/* Payload and size: the request's own layout unless the input overrides it. */
static void build_payload(struct fz_in *in, struct vu_msg *m, bool raw_size)
{
	uint32_t r = m->hdr.request, n;

	if (r == VU_REQ_SET_MEM_TABLE) {
		n = 1u + fz_u8(in) % VU_MAX_MEM_REGIONS;
		m->payload.mem.nregions = n;
		m->payload.mem.padding = 0;
		fz_bytes(in, m->payload.mem.regions, 32u * n);
		m->hdr.size = 8 + 32 * n;
	} else if (r == VU_REQ_GET_CONFIG || r == VU_REQ_SET_CONFIG) {
		fz_bytes(in, &m->payload.config, VU_CONFIG_HDR_SIZE);
		m->payload.config.size %= VU_MAX_CONFIG_SIZE + 1;
		fz_bytes(in, m->payload.config.payload, m->payload.config.size);
		m->hdr.size = VU_CONFIG_HDR_SIZE + m->payload.config.size;
	} else {
		m->hdr.size = r < VU_REQ_MAX ? fixed_size[r] : 8;
		fz_bytes(in, m->payload.raw, m->hdr.size);
	}
	if (raw_size) {
		m->hdr.size = fz_u16(in) % (VU_MAX_PAYLOAD + 64);
		if (m->hdr.size > sizeof(m->payload.raw))
			m->hdr.size = sizeof(m->payload.raw);
	}
}

/*
 * Write @len bytes with @nfds fds on the first byte; our copies are closed.
 * Without a session (its open failed) nobody reads, so nothing is sent.
 */
static void send_bytes(struct vm_sess *s, const void *buf, size_t len, int *fds, unsigned int nfds)
{
	int rc = (len && s->live) ? tfe_fe_send_bytes(&s->fe, buf, len, fds, nfds) : 0;

	FZ_CHECK(rc == 0, "sending %zu bytes: %d", len, rc);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
}

/* ---- replies and invariants ----------------------------------------------- */

static bool owes_reply(uint32_t r)
{
	return r == VU_REQ_GET_FEATURES || r == VU_REQ_GET_PROTOCOL_FEATURES ||
	       r == VU_REQ_GET_VRING_BASE || r == VU_REQ_GET_QUEUE_NUM || r == VU_REQ_GET_CONFIG;
}

static void check_reply(const struct vm_sess *s, const struct vm_sent *sent,
			const struct vu_hdr *h, const uint8_t *p)
{
	uint64_t v;

	FZ_CHECK(h->flags == VU_REPLY_FLAGS, "reply flags 0x%x", h->flags);
	if (!sent->known)
		return;
	FZ_CHECK(h->request == sent->request, "reply to %u for request %u", h->request,
		 sent->request);
	if (owes_reply(sent->request)) {
		FZ_CHECK(h->request != VU_REQ_GET_CONFIG ? h->size == 8 :
			 h->size >= VU_CONFIG_HDR_SIZE, "%s reply of %u bytes",
			 vu_request_name(h->request), h->size);
		return;
	}
	memcpy(&v, p, sizeof(v));
	FZ_CHECK(sent->need_reply && s->dev.reply_ack && h->size == 8 && v <= 1,
		 "unasked or malformed REPLY_ACK to %s (size %u)", vu_request_name(h->request),
		 h->size);
}

/* Read every reply waiting on fe. Return: how many. */
static unsigned int drain_replies(struct vm_sess *s, const struct vm_sent *sent)
{
	uint8_t payload[VU_CONFIG_HDR_SIZE + VU_MAX_CONFIG_SIZE];
	unsigned int count = 0;

	for (;;) {
		struct vu_hdr h;
		unsigned int nfds = 0;
		int n = tfe_fe_recv(&s->fe, &h, payload, sizeof(payload), NULL, &nfds, 0);

		if (n == -ETIMEDOUT)
			return count;
		FZ_CHECK(n >= 0, "reading a reply: %d (size %u)", n, h.size);
		FZ_CHECK(nfds == 0, "a reply came with %u fds", nfds);
		check_reply(s, sent, &h, payload);
		count++;
	}
}

/* The dispatcher's invariant: a sized, addressed ring lies in memory, aligned. */
static void check_ring(const struct vm_sess *s, unsigned int i)
{
	const struct vu_vring *vr = &s->dev.vrings[i];
	uint64_t ev = (s->dev.features & VM_EVENT_IDX) ? 2 : 0, n = vr->num;
	const struct vu_vring_addr *a = &vr->addr;

	if (vr->num && vr->addr_set)
		FZ_CHECK(a->desc % 16 == 0 && a->avail % 2 == 0 && a->used % 4 == 0 &&
			 gmem_uva_ptr(&s->dev.mem, a->desc, 16 * n) &&
			 gmem_uva_ptr(&s->dev.mem, a->avail, 4 + 2 * n + ev) &&
			 gmem_uva_ptr(&s->dev.mem, a->used, 4 + 8 * n + ev),
			 "ring %u (size %u) is not inside guest memory", i, vr->num);
	FZ_CHECK(vr->kick_fd < 0 || fcntl(vr->kick_fd, F_GETFD) >= 0, "ring %u kick fd closed", i);
	FZ_CHECK(vr->call_fd < 0 || fcntl(vr->call_fd, F_GETFD) >= 0, "ring %u call fd closed", i);
	FZ_CHECK(vr->err_fd < 0 || fcntl(vr->err_fd, F_GETFD) >= 0, "ring %u err fd closed", i);
}

/* [p, p + len) inside one mapped region of @m. */
static bool host_in_mem(const struct gmem *m, const void *p, uint64_t len)
{
	for (unsigned int i = 0; i < m->nregions; i++) {
		const struct gmem_region *g = &m->regions[i];
		const uint8_t *b = p;

		if (b >= g->host && len <= g->size && (uint64_t)(b - g->host) <= g->size - len)
			return true;
	}
	return false;
}

/* A ring the userspace device runs lies in guest memory, event fields included. */
static void check_user_rings(const struct vm_sess *s)
{
	for (unsigned int i = 0; i < UDEV_NRINGS; i++) {
		const struct vq *q = &user.dev.ring[i].vq;

		if (!user.dev.ring[i].live)
			continue;
		FZ_CHECK(host_in_mem(&s->dev.mem, q->desc, 16ull * q->num) &&
			 host_in_mem(&s->dev.mem, q->avail, 6 + 2ull * q->num) &&
			 host_in_mem(&s->dev.mem, q->used, 6 + 8ull * q->num),
			 "userspace ring %u runs outside guest memory", i);
	}
}

static void check_session(const struct vm_sess *s)
{
	const struct kern_engine *k = &s->k;

	FZ_CHECK(fcntl(s->fe.sock, F_GETFD) >= 0 && fcntl(s->be, F_GETFD) >= 0,
		 "the daemon closed a socket it does not own");
	FZ_CHECK(vhd_bad_closes() == 0, "the engine closed a vhost fd it did not have");
	FZ_CHECK(vhd_open_fds() <= 1, "%u vhost fds open", vhd_open_fds());
	if (!s->live)
		return;
	for (unsigned int i = 0; i < VU_MAX_QUEUES; i++)
		check_ring(s, i);
	if (s->user) {
		check_user_rings(s);
		return;
	}
	FZ_CHECK(!k->running || (k->vhost_fd >= 0 && k->prog[0].valid && k->prog[1].valid),
		 "running without rx and tx programmed");
	FZ_CHECK(k->vhost_fd < 0 || k->session, "vhost fd open outside a session");
}

/* Let the daemon handle everything waiting on its socket. */
static void process(struct vm_sess *s, struct vm_sent *sent)
{
	int pending = 0, rc;

	while (s->live && ioctl(s->be, FIONREAD, &pending) == 0 && pending > 0) {
		unsigned int replies;

		rc = vu_dev_process(&s->dev);
		replies = drain_replies(s, sent);
		FZ_CHECK(!sent->known || replies <= 1, "%u replies to one request", replies);
		FZ_CHECK(!sent->known || rc < 0 || !owes_reply(sent->request) || replies == 1,
			 "no reply to %s", vu_request_name(sent->request));
		sent->known = false;
		if (rc < 0) {
			/* the server ends the session and serves the next front end */
			sess_end(s);
			sess_start(s);
			return;
		}
		check_session(s);
	}
}

/* ---- records -------------------------------------------------------------- */

static void rec_message(struct vm_sess *s, struct fz_in *in)
{
	static struct vu_msg m;
	static uint8_t wire[VU_HDR_SIZE + sizeof(m.payload.raw)];
	uint8_t req = fz_u8(in), ctl = fz_u8(in);
	struct vm_sent sent = { .request = req % 64u };
	int fds[VM_MAX_SEND_FDS];
	unsigned int nfds;

	memset(&m.hdr, 0, sizeof(m.hdr));
	m.hdr.request = sent.request;
	m.hdr.flags = (ctl & 2) ? fz_u32(in) : VU_FLAG_VERSION | ((ctl & 1) ? VU_FLAG_NEED_REPLY : 0);
	sent.need_reply = m.hdr.flags & VU_FLAG_NEED_REPLY;
	build_payload(in, &m, ctl & 4);
	nfds = (ctl & 8) ? explicit_fds(in, fds) : auto_fds(&m, fds);
	/* a size of our own choosing may leave the stream out of step */
	sent.known = s->in_step && !(ctl & 4);
	if (ctl & 4)
		s->in_step = false;
	memcpy(wire, &m.hdr, VU_HDR_SIZE);
	memcpy(wire + VU_HDR_SIZE, m.payload.raw, m.hdr.size);
	send_bytes(s, wire, VU_HDR_SIZE + m.hdr.size, fds, nfds);
	process(s, &sent);
}

static void rec_raw(struct vm_sess *s, struct fz_in *in)
{
	uint16_t len = fz_u16(in) % VM_RAW_MAX;
	struct vm_sent sent = { 0 };
	uint8_t buf[VM_RAW_MAX];
	int fds[VM_MAX_SEND_FDS];
	unsigned int nfds = explicit_fds(in, fds);

	fz_bytes(in, buf, len);
	s->in_step = false;
	send_bytes(s, buf, len, fds, nfds);
	process(s, &sent);
}

static void rec_fault(struct fz_in *in)
{
	static const unsigned long reqs[] = {
		VHD_OPEN, VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_FEATURES,
		VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM, VHOST_SET_VRING_ADDR,
		VHOST_SET_VRING_BASE, VHOST_GET_VRING_BASE, VHOST_SET_VRING_KICK,
		VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR, VHOST_VSOCK_SET_GUEST_CID,
		VHOST_VSOCK_SET_RUNNING,
	};
	static const int errs[] = { EINVAL, ENOMEM, EBUSY, EFAULT, ENODEV, EADDRINUSE };
	uint8_t a = fz_u8(in), b = fz_u8(in);

	(void)vhd_fail(reqs[a % (sizeof(reqs) / sizeof(reqs[0]))], 1u + b % 4,
		       errs[(b >> 2) % (sizeof(errs) / sizeof(errs[0]))]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_sess s;
	struct fz_in in = { data, size };
	uint8_t cfg = fz_u8(&in);

	if (baseline_fds < 0) {
		probe_sizes();
		user_init();
		baseline_fds = fz_count_fds();
	}
	vhd_reset();
	vhd_check_ring_memory(cfg & 1);
	if (cfg & 2)
		vhd_set_features(fz_u64(&in));
	s.user = cfg & 4;
	kern_engine_init(&s.k, &vhd_ops, "/dev/vhost-vsock", 3 + (cfg >> 4));
	sess_start(&s);
	for (unsigned int n = 0; n < VM_MAX_RECORDS && !fz_empty(&in); n++) {
		switch (fz_u8(&in) % 8) {
		case 5: rec_raw(&s, &in); break;
		case 6: rec_fault(&in); break;
		case 7: sess_end(&s); sess_start(&s); break;
		default: rec_message(&s, &in); break;
		}
	}
	sess_end(&s);
	FZ_CHECK(vhd_open_fds() == 0 && vhd_bad_closes() == 0, "vhost fds: %u open, %u bad closes",
		 vhd_open_fds(), vhd_bad_closes());
	FZ_CHECK(!made_memfd || fz_count_maps(VM_MEMFD) == 0,
		 "a guest memory mapping survived the session");
	made_memfd = false;
	fz_check_fds(baseline_fds);
	return 0;
}
