"""Fixtures of the libvirt integration tests: libvirt's daemons, the test
guest, a directory libvirt-qemu can reach, and a timing report.

The whole directory skips (with the reason) when it does not run as root or
when libvirt cannot be started; under CI (CI=true) the latter fails instead. scripts/libvirt-env is started once per
session (state in build/libvirt-env) and stopped at the end, unless libvirt
was answering already (a developer's `scripts/libvirt-env start`, or a
system libvirtd): then it is left as it was. When test sessions overlap, the
last one to finish stops it.
"""
import fcntl
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


# Test sessions may overlap (two checkouts, two developers). Each holds a
# shared lock on USERS while it uses libvirt; the one that ends last stops
# the daemons if a test session started them (STARTED names their STATEDIR).
# Daemons that were running before any session are never stopped. DECIDE
# serialises the start and stop decisions.
LOCKS = "/run/lock/attachd-libvirt-tests"
USERS, DECIDE, STARTED = (f"{LOCKS}.users", f"{LOCKS}.decide", f"{LOCKS}.started")
STATEDIR = os.path.join(g.ROOT, "build", "libvirt-env")


def _env(cmd, statedir, **kw):
    return subprocess.run([g.LIBVIRT_ENV, cmd, statedir], capture_output=True, text=True, **kw)


def _lock(path, how):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, how)
    return fd


def unavailable(why):
    """No libvirt: the suite skips, except under CI (CI=true), which promised
    to run it: there it fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(why, pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def libvirt_env():
    """qemu:///system answering for the whole session; yields whether this
    session started the daemons."""
    if os.geteuid() != 0:
        pytest.skip("the libvirt tests need root (they run libvirt's system daemons)")
    decide = _lock(DECIDE, fcntl.LOCK_EX)
    users = _lock(USERS, fcntl.LOCK_SH)
    try:
        started = False
        if _env("status", STATEDIR).returncode != 0:
            try:
                p = _env("start", STATEDIR, timeout=1200)
            except subprocess.TimeoutExpired:
                unavailable("libvirt could not be started: scripts/libvirt-env start timed out")
            if p.returncode != 0:
                _env("stop", STATEDIR)
                unavailable("libvirt could not be started: scripts/libvirt-env start said:\n"
                            + (p.stdout + p.stderr)[-3000:])
            started = True
            with open(STARTED, "w") as f:
                f.write(STATEDIR)
        if not g.libvirt_answers():
            unavailable("libvirt does not answer on qemu:///system")
    except BaseException:
        os.close(users)
        raise
    finally:
        os.close(decide)

    # Under CI the daemons were started for the tests (.ci/run says so with
    # ATTACHD_LIBVIRT_DISPOSABLE=1): they are the session's to restart.
    yield started or os.environ.get("ATTACHD_LIBVIRT_DISPOSABLE") == "1"

    # A safety net: domains this run created (their names hold our PID)
    # that a test failed to remove.
    mine = f"attachd-test-{os.getpid()}-"
    left = [n for n in g.domain_names() if n.startswith(mine)]
    for name in left:
        g.Guest(name, "/nonexistent").cleanup()
    decide = _lock(DECIDE, fcntl.LOCK_EX)
    try:
        os.close(users)
        try:
            last = _lock(USERS, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass                                # another session still uses libvirt
        else:
            os.close(last)
            if os.path.exists(STARTED):
                with open(STARTED) as f:
                    statedir = f.read().strip()
                p = _env("stop", statedir, timeout=120)
                assert p.returncode == 0, p.stdout + p.stderr
                os.unlink(STARTED)
    finally:
        os.close(decide)
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
