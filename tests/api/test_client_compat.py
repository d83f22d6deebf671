"""Regression tests for what the real OpenStack clients need (issue 4).

tests/compat runs openstacksdk, novaclient, the `openstack` CLI and tempest
against attachd; each incompatibility it found is pinned here again in plain
HTTP, so that it is caught by the API suite alone (docs/client-requirements.md
gives the client side of each):

  * the read-only Cinder v3 API at /v3 that `openstack server add/remove
    volume` looks volumes up in: the version document without credentials,
    the summary list, detail and show in Cinder's shape, `?name=` (an exact
    match over all of the caller's volumes), 404 for a name or a foreign
    project;
  * `GET /v2.1/servers?name=` filters (the text anywhere in the name), over
    all of the caller's servers;
  * `server_groups` only in a server show at 2.71 and later;
  * tempest's checks: the legacy microversion header echoed exactly, no body
    bytes on a 202 or 204, Connection: close honoured, exact error
    Content-Types, exact attachment field sets per microversion, and the
    os-volumes body types;
  * bodies the clients really send: `"device": null`, no device,
    `{"os-stop": null}` and `{"os-stop": {}}`, Content-Type on a GET or
    DELETE without a body.

One daemon serves the whole module (the `world` fixture of conftest.py);
each test makes the servers and volumes it uses.
"""
import json
import re

import pytest
import requests

from apiutil import (IMAGE_REF, UNAUTHORIZED_BODY, Conn, assert_nova_error,
                     assert_request_ids, assert_unauthorized, basic, unique)

DEVICE = re.compile(r"^/dev/[sv]d[a-z]+$")
CINDER_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")
CINDER_SUMMARY_KEYS = {"id", "name", "links"}
CINDER_DETAIL_KEYS = {
    "id", "name", "description", "size", "status", "availability_zone", "created_at",
    "updated_at", "volume_type", "snapshot_id", "source_volid", "bootable", "encrypted",
    "multiattach", "metadata", "user_id", "os-vol-tenant-attr:tenant_id", "attachments",
    "links"}
CINDER_ATTACHMENT_KEYS = {"id", "attachment_id", "volume_id", "server_id", "host_name",
                          "device", "attached_at"}
ATTACHMENT_KEYS = {
    "2.1": {"id", "serverId", "volumeId", "device"},
    "2.70": {"id", "serverId", "volumeId", "device", "tag"},
    "2.79": {"id", "serverId", "volumeId", "device", "tag", "delete_on_termination"},
    "2.89": {"serverId", "volumeId", "device", "tag", "delete_on_termination",
             "attachment_id", "bdm_uuid"},
}
ATTACH_RESPONSE_KEYS = {**ATTACHMENT_KEYS,
                        "2.89": {"id", "serverId", "volumeId", "device", "tag",
                                 "delete_on_termination"}}


# -- helpers ------------------------------------------------------------------------

def mv(version):
    return {"OpenStack-API-Version": f"compute {version}"}


def new_server(w, session=None, name=None):
    s = session or w.sa
    r = s.post(f"{w.base}/v2.1/servers", json={"server": {
        "name": name or unique("srv"), "flavorRef": "1", "imageRef": IMAGE_REF}})
    assert r.status_code == 202, (r.status_code, r.text)
    return r.json()["server"]["id"]


def new_volume(w, session=None, name=None, size=1):
    s = session or w.sa
    body = {"size": size}
    if name is not None:
        body["display_name"] = name
    r = s.post(f"{w.base}/v2.1/os-volumes", json={"volume": body})
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["volume"]["id"]


def attach(w, sid, vid, session=None, headers=None, **extra):
    s = session or w.sa
    r = s.post(f"{w.base}/v2.1/servers/{sid}/os-volume_attachments",
               json={"volumeAttachment": {"volumeId": vid, **extra}}, headers=headers or {})
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["volumeAttachment"]


def raw(w, method, path, user="a", headers=(), body=b"", conn=None):
    """One request on a raw connection: (RawResponse, bytes sent after it)."""
    who = {"a": (w.a_user, w.a_pw), "b": (w.b_user, w.b_pw),
           "admin": (w.admin_user, w.admin_pw)}[user]
    hdrs = [("Authorization", basic(*who)), *headers]
    if body:
        hdrs.append(("Content-Type", "application/json"))
    c = conn or Conn(w.d.port)
    try:
        r = c.request(method, path, headers=hdrs, body=body)
        return r, c.pending_bytes(0.1)
    finally:
        if conn is None:
            c.close()


