"""Shared helpers for the black-box API tests (tests/api).

Everything here talks to a running attachd over HTTP only; nothing reads the
database or the source. Assertions check the contract that docs/api.md
documents: its endpoints, its common rules and its decisions
(docs/api.md, decisions D1-D9), and issue 2.
"""
import base64
import json
import re
import socket
import time
import uuid

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
REQ_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

# The 401 body of Hostway's DetachVolumeFromServer page
# (docs/api.md, decision D6): five lines, no indentation, two spaces after
# "requested.", every line ending in a newline.
UNAUTHORIZED_BODY = (
    b"401 Unauthorized\n"
    b"This server could not verify that you are authorized to\n"
    b"access the document you requested.  Either you supplied the\n"
    b"wrong credentials (e.g., bad password), or your browser\n"
    b"does not understand how to supply the credentials required.\n"
)

IMAGE_REF = "70a599e0-31e7-49b7-b260-868f441e862b"
FLAVOR_REF = "1"
MAX_MICROVERSION = "2.89"

# Path prefixes (docs/api.md, decision D1). Each kind maps to (dialect, prefix template).
PREFIX_KINDS = ["hostway", "hostway-acct", "nova", "nova-proj"]


def dialect_of(kind):
    return "nova" if kind.startswith("nova") else "hostway"


def prefix(kind, account):
    return {
        "hostway": "",
        "hostway-acct": f"/accounts/{account}/flexcloud",
        "nova": "/v2.1",
        "nova-proj": f"/v2.1/{account}",
    }[kind]


def foreign_prefix(dialect, account):
    """The account-carrying prefix of DIALECT naming ACCOUNT."""
    return f"/accounts/{account}/flexcloud" if dialect == "hostway" else f"/v2.1/{account}"


def basic(user, password):
    if isinstance(user, str):
        user = user.encode()
    if isinstance(password, str):
        password = password.encode()
    return "Basic " + base64.b64encode(user + b":" + password).decode()


def ordered(text):
    """Parse JSON keeping key order: objects become lists of (key, value)."""
    return json.loads(text, object_pairs_hook=list)


def assert_request_ids(resp):
    h = resp.headers
    a = h.get("x-openstack-request-id")
    b = h.get("x-compute-request-id")
    assert a is not None, f"no x-openstack-request-id on {resp.status_code}: {dict(h)}"
    assert b is not None, f"no x-compute-request-id on {resp.status_code}: {dict(h)}"
    assert a == b, (a, b)
    assert REQ_ID.match(a), a
    return a


def assert_json(resp):
    ct = resp.headers.get("Content-Type", "")
    assert ct.split(";")[0].strip().lower() == "application/json", \
        f"Content-Type {ct!r} for {resp.status_code} {resp.text[:200]!r}"
    return resp.json()


def assert_hostway_error(resp, status, name, message=None, details=None):
    """A Hostway fault: {"<name>": {"message", "code", "details", "errorid"}}
    (docs/api.md, decision D2)."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert_request_ids(resp)
    assert_json(resp)
    body = ordered(resp.text)
    assert len(body) == 1, body
    key, inner = body[0]
    assert key == name, f"fault name {key!r}, wanted {name!r}: {resp.text}"
    keys = [k for k, _ in inner]
    assert keys == ["message", "code", "details", "errorid"], \
        f"Hostway fault keys/order {keys}: {resp.text}"
    fields = dict(inner)
    assert fields["code"] == status and type(fields["code"]) is int, resp.text
    assert isinstance(fields["message"], str) and fields["message"], resp.text
    assert isinstance(fields["details"], str), resp.text
    assert isinstance(fields["errorid"], str) and UUID4.match(fields["errorid"]), resp.text
    if message is not None:
        assert fields["message"] == message, resp.text
    if details is not None:
        assert fields["details"] == details, resp.text
    return fields


def assert_nova_error(resp, status, name, message=None, extra_keys=()):
    """A Nova fault: {"<name>": {"code", "message"}} (docs/api.md, decision D3,
    and "Errors" under "Common rules")."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert_request_ids(resp)
    assert_json(resp)
    body = ordered(resp.text)
    assert len(body) == 1, body
    key, inner = body[0]
    assert key == name, f"fault name {key!r}, wanted {name!r}: {resp.text}"
    keys = [k for k, _ in inner]
    assert keys[:2] == ["code", "message"], f"Nova fault keys/order {keys}: {resp.text}"
    assert set(keys[2:]) <= set(extra_keys), f"unexpected fault keys {keys}: {resp.text}"
    fields = dict(inner)
    assert fields["code"] == status and type(fields["code"]) is int, resp.text
    assert isinstance(fields["message"], str) and fields["message"], resp.text
    if message is not None:
        assert fields["message"] == message, resp.text
    return fields


NOVA_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden",
              404: "itemNotFound", 405: "badMethod", 409: "conflictingRequest",
              413: "overLimit", 429: "overLimit", 415: "badMediaType",
              503: "serviceUnavailable"}
HOSTWAY_NAMES = {**NOVA_NAMES, 409: "conflict"}


