// SPDX-License-Identifier: MIT
/*
 * vfio_check: the daemon's own VFIO code (vfio_sys.c) and virtio-PCI driver
 * (virtio_pci.c) against the real kernel VFIO of a QEMU/TCG guest with an
 * emulated Intel IOMMU (tests/peers/run-vfio.sh), on real QEMU devices:
 *
 *   vfio_check [--serial BDF] [--shm BDF] [--unbound BDF]
 *     --serial   virtio-serial-pci (modern, iommu_platform=on, one
 *                virtconsole at nr=0: rx = queue 0, tx = queue 1) bound to
 *                vfio-pci; the other end of its chardev is the host helper
 *                vfio-host.py, which answers each message
 *     --shm      ivshmem-plain bound to vfio-pci, BAR 2 backed by a host
 *                file holding shm_in_byte(); we check it and leave
 *                shm_out_byte() for the host to check
 *     --unbound  a device NOT bound to vfio-pci: opening must fail
 *     --denied   a bound device this (unprivileged) user may not open:
 *                opening must fail with EACCES
 *
 * Messages on the serial stream are frames: le16 seq, le16 len, then len
 * bytes frame_byte(seq, j, 0); the host answers each with the same header
 * and the payload XOR REPLY_XOR. seq's high byte is the session number.
 *
 * Prints "PASS: name" / "FAIL: name: why" per check and "INFO: ..." lines;
 * exits 0 iff nothing failed. Every wait is bounded.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>

#include "transport/vvu/vfio.h"
#include "transport/vvu/virtio_pci.h"

#define RXQ 0u
#define TXQ 1u
#define QSIZE 64u
#define BUF_SIZE 1024u
#define HDR 4u
#define NMSG 40u
#define REPLY_XOR 0xa5u
#define WAIT_MS 20000
#define STREAM_MAX (256u * 1024u)
#define VIRTIO_CONSOLE_PCI 0x1043u
#define SHM_BAR 2u
#define SHM_SIZE (1u << 20)
#define CFG_REGION 7u

static unsigned int passed, failed;

static void pass(const char *name)
{
	printf("PASS: %s\n", name);
	fflush(stdout);
	passed++;
}

__attribute__((format(printf, 2, 3))) static void fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failed++;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t frame_byte(uint16_t seq, uint32_t j)
{
	return (uint8_t)(seq * 31u + j * 7u + (seq >> 8));
}

/* Payload lengths: empty, tiny, odd, and one that fills a buffer exactly. */
static uint16_t msg_len(unsigned int i)
{
	static const uint16_t lens[] = { 0, 1, 17, 255, 256, 511, 700, BUF_SIZE - HDR, 3, 1000 };

	return lens[i % (sizeof(lens) / sizeof(lens[0]))];
}

/* ---- serial: one session ------------------------------------------------- */

struct session {
	struct vpci p;
	unsigned int n;          /* session number */
	uint8_t *stream;         /* bytes received, not yet parsed */
	size_t have;
	unsigned int replies;    /* good replies, in order */
	unsigned int irq_rx, irq_tx;
	unsigned int sent;
};

