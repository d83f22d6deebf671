"""Routing and dialects (issue 2 item 6;
docs/api.md, decisions D1, D2, D3, D5 and D7): the four prefixes, unknown
paths and methods, the fault bodies of each dialect and the request-id
headers on every response."""
import json
import urllib.parse

import pytest

from apiutil import (PREFIX_KINDS, assert_error, assert_hostway_error, assert_json,
                     assert_not_found, assert_nova_error, assert_request_ids,
                     create_server, dialect_of, ordered, prefix, unique)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_every_prefix_serves_the_same_servers(world, kind):
    sid = world.d.add_server(world.a, name=unique("route"))
    pfx = prefix(kind, world.a)
    r = world.sa.get(f"{world.base}{pfx}/servers/{sid}")
    assert r.status_code == 200, r.text
    assert_request_ids(r)
    assert assert_json(r)["server"]["id"] == sid
    r = world.sa.get(f"{world.base}{pfx}/servers")
    assert r.status_code == 200, r.text
    assert sid in [s["id"] for s in r.json()["servers"]]


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_unknown_server_is_404_in_dialect(world, kind):
    missing = unique("missing")
    r = world.sa.get(f"{world.base}{prefix(kind, world.a)}/servers/{missing}")
    assert_not_found(dialect_of(kind), r, missing)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("tail", ["/nothing-here", "/servers/x/y/z/extra", "/flavorz/1",
                                  "/servers/detail/more"])
def test_unknown_path_is_404_in_dialect(world, kind, tail):
    r = world.sa.get(f"{world.base}{prefix(kind, world.a)}{tail}")
    assert r.status_code == 404, (r.status_code, r.text)
    if dialect_of(kind) == "nova":
        assert_nova_error(r, 404, "itemNotFound", "The resource could not be found.")
    else:
        assert_hostway_error(r, 404, "itemNotFound", "Resource not found")


@pytest.mark.parametrize("path", ["/nothing", "/accounts", "/v2"])
def test_unknown_top_level_path_is_404(world, path):
    r = world.sa.get(world.base + path)
    assert r.status_code == 404, (r.status_code, r.text)
    assert_request_ids(r)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("method,tail", [
    ("PUT", "/servers"),
    ("DELETE", "/servers"),
    ("PATCH", "/servers"),
    ("POST", "/servers/{id}"),
    ("PATCH", "/servers/{id}"),
    ("GET", "/servers/{id}/action"),
    ("DELETE", "/servers/{id}/action"),
    ("POST", "/servers/detail"),
])
def test_wrong_method_is_405_in_dialect(world, kind, method, tail):
    sid = world.d.add_server(world.a, name="m405")
    r = world.sa.request(method, f"{world.base}{prefix(kind, world.a)}{tail.format(id=sid)}",
                         data=b"{}", headers={"Content-Type": "application/json"})
    assert_error(dialect_of(kind), r, 405)
    allow = [m.strip() for m in r.headers.get("Allow", "").split(",") if m.strip()]
    assert allow and method not in allow, f"405 needs an Allow header without {method}: {allow}"
    # and the server is untouched
    assert world.sa.get(f"{world.base}/v2.1/servers/{sid}").status_code == 200


def test_hostway_errorid_is_fresh_uuid4_per_response(world):
    ids = set()
    for _ in range(5):
        f = assert_hostway_error(world.sa.get(world.base + "/servers/nope"), 404,
                                 "itemNotFound", "Resource not found")
        ids.add(f["errorid"])
    assert len(ids) == 5, ids


def test_hostway_404_raw_key_order(world):
    r = world.sa.get(world.base + "/servers/nope")
    text = r.text
    pos = [text.index(f'"{k}"') for k in ("itemNotFound", "message", "code", "details", "errorid")]
    assert pos == sorted(pos), text


def test_nova_404_body_exact(world):
    r = world.sa.get(world.base + "/v2.1/servers/nope-123")
    assert r.status_code == 404
    assert ordered(r.text) == [("itemNotFound", [("code", 404),
                                                 ("message", "Instance nope-123 could not be found.")])]
    assert json.loads(r.text) == {"itemNotFound": {"code": 404,
                                                   "message": "Instance nope-123 could not be found."}}


@pytest.mark.parametrize("method,path,details", [
    # The examples of Hostway's DetachVolumeFromServer page (docs/api.md):
    # details "" exactly.
    ("DELETE", "/servers/fake_server_id/os-volume_attachments/hbs2012May03_0OxRg0Jz7", ""),
    ("GET", "/servers/test-server-0013/os-volume_attachments/fake_volume_id", ""),
])
def test_seed_404_bodies(daemon, method, path, details):
    acct = daemon.add_account()
    daemon.add_server(acct, name="seed", server_id="test-server-0013")
    user, pw = daemon.add_user(acct, role="admin")
    r = daemon.session(user, pw).request(method, daemon.url(path))
    f = assert_hostway_error(r, 404, "itemNotFound", "Resource not found", details)
    assert set(json.loads(r.text)) == {"itemNotFound"}
    assert json.loads(r.text)["itemNotFound"] == {"message": "Resource not found", "code": 404,
                                                  "details": "", "errorid": f["errorid"]}


