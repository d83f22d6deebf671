"""Installing attachd as a service, as an operator would: `make install`
(meson install) into a scratch DESTDIR, and the Debian package built with
dpkg-buildpackage and installed into a scratch root (an overlay of this
machine's root, chrooted into, in a mount namespace of its own: no systemd
runs, nothing of the machine changes). There the unit passes
`systemd-analyze verify`, the package's user and state directory are made,
attachd starts as that user with the installed configuration and answers
its health check, and a purge removes it all.

Each test builds attachd from the checkout's files in a directory of its
own (a release build: about a minute or two each), so this suite runs once,
not once per build under test. Root is needed for the second (mount
namespaces, chroot); without it, it is skipped.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))

from attachd import free_port  # noqa: E402


def copy_checkout(dest):
    """The checkout's files (tracked, and new ones not ignored): what a
    clean clone has, without any build directory."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = os.path.join(ROOT.encode(), f)
        if not os.path.isfile(src):
            continue
        out = os.path.join(str(dest).encode(), f)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(src, out)
    return str(dest)


def test_make_install_into_destdir(tmp_path):
    src = copy_checkout(tmp_path / "src")
    dest = tmp_path / "dest"
    build = tmp_path / "build"
    make = ["make", "-C", src, "install", f"DESTDIR={dest}", f"INSTALL_BUILD={build}",
            "PREFIX=/usr/local"]
    p = subprocess.run(make, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for path in ("usr/local/bin/attachd", "usr/local/share/man/man8/attachd.8",
                 "usr/local/share/man/man5/attachd.conf.5", "etc/attachd/attachd.conf",
                 "usr/local/lib/systemd/system/attachd.service",
                 "usr/local/lib/sysusers.d/attachd.conf",
                 "usr/local/share/doc/attachd/attachd.conf", "usr/local/share/doc/attachd/LICENSE"):
        assert (dest / path).is_file(), path
    unit = (dest / "usr/local/lib/systemd/system/attachd.service").read_text()
    assert "ExecStart=/usr/local/bin/attachd serve --config /etc/attachd/attachd.conf" in unit
    assert "Type=notify" in unit and "WatchdogSec=" in unit and "StateDirectory=attachd" in unit
    conf = (dest / "etc/attachd/attachd.conf").read_text()
    assert "path = /var/lib/attachd/attachd.db" in conf
    # the installed binary has the installed defaults, and the example is valid
    attachd = str(dest / "usr/local/bin/attachd")
    help_text = subprocess.run([attachd, "--help"], capture_output=True, text=True).stdout
    assert "/var/lib/attachd/attachd.db" in help_text and "/etc/attachd/attachd.conf" in help_text
    p = subprocess.run([attachd, "config", "check", "--config", str(dest / "etc/attachd/attachd.conf")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    # installing again keeps the operator's file
    (dest / "etc/attachd/attachd.conf").write_text("[serve]\nlisten = 127.0.0.1:9999\n")
    p = subprocess.run(make, capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr[-3000:]
    # (meson install shows an install script's words only when it fails: the
    # file itself is what the operator relies on)
    assert (dest / "etc/attachd/attachd.conf").read_text() == "[serve]\nlisten = 127.0.0.1:9999\n"


CHROOT_TEST = textwrap.dedent("""\
    #!/bin/bash
    # Run in a mount namespace of its own (unshare -m): an overlay of / with
    # its changes in SCRATCH, chrooted into; the package installed, started,
    # purged. Each step prints STEP <name> when it is done.
    set -euo pipefail
    deb=$1 scratch=$2 port=$3
    mkdir -p "$scratch"/{up,work,root}
    mount -t overlay overlay -o "lowerdir=/,upperdir=$scratch/up,workdir=$scratch/work" "$scratch/root"
    r=$scratch/root
    mount --rbind /dev "$r/dev"
    mount -t proc proc "$r/proc"
    mount -t sysfs sys "$r/sys"
    mount -t tmpfs tmpfs "$r/tmp"
    mount -t tmpfs tmpfs "$r/run"
    cp "$deb" "$r/tmp/attachd.deb"
    inroot() { chroot "$r" "$@"; }
    inroot dpkg -i /tmp/attachd.deb
    echo "STEP installed"
    inroot getent passwd attachd
    [ "$(inroot stat -c '%U %a' /var/lib/attachd)" = "attachd 711" ]
    echo "STEP user and state directory"
    inroot systemd-analyze verify /lib/systemd/system/attachd.service
    echo "STEP unit verified"
    inroot man --warnings -l /usr/share/man/man8/attachd.8.gz >/dev/null
    inroot man --warnings -l /usr/share/man/man5/attachd.conf.5.gz >/dev/null
    echo "STEP man pages"
    inroot attachd config check >/dev/null
    echo "STEP config checked"
    # as the unit runs it: the user attachd, the installed configuration
    # (the port moved off 8774, which may be taken on this machine)
    chroot "$r" setpriv --reuid=attachd --regid=attachd --init-groups \\
        attachd serve --listen 127.0.0.1:$port >"$scratch/serve.log" 2>&1 &
    pid=$!
    for i in $(seq 300); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthcheck" && break
        kill -0 $pid
        sleep 0.1
    done
    [ "$(curl -s -f "http://127.0.0.1:$port/healthcheck")" = '{"status":"ok"}' ]
    [ "$(inroot stat -c '%U %a' /var/lib/attachd/attachd.db)" = "attachd 640" ]
    echo "STEP served"
    kill -TERM $pid
    wait $pid
    echo "STEP stopped"
    inroot dpkg --purge attachd
    [ ! -e "$r/var/lib/attachd" ] && [ ! -e "$r/etc/attachd" ] && ! inroot getent passwd attachd
    echo "STEP purged"
    """)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a mount namespace and a chroot)")
def test_deb_builds_installs_starts_and_purges(tmp_path):
    src = copy_checkout(tmp_path / "attachd")
    p = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, capture_output=True,
                       text=True, timeout=1800,
                       env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    debs = [f for f in os.listdir(tmp_path) if f.startswith("attachd_") and f.endswith(".deb")]
    assert len(debs) == 1, os.listdir(tmp_path)
    deb = str(tmp_path / debs[0])
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout
    for path in ("./usr/bin/attachd", "./etc/attachd/attachd.conf",
                 "./lib/systemd/system/attachd.service", "./usr/lib/sysusers.d/attachd.conf",
                 "./usr/share/man/man8/attachd.8.gz", "./usr/share/man/man5/attachd.conf.5.gz",
                 "./usr/share/doc/attachd/copyright"):
        assert path in listing, path
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", deb, str(control)], check=True)
    assert (control / "conffiles").read_text().split() == ["/etc/attachd/attachd.conf"]
    info = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True,
                          text=True).stdout
    assert "libmicrohttpd12" in info and "adduser" in info
    script = tmp_path / "chroot-test.sh"
    script.write_text(CHROOT_TEST)
    script.chmod(0o755)
    scratch = tmp_path / "scratch"
    p = subprocess.run(["unshare", "-m", str(script), deb, str(scratch), str(free_port())],
                       capture_output=True, text=True, timeout=600)
    log = (scratch / "serve.log").read_text() if (scratch / "serve.log").exists() else ""
    steps = [l for l in p.stdout.splitlines() if l.startswith("STEP ")]
    assert p.returncode == 0, (steps, p.stdout[-3000:], p.stderr[-3000:], log[-2000:])
    assert steps == ["STEP installed", "STEP user and state directory", "STEP unit verified",
                     "STEP man pages", "STEP config checked", "STEP served", "STEP stopped",
                     "STEP purged"], steps
    assert "listening on http://127.0.0.1:" in log and "attachd: stopped" in log
