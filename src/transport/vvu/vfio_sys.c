// SPDX-License-Identifier: MIT
/*
 * The kernel's VFIO behind struct vfio_ops: a type1 container, the
 * device's group and the device fd. Opening explains each way it can fail
 * in words a user can act on; after that the ops log nothing (vfio.h).
 *
 * What the kernel reports (region sizes, the IOVA capability chain) is
 * bounds-checked like device input.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* the kernel's header has its own struct vfio_iova_range, clashing with vfio.h's */
#define vfio_iova_range kernel_vfio_iova_range
#include <linux/vfio.h>
#undef vfio_iova_range

#include "transport/vvu/vfio.h"
#include "transport/vvu/vfio_sys.h"
#include "util/log.h"

#define SYSFS_PCI "/sys/bus/pci/devices"
#define NREGIONS (VFIO_PCI_CONFIG_REGION_INDEX + 1)
#define IOMMU_INFO_MAX 65536u
#define CAP_CHAIN_MAX 64
/* Without the IOVA capability (older kernels): 48 bits minus the MSI window. */
#define DEFAULT_IOVA_END ((1ull << 48) - 1)
#define MSI_WIN_FIRST 0xfee00000ull
#define MSI_WIN_LAST 0xfeefffffull

struct sys_region {
	uint64_t size, offset;
	uint32_t flags;
};

struct sys {
	int container, group, device;
	uint32_t dev_flags;
	struct sys_region regions[NREGIONS];
	unsigned int nregions;
	unsigned int msix_count;
	unsigned int msix_enabled;   /* vectors currently handed to the kernel */
};

static struct sys *S(struct vfio_dev *d)
{
	return d->priv;
}

/* ---- names ---------------------------------------------------------------- */

static bool hex_field(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
		      (s[i] >= 'A' && s[i] <= 'F')))
			return false;
	return true;
}

/* "BB:DD.F": device 0-0x1f, function 0-7 */
static bool bdf_ok(const char *s)
{
	if (!hex_field(s, 2) || s[2] != ':' || !hex_field(s + 3, 2) || s[5] != '.' ||
	    s[6] < '0' || s[6] > '7' || s[7])
		return false;
	/* the device number has 5 bits: the first digit is 0 or 1 */
	return s[3] == '0' || s[3] == '1';
}

int vfio_parse_pci_name(const char *in, char out[13])
{
	const char *base;
	char buf[32];
	size_t n, i;

	if (!in)
		return -EINVAL;
	n = strlen(in);
	while (n > 1 && in[n - 1] == '/')
		n--;
	for (i = n; i > 0 && in[i - 1] != '/'; i--)
		;
	base = in + i;
	n -= i;
	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, base, n);
	buf[n] = 0;
	if (n == 7 && bdf_ok(buf)) {
		memcpy(out, "0000:", 5);
		memcpy(out + 5, buf, 8);
	} else if (n == 12 && hex_field(buf, 4) && buf[4] == ':' && bdf_ok(buf + 5)) {
		memcpy(out, buf, 13);
	} else {
		return -EINVAL;
	}
	for (i = 0; i < 12; i++)
		if (out[i] >= 'A' && out[i] <= 'F')
			out[i] = (char)(out[i] - 'A' + 'a');
	return 0;
}

/* ---- sysfs ------------------------------------------------------------------ */

/* Last component of the symlink @dir/@link, or -errno. */
static int link_base(const char *dir, const char *link, char *out, size_t outlen)
{
	char path[PATH_MAX], target[PATH_MAX];
	const char *slash;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, link);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	slash = strrchr(target, '/');
	if (snprintf(out, outlen, "%s", slash ? slash + 1 : target) >= (int)outlen)
		return -ENAMETOOLONG;
	return 0;
}

static int check_driver(const char *bdf)
{
	char dir[PATH_MAX], drv[NAME_MAX + 1];

	snprintf(dir, sizeof(dir), SYSFS_PCI "/%s", bdf);
	if (access(dir, F_OK)) {
		log_err("--vfio %s: no such PCI device (%s missing)", bdf, dir);
		return -ENODEV;
	}
	if (link_base(dir, "driver", drv, sizeof(drv))) {
		log_err("--vfio %s: bound to no driver, not vfio-pci: echo vfio-pci > %s/driver_override; "
			"echo %s > /sys/bus/pci/drivers/vfio-pci/bind", bdf, dir, bdf);
		return -ENODEV;
	}
	if (strcmp(drv, "vfio-pci")) {
		log_err("--vfio %s: bound to %s, not vfio-pci: echo vfio-pci > %s/driver_override; "
			"echo %s > %s/driver/unbind; echo %s > /sys/bus/pci/drivers/vfio-pci/bind",
			bdf, drv, dir, bdf, dir, bdf);
		return -ENODEV;
	}
	return 0;
}

