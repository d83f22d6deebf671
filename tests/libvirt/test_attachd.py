"""attachd itself (`attachd serve --driver libvirt`) against real libvirtd
and real TCG domains: the API answers, what the domains' XML and a booted
guest show, the stuck detach, libvirtd going away, crashes (kill -9) between
an intent and its completion, `attachd check`, volume files, server delete,
operations racing on two servers, what the driver refuses (POST /servers,
power actions, an attach QEMU cannot open, a domain bound twice), requests
answered while a detach waits on a single HTTP thread, and the periodic
reconciliation.

Every test runs its own attachd (tests/support/attachd.py) on a fresh
database and volume directory; domains come from tests/support/guest.py:
one booted guest (a tiny Linux printing the serials of the disks it sees)
shared by the module where the guest's view matters, guestless domains
(no OS) otherwise, two of them shared by the module as well (starting a
domain takes 0.5 s on an idle machine, up to 7 s on a loaded one). At most
3 domains of this module run at once, 128 MiB each.

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
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

import guest as g
import libvirt_daemons as lvd
from attachd import Attachd, binary, psql
from libvirt_proxy import Relay
from openstack_cli import OpenstackCLI

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

    def __init__(self, tmp_path, voldir, uri=None, bus="scsi", extra=(), db=None):
        self.voldir = voldir
        # the servers attachd creates: beside the volumes, not among them
        self.instdir = os.path.join(os.path.dirname(voldir.rstrip("/")), "instances")
        self.hv = ["--driver", "libvirt", "--volume-dir", voldir, "--instance-dir", self.instdir]
        if uri:
            self.hv += ["--libvirt-uri", uri]
        self.d = Attachd(tmp_path, extra_args=[*self.hv, "--disk-bus", bus, *extra])
        if db:      # a database of the caller's (PostgreSQL), migrated by the first command
            self.d.db, self.d.pg, self.d.migrated = db, True, False
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


class DomainPool:
    """Guestless persistent domains, running, shared by the module: starting
    one takes 0.5-7 s on a loaded machine, and most tests need only a
    domain without attachd's disks. Each test gets clean ones and they are
    made clean again after it (see reset)."""

    def __init__(self):
        self.dir = g.shared_dir()
        self.vms = []
        self.lent = []

    def take(self, n):
        while len(self.vms) < n:
            vm = g.Guest(g.unique_name(), self.dir, persistent=True)
            self.vms.append(vm)
            vm.start()
        out = self.vms[:n]
        for vm in out:
            assert vm.state() == "running", (vm.name, vm.state())
            assert user_disks(vm.name) == {} == user_disks(vm.name, inactive=True)
        self.lent = out
        return out

    def reset(self):
        """Make the lent domains running and clean again: a disk of
        attachd's kind left in the live XML (a stuck virtio-blk unplug, a
        failed test) goes with a restart of the domain."""
        for vm in self.lent:
            if vm.state() == "undefined":
                self.vms.remove(vm)
                continue
            for alias in user_disks(vm.name, inactive=True):
                g.virsh("detach-device-alias", vm.name, alias, "--config")
            if vm.state() == "running":
                for alias in user_disks(vm.name):       # SCSI unplugs need no guest
                    g.virsh("detach-device-alias", vm.name, alias, "--live", check=False)
                    vm.wait_alias_gone(alias, timeout=2)
            if vm.state() != "running" or user_disks(vm.name):
                g.virsh("destroy", vm.name, check=False)
                g.virsh("start", vm.name)
        self.lent = []

    def close(self):
        try:
            for vm in self.vms:
                vm.cleanup()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pool(libvirt_env):
    p = DomainPool()
    yield p
    p.close()


@pytest.fixture
def idle(pool):
    """idle(n=1): N guestless running domains without disks of attachd's
    kind, for this test only."""
    yield lambda n=1: pool.take(n)
    pool.reset()


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
                # a device asked for is a hint: taken when it is of the
                # bus's kind and free, else the next free one is used
                prefix = "sd" if bus == "scsi" else "vd"
                other = "vd" if bus == "scsi" else "sd"
                hint, expect = {HOSTWAY: (f"/dev/{other}c", f"/dev/{prefix}b"),
                                NOVA: (f"/dev/{prefix}e", f"/dev/{prefix}e")}[dialect]
                t0 = time.monotonic()
                r = w.attach(server, volume, dialect, device=hint)
                assert r.status_code == 200, r.text
                timing(f"{dialect} attach answered", time.monotonic() - t0)
                device = r.json()["volumeAttachment"]["device"]
                assert device == expect, (hint, device)
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
                    # detaching until gone from the API (the volume read
                    # first: the completion may commit between the reads)
                    while True:
                        status = w.volume_status(volume)
                        if volume not in w.attachments(server):
                            break
                        assert status == "detaching"
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

def test_stuck_detach(idle, worlds, workdir, timing):
    """--detach-timeout 4, --hostway-detach-wait 2, on a guestless domain
    (nobody answers the unplug request)."""
    [vm] = idle()
    with guestless(workdir, start=False) as other:
        w = worlds(os.path.join(workdir, "vols"), bus="virtio",
                   extra=["--detach-timeout", "4", "--hostway-detach-wait", "2"])
        server = w.server(vm.name)
        elsewhere = w.server(other.name, name="other")
        volume = w.volume(vid())
        admin = w.d.session(*w.d.add_user(w.account, role="admin"))
        w.start()
        r = w.attach(server, volume)
        assert r.status_code == 200, r.text
        alias = w.alias_of(volume)
        assert user_disks(vm.name)[alias]["target"] == "vdb"
        idle_metrics = hypervisor_metrics(w, admin)
        assert idle_metrics[("attachd_hypervisor_operations_pending", "detach")] == 0
        assert idle_metrics[("attachd_hypervisor_oldest_operation_seconds", None)] == 0
        assert idle_metrics[("attachd_hypervisor_connected", None)] == 1

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
        # the volume read first: if the row still says detaching, the
        # give-up (one transaction) had not happened at the first read either
        status = w.volume_status(volume)
        assert volume in w.attachments(server)
        assert w.attachment_rows()[volume]["status"] == "detaching", "given up already?"
        assert status == "detaching"

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
        status = w.volume_status(volume)
        assert w.attachment_rows()[volume]["status"] == "detaching"
        assert status == "detaching"
        # /metrics: the detach waiting for its confirmation, and its age
        m = hypervisor_metrics(w, admin)
        assert m[("attachd_hypervisor_operations_pending", "detach")] == 1, m
        assert m[("attachd_hypervisor_operations_pending", "attach")] == 0, m
        assert m[("attachd_hypervisor_oldest_operation_seconds", None)] > 0, m

        # meanwhile (the 4 s before it is given up): a second detach, and
        # attaching the volume elsewhere
        r = w.detach(server, volume, NOVA)
        assert r.status_code == 400, r.text
        assert r.json()["badRequest"]["message"].startswith("Invalid volume"), r.text
        r = w.detach(server, volume)
        assert r.status_code == 409, r.text
        assert r.json()["conflict"]["code"] == 409, r.text
        for dialect, status in ((HOSTWAY, 409), (NOVA, 400)):
            r = w.attach(elsewhere, volume, dialect)
            assert r.status_code == status, r.text
            assert "already attached" in r.text, r.text
        assert w.attachment_rows()[volume]["status"] == "detaching", \
            "given up before the checks ran: they proved nothing (a very slow machine?)"
        timing("nova detach: the refusals done after", time.monotonic() - t0)

        wait_for("the detach given up", given_up, 30)
        timing("nova detach: given up after", time.monotonic() - t0)
        assert w.volume_status(volume) == "in-use"
        assert "did not confirm the detach" in w.server_body(server)["fault"]["message"]
        assert alias in user_disks(vm.name)
        assert alias in user_disks(vm.name, inactive=True)
        assert w.attachments(elsewhere) == {}
        assert user_disks(other.name, inactive=True) == {}
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)
        m = hypervisor_metrics(w, admin)
        assert m[("attachd_hypervisor_operations_pending", "detach")] == 0, m
        assert m[("attachd_hypervisor_oldest_operation_seconds", None)] == 0, m


def hypervisor_metrics(w, session):
    """attachd_hypervisor_* from GET /metrics, read by Prometheus' own parser:
    {(name, kind label or None): value}."""
    r = session.get(w.d.url("/metrics"), timeout=30)
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name.startswith("attachd_hypervisor_"):
                out[(sample.name, sample.labels.get("kind"))] = sample.value
    return out


# ---------------------------------------------------------------------------
# 4. libvirtd goes away and comes back

def assert_unavailable(r, dialect):
    """503 in the dialect's shape, with Retry-After."""
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0, r.headers
    body = r.json()["serviceUnavailable"]
    assert body["code"] == 503
    if dialect == HOSTWAY:
        assert body["message"] == "Service unavailable", body
        assert "hypervisor" in body["details"] and uuid.UUID(body["errorid"]), body
        assert set(body) == {"message", "code", "details", "errorid"}, body
    else:
        assert "hypervisor" in body["message"] and set(body) == {"code", "message"}, body


def api_matches_xml(w, server, dom):
    """What the API lists for SERVER is what the domain has: the same
    aliases, each at the device the API says, live and defined."""
    listed = w.attachments(server)
    want = {"ua-" + a["attachment_id"]: a["device"][5:] for a in listed.values()}
    for inactive in (False, True):
        have = {a: d["target"] for a, d in user_disks(dom, inactive).items()}
        assert have == want, (inactive, have, want)
    return listed


