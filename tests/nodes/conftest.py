"""Fixtures for the three-node suite (docs/scale-out.md): several attachd
nodes serving one PostgreSQL database.

The module gets a throwaway PostgreSQL cluster of its own
(`scripts/pg-env start DIR` in a fresh directory, destroyed at the end), so
that a test may restart it without disturbing anyone else's; each test gets
a fresh, empty database on it and three nodes (`attachd serve` with the
state-only driver `none`) on three loopback ports, all on that database.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "api"))   # apiutil, conftest_volumes

from attachd import ROOT, Attachd, _pid_alive, free_port, psql  # noqa: E402  (tests/support)

PG_ENV = os.path.join(ROOT, "scripts", "pg-env")
N_NODES = 3
STATE_PREFIX = "attachd-nodes-pg-"


def pg_env(*args, timeout=600):
    """`scripts/pg-env ARGS`; the CompletedProcess (fails the test when it fails)."""
    p = subprocess.run([PG_ENV, *args], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"scripts/pg-env {' '.join(args)} exited {p.returncode}:\n"
                             f"{p.stdout}{p.stderr}")
    return p


class Cluster:
    """The module's own PostgreSQL cluster (scripts/pg-env in DIR)."""

    def __init__(self, state):
        self.state = state
        self.conninfo = None

    def start(self):
        pg_env("start", self.state)
        self.conninfo = pg_env("conninfo", self.state).stdout.strip()

    def restart(self):
        """Fast shutdown (every session is ended), start, wait until it answers."""
        pg_env("restart", self.state, timeout=120)

    def destroy(self):
        subprocess.run([PG_ENV, "destroy", self.state], capture_output=True, timeout=120)
        shutil.rmtree(self.state, ignore_errors=True)

    def psql(self, sql, dbname=None):
        return psql(sql, self.conninfo + (f" dbname={dbname}" if dbname else ""))

    def new_database(self):
        name = "attachd_nodes_" + uuid.uuid4().hex[:12]
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return name


@pytest.fixture(scope="module")
def pg_cluster():
    # clusters that a run which died left behind (never a live run's)
    for old in glob.glob(os.path.join(tempfile.gettempdir(), STATE_PREFIX + "*")):
        pid = os.path.basename(old)[len(STATE_PREFIX):].split("-")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            Cluster(old).destroy()
    state = tempfile.mkdtemp(prefix=f"{STATE_PREFIX}{os.getpid()}-")
    c = Cluster(state)
    try:
        c.start()
        yield c
    finally:
        c.destroy()


class Node(Attachd):
    """One attachd on the shared database `db` (a libpq conninfo), with the
    CLI pointed at it too. Unlike Attachd it never makes a database of its own."""

    def __init__(self, tmpdir, db, index):
        # not Attachd.__init__: that would make a database of its own
        # on $ATTACHD_TEST_PG, or pick an SQLite file
        self.dir = str(tmpdir)
        os.makedirs(self.dir, exist_ok=True)
        self.pg = True
        self.db = db
        self.migrated = True        # the fixture migrates before anything else
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.extra_args = ["--driver", "none"]
        self.proc = None
        self.log_path = os.path.join(self.dir, "attachd.log")
        self.env = None
        self.index = index

    def log_tail(self, n=40):
        return f"--- node {self.index} ({self.base}) log, last lines:\n" + \
            "\n".join(self.read_log().splitlines()[-n:])


class Nodes:
    """Three nodes on one fresh database of the module's cluster."""

    def __init__(self, cluster, tmp_path):
        self.cluster = cluster
        self.dbname = cluster.new_database()
        self.db = f"{cluster.conninfo} dbname={self.dbname}"
        self.nodes = [Node(tmp_path / f"node{i}", self.db, i) for i in range(N_NODES)]
        self.cli_node = self.nodes[0]

    def start(self):
        """Start every node at once: they race to migrate the empty database
        (an advisory lock makes it happen once)."""
        errors = []

        def one(n):
            try:
                n.start()
            except Exception as e:      # noqa: BLE001 (reported below)
                errors.append(repr(e))
        ts = [threading.Thread(target=one, args=(n,)) for n in self.nodes]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors

    def psql(self, sql):
        return self.cluster.psql(sql, dbname=self.dbname)

    def cli(self, *args, **kw):
        return self.cli_node.cli(*args, **kw)

    def logs(self):
        return "\n".join(n.log_tail() for n in self.nodes)

    def live(self):
        return [n for n in self.nodes if n.proc is not None]


@pytest.fixture
def nodes(pg_cluster, tmp_path):
    """Three nodes on a fresh database; each still running at the end must
    exit 0 on SIGTERM."""
    ns = Nodes(pg_cluster, tmp_path)
    ns.start()
    yield ns
    bad = []
    for n in ns.nodes:
        if n.proc is not None:
            rc = n.stop()
            if rc != 0:
                bad.append(f"node {n.index} exited {rc} on SIGTERM\n{n.log_tail()}")
    assert not bad, "\n".join(bad)
