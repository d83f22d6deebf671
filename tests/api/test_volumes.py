"""Volumes (issue 3 item 1; the volume sections of both dialects in
docs/api.md, and docs/api.md, decisions D2, D3 and D8).

Nova dialect: /v2.1[/{project_id}]/os-volumes, camelCase, microversions
2.1-2.35 only (404 from 2.36), create 200 + Location, delete 202, an attached
volume's delete 400. Hostway dialect: [/accounts/{id}/flexcloud]/volumes,
snake_case with links, delete 204, an attached volume's delete 409 conflict.

As in test_attachments.py each way a request can be refused (a row) is a case
on both prefixes of its dialect, and a refused request must leave the volumes
(and the servers involved) as they were.

Rows not covered, because they cannot occur in attachd: 403 of list/show/
create (no policy file, no quotas); create's 400 "invalid" from Cinder (no
volume types or zones to get wrong).
"""
import re

import pytest

from apiutil import assert_unauthorized
from conftest_volumes import (HOSTWAY_KINDS, KINDS, NOVA_KINDS, Row, assert_empty, assert_fault,
                              cases, dialect, e, e_not_digits, e_regex, make_env, run_refused,
                              uid)


@pytest.fixture(scope="module")
def vol_env(tmp_path_factory):
    yield from make_env(tmp_path_factory)

NOVA_VOLUME_KEYS = {"id", "status", "size", "availabilityZone", "createdAt", "displayName",
                    "displayDescription", "volumeType", "snapshotId", "metadata", "attachments"}
HOSTWAY_VOLUME_KEYS = {"id", "status", "display_name", "display_description", "size",
                       "volume_type", "metadata", "attachments", "availability_zone", "links",
                       "snapshot_id", "created_at"}
STATUSES = {"creating", "available", "attaching", "in-use", "detaching", "deleting", "error"}
NOVA_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")
HOSTWAY_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
IN_USE_400 = re.compile(r"Invalid volume: .*attached.*")


def coll(kind):
    return "/os-volumes" if dialect(kind) == "nova" else "/volumes"


def check_nova_volume(v, vid=None, size=None, status=None, attached_to=None, device=None):
    assert set(v) == NOVA_VOLUME_KEYS, v
    assert v["status"] in STATUSES, v
    assert NOVA_TIME.match(v["createdAt"]), v
    assert isinstance(v["metadata"], dict), v
    if vid is not None:
        assert v["id"] == vid, v
    if size is not None:
        assert v["size"] == size, v
    if status is not None:
        assert v["status"] == status, v
    if attached_to is None:
        assert v["attachments"] == [{}], v      # Nova's quirk for an unattached volume
    else:
        assert v["attachments"] == [{"id": v["id"], "volumeId": v["id"],
                                     "serverId": attached_to, "device": device}], v


def check_hostway_volume(env, kind, v, vid=None, size=None, status=None, attached_to=None,
                         device=None):
    assert HOSTWAY_VOLUME_KEYS <= set(v), v
    assert v["status"] in STATUSES, v
    assert HOSTWAY_TIME.match(v["created_at"]), v
    assert isinstance(v["metadata"], dict), v
    assert v["links"] == [{"href": env.url(kind, f"/volumes/{v['id']}/"), "rel": "self"}], v
    assert isinstance(v["snapshot_id"], str), v
    if vid is not None:
        assert v["id"] == vid, v
    if size is not None:
        assert v["size"] == size, v
    if status is not None:
        assert v["status"] == status, v
    if attached_to is None:
        assert v["attachments"] == [], v
    else:
        assert v["attachments"] == [{"id": v["id"], "server_id": attached_to,
                                     "volume_id": v["id"], "device": device}], v


def check_volume(env, kind, v, **kw):
    if dialect(kind) == "nova":
        check_nova_volume(v, **kw)
    else:
        check_hostway_volume(env, kind, v, **kw)


# -- set-ups -------------------------------------------------------------------------