@pytest.mark.parametrize("how", ["daemon", "connection"])
def test_libvirtd_restart(libvirt_env, idle, worlds, relay, workdir, how, timing):
    """daemon: libvirtd itself is stopped and started again (only when this
    session owns the daemons). connection: attachd's connection is cut and
    new ones refused, through the relay, for attachd alone; it runs in any
    session. Either way: attach and detach get 503 with Retry-After at once,
    reads go on, attachd reconnects by itself and ends agreeing."""
    guard = lvd.own_daemons(libvirt_env) if how == "daemon" else contextlib.nullcontext()
    with guard:
        [vm] = idle()
        uri = relay.uri if how == "connection" else None
        w = worlds(os.path.join(workdir, "vols"), uri=uri)
        server = w.server(vm.name)
        kept, later, spare = (w.volume(vid()) for _ in range(3))
        w.start()
        assert w.attach(server, kept).status_code == 200

        t0 = time.monotonic()
        if how == "daemon":
            lvd.env("stop")
        else:
            relay.down()
        timing(f"{how}: taken down", time.monotonic() - t0)
        # the driver notices a closed socket at once; wait for the core to
        # hear it, so that every change below is refused up front
        wait_for("attachd noticing the lost connection",
                 lambda: "the hypervisor connection is lost" in w.d.read_log(), 15)
        timing(f"{how}: attachd noticed", time.monotonic() - t0)

        for dialect in (HOSTWAY, NOVA):
            for call in (lambda: w.attach(server, later, dialect),
                         lambda: w.req("POST", f"/servers/{server}/action", dialect,
                                       json={"os-getConsoleOutput": {}}),
                         lambda: w.detach(server, kept, dialect)):
                t1 = time.monotonic()
                r = call()
                took = time.monotonic() - t1
                assert_unavailable(r, dialect)
                assert took < 5, f"503 after {took:.1f} s: a hang, not an answer"
            timing(f"{how}: {dialect} detach answered 503", took)
        # nothing of them was recorded
        assert set(w.attachment_rows()) == {kept}
        assert w.attachment_rows()[kept]["status"] == "attached"
        # reads go on
        for dialect, path in ((HOSTWAY, "/servers"), (HOSTWAY, f"/servers/{server}"),
                              (NOVA, "/servers/detail"), (NOVA, f"/servers/{server}"),
                              (HOSTWAY, f"/servers/{server}/os-volume_attachments"),
                              (NOVA, f"/servers/{server}/os-volume_attachments/{kept}"),
                              (HOSTWAY, "/volumes"), (HOSTWAY, f"/volumes/{later}"),
                              (NOVA, "/os-volumes/detail")):
            r = w.req("GET", path, dialect)
            assert r.status_code == 200, (path, r.status_code, r.text)
        assert w.volume_status(later) == "available"
        assert w.volume_status(kept) == "in-use"

        t0 = time.monotonic()
        if how == "daemon":
            lvd.env("start")
        else:
            relay.up()
        # attachd reconnects by itself: an attach succeeds within 60 s
        answers = []

        def attached():
            r = w.attach(server, later)
            answers.append(r.status_code)
            if r.status_code == 503:
                return False
            assert r.status_code == 200, r.text
            return True
        wait_for("an attach after the restart", attached, 60, interval=0.5)
        timing(f"{how}: attach works again after", time.monotonic() - t0)
        assert set(answers) <= {200, 503}, answers

        r = w.detach(server, kept)
        assert r.status_code == 204, r.text
        assert w.attach(server, spare, NOVA).status_code == 200
        assert vm.state() == "running"          # QEMU outlived libvirtd
        listed = api_matches_xml(w, server, vm.name)
        assert set(listed) == {later, spare}
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


@pytest.mark.parametrize("op", ["attach", "nova-detach", "hostway-detach"])
def test_connection_lost_mid_call(idle, worlds, relay, workdir, op, timing):
    """The connection drops while attachd's call is on its way (held by the
    relay, then cut: libvirtd never gets it); attachd itself lives on. The
    attach is answered 503 with Retry-After at once and undone once libvirt
    answers again (nothing happened), so a retry works; a detach is asked
    again after the reconnect and completes: Nova's 202 is honoured, and the
    waiting Hostway request still gets its 204."""
    [vm] = idle()
    w = worlds(os.path.join(workdir, "vols"), uri=relay.uri)
    server = w.server(vm.name)
    volume = w.volume(vid())
    w.start()
    if op != "attach":
        assert w.attach(server, volume).status_code == 200
    relay.hold()
    try:
        t0 = time.monotonic()
        if op == "attach":
            p = Pending(w.attach, server, volume, session=w.session())
        elif op == "nova-detach":
            r = w.detach(server, volume, NOVA)
            assert r.status_code == 202, r.text
        else:
            p = Pending(w.detach, server, volume, session=w.session())
        want = "attaching" if op == "attach" else "detaching"
        wait_for("the intent", lambda: w.attachment_rows().get(volume, {}).get("status") ==
                 want, 10)
        assert relay.wait_held(5), "attachd did not call libvirt"
        relay.cut()
    finally:
        relay.release()
    if op == "attach":
        r = p.get()
        assert_unavailable(r, HOSTWAY)
        timing("attach answered 503 after the cut", p.seconds)
        wait_for("the attach undone", lambda: volume not in w.attachment_rows(), 30)
        timing("attach undone after", time.monotonic() - t0)
        assert user_disks(vm.name, inactive=True) == {}
        assert w.volume_status(volume) == "available"
        r = wait_for("a retried attach", lambda: (lambda r: r if r.status_code != 503 else None)(
            w.attach(server, volume)), 30, 0.5)
        assert r.status_code == 200, r.text
        api_matches_xml(w, server, vm.name)
    else:
        if op == "hostway-detach":
            r = p.get()
            assert r.status_code == 204, r.text
            timing("hostway detach answered 204 across the cut", p.seconds)
        else:
            wait_for("the detach finished", lambda: volume not in w.attachment_rows(), 30)
            timing("nova detach finished after", time.monotonic() - t0)
        assert user_disks(vm.name) == {} and user_disks(vm.name, inactive=True) == {}
        assert w.volume_status(volume) == "available"
    rc, out, err = w.check()
    assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


# ---------------------------------------------------------------------------
# 5. kill -9 between an intent and its completion

UNSETTLED_ATTACHMENTS = ("attaching", "detaching")
UNSETTLED_VOLUMES = ("attaching", "detaching", "creating", "deleting")


def settled(w):
    """No intent left in the store (the reconciler's tasks have run)."""
    return (all(r["status"] not in UNSETTLED_ATTACHMENTS for r in w.rows("attachments")) and
            all(r["status"] not in UNSETTLED_VOLUMES for r in w.rows("volumes")))


@contextlib.contextmanager
def write_lock(db):
    """SQLite's write lock, taken from outside attachd: its writer (and so
    every completion) waits until it is released (SQLite's busy timeout in
    attachd is 5 s: release it before that)."""
    con = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        yield con
    finally:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.close()


@pytest.mark.parametrize("op", ["attach", "detach"])
@pytest.mark.parametrize("window", ["before-libvirt", "before-completion"])
def test_kill9(idle, worlds, relay, workdir, window, op, timing):
    """attachd killed (SIGKILL) with a change half done, then started again:
    it reconciles before it listens, and the store and the hypervisor agree;
    nothing acknowledged is lost.

    How each window is made (not a race):
    - before-libvirt: attachd's libvirt connection is held (the relay keeps
      what attachd sends); the request's intent is committed (the row reads
      attaching/detaching) and attachd has sent its call, which libvirtd
      never gets; kill -9; the held bytes are thrown away. The disk is then
      checked untouched in the domain's XML.
    - before-completion: as above, and then SQLite's write lock is taken
      from the test, so that no completion can commit; the relay lets the
      call through; once libvirt has acted (the disk appeared in, or left,
      the domain's XML) attachd is killed and the lock released.
    The attach is never answered (it waits for the hypervisor). The Nova
    detach is answered 202 once its intent is committed, before libvirt
    acts: an acknowledged change, which must be finished after the restart.
    Another attach, answered 200 before the kill, must still be there."""
    [vm] = idle()
    dom = vm.name
    w = worlds(os.path.join(workdir, "vols"), uri=relay.uri)
    server = w.server(dom)
    base, x = w.volume(vid()), w.volume(vid())
    w.start()
    assert w.attach(server, base).status_code == 200          # acknowledged
    base_alias = w.alias_of(base)
    if op == "detach":
        assert w.attach(server, x).status_code == 200
    want_status = "attaching" if op == "attach" else "detaching"

    relay.hold()
    pending = None
    try:
        if op == "attach":
            pending = Pending(w.attach, server, x, session=w.session())
        else:
            r = w.detach(server, x, NOVA)
            assert r.status_code == 202, r.text                # acknowledged
        wait_for(f"the {op} intent in the store",
                 lambda: w.attachment_rows().get(x, {}).get("status") == want_status, 10)
        assert relay.wait_held(5), "attachd did not call libvirt"
        alias = w.alias_of(x)
        if window == "before-libvirt":
            w.d.kill9()
            relay.cut()                 # what attachd sent never reaches libvirtd
            relay.release()
            gone = alias not in user_disks(dom, inactive=True)
            assert gone == (op == "attach"), "libvirt acted in the before-libvirt window"
        else:
            with write_lock(w.d.db):
                relay.release()         # the call reaches libvirtd now
                t0 = time.monotonic()
                # attachd's completion waits for the lock from when libvirt
                # has acted; attachd is killed right after that
                if op == "attach":
                    wait_for("the disk in the domain", lambda: alias in user_disks(dom) and
                             alias in user_disks(dom, inactive=True), 15, 0.02)
                else:
                    wait_for("the disk gone from the domain",
                             lambda: alias not in user_disks(dom) and
                             alias not in user_disks(dom, inactive=True), 15, 0.02)
                timing(f"{op}: libvirt acted after", time.monotonic() - t0)
                w.d.kill9()
            log = w.d.read_log()
            assert "could not be committed" not in log, "the lock was held too long"
    finally:
        relay.release()
    if pending:
        with pytest.raises(requests.ConnectionError):
            pending.get()

    t0 = time.monotonic()
    w.start()                                   # reconciles before listening
    timing("restart: listening after", time.monotonic() - t0)
    wait_for("the intents settled", lambda: settled(w), 30)
    timing("restart: settled after", time.monotonic() - t0)
    log = w.d.read_log()
    assert f"volume {x} was left {want_status}; settling it" in log, log[-2000:]

    listed = api_matches_xml(w, server, dom)
    assert base in listed and listed[base]["attachment_id"] == base_alias[3:]
    assert w.volume_status(base) == "in-use"
    if op == "detach":
        # acknowledged (202): finished, whichever window
        assert x not in listed and w.volume_status(x) == "available"
    elif window == "before-libvirt":
        # never attached: undone
        assert x not in listed and w.volume_status(x) == "available"
    else:
        # attached by libvirt: recorded, at the device the domain has
        assert x in listed and w.volume_status(x) == "in-use"
        assert "ua-" + listed[x]["attachment_id"] == alias
    rc, out, err = w.check()
    assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)
    # and it still works
    r = w.detach(server, base)
    assert r.status_code == 204, r.text
    assert base_alias not in user_disks(dom, inactive=True)


