"""The README's libvirt demo works as written, for real.

`make run` (the Makefile's run target, DRIVER=libvirt) starts libvirt's
daemons (scripts/libvirt-env: here conftest.py's libvirt_env), the demo VM
(`scripts/demo-vm start`: the domain attachd-demo, its console in
/var/tmp/attachd-demo/console.log) and `attachd serve --driver libvirt
--volume-dir data/volumes --demo`, which makes the demo server
test-server-0013 that VM, with the volume hbs2012May03_0OxRg0Jz7 hot-plugged
into it, and prints the demo user's password (src/cli/serve.c). This test
does the same, on a free port and with the daemon working in a temporary
directory (data/attachd.db and data/volumes there, as make run's defaults),
then runs the README's sh block after "for real:" itself, with the printed
password and the test's port put in, and checks what each command prints
against what its comment in the README promises:

  virsh domblklist    the volume's file, at the target the comment names;
  tail console.log    the guest's "ATTACHD-GUEST DISKS ..." line as written;
  curl DELETE         204 No Content;
  virsh domblklist    the file is gone from the VM;

and that the guest itself then reports the disk gone (its /init prints a
DISKS line whenever the set of disks changes: tests/guest/build-guest).

The demo VM has scripts/demo-vm's fixed name and directory, which the README
names: the test skips when a domain attachd-demo exists already (a
developer's demo) or another session runs this test, and always ends with
`scripts/demo-vm stop`. One VM, TCG, 128 MiB.
"""
import fcntl
import os
import re
import shutil
import subprocess
import time

import pytest

import guest as g
from attachd import Attachd

DEMO_VM = os.path.join(g.ROOT, "scripts", "demo-vm")
DOMAIN = "attachd-demo"                         # scripts/demo-vm's default
DEMO_DIR = "/var/tmp/attachd-demo"              # scripts/demo-vm's default
CONSOLE = os.path.join(DEMO_DIR, "console.log")
SERVER, VOLUME = "test-server-0013", "hbs2012May03_0OxRg0Jz7"   # src/cli/serve.c
LOCK = "/run/lock/attachd-demo-test"


def readme_demo_commands():
    """The commands of the README's sh block that follows "for real:", each
    with its comment (continuation lines joined)."""
    with open(os.path.join(g.ROOT, "README.md")) as f:
        readme = f.read()
    m = re.search(r"for real:\n\n```sh\n(.*?)```", readme, re.S)
    assert m, "README.md has no sh block after \"for real:\""
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


def demo_vm(action):
    env = {k: v for k, v in os.environ.items() if k not in ("DEMO_DOMAIN", "DEMO_DIR")}
    return subprocess.run([DEMO_VM, action], capture_output=True, text=True, env=env,
                          timeout=900)


def domblklist_rows(output):
    """{target: source} from `virsh domblklist` (its header lines skipped)."""
    rows = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] != "Target" and not set(parts[0]) <= {"-"}:
            rows[parts[0]] = parts[1]
    return rows


def latest_disks():
    """The guest's disks {name: serial} from its latest DISKS line, or None."""
    events = [rest for kind, rest in g.guest_events(CONSOLE) if kind == "DISKS"]
    return g.parse_disks(events[-1]) if events else None


