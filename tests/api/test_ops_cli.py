"""The CLI an operator inspects with (list, show, del for accounts, users,
servers and volumes; --format table|json), and backup and restore: a backup
taken under write load restores to a database that passes PRAGMA
integrity_check and holds every change acknowledged before the backup
started; a restore is refused while a daemon serves the database."""
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

from apiutil import basic, server_body, unique
from attachd import PG, Attachd, binary, requires_sqlite


def run(d, *args, stdin=None, check=True):
    p = subprocess.run([binary(), *args, "--db", d.db], input=stdin, capture_output=True,
                       text=True, timeout=60, cwd=d.dir)
    if check:
        assert p.returncode == 0, (args, p.returncode, p.stderr)
    return p


def as_json(d, *args):
    return json.loads(run(d, *args, "--format", "json").stdout)


@pytest.fixture
def filled(tmp_path):
    """A database with two accounts, users, servers and volumes, one attached."""
    d = Attachd(tmp_path)
    d.acme = d.add_account("acme", account_id="acme", unlimited=False)
    d.other = d.add_account("other", account_id="other")
    d.add_user("acme", username="alice", role="member", password="pw-alice")
    d.add_user("other", username="olga", role="admin", password="pw-olga")
    d.srv = d.add_server("acme", name="web1", server_id="srv-1")
    d.add_server("other", name="db1", server_id="srv-2")
    d.vol = d.add_volume("acme", size=3, name="data", volume_id="vol-1")
    d.add_volume("acme", size=1, volume_id="vol-free")
    d.start()
    r = d.session("alice", "pw-alice").post(
        d.url("/v2.1/servers/srv-1/os-volume_attachments"),
        json={"volumeAttachment": {"volumeId": "vol-1"}})
    assert r.status_code == 200, r.text
    d.device = r.json()["volumeAttachment"]["device"]
    yield d
    if d.proc is not None:
        assert d.stop() == 0


def test_account_list_and_show(filled):
    d = filled
    accounts = as_json(d, "account", "list")
    assert [a["name"] for a in accounts] == ["acme", "other"]
    acme = accounts[0]
    assert (acme["id"], acme["users"], acme["servers"], acme["volumes"]) == ("acme", 1, 1, 2)
    assert isinstance(acme["users"], int) and acme["created_at"]
    shown = as_json(d, "account", "show", "acme")
    assert shown["id"] == "acme" and shown["servers"] == 1
    assert shown["quota_instances"] == 10 and shown["used_instances"] == 1
    assert shown["used_gigabytes"] == 4
    # by name or by id, the same
    assert as_json(d, "account", "show", "other")["id"] == "other"
    table = run(d, "account", "list").stdout.splitlines()
    assert table[0].split() == ["id", "name", "created_at", "users", "servers", "volumes"]
    assert table[1].split()[:2] == ["acme", "acme"] and len(table) == 3


def test_user_list_and_show_never_show_a_hash(filled):
    d = filled
    users = as_json(d, "user", "list")
    assert [(u["name"], u["account"], u["role"]) for u in users] == [
        ("alice", "acme", "member"), ("olga", "other", "admin")]
    assert [u["name"] for u in as_json(d, "user", "list", "--account", "acme")] == ["alice"]
    alice = as_json(d, "user", "show", "alice")
    assert alice["role"] == "member" and alice["account"] == "acme"
    for args in (["user", "list"], ["user", "show", "alice"], ["user", "list", "--format", "json"]):
        out = run(d, *args).stdout
        assert "argon2" not in out and "pw-alice" not in out