static int find_group(const char *bdf, int *group)
{
	char dir[PATH_MAX], name[NAME_MAX + 1], *end;
	long g;

	snprintf(dir, sizeof(dir), SYSFS_PCI "/%s", bdf);
	if (link_base(dir, "iommu_group", name, sizeof(name))) {
		log_err("--vfio %s: no IOMMU group: the IOMMU is off (intel_iommu=on / amd_iommu=on)",
			bdf);
		return -ENODEV;
	}
	errno = 0;
	g = strtol(name, &end, 10);
	if (errno || *end || g < 0 || g > INT_MAX) {
		log_err("--vfio %s: IOMMU group name '%s' is not a number", bdf, name);
		return -ENODEV;
	}
	*group = (int)g;
	return 0;
}

/* Log the group's other devices that keep it from being viable. */
static void log_group_blockers(const char *bdf, int group)
{
	char dir[PATH_MAX], sub[PATH_MAX], drv[NAME_MAX + 1];
	struct dirent *e;
	DIR *dp;

	snprintf(dir, sizeof(dir), "/sys/kernel/iommu_groups/%d/devices", group);
	dp = opendir(dir);
	if (!dp)
		return;
	while ((e = readdir(dp))) {
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub))
			continue;
		if (link_base(sub, "driver", drv, sizeof(drv)) == 0 && strcmp(drv, "vfio-pci"))
			log_err("--vfio %s: group %d also holds %s, bound to %s", bdf, group,
				e->d_name, drv);
	}
	closedir(dp);
}

/* ---- container, group, device --------------------------------------------- */

static int open_logged(const char *bdf, const char *path, const char *missing_hint)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int e = errno;

	if (fd >= 0)
		return fd;
	if (e == EACCES || e == EPERM)
		log_err("--vfio %s: permission denied on %s: this user needs read and write access to it",
			bdf, path);
	else if (e == ENOENT)
		log_err("--vfio %s: %s missing: %s", bdf, path, missing_hint);
	else if (e == EBUSY)
		log_err("--vfio %s: %s is busy: another process has the group open", bdf, path);
	else
		log_err("--vfio %s: cannot open %s: %s", bdf, path, strerror(e));
	return -e;
}

static int open_container(struct sys *s, const char *bdf, int *type)
{
	int fd = open_logged(bdf, "/dev/vfio/vfio", "the vfio module is not loaded (modprobe vfio-pci)");

	if (fd < 0)
		return fd;
	s->container = fd;
	if (ioctl(fd, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		log_err("--vfio %s: unknown VFIO API version", bdf);
		return -ENOTSUP;
	}
	if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0) {
		*type = VFIO_TYPE1v2_IOMMU;
	} else if (ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0) {
		*type = VFIO_TYPE1_IOMMU;
	} else {
		log_err("--vfio %s: no type1 IOMMU in VFIO: vfio_iommu_type1 not loaded "
			"(modprobe vfio_iommu_type1)", bdf);
		return -ENOTSUP;
	}
	return 0;
}

static int open_group(struct sys *s, const char *bdf, int group)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	fd = open_logged(bdf, path, "the device is not bound to vfio-pci");
	if (fd < 0)
		return fd;
	s->group = fd;
	if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st)) {
		log_err("--vfio %s: status of %s: %s", bdf, path, strerror(errno));
		return -errno;
	}
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		log_err("--vfio %s: IOMMU group %d is not viable: every device in "
			"/sys/kernel/iommu_groups/%d/devices must be bound to vfio-pci or to no driver",
			bdf, group, group);
		log_group_blockers(bdf, group);
		return -EBUSY;
	}
	return 0;
}

