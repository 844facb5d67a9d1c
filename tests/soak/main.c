// SPDX-License-Identifier: MIT
/*
 * vsock-soak: the soak test (soak.h). The main thread starts the daemon
 * with SOAK_VMS VMs and a control socket, runs one thread per VM, and
 * during the run asks a VM to reconnect its front end every
 * RECONNECT_EVERY_MS (in turn) and adds, uses and removes an extra VM
 * every EXTRA_EVERY_MS. At the end it prints the figures and checks:
 * no error; every connection closed (the daemon's stats say none is
 * open); the daemon's fds, memfd mappings and threads exactly as before
 * the first front end; its RSS within RSS_BOUND_KB of that start; the
 * daemon still alive and exiting 0 on SIGTERM (under ASan: no report,
 * which would end it or change its exit status).
 *
 * Duration: VUV_SOAK_SECONDS of load, default 120, or 60 when this
 * build (and so the daemon) is a sanitizer build. The RSS bound is not
 * enforced in sanitizer builds (ASan's quarantine and TSan's shadow
 * memory grow by design; see test_endurance.c). Under a wrapper
 * (VUV_DAEMON_WRAPPER: valgrind) it does not run (exit 77).
 *
 * argv[1]: the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/client.h"
#include "control/json.h"
#include "proc_watch.h"
#include "soak.h"
#include "util/sanitizer.h"

#define FIRST_CID 3u
#define EXTRA_CID 50u
#define RECONNECT_EVERY_MS 7000
#define EXTRA_EVERY_MS 5000
#define EXTRA_BYTES 65536u
#define RSS_BOUND_KB (16 * 1024)
#define TICK_MS 100
/*
 * The daemon's own waits for a guest's answer and a host client's CONNECT
 * line, stretched: a VM thread of this program on a loaded machine may
 * not run for seconds, which is not what the soak is about.
 */
#define SLOW_PEER_KEYS "connect-timeout-ms=30000,handshake-timeout-ms=30000"

struct extra {
	struct soak *s;
	char ctl[128];
	struct uh xh;            /* sock[0], uds[0], cid[0]: the extra VM, for uh_guest_open() */
	unsigned long cycles;
	uint64_t bytes;
};

/* Send @line to the control socket; the answer is parsed into @d (json_doc_free()). */
static int ask(const char *ctl, const char *line, struct json_doc *d, char **answer)
{
	int rc = control_request(ctl, line, answer, SOAK_TIMEOUT_MS);

	if (rc == 0)
		rc = json_parse(d, *answer, strlen(*answer), 1u << 20);
	if (rc == 0 && json_bool_at(d, json_get(d, 0, "ok")) != 1) {
		fprintf(stderr, "soak: control '%s' refused: %s\n", line, *answer);
		json_doc_free(d);
		rc = -EPROTO;
	}
	if (rc < 0) {
		free(*answer);
		*answer = NULL;
	}
	return rc;
}

static int ask_ok(const char *ctl, const char *line)
{
	struct json_doc d;
	char *answer = NULL;
	int rc = ask(ctl, line, &d, &answer);

	if (rc == 0)
		json_doc_free(&d);
	free(answer);
	return rc;
}

/* Data both ways on the extra VM; with @remove_first the VM goes while it is open. */
static int extra_traffic(struct extra *x, struct uh_guest *g, int lfd, bool remove_first)
{
	struct tfe_vsock_conn *c;
	char line[64];
	int fd, rc = tfe_vsock_connect(&g->vs, TFE_VSOCK_HOST_CID, SOAK_HP_LONG, 40000,
				       SOAK_TIMEOUT_MS, &c);

	if (rc < 0)
		return rc;
	fd = uh_accept(lfd, g, SOAK_TIMEOUT_MS);
	if (fd < 0)
		return fd;
	rc = uh_guest_to_host(g, c, fd, EXTRA_BYTES, (uint32_t)x->cycles, SOAK_TIMEOUT_MS);
	if (rc == 0)
		rc = uh_host_to_guest(g, c, fd, EXTRA_BYTES, (uint32_t)x->cycles + 1, SOAK_TIMEOUT_MS);
	if (rc == 0)
		x->bytes += 2 * EXTRA_BYTES;
	snprintf(line, sizeof(line), "vm remove %u", EXTRA_CID);
	if (rc == 0 && remove_first) {
		/* removed with a connection open: the daemon closes the host end */
		rc = ask_ok(x->ctl, line);
		if (rc == 0 && !uh_host_closed(fd, NULL, SOAK_TIMEOUT_MS))
			rc = -ETIMEDOUT;
	} else if (rc == 0) {
		rc = tfe_vsock_close(&g->vs, c, SOAK_TIMEOUT_MS);
	}
	close(fd);
	return rc;
}