def assert_error(dialect, resp, status, nova_message=None, hostway_message=None,
                 text_contains=None):
    """Dialect-shaped fault with the standard name for STATUS.

    text_contains: a string that must occur in the Nova message, or in the
    Hostway message or details (e.g. the name of an invalid field).
    """
    if dialect == "nova":
        extra = ("retryAfter",) if status in (413, 429) else ()
        f = assert_nova_error(resp, status, NOVA_NAMES[status], nova_message, extra)
        if text_contains is not None:
            assert text_contains in f["message"], resp.text
    else:
        f = assert_hostway_error(resp, status, HOSTWAY_NAMES[status], hostway_message)
        if text_contains is not None:
            assert text_contains in f["message"] + " " + f["details"], resp.text
    return f


def assert_not_found(dialect, resp, server_id=None):
    if dialect == "nova":
        msg = f"Instance {server_id} could not be found." if server_id else None
        return assert_nova_error(resp, 404, "itemNotFound", msg)
    return assert_hostway_error(resp, 404, "itemNotFound", "Resource not found")


def assert_unauthorized(resp):
    """The plain-text 401 (docs/api.md, decision D6), byte for byte."""
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    assert resp.headers.get("Content-Type") == "text/plain; charset=UTF-8", resp.headers
    assert resp.headers.get("WWW-Authenticate") == 'Basic realm="attachd"', resp.headers
    assert resp.content == UNAUTHORIZED_BODY, repr(resp.content)
    assert_request_ids(resp)


def server_body(name="srv", **extra):
    s = {"name": name, "flavorRef": FLAVOR_REF, "imageRef": IMAGE_REF}
    s.update(extra)
    return {"server": s}


def create_server(session, base, pfx, name="srv"):
    r = session.post(f"{base}{pfx}/servers", json=server_body(name))
    assert r.status_code == 202, (r.status_code, r.text)
    return r.json()["server"]["id"]


def get_server(session, base, pfx, server_id):
    r = session.get(f"{base}{pfx}/servers/{server_id}")
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["server"]


def action(session, base, pfx, server_id, name, arg=None):
    return session.post(f"{base}{pfx}/servers/{server_id}/action", json={name: arg})


def unique(stem="x"):
    return f"{stem}-{uuid.uuid4().hex[:10]}"


# -- raw sockets -------------------------------------------------------------

class RawResponse:
    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) in order
        self.body = body
        self.head = head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


class Conn:
    """A raw HTTP/1.1 client connection that leaves framing checks to the test."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=5.0):
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def request(self, method, path, headers=(), body=b"", host="127.0.0.1"):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        for k, v in headers:
            lines.append(f"{k}: {v}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send(data)
        return self.read_response(method)

    def read_response(self, method="GET"):
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed before a full response head: {self.buf[:200]!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        version, status, *reason = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), lines[0]
        status = int(status)
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        resp = RawResponse(status, reason[0] if reason else "", headers, b"", head)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        raise EOFError("eof in chunk size")
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._fill():
                        raise EOFError("eof in chunk")
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
            resp.body = body
        elif cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                if not self._fill():
                    raise EOFError("eof in body")
            resp.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed_within(self, seconds):
        """True if the peer closes (EOF or reset) within SECONDS; extra bytes fail."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def pending_bytes(self, wait=0.2):
        """Bytes the server sent beyond what was parsed, waiting up to WAIT."""
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
            if chunk:
                self.buf += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return self.buf


def served(port, source=None, timeout=2.0, path="/v2.1/"):
    """Open a new connection and try one request: the RawResponse, or None if
    the connection was refused, closed, reset or left unanswered."""
    try:
        c = Conn(port, source=source, timeout=timeout)
    except OSError:
        return None
    try:
        try:
            return c.request("GET", path)
        except (EOFError, OSError, socket.timeout):
            return None
    finally:
        c.close()


class CIHeaders(dict):
    """Case-insensitive header dict for raw responses."""

    def __init__(self, pairs):
        super().__init__((k.lower(), v) for k, v in pairs)

    def get(self, k, default=None):
        return super().get(k.lower(), default)

    def __getitem__(self, k):
        return super().__getitem__(k.lower())

    def __contains__(self, k):
        return super().__contains__(k.lower())


class RawAsRequests:
    """Wrap a RawResponse so that the requests-based assertions accept it."""

    def __init__(self, raw):
        self.status_code = raw.status
        self.headers = CIHeaders(raw.headers)
        self.content = raw.body
        self.text = raw.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


def mid_request(d, conns):
    """Each connection in the middle of a request, its head sent and its
    body not: none is one that a new connection can close to make room."""
    user, pw = d.add_user(d.add_account())
    for c in conns:
        c.send(f"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nAuthorization: {basic(user, pw)}\r\n"
               "Content-Type: application/json\r\nContent-Length: 10\r\n\r\n".encode())
    time.sleep(0.5)


def try_request(port, source=None, timeout=2.0, path="/v2.1/"):
    """One request on a new connection: ("served", RawResponse), ("refused", None),
    ("closed", None) when closed or reset without an answer, or ("hung", None)
    when nothing happened within TIMEOUT."""
    try:
        c = Conn(port, source=source, timeout=timeout)
    except ConnectionRefusedError:
        return "refused", None
    except socket.timeout:
        return "hung", None
    try:
        try:
            return "served", c.request("GET", path)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return "closed", None
        except socket.timeout:
            return "hung", None
    finally:
        c.close()
