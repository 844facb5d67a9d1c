#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Operability tests: the daemon as a service manager and a VMM start it.

Each sub-command is one meson test:
  capabilities DAEMON            --print-capabilities is QEMU's JSON, other options ignored
  descriptor FILE DAEMON BINARY  the vhost-user back-end descriptor has the fields
                                 QEMU's vhost-user.json requires, and the right binary
  refusals DAEMON HAVE_SYSTEMD   --fd / LISTEN_FDS misuse is refused with a clear message
  activation DAEMON HAVE_SYSTEMD socket activation: LISTEN_FDS/LISTEN_PID, READY=1 and
                                 STATUS= on NOTIFY_SOCKET, journal "<N>" prefixes, a
                                 readiness probe does not stop the next VMM being served
  fd DAEMON                      --fd with a listening socket, and with one connected VMM
                                 (served, then the daemon exits 0 by itself)
  install MESON BUILDDIR FILE..  `meson install --destdir` places every listed file
  units ANALYZE SERVICE SOCKET DAEMON BINARY
                                 systemd-analyze verify accepts the units

Tests that need the daemon to start run against whichever engine can start on
this host (the userspace engine needs no device; the kernel engine needs
/dev/vhost-vsock) and exit 77 (skip) with the reason when none can.

The daemon is started by fork + exec here, not by subprocess, because socket
activation needs LISTEN_PID to be the pid of the exec'd process itself, which
only the child knows before exec.
"""
import fcntl
import json
import os
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
TIMEOUT = 10.0

# QEMU docs/interop/vhost-user.json, VHostUserBackendType (as of QEMU 9).
BACKEND_TYPES = {'9p', 'balloon', 'block', 'caif', 'console', 'crypto', 'gpu', 'input', 'net',
                 'rng', 'rpmsg', 'rproc-serial', 'scsi', 'vsock', 'fs'}

# Start-up failures that mean "this engine cannot run here", not a bug.
ENGINE_UNAVAILABLE = ('is not available in this version', '/dev/vhost-vsock: ')

VHOST_USER_GET_FEATURES = 1
VHOST_USER_VERSION = 0x1
VHOST_USER_REPLY = 0x4


class Skip(Exception):
    pass


def fail(msg):
    raise AssertionError(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


# ---- the daemon as a child process ----------------------------------------

class Daemon:
    """A daemon child: fds placed at 3.., stderr to a file, optional activation env."""

    def __init__(self, argv, tmp, fds=(), env=None, activate=False, journal=False):
        self.log_path = os.path.join(tmp, 'daemon-%d.log' % time.monotonic_ns())
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        full_env = dict(os.environ)
        for k in ('LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES', 'NOTIFY_SOCKET',
                  'JOURNAL_STREAM'):
            full_env.pop(k, None)
        if activate:
            full_env['LISTEN_FDS'] = str(len(fds))
        full_env.update(env or {})
        if journal:
            st = os.fstat(log_fd)
            full_env['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino)
        # out of the way of 3.. before the child moves them there
        high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 100) for f in fds]
        self.pid = os.fork()
        if self.pid == 0:
            self._exec(argv, full_env, high, log_fd, activate)
        for f in high:
            os.close(f)
        os.close(log_fd)
        self.status = None

    @staticmethod
    def _exec(argv, env, high, log_fd, activate):
        try:
            os.dup2(log_fd, 2)
            for i, f in enumerate(high):
                os.dup2(f, 3 + i)  # inheritable: survives exec
            if activate:
                env['LISTEN_PID'] = str(os.getpid())
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)

    def poll(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def wait(self, timeout=TIMEOUT):
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                self.kill()
                fail('daemon did not exit within %.0f s' % timeout)
            time.sleep(0.02)
        return self.status

    def kill(self):
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.status = -9

    def terminate(self):
        os.kill(self.pid, signal.SIGTERM)
        return self.wait()

    def log(self):
        with open(self.log_path, errors='replace') as f:
            return f.read()


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, **kw)


# ---- the service manager's side -------------------------------------------

class Notify:
    """A NOTIFY_SOCKET the test owns; collects the daemon's datagrams."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, 'notify-%d' % time.monotonic_ns())
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []

    def wait_for(self, text, daemon, timeout=TIMEOUT, exit_ok=False):
        """Wait for a datagram containing @text (taken off the list).

        If the daemon exits first: None when @exit_ok, else a failure.
        """
        end = time.monotonic() + timeout
        while True:
            hits = [m for m in self.seen if text in m]
            if hits:
                self.seen.remove(hits[0])
                return True
            left = end - time.monotonic()
            if left <= 0:
                fail('no %r from the daemon within %.0f s; got %r\n%s'
                     % (text, timeout, self.seen, daemon.log()))
            ready, _, _ = select.select([self.sock], [], [], min(left, 0.05))
            if ready:
                self.seen.append(self.sock.recv(4096).decode())
            elif daemon.poll() is not None:
                check(exit_ok, 'daemon exited %s while waiting for %r:\n%s'
                      % (daemon.status, text, daemon.log()))
                return None


