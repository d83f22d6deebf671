"""Concurrency and crash consistency of attachments (issue 3 item 3;
docs/api.md, decision D4).

Many clients attach, detach and swap at once on a few servers and volumes,
in both dialects. Then:
  * every response is one the contract allows (no 5xx, nothing unexpected);
  * each volume is attached at most once; a volume is in-use iff it has an
    attachment; the server's volumes_attached agrees with its attachments;
  * the final attachments are exactly what the acknowledged requests imply;
  * after kill -9 and a restart, every acknowledged change is still there.
Readers running alongside check that no single response ever shows one half
of a change (a volume in-use without its attachment, or the reverse).
Races: two clients attaching one volume to two servers at the same moment,
two detaching one attachment, two asking for one device: exactly one wins.
"""
import collections
import itertools
import random
import threading
import time

import requests

from apiutil import basic
from conftest_volumes import KINDS, assert_fault, dialect, pfx

N_SERVERS, N_VOLUMES, N_THREADS, OPS_PER_THREAD = 4, 6, 8, 150


class Cluster:
    """A daemon with one account: a member, an admin, servers and volumes."""

    def __init__(self, daemon, n_servers=N_SERVERS, n_volumes=N_VOLUMES):
        self.d = daemon
        self.acct = daemon.add_account("conc")
        self.user, self.pw = daemon.add_user(self.acct)
        ops = daemon.add_account("conc-ops")
        self.admin_user, self.admin_pw = daemon.add_user(ops, role="admin")
        s = self.session()
        self.servers, self.volumes = [], []
        for i in range(n_servers):
            r = s.post(self.d.base + "/v2.1/servers", json={"server": {
                "name": f"c{i}", "flavorRef": "1", "imageRef": "img"}})
            assert r.status_code == 202, r.text
            self.servers.append(r.json()["server"]["id"])
        for _ in range(n_volumes):
            r = s.post(self.d.base + "/volumes", json={"volume": {"size": 1}})
            assert r.status_code == 200, r.text
            self.volumes.append(r.json()["volume"]["id"])

    def session(self, admin=False, mv=None):
        s = requests.Session()
        s.headers["Authorization"] = (basic(self.admin_user, self.admin_pw) if admin
                                      else basic(self.user, self.pw))
        if mv:
            s.headers["OpenStack-API-Version"] = f"compute {mv}"
        return s

    def url(self, kind, path):
        return self.d.base + pfx(kind, self.acct) + path

    def state(self):
        """{vid: sid or None} from the servers' attachment lists, checking the
        invariants on the way."""
        s = self.session(mv="2.79")
        where = {}
        for sid in self.servers:
            r = s.get(self.d.base + f"/v2.1/servers/{sid}/os-volume_attachments")
            assert r.status_code == 200, r.text
            atts = r.json()["volumeAttachments"]
            devices = [a["device"] for a in atts]
            assert len(devices) == len(set(devices)), f"one device twice on {sid}: {atts}"
            for a in atts:
                assert a["volumeId"] not in where, \
                    f"volume {a['volumeId']} attached to {where[a['volumeId']]} and {sid}"
                where[a["volumeId"]] = sid
            r = s.get(self.d.base + f"/v2.1/servers/{sid}")
            va = {v["id"] for v in r.json()["server"]["os-extended-volumes:volumes_attached"]}
            assert va == {a["volumeId"] for a in atts}, (sid, va, atts)
        for vid in self.volumes:
            r = s.get(self.d.base + f"/volumes/{vid}")
            assert r.status_code == 200, r.text
            v = r.json()["volume"]
            if vid in where:
                assert v["status"] == "in-use", v
                assert [a["server_id"] for a in v["attachments"]] == [where[vid]], v
            else:
                assert v["status"] == "available", v
                assert v["attachments"] == [], v
        return {vid: where.get(vid) for vid in self.volumes}


def check_volume_list(resp, kind):
    """One response, one snapshot: in-use iff an attachment is shown."""
    for v in resp.json()["volumes"]:
        atts = [a for a in v["attachments"] if a]      # Nova shows [{}] when unattached
        if v["status"] == "in-use":
            assert len(atts) == 1, (kind, v)
        else:
            assert v["status"] == "available" and not atts, (kind, v)


