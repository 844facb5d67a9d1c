/* SPDX-License-Identifier: MIT */
/*
 * SANITIZER_BUILD: 1 when this translation unit is built for a sanitizer's
 * run-time (AddressSanitizer, ThreadSanitizer, UndefinedBehaviorSanitizer),
 * else 0. The run-times make system calls and keep memory of their own:
 * the seccomp allow-list must let them, and tests that measure the
 * daemon's RSS or forbid exec/fork/open cannot hold under them.
 * gcc says so with __SANITIZE_*__ macros, clang with __has_feature().
 */
#ifndef UTIL_SANITIZER_H
#define UTIL_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
	__has_feature(undefined_behavior_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif
#ifndef SANITIZER_BUILD
#define SANITIZER_BUILD 0
#endif

#endif
