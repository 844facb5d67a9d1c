/* SPDX-License-Identifier: MIT */
/*
 * vsock-bench: the userspace engine's data path measured against the
 * Unix-socket limit, in one run.
 *
 * Three parties, as in production: the real daemon binary (a child
 * process); the guest, played by this process through the test front end
 * library (tfe: vhost-user front end + guest virtio-vsock driver over a
 * memfd); host programs, played by children of this process re-executed in
 * "host role" (bench_host_main()) on the hybrid Unix sockets. Every figure
 * is measured twice in the same repetition: through the daemon ("ours") and
 * through a plain Unix socket pair between this process and the same host
 * role ("baseline"), where this process makes the same user-space copies
 * the tfe driver makes (one per byte sent, two per byte received).
 *
 * Honesty rules: every byte received is compared with the pattern it must
 * be (bench_pat_*), byte counts are matched end to end, nothing is
 * estimated; repetitions alternate ours/baseline and report medians.
 *
 * Limits: at most BENCH_MAX_CONNS connections per traffic run (the tfe
 * driver's table); the idle-connection test opens its connections with
 * raw packets instead. Not thread-safe except where stated: the two-VM run
 * drives one guest per thread, each with its own tfe state.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tfe.h"
#include "user_harness.h"

#define BENCH_MAX_CONNS 16u
#define BENCH_MAX_REPEATS 31u
#define BENCH_HOST_PORT 5000u      /* guest → host port of every traffic run */
#define BENCH_GUEST_PORT 6000u     /* guest port host-initiated connections ask for */
#define BENCH_IO_MAX (256u * 1024) /* largest read; the pattern slack covers it */
#define BENCH_TIMEOUT_MS 20000     /* any single wait */
#define BENCH_BACKLOG 4096         /* listeners: nothing is refused for lack of room */
#define BENCH_MAX_SCALE 1024u      /* --scale: the daemon's CLI_MAX_VMS */

/* ---- pattern: byte @off of stream @conn ------------------------------------ */

/** bench_pat_init() - build the pattern table. Return: 0 or -ENOMEM. */
int bench_pat_init(void);

/** bench_pat_at() - Return: the pattern of stream @conn from @off, valid for BENCH_IO_MAX bytes. */
const uint8_t *bench_pat_at(unsigned int conn, uint64_t off);

/** bench_pat_ok() - Return: whether @buf holds bytes [@off, @off + @n) of stream @conn. */
bool bench_pat_ok(unsigned int conn, uint64_t off, const void *buf, size_t n);

/* ---- clocks and /proc ----------------------------------------------------------- */

/** bench_now_ns() - Return: CLOCK_MONOTONIC in ns (one clock for all processes). */
int64_t bench_now_ns(void);

/** bench_cpu_ns() - Return: CPU time of the calling process (all threads), ns. */
int64_t bench_cpu_ns(void);

struct bench_proc {
	long ticks;        /* utime + stime of every thread (/proc/PID/stat) */
	uint64_t rss_kb;   /* VmRSS */
	uint64_t hwm_kb;   /* VmHWM: peak RSS */
	uint64_t anon_kb;  /* RssAnon: the part that is the process's own heap and stacks */
	unsigned int threads;
};

/** bench_proc_read() - @pid's CPU ticks and memory. Return: 0 or negative errno. */
int bench_proc_read(pid_t pid, struct bench_proc *p);

/**
 * bench_thread_ticks() - CPU ticks of each thread of @pid.
 * Return: threads written to @ticks (at most @max), or negative errno.
 */
int bench_thread_ticks(pid_t pid, long *ticks, unsigned int max);

/** bench_switches() - Return: times this process has slept (voluntary context switches). */
long bench_switches(void);

/**
 * bench_pin() - pin this process, and so every process it starts later
 * (daemon, host roles; affinity is inherited), to the CPUs of @list
 * ("0", "0,1", "0-3"). Return: 0 or negative errno (-EINVAL: a bad list).
 */
int bench_pin(const char *list);

/** bench_clk_tck() - Return: ticks per second of /proc CPU times. */
long bench_clk_tck(void);

/* ---- host role (a re-executed child) --------------------------------------------- */

enum bench_role { ROLE_NONE = 0, ROLE_SINK, ROLE_SOURCE, ROLE_ECHO };

enum bench_job_kind {
	JOB_STREAMS = 1,  /* each fd per its role until every one is done */
	JOB_ACCEPT,       /* accept and close on lfd until told to stop */
	JOB_CONNECT,      /* connect to path, optionally CONNECT/OK, close; for duration */
	JOB_HOLD,         /* accept count connections on lfd, hold them until told */
};

struct bench_job {
	uint32_t kind;
	uint32_t nfds;
	int fds[BENCH_MAX_CONNS];         /* inherited by the child */
	uint8_t role[BENCH_MAX_CONNS];
	uint32_t stream[BENCH_MAX_CONNS]; /* pattern stream each fd carries */
	uint32_t wsize;                   /* SOURCE: bytes per write */
	int64_t duration_ns;              /* SOURCE: writing time after go; CONNECT: loop time */
	int lfd;                          /* ACCEPT, HOLD: listening socket; else -1 */
	uint32_t count;                   /* HOLD: connections to accept */
	uint32_t port;                    /* CONNECT: the CONNECT <port> line */
	bool hybrid;                      /* CONNECT: speak CONNECT/OK */
	char path[108];                   /* CONNECT: where to connect */
};

