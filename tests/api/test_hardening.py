"""The hostile clients of the hardening issue, each repeated (loopback only,
bounded in count and time) with the behaviour that must hold now:

- a flood of unknown user names does not slow requests answered from the
  credential cache (password checks run on low-priority verifier threads,
  bounded per address and in all);
- a member's metadata and slow readers cannot make the daemon's memory grow
  without bound;
- accounts never mix: no volume is attached to a server of another
  account, so no member can delete another account's volume;
- a database deleted or moved under the running daemon refuses writes
  instead of acknowledging them into a file nobody will read;
- a database attachd cannot write: it refuses to start.

Measurements are printed (pytest -s shows them); the assertions are bounds
wide enough for a loaded 2-core machine, far below the failures they guard
against (a cached read went from 1 ms to 1 s under the flood; memory reached
1.66 GB under the slow readers).
"""
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from apiutil import assert_error, basic, server_body, unique
from attachd import Attachd, requires_sqlite

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kib(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


# -- the unknown-user flood -------------------------------------------------------------

FLOOD = r'''
import base64, os, socket, sys, threading, time, uuid
port, seconds = int(sys.argv[1]), float(sys.argv[2])
stop = time.monotonic() + seconds
sent = [0]
def worker(n):
    src = "127.0.0.%d" % (2 + n % 17)
    while time.monotonic() < stop:
        name = uuid.uuid4().hex
        auth = base64.b64encode(("%s:%s" % (name, name)).encode()).decode()
        req = ("GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
               "Connection: close\r\n\r\n" % auth).encode()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                         source_address=(src, 0))
            s.sendall(req)
            while s.recv(4096):
                pass
            s.close()
            sent[0] += 1
        except OSError:
            time.sleep(0.01)
threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(sent[0])
'''


def paced_reads(d, user, pw, n, pace):
    """n cached GETs on one keep-alive connection, one every `pace` s: latencies."""
    s = d.session(user, pw)
    url = d.url("/v2.1/servers")
    assert s.get(url).status_code == 200            # in the cache from here on
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = s.get(url)
        out.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        time.sleep(pace)
    return out


def test_unknown_user_flood_does_not_slow_cached_reads(tmp_path):
    d = Attachd(tmp_path).start()
    try:
        account = d.add_account("flood")
        user, pw = d.add_user(account)
        quiet = paced_reads(d, user, pw, 150, 0.01)
        flood = subprocess.Popen([sys.executable, "-c", FLOOD, str(d.port), "12"],
                                 stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)                               # let it reach full strength
            loud = paced_reads(d, user, pw, 150, 0.01)
        finally:
            sent = int(flood.communicate(timeout=60)[0].strip() or 0)
        q50, l50 = statistics.median(quiet), statistics.median(loud)
        q99 = sorted(quiet)[int(len(quiet) * 0.99)]
        l99 = sorted(loud)[int(len(loud) * 0.99)]
        print(f"\ncached GET p50 {q50 * 1e3:.2f} ms quiet, {l50 * 1e3:.2f} ms under a flood of "
              f"{sent} unknown-user requests (ratio {l50 / q50:.2f}); "
              f"p99 {q99 * 1e3:.2f} / {l99 * 1e3:.2f} ms")
        # each flood request waits for a password check on the low-priority
        # verifiers, so how many complete depends on what else the machine
        # runs; what matters is that they kept the verifiers busy throughout
        assert sent > 50, "the flood did not flow"
        # before the verifier threads the ratio was about 1000 (1 ms -> 1 s);
        # now the flood costs the reads only the CPU it takes on two cores
        assert l50 < 4 * q50, (q50, l50)
        # the daemon still checks passwords: a new, right one is let in
        user2, pw2 = d.add_user(account)
        r = d.session(user2, pw2).get(d.url("/v2.1/servers"))
        assert r.status_code == 200, r.text
    finally:
        assert d.stop() == 0


def test_stopping_answers_queued_password_checks_at_once(tmp_path):
    """SIGTERM with the verifiers' queue full: the checks still queued are
    answered 503 with Retry-After instead of each costing its argon2id (which
    would make stopping wait for the whole queue), every request is answered,
    and attachd exits 0."""
    d = Attachd(tmp_path).start()
    socks = []
    try:
        # 16 addresses x AUTH_ADDR_PENDING (4) = AUTH_QUEUE_MAX (64) checks queued
        for n in range(64):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=30,
                                         source_address=("127.0.0.%d" % (2 + n % 16), 0))
            name = unique("nobody")
            s.sendall(("GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
                       "Connection: close\r\n\r\n" % basic(name, name)).encode())
            socks.append(s)
        time.sleep(0.1)
    finally:
        rc = d.stop()
    answers = []
    for s in socks:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        answers.append(data)
    statuses = [a.split(b" ", 2)[1] if a.startswith(b"HTTP/1.1 ") else a[:40] for a in answers]
    print(f"\nanswers at SIGTERM: {statuses.count(b'401')} 401, {statuses.count(b'503')} 503")
    assert rc == 0
    assert set(statuses) <= {b"401", b"503"}, statuses
    assert statuses.count(b"503") > 0, "every queued check was verified before stopping"
    for a in answers:
        if a.startswith(b"HTTP/1.1 503"):
            assert b"\r\nRetry-After: " in a, a