def assert_no_body(r, extra, status):
    """Tempest's check on a 202/204: the status and not one body byte."""
    assert r.status == status, (r.status, r.body[:300])
    assert r.header("Content-Length") in (None, "0"), r.headers
    assert r.header("Transfer-Encoding") is None, r.headers
    assert r.body == b"", r.body[:300]
    assert extra == b"", f"bytes after the {status}: {extra[:300]!r}"


@pytest.fixture(scope="module")
def vols(world):
    """Account A's Cinder fixtures: an attached and a free volume."""
    sid = new_server(world, name=unique("cinder-srv"))
    attached_name, free_name = unique("att"), unique("free")
    attached = new_volume(world, name=attached_name, size=2)
    free = new_volume(world, name=free_name)
    at = attach(world, sid, attached)
    return {"sid": sid, "attached": attached, "attached_name": attached_name,
            "free": free, "free_name": free_name, "device": at["device"]}


def cinder_prefixes(w):
    return [f"/v3/{w.a}", "/v3"]


# -- 1. the Cinder v3 version document ----------------------------------------------

@pytest.mark.parametrize("path", ["/v3", "/v3/"])
def test_v3_version_document_needs_no_credentials(world, path):
    r = requests.get(world.base + path, headers={"Accept": "application/json"})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    assert_request_ids(r)
    body = r.json()
    assert list(body) == ["versions"], body
    assert len(body["versions"]) == 1, body
    v = body["versions"][0]
    assert v["id"] == "v3.0", v
    assert v["status"] == "CURRENT", v
    assert isinstance(v["version"], str) and re.fullmatch(r"3\.\d+", v["version"]), v
    assert isinstance(v["min_version"], str) and re.fullmatch(r"3\.\d+", v["min_version"]), v
    assert [link for link in v["links"] if link["rel"] == "self"] == [
        {"rel": "self", "href": f"http://127.0.0.1:{world.d.port}/v3/"}], v


def test_v3_version_document_href_follows_host(world):
    r = requests.get(world.base + "/v3", headers={"Host": "cinder.example:8776"})
    assert r.status_code == 200, r.text
    links = r.json()["versions"][0]["links"]
    assert {"rel": "self", "href": "http://cinder.example:8776/v3/"} in links, links


def test_v3_version_document_ignores_bad_credentials(world):
    # keystoneauth discovers without credentials; a bad header must not turn it into 401
    r = requests.get(world.base + "/v3/", headers={"Authorization": basic("nobody", "x")})
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.json()["versions"][0]["id"] == "v3.0"


# -- 2. Cinder v3 volumes ---------------------------------------------------------

def check_links(item, w, pfx, vid):
    hrefs = {link["rel"]: link["href"] for link in item["links"]}
    assert hrefs.get("self") == f"{w.base}{pfx}/volumes/{vid}", item["links"]
    for link in item["links"]:
        assert set(link) == {"rel", "href"}, link
        assert link["href"].startswith("http://"), link


def check_cinder_detail(v, w, pfx, vid, name, size, attached_to=None, device=None):
    assert set(v) == CINDER_DETAIL_KEYS, sorted(set(v) ^ CINDER_DETAIL_KEYS)
    assert v["id"] == vid and v["name"] == name and v["size"] == size, v
    assert v["bootable"] == "false", v                  # a string, as Cinder sends it
    assert v["encrypted"] is False and v["multiattach"] is False, v
    assert isinstance(v["metadata"], dict), v
    assert isinstance(v["availability_zone"], str) and v["availability_zone"], v
    assert CINDER_TIME.match(v["created_at"]) and CINDER_TIME.match(v["updated_at"]), v
    assert v["os-vol-tenant-attr:tenant_id"] == w.a, v
    for key in ("description", "volume_type", "snapshot_id", "source_volid", "user_id"):
        assert v[key] is None or isinstance(v[key], str), (key, v)
    check_links(v, w, pfx, vid)
    if attached_to is None:
        assert v["status"] == "available", v
        assert v["attachments"] == [], v
    else:
        assert v["status"] == "in-use", v
        assert len(v["attachments"]) == 1, v
        a = v["attachments"][0]
        assert set(a) == CINDER_ATTACHMENT_KEYS, a
        assert a["id"] == vid and a["volume_id"] == vid, a
        assert a["server_id"] == attached_to, a
        assert a["device"] == device, a
        assert isinstance(a["attachment_id"], str) and a["attachment_id"], a
        assert a["host_name"] is None or isinstance(a["host_name"], str), a
        assert CINDER_TIME.match(a["attached_at"]), a