# ---------------------------------------------------------------------------
# 6. attachd check: disagreements listed, nothing changed

def store_dump(w):
    """What the store holds about servers, volumes and attachments."""
    return {t: w.rows(t) for t in ("servers", "volumes", "attachments")}


def test_check_disagreements(idle, worlds, workdir):
    """A disk detached behind attachd's back (virsh), a disk with attachd's
    kind of alias that the store does not know (virsh), a server whose
    domain was undefined: `attachd check` names each (server and volume
    ids) and exits 1, the same every time, changing nothing, whether or
    not `attachd serve` runs. A hypervisor it cannot reach: exit 3."""
    [vm] = idle()
    with guestless(workdir, start=False) as gone_vm:
        w = worlds(os.path.join(workdir, "vols"))
        a = w.server(vm.name, name="a")
        b = w.server(gone_vm.name, name="b")
        v_lost, v_fine, v_b = (w.volume(vid()) for _ in range(3))
        dom_a, dom_b = domain_uuid(vm.name), domain_uuid(gone_vm.name)
        w.start()
        for server, volume in ((a, v_lost), (a, v_fine), (b, v_b)):
            assert w.attach(server, volume).status_code == 200
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)
        lost_alias = w.alias_of(v_lost)
        lost_device = w.attachments(a)[v_lost]["device"]

        # behind attachd's back
        g.virsh("detach-device-alias", vm.name, lost_alias, "--live", "--config")
        assert vm.wait_alias_gone(lost_alias, timeout=10)
        stranger = "ua-" + vid()
        stranger_path = g.sparse_file(os.path.join(workdir, "stranger.img"))
        stranger_serial = "not-attachds"
        vm.attach(g.disk_xml(stranger_path, stranger_serial, stranger, "scsi", target="sdz"))
        g.virsh("undefine", gone_vm.name)
        want = sorted([
            f"server {a} volume {v_lost}: attached as {lost_device} in the store, but the "
            f"domain {dom_a} has no disk {lost_alias}",
            f"server {a}: the domain has a disk {stranger} ({stranger_path}, serial "
            f"{stranger_serial}) that the store does not know",
            f"server {b}: its domain {dom_b} is gone from the hypervisor",
        ])

        before = store_dump(w)
        xml_before = g.virsh("dumpxml", vm.name).stdout
        outputs = []
        for serving in (True, False, True):
            if serving and w.d.proc is None:
                w.start()
            elif not serving and w.d.proc is not None:
                w.stop()
            for _ in range(2):
                rc, out, err = w.check()
                assert rc == 1, (rc, out, err)
                outputs.append(out)
                assert sorted(out.splitlines()) == want, out
                assert store_dump(w) == before
        assert len(set(outputs)) == 1, outputs          # the same text every time
        assert g.virsh("dumpxml", vm.name).stdout == xml_before
        assert v_fine not in outputs[0]
        # the API still says what the store says (check did not "fix" it)
        assert set(w.attachments(a)) == {v_lost, v_fine}
        assert set(w.attachments(b)) == {v_b}

        # a hypervisor that cannot be asked
        rc, out, err = w.check("--libvirt-uri", "qemu+unix:///system?socket=/nonexistent")
        assert rc == 3, (rc, out, err)
        assert "cannot connect" in err, err
        assert store_dump(w) == before
        vm.detach_alias(stranger)
        assert vm.wait_alias_gone(stranger, timeout=10)


# ---------------------------------------------------------------------------
# 7. volume files

def volume_file(voldir, volume):
    return os.path.join(voldir, f"vol-{volume}.img")


def assert_sparse(path, size):
    st = os.stat(path)
    assert st.st_size == size, (path, st.st_size, size)
    assert st.st_blocks * 512 < (1 << 20), f"{path}: {st.st_blocks} blocks, not sparse"


def test_volume_files(idle, worlds, workdir):
    """POST /volumes and /v2.1/os-volumes make a sparse file of the size
    asked (GiB) in the volume directory; DELETE removes it (before it is
    answered). `volume add --path` adopts a file (its size read from it);
    deleting that volume leaves the file."""
    [vm] = idle()
    voldir = os.path.join(workdir, "vols")
    w = worlds(voldir)
    server = w.server(vm.name)
    adopted_path = os.path.join(workdir, "adopted.img")
    with open(adopted_path, "wb") as f:
        f.write(b"keep me")
        f.truncate(3 * GIB)
    os.chmod(adopted_path, 0o644)
    adopted = w.volume(path=adopted_path)
    w.start()

    made = {}
    for dialect, path, size in ((HOSTWAY, "/volumes", 1), (NOVA, "/os-volumes", 2)):
        r = w.req("POST", path, dialect, json={"volume": {"size": size}})
        assert r.status_code == 200, r.text
        v = r.json()["volume"]
        assert v["status"] == "available" and v["size"] == size, v
        f = volume_file(voldir, v["id"])
        assert_sparse(f, size * GIB)
        assert w.volume_rows()[v["id"]]["path"] == f
        made[dialect] = (v["id"], f)
    assert sorted(os.listdir(voldir)) == sorted(os.path.basename(f) for _, f in made.values())

    # adopted while attachd serves (another process's commit): seen at once
    late_path = g.sparse_file(os.path.join(workdir, "late.img"), GIB)
    late = w.volume(path=late_path)
    r = w.req("GET", f"/volumes/{late}")
    assert r.status_code == 200 and r.json()["volume"]["size"] == 1, r.text
    assert w.req("DELETE", f"/volumes/{late}").status_code == 204
    assert os.path.exists(late_path)

    # the adopted file: its size, usable as it is, never removed
    r = w.req("GET", f"/os-volumes/{adopted}", NOVA)
    assert r.status_code == 200 and r.json()["volume"]["size"] == 3, r.text
    row = w.volume_rows()[adopted]
    assert (row["path"], row["adopted"], row["status"]) == (adopted_path, 1, "available")
    assert w.attach(server, adopted).status_code == 200
    alias = w.alias_of(adopted)
    assert user_disks(vm.name)[alias]["path"] == adopted_path
    assert w.detach(server, adopted).status_code == 204

    for dialect, (volume, f), status in ((HOSTWAY, made[HOSTWAY], 204),
                                         (NOVA, made[NOVA], 202)):
        path = "/volumes/" if dialect == HOSTWAY else "/os-volumes/"
        r = w.req("DELETE", path + volume, dialect)
        assert r.status_code == status, r.text
        assert not os.path.exists(f), "answered before the file was removed"
        assert w.req("GET", "/volumes/" + volume).status_code == 404
    assert os.listdir(voldir) == []
    assert w.req("DELETE", f"/volumes/{adopted}").status_code == 204
    assert w.req("GET", f"/volumes/{adopted}").status_code == 404
    with open(adopted_path, "rb") as f:
        assert f.read(7) == b"keep me"
    assert os.path.getsize(adopted_path) == 3 * GIB


def test_volume_dir_unwritable(libvirt_env, worlds, workdir):
    """A volume directory on a read-only file system: the new volume ends
    in status error, with nothing left behind; it can be deleted."""
    mnt = os.path.join(workdir, "ro")
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "attachd-test", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
        w = worlds(mnt).start()
        for dialect, path in ((HOSTWAY, "/volumes"), (NOVA, "/os-volumes")):
            r = w.req("POST", path, dialect, json={"volume": {"size": 1}})
            assert r.status_code == 200, r.text
            v = r.json()["volume"]
            assert v["status"] == "error", v
            assert w.volume_status(v["id"]) == "error"
            row = w.volume_rows()[v["id"]]
            assert (row["status"], row["path"]) == ("error", None), row
            assert os.listdir(mnt) == []
            assert "Read-only file system" in w.d.read_log()
            r = w.req("DELETE", f"{path}/{v['id']}", dialect)
            assert r.status_code in (202, 204), r.text
            assert w.req("GET", f"/volumes/{v['id']}").status_code == 404
        assert w.volume_rows() == {}
        w.stop()
    finally:
        subprocess.run(["umount", "-l", mnt])


# ---------------------------------------------------------------------------
# 8. deleting a server with attached volumes