/* vm add, a guest with traffic, vm remove (before or after the front end leaves). */
static int extra_cycle(struct extra *x)
{
	bool remove_first = x->cycles % 2;
	struct uh_guest g;
	char line[400];
	int lfd, rc;

	snprintf(line, sizeof(line), "vm add socket=%s,uds-path=%s,guest-cid=%u," SLOW_PEER_KEYS,
		 x->xh.sock[0], x->xh.uds[0], EXTRA_CID);
	rc = ask_ok(x->ctl, line);
	if (rc < 0)
		return rc;
	lfd = uh_host_listen(x->xh.uds[0], SOAK_HP_LONG, SOCK_STREAM);
	rc = lfd < 0 ? lfd : uh_guest_open(&g, &x->xh, 0, 1ull << TFE_F_EVENT_IDX, NULL);
	if (rc == 0) {
		rc = extra_traffic(x, &g, lfd, remove_first);
		uh_guest_close(&g);
	}
	if (lfd >= 0)
		close(lfd);
	snprintf(line, sizeof(line), "vm remove %u", EXTRA_CID);
	if (rc == 0 && !remove_first)
		rc = ask_ok(x->ctl, line);
	if (rc == 0)
		x->cycles++;
	return rc;
}

/* ---- resources ---- */

struct res {
	int fds, memfds, threads;
	long rss_kb;
};

static int res_read(pid_t pid, struct res *r)
{
	struct pw_snap s;
	int rc = pw_snap(pid, &s);

	r->fds = s.fds;
	r->memfds = s.memfds;
	r->rss_kb = s.rss_kb;
	r->threads = pw_thread_count(pid);
	return rc < 0 ? rc : r->threads < 0 ? r->threads : 0;
}

/* Fds, mappings and threads are back exactly (the daemon may still be letting go: wait). */
static int res_back(pid_t pid, const struct res *start, struct res *end)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;
	int rc;

	while ((rc = res_read(pid, end)) == 0 &&
	       (end->fds != start->fds || end->memfds != start->memfds ||
		end->threads != start->threads)) {
		if (tfe_remaining_ms(deadline) == 0) {
			pw_dump_fds(pid);
			return -ETIMEDOUT;
		}
		poll(NULL, 0, 10);
	}
	return rc;
}

/* The daemon's own count: no connection left open in any VM. */
static int stats_all_closed(const char *ctl)
{
	struct json_doc d;
	char *answer = NULL;
	int rc = ask(ctl, "stats", &d, &answer), vms;
	uint64_t open = 0;

	if (rc < 0)
		return rc;
	vms = json_get(&d, 0, "vms");
	for (uint32_t i = 0; vms >= 0 && rc == 0 && i < d.tok[vms].size; i++) {
		rc = json_u64_at(&d, json_get(&d, json_at(&d, vms, i), "connections_open"), &open);
		if (rc == 0 && open != 0) {
			fprintf(stderr, "soak: the daemon still counts %llu open connections: %s\n",
				(unsigned long long)open, answer);
			rc = -EBUSY;
		}
	}
	json_doc_free(&d);
	free(answer);
	return vms < 0 ? -EPROTO : rc;
}

/* ---- the run ---- */

static int wait_control(const char *ctl)
{
	int64_t deadline = tfe_now_ms() + SOAK_TIMEOUT_MS;

	while (ask_ok(ctl, "help") < 0) {
		if (tfe_remaining_ms(deadline) == 0)
			return -ETIMEDOUT;
		poll(NULL, 0, 10);
	}
	return 0;
}

static int start_daemon(struct soak *s, struct extra *x, char *cdir)
{
	struct uh_vm_spec specs[SOAK_VMS];
	const char *extra[] = { "--control", x->ctl, NULL };
	int rc;

	if (!mkdtemp(cdir))
		return -errno;
	snprintf(x->ctl, sizeof(x->ctl), "%s/ctl", cdir);
	for (unsigned int i = 0; i < s->nvms; i++)
		specs[i] = (struct uh_vm_spec){ .cid = FIRST_CID + i, .keys = SLOW_PEER_KEYS };
	rc = uh_start(&s->h, specs, s->nvms, false, extra);
	if (rc == 0)
		rc = wait_control(x->ctl);
	snprintf(x->xh.sock[0], sizeof(x->xh.sock[0]), "%s/x.sock", s->h.dir);
	snprintf(x->xh.uds[0], sizeof(x->xh.uds[0]), "%s/x.vsock", s->h.dir);
	x->xh.cid[0] = EXTRA_CID;
	x->xh.nvms = 1;
	return rc;
}