def test_server_and_volume_list_and_show(filled):
    d = filled
    servers = as_json(d, "server", "list")
    assert {(s["id"], s["account"], s["name"]) for s in servers} == {
        ("srv-1", "acme", "web1"), ("srv-2", "other", "db1")}
    srv = next(s for s in servers if s["id"] == "srv-1")
    assert srv["status"] == "ACTIVE" and srv["attachments"] == 1
    assert [s["id"] for s in as_json(d, "server", "list", "--account", "other")] == ["srv-2"]
    shown = as_json(d, "server", "show", "srv-1")
    assert shown["attachments"] == f"vol-1:{d.device}" and shown["locked"] == "false"
    volumes = {v["id"]: v for v in as_json(d, "volume", "list", "--account", "acme")}
    assert volumes["vol-1"]["attached_to"] == "srv-1" and volumes["vol-1"]["size_gb"] == 3
    assert volumes["vol-1"]["status"] == "in-use"
    assert volumes["vol-free"]["attached_to"] is None
    v = as_json(d, "volume", "show", "vol-1")
    assert (v["name"], v["device"], v["attached_to"]) == ("data", d.device, "srv-1")
    # what the CLI shows is what the API shows
    api = d.session("alice", "pw-alice").get(d.url("/v2.1/os-volumes/vol-1")).json()["volume"]
    assert api["status"] == v["status"] and api["size"] == v["size_gb"]


def test_deletes_go_through_the_same_rules(filled):
    d = filled
    # an attached volume is not deleted
    p = run(d, "volume", "del", "vol-1", check=False)
    assert p.returncode == 2 and "vol-1" in p.stderr, p.stderr
    # an account with things in it is not deleted
    p = run(d, "account", "del", "acme", check=False)
    assert p.returncode == 2 and "still has 1 users, 1 servers and 2 volumes" in p.stderr
    # deleting the server detaches its volume, as DELETE /servers/ID does
    assert run(d, "server", "del", "srv-1").stdout.strip() == "deleted server srv-1"
    s = d.session("alice", "pw-alice")
    assert s.get(d.url("/v2.1/servers/srv-1")).status_code == 404
    assert s.get(d.url("/v2.1/os-volumes/vol-1")).json()["volume"]["status"] == "available"
    run(d, "volume", "del", "vol-1")
    run(d, "volume", "del", "vol-free")
    assert s.get(d.url("/v2.1/os-volumes/vol-1")).status_code == 404
    run(d, "user", "del", "alice")
    assert run(d, "account", "del", "acme").stdout.startswith("deleted account acme")
    assert [a["id"] for a in as_json(d, "account", "list")] == ["other"]
    for args in (["server", "del", "srv-1"], ["volume", "show", "vol-1"],
                 ["account", "show", "acme"]):
        p = run(d, *args, check=False)
        assert p.returncode == 2, (args, p.returncode, p.stderr)


def test_json_output_is_json_for_odd_names(tmp_path):
    d = Attachd(tmp_path)
    d.add_account('we "quote" \\ and ünïcode', account_id="odd")
    d.add_server("odd", name="ünï \\ \"srv\"", server_id="odd-srv")
    assert as_json(d, "account", "show", "odd")["name"] == 'we "quote" \\ and ünïcode'
    assert as_json(d, "server", "show", "odd-srv")["name"] == 'ünï \\ "srv"'
    # a table is aligned by characters, not bytes
    lines = run(d, "server", "list").stdout.splitlines()
    col = lines[0].index("status")
    assert lines[1][col:col + 6] == "ACTIVE", lines


# -- backup and restore -------------------------------------------------------------------