class Worker(threading.Thread):
    """Random attach/detach (and, for the admin, swap) requests. Records each
    acknowledged change; stops at the first connection error (the daemon was
    killed), remembering the request that had no answer."""

    def __init__(self, cl, n, ops, admin=False, stop=None):
        super().__init__(daemon=True)
        self.cl, self.rng, self.ops, self.admin = cl, random.Random(n), ops, admin
        self.acked, self.unexpected, self.in_flight, self.done = [], [], None, 0
        self.stop = stop or threading.Event()
        self.s = cl.session(admin=admin)
        self.s85 = cl.session(admin=admin, mv="2.85")

    def one(self):
        cl, rng = self.cl, self.rng
        kind = rng.choice(KINDS)
        sid, vid = rng.choice(cl.servers), rng.choice(cl.volumes)
        op = rng.choice(["attach", "detach", "swap"] if self.admin else ["attach", "detach"])
        if op == "attach":
            self.in_flight = [("attach", vid, sid)]
            r = self.s.post(cl.url(kind, f"/servers/{sid}/os-volume_attachments"),
                            json={"volumeAttachment": {"volumeId": vid}})
            if r.status_code == 200:
                assert r.json()["volumeAttachment"]["volumeId"] == vid
                return [("attach", vid, sid)]
            ok = (400, "badRequest") if dialect(kind) == "nova" else (409, "conflict")
            if (r.status_code, next(iter(r.json()), None)) == ok and \
                    "is already attached to instances" in r.text:
                return []
        elif op == "detach":
            self.in_flight = [("detach", vid, sid)]
            r = self.s.delete(cl.url(kind, f"/servers/{sid}/os-volume_attachments/{vid}"))
            if r.status_code == (202 if dialect(kind) == "nova" else 204):
                return [("detach", vid, sid)]
            if r.status_code == 404 and (dialect(kind) == "hostway" or "is not attached" in r.text):
                return []
        else:
            new = rng.choice(cl.volumes)
            self.in_flight = [("detach", vid, sid), ("attach", new, sid)]
            s = self.s85 if dialect(kind) == "nova" else self.s
            r = s.put(cl.url(kind, f"/servers/{sid}/os-volume_attachments/{vid}"),
                      json={"volumeAttachment": {"volumeId": new}})
            if r.status_code == 202:
                return [] if new == vid else [("detach", vid, sid), ("attach", new, sid)]
            if r.status_code == 404 and (dialect(kind) == "hostway"
                                         or "No volume Block Device Mapping" in r.text):
                return []
            if r.status_code == 400 and "Invalid volume" in r.text:
                return []
        self.unexpected.append((op, kind, sid, vid, r.status_code, r.text[:300]))
        return []

    def run(self):
        for _ in range(self.ops):
            if self.stop.is_set():
                break
            try:
                changes = self.one()
            except requests.RequestException as e:
                self.error = repr(e)
                return          # killed (or broken): self.in_flight stays as it was
            except Exception as e:              # noqa: BLE001 (reported by the test)
                self.unexpected.append(("exception", repr(e)))
                changes = []
            self.in_flight = None
            self.acked.extend(changes)
            self.done += 1


class Reader(threading.Thread):
    def __init__(self, cl, stop):
        super().__init__(daemon=True)
        self.cl, self.stop, self.errors, self.reads = cl, stop, [], 0

    def run(self):
        s = self.cl.session()
        while not self.stop.is_set():
            for kind, path in (("nova", "/os-volumes/detail"), ("hostway", "/volumes")):
                try:
                    r = s.get(self.cl.url(kind, path))
                    assert r.status_code == 200, r.text
                    check_volume_list(r, kind)
                    self.reads += 1
                except requests.ConnectionError:
                    return
                except AssertionError as e:
                    self.errors.append(str(e))