static int attach(struct sys *s, const char *bdf, int type)
{
	if (ioctl(s->group, VFIO_GROUP_SET_CONTAINER, &s->container)) {
		log_err("--vfio %s: cannot add the group to the container: %s", bdf, strerror(errno));
		return -errno;
	}
	if (ioctl(s->container, VFIO_SET_IOMMU, type)) {
		int e = errno;

		if (e == EPERM)
			log_err("--vfio %s: vfio_iommu_type1 refused the IOMMU: no interrupt remapping "
				"(intremap=on for an emulated intel-iommu; allow_unsafe_interrupts=1 in "
				"/sys/module/vfio_iommu_type1/parameters/ if you accept the risk)", bdf);
		else
			log_err("--vfio %s: cannot set the IOMMU type: %s", bdf, strerror(e));
		return -e;
	}
	s->device = ioctl(s->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (s->device < 0) {
		log_err("--vfio %s: cannot get the device from its group: %s", bdf, strerror(errno));
		return -errno;
	}
	return 0;
}

static int read_regions(struct sys *s, const char *bdf)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	unsigned int i;

	if (ioctl(s->device, VFIO_DEVICE_GET_INFO, &info) || !(info.flags & VFIO_DEVICE_FLAGS_PCI)) {
		log_err("--vfio %s: not a VFIO PCI device", bdf);
		return -ENODEV;
	}
	s->dev_flags = info.flags;
	s->nregions = info.num_regions < NREGIONS ? info.num_regions : NREGIONS;
	for (i = 0; i < s->nregions; i++) {
		struct vfio_region_info r = { .argsz = sizeof(r), .index = i };

		if (ioctl(s->device, VFIO_DEVICE_GET_REGION_INFO, &r))
			continue;  /* a region the device lacks stays size 0 */
		if (r.offset > UINT64_MAX - r.size)
			continue;
		s->regions[i] = (struct sys_region){ r.size, r.offset, r.flags };
	}
	if (info.num_irqs > VFIO_PCI_MSIX_IRQ_INDEX &&
	    ioctl(s->device, VFIO_DEVICE_GET_IRQ_INFO, &irq) == 0 &&
	    (irq.flags & VFIO_IRQ_INFO_EVENTFD))
		s->msix_count = irq.count;
	return 0;
}

/* ---- ops -------------------------------------------------------------------- */

static int sys_region_info(struct vfio_dev *d, unsigned int index, struct vfio_region_desc *out)
{
	struct sys *s = S(d);

	if (index >= s->nregions)
		return -EINVAL;
	out->size = s->regions[index].size;
	out->flags = s->regions[index].flags;
	return 0;
}

static const struct sys_region *region_span(struct sys *s, unsigned int index, uint64_t off,
					    size_t len)
{
	const struct sys_region *r;

	if (index >= s->nregions)
		return NULL;
	r = &s->regions[index];
	if (off > r->size || len > r->size - off)
		return NULL;
	return r;
}

