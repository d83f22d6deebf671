"""HTTPS: --tls-cert and --tls-key (TLS 1.2 and 1.3 only, read again on
SIGHUP), exercised with curl, openssl s_client and openstacksdk verifying
against a test CA; links in answers use the scheme and host the client used,
--public-url, or a trusted proxy's X-Forwarded-Proto/-Host."""
import os
import signal
import subprocess
import time

import pytest
import requests

from attachd import Attachd, basic


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and two server certificates for localhost/127.0.0.1 it signed."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=attachd test CA", cwd=d)
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("one", "two"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN=localhost/O={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", "-extfile", "ext",
                cwd=d)
    return d


def tls_daemon(tmp_path, pki, *extra):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes((pki / "one.pem").read_bytes())
    key.write_bytes((pki / "one.key").read_bytes())
    d = Attachd(tmp_path, extra_args=["--tls-cert", str(cert), "--tls-key", str(key), *extra])
    d.base = f"https://localhost:{d.port}"
    d.cert, d.key = cert, key
    return d.start()


def curl(*args):
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=30)


def served_org(port, pki):
    """The O= of the certificate the server presents now."""
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile",
                        str(pki / "ca.pem"), "-servername", "localhost"], input="",
                       capture_output=True, text=True, timeout=30)
    for line in p.stdout.splitlines():
        if line.startswith("subject="):
            return line.split("O = ")[-1].strip()
    return None


def handshake(port, *args):
    p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       input="", capture_output=True, text=True, timeout=30)
    return p.returncode == 0 and "Cipher is (NONE)" not in p.stdout, p.stdout + p.stderr


def test_https_with_curl(tmp_path, pki):
    d = tls_daemon(tmp_path, pki)
    try:
        acct = d.add_account("tls")
        user, pw = d.add_user(acct)
        p = curl("--cacert", str(pki / "ca.pem"), "-u", f"{user}:{pw}",
                 f"https://localhost:{d.port}/v2.1/servers", "-w", "\n%{http_code}")
        assert p.returncode == 0 and p.stdout.endswith("\n200"), p.stderr
        # links use the scheme and host the client used
        p = curl("--cacert", str(pki / "ca.pem"), f"https://localhost:{d.port}/v2.1")
        assert f'"href":"https://localhost:{d.port}/v2.1/"' in p.stdout, p.stdout
        # plain HTTP on the HTTPS port gets nowhere
        assert curl(f"http://127.0.0.1:{d.port}/v2.1", "-m", "5").returncode != 0
        # the health check, on HTTPS too
        p = curl("--cacert", str(pki / "ca.pem"), f"https://localhost:{d.port}/healthcheck")
        assert p.stdout == '{"status":"ok"}'
    finally:
        assert d.stop() == 0


def test_tls_versions(tmp_path, pki):
    d = tls_daemon(tmp_path, pki)
    try:
        ok, out = handshake(d.port, "-tls1_3")
        assert ok, out
        ok, out = handshake(d.port, "-tls1_2")
        assert ok, out
        # SECLEVEL=0: the client would speak TLS 1.1; the server must not
        for flag in ("-tls1_1", "-tls1"):
            ok, out = handshake(d.port, flag, "-cipher", "DEFAULT:@SECLEVEL=0")
            assert not ok, out
        assert curl("--cacert", str(pki / "ca.pem"), "--tls-max", "1.1",
                    f"https://localhost:{d.port}/").returncode != 0
    finally:
        assert d.stop() == 0


def test_sighup_reloads_the_certificate(tmp_path, pki):
    d = tls_daemon(tmp_path, pki)
    try:
        assert served_org(d.port, pki) == "one"
        # a bad pair keeps the old one serving
        d.key.write_bytes((pki / "two.key").read_bytes())
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "still serving with the previous certificate" not in d.read_log():
            assert time.monotonic() < deadline, d.read_log()
            time.sleep(0.05)
        assert served_org(d.port, pki) == "one"
        d.cert.write_bytes((pki / "two.pem").read_bytes())
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        # the line is written once the new pair is in use and counted
        while "TLS certificate and key read again" not in d.read_log():
            assert time.monotonic() < deadline, d.read_log()
            time.sleep(0.05)
        assert served_org(d.port, pki) == "two"
        acct = d.add_account("after")
        user, pw = d.add_user(acct, role="admin")
        r = requests.get(f"https://localhost:{d.port}/metrics", verify=str(pki / "ca.pem"),
                         headers={"Authorization": basic(user, pw)})
        assert 'attachd_tls_reloads_total{result="ok"} 1' in r.text
        assert 'attachd_tls_reloads_total{result="failed"} 1' in r.text
    finally:
        assert d.stop() == 0


