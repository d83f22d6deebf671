"""Helpers for the three-node suite: a tenant, the state as one node shows
it, and a write load spread across the nodes whose every answer is checked
against what the client knows.

The load (Worker) is built so that the expected final state is exact: each
worker is the only client of its own volumes (servers are shared by all),
and sends its requests one after another, each to the next node in turn. So
every volume has one sequential history, seen through all the nodes, and the
worker tracks the set of states the volume may be in:
  * an acknowledged attach to S: the volume was free, and is now on S;
  * an acknowledged detach from S: it was on S, and is now free;
  * a refused attach ("already attached to instances: X"): it is on X;
  * a refused detach (404, not attached): it is not on S;
  * an unanswered request (the node died, the connection broke) or a 503
    (which may be "the COMMIT's answer never came": docs/scale-out.md): it
    happened or not, so both states stay possible.
An answer that contradicts the possible states is a lost or phantom change,
reported as a violation; at the end the database (read through a node's
API) must hold, for every volume, one of its possible states. After an
acknowledged change and no unanswered request since, that is exactly one.
"""
import random
import re
import threading
import time
import uuid

import requests

from apiutil import basic
from conftest_volumes import KINDS, assert_fault, dialect, pfx

REQUEST_TIMEOUT = 30        # a client timeout would leave a request in doubt: none expected


