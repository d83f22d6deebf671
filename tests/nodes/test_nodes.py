"""Three attachd nodes on one PostgreSQL database, clients spread across them
(docs/scale-out.md).

  1. racing attaches of one volume through all three nodes: exactly one
     wins, every other gets its dialect's already-attached refusal, and the
     database, read directly and through every node, has that one attachment;
  2. a password changed, and a user deleted, with the CLI: every node stops
     taking the old credentials within a second;
  3. kill -9 of one node under write load: the other two keep serving, and
     every acknowledged change is what the database holds;
  4. a PostgreSQL restart under load (the module's own cluster): no 500,
     503 while it is away, every node serves again by itself, nothing
     acknowledged lost;
  5. one process at a time drives a hypervisor for the database, under a
     lease: a second libvirt node refuses to start, a standby waits and takes
     over once the first is gone; the holder keeps its lease over a
     PostgreSQL restart, and exits at once when it cannot confirm it.

The driver is `none` everywhere but in 5: state only. So there are no
pending hypervisor operations for a surviving node to finish after a kill in
3; what must survive is the database's state, and that is what 3 and 4
check. A standby finishing a killed holder's detach on a real domain is
tests/libvirt's test_standby_finishes_the_holders_detach.
"""
import socket
import subprocess
import threading
import time
import uuid

import pytest
import requests

from apiutil import assert_request_ids, assert_unauthorized, basic
from attachd import binary
from conftest_volumes import HOSTWAY_KINDS, KINDS, NOVA_KINDS, assert_fault, dialect
from nodeutil import REQUEST_TIMEOUT, Load, Tenant, read_state

ROUNDS = 30
CLIENTS = 6                 # two per node


def race(fns):
    """Run each of FNS at once (a barrier), each in its own thread; their results."""
    barrier = threading.Barrier(len(fns))
    out = [None] * len(fns)

    def run(i):
        barrier.wait()
        try:
            out[i] = fns[i]()
        except Exception as e:      # noqa: BLE001 (the test reports it)
            out[i] = e
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=2 * REQUEST_TIMEOUT)
    assert not any(t.is_alive() for t in ts), "a racing request hung"
    return out


def describe(rs):
    return [repr(r) if isinstance(r, Exception) else (r.status_code, r.text[:300]) for r in rs]