def engine_candidates(tmp):
    """Engine options to try, each with the socket left to the caller.

    VUV_ENGINE_ARGS, when set, is tried first (e.g. "--cid 5 --vhost-socket PATH").
    """
    if os.environ.get('VUV_ENGINE_ARGS'):
        yield shlex.split(os.environ['VUV_ENGINE_ARGS'])
    yield ['--uds-path', os.path.join(tmp, 'hybrid.vsock')]
    if os.access('/dev/vhost-vsock', os.R_OK | os.W_OK):
        # a CID unlikely to be taken by a real guest on a test machine
        yield ['--cid', str(100000 + os.getpid() % 100000)]


def start_served(daemon_path, tmp, sock_args, fds, activate=False, journal=False):
    """Start the daemon with the first engine that can start; Return: (Daemon, Notify)."""
    notify = Notify(tmp)
    reasons = []
    for engine in engine_candidates(tmp):
        d = Daemon([daemon_path] + sock_args + engine, tmp, fds=fds,
                   env={'NOTIFY_SOCKET': notify.path}, activate=activate, journal=journal)
        if notify.wait_for('READY=1', d, exit_ok=True):
            return d, notify
        d.wait()
        log = d.log()
        if d.status == 1 and any(p in log for p in ENGINE_UNAVAILABLE):
            reasons.append('%s: %s' % (' '.join(engine), log.strip().splitlines()[-1]))
            continue
        fail('daemon exited %s before READY=1:\n%s' % (d.status, log))
    raise Skip('no engine can start on this host:\n  ' + '\n  '.join(reasons))


def get_features(conn):
    """One vhost-user request/reply: proves the daemon serves this connection."""
    conn.settimeout(TIMEOUT)
    conn.sendall(struct.pack('<III', VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0))
    hdr = b''
    while len(hdr) < 12:
        chunk = conn.recv(12 - len(hdr))
        check(chunk, 'connection closed instead of a GET_FEATURES reply')
        hdr += chunk
    req, flags, size = struct.unpack('<III', hdr)
    check(req == VHOST_USER_GET_FEATURES and flags & VHOST_USER_REPLY and size == 8,
          'bad GET_FEATURES reply header %r' % ((req, flags, size),))
    payload = conn.recv(8)
    check(len(payload) == 8, 'short GET_FEATURES payload')
    return struct.unpack('<Q', payload)[0]


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    return s


def serve_listening(path, notify, daemon):
    """A VMM is served and leaves; a readiness probe (connect, close) does not stop the
    next VMM being served. Status lines are awaited in order, so none is stale."""
    check(notify.wait_for('waiting for a front end', daemon), 'no waiting status at start')
    with connect(path) as vmm:
        get_features(vmm)
        notify.wait_for('serving front end (session 1)', daemon)
    notify.wait_for('waiting for a front end', daemon)
    probe_session = 2
    connect(path).close()
    notify.wait_for('serving front end (session %d)' % probe_session, daemon)
    notify.wait_for('waiting for a front end', daemon)
    with connect(path) as vmm:
        features = get_features(vmm)
        check(features & (1 << 32), 'VIRTIO_F_VERSION_1 not offered: 0x%x' % features)
        notify.wait_for('serving front end (session %d)' % (probe_session + 1), daemon)
    notify.wait_for('waiting for a front end', daemon)


# ---- the tests -------------------------------------------------------------

def parse_capabilities(text):
    caps = json.loads(text)
    check(isinstance(caps, dict), 'capabilities are not a JSON object')
    check(set(caps) == {'type', 'features'}, 'unexpected members: %r' % sorted(caps))
    check(caps['type'] == 'vsock', 'type is %r, QEMU calls it "vsock"' % caps['type'])
    check(isinstance(caps['features'], list)
          and all(isinstance(f, str) for f in caps['features']), 'features is not a list of strings')
    return caps