static int bring_up(struct session *s, struct vfio_dev *vf)
{
	const uint64_t platform = 1ull << VIRTIO_F_ACCESS_PLATFORM;
	char name[64];
	int r;

	r = vf->ops->reset(vf);
	printf("INFO: session %u: VFIO_DEVICE_RESET: %s\n", s->n, r ? strerror(-r) : "done");
	snprintf(name, sizeof(name), "session%u-probe", s->n);
	if (vpci_probe(&s->p, vf))
		return fail(name, "vpci_probe failed"), -1;
	if (s->p.device_id != VIRTIO_CONSOLE_PCI)
		return fail(name, "device id %04x, not virtio-console", s->p.device_id), -1;
	pass(name);
	snprintf(name, sizeof(name), "session%u-negotiate", s->n);
	if (vpci_reset(&s->p) || vpci_negotiate(&s->p, 0, 0))
		return fail(name, "reset or negotiation failed"), -1;
	if (!(s->p.device_features & platform) || !(s->p.features & platform))
		return fail(name, "ACCESS_PLATFORM offered %d accepted %d",
			    !!(s->p.device_features & platform), !!(s->p.features & platform)), -1;
	pass(name);
	snprintf(name, sizeof(name), "session%u-queues", s->n);
	if (vpci_setup_vectors(&s->p, 2) ||
	    vpci_setup_queue(&s->p, RXQ, QSIZE, BUF_SIZE, 0, true) ||
	    vpci_setup_queue(&s->p, TXQ, QSIZE, BUF_SIZE, 1, false))
		return fail(name, "vectors or queues refused"), -1;
	printf("INFO: session %u: rx %u entries at IOVA 0x%llx, tx at 0x%llx\n", s->n,
	       s->p.q[RXQ].size, (unsigned long long)s->p.q[RXQ].iova,
	       (unsigned long long)s->p.q[TXQ].iova);
	if (s->p.q[RXQ].iova < (4ull << 30) || s->p.q[TXQ].iova < (4ull << 30))
		return fail(name, "a queue was mapped below 4 GiB (inside guest RAM)"), -1;
	if (vpci_driver_ok(&s->p))
		return fail(name, "DRIVER_OK refused"), -1;
	pass(name);
	return 0;
}

static int send_one(struct session *s, unsigned int i)
{
	uint8_t msg[BUF_SIZE];
	uint16_t seq = (uint16_t)(s->n << 8 | i), len = msg_len(i), le;
	uint32_t j;
	int r;

	le = htole16(seq);
	memcpy(msg, &le, 2);
	le = htole16(len);
	memcpy(msg + 2, &le, 2);
	for (j = 0; j < len; j++)
		msg[HDR + j] = frame_byte(seq, j);
	r = vpci_send(&s->p, TXQ, msg, HDR + len);
	if (r == 0)
		s->sent++;
	return r;
}

/* Parse whole frames off the stream; -1 on a wrong reply. */
static int parse_replies(struct session *s)
{
	uint16_t seq, len, want;
	uint32_t j;

	while (s->have >= HDR) {
		memcpy(&seq, s->stream, 2);
		memcpy(&len, s->stream + 2, 2);
		seq = le16toh(seq);
		len = le16toh(len);
		if (s->have < HDR + (size_t)len)
			return 0;
		want = (uint16_t)(s->n << 8 | s->replies);
		if (seq != want || len != msg_len(s->replies)) {
			printf("INFO: reply %u: seq 0x%x len %u, expected 0x%x len %u\n", s->replies, seq,
			       len, want, msg_len(s->replies));
			return -1;
		}
		for (j = 0; j < len; j++) {
			if (s->stream[HDR + j] != (frame_byte(seq, j) ^ REPLY_XOR)) {
				printf("INFO: reply %u: byte %u is 0x%02x\n", s->replies, j,
				       s->stream[HDR + j]);
				return -1;
			}
		}
		s->replies++;
		s->have -= HDR + len;
		memmove(s->stream, s->stream + HDR + len, s->have);
	}
	return 0;
}

static int drain_rx(struct session *s)
{
	const uint8_t *data;
	uint32_t len;
	uint16_t id;
	int r;

	while ((r = vpci_recv(&s->p, RXQ, &data, &len, &id)) == 1) {
		if (len > STREAM_MAX - s->have) {
			printf("INFO: more unanswered bytes than expected\n");
			return -1;
		}
		memcpy(s->stream + s->have, data, len);
		s->have += len;
		if (vpci_repost(&s->p, RXQ, id))
			return -1;
	}
	return r < 0 ? -1 : parse_replies(s);
}

/* Interrupts signalled on @fd since the last read (the eventfd sums them). */
static unsigned int take_irq(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v) ? (unsigned int)v : 0;
}

/*
 * The replies may all be in before their interrupt reached the eventfd:
 * one that never comes within @ms is what the check is about.
 */
static unsigned int late_irq(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 ? take_irq(fd) : 0;
}

/*
 * Send NMSG frames (as many in flight as the ring takes) and wait for all
 * replies: wait on the vectors' eventfds, then poll the used rings (an
 * interrupt is never counted as a completion).
 */