def test_v3_summary_list(world, vols):
    for pfx in cinder_prefixes(world):
        r = world.sa.get(f"{world.base}{pfx}/volumes")
        assert r.status_code == 200, (pfx, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/json"
        body = r.json()
        assert list(body) == ["volumes"], body
        items = {v["id"]: v for v in body["volumes"]}
        for vid, name in ((vols["attached"], vols["attached_name"]),
                          (vols["free"], vols["free_name"])):
            assert vid in items, (pfx, vid, body)
            assert set(items[vid]) == CINDER_SUMMARY_KEYS, items[vid]
            assert items[vid]["name"] == name, items[vid]
            check_links(items[vid], world, pfx, vid)


def test_v3_detail_list(world, vols):
    for pfx in cinder_prefixes(world):
        r = world.sa.get(f"{world.base}{pfx}/volumes/detail")
        assert r.status_code == 200, (pfx, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/json"
        items = {v["id"]: v for v in r.json()["volumes"]}
        check_cinder_detail(items[vols["attached"]], world, pfx, vols["attached"],
                            vols["attached_name"], 2, vols["sid"], vols["device"])
        check_cinder_detail(items[vols["free"]], world, pfx, vols["free"],
                            vols["free_name"], 1)


def test_v3_show(world, vols):
    for pfx in cinder_prefixes(world):
        r = world.sa.get(f"{world.base}{pfx}/volumes/{vols['attached']}")
        assert r.status_code == 200, (pfx, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/json"
        body = r.json()
        assert list(body) == ["volume"], body
        check_cinder_detail(body["volume"], world, pfx, vols["attached"],
                            vols["attached_name"], 2, vols["sid"], vols["device"])
        r = world.sa.get(f"{world.base}{pfx}/volumes/{vols['free']}")
        assert r.status_code == 200, (pfx, r.status_code, r.text)
        check_cinder_detail(r.json()["volume"], world, pfx, vols["free"], vols["free_name"], 1)


@pytest.mark.parametrize("header", ["volume 3.0", "volume 3.60", "volume latest"])
def test_v3_volume_microversion_header_is_accepted(world, vols, header):
    # the `openstack` CLI sends `OpenStack-API-Version: volume <min(3.60, /v3's version)>`
    h = {"OpenStack-API-Version": header}
    for tail in ("/volumes", "/volumes/detail", f"/volumes/{vols['free']}",
                 f"/volumes?name={vols['free_name']}"):
        r = world.sa.get(f"{world.base}/v3/{world.a}{tail}", headers=h)
        assert r.status_code == 200, (tail, header, r.status_code, r.text)
    r = world.sa.get(f"{world.base}/v3/{world.a}/volumes/{vols['free_name']}", headers=h)
    assert_nova_error(r, 404, "itemNotFound")


@pytest.mark.parametrize("tail", ["/volumes", "/volumes/detail", "/volumes/{vid}",
                                  "/volumes?name={name}", "/volumes/no-such-volume"])
def test_v3_volumes_need_credentials(world, vols, tail):
    tail = tail.format(vid=vols["free"], name=vols["free_name"])
    for pfx in cinder_prefixes(world):
        assert_unauthorized(world.anon.get(f"{world.base}{pfx}{tail}"))
        # an unknown user each time: ten failures for one name would give 429
        bad = requests.get(f"{world.base}{pfx}{tail}",
                           headers={"Authorization": basic(unique("nobody"), "wrong")})
        assert_unauthorized(bad)
        assert bad.content == UNAUTHORIZED_BODY


def test_v3_show_by_name_is_404(world, vols):
    # the `openstack` CLI tries the name as an id first and needs 404 (not 400)
    name = vols["free_name"]
    for pfx in cinder_prefixes(world):
        r = world.sa.get(f"{world.base}{pfx}/volumes/{name}")
        assert_nova_error(r, 404, "itemNotFound", f"Volume {name} could not be found.")
        assert r.headers["Content-Type"] == "application/json"


def test_v3_name_filter_is_exact(world):
    stem = unique("dup")
    same = [new_volume(world, name=stem), new_volume(world, name=stem)]
    new_volume(world, name=stem + "-2")
    new_volume(world, name="x" + stem)
    new_volume(world, name=stem.upper())
    for pfx in cinder_prefixes(world):
        for coll in ("/volumes", "/volumes/detail"):
            r = world.sa.get(f"{world.base}{pfx}{coll}", params={"name": stem})
            assert r.status_code == 200, (r.status_code, r.text)
            got = r.json()["volumes"]
            assert sorted(v["id"] for v in got) == sorted(same), (pfx, coll, got)
            assert all(v["name"] == stem for v in got), got
            r = world.sa.get(f"{world.base}{pfx}{coll}", params={"name": unique("none")})
            assert r.status_code == 200 and r.json()["volumes"] == [], r.text


def test_v3_name_filter_looks_beyond_the_first_1000(world):
    # 1000 volumes between the oldest and the newest: a filter applied to one
    # page of 1000 (either end first) misses one of the two
    acct = world.d.add_account(name="acct-many-volumes")
    user, pw = world.d.add_user(acct)
    s = world.d.session(user, pw)
    oldest, newest = unique("oldest"), unique("newest")
    ids = {oldest: new_volume(world, session=s, name=oldest)}
    for i in range(1000):
        new_volume(world, session=s, name=f"hay-{i}")
    ids[newest] = new_volume(world, session=s, name=newest)
    for pfx in (f"/v3/{acct}", "/v3"):
        for coll in ("/volumes", "/volumes/detail"):
            for name, vid in ids.items():
                r = s.get(f"{world.base}{pfx}{coll}", params={"name": name})
                assert r.status_code == 200, (r.status_code, r.text)
                got = r.json()["volumes"]
                assert [(v["id"], v["name"]) for v in got] == [(vid, name)], (pfx, coll, got)


def test_v3_foreign_project_is_404(world, vols):
    b_vid = new_volume(world, session=world.sb, name=unique("b-vol"))
    for tail in ("/volumes", "/volumes/detail", f"/volumes/{b_vid}",
                 f"/volumes/{vols['free']}", f"/volumes?name={vols['free_name']}"):
        r = world.sa.get(f"{world.base}/v3/{world.b}{tail}")
        assert_nova_error(r, 404, "itemNotFound")
        assert r.headers["Content-Type"] == "application/json"
    # a volume of another account is not found in the caller's own project either
    for pfx in cinder_prefixes(world):
        r = world.sa.get(f"{world.base}{pfx}/volumes/{b_vid}")
        assert_nova_error(r, 404, "itemNotFound", f"Volume {b_vid} could not be found.")
        listed = world.sa.get(f"{world.base}{pfx}/volumes").json()["volumes"]
        assert b_vid not in {v["id"] for v in listed}


# -- 3. GET /servers?name= ------------------------------------------------------------

def listed_names(w, session, path, name):
    r = session.get(f"{w.base}{path}", params={"name": name})
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()["servers"]


def test_servers_name_filter_matches_the_text_anywhere(world):
    tag = unique("nf")
    ids = {n: new_server(world, name=n) for n in (
        f"{tag}", f"pre-{tag}-post", f"{tag}.web", f"{tag}xweb", f"other-{tag[:-1]}")}
    for path in ("/v2.1/servers", f"/v2.1/{world.a}/servers", "/v2.1/servers/detail"):
        got = listed_names(world, world.sa, path, tag)
        assert sorted(s["name"] for s in got) == sorted(
            [tag, f"pre-{tag}-post", f"{tag}.web", f"{tag}xweb"]), (path, got)
        for s in got:
            assert s["id"] == ids[s["name"]], s
        # the literal text: "." matches a dot only
        got = listed_names(world, world.sa, path, f"{tag}.web")
        assert [s["name"] for s in got] == [f"{tag}.web"], (path, got)
        assert listed_names(world, world.sa, path, unique("none")) == []
    # the summary list keeps its shape under the filter
    got = listed_names(world, world.sa, "/v2.1/servers", tag)
    assert all(set(s) == {"id", "name", "links"} for s in got), got
    # the Hostway dialect's lists filter the same way
    for path in ("/servers", f"/accounts/{world.a}/flexcloud/servers/detail"):
        got = listed_names(world, world.sa, path, tag)
        assert sorted(s["id"] for s in got) == sorted(
            ids[n] for n in (tag, f"pre-{tag}-post", f"{tag}.web", f"{tag}xweb")), (path, got)


def test_servers_name_filter_pages_keep_the_filter(world):
    tag = unique("pg")
    ids = [new_server(world, name=f"{tag}-{i}") for i in range(3)]
    new_server(world, name=unique("other"))
    seen, url = [], f"{world.base}/v2.1/servers?name={tag}&limit=2"
    while url:
        r = world.sa.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [s["id"] for s in body["servers"]]
        links = body.get("servers_links", [])
        assert all(f"name={tag}" in link["href"] for link in links), links
        url = links[0]["href"] if links else None
    assert seen == ids[::-1], seen                      # newest first, each once
    # an empty name is no regular expression to Nova's query schema; the
    # Hostway dialect has no schema, and an empty name filters nothing there
    r = world.sa.get(f"{world.base}/v2.1/servers", params={"name": ""})
    assert_nova_error(r, 400, "badRequest", "Invalid input for query parameters name. "
                      "Value: . '' is not a 'regex'")
    everything = world.sa.get(f"{world.base}/servers").json()["servers"]
    assert listed_names(world, world.sa, "/servers", "") == everything


def test_servers_name_filter_keeps_tenancy(world):
    name = unique("shared-name")
    mine = new_server(world, name=name)
    new_server(world, session=world.sb, name=name)
    got = listed_names(world, world.sa, "/v2.1/servers", name)
    assert [s["id"] for s in got] == [mine], got


def test_servers_name_filter_looks_beyond_the_newest_1000(world):
    # the default page is 1000 servers, newest first: the filter must not be
    # applied to that page only
    acct = world.d.add_account(name="acct-many-servers")
    user, pw = world.d.add_user(acct)
    s = world.d.session(user, pw)
    oldest, newest = unique("oldest"), unique("newest")
    ids = {oldest: new_server(world, session=s, name=oldest)}
    for i in range(1000):
        new_server(world, session=s, name=f"hay-{i}")
    ids[newest] = new_server(world, session=s, name=newest)
    for path in ("/v2.1/servers", "/v2.1/servers/detail"):
        for name, sid in ids.items():
            got = listed_names(world, s, path, name)
            assert [(x["id"], x["name"]) for x in got] == [(sid, name)], (path, got)


# -- 4. server_groups -------------------------------------------------------------------

@pytest.mark.parametrize("version,present", [
    ("2.1", False), ("2.70", False), ("2.71", True), ("2.79", True), ("2.89", True)])
def test_server_groups_only_in_show_from_2_71(world, version, present):
    sid = new_server(world)
    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}", headers=mv(version))
    assert r.status_code == 200, r.text
    server = r.json()["server"]
    if present:
        assert server.get("server_groups") == [], server
    else:
        assert "server_groups" not in server, server
    r = world.sa.get(f"{world.base}/v2.1/servers/detail", headers=mv(version))
    assert r.status_code == 200, r.text
    for s in r.json()["servers"]:
        assert "server_groups" not in s, (version, s)


# -- 5. tempest's microversion header check -----------------------------------------

def test_legacy_microversion_header_is_echoed_on_every_2xx(world):
    legacy = {"X-OpenStack-Nova-API-Version": "2.70"}
    sid = new_server(world)
    v1, v2 = new_volume(world), new_volume(world)
    base = f"{world.base}/v2.1/servers/{sid}"
    calls = [
        ("attach", 200, lambda: world.sa.post(
            f"{base}/os-volume_attachments", headers=legacy,
            json={"volumeAttachment": {"volumeId": v1}})),
        ("list", 200, lambda: world.sa.get(f"{base}/os-volume_attachments", headers=legacy)),
        ("show", 200, lambda: world.sa.get(f"{base}/os-volume_attachments/{v1}",
                                           headers=legacy)),
        # a swap is for admins (tempest's update_attached_volume runs as one)
        ("update", 202, lambda: world.admin.put(
            f"{base}/os-volume_attachments/{v1}", headers=legacy,
            json={"volumeAttachment": {"volumeId": v2}})),
        ("detach", 202, lambda: world.sa.delete(f"{base}/os-volume_attachments/{v2}",
                                                headers=legacy)),
        ("server show", 200, lambda: world.sa.get(base, headers=legacy)),
    ]
    for what, status, call in calls:
        r = call()
        assert r.status_code == status, (what, r.status_code, r.text)
        assert r.headers.get("X-OpenStack-Nova-API-Version") == "2.70", (what, r.headers)
        assert r.headers.get("OpenStack-API-Version") == "compute 2.70", (what, r.headers)


def test_legacy_header_selects_the_version(world):
    sid, vid = new_server(world), new_volume(world)
    a = attach(world, sid, vid, headers={"X-OpenStack-Nova-API-Version": "2.70"})
    assert set(a) == ATTACH_RESPONSE_KEYS["2.70"], a
    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}/os-volume_attachments",
                     headers={"X-OpenStack-Nova-API-Version": "2.79"})
    assert r.headers.get("X-OpenStack-Nova-API-Version") == "2.79", r.headers
    assert [set(x) for x in r.json()["volumeAttachments"]] == [ATTACHMENT_KEYS["2.79"]], r.text