@requires_sqlite
def test_backup_under_write_load_restores_every_acknowledged_change(tmp_path):
    d = Attachd(tmp_path, extra_args=["--threads", "2"]).start()
    account = d.add_account("busy")
    user, pw = d.add_user(account)
    auth = basic(user, pw)
    acked, lock, stop = [], threading.Lock(), threading.Event()
    errors = []

    def writer():
        s = requests.Session()
        s.headers["Authorization"] = auth
        while not stop.is_set():
            r = s.post(d.url("/v2.1/servers"), json=server_body(unique("w")), timeout=30)
            if r.status_code != 202:
                errors.append((r.status_code, r.text))
                return
            with lock:
                acked.append(r.json()["server"]["id"])

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        while len(acked) < 200 and not errors:
            time.sleep(0.01)
        with lock:
            before = list(acked)        # acknowledged before the backup started
        backup = str(tmp_path / "backup.db")
        p = run(d, "db", "backup", backup)
        assert backup in p.stdout
        with lock:
            during = len(acked) - len(before)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert during > 0, "no write was acknowledged while the backup ran: not under load"
    assert oct(os.stat(backup).st_mode & 0o777) == "0o600"
    assert not [f for f in os.listdir(tmp_path) if ".partial" in f]
    con = sqlite3.connect(backup)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    in_backup = {row[0] for row in con.execute("SELECT id FROM servers")}
    con.close()
    missing = set(before) - in_backup
    assert not missing, f"{len(missing)} acknowledged servers missing from the backup"

    # a restore is refused while the daemon serves the database
    p = run(d, "db", "restore", backup, check=False)
    assert p.returncode == 2 and "serving this database" in p.stderr, p.stderr
    assert d.session(user, pw).get(d.url("/v2.1/servers")).status_code == 200
    total = len(acked)
    assert d.stop() == 0
    p = run(d, "db", "restore", backup)
    assert "restored from" in p.stdout
    d.start()
    try:
        s = d.session(user, pw)
        listed = set()
        url = d.url("/v2.1/servers?limit=1000")
        while url:
            body = s.get(url).json()
            listed |= {x["id"] for x in body["servers"]}
            nxt = [l["href"] for l in body.get("servers_links", []) if l["rel"] == "next"]
            url = nxt[0] if nxt else None
        assert set(before) <= listed
        assert len(listed) <= total    # the restored state, not the later one
        assert s.get(d.url("/healthcheck")).status_code == 200
    finally:
        assert d.stop() == 0


@requires_sqlite
def test_restore_refuses_what_is_not_an_attachd_database(tmp_path):
    d = Attachd(tmp_path)
    d.add_account("keep", account_id="keep")
    for name, content in (("empty.db", b""), ("text.db", b"hello" * 1000)):
        path = tmp_path / name
        path.write_bytes(content)
        p = run(d, "db", "restore", str(path), check=False)
        assert p.returncode == 2 and str(path) in p.stderr, p.stderr
    other = sqlite3.connect(str(tmp_path / "other.db"))
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    p = run(d, "db", "restore", str(tmp_path / "other.db"), check=False)
    assert p.returncode == 2 and "not an attachd database" in p.stderr, p.stderr
    # the database is untouched
    assert [a["id"] for a in as_json(d, "account", "list")] == ["keep"]


@requires_sqlite
def test_backup_of_a_restored_database_round_trips(tmp_path):
    d = Attachd(tmp_path)
    d.add_account("one", account_id="one")
    first = str(tmp_path / "first.db")
    run(d, "db", "backup", first)
    d.add_account("two", account_id="two")
    run(d, "db", "restore", first)
    assert [a["id"] for a in as_json(d, "account", "list")] == ["one"]
    p = run(d, "db", "backup", str(tmp_path), check=False)
    assert p.returncode == 2 and "is a directory" in p.stderr, p.stderr


@pytest.mark.skipif(PG is None, reason="for a PostgreSQL database ($ATTACHD_TEST_PG)")
def test_backup_and_restore_refuse_a_postgresql_database(tmp_path):
    """`db backup` and `db restore` copy and replace an SQLite file: on
    PostgreSQL they refuse, naming the tools that do it there, and write
    nothing."""
    d = Attachd(tmp_path)
    d.add_account("keep", account_id="keep")
    dest = tmp_path / "backup.db"
    p = run(d, "db", "backup", str(dest), check=False)
    assert p.returncode != 0 and "pg_dump" in p.stderr, p.stderr
    assert not dest.exists()
    dest.write_bytes(b"")
    p = run(d, "db", "restore", str(dest), check=False)
    assert p.returncode != 0 and "pg_restore" in p.stderr, p.stderr
    assert [a["id"] for a in as_json(d, "account", "list")] == ["keep"]
