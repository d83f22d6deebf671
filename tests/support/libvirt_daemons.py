"""The guard for libvirt tests that stop, start or freeze libvirtd itself.

The same rules as tests/libvirt/test_driver.py (own_daemons there) and the
session fixture in tests/libvirt/conftest.py, whose lock files these are: a
test may disturb libvirtd only when this session started it (the session
fixture `libvirt_env` yielded True) and no other test session holds the
shared users lock; it holds the decision lock meanwhile, so that no session
starts or stops the daemons under it, and leaves libvirtd answering.
"""
import contextlib
import fcntl
import os
import subprocess

import pytest

import guest as g

LOCKS = "/run/lock/attachd-libvirt-tests"
USERS, DECIDE = f"{LOCKS}.users", f"{LOCKS}.decide"
STATEDIR = os.path.join(g.ROOT, "build", "libvirt-env")


def others_use_libvirt():
    """True when another test session holds the shared users lock."""
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
    """scripts/libvirt-env CMD on the session's state directory."""
    p = subprocess.run([g.LIBVIRT_ENV, cmd, STATEDIR], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr


def libvirtd_pid():
    with open(os.path.join(STATEDIR, "libvirtd.pid")) as f:
        return int(f.read().strip())


@contextlib.contextmanager
def own_daemons(libvirt_env):
    """Skip unless this session may disturb libvirtd; hold the decision lock
    meanwhile; make sure libvirtd answers again afterwards."""
    if not libvirt_env:
        pytest.skip("libvirtd was not started by this test session: not ours to disturb")
    decide = os.open(DECIDE, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(decide, fcntl.LOCK_EX)
    try:
        if others_use_libvirt():
            pytest.skip("another test session is using libvirtd")
        yield
    finally:
        if not g.libvirt_answers():
            env("start")
        os.close(decide)