def wait_guest(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate(latest_disks()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s; the guest's console ends:\n"
                        + "\n".join(g.console_lines(CONSOLE)[-15:]))
        time.sleep(0.1)
    return time.monotonic()


def test_readme_libvirt_demo_runs_as_written(libvirt_env, monkeypatch, timing):
    commands = readme_demo_commands()
    assert len(commands) == 4, commands
    before, tail, delete, after = commands
    assert f"domblklist {DOMAIN}" in before and f"domblklist {DOMAIN}" in after, commands
    assert tail.startswith(f"tail {CONSOLE}"), tail
    assert delete.startswith("curl ") and "PASSWORD" in delete and "127.0.0.1:8774" in delete
    # what the comments promise: "sdX: the volume's file", the guest's line
    m = re.match(r"(sd[a-z]+): the volume's file$", comment(before))
    assert m, before
    target = m.group(1)
    guest_line = comment(tail)
    assert guest_line.startswith("ATTACHD-GUEST DISKS ") and VOLUME in guest_line, tail

    lock = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        pytest.skip("another test session runs the demo VM")
    if g.domain_exists(DOMAIN):
        os.close(lock)
        pytest.skip(f"a domain {DOMAIN} exists already (a developer's demo?): "
                    "left alone; `scripts/demo-vm stop` removes it")
    made_dir = not os.path.exists(DEMO_DIR)
    work = g.shared_dir(prefix="attachd-demo-")      # libvirt-qemu opens data/volumes
    d = Attachd(work)
    d.db = os.path.join(work, "data", "attachd.db")  # make run's DB, relative to its cwd
    os.makedirs(os.path.join(work, "data"))
    voldir = os.path.join(work, "data", "volumes")
    try:
        t0 = time.monotonic()
        p = demo_vm("start")
        assert p.returncode == 0, p.stdout + p.stderr
        assert g.domain_state(DOMAIN) == "running"
        monkeypatch.chdir(work)                     # the daemon's working directory
        d.start("--driver", "libvirt", "--volume-dir", "data/volumes", "--demo")
        log = d.read_log()
        m = re.search(r'user "demo", password "([^"]+)"', log)
        assert m, "no demo password printed (the demo was not made):\n" + log
        password = m.group(1)
        assert f'The server is the running VM "{DOMAIN}"' in log, log

        # what a person does next: look once the guest has booted (4-15 s
        # under TCG: tests/support/guest.py; the disk was plugged before)
        t_seen = wait_guest("the guest reports the volume's serial",
                            lambda disks: disks and VOLUME in disks.values(), g.BOOT_TIMEOUT)
        timing("boot until the guest sees the disk", t_seen - t0)

        out = []
        for cmd in commands:
            cmd = cmd.replace("PASSWORD", password).replace("127.0.0.1:8774",
                                                            f"127.0.0.1:{d.port}")
            t = time.monotonic()
            r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=120)
            timing(f"README command {len(out) + 1}: {cmd.split()[0]}", time.monotonic() - t)
            assert r.returncode == 0, (cmd, r.stdout, r.stderr)
            out.append(r.stdout)
        t_deleted = time.monotonic()

        rows = domblklist_rows(out[0])
        assert target in rows, f"domblklist shows no {target}:\n{out[0]}"
        path = rows[target]
        assert os.path.isfile(path) and os.path.samefile(os.path.dirname(path), voldir), \
            f"{target} is {path}, not a file in {voldir}"
        assert VOLUME in os.path.basename(path), path

        assert any(guest_line in line for line in out[1].splitlines()), \
            f"the console's tail lacks {guest_line!r}:\n{out[1]}"

        status = out[2].splitlines()[0] if out[2] else ""
        assert re.match(r"HTTP/1\.1 204 No Content", status), out[2]

        rows = domblklist_rows(out[3])
        assert target not in rows and path not in out[3], \
            f"the volume is still in the VM after the DELETE:\n{out[3]}"

        t_gone = wait_guest("the guest reports the disk gone",
                            lambda disks: disks is not None and VOLUME not in disks.values(), 30)
        timing("block run until the guest saw it gone", t_gone - t_deleted)
    finally:
        try:
            rc = d.stop()
        finally:
            p = demo_vm("stop")
            state = g.domain_state(DOMAIN)
            daemon_log = d.read_log()
            if made_dir:
                shutil.rmtree(DEMO_DIR, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
            os.close(lock)
    # (not in the finally: a failure above is the one to report)
    assert state == "undefined", p.stdout + p.stderr
    assert rc == 0, daemon_log
