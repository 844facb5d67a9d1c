/* SPDX-License-Identifier: MIT */
/*
 * Seeds for fuzz/fuzz_vvu.c's device-values mode, recorded from the model:
 * the project's virtio-PCI driver brings the model up through a vfio_ops
 * shim that writes down every BAR read, and the seed is the model's config
 * space, BAR sizes, vectors and IOVA ranges followed by those reads, in
 * the target's encoding (see the head of fuzz_vvu.c). One seed per model
 * variant: as built, crosvm's device id, and each probe-time fault; and
 * the same for the VVU transport's own start-up (vvu_start), followed by
 * two requests the "device" delivers. (Message-mode seeds are sessions the
 * bridge recorded: vvu_daemon_model --model-record DIR.)
 *
 * Usage: vvu_fuzz_seeds DIR (ninja -C <build> fuzz-corpus-vvu writes
 * fuzz/corpus/vvu/).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/vvu/virtio_pci.h"
#include "util/log.h"
#include "vvu_model.h"
#if __has_include("transport/vvu/vvu.h")
#include "transport/vvu/vvu.h"
#define SEEDS_HAVE_VVU 1
#else
#define SEEDS_HAVE_VVU 0
#endif

#define STREAM_MAX 65536u

static struct {
	const struct vfio_ops *inner;
	uint8_t stream[STREAM_MAX];
	size_t len;
	bool status_zero;
} rec;

static bool is_status(unsigned int index, uint64_t off, size_t len)
{
	return index == VVM_BAR_REGS && off == VVM_COMMON_OFF + 0x14 && len == 1;
}

static int r_read(struct vfio_dev *d, unsigned int index, uint64_t off, void *buf, size_t len)
{
	int rc = rec.inner->region_read(d, index, off, buf, len);

	if (rc < 0 || index >= 6)
		return rc;
	/* the fuzz target answers this read itself (0) without taking input */
	if (rec.status_zero && is_status(index, off, len)) {
		rec.status_zero = false;
		return rc;
	}
	if (rec.len + len <= STREAM_MAX) {
		memcpy(rec.stream + rec.len, buf, len);
		rec.len += len;
	}
	return rc;
}

static int r_write(struct vfio_dev *d, unsigned int index, uint64_t off, const void *buf, size_t len)
{
	if (is_status(index, off, len))
		rec.status_zero = ((const uint8_t *)buf)[0] == 0;
	return rec.inner->region_write(d, index, off, buf, len);
}

static void put(FILE *f, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		fputc((int)(v >> (8 * i)) & 0xff, f);
}

static unsigned int log2_of(uint64_t v)
{
	unsigned int n = 0;

	while (v > 1) {
		v >>= 1;
		n++;
	}
	return n;
}

/* The header of the encoding: config space, BARs, vectors, IOVA ranges, no failures. */
static void write_device(FILE *f, struct vfio_dev *d, bool transport)
{
	uint8_t cfg[256];
	struct vfio_iova_range r[4];
	unsigned int nvec, n;

	put(f, transport ? 2 : 0, 1); /* mode: device values, through vvu_start or not */
	d->ops->region_read(d, 7, 0, cfg, sizeof(cfg));
	fwrite(cfg, 1, sizeof(cfg), f);
	for (unsigned int i = 0; i < 6; i++) {
		struct vfio_region_desc rd = { 0 };

		d->ops->region_info(d, i, &rd);
		put(f, rd.size ? log2_of(rd.size) : 0, 1);
		put(f, rd.flags, 1);
	}
	d->ops->msix_count(d, &nvec);
	put(f, nvec, 1);
	n = (unsigned int)d->ops->iova_ranges(d, r, 4);
	put(f, n, 1);
	for (unsigned int i = 0; i < n; i++) {
		put(f, r[i].start, 8);
		put(f, r[i].end, 8);
	}
	put(f, 0, 1);
}

/* The plain virtio-PCI sequence, as fuzz_vvu's device-values mode runs it. */
static int plain_bring_up(struct vpci *p, struct vfio_dev *d)
{
	uint32_t up = 1;
	int rc = vpci_probe(p, d);

	if (rc == 0)
		rc = vpci_reset(p);
	if (rc == 0)
		rc = vpci_negotiate(p, 1ull << 32, 0);
	if (rc == 0)
		rc = vpci_setup_vectors(p, VVM_NVECTORS);
	if (rc == 0)
		rc = vpci_setup_queue(p, 0, 256, 1024, 0, true);
	if (rc == 0)
		rc = vpci_setup_queue(p, 1, 256, 1024, 1, false);
	if (rc == 0)
		rc = vpci_driver_ok(p);
	if (rc == 0)
		vpci_cfg_write(p, 0, &up, 4);
	return rc;
}

