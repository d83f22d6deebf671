"""The libvirt driver (src/driver/libvirt.c) against real libvirt and real
TCG domains, through tests/libvirt/driver_check (built by meson next to the
unit tests).

Domains come from tests/support/guest.py: booted ones (a tiny Linux that
prints the serials of the disks it sees) where a test needs to see what the
guest sees, guestless ones otherwise. At most 2 run at once, 128 MiB each.

driver_check runs in two ways: one command per process (`dc(...)`), or a
long-lived `shell` (`Shell`) that prints the driver's events as they come,
which the tests for events and for a libvirtd restart need.

Timings (driver calls against `virsh` on the same domain) are printed at the
end of the run, never asserted: TCG on a shared 2-core machine is noisy.
"""
import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import statistics
import stat
import subprocess
import threading
import time
import uuid

import pytest

import guest as g

URI = g.URI
# Same paths as conftest.py: the session fixture's locks and state dir.
LOCKS = "/run/lock/attachd-libvirt-tests"
USERS, DECIDE = f"{LOCKS}.users", f"{LOCKS}.decide"
STATEDIR = os.path.join(g.ROOT, "build", "libvirt-env")
GRACE = 1.0         # seconds a detach waits for DEVICE_REMOVED (DETACH_GRACE_MS)


def driver_check_path():
    """$DRIVER_CHECK, else next to $ATTACHD_BIN (BUILD/attachd), else build/."""
    if os.environ.get("DRIVER_CHECK"):
        return os.environ["DRIVER_CHECK"]
    build = os.path.dirname(os.environ.get("ATTACHD_BIN", os.path.join(g.ROOT, "build", "x")))
    return os.path.join(build, "tests", "libvirt", "driver_check")


@pytest.fixture(scope="session")
def dcbin():
    p = driver_check_path()
    if not os.access(p, os.X_OK):
        pytest.skip(f"{p} is not built (meson setup build && ninja -C build)")
    return p


def parse(out):
    return [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]


