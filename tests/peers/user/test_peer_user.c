// SPDX-License-Identifier: MIT
/*
 * Tests of the userspace-engine real-peer programs that run without QEMU:
 * the shared exchanges of peer_io.c (over socketpairs, with a forked
 * hostile peer that corrupts, cuts, merges or stalls) and the host helper
 * host_peer (run as a child; this test plays the guest and the daemon over
 * plain Unix sockets). A verdict of the real-peer test is only worth as
 * much as these pieces' ability to say "FAIL".
 *
 *   test_peer_user HOST_PEER_PATH
 *
 * Limits: every child is killed by alarm() if it hangs; every wait in the
 * code under test has a deadline of a few seconds here.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "peer_io.h"
#include "tfe.h"

static const char *host_peer_path;

static int64_t soon(int ms)
{
	return tfe_now_ms() + ms;
}

/* Run @fn(fd) in a child on one end of a socketpair; the parent keeps the
 * other end. */
static pid_t fork_peer(int type, int *fd, void (*fn)(int fd))
{
	int sv[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		alarm(10);
		fn(sv[1]);
		_exit(0);
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

static void reap(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* ------------------------------------------------------------------ */
/* Pattern and CRC                                                      */
/* ------------------------------------------------------------------ */

static void test_pattern_is_cut_independent(void **state)
{
	static uint8_t whole[5000], parts[5000];

	(void)state;
	peer_pattern(42, 1000, whole, sizeof(whole));
	peer_pattern(42, 1000, parts, 3);
	peer_pattern(42, 1003, parts + 3, 1);
	peer_pattern(42, 1004, parts + 4, sizeof(parts) - 4);
	assert_memory_equal(whole, parts, sizeof(whole));
	peer_pattern(43, 1000, parts, sizeof(parts));
	assert_memory_not_equal(whole, parts, sizeof(whole));
	assert_true(peer_host_seed(42) != 42);
}

static void test_crc32_known_vector(void **state)
{
	(void)state;
	/* The CRC-32 check value of "123456789" (zlib, IEEE 802.3). */
	assert_int_equal(peer_crc32(0, "123456789", 9), 0xcbf43926u);
	assert_int_equal(peer_crc32(peer_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
	assert_int_equal(peer_crc32(0, "", 0), 0);
}

/* ------------------------------------------------------------------ */
/* peer_recv_line / peer_expect_eof                                    */
/* ------------------------------------------------------------------ */

static void test_recv_line(void **state)
{
	char buf[8];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "OK 7\nrest", 9), 9);
	assert_int_equal(peer_recv_line(sv[0], buf, sizeof(buf), soon(1000)), 4);
	assert_string_equal(buf, "OK 7");
	/* Nothing after the newline was consumed. */
	assert_int_equal(recv(sv[0], buf, 4, 0), 4);
	assert_memory_equal(buf, "rest", 4);
	assert_int_equal(write(sv[1], "12345678\n", 9), 9);
	assert_int_equal(peer_recv_line(sv[0], buf, sizeof(buf), soon(1000)), -EMSGSIZE);
	/* It stopped at the byte that did not fit: the newline is still there. */
	assert_int_equal(peer_recv_line(sv[0], buf, sizeof(buf), soon(1000)), 0);
	assert_int_equal(peer_recv_line(sv[0], buf, sizeof(buf), soon(50)), -ETIMEDOUT);
	assert_int_equal(write(sv[1], "part", 4), 4);
	close(sv[1]);
	assert_int_equal(peer_recv_line(sv[0], buf, sizeof(buf), soon(1000)), -EPIPE);
	assert_string_equal(buf, "part");
	close(sv[0]);
}

static void test_expect_eof(void **state)
{
	char why[128];
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(peer_expect_eof(sv[0], soon(50), why, sizeof(why)), -1);
	assert_non_null(strstr(why, "no end of stream"));
	assert_int_equal(write(sv[1], "x", 1), 1);
	assert_int_equal(peer_expect_eof(sv[0], soon(1000), why, sizeof(why)), -1);
	assert_non_null(strstr(why, "unexpected bytes"));
	close(sv[1]);
	assert_int_equal(peer_expect_eof(sv[0], soon(1000), why, sizeof(why)), 0);
	close(sv[0]);
}

/* ------------------------------------------------------------------ */
/* Stream exchange                                                      */
/* ------------------------------------------------------------------ */

#define SEED 0x1234abcdull
#define LEN ((1u << 20) + 7)

static enum peer_order stream_order;

static void good_stream_peer(int fd)
{
	struct peer_result r;
	char why[128];

	struct peer_stream st = { peer_host_seed(SEED), SEED, LEN, stream_order };

	/* The other end of a one-way-after-the-other exchange waits first. */
	if (stream_order != PEER_DUPLEX)
		st.order = stream_order == PEER_TX_FIRST ? PEER_RX_FIRST : PEER_TX_FIRST;
	_exit(peer_stream_exchange(fd, &st, soon(8000), &r, why, sizeof(why)) == 0 ? 0 : 1);
}

static void stream_round(enum peer_order order)
{
	struct peer_stream s = { SEED, peer_host_seed(SEED), LEN, order };
	struct peer_result r;
	char why[128] = "";
	uint8_t *all = malloc(LEN);
	pid_t pid;
	int fd, st;

	assert_non_null(all);
	stream_order = order;
	pid = fork_peer(SOCK_STREAM, &fd, good_stream_peer);
	assert_int_equal(peer_stream_exchange(fd, &s, soon(8000), &r, why, sizeof(why)), 0);
	assert_int_equal(r.tx, LEN);
	assert_int_equal(r.rx, LEN);
	peer_pattern(SEED, 0, all, LEN);
	assert_int_equal(r.tx_crc, peer_crc32(0, all, LEN));
	peer_pattern(peer_host_seed(SEED), 0, all, LEN);
	assert_int_equal(r.rx_crc, peer_crc32(0, all, LEN));
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	free(all);
}

static void test_stream_exchange_ok(void **state)
{
	(void)state;
	stream_round(PEER_DUPLEX);
	stream_round(PEER_TX_FIRST);
	stream_round(PEER_RX_FIRST);
}

/* What a broken device might do to the host's half of the stream. */
static enum { FLIP, SHORT, LONG, STALL } stream_fault;

static void bad_stream_peer(int fd)
{
	static uint8_t buf[LEN + 10];
	size_t len = stream_fault == SHORT ? LEN - 100 : stream_fault == LONG ? LEN + 10 : LEN;

	peer_pattern(peer_host_seed(SEED), 0, buf, len);
	if (stream_fault == FLIP)
		buf[70000] ^= 0x40;
	(void)peer_send_all(fd, buf, len, soon(8000));
	if (stream_fault != STALL)
		shutdown(fd, SHUT_WR);
	/* Drain what the parent sends so that it is never held back. */
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	pause();
}

static void expect_stream_failure(int fault, const char *words)
{
	struct peer_stream s = { SEED, peer_host_seed(SEED), LEN, PEER_DUPLEX };
	struct peer_result r;
	char why[160] = "";
	pid_t pid;
	int fd;

	stream_fault = fault;
	pid = fork_peer(SOCK_STREAM, &fd, bad_stream_peer);
	assert_int_equal(peer_stream_exchange(fd, &s, soon(1500), &r, why, sizeof(why)), -1);
	if (!strstr(why, words))
		fail_msg("expected '%s' in '%s'", words, why);
	close(fd);
	reap(pid);
}

static void test_stream_detects_faults(void **state)
{
	(void)state;
	expect_stream_failure(FLIP, "wrong byte at offset 70000");
	expect_stream_failure(SHORT, "end of stream after 1048483 of 1048583 bytes");
	expect_stream_failure(LONG, "more than the 1048583 sent");
	expect_stream_failure(STALL, "no end of stream after the last byte");
}

/* ------------------------------------------------------------------ */
/* Seqpacket exchange                                                   */
/* ------------------------------------------------------------------ */

static enum { SEQ_GOOD, SEQ_MERGE, SEQ_TRUNC, SEQ_CORRUPT } seq_fault;

static void seq_peer(int fd)
{
	static uint8_t buf[2 * PEER_SEQ_MAX];
	struct peer_result r = { 0 };
	char why[128];
	uint32_t l0 = peer_seq_len(PEER_SEQ_COUNT - 1), l1 = peer_seq_len(PEER_SEQ_COUNT - 2);

	if (peer_seq_recv(fd, SEED, false, soon(5000), &r, why, sizeof(why)) < 0)
		_exit(1);
	if (seq_fault == SEQ_GOOD)
		_exit(peer_seq_send(fd, SEED + 100, true, soon(5000), &r, why, sizeof(why)) ? 1 : 0);
	/* The first two reversed messages, merged / cut / altered. */
	peer_pattern(SEED + 100, 0, buf, l0);
	peer_pattern(SEED + 101, 0, buf + l0, l1);
	if (seq_fault == SEQ_CORRUPT)
		buf[5] ^= 1;
	send(fd, buf, seq_fault == SEQ_MERGE ? l0 + l1 : seq_fault == SEQ_TRUNC ? l0 - 1 : l0, 0);
	pause();
}

static void seq_round(int fault, const char *words)
{
	struct peer_result r = { 0 };
	char why[160] = "";
	pid_t pid;
	int fd, rc;

	seq_fault = fault;
	pid = fork_peer(SOCK_SEQPACKET, &fd, seq_peer);
	assert_int_equal(peer_seq_send(fd, SEED, false, soon(5000), &r, why, sizeof(why)), 0);
	assert_int_equal(r.tx, PEER_SEQ_COUNT);
	rc = peer_seq_recv(fd, SEED + 100, true, soon(1000), &r, why, sizeof(why));
	if (!words) {
		assert_int_equal(rc, 0);
		assert_int_equal(r.rx, PEER_SEQ_COUNT);
	} else if (rc != -1 || !strstr(why, words)) {
		fail_msg("expected failure '%s', got %d '%s'", words, rc, why);
	}
	close(fd);
	reap(pid);
}

static void test_seq_exchange(void **state)
{
	(void)state;
	seq_round(SEQ_GOOD, NULL);
	seq_round(SEQ_MERGE, "message 0 is 92768 bytes (truncated), expected 60000: boundary lost");
	seq_round(SEQ_TRUNC, "message 0 is 59999 bytes, expected 60000");
	seq_round(SEQ_CORRUPT, "message 0 (60000 bytes): wrong contents");
}

/* ------------------------------------------------------------------ */
/* host_peer, with this test as guest and daemon                        */
/* ------------------------------------------------------------------ */

struct hp {
	char dir[64], uds[96];
	pid_t pid;
	int ctrl;
};

static int unix_sock(const char *path, int type, bool listening)
{
	int fd = peer_unix(path, type, listening);

	assert_true(fd >= 0 || !listening);
	return fd;
}

static int hp_setup(void **state)
{
	static struct hp h;
	char ctrl[128];

	snprintf(h.dir, sizeof(h.dir), "/tmp/peer-user.XXXXXX");
	assert_non_null(mkdtemp(h.dir));
	snprintf(h.uds, sizeof(h.uds), "%s/vm.vsock", h.dir);
	snprintf(ctrl, sizeof(ctrl), "%s_%u", h.uds, PEER_CTRL_PORT);
	h.pid = fork();
	assert_true(h.pid >= 0);
	if (h.pid == 0) {
		execl(host_peer_path, host_peer_path, "--uds", h.uds, "--timeout", "20",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		h.ctrl = unix_sock(ctrl, SOCK_STREAM, false);
		if (h.ctrl >= 0)
			break;
		usleep(10000);
	}
	assert_true(h.ctrl >= 0);
	*state = &h;
	return 0;
}

static int hp_teardown(void **state)
{
	struct hp *h = *state;
	char cmd[128];

	close(h->ctrl);
	kill(h->pid, SIGKILL);
	waitpid(h->pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", h->dir);
	return system(cmd) == 0 ? 0 : -1;
}

#define hp_say(h, ...) assert_int_equal(peer_send_line((h)->ctrl, soon(2000), __VA_ARGS__), 0)

static void hp_expect(struct hp *h, const char *prefix)
{
	char line[PEER_LINE_MAX];

	assert_true(peer_recv_line(h->ctrl, line, sizeof(line), soon(5000)) >= 0);
	if (strncmp(line, prefix, strlen(prefix)) != 0)
		fail_msg("host_peer said '%s', expected '%s...'", line, prefix);
}

/* Ask host_peer to ACCEPT on @port and connect there as the daemon would. */
static int hp_accepted(struct hp *h, const char *kind, unsigned int port, uint64_t seed,
		       uint64_t len)
{
	char path[128];
	int fd;

	hp_say(h, "ACCEPT %s %u %" PRIu64 " %" PRIu64 " 5000", kind, port, seed, len);
	hp_expect(h, "READY");
	snprintf(path, sizeof(path), "%s_%u", h->uds, port);
	fd = unix_sock(path, strcmp(kind, "seqpacket") ? SOCK_STREAM : SOCK_SEQPACKET, false);
	assert_true(fd >= 0);
	return fd;
}

/* ACCEPT: connect where the host listens, run the guest's half. */
static void test_host_peer_accept(void **state)
{
	struct hp *h = *state;
	struct peer_result r = { 0 };
	char why[128];
	int fd;

	fd = hp_accepted(h, "stream", 5001, 77, 300000);
	assert_int_equal(peer_stream_exchange(fd, &(struct peer_stream){ 77, peer_host_seed(77),
								   300000, PEER_DUPLEX },
					      soon(5000), &r, why, sizeof(why)), 0);
	close(fd);
	hp_expect(h, "OK 300000 ");
	/* halfclose: we (the connecting end) send and shut down first. */
	fd = hp_accepted(h, "halfclose", 5004, 78, 200000);
	assert_int_equal(peer_stream_exchange(fd, &(struct peer_stream){ 78, peer_host_seed(78),
								   200000, PEER_TX_FIRST },
					      soon(5000), &r, why, sizeof(why)), 0);
	close(fd);
	hp_expect(h, "OK 200000 ");
	/* A guest that could not connect gives up; the host must not wait. */
	hp_say(h, "ACCEPT seqpacket 5003 1 0 5000");
	hp_expect(h, "READY");
	hp_say(h, "ABORT");
	hp_expect(h, "FAIL the guest gave up: ABORT");
	fd = hp_accepted(h, "seqpacket", 5003, 9, 0);
	r = (struct peer_result){ 0 };
	assert_int_equal(peer_seq_send(fd, 9, false, soon(5000), &r, why, sizeof(why)), 0);
	assert_int_equal(peer_seq_recv(fd, peer_host_seed(9), true, soon(5000), &r, why,
				       sizeof(why)), 0);
	close(fd);
	hp_expect(h, "OK 10 ");
	hp_say(h, "BYE");
	hp_expect(h, "BYE 3 1");
}

/* Play the daemon on <uds>: take the host's CONNECT line, answer @answer
 * (NULL: close at once), and return the socket. */
static int fake_daemon(int l, const char *answer, char *line, size_t size)
{
	int fd = accept(l, NULL, NULL);

	assert_true(fd >= 0);
	assert_true(peer_recv_line(fd, line, size, soon(3000)) >= 0);
	if (!answer) {
		close(fd);
		return -1;
	}
	assert_int_equal(peer_send_all(fd, answer, strlen(answer), soon(1000)), 0);
	return fd;
}

static void test_host_peer_dial(void **state)
{
	struct hp *h = *state;
	struct peer_result r;
	char line[64], why[128];
	int l = unix_sock(h->uds, SOCK_STREAM, true), fd;

	hp_say(h, "DIAL stream 6001 5 70000 5000");
	fd = fake_daemon(l, "OK 1073741824\n", line, sizeof(line));
	assert_string_equal(line, "CONNECT 6001");
	assert_int_equal(peer_stream_exchange(fd, &(struct peer_stream){ 5, peer_host_seed(5),
								   70000, PEER_DUPLEX },
					      soon(5000), &r, why, sizeof(why)), 0);
	close(fd);
	hp_expect(h, "OK 70000 ");

	/* Hostile or broken answers to CONNECT must fail the session. */
	hp_say(h, "DIAL stream 6001 5 10 2000");
	close(fake_daemon(l, "OK\n", line, sizeof(line)));
	hp_expect(h, "FAIL bad answer to CONNECT 6001: 'OK'");
	hp_say(h, "DIAL stream 6001 5 10 2000");
	close(fake_daemon(l, "OK 12x\n", line, sizeof(line)));
	hp_expect(h, "FAIL bad answer");
	hp_say(h, "DIAL stream 6001 5 10 2000");
	fake_daemon(l, NULL, line, sizeof(line));
	hp_expect(h, "FAIL no 'OK <port>' answer to CONNECT 6001: socket closed");

	/* absent: a close is right, an OK line is wrong. */
	hp_say(h, "DIAL absent 6999 0 0 3000");
	fake_daemon(l, NULL, line, sizeof(line));
	hp_expect(h, "OK 0 00000000 0 00000000 ");
	hp_say(h, "DIAL absent 6999 0 0 3000");
	fd = fake_daemon(l, "OK 6999\n", line, sizeof(line));
	hp_expect(h, "FAIL got 'OK 6999' for CONNECT to a port without listener");
	close(fd);

	/* garbage: the line really is malformed, and a close is right. */
	hp_say(h, "DIAL garbage 6999 0 0 3000");
	fake_daemon(l, NULL, line, sizeof(line));
	assert_string_equal(line, "CONNECT -6999");
	hp_expect(h, "OK 0 00000000 0 00000000 ");

	/* No "<uds>_seqpacket" listener: said plainly. */
	hp_say(h, "DIAL seqpacket 6003 1 0 2000");
	hp_expect(h, "FAIL cannot connect to ");
	hp_say(h, "DIAL nonsense 1 2 3 4");
	hp_expect(h, "FAIL bad command");
	hp_say(h, "BYE");
	hp_expect(h, "BYE 3 6");
	close(l);
}

/* Seqpacket dial: "<uds>_seqpacket", CONNECT and OK one message each. */
static int fake_seq_daemon(int l, const char *answer)
{
	char msg[64];
	int fd = accept(l, NULL, NULL);
	ssize_t n;

	assert_true(fd >= 0);
	assert_int_equal(peer_wait(fd, POLLIN, soon(3000)) > 0, 1);
	n = recv(fd, msg, sizeof(msg), 0);
	assert_int_equal(n, 13);
	assert_memory_equal(msg, "CONNECT 6003\n", 13);
	assert_int_equal(send(fd, answer, strlen(answer), 0), (ssize_t)strlen(answer));
	return fd;
}

static void test_host_peer_dial_seqpacket(void **state)
{
	struct hp *h = *state;
	struct peer_result r = { 0 };
	char path[128], why[128];
	int l, fd;

	snprintf(path, sizeof(path), "%s%s", h->uds, PEER_SEQ_SUFFIX);
	l = unix_sock(path, SOCK_SEQPACKET, true);
	hp_say(h, "DIAL seqpacket 6003 3 0 5000");
	fd = fake_seq_daemon(l, "OK 6003\n");
	assert_int_equal(peer_seq_send(fd, 3, false, soon(5000), &r, why, sizeof(why)), 0);
	assert_int_equal(peer_seq_recv(fd, peer_host_seed(3), true, soon(5000), &r, why,
				       sizeof(why)), 0);
	close(fd);
	hp_expect(h, "OK 10 ");
	hp_say(h, "DIAL seqpacket 6003 3 0 2000");
	fd = fake_seq_daemon(l, "OK 6003");
	hp_expect(h, "FAIL no 'OK <port>' answer to CONNECT 6003: no newline, got: OK 6003");
	close(fd);
	hp_say(h, "BYE");
	hp_expect(h, "BYE 1 1");
	close(l);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pattern_is_cut_independent),
		cmocka_unit_test(test_crc32_known_vector),
		cmocka_unit_test(test_recv_line),
		cmocka_unit_test(test_expect_eof),
		cmocka_unit_test(test_stream_exchange_ok),
		cmocka_unit_test(test_stream_detects_faults),
		cmocka_unit_test(test_seq_exchange),
		cmocka_unit_test_setup_teardown(test_host_peer_accept, hp_setup, hp_teardown),
		cmocka_unit_test_setup_teardown(test_host_peer_dial, hp_setup, hp_teardown),
		cmocka_unit_test_setup_teardown(test_host_peer_dial_seqpacket, hp_setup, hp_teardown),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: test_peer_user HOST_PEER_PATH\n");
		return 2;
	}
	host_peer_path = argv[1];
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