# -- memory: metadata and slow readers ---------------------------------------------------

BIG = "\U0001F600" * 255


def test_memory_stays_bounded_under_metadata_and_slow_readers(tmp_path, monkeypatch):
    if "ASAN_OPTIONS" in os.environ:
        # AddressSanitizer keeps freed memory in quarantine (256 MB by
        # default) to catch use after free: the daemon's own memory is what
        # this test measures
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=8")
    d = Attachd(tmp_path).start()
    conns = []
    try:
        account = d.add_account("mem")
        user, pw = d.add_user(account)
        s = d.session(user, pw)
        md = {f"k{i:03d}": BIG for i in range(128)}
        for i in range(80):
            r = s.post(d.url("/v2.1/servers"), json=server_body(f"m{i}", metadata=md))
            assert r.status_code == 202, r.text
        after_writes = rss_kib(d.proc.pid, "VmRSS")
        # 12 readers that ask for the largest answer and never read it
        req = (f"GET /v2.1/servers/detail HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: {basic(user, pw)}\r\n\r\n").encode()
        for n in range(12):
            c = socket.socket()
            c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.bind((f"127.0.0.{2 + n}", 0))
            c.connect(("127.0.0.1", d.port))
            for _ in range(4):          # pipelined: more answers queued than read
                c.sendall(req)
            conns.append(c)
        time.sleep(4)
        peak = rss_kib(d.proc.pid, "VmHWM")
        held = rss_kib(d.proc.pid, "VmRSS")
        for c in conns:
            c.close()
        conns = []
        time.sleep(2)
        after = rss_kib(d.proc.pid, "VmRSS")
        print(f"\nRSS after 80 servers with 128 x 255-character metadata: {after_writes / 1024:.0f} MiB;"
              f" peak with 12 slow readers: {peak / 1024:.0f} MiB (held {held / 1024:.0f} MiB);"
              f" after they left: {after / 1024:.0f} MiB")
        # before: answers of 60 MB, 1.66 GB peak, 1.08 GB held afterwards
        assert peak < 400 * 1024, peak
        # (AddressSanitizer's allocator gives freed memory back to the system
        # only when it next allocates, at most every 5 s: what it holds after
        # the readers left is not the daemon's; the normal build checks this)
        if "ASAN_OPTIONS" not in os.environ:
            assert after < after_writes + 64 * 1024, (after_writes, after)
        assert s.get(d.url("/v2.1/servers")).status_code == 200
    finally:
        for c in conns:
            c.close()
        assert d.stop() == 0


# -- accounts never mix --------------------------------------------------------------------