def s_none(env):
    return {"vid": None, "servers": [], "volumes": []}


def s_volume(env):
    vid = env.volume()
    return {"vid": vid, "servers": [], "volumes": [vid]}


def s_unknown(env):
    vid = uid("no-such-volume")
    return {"vid": vid, "servers": [], "volumes": [vid]}


def s_foreign(env):
    vid = env.volume(who="b")
    return {"vid": vid, "servers": [], "volumes": [vid]}


def s_attached(env):
    sid, vid = env.server(), env.volume()
    env.attach(sid, vid)
    return {"vid": vid, "sid": sid, "servers": [sid], "volumes": [vid]}


def s_root(env):
    vid = env.volume()
    sid = env.boot_from_volume(vid)
    return {"vid": vid, "sid": sid, "servers": [sid], "volumes": [vid]}


def volume_path(c):
    return "{coll}/" + c["vid"]


def run(env, row, kind, method, path):
    return run_refused(env, row, kind, method,
                       lambda c: path(c).replace("{coll}", coll(kind)))


# =====================================================================================
# Create: 4.1 (POST /os-volumes) and 4.2 (POST /volumes). Both validate the
# body with Nova's schema (issue 3 item 1).
# =====================================================================================

CREATE_ROWS = [
    Row("no-envelope", s_none, e(400, "'volume' is a required property"), body={}),
    Row("envelope-not-object", s_none,
        e_regex(400, r"Invalid input for field/attribute volume\. Value: 1\. "
                     r"1 is not of type 'object'"),
        body={"volume": 1}),
    Row("extra-top-key", s_none,
        e(400, "Additional properties are not allowed ('extra' was unexpected)"),
        body={"volume": {"size": 1}, "extra": 1}),
    Row("missing-size", s_none,
        e(400, "Invalid input for field/attribute volume. Value: {}. "
               "'size' is a required property"),
        body={"volume": {}}),
    Row("extra-key", s_none,
        e(400, "Invalid input for field/attribute volume. Value: {'size': 1, 'bogus': 2}. "
               "Additional properties are not allowed ('bogus' was unexpected)"),
        body={"volume": {"size": 1, "bogus": 2}}),
    Row("size-zero", s_none,
        e(400, "Invalid input for field/attribute size. Value: 0. "
               "0 is less than the minimum of 1"),
        body={"volume": {"size": 0}}),
    Row("size-negative", s_none,
        e(400, "Invalid input for field/attribute size. Value: -1. "
               "-1 is less than the minimum of 1"),
        body={"volume": {"size": -1}}),
    Row("size-not-a-number", s_none,
        e(400, "Invalid input for field/attribute size. Value: abc. "
               "'abc' does not match '^[0-9]+$'"),
        body={"volume": {"size": "abc"}}),
    Row("size-wrong-type", s_none,
        e_regex(400, r"Invalid input for field/attribute size\. Value: 1\.5\. "
                     r"1\.5 is not of type 'integer', 'string'"),
        body={"volume": {"size": 1.5}}),
    Row("display-name-not-string", s_none,
        e_regex(400, r"Invalid input for field/attribute display_name\. Value: 5\. "
                     r"5 is not of type 'string'.*"),
        body={"volume": {"size": 1, "display_name": 5}}),
    Row("metadata-not-object", s_none,
        e_regex(400, r"Invalid input for field/attribute metadata\. Value: \[\]\. "
                     r"\[\] is not of type 'object'.*"),
        body={"volume": {"size": 1, "metadata": []}}),
    Row("malformed-json", s_none, e(400, "Malformed request body"), raw=b'{"volume": {'),
    Row("unknown-snapshot", s_none, e(404, "Snapshot snap-0001 could not be found."),
        body={"volume": {"size": 1, "snapshot_id": "snap-0001"}}),
]


def volume_ids(env, kind, who="admin"):
    r = env.req(kind, "GET", coll(kind) + "/detail", who=who, account=env.account("a"))
    assert r.status_code == 200, r.text
    return {v["id"] for v in r.json()["volumes"]}