# -- 6. no body on a 202 or 204 ----------------------------------------------------------

def test_no_body_on_nova_detach_update_actions_and_deletes(world):
    sid, v1, v2 = new_server(world), new_volume(world), new_volume(world)
    attach(world, sid, v1)
    p = f"/v2.1/servers/{sid}"
    # a swap (admins only, as tempest runs it) and, from 2.85, the owner's update
    r, extra = raw(world, "PUT", f"{p}/os-volume_attachments/{v1}", user="admin",
                   body=json.dumps({"volumeAttachment": {"volumeId": v2}}).encode())
    assert_no_body(r, extra, 202)
    r, extra = raw(world, "PUT", f"{p}/os-volume_attachments/{v2}",
                   headers=[("OpenStack-API-Version", "compute 2.85")],
                   body=json.dumps({"volumeAttachment": {
                       "volumeId": v2, "delete_on_termination": True}}).encode())
    assert_no_body(r, extra, 202)
    r, extra = raw(world, "DELETE", f"{p}/os-volume_attachments/{v2}")
    assert_no_body(r, extra, 202)
    for act in ("os-stop", "os-start", "lock", "unlock", "pause", "unpause", "suspend",
                "resume"):
        r, extra = raw(world, "POST", f"{p}/action", body=json.dumps({act: None}).encode())
        assert_no_body(r, extra, 202)
    r, extra = raw(world, "DELETE", f"/v2.1/os-volumes/{v1}")
    assert_no_body(r, extra, 202)
    r, extra = raw(world, "DELETE", p)
    assert_no_body(r, extra, 204)


