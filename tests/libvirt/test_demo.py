"""The README's libvirt demo works as written, for real.

`make run` (the Makefile's run target, DRIVER=libvirt) starts libvirt's
daemons (scripts/libvirt-env: here conftest.py's libvirt_env), adds the image
demo-guest (scripts/demo-image: the test guest, a Debian kernel and a busybox
initramfs) and runs `attachd serve --driver libvirt --volume-dir data/volumes
--demo`, which creates the demo server test-server-0013 from that image, as
POST /servers does (its domain attachd-test-server-0013), with the volume
hbs2012May03_0OxRg0Jz7 hot-plugged into it, and prints the demo user's
password and the `export` lines for the openstack CLI (src/cli/serve.c).

This test does the same, on a free port and with the daemon working in a
temporary directory (data/attachd.db, data/images, data/volumes and
data/instances there, as make run's defaults), with two changes that this
machine's limits ask for: flavor 1, m1.tiny, is given 128 MiB (a
configuration file; make run keeps Nova's 512), and --virt-type qemu (TCG).
Then it runs the README's two sh blocks itself, with the printed password,
the printed exports and the test's port put in, and checks what each
command prints against what its comment promises:

  virsh domblklist           the volume's file, at the target the comment names;
  openstack console log show the guest's "ATTACHD-GUEST DISKS ..." line as written
                             (DATA_ID: the id of the volume named data), waiting
                             for the guest to print it;
  curl DELETE                204 No Content;
  virsh domblklist           the file is gone from the VM;

and that each server's domain is there while the server is, and gone after
its delete. Two VMs at most, TCG, 128 MiB each.

The demo server's domain has a fixed name, which the README names: the test
skips when a domain attachd-test-server-0013 exists already (a developer's
demo) or another session runs this test.
"""
import fcntl
import os
import re
import shutil
import subprocess
import time

import pytest
import requests

import guest as g
from attachd import Attachd, binary

DEMO_IMAGE = os.path.join(g.ROOT, "scripts", "demo-image")
SERVER, VOLUME = "test-server-0013", "hbs2012May03_0OxRg0Jz7"   # src/cli/serve.c
DOMAIN = f"attachd-{SERVER}"
LOCK = "/run/lock/attachd-demo-test"
SMALL_TINY = "[flavor 1]\nname = m1.tiny\nvcpus = 1\nram_mb = 128\ndisk_gb = 1\n"


def readme_block(after):
    """The commands of the README's sh block that follows the text AFTER,
    each with its comment (continuation lines joined)."""
    with open(os.path.join(g.ROOT, "README.md")) as f:
        readme = f.read()
    m = re.search(re.escape(after) + r"\n\n```sh\n(.*?)```", readme, re.S)
    assert m, f"README.md has no sh block after {after!r}"
    commands, cur = [], ""
    for line in m.group(1).split("\n"):
        if not line.strip() and not cur:
            continue
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        cur += line
        commands.append(cur)
        cur = ""
    assert not cur, "the block ends with a continuation line"
    return commands


def comment(cmd):
    return cmd.split("#", 1)[1].strip() if "#" in cmd else ""