def t_capabilities(daemon):
    for extra in ([], ['--bogus'], ['--fd', '1', '--vm', 'junk'], ['--socket', '/nonexistent/x']):
        with tempfile.TemporaryDirectory() as cwd:
            r = run([daemon] + extra + ['--print-capabilities'], cwd=cwd)
            check(r.returncode == 0, '%r: exit %d: %s' % (extra, r.returncode, r.stderr))
            check(r.stderr == '', '%r: wrote to stderr: %s' % (extra, r.stderr))
            check(os.listdir(cwd) == [], 'created files: %r' % os.listdir(cwd))
            parse_capabilities(r.stdout)
    check(not os.path.exists('/nonexistent/x'), 'a socket was created')


def t_descriptor(path, daemon, binary):
    with open(path) as f:
        desc = json.load(f)
    check(isinstance(desc, dict), 'descriptor is not a JSON object')
    required = {'description': str, 'type': str, 'binary': str}
    for key, typ in required.items():
        check(isinstance(desc.get(key), typ) and desc[key], 'missing or empty %r' % key)
    extra = set(desc) - set(required) - {'tags'}
    check(not extra, 'members QEMU does not define: %r' % sorted(extra))
    if 'tags' in desc:
        check(isinstance(desc['tags'], list) and all(isinstance(t, str) for t in desc['tags']),
              'tags is not a list of strings')
    check(desc['type'] in BACKEND_TYPES, 'type %r is not a VHostUserBackendType' % desc['type'])
    check(os.path.isabs(desc['binary']), 'binary is not an absolute path')
    check(desc['binary'] == binary, 'binary %r, installed as %r' % (desc['binary'], binary))
    caps = parse_capabilities(run([daemon, '--print-capabilities']).stdout)
    check(caps['type'] == desc['type'], 'descriptor and --print-capabilities disagree on type')


def expect_exit(d, status, text):
    got = d.wait()
    log = d.log()
    check(got == status, 'exit %s, expected %d:\n%s' % (got, status, log))
    check(text in log, '%r not in the message:\n%s' % (text, log))


def t_refusals(daemon, have_systemd):
    kern = ['--cid', '3']
    with tempfile.TemporaryDirectory() as tmp:
        l1, l2 = listener(os.path.join(tmp, 'a')), listener(os.path.join(tmp, 'b'))
        rd, wr = os.pipe()
        cases = [
            (['--fd', '0'] + kern, (), False, 2, '3 or above'),
            (['--fd', '3'] + kern, (rd,), False, 2, 'is not a socket'),
            (['--fd', '3'] + kern, (), False, 2, 'is not open'),
            (['--fd', '3', '--socket-path', tmp + '/s'] + kern, (l1,), False, 2,
             'exclude each other'),
            (['--fd', '3', '--vm', 'socket=%s/s,uds-path=%s/u' % (tmp, tmp)], (l1,), False, 2,
             '--fd serves a single device'),
            (['--socket-path', tmp + '/s'] + kern, (l1,), True, 2, 'drop --socket-path'),
            (['--vm', 'socket=%s/s,uds-path=%s/u' % (tmp, tmp)], (l1,), True, 2,
             'serves a single device'),
        ]
        if have_systemd:
            cases.append((kern, (rd,), True, 1, 'is not a socket'))
            cases.append((kern, (l1, l2), True, 1, 'single ListenStream='))
        else:
            cases.append((kern, (l1,), True, 1, 'no libsystemd'))
        for args, fds, activate, status, text in cases:
            env = {'LISTEN_FDS': str(len(fds))} if activate else {}
            expect_exit(Daemon([daemon] + args, tmp, fds=fds, env=env, activate=activate),
                        status, text)
        # LISTEN_PID of another process: the variables are not ours
        d = Daemon([daemon] + kern, tmp, fds=(l1,), env={'LISTEN_FDS': '1', 'LISTEN_PID': '1'})
        expect_exit(d, 2, 'give one of --socket-path')
        os.close(rd)
        os.close(wr)
        check(not os.path.exists(tmp + '/s') and not os.path.exists(tmp + '/u'),
              'a refused start created a socket: %r' % os.listdir(tmp))


