"""Helpers for the volume and attachment suites (issue 3): test_volumes.py,
test_attachments.py, test_seed.py, test_concurrency.py, test_docs.py.

Not a conftest: a plain module the test files import. Everything talks to a
real attachd over HTTP; nothing reads the database or the source. The
contract is docs/api.md: the attachment and volume sections of both
dialects, and the decisions (docs/api.md, decisions D1-D9).

`vol_env` (each module defines it with make_env) is one daemon per test
module with three accounts: A (a member), B (a member of another account)
and OPS (an admin). Each test creates the servers and volumes it changes, so
tests stay independent while sharing the daemon.
"""
import re
import uuid

import pytest

from attachd import Attachd
from apiutil import (UUID4, assert_hostway_error, assert_nova_error,
                     assert_request_ids, ordered)

# Every prefix (docs/api.md, decision D1): two per dialect.
KINDS = ["hostway", "hostway-acct", "nova", "nova-proj"]
HOSTWAY_KINDS = ["hostway", "hostway-acct"]
NOVA_KINDS = ["nova", "nova-proj"]

NOVA_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden",
              404: "itemNotFound", 405: "badMethod", 409: "conflictingRequest"}

DEVICE_PATTERN = "(^/dev/x{0,1}[a-z]{0,1}d{0,1})([a-z]+)[0-9]*$"


def dialect(kind):
    return "nova" if kind.startswith("nova") else "hostway"


def pfx(kind, account):
    return {"hostway": "", "hostway-acct": f"/accounts/{account}/flexcloud",
            "nova": "/v2.1", "nova-proj": f"/v2.1/{account}"}[kind]


def uid(stem="x"):
    return f"{stem}-{uuid.uuid4().hex[:12]}"


