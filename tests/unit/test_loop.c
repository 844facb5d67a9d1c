// SPDX-License-Identifier: MIT
/*
 * Event loop: add/mod/del, events delivered to the right callback, a watch
 * deleted (or deleted and re-added) by another callback of the same batch
 * never runs on the stale event, batches larger than LOOP_BATCH, and
 * loop_stop. Every test ends with a readable "stopper" eventfd in the same
 * batch so that loop_run returns even when the watch under test must not
 * fire; a regression shows as a wrong count, not a hang (meson's timeout
 * catches the hang case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop.h"

struct probe {
	struct loop *loop;
	struct loop_watch w;
	int fd;
	int calls;
	uint32_t events;
	/* what the callback does besides counting */
	struct probe *victim;   /* loop_del this one */
	int readd_fd;           /* then re-add the victim on this fd (if >= 0) */
	bool stop;              /* loop_stop */
	bool del_self;
	bool forget;            /* loop_forget the victim and close its fd instead */
	bool drain;             /* read the eventfd so it stops being readable */
	int kick_fd;            /* then make this eventfd readable (if >= 0) */
};

static void probe_cb(void *ctx, uint32_t events)
{
	struct probe *p = ctx;
	uint64_t v;

	p->calls++;
	p->events = events;
	if (p->drain)
		assert_int_equal(read(p->fd, &v, sizeof(v)), sizeof(v));
	if (p->kick_fd >= 0)
		assert_int_equal(eventfd_write(p->kick_fd, 1), 0);
	if (p->victim && p->forget) {
		loop_forget(p->loop, &p->victim->w);
		close(p->victim->fd);
	} else if (p->victim) {
		loop_del(p->loop, &p->victim->w);
		if (p->readd_fd >= 0)
			assert_int_equal(loop_add(p->loop, &p->victim->w, p->readd_fd, EPOLLIN,
						  probe_cb, p->victim), 0);
	}
	if (p->del_self)
		loop_del(p->loop, &p->w);
	if (p->stop)
		loop_stop(p->loop);
}

static void probe_init(struct probe *p, struct loop *l, bool ready)
{
	*p = (struct probe){ .loop = l, .readd_fd = -1, .kick_fd = -1, .w = { .fd = -1 } };
	p->fd = eventfd(ready ? 1 : 0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(p->fd >= 0);
}

static void probe_add(struct probe *p, uint32_t events)
{
	assert_int_equal(loop_add(p->loop, &p->w, p->fd, events, probe_cb, p), 0);
	assert_int_equal(p->w.fd, p->fd);
}

static void probe_fini(struct probe *p)
{
	loop_del(p->loop, &p->w);
	close(p->fd);
}

/*
 * Fixture: a loop and two ready eventfd probes, @p (not registered yet) and
 * @stopper (registered, stops the loop). Pair tests reuse both as peers.
 */
struct fixture {
	struct loop l;
	struct probe p, stopper;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(loop_init(&f->l), 0);
	probe_init(&f->p, &f->l, true);
	probe_init(&f->stopper, &f->l, true);
	f->stopper.stop = true;
	probe_add(&f->stopper, EPOLLIN);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	probe_fini(&f->p);
	probe_fini(&f->stopper);
	loop_fini(&f->l);
	free(f);
	return 0;
}

static void test_add_delivers_events(void **state)
{
	struct fixture *f = *state;
	struct probe idle;

	probe_init(&idle, &f->l, false);
	probe_add(&idle, EPOLLIN);
	probe_add(&f->p, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(f->p.calls, 1);
	assert_true(f->p.events & EPOLLIN);
	assert_int_equal(idle.calls, 0);

	/* level-triggered: still readable, so called again; loop_run restarts */
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(f->p.calls, 2);
	assert_int_equal(f->stopper.calls, 2);
	assert_int_equal(idle.calls, 0);
	probe_fini(&idle);
}

static void test_mod(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->p;

	probe_add(p, 0);  /* readable, but nothing asked for */
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 0);

	assert_int_equal(loop_mod(&f->l, &p->w, EPOLLIN), 0);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 1);
	assert_true(p->events & EPOLLIN);

	assert_int_equal(loop_mod(&f->l, &p->w, 0), 0);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 1);

	/* an eventfd below its maximum is always writable */
	assert_int_equal(loop_mod(&f->l, &p->w, EPOLLOUT), 0);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 2);
	assert_true(p->events & EPOLLOUT);
	assert_false(p->events & EPOLLIN);
}