@pytest.mark.parametrize("row,kind", cases(CREATE_ROWS))
def test_create_refused(vol_env, row, kind):
    before = volume_ids(vol_env, kind)
    run(vol_env, row, kind, "POST", lambda c: "{coll}")
    assert volume_ids(vol_env, kind) == before, "a refused create made a volume"


@pytest.mark.parametrize("kind", KINDS)
def test_create_unauthorized(vol_env, kind):
    before = volume_ids(vol_env, kind)
    user, _ = vol_env.victim()
    r = vol_env.d.session(user, "wrong").post(vol_env.url(kind, coll(kind)),
                                              json={"volume": {"size": 1}})
    assert_unauthorized(r)
    assert_unauthorized(vol_env.d.session().post(vol_env.url(kind, coll(kind)),
                                                 json={"volume": {"size": 1}}))
    assert volume_ids(vol_env, kind) == before


@pytest.mark.parametrize("kind", NOVA_KINDS)
@pytest.mark.parametrize("mv", [None, "2.35"])
def test_nova_create(vol_env, kind, mv):
    """4.1: 200 {"volume": ...} camelCase + Location: <request url>/<id>."""
    env = vol_env
    body = {"size": 2, "display_name": "vol-n", "display_description": "desc",
            "metadata": {"purpose": "test"}, "availability_zone": "nova"}
    r = env.req(kind, "POST", "/os-volumes", mv=mv, json={"volume": body})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volume"]
    v = r.json()["volume"]
    check_nova_volume(v, size=2, status="available")
    assert v["displayName"] == "vol-n" and v["displayDescription"] == "desc"
    assert v["metadata"] == {"purpose": "test"} and v["availabilityZone"] == "nova"
    assert v["snapshotId"] is None
    assert r.headers["Location"] == env.url(kind, "/os-volumes/" + v["id"])
    # the same volume is there, in both dialects
    r = env.req(kind, "GET", "/os-volumes/" + v["id"], mv=mv)
    assert r.status_code == 200 and r.json()["volume"] == v, r.text
    check_hostway_volume(env, "hostway", env.volume_view(v["id"]), vid=v["id"], size=2,
                         status="available")


@pytest.mark.parametrize("kind", NOVA_KINDS)
def test_nova_create_size_as_digit_string(vol_env, kind):
    r = vol_env.req(kind, "POST", "/os-volumes", json={"volume": {"size": "3"}})
    assert r.status_code == 200, r.text
    check_nova_volume(r.json()["volume"], size=3, status="available")
    assert r.json()["volume"]["displayName"] is None
    # as int() reads them: leading zeros whatever their number
    r = vol_env.req(kind, "POST", "/os-volumes", json={"volume": {"size": "0000000004"}})
    assert r.status_code == 200, r.text
    check_nova_volume(r.json()["volume"], size=4, status="available")


@pytest.mark.parametrize("kind", HOSTWAY_KINDS)
def test_hostway_create(vol_env, kind):
    """4.2: the request of Hostway's Create_Volume page; the answer is the
    volume in snake_case with links, snapshot_id "" and attachments []."""
    env = vol_env
    body = {"display_name": "vol-h", "display_description": "Hostway volume", "size": 10,
            "volume_type": "", "metadata": {"contents": "junk"}, "availability_zone": "nova"}
    r = env.req(kind, "POST", "/volumes", json={"volume": body})
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volume"]
    v = r.json()["volume"]
    check_hostway_volume(env, kind, v, size=10, status="available")
    assert v["display_name"] == "vol-h" and v["display_description"] == "Hostway volume"
    assert v["metadata"] == {"contents": "junk"} and v["snapshot_id"] == ""
    assert v["volume_type"] == "" and v["availability_zone"] == "nova"
    r = env.req(kind, "GET", "/volumes/" + v["id"])
    assert r.status_code == 200 and r.json()["volume"] == v, r.text