def test_server_delete(idle, worlds, relay, workdir, timing):
    """204 at once (the intent), the server "deleting" meanwhile (observed
    while attachd's libvirt connection is held), then gone; its disks are
    gone from the domain, which itself stays (attachd did not make it); the
    delete_on_termination volume and its file are gone, the other volume
    is available with its file."""
    [vm] = idle()
    voldir = os.path.join(workdir, "vols")
    w = worlds(voldir, uri=relay.uri)
    server = w.server(vm.name)
    doomed, kept, late = w.volume(vid()), w.volume(vid()), w.volume(vid())
    w.start()
    r = w.attach(server, doomed, NOVA, mv="2.79", delete_on_termination=True)
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"]["delete_on_termination"] is True
    assert w.attach(server, kept).status_code == 200
    aliases = [w.alias_of(doomed), w.alias_of(kept)]
    assert set(user_disks(vm.name)) == set(aliases)

    relay.hold()
    try:
        t0 = time.monotonic()
        r = w.req("DELETE", f"/servers/{server}", NOVA)
        assert r.status_code == 204, r.text
        timing("server delete answered 204", time.monotonic() - t0)
        body = w.server_body(server)
        assert body["OS-EXT-STS:task_state"] == "deleting", body
        assert {v: w.volume_status(v) for v in (doomed, kept)} == \
            {doomed: "detaching", kept: "detaching"}
        assert set(user_disks(vm.name)) == set(aliases)      # not asked yet
        r = w.attach(server, late)
        assert r.status_code == 409 and "task_state deleting" in r.text, r.text
    finally:
        relay.release()
    wait_for("the server gone",
             lambda: w.req("GET", f"/servers/{server}", NOVA).status_code == 404, 60)
    timing("server delete: gone after", time.monotonic() - t0)
    assert vm.state() == "running"
    assert user_disks(vm.name) == {} and user_disks(vm.name, inactive=True) == {}
    assert w.req("GET", f"/volumes/{doomed}").status_code == 404
    assert not os.path.exists(volume_file(voldir, doomed))
    assert w.volume_status(kept) == "available"
    assert_sparse(volume_file(voldir, kept), GIB)
    assert w.rows("servers") == [] and w.rows("attachments") == []
    rc, out, err = w.check()
    assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


# ---------------------------------------------------------------------------
# 9. two servers, attaches racing

def in_flight(calls):
    """The largest number of CALLS (with a reply) in flight at one time."""
    edges = sorted([(c.sent, 1) for c in calls] + [(c.replied, -1) for c in calls])
    most = now = 0
    for _, d in edges:
        now += d
        most = max(most, now)
    return most


def overlap(calls_a, calls_b):
    """Seconds during which a call of A and a call of B were both in flight."""
    total = 0.0
    for a in calls_a:
        for b in calls_b:
            total += max(0.0, min(a.replied, b.replied) - max(a.sent, b.sent))
    return total


def test_two_servers_racing(idle, worlds, relay, workdir, timing):
    """At most one hypervisor operation per server at a time; operations on
    different servers at the same time.

    Deterministic part: with the first attach of server A done by libvirt
    but its completion unable to commit (SQLite's write lock held by the
    test), A's second attach must not start (its lane is held until the
    completion commits), while B's attach goes ahead. Then a free run of
    eight attaches at once (four per server), then eleven detaches: what
    attachd sent to libvirt (the relay's log) never has two disk changes of
    one domain in flight together; how much the two servers overlapped is
    printed."""
    vm_a, vm_b = idle(2)
    w = worlds(os.path.join(workdir, "vols"), uri=relay.uri)
    a, b = w.server(vm_a.name, name="a"), w.server(vm_b.name, name="b")
    dom_a, dom_b = domain_uuid(vm_a.name), domain_uuid(vm_b.name)
    vols = {a: [w.volume(vid()) for _ in range(6)], b: [w.volume(vid()) for _ in range(5)]}
    w.start()

    # -- deterministic: A's lane held by an uncommitted completion
    relay.hold()
    try:
        reqs = [Pending(w.attach, a, vols[a][0], session=w.session()),
                Pending(w.attach, a, vols[a][1], session=w.session()),
                Pending(w.attach, b, vols[b][0], session=w.session())]
        wait_for("three intents", lambda: [r["status"] for r in w.rows("attachments")] ==
                 ["attaching"] * 3, 10)
        with write_lock(w.d.db):
            relay.release()
            # A's first completion waits for the lock from here on (at most
            # 5 s, SQLite's busy timeout in attachd): look within 3.5 s
            wait_for("a disk in A", lambda: len(user_disks(vm_a.name)) == 1, 15, 0.02)
            t_heads = time.monotonic()
            wait_for("a disk in B", lambda: len(user_disks(vm_b.name)) == 1, 3.0, 0.02)
            time.sleep(max(0.0, t_heads + 1.5 - time.monotonic()))
            # A's second attach has not started: nothing more in A, and
            # attachd has sent libvirt a single disk change for A
            assert len(user_disks(vm_a.name)) == 1, user_disks(vm_a.name)
            assert len(relay.calls_on(dom_a, b"<disk")) == 1
            assert len(relay.calls_on(dom_b, b"<disk")) == 1
            held = time.monotonic() - t_heads
        assert "could not be committed" not in w.d.read_log()
    finally:
        relay.release()
    for r in reqs:
        assert r.get().status_code == 200, r.get().text
    timing("A's second attach waited for the first's completion", held)
    assert len(user_disks(vm_a.name)) == 2 and len(user_disks(vm_b.name)) == 1

    # -- free run: 4 attaches per server at once, then every volume detached
    start = len(relay.calls)
    todo = [(a, v) for v in vols[a][2:]] + [(b, v) for v in vols[b][1:]]
    assert len(todo) == 8
    t0 = time.monotonic()
    reqs = [Pending(w.attach, s, v, session=w.session()) for s, v in todo]
    answers = [r.get() for r in reqs]
    wall_attach = time.monotonic() - t0
    assert [r.status_code for r in answers] == [200] * len(todo), [r.text for r in answers]
    devices = {s: sorted(r.json()["volumeAttachment"]["device"]
                         for (srv, _), r in zip(todo, answers) if srv == s) for s in (a, b)}
    for s in (a, b):
        assert len(set(devices[s])) == len(devices[s]), devices
    t0 = time.monotonic()
    detaching = [(s, v) for s in (a, b) for v in w.attachments(s)]
    assert len(detaching) == 11
    reqs = [Pending(w.detach, s, v, session=w.session()) for s, v in detaching]
    assert [r.get().status_code for r in reqs] == [204] * len(detaching)
    wall_detach = time.monotonic() - t0

    changes = {d: [c for c in relay.calls[start:] if c.names(d) and b"ua-" in c.payload
                   and c.replied is not None] for d in (dom_a, dom_b)}
    for d, calls in changes.items():
        assert len(calls) >= 9, (d, calls)              # 4 attaches and 5 detaches at least
        assert in_flight(calls) == 1, f"two disk changes of one domain at once: {calls}"
    busy = {d: sum(c.replied - c.sent for c in calls) for d, calls in changes.items()}
    both = overlap(changes[dom_a], changes[dom_b])
    timing("8 attaches (4 per server), all answered", wall_attach)
    timing("11 detaches (6 and 5), all answered", wall_detach)
    timing("libvirt disk changes, server A busy", busy[dom_a])
    timing("libvirt disk changes, server B busy", busy[dom_b])
    timing("libvirt disk changes, A and B at once", both)
    print(f"\nparallelism: A busy {busy[dom_a]:.2f} s, B busy {busy[dom_b]:.2f} s, "
          f"both at once {both:.2f} s, wall {wall_attach + wall_detach:.2f} s")
    assert w.attachments(a) == {} and w.attachments(b) == {}
    rc, out, err = w.check()
    assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


def test_server_delete_kill9(idle, worlds, relay, workdir, timing):
    """attachd killed after the server delete was answered 204 and before
    libvirt was asked anything (the relay holds the calls, then drops
    them): after the restart the delete is finished (the server and its
    disks gone, the domain kept), the store and the hypervisor agree. The
    reconciler keeps volumes that were to be deleted with the server (as
    reconcile.c says); either way a volume is whole: its record with its
    file, or neither."""
    [vm] = idle()
    voldir = os.path.join(workdir, "vols")
    w = worlds(voldir, uri=relay.uri)
    server = w.server(vm.name)
    doomed, kept = w.volume(vid()), w.volume(vid())
    w.start()
    r = w.attach(server, doomed, NOVA, mv="2.79", delete_on_termination=True)
    assert r.status_code == 200, r.text
    assert w.attach(server, kept).status_code == 200
    relay.hold()
    try:
        r = w.req("DELETE", f"/servers/{server}", NOVA)
        assert r.status_code == 204, r.text                # acknowledged
        assert relay.wait_held(5), "attachd did not call libvirt"
        w.d.kill9()
        relay.cut()
    finally:
        relay.release()
    assert len(user_disks(vm.name, inactive=True)) == 2    # libvirt was not asked
    t0 = time.monotonic()
    w.start()
    wait_for("the server gone",
             lambda: w.req("GET", f"/servers/{server}", NOVA).status_code == 404, 60)
    timing("server delete finished after the restart", time.monotonic() - t0)
    assert "was left deleting; finishing it" in w.d.read_log()
    assert vm.state() == "running"
    assert user_disks(vm.name) == {} and user_disks(vm.name, inactive=True) == {}
    assert w.rows("servers") == [] and w.rows("attachments") == []
    assert w.volume_status(kept) == "available"
    assert_sparse(volume_file(voldir, kept), GIB)
    if w.req("GET", f"/volumes/{doomed}").status_code == 404:
        assert not os.path.exists(volume_file(voldir, doomed))
        print("\nthe delete_on_termination volume was deleted after the restart")
    else:
        assert w.volume_status(doomed) == "available"
        assert_sparse(volume_file(voldir, doomed), GIB)
        print("\nthe delete_on_termination volume was kept after the restart")
    rc, out, err = w.check()
    assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