def test_no_body_on_hostway_detach_and_deletes(world):
    sid, vid = new_server(world), new_volume(world)
    attach(world, sid, vid)
    r, extra = raw(world, "DELETE", f"/servers/{sid}/os-volume_attachments/{vid}")
    assert_no_body(r, extra, 204)
    r, extra = raw(world, "DELETE", f"/accounts/{world.a}/flexcloud/volumes/{vid}")
    assert_no_body(r, extra, 204)


def test_no_body_on_one_keep_alive_connection(world):
    # a stray body byte would be read as the start of the next response
    sid, vid = new_server(world), new_volume(world)
    attach(world, sid, vid)
    with Conn(world.d.port) as c:
        r, _ = raw(world, "DELETE", f"/v2.1/servers/{sid}/os-volume_attachments/{vid}", conn=c)
        assert r.status == 202 and r.body == b"", r.body
        r, _ = raw(world, "POST", f"/v2.1/servers/{sid}/action", conn=c,
                   body=b'{"os-stop": {}}')
        assert r.status == 202 and r.body == b"", r.body
        r, _ = raw(world, "DELETE", f"/v2.1/servers/{sid}", conn=c)
        assert r.status == 204, r.status
        r, extra = raw(world, "GET", f"/v2.1/servers/{sid}", conn=c)
        assert r.status == 404, (r.status, r.body)
        assert json.loads(r.body)["itemNotFound"]["code"] == 404
        assert extra == b""