# =====================================================================================
# List and list detail: GET {coll} and {coll}/detail, with limit/offset.
# =====================================================================================

LIST_ROWS = [
    Row("limit-negative", s_none, e_not_digits("limit", "-1"), query="?limit=-1"),
    Row("limit-not-integer", s_none, e_not_digits("limit", "x"), query="?limit=x"),
    Row("limit-any-value", s_none, e_not_digits("limit", "x"), query="?limit=1&limit=x"),
    Row("offset-negative", s_none, e_not_digits("offset", "-2"), query="?offset=-2"),
    Row("offset-not-integer", s_none, e_not_digits("offset", "y"), query="?offset=y"),
]


@pytest.mark.parametrize("detail", ["", "/detail"])
@pytest.mark.parametrize("row,kind", cases(LIST_ROWS))
def test_list_refused(vol_env, row, kind, detail):
    run(vol_env, row, kind, "GET", lambda c: "{coll}" + detail)


@pytest.mark.parametrize("detail", ["", "/detail"])
@pytest.mark.parametrize("kind", KINDS)
def test_list_unauthorized(vol_env, kind, detail):
    user, _ = vol_env.victim()
    assert_unauthorized(vol_env.d.session(user, "no").get(vol_env.url(kind, coll(kind) + detail)))


@pytest.mark.parametrize("detail", ["", "/detail"])
@pytest.mark.parametrize("kind", KINDS)
def test_list(vol_env, kind, detail):
    """Own volumes only (docs/api.md, decision D6), in the dialect's form, available or in-use with
    the attachment shown; limit/offset slice the list."""
    env = vol_env
    mine = [env.volume() for _ in range(3)]
    foreign = env.volume(who="b")
    sid = env.server()
    env.attach(sid, mine[1], device="/dev/vdq")
    r = env.req(kind, "GET", coll(kind) + detail)
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volumes"]
    vols = r.json()["volumes"]
    by_id = {v["id"]: v for v in vols}
    assert set(mine) <= set(by_id) and foreign not in by_id
    keys = NOVA_VOLUME_KEYS if dialect(kind) == "nova" else HOSTWAY_VOLUME_KEYS
    for v in vols:
        assert keys <= set(v) and v["status"] in ("available", "in-use"), v
    check_volume(env, kind, by_id[mine[0]], status="available")
    check_volume(env, kind, by_id[mine[1]], status="in-use", attached_to=sid, device="/dev/vdq")
    ids = [v["id"] for v in vols]

    def listed(q):
        r = env.req(kind, "GET", coll(kind) + detail + q)
        assert r.status_code == 200, r.text
        return [v["id"] for v in r.json()["volumes"]]

    assert listed("?limit=2") == ids[:2]
    assert listed("?limit=2&offset=1") == ids[1:3]
    assert listed(f"?offset={len(ids) - 1}") == ids[-1:]
    assert listed(f"?offset={len(ids)}") == []
    assert listed("?limit=0") == ids      # as Nova: limit 0 means max_limit
    assert listed("?limit=9&limit=2&offset=0&offset=1") == ids[1:3]     # the last counts


@pytest.mark.parametrize("kind", KINDS)
def test_admin_lists_volumes_of_a_named_account(vol_env, kind):
    """An admin may name any account where the path carries one; without
    one it sees its own account's (docs/api.md, decision D1)."""
    env = vol_env
    vid = env.volume()
    r = env.req(kind, "GET", coll(kind), who="admin", account=env.a)
    assert r.status_code == 200, r.text
    ids = {v["id"] for v in r.json()["volumes"]}
    if kind in ("hostway-acct", "nova-proj"):
        assert vid in ids
    else:
        assert vid not in ids