static int sys_region_read(struct vfio_dev *d, unsigned int index, uint64_t off, void *buf,
			   size_t len)
{
	const struct sys_region *r = region_span(S(d), index, off, len);
	ssize_t n;

	if (!r || !(r->flags & VFIO_REGION_INFO_FLAG_READ))
		return -EINVAL;
	n = pread(S(d)->device, buf, len, (off_t)(r->offset + off));
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int sys_region_write(struct vfio_dev *d, unsigned int index, uint64_t off, const void *buf,
			    size_t len)
{
	const struct sys_region *r = region_span(S(d), index, off, len);
	ssize_t n;

	if (!r || !(r->flags & VFIO_REGION_INFO_FLAG_WRITE))
		return -EINVAL;
	n = pwrite(S(d)->device, buf, len, (off_t)(r->offset + off));
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int sys_region_mmap(struct vfio_dev *d, unsigned int index, uint64_t off, size_t len,
			   void **out)
{
	const struct sys_region *r = region_span(S(d), index, off, len);
	void *p;

	if (!r || !len || !(r->flags & VFIO_REGION_INFO_FLAG_MMAP) ||
	    off % (uint64_t)sysconf(_SC_PAGESIZE))
		return -EINVAL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, S(d)->device,
		 (off_t)(r->offset + off));
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

static void sys_region_munmap(struct vfio_dev *d, void *addr, size_t len)
{
	(void)d;
	if (addr)
		munmap(addr, len);
}

/* VFIO_IOMMU_GET_INFO with room for its capability chain; caller frees. */
static int iommu_info(struct sys *s, struct vfio_iommu_type1_info **out)
{
	struct vfio_iommu_type1_info *info = calloc(1, sizeof(*info)), *big;
	uint32_t need;

	if (!info)
		return -ENOMEM;
	info->argsz = sizeof(*info);
	if (ioctl(s->container, VFIO_IOMMU_GET_INFO, info))
		goto fail;
	need = info->argsz;
	if (need > sizeof(*info) && need <= IOMMU_INFO_MAX) {
		big = realloc(info, need);
		if (!big)
			goto fail;
		info = big;
		memset(info, 0, need);
		info->argsz = need;
		if (ioctl(s->container, VFIO_IOMMU_GET_INFO, info))
			goto fail;
		if (info->argsz > need)
			info->argsz = need;  /* grew between calls: read only what we have */
	} else {
		info->argsz = sizeof(*info);
	}
	*out = info;
	return 0;
fail:
	free(info);
	return errno ? -errno : -ENOMEM;
}

/*
 * Offset of the IOVA-range capability in the @size bytes at @buf, and its
 * range count. The kernel aligns capabilities to 4 bytes only, so every
 * field is copied out rather than read in place.
 * Return: 0, -ENOENT when there is none, -EIO for a broken chain.
 */
static int find_iova_cap(const uint8_t *buf, size_t size, size_t *cap_off, uint32_t *nr)
{
	const size_t cap_len = offsetof(struct vfio_iommu_type1_info_cap_iova_range, iova_ranges);
	const size_t range_len = sizeof(struct kernel_vfio_iova_range);
	struct vfio_iommu_type1_info info;
	struct vfio_info_cap_header h;
	size_t off;
	int hops;

	memcpy(&info, buf, sizeof(info));
	if (!(info.flags & VFIO_IOMMU_INFO_CAPS))
		return -ENOENT;
	for (off = info.cap_offset, hops = 0; off; off = h.next, hops++) {
		if (hops == CAP_CHAIN_MAX || off < sizeof(info) || off > size ||
		    size - off < sizeof(h) || off % 4)
			return -EIO;
		memcpy(&h, buf + off, sizeof(h));
		if (h.id != VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE)
			continue;
		if (size - off < cap_len)
			return -EIO;
		memcpy(nr, buf + off + offsetof(struct vfio_iommu_type1_info_cap_iova_range, nr_iovas),
		       sizeof(*nr));
		if (*nr > (size - off - cap_len) / range_len)
			return -EIO;
		*cap_off = off + cap_len;
		return 0;
	}
	return -ENOENT;
}

static int default_ranges(struct vfio_iova_range *out, unsigned int max)
{
	if (max < 2)
		return 0;
	out[0] = (struct vfio_iova_range){ 0, MSI_WIN_FIRST - 1 };
	out[1] = (struct vfio_iova_range){ MSI_WIN_LAST + 1, DEFAULT_IOVA_END };
	return 2;
}

int vfio_sys_parse_iova(const void *info, size_t size, struct vfio_iova_range *out,
			unsigned int max)
{
	struct vfio_iommu_type1_info head;
	struct kernel_vfio_iova_range rg;
	const uint8_t *buf = info;
	unsigned int n = 0;
	size_t ranges;
	uint32_t i, nr;
	int r;

	if (size < sizeof(head))
		return -EIO;
	memcpy(&head, buf, sizeof(head));
	if (head.argsz < size)
		size = head.argsz;
	r = find_iova_cap(buf, size, &ranges, &nr);
	if (r == -ENOENT)
		return default_ranges(out, max);
	if (r)
		return r;
	for (i = 0; i < nr && n < max; i++) {
		memcpy(&rg, buf + ranges + (size_t)i * sizeof(rg), sizeof(rg));
		if (rg.start > rg.end)
			continue;
		out[n].start = rg.start;
		out[n].end = rg.end;
		n++;
	}
	return (int)n;
}

static int sys_iova_ranges(struct vfio_dev *d, struct vfio_iova_range *out, unsigned int max)
{
	struct vfio_iommu_type1_info *info;
	int r = iommu_info(S(d), &info);

	if (r)
		return r;
	r = vfio_sys_parse_iova(info, info->argsz, out, max);
	free(info);
	return r;
}

static int sys_iova_pgsizes(struct vfio_dev *d, uint64_t *out)
{
	struct vfio_iommu_type1_info *info;
	int r = iommu_info(S(d), &info);

	if (r)
		return r;
	*out = (info->flags & VFIO_IOMMU_INFO_PGSIZES) ? info->iova_pgsizes : 4096;
	free(info);
	return 0;
}

static int sys_dma_map(struct vfio_dev *d, void *vaddr, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
		.vaddr = (uintptr_t)vaddr,
		.iova = iova,
		.size = size,
	};

	return ioctl(S(d)->container, VFIO_IOMMU_MAP_DMA, &m) ? -errno : 0;
}

static int sys_dma_unmap(struct vfio_dev *d, uint64_t iova, uint64_t size)
{
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof(u), .iova = iova, .size = size };

	return ioctl(S(d)->container, VFIO_IOMMU_UNMAP_DMA, &u) ? -errno : 0;
}

