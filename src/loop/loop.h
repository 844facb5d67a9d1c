/* SPDX-License-Identifier: MIT */
/*
 * Event loop: epoll over file descriptors, one callback per watched fd.
 * Knows nothing of vhost-user or vsock.
 *
 * A watch is storage owned by the caller. A callback may add or delete any
 * watch, including its own and ones with events pending in the same batch:
 * loop_del() cancels pending events of the watch it removes, so no callback
 * runs on freed memory.
 */
#ifndef LOOP_LOOP_H
#define LOOP_LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*loop_cb)(void *ctx, uint32_t events);

struct loop_watch {
	int fd;         /* -1 when not registered */
	loop_cb cb;
	void *ctx;
};

#define LOOP_BATCH 64

struct loop {
	int epfd;
	bool stopping;
	uint32_t poll_us;  /* loop_set_poll() */
	/* events of the batch being dispatched, for loop_del() to cancel */
	struct loop_watch *pending[LOOP_BATCH];
	int npending;
};

/** loop_init() - Return: 0 or negative errno. */
int loop_init(struct loop *l);
void loop_fini(struct loop *l);

/**
 * loop_add() - watch @fd for @events (EPOLLIN etc.) and call @cb.
 * Return: 0 or negative errno.
 */
int loop_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_cb cb, void *ctx);

/** loop_mod() - change the events of a registered watch. */
int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events);

/** loop_del() - stop watching; safe on a watch that is not registered. */
void loop_del(struct loop *l, struct loop_watch *w);

/**
 * loop_forget() - stop watching a descriptor the caller closes right after
 * and that is the only one of its open file (no dup, no fork): the close
 * ends the registration, so no EPOLL_CTL_DEL is made. Pending events of
 * the batch are cancelled as by loop_del().
 */
void loop_forget(struct loop *l, struct loop_watch *w);

/**
 * loop_run() - dispatch events until loop_stop().
 * Return: 0 after loop_stop(), or a negative errno from epoll.
 */
int loop_run(struct loop *l);

/**
 * loop_set_poll() - after each batch of events, keep asking for more
 * without sleeping for up to @us microseconds (0: never, the default), then
 * sleep as usual. Spends CPU to save the wake-up of a sleeping thread when
 * events come close together; an idle loop still sleeps.
 */
void loop_set_poll(struct loop *l, uint32_t us);

/** loop_stop() - make loop_run() return after the current batch. */
void loop_stop(struct loop *l);

#endif
