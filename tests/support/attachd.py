"""Start and drive a real attachd process for the black-box suites.

Every suite (tests/api, tests/compat) runs the binary named by $ATTACHD_BIN
(default build/attachd) on a free loopback port with a database in a fresh
temporary directory; nothing is shared between test modules unless a fixture
says so.

With $ATTACHD_TEST_PG set to the libpq conninfo of a PostgreSQL cluster (a
user who may create databases: `scripts/pg-env conninfo`), each Attachd gets
a fresh, empty database of its own on that cluster instead of an SQLite
file (its `db` is then a conninfo); tests that cannot apply there (they
read the SQLite file, back it up, ...) skip with `requires_sqlite`.
"""
import atexit
import base64
import itertools
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


PG = os.environ.get("ATTACHD_TEST_PG") or None
_pg_dbs = itertools.count()
_pg_cleaned = False

# A test that only applies to the SQLite engine (it reads or replaces the
# database file, backs it up, ...): skipped under $ATTACHD_TEST_PG.
requires_sqlite = pytest.mark.skipif(PG is not None,
                                     reason="applies to an SQLite database file only "
                                            "($ATTACHD_TEST_PG runs on PostgreSQL)")


def psql(sql, conninfo=None):
    """Run SQL on the cluster of $ATTACHD_TEST_PG (its own database unless
    conninfo says otherwise); its output."""
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                        "-d", conninfo or PG, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError(f"psql {sql!r}: {p.stderr}")
    return p.stdout


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _pg_drop_own():
    for name in _pg_made:
        subprocess.run(["psql", "-X", "-q", "-d", PG, "-c",
                        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


_pg_made = []


def pg_database():
    """A fresh, empty database on $ATTACHD_TEST_PG's cluster; its conninfo.
    Each is named after this process (attachd_api_PID_N) and dropped when it
    exits; the first call also drops what runs that died left behind (never
    a live run's)."""
    global _pg_cleaned
    if not _pg_cleaned:
        _pg_cleaned = True
        atexit.register(_pg_drop_own)
        for name in psql("SELECT datname FROM pg_database "
                         "WHERE datname LIKE 'attachd\\_api\\_%'").split():
            pid = name.split("_")[2]
            if pid.isdigit() and not _pid_alive(int(pid)):
                psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    name = f"attachd_api_{os.getpid()}_{next(_pg_dbs)}"
    _pg_made.append(name)
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    psql(f"CREATE DATABASE {name} TEMPLATE template0")
    return f"{PG} dbname={name}"


def binary():
    return os.environ.get("ATTACHD_BIN", os.path.join(ROOT, "build", "attachd"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def basic(user, password):
    raw = f"{user}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Attachd:
    """One attachd daemon plus the CLI pointed at the same database."""

    def __init__(self, tmpdir, extra_args=()):
        self.dir = str(tmpdir)
        self.pg = PG is not None
        self.db = pg_database() if self.pg else os.path.join(self.dir, "attachd.db")
        self.migrated = False
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(self.dir, "attachd.log")
        self.env = None             # the daemon's environment, when not ours

    # -- the CLI ---------------------------------------------------------
    def cli(self, *args, stdin=None, check=True):
        """Run `attachd ARGS --db DB`; return the CompletedProcess. Commands
        other than serve and db refuse a database that does not exist, so
        the first one makes it with `attachd db migrate`."""
        exists = self.migrated if self.pg else os.path.exists(self.db)
        if not exists and args and args[0] not in ("db", "serve"):
            self.migrate()
        cmd = [binary(), *args, "--db", self.db]
        # in the daemon's folder, so that a call that lost its --db cannot
        # write into the source tree
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60,
                           cwd=self.dir)
        if check and p.returncode != 0:
            raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr}")
        return p

    def migrate(self):
        """`attachd db migrate`: make (or upgrade) the database."""
        p = subprocess.run([binary(), "db", "migrate", "--db", self.db], capture_output=True,
                           text=True, timeout=60, cwd=self.dir)
        if p.returncode != 0:
            raise AssertionError(f"db migrate exited {p.returncode}: {p.stderr}")
        self.migrated = True

    def add_account(self, name=None, account_id=None, unlimited=True):
        """A new account; by default without quotas, so that tests about
        other things can make as many servers and volumes as they need
        (the quota tests ask for unlimited=False)."""
        args = ["account", "add"]
        if account_id:
            args += ["--id", account_id]
        args.append(name or "acct-" + uuid.uuid4().hex[:8])
        account = self.cli(*args).stdout.strip()
        if unlimited:
            self.set_quota(account, instances=-1, cores=-1, ram=-1, volumes=-1, gigabytes=-1)
        return account

    def set_quota(self, account, **limits):
        """`attachd account quota ACCOUNT --name value ...`; its output."""
        args = ["account", "quota", account]
        for name, value in limits.items():
            args += [f"--{name}", str(value)]
        return self.cli(*args).stdout

    def add_user(self, account, username=None, role="member", password=None):
        username = username or "user-" + uuid.uuid4().hex[:8]
        password = password or uuid.uuid4().hex
        self.cli("user", "add", "--account", account, "--role", role, username,
                 stdin=password + "\n")
        return username, password

    def add_server(self, account, name="srv", server_id=None):
        args = ["server", "add", "--account", account, "--name", name]
        if server_id:
            args += ["--id", server_id]
        return self.cli(*args).stdout.strip()

    def add_volume(self, account, size=1, name=None, volume_id=None):
        args = ["volume", "add", "--account", account, "--size", str(size)]
        if name:
            args += ["--name", name]
        if volume_id:
            args += ["--id", volume_id]
        return self.cli(*args).stdout.strip()

    # -- the daemon ------------------------------------------------------
    def start(self, *args):
        assert self.proc is None
        self.migrated = True        # serve migrates
        cmd = [binary(), "serve", "--listen", f"127.0.0.1:{self.port}",
               "--db", self.db, *self.extra_args, *args]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"attachd exited {self.proc.returncode}: {self.read_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise AssertionError("attachd did not start listening: " + self.read_log())

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Send SIG and wait; return the exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.log.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def restart(self, *args):
        self.stop()
        return self.start(*args)

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    # -- HTTP --------------------------------------------------------------
    def session(self, user=None, password=None, microversion=None):
        s = requests.Session()
        if user is not None:
            s.headers["Authorization"] = basic(user, password)
        if microversion is not None:
            s.headers["OpenStack-API-Version"] = f"compute {microversion}"
        s.base = self.base
        return s

    def url(self, path):
        return self.base + path
