"""attachd itself (`attachd serve --driver libvirt`) against real libvirtd
and real TCG domains: the API answers, what the domains' XML and a booted
guest show, the stuck detach, libvirtd going away, crashes (kill -9) between
an intent and its completion, `attachd check`, volume files, server delete,
and operations racing on two servers.

Every test runs its own attachd (tests/support/attachd.py) on a fresh
database and volume directory; domains come from tests/support/guest.py:
one booted guest (a tiny Linux printing the serials of the disks it sees)
shared by the module where the guest's view matters, guestless domains
(no OS; they start in under a second) otherwise. At most 3 domains of this
module run at once, 128 MiB each.

Some attachds talk to libvirtd through a relay (tests/support/
libvirt_proxy.py) that the test can hold, cut or take down: that is how the
crash windows are made deterministic without freezing the shared libvirtd,
and how what attachd sends to libvirt is observed. Only the libvirtd restart
test stops libvirtd itself, and only when this session owns the daemons.

Timings are printed at the end of the run (conftest.py), never asserted:
TCG on a shared 2-core machine is slow and noisy.
"""
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests

import guest as g
import libvirt_daemons as lvd
from attachd import Attachd
from libvirt_proxy import Relay

GIB = 1 << 30
HOSTWAY, NOVA = "hostway", "nova"


# ---------------------------------------------------------------------------
# helpers: the domains' XML

def disks(domain, inactive=False):
    """{alias: {target, bus, serial, path}} of the domain's disks that have an
    alias, from its live XML (or its persistent definition)."""
    args = ["dumpxml", domain] + (["--inactive"] if inactive else [])
    root = ET.fromstring(g.virsh(*args).stdout)
    out = {}
    for d in root.iter("disk"):
        alias = d.find("alias")
        if alias is None:
            continue
        t = d.find("target")
        s = d.find("serial")
        src = d.find("source")
        out[alias.get("name")] = {
            "target": t.get("dev"), "bus": t.get("bus"),
            "serial": s.text if s is not None else None,
            "path": src.get("file") if src is not None else None,
        }
    return out


def user_disks(domain, inactive=False):
    """The disks with attachd's kind of alias ("ua-...")."""
    return {a: d for a, d in disks(domain, inactive).items() if a.startswith("ua-")}


def domain_uuid(name):
    return g.virsh("domuuid", name).stdout.strip()


def define_only(vm):
    """Define VM (a guest.Guest) without starting it."""
    vm._prepare()
    path = os.path.join(vm.workdir, f"{vm.name}.xml")
    with open(path, "w") as f:
        f.write(vm.xml())
    g.virsh("define", path)


def boot_defined(vm, retries=1):
    """Start a domain define_only() made and wait for its guest's READY (a
    boot stuck under TCG is retried once, as Guest.boot does)."""
    for attempt in range(retries + 1):
        vm.boots += 1
        vm._t_start = time.monotonic()
        g.virsh("start", vm.name)
        try:
            return vm.wait_ready()
        except g.GuestError:
            if attempt == retries:
                raise
            g.virsh("destroy", vm.name, check=False)
    raise AssertionError("not reached")


