// SPDX-License-Identifier: MIT
/*
 * Privilege drop and the seccomp allow-list (see sandbox.h).
 *
 * How the list was found: the whole test suite (unit, integration, the
 * real-peer tests of both engines) was run with the daemon under
 * `strace -f -D -qq -o trace.%p` and with --sandbox=seccomp-errno, and
 * every call made after start-up was taken in, each with the reason it is
 * needed. A new call in the code needs a line here; the integration suite
 * runs with the default filter, so a missing one fails it (SIGSYS).
 */
#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/vfio.h>
#include <linux/vhost.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "engine/user/hybrid.h"
#include "util/log.h"
#include "util/sanitizer.h"

/* The flags the kernel engine opens its vhost device with (kernel.c). */
#define VHOST_OPEN_FLAGS (O_RDWR | O_CLOEXEC | O_NONBLOCK)

int sandbox_parse_mode(const char *text, enum sandbox_mode *mode)
{
	static const enum sandbox_mode all[] = { SANDBOX_SECCOMP, SANDBOX_SECCOMP_ERRNO,
						 SANDBOX_NONE };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(text, sandbox_mode_name(all[i])) == 0) {
			*mode = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

const char *sandbox_mode_name(enum sandbox_mode mode)
{
	switch (mode) {
	case SANDBOX_SECCOMP:
		return "seccomp";
	case SANDBOX_SECCOMP_ERRNO:
		return "seccomp-errno";
	case SANDBOX_NONE:
		return "none";
	}
	return "?";
}

/* ---- users and groups ------------------------------------------------------- */

static int parse_id(const char *text, uint32_t *id)
{
	/* uid/gid (uint32_t)-1 means "unchanged" to the set*id calls: never a target */
	return cli_parse_u32(text, 0, UINT32_MAX - 1, id);
}

int sandbox_lookup_user(const char *text, uint32_t *uid, uint32_t *gid, bool *has_gid)
{
	const struct passwd *pw = getpwnam(text);

	*has_gid = false;
	if (!pw) {
		if (parse_id(text, uid) < 0)
			return -ENOENT;
		pw = getpwuid(*uid); /* a number needs no passwd entry */
	}
	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		*has_gid = true;
	}
	return 0;
}

int sandbox_lookup_group(const char *text, uint32_t *gid)
{
	const struct group *gr = getgrnam(text);

	if (gr) {
		*gid = gr->gr_gid;
		return 0;
	}
	return parse_id(text, gid) == 0 ? 0 : -ENOENT;
}

static int set_groups(uint32_t gid, const char *user)
{
	gid_t g = gid;

	if (user && initgroups(user, g) == 0)
		return 0;
	return setgroups(1, &g) < 0 ? -errno : 0;
}

/* Root must be gone for good: every id is the target, and 0 is out of reach. */
static int check_dropped(uint32_t uid, uint32_t gid)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;

	if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return -errno;
	if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid)
		return -EPERM;
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
		return -EPERM;
	return 0;
}

int sandbox_drop_privileges(uint32_t uid, uint32_t gid, const char *user)
{
	int rc = set_groups(gid, user);

	if (rc < 0) {
		log_err("--user/--group: cannot set the supplementary groups: %s (changing user "
			"needs root, or CAP_SETUID and CAP_SETGID)", strerror(-rc));
		return rc;
	}
	if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		rc = -errno;
		log_err("--user/--group: cannot become uid %u gid %u: %s", uid, gid, strerror(-rc));
		return rc;
	}
	rc = check_dropped(uid, gid);
	if (rc < 0) {
		log_err("--user/--group: root privileges could still be regained after the change "
			"to uid %u gid %u: refusing to run", uid, gid);
		return rc;
	}
	log_info("running as uid %u, gid %u", uid, gid);
	return 0;
}

/* ---- the system call filter ------------------------------------------------- */