def expected_state(cl, acked):
    """What the acknowledged changes imply: per (volume, server) the attaches
    and detaches alternate, so the net count is 0 or 1, and at most one
    server holds a volume."""
    net = collections.Counter()
    for op, vid, sid in acked:
        net[(vid, sid)] += 1 if op == "attach" else -1
    final = {vid: None for vid in cl.volumes}
    for (vid, sid), n in net.items():
        assert n in (0, 1), f"{vid} on {sid}: {n} more attaches than detaches acknowledged"
        if n == 1:
            assert final[vid] is None, f"{vid} acknowledged as attached to {final[vid]} and {sid}"
            final[vid] = sid
    return final


def run_workers(cl, n_threads, ops, kill_after=None):
    stop = threading.Event()
    workers = [Worker(cl, n, ops, admin=(n == 0), stop=stop) for n in range(n_threads)]
    readers = [Reader(cl, stop) for _ in range(2)]
    for t in workers + readers:
        t.start()
    if kill_after is not None:
        time.sleep(kill_after)
        cl.d.kill9()            # with requests in flight
    for w in workers:
        w.join(timeout=60)
        assert not w.is_alive(), "a worker hung"
    stop.set()
    for r in readers:
        r.join(timeout=30)
    return workers, readers


def test_parallel_attach_detach_swap_then_kill9(daemon):
    cl = Cluster(daemon)
    t0 = time.monotonic()
    workers, readers = run_workers(cl, N_THREADS, OPS_PER_THREAD)
    daemon.kill9()                        # straight after the last acknowledgement
    elapsed = time.monotonic() - t0
    unexpected = [u for w in workers for u in w.unexpected]
    assert not unexpected, f"unexpected responses: {unexpected[:5]}"
    assert all(w.done == OPS_PER_THREAD for w in workers), \
        [getattr(w, "error", None) for w in workers]
    errors = [e for r in readers for e in r.errors]
    assert not errors, f"a reader saw half a change: {errors[:3]}"
    assert all(r.reads > 0 for r in readers)
    acked = [c for w in workers for c in w.acked]
    attaches = sum(1 for op, _, _ in acked if op == "attach")
    assert attaches >= 20, f"only {attaches} attaches succeeded in {elapsed:.1f}s"
    want = expected_state(cl, acked)
    daemon.start()
    assert cl.state() == want
    # and the state is usable: everything detaches, and every volume is free
    s = cl.session()
    for vid, sid in want.items():
        if sid:
            r = s.delete(cl.url("nova", f"/servers/{sid}/os-volume_attachments/{vid}"))
            assert r.status_code == 202, r.text
    assert cl.state() == {vid: None for vid in cl.volumes}


def possible_states(cl, acked, in_flight):
    """Every final state allowed when the unanswered requests may or may not
    have happened (each unanswered swap happened whole or not at all)."""
    base = expected_state(cl, acked)
    results = []
    pending = [ops for ops in in_flight if ops]
    for order in itertools.permutations(range(len(pending))):
        for mask in range(1 << len(pending)):
            st = dict(base)
            for i in order:
                if not mask & (1 << i):
                    continue
                trial, ok = dict(st), True
                for op, vid, sid in pending[i]:
                    if op == "attach" and trial[vid] is None:
                        trial[vid] = sid
                    elif op == "detach" and trial[vid] == sid:
                        trial[vid] = None
                    else:
                        ok = False
                if ok:
                    st = trial
            if st not in results:
                results.append(st)
    return results


def test_kill9_under_load_keeps_every_acknowledged_change(daemon):
    """kill -9 while requests are in flight: the acknowledged changes are all
    there after the restart; the unanswered ones happened whole or not at all."""
    cl = Cluster(daemon)
    workers, _ = run_workers(cl, 6, 10 ** 6, kill_after=0.8)     # runs until killed
    unexpected = [u for w in workers for u in w.unexpected]
    assert not unexpected, f"unexpected responses: {unexpected[:5]}"
    acked = [c for w in workers for c in w.acked]
    assert len(acked) >= 10, "too few acknowledged changes before the kill"
    in_flight = [w.in_flight for w in workers if w.in_flight]
    assert in_flight, "the kill found no request in flight"
    daemon.start()
    got = cl.state()
    allowed = possible_states(cl, acked, in_flight)
    assert got in allowed, (got, allowed[:3], in_flight)


