"""Fixtures of the libvirt integration tests: libvirt's daemons, the test
guest, a directory libvirt-qemu can reach, and a timing report.

The whole directory skips (with the reason) when it does not run as root or
when libvirt cannot be started. scripts/libvirt-env is started once per
session and stopped at the end, unless libvirt was answering already (a
developer's `scripts/libvirt-env start`, or a system libvirtd): then it is
left as it was.
"""
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "support"))

import guest as g  # noqa: E402

# (test, step, seconds), printed at the end of the run
TIMINGS = []


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    tr = terminalreporter
    tr.section("libvirt timings (measured, not asserted)")
    for test, step, seconds in TIMINGS:
        tr.write_line(f"{test:<46} {step:<32} {seconds * 1000:7.0f} ms")


@pytest.fixture
def timing(request):
    """timing(step, seconds): record a measurement for the summary."""
    def record(step, seconds):
        TIMINGS.append((request.node.name, step, seconds))
    return record


@pytest.fixture(scope="session")
def libvirt_env():
    """qemu:///system answering; yields whether this session started it."""
    if os.geteuid() != 0:
        pytest.skip("the libvirt tests need root (they run libvirt's system daemons)")
    status = subprocess.run([g.LIBVIRT_ENV, "status"], capture_output=True, text=True)
    started = False
    if status.returncode != 0:
        try:
            p = subprocess.run([g.LIBVIRT_ENV, "start"], capture_output=True, text=True,
                               timeout=1200)
        except subprocess.TimeoutExpired:
            pytest.skip("libvirt could not be started: scripts/libvirt-env start timed out")
        if p.returncode != 0:
            subprocess.run([g.LIBVIRT_ENV, "stop"], capture_output=True)
            pytest.skip("libvirt could not be started: scripts/libvirt-env start said:\n"
                        + (p.stdout + p.stderr)[-3000:])
        started = True
    if not g.libvirt_answers():
        if started:
            subprocess.run([g.LIBVIRT_ENV, "stop"], capture_output=True)
        pytest.skip("libvirt does not answer on qemu:///system")
    yield started
    # A safety net: domains this run created (their names hold our PID)
    # that a test failed to remove.
    mine = f"attachd-test-{os.getpid()}-"
    left = [n for n in g.domain_names() if n.startswith(mine)]
    for name in left:
        g.Guest(name, "/nonexistent").cleanup()
    if started:
        subprocess.run([g.LIBVIRT_ENV, "stop"], check=True, timeout=120)
    assert not left, f"domains left behind by the tests (now removed): {left}"


@pytest.fixture(scope="session")
def guest_dir():
    """The test guest's kernel and initrd (built once, then cached)."""
    return g.build_guest()


@pytest.fixture
def workdir():
    """A directory for the domains' files that libvirt-qemu can reach."""
    d = g.shared_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)