/* The main thread's part of the run: reconnects, extra VMs, the daemon watched. */
static int drive(struct soak *s, struct extra *x, unsigned long seconds, long *warm_rss)
{
	int64_t t0 = tfe_now_ms(), end = t0 + (int64_t)seconds * 1000;
	int64_t next_rc = t0 + RECONNECT_EVERY_MS, next_x = t0 + EXTRA_EVERY_MS / 2;
	unsigned int who = 0;
	bool warm = false;

	while (tfe_remaining_ms(end) > 0 && !atomic_load(&s->failed)) {
		if (!uh_alive(&s->h)) {
			fprintf(stderr, "soak: the daemon died\n");
			return -ECHILD;
		}
		if (tfe_now_ms() >= next_rc) {
			atomic_store(&s->vm[who++ % s->nvms].reconnect, true);
			next_rc += RECONNECT_EVERY_MS;
		}
		if (tfe_now_ms() >= next_x) {
			int rc = extra_cycle(x);

			if (rc < 0) {
				fprintf(stderr, "soak: extra VM cycle %lu: %s\n", x->cycles,
					strerror(-rc));
				return rc;
			}
			next_x += EXTRA_EVERY_MS;
		}
		/* warm: every VM had its front end, buffers and arenas in use for a while */
		if (!warm && tfe_now_ms() - t0 >= (int64_t)seconds * 250) {
			*warm_rss = pw_rss_kb(s->h.d.pid);
			warm = true;
		}
		poll(NULL, 0, TICK_MS);
	}
	return 0; /* a VM thread's error is reported with the others */
}

static void sum(const struct soak *s, struct soak_counts *t)
{
	memset(t, 0, sizeof(*t));
	for (unsigned int i = 0; i < s->nvms; i++) {
		const struct soak_counts *n = &s->vm[i].n;

		for (unsigned int k = 0; k < SOAK_NKINDS; k++) {
			t->conns[k] += n->conns[k];
			t->cut[k] += n->cut[k];
		}
		t->g2h += n->g2h;
		t->h2g += n->h2g;
		t->sib += n->sib;
		t->seq_msgs += n->seq_msgs;
		t->reconnects += n->reconnects;
	}
}

static double mib(uint64_t b)
{
	return (double)b / (1024.0 * 1024.0);
}

static void figures(const struct soak *s, const struct extra *x, double secs)
{
	struct soak_counts t;
	uint64_t all = 0, cut = 0;

	sum(s, &t);
	for (unsigned int k = 0; k < SOAK_NKINDS; k++) {
		all += t.conns[k];
		cut += t.cut[k];
	}
	printf("soak: %.0f s of load, %u VMs in one daemon (+ an extra VM added and removed %lu times)\n",
	       secs, s->nvms, x->cycles);
	printf("soak: connections closed cleanly, every byte checked: %llu (%.0f/s): "
	       "long streams guest-opened %llu, host-opened %llu; short guest-opened %llu, "
	       "host-opened %llu; SEQPACKET %llu (%llu messages); sibling %llu\n",
	       (unsigned long long)all, (double)all / secs, (unsigned long long)t.conns[SOAK_LONG_GUEST],
	       (unsigned long long)t.conns[SOAK_LONG_HOST], (unsigned long long)t.conns[SOAK_SHORT_GUEST],
	       (unsigned long long)t.conns[SOAK_SHORT_HOST], (unsigned long long)t.conns[SOAK_SEQPACKET],
	       (unsigned long long)t.seq_msgs, (unsigned long long)t.conns[SOAK_SIBLING]);
	printf("soak: bytes checked: guest->host %.1f MiB, host->guest %.1f MiB, VM->VM %.1f MiB, "
	       "extra VM %.1f MiB (%.1f MiB/s in all)\n",
	       mib(t.g2h), mib(t.h2g), mib(t.sib), mib(x->bytes),
	       mib(t.g2h + t.h2g + t.sib + x->bytes) / secs);
	printf("soak: front-end reconnects %llu, connections cut by them %llu (not counted above)\n",
	       (unsigned long long)t.reconnects, (unsigned long long)cut);
}