# -- 7. bodies and headers the clients really send -----------------------------------

def test_attach_with_null_device_picks_one(world):
    sid, vid = new_server(world), new_volume(world)
    a = attach(world, sid, vid, device=None)        # the `openstack` CLI sends JSON null
    assert a["device"] == "/dev/vdb", a
    assert a["volumeId"] == vid and a["serverId"] == sid, a


def test_attach_without_device_picks_one(world):
    sid, v1, v2 = new_server(world), new_volume(world), new_volume(world)
    a = attach(world, sid, v1)                      # novaclient without a device
    assert a["device"] == "/dev/vdb", a
    b = attach(world, sid, v2, device=None)
    assert DEVICE.match(b["device"]) and b["device"] != a["device"], b


@pytest.mark.parametrize("arg", [None, {}], ids=["null", "empty-object"])
def test_action_bodies_null_and_empty_object(world, arg):
    sid = new_server(world)
    for act, status in (("os-stop", "SHUTOFF"), ("os-start", "ACTIVE")):
        r = world.sa.post(f"{world.base}/v2.1/servers/{sid}/action", json={act: arg})
        assert r.status_code == 202, (act, arg, r.status_code, r.text)
        assert r.content == b""
        s = world.sa.get(f"{world.base}/v2.1/servers/{sid}").json()["server"]
        assert s["status"] == status, (act, s["status"])