@pytest.mark.parametrize("path", ["", "/detail", "/{vid}"])
@pytest.mark.parametrize("kind", ["hostway-acct", "nova-proj"])
def test_other_accounts_prefix_is_not_found(vol_env, kind, path):
    """{accountId}/{project_id} must be the caller's own account, else 404
    (docs/api.md, decision D1)."""
    env = vol_env
    vid = env.volume(who="b")
    url = env.url(kind, coll(kind) + path.format(vid=vid), account=env.b)
    r = env.s("a").get(url)
    assert_fault(kind, r, 404, "The resource could not be found.")
    if path == "/{vid}":
        r = env.s("a").delete(url)
    else:
        r = env.s("a").post(url, json={"volume": {"size": 1}})
    assert_fault(kind, r, 404, "The resource could not be found.")
    assert env.volume_view(vid)["status"] == "available"


# =====================================================================================
# Show: GET {coll}/{id}
# =====================================================================================

SHOW_ROWS = [
    Row("unknown-volume", s_unknown, e(404, lambda c: f"Volume {c['vid']} could not be found.")),
    Row("other-accounts-volume", s_foreign,
        e(404, lambda c: f"Volume {c['vid']} could not be found.")),
]


@pytest.mark.parametrize("row,kind", cases(SHOW_ROWS))
def test_show_refused(vol_env, row, kind):
    run(vol_env, row, kind, "GET", volume_path)


@pytest.mark.parametrize("kind", KINDS)
def test_show_unauthorized(vol_env, kind):
    vid = vol_env.volume()
    user, _ = vol_env.victim()
    assert_unauthorized(vol_env.d.session(user, "x").get(vol_env.url(kind, f"{coll(kind)}/{vid}")))


@pytest.mark.parametrize("kind", KINDS)
def test_show(vol_env, kind):
    env = vol_env
    ctx = s_attached(env)
    vid = ctx["vid"]
    r = env.req(kind, "GET", f"{coll(kind)}/{vid}")
    assert r.status_code == 200, r.text
    assert list(r.json()) == ["volume"]
    check_volume(env, kind, r.json()["volume"], vid=vid, size=1, status="in-use",
                 attached_to=ctx["sid"], device="/dev/vdb")
    env.detach(ctx["sid"], vid)
    r = env.req(kind, "GET", f"{coll(kind)}/{vid}")
    check_volume(env, kind, r.json()["volume"], vid=vid, status="available")


@pytest.mark.parametrize("kind", KINDS)
def test_cli_volume_with_given_id(vol_env, kind):
    """`attachd volume add --id` makes a volume with that id
    (docs/api.md, decision D5; issue 3 item 1)."""
    env = vol_env
    vid = uid("hbs2012May03")
    assert env.d.add_volume(env.a, size=4, name="cli-vol", volume_id=vid) == vid
    r = env.req(kind, "GET", f"{coll(kind)}/{vid}")
    assert r.status_code == 200, r.text
    check_volume(env, kind, r.json()["volume"], vid=vid, size=4, status="available")
    name = r.json()["volume"]["displayName" if dialect(kind) == "nova" else "display_name"]
    assert name == "cli-vol"


# =====================================================================================
# Delete: DELETE {coll}/{id}. Nova 202, Hostway 204; an attached volume is
# refused (Nova 400 as Cinder does, Hostway 409 conflict) and stays as it was.
# =====================================================================================

def e_in_use(kind, c):
    if dialect(kind) == "nova":
        return 400, IN_USE_400, None
    return 409, IN_USE_400, None


DELETE_ROWS = [
    Row("unknown-volume", s_unknown, e(404, lambda c: f"Volume {c['vid']} could not be found.")),
    Row("other-accounts-volume", s_foreign,
        e(404, lambda c: f"Volume {c['vid']} could not be found.")),
    Row("attached", s_attached, e_in_use),
    Row("root-volume", s_root, e_in_use),
]


@pytest.mark.parametrize("row,kind", cases(DELETE_ROWS))
def test_delete_refused(vol_env, row, kind):
    ctx = run(vol_env, row, kind, "DELETE", volume_path)
    if "sid" in ctx:      # still attached and usable
        vol_env.assert_consistent([ctx["sid"]], [ctx["vid"]])