def test_openstacksdk_verifies_against_the_test_ca(tmp_path, pki):
    import openstack
    d = tls_daemon(tmp_path, pki)
    try:
        acct = d.add_account("sdk")
        user, pw = d.add_user(acct)
        server = d.add_server(acct, name="sdk-srv")
        volume = d.add_volume(acct, size=1)
        conn = openstack.connect(auth_type="http_basic",
                                 auth={"username": user, "password": pw,
                                       "endpoint": f"https://localhost:{d.port}/v2.1"},
                                 block_storage_endpoint_override=f"https://localhost:{d.port}"
                                                                 f"/v3/{acct}",
                                 cacert=str(pki / "ca.pem"), load_yaml_config=False,
                                 load_envvars=False)
        assert [s.id for s in conn.compute.servers()] == [server]
        att = conn.compute.create_volume_attachment(server, volume_id=volume)
        assert att.volume_id == volume
        conn.compute.delete_volume_attachment(server, volume)
        # without the CA the client refuses the server
        bad = openstack.connect(auth_type="http_basic",
                                auth={"username": user, "password": pw,
                                      "endpoint": f"https://localhost:{d.port}/v2.1"},
                                load_yaml_config=False, load_envvars=False)
        with pytest.raises(Exception) as e:
            list(bad.compute.servers())
        assert "certificate" in str(e.value).lower() or "ssl" in str(e.value).lower()
    finally:
        assert d.stop() == 0


# -- links behind a proxy ----------------------------------------------------------------------

def self_link(d, session, headers=None):
    r = session.get(d.url("/v2.1"), headers=headers or {})
    return next(l["href"] for l in r.json()["version"]["links"] if l["rel"] == "self")


def test_public_url_sets_every_link(tmp_path):
    d = Attachd(tmp_path, extra_args=["--public-url", "https://cloud.example.com/attachd/"])
    d.start()
    try:
        s = requests.Session()
        assert self_link(d, s) == "https://cloud.example.com/attachd/v2.1/"
        acct = d.add_account("pub")
        user, pw = d.add_user(acct)
        sid = d.add_server(acct, name="p")
        r = d.session(user, pw).get(d.url(f"/v2.1/servers/{sid}"))
        hrefs = [l["href"] for l in r.json()["server"]["links"]]
        assert hrefs and all(h.startswith("https://cloud.example.com/attachd/") for h in hrefs)
    finally:
        assert d.stop() == 0


def test_forwarded_headers_count_only_from_trusted_proxies(tmp_path):
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com",
           "X-Forwarded-For": "203.0.113.7"}
    d = Attachd(tmp_path, extra_args=["--trusted-proxy", "127.0.0.2,10.0.0.0/8"])
    d.start()
    try:
        s = requests.Session()
        # 127.0.0.1 is not a trusted proxy: its X-Forwarded-* are the client's words
        assert self_link(d, s, fwd) == f"http://127.0.0.1:{d.port}/v2.1/"
    finally:
        assert d.stop() == 0
    d = Attachd(tmp_path / "trusted", extra_args=["--trusted-proxy", "127.0.0.0/8"])
    os.makedirs(d.dir, exist_ok=True)
    d.start()
    try:
        s = requests.Session()
        r = s.get(d.url("/v2.1"), headers=fwd)
        assert self_link(d, s, fwd) == "https://api.example.com/v2.1/"
        # the first of a list is what the client used
        assert self_link(d, s, {"X-Forwarded-Proto": "https, http",
                                "X-Forwarded-Host": "a.example, b.example"}) == \
            "https://a.example/v2.1/"
        # a forwarded host that could break a link is not used
        assert self_link(d, s, {"X-Forwarded-Host": 'evil"/x'}) == "http://localhost/v2.1/"
        rid = r.headers["x-openstack-request-id"]
        deadline = time.monotonic() + 5
        while rid not in d.read_log() and time.monotonic() < deadline:
            time.sleep(0.05)
        line = next(l for l in d.read_log().splitlines() if rid in l)
        assert 'forwarded_for="203.0.113.7"' in line and "client=127.0.0.1" in line
    finally:
        assert d.stop() == 0
