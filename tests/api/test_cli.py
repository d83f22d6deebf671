"""Command line and config file (issue 2 item 3): subcommands, their output,
errors (one line on stderr, exit 2, nothing written), `--db`/`--config`
before or after the subcommand's arguments, and the INI config for serve."""
import os
import re
import socket
import subprocess
import tempfile
import time

import pytest

from apiutil import assert_unauthorized, basic, unique
from attachd import Attachd, binary, free_port

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


_SCRATCH = tempfile.mkdtemp(prefix="attachd-cli-cwd-")


def run(*args, stdin=None, timeout=60, cwd=None):
    """Run the binary in a scratch directory, so that a default ./data/attachd.db
    never lands in the source tree."""
    return subprocess.run([binary(), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or _SCRATCH)


def assert_cli_error(p):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err, "no message on stderr"
    assert "\n" not in err, f"error is not one line: {p.stderr!r}"
    assert p.stdout.strip() == "", p.stdout


def cli_db_first(d, *args, stdin=None):
    """Run ARGS with `--db DB` right after the command words, so that a
    trailing option really lacks its value."""
    args = list(args)
    n = 2 if args and args[0] in ("account", "user", "server", "db") and len(args) > 1 else 1
    return run(*args[:n], "--db", d.db, *args[n:], stdin=stdin)


@pytest.fixture
def cli(tmp_path):
    """An Attachd whose daemon is not started: CLI only."""
    return Attachd(tmp_path)


# -- accounts ------------------------------------------------------------------

def test_account_add_generates_32_hex_id(cli):
    p = cli.cli("account", "add", "alpha")
    out = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", out), p.stdout
    assert p.stdout.endswith("\n") and p.stdout.count("\n") == 1
    assert cli.add_account("beta") != out


def test_account_add_with_given_id(cli):
    assert cli.add_account("gamma", account_id="my-project-01") == "my-project-01"


def test_account_add_duplicate_id_fails(cli):
    cli.add_account("one", account_id="dup-id")
    assert_cli_error(cli.cli("account", "add", "--id", "dup-id", "two", check=False))


@pytest.mark.parametrize("args", [
    ["account", "add"],                       # missing NAME
    ["account", "add", "--id"],               # missing value
    ["account", "add", "--bogus", "x", "n"],  # unknown option
    ["account", "frobnicate", "n"],           # unknown sub-subcommand
    ["nosuchcommand"],
])
def test_account_usage_errors(cli, args):
    cli.add_account("exists")
    assert_cli_error(cli_db_first(cli, *args))


# -- users ---------------------------------------------------------------------

def test_user_add_by_account_id_and_name_and_login(tmp_path):
    d = Attachd(tmp_path)
    acct = d.add_account("named-acct")
    u1, p1 = d.add_user(acct)
    u2, p2 = d.add_user("named-acct")           # ACCOUNT by name
    sid = d.add_server("named-acct", name="by-name")
    d.start()
    try:
        for u, p in ((u1, p1), (u2, p2)):
            r = d.session(u, p).get(d.url(f"/v2.1/servers/{sid}"))
            assert r.status_code == 200, r.text
            assert r.json()["server"]["tenant_id"] == acct
    finally:
        assert d.stop() == 0


def test_user_add_unknown_account_writes_nothing(cli):
    p = cli.cli("user", "add", "--account", "no-such-account", "--role", "member", "ghost",
                stdin="pw\n", check=False)
    assert_cli_error(p)
    acct = cli.add_account()
    # the name is still free, so nothing was half-written
    cli.add_user(acct, username="ghost")


@pytest.mark.parametrize("args", [
    ["user", "add", "--account", "{acct}", "--role", "superuser", "u-badrole"],
    ["user", "add", "--account", "{acct}", "u-norole"],
    ["user", "add", "--role", "member", "u-noacct"],
    ["user", "add", "--account", "{acct}", "--role", "member"],          # no USERNAME
    ["user", "add", "--account", "{acct}", "--role"],                    # missing value
    ["user", "add", "--account", "{acct}", "--role", "member", "--x", "u"],
    ["user", "passwd", "no-such-user"],
    ["user", "del", "no-such-user"],
    ["user", "passwd"],
    ["user", "del"],
])
def test_user_errors(cli, args):
    acct = cli.add_account()
    p = cli_db_first(cli, *[a.format(acct=acct) for a in args], stdin="pw\n")
    assert_cli_error(p)


def test_user_add_duplicate_username_fails_and_keeps_first(tmp_path):
    d = Attachd(tmp_path)
    acct = d.add_account()
    user, pw = d.add_user(acct)
    p = d.cli("user", "add", "--account", acct, "--role", "member", user, stdin="other\n",
              check=False)
    assert_cli_error(p)
    d.start()
    try:
        assert d.session(user, pw).get(d.url("/servers")).status_code == 200
        assert_unauthorized(d.session(user, "other").get(d.url("/servers")))
    finally:
        assert d.stop() == 0


def test_user_passwd_and_del_offline(tmp_path):
    d = Attachd(tmp_path)
    acct = d.add_account()
    user, pw = d.add_user(acct)
    gone, gone_pw = d.add_user(acct)
    d.cli("user", "passwd", user, stdin="brand-new\n")
    d.cli("user", "del", gone)
    d.start()
    try:
        assert_unauthorized(d.session(user, pw).get(d.url("/servers")))
        assert d.session(user, "brand-new").get(d.url("/servers")).status_code == 200
        assert_unauthorized(d.session(gone, gone_pw).get(d.url("/servers")))
    finally:
        assert d.stop() == 0


def test_admin_role_from_cli(tmp_path):
    d = Attachd(tmp_path)
    a, b = d.add_account(), d.add_account()
    admin, apw = d.add_user(a, role="admin")
    sid = d.add_server(b, name="b-srv")
    d.start()
    try:
        r = d.session(admin, apw).get(d.url(f"/v2.1/servers/{sid}"))
        assert r.status_code == 200, r.text
    finally:
        assert d.stop() == 0


# -- servers -------------------------------------------------------------------

def test_server_add_generates_uuid4(cli):
    acct = cli.add_account()
    sid = cli.add_server(acct, name="gen")
    assert UUID4.match(sid), sid


def test_server_add_with_id(cli):
    acct = cli.add_account()
    assert cli.add_server(acct, name="given", server_id="test-server-0013") == "test-server-0013"


@pytest.mark.parametrize("args", [
    ["server", "add", "--account", "no-such-account", "--name", "x"],
    ["server", "add", "--account", "{acct}"],                       # no --name
    ["server", "add", "--name", "x"],                               # no --account
    ["server", "add", "--account", "{acct}", "--name"],             # missing value
    ["server", "add", "--account", "{acct}", "--name", "x", "--wat"],
    ["server", "add", "--account", "{acct}", "--name", "x", "--id", "dup-server"],
])
def test_server_add_errors(cli, args):
    acct = cli.add_account()
    if "dup-server" in args:
        cli.add_server(acct, name="first", server_id="dup-server")
    assert_cli_error(cli_db_first(cli, *[a.format(acct=acct) for a in args]))


def test_failed_server_add_writes_nothing(tmp_path):
    d = Attachd(tmp_path)
    acct = d.add_account()
    user, pw = d.add_user(acct)
    assert_cli_error(d.cli("server", "add", "--account", "nope", "--name", "x",
                           "--id", "half-written", check=False))
    d.start()
    try:
        r = d.session(user, pw).get(d.url("/v2.1/servers"))
        assert r.json()["servers"] == []
    finally:
        assert d.stop() == 0
    # the id is still free
    assert d.add_server(acct, name="x", server_id="half-written") == "half-written"


# -- --db / --config placement -------------------------------------------------------

def test_db_option_before_and_after_arguments(tmp_path):
    db = str(tmp_path / "x.db")
    assert run("db", "migrate", "--db", db).returncode == 0
    p = run("account", "add", "--db", db, "--id", "acct-before", "before")
    assert p.returncode == 0 and p.stdout.strip() == "acct-before", p.stderr
    p = run("account", "add", "--id", "acct-after", "after", "--db", db)
    assert p.returncode == 0 and p.stdout.strip() == "acct-after", p.stderr
    p = run("user", "add", "--db", db, "--account", "acct-before", "--role", "member", "u1",
            stdin="pw1\n")
    assert p.returncode == 0, p.stderr
    p = run("server", "add", "--account", "acct-after", "--name", "s", "--db", db)
    assert p.returncode == 0, p.stderr
    # both went to the same database: duplicate ids are refused there
    assert_cli_error(run("account", "add", "--id", "acct-before", "again", "--db", db))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


@pytest.mark.parametrize("section", ["[serve]\ndb = {db}\n", "[db]\npath = {db}\n", "path = {db}\n"])
def test_config_file_names_the_database_for_cli(tmp_path, section):
    db = str(tmp_path / "conf.db")
    conf = _write(tmp_path / "attachd.ini", "; comment\n# comment\n" + section.format(db=db))
    assert run("db", "migrate", "--config", conf).returncode == 0
    p = run("account", "add", "--config", conf, "--id", "c-acct", "c")
    assert p.returncode == 0, p.stderr
    assert os.path.exists(db)
    p = run("server", "add", "--account", "c-acct", "--name", "s", "--config", conf)
    assert p.returncode == 0, p.stderr
    # the same database through --db
    assert_cli_error(run("account", "add", "--db", db, "--id", "c-acct", "again"))


def _wait_listening(port, proc, secs=15):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _serve(args, tmp_path):
    log = open(tmp_path / "serve.log", "ab")
    return subprocess.Popen([binary(), "serve", *args], stdout=log, stderr=subprocess.STDOUT,
                            cwd=str(tmp_path)), log


def _stop(proc, log):
    proc.terminate()
    try:
        rc = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return rc


def test_serve_from_config_file(tmp_path):
    db = str(tmp_path / "served.db")
    port = free_port()
    conf = _write(tmp_path / "a.ini",
                  f"[serve]\nlisten = 127.0.0.1:{port}\ndb = {db}\nthreads = 2\ntimeout = 2\n"
                  "max_connections = 20\nmax_per_ip = 3\n")
    run("db", "migrate", "--db", db)
    run("account", "add", "--db", db, "--id", "cfg", "cfg")
    run("user", "add", "--db", db, "--account", "cfg", "--role", "member", "cfguser",
        stdin="cfgpw\n")
    proc, log = _serve(["--config", conf], tmp_path)
    try:
        assert _wait_listening(port, proc), (tmp_path / "serve.log").read_text()
        import requests
        r = requests.get(f"http://127.0.0.1:{port}/v2.1/servers",
                         headers={"Authorization": basic("cfguser", "cfgpw")})
        assert r.status_code == 200, r.text
        # timeout = 2 from the file applies
        from apiutil import Conn, try_request
        with Conn(port, timeout=10) as c:
            assert c.closed_within(6), "idle connection not closed: config timeout ignored"
        # max_per_ip = 3 from the file applies
        # from an address of its own, so earlier connections do not count
        conns = [Conn(port, source="127.0.0.3", timeout=3) for _ in range(3)]
        try:
            for c in conns:
                assert c.request("GET", "/v2.1/").status == 200
            state, _ = try_request(port, source="127.0.0.3", timeout=2.0)
            assert state in ("refused", "closed"), f"4th connection {state}: max_per_ip ignored"
        finally:
            for c in conns:
                c.close()
    finally:
        assert _stop(proc, log) == 0


def test_command_line_wins_over_config_file(tmp_path):
    db = str(tmp_path / "cli.db")
    other_db = str(tmp_path / "other.db")
    file_port, cli_port = free_port(), free_port()
    conf = _write(tmp_path / "b.ini", f"[serve]\nlisten = 127.0.0.1:{file_port}\ndb = {other_db}\n")
    run("db", "migrate", "--db", db)
    run("account", "add", "--db", db, "--id", "wins", "wins")
    run("user", "add", "--db", db, "--account", "wins", "--role", "member", "winner",
        stdin="pw\n")
    proc, log = _serve(["--config", conf, "--listen", f"127.0.0.1:{cli_port}", "--db", db],
                       tmp_path)
    try:
        assert _wait_listening(cli_port, proc), (tmp_path / "serve.log").read_text()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", file_port), timeout=0.5).close()
        import requests
        r = requests.get(f"http://127.0.0.1:{cli_port}/v2.1/servers",
                         headers={"Authorization": basic("winner", "pw")})
        assert r.status_code == 200, r.text     # the user lives in --db, not the file's db
    finally:
        assert _stop(proc, log) == 0


@pytest.mark.parametrize("args", [
    ["--bogus"],
    ["--listen"],
    ["--threads", "many"],
    ["--timeout", "-1"],
    ["--listen", "not-an-address"],
    ["--config", "/nonexistent/attachd.ini"],
])
def test_serve_bad_options_exit_2(tmp_path, args):
    p = run("serve", "--db", str(tmp_path / "x.db"), *args, timeout=20)
    assert_cli_error(p)


def test_help_lists_commands_and_options():
    p = run("--help")
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    for word in ("serve", "db", "account", "user", "server"):
        assert word in text, text
    p = run("serve", "--help")
    assert p.returncode == 0, p.stderr
    text = p.stdout + p.stderr
    for opt in ("--listen", "--db", "--threads", "--timeout", "--max-connections",
                "--max-per-ip", "--config"):
        assert opt in text, (opt, text)


def test_db_migrate_fresh_and_idempotent(tmp_path):
    db = str(tmp_path / "m.db")
    p = run("db", "migrate", "--db", db)
    assert p.returncode == 0, p.stderr
    assert os.path.exists(db)
    p = run("db", "migrate", "--db", db)
    assert p.returncode == 0, p.stderr
    # and a migrated database serves
    d = Attachd(tmp_path)
    d.db = db
    d.add_account("after-migrate")
    d.start()
    try:
        assert d.session().get(d.url("/v2.1/")).status_code == 200
    finally:
        assert d.stop() == 0


def test_password_read_from_stdin_single_line(tmp_path):
    d = Attachd(tmp_path)
    acct = d.add_account()
    user = unique("stdin")
    d.cli("user", "add", "--account", acct, "--role", "member", user, stdin="line-one\nline-two\n")
    d.start()
    try:
        assert d.session(user, "line-one").get(d.url("/servers")).status_code == 200
        assert_unauthorized(d.session(user, "line-one\nline-two").get(d.url("/servers")))
    finally:
        assert d.stop() == 0


def test_database_from_newer_schema_is_refused(tmp_path):
    """The schema version is SQLite's user_version; a newer one must be refused,
    by `db migrate` and by `serve`, and the file left alone."""
    import sqlite3
    db = str(tmp_path / "new.db")
    assert run("db", "migrate", "--db", db).returncode == 0
    con = sqlite3.connect(db)
    current = con.execute("PRAGMA user_version").fetchone()[0]
    if current < 1:
        pytest.skip("schema version is not kept in user_version")
    con.execute(f"PRAGMA user_version = {current + 100}")
    con.commit()
    con.close()
    for args in (["db", "migrate", "--db", db], ["account", "add", "--db", db, "n"]):
        p = run(*args)
        assert p.returncode != 0, (args, p.stdout, p.stderr)
        assert re.search(r"newer|version", p.stderr, re.I), p.stderr
    proc, log = _serve(["--db", db, "--listen", f"127.0.0.1:{free_port()}"], tmp_path)
    try:
        rc = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert rc != 0
    assert re.search(r"newer|version", (tmp_path / "serve.log").read_text(), re.I)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA user_version").fetchone()[0] == current + 100
    con.close()


def test_demo_on_first_start_only(tmp_path):
    """`serve --demo` (what `make run` starts): on the first start a demo
    account, a user `demo` with a random password, and the server
    and volume of Hostway's DetachVolumeFromServer page (docs/api.md),
    attached, so that the page's DELETE answers 204 as written; on
    the next start nothing new is made and no password is printed."""
    db = str(tmp_path / "demo.db")
    passwords = []
    for start in range(2):
        port = free_port()
        proc, log = _serve(["--listen", f"127.0.0.1:{port}", "--db", db, "--demo"], tmp_path)
        try:
            assert _wait_listening(port, proc), (tmp_path / "serve.log").read_text()
            out = (tmp_path / "serve.log").read_text()
            found = re.findall(r'user "demo", password "([^"]+)"', out)
            if start == 1:
                assert found == passwords, out      # only the first start's line
                break
            assert len(found) == 1, out
            passwords = found
            import requests
            url = (f"http://127.0.0.1:{port}/servers/test-server-0013/"
                   "os-volume_attachments/hbs2012May03_0OxRg0Jz7")
            auth = {"Authorization": basic("demo", found[0])}
            assert requests.delete(url, headers=auth).status_code == 204
            assert requests.delete(url, headers=auth).status_code == 404
        finally:
            assert _stop(proc, log) == 0
    # two starts made one password, not a fixed one
    assert len(passwords[0]) >= 12 and passwords[0] != "demo"