@pytest.mark.parametrize("kind", KINDS)
def test_delete_unauthorized(vol_env, kind):
    vid = vol_env.volume()
    user, _ = vol_env.victim()
    url = vol_env.url(kind, f"{coll(kind)}/{vid}")
    assert_unauthorized(vol_env.d.session(user, "x").delete(url))
    assert vol_env.volume_view(vid)["status"] == "available"


@pytest.mark.parametrize("kind", KINDS)
def test_delete(vol_env, kind):
    env = vol_env
    vid = env.volume()
    r = env.req(kind, "DELETE", f"{coll(kind)}/{vid}")
    assert_empty(r, 202 if dialect(kind) == "nova" else 204)
    assert env.volume_view(vid) is None
    r = env.req(kind, "GET", f"{coll(kind)}/{vid}")
    assert_fault(kind, r, 404, f"Volume {vid} could not be found.")
    r = env.req(kind, "DELETE", f"{coll(kind)}/{vid}")
    assert_fault(kind, r, 404, f"Volume {vid} could not be found.")
    # a detached volume can be deleted
    ctx = s_attached(env)
    env.detach(ctx["sid"], ctx["vid"])
    r = env.req(kind, "DELETE", f"{coll(kind)}/{ctx['vid']}")
    assert_empty(r, 202 if dialect(kind) == "nova" else 204)
    assert env.volume_view(ctx["vid"]) is None
    # and an attach to a deleted volume is "not found"
    r = env.req(kind, "POST", f"/servers/{ctx['sid']}/os-volume_attachments",
                json={"volumeAttachment": {"volumeId": ctx["vid"]}})
    assert_fault(kind, r, 404, f"Volume {ctx['vid']} could not be found.")


# =====================================================================================
# os-volumes is gone from 2.36 (as in Nova): every operation is 404 and changes nothing.
# =====================================================================================

GONE = [("GET", "/os-volumes"), ("GET", "/os-volumes/detail"), ("GET", "/os-volumes/{vid}"),
        ("POST", "/os-volumes"), ("DELETE", "/os-volumes/{vid}")]


@pytest.mark.parametrize("mv", ["2.36", "2.89", "latest"])
@pytest.mark.parametrize("method,path", GONE, ids=[f"{m}-{p}" for m, p in GONE])
@pytest.mark.parametrize("kind", NOVA_KINDS)
def test_os_volumes_gone_from_2_36(vol_env, kind, method, path, mv):
    env = vol_env
    vid = env.volume()
    before = volume_ids(env, "hostway")
    kw = {"json": {"volume": {"size": 1}}} if method == "POST" else {}
    r = env.req(kind, method, path.format(vid=vid), mv=mv, **kw)
    assert_fault(kind, r, 404, "The resource could not be found.")
    assert volume_ids(env, "hostway") == before
    assert env.volume_view(vid)["status"] == "available"


@pytest.mark.parametrize("kind", HOSTWAY_KINDS)
def test_hostway_volumes_ignore_microversions(vol_env, kind):
    """No microversions in the Hostway dialect (docs/api.md, decision D2);
    /volumes works whatever the headers say."""
    vid = vol_env.volume()
    s = vol_env.s("a", "2.89")
    r = s.get(vol_env.url(kind, f"/volumes/{vid}"))
    assert r.status_code == 200, r.text
    r = s.delete(vol_env.url(kind, f"/volumes/{vid}"))
    assert_empty(r, 204)


@pytest.mark.parametrize("kind", ["nova", "hostway"])
def test_no_cross_dialect_collections(vol_env, kind):
    """/volumes is Hostway's and /os-volumes Nova's
    (docs/api.md, decisions D2 and D3)."""
    other = "/volumes" if dialect(kind) == "nova" else "/os-volumes"
    r = vol_env.req(kind, "GET", other)
    assert_fault(kind, r, 404, "The resource could not be found.")
