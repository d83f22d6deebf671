"""Slow and malformed clients at the HTTP layer: they lose, and nobody else
does. A request head must be complete within --header-timeout of its first
byte and a body within --timeout of its head, however slowly the bytes come;
at the connection cap a new client makes room by closing a connection that
has not sent a whole head; the cap fits the open-files limit; framing that
libmicrohttpd would read its own way is a 400 with the connection closed;
a body is read only once the credentials are good; the access log escapes
what the client chose.

All traffic goes to loopback addresses, every test is bounded in time, and
no test asserts a duration as a performance claim: only deadlines.
"""
import json
import random
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest
import requests

from apiutil import (Conn, RawAsRequests, assert_error, assert_unauthorized, basic, mid_request,
                     served, server_body, try_request, unique)
from attachd import Attachd, binary

TICK = 0.25             # the watchdog's period (src/http/guard.c)
SLACK = 1.0             # scheduling on a loaded two-core machine


def _closed_at(conn, t0, limit):
    """Seconds after T0 at which the server closed CONN, or None within LIMIT."""
    while time.monotonic() - t0 < limit:
        if conn.closed_within(0.05):
            return time.monotonic() - t0
    return None


def _trickle(conn, data, every, t0, limit):
    """Send DATA a byte every EVERY seconds until the server closes the
    connection; the time after T0 at which it did, or None."""
    for i in range(len(data)):
        if time.monotonic() - t0 > limit:
            return None
        try:
            conn.sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        if conn.closed_within(every):
            return time.monotonic() - t0
    return None


def _log_count(d, pattern):
    return sum(int(m) for m in re.findall(pattern, d.read_log()))


# -- the header timeout ------------------------------------------------------------

def test_trickled_head_is_closed_at_the_header_timeout(tmp_path):
    """One byte every 0.2 s never leaves the connection idle for --timeout,
    but the head as a whole gets --header-timeout seconds from its first
    byte, on a new connection and on a kept-alive one alike."""
    d = Attachd(tmp_path, extra_args=["--header-timeout", "2", "--timeout", "30"]).start()
    head = b"GET /v2.1/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    try:
        with Conn(d.port, timeout=10) as fresh:
            t0 = time.monotonic()
            closed = _trickle(fresh, head, 0.2, t0, 2 + TICK + SLACK + 2)
        with Conn(d.port, timeout=10) as kept:
            assert kept.request("GET", "/v2.1/").status == 200
            time.sleep(0.5)
            t1 = time.monotonic()
            closed_kept = _trickle(kept, head, 0.2, t1, 2 + TICK + SLACK + 2)
        for what, t in (("new", closed), ("kept-alive", closed_kept)):
            assert t is not None, f"a trickled head on a {what} connection was never closed"
            assert 2.0 - 0.05 <= t <= 2.0 + TICK + SLACK, (what, t)
        assert served(d.port).status == 200
    finally:
        assert d.stop() == 0
    assert _log_count(d, r"closed (\d+) connections whose request head took over 2 s") == 2


def test_idle_connections_are_left_to_the_inactivity_timeout(tmp_path):
    """A kept-alive connection that sends nothing after its request is not a
    slow head, and neither is a new one that has sent nothing yet: both are
    closed after --timeout of silence, as before, not by --header-timeout."""
    d = Attachd(tmp_path, extra_args=["--header-timeout", "1", "--timeout", "4"]).start()
    try:
        with Conn(d.port, timeout=10) as kept, Conn(d.port, timeout=10) as silent:
            assert kept.request("GET", "/v2.1/").status == 200
            t0 = time.monotonic()
            assert not kept.closed_within(2.5), "idle keep-alive cut by the header timeout"
            assert not silent.closed_within(0.1), "silent new connection cut by the header timeout"
            assert kept.request("GET", "/v2.1/servers/x").status in (401, 404)
            # and silence still ends at --timeout
            assert _closed_at(silent, t0, 4 + 2 + SLACK) is not None
    finally:
        assert d.stop() == 0