def test_racing_attaches_through_three_nodes(nodes):
    """Each round, a fresh volume; six clients (two per node) POST its attach
    at once, to one server or to three different ones, in the Hostway
    dialect, the Nova dialect, or both mixed. Exactly one wins (200); every
    other gets the already-attached refusal of its dialect, naming the
    winner's server (Nova 400 badRequest, Hostway 409 conflict with
    VolumeAlreadyAttached, as tests/api expects); the attachments table has
    exactly that one row; every node shows the same attachment (server and
    device). Then it is detached through another node, and every node
    shows it free."""
    t = Tenant(nodes)
    servers = t.make_servers(3)
    ns = nodes.nodes
    sessions = [t.session(ns[i % len(ns)]) for i in range(CLIENTS)]
    for s in sessions:          # each client's credentials checked once by its node
        r = s.get(s.base + "/v2.1/servers", timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, (r.status_code, r.text)
    modes = {"hostway": 0, "nova": 0, "mixed": 0}
    for rnd in range(ROUNDS):
        vid = t.make_volume(ns[rnd % len(ns)])
        mode = ("hostway", "nova", "mixed")[rnd % 3]
        modes[mode] += 1
        if mode == "hostway":
            kinds = [HOSTWAY_KINDS[(i + rnd) % 2] for i in range(CLIENTS)]
        elif mode == "nova":
            kinds = [NOVA_KINDS[(i + rnd) % 2] for i in range(CLIENTS)]
        else:
            kinds = [KINDS[(i + rnd) % 4] for i in range(CLIENTS)]
        same = (rnd // 3) % 2 == 1
        targets = [servers[(rnd if same else i + rnd) % 3] for i in range(CLIENTS)]

        def attach(i):
            return lambda: sessions[i].post(
                t.url(ns[i % len(ns)], kinds[i], f"/servers/{targets[i]}/os-volume_attachments"),
                json={"volumeAttachment": {"volumeId": vid}}, timeout=REQUEST_TIMEOUT)
        rs = race([attach(i) for i in range(CLIENTS)])
        where = f"round {rnd} ({mode}, {'one server' if same else 'three servers'})"
        assert not any(isinstance(r, Exception) for r in rs), (where, describe(rs))
        wins = [i for i, r in enumerate(rs) if r.status_code == 200]
        assert len(wins) == 1, f"{where}: {describe(rs)}\n{nodes.logs()}"
        w = wins[0]
        winner = targets[w]
        att = rs[w].json()["volumeAttachment"]
        assert att["volumeId"] == vid and att["serverId"] == winner, att
        msg = f"Invalid volume: volume {vid} is already attached to instances: {winner}"
        for i, r in enumerate(rs):
            if i == w:
                continue
            if dialect(kinds[i]) == "nova":
                assert_fault(kinds[i], r, 400, msg)
            else:
                assert_fault(kinds[i], r, 409, msg, "VolumeAlreadyAttached")
        # the database: exactly one attachment of the volume, the winner's
        rows = nodes.psql(f"SELECT server_id, device FROM attachments "
                          f"WHERE volume_id = '{vid}'").splitlines()
        assert rows == [f"{winner}|{att['device']}"], (where, rows, att)
        # and every node shows it, the same
        for node in ns:
            _, detail = read_state(t, node, servers, [vid])
            assert detail == {vid: (winner, att["device"])}, (where, node.index, detail)
        # free it again through another node: every node sees it free
        other = ns[(rnd + 1) % len(ns)]
        r = t.session(other).delete(
            other.base + f"/v2.1/servers/{winner}/os-volume_attachments/{vid}",
            timeout=REQUEST_TIMEOUT)
        assert r.status_code == 202, (r.status_code, r.text)
        for node in ns:
            st, _ = read_state(t, node, servers, [vid])
            assert st == {vid: None}, (where, node.index, st)
    assert nodes.psql("SELECT count(*) FROM attachments").strip() == "0"
    assert all(n >= 10 for n in modes.values()), modes


def poll_until_401(node_sessions, path, deadline):
    """Ask each node (with credentials that were just revoked) until it
    answers 401, at most until DEADLINE; a node that still answers 200 is
    asked again. The nodes that never answered 401 (none, when all is well)."""
    pending = dict(node_sessions)
    answers = {}
    while pending:
        for node, s in list(pending.items()):
            r = s.get(node.base + path, timeout=REQUEST_TIMEOUT)
            if r.status_code == 401:
                assert_unauthorized(r)
                del pending[node]
            else:
                assert r.status_code == 200, (node.index, r.status_code, r.text)
                answers[node.index] = answers.get(node.index, 0) + 1
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    return {n.index: answers.get(n.index) for n in pending}


def test_password_change_and_user_deletion_seen_by_every_node(nodes):
    """The credentials are checked (and cached) by every node; then the CLI
    (attachd has no API that changes a password: `attachd user passwd` and
    `attachd user del` are the ways) changes the password: within 1 s every
    node answers the old one 401 (Hostway's plain-text challenge), and the
    new one 200; twice. A user deleted likewise: 401 on every node within
    1 s. Another user of the account is not disturbed."""
    ns = nodes.nodes
    t = Tenant(nodes)
    path = "/v2.1/servers"
    user, pw = nodes.cli_node.add_user(t.acct)

    def sessions(u, p):
        out = {}
        for n in ns:
            s = requests.Session()
            s.headers["Authorization"] = basic(u, p)
            out[n] = s
        return out

    def all_200(u, p):
        for n, s in sessions(u, p).items():
            for _ in range(2):
                r = s.get(n.base + path, timeout=REQUEST_TIMEOUT)
                assert r.status_code == 200, (n.index, u, r.status_code, r.text)
                assert_request_ids(r)

    all_200(user, pw)
    all_200(t.user, t.pw)
    for _ in range(2):
        new = uuid.uuid4().hex
        old_sessions = sessions(user, pw)
        nodes.cli("user", "passwd", user, stdin=new + "\n")
        late = poll_until_401(old_sessions, path, time.monotonic() + 1.0)
        assert not late, f"still taking the old password after 1 s (node: 200s answered): {late}"
        all_200(user, new)
        for n, s in old_sessions.items():       # and it stays refused
            assert_unauthorized(s.get(n.base + path, timeout=REQUEST_TIMEOUT))
        pw = new
    all_200(t.user, t.pw)
    # a user deleted
    gone, gone_pw = nodes.cli_node.add_user(t.acct)
    all_200(gone, gone_pw)
    gone_sessions = sessions(gone, gone_pw)
    nodes.cli("user", "del", gone)
    late = poll_until_401(gone_sessions, path, time.monotonic() + 1.0)
    assert not late, f"a deleted user still served after 1 s (node: 200s answered): {late}"
    all_200(user, pw)
    all_200(t.user, t.pw)


def wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.02)


def acked(load, pred=lambda r: True):
    return [r for r in load.records() if r.outcome == "acked" and pred(r)]


def summary(load):
    rs = load.records()
    out = {}
    for r in rs:
        key = (r.node, r.outcome, r.status)
        out[key] = out.get(key, 0) + 1
    return sorted(out.items(), key=str)


def test_kill9_one_node_under_write_load(nodes):
    """Six clients, two per node, attach and detach (each on volumes of its
    own, the servers shared, each request to the next node). One node gets
    SIGKILL mid-load; the clients then use the other two. No 5xx but 503 at
    all; on the survivors, none at all (and every request answered) from
    the kill on, and no connection of theirs lost. The survivors show the
    same state, the attachments table says the same, and every volume is in
    a state its answered history allows: after an acknowledged change with
    nothing in doubt since, exactly that change. The killed node, started again,
    shows the same."""
    t = Tenant(nodes)
    load = Load(nodes, t)
    victim = nodes.nodes[1]
    survivors = [n for n in nodes.nodes if n is not victim]
    load.start()
    try:
        wait_for(lambda: all(len(acked(load, lambda r, i=i: r.node == i)) >= 30
                             for i in range(3)), 30, "30 acknowledged changes through each node")
        t_kill = time.monotonic()
        victim.kill9()          # with requests in flight
        load.avoid(victim.index)
        t_dead = time.monotonic()
        wait_for(lambda: len(acked(load, lambda r: r.t0 > t_dead)) >= 100, 30,
                 "100 acknowledged changes through the survivors after the kill")
    finally:
        load.finish()
    recs = load.records()
    assert not load.unexpected(), f"unexpected answers: {load.unexpected()[:5]}"
    assert not load.violations(), "answers contradicting acknowledged changes:\n" + \
        "\n".join(load.violations()[:5])
    bad_5xx = [r for r in recs if r.status is not None and r.status >= 500 and r.status != 503]
    assert not bad_5xx, f"5xx other than 503: {bad_5xx[:5]}\n{nodes.logs()}"
    after = [r for r in recs if r.node != victim.index and r.t1 >= t_kill]
    assert after, "no request to the survivors after the kill"
    failed = [r for r in after if r.status is None or (r.status >= 500 and r.status != 503)]
    assert not failed, f"a survivor failed a request after the kill (killed at {t_kill}, " \
        f"gone at {t_dead}): {failed[:5]}\n{nodes.logs()}"
    # the kill did not disturb the survivors' connections to PostgreSQL
    for n in survivors:
        lost = [line for line in n.read_log().splitlines()
                if "was lost" in line or "reconnect" in line]
        assert not lost, f"node {n.index}: {lost[:3]}"
    # a 503 from a survivor: checked last, after the state
    busy = [r for r in after if r.status == 503]
    unanswered = [r for r in recs if r.status is None]
    assert all(r.node == victim.index for r in unanswered), unanswered[:5]
    assert not [r for r in recs if r.node == victim.index and r.t0 > t_dead]
    # every acknowledged change is what the database says, through each survivor
    exact = load.check_final(survivors)
    in_doubt = [r for r in recs if r.status is None or r.status == 503]
    assert exact >= len(load.volumes) - len(in_doubt), (exact, in_doubt)
    # the killed node, started again on the same database, shows the same
    victim.start()
    load.check_final(nodes.nodes)
    print(f"kill -9: {len(acked(load))} acknowledged changes, {len(unanswered)} unanswered "
          f"on the killed node, {exact}/{len(load.volumes)} volumes exact; {summary(load)}")
    # no 503 from a survivor: contention between the nodes is waited out
    # (src/store/pg_engine.c, again()), the kill costs them nothing
    assert not busy, busy[:3]


RESTARTS = 2


def wait_healthy(node, deadline):
    """Poll NODE's health check (a read and a write on the store) until it
    answers 200, at most until DEADLINE; 503 meanwhile is all it may say."""
    while True:
        try:
            r = requests.get(node.base + "/healthcheck", timeout=REQUEST_TIMEOUT)
        except requests.ConnectionError as e:
            raise AssertionError(f"node {node.index} stopped answering: {e!r}\n"
                                 + node.log_tail())
        if r.status_code == 200:
            return time.monotonic()
        assert r.status_code == 503, (node.index, r.status_code, r.text)
        assert time.monotonic() < deadline, \
            f"node {node.index} not healthy 15 s after the restart: {r.text}\n" + node.log_tail()
        time.sleep(0.05)


def wait_revoked(ns, user, old, t_changed, deadline):
    """Each node answers USER's OLD password 401 (polled): 200 only within
    1 s of the change (T_CHANGED), 503 only until DEADLINE (a node still
    making its connections again)."""
    for n in ns:
        s = requests.Session()
        s.headers["Authorization"] = basic(user, old)
        while True:
            asked = time.monotonic()
            r = s.get(n.base + "/v2.1/servers", timeout=REQUEST_TIMEOUT)
            if r.status_code == 401:
                assert_unauthorized(r)
                break
            if r.status_code == 200:
                assert asked < t_changed + 1.0, \
                    f"node {n.index} still takes the old password {asked - t_changed:.2f} s " \
                    "after it was changed\n" + n.log_tail()
            else:
                assert r.status_code == 503, (n.index, r.status_code, r.text)
                assert asked < deadline, f"node {n.index}: 503 15 s after the restart"
            time.sleep(0.02)


def test_postgresql_restart_under_load(nodes, pg_cluster):
    """The same load; mid-load the module's own cluster is restarted (fast
    shutdown: every session ended), twice. Never a 5xx other than 503 (a 503
    while PostgreSQL is away, or on a node's first use of a connection it
    has not yet found lost, is allowed), never an unanswered request.
    After each restart, without touching the nodes, each of them answers
    its health check (a read and a write) 200 within 15 s, and acknowledges
    the clients' changes again; nothing acknowledged is lost (checked as
    after the kill, through every node). And a password changed (with the
    CLI) just after the first restart, while the nodes are still making
    their connections again, is refused by every node once it serves again
    (no credential cached from before the restart outlives the change)."""
    t = Tenant(nodes)
    load = Load(nodes, t)
    ns = nodes.nodes
    timeline = []
    puser, ppw = nodes.cli_node.add_user(t.acct)
    for n in ns:                # each node checks (and caches) it before the restart
        r = t.session(n).get(n.base + "/v2.1/servers", timeout=REQUEST_TIMEOUT,
                             headers={"Authorization": basic(puser, ppw)})
        assert r.status_code == 200, (n.index, r.status_code, r.text)
    load.start()
    try:
        since = 0.0
        for k in range(RESTARTS):
            wait_for(lambda: all(len(acked(load, lambda r, i=i: r.node == i and r.t0 > since))
                                 >= 30 for i in range(3)), 30,
                     "30 acknowledged changes through each node before a restart")
            t_restart = time.monotonic()
            pg_cluster.restart()
            t_back = time.monotonic()
            deadline = t_back + 15
            if k == 0:
                new_pw = uuid.uuid4().hex
                nodes.cli("user", "passwd", puser, stdin=new_pw + "\n")
                t_changed = time.monotonic()
            recovered = {n.index: wait_healthy(n, deadline) for n in ns}
            if k == 0:
                wait_revoked(ns, puser, ppw, t_changed, deadline)
                for n in ns:
                    r = requests.get(n.base + "/v2.1/servers", timeout=REQUEST_TIMEOUT,
                                     headers={"Authorization": basic(puser, new_pw)})
                    assert r.status_code in (200, 503), (n.index, r.status_code, r.text)
                    while r.status_code == 503 and time.monotonic() < deadline:
                        time.sleep(0.05)
                        r = requests.get(n.base + "/v2.1/servers", timeout=REQUEST_TIMEOUT,
                                         headers={"Authorization": basic(puser, new_pw)})
                    assert r.status_code == 200, (n.index, r.status_code, r.text)
            # and each node acknowledges the clients' changes again, by itself
            wait_for(lambda: all(acked(load, lambda r, i=i: r.node == i and r.t0 > recovered[i])
                                 for i in range(3)),
                     max(0.1, deadline - time.monotonic()),
                     "a change acknowledged through every node after the restart")
            since = max(recovered.values())
            timeline.append((t_restart, t_back, recovered))
        wait_for(lambda: len(acked(load, lambda r: r.t0 > since)) >= 60, 30,
                 "60 acknowledged changes after every node recovered")
    finally:
        load.finish()
    recs = load.records()
    bad_5xx = [r for r in recs if r.status is not None and r.status >= 500 and r.status != 503]
    assert not bad_5xx, f"5xx other than 503: {bad_5xx[:5]}\n{nodes.logs()}"
    unanswered = [r for r in recs if r.status is None]
    assert not unanswered, f"requests unanswered: {unanswered[:5]}\n{nodes.logs()}"
    assert not load.unexpected(), f"unexpected answers: {load.unexpected()[:5]}"
    assert not load.violations(), "answers contradicting acknowledged changes:\n" + \
        "\n".join(load.violations()[:5])
    # nothing acknowledged lost, and every node agrees. A node's thread may
    # answer 503 on its first request after a restart (its reader connection
    # finds the loss on use and is made again after a backoff:
    # docs/scale-out.md), so a read answered 503 is tried again, up to 15 s.
    load.check_final(ns, deadline=time.monotonic() + 15)
    for n in ns:
        r = requests.get(n.base + "/healthcheck", timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200, (n.index, r.status_code, r.text)
    n503 = [r for r in recs if r.status == 503]
    lines = []
    for k, (t_restart, t_back, recovered) in enumerate(timeline):
        until = timeline[k + 1][0] if k + 1 < len(timeline) else float("inf")
        late = [r for r in n503 if t_restart <= r.t0 < until]
        lines.append(f"restart took {t_back - t_restart:.2f} s, nodes healthy "
                     f"{', '.join(f'{v - t_back:+.2f}' for v in recovered.values())} s after; "
                     f"last 503 {max((r.t1 for r in late), default=t_back) - t_back:+.2f} s after")
    print(f"restart x{RESTARTS}: {len(acked(load))} acknowledged changes, {len(n503)} answered "
          f"503; " + "; ".join(lines) + f"; {summary(load)}")


# The libvirt nodes' --hypervisor-lease, in seconds: short, so that a
# takeover is quick; long enough for one of its checks (every second) to
# get through on a loaded machine.
LEASE = 4
# The lease's advisory lock ("attachdh" in ASCII: src/store/pg_lease.c).
LEASE_KEY = 7022365680605881448


def libvirt_node(nodes, tmp_path, i, *more, lease=LEASE):
    """A node of NODES's database that drives libvirt's in-process test
    driver (test:///default), which stands in for a hypervisor here."""
    Node = type(nodes.nodes[0])     # conftest's
    n = Node(tmp_path / f"hv{i}", nodes.db, 10 + i)
    n.extra_args = ["--driver", "libvirt", "--libvirt-uri", "test:///default",
                    "--volume-dir", str(tmp_path / f"hv{i}" / "volumes"),
                    "--hypervisor-lease", str(lease), *more]
    return n


def spawn(n):
    """Start N's serve without waiting for it to listen (a standby does not)."""
    n.log = open(n.log_path, "ab")
    n.proc = subprocess.Popen([binary(), "serve", "--listen", f"127.0.0.1:{n.port}",
                               "--db", n.db, *n.extra_args],
                              stdout=n.log, stderr=subprocess.STDOUT)


def listening(n):
    try:
        with socket.create_connection(("127.0.0.1", n.port), timeout=0.2):
            return True
    except OSError:
        return False


def lease_holders(nodes):
    """The sessions that hold the hypervisor's lease: their application names."""
    return nodes.psql(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted "
        f"AND ((l.classid::bigint << 32) | l.objid::bigint) = {LEASE_KEY}").splitlines()


def test_one_node_drives_the_hypervisor(nodes, tmp_path):
    """Several nodes with the state-only driver share a database (the three
    of the fixture serve it), but one process at a time drives a hypervisor
    for it: a second `--driver libvirt` node refuses to start, naming the
    first, and so does a node with the state-only driver started while it
    drives it; a `--standby` one waits without serving, and once the first is
    killed (-9: nothing is released by attachd itself, the database ends
    its session) it takes the lease and serves, after the lease's time."""
    first = libvirt_node(nodes, tmp_path, 0)
    second = libvirt_node(nodes, tmp_path, 1)
    standby = libvirt_node(nodes, tmp_path, 2, "--standby")
    try:
        first.start()
        p = subprocess.run([binary(), "serve", "--listen", f"127.0.0.1:{second.port}",
                            "--db", nodes.db, *second.extra_args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "another attachd drives the hypervisor for this database" in p.stderr, p.stderr
        assert f":{first.proc.pid}\"" in p.stderr, p.stderr      # names the holder
        assert "--standby" in p.stderr, p.stderr
        # nor may a node with the state-only driver start now: it would
        # record attachments that no hypervisor makes
        p = subprocess.run([binary(), "serve", "--listen", f"127.0.0.1:{second.port}",
                            "--db", nodes.db, "--driver", "none"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
        assert "another attachd drives a hypervisor for this database" in p.stderr, p.stderr
        assert f":{first.proc.pid}\"" in p.stderr, p.stderr
        # the state-only nodes started before were not in the way, and still serve
        for n in nodes.nodes:
            r = requests.get(n.base + "/healthcheck", timeout=REQUEST_TIMEOUT)
            assert r.status_code == 200

        spawn(standby)
        wait_for(lambda: "standby: another attachd drives the hypervisor for this database"
                 in standby.read_log(), 60, "the standby says it waits")
        time.sleep(2 * LEASE)   # while the first holds the lease, it only waits
        assert standby.proc.poll() is None, standby.read_log()
        assert not listening(standby), standby.read_log()
        assert [h for h in lease_holders(nodes) if h.endswith(f":{first.proc.pid}")], \
            lease_holders(nodes)

        first.kill9()
        wait_for(lambda: listening(standby) or standby.proc.poll() is not None, 60,
                 "the standby serves")
        assert standby.proc.poll() is None, standby.read_log()
        assert "this node holds the hypervisor's lease" in standby.read_log()
        r = requests.get(standby.base + "/healthcheck", timeout=REQUEST_TIMEOUT)
        assert r.status_code == 200
        assert [h for h in lease_holders(nodes) if h.endswith(f":{standby.proc.pid}")], \
            lease_holders(nodes)
        assert standby.stop() == 0
        # and the lease went with it
        wait_for(lambda: lease_holders(nodes) == [], 10, "the lease is released")
    finally:
        for n in (first, second, standby):
            if n.proc is not None:
                n.kill9()


def test_the_lease_outlives_a_postgresql_restart(nodes, tmp_path):
    """PostgreSQL restarted ends the session that holds the lease: the
    holder takes the lock again on a new connection and keeps driving the
    hypervisor, since nobody else took it meanwhile. (The lease is longer
    than a restart takes on a loaded machine: past it, the holder would
    rightly exit.)"""
    n = libvirt_node(nodes, tmp_path, 0, lease=10)
    try:
        n.start()
        nodes.cluster.restart()
        try:
            wait_for(lambda: [h for h in lease_holders(nodes) if h.endswith(f":{n.proc.pid}")],
                     60, "the lease is held again by the same node")
        except AssertionError as e:
            raise AssertionError(f"{e}; holders {lease_holders(nodes)}\n{n.log_tail()}") from e
        assert n.proc.poll() is None, n.read_log()
        assert "its lock is taken again; this node still drives it" in n.read_log()
        wait_for(lambda: requests.get(n.base + "/healthcheck",
                                      timeout=REQUEST_TIMEOUT).status_code == 200, 60,
                 "the node serves")
        assert n.stop() == 0
    finally:
        if n.proc is not None:
            n.kill9()


def test_a_node_whose_lease_runs_out_stops(nodes, tmp_path):
    """Once a holder cannot confirm its lock for the lease's time (here its
    session is ended and the lock is taken by another session before it can
    take it again), it exits at once with status 75, finishing nothing, so
    that the new holder is alone."""
    n = libvirt_node(nodes, tmp_path, 0)
    thief = None
    try:
        n.start()
        [pid] = nodes.psql("SELECT pid FROM pg_stat_activity WHERE application_name "
                           f"LIKE 'attachd hypervisor %:{n.proc.pid}'").split()
        # a session waits for the lock first, so that it gets it the moment
        # the holder's session ends, before the holder can take it again
        thief = subprocess.Popen(["psql", "-X", "-q", "-d", nodes.db,
                                  "-c", f"SELECT pg_advisory_lock({LEASE_KEY})",
                                  "-c", "SELECT pg_sleep(120)"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: nodes.psql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            f"AND ((classid::bigint << 32) | objid::bigint) = {LEASE_KEY}").strip() == "1", 60,
                 "the other session waits for the lock")
        nodes.psql(f"SELECT pg_terminate_backend({pid}, 10000)")
        assert lease_holders(nodes) == ["psql"], lease_holders(nodes)
        rc = n.proc.wait(timeout=60)
        log = n.read_log()
        n.proc = None
        assert rc == 75, log
        assert "another attachd drives the hypervisor for this database" in log, log
        assert "its lease has run out" in log, log
        assert "stopping at once" in log, log
    finally:
        if thief is not None:
            thief.kill()
            thief.wait()
        if n.proc is not None:
            n.kill9()
