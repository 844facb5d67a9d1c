/* SPDX-License-Identifier: MIT */
/*
 * The kernel engine over the VVU model, all in this process: the daemon
 * (daemon_main with the model's opener and the vhost double) runs in the
 * main thread, a tfe front end in a checker thread. Checks:
 *   - kicks: the front end's kick of ring i reaches the kick eventfd the
 *     double was given for ring i (an MSI-X vector eventfd of the device),
 *     with no daemon thread in between;
 *   - calls: a signal on the call eventfd the double was given reaches the
 *     front end's call eventfd (through a doorbell write);
 *   - lifecycle: the front end leaves (zero-length completion), the daemon
 *     releases the vhost device and resets the VVU device, and a second
 *     front end is served the same way.
 * The checker ends the daemon with SIGTERM; exit status 0 when all held.
 * The daemon reaches the double through vhd_locked_ops, so the checker can
 * look at it between vhd_lock() and vhd_unlock().
 *
 * argv[1]: a directory for the socket (default /tmp).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "tfe.h"
#include "vhost_double.h"
#include "vvu_model.h"

#define WAIT_MS 5000

static char sock_path[108];
static struct vvm *model;

/* The kick and call fds the double holds for rings 0 and 1. */
struct ring_fds {
	int kick[2], call[2];
};

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "test_vvu_kernel: line %d: %s failed\n", __LINE__, #cond); \
			return -1;                                                         \
		}                                                                          \
	} while (0)

static bool fired(int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	uint64_t v;

	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	return read(fd, &v, sizeof(v)) == sizeof(v);
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static bool find_running(struct ring_fds *out)
{
	bool found = false;

	vhd_lock();
	for (int fd = 1000; fd < 1000 + (int)VHD_MAX_DEVS && !found; fd++) {
		const struct vhd_dev *d = vhd_dev(fd);

		if (d && d->running && d->vq[0].kick >= 0 && d->vq[1].kick >= 0 &&
		    d->vq[0].call >= 0 && d->vq[1].call >= 0) {
			for (unsigned int i = 0; i < 2; i++) {
				out->kick[i] = d->vq[i].kick;
				out->call[i] = d->vq[i].call;
			}
			found = true;
		}
	}
	vhd_unlock();
	return found;
}

/* The double's device with both rings running: its ring fds, or false after WAIT_MS. */
static bool running_dev(struct ring_fds *out)
{
	for (int t = 0; t < WAIT_MS; t += 10) {
		if (find_running(out))
			return true;
		sleep_ms(10);
	}
	return false;
}

static bool no_vhost_open(void)
{
	for (int t = 0; t < WAIT_MS; t += 10) {
		unsigned int n;

		vhd_lock();
		n = vhd_open_fds();
		vhd_unlock();
		if (n == 0)
			return true;
		sleep_ms(10);
	}
	return false;
}

static int one_session(unsigned int n)
{
	struct tfe_vm vm;
	struct tfe_setup_opts o = { 0 };
	struct ring_fds d;
	uint64_t one = 1, features;
	struct vvm_stats before, after;

	CHECK(tfe_vm_open(&vm, sock_path, 16u << 20, true, WAIT_MS) == 0);
	CHECK(tfe_setup_qemu(&vm, &o) == 0);
	/*
	 * The sequence ends with requests that have no reply (QEMU sets the
	 * call fds once more after starting): a request with a reply is only
	 * answered once all of them are handled, so the double is final.
	 */
	CHECK(tfe_fe_get_u64(&vm.fe, VU_REQ_GET_FEATURES, &features) == 0);
	CHECK(running_dev(&d));
	/* kicks of the set-up itself may still be on their way: let them land first */
	sleep_ms(100);
	vvm_stats(model, &before);
	for (unsigned int i = 0; i < 2; i++) {
		/* kick: front end -> MSI-X vector 2+i -> the double's kick fd */
		fired(d.kick[i], 0);
		CHECK(write(vm.fe.kick[i], &one, 8) == 8);
		CHECK(fired(d.kick[i], WAIT_MS));
		/* call: the double's call fd -> doorbell i -> the front end's call fd */
		fired(vm.fe.call[i], 0);
		CHECK(write(d.call[i], &one, 8) == 8);
		CHECK(fired(vm.fe.call[i], WAIT_MS));
	}
	/* the bridge counts after it signalled: wait for both of ours */
	for (int t = 0; t < WAIT_MS; t += 10) {
		vvm_stats(model, &after);
		if (after.notifications - before.notifications >= 2)
			break;
		sleep_ms(10);
	}
	CHECK(after.notifications - before.notifications >= 2);
	CHECK(after.doorbells - before.doorbells >= 2);
	fprintf(stderr, "test_vvu_kernel: session %u: kicks and calls went through the device\n", n);
	tfe_vm_close(&vm);
	/* the front end left: the vhost device is released, the VVU device reset */
	CHECK(no_vhost_open());
	for (int t = 0; t < WAIT_MS; t += 10) {
		vvm_stats(model, &after);
		if (after.rx_disconnects >= n)
			break;
		sleep_ms(10);
	}
	CHECK(after.rx_disconnects == n);
	return 0;
}

static int final_checks(void)
{
	struct vvm_stats st;

	vvm_stats(model, &st);
	CHECK(st.dma_faults == 0 && st.ring_faults == 0);
	CHECK(st.resets >= 2);
	return 0;
}

static void *checker(void *arg)
{
	intptr_t rc = 0;

	(void)arg;
	for (unsigned int n = 1; n <= 2 && rc == 0; n++)
		rc = one_session(n);
	if (rc == 0)
		rc = final_checks();
	kill(getpid(), SIGTERM);
	return (void *)rc;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	char *dargv[] = { "vhost-user-vsock", "--vfio", "0000:00:05.0", "--cid", "3",
			  "--sandbox", "none", NULL };
	struct daemon_env env = { .vfio_open = vvm_vfio_open, .vhost = &vhd_locked_ops };
	struct vvm_config cfg = { 0 };
	struct vvb *b;
	pthread_t th;
	sigset_t set;
	void *res;
	int rc;

	snprintf(sock_path, sizeof(sock_path), "%s/vvu-kernel-%d.sock", dir, (int)getpid());
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	alarm(60);
	vhd_reset();
	if (vvm_new(&model, &cfg) < 0 || vvb_start(&b, model, sock_path, NULL) < 0)
		return 1;
	vvm_vfio_attach(model);
	if (pthread_create(&th, NULL, checker, NULL) != 0)
		return 1;
	rc = daemon_main((int)(sizeof(dargv) / sizeof(dargv[0])) - 1, dargv, &env);
	pthread_join(th, &res);
	vvm_vfio_attach(NULL);
	vvb_stop(b);
	vvm_free(model);
	fprintf(stderr, "test_vvu_kernel: daemon exit %d, checks %s\n", rc, res ? "failed" : "passed");
	return rc == 0 && res == NULL ? 0 : 1;
}