def wait_for(what, predicate, timeout, interval=0.05):
    """Poll PREDICATE until it returns something true; return it, or fail
    naming WHAT after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(interval)


def vid():
    return str(uuid.uuid4())


# ---------------------------------------------------------------------------
# helpers: one attachd with the libvirt driver

class World:
    """An attachd serving with the libvirt driver (URI, bus and options as
    given), an account with a member user, and the same driver options for
    every CLI command (server add, volume add, check)."""

    def __init__(self, tmp_path, voldir, uri=None, bus="scsi", extra=()):
        self.voldir = voldir
        self.hv = ["--driver", "libvirt", "--volume-dir", voldir]
        if uri:
            self.hv += ["--libvirt-uri", uri]
        self.d = Attachd(tmp_path, extra_args=[*self.hv, "--disk-bus", bus, *extra])
        self.account = self.d.add_account("acme")
        self.user, self.password = self.d.add_user(self.account)
        self.s = self.session()

    def session(self):
        return self.d.session(self.user, self.password)

    # the CLI
    def server(self, domain, name="vm"):
        return self.d.cli("server", "add", "--account", self.account, "--name", name,
                          "--domain", domain, *self.hv).stdout.strip()

    def volume(self, volume_id=None, size=1, path=None):
        args = ["volume", "add", "--account", self.account, *self.hv]
        args += ["--path", path] if path else ["--size", str(size)]
        if volume_id:
            args += ["--id", volume_id]
        return self.d.cli(*args).stdout.strip()

    def check(self, *extra):
        p = self.d.cli("check", *self.hv, *extra, check=False)
        return p.returncode, p.stdout, p.stderr

    # the daemon
    def start(self):
        self.d.start()
        return self

    def stop(self):
        rc = self.d.stop()
        assert rc == 0, "attachd did not exit 0 on SIGTERM:\n" + self.d.read_log()[-3000:]

    # HTTP
    def req(self, method, path, dialect=HOSTWAY, mv=None, session=None, **kw):
        prefix = "/v2.1" if dialect == NOVA else ""
        headers = {"OpenStack-API-Version": f"compute {mv}"} if mv else {}
        return (session or self.s).request(method, self.d.base + prefix + path,
                                           headers=headers, timeout=120, **kw)

    def attach(self, server, volume, dialect=HOSTWAY, session=None, mv=None, **extra):
        body = {"volumeAttachment": {"volumeId": volume, **extra}}
        return self.req("POST", f"/servers/{server}/os-volume_attachments", dialect, mv=mv,
                        session=session, json=body)

    def detach(self, server, volume, dialect=HOSTWAY, session=None):
        return self.req("DELETE", f"/servers/{server}/os-volume_attachments/{volume}", dialect,
                        session=session)

    def attachments(self, server):
        """{volume id: attachment} as Nova 2.89 lists them (attachment_id included)."""
        r = self.req("GET", f"/servers/{server}/os-volume_attachments", NOVA, mv="2.89")
        assert r.status_code == 200, r.text
        return {a["volumeId"]: a for a in r.json()["volumeAttachments"]}

    def volume_status(self, volume):
        r = self.req("GET", f"/volumes/{volume}")
        assert r.status_code == 200, r.text
        return r.json()["volume"]["status"]

    def server_body(self, server):
        r = self.req("GET", f"/servers/{server}", NOVA, mv="2.89")
        assert r.status_code == 200, r.text
        return r.json()["server"]

    # the database, read-only (as another process would)
    def rows(self, table):
        """Every row of TABLE as dicts, read through a read-only connection."""
        con = sqlite3.connect(f"file:{self.d.db}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(f"SELECT * FROM {table} ORDER BY seq")]
        finally:
            con.close()

    def attachment_rows(self):
        return {r["volume_id"]: r for r in self.rows("attachments")}

    def volume_rows(self):
        return {r["id"]: r for r in self.rows("volumes")}

    def alias_of(self, volume):
        return "ua-" + self.attachment_rows()[volume]["id"]


@pytest.fixture
def worlds(tmp_path):
    """make(...) -> World; every World made is stopped at the end (exit 0
    on SIGTERM asserted unless the test stopped or killed it)."""
    made = []

    def make(voldir, name="w", **kw):
        d = tmp_path / f"{name}{len(made)}"
        d.mkdir()
        w = World(d, voldir, **kw)
        made.append(w)
        return w
    yield make
    for w in made:
        if w.d.proc is not None:
            w.stop()


@pytest.fixture
def relay(workdir):
    """A relay between attachd and libvirtd (see libvirt_proxy.py)."""
    with Relay(os.path.join(workdir, "libvirt.sock")) as r:
        yield r


@contextlib.contextmanager
def guestless(workdir, start=True):
    """A persistent guestless domain (running, or only defined)."""
    vm = g.Guest(g.unique_name(), workdir, persistent=True)
    try:
        if start:
            vm.start()
        else:
            define_only(vm)
        yield vm
    finally:
        vm.cleanup()


class Pending:
    """A request running in a thread (one that waits for the hypervisor)."""

    def __init__(self, fn, *args, **kw):
        self.result = None
        self.error = None
        self.t0 = time.monotonic()
        self.t1 = None
        self.thread = threading.Thread(target=self._run, args=(fn, args, kw), daemon=True)
        self.thread.start()

    def _run(self, fn, args, kw):
        try:
            self.result = fn(*args, **kw)
        except BaseException as e:          # noqa: BLE001 - re-raised by get()
            self.error = e
        self.t1 = time.monotonic()

    def done(self):
        return not self.thread.is_alive()

    def get(self, timeout=120):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request did not finish"
        if self.error:
            raise self.error
        return self.result

    @property
    def seconds(self):
        return self.t1 - self.t0


# ---------------------------------------------------------------------------
# the shared booted guest

@pytest.fixture(scope="module")
def booted(libvirt_env, guest_dir):
    """A persistent booted guest, running, shared by the module. Tests leave
    it running, without disks of attachd's kind."""
    d = g.shared_dir()
    vm = g.Guest(g.unique_name(), d, guest_dir, persistent=True)
    try:
        define_only(vm)
        boot_defined(vm)
        yield vm
    finally:
        vm.cleanup()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def shared_guest(booted):
    """The booted guest, running and clean before and after the test."""
    assert booted.state() in ("running", "paused"), booted.state()
    if booted.state() == "paused":
        g.virsh("resume", booted.name)
    assert user_disks(booted.name) == {} and user_disks(booted.name, inactive=True) == {}
    yield booted
    if booted.state() == "paused":
        g.virsh("resume", booted.name)
    left = set(user_disks(booted.name)) | set(user_disks(booted.name, inactive=True))
    for alias in left:                  # a failed test's disks: not for the next test
        g.virsh("detach-device-alias", booted.name, alias, "--live", "--config", check=False)
        g.virsh("detach-device-alias", booted.name, alias, "--config", check=False)
    assert not left, f"the test left disks in the shared guest: {left}"