static int exchange(struct session *s)
{
	struct pollfd pfd[2] = {
		{ .fd = vpci_vector_fd(&s->p, RXQ), .events = POLLIN },
		{ .fd = vpci_vector_fd(&s->p, TXQ), .events = POLLIN },
	};
	int64_t end = now_ms() + WAIT_MS;
	int r = 0;

	while (s->replies < NMSG) {
		while (s->sent < NMSG && (r = send_one(s, s->sent)) == 0)
			;
		if (s->sent < NMSG && r != -ENOBUFS)
			return printf("INFO: send: %s\n", strerror(-r)), -1;
		if (now_ms() > end)
			return printf("INFO: timeout: %u sent, %u replies, %zu bytes pending\n", s->sent,
				      s->replies, s->have), -1;
		if (poll(pfd, 2, 200) < 0)
			return -1;
		if (pfd[0].revents & POLLIN)
			s->irq_rx += take_irq(pfd[0].fd);
		if (pfd[1].revents & POLLIN)
			s->irq_tx += take_irq(pfd[1].fd);
		if (drain_rx(s) || vpci_reclaim(&s->p, TXQ) < 0)
			return -1;
	}
	return 0;
}

/* The type1 IOVA ranges as vfio_sys read them: none may touch the MSI window. */
static void check_iova_ranges(struct vfio_dev *vf)
{
	struct vfio_iova_range r[VFIO_DEV_MAX_IOVA_RANGES];
	uint64_t pgsizes = 0;
	int i, n = vf->ops->iova_ranges(vf, r, VFIO_DEV_MAX_IOVA_RANGES);

	vf->ops->iova_pgsizes(vf, &pgsizes);
	printf("INFO: IOMMU page sizes 0x%llx, %d IOVA ranges\n", (unsigned long long)pgsizes, n);
	for (i = 0; i < n; i++) {
		printf("INFO:   IOVA 0x%llx-0x%llx\n", (unsigned long long)r[i].start,
		       (unsigned long long)r[i].end);
		if (r[i].start <= 0xfeefffffull && r[i].end >= 0xfee00000ull) {
			fail("iova-ranges", "a range overlaps the MSI window");
			return;
		}
	}
	if (n > 0 && (pgsizes & 4096))
		pass("iova-ranges");
	else
		fail("iova-ranges", "%d ranges, page sizes 0x%llx", n, (unsigned long long)pgsizes);
}

static void serial_session(struct vfio_dev *vf, unsigned int n)
{
	struct session s = { .n = n };
	char name[64];
	int64_t t0;

	s.stream = malloc(STREAM_MAX);
	if (!s.stream || bring_up(&s, vf))
		goto out;
	snprintf(name, sizeof(name), "session%u-messages", n);
	t0 = now_ms();
	if (exchange(&s) == 0) {
		pass(name);
		printf("INFO: session %u: %u messages each way in %lld ms\n", n, NMSG,
		       (long long)(now_ms() - t0));
	} else {
		fail(name, "%u of %u replies arrived intact", s.replies, NMSG);
	}
	snprintf(name, sizeof(name), "session%u-msix", n);
	if (!s.irq_rx)
		s.irq_rx += late_irq(vpci_vector_fd(&s.p, RXQ), 2000);
	if (!s.irq_tx)
		s.irq_tx += late_irq(vpci_vector_fd(&s.p, TXQ), 2000);
	printf("INFO: session %u: interrupts rx %u tx %u\n", n, s.irq_rx, s.irq_tx);
	if (s.irq_rx && s.irq_tx)
		pass(name);
	else
		fail(name, "interrupts rx %u tx %u", s.irq_rx, s.irq_tx);
out:
	vpci_close(&s.p);
	free(s.stream);
}

static void check_serial(const char *bdf)
{
	struct vfio_dev vf;

	if (vfio_sys_open(&vf, bdf)) {
		fail("serial-open", "vfio_sys_open(%s) failed", bdf);
		return;
	}
	pass("serial-open");
	check_iova_ranges(&vf);
	serial_session(&vf, 1);
	/* after the reset vpci_close did, the device must work again */
	serial_session(&vf, 2);
	vf.ops->close(&vf);
}