@pytest.mark.parametrize("kind", ["hostway-acct", "nova-proj"])
def test_unknown_account_in_prefix_is_404(world, kind):
    for who in (world.sa, world.admin):
        r = who.get(f"{world.base}{prefix(kind, 'no-such-account')}/servers")
        assert_error(dialect_of(kind), r, 404)


@pytest.mark.parametrize("kind", PREFIX_KINDS)
@pytest.mark.parametrize("bad_id", [
    "%00", "a%2Fb", "%C3%BC", "a%20b", "%FF%FE", "a%22b", "%3Cscript%3E", "x" * 256, "a;b",
    "%25", "a%0Ab",
])
def test_ids_outside_the_id_alphabet_are_simply_404(world, kind, bad_id):
    """1-255 chars of [A-Za-z0-9._~:-]; anything else is not found, never 500
    (docs/api.md, decision D5)."""
    for method in ("GET", "DELETE"):
        r = world.sa.request(method, f"{world.base}{prefix(kind, world.a)}/servers/{bad_id}")
        assert r.status_code == 404, (method, bad_id, r.status_code, r.text[:300])
        assert_error(dialect_of(kind), r, 404)
    r = world.sa.post(f"{world.base}{prefix(kind, world.a)}/servers/{bad_id}/action",
                      json={"os-stop": None})
    assert r.status_code == 404, (bad_id, r.status_code, r.text[:300])


@pytest.mark.parametrize("given_id", ["test-server-0013", "test_server_0013", "a.b~c:d-e",
                                      "X" * 255, "0"])
def test_free_form_ids_from_the_cli_are_served(world, given_id):
    acct = world.d.add_account()
    user, pw = world.d.add_user(acct)
    s = world.d.session(user, pw)
    assert world.d.add_server(acct, name="free", server_id=given_id) == given_id
    for pfx in ("", "/v2.1", f"/v2.1/{acct}", f"/accounts/{acct}/flexcloud"):
        r = s.get(f"{world.base}{pfx}/servers/{given_id}")
        assert r.status_code == 200, (pfx, r.text)
        assert r.json()["server"]["id"] == given_id


def test_request_ids_on_every_kind_of_response(world):
    sid = world.d.add_server(world.a, name="rid")
    responses = [
        world.anon.get(world.base + "/"),
        world.anon.get(world.base + "/v2.1/"),
        world.anon.get(world.base + "/servers"),                         # 401
        world.sa.get(world.base + "/servers"),                           # 200
        world.sa.get(world.base + "/servers/none"),                      # 404 hostway
        world.sa.get(world.base + "/v2.1/servers/none"),                 # 404 nova
        world.sa.put(world.base + "/v2.1/servers", json={}),             # 405
        world.sa.post(world.base + "/v2.1/servers", data=b"{not json"),  # 400
        world.sa.post(f"{world.base}/v2.1/servers/{sid}/action", json={"os-stop": None}),  # 202
        world.sa.delete(f"{world.base}/servers/{sid}"),                  # 204
    ]
    ids = [assert_request_ids(r) for r in responses]
    assert len(set(ids)) == len(ids), ids
    assert [r.status_code for r in responses] == [200, 200, 401, 200, 404, 404, 405, 400, 202, 204]


def test_query_string_does_not_change_routing(world):
    sid = world.d.add_server(world.a, name="qs")
    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}?foo=bar&x=" + urllib.parse.quote("a b"))
    assert r.status_code == 200, r.text
    r = world.sa.get(f"{world.base}/servers/{sid}?foo=bar")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("kind", PREFIX_KINDS)
def test_malformed_json_is_400(world, kind):
    r = world.sa.post(f"{world.base}{prefix(kind, world.a)}/servers", data=b'{"server": ',
                      headers={"Content-Type": "application/json"})
    if dialect_of(kind) == "nova":
        assert_nova_error(r, 400, "badRequest", "Malformed request body")
    else:
        assert_hostway_error(r, 400, "badRequest")


def test_created_server_is_visible_under_every_prefix(world):
    sid = create_server(world.sa, world.base, f"/accounts/{world.a}/flexcloud", unique("any"))
    for kind in PREFIX_KINDS:
        r = world.sa.get(f"{world.base}{prefix(kind, world.a)}/servers/{sid}")
        assert r.status_code == 200, (kind, r.text)