/* Two completions: a 12-byte message on rxq, the first send back on txq. */
static void plain_rounds(FILE *f)
{
	put(f, 0, 1);
	put(f, 1, 2);
	put(f, 0, 4);
	put(f, 12, 4);
	put(f, 1, 1);
	put(f, 1, 2);
	put(f, 0, 4);
	put(f, 0, 4);
}

#if SEEDS_HAVE_VVU
static struct vfio_ops shim;

static int shim_open(struct vfio_dev *d, const char *name)
{
	int rc = vvm_vfio_open(d, name);

	if (rc == 0) {
		rec.inner = d->ops;
		shim = *d->ops;
		shim.region_read = r_read;
		shim.region_write = r_write;
		d->ops = &shim;
	}
	return rc;
}

/* One request as the device delivers it: its bytes, then its used entry. */
static void transport_round(FILE *f, uint32_t req, uint64_t u64, uint32_t size, uint16_t n)
{
	put(f, 12 + size, 2);
	put(f, req, 4);
	put(f, 1, 4);
	put(f, size, 4);
	if (size)
		put(f, u64, size);
	put(f, 0, 1);
	put(f, n, 2);
	put(f, n - 1u, 4);
	put(f, 12 + size, 4);
}

static int transport_seed(FILE *f)
{
	static struct vvu v;
	int rc = vvu_open(&v, shim_open, "0000:00:05.0", 3);

	if (rc == 0)
		rc = vvu_start(&v);
	fwrite(rec.stream, 1, rec.len, f);
	transport_round(f, VU_REQ_GET_FEATURES, 0, 0, 1);
	transport_round(f, VU_REQ_SET_VRING_KICK, 0x100, 8, 2);
	vvu_close(&v);
	return rc;
}
#endif

static int seed(const char *dir, const char *name, enum vvm_fault fault, uint16_t device_id,
		bool transport)
{
	struct vvm_config c = { .fault = fault, .device_id = device_id };
	char path[512];
	struct vfio_dev d;
	struct vpci p;
	struct vvm *m;
	FILE *f;
	int rc;

	if (vvm_new(&m, &c) < 0)
		return -ENOMEM;
	vvm_vfio_attach(m);
	rc = vvm_vfio_open(&d, "0000:00:05.0");
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = rc == 0 ? fopen(path, "w") : NULL;
	if (!f) {
		vvm_vfio_attach(NULL);
		vvm_free(m);
		return -EIO;
	}
	write_device(f, &d, transport);
	rec.len = 0;
	rec.status_zero = false;
	if (transport) {
		/* vvu_open opens the device itself, through the recording shim */
		d.ops->close(&d);
#if SEEDS_HAVE_VVU
		transport_seed(f);
#endif
	} else {
		rec.inner = d.ops;
		static struct vfio_ops plain_shim;

		plain_shim = *d.ops;
		plain_shim.region_read = r_read;
		plain_shim.region_write = r_write;
		d.ops = &plain_shim;
		memset(&p, 0, sizeof(p));
		plain_bring_up(&p, &d);
		fwrite(rec.stream, 1, rec.len, f);
		plain_rounds(f);
		d.ops = rec.inner;
		vpci_close(&p);
		d.ops->close(&d);
	}
	fclose(f);
	vvm_vfio_attach(NULL);
	vvm_free(m);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	log_set_level(LOG_LVL_ERROR);
	for (unsigned int t = 0; t < (SEEDS_HAVE_VVU ? 2u : 1u); t++) {
		const char *pre = t ? "start" : "probe";
		char name[64];

		snprintf(name, sizeof(name), "%s-model", pre);
		rc |= seed(argv[1], name, VVM_FAULT_NONE, 0, t);
		snprintf(name, sizeof(name), "%s-crosvm-id", pre);
		rc |= seed(argv[1], name, VVM_FAULT_NONE, 0x107d, t);
		snprintf(name, sizeof(name), "%s-cap-outside", pre);
		rc |= seed(argv[1], name, VVM_FAULT_CAP_OUTSIDE, 0, t);
		snprintf(name, sizeof(name), "%s-queue-size-0", pre);
		rc |= seed(argv[1], name, VVM_FAULT_QSIZE0, 0, t);
		snprintf(name, sizeof(name), "%s-vector-refused", pre);
		rc |= seed(argv[1], name, VVM_FAULT_VECTOR, 0, t);
	}
	return rc ? 1 : 0;
}