/* Calls allowed whatever their arguments, in both engines. */
static const int allow_any[] = {
	/* the event loops, eventfds and timers (loop.c, device.c, control.c) */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
	SCMP_SYS(epoll_create1), SCMP_SYS(eventfd2), SCMP_SYS(timerfd_create),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(poll), SCMP_SYS(ppoll),
	/* data: vhost-user messages with fds, host sockets, logs to stderr */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(sendmsg),
	SCMP_SYS(close), SCMP_SYS(fcntl), SCMP_SYS(shutdown),
	/* Unix sockets: front ends, hybrid vsock, host connects, VMs added at run time */
	SCMP_SYS(accept4), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(connect),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername),
	/* socket files: stale-file checks, modes, removal (unix.c) */
	SCMP_SYS(newfstatat), SCMP_SYS(fstat), SCMP_SYS(statx), SCMP_SYS(chmod),
	SCMP_SYS(fchmodat), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
	/* the socket file's mode is set by the umask around bind() (unix.c) */
	SCMP_SYS(umask),
	/* memory: guest RAM mappings (guest_mem.c), malloc, thread stacks */
	SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mremap), SCMP_SYS(brk),
	/* threads: VMs added at run time, mutexes, the snapshot hand-over */
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(exit),
	SCMP_SYS(exit_group), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigaction),
	SCMP_SYS(restart_syscall), SCMP_SYS(sched_yield), SCMP_SYS(gettid), SCMP_SYS(getpid),
	/* time, randomness (connection table hash seeds), the peer check */
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday), SCMP_SYS(getrandom), SCMP_SYS(geteuid), SCMP_SYS(getuid),
	SCMP_SYS(getegid), SCMP_SYS(getgid),
};

/*
 * Sanitizer builds only: LeakSanitizer's check at exit runs a tracer process
 * that attaches to every thread (ptrace) and reads /proc, and reports are
 * symbolized by a helper process (fork, execve). Found by killing each call
 * in turn under ASan and seeing which ones lose the report.
 */
static const int allow_sanitizer[] = {
	SCMP_SYS(ptrace), SCMP_SYS(wait4), SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(stat),
	SCMP_SYS(lstat), SCMP_SYS(access), SCMP_SYS(getdents), SCMP_SYS(getdents64),
	SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(pread64), SCMP_SYS(lseek),
	SCMP_SYS(times), SCMP_SYS(sigaltstack), SCMP_SYS(prctl), SCMP_SYS(arch_prctl),
	SCMP_SYS(set_tid_address), SCMP_SYS(clone), SCMP_SYS(fork), SCMP_SYS(vfork),
	SCMP_SYS(execve), SCMP_SYS(mmap), SCMP_SYS(mprotect), SCMP_SYS(getppid),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(process_vm_readv), SCMP_SYS(kill),
	SCMP_SYS(tgkill), SCMP_SYS(uname), SCMP_SYS(pipe), SCMP_SYS(pipe2), SCMP_SYS(dup),
	SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(prlimit64), SCMP_SYS(getrlimit),
};

/* What the kernel engine asks the vhost device (kernel.c). */
static const unsigned long vhost_requests[] = {
	VHOST_GET_FEATURES, VHOST_SET_FEATURES, VHOST_SET_OWNER, VHOST_RESET_OWNER,
	VHOST_SET_MEM_TABLE, VHOST_SET_VRING_NUM, VHOST_SET_VRING_ADDR, VHOST_SET_VRING_BASE,
	VHOST_GET_VRING_BASE, VHOST_SET_VRING_KICK, VHOST_SET_VRING_CALL, VHOST_SET_VRING_ERR,
	VHOST_VSOCK_SET_GUEST_CID, VHOST_VSOCK_SET_RUNNING,
};

/*
 * What the VVU transport asks VFIO after start-up: the device is reset and
 * set up again after every front end (vfio_sys.c, virtio_pci.c): region
 * info, MSI-X on and off, DMA maps of the queues, the function reset.
 */