@pytest.mark.parametrize("dialect", ["nova", "hostway"])
def test_admin_cannot_attach_another_accounts_volume(world, dialect):
    """The cross-account delete: an admin attached account B's volume to A's
    server, A's member set delete_on_termination and deleted the server,
    which deleted B's volume. The attach itself is refused now."""
    w = world
    server = w.d.add_server(w.a, name=unique("mix"))
    volume = w.d.add_volume(w.b, size=1)
    pfx = "/v2.1" if dialect == "nova" else ""
    r = w.admin.post(f"{w.base}{pfx}/servers/{server}/os-volume_attachments",
                     json={"volumeAttachment": {"volumeId": volume}})
    why = (f"Invalid volume: volume {volume} belongs to another account than instance "
           f"{server}; a volume can only be attached to a server of its own account")
    assert_error(dialect, r, 400 if dialect == "nova" else 409, nova_message=why)
    if dialect == "hostway":
        assert r.json()["conflict"]["details"] == why
    # nothing changed: the volume is B's, available, and survives A's server
    v = w.sb.get(f"{w.base}/volumes/{volume}").json()["volume"]
    assert v["status"] == "available" and v["attachments"] == []
    assert w.sa.delete(f"{w.base}/servers/{server}").status_code == 204
    assert w.sb.get(f"{w.base}/volumes/{volume}").status_code == 200


def test_admin_cannot_swap_in_another_accounts_volume(world):
    w = world
    server = w.d.add_server(w.a, name=unique("swap"))
    mine = w.d.add_volume(w.a, size=1)
    theirs = w.d.add_volume(w.b, size=1)
    r = w.sa.post(f"{w.base}/v2.1/servers/{server}/os-volume_attachments",
                  json={"volumeAttachment": {"volumeId": mine}})
    assert r.status_code == 200, r.text
    r = w.admin.put(f"{w.base}/v2.1/servers/{server}/os-volume_attachments/{mine}",
                    json={"volumeAttachment": {"volumeId": theirs}})
    assert_error("nova", r, 400, text_contains="belongs to another account")
    assert w.sb.get(f"{w.base}/volumes/{theirs}").json()["volume"]["status"] == "available"


def test_boot_from_another_accounts_volume_is_refused(world):
    w = world
    theirs = w.d.add_volume(w.b, size=1)
    body = {"server": {"name": "bfv", "flavorRef": "1", "block_device_mapping_v2": [
        {"boot_index": 0, "source_type": "volume", "uuid": theirs,
         "destination_type": "volume", "delete_on_termination": True}]}}
    # an admin in its own account sees every volume: refused for the account
    r = w.admin.post(f"{w.base}/v2.1/servers", json=body)
    assert_error("nova", r, 400, text_contains="belongs to another account")
    # acting in A's account it does not even see B's volume
    r = w.admin.post(f"{w.base}/v2.1/{w.a}/servers", json=body)
    assert_error("nova", r, 404, nova_message=f"Volume {theirs} could not be found.")
    assert w.sb.get(f"{w.base}/volumes/{theirs}").json()["volume"]["status"] == "available"


# -- the database file under the daemon -----------------------------------------------------

@requires_sqlite
@pytest.mark.parametrize("how", ["deleted", "moved", "replaced"])
def test_lost_database_refuses_writes(tmp_path, how):
    d = Attachd(tmp_path).start()
    try:
        account = d.add_account("lost")
        user, pw = d.add_user(account)
        s = d.session(user, pw)
        assert s.post(d.url("/v2.1/servers"), json=server_body("before")).status_code == 202
        if how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(d.db + suffix):
                    os.unlink(d.db + suffix)
        elif how == "moved":
            os.rename(d.db, d.db + ".elsewhere")
        else:
            os.rename(d.db, d.db + ".old")
            with open(d.db, "wb") as f:
                f.write(b"")
        r = s.post(d.url("/v2.1/servers"), json=server_body("after"))
        assert_error("nova", r, 503)
        r = s.post(d.url("/servers"), json=server_body("after"))
        assert_error("hostway", r, 503)
        # reads go on from what the daemon has open
        names = [x["name"] for x in s.get(d.url("/v2.1/servers")).json()["servers"]]
        assert names == ["before"]
        assert "refusing every write" in d.read_log()
    finally:
        assert d.stop() == 0


