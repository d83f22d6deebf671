"""A Unix-socket relay between one attachd and libvirtd, that a test can
hold, cut or take down, for the libvirt integration tests of attachd
(tests/libvirt/test_attachd.py).

attachd is pointed at it with --libvirt-uri (Relay.uri:
qemu+unix:///system?socket=PATH); the relay forwards every byte to
libvirtd's own socket, in both directions, until the test says otherwise:

- hold():    nothing more is forwarded either way; what arrives is kept.
             A call attachd makes meanwhile has left attachd but has not
             reached libvirtd: the hypervisor has not acted. Keep holds
             short: attachd's driver declares a silent connection dead after
             about 9 s (keepalive 3 s x (2 + 1)).
- release(): what was kept is forwarded, in order, and forwarding goes on.
- cut():     every connection is closed; what was kept is thrown away (the
             calls in flight never reach libvirtd). New connections work.
- down():    cut(), and new connections are closed as soon as they are
             accepted: for attachd, libvirtd is gone. up() ends that.

Only this attachd is affected: other test sessions, virsh and the other
tests talk to libvirtd directly. That is what lets the crash-window tests
run without owning (stopping or freezing) the shared libvirtd.

The relay also keeps a log of the calls attachd made (libvirt RPC: each
message is a 4-byte big-endian length, then program, version, procedure,
type, serial and status words, then the XDR payload), with the time each
call left attachd and the time its reply came back, so that a test can see
which calls were in flight at once and on which domain (a call naming a
domain carries its 16-byte UUID in the payload).
"""
import os
import socket
import struct
import threading
import time
import uuid

LIBVIRT_SOCK = "/var/run/libvirt/libvirt-sock"
REMOTE_PROGRAM = 0x20008086
CALL, REPLY = 0, 1


class Call:
    """One RPC call attachd made: procedure, serial, payload, and when it
    left attachd (sent) and its reply arrived back (replied, None until)."""

    def __init__(self, proc, serial, payload, sent):
        self.proc, self.serial, self.payload, self.sent = proc, serial, payload, sent
        self.replied = None

    def names(self, domain_uuid):
        return uuid.UUID(domain_uuid).bytes in self.payload

    def __repr__(self):
        return f"Call(proc={self.proc}, serial={self.serial}, sent={self.sent:.3f}, " \
               f"replied={self.replied})"


class _Framer:
    """Split a byte stream into libvirt RPC messages."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack(">I", self.buf[:4])
            if n < 28 or n > (64 << 20):
                self.buf = b""          # not RPC (cannot happen): stop parsing
                return out
            if len(self.buf) < n:
                break
            msg, self.buf = self.buf[:n], self.buf[n:]
            prog, _vers, proc, typ, serial, _status = struct.unpack(">IIiiII", msg[4:28])
            out.append((prog, proc, typ, serial, msg[28:]))
        return out


class _Conn:
    def __init__(self, client, upstream):
        self.client, self.upstream = client, upstream
        self.dead = False

    def kill(self):
        self.dead = True
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Relay:
    def __init__(self, path, target=LIBVIRT_SOCK):
        self.path = path
        self.target = target
        self.cond = threading.Condition()
        self.mode = "pass"          # pass | hold | down
        self.conns = []
        self.accepted = 0
        self.held_bytes = 0         # from attachd, kept while held
        self.calls = []             # Call, in the order they left attachd
        self._by_serial = {}
        self._closed = False
        self.sock = None

    @property
    def uri(self):
        return f"qemu+unix:///system?socket={self.path}"

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()
        return self

    def close(self):
        with self.cond:
            self._closed = True
            self.mode = "pass"
            conns = list(self.conns)
            self.cond.notify_all()
        for c in conns:
            c.kill()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- what the test does ---------------------------------------------------
    def hold(self):
        with self.cond:
            self.mode = "hold"
            self.held_bytes = 0

    def release(self):
        with self.cond:
            self.mode = "pass"
            self.cond.notify_all()

    def cut(self):
        with self.cond:
            conns, self.conns = self.conns, []
            for c in conns:
                c.dead = True
            self.cond.notify_all()
        for c in conns:
            c.kill()

    def down(self):
        with self.cond:
            self.mode = "down"
        self.cut()

    def up(self):
        with self.cond:
            self.mode = "pass"
            self.cond.notify_all()

    def open_connections(self):
        with self.cond:
            return sum(1 for c in self.conns if not c.dead)

    def wait_held(self, timeout):
        """Wait until attachd has sent something while held; True if so."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.held_bytes == 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def calls_on(self, domain_uuid, marker=None):
        """The calls naming DOMAIN_UUID (and containing MARKER, bytes)."""
        with self.cond:
            return [c for c in self.calls
                    if c.names(domain_uuid) and (marker is None or marker in c.payload)]

    # -- the relay --------------------------------------------------------------
    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.cond:
                if self._closed:
                    client.close()
                    return
                if self.mode == "down":
                    client.close()
                    continue
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.target)
            except OSError:
                upstream.close()
                client.close()
                continue
            conn = _Conn(client, upstream)
            with self.cond:
                self.conns.append(conn)
                self.accepted += 1
            pumps = [threading.Thread(target=self._pump, args=(conn, True), daemon=True),
                     threading.Thread(target=self._pump, args=(conn, False), daemon=True)]
            for p in pumps:
                p.start()
            threading.Thread(target=self._reap, args=(conn, pumps), daemon=True).start()

    def _reap(self, conn, pumps):
        for p in pumps:
            p.join()
        for s in (conn.client, conn.upstream):
            s.close()
        with self.cond:
            if conn in self.conns:
                self.conns.remove(conn)

    def _pump(self, conn, from_attachd):
        src, dst = (conn.client, conn.upstream) if from_attachd else (conn.upstream, conn.client)
        framer = _Framer()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                now = time.monotonic()
                with self.cond:
                    self._log(conn, framer.feed(data), from_attachd, now)
                    if self.mode == "hold" and from_attachd:
                        self.held_bytes += len(data)
                        self.cond.notify_all()
                    while self.mode == "hold" and not conn.dead:
                        self.cond.wait()
                    if conn.dead:
                        break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self.cond:             # the other direction may be held: wake it
                conn.dead = True
                self.cond.notify_all()
            conn.kill()

    def _log(self, conn, messages, from_attachd, now):
        for prog, proc, typ, serial, payload in messages:
            if prog != REMOTE_PROGRAM:
                continue                    # keepalive
            if from_attachd and typ == CALL:
                c = Call(proc, serial, payload, now)
                self.calls.append(c)
                self._by_serial[(id(conn), serial)] = c
            elif not from_attachd and typ == REPLY and (id(conn), serial) in self._by_serial:
                self._by_serial.pop((id(conn), serial)).replied = now