static void test_del(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->p;

	probe_add(p, EPOLLIN);
	loop_del(&f->l, &p->w);
	assert_int_equal(p->w.fd, -1);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 0);
	/* a deleted watch: del again is harmless, mod refuses */
	loop_del(&f->l, &p->w);
	assert_int_equal(loop_mod(&f->l, &p->w, EPOLLIN), -EBADF);
	/* and it can be added again */
	probe_add(p, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 1);
}

/* Both ready in one batch, each deletes the other: exactly one may run. */
static void test_del_other_in_same_batch(void **state)
{
	struct fixture *f = *state;
	struct probe *a = &f->p, *b = &f->stopper;

	a->victim = b;
	b->victim = a;
	a->stop = true;
	probe_add(a, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(a->calls + b->calls, 1);
	/* the one that ran is still registered, the other is not */
	assert_int_equal(a->w.fd, a->calls ? a->fd : -1);
	assert_int_equal(b->w.fd, b->calls ? b->fd : -1);
}

/*
 * Delete a pending watch and re-add the same struct on an idle fd within
 * the batch: its stale event must not be delivered to the new
 * registration.
 */
static void test_del_readd_in_same_batch(void **state)
{
	struct fixture *f = *state;
	struct probe *a = &f->p, *b = &f->stopper;
	int idle = eventfd(0, EFD_CLOEXEC);

	assert_true(idle >= 0);
	a->victim = b;
	b->victim = a;
	a->readd_fd = b->readd_fd = idle;
	a->stop = true;
	probe_add(a, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(a->calls + b->calls, 1);
	loop_del(&f->l, a->calls ? &b->w : &a->w);
	close(idle);
}

static void test_del_self(void **state)
{
	struct fixture *f = *state;
	struct probe *p = &f->p;

	p->del_self = true;
	probe_add(p, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(p->calls, 1);  /* still readable, but gone */
	assert_int_equal(p->w.fd, -1);
	assert_int_equal(f->stopper.calls, 2);
}

/*
 * Both ready in one batch, each forgets and closes the other: exactly one
 * runs (the pending event is cancelled as by loop_del), and the closed one's
 * registration is gone with its file (nothing more arrives for it).
 */
static void test_forget_other_in_same_batch(void **state)
{
	struct fixture *f = *state;
	struct probe *a = &f->p, *b = &f->stopper;

	a->victim = b;
	b->victim = a;
	a->forget = b->forget = true;
	a->stop = true;
	probe_add(a, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(a->calls + b->calls, 1);
	assert_int_equal(a->w.fd, a->calls ? a->fd : -1);
	assert_int_equal(b->w.fd, b->calls ? b->fd : -1);
	/* the survivor is still watched and ready; the closed one never runs */
	a->victim = b->victim = NULL;
	a->stop = b->stop = true;
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(a->calls + b->calls, 2);
	assert_true(a->calls == 2 || b->calls == 2);
	/* teardown closes a fresh fd in place of the closed one */
	if (a->calls)
		b->fd = eventfd(0, EFD_CLOEXEC);
	else
		a->fd = eventfd(0, EFD_CLOEXEC);
}

/* More ready fds than one epoll_wait returns: all served, once each. */
#define NMANY (LOOP_BATCH * 2 + 5)

struct counter {
	struct loop *loop;
	int left;
};

static struct counter many_counter;

static void many_cb(void *ctx, uint32_t events)
{
	struct probe *p = ctx;

	probe_cb(p, events);
	if (--many_counter.left == 0)
		loop_stop(many_counter.loop);
}

static void test_more_than_one_batch(void **state)
{
	static struct probe ps[NMANY];
	struct loop l;

	(void)state;
	assert_int_equal(loop_init(&l), 0);
	many_counter = (struct counter){ .loop = &l, .left = NMANY };
	for (int i = 0; i < NMANY; i++) {
		probe_init(&ps[i], &l, true);
		ps[i].drain = true;
		assert_int_equal(loop_add(&l, &ps[i].w, ps[i].fd, EPOLLIN, many_cb, &ps[i]), 0);
	}
	assert_int_equal(loop_run(&l), 0);
	for (int i = 0; i < NMANY; i++) {
		assert_int_equal(ps[i].calls, 1);
		probe_fini(&ps[i]);
	}
	loop_fini(&l);
}

static void test_hangup_reported(void **state)
{
	struct loop l;
	struct probe p;
	int sp[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(loop_init(&l), 0);
	p = (struct probe){ .loop = &l, .fd = sp[0], .readd_fd = -1, .kick_fd = -1, .stop = true };
	assert_int_equal(loop_add(&l, &p.w, sp[0], EPOLLIN, probe_cb, &p), 0);
	close(sp[1]);
	assert_int_equal(loop_run(&l), 0);
	assert_int_equal(p.calls, 1);
	assert_true(p.events & EPOLLHUP);
	probe_fini(&p);
	loop_fini(&l);
}

static void test_add_errors(void **state)
{
	struct loop l;
	struct loop_watch w = { .fd = -1 }, w2 = { .fd = -1 };
	int efd = eventfd(0, EFD_CLOEXEC);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int closed;

	(void)state;
	assert_true(efd >= 0 && devnull >= 0);
	assert_int_equal(loop_init(&l), 0);
	/* a number no fd uses: taken after loop_init so epfd cannot reuse it */
	closed = dup(efd);
	close(closed);
	assert_int_equal(loop_add(&l, &w, -1, EPOLLIN, probe_cb, NULL), -EBADF);
	assert_int_equal(w.fd, -1);
	assert_int_equal(loop_add(&l, &w, closed, EPOLLIN, probe_cb, NULL), -EBADF);
	assert_int_equal(w.fd, -1);
	assert_int_equal(loop_add(&l, &w, devnull, EPOLLIN, probe_cb, NULL), -EPERM);
	assert_int_equal(w.fd, -1);
	/* the same fd twice */
	assert_int_equal(loop_add(&l, &w, efd, EPOLLIN, probe_cb, NULL), 0);
	assert_int_equal(loop_add(&l, &w2, efd, EPOLLIN, probe_cb, NULL), -EEXIST);
	assert_int_equal(w2.fd, -1);
	assert_int_equal(loop_mod(&l, &w2, EPOLLIN), -EBADF);
	loop_del(&l, &w2);  /* unregistered: no effect on w */
	assert_int_equal(w.fd, efd);
	assert_int_equal(loop_mod(&l, &w, EPOLLOUT), 0);
	loop_del(&l, &w);
	loop_fini(&l);
	close(efd);
	close(devnull);
}

/* Polling: an event that comes while the loop polls is dispatched. */
static void test_poll_dispatches(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(eventfd_read(f->stopper.fd, &(eventfd_t){ 0 }), 0);
	loop_set_poll(&f->l, 1000000);
	f->p.drain = true;
	f->p.kick_fd = f->stopper.fd;
	probe_add(&f->p, EPOLLIN);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(f->p.calls, 1);
	assert_int_equal(f->stopper.calls, 1);
}

static void *kick_later(void *arg)
{
	const int *fd = arg;

	usleep(50000);
	eventfd_write(*fd, 1);
	return NULL;
}

/* After the polling window the loop sleeps, and still wakes for the next event. */
static void test_poll_then_sleeps(void **state)
{
	struct fixture *f = *state;
	pthread_t t;

	assert_int_equal(eventfd_read(f->stopper.fd, &(eventfd_t){ 0 }), 0);
	loop_set_poll(&f->l, 100);
	assert_int_equal(pthread_create(&t, NULL, kick_later, &f->stopper.fd), 0);
	assert_int_equal(loop_run(&f->l), 0);
	assert_int_equal(f->stopper.calls, 1);
	pthread_join(t, NULL);
}

static void test_fini_closes(void **state)
{
	struct loop l;
	int epfd;

	(void)state;
	assert_int_equal(loop_init(&l), 0);
	epfd = l.epfd;
	assert_true(fcntl(epfd, F_GETFD) & FD_CLOEXEC);
	loop_fini(&l);
	assert_int_equal(l.epfd, -1);
	assert_int_equal(fcntl(epfd, F_GETFD), -1);
	loop_fini(&l);  /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_delivers_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mod, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_other_in_same_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_readd_in_same_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_del_self, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_other_in_same_batch, setup, teardown),
		cmocka_unit_test(test_more_than_one_batch),
		cmocka_unit_test(test_hangup_reported),
		cmocka_unit_test(test_add_errors),
		cmocka_unit_test(test_fini_closes),
		cmocka_unit_test_setup_teardown(test_poll_dispatches, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_then_sleeps, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