def t_activation(daemon, have_systemd):
    if not have_systemd:
        raise Skip('built without libsystemd: socket activation is refused by design '
                   '(the refusals test checks the message)')
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'vm.sock')
        lsock = listener(path)
        d, notify = start_served(daemon, tmp, [], (lsock.fileno(),), activate=True,
                                 journal=True)
        lsock.close()  # only the daemon's copy is left
        try:
            serve_listening(path, notify, d)
        finally:
            status = d.terminate()
        log = d.log()
        check(status == 0, 'exit %s after SIGTERM:\n%s' % (status, log))
        lines = log.splitlines()
        check(lines and all(ln[:3] in ('<3>', '<4>', '<6>', '<7>') for ln in lines),
              'journal lines without a <N> priority:\n' + log)
        check(os.path.exists(path), 'the daemon removed the socket file systemd owns')


def t_fd(daemon):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'vm.sock')
        lsock = listener(path)
        d, notify = start_served(daemon, tmp, ['--fd', '3'], (lsock.fileno(),))
        lsock.close()
        try:
            serve_listening(path, notify, d)
        finally:
            status = d.terminate()
        check(status == 0, 'exit %s after SIGTERM:\n%s' % (status, d.log()))

        # one connected VMM: served, and when it leaves the daemon exits 0 by itself
        vmm, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        d, notify = start_served(daemon, tmp, ['--fd', '3'], (theirs.fileno(),))
        theirs.close()
        try:
            get_features(vmm)
            get_features(vmm)
            notify.wait_for('serving front end (session 1)', d)
            vmm.close()
            status = d.wait(5)
        finally:
            d.kill()
        check(status == 0, 'exit %s after the front end left:\n%s' % (status, d.log()))


def t_install(meson, builddir, expected):
    with tempfile.TemporaryDirectory() as dest:
        r = run([meson, 'install', '-C', builddir, '--no-rebuild', '--destdir', dest])
        check(r.returncode == 0, 'meson install failed:\n%s%s' % (r.stdout, r.stderr))
        found = set()
        for root, _, files in os.walk(dest):
            for name in files:
                found.add('/' + os.path.relpath(os.path.join(root, name), dest))
        missing = sorted(set(expected) - found)
        check(not missing, 'not installed: %r\ninstalled: %r' % (missing, sorted(found)))
        for extra in sorted(found - set(expected)):
            print('also installed:', extra)
        binary = next(p for p in expected if p.endswith('/bin/vhost-user-vsock'))
        check(os.access(dest + binary, os.X_OK), 'installed binary is not executable')
        for p in expected:
            if p.endswith('.json'):
                with open(dest + p) as f:
                    check(json.load(f)['binary'] == binary, 'descriptor names another binary')
            if p.endswith('.service'):
                with open(dest + p) as f:
                    check('ExecStart=%s ' % binary in f.read(), 'unit runs another binary')


def t_units(analyze, service, socket_unit, daemon, binary):
    """systemd-analyze verify: every directive known, the ExecStart binary runnable."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(service) as f:
            text = f.read()
        check('ExecStart=%s ' % binary in text, 'the service runs another binary')
        with open(os.path.join(tmp, 'vhost-user-vsock@.service'), 'w') as f:
            f.write(text.replace('ExecStart=%s ' % binary, 'ExecStart=%s ' % daemon))
        with open(socket_unit) as src, open(os.path.join(tmp, 'vhost-user-vsock@.socket'), 'w') as f:
            f.write(src.read())
        units = []
        for kind in ('service', 'socket'):
            inst = os.path.join(tmp, 'vhost-user-vsock@vm1.' + kind)
            os.symlink('vhost-user-vsock@.' + kind, inst)
            units.append(inst)
        r = run([analyze, 'verify', '--man=no'] + units)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0 and 'System has not been booted with systemd' in out:
            raise Skip('systemd-analyze cannot run here: ' + out)
        ours = [ln for ln in out.splitlines() if 'vhost-user-vsock' in ln]
        check(r.returncode == 0 and not ours, 'systemd-analyze verify:\n' + out)


def main(argv):
    cmd = argv[1]
    # paths from meson may be relative to the build directory; tests change directory
    args = [os.path.abspath(a) if os.path.exists(a) else a for a in argv[2:]]
    tests = {
        'capabilities': lambda: t_capabilities(args[0]),
        'descriptor': lambda: t_descriptor(args[0], args[1], args[2]),
        'refusals': lambda: t_refusals(args[0], args[1] == '1'),
        'activation': lambda: t_activation(args[0], args[1] == '1'),
        'fd': lambda: t_fd(args[0]),
        'install': lambda: t_install(args[0], args[1], args[2:]),
        'units': lambda: t_units(*args),
    }
    try:
        tests[cmd]()
    except Skip as e:
        print('SKIP:', e)
        return SKIP
    print('ok:', cmd)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