def domblklist_rows(output):
    """{target: source} from `virsh domblklist` (its header lines skipped)."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] != "Target" and not set(parts[0]) <= {"-"}:
            rows[parts[0]] = parts[1]
    return rows


def guest_line(text):
    """{disk: serial} of the last "ATTACHD-GUEST DISKS" line in TEXT, or None."""
    lines = [ln for ln in text.splitlines() if ln.startswith(g.MARK + " DISKS")]
    return g.parse_disks(lines[-1][len(g.MARK + " DISKS"):]) if lines else None


class Shell:
    """Runs README commands as a person would: sh, the printed exports in
    the environment, PASSWORD and the port put in."""

    def __init__(self, env, password, port, timing):
        self.env, self.password, self.port, self.timing = env, password, port, timing

    def __call__(self, cmd):
        cmd = cmd.replace("PASSWORD", self.password).replace("127.0.0.1:8774",
                                                             f"127.0.0.1:{self.port}")
        t = time.monotonic()
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=300,
                           env=self.env)
        self.timing(f"README: {' '.join(cmd.split()[:3])}", time.monotonic() - t)
        assert r.returncode == 0, (cmd, r.stdout, r.stderr)
        return r.stdout

    def console_shows(self, cmd, want, timeout=60):
        """Run the console command until its output's DISKS line is WANT's."""
        deadline = time.monotonic() + timeout
        while True:
            got = guest_line(self(cmd))
            if got == want:
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{cmd}: the guest's line is {got}, not {want}")
            time.sleep(0.5)


def exports(log):
    """The environment the printed `export NAME=VALUE ...` lines make."""
    env = dict(os.environ)
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("export "):
            for pair in line.split()[1:]:
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def test_readme_libvirt_demo_runs_as_written(libvirt_env, monkeypatch, timing):
    hostway = readme_block("with them exported:")
    life = readme_block("A server's whole life, with the same CLI:")
    assert len(hostway) == 4, hostway
    before, console, delete, after = hostway
    assert f"domblklist {DOMAIN}" in before and f"domblklist {DOMAIN}" in after, hostway
    assert console.startswith(f"openstack console log show {SERVER}"), console
    assert delete.startswith("curl ") and "PASSWORD" in delete and "127.0.0.1:8774" in delete
    m = re.match(r"(sd[a-z]+): the volume's file$", comment(before))
    assert m, before
    target = m.group(1)
    promised = g.parse_disks(comment(console)[len(g.MARK + " DISKS"):])
    assert promised and VOLUME in promised.values(), console

    lock = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        pytest.skip("another test session runs the demo")
    if g.domain_exists(DOMAIN):
        os.close(lock)
        pytest.skip(f"a domain {DOMAIN} exists already (a developer's demo?): left alone")
    work = g.shared_dir(prefix="attachd-demo-")      # libvirt-qemu opens data/
    d = Attachd(work)
    d.db = os.path.join(work, "data", "attachd.db")  # make run's DB, relative to its cwd
    os.makedirs(os.path.join(work, "data"))
    voldir = os.path.join(work, "data", "volumes")
    conf = os.path.join(work, "flavors.conf")
    with open(conf, "w") as f:
        f.write(SMALL_TINY)
    monkeypatch.chdir(work)                         # the daemon's working directory
    password = None
    try:
        p = subprocess.run([DEMO_IMAGE], capture_output=True, text=True, timeout=900,
                           env={**os.environ, "ATTACHD": binary(), "DB": "data/attachd.db"})
        assert p.returncode == 0, p.stdout + p.stderr
        t0 = time.monotonic()
        d.start("--driver", "libvirt", "--volume-dir", "data/volumes", "--config", conf,
                "--virt-type", "qemu", "--demo")
        timing("demo created (the server's domain running, the volume in it)",
               time.monotonic() - t0)
        log = d.read_log()
        m = re.search(r'user "demo", password "([^"]+)"', log)
        assert m, "no demo password printed (the demo was not made):\n" + log
        password = m.group(1)
        assert f'The server is the running VM "{DOMAIN}"' in log, log
        assert g.domain_state(DOMAIN) == "running"
        sh = Shell(exports(log), password, d.port, timing)

        out = sh(before)
        rows = domblklist_rows(out)
        assert target in rows, f"domblklist shows no {target}:\n{out}"
        path = rows[target]
        assert os.path.isfile(path) and os.path.samefile(os.path.dirname(path), voldir), \
            f"{target} is {path}, not a file in {voldir}"
        assert VOLUME in os.path.basename(path), path
        # the guest boots (4-15 s under TCG) and then reports its disks
        sh.console_shows(console, promised, g.BOOT_TIMEOUT)
        timing("make run's demo until the guest reports the volume", time.monotonic() - t0)
        out = sh(delete)
        status = out.splitlines()[0] if out else ""
        assert re.match(r"HTTP/1\.1 204 No Content", status), out
        out = sh(after)
        assert target not in domblklist_rows(out) and path not in out, \
            f"the volume is still in the VM after the DELETE:\n{out}"

        data_id = None
        for cmd in life:
            want = comment(cmd)
            if want.startswith(g.MARK):
                rest = want[len(g.MARK + " DISKS"):].replace("DATA_ID", data_id or "DATA_ID")
                sh.console_shows(cmd.split("#", 1)[0], g.parse_disks(rest))
                continue
            sh(cmd)
            if cmd.startswith("openstack volume create"):
                data_id = sh("openstack volume show data -f value -c id").strip()
            if cmd.startswith("openstack server create"):
                sid = sh("openstack server show second -f value -c id").strip()
                assert sh("openstack server show second -f value -c status").strip() == "ACTIVE"
                assert g.domain_state(f"attachd-{sid}") == "running"
        assert data_id, "the block made no volume named data"
        assert not g.domain_exists(f"attachd-{sid}"), "the deleted server's VM is still there"
        r = requests.get(d.url(f"/v2.1/servers/{sid}"), auth=("demo", password))
        assert r.status_code == 404, r.text
    finally:
        try:
            if password and d.proc:
                requests.delete(d.url(f"/v2.1/servers/{SERVER}"), auth=("demo", password))
                deadline = time.monotonic() + 60
                while g.domain_exists(DOMAIN) and time.monotonic() < deadline:
                    time.sleep(0.2)
            rc = d.stop()
        finally:
            state = g.domain_state(DOMAIN)
            if state != "undefined":
                g.virsh("destroy", DOMAIN, check=False)
                g.virsh("undefine", DOMAIN, check=False)
            daemon_log = d.read_log()
            shutil.rmtree(work, ignore_errors=True)
            os.close(lock)
    # (not in the finally: a failure above is the one to report)
    assert state == "undefined", "the demo server's delete left its VM:\n" + daemon_log[-3000:]
    assert rc == 0, daemon_log