def test_get_and_delete_with_content_type_and_no_body(world):
    sid, vid = new_server(world), new_volume(world)
    attach(world, sid, vid)
    ct = [("Content-Type", "application/json"), ("Accept", "application/json")]
    p = f"/v2.1/servers/{sid}"
    for path in (p, f"{p}/os-volume_attachments", f"{p}/os-volume_attachments/{vid}",
                 "/v2.1/servers/detail", f"/v2.1/os-volumes/{vid}",
                 f"/v3/{world.a}/volumes/{vid}"):
        r, _ = raw(world, "GET", path, headers=ct)
        assert r.status == 200, (path, r.status, r.body[:300])
        json.loads(r.body)
    r, extra = raw(world, "DELETE", f"{p}/os-volume_attachments/{vid}", headers=ct)
    assert_no_body(r, extra, 202)
    r, extra = raw(world, "DELETE", f"/v2.1/os-volumes/{vid}", headers=ct)
    assert_no_body(r, extra, 202)
    r, extra = raw(world, "DELETE", p, headers=ct)
    assert_no_body(r, extra, 204)


def test_connection_close_is_honoured_on_every_request(world):
    sid, vid = new_server(world), new_volume(world)
    tempest = [("Content-Type", "application/json"), ("Accept", "application/json"),
               ("connection", "close"), ("X-OpenStack-Nova-API-Version", "2.79")]
    p = f"/v2.1/servers/{sid}"
    steps = [
        ("POST", f"{p}/os-volume_attachments",
         json.dumps({"volumeAttachment": {"volumeId": vid}}).encode(), 200),
        ("GET", f"{p}/os-volume_attachments", b"", 200),
        ("GET", f"{p}/os-volume_attachments/{vid}", b"", 200),
        ("DELETE", f"{p}/os-volume_attachments/{vid}", b"", 202),
        ("POST", f"{p}/action", b'{"os-stop": {}}', 202),
        ("GET", p, b"", 200),
        ("GET", f"/v2.1/servers/{unique('gone')}", b"", 404),
        ("DELETE", p, b"", 204),
    ]
    for method, path, body, status in steps:
        with Conn(world.d.port) as c:
            r, _ = raw(world, method, path, headers=tempest, body=body, conn=c)
            assert r.status == status, (method, path, r.status, r.body[:300])
            assert (r.header("Connection") or "").lower() == "close", (method, path, r.headers)
            assert c.closed_within(3), f"{method} {path}: connection left open"


# -- 8. error Content-Types --------------------------------------------------------------

