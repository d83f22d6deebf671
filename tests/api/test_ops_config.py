"""Configuration that cannot lie, and exit codes as --help says them.

Every key of a config file is checked by every command: an unknown section
or key, a key given twice, a bad value (a number out of range, a word not
among the choices in any case, a port outside 1-65535) is one line on stderr
naming the file, the line and the key, exit status 2, and nothing done.
`attachd config check` prints the effective configuration. A command other
than serve and db migrate refuses a database that does not exist and leaves
none behind."""
import os
import re
import subprocess
import tempfile

import pytest

from attachd import Attachd, binary, free_port

_SCRATCH = tempfile.mkdtemp(prefix="attachd-ops-cwd-")


def run(*args, stdin=None, cwd=None, timeout=60):
    return subprocess.run([binary(), *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or _SCRATCH)


def one_line_error(p, status=2):
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert err and "\n" not in err, p.stderr
    return err


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.fixture
def db(tmp_path):
    path = str(tmp_path / "c.db")
    assert run("db", "migrate", "--db", path).returncode == 0
    return path


# -- errors naming the file, the line and the key -----------------------------------------

@pytest.mark.parametrize("text, line, words", [
    ("[serve]\nlisten = 127.0.0.1:8774\n[srve]\nthreads = 2\n", 3, ["unknown section", "[srve]"]),
    ("[serve]\n# a comment\nthreds = 2\n", 3, ["unknown key", "threds", "[serve]"]),
    ("[db]\npath = x.db\n[serve]\nlisten = 127.0.0.1:99999\n", 4, ["listen", "65535"]),
    ("[serve]\nlisten = 127.0.0.1:0\n", 2, ["listen", "65535"]),
    ("[serve]\nlisten = localhost\n", 2, ["listen", "ADDR:PORT"]),
    ("[serve]\nthreads = 0\n", 2, ["threads", "1 to 256"]),
    ("[serve]\nthreads = many\n", 2, ["threads", "many"]),
    ("[serve]\ntimeout = -1\n", 2, ["timeout"]),
    ("[serve]\nsynchronous = fast\n", 2, ["synchronous", "full", "normal"]),
    ("[serve]\ndemo = perhaps\n", 2, ["demo", "true"]),
    ("[driver]\nkind = vmware\n", 2, ["kind", "libvirt"]),
    ("[driver]\ndetach_timeout = 0\n", 2, ["detach_timeout"]),
    ("[log]\nformat = xml\n", 2, ["format", "json"]),
    ("[serve]\npublic_url = ftp://x\n", 2, ["public_url", "http"]),
    ("[serve]\ntrusted_proxy = 10.0.0.0/33\n", 2, ["trusted_proxy"]),
    ("[metrics]\nlisten = 0.0.0.0:70000\n", 2, ["listen", "65535"]),
    ("[serve]\nthreads = 2\nthreads = 3\n", 3, ["threads", "line 2"]),
    ("[db]\npath = a.db\n[serve]\ndb = b.db\n", 4, ["path", "line 2"]),
    ("listen = 127.0.0.1:8774\n", 1, ["listen", "outside any section"]),
])
@pytest.mark.parametrize("command", [["serve"], ["account", "list"], ["config", "check"],
                                     ["db", "migrate"]])
def test_config_errors_name_file_line_and_key(tmp_path, text, line, words, command):
    conf = write(tmp_path / "bad.conf", text)
    p = run(*command, "--config", conf, "--db", str(tmp_path / "x.db"), timeout=20)
    err = one_line_error(p)
    assert f"{conf}:{line}:" in err, err
    for w in words:
        assert w in err, (w, err)
    # nothing was done: serve did not start, db migrate made nothing
    assert not os.path.exists(tmp_path / "x.db")


@pytest.mark.parametrize("args, words", [
    (["--listen", "127.0.0.1:99999"], ["--listen", "65535"]),
    (["--listen", "127.0.0.1:65536"], ["--listen"]),
    (["--synchronous", "sometimes"], ["--synchronous"]),
    (["--log-format", "yaml"], ["--log-format"]),
    (["--metrics-listen", "127.0.0.1:0"], ["--metrics-listen"]),
    (["--tls-cert", "/nonexistent/cert.pem"], ["--tls-key"]),
    (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"], ["c.pem"]),
    (["--trusted-proxy", "not-an-address"], ["--trusted-proxy"]),
])
def test_serve_refuses_bad_values_at_once(tmp_path, args, words):
    p = run("serve", "--db", str(tmp_path / "x.db"), *args, timeout=20)
    err = one_line_error(p)
    for w in words:
        assert w in err, (w, err)
    assert not os.path.exists(tmp_path / "x.db")


def test_choices_in_any_case(tmp_path):
    port = free_port()
    conf = write(tmp_path / "a.conf", f"[serve]\nsynchronous = FULL\nlisten = 127.0.0.1:{port}\n"
                 "demo = Yes\n[driver]\nkind = None\ndisk_bus = VirtIO\n[log]\nformat = JSON\n")
    p = run("config", "check", "--config", conf, "--db", str(tmp_path / "x.db"))
    assert p.returncode == 0, p.stderr
    for line in ("synchronous = full", "demo = true", "kind = none", "disk_bus = virtio",
                 "format = json"):
        assert re.search(rf"^{re.escape(line)}\s+# line \d+$", p.stdout, re.M), (line, p.stdout)
    assert run("serve", "--synchronous", "NORMAL", "--help").returncode == 0


def test_config_check_prints_the_effective_configuration(tmp_path):
    conf = write(tmp_path / "a.conf", "; a comment\n[db]\npath = /srv/attachd/a.db\n\n"
                 "[serve]\nlisten = 0.0.0.0:9000\nthreads = 3\n[tls]\n")
    p = run("config", "check", "--config", conf, "--threads", "5")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.startswith("# attachd "), out
    assert re.search(r"^path = /srv/attachd/a\.db\s+# line 3$", out, re.M), out
    assert re.search(r"^listen = 0\.0\.0\.0:9000\s+# line 6$", out, re.M), out
    assert re.search(r"^threads = 5\s+# command line$", out, re.M), out
    assert re.search(r"^timeout = 30\s+# default$", out, re.M), out
    assert re.search(r"^# cert =\s+# not set$", out, re.M), out
    # every section the reference has, in INI form
    for section in ("[db]", "[serve]", "[tls]", "[metrics]", "[log]", "[driver]", "[volumes]",
                    "[images]"):
        assert f"\n{section}\n" in "\n" + out, section
    assert "is valid" in p.stderr
    q = run("config", "check", "--config", conf, "--quiet")
    assert q.returncode == 0 and q.stdout == "" and "is valid" in q.stderr


@pytest.mark.parametrize("db,shown", [
    ("postgresql://bob:s3cret@db.example/attachd", "postgresql://bob:***@db.example/attachd"),
    ("postgres://bob@db.example/attachd?sslmode=require&password=s3cret&x=1",
     "postgres://bob@db.example/attachd?sslmode=require&password=***&x=1"),
    ("host=db.example user=bob password=s3cret dbname=attachd",
     "host=db.example user=bob password=*** dbname=attachd"),
    ("host=db.example password = 's3 cret' dbname=attachd",
     "host=db.example password = *** dbname=attachd"),
    ("postgresql://bob@db.example/attachd", "postgresql://bob@db.example/attachd"),
])
def test_config_check_hides_the_database_password(tmp_path, db, shown):
    """The effective configuration is for showing (a terminal, a ticket):
    a PostgreSQL password in [db] path is printed as ***, the rest as
    written."""
    conf = write(tmp_path / "a.conf", f"[db]\npath = {db}\n")
    p = run("config", "check", "--config", conf)
    assert p.returncode == 0, p.stderr
    assert "s3" not in p.stdout, p.stdout
    assert re.search(rf"^path = {re.escape(shown)}\s+# line 2$", p.stdout, re.M), p.stdout


def test_config_check_refuses_what_serve_would(tmp_path):
    key = tmp_path / "k.pem"
    key.write_text("not a key\n")
    conf = write(tmp_path / "a.conf", f"[tls]\ncert = {key}\nkey = {key}\n")
    err = one_line_error(run("config", "check", "--config", conf))
    assert "TLS" in err or "tls" in err, err
    conf = write(tmp_path / "b.conf", f"[tls]\ncert = {key}\n")
    err = one_line_error(run("config", "check", "--config", conf))
    assert "cert and key go together" in err, err
    conf = write(tmp_path / "c.conf", "[serve]\nlisten = no-such-host.invalid:8774\n")
    err = one_line_error(run("config", "check", "--config", conf))
    assert "no-such-host.invalid" in err, err


def test_config_file_is_used_by_serve(tmp_path):
    port = free_port()
    db = str(tmp_path / "served.db")
    conf = write(tmp_path / "a.conf", f"[db]\npath = {db}\n[serve]\nlisten = 127.0.0.1:{port}\n"
                 "[log]\nformat = json\n")
    d = Attachd(tmp_path)
    d.port, d.base, d.db = port, f"http://127.0.0.1:{port}", db
    # the harness adds --listen and --db itself; they agree with the file here
    d.start("--config", conf)
    try:
        assert d.session().get(d.url("/healthcheck")).status_code == 200
    finally:
        assert d.stop() == 0
    assert '"msg":"access"' in d.read_log()


# -- a missing database is not created -----------------------------------------------------

@pytest.mark.parametrize("args", [
    ["account", "add", "acme"], ["account", "list"], ["account", "show", "acme"],
    ["account", "del", "acme"], ["account", "quota", "acme", "--cores", "1"],
    ["user", "add", "--account", "acme", "--role", "member", "u"], ["user", "passwd", "u"],
    ["user", "del", "u"], ["user", "list"], ["user", "show", "u"],
    ["server", "add", "--account", "acme", "--name", "s"], ["server", "list"],
    ["server", "show", "s"], ["server", "del", "s"],
    ["volume", "add", "--account", "acme", "--size", "1"], ["volume", "list"],
    ["volume", "show", "v"], ["volume", "del", "v"],
    ["db", "backup", "b.db"], ["check"],
])
def test_missing_database_is_refused_not_created(tmp_path, args):
    missing = tmp_path / "typo" / "attachd.db"
    p = run(*args, "--db", str(missing), stdin="pw\n", cwd=str(tmp_path))
    err = one_line_error(p)
    assert "does not exist" in err and str(missing) in err, err
    assert not missing.exists() and not missing.parent.exists()


def test_serve_and_migrate_create_the_database(tmp_path):
    path = tmp_path / "new" / "attachd.db"
    assert run("db", "migrate", "--db", str(path)).returncode == 0
    assert path.exists()


# -- exit codes, as --help says ------------------------------------------------------------

def test_help_states_the_exit_codes():
    p = run("--help")
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert "Exit status: 0 done; 1 failed" in text, text
    assert "2 usage error" in text
    assert "3: the store or the hypervisor could not be asked" in text
    assert run().returncode == 2
    assert run("--version").stdout.startswith("attachd ")


def test_exit_codes(tmp_path, db):
    assert run("account", "add", "--id", "acme", "acme", "--db", db).returncode == 0
    assert run("user", "add", "--account", "acme", "--role", "member", "u1", "--db", db,
               stdin="pw\n").returncode == 0
    # usage errors: 2
    for args in (["nosuch"], ["account", "nosuch"], ["account", "list", "--nosuch"],
                 ["account", "add", "--id", "acme", "again", "--db", db],
                 ["account", "show", "nobody", "--db", db],
                 ["user", "show", "nobody", "--db", db],
                 ["server", "show", "nothing", "--db", db],
                 ["volume", "del", "nothing", "--db", db],
                 ["account", "del", "acme", "--db", db],            # it still has a user
                 ["account", "list", "--format", "xml", "--db", db],
                 ["db", "restore", str(tmp_path / "nonexistent.db"), "--db", db]):
        one_line_error(run(*args))
    # failures of the system: 1 (a database attachd cannot use)
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not an SQLite database" * 100)
    p = run("account", "list", "--db", str(bad))
    assert p.returncode == 1, (p.returncode, p.stderr)
    # check without a hypervisor: nothing to compare, 0
    assert run("check", "--db", db).returncode == 0


# -- the reference is the parser's table ------------------------------------------------------

def test_config_reference_lists_every_key():
    p = run("config", "reference")
    assert p.returncode == 0
    keys = re.findall(r"^\| `(\w+)` \| `--([\w-]+)` \|", p.stdout, re.M)
    names = {k for k, _ in keys}
    for k in ("path", "listen", "threads", "synchronous", "public_url", "trusted_proxy", "cert",
              "key", "format", "kind", "uri", "dir"):
        assert k in names, (k, p.stdout)
    sections = re.findall(r"^### \[(\w+)\]$", p.stdout, re.M)
    assert sections == ["db", "serve", "tls", "metrics", "log", "driver", "volumes", "images"], \
        sections
    # every key documented is one the parser takes: a file with all of them is valid
    man = run("config", "reference", "--format", "man")
    assert man.returncode == 0 and ".SS [serve]" in man.stdout


# -- flavors from the configuration --------------------------------------------------------

FLAVORS = ("[flavor gp.small]\nname = gp.small\nvcpus = 2\nram_mb = 1024\ndisk_gb = 10\n"
           "[flavor 7]\nname = big\nvcpus = 8\nram_mb = 32768\ndisk_gb = 0\n")


def test_configured_flavors_replace_the_classic_set(tmp_path):
    conf = write(tmp_path / "f.conf", FLAVORS)
    d = Attachd(tmp_path, extra_args=["--config", conf])
    account = d.add_account()
    user, password = d.add_user(account, role="admin")
    d.start()
    try:
        s = d.session(user, password, microversion="2.47")
        made = {}
        for ref, status in (("gp.small", 202), ("7", 202), ("1", 400)):
            r = s.post(d.url("/v2.1/servers"), json={"server": {
                "name": "f", "imageRef": "img", "flavorRef": ref, "networks": "none"}})
            assert r.status_code == status, (ref, r.text)
            if status == 202:
                made[ref] = r.json()["server"]["id"]
            else:
                assert r.json()["badRequest"]["message"] == "Flavor 1 could not be found."
        flavor = s.get(d.url(f"/v2.1/servers/{made['gp.small']}")).json()["server"]["flavor"]
        assert (flavor["original_name"], flavor["vcpus"], flavor["ram"], flavor["disk"]) == \
            ("gp.small", 2, 1024, 10)
        # without a flavorRef (the CLI's server add): the first flavor of the file
        sid = d.cli("server", "add", "--account", account, "--name", "c", "--config",
                    conf).stdout.strip()
        flavor = s.get(d.url(f"/v2.1/servers/{sid}")).json()["server"]["flavor"]
        assert flavor["original_name"] == "gp.small"
        # the quota counts the configured sizes
        limits = s.get(d.url("/v2.1/limits")).json()["limits"]["absolute"]
        assert (limits["totalCoresUsed"], limits["totalRAMUsed"]) == (2 + 8 + 2, 1024 + 32768 + 1024)
    finally:
        assert d.stop() == 0
    shown = run("config", "check", "--config", conf).stdout
    assert "[flavor gp.small]\nname = gp.small\nvcpus = 2\nram_mb = 1024\ndisk_gb = 10" in shown


@pytest.mark.parametrize("text, line, words", [
    ("[flavor 1]\nname = a\nvcpus = 1\nram_mb = 512\n", 1, ["[flavor 1]", "disk_gb"]),
    ("[flavor 1]\nname = a\nvcpus = 0\nram_mb = 512\ndisk_gb = 1\n", 3, ["vcpus"]),
    ("[flavor 1]\nname = a\nvcpus = 1\nram_mb = 512\ndisk_gb = 1\ncolour = red\n", 6,
     ["unknown key", "colour"]),
    ("[flavor 1]\nname = a\nname = b\nvcpus = 1\nram_mb = 512\ndisk_gb = 1\n", 3,
     ["name", "second time"]),
    ("[flavor a/b]\nname = a\nvcpus = 1\nram_mb = 512\ndisk_gb = 1\n", 1, ["[flavor a/b]"]),
    ("[flavor]\nname = a\nvcpus = 1\nram_mb = 512\ndisk_gb = 1\n", 1, ["[flavor ID]"]),
    ("[flavor 1]\nname = a\nvcpus = 1\nram_mb = 512\ndisk_gb = 1\n"
     "[flavor 2]\nname = a\nvcpus = 1\nram_mb = 512\ndisk_gb = 1\n", 6, ["\"a\"", "flavor 1"]),
])
def test_flavor_errors_name_file_line_and_key(tmp_path, text, line, words):
    conf = write(tmp_path / "bad.conf", text)
    err = one_line_error(run("config", "check", "--config", conf))
    assert f"{conf}:{line}:" in err, err
    for w in words:
        assert w in err, (w, err)


def test_config_reference_documents_flavors():
    out = run("config", "reference").stdout
    assert "### [flavor ID]" in out and "m1.tiny" in out
    for key in ("name", "vcpus", "ram_mb", "disk_gb"):
        assert f"| `{key}` |" in out