# ---------------------------------------------------------------------------
# 10. what the libvirt driver refuses over HTTP

def assert_fault(r, dialect, status, name, hostway_title):
    """An error in the dialect's shape; its reason (Hostway's details,
    Nova's message)."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {name}, body
    body = body[name]
    assert body["code"] == status, body
    if dialect == HOSTWAY:
        assert set(body) == {"message", "code", "details", "errorid"}, body
        assert body["message"] == hostway_title and uuid.UUID(body["errorid"]), body
        return body["details"]
    assert set(body) == {"code", "message"}, body
    return body["message"]


def test_power_actions(worlds, workdir, timing):
    """The power actions drive the domain: each is answered 202 once its
    task_state is recorded, and the server reaches the state the domain is
    then in (pause, unpause; suspend as a managed save, resume; stop as an
    ACPI shutdown that a guestless domain never carries out, so destroyed
    after --shutdown-timeout; start; reboot SOFT and HARD), in both dialects. An action the state
    does not allow is Nova's 409. Lock and unlock change nothing on the
    hypervisor. POST /servers with an image that is not there is 400,
    Nova's "Can not find requested image", and makes nothing."""
    with guestless(workdir) as vm:
        w = worlds(os.path.join(workdir, "vols"), extra=["--shutdown-timeout", "1"])
        server = w.server(vm.name)
        w.start()
        before = store_dump(w)
        for dialect in (HOSTWAY, NOVA):
            r = w.req("POST", "/servers", dialect, json={"server": {
                "name": "app", "flavorRef": "1",
                "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}})
            why = assert_fault(r, dialect, 400, "badRequest", "Bad request")
            assert why == "Can not find requested image", why
        assert store_dump(w) == before

        steps = [("pause", "PAUSED", "paused"), ("unpause", "ACTIVE", "running"),
                 ("suspend", "SUSPENDED", "shut off"), ("resume", "ACTIVE", "running"),
                 ("os-stop", "SHUTOFF", "shut off"), ("os-start", "ACTIVE", "running")]
        for i, (action, status, state) in enumerate(steps):
            dialect = (HOSTWAY, NOVA)[i % 2]
            t0 = time.monotonic()
            r = w.req("POST", f"/servers/{server}/action", dialect, json={action: None})
            assert r.status_code == 202, (action, r.text)
            wait_for(f"{action}: {status}", lambda: w.server_body(server)["status"] == status and
                     w.server_body(server)["OS-EXT-STS:task_state"] is None, 60)
            timing(f"{action} to {status}", time.monotonic() - t0)
            assert vm.state() == state, (action, vm.state())
            info = g.virsh("dominfo", vm.name).stdout
            saved = re.search(r"^Managed save:\s+yes$", info, re.M) is not None
            assert saved == (action == "suspend"), (action, info)
        assert "did not power off within 1 s; its domain was destroyed" in w.d.read_log()
        # reboots: the domain off (SOFT asks, then pulls the plug after the
        # timeout; HARD pulls it), then started: a new QEMU, a new domain id
        for kind in ("SOFT", "HARD"):
            before = g.virsh("domid", vm.name).stdout.strip()
            t0 = time.monotonic()
            r = w.req("POST", f"/servers/{server}/action", NOVA, json={"reboot": {"type": kind}})
            assert r.status_code == 202, r.text
            # under way, the status is Nova's for the task (_STATE_MAP); a
            # SOFT reboot of a guestless domain waits the 1 s timeout
            body = w.server_body(server)
            task = body["OS-EXT-STS:task_state"]
            assert task in ({"SOFT": "rebooting"}.get(kind, "rebooting_hard"), None), body
            assert body["status"] == {"rebooting": "REBOOT", "rebooting_hard": "HARD_REBOOT",
                                      None: "ACTIVE"}[task], body
            if kind == "SOFT":
                assert task == "rebooting", body
                r = w.req("GET", "/servers?status=REBOOT", NOVA)
                assert [x["id"] for x in r.json()["servers"]] == [server], r.text
            wait_for(f"{kind} reboot: ACTIVE", lambda: w.server_body(server)["status"] == "ACTIVE"
                     and w.server_body(server)["OS-EXT-STS:task_state"] is None, 60)
            timing(f"reboot {kind} to ACTIVE", time.monotonic() - t0)
            assert vm.state() == "running"
            assert g.virsh("domid", vm.name).stdout.strip() != before, kind
        # a guestless domain's console log (a file) has nothing in it
        r = w.req("POST", f"/servers/{server}/action", NOVA, json={"os-getConsoleOutput": {}})
        assert r.status_code == 200 and r.json() == {"output": ""}, r.text

        r = w.req("POST", f"/servers/{server}/action", NOVA, json={"unpause": None})
        why = assert_fault(r, NOVA, 409, "conflictingRequest", "Conflict")
        assert why == f"Cannot 'unpause' instance {server} while it is in vm_state active", why
        for action in ("lock", "unlock"):
            r = w.req("POST", f"/servers/{server}/action", NOVA, json={action: None})
            assert r.status_code == 202, r.text
        assert vm.state() == "running"
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


def test_attach_refused(idle, worlds, workdir):
    """An attach the hypervisor refuses (QEMU, as libvirt-qemu, cannot open
    a file in a 0700 directory) is 409 in both dialects, with libvirt's
    reason, and leaves nothing: no attachment, the volume available, no
    disk of attachd's kind in the domain, live or defined; `attachd check`
    agrees, and a volume QEMU can open attaches afterwards."""
    [vm] = idle()
    w = worlds(os.path.join(workdir, "vols"))
    server = w.server(vm.name)
    private = os.path.join(workdir, "private")
    os.mkdir(private, 0o700)
    refused = {d: w.volume(path=g.sparse_file(os.path.join(private, f"{d}.img"), GIB))
               for d in (HOSTWAY, NOVA)}
    fine = w.volume(vid())
    w.start()
    for dialect, name in ((HOSTWAY, "conflict"), (NOVA, "conflictingRequest")):
        volume = refused[dialect]
        r = w.attach(server, volume, dialect)
        why = assert_fault(r, dialect, 409, name, "Conflict")
        assert why.startswith(f"The hypervisor refused to attach volume {volume} to server "
                              f"{server}: "), why
        assert "Permission denied" in why, why
        assert w.attachment_rows() == {}
        assert w.volume_status(volume) == "available"
        assert w.attachments(server) == {}
        assert user_disks(vm.name) == {} and user_disks(vm.name, inactive=True) == {}
    assert "The hypervisor refused to attach volume" in w.d.read_log()
    rc, out, err = w.check()
    assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)
    r = w.attach(server, fine)
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"]["device"] == "/dev/sdb"


def test_domain_backs_one_server(idle, worlds, workdir):
    """A domain backs at most one server: `server add --domain` a second
    time, by name or by UUID, in the same account or another, with attachd
    serving or not, is refused ("Domain D is server S already."), exit 2,
    and makes nothing; the first server keeps its disks."""
    [vm] = idle()
    w = worlds(os.path.join(workdir, "vols"))
    first = w.server(vm.name)
    other_account = w.d.add_account("other")
    dom = domain_uuid(vm.name)
    volume = w.volume(vid())
    want = f"attachd: server add: Domain {dom} is server {first} already.\n"

    def refused():
        before = store_dump(w)
        for account in (w.account, other_account):
            for key in (vm.name, dom):
                p = w.d.cli("server", "add", "--account", account, "--name", "again",
                            "--domain", key, *w.hv, check=False)
                assert (p.returncode, p.stdout, p.stderr) == (2, "", want), \
                    (account, key, p.returncode, p.stdout, p.stderr)
        assert store_dump(w) == before
        assert [(s["id"], s["domain"]) for s in w.rows("servers")] == [(first, dom)]

    refused()
    w.start()
    assert w.attach(first, volume).status_code == 200
    refused()
    listed = w.req("GET", "/servers", NOVA).json()["servers"]
    assert [s["id"] for s in listed] == [first], listed
    assert set(w.attachments(first)) == {volume}
    assert len(user_disks(vm.name)) == 1


def http_metrics(w, session):
    """The attachd_http_* and attachd_hypervisor_* samples of GET /metrics:
    {(name, kind label or None): value}."""
    r = session.get(w.d.url("/metrics"), timeout=30)
    assert r.status_code == 200, r.text
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.name.startswith(("attachd_http_", "attachd_hypervisor_")):
                out[(sample.name, sample.labels.get("kind"))] = sample.value
    return out


def test_waiting_detach_holds_no_thread(idle, worlds, workdir, timing):
    """With one HTTP thread (--threads 1), a Hostway detach waiting for the
    hypervisor (virtio-blk on a guestless domain: the unplug is never
    confirmed) is a suspended connection, not a busy thread: other requests
    are answered while it waits, each before the detach's own answer (the
    202 after --hostway-detach-wait), and /metrics counts it suspended."""
    [vm] = idle()
    w = worlds(os.path.join(workdir, "vols"), bus="virtio",
               extra=["--threads", "1", "--detach-timeout", "12",
                      "--hostway-detach-wait", "10"])
    server = w.server(vm.name)
    volume = w.volume(vid())
    admin = w.d.session(*w.d.add_user(w.account, role="admin"))
    w.start()
    assert w.attach(server, volume).status_code == 200
    alias = w.alias_of(volume)

    t0 = time.monotonic()
    p = Pending(w.detach, server, volume, session=w.session())
    wait_for("the detach intent", lambda: w.attachment_rows()[volume]["status"] ==
             "detaching", 10)
    m = wait_for("the detach pending at the hypervisor", lambda: (lambda m: m if m[
        ("attachd_hypervisor_operations_pending", "detach")] == 1 else None)(
        http_metrics(w, admin)), 10)
    assert not p.done(), "the detach was answered before the other requests were made"
    assert m[("attachd_http_requests_suspended", None)] >= 1, m
    reads = [("servers", HOSTWAY, "/servers"), ("servers", NOVA, "/servers/detail"),
             ("attachment", HOSTWAY, f"/servers/{server}/os-volume_attachments/{volume}"),
             ("attachment", NOVA, f"/servers/{server}/os-volume_attachments/{volume}"),
             ("volume", HOSTWAY, f"/volumes/{volume}")]
    for what, dialect, path in reads:
        t1 = time.monotonic()
        r = w.req("GET", path, dialect)
        assert r.status_code == 200, (path, r.text)
        assert not p.done(), f"GET {path} was answered only after the detach"
        timing(f"{dialect} GET of the {what} while the detach waits", time.monotonic() - t1)
    assert w.volume_status(volume) == "detaching"
    assert not p.done()
    r = p.get()
    assert r.status_code == 202, r.text
    timing("the waiting detach answered 202 after", time.monotonic() - t0)
    assert alias in user_disks(vm.name)
    wait_for("the detach given up", lambda: w.attachment_rows()[volume]["status"] ==
             "attached", 30)


def test_periodic_reconcile(idle, worlds, relay, workdir, timing):
    """--reconcile-interval 1: what reconcile.c does every interval, seen
    while attachd keeps serving (no restart).

    An intent left pending: an attach whose completion cannot commit (the
    test holds SQLite's write lock past attachd's 5 s busy timeout, after
    libvirt attached the disk) is answered 503 and stays "attaching" with
    no task; the next reconciliation logs "was left attaching; settling
    it" and records the attach the domain has.

    A disagreement made behind attachd's back (virsh detaches a disk
    attachd attached): logged as a disagreement at every reconciliation,
    never "fixed" (the store still says attached), and `attachd check`
    names the same."""
    [vm] = idle()
    dom = domain_uuid(vm.name)
    w = worlds(os.path.join(workdir, "vols"), uri=relay.uri,
               extra=["--reconcile-interval", "1"])
    server = w.server(vm.name)
    left, lost = w.volume(vid()), w.volume(vid())
    w.start()
    assert "reconcile: the store and the hypervisor agree (1 servers)" in w.d.read_log()

    # -- an intent left pending
    relay.hold()
    try:
        p = Pending(w.attach, server, left, session=w.session())
        wait_for("the attach intent", lambda: w.attachment_rows().get(left, {}).get(
            "status") == "attaching", 10)
        assert relay.wait_held(5), "attachd did not call libvirt"
        alias = w.alias_of(left)
        with write_lock(w.d.db):
            relay.release()
            wait_for("the disk in the domain", lambda: alias in user_disks(vm.name), 15, 0.02)
            wait_for("the completion failing", lambda: "the completion could not be "
                     "committed" in w.d.read_log(), 20)
    finally:
        relay.release()
    r = p.get()
    assert r.status_code == 503, r.text
    t0 = time.monotonic()
    settling = f"reconcile: server {server} volume {left} was left attaching; settling it"
    wait_for("the reconciler settling the intent", lambda: settling in w.d.read_log(), 30)
    wait_for("the attach recorded", lambda: w.attachment_rows()[left]["status"] ==
             "attached", 30)
    timing("intent left attaching: settled after", time.monotonic() - t0)
    assert w.volume_status(left) == "in-use"
    assert "ua-" + w.attachments(server)[left]["attachment_id"] == alias
    assert api_matches_xml(w, server, vm.name).keys() == {left}
    assert w.d.proc.poll() is None

    # -- a disagreement behind attachd's back
    r = w.attach(server, lost)
    assert r.status_code == 200, r.text
    device = r.json()["volumeAttachment"]["device"]
    lost_alias = w.alias_of(lost)
    line = (f"reconcile: server {server} volume {lost}: attached as {device} in the store, "
            f"but the domain {dom} has no disk {lost_alias}")
    assert line not in w.d.read_log()
    g.virsh("detach-device-alias", vm.name, lost_alias, "--live", "--config")
    assert vm.wait_alias_gone(lost_alias, timeout=10)
    t0 = time.monotonic()
    wait_for("the disagreement logged", lambda: line in w.d.read_log(), 30)
    timing("disk detached by virsh: logged after", time.monotonic() - t0)
    wait_for("the disagreement logged again", lambda: w.d.read_log().count(line) >= 2, 30)
    assert w.attachment_rows()[lost]["status"] == "attached"     # reported, not fixed
    assert w.volume_status(lost) == "in-use"
    assert set(w.attachments(server)) == {left, lost}
    rc, out, err = w.check()
    assert (rc, out) == (1, f"server {server} volume {lost}: attached as {device} in the "
                            f"store, but the domain {dom} has no disk {lost_alias}\n"), \
        (rc, out, err)
    assert w.d.proc.poll() is None


# ---------------------------------------------------------------------------
# servers attachd creates (POST /servers): a domain defined and started

TINY = "[flavor 1]\nname = t1.tiny\nvcpus = 1\nram_mb = 128\ndisk_gb = 1\n"


def server_world(worlds, workdir, guest_dir, **kw):
    """A World whose flavor 1 fits the test machine (1 vCPU, 128 MiB, TCG),
    and the test guest as an image (an empty raw disk booted by direct
    kernel boot); (world, image id)."""
    voldir = os.path.join(workdir, "vols")
    conf = os.path.join(workdir, "flavors.conf")
    with open(conf, "w") as f:
        f.write(TINY)
    w = worlds(voldir, extra=["--config", conf, "--virt-type", "qemu"], **kw)
    with open(os.path.join(guest_dir, "cmdline")) as f:
        cmdline = f.read().strip()
    raw = g.sparse_file(os.path.join(workdir, "guest.raw"), 32 << 20)
    image = w.d.cli("image", "add", "--name", "guest", "--file", raw,
                    "--kernel", os.path.join(guest_dir, "vmlinuz"),
                    "--initrd", os.path.join(guest_dir, "initrd.img"), "--cmdline", cmdline,
                    "--image-dir", os.path.join(workdir, "images")).stdout.strip()
    return w, image


@contextlib.contextmanager
def created(w):
    """Removes, at the end, any domain of attachd's that a failed test left."""
    made = []
    try:
        yield made
    finally:
        for sid in made:
            name = f"attachd-{sid}"
            g.virsh("destroy", name, check=False)
            g.virsh("undefine", "--nvram", "--managed-save", name, check=False)


def create_server(w, image, made, dialect=NOVA):
    r = w.req("POST", "/servers", dialect, json={"server": {
        "name": "made", "imageRef": image, "flavorRef": "1"}})
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    made.append(sid)
    return sid


def domain_exists(name):
    return g.virsh("dominfo", name, check=False).returncode == 0


def server_status(w, sid):
    r = w.req("GET", f"/servers/{sid}", NOVA, mv="2.89")
    return r.json()["server"]["status"] if r.status_code == 200 else r.status_code


def busy_time(calls):
    """Seconds during which at least one of CALLS (with a reply) was in flight."""
    total, end = 0.0, None
    for c in sorted(calls, key=lambda c: c.sent):
        if end is None or c.sent > end:
            total += c.replied - c.sent
            end = c.replied
        elif c.replied > end:
            total += c.replied - end
            end = c.replied
    return total


def test_server_created_as_a_domain(libvirt_env, guest_dir, worlds, relay, workdir, timing):
    """POST /servers defines and starts a domain: BUILD, then ACTIVE once
    it runs; the domain is "attachd-<server id>" with the server's id as
    its UUID, the flavor's vCPUs and memory, a root disk that is a qcow2
    overlay of the image in the instance directory, no network, and a
    console log in which the guest boots. A volume attaches to it as to any
    server. DELETE destroys and undefines it, removes its files and leaves
    the volume available. (Through the relay, which times the libvirt
    calls: the share of the create spent inside them is printed.)"""
    w, image = server_world(worlds, workdir, guest_dir, uri=relay.uri)
    volume = w.volume(vid())
    w.start()
    with created(w) as made:
        n0 = len(relay.calls)
        t0 = time.monotonic()
        sid = create_server(w, image, made)
        assert server_status(w, sid) in ("BUILD", "ACTIVE")
        wait_for("the server ACTIVE", lambda: server_status(w, sid) == "ACTIVE", 60, 0.01)
        took = time.monotonic() - t0
        calls = [c for c in relay.calls[n0:] if c.replied and c.replied <= t0 + took]
        assert calls and any(c.names(sid) for c in calls), "no libvirt call on the domain"
        timing("POST /servers to ACTIVE", took)
        timing(f"  of which in libvirt calls ({len(calls)})", busy_time(calls))
        name = f"attachd-{sid}"
        assert g.virsh("domstate", name).stdout.strip() == "running"
        assert domain_uuid(name) == sid
        root = ET.fromstring(g.virsh("dumpxml", "--inactive", name).stdout)
        assert root.findtext("vcpu") == "1"
        assert int(root.findtext("memory")) == 128 * 1024          # KiB
        assert root.find("devices/interface") is None
        inst = os.path.join(w.instdir, sid)
        assert "disk.qcow2" in os.listdir(inst), os.listdir(inst)
        console = os.path.join(inst, "console.log")
        wait_for("the guest's boot on its console log", lambda: os.path.exists(console) and
                 b"ATTACHD-GUEST READY" in open(console, "rb").read(), g.BOOT_TIMEOUT, 0.5)
        body = w.server_body(sid)
        assert body["OS-EXT-STS:vm_state"] == "active" and "fault" not in body, body
        # Nova's os-getConsoleOutput: the log, or its last lines
        r = w.req("POST", f"/servers/{sid}/action", NOVA, json={"os-getConsoleOutput": {}})
        assert r.status_code == 200, r.text
        whole = r.json()["output"]
        assert "ATTACHD-GUEST READY" in whole and "\r" not in whole, whole[-500:]
        r = w.req("POST", f"/servers/{sid}/action", HOSTWAY,
                  json={"os-getConsoleOutput": {"length": 3}})
        assert r.status_code == 200, r.text
        # the guest may print between the two requests: the answer is the last
        # three lines (fewer when the log has fewer) of the log as it was at
        # some moment after the first read, a prefix of the log read after it
        tail = r.json()["output"]
        r = w.req("POST", f"/servers/{sid}/action", NOVA, json={"os-getConsoleOutput": {}})
        after = r.json()["output"]
        assert after.startswith(whole), (whole[-200:], after[-200:])
        ends = [e for e in range(len(whole), len(after) + 1) if after[:e].endswith(tail)]
        assert any("\n".join(after[:e].split("\n")[-3:]) == tail for e in ends), \
            (tail, after[-300:])

        r = w.attach(sid, volume)
        assert r.status_code == 200, r.text
        assert r.json()["volumeAttachment"]["device"] == "/dev/sdb"
        assert "ua-" + w.attachment_rows()[volume]["id"] in user_disks(name)

        r = w.req("DELETE", f"/servers/{sid}", NOVA)
        assert r.status_code == 204, r.text
        wait_for("the server gone", lambda: server_status(w, sid) == 404, 60)
        assert not domain_exists(name)
        assert not os.path.exists(inst)
        assert w.volume_status(volume) == "available"
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


@pytest.mark.parametrize("how", ["image-gone", "no-space"])
def test_server_create_failure_leaves_nothing(libvirt_env, guest_dir, worlds, workdir, how):
    """A create the hypervisor cannot carry out (the image's file is gone;
    no room for the overlay: the instance directory on a full tmpfs) ends
    with the server in ERROR and a fault (Nova's code 500) that says why,
    and nothing behind: no domain, no instance directory. The server can
    then be deleted."""
    w, image = server_world(worlds, workdir, guest_dir)
    mounted = False
    if how == "image-gone":
        shown = json.loads(w.d.cli("image", "show", image, "--format", "json").stdout)
        os.unlink(shown["path"])
        why = "No such file or directory"
    else:
        os.makedirs(w.instdir, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "attachd-test",
                            w.instdir], capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        mounted = True
        with open(os.path.join(w.instdir, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass                        # full
        why = "No space left on device"
    try:
        w.start()
        with created(w) as made:
            sid = create_server(w, image, made, HOSTWAY)
            wait_for("the server in ERROR", lambda: server_status(w, sid) == "ERROR", 60)
            body = w.server_body(sid)
            assert body["fault"]["code"] == 500, body
            message = body["fault"]["message"]
            assert message.startswith("The server could not be created: "), body
            assert why in message, message
            assert not domain_exists(f"attachd-{sid}")
            assert not os.path.exists(os.path.join(w.instdir, sid))
            r = w.req("DELETE", f"/servers/{sid}", NOVA)
            assert r.status_code == 204, r.text
            wait_for("the server gone", lambda: server_status(w, sid) == 404, 30)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", w.instdir])


def test_server_create_kill9(libvirt_env, guest_dir, worlds, relay, workdir):
    """attachd killed (SIGKILL) after a create's intent is committed and
    answered 202, before libvirt got its call (held by the relay): started
    again, it defines and starts the domain itself (the server was left
    spawning), and the server becomes ACTIVE."""
    w, image = server_world(worlds, workdir, guest_dir, uri=relay.uri)
    w.start()
    with created(w) as made:
        relay.hold()
        try:
            sid = create_server(w, image, made)                 # acknowledged
            assert relay.wait_held(5), "attachd did not call libvirt"
            w.d.kill9()
            relay.cut()                 # what attachd sent never reaches libvirtd
        finally:
            relay.release()
        assert not domain_exists(f"attachd-{sid}")
        assert w.rows("servers")[0]["task_state"] == "spawning"
        w.start()
        wait_for("the server ACTIVE", lambda: server_status(w, sid) == "ACTIVE", 60)
        assert f"server {sid} was left spawning" in w.d.read_log()
        assert g.virsh("domstate", f"attachd-{sid}").stdout.strip() == "running"
        r = w.req("DELETE", f"/servers/{sid}", NOVA)
        assert r.status_code == 204, r.text
        wait_for("the server gone", lambda: server_status(w, sid) == 404, 60)
        assert not domain_exists(f"attachd-{sid}")


SERVER_KILL9 = [("create", "before-completion"), ("stop", "before-libvirt"),
                ("stop", "before-completion"), ("delete", "before-libvirt"),
                ("delete", "before-completion")]


@pytest.mark.parametrize("op,window", SERVER_KILL9, ids=[f"{o}-{w}" for o, w in SERVER_KILL9])
def test_server_task_kill9(libvirt_env, guest_dir, worlds, relay, workdir, op, window):
    """attachd killed (SIGKILL) with a server's create, stop or delete half
    done, after it was answered (202 or 204: acknowledged), then started
    again: the reconciler finishes it, and the store and the hypervisor
    agree. The windows are made as test_kill9 makes them (not a race):
    before-libvirt, the relay holds what attachd sends and throws it away;
    before-completion, SQLite's write lock is taken from the test, the call
    reaches libvirtd, and attachd is killed once the domain has changed
    (running; shut off; gone), so that the completion never commits. (A
    create killed before libvirt is test_server_create_kill9.) The guest
    ignores ACPI, so a stop is a destroy after --shutdown-timeout 1."""
    w, image = server_world(worlds, workdir, guest_dir, uri=relay.uri)
    w.d.extra_args = [*w.d.extra_args, "--shutdown-timeout", "1"]
    w.start()
    with created(w) as made:
        name = None
        if op != "create":
            sid = create_server(w, image, made)
            name = f"attachd-{sid}"
            wait_for("the server ACTIVE", lambda: server_status(w, sid) == "ACTIVE", 60)
        want_task = {"create": "spawning", "stop": "powering-off", "delete": "deleting"}[op]
        done = {"create": lambda: g.virsh("domstate", name, check=False).stdout.strip()
                == "running",
                "stop": lambda: g.virsh("domstate", name).stdout.strip() == "shut off",
                "delete": lambda: not domain_exists(name)}[op]
        relay.hold()
        try:
            if op == "create":
                sid = create_server(w, image, made)             # acknowledged
                name = f"attachd-{sid}"
            elif op == "stop":
                r = w.req("POST", f"/servers/{sid}/action", NOVA, json={"os-stop": None})
                assert r.status_code == 202, r.text
            else:
                r = w.req("DELETE", f"/servers/{sid}", NOVA)
                assert r.status_code == 204, r.text
            assert w.rows("servers")[0]["task_state"] == want_task
            assert relay.wait_held(5), "attachd did not call libvirt"
            if window == "before-libvirt":
                w.d.kill9()
                relay.cut()             # what attachd sent never reaches libvirtd
                relay.release()
                assert g.virsh("domstate", name).stdout.strip() == "running"
            else:
                with write_lock(w.d.db):
                    relay.release()     # the calls reach libvirtd now
                    wait_for(f"libvirt done with the {op}", done, 15, 0.02)
                    w.d.kill9()
                assert "could not be committed" not in w.d.read_log(), "the lock was held too long"
        finally:
            relay.release()
        assert w.rows("servers")[0]["task_state"] == want_task     # not completed
        w.start()
        assert f"server {sid} was left {want_task}" in w.d.read_log()
        if op == "delete":
            wait_for("the server gone", lambda: server_status(w, sid) == 404, 60)
            assert not domain_exists(name)
            assert w.rows("servers") == []
            assert not os.path.exists(os.path.join(w.instdir, sid))
        else:
            status, state = ("ACTIVE", "running") if op == "create" else ("SHUTOFF", "shut off")
            wait_for(f"the server {status}", lambda: server_status(w, sid) == status and
                     w.server_body(sid)["OS-EXT-STS:task_state"] is None, 60)
            assert g.virsh("domstate", name).stdout.strip() == state
            assert w.server_body(sid)["OS-EXT-STS:power_state"] == (1 if op == "create" else 4)
        rc, out, err = w.check()
        assert (rc, out) == (0, "the store and the hypervisor agree\n"), (rc, out, err)


def test_check_reports_a_domain_no_server_is(libvirt_env, guest_dir, worlds, workdir):
    """A domain attachd defined whose server the store no longer has (here
    removed behind attachd's back) is reported by `attachd check` (exit 1),
    and left alone."""
    w, image = server_world(worlds, workdir, guest_dir)
    w.start()
    with created(w) as made:
        sid = create_server(w, image, made)
        wait_for("the server ACTIVE", lambda: server_status(w, sid) == "ACTIVE", 60)
        w.stop()
        con = sqlite3.connect(w.d.db)
        with con:
            con.execute("DELETE FROM servers WHERE id = ?", (sid,))
        con.close()
        rc, out, err = w.check()
        assert rc == 1, (rc, out, err)
        assert out == (f"server -: the domain attachd-{sid} ({sid}) that attachd defined is "
                       "no server's\n"), out
        assert g.virsh("domstate", f"attachd-{sid}").stdout.strip() == "running"


def guest_disks(console_text):
    """{guest name: serial} from the latest DISKS line of a console text."""
    latest = None
    for line in console_text.split("\n"):
        m = re.search(g.MARK + r" DISKS(?: (.*))?$", line.rstrip("\r"))
        if m:
            latest = m.group(1) or ""
    return None if latest is None else g.parse_disks(latest)


def test_openstack_cli_whole_flow(libvirt_env, guest_dir, worlds, workdir, tmp_path, timing):
    """The `openstack` CLI's whole flow on a real VM: a server created from
    an image and a flavor named (--wait), a volume added (the guest's
    console, read with `console log show`, lists its serial), removed (the
    guest no longer has it), the server deleted (--wait): the domain gone."""
    w, image = server_world(worlds, workdir, guest_dir)
    volume = w.volume(vid())
    w.start()
    openstack = OpenstackCLI(tmp_path, w.d.base, w.user, w.password, w.account, "2.37")

    serial = g.expected_serial(volume, "scsi")

    def seen():
        return guest_disks(openstack("console", "log", "show", sid, as_json=False)) or {}

    with created(w) as made:
        t0 = time.monotonic()
        s = openstack("server", "create", "--flavor", "t1.tiny", "--image", "guest",
                      "--nic", "none", "--wait", "cli-vm")
        sid = s["id"]
        made.append(sid)
        timing("openstack server create --wait", time.monotonic() - t0)
        assert s["status"] == "ACTIVE" and s["flavor"].startswith("t1.tiny"), s
        assert g.virsh("domstate", f"attachd-{sid}").stdout.strip() == "running"
        wait_for("the guest's first DISKS line", lambda: seen() != {}, g.BOOT_TIMEOUT, 0.5)

        openstack("server", "add", "volume", sid, volume, as_json=False)
        wait_for("the guest seeing the volume", lambda: serial in seen().values(), 30, 0.5)
        assert openstack("volume", "show", volume)["status"] == "in-use"

        openstack("server", "remove", "volume", sid, volume, as_json=False)
        wait_for("the volume available", lambda: w.volume_status(volume) == "available", 30)
        wait_for("the guest no longer seeing it", lambda: serial not in seen().values(), 30, 0.5)

        t0 = time.monotonic()
        openstack("server", "delete", "--wait", sid, as_json=False)
        timing("openstack server delete --wait", time.monotonic() - t0)
        assert not domain_exists(f"attachd-{sid}")
        assert openstack("server", "list") == []


def test_cinder_volume_create_makes_the_file(worlds, workdir):
    """Cinder's POST /v3/{project}/volumes under libvirt: 202 with the volume
    creating (or available, if its file was quicker than the answer), then
    available with a sparse file of its size; DELETE 202, then the volume
    and its file are gone."""
    voldir = os.path.join(workdir, "vols")
    w = worlds(voldir)
    w.start()
    base = f"{w.d.base}/v3/{w.account}/volumes"
    r = w.s.post(base, json={"volume": {"size": 2, "name": "by-cinder"}}, timeout=60)
    assert r.status_code == 202, r.text
    v = r.json()["volume"]
    assert v["status"] in ("creating", "available"), v
    wait_for("the volume available",
             lambda: w.s.get(f"{base}/{v['id']}").json()["volume"]["status"] == "available", 30)
    assert_sparse(volume_file(voldir, v["id"]), 2 * GIB)
    r = w.s.delete(f"{base}/{v['id']}", timeout=60)
    assert r.status_code == 202, r.text
    wait_for("the volume gone", lambda: w.s.get(f"{base}/{v['id']}").status_code == 404, 30)
    assert not os.path.exists(volume_file(voldir, v["id"]))


def test_server_booted_from_a_volume(libvirt_env, guest_dir, worlds, workdir):
    """POST /servers with a root volume (block_device_mapping_v2, boot_index
    0): the domain's vda is that volume's file (virtio-blk), there is no
    overlay, and the server is ACTIVE once the domain runs (the empty volume
    boots nothing: the firmware finds no OS, the domain still runs). DELETE
    with delete_on_termination takes the volume and its file too."""
    w, _ = server_world(worlds, workdir, guest_dir)
    root = w.volume(vid())
    w.start()
    with created(w) as made:
        r = w.req("POST", "/servers", NOVA, json={"server": {
            "name": "bfv", "flavorRef": "1", "block_device_mapping_v2": [
                {"boot_index": 0, "source_type": "volume", "destination_type": "volume",
                 "uuid": root, "delete_on_termination": True}]}})
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        made.append(sid)
        wait_for("the server ACTIVE", lambda: server_status(w, sid) == "ACTIVE", 60)
        name = f"attachd-{sid}"
        vda = [d for d in disks(name, inactive=True).values() if d["target"] == "vda"]
        assert len(vda) == 1 and vda[0]["path"] == volume_file(w.voldir, root), vda
        assert vda[0]["bus"] == "virtio", vda
        assert not os.path.exists(os.path.join(w.instdir, sid, "disk.qcow2"))
        assert w.volume_status(root) == "in-use"
        r = w.req("DELETE", f"/servers/{sid}", NOVA)
        assert r.status_code == 204, r.text
        wait_for("the server gone", lambda: server_status(w, sid) == 404, 60)
        assert not domain_exists(name)
        assert w.req("GET", f"/volumes/{root}").status_code == 404
        assert not os.path.exists(volume_file(w.voldir, root))


# ---------------------------------------------------------------------------
# 11. two nodes on PostgreSQL: a standby finishes what the holder began

PG_ENV = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "scripts", "pg-env")


@pytest.fixture
def pg_db():
    """A database on a throwaway PostgreSQL cluster of the test's own
    (scripts/pg-env in a fresh directory, which installs PostgreSQL when it
    is missing; destroyed at the end): nothing else restarts it meanwhile."""
    state = tempfile.mkdtemp(prefix=f"attachd-libvirt-pg-{os.getpid()}-")
    try:
        p = subprocess.run([PG_ENV, "start", state], capture_output=True, text=True,
                           timeout=600)
        if p.returncode != 0:     # as conftest's unavailable(): under CI, a failure
            why = f"scripts/pg-env start failed: {p.stdout}{p.stderr}"
            if os.environ.get("CI") == "true":
                pytest.fail(why, pytrace=False)
            pytest.skip(why)
        conninfo = subprocess.run([PG_ENV, "conninfo", state], capture_output=True, text=True,
                                  check=True).stdout.strip()
        psql("CREATE DATABASE attachd_lv TEMPLATE template0", conninfo)
        yield f"{conninfo} dbname=attachd_lv"
    finally:
        subprocess.run([PG_ENV, "destroy", state], capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def test_standby_finishes_the_holders_detach(idle, worlds, relay, workdir, pg_db, tmp_path):
    """Two libvirt nodes on one PostgreSQL database: the holder of the
    hypervisor's lease, and a `--standby` that serves nothing while the
    holder lives. The holder acknowledges a Nova detach (202: its intent is
    committed) and is killed (-9) before its call reaches libvirtd (held by
    the relay, then thrown away). The standby takes the lease once the
    database has ended the holder's session, waits out the lease, and its
    reconciler finishes the detach: the disk leaves the domain, the volume
    is available. Then it drives the hypervisor for new requests too."""
    lease = ["--hypervisor-lease", "3"]
    [vm] = idle()
    dom = vm.name
    voldir = os.path.join(workdir, "vols")
    w = worlds(voldir, uri=relay.uri, extra=lease, db=pg_db)
    server = w.server(dom)
    base, x = w.volume(vid()), w.volume(vid())
    w.start()
    assert w.attach(server, base).status_code == 200
    assert w.attach(server, x).status_code == 200
    alias = "ua-" + w.attachments(server)[x]["attachment_id"]
    assert alias in user_disks(dom, inactive=True)

    sdir = tmp_path / "standby"
    sdir.mkdir()
    standby = Attachd(sdir, extra_args=["--driver", "libvirt", "--volume-dir", voldir,
                                        "--instance-dir", w.instdir, "--standby", *lease])
    standby.db, standby.pg, standby.migrated = pg_db, True, True
    standby.log = open(standby.log_path, "ab")
    standby.proc = subprocess.Popen(
        [binary(), "serve", "--listen", f"127.0.0.1:{standby.port}", "--db", pg_db,
         *standby.extra_args], stdout=standby.log, stderr=subprocess.STDOUT)
    holder = w.d
    try:
        wait_for("the standby waits", lambda: "standby: another attachd drives the "
                 "hypervisor" in standby.read_log(), 30)

        relay.hold()
        try:
            r = w.detach(server, x, NOVA)
            assert r.status_code == 202, r.text                 # acknowledged
            assert w.volume_status(x) == "detaching"
            assert relay.wait_held(5), "the holder did not call libvirt"
            holder.kill9()
            relay.cut()             # what the holder sent never reaches libvirtd
        finally:
            relay.release()
        assert alias in user_disks(dom, inactive=True), "libvirt acted before the kill"

        def serving():
            assert standby.proc.poll() is None, standby.read_log()[-3000:]
            try:
                return requests.get(standby.base + "/healthcheck", timeout=5).status_code == 200
            except requests.ConnectionError:
                return False
        wait_for("the standby serves", serving, 60, 0.2)
        w.d = standby           # the World's requests go to the new holder from here
        w.s = w.session()
        wait_for("the detach finished", lambda: x not in w.attachments(server) and
                 w.volume_status(x) == "available", 60, 0.2)
        assert alias not in user_disks(dom) and alias not in user_disks(dom, inactive=True)
        log = standby.read_log()
        assert "this node holds the hypervisor's lease" in log, log[-3000:]
        assert f"volume {x} was left detaching; settling it" in log, log[-3000:]
        listed = api_matches_xml(w, server, dom)
        assert base in listed and w.volume_status(base) == "in-use"
        # and it drives the hypervisor for what comes next
        base_alias = "ua-" + listed[base]["attachment_id"]
        r = w.detach(server, base)
        assert r.status_code == 204, r.text
        assert base_alias not in user_disks(dom, inactive=True)
    finally:
        if holder.proc is not None:
            holder.kill9()