class Tenant:
    """An account without quotas, a member and an admin (made with the CLI)."""

    def __init__(self, ns):
        self.ns = ns
        node = ns.cli_node
        self.acct = node.add_account("nodes-" + uuid.uuid4().hex[:6])
        self.user, self.pw = node.add_user(self.acct)
        ops = node.add_account("nodes-ops-" + uuid.uuid4().hex[:6])
        self.admin_user, self.admin_pw = node.add_user(ops, role="admin")

    def session(self, node, admin=False, mv=None):
        s = requests.Session()
        s.headers["Authorization"] = (basic(self.admin_user, self.admin_pw) if admin
                                      else basic(self.user, self.pw))
        if mv:
            s.headers["OpenStack-API-Version"] = f"compute {mv}"
        s.base = node.base
        return s

    def url(self, node, kind, path):
        return node.base + pfx(kind, self.acct) + path

    def make_servers(self, n):
        """N servers, each made through the next node."""
        out = []
        for i in range(n):
            node = self.ns.nodes[i % len(self.ns.nodes)]
            r = self.session(node).post(node.base + "/v2.1/servers", json={"server": {
                "name": f"n{i}", "flavorRef": "1",
                "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}})
            assert r.status_code == 202, (r.status_code, r.text)
            out.append(r.json()["server"]["id"])
        return out

    def make_volume(self, node):
        r = self.session(node).post(node.base + "/volumes", json={"volume": {"size": 1}})
        assert r.status_code == 200, (r.status_code, r.text)
        return r.json()["volume"]["id"]


def get_200(s, url, deadline=None):
    """GET URL: must be 200. With DEADLINE (time.monotonic()), a 503 or a
    broken connection is tried again until then (a node whose connection to
    PostgreSQL is being made again)."""
    while True:
        try:
            r = s.get(url, timeout=REQUEST_TIMEOUT)
        except requests.ConnectionError:
            if deadline is None or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
            continue
        if r.status_code == 503 and deadline is not None and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        return r


def read_state(tenant, node, servers, volumes, deadline=None):
    """{volume: server or None} as NODE shows it: the servers' attachment
    lists (Nova 2.79) and each volume (Hostway /volumes), checking on the way
    that they agree: a volume attached at most once, in-use iff attached,
    volumes_attached equal to the attachment list. Also returns the
    attachments' devices: {volume: (server, device) or None}."""
    s = tenant.session(node, mv="2.79")
    where, detail = {}, {}
    for sid in servers:
        r = get_200(s, node.base + f"/v2.1/servers/{sid}/os-volume_attachments", deadline)
        atts = r.json()["volumeAttachments"]
        devices = [a["device"] for a in atts]
        assert len(devices) == len(set(devices)), f"one device twice on {sid}: {atts}"
        for a in atts:
            assert a["volumeId"] not in where, \
                f"volume {a['volumeId']} attached to {where[a['volumeId']]} and {sid}"
            where[a["volumeId"]] = sid
            detail[a["volumeId"]] = (sid, a["device"])
        r = get_200(s, node.base + f"/v2.1/servers/{sid}", deadline)
        va = {v["id"] for v in r.json()["server"]["os-extended-volumes:volumes_attached"]}
        assert va == {a["volumeId"] for a in atts}, (sid, va, atts)
    for vid in volumes:
        r = get_200(s, node.base + f"/volumes/{vid}", deadline)
        v = r.json()["volume"]
        if vid in where:
            assert v["status"] == "in-use", v
            assert [a["server_id"] for a in v["attachments"]] == [where[vid]], v
        else:
            assert v["status"] == "available", v
            assert v["attachments"] == [], v
    return {vid: where.get(vid) for vid in volumes}, {vid: detail.get(vid) for vid in volumes}


def db_state(ns, volumes):
    """{volume: (server, device)} straight from the database's attachments table."""
    out = {vid: None for vid in volumes}
    for line in ns.psql("SELECT volume_id, server_id, device FROM attachments").splitlines():
        vid, sid, dev = line.split("|")
        if vid in out:
            assert out[vid] is None, f"{vid} has two attachment rows"
            out[vid] = (sid, dev)
    return out


ALREADY = re.compile(r"Invalid volume: volume (\S+) is already attached to instances: (\S+)$")


class Record:
    __slots__ = ("worker", "node", "kind", "op", "vid", "sid", "t0", "t1", "status",
                 "outcome", "text")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def __repr__(self):
        return (f"<{self.op} {self.vid} {'to' if self.op == 'attach' else 'from'} {self.sid} "
                f"via node {self.node} ({self.kind}) t0={self.t0} t1={self.t1}: "
                f"{self.status} {self.outcome} {(self.text or '')[:300]!r}>")


class Worker(threading.Thread):
    """Attaches and detaches its own VOLUMES on the shared SERVERS, each
    request to the next node of `allowed()` (the nodes the test lets it use)."""

    def __init__(self, n, tenant, nodes, servers, volumes, stop, allowed):
        super().__init__(daemon=True, name=f"worker-{n}")
        self.n, self.tenant, self.nodes = n, tenant, nodes
        self.servers, self.volumes = servers, volumes
        self.stop, self.allowed = stop, allowed
        self.rng = random.Random(1000 + n)
        self.poss = {vid: {None} for vid in volumes}   # the states each volume may be in
        self.records, self.violations, self.unexpected = [], [], []
        self.sessions = {}
        self.turn = n

    def session(self, node):
        if node.index not in self.sessions:
            self.sessions[node.index] = self.tenant.session(node)
        return self.sessions[node.index]

    def pick(self, vid):
        """An operation for VID: mostly the one that should succeed, sometimes
        one that must be refused, so that refusals are checked too."""
        poss, rng = self.poss[vid], self.rng
        others = lambda s: [x for x in self.servers if x != s] or self.servers  # noqa: E731
        if len(poss) > 1:                   # in doubt: the answer tells
            return ("attach", rng.choice(self.servers))
        (cur,) = poss
        roll = rng.random()
        if cur is None:
            return ("attach", rng.choice(self.servers)) if roll < 0.9 else \
                ("detach", rng.choice(self.servers))
        if roll < 0.8:
            return ("detach", cur)
        if roll < 0.9:
            return ("attach", rng.choice(self.servers))
        return ("detach", rng.choice(others(cur)))

    def one(self):
        t0 = time.monotonic()       # before the node is chosen: see Load.avoid
        allowed = self.allowed()
        node = self.nodes[allowed[self.turn % len(allowed)]]
        self.turn += 1
        kind = KINDS[self.rng.randrange(len(KINDS))]
        vid = self.rng.choice(self.volumes)
        op, sid = self.pick(vid)
        rec = Record(worker=self.n, node=node.index, kind=kind, op=op, vid=vid, sid=sid, t0=t0)
        s = self.session(node)
        url = self.tenant.url(node, kind, f"/servers/{sid}/os-volume_attachments")
        try:
            if op == "attach":
                r = s.post(url, json={"volumeAttachment": {"volumeId": vid}},
                           timeout=REQUEST_TIMEOUT)
            else:
                r = s.delete(f"{url}/{vid}", timeout=REQUEST_TIMEOUT)
        except requests.RequestException as e:
            rec.t1, rec.status, rec.outcome = time.monotonic(), None, "unanswered"
            rec.text = repr(e)
            # a node that died, or a connection that broke: it may have happened
            self.sessions.pop(node.index, None)
            self.records.append(rec)
            self.apply(rec, None)
            return
        rec.t1, rec.status, rec.text = time.monotonic(), r.status_code, r.text
        rec.outcome, holder = self.classify(rec, r)
        self.records.append(rec)
        self.apply(rec, holder)
        if r.status_code == 503:
            time.sleep(0.02)        # as a client would (Retry-After), not spinning

    def classify(self, rec, r):
        """(acked | refused | unavailable | unexpected, the holder a refusal names)."""
        kind, vid, sid = rec.kind, rec.vid, rec.sid
        if r.status_code == 503:
            return "unavailable", None
        if rec.op == "attach":
            if r.status_code == 200:
                a = r.json()["volumeAttachment"]
                if a["volumeId"] == vid and a["serverId"] == sid:
                    return "acked", None
                return "unexpected", None
            want = 400 if dialect(kind) == "nova" else 409
            if r.status_code == want:
                try:
                    f = assert_fault(kind, r, want, ALREADY,
                                     None if dialect(kind) == "nova" else "VolumeAlreadyAttached")
                except AssertionError:
                    return "unexpected", None
                m = ALREADY.match(f["message"] if dialect(kind) == "nova" else f["details"])
                if m.group(1) == vid:
                    return "refused", m.group(2)
            return "unexpected", None
        if r.status_code == (202 if dialect(kind) == "nova" else 204):
            return ("acked", None) if r.content == b"" else ("unexpected", None)
        if r.status_code == 404:
            try:
                assert_fault(kind, r, 404, f"Instance {sid} is not attached to volume {vid}")
            except AssertionError:
                return "unexpected", None
            return "refused", None
        return "unexpected", None

    def apply(self, rec, holder):
        """Update the possible states of the volume by one answer."""
        poss, sid = self.poss[rec.vid], rec.sid

        def violation(why):
            self.violations.append(f"{why}: {rec}; possible before: {sorted(map(str, poss))}; "
                                   f"history: {self.history(rec.vid)[-6:]}")
        if rec.outcome == "unexpected":
            self.unexpected.append(rec)
            new = set(poss) | ({sid} if rec.op == "attach" and None in poss else set()) \
                | ({None} if rec.op == "detach" and sid in poss else set())
        elif rec.outcome in ("unanswered", "unavailable"):
            new = set(poss)
            if rec.op == "attach" and None in poss:
                new.add(sid)
            if rec.op == "detach" and sid in poss:
                new.add(None)
        elif rec.op == "attach" and rec.outcome == "acked":
            if None not in poss:
                violation("attach acknowledged while the volume was attached")
            new = {sid}
        elif rec.op == "attach":
            if holder not in poss:
                violation(f"attach refused as attached to {holder}")
            new = {holder}
        elif rec.outcome == "acked":
            if sid not in poss:
                violation("detach acknowledged while the volume was not on that server")
            new = {None}
        else:
            new = set(poss) - {sid}
            if not new:
                violation("detach refused (not attached) while it was attached there")
                new = {None} | set(self.servers)
        self.poss[rec.vid] = new

    def history(self, vid):
        return [r for r in self.records if r.vid == vid]

    def run(self):
        while not self.stop.is_set():
            try:
                self.one()
            except Exception as e:              # noqa: BLE001 (reported by the test)
                self.unexpected.append(Record(worker=self.n, op="exception", text=repr(e),
                                              t0=time.monotonic(), t1=time.monotonic()))
                time.sleep(0.01)


class Load:
    """WORKERS_PER_NODE x nodes workers, each with VOLUMES_EACH volumes of its own."""

    def __init__(self, ns, tenant, n_servers=4, n_workers=6, volumes_each=3):
        self.ns, self.tenant = ns, tenant
        self.servers = tenant.make_servers(n_servers)
        self.stop = threading.Event()
        self.allowed_nodes = list(range(len(ns.nodes)))
        self.workers = []
        for n in range(n_workers):
            vols = [tenant.make_volume(ns.nodes[(n + i) % len(ns.nodes)])
                    for i in range(volumes_each)]
            self.workers.append(Worker(n, tenant, ns.nodes, self.servers, vols, self.stop,
                                       lambda: self.allowed_nodes))
        self.volumes = [v for w in self.workers for v in w.volumes]

    def start(self):
        for w in self.workers:
            w.start()

    def avoid(self, index):
        """From now on no worker sends a new request to node INDEX: a request
        to it with t0 after this returned is a bug of the test."""
        self.allowed_nodes = [i for i in self.allowed_nodes if i != index]

    def finish(self):
        self.stop.set()
        for w in self.workers:
            w.join(timeout=2 * REQUEST_TIMEOUT + 10)
        assert not any(w.is_alive() for w in self.workers), "a worker hung"

    def records(self):
        return sorted((r for w in self.workers for r in w.records), key=lambda r: r.t0)

    def violations(self):
        return [v for w in self.workers for v in w.violations]

    def unexpected(self):
        return [u for w in self.workers for u in w.unexpected]

    def possible(self):
        return {vid: p for w in self.workers for vid, p in w.poss.items()}

    def check_final(self, via, deadline=None):
        """Every node in VIA shows the same state, the database's table says
        the same, and each volume is in one of its possible states. Returns
        how many volumes had exactly one possible state."""
        states = []
        for node in via:
            st, detail = read_state(self.tenant, node, self.servers, self.volumes, deadline)
            states.append((node.index, st, detail))
        first = states[0]
        for other in states[1:]:
            assert other[2] == first[2], \
                f"node {first[0]} and node {other[0]} disagree: {first[2]} != {other[2]}"
        st, detail = first[1], first[2]
        table = db_state(self.ns, self.volumes)
        assert table == detail, (table, detail)
        possible = self.possible()
        wrong = {vid: (st[vid], sorted(map(str, possible[vid])))
                 for vid in self.volumes if st[vid] not in possible[vid]}
        assert not wrong, "volumes whose state no answered history allows " \
            f"(volume: (actual, possible)): {wrong}; histories: " + \
            "; ".join(f"{vid}: {self.history(vid)[-5:]}" for vid in wrong)
        return sum(1 for vid in self.volumes if len(possible[vid]) == 1)

    def history(self, vid):
        return [r for w in self.workers for r in w.records if r.vid == vid]