@requires_sqlite
def test_refuses_to_start_on_a_database_it_cannot_write(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to run the daemon as another user")
    d = Attachd(tmp_path)
    d.add_account("ro")                           # makes the database, owned by root
    os.chmod(tmp_path, 0o755)
    os.chmod(d.db, 0o644)
    p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        os.environ.get("ATTACHD_BIN", ""), "serve", "--listen",
                        f"127.0.0.1:{d.port}", "--db", d.db],
                       capture_output=True, text=True, timeout=30, cwd=str(tmp_path))
    assert p.returncode != 0
    assert d.db in p.stderr and any(w in p.stderr for w in (
        "read-only", "cannot be written", "cannot open database")), \
        p.stderr


@requires_sqlite
def test_database_made_read_only_refuses_writes(tmp_path, monkeypatch):
    """The daemon runs as nobody (root may write any file); its database is
    made read-only under it: writes answer 503 and the log says why."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run the daemon as another user")
    import pwd
    import tempfile
    nobody = pwd.getpwnam("nobody")
    home = tempfile.mkdtemp(prefix="attachd-ro-", dir="/tmp")     # /tmp: nobody reaches it
    os.chown(home, nobody.pw_uid, nobody.pw_gid)
    wrapper = tmp_path / "attachd-as-nobody"
    wrapper.write_text("#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups "
                       f'"{os.path.abspath(os.environ["ATTACHD_BIN"])}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("ATTACHD_BIN", str(wrapper))
    d = Attachd(home)
    try:
        account = d.add_account("ro")
        user, pw = d.add_user(account)
        d.start()
        s = d.session(user, pw)
        assert s.post(d.url("/v2.1/servers"), json=server_body("before")).status_code == 202
        os.chmod(d.db, 0o444)
        assert_error("nova", s.post(d.url("/v2.1/servers"), json=server_body("after")), 503)
        assert_error("hostway", s.post(d.url("/servers"), json=server_body("after")), 503)
        names = [x["name"] for x in s.get(d.url("/v2.1/servers")).json()["servers"]]
        assert names == ["before"]
        assert "is no longer writable" in d.read_log(), d.read_log()
    finally:
        assert d.stop() in (0, None)
        subprocess.run(["rm", "-rf", home])


# -- signals and pages --------------------------------------------------------------------

def test_sighup_without_tls_keeps_serving(tmp_path):
    """SIGHUP reloads what can be reloaded (the TLS pair); without TLS it is
    noted, and the daemon serves on: it never kills."""
    d = Attachd(tmp_path).start()
    try:
        account = d.add_account("hup")
        user, pw = d.add_user(account)
        s = d.session(user, pw)
        for _ in range(3):
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while d.read_log().count("SIGHUP received") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert s.post(d.url("/v2.1/servers"), json=server_body(unique("hup"))).status_code == 202
        assert d.proc.poll() is None
        assert d.read_log().count("SIGHUP received; nothing to reload") == 3
    finally:
        assert d.stop() == 0


def test_lists_are_paged_at_most_a_thousand(tmp_path):
    """Nova's max_limit: no list answers more than 1000 items, whatever the
    limit asked; the rest is on the next page."""
    d = Attachd(tmp_path).start()
    try:
        account = d.add_account("pages")
        user, pw = d.add_user(account)
        s = d.session(user, pw)
        for i in range(1001):
            r = s.post(d.url("/v2.1/os-volumes"), json={"volume": {"size": 1}})
            assert r.status_code == 200, r.text
        for path in ("/v2.1/os-volumes", "/v2.1/os-volumes?limit=5000", "/v2.1/os-volumes?limit=0",
                     "/v2.1/os-volumes/detail?limit=1001", "/volumes"):
            r = s.get(d.url(path))
            assert r.status_code == 200, (path, r.text)
            assert len(r.json()["volumes"]) == 1000, path
        rest = s.get(d.url("/v2.1/os-volumes?offset=1000&limit=5000")).json()["volumes"]
        assert len(rest) == 1
    finally:
        assert d.stop() == 0