@pytest.mark.parametrize("where", ["chunk-size", "chunk-data", "trailer"])
def test_trickled_chunked_body_is_cut_after_the_timeout(tmp_path, where):
    """The body has --timeout seconds from the end of its head, chunked
    framing included: a chunk-size line or a trailer sent a byte at a time
    never reaches the access handler, but is cut all the same."""
    d = Attachd(tmp_path, extra_args=["--timeout", "2"]).start()
    try:
        account = d.add_account("chunky")
        user, pw = d.add_user(account)
        body = json.dumps(server_body("trickled")).encode()
        start = (f"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(user, pw)}\r\n"
                 "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        if where == "chunk-size":
            first, slow = b"%x\r\n%s\r\n" % (len(body), body), b"0" * 200
        elif where == "chunk-data":
            first, slow = b"%x\r\n" % (len(body) + 200), body + b" " * 200
        else:
            first, slow = b"%x\r\n%s\r\n0\r\n" % (len(body), body), b"X-Trailer: " + b"t" * 200
        with Conn(d.port, timeout=10) as c:
            c.send(start + first)
            t0 = time.monotonic()
            closed = _trickle(c, slow, 0.2, t0, 2 + TICK + SLACK + 2)
        assert closed is not None, f"a trickled {where} kept its connection open"
        assert 2.0 - 0.05 <= closed <= 2.0 + TICK + SLACK, closed
        r = d.session(user, pw).get(d.url("/v2.1/servers"))
        assert r.json()["servers"] == [], r.text
    finally:
        assert d.stop() == 0


# -- the cap: eviction -------------------------------------------------------------------

def test_new_connection_makes_room_by_closing_one_without_a_whole_head(tmp_path):
    """At the cap, a new connection closes the oldest that never completed a
    head (here a silent one) or a kept-alive one part-way through its next
    head; idle kept-alive connections are kept while there is one of those,
    and then the one idle longest is closed."""
    d = Attachd(tmp_path, extra_args=["--max-connections", "4", "--threads", "1"]).start()
    conns = []
    try:
        kept = [Conn(d.port, timeout=3) for _ in range(3)]
        conns += kept
        for c in kept:
            assert c.request("GET", "/v2.1/").status == 200
        silent = Conn(d.port, timeout=3)
        conns.append(silent)
        time.sleep(0.3)
        # 4 open: a 5th closes the silent one and is served
        newcomer = Conn(d.port, timeout=3)
        conns.append(newcomer)
        assert newcomer.request("GET", "/v2.1/").status == 200
        assert silent.closed_within(2), "the silent connection was not the one closed"
        # now a kept-alive connection starts a head and stalls in it
        kept[0].send(b"GET /v2.1/ HTTP/1.1\r\nHo")
        time.sleep(TICK * 3)    # the watchdog sees its bytes
        last = Conn(d.port, timeout=3)
        conns.append(last)
        assert last.request("GET", "/v2.1/").status == 200
        assert kept[0].closed_within(2), "the half-sent head was not the one closed"
        # the idle kept-alive connections were left alone
        for c in kept[1:]:
            assert c.request("GET", "/v2.1/").status == 200
        # 4 served, idle connections: a new one closes the one idle longest
        # (newcomer: its request came before last's and kept's)
        final = Conn(d.port, timeout=3)
        conns.append(final)
        assert final.request("GET", "/v2.1/").status == 200
        assert newcomer.closed_within(2), "the connection idle longest was not the one closed"
        for c in [last] + kept[1:]:
            assert c.request("GET", "/v2.1/").status == 200
    finally:
        for c in conns:
            c.close()
        assert d.stop() == 0


class Slowloris:
    """PER_SOURCE connections from each address in SOURCES, each sending a
    request head a byte every BYTE_EVERY seconds and reconnecting as soon
    as it is closed, as an attacker would: one thread, non-blocking
    sockets."""

    HEAD = b"GET /v2.1/ HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000

    def __init__(self, port, sources, per_source, byte_every=1.0):
        self.port = port
        self.byte_every = byte_every
        self.slots = [{"source": s, "sock": None, "sent": 0, "due": 0.0}
                      for s in sources for _ in range(per_source)]
        self.connects = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        for slot in self.slots:
            if slot["sock"]:
                slot["sock"].close()

    def open(self):
        return sum(1 for slot in self.slots if slot["sock"] is not None)

    def _drop(self, slot):
        slot["sock"].close()
        slot["sock"] = None

    def _run(self):
        while not self.stop.is_set():
            now = time.monotonic()
            for slot in self.slots:
                if slot["sock"] is None:
                    try:
                        s = socket.create_connection(("127.0.0.1", self.port), timeout=1,
                                                     source_address=(slot["source"], 0))
                        s.setblocking(False)
                        s.send(self.HEAD[:1])
                    except OSError:
                        continue
                    self.connects += 1
                    slot.update(sock=s, sent=1, due=now + self.byte_every * random.random())
                    continue
                try:
                    slot["sock"].recv(4096)     # closed, or answered: start again
                    self._drop(slot)
                    continue
                except BlockingIOError:
                    pass                        # still waiting for the rest of the head
                except OSError:
                    self._drop(slot)
                    continue
                if now >= slot["due"] and slot["sent"] < len(self.HEAD):
                    try:
                        slot["sock"].send(self.HEAD[slot["sent"]:slot["sent"] + 1])
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._drop(slot)
                        continue
                    slot["sent"] += 1
                    slot["due"] = now + self.byte_every
            self.stop.wait(0.05)


def test_slowloris_from_many_addresses_cannot_starve_whole_requests(tmp_path):
    """17 loopback addresses, 4 connections each, trickle request heads and
    reconnect whenever closed: 68 wanting a cap of 64. A client from another
    address sends whole requests, on new connections and on a kept-alive
    one: every one of them is answered."""
    d = Attachd(tmp_path, extra_args=["--max-connections", "64", "--max-per-ip", "4",
                                      "--threads", "2"]).start()
    sources = [f"127.0.0.{i}" for i in range(2, 19)]
    client = "127.0.0.100"
    ok = total = 0
    failures = []
    try:
        with Slowloris(d.port, sources, 4) as attack:
            deadline = time.monotonic() + 10
            while attack.open() < 64 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)     # every attacking connection is in
            assert attack.open() >= 64, f"the attack holds only {attack.open()} connections"
            kept = None
            for i in range(60):
                total += 1
                if i % 3 == 2:      # every third on one kept-alive connection
                    try:
                        if kept is None:
                            kept = Conn(d.port, source=client, timeout=3)
                        r = kept.request("GET", "/v2.1/")
                    except (OSError, EOFError) as e:
                        r = None
                        failures.append((i, "kept-alive", repr(e)))
                        kept = None
                else:
                    r = served(d.port, source=client, timeout=3)
                    if r is None:
                        failures.append((i, "new connection", None))
                ok += r is not None and r.status == 200
                time.sleep(0.05)
            if kept:
                kept.close()
            held = attack.open()
            connects = attack.connects
    finally:
        assert d.stop() == 0
    evicted = _log_count(d, r"and (\d+) to make room for new connections")
    print(f"\nslowloris: {len(sources)} addresses x 4 connections against a cap of 64; "
          f"{connects} attacking connects, {held} open at the end, {evicted} evicted; "
          f"whole requests answered: {ok}/{total} ({100.0 * ok / total:.1f}%)")
    assert ok == total, failures[:5]
    assert evicted > 0, "the cap was never reached: the test proves nothing"