# ---------------------------------------------------------------------------
# 1. attach and detach through the API: running, paused, shut off; both buses

def assert_attached(w, dom, server, volume, bus, answer_device, live):
    """The disk of VOLUME is where attachd says: target = the device it
    answered, serial = the volume id, alias = ua-<attachment id>, in the live
    XML (LIVE) and in the persistent definition."""
    att = w.attachments(server)[volume]
    alias = "ua-" + att["attachment_id"]
    assert att["device"] == answer_device
    assert alias == w.alias_of(volume)          # the store's id is the API's
    prefix = "sd" if bus == "scsi" else "vd"
    assert answer_device.startswith("/dev/" + prefix), answer_device
    want = {"target": answer_device[5:], "bus": bus, "serial": volume}
    defined = user_disks(dom, inactive=True)
    assert alias in defined, (alias, defined)
    assert {k: defined[alias][k] for k in want} == want, defined[alias]
    if live:
        running = user_disks(dom)
        assert alias in running, (alias, running)
        assert {k: running[alias][k] for k in want} == want, running[alias]
    assert w.volume_status(volume) == "in-use"
    return alias


def assert_gone(w, dom, server, volume, alias):
    assert alias not in disks(dom), "still in the live XML"
    assert alias not in disks(dom, inactive=True), "still in the persistent definition"
    assert volume not in w.attachments(server)
    assert w.volume_status(volume) == "available"


