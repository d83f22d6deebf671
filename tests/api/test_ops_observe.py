"""Observing attachd: GET /healthcheck, GET /metrics (read by Debian's
python3-prometheus-client parser), the access log's fields, --log-format
json, the request id on an error line, and systemd's notify protocol."""
import json
import os
import re
import socket
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from apiutil import Conn, basic, server_body, unique
from attachd import PG, Attachd, free_port, psql, requires_sqlite


def wait_for(pred, secs=10.0, step=0.02):
    """Poll until pred() is true (no timing is asserted: this only bounds a wait)."""
    deadline = time.monotonic() + secs
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams, name):
    """[(labels, value)] of a sample name (which may be a family's _bucket etc.)."""
    out = []
    for f in fams.values():
        for s in f.samples:
            if s.name == name:
                out.append((s.labels, s.value))
    return out


def value(fams, name, **labels):
    found = [v for l, v in samples(fams, name) if all(l.get(k) == w for k, w in labels.items())]
    assert found, (name, labels, samples(fams, name)[:5])
    return sum(found)


@pytest.fixture
def ops(tmp_path):
    """A daemon with a member, an admin, and a metrics listener."""
    mport = free_port()
    d = Attachd(tmp_path, extra_args=["--metrics-listen", f"127.0.0.1:{mport}"])
    d.metrics_url = f"http://127.0.0.1:{mport}/metrics"
    d.start()
    d.acct = d.add_account("obs")
    d.member = d.session(*d.add_user(d.acct))
    d.admin = d.session(*d.add_user(d.acct, role="admin"))
    yield d
    if d.proc is not None:
        assert d.stop() == 0, d.read_log()


# -- /healthcheck ----------------------------------------------------------------------------

def test_healthcheck_needs_no_credentials(ops):
    r = requests.get(ops.url("/healthcheck"))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}
    assert r.headers["Cache-Control"] == "no-store"
    assert requests.head(ops.url("/healthcheck")).status_code == 200
    r = requests.post(ops.url("/healthcheck"))
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"


def test_healthcheck_writes_to_the_store(ops):
    before = value(families(requests.get(ops.metrics_url).text),
                   "attachd_store_commit_batch_size_count")
    # many at once share commits, and each is answered by a write begun after it
    with_threads = [threading.Thread(target=lambda: requests.get(ops.url("/healthcheck")))
                    for _ in range(20)]
    for t in with_threads:
        t.start()
    for t in with_threads:
        t.join()
    assert requests.get(ops.url("/healthcheck")).status_code == 200
    after = value(families(requests.get(ops.metrics_url).text),
                  "attachd_store_commit_batch_size_count")
    assert 1 <= after - before <= 21


@requires_sqlite
@pytest.mark.parametrize("how", ["deleted", "read-only"])
def test_healthcheck_503_when_the_store_refuses_writes(tmp_path, how):
    d = Attachd(tmp_path).start()
    try:
        assert requests.get(d.url("/healthcheck")).status_code == 200
        if how == "deleted":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(d.db + suffix):
                    os.unlink(d.db + suffix)
        else:
            os.chmod(d.db, 0o444)
            if os.geteuid() == 0:       # root writes anyway: make it unreadable to stat
                os.rename(d.db, d.db + ".gone")
        r = requests.get(d.url("/healthcheck"))
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable" and "store" in body["reason"], body
        assert r.headers.get("Retry-After")
    finally:
        assert d.stop() == 0