static const unsigned long vfio_requests[] = {
	VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_GET_IRQ_INFO,
	VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET, VFIO_IOMMU_GET_INFO, VFIO_IOMMU_MAP_DMA,
	VFIO_IOMMU_UNMAP_DMA,
};

/* Register and config-space access goes through the device fd at region offsets. */
static const int vfio_calls[] = {
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(preadv), SCMP_SYS(pwritev),
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int allow_list(scmp_filter_ctx ctx, const int *calls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i], 0);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* A VM forwards to host AF_VSOCK (--forward-cid): its sockets are allowed too. */
static bool allow_af_vsock;

/* Calls allowed with some arguments only. */
static int allow_narrow(scmp_filter_ctx ctx)
{
	int rc = 0;

	/* no executable mappings: nothing is loaded or generated at run time */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
			       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
			       SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* threads only (pthread_create); no new processes */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
			       SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	/* clone3's flags sit in memory the filter cannot read: glibc falls back to clone */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* Unix sockets only: the daemon has no business on a network */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
			       SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
	/* forwarding to host AF_VSOCK (forward.h), only when configured at start-up */
	if (allow_af_vsock)
		rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				       SCMP_A0(SCMP_CMP_EQ, AF_VSOCK));
	/* abort() signals this process only */
	rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
			       SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()));
	return rc;
}

/*
 * The userspace engine opens no file, but glibc does once, by itself: when
 * threads contend enough for a new malloc arena, it reads the CPU count
 * from /sys, and copes when it cannot. So opening fails (EACCES) rather
 * than killing the daemon for it.
 */
static int refuse_open(scmp_filter_ctx ctx)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
}

static int allow_vhost(scmp_filter_ctx ctx)
{
	/* the kernel's O_LARGEFILE (0100000) may be added on the way: ignore that bit */
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
				  SCMP_A2(SCMP_CMP_MASKED_EQ, 0xffffffffu & ~(scmp_datum_t)0100000,
					  VHOST_OPEN_FLAGS));

	for (size_t i = 0; rc == 0 && i < NELEM(vhost_requests); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, vhost_requests[i]));
	return rc;
}

static int allow_vfio(scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; i < NELEM(vfio_calls) && rc == 0; i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, vfio_calls[i], 0);
	for (size_t i = 0; rc == 0 && i < NELEM(vfio_requests); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
				      SCMP_A1(SCMP_CMP_EQ, vfio_requests[i]));
	return rc;
}

static uint32_t default_action(enum sandbox_mode mode)
{
	if (mode == SANDBOX_SECCOMP_ERRNO)
		return SCMP_ACT_ERRNO(EPERM);
	/* KILL_PROCESS needs API level 3 (Linux 4.14); KILL ends the thread only */
	return seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL;
}

int sandbox_install_filter(enum sandbox_mode mode, bool kernel_engine)
{
	return sandbox_install_filter_vfio(mode, kernel_engine, false);
}

int sandbox_install_filter_vfio(enum sandbox_mode mode, bool kernel_engine, bool vfio)
{
	scmp_filter_ctx ctx = seccomp_init(default_action(mode));
	int rc;

	if (!ctx) {
		log_err("--sandbox=%s: cannot create a seccomp filter", sandbox_mode_name(mode));
		return -ENOMEM;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	if (rc == 0)
		rc = allow_list(ctx, allow_any, NELEM(allow_any));
	if (rc == 0)
		rc = allow_narrow(ctx) < 0 ? -EINVAL : 0;
	if (rc == 0)
		rc = kernel_engine ? allow_vhost(ctx) : SANITIZER_BUILD ? 0 : refuse_open(ctx);
	if (rc == 0 && vfio)
		rc = allow_vfio(ctx);
	if (rc == 0 && SANITIZER_BUILD)
		rc = allow_list(ctx, allow_sanitizer, NELEM(allow_sanitizer));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0) {
		log_err("--sandbox=%s: cannot install the system call filter: %s (is seccomp "
			"available to this process? --sandbox=none runs without it)",
			sandbox_mode_name(mode), strerror(-rc));
		return rc;
	}
	log_info("sandbox: seccomp allow-list installed (%s engine%s%s%s); other system calls %s",
		 kernel_engine ? "kernel" : "userspace", vfio ? ", VFIO" : "",
		 allow_af_vsock ? ", AF_VSOCK sockets (forwarding)" : "",
		 SANITIZER_BUILD ? ", sanitizer build" : "",
		 mode == SANDBOX_SECCOMP ? "kill the process" : "fail with EPERM");
	return 0;
}