@pytest.mark.parametrize("bus", ["scsi", "virtio"])
@pytest.mark.parametrize("state", ["running", "paused", "shutoff"])
def test_attach_detach(request, libvirt_env, worlds, relay, workdir, state, bus, timing):
    """Through both dialects, on a running, a paused and a shut-off
    persistent domain. The Nova detach is observed between its 202 and the
    hypervisor's confirmation by holding attachd's libvirt connection (the
    relay) right before it: the 202 needs only the intent committed."""
    if state == "shutoff":
        ctx = guestless(workdir, start=False)
    else:
        ctx = contextlib.nullcontext(request.getfixturevalue("shared_guest"))
    with ctx as vm:
        dom = vm.name
        live = state != "shutoff"
        # virtio-blk unplug needs the guest's answer, which a paused guest
        # cannot give: the removal is confirmed only once it runs again
        needs_resume = state == "paused" and bus == "virtio"
        w = worlds(os.path.join(workdir, "vols"), uri=relay.uri, bus=bus)
        server = w.server(dom)
        vols = [w.volume(vid()) for _ in range(2)]
        w.start()
        try:
            for dialect, volume in zip((HOSTWAY, NOVA), vols):
                if state == "paused":
                    g.virsh("suspend", dom)
                    wait_for("server paused", lambda: w.server_body(server)["status"] ==
                             "PAUSED", 10)
                t0 = time.monotonic()
                r = w.attach(server, volume, dialect)
                assert r.status_code == 200, r.text
                timing(f"{dialect} attach answered", time.monotonic() - t0)
                device = r.json()["volumeAttachment"]["device"]
                alias = assert_attached(w, dom, server, volume, bus, device, live)

                if dialect == HOSTWAY:
                    t0 = time.monotonic()
                    if needs_resume:
                        p = Pending(w.detach, server, volume, session=w.session())
                        time.sleep(1.5)
                        assert not p.done(), "answered before the guest could confirm"
                        assert alias in disks(dom)
                        assert w.volume_status(volume) == "detaching"
                        g.virsh("resume", dom)
                        r = p.get()
                    else:
                        r = w.detach(server, volume)
                    # 204 only once the disk is gone from the VM: no polling here
                    assert r.status_code == 204, r.text
                    timing("hostway detach answered 204", time.monotonic() - t0)
                    assert_gone(w, dom, server, volume, alias)
                else:
                    relay.hold()
                    try:
                        r = w.detach(server, volume, NOVA)
                        assert r.status_code == 202, r.text
                        # the hypervisor has not been asked yet (held)
                        assert volume in w.attachments(server)
                        assert w.volume_status(volume) == "detaching"
                        assert alias in disks(dom, inactive=not live)
                    finally:
                        relay.release()
                    if needs_resume:
                        time.sleep(1.5)
                        assert volume in w.attachments(server)
                        assert w.volume_status(volume) == "detaching"
                        assert alias in disks(dom)
                        g.virsh("resume", dom)
                    t0 = time.monotonic()
                    # gone from the API only once gone from the domain
                    while volume in w.attachments(server):
                        assert w.volume_status(volume) == "detaching"
                        assert time.monotonic() - t0 < 60, "the removal was never confirmed"
                        time.sleep(0.05)
                    timing("nova detach: gone from the API", time.monotonic() - t0)
                    assert_gone(w, dom, server, volume, alias)
            rc, out, err = w.check()
            assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)
        finally:
            if state == "paused" and vm.state() == "paused":
                g.virsh("resume", dom)


# ---------------------------------------------------------------------------
# 2. what a booted Linux guest sees

@pytest.mark.parametrize("bus", ["scsi", "virtio"])
def test_guest_sees_volume(shared_guest, worlds, workdir, bus, timing):
    """Once the attach is answered, the guest has a disk whose serial is the
    volume id (virtio-blk shows its first 20 characters, SCSI up to 36);
    after the Hostway 204 it has it no longer."""
    vm = shared_guest
    w = worlds(os.path.join(workdir, "vols"), bus=bus)
    server = w.server(vm.name)
    volume = w.volume(vid())                    # a UUID: 36 characters
    want = g.expected_serial(volume, bus)
    assert len(want) == (36 if bus == "scsi" else 20)
    w.start()
    t0 = time.monotonic()
    r = w.attach(server, volume)
    assert r.status_code == 200, r.text
    answered = time.monotonic() - t0
    gname = vm.wait_serial(want, present=True, timeout=30)
    timing(f"{bus}: attach answered", answered)
    timing(f"{bus}: attach, seen in the guest", time.monotonic() - t0)
    assert gname.startswith("sd" if bus == "scsi" else "vd"), gname
    assert vm.disks()[gname] == want            # the whole serial the bus can carry

    t0 = time.monotonic()
    r = w.detach(server, volume)
    assert r.status_code == 204, r.text
    timing(f"{bus}: hostway detach answered 204", time.monotonic() - t0)
    vm.wait_serial(want, present=False, timeout=30)
    timing(f"{bus}: detach, gone from the guest", time.monotonic() - t0)
    assert want not in (vm.disks() or {}).values()
    assert w.attachments(server) == {} and w.volume_status(volume) == "available"