class Env:
    def __init__(self, d):
        self.d = d
        self.base = d.base
        self.a = d.add_account(name=uid("vol-a"))
        self.b = d.add_account(name=uid("vol-b"))
        self.ops = d.add_account(name=uid("vol-ops"))
        self.creds = {
            "a": d.add_user(self.a),
            "b": d.add_user(self.b),
            "admin": d.add_user(self.ops, role="admin"),
        }
        self._sessions = {}

    # -- sessions and urls -----------------------------------------------------
    def s(self, who="a", mv=None):
        key = (who, mv)
        if key not in self._sessions:
            user, pw = self.creds[who]
            self._sessions[key] = self.d.session(user, pw, microversion=mv)
        return self._sessions[key]

    def account(self, who):
        return {"a": self.a, "b": self.b, "admin": self.ops}[who]

    def url(self, kind, path, account=None):
        return self.base + pfx(kind, account or self.a) + path

    def req(self, kind, method, path, who="a", mv=None, account=None, **kw):
        """One request on KIND's prefix; MV only applies to the Nova dialect."""
        s = self.s(who, mv if dialect(kind) == "nova" else None)
        return s.request(method, self.url(kind, path, account), **kw)

    def victim(self):
        """A fresh member of account A for a request with a wrong password:
        failed attempts are counted per user and end in 429 (the throttle),
        so no test spends the shared users' allowance."""
        return self.d.add_user(self.a)

    # -- making things ---------------------------------------------------------
    def server(self, who="a", name="srv"):
        r = self.s(who).post(self.base + "/v2.1/servers", json={"server": {
            "name": name, "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}})
        assert r.status_code == 202, (r.status_code, r.text)
        return r.json()["server"]["id"]

    def boot_from_volume(self, vid, who="a", delete_on_termination=None):
        bdm = {"boot_index": 0, "source_type": "volume", "uuid": vid,
               "destination_type": "volume"}
        if delete_on_termination is not None:
            bdm["delete_on_termination"] = delete_on_termination
        r = self.s(who).post(self.base + "/v2.1/servers", json={"server": {
            "name": "bfv", "flavorRef": "1", "block_device_mapping_v2": [bdm]}})
        assert r.status_code == 202, (r.status_code, r.text)
        return r.json()["server"]["id"]

    def volume(self, who="a", size=1, name=None):
        body = {"size": size}
        if name:
            body["display_name"] = name
        r = self.s(who).post(self.base + "/volumes", json={"volume": body})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["volume"]["id"]

    def attach(self, sid, vid, who="a", mv=None, **extra):
        body = {"volumeId": vid, **extra}
        r = self.s(who, mv).post(self.base + f"/v2.1/servers/{sid}/os-volume_attachments",
                                 json={"volumeAttachment": body})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["volumeAttachment"]

    def detach(self, sid, vid, who="a"):
        r = self.s(who).delete(self.base + f"/v2.1/servers/{sid}/os-volume_attachments/{vid}")
        assert r.status_code == 202, (r.status_code, r.text)

    def action(self, sid, name, who="a"):
        r = self.s(who).post(self.base + f"/v2.1/servers/{sid}/action", json={name: None})
        assert r.status_code == 202, (name, r.status_code, r.text)

    def lock_as_admin(self, sid):
        self.action(sid, "lock", who="admin")

    # -- reading the whole state, as the admin ------------------------------------
    def server_view(self, sid):
        """(attachments at 2.89 sorted, volumes_attached at 2.79, status, locked
        state) of a server, or None when it does not exist."""
        adm = self.s("admin", "2.89")
        r = adm.get(self.base + f"/v2.1/servers/{sid}/os-volume_attachments")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, (r.status_code, r.text)
        atts = sorted(r.json()["volumeAttachments"], key=lambda a: a["volumeId"])
        r = self.s("admin", "2.79").get(self.base + f"/v2.1/servers/{sid}")
        assert r.status_code == 200, (r.status_code, r.text)
        srv = r.json()["server"]
        va = sorted(srv["os-extended-volumes:volumes_attached"], key=lambda a: a["id"])
        return {"attachments": atts, "volumes_attached": va, "status": srv["status"],
                "vm_state": srv["OS-EXT-STS:vm_state"], "locked": srv.get("locked")}

    def volume_view(self, vid):
        """The volume as Hostway /volumes shows it to the admin, or None."""
        r = self.s("admin").get(self.base + f"/volumes/{vid}")
        if r.status_code == 404:
            return None
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["volume"]

    def snapshot(self, servers=(), volumes=()):
        return ({sid: self.server_view(sid) for sid in servers if sid},
                {vid: self.volume_view(vid) for vid in volumes if vid})

    def assert_consistent(self, servers=(), volumes=()):
        """A volume is in-use iff it has an attachment, and the server's
        attachments, its volumes_attached and the volume agree (changes are
        synchronous: docs/api.md, decision D4)."""
        svs, vols = self.snapshot(servers, volumes)
        for sid, sv in svs.items():
            if sv is None:
                continue
            assert [a["volumeId"] for a in sv["attachments"]] == \
                [v["id"] for v in sv["volumes_attached"]], sv
            for a in sv["attachments"]:
                v = self.volume_view(a["volumeId"])
                assert v is not None and v["status"] == "in-use", (a, v)
                assert [x["server_id"] for x in v["attachments"]] == [sid], v
        for vid, v in vols.items():
            if v is None:
                continue
            if v["attachments"]:
                assert v["status"] == "in-use", v
                assert len(v["attachments"]) == 1, v
            else:
                assert v["status"] == "available", v


def make_env(tmp_path_factory):
    """The body of each module's `vol_env` fixture (module scope):
    one daemon, three accounts, stopped (and its exit checked) at the end."""
    d = Attachd(tmp_path_factory.mktemp("volumes"))
    d.start()
    yield Env(d)
    if d.proc is not None:
        rc = d.stop()
        assert rc == 0, "attachd did not exit 0 on SIGTERM:\n" + d.read_log()


# -- fault assertions ------------------------------------------------------------

def assert_fault(kind, resp, status, nova_message, hostway_message=None):
    """The dialect-shaped fault ("Errors" under "Common rules" in docs/api.md;
    docs/api.md, decision D2).

    Nova: {"<name>": {"code", "message"}} with Nova's exact text (or a regex
    when NOVA_MESSAGE is a compiled pattern).
    Hostway: {"<name>": {"message", "code", "details", "errorid"}} in that
    order; a 404 is the body of Hostway's DetachVolumeFromServer page
    (docs/api.md: "Resource not found", details ""); any
    other error carries the specific reason (Nova's text) in details, and the
    409 key is `conflict`. HOSTWAY_MESSAGE, when given, is the exact message.
    """
    if dialect(kind) == "nova":
        f = assert_nova_error(resp, status, NOVA_NAMES[status])
        if isinstance(nova_message, re.Pattern):
            assert nova_message.fullmatch(f["message"]), resp.text
        elif nova_message is not None:
            assert f["message"] == nova_message, resp.text
        return f
    if status == 404:
        return assert_hostway_error(resp, 404, "itemNotFound", "Resource not found", "")
    name = "conflict" if status == 409 else NOVA_NAMES[status]
    f = assert_hostway_error(resp, status, name, hostway_message)
    if isinstance(nova_message, re.Pattern):
        assert nova_message.fullmatch(f["details"]), resp.text
    elif nova_message is not None:
        assert f["details"] == nova_message, resp.text
    return f


def assert_empty(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert resp.content == b"", resp.content
    assert_request_ids(resp)


# -- check tables ------------------------------------------------------------------

class Row:
    """One row of a check table: how to set it up, the request, and what to expect.

    setup(env) -> ctx dict (ids used by the request; `servers`/`volumes` list
    the ids whose state must not change). expect(kind, ctx) -> (status,
    nova_message, hostway_message or None).
    """

    def __init__(self, rid, setup, expect, body=None, mv=None, who="a", kinds=KINDS,
                 raw=None, query=""):
        self.id, self.setup, self.expect = rid, setup, expect
        self.body, self.mv, self.who, self.kinds, self.raw = body, mv, who, kinds, raw
        self.query = query


def cases(rows):
    """(row, kind) parameters: each row on every prefix of its dialects."""
    return [pytest.param(r, k, id=f"{r.id}-{k}") for r in rows for k in KINDS if k in r.kinds]


def e(status, nova, hostway=None):
    return lambda kind, c: (status, nova(c) if callable(nova) else nova, hostway)


def e_regex(status, pattern):
    return e(status, re.compile(pattern))


def e_not_digits(name, value):
    """Nova's query schema on a list's limit or offset (every value must be
    digits, at least one; multi_params(non_negative_integer)): its 400 for the
    first value that is not, in both dialects."""
    why = "'' is too short" if value == "" else f"{value!r} does not match '^[0-9]*$'"
    return e(400, f"Invalid input for query parameters {name}. Value: {value}. {why}")


def run_refused(env, row, kind, method, path_fn):
    ctx = row.setup(env)
    before = env.snapshot(ctx["servers"], ctx["volumes"])
    url = env.url(kind, path_fn(ctx) + row.query)
    s = env.s(row.who, row.mv if dialect(kind) == "nova" else None)
    if row.raw is not None:
        r = s.request(method, url, data=row.raw, headers={"Content-Type": "application/json"})
    elif row.body is not None:
        r = s.request(method, url, json=row.body(ctx) if callable(row.body) else row.body)
    else:
        r = s.request(method, url)
    status, nova_msg, hostway_msg = row.expect(kind, ctx)
    assert_fault(kind, r, status, nova_msg, hostway_msg)
    after = env.snapshot(ctx["servers"], ctx["volumes"])
    assert after == before, "a refused request changed the state"
    return ctx


__all__ = ["KINDS", "HOSTWAY_KINDS", "NOVA_KINDS", "DEVICE_PATTERN", "Env", "make_env",
           "assert_fault", "assert_empty", "dialect", "pfx", "uid", "UUID4", "ordered",
           "Row", "cases", "e", "e_regex", "run_refused"]