/* ---- ivshmem: a memory BAR ----------------------------------------------- */

static uint8_t shm_in_byte(uint32_t i)
{
	return (uint8_t)(i * 13u + 7u + (i >> 12));
}

static uint8_t shm_out_byte(uint32_t i)
{
	return (uint8_t)((i * 29u + 3u) ^ 0x5au ^ (i >> 10));
}

static int shm_enable_memory(struct vfio_dev *vf)
{
	uint16_t cmd;

	if (vf->ops->region_read(vf, CFG_REGION, PCI_COMMAND, &cmd, 2))
		return -1;
	cmd = htole16(le16toh(cmd) | PCI_COMMAND_MEMORY);
	return vf->ops->region_write(vf, CFG_REGION, PCI_COMMAND, &cmd, 2);
}

static void shm_check_map(struct vfio_dev *vf)
{
	struct vfio_region_desc rd;
	volatile uint8_t *m;
	void *addr;
	uint32_t i;
	int r;

	r = vf->ops->region_info(vf, SHM_BAR, &rd);
	if (r || rd.size < SHM_SIZE) {
		fail("shm-map", "BAR 2 is 0x%llx bytes", r ? 0ull : (unsigned long long)rd.size);
		return;
	}
	r = shm_enable_memory(vf);
	r = r ? r : vf->ops->region_mmap(vf, SHM_BAR, 0, SHM_SIZE, &addr);
	if (r) {
		fail("shm-map", "region_mmap: %s", strerror(-r));
		return;
	}
	pass("shm-map");
	m = addr;
	for (i = 0; i < SHM_SIZE && m[i] == shm_in_byte(i); i++)
		;
	if (i == SHM_SIZE)
		pass("shm-read");
	else
		fail("shm-read", "byte 0x%x is 0x%02x, the host wrote 0x%02x", i, m[i], shm_in_byte(i));
	for (i = 0; i < SHM_SIZE; i++)
		m[i] = shm_out_byte(i);
	vf->ops->region_munmap(vf, addr, SHM_SIZE);
	/* out of range: refused, not mapped */
	if (vf->ops->region_mmap(vf, SHM_BAR, rd.size - 4096, 8192, &addr) == -EINVAL)
		pass("shm-map-bounds");
	else
		fail("shm-map-bounds", "a mapping past the BAR was not refused");
}

static void check_shm(const char *bdf)
{
	struct vfio_dev vf;

	if (vfio_sys_open(&vf, bdf)) {
		fail("shm-open", "vfio_sys_open(%s) failed", bdf);
		return;
	}
	pass("shm-open");
	shm_check_map(&vf);
	vf.ops->close(&vf);
}

static void check_refused(const char *name, const char *bdf, int want)
{
	struct vfio_dev vf;
	int r = vfio_sys_open(&vf, bdf);

	if (r == want)
		pass(name);
	else
		fail(name, "vfio_sys_open returned %d, not %d", r, want);
	if (r == 0)
		vf.ops->close(&vf);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "serial", required_argument, NULL, 's' },
		{ "shm", required_argument, NULL, 'm' },
		{ "unbound", required_argument, NULL, 'u' },
		{ "denied", required_argument, NULL, 'd' },
		{ 0 },
	};
	const char *serial = NULL, *shm = NULL, *unbound = NULL, *denied = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': serial = optarg; break;
		case 'm': shm = optarg; break;
		case 'u': unbound = optarg; break;
		case 'd': denied = optarg; break;
		default:
			fprintf(stderr, "usage: vfio_check [--serial BDF] [--shm BDF] [--unbound BDF] "
					"[--denied BDF]\n");
			return 2;
		}
	}
	if (unbound)
		check_refused("unbound-refused", unbound, -ENODEV);
	if (denied)
		check_refused("denied-refused", denied, -EACCES);
	if (serial)
		check_serial(serial);
	if (shm)
		check_shm(shm);
	printf("vfio_check: %u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