def test_healthcheck_503_while_draining(ops):
    """SIGTERM with a request in flight: the daemon drains, and a health check
    on a kept-alive connection answers 503 with the reason."""
    user, pw = ops.add_user(ops.acct)
    with Conn(ops.port, timeout=10) as slow, Conn(ops.port, timeout=10) as probe:
        assert probe.request("GET", "/healthcheck").status == 200
        body = json.dumps(server_body("slow")).encode()
        slow.send(b"POST /v2.1/servers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: " + basic(user, pw).encode() + b"\r\n" +
                  f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        time.sleep(0.2)                 # the head is in: the request is in flight
        ops.proc.send_signal(15)
        r = wait_for(lambda: (lambda x: x if x.status == 503 else None)(
            probe.request("GET", "/healthcheck")), secs=10)
        assert r and r.status == 503
        assert json.loads(r.body) == {"status": "unavailable", "reason": "attachd is stopping"}
        slow.send(body[5:])
        assert slow.read_response("POST").status in (202, 503)
    assert ops.proc.wait(timeout=30) == 0
    ops.proc = None
    ops.log.close()


# -- /metrics --------------------------------------------------------------------------------

def test_metrics_on_the_api_listener_are_for_admins(ops):
    assert requests.get(ops.url("/metrics")).status_code == 401
    r = ops.member.get(ops.url("/metrics"))
    assert r.status_code == 403, r.text
    r = ops.admin.get(ops.url("/metrics"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families(r.text)        # parses
    # the metrics listener answers anyone, /metrics only
    r = requests.get(ops.metrics_url)
    assert r.status_code == 200 and "attachd_http_requests_total" in r.text
    assert requests.get(ops.metrics_url.replace("/metrics", "/")).status_code == 404
    assert requests.post(ops.metrics_url).status_code == 405
    # a query is ignored there, however many arguments it has (src/http/exporter.c)
    r = requests.get(ops.metrics_url + "?" + "&".join(["a=1"] * 800), timeout=5)
    assert r.status_code == 200 and "attachd_http_requests_total" in r.text


def test_metrics_count_what_happens(ops):
    s = ops.member
    sid = s.post(ops.url("/v2.1/servers"), json=server_body(unique("m"))).json()["server"]["id"]
    for _ in range(3):
        assert s.get(ops.url(f"/v2.1/servers/{sid}")).status_code == 200
    assert s.get(ops.url("/servers/nope")).status_code == 404
    assert requests.get(ops.url("/servers"), headers={"Authorization": basic("x", "y")}
                        ).status_code == 401
    assert requests.get(ops.url("/")).status_code == 200
    req = "attachd_http_requests_total"

    def counted():
        """The scrape once every request above is counted: a request is
        counted when libmicrohttpd reports it complete, a moment after its
        client has the answer."""
        f = families(requests.get(ops.metrics_url).text)
        got = {(l.get("route"), l.get("status")) for l, v in samples(f, req)}
        return f if {("servers/*", "200"), ("servers", "202"), ("servers/*", "404"),
                     ("none", "401"), ("/", "200")} <= got and \
            value(f, req, route="servers/*", status="200") == 3 else None

    fams = wait_for(counted)
    assert fams, requests.get(ops.metrics_url).text
    assert fams["attachd_http_requests"].type == "counter"
    assert value(fams, req, route="servers/*", method="GET", status="200", dialect="nova") == 3
    assert value(fams, req, route="servers", method="POST", status="202", dialect="nova") == 1
    assert value(fams, req, route="servers/*", method="GET", status="404",
                 dialect="hostway") == 1
    assert value(fams, req, route="none", status="401") >= 1
    assert value(fams, req, route="/", status="200", dialect="hostway") == 1
    # latency histograms: cumulative buckets, ending in +Inf == count
    hist = fams["attachd_http_request_duration_seconds"]
    assert hist.type == "histogram"
    buckets = [(float(l["le"]), v) for l, v in samples(fams, "attachd_http_request_duration_seconds_bucket")
               if l["route"] == "servers/*" and l["method"] == "GET"]
    assert buckets == sorted(buckets) and [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1] == (float("inf"), 4.0)
    assert value(fams, "attachd_http_request_duration_seconds_count", route="servers/*",
                 method="GET") == 4
    # the store's group commits, the password checks, the connections
    assert value(fams, "attachd_store_commit_batch_size_count") >= 1
    assert value(fams, "attachd_store_commit_duration_seconds_count") >= 1
    assert value(fams, "attachd_auth_password_checks_total", result="ok") >= 1
    assert value(fams, "attachd_auth_password_checks_total", result="denied") >= 1
    assert value(fams, "attachd_auth_cache_hits_total") >= 3
    assert value(fams, "attachd_http_connections_total") >= 1
    for gauge in ("attachd_http_requests_in_flight", "attachd_http_requests_suspended",
                  "attachd_http_connections_open", "attachd_http_connections_max",
                  "attachd_build_info", "process_start_time_seconds"):
        assert fams[gauge].type == "gauge", gauge
    assert value(fams, "attachd_store_errors_total", kind="statement") == 0


def test_metrics_count_throttles(ops):
    for _ in range(12):
        requests.get(ops.url("/servers"), headers={"Authorization": basic("victim", "wrong")})
    fams = families(requests.get(ops.metrics_url).text)
    assert value(fams, "attachd_auth_throttled_total", reason="user") >= 1


def test_metrics_count_refused_connections(tmp_path):
    mport = free_port()
    d = Attachd(tmp_path, extra_args=["--max-per-ip", "2", "--metrics-listen",
                                      f"127.0.0.1:{mport}"]).start()
    try:
        held = [Conn(d.port, source="127.0.0.7", timeout=5) for _ in range(2)]
        try:
            for c in held:
                assert c.request("GET", "/v2.1/").status == 200
            extra = Conn(d.port, source="127.0.0.7", timeout=5)
            extra.closed_within(5)
            extra.close()
        finally:
            for c in held:
                c.close()
        fams = families(requests.get(f"http://127.0.0.1:{mport}/metrics").text)
        assert value(fams, "attachd_http_connections_refused_total", reason="per_ip") >= 1
        assert value(fams, "attachd_http_connections_refused_total", reason="cap") == 0
        # counted, not logged once per connection
        assert d.read_log().count("reached connection limit") <= 1
    finally:
        assert d.stop() == 0


def test_metrics_are_documented_and_documented_metrics_exist(ops):
    """Every family /metrics shows is explained in docs/operations.md, and
    every one the document explains is one attachd has (the hypervisor's
    only with the libvirt driver)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    doc = open(os.path.join(root, "docs", "operations.md")).read()
    assert ops.member.get(ops.url("/servers")).status_code == 200

    def exposed_now():
        names = set()
        for f in families(requests.get(ops.metrics_url).text).values():
            for s in f.samples:
                names.add(re.sub(r"_(bucket|sum|count|total)$", "", s.name))
        return names
    # a request is counted once it has ended, which may be a moment after
    # its client read the answer
    deadline = time.monotonic() + 10
    while "attachd_http_requests" not in (exposed := exposed_now()) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    documented = set(re.findall(r"^\| `((?:attachd|process)_\w+)`", doc, re.M))
    documented_base = {re.sub(r"_total$", "", n) for n in documented}
    assert exposed - documented_base == set(), "undocumented metrics"
    hypervisor = {n for n in documented_base if n.startswith("attachd_hypervisor_")}
    assert hypervisor, "the hypervisor's metrics are not documented"
    assert documented_base - hypervisor - exposed == set(), "documented but not exposed"


# -- the access log --------------------------------------------------------------------------

def access_line(d, rid):
    return wait_for(lambda: next((l for l in d.read_log().splitlines() if rid in l and
                                  " access " in l or (rid in l and '"access"' in l)), None))


def test_access_log_fields(ops):
    r = ops.member.get(ops.url("/v2.1/servers?limit=5&name=a%20b"),
                       headers={"User-Agent": 'probe/1.0 "quoted"'})
    assert r.status_code == 200
    line = access_line(ops, r.headers["x-openstack-request-id"])
    assert line, ops.read_log()[-2000:]
    assert 'method=GET path="/v2.1/servers" query="limit=5&name=a%20b" status=200' in line
    assert f"bytes={len(r.content)} " in line
    assert "client=127.0.0.1" in line
    assert 'ua="probe/1.0 \\x22quoted\\x22"' in line
    assert re.search(r" user=\"user-\w+\"", line), line
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info access ", line), line


def test_access_log_writes_each_client_address_exactly(ops):
    # every octet width (1, 2, 3 digits), 0 and 255: the IPv4 text is
    # written by hand (src/http/exchange.c)
    for source in ("127.255.10.9", "127.100.99.200", "127.0.80.0"):
        with Conn(ops.port, source=source) as c:
            r = c.request("GET", "/v2.1/servers")
        rid = r.header("x-openstack-request-id")
        assert r.status == 401 and rid, (r.status, r.head)
        line = access_line(ops, rid)
        assert line and f" client={source}" in line + " " and \
            f"client={source} " in line + " ", (source, line)


def test_access_log_names_the_user_of_a_failed_login(ops):
    secret = "Secret-" + unique("pw")
    r = requests.get(ops.url("/servers"), headers={"Authorization": basic("mallory", secret)})
    assert r.status_code == 401
    line = access_line(ops, r.headers["x-openstack-request-id"])
    assert 'failed_user="mallory"' in line and "user=-" in line, line
    assert secret not in ops.read_log()


def test_access_log_of_a_large_answer(ops):
    """A large answer lets its request's memory go before it is sent; its
    line still has every field."""
    s = ops.member
    for i in range(60):
        s.post(ops.url("/v2.1/servers"), json=server_body("big-" + "x" * 200 + str(i),
                                                          metadata={f"k{j}": "v" * 200
                                                                    for j in range(20)}))
    r = s.get(ops.url("/v2.1/servers/detail?limit=1000"), headers={"User-Agent": "big/1"})
    assert r.status_code == 200 and len(r.content) > 256 * 1024
    line = access_line(ops, r.headers["x-openstack-request-id"])
    assert f'bytes={len(r.content)} ' in line and 'query="limit=1000"' in line, line
    assert 'ua="big/1"' in line and 'path="/v2.1/servers/detail"' in line


def test_json_log_format(tmp_path):
    d = Attachd(tmp_path, extra_args=["--log-format", "json"]).start()
    try:
        acct = d.add_account("j")
        s = d.session(*d.add_user(acct))
        r = s.get(d.url('/v2.1/servers?x="y"'), headers={"User-Agent": "ü\x7f"})
        rid = r.headers["x-openstack-request-id"]
        assert wait_for(lambda: rid in d.read_log())
    finally:
        assert d.stop() == 0
    lines = [json.loads(l) for l in d.read_log().splitlines() if l.startswith("{")]
    assert lines and all(l["level"] in ("info", "warn", "error") and l["time"] for l in lines)
    access = [l for l in lines if l.get("request_id") == rid]
    assert len(access) == 1, access
    a = access[0]
    assert a["msg"] == "access" and a["method"] == "GET" and a["status"] == 200
    assert a["path"] == "/v2.1/servers" and a["query"] in ('x=%22y%22', 'x="y"')
    assert a["client"] == "127.0.0.1" and a["ua"] == "ü\x7f" and isinstance(a["bytes"], int)
    assert any("listening on" in l.get("msg", "") for l in lines)


@requires_sqlite
def test_an_error_line_carries_its_request_id(tmp_path):
    """The database vanishes; a thread that opens its reader now fails, and
    the error it logs names the request it was working on."""
    d = Attachd(tmp_path, extra_args=["--threads", "8"]).start()
    try:
        acct = d.add_account("e")
        user, pw = d.add_user(acct)
        for suffix in ("", "-wal", "-shm"):
            os.unlink(d.db + suffix) if os.path.exists(d.db + suffix) else None
        ids = []
        for _ in range(40):         # on fresh connections, to reach every thread
            r = requests.get(d.url("/servers"), headers={"Authorization": basic(user, pw),
                                                         "Connection": "close"})
            ids.append(r.headers.get("x-openstack-request-id"))
        found = wait_for(lambda: [l for l in d.read_log().splitlines()
                                  if " error " in l and "request_id=req-" in l])
        assert found, d.read_log()[-3000:]
        rid = re.search(r"request_id=(req-[0-9a-f-]+)", found[0]).group(1)
        assert rid in ids
    finally:
        assert d.stop() == 0


# -- systemd's notify protocol ----------------------------------------------------------------

def test_sd_notify_ready_watchdog_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    d = Attachd(tmp_path)
    d.env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    d.start()
    messages = []
    try:
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        ready = next(m for m in messages if "READY=1" in m)
        assert f"STATUS=serving on http://127.0.0.1:{d.port}" in ready
        while sum("WATCHDOG=1" in m for m in messages) < 3:
            messages.append(sock.recv(4096).decode())
    finally:
        assert d.stop() == 0
    while not any("STOPPING=1" in m for m in messages):
        messages.append(sock.recv(4096).decode())
    sock.close()


def test_sd_notify_watchdog_is_for_its_pid_only(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    d = Attachd(tmp_path)
    d.env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="200000", WATCHDOG_PID="1")
    d.start()
    try:
        assert "READY=1" in sock.recv(4096).decode()
        time.sleep(1)           # five periods: a watchdog for another pid is not kept
    finally:
        assert d.stop() == 0
    sock.settimeout(0.5)
    rest = []
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except socket.timeout:
        pass
    sock.close()
    assert not any("WATCHDOG=1" in m for m in rest) and any("STOPPING=1" in m for m in rest)

# -- the same on PostgreSQL: the database refuses connections --------------------------------

requires_pg = pytest.mark.skipif(PG is None, reason="for PostgreSQL ($ATTACHD_TEST_PG)")


def pg_refuse(d, refuse):
    """Make d's PostgreSQL database refuse new connections and end its
    sessions (refuse), or accept them again."""
    name = d.db.rsplit("dbname=", 1)[1]
    psql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'false' if refuse else 'true'}")
    if refuse:
        psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


@requires_pg
def test_healthcheck_503_when_postgresql_refuses(tmp_path):
    d = Attachd(tmp_path).start()
    try:
        assert requests.get(d.url("/healthcheck")).status_code == 200
        pg_refuse(d, True)
        r = requests.get(d.url("/healthcheck"))
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "unavailable" and "store" in body["reason"], body
        assert r.headers.get("Retry-After")
        pg_refuse(d, False)
        assert wait_for(lambda: requests.get(d.url("/healthcheck")).status_code == 200)
    finally:
        pg_refuse(d, False)
        assert d.stop() == 0


@requires_pg
def test_an_error_line_carries_its_request_id_postgresql(tmp_path):
    """PostgreSQL refuses connections; a thread that opens its reader now
    fails, and the error it logs names the request it was working on."""
    d = Attachd(tmp_path, extra_args=["--threads", "8"]).start()
    try:
        acct = d.add_account("e")
        user, pw = d.add_user(acct)
        pg_refuse(d, True)
        ids = []
        for _ in range(40):         # on fresh connections, to reach every thread
            r = requests.get(d.url("/servers"), headers={"Authorization": basic(user, pw),
                                                         "Connection": "close"})
            assert r.status_code in (200, 401, 503), r.text     # never a 500
            ids.append(r.headers.get("x-openstack-request-id"))
        found = wait_for(lambda: [l for l in d.read_log().splitlines()
                                  if " error " in l and "request_id=req-" in l])
        assert found, d.read_log()[-3000:]
        rid = re.search(r"request_id=(req-[0-9a-f-]+)", found[0]).group(1)
        assert rid in ids
    finally:
        pg_refuse(d, False)
        assert d.stop() == 0