# -- the open-files limit -------------------------------------------------------------------

def listening_cap(d, timeout=10):
    """The cap the daemon's "listening" line states (the log is written in
    batches: it may come a little after the port answers), or None."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(r"(\d+) connections at most", d.read_log())
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def _limited_binary(tmp_path, nofile, hard=None):
    """A wrapper that runs attachd under `prlimit --nofile=N:HARD` (HARD: N)."""
    path = tmp_path / "attachd-limited"
    path.write_text(f'#!/bin/sh\nexec prlimit --nofile={nofile}:{hard or nofile} "{binary()}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_default_cap_fits_a_small_open_files_limit(tmp_path, monkeypatch):
    """With 64 descriptors the default cap shrinks to what fits, and the
    connections past it are refused at once instead of left hanging (when
    none of those open can make room: each is in the middle of a request)."""
    monkeypatch.setenv("ATTACHD_BIN", _limited_binary(tmp_path, 64))
    d = Attachd(tmp_path, extra_args=["--threads", "2"]).start()
    conns = []
    try:
        m = listening_cap(d)
        assert m, d.read_log()
        cap = int(m.group(1))
        assert 0 < cap < 64 - 20, cap
        for _ in range(cap):
            c = Conn(d.port, timeout=3)
            conns.append(c)
            assert c.request("GET", "/v2.1/").status == 200
        mid_request(d, conns)
        states = [try_request(d.port, timeout=2.0)[0] for _ in range(10)]
        assert all(s in ("refused", "closed") for s in states), states
        conns.pop().close()
        deadline = time.monotonic() + 5
        while served(d.port, timeout=1.0) is None:
            assert time.monotonic() < deadline, "a freed place was not given to a new client"
            time.sleep(0.1)
    finally:
        for c in conns:
            c.close()
        assert d.stop() == 0


def test_soft_open_files_limit_is_raised_to_the_hard_one(tmp_path, monkeypatch):
    """A soft limit of 64 under a hard one of 4096 (a common shell default is
    1024:524288): attachd raises its soft limit and keeps the default cap."""
    monkeypatch.setenv("ATTACHD_BIN", _limited_binary(tmp_path, 64, hard=4096))
    d = Attachd(tmp_path, extra_args=["--threads", "2"]).start()
    try:
        with open(f"/proc/{d.proc.pid}/limits") as f:
            row = next(l for l in f if l.startswith("Max open files"))
        assert row.split()[3:5] == ["4096", "4096"], row
        m = listening_cap(d)
        assert m and int(m.group(1)) == 1024, d.read_log()
        assert served(d.port, timeout=2.0) is not None
    finally:
        assert d.stop() == 0


def test_explicit_cap_that_does_not_fit_refuses_to_start(tmp_path):
    p = subprocess.run([_limited_binary(tmp_path, 64), "serve", "--listen", "127.0.0.1:1",
                        "--db", str(tmp_path / "a.db"), "--max-connections", "1000"],
                       capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "--max-connections 1000" in lines[0], p.stderr
    assert not (tmp_path / "a.db").exists(), "a refused serve created its database"


# -- framing -----------------------------------------------------------------------------

FRAMING = {
    "content-length-and-chunked": ["Content-Length: {n}", "Transfer-Encoding: chunked"],
    "chunked-and-content-length": ["Transfer-Encoding: chunked", "Content-Length: {n}"],
    "two-content-lengths": ["Content-Length: {n}", "Content-Length: {m}"],
    "unknown-coding": ["Transfer-Encoding: gzip"],
    "coding-list": ["Transfer-Encoding: gzip, chunked"],
    "two-codings": ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
    "two-hosts": ["Host: y", "Content-Length: {n}"],
    "space-before-colon": ["Content-Length : {n}"],
    "tab-before-colon": ["Transfer-Encoding\t: chunked"],
    "folded-content-length": ["Content-Length: {n}", " 0"],
    "space-after-host": ["Host : y", "Content-Length: {n}"],
}


def _framed(path, auth, lines, body, version="HTTP/1.1"):
    head = [f"POST {path} {version}", "Host: x", f"Authorization: {auth}",
            "Content-Type: application/json"]
    head += [l.format(n=len(body), m=len(body) + 1) for l in lines]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("case", list(FRAMING) + ["chunked-in-http/1.0"])
@pytest.mark.parametrize("prefix,dialect", [("/v2.1", "nova"), ("", "hostway")])
def test_ambiguous_framing_is_400_and_closed(tenant, case, prefix, dialect):
    d, acct, s = tenant
    body = json.dumps(server_body(unique("framed"))).encode()
    if case == "chunked-in-http/1.0":
        raw = _framed(f"{prefix}/servers", s.headers["Authorization"],
                      ["Transfer-Encoding: chunked"], b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
                      version="HTTP/1.0")
    else:
        raw = _framed(f"{prefix}/servers", s.headers["Authorization"], FRAMING[case], body)
    with Conn(d.port, timeout=5) as c:
        c.send(raw)
        r = c.read_response("POST")
        assert r.status == 400, (r.status, r.body)
        assert_error(dialect, RawAsRequests(r), 400)
        assert (r.header("Connection") or "").lower() == "close", r.headers
        assert c.closed_within(3), "the connection stayed open after a framing error"
    assert s.get(d.url("/v2.1/servers")).json()["servers"] == []


def test_identical_content_lengths_pass(tenant):
    d, acct, s = tenant
    body = json.dumps(server_body("twice")).encode()
    raw = _framed("/v2.1/servers", s.headers["Authorization"],
                  ["Content-Length: {n}", "Content-Length: {n}"], body)
    with Conn(d.port) as c:
        c.send(raw)
        r = c.read_response("POST")
        assert r.status == 202, (r.status, r.body)


# -- credentials before the body ------------------------------------------------------------

def _post_head(path, auth, lines):
    head = [f"POST {path} HTTP/1.1", "Host: x", "Content-Type: application/json"] + lines
    if auth:
        head.append(f"Authorization: {auth}")
    return ("\r\n".join(head) + "\r\n\r\n").encode()


@pytest.mark.parametrize("framing", ["Content-Length: 1000000", "Transfer-Encoding: chunked"])
@pytest.mark.parametrize("auth", ["none", "wrong-password", "unknown-user"])
@pytest.mark.parametrize("prefix", ["/v2.1", ""])
def test_refused_credentials_are_answered_before_the_body(tenant, framing, auth, prefix):
    """A body is read only for good credentials: a client without them has
    its 401 as soon as its head is in, while the megabyte it declared is
    still unsent, and the connection closes. It holds neither a body in
    memory nor a connection while it sends one slowly."""
    d, acct, s = tenant
    user, pw = d.add_user(acct)
    header = {"none": None, "wrong-password": basic(user, pw + "x"),
              "unknown-user": basic(unique("nobody"), pw)}[auth]
    with Conn(d.port, timeout=10) as c:
        c.send(_post_head(f"{prefix}/servers", header, [framing]))
        r = c.read_response("POST")
        assert_unauthorized(RawAsRequests(r))
        assert (r.header("Connection") or "").lower() == "close", r.headers
        assert c.closed_within(3), "the connection stayed open for a refused body"
    assert s.get(d.url("/v2.1/servers")).status_code == 200


@pytest.mark.parametrize("path,status", [("/", 200), ("/v2.1/", 200), ("/image", 300),
                                         ("/healthcheck", 200)])
def test_paths_without_credentials_are_answered_before_the_body(daemon, path, status):
    """Version discovery and /healthcheck need no credentials, and none of
    their answers depends on a body: one declared is never read."""
    with Conn(daemon.port, timeout=10) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n".encode())
        r = c.read_response("GET")
        assert r.status == status, (r.status, r.body)
        assert c.closed_within(3), "the connection stayed open for an unread body"


def test_expect_continue_only_for_good_credentials(tenant):
    """Expect: 100-continue asks whether to send the body: bad credentials
    are told 401 instead of 100 Continue; good ones, a user's first request
    (its password checked on a verifier thread while the connection waits
    at its head), have 100 Continue and their request done, and the
    connection goes on."""
    d, acct, s = tenant
    user, pw = d.add_user(acct)
    body = json.dumps(server_body(unique("gated"))).encode()
    lines = [f"Content-Length: {len(body)}", "Expect: 100-continue"]
    with Conn(d.port, timeout=10) as c:
        c.send(_post_head("/v2.1/servers", basic(user, "wrong"), lines))
        r = c.read_response("POST")
        assert r.status == 401, (r.status, r.body)
    with Conn(d.port, timeout=10) as c:
        c.send(_post_head("/v2.1/servers", basic(user, pw), lines))
        r = c.read_response("POST")
        assert r.status == 100, (r.status, r.body)
        c.send(body)
        r = c.read_response("POST")
        assert r.status == 202, (r.status, r.body)
        r = c.request("GET", "/v2.1/servers", [("Authorization", basic(user, pw))])
        assert r.status == 200, (r.status, r.body)
        assert [srv["name"] for srv in json.loads(r.body)["servers"]] == [
            json.loads(body)["server"]["name"]]


# -- many query arguments ------------------------------------------------------------------

@pytest.mark.parametrize("arg", ["a=1", "a", "abcdefghij=1"])
def test_many_query_arguments_are_all_read_and_answered(tenant, arg):
    """libmicrohttpd 0.9.75 keeps each query argument in the connection's
    16 KiB pool; when they filled it (some 220 short ones) the client had no
    answer until the header timeout. attachd parses the query itself
    (src/http/query.h): a request line full of arguments is answered at
    once, the last argument counts like the first, and a client without
    credentials has its 401."""
    d, acct, s = tenant
    for name in ("many-1", "many-2"):
        assert s.post(d.url("/v2.1/servers"), json=server_body(name)).status_code == 202
    query = "&".join([arg] * 800) + "&limit=1"
    with Conn(d.port, timeout=5) as c:
        r = c.request("GET", f"/v2.1/servers?{query}", [("Authorization", s.headers["Authorization"])])
        assert r.status == 200, (r.status, r.body[:300])
        assert len(json.loads(r.body)["servers"]) == 1, r.body[:300]
        r = c.request("GET", f"/servers?{query}")
        assert_unauthorized(RawAsRequests(r))


# -- the access log --------------------------------------------------------------------------

def test_access_log_escapes_the_method(daemon):
    """A method is the client's text like the path: control characters and
    quotes in it must not break or forge an access-log line."""
    with Conn(daemon.port) as c:
        c.send(b'G\x01\x1b[31m"E\x7fT /v2.1/ HTTP/1.1\r\nHost: x\r\n\r\n')
        r = c.read_response()
        rid = r.header("x-openstack-request-id")
    assert rid, r.headers
    deadline = time.monotonic() + 3
    while True:
        lines = [l for l in daemon.read_log().splitlines() if rid in l]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, lines
    assert 'method=G\\x01\\x1b[31m\\x22E\\x7fT path="/v2.1/"' in lines[0], lines[0]
    assert not re.search(r"[\x00-\x1f\x7f]", lines[0]), repr(lines[0])


# -- SIGTERM under load ------------------------------------------------------------------------

def test_sigterm_under_write_load_loses_nothing_acknowledged(tmp_path):
    """20 times: a few clients create and delete servers as fast as they can,
    SIGTERM comes at a random moment; attachd exits 0 promptly, and after a
    restart every acknowledged create is there (unless its delete was
    acknowledged too, and then it is gone)."""
    d = Attachd(tmp_path, extra_args=["--threads", "2"]).start()
    account = d.add_account("load")
    user, pw = d.add_user(account)
    auth = basic(user, pw)
    assert d.session(user, pw).get(d.url("/v2.1/servers")).status_code == 200
    rng = random.Random(20)
    created, deleted, unsure = set(), set(), set()
    unexpected = []
    lock = threading.Lock()
    exits = []

    def worker(stop, seed):
        wr = random.Random(seed)
        s = requests.Session()
        s.headers["Authorization"] = auth
        mine = []
        while not stop.is_set():
            try:
                if mine and wr.random() < 0.4:
                    sid = mine.pop(wr.randrange(len(mine)))
                    with lock:
                        unsure.add(sid)
                    r = s.delete(d.url(f"/v2.1/servers/{sid}"), timeout=10)
                    with lock:      # answered: done (204) or not done (503 while stopping)
                        unsure.discard(sid)
                        if r.status_code == 204:
                            deleted.add(sid)
                        else:
                            mine.append(sid)
                            if r.status_code != 503:
                                unexpected.append((r.status_code, r.text))
                else:
                    r = s.post(d.url("/v2.1/servers"), json=server_body(unique("load")),
                               timeout=10)
                    if r.status_code == 202:
                        sid = r.json()["server"]["id"]
                        with lock:
                            created.add(sid)
                        mine.append(sid)
                    elif r.status_code != 503:
                        with lock:
                            unexpected.append((r.status_code, r.text))
            except requests.RequestException:
                time.sleep(0.01)    # stopped, or stopping: try again until told to stop

    for run in range(20):
        if run:
            d.start()
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(stop, run * 10 + i)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.8))
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(timeout=15)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        exits.append((rc, time.monotonic() - t0))
        d.proc = None
        d.log.close()
        assert rc == 0, (run, d.read_log()[-3000:])
    d.start()
    try:
        s = d.session(user, pw)
        lost = [sid for sid in created - deleted - unsure
                if s.get(d.url(f"/v2.1/servers/{sid}")).status_code != 200]
        back = [sid for sid in deleted if s.get(d.url(f"/v2.1/servers/{sid}")).status_code != 404]
    finally:
        assert d.stop() == 0
    print(f"\nSIGTERM under load: 20 runs, {len(created)} creates and {len(deleted)} deletes "
          f"acknowledged, slowest exit {max(t for _, t in exits):.2f} s")
    assert not unexpected, unexpected[:5]
    assert not lost, f"acknowledged creates lost: {lost[:5]}"
    assert not back, f"acknowledged deletes undone: {back[:5]}"
    assert len(created) > 20, "too little load to prove anything"