def dc(dcbin, voldir, *args, uri=URI, timeout=120, owner=None):
    """One driver_check command; returns its result object (the JSON line
    whose "cmd" is args[0]) and the process's wall time. OWNER: the owner
    the driver opens with (driver_check's own, "driver_check", by default)."""
    env = dict(os.environ)
    if owner is not None:
        env["DRIVER_CHECK_OWNER"] = owner
    t0 = time.monotonic()
    p = subprocess.run([dcbin, uri, voldir, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    wall = time.monotonic() - t0
    lines = parse(p.stdout)
    res = [o for o in lines if o.get("cmd") == args[0]]
    assert res, f"driver_check {args}: no result; stdout {p.stdout!r} stderr {p.stderr!r}"
    want = 0 if res[0]["rc"] in ("OK", "PENDING") else 1
    assert p.returncode == want, (p.returncode, p.stdout, p.stderr)
    return res[0], wall


class Shell:
    """driver_check URI VOLDIR shell: one driver for the whole test, events
    collected as they come."""

    def __init__(self, dcbin, voldir, uri=URI):
        self.proc = subprocess.Popen([dcbin, uri, voldir, "shell"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.results = queue.Queue()
        self.events = []
        self.cond = threading.Condition()
        self.stderr = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        opened = self.results.get(timeout=120)
        assert opened["cmd"] == "open" and opened["rc"] == "OK", opened

    def _read(self):
        for ln in self.proc.stdout:
            if not ln.startswith("{"):
                continue
            o = json.loads(ln)
            if "event" in o:
                with self.cond:
                    self.events.append(o)
                    self.cond.notify_all()
            else:
                self.results.put(o)

    def _read_err(self):
        for ln in self.proc.stderr:
            self.stderr.append(ln.rstrip())

    def __call__(self, *args, timeout=120):
        self.proc.stdin.write(" ".join(map(str, args)) + "\n")
        self.proc.stdin.flush()
        o = self.results.get(timeout=timeout)
        assert o["cmd"] == args[0], o
        return o

    def wait_event(self, timeout, **match):
        """The first event (collected since the shell started) whose fields
        include MATCH; None after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if all(e.get(k) == v for k, v in match.items()):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        """Quit; returns driver_check's exit status (a sanitizer's report
        at exit makes it non-zero)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def shell(dcbin, workdir):
    shells = []

    def make(voldir=None, uri=URI):
        s = Shell(dcbin, voldir or os.path.join(workdir, "vols"), uri)
        shells.append(s)
        return s
    yield make
    failed = [(s.close(), s.stderr[-20:]) for s in shells]
    failed = [f for f in failed if f[0] != 0]
    assert not failed, f"driver_check shell exited non-zero: {failed}"


def vid():
    return str(uuid.uuid4())


def new_volume(sh, size=64 << 20):
    """A volume file made by the driver; returns (volume id, path)."""
    v = vid()
    r = sh("volume-create", v, size)
    assert r["rc"] == "OK", r
    return v, r["path"]


def disks_by_alias(sh, dom):
    r = sh("list", dom)
    assert r["rc"] == "OK", r
    return {d["alias"]: d for d in r["disks"] if d["alias"]}


def detach_done(sh, dom, att, uuid_, timeout=30):
    """Detach; when PENDING, wait for disk_removed. Returns (rc, seconds
    until the removal was seen)."""
    t0 = time.monotonic()
    r = sh("detach", dom, att)
    assert r["rc"] in ("OK", "PENDING"), r
    if r["rc"] == "PENDING":
        ev = sh.wait_event(timeout, event="disk_removed", domain=uuid_, alias=f"ua-{att}")
        assert ev, f"no disk_removed for ua-{att} within {timeout}s"
    return r, time.monotonic() - t0


def define_only(vm):
    """Define VM (a guest.Guest) without starting it."""
    vm._prepare()
    path = os.path.join(vm.workdir, f"{vm.name}.xml")
    with open(path, "w") as f:
        f.write(vm.xml())
    g.virsh("define", path)


def boot_defined(vm, retries=1):
    """Start a domain define_only() made and wait for its guest's READY; a
    boot stuck under TCG is destroyed and started again (as Guest.boot does).
    Returns the seconds from start to READY."""
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


# ---------------------------------------------------------------------------
# volume files: no domain needed

def test_volume_files(libvirt_env, dcbin, workdir):
    voldir = os.path.join(workdir, "made", "vols")         # missing: the driver makes it
    r, _ = dc(dcbin, voldir, "volume-create", "..", 1 << 20)
    assert r["rc"] == "OK" and r["path"] == os.path.join(voldir, "vol-...img"), r
    st = os.stat(voldir)
    assert stat.S_IMODE(st.st_mode) == 0o755
    st = os.stat(r["path"])
    assert st.st_size == 1 << 20 and st.st_blocks == 0, "sparse"
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert dc(dcbin, voldir, "volume-create", "..", 1 << 20)[0]["rc"] == "OK"   # idempotent
    again, _ = dc(dcbin, voldir, "volume-create", "..", 2 << 20)
    assert again["rc"] == "REFUSED" and "1048576" in again["error"], again
    dot, _ = dc(dcbin, voldir, "volume-create", ".", 4096)
    assert dot["path"] == os.path.join(voldir, "vol-..img"), dot

    long_id = "a" * 200 + "." * 50 + "~:-_Z"                # 255 characters
    a, _ = dc(dcbin, voldir, "volume-create", long_id, 4096)
    b, _ = dc(dcbin, voldir, "volume-create", long_id, 4096)
    assert a["rc"] == b["rc"] == "OK" and a["path"] == b["path"]        # stable
    name = os.path.basename(a["path"])
    assert os.path.dirname(a["path"]) == voldir and len(name.encode()) <= 255, name
    other, _ = dc(dcbin, voldir, "volume-create", "a" * 200 + "." * 50 + "~:-_Y", 4096)
    assert other["path"] != a["path"]
    for bad in ("a" * 256, "a/b", "x y"):
        r, _ = dc(dcbin, voldir, "volume-create", bad, 4096)
        assert r["rc"] == "REFUSED" and "invalid volume id" in r["error"], r

    p, _ = dc(dcbin, voldir, "probe", a["path"])
    assert p["rc"] == "OK" and p["bytes"] == 4096 and p["block"] is False, p
    assert dc(dcbin, voldir, "probe", os.path.join(voldir, "nope"))[0]["rc"] == "NOT_FOUND"
    assert dc(dcbin, voldir, "probe", voldir)[0]["rc"] == "REFUSED"     # a directory

    for path in (a["path"], a["path"]):                     # gone already: fine
        assert dc(dcbin, voldir, "volume-delete", path)[0]["rc"] == "OK"
    assert not os.path.exists(a["path"])
    keep = os.path.join(workdir, "not-a-volume.img")
    g.sparse_file(keep, 4096)
    for path in (keep, os.path.join(voldir, "..", "..", "not-a-volume.img")):
        assert dc(dcbin, voldir, "volume-delete", path)[0]["rc"] == "REFUSED"
    assert os.path.exists(keep)
    assert sorted(os.listdir(voldir)) == sorted(["vol-..img", "vol-...img",
                                                 os.path.basename(other["path"])])


def test_volume_dir_unreachable(libvirt_env, dcbin, workdir):
    """QEMU runs as libvirt-qemu: a volume directory it cannot traverse is
    refused up front, naming the directory in the way."""
    private = os.path.join(workdir, "private")
    os.mkdir(private, 0o700)
    r, _ = dc(dcbin, os.path.join(private, "vols"), "volume-create", "v1", 4096)
    assert r["rc"] == "REFUSED", r
    assert f"{private} (mode 0700) is not searchable by libvirt-qemu" in r["error"], r
    assert os.listdir(os.path.join(private, "vols")) == []


def test_volume_block_device(libvirt_env, dcbin, workdir):
    backing = g.sparse_file(os.path.join(workdir, "loop.img"), 8 << 20)
    p = subprocess.run(["losetup", "-f", "--show", backing], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop device: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        r, _ = dc(dcbin, os.path.join(workdir, "vols"), "probe", dev)
        assert r["rc"] == "OK" and r["block"] is True and r["bytes"] == 8 << 20, r
    finally:
        subprocess.run(["losetup", "-d", dev])


@pytest.mark.parametrize("how", ["read-only", "full"])
def test_volume_failure_leaves_nothing(libvirt_env, dcbin, workdir, how):
    """A file system that refuses (read-only) or has no room left (a tmpfs
    with no free inode): REFUSED with the reason, and no file left."""
    mnt = os.path.join(workdir, "small")
    os.mkdir(mnt)
    opts = "size=1m,nr_inodes=3,mode=0755" if how == "full" else "size=1m,mode=0755"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "attachd-test", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        voldir = os.path.join(mnt, "vols")
        os.mkdir(voldir)
        os.chmod(voldir, 0o755)
        if how == "full":
            while True:                                     # use up the inodes
                try:
                    os.mkdir(os.path.join(mnt, f"fill{uuid.uuid4().hex[:6]}"))
                except OSError:
                    break
            want = "No space left on device"
        else:
            subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
            want = "Read-only file system"
        r, _ = dc(dcbin, voldir, "volume-create", "v1", 1 << 20)
        assert r["rc"] == "REFUSED" and want in r["error"], r
        assert os.listdir(voldir) == []
    finally:
        subprocess.run(["umount", mnt])


# ---------------------------------------------------------------------------
# domains

def test_lookup(libvirt_env, dcbin, workdir):
    voldir = os.path.join(workdir, "vols")
    with g.Guest(g.unique_name(), workdir, persistent=False) as vm:
        vm.start()
        by_name, _ = dc(dcbin, voldir, "lookup", vm.name)
        assert by_name["rc"] == "OK" and by_name["name"] == vm.name, by_name
        assert by_name["state"] == "running" and by_name["persistent"] is False
        by_uuid, _ = dc(dcbin, voldir, "lookup", by_name["uuid"])
        assert by_uuid["name"] == vm.name
        g.virsh("suspend", vm.name)
        assert dc(dcbin, voldir, "lookup", vm.name)[0]["state"] == "paused"
    missing, _ = dc(dcbin, voldir, "lookup", str(uuid.uuid4()))
    assert missing["rc"] == "NOT_FOUND", missing
    assert dc(dcbin, voldir, "lookup", "no-such-domain")[0]["rc"] == "NOT_FOUND"


def test_open_unreachable(dcbin, workdir):
    uri = "qemu+unix:///system?socket=/nonexistent"
    p = subprocess.run([dcbin, uri, workdir, "lookup", "x"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 3, p
    r = parse(p.stdout)[0]
    assert r["cmd"] == "open" and r["rc"] == "FAILED", r
    assert r["error"].startswith(f"cannot connect to {uri}: Failed to connect socket"), r


# ---------------------------------------------------------------------------
# disks on a booted guest: shut off, then running, then paused

@pytest.fixture(scope="module")
def booted(libvirt_env, guest_dir):
    """A persistent booted guest, defined but not started."""
    d = g.shared_dir()
    vm = g.Guest(g.unique_name(), d, guest_dir, persistent=True)
    define_only(vm)
    yield vm
    vm.cleanup()
    shutil.rmtree(d, ignore_errors=True)


def ensure_running(vm):
    st = vm.state()
    if st == "shut off":
        boot_defined(vm)
    elif st == "paused":
        g.virsh("resume", vm.name)


def test_shutoff_attach_then_boot(booted, shell, timing):
    """Shut off: the definition only (live False). Idempotent. Then the
    guest boots with the disks and sees their serials."""
    vm = booted
    sh = shell(os.path.join(vm.workdir, "vols"))
    info = sh("lookup", vm.name)
    assert info["state"] == "shutoff" and info["persistent"], info
    attached = {}
    for bus in ("scsi", "virtio"):
        v, path = new_volume(sh)
        att = vid()
        r = sh("attach", vm.name, att, v, path, bus)
        assert r["rc"] == "OK", r
        timing(f"shut off {bus}: driver attach", r["ms"] / 1000)
        again = sh("attach", vm.name, att, v, path, bus)
        assert again["rc"] == "OK" and again["target"] == r["target"], again
        attached[bus] = (att, v, r["target"])
    assert attached["scsi"][2] == "sda" and attached["virtio"][2] == "vda"
    disks = disks_by_alias(sh, vm.name)
    for att, v, target in attached.values():
        d = disks[f"ua-{att}"]
        assert (d["live"], d["config"], d["target"], d["serial"]) == (False, True, target, v)

    # attach and detach while shut off: synchronous, gone at once
    v3, p3 = new_volume(sh)
    att3 = vid()
    r = sh("attach", vm.name, att3, v3, p3, "scsi")
    assert r["rc"] == "OK" and r["target"] == "sdb", r
    for _ in range(2):
        d = sh("detach", vm.name, att3)
        assert d["rc"] == "OK", d
    assert f"ua-{att3}" not in disks_by_alias(sh, vm.name)

    timing("boot to READY", boot_defined(vm))
    for bus, (att, v, target) in attached.items():
        vm.wait_serial(g.expected_serial(v, bus), present=True, timeout=30)
        d = disks_by_alias(sh, vm.name)[f"ua-{att}"]
        assert d["live"] and d["config"], d
    assert sh.wait_event(10, event="domain_state", state="running", domain=info["uuid"])

    for bus, (att, v, target) in attached.items():
        r, seconds = detach_done(sh, vm.name, att, info["uuid"])
        vm.wait_serial(g.expected_serial(v, bus), present=False, timeout=30)
        assert f"ua-{att}" not in disks_by_alias(sh, vm.name)


def test_running_seen_by_guest(booted, shell, timing):
    """Running: live and definition; the guest sees the serial after the
    attach and no longer after DEVICE_REMOVED; twice is fine both ways."""
    vm = booted
    ensure_running(vm)
    sh = shell(os.path.join(vm.workdir, "vols"))
    dom = sh("lookup", vm.name)["uuid"]
    for bus in ("scsi", "virtio"):
        v, path = new_volume(sh)
        att = vid()
        want = g.expected_serial(v, bus)
        t0 = time.monotonic()
        r = sh("attach", dom, att, v, path, bus)
        assert r["rc"] == "OK", r
        gname = vm.wait_serial(want, present=True, timeout=30)
        timing(f"{bus}: driver attach call", r["ms"] / 1000)
        timing(f"{bus}: driver attach, seen in guest", time.monotonic() - t0)
        assert gname.startswith("sd" if bus == "scsi" else "vd")
        d = disks_by_alias(sh, dom)[f"ua-{att}"]
        assert (d["live"], d["config"], d["serial"], d["path"]) == (True, True, v, path), d
        again = sh("attach", dom, att, v, path, bus)
        assert again["rc"] == "OK" and again["target"] == r["target"], again

        t0 = time.monotonic()
        det = sh("detach", dom, att)
        assert det["rc"] in ("OK", "PENDING"), det
        ev = sh.wait_event(30, event="disk_removed", domain=dom, alias=f"ua-{att}")
        assert ev, "no DEVICE_REMOVED"
        timing(f"{bus}: driver detach call ({det['rc']})", det["ms"] / 1000)
        if det["rc"] == "OK":       # OK only once gone from the live XML
            assert not vm.has_alias(f"ua-{att}")
        vm.wait_serial(want, present=False, timeout=30)
        timing(f"{bus}: driver detach, gone from guest", time.monotonic() - t0)
        assert f"ua-{att}" not in disks_by_alias(sh, dom)
        assert sh("detach", dom, att)["rc"] == "OK"          # twice: fine

        # one driver_check process per call, as a CLI would
        v3, path3 = new_volume(sh)
        att3 = vid()
        r3, wall = dc(sh.proc.args[0], sh.proc.args[2], "attach", dom, att3, v3, path3, bus)
        assert r3["rc"] == "OK", r3
        timing(f"{bus}: driver_check process attach", wall)
        vm.wait_serial(g.expected_serial(v3, bus), present=True, timeout=30)
        detach_done(sh, dom, att3, dom)
        vm.wait_serial(g.expected_serial(v3, bus), present=False, timeout=30)


def test_paused(booted, shell, timing):
    """Paused: attach is live too. SCSI unplug completes (QEMU needs no
    guest); virtio-blk waits for the guest, which answers once resumed."""
    vm = booted
    ensure_running(vm)
    sh = shell(os.path.join(vm.workdir, "vols"))
    dom = sh("lookup", vm.name)["uuid"]
    g.virsh("suspend", vm.name)
    assert sh.wait_event(10, event="domain_state", domain=dom, state="paused")
    assert sh("lookup", dom)["state"] == "paused"
    vols = {}
    for bus in ("scsi", "virtio"):
        v, path = new_volume(sh)
        att = vid()
        r = sh("attach", dom, att, v, path, bus)
        assert r["rc"] == "OK", r
        d = disks_by_alias(sh, dom)[f"ua-{att}"]
        assert d["live"] and d["config"], d
        vols[bus] = (att, v)
    att, v = vols["scsi"]
    r, _ = detach_done(sh, dom, att, dom)
    assert f"ua-{att}" not in disks_by_alias(sh, dom)

    att, v = vols["virtio"]
    r = sh("detach", dom, att)
    assert r["rc"] == "PENDING", r
    d = disks_by_alias(sh, dom)[f"ua-{att}"]
    assert d["live"] and not d["config"], d
    g.virsh("resume", vm.name)
    assert sh.wait_event(10, event="domain_state", domain=dom, state="running")
    # the guest saw the disk appear while paused, and acknowledges the unplug now
    assert sh.wait_event(30, event="disk_removed", domain=dom, alias=f"ua-{att}"), \
        "the resumed guest did not release the virtio-blk disk"
    assert f"ua-{att}" not in disks_by_alias(sh, dom)
    vm.wait_serial(g.expected_serial(vols["scsi"][1], "scsi"), present=False, timeout=30)
    vm.wait_serial(g.expected_serial(v, "virtio"), present=False, timeout=30)


def test_latency_against_virsh(booted, shell, timing):
    """Medians of REPS attach/detach cycles on the running guest, each bus:
    the driver's call (in process, connection open) against `virsh
    attach-device` / `detach-device-alias` (a process each, connecting
    every time, as an operator or a script would), and until the disk is
    gone. Printed, not asserted."""
    reps = 5
    vm = booted
    ensure_running(vm)
    sh = shell(os.path.join(vm.workdir, "vols"))
    dom = sh("lookup", vm.name)["uuid"]
    med = statistics.median
    for bus in ("scsi", "virtio"):
        m = {k: [] for k in ("drv_attach", "drv_detach", "drv_gone", "virsh_attach",
                             "virsh_detach", "virsh_gone")}
        for _ in range(reps):
            v, path = new_volume(sh)
            att = vid()
            r = sh("attach", dom, att, v, path, bus)
            assert r["rc"] == "OK", r
            m["drv_attach"].append(r["ms"] / 1000)
            vm.wait_serial(g.expected_serial(v, bus), present=True, timeout=30)
            r, gone = detach_done(sh, dom, att, dom)
            m["drv_detach"].append(r["ms"] / 1000)
            m["drv_gone"].append(gone)
            vm.wait_serial(g.expected_serial(v, bus), present=False, timeout=30)

            v, path = new_volume(sh)
            alias = f"ua-{vid()}"
            t0 = time.monotonic()
            vm.attach(g.disk_xml(path, v, alias, bus, target="sdz" if bus == "scsi" else "vdz"))
            m["virsh_attach"].append(time.monotonic() - t0)
            vm.wait_serial(g.expected_serial(v, bus), present=True, timeout=30)
            t0 = time.monotonic()
            vm.detach_alias(alias)
            m["virsh_detach"].append(time.monotonic() - t0)
            assert vm.wait_alias_gone(alias, timeout=30)
            m["virsh_gone"].append(time.monotonic() - t0)
            vm.wait_serial(g.expected_serial(v, bus), present=False, timeout=30)
        timing(f"{bus}: driver attach (median of {reps})", med(m["drv_attach"]))
        timing(f"{bus}: virsh attach-device (median)", med(m["virsh_attach"]))
        timing(f"{bus}: driver detach call (median)", med(m["drv_detach"]))
        timing(f"{bus}: virsh detach-device-alias (median)", med(m["virsh_detach"]))
        timing(f"{bus}: driver detach, until removed (median)", med(m["drv_gone"]))
        timing(f"{bus}: virsh detach, until gone from XML (median)", med(m["virsh_gone"]))


# ---------------------------------------------------------------------------
# guestless domains: the stuck detach, refusals

def test_guestless_virtio_detach_stays_pending(libvirt_env, shell, workdir, timing):
    with g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = shell()
        dom = sh("lookup", vm.name)["uuid"]
        v, path = new_volume(sh)
        att = vid()
        assert sh("attach", dom, att, v, path, "virtio")["rc"] == "OK"
        r = sh("detach", dom, att)
        assert r["rc"] == "PENDING", r
        assert r["ms"] >= GRACE * 1000 * 0.9, r
        timing("guestless virtio: detach call (PENDING)", r["ms"] / 1000)
        assert sh.wait_event(5, event="disk_removed", alias=f"ua-{att}") is None
        d = disks_by_alias(sh, dom)[f"ua-{att}"]
        assert d["live"] and not d["config"], d
        again = sh("detach", dom, att)                      # the request stands
        assert again["rc"] == "PENDING", again
        assert vm.has_alias(f"ua-{att}")
        # re-attaching the same attachment while its unplug is pending: the
        # disk is still live, and it is put back into the definition
        back = sh("attach", dom, att, v, path, "virtio")
        assert back["rc"] == "OK", back
        assert disks_by_alias(sh, dom)[f"ua-{att}"]["config"]

        g.virsh("destroy", vm.name)
        assert sh.wait_event(10, event="domain_state", domain=dom, state="shutoff")
        d = disks_by_alias(sh, dom)[f"ua-{att}"]
        assert not d["live"] and d["config"], d
        assert sh("detach", dom, att)["rc"] == "OK"
        assert disks_by_alias(sh, dom) == {}
        assert sh.wait_event(0, event="disk_removed", alias=f"ua-{att}") is None


def test_refused_attach_leaves_nothing(libvirt_env, shell, workdir):
    """QEMU (as libvirt-qemu) cannot open a file in a 0700 directory:
    REFUSED with libvirt's words, and the disk is in neither definition.
    A domain without a free PCI slot refuses a virtio-blk disk."""
    with g.Guest(g.unique_name(), workdir, persistent=True, hotplug_slots=0) as vm:
        vm.start()
        sh = shell()
        dom = sh("lookup", vm.name)["uuid"]
        private = os.path.join(workdir, "private")
        os.mkdir(private, 0o700)
        path = g.sparse_file(os.path.join(private, "p.img"))
        att = vid()
        r = sh("attach", dom, att, "vol-private", path, "scsi")
        assert r["rc"] == "REFUSED", r
        assert "Permission denied" in r["error"] and "blockdev-add" in r["error"], r
        assert disks_by_alias(sh, dom) == {}
        assert f"ua-{att}" not in g.virsh("dumpxml", "--inactive", vm.name).stdout

        v, ok_path = new_volume(sh)
        r = sh("attach", dom, vid(), v, ok_path, "virtio")
        assert r["rc"] == "REFUSED" and "PCI" in r["error"], r
        assert disks_by_alias(sh, dom) == {}

        r = sh("attach", dom, "has.a.dot", v, ok_path, "scsi")     # libvirt would drop it
        assert r["rc"] == "REFUSED" and "alias" in r["error"], r
        missing = sh("attach", str(uuid.uuid4()), vid(), v, ok_path, "scsi")
        assert missing["rc"] == "NOT_FOUND", missing
        assert sh("detach", str(uuid.uuid4()), vid())["rc"] == "NOT_FOUND"


def test_no_direct_io_fallback(libvirt_env, shell, workdir):
    """cache='none' io='native' need O_DIRECT, which ramfs refuses (tmpfs
    too, before Linux 6.6): a volume there is attached with
    cache='writeback' io='threads', and the driver says why once."""
    mnt = os.path.join(workdir, "ramfs")
    os.mkdir(mnt)
    p = subprocess.run(["mount", "-t", "ramfs", "-o", "mode=0755", "attachd-test", mnt],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a ramfs here: {p.stderr.strip()}")
    try:
        with g.Guest(g.unique_name(), workdir, persistent=False) as vm:
            vm.start()
            sh = shell(os.path.join(mnt, "vols"))
            v, path = new_volume(sh, 16 << 20)
            att = vid()
            r = sh("attach", vm.name, att, v, path, "scsi")
            assert r["rc"] == "OK", r
            xml = vm.live_xml()
            assert "cache='writeback' io='threads'" in xml, xml
            d = disks_by_alias(sh, vm.name)[f"ua-{att}"]
            assert d["live"] and not d["config"], d          # transient: live only
            detach_done(sh, vm.name, att, sh("lookup", vm.name)["uuid"])
            sh.close()
            assert any("does not support O_DIRECT" in ln for ln in sh.stderr), sh.stderr
    finally:
        subprocess.run(["umount", "-l", mnt])


def test_requested_target(libvirt_env, shell, workdir):
    """The core may choose the target (the device name it answered the API
    with): it is used, and a target another disk has is a refusal."""
    with g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = shell()
        dom = sh("lookup", vm.name)["uuid"]
        v1, p1 = new_volume(sh)
        v2, p2 = new_volume(sh)
        a1, a2 = vid(), vid()
        r = sh("attach", dom, a1, v1, p1, "scsi", "sdc")
        assert r["rc"] == "OK" and r["target"] == "sdc", r
        again = sh("attach", dom, a1, v1, p1, "scsi", "sdc")
        assert again["rc"] == "OK" and again["target"] == "sdc", again
        taken = sh("attach", dom, a2, v2, p2, "scsi", "sdc")
        assert taken["rc"] == "REFUSED" and "sdc is in use" in taken["error"], taken
        bad = sh("attach", dom, a2, v2, p2, "scsi", "hda")
        assert bad["rc"] == "REFUSED" and "invalid target" in bad["error"], bad
        picked = sh("attach", dom, a2, v2, p2, "scsi")
        assert picked["rc"] == "OK" and picked["target"] == "sda", picked
        assert {d["target"] for d in disks_by_alias(sh, dom).values()} == {"sda", "sdc"}


def test_quick_view_proved_wrong(libvirt_env, shell, workdir):
    """An attach to a running domain reads its live XML only (the quick
    view) and takes its definition to have the same disks. A definition
    that differs proves it wrong, and the attach still ends right: a disk
    in the definition alone on the target the live XML leaves free (libvirt
    refuses, the driver looks at both and takes the next free target); our
    alias in the definition alone (attached to the live domain only, the
    definition left as it is)."""
    with g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = shell()
        dom = sh("lookup", vm.name)["uuid"]
        other = g.sparse_file(os.path.join(workdir, "config-only.img"))
        g.virsh("attach-disk", vm.name, other, "sda", "--targetbus", "scsi", "--config")
        v, path = new_volume(sh)
        att = vid()
        r = sh("attach", dom, att, v, path, "scsi")
        assert r["rc"] == "OK" and r["target"] == "sdb", r
        d = disks_by_alias(sh, dom)[f"ua-{att}"]
        assert d["live"] and d["config"] and d["target"] == "sdb", d

        v2, path2 = new_volume(sh)
        att2 = vid()
        xml = os.path.join(workdir, "ours.xml")
        with open(xml, "w") as f:
            f.write(f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                    f"<source file='{path2}'/><target dev='sdc' bus='scsi'/>"
                    f"<serial>{v2[:20]}</serial><alias name='ua-{att2}'/></disk>")
        g.virsh("attach-device", vm.name, xml, "--config")
        r = sh("attach", dom, att2, v2, path2, "scsi")
        assert r["rc"] == "OK" and r["target"] == "sdc", r
        d = disks_by_alias(sh, dom)[f"ua-{att2}"]
        assert d["live"] and d["config"] and d["target"] == "sdc", d
        inactive = g.virsh("dumpxml", "--inactive", vm.name).stdout
        assert inactive.count(f"ua-{att2}") == 1, inactive


def test_known_view_proved_wrong(libvirt_env, dcbin, workdir):
    """What the driver knows of a domain's disks is a guess: changes made
    outside attachd that libvirt sends no event for (a disk attached with
    virsh, a disk removed from the definition alone) prove it wrong, and the
    attach and the detach still end right, libvirt's refusal sending them to
    the whole view. The relay in front of libvirtd shows that each went the
    known way first (one refused change call, then the reads)."""
    from libvirt_proxy import Relay
    ATTACH, DETACH = 160, 392           # REMOTE_PROC_DOMAIN_ATTACH_DEVICE_FLAGS, _DETACH_DEVICE_ALIAS
    with Relay(os.path.join(workdir, "relay.sock")) as relay, \
            g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = Shell(dcbin, os.path.join(workdir, "vols"), uri=relay.uri)
        try:
            dom = sh("lookup", vm.name)["uuid"]
            v, path = new_volume(sh)
            att = vid()
            r = sh("attach", dom, att, v, path, "scsi")
            assert r["rc"] == "OK" and r["target"] == "sda", r
            # known: ua-att on sda, in both; sdb looks free
            other = g.sparse_file(os.path.join(workdir, "outside.img"))
            g.virsh("attach-disk", vm.name, other, "sdb", "--targetbus", "scsi", "--live",
                    "--config")
            v2, path2 = new_volume(sh)
            att2 = vid()
            n0 = len(relay.calls)
            r = sh("attach", dom, att2, v2, path2, "scsi")
            procs = [c.proc for c in relay.calls[n0:]]
            assert r["rc"] == "OK" and r["target"] == "sdc", r
            assert procs[0] == ATTACH and procs.count(ATTACH) == 2, procs
            d = disks_by_alias(sh, dom)[f"ua-{att2}"]
            assert d["live"] and d["config"] and d["target"] == "sdc", d

            # known again (the list read the whole view): ua-att in both;
            # now the definition loses it behind the driver's back
            g.virsh("detach-disk", vm.name, "sda", "--config")
            n0 = len(relay.calls)
            r, _ = detach_done(sh, dom, att, dom)
            procs = [c.proc for c in relay.calls[n0:]]
            assert r["rc"] == "OK", r
            assert procs[0] == DETACH and procs.count(DETACH) == 2, procs
            assert f"ua-{att}" not in disks_by_alias(sh, dom)
            assert f"ua-{att}" not in g.virsh("dumpxml", vm.name).stdout
        finally:
            assert sh.close() == 0, sh.stderr[-20:]


def test_domain_locks_are_per_domain(libvirt_env, dcbin, tmp_path):
    """The lock that serialises one domain's disk changes never makes
    another domain wait: these two UUIDs fell on one lock when the driver
    had 64 striped locks (FNV-1a of the UUID mod 64), and an attach on one
    waited for the other's. The same domain's lock still waits."""
    a, b = "123ee187-324a-402c-8fc5-a88beed2c8dd", "7b7bfa8e-7ea3-4db1-bf4b-7a634c7a986a"
    r, _ = dc(dcbin, str(tmp_path), "domain-locks", a, b)
    assert r["others_ran"] is True, r
    assert r["same_waited"] is True and r["same_ran_after"] is True, r


def test_concurrent_callers(libvirt_env, shell, workdir, timing):
    """Eight workers attach at once, then detach at once: distinct
    targets, every disk in both definitions, all gone afterwards."""
    with g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = shell()
        dom = sh("lookup", vm.name)["uuid"]
        r = sh("concurrent", dom, 8, "scsi")
        assert r["rc"] == "OK", r
        jobs = r["jobs"]
        targets = [j["target"] for j in jobs]
        assert sorted(targets) == [f"sd{c}" for c in "abcdefgh"], targets
        timing("8 concurrent attaches: slowest", max(j["attach_ms"] for j in jobs) / 1000)
        for j in jobs:
            # a detach answered OK was confirmed by the event's arrival; its
            # delivery to the event callback (the watch thread) may follow
            # the answer by a little
            timeout = 30 if j["detach"] == "PENDING" else 10
            assert sh.wait_event(timeout, event="disk_removed", domain=dom, alias=j["alias"])
        assert disks_by_alias(sh, dom) == {}
        for j in jobs:
            assert os.path.basename(j["path"]) == f"vol-{j['volume_id']}.img"
            assert sh("volume-delete", j["path"])["rc"] == "OK"


# ---------------------------------------------------------------------------
# libvirtd restarted under a running driver

def others_use_libvirt():
    """True when another test session holds the shared users lock (see
    conftest.py): restarting libvirtd would break its tests."""
    try:
        ino = os.stat(USERS).st_ino
    except FileNotFoundError:
        return False
    holders = 0
    with open("/proc/locks") as f:
        for ln in f:
            parts = ln.split()
            if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].split(":")[-1] == str(ino):
                holders += 1
    return holders > 1


def env(cmd):
    p = subprocess.run([g.LIBVIRT_ENV, cmd, STATEDIR], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


@contextlib.contextmanager
def own_daemons(libvirt_env):
    """Hold the session locks' decision lock while a test stops or freezes
    libvirtd, and only when this session started it and no other session
    uses it; make sure it answers again afterwards."""
    if not libvirt_env:
        pytest.skip("libvirtd was not started by this test session: not ours to disturb")
    decide = os.open(DECIDE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(decide, fcntl.LOCK_EX)          # no session starts or stops it meanwhile
    try:
        if others_use_libvirt():
            pytest.skip("another test session is using libvirtd")
        yield
    finally:
        if not g.libvirt_answers():
            env("start")
        os.close(decide)


def test_libvirtd_restart(libvirt_env, shell, workdir, timing):
    """Stopped: connection(false), every call UNAVAILABLE at once. Started
    again: the driver reconnects by itself, says so, and gets events again."""
    with own_daemons(libvirt_env), g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = shell()
        dom = sh("lookup", vm.name)["uuid"]
        v, path = new_volume(sh)
        att = vid()
        assert sh("attach", dom, att, v, path, "scsi")["rc"] == "OK"

        t_stop = time.monotonic()
        env("stop")
        timing("restart: scripts/libvirt-env stop", time.monotonic() - t_stop)
        down = sh.wait_event(10, event="connection", up=False)
        assert down, sh.stderr
        for call in (("lookup", dom), ("list", dom), ("detach", dom, att),
                     ("attach", dom, vid(), v, path, "scsi")):
            r = sh(*call)
            assert r["rc"] == "UNAVAILABLE", r
            assert r["ms"] < 100, r                     # at once, not after a timeout
        assert sh("probe", path)["rc"] == "OK"          # storage needs no connection

        t_start = time.monotonic()
        env("start")
        up = sh.wait_event(45, event="connection", up=True)
        assert up, f"no reconnect within 45 s; driver said: {sh.stderr[-5:]}"
        timing("restart: reconnected after start", time.monotonic() - t_start)
        assert sh("lookup", dom)["state"] == "running"
        detach_done(sh, dom, att, dom)                  # events registered again
        assert f"ua-{att}" not in disks_by_alias(sh, dom)


def test_libvirtd_hung(libvirt_env, shell, workdir, timing):
    """A daemon that stops answering (SIGSTOP) with its socket open: the
    call in flight fails by keepalive within about 9 s, later calls at
    once; the driver reconnects when it answers again."""
    with own_daemons(libvirt_env):
        with open(os.path.join(STATEDIR, "libvirtd.pid")) as f:
            pid = int(f.read().strip())
        sh = shell()
        assert sh("lookup", "no-such-domain")["rc"] == "NOT_FOUND"
        os.kill(pid, signal.SIGSTOP)
        try:
            r = sh("lookup", "no-such-domain", timeout=60)
            assert r["rc"] == "UNAVAILABLE" and "keepalive" in r["error"], r
            assert r["ms"] < 15000, r
            timing("hung daemon: call in flight fails", r["ms"] / 1000)
            assert sh.wait_event(5, event="connection", up=False)
            r = sh("lookup", "no-such-domain")
            assert r["rc"] == "UNAVAILABLE" and r["ms"] < 100, r
        finally:
            os.kill(pid, signal.SIGCONT)
        t0 = time.monotonic()
        assert sh.wait_event(45, event="connection", up=True), sh.stderr[-5:]
        timing("hung daemon: reconnected after SIGCONT", time.monotonic() - t0)
        assert sh("lookup", "no-such-domain")["rc"] == "NOT_FOUND"


# ---------------------------------------------------------------------------
# the embedded driver: libvirt in driver_check's own process

def test_embedded_driver(libvirt_env, shell, workdir):
    root = os.path.join(workdir, "embed")
    sh = shell(uri=f"qemu:///embed?root={root}")
    name = g.unique_name()
    vm = g.Guest(name, workdir)             # only for its XML
    xml = os.path.join(workdir, "embed.xml")
    with open(xml, "w") as f:
        f.write(vm.xml())
    try:
        assert sh("virsh", "define", xml)["rc"] == "OK"
        assert sh("virsh", "start", name)["rc"] == "OK"
        dom = sh("lookup", name)["uuid"]
        v, path = new_volume(sh)
        att = vid()
        assert sh("attach", dom, att, v, path, "scsi")["rc"] == "OK"
        assert disks_by_alias(sh, dom)[f"ua-{att}"]["live"]
        detach_done(sh, dom, att, dom)
        assert disks_by_alias(sh, dom) == {}
    finally:
        sh("virsh", "destroy", name)
        sh("virsh", "undefine", name)


# ---------------------------------------------------------------------------
# servers' own domains: domain_define, domain_power, console_log, domain_list,
# domain_undefine (src/driver/libvirt_domain.c)

SAVE_DIR = "/var/lib/libvirt/qemu/save"     # libvirtd's managed save images


def server_id():
    """A server id whose domain ("attachd-<id>") the session's safety net
    (conftest.py) knows as this run's."""
    return f"test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def overlay_info(path):
    p = subprocess.run(["qemu-img", "info", "-U", "--output=json", path], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout)


def guest_files(guest_dir, workdir):
    """Private copies of the test guest's kernel and initrd (libvirt
    relabels them while a domain uses them), and its command line."""
    out = []
    for f in ("vmlinuz", "initrd.img"):
        dst = os.path.join(workdir, f"{uuid.uuid4().hex[:8]}.{f}")
        shutil.copyfile(os.path.join(guest_dir, f), dst)
        os.chmod(dst, 0o644)
        out.append(dst)
    with open(os.path.join(guest_dir, "cmdline")) as f:
        out.append(f.read().strip())
    return out


def wait_console(sh, dom, text, timeout=g.BOOT_TIMEOUT):
    deadline = time.monotonic() + timeout
    while True:
        r = sh("console", dom)
        assert r["rc"] == "OK", r
        if text in r["text"]:
            return r
        assert time.monotonic() < deadline, f"no {text!r} on the console: {r}"
        time.sleep(0.2)


def state_of(sh, dom):
    r = sh("lookup", dom)
    assert r["rc"] == "OK", r
    return r["state"]


def test_server_domain_lifecycle(libvirt_env, dcbin, guest_dir, shell, workdir, timing):
    """A server's domain from define to undefine, booting the test guest
    from an overlay of an image: define (twice: unchanged), listed, start,
    the console log, pause, an ACPI shutdown the guest never carries out
    (PENDING, still running), destroy, save and start again (resumed),
    refusals (a shut-off domain paused; another owner's domain defined,
    started or undefined; another server's undefined), and an undefine
    that leaves nothing behind."""
    voldir = os.path.join(workdir, "vols")
    kernel, initrd, cmdline = guest_files(guest_dir, workdir)
    image = g.sparse_file(os.path.join(workdir, "image.raw"), 32 << 20)
    server, dom = server_id(), vid()
    name = f"attachd-{server}"
    inst = os.path.join(voldir, "instances", dom)
    sh = shell(voldir)

    r = sh("define", dom, server, 1, 128, image, "raw", 0, kernel, initrd, cmdline)
    assert r["rc"] == "OK", r
    timing("define (overlay, domain)", r["ms"] / 1000)
    try:
        assert sorted(os.listdir(inst)) == ["disk.qcow2"], os.listdir(inst)
        info = overlay_info(os.path.join(inst, "disk.qcow2"))
        assert info["virtual-size"] == 32 << 20 and info["backing-filename"] == image, info
        xml = g.virsh("dumpxml", "--inactive", name).stdout
        assert f"<uuid>{dom}</uuid>" in xml and "driver_check" in xml, xml
        assert "<interface" not in xml
        assert sh("define", dom, server, 1, 128, image, "raw", 0, kernel, initrd,
                  cmdline)["rc"] == "OK"                        # defined already: unchanged
        assert g.virsh("dumpxml", "--inactive", name).stdout == xml
        other, _ = dc(dcbin, voldir, "define", dom, server, 1, 128, image, "raw", 0,
                      owner="another-attachd")
        assert other["rc"] == "REFUSED" and "another attachd" in other["error"], other

        mine = sh("domains")
        assert {"uuid": dom, "name": name, "state": "shutoff"} in mine["domains"], mine
        theirs, _ = dc(dcbin, voldir, "domains", owner="another-attachd")
        assert dom not in {d["uuid"] for d in theirs["domains"]}, theirs

        empty = sh("console", dom)                      # never started: nothing written yet
        assert empty["rc"] == "OK" and empty["bytes"] == 0, empty
        r = sh("power", dom, "pause")
        assert r["rc"] == "REFUSED" and "not running" in r["error"], r

        # start, the console
        t0 = time.monotonic()
        r = sh("power", dom, "start")
        assert r["rc"] == "OK" and state_of(sh, dom) == "running", r
        assert sh.wait_event(10, event="domain_state", domain=dom, state="running")
        assert sh("power", dom, "start")["rc"] == "OK"          # running already
        con = wait_console(sh, dom, "ATTACHD-GUEST READY")
        timing("start to READY on the console log", time.monotonic() - t0)
        with open(os.path.join(inst, "console.log"), "rb") as f:
            assert con["bytes"] <= len(f.read().rstrip(b"\r\n"))
        assert "ATTACHD-GUEST DISKS vda=" in wait_console(sh, dom, "DISKS")["text"]

        # pause, unpause
        for what, state in (("pause", "paused"), ("pause", "paused"), ("unpause", "running")):
            r = sh("power", dom, what)
            assert r["rc"] == "OK" and state_of(sh, dom) == state, (what, r)

        # ACPI: this guest has no handler for the power button, so the
        # shutdown stays up to the guest
        for _ in range(2):
            r = sh("power", dom, "shutdown")
            assert r["rc"] == "PENDING", r
            assert state_of(sh, dom) == "running"
        r = sh("power", dom, "destroy")
        assert r["rc"] == "OK" and state_of(sh, dom) == "shutoff", r
        assert sh.wait_event(10, event="domain_state", domain=dom, state="shutoff")
        assert sh("power", dom, "shutdown")["rc"] == "OK"       # off already
        assert sh("power", dom, "destroy")["rc"] == "OK"

        # a managed save, and a start that resumes from it
        assert sh("power", dom, "start")["rc"] == "OK"
        wait_console(sh, dom, "ATTACHD-GUEST READY")
        r = sh("power", dom, "save")
        assert r["rc"] == "OK" and state_of(sh, dom) == "saved", r
        timing("managed save (128 MiB, TCG)", r["ms"] / 1000)
        assert sh.wait_event(10, event="domain_state", domain=dom, state="saved")
        assert {"uuid": dom, "name": name, "state": "saved"} in sh("domains")["domains"]
        assert os.path.exists(os.path.join(SAVE_DIR, f"{name}.save"))
        r = sh("power", dom, "start")
        assert r["rc"] == "OK" and state_of(sh, dom) == "running", r
        assert not os.path.exists(os.path.join(SAVE_DIR, f"{name}.save"))
        # a volume, as any server's
        v, path = new_volume(sh)
        att = vid()
        assert sh("attach", dom, att, v, path, "scsi")["rc"] == "OK"
        vm = g.Guest(name, workdir)
        vm.console = os.path.join(inst, "console.log")
        vm.wait_serial(g.expected_serial(v, "scsi"), present=True, timeout=60)
        assert sh("power", dom, "save")["rc"] == "OK"           # undefined while saved

        # only the owner's, and the server's, domain is undefined
        r, _ = dc(dcbin, voldir, "undefine", dom, server, owner="another-attachd")
        assert r["rc"] == "REFUSED" and "another attachd" in r["error"], r
        r = sh("undefine", dom, server_id())
        assert r["rc"] == "REFUSED" and name in r["error"], r
        r, _ = dc(dcbin, voldir, "power", dom, "start", owner="another-attachd")
        assert r["rc"] == "REFUSED" and "another attachd" in r["error"], r
        assert state_of(sh, dom) == "saved"
        assert g.domain_exists(name) and os.path.isdir(inst)
    finally:
        r = sh("undefine", dom, server)
    assert r["rc"] == "OK", r
    assert not g.domain_exists(name)
    assert not os.path.exists(inst)
    assert not os.path.exists(os.path.join(SAVE_DIR, f"{name}.save"))
    assert dom not in {d["uuid"] for d in sh("domains")["domains"]}
    assert os.path.exists(path) and os.path.getsize(image) == 32 << 20     # not the server's
    assert sh("undefine", dom, server)["rc"] == "OK"                    # gone already
    for call in (("power", dom, "start"), ("console", dom)):
        assert sh(*call)["rc"] == "NOT_FOUND"


def test_server_domain_on_volume(libvirt_env, shell, workdir):
    """Booted from a volume (virtio-blk vda; nothing in it to boot: the
    firmware waits): undefined while it runs, it is destroyed first, and
    the volume stays."""
    voldir = os.path.join(workdir, "vols")
    sh = shell(voldir)
    v, path = new_volume(sh)
    server, dom, att = server_id(), vid(), vid()
    name = f"attachd-{server}"
    r = sh("define-on-volume", dom, server, 1, 128, att, v, path)
    assert r["rc"] == "OK", r
    try:
        d = disks_by_alias(sh, dom)[f"ua-{att}"]
        assert (d["target"], d["serial"], d["path"], d["config"]) == ("vda", v, path, True), d
        assert os.listdir(os.path.join(voldir, "instances", dom)) == []     # no overlay
        assert sh("power", dom, "start")["rc"] == "OK"
        assert disks_by_alias(sh, dom)[f"ua-{att}"]["live"]
        assert sh("power", dom, "pause")["rc"] == "OK"
    finally:
        r = sh("undefine", dom, server)
    assert r["rc"] == "OK", r
    assert not g.domain_exists(name)
    assert not os.path.exists(os.path.join(voldir, "instances", dom))
    assert os.path.getsize(path) == 64 << 20


def test_server_domain_define_failures(libvirt_env, shell, workdir):
    """A define that fails leaves no directory; the root disk is never
    smaller than its image."""
    voldir = os.path.join(workdir, "vols")
    instances = os.path.join(voldir, "instances")
    sh = shell(voldir)
    image = g.sparse_file(os.path.join(workdir, "image.raw"), 32 << 20)

    dom = vid()
    r = sh("define", dom, server_id(), 1, 128, os.path.join(workdir, "nope.raw"), "raw", 0)
    assert r["rc"] == "REFUSED" and "nope.raw" in r["error"], r
    assert not os.path.exists(os.path.join(instances, dom))
    assert sh("lookup", dom)["rc"] == "NOT_FOUND"

    # the name is taken by a domain of another UUID: libvirt refuses
    server, first, second = server_id(), vid(), vid()
    assert sh("define", first, server, 1, 128, image, "raw", 0)["rc"] == "OK"
    try:
        r = sh("define", second, server, 1, 128, image, "raw", 0)
        assert r["rc"] == "REFUSED" and "already exists" in r["error"], r
        assert not os.path.exists(os.path.join(instances, second))
        assert os.path.exists(os.path.join(instances, first, "disk.qcow2"))
        assert sh("undefine", second, server)["rc"] == "OK"         # no such domain
        assert g.domain_exists(f"attachd-{server}")
    finally:
        assert sh("undefine", first, server)["rc"] == "OK"

    # sizes: larger than the image is that size; smaller is the image's
    qcow2 = os.path.join(workdir, "image.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", qcow2, "48M"], check=True)
    os.chmod(qcow2, 0o644)
    for img, fmt, ask, want in ((image, "raw", 64 << 20, 64 << 20),
                                (image, "raw", 1 << 20, 32 << 20),
                                (qcow2, "qcow2", 0, 48 << 20),
                                (qcow2, "qcow2", 16 << 20, 48 << 20)):
        server, dom = server_id(), vid()
        r = sh("define", dom, server, 1, 128, img, fmt, ask)
        assert r["rc"] == "OK", r
        try:
            info = overlay_info(os.path.join(instances, dom, "disk.qcow2"))
            assert info["virtual-size"] == want and info["backing-filename"] == img, info
        finally:
            assert sh("undefine", dom, server)["rc"] == "OK"
    r = sh("define", vid(), server_id(), 1, 128, image, "qcow2", 0)         # not a qcow2
    assert r["rc"] == "REFUSED" and "not a qcow2" in r["error"], r
    for bad in ("../../tmp", vid() + "/x", vid()[:-1]):        # names a directory: UUIDs only
        r = sh("define", bad, server_id(), 1, 128, image, "raw", 0)
        assert r["rc"] == "REFUSED" and "invalid domain UUID" in r["error"], r
        assert sh("undefine", bad, "x")["rc"] == "REFUSED"
    assert os.listdir(instances) == []


# ---------------------------------------------------------------------------
# what the driver asks libvirt: calls per attach and detach

def test_calls_per_change(libvirt_env, dcbin, workdir):
    """The libvirt calls (RPC round trips, counted by a relay in front of
    libvirtd) an attach and a detach make, on a running persistent domain
    (twice) and on a shut-off one. The driver keeps the handle a lookup
    found and what it knows of the domain's disks (src/driver/libvirt_known.c):
    a running domain's first attach reads its live XML (the quick view:
    test_quick_view_proved_wrong), and from then on an attach and a detach
    are one call each, until an event says the domain changed
    (test_known_view_proved_wrong). A live detach is confirmed by
    DEVICE_REMOVED alone (libvirt sends it once the live XML has lost the
    disk); a detach from a definition only reads the XML again. Reading the
    live XML first tells whether the domain runs (and a shut-off domain's
    live XML is its definition)."""
    from libvirt_proxy import Relay
    with Relay(os.path.join(workdir, "relay.sock")) as relay, \
            g.Guest(g.unique_name(), workdir, persistent=True) as vm:
        vm.start()
        sh = Shell(dcbin, os.path.join(workdir, "vols"), uri=relay.uri)
        try:
            dom = sh("lookup", vm.name)["uuid"]
            counts = {}
            for state in ("running", "running again", "shut off"):
                if state == "shut off":
                    g.virsh("destroy", vm.name)
                v, path = new_volume(sh)
                att = vid()
                n0 = len(relay.calls)
                assert sh("attach", dom, att, v, path, "scsi")["rc"] == "OK"
                n1 = len(relay.calls)
                r, _ = detach_done(sh, dom, att, dom)
                assert r["rc"] == "OK", r            # scsi: removed within the grace
                n2 = len(relay.calls)
                counts[state] = (n1 - n0, n2 - n1)
                print(f"{state}: attach {n1 - n0} calls "
                      f"{[c.proc for c in relay.calls[n0:n1]]}, detach {n2 - n1} calls "
                      f"{[c.proc for c in relay.calls[n1:n2]]}")
        finally:
            assert sh.close() == 0, sh.stderr[-20:]
    # running: lookup by UUID (the shell looked the domain up by name), live
    # XML (the quick view), attach; the detach: detach, then the event.
    # Again: attach; detach. Shut off (the lifecycle event forgot the
    # disks): XML, attach; XML, detach, XML. (Before the driver kept what
    # it knew, it was (3, 5) and (3, 4), each beginning with a lookup and
    # the running detach reading the whole view first; reading the state,
    # the persistence and both XMLs each time, (6, 10) and (5, 8).)
    assert counts == {"running": (3, 1), "running again": (1, 1), "shut off": (2, 3)}, counts