struct bench_result {
	int32_t rc;                        /* 0, or the negative errno that ended the job */
	uint64_t bytes[BENCH_MAX_CONNS];   /* per fd: checked bytes read / bytes written */
	uint64_t count;                    /* connections made or accepted, messages echoed */
	int64_t t_last_ns;                 /* last byte read (SINK) */
	int64_t cpu_ns;                    /* the child's own CPU time */
	uint64_t rss_start_kb, rss_kb, hwm_kb;
};

struct bench_host {
	pid_t pid;
	int ctl;                           /* SOCK_SEQPACKET to the child; -1 when done */
};

/** bench_host_start() - fork, exec ourselves in host role, hand it @job. Return: 0 or -errno. */
int bench_host_start(struct bench_host *h, const struct bench_job *job);

/**
 * bench_host_go() - start a timed phase (SOURCE, CONNECT) or end one
 * (ACCEPT). Return: 0 or -errno.
 */
int bench_host_go(struct bench_host *h);

/**
 * bench_host_result() - wait up to @timeout_ms for the job's result.
 * Return: 0, -ETIMEDOUT, -EPROTO for a short message, or the job's rc.
 */
int bench_host_result(struct bench_host *h, struct bench_result *r, int timeout_ms);

/**
 * bench_host_end() - close the control socket and reap the child (killed
 * if it lingers). Return: nothing.
 */
void bench_host_end(struct bench_host *h);

/** bench_host_main() - the host role, after exec. Return: the process exit status. */
int bench_host_main(int ctl);

/* ---- the system under test ------------------------------------------------------ */

struct bench_opts {
	const char *daemon;
	const char *json;
	unsigned int repeats;
	double secs;            /* length of each timed run */
	double idle_secs;       /* idle CPU windows */
	unsigned int idle_conns;
	bool smoke;
	bool verbose;           /* each run's details on stderr */
	const char *only;       /* run only figures whose id starts with this */
	const char *vm_keys;    /* appended to every --vm spec ("" for none) */
	const char *cpus;       /* --cpus LIST every process is pinned to, or NULL */
	unsigned int scale;     /* --scale N: only the scale run, N VMs (0: the usual runs) */
	const char *const *daemon_args;
};

struct bench_sut {
	struct uh h;
	struct uh_guest g[2];
	unsigned int nvms;
	uint32_t next_port;     /* fresh guest source ports */
	char base_path[108];    /* baseline listening socket */
	bool failed;            /* a run failed: show the daemon's log at the end */
};

/**
 * bench_sut_start() - the daemon with @nvms (1 or 2) VMs, CIDs 3 and 4, each
 * --vm spec ending with opts.vm_keys and @keys (may be NULL), and a guest on
 * each. Return: 0 or negative errno.
 */
int bench_sut_start(struct bench_sut *s, const struct bench_opts *o, unsigned int nvms,
		    const char *keys);

/**
 * bench_guest_open() - a guest on VM @i of @h, set up as every traffic run's
 * (EVENT_IDX, Linux's buffer sizes). Return: 0 or negative errno.
 */
int bench_guest_open(struct uh_guest *g, const struct uh *h, unsigned int i);

/**
 * bench_watch_pid() - the watchdog kills @pid instead of @old (0: a free
 * slot; two daemons at most). Return: nothing.
 */
void bench_watch_pid(pid_t old, pid_t pid);

/** bench_watchdog() - end the run after @seconds, killing any daemon first. Return: nothing. */
void bench_watchdog(unsigned int seconds);

/** bench_sut_stop() - guests closed, daemon stopped. Return: 0 or negative errno. */
int bench_sut_stop(struct bench_sut *s);

/**
 * bench_listen_at() - listen on @path (replacing a stale file).
 * Return: a non-blocking fd, or -errno.
 */
int bench_listen_at(const char *path, int backlog);

/** bench_connect_to() - a blocking connection to @path. Return: fd or -errno. */
int bench_connect_to(const char *path);

/* The guest-role end of n connections: tfe connections, or baseline sockets. */
struct bench_ends {
	bool base;
	unsigned int n;
	struct uh_guest *g;
	struct tfe_vsock_conn *c[BENCH_MAX_CONNS];
	int fd[BENCH_MAX_CONNS];        /* baseline: our socket */
	int host_fd[BENCH_MAX_CONNS];   /* for the host role; closed once it has them */
	uint8_t *stage;                 /* baseline: where the tfe-equivalent copies go */
};

/**
 * bench_ends_open() - @n connected pairs: guest → host port BENCH_HOST_PORT
 * of VM @vm through the daemon, or socketpairs for the baseline.
 * Return: 0 or negative errno.
 */
