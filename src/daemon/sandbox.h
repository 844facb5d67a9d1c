/* SPDX-License-Identifier: MIT */
/*
 * Least privilege, entered once start-up is over (every socket open, the
 * vhost device probed) and while the daemon is still a single thread:
 *
 * 1. --user/--group: the socket files the daemon made are handed to that
 *    user and group (so it can remove them on exit, and a VMM running as
 *    that user can connect), then supplementary groups, gid and uid are
 *    changed for good (setgroups/initgroups, setresgid, setresuid), and the
 *    daemon checks that root cannot be regained.
 * 2. --sandbox: a seccomp allow-list (libseccomp) of the system calls the
 *    daemon makes from then on, with no_new_privs. Anything else kills the
 *    process (SANDBOX_SECCOMP, the default: SIGSYS, the audit log names the
 *    call) or fails with EPERM (SANDBOX_SECCOMP_ERRNO, for finding a
 *    missing call without losing the daemon); SANDBOX_NONE installs
 *    nothing. The list, and why each call is on it, is in sandbox.c; some
 *    calls are allowed only with safe arguments (mmap/mprotect without
 *    PROT_EXEC, clone only for threads, socket only AF_UNIX, ioctl only the
 *    vhost requests, openat only the vhost device's flags).
 *
 * The kernel engine opens the vhost device again for every front end (a
 * fresh device is what releases the guest CID and the kernel's rings), so
 * its filter keeps openat (with exactly the flags that open uses) and the
 * vhost ioctls; the userspace engine's filter has neither, and answers
 * openat with EACCES instead of killing (glibc opens /sys by itself when
 * it adds a malloc arena, and copes). Builds with a
 * sanitizer also allow what its run-time needs at exit (the leak checker
 * attaches to the threads with ptrace and reads /proc).
 *
 * Threads inherit the filter at creation; the VM threads are started after
 * it (user_engine_run()), so no thread runs unfiltered and no TSYNC is
 * needed, which keeps the prctl() fallback usable where seccomp(2) itself
 * is filtered (a systemd unit's SystemCallFilter=).
 */
#ifndef DAEMON_SANDBOX_H
#define DAEMON_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>

struct config;

enum sandbox_mode {
	SANDBOX_SECCOMP = 0,   /* default: a forbidden call kills the process */
	SANDBOX_SECCOMP_ERRNO, /* a forbidden call fails with EPERM */
	SANDBOX_NONE,
};

/* Set to 1 in the environment: after sandboxing, try a forbidden call (tests). */
#define SANDBOX_SELFTEST_ENV "VHOST_USER_VSOCK_SANDBOX_SELFTEST"

/**
 * sandbox_parse_mode() - "seccomp", "seccomp-errno" or "none".
 * Return: 0 or -EINVAL.
 */
int sandbox_parse_mode(const char *text, enum sandbox_mode *mode);

/** sandbox_mode_name() - Return: the --sandbox spelling of @mode. */
const char *sandbox_mode_name(enum sandbox_mode mode);

/**
 * sandbox_lookup_user() - a user name or number.
 * @text: "name" or a decimal uid
 * @uid: receives the uid
 * @gid: receives the user's primary group, when it has a passwd entry
 * @has_gid: whether @gid was set
 *
 * Return: 0 or -ENOENT (no such user name, or not a number).
 */
int sandbox_lookup_user(const char *text, uint32_t *uid, uint32_t *gid, bool *has_gid);

/**
 * sandbox_lookup_group() - a group name or number.
 * Return: 0 or -ENOENT.
 */
int sandbox_lookup_group(const char *text, uint32_t *gid);

/**
 * sandbox_enter() - drop privileges (when @cfg asks) and install the
 * system call filter (per cfg->sandbox). Call once, from the only thread.
 * @cfg: the configuration (--user, --group, --sandbox, the engine, and
 *       the socket files to hand over)
 *
 * Return: 0, or negative errno (logged, naming the option and what to do).
 */
int sandbox_enter(const struct config *cfg);

/**
 * sandbox_drop_privileges() - become @uid/@gid for good: supplementary
 * groups from the group database for @user (or just @gid when @user is
 * NULL), then gid, then uid; checks that uid 0 cannot be regained.
 * @uid: the user
 * @gid: its group
 * @user: the user's name, or NULL
 *
 * Return: 0 or negative errno (logged).
 */
int sandbox_drop_privileges(uint32_t uid, uint32_t gid, const char *user);

/**
 * sandbox_install_filter() - the seccomp allow-list.
 * @mode: SANDBOX_SECCOMP or SANDBOX_SECCOMP_ERRNO
 * @kernel_engine: also allow opening and driving the vhost device
 *
 * Return: 0 or negative errno (logged).
 */
int sandbox_install_filter(enum sandbox_mode mode, bool kernel_engine);

/**
 * sandbox_install_filter_vfio() - the same, and with @vfio what the VVU
 * transport needs to reset and set up its device again after start-up
 * (VFIO ioctls, register access with pread/pwrite).
 */
int sandbox_install_filter_vfio(enum sandbox_mode mode, bool kernel_engine, bool vfio);

/**
 * sandbox_selftest() - when SANDBOX_SELFTEST_ENV is 1, try execve(2) (refused
 * except in sanitizer builds, whose run-time needs it) and an AF_INET socket
 * (refused in every build), logging each result; the default filter kills
 * the process at the first. For tests that must see the filter work.
 * Return: nothing.
 */
void sandbox_selftest(void);

#endif