static int sys_msix_count(struct vfio_dev *d, unsigned int *out)
{
	*out = S(d)->msix_count;
	return 0;
}

static int irq_set(struct sys *s, const int *efds, unsigned int n)
{
	size_t sz = sizeof(struct vfio_irq_set) + (size_t)n * sizeof(int);
	struct vfio_irq_set *set = calloc(1, sz);
	int r = 0;

	if (!set)
		return -ENOMEM;
	set->argsz = (uint32_t)sz;
	set->flags = VFIO_IRQ_SET_ACTION_TRIGGER |
		     (n ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
	set->index = VFIO_PCI_MSIX_IRQ_INDEX;
	set->start = 0;
	set->count = n;
	if (n)
		memcpy(set->data, efds, n * sizeof(int));
	if (ioctl(s->device, VFIO_DEVICE_SET_IRQS, set))
		r = -errno;
	free(set);
	return r;
}

static int sys_set_msix(struct vfio_dev *d, const int *efds, unsigned int n)
{
	struct sys *s = S(d);
	int r;

	if (n > s->msix_count)
		return -EINVAL;
	/* the kernel keeps the vector count MSI-X was enabled with: re-enable to change it */
	if (s->msix_enabled && n != s->msix_enabled) {
		r = irq_set(s, NULL, 0);
		if (r)
			return r;
		s->msix_enabled = 0;
	}
	if (n == 0)
		return 0;
	r = irq_set(s, efds, n);
	if (r == 0)
		s->msix_enabled = n;
	return r;
}

static int sys_reset(struct vfio_dev *d)
{
	if (!(S(d)->dev_flags & VFIO_DEVICE_FLAGS_RESET))
		return -ENOTTY;
	return ioctl(S(d)->device, VFIO_DEVICE_RESET) ? -errno : 0;
}

static void sys_free(struct sys *s)
{
	if (s->device >= 0)
		close(s->device);
	if (s->group >= 0)
		close(s->group);
	if (s->container >= 0)
		close(s->container);
	free(s);
}

static void sys_close(struct vfio_dev *d)
{
	struct sys *s = S(d);

	if (!s)
		return;
	if (s->msix_enabled)
		irq_set(s, NULL, 0);
	sys_free(s);
	d->priv = NULL;
}

static const struct vfio_ops sys_ops = {
	.region_info = sys_region_info,
	.region_read = sys_region_read,
	.region_write = sys_region_write,
	.region_mmap = sys_region_mmap,
	.region_munmap = sys_region_munmap,
	.iova_ranges = sys_iova_ranges,
	.iova_pgsizes = sys_iova_pgsizes,
	.dma_map = sys_dma_map,
	.dma_unmap = sys_dma_unmap,
	.msix_count = sys_msix_count,
	.set_msix = sys_set_msix,
	.reset = sys_reset,
	.close = sys_close,
};

static int sys_open(struct sys *s, const char *bdf)
{
	int group, type, r;

	r = check_driver(bdf);
	r = r ? r : find_group(bdf, &group);
	r = r ? r : open_container(s, bdf, &type);
	r = r ? r : open_group(s, bdf, group);
	r = r ? r : attach(s, bdf, type);
	return r ? r : read_regions(s, bdf);
}

int vfio_sys_open(struct vfio_dev *d, const char *name)
{
	char bdf[13];
	struct sys *s;
	int r;

	if (vfio_parse_pci_name(name, bdf)) {
		log_err("--vfio %s: not a PCI device name (0000:00:05.0, 00:05.0 or its sysfs path)",
			name ? name : "(null)");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->container = s->group = s->device = -1;
	r = sys_open(s, bdf);
	if (r) {
		sys_free(s);
		return r;
	}
	memset(d, 0, sizeof(*d));
	d->ops = &sys_ops;
	snprintf(d->name, sizeof(d->name), "%s", bdf);
	d->priv = s;
	log_info("vfio %s: open (%u regions, %u MSI-X vectors, reset %s)", bdf, s->nregions,
		 s->msix_count, (s->dev_flags & VFIO_DEVICE_FLAGS_RESET) ? "yes" : "no");
	return 0;
}