def race(n, fn):
    barrier = threading.Barrier(n)
    out = [None] * n

    def run(i):
        barrier.wait()
        out[i] = fn(i)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_two_clients_attach_one_volume_to_two_servers(daemon):
    """Issue 3 item 3: exactly one succeeds, the other gets the already-attached
    error of its dialect (Nova 400, Hostway 409 conflict/VolumeAlreadyAttached)."""
    cl = Cluster(daemon, n_servers=2, n_volumes=0)
    x, y = cl.servers
    sessions = [cl.session(), cl.session()]
    kinds = ["nova", "hostway"]
    s = cl.session()
    for round_ in range(25):
        vid = s.post(cl.d.base + "/volumes", json={"volume": {"size": 1}}).json()["volume"]["id"]
        cl.volumes.append(vid)
        order = [(x, y), (y, x)][round_ % 2]
        k = kinds if round_ % 4 < 2 else kinds[::-1]

        def attach(i):
            return sessions[i].post(cl.url(k[i], f"/servers/{order[i]}/os-volume_attachments"),
                                    json={"volumeAttachment": {"volumeId": vid}})

        rs = race(2, attach)
        wins = [i for i, r in enumerate(rs) if r.status_code == 200]
        assert len(wins) == 1, [(r.status_code, r.text) for r in rs]
        w, lose = wins[0], 1 - wins[0]
        winner = order[w]
        msg = f"Invalid volume: volume {vid} is already attached to instances: {winner}"
        if k[lose] == "nova":
            assert_fault("nova", rs[lose], 400, msg)
        else:
            assert_fault("hostway", rs[lose], 409, msg, "VolumeAlreadyAttached")
        assert cl.state()[vid] == winner
    daemon.kill9()
    daemon.start()
    st = cl.state()
    assert all(st[v] is not None for v in cl.volumes)


def test_two_clients_detach_one_attachment(daemon):
    """Exactly one detach succeeds; the other is 404 not attached."""
    cl = Cluster(daemon, n_servers=1, n_volumes=1)
    sid, vid = cl.servers[0], cl.volumes[0]
    sessions = [cl.session(), cl.session()]
    for round_ in range(20):
        r = sessions[0].post(cl.url("nova", f"/servers/{sid}/os-volume_attachments"),
                             json={"volumeAttachment": {"volumeId": vid}})
        assert r.status_code == 200, r.text
        k = ["nova", "hostway"] if round_ % 2 else ["hostway", "nova"]
        rs = race(2, lambda i: sessions[i].delete(
            cl.url(k[i], f"/servers/{sid}/os-volume_attachments/{vid}")))
        ok = [i for i, r in enumerate(rs) if r.status_code in (202, 204)]
        assert len(ok) == 1, [(r.status_code, r.text) for r in rs]
        lose = 1 - ok[0]
        assert_fault(k[lose], rs[lose], 404, f"Instance {sid} is not attached to volume {vid}")
        assert cl.state() == {vid: None}


def test_two_clients_ask_for_one_device(daemon):
    """Two volumes, one server, the same device at once: one wins, the other
    gets 409 device in use."""
    cl = Cluster(daemon, n_servers=1, n_volumes=0)
    sid = cl.servers[0]
    sessions = [cl.session(), cl.session()]
    s = cl.session()
    for round_ in range(15):
        pair = [s.post(cl.d.base + "/volumes", json={"volume": {"size": 1}}).json()["volume"]["id"]
                for _ in range(2)]
        cl.volumes += pair
        dev = f"/dev/vd{'bcdefghijklmnop'[round_]}"
        k = ["nova", "hostway"] if round_ % 2 else ["hostway", "nova"]
        rs = race(2, lambda i: sessions[i].post(
            cl.url(k[i], f"/servers/{sid}/os-volume_attachments"),
            json={"volumeAttachment": {"volumeId": pair[i], "device": dev}}))
        ok = [i for i, r in enumerate(rs) if r.status_code == 200]
        assert len(ok) == 1, [(r.status_code, r.text) for r in rs]
        lose = 1 - ok[0]
        assert_fault(k[lose], rs[lose], 409, f"The supplied device path ({dev}) is in use.")
        st = cl.state()
        assert st[pair[ok[0]]] == sid and st[pair[lose]] is None
