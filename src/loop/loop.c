// SPDX-License-Identifier: MIT
/*
 * epoll-based event loop. Level-triggered, so a callback that leaves data
 * unread is simply called again: no wake-up is ever lost.
 */
#include "loop/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

int loop_init(struct loop *l)
{
	memset(l, 0, sizeof(*l));
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	return 0;
}

void loop_fini(struct loop *l)
{
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

int loop_add(struct loop *l, struct loop_watch *w, int fd, uint32_t events, loop_cb cb, void *ctx)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	w->fd = fd;
	w->cb = cb;
	w->ctx = ctx;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		w->fd = -1;
		return -errno;
	}
	return 0;
}

int loop_mod(struct loop *l, struct loop_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (w->fd < 0)
		return -EBADF;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0)
		return -errno;
	return 0;
}

static void cancel_pending(struct loop *l, struct loop_watch *w)
{
	w->fd = -1;
	for (int i = 0; i < l->npending; i++) {
		if (l->pending[i] == w)
			l->pending[i] = NULL;
	}
}

void loop_del(struct loop *l, struct loop_watch *w)
{
	if (w->fd < 0)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	cancel_pending(l, w);
}

void loop_forget(struct loop *l, struct loop_watch *w)
{
	if (w->fd >= 0)
		cancel_pending(l, w);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* epoll_wait(), polling without a timeout for l->poll_us first. */
static int loop_wait(struct loop *l, struct epoll_event *evs)
{
	if (l->poll_us) {
		int64_t end = mono_ns() + (int64_t)l->poll_us * 1000;

		do {
			int n = epoll_wait(l->epfd, evs, LOOP_BATCH, 0);

			if (n != 0)
				return n;
		} while (mono_ns() < end);
	}
	return epoll_wait(l->epfd, evs, LOOP_BATCH, -1);
}

void loop_set_poll(struct loop *l, uint32_t us)
{
	l->poll_us = us;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	l->stopping = false;
	while (!l->stopping) {
		int n = loop_wait(l, evs);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		l->npending = n;
		for (int i = 0; i < n; i++)
			l->pending[i] = evs[i].data.ptr;
		for (int i = 0; i < n; i++) {
			struct loop_watch *w = l->pending[i];

			if (w)
				w->cb(w->ctx, evs[i].events);
		}
		l->npending = 0;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stopping = true;
}