void sandbox_selftest(void)
{
	static char *const argv[] = { "vhost-user-vsock-selftest", NULL };
	const char *env = getenv(SANDBOX_SELFTEST_ENV);
	int rc;

	if (!env || strcmp(env, "1") != 0)
		return;
	log_warn("sandbox self-test (" SANDBOX_SELFTEST_ENV "=1): trying execve(2) and an "
		 "AF_INET socket");
	/* a path that cannot exist: without a filter this fails harmlessly */
	rc = execve("/nonexistent/vhost-user-vsock-selftest", argv, argv + 1);
	log_warn("sandbox self-test: execve returned %d: %s", rc, strerror(errno));
	/* forbidden in every build, sanitizer builds included */
	rc = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	log_warn("sandbox self-test: socket(AF_INET) returned %d: %s", rc,
		 rc < 0 ? strerror(errno) : "allowed");
	if (rc >= 0)
		close(rc);
}

/* ---- putting it together ----------------------------------------------------- */

/* Hand one socket file we made to the user we become (never through a symlink). */
static int give(const char *path, uint32_t uid, uint32_t gid)
{
	if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	log_err("--user: cannot hand %s to uid %u gid %u: %s", path, uid, gid, strerror(errno));
	return -errno;
}

static int give_vm_files(const struct config *cfg, unsigned int i)
{
	const struct vm_config *vc = &cfg->vms[i];
	bool inherited = i == 0 && (cfg->fd >= 0 || cfg->activated);
	char seq[512];
	int rc = 0;

	if (!inherited && vc->socket_path)
		rc = give(vc->socket_path, cfg->uid, cfg->gid);
	if (rc == 0 && cfg->engine == ENGINE_USER && vc->uds_path) {
		snprintf(seq, sizeof(seq), "%s%s", vc->uds_path, HYBRID_SEQPACKET_SUFFIX);
		rc = give(vc->uds_path, cfg->uid, cfg->gid);
		if (rc == 0)
			rc = give(seq, cfg->uid, cfg->gid);
	}
	return rc;
}

static int drop(const struct config *cfg)
{
	const struct passwd *pw;
	int rc = 0;

	for (unsigned int i = 0; rc == 0 && i < cfg->nvms; i++)
		rc = give_vm_files(cfg, i);
	if (rc == 0 && cfg->control_path)
		rc = give(cfg->control_path, cfg->uid, cfg->gid);
	if (rc < 0)
		return rc;
	/* supplementary groups come from the group database, by name */
	pw = getpwuid(cfg->uid);
	return sandbox_drop_privileges(cfg->uid, cfg->gid, pw ? pw->pw_name : NULL);
}

int sandbox_enter(const struct config *cfg)
{
	int rc = 0;

	if (cfg->drop_privileges)
		rc = drop(cfg);
	for (unsigned int i = 0; i < cfg->nvms; i++)
		allow_af_vsock |= cfg->vms[i].forward;
	if (rc == 0 && cfg->sandbox != SANDBOX_NONE)
		rc = sandbox_install_filter_vfio((enum sandbox_mode)cfg->sandbox,
						 cfg->engine == ENGINE_KERNEL, cfg->vfio != NULL);
	if (rc == 0 && cfg->sandbox == SANDBOX_NONE)
		log_warn("sandbox: none (--sandbox=none): every system call is allowed");
	if (rc == 0)
		sandbox_selftest();
	return rc;
}