int bench_ends_open(struct bench_ends *e, struct bench_sut *s, unsigned int vm, bool base,
		    unsigned int n);

/**
 * bench_ends_handed() - close our copies of the host fds (the host role
 * has them). Return: nothing.
 */
void bench_ends_handed(struct bench_ends *e);

/** bench_ends_close() - close every connection in an orderly way. Return: 0 or -errno. */
int bench_ends_close(struct bench_ends *e);

/** bench_ends_send() - Return: bytes sent, -EAGAIN, or negative errno. */
ssize_t bench_ends_send(struct bench_ends *e, unsigned int i, const void *buf, size_t n);

/** bench_ends_recv() - Return: bytes received, 0 at end of stream, -EAGAIN, or -errno. */
ssize_t bench_ends_recv(struct bench_ends *e, unsigned int i, void *buf, size_t n);

/** bench_ends_shut() - no more sends on connection @i. Return: 0 or -errno. */
int bench_ends_shut(struct bench_ends *e, unsigned int i);

/**
 * bench_ends_poll() - ours: run the guest driver once (nothing for the
 * baseline). Return: nothing.
 */
void bench_ends_poll(struct bench_ends *e);

/**
 * bench_ends_wait() - sleep up to @ms for progress (@out: wanting to send).
 * Return: 0 or negative errno.
 */
int bench_ends_wait(struct bench_ends *e, bool out, int ms);

/* ---- figures ------------------------------------------------------------------------- */

enum bench_goal { GOAL_NONE = 0, GOAL_RATIO_MIN, GOAL_RATIO_MAX, GOAL_OURS_MAX, GOAL_OURS_MIN };

struct bench_fig {
	const char *id;
	const char *label;
	const char *unit;
	enum bench_goal goal;
	double target;
	const char *note;           /* what the baseline is, when it is not obvious */
	double ours[BENCH_MAX_REPEATS];
	double base[BENCH_MAX_REPEATS];
	unsigned int n_ours, n_base;
};

/** bench_fig_find() - Return: the figure called @id (created if new), or NULL when full. */
struct bench_fig *bench_fig_find(const char *id);

/** bench_fig_add() - record a repetition's values; a negative @base means none. Return: nothing. */
void bench_fig_add(const char *id, double ours, double base);

/** bench_median() - Return: the median of @n values (0 for none). */
double bench_median(const double *v, unsigned int n);

/** bench_quantile() - Return: the @q quantile of @n values (sorted in place). */
double bench_quantile(double *v, unsigned int n, double q);

/**
 * bench_report() - print the table and write the JSON file (if any).
 * Return: 0, or negative errno when the JSON could not be written.
 */
int bench_report(const struct bench_opts *o, double load_start);

/*
 * Scenarios: each runs repetition @rep of its figures through the daemon of
 * @s and through the baseline, back to back (order alternating with @rep),
 * and records them with bench_fig_add(). Figures not wanted (--only) are
 * skipped.
 */

/** bench_run_streams() - the eight stream figures and CPU per GB. Return: 0 or -errno. */
int bench_run_streams(struct bench_sut *s, const struct bench_opts *o, unsigned int rep);

/** bench_run_rtt() - 1-byte round trips, median and p99. Return: 0 or -errno. */
int bench_run_rtt(struct bench_sut *s, const struct bench_opts *o, unsigned int rep);

/** bench_run_connect() - connection set-up rates, both directions. Return: 0 or -errno. */
int bench_run_connect(struct bench_sut *s, const struct bench_opts *o, unsigned int rep);

/**
 * bench_stream_one() - one 64 KiB-write stream through VM 0 of @s, guest
 * to host when @g2h, for opts.secs. Return: 0 with @gbps set, or -errno.
 */
int bench_stream_one(struct bench_sut *s, const struct bench_opts *o, bool g2h, double *gbps);

/**
 * bench_run_scale() - opts.scale VMs in one daemon against a one-VM daemon
 * (bench/scale.c), every repetition. Return: 0 or -errno.
 */
int bench_run_scale(const struct bench_opts *o);

/** bench_run_two_vms() - both VMs of @s streaming at once. Return: 0 or -errno. */
int bench_run_two_vms(struct bench_sut *s, const struct bench_opts *o, unsigned int rep);

/** bench_run_fairness() - 16 connections with and without a flooder. Return: 0 or -errno. */
int bench_run_fairness(struct bench_sut *s, const struct bench_opts *o, unsigned int rep);

/**
 * bench_run_idle() - idle CPU and memory per idle connection, on a daemon
 * of its own. Return: 0 or -errno.
 */
int bench_run_idle(const struct bench_opts *o, unsigned int rep);

/** bench_record_peak() - record the daemon's peak RSS so far. Return: nothing. */
void bench_record_peak(struct bench_sut *s);

/** bench_wanted() - Return: whether figures starting with @prefix are to be run. */
bool bench_wanted(const struct bench_opts *o, const char *prefix);

/** bench_loadavg() - Return: the 1-minute load average, or -1. */
double bench_loadavg(void);

#endif