# ---------------------------------------------------------------------------
# 3. the stuck detach: a virtio-blk disk that no guest OS releases

def test_stuck_detach(libvirt_env, worlds, workdir, timing):
    """--detach-timeout 4, --hostway-detach-wait 2, on a guestless domain
    (nobody answers the unplug request)."""
    with guestless(workdir) as vm, guestless(workdir, start=False) as other:
        w = worlds(os.path.join(workdir, "vols"), bus="virtio",
                   extra=["--detach-timeout", "4", "--hostway-detach-wait", "2"])
        server = w.server(vm.name)
        elsewhere = w.server(other.name, name="other")
        volume = w.volume(vid())
        w.start()
        r = w.attach(server, volume)
        assert r.status_code == 200, r.text
        alias = w.alias_of(volume)
        assert user_disks(vm.name)[alias]["target"] == "vdb"

        def given_up():
            """The detach is given up: attached again, with the fault."""
            row = w.attachment_rows().get(volume)
            return row and row["status"] == "attached"

        # Hostway: 202 (not 204) once its wait is over
        t0 = time.monotonic()
        r = w.detach(server, volume)
        waited = time.monotonic() - t0
        assert r.status_code == 202, r.text
        timing("hostway detach answered 202", waited)
        assert waited >= 1.9, f"answered after {waited:.2f} s, before its 2 s wait"
        assert w.attachment_rows()[volume]["status"] == "detaching"
        assert w.volume_status(volume) == "detaching"
        assert volume in w.attachments(server)

        # meanwhile: a second detach, and attaching the volume elsewhere
        r = w.detach(server, volume, NOVA)
        assert r.status_code == 400, r.text
        assert r.json()["badRequest"]["message"].startswith("Invalid volume"), r.text
        r = w.detach(server, volume)
        assert r.status_code == 409, r.text
        for dialect, status in ((HOSTWAY, 409), (NOVA, 400)):
            r = w.attach(elsewhere, volume, dialect)
            assert r.status_code == status, r.text
            assert "already attached" in r.text, r.text
        assert w.attachments(elsewhere) == {}
        assert user_disks(other.name, inactive=True) == {}

        wait_for("the detach given up", given_up, 30)
        timing("hostway detach: given up after", time.monotonic() - t0)
        assert w.volume_status(volume) == "in-use"
        fault = w.server_body(server).get("fault")
        assert fault and "did not confirm the detach" in fault["message"], fault
        assert volume in fault["message"]
        assert alias in user_disks(vm.name), "the disk left the running domain"
        defined = user_disks(vm.name, inactive=True)
        assert alias in defined, "attached in the store, but gone from the definition"
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)

        # Nova: 202 at once, the same end
        t0 = time.monotonic()
        r = w.detach(server, volume, NOVA)
        assert r.status_code == 202, r.text
        timing("nova detach answered 202", time.monotonic() - t0)
        assert w.attachment_rows()[volume]["status"] == "detaching"
        assert w.volume_status(volume) == "detaching"
        wait_for("the detach given up", given_up, 30)
        timing("nova detach: given up after", time.monotonic() - t0)
        assert w.volume_status(volume) == "in-use"
        assert "did not confirm the detach" in w.server_body(server)["fault"]["message"]
        assert alias in user_disks(vm.name)
        assert alias in user_disks(vm.name, inactive=True)
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)
