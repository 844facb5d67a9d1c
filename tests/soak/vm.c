// SPDX-License-Identifier: MIT
/*
 * A soak VM's thread (soak.h): its guest, the host ends of its
 * connections, and its workers in turn until the run stops; then it winds
 * down so that every connection still open ends cleanly and is checked.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "soak.h"

#define F_EVENT_IDX (1ull << TFE_F_EVENT_IDX)
#define F_INDIRECT (1ull << TFE_F_INDIRECT_DESC)
#define F_SEQPACKET (1ull << UH_VSOCK_F_SEQPACKET)

int soak_fail(struct soak_vm *v, const char *fmt, ...)
{
	va_list ap;

	if (!v->err[0]) {
		va_start(ap, fmt);
		vsnprintf(v->err, sizeof(v->err), fmt, ap);
		va_end(ap);
		fprintf(stderr, "soak: VM %u: %s\n", v->idx, v->err);
	}
	atomic_store(&v->s->failed, true);
	return -1;
}

/* VMs differ in what they negotiate, so that both ring flavours are soaked. */
int soak_guest_open(struct soak_vm *v)
{
	uint64_t features = F_SEQPACKET | (v->idx % 2 ? F_EVENT_IDX : F_INDIRECT);
	const uint32_t ports[] = { SOAK_GP_LONG, SOAK_GP_SHORT, SOAK_GP_SIB };
	int rc = uh_guest_open(&v->g, &v->s->h, v->idx, features, NULL);
	uint64_t offered;

	for (unsigned int i = 0; rc == 0 && i < 3; i++)
		rc = tfe_vsock_listen(&v->g.vs, ports[i]);
	/*
	 * A reply proves the daemon handled the whole set-up, rings started:
	 * until then it drops packets other VMs send here, as it should for
	 * a VM that is not running, and a sibling's connect would go unanswered.
	 */
	if (rc == 0)
		rc = tfe_fe_get_u64(&v->g.vm.fe, VU_REQ_GET_FEATURES, &offered);
	if (rc < 0)
		return soak_fail(v, "front end: %s", strerror(-rc));
	soak_seq_attach(v);
	return 0;
}

static int listeners(struct soak_vm *v)
{
	const char *uds = v->s->h.uds[v->idx];

	v->lfd_long = uh_host_listen(uds, SOAK_HP_LONG, SOCK_STREAM);
	v->lfd_short = uh_host_listen(uds, SOAK_HP_SHORT, SOCK_STREAM);
	v->lfd_seq = uh_host_listen(uds, SOAK_HP_SEQ, SOCK_SEQPACKET);
	if (v->lfd_long < 0 || v->lfd_short < 0 || v->lfd_seq < 0)
		return soak_fail(v, "host listeners: %s", strerror(errno));
	return 0;
}

/*
 * The front end goes away with everything open and comes back, like a
 * VMM restart: the epoch is odd meanwhile, so the other VMs count their
 * sibling streams with this one as cut.
 */
static int reconnect(struct soak_vm *v)
{
	if (v->idx == 0 && v->s->reconnect_lag_ms)
		poll(NULL, 0, (int)v->s->reconnect_lag_ms);
	atomic_fetch_add(&v->epoch, 1);
	soak_dx_cut(v, &v->dx[0]);
	soak_dx_cut(v, &v->dx[1]);
	soak_sib_cut(v);
	uh_guest_close(&v->g);
	if (soak_guest_open(v) < 0)
		return -1;
	atomic_fetch_add(&v->epoch, 1);
	v->n.reconnects++;
	return 0;
}

static int work(struct soak_vm *v, bool stopping)
{
	int p = 0, r;

	for (unsigned int i = 0; i < 2; i++) {
		r = soak_dx_step(v, &v->dx[i], stopping);
		if (r < 0)
			return r;
		p += r;
	}
	r = soak_sib_tx_step(v, stopping);
	if (r < 0)
		return r;
	p += r;
	r = soak_sib_rx_step(v);
	return r < 0 ? r : p + r;
}

static bool all_tx_done(const struct soak *s)
{
	for (unsigned int i = 0; i < s->nvms; i++) {
		if (!atomic_load(&s->vm[i].tx_done))
			return false;
	}
	return true;
}

/* Finish what is open: long streams end at what they sent, siblings finish. */
static void wind_down(struct soak_vm *v)
{
	soak_dx_wind_down(&v->dx[0]);
	soak_dx_wind_down(&v->dx[1]);
	while (!atomic_load(&v->s->failed) && (v->dx[0].open || v->dx[1].open || v->stx.c)) {
		if (work(v, true) < 0)
			break;
		soak_step(v, 2);
	}
	atomic_store(&v->tx_done, true);
	/* the previous VM's last stream may still be on its way here */
	while (!atomic_load(&v->s->failed) && (!all_tx_done(v->s) || v->srx.c)) {
		if (soak_sib_rx_step(v) < 0)
			break;
		soak_step(v, 2);
	}
}

void *soak_vm_thread(void *arg)
{
	struct soak_vm *v = arg;

	v->rnd = 0x9e3779b9u * (v->idx + 1);
	v->next_port = SOAK_PORT_FIRST + v->idx * 1000;
	if (listeners(v) < 0 || soak_guest_open(v) < 0) {
		atomic_store(&v->tx_done, true);
		return NULL;
	}
	atomic_fetch_add(&v->epoch, 1); /* up: main() started it odd */
	while (!atomic_load(&v->s->stop) && !atomic_load(&v->s->failed)) {
		if (atomic_exchange(&v->reconnect, false) && reconnect(v) < 0)
			break;
		if (work(v, false) < 0 || soak_short_turn(v) < 0)
			break;
		tfe_vsock_poll(&v->g.vs);
	}
	wind_down(v);
	uh_guest_close(&v->g);
	close(v->lfd_long);
	close(v->lfd_short);
	close(v->lfd_seq);
	return NULL;
}