def test_error_content_types_are_exact(world):
    sid = new_server(world)
    json_errors = [
        world.sa.get(f"{world.base}/v2.1/servers/{unique('none')}"),            # 404
        world.sa.get(f"{world.base}/servers/{unique('none')}"),                 # Hostway 404
        world.sa.get(f"{world.base}/v3/{world.a}/volumes/{unique('none')}"),    # Cinder 404
        world.sa.post(f"{world.base}/v2.1/servers/{sid}/os-volume_attachments",
                      json={"volumeAttachment": {}}),                           # 400
        world.sa.get(f"{world.base}/v2.1/servers", headers=mv("3.0")),          # 406
        world.sa.put(f"{world.base}/v2.1/servers"),                             # 405
    ]
    for r in json_errors:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/json", \
            (r.request.method, r.request.url, r.status_code, r.headers)
        json.loads(r.content)
    for url in (f"{world.base}/v2.1/servers", f"{world.base}/servers",
                f"{world.base}/v3/{world.a}/volumes"):
        r = world.anon.get(url)
        assert r.status_code == 401
        assert r.headers["Content-Type"] == "text/plain; charset=UTF-8", r.headers


# -- 9. attachment field sets per microversion --------------------------------------------

@pytest.mark.parametrize("version", ["2.1", "2.70", "2.79", "2.89"])
def test_attachment_fields_per_microversion(world, version):
    sid, vid = new_server(world), new_volume(world)
    h = mv(version)
    r = world.sa.post(f"{world.base}/v2.1/servers/{sid}/os-volume_attachments", headers=h,
                      json={"volumeAttachment": {"volumeId": vid}})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volumeAttachment"], r.text
    created = r.json()["volumeAttachment"]
    assert set(created) == ATTACH_RESPONSE_KEYS[version], (version, created)
    assert created["id"] == vid, created

    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}/os-volume_attachments", headers=h)
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volumeAttachments"], r.text
    items = r.json()["volumeAttachments"]
    assert len(items) == 1, items
    assert set(items[0]) == ATTACHMENT_KEYS[version], (version, items[0])

    r = world.sa.get(f"{world.base}/v2.1/servers/{sid}/os-volume_attachments/{vid}", headers=h)
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volumeAttachment"], r.text
    shown = r.json()["volumeAttachment"]
    assert set(shown) == ATTACHMENT_KEYS[version], (version, shown)
    assert shown == items[0]

    assert shown["serverId"] == sid and shown["volumeId"] == vid, shown
    assert isinstance(shown["device"], str) and DEVICE.match(shown["device"]), shown
    if "id" in shown:
        assert shown["id"] == vid, shown
    if "tag" in shown:
        assert shown["tag"] is None or isinstance(shown["tag"], str), shown
    if "delete_on_termination" in shown:
        assert shown["delete_on_termination"] is False, shown
    if version == "2.89":
        assert isinstance(shown["attachment_id"], str) and shown["attachment_id"], shown
        assert isinstance(shown["bdm_uuid"], str) and shown["bdm_uuid"], shown
        assert shown["attachment_id"] != vid, shown


# -- 10. os-volumes body types (tempest's 2.1 schema) ---------------------------------------

def test_os_volumes_types_for_tempest(world):
    sid, free, used = new_server(world), new_volume(world), new_volume(world)
    device = attach(world, sid, used)["device"]
    views = {}
    r = world.sa.get(f"{world.base}/v2.1/os-volumes/detail")
    assert r.status_code == 200, r.text
    listed = {v["id"]: v for v in r.json()["volumes"]}
    r = world.sa.get(f"{world.base}/v2.1/os-volumes")
    assert r.status_code == 200, r.text
    summary = {v["id"]: v for v in r.json()["volumes"]}
    for vid in (free, used):
        r = world.sa.get(f"{world.base}/v2.1/os-volumes/{vid}")
        assert r.status_code == 200, r.text
        views[vid] = [r.json()["volume"], listed[vid], summary[vid]]
    for vid, vs in views.items():
        for v in vs:
            assert isinstance(v["availabilityZone"], str), v
            assert isinstance(v["size"], int) and isinstance(v["metadata"], dict), v
            for key in ("displayName", "displayDescription", "volumeType", "snapshotId"):
                assert v[key] is None or isinstance(v[key], str), (key, v)
    for v in views[free]:
        assert v["attachments"] == [{}], v
    for v in views[used]:
        assert v["attachments"] == [{"id": used, "volumeId": used, "serverId": sid,
                                     "device": device}], v
        assert isinstance(v["attachments"][0]["device"], str), v