static int check_res(const struct soak *s, const struct res *start, long warm_rss)
{
	bool rss_enforced = !SANITIZER_BUILD;
	struct res end;
	int rc = res_back(s->h.d.pid, start, &end);

	printf("soak: daemon at start -> end (no front end connected): fds %d -> %d, memfd maps "
	       "%d -> %d, threads %d -> %d, RSS %ld -> %ld KiB (%ld KiB warm, at a quarter of "
	       "the run), bound: fds, maps and threads equal, RSS +%d KiB%s\n",
	       start->fds, end.fds, start->memfds, end.memfds, start->threads, end.threads,
	       start->rss_kb, end.rss_kb, warm_rss, RSS_BOUND_KB,
	       rss_enforced ? "" : " (not enforced: sanitizer build)");
	if (rc < 0) {
		fprintf(stderr, "soak: fds, maps or threads not back\n");
		return rc;
	}
	if (rss_enforced && end.rss_kb - start->rss_kb > RSS_BOUND_KB) {
		fprintf(stderr, "soak: RSS grew by %ld KiB\n", end.rss_kb - start->rss_kb);
		return -ENOMEM;
	}
	return 0;
}

/* The VM threads' errors, and the main thread's (@rc, already explained on stderr). */
static int report_errors(const struct soak *s, int rc)
{
	int n = rc < 0;

	for (unsigned int i = 0; i < s->nvms; i++) {
		if (s->vm[i].err[0]) {
			fprintf(stderr, "soak: error: VM %u: %s\n", i, s->vm[i].err);
			n++;
		}
	}
	printf("soak: errors %d\n", n);
	return n;
}

static int run(struct soak *s, struct extra *x, unsigned long seconds)
{
	pthread_t t[SOAK_VMS];
	struct res start;
	long warm_rss = -1;
	int64_t t0;
	int rc = res_read(s->h.d.pid, &start);

	/* odd: no front end yet (each thread makes it even once its guest runs) */
	for (unsigned int i = 0; i < s->nvms; i++)
		atomic_init(&s->vm[i].epoch, 1);
	for (unsigned int i = 0; rc == 0 && i < s->nvms; i++) {
		s->vm[i].s = s;
		s->vm[i].idx = i;
		rc = -pthread_create(&t[i], NULL, soak_vm_thread, &s->vm[i]);
		if (rc < 0)
			atomic_store(&s->failed, true);
		for (unsigned int j = 0; rc < 0 && j < i; j++)
			pthread_join(t[j], NULL);
	}
	if (rc < 0)
		return rc;
	t0 = tfe_now_ms();
	rc = drive(s, x, seconds, &warm_rss);
	if (rc < 0)
		atomic_store(&s->failed, true);
	atomic_store(&s->stop, true);
	for (unsigned int i = 0; i < s->nvms; i++)
		pthread_join(t[i], NULL);
	figures(s, x, (double)(tfe_now_ms() - t0) / 1000.0);
	if (report_errors(s, rc))
		return -EIO;
	rc = stats_all_closed(x->ctl);
	return rc < 0 ? rc : check_res(s, &start, warm_rss);
}

int main(int argc, char **argv)
{
	static struct soak s;
	static struct extra x;
	const char *w = getenv("VUV_DAEMON_WRAPPER");
	unsigned long seconds = pw_env_count("VUV_SOAK_SECONDS", SANITIZER_BUILD ? 60 : 120);
	char cdir[] = "/tmp/soakctl-XXXXXX";
	int rc;

	if (uh_args(argc, argv) < 0)
		return 2;
	if (w && *w) {
		printf("soak: not run under a wrapper (VUV_DAEMON_WRAPPER)\n");
		return 77;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* load, winding down, the checks: all bounded well inside this */
	uh_watchdog((unsigned int)seconds + 600);
	s.nvms = SOAK_VMS;
	s.reconnect_lag_ms = pw_env_count("VUV_SOAK_RECONNECT_LAG_MS", 0);
	x.s = &s;
	rc = start_daemon(&s, &x, cdir);
	if (rc == 0)
		rc = run(&s, &x, seconds);
	else
		fprintf(stderr, "soak: starting the daemon: %s\n", strerror(-rc));
	if (uh_stop(&s.h) < 0 && rc == 0)
		rc = -ECHILD;
	rmdir(cdir);
	printf("soak: %s\n", rc == 0 ? "PASS" : "FAIL");
	return rc == 0 ? 0 : 1;
}
